"""What a ranked poll looks like: its card, the private ballot, and the round-by-round result.

Same rules as `render.py`: members' text is escaped wherever Discord renders markdown (and
measured escaped); select-menu labels are plain text, as typed, within 100 characters; every
message and embed fits Discord's limits with 25 answers of 200 characters, however many
rounds the count takes (rounds name answers by number; the answers are listed once, cut
evenly when the full text would not fit).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import replace

from ..markdown import escape
from .models import Poll
from .ranked import Round, Runoff, ordinal
from .render import (
    COLOR_CLOSED,
    DESCRIPTION_LIMIT,
    EMBED_TOTAL,
    FIELD_VALUE_LIMIT,
    MESSAGE_LIMIT,
    Card,
    Rendered,
    _rules_line,
    poll_card,
    shorten,
)
from .tally import Tally, plural, quorum_met, quorum_outcome

SELECT_LABEL_LIMIT = 100
# On the card, in place of the single-choice rules line (never longer than it: the card's
# layout was fitted with that line).
OPEN_RULE = "Ranked choice: click an answer to rank them; counts are 1st choices."
CLOSED_RULE = "Ranked choice, counted by instant-runoff: final round shown."


def ranked_card(
    poll: Poll,
    tally: Tally,
    *,
    show_counts: bool,
    creator_name: str | None = None,
    runoff: Runoff | None = None,
    **layout: int,
) -> Card:
    """The ranked poll's card: first preferences while open; once closed (`runoff` given),
    the final round's counts, so the winner it names is instant-runoff's."""
    if runoff is not None:
        tally = runoff.final_tally(len(poll.options))
    card = poll_card(poll, tally, show_counts=show_counts, creator_name=creator_name, **layout)
    usual = _rules_line(poll).split("\n", 1)[0]
    rule = CLOSED_RULE if runoff is not None else OPEN_RULE
    if usual in card.description and len(rule) <= len(usual):
        card = replace(card, description=card.description.replace(usual, rule, 1))
    return card


# ---------------------------------------------------------------- the ballot


def answer_label(poll: Poll, position: int) -> str:
    """A select option's label: plain text, at most 100 characters."""
    return shorten(f"{position + 1}. {poll.options[position]}", SELECT_LABEL_LIMIT)


def _ranking_lines(poll: Poll, ranking: Sequence[int], each: int) -> list[str]:
    return [f"{n}. {escape(shorten(poll.options[p], each))} (answer {p + 1})" for n, p in enumerate(ranking, 1)]


def _fit(parts: Sequence[str | Sequence[int]], poll: Poll, limit: int = MESSAGE_LIMIT) -> str:
    """Join text parts and rankings (rendered as numbered lines), shortening the answers'
    text evenly until the whole fits in `limit` characters."""
    for each in (200, 120, 80, 50, 30, 16, 8):
        lines: list[str] = []
        for part in parts:
            lines.extend([part] if isinstance(part, str) else _ranking_lines(poll, part, each))
        text = "\n".join(lines)
        if len(text) <= limit:
            return text
    return shorten(text, limit)  # unreachable for 25 answers: 50 lines of 8 characters fit


def ballot_text(poll: Poll, stored: Sequence[int] | None, draft: Sequence[int]) -> str:
    """The private ballot: the member's stored ballot, the ranking being built, what next."""
    question = escape(shorten(poll.question, 200))
    parts: list[str | Sequence[int]] = [f"**Your ballot for poll #{poll.number}:** {question}"]
    if stored:
        parts += ["Counted now:", stored]
    else:
        parts.append("You have no ballot in this poll yet.")
    left = [p for p in poll.shown if p not in draft]
    if draft:
        parts += ["", "Your new ranking:" if stored else "Your ranking:", draft]
    else:
        parts += ["", "Your new ranking is empty."]
    if left:
        step = f"Pick your {ordinal(len(draft) + 1)} choice below"
        parts.append(step + (", or press **Submit** to cast this ranking." if draft else "."))
    else:
        parts.append("Every answer is ranked: press **Submit** to cast this ranking.")
    return _fit(parts, poll)


def ballot_counted(poll: Poll, ranking: Sequence[int]) -> str:
    """Sent only once the ballot is committed."""
    return _fit(
        ["Your ballot is counted:", ranking, "To change it, click any answer on the poll again."], poll
    )


def ballot_removed(poll: Poll, had_one: bool) -> str:
    if not had_one:
        return f"You had no ballot in poll #{poll.number}; nothing changed."
    return f"Your ballot is removed; you have no ballot in poll #{poll.number} now."


def placeholder(draft: Sequence[int]) -> str:
    return f"Pick your {ordinal(len(draft) + 1)} choice"


# ---------------------------------------------------------------- the result


