"""Every SQL statement about polls, and nothing else, for both backends.

Both dialects share every statement they agree on. Where they differ (collecting a poll's
answers, the vote itself, skipping rows another process has locked) the difference is one
fragment or one method here; the service, the cogs and the rules above them never know
which database they run on.
"""

from __future__ import annotations

import json
from typing import Any

from ..db import ConstraintViolation, Database, WriteConnection
from .ballots import BallotRepository
from .models import (
    OptionRemoved,
    Poll,
    PollClosed,
    PollDraft,
    PollNotFound,
    StoredVote,
    TooManyChoices,
    VoteChange,
    VoteOutcome,
)
from .tally import Tally

_COLUMNS = """
    p.id, p.guild_id, p.number, p.channel_id, p.message_id, p.creator_id, p.question,
    p.multiple, p.anonymous, p.hide_results, p.role_id, p.max_choices, p.created_at,
    p.closes_at, p.closed_at, p.closed_by, p.announce_started_at, p.announcement_id,
    p.announced_at, p.ranked, p.quorum, p.duration, p.remind_before, p.starts_at, p.repeat_every,
    p.series_id, p.series_copy, p.cancelled_at, p.cancelled_by, p.edited_at,
"""
# A poll's answers, in order, as one JSON array text; and the positions removed, likewise.
_OPTIONS = {
    "sqlite": """(SELECT json_group_array(label)
       FROM (SELECT label FROM poll_options o WHERE o.poll_id = p.id ORDER BY o.position)) AS options,
    (SELECT json_group_array(position) FROM poll_options o
       WHERE o.poll_id = p.id AND o.removed_at IS NOT NULL) AS removed""",
    "postgresql": """(SELECT coalesce(json_agg(o.label ORDER BY o.position), '[]')::text
       FROM poll_options o WHERE o.poll_id = p.id) AS options,
    (SELECT coalesce(json_agg(o.position), '[]')::text FROM poll_options o
       WHERE o.poll_id = p.id AND o.removed_at IS NOT NULL) AS removed""",
}
# Claiming rows: PostgreSQL passes over rows another process holds instead of waiting for
# them; SQLite has one writer at a time, so there is nothing to skip.
SKIP_LOCKED = {"sqlite": "", "postgresql": " FOR UPDATE SKIP LOCKED"}
# Claims pick their rows in a CTE of their own: as `UPDATE … WHERE id IN (SELECT … LIMIT n FOR
# UPDATE SKIP LOCKED)`, PostgreSQL may run the subquery again for rows it updates and claim
# more than n (claim_due with LIMIT 2 took 5 of 5 due jobs).
# SQLite's LIKE ignores case (ASCII); PostgreSQL's does not, its ILIKE does (all of Unicode).
LIKE = {"sqlite": "LIKE", "postgresql": "ILIKE"}
# How long a process owns an announcement it claimed before another may take it over.
ANNOUNCE_LEASE = 120.0


def _poll(row: Any) -> Poll:
    return Poll(
        id=row["id"],
        guild_id=row["guild_id"],
        number=row["number"],
        channel_id=row["channel_id"],
        message_id=row["message_id"],
        creator_id=row["creator_id"],
        question=row["question"],
        options=tuple(json.loads(row["options"])),
        multiple=bool(row["multiple"]),
        anonymous=bool(row["anonymous"]),
        hide_results=bool(row["hide_results"]),
        role_id=row["role_id"],
        max_choices=row["max_choices"],
        created_at=row["created_at"],
        closes_at=row["closes_at"],
        closed_at=row["closed_at"],
        closed_by=row["closed_by"],
        announce_started_at=row["announce_started_at"],
        announcement_id=row["announcement_id"],
        announced_at=row["announced_at"],
        ranked=bool(row["ranked"]),
        quorum=row["quorum"],
        duration=row["duration"],
        remind_before=row["remind_before"],
        starts_at=row["starts_at"],
        repeat_every=row["repeat_every"],
        series_id=row["series_id"],
        series_copy=row["series_copy"],
        cancelled_at=row["cancelled_at"],
        cancelled_by=row["cancelled_by"],
        edited_at=row["edited_at"],
        removed=frozenset(json.loads(row["removed"])),
    )


