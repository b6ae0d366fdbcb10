"""Parse how a member names a poll: its number, its message id, or its message link."""

from __future__ import annotations

import re
from dataclasses import dataclass

from .models import MAX_ID

_LINK = re.compile(
    r"^<?https?://(?:(?:ptb|canary)\.)?discord(?:app)?\.com/channels/(\d+|@me)/(\d+)/(\d+)/?>?$"
)
# A bare number is a poll number up to 9 digits; after `#` it is one whatever its length.
_NUMBER = re.compile(r"^(?:#\s*(\d+)|(\d{1,9}))$")
# More digits than any stored id has: such a number is not converted at all (int() of
# thousands of digits raises, Python caps the conversion), only known to name no poll.
_MAX_DIGITS = 20
_SNOWFLAKE = re.compile(r"^(\d{15,21})$")


@dataclass(frozen=True, slots=True)
class PollRef:
    number: int | None = None
    message_id: int | None = None
    guild_id: int | None = None  # from a link: the server the link points into

    @property
    def storable(self) -> bool:
        """False when a number or id is beyond what the database can hold: no poll has it."""
        return all(0 <= n <= MAX_ID for n in (self.number, self.message_id) if n is not None)


def _number(digits: str) -> int:
    return MAX_ID + 1 if len(digits) > _MAX_DIGITS else int(digits)


def parse_poll_ref(text: str) -> PollRef | None:
    """None when the text is none of the accepted forms."""
    text = text.strip()
    if match := _LINK.match(text):
        guild = match.group(1)
        return PollRef(message_id=_number(match.group(3)), guild_id=None if guild == "@me" else _number(guild))
    if match := _SNOWFLAKE.match(text):
        return PollRef(message_id=int(match.group(1)))
    if match := _NUMBER.match(text):
        return PollRef(number=_number(match.group(1) or match.group(2)))
    return None
