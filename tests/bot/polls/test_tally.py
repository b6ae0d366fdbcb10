"""Counting: per-answer counts, whole percentages that add up to 100, winners and ties.

hypothesis is not installed in this environment, so the properties are checked over a
seeded loop of many random tallies instead.
"""

from __future__ import annotations

import random

from bot.polls.tally import Tally, bar, plural, winner_line

OPTIONS = ("Pizza", "Sushi", "Tacos")


def _random_tallies(count: int = 3000, seed: int = 20240101):
    rng = random.Random(seed)
    for _ in range(count):
        n = rng.randint(2, 25)
        scale = rng.choice((1, 3, 10, 1000, 1_000_000))
        counts = tuple(rng.randint(0, scale) if rng.random() > 0.3 else 0 for _ in range(n))
        yield Tally(counts, voters=sum(counts))


# ------------------------------------------------------------------ counts


def test_from_counts_fills_missing_answers_with_zero():
    assert Tally.from_counts(4, {1: 3, 3: 2}, voters=5).counts == (0, 3, 0, 2)


def test_from_counts_keeps_the_voter_count():
    assert Tally.from_counts(2, {0: 4, 1: 3}, voters=5).voters == 5


def test_total_is_the_sum_of_votes_not_voters():
    assert Tally((4, 3, 2), voters=5).total == 9


# ------------------------------------------------------------------ percentages


def test_percentages_of_a_simple_split():
    assert Tally((1, 1, 2), voters=4).percentages() == (25, 25, 50)


def test_percentages_of_a_three_way_tie_sum_to_100():
    assert Tally((1, 1, 1), voters=3).percentages() == (34, 33, 33)


def test_percentages_give_the_spare_point_to_the_largest_remainder():
    # 2/3 = 66.67, 1/3 = 33.33: the larger remainder gets rounded up.
    assert Tally((2, 1), voters=3).percentages() == (67, 33)


def test_percentages_with_no_votes_are_all_zero():
    assert Tally((0, 0, 0), voters=0).percentages() == (0, 0, 0)


def test_percentages_always_sum_to_exactly_100_when_there_are_votes():
    checked = 0
    for tally in _random_tallies():
        if tally.total == 0:
            continue
        assert sum(tally.percentages()) == 100, tally.counts
        checked += 1
    assert checked > 2000


def test_percentages_never_give_a_point_to_an_answer_without_votes():
    for tally in _random_tallies():
        for count, pct in zip(tally.counts, tally.percentages(), strict=True):
            if count == 0:
                assert pct == 0, tally.counts


def test_percentages_are_within_one_point_of_the_exact_share():
    for tally in _random_tallies():
        if tally.total == 0:
            continue
        for count, pct in zip(tally.counts, tally.percentages(), strict=True):
            assert abs(pct - count * 100 / tally.total) < 1, tally.counts


def test_percentages_keep_the_order_of_the_counts():
    for tally in _random_tallies():
        pcts = tally.percentages()
        for i in range(len(pcts)):
            for j in range(len(pcts)):
                if tally.counts[i] > tally.counts[j]:
                    assert pcts[i] >= pcts[j], tally.counts


def test_percentages_of_a_25_way_tie_sum_to_100():
    pcts = Tally((1,) * 25, voters=25).percentages()
    assert pcts == (4,) * 25


def test_percentages_of_a_7_way_tie_hand_out_the_spare_points_first_come():
    # 100 / 7 = 14.28…: two spare points, to the first two answers.
    assert Tally((1,) * 7, voters=7).percentages() == (15, 15, 14, 14, 14, 14, 14)


# ------------------------------------------------------------------ leaders


def test_leaders_with_no_votes_are_empty():
    assert Tally((0, 0, 0), voters=0).leaders() == ()


def test_leader_is_the_single_answer_with_most_votes():
    assert Tally((1, 5, 2), voters=8).leaders() == (1,)


def test_leaders_of_a_tie_are_all_top_answers_in_order():
    assert Tally((3, 1, 3), voters=7).leaders() == (0, 2)


def test_leaders_of_a_25_way_tie_are_all_answers():
    assert Tally((2,) * 25, voters=50).leaders() == tuple(range(25))


# ------------------------------------------------------------------ text


def test_winner_line_names_the_winner_with_number_and_votes():
    assert winner_line(OPTIONS, Tally((1, 5, 2), voters=8)) == "Winner: **2. Sushi** with 5 votes."


def test_winner_line_uses_singular_for_one_vote():
    assert winner_line(OPTIONS, Tally((0, 0, 1), voters=1)) == "Winner: **3. Tacos** with 1 vote."


def test_winner_line_of_a_tie_names_every_leader():
    assert winner_line(OPTIONS, Tally((2, 0, 2), voters=4)) == (
        "Tie between **1. Pizza**, **3. Tacos** with 2 votes each."
    )


def test_winner_line_with_no_votes_says_so():
    assert winner_line(OPTIONS, Tally((0, 0, 0), voters=0)) == "No votes were cast."


def test_winner_line_groups_thousands():
    assert winner_line(OPTIONS, Tally((1234, 0, 0), voters=1234)).endswith("with 1,234 votes.")


def test_plural_uses_the_given_plural_form():
    assert (plural(1, "reply", "replies"), plural(2, "reply", "replies")) == ("1 reply", "2 replies")


def test_plural_of_zero_is_plural():
    assert plural(0, "vote") == "0 votes"


def test_bar_is_empty_with_no_votes():
    assert bar(0, 0) == "░" * 10


def test_bar_is_full_for_all_votes():
    assert bar(7, 7) == "█" * 10


def test_bar_shows_at_least_one_cell_for_any_vote():
    assert bar(1, 1000) == "█" + "░" * 9


def test_bar_always_has_the_requested_width():
    for count in range(0, 101):
        assert len(bar(count, 100, width=12)) == 12
