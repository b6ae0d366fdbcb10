"""PostgreSQL, for instances that outgrow one machine: many processes over one database.

The driver is psycopg 3, measured against asyncpg in `bench/pg_write_path.py` (session 3,
docs/performance.md): psycopg's synchronous connection on the writer thread keeps the exact
group-commit design of the SQLite backend, and its pipeline mode sends every vote of a batch
before reading any answer, one round trip per batch: 30,600 votes/s against 5,600 for an
asyncpg pool with one transaction per vote. Reads use a second psycopg connection on its
own thread, as SQLite's go to aiosqlite's. Both reconnect after the server went away.

Statements keep SQLite's `?` placeholders (translated once per statement text), so the
repositories share every statement both dialects agree on.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import logging
import select
from collections.abc import Iterable, Sequence
from concurrent.futures import ThreadPoolExecutor
from typing import Any
from urllib.parse import quote, unquote

import psycopg
import psycopg.errors
from psycopg import pq

from .config import redact_url
from .db import (
    ConstraintViolation,
    Database,
    Outcome,
    Statement,
    StorageUnavailable,
    WriteFn,
    load_migrations,
    newer_schema_error,
    run_savepointed,
    statement_fn,
)

log = logging.getLogger(__name__)

# Error classes that mean "the server can't take this now": connection (08), resources such
# as a full disk (53), operator intervention such as a shutdown (57), system errors (58),
# transaction rollbacks such as a deadlock (40), and a read-only server (25006, a standby).
_STORAGE_CLASSES = ("08", "40", "53", "57", "58")
_READ_ONLY = "25006"
CONNECT_TIMEOUT = 10
DEADLOCK_RETRIES = 3


def is_postgres_storage_failure(error: BaseException) -> bool:
    if isinstance(error, psycopg.InterfaceError | psycopg.OperationalError):
        return True
    state = getattr(error, "sqlstate", None)
    if not isinstance(error, psycopg.Error) or state is None:
        return False
    return state[:2] in _STORAGE_CLASSES or state == _READ_ONLY


@functools.lru_cache(maxsize=1024)
def translate(sql: str) -> str:
    """SQLite's `?` placeholders as psycopg's `%s` (a literal `%` doubled). No statement of
    Quorum has a `?` or `%` inside a string literal, so a plain replacement is exact."""
    return sql.replace("%", "%%").replace("?", "%s")


class PgRow:
    """A row that answers to `row[0]` and `row["name"]`, like sqlite3.Row."""

    __slots__ = ("_index", "_values")

    def __init__(self, values: Sequence[Any], index: dict[str, int]) -> None:
        self._values = values
        self._index = index

    def __getitem__(self, key: int | str) -> Any:
        return self._values[self._index[key]] if isinstance(key, str) else self._values[key]

    def __len__(self) -> int:
        return len(self._values)

    def __iter__(self) -> Any:
        return iter(self._values)

    def keys(self) -> list[str]:
        return list(self._index)

    def __repr__(self) -> str:
        return f"PgRow({dict(zip(self._index, self._values, strict=True))!r})"


def _row_factory(cursor: Any) -> Any:
    description = cursor.description
    index = {} if description is None else {column.name: i for i, column in enumerate(description)}

    def make(values: Sequence[Any]) -> PgRow:
        return PgRow(values, index)

    return make


def rule_name(error: psycopg.Error) -> str:
    """The schema rule a refused write broke, spelled as on SQLite's side."""
    if isinstance(error, psycopg.errors.RaiseException):  # a trigger's RAISE: its message is the rule
        return (error.diag.message_primary or "").strip()
    if isinstance(error, psycopg.errors.ForeignKeyViolation):
        return "foreign_key"
    return f"{type(error).__name__}: {error.diag.constraint_name or error.diag.message_primary}"


def _refused(error: BaseException) -> bool:
    return isinstance(error, psycopg.errors.IntegrityError | psycopg.errors.RaiseException)


