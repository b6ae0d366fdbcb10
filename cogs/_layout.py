"""The poll message as a Components V2 layout: the card's text, the answers, Results and Close.

A legacy message holds at most 25 buttons, so 25 answers would leave no room for the
controls; a V2 layout holds 40 components. One container (accent colour open/closed as the
embed had) holds the card's text in three text displays (heading with question, rules and
status; the answers; the footer as small text), a separator, the answer buttons in rows of
5 and a row with Results and Close: 38 components for 25 answers.

The text comes from `bot.polls.render.Card`, the same card an embed shows; it is made to fit
the layout's 4,000 characters of text (`fitted_card`). All buttons are plain and the view is
stopped: clicks are routed by the custom_id templates alone (see `answer_buttons`).
"""

from __future__ import annotations

from collections.abc import Callable

import discord

from bot.markdown import escape
from bot.polls.models import Poll
from bot.polls.render import Card

from ._poll_controls import close_custom_id, results_custom_id
from ._ui import answer_buttons

# Discord's limits on a V2 message: text across its text displays, and components in all
# (nested ones included).
TEXT_LIMIT = 4000
COMPONENT_LIMIT = 40
ROW_WIDTH = 5
# What the layout adds around a card's text: "## " before the title, a newline after it,
# "-# " before the footer, and per answer "**…**" around its name and a newline before and
# after its value.
_FRAME = len("## ") + len("\n") + len("-# ")
_PER_ANSWER = len("****") + 2 * len("\n")
# Embed field values must not be empty, so a hidden count is a zero-width space there.
_BLANK = "\u200b"


def card_budget(answers: int) -> int:
    """Characters a card may hold so that its layout fits `TEXT_LIMIT` with `answers` answers."""
    return TEXT_LIMIT - _FRAME - _PER_ANSWER * answers


def fitted_card(render: Callable[[int], Card], answers: int) -> Card:
    """The card `render(budget)` gives, within the layout's text limit.

    The footer is escaped in the layout (it is plain text in an embed), which can make it
    longer than the card measured; the card is then rendered once more with that much less
    room, which its fields give up (`render` fits them within the budget it is given).
    """
    budget = card_budget(answers)
    card = render(budget)
    over = text_size(card) - TEXT_LIMIT
    return render(budget - over) if over > 0 else card


def card_texts(card: Card) -> list[str]:
    """The text displays showing `card`: the heading with the description, the answers (each
    name in bold, its bar and count below it), the footer as small text."""
    head = f"## {card.title}\n{card.description}" if card.description else f"## {card.title}"
    answers = "\n".join(
        f"**{name}**\n{value}" if value.strip(_BLANK) else f"**{name}**" for name, value in card.fields
    )
    # Footers are plain text on an embed (a display name stays as typed); here they render
    # markdown, so the whole footer is escaped.
    footer = f"-# {escape(card.footer)}" if card.footer else ""
    return [text for text in (head, answers, footer) if text]


def text_size(card: Card) -> int:
    return sum(len(text) for text in card_texts(card))


def poll_layout(poll: Poll, card: Card, *, controls: bool = True) -> discord.ui.LayoutView:
    """The poll message: `card`'s text, and with `controls` the answer buttons, Results and
    Close (a closed poll is shown without any button)."""
    container = discord.ui.Container(accent_colour=card.color)
    for text in card_texts(card):
        container.add_item(discord.ui.TextDisplay(text))
    if controls:
        container.add_item(discord.ui.Separator())
        buttons = answer_buttons(poll)
        for start in range(0, len(buttons), ROW_WIDTH):
            container.add_item(discord.ui.ActionRow(*buttons[start : start + ROW_WIDTH]))
        container.add_item(discord.ui.ActionRow(*control_buttons(poll)))
    view = discord.ui.LayoutView(timeout=None)
    view.add_item(container)
    # Stopped: discord.py keeps nothing for it (see `answer_buttons`).
    view.stop()
    return view


def control_buttons(poll: Poll) -> list[discord.ui.Button[discord.ui.LayoutView]]:
    return [
        discord.ui.Button(
            label="Results", emoji="📊", style=discord.ButtonStyle.primary, custom_id=results_custom_id(poll.id)
        ),
        discord.ui.Button(
            label="Close", emoji="🔒", style=discord.ButtonStyle.danger, custom_id=close_custom_id(poll.id)
        ),
    ]
