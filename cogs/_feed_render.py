"""What feed messages look like: an item posted from a feed's own text, the notice of a feed
Quorum paused, /feed list, the confirmations and the autocomplete choices.

A feed's text is hostile (its server writes it): it is escaped wherever Discord renders
markdown and cut to size after escaping, so what Discord shows stays within its limits;
one-line places get it on one line, without the control characters that could reorder or
hide what follows (bidi overrides, line breaks).
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from urllib.parse import urlsplit

import discord

from bot.feeds.models import Feed, FeedItem, FeedState
from bot.markdown import escape, escape_inline
from bot.polls.render import duration_text, shorten, timestamp

from .articles import date_markup, embed_link

COLOR = 0xEE802F  # the colour of feed icons

# The post of an item whose page gave no summary: the feed's own words, said to be that.
UNREADABLE_NOTE = "*From the feed; the page could not be summarised.*"
NO_ARTICLE_NOTE = "*From the feed; the page has no article to summarise.*"
FEED_TEXT = "the feed's own text"

# Discord's limits (https://discord.com/developers/docs/resources/message#embed-object-embed-limits).
DESCRIPTION_LIMIT = 4096
MESSAGE_EMBEDS_TOTAL = 6000
CHOICE_NAME_LIMIT = 100
# /feed list: what one message of it may hold (under the 6,000 of all its embeds together, with
# room for its title), and how many messages it may take.
LIST_EMBED_BUDGET = 4000
LIST_MESSAGE_BUDGET = 5800
LIST_MESSAGES = 5

# Bidi embeddings, overrides and isolates, and every C0/C1 control (line breaks included).
_UNSAFE_IN_A_LINE = re.compile(r"[\u0000-\u001f\u007f-\u009f\u202a-\u202e\u2066-\u2069\u2028\u2029]+")


def one_line(text: str | None, limit: int = 1000) -> str:
    """`text` on one line: controls and runs of whitespace become one space. Only its first
    `limit` characters are read: every place it goes shows far fewer."""
    return " ".join(_UNSAFE_IN_A_LINE.sub(" ", (text or "")[:limit]).split())


def feed_name(feed: Feed, limit: int = 100) -> str:
    """The feed's title as plain text (footers, choices), else its host."""
    return shorten(one_line(feed.title, 3 * limit) or _host(feed.url), limit)


def _host(url: str) -> str:
    try:
        return urlsplit(url).hostname or one_line(url, 100)
    except ValueError:
        return one_line(url, 100)


def origin(feed: Feed, item_id: int) -> str:
    """The start of a post's footer: which feed it comes from, and which of its items (what
    Quorum looks for in the channel after a crash: two items may share a link or a title)."""
    return f"From {feed_name(feed)} {post_marker(feed, item_id)}"


def item_embed(feed: Feed, item: FeedItem, *, item_id: int, no_article: bool = False) -> discord.Embed:
    """An item posted from what the feed says of it, marked as the feed's: its page could not
    be fetched or summarised (`no_article`: it has no article)."""
    note = NO_ARTICLE_NOTE if no_article else UNREADABLE_NOTE
    # Escaping only what can be shown: at most 4,096 characters of it.
    raw = (item.summary or "")[:DESCRIPTION_LIMIT].strip()
    summary = escape(raw) if raw else ""
    description = f"{note}\n\n{shorten(summary, DESCRIPTION_LIMIT - len(note) - 2)}" if summary else note
    embed = discord.Embed(
        title=shorten(escape(one_line(item.title, 600)), 256) or "Untitled",
        url=embed_link(item.link),
        description=description,
        color=COLOR,
    )
    if item.published:
        embed.add_field(name="Published", value=date_markup(item.published), inline=True)
    embed.set_footer(text=f"{origin(feed, item_id)} · {FEED_TEXT}")
    return embed


def post_marker(feed: Feed, item_id: int) -> str:
    """What a posted item's message carries in its footer, whatever was sent (the article
    embed or the feed's own text): its feed's number and its own id."""
    return f"(feed #{feed.number}, item {item_id})"


def carries(message: discord.Message, marker: str) -> bool:
    """Whether `message` is the post whose footer carries `marker`."""
    return any(embed.footer and marker in (embed.footer.text or "") for embed in message.embeds)


