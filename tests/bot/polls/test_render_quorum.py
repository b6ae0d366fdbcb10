"""Cards with a quorum, an edit mark and removed answers: what they say, within Discord's limits."""

from __future__ import annotations

import struct

import poll_factory
import pytest

from bot.polls.chart import results_chart
from bot.polls.render import (
    DESCRIPTION_LIMIT,
    EMBED_TOTAL,
    FIELD_NAME_LIMIT,
    FIELD_VALUE_LIMIT,
    MESSAGE_LIMIT,
    Card,
    announcement,
    poll_card,
    voters_card,
)
from bot.polls.tally import Tally

CLOSES_AT = poll_factory.CREATED_AT + 86_400
CLOSED_AT = poll_factory.CREATED_AT + 3_600
EDITED_AT = poll_factory.CREATED_AT + 600
OPTIONS = ("Pizza", "Sushi", "Tacos", "Salad")


def _poll(**overrides):
    overrides.setdefault("options", OPTIONS)
    return poll_factory.make_poll(**overrides)


def _text(card: Card) -> str:
    return "\n".join([card.title, card.description, *(n + "\n" + v for n, v in card.fields), card.footer])


def _fits(card: Card) -> bool:
    return (
        card.size <= EMBED_TOTAL
        and len(card.description) <= DESCRIPTION_LIMIT
        and len(card.fields) <= 25
        and all(0 < len(n) <= FIELD_NAME_LIMIT and 0 < len(v) <= FIELD_VALUE_LIMIT for n, v in card.fields)
    )


TWELVE = Tally((8, 4, 0, 0), voters=12)
TWENTY_FIVE = Tally((20, 5, 0, 0), voters=25)


# ------------------------------------------------------------------------ the quorum


@pytest.mark.parametrize("show_counts", [True, False], ids=["shown", "hidden"])
def test_open_card_shows_how_many_voters_are_needed(show_counts):
    card = poll_card(_poll(quorum=20), TWELVE, show_counts=show_counts)
    assert "12 of 20 voters needed." in card.description
    assert "Quorum" not in card.description


def test_open_card_says_when_the_quorum_is_reached():
    card = poll_card(_poll(quorum=20), TWENTY_FIVE, show_counts=True)
    assert "Quorum reached: 25 of 20 voters." in card.description
    assert "needed" not in card.description


def test_a_poll_without_quorum_says_nothing_of_one():
    for poll in (_poll(), _poll(closed_at=CLOSED_AT)):
        assert "uorum" not in _text(poll_card(poll, TWELVE, show_counts=True))
        assert "needed" not in _text(poll_card(poll, TWELVE, show_counts=True))


@pytest.mark.parametrize("hide_results", [False, True], ids=["public", "hidden-results"])
def test_a_missed_quorum_names_no_winner(hide_results):
    poll = _poll(quorum=20, closed_at=CLOSED_AT, number=3, hide_results=hide_results)
    rendered = announcement(poll, TWELVE, chart_filename="results.png")
    assert rendered.content == "📊 Poll #3 has closed. Quorum not reached: 12 of 20 voters."
    (card,) = rendered.cards
    assert "Quorum not reached: 12 of 20 voters." in card.description
    closed = poll_card(poll, TWELVE, show_counts=True)
    assert "Quorum not reached: 12 of 20 voters." in closed.description
    for text in (rendered.content, _text(card), _text(closed)):
        assert "Winner" not in text and "Tie" not in text
    assert "8 votes" in card.fields[0][1]  # the counts are still shown in full


@pytest.mark.parametrize("hide_results", [False, True], ids=["public", "hidden-results"])
def test_a_reached_quorum_is_said_before_the_winner(hide_results):
    poll = _poll(quorum=20, closed_at=CLOSED_AT, number=3, hide_results=hide_results)
    rendered = announcement(poll, TWENTY_FIVE, chart_filename=None)
    assert rendered.content == (
        "📊 Poll #3 has closed. Quorum reached: 25 of 20 voters. Winner: **1. Pizza** with 20 votes."
    )
    assert "Quorum reached: 25 of 20 voters. Winner: **1. Pizza**" in rendered.cards[0].description
    assert "Quorum reached: 25 of 20 voters. Winner" in poll_card(poll, TWENTY_FIVE, show_counts=True).description


