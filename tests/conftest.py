from __future__ import annotations

import pytest
from simcord import Env

from bot.client import QuorumBot
from bot.config import Settings
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


@pytest.fixture
def db_path(tmp_path):
    return tmp_path / "quorum.sqlite3"


@pytest.fixture
def settings(db_path) -> Settings:
    return Settings(token=None, database_path=db_path)


@pytest.fixture
def clock() -> TestClock:
    return TestClock()


@pytest.fixture
async def make_bot(settings, clock):
    bots: list[QuorumBot] = []

    def make() -> QuorumBot:
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
    environment = Env(make_bot(), **options)
    clock.env = environment
    await environment.start()
    try:
        yield environment
    finally:
        await environment.shutdown()
        if environment.check_errors:
            # As SimCord's own fixture does: errors a test inspected via env.errors are accepted.
            environment._raise_errors_since(environment._errors_acknowledged)