def paused_notice(feed: Feed) -> str:
    """The one message a feed paused for failing sends to its channel."""
    error = f" (last error: {escape(shorten(one_line(feed.last_error), 200))})" if feed.last_error else ""
    return (
        f"Feed #{feed.number} (**{escape(feed_name(feed))}**) is paused: it failed for a day{error}. "
        f"A moderator can `/feed resume feed:{feed.number}` it."
    )


def added_text(feed: Feed, newest: FeedItem | None, *, channel_mention: str, interval: int) -> str:
    """/feed add's confirmation (well under 2,000 characters)."""
    found_on = ""
    if feed.page_url:
        found_on = f" (the feed that page links to: {escape_inline(shorten(feed.url, 300))})"
    if newest is None:
        newest_line = "It has no items yet."
    else:
        newest_line = (
            f"Its newest item is **{shorten(escape(one_line(newest.title)) or 'untitled', 300)}**; "
            "what is in it now is not posted."
        )
    return (
        f"Following feed #{feed.number}, **{shorten(escape(one_line(feed.title)) or 'untitled', 300)}**{found_on}, "
        f"in {channel_mention}. {newest_line} New items are posted there as they appear "
        f"(checked about every {duration_text(interval)})."
    )


def choice_name(feed: Feed) -> str:
    """An autocomplete choice: number, title, address (plain text, one line; the address cut
    where it must be, as it has no word to cut at)."""
    state = "" if feed.state is FeedState.OK else f" ({feed.state.value})"
    prefix = f"#{feed.number}{state} {feed_name(feed, 45)} · "
    room = CHOICE_NAME_LIMIT - len(prefix)
    url = one_line(feed.url, CHOICE_NAME_LIMIT)
    return prefix + (url if len(url) <= room else url[: room - 1] + "…")


def _when(moment: float | None, never: str) -> str:
    return timestamp(moment) if moment is not None else never


def state_text(feed: Feed) -> str:
    """ok / failing / paused, with why (markdown; the reason is escaped)."""
    if feed.state is FeedState.PAUSED:
        assert feed.paused_at is not None
        if feed.paused_by is not None:
            return f"**paused** by <@{feed.paused_by}> {timestamp(feed.paused_at)}"
        reason = shorten(escape(one_line(feed.paused_reason, 300)), 120) or "by Quorum"
        return f"**paused** {timestamp(feed.paused_at)}: {reason}"
    if feed.state is FeedState.FAILING:
        error = f": {shorten(escape(one_line(feed.last_error, 300)), 100)}" if feed.last_error else ""
        return f"**failing** ({feed.failures} checks in a row{error})"
    return "ok"


def list_line(feed: Feed) -> str:
    title = shorten(escape(one_line(feed.title, 200)), 80) or escape_inline(_host(feed.url))
    return (
        f"**#{feed.number}** {title} · <#{feed.channel_id}> · {state_text(feed)}\n"
        f"checked {_when(feed.last_check_at, 'not yet')} · last new item {_when(feed.last_new_at, 'none yet')}"
    )


def list_messages(feeds: Sequence[Feed]) -> list[list[discord.Embed]]:
    """/feed list as messages of embeds, each message within Discord's 6,000 characters of
    embeds and each description within 4,096; past LIST_MESSAGES messages, "…and N more"."""
    title = f"Feeds in this server ({len(feeds)})"
    messages: list[list[list[str]]] = [[[]]]  # messages → embeds → lines
    sizes = [[0]]
    for shown, feed in enumerate(feeds):
        line = list_line(feed)
        cost = len(line) + 1
        if sizes[-1][-1] + cost > LIST_EMBED_BUDGET or sum(sizes[-1]) + cost > LIST_MESSAGE_BUDGET - len(title):
            if sum(sizes[-1]) + cost <= LIST_MESSAGE_BUDGET - len(title):
                messages[-1].append([])
                sizes[-1].append(0)
            elif len(messages) < LIST_MESSAGES:
                messages.append([[]])
                sizes.append([0])
            else:
                messages[-1][-1][-1] = f"…and {len(feeds) - shown + 1} more."
                break
        messages[-1][-1].append(line)
        sizes[-1][-1] += cost
    result = []
    for number, embeds in enumerate(messages):
        result.append(
            [
                discord.Embed(
                    title=title if number == 0 and index == 0 else None,
                    description="\n".join(lines),
                    color=COLOR,
                )
                for index, lines in enumerate(embeds)
            ]
        )
    return result
