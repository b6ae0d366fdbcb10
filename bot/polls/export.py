"""The CSV export of a poll's votes: one row per vote (a ranked poll: one row per ballot)."""

from __future__ import annotations

import csv
import io
import unicodedata
from collections.abc import Iterable
from datetime import UTC, datetime

from .ballots import StoredBallot
from .models import Poll, StoredVote

# What makes a spreadsheet read a cell as a formula (OWASP, "CSV Injection"), plus LF.
_FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r", "\n")


def neutralised(cell: str) -> str:
    """`cell`, prefixed with `'` if a spreadsheet would evaluate it, so it stays text.

    Checked after leading whitespace and in NFKC form too: some spreadsheets skip the
    whitespace, and some read a full-width `＝` as `=`.
    """
    start = unicodedata.normalize("NFKC", cell.lstrip()[:1])
    if cell.startswith(_FORMULA_STARTS) or start.startswith(_FORMULA_STARTS):
        return "'" + cell
    return cell


def votes_csv(poll: Poll, votes: Iterable[StoredVote]) -> bytes:
    """UTF-8 with a BOM so spreadsheet programs read non-ASCII answers correctly.

    Anonymous polls have no voter column at all: not even the export reveals who voted.
    Every cell a spreadsheet would run as a formula starts with `'` (see `neutralised`).
    """
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\r\n")
    header = ["poll", "option_number", "option"]
    if not poll.anonymous:
        header.append("voter_id")
    header.append("voted_at")
    writer.writerow(header)
    # Every cell, not just the answers: a later column could hold text members chose too.
    for vote in votes:
        row: list[object] = [poll.number, vote.option + 1, poll.options[vote.option]]
        if not poll.anonymous:
            row.append(str(vote.user_id))
        row.append(datetime.fromtimestamp(vote.voted_at, UTC).isoformat(timespec="seconds"))
        writer.writerow([neutralised(str(cell)) for cell in row])
    return ("\ufeff" + out.getvalue()).encode("utf-8")


def ballots_csv(poll: Poll, ballots: Iterable[StoredBallot]) -> bytes:
    """A ranked poll's export: one row per ballot, its ranking by answer number ("2 > 1 > 4")
    and the answers' text in order of preference (`choice_1`, `choice_2`, …, as many columns
    as the poll has answers, empty past the ballot's last). Same encoding, the same
    anonymity and formula rules as `votes_csv`."""
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\r\n")
    header = ["poll"]
    if not poll.anonymous:
        header.append("voter_id")
    header += ["cast_at", "ranking", *(f"choice_{n}" for n in range(1, len(poll.options) + 1))]
    writer.writerow(header)
    for ballot in ballots:
        row: list[object] = [poll.number]
        if not poll.anonymous:
            row.append(str(ballot.user_id))
        row.append(datetime.fromtimestamp(ballot.cast_at, UTC).isoformat(timespec="seconds"))
        row.append(" > ".join(str(p + 1) for p in ballot.ranking))
        texts = [poll.options[p] for p in ballot.ranking]
        row += texts + [""] * (len(poll.options) - len(texts))
        writer.writerow([neutralised(str(cell)) for cell in row])
    return ("\ufeff" + out.getvalue()).encode("utf-8")
