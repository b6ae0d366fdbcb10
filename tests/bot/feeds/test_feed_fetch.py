"""`load_feed` against feeds the test serves itself on 127.0.0.1 (allow_private=True); nothing
leaves the machine. One server and one worker pool serve the whole module."""

from __future__ import annotations

import asyncio
import email.utils
import hashlib
import time
from collections.abc import Awaitable, Callable
from pathlib import Path

import pytest
import pytest_asyncio
from aiohttp import web
from aiohttp.test_utils import TestServer

from bot.articles.worker import ArticleWorkers
from bot.feeds.fetch import HostLimiter, LoadedFeed, load_feed, retry_after_seconds
from bot.feeds.models import FeedError, NotAFeed

in_module_loop = pytest.mark.asyncio(loop_scope="module")

FIXTURES = Path(__file__).resolve().parents[2] / "fixtures" / "feeds"
RSS = (FIXTURES / "rss2.xml").read_bytes()
ATOM = (FIXTURES / "atom.xml").read_bytes()
JSON_FEED = (FIXTURES / "feed.json").read_bytes()
PNG = b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR" + b"\x00" * 64
Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


class Site:
    """A server whose routes each test sets; it records every request that reaches it."""

    def __init__(self) -> None:
        self.routes: dict[str, Handler] = {}
        self.requests: list[web.Request] = []
        self.server: TestServer | None = None

    def url(self, path: str) -> str:
        assert self.server is not None
        return f"http://127.0.0.1:{self.server.port}{path}"

    def serve(self, path: str, body: bytes, content_type: str | None, status: int = 200, **headers: str) -> None:
        async def handler(request: web.Request) -> web.Response:
            sent = dict(headers)
            if content_type is not None:
                sent["Content-Type"] = content_type
            return web.Response(body=body, status=status, headers=sent)

        self.routes[path] = handler

    def paths(self) -> list[str]:
        return [r.path for r in self.requests]

    async def handle(self, request: web.Request) -> web.StreamResponse:
        self.requests.append(request)
        handler = self.routes.get(request.path)
        if handler is None:
            return web.Response(status=404)
        return await handler(request)


@pytest_asyncio.fixture(scope="module", loop_scope="module")
async def server():
    site = Site()
    app = web.Application()
    app.router.add_route("*", "/{tail:.*}", site.handle)
    site.server = TestServer(app, host="127.0.0.1")
    await site.server.start_server()
    yield site
    await site.server.close()


@pytest_asyncio.fixture(scope="module", loop_scope="module")
async def workers():
    pool = ArticleWorkers(1)
    yield pool
    await pool.close()


@pytest.fixture
def site(server: Site) -> Site:
    server.routes.clear()
    server.requests.clear()
    return server


class NoParsing:
    """Stands in for the worker pool where nothing may be parsed."""

    async def parse_feed(self, *args: object, **kwargs: object) -> dict[str, object]:
        raise AssertionError("the feed was parsed")


async def load(url: str, workers, **kwargs) -> LoadedFeed:
    kwargs.setdefault("hosts", HostLimiter())
    kwargs.setdefault("allow_private", True)
    return await load_feed(url, workers=workers, **kwargs)


# --------------------------------------------------------------------------- conditional GET


@in_module_loop
async def test_a_200_gives_its_etag_and_a_304_then_costs_no_parsing(site, workers):
    async def feed(request: web.Request) -> web.Response:
        if request.headers.get("If-None-Match") == '"v1"':
            return web.Response(status=304, headers={"ETag": '"v1"'})
        return web.Response(body=RSS, headers={"Content-Type": "application/rss+xml", "ETag": '"v1"'})

    site.routes["/feed"] = feed
    first = await load(site.url("/feed"), workers)
    assert first.fetched.etag == '"v1"' and not first.fetched.not_modified
    assert first.parsed is not None and first.parsed.title == "The Kubernetes Blog"
    assert first.feed_url == site.url("/feed")

    second = await load(site.url("/feed"), NoParsing(), etag=first.fetched.etag)
    assert second.parsed is None and second.fetched.not_modified and second.fetched.body == b""
    assert second.fetched.etag == '"v1"'
    assert site.requests[-1].headers["If-None-Match"] == '"v1"'
    assert "If-None-Match" not in site.requests[0].headers


