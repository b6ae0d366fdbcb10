"""The article worker processes: the work happens outside the bot's process, a job past its
time limit or its memory cap is stopped for real (the process is killed and replaced)."""

from __future__ import annotations

import asyncio
import os
import signal
import sys
from pathlib import Path

import pytest

from bot.articles import extract as extract_module
from bot.articles.models import ExtractError
from bot.articles.worker import ArticleJobError, ArticleWorkers

FIXTURE = (Path(__file__).resolve().parents[2] / "fixtures" / "kubernetes_article.html").read_bytes()
TITLE = "The Internet Is Awesome! The Kubernetes Community Proves It"
URL = "https://thenewstack.io/the-internet-is-awesome-the-kubernetes-community-proves-it/"
# The largest page the fetcher accepts, as one paragraph: ~1.5 s of extraction, ~200 MB at its peak.
HEAVY = b"<html><body><p>" + b"word " * 980_000 + b"</p></body></html>"


@pytest.fixture
async def pool():
    workers = ArticleWorkers(1)
    yield workers
    await workers.close()


def alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    return True


async def gone(pid: int) -> bool:
    for _ in range(100):  # the killed worker is reaped in the background
        if not alive(pid):
            return True
        await asyncio.sleep(0.05)
    return False


async def test_a_page_is_extracted_and_summarised_in_another_process(pool, monkeypatch):
    def not_here(*args: object) -> None:
        raise AssertionError("extraction ran in the bot's own process")

    monkeypatch.setattr(extract_module, "extract_article", not_here)
    processed = await pool.process(FIXTURE, "utf-8", URL, timeout=30)
    assert processed.article.title == TITLE
    assert 3 <= len(processed.sentences) <= 5
    assert pool.pids and pool.pids[0] != os.getpid()


async def test_a_worker_serves_job_after_job(pool):
    first = await pool.process(FIXTURE, "utf-8", URL, timeout=30)
    pid = pool.pids[0]
    second = await pool.process(FIXTURE, "utf-8", URL, timeout=30)
    assert first == second and pool.pids == [pid] and pool.started == 1


async def test_a_page_with_no_article_is_an_extract_error_and_the_worker_stays(pool):
    await pool.process(FIXTURE, "utf-8", URL, timeout=30)
    pid = pool.pids[0]
    with pytest.raises(ExtractError, match="nothing that looks like an article"):
        await pool.process(b"<html><body><p>Hi</p></body></html>", None, "https://example.org/", timeout=30)
    assert pool.pids == [pid]


async def test_a_job_past_its_time_limit_kills_the_worker_and_the_next_job_gets_a_fresh_one(pool):
    await pool.process(FIXTURE, "utf-8", URL, timeout=30)
    pid = pool.pids[0]
    with pytest.raises(ArticleJobError, match="took longer than"):
        await pool.process(HEAVY, "utf-8", "https://example.org/heavy", timeout=0.3)
    assert await gone(pid), "the runaway worker is still running"
    assert pool.killed == 1 and pool.pids == []
    processed = await pool.process(FIXTURE, "utf-8", URL, timeout=30)
    assert processed.article.title == TITLE and pool.started == 2


async def test_a_cancelled_job_kills_its_worker(pool):
    await pool.process(FIXTURE, "utf-8", URL, timeout=30)
    pid = pool.pids[0]
    job = asyncio.ensure_future(pool.process(HEAVY, "utf-8", "https://example.org/heavy", timeout=30))
    await asyncio.sleep(0.3)
    job.cancel()
    with pytest.raises(asyncio.CancelledError):
        await job
    assert await gone(pid)


async def test_a_page_needing_more_memory_than_the_cap_fails_in_the_worker_not_the_bot():
    workers = ArticleWorkers(1, memory_limit=200 * 1024 * 1024)  # numpy and trafilatura fit; this page does not
    try:
        with pytest.raises(ArticleJobError, match="more memory"):
            await workers.process(HEAVY, "utf-8", "https://example.org/heavy", timeout=30)
        assert workers.killed == 1
        # The same pool goes on with a fresh worker for a normal page.
        assert (await workers.process(FIXTURE, "utf-8", URL, timeout=30)).article.title == TITLE
    finally:
        await workers.close()


