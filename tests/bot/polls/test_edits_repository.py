"""Storing /poll edit on both backends: one transaction per edit, rules against the stored
poll, the edit log, the reminder moved with the deadline."""

from __future__ import annotations

import asyncio
import itertools

import pytest

from bot.polls.editing import Change, ChangeKind, EditRefused, EditRequest
from bot.polls.edits import EditRepository
from bot.polls.jobs import JobKind, JobRepository
from bot.polls.models import OptionRemoved, PollDraft
from bot.polls.repository import PollRepository

NOW = 1_700_000_000.0
GUILD, CHANNEL, CREATOR, EDITOR = 1001, 3003, 4004, 5005
_message_ids = itertools.count(900_000_000_000_000_000)


@pytest.fixture
async def db(open_db):
    return await open_db()


@pytest.fixture
def repo(db):
    return PollRepository(db)


@pytest.fixture
def edits(repo):
    return EditRepository(repo)


async def _posted(repo: PollRepository, **draft):
    values = {"question": "Lunch?", "options": ("Pizza", "Sushi", "Tacos")}
    values.update(draft)
    poll = await repo.create(PollDraft(**values), guild_id=GUILD, channel_id=CHANNEL, creator_id=CREATOR, now=NOW)
    await repo.attach_message(poll.id, next(_message_ids))
    return await repo.get(poll.id)


async def _ballot(db, poll_id: int, user_id: int, ranking: str) -> None:
    def insert(conn):
        conn.execute(
            "INSERT INTO ballots (poll_id, user_id, ranking, first_choice, cast_at) VALUES (?, ?, ?, ?, ?)",
            (poll_id, user_id, ranking, int(ranking.split(",")[0]), NOW),
        )

    await db.write(insert)


async def test_every_change_is_stored_and_logged(repo, edits):
    poll = await _posted(repo, duration=3600)
    result = await edits.apply(
        poll.id, EditRequest(question="Dinner?", add=("Ramen", "Curry"), remove=2, duration=7200),
        user_id=EDITOR, now=NOW + 60,
    )
    stored = await repo.get(poll.id)
    assert stored == result.poll
    assert stored.question == "Dinner?"
    assert stored.options == ("Pizza", "Sushi", "Tacos", "Ramen", "Curry")
    assert stored.removed == {1} and stored.shown == (0, 2, 3, 4)
    assert stored.closes_at == NOW + 60 + 7200 and stored.edited_at == NOW + 60
    log = await edits.log(poll.id)
    assert [(e.edited_at, e.user_id) for e in log] == [(NOW + 60, EDITOR)] * 5
    assert [e.change for e in log] == [
        Change(ChangeKind.QUESTION, old="Lunch?", new="Dinner?"),
        Change(ChangeKind.REMOVE, number=2, old="Sushi"),
        Change(ChangeKind.ADD, number=4, new="Ramen"),
        Change(ChangeKind.ADD, number=5, new="Curry"),
        Change(ChangeKind.DEADLINE, old=NOW + 3600, new=NOW + 7260),
    ]


async def test_a_refused_edit_changes_nothing(repo, edits):
    poll = await _posted(repo)
    await repo.cast_vote(poll, 1, 0, now=NOW)
    with pytest.raises(EditRefused, match="before the first vote"):
        await edits.apply(poll.id, EditRequest(question="Dinner?", add=("Ramen",)), user_id=EDITOR, now=NOW)
    assert await repo.get(poll.id) == poll
    assert await edits.log(poll.id) == []


async def test_votes_are_kept_and_numbers_never_move(repo, edits):
    poll = await _posted(repo)
    await repo.cast_vote(poll, 1, 2, now=NOW)
    await edits.apply(poll.id, EditRequest(remove=2, add=("Ramen",)), user_id=EDITOR, now=NOW)
    edited = await repo.get(poll.id)
    assert [(v.option, v.user_id) for v in await repo.votes(poll.id)] == [(2, 1)]
    assert (await repo.tally(edited)).counts == (0, 0, 1, 0)
    await repo.cast_vote(edited, 2, 3, now=NOW)  # the new answer takes the next position
    assert (await repo.tally(edited)).counts == (0, 0, 1, 1)


async def test_the_schema_refuses_a_vote_for_a_removed_answer(repo, edits):
    poll = await _posted(repo, multiple=True)
    await edits.apply(poll.id, EditRequest(remove=1), user_id=EDITOR, now=NOW)
    with pytest.raises(OptionRemoved):
        await repo.cast_vote(poll, 1, 0, now=NOW)  # the caller's copy still has it
    assert await repo.votes(poll.id) == []


async def test_an_answer_with_votes_is_not_removed(repo, edits):
    poll = await _posted(repo)
    await repo.cast_vote(poll, 1, 1, now=NOW)
    with pytest.raises(EditRefused, match="it has votes"):
        await edits.apply(poll.id, EditRequest(remove=2), user_id=EDITOR, now=NOW)
    await edits.apply(poll.id, EditRequest(remove=1), user_id=EDITOR, now=NOW)
    assert (await repo.get(poll.id)).removed == {0}


