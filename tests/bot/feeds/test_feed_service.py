"""The feed domain without Discord, on both backends: following, checking, posting exactly once.

Feeds are served by an in-memory web (`Web`): deterministic listings, ETags, failures; time is
an injected clock, so nothing sleeps.
"""

from __future__ import annotations

import asyncio
import hashlib
import logging
import random
import time
from dataclasses import dataclass, field, replace

import pytest

from bot.feeds.models import FeedError, FeedItem, FeedState, FetchedFeed, NotAFeed, ParsedFeed
from bot.feeds.repository import FeedRepository
from bot.feeds.service import (
    CHECK_LEASE,
    HOST_CONCURRENCY,
    MAX_POST_ATTEMPTS,
    POST_LEASE,
    AmbiguousFeed,
    DuplicateFeed,
    FeedNotFound,
    FeedService,
    PendingPost,
    TooManyFeeds,
)

NOW = 1_700_000_000.0
GUILD, OTHER_GUILD = 4 << 22, 5 << 22  # shards 0 and 1 of 2
CHANNEL, OTHER_CHANNEL = 9_000_000_000_000_001, 9_000_000_000_000_002
MOD = 7_000_000_000_000_001
INTERVAL = 600.0
FEED = "https://news.example/feed.xml"
PAGE = "https://news.example/"


class Clock:
    def __init__(self) -> None:
        self.now = NOW

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds


def item(n: int, **changes: str | None) -> FeedItem:
    base = FeedItem(f"guid-{n}", f"Item {n}", f"https://news.example/{n}", f"About {n}.", f"2024-01-{n % 28 + 1:02d}")
    return replace(base, **changes)


def items(newest: int, oldest: int = 1) -> list[FeedItem]:
    """Items newest first, as feeds list them."""
    return [item(n) for n in range(newest, oldest - 1, -1)]


@dataclass
class Site:
    listing: list[FeedItem]
    title: str = "News"
    etag: str | None = None
    error: FeedError | None = None
    version: int = 0

    def publish(self, *new: FeedItem) -> None:
        self.listing = [*new, *self.listing]
        self.version += 1
        if self.etag is not None:
            self.etag = f'"v{self.version}"'


@dataclass(frozen=True)
class Loaded:
    fetched: FetchedFeed
    parsed: ParsedFeed | None
    feed_url: str
    body_hash: str | None = None


@dataclass
class Web:
    """The loader the service is given: feeds in memory, every request recorded."""

    sites: dict[str, Site] = field(default_factory=dict)
    pages: dict[str, str] = field(default_factory=dict)  # page -> the feed it links to
    requests: list[tuple[str, str | None, bool]] = field(default_factory=list)
    yields: int = 0  # awaits inside a load: lets concurrent checks interleave
    parses: int = 0  # bodies parsed (not a 304, not the body whose hash the check gave)

    def serve(self, url: str, listing: list[FeedItem], **kwargs: object) -> Site:
        self.sites[url] = Site(listing, **kwargs)  # type: ignore[arg-type]
        return self.sites[url]

    async def __call__(
        self, url: str, *, etag: str | None, last_modified: str | None, discover: bool, body_hash: str | None = None
    ) -> Loaded:
        self.requests.append((url, etag, discover))
        for _ in range(self.yields):
            await asyncio.sleep(0)
        if discover and url in self.pages:
            url = self.pages[url]
        site = self.sites.get(url)
        if site is None:
            raise NotAFeed("That page is not a feed and links to none.")
        if site.error is not None:
            raise site.error
        if etag is not None and etag == site.etag:
            return Loaded(FetchedFeed(url, True, b"", "", None, site.etag, None), None, url)
        body = repr((site.title, site.listing)).encode()
        digest = hashlib.sha256(body).hexdigest()
        fetched = FetchedFeed(url, False, body, "application/rss+xml", "utf-8", site.etag, None)
        if body_hash == digest and not discover:  # as load_feed: the same body is not parsed again
            return Loaded(fetched, None, url, digest)
        self.parses += 1
        parsed = ParsedFeed(site.title, "https://news.example/", tuple(site.listing))
        return Loaded(fetched, parsed, url, digest)


@pytest.fixture
async def db(open_db):
    return await open_db()


@pytest.fixture
def clock():
    return Clock()


@pytest.fixture
def web():
    return Web()


def make_service(db, clock, web, **kwargs) -> FeedService:
    options = {"interval": INTERVAL, "max_posts": 5, "jitter": 0.0, **kwargs}
    return FeedService(FeedRepository(db), clock, web, **options)


@pytest.fixture
def service(db, clock, web):
    return make_service(db, clock, web)


async def add(service: FeedService, url: str = FEED, *, channel: int = CHANNEL, guild: int = GUILD):
    return await service.add(guild_id=guild, channel_id=channel, url=url, added_by=MOD)


async def post_all(service: FeedService, owner: str = "a/1", **kwargs) -> list[PendingPost]:
    """Claim and post what is claimable now, as the cog does; the posts made."""
    posts = await service.claim_posts(owner=owner, **kwargs)
    done = []
    for post in posts:
        if await service.start_post(post, owner=owner, marker=f"marker {post.item.key}"):
            await service.finish_post(post, message_id=10**17 + post.id)
            done.append(post)
    return done


async def next_check(service: FeedService, clock: Clock, owner: str = "a/1", **kwargs):
    """Move the clock to the next deadline and check what is due."""
    deadline = await service.next_deadline()
    assert deadline is not None
    clock.now = max(clock.now, deadline)
    return await service.check_due(owner=owner, **kwargs)


def keys(posts: list[PendingPost]) -> list[str]:
    return [p.item.key for p in posts]


async def states(service: FeedService, feed_id: int) -> dict[str, str]:
    return {i.item.key: i.state for i in await service.repo.items(feed_id)}


# ------------------------------------------------------------------ adding


