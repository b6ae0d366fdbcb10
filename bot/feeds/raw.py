"""What a parser (feedparser, or the JSON Feed reader) read from a feed, and how that becomes a
`ParsedFeed`: clean plain text, checked links, keys, order, caps.

Order: newest first by the items' own dates (published, else updated) when every item has
one; otherwise in the feed's document order, which feeds write newest first by custom, or
reversed when its dated items say it lists oldest first. One undated item is enough to fall
back, since there is no honest place to sort it into. Sorting is stable, so items of the same
date keep their document order.

Keys are unique within a feed: a later item with the key of an earlier one (in document
order) is dropped, so the first occurrence wins.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import TypeVar
from urllib.parse import urlsplit

from .identity import clean_link, item_key
from .models import FeedItem, ParsedFeed
from .text import clean_text, to_text

MAX_ITEMS = 500
# Items read of a longer feed: a run of READ_ITEMS from its newest end, at the start (custom)
# or at the end (some podcast feeds), whichever the dates of its items say. One contiguous
# run: a window that shifts by one item when the feed adds one must not bring an item from
# its middle into view (it would look new). The rest of a 100,000-item feed is not parsed.
READ_ITEMS = 1000
MAX_TITLE = 300
MAX_SUMMARY = 2000

T = TypeVar("T")


def newest_at_end(dates: Sequence[datetime | None]) -> bool:
    """Whether a feed lists its items oldest first: its last dated item (in document order) is
    later than its first. Undated, or one date: newest first, as feeds write by custom."""
    dated = [d for d in dates if d is not None]
    return len(dated) >= 2 and dated[-1] > dated[0]


def newest_run(items: Sequence[T], at_end: bool, size: int = READ_ITEMS) -> list[T]:
    """At most `size` items from the newest end, in document order."""
    if len(items) <= size:
        return list(items)
    return list(items[-size:] if at_end else items[:size])


@dataclass(frozen=True, slots=True)
class RawItem:
    guid: str | None
    title: str | None
    title_type: str | None  # "text/html" when the title is markup
    link: str | None  # as the feed wrote it, maybe relative
    summary: str | None
    summary_type: str | None
    date: datetime | None  # aware, UTC


@dataclass(frozen=True, slots=True)
class RawFeed:
    title: str | None
    title_type: str | None
    link: str | None
    items: list[RawItem]


def _host(url: str) -> str:
    try:
        return urlsplit(url).hostname or url
    except ValueError:
        return url


def to_parsed(raw: RawFeed, feed_url: str) -> ParsedFeed:
    """`raw` made safe to show and to store: see the module's docstring for order and keys."""
    kept: list[tuple[FeedItem, datetime | None]] = []
    seen: set[str] = set()
    for entry in raw.items:
        link = clean_link(entry.link, feed_url)
        title = to_text(entry.title, entry.title_type, MAX_TITLE)
        summary = to_text(entry.summary, entry.summary_type, MAX_SUMMARY)
        key = item_key(entry.guid, link, title, summary)
        if key in seen:
            continue
        seen.add(key)
        published = entry.date.isoformat() if entry.date is not None else None
        kept.append((FeedItem(key=key, title=title, link=link, summary=summary, published=published), entry.date))
    # The MAX_ITEMS nearest the feed's newest end, in document order, then sorted: a new item
    # with an old date is still among them (sorting first could push it past the cap, unseen).
    at_end = newest_at_end([date for _, date in kept])
    kept = newest_run(kept, at_end, MAX_ITEMS)
    if kept and all(date is not None for _, date in kept):
        kept.sort(key=lambda pair: pair[1], reverse=True)  # type: ignore[arg-type, return-value]
    elif at_end:
        kept.reverse()  # an oldest-first feed with undated items: its newest end first
    title = to_text(raw.title, raw.title_type, MAX_TITLE) or clean_text(_host(feed_url), MAX_TITLE) or "Feed"
    return ParsedFeed(
        title=title,
        link=clean_link(raw.link, feed_url),
        items=tuple(item for item, _ in kept),
    )
