"""The ack watchdog: no interaction outlives Discord's 3 s answer deadline unanswered."""

from __future__ import annotations

import asyncio
import logging

import discord

log = logging.getLogger(__name__)

# Reply to a click within this long, or defer and follow up (Discord allows 3 s).
ACK_BUDGET = 2.0


class AckWatchdog:
    """Defers any click not answered within ACK_BUDGET, so Discord's 3 s limit is never missed.

    One timer (`loop.call_at`) serves every click in flight and is re-armed for the oldest; a
    click costs two dict operations, with no task, lock or timer of its own (per-click timers
    measurably slowed voting under load). Each click is either claimed by its handler or taken
    by the watchdog, never both: both steps are synchronous, so they cannot interleave.
    """

    def __init__(self) -> None:
        self._watched: dict[discord.Interaction, float] = {}  # insertion order = deadline order
        self._deferrals: dict[discord.Interaction, asyncio.Task[None]] = {}
        self._timer: asyncio.TimerHandle | None = None

    def watch(self, interaction: discord.Interaction) -> None:
        loop = asyncio.get_running_loop()
        deadline = self._watched[interaction] = loop.time() + ACK_BUDGET
        if self._timer is None:
            self._timer = loop.call_at(deadline, self._expire)

    def claim(self, interaction: discord.Interaction) -> asyncio.Task[None] | None:
        """Called right before the handler answers. None: answer now, the watchdog will not touch
        this click. A task: the watchdog is deferring it; await the task, then follow up."""
        if self._watched.pop(interaction, None) is not None:
            if not self._watched and self._timer is not None:
                self._timer.cancel()  # nothing left to watch: no timer left waiting
                self._timer = None
            return None
        return self._deferrals.pop(interaction, None)

    def _expire(self) -> None:
        loop = asyncio.get_running_loop()
        self._timer = None
        now = loop.time()
        while self._watched:
            interaction, deadline = next(iter(self._watched.items()))
            if deadline > now:
                self._timer = loop.call_at(deadline, self._expire)
                return
            del self._watched[interaction]
            self._deferrals[interaction] = loop.create_task(self._defer(interaction), name="quorum-ack-defer")

    async def _defer(self, interaction: discord.Interaction) -> None:
        try:
            await interaction.response.defer(ephemeral=True, thinking=True)
        except discord.HTTPException:
            log.warning("could not defer a slow click", exc_info=True)

    def stop(self) -> None:
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        self._watched.clear()
        self._deferrals.clear()
