"""The repository against a real SQLite file: vote rules hold in the schema, under concurrency."""

from __future__ import annotations

import asyncio
import random

import pytest
from postgres import RawConnection, rule_errors

from bot.db import Database
from bot.polls.models import (
    PollClosed,
    PollDraft,
    PollNotFound,
    TooManyChoices,
    VoteChange,
)
from bot.polls.repository import ANNOUNCE_LEASE, PollRepository

NOW = 1_700_000_000.0
GUILD = 1001
OTHER_GUILD = 2002
CHANNEL = 3003
CREATOR = 4004

RULE_ERRORS = rule_errors()
_message_ids = iter(range(900_000_000_000_000_000, 10**18))


@pytest.fixture
async def db(open_db):
    return await open_db()


@pytest.fixture
def repo(db):
    return PollRepository(db)


def _draft(**overrides) -> PollDraft:
    values = {"question": "Lunch?", "options": ("Pizza", "Sushi", "Tacos", "Salad")}
    values.update(overrides)
    return PollDraft(**values)


async def _posted(repo: PollRepository, *, guild_id: int = GUILD, now: float = NOW, **draft):
    """A poll as the cog leaves it: stored, then its message attached."""
    poll = await repo.create(_draft(**draft), guild_id=guild_id, channel_id=CHANNEL, creator_id=CREATOR, now=now)
    await repo.attach_message(poll.id, next(_message_ids))
    fresh = await repo.get(poll.id)
    assert fresh is not None
    return fresh


def _raw(db: Database) -> RawConnection:
    """A plain driver connection to the same database: no repository code in the way."""
    return RawConnection(db)


async def _rows_of(db: Database, poll_id: int, user_id: int) -> int:
    return int(await db.fetchval("SELECT count(*) FROM votes WHERE poll_id = ? AND user_id = ?", (poll_id, user_id)))


# ------------------------------------------------------------------ creating and finding


async def test_create_stores_the_draft(repo):
    poll = await repo.create(
        _draft(duration=3600, multiple=True, anonymous=True, hide_results=True, role_id=77, max_choices=2),
        guild_id=GUILD,
        channel_id=CHANNEL,
        creator_id=CREATOR,
        now=NOW,
    )
    assert (poll.question, poll.options, poll.closes_at, poll.message_id) == (
        "Lunch?",
        ("Pizza", "Sushi", "Tacos", "Salad"),
        NOW + 3600,
        None,
    )
    assert (poll.multiple, poll.anonymous, poll.hide_results, poll.role_id, poll.max_choices) == (
        True,
        True,
        True,
        77,
        2,
    )


async def test_create_without_duration_has_no_deadline(repo):
    poll = await repo.create(_draft(), guild_id=GUILD, channel_id=CHANNEL, creator_id=CREATOR, now=NOW)
    assert poll.closes_at is None and poll.is_open


async def test_poll_numbers_count_per_guild(repo):
    numbers = [
        (await _posted(repo, guild_id=GUILD)).number,
        (await _posted(repo, guild_id=GUILD)).number,
        (await _posted(repo, guild_id=OTHER_GUILD)).number,
        (await _posted(repo, guild_id=GUILD)).number,
    ]
    assert numbers == [1, 2, 1, 3]


async def test_concurrent_creates_in_one_guild_get_distinct_numbers(repo):
    polls = await asyncio.gather(
        *(repo.create(_draft(), guild_id=GUILD, channel_id=CHANNEL, creator_id=CREATOR, now=NOW) for _ in range(20))
    )
    assert sorted(p.number for p in polls) == list(range(1, 21))


async def test_unposted_poll_is_not_found_by_number(repo):
    poll = await repo.create(_draft(), guild_id=GUILD, channel_id=CHANNEL, creator_id=CREATOR, now=NOW)
    assert await repo.get_by_number(GUILD, poll.number) is None


async def test_posted_poll_is_found_by_number_in_its_guild_only(repo):
    poll = await _posted(repo)
    assert (await repo.get_by_number(GUILD, poll.number)) == poll
    assert await repo.get_by_number(OTHER_GUILD, poll.number) is None


async def test_poll_is_found_by_message_in_its_guild_only(repo):
    poll = await _posted(repo)
    assert poll.message_id is not None
    assert (await repo.get_by_message(GUILD, poll.message_id)) == poll
    assert await repo.get_by_message(OTHER_GUILD, poll.message_id) is None


