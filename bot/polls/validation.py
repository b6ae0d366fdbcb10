"""Turn what a moderator typed into a `PollDraft`, or say clearly what to fix."""

from __future__ import annotations

import unicodedata

import pytimeparse

from ..markdown import escape
from .models import (
    MAX_DURATION,
    MAX_OPTION_LENGTH,
    MAX_OPTIONS,
    MAX_QUESTION_LENGTH,
    MIN_DURATION,
    MIN_OPTIONS,
    MIN_REPEAT,
    PollDraft,
)


class PollInputError(ValueError):
    """Bad input for a new poll; the message says what to do about it."""


# Unicode's Default_Ignorable_Code_Point ranges (DerivedCoreProperties.txt): characters that
# fonts draw as nothing, such as zero-width spaces, joiners, variation selectors, soft
# hyphens, bidi controls, tags and the Hangul fillers.
_IGNORABLE_RANGES = (
    (0x00AD, 0x00AD), (0x034F, 0x034F), (0x061C, 0x061C), (0x115F, 0x1160), (0x17B4, 0x17B5),
    (0x180B, 0x180F), (0x200B, 0x200F), (0x202A, 0x202E), (0x2060, 0x206F), (0x3164, 0x3164),
    (0xFE00, 0xFE0F), (0xFEFF, 0xFEFF), (0xFFA0, 0xFFA0), (0xFFF0, 0xFFF8), (0x1BCA0, 0x1BCA3),
    (0x1D173, 0x1D17A), (0xE0000, 0xE0FFF),
)  # fmt: skip
# Characters drawn as an empty cell, read like a space: the braille blank and the standalone
# Hangul fillers (ignorable by Unicode, but many fonts draw them as wide as a letter).
_BLANK_GLYPHS = {"\u2800", "\u3164", "\uffa0"}
_ZWJ = "\u200d"


def _ignorable(char: str) -> bool:
    """Drawn as nothing: default-ignorable, or a format or control character."""
    code = ord(char)
    return unicodedata.category(char) in ("Cf", "Cc") or any(lo <= code <= hi for lo, hi in _IGNORABLE_RANGES)


def _pictograph(char: str) -> bool:
    # Emoji and their skin-tone modifiers: what a zero-width joiner joins into one emoji.
    return unicodedata.category(char) in ("So", "Sk")


def _visible(text: str) -> str:
    """`text` without what is drawn as nothing, blank glyphs read as spaces. The joiners of
    emoji sequences like 👨‍👩‍👧 stay: they change what is drawn."""
    chars = [" " if c in _BLANK_GLYPHS else c for c in text]
    chars = [c for c in chars if c == _ZWJ or not _ignorable(c)]
    out: list[str] = []
    for i, char in enumerate(chars):
        joins = bool(out) and _pictograph(out[-1]) and i + 1 < len(chars) and _pictograph(chars[i + 1])
        if char != _ZWJ or joins:
            out.append(char)
    return "".join(out)


def is_blank(text: str) -> bool:
    """True when `text` shows nothing: spaces, invisible characters, combining marks alone."""
    return all(char.isspace() or unicodedata.category(char).startswith("M") for char in _visible(text))


def option_key(text: str) -> str:
    """What answers are compared by: texts that look the same have the same key.

    Invisible characters are dropped, compatibility forms (full-width, ligatures) and
    composed/decomposed accents unified by NFKC, case folded, and spaces collapsed.
    """
    key = unicodedata.normalize("NFKC", _visible(text))
    key = unicodedata.normalize("NFKC", key.casefold())
    return " ".join(key.split())


def parse_question(raw: str) -> str:
    question = " ".join(raw.split())
    if not question:
        raise PollInputError("The question is empty. Type the question you want to ask.")
    if is_blank(question):
        raise PollInputError(
            "The question has no visible text, only invisible characters. "
            "Type the question you want to ask."
        )
    if len(question) > MAX_QUESTION_LENGTH:
        raise PollInputError(
            f"The question is {len(question)} characters long; keep it to {MAX_QUESTION_LENGTH}."
        )
    return question


def parse_options(raw: str) -> tuple[str, ...]:
    """Answers separated by `|`; empty parts are ignored, answers that look blank or look
    the same as another (see `option_key`) refused. Kept as typed, spaces collapsed."""
    options = [" ".join(part.split()) for part in raw.split("|")]
    options = [o for o in options if o]
    if len(options) < MIN_OPTIONS:
        raise PollInputError(
            f"A poll needs at least {MIN_OPTIONS} answers, separated by `|` "
            "(for example `Yes | No`)."
        )
    if len(options) > MAX_OPTIONS:
        raise PollInputError(
            f"That is {len(options)} answers; a poll can have at most {MAX_OPTIONS}."
        )
    for number, option in enumerate(options, start=1):
        if len(option) > MAX_OPTION_LENGTH:
            raise PollInputError(
                f"Answer {number} is {len(option)} characters long; "
                f"keep each answer to {MAX_OPTION_LENGTH}."
            )
    for number, option in enumerate(options, start=1):
        if is_blank(option):
            raise PollInputError(
                f"Answer {number} has no visible text, only invisible characters. "
                "Type the answer, or leave it out."
            )
    seen: dict[str, int] = {}
    for number, option in enumerate(options, start=1):
        key = option_key(option)
        if key in seen:
            raise PollInputError(
                f"Answers {seen[key]} and {number} are the same (“{escape(option)}”); "
                "give each answer once."
            )
        seen[key] = number
    return tuple(options)


