"""Storage shared by both backends: the group-committing writer, the read API, the errors.

Quorum stores everything through a `Database`: `SqliteDatabase` (the embedded default, one file)
or `PostgresDatabase` (many processes, many machines). Both have the same shape, which session 3
measured as the fastest for votes on both engines (docs/performance.md, "PostgreSQL write
paths"): reads on their own connection, and every write queued to one task that hands each
batch to a dedicated writer thread: one transaction, each write in its own savepoint, callers
resolved only after COMMIT returns. A caller told "done" has a durable write, fifty concurrent
votes cost one commit instead of fifty, and a batch costs one hop between the event loop and the
thread. Write functions are plain synchronous functions of a `WriteConnection`, with `?`
placeholders on both backends; the repositories keep the few statements whose SQL differs.

A write may also be one statement (`write_statement`) that reports refusals as values instead of
raising. PostgreSQL sends every such statement of a batch in one pipeline, one round trip for
the batch instead of three per write: that is how the vote keeps up with SQLite there.
"""

from __future__ import annotations

import asyncio
import logging
import re
from collections.abc import Callable, Iterable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from importlib import resources
from typing import Any, Protocol, TypeVar

log = logging.getLogger(__name__)

T = TypeVar("T")

_MIGRATION_NAME = re.compile(r"^(\d{4})_[a-z0-9_]+\.sql$")
# Most writes a single transaction takes: bounds latency of the last one in the batch.
MAX_BATCH = 256
# Most background writes (a feed's check, a claim of work) a transaction takes, when they share
# the one writer with the clicks (SQLite): it runs one transaction at a time, so a click that
# arrives meanwhile waits for it. Small batches: a feed's check is several statements (on
# PostgreSQL, before it had a session for them, batches of checks in the clicks' own
# transactions had made votes wait 70-130 ms at p99).
BACKGROUND_BATCH = 4


class StorageUnavailable(Exception):
    """The database can't store writes right now (disk full, server gone…): nothing was written.

    Raised to every writer of a failed batch instead of the driver's error, so callers can tell
    the member what happened; the incident is logged once, not once per write.
    """


class ConstraintViolation(Exception):
    """A write the schema refuses (a key, a trigger's rule): `str(error)` holds the rule's name
    (`poll_closed`, `max_choices`, `bad_slot`, `foreign_key`…), the same on both backends."""


class Row(Protocol):
    def __getitem__(self, key: int | str) -> Any: ...


class Cursor(Protocol):
    @property
    def rowcount(self) -> int: ...
    def fetchone(self) -> Any: ...
    def fetchall(self) -> list[Any]: ...


class WriteConnection(Protocol):
    """What a write function may use: the writer thread's connection, in its transaction."""

    dialect: str

    def execute(self, sql: str, params: Sequence[Any] = ()) -> Cursor: ...
    def executemany(self, sql: str, rows: Iterable[Sequence[Any]]) -> None: ...
    def lock(self, key: int) -> None:
        """Hold `key` until the transaction ends, against every process sharing the database."""


WriteFn = Callable[[WriteConnection], T]


@dataclass(frozen=True, slots=True)
class Migration:
    version: int
    name: str
    sql: str


def load_migrations(dialect: str = "sqlite") -> list[Migration]:
    """The numbered SQL files shipped in `bot/migrations/<dialect>`, in order, with no gaps."""
    found: list[Migration] = []
    for entry in resources.files("bot.migrations").joinpath(dialect).iterdir():
        match = _MIGRATION_NAME.match(entry.name)
        if match:
            found.append(Migration(int(match.group(1)), entry.name, entry.read_text("utf-8")))
    found.sort(key=lambda m: m.version)
    for expected, migration in enumerate(found, start=1):
        if migration.version != expected:
            raise RuntimeError(f"migration {migration.name} breaks the numbering (expected {expected:04d})")
    return found


def newer_schema_error(current: int, known: int) -> RuntimeError:
    return RuntimeError(
        f"the database is at schema version {current}, newer than this Quorum "
        f"({known}): upgrade Quorum or restore a backup"
    )


@dataclass(frozen=True, slots=True)
class Statement:
    """A write that is one statement and never raises for a rule (its result says so).

    `many`, if given, does the same for many parameter sets in one statement: it takes one
    array per parameter and returns one row per set, the set's 1-based position first as `n`,
    in order. A backend that sends statements over a network may run a batch's runs of equal
    `many` as one statement: one parse and execution instead of one per click.
    """

    sql: str
    params: tuple[Any, ...]
    many: str | None = None


@dataclass(slots=True)
class _Job:
    work: WriteFn[Any] | Statement
    future: asyncio.Future[Any]


