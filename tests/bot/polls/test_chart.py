"""The results chart is a PNG, whatever the number of answers or votes."""

from __future__ import annotations

import struct

import pytest

from bot.polls.chart import results_chart
from bot.polls.tally import Tally

PNG_MAGIC = b"\x89PNG\r\n\x1a\n"


def _size(png: bytes) -> tuple[int, int]:
    width, height = struct.unpack(">II", png[16:24])  # the IHDR chunk
    return width, height


@pytest.mark.parametrize(
    ("options", "counts"),
    [
        (("Yes", "No"), (3, 1)),
        (("Yes", "No"), (0, 0)),
        (tuple(f"Answer {i} " + "x" * 190 for i in range(25)), tuple(range(25))),
        (tuple(f"Answer {i} " + "x" * 190 for i in range(25)), (0,) * 25),
    ],
    ids=["2-answers", "2-answers-no-votes", "25-answers", "25-answers-no-votes"],
)
def test_chart_is_png(options, counts):
    png = results_chart("Q" * 300, options, Tally(counts, voters=sum(counts)))
    assert png.startswith(PNG_MAGIC)


def test_chart_grows_taller_with_more_answers():
    two = results_chart("Q", ("A", "B"), Tally((1, 1), 2))
    many = results_chart("Q", tuple(str(i) for i in range(25)), Tally((1,) * 25, 25))
    assert _size(many)[1] > _size(two)[1]


def test_chart_of_non_ascii_answers_is_png():
    # Latin and symbols only: the bundled DejaVu Sans has no CJK glyphs (they would draw as boxes).
    png = results_chart("Où manger ?", ("Café", "Ünïcödé", "Ελληνικά"), Tally((2, 1, 0), 3))
    assert png.startswith(PNG_MAGIC)


@pytest.mark.parametrize(
    "text",
    [r"$\frac{1}{$", r"$\undefinedmacro$", "$x^2$ and $", r"\$ $$ $a_{b_{c_{d}}}$", "<b>bold</b> {}%s"],
)
def test_member_text_is_drawn_as_text_never_parsed_as_tex(text):
    # With mathtext on, the first two raise ValueError at draw time and the poll could never be announced.
    png = results_chart(text, (text, "No"), Tally((1, 0), 1))
    assert png.startswith(PNG_MAGIC)