def job_shard_filter(shards: tuple[int, tuple[int, ...]] | None) -> tuple[str, tuple[int, ...]]:
    """The condition (an `AND …` fragment on poll_jobs) keeping 'post' jobs to the servers of
    `shards` (shard count, this process's shard ids), and its parameters; none for None."""
    if shards is None:
        return "", ()
    count, ids = shards
    return (
        " AND (kind <> 'post' OR poll_id IN (SELECT id FROM polls WHERE"
        f" (guild_id >> 22) % ? IN ({', '.join('?' * len(ids))})))",
        (count, *ids),
    )


class PollRepository:
    def __init__(self, db: Database) -> None:
        self.db = db
        self._columns = _COLUMNS + _OPTIONS[db.dialect]
        self._skip_locked = SKIP_LOCKED[db.dialect]
        self._like = LIKE[db.dialect]
        self._greatest = {"sqlite": "max", "postgresql": "greatest"}[db.dialect]

    # ------------------------------------------------------------ creating

    async def create(
        self, draft: PollDraft, *, guild_id: int, channel_id: int, creator_id: int, now: float
    ) -> Poll:
        """Store a poll that has no message yet (see `attach_message`). A scheduled one
        (`draft.starts_at`) gets its number now and a 'post' job; its deadline is set when it
        is posted. A repeating one is the first copy of its series."""
        return await self.db.write(
            lambda conn: insert_poll(
                conn, draft, guild_id=guild_id, channel_id=channel_id, creator_id=creator_id, now=now
            )
        )

    async def attach_message(self, poll_id: int, message_id: int) -> None:
        """The poll created now is posted: remember its message, schedule its reminder and, for
        a repeating poll, store its next copy."""

        # Imported here: the series module builds on this one's insert.
        from .schedules import continue_series

        def update(conn: WriteConnection) -> None:
            conn.execute("UPDATE polls SET message_id = ? WHERE id = ?", (message_id, poll_id))
            schedule_reminder(conn, poll_id)
            continue_series(conn, poll_id)  # a repeating poll posted at once: its copy 2

        await self.db.write(update)

    async def discard_unposted(self, poll_id: int) -> None:
        """Remove a poll whose message could not be posted."""

        def delete(conn: WriteConnection) -> None:
            conn.execute("DELETE FROM polls WHERE id = ? AND message_id IS NULL", (poll_id,))

        await self.db.write(delete)

    # ------------------------------------------------------------ finding

    async def get(self, poll_id: int) -> Poll | None:
        row = await self.db.fetchone(f"SELECT {self._columns} FROM polls p WHERE p.id = ?", (poll_id,))
        return _poll(row) if row else None

    async def get_by_number(self, guild_id: int, number: int) -> Poll | None:
        row = await self.db.fetchone(
            f"SELECT {self._columns} FROM polls p WHERE p.guild_id = ? AND p.number = ? "
            "AND p.message_id IS NOT NULL",
            (guild_id, number),
        )
        return _poll(row) if row else None

    async def get_by_message(self, guild_id: int, message_id: int) -> Poll | None:
        row = await self.db.fetchone(
            f"SELECT {self._columns} FROM polls p WHERE p.guild_id = ? AND p.message_id = ?",
            (guild_id, message_id),
        )
        return _poll(row) if row else None

    async def list_open(self, guild_id: int, limit: int = 100) -> list[Poll]:
        rows = await self.db.fetchall(
            f"SELECT {self._columns} FROM polls p WHERE p.guild_id = ? AND p.closed_at IS NULL "
            "AND p.message_id IS NOT NULL "
            "ORDER BY p.closes_at IS NULL, p.closes_at, p.number DESC LIMIT ?",
            (guild_id, limit),
        )
        return [_poll(r) for r in rows]

    async def search(self, guild_id: int, text: str, limit: int = 25) -> list[Poll]:
        """Polls of a server for autocomplete: open ones first, then newest first."""
        pattern, text = search_terms(text)
        rows = await self.db.fetchall(
            f"SELECT {self._columns} FROM polls p WHERE p.guild_id = ? AND p.message_id IS NOT NULL "
            f"AND (p.question {self._like} ? ESCAPE '\\' OR CAST(p.number AS TEXT) = ?) "
            "ORDER BY p.closed_at IS NOT NULL, p.number DESC LIMIT ?",
            (guild_id, pattern, text, limit),
        )
        return [_poll(r) for r in rows]

    # ------------------------------------------------------------ voting

    async def cast_vote(self, poll: Poll, user_id: int, option: int, *, now: float) -> VoteOutcome:
        """Toggle `option` for `user_id` (single choice: move or remove the member's vote), in
        one write. The schema holds the vote rules (closed, one vote, max choices) against
        every race; the caller's own rules (deadline, role) are the service's."""
        if self.db.dialect == "postgresql":
            # One statement, so a batch of clicks is one pipeline, and one call (see bot/db.py).
            row = await self.db.write_statement(
                "SELECT refusal, change, choices FROM quorum_cast_vote(?, ?, ?, ?)",
                (poll.id, user_id, option, now),
                many="SELECT n, refusal, change, choices"
                " FROM quorum_cast_votes(?::bigint[], ?::bigint[], ?::integer[], ?::double precision[])",
            )
            if row["refusal"] is not None:
                raise _refusal(row["refusal"], poll)
            return VoteOutcome(VoteChange(row["change"]), option, tuple(row["choices"]))

        def toggle(conn: WriteConnection) -> VoteOutcome:
            try:
                if poll.multiple:
                    return _toggle_multiple(conn, poll, user_id, option, now)
                return _toggle_single(conn, poll, user_id, option, now)
            except ConstraintViolation as error:
                raise _refusal(str(error), poll) from error

        return await self.db.write(toggle)

    async def choices_of(self, poll_id: int, user_id: int) -> tuple[int, ...]:
        rows = await self.db.fetchall(
            "SELECT option FROM votes WHERE poll_id = ? AND user_id = ? ORDER BY option", (poll_id, user_id)
        )
        return tuple(r[0] for r in rows)

    # ------------------------------------------------------------ counting

    async def tally(self, poll: Poll) -> Tally:
        if poll.ranked:  # first preferences: what a ranked poll shows while open
            return await BallotRepository(self.db).first_preferences(poll)
        rows = await self.db.fetchall(
            "SELECT option, count(*) FROM votes WHERE poll_id = ? GROUP BY option", (poll.id,)
        )
        counts = {r[0]: r[1] for r in rows}
        if poll.multiple:
            voters = int(await self.db.fetchval(
                # Grouping walks the primary key in order: about twice as fast as count(DISTINCT).
                "SELECT count(*) FROM (SELECT 1 FROM votes WHERE poll_id = ? GROUP BY user_id) AS voters", (poll.id,)
            ))
        else:
            voters = sum(counts.values())
        return Tally.from_counts(len(poll.options), counts, voters)

    async def voters_by_option(self, poll: Poll, *, limit: int = 100) -> dict[int, list[int]]:
        """Up to `limit` voters per answer, in index order: enough to show, fast on huge polls.
        A ranked poll's members are listed by their first choice."""
        if poll.ranked:
            return await BallotRepository(self.db).voters_by_first(poll, limit=limit)
        result: dict[int, list[int]] = {}
        for option in range(len(poll.options)):
            rows = await self.db.fetchall(
                "SELECT user_id FROM votes WHERE poll_id = ? AND option = ? LIMIT ?", (poll.id, option, limit)
            )
            if rows:
                result[option] = [r[0] for r in rows]
        return result

    async def votes(self, poll_id: int) -> list[StoredVote]:
        rows = await self.db.fetchall(
            "SELECT option, user_id, voted_at FROM votes WHERE poll_id = ? ORDER BY voted_at, option",
            (poll_id,),
        )
        return [StoredVote(r[0], r[1], r[2]) for r in rows]

    # ------------------------------------------------------------ closing

    async def close(self, poll_id: int, *, now: float, closed_by: int | None) -> bool:
        """Close an open poll. Only the first closer gets True, so only one announces."""

        def update(conn: WriteConnection) -> bool:
            cursor = conn.execute(
                "UPDATE polls SET closed_at = ?, closed_by = ? WHERE id = ? AND closed_at IS NULL",
                (now, closed_by, poll_id),
            )
            return cursor.rowcount == 1

        return await self.db.write(update)

    async def next_deadline(self, shards: tuple[int, tuple[int, ...]] | None = None) -> float | None:
        """When the scheduler has work next: the earliest deadline of an open poll, when an
        unannounced poll may be claimed (now, or when another process's claim runs out), or
        when a job (a scheduled post, a reminder) may be: with `shards`, a scheduled post of
        this process's servers only (see JobRepository.claim_due: a post due on a shard that
        is down would otherwise wake this process every second). One read: processes sharing
        a database ask often."""
        mine, mine_params = job_shard_filter(shards)
        return await self.db.fetchval(
            "SELECT min(t) FROM ("
            " SELECT min(closes_at) AS t FROM polls"
            "  WHERE closed_at IS NULL AND closes_at IS NOT NULL AND message_id IS NOT NULL"
            " UNION ALL"
            " SELECT min(coalesce(announce_claim_until, closed_at)) FROM polls"
            "  WHERE closed_at IS NOT NULL AND announced_at IS NULL"
            " UNION ALL"
            f" SELECT min({self._greatest}(due_at, coalesce(claim_until, due_at))) FROM poll_jobs"
            f"  WHERE done_at IS NULL{mine}"
            ") AS deadlines",
            mine_params,
        )

    async def due(self, now: float, limit: int = 100) -> list[int]:
        rows = await self.db.fetchall(
            "SELECT id FROM polls WHERE closed_at IS NULL AND closes_at IS NOT NULL "
            "AND message_id IS NOT NULL AND closes_at <= ? ORDER BY closes_at LIMIT ?",
            (now, limit),
        )
        return [r[0] for r in rows]

    async def close_due(self, now: float, limit: int = 500) -> list[int]:
        """Close up to `limit` polls whose deadline has passed, in one write; their ids.

        Any number of processes may run this at once: the condition is checked again on the
        row itself, so each poll is closed by exactly one of them. On PostgreSQL each passes
        over rows the others hold, so they close different polls side by side; a poll a vote in
        flight holds is left for the next pass (a second later), its votes already refused by
        the deadline.
        """

        def update(conn: WriteConnection) -> list[int]:
            rows = conn.execute(
                "WITH picked AS MATERIALIZED ("
                " SELECT id FROM polls WHERE closed_at IS NULL AND closes_at IS NOT NULL"
                f" AND message_id IS NOT NULL AND closes_at <= ? ORDER BY closes_at LIMIT ?{self._skip_locked}"
                ") UPDATE polls SET closed_at = ?, closed_by = NULL WHERE closed_at IS NULL"
                " AND id IN (SELECT id FROM picked) RETURNING id",
                (now, limit, now),
            ).fetchall()
            return [r[0] for r in rows]

        return await self.db.write(update)

    async def claim_announcements(self, *, owner: str, now: float, limit: int) -> list[int]:
        """Claim up to `limit` closed, unannounced polls nobody holds, oldest first: this
        process announces them and every other passes over them until the lease runs out."""

        def update(conn: WriteConnection) -> list[int]:
            rows = conn.execute(
                "WITH picked AS MATERIALIZED ("
                "  SELECT id FROM polls WHERE closed_at IS NOT NULL AND announced_at IS NULL"
                "  AND (announce_claim_until IS NULL OR announce_claim_until <= ?)"
                f"  ORDER BY closed_at LIMIT ?{self._skip_locked}"
                ") UPDATE polls SET announce_claim_until = ?, announce_claimed_by = ?"
                " WHERE announced_at IS NULL AND (announce_claim_until IS NULL OR announce_claim_until <= ?)"
                " AND id IN (SELECT id FROM picked) RETURNING id",
                (now, limit, now + ANNOUNCE_LEASE, owner, now),
            ).fetchall()
            return sorted(r[0] for r in rows)

        return await self.db.write(update)

    async def claim_announcement(self, poll_id: int, *, owner: str, now: float) -> bool:
        """Claim one poll's announcement (a poll closed by hand); False if another holds it."""

        def update(conn: WriteConnection) -> bool:
            cursor = conn.execute(
                "UPDATE polls SET announce_claim_until = ?, announce_claimed_by = ?"
                " WHERE id = ? AND closed_at IS NOT NULL AND announced_at IS NULL"
                " AND (announce_claim_until IS NULL OR announce_claim_until <= ?)",
                (now + ANNOUNCE_LEASE, owner, poll_id, now),
            )
            return cursor.rowcount == 1

        return await self.db.write(update)

    async def release_announcement(self, poll_id: int, *, retry_at: float) -> None:
        """Give a claim back after a failed attempt: any process may try again at `retry_at`."""

        def update(conn: WriteConnection) -> None:
            conn.execute(
                "UPDATE polls SET announce_claim_until = ? WHERE id = ? AND announced_at IS NULL", (retry_at, poll_id)
            )

        await self.db.write(update)

    async def reclaim_own(self, *, instance: str, owner: str) -> int:
        """At start: claims that earlier copies of this instance (`owner`'s part before the
        "/") held when they stopped may be taken again at once; the caller makes sure no such
        copy still runs. A restarted process looks for its earlier announcement before resending."""

        def update(conn: WriteConnection) -> int:
            return conn.execute(
                "UPDATE polls SET announce_claim_until = NULL"
                " WHERE announced_at IS NULL AND substr(announce_claimed_by, 1, ?) = ? AND announce_claimed_by <> ?",
                (len(instance) + 1, instance + "/", owner),
            ).rowcount

        return await self.db.write(update)

    async def unannounced(self, limit: int = 100) -> list[Poll]:
        rows = await self.db.fetchall(
            f"SELECT {self._columns} FROM polls p WHERE p.closed_at IS NOT NULL "
            "AND p.announced_at IS NULL ORDER BY p.closed_at LIMIT ?",
            (limit,),
        )
        return [_poll(r) for r in rows]

    async def mark_announce_started(self, poll_id: int, *, owner: str, now: float) -> bool:
        """Record that the announcement is about to be sent, renewing `owner`'s claim; False
        if the claim is no longer `owner`'s (its lease ran out and another process took it):
        then this process must not send. Together with the message's nonce (Discord refuses
        a second message with the same nonce for a few minutes) nothing is sent twice."""

        def update(conn: WriteConnection) -> bool:
            return conn.execute(
                "UPDATE polls SET announce_started_at = coalesce(announce_started_at, ?), announce_claim_until = ?"
                " WHERE id = ? AND announced_at IS NULL AND announce_claimed_by = ? AND announce_claim_until > ?",
                (now, now + ANNOUNCE_LEASE, poll_id, owner, now),
            ).rowcount == 1

        return await self.db.write(update)

    async def mark_announced(self, poll_id: int, *, message_id: int | None, now: float) -> None:
        """Record the announcement (message_id None: it could not be sent and never will be)."""

        def update(conn: WriteConnection) -> None:
            conn.execute(
                "UPDATE polls SET announcement_id = ?, announced_at = ? WHERE id = ?",
                (message_id, now, poll_id),
            )

        await self.db.write(update)

    async def count_open(self) -> int:
        return int(await self.db.fetchval("SELECT count(*) FROM polls WHERE closed_at IS NULL"))


