"""Scheduled and repeating polls in storage, on both backends: posting, the next copy, cancelling."""

from __future__ import annotations

import asyncio

import pytest

from bot.polls.jobs import JobKind, JobRepository
from bot.polls.models import PollDraft
from bot.polls.repository import PollRepository
from bot.polls.schedules import CANCELLED_OUTCOME, CancelStatus, ScheduleRepository

NOW = 1_700_000_000.0
HOUR = 3600
DAY = 24 * HOUR
GUILD = 1001
CHANNEL = 3003
CREATOR = 4004
MOD = 5005
_message_ids = iter(range(900_000_000_000_000_000, 10**18))

postgresql_only = pytest.mark.parametrize("backend", ["postgresql"], indirect=True)


@pytest.fixture
async def db(open_db):
    return await open_db()


@pytest.fixture
def polls(db):
    return PollRepository(db)


@pytest.fixture
def schedules(db):
    return ScheduleRepository(db)


@pytest.fixture
def jobs(db):
    return JobRepository(db)


def _draft(**overrides) -> PollDraft:
    values = {"question": "Standup today?", "options": ("Yes", "No", "Later"), "duration": 2 * HOUR}
    values.update(overrides)
    return PollDraft(**values)


async def _scheduled(polls: PollRepository, *, starts_at: float = NOW + HOUR, **draft):
    return await polls.create(
        _draft(starts_at=starts_at, **draft), guild_id=GUILD, channel_id=CHANNEL, creator_id=CREATOR, now=NOW
    )


async def _outcome(db, poll_id: int, kind: str = "post"):
    return await db.fetchone(
        "SELECT done_at, outcome, message_id FROM poll_jobs WHERE poll_id = ? AND kind = ?", (poll_id, kind)
    )


async def _series(db, series_id: int) -> list[tuple]:
    rows = await db.fetchall(
        "SELECT series_copy, number, starts_at, message_id IS NOT NULL, cancelled_at IS NOT NULL"
        " FROM polls WHERE series_id = ? ORDER BY series_copy",
        (series_id,),
    )
    return [tuple(r) for r in rows]


# ------------------------------------------------------------------ posting


async def test_mark_posted_records_message_deadline_reminder_and_job_at_once(db, polls, schedules):
    poll = await _scheduled(polls, remind=30 * 60)
    message_id = next(_message_ids)
    posted = await schedules.mark_posted(poll.id, message_id, NOW + HOUR + 2)
    assert posted.recorded and not posted.cancelled and posted.next_copy is None
    stored = await polls.get(poll.id)
    assert stored.message_id == message_id
    assert stored.closes_at == NOW + HOUR + 2 + 2 * HOUR
    done_at, outcome, job_message = await _outcome(db, poll.id)
    assert (done_at, outcome, job_message) == (NOW + HOUR + 2, "sent", message_id)
    remind = await JobRepository(db).get(poll.id, JobKind.REMIND)
    assert remind is not None and remind.due_at == stored.closes_at - 30 * 60
    # Now it is a posted poll like any other: found by number, listed as open.
    assert (await polls.get_by_number(GUILD, poll.number)).id == poll.id
    assert [p.id for p in await polls.list_open(GUILD)] == [poll.id]


async def test_mark_posted_is_idempotent(db, polls, schedules):
    poll = await _scheduled(polls, repeat=DAY)
    message_id = next(_message_ids)
    first = await schedules.mark_posted(poll.id, message_id, NOW + HOUR)
    again = await schedules.mark_posted(poll.id, message_id, NOW + HOUR + 500)
    other = await schedules.mark_posted(poll.id, next(_message_ids), NOW + HOUR + 900)
    assert first.recorded and not again.recorded and not other.recorded
    assert not again.cancelled and not other.cancelled
    stored = await polls.get(poll.id)
    assert stored.message_id == message_id and stored.closes_at == NOW + HOUR + 2 * HOUR
    assert again.next_copy.id == first.next_copy.id == other.next_copy.id
    assert len(await _series(db, poll.id)) == 2  # one next copy, whatever the retries
    assert (await _outcome(db, poll.id))[1:] == ("sent", message_id)


