"""What a feed, its items and a check of it are: the contract between fetching, parsing, storage
and the Discord glue. Plain Python, no discord."""

from __future__ import annotations

from dataclasses import dataclass
from enum import Enum


class FeedError(Exception):
    """A feed could not be read; str(error) is a short message for a moderator.

    `retry_after`: the server asked for a pause (429/503 with Retry-After), in seconds.
    """

    def __init__(self, message: str, *, retry_after: float | None = None) -> None:
        super().__init__(message)
        self.retry_after = retry_after


class NotAFeed(FeedError):
    """The address answered, but with something that is not a feed (and links to none)."""


@dataclass(frozen=True, slots=True)
class FeedItem:
    """One entry of a feed, as parsed. `key` is its identity: the guid/id, else the link, else a
    hash of title and link; never its date, which feeds rewrite."""

    key: str
    title: str | None
    link: str | None
    summary: str | None  # plain text, already stripped of markup
    published: str | None  # ISO 8601, when the feed gives one


@dataclass(frozen=True, slots=True)
class ParsedFeed:
    title: str
    link: str | None  # the site's address, as the feed gives it
    items: tuple[FeedItem, ...]  # newest first, at most MAX_ITEMS, each key once


@dataclass(frozen=True, slots=True)
class FetchedFeed:
    """The answer to one (conditional) request for a feed."""

    url: str  # final URL after redirects
    not_modified: bool  # 304: nothing to parse
    body: bytes
    content_type: str
    charset: str | None
    etag: str | None
    last_modified: str | None


class FeedState(Enum):
    OK = "ok"
    FAILING = "failing"
    PAUSED = "paused"


@dataclass(frozen=True, slots=True)
class Feed:
    id: int
    guild_id: int
    number: int  # per server, like polls: "#3"
    channel_id: int
    url: str
    page_url: str | None
    title: str
    added_by: int
    added_at: float
    paused_at: float | None
    paused_by: int | None  # None while paused_at is set: Quorum paused it (failing, channel lost)
    paused_reason: str | None
    etag: str | None
    last_modified: str | None
    next_check_at: float
    last_check_at: float | None
    last_new_at: float | None
    failures: int
    failing_since: float | None
    last_error: str | None
    notice_sent_at: float | None
    body_hash: str | None = None  # SHA-256 of the last body parsed: the same again is not parsed

    @property
    def state(self) -> FeedState:
        if self.paused_at is not None:
            return FeedState.PAUSED
        return FeedState.FAILING if self.failures else FeedState.OK
