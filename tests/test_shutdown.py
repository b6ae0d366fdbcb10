"""Graceful stop: votes in flight finish and are answered; no new vote is half-taken."""

from __future__ import annotations

import asyncio

from conftest import SEED_OPTIONS, SEED_QUESTION


async def test_shutdown_waits_for_votes_in_flight_before_closing(make_bot):
    bot = make_bot()
    order: list[str] = []

    async def vote_in_flight() -> None:
        with bot.in_flight():
            await asyncio.sleep(0.05)
            order.append("vote answered")

    task = asyncio.create_task(vote_in_flight())
    await asyncio.sleep(0)
    await bot.shutdown(grace=5)
    order.append("closed")
    await task
    assert order == ["vote answered", "closed"]
    assert not bot.accepting


async def test_shutdown_gives_up_waiting_after_the_grace_period(make_bot):
    bot = make_bot()
    stuck = asyncio.Event()

    async def never_finishes() -> None:
        with bot.in_flight():
            await stuck.wait()

    task = asyncio.create_task(never_finishes())
    await asyncio.sleep(0)
    await asyncio.wait_for(bot.shutdown(grace=0.1), 5)
    task.cancel()


async def test_clicks_while_stopping_are_told_to_retry_and_not_counted(env):
    guild = env.create_guild()
    channel = guild.create_text_channel("general")
    mod = guild.add_member(env.create_user("mod"))
    await mod.slash(channel, "poll create", question=SEED_QUESTION, options=SEED_OPTIONS)
    message = [m for m in channel.history() if not m.flags.ephemeral][-1]
    env.bot.accepting = False  # what shutdown() sets first
    result = await mod.click(message, custom_id="quorum:vote:1:0")
    assert result.ephemeral and "restarting" in result.response.content
    poll = await env.bot.polls.repo.get_by_number(guild.id, 1)
    assert (await env.bot.polls.repo.tally(poll)).total == 0