async def test_adding_records_every_current_item_as_seen_and_posts_nothing_old(service, web, clock):
    web.serve(FEED, items(20), etag='"v0"')
    feed, newest = await add(service)
    assert (feed.number, feed.url, feed.page_url, feed.title, feed.etag) == (1, FEED, None, "News", '"v0"')
    assert newest == item(20)
    assert web.requests == [(FEED, None, True)]  # discovery allowed, nothing conditional
    assert set((await states(service, feed.id)).values()) == {"seen"}
    assert len(await states(service, feed.id)) == 20
    assert feed.next_check_at == NOW + INTERVAL and feed.state is FeedState.OK
    assert await service.claim_posts(owner="a/1") == []
    report = await next_check(service, clock)
    assert (report.checked, report.not_modified, report.new_items) == (1, 1, 0)  # the ETag still holds
    assert await post_all(service) == []


async def test_adding_an_empty_feed_has_no_newest_item(service, web):
    web.serve(FEED, [])
    feed, newest = await add(service)
    assert newest is None and await service.repo.items(feed.id) == []


async def test_a_page_is_followed_by_the_feed_it_links_to(service, web):
    web.serve(FEED, items(3))
    web.pages[PAGE] = FEED
    feed, _ = await add(service, "HTTPS://News.Example:443/#top")  # the same page, written otherwise
    assert (feed.url, feed.page_url) == (FEED, PAGE)
    assert await service.find(GUILD, PAGE) == feed
    assert await service.find(GUILD, FEED) == feed
    # The feed itself, or another page leading to it: the same feed, refused and named.
    web.pages["https://news.example/about"] = FEED
    for again in (FEED, "https://news.example/about"):
        with pytest.raises(DuplicateFeed, match="it is feed #1"):
            await add(service, again)
    requests = len(web.requests)
    with pytest.raises(DuplicateFeed):  # the page given before: refused without a request
        await add(service, PAGE)
    assert len(web.requests) == requests


async def test_the_same_feed_is_refused_in_one_channel_and_followed_in_another(service, web):
    web.serve(FEED, items(2))
    first, _ = await add(service)
    with pytest.raises(DuplicateFeed) as refused:
        await add(service)
    assert refused.value.feed == first and "#1" in str(refused.value)
    second, _ = await add(service, channel=OTHER_CHANNEL)
    assert second.number == 2
    other, _ = await add(service, guild=OTHER_GUILD, channel=OTHER_CHANNEL + 1)
    assert other.number == 1  # numbers count per server


async def test_two_moderators_adding_the_same_feed_at_once_follow_it_once(service, web):
    web.serve(FEED, items(5))
    web.yields = 3
    results = await asyncio.gather(add(service), add(service), add(service), return_exceptions=True)
    added = [r for r in results if not isinstance(r, BaseException)]
    assert len(added) == 1 and all(isinstance(r, DuplicateFeed) for r in results if r not in added)
    assert len(await service.list(GUILD)) == 1


async def test_a_server_follows_at_most_max_feeds(db, clock, web):
    service = make_service(db, clock, web, max_feeds=3)
    for n in range(4):
        web.serve(f"https://site{n}.example/feed", items(1))
    for n in range(3):
        await add(service, f"https://site{n}.example/feed")
    requests = len(web.requests)
    with pytest.raises(TooManyFeeds, match="already follows 3 feeds"):
        await add(service, "https://site3.example/feed")
    assert len(web.requests) == requests  # refused before fetching
    await add(service, "https://site3.example/feed", guild=OTHER_GUILD)  # another server's own count


async def test_what_is_not_a_feed_is_refused_and_nothing_is_stored(service, web):
    with pytest.raises(NotAFeed):
        await add(service, "https://nothing.example/")
    with pytest.raises(FeedError, match="2048"):
        await add(service, "https://long.example/" + "a" * 3000)
    with pytest.raises(FeedError, match="address"):
        await add(service, " \u200b ")
    assert await service.list(GUILD) == []


# ------------------------------------------------------------------ new items


async def test_new_items_are_pending_and_posted_oldest_first_once(service, web, clock):
    site = web.serve(FEED, items(3))
    feed, _ = await add(service)
    site.publish(*items(6, 4))
    report = await next_check(service, clock)
    assert (report.checked, report.new_items, report.feed_ids) == (1, 3, [feed.id])
    assert [s for k, s in (await states(service, feed.id)).items() if k in {"guid-4", "guid-5", "guid-6"}] == [
        "pending"] * 3
    posted = await post_all(service)
    assert keys(posted) == ["guid-4", "guid-5", "guid-6"]
    assert posted[0].item == item(4) and posted[0].attempts == 1 and posted[0].post_started_at is None
    assert await post_all(service) == []
    report = await next_check(service, clock)  # the same listing again: nothing new
    assert report.new_items == 0 and await post_all(service) == []
    stored = {i.item.key: i for i in await service.repo.items(feed.id)}
    assert stored["guid-6"].state == "posted" and stored["guid-6"].message_id == 10**17 + posted[2].id
    assert stored["guid-6"].item.summary is None  # dropped once done
    assert (await service.repo.get(feed.id)).last_new_at is not None


async def test_at_most_max_posts_per_feed_per_check_the_rest_the_next_times(service, web, clock):
    site = web.serve(FEED, items(1))
    feed, _ = await add(service)
    site.publish(*items(13, 2))  # 12 new
    assert (await next_check(service, clock)).new_items == 12
    assert keys(await post_all(service)) == [f"guid-{n}" for n in range(2, 7)]
    assert await post_all(service) == []  # however often the poster asks: the rest wait
    deadline = await service.next_deadline()
    assert deadline == feed.next_check_at + INTERVAL  # the next check, not the waiting items
    await next_check(service, clock)
    assert keys(await post_all(service)) == [f"guid-{n}" for n in range(7, 12)]
    await next_check(service, clock)
    assert keys(await post_all(service)) == ["guid-12", "guid-13"]
    assert set((await states(service, feed.id)).values()) == {"seen", "posted"}


async def test_items_released_but_not_yet_claimed_count_toward_the_next_checks_share(service, web, clock):
    site = web.serve(FEED, items(1))
    await add(service)
    site.publish(*items(13, 2))
    await next_check(service, clock)
    await next_check(service, clock)  # the poster never came: still only 5 may go
    assert len(await post_all(service)) == 5


