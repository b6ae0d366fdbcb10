"""How long one full garbage collection stalls a started Quorum, with and without the heap freeze.

    python bench/gc_pause.py [--repeat 5]

A full (generation 2) collection runs on the event-loop thread: while it runs, no click is
answered. Its cost grows with the objects the collector tracks, and a started bot tracks the
objects of everything it imported. This script starts the real `QuorumBot` under SimCord (no
token, SQLite in a temporary directory), once per mode and each in a fresh interpreter:

* plain: `QuorumBot(...)`, as tests build it, after importing matplotlib (what the first poll
  announcement does in a bot that does not preload it);
* frozen: `QuorumBot(..., freeze_heap=True)`, as `run.py run` builds it: setup ends by loading
  matplotlib and freezing the heap (`bot.heap.freeze_startup_heap`).

Then it times `gc.collect()` `--repeat` times and prints tracked/frozen counts and pauses.
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import json
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from _common import machine_lines, table
from simcord import Env

from bot.client import QuorumBot
from bot.config import Settings
from bot.polls.chart import load_matplotlib

MARK = "@@gc-pause@@ "


async def measure(mode: str, repeat: int) -> dict[str, object]:
    db_dir = Path(tempfile.mkdtemp(prefix="quorum-bench-"))
    bot = QuorumBot(Settings(token=None, database_path=db_dir / "q.sqlite3"), freeze_heap=mode == "frozen")
    env = Env(bot, shard_count=1)
    try:
        await env.start()
        if mode == "plain":
            load_matplotlib()
        gc.collect()
        pauses = []
        for _ in range(repeat):
            start = time.perf_counter()
            gc.collect()
            pauses.append((time.perf_counter() - start) * 1000)
        return {
            "mode": mode,
            "tracked": len(gc.get_objects()),
            "frozen": gc.get_freeze_count(),
            "median_ms": statistics.median(pauses),
            "max_ms": max(pauses),
        }
    finally:
        await env.shutdown()
        await bot.close()
        shutil.rmtree(db_dir, ignore_errors=True)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--repeat", type=int, default=5, help="full collections timed per mode")
    parser.add_argument("--worker", choices=("plain", "frozen"), help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.worker:
        print(MARK + json.dumps(asyncio.run(measure(args.worker, args.repeat))), flush=True)
        return 0

    print("\n".join(machine_lines()))
    rows = []
    for mode in ("plain", "frozen"):
        done = subprocess.run(
            [sys.executable, str(Path(__file__).resolve()), "--worker", mode, "--repeat", str(args.repeat)],
            stdout=subprocess.PIPE, text=True, check=True,
        )
        result = next(json.loads(line[len(MARK):]) for line in done.stdout.splitlines() if line.startswith(MARK))
        rows.append([
            mode, f"{result['tracked']:,}", f"{result['frozen']:,}",
            f"{result['median_ms']:.1f}", f"{result['max_ms']:.1f}",
        ])
    print()
    print(table(["bot", "tracked objects", "frozen objects", "full collection ms (median)", "max ms"], rows))
    return 0


if __name__ == "__main__":
    sys.exit(main())
