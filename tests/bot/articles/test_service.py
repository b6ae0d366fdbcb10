"""ArticleService: fetch → extract → summarise → cache, and the model summary's fallback."""

from __future__ import annotations

from pathlib import Path

import pytest
from aiohttp import web

from bot.articles.fetch import FetchError
from bot.articles.repository import ArticleCache
from bot.articles.service import ArticleService, trusted_canonical
from bot.db import Database

FIXTURE = Path(__file__).resolve().parents[2] / "fixtures" / "kubernetes_article.html"
TITLE = "The Internet Is Awesome! The Kubernetes Community Proves It"


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
    runner = web.AppRunner(app)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = site._server.sockets[0].getsockname()[1]
    yield f"http://127.0.0.1:{port}", hits, model_status
    await runner.cleanup()


@pytest.fixture
async def db(tmp_path):
    database = await Database.open(tmp_path / "articles.sqlite3")
    yield database
    await database.close()


def service(db, now=lambda: 1_700_000_000.0, **kwargs) -> ArticleService:
    return ArticleService(ArticleCache(db), now, allow_private=True, **kwargs)


async def test_share_extracts_summarises_and_caches(db, server):
    base, hits, _ = server
    articles = service(db)
    first = await articles.share(f"{base}/article")
    assert first.title == TITLE and first.summary_by == "extractive"
    # The fixture names thenewstack.io as canonical but was served from 127.0.0.1: another
    # host's canonical is not trusted as the cache key.
    assert first.canonical_url == f"{base}/article"
    again = await articles.share(f"{base}/article")
    assert again == first and hits["page"] == 1


async def test_the_cache_expires(db, server):
    base, hits, _ = server
    clock = [1_700_000_000.0]
    articles = service(db, now=lambda: clock[0], cache_hours=1)
    await articles.share(f"{base}/article")
    clock[0] += 3601
    await articles.share(f"{base}/article")
    assert hits["page"] == 2


async def test_a_configured_model_writes_the_summary(db, server):
    base, hits, _ = server
    articles = service(db, summary_api_url=f"{base}/v1", summary_model="tiny-llm")
    shared = await articles.share(f"{base}/article")
    assert shared.summary == "A summary by tiny-llm." and shared.summary_by == "tiny-llm"
    assert hits["model"] == 1


async def test_a_failing_model_falls_back_to_the_extractive_summary(db, server):
    base, hits, model_status = server
    model_status["code"] = 500
    articles = service(db, summary_api_url=f"{base}/v1", summary_model="tiny-llm")
    shared = await articles.share(f"{base}/article")
    assert hits["model"] == 1
    assert shared.summary_by == "extractive" and len(shared.summary) > 100


async def test_private_addresses_are_refused_without_the_setting(db, server):
    base, hits, _ = server
    articles = ArticleService(ArticleCache(db), lambda: 0.0)
    with pytest.raises(FetchError):
        await articles.share(f"{base}/article")
    assert hits["page"] == 0


def test_a_canonical_url_is_trusted_only_on_the_pages_own_host():
    assert trusted_canonical("https://news.example/a", "https://news.example/a?utm=x") == "https://news.example/a"
    assert trusted_canonical("https://bank.example/a", "https://evil.example/a") == "https://evil.example/a"
    assert trusted_canonical(None, "https://news.example/a") == "https://news.example/a"


async def test_expired_entries_are_deleted_so_the_cache_does_not_grow(db, server):
    base, _, _ = server
    clock = [1_700_000_000.0]
    articles = service(db, now=lambda: clock[0], cache_hours=1)
    await articles.share(f"{base}/article?first")
    clock[0] += 3601
    await articles.share(f"{base}/article?second")
    assert await db.fetchval("SELECT count(*) FROM articles") == 1
    assert await db.fetchval("SELECT count(*) FROM article_urls") == 1
