"""`run.py check`, `backup` and `sync` as a maintainer runs them: real processes."""

from __future__ import annotations

import asyncio
import base64
import json
import logging
import os
import random
import selectors
import signal
import socket
import sqlite3
import subprocess
import sys
import threading
import time
import uuid
from collections.abc import Iterator
from contextlib import closing
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import ClassVar
from urllib.parse import quote

import postgres
import pytest

from bot.db import load_migrations
from bot.db_postgres import PostgresDatabase
from bot.db_sqlite import SqliteDatabase
from bot.logs import JsonFormatter
from bot.maintenance import application_id_from_token, backup, invite_url
from bot.polls.models import PollDraft
from bot.polls.repository import PollRepository


@pytest.fixture
def database_url(empty_database_url):
    """These tests look at what migrating does (or check and copy an empty database): each
    gets a schema with nothing in it, not the suite's migrated ones."""
    return empty_database_url

ROOT = Path(__file__).resolve().parents[1]
WRITER = ROOT / "tests" / "process" / "vote_writer.py"
APP_ID = 123456789012345678
TOKEN = base64.b64encode(str(APP_ID).encode()).decode().rstrip("=") + ".GhIjKl." + "a" * 27
SHIPPED = len(load_migrations())
# Characters that mean something in an SQLite URI (and a space), in database and backup names.
URI_NAMES = ["polls#1.sqlite3", "polls?.sqlite3", "polls%41.sqlite3", "my polls.sqlite3"]


def clean_env(**env: str) -> dict[str, str]:
    base = {k: v for k, v in os.environ.items() if not k.startswith(("DISCORD_", "DATABASE_", "LOG_", "DEV_"))}
    return {**base, **env}


def run_py(tmp_path: Path, *args: str, **env: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, str(ROOT / "run.py"), *args],
        cwd=tmp_path,
        env=clean_env(**env),
        capture_output=True,
        text=True,
        timeout=60,
    )


def make_database(path: Path, votes: int | None = None) -> Path:
    """A database as the bot leaves it (migrated, WAL, closed cleanly); with `votes`, one poll
    holding that many votes."""

    async def make() -> None:
        async with await SqliteDatabase.open(path) as db:
            if votes is None:
                return
            repo = PollRepository(db)
            draft = PollDraft("Lunch?", ("Soup", "Salad", "Pie"))
            poll = await repo.create(draft, guild_id=1, channel_id=2, creator_id=3, now=time.time())
            await asyncio.gather(*(repo.cast_vote(poll, 1000 + u, u % 3, now=time.time()) for u in range(votes)))

    path.parent.mkdir(parents=True, exist_ok=True)
    asyncio.run(make())
    return path


def damage(path: Path, *, only_votes: bool = False) -> Path:
    """Overwrite every page after the first with noise (the header still says SQLite), or only
    the votes table's root page (the schema still reads, so a writer would rewrite the header)."""
    data = bytearray(path.read_bytes())
    start, end = 4096, len(data)
    if only_votes:
        with closing(sqlite3.connect(path)) as db:
            page_size = db.execute("PRAGMA page_size").fetchone()[0]
            root = db.execute("SELECT rootpage FROM sqlite_master WHERE name = 'votes'").fetchone()[0]
        start, end = (root - 1) * page_size, root * page_size
    data[start:end] = random.Random(7).randbytes(end - start)
    path.write_bytes(data)
    return path


def snapshot(folder: Path) -> dict[str, tuple[int, bytes]]:
    """Every file under `folder` with its mtime and bytes, and every folder: what "untouched"
    means. (A folder's own mtime changes when a file is made and removed in it, so not that.)"""
    return {
        p.relative_to(folder).as_posix(): (p.stat().st_mtime_ns, p.read_bytes()) if p.is_file() else (0, b"")
        for p in folder.rglob("*")
    }


def votes_in(path: Path) -> int:
    with closing(sqlite3.connect(path)) as db:
        return db.execute("SELECT count(*) FROM votes").fetchone()[0]


# ------------------------------------------------------------------------ check


def test_invite_link_carries_exactly_the_needed_permissions():
    assert application_id_from_token(TOKEN) == APP_ID
    assert application_id_from_token("not-a-token") is None
    url = invite_url(APP_ID)
    assert f"client_id={APP_ID}" in url and "permissions=274878024704" in url
    assert "scope=bot+applications.commands" in url


