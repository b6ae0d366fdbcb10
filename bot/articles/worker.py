"""Article work in worker processes: decoding, extraction and summarising of a fetched page.

Why processes and not threads: that work is CPU-bound Python on hostile input. In threads it
holds the GIL (four 5 MB pages stalled the event loop, and with it every vote, for seconds)
and a thread can't be stopped (a page that runs too long kept running after the member was
told it had timed out). A worker process is killed when a job passes its time limit, and
replaced by a fresh one on the next job; its address space is capped, so a page that needs
too much memory fails in the worker, not in the bot; and it runs at a lower CPU priority, so
on a busy machine the bot's event loop is served first.

The pool never holds more than `size` workers, each doing one job at a time; jobs beyond
that wait for a free worker (the article service caps how many may wait). Workers start on
the first job, not with the bot, and then stay, so only the first share pays their start.

Protocol, over each worker's stdin and stdout: frames of a 4-byte big-endian length and a
body. A request is a JSON header frame followed by a frame of the page's raw bytes; the
answer is one JSON frame. Run as `python -m bot.articles.worker`.

A job is an article (the default) or, with `"kind": "feed"` in its header, a feed to parse
(bot/feeds/parse.py): the same process, time limit, kill and memory cap. Feeds get a pool of
their own (`ArticleWorkers(1)`), so their parsing never waits behind members' articles.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import os
import struct
import sys
import traceback
from collections.abc import Callable
from dataclasses import dataclass, fields, replace
from typing import Any, BinaryIO, TypeVar

from .models import Article, ExtractError

log = logging.getLogger(__name__)

# The worker's address-space cap. A started worker maps ~60 MB; extracting the largest page
# the fetcher accepts (5 MB of one paragraph) peaks near 200 MB: the cap leaves 5x room.
MEMORY_LIMIT = 1024 * 1024 * 1024
NICENESS = 10  # below the bot, which must answer clicks within 3 s
MAX_REPLY_BYTES = 1_000_000  # the article's start, its metadata and 3-5 sentences fit easily
# 500 items of capped fields (title 300 and summary 2,000 characters, up to 4 bytes each in
# UTF-8; link 2,048 ASCII; key 512 characters) stay under 7 MB.
MAX_FEED_REPLY_BYTES = 8_000_000
_LENGTH = struct.Struct(">I")


class ArticleJobError(Exception):
    """The page could not be processed; str(error) is for the member.

    `page_caused`: the page itself is the reason (too slow, too big), so trying it again soon
    would fail the same way; False for Quorum's own failures (a worker that crashed, shutdown).
    """

    def __init__(self, message: str, *, page_caused: bool = False) -> None:
        super().__init__(message)
        self.page_caused = page_caused


@dataclass(frozen=True, slots=True)
class Processed:
    """What a worker made of a page: the article (its text cut to what the optional chat
    model's prompt reads, MAX_PROMPT_CHARS) and the extractive summary's sentences."""

    article: Article
    sentences: list[str]


# ---------------------------------------------------------------- the worker process


def process_page(body: bytes, charset: str | None, url: str) -> dict[str, Any]:
    """One job, as the worker runs it: the reply as a JSON-able dict (`serve` turns a
    MemoryError or a bug into a reply too)."""
    from .extract import extract_article
    from .fetch import decode_page
    from .summarize import MAX_PROMPT_CHARS, summarize

    try:
        article = extract_article(decode_page(body, charset), url)
        # A page's own description is posted as it is: it is not an article to pick from.
        sentences = [article.text] if article.described else summarize(article.text, title=article.title)
        if not sentences:  # text, but no sentence to post (a page that is all table rows)
            if article.description is None:
                raise ExtractError("That page has nothing that looks like an article to summarise.")
            article = replace(article, text=article.description, described=True)
            sentences = [article.text]
    except ExtractError as error:
        return {"ok": False, "kind": "extract", "message": str(error)}
    values = {f.name: getattr(article, f.name) for f in fields(Article)}
    values["text"] = article.text[:MAX_PROMPT_CHARS]  # all of it the bot may still need
    return {"ok": True, "article": values, "sentences": sentences}


def _read_frame(stream: BinaryIO) -> bytes | None:
    head = stream.read(_LENGTH.size)
    if len(head) < _LENGTH.size:
        return None  # the bot closed our stdin: time to go
    (size,) = _LENGTH.unpack(head)
    data = stream.read(size)
    if len(data) < size:
        return None
    return data


def _write_frame(stream: BinaryIO, payload: dict[str, Any]) -> None:
    data = json.dumps(payload, ensure_ascii=False).encode("utf-8")
    stream.write(_LENGTH.pack(len(data)) + data)
    stream.flush()


def _limit_self(memory_limit: int | None) -> None:
    with contextlib.suppress(OSError):
        os.nice(NICENESS)
    if memory_limit:
        import resource

        _soft, hard = resource.getrlimit(resource.RLIMIT_AS)
        cap = memory_limit if hard == resource.RLIM_INFINITY else min(memory_limit, hard)
        resource.setrlimit(resource.RLIMIT_AS, (cap, hard))


def serve(memory_limit: int | None = MEMORY_LIMIT, parent: int | None = None) -> int:
    """The worker's main loop: read a job, answer it, until stdin closes."""
    stdin, stdout = sys.stdin.buffer, sys.stdout.buffer
    sys.stdout = sys.stderr  # a stray print must not corrupt the protocol
    _die_with_the_bot(parent)
    _limit_self(memory_limit)
    import trafilatura  # noqa: F401  (imported before "ready", so the first job is not slower)

    from ..feeds import parse  # noqa: F401  (feedparser)
    from . import summarize  # noqa: F401  (numpy too: an import that fails the cap fails here, not in a job)

    _write_frame(stdout, {"ready": True, "pid": os.getpid()})
    while True:
        header = _read_frame(stdin)
        body = _read_frame(stdin) if header is not None else None
        if header is None or body is None:
            return 0
        job = json.loads(header)
        try:
            if job.get("kind") == "feed":
                from ..feeds.parse import process_feed

                reply = process_feed(body, job)
            else:
                reply = process_page(body, job.get("charset"), job["url"])
        except MemoryError:
            reply = {"ok": False, "kind": "memory"}
        except Exception as error:  # a bug, or an extractor failing on pathological markup
            traceback.print_exc()
            reply = {"ok": False, "kind": "error", "message": type(error).__name__}
        del body
        _write_frame(stdout, reply)


# ---------------------------------------------------------------- the bot's side


class _Worker:
    def __init__(self, process: asyncio.subprocess.Process) -> None:
        self.process = process
        self.discarded = False
        self.reused = False  # taken from the idle list (not started for this job)
        self.answered = False  # some byte of this job's answer arrived

    @property
    def pid(self) -> int:
        return self.process.pid

    async def request(self, header: dict[str, Any], body: bytes, wording: _Wording) -> dict[str, Any]:
        stdin, stdout = self.process.stdin, self.process.stdout
        assert stdin is not None and stdout is not None
        data = json.dumps(header).encode("utf-8")
        stdin.write(_LENGTH.pack(len(data)) + data + _LENGTH.pack(len(body)))
        stdin.write(body)
        await stdin.drain()
        self.answered = False
        return await self.reply(wording)

    async def reply(self, wording: _Wording | None = None) -> dict[str, Any]:
        wording = wording or _ARTICLE
        stdout = self.process.stdout
        assert stdout is not None
        (size,) = _LENGTH.unpack(await stdout.readexactly(_LENGTH.size))
        self.answered = True
        if size > wording.max_reply:
            raise ArticleJobError(wording.too_large, page_caused=True)
        result = json.loads(await stdout.readexactly(size))
        if not isinstance(result, dict):
            raise ValueError("the worker's reply is not an object")
        return result

    def kill(self) -> None:
        if self.process.returncode is None:
            with contextlib.suppress(ProcessLookupError):
                self.process.kill()


class ArticleWorkers:
    """A small pool of worker processes. Create in a running loop; `await close()` at the end."""

    def __init__(self, size: int = 2, *, memory_limit: int | None = MEMORY_LIMIT) -> None:
        if size < 1:
            raise ValueError("at least one article worker is needed")
        self.size = size
        self.memory_limit = memory_limit
        self._slots = asyncio.Semaphore(size)
        self._idle: list[_Worker] = []
        self._busy: set[_Worker] = set()
        self._reaping: set[asyncio.Task[None]] = set()
        self._closed = False
        self.started = 0  # workers started so far (a kill shows as one more start)
        self.killed = 0

    async def process(self, body: bytes, charset: str | None, url: str, *, timeout: float) -> Processed:
        """Extract and summarise a page in a worker, within `timeout` seconds or not at all.

        ExtractError: the page holds no article. ArticleJobError: it took too long or too much
        memory (the worker is killed and replaced), or the worker failed.
        """
        header = {"url": url, "charset": charset}
        return await self._run(header, body, url, timeout=timeout, wording=_ARTICLE, outcome=self._outcome)

    async def parse_feed(
        self, body: bytes, *, url: str, content_type: str, charset: str | None, discover: bool, timeout: float
    ) -> dict[str, Any]:
        """The feed job's reply (bot/feeds/parse.py `process_feed` makes it, `read_reply` reads
        it), within `timeout` seconds of the worker's time or not at all.

        ArticleJobError: the feed took too long or too much memory (the worker is killed and
        replaced), or the worker failed; its message speaks of the feed.
        """
        header = {"kind": "feed", "url": url, "content_type": content_type, "charset": charset, "discover": discover}
        return await self._run(header, body, url, timeout=timeout, wording=_FEED, outcome=self._feed_outcome)

    async def _run(
        self,
        header: dict[str, Any],
        body: bytes,
        url: str,
        *,
        timeout: float,
        wording: _Wording,
        outcome: Callable[[_Worker, dict[str, Any], str], R],
    ) -> R:
        if self._closed:
            raise ArticleJobError(_STOPPING)
        async with self._slots:
            for attempt in (1, 2):
                worker = await self._worker()
                try:
                    # The limit counts the worker's own time only, not the wait or its start.
                    async with asyncio.timeout(timeout):
                        reply = await worker.request(header, body, wording)
                except TimeoutError:
                    self._discard(worker)
                    raise ArticleJobError(wording.too_slow.format(timeout=timeout), page_caused=True) from None
                except (asyncio.IncompleteReadError, ConnectionError, ValueError) as error:
                    self._discard(worker)
                    if self._closed:
                        raise ArticleJobError(_STOPPING) from None
                    gone = not isinstance(error, ValueError) and not worker.answered
                    if attempt == 1 and worker.reused and gone:
                        # An idle worker that died meanwhile (killed by the OOM killer, say):
                        # the page never reached it, so it gets one fresh worker.
                        log.warning("article worker %s was gone (%r); retrying on a new one", worker.pid, error)
                        continue
                    log.warning("article worker failed on %s: %r", url, error)
                    raise ArticleJobError(wording.crashed) from None
                except BaseException:  # cancelled mid-job, a bad reply: the pipe is mid-frame
                    self._discard(worker)
                    raise
                return outcome(worker, reply, url)
        raise AssertionError("unreachable")  # pragma: no cover

    async def _worker(self) -> _Worker:
        """A live worker for one job (idle or new), counted as busy; the pool may not be closed."""
        if self._closed:
            raise ArticleJobError(_STOPPING)
        worker = self._take_idle()
        if worker is None:
            try:
                worker = await asyncio.wait_for(self._start(), START_SECONDS)
            except TimeoutError:
                raise ArticleJobError(_CRASHED) from None
        else:
            worker.reused = True
        self._busy.add(worker)
        if self._closed:  # closed while it started: close() could not see it
            self._discard(worker)
            raise ArticleJobError(_STOPPING)
        return worker

    def _take_idle(self) -> _Worker | None:
        """An idle worker that is still alive (one may have died or been killed meanwhile)."""
        while self._idle:
            worker = self._idle.pop()
            if worker.process.returncode is None:
                return worker
            log.warning("article worker %s had exited (%s); starting another", worker.pid, worker.process.returncode)
        return None

    def _release(self, worker: _Worker) -> None:
        """Back to the idle list, or stopped if the pool closed meanwhile."""
        self._busy.discard(worker)
        if self._closed:
            self._discard(worker)
        else:
            self._idle.append(worker)

    def _outcome(self, worker: _Worker, reply: dict[str, Any], url: str) -> Processed:
        if reply.get("ok"):
            self._release(worker)
            article = Article(**reply["article"])
            return Processed(article, [str(s) for s in reply["sentences"]])
        kind = reply.get("kind")
        if kind == "extract":
            self._release(worker)
            raise ExtractError(str(reply.get("message")))
        self._discard(worker)  # after a MemoryError or an unexpected error, start afresh
        if kind == "memory":
            raise ArticleJobError(_ARTICLE.memory, page_caused=True)
        log.error("article worker could not process %s: %s", url, reply.get("message"))
        raise ArticleJobError(_CRASHED)

    def _feed_outcome(self, worker: _Worker, reply: dict[str, Any], url: str) -> dict[str, Any]:
        if reply.get("ok") or reply.get("kind") == "feed":  # parsed, or what the feed is not
            self._release(worker)
            return reply
        self._discard(worker)
        if reply.get("kind") == "memory":
            raise ArticleJobError(_FEED.memory, page_caused=True)
        log.error("article worker could not parse the feed %s: %s", url, reply.get("message"))
        raise ArticleJobError(_FEED.crashed)

    async def _start(self) -> _Worker:
        process = await asyncio.create_subprocess_exec(
            sys.executable,
            "-m",
            "bot.articles.worker",
            "--memory-limit",
            str(self.memory_limit or 0),
            "--parent",
            str(os.getpid()),
            stdin=asyncio.subprocess.PIPE,
            stdout=asyncio.subprocess.PIPE,
            cwd=_PROJECT_ROOT,
            env=_worker_environment(),
        )
        worker = _Worker(process)
        self.started += 1
        try:
            ready = await worker.reply()
        except BaseException:
            self._discard(worker)
            raise
        if not ready.get("ready"):
            self._discard(worker)
            raise ArticleJobError(_CRASHED)
        return worker

    def _discard(self, worker: _Worker | None) -> None:
        """Kill a worker whose state is unknown; reaping it happens in the background."""
        if worker is None or worker.discarded:
            return
        worker.discarded = True
        self._busy.discard(worker)
        if worker in self._idle:
            self._idle.remove(worker)
        if worker.process.returncode is None:
            self.killed += 1
        worker.kill()
        task = asyncio.get_running_loop().create_task(self._reap(worker), name="quorum-article-worker-reap")
        self._reaping.add(task)
        task.add_done_callback(self._reaping.discard)

    @staticmethod
    async def _reap(worker: _Worker) -> None:
        with contextlib.suppress(Exception):
            await worker.process.wait()

    @property
    def pids(self) -> list[int]:
        """The idle workers' process ids (tests and benchmarks watch them)."""
        return [w.pid for w in self._idle]

    async def close(self) -> None:
        """Stop every worker: idle ones get EOF and exit, busy ones are killed (their jobs fail).
        Safe to call twice."""
        if self._closed:
            return
        self._closed = True
        for worker in list(self._busy):
            self._discard(worker)
        idle, self._idle = self._idle, []
        for worker in idle:
            if worker.process.stdin is not None:
                worker.process.stdin.close()
        for worker in idle:
            try:
                await asyncio.wait_for(worker.process.wait(), 5)
            except TimeoutError:
                worker.kill()
                await worker.process.wait()
        # Jobs still holding a slot (a worker starting, a job failing on its killed worker) end
        # promptly now; waiting for their slots lets their workers be reaped here too.
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(START_SECONDS + 5):
                for _ in range(self.size):
                    await self._slots.acquire()
        if self._reaping:
            await asyncio.gather(*self._reaping, return_exceptions=True)


_CRASHED = "Something went wrong while summarising that page; try again later or share another link."
_STOPPING = "Quorum is restarting; try sharing the link again in a minute."
R = TypeVar("R")


@dataclass(frozen=True, slots=True)
class _Wording:
    """What a kind of job's failures are called, and how large its reply may be."""

    too_slow: str  # .format(timeout=…)
    too_large: str
    memory: str
    crashed: str
    max_reply: int


_ARTICLE = _Wording(
    too_slow="Summarising that page took longer than {timeout:g} s, so I stopped. "
    "It is probably not a normal article page; share another link.",
    too_large="That page could not be summarised (its result was too large).",
    memory="That page needs more memory than I allow for one article; share a lighter page.",
    crashed=_CRASHED,
    max_reply=MAX_REPLY_BYTES,
)
_FEED = _Wording(
    too_slow="Reading the feed took longer than {timeout:g} s, so I stopped; it is too large or malformed.",
    too_large="The feed could not be read (what it holds was too large).",
    memory="Reading the feed needs more memory than I allow for one feed.",
    crashed="Something went wrong while reading the feed; I'll try again later.",
    max_reply=MAX_FEED_REPLY_BYTES,
)
# A worker that has not said "ready" by then is not going to (its imports take ~0.3 s).
START_SECONDS = 30.0
# The worker runs `-m bot.articles.worker`, so it needs the folder holding `bot/` as its cwd
# when Quorum runs from a checkout rather than an installed package.
_PROJECT_ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


# What a worker inherits: enough to run Python here, none of the bot's secrets (DISCORD_TOKEN,
# SUMMARY_API_KEY): the worker parses hostile HTML and needs no credentials.
_WORKER_ENVIRONMENT = ("PATH", "HOME", "LANG", "LANGUAGE", "TZ", "TMPDIR", "PYTHONPATH", "VIRTUAL_ENV", "SYSTEMROOT")


def _worker_environment() -> dict[str, str]:
    kept = {k: v for k, v in os.environ.items() if k in _WORKER_ENVIRONMENT or k.startswith("LC_")}
    # One thread for numpy's BLAS: a worker does one page at a time, at a low priority, and each
    # extra BLAS thread would reserve address space under the worker's memory cap.
    return {**kept, "OPENBLAS_NUM_THREADS": "1", "OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1"}


def _die_with_the_bot(parent: int | None) -> None:
    """Linux: the kernel kills this worker when the bot's process dies (even by SIGKILL), so a
    runaway job never outlives the bot."""
    if not sys.platform.startswith("linux"):
        return
    import ctypes
    import signal

    with contextlib.suppress(OSError, AttributeError):
        libc = ctypes.CDLL(None, use_errno=True)
        libc.prctl(1, signal.SIGKILL, 0, 0, 0)  # PR_SET_PDEATHSIG
    if parent is not None and os.getppid() != parent:  # the bot died before we asked
        os._exit(0)


def main(argv: list[str] | None = None) -> int:
    import argparse

    parser = argparse.ArgumentParser(description="Quorum's article worker (started by the bot)")
    parser.add_argument("--memory-limit", type=int, default=MEMORY_LIMIT, help="address-space cap in bytes; 0: none")
    parser.add_argument("--parent", type=int, default=None, help="the bot's process id")
    args = parser.parse_args(argv)
    return serve(args.memory_limit or None, args.parent)


if __name__ == "__main__":
    sys.exit(main())
