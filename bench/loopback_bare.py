"""The bare bot of both vote benchmarks (`bench/votes.py` imports it; `bench/votes_loopback.py`
runs this file as a real process): answers every vote button with
an ephemeral "ok" and nothing else. `--plain` leaves out `allowed_mentions` (see votes.py).

Reads DISCORD_TOKEN, DISCORD_API_BASE and DISCORD_GATEWAY_URL like Quorum does.
"""

from __future__ import annotations

import argparse
import os
import re
from typing import Any

import discord
import yarl
from discord.ext import commands

TEMPLATE = r"quorum:vote:(?P<poll>\d+):(?P<option>\d+)"


class BareVote(discord.ui.DynamicItem[discord.ui.Button[Any]], template=TEMPLATE):
    def __init__(self, poll: int, option: int) -> None:
        super().__init__(discord.ui.Button(label="\u200b", custom_id=f"quorum:vote:{poll}:{option}"))

    @classmethod
    async def from_custom_id(
        cls, interaction: discord.Interaction, item: discord.ui.Item[Any], match: re.Match[str], /
    ) -> BareVote:
        return cls(int(match["poll"]), int(match["option"]))

    async def callback(self, interaction: discord.Interaction) -> None:
        await interaction.response.send_message("ok", ephemeral=True)


class BareBot(commands.Bot):
    def __init__(self, item: type[discord.ui.DynamicItem[Any]] = BareVote, *, mentions: bool = True) -> None:
        intents = discord.Intents.none()
        intents.guilds = True  # the same intents as Quorum
        super().__init__(
            command_prefix=commands.when_mentioned,
            help_command=None,
            intents=intents,
            allowed_mentions=discord.AllowedMentions.none() if mentions else None,
        )
        self.item = item

    async def setup_hook(self) -> None:
        self.add_dynamic_items(self.item)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--plain", action="store_true", help="send no allowed_mentions")
    args = parser.parse_args()
    discord.http.Route.BASE = os.environ["DISCORD_API_BASE"]
    discord.gateway.DiscordWebSocket.DEFAULT_GATEWAY = yarl.URL(os.environ["DISCORD_GATEWAY_URL"])
    BareBot(mentions=not args.plain).run(os.environ["DISCORD_TOKEN"], log_handler=None)


if __name__ == "__main__":
    main()