def parse_duration(raw: str) -> int:
    """`30m`, `2h`, `1d`, `1h30m`, `90s`, `1w` → seconds, between 1 minute and 32 days.

    Parsing is pytimeparse's (a small, long-lived parser of exactly these forms); a bare
    number is refused, since "5" could mean minutes or hours.
    """
    text = raw.strip().lower()
    seconds = pytimeparse.parse(text) if text else None
    if seconds is None:
        raise PollInputError(
            f"“{escape(raw.strip()[:40])}” is not a duration I understand. "
            "Use forms like `90s`, `30m`, `2h`, `1h30m`, `1d` or `1w`."
        )
    if seconds < MIN_DURATION:
        raise PollInputError("A poll must run for at least 1 minute (`1m`).")
    if seconds > MAX_DURATION:
        raise PollInputError("A poll can run for at most 32 days (`32d`).")
    return int(seconds)


MAX_REPEAT = 366 * 24 * 3600


def parse_repeat(raw: str) -> int:
    """How often a repeating poll comes back: at least an hour, at most a year."""
    text = raw.strip().lower()
    seconds = pytimeparse.parse(text) if text and ":" not in text else None
    if seconds is None:
        raise PollInputError(
            f"“{escape(raw.strip()[:40])}” is not a repeat interval I understand. "
            "Use forms like `1d`, `1w` or `12h`."
        )
    if seconds < MIN_REPEAT:
        raise PollInputError("A poll can repeat at most every hour (`repeat: 1h` or longer).")
    if seconds > MAX_REPEAT:
        raise PollInputError("A poll can repeat at most a year apart.")
    return int(seconds)


def parse_remind(raw: str, duration: int | None) -> int:
    """How long before the deadline to remind: needs a deadline, and must fall inside the poll."""
    if duration is None:
        raise PollInputError("`remind` needs a deadline: add a `duration` (for example `duration: 2d`).")
    text = raw.strip().lower()
    seconds = pytimeparse.parse(text) if text and ":" not in text else None
    if seconds is None:
        raise PollInputError(
            f"“{escape(raw.strip()[:40])}” is not a duration I understand. Use forms like `30m`, `2h` or `1d`."
        )
    if seconds < MIN_DURATION:
        raise PollInputError("A reminder comes at least 1 minute (`1m`) before the deadline.")
    if seconds >= duration:
        raise PollInputError(
            "The reminder would come before the poll opens: make `remind` shorter than `duration`."
        )
    return int(seconds)


def build_draft(
    *,
    question: str,
    options: str,
    duration: str | None = None,
    multiple: bool = False,
    anonymous: bool = False,
    hide_results: bool = False,
    role_id: int | None = None,
    max_choices: int | None = None,
    ranked: bool = False,
    quorum: int | None = None,
    remind: str | None = None,
    starts_at: float | None = None,
    repeat: str | None = None,
) -> PollDraft:
    parsed_question = parse_question(question)
    parsed_options = parse_options(options)
    seconds = parse_duration(duration) if duration is not None and duration.strip() else None
    if ranked and multiple:
        raise PollInputError(
            "A poll is either ranked (members order the answers) or multiple choice, not both: "
            "drop `multiple` or `ranked`."
        )
    if ranked and max_choices is not None:
        raise PollInputError("`max_choices` does not apply to ranked polls: members rank as many answers as they like.")
    if quorum is not None and quorum < 1:
        raise PollInputError("`quorum` must be at least 1 voter.")
    remind_before = parse_remind(remind, seconds) if remind is not None and remind.strip() else None
    repeat_every = parse_repeat(repeat) if repeat is not None and repeat.strip() else None
    if repeat_every is not None and seconds is None:
        raise PollInputError(
            "A repeating poll needs a `duration`: each copy closes that long after it appears "
            "(otherwise copies would pile up open)."
        )
    if repeat_every is not None and seconds is not None and seconds > repeat_every:
        raise PollInputError(
            "Each copy of a repeating poll closes before the next one appears: make `duration` "
            "at most as long as `repeat`."
        )
    if max_choices is not None:
        if not multiple:
            raise PollInputError(
                "`max_choices` only applies to multiple-choice polls: add `multiple: True`."
            )
        if max_choices < 1:
            raise PollInputError("`max_choices` must be at least 1.")
        if max_choices >= len(parsed_options):
            max_choices = None  # no limit in practice
    return PollDraft(
        question=parsed_question,
        options=parsed_options,
        duration=seconds,
        multiple=multiple,
        anonymous=anonymous,
        hide_results=hide_results,
        role_id=role_id,
        max_choices=max_choices,
        ranked=ranked,
        quorum=quorum,
        remind=remind_before,
        starts_at=starts_at,
        repeat=repeat_every,
    )
