"""`run.py migrate-db`: copy an SQLite database into an empty PostgreSQL one, then prove the copy.

The source is only read (see `maintenance.read_only`). The target is migrated by Quorum's own
`PostgresDatabase.open`, so both sides have the same tables and columns, then every table is
streamed in with COPY, in ONE transaction for all tables: a failure or a mismatch at any point
rolls everything back, so the target is never left half-copied and the command can simply be run
again. The checks (row counts, every poll's tally) run inside that transaction, before COMMIT.
"""

from __future__ import annotations

import asyncio
import sqlite3
import time
from collections.abc import Iterable
from contextlib import closing
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import psycopg
from psycopg import sql

from .config import redact_url
from .db import load_migrations
from .db_postgres import PostgresDatabase, connection_url
from .maintenance import UnreadableDatabase, read_only
from .maintenance_postgres import Unreachable, connect_read_only, scrub, why_unreachable

# Parents before children, so every foreign key holds as rows arrive.
TABLES = (
    "polls", "poll_options", "votes", "ballots", "poll_jobs", "poll_edits",
    "meta", "articles", "article_urls", "article_failures", "feeds", "feed_items",
)
BATCH = 10_000  # rows read from SQLite at a time: memory stays flat however big the database
# Statements that read the same on both engines: votes per answer, and members who voted.
_OPTION_COUNTS = "SELECT poll_id, option, count(*) FROM votes GROUP BY poll_id, option"
_VOTERS = "SELECT poll_id, count(DISTINCT user_id) FROM votes GROUP BY poll_id"
# Ranked polls: how many ballots hold each ranking, per poll.
_RANKINGS = "SELECT poll_id, ranking, count(*) FROM ballots GROUP BY poll_id, ranking"
# Feeds: how many items each has in each state (a 'posted' lost in the copy would post again).
_FEED_STATES = "SELECT feed_id, state, count(*) FROM feed_items GROUP BY feed_id, state"

Tally = tuple[tuple[tuple[int, int], ...], int]  # ((option, votes), ...), voters


class MigrationError(Exception):
    """The copy was refused or failed; the message says why (no password in it)."""


@dataclass
class MigrationReport:
    source: Path
    target: str  # redacted
    counts: dict[str, tuple[int, int]] = field(default_factory=dict)  # table: (source rows, target rows)
    tallies: int = 0  # polls whose tally matched
    differences: list[str] = field(default_factory=list)
    seconds: float = 0.0

    @property
    def ok(self) -> bool:
        return not self.differences

    def lines(self) -> list[str]:
        width = max(map(len, self.counts), default=0)
        out = [f"Copied {self.source} to {self.target}:" if self.ok else f"Copying {self.source} to {self.target}:"]
        out += [f"  {table:<{width}}  {source:>9,} rows" for table, (source, _) in self.counts.items()]
        if self.ok:
            out.append(f"Verified: row counts equal, {self.tallies:,} tallies match; took {self.seconds:.1f} s.")
        else:
            out += [f"MISMATCH {difference}" for difference in self.differences]
            out.append("Nothing was committed: the target holds no rows (fix the cause and run migrate-db again).")
        return out


def migrate_database(source: Path, url: str) -> MigrationReport:
    """Copy `source` into the empty database at `url` and verify it; MigrationError if refused."""
    if not url.startswith(("postgresql://", "postgres://")):
        raise MigrationError(f"--to {redact_url(url)} must start with postgresql:// or postgres://")
    started = time.perf_counter()
    report = MigrationReport(source, redact_url(url))
    try:
        with read_only(source) as src:
            src.execute("BEGIN")  # one read snapshot for the copy and its checks
            _check_source(src)
            _probe_target(url)  # before migrating it: a refused target is left exactly as it was
            try:
                asyncio.run(_migrate_schema(url))
            except psycopg.Error as error:
                raise MigrationError(scrub(f"could not create Quorum's tables in the target: {error}", url)) from None
            with closing(_connect(url)) as dst:
                _copy(src, dst, report)
    except UnreadableDatabase as error:
        raise MigrationError(f"cannot read {source}: {error}") from None
    except sqlite3.Error as error:
        raise MigrationError(f"cannot read {source}: {error}") from None
    except Unreachable as error:
        raise MigrationError(str(error)) from None
    except psycopg.Error as error:
        raise MigrationError(scrub(f"the copy failed, nothing was committed: {error}", url)) from None
    report.seconds = time.perf_counter() - started
    return report


