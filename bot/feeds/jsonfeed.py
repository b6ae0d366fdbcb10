"""JSON Feed 1.0 / 1.1 (https://jsonfeed.org/version/1.1), which feedparser 6 does not read.

Read with the json module and checked field by field: a top-level object whose `version` is a
jsonfeed.org version and whose `items` is a list, or it is not a JSON Feed. Within an item, a
field of the wrong type is treated as absent rather than failing the whole feed.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import Any

from .models import NotAFeed
from .raw import RawFeed, RawItem, newest_at_end, newest_run

_VERSIONS = ("https://jsonfeed.org/version/", "http://jsonfeed.org/version/")


def _text(value: Any) -> str | None:
    return value if isinstance(value, str) else None


def _date(value: Any) -> datetime | None:
    """An RFC 3339 date (`date_published`), in UTC; None if absent or unreadable."""
    if not isinstance(value, str) or len(value) > 64:
        return None
    try:
        parsed = datetime.fromisoformat(value.strip())
    except ValueError:
        return None
    if parsed.tzinfo is None:  # RFC 3339 requires an offset; a feed without one means UTC
        parsed = parsed.replace(tzinfo=UTC)
    return parsed.astimezone(UTC)


def _item(entry: dict[str, Any]) -> RawItem:
    ident = entry.get("id")
    if isinstance(ident, int | float) and not isinstance(ident, bool):
        ident = str(ident)  # 1.0 feeds used numbers; the spec says to read them as strings
    if _text(entry.get("summary")):
        summary, summary_type = entry["summary"], "text/plain"
    elif _text(entry.get("content_text")):
        summary, summary_type = entry["content_text"], "text/plain"
    else:
        summary, summary_type = _text(entry.get("content_html")), "text/html"
    return RawItem(
        guid=_text(ident),
        title=_text(entry.get("title")),
        title_type="text/plain",
        link=_text(entry.get("url")) or _text(entry.get("external_url")),
        summary=summary,
        summary_type=summary_type,
        date=_date(entry.get("date_published")) or _date(entry.get("date_modified")),
    )


def read_json_feed(body: bytes) -> RawFeed:
    """The feed in `body` (UTF-8, as JSON must be); NotAFeed if it is not a JSON Feed."""
    try:
        data = json.loads(body.decode("utf-8-sig", errors="replace"))
    except RecursionError:  # [[[[… : the decoder refuses to nest past Python's recursion limit
        raise NotAFeed("That address holds JSON nested far too deeply to be a JSON Feed.") from None
    except ValueError:  # not JSON, or a number of thousands of digits
        raise NotAFeed("That address holds something that is neither a feed nor valid JSON.") from None
    version = data.get("version") if isinstance(data, dict) else None
    if not isinstance(version, str) or not version.startswith(_VERSIONS) or not isinstance(data.get("items"), list):
        raise NotAFeed("That address is JSON data, but not a JSON Feed.")
    entries = [entry for entry in data["items"] if isinstance(entry, dict)]
    ends = [_item(entry) for entry in (entries[:5] + entries[-5:] if len(entries) > 10 else entries)]
    items = [_item(entry) for entry in newest_run(entries, newest_at_end([i.date for i in ends]))]
    return RawFeed(
        title=_text(data.get("title")),
        title_type="text/plain",
        link=_text(data.get("home_page_url")),
        items=items,
    )
