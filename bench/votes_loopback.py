"""Vote clicks against a loopback Discord: each bot is a real process talking HTTP and WebSocket.

    python bench/votes_loopback.py [--members 1000] [--concurrency 50] [--sets 6] [--rounds 3]

The second harness the poll issue allows ("SimCord or a loopback server"). `bench/votes.py`
runs the bot inside SimCord, whose bookkeeping (payload copies, callback tracking, a stored
record per message) is most of the cost there. Here nothing is simulated inside the bot's
process: `bench/loopback_discord.py` serves REST and the gateway on 127.0.0.1, and the bot runs
as its own process, pointed there with `DISCORD_API_BASE` and `DISCORD_GATEWAY_URL`:

* quorum: `python run.py`, exactly as a maintainer runs it (heap frozen after setup, SQLite
  file in a temporary directory, `synchronous=FULL`); each round votes on a new poll posted
  with `/poll create` (an application-command interaction sent over the gateway).
* bare: `bench/loopback_bare.py`, a bot whose vote button only answers an ephemeral "ok",
  with `allowed_mentions` like every Quorum message; bare-plain: the same without it.

This process is the server and the clicking members. `--concurrency` driver tasks each keep
one click in flight: an `INTERACTION_CREATE` (a button click carrying the poll message) goes
out on the WebSocket, and the click is acknowledged when the bot's POST to
`/interactions/{id}/{token}/callback` arrives. Latency runs from just before the frame is sent
to that POST; throughput = clicks / (first send -> last acknowledgement). Both sides share
the machine's 2 cores (the server and drivers in this process, the bot in its own).
Each set runs the three bots in a new order; ratios are per set, verdicts the median of sets.
After Quorum's rounds the votes in its database are counted.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import shutil
import sqlite3
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from _common import LatencyFigures, machine_lines, median, set_order, set_ratios, stop_bot, table
from loopback_discord import CHANNEL_ID, COMMAND_ID, CREATOR_ID, LoopbackDiscord

ROOT = Path(__file__).resolve().parent.parent
QUESTION = "Where should the team offsite be this year?"
OPTIONS = ("Lisbon", "Kraków", "Valencia", "Tallinn")
KINDS = ("bare", "quorum", "bare-plain")
ACK_TIMEOUT = 30.0
VOTER_BASE = 1300000000000000000


@dataclass
class Round(LatencyFigures):
    bot: str
    label: str
    wall: float
    latencies: list[float]
    lost: int
    extra: dict[str, Any] = field(default_factory=dict)




def bare_message(server: LoopbackDiscord) -> dict[str, Any]:
    """A message shaped like a Quorum poll card, with the same 4 buttons."""
    fields = [{"name": f"{i}. {o}", "value": "`░░░░░░░░░░` 0 votes · 0%", "inline": False}
              for i, o in enumerate(OPTIONS, start=1)]
    buttons = [{"type": 2, "style": 2, "label": o, "custom_id": f"quorum:vote:1:{i}"} for i, o in enumerate(OPTIONS)]
    return server.store_message(CHANNEL_ID, {
        "embeds": [{"type": "rich", "title": "📊 Poll #1", "description": f"**{QUESTION}**", "fields": fields,
                    "footer": {"text": "Poll #1 · 0 voters"}, "color": 0x5865F2}],
        "components": [{"type": 1, "components": buttons}],
    })


async def post_quorum_poll(server: LoopbackDiscord) -> dict[str, Any]:
    before = set(server.messages)
    data = {"id": str(COMMAND_ID), "name": "poll", "type": 1, "options": [
        {"name": "create", "type": 1, "options": [
            {"name": "question", "type": 3, "value": QUESTION},
            {"name": "options", "type": 3, "value": " | ".join(OPTIONS)},
        ]},
    ]}
    await server.send_interaction(server.interaction(2, data, user_id=CREATOR_ID))
    for _ in range(200):
        new = [m for i, m in server.messages.items() if i not in before and m["components"]]
        if new:
            return new[0]
        await asyncio.sleep(0.05)
    raise RuntimeError("Quorum posted no poll message (is the bot logged in and synced?)")


async def storm(server: LoopbackDiscord, message: dict[str, Any], voters: range, concurrency: int,
                bot: str, label: str) -> Round:
    custom_ids = [c["custom_id"] for row in message["components"] for c in row["components"]]
    waiting: dict[int, asyncio.Future[float]] = {}

    def on_ack(interaction_id: int) -> None:
        future = waiting.pop(interaction_id, None)
        if future is not None and not future.done():
            future.set_result(time.perf_counter())

    server.on_ack = on_ack
    loop = asyncio.get_running_loop()
    latencies: list[float] = []
    lost = 0
    queue = iter(enumerate(voters))
    first = last = 0.0

    async def worker() -> None:
        nonlocal lost, first, last
        for i, voter in queue:
            payload = server.interaction(
                3, {"custom_id": custom_ids[i % len(custom_ids)], "component_type": 2},
                user_id=voter, message=message,
            )
            future: asyncio.Future[float] = loop.create_future()
            waiting[int(payload["id"])] = future
            start = time.perf_counter()
            first = first or start
            await server.send_interaction(payload)
            try:
                when = await asyncio.wait_for(future, ACK_TIMEOUT)
            except TimeoutError:
                lost += 1
                continue
            latencies.append(when - start)
            last = max(last, when)

    await asyncio.gather(*(worker() for _ in range(concurrency)))
    server.on_ack = None
    return Round(bot, label, last - first, latencies, lost)


def count_votes(database: Path) -> dict[int, int]:
    with sqlite3.connect(database) as conn:
        return dict(conn.execute("SELECT poll_id, count(*) FROM votes GROUP BY poll_id").fetchall())


async def run_bot(kind: str, args: argparse.Namespace) -> list[Round]:
    server = LoopbackDiscord()
    await server.start()
    data_dir = Path(tempfile.mkdtemp(prefix="quorum-loopback-"))
    database = data_dir / "quorum.sqlite3"
    env = {**os.environ, **server.env, "LOG_LEVEL": "WARNING", "DATABASE_PATH": str(database)}
    if kind == "quorum":
        command = [sys.executable, str(ROOT / "run.py")]
    else:
        plain = ["--plain"] if kind == "bare-plain" else []
        command = [sys.executable, str(ROOT / "bench" / "loopback_bare.py"), *plain]
    process = subprocess.Popen(command, cwd=data_dir, env=env)
    rounds: list[Round] = []
    try:
        await asyncio.wait_for(server.ready.wait(), 60)
        await asyncio.sleep(3)  # discord.py waits up to 2 s for more guilds before on_ready
        plan = [("warm-up", range(VOTER_BASE, VOTER_BASE + args.warmup))]
        plan += [(f"round {r}", range(VOTER_BASE, VOTER_BASE + args.members)) for r in range(1, args.rounds + 1)]
        message = None if kind == "quorum" else bare_message(server)
        for label, voters in plan:
            if kind == "quorum":
                message = await post_quorum_poll(server)
            assert message is not None
            result = await storm(server, message, voters, args.concurrency, kind, label)
            rounds.append(result)
            await asyncio.sleep(1)  # let the bot finish what the round started (Quorum: an edit)
        if kind == "quorum":
            counts = count_votes(database)
            expected = [args.warmup, *[args.members] * args.rounds]
            got = [counts.get(poll_id, 0) for poll_id in range(1, len(expected) + 1)]
            for r in rounds:
                r.extra["db_check"] = "OK" if got == expected else f"MISMATCH {got} != {expected}"
            rounds[-1].extra["edits"] = server.edits
    finally:
        stop_bot(process)
        await server.stop()
        shutil.rmtree(data_dir, ignore_errors=True)
    return rounds


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--members", type=int, default=1000, help="members, each clicking once per round")
    parser.add_argument("--concurrency", type=int, default=50, help="clicks in flight at once")
    parser.add_argument("--rounds", type=int, default=3, help="measured rounds per bot process")
    parser.add_argument("--warmup", type=int, default=100, help="clicks of an unmeasured first round")
    parser.add_argument("--sets", type=int, default=6, help="sets of one process per bot, order changing per set")
    args = parser.parse_args(argv)
    print("\n".join(machine_lines()))
    print(f"run     : {args.members} members x 1 click, concurrency {args.concurrency}, {args.sets} sets x "
          f"{args.rounds} rounds per bot, each bot a real process against a loopback Discord")
    all_rounds: list[Round] = []
    ratios: list[tuple[Any, ...]] = []
    for number in range(1, args.sets + 1):
        order = set_order(KINDS, number)
        by_kind: dict[str, list[Round]] = {}
        for kind in order:
            rounds = asyncio.run(run_bot(kind, args))
            for r in rounds:
                r.label = f"s{number} {r.label}"
            all_rounds += rounds
            by_kind[kind] = [r for r in rounds if " round" in r.label]
        ratios.append(set_ratios(number, order, by_kind))

    print()
    print(table(
        ["bot", "round", "acked", "lost", "wall s", "votes/s", "p50 ms", "p99 ms", "max ms", "notes"],
        [[r.bot, r.label, len(r.latencies), r.lost, f"{r.wall:.3f}", f"{r.rate:,.0f}", f"{r.p50 * 1000:.1f}",
          f"{r.p99 * 1000:.1f}", f"{max(r.latencies) * 1000:.1f}", " ".join(f"{k}={v}" for k, v in r.extra.items())]
         for r in all_rounds],
    ))
    print()
    print("Median of all measured rounds:")
    print(table(
        ["", "votes/s", "p50 ms", "p99 ms"],
        [[kind, f"{median([r.rate for r in rs]):,.0f}", f"{median([r.p50 for r in rs]) * 1000:.1f}",
          f"{median([r.p99 for r in rs]) * 1000:.1f}"]
         for kind in KINDS if (rs := [r for r in all_rounds if r.bot == kind and " round" in r.label])],
    ))
    print()
    print(table(
        ["set", "order", "vs bare: throughput", "p99", "vs bare-plain: throughput", "p99"],
        [[str(n), order, f"{t:.2f}x", f"{p:.2f}x", f"{pt:.2f}x", f"{pp:.2f}x"] for n, order, t, p, pt, pp in ratios],
    ))

    def summary(index: int, target: float, higher: bool) -> str:
        values = [r[index] for r in ratios]
        value = median(values)
        met = value >= target if higher else value <= target
        return f"{value:.2f}x (sets {min(values):.2f}-{max(values):.2f}) {'met' if met else 'NOT met'}"

    print()
    print("Targets: throughput >= 0.80x, p99 <= 2.00x, median of the sets.")
    print(f"Quorum against bare:       throughput {summary(2, 0.8, True)}; p99 {summary(3, 2.0, False)}")
    print(f"Quorum against bare-plain: throughput {summary(4, 0.8, True)}; p99 {summary(5, 2.0, False)}")
    lost = sum(r.lost for r in all_rounds)
    bad = [r for r in all_rounds if str(r.extra.get("db_check", "OK")) != "OK"]
    if lost or bad:
        print(f"WARNING: {lost} click(s) never acknowledged, {len(bad)} round(s) with a DB mismatch")
    return 0


if __name__ == "__main__":
    sys.exit(main())
