"""Parsing feeds: the formats, identity, order, caps, discovery, and hostile feeds.

The formats and rules are checked on `parse_feed` in this process (it is a plain function);
hostile feeds go through a real worker process, as the bot sends them, and each prints what it
cost (wall time seen by the bot, CPU time of the worker): run with `-s` to see the figures.
"""

from __future__ import annotations

import asyncio
import json
import os
import re
import time
from datetime import UTC, datetime, timedelta
from email.utils import formatdate
from pathlib import Path

import pytest
import pytest_asyncio
from lxml import etree

from bot.articles.worker import ArticleJobError, ArticleWorkers
from bot.feeds import parse as parse_module
from bot.feeds.identity import MAX_KEY, MAX_LINK
from bot.feeds.models import FeedError, NotAFeed, ParsedFeed
from bot.feeds.parse import HOSTILE, parse_feed, read_reply
from bot.feeds.raw import MAX_ITEMS, MAX_SUMMARY, MAX_TITLE

# The async tests share the module's worker pool, so they share its event loop.
in_module_loop = pytest.mark.asyncio(loop_scope="module")

FIXTURES = Path(__file__).resolve().parents[2] / "fixtures" / "feeds"
URL = "https://site.example/blog/feed.xml"
MB = 1_000_000


def fixture(name: str) -> bytes:
    return (FIXTURES / name).read_bytes()


def parse(body: bytes, content_type: str = "application/rss+xml", *, discover: bool = False, url: str = URL):
    return parse_feed(body, url=url, content_type=content_type, charset=None, discover=discover)


def feed(body: bytes, content_type: str = "application/rss+xml", **kwargs) -> ParsedFeed:
    result = parse(body, content_type, **kwargs)
    assert isinstance(result, ParsedFeed)
    return result


def rss(items: str | bytes, head: bytes = b"", channel: bytes = b"<title>A feed</title>") -> bytes:
    body = items.encode() if isinstance(items, str) else items
    return b'<?xml version="1.0"?>' + head + b'<rss version="2.0"><channel>' + channel + body + b"</channel></rss>"


def item(guid: str | None = None, title: str | None = None, link: str | None = None, date: str | None = None) -> str:
    parts = [f"<guid>{guid}</guid>" if guid else "", f"<title>{title}</title>" if title else ""]
    parts += [f"<link>{link}</link>" if link else "", f"<pubDate>{date}</pubDate>" if date else ""]
    return "<item>" + "".join(parts) + "</item>"


def day(n: int) -> str:
    return f"{['Mon', 'Tue', 'Wed', 'Thu', 'Fri', 'Sat', 'Sun'][(n + 2) % 7]}, {n:02d} Jan 2025 10:00:00 GMT"


# --------------------------------------------------------------------------- the formats


def test_rss_2_0_gives_plain_text_checked_links_and_newest_first():
    parsed = feed(fixture("rss2.xml"))
    assert parsed.title == "The Kubernetes Blog"
    assert parsed.link == "https://kubernetes.example/blog/"
    gateway, release, spotlight = parsed.items  # by date: June, April, March
    assert gateway.key == "id:https://kubernetes.example/blog/2025/06/02/gateway-api-v1-3/"
    assert gateway.title == "Gateway API v1.3: Percentage-based mirroring & more"
    assert gateway.link == "https://site.example/blog/2025/06/02/gateway-api-v1-3/"  # relative: against the feed
    assert gateway.summary == "Join us in the Gateway API community."  # content:encoded, its script dropped
    assert gateway.published == "2025-06-02T16:00:00+00:00"
    assert release.key == "id:kubernetes-v1-33-release"
    assert release.summary == (
        "Editors: Agustina and the release team. "
        "Similar to previous releases, this one introduces new stable, beta and alpha features."
    )
    assert spotlight.link is None  # javascript: is no link
    assert spotlight.summary == "Plain text summary."


def test_atom_titles_of_every_type_and_dates_in_utc():
    parsed = feed(fixture("atom.xml"), "application/atom+xml")
    assert parsed.title == "Example Atom Feed"  # type="html": the markup is gone
    assert parsed.link == "https://atom.example/"
    second, robots = parsed.items
    assert second.title == "Second entry"  # type="xhtml"
    assert second.key == "id:tag:atom.example,2025:second"
    assert second.link == "https://site.example/blog/2025/05/02/second"
    assert second.summary == "The content of the second entry."
    assert second.published == "2025-05-02T06:00:00+00:00"  # updated, +02:00 in the feed
    assert robots.published == "2025-05-01T18:30:02+00:00"  # published, not the later updated
    assert robots.key == "id:urn:uuid:1225c695-cfb8-4ebb-aaaa-80da344efa6a"


