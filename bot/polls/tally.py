"""Counting: per-answer counts, percentages that add up, the winner or a tie."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from ..markdown import escape


@dataclass(frozen=True, slots=True)
class Tally:
    counts: tuple[int, ...]  # votes per answer, in answer order
    voters: int  # members with at least one vote (== total votes for single choice)

    @classmethod
    def from_counts(cls, option_count: int, counts: Mapping[int, int], voters: int) -> Tally:
        return cls(tuple(counts.get(i, 0) for i in range(option_count)), voters)

    @property
    def total(self) -> int:
        return sum(self.counts)

    def percentages(self) -> tuple[int, ...]:
        """Whole percentages of all votes that add up to exactly 100 (largest remainder)."""
        total = self.total
        if total == 0:
            return tuple(0 for _ in self.counts)
        exact = [c * 100 / total for c in self.counts]
        floors = [int(x) for x in exact]
        short = 100 - sum(floors)
        by_remainder = sorted(range(len(exact)), key=lambda i: (-(exact[i] - floors[i]), i))
        for i in by_remainder[:short]:
            floors[i] += 1
        return tuple(floors)

    def leaders(self) -> tuple[int, ...]:
        """Answers with the most votes: one is a winner, several a tie, none if no votes."""
        if self.total == 0:
            return ()
        top = max(self.counts)
        return tuple(i for i, c in enumerate(self.counts) if c == top)


def bar(count: int, total: int, width: int = 10) -> str:
    """A text bar for embeds: filled share of `width` cells, at least one cell for any vote."""
    if total <= 0:
        return "░" * width
    filled = round(count * width / total)
    if count > 0:
        filled = max(filled, 1)
    return "█" * filled + "░" * (width - filled)


def plural(n: int, word: str, words: str | None = None) -> str:
    return f"{n:,} {word if n == 1 else (words or word + 's')}"


def winner_line(options: Sequence[str], tally: Tally) -> str:
    """Markdown: Quorum's bold around each leader, the answers themselves escaped."""
    leaders = tally.leaders()
    if not leaders:
        return "No votes were cast."
    if len(leaders) == 1:
        i = leaders[0]
        return f"Winner: **{i + 1}. {escape(options[i])}** with {plural(tally.counts[i], 'vote')}."
    names = ", ".join(f"**{i + 1}. {escape(options[i])}**" for i in leaders)
    return f"Tie between {names} with {plural(tally.counts[leaders[0]], 'vote')} each."


def quorum_met(quorum: int | None, voters: int) -> bool:
    """Whether a result stands: no quorum, or at least `quorum` members voted."""
    return quorum is None or voters >= quorum


def quorum_progress(quorum: int, voters: int) -> str:
    """On the open poll's card: "12 of 20 voters needed"."""
    return f"{voters:,} of {plural(quorum, 'voter')} needed"


def quorum_outcome(quorum: int, voters: int) -> str:
    """In the announcement. Missed, the result names no winner: "Quorum not reached: 12 of 20 voters"."""
    if quorum_met(quorum, voters):
        return f"Quorum reached: {voters:,} of {plural(quorum, 'voter')}."
    return f"Quorum not reached: {voters:,} of {plural(quorum, 'voter')}."
