"""One full check cycle of 1,000 feeds, and what it does to votes cast meanwhile.

    python bench/feeds.py [--feeds 1000] [--hosts 50] [--backend sqlite|postgresql] [--vote-rate 200]

The feeds are served by a process of their own (so serving them costs this process nothing),
spread over `--hosts` loopback addresses (127.0.1.1, 127.0.1.2, …: Quorum allows two requests
per host at once, so one host for all would measure that limit, not the cycle). Each feed is
an RSS 2.0 document of 20 items (~9 KB). By feed number modulo 20:

* 0–9   unchanged: answers 304 to the ETag it gave (the common case of a feed checked often);
* 10–15 new: 200 with 2 new items since the last check (and a new ETag);
* 16–17 slow: 200, unchanged, after 2 s (no ETag: parsed every time);
* 18    failing: 500 (after it was added);
* 19    limited: 429 with Retry-After: 3600 (after it was added).

Quorum's own code does the work, in this process: `FeedService` over the real database
(`--backend`), the real loader (`bot.feeds.fetch.load_feed`: SSRF checks, conditional GET,
per-host limit) and one feed-parsing worker process, as the bot runs them. The feeds are
added with `FeedService.add` (which records every item present as seen), the server moves on
one generation, the clock moves past the interval, and the cycle is `check_due` until no feed
is due; then the released items are claimed for posting (the posting itself is Discord's
side, measured by bench/votes_articles.py for article work).

Votes: while the cycle runs, and for as long again after it (quiet), one vote every
1/`--vote-rate` s goes through `PollService.vote` on the same database and event loop; their
latencies (from the moment each was due, so a stalled event loop counts) are compared.

Printed: wall time of the cycle, CPU of this process (the votes cast meanwhile included:
`--vote-rate 1` leaves the cycle's own) and of the worker, peak RSS of both,
requests the server saw by answer, items found, vote p50/p99/max quiet and during.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from _common import machine_lines, percentile

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

ITEMS = 20
KINDS = ["unchanged"] * 10 + ["new"] * 6 + ["slow"] * 2 + ["failing", "limited"]
SLOW_SECONDS = 2.0


LIMITED_HOSTS = 5  # the rate-limited feeds' own hosts: a 429 pauses its whole host


def address(slot: int) -> str:
    return f"127.0.{1 + slot // 250}.{1 + slot % 250}"


def host_of(index: int, hosts: int) -> str:
    """Feed `index`'s host: one of `hosts`, or for the rate-limited kind one of LIMITED_HOSTS
    of their own (a host that answers 429 throttles every feed it serves, and Quorum then waits
    for all of them; mixed with the others, they would hide healthy feeds from the cycle)."""
    if KINDS[index % len(KINDS)] == "limited":
        return address(hosts + (index // len(KINDS)) % LIMITED_HOSTS)
    return address(index % hosts)


def rss(feed: int, generation: int) -> bytes:
    newest = 2 * generation + ITEMS
    entries = "".join(
        f"<item><title>Story {n} of feed {feed}</title><link>https://example.org/{feed}/{n}</link>"
        f"<guid>feed-{feed}-story-{n}</guid><pubDate>Tue, 01 Dec 2026 {n % 24:02d}:00:00 GMT</pubDate>"
        f"<description>{'Something happened, and here is what it means. ' * 6}</description></item>"
        for n in range(newest, newest - ITEMS, -1)
    )
    return (
        f'<?xml version="1.0"?><rss version="2.0"><channel><title>Feed {feed}</title>'
        f"<link>https://example.org/{feed}</link><description>Bench feed</description>{entries}</channel></rss>"
    ).encode()


def serve(feeds: int, hosts: int) -> None:
    """The feed server's own process (`--serve`): prints its port, serves until killed."""
    from aiohttp import web

    state = {"generation": 0}
    seen: dict[str, int] = {}

    async def feed(request: web.Request) -> web.StreamResponse:
        index = int(request.match_info["n"])
        kind = KINDS[index % len(KINDS)]
        generation = state["generation"] if kind == "new" else 0
        if kind in ("failing", "limited") and state["generation"] == 0:
            kind = "unchanged"  # healthy when added, failing at the check
        answer = kind
        if kind == "failing":
            response: web.StreamResponse = web.Response(status=500, text="broken")
        elif kind == "limited":
            response = web.Response(status=429, headers={"Retry-After": "3600"})
        else:
            if kind == "slow":
                await asyncio.sleep(SLOW_SECONDS)
            etag = f'"{index}-{generation}"' if kind != "slow" else None
            if etag is not None and request.headers.get("If-None-Match") == etag:
                response, answer = web.Response(status=304, headers={"ETag": etag}), "304"
            else:
                headers = {"ETag": etag} if etag else {}
                response = web.Response(body=rss(index, generation), headers=headers,
                                        content_type="application/rss+xml")
                answer = "200"
        seen[answer] = seen.get(answer, 0) + 1
        return response

    async def control(request: web.Request) -> web.Response:
        if request.match_info["op"] == "next":
            state["generation"] += 1
        elif request.match_info["op"] == "reset":
            seen.clear()
        return web.json_response({"generation": state["generation"], "answers": seen})

    async def main() -> None:
        app = web.Application()
        app.router.add_get("/f/{n}.xml", feed)
        app.router.add_post("/_/{op}", control)
        runner = web.AppRunner(app, access_log=None)
        await runner.setup()
        port = 0
        for slot in range(min(hosts, feeds) + LIMITED_HOSTS):
            site = web.TCPSite(runner, address(slot), port)
            await site.start()
            port = port or site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
        print(port, flush=True)
        await asyncio.Event().wait()

    asyncio.run(main())


