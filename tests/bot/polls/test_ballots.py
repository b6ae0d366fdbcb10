"""BallotRepository on both backends: one ballot per member, replaced whole, the schema's rules."""

from __future__ import annotations

import asyncio

import pytest

from bot.polls.ballots import BallotRepository, InvalidRanking, StoredBallot
from bot.polls.models import OptionRemoved, PollClosed, PollDraft, PollNotFound, VoteRefused
from bot.polls.repository import PollRepository
from bot.polls.service import PollService

NOW = 1_700_000_000.0
ANSWERS = ("Red", "Green", "Blue", "Black", "White")


@pytest.fixture
async def db(open_db):
    return await open_db()


@pytest.fixture
def polls(db):
    return PollRepository(db)


@pytest.fixture
def ballots(db):
    return BallotRepository(db)


async def ranked_poll(polls: PollRepository, **options):
    draft = PollDraft("Favourite colour?", ANSWERS, ranked=True, **options)
    poll = await polls.create(draft, guild_id=1, channel_id=2, creator_id=3, now=NOW)
    await polls.attach_message(poll.id, 10_000 + poll.id)
    return await polls.get(poll.id)


async def test_a_ballot_is_stored_and_replaced_as_a_whole(polls, ballots):
    poll = await ranked_poll(polls)
    assert await ballots.cast(poll, 7, [2, 0, 4], now=NOW + 1) == (2, 0, 4)
    assert await ballots.ballot_of(poll.id, 7) == StoredBallot(7, (2, 0, 4), NOW + 1)
    await ballots.cast(poll, 7, [1], now=NOW + 2)
    assert await ballots.ballot_of(poll.id, 7) == StoredBallot(7, (1,), NOW + 2)
    await ballots.cast(poll, 8, [1, 2], now=NOW + 3)
    assert await ballots.ballots(poll.id) == [StoredBallot(7, (1,), NOW + 2), StoredBallot(8, (1, 2), NOW + 3)]
    first = await ballots.first_preferences(poll)
    assert first.counts == (0, 2, 0, 0, 0) and first.voters == 2
    assert await polls.tally(poll) == first  # every existing caller of tally sees first preferences
    assert sorted(await ballots.ranking_counts(poll.id)) == [("1", 1), ("1,2", 1)]
    assert await polls.voters_by_option(poll) == {1: [7, 8]}


async def test_concurrent_replacements_leave_exactly_one_whole_ballot(polls, ballots):
    poll = await ranked_poll(polls)
    rankings = [tuple((start + k) % 5 for k in range(1 + start % 5)) for start in range(40)]
    await asyncio.gather(*(ballots.cast(poll, 7, r, now=NOW + i) for i, r in enumerate(rankings)))
    stored = await ballots.ballots(poll.id)
    assert len(stored) == 1 and stored[0].ranking in rankings
    first = await ballots.first_preferences(poll)
    assert first.voters == 1 and first.counts[stored[0].ranking[0]] == 1  # first_choice matches the ranking


async def test_clear_removes_the_ballot_once(polls, ballots):
    poll = await ranked_poll(polls)
    await ballots.cast(poll, 7, [3], now=NOW)
    assert await ballots.clear(poll, 7) is True
    assert await ballots.clear(poll, 7) is False
    assert await ballots.ballot_of(poll.id, 7) is None
    assert (await ballots.first_preferences(poll)).voters == 0


@pytest.mark.parametrize(
    ("ranking", "error"),
    [
        ([], "at least one"),
        ([1, 2, 1], "only once"),
        ([5], "does not have"),
        ([-1], "does not have"),
    ],
)
async def test_invalid_rankings_are_refused_before_writing(polls, ballots, ranking, error):
    poll = await ranked_poll(polls)
    with pytest.raises(InvalidRanking, match=error):
        await ballots.cast(poll, 7, ranking, now=NOW)
    assert await ballots.ballots(poll.id) == []


async def test_a_closed_poll_refuses_casting_replacing_and_clearing(polls, ballots):
    poll = await ranked_poll(polls)
    await ballots.cast(poll, 7, [0, 1], now=NOW)
    await polls.close(poll.id, now=NOW + 5, closed_by=3)
    with pytest.raises(PollClosed):
        await ballots.cast(poll, 8, [1], now=NOW + 6)  # new
    with pytest.raises(PollClosed):
        await ballots.cast(poll, 7, [2], now=NOW + 6)  # replacing (the update's rule)
    with pytest.raises(PollClosed):
        await ballots.clear(poll, 7)
    assert await ballots.ballots(poll.id) == [StoredBallot(7, (0, 1), NOW)]


async def test_a_past_deadline_as_stored_refuses_the_ballot(polls, ballots):
    poll = await ranked_poll(polls, duration=600)
    stale = poll.__class__(**{**{f: getattr(poll, f) for f in poll.__slots__}, "closes_at": NOW + 10**6})
    with pytest.raises(PollClosed):  # the caller's copy says later; the stored deadline decides
        await ballots.cast(stale, 7, [0], now=NOW + 601)
    assert await ballots.ballots(poll.id) == []


async def test_an_answer_removed_meanwhile_is_refused_in_the_write(polls, ballots, db):
    poll = await ranked_poll(polls)

    def remove(conn):
        conn.execute("UPDATE poll_options SET removed_at = ? WHERE poll_id = ? AND position = 3", (NOW, poll.id))

    await db.write(remove)
    with pytest.raises(OptionRemoved):
        await ballots.cast(poll, 7, [0, 3], now=NOW + 1)  # `poll` predates the removal
    assert await ballots.ballots(poll.id) == []
    fresh = await polls.get(poll.id)
    with pytest.raises(OptionRemoved):
        await ballots.cast(fresh, 7, [3], now=NOW + 1)
    assert await ballots.cast(fresh, 7, [4, 0], now=NOW + 1) == (4, 0)


async def test_ballots_only_on_ranked_polls(polls, ballots):
    draft = PollDraft("Plain?", ("a", "b"))
    plain = await polls.create(draft, guild_id=1, channel_id=2, creator_id=3, now=NOW)
    with pytest.raises(VoteRefused, match="not a ranked poll"):
        await ballots.cast(plain, 7, [0], now=NOW)


async def test_the_service_applies_the_vote_rules_to_ballots(polls, db):
    clock = [NOW]
    service = PollService(polls, lambda: clock[0])
    poll = await ranked_poll(polls, duration=600, role_id=55)
    with pytest.raises(VoteRefused, match="role"):
        await service.cast_ballot(poll.id, [0], user_id=7, role_ids=[])
    stored_poll, ranking = await service.cast_ballot(poll.id, [1, 0], user_id=7, role_ids=[55])
    assert ranking == (1, 0) and stored_poll.id == poll.id
    with pytest.raises(VoteRefused, match="ranked"):  # a ranked poll's click is never a vote
        await service.vote(poll.id, 0, user_id=8, role_ids=[55])
    assert await service.opens_ballot(poll.id) is True
    assert await service.opens_ballot(10**30) is False
    with pytest.raises(PollNotFound):
        await service.cast_ballot(poll.id + 99, [0], user_id=7, role_ids=[55])
    assert (await service.clear_ballot(poll.id, user_id=7, role_ids=[55]))[1] is True
    clock[0] = NOW + 601  # past the deadline, before the scheduler has closed it
    with pytest.raises(PollClosed):
        await service.cast_ballot(poll.id, [0], user_id=7, role_ids=[55])
    runoff = await service.runoff(poll)
    assert runoff.ballots == 0
