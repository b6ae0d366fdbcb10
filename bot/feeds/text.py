"""A feed's words as plain, visible text of a bounded length.

Feed titles and summaries are whatever the feed's author (or whoever took over the domain)
typed: markup, entities, control characters, bidi overrides that reverse the text around them,
zero-width characters, megabytes of one title. What leaves here is plain text (markup parsed
away by lxml, never by a regex), one line, without invisible characters, cut to its limit.
"""

from __future__ import annotations

import unicodedata

import lxml.html
from lxml import etree

# The markup read for one field: the plain text is capped far below this (2,000 characters at
# most), and parsing 5 MB of one summary for 2,000 characters of it would be wasted work.
MARKUP_READ = 100_000
_JOINERS = {"\u200c", "\u200d"}  # change how letters (Persian, Indic) and emoji join: kept
# Elements whose text is not content, and elements that end a line (so "<p>a</p><p>b</p>" reads
# "a b", not "ab").
_NOT_TEXT = ("script", "style", "template", "noscript", "head", "title")
_BREAKS = frozenset({
    "address", "article", "aside", "blockquote", "br", "dd", "div", "dl", "dt", "figcaption", "figure", "footer",
    "h1", "h2", "h3", "h4", "h5", "h6", "header", "hr", "li", "main", "nav", "ol", "p", "pre", "section", "table",
    "td", "th", "tr", "ul",
})  # fmt: skip


def _visible(char: str) -> bool:
    category = unicodedata.category(char)
    if category in ("Cc", "Cs"):  # controls, lone surrogates (JSON escapes can make them)
        return False
    if category == "Cf":  # format characters: bidi controls, zero-width spaces, BOMs, tags
        return char in _JOINERS
    return True


def clean_text(value: str | None, limit: int) -> str | None:
    """`value` as one line of visible text, at most `limit` characters ("…" marks a cut), or
    None when nothing visible is left."""
    if not value:
        return None
    value = value[: limit * 4 + 1000]  # all a cut needs, before the per-character work
    # Every space (tabs, newlines, no-break and line separators) is one " ".
    text = " ".join("".join(c for c in value if c.isspace() or _visible(c)).split())
    if not text:
        return None
    if len(text) > limit:
        text = text[: limit - 1].rstrip() + "…"
    return text


def html_to_text(markup: str | None, limit: int) -> str | None:
    """The text of an HTML fragment, clean as `clean_text` makes it."""
    if not markup:
        return None
    # Controls first: lxml refuses a string holding NUL, and they are never content.
    markup = "".join(c for c in markup[:MARKUP_READ] if c.isspace() or unicodedata.category(c) not in ("Cc", "Cs"))
    if not markup.strip():
        return None
    try:
        root = lxml.html.fragment_fromstring(markup, create_parent="div")
    except (etree.ParserError, ValueError):
        return clean_text(markup, limit)
    for element in list(root.iter(*_NOT_TEXT)):
        element.drop_tree()
    for element in root.iter(etree.Element):
        if element.tag.lower() in _BREAKS:
            element.tail = " " + (element.tail or "")
            element.text = " " + (element.text or "")
    return clean_text(root.text_content(), limit)


def to_text(value: str | None, content_type: str | None, limit: int) -> str | None:
    """A feed field as plain text: HTML is parsed (feedparser says which fields are HTML,
    JSON Feed says so by the field's name), plain text only cleaned."""
    if content_type is not None and "html" in content_type.lower():
        return html_to_text(value, limit)
    return clean_text(value, limit)
