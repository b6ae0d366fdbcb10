"""ArticleService: fetch → extract → summarise → cache, and the model summary's fallback."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest
from aiohttp import web

from bot.articles.fetch import FetchError
from bot.articles.models import ExtractError
from bot.articles.repository import ArticleCache
from bot.articles.service import FAILURE_MINUTES, ArticleBusy, ArticleService, trusted_canonical
from bot.articles.worker import ArticleJobError, ArticleWorkers

FIXTURE = Path(__file__).resolve().parents[2] / "fixtures" / "kubernetes_article.html"
TITLE = "The Internet Is Awesome! The Kubernetes Community Proves It"


async def serve(app: web.Application) -> tuple[web.AppRunner, str]:
    """Serve `app` on 127.0.0.1 at a free port; the runner (to clean up) and the base URL."""
    runner = web.AppRunner(app)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    return runner, f"http://127.0.0.1:{site._server.sockets[0].getsockname()[1]}"


@pytest.fixture
async def server():
    """The article page and an OpenAI-compatible stub on 127.0.0.1."""
    hits = {"page": 0, "model": 0}
    model_status = {"code": 200}

    async def page(_: web.Request) -> web.Response:
        hits["page"] += 1
        return web.Response(body=FIXTURE.read_bytes(), content_type="text/html", charset="utf-8")

    async def chat(request: web.Request) -> web.Response:
        hits["model"] += 1
        body = await request.json()
        if model_status["code"] != 200:
            return web.Response(status=model_status["code"], text="model down")
        return web.json_response(
            {"choices": [{"message": {"role": "assistant", "content": f"A summary by {body['model']}."}}]}
        )

    app = web.Application()
    app.router.add_get("/article", page)
    app.router.add_post("/v1/chat/completions", chat)
    runner, base = await serve(app)
    yield base, hits, model_status
    await runner.cleanup()


@pytest.fixture
async def db(open_db):
    return await open_db()


@pytest.fixture
async def workers():
    pool = ArticleWorkers(1)
    yield pool
    await pool.close()


@pytest.fixture
def service(db, workers):
    def make(now=lambda: 1_700_000_000.0, **kwargs) -> ArticleService:
        return ArticleService(ArticleCache(db), now, workers, allow_private=True, **kwargs)

    return make


async def test_share_extracts_summarises_and_caches(service, server):
    base, hits, _ = server
    articles = service()
    first = await articles.share(f"{base}/article")
    assert first.title == TITLE and first.summary_by == "extractive"
    # The fixture names thenewstack.io as canonical but was served from 127.0.0.1: another
    # host's canonical is not trusted as the cache key.
    assert first.canonical_url == f"{base}/article"
    again = await articles.share(f"{base}/article")
    assert again == first and hits["page"] == 1


async def test_the_cache_expires(service, server):
    base, hits, _ = server
    clock = [1_700_000_000.0]
    articles = service(now=lambda: clock[0], cache_hours=1)
    await articles.share(f"{base}/article")
    clock[0] += 3601
    await articles.share(f"{base}/article")
    assert hits["page"] == 2


async def test_a_configured_model_writes_the_summary(service, server):
    base, hits, _ = server
    articles = service(summary_api_url=f"{base}/v1", summary_model="tiny-llm")
    shared = await articles.share(f"{base}/article")
    assert shared.summary == "A summary by tiny-llm." and shared.summary_by == "tiny-llm"
    assert hits["model"] == 1


async def test_a_failing_model_falls_back_to_the_extractive_summary(service, server):
    base, hits, model_status = server
    model_status["code"] = 500
    articles = service(summary_api_url=f"{base}/v1", summary_model="tiny-llm")
    shared = await articles.share(f"{base}/article")
    assert hits["model"] == 1
    assert shared.summary_by == "extractive" and len(shared.summary) > 100


async def test_private_addresses_are_refused_without_the_setting(db, workers, server):
    base, hits, _ = server
    articles = ArticleService(ArticleCache(db), lambda: 0.0, workers)
    with pytest.raises(FetchError):
        await articles.share(f"{base}/article")
    assert hits["page"] == 0


def test_a_canonical_url_is_trusted_only_on_the_pages_own_host():
    assert trusted_canonical("https://news.example/a", "https://news.example/a?utm=x") == "https://news.example/a"
    assert trusted_canonical("https://bank.example/a", "https://evil.example/a") == "https://evil.example/a"
    assert trusted_canonical(None, "https://news.example/a") == "https://news.example/a"


async def test_expired_entries_are_deleted_so_the_cache_does_not_grow(db, service, server):
    base, _, _ = server
    clock = [1_700_000_000.0]
    articles = service(now=lambda: clock[0], cache_hours=1)
    await articles.share(f"{base}/article?first")
    clock[0] += 3601
    await articles.share(f"{base}/article?second")
    assert await db.fetchval("SELECT count(*) FROM articles") == 1
    assert await db.fetchval("SELECT count(*) FROM article_urls") == 1


# --------------------------------------------------------------------------- hostile pages

MR_PAGE = ("<html><body><p>Opening words here. " + "Mr. " * 16000 + "Closing sentence ends here.</p></body></html>")
PARAGRAPH = " ".join(f"Sentence number {i} says something quite ordinary about the topic." for i in range(30000))
HEAVY = "<html><body><p>" + "word " * 980_000 + "</p></body></html>"


@pytest.fixture
async def hostile():
    """Pages an attacker would share, on 127.0.0.1; /slow answers only once released."""
    hits: dict[str, int] = {}
    release = asyncio.Event()
    pages = {"/mr": MR_PAGE, "/paragraph": f"<html><body><p>{PARAGRAPH}</p></body></html>", "/heavy": HEAVY}

    async def page(request: web.Request) -> web.Response:
        hits[request.path] = hits.get(request.path, 0) + 1
        if request.path == "/redirect":
            raise web.HTTPFound("/heavy")
        if request.path == "/slow":
            await release.wait()
            return web.Response(body=FIXTURE.read_bytes(), content_type="text/html", charset="utf-8")
        return web.Response(text=pages[request.path], content_type="text/html")

    app = web.Application()
    app.router.add_get("/{name}", page)
    runner, base = await serve(app)
    yield base, hits, release
    release.set()
    await runner.cleanup()


async def in_progress(articles: ArticleService, jobs: int) -> None:
    for _ in range(500):
        if articles._jobs == jobs:
            return
        await asyncio.sleep(0.01)
    raise AssertionError(f"{jobs} share(s) never started")


async def test_a_page_of_mr_abbreviations_is_summarised(service, hostile):
    base, _, _ = hostile
    shared = await service().share(f"{base}/mr")
    assert shared.summary.startswith("Opening words here.")


async def test_a_two_megabyte_paragraph_is_summarised(service, hostile):
    base, _, _ = hostile
    shared = await service().share(f"{base}/paragraph")
    assert shared.summary.startswith("Sentence number 0 says something quite ordinary about the topic.")


async def test_a_page_past_the_time_limit_is_stopped_and_the_failure_remembered(service, workers, hostile):
    base, hits, _ = hostile
    articles = service(job_seconds=0.3)
    with pytest.raises(ArticleJobError, match="took longer than"):
        await articles.share(f"{base}/heavy")
    assert workers.killed == 1
    # Asking again is answered from the failure cache: no second fetch, no second worker.
    started = workers.started
    with pytest.raises(ArticleJobError, match="took longer than"):
        await articles.share(f"{base}/heavy")
    assert hits["/heavy"] == 1 and workers.started == started


async def test_a_remembered_failure_expires(service, hostile):
    base, hits, _ = hostile
    clock = [1_700_000_000.0]
    articles = service(now=lambda: clock[0], job_seconds=0.3)
    with pytest.raises(ArticleJobError):
        await articles.share(f"{base}/heavy")
    clock[0] += FAILURE_MINUTES * 60 + 1
    with pytest.raises(ArticleJobError):
        await articles.share(f"{base}/heavy")
    assert hits["/heavy"] == 2


async def test_beyond_the_job_cap_members_are_told_to_try_again(service, hostile):
    base, _, release = hostile
    articles = service(max_jobs=1)
    first = asyncio.ensure_future(articles.share(f"{base}/slow", member_id=1))
    await in_progress(articles, 1)
    with pytest.raises(ArticleBusy, match="try again in a minute"):
        await articles.share(f"{base}/slow?other", member_id=2)
    release.set()
    assert (await first).title == TITLE
    # The slot is free again.
    assert (await articles.share(f"{base}/slow?other", member_id=2)).title == TITLE


async def test_one_member_shares_one_article_at_a_time(service, hostile):
    base, _, release = hostile
    articles = service(max_jobs=4)
    first = asyncio.ensure_future(articles.share(f"{base}/slow", member_id=1))
    await in_progress(articles, 1)
    with pytest.raises(ArticleBusy, match="previous article"):
        await articles.share(f"{base}/slow?again", member_id=1)
    other = asyncio.ensure_future(articles.share(f"{base}/slow?other", member_id=2))
    release.set()
    assert (await first).title == TITLE and (await other).title == TITLE


async def test_the_same_page_under_another_fragment_or_case_is_the_same_failure(service, workers, hostile):
    base, hits, _ = hostile
    articles = service(job_seconds=0.3)
    with pytest.raises(ArticleJobError, match="took longer than"):
        await articles.share(f"{base}/heavy#0")
    for again in (f"{base}/heavy#1", f"{base}/heavy#2", f"{base.upper().replace('HTTP:', 'http:')}/heavy"):
        with pytest.raises(ArticleJobError, match="took longer than"):
            await articles.share(again)
    assert hits["/heavy"] == 1 and workers.killed == 1


async def test_a_redirect_to_a_page_that_just_failed_is_answered_without_a_worker(service, workers, hostile):
    base, hits, _ = hostile
    articles = service(job_seconds=0.3)
    with pytest.raises(ArticleJobError, match="took longer than"):
        await articles.share(f"{base}/heavy")
    started = workers.started
    with pytest.raises(ArticleJobError, match="took longer than"):
        await articles.share(f"{base}/redirect")
    assert hits["/redirect"] == 1 and hits["/heavy"] == 2  # fetched, but not processed again
    assert workers.started == started and workers.killed == 1


async def test_a_failure_of_quorums_own_is_not_remembered_against_the_page(db, hostile):
    base, hits, _ = hostile
    first_pool = ArticleWorkers(1)
    articles = ArticleService(ArticleCache(db), lambda: 1_700_000_000.0, first_pool, allow_private=True)
    share = asyncio.ensure_future(articles.share(f"{base}/heavy"))
    for _ in range(500):
        if first_pool._busy:
            break
        await asyncio.sleep(0.01)
    await first_pool.close()  # the bot shuts down mid-job
    with pytest.raises(ArticleJobError, match="restarting"):
        await share
    second_pool = ArticleWorkers(1)
    try:
        after = ArticleService(ArticleCache(db), lambda: 1_700_000_000.0, second_pool, allow_private=True)
        # Processed afresh: the page's own verdict (one 5 MB sentence, nothing to post), not a
        # remembered "restarting".
        with pytest.raises(ExtractError, match="nothing that looks like an article"):
            await after.share(f"{base}/heavy")
        assert hits["/heavy"] == 2
    finally:
        await second_pool.close()