@in_module_loop
async def test_the_same_body_again_from_a_server_without_validators_is_not_parsed(site, workers):
    site.serve("/feed", RSS, "application/rss+xml")  # no ETag, no Last-Modified
    first = await load(site.url("/feed"), workers)
    assert first.parsed is not None and first.body_hash == hashlib.sha256(RSS).hexdigest()
    again = await load(site.url("/feed"), NoParsing(), body_hash=first.body_hash)
    assert again.parsed is None and not again.fetched.not_modified and again.body_hash == first.body_hash
    site.serve("/feed", RSS.replace(b"Kubernetes", b"K8s"), "application/rss+xml")
    changed = await load(site.url("/feed"), workers, body_hash=first.body_hash)
    assert changed.parsed is not None and changed.body_hash != first.body_hash


@in_module_loop
async def test_last_modified_is_sent_back_as_if_modified_since(site, workers):
    stamp = "Wed, 21 Oct 2025 07:28:00 GMT"

    async def feed(request: web.Request) -> web.Response:
        if request.headers.get("If-Modified-Since") == stamp:
            return web.Response(status=304)  # without validators: the ones sent still hold
        return web.Response(body=ATOM, headers={"Content-Type": "application/atom+xml", "Last-Modified": stamp})

    site.routes["/atom"] = feed
    first = await load(site.url("/atom"), workers)
    assert first.fetched.last_modified == stamp and first.fetched.etag is None
    second = await load(site.url("/atom"), NoParsing(), last_modified=stamp, etag='"old"')
    assert second.parsed is None and second.fetched.last_modified == stamp and second.fetched.etag == '"old"'


@in_module_loop
async def test_validators_that_could_not_be_sent_back_are_not_kept(site, workers):
    site.serve("/feed", RSS, "application/rss+xml", ETag='"é-not-ascii"', **{"Last-Modified": "x" * 2000})
    loaded = await load(site.url("/feed"), workers)
    assert loaded.parsed is not None
    assert loaded.fetched.etag is None and loaded.fetched.last_modified is None


# --------------------------------------------------------------------------- statuses


@in_module_loop
async def test_a_429_with_retry_after_in_seconds(site, workers):
    site.serve("/busy", b"slow down", "text/plain", status=429, **{"Retry-After": "120"})
    with pytest.raises(FeedError) as caught:
        await load(site.url("/busy"), workers)
    assert caught.value.retry_after == 120
    assert str(caught.value) == "The feed answered 429 Too Many Requests; the site is limiting requests."
    assert not isinstance(caught.value, NotAFeed)


@in_module_loop
async def test_a_429_with_retry_after_as_an_http_date(site, workers):
    async def busy(request: web.Request) -> web.Response:
        now = time.time()
        headers = {
            "Date": email.utils.formatdate(now, usegmt=True),
            "Retry-After": email.utils.formatdate(now + 300, usegmt=True),
        }
        return web.Response(status=429, headers=headers)

    site.routes["/busy"] = busy
    with pytest.raises(FeedError) as caught:
        await load(site.url("/busy"), workers)
    assert caught.value.retry_after == 300  # measured against the reply's own Date


@in_module_loop
async def test_a_503_with_and_without_retry_after(site, workers):
    site.serve("/down", b"", None, status=503, **{"Retry-After": "999999999"})
    with pytest.raises(FeedError, match="503 Service Unavailable; the site has a problem") as caught:
        await load(site.url("/down"), workers)
    assert caught.value.retry_after == 24 * 3600  # capped
    site.serve("/down", b"", None, status=503)
    with pytest.raises(FeedError) as caught:
        await load(site.url("/down"), workers)
    assert caught.value.retry_after is None


def test_retry_after_values():
    assert retry_after_seconds("0") == 0
    assert retry_after_seconds(" 60 ") == 60
    assert retry_after_seconds("-5") is None and retry_after_seconds("soon") is None and retry_after_seconds("") is None
    assert retry_after_seconds("Wed, 21 Oct 2015 07:28:00 GMT", now=time.time()) == 0  # in the past
    assert retry_after_seconds("Wed, 21 Oct 2015 07:28:00 GMT", now=1445412480 - 90) == 90
    assert retry_after_seconds("٣٠") is None  # Arabic-Indic digits: isdigit(), but not HTTP


@in_module_loop
async def test_other_errors_name_the_status_and_not_the_servers_words(site, workers):
    site.serve("/gone", b"<b>**@everyone**</b>", "text/html", status=404)
    with pytest.raises(FeedError) as caught:
        await load(site.url("/gone"), workers)
    assert str(caught.value) == "The feed answered 404 Not Found; the feed is gone, or the address is wrong."
    assert caught.value.retry_after is None


