"""Scheduled and repeating polls on Discord: posting them when due, /poll scheduled, /poll cancel."""

from __future__ import annotations

from typing import TYPE_CHECKING

import discord

from bot.polls.jobs import Job

if TYPE_CHECKING:
    from .polls import Polls


async def post_scheduled(cog: Polls, job: Job) -> None:
    raise NotImplementedError("being built (issue 11)")


async def list_scheduled(cog: Polls, interaction: discord.Interaction) -> None:
    raise NotImplementedError("being built (issue 11)")


async def cancel_poll(cog: Polls, interaction: discord.Interaction, poll: str) -> None:
    raise NotImplementedError("being built (issue 11)")
