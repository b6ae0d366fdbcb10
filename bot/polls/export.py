"""The CSV export of a poll's votes: one row per vote."""

from __future__ import annotations

import csv
import io
import unicodedata
from collections.abc import Iterable
from datetime import UTC, datetime

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
