"""Vote-click throughput and acknowledgement latency: Quorum vs a bare discord.py bot, under SimCord.

    python bench/votes.py [--members 1000] [--concurrency 50] [--sets 6] [--rounds 3] [--ablation] [--profile]

Each bot runs in a fresh interpreter (this script started with `--worker KIND`), in its own
SimCord `Env`, against the same kind of message (a 4-answer poll card with 4 buttons whose
custom_ids match `quorum:vote:(?P<poll>\\d+):(?P<option>\\d+)`). A run is `--sets` sets of one
process per bot; the order changes from set to set (6 sets run all orders of the 3 bots), so
no bot inherits another's heap or garbage-collector state and slow spells of the shared
machine fall on all alike. Ratios are per set (median of each process's rounds); the verdicts
use the median of the sets, against both baselines:

* bare: a minimal `commands.Bot` with a `DynamicItem` of that template whose callback only
  does `interaction.response.send_message("ok", ephemeral=True)`, under the rule every bot
  of this project follows: the client's `allowed_mentions` pings nobody, so every message
  carries `allowed_mentions` (as every Quorum message must).
* bare-plain: the same bot without `allowed_mentions`. For an explicit `allowed_mentions`,
  SimCord stores two extra (empty) frozensets with every message it keeps. Those few
  long-lived objects per click can bring one more full garbage collection into a round, so
  the two baselines can differ by more than the work per click does (docs/performance.md).
* quorum: the real `QuorumBot` (SQLite file in a temporary directory, group-commit writer,
  `synchronous=FULL`); each round votes on a new poll posted with the real `/poll create`.
* quorum-ack (`--ablation` only): QuorumBot whose vote button only answers "ok": Quorum's
  process and messages without its vote path.
* bare+budget (a control, `--no-control` skips it): the bare answer wrapped in the pattern
  Quorum's `handle_vote` used (until commit 96454dc) to keep within Discord's 3 s: a task, a
  shield and a 2 s `asyncio.wait_for` per click. It shows what a per-click timer costs under
  SimCord, whose callback bookkeeping slows down with every live timer.

Every member clicks once per round (member i clicks answer i mod 4); a warm-up round comes
first and is not counted.

How concurrency is produced. SimCord's actor verbs (`member.click`) are guarded operations: a
second one started from another task while one runs raises `SetupError: operation overlaps
active click` (so `asyncio.gather(*clicks)` is refused), and each click ends with a settle that
waits for *all* bot work. So this script drives SimCord one level lower, doing per click
exactly what `simcord.actors._component_click` + `_dispatch_actor_interaction` do — the same
visibility and component checks, the same `INTERACTION_CREATE` payload from
`simcord.interactions.base_payload`, the same `backend.emit` into discord.py's real gateway
parser, view store, DynamicItem routing, webhook adapter and interaction-callback route — but
without the per-click settle. `--concurrency` driver tasks each keep one click in flight (a
closed loop: a task sends its next click when the previous one was acknowledged), so at most C
interactions are being handled by the bot at any moment. After each acknowledgement the driver
drops cancelled timer records from SimCord's callback list, as every settle does (see storm()).

Latency = `time.perf_counter()` just before `backend.emit("INTERACTION_CREATE", …)` to the
moment SimCord's backend records the interaction's initial response (the interaction record's
`respond_with_message`/`defer` runs inside the interaction-callback route). Throughput = clicks
/ (first dispatch → last acknowledgement). Driver-side cost (building payloads, checks) is on
the same event loop and the same for every bot. Before each round the existing heap (mostly
SimCord's world and history) is `gc.freeze()`d (`--no-freeze` to keep it in the collector).
"""

from __future__ import annotations

import argparse
import asyncio
import cProfile
import gc
import io
import json
import logging
import pstats
import shutil
import sqlite3
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import discord
from _common import LatencyFigures, SimClock, machine_lines, median, set_order, set_ratios, table
from discord.ext import commands
from loopback_bare import TEMPLATE, BareBot, BareVote
from simcord import Env
from simcord._settlement import _active_callbacks
from simcord.actors import _check_actor_channel, _find_component, _visible_message
from simcord.backend import serializers
from simcord.builders import ChannelHandle
from simcord.enums import ComponentType, InteractionType
from simcord.interactions import base_payload

