"""Two real `run.py` processes, one gateway shard each (SHARD_COUNT=2, SHARD_IDS=0 and 1),
over one PostgreSQL database, against the loopback Discord with one guild per shard.

Polls are created with `/poll create ... duration:1m` (the shortest allowed) and their
`closes_at` is then moved into the past in the database, so the test need not wait a minute.
The process of shard 0 is SIGKILLed while it announces a due poll of its guild (the loopback
holds back the answer to that message, then kills it), the other process must announce that
guild's polls due meanwhile (over REST), and shard 0's process is restarted. Throughout:
every poll gets exactly one result message, the database counts exactly the votes whose
clicks were confirmed, and only shard 0's process syncs commands, once.
"""

from __future__ import annotations

import asyncio
import sys
import time
from collections import Counter
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any

import psycopg
import pytest

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "bench"))

from _common import BotProcess, bot_env  # noqa: E402
from loopback_discord import Call, LoopbackDiscord, answer_custom_ids, guild_on_shard  # noqa: E402

GUILD_A, GUILD_B = guild_on_shard(0, 2), guild_on_shard(1, 2)  # shard 0's, shard 1's
OPTIONS = ("Yes", "No", "Maybe")
VOTER = 1300000000000000000
WAIT = 30.0  # generous: every wait below normally takes well under 5 s

pytestmark = pytest.mark.parametrize("backend", ["postgresql"], indirect=True)


def poll_id(message: dict[str, Any]) -> int:
    return int(answer_custom_ids(message)[0].split(":")[2])


class Run:
    def __init__(self, server: LoopbackDiscord, bots: list[BotProcess], db: psycopg.Connection) -> None:
        self.server, self.bots, self.db = server, bots, db
        self.expected: Counter[tuple[int, int]] = Counter()
        self.voter = VOTER

    def logs(self) -> str:
        return "\n".join(bot.tail() for bot in self.bots)

    async def until(self, done: Callable[[], bool], what: str, timeout: float = WAIT, *, fail: bool = True) -> bool:
        deadline = time.monotonic() + timeout
        while not done():
            if time.monotonic() > deadline:
                if fail:
                    pytest.fail(f"not within {timeout:.0f} s: {what}\n{self.logs()}")
                return False
            await asyncio.sleep(0.1)
        return True

    async def vote(self, messages: Iterable[dict[str, Any]], per_poll: int = 8) -> None:
        """Every message gets `per_poll` new voters; each click must be confirmed."""
        clicks = []
        for message in messages:
            for _ in range(per_poll):
                self.voter += 1
                clicks.append((message, self.voter % len(OPTIONS), self.voter))
        answers = await asyncio.gather(*(self.server.click(m, option, voter) for m, option, voter in clicks))
        for (message, option, _), answer in zip(clicks, answers, strict=True):
            assert answer is not None and answer.startswith("Your vote:"), f"click answered {answer!r}\n{self.logs()}"
            self.expected[poll_id(message), option] += 1

    def make_due(self, messages: Iterable[dict[str, Any]]) -> None:
        ids = [poll_id(m) for m in messages]
        self.db.execute("UPDATE polls SET closes_at = %s WHERE id = ANY(%s)", (time.time() - 1, ids))

    def announced(self, messages: Iterable[dict[str, Any]]) -> bool:
        ids = [poll_id(m) for m in messages]
        row = self.db.execute("SELECT count(*) FROM polls WHERE announced_at IS NOT NULL AND id = ANY(%s)", (ids,))
        return row.fetchone()[0] == len(ids)

    def posts_of(self, message: dict[str, Any]) -> list[Any]:
        return [p for p in self.server.posts if p.nonce == f"quorum-result-{poll_id(message)}"]


