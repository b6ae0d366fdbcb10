"""DeadlineScheduler: sleeps until the earliest deadline, wakes early when poked, survives errors.

Time is virtual: the scheduler module's `asyncio` is replaced by a proxy whose `sleep` hands
each requested delay to the test and waits until the test wakes it (or the scheduler's task
is cancelled, exactly as a real sleep would be). Everything else is the real asyncio, so no
other code in the process is affected and no test waits for real seconds.
"""

from __future__ import annotations

import asyncio
import logging
from types import ModuleType

import pytest

import bot.scheduler as scheduler_module
from bot.db import StorageUnavailable
from bot.scheduler import ERROR_BACKOFF, MAX_SLEEP, DeadlineScheduler

START = 1_000.0
WAIT = 2.0  # seconds of real time before a test gives up waiting for the scheduler


class Sleep:
    """One `asyncio.sleep(delay)` call the scheduler is blocked in."""

    def __init__(self, delay: float, future: asyncio.Future[None]) -> None:
        self.delay = delay
        self.future = future

    def wake(self) -> None:
        self.future.set_result(None)


class VirtualTime:
    def __init__(self) -> None:
        self.now = START
        self.sleeps: asyncio.Queue[Sleep] = asyncio.Queue()

    def clock(self) -> float:
        return self.now

    async def sleep(self, delay: float) -> None:
        future = asyncio.get_running_loop().create_future()
        self.sleeps.put_nowait(Sleep(delay, future))
        await future

    async def next_sleep(self) -> Sleep:
        return await asyncio.wait_for(self.sleeps.get(), WAIT)

    async def pass_time(self, sleep: Sleep) -> None:
        """Let the whole requested sleep elapse."""
        self.now += sleep.delay
        sleep.wake()


class _AsyncioWithVirtualSleep(ModuleType):
    def __init__(self, time: VirtualTime) -> None:
        super().__init__("asyncio")
        self.sleep = time.sleep

    def __getattr__(self, name: str):
        return getattr(asyncio, name)


class Storage:
    """Stands in for the repository: deadlines, and a record of every run_due call."""

    def __init__(self, time: VirtualTime) -> None:
        self.time = time
        self.deadlines: list[float] = []
        self.runs: asyncio.Queue[float] = asyncio.Queue()
        self.failures: list[BaseException] = []  # raised by the next run_due calls, in order
        self.deadline_failures: list[BaseException] = []  # raised by the next next_deadline calls
        self.gate: asyncio.Event | None = None  # when set up, run_due waits for it
        self.closes_due = True  # False: run_due leaves due deadlines in place (it failed for them)
        self.reads = 0

    async def next_deadline(self) -> float | None:
        self.reads += 1
        if self.deadline_failures:
            raise self.deadline_failures.pop(0)
        return min(self.deadlines, default=None)

    async def run_due(self) -> None:
        self.runs.put_nowait(self.time.now)
        if self.gate is not None:
            await self.gate.wait()
        if self.failures:
            raise self.failures.pop(0)
        if self.closes_due:
            self.deadlines = [d for d in self.deadlines if d > self.time.now]

    async def next_run(self) -> float:
        return await asyncio.wait_for(self.runs.get(), WAIT)


@pytest.fixture
def time(monkeypatch) -> VirtualTime:
    virtual = VirtualTime()
    monkeypatch.setattr(scheduler_module, "asyncio", _AsyncioWithVirtualSleep(virtual))
    return virtual


@pytest.fixture
def storage(time) -> Storage:
    return Storage(time)


@pytest.fixture
async def scheduler(time, storage):
    made = DeadlineScheduler(next_deadline=storage.next_deadline, run_due=storage.run_due, clock=time.clock)
    try:
        yield made
    finally:
        await made.stop()


async def _settle() -> None:
    """Give the scheduler's task plenty of chances to run."""
    for _ in range(20):
        await asyncio.sleep(0)


# ------------------------------------------------------------------ sleeping until deadlines