async def test_discard_unposted_removes_a_poll_without_message(repo):
    poll = await repo.create(_draft(), guild_id=GUILD, channel_id=CHANNEL, creator_id=CREATOR, now=NOW)
    await repo.discard_unposted(poll.id)
    assert await repo.get(poll.id) is None


async def test_discard_unposted_keeps_a_posted_poll(repo):
    poll = await _posted(repo)
    await repo.discard_unposted(poll.id)
    assert await repo.get(poll.id) == poll


async def test_options_keep_their_order_and_text(repo):
    options = tuple(f"Réponse {i} ✓" for i in range(25))
    poll = await _posted(repo, options=options)
    assert poll.options == options


async def test_list_open_orders_by_deadline_then_open_ended_newest_first(repo):
    late = await _posted(repo, duration=7200)
    open_ended_old = await _posted(repo)
    soon = await _posted(repo, duration=600)
    open_ended_new = await _posted(repo)
    closed = await _posted(repo, duration=300)
    await repo.close(closed.id, now=NOW, closed_by=CREATOR)
    await repo.create(_draft(), guild_id=GUILD, channel_id=CHANNEL, creator_id=CREATOR, now=NOW)  # unposted
    await _posted(repo, guild_id=OTHER_GUILD)
    listed = [p.id for p in await repo.list_open(GUILD)]
    assert listed == [soon.id, late.id, open_ended_new.id, open_ended_old.id]


async def test_search_lists_open_polls_first_then_newest(repo):
    first = await _posted(repo, question="Lunch on Monday?")
    second = await _posted(repo, question="Lunch on Tuesday?")
    third = await _posted(repo, question="Lunch on Friday?")
    await repo.close(third.id, now=NOW, closed_by=CREATOR)
    found = [p.id for p in await repo.search(GUILD, "lunch")]
    assert found == [second.id, first.id, third.id]


async def test_search_matches_part_of_the_question_ignoring_case(repo):
    wanted = await _posted(repo, question="Which EDITOR do you use?")
    await _posted(repo, question="Tabs or spaces?")
    assert [p.id for p in await repo.search(GUILD, "editor")] == [wanted.id]


async def test_search_matches_a_poll_number_with_or_without_hash(repo):
    await _posted(repo, question="One")
    second = await _posted(repo, question="Two")
    assert [p.id for p in await repo.search(GUILD, "#2")] == [second.id]
    assert [p.id for p in await repo.search(GUILD, "2")] == [second.id]


async def test_search_treats_percent_literally(repo):
    wanted = await _posted(repo, question="Are you 100% sure?")
    await _posted(repo, question="Are you 1000 sure?")
    assert [p.id for p in await repo.search(GUILD, "100%")] == [wanted.id]


async def test_search_treats_underscore_literally(repo):
    wanted = await _posted(repo, question="snake_case or camelCase?")
    await _posted(repo, question="Take courage?")  # "e c" would match an unescaped "e_c"
    assert [p.id for p in await repo.search(GUILD, "e_c")] == [wanted.id]


async def test_search_stays_in_its_guild(repo):
    await _posted(repo, guild_id=OTHER_GUILD, question="Lunch?")
    assert await repo.search(GUILD, "Lunch") == []


async def test_search_respects_its_limit(repo):
    for _ in range(5):
        await _posted(repo)
    assert len(await repo.search(GUILD, "", limit=3)) == 3


# ------------------------------------------------------------------ single choice


async def test_single_choice_first_click_adds_a_vote(repo):
    poll = await _posted(repo)
    outcome = await repo.cast_vote(poll, 1, 2, now=NOW)
    assert (outcome.change, outcome.option, outcome.choices) == (VoteChange.ADDED, 2, (2,))


async def test_single_choice_click_on_another_answer_moves_the_vote(repo, db):
    poll = await _posted(repo)
    await repo.cast_vote(poll, 1, 0, now=NOW)
    outcome = await repo.cast_vote(poll, 1, 3, now=NOW + 1)
    assert (outcome.change, outcome.choices) == (VoteChange.MOVED, (3,))
    assert await _rows_of(db, poll.id, 1) == 1


