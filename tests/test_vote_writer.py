"""tests/process/vote_writer.py ends when a vote fails, instead of hanging on its open database.

test_durability.py and test_maintenance.py read the writer's output until it stops; a writer
that hung on a failure would stall them until their own timeouts, hiding what went wrong.
Both backends: the writer takes a SQLite path or a PostgreSQL URL.
"""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
import time
from pathlib import Path

from bot.config import Settings
from bot.db import open_database
from bot.polls.models import PollDraft
from bot.polls.repository import PollRepository

ROOT = Path(__file__).resolve().parents[1]
WRITER = ROOT / "tests" / "process" / "vote_writer.py"
PROMPTLY = 30.0  # seconds: starting Python and opening the database take one or two


def closed_single_choice_poll(settings: Settings) -> int:
    async def make() -> int:
        async with await open_database(settings) as db:
            repo = PollRepository(db)
            poll = await repo.create(PollDraft("Closed already?", ("Yes", "No")), guild_id=1, channel_id=2,
                                     creator_id=3, now=time.time())
            await repo.close(poll.id, now=time.time(), closed_by=3)
            return poll.id

    return asyncio.run(make())


def run_writer(tmp_path: Path, *args: str) -> subprocess.CompletedProcess[str]:
    env = dict(os.environ, PYTHONPATH=os.pathsep.join(filter(None, [str(ROOT), os.environ.get("PYTHONPATH")])))
    # A hanging writer raises TimeoutExpired here (subprocess.run kills it first).
    return subprocess.run(
        [sys.executable, str(WRITER), *args], cwd=tmp_path, env=env, capture_output=True, text=True,
        timeout=PROMPTLY,
    )


def database(settings: Settings) -> str:
    """The writer's argument for this test's database."""
    return settings.database_url or str(settings.database_path)


def test_a_vote_that_raises_ends_the_writer_with_status_1(tmp_path, settings):
    poll_id = closed_single_choice_poll(settings)  # cast_vote raises PollClosed for every vote
    result = run_writer(tmp_path, database(settings), "--single-poll", str(poll_id), "--concurrency", "10")
    assert result.returncode == 1, result.stderr
    errors = [line for line in result.stdout.splitlines() if line.startswith("ERR ")]
    assert errors and all("PollClosed" in line for line in errors), result.stdout
    assert "DONE" not in result.stdout and "Traceback" not in result.stderr


def test_a_missing_poll_ends_the_writer_with_status_1(tmp_path, settings):
    closed_single_choice_poll(settings)
    result = run_writer(tmp_path, database(settings), "--single-poll", "999")
    assert result.returncode == 1
    assert "no poll 999 in the database" in result.stderr