async def test_the_deadline_fixed_before_sending_is_the_one_kept(polls, schedules):
    poll = await _scheduled(polls)
    ready = await schedules.set_deadline(poll.id, now=NOW + HOUR)
    assert ready.closes_at == NOW + 3 * HOUR and ready.message_id is None
    # Still unposted: no deadline of an open poll yet, nothing for the vote path.
    assert await polls.due(NOW + 10 * HOUR) == []
    await schedules.mark_posted(poll.id, next(_message_ids), NOW + HOUR + 400)  # found after a restart
    assert (await polls.get(poll.id)).closes_at == NOW + 3 * HOUR


async def test_posting_a_copy_of_a_series_stores_the_next_copy_on_the_grid(db, polls, schedules, jobs):
    first = await _scheduled(polls, repeat=DAY, multiple=True, max_choices=2, hide_results=True, quorum=3,
                             remind=HOUR, role_id=77)
    assert (first.series_id, first.series_copy) == (first.id, 1)
    other = await polls.create(_draft(), guild_id=GUILD, channel_id=CHANNEL, creator_id=CREATOR, now=NOW)
    posted = await schedules.mark_posted(first.id, next(_message_ids), NOW + HOUR + 3)
    copy = posted.next_copy
    assert copy is not None
    assert (copy.series_id, copy.series_copy, copy.number) == (first.id, 2, other.number + 1)
    assert copy.starts_at == NOW + HOUR + DAY
    assert copy.message_id is None and copy.closes_at is None and copy.is_scheduled
    same = ("question", "options", "duration", "multiple", "max_choices", "hide_results", "quorum",
            "remind_before", "role_id", "repeat_every", "channel_id", "creator_id", "guild_id", "anonymous", "ranked")
    assert {k: getattr(copy, k) for k in same} == {k: getattr(first, k) for k in same}
    job = await jobs.get(copy.id, JobKind.POST)
    assert job.due_at == copy.starts_at
    assert posted.posting.next_start == copy.starts_at and not posted.posting.late


async def test_after_downtime_one_copy_is_posted_and_the_next_is_the_first_grid_time_after(db, polls, schedules):
    first = await _scheduled(polls, repeat=DAY)
    start = first.starts_at
    second = (await schedules.mark_posted(first.id, next(_message_ids), start + 1)).next_copy
    assert second.starts_at == start + DAY
    # The bot is away from just before copy 2's time until 3 intervals later, plus 5 hours.
    back = start + 4 * DAY + 5 * HOUR
    posted = await schedules.mark_posted(second.id, next(_message_ids), back)
    assert posted.posting.late and posted.posting.passed_over == 3
    assert posted.next_copy.starts_at == start + 5 * DAY
    assert posted.next_copy.series_copy == 3
    assert [row[0] for row in await _series(db, first.id)] == [1, 2, 3]  # one copy for the missed days
    assert (await polls.get(second.id)).closes_at == back + 2 * HOUR


async def test_a_repeating_poll_posted_at_once_gets_its_second_copy_with_its_message(db, polls, jobs):
    first = await polls.create(
        _draft(repeat=7 * DAY), guild_id=GUILD, channel_id=CHANNEL, creator_id=CREATOR, now=NOW
    )
    assert first.starts_at is None and first.closes_at == NOW + 2 * HOUR
    assert await _series(db, first.id) == [(1, first.number, None, 0, 0)]
    await polls.attach_message(first.id, next(_message_ids))
    rows = await _series(db, first.id)
    assert [(r[0], r[2], bool(r[3])) for r in rows] == [(1, None, True), (2, NOW + 7 * DAY, False)]
    copy_id = await db.fetchval("SELECT id FROM polls WHERE series_id = ? AND series_copy = 2", (first.id,))
    assert (await jobs.get(copy_id, JobKind.POST)).due_at == NOW + 7 * DAY


async def test_a_poll_that_does_not_repeat_gets_no_next_copy(db, polls):
    poll = await polls.create(_draft(), guild_id=GUILD, channel_id=CHANNEL, creator_id=CREATOR, now=NOW)
    await polls.attach_message(poll.id, next(_message_ids))
    assert int(await db.fetchval("SELECT count(*) FROM polls")) == 1
    assert int(await db.fetchval("SELECT count(*) FROM poll_jobs")) == 0


