"""/feed and the feed poster through discord.py's real machinery (SimCord), on both backends, in
virtual time. Feeds and their articles' pages are served from 127.0.0.1 by this module's own
web server (one for the module, its answers set per test)."""

from __future__ import annotations

import html
import itertools
import logging
import re
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from email.utils import formatdate
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import discord
import pytest
from simcord.backend.models.channel import Overwrite
from simcord.enums import OverwriteType

from bot.config import Settings
from bot.scheduler import MAX_SLEEP
from bot.tree import UserFacingError
from cogs._feed_render import NO_ARTICLE_NOTE, UNREADABLE_NOTE, post_marker

HOUR = 3600
DAY = 24 * HOUR

# One check of a feed, its posts and the first start of the worker process take real time: more
# than the default 3 s of settling on a busy machine.
pytestmark = pytest.mark.simcord(settle_timeout=10.0)


# ------------------------------------------------------------------------ the web server


@dataclass
class Answer:
    status: int = 200
    body: bytes = b""
    content_type: str = "text/html; charset=utf-8"
    headers: dict[str, str] = field(default_factory=dict)


class Site:
    """What the server answers, by path; each test sets its own (reset between tests)."""

    def __init__(self) -> None:
        self.base = ""
        self.answers: dict[str, Answer] = {}
        self.hits: list[str] = []
        self.lock = threading.Lock()

    def reset(self) -> None:
        with self.lock:
            self.answers = {}
            self.hits = []

    def serve(self, path: str, answer: Answer) -> None:
        with self.lock:
            self.answers[path] = answer

    def url(self, path: str) -> str:
        return self.base + path

    def hits_of(self, path: str) -> int:
        with self.lock:
            return sum(1 for hit in self.hits if hit == path)


SITE = Site()


class Handler(BaseHTTPRequestHandler):
    def do_GET(self) -> None:
        with SITE.lock:
            SITE.hits.append(self.path)
            answer = SITE.answers.get(self.path, Answer(404, b"<html><body>Not here</body></html>"))
        self.send_response(answer.status)
        self.send_header("Content-Type", answer.content_type)
        for name, value in answer.headers.items():
            self.send_header(name, value)
        self.send_header("Content-Length", str(len(answer.body)))
        self.end_headers()
        self.wfile.write(answer.body)

    def log_message(self, *args: object) -> None:
        pass


@pytest.fixture(scope="module")
def server() -> Iterator[Site]:
    httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=httpd.serve_forever, daemon=True).start()
    SITE.base = f"http://127.0.0.1:{httpd.server_port}"
    yield SITE
    httpd.shutdown()
    httpd.server_close()


@pytest.fixture
def site(server: Site) -> Site:
    server.reset()
    return server


# ------------------------------------------------------------------------ feeds and pages

WORDS = ("community", "maintainers", "release", "notes", "contributors", "review", "meetup", "roadmap", "security")


def article_page(title: str, n: int) -> bytes:
    """An article page the extractor reads: a title and six paragraphs of plain sentences."""
    paragraphs = []
    for p in range(6):
        sentences = []
        for s in range(4):
            w = [WORDS[(n + p * 3 + s * 7 + k) % len(WORDS)] for k in range(6)]
            sentences.append(
                f"The {w[0]} team said the {w[1]} and the {w[2]} of story {n} moved {w[3]} in part {p},"
                f" with {w[4]} {w[5]} ahead."
            )
        paragraphs.append("<p>" + " ".join(sentences) + "</p>")
    escaped = html.escape(title)
    return (
        f"<html><head><title>{escaped}</title><meta property='og:title' content='{escaped}'>"
        f"<meta property='og:site_name' content='Example Blog'></head><body><article><h1>{escaped}</h1>"
        f"{''.join(paragraphs)}</article></body></html>"
    ).encode()


@dataclass
class Item:
    guid: str
    title: str
    link: str
    summary: str
    published: float