async def test_start_runs_due_at_once(scheduler, storage):
    storage.deadlines = [START - 10]  # overdue from before a restart
    scheduler.start()
    assert await storage.next_run() == START


async def test_a_wake_with_nothing_due_is_one_read_and_no_pass(scheduler, storage, time):
    # Processes sharing a database wake often; a pass claims work by writing.
    storage.deadlines = [START + 1_000]
    scheduler.start()
    for looks in range(1, 5):
        sleep = await time.next_sleep()
        assert storage.reads == looks
        await time.pass_time(sleep)
    assert storage.runs.empty()


async def test_sleeps_exactly_until_the_next_deadline(scheduler, storage, time):
    storage.deadlines = [START + 120, START + 500]
    scheduler.start()
    assert (await time.next_sleep()).delay == 120
    assert storage.runs.empty()  # nothing was due yet


async def test_runs_due_when_the_deadline_passes(scheduler, storage, time):
    storage.deadlines = [START + 120]
    scheduler.start()
    await time.pass_time(await time.next_sleep())
    assert await storage.next_run() == START + 120


async def test_after_the_last_deadline_sleeps_the_longest_interval(scheduler, storage, time):
    storage.deadlines = [START + 120]
    scheduler.start()
    await time.pass_time(await time.next_sleep())
    await storage.next_run()
    assert (await time.next_sleep()).delay == MAX_SLEEP


async def test_without_deadlines_sleeps_the_longest_interval(scheduler, time):
    scheduler.start()
    assert (await time.next_sleep()).delay == MAX_SLEEP


async def test_a_far_deadline_is_approached_in_bounded_sleeps(scheduler, storage, time):
    storage.deadlines = [START + 1_000]
    scheduler.start()
    delays = []
    for _ in range(4):
        sleep = await time.next_sleep()
        delays.append(sleep.delay)
        await time.pass_time(sleep)
    assert delays == [MAX_SLEEP, MAX_SLEEP, MAX_SLEEP, 100]


async def test_an_overdue_deadline_is_retried_after_a_second_not_in_a_spin(scheduler, storage, time):
    storage.deadlines = [START - 50]
    storage.closes_due = False  # run_due could not close that poll
    scheduler.start()
    await storage.next_run()
    assert (await time.next_sleep()).delay == 1.0


# ------------------------------------------------------------------ poke


async def test_poke_wakes_a_sleeping_scheduler_at_once(scheduler, storage, time):
    scheduler.start()
    first = await time.next_sleep()  # no deadline yet: a long sleep
    storage.deadlines = [START + 60]
    scheduler.poke()
    assert (await time.next_sleep()).delay == 60  # looked again, though no time has passed
    await _settle()
    assert first.future.cancelled()
    assert storage.reads == 2 and storage.runs.empty()


async def test_poke_with_work_due_runs_it_at_once(scheduler, storage, time):
    scheduler.start()
    await time.next_sleep()
    storage.deadlines = [START]
    scheduler.poke()
    assert await storage.next_run() == START


async def test_two_quick_pokes_leave_a_single_loop(scheduler, storage, time):
    storage.deadlines = [START + 60]
    scheduler.start()
    await time.next_sleep()
    scheduler.poke()
    scheduler.poke()
    await time.next_sleep()
    await _settle()
    assert storage.runs.empty() and time.sleeps.empty()


async def test_poke_while_running_due_looks_again_before_sleeping(scheduler, storage, time):
    storage.deadlines = [START]
    storage.closes_due = False  # still due after the run: unpoked, it would sleep a second first
    storage.gate = asyncio.Event()
    scheduler.start()
    await storage.next_run()  # run_due is in progress
    scheduler.poke()
    storage.gate.set()  # lets the first run finish…
    storage.gate.clear()  # …and holds the next one, if any, where the test can see it
    await storage.next_run()  # looked again…
    assert time.sleeps.empty()  # …without sleeping first


async def test_poke_before_start_does_nothing(scheduler, storage, time):
    scheduler.poke()
    await _settle()
    assert storage.runs.empty() and time.sleeps.empty()


