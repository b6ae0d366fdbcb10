"""The feeds a web page names with `<link rel="alternate" type="…">`, read with lxml's HTML parser."""

from __future__ import annotations

import lxml.html
from lxml import etree

from ..articles.fetch import decode_page
from .identity import clean_link

# The types feed autodiscovery uses (RSS Board, RFC 4287 practice, JSON Feed 1.1). Not plain
# application/json: WordPress links its REST API that way from every page.
FEED_LINK_TYPES = frozenset({"application/rss+xml", "application/atom+xml", "application/feed+json"})
MAX_LINKS = 10


def feed_links(body: bytes, charset: str | None, page_url: str) -> list[str]:
    """The page's feed links in document order (the first is the site's main feed, by custom),
    absolute and http(s), without repeats, at most MAX_LINKS."""
    try:
        document = lxml.html.document_fromstring(decode_page(body, charset))
    except (etree.ParserError, ValueError):  # an empty document, or nothing lxml can read
        return []
    base = page_url
    for element in document.iter("base"):  # <base href> moves what relative links mean
        base = clean_link(element.get("href"), page_url) or page_url
        break
    links: list[str] = []
    for element in document.iter("link"):
        rel = (element.get("rel") or "").lower().split()
        kind = (element.get("type") or "").partition(";")[0].strip().lower()
        if "alternate" not in rel or kind not in FEED_LINK_TYPES:
            continue
        link = clean_link(element.get("href"), base)
        if link is not None and link not in links:
            links.append(link)
            if len(links) == MAX_LINKS:
                break
    return links
