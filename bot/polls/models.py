"""Plain data for polls: what is stored, what a vote did, what a tally says."""

from __future__ import annotations

from dataclasses import dataclass
from enum import Enum

# Discord's limits, which the poll has to fit.
MIN_OPTIONS = 2
MAX_OPTIONS = 25  # 5 rows of 5 buttons
MAX_OPTION_LENGTH = 200
MAX_QUESTION_LENGTH = 300
MIN_DURATION = 60  # seconds
MAX_DURATION = 32 * 24 * 3600
MAX_ID = 2**63 - 1  # SQLite integers are signed 64-bit: a larger id names nothing stored
MIN_REPEAT = 3600  # a repeating poll comes back at most every hour


@dataclass(frozen=True, slots=True)
class PollDraft:
    """A validated request to create a poll, before it is stored."""

    question: str
    options: tuple[str, ...]
    duration: int | None = None  # seconds; None = open until closed by hand
    multiple: bool = False
    anonymous: bool = False
    hide_results: bool = False
    role_id: int | None = None
    max_choices: int | None = None
    ranked: bool = False  # ranked choice, counted by instant-runoff
    quorum: int | None = None  # the fewest voters for the result to stand
    remind: int | None = None  # seconds before the deadline to remind the channel
    starts_at: float | None = None  # post then instead of now (an instant, UTC)
    repeat: int | None = None  # seconds between copies of a repeating poll


@dataclass(frozen=True, slots=True)
class Poll:
    id: int
    guild_id: int
    number: int
    channel_id: int
    message_id: int | None
    creator_id: int
    question: str
    options: tuple[str, ...]
    multiple: bool
    anonymous: bool
    hide_results: bool
    role_id: int | None
    max_choices: int | None
    created_at: float
    closes_at: float | None
    closed_at: float | None
    closed_by: int | None
    announce_started_at: float | None
    announcement_id: int | None
    announced_at: float | None
    ranked: bool = False
    quorum: int | None = None
    duration: int | None = None  # seconds: closes_at is set from it when the poll is posted
    remind_before: int | None = None
    starts_at: float | None = None  # scheduled: when it is (or was) to be posted
    repeat_every: int | None = None
    series_id: int | None = None  # repeating: the first copy's id
    series_copy: int | None = None  # repeating: 1, 2, …
    cancelled_at: float | None = None
    cancelled_by: int | None = None
    edited_at: float | None = None
    removed: frozenset[int] = frozenset()  # positions of answers removed by /poll edit

    @property
    def is_open(self) -> bool:
        return self.closed_at is None

    @property
    def is_posted(self) -> bool:
        return self.message_id is not None

    @property
    def is_scheduled(self) -> bool:
        """Waiting to be posted (not cancelled)."""
        return self.message_id is None and self.starts_at is not None and self.cancelled_at is None

    @property
    def shown(self) -> tuple[int, ...]:
        """Positions of the answers on the poll, in order: removed ones keep their number
        (position + 1) but are no longer shown or votable."""
        return tuple(i for i in range(len(self.options)) if i not in self.removed)

    def votable(self, option: int) -> bool:
        return 0 <= option < len(self.options) and option not in self.removed

    def can_manage(self, user_id: int, *, manage_guild: bool) -> bool:
        """The creator and members with Manage Server may close, export and see voters."""
        return manage_guild or user_id == self.creator_id

    def results_visible_to(self, user_id: int, *, manage_guild: bool) -> bool:
        """Counts of a `hide_results` poll stay hidden from members until it closes."""
        return not self.hide_results or not self.is_open or self.can_manage(user_id, manage_guild=manage_guild)


class VoteChange(Enum):
    ADDED = "added"
    MOVED = "moved"  # single choice: the vote went from one answer to another
    REMOVED = "removed"


@dataclass(frozen=True, slots=True)
class VoteOutcome:
    change: VoteChange
    option: int  # the answer clicked
    choices: tuple[int, ...]  # the member's answers after the click, in answer order


class VoteRefused(Exception):
    """A click the rules refuse; `str(error)` tells the member what to do."""


class PollClosed(VoteRefused):
    def __init__(self) -> None:
        super().__init__("This poll is closed; votes can no longer be changed.")


class OptionRemoved(VoteRefused):
    def __init__(self) -> None:
        super().__init__("That answer was removed from the poll; pick one of the answers shown on it now.")


class PollNotFound(VoteRefused):
    def __init__(self) -> None:
        super().__init__("This poll no longer exists.")


class TooManyChoices(VoteRefused):
    def __init__(self, max_choices: int) -> None:
        self.max_choices = max_choices
        noun = "answer" if max_choices == 1 else "answers"
        super().__init__(
            f"You can pick at most {max_choices} {noun} in this poll. "
            "Click one of your answers to remove it first."
        )


@dataclass(frozen=True, slots=True)
class StoredVote:
    option: int
    user_id: int
    voted_at: float
