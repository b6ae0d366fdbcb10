"""When the copies of a repeating poll are due: arithmetic on instants, no I/O.

The rule: a series keeps to its grid, `first start + n × repeat_every` (UTC seconds). When a
copy is posted, the next copy is due at the first grid time after that moment. So

- a copy posted on time is followed `repeat_every` after its start;
- a copy posted late (a slow pass, a restart) does not push the series: a weekly Monday
  09:00 poll stays at 09:00;
- after downtime across several grid times, the copy that was due is posted once, when the
  bot is back, and the next one is the first grid time after that: never one copy per missed
  interval. The times passed over are counted (`Posting.passed_over`) so that the caller logs
  them: nothing is skipped silently.

Times are instants: `repeat: 1d` is exactly 24 hours. A series started at
`2026-03-28 18:00 +01:00` (17:00 UTC) stays at 17:00 UTC, which reads 19:00 in Central
Europe once summer time begins on 29 March: the grid follows UTC, not a wall clock.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

# A copy posted more than this after its start is reported as late (a scheduler pass takes
# about a second; a restart or an outage takes longer).
LATE_AFTER = 60.0


@dataclass(frozen=True, slots=True)
class Posting:
    """What posting a copy at `posted_at` means for its series."""

    late_by: float  # seconds after its start (0 when on time or early)
    passed_over: int  # grid times after its start that went by before it was posted
    next_start: float | None  # when the next copy is due; None for a poll that does not repeat

    @property
    def late(self) -> bool:
        return self.late_by > LATE_AFTER


def next_start(anchor: float, every: int, posted_at: float) -> float:
    """The first time on the grid `anchor + n × every` (n ≥ 1) strictly after `posted_at`."""
    if every <= 0:
        raise ValueError("a series repeats after a positive interval")
    steps = max(1, math.floor((posted_at - anchor) / every) + 1)
    start = anchor + steps * every
    # Floating point: `(posted_at - anchor) / every` may round down across a grid time.
    while start <= posted_at:
        start += every
    return start


def plan_posting(start: float, every: int | None, posted_at: float) -> Posting:
    """A copy due at `start` (on its series' grid) is posted at `posted_at`."""
    late_by = max(0.0, posted_at - start)
    passed_over = math.floor(late_by / every) if every else 0
    following = next_start(start, every, posted_at) if every else None
    return Posting(late_by=late_by, passed_over=passed_over, next_start=following)
