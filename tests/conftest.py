from __future__ import annotations

import pytest
from simcord import Env

from bot.client import QuorumBot
from bot.config import Settings


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
def make_bot(settings, clock):
    def make() -> QuorumBot:
        return QuorumBot(settings, clock=clock)

    return make


@pytest.fixture
async def env(make_bot, clock, request):
    """SimCord's environment around a fresh QuorumBot (like the plugin's `simcord_env`, but the
    bot's clock is attached to SimCord's virtual time before the bot starts)."""
    marker = request.node.get_closest_marker("simcord")
    environment = Env(make_bot(), **(marker.kwargs if marker else {}))
    clock.env = environment
    await environment.start()
    try:
        yield environment
    finally:
        await environment.shutdown()
        if environment.check_errors:
            environment.raise_errors()