def _connect(url: str) -> psycopg.Connection[Any]:
    try:
        return psycopg.connect(connection_url(url, application_name="quorum-migrate-db"), autocommit=True)
    except psycopg.Error as error:
        raise Unreachable(why_unreachable(error, url)) from None


def _check_source(src: Any) -> None:
    version = int(src.execute("PRAGMA user_version").fetchone()[0])
    newest = len(load_migrations("sqlite"))
    if version < newest:
        raise MigrationError(
            f"the source is at schema version {version}, this Quorum's is {newest}: start Quorum once on it "
            "(it migrates the database when it starts), stop it, then run migrate-db again"
        )
    if version > newest:
        raise MigrationError(f"the source is at schema version {version}, newer than this Quorum ({newest}): upgrade")


def _probe_target(url: str) -> None:
    with closing(connect_read_only(url, application_name="quorum-migrate-db")) as conn:
        _refuse_unless_empty(conn)


def _refuse_unless_empty(conn: psycopg.Connection[Any]) -> None:
    """Empty = nothing but what Quorum's migrations create: no schema yet, or the newest, no rows."""
    newest = len(load_migrations("postgresql"))
    version: int | None = None
    if _value(conn, "SELECT to_regclass('quorum_schema')") is not None:
        version = int(_value(conn, "SELECT coalesce(max(version), 0) FROM quorum_schema"))
    if version not in (None, 0, newest):
        raise MigrationError(
            f"the target is at schema version {version} (this Quorum's is {newest}): migrate-db copies only into "
            "an empty database; name a new one"
        )
    existing = [t for t in TABLES if _value(conn, "SELECT to_regclass(%s)", (t,)) is not None]
    if version is None and existing:
        raise MigrationError(f"the target already has tables named {', '.join(existing)}, not made by Quorum")
    full = [t for t in existing if _value(conn, sql.SQL("SELECT EXISTS (SELECT 1 FROM {})").format(sql.Identifier(t)))]
    if full:
        raise MigrationError(
            f"the target is not empty: it already has rows in {', '.join(full)}; migrate-db copies only into an "
            "empty database (nothing copied, nothing changed)"
        )


def _value(conn: Any, statement: Any, params: tuple[Any, ...] = ()) -> Any:
    """The first column of the first row, on either driver."""
    return conn.execute(statement, params).fetchone()[0]


async def _migrate_schema(url: str) -> None:
    # The bot's own start-up path: the same migrations, the same lock against a concurrent start.
    db = await PostgresDatabase.open(url)
    await db.close()


def _columns_sqlite(src: Any, table: str) -> list[str]:
    return [row[1] for row in src.execute(f"PRAGMA table_info({table})")]


def _columns_postgres(dst: psycopg.Connection[Any], table: str) -> set[str]:
    rows = dst.execute(
        "SELECT column_name FROM information_schema.columns WHERE table_schema = current_schema() "
        "AND table_name = %s",
        (table,),
    ).fetchall()
    return {row[0] for row in rows}


def _copy(src: Any, dst: psycopg.Connection[Any], report: MigrationReport) -> None:
    with dst.transaction():
        # Nobody else writes until COMMIT; and a bot started on the target meanwhile is caught here.
        dst.execute(sql.SQL("LOCK TABLE {} IN ACCESS EXCLUSIVE MODE").format(
            sql.SQL(", ").join(map(sql.Identifier, TABLES))))
        _refuse_unless_empty(dst)
        # The vote trigger refuses votes on closed polls (and checks each row's poll): the source
        # already held those rules, and its closed polls' votes must come along. Foreign keys stay on.
        dst.execute("ALTER TABLE votes DISABLE TRIGGER votes_rules")
        dst.execute("ALTER TABLE ballots DISABLE TRIGGER ballots_rules")
        for table in TABLES:
            columns = _columns_sqlite(src, table)
            if set(columns) != _columns_postgres(dst, table):
                raise MigrationError(f"table {table} has other columns on the two sides: is the target Quorum's?")
            _copy_table(src, dst, table, columns)
        dst.execute("ALTER TABLE votes ENABLE TRIGGER votes_rules")
        dst.execute("ALTER TABLE ballots ENABLE TRIGGER ballots_rules")
        # Ids were copied explicitly: the next poll (edit, feed, item) the bot stores must get a new one.
        for table in ("polls", "poll_edits", "feeds", "feed_items"):
            dst.execute(sql.SQL(
                "SELECT setval(pg_get_serial_sequence({}, 'id'), coalesce(max(id), 0) + 1, false) FROM {}"
            ).format(sql.Literal(table), sql.Identifier(table)))
        report.differences = _verify(src, dst, report)
        if report.differences:
            raise psycopg.Rollback()


