"""Poll use cases, in plain Python: what happens when someone creates, votes, closes, looks up."""

from __future__ import annotations

import asyncio
from collections import OrderedDict
from collections.abc import Callable, Collection
from dataclasses import replace

from ..markdown import escape
from .ballots import BallotRepository, check_ranking
from .editing import EditRequest, EditResult
from .edits import EditRepository
from .models import (
    MAX_ID,
    MAX_OPTIONS,
    OptionRemoved,
    Poll,
    PollClosed,
    PollDraft,
    PollNotFound,
    VoteOutcome,
    VoteRefused,
)
from .ranked import Runoff, count_encoded
from .refs import PollRef, parse_poll_ref
from .repository import PollRepository

Clock = Callable[[], float]

# Posted polls the vote path keeps, most recently clicked first. A click needs a poll's
# answers, deadline and role; what changes (closing, and /poll edit's answers and deadline)
# the schema checks inside the vote's own write, an edit here forgets the poll, and a click
# the copy would refuse reads the poll again first (another process may have edited it). So
# a click costs one write, no read, on both backends. Bounded: memory does not grow with
# open polls.
VOTABLE_CACHE = 1024


class PollLookupError(LookupError):
    """The member named a poll that is not there; the message says how to name one."""


class NotAllowed(PermissionError):
    """The member may not do this to this poll; the message says who may."""


