"""/poll edit through discord.py's real machinery (SimCord), on both backends: every option,
every refusal, the poll message updated at once, stale buttons, the log."""

from __future__ import annotations

import pytest
from conftest import SEED_ANSWERS
from test_polls import Card, World, buttons, poll_messages, public, reply_text, user_errors

from bot.polls.editing import ChangeKind, EditRequest
from bot.polls.edits import EditRepository


@pytest.fixture
def world(env) -> World:
    return World(env)


def _ids(message) -> list[str]:
    return [b.custom_id for b in buttons(message)]


def _poll_message(world):
    (message,) = poll_messages(world.general)
    return message


async def _edit(world, actor=None, poll="1", **options):
    return await (actor or world.mod).slash(world.general, "poll edit", poll=poll, **options)


async def _votes(world, number=1):
    poll = await world.db.get_by_number(world.guild.id, number)
    return [(v.option, v.user_id) for v in await world.db.votes(poll.id)]


# ------------------------------------------------------------------------ every option


async def test_every_option_at_once_updates_the_message_with_new_buttons(world):
    await world.seed_poll(duration="1h")
    now = world.env.bot.clock()
    result = await _edit(
        world, question="Which plan?", add_options="Wait and see | Build our own", remove_option=2, duration="2h"
    )
    assert result.ephemeral
    summary = reply_text(result)
    assert summary.startswith("Poll #1 is edited; votes already cast are unchanged.")
    assert "Question: **Which plan?**" in summary
    assert f"Removed answer 2: {SEED_ANSWERS[1]}" in summary
    assert "Added answer 5: Wait and see" in summary and "Added answer 6: Build our own" in summary
    assert "Now closes <t:" in summary
    message = _poll_message(world)
    assert _ids(message) == [f"quorum:vote:1:{i}" for i in (0, 2, 3, 4, 5)]
    assert [b.label for b in buttons(message)][-2:] == ["Wait and see", "Build our own"]
    card = Card.of(message)
    assert "Which plan?" in card.description and "Edited <t:" in card.description
    assert [name.split(".")[0] for name, _ in card.fields] == ["1", "3", "4", "5", "6"]
    assert SEED_ANSWERS[1] not in "\n".join(name for name, _ in card.fields)
    poll = await world.db.get_by_number(world.guild.id, 1)
    assert poll.closes_at == pytest.approx(now + 7200, abs=5)
    assert f"<t:{int(poll.closes_at)}:R>" in card.description
    assert user_errors(world.env) == []


@pytest.mark.parametrize(
    ("options", "check"),
    [
        ({"question": "Pizza or pasta?"}, lambda poll: poll.question == "Pizza or pasta?"),
        ({"add_options": "Maybe"}, lambda poll: poll.options[-1] == "Maybe"),
        ({"remove_option": 4}, lambda poll: poll.removed == {3}),
        ({"duration": "30m"}, lambda poll: poll.closes_at is not None),
    ],
    ids=["question", "add_options", "remove_option", "duration"],
)
async def test_each_option_alone(world, options, check):
    await world.seed_poll()
    result = await _edit(world, **options)
    assert "is edited" in reply_text(result)
    poll = await world.db.get_by_number(world.guild.id, 1)
    assert check(poll) and poll.edited_at is not None
    assert "Edited <t:" in Card.of(_poll_message(world)).description


async def test_every_change_is_in_the_log_with_who_and_when(world):
    await world.seed_poll(actor=world.alice)
    await _edit(world, world.alice, add_options="Maybe")
    await world.env.advance_time(60)
    await _edit(world, world.mod, remove_option=1, duration="1d")
    poll = await world.db.get_by_number(world.guild.id, 1)
    log = await EditRepository(world.db).log(poll.id)
    assert [(e.user_id, e.change.kind) for e in log] == [
        (world.alice.id, ChangeKind.ADD), (world.mod.id, ChangeKind.REMOVE), (world.mod.id, ChangeKind.DEADLINE),
    ]
    assert log[1].edited_at - log[0].edited_at == pytest.approx(60, abs=2)
    assert log[0].change.new == "Maybe" and log[1].change.old == SEED_ANSWERS[0]


async def test_autocomplete_offers_the_servers_polls(world):
    await world.seed_poll(question="First poll?", options="a | b")
    choices = await world.mod.autocomplete(world.general, "poll edit", "poll", "First")
    assert [c["value"] for c in choices] == ["1"]


