"""What only the PostgreSQL backend has: migrations under concurrent starts, the pipelined vote
batch and its fallback, placeholders, reconnection. Skips without a PostgreSQL server."""

from __future__ import annotations

import asyncio
import logging

import psycopg
import pytest

from bot.db import StorageUnavailable, load_migrations
from bot.db_postgres import PostgresDatabase, connection_url, translate, with_query


@pytest.fixture
def database_url(empty_database_url):
    """These tests look at what migrating does (or check and copy an empty database): each
    gets a schema with nothing in it, not the suite's migrated ones."""
    return empty_database_url

on_postgresql = pytest.mark.parametrize("backend", ["postgresql"], indirect=True)


@on_postgresql
async def test_several_processes_starting_at_once_migrate_once(database_url, caplog):
    caplog.set_level(logging.INFO, logger="bot.db_postgres")
    opened = await asyncio.gather(*(PostgresDatabase.open(database_url) for _ in range(6)))
    try:
        assert {await db.schema_version() for db in opened} == {len(load_migrations("postgresql"))}
        migrated = [r for r in caplog.records if "migrated from schema version 0" in r.getMessage()]
        assert len(migrated) == 1, "one process applied the migrations, the others waited and found none"
    finally:
        for db in opened:
            await db.close()


@on_postgresql
async def test_a_database_from_a_newer_quorum_is_refused_and_left_as_it_is(database_url):
    db = await PostgresDatabase.open(database_url)
    await db.set_meta("kept", "yes")
    await db.close()
    with psycopg.connect(database_url, autocommit=True) as raw:
        raw.execute("UPDATE quorum_schema SET version = 99")
    with pytest.raises(RuntimeError, match=r"newer than this Quorum.*upgrade Quorum or restore a backup"):
        await PostgresDatabase.open(database_url)
    with psycopg.connect(database_url, autocommit=True) as raw:
        assert raw.execute("SELECT version FROM quorum_schema").fetchone()[0] == 99
        assert raw.execute("SELECT value FROM meta WHERE key = 'kept'").fetchone()[0] == "yes"


@on_postgresql
async def test_statements_of_a_batch_share_one_transaction_and_one_pipeline(open_db):
    db = await open_db()
    before = db.stats.transactions
    rows = await asyncio.gather(*(
        db.write_statement("INSERT INTO meta (key, value) VALUES (?, ?) RETURNING key", (f"k{i}", "v"))
        for i in range(40)
    ))
    assert [r["key"] for r in rows] == [f"k{i}" for i in range(40)]
    assert db.stats.transactions - before <= 2


@on_postgresql
async def test_a_pipelined_statement_that_raises_fails_alone_after_the_batch_is_run_again(open_db):
    """A statement must not raise, but if one does (a bug), the others of its batch still
    commit: the batch is rolled back and run again with a savepoint for each write."""
    db = await open_db()
    await db.set_meta("taken", "1")

    def plain(conn):
        conn.execute("INSERT INTO meta (key, value) VALUES ('plain', '1')")
        return "plain"

    results = await asyncio.gather(
        db.write_statement("INSERT INTO meta (key, value) VALUES ('a', '1') RETURNING key"),
        db.write_statement("INSERT INTO meta (key, value) VALUES ('taken', '2') RETURNING key"),
        db.write(plain),
        db.write_statement("INSERT INTO meta (key, value) VALUES ('c', '1') RETURNING key"),
        return_exceptions=True,
    )
    assert results[0]["key"] == "a" and results[2] == "plain" and results[3]["key"] == "c"
    assert isinstance(results[1], Exception)
    keys = [r[0] for r in await db.fetchall("SELECT key FROM meta ORDER BY key")]
    assert keys == ["a", "c", "plain", "taken"]
    assert await db.get_meta("taken") == "1"


def test_placeholders_and_percent_signs_are_translated():
    assert translate("SELECT ? WHERE a LIKE '%x' AND b = ?") == "SELECT %s WHERE a LIKE '%%x' AND b = %s"


