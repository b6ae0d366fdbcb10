"""Cast votes as fast as the database takes them and acknowledge each one on stdout.

Run by tests/test_durability.py, which SIGKILLs this process mid-stream and then checks that
every acknowledged vote is in the database:

    python tests/process/vote_writer.py DATABASE [--single-poll ID] [--multiple-poll ID]
                                                 [--first-user N] [--concurrency N] [--limit N]

DATABASE is a PostgreSQL URL (postgresql://… or postgres://…) or else the path of a SQLite file.

Without poll ids it creates a single-choice and a multiple-choice poll and prints
`POLL single <id>` and `POLL multiple <id>` once they are committed. Then `--concurrency`
coroutines take votes from one shared list and cast them through `PollRepository.cast_vote`;
after a call returns (the writer resolves only after COMMIT) the coroutine prints

    ACK <poll_id> <user_id> <option>

and flushes. Every user id (from `--first-user` on) casts one vote in the single-choice poll
and two in the multiple-choice poll (two different answers), each a fresh vote: an outcome
other than ADDED, or an exception, is printed as `ERR ...` and ends the process with status 1
(the database is closed in every case, so the process does end). `DONE` is printed if
`--limit` votes were cast before anyone killed the process.
"""

from __future__ import annotations

import argparse
import asyncio
import sys
import time
from collections.abc import Iterator
from pathlib import Path

from bot.config import Settings
from bot.db import open_database
from bot.polls.models import Poll, PollDraft, VoteChange
from bot.polls.repository import PollRepository

GUILD_ID = 1_000_000_000_000_001
CHANNEL_ID = 1_000_000_000_000_002
CREATOR_ID = 1_000_000_000_000_003
SINGLE_OPTIONS = ("Yes", "No", "Maybe", "Later", "Never")
MULTIPLE_OPTIONS = ("Red", "Green", "Blue", "Cyan", "Magenta", "Yellow", "Black")


def emit(line: str) -> None:
    # One write of one short line, then flushed: the test sees whole lines or nothing.
    sys.stdout.write(line + "\n")
    sys.stdout.flush()


def votes_for(user_id: int, single: Poll, multiple: Poll) -> list[tuple[Poll, int]]:
    n = len(multiple.options)
    first = user_id % n
    second = (first + 1 + (user_id // n) % (n - 1)) % n  # never equal to `first`
    return [
        (single, user_id % len(single.options)),
        (multiple, first),
        (multiple, second),
    ]


def all_votes(first_user: int, limit: int, single: Poll, multiple: Poll) -> Iterator[tuple[Poll, int, int]]:
    cast = 0
    user_id = first_user
    while True:
        for poll, option in votes_for(user_id, single, multiple):
            if cast >= limit:
                return
            cast += 1
            yield poll, user_id, option
        user_id += 1


async def create_poll(repo: PollRepository, draft: PollDraft, message_id: int) -> Poll:
    poll = await repo.create(draft, guild_id=GUILD_ID, channel_id=CHANNEL_ID, creator_id=CREATOR_ID, now=time.time())
    await repo.attach_message(poll.id, message_id)
    fresh = await repo.get(poll.id)
    assert fresh is not None
    return fresh


async def existing_poll(repo: PollRepository, poll_id: int) -> Poll:
    poll = await repo.get(poll_id)
    if poll is None:
        raise SystemExit(f"no poll {poll_id} in the database")
    return poll


async def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("database", help="a PostgreSQL URL, or the path of a SQLite file")
    parser.add_argument("--single-poll", type=int)
    parser.add_argument("--multiple-poll", type=int)
    parser.add_argument("--first-user", type=int, default=10_000)
    parser.add_argument("--concurrency", type=int, default=50)
    parser.add_argument("--limit", type=int, default=200_000, help="stop after this many votes")
    args = parser.parse_args(argv)

    url = args.database if args.database.startswith(("postgresql://", "postgres://")) else None
    db = await open_database(Settings(token=None, database_path=Path(args.database), database_url=url))
    try:
        return await cast_votes(PollRepository(db), args)
    finally:
        # Always: the writer thread is not a daemon, and an open database keeps the process alive.
        await db.close()


async def cast_votes(repo: PollRepository, args: argparse.Namespace) -> int:
    stamp = time.time_ns()
    if args.single_poll is None:
        single = await create_poll(repo, PollDraft("Ship it on Friday?", SINGLE_OPTIONS), stamp)
    else:
        single = await existing_poll(repo, args.single_poll)
    if args.multiple_poll is None:
        draft = PollDraft("Which colours?", MULTIPLE_OPTIONS, multiple=True)
        multiple = await create_poll(repo, draft, stamp + 1)
    else:
        multiple = await existing_poll(repo, args.multiple_poll)
    assert not single.multiple and multiple.multiple
    emit(f"POLL single {single.id}")
    emit(f"POLL multiple {multiple.id}")

    jobs = all_votes(args.first_user, args.limit, single, multiple)
    failures: list[str] = []

    async def worker() -> None:
        # The generator is shared: each next() hands one vote to exactly one worker.
        for poll, user_id, option in jobs:
            if failures:  # one failure ends the run: the others stop too
                return
            try:
                outcome = await repo.cast_vote(poll, user_id, option, now=time.time())
            except Exception as error:
                failures.append(f"ERR {poll.id} {user_id} {option} {error!r}")
            else:
                if outcome.change is VoteChange.ADDED and option in outcome.choices:
                    emit(f"ACK {poll.id} {user_id} {option}")
                    continue
                failures.append(f"ERR {poll.id} {user_id} {option} {outcome}")
            emit(failures[-1])
            return

    await asyncio.gather(*(worker() for _ in range(args.concurrency)))
    if failures:
        return 1
    emit("DONE")
    return 0


if __name__ == "__main__":
    sys.exit(asyncio.run(main()))