async def test_give_up_fails_the_job_and_ends_the_series(db, polls, schedules):
    first = await _scheduled(polls, repeat=DAY)
    stored = await schedules.give_up(first.id, reason="the channel no longer exists", now=NOW + HOUR)
    assert stored.cancelled_at == NOW + HOUR and stored.cancelled_by is None
    assert (await _outcome(db, first.id))[1] == "failed: the channel no longer exists"
    assert await schedules.list_scheduled(GUILD) == ([], 0)
    assert await schedules.give_up(first.id, reason="again", now=NOW + HOUR + 1) is None
    assert (await _outcome(db, first.id))[1] == "failed: the channel no longer exists"


# ------------------------------------------------------------------ listing and finding


async def test_list_scheduled_shows_unposted_polls_soonest_first_with_the_total(db, polls, schedules):
    late = await _scheduled(polls, starts_at=NOW + 3 * DAY)
    soon = await _scheduled(polls, starts_at=NOW + HOUR, repeat=DAY)
    posted = await polls.create(_draft(), guild_id=GUILD, channel_id=CHANNEL, creator_id=CREATOR, now=NOW)
    await polls.attach_message(posted.id, next(_message_ids))
    cancelled = await _scheduled(polls, starts_at=NOW + 2 * HOUR)
    await schedules.cancel(cancelled, MOD, NOW)
    await polls.create(_draft(starts_at=NOW + HOUR), guild_id=GUILD + 1, channel_id=CHANNEL, creator_id=CREATOR,
                       now=NOW)
    listed, total = await schedules.list_scheduled(GUILD)
    assert [p.id for p in listed] == [soon.id, late.id] and total == 2
    first_only, total = await schedules.list_scheduled(GUILD, limit=1)
    assert [p.id for p in first_only] == [soon.id] and total == 2
    # The series shows its waiting copy once the first is posted.
    copy = (await schedules.mark_posted(soon.id, next(_message_ids), NOW + HOUR)).next_copy
    assert [p.id for p in (await schedules.list_scheduled(GUILD))[0]] == [copy.id, late.id]
    assert [p.id for p in await schedules.search_scheduled(GUILD, "standup")] == [copy.id, late.id]
    assert [p.id for p in await schedules.search_scheduled(GUILD, f"#{late.number}")] == [late.id]
    assert await schedules.search_scheduled(GUILD, "100%_") == []


async def test_find_sees_scheduled_polls_that_get_by_number_does_not(polls, schedules):
    poll = await _scheduled(polls)
    assert await polls.get_by_number(GUILD, poll.number) is None
    assert (await schedules.find(GUILD, poll.number)).id == poll.id
    assert await schedules.find(GUILD + 1, poll.number) is None
    assert await schedules.find(GUILD, poll.number + 1) is None


# ------------------------------------------------------------------ cancelling


async def test_cancelling_a_scheduled_poll(db, polls, schedules, jobs):
    poll = await _scheduled(polls)
    result = await schedules.cancel(poll, MOD, NOW + 10)
    assert result.status is CancelStatus.CANCELLED and result.cancelled.id == poll.id
    stored = await polls.get(poll.id)
    assert (stored.cancelled_at, stored.cancelled_by, stored.is_scheduled) == (NOW + 10, MOD, False)
    assert (await _outcome(db, poll.id))[:2] == (NOW + 10, CANCELLED_OUTCOME)
    assert await jobs.claim_due(owner="a", now=NOW + 2 * HOUR, limit=10) == []
    assert (await schedules.cancel(poll, MOD, NOW + 20)).status is CancelStatus.ALREADY_CANCELLED
    # Posting it anyway (a send already under way) records nothing: its message must go.
    posted = await schedules.mark_posted(poll.id, next(_message_ids), NOW + HOUR)
    assert posted.cancelled and not posted.recorded
    assert (await polls.get(poll.id)).message_id is None


