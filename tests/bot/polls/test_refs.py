"""How members name a poll: its number, its message id or its message link."""

from __future__ import annotations

import pytest

from bot.polls.refs import PollRef, parse_poll_ref

GUILD = 123456789012345678
CHANNEL = 223456789012345678
MESSAGE = 323456789012345678


def test_plain_number_is_a_poll_number():
    assert parse_poll_ref("3") == PollRef(number=3)


def test_hash_number_is_a_poll_number():
    assert parse_poll_ref("#3") == PollRef(number=3)


def test_hash_then_space_then_number_is_a_poll_number():
    assert parse_poll_ref("# 12") == PollRef(number=12)


def test_surrounding_whitespace_is_ignored():
    assert parse_poll_ref("  #42 \n") == PollRef(number=42)


def test_message_id_is_a_message_reference():
    assert parse_poll_ref(str(MESSAGE)) == PollRef(message_id=MESSAGE)


def test_shortest_snowflake_is_a_message_id_not_a_number():
    assert parse_poll_ref("1" * 15) == PollRef(message_id=int("1" * 15))


@pytest.mark.parametrize("host", ["discord.com", "ptb.discord.com", "canary.discord.com", "discordapp.com"])
def test_message_link_gives_message_and_guild(host):
    link = f"https://{host}/channels/{GUILD}/{CHANNEL}/{MESSAGE}"
    assert parse_poll_ref(link) == PollRef(message_id=MESSAGE, guild_id=GUILD)


def test_message_link_in_angle_brackets_is_accepted():
    link = f"<https://discord.com/channels/{GUILD}/{CHANNEL}/{MESSAGE}>"
    assert parse_poll_ref(link) == PollRef(message_id=MESSAGE, guild_id=GUILD)


def test_message_link_with_trailing_slash_is_accepted():
    link = f"https://discord.com/channels/{GUILD}/{CHANNEL}/{MESSAGE}/"
    assert parse_poll_ref(link) == PollRef(message_id=MESSAGE, guild_id=GUILD)


def test_direct_message_link_has_no_guild():
    link = f"https://discord.com/channels/@me/{CHANNEL}/{MESSAGE}"
    assert parse_poll_ref(link) == PollRef(message_id=MESSAGE, guild_id=None)


@pytest.mark.parametrize(
    "text",
    [
        "",
        "   ",
        "#",
        "abc",
        "poll 3",
        "3.5",
        "-3",
        "#3a",
        "12345678901",  # too long for a poll number, too short for a snowflake
        "1" * 22,  # longer than any snowflake
        f"https://example.com/channels/{GUILD}/{CHANNEL}/{MESSAGE}",
        f"https://discord.com/channels/{GUILD}/{CHANNEL}",  # a channel link, not a message
        f"https://evil.discord.com.example/channels/{GUILD}/{CHANNEL}/{MESSAGE}",
        f"https://discord.com/channels/{GUILD}/{CHANNEL}/{MESSAGE} and more",
    ],
)
def test_garbage_is_none(text):
    assert parse_poll_ref(text) is None


# ------------------------------------------------------------------ beyond what SQLite holds

TOO_BIG = 2**63  # SQLite integers are signed 64-bit


def test_largest_storable_message_id_is_storable():
    assert parse_poll_ref(str(TOO_BIG - 1)).storable


@pytest.mark.parametrize(
    "text",
    [
        str(TOO_BIG),  # a 19-digit "message id"
        "9" * 21,
        f"https://discord.com/channels/{GUILD}/{CHANNEL}/{'9' * 26}",
        f"https://discord.com/channels/{'9' * 26}/{'9' * 26}/{'9' * 26}",
        f"#{TOO_BIG}",
        "#" + "9" * 40,
        "#" + "9" * 5000,  # past Python's int() conversion limit (4,300 digits): must not raise
        f"https://discord.com/channels/{'9' * 5000}/{'9' * 5000}/{'9' * 5000}",
    ],
)
def test_numbers_too_large_to_store_parse_but_are_not_storable(text):
    ref = parse_poll_ref(text)
    assert ref is not None and not ref.storable


def test_hash_and_any_number_of_digits_is_a_poll_number():
    assert parse_poll_ref("#1234567890123") == PollRef(number=1234567890123)
