"""Schedules in the event's local time: days, midnight, holidays, dates."""

from __future__ import annotations

from datetime import datetime
from typing import Any
from zoneinfo import ZoneInfo

import pytest

from genea_automate.config.rules import ScheduleConfig
from genea_automate.rules.schedules import Schedule


def schedule(**config: Any) -> Schedule:
    return Schedule("test", ScheduleConfig.model_validate(config))


def at(utc: str, zone: str) -> datetime:
    return datetime.fromisoformat(utc.replace("Z", "+00:00")).astimezone(ZoneInfo(zone))


def test_schedule_uses_local_weekday_not_utc() -> None:
    weekdays = schedule(windows=[{"days": "mon-fri", "from": "07:00", "to": "10:00"}])
    # Monday 08:15 in Auckland is still Sunday in UTC.
    verdict = weekdays.check(at("2024-03-03T19:15:00Z", "Pacific/Auckland"))
    assert verdict.inside, verdict.reason
    assert "Mon 2024-03-04 08:15" in verdict.reason


@pytest.mark.parametrize(
    ("utc", "inside"),
    [
        ("2024-03-06T04:25:00Z", True),  # 23:25 Tuesday
        ("2024-03-06T08:30:00Z", True),  # 03:30 Wednesday
        ("2024-03-06T01:00:00Z", False),  # 20:00 Tuesday
        ("2024-03-06T09:30:00Z", False),  # 04:30 Wednesday
    ],
    ids=["before-midnight", "after-midnight", "too-early", "too-late"],
)
def test_schedule_window_across_midnight(utc: str, inside: bool) -> None:
    night = schedule(windows=[{"from": "21:00", "to": "04:00"}])
    assert night.check(at(utc, "America/New_York")).inside is inside


def test_schedule_night_window_belongs_to_the_day_it_starts() -> None:
    friday_night = schedule(windows=[{"days": "fri", "from": "22:00", "to": "02:00"}])
    saturday_1am = datetime(2024, 3, 9, 1, 0, tzinfo=ZoneInfo("Europe/Paris"))
    sunday_1am = datetime(2024, 3, 10, 1, 0, tzinfo=ZoneInfo("Europe/Paris"))
    friday_1am = datetime(2024, 3, 8, 1, 0, tzinfo=ZoneInfo("Europe/Paris"))
    assert friday_night.check(saturday_1am).inside
    assert not friday_night.check(sunday_1am).inside
    assert not friday_night.check(friday_1am).inside


def test_schedule_public_holiday_is_closed() -> None:
    office = schedule(
        windows=[{"days": "mon-fri", "from": "07:00", "to": "19:00"}],
        except_holidays={"country": "US", "subdiv": "GA"},
    )
    independence_day = datetime(2024, 7, 4, 9, 0, tzinfo=ZoneInfo("America/New_York"))
    verdict = office.check(independence_day)
    assert not verdict.inside
    assert "holiday (Independence Day)" in verdict.reason


def test_schedule_closed_and_open_dates() -> None:
    office = schedule(
        windows=[{"days": "mon-fri", "from": "07:00", "to": "19:00"}],
        except_holidays="US",
        closed_dates=["2024-03-05"],
        open_dates=["2024-07-04"],
    )
    zone = ZoneInfo("America/New_York")
    assert not office.check(datetime(2024, 3, 5, 9, tzinfo=zone)).inside
    assert office.check(datetime(2024, 7, 4, 9, tzinfo=zone)).inside


def test_schedule_own_timezone_overrides_the_event_zone() -> None:
    tokyo_mornings = schedule(
        windows=[{"from": "09:00", "to": "12:00"}], timezone="Asia/Tokyo"
    )
    # 01:30 UTC is 10:30 in Tokyo, whatever zone the event came in.
    assert tokyo_mornings.check(at("2024-03-06T01:30:00Z", "America/New_York")).inside


def test_schedule_window_edge_in_skipped_dst_hour() -> None:
    # 2024-03-10 02:00-03:00 does not exist in New York; a window opening at
    # 02:30 is open from 03:00 local (07:00 UTC) that day.
    early = schedule(windows=[{"from": "02:30", "to": "05:00"}])
    assert early.check(at("2024-03-10T07:00:00Z", "America/New_York")).inside
    assert not early.check(at("2024-03-10T06:59:00Z", "America/New_York")).inside