async def test_a_feed_without_guids_is_told_apart_by_link_or_by_title_and_link(service, web, clock):
    # As a parser keys them: the link when there is one; no key at all (hashed here) otherwise.
    listing = [item(1, key="https://news.example/1"), item(2, key="", link=None), item(3, key="", link=None)]
    site = web.serve(FEED, listing)
    feed, _ = await add(service)
    assert len(await states(service, feed.id)) == 3  # the two keyless ones apart by title
    site.publish(item(4, key="", link=None), item(5, key="https://news.example/5"))
    await next_check(service, clock)
    assert [p.item.title for p in await post_all(service)] == ["Item 5", "Item 4"]
    await next_check(service, clock)  # the keyless item, listed again, is the same item
    assert await post_all(service) == []


async def test_a_feed_that_re_dates_its_items_posts_nothing_again(service, web, clock):
    site = web.serve(FEED, items(5))
    await add(service)
    site.publish(item(6))
    await next_check(service, clock)
    assert keys(await post_all(service)) == ["guid-6"]
    # Every date rewritten (and titles touched up), the ETag changed: the same items.
    site.listing = [replace(i, published="2030-01-01T00:00:00Z", title=(i.title or "") + " (updated)")
                    for i in site.listing]
    site.publish()
    report = await next_check(service, clock)
    assert report.new_items == 0 and await post_all(service) == []


async def test_a_feed_that_reorders_its_items_posts_only_what_is_new(service, web, clock):
    site = web.serve(FEED, items(10))
    await add(service)
    shuffled = items(10)
    random.Random(3).shuffle(shuffled)
    site.listing = shuffled
    assert (await next_check(service, clock)).new_items == 0
    site.listing = [*shuffled[:4], item(11), *shuffled[4:7]]  # a new one in the middle, old ones dropped
    assert (await next_check(service, clock)).new_items == 1
    assert keys(await post_all(service)) == ["guid-11"]
    site.listing = items(10)  # the dropped ones come back: seen before, not new
    assert (await next_check(service, clock)).new_items == 0


async def test_500_items_at_once_are_posted_oldest_first_each_once(db, clock, web):
    service = make_service(db, clock, web, max_posts=50)
    site = web.serve(FEED, items(500))
    started = time.perf_counter()
    feed, newest = await add(service)
    added = time.perf_counter() - started
    assert newest == item(500) and len(await states(service, feed.id)) == 500
    site.listing = items(1000, 501) + site.listing[:250]  # 500 new on top, the feed capped at 750
    started = time.perf_counter()
    assert (await next_check(service, clock)).new_items == 500
    checked = time.perf_counter() - started
    posted: list[str] = []
    for _ in range(10):
        posted += keys(await post_all(service))
        await next_check(service, clock)
    assert posted == [f"guid-{n}" for n in range(501, 1001)]
    print(f"\nadd of a 500-item feed {added * 1000:.0f} ms; recording 500 new items {checked * 1000:.0f} ms")


async def test_hostile_items_are_stored_within_bounds_and_recognised_again(service, web, clock):
    huge_key = "k" * 100_000
    hostile = [
        FeedItem(huge_key, "T\x00itle", "https://news.example/" + "x" * 5000, "s" * 1_000_000, "x" * 500),
        FeedItem("nul\x00key", "\ud800 lone surrogate", None, "\udfff", None),
        FeedItem("dup", "first", None, None, None),
        FeedItem("dup", "second listing of one key", None, None, None),
    ]
    site = web.serve(FEED, [item(1)])
    await add(service)
    site.publish(*hostile)
    assert (await next_check(service, clock)).new_items == 3  # "dup" once
    posts = await post_all(service)
    by_title = {p.item.title: p.item for p in posts}
    assert set(by_title) == {"first", "? lone surrogate", "Title"}
    big = by_title["Title"]
    assert big.key.startswith("sha256:") and len(big.key) == 71
    assert big.link is None and len(big.summary or "") == 4000 and len(big.published or "") == 64
    assert by_title["? lone surrogate"].summary == "?"
    site.publish()
    assert (await next_check(service, clock)).new_items == 0  # the same keys, hashed the same


# ------------------------------------------------------------------ conditional requests, failures


async def test_a_304_keeps_the_etag_and_parses_nothing(service, web, clock):
    site = web.serve(FEED, items(3), etag='"abc"')
    feed, _ = await add(service)
    report = await next_check(service, clock)
    assert (report.checked, report.not_modified, report.requests) == (1, 1, 1)
    assert web.requests[-1] == (FEED, '"abc"', False)
    stored = await service.repo.get(feed.id)
    assert stored.etag == '"abc"' and stored.last_check_at == clock.now
    assert stored.next_check_at == clock.now + INTERVAL
    site.publish(item(4))  # a new ETag with the new item
    report = await next_check(service, clock)
    assert (report.not_modified, report.new_items) == (0, 1)
    assert (await service.repo.get(feed.id)).etag == '"v1"'


async def test_next_checks_are_spread_by_jitter(db, clock, web):
    service = make_service(db, clock, web, jitter=0.1, rng=random.Random(1))
    for n in range(20):
        web.serve(f"https://site{n}.example/feed", [])
        await add(service, f"https://site{n}.example/feed")
    due = [f.next_check_at - NOW for f in await service.list(GUILD)]
    assert all(0.9 * INTERVAL <= d <= 1.1 * INTERVAL for d in due) and len(set(due)) == 20


