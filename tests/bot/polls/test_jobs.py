"""Claiming scheduled posts and reminders, on both backends: leases, attempts, shards."""

from __future__ import annotations

import pytest

from bot.polls.jobs import JOB_LEASE, JobKind, JobRepository
from bot.polls.models import PollDraft
from bot.polls.repository import PollRepository

NOW = 1_700_000_000.0
# Guild ids whose shard, (id >> 22) % 2, is 0 and 1.
SHARD_0, SHARD_1 = 4 << 22, 5 << 22


@pytest.fixture
async def db(open_db):
    return await open_db()


async def scheduled(db, guild_id: int, *, at: float = NOW) -> int:
    draft = PollDraft("Later?", ("Yes", "No"), duration=3600, starts_at=at)
    poll = await PollRepository(db).create(draft, guild_id=guild_id, channel_id=1, creator_id=2, now=at - 60)
    return poll.id


async def reminded(db, guild_id: int) -> int:
    """A posted poll whose reminder is due at NOW."""
    draft = PollDraft("Soon?", ("Yes", "No"), duration=3600, remind=600)
    repo = PollRepository(db)
    poll = await repo.create(draft, guild_id=guild_id, channel_id=1, creator_id=2, now=NOW - 3000)
    await repo.attach_message(poll.id, 10**17 + poll.id)
    return poll.id


async def test_posts_keep_to_this_processs_shards_and_reminders_go_to_any(db):
    jobs = JobRepository(db)
    ours, theirs = await scheduled(db, SHARD_0), await scheduled(db, SHARD_1)
    reminder = await reminded(db, SHARD_1)
    claimed = await jobs.claim_due(owner="a/1", now=NOW, limit=10, shards=(2, (0,)))
    assert {(j.poll_id, j.kind) for j in claimed} == {(ours, JobKind.POST), (reminder, JobKind.REMIND)}
    # The other shard's process takes its own post; nothing is claimed twice.
    claimed = await jobs.claim_due(owner="b/1", now=NOW, limit=10, shards=(2, (1,)))
    assert [(j.poll_id, j.kind) for j in claimed] == [(theirs, JobKind.POST)]
    # A process running every shard (no SHARD_IDS) would have claimed all of them.
    assert await jobs.claim_due(owner="c/1", now=NOW, limit=10) == []


async def test_the_next_deadline_leaves_out_the_posts_of_other_processes_shards(db):
    # A post due on a shard whose process is down must not wake this one every second.
    repo = PollRepository(db)
    await scheduled(db, SHARD_1, at=NOW)
    assert await repo.next_deadline(shards=(2, (0,))) is None
    assert await repo.next_deadline(shards=(2, (1,))) == NOW
    assert await repo.next_deadline() == NOW  # a process running every shard
    await scheduled(db, SHARD_0, at=NOW + 60)
    assert await repo.next_deadline(shards=(2, (0,))) == NOW + 60
    reminder = await reminded(db, SHARD_1)  # reminders need only REST: any process's work
    assert reminder and await repo.next_deadline(shards=(2, (0,))) <= NOW


async def test_each_claim_counts_an_attempt_and_a_postponed_one_does_not(db):
    jobs = JobRepository(db)
    await scheduled(db, SHARD_0)
    [job] = await jobs.claim_due(owner="a/1", now=NOW, limit=10)
    assert job.attempts == 1
    await jobs.release(job, retry_at=NOW + 30)
    assert await jobs.claim_due(owner="a/1", now=NOW + 29, limit=10) == []
    [job] = await jobs.claim_due(owner="a/1", now=NOW + 30, limit=10)
    assert job.attempts == 2  # released after a failure: counted
    await jobs.postpone(job, retry_at=NOW + 60)
    [job] = await jobs.claim_due(owner="a/1", now=NOW + 60, limit=10)
    assert job.attempts == 2  # postponed (the server unavailable here): not counted
    # A process that dies holding the claim loses it when the lease runs out; that counts too.
    [job] = await jobs.claim_due(owner="b/1", now=NOW + 60 + JOB_LEASE, limit=10)
    assert job.attempts == 3


async def test_sending_may_start_only_while_the_claim_is_still_ours(db):
    jobs = JobRepository(db)
    await scheduled(db, SHARD_0)
    [job] = await jobs.claim_due(owner="a/1", now=NOW, limit=10)
    [taken] = await jobs.claim_due(owner="b/1", now=NOW + JOB_LEASE, limit=10)
    assert not await jobs.mark_started(job, owner="a/1", now=NOW + JOB_LEASE + 1)
    assert await jobs.mark_started(taken, owner="b/1", now=NOW + JOB_LEASE + 1)
    await jobs.finish(taken, outcome="sent", now=NOW + JOB_LEASE + 2, message_id=7)
    assert await jobs.claim_due(owner="a/1", now=NOW + 10 * JOB_LEASE, limit=10) == []


async def test_a_claim_takes_no_more_than_its_limit(db):
    """On PostgreSQL, `UPDATE … WHERE … IN (SELECT … LIMIT n FOR UPDATE SKIP LOCKED)` took
    every due row, not n; the claims pick their rows in a materialised CTE."""
    jobs, polls = JobRepository(db), PollRepository(db)
    for _ in range(5):
        await scheduled(db, SHARD_0)
    first = await jobs.claim_due(owner="a/1", now=NOW, limit=2)
    rest = await jobs.claim_due(owner="b/1", now=NOW, limit=10)
    assert len(first) == 2 and len(rest) == 3
    assert not {j.poll_id for j in first} & {j.poll_id for j in rest}
    # Closing and announcing are claimed the same way.
    for _ in range(5):
        poll_id = await reminded(db, SHARD_0)  # posted, closing an hour after NOW - 3000
        assert poll_id
    assert len(await polls.close_due(NOW + 3600, limit=2)) == 2
    assert len(await polls.close_due(NOW + 3600, limit=10)) == 3
    announced = await polls.claim_announcements(owner="a/1", now=NOW + 3600, limit=2)
    assert len(announced) == 2
    assert len(await polls.claim_announcements(owner="b/1", now=NOW + 3600, limit=10)) == 3
