"""/poll edit on Discord: parse, call the editing rules, update the poll message."""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING

import discord

from bot.polls.editing import edit_summary, parse_edit
from bot.tree import NO_MENTIONS

if TYPE_CHECKING:
    from .polls import Polls

log = logging.getLogger(__name__)


async def edit_poll(
    cog: Polls,
    interaction: discord.Interaction,
    poll: str,
    *,
    question: str | None,
    add_options: str | None,
    remove_option: int | None,
    duration: str | None,
) -> None:
    assert interaction.guild_id is not None
    request = parse_edit(question=question, add_options=add_options, remove_option=remove_option, duration=duration)
    found = await cog.service.find(interaction.guild_id, poll)
    manage_guild = bool(interaction.permissions.manage_guild)
    await interaction.response.defer(ephemeral=True, thinking=True)
    result = await cog.service.edit(found, request, user_id=interaction.user.id, manage_guild=manage_guild)
    log.info(
        "poll %s edited by user %s: %s",
        found.id, interaction.user.id, ", ".join(c.kind.value for c in result.changes),
        extra={"poll_id": found.id},
    )
    summary = edit_summary(result)
    try:
        # At once, new buttons included; the edit is stored whatever Discord says.
        await cog.edit_poll_message(result.poll)
    except discord.HTTPException as error:
        log.warning("poll %s: could not update its message after an edit: %s", found.id, error,
                    extra={"poll_id": found.id})
        summary += "\nThe poll message could not be updated just now; it shows the change with the next vote."
    # A refresh that read the poll just before the edit may still land after it: one more,
    # from the stored state, puts the edited message back.
    cog.refresher.request(found.id)
    cog.scheduler.poke()  # a new deadline, or a reminder due sooner
    await interaction.followup.send(summary, ephemeral=True, allowed_mentions=NO_MENTIONS)
