"""How errors become the member's message (bot/tree.py)."""

from __future__ import annotations

from discord import app_commands
from markdown_oracle import assert_literal

from bot.db import StorageUnavailable
from bot.tree import STORAGE_MESSAGE, user_message


def transformer_error(value: str) -> app_commands.TransformerError:
    error = app_commands.TransformerError.__new__(app_commands.TransformerError)
    error.value = value
    return error


def test_an_invalid_option_value_is_quoted_literally():
    typed = "[Nitro](https://evil.example/a) <@&1> **x**"  # under the 50 characters quoted
    message = user_message(transformer_error(typed))
    assert message is not None
    assert_literal(message, "message", typed)


def test_a_long_invalid_value_cut_mid_escape_leaves_no_dangling_backslash():
    message = user_message(transformer_error("a" * 49 + "*"))
    assert message is not None and "\\”" not in message


def test_a_storage_failure_is_explained_not_apologised_for():
    assert user_message(StorageUnavailable("database or disk is full")) == STORAGE_MESSAGE


def test_busy_and_stopped_articles_are_told_to_the_member_as_they_are():
    from bot.articles.service import ArticleBusy
    from bot.articles.worker import ArticleJobError

    busy = "Quorum is busy with other articles right now; try again in a minute."
    assert user_message(ArticleBusy(busy)) == busy
    assert user_message(ArticleJobError("Summarising that page took longer than 15 s")) is not None
