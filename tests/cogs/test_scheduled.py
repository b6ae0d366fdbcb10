"""Scheduled and repeating polls through discord.py's real machinery (SimCord), in virtual time,
on both backends: posting at the time, /poll scheduled, /poll cancel, restarts and downtime."""

from __future__ import annotations

import logging
import re

import discord
import pytest
from simcord.backend.models.channel import Overwrite
from simcord.enums import OverwriteType
from test_polls import Card, World, buttons, card_text, poll_messages, public, reply_text, user_errors

from bot.polls.jobs import JobRepository
from bot.polls.models import PollDraft
from bot.polls.schedules import ScheduleRepository

HOUR = 3600
DAY = 24 * HOUR


class Scheduled(World):
    def __init__(self, env) -> None:
        super().__init__(env)
        self.creator_user = env.create_user("carol")
        self.carol = self.guild.add_member(self.creator_user)

    @property
    def schedules(self) -> ScheduleRepository:
        return ScheduleRepository(self.env.bot.db)

    async def poll(self, number: int):
        return await self.schedules.find(self.guild.id, number)

    def now(self) -> float:
        return self.env.bot.clock()


@pytest.fixture
def world(env) -> Scheduled:
    return Scheduled(env)


def number_of(message: discord.Message) -> int:
    match = re.search(r"Poll #(\d+)", Card.of(message).title)
    assert match, Card.of(message).title
    return int(match[1])


def _posts(env) -> list:
    return [r for r in env.http_requests if r.method == "POST" and r.path.endswith("/messages")]


def dms(user) -> list[discord.Message]:
    return [m for m in user.dm_channel.history() if m.author.bot]


# ------------------------------------------------------------------------ scheduled polls


async def test_a_scheduled_poll_appears_at_its_time_and_not_before(world):
    start = int(world.now()) + 2 * HOUR
    result = await world.create(world.carol, starts="2h", duration="1h")
    told = reply_text(result)
    assert result.ephemeral
    assert f"Poll #1 will appear in {world.general.mention} <t:{start}:F> (<t:{start}:R>)" in told
    assert public(world.general) == []
    await world.advance(2 * HOUR - 60)
    assert public(world.general) == []
    await world.advance(61)
    [message] = poll_messages(world.general)
    assert number_of(message) == 1
    poll = await world.poll(1)
    assert poll.message_id == message.id and poll.closes_at == pytest.approx(start + HOUR, abs=2)
    assert f"<t:{int(poll.closes_at)}:R>" in card_text(message)  # the deadline it really has
    assert [b.custom_id for b in buttons(message)] == [f"quorum:vote:{poll.id}:{i}" for i in range(4)]
    vote = await world.alice.click(message, custom_id=f"quorum:vote:{poll.id}:2")
    assert "Your vote" in reply_text(vote)
    await world.advance(HOUR + 5)
    results = [m for m in public(world.general) if "Results of poll #1" in card_text(m)]
    assert len(results) == 1
    await world.advance(3 * HOUR)
    assert len(poll_messages(world.general)) == 1  # posted once, never again


async def test_a_scheduled_poll_at_an_absolute_time_in_another_channel(world):
    news = world.guild.create_text_channel("news")
    start = int(world.now()) + 5 * HOUR
    result = await world.create(world.carol, starts=f"<t:{start}:F>", duration="30m", channel=news)
    assert f"Poll #1 will appear in {news.mention} <t:{start}:F>" in reply_text(result)
    await world.advance(5 * HOUR - 2)
    assert poll_messages(news) == []
    await world.advance(4)
    assert len(poll_messages(news)) == 1 and poll_messages(world.general) == []


async def test_a_poll_created_meanwhile_takes_the_next_number_after_the_scheduled_one(world):
    await world.create(world.carol, starts="1h", duration="1h")
    now_result = await world.create(world.mod)
    assert "Poll #2 is up" in reply_text(now_result)
    await world.advance(HOUR + 2)
    assert sorted(number_of(m) for m in poll_messages(world.general)) == [1, 2]


