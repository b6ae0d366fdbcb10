"""Cards and texts: full answers where members read them, and always within Discord's limits."""

from __future__ import annotations

from collections.abc import Callable

import poll_factory
import pytest

from bot.polls.models import Poll
from bot.polls.render import (
    BUTTON_LABEL_LIMIT,
    COLOR_CLOSED,
    COLOR_OPEN,
    DESCRIPTION_LIMIT,
    EMBED_TOTAL,
    FIELD_NAME_LIMIT,
    FIELD_VALUE_LIMIT,
    FOOTER_LIMIT,
    TITLE_LIMIT,
    Card,
    announcement,
    button_label,
    poll_card,
    shorten,
    total_line,
    vote_confirmation,
    voters_card,
)
from bot.polls.tally import Tally

SEED_QUESTION = (
    "How has the recent turmoil within the OpenAI offices changed your plans to use GPT in a "
    "business process or product in 2024?"
)
SEED_OPTIONS = (
    "Increased uncertainty means we are more likely to evaluate alternative AI chatbots and LLMs.",
    "No change in plans, though we will keep an eye on the situation.",
    "With Sam Altman back in charge, we are more likely to go all-in with GPT and LLMs.",
    "What recent turmoil?",
)
SEED_COUNTS = (61, 52, 20, 12)  # 145 votes

CLOSED_AT = 1_700_003_600.0
CLOSES_AT = 1_700_086_400.0
LONG_OPTIONS = tuple(f"{i:02d} " + "x" * 197 for i in range(25))  # 25 distinct 200-char answers
LONG_QUESTION = "Q" * 300
LONG_NAME = "N" * 32  # Discord display names are at most 32 characters


@pytest.fixture
def make_poll() -> Callable[..., Poll]:
    """`make_poll(question=..., options=..., closed_at=...)` builds a `Poll` without a database."""
    return poll_factory.make_poll


def _violations(card: Card) -> list[str]:
    """Every Discord embed limit the card breaks (empty when it fits)."""
    found = []
    if card.size > EMBED_TOTAL:
        found.append(f"total {card.size} > {EMBED_TOTAL}")
    if len(card.description) > DESCRIPTION_LIMIT:
        found.append(f"description {len(card.description)} > {DESCRIPTION_LIMIT}")
    if len(card.title) > TITLE_LIMIT:
        found.append(f"title {len(card.title)} > {TITLE_LIMIT}")
    if len(card.footer) > FOOTER_LIMIT:
        found.append(f"footer {len(card.footer)} > {FOOTER_LIMIT}")
    if len(card.fields) > 25:
        found.append(f"{len(card.fields)} fields > 25")
    for name, value in card.fields:
        if not 0 < len(name) <= FIELD_NAME_LIMIT:
            found.append(f"field name of {len(name)}")
        if not 0 < len(value) <= FIELD_VALUE_LIMIT:
            found.append(f"field value of {len(value)}")
    return found


@pytest.fixture
def seed_poll(make_poll):
    return make_poll(question=SEED_QUESTION, options=SEED_OPTIONS, number=7)


@pytest.fixture
def worst_poll(make_poll):
    """Everything at its longest: every rule line, a deadline, 25 answers of 200 characters."""

    def make(*, closed: bool, multiple: bool = True):
        return make_poll(
            number=12_345,
            question=LONG_QUESTION,
            options=LONG_OPTIONS,
            multiple=multiple,
            max_choices=24 if multiple else None,
            anonymous=True,
            hide_results=True,
            role_id=123_456_789_012_345_678,
            closes_at=CLOSES_AT,
            closed_at=CLOSED_AT if closed else None,
            closed_by=444 if closed else None,
        )

    return make


TIE_25 = Tally((1_000,) * 25, voters=1_000)
ONE_WINNER = Tally((5,) + (1,) * 24, voters=5)
NO_VOTES = Tally((0,) * 25, voters=0)
TWO_WAY_TIE = Tally((3, 3) + (0,) * 23, voters=3)


