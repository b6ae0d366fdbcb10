"""Parse how a member names a poll: its number, its message id, or its message link."""

from __future__ import annotations

import re
from dataclasses import dataclass

_LINK = re.compile(
    r"^<?https?://(?:(?:ptb|canary)\.)?discord(?:app)?\.com/channels/(\d+|@me)/(\d+)/(\d+)/?>?$"
)
_NUMBER = re.compile(r"^#?\s*(\d{1,9})$")
_SNOWFLAKE = re.compile(r"^(\d{15,21})$")


@dataclass(frozen=True, slots=True)
class PollRef:
    number: int | None = None
    message_id: int | None = None
    guild_id: int | None = None  # from a link: the server the link points into


def parse_poll_ref(text: str) -> PollRef | None:
    """None when the text is none of the accepted forms."""
    text = text.strip()
    if match := _LINK.match(text):
        guild = match.group(1)
        return PollRef(message_id=int(match.group(3)), guild_id=None if guild == "@me" else int(guild))
    if match := _SNOWFLAKE.match(text):
        return PollRef(message_id=int(match.group(1)))
    if match := _NUMBER.match(text):
        return PollRef(number=int(match.group(1)))
    return None
