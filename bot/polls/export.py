"""The CSV export of a poll's votes: one row per vote."""

from __future__ import annotations

import csv
import io
from collections.abc import Iterable
from datetime import UTC, datetime

from .models import Poll, StoredVote


def votes_csv(poll: Poll, votes: Iterable[StoredVote]) -> bytes:
    """UTF-8 with a BOM so spreadsheet programs read non-ASCII answers correctly.

    Anonymous polls have no voter column at all: not even the export reveals who voted.
    """
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\r\n")
    header = ["poll", "option_number", "option"]
    if not poll.anonymous:
        header.append("voter_id")
    header.append("voted_at")
    writer.writerow(header)
    for vote in votes:
        row: list[object] = [poll.number, vote.option + 1, poll.options[vote.option]]
        if not poll.anonymous:
            row.append(str(vote.user_id))
        row.append(datetime.fromtimestamp(vote.voted_at, UTC).isoformat(timespec="seconds"))
        writer.writerow(row)
    return ("\ufeff" + out.getvalue()).encode("utf-8")