@in_module_loop
async def test_a_redirect_is_followed_and_the_feed_is_known_by_where_it_ended(site, workers):
    site.serve("/old", b"", None, status=301, Location="/new/feed.xml")
    site.serve("/new/feed.xml", RSS, "application/rss+xml")
    loaded = await load(site.url("/old"), workers)
    # The old address and the new one are one feed: followed by both, it would post twice.
    assert loaded.feed_url == site.url("/new/feed.xml")
    assert loaded.fetched.url == site.url("/new/feed.xml")
    assert site.paths() == ["/old", "/new/feed.xml"]
    # Relative links resolve against where the feed is, after the redirect.
    assert loaded.parsed is not None
    assert loaded.parsed.items[0].link == site.url("/blog/2025/06/02/gateway-api-v1-3/")


# --------------------------------------------------------------------------- what is (not) a feed


@in_module_loop
async def test_a_web_page_leads_to_the_feed_it_links_to(site, workers):
    site.serve("/blog/", (FIXTURES / "page_with_alternate.html").read_bytes(), "text/html; charset=utf-8")
    site.serve("/blog/feeds/rss2.xml", RSS, "application/rss+xml", ETag='"feed"')
    loaded = await load(site.url("/blog/"), workers, discover=True, etag='"page"')
    assert loaded.feed_url == site.url("/blog/feeds/rss2.xml")
    assert loaded.parsed is not None and loaded.parsed.title == "The Kubernetes Blog"
    assert loaded.fetched.etag == '"feed"'
    assert site.paths() == ["/blog/", "/blog/feeds/rss2.xml"]
    assert "If-None-Match" not in site.requests[1].headers  # the page's validator is not the feed's


@in_module_loop
async def test_a_web_page_without_a_feed_link_is_not_a_feed(site, workers):
    site.serve("/page", (FIXTURES / "page_without_alternate.html").read_bytes(), "text/html")
    with pytest.raises(NotAFeed) as caught:
        await load(site.url("/page"), workers, discover=True)
    assert str(caught.value) == "That address is a web page, not a feed, and it links to no feed."
    with pytest.raises(NotAFeed) as caught:
        await load(site.url("/page"), workers)
    assert str(caught.value) == "That address is a web page, not a feed."


@in_module_loop
async def test_discovery_goes_one_level_only(site, workers):
    page = b'<html><head><link rel="alternate" type="application/rss+xml" href="/again"></head></html>'
    site.serve("/page", page, "text/html")
    site.serve("/again", page, "text/html")
    with pytest.raises(NotAFeed, match="That page links to a feed, but what its link leads to is not a feed"):
        await load(site.url("/page"), workers, discover=True)
    assert site.paths() == ["/page", "/again"]


@in_module_loop
async def test_a_json_feed_and_a_feed_without_a_content_type(site, workers):
    site.serve("/feed.json", JSON_FEED, "application/feed+json")
    loaded = await load(site.url("/feed.json"), workers)
    assert loaded.parsed is not None and loaded.parsed.title == "JSON Feed Example"
    site.serve("/unlabelled", ATOM, None)  # aiohttp then sends application/octet-stream
    loaded = await load(site.url("/unlabelled"), workers)
    assert loaded.parsed is not None and len(loaded.parsed.items) == 2
    assert loaded.fetched.content_type == "application/xml"  # sniffed


@in_module_loop
@pytest.mark.parametrize("served_as", ["application/x-rss+xml", "text/rss+xml", "application/x-atom+xml"])
async def test_the_unregistered_types_feeds_are_served_as_are_read(site, workers, served_as):
    site.serve("/typed.xml", RSS, served_as)
    loaded = await load(site.url("/typed.xml"), workers)
    assert loaded.parsed is not None and loaded.parsed.items


@in_module_loop
async def test_an_image_is_not_a_feed_labelled_or_not(site, workers):
    site.serve("/logo.png", PNG, "image/png")
    with pytest.raises(NotAFeed) as caught:
        await load(site.url("/logo.png"), NoParsing())
    assert str(caught.value) == "That address is an image, not a feed."
    site.serve("/logo", PNG, "application/octet-stream")
    with pytest.raises(NotAFeed) as caught:
        await load(site.url("/logo"), NoParsing())
    assert "does not look like RSS, Atom, JSON Feed or a web page" in str(caught.value)


@in_module_loop
async def test_a_feed_over_5_mb_is_refused_whatever_it_declares(site, workers):
    site.serve("/big", b"<rss>" + b" " * 5_000_001, "application/rss+xml")
    with pytest.raises(FeedError, match="larger than 5 MB"):
        await load(site.url("/big"), NoParsing())

    async def undeclared(request: web.Request) -> web.StreamResponse:
        response = web.StreamResponse(headers={"Content-Type": "application/rss+xml"})
        response.enable_chunked_encoding()
        await response.prepare(request)
        for _ in range(100):
            await response.write(b" " * 64_000)
        return response

    site.routes["/chunked"] = undeclared
    with pytest.raises(FeedError, match="larger than 5 MB"):
        await load(site.url("/chunked"), NoParsing())


