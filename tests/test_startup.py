"""Real `python run.py` processes: what a maintainer sees when the settings are wrong.

Each run has a fresh temporary working directory (so the repository's own `.env`, if any, is
not read) and an environment with every Quorum setting removed unless the test sets it.
`run.py` is started by its absolute path, so Python puts the repository on `sys.path`.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import threading
from collections.abc import Iterator
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

from bot.config import SETTING_NAMES

ROOT = Path(__file__).resolve().parents[1]
RUN_PY = ROOT / "run.py"
SETTINGS = SETTING_NAMES
# The shape of a bot token (three base64url parts), not a real one.
WELL_FORMED_TOKEN = "MTAxNTk5NzQ2NjQ0MzEyMDc4OA.GaBcDe.abcdefghijklmnopqrstuvwxyz0123456789AB"
TOKEN_PORTAL = "https://discord.com/developers/applications"


@dataclass
class Result:
    returncode: int
    stdout: str
    stderr: str

    @property
    def problems(self) -> list[str]:
        return [line[4:] for line in self.stderr.splitlines() if line.startswith("  - ")]


def run_quorum(cwd: Path, *args: str, timeout: float = 30, **settings: str) -> Result:
    env = {k: v for k, v in os.environ.items() if k not in SETTINGS}
    env.update(settings)
    env["PYTHONDONTWRITEBYTECODE"] = "1"
    proc = subprocess.run(
        [sys.executable, str(RUN_PY), *args],
        cwd=cwd,
        env=env,
        capture_output=True,
        text=True,
        timeout=timeout,
        stdin=subprocess.DEVNULL,
    )
    return Result(proc.returncode, proc.stdout, proc.stderr)


def assert_clean_refusal(result: Result, cwd: Path) -> None:
    """Exit status 2, a message and no traceback, and nothing created on disk."""
    assert result.returncode == 2, result
    assert result.stderr.startswith("Invalid settings:\n"), result.stderr
    assert "Traceback" not in result.stderr
    assert result.stdout == ""
    assert not (cwd / "data").exists(), "no database may be created before the settings are valid"


def test_without_a_token_it_says_where_to_get_one(tmp_path):
    result = run_quorum(tmp_path)

    assert_clean_refusal(result, tmp_path)
    assert len(result.problems) == 1
    assert "DISCORD_TOKEN is not set" in result.stderr
    assert TOKEN_PORTAL in result.stderr
    assert ".env" in result.stderr


def test_blank_token_counts_as_not_set(tmp_path):
    result = run_quorum(tmp_path, DISCORD_TOKEN="   ")

    assert_clean_refusal(result, tmp_path)
    assert "DISCORD_TOKEN is not set" in result.stderr


def test_every_bad_setting_is_reported_in_one_run(tmp_path):
    (tmp_path / "a-directory").mkdir()
    result = run_quorum(
        tmp_path,
        DISCORD_TOKEN="not-a-token",
        LOG_LEVEL="LOUD",
        DEV_GUILD_ID="abc",
        DISCORD_API_BASE="ftp://x",
        DISCORD_GATEWAY_URL="http://gateway.example",
        DATABASE_PATH="a-directory",
    )

    assert_clean_refusal(result, tmp_path)
    problems = result.problems
    assert len(problems) == 6, result.stderr
    assert any(p.startswith("DISCORD_TOKEN does not look like a bot token") for p in problems)
    assert any(p.startswith("LOG_LEVEL=LOUD is not one of DEBUG, INFO") for p in problems)
    assert any(p.startswith("DEV_GUILD_ID=abc is not a server id") for p in problems)
    assert any(p.startswith("DISCORD_API_BASE=ftp://x must start with http:// or https://") for p in problems)
    assert any(p.startswith("DISCORD_GATEWAY_URL=http://gateway.example must start with ws://") for p in problems)
    assert any(p.startswith("DATABASE_PATH=a-directory is a directory") for p in problems)
    # A bad token is a different problem from a missing one.
    assert "is not set" not in result.stderr


def test_the_four_settings_of_the_brief_together(tmp_path):
    result = run_quorum(
        tmp_path, DISCORD_TOKEN="abc.def", LOG_LEVEL="LOUD", DEV_GUILD_ID="abc", DISCORD_API_BASE="ftp://x"
    )

    assert_clean_refusal(result, tmp_path)
    assert [p.split()[0] for p in result.problems] == [
        "DISCORD_TOKEN",
        "LOG_LEVEL=LOUD",
        "DEV_GUILD_ID=abc",
        "DISCORD_API_BASE=ftp://x",
    ]


def test_settings_are_read_from_dotenv_in_the_working_directory(tmp_path):
    (tmp_path / ".env").write_text(
        f"# local settings\nDISCORD_TOKEN={WELL_FORMED_TOKEN}\nLOG_LEVEL=LOUD\nDEV_GUILD_ID='12x'\n",
        encoding="utf-8",
    )
    result = run_quorum(tmp_path)

    assert_clean_refusal(result, tmp_path)
    # The token came from .env (no "not set"); the bad values came from .env too.
    assert "DISCORD_TOKEN" not in result.stderr
    assert sorted(p.split()[0] for p in result.problems) == ["DEV_GUILD_ID=12x", "LOG_LEVEL=LOUD"]


def test_the_environment_wins_over_dotenv(tmp_path):
    (tmp_path / ".env").write_text("LOG_LEVEL=LOUD\nDEV_GUILD_ID=abc\n", encoding="utf-8")
    result = run_quorum(tmp_path, LOG_LEVEL="QUIET", DISCORD_TOKEN="x")

    assert_clean_refusal(result, tmp_path)
    assert "LOG_LEVEL=QUIET" in result.stderr
    assert "LOUD" not in result.stderr
    assert "DEV_GUILD_ID=abc" in result.stderr  # not overridden, so still read from .env
    assert "does not look like a bot token" in result.stderr


def test_dotenv_of_another_directory_is_not_read(tmp_path):
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    (tmp_path / ".env").write_text(f"DISCORD_TOKEN={WELL_FORMED_TOKEN}\n", encoding="utf-8")
    result = run_quorum(elsewhere)

    assert_clean_refusal(result, elsewhere)
    assert "DISCORD_TOKEN is not set" in result.stderr


def test_unknown_command_is_a_usage_error(tmp_path):
    result = run_quorum(tmp_path, "frobnicate", DISCORD_TOKEN=WELL_FORMED_TOKEN)

    assert result.returncode == 2
    assert "usage: run.py" in result.stderr
    assert "invalid choice: 'frobnicate'" in result.stderr


# ---------------------------------------------------------------- a token Discord refuses


class _RefuseEveryToken(BaseHTTPRequestHandler):
    """Answers every request the way Discord answers a revoked token."""

    paths: list[str]

    def _refuse(self) -> None:
        self.paths.append(f"{self.command} {self.path}")
        body = json.dumps({"message": "401: Unauthorized", "code": 0}).encode()
        self.send_response(401)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    do_GET = do_POST = do_PUT = do_PATCH = do_DELETE = _refuse

    def log_message(self, format: str, *args: object) -> None:
        pass


@pytest.fixture
def refusing_api() -> Iterator[tuple[str, list[str]]]:
    paths: list[str] = []
    handler = type("Handler", (_RefuseEveryToken,), {"paths": paths})
    server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        host, port = server.server_address[:2]
        yield f"http://{host}:{port}/api/v10", paths
    finally:
        server.shutdown()
        server.server_close()
        thread.join(5)


def test_a_refused_token_exits_1_with_advice(tmp_path, refusing_api):
    api_base, paths = refusing_api
    (tmp_path / ".env").write_text(f"DISCORD_TOKEN={WELL_FORMED_TOKEN}\n", encoding="utf-8")
    result = run_quorum(
        tmp_path,
        DISCORD_API_BASE=api_base + "/",  # the trailing slash is dropped
        DISCORD_GATEWAY_URL="ws://127.0.0.1:9/",
        DATABASE_PATH=str(tmp_path / "db" / "quorum.sqlite3"),
    )

    assert result.returncode == 1, result
    assert "Discord refused the token" in result.stderr
    assert "Traceback" not in result.stderr
    assert paths == ["GET /api/v10/users/@me"], "it asked the configured API, not Discord"
