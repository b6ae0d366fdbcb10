"""Counting a very large poll: PollRepository.tally() over 1,000,000 stored votes.

    python bench/tally.py [--votes 1000000] [--options 4] [--repeat 5]

The schema comes from Quorum's own migrations (`bot.db.Database.open`), the two polls from
`PollRepository.create` + `attach_message`. The votes are then bulk-inserted with plain
`sqlite3.executemany` into the same file (same tables, keys, triggers and indexes; one
transaction, `synchronous=OFF` for the load only), and the database is reopened with
`Database.open` before timing `PollRepository.tally()`:

* single choice: `--votes` voters, one row each (answer = voter mod options);
* multiple choice: `--votes` rows from fewer voters (voter u picks the first ((u-1) mod options)+1
  answers), so the tally also has to count distinct voters.

"first call" is the first tally on a freshly opened connection (the OS page cache is warm: the
file was just written); "median"/"max" are over `--repeat` further calls.
"""

from __future__ import annotations

import argparse
import asyncio
import shutil
import sqlite3
import statistics
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

from _common import machine_lines, table

from bot.db_sqlite import SqliteDatabase
from bot.polls.models import Poll, PollDraft
from bot.polls.repository import PollRepository

GUILD, CHANNEL, CREATOR = 1001, 2002, 3003


def single_rows(poll_id: int, votes: int, options: int, now: float) -> Iterator[tuple[int, int, int, int, float]]:
    for user in range(1, votes + 1):
        yield (poll_id, user, 0, user % options, now)


def multiple_rows(
    poll_id: int, votes: int, options: int, now: float
) -> Iterator[tuple[int, int, int, int, float]]:
    made = 0
    user = 0
    while made < votes:
        user += 1
        for option in range((user - 1) % options + 1):
            if made == votes:
                return
            yield (poll_id, user, option, option, now)
            made += 1


async def create_polls(path: Path, options: int) -> tuple[Poll, Poll]:
    db = await SqliteDatabase.open(path)  # applies Quorum's migrations
    try:
        repo = PollRepository(db)
        labels = tuple(f"Answer {i + 1}" for i in range(options))
        single = await repo.create(
            PollDraft("Single choice, a million voters", labels),
            guild_id=GUILD, channel_id=CHANNEL, creator_id=CREATOR, now=time.time(),
        )
        multiple = await repo.create(
            PollDraft("Multiple choice, a million votes", labels, multiple=True),
            guild_id=GUILD, channel_id=CHANNEL, creator_id=CREATOR, now=time.time(),
        )
        await repo.attach_message(single.id, 900_000_000_000_000_001)
        await repo.attach_message(multiple.id, 900_000_000_000_000_002)
        got_single, got_multiple = await repo.get(single.id), await repo.get(multiple.id)
        assert got_single is not None and got_multiple is not None
        return got_single, got_multiple
    finally:
        await db.close()


def bulk_load(path: Path, single: Poll, multiple: Poll, votes: int, options: int) -> dict[str, float]:
    conn = sqlite3.connect(path, isolation_level=None)
    try:
        conn.execute("PRAGMA foreign_keys = ON")
        conn.execute("PRAGMA synchronous = OFF")  # the load only; Quorum itself runs with FULL
        timings = {}
        sql = "INSERT INTO votes (poll_id, user_id, slot, option, voted_at) VALUES (?, ?, ?, ?, ?)"
        for name, rows in (
            ("single", single_rows(single.id, votes, options, time.time())),
            ("multiple", multiple_rows(multiple.id, votes, options, time.time())),
        ):
            start = time.perf_counter()
            conn.execute("BEGIN")
            conn.executemany(sql, rows)
            conn.execute("COMMIT")
            timings[name] = time.perf_counter() - start
        conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
        return timings
    finally:
        conn.close()


