"""Sharing an article: fetch safely, extract, summarise, cache. Plain Python, no discord."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from dataclasses import asdict, dataclass
from urllib.parse import urlsplit

from .extract import extract_article
from .fetch import FetchError, fetch_page
from .repository import ArticleCache
from .summarize import SummaryError, llm_summary, summarize

log = logging.getLogger(__name__)

# The whole share finishes or fails within this (the 30 s, less room to answer).
TOTAL_SECONDS = 25.0


@dataclass(frozen=True, slots=True)
class SharedArticle:
    url: str
    canonical_url: str
    title: str
    summary: str
    summary_by: str  # "extractive", or the model's name
    author: str | None
    published: str | None
    site_name: str | None
    image: str | None
    reading_minutes: int


def trusted_canonical(canonical: str | None, page_url: str) -> str:
    """The page's canonical URL if it is on the page's own host, else the page's URL.

    The cache is keyed by canonical URL, and the page chooses it: a page claiming another
    site's address as its canonical could otherwise stand in for that site's article.
    """
    if canonical and urlsplit(canonical).hostname == urlsplit(page_url).hostname:
        return canonical
    return page_url


class ArticleService:
    def __init__(
        self,
        cache: ArticleCache,
        clock: Callable[[], float],
        *,
        allow_private: bool = False,
        cache_hours: float = 24.0,
        summary_api_url: str | None = None,
        summary_api_key: str | None = None,
        summary_model: str | None = None,
    ) -> None:
        self.cache = cache
        self.clock = clock
        self.allow_private = allow_private
        self.max_age = cache_hours * 3600
        self.summary_api_url = summary_api_url
        self.summary_api_key = summary_api_key
        self.summary_model = summary_model

    async def share(self, url: str) -> SharedArticle:
        """The article behind `url`, summarised; FetchError/ExtractError say what went wrong."""
        url = url.strip().strip("<>")
        cached = await self.cache.get(url, max_age=self.max_age, now=self.clock())
        if cached is not None:
            return SharedArticle(**cached)
        try:
            async with asyncio.timeout(TOTAL_SECONDS):
                article = await self._fresh(url)
        except TimeoutError:
            raise FetchError(
                f"Fetching and summarising the page took longer than {TOTAL_SECONDS:.0f} s; try again later."
            ) from None
        await self.cache.put(url, article.canonical_url, asdict(article), max_age=self.max_age, now=self.clock())
        return article

    async def _fresh(self, url: str) -> SharedArticle:
        page = await fetch_page(url, allow_private=self.allow_private)
        # Extraction and ranking are CPU work: off the event loop, so votes keep flowing.
        article = await asyncio.to_thread(extract_article, page.html, page.url)
        sentences = await asyncio.to_thread(summarize, article.text, title=article.title)
        summary, summary_by = " ".join(sentences), "extractive"
        if self.summary_api_url and self.summary_model:
            try:
                summary = await llm_summary(
                    article.text,
                    title=article.title,
                    api_url=self.summary_api_url,
                    api_key=self.summary_api_key,
                    model=self.summary_model,
                )
                summary_by = self.summary_model
            except SummaryError as error:
                log.warning("summary model failed (%s); using the extractive summary", error)
        return SharedArticle(
            url=page.url,
            canonical_url=trusted_canonical(article.canonical_url, page.url),
            title=article.title,
            summary=summary,
            summary_by=summary_by,
            author=article.author,
            published=article.published,
            site_name=article.site_name,
            image=article.image,
            reading_minutes=article.reading_minutes,
        )
