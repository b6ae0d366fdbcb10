"""Turning a page's HTML into an article: title, body text and metadata, without the site furniture.

The main text and most metadata come from trafilatura (best F1 of the open-source extractors on the
ScrapingHub article-extraction benchmark: 0.958, against readability-lxml 0.922, goose3 0.896,
justext 0.804). The fields the embed is built around — og:title and the canonical link — are read
straight from the page so they come out exactly as the publisher wrote them. A last small filter drops
stray credit/caption/newsletter lines should a page's markup let one through.
"""

from __future__ import annotations

import re
from urllib.parse import urljoin, urlsplit

import trafilatura
from lxml import etree
from trafilatura.utils import load_html

from .models import Article, ExtractError
from .scripts import word_count

__all__ = ["Article", "ExtractError", "extract_article"]

# Fewer words than this in the main text is a login wall, an error page or a bare link list.
MIN_WORDS = 25
# A page's own description shorter than this says too little to post ("Watch now.").
MIN_DESCRIPTION_WORDS = 6
# Lines at most this long that look like furniture are dropped from the body (a real paragraph that
# happens to mention a newsletter is longer than this).
FURNITURE_MAX_WORDS = 20

_FURNITURE = re.compile(
    r"""^(?:
        (?:photo|image|picture|illustration|graphic|(?:header|lead|feat\w*d)\ (?:image|photo))
            (?:\s+(?:by|courtesy\ of|via|for)\b|\s*(?:credits?)?\s*:)
        | (?:photo\ )?(?:credits?|source|caption)\s*:
        | (?:sponsored\ by|advertisement$|related\ (?:articles|stories|posts)|read\ (?:more|next)\s*:|see\ also\s*:)
        | (?:sign\ up\ for|subscribe\ to|join\ our\ newsletter|get\ the\ newsletter)\b
        | (?:share\ (?:this|on)|follow\ us\ on)\b
        | (?:tags?|topics|etiquetas|schlagw(?:ö|oe)rter)\s*:?$
        | (?:we\ use\ cookies|this\ (?:site|website)\ uses\ cookies|accept\ (?:all\ )?cookies)\b
    )""",
    re.IGNORECASE | re.VERBOSE,
)
_FURNITURE_ANYWHERE = re.compile(
    r"\b(?:is\ an?\ (?:sponsor|investor)\ (?:of|in)|on\ unsplash|via\ getty\ images|newsletter\ digest|"
    r"all\ rights\ reserved|cookie\ (?:policy|settings))\b",
    re.IGNORECASE | re.VERBOSE,
)
# A notice about the comments below an article ("comments that are offensive will not be
# approved by the moderator"), in the languages of the benchmark's pages: it names comments and
# their rules, which no article paragraph of that length does.
# It opens with the comments ("ATENÇÃO: Comentários…", "Comments that…", "Les commentaires…"), so
# an article line that merely mentions a comment ("declined to comment on the policy") stays.
# Used with .match only: anchored at the start, its lookahead reads the line once.
_COMMENT_NOTICE = re.compile(
    r"\W*(?:[^\W\d_]+\s*:\s*)?(?:(?:the|our|les|os|die|i)\s+)?"
    r"(?:comments?|coment[aá]rios?|commentaires?|kommentare?|commenti)\b"
    r"(?=.*\b(?:moderat\w*|aprovad\w*|approv\w*|policy|pol[ií]tica|guidelines|r[eè]gles|regeln|respeit\w*|respect\w*))",
    re.IGNORECASE,
)
# A page's own description is posted whole only up to this long (an embed holds 4,096).
MAX_DESCRIPTION_CHARS = 2000
_SPACES = re.compile(r"\s+")
_DATE = re.compile(r"^\d{4}-\d{2}-\d{2}")


