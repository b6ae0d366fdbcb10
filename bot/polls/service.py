"""Poll use cases, in plain Python: what happens when someone creates, votes, closes, looks up."""

from __future__ import annotations

from collections.abc import Callable, Collection

from ..markdown import escape
from .models import MAX_ID, MAX_OPTIONS, Poll, PollClosed, PollDraft, PollNotFound, VoteOutcome, VoteRefused
from .refs import PollRef, parse_poll_ref
from .repository import PollRepository

Clock = Callable[[], float]


class PollLookupError(LookupError):
    """The member named a poll that is not there; the message says how to name one."""


class NotAllowed(PermissionError):
    """The member may not do this to this poll; the message says who may."""


class PollService:
    def __init__(self, repo: PollRepository, clock: Clock) -> None:
        self.repo = repo
        self.clock = clock

    async def create(self, draft: PollDraft, *, guild_id: int, channel_id: int, creator_id: int) -> Poll:
        return await self.repo.create(
            draft, guild_id=guild_id, channel_id=channel_id, creator_id=creator_id, now=self.clock()
        )

    async def vote(
        self, poll_id: int, option: int, *, user_id: int, role_ids: Collection[int]
    ) -> tuple[Poll, VoteOutcome]:
        if not (0 <= poll_id <= MAX_ID and 0 <= option < MAX_OPTIONS):
            raise PollNotFound()  # a forged button: no stored poll has it
        now = self.clock()

        def rules(poll: Poll) -> None:
            if poll.message_id is None or option >= len(poll.options):
                raise PollNotFound()  # not posted, or a button it never had
            if not poll.is_open or (poll.closes_at is not None and poll.closes_at <= now):
                # Past its deadline counts as closed even if the scheduler has not got to it yet.
                raise PollClosed()
            if poll.role_id is not None and poll.role_id not in role_ids:
                raise VoteRefused(f"Only members with the <@&{poll.role_id}> role can vote in this poll.")

        return await self.repo.vote_checked(poll_id, user_id, option, now=now, check=rules)

    async def close(self, poll: Poll, *, user_id: int | None, manage_guild: bool = False) -> bool:
        """Close now. `user_id` None means the deadline closed it. False if already closed."""
        if user_id is not None and not poll.can_manage(user_id, manage_guild=manage_guild):
            raise NotAllowed("Only the poll's creator or members with Manage Server can close it.")
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

    def require_manager(self, poll: Poll, *, user_id: int, manage_guild: bool, action: str) -> None:
        if not poll.can_manage(user_id, manage_guild=manage_guild):
            raise NotAllowed(f"Only the poll's creator or members with Manage Server can {action}.")