def test_rss_1_0_rdf():
    parsed = feed(fixture("rss1.rdf"), "application/rdf+xml")
    assert parsed.title == "RDF Site Summary"
    assert [i.title for i in parsed.items] == ["Second RDF news", "First RDF news"]
    assert parsed.items[1].key == "id:https://rdf.example/news/1"  # its rdf:about
    assert parsed.items[1].summary == "What happened first."
    assert parsed.items[0].published == "2025-02-03T12:00:00+00:00"


def test_a_feed_without_a_title_is_named_by_its_host():
    parsed = feed(rss(item("g", "x"), channel=b"<title>  &#x200B; </title>"))
    assert parsed.title == "site.example" and parsed.link is None


def test_rss_0_91():
    body = (
        b'<?xml version="1.0"?><!DOCTYPE rss PUBLIC "-//Netscape Communications//DTD RSS 0.91//EN" '
        b'"http://my.netscape.com/publish/formats/rss-0.91.dtd"><rss version="0.91"><channel><title>Old</title>'
        b"<item><title>An old item</title><link>https://old.example/1</link></item></channel></rss>"
    )
    parsed = feed(body)
    assert parsed.title == "Old"
    assert [(i.key, i.title) for i in parsed.items] == [("link:https://old.example/1", "An old item")]


def test_json_feed_is_read_and_checked_field_by_field():
    parsed = feed(fixture("feed.json"), "application/feed+json")
    assert parsed.title == "JSON Feed Example"
    assert parsed.link == "https://json.example/"
    second, first, third = parsed.items  # the undated third: document order
    assert (second.key, second.title, second.summary) == ("id:2", "Second post", "Hello, world!")
    assert first.key == "id:1"  # a number, read as a string
    assert first.link == "https://site.example/2025/first"
    assert first.summary == "The first post's summary."
    assert first.published == "2025-03-01T15:00:00+00:00"
    # An id that is a list and a title that is a number are absent, not fatal.
    assert (third.key, third.title) == ("link:https://json.example/2025/third", None)


@pytest.mark.parametrize(
    ("body", "message"),
    [
        (b'{"version": "https://example.org/", "items": []}', "That address is JSON data, but not a JSON Feed."),
        (b'{"version": "https://jsonfeed.org/version/1.1", "items": {}}', "JSON data, but not a JSON Feed."),
        (b"[1, 2, 3]", "That address is JSON data, but not a JSON Feed."),
        (b'{"version": "https://jsonfeed.org/version/1", "items": [', "neither a feed nor valid JSON"),
        (b'{"n": ' + b"9" * 100_000 + b"}", "neither a feed nor valid JSON"),  # past int's digit limit
        (b"[" * 1_000_000, "nested far too deeply"),
    ],
)
def test_json_that_is_not_a_json_feed_is_refused(body, message):
    with pytest.raises(NotAFeed, match=re.escape(message)):
        parse(body, "application/json")


def test_a_feed_served_as_html_or_after_whitespace_is_still_a_feed():
    body = b"\n\n  " + fixture("rss2.xml")  # some servers print blank lines before <?xml
    assert len(feed(body, "text/html").items) == 3


def test_a_small_broken_feed_is_read_by_feedparsers_loose_parser():
    body = rss("<item><title>Tom & Jerry&nbsp;&eacute;t&eacute;</title><link>https://t.example/1</link></item>")
    (only,) = feed(body).items
    assert only.title == "Tom & Jerry été"


def test_a_large_broken_feed_is_read_from_libxml2s_recovered_tree():
    items = "".join(item(f"g{i}", f"Item {i} & more", f"https://t.example/{i}") for i in range(2000))
    parsed = feed(rss(items))
    assert len(parsed.items) == MAX_ITEMS
    assert parsed.items[0].title == "Item 0 more"  # libxml2 drops the stray "&"


