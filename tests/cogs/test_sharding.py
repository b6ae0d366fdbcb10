"""Shards under SimCord: one process running several shards, and processes running some of
them (SHARD_IDS): only the one with shard 0 syncs the commands; votes count on every shard."""

from __future__ import annotations

import dataclasses

import pytest
from conftest import SEED_OPTIONS, SEED_QUESTION
from simcord import Env

from bot.client import QuorumBot


def _syncs(env) -> int:
    return sum(1 for r in env.http_requests if r.method == "PUT" and r.path.endswith("/commands"))


async def _start(settings, clock, **shards) -> tuple[Env, QuorumBot]:
    bot = QuorumBot(dataclasses.replace(settings, **shards), clock=clock)
    env = Env(bot, settle_timeout=3.0)
    clock.env = env
    await env.start()
    return env, bot


@pytest.mark.parametrize(("shard_ids", "syncs"), [((0,), 1), ((1,), 0), ((0, 1), 1)])
async def test_only_the_process_running_shard_zero_syncs_the_commands(settings, clock, shard_ids, syncs):
    env, bot = await _start(settings, clock, shard_count=2, shard_ids=shard_ids)
    try:
        assert _syncs(env) == syncs
        assert bot.instance_name == "shards:" + ",".join(map(str, shard_ids))
    finally:
        await env.shutdown()
        await bot.close_resources()


async def test_one_process_runs_every_shard_and_counts_votes_in_servers_on_each(settings, clock):
    env, bot = await _start(settings, clock, shard_count=2)
    try:
        guilds = [env.create_guild(f"Community {i}", shard_id=i % 2) for i in range(4)]
        assert [(g.id >> 22) % 2 for g in guilds] == [0, 1, 0, 1]
        for guild in guilds:
            channel = guild.create_text_channel("general")
            mod = guild.add_member(env.create_user(f"mod-{guild.id}"))
            await mod.slash(channel, "poll create", question=SEED_QUESTION, options=SEED_OPTIONS)
            message = next(m for m in channel.history() if not m.flags.ephemeral)
            voter = guild.add_member(env.create_user(f"voter-{guild.id}"))
            poll = await bot.polls.repo.get_by_number(guild.id, 1)
            result = await voter.click(message, custom_id=f"quorum:vote:{poll.id}:2")
            assert "Your vote" in result.response.content
        for guild in guilds:
            poll = await bot.polls.repo.get_by_number(guild.id, 1)
            assert (await bot.polls.repo.tally(poll)).counts == (0, 0, 1, 0)
    finally:
        await env.shutdown()
        await bot.close_resources()
