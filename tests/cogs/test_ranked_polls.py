"""Ranked polls on Discord (SimCord): the private ballot, results while open, the rounds, export."""

from __future__ import annotations

import csv
import io

import pytest
from test_polls import World, buttons, card_text, poll_messages, public, reply_text, user_errors

from cogs._ballot import DIGITS

COLOURS = "Red | Green | Blue | Black | White"


@pytest.fixture
def world(env) -> World:
    return World(env)


def _walk(rows):
    for component in rows:
        yield component
        yield from _walk(component.get("components") or ())


def custom_ids(ballot) -> list[str]:
    return [c["custom_id"] for c in _walk(ballot.components) if c.get("custom_id")]


def labels(ballot) -> dict[str, dict]:
    return {c["label"]: c for c in _walk(ballot.components) if c.get("type") == 2}


def menu(ballot) -> dict | None:
    return next((c for c in _walk(ballot.components) if c.get("type") == 3), None)


async def open_ballot(member, message, answer: int):
    """Click answer `answer` (0-based) on the poll; the ballot is the private reply."""
    result = await member.click(message, custom_id=buttons(message)[answer].custom_id)
    assert result.ephemeral, result
    return result.response


async def pick(member, ballot, *answers: int) -> None:
    for answer in answers:
        select = menu(ballot)
        assert select is not None, ballot.content
        await member.select(ballot, [DIGITS[answer]], custom_id=select["custom_id"])


async def press(member, ballot, label: str):
    return await member.click(ballot, label=label)


async def stored(world, member, number: int = 1):
    poll = await world.db.get_by_number(world.guild.id, number)
    return await world.env.bot.polls.ballots.ballot_of(poll.id, member.id)


async def cast(world, member, message, ranking: tuple[int, ...]) -> None:
    ballot = await open_ballot(member, message, ranking[0])
    await pick(member, ballot, *ranking[1:])
    result = await press(member, ballot, "Submit")
    assert "Your ballot is counted" in (ballot.content + reply_text(result)), ballot.content


# ------------------------------------------------------------------------ the ballot


async def test_a_click_opens_a_private_ballot_with_that_answer_first(world):
    message = await world.seed_poll(ranked=True, options=COLOURS)
    assert "Ranked choice" in card_text(message)
    ballot = await open_ballot(world.alice, message, 2)
    assert ballot.ephemeral
    assert "You have no ballot in this poll yet." in ballot.content
    assert "1. Blue (answer 3)" in ballot.content
    select = menu(ballot)
    assert select["placeholder"] == "Pick your 2nd choice"
    assert [o["label"] for o in select["options"]] == ["1. Red", "2. Green", "4. Black", "5. White"]
    assert not labels(ballot)["Submit"].get("disabled")
    assert "Remove my ballot" not in labels(ballot)
    assert all(len(c) <= 100 for c in custom_ids(ballot))
    assert await stored(world, world.alice) is None  # nothing is stored before Submit
    assert (await world.tally()).voters == 0


async def test_pick_several_submit_then_change_and_clear(world):
    message = await world.seed_poll(ranked=True, options=COLOURS)
    ballot = await open_ballot(world.alice, message, 1)
    await pick(world.alice, ballot, 4, 0)
    assert "1. Green (answer 2)\n2. White (answer 5)\n3. Red (answer 1)" in ballot.content
    assert menu(ballot)["placeholder"] == "Pick your 4th choice"
    await press(world.alice, ballot, "Undo last")
    assert "3. Red" not in ballot.content and menu(ballot)["placeholder"] == "Pick your 3rd choice"
    await pick(world.alice, ballot, 2)
    await press(world.alice, ballot, "Submit")
    assert ballot.content.startswith("Your ballot is counted:")
    assert "1. Green (answer 2)\n2. White (answer 5)\n3. Blue (answer 3)" in ballot.content
    assert ballot.components == []
    assert (await stored(world, world.alice)).ranking == (1, 4, 2)

    # Later: the ballot shows what is stored, and a new ranking replaces it whole.
    again = await open_ballot(world.alice, message, 3)
    assert "Counted now:\n1. Green (answer 2)" in again.content
    assert "Your new ranking:\n1. Black (answer 4)" in again.content
    await press(world.alice, again, "Start over")
    assert "Your new ranking is empty." in again.content
    assert labels(again)["Submit"].get("disabled") is True
    assert menu(again)["placeholder"] == "Pick your 1st choice"
    await pick(world.alice, again, 0)
    await press(world.alice, again, "Submit")
    assert (await stored(world, world.alice)).ranking == (0,)

    cleared = await open_ballot(world.alice, message, 0)
    await press(world.alice, cleared, "Remove my ballot")
    assert "Your ballot is removed" in cleared.content
    assert await stored(world, world.alice) is None
    assert (await world.tally()).voters == 0


