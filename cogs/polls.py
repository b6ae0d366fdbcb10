"""/poll commands and vote clicks: parse, call the poll service, render. No SQL here."""

from __future__ import annotations

import asyncio
import gzip
import io
import logging
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

import discord
from discord import app_commands
from discord.ext import commands

from bot.db import StorageUnavailable
from bot.markdown import escape
from bot.polls.chart import results_chart
from bot.polls.export import ballots_csv, votes_csv
from bot.polls.jobs import MAX_ATTEMPTS, Job, JobKind, JobRepository
from bot.polls.models import MAX_QUESTION_LENGTH, Poll
from bot.polls.render import (
    EMBED_TOTAL,
    announcement,
    poll_card,
    scheduled_confirmation,
    shorten,
    vote_confirmation,
    voters_card,
)
from bot.polls.render_ranked import ranked_announcement, ranked_card
from bot.polls.tally import quorum_met
from bot.polls.validation import build_draft
from bot.polls.when import parse_when
from bot.scheduler import MAX_SLEEP, SHARED_MAX_SLEEP, DeadlineScheduler
from bot.tree import NO_MENTIONS, VOTE_NOT_STORED, UserFacingError, report_error, send_ephemeral

from ._ack import AckWatchdog
from ._ballot import RankButton, RankSelect, open_ballot
from ._checks import postable_channel
from ._layout import fitted_card, poll_layout
from ._poll_controls import CloseButton, ResultsButton
from ._refresh import MessageRefresher
from ._ui import clicked_vote, embed
from .poll_edit import edit_poll
from .poll_reminders import send_reminder
from .poll_schedule import cancel_autocomplete, cancel_poll, give_up_post, list_scheduled, post_scheduled

if TYPE_CHECKING:
    from bot.client import QuorumBot

log = logging.getLogger(__name__)

UPLOAD_LIMIT = 8 * 1024 * 1024
# Polls closed per write, and announcements claimed (and sent concurrently) per round.
CLOSE_BATCH = 500
ANNOUNCE_BATCH = 8
# After a failed announcement, any process may try again this much later.
ANNOUNCE_RETRY = 30.0
# Scheduled posts and reminders claimed (and sent concurrently) per round.
JOB_BATCH = 8


def _manage_guild(interaction: discord.Interaction) -> bool:
    return bool(interaction.permissions.manage_guild)


def _nonce(poll: Poll) -> str:
    # Discord keeps a nonce for a few minutes: a resend after a crash returns the first message.
    return f"quorum-result-{poll.id}"[:25]