def cpu_of(pid: int) -> float:
    """User + system CPU seconds of a live process (/proc/<pid>/stat)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def postgres_cpu() -> float:
    """CPU seconds of every PostgreSQL server process on this machine so far (a local server)."""
    total = 0.0
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            text = stat.read_text()
        except OSError:
            continue
        if "(postgres)" in text:
            fields = text.rsplit(")", 1)[1].split()
            total += (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
    return total


def machine_busy() -> tuple[float, float]:
    """(busy, total) CPU seconds of the whole machine so far, over all cores (/proc/stat)."""
    fields = [int(x) for x in Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:]]
    idle = fields[3] + fields[4]  # idle + iowait
    tick = os.sysconf("SC_CLK_TCK")
    return (sum(fields) - idle) / tick, sum(fields) / tick


def peak_rss_mib(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    return float("nan")


async def votes_while(
    service, poll_id: int, rate: float, until: asyncio.Event, first_voter: int
) -> tuple[list[float], list[float]]:
    """Cast votes at `rate` per second until `until` is set; each one's latency from when it was
    due, so time the event loop was blocked counts, and how late each began (the event loop's
    share of that latency: the rest is the database's)."""
    latencies: list[float] = []
    lateness: list[float] = []
    pending: set[asyncio.Task] = set()
    start = time.perf_counter()
    n = 0

    async def one(voter: int, due: float) -> None:
        lateness.append(time.perf_counter() - due)
        await service.vote(poll_id, voter % 4, user_id=voter, role_ids=[])
        latencies.append(time.perf_counter() - due)

    while not until.is_set():
        due = start + n / rate
        delay = due - time.perf_counter()
        if delay > 0:
            await asyncio.sleep(delay)
        task = asyncio.create_task(one(first_voter + n, due))
        pending.add(task)
        task.add_done_callback(pending.discard)
        n += 1
    if pending:
        await asyncio.gather(*pending)
    return latencies, lateness


async def bench(args: argparse.Namespace) -> None:
    from aiohttp import ClientSession

    from bot.articles.worker import ArticleWorkers
    from bot.config import Settings
    from bot.db import open_database
    from bot.feeds.fetch import HostLimiter, load_feed
    from bot.feeds.repository import FeedRepository
    from bot.feeds.service import FeedService
    from bot.polls.repository import PollRepository
    from bot.polls.service import PollService
    from bot.polls.validation import build_draft

    server = subprocess.Popen([sys.executable, __file__, "--serve", "--feeds", str(args.feeds),
                               "--hosts", str(args.hosts)], stdout=subprocess.PIPE, text=True)
    assert server.stdout is not None
    port = int(server.stdout.readline())
    control = f"http://{host_of(0, args.hosts)}:{port}/_"
    tmp = Path(tempfile.mkdtemp(prefix="quorum-feeds-"))
    now = [time.time()]
    workers = ArticleWorkers(1)
    try:
        settings = Settings(token=None, database_path=tmp / "quorum.sqlite3", database_url=args.database_url)
        db = await open_database(settings)
        hosts = HostLimiter(2)

        async def loader(url: str, *, etag, last_modified, discover, body_hash):
            return await load_feed(url, workers=workers, hosts=hosts, etag=etag, last_modified=last_modified,
                                   allow_private=True, discover=discover, body_hash=body_hash)

        service = FeedService(FeedRepository(db), lambda: now[0], loader, interval=600, max_posts=5,
                              concurrency=args.concurrency)
        polls = PollService(PollRepository(db), lambda: now[0])
        draft = build_draft(question="Which one?", options="A | B | C | D")
        poll = await polls.create(draft, guild_id=1, channel_id=2, creator_id=3)
        await polls.repo.attach_message(poll.id, 4)  # posted: votes are taken

        print(*machine_lines(tmp), sep="\n")
        print(f"backend : {db.dialect}; {args.feeds} feeds on {min(args.hosts, args.feeds)} hosts; "
              f"votes at {args.vote_rate:g}/s" + (", from a process of their own" if args.votes_apart else ""))

        # Adding: every feed answers 200 the first time (nothing is known of it yet).
        started = time.perf_counter()
        adds = asyncio.Semaphore(16)
        failed_adds = 0

        async def add(n: int) -> None:
            nonlocal failed_adds
            async with adds:
                try:
                    await service.add(guild_id=1000 + n // 50, channel_id=5000 + n,
                                      url=f"http://{host_of(n, args.hosts)}:{port}/f/{n}.xml", added_by=7)
                except Exception as error:
                    failed_adds += 1
                    print(f"add {n} failed: {error}")

        await asyncio.gather(*(add(n) for n in range(args.feeds)))
        print(f"added   : {args.feeds - failed_adds} feeds in {time.perf_counter() - started:.1f} s "
              f"({failed_adds} failed)")

        async with ClientSession() as http:
            await http.post(f"{control}/next")
            await http.post(f"{control}/reset")
        now[0] += 700  # past the interval and its jitter: every feed is due

        # Quiet votes first, for as long as the cycle will take (measured once below: use an
        # estimate from the slow feeds, then the real length on a second quiet run).
        apart = VotesApart(args, tmp / "quorum.sqlite3") if args.votes_apart else None
        stop = asyncio.Event()
        if apart is not None:
            apart.start(10_000_000)
        else:
            voting = asyncio.create_task(votes_while(polls, poll.id, args.vote_rate, stop, 10_000_000))
        wall0, cpu0, worker_cpu0 = time.perf_counter(), sum(os.times()[:2]), cpu_of(workers.pids[0])
        server_cpu0, (busy0, total0), pg_cpu0 = cpu_of(server.pid), machine_busy(), postgres_cpu()
        checked = new_items = requests = rounds = unchanged = host_paused = 0
        while True:
            report = await service.check_due(owner="bench/1", limit=100)
            if not report.claimed:
                break
            rounds += 1
            checked += report.checked
            new_items += report.new_items
            requests += report.requests
            unchanged += report.unchanged
            host_paused += report.host_paused
        wall = time.perf_counter() - wall0
        cpu = sum(os.times()[:2]) - cpu0
        server_cpu = cpu_of(server.pid) - server_cpu0
        pg_cpu = postgres_cpu() - pg_cpu0  # processes that ended meanwhile are not counted
        busy1, total1 = machine_busy()
        machine = (busy1 - busy0) / (total1 - total0) if total1 > total0 else float("nan")
        worker_pid = workers.pids[0] if workers.pids else None
        worker_cpu = cpu_of(worker_pid) - worker_cpu0 if worker_pid else float("nan")
        stop.set()
        during, during_late = await (apart.stop() if apart is not None else voting)
        posts = await service.claim_posts(owner="bench/1", limit=100_000)

        stop = asyncio.Event()
        if apart is not None:
            apart.start(20_000_000)
            await asyncio.sleep(wall)
            quiet, quiet_late = await apart.stop()
            apart.close()
        else:
            quiet_task = asyncio.create_task(votes_while(polls, poll.id, args.vote_rate, stop, 20_000_000))
            await asyncio.sleep(wall)
            stop.set()
            quiet, quiet_late = await quiet_task

        async with ClientSession() as http:
            answers = (await (await http.post(f"{control}/stats")).json())["answers"]
        print(f"cycle   : {wall:.2f} s wall, {rounds} claims of up to 100; CPU {cpu:.2f} s in the bot process "
              f"(its votes too), {worker_cpu:.2f} s in the parsing worker, {server_cpu:.2f} s in the feed "
              f"server, {pg_cpu:.2f} s in PostgreSQL; the machine's cores {machine:.0%} busy")
        print(f"peak RSS: bot {resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024:.0f} MiB, "
              f"worker {peak_rss_mib(worker_pid) if worker_pid else float('nan'):.0f} MiB")
        print(f"feeds   : {checked} checked, {requests} loads ({unchanged} answered 200 with the body of the last "
              f"check: not parsed; {host_paused} not loaded, their host having asked for a pause); "
              f"server answers {json.dumps(answers, sort_keys=True)}")
        print(f"items   : {new_items} new, {len(posts)} released for posting (FEED_MAX_POSTS=5 per feed)")
        for label, figures, late in (("quiet", quiet, quiet_late), ("cycle", during, during_late)):
            print(f"votes {label:5}: {len(figures)} votes, p50 {percentile(figures, 50) * 1000:.1f} ms, "
                  f"p99 {percentile(figures, 99) * 1000:.1f} ms, max {max(figures) * 1000:.1f} ms; "
                  f"began late by p99 {percentile(late, 99) * 1000:.1f} ms (the event loop)")
        print(f"p99 ratio (cycle / quiet): {percentile(during, 99) / percentile(quiet, 99):.2f}")
        await db.close()
    finally:
        await workers.close()
        server.kill()
        server.wait()


def vote_child(args: argparse.Namespace) -> None:
    """`--vote-child`: a process that only votes, on the same database. Commands on stdin:
    `start N` votes from voter N until `stop`, then prints the latencies and lateness as JSON."""
    from bot.config import Settings
    from bot.db import open_database
    from bot.polls.repository import PollRepository
    from bot.polls.service import PollService
    from bot.polls.validation import build_draft

    async def run() -> None:
        settings = Settings(token=None, database_path=Path(args.vote_child), database_url=args.database_url)
        db = await open_database(settings)
        polls = PollService(PollRepository(db), time.time)
        poll = await polls.create(build_draft(question="Apart?", options="A | B | C | D"),
                                  guild_id=2, channel_id=3, creator_id=4)
        await polls.repo.attach_message(poll.id, 5)
        loop = asyncio.get_running_loop()
        print("ready", flush=True)
        while (line := (await loop.run_in_executor(None, sys.stdin.readline)).split()) and line[0] == "start":
            stop = asyncio.Event()
            task = asyncio.create_task(votes_while(polls, poll.id, args.vote_rate, stop, int(line[1])))
            await loop.run_in_executor(None, sys.stdin.readline)  # "stop"
            stop.set()
            print(json.dumps(await task), flush=True)
        await db.close()

    asyncio.run(run())


class VotesApart:
    """The votes cast by a process of their own (`--votes-apart`): what the cycle costs the
    machine and the database, without the bot process's own share."""

    def __init__(self, args: argparse.Namespace, database_path: Path) -> None:
        command = [sys.executable, __file__, "--vote-child", str(database_path), "--vote-rate", str(args.vote_rate)]
        if args.database_url:
            command += ["--database-url", args.database_url]
        self.process = subprocess.Popen(command, stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
        assert self.process.stdout is not None and self.process.stdout.readline().strip() == "ready"

    def start(self, first_voter: int) -> None:
        assert self.process.stdin is not None
        self.process.stdin.write(f"start {first_voter}\n")
        self.process.stdin.flush()

    async def stop(self) -> tuple[list[float], list[float]]:
        assert self.process.stdin is not None and self.process.stdout is not None
        self.process.stdin.write("stop\n")
        self.process.stdin.flush()
        latencies, lateness = json.loads(await asyncio.to_thread(self.process.stdout.readline))
        return latencies, lateness

    def close(self) -> None:
        assert self.process.stdin is not None
        self.process.stdin.close()
        self.process.wait(30)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--feeds", type=int, default=1000)
    parser.add_argument("--hosts", type=int, default=50)
    parser.add_argument("--backend", choices=("sqlite", "postgresql"), default="sqlite")
    parser.add_argument("--database-url", default=None, help="PostgreSQL URL (default: postgresql:///quorum_bench)")
    parser.add_argument("--vote-rate", type=float, default=200.0)
    parser.add_argument("--concurrency", type=int, default=16, help="feeds loaded at once (FeedService's default: 16)")
    parser.add_argument("--votes-apart", action="store_true",
                        help="cast the votes from a process of their own on the same database (the machine's and "
                             "the database's share of the cycle's effect, without the bot process's)")
    parser.add_argument("--serve", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--vote-child", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.serve:
        serve(args.feeds, args.hosts)
        return
    if args.vote_child:
        vote_child(args)
        return
    if args.backend == "postgresql":
        args.database_url = args.database_url or "postgresql:///quorum_bench"
        import psycopg

        with psycopg.connect(args.database_url, autocommit=True) as conn:
            conn.execute("DROP SCHEMA IF EXISTS feeds_bench CASCADE")
            conn.execute("CREATE SCHEMA feeds_bench")
        from bot.db_postgres import with_query

        args.database_url = with_query(args.database_url, options="-csearch_path=feeds_bench")
    else:
        args.database_url = None
    asyncio.run(bench(args))


if __name__ == "__main__":
    main()
