"""`run.py migrate-db`: an SQLite database copied into an empty PostgreSQL one, and proved equal."""

from __future__ import annotations

import asyncio
import re
import sqlite3
import subprocess
import sys
import time
from contextlib import closing
from pathlib import Path
from typing import Any

import psycopg
import pytest
from test_maintenance import (
    ROOT,
    SECRET,
    assert_secret_hidden,
    clean_env,
    crash_left_wal,
    password_url,  # noqa: F401  (a fixture)
    snapshot,
)

from bot.articles.repository import ArticleCache
from bot.db import load_migrations
from bot.db_postgres import PostgresDatabase
from bot.db_sqlite import SqliteDatabase
from bot.feeds.models import FeedItem
from bot.feeds.repository import FeedRepository, NewFeed
from bot.migrate_db import TABLES, MigrationError, migrate_database
from bot.polls.models import PollClosed, PollDraft
from bot.polls.repository import PollRepository


@pytest.fixture
def database_url(empty_database_url):
    """These tests look at what migrating does (or check and copy an empty database): each
    gets a schema with nothing in it, not the suite's migrated ones."""
    return empty_database_url

pytestmark = pytest.mark.parametrize("backend", ["postgresql"], indirect=True)

GUILD, OTHER_GUILD = 1_100_000_000_000_000_001, 1_100_000_000_000_000_002  # snowflake-sized
# Tabs, newlines, backslashes and non-ASCII: what COPY's text format must escape.
QUESTION = "Lunch\tor dinner?\nC:\\menu \\N «🍕»"
KEYS = {
    "polls": "id", "poll_options": "poll_id, position", "votes": "poll_id, user_id, slot", "meta": "key",
    "articles": "canonical_url", "article_urls": "url", "article_failures": "url",
    "ballots": "poll_id, user_id", "poll_jobs": "poll_id, kind", "poll_edits": "id",
    "feeds": "id", "feed_items": "id",
}


