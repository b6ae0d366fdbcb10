"""Every SQL statement about articles: the cache of extracted articles and their summaries,
and of pages that failed (so a retry does not start the same work again)."""

from __future__ import annotations

import json
from collections.abc import Iterable
from typing import Any

from ..db import Database, WriteConnection


class ArticleCache:
    def __init__(self, db: Database) -> None:
        self.db = db

    async def get(self, url: str, *, max_age: float, now: float) -> dict[str, Any] | None:
        """The cached entry for a URL a member shared (or its canonical URL), if fresh."""
        row = await self.db.fetchone(
            "SELECT a.data FROM articles a "
            "WHERE a.canonical_url = coalesce((SELECT canonical_url FROM article_urls WHERE url = ?), ?) "
            "AND a.fetched_at >= ?",
            (url, url, now - max_age),
        )
        return None if row is None else json.loads(row[0])

    async def put(self, url: str, canonical_url: str, data: dict[str, Any], *, max_age: float, now: float) -> None:
        """Store an entry, and forget those older than `max_age` so the cache does not grow."""
        text = json.dumps(data, ensure_ascii=False)

        def store(conn: WriteConnection) -> None:
            conn.execute("DELETE FROM articles WHERE fetched_at < ?", (now - max_age,))
            conn.execute(
                "INSERT INTO articles (canonical_url, data, fetched_at) VALUES (?, ?, ?) "
                "ON CONFLICT (canonical_url) DO UPDATE SET data = excluded.data, fetched_at = excluded.fetched_at",
                (canonical_url, text, now),
            )
            for alias in {url, canonical_url}:
                conn.execute(
                    "INSERT INTO article_urls (url, canonical_url) VALUES (?, ?) "
                    "ON CONFLICT (url) DO UPDATE SET canonical_url = excluded.canonical_url",
                    (alias, canonical_url),
                )

        await self.db.write(store)

    async def failure(self, url: str, *, max_age: float, now: float) -> str | None:
        """The member-facing message of a recent failure to process `url`, if any."""
        return await self.db.fetchval(
            "SELECT message FROM article_failures WHERE url = ? AND failed_at >= ?", (url, now - max_age)
        )

    async def put_failure(self, urls: Iterable[str], message: str, *, max_age: float, now: float) -> None:
        """Remember a failure under each of `urls` (the link shared, where it led), in one write;
        forget those older than `max_age`."""

        def store(conn: WriteConnection) -> None:
            conn.execute("DELETE FROM article_failures WHERE failed_at < ?", (now - max_age,))
            conn.executemany(
                "INSERT INTO article_failures (url, message, failed_at) VALUES (?, ?, ?) "
                "ON CONFLICT (url) DO UPDATE SET message = excluded.message, failed_at = excluded.failed_at",
                [(url, message, now) for url in urls],
            )

        await self.db.write(store)