@dataclass(slots=True)
class WriteStats:
    transactions: int = 0
    writes: int = 0
    largest_batch: int = 0
    failed_writes: int = 0  # refused because the storage failed, since the last good commit
    failed_background_writes: int = 0  # the same, of a background session of their own (PostgreSQL)


Outcome = tuple[bool, Any]


class Database:
    """One process's view of the database. Open with `open_database(settings)`, or a backend's
    own `open`; close with `await db.close()` (or `async with`)."""

    dialect = ""
    shared = False  # other processes write to this database too
    # Background writes per transaction on a session of their own (`background_executor`).
    background_batch = BACKGROUND_BATCH

    def __init__(self, executor: ThreadPoolExecutor, background_executor: ThreadPoolExecutor | None = None) -> None:
        self._executor = executor
        # A backend with a second write connection (PostgreSQL) runs background writes on it,
        # in a thread of their own (`_run_background_batch`): clicks never wait for them. With
        # one writer (SQLite), the two take turns on it.
        self._background_executor = background_executor
        self._queue: list[_Job] = []
        self._background: list[_Job] = []
        self._task: asyncio.Task[None] | None = None
        self._background_task: asyncio.Task[None] | None = None
        self._closing = False
        self.stats = WriteStats()

    @property
    def target(self) -> str:
        """Where the data is, fit for a log line (no password)."""
        raise NotImplementedError

    async def close(self) -> None:
        """Finish every queued write, then close every connection. Safe to call twice."""
        if self._closing:
            return
        self._closing = True
        for task in (self._task, self._background_task):
            if task is not None:
                await task
        self._task = self._background_task = None
        await self._close_connections()
        self._executor.shutdown(wait=True)
        if self._background_executor is not None:
            self._background_executor.shutdown(wait=True)

    async def _close_connections(self) -> None:
        raise NotImplementedError

    async def __aenter__(self) -> Database:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.close()

    # ---------------------------------------------------------------- reads

    async def fetchall(self, sql: str, params: Iterable[Any] = ()) -> list[Any]:
        """Rows answer to `row[0]` and `row["column"]` on both backends."""
        raise NotImplementedError

    async def fetchone(self, sql: str, params: Iterable[Any] = ()) -> Any:
        rows = await self.fetchall(sql, params)
        return rows[0] if rows else None

    async def fetchval(self, sql: str, params: Iterable[Any] = ()) -> Any:
        row = await self.fetchone(sql, params)
        return None if row is None else row[0]

    # ---------------------------------------------------------------- writes

    async def write(self, fn: WriteFn[T], *, background: bool = False) -> T:
        """Run `fn(conn)` in a transaction; return its result once the transaction has committed.

        `fn` must only use the connection it is given. If it raises, its own changes are
        rolled back (savepoint) and the exception is raised here; other writes in the same
        batch are unaffected. A `background` write is work no member waits for (a feed's
        check): it never shares a transaction with interactive writes, and a click waits for
        at most one small batch of them (SQLite's one writer: they take turns) or none (a
        backend with a session for them: PostgreSQL).
        """
        return await self._submit(fn, background)

    async def write_statement(
        self, sql: str, params: Sequence[Any] = (), *, many: str | None = None, background: bool = False
    ) -> Any:
        """Run one statement as a write; return its first row (None if it returns none) once
        committed. The statement must report a refused rule in its result, not raise. For
        `many`, see `Statement`; for `background`, `write`."""
        return await self._submit(Statement(sql, tuple(params), many), background)

    async def _submit(self, work: WriteFn[Any] | Statement, background: bool = False) -> Any:
        if self._closing:
            raise RuntimeError("the database is closing")
        loop = asyncio.get_running_loop()
        future: asyncio.Future[Any] = loop.create_future()
        (self._background if background else self._queue).append(_Job(work, future))
        if background and self._background_executor is not None:
            if self._background_task is None or self._background_task.done():
                self._background_task = loop.create_task(self._background_loop(), name="quorum-db-background")
        elif self._task is None or self._task.done():
            self._task = loop.create_task(self._write_loop(), name="quorum-db-writer")
        # A cancelled caller cancels only this future: the batch skips resolving it, and the
        # write itself still commits with the others (so no shield, and one wake-up less).
        return await future

    async def _write_loop(self) -> None:
        # Writes queued while a batch commits form the next batch: that is the group commit.
        # With one writer, background writes go in transactions of their own, taking turns with
        # the interactive ones: a click waits for at most one small background batch, never
        # inside one.
        one_writer = self._background_executor is None
        background_turn = False
        while self._queue or (one_writer and self._background):
            if one_writer and self._background and (background_turn or not self._queue):
                batch, self._background = self._background[:BACKGROUND_BATCH], self._background[BACKGROUND_BATCH:]
                background_turn = False
            else:
                batch, self._queue = self._queue[:MAX_BATCH], self._queue[MAX_BATCH:]
                background_turn = True
            await self._commit(batch, self._executor, self._run_batch)

    async def _background_loop(self) -> None:
        assert self._background_executor is not None
        size = self.background_batch
        while self._background:
            batch, self._background = self._background[:size], self._background[size:]
            await self._commit(batch, self._background_executor, self._run_background_batch, background=True)

    async def _commit(
        self,
        batch: list[_Job],
        executor: ThreadPoolExecutor,
        run: Callable[[list[Any]], list[Outcome]],
        *,
        background: bool = False,
    ) -> None:
        """Run one batch as one transaction in `executor`'s thread; resolve its writers.
        `background`: on the background session, whose failures are counted (and logged)
        apart, so a session that can't write never makes the other's log flap."""
        counter = "failed_background_writes" if background else "failed_writes"
        try:
            outcomes = await asyncio.get_running_loop().run_in_executor(executor, run, [j.work for j in batch])
        except Exception as error:  # the transaction failed: nobody's write is durable
            storage = self._batch_failed(error, len(batch), background=background)
            for job in batch:
                if not job.future.done():
                    job.future.set_exception(StorageUnavailable(str(error)) if storage else error)
            return
        if failed := getattr(self.stats, counter):
            log.warning("the database takes %swrites again, after %d refused",
                        "background " if background else "", failed)
            setattr(self.stats, counter, 0)
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

    def _batch_failed(self, error: Exception, size: int, *, background: bool = False) -> bool:
        """Log a failed batch: a storage incident once, until writes work again; other failures
        each time. True for a storage failure (its writers get StorageUnavailable)."""
        if not self.is_storage_failure(error):
            log.error("database write batch of %d failed", size, exc_info=error)
            return False
        counter = "failed_background_writes" if background else "failed_writes"
        if not getattr(self.stats, counter):
            log.error(
                "the database can't store %swrites (%s); refusing them until it can again",
                "background " if background else "",
                self._error_name(error),
                exc_info=error,
            )
        setattr(self.stats, counter, getattr(self.stats, counter) + size)
        return True

    def is_storage_failure(self, error: BaseException) -> bool:
        """The engine can't take writes now (as opposed to a write wrong in itself)."""
        raise NotImplementedError

    def _error_name(self, error: BaseException) -> str:
        return type(error).__name__

    def _run_batch(self, work: list[WriteFn[Any] | Statement]) -> list[Outcome]:
        """In the writer thread: one transaction for the whole batch, then COMMIT."""
        raise NotImplementedError

    def _run_background_batch(self, work: list[WriteFn[Any] | Statement]) -> list[Outcome]:
        """The same, in the background writer's thread, on its own connection (a backend
        that gives `background_executor`)."""
        raise NotImplementedError

    async def hold_instance_lock(self, name: str) -> bool:
        """Try to become the only live process called `name` for as long as this database is
        open; False if another live process holds the name (a copy still stopping while its
        replacement starts). One process per file is SQLite's whole design, so True there."""
        return True

    # ---------------------------------------------------------------- maintenance

    async def schema_version(self) -> int:
        raise NotImplementedError

    async def get_meta(self, key: str) -> str | None:
        return await self.fetchval("SELECT value FROM meta WHERE key = ?", (key,))

    async def set_meta(self, key: str, value: str) -> None:
        def put(conn: WriteConnection) -> None:
            conn.execute(
                "INSERT INTO meta (key, value) VALUES (?, ?) "
                "ON CONFLICT (key) DO UPDATE SET value = excluded.value",
                (key, value),
            )

        await self.write(put)