async def build_with_quorum(path: Path) -> None:
    """Everything Quorum stores, written through its own repositories."""
    now = time.time()
    async with await SqliteDatabase.open(path) as db:
        repo, cache = PollRepository(db), ArticleCache(db)
        single = await repo.create(PollDraft(QUESTION, ("Soup", "Salad \\ bar", "Pie\tà la mode")), guild_id=GUILD,
                                   channel_id=5, creator_id=7, now=now)
        await repo.attach_message(single.id, 9_000_000_000_000_000_001)
        gone = await repo.create(PollDraft("Never posted", ("A", "B")), guild_id=GUILD, channel_id=5, creator_id=7,
                                 now=now)
        await repo.discard_unposted(gone.id)  # a gap in the ids, which must be kept
        multi = await repo.create(
            PollDraft("Toppings?", ("Cheese", "Ham", "Olives", "Basil"), duration=3600, multiple=True,
                      anonymous=True, hide_results=True, role_id=1_200_000_000_000_000_003, max_choices=2),
            guild_id=GUILD, channel_id=5, creator_id=8, now=now,
        )
        other = await repo.create(PollDraft("Other server?", ("Yes", "No")), guild_id=OTHER_GUILD, channel_id=6,
                                  creator_id=9, now=now)
        await repo.attach_message(multi.id, 9_000_000_000_000_000_003)
        await repo.attach_message(other.id, 9_000_000_000_000_000_004)
        for user in range(30):
            await repo.cast_vote(single, 1_000_000_000_000_000_000 + user, user % 3, now=now + user)
        for user in range(20):
            for option in (user % 4, (user + 1) % 4):
                await repo.cast_vote(multi, 2_000 + user, option, now=now)
        for user in range(5):
            await repo.cast_vote(other, 3_000 + user, user % 2, now=now)
        # Closed and announced; closed, claimed, not yet announced; the single choice poll stays open.
        assert await repo.close(multi.id, now=now + 10, closed_by=None)
        assert await repo.claim_announcement(multi.id, owner="shard-0", now=now + 11)
        assert await repo.mark_announce_started(multi.id, owner="shard-0", now=now + 11)
        await repo.mark_announced(multi.id, message_id=9_000_000_000_000_000_002, now=now + 12)
        assert await repo.close(other.id, now=now + 10, closed_by=9)
        assert await repo.claim_announcement(other.id, owner="shard-0", now=now + 11)
        # Ranked ballots (of a poll that then closed: the target's rules must let them in), a
        # scheduled poll's post job, a reminder job and an edit: rows of every table of 0005.
        ranked = await repo.create(PollDraft("Rank the talks", ("Rust", "Go", "Zig"), ranked=True, quorum=3,
                                             duration=7200, remind=600), guild_id=GUILD, channel_id=5, creator_id=7,
                                   now=now)
        await repo.attach_message(ranked.id, 9_000_000_000_000_000_005)

        def ranked_rows(conn):
            conn.executemany(
                "INSERT INTO ballots (poll_id, user_id, ranking, first_choice, cast_at) VALUES (?, ?, ?, ?, ?)",
                [(ranked.id, 4_000 + u, ",".join(map(str, order)), order[0], now + u)
                 for u, order in enumerate([(0, 2), (1,), (2, 0, 1), (0,)])],
            )
            conn.execute("INSERT INTO poll_edits (poll_id, edited_at, user_id, change) VALUES (?, ?, ?, ?)",
                         (ranked.id, now + 5, 7, "added answer 4: «Odin»\tand a tab"))

        await db.write(ranked_rows)
        assert await repo.close(ranked.id, now=now + 10, closed_by=7)
        await repo.create(PollDraft("Weekly check-in", ("Good", "Busy"), duration=3600, starts_at=now + 3600,
                                    repeat=7 * 86_400), guild_id=GUILD, channel_id=5, creator_id=7, now=now)
        await db.set_meta("command_hash:global", "3f9a…")
        await db.set_meta(f"command_hash:guild:{GUILD}", "77b0")
        await cache.put("https://example.com/a?utm=x", "https://example.com/a",
                        {"title": "Ünïcode\tand \\ slashes", "text": "line\nline"}, max_age=86_400, now=now)
        await cache.put_failure(["https://bad.example/1", "https://bad.example/2"], "No article on this page.",
                                max_age=600, now=now)
        # A followed feed: its baseline item ('seen') and one found by a check ('pending').
        feeds = FeedRepository(db)
        feed = (await feeds.create(
            NewFeed(GUILD, 5, "https://news.example/feed", "https://news.example/", "Ünïcode\tnews", 7, '"e\\tag"',
                    None, now), [FeedItem("guid\t1", "Old", None, None, None)], now=now, max_feeds=50)).feed
        await feeds.claim_checks(owner="shard-0", now=now, lease=300, limit=1)
        await feeds.record_loaded(feed.id, owner="shard-0", now=now, next_check_at=now + 600, etag=None,
                                  last_modified=None, title="", max_posts=5, items=[
                                      FeedItem("guid\t2", "New\\one", "https://news.example/2", "line\nline", None),
                                      FeedItem("guid\t1", "Old", None, None, None)])


def build(path: Path) -> Path:
    asyncio.run(build_with_quorum(path))
    return path


def sqlite_rows(path: Path, table: str) -> list[tuple[Any, ...]]:
    with closing(sqlite3.connect(path)) as conn:
        columns = [r[1] for r in conn.execute(f"PRAGMA table_info({table})")]
        return conn.execute(f"SELECT {', '.join(columns)} FROM {table} ORDER BY {KEYS[table]}").fetchall()


def postgres_rows(url: str, source: Path, table: str) -> list[tuple[Any, ...]]:
    with closing(sqlite3.connect(source)) as conn:
        columns = [r[1] for r in conn.execute(f"PRAGMA table_info({table})")]
    with psycopg.connect(url) as conn:
        return conn.execute(f"SELECT {', '.join(columns)} FROM {table} ORDER BY {KEYS[table]}").fetchall()


