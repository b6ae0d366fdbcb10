"""Ranked polls: ballots against single-choice votes, and the instant-runoff count of a big poll.

    python bench/ranked.py [--members 1000] [--concurrency 50] [--ballots 100000] [--answers 25]
                           [--backends sqlite,postgresql] [--dsn postgresql:///quorum_bench]

(a) Writes. Direct-service style (no Discord, no SimCord): Quorum's own `PollService` on a
real database of each backend (SQLite: a file in a temporary directory, the group-commit
writer, synchronous=FULL; PostgreSQL: a scratch schema of `--dsn`), schema from the
migrations, polls from `PollRepository.create` + `attach_message`. `--concurrency` tasks
each keep one operation in flight (a closed loop) until `--members` members are done:

* single: `PollService.vote` — one single-choice click per member (answer = member mod 4);
* ranked submit: `PollService.cast_ballot` — each member's 5-answer ranking, one write;
* ranked ballot: what building that ballot costs the bot in all: the click that opens it and
  4 picks (each a `ballot_poll` check and a `ballot_of` read, as every ballot step does),
  then the submit. Latency here is the whole ballot, all 6 steps.

Both ran in one process, one after the other, in that order, each on its own new poll.
Throughput = operations / (first start → last end); p50/p99 per operation.

(b) The count. `--ballots` random ballots over `--answers` answers (a random ranking of a
random length 1–`--answers`, and separately every ballot ranking all answers), counted in
memory two ways: `instant_runoff` from the ballots as tuples (grouping identical ones
included), and `count_encoded` from the rankings as stored (what `PollService.runoff` calls).
Then, per backend, the same ballots stored in the `ballots` table and counted by
`PollService.runoff`: the read (`SELECT ranking … WHERE poll_id = ?`, grouped by a Counter),
the numpy parse and the count, in a worker thread: what closing a poll costs before its
announcement is rendered.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import random
import sys
import tempfile
import time
from collections import Counter
from collections.abc import Awaitable, Callable, Iterator
from pathlib import Path

from _common import BENCH_DATABASE_URL, machine_lines, percentile, pg_scratch_schema, pg_version, table

from bot.config import Settings
from bot.db import Database, open_database
from bot.polls.ballots import encode
from bot.polls.models import Poll, PollDraft
from bot.polls.ranked import count_encoded, instant_runoff
from bot.polls.repository import PollRepository
from bot.polls.service import PollService

NOW = time.time()


async def drive(op: Callable[[int], Awaitable[None]], count: int, concurrency: int) -> tuple[float, list[float]]:
    users = iter(range(1, count + 1))
    latencies: list[float] = []

    async def worker() -> None:
        for user in users:
            started = time.perf_counter()
            await op(user)
            latencies.append(time.perf_counter() - started)

    started = time.perf_counter()
    await asyncio.gather(*(worker() for _ in range(concurrency)))
    return time.perf_counter() - started, latencies


@contextlib.contextmanager
def database_settings(backend: str, dsn: str) -> Iterator[Settings]:
    with tempfile.TemporaryDirectory() as folder:
        if backend == "sqlite":
            yield Settings(token=None, database_path=Path(folder) / "bench.sqlite3", database_url=None)
        else:
            with pg_scratch_schema(dsn) as url:
                yield Settings(token=None, database_path=Path(folder) / "unused.sqlite3", database_url=url)


async def new_poll(repo: PollRepository, answers: int, *, ranked: bool) -> Poll:
    draft = PollDraft("Bench?", tuple(f"answer {i}" for i in range(answers)), ranked=ranked)
    poll = await repo.create(draft, guild_id=1, channel_id=2, creator_id=3, now=time.time())
    await repo.attach_message(poll.id, 10_000 + poll.id)
    stored = await repo.get(poll.id)
    assert stored is not None
    return stored


def ranking_of(user: int) -> tuple[int, ...]:
    return tuple(random.Random(user).sample(range(5), 5))


async def writes(settings: Settings, members: int, concurrency: int) -> list[tuple[str, float, list[float]]]:
    db = await open_database(settings)
    try:
        repo = PollRepository(db)
        service = PollService(repo, time.time)
        results = []

        single = await new_poll(repo, 4, ranked=False)

        async def vote(user: int) -> None:
            await service.vote(single.id, user % 4, user_id=user, role_ids=())

        results.append(("single: vote", *await drive(vote, members, concurrency)))

        ranked = await new_poll(repo, 5, ranked=True)

        async def submit(user: int) -> None:
            await service.cast_ballot(ranked.id, ranking_of(user), user_id=user, role_ids=())

        results.append(("ranked: submit", *await drive(submit, members, concurrency)))

        whole = await new_poll(repo, 5, ranked=True)

        async def ballot(user: int) -> None:
            for _step in range(5):  # the click that opens it, then 4 picks
                await service.ballot_poll(whole.id, role_ids=())
                await service.ballots.ballot_of(whole.id, user)
            await service.cast_ballot(whole.id, ranking_of(user), user_id=user, role_ids=())

        results.append(("ranked: whole ballot (6 steps)", *await drive(ballot, members, concurrency)))
        first = await service.ballots.first_preferences(ranked)
        assert first.voters == members, first
        return results
    finally:
        await db.close()


def random_ballots(count: int, answers: int, *, full: bool, seed: int = 11) -> list[tuple[int, ...]]:
    rng = random.Random(seed)
    every = list(range(answers))
    return [tuple(rng.sample(every, answers if full else rng.randint(1, answers))) for _ in range(count)]


def time_count(answers: int, ballots: list[tuple[int, ...]], repeat: int = 3) -> tuple[float, float, int]:
    """Best of `repeat`: `instant_runoff` on the tuples, `count_encoded` on the stored text."""
    encoded = list(Counter(encode(b) for b in ballots).items())
    best_tuples = best_text = float("inf")
    rounds = 0
    for _ in range(repeat):
        started = time.perf_counter()
        result = instant_runoff(range(answers), ballots)
        best_tuples = min(best_tuples, time.perf_counter() - started)
        started = time.perf_counter()
        assert count_encoded(range(answers), encoded) == result
        best_text = min(best_text, time.perf_counter() - started)
        rounds = len(result.rounds)
    return best_tuples, best_text, rounds


async def stored_count(settings: Settings, ballots: list[tuple[int, ...]], answers: int) -> tuple[float, float, int]:
    db: Database = await open_database(settings)
    try:
        repo = PollRepository(db)
        service = PollService(repo, time.time)
        poll = await new_poll(repo, answers, ranked=True)
        rows = [(poll.id, user, encode(b), b[0], NOW) for user, b in enumerate(ballots, start=1)]

        def load(conn) -> None:
            conn.executemany(
                "INSERT INTO ballots (poll_id, user_id, ranking, first_choice, cast_at) VALUES (?, ?, ?, ?, ?)", rows
            )

        await db.write(load)
        times = []
        rounds = 0
        for _ in range(3):
            started = time.perf_counter()
            result = await service.runoff(poll)
            times.append(time.perf_counter() - started)
            rounds = len(result.rounds)
            assert result.ballots == len(ballots)
        return times[0], min(times), rounds
    finally:
        await db.close()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--members", type=int, default=1000)
    parser.add_argument("--concurrency", type=int, default=50)
    parser.add_argument("--ballots", type=int, default=100_000)
    parser.add_argument("--answers", type=int, default=25)
    parser.add_argument("--backends", default="sqlite,postgresql")
    parser.add_argument("--dsn", default=BENCH_DATABASE_URL)
    args = parser.parse_args(argv)
    backends = [b for b in args.backends.split(",") if b]

    print("\n".join(machine_lines()))
    if "postgresql" in backends:
        print(f"server  : {pg_version(args.dsn)}")
    print(f"\n(a) {args.members:,} members, {args.concurrency} in flight, direct PollService calls")
    rows = []
    for backend in backends:
        with database_settings(backend, args.dsn) as settings:
            for name, wall, latencies in asyncio.run(writes(settings, args.members, args.concurrency)):
                rows.append([backend, name, f"{len(latencies) / wall:,.0f}",
                             f"{percentile(latencies, 50) * 1000:.1f}", f"{percentile(latencies, 99) * 1000:.1f}"])
    print(table(["backend", "operation", "per s", "p50 ms", "p99 ms"], rows))

    print(f"\n(b) instant-runoff of {args.ballots:,} random ballots over {args.answers} answers")
    rows = []
    for label, full in (("random length", False), ("all answers ranked", True)):
        ballots = random_ballots(args.ballots, args.answers, full=full)
        tuples, text, rounds = time_count(args.answers, ballots)
        rows.append(["in memory, tuples", label, rounds, f"{tuples:.3f}", "—"])
        rows.append(["in memory, stored text", label, rounds, f"{text:.3f}", "—"])
        for backend in backends:
            with database_settings(backend, args.dsn) as settings:
                first, best, rounds = asyncio.run(stored_count(settings, ballots, args.answers))
            rows.append([f"{backend}: read + count", label, rounds, f"{best:.3f}", f"{first:.3f}"])
    print(table(["what", "ballots", "rounds", "seconds (best)", "first call"], rows))
    return 0


if __name__ == "__main__":
    sys.exit(main())
