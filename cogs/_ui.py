"""Discord shapes for the domain's text: embeds from cards, the answer buttons."""

from __future__ import annotations

import re
from typing import Any

import discord

from bot.polls.models import Poll
from bot.polls.render import Card, button_label
from bot.tree import NO_MENTIONS

VOTE_ID = re.compile(r"quorum:vote:(?P<poll>\d+):(?P<option>\d+)")


def embed(card: Card) -> discord.Embed:
    result = discord.Embed(title=card.title, description=card.description or None, color=card.color)
    for name, value in card.fields:
        result.add_field(name=name, value=value, inline=False)
    if card.footer:
        result.set_footer(text=card.footer)
    if card.image:
        result.set_image(url=f"attachment://{card.image}")
    return result


class VoteButton(discord.ui.DynamicItem[discord.ui.Button[Any]], template=VOTE_ID.pattern):
    """One answer's button. Everything it needs is in its custom_id, so it works after a
    restart and nothing is kept in memory per poll.

    Its clicks are routed by `clicked_vote` (the Polls cog's `on_interaction`), not by
    registering it with discord.py: discord.py's routing of a DynamicItem rebuilds the whole
    clicked message as a view on every click, only to find the button in it, and a Components
    V2 poll message has 13 components with 4 answers, 38 with 25 (docs/performance.md).
    """

    def __init__(self, poll_id: int, option: int, label: str = "\u200b") -> None:
        super().__init__(
            discord.ui.Button(
                label=label,
                style=discord.ButtonStyle.secondary,
                custom_id=vote_custom_id(poll_id, option),
            )
        )
        self.poll_id = poll_id
        self.option = option

    @classmethod
    async def from_custom_id(
        cls, interaction: discord.Interaction, item: discord.ui.Item[Any], match: re.Match[str], /
    ) -> VoteButton:
        return cls(int(match["poll"]), int(match["option"]))

    async def callback(self, interaction: discord.Interaction) -> None:
        cog = interaction.client.get_cog("Polls")  # type: ignore[attr-defined]
        if cog is None:
            await interaction.response.send_message(
                "Voting is unavailable for a moment; try again shortly.", ephemeral=True, allowed_mentions=NO_MENTIONS
            )
            return
        await cog.handle_vote(interaction, self.poll_id, self.option)


def clicked_vote(interaction: discord.Interaction) -> VoteButton | None:
    """The answer button a click is on, from its custom_id alone; None for any other
    interaction."""
    if interaction.type is not discord.InteractionType.component:
        return None
    data: Any = interaction.data or {}
    custom_id = data.get("custom_id")
    if data.get("component_type") != discord.ComponentType.button.value or not isinstance(custom_id, str):
        return None
    match = VOTE_ID.fullmatch(custom_id)
    return None if match is None else VoteButton(int(match["poll"]), int(match["option"]))


def vote_custom_id(poll_id: int, option: int) -> str:
    return f"quorum:vote:{poll_id}:{option}"


def answer_buttons(poll: Poll) -> list[discord.ui.Button[Any]]:
    """The answer buttons to send with a poll (the layout puts them 5 per row, up to 25).

    Plain buttons, in a view stopped before sending: discord.py then keeps nothing for it,
    and clicks are routed by their custom_id alone (`clicked_vote`).
    """
    # Answers removed by /poll edit get no button; the others keep their position in custom_id.
    return [
        discord.ui.Button(
            label=button_label(poll.options[option]),
            style=discord.ButtonStyle.secondary,
            custom_id=vote_custom_id(poll.id, option),
        )
        for option in poll.shown
    ]
