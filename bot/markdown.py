"""Show member- and page-supplied text literally where Discord renders markdown.

Discord (like CommonMark) shows any ASCII punctuation after a backslash as itself, so
`escape` puts a backslash before every character that could start or end markup. Use it
only where Discord renders markdown: message content, embed titles, descriptions, field
names and values. Embed footers and author names, button labels and autocomplete choices
are plain text: a backslash there would show as a backslash.
"""

from __future__ import annotations

import re

# Markup anywhere in a line: the backslash itself (so typed text never escapes what follows),
# bold/italic/underline/strike (* _ ~), code (`), spoilers (|), masked links ([ ]), and
# `<`, which opens every mention, channel, timestamp, emoji, command and <url> form.
_ANYWHERE = re.compile(r"[\\*_~`|\[\]<]")
# At a line start only (after indentation): headings and subtext (# -#), quotes (> >>>),
# bullets (- +; * is escaped anyway) and setext heading underlines (=).
_LINE_MARKER = re.compile(r"(?<![^\n\r])([ \t]*)([#>+\-=])")
# Numbered list items, "1." or "1)" at a line start.
_ORDERED = re.compile(r"(?<![^\n\r])([ \t]*\d+)([.)])")
# Everyone/here mentions: harmless with allowed_mentions none, but they still look like one.
_EVERYONE = re.compile(r"@(?=everyone|here)", re.IGNORECASE)
# CommonMark turns `&amp;` into `&`; the text must show what was typed.
_ENTITY = re.compile(r"&(?=#?[0-9A-Za-z]+;)")
# `https://…` is linked automatically; breaking the scheme keeps the address plain text.
_AUTOLINK = re.compile(r"(?<=[0-9A-Za-z]):(?=//)")


def escape(text: str) -> str:
    """`text` with every markdown, mention and link construct shown as typed (at most 2× longer)."""
    text = _ANYWHERE.sub(r"\\\g<0>", text)  # first: the backslashes added below stay single
    text = _LINE_MARKER.sub(r"\1\\\2", text)
    text = _ORDERED.sub(r"\1\\\2", text)
    text = _EVERYONE.sub(r"\\@", text)
    text = _ENTITY.sub(r"\\&", text)
    return _AUTOLINK.sub(r"\\:", text)


def escape_inline(text: str) -> str:
    """`escape` for one-line text placed mid-sentence: no line-start marker can form there, so
    `127.0.0.1` stays `127.0.0.1` rather than `127\\.0.0.1` (a list number)."""
    if "\n" in text or "\r" in text:
        return escape(text)
    text = _ANYWHERE.sub(r"\\\g<0>", text)
    text = _EVERYONE.sub(r"\\@", text)
    text = _ENTITY.sub(r"\\&", text)
    return _AUTOLINK.sub(r"\\:", text)


def drop_dangling_backslash(text: str) -> str:
    """`text` without a final unpaired backslash, which would escape what is appended to it."""
    trailing = len(text) - len(text.rstrip("\\"))
    return text[:-1] if trailing % 2 else text
