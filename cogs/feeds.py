"""/feed commands and the poster that checks feeds and posts their new items: parse, call the
feed service, render. No SQL here.

Each new item is posted once: the service claims it for this process, `start_post` records
the attempt (and what the message will carry) before anything is sent, the message goes out
with the item's nonce, and `finish_post` records it. A retry after a crash first looks in the
channel for the message an earlier attempt sent (as poll announcements do).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections import defaultdict
from collections.abc import Iterator
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

import discord
from discord import app_commands
from discord.ext import commands

from bot.articles.repository import ArticleCache
from bot.articles.service import DESCRIBED, ArticleService
from bot.db import StorageUnavailable
from bot.feeds.fetch import HostLimiter, LoadedFeed, load_feed
from bot.feeds.models import Feed, FeedError
from bot.feeds.repository import FeedRepository
from bot.feeds.service import FeedService, PendingPost
from bot.markdown import escape
from bot.scheduler import MAX_SLEEP, DeadlineScheduler
from bot.tree import NO_MENTIONS, UserFacingError, send_ephemeral

from . import _feed_render as render
from ._checks import postable_channel
from .articles import article_embed

if TYPE_CHECKING:
    from bot.client import QuorumBot

log = logging.getLogger(__name__)

# What the bot needs in a feed's channel to post there and, after a crash, to look for what it
# sent. (No attachments: a feed post is one embed.)
POST_PERMISSIONS = ("view_channel", "send_messages", "embed_links", "read_message_history")
# Feeds checked per round of a pass; posts claimed per round.
CHECK_BATCH = 100
POST_BATCH = 100
# Item pages fetched and summarised at once, over all feeds (the feed worker pool has one
# process: more would only queue there).
PAGE_CONCURRENCY = 2
# A post that failed for a reason that may pass (Discord 5xx, a timeout): tried again this much
# later, times its attempts (the service gives it up after its MAX_POST_ATTEMPTS).
POST_RETRY = 60.0
# Its server is not available to this process right now (an outage): look again then.
POSTPONE = 60.0


@contextlib.contextmanager
def _said_to_the_member() -> Iterator[None]:
    """The feed service's errors are written for the moderator: shown as they are."""
    try:
        yield
    except FeedError as error:
        raise UserFacingError(str(error)) from error


def _require_manager(interaction: discord.Interaction, action: str) -> None:
    # Checked here as well as in the command's default permissions: a server can open /feed to
    # everyone in its Integrations settings, and that must not let anyone add or remove feeds.
    if not interaction.permissions.manage_guild:
        raise UserFacingError(f"Only members with the Manage Server permission can {action}.")


