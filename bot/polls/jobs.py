"""Messages Quorum sends for a poll at a time of its own: a scheduled poll's post, a reminder.

Each is a row of `poll_jobs`, sent exactly once across every process sharing the database,
the way announcements are (see `PollRepository.claim_announcements`):

1. `claim_due` hands each due job to one process for `JOB_LEASE` seconds (a conditional
   UPDATE; `SKIP LOCKED` on PostgreSQL), so two processes never work on the same one.
2. `mark_started` renews the claim and records when sending began, before anything is sent;
   False means the lease ran out and another process has it: then do not send.
3. A retry (after a crash) that finds `started_at` set looks for the message sent earlier
   before sending again; the message's nonce covers the rest.
4. `finish` records the outcome (`sent`, `skipped: why`, `failed: why`) once and for all;
   `release` gives the job back for another attempt later.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import Enum

from ..db import Database, WriteConnection
from .repository import SKIP_LOCKED, job_shard_filter

JOB_LEASE = 120.0
# After this many failed attempts a job is given up, with the reason kept.
MAX_ATTEMPTS = 5


class JobKind(Enum):
    POST = "post"  # a scheduled poll (or the next copy of a repeating one) appears
    REMIND = "remind"  # a short reply to the poll before it closes


@dataclass(frozen=True, slots=True)
class Job:
    poll_id: int
    kind: JobKind
    due_at: float
    started_at: float | None
    attempts: int


_JOB_COLUMNS = "poll_id, kind, due_at, started_at, attempts"


def _job(row: object) -> Job:
    poll_id, kind, due_at, started_at, attempts = row  # type: ignore[misc]
    return Job(int(poll_id), JobKind(kind), float(due_at), started_at, int(attempts))




class JobRepository:
    def __init__(self, db: Database) -> None:
        self.db = db
        self._skip_locked = SKIP_LOCKED[db.dialect]

    async def get(self, poll_id: int, kind: JobKind) -> Job | None:
        row = await self.db.fetchone(
            f"SELECT {_JOB_COLUMNS} FROM poll_jobs WHERE poll_id = ? AND kind = ?", (poll_id, kind.value)
        )
        return _job(tuple(row)) if row else None

    async def pending(self, poll_id: int) -> list[Job]:
        rows = await self.db.fetchall(
            f"SELECT {_JOB_COLUMNS} FROM poll_jobs WHERE poll_id = ? AND done_at IS NULL ORDER BY due_at", (poll_id,)
        )
        return [_job(tuple(r)) for r in rows]

    async def claim_due(
        self, *, owner: str, now: float, limit: int, shards: tuple[int, tuple[int, ...]] | None = None
    ) -> list[Job]:
        """Claim up to `limit` due jobs nobody holds, earliest first; each claim counts as an
        attempt (so a job that keeps failing, however early, is given up in the end).

        `shards` (shard count, this process's shard ids) keeps 'post' jobs to this process's
        servers: posting checks the channel and the bot's permissions in the gateway's cache
        of the server, which only the process running its shard has. Reminders need nothing
        but REST, so any process sends them (as with announcements)."""
        mine, mine_params = job_shard_filter(shards)

        def update(conn: WriteConnection) -> list[Job]:
            # The picked rows in a CTE of their own (see repository.SKIP_LOCKED).
            rows = conn.execute(
                "WITH picked AS MATERIALIZED ("
                "  SELECT poll_id, kind FROM poll_jobs WHERE done_at IS NULL AND due_at <= ?"
                f"  AND (claim_until IS NULL OR claim_until <= ?){mine}"
                f"  ORDER BY due_at LIMIT ?{self._skip_locked}"
                ") UPDATE poll_jobs SET claim_until = ?, claimed_by = ?, attempts = attempts + 1"
                " WHERE done_at IS NULL AND due_at <= ? AND (claim_until IS NULL OR claim_until <= ?)"
                f" AND (poll_id, kind) IN (SELECT poll_id, kind FROM picked) RETURNING {_JOB_COLUMNS}",
                (now, now, *mine_params, limit, now + JOB_LEASE, owner, now, now),
            ).fetchall()
            return sorted((_job(tuple(r)) for r in rows), key=lambda j: (j.due_at, j.poll_id))

        return await self.db.write(update)

    async def mark_started(self, job: Job, *, owner: str, now: float) -> bool:
        """Renew `owner`'s claim and record the attempt, before sending; False if the claim is
        no longer `owner`'s (do not send)."""

        def update(conn: WriteConnection) -> bool:
            return conn.execute(
                "UPDATE poll_jobs SET started_at = coalesce(started_at, ?), claim_until = ?"
                " WHERE poll_id = ? AND kind = ? AND done_at IS NULL AND claimed_by = ? AND claim_until > ?",
                (now, now + JOB_LEASE, job.poll_id, job.kind.value, owner, now),
            ).rowcount == 1

        return await self.db.write(update)

    async def finish(
        self, job: Job, *, outcome: str, now: float, message_id: int | None = None
    ) -> None:
        def update(conn: WriteConnection) -> None:
            conn.execute(
                "UPDATE poll_jobs SET done_at = ?, outcome = ?, message_id = ?, claim_until = NULL"
                " WHERE poll_id = ? AND kind = ? AND done_at IS NULL",
                (now, outcome[:500], message_id, job.poll_id, job.kind.value),
            )

        await self.db.write(update)

    async def release(self, job: Job, *, retry_at: float) -> None:
        """Give the job back after a failed attempt: any process may try again at `retry_at`."""

        def update(conn: WriteConnection) -> None:
            conn.execute(
                "UPDATE poll_jobs SET claim_until = ? WHERE poll_id = ? AND kind = ? AND done_at IS NULL",
                (retry_at, job.poll_id, job.kind.value),
            )

        await self.db.write(update)

    async def postpone(self, job: Job, *, retry_at: float) -> None:
        """As `release`, for a job this process could not even try (its server unavailable for
        a moment): the attempt is not counted."""

        def update(conn: WriteConnection) -> None:
            conn.execute(
                "UPDATE poll_jobs SET claim_until = ?, attempts = max(attempts - 1, 0)"
                " WHERE poll_id = ? AND kind = ? AND done_at IS NULL"
                if self.db.dialect == "sqlite"
                else "UPDATE poll_jobs SET claim_until = ?, attempts = greatest(attempts - 1, 0)"
                " WHERE poll_id = ? AND kind = ? AND done_at IS NULL",
                (retry_at, job.poll_id, job.kind.value),
            )

        await self.db.write(update)

    async def reclaim_own(self, *, instance: str, owner: str) -> int:
        """At start: jobs earlier copies of this instance held may be taken again at once
        (the caller holds the instance lock, as for announcements)."""

        def update(conn: WriteConnection) -> int:
            return conn.execute(
                "UPDATE poll_jobs SET claim_until = NULL"
                " WHERE done_at IS NULL AND substr(claimed_by, 1, ?) = ? AND claimed_by <> ?",
                (len(instance) + 1, instance + "/", owner),
            ).rowcount

        return await self.db.write(update)
