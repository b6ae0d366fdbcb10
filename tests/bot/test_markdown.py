"""`escape`: members' and pages' text shows as typed wherever Discord renders markdown."""

from __future__ import annotations

import pytest
from markdown_oracle import HOSTILE, assert_literal, structure, visible

from bot.markdown import drop_dangling_backslash, escape

RENDERED_PROFILES = ("message", "embed_title", "embed_description", "embed_field_name", "embed_field_value")


@pytest.mark.parametrize("profile", RENDERED_PROFILES)
@pytest.mark.parametrize("typed", HOSTILE.values(), ids=HOSTILE.keys())
def test_hostile_text_renders_literally_inside_quorum_markup(typed, profile):
    # As Quorum uses it: after its own text on a line, and inside its own bold.
    assert_literal(f"Your vote: **{escape(typed)}** with 3 votes.", profile, typed)


@pytest.mark.parametrize("profile", ["embed_description", "embed_field_value", "embed_title"])
@pytest.mark.parametrize("typed", HOSTILE.values(), ids=HOSTILE.keys())
def test_hostile_text_renders_literally_at_the_start_of_a_field(typed, profile):
    assert_literal(escape(typed), profile, typed)


@pytest.mark.parametrize(
    "line",
    ["# Heading", "## Heading", "-# small", "- item", "+ item", "* item", "1. item", "12) item",
     "> quote", ">>> quote", "  - indented item", "===", "---", "***"],
)  # fmt: skip
def test_block_syntax_at_any_line_start_of_page_text_stays_text(line):
    summary = f"First paragraph.\n{line}\n\nAnother paragraph.\r{line}"
    rendered = escape(summary)
    assert set(structure(rendered, "embed_description")) == {"paragraph"}
    assert line.strip() in visible(rendered, "embed_description")


def test_subtext_marker_is_escaped_at_a_line_start():
    # The projection cannot tell an escaped `-#` from subtext at a message's line start (its
    # escapes merge into the text before it checks); Discord's parser does. Quorum never puts
    # member text at a message's line start, so check the escape itself.
    assert escape("-# small\n-# print") == "\\-# small\n\\-# print"


def test_plain_text_is_left_alone():
    text = "Pizza, pasta & salad: 100% yes (or no)! Café ☕ 👨‍👩‍👧 a-b 1.5 #3 5 > 4 user@example.com"
    assert escape(text) == text


@pytest.mark.parametrize("typed", HOSTILE.values(), ids=HOSTILE.keys())
def test_escaping_at_most_doubles_the_length(typed):
    assert len(escape(typed)) <= 2 * len(typed)


def test_worst_case_doubles_the_length():
    text = "\\*_~`|[]<" * 20
    assert len(escape(text)) == 2 * len(text)


def test_typed_backslashes_never_escape_what_follows():
    assert escape("\\*") == "\\\\\\*"
    typed = "trailing backslash \\"
    assert_literal(f"**{escape(typed)}**", "message", typed)


def test_mentions_of_everyone_and_here_are_broken_in_any_case():
    assert escape("@everyone @Here") == "\\@everyone \\@Here"


def test_only_entity_looking_ampersands_are_escaped():
    assert escape("Tom & Jerry &amp; &#42; &x") == "Tom & Jerry \\&amp; \\&#42; &x"


@pytest.mark.parametrize(("text", "expected"), [("a\\", "a"), ("a\\\\", "a\\\\"), ("a\\\\\\", "a\\\\"), ("a", "a")])
def test_drop_dangling_backslash_removes_only_an_unpaired_final_backslash(text, expected):
    assert drop_dangling_backslash(text) == expected


def test_escape_inline_escapes_inline_markup_but_not_line_start_markers():
    from bot.markdown import escape_inline

    assert escape_inline("127.0.0.1") == "127.0.0.1"
    assert escape_inline("# not a heading mid-sentence") == "# not a heading mid-sentence"
    assert escape_inline("my_site__x__.example <@1> @here") == "my\\_site\\_\\_x\\_\\_.example \\<@1> \\@here"
    assert escape_inline("line one\n# two") == escape("line one\n# two")  # more lines: the full escape