def test_check_offline_validates_settings_and_database_and_prints_the_invite(tmp_path):
    make_database(tmp_path / "data" / "q.sqlite3")
    result = run_py(tmp_path, "check", "--offline", DISCORD_TOKEN=TOKEN, DATABASE_PATH="data/q.sqlite3")
    assert result.returncode == 0, result.stderr
    assert "ok   settings are valid" in result.stdout
    assert f"schema version {SHIPPED}, integrity ok; 0 polls (0 open), 0 votes" in result.stdout
    assert invite_url(APP_ID) in result.stdout


def test_check_reports_bad_settings_all_at_once(tmp_path):
    result = run_py(tmp_path, "check", "--offline", DISCORD_TOKEN="nope", LOG_LEVEL="LOUD", LOG_FORMAT="xml")
    assert result.returncode == 2
    assert "DISCORD_TOKEN does not look like a bot token" in result.stderr
    assert "LOG_LEVEL=LOUD" in result.stderr and "LOG_FORMAT=xml" in result.stderr


def _missing(path: Path) -> None:
    pass  # not even its folder: a volume that is not mounted


def _empty(path: Path) -> None:
    path.parent.mkdir()
    path.touch()


def _not_sqlite(path: Path) -> None:
    path.parent.mkdir()
    path.write_bytes(b"this is not a database" * 100)


def _restored_backup(path: Path) -> Path:
    # Backups use a rollback journal, not WAL: opening one for writing rewrites its header.
    make_database(path, votes=300)
    with closing(sqlite3.connect(path)) as db:
        db.execute("PRAGMA journal_mode = DELETE").fetchall()
    return path


def _damaged_backup(path: Path) -> None:
    damage(_restored_backup(path))


def _damaged_votes(path: Path) -> None:
    damage(_restored_backup(path), only_votes=True)


def _damaged_live(path: Path) -> None:
    damage(make_database(path, votes=300))


@pytest.mark.parametrize(
    ("make", "says"),
    [
        (_missing, "no database at data/q.sqlite3"),
        (_empty, "the file is empty"),
        (_not_sqlite, "not an SQLite database"),
        (_damaged_backup, "database disk image is malformed"),
        (_damaged_live, "database disk image is malformed"),
        (_damaged_votes, "database disk image is malformed"),
    ],
    ids=["missing", "empty", "not-sqlite", "damaged-backup", "damaged-wal", "damaged-votes"],
)
def test_check_fails_on_an_unusable_database_and_touches_nothing(tmp_path, make, says):
    make(tmp_path / "data" / "q.sqlite3")
    before = snapshot(tmp_path)
    result = run_py(tmp_path, "check", "--offline", DISCORD_TOKEN=TOKEN, DATABASE_PATH="data/q.sqlite3")
    assert result.returncode == 1, result.stdout + result.stderr
    assert "FAIL database data/q.sqlite3: " in result.stdout and says in result.stdout, result.stdout
    assert "Traceback" not in result.stderr
    assert snapshot(tmp_path) == before  # no folder, no file, no -wal or -shm, no byte changed


def _schema_before_polls(path: Path) -> None:
    with closing(sqlite3.connect(path)) as db:  # a valid SQLite file with no tables at all
        db.execute("CREATE TABLE scratch (x)")
        db.execute("DROP TABLE scratch")


def _first_migration_only(path: Path) -> None:
    with closing(sqlite3.connect(path)) as db:
        db.executescript(load_migrations()[0].sql + "\nPRAGMA user_version = 1;")


@pytest.mark.parametrize(
    ("make", "says"),
    [
        (_schema_before_polls, "schema version 0, integrity ok; no polls tables yet"),
        (_first_migration_only, "schema version 1, integrity ok; 0 polls (0 open), 0 votes"),
    ],
    ids=["version-0", "version-1"],
)
def test_check_passes_an_older_schema_and_leaves_the_migrations_to_the_bot(tmp_path, make, says):
    make(tmp_path / "q.sqlite3")
    before = snapshot(tmp_path)
    result = run_py(tmp_path, "check", "--offline", DISCORD_TOKEN=TOKEN, DATABASE_PATH="q.sqlite3")
    assert result.returncode == 0, result.stdout + result.stderr
    assert f"ok   database q.sqlite3: {says}; older than this Quorum ({SHIPPED}): the bot migrates it" in result.stdout
    assert snapshot(tmp_path) == before  # not migrated