class Blog:
    """A site with an RSS 2.0 feed; `publish` adds an item (and its article page)."""

    def __init__(self, site: Site, path: str = "/blog", title: str = "Example Blog") -> None:
        self.site, self.path, self.title = site, path, title
        self.items: list[Item] = []  # newest first, as feeds list them
        self.serve()

    @property
    def feed_path(self) -> str:
        return f"{self.path}/feed.xml"

    @property
    def url(self) -> str:
        return self.site.url(self.feed_path)

    def rss(self) -> bytes:
        entries = "".join(
            f"<item><guid>{html.escape(i.guid)}</guid><title>{html.escape(i.title)}</title>"
            f"<link>{html.escape(i.link)}</link><description>{html.escape(i.summary)}</description>"
            f"<pubDate>{formatdate(i.published, usegmt=True)}</pubDate></item>"
            for i in self.items
        )
        return (
            f'<?xml version="1.0" encoding="utf-8"?><rss version="2.0"><channel>'
            f"<title>{html.escape(self.title)}</title><link>{self.site.url(self.path)}</link>"
            f"<description>News</description>{entries}</channel></rss>"
        ).encode()

    def serve(self) -> None:
        self.site.serve(self.feed_path, Answer(body=self.rss(), content_type="application/rss+xml; charset=utf-8"))

    def publish(self, n: int, *, title: str | None = None, page: bool = True, summary: str | None = None) -> Item:
        title = title or f"Story {n} of {self.title}"
        path = f"{self.path}/posts/{n}"
        item = Item(
            guid=f"{self.path}-story-{n}",
            title=title,
            link=self.site.url(path),
            summary=summary if summary is not None else f"What the feed says of story {n}.",
            published=time.time() + n,
        )
        self.items.insert(0, item)
        if page:
            self.site.serve(path, Answer(body=article_page(title, n)))
        self.serve()
        return item


# ------------------------------------------------------------------------ the world


@pytest.fixture
def feed_options(request) -> dict:
    """Settings a test changes: `@pytest.mark.parametrize("feed_options", [{...}], indirect=True)`."""
    return getattr(request, "param", {})


@pytest.fixture
def settings(db_path, database_url, feed_options) -> Settings:
    # The test's feeds live on 127.0.0.1, which only ALLOW_PRIVATE_URLS lets the bot fetch.
    return Settings(
        token=None, database_path=db_path, database_url=database_url, allow_private_urls=True, **feed_options
    )


def public(channel) -> list[discord.Message]:
    return [m for m in channel.history() if not m.flags.ephemeral]


def reply_text(result) -> str:
    """What the member finally read: the last follow-up, else the response."""
    return (result.followups[-1] if result.followups else result.response).content or ""


def posts(env) -> list:
    return [r for r in env.http_requests if r.method == "POST" and r.path.endswith("/messages")]


class World:
    def __init__(self, env, site: Site, clock) -> None:
        self.env, self.site, self.clock = env, site, clock
        self.guild = env.create_guild("Community")
        self.general = self.guild.create_text_channel("general")
        self.news = self.guild.create_text_channel("news")
        self.mods = self.guild.create_role("Mods", permissions=discord.Permissions(manage_guild=True))
        self.mod = self.guild.add_member(env.create_user("mod"), roles=[self.mods])
        self.alice = self.guild.add_member(env.create_user("alice"))
        self.blog = Blog(site)

    @property
    def cog(self):
        return self.env.bot.get_cog("Feeds")

    @property
    def service(self):
        return self.cog.service

    def now(self) -> float:
        return self.env.bot.clock()

    async def add(self, url: str | None = None, *, actor=None, channel=None):
        options = {"url": url or self.blog.url}
        if channel is not None:
            options["channel"] = channel
        return await (actor or self.mod).slash(self.general, "feed add", **options)

    async def feeds(self):
        return await self.service.list(self.guild.id)

    async def feed(self, number: int = 1):
        return next(f for f in await self.feeds() if f.number == number)

    async def next_check(self) -> None:
        """Let virtual time pass until every feed not paused has been checked once more."""
        due = [f.next_check_at for f in await self.feeds() if f.paused_at is None]
        await self.env.advance_time(max(1.0, max(due) - self.now() + 1))

    async def jump_to_next_check(self) -> None:
        """As `next_check`, for a check hours away: the world's clock jumps to just before it
        (as over a suspended laptop), then the schedulers wake as they would. Every wake of
        theirs costs real time (the poll scheduler's every 15 s of virtual time on PostgreSQL),
        so a day of them would make the test slow."""
        wakes = MAX_SLEEP + 1  # the feed scheduler's longest sleep, on either backend
        due = min(f.next_check_at for f in await self.feeds() if f.paused_at is None)
        if due - self.now() > wakes:
            self.clock.offset += due - self.now() - wakes
        await self.env.advance_time(wakes + 1)


@pytest.fixture
def world(env, site, clock) -> World:
    return World(env, site, clock)


def assert_no_pings(env) -> None:
    """Every message the bot sent or answered with says it mentions nobody."""
    bodies = [r.json.get("data", r.json) for r in env.http_requests if isinstance(r.json, dict)]
    bodies = [b for b in bodies if isinstance(b, dict) and {"content", "embeds", "components"} & b.keys()]
    assert bodies
    for body in bodies:
        allowed = body.get("allowed_mentions")
        assert allowed is not None and allowed.get("parse") == [], body


