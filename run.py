"""Quorum's command line: run the bot, try the playground, check, back up, move to PostgreSQL, sync.

Settings come from the environment and `.env` (see .env.example).
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import signal
import sys
from collections.abc import Coroutine
from pathlib import Path
from typing import Any

import discord

from bot.config import Settings, SettingsError, redact_url
from bot.db import StorageUnavailable
from bot.logs import setup_logging

log = logging.getLogger("quorum")


def point_at_api(settings: Settings) -> None:
    """Use a Discord-compatible server instead of Discord (process-level tests do)."""
    if settings.api_base:
        discord.http.Route.BASE = settings.api_base
    if settings.gateway_url:
        import yarl

        discord.gateway.DiscordWebSocket.DEFAULT_GATEWAY = yarl.URL(settings.gateway_url)


def load_settings(*, require_token: bool = True) -> Settings | None:
    try:
        return Settings.from_env(require_token=require_token)
    except SettingsError as error:
        print(error, file=sys.stderr)
        return None


# ---------------------------------------------------------------------- run


async def run_bot(settings: Settings) -> None:
    from bot.client import QuorumBot

    assert settings.token is not None
    async with QuorumBot(settings, freeze_heap=True) as bot:
        loop = asyncio.get_running_loop()
        stopping: list[asyncio.Task[None]] = []

        def stop() -> None:
            # SIGTERM (docker stop) and Ctrl-C: stop taking votes, finish those in flight.
            if not stopping:
                stopping.append(loop.create_task(bot.shutdown()))

        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(sig, stop)
        try:
            await bot.start(settings.token)
        except Exception:
            if not stopping:
                raise
            # Closing while the first gateway connection is still being retried makes
            # discord.py's reconnect loop trip over its missing websocket; we are stopping
            # on purpose, so that is the end of the run, not a crash.
            log.debug("the connection loop ended while stopping", exc_info=True)
        if stopping:
            await stopping[0]
    log.info("stopped")


def online_settings() -> Settings | None:
    """Settings for a command that talks to Discord, with logging set up and the API chosen."""
    settings = load_settings()
    if settings is not None:
        setup_logging(settings.log_level_number, settings.log_format)
        point_at_api(settings)
    return settings


def cmd_run(args: argparse.Namespace) -> int:
    settings = online_settings()
    return 2 if settings is None else run_online(run_bot(settings))


def run_online(work: Coroutine[Any, Any, object]) -> int:
    """Run a coroutine that logs in; a refused token becomes advice, not a traceback."""
    try:
        asyncio.run(work)
    except discord.LoginFailure:
        print("Discord refused the token: copy it again from the Bot page of your application.", file=sys.stderr)
        return 1
    except StorageUnavailable as error:  # e.g. PostgreSQL unreachable at start: what and where, no traceback
        print(f"Quorum can't start: {error}", file=sys.stderr)
        return 1
    return 0


# ---------------------------------------------------------------------- playground


def cmd_playground(args: argparse.Namespace) -> int:
    try:
        import simcord.preview  # noqa: F401  (its browser page needs the preview extra)

        from bot.playground import run_playground
    except ImportError:
        print('The playground needs SimCord: pip install -e ".[playground]"', file=sys.stderr)
        return 2
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s")
    asyncio.run(run_playground(port=args.port, database=args.database, open_browser=not args.no_browser))
    print("Playground stopped.")
    return 0


# ---------------------------------------------------------------------- check


async def _login_check(settings: Settings) -> str | None:
    """Log in over REST only (no gateway); None when Discord accepts the token."""
    assert settings.token is not None
    client = discord.Client(intents=discord.Intents.none())
    try:
        await client.login(settings.token)
        assert client.user is not None
        print(f"ok   Discord accepts the token: logged in as {client.user} (id {client.user.id})")
        return None
    except discord.LoginFailure:
        return "Discord refused the token: copy it again from the Bot page of your application."
    except (discord.HTTPException, OSError) as error:
        return f"could not reach Discord to check the token: {error}"
    finally:
        await client.close()


def shards_text(settings: Settings) -> str:
    if settings.shard_count is None:
        return "as many as Discord recommends, all in this process (SHARD_COUNT unset)"
    ids = settings.shard_ids if settings.shard_ids is not None else tuple(range(settings.shard_count))
    sync = "; syncs the slash commands" if settings.runs_shard_zero else "; the process running shard 0 syncs commands"
    return f"{', '.join(map(str, ids))} of {settings.shard_count} in this process{sync}"


def cmd_check(args: argparse.Namespace) -> int:
    from bot.maintenance import application_id_from_token, check_database, invite_url

    settings = load_settings()
    if settings is None:
        return 2
    print("ok   settings are valid")
    print(f"ok   shards: {shards_text(settings)}")
    problems = 0
    # Read-only: a missing or empty database fails rather than being created (a mis-mounted
    # volume must not pass the healthcheck), and nothing is migrated or repaired.
    if settings.database_url:
        from bot.maintenance_postgres import check_postgres

        database_ok, text = check_postgres(settings.database_url).verdict()
        where = redact_url(settings.database_url)
    else:
        database_ok, text = check_database(settings.database_path).verdict()
        where = str(settings.database_path)
    print(f"{'ok  ' if database_ok else 'FAIL'} database {where}: {text}")
    problems += 0 if database_ok else 1
    assert settings.token is not None
    if not args.offline:
        point_at_api(settings)
        error = asyncio.run(_login_check(settings))
        if error:
            print(f"FAIL {error}")
            problems += 1
    app_id = application_id_from_token(settings.token)
    if app_id is not None:
        print(f"Invite link (exactly the permissions Quorum needs):\n{invite_url(app_id)}")
    return 1 if problems else 0


# ---------------------------------------------------------------------- backup


def cmd_backup(args: argparse.Namespace) -> int:
    from bot.maintenance import BackupError, backup

    settings = load_settings(require_token=False)
    if settings is None:
        return 2
    if settings.database_url:
        return backup_postgres(settings.database_url, args.path)
    try:
        report = backup(settings.database_path, args.path)
    except BackupError as error:
        print(f"Backup failed: {error}", file=sys.stderr)
        return 1
    counts = "no polls tables yet" if report.polls is None else f"{report.polls} polls, {report.votes} votes"
    print(f"Backed up {settings.database_path} to {report.path}: {counts}.")
    return 0


def backup_postgres(url: str, path: Path) -> int:
    from bot.maintenance import BackupError
    from bot.maintenance_postgres import backup_postgres as dump

    try:
        report = dump(url, path)
    except BackupError as error:
        print(f"Backup failed: {error}", file=sys.stderr)
        return 1
    counts = "no polls tables yet" if report.polls is None else f"{report.polls} polls, {report.votes} votes"
    print(f"Backed up {redact_url(url)} to {report.path} with pg_dump: {counts}.")
    print(f"Restore into an empty database, bots stopped: pg_restore --no-owner --dbname postgresql://… {report.path}")
    return 0


# ---------------------------------------------------------------------- migrate-db


def cmd_migrate_db(args: argparse.Namespace) -> int:
    from bot.migrate_db import MigrationError, migrate_database

    settings = load_settings(require_token=False)
    if settings is None:
        return 2
    url = args.to or settings.database_url
    if not url:
        print("migrate-db needs the target: --to postgresql://user@host/database (or DATABASE_URL)", file=sys.stderr)
        return 2
    try:
        report = migrate_database(args.source or settings.database_path, url)
    except MigrationError as error:
        print(f"migrate-db failed: {error}", file=sys.stderr)
        return 1
    print("\n".join(report.lines()))
    return 0 if report.ok else 1


# ---------------------------------------------------------------------- sync


async def _sync(settings: Settings, guild_id: int | None) -> None:
    from bot.client import QuorumBot

    assert settings.token is not None
    async with QuorumBot(settings, sync_on_start=False) as bot:
        await bot.login(settings.token)  # runs setup_hook: database and commands, no gateway
        await bot.sync_commands_if_changed(force=True, guild_id=guild_id)
        where = f"to server {guild_id}" if guild_id else ("to the dev server" if settings.dev_guild_id else "globally")
        print(f"Synced {len(bot.tree.get_commands())} command groups {where}.")


def cmd_sync(args: argparse.Namespace) -> int:
    settings = online_settings()
    return 2 if settings is None else run_online(_sync(settings, args.guild))


# ---------------------------------------------------------------------- main


def parser() -> argparse.ArgumentParser:
    main = argparse.ArgumentParser(prog="run.py", description="Quorum: button polls for Discord communities")
    commands = main.add_subparsers(dest="command", metavar="COMMAND")
    commands.add_parser("run", help="run the bot on Discord (the default)").set_defaults(func=cmd_run)

    play = commands.add_parser("playground", help="try Quorum offline in your browser; no token needed")
    play.add_argument("--port", type=int, default=None, help="serve the page on this port")
    play.add_argument("--database", type=Path, default=None, help="keep the database here (default: throwaway)")
    play.add_argument("--no-browser", action="store_true", help="don't open a browser")
    play.set_defaults(func=cmd_playground)

    check = commands.add_parser("check", help="check settings, database and token; print the invite link")
    check.add_argument("--offline", action="store_true", help="don't contact Discord (healthchecks)")
    check.set_defaults(func=cmd_check)

    back_help = "copy the database consistently, even while the bot runs; on failure, leave nothing behind"
    back = commands.add_parser(
        "backup",
        help=back_help,
        # Laid out by hand: argparse would wrap the restore command, even inside "--no-owner".
        formatter_class=argparse.RawDescriptionHelpFormatter,
        description=f"{back_help.capitalize()}.\n\n"
        "SQLite (DATABASE_PATH): a copy of the file, checked before it is moved into place.\n"
        "PostgreSQL (DATABASE_URL set): calls pg_dump --format=custom (PostgreSQL's client tools,\n"
        "the server's major version or newer), the password passed in its environment.\n"
        "Restore into an empty database, bots stopped, with:\n"
        "  pg_restore --no-owner --dbname postgresql://… PATH",
    )
    back.add_argument("path", type=Path, help="where to write the copy (PostgreSQL: the pg_dump file)")
    back.set_defaults(func=cmd_backup)

    move = commands.add_parser(
        "migrate-db",
        help="copy the SQLite database into an empty PostgreSQL database, then verify the copy",
        description="Copy every table of the SQLite database (read only, never changed) into an empty PostgreSQL "
        "database in one transaction, then check that row counts and every poll's tally match. Stop the bot "
        "first: votes cast during the copy would not be in it. Then set DATABASE_URL and start the bot.",
    )
    move.add_argument("--from", dest="source", type=Path, default=None, metavar="PATH",
                      help="the SQLite database (default: DATABASE_PATH)")
    move.add_argument("--to", default=None, metavar="URL", help="postgresql://user:password@host/database "
                      "(default: DATABASE_URL, which keeps a password out of ps)")
    move.set_defaults(func=cmd_migrate_db)

    sync = commands.add_parser("sync", help="register the slash commands with Discord now")
    sync.add_argument("--guild", type=int, default=None, help="sync to this server only")
    sync.set_defaults(func=cmd_sync)
    return main


def main(argv: list[str] | None = None) -> int:
    args = parser().parse_args(argv)
    return int(args.func(args)) if args.command else cmd_run(args)


if __name__ == "__main__":
    sys.exit(main())