def test_check_fails_on_a_schema_newer_than_this_quorum(tmp_path):
    database = make_database(tmp_path / "q.sqlite3", votes=3)
    with closing(sqlite3.connect(database)) as db:
        db.execute(f"PRAGMA user_version = {SHIPPED + 1}")
    before = snapshot(tmp_path)
    result = run_py(tmp_path, "check", "--offline", DISCORD_TOKEN=TOKEN, DATABASE_PATH="q.sqlite3")
    assert result.returncode == 1
    assert (
        f"FAIL database q.sqlite3: schema version {SHIPPED + 1}, integrity ok; 1 polls (1 open), 3 votes; "
        f"newer than this Quorum ({SHIPPED}): upgrade Quorum or restore a backup"
    ) in result.stdout
    assert snapshot(tmp_path) == before


async def test_check_reads_the_database_of_a_running_bot(tmp_path):
    """The healthcheck runs beside the bot, whose connection holds the database in WAL mode."""
    database = tmp_path / "q.sqlite3"
    async with await SqliteDatabase.open(database) as db:
        repo = PollRepository(db)
        poll = await repo.create(PollDraft("Now?", ("Yes", "No")), guild_id=1, channel_id=2, creator_id=3,
                                 now=time.time())
        await asyncio.gather(*(repo.cast_vote(poll, 100 + u, u % 2, now=time.time()) for u in range(50)))
        assert Path(f"{database}-wal").stat().st_size > 0  # the votes are in the WAL, not yet the file
        main_file = database.read_bytes()
        result = await asyncio.to_thread(
            run_py, tmp_path, "check", "--offline", DISCORD_TOKEN=TOKEN, DATABASE_PATH="q.sqlite3"
        )
        assert result.returncode == 0, result.stdout + result.stderr
        assert f"ok   database q.sqlite3: schema version {SHIPPED}, integrity ok; 1 polls (1 open), 50 votes" in (
            result.stdout
        )
        assert database.read_bytes() == main_file
        await repo.cast_vote(poll, 99, 0, now=time.time())  # and the bot goes on writing


def test_check_leaves_a_cleanly_closed_database_as_it_was(tmp_path):
    make_database(tmp_path / "q.sqlite3", votes=5)
    before = snapshot(tmp_path)
    result = run_py(tmp_path, "check", "--offline", DISCORD_TOKEN=TOKEN, DATABASE_PATH="q.sqlite3")
    assert result.returncode == 0, result.stdout + result.stderr
    assert snapshot(tmp_path) == before  # not even an empty -wal or -shm left beside it


@pytest.mark.parametrize("name", URI_NAMES)
def test_check_reads_a_database_whose_name_has_uri_characters(tmp_path, name):
    make_database(tmp_path / name, votes=7)
    before = snapshot(tmp_path)
    result = run_py(tmp_path, "check", "--offline", DISCORD_TOKEN=TOKEN, DATABASE_PATH=name)
    assert result.returncode == 0, result.stdout + result.stderr
    assert f"ok   database {name}: schema version {SHIPPED}, integrity ok; 1 polls (1 open), 7 votes" in result.stdout
    assert snapshot(tmp_path) == before


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
    make_database(tmp_path / "data" / "quorum.sqlite3")  # the default DATABASE_PATH
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
        "poll": {"create", "close", "results", "list", "export", "edit", "scheduled", "cancel"},
        "article": {"share", "preview"},
        "feed": {"add", "list", "remove", "pause", "resume"},
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
    make_database(tmp_path / "q.sqlite3")
    result = run_py(tmp_path, "backup", "copies/q-backup.sqlite3", DATABASE_PATH="q.sqlite3")
    assert result.returncode == 0, result.stderr
    assert "0 polls, 0 votes" in result.stdout
    with sqlite3.connect(tmp_path / "copies" / "q-backup.sqlite3") as copy:
        assert copy.execute("PRAGMA user_version").fetchone() == (len(load_migrations()),)


def test_backup_of_a_missing_database_says_so(tmp_path):
    result = run_py(tmp_path, "backup", "out.sqlite3", DATABASE_PATH="nothing-here.sqlite3")
    assert result.returncode == 1
    assert "no database at nothing-here.sqlite3" in result.stderr


