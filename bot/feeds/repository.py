"""Every SQL statement about feeds and their items, for both backends.

What is decided (when to check again, when to give up, what counts as new) is the service's;
this module stores it, with each claim a conditional UPDATE (`SKIP LOCKED` on PostgreSQL) so
that every check is recorded once and every item is posted once across processes.

An item's `claim_until` says when it may be claimed: NULL while it waits for a check to release
it (at most `max_posts` of a feed's new items are released per check, oldest first), then the
time it may be claimed (now, a retry's time, the end of a lease).
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any

from ..db import ConstraintViolation, Database, WriteConnection
from ..polls.repository import LIKE, SKIP_LOCKED, search_terms
from .models import Feed, FeedItem

FEED_COLUMNS = (
    "id, guild_id, number, channel_id, url, page_url, title, added_by, added_at, paused_at, paused_by,"
    " paused_reason, etag, last_modified, next_check_at, last_check_at, last_new_at, failures,"
    " failing_since, last_error, notice_sent_at, body_hash"
)
_ITEM_COLUMNS = (
    "id, feed_id, item_key, seq, title, link, summary, published, state, attempts, post_started_at,"
    " post_marker, message_id, outcome, claim_until, claimed_by"
)
_GREATEST = {"sqlite": "max", "postgresql": "greatest"}

MAX_KEY = 512  # the schema's limit on item_key
# Stored lengths: enough for any embed (title 256, description 4096), bounded for hostile feeds.
MAX_TITLE, MAX_LINK, MAX_SUMMARY, MAX_PUBLISHED = 512, 2048, 4000, 64
MAX_ERROR, MAX_MARKER, MAX_OUTCOME, MAX_HEADER = 500, 1000, 500, 1024
# Keys per statement in an IN list: far below either engine's limit on parameters.
CHUNK = 500
INSERT_ROWS = 200  # rows per INSERT: at most 1,800 parameters
# A feed keeps the identities of its newest KEEP_ITEMS items and of every item its latest
# listing holds; older ones, long done, are forgotten in batches of at least PRUNE_SLACK.
KEEP_ITEMS = 2_000
PRUNE_SLACK = 200


def clean_text(value: str | None, limit: int) -> str | None:
    """Text fit for both engines: no NUL (PostgreSQL refuses it), no lone surrogate (neither
    driver can encode one), at most `limit` characters."""
    if value is None:
        return None
    value = value.replace("\x00", "")
    if not value.isascii():
        value = value.encode("utf-8", "replace").decode("utf-8")
    return value[:limit]


def stored_key(item: FeedItem) -> str:
    """The item's identity as stored: its key, or a hash of it when the key does not fit the
    schema (over 512 characters, a NUL, a lone surrogate); a hash of title and link if empty.
    The same item always gives the same stored key."""
    key = item.key
    if not key:
        key = f"\x00{item.title or ''}\x00{item.link or ''}"
    if 0 < len(key) <= MAX_KEY and clean_text(key, MAX_KEY) == key:
        return key
    return "sha256:" + hashlib.sha256(key.encode("utf-8", "surrogatepass")).hexdigest()


def feed_from_row(row: Any) -> Feed:
    return Feed(
        id=int(row["id"]),
        guild_id=int(row["guild_id"]),
        number=int(row["number"]),
        channel_id=int(row["channel_id"]),
        url=row["url"],
        page_url=row["page_url"],
        title=row["title"],
        added_by=int(row["added_by"]),
        added_at=float(row["added_at"]),
        paused_at=row["paused_at"],
        paused_by=row["paused_by"],
        paused_reason=row["paused_reason"],
        etag=row["etag"],
        last_modified=row["last_modified"],
        next_check_at=float(row["next_check_at"]),
        last_check_at=row["last_check_at"],
        last_new_at=row["last_new_at"],
        failures=int(row["failures"]),
        failing_since=row["failing_since"],
        last_error=row["last_error"],
        notice_sent_at=row["notice_sent_at"],
        body_hash=row["body_hash"],
    )


@dataclass(frozen=True, slots=True)
class StoredItem:
    """One row of feed_items."""

    id: int
    feed_id: int
    seq: int
    item: FeedItem  # key as stored
    state: str
    attempts: int
    post_started_at: float | None
    post_marker: str | None
    message_id: int | None
    outcome: str | None
    claim_until: float | None
    claimed_by: str | None


def _item(row: Any) -> StoredItem:
    return StoredItem(
        id=int(row["id"]),
        feed_id=int(row["feed_id"]),
        seq=int(row["seq"]),
        item=FeedItem(row["item_key"], row["title"], row["link"], row["summary"], row["published"]),
        state=row["state"],
        attempts=int(row["attempts"]),
        post_started_at=row["post_started_at"],
        post_marker=row["post_marker"],
        message_id=row["message_id"],
        outcome=row["outcome"],
        claim_until=row["claim_until"],
        claimed_by=row["claimed_by"],
    )


@dataclass(frozen=True, slots=True)
class NewFeed:
    guild_id: int
    channel_id: int
    url: str
    page_url: str | None
    title: str
    added_by: int
    etag: str | None
    last_modified: str | None
    next_check_at: float
    body_hash: str | None = None


@dataclass(frozen=True, slots=True)
class Added:
    feed: Feed


@dataclass(frozen=True, slots=True)
class AlreadyFollowed:
    feed: Feed  # the channel's feed of that address


@dataclass(frozen=True, slots=True)
class ServerFull:
    count: int


@dataclass(frozen=True, slots=True)
class Recorded:
    feed: Feed  # as stored after the check
    new_items: int


def _in(values: Sequence[Any]) -> str:
    return "(" + ", ".join("?" * len(values)) + ")"


def _chunks(values: Sequence[Any], size: int = CHUNK) -> Iterable[Sequence[Any]]:
    for start in range(0, len(values), size):
        yield values[start:start + size]


def _shard_filter(shards: tuple[int, tuple[int, ...]] | None, column: str = "guild_id") -> tuple[str, tuple[int, ...]]:
    """SQL keeping to the servers of this process's shards, as JobRepository.claim_due does."""
    if shards is None:
        return "", ()
    count, ids = shards
    if not ids:
        return " AND 1 = 0", ()
    return f" AND ({column} >> 22) % ? IN {_in(ids)}", (count, *ids)


