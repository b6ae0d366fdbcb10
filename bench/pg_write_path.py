"""Which PostgreSQL write path keeps votes fastest: the measurement behind the backend's shape.

    python bench/pg_write_path.py [--dsn postgresql:///quorum_bench] [--votes 5000] [--concurrency 50]

Needs a PostgreSQL server and `pip install asyncpg "psycopg[binary]"` (neither is a dependency
of Quorum yet; the script says so and exits when either is missing).

Every variant casts the same votes: `--concurrency` coroutines, each casting one vote at a time,
each vote one read of the poll row and one `INSERT … ON CONFLICT` into a votes table keyed by
(poll, member), acknowledged only after its transaction commits (synchronous_commit on, as
Quorum's SQLite writer uses synchronous=FULL). Variants:

* sqlite-writer: Quorum's own `bot.db.Database` on SQLite (the reference: group commit on a
  writer thread, one savepoint per vote);
* asyncpg-pool: an asyncpg pool of 10 connections, one transaction per vote (PostgreSQL groups
  the WAL flushes of concurrent commits itself);
* asyncpg-batch: one asyncpg connection, votes queued while a transaction commits form the next
  transaction, one savepoint each (Quorum's SQLite design, on asyncpg);
* psycopg-thread: psycopg 3 (sync) on a dedicated writer thread, the same batching: exactly
  Quorum's `SqliteDatabase` with another DB-API connection;
* asyncpg-pool-function: the pool, each vote one call of a PL/pgSQL function that checks the
  rule and writes (a refusal is a return value, not an error): one round trip per vote;
* psycopg-pipeline: the writer thread's group commit with that function, every vote of a batch
  sent in pipeline mode before any answer is read: one round trip per batch, no savepoints;
* quorum-sqlite, quorum-postgresql (session 4): Quorum's own `PollRepository.cast_vote` on each
  backend, the shape chosen from the variants above, with the real schema and vote rules.

Prints votes/s and p50/p99 latency per variant (median of `--runs` runs, interleaved).
"""

from __future__ import annotations

import argparse
import asyncio
import sqlite3
import statistics
import sys
import tempfile
import time
from collections.abc import Awaitable, Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from _common import machine_lines, percentile, table  # noqa: E402

PG_SCHEMA = """
DROP TABLE IF EXISTS bench_votes;
DROP TABLE IF EXISTS bench_polls;
CREATE TABLE bench_polls (id BIGINT PRIMARY KEY, closed_at DOUBLE PRECISION);
CREATE TABLE bench_votes (poll_id BIGINT NOT NULL REFERENCES bench_polls (id), user_id BIGINT NOT NULL,
                          option INTEGER NOT NULL, voted_at DOUBLE PRECISION NOT NULL,
                          PRIMARY KEY (poll_id, user_id));
INSERT INTO bench_polls VALUES (1, NULL);
"""
# The vote as one statement: the rule check and the write in a function that reports a refusal
# as a value instead of raising, so a batch needs neither savepoints nor a round trip per vote.
PG_FUNCTION = """
CREATE OR REPLACE FUNCTION bench_vote(p BIGINT, u BIGINT, o INTEGER, t DOUBLE PRECISION) RETURNS INTEGER
LANGUAGE plpgsql AS $$
BEGIN
    IF (SELECT closed_at FROM bench_polls WHERE id = p) IS NOT NULL THEN
        RETURN 1;
    END IF;
    INSERT INTO bench_votes (poll_id, user_id, option, voted_at) VALUES (p, u, o, t)
        ON CONFLICT (poll_id, user_id) DO UPDATE SET option = excluded.option, voted_at = excluded.voted_at;
    RETURN 0;
END $$;
"""
SQLITE_SCHEMA = PG_SCHEMA.replace("BIGINT", "INTEGER").replace("DOUBLE PRECISION", "REAL")
VOTE_PG = (
    "INSERT INTO bench_votes (poll_id, user_id, option, voted_at) VALUES ($1, $2, $3, $4) "
    "ON CONFLICT (poll_id, user_id) DO UPDATE SET option = excluded.option, voted_at = excluded.voted_at"
)
VOTE_QMARK = VOTE_PG.replace("$1", "?").replace("$2", "?").replace("$3", "?").replace("$4", "?")
VOTE_PSYCOPG = VOTE_PG.replace("$1", "%s").replace("$2", "%s").replace("$3", "%s").replace("$4", "%s")


async def drive(cast: Callable[[int], Awaitable[None]], votes: int, concurrency: int) -> tuple[float, list[float]]:
    users = iter(range(1, votes + 1))
    latencies: list[float] = []

    async def worker() -> None:
        for user in users:
            started = time.perf_counter()
            await cast(user)
            latencies.append(time.perf_counter() - started)

    started = time.perf_counter()
    await asyncio.gather(*(worker() for _ in range(concurrency)))
    return time.perf_counter() - started, latencies