@pytest.mark.parametrize("name", URI_NAMES)
def test_backup_copies_a_database_whose_name_has_uri_characters(tmp_path, name):
    make_database(tmp_path / name, votes=7)
    result = run_py(tmp_path, "backup", f"copies/{name}", DATABASE_PATH=name)
    assert result.returncode == 0, result.stderr
    assert "1 polls, 7 votes" in result.stdout
    assert votes_in(tmp_path / "copies" / name) == 7
    assert sorted(snapshot(tmp_path)) == sorted([name, "copies", f"copies/{name}"])  # no stray file elsewhere


def assert_failed_cleanly(result: subprocess.CompletedProcess[str], folder: Path, before: dict) -> None:
    assert result.returncode == 1, result.stdout + result.stderr
    assert result.stderr.startswith("Backup failed: ") and "Traceback" not in result.stderr, result.stderr
    # No .partial, no journal beside it, no new folder, no -wal or -shm beside the source, and
    # the previous backup byte for byte as it was.
    assert snapshot(folder) == before


@pytest.mark.parametrize(
    ("make", "says"),
    [
        (lambda path: path.write_bytes(b"\x00garbage" * 5000), "not an SQLite database"),
        (lambda path: path.touch(), "the file is empty"),
        (_damaged_live, "database disk image is malformed"),
        (_damaged_backup, "database disk image is malformed"),
        (_damaged_votes, "database disk image is malformed"),
    ],
    ids=["garbage", "empty", "damaged-wal", "damaged-backup", "damaged-votes"],
)
def test_backup_of_an_unreadable_database_fails_and_leaves_nothing_behind(tmp_path, make, says):
    good = make_database(tmp_path / "good.sqlite3", votes=3)
    assert run_py(tmp_path, "backup", "backups/q.sqlite3", DATABASE_PATH=str(good)).returncode == 0
    good.unlink()
    make(tmp_path / "q.sqlite3")
    before = snapshot(tmp_path)
    for target in ("backups/q.sqlite3", "new/folder/q.sqlite3"):  # over an old backup; into new folders
        result = run_py(tmp_path, "backup", target, DATABASE_PATH="q.sqlite3")
        assert_failed_cleanly(result, tmp_path, before)
        assert says in result.stderr
    assert votes_in(tmp_path / "backups" / "q.sqlite3") == 3


def test_backup_to_a_full_disk_fails_and_leaves_nothing_behind(tmp_path):
    resource = pytest.importorskip("resource")  # RLIMIT_FSIZE: POSIX only
    source = make_database(tmp_path / "q.sqlite3", votes=3000)
    limit = 100_000
    assert source.stat().st_size > limit  # the copy cannot fit

    def full_disk() -> None:
        # In the child, before run.py starts: writes past `limit` bytes fail with EFBIG as on a
        # full disk (SIGXFSZ ignored: its default action would kill the process instead).
        resource.setrlimit(resource.RLIMIT_FSIZE, (limit, limit))
        signal.signal(signal.SIGXFSZ, signal.SIG_IGN)

    old = tmp_path / "backups" / "q.sqlite3"
    old.parent.mkdir()
    old.write_bytes(b"an older backup")
    before = snapshot(tmp_path)
    for target in ("backups/q.sqlite3", "new/folder/q.sqlite3"):
        result = subprocess.run(
            [sys.executable, str(ROOT / "run.py"), "backup", target],
            cwd=tmp_path,
            env=clean_env(DATABASE_PATH="q.sqlite3", PYTHONDONTWRITEBYTECODE="1"),
            capture_output=True,
            text=True,
            timeout=60,
            preexec_fn=full_disk,
        )
        assert_failed_cleanly(result, tmp_path, before)
        assert "is the disk full?" in result.stderr


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


# ------------------------------------------------------------------------ review fixes


def crash_left_wal(path: Path) -> Path:
    """A database whose process died with writes in its -wal file, and whose -shm is gone
    (as after a crash and a copy of the folder): reading the WAL needs a new -shm."""
    make_database(path, votes=2)
    script = (
        "import os, sqlite3, sys\n"
        "c = sqlite3.connect(sys.argv[1], isolation_level=None)\n"
        "c.execute('PRAGMA wal_autocheckpoint = 0')\n"
        "c.execute(\"INSERT INTO meta (key, value) VALUES ('crash', 'left in the wal')\")\n"
        "os._exit(0)  # no checkpoint, no close\n"
    )
    subprocess.run([sys.executable, "-c", script, str(path)], check=True, timeout=30)
    Path(f"{path}-shm").unlink()
    assert Path(f"{path}-wal").stat().st_size > 0
    return path


