"""Start Quorum: `python run.py` (settings from the environment and .env)."""

from __future__ import annotations

import argparse
import asyncio
import logging
import sys
from pathlib import Path

import discord

from bot.config import Settings, SettingsError


def point_at_api(settings: Settings) -> None:
    """Use a Discord-compatible server instead of Discord (process-level tests do)."""
    if settings.api_base:
        discord.http.Route.BASE = settings.api_base
    if settings.gateway_url:
        import yarl

        discord.gateway.DiscordWebSocket.DEFAULT_GATEWAY = yarl.URL(settings.gateway_url)


def playground(args: argparse.Namespace) -> int:
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


async def run_bot(settings: Settings) -> None:
    from bot.client import QuorumBot

    assert settings.token is not None
    async with QuorumBot(settings) as bot:
        await bot.start(settings.token)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="run.py", description="Quorum, a Discord bot for polls")
    parser.add_argument(
        "command", nargs="?", default="run", choices=["run", "playground"],
        help="run: the bot on Discord (default); playground: offline, in your browser, no token",
    )
    parser.add_argument("--port", type=int, default=None, help="playground: serve on this port")
    parser.add_argument("--database", type=Path, default=None, help="playground: keep the database here")
    parser.add_argument("--no-browser", action="store_true", help="playground: don't open a browser")
    args = parser.parse_args(argv)
    if args.command == "playground":
        return playground(args)
    try:
        settings = Settings.from_env()
    except SettingsError as error:
        print(error, file=sys.stderr)
        return 2
    # discord.py's start() leaves logging alone; this gives its logs and ours one format.
    discord.utils.setup_logging(level=settings.log_level_number, root=True)
    logging.getLogger("discord.http").setLevel(max(settings.log_level_number, logging.INFO))
    point_at_api(settings)
    try:
        asyncio.run(run_bot(settings))
    except KeyboardInterrupt:
        pass
    except discord.LoginFailure:
        print("Discord refused the token: copy it again from the Bot page of your application.", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
