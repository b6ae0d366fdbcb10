"""Feed use cases, in plain Python: following a feed, checking the feeds that are due, handing
their new items out for posting exactly once, pausing what keeps failing.

Exactly once, across restarts and processes sharing the database:

1. `check_due` claims due feeds (a lease; `SKIP LOCKED` on PostgreSQL) and records each result
   only while the claim is still its own; an item is new when its key (guid/id, else link, else
   a hash of title and link, never its date) was never seen in that feed, and is stored
   'pending' with the feed row locked, `ON CONFLICT DO NOTHING` besides.
2. Each check releases at most `max_posts` of a feed's new items for posting, oldest first;
   the rest wait for later checks, so a burst is spread over checks instead of flooding.
3. `claim_posts` hands each released item to one process; `start_post` (before sending) records
   that sending began and what the message carries, and refuses when another claim has
   replaced this one; `finish_post` records the message. A retry that finds `post_started_at`
   set looks for the earlier message first; the message's nonce covers the rest.
"""

from __future__ import annotations

import asyncio
import logging
import math
import random
import unicodedata
from collections.abc import Awaitable, Callable, Iterable
from dataclasses import dataclass, field
from typing import Protocol
from urllib.parse import urlsplit, urlunsplit

from ..db import StorageUnavailable
from .models import Feed, FeedError, FeedItem, FetchedFeed, ParsedFeed
from .repository import (
    CHUNK,
    MAX_HEADER,
    MAX_TITLE,
    Added,
    AlreadyFollowed,
    FeedRepository,
    NewFeed,
    Recorded,
    ServerFull,
    clean_text,
)

log = logging.getLogger(__name__)

Clock = Callable[[], float]
Shards = tuple[int, tuple[int, ...]]

# Feeds per server. /feed list shows them in a few embeds, and each feed is a request every
# interval: 50 keeps one server from taking the checking budget of many (the benchmark's
# 1,000 feeds are 20 full servers).
MAX_FEEDS_PER_SERVER = 50
MAX_URL = 2048  # the schema's limit on a feed's address
# Items of one listing looked at (the parser already keeps at most bot.feeds.raw.MAX_ITEMS, 500).
MAX_LISTING = 1000
# How long a process owns a check (a load waits for its host's turn, then up to its timeout)
# or a post (the item's page is fetched and summarised before sending) before another may
# take it over. Recording a check or starting a post is fenced by the claim, so a late one
# only wastes its work.
CHECK_LEASE = 300.0
POST_LEASE = 300.0
JITTER = 0.1  # next check: the interval, ±10 %
# Failing feeds: wait interval * 2**failures (at most 6 h, or the interval if longer); a
# server's Retry-After is honoured up to a day.
MAX_BACKOFF = 6 * 3600.0
MAX_RETRY_AFTER = 24 * 3600.0
# Paused by Quorum once it has failed this many checks in a row over at least a day.
PAUSE_AFTER_FAILURES = 5
PAUSE_AFTER_SECONDS = 24 * 3600.0
# Checks of one host in flight at once, as the loader's own per-host limit: a check waiting
# for its host's turn waits before taking a load slot, so a slow host holds two slots, not all.
HOST_CONCURRENCY = 2
# A claimed check that has not had its host's turn within this long is handed back for the
# next pass, so a batch never waits out its lease behind one slow host.
HOST_WAIT = 30.0
# A post whose attempts all failed (or never finished) is given up after this many.
MAX_POST_ATTEMPTS = 5
# What a member types into find/search is looked at up to this length.
MAX_QUERY = 4096
MAX_SEARCH = 100


class DuplicateFeed(FeedError):
    """The channel already follows that feed (its own address, after discovery)."""

    def __init__(self, feed: Feed) -> None:
        super().__init__(f"This channel already follows that feed: it is feed #{feed.number}.")
        self.feed = feed


class FeedNotFound(FeedError):
    """What was named is no feed of this server."""


class AmbiguousFeed(FeedNotFound):
    """An address several of the server's feeds follow (in different channels)."""

    def __init__(self, feeds: list[Feed]) -> None:
        numbers = [f"#{feed.number}" for feed in feeds]
        listed = ", ".join(numbers[:-1]) + " and " + numbers[-1]
        super().__init__(f"Feeds {listed} follow that address (in different channels): name one by its number.")
        self.feeds = feeds