def read_poll(conn: WriteConnection, poll_id: int) -> Poll | None:
    """A poll as stored, read inside a write's transaction."""
    row = conn.execute(f"SELECT {_COLUMNS}{_OPTIONS[conn.dialect]} FROM polls p WHERE p.id = ?", (poll_id,)).fetchone()
    return _poll(row) if row else None


def insert_poll(
    conn: WriteConnection,
    draft: PollDraft,
    *,
    guild_id: int,
    channel_id: int,
    creator_id: int,
    now: float,
    series: tuple[int, int] | None = None,
) -> Poll:
    """Store a poll that has no message yet, with the server's next number. A scheduled one
    (`draft.starts_at`) gets a 'post' job; its deadline is set when it is posted. A repeating
    one is the first copy of its series, or copy `series` = (series id, copy number)."""
    scheduled = draft.starts_at is not None
    closes_at = now + draft.duration if draft.duration is not None and not scheduled else None
    series_id, series_copy = series if series is not None else (None, 1 if draft.repeat is not None else None)
    # Numbers count per server: two processes creating in one server take turns here.
    conn.lock(guild_id)
    poll_id = conn.execute(
        """
        INSERT INTO polls (guild_id, number, channel_id, creator_id, question, multiple,
                           anonymous, hide_results, role_id, max_choices, created_at, closes_at,
                           ranked, quorum, duration, remind_before, starts_at, repeat_every,
                           series_id, series_copy)
        VALUES (?, (SELECT coalesce(max(number), 0) + 1 FROM polls WHERE guild_id = ?),
                ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)
        RETURNING id
        """,
        (
            guild_id, guild_id, channel_id, creator_id, draft.question, int(draft.multiple),
            int(draft.anonymous), int(draft.hide_results), draft.role_id, draft.max_choices,
            now, closes_at, int(draft.ranked), draft.quorum, draft.duration, draft.remind,
            draft.starts_at, draft.repeat, series_id, series_copy,
        ),
    ).fetchone()[0]
    if draft.repeat is not None and series_id is None:
        conn.execute("UPDATE polls SET series_id = ? WHERE id = ?", (poll_id, poll_id))
    conn.executemany(
        "INSERT INTO poll_options (poll_id, position, label) VALUES (?, ?, ?)",
        [(poll_id, i, label) for i, label in enumerate(draft.options)],
    )
    if scheduled:
        conn.execute("INSERT INTO poll_jobs (poll_id, kind, due_at) VALUES (?, 'post', ?)", (poll_id, draft.starts_at))
    # Read back in the same transaction: the poll as stored, number included.
    poll = read_poll(conn, poll_id)
    assert poll is not None
    return poll