class PostgresWriteConnection:
    """The writer thread's psycopg connection as a `WriteConnection`."""

    dialect = "postgresql"
    __slots__ = ("raw",)

    def __init__(self, raw: psycopg.Connection[Any]) -> None:
        self.raw = raw

    def execute(self, sql: str, params: Sequence[Any] = ()) -> psycopg.Cursor[Any]:
        try:
            return self.raw.execute(translate(sql), params or None)
        except psycopg.Error as error:
            if _refused(error):
                raise ConstraintViolation(rule_name(error)) from error
            raise

    def executemany(self, sql: str, rows: Iterable[Sequence[Any]]) -> None:
        try:
            with self.raw.cursor() as cursor:
                cursor.executemany(translate(sql), rows)
        except psycopg.Error as error:
            if _refused(error):
                raise ConstraintViolation(rule_name(error)) from error
            raise

    def lock(self, key: int) -> None:
        # The two-key form: its key space is apart from the vote trigger's one-key locks.
        self.raw.execute("SELECT pg_advisory_xact_lock(hashtext('quorum-lock'), hashtext(%s::text))", (key,))


class _NotStarted(Exception):
    """BEGIN failed on a dead connection: nothing of the batch was sent."""


class _PipelineFailed(Exception):
    """A pipelined statement raised: the batch is rolled back and run again one write at a time."""


def connection_url(url: str, *, application_name: str = "quorum") -> str:
    """`url` with a default application_name and connect timeout, so `pg_stat_activity` names
    Quorum's connections and a server that does not answer fails the start instead of hanging."""
    return with_query(url, application_name=application_name, connect_timeout=str(CONNECT_TIMEOUT), keep=True)


def with_query(url: str, *, keep: bool = False, **values: str) -> str:
    """`url` with query parameters set (or, with `keep`, only added where missing). The query
    already there is kept byte for byte: decoding and encoding it again would turn `%20` into
    `+`, which libpq reads as a plus sign. (urlunsplit is not used either: it drops the empty
    host of `postgresql:///db`, a Unix-socket URL.)"""
    base, hash_, fragment = url.partition("#")
    base, question, query = base.partition("?")
    parts = [p for p in query.split("&") if p] if question else []
    names = {unquote(p.partition("=")[0]) for p in parts}
    for name, value in values.items():
        if name in names:
            if keep:
                continue
            parts = [p for p in parts if unquote(p.partition("=")[0]) != name]
        parts.append(f"{quote(name)}={quote(value, safe='')}")
    return f"{base}?{'&'.join(parts)}{hash_}{fragment}"