class Batcher:
    """Group commit for an async connection: what queues during a commit is the next batch."""

    def __init__(self, run_batch: Callable[[list[Any]], Awaitable[list[BaseException | None]]]) -> None:
        self.run_batch = run_batch
        self.queue: list[tuple[Any, asyncio.Future[None]]] = []
        self.task: asyncio.Task[None] | None = None

    async def submit(self, item: Any) -> None:
        future: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self.queue.append((item, future))
        if self.task is None or self.task.done():
            self.task = asyncio.create_task(self.loop())
        await future

    async def loop(self) -> None:
        while self.queue:
            batch, self.queue = self.queue[:256], self.queue[256:]
            outcomes = await self.run_batch([item for item, _ in batch])
            for (_, future), error in zip(batch, outcomes, strict=True):
                if error is None:
                    future.set_result(None)
                else:
                    future.set_exception(error)


async def sqlite_writer(votes: int, concurrency: int) -> tuple[float, list[float]]:
    from bot.db_sqlite import SqliteDatabase

    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "bench.sqlite3"
        with sqlite3.connect(path) as conn:
            conn.executescript(SQLITE_SCHEMA)
        db = await SqliteDatabase.open(path)
        try:
            async def cast(user: int) -> None:
                def write(conn: sqlite3.Connection) -> None:
                    conn.execute("SELECT closed_at FROM bench_polls WHERE id = ?", (1,)).fetchone()
                    conn.execute(VOTE_QMARK, (1, user, user % 4, time.time()))

                await db.write(write)

            return await drive(cast, votes, concurrency)
        finally:
            await db.close()


async def asyncpg_pool(dsn: str, votes: int, concurrency: int) -> tuple[float, list[float]]:
    import asyncpg

    pool = await asyncpg.create_pool(dsn, min_size=10, max_size=10)
    try:
        async def cast(user: int) -> None:
            async with pool.acquire() as conn, conn.transaction():
                await conn.fetchrow("SELECT closed_at FROM bench_polls WHERE id = $1", 1)
                await conn.execute(VOTE_PG, 1, user, user % 4, time.time())

        return await drive(cast, votes, concurrency)
    finally:
        await pool.close()


async def asyncpg_batch(dsn: str, votes: int, concurrency: int) -> tuple[float, list[float]]:
    import asyncpg

    conn = await asyncpg.connect(dsn)
    poll = await conn.prepare("SELECT closed_at FROM bench_polls WHERE id = $1")
    vote = await conn.prepare(VOTE_PG)

    async def run_batch(users: list[int]) -> list[BaseException | None]:
        outcomes: list[BaseException | None] = []
        async with conn.transaction():
            for user in users:
                try:
                    async with conn.transaction():  # a savepoint
                        await poll.fetchrow(1)
                        await vote.fetch(1, user, user % 4, time.time())
                    outcomes.append(None)
                except Exception as error:
                    outcomes.append(error)
        return outcomes

    batcher = Batcher(run_batch)
    try:
        return await drive(batcher.submit, votes, concurrency)
    finally:
        await conn.close()


async def on_writer_thread(
    dsn: str, votes: int, concurrency: int, run_sync: Callable[[Any, list[int]], list[BaseException | None]]
) -> tuple[float, list[float]]:
    """Group commit on a psycopg connection owned by one thread, as Quorum's `SqliteDatabase` does:
    `run_sync(conn, users)` writes one batch there."""
    import psycopg

    executor = ThreadPoolExecutor(max_workers=1)
    loop = asyncio.get_running_loop()
    conn = await loop.run_in_executor(executor, lambda: psycopg.connect(dsn, autocommit=True))

    async def run_batch(users: list[int]) -> list[BaseException | None]:
        return await loop.run_in_executor(executor, run_sync, conn, users)

    batcher = Batcher(run_batch)
    try:
        return await drive(batcher.submit, votes, concurrency)
    finally:
        await loop.run_in_executor(executor, conn.close)
        executor.shutdown()


def savepoint_per_vote(conn: Any, users: list[int]) -> list[BaseException | None]:
    outcomes: list[BaseException | None] = []
    with conn.transaction():
        for user in users:
            try:
                with conn.transaction():  # a savepoint
                    conn.execute("SELECT closed_at FROM bench_polls WHERE id = %s", (1,)).fetchone()
                    conn.execute(VOTE_PSYCOPG, (1, user, user % 4, time.time()))
                outcomes.append(None)
            except Exception as error:
                outcomes.append(error)
    return outcomes


VOTE_CALL = "SELECT bench_vote(%s, %s, %s, %s)"


def pipelined_calls(conn: Any, users: list[int]) -> list[BaseException | None]:
    # One transaction, every vote's statement sent before any answer is read: one round trip.
    with conn.transaction(), conn.pipeline():
        cursors = [conn.execute(VOTE_CALL, (1, user, user % 4, time.time())) for user in users]
    return [None if cursor.fetchone() == (0,) else RuntimeError("refused") for cursor in cursors]


