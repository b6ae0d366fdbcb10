"""The private ballot of a ranked poll: an ephemeral message where a member ranks the answers.

Clicking any answer on a ranked poll opens it, with that answer already ranked 1st (the
click says which answer the member likes best; Undo last or Start over take it back). The
member picks the 2nd from the rest in a select menu, then the 3rd, …, and presses Submit.

Stateless: the ranking being built lives in the components' custom_ids,
`quorum:rank:<action>:<poll>:<draft>`, the draft one character per answer position (0–9,
a–o: 25 answers in 25 characters, so the longest custom_id is 64 of Discord's 100). Nothing
is kept in memory per ballot; a ballot left open across a restart goes on working, as every
step is routed by the templates of `RankSelect` and `RankButton` alone. Each step edits the
ephemeral message; Submit answers only once the ballot is committed.
"""

from __future__ import annotations

import re
from typing import TYPE_CHECKING, Any

import discord

from bot.db import StorageUnavailable
from bot.polls.ballots import InvalidRanking
from bot.polls.models import MAX_OPTIONS, OptionRemoved, Poll
from bot.polls.render_ranked import answer_label, ballot_counted, ballot_removed, ballot_text, placeholder
from bot.tree import NO_MENTIONS, report_error, send_ephemeral

if TYPE_CHECKING:
    from .polls import Polls

DIGITS = "0123456789abcdefghijklmno"
assert len(DIGITS) == MAX_OPTIONS
PICK_ID = re.compile(r"quorum:rank:pick:(?P<poll>\d{1,20}):(?P<draft>[0-9a-o]{0,25})")
BUTTON_ID = re.compile(r"quorum:rank:(?P<action>submit|undo|reset|clear):(?P<poll>\d{1,20}):(?P<draft>[0-9a-o]{0,25})")
BALLOT_NOT_STORED = "Quorum can't store ballots right now; your ballot was not changed. Try again in a few minutes."


def rank_id(action: str, poll_id: int, draft: tuple[int, ...]) -> str:
    return f"quorum:rank:{action}:{poll_id}:{''.join(DIGITS[p] for p in draft)}"


def parse_draft(poll: Poll, text: str) -> tuple[int, ...]:
    """The ranking a custom_id carries, checked against the poll as it is now."""
    draft = tuple(DIGITS.index(c) for c in text)
    if len(set(draft)) != len(draft) or any(p >= len(poll.options) for p in draft):
        raise InvalidRanking("This ballot is out of date; click an answer on the poll to start again.")
    if any(p in poll.removed for p in draft):
        raise OptionRemoved()
    return draft


def ballot_view(poll: Poll, draft: tuple[int, ...], *, has_stored: bool) -> discord.ui.View:
    """The ballot's components for this step. Plain items in a stopped view, like the vote
    buttons: the DynamicItem templates route every click."""
    view = discord.ui.View(timeout=None)
    left = [p for p in poll.shown if p not in draft]
    if left:
        view.add_item(
            discord.ui.Select(
                custom_id=rank_id("pick", poll.id, draft),
                placeholder=placeholder(draft),
                options=[discord.SelectOption(label=answer_label(poll, p), value=DIGITS[p]) for p in left],
                row=0,
            )
        )
    empty = not draft
    for action, label, style, disabled in (
        ("submit", "Submit", discord.ButtonStyle.primary, empty),
        ("undo", "Undo last", discord.ButtonStyle.secondary, empty),
        ("reset", "Start over", discord.ButtonStyle.secondary, empty),
    ):
        view.add_item(
            discord.ui.Button(
                label=label, style=style, disabled=disabled, custom_id=rank_id(action, poll.id, draft), row=1
            )
        )
    if has_stored:
        view.add_item(
            discord.ui.Button(
                label="Remove my ballot",
                style=discord.ButtonStyle.danger,
                custom_id=rank_id("clear", poll.id, draft),
                row=1,
            )
        )
    view.stop()
    return view


def _role_ids(interaction: discord.Interaction) -> list[int]:
    member = interaction.user
    return [r.id for r in member.roles] if isinstance(member, discord.Member) else []


async def _show(cog: Polls, interaction: discord.Interaction, poll: Poll, draft: tuple[int, ...]) -> None:
    stored = await cog.service.ballots.ballot_of(poll.id, interaction.user.id)
    ranking = stored.ranking if stored else None
    text = ballot_text(poll, ranking, draft)
    view = ballot_view(poll, draft, has_stored=stored is not None)
    if interaction.type is discord.InteractionType.component and _on_ballot(interaction):
        await interaction.response.edit_message(content=text, view=view, allowed_mentions=NO_MENTIONS)
    else:
        await interaction.response.send_message(text, view=view, ephemeral=True, allowed_mentions=NO_MENTIONS)


def _on_ballot(interaction: discord.Interaction) -> bool:
    """Whether the component clicked is on a ballot message (else: the poll's own button)."""
    custom_id = (interaction.data or {}).get("custom_id", "")
    return isinstance(custom_id, str) and custom_id.startswith("quorum:rank:")


