"""The series arithmetic: the grid, lateness, catch-up after downtime, DST."""

from __future__ import annotations

from datetime import UTC, datetime
from zoneinfo import ZoneInfo

import pytest

from bot.polls.schedule import LATE_AFTER, next_start, plan_posting
from bot.polls.when import parse_when

HOUR = 3600
DAY = 24 * HOUR
WEEK = 7 * DAY
# Monday 2026-01-05 09:00 UTC
MONDAY = datetime(2026, 1, 5, 9, 0, tzinfo=UTC).timestamp()


def test_a_copy_posted_on_time_is_followed_one_interval_after_its_start():
    posting = plan_posting(MONDAY, WEEK, MONDAY + 0.8)
    assert posting.next_start == MONDAY + WEEK
    assert posting.late_by == pytest.approx(0.8)
    assert posting.passed_over == 0
    assert not posting.late


def test_a_copy_posted_late_keeps_the_series_on_its_grid():
    posting = plan_posting(MONDAY, WEEK, MONDAY + 3 * HOUR)
    assert posting.next_start == MONDAY + WEEK  # still Monday 09:00, not 12:00
    assert posting.late and posting.late_by == 3 * HOUR and posting.passed_over == 0
    assert datetime.fromtimestamp(posting.next_start, UTC).strftime("%a %H:%M") == "Mon 09:00"


def test_downtime_across_three_intervals_posts_one_copy_and_the_next_is_on_the_grid():
    start = MONDAY
    posted_at = start + 3 * DAY + 5 * HOUR  # the bot was away through three more grid times
    posting = plan_posting(start, DAY, posted_at)
    assert posting.passed_over == 3  # reported, never silently skipped
    assert posting.late_by == 3 * DAY + 5 * HOUR
    assert posting.next_start == start + 4 * DAY  # the first grid time after it was posted
    # … and from there the series goes on one interval at a time.
    again = plan_posting(posting.next_start, DAY, posting.next_start + 2)
    assert again.next_start == start + 5 * DAY and again.passed_over == 0


def test_posted_exactly_on_a_later_grid_time_the_next_is_the_one_after():
    posting = plan_posting(MONDAY, DAY, MONDAY + DAY)
    assert posting.passed_over == 1
    assert posting.next_start == MONDAY + 2 * DAY


def test_a_copy_posted_early_by_a_skewed_clock_is_still_followed_one_interval_after_its_start():
    assert plan_posting(MONDAY, DAY, MONDAY - 5).next_start == MONDAY + DAY
    assert plan_posting(MONDAY, DAY, MONDAY - 5).late_by == 0


def test_a_poll_that_does_not_repeat_has_no_next_start():
    posting = plan_posting(MONDAY, None, MONDAY + 2 * DAY)
    assert posting.next_start is None and posting.passed_over == 0 and posting.late


def test_next_start_is_always_strictly_after_posting_and_on_the_grid():
    anchor = 1_766_595_600.25
    for every in (HOUR, 5401, DAY, WEEK):
        for posted_at in (anchor, anchor + 1e-6, anchor + every - 1e-6, anchor + every, anchor + 10.5 * every):
            following = next_start(anchor, every, posted_at)
            assert following > posted_at
            assert following - every <= posted_at
            assert (following - anchor) / every == pytest.approx(round((following - anchor) / every))
    with pytest.raises(ValueError):
        next_start(anchor, 0, anchor)


def test_late_means_more_than_a_minute():
    assert not plan_posting(MONDAY, DAY, MONDAY + LATE_AFTER).late
    assert plan_posting(MONDAY, DAY, MONDAY + LATE_AFTER + 1).late


def test_a_daily_series_across_europes_spring_change_stays_at_the_same_utc_time():
    """Repeats are instants: `1d` is 24 hours. 18:00 CET on 28 March is 17:00 UTC, and so is
    every copy after: 19:00 CEST once summer time begins on the 29th."""
    now = datetime(2026, 3, 1, tzinfo=UTC).timestamp()
    first = parse_when("2026-03-28 18:00 +01:00", now=now)
    starts = [first]
    for _ in range(3):
        starts.append(plan_posting(starts[-1], DAY, starts[-1] + 1).next_start)
    berlin = ZoneInfo("Europe/Berlin")
    assert [datetime.fromtimestamp(s, UTC).strftime("%m-%d %H:%M") for s in starts] == [
        "03-28 17:00", "03-29 17:00", "03-30 17:00", "03-31 17:00",
    ]
    assert [datetime.fromtimestamp(s, berlin).strftime("%H:%M %z") for s in starts] == [
        "18:00 +0100", "19:00 +0200", "19:00 +0200", "19:00 +0200",
    ]
    # The second copy is the instant "2026-03-29 19:00 +02:00" names.
    assert starts[1] == parse_when("2026-03-29 19:00 +02:00", now=now)


def test_a_weekly_series_across_the_autumn_change_and_a_us_offset():
    now = datetime(2026, 10, 1, tzinfo=UTC).timestamp()
    first = parse_when("2026-10-24 18:00 +02:00", now=now)  # Saturday, CEST
    second = plan_posting(first, WEEK, first).next_start
    assert datetime.fromtimestamp(second, ZoneInfo("Europe/Berlin")).strftime("%a %H:%M %z") == "Sat 17:00 +0100"
    # New York changes on 1 November: -04:00 before, -05:00 after.
    ny_first = parse_when("2026-10-31 09:00 -04:00", now=now)
    ny_second = plan_posting(ny_first, DAY, ny_first).next_start
    assert ny_second == parse_when("2026-11-01 08:00 -05:00", now=now)
