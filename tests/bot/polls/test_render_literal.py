"""Members' text on every poll surface shows as typed: escaped where Discord renders markdown,
untouched where it is plain text, and the cards still within Discord's limits."""

from __future__ import annotations

import poll_factory
import pytest
from markdown_oracle import HOSTILE, OPTION_HOSTILE, assert_literal, assert_plain, structure
from test_render import _violations

from bot.markdown import drop_dangling_backslash, escape
from bot.polls.render import (
    BUTTON_LABEL_LIMIT,
    FIELD_NAME_LIMIT,
    announcement,
    button_label,
    poll_card,
    shorten,
    vote_confirmation,
    voters_card,
)
from bot.polls.tally import Tally

CLOSED_AT = 1_700_003_600.0
CLOSES_AT = 1_700_086_400.0
# Characters that escaping always doubles (`|` too, though it can't be typed in an answer).
MARKDOWN = "\\*_~`[]<|"


def _markdown_text(i: int, length: int) -> str:
    """Distinct texts made only of markdown characters."""
    return (MARKDOWN[i % len(MARKDOWN)] * (i // len(MARKDOWN) + 1) + MARKDOWN * length)[:length]


MARKDOWN_OPTIONS = tuple(_markdown_text(i, 200) for i in range(25))
MARKDOWN_QUESTION = _markdown_text(0, 300)

option_inputs = pytest.mark.parametrize("typed", OPTION_HOSTILE.values(), ids=OPTION_HOSTILE.keys())
question_inputs = pytest.mark.parametrize("typed", HOSTILE.values(), ids=HOSTILE.keys())


def _poll(**overrides):
    return poll_factory.make_poll(**overrides)


def _names(card) -> list[str]:
    return [name for name, _ in card.fields]


# ------------------------------------------------------------------ the question


@question_inputs
def test_question_on_the_poll_card_is_literal(typed):
    card = poll_card(_poll(question=typed, role_id=987, closes_at=CLOSES_AT), Tally((1, 0), 1), show_counts=True)
    assert_literal(card.description, "embed_description", typed)
    # Quorum's own markup is still there: its bold, the role mention, the timestamps.
    assert f"**{escape(typed)}**" in card.description
    assert "<@&987>" in card.description and f"<t:{int(CLOSES_AT)}:R>" in card.description


@question_inputs
def test_question_in_the_announcement_is_literal(typed):
    rendered = announcement(_poll(question=typed, closed_at=CLOSED_AT), Tally((1, 0), 1), chart_filename=None)
    assert_literal(rendered.cards[0].description, "embed_description", typed)


# ------------------------------------------------------------------ answers


@option_inputs
def test_answer_in_the_poll_card_field_names_is_literal(typed):
    card = poll_card(_poll(options=(typed, "Plain")), Tally((0, 0), 0), show_counts=True)
    assert_literal(_names(card)[0], "embed_field_name", typed)


@option_inputs
def test_button_label_is_the_answer_exactly_as_typed(typed):
    assert button_label(typed) == typed


@option_inputs
def test_winner_on_the_closed_card_is_literal(typed):
    card = poll_card(_poll(options=(typed, "Plain"), closed_at=CLOSED_AT), Tally((2, 1), 3), show_counts=True)
    assert f"Winner: **1. {escape(typed)}** with 2 votes." in card.description
    assert_literal(card.description, "embed_description", typed)


@option_inputs
def test_winner_in_the_announcement_content_and_embed_is_literal(typed):
    rendered = announcement(_poll(options=(typed, "Plain"), closed_at=CLOSED_AT), Tally((2, 1), 3), chart_filename=None)
    assert_literal(rendered.content, "message", typed)
    assert_literal(rendered.cards[0].description, "embed_description", typed)
    assert_literal(_names(rendered.cards[0])[0], "embed_field_name", typed)


@option_inputs
def test_tie_in_the_announcement_is_literal(typed):
    rendered = announcement(_poll(options=("Plain", typed), closed_at=CLOSED_AT), Tally((2, 2), 4), chart_filename=None)
    assert f"Tie between **1. Plain**, **2. {escape(typed)}** with 2 votes each." in rendered.content
    assert_literal(rendered.content, "message", typed)
    assert_literal(rendered.cards[0].description, "embed_description", typed)


@option_inputs
def test_answer_in_the_voters_card_is_literal(typed):
    card = voters_card(_poll(options=(typed, "Plain")), {0: [1, 2]}, budget=6000)
    assert_literal(_names(card)[0], "embed_field_name", typed)


@option_inputs
@pytest.mark.parametrize("change", ["added", "moved", "removed"])
def test_single_choice_confirmation_is_literal(typed, change):
    text = vote_confirmation(_poll(options=(typed, "Plain")), change, 0, () if change == "removed" else (0,))
    assert_literal(text, "message", typed)


@option_inputs
@pytest.mark.parametrize("change", ["added", "removed"])
def test_multiple_choice_confirmation_and_its_list_are_literal(typed, change):
    poll = _poll(options=(typed, "Plain"), multiple=True)
    text = vote_confirmation(poll, change, 0, (0, 1) if change == "added" else (1,))
    assert_literal(text, "message", typed)
    if change == "added":
        assert f"• {escape(typed)}" in text


@question_inputs
def test_creator_name_in_the_footer_is_plain_text_as_typed(typed):
    card = poll_card(_poll(), Tally((0, 0), 0), show_counts=True, creator_name=typed)
    assert_plain(card.footer, typed)
    assert card.footer.endswith(f"asked by {typed}")


# ------------------------------------------------------------------ limits, with escaping


@pytest.mark.parametrize("closed", [False, True], ids=["open", "closed"])
@pytest.mark.parametrize("multiple", [True, False], ids=["multiple", "single"])
@pytest.mark.parametrize(
    "tally",
    [Tally((1_000,) * 25, 1_000), Tally((5,) + (1,) * 24, 5), Tally((0,) * 25, 0), Tally((3, 3) + (0,) * 23, 3)],
    ids=["tie25", "winner", "none", "tie2"],
)
def test_cards_of_markdown_only_text_fit_the_limits_and_stay_literal(closed, multiple, tally):
    poll = _poll(
        number=12_345,
        question=MARKDOWN_QUESTION,
        options=MARKDOWN_OPTIONS,
        multiple=multiple,
        max_choices=24 if multiple else None,
        anonymous=True,
        hide_results=True,
        role_id=123_456_789_012_345_678,
        closes_at=CLOSES_AT,
        closed_at=CLOSED_AT if closed else None,
    )
    cards = [poll_card(poll, tally, show_counts=shown, creator_name="N" * 32) for shown in (True, False)]
    if closed:
        cards.append(announcement(poll, tally, chart_filename="results.png").cards[0])
        content = announcement(poll, tally, chart_filename=None).content
        assert len(content) <= 2000
    for card in cards:
        assert _violations(card) == []
        assert_literal(card.description, "embed_description", MARKDOWN_QUESTION)
        for name in _names(card):
            assert structure(name, "embed_field_name") == [], name  # cut or not, only text
            assert drop_dangling_backslash(name.removesuffix("…")) == name.removesuffix("…"), name


@pytest.mark.parametrize("options", [MARKDOWN_OPTIONS, tuple(f"{i:02d} " + "y" * 197 for i in range(12))],
                         ids=["25 markdown", "12 plain"])  # fmt: skip
def test_announcement_content_with_long_tied_answers_is_never_cut_mid_markup(options):
    # The card has room for 12 answers of 200 characters in its tie line; a message has not.
    poll = _poll(options=options, closed_at=CLOSED_AT)
    content = announcement(poll, Tally((2,) * len(options), 50), chart_filename=None).content
    numbers = ", ".join(str(i) for i in range(1, len(options) + 1))
    assert content == f"📊 Poll #1 has closed. Tie between answers {numbers} with 2 votes each."


def test_markdown_only_answer_in_a_field_name_is_cut_without_a_dangling_backslash():
    name = poll_card(_poll(options=("\\" * 200, "b")), Tally((0, 0), 0), show_counts=True).fields[0][0]
    assert len(name) <= FIELD_NAME_LIMIT and name.endswith("…")
    assert structure(name, "embed_field_name") == []
    assert drop_dangling_backslash(name[:-1]) == name[:-1]


def test_button_label_of_a_markdown_only_answer_is_cut_as_typed():
    label = button_label(MARKDOWN_OPTIONS[0])
    assert len(label) == BUTTON_LABEL_LIMIT and MARKDOWN_OPTIONS[0].startswith(label[:-1].rstrip("\\"))


@pytest.mark.parametrize("limit", range(3, 30))
def test_shorten_never_leaves_a_backslash_escaping_the_ellipsis_or_closing_bold(limit):
    text = escape("a* b_ c\\ d[ e- f. " * 5)
    cut = shorten(text, limit)
    assert len(cut) <= limit
    assert drop_dangling_backslash(cut[:-1]) == cut[:-1]
    assert structure(f"**{cut}**", "message") == ["paragraph", "strong_open", "strong_close"]
