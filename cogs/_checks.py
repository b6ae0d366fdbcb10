"""Checks shared by the cogs that post in a channel for a member."""

from __future__ import annotations

import discord

from bot.tree import UserFacingError

# What the bot needs where it posts: the poll or article embed, the results chart, and the
# reply to the poll (which needs the history).
BOT_CHANNEL_PERMISSIONS = ("view_channel", "send_messages", "embed_links", "attach_files", "read_message_history")


def postable_channel(
    interaction: discord.Interaction,
    channel: discord.abc.GuildChannel | None,
    *,
    what: str,
    needs: tuple[str, ...] = BOT_CHANNEL_PERMISSIONS,
) -> discord.abc.GuildChannel:
    """The channel to post `what` in (the option, else the current one), if both the member
    and the bot may post there (the bot with the permissions `needs`: polls and articles
    attach a chart or an image, a feed's posts attach nothing); otherwise an error saying
    which of them can't and why."""
    assert interaction.guild is not None
    target = channel or interaction.channel
    if not isinstance(target, discord.abc.GuildChannel) or not isinstance(target, discord.abc.Messageable):
        raise UserFacingError(f"I can only post {what} in a server's text channel.")
    member = interaction.user
    if isinstance(member, discord.Member):
        mine = target.permissions_for(member)
        if not (mine.view_channel and mine.send_messages):
            raise UserFacingError(f"You can't send messages in {target.mention}, so you can't post {what} there.")
    theirs = target.permissions_for(interaction.guild.me)
    missing = [p for p in needs if not getattr(theirs, p)]
    if missing:
        names = ", ".join(p.replace("_", " ").title() for p in missing)
        raise UserFacingError(
            f"I can't post {what} in {target.mention}: I need the {names} permission there. "
            "Ask a server admin to grant it, or pick another channel."
        )
    return target
