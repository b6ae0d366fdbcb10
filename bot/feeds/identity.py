"""Who an item is, and where it links: the two things a re-dated, re-ordered feed must not change.

An item's key is its guid/id, else its link, else a hash of its title and link, each with its
kind in front ("id:", "link:", "hash:") so an id that happens to equal another item's link is
still another item. Never its date: feeds rewrite dates (an edit, a re-publish, a CMS
migration), and a key that moved with them would post the item again.
"""

from __future__ import annotations

import hashlib
from urllib.parse import urljoin, urlsplit

from yarl import URL

from ..articles.fetch import is_canonical_host
from .text import clean_text

MAX_KEY = 512
MAX_LINK = 2048
_LONGEST_RAW = 100_000  # longer than any id or link worth reading


def _bounded(kind: str, value: str) -> str:
    """`kind:value`, or the value's hash in its place when that would pass MAX_KEY."""
    key = f"{kind}:{value}"
    if len(key) <= MAX_KEY:
        return key
    digest = hashlib.sha256(value.encode("utf-8", "surrogatepass")).hexdigest()
    return f"{kind}-sha256:{digest}"


def item_key(guid: str | None, link: str | None, title: str | None, summary: str | None = None) -> str:
    """The key of an item from its guid/id (as the feed gives it), its checked `link` and its
    clean `title`. An item with neither title nor link is told apart by its summary."""
    ident = clean_text(guid[:_LONGEST_RAW], _LONGEST_RAW) if guid else None
    if ident:
        return _bounded("id", ident)
    if link:
        return _bounded("link", link)
    parts = [title or "", link or ""]
    if not title:
        parts.append(summary or "")
    digest = hashlib.sha256("\n".join(parts).encode("utf-8", "surrogatepass")).hexdigest()
    return f"hash:{digest}"


def clean_link(raw: str | None, base: str) -> str | None:
    """`raw` as an absolute http(s) address (relative ones resolved against `base`, the feed's
    or page's address), ASCII-encoded (punycode host, percent-escaped path), at most MAX_LINK
    characters; None for anything else (javascript:, data:, mailto:, broken, too long)."""
    if not raw or len(raw) > _LONGEST_RAW:
        return None
    text = raw.strip()
    if not text or any(ord(c) < 0x20 or ord(c) == 0x7F for c in text):
        return None
    try:
        absolute = urljoin(base, text)
        parts = urlsplit(absolute)
        if parts.scheme.lower() not in ("http", "https") or not parts.hostname:
            return None
        url = URL(absolute)
        link = str(url)  # encodes what a browser would before sending it
        host = url.raw_host
    except (ValueError, TypeError, UnicodeError):
        return None
    # A host the article fetcher would refuse (`127.1`, spaces) is no link to post either.
    if not host or not is_canonical_host(host) or len(link) > MAX_LINK:
        return None
    return link