def user_errors(env) -> list[BaseException]:
    """Errors routed to the tree's error handler; each must be one written for the member."""
    errors = env.errors
    for error in errors:
        assert isinstance(getattr(error, "original", error), UserFacingError), error
    return errors


def embed_size(embed: discord.Embed) -> int:
    """What Discord counts toward the 6,000 characters of a message's embeds."""
    size = len(embed.title or "") + len(embed.description or "")
    size += sum(len(f.name or "") + len(f.value or "") for f in embed.fields)
    size += len(embed.footer.text or "") if embed.footer else 0
    size += len(embed.author.name or "") if embed.author else 0
    return size


def within_limits(embeds: list[discord.Embed]) -> None:
    assert len(embeds) <= 10
    assert sum(embed_size(e) for e in embeds) <= 6000
    for embed in embeds:
        assert len(embed.title or "") <= 256 and len(embed.description or "") <= 4096
        assert len(embed.footer.text or "") <= 2048 if embed.footer else True
        assert len(embed.fields) <= 25
        for f in embed.fields:
            assert len(f.name or "") <= 256 and len(f.value or "") <= 1024


# ------------------------------------------------------------------------ adding


async def test_add_confirms_with_the_feeds_and_newest_items_titles_and_posts_nothing_old(world):
    for n in range(1, 4):
        world.blog.publish(n)
    result = await world.add(channel=world.news)
    types = [r.json["type"] for r in world.env.http_requests if r.path.endswith("/callback")]
    assert types[0] == 5  # deferred before the fetch: Discord's 3 s are safe
    assert result.ephemeral
    text = reply_text(result)
    assert "Following feed #1, **Example Blog**" in text
    assert "Its newest item is **Story 3 of Example Blog**" in text
    assert world.news.mention in text
    await world.next_check()
    await world.next_check()
    assert public(world.news) == [] and public(world.general) == []
    feed = await world.feed()
    assert feed.channel_id == world.news.id and feed.last_check_at is not None


async def test_a_page_that_links_its_feed_is_followed_through_it(world):
    world.blog.publish(1)
    world.site.serve("/blog/", Answer(body=(
        "<html><head><title>Example Blog</title><link rel='alternate' type='application/rss+xml'"
        f" href='{world.blog.feed_path}'></head><body><p>Welcome</p></body></html>"
    ).encode()))
    result = await world.add(world.site.url("/blog/"))
    assert f"(the feed that page links to: {world.blog.url.replace('://', chr(92) + '://')})" in reply_text(result)
    assert (await world.feed()).url == world.blog.url
    again = await world.add(world.blog.url)
    assert "already follows that feed: it is feed #1" in reply_text(again)
    user_errors(world.env)


async def test_a_new_item_is_posted_once_as_the_article_embed(world):
    world.blog.publish(1)
    await world.add()
    item = world.blog.publish(2)
    await world.next_check()
    (message,) = public(world.general)
    (embed,) = message.embeds
    assert embed.title == item.title
    assert embed.url == item.link
    assert re.fullmatch(r"From Example Blog \(feed #1, item \d+\) · extractive summary", embed.footer.text)
    assert "story 2" in embed.description and UNREADABLE_NOTE not in embed.description
    for _ in range(3):
        await world.next_check()
    assert len(public(world.general)) == 1
    assert world.site.hits_of("/blog/posts/2") == 1
    # Feeds have a worker process of their own: members' /article shares never queue behind them.
    assert len(world.env.bot.feed_workers.pids) == 1 and world.env.bot.article_workers.pids == []


async def test_new_items_are_posted_oldest_first(world):
    await world.add()
    for n in (1, 2, 3):
        world.blog.publish(n)
    await world.next_check()
    assert [m.embeds[0].title for m in public(world.general)] == [f"Story {n} of Example Blog" for n in (1, 2, 3)]


async def test_a_page_that_cannot_be_fetched_posts_the_feeds_own_text_marked_as_the_feeds(world):
    await world.add()
    item = world.blog.publish(1, page=False, summary="The feed's *own* summary <@&1> @everyone.")
    await world.next_check()
    (message,) = public(world.general)
    (embed,) = message.embeds
    assert embed.title == item.title and embed.url == item.link
    assert embed.description.startswith(UNREADABLE_NOTE)
    assert "The feed's \\*own\\* summary \\<@&1> \\@everyone." in embed.description
    assert re.fullmatch(r"From Example Blog \(feed #1, item \d+\) · the feed's own text", embed.footer.text)