@in_module_loop
async def test_a_slow_server_times_out(site, workers):
    release = asyncio.Event()

    async def slow(request: web.Request) -> web.Response:
        await release.wait()
        return web.Response(body=RSS, headers={"Content-Type": "application/rss+xml"})

    site.routes["/slow"] = slow
    try:
        with pytest.raises(FeedError, match=r"Fetching the feed timed out: .*0\.3 s"):
            await load(site.url("/slow"), NoParsing(), timeout=0.3)
    finally:
        release.set()


@in_module_loop
async def test_a_private_address_is_refused_without_allow_private(site, workers):
    site.serve("/feed", RSS, "application/rss+xml")
    with pytest.raises(FeedError, match="loopback address") as caught:
        await load(site.url("/feed"), NoParsing(), allow_private=False)
    assert not isinstance(caught.value, NotAFeed)
    assert site.requests == []
    with pytest.raises(FeedError, match="only fetch http:// and https://"):
        await load("file:///etc/passwd", NoParsing(), allow_private=True)


@in_module_loop
async def test_a_feeds_external_dtd_and_entities_are_never_fetched(site, workers):
    head = (
        f'<!DOCTYPE rss SYSTEM "{site.url("/evil.dtd")}" '
        f'[<!ENTITY x SYSTEM "{site.url("/entity")}"><!ENTITY % p SYSTEM "{site.url("/pe")}"> %p;]>'
    )
    body = RSS.replace(b'<?xml version="1.0" encoding="UTF-8"?>', b'<?xml version="1.0"?>' + head.encode())
    site.serve("/feed", body.replace(b"<title>The Kubernetes Blog", b"<title>&x; The Kubernetes Blog"), "text/xml")
    loaded = await load(site.url("/feed"), workers)
    assert loaded.parsed is not None and len(loaded.parsed.items) == 3
    assert site.paths() == ["/feed"]


# --------------------------------------------------------------------------- per-host limit


@in_module_loop
async def test_no_host_gets_a_third_request_at_once(site, workers):
    in_flight, most = 0, 0

    async def feed(request: web.Request) -> web.Response:
        nonlocal in_flight, most
        in_flight += 1
        most = max(most, in_flight)
        await asyncio.sleep(0.05)
        in_flight -= 1
        return web.Response(status=304)

    site.routes["/feed"] = feed
    hosts = HostLimiter(per_host=2)
    results = await asyncio.gather(*(load(site.url("/feed"), NoParsing(), hosts=hosts, etag="x") for _ in range(6)))
    assert all(r.parsed is None for r in results)
    assert most == 2 and hosts.peak == 2
    assert hosts.in_flight("127.0.0.1") == 0 and hosts._hosts == {}  # nothing kept once idle


@in_module_loop
async def test_waiting_for_the_hosts_turn_does_not_count_as_the_sites_slowness(site, workers):
    site.serve("/feed", b"", None, status=304)
    hosts = HostLimiter(per_host=2)
    holding = asyncio.Event()
    done = asyncio.Event()

    async def hold() -> None:
        async with hosts.slot("127.0.0.1"), hosts.slot("127.0.0.1"):
            holding.set()
            await asyncio.sleep(0.5)
        done.set()

    holder = asyncio.create_task(hold())
    await holding.wait()
    loaded = await load(site.url("/feed"), NoParsing(), hosts=hosts, etag="x", timeout=0.3)
    assert done.is_set() and loaded.parsed is None
    await holder


@in_module_loop
async def test_host_turns_are_per_lower_cased_host():
    hosts = HostLimiter(per_host=2)
    entered: list[str] = []
    gate = asyncio.Event()

    async def use(host: str) -> None:
        async with hosts.slot(host):
            entered.append(host)
            await gate.wait()

    tasks = [asyncio.create_task(use(h)) for h in ("Feeds.Example", "feeds.example.", "FEEDS.example", "other.example")]
    await asyncio.sleep(0.01)
    assert sorted(entered) == ["Feeds.Example", "feeds.example.", "other.example"]  # the third waits
    assert hosts.in_flight("feeds.example") == 2
    gate.set()
    await asyncio.gather(*tasks)
    assert len(entered) == 4 and hosts.in_flight("feeds.example") == 0
