"""SQLite, the embedded default: one file, an aiosqlite read connection, a writer thread.

Two connections instead of one: reads go to their own connection, so they never see another
coroutine's uncommitted writes and never queue behind a commit's fsync.
"""

from __future__ import annotations

import asyncio
import logging
import sqlite3
from collections.abc import Iterable, Sequence
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import aiosqlite

from .db import (
    ConstraintViolation,
    Database,
    Outcome,
    Statement,
    WriteFn,
    load_migrations,
    newer_schema_error,
    run_savepointed,
    statement_fn,
)

log = logging.getLogger(__name__)

# SQLite's primary result codes that mean "the storage can't take writes now" (a full disk, an
# I/O error, a read-only or vanished file, a lock held past busy_timeout, corruption), as
# opposed to a write that is wrong in itself (a constraint, a bug).
_STORAGE_CODES = frozenset({5, 6, 8, 10, 11, 13, 14, 26})  # BUSY LOCKED READONLY IOERR CORRUPT FULL CANTOPEN NOTADB


def is_sqlite_storage_failure(error: BaseException) -> bool:
    code = getattr(error, "sqlite_errorcode", None)
    return isinstance(error, sqlite3.Error) and code is not None and code & 0xFF in _STORAGE_CODES


def rule_name(message: str) -> str:
    """The schema rule an IntegrityError names, spelled as on PostgreSQL."""
    if "FOREIGN KEY" in message:
        return "foreign_key"
    return message


class SqliteWriteConnection:
    """The writer thread's sqlite3 connection as a `WriteConnection`."""

    dialect = "sqlite"
    __slots__ = ("raw",)

    def __init__(self, raw: sqlite3.Connection) -> None:
        self.raw = raw

    def execute(self, sql: str, params: Sequence[Any] = ()) -> sqlite3.Cursor:
        try:
            return self.raw.execute(sql, params)
        except sqlite3.IntegrityError as error:
            raise ConstraintViolation(rule_name(str(error))) from error

    def executemany(self, sql: str, rows: Iterable[Sequence[Any]]) -> None:
        try:
            self.raw.executemany(sql, rows)
        except sqlite3.IntegrityError as error:
            raise ConstraintViolation(rule_name(str(error))) from error

    def lock(self, key: int) -> None:
        pass  # BEGIN IMMEDIATE already holds the file's only write lock for the transaction


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


class SqliteDatabase(Database):
    """The process's SQLite database. Create with `await SqliteDatabase.open(path)`."""

    dialect = "sqlite"

    def __init__(
        self, path: Path, writer: sqlite3.Connection, executor: ThreadPoolExecutor, reader: aiosqlite.Connection
    ) -> None:
        super().__init__(executor)
        self.path = path
        self._writer = writer
        self._conn = SqliteWriteConnection(writer)
        self._reader = reader

    @classmethod
    async def open(cls, path: str | Path) -> SqliteDatabase:
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

    @property
    def target(self) -> str:
        return str(self.path)

    async def _close_connections(self) -> None:
        await self._reader.close()
        await asyncio.get_running_loop().run_in_executor(self._executor, self._writer.close)

    # Each read runs to completion in one call on the reader's thread. A statement left open
    # between awaits would hold SQLite's read transaction, and the next read on this connection
    # would see the snapshot from before writes that have already committed.

    async def fetchall(self, sql: str, params: Iterable[Any] = ()) -> list[sqlite3.Row]:
        return list(await self._reader.execute_fetchall(sql, tuple(params)))

    def is_storage_failure(self, error: BaseException) -> bool:
        return is_sqlite_storage_failure(error)

    def _error_name(self, error: BaseException) -> str:
        return getattr(error, "sqlite_errorname", type(error).__name__)

    def _run_batch(self, work: list[WriteFn[Any] | Statement]) -> list[Outcome]:
        """In the writer thread: one transaction, one savepoint per write, then COMMIT."""
        raw, conn = self._writer, self._conn
        try:
            raw.execute("BEGIN IMMEDIATE")
            outcomes = [
                run_savepointed(
                    conn,
                    statement_fn(item) if isinstance(item, Statement) else item,
                    storage_failure=is_sqlite_storage_failure,
                )
                for item in work
            ]
            raw.execute("COMMIT")
        except BaseException:
            if raw.in_transaction:
                try:
                    raw.execute("ROLLBACK")
                except sqlite3.Error:
                    log.exception("rollback after a failed batch failed")
            raise
        return outcomes

    async def schema_version(self) -> int:
        return int(await self.fetchval("PRAGMA user_version"))

    async def integrity_check(self) -> list[str]:
        rows = await self.fetchall("PRAGMA integrity_check")
        return [str(r[0]) for r in rows]


def migrate_sync(conn: sqlite3.Connection) -> int:
    """Apply every pending migration in one transaction; return the resulting version."""
    current = int(conn.execute("PRAGMA user_version").fetchone()[0])
    migrations = load_migrations("sqlite")
    if current > len(migrations):
        raise newer_schema_error(current, len(migrations))
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
