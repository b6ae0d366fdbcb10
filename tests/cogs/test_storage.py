"""A database that can't take writes (a full disk): votes are refused with a message that says so,
nothing is counted that was not stored, and the incident is logged once, not once per click.

The full disk is SQLite's own: `PRAGMA max_page_count` on the writer connection caps the file
at its current size, and SQLite then fails writes with SQLITE_FULL exactly as on a full disk.
On PostgreSQL the writer's session turns read-only, as a server demoted to a standby does
(SQLSTATE 25006); and its connection is cut, as when the server restarts.
"""

from __future__ import annotations

import asyncio
import logging

import pytest
from conftest import SEED_OPTIONS, SEED_QUESTION

from bot.db import StorageUnavailable
from bot.db_sqlite import SqliteDatabase
from bot.tree import VOTE_NOT_STORED


def cap_at_current_size(conn) -> None:
    if conn.dialect == "postgresql":
        conn.execute("SET SESSION default_transaction_read_only = on")  # from the next transaction on
        return
    conn.execute("PRAGMA max_page_count = 1").fetchall()  # SQLite keeps it at the current size


def lift_cap(conn) -> None:
    if conn.dialect == "postgresql":
        conn.execute("SET SESSION default_transaction_read_only = off")
        return
    conn.execute("PRAGMA max_page_count = 1073741823").fetchall()


async def fill(db: SqliteDatabase) -> int:
    """Write rows until the capped file is full; how many fitted."""
    n = 0
    while True:
        try:
            await db.set_meta(f"filler-{n}", "x" * 200)
        except StorageUnavailable:
            return n
        n += 1
        assert n < 100_000, "the cap did not take effect"


def storage_errors(caplog) -> list[logging.LogRecord]:
    return [r for r in caplog.records if r.name == "bot.db" and r.levelno >= logging.ERROR]


async def test_writes_to_a_full_database_fail_with_storage_unavailable_logged_once(tmp_path, caplog):
    caplog.set_level(logging.INFO, logger="bot.db")
    db = await SqliteDatabase.open(tmp_path / "full.sqlite3")
    try:
        await db.write(cap_at_current_size)
        assert await fill(db) >= 0
        for n in range(20):
            with pytest.raises(StorageUnavailable):
                await db.set_meta(f"more-{n}", "y" * 200)
        errors = storage_errors(caplog)
        assert len(errors) == 1 and "SQLITE_FULL" in errors[0].getMessage()
        assert db.stats.failed_writes >= 20
        await db.write(lift_cap)
        await db.set_meta("after", "works")
        assert await db.get_meta("after") == "works"
        assert any("takes writes again" in r.getMessage() for r in caplog.records)
        assert db.stats.failed_writes == 0
    finally:
        await db.close()


async def test_a_batch_with_a_failed_storage_write_acknowledges_none_of_its_writes(tmp_path):
    # SQLite rolls the whole transaction back on SQLITE_FULL, so no write of that batch is kept,
    # not even one that fits: none may be reported as done.
    db = await SqliteDatabase.open(tmp_path / "full.sqlite3")
    try:
        await db.write(cap_at_current_size)
        await fill(db)
        small, large = db.set_meta("small", "a"), db.set_meta("large", "z" * 5000)
        results = await asyncio.gather(small, large, return_exceptions=True)  # one batch, in this order
        assert all(isinstance(r, StorageUnavailable) for r in results), results
        assert await db.get_meta("small") is None
        await db.set_meta("small", "a")  # alone it fits: it failed only because its batch did
        assert await db.get_meta("small") == "a"
    finally:
        await db.close()


async def test_votes_on_a_full_disk_are_refused_with_what_happened(env, caplog):
    caplog.set_level(logging.INFO)
    guild = env.create_guild("Community")
    channel = guild.create_text_channel("general")
    mod = guild.add_member(env.create_user("mod"))
    await mod.slash(channel, "poll create", question=SEED_QUESTION, options=SEED_OPTIONS)
    message = next(m for m in channel.history() if not m.flags.ephemeral)
    repo = env.bot.polls.repo
    poll = await repo.get_by_number(guild.id, 1)
    await env.bot.db.write(cap_at_current_size)
    # Fill the file with votes of members whose ids sort before every real member's, so each
    # later click needs a page at the end of the same trees, and there is none.
    filled = 0
    while True:
        try:
            await repo.cast_vote(poll, filled + 1, 0, now=env.bot.clock())
        except StorageUnavailable:
            break
        filled += 1
        assert filled < 100_000, "the cap did not take effect"

    members = [guild.add_member(env.create_user(f"voter{i}")) for i in range(5)]
    for member in members:
        result = await member.click(message, custom_id="quorum:vote:1:0")
        reply = (result.followups[-1] if result.followups else result.response).content
        assert result.ephemeral and reply == VOTE_NOT_STORED
    assert (await repo.tally(poll)).voters == filled  # nothing counted that wasn't stored
    assert len(storage_errors(caplog)) == 1, "one log entry for the incident, not one per click"
    assert not [r for r in caplog.records if r.name == "quorum.errors"], "no generic apology was logged"

    await env.bot.db.write(lift_cap)
    result = await members[0].click(message, custom_id="quorum:vote:1:0")
    assert "Your vote" in (result.followups[-1] if result.followups else result.response).content
    assert (await repo.tally(poll)).voters == filled + 1


@pytest.mark.parametrize("backend", ["postgresql"], indirect=True)
async def test_votes_go_on_after_postgresql_cut_the_connections(env, caplog):
    """The server cut the writer's and the reader's connections (a restart, a failover) while
    they were idle: the next click's batch had not started, so it is sent again on a new
    connection and counts; so do the clicks after it."""
    import psycopg

    caplog.set_level(logging.INFO)
    guild = env.create_guild("Community")
    channel = guild.create_text_channel("general")
    mod = guild.add_member(env.create_user("mod"))
    await mod.slash(channel, "poll create", question=SEED_QUESTION, options=SEED_OPTIONS)
    message = next(m for m in channel.history() if not m.flags.ephemeral)
    voters = [guild.add_member(env.create_user(f"voter{i}")) for i in range(3)]
    await voters[0].click(message, custom_id="quorum:vote:1:0")
    db = env.bot.db
    pids = [db._writer.info.backend_pid, db._reader.info.backend_pid]  # this bot's two sessions
    with psycopg.connect(db.url, autocommit=True) as admin:
        cut = [admin.execute("SELECT pg_terminate_backend(%s)", (pid,)).fetchone()[0] for pid in pids]
    assert cut == [True, True]
    for voter, option in ((voters[1], 1), (voters[2], 2)):
        result = await voter.click(message, custom_id=f"quorum:vote:1:{option}")
        assert "Your vote" in (result.followups[-1] if result.followups else result.response).content
    assert (await env.bot.polls.repo.get_by_number(guild.id, 1)) is not None  # the reader reconnected too
    tally = await env.bot.polls.repo.tally(await env.bot.polls.repo.get_by_number(guild.id, 1))
    assert tally.voters == 3
    assert any("reconnecting" in r.getMessage() for r in caplog.records)

