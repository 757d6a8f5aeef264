"""The 5-field cron matcher behind availability windows."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone

import pytest

from fabnet.core.cron import CronExpr, window_open
from fabnet.core.machines import MachinePolicy
from fabnet.errors import InvalidInput

# 2024-05-06 is a Monday
MON_19 = datetime(2024, 5, 6, 19, 30, tzinfo=UTC)


def test_evening_weekday_window() -> None:
    w = CronExpr.parse("* 18-23 * * 1-5")
    assert w.matches(MON_19)
    assert not w.matches(MON_19.replace(hour=17, minute=59))
    assert not w.matches(MON_19 + timedelta(days=5))  # Saturday
    assert w.matches(MON_19 + timedelta(days=4))  # Friday


def test_lists_steps_ranges_and_names() -> None:
    w = CronExpr.parse("0,30 */6 1-10/3 jan-jun sun")
    assert w.minutes == {0, 30}
    assert w.hours == {0, 6, 12, 18}
    assert w.days == {1, 4, 7, 10}
    assert w.months == {1, 2, 3, 4, 5, 6}
    assert w.weekdays == {0}
    assert CronExpr.parse("5/20 * * * *").minutes == {5, 25, 45}
    assert CronExpr.parse("* * * * 7").weekdays == {0}


def test_day_of_month_or_day_of_week_when_both_restricted() -> None:
    w = CronExpr.parse("* * 13 * 5")  # the 13th, or any Friday
    assert w.matches(datetime(2024, 5, 13, 0, 0, tzinfo=UTC))  # a Monday the 13th
    assert w.matches(datetime(2024, 5, 10, 0, 0, tzinfo=UTC))  # a Friday
    assert not w.matches(datetime(2024, 5, 14, 0, 0, tzinfo=UTC))


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("* * * *", "5 fields"),
        ("60 * * * *", "minute must be 0..59, got 60"),
        ("* 24 * * *", "hour must be 0..23"),
        ("* * 0 * *", "day of month must be 1..31"),
        ("* * * 13 *", "month must be 1..12"),
        ("* * * * 8", "day of week must be 0..7"),
        ("*/0 * * * *", "step must be >= 1"),
        ("5-1 * * * *", "runs backwards"),
        ("x * * * *", "not a number"),
    ],
)
def test_bad_expressions_name_field_and_value(text: str, message: str) -> None:
    with pytest.raises(InvalidInput, match=message):
        CronExpr.parse(text)


def test_windows_in_makers_time_zone() -> None:
    plus2 = timezone(timedelta(hours=2))
    policy = MachinePolicy(windows=(CronExpr.parse("* 18-23 * * *"),), tz=plus2)
    assert policy.available(datetime(2024, 5, 6, 17, 0, tzinfo=UTC))  # 19:00 local
    assert not policy.available(datetime(2024, 5, 6, 22, 0, tzinfo=UTC))  # 00:00 local
    assert window_open((), MON_19)