def test_multiple_choice_counts_voters_not_votes():
    poll = _poll(quorum=3, multiple=True, closed_at=CLOSED_AT)
    rendered = announcement(poll, Tally((2, 2, 1, 0), voters=2), chart_filename=None)
    assert "Quorum not reached: 2 of 3 voters." in rendered.content


def test_a_quorum_of_one_is_singular():
    card = poll_card(_poll(quorum=1), Tally((0, 0, 0, 0), voters=0), show_counts=True)
    assert "0 of 1 voter needed." in card.description


# ------------------------------------------------------------------------ the edit mark


def test_an_edited_poll_says_so_open_and_closed():
    open_card = poll_card(_poll(edited_at=EDITED_AT, closes_at=CLOSES_AT), TWELVE, show_counts=True)
    assert f"Edited <t:{int(EDITED_AT)}:R>." in open_card.description
    closed = poll_card(_poll(edited_at=EDITED_AT, closed_at=CLOSED_AT), TWELVE, show_counts=True)
    assert f"Edited <t:{int(EDITED_AT)}:R>." in closed.description
    assert "Edited" not in poll_card(_poll(), TWELVE, show_counts=True).description


# ------------------------------------------------------------------------ removed answers


def test_removed_answers_are_left_out_and_numbers_stay():
    poll = _poll(removed=frozenset({1}), closed_at=CLOSED_AT)
    tally = Tally((3, 0, 5, 0), voters=8)
    for card in (poll_card(poll, tally, show_counts=True), announcement(poll, tally, chart_filename=None).cards[0]):
        assert [n for n, _ in card.fields] == ["1. Pizza", "3. Tacos", "4. Salad"]
        assert "Sushi" not in _text(card)
    assert "Winner: **3. Tacos** with 5 votes." in announcement(poll, tally, chart_filename=None).content


def test_voters_card_names_answers_by_their_own_number():
    poll = _poll(removed=frozenset({0}))
    card = voters_card(poll, {2: [11, 12]}, budget=EMBED_TOTAL)
    assert card is not None and [n for n, _ in card.fields] == ["3. Tacos"]


def test_chart_leaves_removed_answers_out():
    tally = Tally((3, 0, 5, 0), voters=8)
    every = results_chart("Lunch?", OPTIONS, tally)
    fewer = results_chart("Lunch?", OPTIONS, tally, frozenset({1, 3}), False)
    height = lambda png: struct.unpack(">II", png[16:24])[1]  # noqa: E731 (the IHDR chunk)
    assert height(fewer) < height(every)


# ------------------------------------------------------------------------ limits


LONG = tuple(f"{i:02d} " + "*" * 197 for i in range(25))  # escaping doubles every "*"


@pytest.mark.parametrize("voters", [12, 25], ids=["missed", "reached"])
@pytest.mark.parametrize("removed", [frozenset(), frozenset({0, 7, 24})], ids=["all", "removed"])
def test_twenty_five_long_answers_with_a_quorum_and_an_edit_fit(voters, removed):
    counts = tuple(1 if i == 3 else 0 for i in range(25)) if voters == 12 else tuple(range(25))
    tally = Tally(counts, voters=voters)
    base = {
        "question": "_" * 300, "options": LONG, "quorum": 1_000_000 if voters == 12 else 20, "multiple": True,
        "max_choices": 24, "anonymous": True, "hide_results": True, "role_id": 123_456_789_012_345_678,
        "closes_at": CLOSES_AT, "edited_at": EDITED_AT, "removed": removed, "number": 12_345,
    }
    open_poll = _poll(**base)
    closed = _poll(**base, closed_at=CLOSED_AT, closed_by=444)
    cards = [
        poll_card(open_poll, tally, show_counts=True, creator_name="N" * 32),
        poll_card(open_poll, tally, show_counts=False, creator_name="N" * 32),
        poll_card(closed, tally, show_counts=True, creator_name="N" * 32),
    ]
    rendered = announcement(closed, tally, chart_filename="results.png")
    cards += rendered.cards
    assert all(_fits(card) for card in cards), [card.size for card in cards]
    assert len(rendered.content) <= MESSAGE_LIMIT
    for card in cards[2:]:
        assert "Quorum" in card.description
    assert all(len(card.fields) == 25 - len(removed) for card in cards)