from bot.client import QuorumBot
from bot.config import Settings
from cogs._ui import VoteButton

QUESTION = "Where should the team offsite be this year?"
OPTIONS = ("Lisbon", "Kraków", "Valencia", "Tallinn")
ACK_TIMEOUT = 30.0  # a click not acknowledged by then counts as lost (Discord gives up after 3 s)


# ---------------------------------------------------------------- the bare bot


class BudgetVote(BareVote, template=TEMPLATE):
    """Control: the bare answer wrapped in Quorum's former acknowledgement-budget pattern (a task,
    a shield and a 2 s `wait_for` per click), to show what a per-click timer costs under SimCord."""

    async def callback(self, interaction: discord.Interaction) -> None:
        work = asyncio.ensure_future(asyncio.sleep(0))
        try:
            await asyncio.wait_for(asyncio.shield(work), 2.0)
        except TimeoutError:
            await interaction.response.defer(ephemeral=True, thinking=True)
            await work
        await interaction.response.send_message("ok", ephemeral=True)


def bare_poll_message() -> tuple[discord.Embed, discord.ui.View]:
    """A message shaped like a Quorum poll card: an embed with one field per answer, 4 buttons."""
    card = discord.Embed(title=QUESTION, description="Single choice · Poll #1", color=0x5865F2)
    for i, label in enumerate(OPTIONS, start=1):
        card.add_field(name=f"{i}. {label}", value="░░░░░░░░░░ 0 votes · 0%", inline=False)
    card.set_footer(text="0 votes · open until closed")
    view = discord.ui.View(timeout=None)
    for i, label in enumerate(OPTIONS):
        view.add_item(discord.ui.Button(label=label, custom_id=f"quorum:vote:1:{i}"))
    view.stop()
    return card, view


# ---------------------------------------------------------------- driving clicks


@dataclass
class Round(LatencyFigures):
    bot: str
    label: str
    clicks: int
    wall: float
    latencies: list[float]
    kinds: dict[str, int]
    lost: int
    extra: dict[str, Any] = field(default_factory=dict)


def fire_click(env: Env, actor: Any, message: discord.Message, custom_id: str, on_ack: Callable[[str], None]) -> None:
    """One button click, as `MemberActor.click` builds and dispatches it, minus the settle."""
    stored = _visible_message(actor, message)
    button = _find_component(stored.components, types=(ComponentType.BUTTON,), custom_id=custom_id, label=None)
    if button.get("style") in (5, 6) or not button.get("custom_id"):
        raise RuntimeError("not an interactive button")
    data: dict[str, Any] = {"custom_id": button["custom_id"], "component_type": ComponentType.BUTTON}
    if button.get("id") is not None:
        data["id"] = button["id"]
    backend = env.backend
    channel = ChannelHandle(env, actor.guild, backend.get_channel(stored.channel_id))
    _check_actor_channel(actor, channel)
    record, payload = base_payload(
        backend,
        type=InteractionType.MESSAGE_COMPONENT,
        channel_id=channel.id,
        guild_id=actor.guild.id,
        user_id=actor.id,
        data=data,
    )
    payload["message"] = dict(serializers.message_payload(backend, stored))
    record.source_message_id = stored.id
    # Instrumentation: note the first initial response the backend records for this interaction.
    for name in ("respond_with_message", "defer", "defer_update", "update_source"):
        original = getattr(record, name)

        def stamped(*args: Any, _original: Any = original, _name: str = name, **kwargs: Any) -> None:
            _original(*args, **kwargs)
            on_ack(_name)

        setattr(record, name, stamped)
    env._notify_dispatch_observers(record)
    backend.emit("INTERACTION_CREATE", payload)