def _copy_table(src: Any, dst: psycopg.Connection[Any], table: str, columns: list[str]) -> None:
    listed = ", ".join(f'"{c}"' for c in columns)
    statement = sql.SQL("COPY {} ({}) FROM STDIN").format(
        sql.Identifier(table), sql.SQL(", ").join(map(sql.Identifier, columns)))
    rows = src.execute(f"SELECT {listed} FROM {table}")
    with dst.cursor() as cursor, cursor.copy(statement) as copy:
        while batch := rows.fetchmany(BATCH):
            for row in batch:
                copy.write_row(row)


def _verify(src: Any, dst: psycopg.Connection[Any], report: MigrationReport) -> list[str]:
    differences: list[str] = []
    for table in TABLES:
        ours, theirs = (int(_value(conn, f"SELECT count(*) FROM {table}")) for conn in (src, dst))
        report.counts[table] = (ours, theirs)
        if ours != theirs:
            differences.append(f"{table}: {ours:,} rows in the source, {theirs:,} in the target")
    polls = [row[0] for row in src.execute("SELECT id FROM polls ORDER BY id")]
    before, after = _tallies(src.execute(_OPTION_COUNTS), src.execute(_VOTERS)), _tallies(
        dst.execute(_OPTION_COUNTS), dst.execute(_VOTERS))
    wrong = [poll for poll in polls if before.get(poll, ((), 0)) != after.get(poll, ((), 0))]
    wrong += sorted(set(after) - set(polls))  # votes for a poll the source does not have
    differences += [f"poll id {poll}: {_shown(before.get(poll))} in the source, {_shown(after.get(poll))} in the target"
                    for poll in wrong[:20]]
    if len(wrong) > 20:
        differences.append(f"... and {len(wrong) - 20} more polls whose tallies differ")
    ours, theirs = (_rankings(conn.execute(_RANKINGS)) for conn in (src, dst))
    ranked_wrong = sorted(p for p in set(ours) | set(theirs) if ours.get(p) != theirs.get(p))
    differences += [
        f"poll id {poll}: {sum(ours.get(poll, {}).values()):,} ballots in the source, "
        f"{sum(theirs.get(poll, {}).values()):,} (or other rankings) in the target"
        for poll in ranked_wrong[:20]
    ]
    wrong += [poll for poll in ranked_wrong if poll not in wrong]
    report.tallies = len(polls) - len(wrong)
    ours, theirs = (_feed_states(conn.execute(_FEED_STATES)) for conn in (src, dst))
    differences += [
        f"feed id {feed}: items by state {ours.get(feed, {})} in the source, {theirs.get(feed, {})} in the target"
        for feed in sorted(f for f in set(ours) | set(theirs) if ours.get(f) != theirs.get(f))[:20]
    ]
    return differences


def _tallies(option_counts: Iterable[Any], voters: Iterable[Any]) -> dict[int, Tally]:
    options: dict[int, list[tuple[int, int]]] = {}
    for poll, option, count in option_counts:
        options.setdefault(int(poll), []).append((int(option), int(count)))
    return {int(poll): (tuple(sorted(options.get(int(poll), []))), int(count)) for poll, count in voters}


def _rankings(rows: Iterable[Any]) -> dict[int, dict[str, int]]:
    out: dict[int, dict[str, int]] = {}
    for poll, ranking, count in rows:
        out.setdefault(int(poll), {})[str(ranking)] = int(count)
    return out


def _feed_states(rows: Iterable[Any]) -> dict[int, dict[str, int]]:
    out: dict[int, dict[str, int]] = {}
    for feed, state, count in rows:
        out.setdefault(int(feed), {})[str(state)] = int(count)
    return out


def _shown(tally: Tally | None) -> str:
    if tally is None:
        return "no votes"
    counts, voters = tally
    return f"votes per answer {dict(counts)}, {voters} voters"