def _round_value(round_: Round, previous: Round | None, top: int | None) -> str:
    """One round: counts, largest first (answers by number), who is out, exhausted ballots.
    `top` keeps only that many counts (the compact form)."""
    ranked = sorted(round_.counts.items(), key=lambda item: (-item[1], item[0]))
    shown = ranked if top is None else ranked[:top]
    counts = " · ".join(f"#{a + 1} **{c:,}**" for a, c in shown)
    if len(shown) < len(ranked):
        counts += f" · {len(ranked) - len(shown)} more"
    lines = [counts]
    if round_.eliminated:
        out = ", ".join(f"#{a + 1}" for a in round_.eliminated)
        unvoted = all(round_.counts[a] == 0 for a in round_.eliminated)
        lines.append(f"Eliminated: {out}" + (" (no votes)" if unvoted else ""))
    newly = round_.exhausted - (previous.exhausted if previous else 0)
    if round_.exhausted:
        lines.append(f"Exhausted ballots: {round_.exhausted:,}" + (f" (+{newly:,})" if previous and newly else ""))
    return "\n".join(lines)


def _round_fields(runoff: Runoff, top: int | None) -> list[tuple[str, str]]:
    fields = []
    for i, round_ in enumerate(runoff.rounds):
        previous = runoff.rounds[i - 1] if i else None
        name = f"Round {round_.number}" + (" (first preferences)" if round_.number == 1 else "")
        fields.append((name, _round_value(round_, previous, top)[:FIELD_VALUE_LIMIT]))
    return fields


def result_line(poll: Poll, runoff: Runoff, *, full_names: bool = True) -> str:
    """Who won by instant-runoff (or the tie, or no ballots); a missed quorum names no winner."""
    quorum = ""
    if poll.quorum is not None:
        quorum = quorum_outcome(poll.quorum, runoff.ballots)
        if not quorum_met(poll.quorum, runoff.ballots):
            return quorum
        quorum += " "

    def name(a: int) -> str:
        return f"**{a + 1}. {escape(poll.options[a])}**" if full_names else f"answer {a + 1}"

    final = runoff.final
    if runoff.winner is not None and final is not None:
        votes = final.counts[runoff.winner]
        return (
            f"{quorum}Winner by instant-runoff: {name(runoff.winner)} with {plural(votes, 'vote')} of "
            f"{final.continuing:,} in round {final.number}."
        )
    if runoff.tied and final is not None:
        names = ", ".join(name(a) for a in runoff.tied)
        each = plural(final.counts[runoff.tied[0]], "vote")
        return f"{quorum}Tie between {names} with {each} each in the final round."
    return f"{quorum}No ballots were cast."


def _answers_block(poll: Poll, room: int) -> str:
    """Every answer on the poll by number, cut evenly to fit `room` characters ("" if none fit)."""
    for each in (200, 120, 80, 50, 30, 16, 8):
        text = "\n".join(f"{a + 1}. {escape(shorten(poll.options[a], each))}" for a in poll.shown)
        if len(text) <= room:
            return text
    return ""


def ranked_announcement(poll: Poll, runoff: Runoff, *, chart_filename: str | None) -> Rendered:
    """The public reply that closes a ranked poll: the winner, every round, the answers."""
    title = f"🏁 Results of poll #{poll.number} (ranked choice)"
    footer = f"Poll #{poll.number} · closed" + (" by its deadline" if poll.closed_by is None else "")
    summary = (
        f"{plural(runoff.ballots, 'ballot')}, counted in {plural(len(runoff.rounds), 'round')}"
        + (f"; {plural(runoff.exhausted, 'ballot')} exhausted by the last." if runoff.exhausted else ".")
    )
    question = f"**{escape(poll.question)}**"
    for full_names in (True, False):
        outcome = result_line(poll, runoff, full_names=full_names)
        for top in (None, 8, 3):
            fields = _round_fields(runoff, top)
            head = "\n".join([question, "", outcome, summary, "", "**Answers**"])
            used = len(title) + len(footer) + sum(len(n) + len(v) for n, v in fields) + len(head) + 1
            room = min(EMBED_TOTAL - used, DESCRIPTION_LIMIT - len(head) - 1)
            answers = _answers_block(poll, room)
            if answers:
                card = Card(title, f"{head}\n{answers}", tuple(fields), footer, COLOR_CLOSED, chart_filename)
                lead = f"📊 Poll #{poll.number} has closed. "
                # Never cut: a cut line could leave Quorum's `**` unclosed.
                line = result_line(poll, runoff)
                if len(lead) + len(line) > MESSAGE_LIMIT:
                    line = result_line(poll, runoff, full_names=False)
                content = lead + line
                return Rendered(content=content, cards=(card,))
    raise AssertionError("the compact layout always fits")  # 24 rounds of 3 counts and 25 short answers
