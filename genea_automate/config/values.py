"""Small value types of the rules file: durations, times of day, day sets."""

from __future__ import annotations

import re
from datetime import time, timedelta
from typing import Annotated
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError, available_timezones

from pydantic import BeforeValidator, PlainSerializer, WithJsonSchema

from genea_automate.config.issues import did_you_mean

_DURATION_PART = re.compile(r"(\d+(?:\.\d+)?)(ms|s|m|h|d)")
_UNIT_SECONDS = {"ms": 0.001, "s": 1, "m": 60, "h": 3600, "d": 86400}
DAY_NAMES = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")


def parse_duration(value: object) -> timedelta:
    """'90s', '5m', '1h30m', '2d', '250ms', or a number of seconds."""
    if isinstance(value, timedelta):
        return value
    if isinstance(value, bool):
        raise ValueError(f"a duration such as '5m' or '2h' is needed, got {value!r}")
    if isinstance(value, int | float):
        return timedelta(seconds=value)
    text = str(value).strip().replace(" ", "")
    parts = _DURATION_PART.findall(text)
    if not text or "".join(n + u for n, u in parts) != text:
        raise ValueError(
            f"{value!r} is not a duration; write a number with a unit, such as "
            "'30s', '5m', '2h', '1h30m' or '1d'"
        )
    return timedelta(seconds=sum(float(n) * _UNIT_SECONDS[u] for n, u in parts))


def format_duration(delta: timedelta) -> str:
    """1d2h, 45m, 30s: a duration the way rules files write it (whole seconds)."""
    days, rest = divmod(int(delta.total_seconds()), 86400)
    hours, rest = divmod(rest, 3600)
    minutes, seconds = divmod(rest, 60)
    parts = [(days, "d"), (hours, "h"), (minutes, "m"), (seconds, "s")]
    return "".join(f"{n}{unit}" for n, unit in parts if n) or "0s"


def parse_time_of_day(value: object) -> time:
    """'07:00' or '7:00' or '07:00:30' -> time; YAML-mangled values are refused."""
    if isinstance(value, time):
        return value
    if not isinstance(value, str):
        raise ValueError(
            f"a time of day such as '07:30' is needed, got {value!r}; "
            'quote times in YAML, e.g. from: "21:00"'
        )
    match = re.fullmatch(r"(\d{1,2}):(\d{2})(?::(\d{2}))?", value.strip())
    if not match:
        raise ValueError(
            f"{value!r} is not a time of day; write it as HH:MM, e.g. '07:30'"
        )
    hour, minute, second = (int(part or 0) for part in match.groups())
    if hour > 23 or minute > 59 or second > 59:
        raise ValueError(f"{value!r} is not a time of day: use 00:00 to 23:59")
    return time(hour, minute, second)


def parse_days(value: object) -> frozenset[int]:
    """'mon-fri', 'sat', 'daily', or a list of those -> weekday numbers (mon=0)."""
    items = value if isinstance(value, list) else [value]
    days: set[int] = set()
    for item in items:
        days |= _parse_day_item(item)
    return frozenset(days)


def _parse_day_item(item: object) -> set[int]:
    text = str(item).strip().lower()
    if text in _DAY_SETS:
        return set(_DAY_SETS[text])
    first, _, last = text.partition("-")
    start = _DAY_NUMBERS.get(first.strip())
    end = _DAY_NUMBERS.get(last.strip()) if last else start
    if start is None or end is None:
        raise ValueError(
            f"{item!r} is not a day or day range; use mon, tue, wed, thu, fri, sat, "
            "sun, a range such as mon-fri, weekdays, weekends or daily"
            f"{did_you_mean(text, _DAY_WORDS)}"
        )
    span = (end - start) % 7
    return {(start + offset) % 7 for offset in range(span + 1)}


_FULL_DAY_NAMES = (
    "monday",
    "tuesday",
    "wednesday",
    "thursday",
    "friday",
    "saturday",
    "sunday",
)
_DAY_NUMBERS = {
    **{name: number for number, name in enumerate(DAY_NAMES)},
    **{name: number for number, name in enumerate(_FULL_DAY_NAMES)},
}
_DAY_SETS = {
    "daily": range(7),
    "every day": range(7),
    "all": range(7),
    "weekdays": range(5),
    "weekends": range(5, 7),
}
# Everything a day item may be, for hints: a whole item is compared, so
# `weekday` finds `weekdays` and `mon-fry` finds `mon-fri`, not `mon-friday`.
_DAY_WORDS = (
    *_DAY_SETS,
    *_DAY_NUMBERS,
    *(
        f"{first}-{last}"
        for names in (DAY_NAMES, _FULL_DAY_NAMES)
        for first in names
        for last in names
        if first != last
    ),
)


def check_timezone(value: object) -> str:
    """An IANA time zone name such as 'America/New_York'."""
    name = str(value)
    try:
        ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError, OSError):  # OSError: a folder name
        hint = did_you_mean(name, sorted(available_timezones()))
        raise ValueError(
            f"unknown time zone {name!r}; use an IANA name such as "
            f"'America/New_York'{hint}"
        ) from None
    return name


Duration = Annotated[
    timedelta,
    BeforeValidator(parse_duration),
    PlainSerializer(lambda d: f"{d.total_seconds()}s", return_type=str),
    WithJsonSchema({"type": ["string", "number"], "examples": ["30s", "5m", "2h"]}),
]
TimeOfDay = Annotated[
    time,
    BeforeValidator(parse_time_of_day),
    WithJsonSchema({"type": "string", "pattern": r"^\d{1,2}:\d{2}(:\d{2})?$"}),
]
DaySet = Annotated[
    frozenset[int],
    BeforeValidator(parse_days),
    WithJsonSchema(
        {
            "anyOf": [
                {"type": "string", "examples": ["mon-fri", "sat", "daily"]},
                {"type": "array", "items": {"type": "string"}},
            ]
        }
    ),
]
TimeZoneName = Annotated[str, BeforeValidator(check_timezone)]