async def test_two_shard_processes_announce_every_poll_once_across_a_crash(tmp_path, database_url):
    server = LoopbackDiscord([GUILD_A, GUILD_B], shard_count=2)
    await server.start()
    bots = [
        BotProcess(f"p{shard}", bot_env(**server.env_for(f"p{shard}"), DATABASE_URL=database_url, SHARD_COUNT="2",
                                        SHARD_IDS=str(shard), LOG_LEVEL="INFO"), tmp_path)
        for shard in (0, 1)
    ]
    p0, p1 = bots
    db = psycopg.connect(database_url, autocommit=True)
    run = Run(server, bots, db)
    try:
        for bot in bots:
            bot.start()
        await run.until(lambda: server.shard_ready(0).is_set() and server.shard_ready(1).is_set(), "both shards up")
        await asyncio.sleep(2.5)  # discord.py waits 2 s for guilds before on_ready; the schedulers start then
        assert server.syncs == ["p0"], f"only shard 0's process syncs: {server.syncs}\n{run.logs()}"

        a = [await server.create_poll(GUILD_A, f"A{i}?", OPTIONS, duration="1m") for i in range(6)]
        b = [await server.create_poll(GUILD_B, f"B{i}?", OPTIONS, duration="1m") for i in range(6)]
        await run.vote(a + b)

        # 1. Both alive: four polls due at once, both schedulers poked (a poll created on each).
        run.make_due([a[0], a[1], b[0], b[1]])
        extra = list(await asyncio.gather(server.create_poll(GUILD_A, "A-x?", OPTIONS, duration="1m"),
                                          server.create_poll(GUILD_B, "B-x?", OPTIONS, duration="1m")))
        await run.until(lambda: run.announced([a[0], a[1], b[0], b[1]]), "the first due polls announced")

        # 2. SIGKILL shard 0's process while it announces a due poll of its guild: the message
        # reaches "Discord", the process never hears back. Votes keep arriving in guild B.
        killed: list[float] = []

        async def kill_mid_announcement(call: Call) -> None:
            nonce = call.body.get("nonce") if isinstance(call.body, dict) else None
            if call.sender == "p0" and nonce == f"quorum-result-{poll_id(a[2])}" and not killed:
                await asyncio.to_thread(p0.kill)
                killed.append(time.perf_counter())

        server.on_request = kill_mid_announcement
        run.make_due([a[2]])
        voting = asyncio.create_task(run.vote([b[4], b[5]], per_poll=20))
        extra.append(await server.create_poll(GUILD_A, "A-y?", OPTIONS, duration="1m"))  # pokes p0
        mid_announcement = await run.until(lambda: bool(killed), "p0 announcing", timeout=15, fail=False)
        server.on_request = None
        if not mid_announcement:  # p1 took the poll first (its own 15 s look): kill p0 anyway
            p0.kill()
            killed.append(time.perf_counter())
        await run.until(lambda: not server.shard_ready(0).is_set(), "p0's gateway connection closing")
        await voting
        if mid_announcement:
            assert len(server.replies_to(int(a[2]["id"]))) == 1
            assert not run.announced([a[2]])  # p0 claimed it: nobody else takes it before its lease ends

        # 3. p0 is down: p1 announces guild A's polls as they come due (poked by a poll in guild B).
        assert await server.click(a[5], 0, VOTER - 1, timeout=1) is None  # guild A's events have nowhere to go
        run.make_due([a[3], a[4], b[2]])
        extra.append(await server.create_poll(GUILD_B, "B-y?", OPTIONS, duration="1m"))
        await run.until(lambda: run.announced([a[3], a[4], b[2]]), "p1 announcing guild A's polls while p0 is down")
        for message in (a[3], a[4]):
            senders = [(p.sender, p.at > killed[0]) for p in run.posts_of(message)]
            assert senders == [("p1", True)], senders

        # 4. p0 restarts: no second sync; it takes back the announcement it was killed in,
        # finds the message it had sent and does not send another.
        p0.start()
        await run.until(lambda: server.shard_ready(0).is_set(), "p0 back on shard 0")
        await run.until(lambda: run.announced([a[2]]), "p0 finishing the announcement it was killed in")
        await run.until(lambda: "commands unchanged" in p0.logs[-1].read_text(), "p0's restart checking the sync")
        assert server.syncs == ["p0"], f"the restart must not sync again: {server.syncs}"
        await run.vote([a[5], b[5], *extra])

        # 5. Everything else closes: all due but one poll per guild, closed by hand.
        last = {GUILD_A: extra[2], GUILD_B: extra[3]}
        closing = {poll_id(m) for m in last.values()}
        rest = [m for m in a + b + extra if not run.announced([m]) and poll_id(m) not in closing]
        run.make_due(rest)
        for guild, message in last.items():
            number = db.execute("SELECT number FROM polls WHERE id = %s", (poll_id(message),)).fetchone()[0]
            answer = await server.poll_command(guild, "close", {"poll": str(number)})
            assert answer is not None and "is closed" in answer, answer
        everything = a + b + extra
        await run.until(lambda: run.announced(everything), "every poll announced")

        rows = db.execute("SELECT id, message_id, announcement_id FROM polls ORDER BY id").fetchall()
        assert sorted(r[0] for r in rows) == sorted(poll_id(m) for m in everything)
        for poll, message_id, announcement_id in rows:
            replies = server.replies_to(message_id)
            assert [r["id"] for r in replies] == [str(announcement_id)], f"poll {poll}: {len(replies)} results"
            posts = [p for p in server.posts if p.nonce == f"quorum-result-{poll}"]
            assert len(posts) == 1 and not posts[0].replayed, f"poll {poll} sent {len(posts)} times"
        assert server.nonce_replays == 0
        stored = db.execute("SELECT poll_id, option, count(*) FROM votes GROUP BY poll_id, option").fetchall()
        assert Counter({(p, o): n for p, o, n in stored}) == run.expected
        assert server.syncs == ["p0"]
        assert p1.running, p1.tail()
    finally:
        server.on_request = None
        for bot in bots:
            bot.stop()
        db.close()
        await server.stop()
