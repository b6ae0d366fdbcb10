"""`run.py check` and `run.py backup` when DATABASE_URL names a PostgreSQL database.

`check` only reads, on a connection the server itself keeps read-only, so it can never create,
migrate or change anything. `backup` runs pg_dump, with the password in its environment: on its
command line, `ps` would show it to every user of the machine.
"""

from __future__ import annotations

import os
import shutil
import subprocess
from contextlib import closing
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import unquote, urlsplit

import psycopg
from psycopg.conninfo import conninfo_to_dict, make_conninfo

from .config import redact_url
from .db import load_migrations
from .maintenance import COUNTS, BackupError, schema_note, staged

CONNECT_TIMEOUT = "10"
# What to do about the failures a maintainer meets most (libpq already adds hints to others).
_HINTS = {
    "password authentication failed": "check the user name and password in the URL",
    "does not exist": "check the database (or user) name in the URL",
}


class Unreachable(Exception):
    """No connection: the message says why, password hidden."""


def scrub(text: str, url: str) -> str:
    """`text` (a driver's message) with the URL and its password hidden, whatever it quotes."""
    text = text.replace(url, redact_url(url))
    try:
        password = urlsplit(url).password
    except ValueError:
        password = None
    for secret in {password, unquote(password or "")} - {None, ""}:
        text = text.replace(str(secret), "***")
    return text


def connection_params(url: str) -> dict[str, Any]:
    """libpq's parameters for `url`; an Unreachable if it is no valid connection URL."""
    try:
        return conninfo_to_dict(url)
    except psycopg.Error as error:
        raise Unreachable(f"not a valid connection URL: {scrub(str(error), url)}") from None


def connect_read_only(url: str, *, application_name: str = "quorum-check") -> psycopg.Connection[Any]:
    """A connection on which the server refuses every write, from its very first statement."""
    params = connection_params(url)
    # Added to the URL's own options (a search_path, say) rather than replacing them.
    params["options"] = f"{params.get('options', '')} -c default_transaction_read_only=on".strip()
    params.setdefault("application_name", application_name)
    params.setdefault("connect_timeout", CONNECT_TIMEOUT)
    try:
        return psycopg.connect(**params, autocommit=True)
    except psycopg.Error as error:
        raise Unreachable(why_unreachable(error, url)) from None


def why_unreachable(error: psycopg.Error, url: str) -> str:
    message = str(error).removeprefix("connection failed: ").strip()
    message = "; ".join(line.strip() for line in message.splitlines() if line.strip())  # one line of output
    hint = next((h for key, h in _HINTS.items() if key in message), None)
    return scrub(f"cannot connect: {message}" + (f" ({hint})" if hint else ""), url)


@dataclass
class PostgresReport:
    problem: str | None = None  # why the database could not be checked at all
    server: str = ""
    schema: str | None = None  # where Quorum's tables are (the first schema of the search_path)
    schema_version: int = 0
    polls: int | None = None  # None: no polls tables yet
    open_polls: int = 0
    votes: int = 0

    def verdict(self) -> tuple[bool, str]:
        """Whether `check` passes, and what it says after the (redacted) URL; as for SQLite."""
        if self.problem is not None:
            return False, self.problem
        if self.schema is None:
            return False, f"reachable ({self.server}), but its search_path names no existing schema to use"
        shipped = len(load_migrations("postgresql"))
        text = f"reachable ({self.server}), schema {self.schema}, schema version {self.schema_version}"
        if self.polls is not None:
            text += f"; {self.polls} polls ({self.open_polls} open), {self.votes} votes"
        else:
            text += "; no polls tables yet"
        return self.schema_version <= shipped, text + schema_note(self.schema_version, shipped)


def check_postgres(url: str) -> PostgresReport:
    """Reach the database, read its schema version and counts; never create or migrate anything."""
    try:
        with closing(connect_read_only(url)) as conn:
            return _read(conn)
    except Unreachable as error:
        return PostgresReport(problem=str(error))
    except psycopg.Error as error:  # e.g. no permission to read the tables
        return PostgresReport(problem=scrub(f"cannot read it: {error}", url))


def _read(conn: psycopg.Connection[Any]) -> PostgresReport:
    version = conn.info.server_version  # 150018 for 15.18
    report = PostgresReport(server=f"PostgreSQL {version // 10000}.{version % 10000}")
    report.schema, has_version, has_polls = conn.execute(
        "SELECT current_schema(), to_regclass('quorum_schema') IS NOT NULL, "
        "to_regclass('polls') IS NOT NULL AND to_regclass('votes') IS NOT NULL"
    ).fetchone() or (None, False, False)
    if has_version:
        row = conn.execute("SELECT version FROM quorum_schema").fetchone()
        report.schema_version = 0 if row is None else int(row[0])
    if has_polls:
        report.polls, report.open_polls, report.votes = conn.execute(COUNTS).fetchone() or (0, 0, 0)
    return report


@dataclass
class PostgresBackup:
    path: Path
    polls: int | None  # None: no polls tables yet
    votes: int


def backup_postgres(url: str, target: Path) -> PostgresBackup:
    """`pg_dump --format=custom` of Quorum's database to `target`, written beside it and renamed
    into place once complete; a failure raises BackupError and leaves nothing behind. Restore
    with `pg_restore --no-owner --dbname URL TARGET`."""
    pg_dump = shutil.which("pg_dump")
    if pg_dump is None:
        raise BackupError(
            "pg_dump is not installed (it comes with PostgreSQL's client tools, e.g. apt install postgresql-client; "
            "its major version must be at least the server's)"
        )
    try:
        params = connection_params(url)
        password = params.pop("password", None)
        if "sslpassword" in params:
            raise BackupError("pg_dump cannot be given sslpassword without showing it in `ps`: use a key without one")
        env = dict(os.environ, **({"PGPASSWORD": password} if password else {}))
        with closing(connect_read_only(url, application_name="quorum-backup")) as conn, conn.transaction():
            # The counts and the dump read one snapshot: the report says what the file holds.
            conn.execute("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ")
            snapshot, schema, has_polls = conn.execute(
                "SELECT pg_export_snapshot(), current_schema(), to_regclass('polls') IS NOT NULL"
            ).fetchone() or (None, None, False)
            polls: int | None = None
            votes = 0
            if has_polls:
                polls, _, votes = conn.execute(COUNTS).fetchone() or (0, 0, 0)
            command = [pg_dump, "--format=custom", "--no-password", f"--snapshot={snapshot}",
                       f"--dbname={make_conninfo('', **params)}"]
            if schema is not None and "search_path" in params.get("options", ""):
                # pg_dump ignores the search_path: without --schema it dumps every schema of the database.
                command.append('--schema="{}"'.format(schema.replace('"', '""')))
            with staged(target) as partial:
                done = subprocess.run(
                    [*command, f"--file={partial}"], env=env, stdin=subprocess.DEVNULL, capture_output=True, text=True
                )
                if done.returncode != 0:
                    raise BackupError(scrub(f"pg_dump failed: {done.stderr.strip() or done.returncode}", url))
                partial.replace(target)
    except Unreachable as error:
        raise BackupError(str(error)) from None
    except psycopg.Error as error:
        raise BackupError(scrub(f"cannot read {redact_url(url)}: {error}", url)) from None
    except OSError as error:
        raise BackupError(f"could not write {target}: {error.strerror or error}") from error
    return PostgresBackup(target, polls, votes)
