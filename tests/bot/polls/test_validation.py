"""What a moderator types becomes a `PollDraft`, or an error that says what to fix."""

from __future__ import annotations

import pytest

from bot.polls.models import PollDraft
from bot.polls.validation import (
    PollInputError,
    build_draft,
    option_key,
    parse_duration,
    parse_options,
    parse_question,
)

MINUTE = 60
HOUR = 3600
DAY = 86_400


def _options(n: int) -> str:
    return " | ".join(f"Answer {i}" for i in range(1, n + 1))


# ------------------------------------------------------------------ questions


def test_question_is_returned_trimmed_with_inner_whitespace_collapsed():
    assert parse_question("  Where   shall we\n meet?  ") == "Where shall we meet?"


def test_blank_question_is_refused_and_says_to_type_one():
    with pytest.raises(PollInputError, match=r"empty.*Type the question"):
        parse_question("")


def test_whitespace_only_question_is_refused_as_empty():
    with pytest.raises(PollInputError, match="empty"):
        parse_question(" \t\n  ")


def test_question_of_300_characters_is_accepted():
    question = "q" * 300
    assert parse_question(question) == question


def test_question_of_301_characters_is_refused_with_length_and_limit():
    with pytest.raises(PollInputError) as caught:
        parse_question("q" * 301)
    message = str(caught.value)
    assert "301" in message
    assert "keep it to 300" in message


# ------------------------------------------------------------------ options


def test_options_are_split_on_pipes_and_trimmed():
    assert parse_options(" Yes |No  |  Maybe later ") == ("Yes", "No", "Maybe later")


def test_blank_parts_between_pipes_are_ignored():
    assert parse_options("Yes || |No|") == ("Yes", "No")


def test_two_options_are_the_minimum_accepted():
    assert parse_options("A | B") == ("A", "B")


def test_one_option_is_refused_and_shows_the_separator():
    with pytest.raises(PollInputError) as caught:
        parse_options("Only one")
    message = str(caught.value)
    assert "at least 2" in message
    assert "`|`" in message
    assert "Yes | No" in message  # an example of what to type


def test_one_option_padded_with_blank_parts_is_still_refused():
    with pytest.raises(PollInputError, match="at least 2"):
        parse_options("Only one | | ")


def test_twenty_five_options_are_accepted():
    assert len(parse_options(_options(25))) == 25


def test_twenty_six_options_are_refused_with_the_limit():
    with pytest.raises(PollInputError) as caught:
        parse_options(_options(26))
    message = str(caught.value)
    assert "26" in message
    assert "at most 25" in message


def test_duplicate_options_differing_only_in_case_are_refused():
    with pytest.raises(PollInputError) as caught:
        parse_options("Yes | No | YES")
    message = str(caught.value)
    assert "1 and 3" in message
    assert "give each answer once" in message


def test_duplicate_options_differing_only_in_spacing_are_refused():
    with pytest.raises(PollInputError, match="same"):
        parse_options("Ice  cream | Ice cream")


def test_option_of_200_characters_is_accepted():
    long = "a" * 200
    assert parse_options(f"{long} | short") == (long, "short")


def test_option_of_201_characters_is_refused_naming_the_answer_and_limit():
    with pytest.raises(PollInputError) as caught:
        parse_options(f"short | {'a' * 201}")
    message = str(caught.value)
    assert "Answer 2" in message
    assert "201" in message
    assert "keep each answer to 200" in message


def test_option_of_5000_characters_is_refused_without_echoing_it():
    with pytest.raises(PollInputError) as caught:
        parse_options(f"{'b' * 5000} | short")
    message = str(caught.value)
    assert "5000" in message
    assert "keep each answer to 200" in message
    assert len(message) < 200


def test_non_ascii_options_are_kept_as_typed():
    assert parse_options("Café ☕ | Ünïcödé 🎉") == ("Café ☕", "Ünïcödé 🎉")


# ------------------------------------------------------------------ durations


@pytest.mark.parametrize(
    ("text", "seconds"),
    [
        ("30m", 30 * MINUTE),
        ("2h", 2 * HOUR),
        ("1d", DAY),
        ("1h30m", HOUR + 30 * MINUTE),
        ("90s", 90),
        ("1w", 7 * DAY),
    ],
)
def test_duration_forms_are_accepted_with_exact_seconds(text, seconds):
    assert parse_duration(text) == seconds


