"""`run.py check`, `backup` and `sync` as a maintainer runs them: real processes."""

from __future__ import annotations

import base64
import json
import logging
import os
import selectors
import signal
import socket
import sqlite3
import subprocess
import sys
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import ClassVar

import pytest

from bot.db import load_migrations
from bot.logs import JsonFormatter
from bot.maintenance import application_id_from_token, backup, invite_url

ROOT = Path(__file__).resolve().parents[1]
WRITER = ROOT / "tests" / "process" / "vote_writer.py"
APP_ID = 123456789012345678
TOKEN = base64.b64encode(str(APP_ID).encode()).decode().rstrip("=") + ".GhIjKl." + "a" * 27


def run_py(tmp_path: Path, *args: str, **env: str) -> subprocess.CompletedProcess[str]:
    base = {k: v for k, v in os.environ.items() if not k.startswith(("DISCORD_", "DATABASE_", "LOG_", "DEV_"))}
    return subprocess.run(
        [sys.executable, str(ROOT / "run.py"), *args],
        cwd=tmp_path,
        env={**base, **env},
        capture_output=True,
        text=True,
        timeout=60,
    )


# ------------------------------------------------------------------------ check


def test_invite_link_carries_exactly_the_needed_permissions():
    assert application_id_from_token(TOKEN) == APP_ID
    assert application_id_from_token("not-a-token") is None
    url = invite_url(APP_ID)
    assert f"client_id={APP_ID}" in url and "permissions=274878024704" in url
    assert "scope=bot+applications.commands" in url


def test_check_offline_validates_settings_and_database_and_prints_the_invite(tmp_path):
    result = run_py(tmp_path, "check", "--offline", DISCORD_TOKEN=TOKEN, DATABASE_PATH="data/q.sqlite3")
    assert result.returncode == 0, result.stderr
    assert "ok   settings are valid" in result.stdout
    assert f"schema version {len(load_migrations())}, integrity ok; 0 polls (0 open), 0 votes" in result.stdout
    assert invite_url(APP_ID) in result.stdout


def test_check_reports_bad_settings_all_at_once(tmp_path):
    result = run_py(tmp_path, "check", "--offline", DISCORD_TOKEN="nope", LOG_LEVEL="LOUD", LOG_FORMAT="xml")
    assert result.returncode == 2
    assert "DISCORD_TOKEN does not look like a bot token" in result.stderr
    assert "LOG_LEVEL=LOUD" in result.stderr and "LOG_FORMAT=xml" in result.stderr


def test_check_fails_on_a_corrupt_database(tmp_path):
    (tmp_path / "broken.sqlite3").write_bytes(b"this is not a database" * 100)
    result = run_py(tmp_path, "check", "--offline", DISCORD_TOKEN=TOKEN, DATABASE_PATH="broken.sqlite3")
    assert result.returncode == 1
    assert "FAIL database" in result.stdout


class FakeDiscord(BaseHTTPRequestHandler):
    """Just enough of Discord's REST API for login and a command sync, on 127.0.0.1."""

    requests: ClassVar[list[tuple[str, str, object]]] = []

    def _reply(self, status: int, body: object) -> None:
        data = json.dumps(body).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def do_GET(self) -> None:
        self.requests.append(("GET", self.path, None))
        if self.headers.get("Authorization") != f"Bot {TOKEN}":
            self._reply(401, {"message": "401: Unauthorized", "code": 0})
        elif self.path.endswith("/users/@me"):
            self._reply(200, {"id": str(APP_ID), "username": "Quorum", "discriminator": "0", "avatar": None,
                              "bot": True, "global_name": None})
        elif self.path.endswith("/oauth2/applications/@me"):
            self._reply(200, {"id": str(APP_ID), "name": "Quorum", "icon": None, "description": "",
                              "bot_public": True, "bot_require_code_grant": False, "verify_key": "0" * 64,
                              "flags": 0, "owner": {"id": "1", "username": "owner", "discriminator": "0",
                                                    "avatar": None, "global_name": None}})
        else:
            self._reply(404, {"message": "Unknown", "code": 0})

    def do_PUT(self) -> None:
        body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
        self.requests.append(("PUT", self.path, body))
        self._reply(200, [{**c, "id": str(900 + i), "application_id": str(APP_ID), "version": "1"}
                          for i, c in enumerate(body)])

    def log_message(self, *args: object) -> None:
        pass


@pytest.fixture
def fake_discord():
    FakeDiscord.requests = []
    server = ThreadingHTTPServer(("127.0.0.1", 0), FakeDiscord)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_port}/api/v10"
    server.shutdown()


def test_check_logs_in_when_online(tmp_path, fake_discord):
    result = run_py(tmp_path, "check", DISCORD_TOKEN=TOKEN, DISCORD_API_BASE=fake_discord)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "Discord accepts the token: logged in as Quorum" in result.stdout


def test_sync_registers_the_commands_now(tmp_path, fake_discord):
    result = run_py(tmp_path, "sync", "--guild", "4242", DISCORD_TOKEN=TOKEN, DISCORD_API_BASE=fake_discord)
    assert result.returncode == 0, result.stderr
    puts = [(path, body) for method, path, body in FakeDiscord.requests if method == "PUT"]
    assert len(puts) == 1
    path, body = puts[0]
    assert path.endswith(f"/applications/{APP_ID}/guilds/4242/commands")
    groups = {c["name"]: {o["name"] for o in c["options"]} for c in body}
    assert groups == {
        "poll": {"create", "close", "results", "list", "export"},
        "article": {"share", "preview"},
    }
    assert "to server 4242" in result.stdout