async def test_single_choice_click_on_the_same_answer_removes_the_vote(repo):
    poll = await _posted(repo)
    await repo.cast_vote(poll, 1, 1, now=NOW)
    outcome = await repo.cast_vote(poll, 1, 1, now=NOW + 1)
    assert (outcome.change, outcome.choices) == (VoteChange.REMOVED, ())
    assert await repo.choices_of(poll.id, 1) == ()


async def test_single_choice_move_updates_the_vote_time(repo):
    poll = await _posted(repo)
    await repo.cast_vote(poll, 1, 0, now=NOW)
    await repo.cast_vote(poll, 1, 1, now=NOW + 50)
    assert [(v.option, v.voted_at) for v in await repo.votes(poll.id)] == [(1, NOW + 50)]


@pytest.mark.parametrize("option", [-1, 4, 25])
async def test_vote_for_an_answer_that_does_not_exist_is_refused(repo, option):
    poll = await _posted(repo)
    with pytest.raises(PollNotFound):
        await repo.cast_vote(poll, 1, option, now=NOW)


async def test_single_choice_tally_counts_one_voter_per_vote(repo):
    poll = await _posted(repo)
    for user, option in [(1, 0), (2, 0), (3, 2)]:
        await repo.cast_vote(poll, user, option, now=NOW)
    tally = await repo.tally(poll)
    assert (tally.counts, tally.voters) == ((2, 0, 1, 0), 3)


# ------------------------------------------------------------------ multiple choice


async def test_multiple_choice_clicks_toggle_answers(repo):
    poll = await _posted(repo, multiple=True)
    changes = [(await repo.cast_vote(poll, 1, option, now=NOW)) for option in (2, 0, 2)]
    assert [(o.change, o.choices) for o in changes] == [
        (VoteChange.ADDED, (2,)),
        (VoteChange.ADDED, (0, 2)),
        (VoteChange.REMOVED, (0,)),
    ]


async def test_multiple_choice_tally_counts_distinct_voters(repo):
    poll = await _posted(repo, multiple=True)
    for user, option in [(1, 0), (1, 1), (1, 2), (2, 1)]:
        await repo.cast_vote(poll, user, option, now=NOW)
    tally = await repo.tally(poll)
    assert (tally.counts, tally.total, tally.voters) == ((1, 2, 1, 0), 4, 2)


async def test_max_choices_refuses_one_answer_too_many(repo):
    poll = await _posted(repo, multiple=True, max_choices=2)
    await repo.cast_vote(poll, 1, 0, now=NOW)
    await repo.cast_vote(poll, 1, 1, now=NOW)
    with pytest.raises(TooManyChoices) as caught:
        await repo.cast_vote(poll, 1, 2, now=NOW)
    assert caught.value.max_choices == 2
    assert "at most 2 answers" in str(caught.value)


async def test_max_choices_refusal_leaves_the_votes_unchanged(repo):
    poll = await _posted(repo, multiple=True, max_choices=2)
    await repo.cast_vote(poll, 1, 0, now=NOW)
    await repo.cast_vote(poll, 1, 1, now=NOW)
    with pytest.raises(TooManyChoices):
        await repo.cast_vote(poll, 1, 3, now=NOW)
    assert await repo.choices_of(poll.id, 1) == (0, 1)


async def test_max_choices_allows_a_new_answer_after_removing_one(repo):
    poll = await _posted(repo, multiple=True, max_choices=2)
    for option in (0, 1, 0):
        await repo.cast_vote(poll, 1, option, now=NOW)
    outcome = await repo.cast_vote(poll, 1, 3, now=NOW)
    assert outcome.choices == (1, 3)


async def test_max_choices_is_per_member(repo):
    poll = await _posted(repo, multiple=True, max_choices=1)
    await repo.cast_vote(poll, 1, 0, now=NOW)
    outcome = await repo.cast_vote(poll, 2, 0, now=NOW)
    assert outcome.change is VoteChange.ADDED


async def test_max_choices_is_enforced_by_the_schema_trigger(repo, db):
    poll = await _posted(repo, multiple=True, max_choices=1)
    await repo.cast_vote(poll, 1, 0, now=NOW)
    conn = _raw(db)
    try:
        with pytest.raises(RULE_ERRORS, match="max_choices"):
            conn.execute("INSERT INTO votes VALUES (?, 1, 1, 1, ?)", (poll.id, NOW))
    finally:
        conn.close()


# ------------------------------------------------------------------ closed polls


