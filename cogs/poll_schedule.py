"""Scheduled and repeating polls on Discord: posting them when due, /poll scheduled, /poll cancel.

Posting a copy is a 'post' job (bot/polls/jobs.py), sent exactly once across processes and
restarts: the claim, `mark_started` before sending, the message's nonce, and on a retry after
a crash a search of the channel for the message sent before; `ScheduleRepository.mark_posted`
records it (and stores a series' next copy) in one transaction and is idempotent.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

import discord

from bot.markdown import escape
from bot.polls.jobs import Job
from bot.polls.models import Poll
from bot.polls.refs import parse_poll_ref
from bot.polls.render import cancel_confirmation, duration_text, scheduled_card, shorten, timestamp
from bot.polls.schedule import Posting
from bot.polls.schedules import CANCELLED_OUTCOME, CancelStatus, ScheduleRepository
from bot.polls.service import NotAllowed, PollLookupError
from bot.tree import NO_MENTIONS, UserFacingError

from ._checks import BOT_CHANNEL_PERMISSIONS
from ._ui import VOTE_ID, embed

if TYPE_CHECKING:
    from .polls import Polls

log = logging.getLogger(__name__)

# The list fetched for /poll scheduled: more than an embed can show, so "…and N more" is exact.
LIST_LIMIT = 200
# A server not available to this process now (an outage, another process's shard): try then.
POSTPONE = 60.0
# Permissions Discord denies along with Send Messages.
_NEEDS_SEND = ("embed_links", "attach_files")


def _nonce(poll: Poll) -> str:
    # Discord keeps a nonce for a few minutes: a resend after a crash returns the first message.
    return f"quorum-poll-{poll.id}"[:25]


def _schedules(cog: Polls) -> ScheduleRepository:
    return ScheduleRepository(cog.bot.db)


# ==================================================================== posting


async def post_scheduled(cog: Polls, job: Job) -> None:
    """Post a scheduled poll (or a series' next copy) that is due, exactly once."""
    schedules = _schedules(cog)
    clock = cog.bot.clock
    extra = {"poll_id": job.poll_id}
    poll = await cog.service.repo.get(job.poll_id)
    if poll is None:
        await cog.jobs.finish(job, outcome="skipped: the poll no longer exists", now=clock())
        return
    if poll.message_id is not None:  # recorded, but the job not finished: finish it the same way
        await schedules.mark_posted(poll.id, poll.message_id, clock())
        return
    if poll.cancelled_at is not None:
        if job.started_at is not None:  # cancelled while a crashed attempt was sending it
            await _withdraw(cog, poll, job)
        await cog.jobs.finish(job, outcome=CANCELLED_OUTCOME, now=clock())
        return
    guild = cog.bot.get_guild(poll.guild_id)
    if (guild is not None and guild.unavailable) or (guild is None and not _runs_shard_of(cog, poll.guild_id)):
        # A Discord outage, or a server another process's shard holds: not a reason to give
        # up. Tried again later (not counted as an attempt); claims keep to this process's
        # shards, so this is rare.
        await cog.jobs.postpone(job, retry_at=clock() + POSTPONE)
        log.info("poll %s: its server is not available here now; posting later", poll.id, extra=extra)
        return
    channel, problem = _channel_for(cog, poll)
    if channel is None:
        await _give_up(cog, poll, problem)
        return
    message = await _find_sent(cog, channel, poll, job) if job.started_at is not None else None
    if message is None:
        if not await cog.jobs.mark_started(job, owner=cog.bot.claim_owner, now=clock()):
            log.info("poll %s: another process took over its post", poll.id, extra=extra)
            return
        ready = await schedules.set_deadline(poll.id, now=clock())
        if ready is None:  # cancelled (or posted elsewhere) this very moment
            await cog.jobs.finish(job, outcome=CANCELLED_OUTCOME, now=clock())
            return
        try:
            message = await cog.send_poll_message(channel, ready, nonce=_nonce(ready))
        except discord.HTTPException as error:
            if error.status in (400, 403, 404):
                # Gone or closed to us since the check, or the message refused: the same
                # request can't succeed later.
                await _give_up(cog, poll, f"Discord refused the message ({error.text or error.status})")
                return
            raise  # retried later (`Polls._run_job`)
    posted = await schedules.mark_posted(poll.id, message.id, clock())
    if posted.cancelled:
        await _delete(message, poll)
        log.info("poll %s: cancelled while it was being posted; its message is withdrawn", poll.id, extra=extra)
        return
    if not posted.recorded and posted.poll.message_id != message.id:
        # Another process posted it meanwhile (this send outlived its claim, and that one's
        # search missed it): only the recorded message is kept up to date, so this one goes.
        await _delete(message, poll)
        log.warning("poll %s: posted twice by two processes; the second message is withdrawn", poll.id, extra=extra)
        return
    cog.scheduler.poke()
    _log_posted(poll, message, posted.posting, posted.next_copy)


def _log_posted(poll: Poll, message: discord.Message, posting: Posting | None, next_copy: Poll | None) -> None:
    extra = {"poll_id": poll.id, "guild_id": poll.guild_id}
    following = f"; next copy #{next_copy.number} at {next_copy.starts_at}" if next_copy is not None else ""
    if posting is not None and posting.late:
        # Downtime: the copy due is posted once, now; the grid times that went by meanwhile
        # get no copy of their own. Said here, so that it is never silent.
        log.warning(
            "poll %s (#%s) posted %s late (%d scheduled time(s) passed with no copy of their own)%s",
            poll.id, poll.number, duration_text(int(posting.late_by)), posting.passed_over, following, extra=extra,
        )
    else:
        log.info("poll %s (#%s) posted in message %s%s", poll.id, poll.number, message.id, following, extra=extra)


def _channel_for(cog: Polls, poll: Poll) -> tuple[Any, str]:
    """The channel to post in, or None and why not (said to the creator)."""
    guild = cog.bot.get_guild(poll.guild_id)
    if guild is None:
        return None, "Quorum is no longer in that server"
    channel = guild.get_channel_or_thread(poll.channel_id)
    if channel is None or not isinstance(channel, discord.abc.Messageable):
        return None, "the channel no longer exists"
    mine = channel.permissions_for(guild.me)
    missing = [p for p in BOT_CHANNEL_PERMISSIONS if not getattr(mine, p)]
    # Discord takes the rest away with these two: name only the one to grant.
    for root in ("view_channel", "send_messages"):
        if root in missing:
            missing = [root] if root == "view_channel" else [p for p in missing if p not in _NEEDS_SEND]
            break
    if missing:
        names = ", ".join(p.replace("_", " ").title() for p in missing)
        return None, f"I no longer have the {names} permission there"
    return channel, ""


def _runs_shard_of(cog: Polls, guild_id: int) -> bool:
    """Whether this process's gateway shards include the server's (all of them, unless
    SHARD_IDS picks some)."""
    settings = cog.bot.settings
    if settings.shard_count is None or settings.shard_ids is None:
        return True
    return (guild_id >> 22) % settings.shard_count in settings.shard_ids


async def give_up_post(cog: Polls, job: Job, reason: str) -> None:
    """A post job that failed too often: the poll is given up as when its channel is gone."""
    poll = await cog.service.repo.get(job.poll_id)
    if poll is None:
        await cog.jobs.finish(job, outcome=f"failed: {reason}", now=cog.bot.clock())
        return
    await _give_up(cog, poll, reason)


async def _give_up(cog: Polls, poll: Poll, reason: str) -> None:
    """Not posted, and never will be: the job fails, the poll (and its series) is cancelled,
    it is logged, and the creator is told by DM if Discord lets us."""
    stored = await _schedules(cog).give_up(poll.id, reason=reason, now=cog.bot.clock())
    log.error(
        "poll %s (#%s) could not be posted in channel %s: %s; cancelled",
        poll.id, poll.number, poll.channel_id, reason, extra={"poll_id": poll.id, "guild_id": poll.guild_id},
    )
    if stored is None:
        return  # posted or cancelled meanwhile: nothing to tell
    series = " Its repeats are stopped too." if poll.repeat_every else ""
    text = (
        f"Your scheduled poll #{poll.number} (“{escape(shorten(poll.question, 100))}”) was not posted in "
        f"<#{poll.channel_id}> {timestamp(poll.starts_at or cog.bot.clock(), 'f')}: {reason}.{series} "
        "Ask a server admin to fix that (or pick another channel), then create it again with `/poll create`."
    )
    try:
        user = cog.bot.get_user(poll.creator_id) or await cog.bot.fetch_user(poll.creator_id)
        await user.send(text, allowed_mentions=NO_MENTIONS)
    except discord.HTTPException as error:  # DMs closed, or the user gone: logged, not retried
        log.warning(
            "poll %s: could not tell its creator %s by DM: %s", poll.id, poll.creator_id, error,
            extra={"poll_id": poll.id},
        )


def _custom_ids(components: Iterable[Any]) -> Iterable[str]:
    """Every custom_id in a message's components, however deeply laid out (rows, containers,
    sections' accessories)."""
    for component in components:
        custom_id = getattr(component, "custom_id", None)
        if custom_id:
            yield custom_id
        yield from _custom_ids(getattr(component, "children", None) or ())
        accessory = getattr(component, "accessory", None)
        if accessory is not None:
            yield from _custom_ids((accessory,))


def _is_poll_message(message: discord.Message, poll: Poll) -> bool:
    for custom_id in _custom_ids(message.components):
        match = VOTE_ID.fullmatch(custom_id)
        if match and int(match["poll"]) == poll.id:
            return True
    return False


async def _find_sent(cog: Polls, channel: Any, poll: Poll, job: Job) -> discord.Message | None:
    """A previous attempt may have sent the poll before the process died: look for the bot's
    message carrying this poll's buttons, from a minute before that attempt began."""
    assert cog.bot.user is not None and job.started_at is not None
    since = discord.utils.time_snowflake(datetime.fromtimestamp(job.started_at - 60, UTC))
    try:
        async for message in channel.history(limit=100, after=discord.Object(since)):
            if message.author.id == cog.bot.user.id and _is_poll_message(message, poll):
                log.info("poll %s: found the copy sent before a restart", poll.id, extra={"poll_id": poll.id})
                return message
    except discord.HTTPException as error:
        log.info("poll %s: could not search for an earlier post: %s", poll.id, error, extra={"poll_id": poll.id})
    return None


async def _withdraw(cog: Polls, poll: Poll, job: Job) -> None:
    channel, _ = _channel_for(cog, poll)
    if channel is not None and (message := await _find_sent(cog, channel, poll, job)) is not None:
        await _delete(message, poll)


async def _delete(message: discord.Message, poll: Poll) -> None:
    try:
        await message.delete()
    except discord.HTTPException as error:
        log.warning(
            "poll %s: cancelled, but its message %s could not be deleted: %s", poll.id, message.id, error,
            extra={"poll_id": poll.id},
        )


# ==================================================================== commands


async def list_scheduled(cog: Polls, interaction: discord.Interaction) -> None:
    assert interaction.guild_id is not None
    polls, total = await _schedules(cog).list_scheduled(interaction.guild_id, limit=LIST_LIMIT)
    await interaction.response.send_message(
        embed=embed(scheduled_card(polls, total)), ephemeral=True, allowed_mentions=NO_MENTIONS
    )


async def _find(cog: Polls, guild_id: int, text: str) -> Poll:
    ref = parse_poll_ref(text)
    if ref is None:
        raise PollLookupError("Name the poll by its number (`/poll scheduled` lists them) or a copy's message link.")
    found = None
    if ref.storable and ref.number is not None:
        found = await _schedules(cog).find(guild_id, ref.number)
    elif ref.storable and ref.message_id is not None and ref.guild_id in (None, guild_id):
        found = await cog.service.repo.get_by_message(guild_id, ref.message_id)
    if found is None:
        raise PollLookupError(
            f"There is no poll “{escape(text.strip()[:50])}” in this server. `/poll scheduled` lists the planned ones."
        )
    return found


async def cancel_poll(cog: Polls, interaction: discord.Interaction, poll: str) -> None:
    assert interaction.guild_id is not None
    found = await _find(cog, interaction.guild_id, poll)
    if found.series_id is None and found.message_id is not None:
        raise UserFacingError(
            f"Poll #{found.number} is neither scheduled nor repeating; `/poll close` closes it now."
        )
    if not found.can_manage(interaction.user.id, manage_guild=bool(interaction.permissions.manage_guild)):
        raise NotAllowed("Only the poll's creator or members with Manage Server can cancel it.")
    outcome = await _schedules(cog).cancel(found, interaction.user.id, cog.bot.clock())
    if outcome.status is CancelStatus.ALREADY_CANCELLED:
        raise UserFacingError(f"Poll #{found.number} was already cancelled.")
    if outcome.status is CancelStatus.ALREADY_STOPPED:
        raise UserFacingError(f"Poll #{found.number} no longer repeats: there is no copy left to cancel.")
    if outcome.status is CancelStatus.NOT_SCHEDULED:
        raise UserFacingError(f"Poll #{found.number} is already posted; `/poll close` closes it now.")
    cancelled = outcome.cancelled
    log.info(
        "poll %s (#%s) cancelled by user %s (%s)",
        cancelled.id if cancelled else found.id, cancelled.number if cancelled else found.number,
        interaction.user.id, outcome.status.value, extra={"poll_id": found.id, "guild_id": found.guild_id},
    )
    cog.scheduler.poke()
    await interaction.response.send_message(
        cancel_confirmation(outcome.poll, cancelled, outcome.open_copies),
        ephemeral=True,
        allowed_mentions=NO_MENTIONS,
    )


async def cancel_autocomplete(cog: Polls, interaction: discord.Interaction, current: str) -> list[Any]:
    """`/poll cancel`: the polls still to be posted (for a series, its waiting copy)."""
    if interaction.guild_id is None:
        return []
    polls = await _schedules(cog).search_scheduled(interaction.guild_id, current)
    choices = []
    for p in polls:
        assert p.starts_at is not None
        when = datetime.fromtimestamp(p.starts_at, UTC).strftime("%Y-%m-%d %H:%M UTC")
        repeat = f", every {duration_text(p.repeat_every)}" if p.repeat_every else ""
        # Plain text (choice names render no markdown), so the question is not escaped.
        name = shorten(f"#{p.number} {when}{repeat} · {p.question}", 100)
        choices.append(discord.app_commands.Choice(name=name, value=str(p.number)))
    return choices
