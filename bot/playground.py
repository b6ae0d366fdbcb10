"""`python run.py playground`: the real bot against SimCord's simulated Discord, in a browser.

Same cogs, same database code as on Discord; no token, no network. SimCord serves a local
page of #general with a composer, where a person can run every command and click the vote
buttons as the members below.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import signal
import tempfile
import threading
import time
import webbrowser
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import discord

from .client import QuorumBot
from .config import Settings
from .seed import (
    RANKED_ANSWERS,
    RANKED_QUESTION,
    SEED_ANSWERS,
    SEED_QUESTION,
    WEEKLY_ANSWERS,
    WEEKLY_QUESTION,
    WELCOME,
)

log = logging.getLogger(__name__)

BOT_NAME = "Quorum"


def name_the_bot(env) -> None:  # type: ignore[no-untyped-def]
    """SimCord's bot account is called "TestBot" until renamed; rename it before the bot
    connects and before any server is made (its managed role takes the account's name)."""
    env.backend.edit_bot_profile(BOT_NAME)


async def build_world(env):  # type: ignore[no-untyped-def]
    """A server with #general and #news, a moderator, members, the seed poll with votes, a
    ranked poll and a weekly check-in scheduled to start in an hour."""
    guild = env.create_guild("Quorum Playground")
    general = guild.create_text_channel("general", topic="Try /poll create, or vote below")
    news = guild.create_text_channel("news", topic="Announcements; post a poll here with channel:#news")
    mods = guild.create_role("Moderators", permissions=discord.Permissions(manage_guild=True))
    moderator = guild.add_member(env.create_user("moderator", global_name="Morgan (moderator)"), roles=[mods])
    members = [
        guild.add_member(env.create_user(name, global_name=name.title()))
        for name in ("alice", "bob", "carol", "dave")
    ]
    # The preview shows one channel and no channel list: #news appears in #general as a
    # mention (and in /poll create's channel picker), which is how a newcomer finds it.
    await moderator.send(general, WELCOME.format(news=f"<#{news.id}>"))
    await moderator.slash(general, "poll create", question=SEED_QUESTION, options=" | ".join(SEED_ANSWERS))
    poll = general.last_message
    assert poll is not None
    for member, option in zip(members[:3], (1, 0, 1), strict=True):
        await member.click(poll, custom_id=f"quorum:vote:1:{option}")
    await moderator.slash(general, "poll create", question=RANKED_QUESTION, options=" | ".join(RANKED_ANSWERS),
                          ranked=True, duration="1w")
    await moderator.slash(general, "poll create", question=WEEKLY_QUESTION, options=" | ".join(WEEKLY_ANSWERS),
                          starts="1h", duration="1d", repeat="1w")
    return general, [moderator, *members]


async def _until_stopped() -> None:
    """Wait for Ctrl-C or SIGTERM, then return so everything closes in order."""
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    try:
        await stop.wait()
    finally:
        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.remove_signal_handler(sig)


SEED_ARTICLE = Path(__file__).resolve().parents[1] / "tests" / "fixtures" / "kubernetes_article.html"


@contextlib.contextmanager
def _serve_seed_article() -> Iterator[str | None]:
    """Serve the seed article page on 127.0.0.1 so /article share works offline.

    The page lives with the tests (a checkout has it); without it there is just no example.
    """
    if not SEED_ARTICLE.is_file():
        yield None
        return
    page = SEED_ARTICLE.read_bytes()

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            self.send_response(200)
            self.send_header("Content-Type", "text/html; charset=utf-8")
            self.send_header("Content-Length", str(len(page)))
            self.end_headers()
            self.wfile.write(page)

        def log_message(self, *args: object) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        yield f"http://127.0.0.1:{server.server_port}/2020/05/18/the-internet-is-awesome-kubernetes-community"
    finally:
        server.shutdown()
        server.server_close()


async def run_playground(*, port: int | None, database: Path | None, open_browser: bool) -> None:
    from simcord import Env

    with contextlib.ExitStack() as stack:
        if database is None:
            database = Path(stack.enter_context(tempfile.TemporaryDirectory(prefix="quorum-"))) / "playground.sqlite3"
        article_url = stack.enter_context(_serve_seed_article())
        # The seed article is served from 127.0.0.1, which only this setting lets the bot
        # fetch; the playground runs nothing but loopback, so it is safe here.
        settings = Settings(token=None, database_path=database, allow_private_urls=True)
        bot = QuorumBot(settings, clock=time.time)
        env = Env(bot, settle_timeout=10.0, shard_count=1)
        name_the_bot(env)
        await env.start()
        try:
            general, viewers = await build_world(env)
            async with env.preview(general, viewers=viewers, layout="channel", port=port) as preview:
                print("Quorum playground is running. Open this page (Ctrl-C to stop):", flush=True)
                print(preview.url, flush=True)
                if article_url:
                    print(f"Try /article share with the example article: {article_url}", flush=True)
                if open_browser:
                    with contextlib.suppress(Exception):
                        webbrowser.open(preview.url)
                await _until_stopped()
        finally:
            await env.shutdown()  # SimCord detaches the bot without closing it
            await bot.close_resources()