async def test_vote_on_a_closed_poll_is_refused(repo):
    poll = await _posted(repo)
    await repo.close(poll.id, now=NOW, closed_by=CREATOR)
    with pytest.raises(PollClosed):
        await repo.cast_vote(poll, 1, 0, now=NOW)  # `poll` is stale: only the schema knows it closed


async def test_moving_a_vote_on_a_closed_poll_is_refused(repo):
    poll = await _posted(repo)
    await repo.cast_vote(poll, 1, 0, now=NOW)
    await repo.close(poll.id, now=NOW, closed_by=CREATOR)
    with pytest.raises(PollClosed):
        await repo.cast_vote(poll, 1, 1, now=NOW)
    assert await repo.choices_of(poll.id, 1) == (0,)


async def test_removing_a_vote_on_a_closed_single_choice_poll_is_refused(repo):
    poll = await _posted(repo)
    await repo.cast_vote(poll, 1, 0, now=NOW)
    await repo.close(poll.id, now=NOW, closed_by=CREATOR)
    with pytest.raises(PollClosed):
        await repo.cast_vote(poll, 1, 0, now=NOW)
    assert await repo.choices_of(poll.id, 1) == (0,)


async def test_adding_an_answer_on_a_closed_multiple_choice_poll_is_refused(repo):
    poll = await _posted(repo, multiple=True)
    await repo.close(poll.id, now=NOW, closed_by=None)
    with pytest.raises(PollClosed):
        await repo.cast_vote(poll, 1, 2, now=NOW)


async def test_removing_an_answer_on_a_closed_multiple_choice_poll_is_refused(repo):
    poll = await _posted(repo, multiple=True)
    await repo.cast_vote(poll, 1, 2, now=NOW)
    await repo.close(poll.id, now=NOW, closed_by=None)
    with pytest.raises(PollClosed):
        await repo.cast_vote(poll, 1, 2, now=NOW)
    assert await repo.choices_of(poll.id, 1) == (2,)


async def test_closed_poll_refusal_is_in_the_schema(repo, db):
    poll = await _posted(repo)
    await repo.cast_vote(poll, 1, 0, now=NOW)
    await repo.close(poll.id, now=NOW, closed_by=CREATOR)
    conn = _raw(db)
    try:
        with pytest.raises(RULE_ERRORS, match="poll_closed"):
            conn.execute("DELETE FROM votes WHERE poll_id = ?", (poll.id,))
    finally:
        conn.close()


async def test_deleting_a_closed_poll_still_cascades_to_its_votes(repo, db):
    poll = await _posted(repo)
    await repo.cast_vote(poll, 1, 0, now=NOW)
    await repo.close(poll.id, now=NOW, closed_by=CREATOR)
    conn = _raw(db)
    try:
        conn.execute("DELETE FROM polls WHERE id = ?", (poll.id,))
        left = conn.execute("SELECT count(*) FROM votes WHERE poll_id = ?", (poll.id,)).fetchone()[0]
    finally:
        conn.close()
    assert left == 0


async def test_close_records_time_and_closer(repo):
    poll = await _posted(repo)
    assert await repo.close(poll.id, now=NOW + 5, closed_by=CREATOR) is True
    closed = await repo.get(poll.id)
    assert closed is not None
    assert (closed.is_open, closed.closed_at, closed.closed_by) == (False, NOW + 5, CREATOR)


async def test_closing_twice_returns_false_and_keeps_the_first_close(repo):
    poll = await _posted(repo)
    await repo.close(poll.id, now=NOW, closed_by=None)
    assert await repo.close(poll.id, now=NOW + 9, closed_by=CREATOR) is False
    closed = await repo.get(poll.id)
    assert closed is not None and (closed.closed_at, closed.closed_by) == (NOW, None)


# ------------------------------------------------------------------ schema-level proof


async def test_schema_refuses_a_second_single_choice_row_for_one_member(repo, db):
    poll = await _posted(repo)
    await repo.cast_vote(poll, 1, 0, now=NOW)
    conn = _raw(db)
    try:
        with pytest.raises(RULE_ERRORS):
            conn.execute(
                "INSERT INTO votes (poll_id, user_id, slot, option, voted_at) VALUES (?, 1, 0, 1, ?)", (poll.id, NOW)
            )
    finally:
        conn.close()
    assert await _rows_of(db, poll.id, 1) == 1