async def test_naming_a_posted_copy_stops_the_series_and_posted_copies_stay_open(db, polls, schedules):
    first = await _scheduled(polls, repeat=DAY)
    second = (await schedules.mark_posted(first.id, next(_message_ids), first.starts_at)).next_copy
    third = (await schedules.mark_posted(second.id, next(_message_ids), second.starts_at)).next_copy
    named = await polls.get(first.id)
    result = await schedules.cancel(named, CREATOR, second.starts_at + 60)
    assert result.status is CancelStatus.SERIES_STOPPED
    assert result.cancelled.id == third.id
    assert [p.id for p in result.open_copies] == [first.id, second.id]
    assert (await polls.get(third.id)).cancelled_by == CREATOR
    assert (await polls.get(second.id)).closed_at is None  # stays open until its deadline
    assert (await schedules.cancel(named, CREATOR, second.starts_at + 90)).status is CancelStatus.ALREADY_STOPPED
    # The cancelled copy, posted by a send under way, records nothing and makes no copy.
    assert (await schedules.mark_posted(third.id, next(_message_ids), third.starts_at)).cancelled
    assert [r[0] for r in await _series(db, first.id)] == [1, 2, 3]


async def test_naming_the_waiting_copy_stops_the_series_too(db, polls, schedules):
    first = await _scheduled(polls, repeat=DAY)
    second = (await schedules.mark_posted(first.id, next(_message_ids), first.starts_at)).next_copy
    result = await schedules.cancel(second, MOD, NOW)
    assert result.status is CancelStatus.SERIES_STOPPED and result.cancelled.id == second.id
    assert [p.id for p in result.open_copies] == [first.id]


async def test_a_posted_poll_that_does_not_repeat_has_nothing_to_cancel(polls, schedules):
    poll = await polls.create(_draft(), guild_id=GUILD, channel_id=CHANNEL, creator_id=CREATOR, now=NOW)
    await polls.attach_message(poll.id, next(_message_ids))
    result = await schedules.cancel(await polls.get(poll.id), MOD, NOW)
    assert result.status is CancelStatus.NOT_SCHEDULED
    assert (await polls.get(poll.id)).cancelled_at is None


# ------------------------------------------------------------------ processes sharing the database


@postgresql_only
async def test_two_processes_claiming_the_same_due_post_job_only_one_gets_it(polls, open_db):
    poll = await _scheduled(polls)
    claimers = [JobRepository(await open_db()) for _ in range(2)]
    for _ in range(20):  # many rounds, each both at once
        rounds = await asyncio.gather(
            *(c.claim_due(owner=f"p{i}", now=NOW + HOUR, limit=8) for i, c in enumerate(claimers))
        )
        if any(rounds):
            break
    got = [(i, job) for i, found in enumerate(rounds) for job in found]
    assert len(got) == 1 and got[0][1].poll_id == poll.id
    winner, job = got[0]
    loser = 1 - winner
    assert await claimers[loser].claim_due(owner=f"p{loser}", now=NOW + HOUR + 1, limit=8) == []
    assert await claimers[loser].mark_started(job, owner=f"p{loser}", now=NOW + HOUR + 1) is False
    assert await claimers[winner].mark_started(job, owner=f"p{winner}", now=NOW + HOUR + 1) is True


@postgresql_only
async def test_concurrent_mark_posted_records_one_message_and_one_next_copy(db, polls, open_db):
    first = await _scheduled(polls, repeat=DAY)
    others = [ScheduleRepository(await open_db()) for _ in range(3)]
    ids = [next(_message_ids) for _ in others]
    results = await asyncio.gather(*(s.mark_posted(first.id, m, NOW + HOUR) for s, m in zip(others, ids, strict=True)))
    assert sum(r.recorded for r in results) == 1
    assert (await polls.get(first.id)).message_id == ids[[r.recorded for r in results].index(True)]
    assert [r[0] for r in await _series(db, first.id)] == [1, 2]


@postgresql_only
async def test_a_cancel_racing_a_post_never_leaves_the_series_running(db, polls, open_db):
    poster, canceller = ScheduleRepository(await open_db()), ScheduleRepository(await open_db())
    for _ in range(10):
        first = await _scheduled(polls, repeat=DAY)
        named = await polls.get(first.id)
        await asyncio.gather(
            poster.mark_posted(first.id, next(_message_ids), NOW + HOUR), canceller.cancel(named, MOD, NOW + HOUR)
        )
        rows = await _series(db, first.id)
        waiting = [r for r in rows if not r[3] and not r[4]]
        assert waiting == [], rows