async def open_ballot(cog: Polls, interaction: discord.Interaction, poll_id: int, clicked: int) -> None:
    """A click on a ranked poll's answer: the ballot, privately, with that answer 1st."""
    poll = await cog.service.ballot_poll(poll_id, role_ids=_role_ids(interaction), positions=(clicked,))
    if not poll.votable(clicked):
        raise OptionRemoved()
    await _show(cog, interaction, poll, (clicked,))


def _named(text: str) -> tuple[int, ...]:
    """The positions a draft's text names (checked properly by `parse_draft`)."""
    return tuple(DIGITS.index(c) for c in text if c in DIGITS)


async def _step(cog: Polls, interaction: discord.Interaction, action: str, poll_id: int, text: str) -> None:
    picked = "".join(str(v) for v in (interaction.data or {}).get("values") or [])[:1]
    poll = await cog.service.ballot_poll(poll_id, role_ids=_role_ids(interaction), positions=_named(text + picked))
    draft = parse_draft(poll, text)
    if action == "pick":
        values = (interaction.data or {}).get("values") or []
        value = str(values[0]) if len(values) == 1 else ""
        if len(value) != 1 or value not in DIGITS:
            raise InvalidRanking("This ballot is out of date; click an answer on the poll to start again.")
        draft = parse_draft(poll, text + value)  # an answer picked twice (two tabs) is refused
    elif action == "undo":
        draft = draft[:-1]
    elif action == "reset":
        draft = ()
    await _show(cog, interaction, poll, draft)


async def _commit(cog: Polls, interaction: discord.Interaction, action: str, poll_id: int, text: str) -> None:
    """Submit or Remove: answered only once the write has committed (deferred by the
    watchdog if that takes long; the answer is then a private follow-up)."""
    if not cog.bot.accepting:
        await send_ephemeral(interaction, "Quorum is restarting; your ballot was not changed. Try again in a minute.")
        return
    with cog.bot.in_flight():
        cog.watchdog.watch(interaction)
        try:
            role_ids = _role_ids(interaction)
            if action == "submit":
                poll = await cog.service.ballot_poll(poll_id, role_ids=role_ids, positions=_named(text))
                poll, ranking = await cog.service.cast_ballot(
                    poll_id, parse_draft(poll, text), user_id=interaction.user.id, role_ids=role_ids
                )
                answer = ballot_counted(poll, ranking)
            else:
                poll, had = await cog.service.clear_ballot(poll_id, user_id=interaction.user.id, role_ids=role_ids)
                answer = ballot_removed(poll, had)
        except Exception as error:
            await cog._take_back_from_watchdog(interaction)
            if isinstance(error, StorageUnavailable):
                await send_ephemeral(interaction, BALLOT_NOT_STORED)
            else:
                await report_error(interaction, error)
            return
        # Answered only now, after the commit (a follow-up if the watchdog deferred it).
        await cog._take_back_from_watchdog(interaction)
        if interaction.response.is_done():
            await interaction.followup.send(answer, ephemeral=True, allowed_mentions=NO_MENTIONS)
        else:
            await interaction.response.edit_message(content=answer, view=None, allowed_mentions=NO_MENTIONS)
        cog.refresher.request(poll.id)


async def _route(interaction: discord.Interaction, action: str, poll_id: int, draft: str) -> None:
    cog = interaction.client.get_cog("Polls")  # type: ignore[attr-defined]
    if cog is None:
        await interaction.response.send_message(
            "Voting is unavailable for a moment; try again shortly.", ephemeral=True, allowed_mentions=NO_MENTIONS
        )
        return
    try:
        if action in ("submit", "clear"):
            await _commit(cog, interaction, action, poll_id, draft)
        else:
            await _step(cog, interaction, action, poll_id, draft)
    except Exception as error:
        await report_error(interaction, error)


class RankSelect(discord.ui.DynamicItem[discord.ui.Select[Any]], template=PICK_ID.pattern):
    """The select menu of a ballot: picking appends that answer to the draft."""

    def __init__(self, poll_id: int, draft: str) -> None:
        super().__init__(discord.ui.Select(custom_id=f"quorum:rank:pick:{poll_id}:{draft}"))
        self.poll_id = poll_id
        self.draft = draft

    @classmethod
    async def from_custom_id(
        cls, interaction: discord.Interaction, item: discord.ui.Item[Any], match: re.Match[str], /
    ) -> RankSelect:
        return cls(int(match["poll"]), match["draft"])

    async def callback(self, interaction: discord.Interaction) -> None:
        await _route(interaction, "pick", self.poll_id, self.draft)


class RankButton(discord.ui.DynamicItem[discord.ui.Button[Any]], template=BUTTON_ID.pattern):
    """Submit, Undo last, Start over, Remove my ballot."""

    def __init__(self, action: str, poll_id: int, draft: str) -> None:
        super().__init__(discord.ui.Button(custom_id=f"quorum:rank:{action}:{poll_id}:{draft}"))
        self.action = action
        self.poll_id = poll_id
        self.draft = draft

    @classmethod
    async def from_custom_id(
        cls, interaction: discord.Interaction, item: discord.ui.Item[Any], match: re.Match[str], /
    ) -> RankButton:
        return cls(match["action"], int(match["poll"]), match["draft"])

    async def callback(self, interaction: discord.Interaction) -> None:
        await _route(interaction, self.action, self.poll_id, self.draft)