async def storm(
    env: Env, actors: list[Any], message: discord.Message, concurrency: int, label: str, bot: str
) -> Round:
    """Every actor clicks once (actor i clicks answer i mod 4), `concurrency` clicks in flight."""
    loop = asyncio.get_running_loop()
    custom_ids = [c.custom_id for row in message.components for c in row.children]
    latencies: list[float] = []
    kinds: dict[str, int] = {}
    lost = 0
    next_index = 0
    first = last = 0.0

    async def worker() -> None:
        nonlocal next_index, lost, first, last
        while next_index < len(actors):
            i = next_index
            next_index += 1
            acked: asyncio.Future[tuple[float, str]] = loop.create_future()

            def on_ack(kind: str, acked: asyncio.Future[tuple[float, str]] = acked) -> None:
                if not acked.done():
                    acked.set_result((time.perf_counter(), kind))

            start = time.perf_counter()
            if not first:
                first = start
            fire_click(env, actors[i], message, custom_ids[i % len(custom_ids)], on_ack)
            try:
                when, kind = await asyncio.wait_for(acked, ACK_TIMEOUT)
            except TimeoutError:
                lost += 1
                continue
            latencies.append(when - start)
            kinds[kind] = kinds.get(kind, 0) + 1
            last = max(last, when)
            # What every SimCord operation's settle does: drop cancelled timer records from the
            # env's callback list. Without it the list only grows during a storm, and SimCord's
            # O(n) removal of each finished callback turns quadratic (a simulator cost that
            # real discord.py does not have; it hit Quorum, which arms a timer per click).
            _active_callbacks(env._settlement_state())

    await asyncio.gather(*(worker() for _ in range(concurrency)))
    return Round(bot, label, len(actors), last - first, latencies, kinds, lost)


# ---------------------------------------------------------------- profiling helpers


class _TimedConnection:
    """Stands in for a plain sqlite3 writer connection to time its COMMITs (--profile only)."""

    def __init__(self, conn: sqlite3.Connection, timer: DbTimer) -> None:
        self._conn = conn
        self._timer = timer

    def execute(self, sql: str, *args: Any) -> sqlite3.Cursor:
        if sql != "COMMIT":
            return self._conn.execute(sql, *args)
        start = time.perf_counter()
        try:
            return self._conn.execute(sql, *args)
        finally:
            self._timer.add("writer: COMMIT (fsync)", time.perf_counter() - start)

    def __getattr__(self, name: str) -> Any:
        return getattr(self._conn, name)


class DbTimer:
    """Wall time Quorum spends on the database (instrumentation for --profile).

    Works with both writer designs Quorum has had: an aiosqlite writer whose batch is a
    coroutine, and a plain sqlite3 writer whose batch runs in its own thread.
    """

    def __init__(self, bot: QuorumBot) -> None:
        db = bot.db
        self.totals: dict[str, float] = {}
        self.counts: dict[str, int] = {}
        self._undo: list[Callable[[], None]] = []
        self._wrap(db, "fetchone", "read (fetchone/fetchall)")
        self._wrap(db, "fetchall", "read (fetchone/fetchall)")
        self._wrap(db, "write", "write() call: queue + batch + COMMIT")
        self._wrap(db, "_run_batch", "writer: one batch (BEGIN…COMMIT)")
        writer = db._writer
        if isinstance(writer, sqlite3.Connection):
            db._writer = _TimedConnection(writer, self)

            def restore() -> None:
                db._writer = writer

            self._undo.append(restore)
        else:
            original_execute = writer.execute

            def execute(sql: str, *args: Any, **kwargs: Any) -> Any:
                if sql == "COMMIT":
                    return self._timed(original_execute(sql, *args, **kwargs), "writer: COMMIT (fsync)")
                return original_execute(sql, *args, **kwargs)

            writer.execute = execute
            self._undo.append(lambda: delattr(writer, "execute"))

    def add(self, key: str, seconds: float) -> None:
        self.totals[key] = self.totals.get(key, 0.0) + seconds
        self.counts[key] = self.counts.get(key, 0) + 1

    async def _timed(self, awaitable: Any, key: str) -> Any:
        start = time.perf_counter()
        try:
            return await awaitable
        finally:
            self.add(key, time.perf_counter() - start)

    def _wrap(self, obj: Any, name: str, key: str) -> None:
        original = getattr(obj, name)
        if asyncio.iscoroutinefunction(original):

            async def timed(*args: Any, **kwargs: Any) -> Any:
                return await self._timed(original(*args, **kwargs), key)

        else:

            def timed(*args: Any, **kwargs: Any) -> Any:  # runs in the writer thread
                start = time.perf_counter()
                try:
                    return original(*args, **kwargs)
                finally:
                    self.add(key, time.perf_counter() - start)

        setattr(obj, name, timed)
        self._undo.append(lambda: delattr(obj, name))

    def remove(self) -> None:
        for undo in reversed(self._undo):
            undo()


