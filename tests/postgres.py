"""A PostgreSQL server for the tests, when there is one: each test gets its own schema.

The suite runs every behaviour test on both backends. The server is the one named by
QUORUM_TEST_DATABASE_URL, else the local one reached over its Unix socket as the current user
(`postgresql:///postgres`); with neither, the PostgreSQL runs skip and say how to enable them.
"""

from __future__ import annotations

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
