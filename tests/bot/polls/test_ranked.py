"""Instant-runoff on hand-worked examples, and against a one-elimination-per-round reference."""

from __future__ import annotations

import random
from collections import Counter

import pytest

from bot.polls.ranked import Round, count_encoded, count_groups, instant_runoff, ordinal

A, B, C, D, E = range(5)


def times(n: int, ranking: tuple[int, ...]) -> list[tuple[int, ...]]:
    return [ranking] * n


def test_a_majority_of_first_preferences_wins_in_round_1():
    ballots = times(3, (A,)) + times(1, (B, A)) + times(1, (C,))
    result = instant_runoff((A, B, C), ballots)
    assert result.winner == A and result.tied == ()
    assert result.rounds == (Round(1, {A: 3, B: 1, C: 1}, continuing=5, exhausted=0),)
    assert result.first_preferences == {A: 3, B: 1, C: 1}
    assert result.ballots == 5


def test_transfers_tie_break_and_exhausted_ballots_over_three_rounds():
    """Round 1: A 4, B 3, C 2, D 1 of 10, no majority: D is out, its ballot goes to C.
    Round 2: A 4, B 3, C 3: B and C tie for fewest; in round 1 C had fewer (2 < 3), so C is
    out: two of its ballots go on to B, the one that came from D ranks nothing else and is
    exhausted. Round 3: A 4, B 5 of 9 ballots still in the count: B wins, though A led on
    first preferences."""
    ballots = times(4, (A, B)) + times(3, (B, A)) + times(2, (C, B)) + times(1, (D, C))
    result = instant_runoff((A, B, C, D), ballots)
    assert [r.counts for r in result.rounds] == [{A: 4, B: 3, C: 2, D: 1}, {A: 4, B: 3, C: 3}, {A: 4, B: 5}]
    assert [r.eliminated for r in result.rounds] == [(D,), (C,), ()]
    assert [r.exhausted for r in result.rounds] == [0, 0, 1]
    assert [r.continuing for r in result.rounds] == [10, 10, 9]
    assert result.winner == B and result.exhausted == 1
    assert result.first_preferences == {A: 4, B: 3, C: 2, D: 1}


def test_the_tie_break_looks_back_past_a_round_where_they_also_tied():
    """Round 3: B 5 and C 5 tie for fewest; round 2 they tied too (4 and 4); round 1 B had
    fewer (3 < 4): B is out, not C (the higher number, which the last resort would pick)."""
    ballots = (
        times(10, (A,)) + times(3, (B,)) + times(4, (C,)) + [(D, B), (D, C)] + [(E, B)]
    )
    result = instant_runoff((A, B, C, D, E), ballots)
    assert [r.counts for r in result.rounds] == [
        {A: 10, B: 3, C: 4, D: 2, E: 1},
        {A: 10, B: 4, C: 4, D: 2},
        {A: 10, B: 5, C: 5},
        {A: 10, C: 5},
    ]
    assert [r.eliminated for r in result.rounds] == [(E,), (D,), (B,), ()]
    # A's 10 of 20 is no strict majority in round 3; after B, 10 of the 15 left is.
    assert [r.exhausted for r in result.rounds] == [0, 0, 0, 5]
    assert result.winner == A


def test_tied_in_every_round_the_higher_answer_number_goes():
    result = instant_runoff((A, B, C), [*times(2, (A,)), (B,), (C,)])
    assert result.rounds[0].eliminated == (C,)
    assert result.rounds[1].counts == {A: 2, B: 1}
    assert result.rounds[1].exhausted == 1
    assert result.winner == A  # 2 of the 3 ballots still in the count


def test_the_last_two_tied_exactly_is_a_tie_with_no_winner():
    ballots = times(3, (A, C)) + times(2, (B, C)) + [(C, B)]
    result = instant_runoff((A, B, C), ballots)
    assert [r.counts for r in result.rounds] == [{A: 3, B: 2, C: 1}, {A: 3, B: 3}]
    assert result.winner is None and result.tied == (A, B)
    assert result.final_tally(3).counts == (3, 3, 0)


def test_answers_without_votes_are_eliminated_together():
    ballots = times(2, (A,)) + times(2, (B, C)) + [(C,)]
    result = instant_runoff((A, B, C, D, E), ballots)
    assert [r.eliminated for r in result.rounds] == [(D, E), (C,), ()]
    assert result.rounds[1].counts == {A: 2, B: 2, C: 1}
    assert result.rounds[2].exhausted == 1
    assert result.tied == (A, B) and result.winner is None


