"""The test oracle for "members' text renders literally": SimCord's markdown projection.

`assert_literal(rendered, profile, typed)` holds when Discord would show `typed` exactly as
typed inside `rendered`, and no markup in `rendered` comes from it: the tokens are the same
when the member's (escaped) text is replaced by a plain placeholder. Markup Quorum adds
itself (its bold, its links, its role mention, its timestamps) is in both, so it is allowed.
"""

from __future__ import annotations

from typing import Any

from simcord.preview._markdown import markdown_summary, markdown_tokens

from bot.markdown import escape

USER, ROLE, CHANNEL, EMOJI, COMMAND = (123456789012345678, 223456789012345678, 323456789012345678,
                                       423456789012345678, 523456789012345678)  # fmt: skip

# What resolves in the projection: ids that exist, and @everyone allowed. Without them a
# mention would stay text even if it were not escaped.
CONTEXT: dict[str, Any] = {
    "users": {str(USER): "victim"},
    "roles": {str(ROLE): "Admins"},
    "channels": {str(CHANNEL): "general"},
    "emojis": {str(EMOJI): {"id": str(EMOJI), "name": "party", "animated": False}},
    "commands": {str(COMMAND): "poll"},
    "everyone": True,
}

HOSTILE: dict[str, str] = {
    "masked link": "[Free Nitro](https://evil.example/login)",
    "link breakout": "Lunch?](https://evil.example/phish) [x",
    "bare link": "https://evil.example/login",
    "angle link": "<https://evil.example/login>",
    "heading": "# Big news",
    "subtext": "-# small print",
    "bullet list": "- first",
    "plus list": "+ first",
    "star list": "* first",
    "numbered list": "1. first",
    "quote": "> quoted",
    "block quote": ">>> quoted",
    "spoiler": "||secret||",
    "bold": "**bold**",
    "italic": "*it* and _it_",
    "underline": "__under__",
    "strike": "~~gone~~",
    "code": "`code`",
    "code block": "```py print()```",
    "user mention": f"<@{USER}> <@!{USER}>",
    "role mention": f"<@&{ROLE}>",
    "channel mention": f"<#{CHANNEL}>",
    "everyone": "@everyone and @here",
    "timestamp": "<t:1700000000:R>",
    "emoji": f"<:party:{EMOJI}>",
    "command": f"</poll create:{COMMAND}>",
    "entity": "&amp; &#42; &lt;b&gt;",
    "backslashes": "\\*not bold\\* C:\\path\\",
}
# `|` separates answers, so a spoiler can't be an answer; every other input can.
OPTION_HOSTILE: dict[str, str] = {name: text for name, text in HOSTILE.items() if "|" not in text}

PLACEHOLDER = "MEMBERTEXT"
_TEXT_KINDS = {"text", "break", "inline"}


def tokens(rendered: str, profile: str) -> list[dict[str, Any]]:
    return markdown_tokens(rendered, profile, context=CONTEXT)


def structure(rendered: str, profile: str) -> list[str]:
    """Every token that is not plain text, depth first: the markup Discord would apply."""
    out: list[str] = []

    def visit(items: list[dict[str, Any]]) -> None:
        for token in items:
            if token["type"] not in _TEXT_KINDS:
                out.append(token["type"])
            if isinstance(token.get("children"), list):
                visit(token["children"])

    visit(tokens(rendered, profile))
    return out


def visible(rendered: str, profile: str) -> str:
    """The text a reader sees (spaces collapsed, as the projection does)."""
    return markdown_summary(tokens(rendered, profile), max_graphemes=100_000)


def _collapsed(text: str) -> str:
    return " ".join(text.split())


def assert_literal(rendered: str, profile: str, typed: str) -> None:
    shown = escape(typed)
    assert shown in rendered, f"{typed!r} is not in {rendered!r} escaped"
    plain = rendered.replace(shown, PLACEHOLDER)
    assert structure(rendered, profile) == structure(plain, profile), (typed, rendered)
    assert _collapsed(typed) in visible(rendered, profile), (typed, visible(rendered, profile))


def assert_plain(rendered: str, typed: str) -> None:
    """Plain-text places (footers, author names, labels): the text as typed, no backslash."""
    assert typed in rendered, (typed, rendered)
