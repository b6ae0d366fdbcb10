"""The startup heap freeze: `run.py run` builds its bot with freeze_heap=True."""

from __future__ import annotations

import gc
import sys
import weakref

import pytest
from simcord import Env

from bot.client import QuorumBot
from bot.heap import freeze_startup_heap


@pytest.fixture
def unfrozen():
    gc.unfreeze()
    yield
    gc.unfreeze()  # freezing is process-wide: give the other tests their collector back


def test_freezing_moves_the_live_heap_out_of_the_collectors_scans(unfrozen):
    survivor = [object()]
    assert any(o is survivor for o in gc.get_objects())
    frozen = freeze_startup_heap()
    # A thread left by an earlier test may free a frozen object meanwhile: at most `frozen`.
    assert frozen >= gc.get_freeze_count() > 1000
    assert not any(o is survivor for o in gc.get_objects())  # no generation scans it any more
    # Objects made afterwards are collected as usual: a cycle made now is freed.
    class Node:
        pass

    node = Node()
    node.self = node
    alive = weakref.ref(node)
    del node
    gc.collect()
    assert alive() is None


async def test_the_long_running_bot_preloads_matplotlib_and_freezes_after_setup(settings, unfrozen, caplog):
    caplog.set_level("INFO", logger="bot.client")
    bot = QuorumBot(settings, freeze_heap=True)
    env = Env(bot, shard_count=1)
    await env.start()
    try:
        assert "matplotlib.figure" in sys.modules
        assert gc.get_freeze_count() > 1000
        assert any("froze" in r.getMessage() for r in caplog.records)
        # The bot still works after the freeze.
        guild = env.create_guild("Community")
        channel = guild.create_text_channel("general")
        member = guild.add_member(env.create_user("mod"))
        result = await member.slash(channel, "poll list")
        assert result.ephemeral
    finally:
        await env.shutdown()
        await bot.close_resources()


async def test_bots_built_for_tests_do_not_freeze(env):
    # (No `unfrozen` here: it would thaw whatever this bot froze before the check.)
    assert env.bot.freeze_heap is False
    assert gc.get_freeze_count() == 0


async def test_run_builds_the_bot_that_freezes(monkeypatch):
    import run
    from bot.config import Settings

    built: dict[str, object] = {}

    class Stop(Exception):
        pass

    class Recorder:
        def __init__(self, settings, **options):
            built.update(options)
            raise Stop

    monkeypatch.setattr("bot.client.QuorumBot", Recorder)
    with pytest.raises(Stop):
        await run.run_bot(Settings(token="x" * 70, database_path=None))  # type: ignore[arg-type]
    assert built.get("freeze_heap") is True