def everything(url: str) -> dict[str, list[tuple[Any, ...]]]:
    """Every row of every table (and the schema version) of a PostgreSQL database."""
    with psycopg.connect(url) as conn:
        tables = [r[0] for r in conn.execute(
            "SELECT table_name FROM information_schema.tables WHERE table_schema = current_schema()")]
        return {t: sorted(conn.execute(f"SELECT * FROM {t}").fetchall(), key=repr) for t in tables}


async def test_a_database_built_by_quorum_is_copied_whole_and_verified(tmp_path, database_url):
    source = tmp_path / "q.sqlite3"
    await build_with_quorum(source)
    before = snapshot(tmp_path)
    report = await asyncio.to_thread(migrate_database, source, database_url)
    assert report.ok, report.lines()
    assert report.tallies == 5
    assert all(rows > 0 and rows == copied for rows, copied in report.counts.values()), report.counts
    assert set(report.counts) == set(TABLES)
    for table in TABLES:  # not only the counts: every row, every value
        assert postgres_rows(database_url, source, table) == sqlite_rows(source, table), table
    assert snapshot(tmp_path) == before  # the source: same bytes, same mtime, no -wal or -shm made


async def test_the_bot_reads_the_migrated_data_and_goes_on_from_it(tmp_path, database_url):
    source = tmp_path / "q.sqlite3"
    await build_with_quorum(source)
    async with await SqliteDatabase.open(source) as db:
        old = PollRepository(db)
        old_polls = [await old.get_by_number(GUILD, n) for n in (1, 2)]
        assert None not in old_polls
        old_tallies = [await old.tally(p) for p in old_polls if p is not None]
    top_id = max(r[0] for r in sqlite_rows(source, "polls"))
    assert (await asyncio.to_thread(migrate_database, source, database_url)).ok

    async with await PostgresDatabase.open(database_url) as db:
        repo = PollRepository(db)
        polls = [await repo.get_by_number(GUILD, n) for n in (1, 2)]
        assert polls == old_polls
        assert [await repo.tally(p) for p in polls if p is not None] == old_tallies
        assert await db.get_meta("command_hash:global") == "3f9a…"  # no needless command sync after the move
        new = await repo.create(PollDraft("After the move?", ("Yes", "No")), guild_id=GUILD, channel_id=5,
                                creator_id=7, now=time.time())
        assert new.id > top_id and new.number == 5  # after 1–4 (the ranked and the scheduled poll)
        assert (await repo.create(PollDraft("There too?", ("Yes", "No")), guild_id=OTHER_GUILD, channel_id=6,
                                  creator_id=9, now=time.time())).number == 2
        closed = polls[1]
        assert closed is not None and not closed.is_open and closed.announced_at is not None
        with pytest.raises(PollClosed):  # the vote rules hold again after the copy
            await repo.cast_vote(closed, 4_000, 0, now=time.time())
        ranked = await repo.get_by_number(GUILD, 3)
        assert ranked is not None and ranked.ranked and ranked.quorum == 3 and ranked.remind_before == 600

        def ballot(conn):  # the ballot rules hold again too: the ranked poll is closed
            conn.execute("INSERT INTO ballots (poll_id, user_id, ranking, first_choice, cast_at)"
                         " VALUES (?, 1, '0', 0, 0)", (ranked.id,))

        with pytest.raises(Exception, match="poll_closed"):
            await db.write(ballot)

        feeds = FeedRepository(db)  # the feed goes on: its pending item, a new feed's fresh ids
        [feed] = await feeds.list(GUILD)
        assert [(i.item.key, i.state) for i in await feeds.items(feed.id)] == [
            ("guid\t1", "seen"), ("guid\t2", "pending")]
        added = (await feeds.create(NewFeed(GUILD, 5, "https://other.example/feed", None, "", 7, None, None, 0.0),
                                    [FeedItem("x", None, None, None, None)], now=time.time(), max_feeds=50)).feed
        assert added.id > feed.id and added.number == 2


