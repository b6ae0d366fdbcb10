"""Feed storage on both backends: numbers, claims and their fences, the per-check share of posts,
SKIP LOCKED on PostgreSQL, and keeping feed_items bounded."""

from __future__ import annotations

import asyncio
import time

import psycopg
import pytest

import bot.feeds.repository as repository
from bot.feeds.models import FeedItem
from bot.feeds.repository import (
    Added,
    AlreadyFollowed,
    FeedRepository,
    NewFeed,
    ServerFull,
    clean_text,
    stored_key,
)

NOW = 1_700_000_000.0
GUILD, OTHER_GUILD = 4 << 22, 5 << 22
CHANNEL = 9_000_000_000_000_001
LEASE = 300.0


@pytest.fixture
async def db(open_db):
    return await open_db()


@pytest.fixture
def repo(db):
    return FeedRepository(db)


def entry(n: int) -> FeedItem:
    return FeedItem(f"guid-{n}", f"Item {n}", f"https://news.example/{n}", f"About {n}", None)


def listing(newest: int, oldest: int = 1) -> list[FeedItem]:
    return [entry(n) for n in range(newest, oldest - 1, -1)]


async def create(repo, url="https://news.example/feed", *, guild=GUILD, channel=CHANNEL, items=(), max_feeds=50,
                 next_check_at=NOW):
    new = NewFeed(guild, channel, url, None, "News", 1, None, None, next_check_at)
    result = await repo.create(new, list(items), now=NOW - 60, max_feeds=max_feeds)
    return result.feed if isinstance(result, Added) else result


async def checked(repo, feed_id, items, *, owner="a/1", now=NOW, max_posts=5):
    """Claim the due checks and record `items` as the feed's (claimed now or before by `owner`)."""
    await repo.claim_checks(owner=owner, now=now, lease=LEASE, limit=100)
    recorded = await repo.record_loaded(feed_id, owner=owner, now=now, next_check_at=now + 600, etag=None,
                                        last_modified=None, title="", items=items, max_posts=max_posts)
    assert recorded is not None
    return recorded


# ------------------------------------------------------------------ values


def test_stored_keys_fit_the_schema_and_are_stable():
    assert stored_key(FeedItem("guid-1", None, None, None, None)) == "guid-1"
    for odd in ("k" * 513, "a\x00b", "\ud800", ""):
        key = stored_key(FeedItem(odd, "t", "l", None, None))
        assert key.startswith("sha256:") and len(key) == 71
        assert key == stored_key(FeedItem(odd, "t", "l", None, None))
    assert stored_key(FeedItem("", "a", "b", None, None)) != stored_key(FeedItem("", "a", "c", None, None))
    assert stored_key(FeedItem("k" * 512, None, None, None, None)) == "k" * 512


def test_clean_text_drops_what_no_engine_stores():
    assert clean_text("a\x00b\ud800c", 10) == "ab?c"
    assert clean_text("x" * 50, 5) == "xxxxx" and clean_text(None, 5) is None


# ------------------------------------------------------------------ creating


async def test_numbers_count_per_server_even_when_added_at_once(repo):
    feeds = await asyncio.gather(*(create(repo, f"https://site{n}.example/feed") for n in range(12)))
    assert sorted(f.number for f in feeds) == list(range(1, 13))
    assert (await create(repo, guild=OTHER_GUILD, channel=CHANNEL + 1)).number == 1


async def test_the_same_address_in_one_channel_is_stored_once_even_at_once(repo):
    results = await asyncio.gather(*(create(repo) for _ in range(6)))
    assert sum(not isinstance(r, AlreadyFollowed) for r in results) == 1
    assert await repo.count(GUILD) == 1


async def test_the_cap_holds_under_concurrent_adds(repo):
    results = await asyncio.gather(*(create(repo, f"https://site{n}.example/feed", max_feeds=5) for n in range(9)))
    assert sum(isinstance(r, ServerFull) for r in results) == 4 and await repo.count(GUILD) == 5


async def test_the_baseline_keeps_only_identities_in_order(repo):
    feed = await create(repo, items=[*listing(4), entry(2)])  # a key listed twice counts once
    stored = await repo.items(feed.id)
    assert [(i.item.key, i.seq, i.state, i.item.title, i.item.summary) for i in stored] == [
        (f"guid-{n}", n, "seen", None, None) for n in range(1, 5)]


# ------------------------------------------------------------------ checks


