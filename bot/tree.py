"""Turns every error an interaction raises into an answer the member can act on."""

from __future__ import annotations

import logging
import secrets

import discord
from discord import app_commands

from .articles.fetch import FetchError
from .articles.models import ExtractError
from .articles.service import ArticleBusy
from .articles.worker import ArticleJobError
from .db import StorageUnavailable
from .markdown import drop_dangling_backslash, escape
from .polls.models import VoteRefused
from .polls.service import NotAllowed, PollLookupError
from .polls.validation import PollInputError

log = logging.getLogger("quorum.errors")

NO_MENTIONS = discord.AllowedMentions.none()
STORAGE_MESSAGE = "Quorum can't save anything right now (its storage is failing); nothing was changed. Try again later."
VOTE_NOT_STORED = "Quorum can't store votes right now; your vote was not counted. Try again in a few minutes."


class UserFacingError(Exception):
    """An error the member caused or can fix; its text is shown to them as it is."""


# Errors whose text is written for the member (domain errors never import discord, so the
# mapping to "show this to the member" lives here).
USER_ERRORS: tuple[type[Exception], ...] = (
    UserFacingError,
    PollInputError,
    PollLookupError,
    NotAllowed,
    VoteRefused,
    FetchError,
    ExtractError,
    ArticleJobError,
    ArticleBusy,
)


def user_message(error: BaseException) -> str | None:
    """The text to show for an error the member can act on, or None for a bug."""
    if isinstance(error, app_commands.CommandInvokeError):
        error = error.original
    if isinstance(error, USER_ERRORS):
        return str(error)
    if isinstance(error, StorageUnavailable):  # logged once by the database, not per member
        return STORAGE_MESSAGE
    if isinstance(error, app_commands.NoPrivateMessage):
        return "This command works in a server, not in direct messages."
    if isinstance(error, app_commands.MissingPermissions):
        missing = ", ".join(p.replace("_", " ").title() for p in error.missing_permissions)
        return f"You need the {missing} permission to do that."
    if isinstance(error, app_commands.BotMissingPermissions):
        missing = ", ".join(p.replace("_", " ").title() for p in error.missing_permissions)
        return f"I need the {missing} permission here to do that. Ask a server admin to grant it."
    if isinstance(error, app_commands.CommandOnCooldown):
        return f"Slow down: try again in {error.retry_after:.0f} s."
    if isinstance(error, app_commands.CheckFailure):
        return "You can't use this command here."
    if isinstance(error, app_commands.TransformerError):
        return f"“{drop_dangling_backslash(escape(str(error.value)[:50]))}” is not a valid value for that option."
    return None


async def send_ephemeral(interaction: discord.Interaction, content: str, **kwargs: object) -> None:
    """Reply privately whether or not the interaction was already answered or deferred."""
    if interaction.response.is_done():
        await interaction.followup.send(content, ephemeral=True, allowed_mentions=NO_MENTIONS, **kwargs)  # type: ignore[arg-type]
    else:
        await interaction.response.send_message(
            content, ephemeral=True, allowed_mentions=NO_MENTIONS, **kwargs  # type: ignore[arg-type]
        )


async def report_error(interaction: discord.Interaction, error: BaseException) -> None:
    """A short private message: what to do for the member's mistakes, a reference for bugs."""
    message = user_message(error)
    if message is None:
        reference = secrets.token_hex(4)
        original = error.original if isinstance(error, app_commands.CommandInvokeError) else error
        log.error(
            "unexpected error [ref %s] in %s by user %s in guild %s",
            reference,
            _what(interaction),
            interaction.user.id if interaction.user else None,
            interaction.guild_id,
            exc_info=original,
        )
        message = (
            f"Sorry, something went wrong on my side. It has been logged with reference "
            f"`{reference}`; please try again, and give that reference to the bot's maintainers "
            "if it keeps happening."
        )
    try:
        await send_ephemeral(interaction, message)
    except discord.HTTPException:
        log.warning("could not send the error message for %s", _what(interaction), exc_info=True)


def _what(interaction: discord.Interaction) -> str:
    if interaction.command is not None:
        return f"/{interaction.command.qualified_name}"
    data = interaction.data or {}
    return f"component {data.get('custom_id', '?')}"


class QuorumTree(app_commands.CommandTree):
    async def on_error(self, interaction: discord.Interaction, error: app_commands.AppCommandError) -> None:
        await report_error(interaction, error)
