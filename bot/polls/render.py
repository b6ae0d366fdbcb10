"""What a poll looks like, as plain text and numbers (the cogs turn a `Card` into an embed).

Every card fits Discord's embed limits whatever the poll holds: 25 answers of 200 characters
and a 300-character question included, even made of markdown characters that escaping
doubles. When the full layout would pass the 6,000-character total, values are rendered in a
more compact form rather than cut.

Members' text is escaped (`bot.markdown.escape`) wherever Discord renders markdown, and sizes
are measured on the escaped text. Footers and button labels are plain text and stay as typed.
"""

from __future__ import annotations

import functools
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

from ..markdown import drop_dangling_backslash, escape
from .models import Poll
from .tally import Tally, bar, plural, quorum_met, quorum_outcome, quorum_progress, winner_line

EMBED_TOTAL = 6000
DESCRIPTION_LIMIT = 4096
FIELD_NAME_LIMIT = 256
FIELD_VALUE_LIMIT = 1024
FOOTER_LIMIT = 2048
TITLE_LIMIT = 256
BUTTON_LABEL_LIMIT = 80
MESSAGE_LIMIT = 2000

COLOR_OPEN = 0x5865F2
COLOR_CLOSED = 0x57F287


@dataclass(frozen=True, slots=True)
class Card:
    title: str
    description: str
    fields: tuple[tuple[str, str], ...] = ()
    footer: str = ""
    color: int = COLOR_OPEN
    image: str | None = None  # attachment filename, shown as the embed's image

    @property
    def size(self) -> int:
        """Characters Discord counts toward the 6,000 embed total."""
        return (
            len(self.title)
            + len(self.description)
            + sum(len(n) + len(v) for n, v in self.fields)
            + len(self.footer)
        )


@dataclass(frozen=True, slots=True)
class Rendered:
    """A card plus the message text around it."""

    content: str
    cards: tuple[Card, ...] = field(default_factory=tuple)


def shorten(text: str, limit: int) -> str:
    """Cut at a word boundary where one is near, ending in `…`.

    Safe on escaped text: a cut never leaves a backslash that would escape the `…` or the
    markup that follows it.
    """
    if len(text) <= limit:
        return text
    cut = text[: limit - 1]
    space = cut.rfind(" ")
    if space >= limit * 0.6:
        cut = cut[:space]
    return drop_dangling_backslash(cut.rstrip(" ,.;:-")) + "…"


def button_label(option: str) -> str:
    return shorten(option, BUTTON_LABEL_LIMIT)


def timestamp(ts: float, style: str = "R") -> str:
    """Discord renders `<t:…>` in each reader's own time zone and language."""
    return f"<t:{int(ts)}:{style}>"


def _rules_line(poll: Poll) -> str:
    if poll.multiple:
        limit = f", up to {plural(poll.max_choices, 'answer')}" if poll.max_choices else ""
        kind = f"Multiple choice{limit}"
        how = "click answers to add or remove them"
    else:
        kind = "Single choice"
        how = "click an answer to vote, click it again to take your vote back"
    parts = [f"{kind}: {how}."]
    if poll.role_id is not None:
        parts.append(f"Only members with <@&{poll.role_id}> can vote.")
    if poll.anonymous:
        parts.append("Anonymous: nobody can see who voted for what.")
    if poll.hide_results and poll.is_open:
        parts.append("Results stay hidden until the poll closes.")
    return "\n".join(parts)


def _status_line(poll: Poll) -> str:
    # An edited poll says so: members who voted early may want to look again.
    edited = f" Edited {timestamp(poll.edited_at)}." if poll.edited_at is not None else ""
    if poll.closed_at is not None:
        return f"**Closed** {timestamp(poll.closed_at)}.{edited}"
    if poll.closes_at is not None:
        return f"Closes {timestamp(poll.closes_at)} ({timestamp(poll.closes_at, 'f')}).{edited}"
    return f"Open until the creator or a moderator closes it.{edited}"


def _quorum_line(poll: Poll, tally: Tally) -> str:
    """On the open poll: how far from its quorum it is ("" without one)."""
    if poll.quorum is None:
        return ""
    if quorum_met(poll.quorum, tally.voters):
        return quorum_outcome(poll.quorum, tally.voters)
    return quorum_progress(poll.quorum, tally.voters) + "."