async def test_a_429_is_honoured_in_the_next_check_time(service, web, clock):
    site = web.serve(FEED, items(2))
    feed, _ = await add(service)
    site.error = FeedError("The server asks Quorum to slow down (429).", retry_after=7200)
    report = await next_check(service, clock)
    assert (report.checked, report.failed) == (1, 1)
    stored = await service.repo.get(feed.id)
    assert stored.next_check_at == clock.now + 7200  # longer than the backoff (2 × 600 s)
    assert stored.state is FeedState.FAILING and stored.last_error == "The server asks Quorum to slow down (429)."
    site.error = FeedError("Slow down.", retry_after=10)  # shorter than the backoff: the backoff
    await next_check(service, clock)
    assert (await service.repo.get(feed.id)).next_check_at == clock.now + INTERVAL * 4
    site.error = None
    await next_check(service, clock)
    stored = await service.repo.get(feed.id)
    assert stored.state is FeedState.OK and stored.failing_since is None and stored.last_error is None


async def test_the_same_body_from_a_server_without_validators_is_not_parsed_again(service, web, clock):
    site = web.serve(FEED, items(3))  # no ETag, no Last-Modified: every answer is a 200
    feed, _ = await add(service)
    assert web.parses == 1 and (await service.repo.get(feed.id)).body_hash is not None
    report = await next_check(service, clock)
    assert (report.not_modified, report.unchanged, web.parses) == (1, 1, 1)  # fetched, not parsed
    site.publish(item(4))
    report = await next_check(service, clock)
    assert (report.new_items, web.parses) == (1, 2)
    assert keys(await post_all(service)) == ["guid-4"]
    report = await next_check(service, clock)  # the new body, unchanged since
    assert (report.unchanged, report.new_items, web.parses) == (1, 0, 2)


async def test_a_429_pauses_every_feed_of_that_host_not_only_the_one_answered(service, web, clock):
    urls = [f"https://news.example/feed{n}.xml" for n in range(4)]
    for url in urls:
        web.serve(url, items(2))
    web.serve("https://elsewhere.example/feed.xml", items(2))
    feeds = [(await add(service, url))[0] for url in urls]
    await add(service, "https://elsewhere.example/feed.xml")
    for url in urls:
        web.sites[url].error = FeedError("The server asks Quorum to slow down (429).", retry_after=3600)
    web.requests.clear()
    web.yields = 3  # loads in flight at once: two per host (HOST_CONCURRENCY)
    report = await next_check(service, clock)
    asked = [url for url, _, _ in web.requests]
    assert asked.count("https://elsewhere.example/feed.xml") == 1
    # The two sent before the host answered, and no more: the others wait its pause out.
    assert len([u for u in asked if u.startswith("https://news.example/")]) == HOST_CONCURRENCY == 2
    assert (report.failed, report.host_paused) == (2, 2)
    stored = [await service.repo.get(f.id) for f in feeds]
    assert all(f.next_check_at == clock.now + 3600 for f in stored)
    waiting = [f for f in stored if f.failures == 0]
    assert len(waiting) == 2 and all(f.state is FeedState.OK for f in waiting)  # not failures of theirs
    for url in urls:
        web.sites[url].error = None
    web.requests.clear()
    await next_check(service, clock)  # elsewhere's next check, 600 s on: the host's feeds still wait
    assert [url for url, _, _ in web.requests] == ["https://elsewhere.example/feed.xml"]
    clock.advance(3600)
    web.requests.clear()
    report = await service.check_due(owner="a/1")
    assert sorted(u for u, _, _ in web.requests if u.startswith("https://news.example/")) == urls
    assert report.host_paused == 0


async def test_a_huge_retry_after_is_capped_at_a_day(service, web, clock):
    site = web.serve(FEED, [])
    feed, _ = await add(service)
    site.error = FeedError("busy", retry_after=10**12)
    await next_check(service, clock)
    assert (await service.repo.get(feed.id)).next_check_at == clock.now + 86_400


async def test_a_failing_feed_backs_off_then_is_paused_after_a_day_with_one_notice(service, web, clock):
    site = web.serve(FEED, items(2))
    feed, _ = await add(service)
    site.error = FeedError("The server answered 500.")
    delays, paused = [], []
    for _ in range(20):
        report = await next_check(service, clock)
        assert report.checked == 1
        paused += report.paused_for_failing
        stored = await service.repo.get(feed.id)
        if stored.paused_at is not None:
            break
        delays.append(stored.next_check_at - clock.now)
    assert delays == [1200, 2400, 4800, 9600, 19200, 21600, 21600, 21600]  # doubling, then 6 h
    [notice] = paused
    assert notice.paused_by is None and notice.failures == 9 and notice.state is FeedState.PAUSED
    assert notice.paused_reason.startswith("9 checks in a row failed over") and "500" in notice.paused_reason
    assert clock.now - notice.failing_since >= 86_400
    assert [await service.claim_notice(feed.id) for _ in range(3)] == [True, False, False]
    assert await service.unnoticed() == []
    assert await service.next_deadline() is None  # paused: never checked again
    clock.advance(10 * 86_400)
    assert (await service.check_due(owner="a/1")).claimed == 0
    # Resumed: checked now, failures forgotten; a new pause would get its own notice.
    site.error = None
    resumed = await service.resume(notice)
    assert resumed.state is FeedState.OK and resumed.next_check_at == clock.now and resumed.notice_sent_at is None
    assert (await service.check_due(owner="a/1")).checked == 1
    assert not await service.claim_notice(feed.id)


async def test_a_pause_whose_notice_was_never_claimed_is_found_again(service, web, clock):
    site = web.serve(FEED, [])
    feed, _ = await add(service)
    site.error = FeedError("gone")
    while (await service.repo.get(feed.id)).paused_at is None:
        await next_check(service, clock)  # each report dropped, as by a process that stopped
    [waiting] = await service.unnoticed()
    assert waiting.id == feed.id and await service.unnoticed(shards=(2, (1,))) == []
    assert await service.claim_notice(feed.id) and await service.unnoticed() == []


async def test_an_unexpected_error_in_the_loader_is_a_failed_check_not_a_crash(db, clock, web):
    async def broken(url, *, etag, last_modified, discover, body_hash=None):
        if discover:
            return await web(url, etag=etag, last_modified=last_modified, discover=discover, body_hash=body_hash)
        raise RuntimeError("a bug")

    web.serve(FEED, [])
    service = make_service(db, clock, broken)
    feed, _ = await add(service)
    report = await next_check(service, clock)
    assert report.failed == 1 and "error of its own" in (await service.repo.get(feed.id)).last_error


