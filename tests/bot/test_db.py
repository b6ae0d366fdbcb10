"""The database layer: migrations, connection settings, and the group-committing writer."""

from __future__ import annotations

import asyncio
import contextlib
import sqlite3
import threading
from pathlib import Path

import pytest
from conftest import sqlite_only

import bot.migrations
from bot.db import BACKGROUND_BATCH, MAX_BATCH, ConstraintViolation, load_migrations
from bot.db_sqlite import SqliteDatabase, migrate_sync

MIGRATIONS = Path(bot.migrations.__file__).parent
MIGRATION_FILES = sorted((MIGRATIONS / "sqlite").glob("[0-9][0-9][0-9][0-9]_*.sql"))


@pytest.fixture
def db_path(tmp_path):
    return tmp_path / "data" / "quorum.sqlite3"


@pytest.fixture
def path(db_path):
    return db_path


@pytest.fixture
async def db(open_db):
    return await open_db()


class Boom(Exception):
    pass


def _insert(key: str, value: str = "v", *, fail: bool = False):
    def fn(conn):
        conn.execute("INSERT INTO meta (key, value) VALUES (?, ?)", (key, value))
        if fail:
            raise Boom(key)
        return key

    return fn


# ------------------------------------------------------------------ migrations


def test_there_is_at_least_one_migration_file():
    assert MIGRATION_FILES, "no migration files found in bot/migrations/sqlite"


@pytest.mark.parametrize("dialect", ["sqlite", "postgresql"])
def test_load_migrations_numbers_every_file_in_order(dialect):
    files = sorted((MIGRATIONS / dialect).glob("[0-9][0-9][0-9][0-9]_*.sql"))
    assert [m.version for m in load_migrations(dialect)] == list(range(1, len(files) + 1))
    assert [m.name for m in load_migrations(dialect)] == [f.name for f in files]


def test_both_dialects_have_the_same_migrations():
    """One schema version means the same tables on both: migrate-db relies on it."""
    assert [m.name for m in load_migrations("sqlite")] == [m.name for m in load_migrations("postgresql")]


@sqlite_only
async def test_open_creates_the_parent_directory(path, db):
    assert path.parent.is_dir() and path.exists()


async def test_user_version_is_the_number_of_migration_files(db):
    assert await db.schema_version() == len(MIGRATION_FILES)


async def test_migrations_create_the_tables(db):
    if db.dialect == "sqlite":
        names = {r[0] for r in await db.fetchall("SELECT name FROM sqlite_master WHERE type = 'table'")}
    else:
        names = {r[0] for r in await db.fetchall("SELECT tablename FROM pg_tables WHERE schemaname = current_schema()")}
    assert {"polls", "poll_options", "votes", "meta"} <= names


async def test_reopening_keeps_version_and_data(open_db, db):
    await db.set_meta("kept", "yes")
    await db.close()
    again = await open_db()
    assert (await again.schema_version(), await again.get_meta("kept")) == (len(MIGRATION_FILES), "yes")


@sqlite_only
async def test_migrate_on_an_up_to_date_database_changes_nothing(path, db):
    await db.close()
    conn = sqlite3.connect(path, isolation_level=None)
    try:
        before = conn.execute("SELECT count(*) FROM sqlite_master").fetchone()[0]
        assert migrate_sync(conn) == len(MIGRATION_FILES)
        after = conn.execute("SELECT count(*) FROM sqlite_master").fetchone()[0]
    finally:
        conn.close()
    assert before == after


@sqlite_only
async def test_database_from_a_newer_schema_is_refused(path, db):
    await db.close()
    raw = sqlite3.connect(path)
    raw.execute(f"PRAGMA user_version = {len(MIGRATION_FILES) + 1}")
    raw.close()
    with pytest.raises(RuntimeError, match=r"newer than this Quorum.*upgrade Quorum or restore a backup"):
        await SqliteDatabase.open(path)


@sqlite_only
async def test_refused_newer_database_is_left_untouched(path, db):
    await db.set_meta("kept", "yes")
    await db.close()
    raw = sqlite3.connect(path)
    raw.execute("PRAGMA user_version = 99")
    raw.close()
    with pytest.raises(RuntimeError):
        await SqliteDatabase.open(path)
    raw = sqlite3.connect(path)
    try:
        assert raw.execute("PRAGMA user_version").fetchone()[0] == 99
        assert raw.execute("SELECT value FROM meta WHERE key = 'kept'").fetchone()[0] == "yes"
    finally:
        raw.close()


# ------------------------------------------------------------------ connection settings


@sqlite_only
async def test_journal_mode_is_wal(db):
    assert await db.fetchval("PRAGMA journal_mode") == "wal"