def _values(tally: Tally, *, show_counts: bool) -> list[list[str]]:
    """Per answer, candidate field values from fullest to most compact."""
    percentages = tally.percentages()
    total = tally.total
    out: list[list[str]] = []
    for count, pct in zip(tally.counts, percentages, strict=True):
        if not show_counts:
            out.append(["\u200b"])
            continue
        votes = plural(count, "vote")
        out.append([f"`{bar(count, total)}` {votes} · {pct}%", f"{votes} · {pct}%", f"{count} · {pct}%"])
    return out


def _fit_fields(
    names: Sequence[str], candidates: Sequence[Sequence[str]], budget: int
) -> tuple[tuple[str, str], ...]:
    """The fullest value form that keeps all fields within `budget` characters.

    If even the most compact values do not fit, the names are shortened evenly: answers are
    always shown in full elsewhere (the announcement, the export), and a card Discord
    refuses would show nothing at all.
    """
    levels = max((len(c) for c in candidates), default=1)
    values: list[str] = []
    for level in range(levels):
        values = [c[min(level, len(c) - 1)] for c in candidates]
        if sum(len(n) + len(v) for n, v in zip(names, values, strict=True)) <= budget:
            return tuple(zip(names, values, strict=True))
    room = max(0, budget - sum(len(v) for v in values))
    each = max(8, room // max(1, len(names)))
    return tuple(zip((shorten(n, each) for n in names), values, strict=True))


def _compact_size(names: Sequence[str], candidates: Sequence[Sequence[str]]) -> int:
    return sum(len(n) + len(c[-1]) for n, c in zip(names, candidates, strict=True))


def _result_line(poll: Poll, tally: Tally, room: int) -> str:
    """The winner line, after the quorum's outcome when the poll has one: a missed quorum
    names no winner at all."""
    if poll.quorum is None:
        return _fitted_winner(poll.options, tally, room)
    outcome = quorum_outcome(poll.quorum, tally.voters)
    if not quorum_met(poll.quorum, tally.voters):
        return outcome
    return f"{outcome} {_fitted_winner(poll.options, tally, room - len(outcome) - 1)}"


def _fitted_winner(options: Sequence[str], tally: Tally, room: int) -> str:
    """The winner line with full answer text when it fits in `room`, else by answer number."""
    full = winner_line(options, tally)
    leaders = tally.leaders()
    if len(full) <= room or not leaders:  # "No votes were cast." is as short as it gets
        return full
    votes = plural(tally.counts[leaders[0]], "vote")
    if len(leaders) == 1:
        return f"Winner: answer {leaders[0] + 1} with {votes}."
    return f"Tie between answers {', '.join(str(i + 1) for i in leaders)} with {votes} each."


def _card(
    *,
    title: str,
    head: str,
    tail: Sequence[str],
    poll: Poll,
    tally: Tally,
    show_counts: bool,
    winner: bool,
    footer: str,
    color: int,
    image: str | None = None,
    budget: int = EMBED_TOTAL,
) -> tuple[Card, str]:
    """Lay out a card within Discord's limits and `budget` characters (title, description,
    fields and footer together); returns it and the winner line used ("").

    Answers removed by /poll edit are left out; the others keep their own numbers."""
    shown = poll.shown
    names = [shorten(f"{i + 1}. {escape(poll.options[i])}", FIELD_NAME_LIMIT) for i in shown]
    every = _values(tally, show_counts=show_counts)
    candidates = [every[i] for i in shown]
    fixed = "\n".join([head, *tail])
    winner_text = ""
    if winner:
        room = min(
            budget - len(title) - len(fixed) - len(footer) - _compact_size(names, candidates),
            DESCRIPTION_LIMIT - len(fixed),
        ) - 1
        winner_text = _result_line(poll, tally, room)
    description = "\n".join([head, winner_text, *tail] if winner_text else [head, *tail])
    fields = _fit_fields(names, candidates, budget - len(title) - len(description) - len(footer))
    return Card(title, description, fields, footer, color, image), winner_text


def poll_card(
    poll: Poll, tally: Tally, *, show_counts: bool, creator_name: str | None = None, budget: int = EMBED_TOTAL
) -> Card:
    """The poll message itself (also used for `/poll results`), within `budget` characters:
    an embed's total by default; the poll message's layout passes its own."""
    head = f"**{escape(poll.question)}**\n\n{_rules_line(poll)}\n{_status_line(poll)}"
    if poll.is_open and poll.quorum is not None:
        head += "\n" + _quorum_line(poll, tally)
    card, _ = _card(
        title=f"📊 Poll #{poll.number}" + (" (closed)" if not poll.is_open else ""),
        head=head,
        tail=(),
        poll=poll,
        tally=tally,
        show_counts=show_counts,
        winner=not poll.is_open,
        footer=_footer(poll, tally, creator_name),
        color=COLOR_OPEN if poll.is_open else COLOR_CLOSED,
        budget=budget,
    )
    return card


def _footer(poll: Poll, tally: Tally, creator_name: str | None) -> str:
    parts = [f"Poll #{poll.number}"]
    if poll.multiple:
        parts.append(f"{plural(tally.total, 'vote')} from {plural(tally.voters, 'voter')}")
    else:
        parts.append(plural(tally.voters, "voter"))
    if creator_name:
        parts.append(f"asked by {creator_name}")
    return shorten(" · ".join(parts), FOOTER_LIMIT)


def total_line(poll: Poll, tally: Tally) -> str:
    line = f"Total: {plural(tally.total, 'vote')}"
    if poll.multiple:
        line += f" from {plural(tally.voters, 'voter')}"
    return line + "."


def announcement(poll: Poll, tally: Tally, *, chart_filename: str | None) -> Rendered:
    """The public reply that closes a poll: every answer in full, counts, share, the winner."""
    card, _ = _card(
        title=f"🏁 Results of poll #{poll.number}",
        head=f"**{escape(poll.question)}**\n",
        tail=(total_line(poll, tally),),
        poll=poll,
        tally=tally,
        show_counts=True,
        winner=True,
        footer=f"Poll #{poll.number} · closed" + (" by its deadline" if poll.closed_by is None else ""),
        color=COLOR_CLOSED,
        image=chart_filename,
    )
    lead = f"📊 Poll #{poll.number} has closed. "
    # Never cut: a cut winner line could leave Quorum's `**` unclosed.
    content = lead + _result_line(poll, tally, MESSAGE_LIMIT - len(lead))
    return Rendered(content=content, cards=(card,))


def voters_card(
    poll: Poll, voters: Mapping[int, Sequence[int]], *, budget: int, counts: Sequence[int] | None = None
) -> Card | None:
    """Who voted for what (public polls, creator and Manage Server only), within `budget`.

    `voters` may hold only the first few voters of each answer; `counts` (the tally) then
    says how many there are in all.

    None when not even the card's frame fits beside the poll card.
    """
    title = "Who voted for what"
    footer = "The full list is in /poll export."
    frame = len(title) + len(footer)
    if not any(voters.values()):
        empty = "Nobody has voted yet."
        return Card(title=title, description=empty, footer=footer) if frame + len(empty) <= budget else None
    too_many = "Too many voters to list here."
    if frame + len(too_many) > budget:
        return None
    room = budget - frame
    fields: list[tuple[str, str]] = []
    with_votes = [i for i in poll.shown if voters.get(i)]
    per_field = min(FIELD_VALUE_LIMIT, room // max(1, len(with_votes)) - 64)
    if per_field >= 40:
        for i in with_votes:
            name = shorten(f"{i + 1}. {escape(poll.options[i])}", 60)
            value = _mentions(voters[i], per_field, counts[i] if counts is not None else None)
            fields.append((name, value))
            room -= len(name) + len(value)
    if not fields:
        return Card(title=title, description=too_many, footer=footer)
    return Card(title=title, description="", fields=tuple(fields), footer=footer)


def _mentions(user_ids: Sequence[int], limit: int, total: int | None = None) -> str:
    """Mentions within `limit` characters; `total` counts voters beyond the ids given."""
    total = len(user_ids) if total is None else max(total, len(user_ids))
    shown: list[str] = []
    length = 0
    for n, uid in enumerate(user_ids):
        mention = f"<@{uid}>"
        more = f" …and {total - n} more"
        if length + len(mention) + 1 + len(more) > limit:
            return " ".join(shown) + more
        shown.append(mention)
        length += len(mention) + 1
    if total > len(shown):
        return " ".join(shown) + f" …and {total - len(shown)} more"
    return " ".join(shown)


# The answers the confirmations name, escaped once rather than on every click (escaping is
# six regular-expression passes). Bounded: 4,096 answers of at most 200 characters.
_escaped_answer = functools.lru_cache(maxsize=4096)(escape)


def vote_confirmation(poll: Poll, change: str, option: int, choices: Sequence[int]) -> str:
    """The ephemeral reply to a click, sent only once the vote is committed."""
    clicked = _escaped_answer(poll.options[option])
    if poll.multiple:
        if change == "added":
            head = f"Added **{clicked}** to your answers."
        else:
            head = f"Removed **{clicked}** from your answers."
        if choices:
            listed = "\n".join(f"• {_escaped_answer(poll.options[i])}" for i in choices)
            return shorten(f"{head}\nYour answers now:\n{listed}", MESSAGE_LIMIT)
        return f"{head}\nYou have no answers in this poll now."
    if change == "removed":
        return f"Your vote is removed; you have no vote in this poll now.\n(It was: **{clicked}**)"
    lead = "Your vote is now" if change == "moved" else "Your vote:"
    return f"{lead} **{clicked}**\nClick the same answer again to take your vote back."


def scheduled_confirmation(poll: Poll, *, channel_mention: str) -> str:
    """The creator's ephemeral answer to `/poll create … starts:`."""
    assert poll.starts_at is not None
    line = (
        f"Poll #{poll.number} will appear in {channel_mention} {timestamp(poll.starts_at, 'F')} "
        f"({timestamp(poll.starts_at)})."
    )
    if poll.repeat_every is not None:
        line += f" It repeats every {duration_text(poll.repeat_every)}."
    return line + " `/poll scheduled` lists what is planned; `/poll cancel` cancels it."


def duration_text(seconds: int) -> str:
    """`90061` → "1 day 1 hour 1 minute": how Quorum says an interval back to people."""
    parts = []
    for unit, size in (("week", 604800), ("day", 86400), ("hour", 3600), ("minute", 60)):
        count, seconds = divmod(seconds, size)
        if count:
            parts.append(plural(count, unit))
    return " ".join(parts) or plural(seconds, "second")


def repeat_text(seconds: int) -> str:
    """`86400` → "every 1 day"."""
    return f"every {duration_text(seconds)}"


def scheduled_card(polls: Sequence[Poll], total: int) -> Card:
    """`/poll scheduled`: the server's polls still to be posted, soonest first (`total` of
    them in all); within the embed limits however many there are."""
    if not polls:
        return Card(
            title="Scheduled polls",
            description="Nothing is scheduled in this server. Plan a poll with `/poll create … starts:` "
            "or `repeat:`.",
        )
    lines: list[str] = []
    length = 0
    budget = DESCRIPTION_LIMIT - 200  # room for the "…and N more" line
    for shown, poll in enumerate(polls):
        assert poll.starts_at is not None
        repeat = f" · {repeat_text(poll.repeat_every)}" if poll.repeat_every else ""
        copy = f" (copy {poll.series_copy})" if poll.repeat_every and poll.series_copy else ""
        line = (
            f"**#{poll.number}**{copy} {escape(shorten(poll.question, 80))}\n"
            f"<#{poll.channel_id}> · {timestamp(poll.starts_at, 'F')} ({timestamp(poll.starts_at)}){repeat}"
            f" · by <@{poll.creator_id}>"
        )
        if length + len(line) + 1 > budget:
            lines.append(f"…and {total - shown:,} more.")
            break
        lines.append(line)
        length += len(line) + 1
    else:
        if total > len(polls):
            lines.append(f"…and {total - len(polls):,} more.")
    return Card(
        title="Scheduled polls",
        description="\n".join(lines),
        footer="/poll cancel stops one (a repeating poll: its next copy and every later one).",
    )


def cancel_confirmation(named: Poll, cancelled: Poll | None, open_copies: Sequence[Poll]) -> str:
    """The answer to `/poll cancel`: what will no longer be posted, what stays open."""
    if named.series_id is None:
        return f"Poll #{named.number} is cancelled; it will not be posted."
    if cancelled is not None and cancelled.id == named.id:
        line = f"Poll #{named.number} is cancelled and its series repeats no more."
    elif cancelled is not None and cancelled.starts_at is not None:
        line = (
            f"Poll #{named.number} repeats no more: its next copy (#{cancelled.number}, due "
            f"{timestamp(cancelled.starts_at, 'f')}) will not be posted."
        )
    else:
        line = f"Poll #{named.number} repeats no more."
    shown = open_copies[:5]
    for copy in shown:
        until = f" ({timestamp(copy.closes_at)})" if copy.closes_at is not None else ""
        line += f" Copy #{copy.number} stays open until its deadline{until}."
    if len(open_copies) > len(shown):
        line += f" {len(open_copies) - len(shown):,} more copies stay open until their deadlines."
    return line
