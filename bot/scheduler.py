"""One task that sleeps until the earliest deadline in the database, restart-safe.

Deadlines are read from storage on every wake, never held in memory per poll: memory does not
grow with open polls, and after a restart overdue deadlines are simply "due now".
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable

from .db import StorageUnavailable

log = logging.getLogger(__name__)

Clock = Callable[[], float]

# Sleep at most this long between looks at the database, so a wall clock that jumps (a
# suspended laptop, an NTP step) delays a deadline by a bounded amount.
MAX_SLEEP = 300.0
# With a database other processes write to too (PostgreSQL), their new deadlines reach this
# process only by looking: look this often (one indexed query).
SHARED_MAX_SLEEP = 15.0
# After an unexpected error, wait before trying again rather than spinning.
ERROR_BACKOFF = 30.0


class DeadlineScheduler:
    def __init__(
        self,
        *,
        next_deadline: Callable[[], Awaitable[float | None]],
        run_due: Callable[[], Awaitable[None]],
        clock: Clock,
        name: str = "deadlines",
        max_sleep: float = MAX_SLEEP,
    ) -> None:
        self._next_deadline = next_deadline
        self._run_due = run_due
        self._clock = clock
        self._name = name
        self._max_sleep = max_sleep
        self._task: asyncio.Task[None] | None = None
        self._sleeping = False
        self._again = False

    def start(self) -> None:
        if self._task is None or self._task.done():
            self._task = asyncio.get_running_loop().create_task(self._loop(), name=f"quorum-{self._name}")

    def poke(self) -> None:
        """A deadline was added or changed: look again now.

        A sleeping task is restarted (its sleep may be too long now); a working one is told to
        look again before it sleeps. Plain sleeps keep the wait visible to test harnesses.
        """
        if self._task is None:
            return
        if self._sleeping:
            self._task.cancel()
            self._task = None
            self.start()
        else:
            self._again = True

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            try:
                await self._task
            except asyncio.CancelledError:
                pass
            self._task = None

    async def _loop(self) -> None:
        while True:
            self._again = False
            try:
                # Most wakes find nothing due: one read, and no pass (a pass claims by writing).
                deadline = await self._next_deadline()
                if deadline is not None and deadline <= self._clock():
                    await self._run_due()
                    deadline = await self._next_deadline()
            except StorageUnavailable:  # the database logged the incident once already
                log.debug("%s scheduler: the database can't store writes; retrying in %ss", self._name, ERROR_BACKOFF)
                deadline = self._clock() + ERROR_BACKOFF
            except Exception:
                log.exception("%s scheduler failed; retrying in %ss", self._name, ERROR_BACKOFF)
                deadline = self._clock() + ERROR_BACKOFF
            if self._again:
                continue
            # run_due handles everything due; a deadline still in the past means it failed for
            # some poll, so wait a little instead of spinning on it.
            delay = self._max_sleep if deadline is None else max(1.0, deadline - self._clock())
            self._sleeping = True
            try:
                await asyncio.sleep(min(delay, self._max_sleep))
            finally:
                self._sleeping = False