async def test_ranked_answers_a_ballot_ranks_anywhere_are_kept(repo, edits, db):
    poll = await _posted(repo, ranked=True, options=tuple(f"a{i}" for i in range(12)))
    await _ballot(db, poll.id, 1, "10,2")
    for number in (11, 3):  # positions 10 and 2: first and last on the ballot
        with pytest.raises(EditRefused, match="ballots rank it"):
            await edits.apply(poll.id, EditRequest(remove=number), user_id=EDITOR, now=NOW)
    # Position 1 is not on it, though "10" contains a "1"; position 0 is not either.
    await edits.apply(poll.id, EditRequest(remove=2), user_id=EDITOR, now=NOW)
    await edits.apply(poll.id, EditRequest(remove=1), user_id=EDITOR, now=NOW)
    assert (await repo.get(poll.id)).removed == {0, 1}
    with pytest.raises(EditRefused, match="before the first vote"):
        await edits.apply(poll.id, EditRequest(question="Other?"), user_id=EDITOR, now=NOW)


async def test_twenty_five_positions_in_all(repo, edits):
    poll = await _posted(repo, options=tuple(f"a{i}" for i in range(20)))
    await edits.apply(poll.id, EditRequest(remove=1, add=("b1", "b2", "b3")), user_id=EDITOR, now=NOW)
    with pytest.raises(EditRefused, match="2 more answers, not 3"):
        await edits.apply(poll.id, EditRequest(add=("c1", "c2", "c3")), user_id=EDITOR, now=NOW)
    result = await edits.apply(poll.id, EditRequest(add=("c1", "c2")), user_id=EDITOR, now=NOW)
    assert len(result.poll.options) == 25 and len(result.poll.shown) == 24


async def test_a_closed_poll_is_refused_as_stored(repo, edits):
    poll = await _posted(repo, duration=3600)
    await repo.close(poll.id, now=NOW + 10, closed_by=CREATOR)
    with pytest.raises(EditRefused, match="closed"):
        await edits.apply(poll.id, EditRequest(duration=600), user_id=EDITOR, now=NOW + 20)
    past = await _posted(repo, duration=3600)
    with pytest.raises(EditRefused, match="closed"):
        await edits.apply(past.id, EditRequest(add=("x",)), user_id=EDITOR, now=NOW + 3600)


async def test_a_new_deadline_moves_the_reminder(repo, edits, db):
    jobs = JobRepository(db)
    poll = await _posted(repo, duration=3600, remind=600)
    assert (await jobs.get(poll.id, JobKind.REMIND)).due_at == NOW + 3000
    result = await edits.apply(poll.id, EditRequest(duration=7200), user_id=EDITOR, now=NOW + 100)
    assert result.reminder_at == NOW + 100 + 7200 - 600
    assert (await jobs.get(poll.id, JobKind.REMIND)).due_at == NOW + 6700


async def test_a_reminder_sent_is_not_scheduled_again(repo, edits, db):
    jobs = JobRepository(db)
    poll = await _posted(repo, duration=3600, remind=600)
    (job,) = await jobs.claim_due(owner="me/1", now=NOW + 3000, limit=5)
    assert await jobs.mark_started(job, owner="me/1", now=NOW + 3000)
    await jobs.finish(job, outcome="sent", now=NOW + 3001, message_id=1)
    result = await edits.apply(poll.id, EditRequest(duration=7200), user_id=EDITOR, now=NOW + 3100)
    assert result.reminder_at is None
    assert await jobs.pending(poll.id) == []


async def test_a_poll_without_remind_gets_no_reminder(repo, edits, db):
    poll = await _posted(repo)
    await edits.apply(poll.id, EditRequest(duration=7200), user_id=EDITOR, now=NOW)
    assert await JobRepository(db).pending(poll.id) == []


async def test_edits_and_votes_at_once_keep_the_rules(repo, edits):
    """A question edit racing votes either sees no vote (and stores) or is refused; an answer
    removed while votes arrive for it is either refused (it had votes) or takes none after."""
    for first in (0, 3, 10):
        poll = await _posted(repo)
        clicks = [repo.cast_vote(poll, user, 1, now=NOW) for user in range(10)]
        edit = edits.apply(poll.id, EditRequest(remove=2), user_id=EDITOR, now=NOW)
        outcomes = await asyncio.gather(*clicks[:first], edit, *clicks[first:], return_exceptions=True)
        edited, votes = outcomes[first], await repo.votes(poll.id)
        if isinstance(edited, Exception):
            assert isinstance(edited, EditRefused) and votes
        else:
            assert votes == []  # every click came after the removal and was refused
            assert all(isinstance(o, OptionRemoved) for o in outcomes[first + 1:])
        assert len(votes) + sum(isinstance(o, OptionRemoved) for o in outcomes) == 10
