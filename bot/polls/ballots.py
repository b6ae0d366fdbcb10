"""Ranked ballots: one per member and poll, replaced as a whole, for both backends.

A ballot is stored as the answers' positions, most preferred first ("3,0,7"), with its first
choice beside it so first preferences (the card while the poll is open) are counted from
the `ballots_by_first` index without reading any ranking. The schema refuses writes on a
closed poll (and a ballot on a poll that is not ranked); the rest of the rules (a ranking is
non-empty, distinct, of answers on the poll) are checked here, in Python, before writing,
and the answers' removal and the deadline once more inside the write itself, so a ballot
never counts an answer removed meanwhile, whatever copy of the poll the caller holds.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass

from ..db import ConstraintViolation, Database, WriteConnection
from .models import MAX_OPTIONS, OptionRemoved, Poll, PollClosed, PollNotFound, VoteRefused
from .tally import Tally


@dataclass(frozen=True, slots=True)
class StoredBallot:
    user_id: int
    ranking: tuple[int, ...]  # answer positions, most preferred first
    cast_at: float


class InvalidRanking(VoteRefused):
    """A ranking the ballot itself could never produce (a forged or stale component)."""


def encode(ranking: Sequence[int]) -> str:
    return ",".join(str(p) for p in ranking)


# Positions by their text: a dict lookup reads a big poll's rankings about twice as fast as int().
_POSITIONS = {str(p): p for p in range(MAX_OPTIONS)}


def decode(text: str) -> tuple[int, ...]:
    try:
        return tuple(map(_POSITIONS.__getitem__, text.split(",")))
    except KeyError:
        return tuple(map(int, text.split(",")))


def check_ranking(poll: Poll, ranking: Sequence[int]) -> tuple[int, ...]:
    """`ranking` as a tuple if it is a valid ballot for `poll`; else the refusal."""
    ranking = tuple(ranking)
    if not ranking:
        raise InvalidRanking("Pick at least one answer for your ballot.")
    if len(set(ranking)) != len(ranking):
        raise InvalidRanking("Each answer can appear only once on a ballot; start over and pick again.")
    if any(not 0 <= p < len(poll.options) for p in ranking):
        raise InvalidRanking("That ballot names an answer this poll does not have; click an answer on the poll.")
    if any(p in poll.removed for p in ranking):
        raise OptionRemoved()
    return ranking


class BallotRepository:
    def __init__(self, db: Database) -> None:
        self.db = db

    async def cast(self, poll: Poll, user_id: int, ranking: Sequence[int], *, now: float) -> tuple[int, ...]:
        """Store `user_id`'s ballot, replacing any earlier one in the same statement."""
        ranking = check_ranking(poll, ranking)

        def upsert(conn: WriteConnection) -> tuple[int, ...]:
            try:
                conn.execute(
                    "INSERT INTO ballots (poll_id, user_id, ranking, first_choice, cast_at) VALUES (?, ?, ?, ?, ?)"
                    " ON CONFLICT (poll_id, user_id) DO UPDATE SET ranking = excluded.ranking,"
                    " first_choice = excluded.first_choice, cast_at = excluded.cast_at",
                    (poll.id, user_id, encode(ranking), ranking[0], now),
                )
            except ConstraintViolation as error:
                raise _refusal(str(error)) from error
            # After the write, whose trigger holds the poll row (FOR SHARE on PostgreSQL): an
            # answer removed, or the deadline moved, since `poll` was read refuses it (and the
            # raise rolls the ballot back).
            rows = conn.execute(
                "SELECT p.closes_at, o.position FROM polls p LEFT JOIN poll_options o"
                " ON o.poll_id = p.id AND o.removed_at IS NOT NULL WHERE p.id = ?",
                (poll.id,),
            ).fetchall()
            if rows and rows[0][0] is not None and rows[0][0] <= now:
                raise PollClosed()
            if {r[1] for r in rows} & set(ranking):
                raise OptionRemoved()
            return ranking

        return await self.db.write(upsert)

    async def clear(self, poll: Poll, user_id: int) -> bool:
        """Remove `user_id`'s ballot; False if there was none."""

        def delete(conn: WriteConnection) -> bool:
            try:
                return conn.execute(
                    "DELETE FROM ballots WHERE poll_id = ? AND user_id = ?", (poll.id, user_id)
                ).rowcount == 1
            except ConstraintViolation as error:
                raise _refusal(str(error)) from error

        return await self.db.write(delete)

    async def ballot_of(self, poll_id: int, user_id: int) -> StoredBallot | None:
        row = await self.db.fetchone(
            "SELECT ranking, cast_at FROM ballots WHERE poll_id = ? AND user_id = ?", (poll_id, user_id)
        )
        return None if row is None else StoredBallot(user_id, decode(row[0]), row[1])

    async def ballots(self, poll_id: int) -> list[StoredBallot]:
        """Every ballot, oldest first (the export)."""
        rows = await self.db.fetchall(
            "SELECT user_id, ranking, cast_at FROM ballots WHERE poll_id = ? ORDER BY cast_at, user_id", (poll_id,)
        )
        return [StoredBallot(r[0], decode(r[1]), r[2]) for r in rows]

    async def ranking_counts(self, poll_id: int) -> list[tuple[str, int]]:
        """Each distinct ranking as stored ("3,0,7") with how many ballots have it: what the
        count needs (`ranked.count_encoded`). Grouped here rather than by the database: a
        Counter of 100,000 strings takes milliseconds, a GROUP BY sorts them all."""
        rows = await self.db.fetchall("SELECT ranking FROM ballots WHERE poll_id = ?", (poll_id,))
        return list(Counter(r[0] for r in rows).items())

    async def first_preferences(self, poll: Poll) -> Tally:
        """Ballots by first choice; voters = ballots. What the card shows while the poll is open."""
        rows = await self.db.fetchall(
            "SELECT first_choice, count(*) FROM ballots WHERE poll_id = ? GROUP BY first_choice", (poll.id,)
        )
        counts = {r[0]: r[1] for r in rows}
        return Tally.from_counts(len(poll.options), counts, sum(counts.values()))

    async def voters_by_first(self, poll: Poll, *, limit: int = 100) -> dict[int, list[int]]:
        """Up to `limit` members per first choice (who ranked what first, for `/poll results`)."""
        result: dict[int, list[int]] = {}
        for option in range(len(poll.options)):
            rows = await self.db.fetchall(
                "SELECT user_id FROM ballots WHERE poll_id = ? AND first_choice = ? LIMIT ?",
                (poll.id, option, limit),
            )
            if rows:
                result[option] = [r[0] for r in rows]
        return result


def _refusal(message: str) -> Exception:
    if "poll_closed" in message:
        return PollClosed()
    if "not_ranked" in message:
        return VoteRefused("This poll is not a ranked poll; click an answer on it to vote.")
    if message == "foreign_key":
        return PollNotFound()
    return ConstraintViolation(message)