class GcPauses:
    """Total time spent in the cyclic garbage collector, per generation (gc.callbacks)."""

    def __init__(self) -> None:
        self.totals = [0.0, 0.0, 0.0]
        self.counts = [0, 0, 0]
        self._start = 0.0

    def __call__(self, phase: str, info: dict[str, int]) -> None:
        if phase == "start":
            self._start = time.perf_counter()
        else:
            self.totals[info["generation"]] += time.perf_counter() - self._start
            self.counts[info["generation"]] += 1

    def __enter__(self) -> GcPauses:
        gc.callbacks.append(self)
        return self

    def __exit__(self, *exc: object) -> None:
        gc.callbacks.remove(self)


ROOT = Path(__file__).resolve().parent.parent
_AREAS = (
    ("quorum: bot/", f"{ROOT}/bot/"),
    ("quorum: cogs/", f"{ROOT}/cogs/"),
    ("bench driver", f"{ROOT}/bench/"),
    ("simcord", "/simcord/"),
    ("discord.py", "/discord/"),
    ("aiosqlite", "/aiosqlite/"),
    ("asyncio", "/asyncio/"),
    ("copy.deepcopy (SimCord's payload copies)", "/copy.py"),
)


def area_of(filename: str) -> str | None:
    for name, marker in _AREAS:
        if marker in filename:
            return name
    if filename in ("~", "<string>"):
        return None  # a builtin or generated function: charged to whoever called it
    return "other"


def time_by_area(stats: pstats.Stats) -> dict[str, float]:
    """Own time per area; builtins and generated code (dataclass __eq__…) go to their callers."""
    raw: dict[Any, Any] = stats.stats  # type: ignore[attr-defined]
    totals: dict[str, float] = {}

    def charge(func: Any, seconds: float, depth: int = 0) -> None:
        filename, _line, name = func
        area = area_of(filename)
        if area is None and name == "<method 'poll' of 'select.epoll' objects>":
            area = "idle in epoll (waiting for threads/timers)"
        if area is None:
            callers = raw.get(func, (0, 0, 0, 0, {}))[4]
            weights = {c: edge[2] for c, edge in callers.items() if edge[2] > 0}
            if depth < 8 and weights:
                total = sum(weights.values())
                for caller, weight in weights.items():
                    charge(caller, seconds * weight / total, depth + 1)
                return
            area = "builtins (no caller)"
        totals[area] = totals.get(area, 0.0) + seconds

    for func, row in raw.items():
        charge(func, row[2])
    return totals


def print_profile(profiler: cProfile.Profile, title: str, limit: int) -> None:
    out = io.StringIO()
    stats = pstats.Stats(profiler, stream=out)
    by_area = time_by_area(stats)
    total = sum(by_area.values())
    print(f"\n--- cProfile of {title}: own time by area ---")
    for area, seconds in sorted(by_area.items(), key=lambda kv: -kv[1]):
        print(f"    {area:<48} {seconds:7.3f} s  {seconds / total:6.1%}")
    stats.sort_stats("tottime").print_stats(limit)
    print(f"\n--- cProfile of {title}: top {limit} by own time (main thread only) ---")
    print("\n".join(line for line in out.getvalue().splitlines() if line.strip())[:12000])


# ---------------------------------------------------------------- one bot