class PostgresDatabase(Database):
    """Create with `await PostgresDatabase.open("postgresql://…")`."""

    dialect = "postgresql"
    shared = True
    # One background write per transaction on its own session: a transaction then locks one
    # feed's rows only, in the same order as a /feed command on the other session does, so
    # the two sessions can't deadlock (batches of two feeds crossing a command's batch could,
    # for PostgreSQL's deadlock_timeout of a second).
    background_batch = 1

    def __init__(self, url: str, writer: psycopg.Connection[Any], executor: ThreadPoolExecutor,
                 reader: psycopg.Connection[Any], read_executor: ThreadPoolExecutor) -> None:
        super().__init__(
            executor, ThreadPoolExecutor(max_workers=1, thread_name_prefix="quorum-db-background")
        )
        self.url = url
        self._writer = writer
        # Background writes' own session (feed checks, claims of work), opened on first use.
        self._background_writer: psycopg.Connection[Any] | None = None
        self._reader = reader
        self._read_executor = read_executor

    @classmethod
    async def open(cls, url: str) -> PostgresDatabase:
        try:
            return await cls._open(connection_url(url))
        except psycopg.Error as error:
            # libpq quotes what it could not parse, a mistyped password included: never let
            # that reach a traceback or a log. `from None`: the original stays out of it too.
            from .maintenance_postgres import scrub

            raise StorageUnavailable(
                f"can't open the PostgreSQL database at {redact_url(url)}: {scrub(str(error), url)}"
            ) from None

    @classmethod
    async def _open(cls, url: str) -> PostgresDatabase:
        loop = asyncio.get_running_loop()
        executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="quorum-db-writer")
        try:
            writer = await loop.run_in_executor(executor, _open_writer, url)
        except BaseException:
            executor.shutdown(wait=False)
            raise
        read_executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="quorum-db-reader")
        try:
            reader = await loop.run_in_executor(read_executor, _open_reader, url)
        except BaseException:
            await loop.run_in_executor(executor, writer.close)
            executor.shutdown(wait=False)
            read_executor.shutdown(wait=False)
            raise
        return cls(url, writer, executor, reader, read_executor)

    @property
    def target(self) -> str:
        return redact_url(self.url)

    async def _close_connections(self) -> None:
        loop = asyncio.get_running_loop()
        await loop.run_in_executor(self._read_executor, self._reader.close)
        self._read_executor.shutdown(wait=True)
        await loop.run_in_executor(self._executor, self._writer.close)
        background = self._background_writer
        if background is not None:
            assert self._background_executor is not None
            await loop.run_in_executor(self._background_executor, background.close)

    # ---------------------------------------------------------------- reads

    async def fetchall(self, sql: str, params: Iterable[Any] = ()) -> list[Any]:
        values = tuple(params)
        try:
            return await asyncio.get_running_loop().run_in_executor(self._read_executor, self._read, sql, values)
        except psycopg.Error as error:
            if is_postgres_storage_failure(error):
                raise StorageUnavailable(str(error)) from error
            raise

    def _read(self, sql: str, values: tuple[Any, ...]) -> list[Any]:
        """In the reader thread, like aiosqlite's: one statement, run to completion."""
        for attempt in (1, 2):
            if self._reader.closed or self._reader.broken:
                log.warning("the read connection to %s was lost; reconnecting", self.target)
                self._reader = _open_reader(self.url)
            try:
                with self._reader.cursor() as cursor:
                    cursor.execute(translate(sql), values or None)
                    return cursor.fetchall() if cursor.description is not None else []
            except psycopg.OperationalError:
                # A read is safe to repeat: once, on a new connection, if this one died.
                if attempt == 2 or not (self._reader.closed or self._reader.broken):
                    raise
        raise AssertionError("unreachable")

    async def hold_instance_lock(self, name: str) -> bool:
        # A session lock on the read connection: released when that session ends, so a
        # process that died (or lost its connection) no longer holds its name. Advisory locks
        # are database-wide: the schema is part of the key (as for migrations), or Quorums in
        # two schemas of one database (the tests' parallel workers) would hold each other's.
        row = await self.fetchone(
            "SELECT pg_try_advisory_lock(hashtext('quorum-instance:' || current_schema()), hashtext(?)) AS held",
            (name,),
        )
        return bool(row["held"])

    # ---------------------------------------------------------------- writes

    def is_storage_failure(self, error: BaseException) -> bool:
        return is_postgres_storage_failure(error)

    def _error_name(self, error: BaseException) -> str:
        return getattr(error, "sqlstate", None) or type(error).__name__

    def _run_batch(self, work: list[WriteFn[Any] | Statement]) -> list[Outcome]:
        return self._run_on("_writer", work)

    def _run_background_batch(self, work: list[WriteFn[Any] | Statement]) -> list[Outcome]:
        if self._background_writer is None:
            self._background_writer = _connect_writer(self.url)
        return self._run_on("_background_writer", work)

    def _run_on(self, slot: str, work: list[WriteFn[Any] | Statement]) -> list[Outcome]:
        """In the thread of the write connection named `slot`: one transaction. Runs of
        statements go in one pipeline each; other writes each get a savepoint. If a pipelined
        statement raises after all (a bug, not a rule), the batch is rolled back and run again
        with a savepoint for every write."""
        raw: psycopg.Connection[Any] = getattr(self, slot)
        if raw.closed or raw.broken:
            raw = self._reconnect(slot)
        else:
            _roll_back(raw)  # a backstop: a batch never starts inside another's transaction
        pipelined, reconnected, crossed = True, False, 0
        while True:
            try:
                return self._transaction(raw, work, pipelined=pipelined)
            except _NotStarted:
                # The connection died while idle (a server restart): nothing of this batch ran,
                # so it is safe to send it again, once, on a new connection.
                if reconnected:
                    raise StorageUnavailable("the database connection died again on reconnecting") from None
                raw = self._reconnect(slot)
                reconnected = True
            except _PipelineFailed:
                if not pipelined:
                    raise RuntimeError("a write batch failed without a savepoint to blame") from None
                pipelined = False
            except (psycopg.errors.DeadlockDetected, psycopg.errors.SerializationFailure):
                # Another process's transaction crossed this one; PostgreSQL rolled this one
                # back whole, so running it again is safe.
                crossed += 1
                if crossed == DEADLOCK_RETRIES:
                    raise
                log.info("write batch crossed another process's (attempt %d); running it again", crossed)

    def _reconnect(self, slot: str) -> psycopg.Connection[Any]:
        log.warning("the %s connection to %s was lost; reconnecting",
                    "write" if slot == "_writer" else "background write", self.target)
        with contextlib.suppress(psycopg.Error):
            getattr(self, slot).close()
        conn = _connect_writer(self.url)
        setattr(self, slot, conn)
        return conn

    def _transaction(
        self, raw: psycopg.Connection[Any], work: list[WriteFn[Any] | Statement], *, pipelined: bool
    ) -> list[Outcome]:
        if pipelined and not _has_news(raw) and all(isinstance(item, Statement) for item in work):
            return self._one_round_trip(raw, work)  # type: ignore[arg-type]
        return self._transaction_in_steps(raw, work, pipelined=pipelined)

    def _one_round_trip(self, raw: psycopg.Connection[Any], statements: list[Statement]) -> list[Outcome]:
        """A batch of statements only (clicks, under load): BEGIN, every statement and COMMIT in
        one pipeline, so the batch costs one round trip and one wake-up of this thread.

        Only on a connection with nothing waiting to be read: a server that ended the session
        (a restart, an administrator) has sent its goodbye, and the batch then goes the way of
        `_transaction_in_steps`, whose separate BEGIN finds the connection dead before anything
        is sent, so the batch can be sent again on a new one.
        """
        try:
            runs = _runs(statements)
            with raw.pipeline():
                raw.execute("BEGIN")
                cursors = [
                    raw.execute(translate(run[0].many), _columns(run))
                    if run[0].many is not None and len(run) > 1
                    else raw.execute(translate(run[0].sql), run[0].params or None)
                    for run in runs
                ]
                raw.execute("COMMIT")
            outcomes: list[Outcome] = []
            for run, cursor in zip(runs, cursors, strict=True):
                if run[0].many is not None and len(run) > 1:
                    rows = {row["n"]: row for row in cursor.fetchall()}
                    outcomes.extend((True, rows.get(n)) for n in range(1, len(run) + 1))
                else:
                    outcomes.append((True, cursor.fetchone() if cursor.description is not None else None))
        except BaseException as error:
            # Whatever failed, nothing of the batch may stay in an open transaction: the next
            # batch's COMMIT would store writes whose callers were told they failed.
            _roll_back(raw)
            if not isinstance(error, psycopg.Error) or is_postgres_storage_failure(error):
                raise
            log.warning("a pipelined write raised %s; running the batch again one write at a time", error)
            raise _PipelineFailed() from error
        return outcomes

    def _transaction_in_steps(
        self, raw: psycopg.Connection[Any], work: list[WriteFn[Any] | Statement], *, pipelined: bool
    ) -> list[Outcome]:
        conn = PostgresWriteConnection(raw)
        outcomes: list[Outcome] = []
        try:
            raw.execute("BEGIN")
        except psycopg.OperationalError as error:
            if raw.closed or raw.broken:
                raise _NotStarted() from error
            raise
        try:
            i = 0
            while i < len(work):
                item = work[i]
                if isinstance(item, Statement) and pipelined:
                    end = i
                    while end < len(work) and isinstance(work[end], Statement):
                        end += 1
                    outcomes.extend(self._pipeline(raw, work[i:end]))  # type: ignore[arg-type]
                    i = end
                    continue
                fn = statement_fn(item) if isinstance(item, Statement) else item
                outcomes.append(run_savepointed(conn, fn, storage_failure=is_postgres_storage_failure))
                i += 1
            raw.execute("COMMIT")
        except BaseException:
            _roll_back(raw)
            raise
        return outcomes

    @staticmethod
    def _pipeline(raw: psycopg.Connection[Any], statements: list[Statement]) -> list[Outcome]:
        try:
            with raw.pipeline():
                cursors = [raw.execute(translate(s.sql), s.params or None) for s in statements]
            return [(True, cursor.fetchone() if cursor.description is not None else None) for cursor in cursors]
        except psycopg.Error as error:
            if is_postgres_storage_failure(error):
                raise
            log.warning("a pipelined write raised %s; running the batch again one write at a time", error)
            raise _PipelineFailed() from error

    # ---------------------------------------------------------------- maintenance

    async def schema_version(self) -> int:
        return int(await self.fetchval("SELECT version FROM quorum_schema"))

    async def integrity_check(self) -> list[str]:
        """PostgreSQL checks its own pages; what Quorum can check is that its schema is whole."""
        known = len(load_migrations("postgresql"))
        version = await self.schema_version()
        return ["ok"] if version == known else [f"schema version {version}, expected {known}"]


