"""Cron expressions on the local wall clock, daylight saving included."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest

from genea_automate.scheduling.cron import CronExpression

CHICAGO = ZoneInfo("America/Chicago")
NEW_YORK = ZoneInfo("America/New_York")
SANTIAGO = ZoneInfo("America/Santiago")


def runs(text: str, zone: ZoneInfo, start: datetime, until: datetime) -> list[datetime]:
    """Every run after `start` up to `until`, in local time."""
    cron, found = CronExpression.parse(text), []
    due = cron.next_after(start, zone)
    while due <= until:
        found.append(due.astimezone(zone))
        due = cron.next_after(due, zone)
    return found


def test_cron_weekdays_in_chicago_never_on_saturday() -> None:
    saturday = datetime(2024, 3, 2, 12, 0, tzinfo=CHICAGO)
    found = runs("0 8 * * 1-5", CHICAGO, saturday, saturday + timedelta(days=9))
    assert [(d.date().isoformat(), d.strftime("%a %H:%M")) for d in found] == [
        ("2024-03-04", "Mon 08:00"),
        ("2024-03-05", "Tue 08:00"),
        ("2024-03-06", "Wed 08:00"),
        ("2024-03-07", "Thu 08:00"),
        ("2024-03-08", "Fri 08:00"),
        ("2024-03-11", "Mon 08:00"),
    ]
    # Daylight saving began on Sunday 10 March: 08:00 moved from 14:00Z to 13:00Z.
    assert [d.astimezone(UTC).hour for d in found] == [14] * 5 + [13]


@pytest.mark.parametrize("month", [3, 11], ids=["march", "november"])
def test_cron_daily_runs_once_every_local_day(month: int) -> None:
    start = datetime(2024, month, 1, tzinfo=NEW_YORK) - timedelta(seconds=1)
    end = datetime(2024, month + 1, 1, tzinfo=NEW_YORK) - timedelta(seconds=1)
    found = runs("30 0 * * *", NEW_YORK, start, end)
    days = [d.date() for d in found]
    assert days == sorted(set(days))
    assert len(days) == (31 if month == 3 else 30)
    assert {d.strftime("%H:%M") for d in found} == {"00:30"}


def test_cron_repeated_hour_runs_on_its_first_pass_only() -> None:
    # 2024-11-03: New York's clocks went back from 02:00 EDT to 01:00 EST.
    found = runs(
        "30 1 * * *",
        NEW_YORK,
        datetime(2024, 11, 2, 12, tzinfo=UTC),
        datetime(2024, 11, 4, 12, tzinfo=UTC),
    )
    assert [d.isoformat() for d in found] == [
        "2024-11-03T01:30:00-04:00",
        "2024-11-04T01:30:00-05:00",
    ]


def test_cron_skipped_hour_runs_at_the_first_minute_after_it() -> None:
    # 2024-03-10: New York's clocks went from 02:00 EST straight to 03:00 EDT.
    found = runs(
        "30 2 * * *",
        NEW_YORK,
        datetime(2024, 3, 9, 12, tzinfo=UTC),
        datetime(2024, 3, 11, 12, tzinfo=UTC),
    )
    assert [d.isoformat() for d in found] == [
        "2024-03-10T03:00:00-04:00",
        "2024-03-11T02:30:00-04:00",
    ]


def test_cron_skipped_hour_runs_every_missing_time_once() -> None:
    found = runs(
        "*/20 2-3 * * *",
        NEW_YORK,
        datetime(2024, 3, 10, 5, tzinfo=UTC),
        datetime(2024, 3, 10, 9, tzinfo=UTC),
    )
    assert [d.strftime("%H:%M") for d in found] == ["03:00", "03:20", "03:40"]


def test_cron_midnight_transitions_keep_one_run_a_day() -> None:
    # Santiago moves its clocks at midnight: 2024-09-08 has no 00:00-00:59,
    # and 2024-04-06 has 23:00-23:59 twice.
    spring = runs(
        "30 0 * * *",
        SANTIAGO,
        datetime(2024, 9, 7, tzinfo=UTC),
        datetime(2024, 9, 9, 12, tzinfo=UTC),
    )
    autumn = runs(
        "30 23 * * *",
        SANTIAGO,
        datetime(2024, 4, 5, 12, tzinfo=UTC),
        datetime(2024, 4, 7, 12, tzinfo=UTC),
    )
    assert [d.isoformat() for d in spring] == [
        "2024-09-07T00:30:00-04:00",
        "2024-09-08T01:00:00-03:00",
        "2024-09-09T00:30:00-03:00",
    ]
    assert [d.date() for d in autumn] == [date(2024, 4, 5), date(2024, 4, 6)]


@pytest.mark.parametrize(
    ("text", "days"),
    [
        ("0 9 * * 0", ["03 Sun", "10 Sun"]),
        ("0 9 * * 7", ["03 Sun", "10 Sun"]),
        ("0 9 * * sat,sun", ["02 Sat", "03 Sun", "09 Sat", "10 Sun"]),
        ("0 9 1,15 * mon", ["01 Fri", "04 Mon", "11 Mon", "15 Fri"]),
        ("0 9 */10 * *", ["01 Fri", "11 Mon"]),
        ("0 9 */10 * mon", ["11 Mon"]),  # a field starting with * needs both
    ],
    ids=[
        "zero-sunday",
        "seven-sunday",
        "names",
        "either-day-field",
        "step",
        "step-and-weekday",
    ],
)
def test_cron_day_fields(text: str, days: list[str]) -> None:
    start = datetime(2024, 3, 1, tzinfo=UTC)  # a Friday
    found = runs(text, ZoneInfo("UTC"), start, start + timedelta(days=15))
    assert [d.strftime("%d %a") for d in found] == days


@pytest.mark.parametrize(
    ("text", "message"),
    [
        (
            "0 8 * *",
            "cron '0 8 * *' has 4 field(s); it needs 5: minute, hour, day "
            "of month, month, day of week, e.g. '0 10 * * 1-5'",
        ),
        ("0 24 * * *", "cron '0 24 * * *': hour 24 is not in 0-23"),
        (
            "0 8 * * mon-fry",
            "cron '0 8 * * mon-fry': 'fry' is not a day of week "
            "(0-7 or sun-sat) (did you mean 'fri'?)",
        ),
        (
            "0 8 * jnu *",
            "cron '0 8 * jnu *': 'jnu' is not a month (1-12 or "
            "jan-dec) (did you mean 'jun'?)",
        ),
        (
            "*/0 8 * * *",
            "cron '*/0 8 * * *': the step in '*/0' must be a whole "
            "number above 0, e.g. */15",
        ),
        (
            "0 22-2 * * *",
            "cron '0 22-2 * * *': the range '22-2' runs backwards; "
            "cron ranges do not wrap around, so list the two parts, "
            "e.g. 22-23,0-2",
        ),
        ("0 0 30 2 *", "cron '0 0 30 2 *' never runs: none of its months has day 30"),
    ],
    ids=[
        "fields",
        "range",
        "day-name",
        "month-name",
        "zero-step",
        "backwards",
        "never",
    ],
)
def test_cron_parse_errors(text: str, message: str) -> None:
    with pytest.raises(ValueError) as raised:
        CronExpression.parse(text)
    assert str(raised.value) == message
