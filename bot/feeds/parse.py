"""Reading a fetched feed, in the article worker process (a job with `"kind": "feed"`).

RSS 0.9x/1.0/2.0 and Atom are read by feedparser, JSON Feed by jsonfeed.py, a web page's feed
links by discover.py. Hostile feeds never reach feedparser unchecked: lxml (libxml2, C) reads
the document first, as a gate, with entity expansion, DTD loading and the network off, every
external resource answered with nothing, and libxml2's limits on (nesting depth 256, entity
amplification). What the gate finds decides:

- a resource limit hit (a billion-laughs or quadratic entity bomb, thousands of nested
  elements): the feed is refused at once, for the price of a libxml2 parse;
- not RSS/Atom/RDF at the root: a web page (discovery) or not a feed;
- well-formed and small enough: feedparser reads the original bytes;
- too large (more than READ_ITEMS items, more than MAX_NODES elements and attributes, a
  text longer than MAX_TEXT), or broken and larger than LOOSE_BYTES: feedparser reads the
  gate's own tree, re-serialised, with the middle items taken out and long texts cut. A
  broken document is where libxml2 may stop reading early and feedparser's loose parser would
  go on, unchecked; a small one costs little either way.

Why the gate: feedparser costs ~30 µs per element in its strict parser and ~70 µs in its loose
one; unchecked, 200,000 tiny items (6 MB) took it 31 s, 800,000 nested elements 45 s.

feedparser's own protections stay on beneath: it strips the DOCTYPE (so no entity is declared
to expand), tells expat not to fetch external entities, and is only ever given bytes
(`io.BytesIO`), never a string it might take for a path or a URL.
"""

from __future__ import annotations

import email.utils
import io
from datetime import UTC, datetime
from typing import Any

import feedparser
import feedparser.api
from lxml import etree

from .discover import feed_links
from .jsonfeed import read_json_feed
from .models import FeedError, FeedItem, NotAFeed, ParsedFeed
from .raw import READ_ITEMS, RawFeed, RawItem, newest_at_end, newest_run, to_parsed
from .text import MARKUP_READ

# feedparser prefers libxml2's SAX driver when the libxml2 Python bindings happen to be
# installed; pin expat, whose behaviour (external entities off, amplification limits since
# expat 2.4) is what this module relies on and its tests check.
feedparser.api.PREFERRED_XML_PARSERS = []

FEED_ROOTS = frozenset({"rss", "RDF", "feed"})  # RSS 0.9x/2.0, RSS 0.90/1.0 (rdf:RDF), Atom
HTML_TYPES = frozenset({"text/html", "application/xhtml+xml"})
MAX_NODES = 30_000  # elements + attributes: about 1 s of feedparser at worst
LOOSE_BYTES = 64_000  # a broken feed up to this size goes to feedparser as it is (~1 s at worst)
MAX_TEXT = MARKUP_READ  # characters of one text node
_WHITESPACE = b" \t\r\n"
_BOMS = (b"\xef\xbb\xbf", b"\xff\xfe", b"\xfe\xff")
_LIMIT_WORDS = ("excessive depth", "amplification", "entity loop")

HOSTILE = (
    "That feed is built to exhaust parsers (its XML nests thousands of levels deep or expands "
    "entities without end), so I don't read it."
)


class _NothingExternal(etree.Resolver):
    """Every external resource (a DTD, an entity's file or URL) is empty. With the parser's
    options as set, libxml2 asks for none; this is the second lock. (One option to avoid:
    `collect_ids=False` made it load a feed's external DTD from a file: URL.)"""

    def resolve(self, system_url: str, public_id: str, context: object) -> object:
        return self.resolve_string("", context)


