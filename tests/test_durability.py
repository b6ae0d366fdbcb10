"""A process that records acknowledged votes is SIGKILLed mid-stream; every acknowledged vote
is in the database afterwards.

The writer (tests/process/vote_writer.py) prints `ACK <poll> <user> <option>` only after
`PollRepository.cast_vote` returned, which the group-committing writer resolves only after
COMMIT. This test kills it with SIGKILL (no cleanup, no atexit, no close) while 50 votes are
in flight, then reads the database through a plain driver connection (sqlite3 or psycopg, no
Quorum code): every ACKed vote present, nothing else beyond what was in flight, the schema whole
(on SQLite also integrity_check and foreign_key_check ok). Then new writers open the same
database (on SQLite, after WAL recovery) and voting goes on. Both backends.
"""

from __future__ import annotations

import asyncio
import os
import selectors
import signal
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

import pytest
from postgres import RawConnection

from bot.db import load_migrations, open_database
from bot.polls.repository import PollRepository

pytestmark = pytest.mark.skipif(not hasattr(signal, "SIGKILL"), reason="needs SIGKILL (POSIX)")

ROOT = Path(__file__).resolve().parents[1]
WRITER = ROOT / "tests" / "process" / "vote_writer.py"
CONCURRENCY = 50
TIMEOUT = 15.0  # seconds any one writer may take to reach its kill point


@dataclass(frozen=True)
class Target:
    """This test's database, as the writer's argument and as RawConnection wants it."""

    path: Path
    url: str | None

    @property
    def dialect(self) -> str:
        return "sqlite" if self.url is None else "postgresql"

    @property
    def arg(self) -> str:
        return self.url or str(self.path)


@pytest.fixture
def target(db_path, database_url) -> Target:
    return Target(db_path, database_url)


@dataclass
class Run:
    """What one writer process said before it died."""

    polls: dict[str, int] = field(default_factory=dict)
    acks: list[tuple[int, int, int]] = field(default_factory=list)
    other: list[str] = field(default_factory=list)
    returncode: int | None = None
    stderr: str = ""

    def take(self, line: str) -> None:
        parts = line.split()
        if parts[:1] == ["ACK"] and len(parts) == 4:
            poll_id, user_id, option = map(int, parts[1:])
            self.acks.append((poll_id, user_id, option))
        elif parts[:1] == ["POLL"] and len(parts) == 3:
            self.polls[parts[1]] = int(parts[2])
        else:
            self.other.append(line)


def run_and_kill(target: Target, kill_after: int, tmp_path: Path, *extra: str) -> Run:
    """Start the writer, SIGKILL it as soon as `kill_after` ACKs have been read, and collect
    every line it managed to write, including those still in the pipe at the kill."""
    env = dict(os.environ, PYTHONPATH=os.pathsep.join(filter(None, [str(ROOT), os.environ.get("PYTHONPATH")])))
    stderr_path = tmp_path / f"writer-{time.monotonic_ns()}.stderr"
    run = Run()
    with stderr_path.open("wb") as stderr_file:
        proc = subprocess.Popen(
            [sys.executable, str(WRITER), target.arg, "--concurrency", str(CONCURRENCY), *extra],
            stdout=subprocess.PIPE,
            stderr=stderr_file,
            cwd=tmp_path,
            env=env,
        )
    assert proc.stdout is not None
    fd = proc.stdout.fileno()
    buffer = b""

    def drain(chunk: bytes) -> None:
        nonlocal buffer
        buffer += chunk
        *lines, buffer = buffer.split(b"\n")
        for line in lines:
            run.take(line.decode())

    try:
        deadline = time.monotonic() + TIMEOUT
        with selectors.DefaultSelector() as selector:
            selector.register(fd, selectors.EVENT_READ)
            while len(run.acks) < kill_after:
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    pytest.fail(
                        f"the writer gave only {len(run.acks)} ACKs in {TIMEOUT}s; stderr:\n"
                        + stderr_path.read_text(errors="replace")
                    )
                if not selector.select(remaining):
                    continue
                chunk = os.read(fd, 65536)
                if not chunk:
                    break  # it exited by itself: the returncode check below says why
                drain(chunk)
            # The moment: it is still casting votes, 50 of them in flight.
            still_running = proc.poll() is None
            if still_running:
                os.kill(proc.pid, signal.SIGKILL)
        proc.wait(timeout=10)
        # Lines it wrote before dying are acknowledged too; they wait in the pipe.
        while chunk := os.read(fd, 65536):
            drain(chunk)
        # A torn last line (no newline) is not an acknowledgement; a write this small
        # is atomic on a pipe, so there should be none.
        assert buffer == b"", f"torn line {buffer!r}"
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
        proc.stdout.close()
    run.returncode = proc.returncode
    run.stderr = stderr_path.read_text(errors="replace")
    assert still_running and run.returncode == -signal.SIGKILL, (
        f"the writer was not killed mid-stream: exit {run.returncode}, "
        f"other output {run.other[-5:]}, stderr:\n{run.stderr}"
    )
    assert not run.other, f"unexpected output from the writer: {run.other[:5]}"
    assert set(run.polls) == {"single", "multiple"}
    return run