def _listing(items: Sequence[FeedItem]) -> list[tuple[str, FeedItem]]:
    """(stored key, item) for each item once, newest first as the feed lists them."""
    seen: set[str] = set()
    out: list[tuple[str, FeedItem]] = []
    for item in items:
        key = stored_key(item)
        if key not in seen:
            seen.add(key)
            out.append((key, item))
    return out


class FeedRepository:
    def __init__(self, db: Database) -> None:
        self.db = db
        self._skip_locked = SKIP_LOCKED[db.dialect]
        self._like = LIKE[db.dialect]
        self._greatest = _GREATEST[db.dialect]

    # ------------------------------------------------------------ reading feeds

    async def get(self, feed_id: int) -> Feed | None:
        row = await self.db.fetchone(f"SELECT {FEED_COLUMNS} FROM feeds WHERE id = ?", (feed_id,))
        return feed_from_row(row) if row else None

    async def get_many(self, feed_ids: Iterable[int]) -> dict[int, Feed]:
        ids = sorted(set(feed_ids))
        found: dict[int, Feed] = {}
        for chunk in _chunks(ids):
            rows = await self.db.fetchall(f"SELECT {FEED_COLUMNS} FROM feeds WHERE id IN {_in(chunk)}", chunk)
            found.update((int(r["id"]), feed_from_row(r)) for r in rows)
        return found

    async def by_number(self, guild_id: int, number: int) -> Feed | None:
        row = await self.db.fetchone(
            f"SELECT {FEED_COLUMNS} FROM feeds WHERE guild_id = ? AND number = ?", (guild_id, number)
        )
        return feed_from_row(row) if row else None

    async def by_url(self, guild_id: int, url: str) -> list[Feed]:
        """The server's feeds of that address, or added by that page; by number."""
        rows = await self.db.fetchall(
            f"SELECT {FEED_COLUMNS} FROM feeds WHERE guild_id = ? AND (url = ? OR page_url = ?) ORDER BY number",
            (guild_id, url, url),
        )
        return [feed_from_row(r) for r in rows]

    async def in_channel(self, channel_id: int, urls: Iterable[str]) -> Feed | None:
        """The channel's feed whose address (or the page it was added by) is one of `urls`."""
        wanted = sorted(set(urls))
        row = await self.db.fetchone(
            f"SELECT {FEED_COLUMNS} FROM feeds WHERE channel_id = ? AND (url IN {_in(wanted)}"
            f" OR page_url IN {_in(wanted)}) ORDER BY number LIMIT 1",
            (channel_id, *wanted, *wanted),
        )
        return feed_from_row(row) if row else None

    async def count(self, guild_id: int) -> int:
        return int(await self.db.fetchval("SELECT count(*) FROM feeds WHERE guild_id = ?", (guild_id,)))

    async def list(self, guild_id: int) -> list[Feed]:
        rows = await self.db.fetchall(
            f"SELECT {FEED_COLUMNS} FROM feeds WHERE guild_id = ? ORDER BY number", (guild_id,)
        )
        return [feed_from_row(r) for r in rows]

    async def search(self, guild_id: int, text: str, limit: int) -> list[Feed]:
        """For autocomplete: feeds whose number starts with the digits typed, or whose title or
        address contains the text (wildcards taken literally); by number."""
        pattern, bare = search_terms(text)
        number = bare + "%" if bare.isascii() and bare.isdigit() else ""
        rows = await self.db.fetchall(
            f"SELECT {FEED_COLUMNS} FROM feeds WHERE guild_id = ? AND (CAST(number AS TEXT) LIKE ?"
            f" OR title {self._like} ? ESCAPE '\\' OR url {self._like} ? ESCAPE '\\') ORDER BY number LIMIT ?",
            (guild_id, number, pattern, pattern, limit),
        )
        return [feed_from_row(r) for r in rows]

    # ------------------------------------------------------------ adding, changing, removing

    async def create(
        self, new: NewFeed, items: Sequence[FeedItem], *, now: float, max_feeds: int
    ) -> Added | AlreadyFollowed | ServerFull:
        """Store a feed with the server's next number and every item it lists now as 'seen'
        (never posted), in one transaction; or say why not."""
        listing = _listing(items)

        def insert(conn: WriteConnection) -> Added | AlreadyFollowed | ServerFull:
            # Numbers and the cap count per server: two processes adding there take turns.
            conn.lock(new.guild_id)
            existing = conn.execute(
                f"SELECT {FEED_COLUMNS} FROM feeds WHERE channel_id = ? AND (url = ? OR page_url = ?)"
                " ORDER BY number LIMIT 1",
                (new.channel_id, new.url, new.url),
            ).fetchone()
            if existing is not None:
                return AlreadyFollowed(feed_from_row(existing))
            count = int(conn.execute("SELECT count(*) FROM feeds WHERE guild_id = ?", (new.guild_id,)).fetchone()[0])
            if count >= max_feeds:
                return ServerFull(count)
            row = conn.execute(
                "INSERT INTO feeds (guild_id, number, channel_id, url, page_url, title, added_by, added_at,"
                " etag, last_modified, next_check_at, last_check_at, body_hash)"
                " VALUES (?, (SELECT coalesce(max(number), 0) + 1 FROM feeds WHERE guild_id = ?),"
                " ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)"
                f" RETURNING {FEED_COLUMNS}",
                (
                    new.guild_id, new.guild_id, new.channel_id, new.url, new.page_url, new.title, new.added_by,
                    now, new.etag, new.last_modified, new.next_check_at, now, new.body_hash,
                ),
            ).fetchone()
            feed = feed_from_row(row)
            # Seen items keep only their identity: they are never posted.
            total = len(listing)
            _insert_items(conn, "(feed_id, item_key, seq, found_at, state)",
                          [(feed.id, key, total - i, now, "seen") for i, (key, _) in enumerate(listing)])
            return Added(feed)

        try:
            return await self.db.write(insert)
        except ConstraintViolation:
            # UNIQUE (channel_id, url) against an add the lock did not cover: report it as such.
            found = await self.in_channel(new.channel_id, [new.url])
            if found is None:
                raise
            return AlreadyFollowed(found)

    async def delete(self, feed_id: int) -> bool:
        """Remove a feed and (ON DELETE CASCADE) its items."""

        def delete(conn: WriteConnection) -> bool:
            return conn.execute("DELETE FROM feeds WHERE id = ?", (feed_id,)).rowcount == 1

        return await self.db.write(delete)

    async def pause(
        self, feed_id: int, *, now: float, by: int | None, reason: str | None, notice_done: bool
    ) -> tuple[Feed, bool] | None:
        """Pause an unpaused feed: the feed as stored and whether this call paused it (False: it
        was paused already, and is unchanged); None if it is gone. `notice_done`: no notice is
        to be sent for this pause."""

        def update(conn: WriteConnection) -> tuple[Feed, bool] | None:
            changed = conn.execute(
                "UPDATE feeds SET paused_at = ?, paused_by = ?, paused_reason = ?,"
                " notice_sent_at = CASE WHEN ? = 1 THEN ? ELSE NULL END"
                " WHERE id = ? AND paused_at IS NULL",
                (now, by, clean_text(reason, MAX_ERROR), int(notice_done), now, feed_id),
            ).rowcount == 1
            row = conn.execute(f"SELECT {FEED_COLUMNS} FROM feeds WHERE id = ?", (feed_id,)).fetchone()
            return (feed_from_row(row), changed) if row else None

        return await self.db.write(update)

    async def resume(self, feed_id: int, *, now: float) -> Feed | None:
        """Unpause, clear the failures, check now. A check in flight is dropped (its claim is
        cleared, so its result is not recorded): what it would say is asked again now."""

        def update(conn: WriteConnection) -> Feed | None:
            row = conn.execute(
                "UPDATE feeds SET paused_at = NULL, paused_by = NULL, paused_reason = NULL, failures = 0,"
                " failing_since = NULL, last_error = NULL, notice_sent_at = NULL, next_check_at = ?,"
                f" claim_until = NULL, claimed_by = NULL WHERE id = ? RETURNING {FEED_COLUMNS}",
                (now, feed_id),
            ).fetchone()
            return feed_from_row(row) if row else None

        return await self.db.write(update)

    async def claim_notice(self, feed_id: int, *, now: float) -> bool:
        """True once per pause by Quorum that still wants its notice."""

        def update(conn: WriteConnection) -> bool:
            return conn.execute(
                "UPDATE feeds SET notice_sent_at = ? WHERE id = ? AND paused_at IS NOT NULL"
                " AND paused_by IS NULL AND notice_sent_at IS NULL",
                (now, feed_id),
            ).rowcount == 1

        return await self.db.write(update, background=True)

    async def unnoticed(self, shards: tuple[int, tuple[int, ...]] | None = None) -> list[Feed]:
        """Feeds paused by Quorum whose notice nobody has claimed (e.g. the process stopped
        between pausing one and telling its channel)."""
        mine, params = _shard_filter(shards)
        rows = await self.db.fetchall(
            f"SELECT {FEED_COLUMNS} FROM feeds WHERE paused_at IS NOT NULL AND paused_by IS NULL"
            f" AND notice_sent_at IS NULL{mine} ORDER BY id",
            params,
        )
        return [feed_from_row(r) for r in rows]

    # ------------------------------------------------------------ checks

    async def next_deadline(self, shards: tuple[int, tuple[int, ...]] | None = None) -> float | None:
        """The earliest time a feed may be claimed for a check or an item for posting."""
        mine, params = _shard_filter(shards)
        return await self.db.fetchval(
            "SELECT min(t) FROM ("
            f" SELECT min({self._greatest}(next_check_at, coalesce(claim_until, next_check_at))) AS t FROM feeds"
            f"  WHERE paused_at IS NULL{mine}"
            " UNION ALL"
            " SELECT min(claim_until) FROM feed_items WHERE state = 'pending' AND claim_until IS NOT NULL"
            f"  AND feed_id IN (SELECT id FROM feeds WHERE paused_at IS NULL{mine})"
            ") AS deadlines",
            (*params, *params),
        )

    async def claim_checks(
        self, *, owner: str, now: float, lease: float, limit: int, shards: tuple[int, tuple[int, ...]] | None = None
    ) -> list[Feed]:
        """Claim up to `limit` due, unpaused feeds nobody holds, most overdue first."""
        mine, params = _shard_filter(shards)

        def update(conn: WriteConnection) -> list[Feed]:
            # The picked rows are a CTE of their own: as an IN subquery, PostgreSQL may run the
            # locking LIMIT again for each row updated, and claim more than `limit`.
            rows = conn.execute(
                "WITH picked AS MATERIALIZED ("
                "  SELECT id FROM feeds WHERE paused_at IS NULL AND next_check_at <= ?"
                f"  AND (claim_until IS NULL OR claim_until <= ?){mine}"
                f"  ORDER BY next_check_at, id LIMIT ?{self._skip_locked}"
                ") UPDATE feeds SET claim_until = ?, claimed_by = ?"
                " WHERE paused_at IS NULL AND next_check_at <= ? AND (claim_until IS NULL OR claim_until <= ?)"
                f" AND id IN (SELECT id FROM picked) RETURNING {FEED_COLUMNS}",
                (now, now, *params, limit, now + lease, owner, now, now),
            ).fetchall()
            return sorted((feed_from_row(r) for r in rows), key=lambda f: (f.next_check_at, f.id))

        return await self.db.write(update, background=True)

    async def release_check(self, feed_id: int, *, owner: str) -> None:
        """Hand a claimed check back unrecorded (it waited too long for its host's turn): due
        as it was, for the next pass."""
        await self.db.write_statement(
            "UPDATE feeds SET claim_until = NULL WHERE id = ? AND claimed_by = ? AND claim_until IS NOT NULL",
            (feed_id, owner),
            background=True,
        )

    async def postpone_check(self, feed_id: int, *, owner: str, until: float) -> None:
        """Hand a claimed check back unrecorded, due at `until` (its host asked for a pause):
        neither a failure nor a check."""
        await self.db.write_statement(
            "UPDATE feeds SET claim_until = NULL, next_check_at = ?"
            " WHERE id = ? AND claimed_by = ? AND claim_until IS NOT NULL",
            (until, feed_id, owner),
            background=True,
        )

    def _finish_check(self, conn: WriteConnection, feed_id: int, owner: str, sets: str, params: Sequence[Any]) -> Any:
        """Record a check claimed by `owner` (and not since resumed, removed or taken over):
        the feed row as stored, or None. Locks the feed's row until COMMIT (PostgreSQL), so two
        recordings of one feed never interleave."""
        return conn.execute(
            f"UPDATE feeds SET claim_until = NULL, {sets} WHERE id = ? AND claimed_by = ? AND claim_until IS NOT NULL"
            f" RETURNING {FEED_COLUMNS}",
            (*params, feed_id, owner),
        ).fetchone()

    @staticmethod
    def _release_next(conn: WriteConnection, feed_id: int, *, now: float, max_posts: int) -> None:
        """The check's share of posts: the feed's oldest `max_posts` new items never claimed
        may be claimed from now on (those released by an earlier check and not yet claimed
        count toward it); the rest wait for later checks."""
        conn.execute(
            "UPDATE feed_items SET claim_until = ? WHERE claim_until IS NULL AND state = 'pending' AND id IN ("
            " SELECT id FROM feed_items WHERE feed_id = ? AND state = 'pending' AND claimed_by IS NULL"
            " ORDER BY seq LIMIT ?)",
            (now, feed_id, max_posts),
        )

    async def record_loaded(
        self,
        feed_id: int,
        *,
        owner: str,
        now: float,
        next_check_at: float,
        etag: str | None,
        last_modified: str | None,
        title: str,
        items: Sequence[FeedItem],
        max_posts: int,
        body_hash: str | None = None,
    ) -> Recorded | None:
        """A check that got the feed: items never seen in this feed become 'pending', the oldest
        with the lowest seq; the failures end. None if the claim was lost (nothing recorded)."""
        listing = _listing(items)

        def record(conn: WriteConnection) -> Recorded | None:
            row = self._finish_check(
                conn, feed_id, owner,
                "last_check_at = ?, next_check_at = ?, etag = ?, last_modified = ?, failures = 0,"
                " failing_since = NULL, last_error = NULL, title = CASE WHEN ? = '' THEN title ELSE ? END,"
                " body_hash = ?",
                (now, next_check_at, etag, last_modified, title, title, body_hash),
            )
            if row is None:
                return None
            keys = [key for key, _ in listing]
            known: set[str] = set()
            for chunk in _chunks(keys):
                known.update(r[0] for r in conn.execute(
                    f"SELECT item_key FROM feed_items WHERE feed_id = ? AND item_key IN {_in(chunk)}",
                    (feed_id, *chunk),
                ).fetchall())
            new = [(key, item) for key, item in listing if key not in known]
            if new:
                top = int(conn.execute(
                    "SELECT coalesce(max(seq), 0) FROM feed_items WHERE feed_id = ?", (feed_id,)
                ).fetchone()[0])
                count = len(new)
                _insert_items(conn, "(feed_id, item_key, seq, title, link, summary, published, found_at, state)", [
                    (
                        feed_id, key, top + count - i, clean_text(item.title, MAX_TITLE), _link(item.link),
                        clean_text(item.summary, MAX_SUMMARY), clean_text(item.published, MAX_PUBLISHED), now,
                        "pending",
                    )
                    for i, (key, item) in enumerate(new)
                ])
                row = conn.execute(
                    f"UPDATE feeds SET last_new_at = ? WHERE id = ? RETURNING {FEED_COLUMNS}", (now, feed_id)
                ).fetchone()
                self._forget_oldest(conn, feed_id, top + count, keys)
            self._release_next(conn, feed_id, now=now, max_posts=max_posts)
            return Recorded(feed_from_row(row), len(new))

        return await self.db.write(record, background=True)

    @staticmethod
    def _forget_oldest(conn: WriteConnection, feed_id: int, top: int, listed: Sequence[str]) -> None:
        """Keep feed_items bounded: forget done items more than KEEP_ITEMS behind the newest,
        except those the feed still lists (a key forgotten while listed would be posted again)."""
        lowest = conn.execute("SELECT min(seq) FROM feed_items WHERE feed_id = ?", (feed_id,)).fetchone()[0]
        if lowest is None or int(lowest) > top - KEEP_ITEMS - PRUNE_SLACK:
            return
        clauses = "".join(f" AND item_key NOT IN {_in(chunk)}" for chunk in _chunks(listed))
        conn.execute(
            f"DELETE FROM feed_items WHERE feed_id = ? AND seq <= ? AND state <> 'pending'{clauses}",
            (feed_id, top - KEEP_ITEMS, *listed),
        )

    async def record_not_modified(
        self,
        feed_id: int,
        *,
        owner: str,
        now: float,
        next_check_at: float,
        etag: str | None,
        last_modified: str | None,
        max_posts: int,
    ) -> Feed | None:
        """A 304, or the body parsed last time again: nothing new; validators kept unless the
        server sent new ones."""

        def record(conn: WriteConnection) -> Feed | None:
            row = self._finish_check(
                conn, feed_id, owner,
                "last_check_at = ?, next_check_at = ?, etag = coalesce(?, etag),"
                " last_modified = coalesce(?, last_modified), failures = 0, failing_since = NULL, last_error = NULL",
                (now, next_check_at, etag, last_modified),
            )
            if row is None:
                return None
            self._release_next(conn, feed_id, now=now, max_posts=max_posts)
            return feed_from_row(row)

        return await self.db.write(record, background=True)

    async def record_failure(
        self,
        feed_id: int,
        *,
        owner: str,
        now: float,
        next_check_at: float,
        failures: int,
        failing_since: float,
        error: str,
        pause_reason: str | None,
        max_posts: int,
    ) -> Feed | None:
        """A failed check; with `pause_reason`, Quorum pauses the feed (its notice to claim)."""
        paused = pause_reason is not None

        def record(conn: WriteConnection) -> Feed | None:
            row = self._finish_check(
                conn, feed_id, owner,
                "last_check_at = ?, next_check_at = ?, failures = ?, failing_since = ?, last_error = ?,"
                " paused_at = CASE WHEN ? = 1 AND paused_at IS NULL THEN ? ELSE paused_at END,"
                " paused_by = CASE WHEN ? = 1 AND paused_at IS NULL THEN NULL ELSE paused_by END,"
                " paused_reason = CASE WHEN ? = 1 AND paused_at IS NULL THEN ? ELSE paused_reason END,"
                " notice_sent_at = CASE WHEN ? = 1 AND paused_at IS NULL THEN NULL ELSE notice_sent_at END",
                (
                    now, next_check_at, failures, failing_since, clean_text(error, MAX_ERROR),
                    int(paused), now, int(paused), int(paused), clean_text(pause_reason, MAX_ERROR), int(paused),
                ),
            )
            if row is None:
                return None
            # Items found earlier are still posted while the feed fails (until it is paused).
            self._release_next(conn, feed_id, now=now, max_posts=max_posts)
            return feed_from_row(row)

        return await self.db.write(record, background=True)

    # ------------------------------------------------------------ posts

    async def claim_items(
        self,
        *,
        owner: str,
        now: float,
        lease: float,
        per_feed: int,
        limit: int,
        feed_ids: Sequence[int] | None = None,
        shards: tuple[int, tuple[int, ...]] | None = None,
    ) -> list[StoredItem]:
        """Claim up to `limit` claimable items of unpaused feeds, at most `per_feed` of each
        feed, oldest first; each claim counts as an attempt (and fences out earlier claims)."""
        mine, params = _shard_filter(shards)
        only, only_params = ("", ()) if feed_ids is None else (f" AND feed_id IN {_in(feed_ids)}", tuple(feed_ids))
        due = "state = 'pending' AND claim_until IS NOT NULL AND claim_until <= ?"

        def update(conn: WriteConnection) -> list[StoredItem]:
            # Rows are locked (SKIP LOCKED) in a CTE of their own: PostgreSQL allows no window
            # function beside FOR UPDATE, and may run an IN subquery again per row updated.
            rows = conn.execute(
                "WITH due AS MATERIALIZED ("
                f"  SELECT id, feed_id, seq, claim_until FROM feed_items WHERE {due}{only}"
                f"  AND feed_id IN (SELECT id FROM feeds WHERE paused_at IS NULL{mine}){self._skip_locked}"
                "), picked AS MATERIALIZED ("
                "  SELECT id FROM ("
                "   SELECT id, claim_until, seq, row_number() OVER (PARTITION BY feed_id ORDER BY seq) AS place"
                "   FROM due) AS ranked"
                "  WHERE place <= ? ORDER BY claim_until, seq LIMIT ?"
                ") UPDATE feed_items SET claim_until = ?, claimed_by = ?, attempts = attempts + 1"
                f" WHERE {due} AND id IN (SELECT id FROM picked) RETURNING {_ITEM_COLUMNS}",
                (now, *only_params, *params, per_feed, limit, now + lease, owner, now),
            ).fetchall()
            return sorted((_item(r) for r in rows), key=lambda i: (i.feed_id, i.seq))

        return await self.db.write(update, background=True)

    async def start_item(
        self, item_id: int, *, owner: str, attempts: int, marker: str, now: float, lease: float
    ) -> bool:
        """Before sending: renew the claim, record that sending began (the first time kept) and
        what the message carries. False if the claim is no longer this one (re-claimed since,
        done, its feed paused or removed): do not send."""

        def update(conn: WriteConnection) -> bool:
            return conn.execute(
                "UPDATE feed_items SET post_started_at = coalesce(post_started_at, ?), post_marker = ?,"
                " claim_until = ? WHERE id = ? AND state = 'pending' AND claimed_by = ? AND attempts = ?"
                " AND feed_id IN (SELECT id FROM feeds WHERE paused_at IS NULL)",
                (now, clean_text(marker, MAX_MARKER), now + lease, item_id, owner, attempts),
            ).rowcount == 1

        return await self.db.write(update, background=True)

    async def finish_item(
        self, item_id: int, *, state: str, outcome: str, message_id: int | None, now: float
    ) -> bool:
        """Done for good ('posted' or 'skipped'), once. The summary and marker are dropped: they
        are never used again, and done items are most of the table."""

        def update(conn: WriteConnection) -> bool:
            return conn.execute(
                "UPDATE feed_items SET state = ?, outcome = ?, message_id = ?, done_at = ?, claim_until = NULL,"
                " summary = NULL, post_marker = NULL WHERE id = ? AND state = 'pending'",
                (state, clean_text(outcome, MAX_OUTCOME), message_id, now, item_id),
            ).rowcount == 1

        return await self.db.write(update, background=True)

    async def retry_item(self, item_id: int, *, attempts: int, retry_at: float, count_attempt: bool = True) -> bool:
        """Give a claim back: any process may claim the item at `retry_at`. Only the latest
        claim (`attempts`) may; `count_attempt=False` takes the attempt back."""

        def update(conn: WriteConnection) -> bool:
            return conn.execute(
                "UPDATE feed_items SET claim_until = ?, attempts = attempts - ?"
                " WHERE id = ? AND state = 'pending' AND attempts = ?",
                (retry_at, 0 if count_attempt else 1, item_id, attempts),
            ).rowcount == 1

        return await self.db.write(update, background=True)

    async def items(self, feed_id: int, *, states: Iterable[str] | None = None) -> list[StoredItem]:
        """A feed's items in posting order (oldest first)."""
        wanted = sorted(set(states)) if states is not None else None
        where = "" if wanted is None else f" AND state IN {_in(wanted)}"
        rows = await self.db.fetchall(
            f"SELECT {_ITEM_COLUMNS} FROM feed_items WHERE feed_id = ?{where} ORDER BY seq",
            (feed_id, *(wanted or ())),
        )
        return [_item(r) for r in rows]

    # ------------------------------------------------------------ restarts

    async def reclaim_own(self, *, instance: str, owner: str, now: float) -> int:
        """At start: checks and posts that earlier copies of this instance held may be taken
        again at once (the caller holds the instance lock, as for announcements)."""
        prefix = instance + "/"

        def update(conn: WriteConnection) -> int:
            feeds = conn.execute(
                "UPDATE feeds SET claim_until = NULL WHERE claim_until IS NOT NULL"
                " AND substr(claimed_by, 1, ?) = ? AND claimed_by <> ?",
                (len(prefix), prefix, owner),
            ).rowcount
            items = conn.execute(
                "UPDATE feed_items SET claim_until = ? WHERE state = 'pending' AND claim_until > ?"
                " AND substr(claimed_by, 1, ?) = ? AND claimed_by <> ?",
                (now, now, len(prefix), prefix, owner),
            ).rowcount
            return feeds + items

        return await self.db.write(update, background=True)


def _insert_items(conn: WriteConnection, columns: str, rows: Sequence[tuple[Any, ...]]) -> None:
    """Many items in few statements (each up to INSERT_ROWS rows): one round trip each on
    PostgreSQL, where one statement per item made 500 new items cost about 100 ms of the writer."""
    for start in range(0, len(rows), INSERT_ROWS):
        chunk = rows[start:start + INSERT_ROWS]
        one = "(" + ", ".join("?" * len(chunk[0])) + ")"
        conn.execute(
            f"INSERT INTO feed_items {columns} VALUES {', '.join([one] * len(chunk))}"
            " ON CONFLICT (feed_id, item_key) DO NOTHING",
            [value for row in chunk for value in row],
        )


def _link(link: str | None) -> str | None:
    """A link too long to be one is no link (cut short, it would lead elsewhere)."""
    link = clean_text(link, MAX_LINK + 1)
    return link if link is not None and len(link) <= MAX_LINK else None
