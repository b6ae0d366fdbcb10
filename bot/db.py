"""SQLite access: migrations, an aiosqlite read connection, and a group-committing writer.

Two connections instead of one: reads go to their own connection, so they never see another
coroutine's uncommitted writes and never queue behind a commit's fsync.

All writes go through one task that hands every queued write to a dedicated writer thread as
one batch: one transaction, each write in its own savepoint, callers resolved only after
COMMIT returns. A caller told "done" has a durable write, fifty concurrent votes cost one
fsync instead of fifty, and a batch costs one hop between the event loop and the thread
instead of one per statement (profiling showed per-statement hops, not SQLite, limiting vote
throughput: docs/performance.md). Write functions are therefore plain synchronous functions of
a `sqlite3.Connection`. The task exists only while work is queued, so an idle bot has no task
waiting on the database.
"""

from __future__ import annotations

import asyncio
import logging
import re
import sqlite3
from collections.abc import Callable, Iterable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from importlib import resources
from pathlib import Path
from typing import Any, TypeVar

import aiosqlite

log = logging.getLogger(__name__)

T = TypeVar("T")
WriteFn = Callable[[sqlite3.Connection], T]

_MIGRATION_NAME = re.compile(r"^(\d{4})_[a-z0-9_]+\.sql$")
# SQLite's primary result codes that mean "the storage can't take writes now" (a full disk, an
# I/O error, a read-only or vanished file, a lock held past busy_timeout, corruption), as
# opposed to a write that is wrong in itself (a constraint, a bug).
_STORAGE_CODES = frozenset({5, 6, 8, 10, 11, 13, 14, 26})  # BUSY LOCKED READONLY IOERR CORRUPT FULL CANTOPEN NOTADB
# Most writes a single transaction takes: bounds latency of the last one in the batch.
MAX_BATCH = 256


class StorageUnavailable(Exception):
    """The database can't store writes right now (disk full, I/O error…): nothing was written.

    Raised to every writer of a failed batch instead of the raw sqlite3 error, so callers can
    tell the member what happened; the incident is logged once, not once per write.
    """


def is_storage_failure(error: BaseException) -> bool:
    code = getattr(error, "sqlite_errorcode", None)
    return isinstance(error, sqlite3.Error) and code is not None and code & 0xFF in _STORAGE_CODES


@dataclass(frozen=True, slots=True)
class Migration:
    version: int
    name: str
    sql: str


def load_migrations() -> list[Migration]:
    """The numbered SQL files shipped in `bot/migrations`, in order, with no gaps."""
    found: list[Migration] = []
    for entry in resources.files("bot.migrations").iterdir():
        match = _MIGRATION_NAME.match(entry.name)
        if match:
            found.append(Migration(int(match.group(1)), entry.name, entry.read_text("utf-8")))
    found.sort(key=lambda m: m.version)
    for expected, migration in enumerate(found, start=1):
        if migration.version != expected:
            raise RuntimeError(f"migration {migration.name} breaks the numbering (expected {expected:04d})")
    return found


@dataclass(slots=True)
class _Job:
    fn: WriteFn[Any]
    future: asyncio.Future[Any]


@dataclass(slots=True)
class WriteStats:
    transactions: int = 0
    writes: int = 0
    largest_batch: int = 0
    failed_writes: int = 0  # refused because the storage failed, since the last good commit


async def _pragma(conn: aiosqlite.Connection, sql: str) -> None:
    # Read the PRAGMA's answer to the end: an unfinished statement would block COMMIT later.
    async with conn.execute(sql) as cursor:
        await cursor.fetchall()


def _uri(path: Path) -> str:
    """`path` as an SQLite URI: SQLite built with URI support reads a plain name that starts
    with "file:" as a URI, and `#`, `?` or `%` in a name would then open another file."""
    return path.resolve().as_uri()


async def _connect(path: Path) -> aiosqlite.Connection:
    conn = await aiosqlite.connect(_uri(path), isolation_level=None, uri=True)
    conn.row_factory = sqlite3.Row
    await _pragma(conn, "PRAGMA busy_timeout = 5000")
    await _pragma(conn, "PRAGMA foreign_keys = ON")
    return conn