# ------------------------------------------------------------------ the seed poll


def test_seed_card_fields_carry_every_answer_in_full(seed_poll):
    card = poll_card(seed_poll, Tally(SEED_COUNTS, voters=145), show_counts=True)
    names = [name for name, _ in card.fields]
    assert names == [f"{i + 1}. {option}" for i, option in enumerate(SEED_OPTIONS)]


def test_seed_card_description_carries_the_question_in_full(seed_poll):
    card = poll_card(seed_poll, Tally(SEED_COUNTS, voters=145), show_counts=True)
    assert f"**{SEED_QUESTION}**" in card.description


def test_seed_announcement_carries_every_answer_and_the_question_in_full(seed_poll, make_poll):
    closed = make_poll(question=SEED_QUESTION, options=SEED_OPTIONS, number=7, closed_at=CLOSED_AT)
    card = announcement(closed, Tally(SEED_COUNTS, voters=145), chart_filename="results.png").cards[0]
    names = [name for name, _ in card.fields]
    assert names == [f"{i + 1}. {option}" for i, option in enumerate(SEED_OPTIONS)]
    assert SEED_QUESTION in card.description


def test_seed_announcement_names_the_winner_in_full(make_poll):
    closed = make_poll(question=SEED_QUESTION, options=SEED_OPTIONS, number=7, closed_at=CLOSED_AT)
    rendered = announcement(closed, Tally(SEED_COUNTS, voters=145), chart_filename=None)
    winner = f"Winner: **1. {SEED_OPTIONS[0]}** with 61 votes."
    assert winner in rendered.cards[0].description
    assert rendered.content == f"📊 Poll #7 has closed. {winner}"


def test_seed_announcement_shows_the_total_line(make_poll):
    closed = make_poll(question=SEED_QUESTION, options=SEED_OPTIONS, closed_at=CLOSED_AT)
    card = announcement(closed, Tally(SEED_COUNTS, voters=145), chart_filename=None).cards[0]
    assert "Total: 145 votes." in card.description.splitlines()


def test_seed_announcement_shows_counts_and_percentages_that_add_up(make_poll):
    closed = make_poll(question=SEED_QUESTION, options=SEED_OPTIONS, closed_at=CLOSED_AT)
    card = announcement(closed, Tally(SEED_COUNTS, voters=145), chart_filename=None).cards[0]
    values = [value for _, value in card.fields]
    assert values[0].endswith("61 votes · 42%")
    assert sum(int(v.rsplit(" ", 1)[1].rstrip("%")) for v in values) == 100


def test_seed_cards_fit_the_embed_limits(seed_poll, make_poll):
    tally = Tally(SEED_COUNTS, voters=145)
    closed = make_poll(question=SEED_QUESTION, options=SEED_OPTIONS, closed_at=CLOSED_AT)
    cards = [
        poll_card(seed_poll, tally, show_counts=True),
        poll_card(closed, tally, show_counts=True),
        announcement(closed, tally, chart_filename="results.png").cards[0],
    ]
    assert [_violations(card) for card in cards] == [[], [], []]


def test_seed_button_labels_fit_and_mark_cut_answers_with_an_ellipsis():
    labels = [button_label(option) for option in SEED_OPTIONS]
    assert all(len(label) <= BUTTON_LABEL_LIMIT for label in labels)
    assert labels[0].endswith("…") and labels[2].endswith("…")  # the two answers over 80


def test_seed_button_labels_keep_short_answers_whole():
    assert button_label(SEED_OPTIONS[1]) == SEED_OPTIONS[1]
    assert button_label(SEED_OPTIONS[3]) == SEED_OPTIONS[3]


def test_cut_button_label_is_a_prefix_of_the_answer_cut_at_a_word():
    label = button_label(SEED_OPTIONS[0])
    assert SEED_OPTIONS[0].startswith(label[:-1])
    assert SEED_OPTIONS[0][len(label) - 1] == " "


