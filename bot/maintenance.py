"""What `run.py check` and `run.py backup` do, without Discord."""

from __future__ import annotations

import base64
import binascii
import sqlite3
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import urlencode

from .db import Database

# View Channels, Send Messages, Send Messages in Threads, Embed Links, Attach Files,
# Read Message History: what posting polls and replying with a chart needs, nothing more.
PERMISSIONS = 274878024704


def application_id_from_token(token: str) -> int | None:
    """A bot token's first part is its bot user id (the application id) in base64."""
    head = token.split(".", 1)[0]
    try:
        text = base64.b64decode(head + "=" * (-len(head) % 4), altchars=b"-_", validate=True).decode("ascii")
    except (binascii.Error, UnicodeDecodeError, ValueError):
        return None
    return int(text) if text.isascii() and text.isdigit() else None


def invite_url(application_id: int) -> str:
    query = urlencode(
        {"client_id": application_id, "scope": "bot applications.commands", "permissions": PERMISSIONS}
    )
    return f"https://discord.com/oauth2/authorize?{query}"


# Polls, open polls, votes: what check and backup report, in one statement for both.
COUNTS = (
    "SELECT (SELECT count(*) FROM polls), (SELECT count(*) FROM polls WHERE closed_at IS NULL), "
    "(SELECT count(*) FROM votes)"
)


@dataclass
class DatabaseReport:
    path: Path
    schema_version: int = 0
    integrity: list[str] = field(default_factory=list)
    polls: int = 0
    open_polls: int = 0
    votes: int = 0

    @property
    def ok(self) -> bool:
        return self.integrity == ["ok"]


async def check_database(path: Path) -> DatabaseReport:
    """Open (and so migrate) the database, then check its integrity."""
    db = await Database.open(path)
    try:
        report = DatabaseReport(path, await db.schema_version(), await db.integrity_check())
        row = await db.fetchone(COUNTS)
        assert row is not None
        report.polls, report.open_polls, report.votes = row
        return report
    finally:
        await db.close()


def backup(source: Path, target: Path) -> DatabaseReport:
    """A consistent copy through SQLite's online backup API, safe while the bot writes.

    The copy is written beside the target and renamed into place only once it is complete
    and passes an integrity check, so a failed backup never leaves a half-written file.
    """
    if not source.is_file():
        raise FileNotFoundError(f"no database at {source}")
    target.parent.mkdir(parents=True, exist_ok=True)
    partial = target.with_name(target.name + ".partial")
    partial.unlink(missing_ok=True)
    with sqlite3.connect(f"file:{source}?mode=ro", uri=True) as src, sqlite3.connect(partial) as dst:
        src.backup(dst)
    with sqlite3.connect(partial) as copy:
        copy.execute("PRAGMA journal_mode = DELETE")  # one self-contained file
        report = DatabaseReport(
            target,
            copy.execute("PRAGMA user_version").fetchone()[0],
            [r[0] for r in copy.execute("PRAGMA integrity_check")],
            *copy.execute(COUNTS).fetchone(),
        )
    if not report.ok:
        raise RuntimeError(f"the backup failed its integrity check: {report.integrity[:3]}")
    partial.replace(target)
    return report
