"""The poll message's Results and Close buttons and its Components V2 layout, through
discord.py's real machinery (SimCord, which enforces Discord's V2 limits)."""

from __future__ import annotations

import re

import discord
import pytest
from conftest import SEED_ANSWERS, SEED_OPTIONS, SEED_QUESTION
from markdown_oracle import assert_literal
from test_polls import (
    Card,
    World,
    _walk,
    buttons,
    card_text,
    control_buttons,
    poll_messages,
    public,
    reply_text,
    text_displays,
)

from bot.markdown import escape
from bot.polls.render import Card as RenderCard
from bot.polls.render import poll_card
from bot.polls.validation import build_draft
from cogs._layout import card_texts, fitted_card, text_size
from cogs._ui import embed


@pytest.fixture
def world(env) -> World:
    return World(env)


def _control(message: discord.Message, label: str) -> str:
    found = [b.custom_id for b in control_buttons(message) if b.label == label]
    assert len(found) == 1, control_buttons(message)
    return found[0]


async def results(member, message: discord.Message):
    return await member.click(message, custom_id=_control(message, "Results"))


async def close(member, message: discord.Message):
    return await member.click(message, custom_id=_control(message, "Close"))


def announcements(world, message: discord.Message) -> list[discord.Message]:
    return [m for m in public(world.general) if m.reference and m.reference.message_id == message.id]


def v2_size(message: discord.Message) -> tuple[int, int]:
    """(components in all, characters across the text displays): Discord allows 40 and 4,000."""
    return len(_walk(message.components)), sum(len(text) for text in text_displays(message))


def count_of(value: str) -> int:
    """The count in an answer's value, in any of the card's forms ("`███` 3 votes · 50%", "3 · 50%")."""
    found = re.search(r"(\d+)(?: votes?)? · \d+%$", value)
    assert found, value
    return int(found[1])


async def vote(world, message: discord.Message, clicks) -> None:
    """(member, option) clicks, 5 at a time with quiet virtual time between (see click_in_batches)."""
    for n, (member, option) in enumerate(clicks, start=1):
        await member.click(message, custom_id=f"quorum:vote:1:{option}")
        if n % 5 == 0:
            await world.env.advance_time(11)
    await world.env.advance_time(11)


# ------------------------------------------------------------------ the layout


async def test_a_poll_message_is_a_v2_layout_with_answers_then_results_and_close(world):
    message = await world.seed_poll()
    assert message.flags.components_v2 and not message.embeds and not message.content
    (container,) = message.components
    assert isinstance(container, discord.Container)
    assert container.accent_colour is not None and container.accent_colour.value == 0x5865F2
    head, answers, footer = text_displays(message)
    assert head.startswith("## 📊 Poll #1\n**") and SEED_QUESTION in head
    assert answers.split("\n")[0] == f"**1. {SEED_ANSWERS[0]}**"
    assert footer.startswith("-# Poll #1 · 0 voters")
    rows = [c for c in _walk(message.components) if isinstance(c, discord.ActionRow)]
    assert [[b.custom_id for b in row.children] for row in rows] == [
        [f"quorum:vote:1:{i}" for i in range(4)],
        ["quorum:results:1", "quorum:close:1"],
    ]
    assert [b.label for b in control_buttons(message)] == ["Results", "Close"]
    assert poll_messages(world.general) == [message]


async def test_twenty_five_answers_all_fit_with_results_and_close(world):
    answers = [f"Answer {i:02d} " + "x" * 188 for i in range(25)]
    message = await world.seed_poll(options=" | ".join(answers), question="Q" * 300)
    assert [b.custom_id for b in buttons(message)] == [f"quorum:vote:1:{i}" for i in range(25)]
    assert [b.label for b in control_buttons(message)] == ["Results", "Close"]
    components, text = v2_size(message)
    assert components == 38 and text <= 4000
    card = Card.of(message)
    assert [name.split(".")[0] for name, _ in card.fields] == [str(i) for i in range(1, 26)]
    # Counts shown while open (edits pass SimCord's limits too), then the closed card.
    await vote(world, message, [(m, i) for i, m in enumerate(world.members(25))])
    refreshed = public(world.general)[0]
    # 200-character answers leave room only for the compact form of the counts.
    assert [count_of(value) for _, value in Card.of(refreshed).fields] == [1] * 25
    await close(world.mod, refreshed)
    final = public(world.general)[0]
    assert "(closed)" in Card.of(final).title and not buttons(final) and not control_buttons(final)
    assert v2_size(final)[1] <= 4000
    assert world.env.errors == []