async def test_schema_refuses_a_single_choice_row_in_another_slot(repo, db):
    poll = await _posted(repo)
    await repo.cast_vote(poll, 1, 0, now=NOW)
    conn = _raw(db)
    try:
        with pytest.raises(RULE_ERRORS, match="bad_slot"):
            conn.execute(
                "INSERT INTO votes (poll_id, user_id, slot, option, voted_at) VALUES (?, 1, 1, 1, ?)", (poll.id, NOW)
            )
    finally:
        conn.close()


async def test_schema_refuses_a_vote_for_an_answer_that_does_not_exist(repo, db):
    poll = await _posted(repo, multiple=True)
    conn = _raw(db)
    try:
        with pytest.raises(RULE_ERRORS, match=r"(?i)foreign key"):
            conn.execute(
                "INSERT INTO votes (poll_id, user_id, slot, option, voted_at) VALUES (?, 1, 9, 9, ?)", (poll.id, NOW)
            )
    finally:
        conn.close()


# ------------------------------------------------------------------ concurrency


async def test_200_concurrent_voters_are_all_counted(repo, db):
    poll = await _posted(repo)
    outcomes = await asyncio.gather(*(repo.cast_vote(poll, user, user % 4, now=NOW) for user in range(200)))
    assert all(o.change is VoteChange.ADDED for o in outcomes)
    tally = await repo.tally(poll)
    assert (tally.counts, tally.voters) == ((50, 50, 50, 50), 200)


async def test_concurrent_votes_are_group_committed(repo, db):
    poll = await _posted(repo)
    before = db.stats.transactions
    await asyncio.gather(*(repo.cast_vote(poll, user, 0, now=NOW) for user in range(200)))
    assert db.stats.largest_batch > 1
    assert db.stats.transactions - before < 200


async def test_single_choice_double_click_votes_then_unvotes(repo, db):
    poll = await _posted(repo)
    first, second = await asyncio.gather(repo.cast_vote(poll, 1, 2, now=NOW), repo.cast_vote(poll, 1, 2, now=NOW))
    assert (first.change, second.change) == (VoteChange.ADDED, VoteChange.REMOVED)
    assert await _rows_of(db, poll.id, 1) == 0


async def test_single_choice_quick_clicks_on_two_answers_leave_one_row(repo, db):
    poll = await _posted(repo)
    first, second = await asyncio.gather(repo.cast_vote(poll, 1, 0, now=NOW), repo.cast_vote(poll, 1, 1, now=NOW))
    assert (first.change, second.change) == (VoteChange.ADDED, VoteChange.MOVED)
    assert await _rows_of(db, poll.id, 1) == 1
    assert await repo.choices_of(poll.id, 1) == (1,)


async def test_multiple_choice_double_click_adds_then_removes(repo):
    poll = await _posted(repo, multiple=True)
    first, second = await asyncio.gather(repo.cast_vote(poll, 1, 3, now=NOW), repo.cast_vote(poll, 1, 3, now=NOW))
    assert (first.change, second.change) == (VoteChange.ADDED, VoteChange.REMOVED)
    assert await repo.choices_of(poll.id, 1) == ()


async def test_many_double_clicks_at_once_never_leave_two_rows(repo, db):
    poll = await _posted(repo)
    clicks = [
        repo.cast_vote(poll, user, option, now=NOW) for user in range(50) for option in (user % 4, (user + 1) % 4)
    ]
    await asyncio.gather(*clicks)
    most = await db.fetchval(
        "SELECT max(n) FROM (SELECT count(*) AS n FROM votes WHERE poll_id = ? GROUP BY user_id) AS per_member",
        (poll.id,),
    )
    assert most == 1
    assert (await repo.tally(poll)).total == 50


def _expected_final(multiple: bool, clicks: list[int]) -> tuple[int, ...]:
    held: set[int] = set()
    for option in clicks:
        if option in held:
            held.discard(option)
        elif multiple:
            held.add(option)
        else:
            held = {option}
    return tuple(sorted(held))


