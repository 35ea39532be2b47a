"""The `schedules` and `rules` sections: triggers, conditions and steps."""

from __future__ import annotations

import re
from datetime import date, time, timedelta
from typing import Annotated, Any, ClassVar, Literal

from pydantic import (
    AfterValidator,
    BeforeValidator,
    Field,
    GetJsonSchemaHandler,
    WithJsonSchema,
    field_validator,
    model_validator,
)
from pydantic.json_schema import JsonSchemaValue
from pydantic_core import CoreSchema

from genea_automate.config.endpoints import FrozenModel
from genea_automate.config.match import MatchConfig
from genea_automate.config.values import DaySet, Duration, TimeOfDay, TimeZoneName
from genea_automate.rules.templates import TemplateStr
from genea_automate.scheduling.cron import CronExpression

ALL_DAYS = frozenset(range(7))
FirstArrivalScope = Literal["location", "door", "user", "user_at_location"]


def _as_list(value: Any) -> Any:
    return [value] if isinstance(value, str) else value


_TEXT_OR_LIST = {
    "anyOf": [{"type": "string"}, {"type": "array", "items": {"type": "string"}}]
}
OneOrMany = Annotated[
    list[str], BeforeValidator(_as_list), WithJsonSchema(_TEXT_OR_LIST)
]


class ShortFormModel(FrozenModel):
    """A model that may also be written as a scalar, e.g. `first_arrival: door`.

    `short_form` names the key the scalar stands for; the JSON Schema allows the
    scalar too, so editors do not mark the short form as wrong.
    """

    short_form: ClassVar[str]
    short_form_schema: ClassVar[dict[str, Any]] = {"type": "string"}

    @model_validator(mode="before")
    @classmethod
    def _expand_short_form(cls, value: Any) -> Any:
        if isinstance(value, dict):
            return value
        return {cls.short_form: value}

    @classmethod
    def __get_pydantic_json_schema__(
        cls, core_schema: CoreSchema, handler: GetJsonSchemaHandler
    ) -> JsonSchemaValue:
        full = handler.resolve_ref_schema(handler(core_schema))
        return {"anyOf": [cls.short_form_schema, full]}


class WhenConfig(ShortFormModel):
    """The trigger: event kind patterns and simple filters (name or uuid)."""

    short_form = "event"
    short_form_schema = _TEXT_OR_LIST

    event: OneOrMany = Field(min_length=1)
    location: OneOrMany | None = None
    door: OneOrMany | None = None
    actor: OneOrMany | None = None
    card_type: OneOrMany | None = None


class FirstArrivalConfig(ShortFormModel):
    """True for the first arrival of the day in a scope."""

    short_form = "scope"

    scope: FirstArrivalScope = "location"
    day_starts_at: TimeOfDay = time(0, 0)
    kinds: OneOrMany = ["access.granted"]


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
                'write from: "00:00" and to: "23:59:59"'
            )
        return self


class HolidaysConfig(ShortFormModel):
    short_form = "country"

    country: str
    subdiv: str | None = None


class ScheduleConfig(FrozenModel):
    """Named or inline opening hours, in the event's local time by default."""

    windows: list[WindowConfig] = Field(min_length=1)
    timezone: TimeZoneName | None = None
    except_holidays: HolidaysConfig | None = None
    closed_dates: list[date] = []
    open_dates: list[date] = []


KeyScope = Literal["door", "user", "location", "card", "none"]


def _positive(value: timedelta) -> timedelta:
    if value <= timedelta(0):
        raise ValueError("the duration must be longer than 0s, e.g. '5m'")
    return value


PositiveDuration = Annotated[Duration, AfterValidator(_positive)]


class CountConfig(FrozenModel):
    """At least `at_least` counted events within `within`, per key.

    `kinds` defaults to the events the rule's `when` takes.
    """

    at_least: int = Field(ge=1)
    within: PositiveDuration
    per: KeyScope = "none"
    kinds: OneOrMany | None = None


class CooldownConfig(ShortFormModel):
    """The rule fires at most once per `for`, per key."""

    short_form = "for"
    short_form_schema = {"type": ["string", "number"]}

    for_: PositiveDuration = Field(alias="for")
    per: KeyScope = "none"


class ArrivedTodayConfig(ShortFormModel):
    """Someone has arrived at a location (name or uuid) today."""

    short_form = "location"

    location: str
    day_starts_at: TimeOfDay = time(0, 0)
    kinds: OneOrMany = ["access.granted"]


class ConditionConfig(FrozenModel):
    """One condition of a rule's `if` list: exactly one of these keys."""

    first_arrival: FirstArrivalConfig | None = None
    schedule: str | ScheduleConfig | None = None
    count: CountConfig | None = None
    cooldown: CooldownConfig | None = None
    match: MatchConfig | None = None
    arrived_today: ArrivedTodayConfig | None = None
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


_CONDITION_KEYS = (
    "first_arrival",
    "schedule",
    "count",
    "cooldown",
    "match",
    "arrived_today",
    "template",
    "any",
    "all",
    "not_",
)
_CONDITION_NAMES = {name: name.rstrip("_") for name in _CONDITION_KEYS}


class RetryConfig(FrozenModel):
    """How often and how patiently a failed action is tried again."""

    # About an hour of retries, so a broker or Slack outage is waited out.
    attempts: int = Field(default=20, ge=1, le=1000)
    backoff: Duration = timedelta(seconds=2)
    max_backoff: Duration = timedelta(minutes=5)


class StepOptions(FrozenModel):
    """Options every action step accepts besides its own."""

    timeout: Duration = timedelta(seconds=10)
    retry: RetryConfig = RetryConfig()
    continue_on_error: bool = False
    # Later than this after the event, the action goes to the dead letters
    # instead: a door strike or coffee machine must not act hours late.
    not_after: Duration | None = None


class WaitForConfig(FrozenModel):
    """A `wait_for` step: wait up to `timeout` for a later event of `event`."""

    event: OneOrMany = Field(min_length=1)
    same: KeyScope = "none"
    timeout: PositiveDuration


def _check_cron(value: str) -> str:
    return CronExpression.parse(value).text


CronStr = Annotated[
    str,
    AfterValidator(_check_cron),
    WithJsonSchema({"type": "string", "examples": ["0 10 * * 1-5", "30 0 * * *"]}),
]


class CronWhenConfig(FrozenModel):
    """A timed rule's trigger: cron on the wall clock of `timezone`."""

    cron: CronStr
    timezone: TimeZoneName | None = None


class OnMissedConfig(ShortFormModel):
    """What a deadline that passed while the daemon was down does."""

    short_form = "policy"
    short_form_schema = {"enum": ["run", "skip"]}

    policy: Literal["run", "skip"] = "run"
    grace: Duration = timedelta(hours=1)


_RULE_ID = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]*")


class RuleConfig(FrozenModel):
    id: str
    description: str | None = None
    enabled: bool = True
    max_event_age: Duration | None = None
    when: WhenConfig | CronWhenConfig
    on_missed: OnMissedConfig = OnMissedConfig()
    if_: list[ConditionConfig] = Field(default=[], alias="if")
    then: list[Any] = Field(min_length=1)

    @field_validator("id")
    @classmethod
    def _plain_id(cls, value: str) -> str:
        if not _RULE_ID.fullmatch(value):
            raise ValueError(
                f"rule id {value!r} may use only letters, digits and - _ . "
                "(no spaces), and must start with a letter or digit, "
                "e.g. 'morning-coffee'"
            )
        return value