def _roll_back(raw: psycopg.Connection[Any]) -> None:
    if raw.closed or raw.broken or raw.info.transaction_status == pq.TransactionStatus.IDLE:
        return
    try:
        raw.execute("ROLLBACK")
    except psycopg.Error:
        log.exception("rollback after a failed batch failed")


def _runs(statements: list[Statement]) -> list[list[Statement]]:
    """The batch cut into runs: consecutive statements with the same `many` together, each
    other statement alone."""
    runs: list[list[Statement]] = []
    for statement in statements:
        if runs and statement.many is not None and runs[-1][0].many == statement.many:
            runs[-1].append(statement)
        else:
            runs.append([statement])
    return runs


def _columns(run: list[Statement]) -> list[list[Any]]:
    """A run's parameter sets as one array per parameter, for its `many` statement."""
    return [list(column) for column in zip(*(s.params for s in run), strict=True)]


def _has_news(conn: psycopg.Connection[Any]) -> bool:
    """Whether an idle connection has something to read: between transactions the server only
    speaks first to say goodbye (or a rare notice), so this is how a dead session shows."""
    try:
        readable, _, _ = select.select([conn.fileno()], [], [], 0)
    except (OSError, ValueError, psycopg.Error):
        return True
    return bool(readable)


def _open_reader(url: str) -> psycopg.Connection[Any]:
    conn = psycopg.connect(url, autocommit=True, row_factory=_row_factory)
    # Reads never write: a bug that tries is refused by the server.
    conn.execute("SET default_transaction_read_only = on")
    return conn