@pytest.mark.parametrize("multiple", [False, True], ids=["single", "multiple"])
async def test_members_moving_votes_concurrently_tally_to_their_final_states(repo, multiple):
    poll = await _posted(repo, multiple=multiple)
    rng = random.Random(7)
    plans = {user: [rng.randrange(4) for _ in range(rng.randint(1, 8))] for user in range(60)}

    async def member(user: int) -> None:
        for option in plans[user]:
            await repo.cast_vote(poll, user, option, now=NOW)

    await asyncio.gather(*(member(user) for user in plans))
    finals = {user: await repo.choices_of(poll.id, user) for user in plans}
    assert finals == {user: _expected_final(multiple, clicks) for user, clicks in plans.items()}
    counts = [0, 0, 0, 0]
    for choices in finals.values():
        for option in choices:
            counts[option] += 1
    tally = await repo.tally(poll)
    assert tally.counts == tuple(counts)
    assert tally.voters == sum(1 for choices in finals.values() if choices)


async def test_concurrent_closers_only_one_wins(repo):
    poll = await _posted(repo)
    results = await asyncio.gather(*(repo.close(poll.id, now=NOW + i, closed_by=i) for i in range(20)))
    assert results.count(True) == 1
    closed = await repo.get(poll.id)
    winner = results.index(True)
    assert closed is not None and (closed.closed_at, closed.closed_by) == (NOW + winner, winner)


async def test_votes_racing_a_close_are_either_counted_or_refused(repo):
    poll = await _posted(repo)
    work = [repo.cast_vote(poll, user, 0, now=NOW) for user in range(30)]
    work.insert(15, repo.close(poll.id, now=NOW, closed_by=CREATOR))
    results = await asyncio.gather(*work, return_exceptions=True)
    votes = [r for r in results if not isinstance(r, bool)]
    accepted = sum(1 for r in votes if not isinstance(r, BaseException))
    assert all(isinstance(r, PollClosed) for r in votes if isinstance(r, BaseException))
    assert (await repo.tally(poll)).total == accepted == 15


# ------------------------------------------------------------------ deadlines and announcements


async def test_next_deadline_is_the_earliest_open_posted_deadline(repo):
    await _posted(repo, duration=600)
    await _posted(repo, duration=120)
    await _posted(repo)  # open-ended
    assert await repo.next_deadline() == NOW + 120


async def test_next_deadline_ignores_announced_and_unposted_polls(repo):
    closed = await _posted(repo, duration=60)
    await repo.close(closed.id, now=NOW, closed_by=CREATOR)
    await repo.mark_announced(closed.id, message_id=1, now=NOW)
    await repo.create(_draft(duration=90), guild_id=GUILD, channel_id=CHANNEL, creator_id=CREATOR, now=NOW)
    later = await _posted(repo, duration=600)
    assert await repo.next_deadline() == later.closes_at


async def test_a_closed_unannounced_poll_is_work_due_until_claimed_then_when_the_claim_runs_out(repo):
    closed = await _posted(repo, duration=600)
    await repo.close(closed.id, now=NOW + 5, closed_by=CREATOR)
    assert await repo.next_deadline() == NOW + 5  # announce it now
    assert await repo.claim_announcements(owner="a", now=NOW + 6, limit=10) == [closed.id]
    assert await repo.next_deadline() == NOW + 6 + ANNOUNCE_LEASE  # another may take it over then
    assert await repo.claim_announcements(owner="b", now=NOW + 7, limit=10) == []
    assert await repo.claim_announcement(closed.id, owner="b", now=NOW + 7) is False
    assert await repo.claim_announcements(owner="b", now=NOW + 6 + ANNOUNCE_LEASE, limit=10) == [closed.id]


async def test_each_announcement_is_claimed_by_one_of_many_claimers_at_once(repo, open_db):
    """Processes sharing the database claim at the same moment: every poll goes to exactly one."""
    polls = [await _posted(repo, duration=60) for _ in range(30)]
    assert sorted(await repo.close_due(NOW + 60)) == [p.id for p in polls]
    claimers = [PollRepository(await open_db()) for _ in range(3)]
    rounds = await asyncio.gather(*(
        c.claim_announcements(owner=f"p{i}", now=NOW + 61, limit=4) for i, c in enumerate(claimers) for _ in range(5)
    ))
    claimed = [poll_id for got in rounds for poll_id in got]
    assert sorted(claimed) == [p.id for p in polls]  # each exactly once