def test_duration_is_case_and_space_insensitive():
    assert parse_duration("  2H ") == 2 * HOUR


def test_duration_of_one_minute_is_the_shortest_accepted():
    assert parse_duration("1m") == MINUTE


def test_duration_of_59_seconds_is_refused_and_names_the_minimum():
    with pytest.raises(PollInputError) as caught:
        parse_duration("59s")
    message = str(caught.value)
    assert "at least 1 minute" in message
    assert "`1m`" in message


def test_duration_of_32_days_is_the_longest_accepted():
    assert parse_duration("32d") == 32 * DAY


def test_duration_of_33_days_is_refused_and_names_the_maximum():
    with pytest.raises(PollInputError) as caught:
        parse_duration("33d")
    message = str(caught.value)
    assert "at most 32 days" in message
    assert "`32d`" in message


def test_duration_one_second_over_32_days_is_refused():
    with pytest.raises(PollInputError, match="at most 32 days"):
        parse_duration("32d1s")


@pytest.mark.parametrize("text", ["5", "abc", ""])
def test_unparseable_duration_is_refused_with_examples_of_valid_forms(text):
    with pytest.raises(PollInputError) as caught:
        parse_duration(text)
    message = str(caught.value)
    assert "not a duration I understand" in message
    for example in ("`30m`", "`2h`", "`1h30m`", "`1d`"):
        assert example in message


def test_unparseable_duration_echo_is_cut_to_40_characters():
    with pytest.raises(PollInputError) as caught:
        parse_duration("z" * 500)
    assert "z" * 40 in str(caught.value)
    assert "z" * 41 not in str(caught.value)


@pytest.mark.parametrize("text", ["-5m", "-1h"])
def test_negative_duration_is_refused(text):
    with pytest.raises(PollInputError, match="at least 1 minute"):
        parse_duration(text)


# ------------------------------------------------------------------ whole drafts


def test_build_draft_without_duration_is_open_ended():
    draft = build_draft(question="Lunch?", options="Pizza | Sushi")
    assert draft == PollDraft(question="Lunch?", options=("Pizza", "Sushi"), duration=None)


def test_build_draft_treats_a_blank_duration_as_none():
    assert build_draft(question="Lunch?", options="A | B", duration="   ").duration is None


def test_build_draft_parses_the_duration():
    assert build_draft(question="Lunch?", options="A | B", duration="1h30m").duration == 5400


def test_build_draft_passes_flags_through():
    draft = build_draft(question="Q", options="A | B", multiple=True, anonymous=True, hide_results=True, role_id=42)
    assert (draft.multiple, draft.anonymous, draft.hide_results, draft.role_id) == (True, True, True, 42)


def test_max_choices_on_single_choice_poll_is_refused_and_says_to_add_multiple():
    with pytest.raises(PollInputError) as caught:
        build_draft(question="Q", options="A | B | C", max_choices=2)
    message = str(caught.value)
    assert "multiple-choice" in message
    assert "`multiple: True`" in message


def test_max_choices_below_one_is_refused():
    with pytest.raises(PollInputError, match="at least 1"):
        build_draft(question="Q", options="A | B | C", multiple=True, max_choices=0)


def test_max_choices_below_the_answer_count_is_kept():
    draft = build_draft(question="Q", options="A | B | C", multiple=True, max_choices=2)
    assert draft.max_choices == 2


def test_max_choices_of_one_is_kept_on_a_multiple_choice_poll():
    draft = build_draft(question="Q", options="A | B | C", multiple=True, max_choices=1)
    assert draft.max_choices == 1


def test_max_choices_equal_to_the_answer_count_means_no_limit():
    draft = build_draft(question="Q", options="A | B | C", multiple=True, max_choices=3)
    assert draft.max_choices is None


def test_max_choices_above_the_answer_count_means_no_limit():
    draft = build_draft(question="Q", options="A | B | C", multiple=True, max_choices=10)
    assert draft.max_choices is None


def test_build_draft_reports_the_question_before_the_options():
    with pytest.raises(PollInputError, match="question is empty"):
        build_draft(question=" ", options="only one")


# ------------------------------------------------------------------ invisible and look-alike text