async def test_loads_run_at_most_concurrency_at_once(db, clock, web):
    running, most = 0, 0

    async def counted(url, *, etag, last_modified, discover, body_hash=None):
        nonlocal running, most
        running += 1
        most = max(most, running)
        for _ in range(5):
            await asyncio.sleep(0)
        running -= 1
        return await web(url, etag=etag, last_modified=last_modified, discover=discover, body_hash=body_hash)

    service = make_service(db, clock, counted, concurrency=4)
    for n in range(12):
        web.serve(f"https://site{n}.example/feed", [])
        await add(service, f"https://site{n}.example/feed")
    most = 0
    report = await next_check(service, clock)
    assert (report.checked, report.requests, most) == (12, 12, 4)


# ------------------------------------------------------------------ restarts and crashes


async def test_a_restart_between_two_checks_neither_duplicates_nor_loses(open_db, clock, web):
    site = web.serve(FEED, items(3))
    first = await open_db()
    service = make_service(first, clock, web, max_posts=2)
    feed, _ = await add(service)
    site.publish(*items(6, 4))
    await next_check(service, clock, owner="bot/1")
    assert keys(await post_all(service, "bot/1")) == ["guid-4", "guid-5"]  # guid-6 waits its turn
    await first.close()

    site.publish(*items(8, 7))
    service = make_service(await open_db(), clock, web, max_posts=2)
    assert await service.reclaim_own(instance="bot", owner="bot/2") == 0
    report = await next_check(service, clock, owner="bot/2")
    assert report.new_items == 2  # 7 and 8; 4–6 were recorded before the restart
    posted = keys(await post_all(service, "bot/2"))
    await next_check(service, clock, owner="bot/2")
    posted += keys(await post_all(service, "bot/2"))
    assert posted == ["guid-6", "guid-7", "guid-8"]
    assert list((await states(service, feed.id)).values()).count("posted") == 5


async def test_a_crash_between_start_and_finish_is_retried_with_what_was_sent(open_db, clock, web):
    site = web.serve(FEED, [])
    first = await open_db()
    service = make_service(first, clock, web)
    await add(service)
    site.publish(item(1))
    await next_check(service, clock, owner="bot/1")
    [post] = await service.claim_posts(owner="bot/1")
    assert post.nonce == f"quorum-feed-{post.id}" and len(post.nonce) <= 25
    assert await service.start_post(post, owner="bot/1", marker="https://news.example/1")
    started = clock.now
    await first.close()  # the process dies here: sent or not, nobody knows

    clock.advance(5)
    service = make_service(await open_db(), clock, web)
    assert await service.claim_posts(owner="bot/2") == []  # still leased to the dead copy
    assert await service.reclaim_own(instance="bot", owner="bot/2") == 1
    [retry] = await service.claim_posts(owner="bot/2")
    assert (retry.id, retry.attempts, retry.post_started_at, retry.post_marker) == (
        post.id, 2, started, "https://news.example/1")
    assert retry.nonce == post.nonce  # the same nonce: Discord returns the first message
    assert not await service.start_post(post, owner="bot/1", marker="x")  # the old claim is fenced out
    assert await service.start_post(retry, owner="bot/2", marker="https://news.example/1")
    await service.finish_post(retry, message_id=42)
    await service.finish_post(retry, message_id=43)  # once: the second changes nothing
    [stored] = await service.repo.items(retry.feed.id)
    assert (stored.state, stored.message_id, stored.post_started_at) == ("posted", 42, started)


async def test_a_lease_that_runs_out_lets_another_process_take_over(service, web, clock):
    site = web.serve(FEED, [])
    await add(service)
    site.publish(item(1))
    await next_check(service, clock)
    [stale] = await service.claim_posts(owner="a/1")
    clock.advance(POST_LEASE)
    [taken] = await service.claim_posts(owner="b/1")
    assert taken.attempts == 2 and taken.post_started_at is None
    assert not await service.start_post(stale, owner="a/1", marker="m")
    await service.release_post(stale, retry_at=clock.now)  # a stale release changes nothing
    assert await service.claim_posts(owner="c/1") == []
    assert await service.start_post(taken, owner="b/1", marker="m")


async def test_a_failing_post_is_retried_then_given_up(service, web, clock):
    site = web.serve(FEED, [])
    feed, _ = await add(service)
    site.publish(item(1))
    await next_check(service, clock)
    attempts = []
    for _ in range(10):
        posts = await service.claim_posts(owner="a/1")
        if not posts:
            break
        [post] = posts
        attempts.append(post.attempts)
        await service.release_post(post, retry_at=clock.now + 60, reason="Discord answered 500")
        assert await service.claim_posts(owner="a/1") == []
        clock.advance(60)
    assert attempts == list(range(1, MAX_POST_ATTEMPTS + 1))
    [stored] = await service.repo.items(feed.id)
    assert (stored.state, stored.outcome) == ("skipped", "skipped: Discord answered 500 (5 attempts)")


async def test_a_postponed_post_is_not_counted(service, web, clock):
    site = web.serve(FEED, [])
    await add(service)
    site.publish(item(1))
    await next_check(service, clock)
    for _ in range(MAX_POST_ATTEMPTS + 3):  # its server unavailable, again and again
        [post] = await service.claim_posts(owner="a/1")
        await service.postpone_post(post, retry_at=clock.now + 60)
        clock.advance(60)
    [post] = await service.claim_posts(owner="a/1")
    assert post.attempts == 1


async def test_a_post_whose_attempts_never_finish_is_given_up(service, web, clock):
    site = web.serve(FEED, [])
    feed, _ = await add(service)
    site.publish(item(1))
    await next_check(service, clock)
    for n in range(MAX_POST_ATTEMPTS):  # each claimer dies holding it
        assert len(await service.claim_posts(owner=f"p{n}/1")) == 1
        clock.advance(POST_LEASE)
    assert await service.claim_posts(owner="last/1") == []
    [stored] = await service.repo.items(feed.id)
    assert stored.state == "skipped" and "never finished" in stored.outcome