async def test_a_restarted_process_takes_back_its_earlier_copys_claims_at_once(repo):
    poll = await _posted(repo, duration=60)
    await repo.close_due(NOW + 60)
    assert await repo.claim_announcements(owner="shards:0/old", now=NOW + 61, limit=5) == [poll.id]
    assert await repo.reclaim_own(instance="shards:1", owner="shards:1/new") == 0
    assert await repo.reclaim_own(instance="shards:", owner="shards:/new") == 0  # a name, not a prefix
    assert await repo.reclaim_own(instance="shards:0", owner="shards:0/old") == 0  # not its own live claims
    assert await repo.reclaim_own(instance="shards:0", owner="shards:0/new") == 1
    assert await repo.claim_announcements(owner="shards:0/new", now=NOW + 62, limit=5) == [poll.id]


async def test_two_copies_of_one_instance_never_hold_one_claim_together(repo):
    """A rolling restart: the old and the new copy share an instance name, not a claim."""
    poll = await _posted(repo)
    await repo.close(poll.id, now=NOW, closed_by=None)
    assert await repo.claim_announcement(poll.id, owner="shards:0/old", now=NOW)
    assert await repo.claim_announcement(poll.id, owner="shards:0/new", now=NOW + 1) is False
    assert await repo.mark_announce_started(poll.id, owner="shards:0/new", now=NOW + 1) is False
    assert await repo.mark_announce_started(poll.id, owner="shards:0/old", now=NOW + 1)


async def test_close_due_closes_each_poll_once_across_concurrent_closers(repo, open_db):
    polls = [await _posted(repo, duration=60) for _ in range(20)]
    closers = [PollRepository(await open_db()) for _ in range(3)]
    results = await asyncio.gather(*(c.close_due(NOW + 60, limit=7) for c in closers for _ in range(3)))
    assert sorted(i for got in results for i in got) == [p.id for p in polls]


async def test_next_deadline_without_deadlines_is_none(repo):
    await _posted(repo)
    assert await repo.next_deadline() is None


async def test_due_lists_polls_past_their_deadline_earliest_first(repo):
    second = await _posted(repo, duration=300)
    first = await _posted(repo, duration=120)
    await _posted(repo, duration=3600)
    await _posted(repo)
    assert await repo.due(NOW + 300) == [first.id, second.id]


async def test_due_includes_a_deadline_exactly_now(repo):
    poll = await _posted(repo, duration=120)
    assert (await repo.due(NOW + 119), await repo.due(NOW + 120)) == ([], [poll.id])


async def test_due_excludes_closed_polls(repo):
    poll = await _posted(repo, duration=60)
    await repo.close(poll.id, now=NOW + 60, closed_by=None)
    assert await repo.due(NOW + 1000) == []


async def test_unannounced_lists_closed_polls_in_closing_order(repo):
    a = await _posted(repo)
    b = await _posted(repo)
    await _posted(repo)  # still open
    await repo.close(b.id, now=NOW + 1, closed_by=None)
    await repo.close(a.id, now=NOW + 2, closed_by=None)
    assert [p.id for p in await repo.unannounced()] == [b.id, a.id]


async def test_mark_announced_removes_the_poll_from_unannounced(repo):
    poll = await _posted(repo)
    await repo.close(poll.id, now=NOW, closed_by=None)
    await repo.mark_announced(poll.id, message_id=555, now=NOW + 3)
    announced = await repo.get(poll.id)
    assert await repo.unannounced() == []
    assert announced is not None and (announced.announcement_id, announced.announced_at) == (555, NOW + 3)


async def test_mark_announced_without_message_still_counts_as_done(repo):
    poll = await _posted(repo)
    await repo.close(poll.id, now=NOW, closed_by=None)
    await repo.mark_announced(poll.id, message_id=None, now=NOW + 3)
    assert await repo.unannounced() == []


async def test_mark_announce_started_keeps_the_first_time(repo):
    poll = await _posted(repo)
    await repo.close(poll.id, now=NOW, closed_by=None)
    assert await repo.claim_announcement(poll.id, owner="me", now=NOW)
    assert await repo.mark_announce_started(poll.id, owner="me", now=NOW + 1)
    assert await repo.mark_announce_started(poll.id, owner="me", now=NOW + 2)
    started = await repo.get(poll.id)
    assert started is not None and started.announce_started_at == NOW + 1
    assert [p.id for p in await repo.unannounced()] == [poll.id]  # started is not announced