async def test_a_page_with_no_article_posts_the_feeds_own_text(world):
    await world.add()
    item = world.blog.publish(1, page=False, summary="A talk about release notes, 12 minutes.")
    world.site.serve(  # a video page: no article, only how the page describes itself
        "/blog/posts/1",
        Answer(body=b"<html><head><title>Release notes, the talk | VideoSite</title>"
               b"<meta property='og:title' content='Release notes, the talk'>"
               b"<meta property='og:description' content='Two maintainers explain how they write release notes.'>"
               b"</head><body><div id='player'><video src='/v.mp4'></video></div><p>Subscribe</p></body></html>"),
    )
    await world.next_check()
    (message,) = public(world.general)
    embed = message.embeds[0]
    assert embed.title == item.title
    assert embed.description == f"{NO_ARTICLE_NOTE}\n\nA talk about release notes, 12 minutes."


async def test_a_send_that_fails_is_retried_and_the_feeds_later_items_wait_for_it(world):
    await world.add()
    for n in (1, 2, 3):
        world.blog.publish(n, page=False)
    # Every try discord.py makes of the first post (it retries a 500 itself) fails.
    world.env.inject_error("POST", "/channels/*/messages", status=500, times=None)
    await world.next_check()
    assert public(world.general) == []
    world.env.backend.faults.clear()
    await world.env.advance_time(2 * 60)
    assert [m.embeds[0].title for m in public(world.general)] == [f"Story {n} of Example Blog" for n in (1, 2, 3)]
    await world.next_check()
    assert len(public(world.general)) == 3


async def test_an_article_embed_discord_refuses_is_posted_as_the_feeds_own_text_once(world):
    await world.add()
    item = world.blog.publish(1)
    world.env.inject_error("POST", "/channels/*/messages", status=400, code=50035, message="Invalid Form Body")
    await world.next_check()
    (message,) = public(world.general)
    assert message.embeds[0].title == item.title and message.embeds[0].description.startswith(UNREADABLE_NOTE)
    await world.next_check()
    assert len(public(world.general)) == 1


@pytest.mark.parametrize("feed_options", [{"feed_max_posts": 2}], indirect=True)
async def test_at_most_feed_max_posts_per_check_the_rest_at_the_next(world):
    await world.add()
    for n in range(1, 6):
        world.blog.publish(n, page=False)
    titles = lambda: [m.embeds[0].title for m in public(world.general)]  # noqa: E731
    await world.next_check()
    assert titles() == ["Story 1 of Example Blog", "Story 2 of Example Blog"]
    await world.next_check()
    assert titles()[2:] == ["Story 3 of Example Blog", "Story 4 of Example Blog"]
    await world.next_check()
    assert titles()[4:] == ["Story 5 of Example Blog"]
    await world.next_check()
    assert len(titles()) == 5


async def test_the_same_feed_twice_in_a_channel_and_an_address_that_is_no_feed_are_refused(world):
    await world.add()
    again = await world.add()
    assert again.ephemeral and "already" in reply_text(again)
    world.site.serve("/plain", Answer(body=b"<html><head><title>Hi</title></head><body><p>Hello</p></body></html>"))
    not_a_feed = await world.add(world.site.url("/plain"))
    assert "feed" in reply_text(not_a_feed)
    elsewhere = await world.add(channel=world.news)
    assert "Following feed #2" in reply_text(elsewhere)  # the same feed in another channel is another feed
    assert [f.number for f in await world.feeds()] == [1, 2]
    user_errors(world.env)


# ------------------------------------------------------------------------ permissions


def _feed_command_id(world) -> int:
    commands = world.env.backend.visible_commands(user_id=world.mod.id, channel_id=world.general.id)
    return int(next(c["id"] for c in commands if c["name"] == "feed"))


async def test_feed_is_shown_to_manage_server_and_refused_to_others_even_when_opened(world):
    assert "feed add" in world.mod.available_commands(world.general)
    assert not any(name.startswith("feed") for name in world.alice.available_commands(world.general))
    await world.add()
    # A server may open /feed to everyone (Server Settings → Integrations): Quorum still checks.
    world.guild.set_command_permissions(_feed_command_id(world), {world.guild.default_role: True})
    for name, options in (
        ("feed add", {"url": world.blog.url, "channel": world.news}),
        ("feed remove", {"feed": "1"}),
        ("feed pause", {"feed": "1"}),
        ("feed resume", {"feed": "1"}),
    ):
        result = await world.alice.slash(world.general, name, **options)
        assert result.ephemeral and "Only members with the Manage Server permission" in reply_text(result), name
    listing = await world.alice.slash(world.general, "feed list")
    assert listing.ephemeral and "#1" in listing.response.embeds[0].description
    assert [f.number for f in await world.feeds()] == [1] and (await world.feed()).paused_at is None
    assert world.site.hits_of(world.blog.feed_path) == 1  # the refused add fetched nothing
    user_errors(world.env)