class PollService:
    def __init__(self, repo: PollRepository, clock: Clock) -> None:
        self.repo = repo
        self.edits = EditRepository(repo)
        self.ballots = BallotRepository(repo.db)
        self.clock = clock
        self._votable: OrderedDict[int, Poll] = OrderedDict()

    async def create(self, draft: PollDraft, *, guild_id: int, channel_id: int, creator_id: int) -> Poll:
        return await self.repo.create(
            draft, guild_id=guild_id, channel_id=channel_id, creator_id=creator_id, now=self.clock()
        )

    async def vote(
        self, poll_id: int, option: int, *, user_id: int, role_ids: Collection[int]
    ) -> tuple[Poll, VoteOutcome]:
        if not (0 <= poll_id <= MAX_ID and 0 <= option < MAX_OPTIONS):
            raise PollNotFound()  # a forged button: no stored poll has it
        cached = poll_id in self._votable
        poll = await self._votable_poll(poll_id)
        now = self.clock()
        if cached and poll is not None and _refused_by_copy(poll, option, now):
            # The copy may be older than an edit elsewhere (an answer added, the deadline moved).
            self.forget(poll_id)
            poll = await self._votable_poll(poll_id)
        if poll is None or poll.message_id is None or option >= len(poll.options):
            raise PollNotFound()  # not posted, or a button it never had
        if not poll.is_open or (poll.closes_at is not None and poll.closes_at <= now):
            # Past its deadline counts as closed even if the scheduler has not got to it yet.
            raise PollClosed()
        if option in poll.removed:
            raise OptionRemoved()  # a button from before an edit
        if poll.ranked:  # its clicks open a ballot (cast_ballot); never a vote
            raise VoteRefused("This poll is ranked: click an answer on it to open your ballot.")
        if poll.role_id is not None and poll.role_id not in role_ids:
            raise VoteRefused(f"Only members with the <@&{poll.role_id}> role can vote in this poll.")
        try:
            outcome = await self.repo.cast_vote(poll, user_id, option, now=now)
        except PollClosed:
            self._votable[poll_id] = replace(poll, closed_at=now)  # closed elsewhere meanwhile
            raise
        except OptionRemoved:
            self.forget(poll_id)  # removed by an edit elsewhere: read the answers again
            raise
        return poll, outcome

    async def _votable_poll(self, poll_id: int) -> Poll | None:
        poll = self._votable.get(poll_id)
        if poll is not None:
            self._votable.move_to_end(poll_id)
            return poll
        poll = await self.repo.get(poll_id)
        if poll is not None and poll.message_id is not None:  # unposted: its message id is still to come
            self._votable[poll_id] = poll
            if len(self._votable) > VOTABLE_CACHE:
                self._votable.popitem(last=False)
        return poll

    def forget(self, poll_id: int) -> None:
        """The poll changed here (closed, edited): the next click reads it again."""
        self._votable.pop(poll_id, None)

    async def close(self, poll: Poll, *, user_id: int | None, manage_guild: bool = False) -> bool:
        """Close now. `user_id` None means the deadline closed it. False if already closed."""
        if user_id is not None and not poll.can_manage(user_id, manage_guild=manage_guild):
            raise NotAllowed("Only the poll's creator or members with Manage Server can close it.")
        self.forget(poll.id)
        return await self.repo.close(poll.id, now=self.clock(), closed_by=user_id)

    async def find(self, guild_id: int, text: str) -> Poll:
        ref = parse_poll_ref(text)
        if ref is None:
            raise PollLookupError(
                "Name the poll by its number (shown on the poll as “Poll #3”), "
                "its message id, or its message link."
            )
        poll = await self._lookup(guild_id, ref)
        if poll is None:
            raise PollLookupError(
                f"There is no poll “{escape(text.strip()[:50])}” in this server. "
                "`/poll list` shows the open ones."
            )
        return poll

    async def _lookup(self, guild_id: int, ref: PollRef) -> Poll | None:
        if not ref.storable:  # beyond what SQLite can hold, so no poll has it
            return None
        if ref.number is not None:
            return await self.repo.get_by_number(guild_id, ref.number)
        if ref.message_id is not None and ref.guild_id in (None, guild_id):
            return await self.repo.get_by_message(guild_id, ref.message_id)
        return None

    async def edit(self, poll: Poll, request: EditRequest, *, user_id: int, manage_guild: bool) -> EditResult:
        """Apply /poll edit in one transaction (the rules checked again on the stored poll);
        the next click here reads the edited poll."""
        self.require_manager(poll, user_id=user_id, manage_guild=manage_guild, action="edit it")
        try:
            return await self.edits.apply(poll.id, request, user_id=user_id, now=self.clock())
        finally:
            self.forget(poll.id)

    def require_manager(self, poll: Poll, *, user_id: int, manage_guild: bool, action: str) -> None:
        if not poll.can_manage(user_id, manage_guild=manage_guild):
            raise NotAllowed(f"Only the poll's creator or members with Manage Server can {action}.")

    # ------------------------------------------------------------ ranked ballots

    async def opens_ballot(self, poll_id: int) -> bool:
        """Whether a click on this poll's answers opens a ballot (a ranked poll), from the
        vote path's cached copy: no extra read for the clicks of other polls."""
        if not 0 <= poll_id <= MAX_ID:
            return False
        poll = await self._votable_poll(poll_id)
        return poll is not None and poll.ranked

    async def ballot_poll(
        self, poll_id: int, *, role_ids: Collection[int], positions: Collection[int] = ()
    ) -> Poll:
        """The ranked poll a ballot is for, if the member may cast one now: the checks of
        `vote` (posted, open and before its deadline, the role), on the same cached poll,
        read again when that copy would refuse one of `positions` or the deadline (it may
        predate an edit elsewhere: an answer added, the deadline moved)."""
        if not 0 <= poll_id <= MAX_ID:
            raise PollNotFound()
        cached = poll_id in self._votable
        poll = await self._votable_poll(poll_id)
        now = self.clock()
        if cached and poll is not None and any(_refused_by_copy(poll, p, now) for p in (*positions, 0)):
            self.forget(poll_id)
            poll = await self._votable_poll(poll_id)
        if poll is None or poll.message_id is None:
            raise PollNotFound()
        if not poll.ranked:
            raise VoteRefused("This poll is not ranked; click an answer on it to vote.")
        if not poll.is_open or (poll.closes_at is not None and poll.closes_at <= self.clock()):
            raise PollClosed()
        if poll.role_id is not None and poll.role_id not in role_ids:
            raise VoteRefused(f"Only members with the <@&{poll.role_id}> role can vote in this poll.")
        return poll

    async def cast_ballot(
        self, poll_id: int, ranking: Collection[int], *, user_id: int, role_ids: Collection[int]
    ) -> tuple[Poll, tuple[int, ...]]:
        """Store the member's ballot (replacing theirs); returns once it is committed."""
        poll = await self.ballot_poll(poll_id, role_ids=role_ids, positions=ranking)
        try:
            stored = await self.ballots.cast(poll, user_id, check_ranking(poll, tuple(ranking)), now=self.clock())
        except PollClosed:
            self._votable[poll_id] = replace(poll, closed_at=self.clock())  # closed elsewhere meanwhile
            raise
        except OptionRemoved:
            self.forget(poll_id)  # removed by an edit elsewhere: read the answers again
            raise
        return poll, stored

    async def clear_ballot(self, poll_id: int, *, user_id: int, role_ids: Collection[int]) -> tuple[Poll, bool]:
        """Remove the member's ballot; False if they had none."""
        poll = await self.ballot_poll(poll_id, role_ids=role_ids)
        try:
            return poll, await self.ballots.clear(poll, user_id)
        except PollClosed:
            self._votable[poll_id] = replace(poll, closed_at=self.clock())
            raise

    async def runoff(self, poll: Poll) -> Runoff:
        """The instant-runoff count of a ranked poll's ballots, over the answers on it now."""
        groups = await self.ballots.ranking_counts(poll.id)
        # A thread of its own: a count of a big poll never holds up the clicks of others.
        return await asyncio.to_thread(count_encoded, poll.shown, groups)


def _refused_by_copy(poll: Poll, option: int, now: float) -> bool:
    """Whether a cached poll would refuse this click as out of range or past its deadline."""
    return option >= len(poll.options) or (poll.closes_at is not None and poll.closes_at <= now)
