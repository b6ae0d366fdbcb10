"""Vote clicks while members share hostile articles: does article work slow voting?

    python bench/votes_articles.py [--members 1000] [--concurrency 50] [--sets 3] [--rounds 3] [--workers 4]

Quorum runs as a real process (`python run.py`) against the loopback Discord of
`bench/loopback_discord.py`, exactly as in `bench/votes_loopback.py`, with the article pages
served from 127.0.0.1 by this process (ALLOW_PRIVATE_URLS=1 lets the bot fetch them). Each set
is one bot process running `--rounds` rounds of each kind, interleaved, the kind going first
alternating between sets:

* votes: `--members` members click once each on a new poll, `--concurrency` clicks in flight;
* votes + articles: the same, while 8 members keep sharing pages (served by a process of
  their own, so sending them costs this process nothing) with `/article share` for the
  whole round: 4 share pages of the largest size the fetcher accepts (4.9 MB, one paragraph of
  text) and 4 share 64 KB pages of "Mr. Mr. Mr. …" (the page that once took a minute to split).
  Each sharer shares a new URL (a new path: no cache) as soon as its previous share has been
  answered, and waits 1 s after a "busy" answer, as a member retrying would. With
  `--workers 4` (ARTICLE_WORKERS; the default setting is 2) all 8 shares are admitted at once
  (the cap is twice the workers), so 4 worker processes compete for the 2 cores; with 2, half
  of them are told "busy".

Per round: clicks acknowledged, lost (never answered within 30 s), p50/p99/max latency from the
frame sent to the callback POST, clicks slower than 3 s, the bot process's CPU time during the
clicks, the peak RSS of the bot process and of its article workers (sampled every 50 ms), and
what the shares got. After the set, the votes in the bot's database are counted against the
clicks. Verdicts: per set, the median p99 of its
"votes + articles" rounds over the median p99 of its "votes" rounds; the issue's target is a
median of those within 1.5x, no click later than 3 s, counts exact.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import shutil
import subprocess
import sys
import tempfile
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from _common import LatencyFigures, machine_lines, median, stop_bot, table
from aiohttp import web
from loopback_discord import COMMAND_ID, LoopbackDiscord
from votes_loopback import VOTER_BASE, count_votes, post_quorum_poll, storm

ROOT = Path(__file__).resolve().parent.parent
SHARER_BASE = 1400000000000000000
MAX_PAGE = ("<html><head><title>Max</title></head><body><article><p>"
            + "".join(f"Sentence {i} of the longest page says something ordinary about its topic. "
                      for i in range(64_000))[:4_900_000]
            + "</p></article></body></html>").encode()
MR_PAGE = ("<html><body><article><p>Opening words here. " + "Mr. " * 16_000
           + "Closing sentence ends here.</p></article></body></html>").encode()


@dataclass
class Round(LatencyFigures):
    label: str
    wall: float
    latencies: list[float]
    lost: int
    bot_rss_mib: float = 0.0
    workers_rss_mib: float = 0.0
    bot_cpu_ms: float = 0.0  # CPU time the bot process used during the clicks
    shares: Counter[str] = field(default_factory=Counter)

    @property
    def slow(self) -> int:
        return sum(1 for x in self.latencies if x > 3.0)


def serve_pages_forever() -> None:
    """The page server's own process (`--serve-pages`): prints its port, serves until killed.

    A process of its own, so that sending 5 MB pages never delays this process's clicks and
    their timing: the latencies measured are the bot's.
    """

    async def page(request: web.Request) -> web.Response:
        body = MAX_PAGE if request.match_info["kind"] == "max" else MR_PAGE
        return web.Response(body=body, content_type="text/html", charset="utf-8")

    async def serve() -> None:
        app = web.Application()
        app.router.add_get("/{kind}/{n}", page)
        runner = web.AppRunner(app, access_log=None)
        await runner.setup()
        site = web.TCPSite(runner, "127.0.0.1", 0)
        await site.start()
        print(site._server.sockets[0].getsockname()[1], flush=True)  # type: ignore[union-attr]
        await asyncio.Event().wait()

    asyncio.run(serve())


def start_page_server() -> tuple[subprocess.Popen[str], int]:
    server = subprocess.Popen([sys.executable, __file__, "--serve-pages"], stdout=subprocess.PIPE, text=True)
    assert server.stdout is not None
    return server, int(server.stdout.readline())


def rss_mib(pid: int) -> float:
    try:
        with open(f"/proc/{pid}/status", encoding="utf-8") as status:
            for line in status:
                if line.startswith("VmRSS:"):
                    return int(line.split()[1]) / 1024
    except OSError:
        pass
    return 0.0


def cpu_seconds(pid: int) -> float:
    """User + system CPU time of a process so far (its own threads, not its children)."""
    with open(f"/proc/{pid}/stat", encoding="utf-8") as file:
        fields = file.read().rpartition(")")[2].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def children(pid: int) -> list[int]:
    try:
        with open(f"/proc/{pid}/task/{pid}/children", encoding="utf-8") as file:
            return [int(p) for p in file.read().split()]
    except OSError:
        return []


async def sample_memory(pid: int, peaks: list[float]) -> None:
    """peaks[0]: the bot process's RSS; peaks[1]: all its workers' together (MiB)."""
    while True:
        peaks[0] = max(peaks[0], rss_mib(pid))
        peaks[1] = max(peaks[1], sum(rss_mib(child) for child in children(pid)))
        await asyncio.sleep(0.05)


class Sharers:
    """Members sharing pages in a loop; each waits for its answer before sharing the next."""

    def __init__(self, server: LoopbackDiscord, base: str) -> None:
        self.server = server
        self.base = base
        self.waiting: dict[str, asyncio.Future[str]] = {}
        self.outcomes: Counter[str] = Counter()
        self.count = 0
        server.on_followup = self._followup

    def _followup(self, token: str, body: dict[str, Any]) -> None:
        future = self.waiting.pop(token, None)
        if future is not None and not future.done():
            future.set_result(str(body.get("content") or ""))

    async def share(self, member: int, kind: str) -> str:
        self.count += 1
        url = f"{self.base}/{kind}/{self.count}"
        data = {"id": str(COMMAND_ID + 1), "name": "article", "type": 1, "options": [
            {"name": "share", "type": 1, "options": [{"name": "url", "type": 3, "value": url}]}]}
        payload = self.server.interaction(2, data, user_id=member)
        future: asyncio.Future[str] = asyncio.get_running_loop().create_future()
        self.waiting[payload["token"]] = future
        await self.server.send_interaction(payload)
        try:
            text = await asyncio.wait_for(future, 60)
        except TimeoutError:
            return "no answer in 60 s"
        if text.startswith("Shared:"):
            return "shared"
        if "busy" in text or "still being summarised" in text:
            return "busy"
        if "took longer" in text:
            return "stopped (time limit)"
        return text[:60]

    async def run(self, member: int, kind: str, stop: asyncio.Event) -> None:
        while not stop.is_set():
            outcome = await self.share(member, kind)
            self.outcomes[f"{kind}: {outcome}"] += 1
            if outcome == "busy":
                await asyncio.sleep(1)


async def run_set(number: int, args: argparse.Namespace) -> list[Round]:
    server = LoopbackDiscord()
    await server.start()
    pages, port = start_page_server()
    data_dir = Path(tempfile.mkdtemp(prefix="quorum-articles-"))
    database = data_dir / "quorum.sqlite3"
    env = {**os.environ, **server.env, "LOG_LEVEL": "WARNING", "DATABASE_PATH": str(database),
           "ALLOW_PRIVATE_URLS": "1", "ARTICLE_CACHE_HOURS": "0", "ARTICLE_WORKERS": str(args.workers)}
    process = subprocess.Popen([sys.executable, str(ROOT / "run.py")], cwd=ROOT, env=env)
    rounds: list[Round] = []
    kinds = ("votes", "votes + articles") if number % 2 else ("votes + articles", "votes")
    order = [kind for _ in range(args.rounds) for kind in kinds]
    try:
        await asyncio.wait_for(server.ready.wait(), 60)
        await asyncio.sleep(3)  # discord.py waits up to 2 s for more guilds before on_ready
        sharers = Sharers(server, f"http://127.0.0.1:{port}")
        # Warm-up: a few votes, and one share of each page, so the workers are started.
        warm = await post_quorum_poll(server)
        await storm(server, warm, range(VOTER_BASE, VOTER_BASE + args.warmup), args.concurrency, "quorum", "warm")
        for kind in ("max", "mr"):
            await sharers.share(SHARER_BASE, kind)
        expected = [args.warmup]
        for index, label in enumerate(order):
            message = await post_quorum_poll(server)
            stop = asyncio.Event()
            tasks = []
            if label != "votes":
                await asyncio.sleep(0)
                tasks = [asyncio.create_task(sharers.run(SHARER_BASE + 1 + i, "max" if i < 4 else "mr", stop))
                         for i in range(8)]
                await asyncio.sleep(1.0)  # the shares are under way when the clicks start
            before = Counter(sharers.outcomes)
            peaks = [0.0, 0.0]
            sampler = asyncio.create_task(sample_memory(process.pid, peaks))
            cpu_before = cpu_seconds(process.pid)
            result = await storm(server, message, range(VOTER_BASE, VOTER_BASE + args.members),
                                 args.concurrency, "quorum", label)
            cpu = cpu_seconds(process.pid) - cpu_before
            stop.set()
            await asyncio.gather(*tasks)
            sampler.cancel()
            rounds.append(Round(f"s{number}.{index // 2 + 1} {label}", result.wall, result.latencies, result.lost,
                                peaks[0], peaks[1], cpu * 1000, sharers.outcomes - before))
            expected.append(args.members)
            await asyncio.sleep(1)
        counts = count_votes(database)
        got = [counts.get(poll_id, 0) for poll_id in range(1, len(expected) + 1)]
        for r in rounds:
            r.shares["db check"] = 1 if got == expected else 0
            if got != expected:
                print(f"DB MISMATCH in set {number}: {got} != {expected}")
    finally:
        stop_bot(process)
        pages.kill()
        pages.wait()
        await server.stop()
        shutil.rmtree(data_dir, ignore_errors=True)
    return rounds


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--members", type=int, default=1000, help="members, each clicking once per round")
    parser.add_argument("--concurrency", type=int, default=50, help="clicks in flight at once")
    parser.add_argument("--warmup", type=int, default=100, help="clicks of an unmeasured first round")
    parser.add_argument("--sets", type=int, default=3, help="bot processes, each running both kinds of round")
    parser.add_argument("--rounds", type=int, default=3, help="rounds of each kind per set")
    parser.add_argument("--workers", type=int, default=4, help="ARTICLE_WORKERS for the bot")
    parser.add_argument("--serve-pages", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.serve_pages:
        serve_pages_forever()
        return 0
    print("\n".join(machine_lines()))
    print(f"run     : {args.members} members x 1 click, concurrency {args.concurrency}, {args.sets} sets x "
          f"{args.rounds} rounds of each kind, ARTICLE_WORKERS={args.workers}; "
          f"max page {len(MAX_PAGE):,} bytes, Mr. page {len(MR_PAGE):,} bytes")
    rounds: list[Round] = []
    for number in range(1, args.sets + 1):
        rounds += asyncio.run(run_set(number, args))

    print()
    print(table(
        ["round", "acked", "lost", "votes/s", "p50 ms", "p99 ms", "max ms", ">3 s", "bot CPU ms", "bot RSS MiB",
         "workers RSS MiB", "shares"],
        [[r.label, len(r.latencies), r.lost, f"{r.rate:,.0f}", f"{r.p50 * 1000:.1f}", f"{r.p99 * 1000:.1f}",
          f"{max(r.latencies) * 1000:.1f}", r.slow, f"{r.bot_cpu_ms:.0f}", f"{r.bot_rss_mib:.0f}",
          f"{r.workers_rss_mib:.0f}",
          ", ".join(f"{k} {v}" for k, v in sorted(r.shares.items()) if k != "db check") or "-"]
         for r in rounds],
    ))
    ratios = []
    for number in range(1, args.sets + 1):
        plain = [r.p99 for r in rounds if r.label.startswith(f"s{number}.") and r.label.endswith(" votes")]
        loaded = [r.p99 for r in rounds if r.label.startswith(f"s{number}.") and r.label.endswith(" articles")]
        ratios.append(median(loaded) / median(plain))
    print()
    print("p99 ratio (votes + articles) / (votes), per set: " + ", ".join(f"{x:.2f}x" for x in ratios))
    ratio = median(ratios)
    slow = sum(r.slow for r in rounds)
    lost = sum(r.lost for r in rounds)
    exact = all(r.shares["db check"] == 1 for r in rounds)
    shared = sum(v for r in rounds for k, v in r.shares.items() if k.endswith(": shared"))
    print(f"Target: p99 within 1.50x: median {ratio:.2f}x {'met' if ratio <= 1.5 else 'NOT met'}; "
          f"clicks later than 3 s: {slow}; lost: {lost}; vote counts exact: {'yes' if exact else 'NO'}; "
          f"articles shared during the loaded rounds: {shared}")
    print(f"Peak RSS of the bot process: {max(r.bot_rss_mib for r in rounds):.0f} MiB "
          f"(votes only {max(r.bot_rss_mib for r in rounds if r.label.endswith(' votes')):.0f} MiB); "
          f"of its workers together: {max(r.workers_rss_mib for r in rounds):.0f} MiB")
    return 0


if __name__ == "__main__":
    sys.exit(main())