def test_the_gate_loads_no_external_resource_even_when_asked_to(tmp_path):
    dtd = tmp_path / "entities.dtd"
    dtd.write_text('<!ENTITY x "FROM-A-LOCAL-FILE">')
    parser = etree.XMLParser(load_dtd=True, resolve_entities=True, no_network=True, recover=True)
    parser.resolvers.add(parse_module._NothingExternal())
    body = f'<!DOCTYPE rss SYSTEM "file://{dtd}"><rss><channel><title>&x;</title></channel></rss>'.encode()
    root = etree.fromstring(body, parser)
    assert "FROM-A-LOCAL-FILE" not in etree.tostring(root).decode()


def test_xml_that_is_not_a_feed_is_refused():
    with pytest.raises(NotAFeed, match="XML document, but not an RSS, Atom or RDF feed"):
        parse(b'<?xml version="1.0"?><urlset><url><loc>https://x.example/</loc></url></urlset>', "application/xml")
    with pytest.raises(NotAFeed, match="holds no feed I can read"):
        parse(b"%PDF-1.7 not markup at all", "application/xml")


# --------------------------------------------------------------------------- identity


def test_without_guids_keys_are_the_link_else_a_hash_and_the_first_occurrence_wins():
    linked, titled, bare = feed(fixture("no_guids.xml")).items
    assert linked.key == "link:https://noguid.example/posts/linked"
    assert linked.summary is None  # the first of the two items with this link
    assert re.fullmatch(r"hash:[0-9a-f]{64}", titled.key)
    assert re.fullmatch(r"hash:[0-9a-f]{64}", bare.key) and bare.key != titled.key
    assert bare.summary == "Neither title nor link: told apart by its summary."


def test_items_redated_and_reordered_keep_their_keys():
    # Some with a guid, some keyed by their link, some by the hash of their title.
    entries = [
        (f"guid-{i}" if i % 3 else None, f"Post {i}", f"https://t.example/{i}" if i % 2 else None) for i in range(9)
    ]
    before = feed(rss("".join(item(g, t, link, day(i + 1)) for i, (g, t, link) in enumerate(entries))))
    # The feed re-dates every item (a CMS migration) and lists them in another order.
    after = feed(rss("".join(item(g, t, link, day(20 - i)) for i, (g, t, link) in reversed(list(enumerate(entries))))))
    assert {i.key for i in before.items} == {i.key for i in after.items}
    assert len({i.key for i in before.items}) == 9
    assert [i.title for i in before.items] == [f"Post {i}" for i in reversed(range(9))]  # newest first
    assert [i.title for i in after.items] == [f"Post {i}" for i in range(9)]


def test_markup_in_a_title_does_not_change_its_key():
    plain = feed(rss(item(title="Breaking news", link=None))).items[0]
    marked = feed(rss(item(title="&lt;b&gt;Breaking&lt;/b&gt;   news", link=None))).items[0]
    assert plain.key == marked.key


def test_long_ids_and_links_are_hashed_into_bounded_keys():
    long_id = "x" * 600
    long_link = "https://t.example/" + "a" * 1000
    first, second = feed(rss(item(long_id, "One") + item(None, "Two", long_link))).items
    assert first.key.startswith("id-sha256:") and len(first.key) <= MAX_KEY
    assert second.key.startswith("link-sha256:") and second.link == long_link


def test_only_absolute_http_links_are_kept():
    links = [
        "/relative/path", "https://bücher.example/ä ö", "mailto:a@b.example", "data:text/html,<b>x</b>",
        "ftp://files.example/x", "https://127.1/", "http://", "https://t.example/" + "a" * MAX_LINK,
    ]  # fmt: skip
    parsed = feed(rss("".join(item(f"g{i}", "x", link) for i, link in enumerate(links))))
    assert [i.link for i in parsed.items] == [
        "https://site.example/relative/path",
        "https://xn--bcher-kva.example/%C3%A4%20%C3%B6",
        None, None, None, None, None, None,
    ]  # fmt: skip


# --------------------------------------------------------------------------- order and caps