@on_postgresql
async def test_a_literal_percent_sign_reaches_the_server_unchanged(open_db):
    db = await open_db()
    assert await db.fetchval("SELECT '100%' || ?", ("!",)) == "100%!"


def test_the_query_of_a_url_is_kept_byte_for_byte():
    """Decoding and encoding it again would turn %20 into +, which libpq reads as a plus."""
    url = connection_url("postgresql://u:p@h/db?options=-c%20statement_timeout%3D5000&x=a+b")
    assert url.startswith("postgresql://u:p@h/db?options=-c%20statement_timeout%3D5000&x=a+b&")
    assert with_query("postgresql:///db?options=old", options="-csearch_path=s") == (
        "postgresql:///db?options=-csearch_path%3Ds"
    )


@on_postgresql
async def test_a_server_option_in_the_url_reaches_the_server(database_url):
    schema = database_url.rsplit("search_path%3D", 1)[1].split("&")[0]
    base = database_url.split("?")[0]
    db = await PostgresDatabase.open(f"{base}?options=-csearch_path%3D{schema}%20-cstatement_timeout%3D4321")
    try:
        assert await db.fetchval("SHOW statement_timeout") == "4321ms"
    finally:
        await db.close()


def test_the_connection_names_quorum_and_gives_up_on_a_silent_server():
    url = connection_url("postgresql://u:p@h:5432/db?sslmode=require")
    assert url.startswith("postgresql://u:p@h:5432/db?") and "sslmode=require" in url
    assert "application_name=quorum" in url and "connect_timeout=10" in url
    assert connection_url("postgresql:///db").startswith("postgresql:///db?")  # Unix socket: no host
    assert "application_name=mine" in connection_url("postgresql:///db?application_name=mine")


@on_postgresql
async def test_a_batch_of_statements_only_that_raises_is_run_again_one_at_a_time(open_db):
    """The one-round-trip path (BEGIN, statements, COMMIT in one pipeline): a statement that
    raises leaves nothing of the batch stored, and the batch runs again with savepoints."""
    db = await open_db()
    await db.set_meta("taken", "1")
    results = await asyncio.gather(
        *(db.write_statement("INSERT INTO meta (key, value) VALUES (?, '1') RETURNING key", (f"k{i}",))
          for i in range(5)),
        db.write_statement("INSERT INTO meta (key, value) VALUES ('taken', '2') RETURNING key"),
        db.write_statement("INSERT INTO meta (key, value) VALUES ('last', '1') RETURNING key"),
        return_exceptions=True,
    )
    assert [r["key"] for r in results[:5]] == [f"k{i}" for i in range(5)] and results[6]["key"] == "last"
    assert isinstance(results[5], Exception)
    assert await db.fetchval("SELECT count(*) FROM meta") == 7


async def test_a_url_the_driver_cannot_parse_never_shows_its_password():
    """libpq quotes the token it could not parse: a mistyped password would be printed."""
    with pytest.raises(StorageUnavailable) as caught:
        await PostgresDatabase.open("postgresql://quorum:hunter%2Secret@127.0.0.1:1/quorum")
    assert "hunter" not in str(caught.value) and "Secret" not in str(caught.value)
    assert "127.0.0.1" in str(caught.value)
    assert caught.value.__cause__ is None and caught.value.__suppress_context__  # the driver's text stays out


@on_postgresql
async def test_an_error_outside_the_driver_leaves_no_write_of_its_batch_behind(open_db):
    """Any failure in the one-round-trip path rolls back: a write whose caller was told it
    failed must never be committed by the next batch."""
    db = await open_db()
    many = "SELECT 1 AS n, key FROM meta WHERE key = ALL(?::text[])"
    results = await asyncio.gather(
        db.write_statement("INSERT INTO meta (key, value) VALUES ('told-failed', '1') RETURNING key"),
        db.write_statement("SELECT 1", ("a",), many=many),
        db.write_statement("SELECT 1", ("a", "b"), many=many),  # parameter sets of two lengths
        return_exceptions=True,
    )
    assert all(isinstance(r, Exception) for r in results), results
    await db.set_meta("next", "1")
    assert await db.get_meta("told-failed") is None
    assert await db.get_meta("next") == "1"
