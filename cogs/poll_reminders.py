"""Reminders before a poll closes: one short public reply, exactly once."""

from __future__ import annotations

from typing import TYPE_CHECKING

from bot.polls.jobs import Job

if TYPE_CHECKING:
    from .polls import Polls


async def send_reminder(cog: Polls, job: Job) -> None:
    raise NotImplementedError("being built (issue 11)")