def _connect_writer(url: str) -> psycopg.Connection[Any]:
    # Autocommit: the batch issues BEGIN and COMMIT itself, so no implicit transaction is left open.
    return psycopg.connect(url, autocommit=True, row_factory=_row_factory)


def _open_writer(url: str) -> psycopg.Connection[Any]:
    conn = _connect_writer(url)
    try:
        migrate(conn)
    except BaseException:
        conn.close()
        raise
    return conn


def migrate(conn: psycopg.Connection[Any]) -> int:
    """Apply every pending migration in one transaction; return the resulting version.

    Several processes may start at once: each takes the same advisory lock (one per schema)
    first, so one applies the migrations and the others wait, then find nothing to do.
    """
    migrations = load_migrations("postgresql")
    with conn.transaction():
        conn.execute("SELECT pg_advisory_xact_lock(hashtext('quorum-migrations'), hashtext(current_schema()))")
        conn.execute("CREATE TABLE IF NOT EXISTS quorum_schema (version integer NOT NULL)")
        row = conn.execute("SELECT version FROM quorum_schema").fetchone()
        if row is None:
            conn.execute("INSERT INTO quorum_schema (version) VALUES (0)")
        current = 0 if row is None else int(row[0])
        if current > len(migrations):
            raise newer_schema_error(current, len(migrations))
        pending = [m for m in migrations if m.version > current]
        for migration in pending:
            conn.execute(migration.sql)  # no parameters: sent as one multi-statement script
        if pending:
            conn.execute("UPDATE quorum_schema SET version = %s", (pending[-1].version,))
    if pending:
        log.info("database migrated from schema version %d to %d", current, pending[-1].version)
        return pending[-1].version
    return current