# ------------------------------------------------------------------------ refusals


async def test_only_the_creator_or_manage_server_may_edit(world):
    await world.seed_poll()  # by the moderator
    await world.create(actor=world.alice, question="Alice asks?", options="yes | no")
    refused = await _edit(world, world.bob, poll="2", add_options="maybe")
    assert "Only the poll's creator or members with Manage Server can edit it." in reply_text(refused)
    refused = await _edit(world, world.alice, poll="1", add_options="maybe")
    assert "can edit it" in reply_text(refused)
    assert "is edited" in reply_text(await _edit(world, world.alice, poll="2", add_options="maybe"))
    assert "is edited" in reply_text(await _edit(world, world.mod, poll="2", add_options="perhaps"))
    assert (await world.db.get_by_number(world.guild.id, 1)).edited_at is None
    assert user_errors(world.env)


async def test_a_closed_poll_is_refused(world):
    await world.seed_poll()
    await world.mod.slash(world.general, "poll close", poll="1")
    result = await _edit(world, duration="1h")
    assert "closed" in reply_text(result) and "can't be edited" in reply_text(result)
    assert user_errors(world.env)


async def test_a_poll_closed_by_its_deadline_is_refused(world):
    await world.seed_poll(duration="30m")
    await world.env.advance_time(31 * 60)
    result = await _edit(world, duration="1h")
    assert "can't be edited" in reply_text(result)
    assert user_errors(world.env)


async def test_the_question_only_before_the_first_vote(world):
    message = await world.seed_poll()
    await world.alice.click(message, custom_id="quorum:vote:1:0")
    result = await _edit(world, question="Something else?", add_options="Maybe")
    assert "only change before the first vote" in reply_text(result)
    poll = await world.db.get_by_number(world.guild.id, 1)
    assert poll.edited_at is None and len(poll.options) == 4  # nothing of the edit was stored
    assert user_errors(world.env)


async def test_an_answer_with_votes_is_not_removed(world):
    message = await world.seed_poll()
    await world.alice.click(message, custom_id="quorum:vote:1:1")
    result = await _edit(world, remove_option=2)
    assert "Answer 2 can't be removed: it has votes" in reply_text(result)
    assert "is edited" in reply_text(await _edit(world, remove_option=3))
    assert user_errors(world.env)


async def test_never_below_two_answers(world):
    await world.seed_poll(options="Yes | No")
    result = await _edit(world, remove_option=1)
    assert "at least 2 answers" in reply_text(result)
    assert "is edited" in reply_text(await _edit(world, remove_option=1, add_options="Maybe"))
    assert _ids(_poll_message(world)) == ["quorum:vote:1:1", "quorum:vote:1:2"]
    assert user_errors(world.env)


async def test_more_than_twenty_five_answers_in_all_is_refused(world):
    await world.seed_poll(options=" | ".join(f"a{i}" for i in range(23)))
    await _edit(world, remove_option=1)
    result = await _edit(world, add_options="x | y | z")
    text = reply_text(result)
    assert "has had 23 answers, 1 of them removed" in text and "so it can take 2 more answers, not 3" in text
    assert "is edited" in reply_text(await _edit(world, add_options="x | y"))
    assert len(buttons(_poll_message(world))) == 24
    assert user_errors(world.env)


@pytest.mark.parametrize(
    ("options", "expect"),
    [
        ({"add_options": "YES"}, "“YES” is already answer 1"),
        ({"add_options": "Maybe | maybe"}, "are the same"),
        ({"duration": "10s"}, "at least 1 minute"),
        ({"duration": "40d"}, "at most 32 days"),
        ({"duration": "soon"}, "not a duration"),
        ({}, "Nothing to change"),
        ({"remove_option": 5}, "no answer 5"),
    ],
    ids=["duplicate", "duplicate-added", "short", "long", "unparsable", "nothing", "no-such-answer"],
)
async def test_bad_input_is_explained_privately(world, options, expect):
    await world.seed_poll(options="Yes | No")
    result = await _edit(world, **options)
    assert result.ephemeral and expect in reply_text(result)
    assert (await world.db.get_by_number(world.guild.id, 1)).edited_at is None
    assert len(public(world.general)) == 1
    assert user_errors(world.env)


# ------------------------------------------------------------------------ votes and buttons