def test_button_label_of_a_200_character_answer_is_80_characters():
    label = button_label("x" * 200)
    assert len(label) == BUTTON_LABEL_LIMIT and label.endswith("…")


def test_button_label_of_exactly_80_characters_is_not_cut():
    assert button_label("a" * 80) == "a" * 80


# ------------------------------------------------------------------ the worst case


@pytest.mark.parametrize("show_counts", [True, False], ids=["shown", "hidden"])
@pytest.mark.parametrize("tally", [TIE_25, ONE_WINNER, NO_VOTES, TWO_WAY_TIE], ids=["tie25", "winner", "none", "tie2"])
@pytest.mark.parametrize("multiple", [True, False], ids=["multiple", "single"])
def test_open_worst_case_card_fits_the_embed_limits(worst_poll, tally, show_counts, multiple):
    card = poll_card(
        worst_poll(closed=False, multiple=multiple), tally, show_counts=show_counts, creator_name=LONG_NAME
    )
    assert _violations(card) == []


@pytest.mark.parametrize("show_counts", [True, False], ids=["shown", "hidden"])
def test_closed_worst_case_card_without_votes_fits_the_embed_limits(worst_poll, show_counts):
    card = poll_card(worst_poll(closed=True), NO_VOTES, show_counts=show_counts, creator_name=LONG_NAME)
    assert _violations(card) == []


@pytest.mark.parametrize("show_counts", [True, False], ids=["shown", "hidden"])
def test_closed_worst_case_card_with_a_25_way_tie_fits_the_embed_limits(worst_poll, show_counts):
    card = poll_card(worst_poll(closed=True), TIE_25, show_counts=show_counts, creator_name=LONG_NAME)
    assert _violations(card) == []


def test_closed_worst_case_card_with_a_winner_fits_the_embed_limits(worst_poll):
    card = poll_card(worst_poll(closed=True), ONE_WINNER, show_counts=True, creator_name=LONG_NAME)
    assert _violations(card) == []


@pytest.mark.parametrize("tally", [TIE_25, ONE_WINNER, NO_VOTES], ids=["tie25", "winner", "none"])
def test_worst_case_announcement_fits_the_embed_limits(worst_poll, tally):
    rendered = announcement(worst_poll(closed=True), tally, chart_filename="results.png")
    assert _violations(rendered.cards[0]) == []


def test_worst_case_announcement_with_a_two_way_tie_fits_the_embed_limits(worst_poll):
    rendered = announcement(worst_poll(closed=True), TWO_WAY_TIE, chart_filename="results.png")
    assert _violations(rendered.cards[0]) == []


def test_open_worst_case_card_with_very_large_counts_fits_the_embed_limits(worst_poll):
    tally = Tally((10_000,) * 25, voters=10_000)
    card = poll_card(worst_poll(closed=False), tally, show_counts=True, creator_name=LONG_NAME)
    assert _violations(card) == []


def test_worst_case_announcement_names_a_wide_tie_by_number(worst_poll):
    rendered = announcement(worst_poll(closed=True), TIE_25, chart_filename=None)
    numbers = ", ".join(str(i) for i in range(1, 26))
    assert f"Tie between answers {numbers} with 1,000 votes each." in rendered.cards[0].description


def test_worst_case_announcement_content_fits_a_message(worst_poll):
    rendered = announcement(worst_poll(closed=True), TIE_25, chart_filename=None)
    assert 0 < len(rendered.content) <= 2000


def test_worst_case_card_keeps_full_answers_in_field_names(worst_poll):
    card = poll_card(worst_poll(closed=False), TIE_25, show_counts=True, creator_name=LONG_NAME)
    assert [name for name, _ in card.fields] == [f"{i + 1}. {o}" for i, o in enumerate(LONG_OPTIONS)]


def test_worst_case_card_falls_back_to_compact_values_rather_than_cutting(worst_poll):
    card = poll_card(worst_poll(closed=False), TIE_25, show_counts=True, creator_name=LONG_NAME)
    assert card.fields[0][1] == "1000 · 4%"


