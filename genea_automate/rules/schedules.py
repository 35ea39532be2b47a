"""Opening hours: weekly windows in local wall-clock time, with holidays.

Windows compare wall-clock times in the schedule's zone (or the event's), so a
window edge that falls in the hour skipped by daylight saving simply begins at
the first existing minute after it, and a window in the repeated hour holds for
both passes of that hour.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime, time, timedelta
from functools import lru_cache
from zoneinfo import ZoneInfo

import holidays

from genea_automate.config.rules import ScheduleConfig, WindowConfig


@dataclass(frozen=True, slots=True)
class ScheduleVerdict:
    inside: bool
    reason: str


class Schedule:
    def __init__(self, name: str, config: ScheduleConfig) -> None:
        self.name = name
        self.config = config
        self._zone = ZoneInfo(config.timezone) if config.timezone else None

    def check(self, when: datetime) -> ScheduleVerdict:
        """Whether an aware time falls in the schedule, with the reason."""
        local = when.astimezone(self._zone) if self._zone else when
        stamp = f"{local:%a %Y-%m-%d %H:%M} {local.tzname()}"
        for window in self.config.windows:
            day = _window_day(window, local)
            if day is None:
                continue
            closed = self._closed_reason(day)
            if closed:
                return ScheduleVerdict(False, f"{stamp} is in a window but {closed}")
            return ScheduleVerdict(True, f"{stamp} is inside {_describe(window)}")
        return ScheduleVerdict(False, f"{stamp} is outside {self.name}")

    def _closed_reason(self, day: date) -> str | None:
        if day in self.config.open_dates:
            return None
        if day in self.config.closed_dates:
            return f"{day} is a closed date"
        rule = self.config.except_holidays
        if rule is None:
            return None
        name = _holidays(rule.country, rule.subdiv, day.year).get(day)
        return f"{day} is a holiday ({name})" if name else None


def _window_day(window: WindowConfig, local: datetime) -> date | None:
    """The day the window belongs to if `local` is inside it, else None.

    A window running past midnight belongs to the day it starts on, so a
    Friday 22:00-02:00 window covers Saturday 01:00.
    """
    clock, today = local.time().replace(tzinfo=None), local.date()
    if window.from_ < window.to:
        inside = window.from_ <= clock < window.to
        return today if inside and today.weekday() in window.days else None
    if clock >= window.from_ and today.weekday() in window.days:
        return today
    yesterday = today - timedelta(days=1)
    if clock < window.to and yesterday.weekday() in window.days:
        return yesterday
    return None


def _describe(window: WindowConfig) -> str:
    return f"{_hhmm(window.from_)}-{_hhmm(window.to)}"


def _hhmm(value: time) -> str:
    return value.strftime("%H:%M")


@lru_cache(maxsize=64)
def _holidays(country: str, subdiv: str | None, year: int) -> holidays.HolidayBase:
    return holidays.country_holidays(country, subdiv=subdiv, years=year)