def check_database(target: Target, acks: list[tuple[int, int, int]], *, in_flight_at_most: int) -> int:
    """Every ACKed vote is in the database; extras are at most what was in flight. Returns the
    number of votes stored."""
    conn = RawConnection(target)
    try:
        if target.dialect == "sqlite":
            assert conn.execute("PRAGMA integrity_check").fetchall() == [("ok",)]
            assert conn.execute("PRAGMA foreign_key_check").fetchall() == []
        else:  # the server checks its own pages and always enforces foreign keys; the schema is whole
            version = conn.execute("SELECT version FROM quorum_schema").fetchall()
            assert version == [(len(load_migrations("postgresql")),)]
        stored = set(conn.execute("SELECT poll_id, user_id, option FROM votes").fetchall())
        multiple = {row[0]: bool(row[1]) for row in conn.execute("SELECT id, multiple FROM polls")}
        slots_ok = conn.execute(
            "SELECT count(*) FROM votes v JOIN polls p ON p.id = v.poll_id "
            "WHERE v.slot <> CASE p.multiple WHEN 1 THEN v.option ELSE 0 END"
        ).fetchone()[0]
    finally:
        conn.close()
    acked = set(acks)
    assert len(acked) == len(acks), "the writer acknowledged a vote twice"
    missing = sorted(acked - stored)
    assert not missing, (
        f"{len(missing)} of {len(acked)} acknowledged votes are not in the database after SIGKILL, "
        f"e.g. {missing[:10]}"
    )
    # Committed but killed before it could print: only votes that were in flight.
    unacked = stored - acked
    assert len(unacked) <= in_flight_at_most, f"{len(unacked)} stored votes nobody cast: {sorted(unacked)[:10]}"
    assert slots_ok == 0
    assert all(poll_id in multiple for poll_id, _, _ in stored)
    return len(stored)


@pytest.mark.parametrize("kill_after", [1, 150, 420, 777, 1500])
def test_every_acknowledged_vote_survives_sigkill(tmp_path, target, kill_after):
    run = run_and_kill(target, kill_after, tmp_path)

    assert len(run.acks) >= kill_after
    if kill_after >= 100:
        kinds = {poll_id for poll_id, _, _ in run.acks}
        assert kinds == {run.polls["single"], run.polls["multiple"]}, "both kinds of poll were being voted in"
    # The driver writes no more than one vote per coroutine at a time.
    check_database(target, run.acks, in_flight_at_most=CONCURRENCY)


def test_reopen_after_sigkill_and_keep_voting(tmp_path, target, settings):
    """Kill, reopen, kill again: each round's writer opens the database a SIGKILL left behind
    (on SQLite with its WAL, which opening recovers; on PostgreSQL after the server rolled back
    the dead session's open transaction) and votes go on; nothing acknowledged in any round is
    lost. Then the bot's own Database opens it in this process and counts agree."""
    first = run_and_kill(target, 200, tmp_path)
    single, multiple = first.polls["single"], first.polls["multiple"]
    if target.dialect == "sqlite":
        assert Path(f"{target.path}-wal").exists(), "SIGKILL should leave the write-ahead log behind"

    acks = list(first.acks)
    stored = check_database(target, acks, in_flight_at_most=CONCURRENCY)
    for round_number, kill_after in enumerate((90, 333), start=1):
        run = run_and_kill(
            target,
            kill_after,
            tmp_path,
            "--single-poll", str(single),
            "--multiple-poll", str(multiple),
            "--first-user", str(1_000_000 * round_number),  # new voters each round
        )
        assert run.polls == first.polls
        acks += run.acks
        stored_now = check_database(target, acks, in_flight_at_most=CONCURRENCY * (round_number + 1))
        assert stored_now >= stored + len(run.acks)
        stored = stored_now

    async def reopen_and_vote() -> None:
        db = await open_database(settings)
        try:
            assert await db.schema_version() == len(load_migrations(db.dialect))
            assert await db.integrity_check() == ["ok"]
            repo = PollRepository(db)
            for poll_id in (single, multiple):
                poll = await repo.get(poll_id)
                assert poll is not None and poll.is_open
                before = await repo.votes(poll_id)
                outcome = await repo.cast_vote(poll, 42, 0, now=time.time())
                assert outcome.choices == (0,)
                assert len(await repo.votes(poll_id)) == len(before) + 1
                tally = await repo.tally(poll)
                assert sum(tally.counts) == len(before) + 1
        finally:
            await db.close()

    asyncio.run(reopen_and_vote())
    assert check_database(target, [*acks, (single, 42, 0), (multiple, 42, 0)], in_flight_at_most=3 * CONCURRENCY)