def test_newest_first_by_date_when_every_item_has_one_else_document_order():
    dated = feed(rss(item("a", "A", date=day(1)) + item("b", "B", date=day(3)) + item("c", "C", date=day(2))))
    assert [i.title for i in dated.items] == ["B", "C", "A"]
    one_undated = feed(rss(item("a", "A", date=day(2)) + item("b", "B") + item("c", "C", date=day(1))))
    assert [i.title for i in one_undated.items] == ["A", "B", "C"]
    # Its dated items say it lists oldest first: newest first is the document reversed.
    oldest_first = feed(rss(item("a", "A", date=day(1)) + item("b", "B") + item("c", "C", date=day(2))))
    assert [i.title for i in oldest_first.items] == ["C", "B", "A"]
    same_day = feed(rss(item("a", "A", date=day(1)) + item("b", "B", date=day(1))))
    assert [i.title for i in same_day.items] == ["A", "B"]  # a stable sort


def test_more_than_500_items_are_cut_to_the_newest_500():
    undated = feed(rss("".join(item(f"g{i}", f"Item {i}") for i in range(700))))
    assert [i.title for i in undated.items] == [f"Item {i}" for i in range(MAX_ITEMS)]
    # 3,000 dated items, oldest first (as some podcast feeds list them): the newest are at the end.
    start = datetime(2000, 1, 1, tzinfo=UTC)
    dates = [(start + timedelta(days=i)).strftime("%a, %d %b %Y %H:%M:%S GMT") for i in range(3000)]
    parsed = feed(rss("".join(item(f"g{i}", f"Item {i}", date=dates[i]) for i in range(3000))))
    assert [i.title for i in parsed.items] == [f"Item {i}" for i in range(2999, 2499, -1)]


def test_an_item_more_than_500_times_is_one_item():
    parsed = feed(rss(item("same", "Again") * 600))
    assert [i.key for i in parsed.items] == ["id:same"]


# --------------------------------------------------------------------------- discovery


def test_a_web_page_names_its_feeds_in_document_order():
    links = parse(fixture("page_with_alternate.html"), "text/html", discover=True, url="https://blog.example/dir/")
    # Not the WordPress REST link (application/json); rel and type read as HTML reads them.
    assert links == ["https://blog.example/dir/feeds/rss2.xml", "https://blog.example/comments.atom"]


def test_a_base_element_moves_relative_feed_links():
    page = (
        b'<html><head><base href="https://cdn.example/x/">'
        b'<link rel="alternate" type="application/feed+json" href="f.json"></head></html>'
    )
    assert parse(page, "text/html", discover=True) == ["https://cdn.example/x/f.json"]


def test_a_web_page_without_feed_links_is_not_a_feed():
    page = fixture("page_without_alternate.html")
    with pytest.raises(NotAFeed) as caught:
        parse(page, "text/html", discover=True)
    assert str(caught.value) == "That address is a web page, not a feed, and it links to no feed."
    with pytest.raises(NotAFeed) as caught:
        parse(fixture("page_with_alternate.html"), "text/html", discover=False)
    assert str(caught.value) == "That address is a web page, not a feed."


# --------------------------------------------------------------------------- text


def test_titles_and_summaries_are_visible_plain_text_within_their_limits():
    title = (
        "&lt;b&gt;Bold&lt;/b&gt; \u202eevil\u202c\u200b zero&#x200B;width\u2028line\t\t"
        "\U000e0041tag \ufeffbom 👨\u200d👩\u200d👧"
    )
    summary = "&lt;style&gt;p{}&lt;/style&gt;&lt;script&gt;x()&lt;/script&gt;&lt;p&gt;" + "word " * 1000
    body = rss(f"<item><guid>g</guid><title>{title}</title><description>{summary}&lt;/p&gt;</description></item>")
    (only,) = feed(body).items
    assert only.title == "Bold evil zerowidth line tag bom 👨\u200d👩\u200d👧"  # the emoji's joiners stay
    assert len(only.summary) == MAX_SUMMARY and only.summary.endswith("…")
    assert only.summary.startswith("word word")  # no style, no script


def test_a_plain_text_title_keeps_its_angle_brackets():
    # feedparser reads this title as text (no closing tag of an HTML element), so it is kept as
    # written: Discord shows it escaped, it is never rendered as HTML anywhere.
    titles = ["Vec&lt;T&gt; explained", "a &lt; b &amp;&amp; c", "&lt;script&gt;alert(1)&lt;/script&gt;"]
    parsed = feed(rss("".join(item(f"g{i}", title) for i, title in enumerate(titles))))
    assert [i.title for i in parsed.items] == ["Vec<T> explained", "a < b && c", "<script>alert(1)</script>"]