async def test_start_twice_runs_one_loop(scheduler, storage, time):
    storage.deadlines = [START]
    scheduler.start()
    scheduler.start()
    await storage.next_run()
    await time.next_sleep()
    await _settle()
    assert storage.runs.empty() and time.sleeps.empty()


# ------------------------------------------------------------------ stop


async def test_stop_cancels_the_sleep_and_nothing_runs_afterwards(scheduler, storage, time):
    storage.deadlines = [START + 60]
    scheduler.start()
    sleep = await time.next_sleep()
    await scheduler.stop()
    time.now += 3_600
    await _settle()
    assert sleep.future.cancelled()
    assert storage.runs.empty() and time.sleeps.empty()


async def test_stop_interrupts_a_run_in_progress(scheduler, storage):
    storage.deadlines = [START]
    storage.gate = asyncio.Event()
    scheduler.start()
    await storage.next_run()
    await asyncio.wait_for(scheduler.stop(), WAIT)
    storage.gate.set()
    await _settle()
    assert storage.runs.empty()


async def test_stop_without_start_is_harmless(scheduler, storage):
    await scheduler.stop()
    assert storage.runs.empty()


async def test_poke_after_stop_does_nothing(scheduler, storage, time):
    scheduler.start()
    await time.next_sleep()
    await scheduler.stop()
    scheduler.poke()
    await _settle()
    assert storage.runs.empty() and time.sleeps.empty()


async def test_start_after_stop_runs_again(scheduler, storage, time):
    storage.deadlines = [START]
    storage.closes_due = False
    scheduler.start()
    await storage.next_run()
    await scheduler.stop()
    scheduler.start()
    assert await storage.next_run() == START


# ------------------------------------------------------------------ errors


async def test_error_in_run_due_is_logged(scheduler, storage, time, caplog):
    storage.deadlines = [START]
    storage.failures = [RuntimeError("database is locked")]
    with caplog.at_level(logging.ERROR, logger="bot.scheduler"):
        scheduler.start()
        await time.next_sleep()
    [record] = [r for r in caplog.records if r.name == "bot.scheduler"]
    assert "deadlines scheduler failed" in record.getMessage()
    assert record.exc_info is not None and isinstance(record.exc_info[1], RuntimeError)


async def test_storage_failures_are_retried_without_a_log_entry_each(scheduler, storage, time, caplog):
    # The database logs a storage incident once; the scheduler must not add one per retry.
    storage.deadlines = [START]
    storage.closes_due = False
    storage.failures = [StorageUnavailable("database or disk is full") for _ in range(3)]
    with caplog.at_level(logging.WARNING, logger="bot.scheduler"):
        scheduler.start()
        for _ in range(3):
            sleep = await time.next_sleep()
            assert sleep.delay == ERROR_BACKOFF
            await time.pass_time(sleep)
    assert [r for r in caplog.records if r.name == "bot.scheduler"] == []


async def test_error_in_run_due_backs_off_before_retrying(scheduler, storage, time):
    storage.deadlines = [START, START + 5]
    storage.failures = [RuntimeError("database is locked")]
    scheduler.start()
    assert (await time.next_sleep()).delay == ERROR_BACKOFF


async def test_error_in_run_due_is_retried_and_the_scheduler_keeps_going(scheduler, storage, time):
    storage.deadlines = [START, START + 200]
    storage.failures = [RuntimeError("database is locked")]
    scheduler.start()
    await storage.next_run()  # fails
    await time.pass_time(await time.next_sleep())
    assert await storage.next_run() == START + ERROR_BACKOFF  # retried
    assert (await time.next_sleep()).delay == 200 - ERROR_BACKOFF  # and back to normal


async def test_error_in_next_deadline_backs_off_too(scheduler, storage, time):
    storage.deadline_failures = [OSError("disk gone")]
    scheduler.start()
    assert (await time.next_sleep()).delay == ERROR_BACKOFF
