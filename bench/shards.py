"""Votes/s of two processes with one shard each against one process with both shards, one
PostgreSQL database, the same clicks, on the same machine.

    python bench/shards.py                      # small: 500 members per guild, 2 rounds, 2 sets (~1 min)
    python bench/shards.py --members 2000 --rounds 3 --sets 4 --concurrency 50   # full size (~2.5 min)

The loopback Discord (`bench/loopback_discord.py`) has two guilds, one on each of two shards.
"split" runs `python run.py` twice (SHARD_COUNT=2, SHARD_IDS=0 and SHARD_IDS=1), "single"
runs it once with SHARD_COUNT=2 (both shards in one process); each configuration gets a new
schema in `--database-url`. Every round posts one poll per guild with `/poll create`, then in
each guild `--members` members click once, `--concurrency` clicks in flight per guild, both
guilds at once. A click counts when the bot's interaction callback arrives; throughput =
clicks / (first send -> last callback), latency = send -> callback. The votes in the database
are counted after each configuration. Everything shares this machine's cores: the loopback
server and the clicking drivers (this process), the bot process(es) and PostgreSQL; with 2
cores, a second bot process can only use what CPU the others leave (the table shows each
bot's CPU seconds per round, and this process's).
"""

from __future__ import annotations

import argparse
import asyncio
import os
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from _common import (
    BENCH_DATABASE_URL,
    BotProcess,
    LatencyFigures,
    bot_env,
    machine_lines,
    median,
    pg_scratch_schema,
    pg_version,
    table,
)
from loopback_discord import LoopbackDiscord, answer_custom_ids, guild_on_shard

OPTIONS = ("Lisbon", "Kraków", "Valencia", "Tallinn")
GUILDS = (guild_on_shard(0, 2), guild_on_shard(1, 2))
VOTER_BASE = 1300000000000000000
CONFIGS = ("split", "single")


@dataclass
class Round(LatencyFigures):
    config: str
    label: str
    wall: float
    latencies: list[float]
    lost: int
    cpu: dict[str, float] = field(default_factory=dict)  # bot process -> CPU seconds in the round
    driver_cpu: float = 0.0  # this process (loopback server + clicking members), CPU seconds


def cpu_seconds(pid: int) -> float:
    with open(f"/proc/{pid}/stat", encoding="ascii") as stat:
        fields = stat.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")  # utime + stime


async def storm(
    server: LoopbackDiscord, polls: list[dict[str, Any]], members: int, concurrency: int
) -> tuple[float, list[float], int]:
    """Every member clicks once on each poll (one poll per guild, all guilds at once)."""
    latencies: list[float] = []
    lost = 0
    first = last = 0.0

    async def worker(poll: dict[str, Any], voters: list[int]) -> None:
        nonlocal lost, first, last
        while voters:
            voter = voters.pop()
            payload = server.interaction(3, {"custom_id": answer_custom_ids(poll)[voter % 4],
                                             "component_type": 2}, user_id=voter, message=poll)
            start = time.perf_counter()
            first = first or start
            answer = await server.ask(payload)
            acked = server.acks.get(int(payload["id"]))
            if answer is None or acked is None:
                lost += 1
                continue
            # The callback's arrival; for a click the bot deferred, its follow-up's (about now).
            done = acked[0] if acked[1].get("type") != 5 else time.perf_counter()
            latencies.append(done - start)
            last = max(last, done)

    tasks = []
    for poll in polls:
        voters = list(range(VOTER_BASE, VOTER_BASE + members))
        tasks += [worker(poll, voters) for _ in range(concurrency)]
    await asyncio.gather(*tasks)
    return last - first, latencies, lost


