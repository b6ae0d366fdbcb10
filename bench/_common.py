"""Helpers shared by the benchmark scripts: machine description, tables, a SimCord clock, RSS."""

from __future__ import annotations

import contextlib
import os
import platform
import statistics
import sys
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

import aiosqlite
import discord


class SimClock:
    """Quorum's clock on SimCord's virtual time (the same idea as tests/conftest.py TestClock)."""

    def __init__(self) -> None:
        self.env = None

    def __call__(self) -> float:
        assert self.env is not None, "attach the SimCord env first"
        return self.env.now().timestamp()


def filesystem_of(path: Path) -> str:
    """The mount type holding `path` (ext4, tmpfs, overlay…): it decides what an fsync costs."""
    path = path.resolve()
    best, kind = "", "?"
    try:
        with open("/proc/mounts", encoding="utf-8") as mounts:
            for line in mounts:
                parts = line.split()
                if len(parts) >= 3 and str(path).startswith(parts[1]) and len(parts[1]) > len(best):
                    best, kind = parts[1], parts[2]
    except OSError:
        pass
    return kind


def machine_lines(db_dir: Path | None = None) -> list[str]:
    import sqlite3

    lines = [
        f"machine : {platform.machine()}, nproc={os.cpu_count()}, {platform.system()} {platform.release()}",
        f"python  : {sys.version.split()[0]} ({platform.python_implementation()}), "
        f"discord.py {discord.__version__}, aiosqlite {aiosqlite.__version__}, SQLite {sqlite3.sqlite_version}",
    ]
    if db_dir is not None:
        lines.append(f"db dir  : {db_dir} ({filesystem_of(db_dir)})")
    return lines


def proc_status_kib(*fields: str) -> dict[str, int]:
    """Fields of /proc/self/status given in kB (VmRSS, RssAnon, RssFile, RssShmem…), in KiB."""
    found: dict[str, int] = {}
    with open("/proc/self/status", encoding="utf-8") as status:
        for line in status:
            name, _, value = line.partition(":")
            if name in fields:
                found[name] = int(value.split()[0])
    return found


def rss_kib() -> int:
    """Resident set size of this process, from /proc/self/status (VmRSS, in KiB)."""
    rss = proc_status_kib("VmRSS").get("VmRSS")
    if rss is None:
        raise RuntimeError("no VmRSS in /proc/self/status")
    return rss


class NativeMemory:
    """What SQLite and the C allocator hold, via ctypes (Linux/glibc; None where unavailable).

    `sqlite3_memory_used()` is read from the same libsqlite3 the sqlite3 module uses (so the
    figure covers every connection in the process: page caches, statements, schema).
    `mallinfo2()` splits the C heap into bytes in use and bytes free but kept by the allocator.
    """

    def __init__(self) -> None:
        import ctypes
        import ctypes.util

        self._ctypes = ctypes
        self._sqlite = None
        self._libc = None
        try:
            # Already loaded by the sqlite3 module (when it links libsqlite3 dynamically, as here):
            # the loader hands back that same copy, with its memory counters.
            self._sqlite = ctypes.CDLL(ctypes.util.find_library("sqlite3") or "libsqlite3.so.0")
            self._sqlite.sqlite3_memory_used.restype = ctypes.c_int64
        except (OSError, AttributeError):
            self._sqlite = None
        try:
            self._libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6")

            class MallInfo2(ctypes.Structure):
                _fields_ = [(name, ctypes.c_size_t) for name in (
                    "arena", "ordblks", "smblks", "hblks", "hblkhd", "usmblks", "fsmblks", "uordblks",
                    "fordblks", "keepcost",
                )]

            self._libc.mallinfo2.restype = MallInfo2
        except (OSError, AttributeError):
            self._libc = None

    def sqlite_bytes(self) -> int | None:
        return int(self._sqlite.sqlite3_memory_used()) if self._sqlite is not None else None

    def malloc(self) -> tuple[int, int] | None:
        """(bytes in use, bytes free but retained) over all glibc arenas."""
        if self._libc is None:
            return None
        info = self._libc.mallinfo2()
        return info.uordblks + info.hblkhd, info.fordblks

    def trim(self) -> bool:
        """glibc malloc_trim(0): give free heap pages back to the OS (a diagnostic, not a fix)."""
        if self._libc is None:
            return False
        self._libc.malloc_trim(0)
        return True


def percentile(values: Sequence[float], pct: float) -> float:
    """Nearest-rank percentile (pct in 0..100) of a non-empty sequence."""
    ordered = sorted(values)
    if not ordered:
        return float("nan")
    rank = max(1, min(len(ordered), round(pct / 100 * len(ordered) + 0.5)))
    return ordered[rank - 1]


def median(values: Sequence[float]) -> float:
    return statistics.median(values) if values else float("nan")


def table(headers: Sequence[str], rows: Sequence[Sequence[object]]) -> str:
    cells = [[str(h) for h in headers]] + [[str(c) for c in row] for row in rows]
    widths = [max(len(r[i]) for r in cells) for i in range(len(headers))]

    def fmt(row: Sequence[str]) -> str:
        return "  ".join(c.rjust(w) if i else c.ljust(w) for i, (c, w) in enumerate(zip(row, widths, strict=True)))

    lines = [fmt(cells[0]), "  ".join("-" * w for w in widths)]
    lines.extend(fmt(r) for r in cells[1:])
    return "\n".join(lines)