async def test_finish_post_outcomes(service, web, clock):
    site = web.serve(FEED, [])
    feed, _ = await add(service)
    site.publish(*items(3))
    await next_check(service, clock)
    posts = await service.claim_posts(owner="a/1")
    for post, outcome in zip(posts, ["posted", "skipped: no channel", "failed: Discord said no"], strict=True):
        await service.finish_post(post, message_id=None, outcome=outcome)
    assert [(i.state, i.outcome) for i in await service.repo.items(feed.id)] == [
        ("posted", "posted"), ("skipped", "skipped: no channel"), ("skipped", "failed: Discord said no")]


# ------------------------------------------------------------------ pausing, removing


async def test_a_paused_feed_is_not_checked_nor_posted_until_resumed(service, web, clock):
    site = web.serve(FEED, [])
    feed, _ = await add(service)
    site.publish(*items(2))
    await next_check(service, clock)
    paused = await service.pause(feed, by=MOD)
    assert (paused.paused_by, paused.state) == (MOD, FeedState.PAUSED)
    assert (await service.pause(paused, by=MOD + 1)).paused_by == MOD  # already paused: unchanged
    assert not await service.claim_notice(feed.id)  # a moderator's pause has no notice
    assert await service.claim_posts(owner="a/1") == []
    assert await service.next_deadline() is None
    clock.advance(7 * 86_400)
    assert (await service.check_due(owner="a/1")).claimed == 0
    site.publish(item(3))
    resumed = await service.resume(paused)
    assert resumed.paused_at is None and resumed.next_check_at == clock.now
    assert keys(await post_all(service)) == ["guid-1", "guid-2"]  # found before the pause
    assert (await service.check_due(owner="a/1")).new_items == 1
    assert keys(await post_all(service)) == ["guid-3"]


async def test_a_post_claimed_before_a_pause_is_not_sent(service, web, clock, caplog):
    site = web.serve(FEED, [])
    feed, _ = await add(service)
    site.publish(item(1))
    await next_check(service, clock)
    [post] = await service.claim_posts(owner="a/1")
    with caplog.at_level(logging.WARNING, logger="bot.feeds.service"):
        await service.pause_for(feed.id, "the channel no longer exists")
        await service.pause_for(feed.id, "the channel no longer exists")  # paused already: logged once
    assert [r.getMessage() for r in caplog.records] == [
        f"feed {feed.id} (#1) of guild {GUILD} paused: the channel no longer exists"]
    assert not await service.start_post(post, owner="a/1", marker="m")
    stored = await service.repo.get(feed.id)
    assert stored.paused_by is None and stored.paused_reason == "the channel no longer exists"
    assert not await service.claim_notice(feed.id)  # nowhere to send one: it is logged instead
    assert await service.pause_for(10**9, "gone") is None


async def test_a_resume_drops_the_check_in_flight(service, web, clock):
    site = web.serve(FEED, [])
    feed, _ = await add(service)
    gate, entered = asyncio.Event(), asyncio.Event()
    real = service.loader

    async def slow(url, **kwargs):
        entered.set()
        await gate.wait()
        return await real(url, **kwargs)

    service.loader = slow
    clock.now = feed.next_check_at
    check = asyncio.create_task(service.check_due(owner="a/1"))
    await entered.wait()  # claimed, and loading
    site.publish(item(1))
    await service.resume(await service.pause(feed, by=MOD))
    gate.set()
    report = await check
    assert (report.claimed, report.checked, report.lost) == (1, 0, 1)
    assert (await service.check_due(owner="a/1")).new_items == 1  # asked again at once


async def test_removing_a_feed_removes_its_items(service, web, clock):
    site = web.serve(FEED, items(5))
    feed, _ = await add(service)
    site.publish(item(6))
    await next_check(service, clock)
    await service.remove(feed)
    assert await service.repo.items(feed.id) == [] and await service.list(GUILD) == []
    assert int(await service.repo.db.fetchval("SELECT count(*) FROM feed_items")) == 0
    with pytest.raises(FeedNotFound):
        await service.remove(feed)
    with pytest.raises(FeedNotFound):
        await service.pause(feed, by=MOD)
    with pytest.raises(FeedNotFound):
        await service.resume(feed)


async def test_items_claimed_before_a_removal_are_dropped(service, web, clock):
    site = web.serve(FEED, [])
    feed, _ = await add(service)
    site.publish(item(1))
    await next_check(service, clock)
    [post] = await service.claim_posts(owner="a/1")
    await service.remove(feed)
    assert not await service.start_post(post, owner="a/1", marker="m")
    await service.finish_post(post, message_id=1)  # nothing to record: no error either


# ------------------------------------------------------------------ finding


@pytest.fixture
async def three(service, web):
    for n, title in enumerate(["Tech 100% daily", "Cooking_club", "News"], start=1):
        web.serve(f"https://site{n}.example/feed", [], title=title)
        await add(service, f"https://site{n}.example/feed")
    return await service.list(GUILD)


async def test_find_by_number_or_address(service, three):
    first, second, _ = three
    for text in ("1", "#1", "  #1 ", "#\u200b1\u200e", "\ufeff1", "01"):
        assert await service.find(GUILD, text) == first, text
    assert await service.find(GUILD, "HTTPS://SITE2.example/feed#x") == second
    with pytest.raises(FeedNotFound, match="no feed #4"):
        await service.find(GUILD, "4")
    with pytest.raises(FeedNotFound):
        await service.find(OTHER_GUILD, "1")  # another server's numbers


@pytest.mark.parametrize("text", [
    "", " ", "#", "١", "1.0", "-1", "9" * 30, "#" + "9" * 5000, "%", "_", "https://site%.example/feed",
    "x" * 1_000_000, "\x00", "1\x00; DROP TABLE feeds", "https://" + "\u200b" * 100_000,
])
async def test_find_with_hostile_text_names_nothing(service, three, text):
    with pytest.raises(FeedNotFound) as refused:
        await service.find(GUILD, text)
    assert text.strip() not in str(refused.value) or not text.strip()  # the text is not echoed