async def test_a_check_is_claimed_by_one_owner_until_its_lease_runs_out(repo):
    due = await create(repo, next_check_at=NOW - 10)
    later = await create(repo, "https://other.example/feed", next_check_at=NOW + 10)
    assert [f.id for f in await repo.claim_checks(owner="a/1", now=NOW, lease=LEASE, limit=10)] == [due.id]
    assert await repo.claim_checks(owner="b/1", now=NOW + LEASE - 1, lease=LEASE, limit=10) == [
        await repo.get(later.id)]
    [taken] = await repo.claim_checks(owner="c/1", now=NOW + LEASE, lease=LEASE, limit=10)
    assert taken.id == due.id
    # Only the latest claimant records; the earlier one's late result is dropped.
    assert await repo.record_not_modified(due.id, owner="a/1", now=NOW + LEASE, next_check_at=NOW + 999, etag=None,
                                          last_modified=None, max_posts=5) is None
    stored = await repo.record_not_modified(due.id, owner="c/1", now=NOW + LEASE, next_check_at=NOW + 999,
                                            etag=None, last_modified=None, max_posts=5)
    assert stored is not None and stored.next_check_at == NOW + 999
    assert await repo.record_not_modified(due.id, owner="c/1", now=NOW + LEASE, next_check_at=NOW, etag=None,
                                          last_modified=None, max_posts=5) is None  # once


async def test_most_overdue_first_within_the_limit_and_paused_ones_never(repo):
    feeds = [await create(repo, f"https://site{n}.example/feed", next_check_at=NOW - n) for n in range(5)]
    await repo.pause(feeds[4].id, now=NOW, by=1, reason=None, notice_done=False)
    claimed = await repo.claim_checks(owner="a/1", now=NOW, lease=LEASE, limit=2)
    assert [f.id for f in claimed] == [feeds[3].id, feeds[2].id]


async def test_new_items_get_seqs_oldest_lowest_and_wait_to_be_released(repo):
    feed = await create(repo, items=listing(2), next_check_at=NOW)
    recorded = await checked(repo, feed.id, listing(9), max_posts=3)
    assert recorded.new_items == 7 and recorded.feed.last_new_at == NOW
    pending = await repo.items(feed.id, states=["pending"])
    assert [(i.item.key, i.seq) for i in pending] == [(f"guid-{n}", n) for n in range(3, 10)]
    assert [i.claim_until for i in pending] == [NOW] * 3 + [None] * 4  # the check's share: 3


async def test_claims_take_at_most_per_feed_oldest_first_and_count_attempts(repo):
    first = await create(repo, items=listing(1), next_check_at=NOW)
    second = await create(repo, "https://other.example/feed", items=listing(1), next_check_at=NOW)
    await checked(repo, first.id, listing(6), max_posts=5)
    await repo.record_loaded(second.id, owner="a/1", now=NOW, next_check_at=NOW + 600, etag=None, last_modified=None,
                             title="", items=listing(3), max_posts=5)
    claimed = await repo.claim_items(owner="a/1", now=NOW, lease=LEASE, per_feed=2, limit=10)
    assert [(i.feed_id, i.item.key, i.attempts) for i in claimed] == [
        (first.id, "guid-2", 1), (first.id, "guid-3", 1), (second.id, "guid-2", 1), (second.id, "guid-3", 1)]
    again = await repo.claim_items(owner="b/1", now=NOW, lease=LEASE, per_feed=2, limit=1)
    assert [(i.feed_id, i.item.key) for i in again] == [(first.id, "guid-4")]
    assert await repo.claim_items(owner="b/1", now=NOW, lease=LEASE, per_feed=2, limit=10, feed_ids=[second.id]) == []


async def test_start_and_retry_are_fenced_by_the_claim(repo):
    feed = await create(repo, items=listing(1), next_check_at=NOW)
    await checked(repo, feed.id, listing(2))
    [mine] = await repo.claim_items(owner="a/1", now=NOW, lease=LEASE, per_feed=5, limit=5)
    [theirs] = await repo.claim_items(owner="b/1", now=NOW + LEASE, lease=LEASE, per_feed=5, limit=5)
    assert not await repo.start_item(mine.id, owner="a/1", attempts=1, marker="m", now=NOW + LEASE, lease=LEASE)
    assert not await repo.retry_item(mine.id, attempts=1, retry_at=NOW)
    assert await repo.start_item(theirs.id, owner="b/1", attempts=2, marker="m", now=NOW + LEASE, lease=LEASE)
    assert await repo.finish_item(theirs.id, state="posted", outcome="posted", message_id=5, now=NOW + LEASE)
    assert not await repo.finish_item(theirs.id, state="skipped", outcome="x", message_id=None, now=NOW + LEASE)


