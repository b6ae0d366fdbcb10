"""The reminder before a poll closes: its text and its nonce (the job itself is in jobs.py)."""

from __future__ import annotations

from .models import Poll
from .tally import Tally, plural

# How a reminder begins: a retry after a crash recognises the earlier one by it.
REMINDER_MARK = "⏰ "


def reminder_nonce(poll: Poll) -> str:
    # Discord keeps a nonce for a few minutes: a resend after a crash returns the first message.
    return f"quorum-remind-{poll.id}"[:25]


def reminder_text(poll: Poll, tally: Tally) -> str:
    """"⏰ Poll #3 closes <t:…:R>; 42 voters so far." (the quorum's target after it, if any)."""
    assert poll.closes_at is not None
    closes = f"<t:{int(poll.closes_at)}:R>"
    line = f"{REMINDER_MARK}Poll #{poll.number} closes {closes}; {plural(tally.voters, 'voter')} so far"
    if poll.quorum is not None and tally.voters < poll.quorum:
        line += f", {plural(poll.quorum, 'voter')} needed"
    return line + "."
