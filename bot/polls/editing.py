"""The rules of /poll edit, in plain Python: what may change on an open poll, what did.

Votes and ballots refer to answers by position, so an edit never renumbers: an added answer
takes the next position, a removed one keeps its position and number (marked removed), and
no position is ever used twice. Positions are 0–24 (the schema's CHECK), so every answer a
poll ever had counts toward its 25, removed ones included.

The rules are checked against the poll as stored, inside the edit's own transaction
(`bot/polls/edits.py` reads the state and calls `plan_edit`), so a vote arriving meanwhile
cannot slip past "only before the first vote".
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from enum import Enum

from ..markdown import escape
from .models import MAX_OPTION_LENGTH, MAX_OPTIONS, MIN_OPTIONS, Poll
from .tally import plural
from .validation import PollInputError, is_blank, option_key, parse_duration, parse_question

SUMMARY_LIMIT = 2000  # a message's content


class EditRefused(PollInputError):
    """An edit the rules refuse; the message says why and what is possible instead."""


@dataclass(frozen=True, slots=True)
class EditRequest:
    """What the member asked to change, parsed; at least one part is set."""

    question: str | None = None
    add: tuple[str, ...] = ()
    remove: int | None = None  # the answer's number as shown (position + 1)
    duration: int | None = None  # seconds from now to the new deadline


class ChangeKind(Enum):
    QUESTION = "question"
    ADD = "add_option"
    REMOVE = "remove_option"
    DEADLINE = "deadline"


@dataclass(frozen=True, slots=True)
class Change:
    """One change, as kept in the edit log. `number` is the answer's (ADD, REMOVE); `old` and
    `new` are texts (QUESTION, the answer of ADD/REMOVE) or deadlines (DEADLINE: None is none)."""

    kind: ChangeKind
    number: int | None = None
    old: str | float | None = None
    new: str | float | None = None

    def to_json(self) -> str:
        return json.dumps(
            {"kind": self.kind.value, "number": self.number, "old": self.old, "new": self.new}, ensure_ascii=False
        )

    @classmethod
    def from_json(cls, text: str) -> Change:
        data = json.loads(text)
        return cls(ChangeKind(data["kind"]), data.get("number"), data.get("old"), data.get("new"))


@dataclass(frozen=True, slots=True)
class PollState:
    """What the rules need to know about a poll beyond the poll itself, read in the edit's
    transaction."""

    poll: Poll
    voted: bool  # someone has voted (or cast a ballot)
    removal_used: bool = False  # the answer to remove has votes, or a ballot ranks it


@dataclass(frozen=True, slots=True)
class EditResult:
    poll: Poll  # as stored after the edit
    changes: tuple[Change, ...]
    reminder_at: float | None = None  # when the reminder is now due (None: none pending)


@dataclass(frozen=True, slots=True)
class EditLogEntry:
    edited_at: float
    user_id: int
    change: Change


def parse_edit(
    *, question: str | None, add_options: str | None, remove_option: int | None, duration: str | None
) -> EditRequest:
    """Turn the command's options into an `EditRequest`, or say what to fix."""
    if question is None and add_options is None and remove_option is None and duration is None:
        raise EditRefused(
            "Nothing to change: give at least one of `question`, `add_options`, `remove_option` or `duration`."
        )
    if remove_option is not None and remove_option < 1:
        raise EditRefused("`remove_option` is an answer's number as shown on the poll (1, 2, …).")
    return EditRequest(
        question=parse_question(question) if question is not None else None,
        add=parse_added_options(add_options) if add_options is not None else (),
        remove=remove_option,
        duration=parse_duration(duration) if duration is not None else None,
    )


def parse_added_options(raw: str) -> tuple[str, ...]:
    """Answers to add, separated by `|`: the checks of /poll create (length, visible text,
    no two alike), for one answer or more. Compared with the poll's own answers later."""
    options = [o for o in (" ".join(part.split()) for part in raw.split("|")) if o]
    if not options:
        raise EditRefused("`add_options` holds no answer: give the answers to add, separated by `|`.")
    if len(options) > MAX_OPTIONS:
        raise EditRefused(f"That is {len(options)} answers to add; a poll can have at most {MAX_OPTIONS} in all.")
    seen: dict[str, int] = {}
    for number, option in enumerate(options, start=1):
        if len(option) > MAX_OPTION_LENGTH:
            raise EditRefused(
                f"New answer {number} is {len(option)} characters long; keep each answer to {MAX_OPTION_LENGTH}."
            )
        if is_blank(option):
            raise EditRefused(
                f"New answer {number} has no visible text, only invisible characters. Type the answer, or leave it out."
            )
        key = option_key(option)
        if key in seen:
            raise EditRefused(
                f"New answers {seen[key]} and {number} are the same (“{escape(option)}”); give each answer once."
            )
        seen[key] = number
    return tuple(options)


