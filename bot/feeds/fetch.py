"""Fetching a feed: the article fetcher's checks and limits, conditional GET, Retry-After, a
per-host limit, and the parsing handed to a worker process.

What is shared with articles (bot/articles/fetch.py `fetch`): the URL and address checks
(SSRF), the pinned resolver, redirects checked hop by hop, the time limits, the 5 MB cap on
the decompressed body. What is the feed's own: the content types accepted, the conditional
request headers, and what a 304, 429 or 503 means.

Per-host limit: `HostLimiter` gives each hop of a request a turn at its host, at most
`per_host` at once per host, shared by every check in the process. A hop holds its host's turn
from sending the request until the response is read (or the redirect seen), then lets go
before the next hop asks the next host for one, so a request never holds two turns and two
hosts redirecting to each other cannot deadlock. Waiting for a turn does not count towards the
request's time limit: a host's queue is not the host being slow.

Parsing happens in a worker process (bot/feeds/parse.py, via `ArticleWorkers.parse_feed`),
never on the event loop; only the first kilobyte is looked at here, to refuse an image or a PDF
before reading all of it.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass
from email.utils import parsedate_to_datetime
from http import HTTPStatus

import aiohttp

from ..articles.fetch import FetchError, describe_type, fetch, parse_content_type, read_body
from ..articles.worker import ArticleJobError, ArticleWorkers
from .models import FeedError, FetchedFeed, NotAFeed, ParsedFeed
from .parse import read_reply
from .raw import MAX_ITEMS

__all__ = ["MAX_ITEMS", "HostLimiter", "LoadedFeed", "load_feed", "retry_after_seconds"]

MAX_BYTES = 5_000_000  # like an article page
PARSE_SECONDS = 10.0  # the worker's part; the largest hostile feeds in the tests take under 2 s
MAX_RETRY_AFTER = 24 * 3600.0
FEED_TYPES = frozenset({
    "application/rss+xml", "application/atom+xml", "application/xml", "text/xml", "application/rdf+xml",
    "application/feed+json", "application/json",
})  # fmt: skip
HTML_TYPES = frozenset({"text/html", "application/xhtml+xml"})  # discovery, and feeds served as HTML


def _xml_or_json(mime: str) -> bool:
    """The unregistered types feeds are served as (application/x-rss+xml, text/rss+xml,
    application/x-atom+xml, …): any XML or JSON type; the parser decides what it holds."""
    subtype = mime.partition("/")[2]
    return subtype.endswith(("xml", "+json"))
# Types that say nothing about the content: the first kilobyte decides.
GENERIC_TYPES = frozenset({"", "text/plain", "application/octet-stream", "binary/octet-stream"})
ACCEPT = (
    "application/rss+xml, application/atom+xml, application/feed+json, application/rdf+xml;q=0.9, "
    "application/xml;q=0.9, text/xml;q=0.9, application/json;q=0.8, text/html;q=0.7, */*;q=0.1"
)
_SNIFF_BYTES = 1024
MAX_VALIDATOR = 1024  # an ETag or Last-Modified longer than this is not kept


def _validator(value: str | None) -> str | None:
    """A validator (ETag, Last-Modified) to store and send back, or None: printable ASCII of a
    sane length only, since it goes back out in a request header (aiohttp refuses others)."""
    if not value or len(value) > MAX_VALIDATOR or not all(" " <= c <= "~" for c in value):
        return None
    return value


class _Host:
    def __init__(self, per_host: int) -> None:
        self.turns = asyncio.Semaphore(per_host)
        self.users = 0  # holding a turn or waiting for one
        self.active = 0  # holding one


class HostLimiter:
    """At most `per_host` requests in flight per host (its lower-cased name), across every check
    that shares this limiter. Hosts are forgotten when no request is using them."""

    def __init__(self, per_host: int = 2) -> None:
        if per_host < 1:
            raise ValueError("per_host must be at least 1")
        self.per_host = per_host
        self._hosts: dict[str, _Host] = {}
        self.peak = 0  # the most requests one host ever had in flight (tests and benchmarks)

    def in_flight(self, host: str) -> int:
        entry = self._hosts.get(host.rstrip(".").lower())
        return entry.active if entry else 0

    @contextlib.asynccontextmanager
    async def slot(self, host: str) -> AsyncIterator[None]:
        key = host.rstrip(".").lower()
        entry = self._hosts.get(key)
        if entry is None:
            entry = self._hosts[key] = _Host(self.per_host)
        entry.users += 1
        try:
            async with entry.turns:
                entry.active += 1
                self.peak = max(self.peak, entry.active)
                try:
                    yield
                finally:
                    entry.active -= 1
        finally:
            entry.users -= 1
            if not entry.users:
                del self._hosts[key]


@dataclass(frozen=True, slots=True)
class LoadedFeed:
    fetched: FetchedFeed
    parsed: ParsedFeed | None  # None when the server answered 304 Not Modified (nothing parsed)
    feed_url: str  # the feed's own address: `url`, or the feed a web page linked (discover=True)
    body_hash: str | None = None  # SHA-256 of the feed's body (None on a 304)


def retry_after_seconds(value: str | None, *, date: str | None = None, now: float | None = None) -> float | None:
    """Retry-After (seconds, or an HTTP date) as seconds from now, within 0 and 24 hours; None
    when absent or unreadable. A date is measured against the response's own Date header when
    it has one, so a server whose clock is off still gets the pause it meant."""
    if not value:
        return None
    value = value.strip()
    if value.isascii() and value.isdigit():
        return min(float(value), MAX_RETRY_AFTER)
    try:
        then = parsedate_to_datetime(value).timestamp()
    except (TypeError, ValueError, IndexError, OverflowError):
        return None
    reference = now if now is not None else time.time()
    if date:
        with contextlib.suppress(TypeError, ValueError, IndexError, OverflowError):
            reference = parsedate_to_datetime(date).timestamp()
    return min(max(then - reference, 0.0), MAX_RETRY_AFTER)


def _status_message(status: int) -> str:
    try:
        phrase = HTTPStatus(status).phrase
    except ValueError:
        phrase = "(unknown status)"  # the server's own reason text is never repeated
    hint = "check the address"
    if status in (401, 403, 451):
        hint = "the feed is not public, or the site refuses bots"
    elif status in (404, 410):
        hint = "the feed is gone, or the address is wrong"
    elif status == 429:
        hint = "the site is limiting requests"
    elif status >= 500:
        hint = "the site has a problem"
    return f"The feed answered {status} {phrase}; {hint}."


def _sniff(start: bytes) -> str | None:
    """What the first bytes of a body of no stated type look like, as a content type; None
    when neither markup nor JSON (an image, a binary file). A hint only: the worker's parsers
    decide what the body really is."""
    if start.startswith((b"\xff\xfe", b"\xfe\xff")):  # UTF-16: markup, by every feed known
        return "application/xml"
    text = start.removeprefix(b"\xef\xbb\xbf").lstrip(b" \t\r\n")
    if text[:1] in (b"{", b"["):
        return "application/json"
    if text[:1] != b"<":
        return None
    lower = text.lower()
    if lower.startswith(b"<!doctype html") or b"<html" in lower:
        return "text/html"
    return "application/xml"


def _too_large() -> FeedError:
    return FeedError(f"The feed is larger than {MAX_BYTES / 1_000_000:g} MB, more than I read for one feed.")


async def _get(
    url: str,
    *,
    hosts: HostLimiter,
    etag: str | None,
    last_modified: str | None,
    allow_private: bool,
    timeout: float,
) -> FetchedFeed:
    async def read(response: aiohttp.ClientResponse) -> FetchedFeed:
        status = response.status
        new_etag = _validator(response.headers.get("ETag"))
        new_modified = _validator(response.headers.get("Last-Modified"))
        if status == 304:
            return FetchedFeed(
                url=str(response.url),
                not_modified=True,
                body=b"",
                content_type="",
                charset=None,
                etag=new_etag or etag,  # a 304 may leave them out: the ones sent still hold
                last_modified=new_modified or last_modified,
            )
        if status in (429, 503):
            wait = retry_after_seconds(response.headers.get("Retry-After"), date=response.headers.get("Date"))
            raise FeedError(_status_message(status), retry_after=wait)
        if not 200 <= status < 300:
            raise FeedError(_status_message(status))
        mime, charset = parse_content_type(response.headers.get("Content-Type"))
        if mime not in FEED_TYPES and mime not in HTML_TYPES and mime not in GENERIC_TYPES and not _xml_or_json(mime):
            raise NotAFeed(f"That address is {describe_type(mime)}, not a feed.")
        body = await read_body(response, MAX_BYTES, _too_large)
        if mime in GENERIC_TYPES:
            sniffed = _sniff(body[:_SNIFF_BYTES])
            if sniffed is None:
                raise NotAFeed("That address is not a feed (it does not look like RSS, Atom, JSON Feed or a web page).")
            mime = sniffed
        return FetchedFeed(
            url=str(response.url),
            not_modified=False,
            body=body,
            content_type=mime,
            charset=charset,
            etag=new_etag,
            last_modified=new_modified,
        )

    headers: dict[str, str] = {}
    if etag:
        headers["If-None-Match"] = etag
    if last_modified:
        headers["If-Modified-Since"] = last_modified
    try:
        return await fetch(
            url,
            read,
            accept=ACCEPT,
            headers=headers,
            hop_slot=hosts.slot,
            noun="feed",
            allow_private=allow_private,
            connect_timeout=min(5.0, timeout),
            read_timeout=min(10.0, timeout),
            total_timeout=timeout,
        )
    except FetchError as error:  # addresses, connections, time-outs: worded for any fetch
        raise FeedError(str(error)) from None


async def _parse(workers: ArticleWorkers, fetched: FetchedFeed, *, discover: bool) -> ParsedFeed | list[str]:
    try:
        reply = await workers.parse_feed(
            fetched.body,
            url=fetched.url,
            content_type=fetched.content_type,
            charset=fetched.charset,
            discover=discover,
            timeout=PARSE_SECONDS,
        )
    except ArticleJobError as error:
        raise FeedError(str(error)) from None
    return read_reply(reply)


async def load_feed(
    url: str,
    *,
    workers: ArticleWorkers,
    hosts: HostLimiter,
    etag: str | None = None,
    last_modified: str | None = None,
    allow_private: bool = False,
    discover: bool = False,
    body_hash: str | None = None,
    timeout: float = 15.0,
) -> LoadedFeed:
    """Fetch the feed at `url` (conditionally, with `etag` / `last_modified` from the last
    200) and parse it in `workers`. With `discover`, a web page that links its feed with
    `<link rel="alternate">` leads to that feed, fetched with the same checks (one level).

    `timeout`: each request's total time (connecting, redirects, reading), not counting the
    wait for the host's turn; the parsing then gets PARSE_SECONDS of the worker's time.
    FeedError (NotAFeed for what is not a feed) says what went wrong, for a moderator;
    `retry_after` is set when a 429 or 503 asked for a pause.

    `body_hash`: the SHA-256 (hex) of the body parsed last time: a 200 with the same body is
    not parsed again (`parsed` None, as for a 304). Many servers send no validators.
    """
    fetched = await _get(
        url, hosts=hosts, etag=etag, last_modified=last_modified, allow_private=allow_private, timeout=timeout
    )
    if fetched.not_modified:
        return LoadedFeed(fetched=fetched, parsed=None, feed_url=url)
    digest = hashlib.sha256(fetched.body).hexdigest()
    if body_hash is not None and digest == body_hash and not discover:
        return LoadedFeed(fetched=fetched, parsed=None, feed_url=fetched.url, body_hash=digest)
    result = await _parse(workers, fetched, discover=discover)
    if isinstance(result, ParsedFeed):
        # Where the request ended, after redirects: an old address that redirects to a feed
        # (http to https, a moved feed) is that feed, not a second one.
        return LoadedFeed(fetched=fetched, parsed=result, feed_url=fetched.url, body_hash=digest)
    feed_url = result[0]  # the page's first feed link: its main feed, by custom
    # Unconditional: the validators given were the page's, not this feed's.
    fetched = await _get(
        feed_url, hosts=hosts, etag=None, last_modified=None, allow_private=allow_private, timeout=timeout
    )
    if fetched.not_modified:  # to an unconditional request: a broken server
        raise FeedError("The feed that page links to answered 304 Not Modified to a plain request; it is broken.")
    try:
        found = await _parse(workers, fetched, discover=False)
    except NotAFeed:
        raise NotAFeed("That page links to a feed, but what its link leads to is not a feed.") from None
    assert isinstance(found, ParsedFeed)  # discover=False never answers with links
    return LoadedFeed(
        fetched=fetched, parsed=found, feed_url=fetched.url, body_hash=hashlib.sha256(fetched.body).hexdigest()
    )