class _Gate:
    """The gate's reading of a markup document: its root element's local name, whether a
    libxml2 limit was hit, whether it was well-formed, and its tree."""

    def __init__(self, body: bytes) -> None:
        parser = etree.XMLParser(
            recover=True,
            resolve_entities=False,
            no_network=True,
            load_dtd=False,
            huge_tree=False,
            remove_comments=True,
            remove_pis=True,
        )
        parser.resolvers.add(_NothingExternal())
        try:
            root = etree.fromstring(body, parser)
        except etree.XMLSyntaxError:  # nothing recoverable at all (an empty document)
            root = None
        errors = list(parser.error_log)
        if any(e.type_name == "ERR_NO_MEMORY" for e in errors):
            raise MemoryError  # libxml2 hit the worker's cap: the worker answers "memory"
        self.limited = any(
            e.type_name == "ERR_RESOURCE_LIMIT" or any(word in e.message.lower() for word in _LIMIT_WORDS)
            for e in errors
        )
        self.clean = not errors
        self.root = root
        self.name = etree.QName(root).localname if root is not None and isinstance(root.tag, str) else None

    def bounded(self) -> bool:
        """Take items out of the tree until at most READ_ITEMS are left, a contiguous run from
        the newest end, and the tree has at most MAX_NODES nodes; True if any was taken out.
        FeedError if the bulk is outside the items."""
        assert self.root is not None
        cut = self._cut_texts()
        items = list(self.root.iter("{*}item", "{*}entry"))
        ends = items[:5] + items[-5:] if len(items) > 10 else items
        at_end = newest_at_end([_element_date(item) for item in ends])
        kept = newest_run(items, at_end)
        if len(kept) < len(items):
            chosen = {id(item) for item in kept}
            for item in items:
                if id(item) not in chosen:
                    _remove(item)
        total = _nodes(self.root)
        if total <= MAX_NODES:
            return cut or len(kept) < len(items)
        sizes = [_nodes(item) for item in kept]
        outside = total - sum(sizes)  # nested items count twice: errs on the safe side
        if outside > MAX_NODES:
            raise FeedError("That feed holds more elements than any real feed (outside its items), so I don't read it.")
        # From the newest end while they fit; one bloated item is left out, not every item
        # after it (it is left out the same way at every check, so the run stays put).
        budget = MAX_NODES - max(outside, 0)
        order = range(len(kept) - 1, -1, -1) if at_end else range(len(kept))
        keep: set[int] = set()
        for index in order:
            if sizes[index] <= budget:
                budget -= sizes[index]
                keep.add(index)
        for index, item in enumerate(kept):
            if index not in keep:
                _remove(item)
        return True

    def _cut_texts(self) -> bool:
        """Cut every text longer than MAX_TEXT (found by XPath, in C); True if any was. A field
        is read to MARKUP_READ characters at most, and feedparser's time on a long text grows
        with its entities: 4 MB of `&lt;b&gt;` took it 2 s."""
        assert self.root is not None
        long_texts = _xpath(self.root, f"//text()[string-length(.) > {MAX_TEXT}]")
        for text in long_texts:
            parent = text.getparent()
            if parent is None:
                continue
            if text.is_tail:
                parent.tail = text[:MAX_TEXT]
            else:
                parent.text = text[:MAX_TEXT]
        return bool(long_texts)

    def serialised(self) -> bytes:
        assert self.root is not None
        return etree.tostring(self.root, encoding="utf-8", xml_declaration=True)


def _xpath(element: Any, expression: str) -> Any:
    try:
        return element.xpath(expression)
    except etree.XPathEvalError:  # of these fixed expressions, only out of memory (the worker's cap)
        raise MemoryError from None


def _nodes(element: Any) -> int:
    """Elements and attributes in `element`, itself included, counted by libxml2's XPath."""
    return int(_xpath(element, "count(descendant-or-self::*) + count(descendant-or-self::*/@*)"))


def _remove(element: Any) -> None:
    parent = element.getparent()
    if parent is not None:
        parent.remove(element)


def _strip_start(body: bytes) -> bytes:
    """Without the whitespace some servers print before `<?xml` (which makes it ill-formed)."""
    return body if body.startswith(_BOMS) else body.lstrip(_WHITESPACE)


def _is_json(body: bytes) -> bool:
    start = body[3:] if body.startswith(_BOMS[0]) else body
    return start[:1] in (b"{", b"[")


def _date(parsed: Any) -> datetime | None:
    """feedparser's struct_time (UTC) as an aware datetime; None for impossible dates."""
    if parsed is None:
        return None
    try:
        return datetime(*parsed[:6], tzinfo=UTC)
    except (TypeError, ValueError, OverflowError):
        return None


_DATE_NAMES = ("pubDate", "published", "updated", "date", "issued", "modified")


def _element_date(item: Any) -> datetime | None:
    """An item element's date as the gate reads it (RFC 822 or ISO 8601), only to tell which
    end of a long feed is its newest; None when it has none that parses."""
    for child in item:
        if isinstance(child.tag, str) and etree.QName(child).localname in _DATE_NAMES and child.text:
            text = child.text.strip()[:64]
            try:
                parsed = email.utils.parsedate_to_datetime(text)
            except (TypeError, ValueError, IndexError):
                try:
                    parsed = datetime.fromisoformat(text.replace("Z", "+00:00"))
                except ValueError:
                    continue
            return parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)
    return None


