"""Reminders before a poll closes: one short public reply, exactly once."""

from __future__ import annotations

import logging
from datetime import UTC, datetime
from typing import TYPE_CHECKING

import discord

from bot.polls.jobs import Job
from bot.polls.models import Poll
from bot.polls.reminder import REMINDER_MARK, reminder_nonce, reminder_text
from bot.tree import NO_MENTIONS

if TYPE_CHECKING:
    from .polls import Polls

log = logging.getLogger(__name__)


async def send_reminder(cog: Polls, job: Job) -> None:
    """Send a claimed reminder job's reply, or finish it as skipped or failed. Raising leaves
    it to be tried again (see `Polls._run_job`)."""
    extra = {"poll_id": job.poll_id}
    repo = cog.service.repo
    poll = await repo.get(job.poll_id)
    now = cog.bot.clock()
    skip = None
    if poll is None or poll.message_id is None:
        skip = "skipped: no poll message"
    elif not poll.is_open or (poll.closes_at is not None and poll.closes_at <= now):
        skip = "skipped: closed"
    elif poll.closes_at is None:
        skip = "skipped: no deadline"
    if skip is not None:
        await cog.jobs.finish(job, outcome=skip, now=now)
        log.info("poll %s: reminder %s", job.poll_id, skip, extra=extra)
        return
    assert poll is not None and poll.message_id is not None
    channel = cog.bot.get_partial_messageable(poll.channel_id, guild_id=poll.guild_id)
    message = None
    try:
        if job.started_at is not None:
            # An earlier attempt may have sent it before the process died: look before resending.
            message = await _find_reminder(cog, channel, poll, since=job.started_at)
        if message is None:
            if not await cog.jobs.mark_started(job, owner=cog.bot.claim_owner, now=cog.bot.clock()):
                log.info("poll %s: another process took over the reminder", poll.id, extra=extra)
                return
            tally = await repo.tally(poll)
            message = await channel.send(
                reminder_text(poll, tally),
                reference=discord.MessageReference(
                    message_id=poll.message_id, channel_id=poll.channel_id, fail_if_not_exists=False
                ),
                mention_author=False,
                allowed_mentions=NO_MENTIONS,
                nonce=reminder_nonce(poll),
            )
    except discord.HTTPException as error:
        if error.status not in (403, 404):
            raise  # tried again later
        # The channel is gone or closed to us: trying again can't help.
        log.error("poll %s: cannot send the reminder (%s); giving up", poll.id, error, extra=extra)
        await cog.jobs.finish(job, outcome=f"failed: {error.status} {error.text}", now=cog.bot.clock())
        return
    await cog.jobs.finish(job, outcome="sent", now=cog.bot.clock(), message_id=message.id)
    log.info("poll %s: reminder sent in message %s", poll.id, message.id, extra=extra)


async def _find_reminder(
    cog: Polls, channel: discord.PartialMessageable, poll: Poll, *, since: float
) -> discord.Message | None:
    """The reminder an earlier attempt sent, if any: a reply of ours to the poll message that
    reads as a reminder (the announcement replies to it too), from a minute before that
    attempt began (as `Polls._find_announcement` does)."""
    assert cog.bot.user is not None and poll.message_id is not None
    after = discord.utils.time_snowflake(datetime.fromtimestamp(since - 60, UTC))
    try:
        async for message in channel.history(limit=100, after=discord.Object(max(after, poll.message_id))):
            if (
                message.author.id == cog.bot.user.id
                and message.reference is not None
                and message.reference.message_id == poll.message_id
                and message.content.startswith(f"{REMINDER_MARK}Poll #{poll.number} ")
            ):
                return message
    except discord.HTTPException as error:
        log.info("poll %s: could not search for an earlier reminder: %s", poll.id, error, extra={"poll_id": poll.id})
    return None