def test_twenty_five_answers_one_elimination_per_round():
    """Answer 25 has 10 first preferences; answers 1–24 one each, every one of those ballots
    ranking answer 25 second. All 24 tie every round, so the highest number goes: 24, 23, …;
    each moves one ballot to answer 25, which holds 18 of 34 (a majority) in round 9."""
    last = 24
    ballots = times(10, (last,)) + [(k, last) for k in range(24)]
    result = instant_runoff(range(25), ballots)
    assert len(result.rounds) == 9
    assert [r.eliminated for r in result.rounds[:8]] == [(k,) for k in range(23, 15, -1)]
    assert [r.counts[last] for r in result.rounds] == list(range(10, 19))
    assert result.winner == last and result.exhausted == 0
    assert len(result.first_preferences) == 25


def test_removed_answers_and_repeats_on_a_ballot_are_passed_over():
    # Answer B is no longer on the poll: (B, C) counts for C; (A, A, C) is (A, C); (B,) is exhausted.
    result = instant_runoff((A, C), [(B, C), (A, A, C), (B,)])
    assert result.rounds[0].counts == {A: 1, C: 1}
    assert result.rounds[0].exhausted == 1
    assert result.tied == (A, C)


def test_no_ballots_no_winner_and_no_tie():
    result = instant_runoff((A, B), [])
    assert result.winner is None and result.tied == ()
    assert result.ballots == 0 and len(result.rounds) == 1


def test_grouped_ballots_count_as_many():
    grouped = count_groups((A, B, C), [((A, B), 4), ((B, A), 3), ((C, B), 2)])
    assert grouped == instant_runoff((A, B, C), times(4, (A, B)) + times(3, (B, A)) + times(2, (C, B)))
    assert grouped.winner == B


def reference(answers: list[int], ballots: list[tuple[int, ...]]) -> tuple[int | None, tuple[int, ...]]:
    """The textbook count, one elimination per round, a full pass over every ballot per
    round, with the same tie rules: what the fast count with batch elimination must equal."""
    continuing = list(answers)
    history: list[dict[int, int]] = []
    while True:
        counts = dict.fromkeys(continuing, 0)
        for ballot in ballots:
            top = next((a for a in ballot if a in counts), None)
            if top is not None:
                counts[top] += 1
        total = sum(counts.values())
        if total == 0:
            return None, ()
        best = max(counts.values())
        if best * 2 > total:
            return next(a for a, c in counts.items() if c == best), ()
        if all(c == best for c in counts.values()):
            return None, tuple(sorted(counts))
        low = min(counts.values())
        tied = [a for a, c in counts.items() if c == low]
        for earlier in reversed(history):
            if len(tied) == 1:
                break
            fewest = min(earlier[a] for a in tied)
            tied = [a for a in tied if earlier[a] == fewest]
        history.append(counts)
        continuing.remove(max(tied))


@pytest.mark.parametrize("seed", range(300))
def test_batch_elimination_of_unvoted_answers_never_changes_the_result(seed):
    rng = random.Random(seed)
    answers = list(range(rng.randint(2, 8)))
    ballots = [
        tuple(rng.sample(answers, rng.randint(1, len(answers))))
        for _ in range(rng.randint(0, 30))
    ]
    # Skewed first choices, so some answers start with no votes and ties are common.
    ballots = [b for b in ballots if b[0] < max(2, len(answers) // 2) or rng.random() < 0.2]
    result = instant_runoff(answers, ballots)
    assert (result.winner, result.tied) == reference(answers, ballots)
    assert sum(result.rounds[0].counts.values()) + result.rounds[0].exhausted == len(ballots)
    for round_ in result.rounds:
        assert sum(round_.counts.values()) == round_.continuing == len(ballots) - round_.exhausted


def test_ordinals():
    assert [ordinal(n) for n in (1, 2, 3, 4, 11, 12, 13, 21, 22, 25)] == [
        "1st", "2nd", "3rd", "4th", "11th", "12th", "13th", "21st", "22nd", "25th"
    ]


@pytest.mark.parametrize("seed", range(50))
def test_counting_the_stored_text_equals_counting_the_ballots(seed):
    """`count_encoded` (the rankings as stored, parsed by numpy) against `count_groups` on the
    same ballots, answers removed from the poll included (ballots still naming them)."""
    rng = random.Random(seed)
    every = list(range(rng.randint(2, 25)))
    counted = sorted(rng.sample(every, rng.randint(1, len(every))))
    ballots = [tuple(rng.sample(every, rng.randint(1, len(every)))) for _ in range(rng.randint(0, 200))]
    grouped = Counter(ballots)
    encoded = [(",".join(map(str, ranking)), n) for ranking, n in grouped.items()]
    assert count_encoded(counted, encoded) == count_groups(counted, grouped.items())


def test_stored_text_Quorum_never_writes_is_counted_as_far_as_it_can_be_read():
    stored = [("0,1", 2), ("x,2", 1), ("-1", 1), ("7,,1", 1), ("99", 1), ("2,1", 0)]
    assert count_encoded((A, B, C), stored) == count_groups((A, B, C), [((A, B), 2), ((C,), 1), ((), 1), ((B,), 1),
                                                                         ((), 1)])
    assert count_encoded((A, B), []) == count_groups((A, B), [])