async def test_ranking_every_answer_leaves_no_menu(world):
    message = await world.seed_poll(ranked=True, options="Yes | No")
    ballot = await open_ballot(world.bob, message, 1)
    await pick(world.bob, ballot, 0)
    assert menu(ballot) is None
    assert "Every answer is ranked" in ballot.content
    await press(world.bob, ballot, "Submit")
    assert (await stored(world, world.bob)).ranking == (1, 0)


async def test_a_ballot_being_built_survives_a_restart(world, make_bot):
    message = await world.seed_poll(ranked=True, options=COLOURS)
    ballot = await open_ballot(world.alice, message, 4)
    await pick(world.alice, ballot, 3)
    await world.env.restart_bot(make_bot())
    await pick(world.alice, ballot, 2)
    await press(world.alice, ballot, "Submit")
    assert "Your ballot is counted" in ballot.content
    assert (await stored(world, world.alice)).ranking == (4, 3, 2)


async def test_refusals_are_short_private_messages(world):
    voters = world.guild.create_role("Voters")
    message = await world.seed_poll(ranked=True, options=COLOURS, role=voters, duration="30m")
    refused = await world.alice.click(message, custom_id=buttons(message)[0].custom_id)
    assert refused.ephemeral and "Only members with" in refused.response.content
    assert menu(refused.response) is None

    carol = world.guild.add_member(world.env.create_user("carol"), roles=[voters])
    ballot = await open_ballot(carol, message, 0)
    await world.env.advance_time(30 * 60 + 1)  # closed while the ballot is open
    late = await press(carol, ballot, "Submit")
    assert late.ephemeral and "closed" in late.response.content
    assert await stored(world, carol) is None
    user_errors(world.env)


async def test_a_removed_answer_in_the_draft_is_refused(world):
    message = await world.seed_poll(ranked=True, options=COLOURS)
    ballot = await open_ballot(world.alice, message, 3)
    poll = await world.db.get_by_number(world.guild.id, 1)

    def remove(conn):
        conn.execute("UPDATE poll_options SET removed_at = 1 WHERE poll_id = ? AND position = 3", (poll.id,))

    await world.env.bot.db.write(remove)
    world.env.bot.polls.forget(poll.id)  # as /poll edit does after its change
    refused = await press(world.alice, ballot, "Submit")
    assert refused.ephemeral and "removed from the poll" in refused.response.content
    assert await stored(world, world.alice) is None


# ------------------------------------------------------------------------ results while open


async def test_results_while_open_are_first_preferences(world):
    message = await world.seed_poll(ranked=True, options=COLOURS)
    await cast(world, world.alice, message, (2, 0))
    await cast(world, world.bob, message, (2, 1))
    await cast(world, world.mod, message, (0,))
    tally = await world.tally()
    assert tally.counts == (1, 0, 2, 0, 0) and tally.voters == 3
    await world.env.advance_time(6)
    shown = card_text(poll_messages(world.general)[-1])
    assert "3 voters" in shown and "2 votes" in shown and "1st choices" in shown
    member = await world.alice.slash(world.general, "poll results", poll="1")
    assert "2 votes" in "\n".join(f.value for f in member.response.embeds[0].fields)
    manager = await world.mod.slash(world.general, "poll results", poll="1")
    assert world.alice.mention in str(manager.response.embeds[1].to_dict())


async def test_hidden_results_hide_first_preferences_from_members(world):
    message = await world.seed_poll(ranked=True, options=COLOURS, hide_results=True)
    await cast(world, world.alice, message, (2, 0))
    member = await world.alice.slash(world.general, "poll results", poll="1")
    assert "hidden" in member.response.content
    assert all("vote" not in f.value for f in member.response.embeds[0].fields)
    creator = await world.mod.slash(world.general, "poll results", poll="1")
    assert "1 vote" in creator.response.embeds[0].fields[2].value


# ------------------------------------------------------------------------ closing