async def run_config(config: str, number: int, args: argparse.Namespace, workdir: Path) -> tuple[list[Round], str]:
    server = LoopbackDiscord(GUILDS, shard_count=2)
    await server.start()
    rounds: list[Round] = []
    with pg_scratch_schema(args.database_url) as url:
        common = {**server.env, "DATABASE_URL": url, "SHARD_COUNT": "2", "LOG_LEVEL": "WARNING"}
        if config == "split":
            bots = [BotProcess(f"s{number}-split-p{i}", bot_env(**common, SHARD_IDS=str(i)), workdir) for i in (0, 1)]
        else:
            bots = [BotProcess(f"s{number}-single", bot_env(**common), workdir)]
        try:
            for bot in bots:
                bot.start()
            await asyncio.wait_for(asyncio.gather(*(server.shard_ready(i).wait() for i in (0, 1))), 60)
            await asyncio.sleep(3)  # discord.py waits 2 s for more guilds before on_ready
            plan = [("warm-up", args.warmup)] + [(f"round {r}", args.members) for r in range(1, args.rounds + 1)]
            for label, members in plan:
                polls = [await server.create_poll(g, f"Offsite {label}?", OPTIONS) for g in GUILDS]
                before = {b.label: cpu_seconds(b.process.pid) for b in bots}
                driver = time.process_time()
                wall, latencies, lost = await storm(server, polls, members, args.concurrency)
                driver = time.process_time() - driver
                cpu = {b.label: cpu_seconds(b.process.pid) - before[b.label] for b in bots}
                rounds.append(Round(config, f"s{number} {label}", wall, latencies, lost, cpu, driver))
                await asyncio.sleep(1)  # the poll-card edits the round started
            import psycopg

            with psycopg.connect(url) as conn:
                stored = conn.execute("SELECT count(*) FROM votes").fetchone()[0]  # type: ignore[index]
            expected = 2 * (args.warmup + args.members * args.rounds)
            check = f"{config} s{number}: {stored} votes stored of {expected} clicks"
            check += "" if stored == expected else " MISMATCH"
        finally:
            for bot in bots:
                bot.stop()
            await server.stop()
    return rounds, check


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--members", type=int, default=500, help="members per guild, each clicking once per round")
    parser.add_argument("--concurrency", type=int, default=25, help="clicks in flight per guild")
    parser.add_argument("--rounds", type=int, default=2, help="measured rounds per configuration and set")
    parser.add_argument("--warmup", type=int, default=100, help="clicks per guild of an unmeasured first round")
    parser.add_argument("--sets", type=int, default=2, help="sets of both configurations, order alternating")
    parser.add_argument("--database-url", default=BENCH_DATABASE_URL, help="PostgreSQL database for scratch schemas")
    args = parser.parse_args(argv)
    print("\n".join(machine_lines()))
    print(f"db      : {pg_version(args.database_url)}, on this machine")
    print(f"run     : 2 guilds (1 per shard) x {args.members} members x 1 click per round, {args.concurrency} "
          f"in flight per guild; split = 2 processes (SHARD_IDS=0 / 1), single = 1 process (both shards)")
    print("note    : one machine: the loopback server + drivers, every bot process and PostgreSQL share its "
          f"{os.cpu_count()} cores")
    rounds: list[Round] = []
    checks: list[str] = []
    with tempfile.TemporaryDirectory(prefix="quorum-shards-") as workdir:
        for number in range(1, args.sets + 1):
            for config in CONFIGS if number % 2 else CONFIGS[::-1]:
                got, check = asyncio.run(run_config(config, number, args, Path(workdir)))
                rounds += got
                checks.append(check)
    print()
    print(table(
        ["config", "round", "acked", "lost", "wall s", "votes/s", "p50 ms", "p99 ms", "bot CPU s", "driver CPU s"],
        [[r.config, r.label, len(r.latencies), r.lost, f"{r.wall:.3f}", f"{r.rate:,.0f}", f"{r.p50 * 1000:.1f}",
          f"{r.p99 * 1000:.1f}", " + ".join(f"{c:.2f}" for c in r.cpu.values()), f"{r.driver_cpu:.2f}"]
         for r in rounds],
    ))
    measured = {c: [r for r in rounds if r.config == c and "warm" not in r.label] for c in CONFIGS}
    print()
    print("Median of the measured rounds (votes/s = both guilds together):")
    print(table(
        ["config", "votes/s", "p50 ms", "p99 ms", "bot CPU ms per vote"],
        [[c, f"{median([r.rate for r in rs]):,.0f}", f"{median([r.p50 for r in rs]) * 1000:.1f}",
          f"{median([r.p99 for r in rs]) * 1000:.1f}",
          f"{median([sum(r.cpu.values()) * 1000 / max(1, len(r.latencies)) for r in rs]):.2f}"]
         for c, rs in measured.items() if rs],
    ))
    if all(measured.values()):
        ratio = median([r.rate for r in measured["split"]]) / median([r.rate for r in measured["single"]])
        print(f"\nsplit / single throughput: {ratio:.2f}x")
    print("Database check: " + "; ".join(checks))
    lost = sum(r.lost for r in rounds)
    if lost:
        print(f"WARNING: {lost} click(s) never answered")
    return 0


if __name__ == "__main__":
    sys.exit(main())
