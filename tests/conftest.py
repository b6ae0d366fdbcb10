from __future__ import annotations

from collections.abc import Iterator

import postgres
import pytest
from simcord import Env

from bot.client import QuorumBot
from bot.config import Settings
from bot.db import Database, open_database
from bot.seed import SEED_ANSWERS, SEED_QUESTION  # noqa: F401 (tests import both from here)

SEED_OPTIONS = " | ".join(SEED_ANSWERS)


class TestClock:
    """Reads SimCord's virtual time once an env is attached, so deadlines follow advance_time."""

    def __init__(self) -> None:
        self.env = None
        self.offset = 0.0  # simulated downtime: the world moved on while the bot was away

    def __call__(self) -> float:
        assert self.env is not None, "attach the SimCord env first"
        return self.env.now().timestamp() + self.offset


def pytest_sessionfinish(session) -> None:
    """Drop the pooled PostgreSQL schemas here too: an xdist worker may end without running
    atexit handlers."""
    postgres._drop_pool()


# For the tests of what only SQLite has (its file, its pragmas, its full disk).
sqlite_only = pytest.mark.parametrize("backend", ["sqlite"], indirect=True)


@pytest.fixture(params=["sqlite", "postgresql"])
def backend(request) -> str:
    """Every behaviour test runs on both storage backends."""
    if request.param == "postgresql" and postgres.available() is None:
        pytest.skip(postgres.SKIP_REASON)
    return request.param


@pytest.fixture
def database_url(backend) -> Iterator[str | None]:
    """The PostgreSQL URL for this test (a schema of its own, migrated and empty), or None on
    SQLite."""
    if backend == "sqlite":
        yield None
        return
    with postgres.migrated_schema() as url:
        yield url


@pytest.fixture
def empty_database_url(backend) -> Iterator[str | None]:
    """As `database_url`, with nothing in the schema at all: for tests of migrating itself."""
    if backend == "sqlite":
        yield None
        return
    with postgres.fresh_schema() as url:
        yield url


@pytest.fixture
def db_path(tmp_path):
    return tmp_path / "quorum.sqlite3"


@pytest.fixture
async def open_db(db_path, database_url):
    """Opens this test's database on its backend (as often as asked: a reopen keeps the data)."""
    opened: list[Database] = []

    async def open_() -> Database:
        opened.append(await open_database(Settings(token=None, database_path=db_path, database_url=database_url)))
        return opened[-1]

    yield open_
    for database in opened:
        await database.close()


@pytest.fixture
def settings(db_path, database_url) -> Settings:
    return Settings(token=None, database_path=db_path, database_url=database_url)


@pytest.fixture
def clock() -> TestClock:
    return TestClock()


class RestartedBot(QuorumBot):
    """A bot for `env.restart_bot`: the process it replaces has ended, so its database
    connections are gone before this one starts (SimCord detaches the old bot but leaves it
    open; a real restart would have closed them, releasing the old process's session locks)."""

    def __init__(self, *args, predecessors: list[QuorumBot], **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self._predecessors = predecessors

    async def setup_hook(self) -> None:
        for old in self._predecessors:
            await old.close_resources()
        await super().setup_hook()


@pytest.fixture
async def make_bot(settings, clock):
    bots: list[QuorumBot] = []

    def make() -> QuorumBot:
        if bots:
            bots.append(RestartedBot(settings, clock=clock, predecessors=list(bots)))
        else:
            bots.append(QuorumBot(settings, clock=clock))
        return bots[-1]

    yield make
    # SimCord detaches bots without closing them; release their database and workers like a real shutdown.
    for bot in bots:
        await bot.close_resources()


@pytest.fixture
async def env(make_bot, clock, request):
    """SimCord's environment around a fresh QuorumBot (like the plugin's `simcord_env`, but the
    bot's clock is attached to SimCord's virtual time before the bot starts)."""
    marker = request.node.get_closest_marker("simcord")
    # SimCord waits in real time for sleeps shorter than settle_timeout; a short one keeps the
    # 5 s edit debounce virtual (driven by advance_time) while leaving room for the chart thread.
    options = {"settle_timeout": 3.0, **(marker.kwargs if marker else {})}
    bot = make_bot()
    if bot.shard_count is None:  # auto-sharding asks Discord; SimCord's Discord recommends one shard
        options.setdefault("shard_count", 1)
    environment = Env(bot, **options)
    clock.env = environment
    await environment.start()
    try:
        yield environment
    finally:
        await environment.shutdown()
        if environment.check_errors:
            # As SimCord's own fixture does: errors a test inspected via env.errors are accepted.
            environment._raise_errors_since(environment._errors_acknowledged)