def search_terms(text: str) -> tuple[str, str]:
    """What autocomplete typed, as a LIKE pattern for the question (escaped with `\\`) and the
    text a poll number must equal ("#3" and "3" alike)."""
    text = text.strip().lstrip("#")
    return "%" + text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_") + "%", text


def schedule_reminder(conn: WriteConnection, poll_id: int) -> None:
    """(Re)schedule a posted poll's reminder from its deadline as stored now: none without a
    deadline or a `remind_before`, and one already sent or skipped is never sent again. A
    reminder that would fall before now is due at once; the job checks it is still useful."""
    conn.execute(
        "DELETE FROM poll_jobs WHERE poll_id = ? AND kind = 'remind' AND done_at IS NULL AND started_at IS NULL",
        (poll_id,),
    )
    conn.execute(
        "INSERT INTO poll_jobs (poll_id, kind, due_at)"
        " SELECT id, 'remind', closes_at - remind_before FROM polls"
        " WHERE id = ? AND closes_at IS NOT NULL AND remind_before IS NOT NULL AND closed_at IS NULL"
        " ON CONFLICT (poll_id, kind) DO NOTHING",
        (poll_id,),
    )


def _toggle_single(conn: WriteConnection, poll: Poll, user_id: int, option: int, now: float) -> VoteOutcome:
    row = conn.execute(
        "SELECT option FROM votes WHERE poll_id = ? AND user_id = ? AND slot = 0", (poll.id, user_id)
    ).fetchone()
    if row is not None and row[0] == option:
        conn.execute("DELETE FROM votes WHERE poll_id = ? AND user_id = ? AND slot = 0", (poll.id, user_id))
        return VoteOutcome(VoteChange.REMOVED, option, ())
    conn.execute(
        "INSERT INTO votes (poll_id, user_id, slot, option, voted_at) VALUES (?, ?, 0, ?, ?) "
        "ON CONFLICT (poll_id, user_id, slot) DO UPDATE SET option = excluded.option, "
        "voted_at = excluded.voted_at",
        (poll.id, user_id, option, now),
    )
    return VoteOutcome(VoteChange.ADDED if row is None else VoteChange.MOVED, option, (option,))


def _toggle_multiple(conn: WriteConnection, poll: Poll, user_id: int, option: int, now: float) -> VoteOutcome:
    cursor = conn.execute(
        "DELETE FROM votes WHERE poll_id = ? AND user_id = ? AND slot = ?", (poll.id, user_id, option)
    )
    change = VoteChange.REMOVED
    if cursor.rowcount == 0:
        conn.execute(
            "INSERT INTO votes (poll_id, user_id, slot, option, voted_at) VALUES (?, ?, ?, ?, ?)",
            (poll.id, user_id, option, option, now),
        )
        change = VoteChange.ADDED
    rows = conn.execute(
        "SELECT option FROM votes WHERE poll_id = ? AND user_id = ? ORDER BY option", (poll.id, user_id)
    ).fetchall()
    return VoteOutcome(change, option, tuple(r[0] for r in rows))


def _refusal(message: str, poll: Poll) -> Exception:
    if "poll_closed" in message:
        return PollClosed()
    if "option_removed" in message:
        return OptionRemoved()
    if "max_choices" in message and poll.max_choices is not None:
        return TooManyChoices(poll.max_choices)
    if message == "foreign_key":
        return PollNotFound()
    return ConstraintViolation(message)

