"""Reminders before a poll closes, in SimCord's virtual time, on both backends: once, at the
right time, through restarts and crashes; never for a poll closed early; moved by an edit."""

from __future__ import annotations

import pytest
from test_polls import World, public

from bot.polls.reminder import REMINDER_MARK

MINUTE = 60


@pytest.fixture
def world(env) -> World:
    return World(env)


def reminders(world) -> list:
    return [m for m in public(world.general) if (m.content or "").startswith(REMINDER_MARK)]


def _posts(world) -> list:
    return [r for r in world.env.http_requests if r.method == "POST" and r.path.endswith("/messages")]


async def _outcome(world, poll_id: int = 1):
    return await world.env.bot.db.fetchval(
        "SELECT outcome FROM poll_jobs WHERE poll_id = ? AND kind = 'remind'", (poll_id,)
    )


async def test_sent_once_at_the_right_time_pinging_nobody(world):
    message = await world.seed_poll(duration="2h", remind="30m", quorum=5)
    for member in world.members(3):
        await member.click(message, custom_id="quorum:vote:1:0")
    await world.advance(89 * MINUTE)
    assert reminders(world) == []
    await world.advance(2 * MINUTE)
    (reminder,) = reminders(world)
    poll = await world.db.get_by_number(world.guild.id, 1)
    assert reminder.content == f"⏰ Poll #1 closes <t:{int(poll.closes_at)}:R>; 3 voters so far, 5 voters needed."
    assert reminder.reference is not None and reminder.reference.message_id == message.id
    (body,) = [r.json for r in _posts(world) if ((r.json or {}).get("content") or "").startswith(REMINDER_MARK)]
    assert body["allowed_mentions"]["parse"] == [] and body["allowed_mentions"].get("replied_user") is False
    assert body["message_reference"]["fail_if_not_exists"] is False
    assert body["nonce"] == "quorum-remind-1"
    assert await _outcome(world) == "sent"
    await world.advance(25 * MINUTE)
    assert len(reminders(world)) == 1


async def test_the_count_of_voters_without_quorum(world):
    await world.seed_poll(duration="1h", remind="10m")
    await world.advance(51 * MINUTE)
    (reminder,) = reminders(world)
    assert reminder.content.endswith("; 0 voters so far.")


async def test_a_restart_before_the_due_time_sends_it_once(world, make_bot):
    await world.seed_poll(duration="2h", remind="30m")
    await world.advance(30 * MINUTE)
    await world.env.restart_bot(make_bot())
    await world.advance(59 * MINUTE)
    assert reminders(world) == []
    await world.advance(2 * MINUTE)
    assert len(reminders(world)) == 1
    await world.env.restart_bot(make_bot())
    await world.advance(10 * MINUTE)
    assert len(reminders(world)) == 1


async def test_downtime_over_the_due_time_sends_it_once_at_start(world, make_bot, clock):
    await world.seed_poll(duration="2h", remind="1h")
    await world.advance(30 * MINUTE)
    clock.offset += 45 * MINUTE  # down from 0:30 to 1:15; the reminder was due at 1:00
    await world.env.restart_bot(make_bot())
    assert len(reminders(world)) == 1
    await world.env.restart_bot(make_bot())
    await world.advance(10 * MINUTE)
    assert len(reminders(world)) == 1


async def test_a_crash_after_sending_does_not_send_it_again(world, make_bot):
    await world.seed_poll(duration="2h", remind="30m")
    await world.advance(91 * MINUTE)
    (sent,) = reminders(world)

    # What a crash between sending and recording leaves: started, sent, not finished.
    def forget(conn):
        conn.execute(
            "UPDATE poll_jobs SET done_at = NULL, outcome = NULL, message_id = NULL, claim_until = NULL"
            " WHERE kind = 'remind'"
        )

    await world.env.bot.db.write(forget)
    posts = len(_posts(world))
    await world.env.restart_bot(make_bot())
    await world.advance(MINUTE)
    assert len(_posts(world)) == posts, "found, not sent again"
    assert [m.id for m in reminders(world)] == [sent.id]
    assert await world.env.bot.db.fetchval("SELECT message_id FROM poll_jobs WHERE kind = 'remind'") == sent.id


async def test_a_poll_closed_early_is_never_reminded(world):
    await world.seed_poll(duration="2h", remind="30m")
    await world.advance(10 * MINUTE)
    await world.mod.slash(world.general, "poll close", poll="1")
    await world.advance(3 * 3600)
    assert reminders(world) == []
    assert await _outcome(world) == "skipped: closed"


async def test_an_edited_duration_moves_the_reminder(world):
    await world.seed_poll(duration="2h", remind="30m")
    await world.advance(10 * MINUTE)
    result = await world.mod.slash(world.general, "poll edit", poll="1", duration="3h")
    text = (result.followups[-1] if result.followups else result.response).content
    assert "The reminder comes <t:" in text
    await world.advance(90 * MINUTE)  # past the old time (1:30), before the new (2:40)
    assert reminders(world) == []
    await world.advance(61 * MINUTE)
    (reminder,) = reminders(world)
    poll = await world.db.get_by_number(world.guild.id, 1)
    assert f"<t:{int(poll.closes_at)}:R>" in reminder.content
    assert poll.closes_at == pytest.approx(world.env.bot.clock() + 29 * MINUTE, abs=MINUTE)


async def test_a_channel_closed_to_the_bot_fails_the_reminder_once(world, caplog):
    await world.seed_poll(duration="2h", remind="30m")
    world.env.inject_error("POST", "/channels/*/messages", status=403, code=50013, message="Missing Permissions",
                           times=None)
    await world.advance(91 * MINUTE)
    assert reminders(world) == []
    assert (await _outcome(world)).startswith("failed: 403")
    attempts = len([r for r in world.env.http_requests if r.method == "POST" and r.path.endswith("/messages")])
    await world.advance(20 * MINUTE)
    later = len([r for r in world.env.http_requests if r.method == "POST" and r.path.endswith("/messages")])
    assert later == attempts  # not retried
    assert any("cannot send the reminder" in r.getMessage() for r in caplog.records)
