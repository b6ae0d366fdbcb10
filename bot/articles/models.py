"""What an extracted article is, and the error for a page that holds none.

Kept apart from extract.py so the bot's process, which only receives articles from the worker
processes, never imports trafilatura and lxml (about 12 MB it would carry for nothing).
"""

from __future__ import annotations

from dataclasses import dataclass

WORDS_PER_MINUTE = 230


class ExtractError(Exception):
    """str(error) is a short message for the member."""


@dataclass(frozen=True, slots=True)
class Article:
    url: str
    canonical_url: str
    title: str
    text: str  # the body, paragraphs separated by "\n\n"
    author: str | None
    published: str | None  # ISO date, YYYY-MM-DD
    site_name: str | None
    image: str | None
    word_count: int
    # No article on the page (a video, a single post, a product): `text` is what the page says
    # about itself (og:description), posted as that, clearly marked, instead of an error.
    described: bool = False
    description: str | None = None  # the page's own description, when it says enough

    @property
    def reading_minutes(self) -> int:
        return max(1, round(self.word_count / WORDS_PER_MINUTE))