def plan_edit(state: PollState, request: EditRequest, *, now: float) -> tuple[Change, ...]:
    """The changes `request` makes to the stored poll, in the order they are logged, or
    `EditRefused` naming the first rule it breaks. Who may edit is the service's check."""
    poll = state.poll
    name = f"Poll #{poll.number}"
    if not poll.is_posted:
        raise EditRefused(f"{name} is not posted yet; it can be edited once it appears.")
    if not poll.is_open or (poll.closes_at is not None and poll.closes_at <= now):
        raise EditRefused(f"{name} is closed; a closed poll can't be edited.")
    changes: list[Change] = []
    if request.question is not None:
        if state.voted:
            raise EditRefused(
                f"The question of {name} can only change before the first vote, and members have voted. "
                "Close it and start a new poll to ask something else."
            )
        if request.question == poll.question:
            raise EditRefused(f"That is already the question of {name}.")
        changes.append(Change(ChangeKind.QUESTION, old=poll.question, new=request.question))
    shown_after = [i for i in poll.shown if request.remove is None or i != request.remove - 1]
    if request.remove is not None:
        number, position = request.remove, request.remove - 1
        if position >= len(poll.options):
            raise EditRefused(f"{name} has no answer {number}: its answers are numbered 1 to {len(poll.options)}.")
        if position in poll.removed:
            raise EditRefused(f"Answer {number} of {name} was already removed.")
        if state.removal_used:
            what = "ballots rank it" if poll.ranked else "it has votes"
            raise EditRefused(
                f"Answer {number} can't be removed: {what}. An answer can only be removed while nobody has "
                "chosen it (votes already cast are never changed)."
            )
        if len(shown_after) + len(request.add) < MIN_OPTIONS:
            raise EditRefused(
                f"A poll keeps at least {MIN_OPTIONS} answers: removing answer {number} would leave "
                f"{plural(len(shown_after) + len(request.add), 'answer')}. Add one in the same edit."
            )
        changes.append(Change(ChangeKind.REMOVE, number=number, old=poll.options[position]))
    if request.add:
        room = MAX_OPTIONS - len(poll.options)
        if len(request.add) > room:
            removed = f", {len(poll.removed)} of them removed" if poll.removed else ""
            raise EditRefused(
                f"{name} has had {plural(len(poll.options), 'answer')}{removed}; a poll can have {MAX_OPTIONS} in all, "
                "removed answers included (their numbers are never reused), "
                + (f"so it can take {plural(room, 'more answer')}, not {len(request.add)}." if room
                   else "so it can take no more answers.")
            )
        existing = {option_key(poll.options[i]): i + 1 for i in shown_after}
        for offset, option in enumerate(request.add):
            same = existing.get(option_key(option))
            if same is not None:
                raise EditRefused(f"“{escape(option)}” is already answer {same} of {name}; give each answer once.")
            changes.append(Change(ChangeKind.ADD, number=len(poll.options) + offset + 1, new=option))
    if request.duration is not None:
        changes.append(Change(ChangeKind.DEADLINE, old=poll.closes_at, new=now + request.duration))
    return tuple(changes)


def edit_summary(result: EditResult) -> str:
    """The editor's private answer: what changed, in full (members' text escaped)."""
    poll = result.poll
    lines = [f"Poll #{poll.number} is edited; votes already cast are unchanged."]
    for change in result.changes:
        lines.append("• " + _change_line(change))
    if any(c.kind is ChangeKind.DEADLINE for c in result.changes):
        if result.reminder_at is not None:
            lines.append(f"The reminder comes <t:{int(result.reminder_at)}:R>.")
        elif poll.remind_before is not None:
            lines.append("The reminder was already sent; it is not sent again.")
    text = "\n".join(lines)
    if len(text) <= SUMMARY_LIMIT:
        return text
    # Long answers: the poll message shows them in full, so the summary names them by number.
    short = [lines[0], *("• " + _change_line(c, brief=True) for c in result.changes), *lines[len(result.changes) + 1:]]
    return "\n".join(short)


def _change_line(change: Change, *, brief: bool = False) -> str:
    if change.kind is ChangeKind.QUESTION:
        return "Question changed." if brief else f"Question: **{escape(str(change.new))}**"
    if change.kind is ChangeKind.ADD:
        return f"Added answer {change.number}" + ("." if brief else f": {escape(str(change.new))}")
    if change.kind is ChangeKind.REMOVE:
        return f"Removed answer {change.number}" + ("." if brief else f": {escape(str(change.old))}")
    assert isinstance(change.new, float | int)
    was = f" (was <t:{int(change.old)}:R>)" if isinstance(change.old, float | int) else " (it had no deadline)"
    return f"Now closes <t:{int(change.new)}:R> (<t:{int(change.new)}:f>){was}."