async def test_votes_are_never_changed_and_new_answers_take_votes(world):
    message = await world.seed_poll(multiple=True)
    await world.alice.click(message, custom_id="quorum:vote:1:0")
    await world.bob.click(message, custom_id="quorum:vote:1:3")
    before = sorted(await _votes(world))
    await _edit(world, add_options="Other", remove_option=2, duration="1d")
    assert sorted(await _votes(world)) == before
    result = await world.alice.click(_poll_message(world), custom_id="quorum:vote:1:4")
    assert "Added **Other**" in result.response.content
    assert (await world.tally()).counts == (1, 0, 0, 1, 1)


async def test_a_stale_click_on_a_removed_answer_is_refused(world):
    old = await world.seed_poll()
    await world.alice.click(old, custom_id="quorum:vote:1:0")  # the service now holds the poll
    # Discord refuses the update of the message, so the removed answer's button is still there.
    world.env.inject_error("PATCH", "/channels/*/messages/*", status=500, times=None)
    await _edit(world, remove_option=2)
    assert "quorum:vote:1:1" in _ids(_poll_message(world))
    result = await world.bob.click(old, custom_id="quorum:vote:1:1")
    assert result.ephemeral and "That answer was removed" in result.response.content
    assert (await world.tally()).counts == (1, 0, 0, 0)


async def test_an_edit_by_another_process_is_seen_by_the_next_click(world):
    """The poll this process cached is older than edits made elsewhere (through another
    repository, as another process would make them): a click on a new answer, or one past
    the old deadline, reads the poll again; one on a removed answer is refused by the schema."""
    message = await world.seed_poll(duration="1h")
    await world.alice.click(message, custom_id="quorum:vote:1:0")  # cached: 4 answers, 1 h
    poll = await world.db.get_by_number(world.guild.id, 1)
    cog = world.env.bot.get_cog("Polls")
    elsewhere = EditRepository(world.db)

    async def edit(**request):
        return await elsewhere.apply(poll.id, EditRequest(**request), user_id=world.mod.id, now=world.env.bot.clock())

    await cog.edit_poll_message((await edit(add=("Later",))).poll)
    added = await world.bob.click(_poll_message(world), custom_id="quorum:vote:1:4")
    assert "Your vote: **Later**" in added.response.content
    await edit(duration=3 * 3600)
    await world.env.advance_time(3700)  # past the cached deadline, before the stored one
    assert (await world.db.get(poll.id)).is_open
    moved = await world.alice.click(_poll_message(world), custom_id="quorum:vote:1:2")
    assert "Your vote is now" in moved.response.content
    await edit(remove=2)  # and the message is not updated: the button stays
    refused = await world.mod.click(_poll_message(world), custom_id="quorum:vote:1:1")
    assert "That answer was removed" in refused.response.content
    assert (await world.tally()).counts == (0, 0, 1, 0, 1)


async def test_a_removed_answer_keeps_numbers_in_results_and_export(world):
    import csv
    import io

    message = await world.seed_poll()
    await world.alice.click(message, custom_id="quorum:vote:1:2")
    await _edit(world, remove_option=2)
    results = await world.mod.slash(world.general, "poll results", poll="1")
    embed = results.response.embeds[0]
    assert [f.name.split(".")[0] for f in embed.fields] == ["1", "3", "4"]
    assert results.response.embeds[1].fields[0].name.startswith("3. ")
    export = await world.mod.slash(world.general, "poll export", poll="1")
    rows = list(csv.DictReader(io.StringIO((await export.response.attachments[0].read()).decode("utf-8-sig"))))
    assert [(r["option_number"], r["option"]) for r in rows] == [("3", SEED_ANSWERS[2])]
    await world.mod.slash(world.general, "poll close", poll="1")
    announcement = public(world.general)[-1]
    assert f"Winner: **3. {SEED_ANSWERS[2]}**" in announcement.content
    assert SEED_ANSWERS[1] not in "".join(f.name for f in announcement.embeds[0].fields)


async def test_a_failed_message_update_keeps_the_edit(world):
    await world.seed_poll()
    world.env.inject_error("PATCH", "/channels/*/messages/*", status=500, times=None)
    result = await _edit(world, add_options="Maybe")
    assert "could not be updated just now" in reply_text(result)
    assert (await world.db.get_by_number(world.guild.id, 1)).options[-1] == "Maybe"