def test_check_of_a_crash_left_wal_reads_only_and_says_so(tmp_path):
    crash_left_wal(tmp_path / "q.sqlite3")
    before = snapshot(tmp_path)
    result = run_py(tmp_path, "check", "--offline", DATABASE_PATH="q.sqlite3", DISCORD_TOKEN=TOKEN)
    assert "ok   database q.sqlite3" in result.stdout, result.stdout + result.stderr
    assert "-wal file, not read here" in result.stdout
    assert snapshot(tmp_path) == before  # no -shm created


def test_backup_of_a_crash_left_wal_holds_its_writes(tmp_path):
    crash_left_wal(tmp_path / "q.sqlite3")
    result = run_py(tmp_path, "backup", "copy.sqlite3", DATABASE_PATH="q.sqlite3")
    assert result.returncode == 0, result.stderr
    with closing(sqlite3.connect(tmp_path / "copy.sqlite3")) as copy:
        assert copy.execute("SELECT value FROM meta WHERE key = 'crash'").fetchone() == ("left in the wal",)


@pytest.mark.parametrize(
    "target", ["q.sqlite3", "./q.sqlite3", "q.sqlite3-wal", "q.sqlite3-shm", "q.sqlite3-journal", "hardlink.sqlite3"]
)
def test_a_backup_over_the_live_database_or_its_files_is_refused(tmp_path, target):
    path = make_database(tmp_path / "q.sqlite3", votes=5)
    if target == "hardlink.sqlite3":
        os.link(path, tmp_path / target)

    async def while_the_bot_runs() -> None:
        async with await SqliteDatabase.open(path) as db:
            result = await asyncio.to_thread(run_py, tmp_path, "backup", target, DATABASE_PATH="q.sqlite3")
            assert result.returncode == 1 and "is the database itself" in result.stderr, result.stderr
            repo = PollRepository(db)
            poll = await repo.get(1)
            assert poll is not None
            await asyncio.gather(*(repo.cast_vote(poll, 5000 + u, 0, now=time.time()) for u in range(50)))
            assert await db.integrity_check() == ["ok"]

    asyncio.run(while_the_bot_runs())
    assert votes_in(path) == 55


def test_a_backup_target_named_like_a_uri_is_a_plain_file(tmp_path):
    make_database(tmp_path / "q.sqlite3", votes=4)
    result = run_py(tmp_path, "backup", "file:out.sqlite3", DATABASE_PATH="q.sqlite3")
    assert result.returncode == 0, result.stderr
    assert votes_in(tmp_path / "file:out.sqlite3") == 4
    assert not list(tmp_path.glob("out.sqlite3*")) and not list(tmp_path.glob("*.partial"))


# ------------------------------------------------------------------------ PostgreSQL

postgresql_only = pytest.mark.parametrize("backend", ["postgresql"], indirect=True)
PG_SHIPPED = len(load_migrations("postgresql"))
SECRET = "hunter2@Sekr%t"  # "@" and "%" percent-encoded in the URL: both spellings must stay hidden


def dead_port() -> int:
    with socket.socket() as probe:  # bound, never listening: connections are refused
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def assert_secret_hidden(result: subprocess.CompletedProcess[str]) -> None:
    output = result.stdout + result.stderr
    assert SECRET not in output and quote(SECRET, safe="") not in output and "hunter2" not in output, output


@pytest.fixture
def password_url(database_url) -> Iterator[str]:
    """`database_url` as a role with a password sees it, over TCP (the tests' own URL has none)."""
    import psycopg
    from psycopg.conninfo import conninfo_to_dict

    params = conninfo_to_dict(database_url)
    role = f"quorum_pw_{uuid.uuid4().hex[:12]}"
    schema = params["options"].partition("search_path=")[2]
    try:
        with psycopg.connect(database_url, autocommit=True) as conn:
            conn.execute(f"CREATE ROLE {role} LOGIN PASSWORD '{SECRET}'")
            conn.execute(f"GRANT ALL ON SCHEMA {schema} TO {role}")
    except psycopg.Error as error:
        pytest.skip(f"the test server's role may not create roles: {error}")
    host = params.get("host") or "127.0.0.1"  # a Unix socket logs in without a password: use TCP
    url = (f"postgresql://{role}:{quote(SECRET, safe='')}@{host}:{params.get('port') or 5432}/{params['dbname']}"
           f"?options=-csearch_path%3D{schema}")
    try:
        psycopg.connect(url, connect_timeout=3).close()
        yield url
    except psycopg.OperationalError as error:
        pytest.skip(f"no password login over TCP to the test server: {error}")
    finally:
        with psycopg.connect(database_url, autocommit=True) as conn:
            conn.execute(f"DROP OWNED BY {role} CASCADE")
            conn.execute(f"DROP ROLE {role}")


