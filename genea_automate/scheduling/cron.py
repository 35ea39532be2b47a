"""Cron expressions, matched against the wall clock of one time zone.

Five standard fields: minute, hour, day of month, month, day of week (0 and 7
are Sunday; `jan` and `mon` style names are allowed). When both day fields are
restricted a day matches either of them, as in Vixie cron.

Runs follow the local wall clock, so a daily rule runs once on every local
day: a time inside the hour skipped in spring runs at the first minute after
the skip, and a time inside the hour repeated in autumn runs on its first pass
only. This is written here rather than taken from APScheduler because its
CronTrigger skips the whole day when the time falls in the skipped hour
(agronholm/apscheduler#606, #1059).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from zoneinfo import ZoneInfo

from genea_automate.config.issues import did_you_mean

_MONTHS = (
    "jan",
    "feb",
    "mar",
    "apr",
    "may",
    "jun",
    "jul",
    "aug",
    "sep",
    "oct",
    "nov",
    "dec",
)
_WEEKDAYS = ("sun", "mon", "tue", "wed", "thu", "fri", "sat")
# The longest each month can be, 29 February included.
_MONTH_DAYS = (31, 29, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31)
# Far enough to reach a 29 February across a century without one (2096-2104).
SEARCH_DAYS = 366 * 9


@dataclass(frozen=True, slots=True)
class _Field:
    name: str
    low: int
    high: int
    names: tuple[str, ...] = ()

    def value(self, text: str, whole: str) -> int:
        """One number or name of this field, checked against its range."""
        if text.isdigit():
            number = int(text)
            if not self.low <= number <= self.high:
                raise ValueError(
                    f"cron {whole!r}: {self.name} {number} is not in "
                    f"{self.low}-{self.high}"
                )
            return number
        name = text.lower()
        if name in self.names:
            return self.names.index(name) + (1 if self.name == "month" else 0)
        allowed = f"{self.low}-{self.high}"
        if self.names:
            allowed += f" or {self.names[0]}-{self.names[-1]}"
        raise ValueError(
            f"cron {whole!r}: {text!r} is not a {self.name} ({allowed})"
            f"{did_you_mean(name, self.names) if self.names else ''}"
        )


_FIELDS = (
    _Field("minute", 0, 59),
    _Field("hour", 0, 23),
    _Field("day of month", 1, 31),
    _Field("month", 1, 12, _MONTHS),
    _Field("day of week", 0, 7, _WEEKDAYS),
)


@dataclass(frozen=True, slots=True)
class CronExpression:
    """A parsed cron expression; `next_after` finds its runs."""

    text: str
    minutes: tuple[int, ...]
    hours: tuple[int, ...]
    days: frozenset[int]
    months: frozenset[int]
    weekdays: frozenset[int]  # 0 is Sunday
    every_day: bool  # the day-of-month field starts with `*`
    every_weekday: bool  # the day-of-week field starts with `*`

    @classmethod
    def parse(cls, text: str) -> CronExpression:
        """Parse five fields, or raise ValueError saying which one is wrong."""
        parts = text.split()
        if len(parts) != len(_FIELDS):
            raise ValueError(
                f"cron {text!r} has {len(parts)} field(s); it needs 5: minute, "
                "hour, day of month, month, day of week, e.g. '0 10 * * 1-5'"
            )
        minutes, hours, days, months, weekdays = (
            _parse_field(part, field, text)
            for part, field in zip(parts, _FIELDS, strict=True)
        )
        expression = cls(
            text=" ".join(parts),
            minutes=tuple(sorted(minutes)),
            hours=tuple(sorted(hours)),
            days=frozenset(days),
            months=frozenset(months),
            weekdays=frozenset(day % 7 for day in weekdays),
            every_day=parts[2].startswith("*"),
            every_weekday=parts[4].startswith("*"),
        )
        expression._check_runs()
        return expression

    def _check_runs(self) -> None:
        """Refuse a day of month that none of the months has, e.g. 30 February."""
        if not self.every_weekday:
            return
        if any(
            day <= _MONTH_DAYS[month - 1] for month in self.months for day in self.days
        ):
            return
        raise ValueError(
            f"cron {self.text!r} never runs: none of its months has day "
            f"{min(self.days)}"
        )

    def matches_day(self, day: date) -> bool:
        if day.month not in self.months:
            return False
        in_month = day.day in self.days
        in_week = day.isoweekday() % 7 in self.weekdays
        if self.every_day or self.every_weekday:
            return in_month and in_week
        return in_month or in_week

    def next_after(self, after: datetime, zone: ZoneInfo) -> datetime:
        """The first run strictly after the aware time `after`, in UTC."""
        start = after.astimezone(zone).replace(tzinfo=None, second=0, microsecond=0)
        for offset in range(SEARCH_DAYS):
            day = start.date() + timedelta(days=offset)
            if not self.matches_day(day):
                continue
            for hour in self.hours:
                for minute in self.minutes:
                    wall = datetime.combine(day, time(hour, minute))
                    if wall < start:
                        continue
                    instant = wall_to_utc(wall, zone)
                    # A repeated wall time's second pass maps back to its first,
                    # which is not after `after`: so it never runs twice.
                    if instant > after:
                        return instant
        raise ValueError(f"cron {self.text!r} has no run in {SEARCH_DAYS} days")


def wall_to_utc(wall: datetime, zone: ZoneInfo) -> datetime:
    """The UTC time of a naive wall-clock time in `zone`.

    A time that occurs twice gives its first pass; a time that daylight saving
    skips gives the first minute that exists after it.
    """
    while True:
        instant = wall.replace(tzinfo=zone, fold=0).astimezone(UTC)
        if instant.astimezone(zone).replace(tzinfo=None) == wall:
            return instant
        wall += timedelta(minutes=1)


def _parse_field(text: str, field: _Field, whole: str) -> set[int]:
    values: set[int] = set()
    for item in text.split(","):
        values |= _parse_item(item, field, whole)
    return values


def _parse_item(item: str, field: _Field, whole: str) -> set[int]:
    """`*`, `5`, `1-5`, `*/15`, `1-5/2` or `5/15` (from 5 to the end)."""
    body, slash, step_text = item.partition("/")
    step = 1
    if slash:
        if not step_text.isdigit() or int(step_text) == 0:
            raise ValueError(
                f"cron {whole!r}: the step in {item!r} must be a whole number "
                "above 0, e.g. */15"
            )
        step = int(step_text)
    if body == "*":
        low, high = field.low, field.high
    elif "-" in body:
        first, _, last = body.partition("-")
        low, high = field.value(first, whole), field.value(last, whole)
        if low > high:
            raise ValueError(
                f"cron {whole!r}: the range {body!r} runs backwards; cron ranges "
                "do not wrap around, so list the two parts, e.g. 22-23,0-2"
            )
    else:
        low = field.value(body, whole)
        high = field.high if slash else low
    return set(range(low, high + 1, step))
