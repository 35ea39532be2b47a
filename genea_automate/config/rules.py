"""The `schedules` and `rules` sections: triggers, conditions and steps."""

from __future__ import annotations

from datetime import date, time, timedelta
from typing import Any, Literal

from pydantic import Field, field_validator, model_validator

from genea_automate.config.endpoints import FrozenModel
from genea_automate.config.values import DaySet, Duration, TimeOfDay, TimeZoneName
from genea_automate.rules.templates import TemplateStr

ALL_DAYS = frozenset(range(7))
FirstArrivalScope = Literal["location", "door", "user", "user_at_location"]


def _as_list(value: Any) -> Any:
    return [value] if isinstance(value, str) else value


class WhenConfig(FrozenModel):
    """The trigger: event kind patterns and simple filters (name or uuid)."""

    event: list[str] = Field(min_length=1)
    location: list[str] | None = None
    door: list[str] | None = None
    actor: list[str] | None = None
    card_type: list[str] | None = None

    @model_validator(mode="before")
    @classmethod
    def _short_form(cls, value: Any) -> Any:
        if isinstance(value, str | list):
            return {"event": value}
        return value

    @field_validator("event", "location", "door", "actor", "card_type", mode="before")
    @classmethod
    def _one_or_many(cls, value: Any) -> Any:
        return _as_list(value)


class FirstArrivalConfig(FrozenModel):
    """True for the first arrival of the day in a scope."""

    scope: FirstArrivalScope = "location"
    day_starts_at: TimeOfDay = time(0, 0)
    kinds: list[str] = ["access.granted"]

    @model_validator(mode="before")
    @classmethod
    def _short_form(cls, value: Any) -> Any:
        return {"scope": value} if isinstance(value, str) else value

    @field_validator("kinds", mode="before")
    @classmethod
    def _one_or_many(cls, value: Any) -> Any:
        return _as_list(value)


class WindowConfig(FrozenModel):
    """A weekly time window; `to` before `from` runs past midnight."""

    days: DaySet = ALL_DAYS
    from_: TimeOfDay = Field(alias="from")
    to: TimeOfDay

    @model_validator(mode="after")
    def _not_empty(self) -> WindowConfig:
        if self.from_ == self.to:
            raise ValueError(
                f"window from and to are both {self.to:%H:%M}; for a whole day "
                "write from: \"00:00\" and to: \"23:59:59\""
            )
        return self


class HolidaysConfig(FrozenModel):
    country: str
    subdiv: str | None = None

    @model_validator(mode="before")
    @classmethod
    def _short_form(cls, value: Any) -> Any:
        return {"country": value} if isinstance(value, str) else value


class ScheduleConfig(FrozenModel):
    """Named or inline opening hours, in the event's local time by default."""

    windows: list[WindowConfig] = Field(min_length=1)
    timezone: TimeZoneName | None = None
    except_holidays: HolidaysConfig | None = None
    closed_dates: list[date] = []
    open_dates: list[date] = []


class ConditionConfig(FrozenModel):
    """One condition of a rule's `if` list: exactly one of these keys."""

    first_arrival: FirstArrivalConfig | None = None
    schedule: str | ScheduleConfig | None = None
    template: TemplateStr | None = None
    any: list[ConditionConfig] | None = None
    all: list[ConditionConfig] | None = None
    not_: ConditionConfig | None = Field(default=None, alias="not")

    @model_validator(mode="after")
    def _exactly_one(self) -> ConditionConfig:
        given = [name for name in _CONDITION_KEYS if getattr(self, name) is not None]
        if len(given) != 1:
            keys = ", ".join(_CONDITION_NAMES[n] for n in _CONDITION_KEYS)
            found = ", ".join(_CONDITION_NAMES[n] for n in given) or "none"
            raise ValueError(
                f"a condition has exactly one of: {keys}; found {found}. "
                "Write each condition as its own list item"
            )
        return self

    @property
    def name(self) -> str:
        return next(_CONDITION_NAMES[n] for n in _CONDITION_KEYS if getattr(self, n))


_CONDITION_KEYS = ("first_arrival", "schedule", "template", "any", "all", "not_")
_CONDITION_NAMES = {name: name.rstrip("_") for name in _CONDITION_KEYS}


class RetryConfig(FrozenModel):
    """How often and how patiently a failed action is tried again."""

    attempts: int = Field(default=10, ge=1, le=1000)
    backoff: Duration = timedelta(seconds=2)
    max_backoff: Duration = timedelta(minutes=5)


class StepOptions(FrozenModel):
    """Options every action step accepts besides its own."""

    timeout: Duration = timedelta(seconds=10)
    retry: RetryConfig = RetryConfig()
    continue_on_error: bool = False


class RuleConfig(FrozenModel):
    id: str = Field(pattern=r"^[A-Za-z0-9][A-Za-z0-9_.-]*$")
    description: str | None = None
    enabled: bool = True
    max_event_age: Duration | None = None
    when: WhenConfig
    if_: list[ConditionConfig] = Field(default=[], alias="if")
    then: list[Any] = Field(min_length=1)
