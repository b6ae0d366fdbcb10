"""`python run.py playground` as a newcomer runs it: a real process, a real browser page."""

from __future__ import annotations

import json
import os
import shutil
import signal
import socket
import sqlite3
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

import pytest
from conftest import SEED_ANSWERS, SEED_QUESTION

from bot.seed import RANKED_ANSWERS, RANKED_QUESTION, WEEKLY_QUESTION

ROOT = Path(__file__).resolve().parents[1]
CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="module")
def playground(tmp_path_factory):
    """One playground for the module's tests, which only read it: starting one takes ~12 s."""
    tmp_path = tmp_path_factory.mktemp("playground")
    database = tmp_path / "playground.sqlite3"
    process = subprocess.Popen(
        [sys.executable, str(ROOT / "run.py"), "playground", "--no-browser", "--port", str(free_port()),
         "--database", str(database)],
        cwd=tmp_path,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env={k: v for k, v in os.environ.items() if k != "DISCORD_TOKEN"},
    )
    url = article = None
    deadline = time.monotonic() + 90
    assert process.stdout is not None
    while time.monotonic() < deadline and article is None:
        line = process.stdout.readline()
        if not line:
            break
        if line.startswith("http://127.0.0.1:"):
            url = line.strip()
        elif line.startswith("Try /article share"):
            article = line.split(": ", 1)[1].strip()
    if url is None:
        process.kill()
        pytest.fail(f"the playground printed no URL: {process.communicate()[1][-2000:]}")
    yield url, database, article
    process.send_signal(signal.SIGINT)
    out, err = process.communicate(timeout=30)
    assert process.returncode == 0, err[-2000:]
    assert "Playground stopped." in out


def test_playground_serves_the_seed_poll_without_a_token(playground):
    url, database, article = playground
    assert urllib.request.urlopen(url.split("#")[0], timeout=10).status == 200
    # The seed article is served locally, so /article share works offline.
    assert article is not None and article.startswith("http://127.0.0.1:")
    with urllib.request.urlopen(article, timeout=10) as page:
        assert b"The Internet Is Awesome! The Kubernetes Community Proves It" in page.read()
    with sqlite3.connect(database) as db:
        (question,) = db.execute("SELECT question FROM polls WHERE number = 1").fetchone()
        votes = db.execute("SELECT count(*) FROM votes").fetchone()[0]
    assert question == SEED_QUESTION
    assert votes == 3


def _page(url: str) -> dict:
    """The page's state as the browser first reads it (its capability is the URL's fragment)."""
    base, capability = url.split("#", 1)
    request = urllib.request.Request(
        base.rstrip("/") + "/api/pages", data=b"{}", method="POST",
        headers={"X-Simcord-Capability": capability, "Content-Type": "application/json"},
    )
    with urllib.request.urlopen(request, timeout=10) as response:
        return json.load(response)


def test_playground_bot_is_quorum_with_news_ranked_and_scheduled_polls(playground):
    url, database, _ = playground
    page = _page(url)
    authors = {m["author"]["name"] for m in page["messages"].values()}
    assert "Quorum" in authors and "TestBot" not in json.dumps(page)
    # #news, beside #general: the preview shows one channel, so the welcome names it.
    named = {name for m in page["messages"].values() for name in (m.get("mention_channel_names") or {}).values()}
    assert "news" in named
    with sqlite3.connect(database) as db:
        polls = db.execute(
            "SELECT question, ranked, starts_at IS NOT NULL, repeat_every, message_id IS NOT NULL"
            " FROM polls ORDER BY number"
        ).fetchall()
        answers = db.execute(
            "SELECT count(*) FROM poll_options o JOIN polls p ON p.id = o.poll_id WHERE p.number = 2"
        ).fetchone()[0]
    assert [(q, bool(r), bool(s), e, bool(m)) for q, r, s, e, m in polls] == [
        (SEED_QUESTION, False, False, None, True),
        (RANKED_QUESTION, True, False, None, True),  # posted, its ballot a click away
        (WEEKLY_QUESTION, False, True, 7 * 24 * 3600, False),  # posted in an hour, then weekly
    ]
    assert answers == len(RANKED_ANSWERS) == 5


@pytest.mark.skipif(CHROMIUM is None, reason="no Chromium installed (Debian package `chromium`)")
def test_playground_page_shows_the_seed_poll_in_a_browser(playground, tmp_path):
    url, _, _ = playground
    flags = [
        CHROMIUM, "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
        "--disable-background-networking", "--disable-component-update", "--disable-sync",
        f"--user-data-dir={tempfile.mkdtemp(dir=tmp_path)}", "--window-size=1200,1100",
        "--virtual-time-budget=8000",
    ]
    dom = subprocess.run([*flags, "--dump-dom", url], capture_output=True, text=True, timeout=90).stdout
    assert SEED_QUESTION in dom
    for answer in SEED_ANSWERS:
        assert answer in dom, answer
    shot = tmp_path / "playground.png"
    subprocess.run([*flags, f"--screenshot={shot}", url], capture_output=True, timeout=90)
    assert shot.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert shot.stat().st_size > 20_000  # a rendered page, not a blank one