def extract_article(html: str, url: str) -> Article:
    """The article in `html` (fetched from `url`); ExtractError when the page holds none."""
    nothing = ExtractError("That page has nothing that looks like an article to summarise.")
    if not html or not html.strip():
        raise nothing
    try:
        tree = load_html(html)
    except (ValueError, etree.LxmlError):
        tree = None
    if tree is None:
        raise nothing
    own = _page_metadata(tree, url)

    try:
        document = trafilatura.bare_extraction(
            tree,
            url=url,
            with_metadata=True,
            include_comments=False,
            include_tables=True,
            include_images=False,
            include_links=False,
            deduplicate=False,
        )
    except (ValueError, TypeError, etree.LxmlError):  # trafilatura on pathological markup
        document = None
    text = _body_text(document.text or "", title=own["title"] or document.title) if document is not None else ""
    words = word_count(text)  # Chinese and Japanese: characters (no spaces between words)
    description = (own["description"] or "")[:MAX_DESCRIPTION_CHARS]
    described = words < MIN_WORDS
    if described:
        # No article: what the page says about itself, if it says enough to be worth posting.
        text = description
        words = word_count(text)
        if words < MIN_DESCRIPTION_WORDS:
            raise nothing

    site_name = own["site_name"] or _clean(getattr(document, "sitename", None))
    title = (
        own["title"]
        or _without_site_suffix(own["html_title"], site_name, url)
        or own["headline"]
        or _clean(getattr(document, "title", None))
        or urlsplit(url).hostname
        or url
    )
    return Article(
        url=url,
        canonical_url=own["canonical"] or url,
        title=title,
        text=text,
        author=_clean(getattr(document, "author", None)),
        published=_iso_date(getattr(document, "date", None)) or _iso_date(own["published"]),
        site_name=site_name,
        image=own["image"] or _absolute(url, getattr(document, "image", None)),
        word_count=words,
        described=described,
        description=description if word_count(description) >= MIN_DESCRIPTION_WORDS else None,
    )


def _page_metadata(tree: etree._Element, url: str) -> dict[str, str | None]:
    """What we read from the page ourselves: the publisher's own og:/canonical values, verbatim."""
    meta: dict[str, str] = {}
    for element in tree.iter("meta"):
        key = (element.get("property") or element.get("name") or "").strip().lower()
        value = element.get("content")
        if key and value and value.strip() and key not in meta:
            meta[key] = value
    canonical = None
    for link in tree.iter("link"):
        rels = (link.get("rel") or "").lower().split()
        if "canonical" in rels and link.get("href"):
            canonical = _absolute(url, link.get("href"))
            if canonical:
                break
    html_title = next((_clean("".join(element.itertext())) for element in tree.iter("title")), None)
    headlines = [_clean("".join(element.itertext())) for element in tree.iter("h1")]
    return {
        "title": _clean(meta.get("og:title")) or _clean(meta.get("twitter:title")),
        "html_title": html_title,
        "headline": headlines[0] if len(headlines) == 1 else None,
        "canonical": canonical or _absolute(url, meta.get("og:url")),
        "site_name": _clean(meta.get("og:site_name")),
        "image": _absolute(url, meta.get("og:image") or meta.get("og:image:url") or meta.get("twitter:image")),
        "published": meta.get("article:published_time"),
        "description": _clean(meta.get("og:description") or meta.get("twitter:description") or meta.get("description")),
    }


def _without_site_suffix(title: str | None, site_name: str | None, url: str) -> str | None:
    """'Headline - Site' as 'Headline' when the part after the separator names the site."""
    if not title:
        return None
    host = (urlsplit(url).hostname or "").removeprefix("www.")
    site_keys = {_key(site_name).replace(" ", "")} if site_name else set()
    site_keys |= {host.split(".")[0], host.replace(".", "")} - {""}
    for separator in (" | ", " - ", " – ", " — ", " · ", " :: "):
        head, sep, tail = title.rpartition(separator)
        if sep and head.strip() and _key(tail).replace(" ", "") in site_keys:
            return head.strip()
        head, sep, tail = title.partition(separator)
        if sep and tail.strip() and _key(head).replace(" ", "") in site_keys:
            return tail.strip()
    return title


def _body_text(raw: str, *, title: str | None) -> str:
    """trafilatura's text, one paragraph a line, as paragraphs separated by blank lines, furniture out."""
    title_key = _key(title) if title else None
    paragraphs = []
    for line in raw.splitlines():
        line = line.strip()
        if not line or (title_key and _key(line) == title_key) or _is_furniture(line):
            continue
        paragraphs.append(line)
    return "\n\n".join(paragraphs)


def _is_furniture(line: str) -> bool:
    if word_count(line) > FURNITURE_MAX_WORDS:
        return False
    return bool(_FURNITURE.match(line) or _FURNITURE_ANYWHERE.search(line) or _COMMENT_NOTICE.match(line))


def _key(text: str) -> str:
    return _SPACES.sub(" ", re.sub(r"[^\w\s]", "", text.casefold())).strip()


def _clean(value: str | None) -> str | None:
    if not value:
        return None
    value = _SPACES.sub(" ", value).strip()
    return value or None


def _absolute(base: str, link: str | None) -> str | None:
    link = _clean(link)
    if not link:
        return None
    try:
        absolute = urljoin(base, link)
        scheme = urlsplit(absolute).scheme
    except ValueError:
        return None
    return absolute if scheme in ("http", "https") else None


def _iso_date(value: str | None) -> str | None:
    match = _DATE.match(value.strip()) if value else None
    return match.group(0) if match else None