def _detail_type(entry: Any, field: str) -> str | None:
    detail = entry.get(f"{field}_detail")
    return detail.get("type") if detail else None


def _feedparser_item(entry: Any) -> RawItem:
    # feedparser copies an item's content into `summary` when it has no summary of its own,
    # but not the content's type: the type comes from where the text came from.
    detail = entry.get("summary_detail")
    if detail:
        summary, summary_type = entry.get("summary"), detail.get("type")
    elif entry.get("content"):
        content = entry["content"][0]
        summary, summary_type = content.get("value"), content.get("type")
    else:
        summary, summary_type = entry.get("summary"), "text/html"  # of unknown type: markup is stripped
    return RawItem(
        guid=entry.get("id"),
        title=entry.get("title"),
        title_type=_detail_type(entry, "title"),
        link=entry.get("link"),
        summary=summary,
        summary_type=summary_type,
        date=_date(entry.get("published_parsed")) or _date(entry.get("updated_parsed")),
    )


def _read_xml(data: bytes, content_type: str) -> RawFeed:
    result = feedparser.parse(
        io.BytesIO(data),
        # No content-location: feedparser would resolve guids against it as if they were
        # links, and an item's key would change with the feed's address.
        response_headers={"content-type": content_type},
        sanitize_html=False,  # its output is parsed to plain text anyway; sanitising is wasted work
        resolve_relative_uris=False,  # the same: links are resolved by identity.clean_link
    )
    feed = result.get("feed", {})
    return RawFeed(
        title=feed.get("title"),
        title_type=_detail_type(feed, "title"),
        link=feed.get("link"),
        items=[_feedparser_item(entry) for entry in result.get("entries", [])[:READ_ITEMS]],
    )


def parse_feed(
    body: bytes, *, url: str, content_type: str, charset: str | None, discover: bool
) -> ParsedFeed | list[str]:
    """The feed in `body` (fetched from `url`), or, for a web page when `discover`, the feeds it
    links to (never empty). NotAFeed says what it is instead; FeedError that it is hostile."""
    body = _strip_start(body)
    if _is_json(body):
        return to_parsed(read_json_feed(body), url)
    gate = _Gate(body)
    if gate.limited:
        raise FeedError(HOSTILE)
    if gate.name in FEED_ROOTS:
        if gate.bounded() or (not gate.clean and len(body) > LOOSE_BYTES):
            data, data_type = gate.serialised(), "application/xml; charset=utf-8"
        else:
            data, data_type = body, content_type + (f"; charset={charset}" if charset else "")
        return to_parsed(_read_xml(data, data_type), url)
    if content_type in HTML_TYPES or (gate.name or "").lower() == "html":
        if not discover:
            raise NotAFeed("That address is a web page, not a feed.")
        links = feed_links(body, charset, url)
        if not links:
            raise NotAFeed("That address is a web page, not a feed, and it links to no feed.")
        return links
    if gate.root is not None:
        raise NotAFeed("That address is an XML document, but not an RSS, Atom or RDF feed.")
    raise NotAFeed("That address holds no feed I can read (it is not RSS, Atom, RDF or JSON Feed).")


# --- the worker's reply, both ways --------------------------------------------------------------


def process_feed(body: bytes, job: dict[str, Any]) -> dict[str, Any]:
    """One feed job, as the worker runs it: the reply as a JSON-able dict."""
    try:
        result = parse_feed(
            body,
            url=job["url"],
            content_type=job.get("content_type") or "",
            charset=job.get("charset"),
            discover=bool(job.get("discover")),
        )
    except FeedError as error:
        return {"ok": False, "kind": "feed", "message": str(error), "not_a_feed": isinstance(error, NotAFeed)}
    if isinstance(result, list):
        return {"ok": True, "links": result}
    items = [[i.key, i.title, i.link, i.summary, i.published] for i in result.items]
    return {"ok": True, "feed": {"title": result.title, "link": result.link, "items": items}}


def read_reply(reply: dict[str, Any]) -> ParsedFeed | list[str]:
    """`process_feed`'s reply, back in the bot: the feed, or a page's feed links; raises the
    NotAFeed / FeedError the worker reported."""
    if not reply.get("ok"):
        error = NotAFeed if reply.get("not_a_feed") else FeedError
        raise error(str(reply.get("message")))
    if "links" in reply:
        return [str(link) for link in reply["links"]]
    feed = reply["feed"]
    items = tuple(
        FeedItem(key=key, title=title, link=link, summary=summary, published=published)
        for key, title, link, summary, published in feed["items"]
    )
    return ParsedFeed(title=feed["title"], link=feed["link"], items=items)