class TooManyFeeds(FeedError):
    def __init__(self, limit: int) -> None:
        super().__init__(
            f"This server already follows {limit} feeds, the most Quorum follows for one server "
            "(each is checked all day long). Remove one with `/feed remove` first."
        )
        self.limit = limit


class Loaded(Protocol):
    """What `bot.feeds.fetch.load_feed` returns (LoadedFeed)."""

    @property
    def fetched(self) -> FetchedFeed: ...
    @property
    def parsed(self) -> ParsedFeed | None: ...  # None on a 304, or the body parsed last time again
    @property
    def feed_url(self) -> str: ...
    @property
    def body_hash(self) -> str | None: ...  # of a 200's body


class Loader(Protocol):
    def __call__(
        self, url: str, *, etag: str | None, last_modified: str | None, discover: bool, body_hash: str | None
    ) -> Awaitable[Loaded]: ...


@dataclass(frozen=True, slots=True)
class PendingPost:
    """One new item claimed for posting."""

    id: int  # feed_items.id
    feed: Feed
    item: FeedItem
    attempts: int  # this claim's attempt, counted
    post_started_at: float | None  # set: an earlier attempt may have sent it (search before resending)
    post_marker: str | None  # what that attempt's message carries

    @property
    def nonce(self) -> str:
        # Discord keeps a nonce for a few minutes and takes at most 25 characters.
        nonce = f"quorum-feed-{self.id}"
        return nonce if len(nonce) <= 25 else f"qf-{self.id:x}"


@dataclass(slots=True)
class CheckReport:
    checked: int = 0  # results recorded
    not_modified: int = 0  # a 304, or the same body as last time (then not parsed)
    unchanged: int = 0  # of those, the same body again (a server that sends no validators)
    new_items: int = 0
    failed: int = 0
    requests: int = 0  # loads made (each one conditional request, plus its redirects)
    lost: int = 0  # loaded, but the claim was gone by then (resumed, removed, taken over)
    deferred: int = 0  # handed back unloaded: their host's turn did not come within HOST_WAIT
    host_paused: int = 0  # not loaded: their host asked for a pause (429/503 Retry-After) lately
    claimed: int = 0
    feed_ids: list[int] = field(default_factory=list)  # feeds whose check was recorded
    paused_for_failing: list[Feed] = field(default_factory=list)  # each wants its one notice