async def test_a_worker_that_died_while_idle_is_replaced(pool):
    await pool.process(FIXTURE, "utf-8", URL, timeout=30)
    pid = pool.pids[0]
    os.kill(pid, signal.SIGKILL)
    # At once: the pool may not know yet that it died, and writes the job to a dead pipe.
    processed = await pool.process(FIXTURE, "utf-8", URL, timeout=30)
    assert processed.article.title == TITLE and pool.pids != [pid]


async def test_jobs_beyond_the_pool_size_wait_for_a_free_worker():
    workers = ArticleWorkers(2)
    try:
        results = await asyncio.gather(*(workers.process(FIXTURE, "utf-8", URL, timeout=60) for _ in range(5)))
        assert {r.article.title for r in results} == {TITLE}
        assert workers.started == 2 and len(workers.pids) == 2
    finally:
        await workers.close()


async def test_close_stops_every_idle_worker():
    workers = ArticleWorkers(2)
    await asyncio.gather(*(workers.process(FIXTURE, "utf-8", URL, timeout=60) for _ in range(2)))
    pids = workers.pids
    await workers.close()
    assert all(not alive(pid) for pid in pids)
    with pytest.raises(ArticleJobError, match="restarting"):
        await workers.process(FIXTURE, "utf-8", URL, timeout=30)


async def test_closing_the_pool_stops_a_busy_worker_too():
    workers = ArticleWorkers(1)
    await workers.process(FIXTURE, "utf-8", URL, timeout=30)
    pid = workers.pids[0]
    job = asyncio.ensure_future(workers.process(HEAVY, "utf-8", "https://example.org/heavy", timeout=30))
    await asyncio.sleep(0.3)
    await workers.close()
    with pytest.raises(ArticleJobError):
        await job
    assert await gone(pid)


async def test_a_job_waiting_for_a_worker_when_the_pool_closes_starts_none():
    workers = ArticleWorkers(1)
    first = asyncio.ensure_future(workers.process(HEAVY, "utf-8", "https://example.org/heavy", timeout=30))
    await asyncio.sleep(0)
    waiting = asyncio.ensure_future(workers.process(FIXTURE, "utf-8", URL, timeout=30))
    for _ in range(200):
        if workers.started:
            break
        await asyncio.sleep(0.01)
    await workers.close()
    for job in (first, waiting):
        with pytest.raises(ArticleJobError, match="restarting"):
            await job
    assert workers.started == 1 and workers.pids == []


def worker_environment(pid: int) -> dict[str, str]:
    raw = Path(f"/proc/{pid}/environ").read_bytes()
    return dict(item.split("=", 1) for item in raw.decode().split("\0") if "=" in item)


@pytest.mark.skipif(not Path("/proc/self/environ").exists(), reason="needs Linux /proc")
async def test_workers_inherit_none_of_the_bots_secrets(monkeypatch):
    monkeypatch.setenv("DISCORD_TOKEN", "secret-token")
    monkeypatch.setenv("SUMMARY_API_KEY", "secret-key")
    workers = ArticleWorkers(1)
    try:
        await workers.process(FIXTURE, "utf-8", URL, timeout=30)
        environment = worker_environment(workers.pids[0])
        assert "DISCORD_TOKEN" not in environment and "SUMMARY_API_KEY" not in environment
        assert "PATH" in environment
    finally:
        await workers.close()


PARENT = """
import asyncio, sys
sys.path.insert(0, sys.argv[1])
from bot.articles.worker import ArticleWorkers

async def main():
    workers = ArticleWorkers(1)
    body = open(sys.argv[2], "rb").read()
    await workers.process(body, "utf-8", "https://example.org/", timeout=30)
    print(workers.pids[0], flush=True)
    await asyncio.sleep(600)

asyncio.run(main())
"""


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="PR_SET_PDEATHSIG is Linux's")
async def test_a_worker_dies_with_a_killed_bot(tmp_path):
    fixture = tmp_path / "page.html"
    fixture.write_bytes(FIXTURE)
    root = str(Path(__file__).resolve().parents[3])
    bot = await asyncio.create_subprocess_exec(
        sys.executable, "-c", PARENT, root, str(fixture), stdout=asyncio.subprocess.PIPE
    )
    assert bot.stdout is not None
    line = await asyncio.wait_for(bot.stdout.readline(), 60)
    pid = int(line)
    assert alive(pid)
    bot.kill()  # SIGKILL: the bot gets no chance to stop its workers
    await bot.stdout.read()
    await bot.wait()
    assert await gone(pid), "the worker outlived the bot"