class Polls(commands.Cog):
    poll = app_commands.Group(name="poll", description="Button polls whose votes are kept safe", guild_only=True)

    def __init__(self, bot: QuorumBot) -> None:
        self.bot = bot
        self.service = bot.polls
        self.refresher: MessageRefresher[Poll] = MessageRefresher(
            clock=bot.clock, load=self.service.repo.get, edit=self.edit_poll_message
        )
        self.watchdog = AckWatchdog()
        self.jobs = JobRepository(bot.db)
        self.scheduler = DeadlineScheduler(
            next_deadline=self._next_deadline,
            run_due=self.close_due_polls,
            clock=bot.clock,
            name="poll-deadlines",
            max_sleep=SHARED_MAX_SLEEP if bot.db.shared else MAX_SLEEP,
        )
        self._finishing: set[int] = set()
        self._took_back_claims = False
        # Charts get a thread of their own: an announcement never queues behind other work
        # in the loop's default executor.
        self._charts = ThreadPoolExecutor(max_workers=1, thread_name_prefix="quorum-chart")
        self._starter: asyncio.Task[None] | None = None

    async def cog_load(self) -> None:
        # Not VoteButton: `on_interaction` routes answer clicks (see VoteButton).
        self.bot.add_dynamic_items(ResultsButton, CloseButton, RankSelect, RankButton)
        self._starter = asyncio.get_running_loop().create_task(self._start_when_ready())

    async def _start_when_ready(self) -> None:
        # Announcing needs a connected bot; closing overdue polls happens in the same pass.
        await self.bot.wait_until_ready()
        # Announcements this process had claimed before it stopped: take them up now (it
        # looks for the earlier message first) instead of waiting out its own lease.
        await self._take_back_claims()
        self.scheduler.start()

    async def _take_back_claims(self) -> None:
        """Take back the announcements earlier copies of this process had claimed when they
        stopped, once no copy still runs (a rolling restart): until then they are that copy's,
        and this is tried again each time the scheduler looks."""
        if self._took_back_claims:
            return
        try:
            if not await self.bot.db.hold_instance_lock(self.bot.instance_name):
                log.info("another live process runs %s; leaving its announcements to it", self.bot.instance_name)
                return
            await self.service.repo.reclaim_own(instance=self.bot.instance_name, owner=self.bot.claim_owner)
            await self.jobs.reclaim_own(instance=self.bot.instance_name, owner=self.bot.claim_owner)
            self._took_back_claims = True
        except Exception:  # the leases run out by themselves; the scheduler must go on regardless
            log.warning("could not take back this process's earlier announcement claims", exc_info=True)

    async def cog_unload(self) -> None:
        self.bot.remove_dynamic_items(ResultsButton, CloseButton, RankSelect, RankButton)
        if self._starter is not None:
            self._starter.cancel()
        await self.scheduler.stop()
        await self.refresher.stop()
        self.watchdog.stop()
        self._charts.shutdown(wait=False, cancel_futures=True)

    # ================================================================ voting

    @commands.Cog.listener()
    async def on_interaction(self, interaction: discord.Interaction) -> None:
        if (button := clicked_vote(interaction)) is not None:
            await button.callback(interaction)

    async def handle_vote(self, interaction: discord.Interaction, poll_id: int, option: int) -> None:
        if not self.bot.accepting:
            await send_ephemeral(interaction, "Quorum is restarting; your vote was not counted. Try again in a minute.")
            return
        with self.bot.in_flight():
            await self._handle_vote(interaction, poll_id, option)

    async def _handle_vote(self, interaction: discord.Interaction, poll_id: int, option: int) -> None:
        try:
            if await self.service.opens_ballot(poll_id):  # ranked: the click opens a private ballot
                await open_ballot(self, interaction, poll_id, option)
                return
            member = interaction.user
            role_ids = [r.id for r in member.roles] if isinstance(member, discord.Member) else []
            self.watchdog.watch(interaction)
            try:
                poll, outcome = await self.service.vote(poll_id, option, user_id=member.id, role_ids=role_ids)
            except Exception as error:
                await self._take_back_from_watchdog(interaction)
                if isinstance(error, StorageUnavailable):
                    await send_ephemeral(interaction, VOTE_NOT_STORED)
                else:
                    await report_error(interaction, error)
                return
            text = vote_confirmation(poll, outcome.change.value, outcome.option, outcome.choices)
            # Answered only now, after the vote committed (a follow-up if the watchdog deferred).
            await self._take_back_from_watchdog(interaction)
            await send_ephemeral(interaction, text)
            self.refresher.request(poll.id)
        except Exception as error:
            await self._take_back_from_watchdog(interaction)  # no defer racing the apology
            await report_error(interaction, error)
        finally:
            self.watchdog.claim(interaction)  # a click that failed early is no longer watched

    async def _take_back_from_watchdog(self, interaction: discord.Interaction) -> None:
        """Take the click back from the watchdog; if it is deferring it, wait until it has."""
        deferral = self.watchdog.claim(interaction)
        if deferral is not None:
            try:
                await deferral
            except Exception:  # the answer still goes out, as a reply or a follow-up
                log.warning("deferring a slow click failed", exc_info=True)

    # ================================================================ rendering

    async def render_poll(self, poll: Poll) -> discord.ui.LayoutView:
        """The poll message (Components V2): its card, and while open its answer buttons,
        Results and Close. A closed poll has no buttons: its card shows every count."""
        tally = await self.service.repo.tally(poll)
        show = not poll.hide_results or not poll.is_open
        name = self._name_of(poll)
        # A closed ranked poll shows instant-runoff's final round (and its winner).
        runoff = await self.service.runoff(poll) if poll.ranked and not poll.is_open else None
        card = fitted_card(
            lambda budget: ranked_card(poll, tally, show_counts=show, creator_name=name, runoff=runoff, budget=budget)
            if poll.ranked
            else poll_card(poll, tally, show_counts=show, creator_name=name, budget=budget),
            answers=len(poll.options),
        )
        return poll_layout(poll, card, controls=poll.is_open)

    async def send_poll_message(self, channel: discord.abc.Messageable, poll: Poll, **kwargs: Any) -> discord.Message:
        """Post the poll message (`kwargs`: e.g. a nonce); the caller attaches it to the poll."""
        return await channel.send(view=await self.render_poll(poll), allowed_mentions=NO_MENTIONS, **kwargs)

    def _name_of(self, poll: Poll) -> str | None:
        guild = self.bot.get_guild(poll.guild_id)
        member = guild.get_member(poll.creator_id) if guild else None
        return member.display_name if member else None

    async def edit_poll_message(self, poll: Poll) -> None:
        assert poll.message_id is not None
        channel = self.bot.get_partial_messageable(poll.channel_id, guild_id=poll.guild_id)
        message = channel.get_partial_message(poll.message_id)
        # The whole layout each time (V2 text lives in its components). A poll message posted
        # before the layout (an embed) is converted by the same edit: Discord lets an edit set
        # the V2 flag (never unset it) once content and embeds are cleared.
        await message.edit(content=None, embeds=[], view=await self.render_poll(poll), allowed_mentions=NO_MENTIONS)

    # ================================================================ closing

    async def _next_deadline(self) -> float | None:
        # Until it has succeeded, taking back earlier claims is tried on every wake.
        await self._take_back_claims()
        return await self.service.repo.next_deadline(shards=self.bot.settings.own_shards)

    async def close_due_polls(self) -> None:
        """The scheduler's pass: close what is overdue, announce every closed poll this process
        can claim, then send the scheduled posts and reminders that are due. Every process
        sharing the database runs it; the claims make each message exactly one process's job
        (and a dead process's job another's)."""
        repo = self.service.repo
        while True:
            closed = await repo.close_due(self.bot.clock(), limit=CLOSE_BATCH)
            for poll_id in closed:
                log.info("poll %s closed by its deadline", poll_id, extra={"poll_id": poll_id})
            if len(closed) < CLOSE_BATCH:
                break
        while claimed := await repo.claim_announcements(
            owner=self.bot.claim_owner, now=self.bot.clock(), limit=ANNOUNCE_BATCH
        ):
            await asyncio.gather(*(self.finish(poll_id, claimed=True) for poll_id in claimed))
        while jobs := await self.jobs.claim_due(
            owner=self.bot.claim_owner, now=self.bot.clock(), limit=JOB_BATCH, shards=self.bot.settings.own_shards
        ):
            await asyncio.gather(*(self._run_job(job) for job in jobs))

    async def _run_job(self, job: Job) -> None:
        """Send one claimed job's message. A handler records its own outcome (`jobs.finish`)
        and raises to have the job tried again later; after `MAX_ATTEMPTS` it is given up."""
        handler = {JobKind.POST: post_scheduled, JobKind.REMIND: send_reminder}[job.kind]
        give_up = {JobKind.POST: give_up_post, JobKind.REMIND: Polls._give_up_job}[job.kind]
        extra = {"poll_id": job.poll_id}
        try:
            await handler(self, job)
        except StorageUnavailable:
            log.debug("poll %s: the database can't store writes; %s job will retry", job.poll_id, job.kind.value)
        except Exception as error:
            if job.attempts >= MAX_ATTEMPTS:  # the claim counted this attempt
                log.error("poll %s: %s job failed %d times; giving up", job.poll_id, job.kind.value,
                          MAX_ATTEMPTS, exc_info=True, extra=extra)
                try:
                    await give_up(self, job, f"it failed {MAX_ATTEMPTS} times ({error})")
                except Exception:
                    log.warning("poll %s: could not record the failure", job.poll_id, exc_info=True, extra=extra)
                return
            log.warning("poll %s: %s job failed; will retry", job.poll_id, job.kind.value, exc_info=True, extra=extra)
            try:
                await self.jobs.release(job, retry_at=self.bot.clock() + ANNOUNCE_RETRY * (job.attempts + 1))
            except Exception:  # the claim's lease runs out by itself
                log.warning("poll %s: could not schedule the retry", job.poll_id, exc_info=True, extra=extra)

    async def _give_up_job(self, job: Job, reason: str) -> None:
        await self.jobs.finish(job, outcome=f"failed: {reason}", now=self.bot.clock())

    async def finish(self, poll_id: int, *, claimed: bool = False) -> discord.Message | None:
        """Announce a closed poll exactly once and show its final state. Safe to call again,
        from any process: without `claimed`, the announcement is claimed here first."""
        if poll_id in self._finishing:
            return None
        self._finishing.add(poll_id)
        repo = self.service.repo
        try:
            if not claimed and not await repo.claim_announcement(
                poll_id, owner=self.bot.claim_owner, now=self.bot.clock()
            ):
                return None  # announced already, or another process is announcing it
            return await self._finish(poll_id)
        except discord.HTTPException as error:
            if error.status in (400, 403, 404):
                # The channel is gone or closed to us, or Discord refuses the message itself:
                # retrying the same request can't help, so don't try forever.
                log.error(
                    "poll %s: cannot announce the result (%s); giving up", poll_id, error, extra={"poll_id": poll_id}
                )
                await repo.mark_announced(poll_id, message_id=None, now=self.bot.clock())
            else:
                log.warning("poll %s: announcing failed (%s); will retry", poll_id, error, extra={"poll_id": poll_id})
                await self._retry_later(poll_id)
            return None
        except StorageUnavailable:  # the database logged the incident once already
            log.debug("poll %s: the database can't store writes; will retry", poll_id, extra={"poll_id": poll_id})
            return None
        except Exception:
            log.exception("poll %s: announcing failed; will retry", poll_id, extra={"poll_id": poll_id})
            await self._retry_later(poll_id)
            return None
        finally:
            self._finishing.discard(poll_id)

    async def _retry_later(self, poll_id: int) -> None:
        try:
            await self.service.repo.release_announcement(poll_id, retry_at=self.bot.clock() + ANNOUNCE_RETRY)
        except Exception:  # the claim's lease runs out by itself
            log.warning("poll %s: could not schedule the retry", poll_id, exc_info=True, extra={"poll_id": poll_id})

    async def _finish(self, poll_id: int) -> discord.Message | None:
        repo = self.service.repo
        poll = await repo.get(poll_id)
        if poll is None or poll.is_open or poll.announced_at is not None or poll.message_id is None:
            return None
        try:
            await self.edit_poll_message(poll)  # closed: its final state, without buttons
        except discord.HTTPException as error:
            log.info(
                "poll %s: could not show the final state on its message: %s", poll_id, error, extra={"poll_id": poll_id}
            )
        channel = self.bot.get_partial_messageable(poll.channel_id, guild_id=poll.guild_id)
        message = None
        if poll.announce_started_at is not None:
            # A previous attempt may have sent it before the process died: look before resending.
            message = await self._find_announcement(channel, poll)
        if message is None:
            if not await repo.mark_announce_started(poll.id, owner=self.bot.claim_owner, now=self.bot.clock()):
                log.info("poll %s: another process took over the announcement", poll_id, extra={"poll_id": poll_id})
                return None
            message = await self._send_announcement(channel, poll)
        await repo.mark_announced(poll.id, message_id=message.id, now=self.bot.clock())
        log.info("poll %s: result announced in message %s", poll_id, message.id, extra={"poll_id": poll_id})
        return message

    async def _send_announcement(self, channel: discord.PartialMessageable, poll: Poll) -> discord.Message:
        left_out = poll.removed
        if poll.ranked:  # every round of the instant-runoff; the chart shows the final one
            runoff = await self.service.runoff(poll)
            tally = runoff.final_tally(len(poll.options))
            left_out = frozenset(range(len(poll.options))) - set(runoff.final.counts if runoff.final else poll.shown)
            rendered = ranked_announcement(poll, runoff, chart_filename="results.png")
        else:
            tally = await self.service.repo.tally(poll)
            rendered = announcement(poll, tally, chart_filename="results.png")
        png = await asyncio.get_running_loop().run_in_executor(
            # Removed answers left out; a missed quorum colours no bar as the winner's.
            self._charts, results_chart, poll.question, poll.options, tally, left_out,
            quorum_met(poll.quorum, tally.voters),
        )
        assert poll.message_id is not None
        return await channel.send(
            rendered.content,
            embeds=[embed(card) for card in rendered.cards],
            file=discord.File(io.BytesIO(png), filename="results.png"),
            reference=discord.MessageReference(
                message_id=poll.message_id, channel_id=poll.channel_id, fail_if_not_exists=False
            ),
            mention_author=False,
            allowed_mentions=NO_MENTIONS,
            nonce=_nonce(poll),
        )

    async def _find_announcement(self, channel: discord.PartialMessageable, poll: Poll) -> discord.Message | None:
        assert self.bot.user is not None and poll.message_id is not None
        # From a minute before the first attempt began, not from the poll: a busy channel may
        # hold more than one page of messages between the poll and its announcement.
        assert poll.announce_started_at is not None
        since = discord.utils.time_snowflake(datetime.fromtimestamp(poll.announce_started_at - 60, UTC))
        try:
            async for message in channel.history(limit=100, after=discord.Object(max(since, poll.message_id))):
                if (
                    message.author.id == self.bot.user.id
                    and message.reference is not None
                    and message.reference.message_id == poll.message_id
                ):
                    return message
        except discord.HTTPException as error:
            log.info(
                "poll %s: could not search for an earlier announcement: %s", poll.id, error, extra={"poll_id": poll.id}
            )
        return None

    # ================================================================ commands

    async def _poll_autocomplete(
        self, interaction: discord.Interaction, current: str
    ) -> list[app_commands.Choice[str]]:
        if interaction.guild_id is None:
            return []
        polls = await self.service.repo.search(interaction.guild_id, current)
        return [
            app_commands.Choice(
                name=shorten(f"#{p.number} {'' if p.is_open else '(closed) '}{p.question}", 100),
                value=str(p.number),
            )
            for p in polls
        ]

    @poll.command(name="create", description="Start a button poll")
    @app_commands.describe(
        question="What to ask (up to 300 characters)",
        options="2 to 25 answers separated by | (for example: Yes | No | Maybe)",
        duration="How long it stays open: 30m, 2h, 1d, 1h30m, 1w … (default: until closed)",
        multiple="Let members pick several answers",
        anonymous="Nobody, you included, can see who voted for what",
        channel="Post the poll in this channel instead of here",
        role="Only members with this role may vote",
        max_choices="With multiple: at most this many answers per member",
        hide_results="Hide the counts until the poll closes",
        ranked="Members rank the answers; counted by instant-runoff (not with multiple)",
        quorum="The fewest voters for the result to stand",
        starts="Post it later: 2h, 1d, 2026-12-24 18:00 +01:00 or <t:1766595600>",
        repeat="Post a new copy this often (at least 1h): 1d, 1w … (needs duration)",
        remind="Remind the channel this long before it closes: 1h, 1d … (needs duration)",
    )
    async def create(
        self,
        interaction: discord.Interaction,
        question: app_commands.Range[str, 1, MAX_QUESTION_LENGTH],
        options: app_commands.Range[str, 1, 6000],
        duration: app_commands.Range[str, 1, 40] | None = None,
        multiple: bool = False,
        anonymous: bool = False,
        channel: discord.TextChannel | None = None,
        role: discord.Role | None = None,
        max_choices: app_commands.Range[int, 1, 25] | None = None,
        hide_results: bool = False,
        ranked: bool = False,
        quorum: app_commands.Range[int, 1, 1_000_000] | None = None,
        starts: app_commands.Range[str, 1, 60] | None = None,
        repeat: app_commands.Range[str, 1, 40] | None = None,
        remind: app_commands.Range[str, 1, 40] | None = None,
    ) -> None:
        starts_at = parse_when(starts, now=self.bot.clock()) if starts is not None else None
        draft = build_draft(
            question=question,
            options=options,
            duration=duration,
            multiple=multiple,
            anonymous=anonymous,
            hide_results=hide_results,
            role_id=role.id if role is not None else None,
            max_choices=max_choices,
            ranked=ranked,
            quorum=quorum,
            remind=remind,
            starts_at=starts_at,
            repeat=repeat,
        )
        assert interaction.guild is not None
        target = postable_channel(interaction, channel, what="a poll")
        assert isinstance(target, discord.abc.Messageable)

        await interaction.response.defer(ephemeral=True, thinking=True)
        poll = await self.service.create(
            draft, guild_id=interaction.guild.id, channel_id=target.id, creator_id=interaction.user.id
        )
        if poll.starts_at is not None:
            # Checked again when it is posted (the channel, the bot's permissions).
            self.scheduler.poke()
            log.info(
                "poll %s (#%s) scheduled in guild %s channel %s for %s",
                poll.id, poll.number, poll.guild_id, target.id, poll.starts_at,
                extra={"poll_id": poll.id, "guild_id": poll.guild_id},
            )
            await interaction.followup.send(
                scheduled_confirmation(poll, channel_mention=target.mention),
                ephemeral=True,
                allowed_mentions=NO_MENTIONS,
            )
            return
        try:
            message = await self.send_poll_message(target, poll)
        except discord.HTTPException as error:
            await self.service.repo.discard_unposted(poll.id)
            raise UserFacingError(
                f"Discord refused the poll message ({error.text or error.status}); nothing was posted."
            ) from error
        await self.service.repo.attach_message(poll.id, message.id)
        self.scheduler.poke()
        log.info(
            "poll %s (#%s) created in guild %s channel %s",
            poll.id,
            poll.number,
            poll.guild_id,
            target.id,
            extra={"poll_id": poll.id, "guild_id": poll.guild_id},
        )
        await interaction.followup.send(
            f"Poll #{poll.number} is up: {message.jump_url}", ephemeral=True, allowed_mentions=NO_MENTIONS
        )

    @poll.command(name="close", description="Close a poll now and announce the result")
    @app_commands.describe(poll="The poll's number, message id or message link")
    @app_commands.autocomplete(poll=_poll_autocomplete)
    async def close(self, interaction: discord.Interaction, poll: str) -> None:
        assert interaction.guild_id is not None
        await self.close_poll(interaction, await self.service.find(interaction.guild_id, poll))

    async def close_poll(self, interaction: discord.Interaction, found: Poll) -> None:
        """`/poll close` and the Close button: close now (creator or Manage Server), announce
        the result once, tell the member where it is."""
        if not found.is_open:
            raise UserFacingError(f"Poll #{found.number} is already closed.")
        await interaction.response.defer(ephemeral=True, thinking=True)
        if not await self.service.close(found, user_id=interaction.user.id, manage_guild=_manage_guild(interaction)):
            raise UserFacingError(f"Poll #{found.number} is already closed.")
        log.info("poll %s closed by user %s", found.id, interaction.user.id, extra={"poll_id": found.id})
        message = await self.finish(found.id)
        where = f" The result is posted: {message.jump_url}" if message else ""
        await interaction.followup.send(
            f"Poll #{found.number} is closed.{where}", ephemeral=True, allowed_mentions=NO_MENTIONS
        )
        self.scheduler.poke()

    @poll.command(name="results", description="See a poll's current counts (only you see them)")
    @app_commands.describe(poll="The poll's number, message id or message link")
    @app_commands.autocomplete(poll=_poll_autocomplete)
    async def results(self, interaction: discord.Interaction, poll: str) -> None:
        assert interaction.guild_id is not None
        await self.show_results(interaction, await self.service.find(interaction.guild_id, poll))

    async def show_results(self, interaction: discord.Interaction, found: Poll) -> None:
        """`/poll results` and the Results button: the counts, privately, as far as this member
        may see them; who voted too, for the poll's managers of a public poll."""
        manager = found.can_manage(interaction.user.id, manage_guild=_manage_guild(interaction))
        visible = found.results_visible_to(interaction.user.id, manage_guild=_manage_guild(interaction))
        tally = await self.service.repo.tally(found)
        if found.ranked:  # first preferences while open; closed, instant-runoff's final round
            runoff = None if found.is_open else await self.service.runoff(found)
            card = ranked_card(found, tally, show_counts=visible, creator_name=self._name_of(found), runoff=runoff)
        else:
            card = poll_card(found, tally, show_counts=visible, creator_name=self._name_of(found))
        embeds = [embed(card)]
        content = None if visible else "The counts of this poll stay hidden until it closes."
        if manager and not found.anonymous:
            voters = await self.service.repo.voters_by_option(found)
            listing = voters_card(found, voters, budget=EMBED_TOTAL - card.size, counts=tally.counts)
            if listing is not None:
                embeds.append(embed(listing))
        await interaction.response.send_message(content, embeds=embeds, ephemeral=True, allowed_mentions=NO_MENTIONS)

    @poll.command(name="list", description="List this server's open polls (only you see it)")
    async def list_(self, interaction: discord.Interaction) -> None:
        assert interaction.guild_id is not None
        polls = await self.service.repo.list_open(interaction.guild_id, limit=101)
        if not polls:
            await send_ephemeral(interaction, "There are no open polls in this server. Start one with `/poll create`.")
            return
        lines: list[str] = []
        length = 0
        for shown, p in enumerate(polls):
            url = f"https://discord.com/channels/{p.guild_id}/{p.channel_id}/{p.message_id}"
            when = f"closes <t:{int(p.closes_at)}:R>" if p.closes_at else "no deadline"
            # Only Quorum's own text is a link: a question could otherwise break out of it.
            line = f"**[#{p.number}]({url})** {escape(shorten(p.question, 90))} · {when}"
            if length + len(line) + 1 > 3900:
                lines.append(f"…and {len(polls) - shown} more.")
                break
            lines.append(line)
            length += len(line) + 1
        result = discord.Embed(title="Open polls", description="\n".join(lines), color=0x5865F2)
        await interaction.response.send_message(embed=result, ephemeral=True, allowed_mentions=NO_MENTIONS)

    @poll.command(name="export", description="Download a poll's votes as CSV (only you see it)")
    @app_commands.describe(poll="The poll's number, message id or message link")
    @app_commands.autocomplete(poll=_poll_autocomplete)
    async def export(self, interaction: discord.Interaction, poll: str) -> None:
        assert interaction.guild_id is not None
        found = await self.service.find(interaction.guild_id, poll)
        self.service.require_manager(
            found, user_id=interaction.user.id, manage_guild=_manage_guild(interaction), action="export its votes"
        )
        await interaction.response.defer(ephemeral=True, thinking=True)
        if found.ranked:  # one row per ballot, with its ranking
            data = ballots_csv(found, await self.service.ballots.ballots(found.id))
            filename, what, rows = f"poll-{found.number}-ballots.csv", "Ballots", "one row per ballot"
        else:
            data = votes_csv(found, await self.service.repo.votes(found.id))
            filename, what, rows = f"poll-{found.number}-votes.csv", "Votes", "one row per vote"
        if len(data) > UPLOAD_LIMIT:  # too big to upload as it is; CSV compresses ~10×
            data, filename = gzip.compress(data), filename + ".gz"
        note = " Voters are not included: the poll is anonymous." if found.anonymous else ""
        await interaction.followup.send(
            f"{what} of poll #{found.number} (**{escape(shorten(found.question, 100))}**), {rows}.{note}",
            file=discord.File(io.BytesIO(data), filename=filename),
            ephemeral=True,
            allowed_mentions=NO_MENTIONS,
        )

    @poll.command(name="edit", description="Change an open poll: question, answers, deadline")
    @app_commands.describe(
        poll="The poll's number, message id or message link",
        question="A new question (only before the first vote)",
        add_options="Answers to add, separated by | (up to 25 in all)",
        remove_option="The number of an answer to remove (only if nobody voted for it)",
        duration="A new deadline, from now: 30m, 2h, 1d …",
    )
    @app_commands.autocomplete(poll=_poll_autocomplete)
    async def edit(
        self,
        interaction: discord.Interaction,
        poll: str,
        question: app_commands.Range[str, 1, MAX_QUESTION_LENGTH] | None = None,
        add_options: app_commands.Range[str, 1, 6000] | None = None,
        remove_option: app_commands.Range[int, 1, 25] | None = None,
        duration: app_commands.Range[str, 1, 40] | None = None,
    ) -> None:
        await edit_poll(
            self, interaction, poll,
            question=question, add_options=add_options, remove_option=remove_option, duration=duration,
        )

    @poll.command(name="scheduled", description="This server's scheduled and repeating polls (only you see it)")
    async def scheduled(self, interaction: discord.Interaction) -> None:
        await list_scheduled(self, interaction)

    @poll.command(name="cancel", description="Cancel a scheduled poll or stop a repeating one")
    @app_commands.describe(poll="The scheduled poll's number, or any copy of a repeating poll")
    async def cancel(self, interaction: discord.Interaction, poll: str) -> None:
        await cancel_poll(self, interaction, poll)

    @cancel.autocomplete("poll")
    async def _cancel_autocomplete(
        self, interaction: discord.Interaction, current: str
    ) -> list[app_commands.Choice[str]]:
        return await cancel_autocomplete(self, interaction, current)


async def setup(bot: QuorumBot) -> None:
    await bot.add_cog(Polls(bot))