# ------------------------------------------------------------------------ backup


class AckReader:
    """Reads `ACK <poll> <user> <option>` lines from the vote writer as they come."""

    def __init__(self, proc: subprocess.Popen[bytes]) -> None:
        assert proc.stdout is not None
        self.fd = proc.stdout.fileno()
        self.rest = b""
        self.acks: list[tuple[int, int, int]] = []

    def read_until(self, want: int) -> None:
        deadline = time.monotonic() + 30
        with selectors.DefaultSelector() as selector:
            selector.register(self.fd, selectors.EVENT_READ)
            while len(self.acks) < want and time.monotonic() < deadline:
                if not selector.select(1):
                    continue
                chunk = os.read(self.fd, 65536)
                if not chunk:
                    break
                *lines, self.rest = (self.rest + chunk).split(b"\n")
                for parts in (line.decode().split() for line in lines):
                    if parts and parts[0] == "ACK":
                        self.acks.append((int(parts[1]), int(parts[2]), int(parts[3])))
        assert len(self.acks) >= want, "the vote writer stalled"


def test_backup_during_concurrent_votes_holds_every_committed_vote(tmp_path):
    database = tmp_path / "live.sqlite3"
    env = dict(os.environ, PYTHONPATH=str(ROOT))
    writer = subprocess.Popen(
        [sys.executable, str(WRITER), str(database), "--concurrency", "50"],
        stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, cwd=tmp_path, env=env,
    )
    reader = AckReader(writer)
    try:
        for round_number, want in enumerate((200, 600, 1200)):
            reader.read_until(want)
            committed = list(reader.acks)  # acknowledged before the backup started
            target = tmp_path / f"backup-{round_number}.sqlite3"
            report = backup(database, target)
            assert report.ok and writer.poll() is None  # taken while votes were being written
            with sqlite3.connect(target) as copy:
                stored = set(copy.execute("SELECT poll_id, user_id, option FROM votes"))
                assert copy.execute("PRAGMA integrity_check").fetchone() == ("ok",)
            missing = [a for a in committed if a not in stored]
            assert not missing, f"{len(missing)} committed votes missing from the backup"
            assert not (tmp_path / f"backup-{round_number}.sqlite3.partial").exists()
    finally:
        writer.kill()
        writer.wait()


def test_backup_command_copies_the_database(tmp_path):
    made = run_py(tmp_path, "check", "--offline", DISCORD_TOKEN=TOKEN, DATABASE_PATH="q.sqlite3")
    assert made.returncode == 0
    result = run_py(tmp_path, "backup", "copies/q-backup.sqlite3", DATABASE_PATH="q.sqlite3")
    assert result.returncode == 0, result.stderr
    assert "0 polls, 0 votes" in result.stdout
    with sqlite3.connect(tmp_path / "copies" / "q-backup.sqlite3") as copy:
        assert copy.execute("PRAGMA user_version").fetchone() == (len(load_migrations()),)


def test_backup_of_a_missing_database_says_so(tmp_path):
    result = run_py(tmp_path, "backup", "out.sqlite3", DATABASE_PATH="nothing-here.sqlite3")
    assert result.returncode == 1
    assert "no database at nothing-here.sqlite3" in result.stderr


# ------------------------------------------------------------------------ logs


def test_json_logs_are_one_object_per_line_with_context():
    record = logging.LogRecord("quorum.polls", logging.INFO, __file__, 1, "poll %s closed", (7,), None)
    record.poll_id = 7
    record.guild_id = 42
    line = JsonFormatter().format(record)
    assert "\n" not in line
    entry = json.loads(line)
    assert entry["message"] == "poll 7 closed" and entry["level"] == "INFO" and entry["logger"] == "quorum.polls"
    assert entry["poll_id"] == 7 and entry["guild_id"] == 42


# ------------------------------------------------------------------------ SIGTERM


def test_sigterm_stops_the_bot_gracefully(tmp_path, fake_discord):
    """A real `run.py`: logged in (REST stand-in), commands synced, gateway unreachable so it
    keeps retrying; SIGTERM must stop it cleanly with the database closed."""
    with socket.socket() as probe:  # a port with nothing listening: the gateway never answers
        probe.bind(("127.0.0.1", 0))
        dead_port = probe.getsockname()[1]
    base = {k: v for k, v in os.environ.items() if not k.startswith(("DISCORD_", "DATABASE_", "LOG_", "DEV_"))}
    process = subprocess.Popen(
        [sys.executable, str(ROOT / "run.py")],
        cwd=tmp_path,
        env={**base, "DISCORD_TOKEN": TOKEN, "DISCORD_API_BASE": fake_discord,
             "DISCORD_GATEWAY_URL": f"ws://127.0.0.1:{dead_port}", "DATABASE_PATH": "q.sqlite3"},
        stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
    )
    try:
        deadline = time.monotonic() + 30
        while not any(m == "PUT" for m, _, _ in FakeDiscord.requests) and time.monotonic() < deadline:
            time.sleep(0.1)
        assert any(m == "PUT" for m, _, _ in FakeDiscord.requests), "the bot never got as far as syncing"
        process.send_signal(signal.SIGTERM)
        output, _ = process.communicate(timeout=30)
    finally:
        if process.poll() is None:
            process.kill()
    assert process.returncode == 0, output[-2000:]
    assert "shutting down: 0 interactions in flight" in output
    assert "stopped" in output
    with sqlite3.connect(tmp_path / "q.sqlite3") as db:  # closed cleanly, opens at once
        assert db.execute("PRAGMA integrity_check").fetchone() == ("ok",)
