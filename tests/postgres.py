"""A PostgreSQL server for the tests, when there is one: each test gets its own schema.

The suite runs every behaviour test on both backends. The server is the one named by
QUORUM_TEST_DATABASE_URL, else the local one reached over its Unix socket as the current user
(`postgresql:///postgres`); with neither, the PostgreSQL runs skip and say how to enable them.
"""

from __future__ import annotations

import atexit
import functools
import os
import uuid
from collections.abc import Iterator
from contextlib import contextmanager

TEST_DATABASE = "quorum_test"
SKIP_REASON = (
    "no PostgreSQL server reachable: start one and set QUORUM_TEST_DATABASE_URL=postgresql://user:pass@host/db "
    "(a role that may create schemas), or run the tests as a user with a local PostgreSQL role "
    "(see the README, 'Tests on PostgreSQL')"
)


def _server_url() -> str:
    return os.environ.get("QUORUM_TEST_DATABASE_URL") or f"postgresql:///{TEST_DATABASE}"


@functools.cache
def available() -> str | None:
    """The URL of a usable test database, creating it on a local server if need be; else None."""
    try:
        import psycopg
    except ImportError:
        return None
    url = _server_url()
    try:
        psycopg.connect(url, connect_timeout=3).close()
        return url
    except psycopg.Error:
        if "QUORUM_TEST_DATABASE_URL" in os.environ:
            return None
    try:  # the local server is up but has no test database yet
        with psycopg.connect("postgresql:///postgres", connect_timeout=3, autocommit=True) as conn:
            conn.execute(f"CREATE DATABASE {TEST_DATABASE}")
        return url
    except psycopg.Error:
        return None


def with_search_path(url: str, schema: str) -> str:
    from bot.db_postgres import with_query

    return with_query(url, options=f"-csearch_path={schema}")


@contextmanager
def fresh_schema() -> Iterator[str]:
    """A URL whose connections see only a new, empty schema, dropped afterwards."""
    import psycopg

    base = available()
    assert base is not None
    schema = f"t_{uuid.uuid4().hex[:16]}"
    with psycopg.connect(base, autocommit=True) as conn:
        conn.execute(f"CREATE SCHEMA {schema}")
    try:
        yield with_search_path(base, schema)
    finally:
        with psycopg.connect(base, autocommit=True) as conn:
            conn.execute("SET lock_timeout = '20s'")  # a killed process's session may linger briefly
            conn.execute(f"DROP SCHEMA {schema} CASCADE")


# Migrated schemas handed back by finished tests, emptied, for the next test: migrating a new
# schema costs about 0.12 s, and the suite opens one for each of some 1,500 PostgreSQL runs.
_POOL: list[str] = []
_SIGNATURES: dict[str, str] = {}
# What a schema is made of (columns, defaults, triggers and whether they are enabled,
# functions' bodies, indexes, constraints), with its own name taken out: a schema a test
# changed (dropped a trigger, replaced a function) is not handed on.
_SIGNATURE = """
SELECT md5(replace(coalesce(string_agg(part, '|' ORDER BY part), ''), %(s)s || '.', '')) FROM (
    SELECT table_name || '.' || column_name || ':' || data_type || ':' || coalesce(column_default, '') AS part
      FROM information_schema.columns WHERE table_schema = %(s)s
    UNION ALL
    SELECT c.relname || ':' || t.tgname || ':' || t.tgenabled::text FROM pg_trigger t
      JOIN pg_class c ON c.oid = t.tgrelid JOIN pg_namespace n ON n.oid = c.relnamespace
     WHERE n.nspname = %(s)s AND NOT t.tgisinternal
    UNION ALL
    SELECT p.proname || ':' || md5(p.prosrc) FROM pg_proc p JOIN pg_namespace n ON n.oid = p.pronamespace
     WHERE n.nspname = %(s)s
    UNION ALL
    SELECT indexname || ':' || indexdef FROM pg_indexes WHERE schemaname = %(s)s
    UNION ALL
    SELECT c.conname || ':' || pg_get_constraintdef(c.oid) FROM pg_constraint c
      JOIN pg_namespace n ON n.oid = c.connamespace WHERE n.nspname = %(s)s
) AS parts
"""