def test_field_name_longer_than_256_is_shortened(make_poll):
    # Answers are at most 200 characters, but the renderer must not rely on that.
    poll = make_poll(options=("a " * 200, "b"))
    name = poll_card(poll, Tally((0, 0), 0), show_counts=True).fields[0][0]
    assert len(name) <= FIELD_NAME_LIMIT and name.endswith("…")


# ------------------------------------------------------------------ card details


def test_small_card_uses_the_full_value_form_with_a_bar(make_poll):
    card = poll_card(make_poll(), Tally((3, 1), voters=4), show_counts=True)
    assert card.fields[0][1] == "`████████░░` 3 votes · 75%"


def test_hidden_counts_show_no_numbers(make_poll):
    card = poll_card(make_poll(hide_results=True), Tally((3, 1), voters=4), show_counts=False)
    assert [value for _, value in card.fields] == ["\u200b", "\u200b"]


def test_open_card_title_and_colour(make_poll):
    card = poll_card(make_poll(number=3), Tally((0, 0), 0), show_counts=True)
    assert (card.title, card.color) == ("📊 Poll #3", COLOR_OPEN)


def test_closed_card_title_and_colour(make_poll):
    card = poll_card(make_poll(number=3, closed_at=CLOSED_AT), Tally((0, 0), 0), show_counts=True)
    assert (card.title, card.color) == ("📊 Poll #3 (closed)", COLOR_CLOSED)


def test_single_choice_card_explains_how_to_take_a_vote_back(make_poll):
    card = poll_card(make_poll(), Tally((0, 0), 0), show_counts=True)
    assert "Single choice: click an answer to vote, click it again to take your vote back." in card.description


def test_multiple_choice_card_states_the_choice_limit(make_poll):
    poll = make_poll(options=("A", "B", "C"), multiple=True, max_choices=2)
    card = poll_card(poll, Tally((0, 0, 0), 0), show_counts=True)
    assert "Multiple choice, up to 2 answers: click answers to add or remove them." in card.description


def test_card_names_the_role_allowed_to_vote(make_poll):
    card = poll_card(make_poll(role_id=987), Tally((0, 0), 0), show_counts=True)
    assert "Only members with <@&987> can vote." in card.description


def test_anonymous_card_says_so(make_poll):
    card = poll_card(make_poll(anonymous=True), Tally((0, 0), 0), show_counts=True)
    assert "Anonymous: nobody can see who voted for what." in card.description


def test_hidden_results_note_shows_only_while_open(make_poll):
    note = "Results stay hidden until the poll closes."
    open_card = poll_card(make_poll(hide_results=True), Tally((0, 0), 0), show_counts=False)
    closed_card = poll_card(make_poll(hide_results=True, closed_at=CLOSED_AT), Tally((0, 0), 0), show_counts=True)
    assert (note in open_card.description, note in closed_card.description) == (True, False)


def test_card_without_deadline_says_who_closes_it(make_poll):
    card = poll_card(make_poll(), Tally((0, 0), 0), show_counts=True)
    assert "Open until the creator or a moderator closes it." in card.description


def test_card_with_deadline_shows_discord_timestamps(make_poll):
    card = poll_card(make_poll(closes_at=CLOSES_AT), Tally((0, 0), 0), show_counts=True)
    assert f"Closes <t:{int(CLOSES_AT)}:R> (<t:{int(CLOSES_AT)}:f>)." in card.description


def test_closed_card_shows_when_it_closed_and_the_winner(make_poll):
    card = poll_card(make_poll(closed_at=CLOSED_AT), Tally((1, 2), voters=3), show_counts=True)
    assert f"**Closed** <t:{int(CLOSED_AT)}:R>." in card.description
    assert "Winner: **2. Sushi** with 2 votes." in card.description


