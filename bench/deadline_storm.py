"""A deadline storm: N posted polls, all due within the same minute, announced by two processes
(one shard each) sharing one PostgreSQL database. How long until every result is out, and
is any poll announced twice?

    python bench/deadline_storm.py                 # small: 500 polls (~1 min)
    python bench/deadline_storm.py --polls 10000   # full size (~5 min on 2 cores)

The loopback Discord (`bench/loopback_discord.py`) has two guilds, one per shard, and two
`python run.py` processes run SHARD_COUNT=2 with SHARD_IDS=0 and 1. Once both are up, the
polls are written straight into the database in one transaction, as Quorum leaves a posted
poll: a poll message (stored in the loopback server too, so the final edit and the reply
succeed), `message_id` set, `closes_at` spread over the minute before now, a few votes each,
half of them in each guild. From that commit the clock runs until every poll has
`announced_at` set: each process finds the due polls by itself (it looks at the database at
least every 15 s), closes them and claims announcements; each announcement edits the poll
card, renders a chart and posts the result as a reply. Duplicates are counted three ways:
result messages posted per poll, replies per poll message, and posts Discord's nonce check
would have absorbed (`enforce_nonce`). Everything shares this machine's cores: the loopback
server (this process), both bot processes and PostgreSQL.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import sys
import tempfile
import time
from collections import Counter
from pathlib import Path
from typing import Any

from _common import (
    BENCH_DATABASE_URL,
    BotProcess,
    bot_env,
    machine_lines,
    pg_scratch_schema,
    pg_version,
    table,
)
from loopback_discord import CREATOR_ID, LoopbackDiscord, guild_on_shard

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

GUILDS = (guild_on_shard(0, 2), guild_on_shard(1, 2))
OPTIONS = ("Yes", "No", "Maybe")
VOTER_BASE = 1300000000000000000


def cpu_seconds(pid: int) -> float:
    with open(f"/proc/{pid}/stat", encoding="ascii") as stat:
        fields = stat.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")  # utime + stime


async def migrate(url: str) -> None:
    """Create Quorum's schema the way the bot does on start."""
    from bot.config import Settings
    from bot.db import open_database

    db = await open_database(Settings(token=None, database_path=Path("unused.sqlite3"), database_url=url))
    await db.close()


def poll_card(poll_id: int, number: int) -> dict[str, Any]:
    buttons = [{"type": 2, "style": 2, "label": o, "custom_id": f"quorum:vote:{poll_id}:{i}"}
               for i, o in enumerate(OPTIONS)]
    return {"embeds": [{"type": "rich", "title": f"📊 Poll #{number}", "description": f"**Storm poll {number}?**"}],
            "components": [{"type": 1, "components": buttons}]}


def insert_polls(server: LoopbackDiscord, url: str, count: int, votes: int) -> float:
    """Write `count` posted, overdue polls in one transaction; the perf_counter time of its commit."""
    import psycopg

    now = time.time()
    numbers: Counter[int] = Counter()
    polls, options, ballots = [], [], []
    for poll_id in range(1, count + 1):
        guild = GUILDS[poll_id % 2]
        numbers[guild] += 1
        channel = server.guilds[guild]
        message = server.store_message(channel, poll_card(poll_id, numbers[guild]))
        closes_at = now - 60 + 60 * poll_id / count  # all within the minute before now
        polls.append((poll_id, guild, numbers[guild], channel, int(message["id"]), CREATOR_ID,
                      f"Storm poll {numbers[guild]}?", closes_at - 3600, closes_at))
        options += [(poll_id, i, label) for i, label in enumerate(OPTIONS)]
        ballots += [(poll_id, VOTER_BASE + v, 0, (poll_id + v) % len(OPTIONS), closes_at - 60) for v in range(votes)]
    with psycopg.connect(url) as conn, conn.cursor() as cursor:
        with cursor.copy("COPY polls (id, guild_id, number, channel_id, message_id, creator_id, question,"
                         " created_at, closes_at) FROM STDIN") as copy:
            for row in polls:
                copy.write_row(row)
        with cursor.copy("COPY poll_options (poll_id, position, label) FROM STDIN") as copy:
            for row in options:
                copy.write_row(row)
        with cursor.copy("COPY votes (poll_id, user_id, slot, option, voted_at) FROM STDIN") as copy:
            for row in ballots:
                copy.write_row(row)
        cursor.execute("SELECT setval(pg_get_serial_sequence('polls', 'id'), %s)", (count,))
    return time.perf_counter()  # the block above committed on leaving it