def _migrated() -> str:
    import psycopg

    from bot.db_postgres import migrate

    base = available()
    assert base is not None
    schema = f"t_{uuid.uuid4().hex[:16]}"
    with psycopg.connect(base, autocommit=True) as conn:
        conn.execute(f"CREATE SCHEMA {schema}")
    with psycopg.connect(with_search_path(base, schema), autocommit=True) as conn:
        migrate(conn)
        _SIGNATURES.setdefault("migrated", conn.execute(_SIGNATURE, {"s": schema}).fetchone()[0])
    return schema


def _drop(schema: str) -> None:
    import psycopg

    base = available()
    assert base is not None
    with psycopg.connect(base, autocommit=True) as conn:
        conn.execute("SET lock_timeout = '20s'")  # a killed process's session may linger briefly
        conn.execute(f"DROP SCHEMA {schema} CASCADE")


def _recycle(schema: str) -> None:
    """Empty a test's schema and pool it, if it is still exactly what the migrations make;
    else (or if anything holds it) drop it."""
    import psycopg

    from bot.db import load_migrations

    base = available()
    assert base is not None
    try:
        with psycopg.connect(base, autocommit=True) as conn:
            conn.execute("SET lock_timeout = '2s'")
            if conn.execute(_SIGNATURE, {"s": schema}).fetchone()[0] != _SIGNATURES["migrated"]:
                raise LookupError("changed by the test")
            version = conn.execute(f"SELECT array_agg(version) FROM {schema}.quorum_schema").fetchone()[0]
            if version != [len(load_migrations("postgresql"))]:
                raise LookupError("its schema version was changed by the test")
            tables = [r[0] for r in conn.execute(
                "SELECT tablename FROM pg_tables WHERE schemaname = %s AND tablename <> 'quorum_schema'", (schema,))]
            with conn.transaction():
                conn.execute("TRUNCATE " + ", ".join(f"{schema}.{t}" for t in tables) + " RESTART IDENTITY CASCADE")
                conn.execute("SELECT pg_advisory_unlock_all()")
        _POOL.append(schema)
    except (psycopg.Error, LookupError):
        _drop(schema)


@atexit.register
def _drop_pool() -> None:
    while _POOL:
        try:
            _drop(_POOL.pop())
        except Exception:  # the server went away first: nothing left to tidy
            return


@contextmanager
def migrated_schema() -> Iterator[str]:
    """A URL whose connections see only a schema with Quorum's tables, all empty: what a bot
    starting on a new database sees once it has migrated. Faster than `fresh_schema`; tests
    of migrating itself use that one."""
    base = available()
    assert base is not None
    schema = _POOL.pop() if _POOL else _migrated()
    try:
        yield with_search_path(base, schema)
    finally:
        _recycle(schema)


class RawConnection:
    """A plain driver connection to a test's database, on either backend: no Quorum code in
    the way, so tests can prove what the schema itself refuses. Takes `?` placeholders."""

    def __init__(self, db) -> None:
        self.dialect = db.dialect
        if db.dialect == "sqlite":
            import sqlite3

            self._conn = sqlite3.connect(db.path, isolation_level=None)
            self._conn.execute("PRAGMA foreign_keys = ON")
        else:
            import psycopg

            self._conn = psycopg.connect(db.url, autocommit=True)

    def execute(self, sql: str, params=()):
        if self.dialect == "sqlite":
            return self._conn.execute(sql, params)
        from bot.db_postgres import translate

        return self._conn.execute(translate(sql), params or None)

    def close(self) -> None:
        self._conn.close()


def rule_errors() -> tuple[type[Exception], ...]:
    """What either driver raises when the schema refuses a write."""
    import sqlite3

    errors: list[type[Exception]] = [sqlite3.IntegrityError]
    try:
        import psycopg.errors

        errors += [psycopg.errors.IntegrityError, psycopg.errors.RaiseException]
    except ImportError:
        pass
    return tuple(errors)
