"""Vote clicks against a loopback Discord: each bot is a real process talking HTTP and WebSocket.

    python bench/votes_loopback.py [--members 1000] [--concurrency 50] [--sets N] [--rounds 3]
        [--kinds bare,quorum,bare-plain,quorum-pg] [--database-url postgresql:///quorum_bench]
        [--cpu] [--profile DIR]

The second harness the poll issue allows ("SimCord or a loopback server"). `bench/votes.py`
runs the bot inside SimCord, whose bookkeeping (payload copies, callback tracking, a stored
record per message) is most of the cost there. Here nothing is simulated inside the bot's
process: `bench/loopback_discord.py` serves REST and the gateway on 127.0.0.1, and the bot runs
as its own process, pointed there with `DISCORD_API_BASE` and `DISCORD_GATEWAY_URL`:

* quorum: `python run.py`, exactly as a maintainer runs it (heap frozen after setup, SQLite
  file in a temporary directory, `synchronous=FULL`); each round votes on a new poll posted
  with `/poll create` (an application-command interaction sent over the gateway).
* quorum-pg: the same `python run.py` with `DATABASE_URL` at `--database-url`, in a new schema
  per process (`options=-csearch_path=…`, dropped afterwards). Skipped, with a note, when no
  server answers there and `--kinds` does not name it.
* bare: `bench/loopback_bare.py`, a bot whose vote button only answers an ephemeral "ok",
  with `allowed_mentions` like every Quorum message; bare-plain: the same without it.

This process is the server and the clicking members. `--concurrency` driver tasks each keep
one click in flight: an `INTERACTION_CREATE` (a button click carrying the poll message) goes
out on the WebSocket, and the click is acknowledged when the bot's POST to
`/interactions/{id}/{token}/callback` arrives. Latency runs from just before the frame is sent
to that POST; throughput = clicks / (first send -> last acknowledgement). Both sides share
the machine's 2 cores (the server and drivers in this process, the bot in its own).
Each set runs every bot once, in a new order (the default number of sets, 2 per bot, puts each
bot in each position twice); ratios are per set, verdicts the median of sets. After each Quorum
process's rounds the votes in its database (SQLite or PostgreSQL) are counted against the clicks.

Profiling, neither changing what the other columns measure: `--cpu` adds to each round's notes
the CPU time per click (user + system, every thread, from /proc) of the bot process and its
children (`bot`), of this process (`srv`: the loopback server and the drivers) and, for
quorum-pg, of the server processes of the bot's PostgreSQL sessions (`pg`; a local server),
measured from the round's first click to the end of the second after it (so the refresher's
edits count). `--profile DIR` runs each bot process under cProfile (its event loop's thread;
Quorum's database threads are not seen), enabled from the first measured round to the last,
and writes `DIR/<bot>-s<set>.prof` (read it with `python -m pstats`); it slows the bot, so its
rounds are no figures to compare.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import os
import shutil
import signal
import sqlite3
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from _common import LatencyFigures, machine_lines, median, pg_scratch_schema, pg_version, set_order, stop_bot, table
from loopback_discord import CHANNEL_ID, COMMAND_ID, CREATOR_ID, LoopbackDiscord, answer_custom_ids

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))  # for bot.db_postgres, imported only by quorum-pg
QUESTION = "Where should the team offsite be this year?"
OPTIONS = ("Lisbon", "Kraków", "Valencia", "Tallinn")
KINDS = ("bare", "quorum", "bare-plain", "quorum-pg")
QUORUMS, BASELINES = ("quorum", "quorum-pg"), ("bare", "bare-plain")
PAIRS = [(q, b) for q in QUORUMS for b in BASELINES] + [("quorum-pg", "quorum")]
DEFAULT_URL = "postgresql:///quorum_bench"
VOTES_PER_POLL = ("SELECT count(v.poll_id) FROM polls p LEFT JOIN votes v ON v.poll_id = p.id"
                  " GROUP BY p.id ORDER BY p.id")
ACK_TIMEOUT = 30.0
VOTER_BASE = 1300000000000000000
# `--profile`: the bot process runs its script through this; SIGUSR1 starts cProfile, the next
# one stops it and writes the file (so nothing depends on how the process ends).
PROFILED_RUN = """
import cProfile, os, runpy, signal, sys
out, script = sys.argv[1], sys.argv[2]
sys.path[0] = os.path.dirname(script)  # as `python script` has it
profile, running = cProfile.Profile(), []
def toggle(*_):
    if running:
        profile.disable(); running.clear(); profile.dump_stats(out)
    else:
        running.append(1); profile.enable()