async def test_a_process_whose_claim_was_taken_over_may_not_start_sending(repo):
    """A slow process's lease ran out and another claimed the poll: the slow one must not send."""
    poll = await _posted(repo)
    await repo.close(poll.id, now=NOW, closed_by=None)
    assert await repo.claim_announcement(poll.id, owner="slow", now=NOW)
    later = NOW + ANNOUNCE_LEASE + 1
    assert await repo.mark_announce_started(poll.id, owner="slow", now=later) is False  # lease ran out
    assert await repo.claim_announcement(poll.id, owner="other", now=later)
    assert await repo.mark_announce_started(poll.id, owner="slow", now=later) is False
    assert await repo.mark_announce_started(poll.id, owner="other", now=later + 1)


async def test_starting_to_send_renews_the_lease(repo):
    poll = await _posted(repo)
    await repo.close(poll.id, now=NOW, closed_by=None)
    assert await repo.claim_announcement(poll.id, owner="me", now=NOW)
    assert await repo.mark_announce_started(poll.id, owner="me", now=NOW + 100)
    assert await repo.claim_announcement(poll.id, owner="other", now=NOW + ANNOUNCE_LEASE + 1) is False


async def test_count_open_counts_polls_not_closed(repo):
    await _posted(repo)
    closed = await _posted(repo)
    await repo.close(closed.id, now=NOW, closed_by=None)
    assert await repo.count_open() == 1


# ------------------------------------------------------------------ voters and export rows


async def test_voters_by_option_lists_members_per_answer(repo):
    poll = await _posted(repo)
    for user, option, at in [(3, 1, 3.0), (1, 1, 1.0), (2, 0, 2.0)]:
        await repo.cast_vote(poll, user, option, now=NOW + at)
    voters = await repo.voters_by_option(poll)
    assert voters.keys() == {0, 1}
    assert voters[0] == [2] and sorted(voters[1]) == [1, 3]


async def test_voters_by_option_reads_at_most_the_limit_per_answer(repo):
    poll = await _posted(repo)
    await asyncio.gather(*(repo.cast_vote(poll, user, 0, now=NOW) for user in range(1, 31)))
    voters = await repo.voters_by_option(poll, limit=10)
    assert len(voters[0]) == 10


async def test_votes_are_listed_in_time_order(repo):
    poll = await _posted(repo, multiple=True)
    for user, option, at in [(1, 2, 5.0), (2, 0, 1.0), (1, 0, 3.0)]:
        await repo.cast_vote(poll, user, option, now=NOW + at)
    assert [(v.user_id, v.option, v.voted_at) for v in await repo.votes(poll.id)] == [
        (2, 0, NOW + 1),
        (1, 0, NOW + 3),
        (1, 2, NOW + 5),
    ]


async def test_five_hundred_concurrent_creates_each_read_back_their_poll(db):
    # Reads overlapping on one connection once saw snapshots from before committed writes.
    try:
        repo = PollRepository(db)
        draft = PollDraft(question="Lunch?", options=("Pizza", "Sushi"))
        polls = await asyncio.gather(
            *(repo.create(draft, guild_id=1, channel_id=2, creator_id=3, now=NOW) for _ in range(500))
        )
        assert sorted(p.number for p in polls) == list(range(1, 501))
        found = await asyncio.gather(*(repo.get(p.id) for p in polls))
        assert all(f is not None and f.id == p.id for f, p in zip(found, polls, strict=True))
    finally:
        await db.close()


async def test_a_live_copy_of_a_process_keeps_its_name_until_it_ends(open_db):
    """A rolling restart: the new copy starts while the old one still runs. Only one may hold
    the instance's name (and take back its claims); once the old one's database is closed,
    the name is free again. SQLite is one process by design, so there it is always free."""
    old, new = await open_db(), await open_db()
    assert await old.hold_instance_lock("shards:0")
    if old.dialect == "sqlite":
        assert await new.hold_instance_lock("shards:0")
        return
    assert await new.hold_instance_lock("shards:0") is False
    assert await new.hold_instance_lock("shards:1")
    await old.close()
    # The server frees a closed session's locks when its backend has exited, a moment after
    # the client hung up: the name must come free soon, not necessarily at once.
    for _ in range(100):
        if await new.hold_instance_lock("shards:0"):
            break
        await asyncio.sleep(0.05)
    else:
        raise AssertionError("the old copy's name was still held 5 s after it closed")
