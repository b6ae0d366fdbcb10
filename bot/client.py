"""The Bot subclass: owns the database, loads the cogs, registers buttons, syncs commands.

It is an AutoShardedBot: one process runs the gateway shards SHARD_IDS of SHARD_COUNT (unset:
every shard Discord recommends), and any number of processes share one PostgreSQL database.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import hashlib
import json
import logging
import time
import uuid
from collections.abc import Iterator

import discord
from discord.ext import commands

from .articles.worker import ArticleWorkers
from .config import Settings
from .db import Database, open_database
from .heap import freeze_startup_heap
from .polls.chart import load_matplotlib
from .polls.repository import PollRepository
from .polls.service import Clock, PollService
from .tree import NO_MENTIONS, QuorumTree

log = logging.getLogger(__name__)

EXTENSIONS = ("cogs.polls", "cogs.articles", "cogs.feeds")

# What Quorum needs in a channel it posts polls to; the invite link asks for exactly these.
REQUIRED_PERMISSIONS = discord.Permissions(
    view_channel=True,
    send_messages=True,
    send_messages_in_threads=True,
    embed_links=True,
    attach_files=True,
    read_message_history=True,
)


def intents() -> discord.Intents:
    # Guilds only: channels, roles and the bot's own member for permission checks. Slash
    # commands and buttons arrive as interactions, which need no intent; no privileged intent.
    result = discord.Intents.none()
    result.guilds = True
    return result


class QuorumBot(commands.AutoShardedBot):
    def __init__(
        self,
        settings: Settings,
        *,
        clock: Clock = time.time,
        sync_on_start: bool = True,
        freeze_heap: bool = False,
    ) -> None:
        super().__init__(
            command_prefix=commands.when_mentioned,
            help_command=None,
            intents=intents(),
            allowed_mentions=NO_MENTIONS,
            tree_cls=QuorumTree,
            shard_count=settings.shard_count,
            # SHARD_COUNT alone: this process runs all of them.
            shard_ids=list(settings.shard_ids) if settings.shard_ids is not None else None,
        )
        self.settings = settings
        self.clock = clock
        self._db: Database | None = None
        self._article_workers: ArticleWorkers | None = None
        self._feed_workers: ArticleWorkers | None = None
        self._polls: PollService | None = None
        self.synced_commands = False
        self.sync_on_start = sync_on_start
        # Only for the long-running bot (`run.py run`): freezing is process-wide and permanent.
        self.freeze_heap = freeze_heap
        self.accepting = True  # False once shutting down: clicks get "try again shortly"
        self._in_flight = 0
        self._idle = asyncio.Event()
        self._idle.set()

    @property
    def db(self) -> Database:
        assert self._db is not None, "the database opens in setup_hook"
        return self._db

    @functools.cached_property
    def claim_owner(self) -> str:
        """This process's name on the announcements it claims: its instance name, and what tells
        it from another copy of the same instance (the copy still stopping in a rolling restart)."""
        return f"{self.instance_name}/{uuid.uuid4().hex[:12]}"

    @property
    def instance_name(self) -> str:
        """Which process this is among those sharing the database: its shards. A restarted
        process is the same instance, so it takes back its own unfinished announcements."""
        ids = self.settings.shard_ids
        return "all-shards" if ids is None else "shards:" + ",".join(map(str, ids))

    @property
    def article_workers(self) -> ArticleWorkers:
        """The processes that extract and summarise pages (they start on the first share)."""
        if self._article_workers is None:
            self._article_workers = ArticleWorkers(self.settings.article_workers)
        return self._article_workers

    @property
    def feed_workers(self) -> ArticleWorkers:
        """The feeds' own worker process (parsing feeds, summarising their items' pages), apart
        from the article workers: a burst of new items never makes a member's share wait."""
        if self._feed_workers is None:
            self._feed_workers = ArticleWorkers(1)
        return self._feed_workers

    @property
    def polls(self) -> PollService:
        assert self._polls is not None, "the poll service starts in setup_hook"
        return self._polls

    async def setup_hook(self) -> None:
        self._db = await open_database(self.settings)
        log.info("storage: %s at %s", self._db.dialect, self._db.target)
        self._polls = PollService(PollRepository(self._db), self.clock)
        for extension in EXTENSIONS:
            try:
                await self.load_extension(extension)
            except Exception:
                log.exception("failed to load extension %s", extension)
                raise
        # One process syncs (the one running shard 0), and only when the commands changed.
        if self.sync_on_start and self.settings.runs_shard_zero:
            await self.sync_commands_if_changed()
        if self.freeze_heap:
            load_matplotlib()  # the first announcement would import it anyway
            log.info("froze %d startup objects out of the garbage collector's scans", freeze_startup_heap())

    async def close(self) -> None:
        try:
            await super().close()  # unloads cogs first: they stop their tasks
        except AttributeError:
            # discord.py's AutoShardedClient.close ends by waking its event queue, which exists
            # only once the bot has connected; everything before that step has been closed.
            if hasattr(self, "_AutoShardedClient__queue"):
                raise
        finally:
            await self.close_resources()

    @contextlib.contextmanager
    def in_flight(self) -> Iterator[None]:
        """Mark work (a vote) that a graceful shutdown must let finish."""
        self._in_flight += 1
        self._idle.clear()
        try:
            yield
        finally:
            self._in_flight -= 1
            if self._in_flight == 0:
                self._idle.set()

    async def shutdown(self, grace: float = 20.0) -> None:
        """Stop taking votes, let the ones in flight commit and be answered, then close."""
        log.info("shutting down: %d interactions in flight", self._in_flight)
        self.accepting = False
        try:
            await asyncio.wait_for(self._idle.wait(), grace)
        except TimeoutError:
            log.warning("%d interactions still in flight after %ss; closing anyway", self._in_flight, grace)
        await self.close()

    async def close_resources(self) -> None:
        """Stop the article and feed workers, finish queued writes and close the database connections
        (their threads keep a process alive). Safe to call twice."""
        if self._article_workers is not None:
            workers, self._article_workers = self._article_workers, None
            await workers.close()
        if self._feed_workers is not None:
            workers, self._feed_workers = self._feed_workers, None
            await workers.close()
        if self._db is not None:
            db, self._db = self._db, None
            await db.close()

    # ------------------------------------------------------------ command sync

    def _sync_scope(self, guild_id: int | None = None) -> tuple[discord.Object | None, str]:
        guild_id = guild_id or self.settings.dev_guild_id
        if guild_id is None:
            return None, "command_hash:global"
        return discord.Object(guild_id), f"command_hash:guild:{guild_id}"

    def command_hash(self, guild_id: int | None = None) -> str:
        guild, _ = self._sync_scope(guild_id)
        if guild is not None:
            self.tree.copy_global_to(guild=guild)
        payload = [c.to_dict(self.tree) for c in self.tree.get_commands(guild=guild)]
        text = json.dumps(sorted(payload, key=lambda c: c["name"]), sort_keys=True)
        return hashlib.sha256(text.encode()).hexdigest()

    async def sync_commands_if_changed(self, *, force: bool = False, guild_id: int | None = None) -> bool:
        """Sync only when the command tree differs from the last sync recorded in the database.

        Discord rate-limits syncs; syncing on every start is how bots get locked out of it.
        """
        guild, key = self._sync_scope(guild_id)
        digest = self.command_hash(guild_id)
        if not force and await self.db.get_meta(key) == digest:
            log.info("commands unchanged since the last sync; not syncing")
            return False
        synced = await self.tree.sync(guild=guild)
        await self.db.set_meta(key, digest)
        self.synced_commands = True
        log.info("synced %d commands %s", len(synced), "globally" if guild is None else f"to guild {guild.id}")
        return True

    async def on_ready(self) -> None:
        assert self.user is not None
        log.info("logged in as %s (id %s) in %d servers", self.user, self.user.id, len(self.guilds))