def test_single_choice_footer_counts_voters_and_names_the_creator(make_poll):
    card = poll_card(make_poll(number=4), Tally((100, 45), voters=145), show_counts=True, creator_name="alice")
    assert card.footer == "Poll #4 · 145 voters · asked by alice"


def test_multiple_choice_footer_counts_votes_and_voters(make_poll):
    poll = make_poll(number=4, multiple=True)
    card = poll_card(poll, Tally((100, 45), voters=60), show_counts=True)
    assert card.footer == "Poll #4 · 145 votes from 60 voters"


def test_total_line_of_a_single_choice_poll(make_poll):
    assert total_line(make_poll(), Tally((100, 45), voters=145)) == "Total: 145 votes."


def test_total_line_of_a_multiple_choice_poll_counts_voters(make_poll):
    assert total_line(make_poll(multiple=True), Tally((100, 45), voters=60)) == "Total: 145 votes from 60 voters."


def test_total_line_with_one_vote_is_singular(make_poll):
    assert total_line(make_poll(multiple=True), Tally((1, 0), voters=1)) == "Total: 1 vote from 1 voter."


def test_announcement_footer_says_the_deadline_closed_it(make_poll):
    card = announcement(make_poll(number=2, closed_at=CLOSED_AT), Tally((1, 0), 1), chart_filename=None).cards[0]
    assert card.footer == "Poll #2 · closed by its deadline"


def test_announcement_footer_of_a_poll_closed_by_hand(make_poll):
    poll = make_poll(number=2, closed_at=CLOSED_AT, closed_by=444)
    card = announcement(poll, Tally((1, 0), 1), chart_filename=None).cards[0]
    assert card.footer == "Poll #2 · closed"


def test_announcement_attaches_the_chart_as_its_image(make_poll):
    poll = make_poll(closed_at=CLOSED_AT)
    card = announcement(poll, Tally((1, 0), 1), chart_filename="results.png").cards[0]
    assert (card.image, card.color) == ("results.png", COLOR_CLOSED)


def test_announcement_shows_counts_even_for_hidden_polls(make_poll):
    poll = make_poll(closed_at=CLOSED_AT, hide_results=True)
    card = announcement(poll, Tally((3, 1), 4), chart_filename=None).cards[0]
    assert card.fields[0][1].endswith("3 votes · 75%")


def test_announcement_of_a_poll_without_votes(make_poll):
    rendered = announcement(make_poll(closed_at=CLOSED_AT), Tally((0, 0), 0), chart_filename=None)
    assert rendered.content == "📊 Poll #1 has closed. No votes were cast."


def test_card_size_counts_title_description_fields_and_footer():
    card = Card(title="ab", description="cde", fields=(("f", "gh"),), footer="ijkl")
    assert card.size == 2 + 3 + 3 + 4


def test_shorten_leaves_short_text_alone():
    assert shorten("short text", 20) == "short text"


def test_shorten_cuts_at_a_word_and_drops_trailing_punctuation():
    assert shorten("Hello, wonderful world", 18) == "Hello, wonderful…"
    assert shorten("Hello, wonderful world", 8) == "Hello…"


def test_shorten_cuts_mid_word_when_no_space_is_near():
    assert shorten("Hello, wonderful world", 14) == "Hello, wonder…"


# ------------------------------------------------------------------ vote confirmations


def test_single_choice_first_vote_confirmation(seed_poll):
    text = vote_confirmation(seed_poll, "added", 3, (3,))
    assert text == "Your vote: **What recent turmoil?**\nClick the same answer again to take your vote back."


def test_single_choice_moved_vote_confirmation(seed_poll):
    text = vote_confirmation(seed_poll, "moved", 1, (1,))
    assert text.startswith(f"Your vote is now **{SEED_OPTIONS[1]}**")


def test_single_choice_removed_vote_confirmation_names_the_old_answer(seed_poll):
    text = vote_confirmation(seed_poll, "removed", 0, ())
    assert "Your vote is removed" in text
    assert f"(It was: **{SEED_OPTIONS[0]}**)" in text