async def test_bad_start_times_are_refused_privately(world):
    for starts, expect in (("2026-12-24 18:00", "no UTC offset"), ("<t:1000>", "already passed"),
                           ("999d", "at most a year ahead"), ("whenever", "not a start time")):
        result = await world.create(world.carol, starts=starts, duration="1h")
        assert result.ephemeral and expect in reply_text(result)
    result = await world.create(world.carol, repeat="1d")
    assert "needs a `duration`" in reply_text(result)
    result = await world.create(world.carol, repeat="30m", duration="10m")
    assert "at most every hour" in reply_text(result)
    assert public(world.general) == []
    assert user_errors(world.env)


# ------------------------------------------------------------------------ /poll scheduled


async def test_poll_scheduled_lists_what_is_planned_with_next_times(world):
    empty = await world.carol.slash(world.general, "poll scheduled")
    assert empty.ephemeral and "Nothing is scheduled" in empty.response.embeds[0].description
    news = world.guild.create_text_channel("news")
    await world.create(world.carol, question="Lunch **where**?", starts="3h", duration="1h", channel=news)
    await world.create(world.mod, starts="1h", duration="1h", repeat="1d")
    start = int(world.now()) + HOUR
    listed = await world.alice.slash(world.general, "poll scheduled")
    assert listed.ephemeral
    text = listed.response.embeds[0].description
    first, second = text.split("\n**#")
    assert first.startswith("**#2**") and f"<t:{start}:F> (<t:{start}:R>)" in first
    assert "every 1 day" in first and f"<@{world.mod.id}>" in first and world.general.mention in first
    assert second.startswith("1**") and "Lunch \\*\\*where\\*\\*?" in second and news.mention in second
    assert f"<@{world.carol.id}>" in second and "every" not in second


async def test_poll_scheduled_with_hundreds_of_polls_stays_within_embed_limits(world):
    service = world.env.bot.polls
    for i in range(260):
        await service.create(
            PollDraft(question=f"Question {i} " + "*" * 250, options=("a", "b"), duration=HOUR,
                      starts_at=world.now() + HOUR + i),
            guild_id=world.guild.id, channel_id=world.general.id, creator_id=world.carol.id,
        )
    listed = await world.mod.slash(world.general, "poll scheduled")
    embed = listed.response.embeds[0]
    assert len(embed) <= 6000 and len(embed.description) <= 4096
    shown = embed.description.count("\n**#") + 1
    assert f"…and {260 - shown} more." in embed.description
    assert 5 < shown < 260


# ------------------------------------------------------------------------ /poll cancel


async def test_the_creator_cancels_a_scheduled_poll_and_it_never_appears(world):
    await world.create(world.carol, starts="2h", duration="1h")
    result = await world.carol.slash(world.general, "poll cancel", poll="1")
    assert result.ephemeral and reply_text(result) == "Poll #1 is cancelled; it will not be posted."
    poll = await world.poll(1)
    assert poll.cancelled_by == world.carol.id
    listed = await world.carol.slash(world.general, "poll scheduled")
    assert "Nothing is scheduled" in listed.response.embeds[0].description
    await world.advance(3 * HOUR)
    assert public(world.general) == []
    again = await world.carol.slash(world.general, "poll cancel", poll="#1")
    assert "already cancelled" in reply_text(again)
    user_errors(world.env)


async def test_manage_server_may_cancel_others_may_not(world):
    await world.create(world.carol, starts="2h", duration="1h")
    refused = await world.alice.slash(world.general, "poll cancel", poll="1")
    assert refused.ephemeral and "Only the poll's creator or members with Manage Server" in reply_text(refused)
    assert (await world.poll(1)).cancelled_at is None
    done = await world.mod.slash(world.general, "poll cancel", poll="1")
    assert "Poll #1 is cancelled" in reply_text(done)
    assert (await world.poll(1)).cancelled_by == world.mod.id
    user_errors(world.env)


async def test_cancel_refuses_unknown_and_ordinary_polls(world):
    await world.seed_poll()
    ordinary = await world.mod.slash(world.general, "poll cancel", poll="1")
    assert "neither scheduled nor repeating" in reply_text(ordinary)
    unknown = await world.mod.slash(world.general, "poll cancel", poll="42")
    assert "There is no poll “42”" in reply_text(unknown)
    garbage = await world.mod.slash(world.general, "poll cancel", poll="lunch")
    assert "Name the poll by its number" in reply_text(garbage)
    assert len(user_errors(world.env)) == 3


