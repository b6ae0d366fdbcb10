"""Sharing an article: fetch safely, extract and summarise in a worker process, cache.

Plain Python, no discord. What keeps a member's link from hurting anyone else:

- the CPU work runs in `ArticleWorkers` (other processes, killed past their time limit);
- at most `max_jobs` shares are in progress at once, and one per member: beyond that the
  member is told Quorum is busy (ArticleBusy) rather than queued without end;
- a page that failed in the worker because of what it is (too slow, too big, no article) is
  remembered for FAILURE_MINUTES under the link as shared (normalised) and the address it
  ended at, so asking again answers at once instead of starting the work again. A failure of
  Quorum's own (a worker that crashed, a shutdown) is not remembered: it says nothing about
  the page.

Time: fetching has its own limits (20 s at most, see fetch.py); the worker's part then gets
JOB_SECONDS of the worker's time, not counting a wait for a free worker (at most one job's
time, since at most twice as many shares as workers run at once).
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import asdict, dataclass
from urllib.parse import urlsplit

from .fetch import fetch_page
from .models import ExtractError
from .repository import ArticleCache
from .summarize import SummaryError, llm_summary
from .worker import ArticleJobError, ArticleWorkers

log = logging.getLogger(__name__)

# The worker's part (decode, extract, summarise): a real page of the largest size the fetcher
# accepts takes about 2 s.
JOB_SECONDS = 15.0
FAILURE_MINUTES = 10.0


def cache_key(url: str) -> str:
    """The link as the caches know it: without its fragment (never sent to the site), scheme and
    host in lower case, so `…#1`, `…#2` and `HTTPS://Site/…` are one page, not three."""
    try:
        parts = urlsplit(url)
        netloc = parts.netloc.lower() if "@" not in parts.netloc else parts.netloc
        return parts._replace(scheme=parts.scheme.lower(), netloc=netloc, fragment="").geturl()
    except ValueError:
        return url


class ArticleBusy(Exception):
    """Too many articles in progress (or this member's previous one); str(error) says what to do."""


# `summary_by` of a page with no article, whose summary is the page's own description.
DESCRIBED = "the page's own description"


@dataclass(frozen=True, slots=True)
class SharedArticle:
    url: str
    canonical_url: str
    title: str
    summary: str
    summary_by: str  # "extractive", DESCRIBED, or the model's name
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
        workers: ArticleWorkers,
        *,
        max_jobs: int = 4,
        job_seconds: float = JOB_SECONDS,
        allow_private: bool = False,
        cache_hours: float = 24.0,
        summary_api_url: str | None = None,
        summary_api_key: str | None = None,
        summary_model: str | None = None,
    ) -> None:
        self.cache = cache
        self.clock = clock
        self.workers = workers
        self.max_jobs = max_jobs
        self.job_seconds = job_seconds
        self._jobs = 0
        self._members: set[int] = set()
        self.allow_private = allow_private
        self.max_age = cache_hours * 3600
        self.summary_api_url = summary_api_url
        self.summary_api_key = summary_api_key
        self.summary_model = summary_model

    async def share(self, url: str, *, member_id: int | None = None) -> SharedArticle:
        """The article behind `url`, summarised.

        FetchError, ExtractError and ArticleJobError say what went wrong with the page;
        ArticleBusy that the member should try again in a minute.
        """
        url = cache_key(url.strip().strip("<>"))
        cached = await self.cache.get(url, max_age=self.max_age, now=self.clock())
        if cached is not None:
            return SharedArticle(**cached)
        await self._raise_remembered_failure(url)
        if member_id is not None and member_id in self._members:
            raise ArticleBusy("Your previous article is still being summarised; wait for it, then try again.")
        if self._jobs >= self.max_jobs:
            raise ArticleBusy("Quorum is busy with other articles right now; try again in a minute.")
        self._jobs += 1
        if member_id is not None:
            self._members.add(member_id)
        try:
            article = await self._fresh(url)
        finally:
            self._jobs -= 1
            if member_id is not None:
                self._members.discard(member_id)
        await self.cache.put(url, article.canonical_url, asdict(article), max_age=self.max_age, now=self.clock())
        return article

    async def _raise_remembered_failure(self, url: str) -> None:
        failed = await self.cache.failure(url, max_age=FAILURE_MINUTES * 60, now=self.clock())
        if failed is not None:
            raise ArticleJobError(failed)

    async def _remember_failure(self, urls: set[str], error: Exception) -> None:
        await self.cache.put_failure(urls, str(error), max_age=FAILURE_MINUTES * 60, now=self.clock())

    async def _fresh(self, url: str) -> SharedArticle:
        page = await fetch_page(url, allow_private=self.allow_private)
        final = cache_key(page.url)
        if final != url:  # a redirect: to a page that failed a moment ago, under another link?
            await self._raise_remembered_failure(final)
        try:
            # The worker's limit is hard: past it the worker process is killed.
            processed = await self.workers.process(page.body, page.charset, page.url, timeout=self.job_seconds)
        except ExtractError as error:
            await self._remember_failure({url, final}, error)
            raise
        except ArticleJobError as error:
            if error.page_caused:  # not a crash or a shutdown, which say nothing about the page
                await self._remember_failure({url, final}, error)
            raise
        article = processed.article
        summary, summary_by = " ".join(processed.sentences), "extractive"
        if article.described:
            summary_by = DESCRIBED  # nothing to summarise: the page's words about itself
        elif self.summary_api_url and self.summary_model:
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