@sqlite_only
async def test_foreign_keys_are_on_for_reads(db):
    assert await db.fetchval("PRAGMA foreign_keys") == 1


@sqlite_only
async def test_foreign_keys_are_on_for_writes(db):
    def read_pragma(conn):
        return conn.execute("PRAGMA foreign_keys").fetchone()[0]

    assert await db.write(read_pragma) == 1


async def test_read_connection_cannot_write(db):
    with pytest.raises(Exception, match=r"readonly|read-only"):
        await db.fetchall("INSERT INTO meta (key, value) VALUES ('x', 'y')")
    assert await db.get_meta("x") is None


@sqlite_only
async def test_integrity_check_of_a_fresh_database_is_ok(db):
    assert await db.integrity_check() == ["ok"]


# ------------------------------------------------------------------ writes


async def test_write_returns_the_function_result(db):
    assert await db.write(_insert("a")) == "a"


async def test_committed_write_is_visible_to_reads_at_once(db):
    await db.set_meta("k", "v1")
    await db.set_meta("k", "v2")
    assert await db.get_meta("k") == "v2"


async def test_failing_write_raises_its_own_exception(db):
    with pytest.raises(Boom):
        await db.write(_insert("a", fail=True))


async def test_failing_write_in_a_batch_rolls_back_only_itself(db):
    before = db.stats.transactions
    results = await asyncio.gather(
        db.write(_insert("a")), db.write(_insert("b", fail=True)), db.write(_insert("c")), return_exceptions=True
    )
    assert db.stats.transactions - before == 1  # all three shared one transaction
    assert results[0] == "a" and isinstance(results[1], Boom) and results[2] == "c"
    keys = [r[0] for r in await db.fetchall("SELECT key FROM meta ORDER BY key")]
    assert keys == ["a", "c"]


async def test_constraint_error_in_a_batch_rolls_back_only_its_write(db):
    await db.set_meta("taken", "1")

    def half_then_conflict(conn):
        conn.execute("INSERT INTO meta (key, value) VALUES ('half', '1')")
        conn.execute("INSERT INTO meta (key, value) VALUES ('taken', '2')")

    results = await asyncio.gather(
        db.write(_insert("a")), db.write(half_then_conflict), db.write(_insert("c")), return_exceptions=True
    )
    assert isinstance(results[1], ConstraintViolation)
    keys = [r[0] for r in await db.fetchall("SELECT key FROM meta ORDER BY key")]
    assert keys == ["a", "c", "taken"]


async def test_concurrent_writes_are_group_committed(db):
    before = db.stats.transactions
    await asyncio.gather(*(db.set_meta(f"k{i}", "v") for i in range(50)))
    assert db.stats.largest_batch > 1
    assert db.stats.transactions - before < 50
    assert await db.fetchval("SELECT count(*) FROM meta") == 50


async def test_a_batch_holds_at_most_max_batch_writes(db):
    await asyncio.gather(*(db.set_meta(f"k{i}", "v") for i in range(MAX_BATCH + 44)))
    assert db.stats.largest_batch == MAX_BATCH
    assert await db.fetchval("SELECT count(*) FROM meta") == MAX_BATCH + 44


async def test_stats_count_every_write(db):
    before = db.stats.writes
    await asyncio.gather(*(db.set_meta(f"k{i}", "v") for i in range(10)))
    assert db.stats.writes - before == 10


async def test_cancelled_caller_does_not_cancel_its_write(db):
    task = asyncio.create_task(db.set_meta("k", "v"))
    await asyncio.sleep(0)  # the write is queued
    task.cancel()
    with contextlib.suppress(asyncio.CancelledError):
        await task
    await db.set_meta("after", "1")  # queued behind it: when this is done, so is the other
    assert await db.get_meta("k") == "v"


def _blocking(release: threading.Event, result: str = "held"):
    """A write that holds its writer thread until `release` is set."""

    def fn(conn):
        release.wait(10)
        return result

    return fn


def _recording(order: list[str], name: str):
    def fn(conn):
        conn.execute("INSERT INTO meta (key, value) VALUES (?, 'v')", (name,))
        order.append(name)
        return name

    return fn


async def test_background_writes_commit_and_return_their_results(db):
    results = await asyncio.gather(*(db.write(_insert(f"b{i}"), background=True) for i in range(10)))
    assert results == [f"b{i}" for i in range(10)]
    assert await db.fetchval("SELECT count(*) FROM meta") == 10
    assert db.stats.largest_batch <= db.background_batch  # small transactions: a click waits for little


