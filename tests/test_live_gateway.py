"""A real `run.py` process over a live (loopback) gateway: votes arrive as gateway events, and
SIGTERM lands while some are in flight. Every vote it confirmed must be in the database, on both
backends: SQLite at DATABASE_PATH, or PostgreSQL at DATABASE_URL (this test's schema).

The loopback Discord is the one `bench/votes_loopback.py` measures with.
"""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
from pathlib import Path
from types import SimpleNamespace

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "bench"))

from loopback_discord import LoopbackDiscord, answer_custom_ids  # noqa: E402
from postgres import RawConnection  # noqa: E402
from votes_loopback import post_quorum_poll  # noqa: E402

VOTERS = range(1300000000000000000, 1300000000000000000 + 120)


async def test_sigterm_while_votes_arrive_over_the_gateway_keeps_every_confirmed_vote(tmp_path, database_url):
    database = {"DATABASE_PATH": "q.sqlite3"} if database_url is None else {"DATABASE_URL": database_url}
    server = LoopbackDiscord()
    await server.start()
    base = {k: v for k, v in os.environ.items() if not k.startswith(("DISCORD_", "DATABASE_", "LOG_", "DEV_"))}
    process = subprocess.Popen(
        [sys.executable, str(ROOT / "run.py")],
        cwd=tmp_path,
        env={**base, **server.env, **database, "LOG_LEVEL": "INFO"},
        stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
    )
    try:
        await asyncio.wait_for(server.ready.wait(), 60)
        message = await asyncio.wait_for(post_quorum_poll(server), 60)
        custom_ids = answer_custom_ids(message)
        clicks = {}
        for i, voter in enumerate(VOTERS):
            payload = server.interaction(
                3, {"custom_id": custom_ids[i % 4], "component_type": 2}, user_id=voter, message=message
            )
            clicks[int(payload["id"])] = (voter, i % 4)
            await server.send_interaction(payload)
            if i == 40:
                process.send_signal(signal.SIGTERM)  # while earlier clicks are still being handled
        output, _ = await asyncio.to_thread(process.communicate, timeout=60)
    finally:
        if process.poll() is None:
            process.kill()
        await server.stop()

    assert process.returncode == 0, output[-3000:]
    assert "shutting down:" in output and "stopped" in output, output[-3000:]
    confirmed = {
        clicks[interaction_id]
        for interaction_id, (_, body) in server.acks.items()
        if interaction_id in clicks and "Your vote" in (body.get("data") or {}).get("content", "")
    }
    refused = [
        interaction_id for interaction_id, (_, body) in server.acks.items()
        if "restarting" in (body.get("data") or {}).get("content", "")
    ]
    assert confirmed, "no vote was confirmed before the shutdown: " + output[-3000:]
    dialect = "sqlite" if database_url is None else "postgresql"
    db = RawConnection(SimpleNamespace(dialect=dialect, path=tmp_path / "q.sqlite3", url=database_url))
    try:
        if dialect == "sqlite":
            assert db.execute("PRAGMA integrity_check").fetchone() == ("ok",)
        stored = set(db.execute("SELECT user_id, option FROM votes WHERE poll_id = 1").fetchall())
    finally:
        db.close()
    assert confirmed <= stored  # nothing the bot confirmed was lost
    # Nothing was stored that was not clicked, and a click refused while stopping stored nothing.
    assert stored <= set(clicks.values())
    refused_voters = {clicks[i][0] for i in refused}
    assert not {voter for voter, _ in stored} & refused_voters


async def test_an_unreachable_postgresql_at_start_is_one_clear_line_without_the_password(tmp_path):
    """The token is good and Discord answers, but DATABASE_URL names a server that is not
    there: the process exits 1 with what and where, no traceback, the password hidden."""
    server = LoopbackDiscord()
    await server.start()
    base = {k: v for k, v in os.environ.items() if not k.startswith(("DISCORD_", "DATABASE_", "LOG_", "DEV_"))}
    try:
        process = await asyncio.create_subprocess_exec(
            sys.executable, str(ROOT / "run.py"), cwd=tmp_path,
            env={**base, **server.env, "DATABASE_URL": "postgresql://quorum:s3cret-pw@127.0.0.1:1/quorum"},
            stdout=subprocess.PIPE, stderr=subprocess.PIPE,
        )
        out, err = await asyncio.wait_for(process.communicate(), 60)
    finally:
        await server.stop()
    text = out.decode() + err.decode()
    assert process.returncode == 1, text
    assert "Quorum can't start: can't open the PostgreSQL database at postgresql://quorum:***@127.0.0.1:1/" in text
    assert "s3cret-pw" not in text and "Traceback" not in text
