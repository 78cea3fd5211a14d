"""Spark's text grammar for dates and timestamps, where Spark cannot be the oracle in a test."""

from __future__ import annotations

from datetime import date, datetime, timedelta, timezone
from zoneinfo import ZoneInfo

import pytest

from spark_flow._datetime_text import date_of, days_of, instant_of


def test_a_time_of_day_alone_is_today_in_the_zone_as_spark_reads_it() -> None:
    zone = ZoneInfo("Pacific/Kiritimati")  # UTC+14: its today is rarely the machine's
    before = datetime.now(zone).date()
    read = [instant_of("timestamp", "Pacific/Kiritimati", t) for t in ("10:20", "T10:20:30.5")]
    after = datetime.now(zone).date()

    assert {r.date() for r in read} <= {before, after}
    assert [r.timetz() for r in read] == [
        datetime(2024, 1, 1, 10, 20, tzinfo=zone).timetz(),
        datetime(2024, 1, 1, 10, 20, 30, 500000, tzinfo=zone).timetz(),
    ]
    with pytest.raises(ValueError, match="10:20"):  # a wall time needs its date
        instant_of("timestamp_ntz", "UTC", "10:20")


@pytest.mark.parametrize(
    ("token", "offset"),
    [("Z", 0), ("+5", 5 * 60), ("-05:30", -330), ("+0530", 330), ("UTC+1", 60), ("GMT", 0),
     (" EST", -300), ("+01:02:03", 62)],
)  # fmt: skip
def test_zones_spelled_as_java_spells_them(token: str, offset: int) -> None:
    read = instant_of("timestamp", "Asia/Tokyo", f"2024-01-02 10:00:00{token}")

    assert read.utcoffset() is not None
    assert read.utcoffset() // timedelta(minutes=1) == offset  # type: ignore[operator]


def test_json_days_since_the_epoch_and_the_dates_python_cannot_hold() -> None:
    assert days_of("19000") == date(2022, 1, 8)
    assert days_of("-3") == date(1969, 12, 29)
    # Not whole, before the Gregorian calendar, or past the year 9999 (as 20240102 days are).
    for token in ("1e3", "12.0", "-200000", "20240102", "2932897"):
        with pytest.raises(ValueError, match=token):
            days_of(token)
    with pytest.raises(ValueError, match="out of range"):  # Spark reads year 12024
        date_of("12024-01-02")
    assert instant_of("timestamp", "UTC", "2024-01-02") == datetime(2024, 1, 2, tzinfo=timezone.utc)