async def test_add_into_a_channel_the_bot_cannot_post_in_is_refused_before_fetching(world):
    locked = world.guild.create_text_channel(
        "locked", overwrites={world.guild.me: discord.PermissionOverwrite(embed_links=False)}
    )
    result = await world.add(channel=locked)
    assert result.ephemeral
    assert "I can't post a feed's items in" in reply_text(result) and "Embed Links" in reply_text(result)
    assert world.site.hits == [] and await world.feeds() == []
    user_errors(world.env)


async def test_add_into_a_channel_without_attach_files_is_accepted(world):
    # A feed's posts are embeds only: Attach Files (which polls' charts need) is not asked for.
    plain = world.guild.create_text_channel(
        "plain", overwrites={world.guild.me: discord.PermissionOverwrite(attach_files=False)}
    )
    result = await world.add(channel=plain)
    assert result.ephemeral and "Following" in reply_text(result), reply_text(result)
    assert [f.channel_id for f in await world.feeds()] == [plain.id]
    user_errors(world.env)


# ------------------------------------------------------------------------ list, remove, pause, resume


async def test_list_shows_number_channel_checks_and_state(world):
    empty = await world.mod.slash(world.general, "feed list")
    assert "/feed add" in empty.response.content
    world.blog.publish(1)
    await world.add(channel=world.news)
    other = Blog(world.site, "/other", "Other Site")
    await world.add(other.url)
    await world.mod.slash(world.general, "feed pause", feed="2")
    world.blog.publish(2)
    await world.next_check()
    result = await world.mod.slash(world.general, "feed list")
    assert result.ephemeral
    first, second = result.response.embeds[0].description.split("\n**#")
    assert first.startswith("**#1** Example Blog · " + world.news.mention + " · ok")
    assert "checked <t:" in first and "last new item <t:" in first
    assert second.startswith("2** Other Site · " + world.general.mention + f" · **paused** by {world.mod.mention}")
    assert "last new item none yet" in second


async def test_autocomplete_offers_feeds_by_number_title_and_address(world):
    await world.add()
    other = Blog(world.site, "/other", "Other Site")
    await world.add(other.url)
    choices = await world.mod.autocomplete(world.general, "feed remove", "feed", "")
    assert [c["value"] for c in choices] == ["1", "2"]
    assert choices[0]["name"] == f"#1 Example Blog · {world.blog.url}"
    assert [c["value"] for c in await world.mod.autocomplete(world.general, "feed pause", "feed", "Other")] == ["2"]
    assert [c["value"] for c in await world.mod.autocomplete(world.general, "feed resume", "feed", "/blog/")] == ["1"]


async def test_pause_and_resume_by_number_and_address_and_remove(world):
    await world.add()
    paused = await world.mod.slash(world.general, "feed pause", feed="1")
    assert "Feed #1 (**Example Blog**) is paused" in reply_text(paused)
    again = await world.mod.slash(world.general, "feed pause", feed=world.blog.url)
    assert "already paused" in reply_text(again)
    hits = world.site.hits_of(world.blog.feed_path)
    world.blog.publish(1)
    await world.env.advance_time(3 * world.env.bot.settings.feed_interval_seconds)
    assert public(world.general) == [] and world.site.hits_of(world.blog.feed_path) == hits  # not even checked
    resumed = await world.mod.slash(world.general, "feed resume", feed=world.blog.url)
    assert "Feed #1 (**Example Blog**) is resumed" in reply_text(resumed)
    assert "is not paused" in reply_text(await world.mod.slash(world.general, "feed resume", feed="#1"))
    world.blog.publish(2)
    await world.next_check()
    assert "Story 2 of Example Blog" in [m.embeds[0].title for m in public(world.general)]
    before = len(public(world.general))
    removed = await world.mod.slash(world.general, "feed remove", feed="#1")
    assert "Feed #1 (**Example Blog**) is removed" in reply_text(removed)
    assert await world.feeds() == []
    world.blog.publish(3)
    await world.env.advance_time(2 * world.env.bot.settings.feed_interval_seconds)
    assert len(public(world.general)) == before
    unknown = await world.mod.slash(world.general, "feed remove", feed="1")
    assert unknown.ephemeral and reply_text(unknown)
    user_errors(world.env)


