"""When a scheduled poll appears: what a moderator types for `starts`, as an instant (UTC).

Three forms, because moderators come from three habits:
- a duration from now (`2h`, `1d`, `1h30m`): pytimeparse, as for `duration`;
- ISO 8601 with a UTC offset (`2026-12-24 18:00 +01:00`, `2026-12-24T18:00Z`): the offset is
  required, since the bot cannot know which time zone a bare "18:00" means;
- a Discord timestamp (`<t:1766595600>`, `<t:1766595600:F>`), which Discord's own clients
  produce and show in each reader's zone.

Everything after parsing is arithmetic on instants (seconds since the epoch): a repeat of
`1d` is exactly 24 hours, whatever daylight-saving change falls in between.
"""

from __future__ import annotations

import re
from datetime import datetime

import pytimeparse

from ..markdown import escape
from .validation import PollInputError

MAX_AHEAD = 366 * 24 * 3600  # a poll can be scheduled up to a year ahead
_DISCORD_TIMESTAMP = re.compile(r"<t:(-?\d{1,12})(?::[tTdDfFRsS])?>")
_SPACE_BEFORE_OFFSET = re.compile(r"\s+(?=[+-]\d{2}(?::?\d{2})?$)")
_UTC_SUFFIX = re.compile(r"\s*(?:utc|gmt|z)$", re.IGNORECASE)
_HELP = (
    "Use a duration from now (`2h`, `1d`), a date and time with its UTC offset "
    "(`2026-12-24 18:00 +01:00`), or a Discord timestamp (`<t:1766595600>`)."
)


def parse_when(raw: str, *, now: float) -> float:
    """The instant `raw` names, in the future and at most a year ahead."""
    text = raw.strip()
    if not text or len(text) > 60:
        raise PollInputError(f"I can't read that start time. {_HELP}")
    at = _instant(text, now)
    if at <= now:
        raise PollInputError(f"That start time (<t:{int(at)}:f>) has already passed. {_HELP}")
    if at - now > MAX_AHEAD:
        raise PollInputError("A poll can be scheduled at most a year ahead.")
    return at


def _instant(text: str, now: float) -> float:
    if match := _DISCORD_TIMESTAMP.fullmatch(text):
        return float(match[1])
    # pytimeparse reads "18:00" as eighteen minutes: a clock time is never taken as a duration.
    seconds = pytimeparse.parse(text.lower()) if ":" not in text else None
    if seconds is not None:
        return now + seconds
    iso = _UTC_SUFFIX.sub("+00:00", text)
    iso = _SPACE_BEFORE_OFFSET.sub("", iso)
    try:
        parsed = datetime.fromisoformat(iso)
    except ValueError:
        raise PollInputError(f"“{escape(text[:40])}” is not a start time I understand. {_HELP}") from None
    if parsed.tzinfo is None:
        raise PollInputError(
            f"“{escape(text[:40])}” has no UTC offset, so I can't tell which time zone it means. "
            "Add one (`2026-12-24 18:00 +01:00`) or use a Discord timestamp (`<t:1766595600>`)."
        )
    return parsed.timestamp()
