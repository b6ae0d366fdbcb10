"""The quorum through discord.py's real machinery (SimCord), on both backends: the open card's
progress, the announcement and the closed card, a missed quorum naming no winner."""

from __future__ import annotations

import pytest
from conftest import SEED_ANSWERS
from test_polls import Card, World, card_text, poll_messages, public


@pytest.fixture
def world(env) -> World:
    return World(env)


async def _vote(world, message, members, option=0):
    for member in members:
        await member.click(message, custom_id=f"quorum:vote:1:{option}")
    await world.env.advance_time(11)  # the message's next refresh


async def test_the_open_card_counts_toward_the_quorum(world):
    message = await world.seed_poll(quorum=3)
    assert "0 of 3 voters needed." in Card.of(message).description
    await _vote(world, message, world.members(2))
    assert "2 of 3 voters needed." in Card.of(poll_messages(world.general)[0]).description
    await _vote(world, message, world.members(2, prefix="late"), option=1)
    description = Card.of(poll_messages(world.general)[0]).description
    assert "Quorum reached: 4 of 3 voters." in description and "needed" not in description


async def test_a_missed_quorum_is_announced_without_a_winner(world):
    message = await world.seed_poll(quorum=3)
    await _vote(world, message, world.members(2))
    await world.mod.slash(world.general, "poll close", poll="1")
    poll_message, announcement = public(world.general)
    assert announcement.content == "📊 Poll #1 has closed. Quorum not reached: 2 of 3 voters."
    assert "Quorum not reached: 2 of 3 voters." in announcement.embeds[0].description
    closed = card_text(poll_message)
    assert "Quorum not reached: 2 of 3 voters." in closed
    for text in (announcement.content, announcement.embeds[0].description, closed):
        assert "Winner" not in text and "Tie" not in text
    assert "2 votes · 100%" in announcement.embeds[0].fields[0].value  # the counts still shown


async def test_a_reached_quorum_is_announced_with_its_winner(world):
    message = await world.seed_poll(quorum=2, multiple=True)
    await _vote(world, message, world.members(2), option=3)
    await world.mod.slash(world.general, "poll close", poll="1")
    announcement = public(world.general)[-1]
    assert announcement.content == (
        f"📊 Poll #1 has closed. Quorum reached: 2 of 2 voters. Winner: **4. {SEED_ANSWERS[3]}** with 2 votes."
    )


async def test_hidden_results_and_a_deadline_close_say_the_quorum_too(world):
    message = await world.seed_poll(quorum=5, hide_results=True, duration="30m")
    await _vote(world, message, world.members(3))
    assert "3 of 5 voters needed." in Card.of(poll_messages(world.general)[0]).description
    await world.env.advance_time(30 * 60)
    poll_message, announcement = public(world.general)
    assert announcement.content == "📊 Poll #1 has closed. Quorum not reached: 3 of 5 voters."
    assert "Quorum not reached: 3 of 5 voters." in card_text(poll_message)
    assert "Winner" not in card_text(poll_message)


async def test_a_poll_without_quorum_announces_as_before(world):
    message = await world.seed_poll()
    await _vote(world, message, world.members(1))
    await world.mod.slash(world.general, "poll close", poll="1")
    announcement = public(world.general)[-1]
    assert "uorum" not in announcement.content + card_text(public(world.general)[0])
    assert "Winner: **1." in announcement.content