# ------------------------------------------------------------------------ restarts and crashes


async def test_a_restart_between_two_checks_neither_duplicates_nor_loses(world, make_bot, clock):
    await world.add()
    world.blog.publish(1)
    await world.next_check()
    assert len(public(world.general)) == 1
    world.blog.publish(2)
    await world.env.restart_bot(make_bot())
    world.blog.publish(3)
    clock.offset += HOUR  # down for an hour meanwhile
    await world.env.restart_bot(make_bot())
    await world.next_check()
    await world.next_check()
    assert [m.embeds[0].title for m in public(world.general)] == [
        f"Story {n} of Example Blog" for n in (1, 2, 3)
    ]


async def test_a_crash_after_sending_but_before_recording_does_not_post_twice(world, make_bot):
    """What a crash between the send and `finish_post` leaves: the message in the channel, the
    item started (with its marker) but still pending."""
    await world.add()
    for n in range(1, 8):  # a busy channel: the search starts from when the post began
        await world.alice.send(world.general, f"chatter {n}")
    world.blog.publish(1)
    await world.next_check()
    [message] = [m for m in public(world.general) if m.embeds]
    feed = await world.feed()
    started = await world.env.bot.db.fetchone(
        "SELECT post_started_at, message_id, id FROM feed_items WHERE feed_id = ? AND state = 'posted'", (feed.id,)
    )
    assert started[0] is not None and started[1] == message.id

    def crash(conn):
        # Started, with the marker `start_post` recorded (what the message carries), not finished.
        conn.execute(
            "UPDATE feed_items SET state = 'pending', message_id = NULL, done_at = NULL, outcome = NULL,"
            " claim_until = NULL, claimed_by = NULL, post_marker = ? WHERE feed_id = ? AND state = 'posted'",
            (post_marker(feed, started[2]), feed.id),
        )

    await world.env.bot.db.write(crash)
    sent_before = len(posts(world.env))
    await world.env.restart_bot(make_bot())
    await world.next_check()
    assert len(posts(world.env)) == sent_before, "found, not sent again (not even deduplicated by its nonce)"
    assert [m.id for m in public(world.general) if m.embeds] == [message.id]
    recorded = await world.env.bot.db.fetchall(
        "SELECT state, message_id FROM feed_items WHERE feed_id = ? AND message_id IS NOT NULL", (feed.id,)
    )
    assert [tuple(r) for r in recorded] == [("posted", message.id)]


async def test_a_post_started_but_never_sent_is_sent_once_after_a_restart(world, make_bot):
    """The other side of a crash: started, nothing in the channel: the retry sends it."""
    await world.add()
    world.blog.publish(1)
    world.env.inject_error("POST", "/channels/*/messages", status=500, times=None)
    await world.next_check()
    assert public(world.general) == []
    world.env.backend.faults.clear()
    await world.env.restart_bot(make_bot())
    await world.next_check()
    await world.next_check()
    assert [m.embeds[0].title for m in public(world.general)] == ["Story 1 of Example Blog"]


# ------------------------------------------------------------------------ failures


async def test_a_failing_server_backs_off_then_the_feed_is_paused_with_one_notice(world, caplog):
    world.blog.publish(1)
    await world.add()
    world.site.serve(world.blog.feed_path, Answer(status=500, body=b"@everyone oops"))
    start = world.now()
    waits = []
    with caplog.at_level(logging.WARNING):
        while (feed := await world.feed()).paused_at is None:
            assert world.now() - start < 2 * DAY, "never paused"
            await world.jump_to_next_check()
            checked = await world.feed()
            if checked.failures and checked.paused_at is None:
                waits.append(checked.next_check_at - checked.last_check_at)
    # Each failure doubles the wait (±10 % jitter) up to 6 hours; paused after a day of them.
    interval = world.env.bot.settings.feed_interval_seconds
    assert len(waits) >= 5
    assert all(later > earlier or later > 5 * HOUR for earlier, later in itertools.pairwise(waits))
    assert waits[0] == pytest.approx(2 * interval, rel=0.11) and waits[-1] == pytest.approx(6 * HOUR, rel=0.11)
    assert world.now() - start >= DAY and feed.paused_by is None
    assert world.site.hits_of(world.blog.feed_path) == len(waits) + 2  # the add, the failures, the last
    [notice] = public(world.general)
    assert notice.content.startswith("Feed #1 (**Example Blog**) is paused: it failed for a day (last error: ")
    assert "500" in notice.content and "/feed resume feed:1" in notice.content
    assert any("paused" in r.getMessage() and "checks in a row failed" in r.getMessage() for r in caplog.records)
    hits = world.site.hits_of(world.blog.feed_path)
    world.clock.offset += DAY
    await world.env.advance_time(2 * world.env.bot.settings.feed_interval_seconds)
    assert len(public(world.general)) == 1 and world.site.hits_of(world.blog.feed_path) == hits
    listing = await world.mod.slash(world.general, "feed list")
    assert "**paused**" in listing.response.embeds[0].description and "checks in a row failed" in (
        listing.response.embeds[0].description
    )
    assert_no_pings(world.env)