async def run_bot(kind: str, args: argparse.Namespace, db_dir: Path) -> tuple[list[Round], list[str]]:
    clock = SimClock()
    bot: commands.Bot
    if kind in ("quorum", "quorum-ack"):
        bot = QuorumBot(Settings(token=None, database_path=db_dir / "quorum.sqlite3"), clock=clock)
        if kind == "quorum-ack":
            # Ablation: this worker process's VoteButton answers like the bare bot's does.
            VoteButton.callback = BareVote.callback  # type: ignore[method-assign]
    else:
        bot = BareBot(BudgetVote if kind == "bare+budget" else BareVote, mentions=kind != "bare-plain")
    env = Env(bot, settle_timeout=30.0, **({'shard_count': 1} if isinstance(bot, discord.AutoShardedClient) else {}))
    clock.env = env
    guild = env.create_guild("Bench")
    channel = guild.create_text_channel("polls")
    creator = guild.add_member(env.create_user("creator"))
    voters = [guild.add_member(env.create_user(f"voter{i}")) for i in range(args.members)]
    warmers = voters[: args.warmup]
    notes: list[str] = []
    rounds: list[Round] = []
    await env.start()
    try:

        async def new_message() -> discord.Message:
            if isinstance(bot, QuorumBot):
                result = await creator.slash(channel, "poll create", question=QUESTION, options=" | ".join(OPTIONS))
                assert result.acknowledged, "poll create was not acknowledged"
            else:
                card, view = bare_poll_message()
                target = bot.get_channel(channel.id)
                assert isinstance(target, discord.TextChannel)
                await target.send(embed=card, view=view)
                await env.settle()
            message = channel.last_message
            assert message is not None and message.components
            return message

        bare_message = None if isinstance(bot, QuorumBot) else await new_message()
        plan = [("warm-up", warmers)] + [(f"round {r}", voters) for r in range(1, args.rounds + 1)]
        if args.profile:
            plan.append(("profiled", voters))
        for label, actors in plan:
            message = bare_message or await new_message()
            gc.collect()
            if args.freeze:
                # Keep what already exists (SimCord's world and history: members, every message,
                # the transcript) out of the collector's scans; the round's own garbage is still
                # collected as usual.
                gc.freeze()
            votes_stored = kind == "quorum"
            timer = DbTimer(bot) if args.profile and label == "profiled" and votes_stored else None
            stats_before = (bot.db.stats.transactions, bot.db.stats.writes) if votes_stored else None
            profiler = cProfile.Profile() if label == "profiled" else None
            if profiler:
                profiler.enable()
            cpu = time.thread_time()
            with GcPauses() as pauses:
                result = await storm(env, actors, message, args.concurrency, label, kind)
            cpu = time.thread_time() - cpu
            if profiler:
                profiler.disable()
            result.extra["loop_cpu_ms/click"] = cpu * 1000 / len(actors)
            result.extra["gc_ms"] = "/".join(f"{t * 1000:.0f}" for t in pauses.totals)
            # Let the bot finish what the clicks started (Quorum: the delayed message edit).
            await env.advance_time(6)
            if votes_stored:
                assert stats_before is not None
                tx = bot.db.stats.transactions - stats_before[0]
                writes = bot.db.stats.writes - stats_before[1]
                result.extra["transactions"] = tx
                result.extra["writes/tx"] = writes / tx if tx else 0
                poll = await bot.polls.repo.get_by_message(guild.id, message.id)
                assert poll is not None
                rows = await bot.db.fetchall(
                    "SELECT option, count(*) FROM votes WHERE poll_id = ? GROUP BY option ORDER BY option",
                    (poll.id,),
                )
                got = {r[0]: r[1] for r in rows}
                want = {o: sum(1 for i in range(len(actors)) if i % len(OPTIONS) == o) for o in range(len(OPTIONS))}
                distinct = await bot.db.fetchval(
                    "SELECT count(DISTINCT user_id) FROM votes WHERE poll_id = ?", (poll.id,)
                )
                ok = got == want and distinct == len(actors)
                refreshed = channel.history()
                footer = next((m.embeds[0].footer.text for m in refreshed if m.id == message.id), None)
                result.extra["db_check"] = "OK" if ok else "MISMATCH"
                notes.append(
                    f"quorum {label}: poll #{poll.number} votes in DB per answer {got} "
                    f"(expected {want}), distinct voters {distinct} -> {'OK' if ok else 'MISMATCH'}; "
                    f"poll message footer after the refresh: {footer!r}"
                )
            rounds.append(result)
            if timer is not None:
                timer.remove()
                lines = [
                    f"    {k:<40} {timer.counts[k]:>6} calls  {timer.totals[k]:8.3f} s total  "
                    f"{timer.totals[k] / timer.counts[k] * 1000:8.2f} ms mean"
                    for k in sorted(timer.totals)
                ]
                notes.append("quorum profiled round, time awaiting the database:\n" + "\n".join(lines))
            if profiler:
                print_profile(profiler, f"{kind} ({len(actors)} clicks, concurrency {args.concurrency})", args.top)
        errors = env.errors
        if errors:
            notes.append(f"{kind}: the bot raised {len(errors)} error(s): {errors[:3]!r}")
    finally:
        await env.shutdown()
        # SimCord's shutdown detaches the bot but does not close it; Quorum closes its database
        # (and the aiosqlite threads, which would keep the process alive) in close().
        await bot.close()
    return rounds, notes