async def test_the_most_hostile_poll_fits_the_layouts_4000_characters(world):
    """25 answers of 200 characters and a 300-character question, all markdown that escaping
    doubles, from a creator whose name is markdown too: the layout still fits and every answer
    keeps its number, before votes, with counts, and closed."""
    creator = world.guild.add_member(world.env.create_user("creator"), nick="**__~~`" * 4)
    answers = [f"{i:02d}" + "*_~`" * 49 + "*_" for i in range(25)]
    assert all(len(a) == 200 for a in answers)
    message = await world.seed_poll(creator, question="*_`~" * 75, options=" | ".join(answers))
    assert len(buttons(message)) == 25 and len(control_buttons(message)) == 2
    assert v2_size(message)[1] <= 4000
    await vote(world, message, [(m, i % 25) for i, m in enumerate(world.members(30))])
    refreshed = public(world.general)[0]
    assert v2_size(refreshed)[1] <= 4000
    card = Card.of(refreshed)
    assert [name.split(".")[0] for name, _ in card.fields] == [str(i) for i in range(1, 26)]
    assert [count_of(value) for _, value in card.fields] == [2] * 5 + [1] * 20
    await close(creator, refreshed)
    final = public(world.general)[0]
    assert "(closed)" in Card.of(final).title and v2_size(final)[1] <= 4000
    assert len(announcements(world, final)) == 1
    assert world.env.errors == []


def test_the_footer_renders_as_typed_and_counts_in_the_fit():
    """An embed footer is plain text, so the card keeps a creator's name as typed; the layout
    renders markdown, so it escapes the footer, and `fitted_card` measures it escaped."""
    name = "**Boss** <@&1> -# x"
    card = RenderCard("📊 Poll #1", "**Q?**", (("1. Yes", "x" * 3950),), f"Poll #1 · asked by {name}")
    footer = card_texts(card)[-1]
    assert footer == f"-# Poll #1 · asked by {escape(name)}"
    assert_literal(footer, "text_display", name)
    assert text_size(card) == sum(len(text) for text in card_texts(card)) > 4000
    budgets: list[int] = []

    def render(budget: int) -> RenderCard:
        budgets.append(budget)
        # As `poll_card` does: the fields take what the budget leaves (the footer counted as typed).
        room = budget - len(card.title) - len(card.description) - len("1. Yes") - len(card.footer)
        return RenderCard(card.title, card.description, (("1. Yes", "x" * room),), card.footer)

    fitted = fitted_card(render, answers=1)
    assert len(budgets) == 2 and budgets[1] < budgets[0]  # the first render overshot: escaped, the footer grew
    assert 3990 <= text_size(fitted) <= 4000


# ------------------------------------------------------------------ Results


async def test_results_show_a_member_the_counts_privately(world):
    message = await world.seed_poll()
    await vote(world, message, [(world.alice, 1), (world.bob, 1)])
    shown = await results(world.bob, public(world.general)[0])
    assert shown.ephemeral
    (card,) = shown.response.embeds  # a member of a public poll: counts, not who voted
    assert card.title.startswith("📊 Poll #1")
    assert "2 votes · 100%" in card.fields[1].value
    assert world.alice.mention not in str(card.to_dict())
    assert len(public(world.general)) == 1  # nothing public


async def test_results_show_the_creator_who_voted_as_poll_results_does(world):
    message = await world.seed_poll()
    await world.alice.click(message, custom_id="quorum:vote:1:2")
    clicked = await results(world.mod, message)
    typed = await world.mod.slash(world.general, "poll results", poll="1")
    assert clicked.ephemeral and len(clicked.response.embeds) == 2
    assert world.alice.mention in clicked.response.embeds[1].fields[0].value
    assert [e.to_dict() for e in clicked.response.embeds] == [e.to_dict() for e in typed.response.embeds]


async def test_results_of_a_hidden_poll_stay_hidden_from_members_but_not_the_creator(world):
    message = await world.seed_poll(hide_results=True)
    await vote(world, message, [(m, 0) for m in world.members(3)])
    member = await results(world.alice, message)
    assert member.ephemeral and "stay hidden" in member.response.content
    assert all("vote" not in f.value for f in member.response.embeds[0].fields)
    creator = await results(world.mod, message)
    assert not creator.response.content
    assert "3 votes" in creator.response.embeds[0].fields[0].value


# ------------------------------------------------------------------ Close


async def _close_and_check(world, message: discord.Message, closer) -> None:
    result = await close(closer, message)
    assert result.ephemeral and "Poll #1 is closed. The result is posted" in reply_text(result)
    final = public(world.general)[0]
    assert final.id == message.id
    assert "(closed)" in Card.of(final).title
    assert buttons(final) == [] and control_buttons(final) == []
    assert final.components and isinstance(final.components[0], discord.Container)
    assert final.components[0].accent_colour.value == 0x57F287
    (announced,) = announcements(world, message)
    assert "Results of poll #1" in announced.embeds[0].title
    assert announced.attachments[0].filename == "results.png"
    poll = await world.db.get_by_number(world.guild.id, 1)
    assert poll.closed_by == closer.id and poll.announcement_id == announced.id
    await world.env.advance_time(120)  # the scheduler's passes announce nothing more
    assert len(announcements(world, message)) == 1 and len(public(world.general)) == 2


