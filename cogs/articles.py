"""/article share and /article preview: parse, call the article service, render the embed."""

from __future__ import annotations

import logging
import re
from datetime import datetime
from typing import TYPE_CHECKING

import discord
from discord import app_commands
from discord.ext import commands

from bot.articles.repository import ArticleCache
from bot.articles.service import DESCRIBED, ArticleService, SharedArticle
from bot.markdown import escape
from bot.polls.render import shorten
from bot.tree import NO_MENTIONS

from ._checks import postable_channel

if TYPE_CHECKING:
    from bot.client import QuorumBot

log = logging.getLogger(__name__)

COLOR = 0x3BA55D


# A page with no article (a video, a single post, a product) is posted as it describes itself,
# and says so first: the text below is the page's, not a summary of an article.
DESCRIBED_NOTE = "*No article on this page. This is how the page describes itself:*\n\n"


def article_embed(article: SharedArticle, *, shared_by: str | None = None, origin: str | None = None) -> discord.Embed:
    """The page's text shown as the page has it: escaped where Discord renders markdown (title,
    description, field values), as it is in the author name and footer (plain text there).
    Limits keep the whole embed under Discord's 6,000 characters.

    The footer starts with where the post comes from: `origin` (a feed's "From …"), else
    "Shared by `shared_by`"."""
    described = article.summary_by == DESCRIBED
    summary = shorten(escape(article.summary), 4096 - len(DESCRIBED_NOTE))
    embed = discord.Embed(
        title=shorten(escape(article.title), 256),
        url=embed_link(article.canonical_url) or embed_link(article.url),
        description=DESCRIBED_NOTE + summary if described else summary,
        color=COLOR,
    )
    if article.author:
        embed.set_author(name=shorten(article.author, 256))
    if article.site_name:
        embed.add_field(name="Site", value=shorten(escape(article.site_name), 256), inline=True)
    if article.published:
        when = date_markup(article.published)
        embed.add_field(name="Published", value=when, inline=True)
    if not described:  # a page's description has no reading time worth showing
        embed.add_field(name="Reading time", value=f"{article.reading_minutes} min", inline=True)
    if image := embed_link(article.image):
        embed.set_image(url=image)
    if described:
        how = DESCRIBED
    else:
        how = "extractive summary" if article.summary_by == "extractive" else f"summary by {article.summary_by}"
    embed.set_footer(text=shorten(f"{origin or f'Shared by {shared_by}'} · {how}", 2048))
    return embed


# Discord refuses the whole message for an embed URL it can't take (over 2,048 characters, not
# a URI); a page chooses its canonical and image URLs, so those are checked, not trusted.
_URL = re.compile(r"https?://[^\s\x00-\x1f\x7f]{1,2040}")


def embed_link(url: str | None) -> str | None:
    return url if url and _URL.fullmatch(url) else None


def date_markup(published: str) -> str:
    """Discord's own date markup where the date parses, so readers see it in their locale."""
    try:
        parsed = datetime.fromisoformat(published.replace("Z", "+00:00"))
    except ValueError:
        return shorten(escape(published), 100)
    return f"<t:{int(parsed.timestamp())}:D>"


class Articles(commands.Cog):
    article = app_commands.Group(name="article", description="Share articles as summaries", guild_only=True)

    def __init__(self, bot: QuorumBot) -> None:
        self.bot = bot
        settings = bot.settings
        self.service = ArticleService(
            ArticleCache(bot.db),
            bot.clock,
            bot.article_workers,
            max_jobs=2 * settings.article_workers,
            allow_private=settings.allow_private_urls,
            cache_hours=settings.article_cache_hours,
            summary_api_url=settings.summary_api_url,
            summary_api_key=settings.summary_api_key,
            summary_model=settings.summary_model,
        )

    @article.command(name="share", description="Post a summary of an article for everyone")
    @app_commands.describe(url="The article's address (http or https)", channel="Post it there instead of here")
    async def share(
        self,
        interaction: discord.Interaction,
        url: app_commands.Range[str, 1, 2000],
        channel: discord.TextChannel | None = None,
    ) -> None:
        target = postable_channel(interaction, channel, what="an article")
        assert isinstance(target, discord.abc.Messageable)
        # Fetching takes seconds: answer Discord now, privately, and follow up.
        await interaction.response.defer(ephemeral=True, thinking=True)
        article = await self.service.share(url, member_id=interaction.user.id)
        message = await target.send(
            embed=article_embed(article, shared_by=interaction.user.display_name), allowed_mentions=NO_MENTIONS
        )
        log.info(
            "article %s shared in channel %s",
            article.canonical_url,
            target.id,
            extra={"guild_id": interaction.guild_id},
        )
        await interaction.followup.send(f"Shared: {message.jump_url}", ephemeral=True, allowed_mentions=NO_MENTIONS)

    @article.command(name="preview", description="See the summary privately before sharing it")
    @app_commands.describe(url="The article's address (http or https)")
    async def preview(self, interaction: discord.Interaction, url: app_commands.Range[str, 1, 2000]) -> None:
        await interaction.response.defer(ephemeral=True, thinking=True)
        article = await self.service.share(url, member_id=interaction.user.id)
        await interaction.followup.send(
            embed=article_embed(article, shared_by=interaction.user.display_name),
            ephemeral=True,
            allowed_mentions=NO_MENTIONS,
        )


async def setup(bot: QuorumBot) -> None:
    await bot.add_cog(Articles(bot))