def tables_in(database_url: str) -> list[str]:
    import psycopg

    with psycopg.connect(database_url) as conn:
        rows = conn.execute("SELECT table_name FROM information_schema.tables WHERE table_schema = current_schema()")
        return sorted(r[0] for r in rows)


async def pg_database_with_votes(url: str, votes: int = 3) -> None:
    db = await PostgresDatabase.open(url)
    repo = PollRepository(db)
    poll = await repo.create(PollDraft("Lunch?", ("Soup", "Pie")), guild_id=1, channel_id=2, creator_id=3,
                             now=time.time())
    for user in range(votes):
        await repo.cast_vote(poll, 100 + user, user % 2, now=time.time())
    await db.close()


@postgresql_only
async def test_check_of_a_migrated_postgresql_database_passes(tmp_path, database_url):
    await pg_database_with_votes(database_url)
    result = await asyncio.to_thread(run_py, tmp_path, "check", "--offline", DISCORD_TOKEN=TOKEN,
                                     DATABASE_URL=database_url)
    assert result.returncode == 0, result.stdout + result.stderr
    assert f"ok   database {database_url}: reachable (PostgreSQL " in result.stdout
    assert f"schema version {PG_SHIPPED}; 1 polls (1 open), 3 votes" in result.stdout, result.stdout


@postgresql_only
def test_check_of_an_empty_postgresql_schema_reports_it_and_creates_nothing(tmp_path, database_url):
    result = run_py(tmp_path, "check", "--offline", DISCORD_TOKEN=TOKEN, DATABASE_URL=database_url)
    assert result.returncode == 0, result.stdout + result.stderr
    assert (f"schema version 0; no polls tables yet; older than this Quorum ({PG_SHIPPED}): "
            "the bot migrates it when it starts") in result.stdout, result.stdout
    assert tables_in(database_url) == []  # not even quorum_schema


@postgresql_only
async def test_check_fails_on_a_postgresql_schema_newer_than_this_quorum(tmp_path, database_url):
    import psycopg

    await pg_database_with_votes(database_url)
    with psycopg.connect(database_url, autocommit=True) as conn:
        conn.execute("UPDATE quorum_schema SET version = %s", (PG_SHIPPED + 1,))
    result = await asyncio.to_thread(run_py, tmp_path, "check", "--offline", DISCORD_TOKEN=TOKEN,
                                     DATABASE_URL=database_url)
    assert result.returncode == 1
    assert f"newer than this Quorum ({PG_SHIPPED}): upgrade Quorum or restore a backup" in result.stdout


def test_check_of_an_unreachable_postgresql_server_says_so_without_the_password(tmp_path):
    url = f"postgresql://quorum:{quote(SECRET, safe='')}@127.0.0.1:{dead_port()}/quorum"
    result = run_py(tmp_path, "check", "--offline", DISCORD_TOKEN=TOKEN, DATABASE_URL=url)
    assert result.returncode == 1, result.stdout + result.stderr
    assert "FAIL database postgresql://quorum:***@127.0.0.1:" in result.stdout
    assert "cannot connect: " in result.stdout and "Connection refused" in result.stdout, result.stdout
    assert "Traceback" not in result.stderr
    assert_secret_hidden(result)


@postgresql_only
def test_check_with_a_wrong_password_says_so_without_either_password(tmp_path, password_url):
    wrong = password_url.replace(quote(SECRET, safe=""), "hunter2-wrong")
    result = run_py(tmp_path, "check", "--offline", DISCORD_TOKEN=TOKEN, DATABASE_URL=wrong)
    assert result.returncode == 1
    assert "password authentication failed" in result.stdout and "check the user name and password" in result.stdout
    assert "Traceback" not in result.stderr
    assert_secret_hidden(result)