signal.signal(signal.SIGUSR1, toggle)
sys.argv = sys.argv[2:]
runpy.run_path(script, run_name="__main__")
"""


@dataclass
class Round(LatencyFigures):
    bot: str
    label: str
    wall: float
    latencies: list[float]
    lost: int
    stored: int | None = None  # votes found in the database afterwards (Quorum only)
    extra: dict[str, Any] = field(default_factory=dict)


def pg_server(url: str) -> str:
    """One line about the server at `url`, creating its database if only that is missing;
    raises ImportError or psycopg.Error when there is no server to use."""
    import psycopg
    from psycopg.conninfo import conninfo_to_dict, make_conninfo

    try:
        psycopg.connect(url, connect_timeout=3).close()
    except psycopg.OperationalError as error:
        if "does not exist" not in str(error):
            raise
        with psycopg.connect(make_conninfo(url, dbname="postgres"), connect_timeout=3, autocommit=True) as admin:
            admin.execute(f'CREATE DATABASE "{conninfo_to_dict(url)["dbname"]}"')
    return pg_version(url)


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
    custom_ids = answer_custom_ids(message)
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


def cpu_ns(pids: list[int]) -> int:
    """CPU time (ns, every thread, user + system) the processes `pids` have used so far."""
    total = 0
    for pid in pids:
        with contextlib.suppress(OSError):
            for task in os.listdir(f"/proc/{pid}/task"):
                with contextlib.suppress(OSError), open(f"/proc/{pid}/task/{task}/schedstat") as stat:
                    total += int(stat.read().split()[0])
    return total


def process_tree(root: int) -> list[int]:
    """`root` and every process below it."""
    children: dict[int, list[int]] = {}
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            with contextlib.suppress(OSError), open(f"/proc/{entry}/stat") as stat:
                parent = int(stat.read().rpartition(")")[2].split()[1])
                children.setdefault(parent, []).append(int(entry))
    found, todo = [], [root]
    while todo:
        pid = todo.pop()
        found.append(pid)
        todo += children.get(pid, [])
    return found


def server_sessions(url: str) -> list[int]:
    """The PostgreSQL server processes serving the bot: every other session on its database
    (the bot's writer and reader; the server must be on this machine)."""
    import psycopg

    with psycopg.connect(url) as conn:
        rows = conn.execute("SELECT pid FROM pg_stat_activity WHERE datname = current_database()"
                            " AND pid <> pg_backend_pid() AND backend_type = 'client backend'").fetchall()
    return [pid for (pid,) in rows]


@dataclass
class CpuMeter:
    """`--cpu`: CPU per click of the bot, this process and the bot's PostgreSQL sessions over a
    round (only the bot's own: other users of the same server are not counted)."""

    bot_pid: int
    database_url: str
    start: dict[str, int] = field(default_factory=dict)
    sessions: list[int] = field(default_factory=list)

    def _now(self) -> dict[str, int]:
        now = {"bot": cpu_ns(process_tree(self.bot_pid)), "srv": cpu_ns([os.getpid()])}
        if self.database_url:
            now["pg"] = cpu_ns(self.sessions)
        return now

    def begin(self) -> None:
        if self.database_url:
            self.sessions = server_sessions(self.database_url)
        self.start = self._now()

    def notes(self, clicks: int) -> dict[str, str]:
        end = self._now()
        return {f"{k}_ms": f"{(end[k] - self.start[k]) / 1e6 / max(1, clicks):.3f}" for k in end}


def count_votes(env: dict[str, str]) -> list[int]:
    """Votes per poll, in the order the polls were made, in the database the bot was given."""
    if env["DATABASE_URL"]:
        import psycopg

        with psycopg.connect(env["DATABASE_URL"]) as conn:
            return [n for (n,) in conn.execute(VOTES_PER_POLL).fetchall()]
    with contextlib.closing(sqlite3.connect(env["DATABASE_PATH"])) as conn:
        return [n for (n,) in conn.execute(VOTES_PER_POLL).fetchall()]


async def run_bot(kind: str, args: argparse.Namespace, profile: Path | None = None) -> list[Round]:
    with pg_scratch_schema(args.database_url) if kind == "quorum-pg" else contextlib.nullcontext("") as url:
        return await run_process(kind, args, url, profile)


async def run_process(kind: str, args: argparse.Namespace, database_url: str, profile: Path | None) -> list[Round]:
    server = LoopbackDiscord()
    await server.start()
    data_dir = Path(tempfile.mkdtemp(prefix="quorum-loopback-"))
    env = {**os.environ, **server.env, "LOG_LEVEL": "WARNING", "DATABASE_PATH": str(data_dir / "quorum.sqlite3"),
           "DATABASE_URL": database_url}  # "" (even over one in the environment): SQLite
    quorum = kind in QUORUMS
    if quorum:
        command = [sys.executable, str(ROOT / "run.py")]
    else:
        plain = ["--plain"] if kind == "bare-plain" else []
        command = [sys.executable, str(ROOT / "bench" / "loopback_bare.py"), *plain]
    if profile is not None:
        command = [sys.executable, "-c", PROFILED_RUN, str(profile), *command[1:]]
    process = subprocess.Popen(command, cwd=data_dir, env=env)
    rounds: list[Round] = []
    try:
        await asyncio.wait_for(server.ready.wait(), 60)
        await asyncio.sleep(3)  # discord.py waits up to 2 s for more guilds before on_ready
        plan = [("warm-up", range(VOTER_BASE, VOTER_BASE + args.warmup))]
        plan += [(f"round {r}", range(VOTER_BASE, VOTER_BASE + args.members)) for r in range(1, args.rounds + 1)]
        message = None if quorum else bare_message(server)
        meter = CpuMeter(process.pid, database_url) if args.cpu else None
        for number, (label, voters) in enumerate(plan):
            if quorum:
                message = await post_quorum_poll(server)
            assert message is not None
            if profile is not None and number == 1:
                process.send_signal(signal.SIGUSR1)  # start cProfile before the first measured round
            if meter is not None:
                meter.begin()
            result = await storm(server, message, voters, args.concurrency, kind, label)
            rounds.append(result)
            await asyncio.sleep(1)  # let the bot finish what the round started (Quorum: an edit)
            if meter is not None:
                result.extra.update(meter.notes(len(voters)))
        if profile is not None and len(plan) > 1:
            process.send_signal(signal.SIGUSR1)  # stop it after the last, and write the file
            for _ in range(100):
                if profile.exists():
                    break
                await asyncio.sleep(0.1)
        if quorum:
            got = count_votes(env)
            for r, (_, voters), stored in zip(rounds, plan, got + [0] * len(plan), strict=False):
                r.stored = stored
                r.extra["db_check"] = "OK" if stored == len(voters) else f"MISMATCH {stored} != {len(voters)}"
            rounds[-1].extra["edits"] = server.edits
            if len(got) != len(plan):
                rounds[-1].extra["polls"] = f"{len(got)} in the database, {len(plan)} posted"
    finally:
        stop_bot(process)
        await server.stop()
        shutil.rmtree(data_dir, ignore_errors=True)
    return rounds


def set_ratio(by_kind: dict[str, list[Round]], bot: str, baseline: str) -> tuple[float, float]:
    """Throughput and p99 of `bot` over `baseline` in one set (medians of each process's rounds)."""
    q, b = by_kind[bot], by_kind[baseline]
    return (median([r.rate for r in q]) / median([r.rate for r in b]),
            median([r.p99 for r in q]) / median([r.p99 for r in b]))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--members", type=int, default=1000, help="members, each clicking once per round")
    parser.add_argument("--concurrency", type=int, default=50, help="clicks in flight at once")
    parser.add_argument("--rounds", type=int, default=3, help="measured rounds per bot process")
    parser.add_argument("--warmup", type=int, default=100, help="clicks of an unmeasured first round")
    parser.add_argument("--sets", type=int, help="sets of one process per bot, order changing per set "
                        "(default: 2 per bot, so each bot runs in each position twice)")
    parser.add_argument("--kinds", default=",".join(KINDS),
                        help=f"comma-separated bots to run, of {', '.join(KINDS)} (default: all; quorum-pg "
                        "is left out with a note when no PostgreSQL server answers)")
    parser.add_argument("--database-url", default=DEFAULT_URL, help="PostgreSQL for quorum-pg (a new schema "
                        f"per process; the database is created if missing; default {DEFAULT_URL})")
    parser.add_argument("--cpu", action="store_true", help="add CPU ms per click to each round's notes: the bot "
                        "process (bot), this process, the server and drivers (srv), the bot's PostgreSQL sessions (pg)")
    parser.add_argument("--profile", metavar="DIR", help="run each bot process under cProfile over its measured "
                        "rounds; writes DIR/<bot>-s<set>.prof (profiled rounds are slower: no figures to compare)")
    args = parser.parse_args(argv)
    if args.profile:
        Path(args.profile).mkdir(parents=True, exist_ok=True)
    asked = [k.strip() for k in args.kinds.split(",") if k.strip()]
    if unknown := sorted(set(asked) - set(KINDS)):
        parser.error(f"unknown kind(s) {', '.join(unknown)}; choose from {', '.join(KINDS)}")
    kinds = tuple(k for k in KINDS if k in asked)
    print("\n".join(machine_lines()))
    if "quorum-pg" in kinds:
        from bot.config import redact_url

        try:
            print(f"postgres: {pg_server(args.database_url)} at {redact_url(args.database_url)}")
        except Exception as error:  # ImportError (no psycopg) or psycopg.Error (no server, no access)
            detail = " ".join(str(error).split())
            reason = f"no PostgreSQL to use at {redact_url(args.database_url)} ({type(error).__name__}: {detail})"
            if args.kinds != parser.get_default("kinds"):
                parser.error(f"quorum-pg asked for, but {reason}")
            print(f"NOTE    : quorum-pg skipped: {reason}. Start a server (docs/performance.md) or pass "
                  "--database-url to include it.")
            kinds = tuple(k for k in kinds if k != "quorum-pg")
    sets = args.sets or 2 * len(kinds)
    print(f"run     : {args.members} members x 1 click, concurrency {args.concurrency}, {sets} sets x "
          f"{args.rounds} rounds per bot ({', '.join(kinds)}), each bot a real process against a loopback Discord")
    all_rounds: list[Round] = []
    pairs = [(q, b) for q, b in PAIRS if q in kinds and b in kinds]
    ratios: list[tuple[int, str, dict[tuple[str, str], tuple[float, float]]]] = []
    for number in range(1, sets + 1):
        order = set_order(kinds, number)
        by_kind: dict[str, list[Round]] = {}
        started = time.perf_counter()
        for kind in order:
            profile = Path(args.profile).resolve() / f"{kind}-s{number}.prof" if args.profile else None
            rounds = asyncio.run(run_bot(kind, args, profile))
            for r in rounds:
                r.label = f"s{number} {r.label}"
            all_rounds += rounds
            by_kind[kind] = [r for r in rounds if " round" in r.label]
        ratios.append((number, ", ".join(order), {pair: set_ratio(by_kind, *pair) for pair in pairs}))
        print(f"set {number}/{sets} ({', '.join(order)}): {time.perf_counter() - started:.0f} s", flush=True)

    print()
    print(table(
        ["bot", "round", "acked", "lost", "stored", "wall s", "votes/s", "p50 ms", "p99 ms", "max ms", "notes"],
        [[r.bot, r.label, len(r.latencies), r.lost, "" if r.stored is None else r.stored, f"{r.wall:.3f}",
          f"{r.rate:,.0f}", f"{r.p50 * 1000:.1f}", f"{r.p99 * 1000:.1f}", f"{max(r.latencies, default=0) * 1000:.1f}",
          " ".join(f"{k}={v}" for k, v in r.extra.items())]
         for r in all_rounds],
    ))
    print()
    print("Median of all measured rounds:")
    print(table(
        ["", "votes/s", "p50 ms", "p99 ms"],
        [[kind, f"{median([r.rate for r in rs]):,.0f}", f"{median([r.p50 for r in rs]) * 1000:.1f}",
          f"{median([r.p99 for r in rs]) * 1000:.1f}"]
         for kind in kinds if (rs := [r for r in all_rounds if r.bot == kind and " round" in r.label])],
    ))
    if pairs:
        print()
        print("Per set, throughput / p99 of the first bot against the second (medians of each process's rounds):")
        print(table(
            ["set", "order", *(f"{q} / {b}" for q, b in pairs)],
            [[str(n), order, *(f"{t:.2f}x / {p:.2f}x" for t, p in by_pair.values())] for n, order, by_pair in ratios],
        ))

    def summary(pair: tuple[str, str], index: int, target: float, higher: bool) -> str:
        values = [by_pair[pair][index] for _, _, by_pair in ratios]
        value = median(values)
        verdict = "met" if (value >= target if higher else value <= target) else "NOT met"
        return f"{value:.2f}x (sets {min(values):.2f}-{max(values):.2f}){f' {verdict}' * (pair[1] in BASELINES)}"

    print()
    print("Targets: throughput >= 0.80x, p99 <= 2.00x, median of the sets.")
    for pair in pairs:
        print(f"{pair[0]:9} against {pair[1]:10}: throughput {summary(pair, 0, 0.8, True)}; "
              f"p99 {summary(pair, 1, 2.0, False)}")
    for kind in (k for k in QUORUMS if k in kinds):
        rs = [r for r in all_rounds if r.bot == kind]
        clicks = sum(len(r.latencies) + r.lost for r in rs)
        stored = [r.stored or 0 for r in rs]
        lost = sum(max(0, len(r.latencies) + r.lost - n) for r, n in zip(rs, stored, strict=True))
        extra = sum(max(0, n - len(r.latencies) - r.lost) for r, n in zip(rs, stored, strict=True))
        print(f"Votes in {kind}'s database: {sum(stored):,} of {clicks:,} clicks ({len(rs)} polls): "
              f"{lost} lost, {extra} extra")
    lost = sum(r.lost for r in all_rounds)
    bad = [r for r in all_rounds if str(r.extra.get("db_check", "OK")) != "OK"]
    if lost or bad:
        print(f"WARNING: {lost} click(s) never acknowledged, {len(bad)} round(s) with a DB mismatch")
    return 0


if __name__ == "__main__":
    sys.exit(main())