async def test_the_announcement_shows_every_round_and_the_runoff_winner(world):
    """The hand-worked count of tests/bot/polls/test_ranked.py: A leads on first preferences,
    B wins in round 3 after D's and C's ballots move on; one ballot is exhausted."""
    message = await world.seed_poll(ranked=True, options="Apple | Banana | Cherry | Date")
    members = world.members(10)
    rankings = [(0, 1)] * 4 + [(1, 0)] * 3 + [(2, 1)] * 2 + [(3, 2)]
    for member, ranking in zip(members, rankings, strict=True):
        await cast(world, member, message, ranking)
    await world.env.advance_time(6)
    await world.mod.slash(world.general, "poll close", poll="1")
    announcement = public(world.general)[-1]
    assert "Winner by instant-runoff: **2. Banana** with 5 votes of 9 in round 3." in announcement.content
    card = announcement.embeds[0]
    assert "ranked choice" in card.title
    assert "10 ballots, counted in 3 rounds; 1 ballot exhausted by the last." in card.description
    rounds = {f.name: f.value for f in card.fields}
    assert rounds["Round 1 (first preferences)"].startswith("#1 **4** · #2 **3** · #3 **2** · #4 **1**")
    assert "Eliminated: #4" in rounds["Round 1 (first preferences)"]
    assert "Eliminated: #3" in rounds["Round 2"]
    assert rounds["Round 3"].startswith("#2 **5** · #1 **4**") and "Exhausted ballots: 1 (+1)" in rounds["Round 3"]
    assert announcement.attachments[0].filename == "results.png"
    closed = card_text(poll_messages(world.general)[0])
    assert "Winner: **2. Banana** with 5 votes" in closed  # the card names instant-runoff's winner
    assert "instant-runoff" in closed


async def test_a_missed_quorum_names_no_winner(world):
    message = await world.seed_poll(ranked=True, options=COLOURS, quorum=5)
    await cast(world, world.alice, message, (1,))
    await world.mod.slash(world.general, "poll close", poll="1")
    announcement = public(world.general)[-1]
    assert "Quorum not reached: 1 of 5 voters" in announcement.content
    assert "Winner" not in announcement.content and "Winner" not in announcement.embeds[0].description


async def test_twenty_five_long_answers_fit_discords_limits(world):
    answers = " | ".join(f"{i:02d} " + "*" * 197 for i in range(25))
    message = await world.seed_poll(ranked=True, options=answers, question="Q" * 300)
    members = world.members(30)
    for n, member in enumerate(members):
        await cast(world, member, message, tuple((n * 7 + k) % 25 for k in range(1 + n % 3)))
        if n % 5 == 4:
            await world.env.advance_time(11)
    ballot = await open_ballot(world.alice, message, 24)
    assert len(ballot.content) <= 2000
    assert all(len(o["label"]) <= 100 for o in menu(ballot)["options"])
    await world.mod.slash(world.general, "poll close", poll="1")
    announcement = public(world.general)[-1]
    card = announcement.embeds[0]
    assert len(card) <= 6000 and len(card.description) <= 4096
    assert all(len(f.value) <= 1024 for f in card.fields) and len(card.fields) <= 25
    assert len(announcement.content) <= 2000


# ------------------------------------------------------------------------ export


async def test_export_has_one_row_per_ballot_with_its_ranking(world):
    message = await world.seed_poll(ranked=True, options=COLOURS)
    await cast(world, world.alice, message, (1, 0, 3))
    await cast(world, world.bob, message, (4,))
    result = await world.mod.slash(world.general, "poll export", poll="1")
    attachment = result.response.attachments[0]
    assert attachment.filename == "poll-1-ballots.csv"
    rows = list(csv.DictReader(io.StringIO((await attachment.read()).decode("utf-8-sig"))))
    assert [(r["voter_id"], r["ranking"], r["choice_1"], r["choice_2"], r["choice_3"]) for r in rows] == [
        (str(world.alice.id), "2 > 1 > 4", "Green", "Red", "Black"),
        (str(world.bob.id), "5", "White", "", ""),
    ]


async def test_anonymous_export_has_no_voter_column(world):
    message = await world.seed_poll(ranked=True, options=COLOURS, anonymous=True)
    await cast(world, world.alice, message, (1, 0))
    result = await world.mod.slash(world.general, "poll export", poll="1")
    data = (await result.response.attachments[0].read()).decode("utf-8-sig")
    header = next(csv.reader(io.StringIO(data)))
    assert header[:3] == ["poll", "cast_at", "ranking"] and "voter_id" not in header
    assert str(world.alice.id) not in data