def _open_writer(path: Path) -> sqlite3.Connection:
    """Runs in the writer thread, which owns this connection for its whole life."""
    conn = sqlite3.connect(_uri(path), isolation_level=None, uri=True)
    conn.row_factory = sqlite3.Row
    try:
        conn.execute("PRAGMA busy_timeout = 5000")
        conn.execute("PRAGMA foreign_keys = ON")
        conn.execute("PRAGMA journal_mode = WAL").fetchall()
        # FULL: a committed vote survives power loss too, not only a killed process.
        # Group commit keeps the cost of that fsync shared between concurrent writes.
        conn.execute("PRAGMA synchronous = FULL")
        migrate_sync(conn)
    except BaseException:
        conn.close()
        raise
    return conn


class Database:
    """The process's SQLite database. Create with `await Database.open(path)`."""

    def __init__(
        self, path: Path, writer: sqlite3.Connection, executor: ThreadPoolExecutor, reader: aiosqlite.Connection
    ) -> None:
        self.path = path
        self._writer = writer
        self._executor = executor
        self._reader = reader
        self._queue: list[_Job] = []
        self._task: asyncio.Task[None] | None = None
        self._closing = False
        self.stats = WriteStats()

    @classmethod
    async def open(cls, path: str | Path) -> Database:
        path = Path(path)
        path.parent.mkdir(parents=True, exist_ok=True)
        loop = asyncio.get_running_loop()
        executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="quorum-db-writer")
        try:
            writer = await loop.run_in_executor(executor, _open_writer, path)
        except BaseException:
            executor.shutdown(wait=False)
            raise
        try:
            reader = await _connect(path)
            await _pragma(reader, "PRAGMA query_only = ON")
        except BaseException:
            await loop.run_in_executor(executor, writer.close)
            executor.shutdown(wait=False)
            raise
        return cls(path, writer, executor, reader)

    async def close(self) -> None:
        """Finish every queued write, then close both connections. Safe to call twice."""
        if self._closing:
            return
        self._closing = True
        if self._task is not None:
            await self._task
        self._task = None
        await self._reader.close()
        await asyncio.get_running_loop().run_in_executor(self._executor, self._writer.close)
        self._executor.shutdown(wait=True)

    async def __aenter__(self) -> Database:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.close()

    # ---------------------------------------------------------------- reads

    # Each read runs to completion in one call on the reader's thread. A statement left open
    # between awaits would hold SQLite's read transaction, and the next read on this connection
    # would see the snapshot from before writes that have already committed.

    async def fetchall(self, sql: str, params: Iterable[Any] = ()) -> list[sqlite3.Row]:
        return list(await self._reader.execute_fetchall(sql, tuple(params)))

    async def fetchone(self, sql: str, params: Iterable[Any] = ()) -> sqlite3.Row | None:
        rows = await self.fetchall(sql, params)
        return rows[0] if rows else None

    async def fetchval(self, sql: str, params: Iterable[Any] = ()) -> Any:
        row = await self.fetchone(sql, params)
        return None if row is None else row[0]

    # ---------------------------------------------------------------- writes

    async def write(self, fn: WriteFn[T]) -> T:
        """Run `fn(conn)` in a transaction; return its result once the transaction has committed.

        `fn` must only use the connection it is given. If it raises, its own changes are
        rolled back (savepoint) and the exception is raised here; other writes in the same
        batch are unaffected.
        """
        if self._closing:
            raise RuntimeError("the database is closing")
        future: asyncio.Future[T] = asyncio.get_running_loop().create_future()
        self._queue.append(_Job(fn, future))
        if self._task is None or self._task.done():
            self._task = asyncio.get_running_loop().create_task(self._write_loop(), name="quorum-db-writer")
        # A cancelled caller cancels only this future: the batch skips resolving it, and the
        # write itself still commits with the others (so no shield, and one wake-up less).
        return await future

    async def _write_loop(self) -> None:
        # Writes queued while a batch commits form the next batch: that is the group commit.
        loop = asyncio.get_running_loop()
        while self._queue:
            batch, self._queue = self._queue[:MAX_BATCH], self._queue[MAX_BATCH:]
            try:
                outcomes = await loop.run_in_executor(self._executor, self._run_batch, [j.fn for j in batch])
            except Exception as error:  # the transaction failed: nobody's write is durable
                storage = self._batch_failed(error, len(batch))
                for job in batch:
                    if not job.future.done():
                        job.future.set_exception(StorageUnavailable(str(error)) if storage else error)
                continue
            if self.stats.failed_writes:
                log.warning("the database takes writes again, after %d refused", self.stats.failed_writes)
                self.stats.failed_writes = 0
            self.stats.transactions += 1
            self.stats.writes += len(batch)
            self.stats.largest_batch = max(self.stats.largest_batch, len(batch))
            for job, (ok, value) in zip(batch, outcomes, strict=True):
                if job.future.done():  # the caller was cancelled; the write still happened
                    continue
                if ok:
                    job.future.set_result(value)
                else:
                    job.future.set_exception(value)

    def _batch_failed(self, error: Exception, size: int) -> bool:
        """Log a failed batch: a storage incident once, until writes work again; other failures
        each time. True for a storage failure (its writers get StorageUnavailable)."""
        if not is_storage_failure(error):
            log.error("database write batch of %d failed", size, exc_info=error)
            return False
        if not self.stats.failed_writes:
            log.error(
                "the database can't store writes (%s); refusing writes until it can again",
                getattr(error, "sqlite_errorname", type(error).__name__),
                exc_info=error,
            )
        self.stats.failed_writes += size
        return True

    def _run_batch(self, fns: list[WriteFn[Any]]) -> list[tuple[bool, Any]]:
        """In the writer thread: one transaction, one savepoint per write, then COMMIT.

        A write that fails for the storage's sake (disk full…) fails the whole batch: SQLite
        may already have rolled the transaction back, taking the other writes with it.
        """
        conn = self._writer
        outcomes: list[tuple[bool, Any]] = []
        try:
            conn.execute("BEGIN IMMEDIATE")
            for fn in fns:
                conn.execute("SAVEPOINT job")
                try:
                    result = fn(conn)
                except Exception as error:
                    if is_storage_failure(error):
                        raise
                    conn.execute("ROLLBACK TO job")
                    conn.execute("RELEASE job")
                    outcomes.append((False, error))
                else:
                    conn.execute("RELEASE job")
                    outcomes.append((True, result))
            conn.execute("COMMIT")
        except BaseException:
            if conn.in_transaction:
                try:
                    conn.execute("ROLLBACK")
                except sqlite3.Error:
                    log.exception("rollback after a failed batch failed")
            raise
        return outcomes

    # ---------------------------------------------------------------- maintenance

    async def schema_version(self) -> int:
        return int(await self.fetchval("PRAGMA user_version"))

    async def integrity_check(self) -> list[str]:
        rows = await self.fetchall("PRAGMA integrity_check")
        return [str(r[0]) for r in rows]

    async def get_meta(self, key: str) -> str | None:
        return await self.fetchval("SELECT value FROM meta WHERE key = ?", (key,))

    async def set_meta(self, key: str, value: str) -> None:
        def put(conn: sqlite3.Connection) -> None:
            conn.execute(
                "INSERT INTO meta (key, value) VALUES (?, ?) "
                "ON CONFLICT (key) DO UPDATE SET value = excluded.value",
                (key, value),
            )

        await self.write(put)


def migrate_sync(conn: sqlite3.Connection) -> int:
    """Apply every pending migration in one transaction; return the resulting version."""
    current = int(conn.execute("PRAGMA user_version").fetchone()[0])
    migrations = load_migrations()
    if current > len(migrations):
        raise RuntimeError(
            f"the database is at schema version {current}, newer than this Quorum "
            f"({len(migrations)}): upgrade Quorum or restore a backup"
        )
    pending = [m for m in migrations if m.version > current]
    if not pending:
        return current
    target = pending[-1].version
    script = "\n".join(m.sql for m in pending)
    # executescript would COMMIT between statements of its own accord; wrapping the script in
    # BEGIN/COMMIT makes all pending migrations and the version bump one atomic step.
    try:
        conn.executescript(f"BEGIN IMMEDIATE;\n{script}\nPRAGMA user_version = {target};\nCOMMIT;")
    except BaseException:
        if conn.in_transaction:
            conn.execute("ROLLBACK")
        raise
    log.info("database migrated from schema version %d to %d", current, target)
    return target

