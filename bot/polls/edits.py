"""Storing /poll edit: one transaction per edit, its rules checked on the poll as stored, and
the edit log (`poll_edits`, one row per change, with who and when)."""

from __future__ import annotations

from ..db import WriteConnection
from .editing import Change, ChangeKind, EditLogEntry, EditRequest, EditResult, PollState, plan_edit
from .models import PollNotFound
from .repository import PollRepository, read_poll, schedule_reminder

# PostgreSQL: the poll's row is locked for the edit. Votes and ballots read it FOR SHARE, so
# the edit waits for those in flight and holds new ones until it commits: "before the first
# vote" and "no votes for the answer" stay true until the change is stored. SQLite's writes
# already take turns (BEGIN IMMEDIATE).
_FOR_UPDATE = {"sqlite": "", "postgresql": " FOR UPDATE"}


class EditRepository:
    def __init__(self, polls: PollRepository) -> None:
        self.db = polls.db

    async def apply(self, poll_id: int, request: EditRequest, *, user_id: int, now: float) -> EditResult:
        """Check `request` against the stored poll and apply it, or raise `EditRefused`
        having changed nothing."""

        def edit(conn: WriteConnection) -> EditResult:
            locked = conn.execute(f"SELECT id FROM polls WHERE id = ?{_FOR_UPDATE[conn.dialect]}", (poll_id,))
            poll = read_poll(conn, poll_id) if locked.fetchone() is not None else None
            if poll is None:
                raise PollNotFound()
            removal_used = request.remove is not None and _chosen(conn, poll_id, request.remove - 1)
            state = PollState(poll, voted=_voted(conn, poll_id), removal_used=removal_used)
            changes = plan_edit(state, request, now=now)
            for change in changes:
                _apply(conn, poll_id, change, now=now)
            conn.executemany(
                "INSERT INTO poll_edits (poll_id, edited_at, user_id, change) VALUES (?, ?, ?, ?)",
                [(poll_id, now, user_id, change.to_json()) for change in changes],
            )
            conn.execute("UPDATE polls SET edited_at = ? WHERE id = ?", (now, poll_id))
            if any(c.kind is ChangeKind.DEADLINE for c in changes):
                schedule_reminder(conn, poll_id)  # from the new deadline, unless already sent
            reminder = conn.execute(
                "SELECT due_at FROM poll_jobs WHERE poll_id = ? AND kind = 'remind' AND done_at IS NULL",
                (poll_id,),
            ).fetchone()
            edited = read_poll(conn, poll_id)
            assert edited is not None
            return EditResult(edited, changes, reminder[0] if reminder else None)

        return await self.db.write(edit)

    async def log(self, poll_id: int) -> list[EditLogEntry]:
        """Every change made to a poll, oldest first."""
        rows = await self.db.fetchall(
            "SELECT edited_at, user_id, change FROM poll_edits WHERE poll_id = ? ORDER BY edited_at, id", (poll_id,)
        )
        return [EditLogEntry(r[0], r[1], Change.from_json(r[2])) for r in rows]


def _voted(conn: WriteConnection, poll_id: int) -> bool:
    return bool(conn.execute(
        "SELECT EXISTS (SELECT 1 FROM votes WHERE poll_id = ?) OR EXISTS (SELECT 1 FROM ballots WHERE poll_id = ?)",
        (poll_id, poll_id),
    ).fetchone()[0])


def _chosen(conn: WriteConnection, poll_id: int, position: int) -> bool:
    """Whether a vote is for the answer at `position`, or a ballot ranks it anywhere (a
    ballot's ranking is positions separated by commas, "3,0,7")."""
    return bool(conn.execute(
        "SELECT EXISTS (SELECT 1 FROM votes WHERE poll_id = ? AND option = ?)"
        " OR EXISTS (SELECT 1 FROM ballots WHERE poll_id = ? AND ',' || ranking || ',' LIKE ?)",
        (poll_id, position, poll_id, f"%,{position},%"),
    ).fetchone()[0])


def _apply(conn: WriteConnection, poll_id: int, change: Change, *, now: float) -> None:
    if change.kind is ChangeKind.QUESTION:
        conn.execute("UPDATE polls SET question = ? WHERE id = ?", (change.new, poll_id))
    elif change.kind is ChangeKind.ADD:
        assert change.number is not None
        conn.execute(
            "INSERT INTO poll_options (poll_id, position, label) VALUES (?, ?, ?)",
            (poll_id, change.number - 1, change.new),
        )
    elif change.kind is ChangeKind.REMOVE:
        assert change.number is not None
        conn.execute(
            "UPDATE poll_options SET removed_at = ? WHERE poll_id = ? AND position = ?",
            (now, poll_id, change.number - 1),
        )
    else:
        conn.execute("UPDATE polls SET closes_at = ? WHERE id = ?", (change.new, poll_id))
