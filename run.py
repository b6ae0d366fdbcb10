"""Start Quorum: `python run.py` (settings from the environment and .env)."""

from __future__ import annotations

import argparse
import asyncio
import logging
import sys

import discord

from bot.config import Settings, SettingsError


def point_at_api(settings: Settings) -> None:
    """Use a Discord-compatible server instead of Discord (process-level tests do)."""
    if settings.api_base:
        discord.http.Route.BASE = settings.api_base
    if settings.gateway_url:
        import yarl

        discord.gateway.DiscordWebSocket.DEFAULT_GATEWAY = yarl.URL(settings.gateway_url)


async def run_bot(settings: Settings) -> None:
    from bot.client import QuorumBot

    assert settings.token is not None
    async with QuorumBot(settings) as bot:
        await bot.start(settings.token)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="run.py", description="Quorum, a Discord bot for polls")
    parser.add_argument("command", nargs="?", default="run", choices=["run"], help="what to do (default: run)")
    parser.parse_args(argv)
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