class FeedService:
    def __init__(
        self,
        repo: FeedRepository,
        clock: Clock,
        loader: Loader,
        *,
        interval: float,
        max_posts: int,
        concurrency: int = 16,
        max_feeds: int = MAX_FEEDS_PER_SERVER,
        jitter: float = JITTER,
        rng: random.Random | None = None,
    ) -> None:
        self.repo = repo
        self.clock = clock
        self.loader = loader
        self.interval = float(interval)
        self.max_posts = max_posts
        self.max_feeds = max_feeds
        self.jitter = jitter
        self._rng = rng or random.Random()
        self._loads = asyncio.Semaphore(concurrency)
        # Hosts that answered 429/503 with Retry-After, and until when: each of their feeds
        # waits that long, not only the one that was answered (this process's view).
        self._host_pauses: dict[str, float] = {}

    # ------------------------------------------------------------ following

    async def add(self, *, guild_id: int, channel_id: int, url: str, added_by: int) -> tuple[Feed, FeedItem | None]:
        """Follow the feed at `url` (or the one the page there links to) in a channel: the feed
        and its newest item. Every item it lists now is recorded as seen, in the same
        transaction as the feed: nothing old is ever posted."""
        given = normal_url(plain(url))
        if not given:
            raise FeedError("Give the address of a feed, or of a page that links to one.")
        if len(given) > MAX_URL:
            raise FeedError(f"That address is longer than {MAX_URL} characters: no feed has one that long.")
        # Refused before any request where the address alone tells.
        existing = await self.repo.in_channel(channel_id, [given])
        if existing is not None:
            raise DuplicateFeed(existing)
        if await self.repo.count(guild_id) >= self.max_feeds:
            raise TooManyFeeds(self.max_feeds)
        loaded = await self.loader(given, etag=None, last_modified=None, discover=True, body_hash=None)
        parsed = loaded.parsed
        if parsed is None:
            raise FeedError("The server answered “not modified” to a first request. Try again in a while.")
        feed_url = normal_url(loaded.feed_url)
        if not feed_url or len(feed_url) > MAX_URL:
            raise FeedError(f"That page links to a feed whose address is longer than {MAX_URL} characters.")
        now = self.clock()
        new = NewFeed(
            guild_id=guild_id,
            channel_id=channel_id,
            url=feed_url,
            page_url=given if given != feed_url else None,
            title=clean_text(parsed.title.strip(), MAX_TITLE) or "",
            added_by=added_by,
            etag=_header(loaded.fetched.etag),
            last_modified=_header(loaded.fetched.last_modified),
            next_check_at=now + self._jittered(self.interval),
            body_hash=loaded.body_hash,
        )
        result = await self.repo.create(new, parsed.items[:MAX_LISTING], now=now, max_feeds=self.max_feeds)
        if isinstance(result, AlreadyFollowed):
            raise DuplicateFeed(result.feed)
        if isinstance(result, ServerFull):
            raise TooManyFeeds(self.max_feeds)
        assert isinstance(result, Added)
        return result.feed, parsed.items[0] if parsed.items else None

    async def list(self, guild_id: int) -> list[Feed]:
        return await self.repo.list(guild_id)

    async def find(self, guild_id: int, text: str) -> Feed:
        """A feed of the server by "3", "#3", its address or the page it was added by."""
        query = plain(text)
        digits = query[1:] if query.startswith("#") else query
        if digits.isascii() and digits.isdigit():
            feed = await self.repo.by_number(guild_id, int(digits)) if len(digits) <= 18 else None
            if feed is not None:
                return feed
            shown = f" #{int(digits)}" if len(digits) <= 18 else " of that number"
            raise FeedNotFound(f"This server has no feed{shown}. `/feed list` shows its feeds.")
        if not query:
            raise FeedNotFound("Name a feed by its number (see `/feed list`) or by its address.")
        if len(query) <= MAX_URL:
            found = await self.repo.by_url(guild_id, normal_url(query))
            if len(found) == 1:
                return found[0]
            if found:
                raise AmbiguousFeed(found)
        raise FeedNotFound("No feed of this server has that number or address. `/feed list` shows its feeds.")

    async def search(self, guild_id: int, current: str, limit: int = 25) -> list[Feed]:
        """Autocomplete: the server's feeds whose number starts with, or whose title or address
        contains, what was typed."""
        return await self.repo.search(guild_id, plain(current)[:MAX_SEARCH], max(1, min(limit, 25)))

    async def remove(self, feed: Feed) -> None:
        """Stop following: the feed and (cascade) all its items go."""
        if not await self.repo.delete(feed.id):
            raise FeedNotFound(f"Feed #{feed.number} was removed already.")

    async def pause(self, feed: Feed, *, by: int) -> Feed:
        """A moderator pauses it: not checked, nothing posted (unchanged if paused already)."""
        paused = await self.repo.pause(feed.id, now=self.clock(), by=by, reason=None, notice_done=False)
        if paused is None:
            raise FeedNotFound(f"Feed #{feed.number} was removed.")
        return paused[0]

    async def resume(self, feed: Feed) -> Feed:
        """Checked again now, its failures forgotten; items found before the pause are posted."""
        resumed = await self.repo.resume(feed.id, now=self.clock())
        if resumed is None:
            raise FeedNotFound(f"Feed #{feed.number} was removed.")
        return resumed

    async def pause_for(self, feed_id: int, reason: str) -> Feed | None:
        """Quorum pauses a feed it can't post (its channel deleted, a permission lost): logged,
        and no notice (there is nowhere to send one). None if the feed is gone."""
        paused = await self.repo.pause(feed_id, now=self.clock(), by=None, reason=reason, notice_done=True)
        if paused is None:
            return None
        feed, changed = paused
        if changed:
            log.warning(
                "feed %s (#%s) of guild %s paused: %s", feed.id, feed.number, feed.guild_id, feed.paused_reason,
                extra={"guild_id": feed.guild_id},
            )
        return feed

    async def claim_notice(self, feed_id: int) -> bool:
        """True exactly once per pause for failing: the caller then sends the channel's notice."""
        return await self.repo.claim_notice(feed_id, now=self.clock())

    async def unnoticed(self, *, shards: Shards | None = None) -> list[Feed]:
        """Feeds paused for failing whose notice was never claimed (the report that listed them
        was lost to a stop): call at start, then `claim_notice` each."""
        return await self.repo.unnoticed(shards)

    # ------------------------------------------------------------ checking

    async def next_deadline(self, *, shards: Shards | None = None) -> float | None:
        """The earliest next check of an unpaused feed, or time a pending post may be claimed
        (released by a check, retried, its lease run out); None if there is none."""
        return await self.repo.next_deadline(shards)

    async def check_due(self, *, owner: str, limit: int = 100, shards: Shards | None = None) -> CheckReport:
        """Claim up to `limit` due feeds, load them (at most `concurrency` at once), record what
        each said."""
        feeds = await self.repo.claim_checks(
            owner=owner, now=self.clock(), lease=CHECK_LEASE, limit=limit, shards=shards
        )
        report = CheckReport(claimed=len(feeds))
        turns: dict[str, asyncio.Semaphore] = {}
        for feed in feeds:
            turns.setdefault(_host(feed.url), asyncio.Semaphore(HOST_CONCURRENCY))
        results = await asyncio.gather(
            *(self._check(feed, owner, report, turns[_host(feed.url)]) for feed in feeds), return_exceptions=True
        )
        storage: StorageUnavailable | None = None
        for feed, result in zip(feeds, results, strict=True):
            if isinstance(result, StorageUnavailable):
                storage = result  # logged once by the database; the claims run out by themselves
            elif isinstance(result, BaseException):
                if not isinstance(result, Exception):
                    raise result  # cancelled: stopping
                log.error("feed %s: recording its check failed", feed.id, exc_info=result)
        if storage is not None:
            raise storage
        return report

    def _host_pause(self, host: str) -> float | None:
        """Until when `host` asked Quorum to wait, if that is still ahead."""
        until = self._host_pauses.get(host)
        if until is not None and until <= self.clock():
            del self._host_pauses[host]
            return None
        return until

    async def _postpone_for_host(self, feed: Feed, owner: str, until: float, report: CheckReport) -> None:
        report.host_paused += 1
        await self.repo.postpone_check(feed.id, owner=owner, until=until)

    async def _check(self, feed: Feed, owner: str, report: CheckReport, turn: asyncio.Semaphore) -> None:
        failure: FeedError | None = None
        host = _host(feed.url)
        if (until := self._host_pause(host)) is not None:
            await self._postpone_for_host(feed, owner, until, report)
            return
        try:
            async with asyncio.timeout(HOST_WAIT):
                await turn.acquire()
        except TimeoutError:
            report.deferred += 1
            await self.repo.release_check(feed.id, owner=owner)
            return
        try:
            async with self._loads:
                # Asked while this one waited for its turn or a load slot (by the checks ahead
                # of it; those in flight when the host answered were sent already).
                until = self._host_pause(host)
                if until is None:
                    report.requests += 1
                    try:
                        loaded = await self.loader(
                            feed.url, etag=feed.etag, last_modified=feed.last_modified, discover=False,
                            body_hash=feed.body_hash,
                        )
                    except FeedError as error:
                        failure = error
                    except Exception:
                        log.exception("feed %s: loading %s failed unexpectedly", feed.id, feed.url)
                        failure = FeedError("Quorum could not read it (an error of its own).")
        finally:
            turn.release()
        if until is not None:
            await self._postpone_for_host(feed, owner, until, report)
            return
        if failure is not None:
            await self._record_failure(feed, owner, failure, report)
            return
        now = self.clock()
        next_check = now + self._jittered(self.interval)
        parsed = loaded.parsed
        if loaded.fetched.not_modified or parsed is None:
            stored = await self.repo.record_not_modified(
                feed.id, owner=owner, now=now, next_check_at=next_check, etag=_header(loaded.fetched.etag),
                last_modified=_header(loaded.fetched.last_modified), max_posts=self.max_posts,
            )
            if stored is None:
                report.lost += 1
                return
            report.not_modified += 1
            report.unchanged += not loaded.fetched.not_modified
        else:
            recorded = await self.repo.record_loaded(
                feed.id, owner=owner, now=now, next_check_at=next_check, etag=_header(loaded.fetched.etag),
                last_modified=_header(loaded.fetched.last_modified),
                title=clean_text(parsed.title.strip(), MAX_TITLE) or "", items=parsed.items[:MAX_LISTING],
                max_posts=self.max_posts, body_hash=loaded.body_hash,
            )
            if recorded is None:
                report.lost += 1
                return
            assert isinstance(recorded, Recorded)
            report.new_items += recorded.new_items
        report.checked += 1
        report.feed_ids.append(feed.id)

    async def _record_failure(self, feed: Feed, owner: str, error: FeedError, report: CheckReport) -> None:
        now = self.clock()
        failures = feed.failures + 1
        since = feed.failing_since if feed.failing_since is not None else now
        delay = self._jittered(min(self.interval * 2.0 ** min(failures, 32), max(MAX_BACKOFF, self.interval)))
        retry_after = error.retry_after
        if retry_after is not None and math.isfinite(retry_after) and retry_after > 0:
            asked = min(retry_after, MAX_RETRY_AFTER)
            delay = max(delay, asked)
            host = _host(feed.url)
            self._host_pauses[host] = max(self._host_pauses.get(host, 0.0), now + asked)
        message = str(error) or type(error).__name__
        pause = failures >= PAUSE_AFTER_FAILURES and now - since >= PAUSE_AFTER_SECONDS
        reason = (
            f"{failures} checks in a row failed over {(now - since) / 3600:.0f} hours (the last: {message})"
            if pause else None
        )
        stored = await self.repo.record_failure(
            feed.id, owner=owner, now=now, next_check_at=now + delay, failures=failures, failing_since=since,
            error=message, pause_reason=reason, max_posts=self.max_posts,
        )
        if stored is None:
            report.lost += 1
            return
        report.checked += 1
        report.failed += 1
        report.feed_ids.append(feed.id)
        if pause and stored.paused_at is not None and stored.paused_by is None and stored.notice_sent_at is None:
            log.warning(
                "feed %s (#%s) of guild %s paused: %s", stored.id, stored.number, stored.guild_id, reason,
                extra={"guild_id": stored.guild_id},
            )
            report.paused_for_failing.append(stored)

    def _jittered(self, seconds: float) -> float:
        return seconds * self._rng.uniform(1 - self.jitter, 1 + self.jitter) if self.jitter else seconds

    # ------------------------------------------------------------ posting

    async def claim_posts(
        self,
        *,
        owner: str,
        feed_ids: Iterable[int] | None = None,
        limit: int = 100,
        shards: Shards | None = None,
    ) -> list[PendingPost]:
        """Claim items to post: at most `max_posts` per feed per call, oldest first, each with
        a lease; items of paused feeds are not claimed. Sorted by feed, then oldest first."""
        now = self.clock()
        rows = []
        if feed_ids is None:
            rows = await self.repo.claim_items(
                owner=owner, now=now, lease=POST_LEASE, per_feed=self.max_posts, limit=limit, shards=shards
            )
        else:
            ids = sorted({int(i) for i in feed_ids})
            for start in range(0, len(ids), CHUNK):
                if len(rows) >= limit:
                    break
                rows += await self.repo.claim_items(
                    owner=owner, now=now, lease=POST_LEASE, per_feed=self.max_posts, limit=limit - len(rows),
                    feed_ids=ids[start:start + CHUNK], shards=shards,
                )
        if not rows:
            return []
        feeds = await self.repo.get_many(row.feed_id for row in rows)
        posts: list[PendingPost] = []
        for row in rows:
            feed = feeds.get(row.feed_id)
            if feed is None:  # removed since: its items went with it
                continue
            if row.attempts > MAX_POST_ATTEMPTS:
                # Claimed that often without an outcome: the process dies on it, or never gets to it.
                log.error("feed %s: item %s given up after %d unfinished attempts", feed.id, row.id, MAX_POST_ATTEMPTS,
                          extra={"guild_id": feed.guild_id})
                await self.repo.finish_item(
                    row.id, state="skipped", outcome=f"skipped: {MAX_POST_ATTEMPTS} attempts never finished",
                    message_id=None, now=now,
                )
                continue
            posts.append(PendingPost(row.id, feed, row.item, row.attempts, row.post_started_at, row.post_marker))
        return posts

    async def start_post(self, post: PendingPost, *, owner: str, marker: str) -> bool:
        """Right before sending: renew the claim, record that sending began (the first time is
        kept) and what the message carries. False: the claim is no longer this one (another
        process took it over), or the feed was paused or removed: do not send."""
        return await self.repo.start_item(
            post.id, owner=owner, attempts=post.attempts, marker=marker, now=self.clock(), lease=POST_LEASE
        )

    async def finish_post(self, post: PendingPost, *, message_id: int | None, outcome: str = "posted") -> None:
        """Done for good, once: 'posted' for an outcome starting with "posted", else 'skipped'
        (e.g. "skipped: …", "failed: …")."""
        state = "posted" if outcome.startswith("posted") else "skipped"
        await self.repo.finish_item(post.id, state=state, outcome=outcome, message_id=message_id, now=self.clock())

    async def release_post(self, post: PendingPost, *, retry_at: float, reason: str = "posting failed") -> None:
        """A failed attempt: any process may try again at `retry_at`; after MAX_POST_ATTEMPTS
        attempts the item is given up ('skipped: reason')."""
        if post.attempts >= MAX_POST_ATTEMPTS:
            log.warning("feed %s: item %s given up after %d attempts: %s", post.feed.id, post.id, post.attempts, reason,
                        extra={"guild_id": post.feed.guild_id})
            await self.finish_post(post, message_id=None, outcome=f"skipped: {reason} ({post.attempts} attempts)")
            return
        await self.repo.retry_item(post.id, attempts=post.attempts, retry_at=retry_at)

    async def postpone_post(self, post: PendingPost, *, retry_at: float) -> None:
        """As `release_post`, for an attempt that could not even start (its server unavailable
        here for a moment, its feed just paused): not counted, never given up."""
        await self.repo.retry_item(post.id, attempts=post.attempts, retry_at=retry_at, count_attempt=False)

    async def reclaim_own(self, *, instance: str, owner: str) -> int:
        """At start: the checks and posts earlier copies of this instance held may be taken
        again at once (the caller holds the instance lock)."""
        return await self.repo.reclaim_own(instance=instance, owner=owner, now=self.clock())


