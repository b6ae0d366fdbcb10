"""What `run.py check` and `run.py backup` do, without Discord (SQLite; PostgreSQL: maintenance_postgres)."""

from __future__ import annotations

import base64
import binascii
import os
import shutil
import sqlite3
import tempfile
from collections.abc import Iterator
from contextlib import ExitStack, closing, contextmanager, suppress
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import urlencode

from .db import load_migrations

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
SQLITE_MAGIC = b"SQLite format 3\x00"
# Bytes 18 and 19 of the header (file format write and read versions): 2 means WAL.
WAL_FORMAT = b"\x02\x02"


class BackupError(Exception):
    """A backup that did not complete; the message says why, for the person who ran it."""


@dataclass
class DatabaseReport:
    path: Path
    schema_version: int = 0
    integrity: list[str] = field(default_factory=list)
    polls: int | None = None  # None: not counted (no polls tables yet, or a damaged file)
    open_polls: int = 0
    votes: int = 0
    problem: str | None = None  # why the file could not be read as a database at all
    wal_unread: bool = False  # a -wal file left by a crash was not read (see unread_wal)

    @property
    def ok(self) -> bool:
        return self.problem is None and self.integrity == ["ok"]

    def verdict(self) -> tuple[bool, str]:
        """Whether `check` passes, and what it says about the database after its path."""
        if self.problem is not None:
            return False, self.problem
        shipped = len(load_migrations())
        text = f"schema version {self.schema_version}, integrity {', '.join(self.integrity[:3])}"
        if self.polls is not None:
            text += f"; {self.polls} polls ({self.open_polls} open), {self.votes} votes"
        elif self.ok:
            text += "; no polls tables yet"
        if self.wal_unread:
            text += "; a crash left writes in the -wal file, not read here (the bot applies them at start)"
        return self.ok and self.schema_version <= shipped, text + schema_note(self.schema_version, shipped)


def schema_note(version: int, shipped: int) -> str:
    """What `check` adds about a schema version other than this Quorum's (both backends)."""
    if version > shipped:
        return f"; newer than this Quorum ({shipped}): upgrade Quorum or restore a backup"
    if version < shipped:
        return f"; older than this Quorum ({shipped}): the bot migrates it when it starts"
    return ""


def read_only_uri(path: Path, *, immutable: bool = False) -> str:
    """An SQLite URI that opens `path` read-only, so SQLite never creates or changes it.

    `as_uri` percent-encodes the path: a raw `#`, `?` or `%` would end or garble the file
    name, and SQLite would open (or create) another file.
    """
    return path.resolve().as_uri() + ("?mode=ro&immutable=1" if immutable else "?mode=ro")


def unread_wal(path: Path, header: bytes) -> bool:
    """A -wal file without its -shm: left by a crash. Reading it would make SQLite create the
    -shm file, so `check` reads the main file alone (the bot replays the WAL when it starts)."""
    return header[18:20] == WAL_FORMAT and Path(f"{path}-wal").exists() and not Path(f"{path}-shm").exists()


def _connect_read_only(path: Path, header: bytes, *, skip_crash_wal: bool = False) -> sqlite3.Connection:
    # A WAL database closed cleanly has no -wal file, and a reader would create -wal and -shm
    # (and leave them behind). With no WAL to read, the file alone is the whole database.
    # (A running bot always has its -wal and -shm files, so its database is read the usual way.)
    # `check` reads a crash-left WAL's main file alone; `backup` must copy the WAL's writes too,
    # and lets SQLite create the -shm file it needs for that.
    immutable = header[18:20] == WAL_FORMAT and (
        not Path(f"{path}-wal").exists() or (skip_crash_wal and unread_wal(path, header))
    )
    return sqlite3.connect(read_only_uri(path, immutable=immutable), uri=True)


def _read_header(path: Path) -> tuple[bytes, str | None]:
    """SQLite's 100-byte header, and why `path` is no database at all (None: it may be one).

    Read with plain file IO: SQLite would create a missing file, and it takes an empty file
    for a new, healthy database.
    """
    if not path.exists():
        return b"", f"no database at {path}"
    if not path.is_file():
        return b"", f"{path} is not a file"
    try:
        with path.open("rb") as file:
            header = file.read(100)
    except OSError as error:
        return b"", f"cannot read {path}: {error.strerror or error}"
    if not header:
        return header, "the file is empty: not a Quorum database (the bot creates one when it starts)"
    if not header.startswith(SQLITE_MAGIC):
        return header, "not an SQLite database"
    return header, None


def _read(conn: sqlite3.Connection, path: Path) -> DatabaseReport:
    """Schema version and integrity; the counts only where the tables exist and are intact."""
    report = DatabaseReport(
        path,
        conn.execute("PRAGMA user_version").fetchone()[0],
        [str(r[0]) for r in conn.execute("PRAGMA integrity_check")],
    )
    tables = {r[0] for r in conn.execute("SELECT name FROM sqlite_master WHERE type = 'table'")}
    if report.ok and {"polls", "votes"} <= tables:
        report.polls, report.open_polls, report.votes = conn.execute(COUNTS).fetchone()
    return report