async def time_tallies(path: Path, polls: list[Poll], repeat: int) -> list[dict[str, object]]:
    db = await SqliteDatabase.open(path)
    results = []
    try:
        repo = PollRepository(db)
        for poll in polls:
            start = time.perf_counter()
            tally = await repo.tally(poll)
            first = time.perf_counter() - start
            runs = []
            for _ in range(repeat):
                start = time.perf_counter()
                again = await repo.tally(poll)
                runs.append(time.perf_counter() - start)
                assert again == tally
            rows = await db.fetchval("SELECT count(*) FROM votes WHERE poll_id = ?", (poll.id,))
            plans = {}
            queries = [("counts", "SELECT option, count(*) FROM votes WHERE poll_id = ? GROUP BY option")]
            if poll.multiple:  # the only kind whose tally counts distinct voters
                queries.append(("voters", "SELECT count(DISTINCT user_id) FROM votes WHERE poll_id = ?"))
            for label, sql in queries:
                plan = await db.fetchall(f"EXPLAIN QUERY PLAN {sql}", (poll.id,))
                plans[label] = "; ".join(str(r[3]) for r in plan)
            results.append({
                "poll": poll, "tally": tally, "rows": rows, "first": first,
                "median": statistics.median(runs), "max": max(runs), "plans": plans,
            })
    finally:
        await db.close()
    return results


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--votes", type=int, default=1_000_000, help="vote rows per poll")
    parser.add_argument("--options", type=int, default=4, help="answers per poll (2-25)")
    parser.add_argument("--repeat", type=int, default=5, help="timed tallies after the first")
    parser.add_argument("--db-dir", type=Path, default=None,
                        help="where the SQLite file goes (default: a temp dir)")
    args = parser.parse_args(argv)

    db_dir = Path(tempfile.mkdtemp(prefix="quorum-tally-", dir=args.db_dir))
    path = db_dir / "tally.sqlite3"
    print("\n".join(machine_lines(db_dir)))
    try:
        single, multiple = asyncio.run(create_polls(path, args.options))
        load = bulk_load(path, single, multiple, args.votes, args.options)
        size = sum(p.stat().st_size for p in db_dir.iterdir()) / 1e6
        print(f"load    : {args.votes:,} rows into each poll with executemany: single {load['single']:.1f} s, "
              f"multiple {load['multiple']:.1f} s; database {size:.0f} MB")
        results = asyncio.run(time_tallies(path, [single, multiple], args.repeat))
    finally:
        shutil.rmtree(db_dir, ignore_errors=True)

    rows = []
    for r in results:
        poll: Poll = r["poll"]  # type: ignore[assignment]
        tally = r["tally"]
        rows.append([
            "multiple choice" if poll.multiple else "single choice",
            f"{r['rows']:,}", f"{tally.voters:,}", " / ".join(f"{c:,}" for c in tally.counts),  # type: ignore[attr-defined]
            f"{r['first'] * 1000:.0f}", f"{r['median'] * 1000:.0f}", f"{r['max'] * 1000:.0f}",
            "met" if r["max"] < 1 and r["first"] < 1 else "NOT met",  # type: ignore[operator]
        ])
    print()
    print(table(
        ["PollRepository.tally()", "vote rows", "voters", "counts per answer", "first ms",
         f"median of {args.repeat} ms", "max ms", "< 1 s"],
        rows,
    ))
    expected_voters = 0
    for row in multiple_rows(0, args.votes, args.options, 0.0):
        expected_voters = row[1]  # user ids run 1..voters
    ok = (
        results[0]["tally"].voters == args.votes  # type: ignore[attr-defined]
        and results[1]["tally"].voters == expected_voters  # type: ignore[attr-defined]
        and all(r["tally"].total == args.votes for r in results)  # type: ignore[attr-defined]
    )
    print(f"\ncheck   : totals = {args.votes:,} per poll, voters = {args.votes:,} / {expected_voters:,} -> "
          f"{'OK' if ok else 'MISMATCH'}")
    for r in results:
        kind = "multiple" if r["poll"].multiple else "single"  # type: ignore[attr-defined]
        for label, plan in r["plans"].items():  # type: ignore[attr-defined]
            print(f"plan    : {kind:<8} {label:<6} {plan}")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