# ---------------------------------------------------------------- main


ROUNDS_MARK = "@@quorum-bench-rounds@@ "


KINDS = ("bare", "quorum", "bare-plain")




def positive(text: str) -> int:
    value = int(text)
    if value < 1:
        raise argparse.ArgumentTypeError("must be at least 1")
    return value


def worker_main(args: argparse.Namespace) -> int:
    """Run one bot in this process and hand its rounds to the parent as one JSON line."""
    logging.basicConfig(level=logging.WARNING)
    db_dir = Path(tempfile.mkdtemp(prefix="quorum-bench-", dir=args.db_dir))
    try:
        rounds, notes = asyncio.run(run_bot(args.worker, args, db_dir))
    finally:
        shutil.rmtree(db_dir, ignore_errors=True)
    print(ROUNDS_MARK + json.dumps({"rounds": [asdict(r) for r in rounds], "notes": notes}), flush=True)
    return 0


def run_isolated(kind: str, args: argparse.Namespace, *, profile: bool) -> tuple[list[Round], list[str]]:
    """One bot in a fresh interpreter: neither bot inherits the other's heap or GC state."""
    command = [
        sys.executable, str(Path(__file__).resolve()), "--worker", kind,
        "--members", str(args.members), "--concurrency", str(args.concurrency),
        "--rounds", str(args.rounds), "--warmup", str(args.warmup), "--top", str(args.top),
        *(["--profile"] if profile else []), *([] if args.freeze else ["--no-freeze"]),
        *(["--db-dir", str(args.db_dir)] if args.db_dir else []),
    ]
    try:
        done = subprocess.run(command, stdout=subprocess.PIPE, text=True, check=True)
    except subprocess.CalledProcessError as error:
        print(error.stdout)  # what the worker printed before failing (its traceback is on stderr)
        raise
    payload = None
    for line in done.stdout.splitlines():
        if line.startswith(ROUNDS_MARK):
            payload = json.loads(line[len(ROUNDS_MARK):])
        else:
            print(line)  # profiles and anything else the worker printed
    if payload is None:
        raise RuntimeError(f"the {kind} worker printed no rounds")
    return [Round(**r) for r in payload["rounds"]], payload["notes"]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--members", type=int, default=1000, help="members, each clicking once per round")
    parser.add_argument("--concurrency", type=int, default=50, help="clicks in flight at once")
    parser.add_argument("--rounds", type=int, default=3, help="measured rounds per bot process (new poll each)")
    parser.add_argument("--sets", type=positive, default=6,
                        help="sets of one process per bot; successive sets run the bots in every order "
                             "(6 sets cover all orders of 3 bots)")
    parser.add_argument("--ablation", action="store_true",
                        help="add quorum-ack to every set: QuorumBot whose button only answers 'ok' "
                             "(Quorum's process and messages without its vote path)")
    parser.add_argument("--warmup", type=int, default=100, help="clicks of an unmeasured first round")
    parser.add_argument("--profile", action="store_true",
                        help="add one cProfile'd round per bot in the first set (not in figures)")
    parser.add_argument("--no-control", dest="control", action="store_false",
                        help="skip the bare+budget control bot (bare answer inside a per-click wait_for)")
    parser.add_argument("--no-freeze", dest="freeze", action="store_false",
                        help="do not gc.freeze() the simulator's existing heap before each round")
    parser.add_argument("--top", type=int, default=30, help="profile lines to print")
    parser.add_argument("--db-dir", type=Path, default=None,
                        help="where Quorum's SQLite file goes (default: a temp dir)")
    parser.add_argument("--worker", choices=(*KINDS, "quorum-ack", "bare+budget"), help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    args.warmup = max(1, min(args.warmup, args.members))
    if args.worker:
        return worker_main(args)

    print("\n".join(machine_lines(Path(tempfile.gettempdir()) if args.db_dir is None else args.db_dir)))
    kinds = (*KINDS, *(["quorum-ack"] if args.ablation else []))
    print(f"run     : {args.members} members x 1 click, concurrency {args.concurrency}, {args.sets} sets of "
          f"{len(kinds)} processes (one per bot, order changing per set) x {args.rounds} rounds, "
          f"gc.freeze() before rounds: {args.freeze}")
    all_rounds: list[Round] = []
    notes: list[str] = []
    per_set: list[tuple[Any, ...]] = []
    for number in range(1, args.sets + 1):
        order = set_order(kinds, number)
        by_kind: dict[str, list[Round]] = {}
        for kind in order:
            rounds, bot_notes = run_isolated(kind, args, profile=args.profile and number == 1)
            for r in rounds:
                r.label = f"s{number} {r.label}"
            all_rounds += rounds
            notes += bot_notes
            by_kind[kind] = [r for r in rounds if " round" in r.label]
        per_set.append(set_ratios(number, order, by_kind))
    if args.control:
        rounds, bot_notes = run_isolated("bare+budget", args, profile=False)
        for r in rounds:
            r.label = f"ctl {r.label}"
        all_rounds += rounds
        notes += bot_notes

    rows = []
    for r in all_rounds:
        rows.append([
            r.bot, r.label, r.clicks, len(r.latencies), r.lost, f"{r.wall:.3f}", f"{r.rate:,.0f}",
            f"{r.p50 * 1000:.1f}", f"{r.p99 * 1000:.1f}", f"{max(r.latencies) * 1000:.1f}",
            ",".join(f"{k}={v}" for k, v in sorted(r.kinds.items())),
            " ".join(f"{k}={v:.1f}" if isinstance(v, float) else f"{k}={v}" for k, v in r.extra.items()),
        ])
    print()
    print(table(
        ["bot", "round", "clicks", "acked", "lost", "wall s", "votes/s", "p50 ms", "p99 ms", "max ms",
         "response", "notes"],
        rows,
    ))
    for note in notes:
        print(note)

    def measured(bot: str) -> list[Round]:
        return [r for r in all_rounds if r.bot == bot and " round" in r.label]

    bare, quorum, control = measured("bare"), measured("quorum"), measured("bare+budget")
    plain = measured("bare-plain")
    print()
    print("Median of all measured rounds:")
    print(table(
        ["", "votes/s", "p50 ms", "p99 ms"],
        [
            [name, f"{median([r.rate for r in rs]):,.0f}", f"{median([r.p50 for r in rs]) * 1000:.1f}",
             f"{median([r.p99 for r in rs]) * 1000:.1f}"]
            for name, rs in (
                ("bare", bare), ("bare-plain", plain), ("quorum", quorum),
                ("quorum-ack (ablation)", measured("quorum-ack")), ("bare+budget (control)", control),
            )
            if rs
        ],
    ))
    print()
    print("Quorum's ratios per set (median of each process's rounds):")
    print(table(
        ["set", "order", "vs bare: throughput", "p99", "vs bare-plain: throughput", "p99"],
        [[str(n), order, f"{t:.2f}x", f"{tail:.2f}x", f"{pt:.2f}x", f"{ptail:.2f}x"]
         for n, order, t, tail, pt, ptail in per_set],
    ))

    def summary(index: int) -> str:
        values = [ratios[index] for ratios in per_set]
        return f"{median(values):.2f}x (sets {min(values):.2f}-{max(values):.2f})"

    def verdict(index: int, target: float, higher_is_better: bool) -> str:
        value = median([ratios[index] for ratios in per_set])
        return "met" if (value >= target if higher_is_better else value <= target) else "NOT met"

    print()
    print("Targets: throughput >= 0.80x, p99 <= 2.00x, median of the sets. Both baselines:")
    print(table(
        ["Quorum against", "throughput", "", "p99", ""],
        [
            ["bare (allowed_mentions, like every Quorum message)", summary(2), verdict(2, 0.8, True),
             summary(3), verdict(3, 2.0, False)],
            ["bare-plain (no allowed_mentions)", summary(4), verdict(4, 0.8, True),
             summary(5), verdict(5, 2.0, False)],
        ],
    ))
    lost = sum(r.lost for r in all_rounds)
    mismatches = sum(1 for r in all_rounds if r.extra.get("db_check") == "MISMATCH")
    if lost or mismatches:
        print(f"WARNING: {lost} click(s) never acknowledged, {mismatches} round(s) with a DB mismatch")
    return 0


if __name__ == "__main__":
    sys.exit(main())