async def test_what_the_worst_lookups_cost(service, three, db):
    worst = {  # what each finds by autocomplete: nothing, or (nothing left of the text) everything
        "1 MB of x": ("x" * 1_000_000, 0),
        "1 MB of zero-width spaces": ("\u200b" * 1_000_000, 3),
        "1 MB of % and _": ("%_" * 500_000, 0),
        "a 2,048-character address": ("https://site1.example/" + "a" * 2026, 0),
    }
    for name, (text, matches) in worst.items():
        started = time.perf_counter()
        with pytest.raises(FeedNotFound):
            await service.find(GUILD, text)
        found = time.perf_counter() - started
        started = time.perf_counter()
        assert len(await service.search(GUILD, text)) == matches
        searched = time.perf_counter() - started
        print(f"\n{db.dialect}: {name}: find {found * 1000:.1f} ms, search {searched * 1000:.1f} ms")


async def test_an_address_followed_in_two_channels_must_be_named_by_number(service, web, three):
    await add(service, "https://site1.example/feed", channel=OTHER_CHANNEL)
    with pytest.raises(AmbiguousFeed, match="#1 and #4"):
        await service.find(GUILD, "https://site1.example/feed")


async def test_search_by_number_title_or_address_takes_wildcards_literally(service, three):
    async def numbers(text: str) -> list[int]:
        return [f.number for f in await service.search(GUILD, text)]

    assert await numbers("") == [1, 2, 3]
    assert await numbers("1") == [1]  # its number, its address, its title: one feed
    assert await numbers("site") == [1, 2, 3]
    assert await numbers("#2") == [2]
    assert await numbers("tech") == [1] and await numbers("TECH") == [1]
    assert await numbers("%") == [1]  # only a title with a real percent sign
    assert await numbers("_") == [2]
    assert await numbers("site3") == [3]
    assert await numbers("\\") == []
    assert await numbers("\u200bnews\u200b") == [3]
    assert await numbers("x" * 1_000_000) == []
    assert await numbers("\x00") == [1, 2, 3]  # nothing left of it: like an empty text
    assert [f.number for f in await service.search(GUILD, "", limit=2)] == [1, 2]
    assert await service.search(OTHER_GUILD, "") == []


# ------------------------------------------------------------------ shards, deadlines


async def test_checks_and_posts_keep_to_this_processs_shards(service, web, clock):
    site = web.serve(FEED, [])
    ours, _ = await add(service)
    theirs, _ = await add(service, guild=OTHER_GUILD, channel=OTHER_CHANNEL)
    site.publish(item(1))
    clock.now = ours.next_check_at
    report = await service.check_due(owner="a/1", shards=(2, (0,)))
    assert report.feed_ids == [ours.id]
    [post] = await service.claim_posts(owner="a/1", shards=(2, (0,)))
    assert post.feed.id == ours.id
    await service.finish_post(post, message_id=1)
    assert (await service.check_due(owner="b/1", shards=(2, (1,)))).feed_ids == [theirs.id]
    # Their item may be claimed now; that is no deadline of ours.
    assert await service.next_deadline(shards=(2, (1,))) == clock.now
    assert await service.next_deadline(shards=(2, (0,))) == clock.now + INTERVAL
    assert [p.feed.id for p in await service.claim_posts(owner="b/1", shards=(2, (1,)))] == [theirs.id]


async def test_claim_posts_of_given_feeds_only(service, web, clock):
    for n in range(3):
        site = web.serve(f"https://site{n}.example/feed", [])
        await add(service, f"https://site{n}.example/feed")
        site.publish(item(n))
    await next_check(service, clock)
    feeds = await service.list(GUILD)
    posts = await service.claim_posts(owner="a/1", feed_ids=[feeds[2].id, feeds[0].id, 10**9])
    assert sorted(p.feed.id for p in posts) == [feeds[0].id, feeds[2].id]
    assert await service.claim_posts(owner="a/1", feed_ids=[]) == []
    assert [p.feed.id for p in await service.claim_posts(owner="a/1", limit=5)] == [feeds[1].id]


async def test_next_deadline_is_the_next_check_or_post(service, web, clock):
    assert await service.next_deadline() is None
    site = web.serve(FEED, [])
    feed, _ = await add(service)
    assert await service.next_deadline() == feed.next_check_at
    site.publish(item(1))
    await next_check(service, clock)
    assert await service.next_deadline() == clock.now  # a post may be claimed now
    [post] = await service.claim_posts(owner="a/1")
    assert await service.next_deadline() == clock.now + POST_LEASE  # its lease ends (before the next check)
    await service.release_post(post, retry_at=clock.now + 30)
    assert await service.next_deadline() == clock.now + 30
    clock.now = feed.next_check_at + INTERVAL
    claimed = await service.check_due(owner="a/1", limit=0)
    assert claimed.claimed == 0


async def test_a_check_claimed_by_a_process_that_died_is_taken_over_after_its_lease(service, web, clock):
    gate, entered = asyncio.Event(), asyncio.Event()
    real = service.loader

    async def hung(url, **kwargs):
        entered.set()
        await gate.wait()
        return await real(url, **kwargs)

    site = web.serve(FEED, [])
    feed, _ = await add(service)
    site.publish(item(1))
    clock.now = feed.next_check_at
    other = make_service(service.repo.db, clock, hung)
    stuck = asyncio.create_task(other.check_due(owner="dead/1"))
    await entered.wait()  # claimed, and loading
    assert (await service.check_due(owner="a/1")).claimed == 0  # held
    assert await service.next_deadline() == clock.now + CHECK_LEASE
    clock.advance(CHECK_LEASE)
    assert (await service.check_due(owner="a/1")).new_items == 1
    gate.set()
    assert (await stuck).lost == 1  # its late result is not recorded
    assert len(await post_all(service)) == 1


# ------------------------------------------------------------------ two processes (PostgreSQL)