async def test_cancel_autocomplete_offers_scheduled_polls_and_series(world):
    await world.create(world.carol, question="Retro?", starts="2h", duration="1h")
    await world.create(world.carol, question="Standup?", duration="1h", repeat="1d")  # copy 1 now, #3 waits
    await world.create(world.carol, question="Now")
    choices = await world.carol.autocomplete(world.general, "poll cancel", "poll", "")
    assert [c["value"] for c in choices] == ["1", "3"]
    assert "Retro?" in choices[0]["name"] and "every 1 day" in choices[1]["name"] and "UTC" in choices[1]["name"]
    stand = await world.carol.autocomplete(world.general, "poll cancel", "poll", "stand")
    assert [c["value"] for c in stand] == ["3"]


# ------------------------------------------------------------------------ repeating polls


async def test_a_repeating_poll_posts_copies_with_their_own_numbers_deadlines_and_votes(world):
    # Hourly (the shortest repeat), so that virtual time passes quickly; a day works the same.
    start = world.now()
    result = await world.create(world.carol, duration="30m", repeat="1h")
    assert "Poll #1 is up" in reply_text(result)
    [first] = poll_messages(world.general)
    copy1 = await world.poll(1)
    await world.alice.click(first, custom_id=f"quorum:vote:{copy1.id}:0")
    await world.create(world.mod, question="Unrelated?", options="a | b")  # #3: #2 is the waiting copy
    await world.advance(HOUR - 5)
    assert [number_of(m) for m in poll_messages(world.general)] == [1, 3]
    await world.advance(10)
    second = poll_messages(world.general)[-1]
    assert number_of(second) == 2
    copy2 = await world.poll(2)
    assert copy2.series_id == copy1.id and copy2.series_copy == 2
    assert copy2.starts_at == pytest.approx(start + HOUR, abs=1)
    assert copy2.closes_at == pytest.approx(start + HOUR + 30 * 60, abs=2)
    await world.bob.click(second, custom_id=f"quorum:vote:{copy2.id}:1")
    await world.bob.click(second, custom_id=f"quorum:vote:{copy2.id}:1")
    await world.alice.click(second, custom_id=f"quorum:vote:{copy2.id}:3")
    assert (await world.db.tally(copy1)).counts == (1, 0, 0, 0)
    assert (await world.db.tally(copy2)).counts == (0, 0, 0, 1)
    assert (await world.db.get(copy1.id)).closed_at is not None  # by its own deadline
    assert any("Results of poll #1" in card_text(m) for m in public(world.general))
    await world.advance(HOUR)
    third = poll_messages(world.general)[-1]
    assert number_of(third) == 4  # the copy made when #2 was posted
    copy3 = await world.poll(4)
    assert (copy3.series_copy, copy3.starts_at) == (3, pytest.approx(start + 2 * HOUR, abs=1))
    assert (await world.db.tally(copy3)).counts == (0, 0, 0, 0)
    listed = await world.carol.slash(world.general, "poll scheduled")
    assert listed.response.embeds[0].description.startswith("**#5** (copy 4)")
    assert "every 1 hour" in listed.response.embeds[0].description


async def test_stopping_a_series_by_a_posted_copy_keeps_that_copy_open(world):
    await world.create(world.carol, duration="30m", repeat="1h")
    await world.advance(HOUR + 2)
    assert [number_of(m) for m in poll_messages(world.general)] == [1, 2]
    copy2 = await world.poll(2)
    result = await world.carol.slash(world.general, "poll cancel", poll="1")
    told = reply_text(result)
    assert told.startswith("Poll #1 repeats no more: its next copy (#3, due <t:")
    assert f"Copy #2 stays open until its deadline (<t:{int(copy2.closes_at)}:R>)." in told
    assert (await world.db.get(copy2.id)).is_open
    await world.advance(3 * HOUR)
    assert [number_of(m) for m in poll_messages(world.general)] == [1, 2]
    assert any("Results of poll #2" in card_text(m) for m in public(world.general))
    stopped = await world.carol.slash(world.general, "poll cancel", poll="2")
    assert "no longer repeats" in reply_text(stopped)
    user_errors(world.env)