async def storm(args: argparse.Namespace, url: str, workdir: Path) -> None:
    import psycopg

    await migrate(url)
    server = LoopbackDiscord(GUILDS, shard_count=2)
    await server.start()
    bots = [BotProcess(f"p{i}", bot_env(**server.env_for(f"p{i}"), DATABASE_URL=url, SHARD_COUNT="2",
                                        SHARD_IDS=str(i), LOG_LEVEL="WARNING"), workdir) for i in (0, 1)]
    try:
        for bot in bots:
            bot.start()
        await asyncio.wait_for(asyncio.gather(*(server.shard_ready(i).wait() for i in (0, 1))), 60)
        await asyncio.sleep(3)  # on_ready comes 2 s after the guilds; the schedulers start then
        cpu_before = {b.label: cpu_seconds(b.process.pid) for b in bots}
        committed = insert_polls(server, url, args.polls, args.votes)
        print(f"inserted {args.polls} overdue polls ({args.votes} votes each) in one transaction")
        marks: dict[str, float] = {}
        with psycopg.connect(url, autocommit=True) as conn:
            while True:
                closed, announced = conn.execute(
                    "SELECT count(closed_at), count(announced_at) FROM polls").fetchone()  # type: ignore[misc]
                elapsed = time.perf_counter() - committed
                if closed and "first closed" not in marks:
                    marks["first closed"] = elapsed
                for share in (0.01, 0.5, 0.9, 1.0):
                    label = f"{share:.0%} announced"
                    if announced >= max(1, share * args.polls) and label not in marks:
                        marks[label] = elapsed
                if announced >= args.polls:
                    break
                if elapsed > args.timeout:
                    print(f"TIMEOUT after {args.timeout:.0f} s: {closed} closed, {announced} announced")
                    break
                await asyncio.sleep(0.25)
            rows = conn.execute("SELECT id, message_id, announcement_id FROM polls").fetchall()
        cpu = {b.label: cpu_seconds(b.process.pid) - cpu_before[b.label] for b in bots}
        alive = {b.label: b.running for b in bots}
    finally:
        for bot in bots:
            bot.stop()
        await server.stop()
    complaints = [line for bot in bots for log in bot.logs for line in log.read_text(errors="replace").splitlines()
                  if ("WARNING" in line or "ERROR" in line) and "voice will NOT be supported" not in line]

    results = [p for p in server.posts if p.nonce and p.nonce.startswith("quorum-result-")]
    sent = Counter(p.nonce for p in results if not p.replayed)
    replies: dict[str, list[str]] = {}
    for channel in server.guilds.values():
        for message in server.channel_log(channel):
            if reference := message.get("message_reference"):
                replies.setdefault(str(reference.get("message_id")), []).append(message["id"])
    by_sender = Counter(p.sender for p in results if not p.replayed)
    wrong = sum(1 for poll_id, message_id, announcement_id in rows
                if replies.get(str(message_id)) != [str(announcement_id)] or f"quorum-result-{poll_id}" not in sent)
    print()
    print(table(["milestone", "s after the commit"], [[k, f"{v:.1f}"] for k, v in marks.items()]))
    total = marks.get("100% announced")
    start = marks.get("first closed")
    if total is not None and start is not None:
        print(f"\nannounced {args.polls} polls in {total:.1f} s after the commit; "
              f"{args.polls / max(1e-9, total - start):,.0f} announcements/s from the first close")
    print()
    print(table(["check", "value"], [
        ["result messages posted", len(results) - server.nonce_replays],
        ["polls with more than one result message", sum(1 for n in sent.values() if n > 1)],
        ["duplicate result messages", sum(n - 1 for n in sent.values() if n > 1)],
        ["poll messages with more than one reply", sum(1 for r in replies.values() if len(r) > 1)],
        ["resends absorbed by the nonce check", server.nonce_replays],
        ["polls unannounced, or announcement_id not their one reply", wrong],
        ["results posted by p0 / p1", f"{by_sender['p0']} / {by_sender['p1']}"],
        ["bot CPU s, p0 / p1", f"{cpu['p0']:.1f} / {cpu['p1']:.1f}"],
        ["poll-card edits", server.edits],
        ["both processes still running", all(alive.values())],
        ["warnings and errors in the bots' logs", len(complaints)],
    ]))
    for line in complaints[:10]:
        print("  " + line)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--polls", type=int, default=500, help="polls due within the same minute")
    parser.add_argument("--votes", type=int, default=3, help="votes per poll")
    parser.add_argument("--timeout", type=float, default=1800.0, help="give up after this many seconds")
    parser.add_argument("--database-url", default=BENCH_DATABASE_URL, help="PostgreSQL database for a scratch schema")
    args = parser.parse_args(argv)
    print("\n".join(machine_lines()))
    print(f"db      : {pg_version(args.database_url)}, on this machine")
    print(f"note    : one machine: the loopback server, both bot processes and PostgreSQL share its "
          f"{os.cpu_count()} cores")
    with pg_scratch_schema(args.database_url) as url, tempfile.TemporaryDirectory(prefix="quorum-storm-") as workdir:
        asyncio.run(storm(args, url, Path(workdir)))
    return 0


if __name__ == "__main__":
    sys.exit(main())