async def test_a_pause_whose_notice_was_lost_to_a_stop_gets_it_after_a_restart(world, make_bot):
    await world.add()
    feed = await world.feed()

    def paused_by_a_check(conn):  # what a stop right after the check that paused it leaves
        conn.execute(
            "UPDATE feeds SET paused_at = ?, paused_reason = ?, failures = 9, last_error = ?, notice_sent_at = NULL"
            " WHERE id = ?",
            (world.now(), "9 checks in a row failed over 27 hours", "The feed answered 500 Internal Server Error.",
             feed.id),
        )

    await world.env.bot.db.write(paused_by_a_check)
    await world.env.restart_bot(make_bot())
    await world.env.advance_time(5)
    await world.env.restart_bot(make_bot())
    await world.env.advance_time(5)
    [notice] = public(world.general)
    assert notice.content.startswith("Feed #1 (**Example Blog**) is paused: it failed for a day (last error: The feed")


async def test_a_deleted_channel_pauses_the_feed_and_is_logged(world, caplog):
    await world.add(channel=world.news)
    world.env.backend.delete_channel(world.news.id)
    await world.env.settle()
    world.blog.publish(1)
    with caplog.at_level(logging.ERROR, logger="cogs.feeds"):
        await world.next_check()
    feed = await world.feed()
    assert feed.paused_at is not None and feed.paused_reason == "the channel no longer exists"
    assert any("paused: the channel no longer exists" in r.getMessage() for r in caplog.records)
    assert public(world.general) == []
    hits = world.site.hits_of(world.blog.feed_path)
    await world.env.advance_time(2 * world.env.bot.settings.feed_interval_seconds)
    assert world.site.hits_of(world.blog.feed_path) == hits  # paused: no longer checked
    refused = await world.mod.slash(world.general, "feed resume", feed="1")
    assert "can't be resumed: the channel no longer exists" in reply_text(refused)
    user_errors(world.env)


async def test_a_lost_permission_pauses_the_feed_and_resume_posts_what_waited(world):
    await world.add()
    world.env.backend.set_overwrite(
        world.general.id,
        Overwrite(target_id=world.env.bot.user.id, type=OverwriteType.MEMBER,
                  deny=discord.Permissions(send_messages=True).value),
    )
    await world.env.settle()
    world.blog.publish(1)
    await world.next_check()
    feed = await world.feed()
    assert feed.paused_reason == "Quorum no longer has the Send Messages permission there"
    assert public(world.general) == []
    world.env.backend.set_overwrite(
        world.general.id, Overwrite(target_id=world.env.bot.user.id, type=OverwriteType.MEMBER)
    )
    await world.env.settle()
    await world.mod.slash(world.general, "feed resume", feed="1")
    await world.next_check()
    assert [m.embeds[0].title for m in public(world.general)] == ["Story 1 of Example Blog"]


async def test_a_forbidden_send_pauses_the_feed_without_retrying(world, caplog):
    await world.add()
    world.blog.publish(1)
    world.env.inject_error("POST", "/channels/*/messages", status=403, code=50013, message="Missing Permissions",
                           times=None)
    with caplog.at_level(logging.ERROR, logger="cogs.feeds"):
        await world.next_check()
    feed = await world.feed()
    assert feed.paused_at is not None and "403" in feed.paused_reason
    sent = len(posts(world.env))
    await world.env.advance_time(2 * world.env.bot.settings.feed_interval_seconds)
    assert len(posts(world.env)) == sent
    assert any("paused" in r.getMessage() for r in caplog.records)


# ------------------------------------------------------------------------ hostile text and limits

HOSTILE = (
    "**bold** __under__ ~~gone~~ ||spoiler|| `code` [link](https://evil.example) <@&1> <#2> @everyone @here "
    "# heading\n> quote\n1. list \u202eesrever\u202c zero\u200bwidth "
)


