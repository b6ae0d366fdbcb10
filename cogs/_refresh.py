"""The message refresher: live counts on a message, edited at most once per interval.

Generic over what it shows: it is given how to load the current state by id and how to
edit the message, so it holds no poll logic (and no SQL) of its own.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from typing import Generic, Protocol, TypeVar

import discord

log = logging.getLogger(__name__)

# Messages are edited at most this often; after an hour Discord caps edits (30046).
REFRESH_INTERVAL = 5.0
REFRESH_INTERVAL_OLD = 60.0
EDIT_CAP_BACKOFF = 600.0


class Refreshable(Protocol):
    @property
    def message_id(self) -> int | None: ...
    @property
    def is_open(self) -> bool: ...
    @property
    def created_at(self) -> float: ...


T = TypeVar("T", bound=Refreshable)


class MessageRefresher(Generic[T]):
    """Edits a message with its live state, at most once per interval per id.

    Only ids with an edit pending hold an entry; an idle poll costs nothing in memory.
    """

    def __init__(
        self,
        *,
        clock: Callable[[], float],
        load: Callable[[int], Awaitable[T | None]],
        edit: Callable[[T], Awaitable[None]],
    ) -> None:
        self.clock = clock
        self.load = load
        self.edit = edit
        self._pending: dict[int, asyncio.Task[None]] = {}
        self._last_edit: dict[int, float] = {}
        self._blocked_until: dict[int, float] = {}

    def request(self, item_id: int) -> None:
        if item_id in self._pending:
            return  # the pending edit reads the state when it runs, so it includes this change
        self._prune()
        self._pending[item_id] = asyncio.get_running_loop().create_task(
            self._edit_later(item_id), name=f"quorum-refresh-{item_id}"
        )

    def _prune(self) -> None:
        now = self.clock()
        for item_id in [p for p, t in self._last_edit.items() if now - t > REFRESH_INTERVAL_OLD]:
            del self._last_edit[item_id]
        for item_id in [p for p, t in self._blocked_until.items() if t <= now]:
            del self._blocked_until[item_id]

    async def _edit_later(self, item_id: int) -> None:
        clock = self.clock
        context = {"poll_id": item_id}
        try:
            item = await self.load(item_id)
            if item is None or item.message_id is None or not item.is_open:
                return
            old = clock() - item.created_at > 3600
            interval = REFRESH_INTERVAL_OLD if old else REFRESH_INTERVAL
            not_before = max(self._last_edit.get(item_id, 0.0) + interval, self._blocked_until.get(item_id, 0.0))
            if not_before > clock():
                await asyncio.sleep(not_before - clock())
            # From here on a new change schedules another edit, so none is missed.
            self._pending.pop(item_id, None)
            self._last_edit[item_id] = clock()
            item = await self.load(item_id)
            if item is None or not item.is_open:
                return  # closing renders the final state itself
            await self.edit(item)
        except discord.HTTPException as error:
            if error.code == 30046:  # too many edits to a message older than an hour
                self._blocked_until[item_id] = clock() + EDIT_CAP_BACKOFF
                log.info(
                    "poll %s: Discord caps edits of its message; next update in %ss",
                    item_id,
                    EDIT_CAP_BACKOFF,
                    extra=context,
                )
            elif error.status == 404:
                log.info("poll %s: its message is gone; not updating it", item_id, extra=context)
            else:
                log.warning("poll %s: could not update its message: %s", item_id, error, extra=context)
        except Exception:
            log.exception("poll %s: updating its message failed", item_id, extra=context)
        finally:
            if self._pending.get(item_id) is asyncio.current_task():
                del self._pending[item_id]

    async def stop(self) -> None:
        tasks = list(self._pending.values())
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        self._pending.clear()