@sqlite_only
async def test_with_one_writer_a_click_waits_for_one_background_batch_at_most(db):
    """SQLite has one writer: background work takes turns with clicks, a few writes at a time."""
    release, order = threading.Event(), []
    held = asyncio.ensure_future(db.write(_blocking(release)))
    await asyncio.sleep(0.05)  # the writer thread is held: what follows queues up
    background = [asyncio.ensure_future(db.write(_recording(order, f"b{i}"), background=True)) for i in range(12)]
    click = asyncio.ensure_future(db.write(_recording(order, "click")))
    await asyncio.sleep(0)
    release.set()
    await asyncio.gather(held, click, *background)
    assert order.index("click") <= BACKGROUND_BATCH  # behind one background batch, not twelve writes
    assert sorted(order) == sorted(["click", *(f"b{i}" for i in range(12))])


@pytest.mark.parametrize("backend", ["postgresql"], indirect=True)
async def test_on_postgresql_a_click_never_waits_for_background_writes(db):
    """PostgreSQL takes concurrent writers: background writes have a session and a thread of
    their own, so a click commits while a background write is still running."""
    release = threading.Event()
    slow = asyncio.ensure_future(db.write(_blocking(release, "background"), background=True))
    await asyncio.sleep(0.05)
    try:
        assert await asyncio.wait_for(db.write(_insert("click")), 5) == "click"
        assert not slow.done()
    finally:
        release.set()
    assert await slow == "background"


@pytest.mark.parametrize("backend", ["postgresql"], indirect=True)
async def test_background_writes_go_on_after_postgresql_cut_their_connection(db, caplog):
    import psycopg

    await db.write(_insert("before"), background=True)
    with psycopg.connect(db.url, autocommit=True) as admin:
        assert admin.execute(
            "SELECT pg_terminate_backend(%s)", (db._background_writer.info.backend_pid,)
        ).fetchone()[0]
    await asyncio.sleep(0.1)  # the server's goodbye reaches the idle connection
    assert await db.write(_insert("after"), background=True) == "after"
    assert await db.fetchval("SELECT count(*) FROM meta WHERE key IN ('before', 'after')") == 2
    assert any("background write connection" in r.getMessage() for r in caplog.records)


async def test_close_finishes_queued_writes(path):
    database = await SqliteDatabase.open(path)
    tasks = [asyncio.create_task(database.set_meta(f"k{i}", "v")) for i in range(20)]
    await asyncio.sleep(0)  # every write is queued
    await database.close()
    await asyncio.gather(*tasks)
    raw = sqlite3.connect(path)
    try:
        assert raw.execute("SELECT count(*) FROM meta").fetchone()[0] == 20
    finally:
        raw.close()


async def test_write_after_close_is_refused(path):
    database = await SqliteDatabase.open(path)
    await database.close()
    with pytest.raises(RuntimeError, match="closing"):
        await database.set_meta("k", "v")


@sqlite_only
async def test_committed_write_survives_reopening(path, db):
    await db.set_meta("durable", "yes")
    await db.close()
    raw = sqlite3.connect(path)
    try:
        assert raw.execute("SELECT value FROM meta WHERE key = 'durable'").fetchone()[0] == "yes"
    finally:
        raw.close()


async def test_get_meta_of_a_missing_key_is_none(db):
    assert await db.get_meta("missing") is None


async def test_async_context_manager_closes_the_database(path):
    async with await SqliteDatabase.open(path) as database:
        await database.set_meta("k", "v")
    with pytest.raises(RuntimeError, match="closing"):
        await database.set_meta("k", "again")


async def test_a_cancelled_caller_does_not_disturb_the_batch(db):
    cancelled = asyncio.ensure_future(db.write(_insert("gone")))
    others = [asyncio.ensure_future(db.write(_insert(k))) for k in ("a", "b")]
    await asyncio.sleep(0)
    cancelled.cancel()
    assert await asyncio.gather(*others) == ["a", "b"]
    with pytest.raises(asyncio.CancelledError):
        await cancelled
    keys = [r[0] for r in await db.fetchall("SELECT key FROM meta ORDER BY key")]
    assert keys == ["a", "b", "gone"]  # queued before the cancel: it still commits


@pytest.mark.parametrize("name", ["file:quorum.sqlite3", "a#b?c%41.sqlite3"])
async def test_a_database_name_that_looks_like_a_uri_is_the_file_it_names(tmp_path, name):
    async with await SqliteDatabase.open(tmp_path / name) as db:
        await db.set_meta("here", "yes")
        assert await db.get_meta("here") == "yes"
    assert (tmp_path / name).is_file()
    assert sorted(p.name for p in tmp_path.iterdir()) == [name]  # no other file was made


async def test_a_statement_write_returns_its_first_row(db):
    row = await db.write_statement("INSERT INTO meta (key, value) VALUES (?, ?) RETURNING key", ("k", "v"))
    assert row["key"] == "k" and row[0] == "k"
    assert await db.write_statement("UPDATE meta SET value = 'w' WHERE key = 'none'") is None