async def test_stopping_a_series_by_its_waiting_copy(world):
    await world.create(world.carol, duration="30m", repeat="1h")
    result = await world.mod.slash(world.general, "poll cancel", poll="2")
    assert reply_text(result).startswith("Poll #2 is cancelled and its series repeats no more.")
    assert "Copy #1 stays open until its deadline" in reply_text(result)
    await world.advance(2 * HOUR)
    assert [number_of(m) for m in poll_messages(world.general)] == [1]


# ------------------------------------------------------------------------ restarts and downtime


async def test_a_restart_before_the_time_posts_it_once(world, make_bot):
    await world.create(world.carol, starts="2h", duration="1h")
    await world.advance(HOUR)
    await world.env.restart_bot(make_bot())
    assert public(world.general) == []
    await world.advance(HOUR + 2)
    await world.env.restart_bot(make_bot())
    await world.advance(600)
    assert len(poll_messages(world.general)) == 1


async def test_a_crash_after_sending_but_before_recording_does_not_post_twice(world, make_bot):
    """What a crash between the send and `mark_posted` leaves: the message is in the channel,
    the post job started and unfinished, the poll without its message (nor its next copy)."""
    await world.create(world.carol, starts="1h", duration="30m", repeat="1h")
    await world.advance(HOUR + 2)
    [message] = poll_messages(world.general)
    poll = await world.poll(1)
    started = await world.env.bot.db.fetchval(
        "SELECT started_at FROM poll_jobs WHERE poll_id = ? AND kind = 'post'", (poll.id,)
    )
    assert started is not None

    def crash(conn):
        conn.execute("DELETE FROM polls WHERE series_id = ? AND series_copy = 2", (poll.id,))
        conn.execute("DELETE FROM poll_jobs WHERE poll_id = ? AND kind = 'remind'", (poll.id,))
        conn.execute("UPDATE polls SET message_id = NULL WHERE id = ?", (poll.id,))
        conn.execute(
            "UPDATE poll_jobs SET done_at = NULL, outcome = NULL, message_id = NULL, claim_until = NULL"
            " WHERE poll_id = ? AND kind = 'post'",
            (poll.id,),
        )

    await world.env.bot.db.write(crash)
    sent_before = len(_posts(world.env))
    await world.env.restart_bot(make_bot())
    await world.advance(5)
    assert len(_posts(world.env)) == sent_before, "found, not sent again"
    assert [m.id for m in poll_messages(world.general)] == [message.id]
    stored = await world.poll(1)
    assert stored.message_id == message.id and stored.closes_at == poll.closes_at
    copies = (await world.schedules.list_scheduled(world.guild.id))[0]
    assert [(p.series_copy, p.starts_at) for p in copies] == [(2, poll.starts_at + HOUR)]
    outcome = await world.env.bot.db.fetchone(
        "SELECT outcome, message_id, attempts FROM poll_jobs WHERE poll_id = ? AND kind = 'post'", (poll.id,)
    )
    # Two claims (before and after the crash), each counted as an attempt; the second found
    # the message, so nothing was sent twice (checked above).
    assert tuple(outcome) == ("sent", message.id, 2)


async def test_a_post_started_by_a_dead_process_is_taken_over_and_sent_once(world, make_bot):
    """A process claimed and started the post, then died before sending: the next one to get
    the job finds nothing in the channel and sends it, once."""
    await world.create(world.carol, starts="1h", duration="2h")
    poll = await world.poll(1)
    jobs = JobRepository(world.env.bot.db)
    [job] = await jobs.claim_due(owner="other-process/dead", now=poll.starts_at, limit=5)
    assert await jobs.mark_started(job, owner="other-process/dead", now=poll.starts_at)
    await world.advance(HOUR + 2)
    assert public(world.general) == []  # the dead process's lease still holds it
    await world.advance(130)
    assert len(poll_messages(world.general)) == 1
    await world.env.restart_bot(make_bot())
    await world.advance(600)
    assert len(poll_messages(world.general)) == 1


