"""Turn what a moderator typed into a `PollDraft`, or say clearly what to fix."""

from __future__ import annotations

import pytimeparse

from .models import (
    MAX_DURATION,
    MAX_OPTION_LENGTH,
    MAX_OPTIONS,
    MAX_QUESTION_LENGTH,
    MIN_DURATION,
    MIN_OPTIONS,
    PollDraft,
)


class PollInputError(ValueError):
    """Bad input for a new poll; the message says what to do about it."""


def parse_question(raw: str) -> str:
    question = " ".join(raw.split())
    if not question:
        raise PollInputError("The question is empty. Type the question you want to ask.")
    if len(question) > MAX_QUESTION_LENGTH:
        raise PollInputError(
            f"The question is {len(question)} characters long; keep it to {MAX_QUESTION_LENGTH}."
        )
    return question


def parse_options(raw: str) -> tuple[str, ...]:
    """Answers separated by `|`; blank parts are ignored, duplicates (any case) refused."""
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
    seen: dict[str, int] = {}
    for number, option in enumerate(options, start=1):
        key = option.casefold()
        if key in seen:
            raise PollInputError(
                f"Answers {seen[key]} and {number} are the same (“{option}”); "
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
            f"“{raw.strip()[:40]}” is not a duration I understand. "
            "Use forms like `90s`, `30m`, `2h`, `1h30m`, `1d` or `1w`."
        )
    if seconds < MIN_DURATION:
        raise PollInputError("A poll must run for at least 1 minute (`1m`).")
    if seconds > MAX_DURATION:
        raise PollInputError("A poll can run for at most 32 days (`32d`).")
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
) -> PollDraft:
    parsed_question = parse_question(question)
    parsed_options = parse_options(options)
    seconds = parse_duration(duration) if duration is not None and duration.strip() else None
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
    )