async def test_list_of_fifty_feeds_with_hostile_titles_stays_within_discords_limits(world):
    for n in range(50):
        blog = Blog(world.site, f"/b{n}", f"{n:02d} {HOSTILE * 20}")
        result = await world.add(blog.url, channel=world.news if n % 2 else None)
        assert "Following feed" in reply_text(result), reply_text(result)
    feeds = await world.feeds()
    for feed in feeds[:20]:
        await world.service.pause_for(feed.id, HOSTILE * 10)
    for number in range(21, 36):
        await world.mod.slash(world.general, "feed pause", feed=str(number))
    started = time.perf_counter()
    result = await world.mod.slash(world.general, "feed list")
    elapsed = time.perf_counter() - started
    messages = [result.response, *result.followups]
    shown = ""
    for message in messages:
        assert message.flags.ephemeral
        within_limits(message.embeds)
        shown += "\n".join(e.description for e in message.embeds) + "\n"
    for n in range(1, 51):
        assert f"**#{n}** " in shown
    assert "@everyone" not in shown.replace("\\@everyone", "") and "\u202e" not in shown
    assert "**bold**" not in shown and "\\*\\*bold\\*\\*" in shown
    print(f"/feed list of 50 hostile feeds: {len(messages)} messages, {len(shown)} characters, {elapsed:.3f} s")
    choices = await world.mod.autocomplete(world.general, "feed remove", "feed", "")
    assert len(choices) == 25 and all(1 <= len(c["name"]) <= 100 and "\n" not in c["name"] for c in choices)


async def test_a_hostile_item_is_escaped_and_within_embed_limits(world):
    await world.add()
    huge = HOSTILE * 2000  # ~250,000 characters of markup
    world.blog.publish(1, page=False, title=HOSTILE * 30, summary=huge)
    await world.next_check()
    (message,) = public(world.general)
    within_limits(message.embeds)
    embed = message.embeds[0]
    assert embed.description.startswith(UNREADABLE_NOTE)
    assert "**bold**" not in embed.title and "\\@everyone" in embed.description


async def test_no_message_can_ping_anyone(world):
    world.blog.publish(1)
    await world.add()
    world.blog.publish(2, page=False, title="@everyone <@&1> news", summary="@here <@1>")
    world.blog.publish(3)
    await world.next_check()
    await world.mod.slash(world.general, "feed list")
    await world.mod.slash(world.general, "feed pause", feed="1")
    assert len(public(world.general)) == 2
    assert_no_pings(world.env)


async def test_two_items_sharing_a_link_are_told_apart_after_a_crash(world, make_bot):
    """Episodes of a podcast (or entries of a status page) may share one link: the message an
    earlier attempt sent is recognised by the item it carries, not by its link."""
    await world.add()
    link = world.site.url("/blog/posts/shared")
    world.site.serve("/blog/posts/shared", Answer(body=article_page("Shared page", 1)))
    for n in (1, 2):
        world.blog.items.insert(0, Item(guid=f"g-{n}", title=f"Episode {n}", link=link, summary=f"ep {n}",
                                        published=time.time() + n))
    world.blog.serve()
    await world.next_check()
    assert len([m for m in public(world.general) if m.embeds]) == 2
    feed = await world.feed()
    rows = await world.env.bot.db.fetchall(
        "SELECT id, message_id FROM feed_items WHERE feed_id = ? AND state = 'posted' ORDER BY seq", (feed.id,)
    )
    second_id, second_message = rows[1]
    # The second was started, and the process died before Discord made its message.
    await world.env.bot.http.delete_message(world.general.id, second_message)

    def crash(conn):
        conn.execute(
            "UPDATE feed_items SET state = 'pending', message_id = NULL, done_at = NULL, outcome = NULL,"
            " claim_until = NULL, claimed_by = NULL, post_marker = ? WHERE id = ?",
            (post_marker(feed, second_id), second_id),
        )

    await world.env.bot.db.write(crash)
    await world.env.restart_bot(make_bot())
    await world.next_check()
    await world.next_check()
    assert [m.embeds[0].footer.text.startswith("From ") for m in public(world.general) if m.embeds] == [True, True]
    recorded = await world.env.bot.db.fetchall(
        "SELECT message_id FROM feed_items WHERE feed_id = ? AND state = 'posted' ORDER BY seq", (feed.id,)
    )
    assert len({r[0] for r in recorded}) == 2, "each item has a message of its own"


async def test_an_address_that_redirects_to_a_followed_feed_is_that_feed(world):
    world.blog.publish(1)
    world.site.serve("/old-feed", Answer(status=301, headers={"Location": world.blog.url}))
    await world.add()
    second = await world.add(world.site.url("/old-feed"))
    assert "already follows that feed: it is feed #1" in reply_text(second)
    assert len(await world.feeds()) == 1
    user_errors(world.env)