class Feeds(commands.Cog):
    feed = app_commands.Group(
        name="feed",
        description="Follow RSS, Atom and JSON feeds in a channel",
        guild_only=True,
        # Feeds are a moderator's tool: the whole group (Discord sets this per top-level command)
        # is shown to Manage Server by default; servers may open it further.
        default_permissions=discord.Permissions(manage_guild=True),
    )

    def __init__(self, bot: QuorumBot) -> None:
        self.bot = bot
        settings = bot.settings
        self.hosts = HostLimiter(per_host=2)
        self.service = FeedService(
            FeedRepository(bot.db),
            bot.clock,
            self._load,
            interval=settings.feed_interval_seconds,
            max_posts=settings.feed_max_posts,
        )
        # Pages of items get their own service over their own worker pool: a burst of new items
        # never makes a member's /article share wait behind them. The cache is shared, so an
        # article shared by a member and listed in a feed is summarised once.
        self.articles = ArticleService(
            ArticleCache(bot.db),
            bot.clock,
            bot.feed_workers,
            max_jobs=PAGE_CONCURRENCY,
            allow_private=settings.allow_private_urls,
            cache_hours=settings.article_cache_hours,
            summary_api_url=settings.summary_api_url,
            summary_api_key=settings.summary_api_key,
            summary_model=settings.summary_model,
        )
        self._pages = asyncio.Semaphore(PAGE_CONCURRENCY)
        self.scheduler = DeadlineScheduler(
            next_deadline=self._next_deadline,
            run_due=self.run_due,
            clock=bot.clock,
            name="feeds",
            # Not SHARED_MAX_SLEEP even on PostgreSQL: a feed is checked by the process running
            # its server's shard, which is also the one its /feed commands reach (and they
            # poke this scheduler), so no other process adds work this one must look for.
            max_sleep=MAX_SLEEP,
        )
        self._took_back_claims = False
        self._sent_missed_notices = False
        self._starter: asyncio.Task[None] | None = None

    async def _load(
        self, url: str, *, etag: str | None, last_modified: str | None, discover: bool, body_hash: str | None
    ) -> LoadedFeed:
        return await load_feed(
            url,
            workers=self.bot.feed_workers,
            hosts=self.hosts,
            etag=etag,
            last_modified=last_modified,
            allow_private=self.bot.settings.allow_private_urls,
            discover=discover,
            body_hash=body_hash,
        )

    async def cog_load(self) -> None:
        self._starter = asyncio.get_running_loop().create_task(self._start_when_ready())

    async def _start_when_ready(self) -> None:
        # Posting needs a connected bot (its channels and permissions).
        await self.bot.wait_until_ready()
        self.scheduler.start()

    async def cog_unload(self) -> None:
        if self._starter is not None:
            self._starter.cancel()
        await self.scheduler.stop()

    # ================================================================ the poster

    async def _take_back_claims(self) -> None:
        """Take back the checks and posts earlier copies of this process had claimed when they
        stopped (once no copy still runs; tried again each time the scheduler looks until then)."""
        if self._took_back_claims:
            return
        try:
            if not await self.bot.db.hold_instance_lock(self.bot.instance_name):
                log.info("another live process runs %s; leaving its feed claims to it", self.bot.instance_name)
                return
            await self.service.reclaim_own(instance=self.bot.instance_name, owner=self.bot.claim_owner)
            self._took_back_claims = True
        except Exception:  # the leases run out by themselves; the poster must go on regardless
            log.warning("could not take back this process's earlier feed claims", exc_info=True)

    async def _next_deadline(self) -> float | None:
        """The scheduler's look (every wake), after what is owed since the last stop."""
        await self._take_back_claims()
        shards = self.bot.settings.own_shards
        if not self._sent_missed_notices:
            # Paused for failing by a check whose report was lost to a stop: notices owed.
            for feed in await self.service.unnoticed(shards=shards):
                await self._send_paused_notice(feed)
            self._sent_missed_notices = True
        return await self.service.next_deadline(shards=shards)

    async def run_due(self) -> None:
        """The scheduler's pass, when something is due: check the feeds that are due (this
        process's servers), tell the channels of feeds paused for failing, post what the checks
        released."""
        owner, shards = self.bot.claim_owner, self.bot.settings.own_shards
        while True:
            report = await self.service.check_due(owner=owner, limit=CHECK_BATCH, shards=shards)
            for feed in report.paused_for_failing:
                await self._send_paused_notice(feed)
            await self._post_claimed(owner, shards)
            if report.claimed < CHECK_BATCH:
                break

    async def _post_claimed(self, owner: str, shards: tuple[int, tuple[int, ...]] | None) -> None:
        """Post the items that may be posted now (each check releases at most FEED_MAX_POSTS
        of a feed's new items; retries come due): oldest first within a feed, feeds at the
        same time."""
        while posts := await self.service.claim_posts(owner=owner, limit=POST_BATCH, shards=shards):
            by_feed: dict[int, list[PendingPost]] = defaultdict(list)
            for post in posts:
                by_feed[post.feed.id].append(post)
            await asyncio.gather(*(self._post_in_order(batch) for batch in by_feed.values()))

    async def _post_in_order(self, posts: list[PendingPost]) -> None:
        """One feed's claimed items, oldest first. When one can't be posted now, the later ones
        wait as long as it does (not counted as attempts), so they never pass it."""
        for index, post in enumerate(posts):
            try:
                wait_until = await self._post_one(post)
            except StorageUnavailable:  # the database logged the incident once; the leases run out
                log.debug("feed %s: the database can't store writes; its posts will be retried", post.feed.id)
                return
            if wait_until is not None:
                for later in posts[index + 1:]:
                    await self.service.postpone_post(later, retry_at=wait_until)
                return

    async def _post_one(self, post: PendingPost) -> float | None:
        """Post one claimed item: None when done (posted, found, skipped, or another process's
        now), else the time it is to be tried again (its feed's later items wait until then)."""
        feed = post.feed
        extra = {"guild_id": feed.guild_id}
        try:
            channel, problem = self._channel_for(feed)
            if channel is None:
                if problem is None:  # its server is not available now: later, not counted
                    retry_at = self.bot.clock() + POSTPONE
                    await self.service.postpone_post(post, retry_at=retry_at)
                    return retry_at
                return await self._pause(post, problem)
            message = await self._find_sent(channel, post) if post.post_started_at is not None else None
            if message is None:
                sent = await self._send(channel, post)
                if not isinstance(sent, discord.Message):
                    return sent
                message = sent
            await self.service.finish_post(post, message_id=message.id)
            log.info("feed %s: item %s posted in message %s", feed.id, post.id, message.id, extra=extra)
            return None
        except StorageUnavailable:
            raise
        except Exception as error:
            return await self._retry_later(post, error)

    async def _send(self, channel: discord.abc.Messageable, post: PendingPost) -> discord.Message | float | None:
        """Send the item's post, recording first that sending began and what the message
        carries: its article embed, else (Discord refusing that one: a 400) the feed's own
        text. The message, or what `_post_one` returns when none was sent."""
        feed, extra = post.feed, {"guild_id": post.feed.guild_id}
        refusal = ""
        for embed in await self._renderings(post):
            marker = render.post_marker(post.feed, post.id)
            if not await self.service.start_post(post, owner=self.bot.claim_owner, marker=marker):
                log.info("feed %s: another process took over item %s", feed.id, post.id, extra=extra)
                return None
            try:
                return await channel.send(embed=embed, allowed_mentions=NO_MENTIONS, nonce=post.nonce)
            except discord.HTTPException as error:
                if error.status in (403, 404):  # the channel is gone or closed to us
                    why = f"Discord refused the post ({error.status}: {error.text or 'no reason'})"
                    return await self._pause(post, why)
                if error.status != 400:
                    raise  # Discord's trouble: tried again later
                # The message itself is refused (nothing was posted): the same one never passes.
                refusal = f"{error.status}: {error.text or 'no reason'}"
                log.warning("feed %s: Discord refused the post of item %s (%s)", feed.id, post.id, refusal, extra=extra)
        await self.service.finish_post(post, message_id=None, outcome=f"skipped: Discord refused it ({refusal})")
        log.error("feed %s: item %s not posted: Discord refused it (%s)", feed.id, post.id, refusal, extra=extra)
        return None

    async def _retry_later(self, post: PendingPost, error: Exception) -> float:
        """Discord failed (a 5xx, a timeout) or something unexpected: any process tries again
        later, each time later; the service gives the item up after its last attempt."""
        log.warning(
            "feed %s: posting item %s failed (attempt %d); will retry", post.feed.id, post.id, post.attempts,
            exc_info=error, extra={"guild_id": post.feed.guild_id},
        )
        retry_at = self.bot.clock() + POST_RETRY * post.attempts
        try:
            await self.service.release_post(post, retry_at=retry_at, reason=f"posting failed: {error}"[:300])
        except StorageUnavailable:
            raise
        except Exception:  # the claim's lease runs out by itself
            log.warning("feed %s: could not record the failed post of item %s", post.feed.id, post.id, exc_info=True)
        return retry_at

    async def _pause(self, post: PendingPost, reason: str) -> float:
        """The channel is gone or closed to Quorum: pause the feed (a moderator resumes it once
        that is fixed) and log it; its items wait to be posted then."""
        feed = post.feed
        await self.service.pause_for(feed.id, reason)
        now = self.bot.clock()
        await self.service.postpone_post(post, retry_at=now)
        log.error(
            "feed %s (#%s) in guild %s channel %s paused: %s",
            feed.id, feed.number, feed.guild_id, feed.channel_id, reason, extra={"guild_id": feed.guild_id},
        )
        return now

    def _channel_for(self, feed: Feed) -> tuple[Any, str | None]:
        """The channel to post in; else None and why not (None: its server is not available
        right now, which is no reason to pause)."""
        guild = self.bot.get_guild(feed.guild_id)
        if guild is None:
            return None, "Quorum is no longer in that server"
        if guild.unavailable:
            return None, None
        channel = guild.get_channel_or_thread(feed.channel_id)
        if channel is None or not isinstance(channel, discord.abc.Messageable):
            return None, "the channel no longer exists"
        mine = channel.permissions_for(guild.me)
        missing = [p for p in POST_PERMISSIONS if not getattr(mine, p)]
        # Discord takes the others away with these: name only the one to grant.
        if "view_channel" in missing:
            missing = ["view_channel"]
        elif "send_messages" in missing:
            missing = [p for p in missing if p != "embed_links"]
        if missing:
            names = ", ".join(p.replace("_", " ").title() for p in missing)
            return None, f"Quorum no longer has the {names} permission there"
        return channel, ""

    async def _renderings(self, post: PendingPost) -> list[discord.Embed]:
        """The post's embed, and what to send instead if Discord refuses it: the article embed
        of the item's page, then the feed's own text; only the feed's own text when the page
        can't be fetched or summarised, or has no article and the feed says something of it."""
        feed, item = post.feed, post.item
        if not item.link:
            return [render.item_embed(feed, item, item_id=post.id)]
        try:
            async with self._pages:
                article = await self.articles.share(item.link)
        except StorageUnavailable:
            raise
        except Exception as error:  # the page's fault (or a busy worker): the feed's words
            log.info("feed %s: item %s: the page gave no summary (%s)", feed.id, post.id, error)
            return [render.item_embed(feed, item, item_id=post.id)]
        if article.summary_by == DESCRIBED and item.summary:
            # No article on the page (a video, a podcast page): what the feed says of the item
            # says more than the page's one-line description of itself.
            return [render.item_embed(feed, item, item_id=post.id, no_article=True)]
        return [
            article_embed(article, origin=render.origin(feed, post.id)),
            render.item_embed(feed, item, item_id=post.id),
        ]

    async def _find_sent(self, channel: discord.abc.Messageable, post: PendingPost) -> discord.Message | None:
        """A previous attempt may have sent the item before the process died: look for the
        bot's message carrying its marker, from a minute before that attempt began."""
        assert self.bot.user is not None and post.post_started_at is not None
        if not post.post_marker:
            return None
        since = discord.utils.time_snowflake(datetime.fromtimestamp(post.post_started_at - 60, UTC))
        try:
            async for message in channel.history(limit=100, after=discord.Object(since)):
                if message.author.id == self.bot.user.id and render.carries(message, post.post_marker):
                    log.info("feed %s: found item %s sent before a restart", post.feed.id, post.id)
                    return message
        except discord.HTTPException as error:
            log.info("feed %s: could not search for an earlier post of item %s: %s", post.feed.id, post.id, error)
        return None

    async def _send_paused_notice(self, feed: Feed) -> None:
        """The one notice a feed paused for failing gets (claimed first: one, across processes)."""
        extra = {"guild_id": feed.guild_id}
        try:
            if not await self.service.claim_notice(feed.id):
                return
            channel, problem = self._channel_for(feed)
            if channel is None:
                log.info("feed %s: no notice of its pause sent: %s", feed.id, problem or "its server is unavailable")
                return
            await channel.send(render.paused_notice(feed), allowed_mentions=NO_MENTIONS)
        except discord.HTTPException as error:
            log.warning("feed %s: could not send the notice of its pause: %s", feed.id, error, extra=extra)
        except StorageUnavailable:
            log.debug("feed %s: the database can't store writes; notice not sent", feed.id)

    # ================================================================ commands

    async def _find(self, interaction: discord.Interaction, text: str) -> Feed:
        assert interaction.guild_id is not None
        with _said_to_the_member():
            return await self.service.find(interaction.guild_id, text)

    async def _feed_autocomplete(
        self, interaction: discord.Interaction, current: str
    ) -> list[app_commands.Choice[str]]:
        if interaction.guild_id is None:
            return []
        feeds = await self.service.search(interaction.guild_id, current, limit=25)
        return [app_commands.Choice(name=render.choice_name(f), value=str(f.number)) for f in feeds]

    @feed.command(name="add", description="Follow a feed: its new items are posted in a channel")
    @app_commands.describe(
        url="The feed's address, or a page that links to its feed (http or https)",
        channel="Post its items there instead of here",
    )
    async def add(
        self,
        interaction: discord.Interaction,
        url: app_commands.Range[str, 1, 2048],
        channel: discord.TextChannel | None = None,
    ) -> None:
        _require_manager(interaction, "add feeds")
        assert interaction.guild_id is not None
        target = postable_channel(interaction, channel, what="a feed's items", needs=POST_PERMISSIONS)
        # Fetching and reading the feed takes seconds: answer Discord now, privately.
        await interaction.response.defer(ephemeral=True, thinking=True)
        with _said_to_the_member():
            feed, newest = await self.service.add(
                guild_id=interaction.guild_id, channel_id=target.id, url=url, added_by=interaction.user.id
            )
        self.scheduler.poke()
        log.info(
            "feed %s (#%s) %s added in guild %s channel %s by user %s",
            feed.id, feed.number, feed.url, feed.guild_id, feed.channel_id, interaction.user.id,
            extra={"guild_id": feed.guild_id},
        )
        text = render.added_text(
            feed, newest, channel_mention=target.mention, interval=self.bot.settings.feed_interval_seconds
        )
        await interaction.followup.send(text, ephemeral=True, allowed_mentions=NO_MENTIONS)

    @feed.command(name="list", description="This server's feeds and how they are doing (only you see it)")
    async def list_(self, interaction: discord.Interaction) -> None:
        assert interaction.guild_id is not None
        feeds = await self.service.list(interaction.guild_id)
        if not feeds:
            await send_ephemeral(interaction, "This server follows no feeds. A moderator can add one with `/feed add`.")
            return
        first, *rest = render.list_messages(feeds)
        await interaction.response.send_message(embeds=first, ephemeral=True, allowed_mentions=NO_MENTIONS)
        for embeds in rest:
            await interaction.followup.send(embeds=embeds, ephemeral=True, allowed_mentions=NO_MENTIONS)

    @feed.command(name="remove", description="Stop following a feed")
    @app_commands.describe(feed="The feed's number (see /feed list) or address")
    @app_commands.autocomplete(feed=_feed_autocomplete)
    async def remove(self, interaction: discord.Interaction, feed: app_commands.Range[str, 1, 2048]) -> None:
        _require_manager(interaction, "remove feeds")
        found = await self._find(interaction, feed)
        with _said_to_the_member():
            await self.service.remove(found)
        log.info("feed %s (#%s) removed by user %s", found.id, found.number, interaction.user.id,
                 extra={"guild_id": found.guild_id})
        await send_ephemeral(
            interaction,
            f"Feed #{found.number} (**{escape(render.feed_name(found))}**) is removed; "
            "nothing more is posted from it.",
        )

    @feed.command(name="pause", description="Stop posting a feed's items for now")
    @app_commands.describe(feed="The feed's number (see /feed list) or address")
    @app_commands.autocomplete(feed=_feed_autocomplete)
    async def pause(self, interaction: discord.Interaction, feed: app_commands.Range[str, 1, 2048]) -> None:
        _require_manager(interaction, "pause feeds")
        found = await self._find(interaction, feed)
        name = escape(render.feed_name(found))
        if found.paused_at is not None:
            raise UserFacingError(f"Feed #{found.number} (**{name}**) is already paused; `/feed resume` resumes it.")
        with _said_to_the_member():
            await self.service.pause(found, by=interaction.user.id)
        log.info("feed %s (#%s) paused by user %s", found.id, found.number, interaction.user.id,
                 extra={"guild_id": found.guild_id})
        await send_ephemeral(
            interaction,
            f"Feed #{found.number} (**{name}**) is paused: it is not checked and nothing is posted from it "
            "until `/feed resume`.",
        )

    @feed.command(name="resume", description="Check a paused feed again and post its new items")
    @app_commands.describe(feed="The feed's number (see /feed list) or address")
    @app_commands.autocomplete(feed=_feed_autocomplete)
    async def resume(self, interaction: discord.Interaction, feed: app_commands.Range[str, 1, 2048]) -> None:
        _require_manager(interaction, "resume feeds")
        found = await self._find(interaction, feed)
        name = escape(render.feed_name(found))
        if found.paused_at is None:
            raise UserFacingError(f"Feed #{found.number} (**{name}**) is not paused.")
        channel, problem = self._channel_for(found)
        if channel is None and problem is not None:  # what paused it may still be so
            raise UserFacingError(
                f"Feed #{found.number} (**{name}**) can't be resumed: {problem} (<#{found.channel_id}>). "
                "Fix that, or remove the feed and add it to another channel."
            )
        with _said_to_the_member():
            await self.service.resume(found)
        self.scheduler.poke()
        log.info("feed %s (#%s) resumed by user %s", found.id, found.number, interaction.user.id,
                 extra={"guild_id": found.guild_id})
        await send_ephemeral(
            interaction,
            f"Feed #{found.number} (**{name}**) is resumed: it is checked again now, and its new items are posted.",
        )


async def setup(bot: QuorumBot) -> None:
    await bot.add_cog(Feeds(bot))