def check_database(path: Path) -> DatabaseReport:
    """Check the database by reading it only: nothing is created, migrated or repaired."""
    header, problem = _read_header(path)
    if problem is not None:
        return DatabaseReport(path, problem=problem)
    try:
        with closing(_connect_read_only(path, header, skip_crash_wal=True)) as conn:
            report = _read(conn, path)
    except sqlite3.Error as error:  # e.g. "database disk image is malformed"
        return DatabaseReport(path, problem=f"cannot read it: {error}")
    report.wal_unread = unread_wal(path, header)
    return report


class UnreadableDatabase(Exception):
    """A file that is no database to read (missing, empty, not SQLite); the message says which."""


@contextmanager
def read_only(path: Path) -> Iterator[sqlite3.Connection]:
    """`path` opened for reading only, with nothing beside it created or changed, and the writes
    a crash left in its -wal file included: reading those needs a new -shm file, so that case
    reads a copy of the database and its -wal in a temporary folder instead."""
    header, problem = _read_header(path)
    if problem is not None:
        raise UnreadableDatabase(problem)
    with ExitStack() as stack:
        if unread_wal(path, header):
            copy = Path(stack.enter_context(tempfile.TemporaryDirectory(prefix="quorum-"))) / "copy.sqlite3"
            shutil.copyfile(path, copy)
            shutil.copyfile(f"{path}-wal", f"{copy}-wal")
            path = copy
        yield stack.enter_context(closing(_connect_read_only(path, header)))


def backup(source: Path, target: Path) -> DatabaseReport:
    """A consistent copy through SQLite's online backup API, safe while the bot writes.

    The copy is written beside the target and renamed into place only once it is complete
    and passes an integrity check. Any failure raises BackupError and leaves nothing behind:
    no partial file, no new folder, and an older backup at `target` untouched.
    """
    header, problem = _read_header(source)
    if problem is not None:
        raise BackupError(problem)
    if _same_database(source, target):
        # Written over while the bot runs, the live database (or its WAL) would be corrupted.
        raise BackupError(f"{target} is the database itself (or one of its files); back it up to another path")
    try:
        with staged(target) as partial:
            report = _copy(source, header, partial, target)
            if not report.ok:
                problems = ", ".join(report.integrity[:3])
                raise BackupError(f"{source} is damaged: the copy fails its integrity check: {problems}")
            partial.replace(target)
        return report
    except sqlite3.Error as error:
        raise BackupError(f"could not copy {source} to {target}: {_why(error)}") from error
    except OSError as error:
        raise BackupError(f"could not write {target}: {error.strerror or error}") from error


@contextmanager
def staged(target: Path) -> Iterator[Path]:
    """A path beside `target` to write the copy to (then rename it into place), in folders made
    for it; on failure, the partial copy and the folders made for it are removed."""
    partial = target.with_name(target.name + ".partial")
    new_folders: list[Path] = []
    try:
        new_folders = [folder for folder in target.parents if not folder.exists()]  # deepest first
        target.parent.mkdir(parents=True, exist_ok=True)
        _discard(partial)
        yield partial
        new_folders = []  # they hold the backup now
    finally:
        with suppress(OSError):  # a cleanup failure must not hide why the backup failed
            _discard(partial)
        for folder in new_folders:
            with suppress(OSError):
                folder.rmdir()


def _same_database(source: Path, target: Path) -> bool:
    source, resolved = source.resolve(), target.resolve()
    if resolved in {source, *(Path(f"{source}{suffix}") for suffix in ("-wal", "-shm", "-journal"))}:
        return True
    try:
        return resolved.exists() and os.path.samefile(source, resolved)  # a hard link, say
    except OSError:
        return False


def _connect_writable(path: Path) -> sqlite3.Connection:
    # As a URI: SQLite built with URI support would read a plain name starting with "file:" as one.
    return sqlite3.connect(path.resolve().as_uri(), uri=True)


def _copy(source: Path, header: bytes, partial: Path, target: Path) -> DatabaseReport:
    with closing(_connect_read_only(source, header)) as src, closing(_connect_writable(partial)) as dst:
        src.backup(dst)
    with closing(_connect_writable(partial)) as copy:
        copy.execute("PRAGMA journal_mode = DELETE").fetchall()  # one self-contained file
        return _read(copy, target)


def _why(error: sqlite3.Error) -> str:
    # Only the copy is written, so a failed write is about the target's disk.
    if getattr(error, "sqlite_errorname", "") in ("SQLITE_FULL", "SQLITE_IOERR_WRITE"):
        return f"{error} while writing the copy (is the disk full?)"
    return str(error)


def _discard(partial: Path) -> None:
    """Remove an unfinished copy and the journal files SQLite may have left beside it."""
    for suffix in ("", "-journal", "-wal", "-shm"):
        Path(f"{partial}{suffix}").unlink(missing_ok=True)
