"""`parse_when`: what a moderator may type for `starts`, and what is refused."""

from __future__ import annotations

from datetime import UTC, datetime
from zoneinfo import ZoneInfo

import pytest

from bot.polls.validation import PollInputError
from bot.polls.when import MAX_AHEAD, parse_when

# 2026-03-01 12:00 UTC: before Europe's change to summer time (29 March, 01:00 UTC).
NOW = datetime(2026, 3, 1, 12, 0, tzinfo=UTC).timestamp()


def utc(*args: int) -> float:
    return datetime(*args, tzinfo=UTC).timestamp()


@pytest.mark.parametrize(
    ("text", "seconds"),
    [("2h", 7200), ("1d", 86400), ("1h30m", 5400), ("  45m ", 2700), ("1w", 604800), ("90 minutes", 5400)],
)
def test_durations_count_from_now(text, seconds):
    assert parse_when(text, now=NOW) == NOW + seconds


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("2026-12-24 18:00 +01:00", utc(2026, 12, 24, 17, 0)),
        ("2026-12-24T18:00+01:00", utc(2026, 12, 24, 17, 0)),
        ("2026-12-24 18:00 -05:00", utc(2026, 12, 24, 23, 0)),
        ("2026-12-24 18:00:30 +0530", utc(2026, 12, 24, 12, 30, 30)),
        ("2026-12-24T18:00Z", utc(2026, 12, 24, 18, 0)),
        ("2026-12-24 18:00 UTC", utc(2026, 12, 24, 18, 0)),
        ("2026-12-24 18:00 utc", utc(2026, 12, 24, 18, 0)),
        ("2026-12-24 18:00 GMT", utc(2026, 12, 24, 18, 0)),
        ("2026-12-24 18:00 +00:00", utc(2026, 12, 24, 18, 0)),
    ],
)
def test_iso_times_with_an_offset_are_instants(text, expected):
    assert parse_when(text, now=NOW) == expected


@pytest.mark.parametrize("style", ["", ":t", ":T", ":d", ":D", ":f", ":F", ":R"])
def test_discord_timestamps_with_or_without_a_style(style):
    # 2026-12-24 17:00 UTC
    assert parse_when(f"<t:1798131600{style}>", now=NOW) == 1798131600.0


def test_offsets_on_either_side_of_a_daylight_saving_change_name_the_instants_they_say():
    # Central Europe: +01:00 until 29 March 2026 01:00 UTC, +02:00 after.
    before = parse_when("2026-03-28 18:00 +01:00", now=NOW)
    after = parse_when("2026-03-29 19:00 +02:00", now=NOW)
    assert before == utc(2026, 3, 28, 17, 0)
    assert after == utc(2026, 3, 29, 17, 0)
    assert after - before == 24 * 3600  # a day apart, as 18:00 CET and 19:00 CEST are
    berlin = ZoneInfo("Europe/Berlin")
    assert datetime.fromtimestamp(before, berlin).hour == 18
    assert datetime.fromtimestamp(after, berlin).hour == 19
    # The same wall time with the offset that no longer applies is still that offset's instant.
    assert parse_when("2026-03-29 18:00 +01:00", now=NOW) == after


@pytest.mark.parametrize(
    ("text", "expect"),
    [
        ("2026-12-24 18:00", "no UTC offset"),
        ("2026-12-24T18:00", "no UTC offset"),
        ("18:00", "not a start time I understand"),  # a clock time is never read as eighteen minutes
        ("tomorrow evening", "not a start time I understand"),
        ("soon", "not a start time I understand"),
        ("<t:abc>", "not a start time I understand"),
        ("<t:1766595600:X>", "not a start time I understand"),
        ("", "can't read"),
        ("   ", "can't read"),
        ("1" * 61, "can't read"),
        ("x" * 100_000, "can't read"),
    ],
)
def test_refusals_say_what_to_type(text, expect):
    with pytest.raises(PollInputError) as error:
        parse_when(text, now=NOW)
    assert expect in str(error.value)
    assert "2026-12-24 18:00 +01:00" in str(error.value) or "<t:" in str(error.value) or "at most" in str(error.value)


def test_a_time_in_the_past_or_now_is_refused():
    for text in ("2026-02-28 12:00 +00:00", "<t:1000>", f"<t:{int(NOW)}>", "0m"):
        with pytest.raises(PollInputError, match="already passed"):
            parse_when(text, now=NOW)


def test_at_most_a_year_ahead():
    assert parse_when(f"<t:{int(NOW + MAX_AHEAD)}>", now=NOW) == NOW + MAX_AHEAD
    for text in (f"<t:{int(NOW + MAX_AHEAD + 1)}>", "2028-01-01 00:00 +00:00", "400d", "<t:999999999999>"):
        with pytest.raises(PollInputError, match="at most a year ahead"):
            parse_when(text, now=NOW)


def test_garbage_inside_an_offset_form_is_refused_with_the_text_escaped():
    with pytest.raises(PollInputError) as error:
        parse_when("2026-13-45 18:00 +01:00", now=NOW)
    assert "not a start time I understand" in str(error.value)
    with pytest.raises(PollInputError) as error:
        parse_when("**bold** 1:2", now=NOW)
    assert "\\*\\*bold\\*\\*" in str(error.value)