def set_order(kinds: tuple[str, ...], number: int) -> tuple[str, ...]:
    """Set n runs the bots rotated by n, reversed every other cycle: with 3 bots, 6 sets run
    all 6 orders, and every bot runs in every position equally often."""
    shift = (number - 1) % len(kinds)
    order = kinds[shift:] + kinds[:shift]
    return order[::-1] if (number - 1) // len(kinds) % 2 else order


def set_ratios(number: int, order: Sequence[str], by_kind: dict[str, list[Any]]) -> tuple[int, str, float, ...]:
    """Quorum's throughput and p99 ratios in one set, against bare then bare-plain (medians of
    each process's rounds; rounds have `rate` and `p99`)."""
    q = by_kind["quorum"]
    ratios: list[float] = []
    for baseline in ("bare", "bare-plain"):
        b = by_kind[baseline]
        ratios.append(median([r.rate for r in q]) / median([r.rate for r in b]))
        ratios.append(median([r.p99 for r in q]) / median([r.p99 for r in b]))
    return (number, ", ".join(order), *ratios)


class LatencyFigures:
    """Throughput and percentiles of a round that has `latencies` (s) and `wall` (s)."""

    latencies: list[float]
    wall: float

    @property
    def rate(self) -> float:
        return len(self.latencies) / self.wall if self.wall > 0 else float("nan")

    @property
    def p50(self) -> float:
        return percentile(self.latencies, 50)

    @property
    def p99(self) -> float:
        return percentile(self.latencies, 99)


def stop_bot(process: Any) -> None:
    """SIGTERM a bot process (a graceful stop), SIGKILL it if it has not ended within 30 s."""
    import signal
    import subprocess

    process.send_signal(signal.SIGTERM)
    try:
        process.wait(30)
    except subprocess.TimeoutExpired:
        process.kill()


BENCH_DATABASE_URL = "postgresql:///quorum_bench"


@contextlib.contextmanager
def pg_scratch_schema(url: str = BENCH_DATABASE_URL) -> Iterator[str]:
    """A URL (`url` plus a search_path) whose connections see only a new, empty schema, dropped
    afterwards. The database is created first if it is missing."""
    import uuid

    import psycopg
    from psycopg.conninfo import conninfo_to_dict, make_conninfo

    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
    from bot.db_postgres import with_query

    try:
        psycopg.connect(url, connect_timeout=3).close()
    except psycopg.OperationalError:
        with psycopg.connect(make_conninfo(url, dbname="postgres"), autocommit=True) as admin:
            admin.execute(f'CREATE DATABASE "{conninfo_to_dict(url)["dbname"]}"')
    schema = f"bench_{uuid.uuid4().hex[:12]}"
    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute(f"CREATE SCHEMA {schema}")
    try:
        yield with_query(url, options=f"-csearch_path={schema}")
    finally:
        with psycopg.connect(url, autocommit=True) as conn:
            conn.execute("SET lock_timeout = '20s'")  # a killed bot's session may linger briefly
            conn.execute(f"DROP SCHEMA {schema} CASCADE")


def pg_version(url: str) -> str:
    """The server's version and commit settings, for a bench's header."""
    import psycopg

    with psycopg.connect(url) as conn:
        version, sync, fsync = (conn.execute(f"SHOW {name}").fetchone()[0]  # type: ignore[index]
                                for name in ("server_version", "synchronous_commit", "fsync"))
    return f"PostgreSQL {version.split()[0]}, psycopg {psycopg.__version__}, synchronous_commit={sync}, fsync={fsync}"


def bot_env(**settings: str) -> dict[str, str]:
    """This environment without Quorum's own settings, plus `settings` (a bot process's env)."""
    prefixes = ("DISCORD_", "DATABASE_", "LOG_", "DEV_", "SHARD_")
    return {**{k: v for k, v in os.environ.items() if not k.startswith(prefixes)}, **settings}


class BotProcess:
    """`python run.py` as its own process, its output in `<workdir>/<label>-<n>.log` (n counts starts)."""

    def __init__(self, label: str, env: dict[str, str], workdir: Path) -> None:
        self.label, self.env, self.workdir = label, env, workdir
        self.process: Any = None
        self.logs: list[Path] = []

    def start(self) -> None:
        import subprocess

        log = self.workdir / f"{self.label}-{len(self.logs) + 1}.log"
        self.logs.append(log)
        with open(log, "w", encoding="utf-8") as out:
            root = Path(__file__).resolve().parent.parent
            self.process = subprocess.Popen([sys.executable, str(root / "run.py")], cwd=self.workdir, env=self.env,
                                            stdout=out, stderr=subprocess.STDOUT)

    @property
    def running(self) -> bool:
        return self.process is not None and self.process.poll() is None

    def kill(self) -> None:
        """SIGKILL: no shutdown code runs, exactly like a crash or an OOM kill."""
        if self.running:
            self.process.kill()
        if self.process is not None:
            self.process.wait()

    def stop(self) -> None:
        if self.running:
            stop_bot(self.process)

    def tail(self, lines: int = 30) -> str:
        return "\n".join(f"--- {log.name}\n" + "\n".join(log.read_text(errors="replace").splitlines()[-lines:])
                         for log in self.logs if log.exists())