INVISIBLE = {
    "zero width space": "\u200b",
    "hangul filler": "\u3164",
    "braille blank": "\u2800",
    "hangul choseong filler": "\u115f",
    "hangul jungseong filler": "\u1160",
    "halfwidth hangul filler": "\uffa0",
    "mongolian vowel separator": "\u180e",
    "soft hyphen": "\u00ad",
    "word joiner": "\u2060",
    "byte order mark": "\ufeff",
    "variation selectors": "\ufe0f\ufe0e",
    "combining marks alone": "\u0301\u0308",
    "bidi controls": "\u202e\u200f",
    "tag characters": "\U000e0041\U000e007f",
    "zero width joiner": "\u200d",
    "mixed with spaces": "\u200b \u3164\u00a0\u2800\u3000\ufeff",
}


@pytest.mark.parametrize("blank", INVISIBLE.values(), ids=INVISIBLE.keys())
def test_question_of_invisible_characters_is_refused_and_says_what_to_do(blank):
    with pytest.raises(PollInputError, match=r"no visible text.*Type the question"):
        parse_question(blank * 3)


@pytest.mark.parametrize("blank", INVISIBLE.values(), ids=INVISIBLE.keys())
def test_answer_of_invisible_characters_is_refused_naming_it(blank):
    with pytest.raises(PollInputError, match=r"Answer 2 has no visible text.*Type the answer, or leave it out"):
        parse_options(f"Yes | {blank} | No")


def test_visible_text_with_invisible_characters_is_accepted_and_kept_as_typed():
    assert parse_options("Yes\u200b | N\u00ado") == ("Yes\u200b", "N\u00ado")
    assert parse_question("Lunch\u200b?") == "Lunch\u200b?"


def test_emoji_sequences_are_accepted_and_kept_intact():
    family, flag, coder = "👨\u200d👩\u200d👧", "🏳\ufe0f\u200d🌈", "👩🏽\u200d💻"
    assert parse_options(f"{family} | {flag} | {coder} | 👨👩👧") == (family, flag, coder, "👨👩👧")
    assert parse_question(family) == family


@pytest.mark.parametrize(
    ("first", "second"),
    [
        ("Yes", "Yes\u200b"),
        ("Yes", "Y\u00ades"),
        ("Yes", "\ufeffYes\u2060"),
        ("café", "cafe\u0301"),
        ("Yes", "Ｙｅｓ"),
        ("Straße", "STRASSE"),
        ("ﬁne", "fine"),
        ("Yes No", "Yes\u3164No"),
        ("Yes No", "Yes\u2800No"),
        ("☕", "☕\ufe0f"),
    ],
    ids=["zwsp", "soft hyphen", "bom and word joiner", "decomposed", "full width", "sharp s", "ligature",
         "hangul filler", "braille blank", "variation selector"],
)  # fmt: skip
def test_answers_that_look_the_same_are_refused_as_duplicates(first, second):
    with pytest.raises(PollInputError, match=r"Answers 1 and 2 are the same"):
        parse_options(f"{first} | {second}")


@pytest.mark.parametrize(("first", "second"), [("resume", "résumé"), ("Yes", "Yes!"), ("👨\u200d👩\u200d👧", "👨👩👧")])
def test_answers_that_look_different_are_not_duplicates(first, second):
    assert parse_options(f"{first} | {second}") == (first, second)


def test_option_key_is_the_one_comparison_of_answers():
    assert option_key(" Ｃａｆｅ\u0301\u200b  AU   LAIT ") == option_key("café au lait") == "café au lait"


def test_duplicate_error_shows_the_answer_literally():
    with pytest.raises(PollInputError) as caught:
        parse_options("[Free Nitro](https://evil.example) | [free nitro](https://evil.example)")
    assert "\\[free nitro\\](https\\://evil.example)" in str(caught.value)


def test_unparseable_duration_is_echoed_literally():
    with pytest.raises(PollInputError) as caught:
        parse_duration("**soon** <@1>")
    assert "“\\*\\*soon\\*\\* \\<@1>”" in str(caught.value)


def test_a_repeating_poll_closes_each_copy_before_the_next_appears():
    with pytest.raises(PollInputError, match="at most as long as `repeat`"):
        build_draft(question="Standup?", options="Yes | No", duration="2d", repeat="1d")
    draft = build_draft(question="Standup?", options="Yes | No", duration="1d", repeat="1d")
    assert (draft.duration, draft.repeat) == (86_400, 86_400)
