"""/poll edit on Discord: parse, call the editing rules, update the poll message."""

from __future__ import annotations

from typing import TYPE_CHECKING

import discord

if TYPE_CHECKING:
    from .polls import Polls


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
    raise NotImplementedError("being built (issue 11)")