@pytest.mark.parametrize("backend", ["postgresql"], indirect=True)
async def test_two_processes_checking_and_posting_the_same_feeds_post_each_item_once(open_db, clock):
    web = Web(yields=2)
    dbs = [await open_db(), await open_db()]
    services = [make_service(db, clock, web, max_posts=3, jitter=0.1, rng=random.Random(n), concurrency=4)
                for n, db in enumerate(dbs)]
    sites = []
    for n in range(12):
        url = f"https://site{n}.example/feed"
        sites.append(web.serve(url, items(3), etag='"v0"' if n % 2 else None))
        await services[n % 2].add(guild_id=GUILD + (n % 3 << 22), channel_id=CHANNEL + n, url=url, added_by=MOD)
    posted: list[tuple[int, str, str]] = []
    expected: set[tuple[int, str]] = set()
    lost = 0

    async def post(service: FeedService, owner: str, posts: list[PendingPost]) -> None:
        for claimed in posts:
            if await service.start_post(claimed, owner=owner, marker=claimed.item.key):
                await asyncio.sleep(0)
                await service.finish_post(claimed, message_id=claimed.id)
                posted.append((claimed.feed.id, claimed.item.key, owner))

    async def run(service: FeedService, owner: str) -> None:
        nonlocal lost
        for _ in range(4):
            report = await service.check_due(owner=owner, limit=5)
            lost += report.lost
            await post(service, owner, await service.claim_posts(owner=owner, limit=7))

    async def stalled(owner: str) -> None:
        """Process a stalls in the middle of its checks, past their lease: b takes them over
        meanwhile; then a's results come in late."""
        nonlocal lost
        gate = asyncio.Event()
        fast = services[0].loader

        async def slow(url, **kwargs):
            if not gate.is_set():
                await gate.wait()
            return await fast(url, **kwargs)

        services[0].loader = slow
        late = asyncio.create_task(services[0].check_due(owner=owner, limit=6))
        while not await services[0].repo.db.fetchval("SELECT count(*) FROM feeds WHERE claimed_by = ?"
                                                     " AND claim_until IS NOT NULL", (owner,)):
            await asyncio.sleep(0.001)
        clock.advance(CHECK_LEASE)
        await run(services[1], "b/1")
        gate.set()
        report = await late
        lost += report.lost
        assert report.lost > 0
        services[0].loader = fast

    feeds = await services[0].list(GUILD) + await services[0].list(GUILD + (1 << 22)) + \
        await services[0].list(GUILD + (2 << 22))
    by_url = {f.url: f.id for f in feeds}
    for round_ in range(6):
        for n, site in enumerate(sites):
            fresh = [item(100 * round_ + k + 10) for k in range(n % 4)]
            site.publish(*fresh)
            expected |= {(by_url[f"https://site{n}.example/feed"], i.key) for i in fresh}
        clock.advance(INTERVAL * 1.2)
        if round_ == 2:
            await stalled("a/1")
        if round_ == 4:  # a claims posts, then stalls past their lease before sending: b posts them
            await services[0].check_due(owner="a/1", limit=12)
            stale = await services[0].claim_posts(owner="a/1", limit=4)
            assert stale
            clock.advance(POST_LEASE)
            await run(services[1], "b/1")
            before = len(posted)
            await post(services[0], "a/1", stale)
            assert len(posted) == before  # every stale claim was fenced out
        await asyncio.gather(run(services[0], "a/1"), run(services[1], "b/1"))
    for _ in range(8):  # drain what the per-check share held back
        clock.advance(INTERVAL * 1.2)
        await asyncio.gather(run(services[0], "a/1"), run(services[1], "b/1"))
    pairs = [(feed, key) for feed, key, _ in posted]
    assert len(pairs) == len(set(pairs)), "an item was posted twice"
    assert set(pairs) == expected
    assert {owner for *_, owner in posted} == {"a/1", "b/1"}  # both took part
    print(f"\ntwo processes: {len(pairs)} items posted once each, {lost} late results dropped")


# ------------------------------------------------------------------ one slow host


class SlowHost(Web):
    """Loads of `slow.example` wait until `release` is set; the others answer at once."""

    def __init__(self) -> None:
        super().__init__()
        self.release = asyncio.Event()
        self.in_flight = self.most_in_flight = 0

    async def __call__(self, url: str, **kwargs):
        if "slow.example" not in url:
            return await super().__call__(url, **kwargs)
        self.in_flight += 1
        self.most_in_flight = max(self.most_in_flight, self.in_flight)
        try:
            await self.release.wait()
            return await super().__call__(url, **kwargs)
        finally:
            self.in_flight -= 1


async def test_a_slow_host_holds_two_load_slots_and_its_waiting_checks_are_handed_back(db, clock, monkeypatch):
    """Checks wait for their host's turn before taking a load slot: twenty feeds of a host that
    hangs don't keep a feed of another host waiting, and those whose turn did not come within
    HOST_WAIT are handed back, due, for the next pass."""
    from bot.feeds import service as service_module

    monkeypatch.setattr(service_module, "HOST_WAIT", 0.2)
    web = SlowHost()
    slow = [f"https://slow.example/{n}.xml" for n in range(20)]
    for url in [*slow, FEED]:
        web.serve(url, items(2))
    web.release.set()
    service = make_service(db, clock, web)
    for url in [*slow, FEED]:
        await add(service, url)
    web.release.clear()
    web.requests.clear()
    clock.advance(INTERVAL)
    checking = asyncio.create_task(service.check_due(owner="a/1"))
    while not any(url == FEED for url, _, _ in web.requests):
        await asyncio.sleep(0.01)  # the other host's feed is loaded while the slow host hangs
    await asyncio.sleep(0.3)  # past HOST_WAIT: the slow host's waiting checks are handed back
    web.release.set()
    report = await checking
    assert web.most_in_flight == 2
    assert (report.claimed, report.checked, report.deferred) == (21, 3, 18)
    again = await service.check_due(owner="b/1")
    assert again.claimed == 18  # due as they were, claimable at once