async def test_reclaim_own_frees_only_earlier_copies_claims(repo):
    feeds = [await create(repo, f"https://site{n}.example/feed", items=listing(1), next_check_at=NOW)
             for n in range(3)]
    for feed in feeds:
        await checked(repo, feed.id, listing(2))
    items = await repo.claim_items(owner="bot/old", now=NOW, lease=LEASE, per_feed=5, limit=1)
    await repo.claim_items(owner="botany/1", now=NOW, lease=LEASE, per_feed=5, limit=1)  # another instance
    await repo.claim_items(owner="bot/new", now=NOW, lease=LEASE, per_feed=5, limit=1)  # this copy's own
    for feed in feeds:
        await repo.db.write(lambda conn, f=feed: conn.execute(
            "UPDATE feeds SET next_check_at = ? WHERE id = ?", (NOW, f.id)))
    await repo.claim_checks(owner="bot/old", now=NOW, lease=LEASE, limit=1)
    assert await repo.reclaim_own(instance="bot", owner="bot/new", now=NOW + 1) == 2
    [again] = await repo.claim_items(owner="bot/new", now=NOW + 1, lease=LEASE, per_feed=5, limit=5)
    assert again.id == items[0].id and again.attempts == 2
    assert len(await repo.claim_checks(owner="bot/new", now=NOW + 1, lease=LEASE, limit=5)) == 3


# ------------------------------------------------------------------ bounded


async def test_old_done_items_are_forgotten_but_never_one_the_feed_still_lists(repo, monkeypatch):
    monkeypatch.setattr(repository, "KEEP_ITEMS", 10)
    monkeypatch.setattr(repository, "PRUNE_SLACK", 3)
    pinned = FeedItem("pinned", "Rules", None, None, None)
    feed = await create(repo, items=[pinned], next_check_at=NOW)
    now = NOW
    for step in range(12):  # three new items each check, the pinned one always listed last
        newest = 3 * step + 3
        recorded = await checked(repo, feed.id, [*listing(newest, newest - 2), pinned], now=now)
        assert recorded.new_items == 3
        for claimed in await repo.claim_items(owner="a/1", now=now, lease=LEASE, per_feed=5, limit=10):
            await repo.finish_item(claimed.id, state="posted", outcome="posted", message_id=1, now=now)
        now += 600
    stored = await repo.items(feed.id)
    assert len(stored) <= 10 + 3 + 3 + 1
    assert stored[0].item.key == "pinned" and {i.state for i in stored} == {"seen", "posted"}
    assert [i.item.key for i in stored][-10:] == [f"guid-{n}" for n in range(27, 37)]


async def test_pending_items_are_never_forgotten(repo, monkeypatch):
    monkeypatch.setattr(repository, "KEEP_ITEMS", 5)
    monkeypatch.setattr(repository, "PRUNE_SLACK", 0)
    feed = await create(repo, next_check_at=NOW)
    await checked(repo, feed.id, listing(30), max_posts=1)
    assert len(await repo.items(feed.id, states=["pending"])) == 30


async def test_a_1000_item_listing_with_nothing_new_costs_little(repo, record_property):
    feed = await create(repo, items=listing(1000), next_check_at=NOW)
    started = time.perf_counter()
    recorded = await checked(repo, feed.id, listing(1000))
    seconds = time.perf_counter() - started
    assert recorded.new_items == 0
    record_property("feed_record_1000_known_ms", round(seconds * 1000, 1))
    print(f"\nrecording a check of 1,000 known items: {seconds * 1000:.1f} ms ({repo.db.dialect})")


# ------------------------------------------------------------------ PostgreSQL: rows others hold


@pytest.mark.parametrize("backend", ["postgresql"], indirect=True)
async def test_claims_pass_over_rows_another_process_holds(repo, database_url):
    held = await create(repo, "https://held.example/feed", items=listing(1), next_check_at=NOW)
    free = await create(repo, "https://free.example/feed", items=listing(1), next_check_at=NOW)
    for feed in (held, free):
        await checked(repo, feed.id, listing(2))
    # Both due again, neither claimed: only the other process's locks can keep one from us.
    await repo.db.write(lambda conn: conn.execute("UPDATE feeds SET next_check_at = ?, claim_until = NULL", (NOW,)))
    with psycopg.connect(database_url) as other:  # another process, in the middle of a transaction
        other.execute("SELECT 1 FROM feeds WHERE id = %s FOR UPDATE", (held.id,))
        other.execute("SELECT 1 FROM feed_items WHERE feed_id = %s FOR UPDATE", (held.id,))
        checks = await asyncio.wait_for(repo.claim_checks(owner="a/1", now=NOW, lease=LEASE, limit=10), 5)
        posts = await asyncio.wait_for(
            repo.claim_items(owner="a/1", now=NOW, lease=LEASE, per_feed=5, limit=10), 5)
        assert [f.id for f in checks] == [free.id] and {i.feed_id for i in posts} == {free.id}
    assert [f.id for f in await repo.claim_checks(owner="b/1", now=NOW, lease=LEASE, limit=10)] == [held.id]