@postgresql_only
def test_check_with_a_password_passes_without_printing_it(tmp_path, password_url):
    result = run_py(tmp_path, "check", "--offline", DISCORD_TOKEN=TOKEN, DATABASE_URL=password_url)
    assert result.returncode == 0, result.stdout + result.stderr
    assert ":***@" in result.stdout
    assert_secret_hidden(result)


def restore_list(dump: Path) -> list[str]:
    listed = subprocess.run(["pg_restore", "--list", str(dump)], capture_output=True, text=True, timeout=60)
    assert listed.returncode == 0, listed.stderr
    return [line for line in listed.stdout.splitlines() if line and not line.startswith(";")]


@postgresql_only
async def test_postgresql_backup_writes_a_pg_dump_file_of_this_schema_only(tmp_path, password_url):
    await pg_database_with_votes(password_url, votes=5)  # its tables, its role's
    with postgres.fresh_schema() as other:  # another schema in the same database: not Quorum's, not dumped
        async with await PostgresDatabase.open(other):
            pass
        result = await asyncio.to_thread(run_py, tmp_path, "backup", "dumps/q.dump", DATABASE_URL=password_url)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "with pg_dump: 1 polls, 5 votes" in result.stdout and "pg_restore --no-owner --dbname" in result.stdout
    assert_secret_hidden(result)
    schema = password_url.rpartition("%3D")[2]
    entries = restore_list(tmp_path / "dumps" / "q.dump")
    assert any(f"TABLE DATA {schema} votes " in line for line in entries), entries
    assert all(f" {schema} " in line for line in entries if " TABLE " in line), entries
    assert sorted(snapshot(tmp_path)) == ["dumps", "dumps/q.dump"]  # no .partial left


@postgresql_only
def test_postgresql_backup_keeps_the_password_off_the_command_line(tmp_path, password_url, monkeypatch):
    import bot.maintenance_postgres as pg

    calls: list[tuple[list[str], dict[str, str]]] = []
    real_run = subprocess.run

    def spy(args, **kwargs):
        calls.append((args, kwargs["env"]))
        return real_run(args, **kwargs)

    monkeypatch.setattr(pg.subprocess, "run", spy)
    report = pg.backup_postgres(password_url, tmp_path / "q.dump")
    monkeypatch.undo()
    assert report.polls is None  # an empty schema: nothing migrated by the backup either
    [(args, env)] = calls
    assert not any("hunter2" in arg for arg in args), args
    assert env["PGPASSWORD"] == SECRET
    assert not [entry for entry in restore_list(tmp_path / "q.dump") if " TABLE " in entry]


@pytest.mark.parametrize("trouble", ["no-pg_dump", "unreachable"])
def test_postgresql_backup_failures_are_clear_and_leave_nothing_behind(tmp_path, trouble):
    url = f"postgresql://quorum:{quote(SECRET, safe='')}@127.0.0.1:{dead_port()}/quorum"
    env = {"PATH": str(tmp_path / "no-tools")} if trouble == "no-pg_dump" else {}
    result = run_py(tmp_path, "backup", "new/q.dump", DATABASE_URL=url, **env)
    assert result.returncode == 1, result.stdout + result.stderr
    says = "pg_dump is not installed" if trouble == "no-pg_dump" else "cannot connect: "
    assert result.stderr.startswith("Backup failed: ") and says in result.stderr, result.stderr
    assert "Traceback" not in result.stderr
    assert_secret_hidden(result)
    assert snapshot(tmp_path) == {}


def test_backup_help_says_it_calls_pg_dump_and_how_to_restore(tmp_path):
    result = run_py(tmp_path, "backup", "--help")
    assert "pg_dump" in result.stdout and "pg_restore --no-owner --dbname" in result.stdout


@pytest.mark.parametrize(
    ("shards", "expected"),
    [
        ({}, "shards: as many as Discord recommends, all in this process"),
        ({"SHARD_COUNT": "4"}, "shards: 0, 1, 2, 3 of 4 in this process; syncs the slash commands"),
        ({"SHARD_COUNT": "4", "SHARD_IDS": "2-3"}, "shards: 2, 3 of 4 in this process; the process running shard 0"),
    ],
)
def test_check_names_the_shards_this_process_runs(tmp_path, shards, expected):
    from bot.config import Settings
    from run import shards_text

    settings = Settings.from_env({"DATABASE_PATH": str(tmp_path / "q.sqlite3"), **shards}, env_file=None,
                                 require_token=False)
    assert ("shards: " + shards_text(settings)).startswith(expected)
