"""/article share and /article preview through discord.py's real machinery (SimCord), with
the article page served from 127.0.0.1 by the test itself."""

from __future__ import annotations

import re
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import discord
import pytest

from bot.config import Settings

ROOT = Path(__file__).resolve().parents[2]
FIXTURE = ROOT / "tests" / "fixtures" / "kubernetes_article.html"
TITLE = "The Internet Is Awesome! The Kubernetes Community Proves It"
FURNITURE = ("cookie", "Subscribe", "newsletter", "Sponsor of The New Stack", "Photo by Mohamed Nohassi")


# A page with no article: a video, a title, a player, and what the page says about itself.
VIDEO_DESCRIPTION = "Maintainers from three projects explain how they run their communities online, in 12 minutes."
VIDEO_PAGE = (
    '<html><head><title>Running a community online | VideoSite</title>'
    '<meta property="og:title" content="Running a community online">'
    f'<meta property="og:description" content="{VIDEO_DESCRIPTION}">'
    '</head><body><div id="player"><video src="/v.mp4"></video></div><p>Subscribe</p></body></html>'
)


class Pages(BaseHTTPRequestHandler):
    hits: list[str] = []  # noqa: RUF012 - reset per test by the fixture

    def do_GET(self) -> None:
        Pages.hits.append(self.path)
        if self.path.startswith("/kubernetes"):
            body = FIXTURE.read_bytes()
            self.send_response(200)
            self.send_header("Content-Type", "text/html; charset=utf-8")
        elif self.path == "/video":
            body = VIDEO_PAGE.encode()
            self.send_response(200)
            self.send_header("Content-Type", "text/html; charset=utf-8")
        elif self.path == "/report.pdf":
            body = b"%PDF-1.4 not an article"
            self.send_response(200)
            self.send_header("Content-Type", "application/pdf")
        else:
            body = b"<html><body>Not here</body></html>"
            self.send_response(404)
            self.send_header("Content-Type", "text/html")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args: object) -> None:
        pass


@pytest.fixture
def site():
    Pages.hits = []
    server = ThreadingHTTPServer(("127.0.0.1", 0), Pages)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield f"http://127.0.0.1:{server.server_port}"
    server.shutdown()
    server.server_close()


@pytest.fixture
def settings(db_path, database_url) -> Settings:
    # The test's pages live on 127.0.0.1, which only ALLOW_PRIVATE_URLS lets the bot fetch.
    return Settings(token=None, database_path=db_path, database_url=database_url, allow_private_urls=True)


@pytest.fixture
def world(env):
    guild = env.create_guild("Community")
    channel = guild.create_text_channel("general")
    member = guild.add_member(env.create_user("morgan"))
    return guild, channel, member


def public(channel) -> list[discord.Message]:
    return [m for m in channel.history() if not m.flags.ephemeral]


def seed_text() -> str:
    return (ROOT.parent / "shared" / "seeds" / "000_11f4120f99c6bafa.txt").read_text(encoding="utf-8") if (
        ROOT.parent / "shared" / "seeds"
    ).is_dir() else FIXTURE.read_text(encoding="utf-8")


def sentences(summary: str) -> list[str]:
    return [s for s in re.split(r"(?<=[.!?”\"])\s+(?=[A-Z“\"])", summary) if s]


def first_answer_type(env) -> int:
    """The type of the bot's first interaction callback (5 = deferred)."""
    return next(r.json["type"] for r in env.http_requests if r.path.endswith("/callback"))


async def test_preview_is_private_deferred_and_carries_the_article_not_the_furniture(world, site, env):
    _, channel, member = world
    result = await member.slash(channel, "article preview", url=f"{site}/kubernetes-community")
    assert first_answer_type(env) == 5  # deferred before the fetch: Discord's 3 s are safe
    assert result.ephemeral
    embed = (result.followups[-1] if result.followups else result.response).embeds[0]
    assert embed.title == TITLE
    assert public(channel) == []
    body = seed_text()
    parts = sentences(embed.description)
    assert 3 <= len(parts) <= 5
    for part in parts:
        assert part in body, part
    text = str(embed.to_dict())
    for furniture in FURNITURE:
        assert furniture not in text


async def test_share_posts_publicly_once_and_the_cache_saves_a_second_fetch(world, site):
    _, channel, member = world
    first = await member.slash(channel, "article share", url=f"{site}/kubernetes-community")
    assert first.ephemeral and "Shared:" in (first.followups[-1] if first.followups else first.response).content
    posted = public(channel)
    assert len(posted) == 1 and posted[0].embeds[0].title == TITLE
    assert "Shared by" in posted[0].embeds[0].footer.text
    await member.slash(channel, "article share", url=f"{site}/kubernetes-community")
    assert len(public(channel)) == 2
    assert len(Pages.hits) == 1  # the second share came from the cache


async def test_share_into_a_channel_the_member_cannot_post_in_is_refused(world, site, env):
    guild, channel, member = world
    locked = guild.create_text_channel(
        "news", overwrites={guild.default_role: discord.PermissionOverwrite(send_messages=False)}
    )
    result = await member.slash(channel, "article share", url=f"{site}/kubernetes-community", channel=locked)
    assert result.ephemeral and "can't send messages" in result.response.content
    assert Pages.hits == [] and public(locked) == []
    assert env.errors


@pytest.mark.parametrize(("path", "expect"), [("/missing", "404"), ("/report.pdf", "not an article page")])
async def test_a_page_that_is_not_an_article_gets_a_private_explanation(world, site, env, path, expect):
    _, channel, member = world
    result = await member.slash(channel, "article share", url=f"{site}{path}")
    reply = (result.followups[-1] if result.followups else result.response).content
    assert result.ephemeral and expect in reply
    assert public(channel) == []
    assert env.errors


async def test_a_page_without_an_article_is_posted_as_it_describes_itself_clearly_marked(world, site):
    """A video page: no error and no notice picked as a summary, but the page's own words
    (og:description), marked as that, with no reading time."""
    _, channel, member = world
    result = await member.slash(channel, "article share", url=f"{site}/video")
    assert "Shared:" in (result.followups[-1] if result.followups else result.response).content
    (posted,) = public(channel)
    embed = posted.embeds[0]
    assert embed.title == "Running a community online"
    assert embed.description.startswith("*No article on this page. This is how the page describes itself:*")
    assert embed.description.endswith(VIDEO_DESCRIPTION)
    assert "the page's own description" in embed.footer.text
    assert "Reading time" not in [field.name for field in embed.fields]