async def asyncpg_pool_function(dsn: str, votes: int, concurrency: int) -> tuple[float, list[float]]:
    import asyncpg

    pool = await asyncpg.create_pool(dsn, min_size=10, max_size=10)
    try:
        async def cast(user: int) -> None:
            async with pool.acquire() as conn:  # autocommit: one round trip, one commit
                await conn.fetchval("SELECT bench_vote($1, $2, $3, $4)", 1, user, user % 4, time.time())

        return await drive(cast, votes, concurrency)
    finally:
        await pool.close()


async def quorum_repository(dsn: str | None, votes: int, concurrency: int) -> tuple[float, list[float]]:
    """Quorum's own code as it stands: `PollRepository.cast_vote` on SQLite (dsn None) or on
    PostgreSQL (the vote a pipelined `quorum_cast_vote` call), the schema from its migrations."""
    from bot.config import Settings
    from bot.db import open_database
    from bot.polls.models import PollDraft
    from bot.polls.repository import PollRepository

    with tempfile.TemporaryDirectory() as folder:
        schema = f"bench_{time.monotonic_ns()}"
        url = None
        if dsn is not None:
            import psycopg

            from bot.db_postgres import with_query

            with psycopg.connect(dsn, autocommit=True) as conn:
                conn.execute(f"CREATE SCHEMA {schema}")
            url = with_query(dsn, options=f"-csearch_path={schema}")
        db = await open_database(Settings(token=None, database_path=Path(folder) / "q.sqlite3", database_url=url))
        try:
            repo = PollRepository(db)
            draft = PollDraft("Bench?", ("a", "b", "c", "d"))
            poll = await repo.create(draft, guild_id=1, channel_id=2, creator_id=3, now=time.time())
            await repo.attach_message(poll.id, 4)
            poll = await repo.get(poll.id)
            assert poll is not None

            async def cast(user: int) -> None:
                await repo.cast_vote(poll, user, user % 4, now=time.time())

            return await drive(cast, votes, concurrency)
        finally:
            await db.close()
            if dsn is not None:
                with psycopg.connect(dsn, autocommit=True) as conn:
                    conn.execute(f"DROP SCHEMA {schema} CASCADE")


async def reset(dsn: str) -> None:
    import asyncpg

    conn = await asyncpg.connect(dsn)
    try:
        await conn.execute(PG_SCHEMA)
        await conn.execute(PG_FUNCTION)
    finally:
        await conn.close()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--dsn", default="postgresql:///quorum_bench", help="an empty scratch database")
    parser.add_argument("--votes", type=int, default=5000)
    parser.add_argument("--concurrency", type=int, default=50)
    parser.add_argument("--runs", type=int, default=3)
    args = parser.parse_args(argv)
    try:
        import asyncpg  # noqa: F401
        import psycopg  # noqa: F401
    except ImportError as error:
        print(f"needs asyncpg and psycopg: pip install asyncpg 'psycopg[binary]' ({error})")
        return 2
    print("\n".join(machine_lines()))
    print(f"run     : {args.votes} votes, {args.concurrency} in flight, {args.runs} runs per variant, interleaved")
    variants: dict[str, Callable[[], Awaitable[tuple[float, list[float]]]]] = {
        "sqlite-writer": lambda: sqlite_writer(args.votes, args.concurrency),
        "asyncpg-pool": lambda: asyncpg_pool(args.dsn, args.votes, args.concurrency),
        "asyncpg-batch": lambda: asyncpg_batch(args.dsn, args.votes, args.concurrency),
        "psycopg-thread": lambda: on_writer_thread(args.dsn, args.votes, args.concurrency, savepoint_per_vote),
        "asyncpg-pool-function": lambda: asyncpg_pool_function(args.dsn, args.votes, args.concurrency),
        "psycopg-pipeline": lambda: on_writer_thread(args.dsn, args.votes, args.concurrency, pipelined_calls),
        "quorum-sqlite": lambda: quorum_repository(None, args.votes, args.concurrency),
        "quorum-postgresql": lambda: quorum_repository(args.dsn, args.votes, args.concurrency),
    }
    results: dict[str, list[tuple[float, float, float]]] = {name: [] for name in variants}
    for _ in range(args.runs):
        for name, run in variants.items():
            asyncio.run(reset(args.dsn))
            wall, latencies = asyncio.run(run())
            results[name].append((args.votes / wall, percentile(latencies, 50), percentile(latencies, 99)))
    print()
    print(table(
        ["variant", "votes/s (runs)", "median votes/s", "p50 ms", "p99 ms"],
        [[name, " / ".join(f"{r[0]:,.0f}" for r in rs), f"{statistics.median(r[0] for r in rs):,.0f}",
          f"{statistics.median(r[1] for r in rs) * 1000:.1f}", f"{statistics.median(r[2] for r in rs) * 1000:.1f}"]
         for name, rs in results.items()],
    ))
    return 0


if __name__ == "__main__":
    sys.exit(main())