def plain(text: str) -> str:
    """What a member typed, without invisible characters (zero-width spaces, direction marks,
    BOMs, control characters such as NUL) and surrounding space; bounded first, so a huge text
    costs nothing."""
    text = text[:MAX_QUERY]
    if not text.isprintable():
        text = "".join(ch for ch in text if unicodedata.category(ch) not in ("Cf", "Cc"))
    return text.strip()


def normal_url(url: str) -> str:
    """An address as compared and stored: scheme and host in lower case, no default port, no
    fragment, "/" for an empty path. Anything not an http(s) URL is left as it is."""
    url = url.strip()
    try:
        parts = urlsplit(url)
    except ValueError:
        return url
    scheme = parts.scheme.lower()
    if scheme not in ("http", "https") or not parts.netloc:
        return url
    userinfo, at, host = parts.netloc.rpartition("@")
    host = host.lower()
    default = ":80" if scheme == "http" else ":443"
    if host.endswith(default):
        host = host[: -len(default)]
    return urlunsplit((scheme, userinfo + at + host, parts.path or "/", parts.query, ""))


def _host(url: str) -> str:
    """Whose turn a check waits for: the feed's host, lower-cased (as the loader's limit)."""
    try:
        return (urlsplit(url).hostname or "").rstrip(".")
    except ValueError:
        return ""


def _header(value: str | None) -> str | None:
    """A validator (ETag, Last-Modified) worth sending back: one cut short would be wrong."""
    cleaned = clean_text(value, MAX_HEADER + 1)
    return cleaned if cleaned and len(cleaned) <= MAX_HEADER else None