def test_json_feed_text_loses_lone_surrogates_and_controls():
    body = json.dumps({
        "version": "https://jsonfeed.org/version/1.1", "title": "J\u0000\u0007son",
        "items": [{"id": "1", "title": "bad \ud800 half\u0085pair\u202e", "content_html": "<p>x</p>\u0000"}],
    }).encode()  # fmt: skip
    parsed = feed(body, "application/feed+json")
    assert parsed.title == "Json"
    assert parsed.items[0].title == "bad half pair"
    assert parsed.items[0].summary == "x"


# --------------------------------------------------------------------------- in the worker


@pytest_asyncio.fixture(scope="module", loop_scope="module")
async def pool():
    workers = ArticleWorkers(1)
    yield workers
    await workers.close()


def _cpu_seconds(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


async def in_worker(pool: ArticleWorkers, name: str, body: bytes, content_type: str = "application/rss+xml"):
    """The worker's result for `body` (a ParsedFeed, links, or the FeedError raised), and its
    cost printed."""
    if not pool.pids:  # started by a first, tiny job, so its start is not counted
        await pool.parse_feed(b"<rss/>", url=URL, content_type="text/xml", charset=None, discover=False, timeout=30)
    pid = pool.pids[0]
    cpu, wall = _cpu_seconds(pid), time.perf_counter()
    try:
        reply = await pool.parse_feed(body, url=URL, content_type=content_type, charset=None, discover=True, timeout=30)
        result: object = read_reply(reply)
    except FeedError as error:
        result = error
    wall = time.perf_counter() - wall
    spent = f"{_cpu_seconds(pid) - cpu:.2f} s" if pool.pids == [pid] else "(worker replaced)"
    print(f"\n[hostile feed] {name}: {len(body) / MB:.2f} MB, wall {wall:.2f} s, worker CPU {spent}")
    return result


def fill(unit, size: int) -> bytes:
    """Units `unit(0)`, `unit(1)`, … up to `size` bytes."""
    parts, total, i = [], 0, 0
    while total < size:
        parts.append(unit(i))
        total += len(parts[-1])
        i += 1
    return b"".join(parts)


@in_module_loop
async def test_parsing_happens_in_the_worker_not_in_the_bot(pool, monkeypatch):
    def not_here(*args: object, **kwargs: object) -> None:
        raise AssertionError("a feed was parsed in the bot's own process")

    monkeypatch.setattr(parse_module, "parse_feed", not_here)
    parsed = await in_worker(pool, "RSS 2.0 fixture", fixture("rss2.xml"))
    assert isinstance(parsed, ParsedFeed) and len(parsed.items) == 3


BILLION_LAUGHS = b'<!DOCTYPE rss [<!ENTITY a "lollollollollollollollollollol">' + b"".join(
    b'<!ENTITY %s "%s">' % (chr(98 + i).encode(), (b"&%s;" % chr(97 + i).encode()) * 10) for i in range(9)
) + b"]>"


@in_module_loop
@pytest.mark.parametrize("newlines", [False, True], ids=["one-line DTD", "one declaration a line"])
async def test_billion_laughs_is_refused_at_once(pool, newlines):
    head = BILLION_LAUGHS.replace(b"><", b">\n<") if newlines else BILLION_LAUGHS
    result = await in_worker(pool, "billion laughs", rss(item("g", "&j;"), head))
    assert isinstance(result, FeedError) and str(result) == HOSTILE


@in_module_loop
async def test_quadratic_entity_blowup_is_refused(pool):
    head = b'<!DOCTYPE rss [<!ENTITY a "' + b"x" * 100_000 + b'">]>'
    body = rss(b"<item><title>" + b"&a;" * 40_000 + b"</title></item>", head)
    result = await in_worker(pool, "quadratic blowup", body)
    assert isinstance(result, FeedError) and str(result) == HOSTILE


@in_module_loop
async def test_external_entities_read_no_local_file(pool, tmp_path):
    secret = tmp_path / "secret.txt"
    secret.write_text("TOP-SECRET-CONTENT")
    heads = [
        f'<!DOCTYPE rss [<!ENTITY x SYSTEM "file://{secret}">]>',
        f'<!DOCTYPE rss [<!ENTITY % p SYSTEM "file://{secret}"> %p;]>',
        f'<!DOCTYPE rss SYSTEM "file://{secret}">',
    ]
    for head in heads:  # the last: libxml2 loaded it with lxml's collect_ids=False (a DTD that fails)
        body = rss(item("g", "&x; title", "https://t.example/"), head.encode())
        result = await in_worker(pool, "external entity", body)
        assert isinstance(result, ParsedFeed), result
        assert "TOP-SECRET" not in repr(result)


@in_module_loop
async def test_a_5_mb_feed_of_100000_items_gives_500_in_about_a_second(pool):
    def unit(i: int) -> bytes:
        return (
            b"<item><title>Item %d</title><link>https://t.example/%d</link><guid>g%d</guid>"
            b"<pubDate>Mon, 06 Jan 2025 10:%02d:00 GMT</pubDate>"
            b"<description>x &lt;b&gt;y&lt;/b&gt;</description></item>"
        ) % (i, i, i, i % 60)

    body = rss(fill(unit, 5 * MB - 200))
    result = await in_worker(pool, "100,000 items", body)
    assert isinstance(result, ParsedFeed) and len(result.items) == MAX_ITEMS
    assert all(i.published.endswith(":59:00+00:00") for i in result.items[:5])  # newest first, from both ends


@in_module_loop
async def test_5_mb_of_tiny_items(pool):
    result = await in_worker(pool, "tiny items", rss(fill(lambda i: b"<item><guid>%d</guid></item>" % i, 5 * MB - 200)))
    assert isinstance(result, ParsedFeed) and len(result.items) == MAX_ITEMS
    assert result.items[0].key == "id:0" and result.items[-1].key.startswith("id:")


@in_module_loop
async def test_deeply_nested_xml_is_refused(pool):
    body = rss(b"<item><title>x</title>" + b"<a>" * 1_200_000 + b"</item>")
    result = await in_worker(pool, "1,200,000 nested elements", body)
    assert isinstance(result, FeedError) and str(result) == HOSTILE


@in_module_loop
async def test_millions_of_elements_outside_items_are_refused(pool):
    result = await in_worker(pool, "1,200,000 flat elements", rss(b"<x/>" * 1_200_000))
    assert isinstance(result, FeedError) and "more elements than any real feed" in str(result)


@in_module_loop
async def test_an_item_with_400000_attributes_is_left_out(pool):
    attributes = b" ".join(b'a%d="1"' % i for i in range(400_000))
    body = rss(b"<item " + attributes + b"><guid>big</guid></item>" + item("ok", "Fine").encode())
    result = await in_worker(pool, "400,000 attributes", body)
    assert isinstance(result, ParsedFeed) and [i.key for i in result.items] == ["id:ok"]


@in_module_loop
async def test_huge_titles_and_summaries_are_capped(pool):
    title, summary = b"T" * 2 * MB, b"&lt;b&gt;s&lt;/b&gt; " * 140_000
    body = rss(b"<item><guid>g</guid><title>" + title + b"</title><description>" + summary + b"</description></item>")
    result = await in_worker(pool, "2 MB title, 3 MB summary of markup", body)
    assert isinstance(result, ParsedFeed)
    assert len(result.items[0].title) == MAX_TITLE and len(result.items[0].summary) == MAX_SUMMARY


@in_module_loop
async def test_5_mb_of_entities_spread_over_items(pool):
    entities = b"&amp;" * 95_000
    body = rss(b"".join(
        b"<item><guid>%d</guid><description>%s</description></item>" % (i, entities) for i in range(10)
    ))
    result = await in_worker(pool, "5 MB of &amp;", body)
    assert isinstance(result, ParsedFeed) and len(result.items) == 10


@in_module_loop
async def test_a_large_broken_feed_dense_with_elements(pool):
    start = b'<rss version="2.0"><channel><title>t & t</title><item><title>x</title>'
    body = (start + b"<a/>" * 55_000 + b"</item>" + b"<item><title>y</title></item>" * 900)[:256_000]
    result = await in_worker(pool, "256 KB broken, 55,000 elements", body)
    assert isinstance(result, ParsedFeed)


@in_module_loop
async def test_json_hostile_cases(pool):
    items = [{"id": str(i), "title": f"t{i}", "url": f"https://j.example/{i}", "summary": "x"} for i in range(60_000)]
    body = json.dumps({"version": "https://jsonfeed.org/version/1.1", "title": "j", "items": items}).encode()[: 5 * MB]
    assert isinstance(await in_worker(pool, "JSON cut at 5 MB", body, "application/feed+json"), NotAFeed)
    body = json.dumps({"version": "https://jsonfeed.org/version/1.1", "title": "j", "items": items[:45_000]}).encode()
    result = await in_worker(pool, "JSON Feed of 45,000 items", body, "application/feed+json")
    assert isinstance(result, ParsedFeed) and len(result.items) == MAX_ITEMS
    deep = await in_worker(pool, "5 MB of [", b"[" * 5 * MB, "application/json")
    assert isinstance(deep, NotAFeed) and "nested far too deeply" in str(deep)


@in_module_loop
async def test_a_hostile_web_page_is_cheap_to_discover_nothing_in(pool):
    body = b"<!doctype html><html><head></head><body>" + b"<div>" * 1_000_000
    result = await in_worker(pool, "5 MB page of nested divs", body, "text/html")
    assert isinstance(result, NotAFeed) and "links to no feed" in str(result)


@in_module_loop
async def test_a_feed_job_past_its_time_limit_is_killed(pool):
    await in_worker(pool, "warm-up", fixture("rss2.xml"))
    pid = pool.pids[0]
    body = rss(fill(lambda i: b"<item><guid>%d</guid></item>" % i, 4 * MB))
    with pytest.raises(ArticleJobError, match=r"Reading the feed took longer than 0\.01 s"):
        await pool.parse_feed(body, url=URL, content_type="application/xml", charset=None, discover=False, timeout=0.01)
    for _ in range(100):
        if not Path(f"/proc/{pid}").exists():
            break
        await asyncio.sleep(0.05)
    assert not Path(f"/proc/{pid}").exists()
    assert isinstance(await in_worker(pool, "after a kill", fixture("atom.xml")), ParsedFeed)  # a fresh worker


@in_module_loop
async def test_a_feed_needing_more_memory_than_the_cap_fails_in_the_worker():
    workers = ArticleWorkers(1, memory_limit=200 * 1024 * 1024)  # the worker's imports fit; this feed does not
    body = rss(fill(lambda i: b"<item><title>Item %d</title><guid>g%d</guid></item>" % (i, i), 5 * MB - 200))
    try:
        with pytest.raises(ArticleJobError, match="more memory than I allow for one feed"):
            await workers.parse_feed(body, url=URL, content_type="text/xml", charset=None, discover=False, timeout=30)
        assert workers.killed == 1
    finally:
        await workers.close()


def _window_feed(numbers, *, nodes: int = 8, dated: bool = True, undated_first: bool = False) -> bytes:
    """Items g<n> in the order given, each of about `nodes` elements, dated n hours on."""
    items = []
    for n in numbers:
        padding = "".join(f"<category>c{k}</category>" for k in range(nodes - 6))
        when = f"<pubDate>{formatdate(1_600_000_000 + n * 3600, usegmt=True)}</pubDate>" if dated else ""
        items.append(f"<item><guid>g{n}</guid><title>Item {n}</title>{when}{padding}</item>")
    if undated_first:
        items[0] = items[0].replace("<pubDate>", "<x>", 1).replace("</pubDate>", "</x>", 1)
    return rss("".join(items))


@pytest.mark.parametrize(
    ("total", "nodes", "dated"),
    [(600, 60, True), (1500, 8, False)],  # heavy enough for the node budget; longer than READ_ITEMS
)
def test_one_new_item_in_a_long_feed_brings_no_old_one_into_view(total, nodes, dated):
    """The items read of a long feed are one run from its newest end: when it adds an item and
    drops its oldest, only the added item is new (a window from both ends let middle items in)."""
    before = list(range(total, 0, -1))
    seen = {i.key for i in feed(_window_feed(before, nodes=nodes, dated=dated)).items}
    after = [total + 1, *before[:-1]]
    assert [i.key for i in feed(_window_feed(after, nodes=nodes, dated=dated)).items if i.key not in seen] == [
        f"id:g{total + 1}"
    ]


def test_an_oldest_first_feed_of_700_items_with_an_undated_one_shows_its_newest():
    before = list(range(1, 702))
    seen = {i.key for i in feed(_window_feed(before, undated_first=True)).items}
    got = [i.key for i in feed(_window_feed([*before[1:], 702], undated_first=True)).items]
    assert got[0] == "id:g702" and [k for k in got if k not in seen] == ["id:g702"]