async def test_100000_votes_are_copied_and_verified(tmp_path, database_url, record_property):
    source = tmp_path / "big.sqlite3"
    async with await SqliteDatabase.open(source) as db:
        repo = PollRepository(db)
        polls = [await repo.create(PollDraft(f"Poll {n}?", ("A", "B", "C", "D"), multiple=n % 2 == 1),
                                   guild_id=GUILD + n % 3, channel_id=5, creator_id=7, now=time.time())
                 for n in range(10)]
    rows = []
    for poll in polls:  # 10,000 votes each: single choice in slot 0, multiple choice slot = answer
        for user in range(10_000 if not poll.multiple else 5_000):
            picks = (user % 4,) if not poll.multiple else (user % 4, (user + 1) % 4)
            rows += [(poll.id, 10**17 + user, option if poll.multiple else 0, option, 1.7e9 + user) for option in picks]
    with closing(sqlite3.connect(source, isolation_level=None)) as conn:
        conn.execute("BEGIN")
        conn.executemany("INSERT INTO votes (poll_id, user_id, slot, option, voted_at) VALUES (?, ?, ?, ?, ?)", rows)
        conn.execute("COMMIT")
    assert len(rows) == 100_000

    started = time.perf_counter()
    report = await asyncio.to_thread(migrate_database, source, database_url)
    seconds = time.perf_counter() - started
    record_property("migrate_100000_votes_seconds", round(seconds, 2))
    print(f"\nmigrate-db copied and verified 100,000 votes in {seconds:.2f} s (report: {report.seconds:.2f} s)")
    assert report.ok, report.lines()
    assert report.counts["votes"] == (100_000, 100_000) and report.tallies == 10


def quorum_row(url: str, kind: str) -> None:
    async def write() -> None:
        async with await PostgresDatabase.open(url) as db:
            if kind == "meta":  # a bot that only ever synced its commands here
                await db.set_meta("command_hash:global", "abc")
            else:
                await PollRepository(db).create(PollDraft("Here already?", ("Yes", "No")), guild_id=GUILD,
                                                channel_id=5, creator_id=7, now=time.time())

    asyncio.run(write())


@pytest.mark.parametrize("kind", ["meta", "poll"])
def test_a_target_with_rows_is_refused_and_left_as_it_was(tmp_path, database_url, kind):
    source = build(tmp_path / "q.sqlite3")
    quorum_row(database_url, kind)
    before = everything(database_url)
    with pytest.raises(MigrationError, match="the target is not empty: it already has rows in"):
        migrate_database(source, database_url)
    assert everything(database_url) == before


def test_a_target_at_another_schema_version_is_refused_before_anything_is_migrated(tmp_path, database_url):
    source = build(tmp_path / "q.sqlite3")
    with psycopg.connect(database_url, autocommit=True) as conn:  # as an older Quorum left it
        conn.execute("CREATE TABLE quorum_schema (version integer NOT NULL)")
        conn.execute("INSERT INTO quorum_schema VALUES (1)")
        conn.execute(load_migrations("postgresql")[0].sql)
    before = everything(database_url)
    with pytest.raises(MigrationError, match="the target is at schema version 1"):
        migrate_database(source, database_url)
    assert everything(database_url) == before


def test_a_source_at_an_older_schema_version_is_refused(tmp_path, database_url):
    source = tmp_path / "old.sqlite3"
    with closing(sqlite3.connect(source)) as conn:
        conn.executescript(load_migrations()[0].sql + "\nPRAGMA user_version = 1;")
    before = snapshot(tmp_path)
    with pytest.raises(MigrationError, match="start Quorum once on it"):
        migrate_database(source, database_url)
    assert everything(database_url) == {}  # the target was not even migrated
    assert snapshot(tmp_path) == before