async def test_downtime_across_three_intervals_posts_one_copy_then_keeps_to_the_grid(world, make_bot, clock, caplog):
    start = world.now()
    await world.create(world.carol, duration="30m", repeat="1h")
    assert [number_of(m) for m in poll_messages(world.general)] == [1]
    # Down from just before copy 2's time until three more grid times have passed, and 20 minutes.
    await world.advance(HOUR - 60)
    clock.offset += 3 * HOUR + 20 * 60 + 60
    with caplog.at_level(logging.WARNING, logger="cogs.poll_schedule"):
        await world.env.restart_bot(make_bot())
        await world.advance(2)
    assert [number_of(m) for m in poll_messages(world.general)] == [1, 2]  # one copy, not four
    late = [r for r in caplog.records if "posted" in r.getMessage() and "late" in r.getMessage()]
    assert len(late) == 1 and "3 scheduled time(s) passed" in late[0].getMessage()
    assert "3 hours 20 minutes late" in late[0].getMessage()
    copy2 = await world.poll(2)
    assert copy2.closes_at == pytest.approx(world.now() + 30 * 60 - 2, abs=3)
    copy3 = await world.poll(3)
    assert copy3.starts_at == pytest.approx(start + 5 * HOUR, abs=1)  # the grid, not "an hour after coming back"
    await world.advance(start + 5 * HOUR - world.now() - 5)
    assert [number_of(m) for m in poll_messages(world.general)] == [1, 2]
    await world.advance(10)
    assert [number_of(m) for m in poll_messages(world.general)] == [1, 2, 3]
    assert any("Results of poll #1" in card_text(m) for m in public(world.general))
    assert any("Results of poll #2" in card_text(m) for m in public(world.general))


# ------------------------------------------------------------------------ checked again when posted


async def test_a_deleted_channel_means_nothing_is_posted_and_the_creator_is_told(world, caplog):
    news = world.guild.create_text_channel("news")
    await world.create(world.carol, starts="1h", duration="1h", repeat="1d", channel=news)
    world.env.backend.delete_channel(news.id)
    await world.env.settle()
    with caplog.at_level(logging.ERROR, logger="cogs.poll_schedule"):
        await world.advance(HOUR + 2)
    assert public(world.general) == []
    [dm] = dms(world.creator_user)
    assert "Your scheduled poll #1" in dm.content and "the channel no longer exists" in dm.content
    assert "Its repeats are stopped too" in dm.content and "/poll create" in dm.content
    assert any("could not be posted" in r.getMessage() for r in caplog.records)
    poll = await world.poll(1)
    assert poll.cancelled_at is not None and poll.message_id is None
    outcome = await world.env.bot.db.fetchval(
        "SELECT outcome FROM poll_jobs WHERE poll_id = ? AND kind = 'post'", (poll.id,)
    )
    assert outcome == "failed: the channel no longer exists"
    await world.advance(3 * HOUR)
    assert len(dms(world.creator_user)) == 1  # told once
    assert (await world.schedules.list_scheduled(world.guild.id))[1] == 0


async def test_a_permission_removed_before_the_time_means_nothing_is_posted(world):
    await world.create(world.carol, starts="1h", duration="1h")
    me = world.env.bot.user.id
    world.env.backend.set_overwrite(
        world.general.id,
        Overwrite(target_id=me, type=OverwriteType.MEMBER, deny=discord.Permissions(send_messages=True).value),
    )
    await world.env.settle()
    await world.advance(HOUR + 2)
    assert public(world.general) == []
    [dm] = dms(world.creator_user)
    assert "I no longer have the Send Messages permission there" in dm.content
    assert world.general.mention in dm.content


async def test_a_dm_that_fails_is_logged_not_retried(world, caplog):
    await world.create(world.carol, starts="1h", duration="1h")
    world.env.backend.delete_channel(world.general.id)
    await world.env.settle()
    world.env.inject_error("POST", "/users/@me/channels", status=403, code=50007,
                           message="Cannot send messages to this user", times=None)
    with caplog.at_level(logging.WARNING, logger="cogs.poll_schedule"):
        await world.advance(HOUR + 2)
        await world.advance(2 * HOUR)
    warnings = [r for r in caplog.records if "could not tell its creator" in r.getMessage()]
    assert len(warnings) == 1
    assert dms(world.creator_user) == []