def test_multiple_choice_added_confirmation_lists_all_answers_in_full(make_poll):
    poll = make_poll(question=SEED_QUESTION, options=SEED_OPTIONS, multiple=True)
    text = vote_confirmation(poll, "added", 2, (0, 2))
    assert text == (
        f"Added **{SEED_OPTIONS[2]}** to your answers.\nYour answers now:\n• {SEED_OPTIONS[0]}\n• {SEED_OPTIONS[2]}"
    )


def test_multiple_choice_removed_last_answer_confirmation(make_poll):
    poll = make_poll(multiple=True)
    text = vote_confirmation(poll, "removed", 0, ())
    assert text == "Removed **Pizza** from your answers.\nYou have no answers in this poll now."


def test_multiple_choice_confirmation_with_25_long_answers_fits_a_message(make_poll):
    poll = make_poll(options=LONG_OPTIONS, multiple=True)
    text = vote_confirmation(poll, "added", 24, tuple(range(25)))
    assert len(text) <= 2000 and text.endswith("…")


# ------------------------------------------------------------------ voters card


def _public(make_poll, options=LONG_OPTIONS):
    return make_poll(options=options)


def _many_voters(options: int = 25, per_option: int = 50) -> dict[int, list[int]]:
    return {i: [10**17 + i * 1000 + n for n in range(per_option)] for i in range(options)}


@pytest.mark.parametrize("budget", [6000, 3000, 1000, 500, 200])
def test_voters_card_stays_within_its_budget(make_poll, budget):
    card = voters_card(_public(make_poll), _many_voters(), budget=budget)
    assert card.size <= budget
    assert _violations(card) == []


@pytest.mark.parametrize("budget", [60, 10])
def test_voters_card_stays_within_a_tiny_budget(make_poll, budget):
    card = voters_card(_public(make_poll), _many_voters(), budget=budget)
    assert card is None or card.size <= budget


def test_voters_card_that_cannot_list_anyone_does_not_claim_nobody_voted(make_poll):
    card = voters_card(_public(make_poll), _many_voters(), budget=200)
    assert "Nobody has voted yet." not in card.description


def test_voters_card_with_room_lists_every_voter_as_a_mention(make_poll):
    card = voters_card(make_poll(), {0: [1, 2], 1: [3]}, budget=6000)
    assert card.fields == (("1. Pizza", "<@1> <@2>"), ("2. Sushi", "<@3>"))


def test_voters_card_skips_answers_without_voters(make_poll):
    card = voters_card(make_poll(), {1: [3]}, budget=6000)
    assert card.fields == (("2. Sushi", "<@3>"),)


def test_voters_card_without_votes_says_nobody_voted(make_poll):
    card = voters_card(make_poll(), {}, budget=6000)
    assert (card.fields, card.description) == ((), "Nobody has voted yet.")


def test_voters_card_cuts_a_long_list_with_a_count_of_the_rest(make_poll):
    voters = {0: [10**17 + n for n in range(1000)]}
    card = voters_card(make_poll(), voters, budget=6000)
    value = card.fields[0][1]
    shown = value.count("<@")
    assert value.endswith(f" …and {1000 - shown} more")
    assert len(value) <= FIELD_VALUE_LIMIT


def test_voters_card_points_to_the_export_for_the_full_list(make_poll):
    assert voters_card(make_poll(), {0: [1]}, budget=6000).footer == "The full list is in /poll export."


def test_voters_card_shortens_answer_names(make_poll):
    card = voters_card(_public(make_poll), {0: [1]}, budget=6000)
    assert len(card.fields[0][0]) <= 60 and card.fields[0][0].endswith("…")


def test_voters_card_counts_voters_beyond_those_it_was_given(make_poll):
    card = voters_card(make_poll(), {0: [1, 2]}, budget=6000, counts=(500, 0))
    assert card.fields[0][1] == "<@1> <@2> …and 498 more"