def test_a_crash_left_wal_is_copied_without_touching_the_source(tmp_path, database_url):
    source = crash_left_wal(tmp_path / "q.sqlite3")
    before = snapshot(tmp_path)
    report = migrate_database(source, database_url)
    assert report.ok and report.counts["votes"] == (2, 2)
    with psycopg.connect(database_url) as conn:
        assert conn.execute("SELECT value FROM meta WHERE key = 'crash'").fetchone() == ("left in the wal",)
    assert snapshot(tmp_path) == before  # no -shm made beside it, the -wal as it was


def test_a_mismatch_is_reported_and_nothing_is_committed(tmp_path, database_url, monkeypatch):
    import bot.migrate_db as migrate_db

    source = build(tmp_path / "q.sqlite3")
    real = migrate_db._copy_table

    def lossy(src, dst, table, columns):  # a copy that drops the last vote: what verification is for
        real(src, dst, table, columns)
        if table == "votes":
            dst.execute("DELETE FROM votes WHERE poll_id = 1 AND user_id = (SELECT max(user_id) FROM votes "
                        "WHERE poll_id = 1)")

    monkeypatch.setattr(migrate_db, "_copy_table", lossy)
    report = migrate_database(source, database_url)
    assert not report.ok
    text = "\n".join(report.lines())
    assert "MISMATCH votes: 75 rows in the source, 74 in the target" in text, text
    assert "MISMATCH poll id 1: votes per answer {0: 10, 1: 10, 2: 10}, 30 voters in the source, " in text
    assert "{0: 10, 1: 10, 2: 9}, 29 voters in the target" in text and "Nothing was committed" in text
    assert all(not rows for table, rows in everything(database_url).items() if table != "quorum_schema")


def test_a_ballot_changed_in_transit_is_found_and_nothing_is_committed(tmp_path, database_url, monkeypatch):
    import bot.migrate_db as migrate_db

    source = build(tmp_path / "q.sqlite3")
    real = migrate_db._copy_table

    def reordering(src, dst, table, columns):  # same row count, one ranking reordered
        real(src, dst, table, columns)
        if table == "ballots":
            dst.execute("UPDATE ballots SET ranking = '2,0' WHERE ranking = '0,2'")

    monkeypatch.setattr(migrate_db, "_copy_table", reordering)
    report = migrate_database(source, database_url)
    assert not report.ok
    text = "\n".join(report.lines())
    assert "ballots in the source" in text and "(or other rankings) in the target" in text, text
    assert all(not rows for table, rows in everything(database_url).items() if table != "quorum_schema")


def run_migrate(tmp_path: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, str(ROOT / "run.py"), "migrate-db", *args], cwd=tmp_path,
                          env=clean_env(), capture_output=True, text=True, timeout=120)


def test_the_command_migrates_once_then_refuses_and_never_shows_the_password(tmp_path, password_url):  # noqa: F811
    build(tmp_path / "q.sqlite3")
    result = run_migrate(tmp_path, "--from", "q.sqlite3", "--to", password_url)
    assert result.returncode == 0, result.stdout + result.stderr
    assert result.stdout.startswith("Copied q.sqlite3 to postgresql://quorum_pw_"), result.stdout
    assert ":***@" in result.stdout and re.search(r"\n  votes +75 rows\n", result.stdout), result.stdout
    assert "row counts equal, 5 tallies match; took " in result.stdout
    assert_secret_hidden(result)

    again = run_migrate(tmp_path, "--from", "q.sqlite3", "--to", password_url)
    assert again.returncode == 1
    assert again.stderr.startswith("migrate-db failed: the target is not empty"), again.stderr
    assert "Traceback" not in again.stderr
    assert_secret_hidden(again)

    wrong = run_migrate(tmp_path, "--from", "q.sqlite3", "--to", password_url.replace("hunter2", "hunter3"))
    assert wrong.returncode == 1 and "password authentication failed" in wrong.stderr, wrong.stderr
    assert SECRET.replace("hunter2", "hunter3") not in wrong.stderr and "hunter3" not in wrong.stderr


def test_the_command_needs_a_target(tmp_path, database_url):
    result = run_migrate(tmp_path, "--from", "q.sqlite3")
    assert result.returncode == 2 and "--to postgresql://" in result.stderr
