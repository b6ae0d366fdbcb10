"""The Results and Close buttons on a poll message.

Stateless like the answer buttons: the poll is in the custom_id, so they work after a
restart and nothing is kept per poll. What they do is `/poll results` and `/poll close`'s
own path (`Polls.show_results`, `Polls.close_poll`), for whoever clicks.
"""

from __future__ import annotations

import re
from typing import TYPE_CHECKING, Any

import discord

from bot.polls.models import MAX_ID, Poll, PollNotFound
from bot.tree import NO_MENTIONS, report_error, send_ephemeral

if TYPE_CHECKING:
    from .polls import Polls

RESULTS_ID = re.compile(r"quorum:results:(?P<poll>\d+)")
CLOSE_ID = re.compile(r"quorum:close:(?P<poll>\d+)")
UNAVAILABLE = "Polls are unavailable for a moment; try again shortly."


def results_custom_id(poll_id: int) -> str:
    return f"quorum:results:{poll_id}"


def close_custom_id(poll_id: int) -> str:
    return f"quorum:close:{poll_id}"


async def _cog(interaction: discord.Interaction) -> Polls | None:
    cog: Polls | None = interaction.client.get_cog("Polls")  # type: ignore[attr-defined]
    if cog is None:
        await interaction.response.send_message(UNAVAILABLE, ephemeral=True, allowed_mentions=NO_MENTIONS)
    return cog


class ResultsButton(discord.ui.DynamicItem[discord.ui.Button[Any]], template=RESULTS_ID.pattern):
    """Shows the clicker the poll's counts, as `/poll results` does (privately)."""

    def __init__(self, poll_id: int) -> None:
        super().__init__(discord.ui.Button(label="Results", custom_id=results_custom_id(poll_id)))
        self.poll_id = poll_id

    @classmethod
    async def from_custom_id(
        cls, interaction: discord.Interaction, item: discord.ui.Item[Any], match: re.Match[str], /
    ) -> ResultsButton:
        return cls(int(match["poll"]))

    async def callback(self, interaction: discord.Interaction) -> None:
        if (cog := await _cog(interaction)) is not None:
            await results_clicked(cog, interaction, self.poll_id)


class CloseButton(discord.ui.DynamicItem[discord.ui.Button[Any]], template=CLOSE_ID.pattern):
    """Closes the poll and announces it, as `/poll close` does (creator or Manage Server)."""

    def __init__(self, poll_id: int) -> None:
        super().__init__(discord.ui.Button(label="Close", custom_id=close_custom_id(poll_id)))
        self.poll_id = poll_id

    @classmethod
    async def from_custom_id(
        cls, interaction: discord.Interaction, item: discord.ui.Item[Any], match: re.Match[str], /
    ) -> CloseButton:
        return cls(int(match["poll"]))

    async def callback(self, interaction: discord.Interaction) -> None:
        if (cog := await _cog(interaction)) is not None:
            await close_clicked(cog, interaction, self.poll_id)


async def results_clicked(cog: Polls, interaction: discord.Interaction, poll_id: int) -> None:
    try:
        await cog.show_results(interaction, await _clicked_poll(cog, interaction, poll_id))
    except Exception as error:  # a button has no tree error handler: answer it here
        await report_error(interaction, error)


async def close_clicked(cog: Polls, interaction: discord.Interaction, poll_id: int) -> None:
    if not cog.bot.accepting:
        await send_ephemeral(interaction, "Quorum is restarting; the poll is still open. Try again in a minute.")
        return
    with cog.bot.in_flight():  # a graceful shutdown lets the close and its announcement finish
        try:
            await cog.close_poll(interaction, await _clicked_poll(cog, interaction, poll_id))
        except Exception as error:
            await report_error(interaction, error)


async def _clicked_poll(cog: Polls, interaction: discord.Interaction, poll_id: int) -> Poll:
    poll = await cog.service.repo.get(poll_id) if 0 <= poll_id <= MAX_ID else None
    if poll is None or poll.guild_id != interaction.guild_id:
        raise PollNotFound()  # deleted since, or a button no stored poll has
    return poll
