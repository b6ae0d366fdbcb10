"""Storage of scheduled and repeating polls: posting a copy, the next copy, listing, cancelling.

A scheduled poll is a poll row without a message and a 'post' job (see `jobs.py`). Each copy
of a repeating poll is a row of its own; while a series runs, exactly one copy is waiting to
be posted: the next copy is stored in the same transaction that records the previous one's
message (`mark_posted`, or `PollRepository.attach_message` for a first copy posted at once).
A series is stopped by cancelling its waiting copy; a cancelled copy anywhere in the series
also keeps any later copy from being made.

Posting and cancelling a copy of one series take turns on a lock of their own (the series'
id, apart from the per-server numbering lock), so a cancel never misses a copy made by a
post committing at the same moment.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import Enum

from ..db import Database, WriteConnection
from .models import Poll, PollDraft
from .repository import _COLUMNS, _OPTIONS, LIKE, _poll, insert_poll, read_poll, schedule_reminder, search_terms
from .schedule import Posting, plan_posting

CANCELLED_OUTCOME = "skipped: cancelled"


def _series_lock(conn: WriteConnection, series_id: int) -> None:
    # Negative: guild ids (the numbering lock) are positive snowflakes.
    conn.lock(-series_id)


def _finish_post_job(conn: WriteConnection, poll_id: int, *, outcome: str, now: float, message_id: int | None) -> None:
    conn.execute(
        "UPDATE poll_jobs SET done_at = ?, outcome = ?, message_id = ?, claim_until = NULL"
        " WHERE poll_id = ? AND kind = 'post' AND done_at IS NULL",
        (now, outcome, message_id, poll_id),
    )


def continue_series(conn: WriteConnection, poll_id: int, posted_at: float | None = None) -> Poll | None:
    """After a copy of a repeating poll is posted (in the same transaction): store the next
    copy, due at the series' next grid time after `posted_at` (default: the copy's start),
    unless the series was stopped or the next copy exists already. The new copy, or None."""
    poll = read_poll(conn, poll_id)
    if poll is None or poll.repeat_every is None or poll.series_id is None or poll.series_copy is None:
        return None
    _series_lock(conn, poll.series_id)
    stopped_or_made = conn.execute(
        "SELECT 1 FROM polls WHERE series_id = ? AND (cancelled_at IS NOT NULL OR series_copy > ?) LIMIT 1",
        (poll.series_id, poll.series_copy),
    ).fetchone()
    if stopped_or_made is not None:
        return None
    start = poll.starts_at if poll.starts_at is not None else poll.created_at
    posting = plan_posting(start, poll.repeat_every, start if posted_at is None else posted_at)
    draft = PollDraft(
        question=poll.question,
        options=tuple(poll.options[i] for i in poll.shown),
        duration=poll.duration,
        multiple=poll.multiple,
        anonymous=poll.anonymous,
        hide_results=poll.hide_results,
        role_id=poll.role_id,
        max_choices=poll.max_choices,
        ranked=poll.ranked,
        quorum=poll.quorum,
        remind=poll.remind_before,
        starts_at=posting.next_start,
        repeat=poll.repeat_every,
    )
    return insert_poll(
        conn,
        draft,
        guild_id=poll.guild_id,
        channel_id=poll.channel_id,
        creator_id=poll.creator_id,
        now=start if posted_at is None else posted_at,
        series=(poll.series_id, poll.series_copy + 1),
    )


@dataclass(frozen=True, slots=True)
class Posted:
    """What `mark_posted` found and did."""

    poll: Poll  # as stored afterwards
    recorded: bool  # this call recorded the message (False: done before, or cancelled)
    cancelled: bool  # cancelled before its message was recorded: the message must go
    posting: Posting | None = None  # lateness and the next start, when recorded now
    next_copy: Poll | None = None  # the series' waiting copy, if any


class CancelStatus(Enum):
    CANCELLED = "cancelled"  # a scheduled poll that will not be posted
    SERIES_STOPPED = "series stopped"  # a repeating poll's waiting copy is cancelled
    ALREADY_CANCELLED = "already cancelled"
    ALREADY_STOPPED = "already stopped"  # a series with no copy left to post
    NOT_SCHEDULED = "not scheduled"  # posted and not repeating: nothing to cancel


@dataclass(frozen=True, slots=True)
class Cancelled:
    status: CancelStatus
    poll: Poll  # the poll named
    cancelled: Poll | None = None  # the copy that will not be posted
    open_copies: tuple[Poll, ...] = ()  # posted copies of the series that stay open until their deadline


class ScheduleRepository:
    def __init__(self, db: Database) -> None:
        self.db = db
        self._columns = _COLUMNS + _OPTIONS[db.dialect]
        self._like = LIKE[db.dialect]

    # ------------------------------------------------------------ posting

    async def set_deadline(self, poll_id: int, *, now: float) -> Poll | None:
        """Before a copy is sent: fix its deadline (`now + duration`), so that the card shows
        the deadline the poll will have, and a retry that finds the message sent keeps it.
        None if the poll is gone, posted or cancelled meanwhile."""

        def update(conn: WriteConnection) -> Poll | None:
            poll = read_poll(conn, poll_id)
            if poll is None or poll.message_id is not None or poll.cancelled_at is not None:
                return None
            if poll.duration is None:
                return poll
            conn.execute(
                "UPDATE polls SET closes_at = ? WHERE id = ? AND message_id IS NULL AND cancelled_at IS NULL",
                (now + poll.duration, poll_id),
            )
            return read_poll(conn, poll_id)

        return await self.db.write(update)

    async def mark_posted(self, poll_id: int, message_id: int, now: float) -> Posted:
        """Record that a scheduled copy is up, in one transaction: its message, its deadline
        (`now + duration` unless `set_deadline` fixed it), its reminder, its post job done,
        and for a series the next copy with its post job, unless the series was stopped.
        Idempotent: a second call changes nothing and reports what is stored."""

        def update(conn: WriteConnection) -> Posted:
            poll = read_poll(conn, poll_id)
            if poll is None:
                raise LookupError(f"poll {poll_id} does not exist")
            if poll.series_id is not None:
                _series_lock(conn, poll.series_id)
            closes_at = poll.closes_at
            if closes_at is None and poll.duration is not None:
                closes_at = now + poll.duration
            recorded = conn.execute(
                "UPDATE polls SET message_id = ?, closes_at = ? WHERE id = ? AND message_id IS NULL"
                " AND cancelled_at IS NULL",
                (message_id, closes_at, poll_id),
            ).rowcount == 1
            if not recorded:
                poll = read_poll(conn, poll_id)
                assert poll is not None
                cancelled = poll.message_id is None
                _finish_post_job(
                    conn, poll_id, now=now,
                    outcome=CANCELLED_OUTCOME if cancelled else "sent", message_id=poll.message_id,
                )
                return Posted(poll, recorded=False, cancelled=cancelled, next_copy=self._waiting(conn, poll))
            schedule_reminder(conn, poll_id)
            _finish_post_job(conn, poll_id, outcome="sent", now=now, message_id=message_id)
            start = poll.starts_at if poll.starts_at is not None else now
            posting = plan_posting(start, poll.repeat_every, now)
            continue_series(conn, poll_id, now)
            stored = read_poll(conn, poll_id)
            assert stored is not None
            waiting = self._waiting(conn, stored)
            return Posted(stored, recorded=True, cancelled=False, posting=posting, next_copy=waiting)

        return await self.db.write(update)

    def _waiting(self, conn: WriteConnection, poll: Poll) -> Poll | None:
        if poll.series_id is None:
            return None
        row = conn.execute(
            f"SELECT {self._columns} FROM polls p WHERE p.series_id = ? AND p.message_id IS NULL"
            " AND p.cancelled_at IS NULL ORDER BY p.series_copy DESC LIMIT 1",
            (poll.series_id,),
        ).fetchone()
        return _poll(row) if row else None

    async def give_up(self, poll_id: int, *, reason: str, now: float) -> Poll | None:
        """A copy that cannot be posted (its channel is gone, the bot may not post there): its
        post job fails with `reason`, and the poll is cancelled by nobody (Quorum), which also
        ends its series. The poll as stored, or None if it was posted or cancelled meanwhile."""

        def update(conn: WriteConnection) -> Poll | None:
            poll = read_poll(conn, poll_id)
            if poll is None:
                return None
            if poll.series_id is not None:
                _series_lock(conn, poll.series_id)
            changed = conn.execute(
                "UPDATE polls SET cancelled_at = ?, cancelled_by = NULL WHERE id = ? AND message_id IS NULL"
                " AND cancelled_at IS NULL",
                (now, poll_id),
            ).rowcount
            _finish_post_job(conn, poll_id, outcome=f"failed: {reason}"[:500], now=now, message_id=None)
            return read_poll(conn, poll_id) if changed else None

        return await self.db.write(update)

    # ------------------------------------------------------------ finding

    async def find(self, guild_id: int, number: int) -> Poll | None:
        """A poll by its number, posted or not (`PollRepository.get_by_number` sees only
        posted ones)."""
        row = await self.db.fetchone(
            f"SELECT {self._columns} FROM polls p WHERE p.guild_id = ? AND p.number = ?", (guild_id, number)
        )
        return _poll(row) if row else None

    _SCHEDULED = (
        " FROM polls p WHERE p.guild_id = ? AND p.message_id IS NULL AND p.cancelled_at IS NULL"
        " AND EXISTS (SELECT 1 FROM poll_jobs j WHERE j.poll_id = p.id AND j.kind = 'post' AND j.done_at IS NULL)"
    )

    async def list_scheduled(self, guild_id: int, *, limit: int = 200) -> tuple[list[Poll], int]:
        """A server's polls still to be posted (scheduled ones and the waiting copies of
        repeating ones), soonest first, up to `limit`; and how many there are in all."""
        rows = await self.db.fetchall(
            f"SELECT {self._columns}{self._SCHEDULED} ORDER BY p.starts_at, p.number LIMIT ?", (guild_id, limit)
        )
        total = await self.db.fetchval(f"SELECT count(*){self._SCHEDULED}", (guild_id,))
        return [_poll(r) for r in rows], int(total)

    async def search_scheduled(self, guild_id: int, text: str, *, limit: int = 25) -> list[Poll]:
        """For autocomplete: polls still to be posted whose question or number matches."""
        pattern, text = search_terms(text)
        rows = await self.db.fetchall(
            f"SELECT {self._columns}{self._SCHEDULED}"
            f" AND (p.question {self._like} ? ESCAPE '\\' OR CAST(p.number AS TEXT) = ?)"
            " ORDER BY p.starts_at, p.number LIMIT ?",
            (guild_id, pattern, text, limit),
        )
        return [_poll(r) for r in rows]

    # ------------------------------------------------------------ cancelling

    async def cancel(self, poll: Poll, user_id: int, now: float) -> Cancelled:
        """Cancel a scheduled poll, or stop the series a copy (posted or waiting) belongs to:
        its waiting copy is cancelled and its post job finished as skipped; posted copies stay
        open until their deadline. The caller checks who may (`Poll.can_manage`)."""

        def update(conn: WriteConnection) -> Cancelled:
            current = read_poll(conn, poll.id)
            if current is None:
                raise LookupError(f"poll {poll.id} does not exist")
            if current.series_id is None and current.message_id is not None:
                return Cancelled(CancelStatus.NOT_SCHEDULED, current)
            if current.series_id is not None:
                _series_lock(conn, current.series_id)
                waiting = [r[0] for r in conn.execute(
                    "SELECT id FROM polls WHERE series_id = ? AND message_id IS NULL AND cancelled_at IS NULL",
                    (current.series_id,),
                ).fetchall()]
            else:
                waiting = [current.id] if current.cancelled_at is None else []
            cancelled: Poll | None = None
            for poll_id in waiting:
                conn.execute(
                    "UPDATE polls SET cancelled_at = ?, cancelled_by = ? WHERE id = ?", (now, user_id, poll_id)
                )
                _finish_post_job(conn, poll_id, outcome=CANCELLED_OUTCOME, now=now, message_id=None)
                cancelled = read_poll(conn, poll_id)
            if current.series_id is None:
                status = CancelStatus.CANCELLED if cancelled else CancelStatus.ALREADY_CANCELLED
                return Cancelled(status, current, cancelled)
            rows = conn.execute(
                f"SELECT {self._columns} FROM polls p WHERE p.series_id = ? AND p.message_id IS NOT NULL"
                " AND p.closed_at IS NULL ORDER BY p.series_copy",
                (current.series_id,),
            ).fetchall()
            status = CancelStatus.SERIES_STOPPED if cancelled else CancelStatus.ALREADY_STOPPED
            return Cancelled(status, current, cancelled, tuple(_poll(r) for r in rows))

        return await self.db.write(update)