async def test_close_by_the_creator_announces_once_and_shows_the_final_state(world):
    message = await world.seed_poll(world.alice)
    await vote(world, message, [(world.bob, 3), (world.mod, 3)])
    await _close_and_check(world, message, world.alice)
    assert "Winner: **4. What recent turmoil?**" in card_text(public(world.general)[0])


async def test_close_by_a_member_with_manage_server(world):
    message = await world.seed_poll(world.alice)
    await _close_and_check(world, message, world.mod)


async def test_close_by_anyone_else_is_refused_privately(world):
    message = await world.seed_poll(world.alice)
    refused = await close(world.bob, message)
    assert refused.ephemeral
    assert "Only the poll's creator or members with Manage Server can close it." in reply_text(refused)
    poll = await world.db.get_by_number(world.guild.id, 1)
    assert poll.is_open and poll.announced_at is None
    assert len(public(world.general)) == 1 and len(control_buttons(public(world.general)[0])) == 2


async def test_a_forged_control_names_no_poll(world):
    message = await world.seed_poll()
    forged = [{"type": 1, "components": [
        {"type": 2, "style": 1, "label": "Results", "custom_id": "quorum:results:99"},
        {"type": 2, "style": 4, "label": "Close", "custom_id": f"quorum:close:{2**64}"},
    ]}]  # fmt: skip
    world.env.backend.edit_message(world.general.id, message.id, {"components": forged})
    for custom_id in ("quorum:results:99", f"quorum:close:{2**64}"):
        result = await world.mod.click(message, custom_id=custom_id)
        assert result.ephemeral and reply_text(result) == "This poll no longer exists."
    assert (await world.db.get_by_number(world.guild.id, 1)).is_open
    assert world.env.errors == []


# ------------------------------------------------------------------ restarts and old messages


async def test_controls_work_after_a_restart(world, make_bot):
    message = await world.seed_poll(world.alice)
    await world.bob.click(message, custom_id="quorum:vote:1:0")
    await world.env.restart_bot(make_bot())
    shown = await results(world.bob, message)
    assert "1 vote · 100%" in shown.response.embeds[0].fields[0].value
    refused = await close(world.bob, message)
    assert "Only the poll's creator" in reply_text(refused)
    await _close_and_check(world, message, world.alice)


async def _post_legacy_poll(world) -> discord.Message:
    """A poll message as Quorum posted it before the V2 layout: its card as an embed and the
    answer buttons in a row, sent by the bot and attached to the poll as /poll create did."""
    bot = world.env.bot
    draft = build_draft(question=SEED_QUESTION, options=SEED_OPTIONS)
    poll = await bot.polls.create(draft, guild_id=world.guild.id, channel_id=world.general.id, creator_id=world.mod.id)
    view = discord.ui.View(timeout=None)
    for option in range(len(poll.options)):
        view.add_item(discord.ui.Button(label=f"{option + 1}", custom_id=f"quorum:vote:{poll.id}:{option}"))
    view.stop()
    tally = await bot.polls.repo.tally(poll)
    card = embed(poll_card(poll, tally, show_counts=True))
    sent = await bot.get_channel(world.general.id).send(embed=card, view=view)
    await bot.polls.repo.attach_message(poll.id, sent.id)
    message = public(world.general)[-1]
    assert not message.flags.components_v2 and message.embeds and len(buttons(message)) == 4
    return message


async def test_a_legacy_poll_message_still_counts_and_becomes_the_layout_when_edited(world):
    message = await _post_legacy_poll(world)
    assert poll_messages(world.general) == [message]
    voted = await world.alice.click(message, custom_id="quorum:vote:1:1")
    assert "Your vote:" in reply_text(voted)
    await world.env.advance_time(6)
    refreshed = public(world.general)[0]
    # Converted by the refresh: the V2 flag set, the embed gone, the same answers plus controls.
    assert refreshed.flags.components_v2 and not refreshed.embeds
    assert [b.custom_id for b in buttons(refreshed)] == [f"quorum:vote:1:{i}" for i in range(4)]
    assert len(control_buttons(refreshed)) == 2
    assert "1 vote · 100%" in Card.of(refreshed).fields[1][1]
    # The message the members still have open (the legacy one) keeps counting.
    await world.bob.click(message, custom_id="quorum:vote:1:1")
    assert (await world.tally()).counts == (0, 2, 0, 0)
    await _close_and_check(world, refreshed, world.mod)


async def test_a_legacy_poll_message_closed_by_command_shows_its_final_state(world):
    message = await _post_legacy_poll(world)
    await world.alice.click(message, custom_id="quorum:vote:1:0")
    closed = await world.mod.slash(world.general, "poll close", poll="1")
    assert "Poll #1 is closed. The result is posted" in reply_text(closed)
    final = public(world.general)[0]
    assert final.flags.components_v2 and not final.embeds and not buttons(final) and not control_buttons(final)
    assert "(closed)" in Card.of(final).title
    assert len(announcements(world, message)) == 1