def run_savepointed(
    conn: WriteConnection, fn: WriteFn[Any], *, storage_failure: Callable[[BaseException], bool]
) -> Outcome:
    """One write of a batch in its own savepoint: its failure undoes only its own changes.

    A failure of the storage itself fails the whole batch (it is raised): the engine may have
    rolled the transaction back already, taking the other writes with it.
    """
    conn.execute("SAVEPOINT job")
    try:
        result = fn(conn)
    except Exception as error:
        if storage_failure(error):
            raise
        conn.execute("ROLLBACK TO SAVEPOINT job")
        conn.execute("RELEASE SAVEPOINT job")
        return False, error
    conn.execute("RELEASE SAVEPOINT job")
    return True, result


def statement_fn(statement: Statement) -> WriteFn[Any]:
    def run(conn: WriteConnection) -> Any:
        return conn.execute(statement.sql, statement.params).fetchone()

    return run


async def open_database(settings: Any) -> Database:
    """The database the settings name: PostgreSQL at DATABASE_URL, else SQLite at DATABASE_PATH."""
    url = getattr(settings, "database_url", None)
    if url:
        from .db_postgres import PostgresDatabase

        return await PostgresDatabase.open(url)
    from .db_sqlite import SqliteDatabase

    return await SqliteDatabase.open(settings.database_path)
