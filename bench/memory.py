"""Memory of a running Quorum bot: 0 open polls vs 10,000 open polls.

    python bench/memory.py [--polls 10000] [--voters 20]

One QuorumBot runs under SimCord for the whole script (SQLite file in a temporary directory).

1. Warm-up, so the baseline already holds everything that is loaded once: a poll is created
   with `/poll create`, voted on by real clicks, closed with `/poll close` (the announcement
   renders the results chart, which imports matplotlib), listed, and the message refresh and
   the deadline scheduler have run. 0 polls are open.
2. Baseline: gc.collect(), then RSS (VmRSS from /proc/self/status) and Python-level counts.
2b. Second baseline (skip with --no-churn): the same number of polls is created and then
   discarded again (`discard_unposted`, what `/poll create` does when posting fails), so the
   process has done the same database work as in step 3 but has 0 open polls.
3. 10,000 polls are stored directly through `PollRepository.create` + `attach_message` (as
   `/poll create` stores them, without posting 10,000 Discord messages), one after another
   (`--chunk N` stores N at a time): half with a one-week deadline, half open-ended, 4 answers
   each. A `create()` that commits but cannot read its poll back is counted and finished from
   the database.
4. Exercise: 5 more polls with real messages (`/poll create`), every test member clicks on each
   (through the click path of bench/votes.py),
   a few votes go straight through `PollService.vote` into the stored polls, the scheduler is
   poked and virtual time advanced past its longest sleep (so it wakes and queries the 10,005
   deadlines), and the delayed poll-message edits run.
5. gc.collect() and measure again; then, as a diagnostic, glibc `malloc_trim(0)` and measure.

The SimCord world itself (members, messages, transcript) lives in the same process and grows a
little with the clicks of step 4; the figures include it. Python-level numbers are printed next
to RSS so a difference can be told apart from allocator noise.
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import shutil
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from _common import NativeMemory, SimClock, machine_lines, proc_status_kib, table
from simcord import Env
from votes import storm

from bot.client import QuorumBot
from bot.config import Settings
from bot.polls.models import PollDraft

TARGET_MB = 10.0
OPTIONS = ("Alpha", "Bravo", "Charlie", "Delta")


NATIVE = NativeMemory()


def measure(bot: QuorumBot, label: str, open_polls: int) -> dict[str, Any]:
    gc.collect()
    sqlite_bytes = NATIVE.sqlite_bytes()
    malloc = NATIVE.malloc()
    cog: Any = bot.get_cog("Polls")
    refresher = cog.refresher if cog else None
    view_store = bot._connection._view_store
    status = proc_status_kib("VmRSS", "RssAnon", "RssFile", "RssShmem")
    return {
        "phase": label,
        "open polls": open_polls,
        "rss_kib": status["VmRSS"],
        "anon MB": f"{status.get('RssAnon', 0) / 1024:.1f}",
        "file+shmem MB": f"{(status.get('RssFile', 0) + status.get('RssShmem', 0)) / 1024:.1f}",
        "sqlite MB": "?" if sqlite_bytes is None else f"{sqlite_bytes / 2**20:.1f}",
        "malloc used MB": "?" if malloc is None else f"{malloc[0] / 2**20:.1f}",
        "malloc free MB": "?" if malloc is None else f"{malloc[1] / 2**20:.1f}",
        "py blocks": sys.getallocatedblocks(),
        "gc objects": len(gc.get_objects()),
        "asyncio tasks": len(asyncio.all_tasks()),
        "refresher entries": (
            len(refresher._pending) + len(refresher._last_edit) + len(refresher._blocked_until) if refresher else 0
        ),
        "dynamic items": len(view_store._dynamic_items),
        "views": len(view_store._views),
    }


async def run(args: argparse.Namespace, db_dir: Path) -> tuple[list[dict[str, Any]], list[str]]:
    clock = SimClock()
    bot = QuorumBot(Settings(token=None, database_path=db_dir / "quorum.sqlite3"), clock=clock)
    env = Env(bot, shard_count=1)
    clock.env = env
    guild = env.create_guild("Memory")
    channel = guild.create_text_channel("polls")
    creator = guild.add_member(env.create_user("creator"))
    voters = [guild.add_member(env.create_user(f"voter{i}")) for i in range(args.voters)]
    notes: list[str] = []
    rows: list[dict[str, Any]] = []
    await env.start()
    try:
        repo = bot.polls.repo
        cog: Any = bot.get_cog("Polls")

        async def post_and_vote(question: str, duration: str | None) -> None:
            options = {"question": question, "options": " | ".join(OPTIONS)}
            if duration:
                options["duration"] = duration
            result = await creator.slash(channel, "poll create", **options)
            assert result.acknowledged
            message = channel.last_message
            assert message is not None and message.components
            # The clicks go through votes.py's click path (SimCord's actor click minus the per-click
            # settle, 5 at a time); then virtual time runs the delayed message edit. Settling after
            # every click would make the next one wait, in real time, for the refresher's 5 s timer.
            clicks = await storm(env, voters, message, 5, question, "quorum")
            assert len(clicks.latencies) == len(voters), clicks
            await env.advance_time(6)

        # 1. warm-up
        await post_and_vote("Warm-up poll", "1h")
        closed = await creator.slash(channel, "poll close", poll="1")
        assert closed.acknowledged
        await creator.slash(channel, "poll list")
        await creator.slash(channel, "poll results", poll="1")
        await env.advance_time(301)
        open_now = await repo.count_open()
        assert open_now == 0, open_now

        # 2. baseline
        rows.append(measure(bot, "baseline: warmed up, 0 open", open_now))

        # 2b. the same amount of database work, leaving nothing open: store the polls without a
        # message, then discard them (what /poll create does when posting fails)
        now = clock()
        week = 7 * 24 * 3600

        failed_readbacks = 0

        async def store(i: int, attach: bool) -> None:
            nonlocal failed_readbacks
            draft = PollDraft(f"Stored poll {i}?", OPTIONS, duration=week if i % 2 else None)
            try:
                poll = await repo.create(
                    draft, guild_id=guild.id, channel_id=channel.id, creator_id=creator.id, now=now
                )
            except AssertionError:
                # create() committed the poll but could not read it back (see docs/performance.md,
                # "stale reads"); it is finished below from the database itself.
                failed_readbacks += 1
                return
            if attach:
                await repo.attach_message(poll.id, 800_000_000_000_000_000 + i)
            else:
                await repo.discard_unposted(poll.id)

        async def store_all(attach: bool) -> float:
            start = time.perf_counter()
            for chunk in range(0, args.polls, args.chunk):
                await asyncio.gather(*(store(i, attach) for i in range(chunk, min(chunk + args.chunk, args.polls))))
            # Polls whose create() failed its read-back: attach or discard them like the rest.
            for (poll_id,) in await bot.db.fetchall(
                "SELECT id FROM polls WHERE message_id IS NULL AND question LIKE 'Stored poll %'"
            ):
                if attach:
                    await repo.attach_message(poll_id, 800_000_000_000_000_000 + args.polls + poll_id)
                else:
                    await repo.discard_unposted(poll_id)
            return time.perf_counter() - start

        if args.churn:
            await store_all(attach=False)
            rows.append(measure(bot, f"after {args.polls:,} created+discarded, 0 open", await repo.count_open()))

        # 3. 10,000 stored polls
        took = await store_all(attach=True)
        notes.append(f"PollRepository.create() calls that committed but could not read their poll back: "
                     f"{failed_readbacks:,} of {args.polls * (2 if args.churn else 1):,}")
        notes.append(f"stored {args.polls:,} polls in {took:.1f} s "
                     f"({bot.db.stats.transactions} transactions so far, largest batch {bot.db.stats.largest_batch})")
        rows.append(measure(bot, f"{args.polls:,} stored", await repo.count_open()))

        # 4. exercise
        for k in range(5):
            await post_and_vote(f"Live poll {k}", "2d" if k % 2 else None)
        stored_ids = [r[0] for r in await bot.db.fetchall(
            "SELECT id FROM polls WHERE question LIKE 'Stored poll %' ORDER BY id LIMIT 50")]
        for n, poll_id in enumerate(stored_ids):
            await bot.polls.vote(poll_id, n % len(OPTIONS), user_id=voters[n % len(voters)].id, role_ids=[])
        cog.scheduler.poke()
        await env.advance_time(301)  # longer than the scheduler's longest sleep (300 s)
        await env.advance_time(6)  # and the refresher's delayed edits
        open_now = await repo.count_open()
        rows.append(measure(bot, "after votes + scheduler", open_now))
        if NATIVE.trim():
            rows.append(measure(bot, "same, after malloc_trim(0)", open_now))
        due = await repo.next_deadline()
        notes.append(f"next deadline the scheduler sees: in {(due - clock()) / 3600:.1f} h; "
                     f"votes stored: {await bot.db.fetchval('SELECT count(*) FROM votes')}")
        size = sum(p.stat().st_size for p in db_dir.iterdir()) / 1e6
        notes.append(f"database files on disk (not in RSS): {size:.1f} MB")
        errors = env.errors
        if errors:
            notes.append(f"the bot raised {len(errors)} error(s): {errors[:3]!r}")
    finally:
        await env.shutdown()
        await bot.close()
    return rows, notes


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--polls", type=int, default=10_000, help="open polls to store")
    parser.add_argument("--voters", type=int, default=20, help="members clicking on the live polls")
    parser.add_argument("--no-churn", dest="churn", action="store_false",
                        help="skip the second baseline (same number of polls created and discarded first)")
    parser.add_argument("--chunk", type=int, default=1,
                        help="polls stored concurrently (default 1: one after another, as polls accumulate "
                             "in real life; 500 stresses the group commit and the read-back of create())")
    parser.add_argument("--db-dir", type=Path, default=None,
                        help="where Quorum's SQLite file goes (default: a temp dir)")
    args = parser.parse_args(argv)

    db_dir = Path(tempfile.mkdtemp(prefix="quorum-memory-", dir=args.db_dir))
    print("\n".join(machine_lines(db_dir)))
    try:
        rows, notes = asyncio.run(run(args, db_dir))
    finally:
        shutil.rmtree(db_dir, ignore_errors=True)

    base = rows[0]
    columns = ["open polls", "anon MB", "file+shmem MB", "sqlite MB", "malloc used MB", "malloc free MB",
               "py blocks", "gc objects", "asyncio tasks", "refresher entries", "dynamic items", "views"]
    print()
    print(table(
        ["phase", "RSS MB", "Δ RSS MB", *columns],
        [
            [r["phase"], f"{r['rss_kib'] / 1024:.1f}", f"{(r['rss_kib'] - base['rss_kib']) / 1024:+.1f}",
             *(f"{r[c]:,}" if isinstance(r[c], int) else r[c] for c in columns)]
            for r in rows
        ],
    ))
    for note in notes:
        print(note)
    final = next(r for r in rows if r["phase"] == "after votes + scheduler")
    print()
    for baseline in rows[: 2 if args.churn else 1]:
        delta = (final["rss_kib"] - baseline["rss_kib"]) / 1024
        print(f"RSS difference, {final['open polls']:,} open polls vs 0 ({baseline['phase']}): {delta:+.1f} MB "
              f"(target < {TARGET_MB:.0f} MB: {'met' if delta < TARGET_MB else 'NOT met'})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
