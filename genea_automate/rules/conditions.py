"""The conditions of a rule's `if` list, each explaining its verdict."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from functools import cached_property
from datetime import datetime, time, timedelta
from typing import Protocol

from genea_automate.config.rules import ConditionConfig, FirstArrivalConfig
from genea_automate.errors import TemplateRenderError
from genea_automate.events.model import Event
from genea_automate.rules.matching import KindPattern, matches_any
from genea_automate.rules.schedules import Schedule
from genea_automate.rules.templates import TemplateRenderer, template_variables
from genea_automate.store.base import FirstArrival

FALSE_WORDS = frozenset({"", "false", "0", "no", "off", "none"})


@dataclass(frozen=True, slots=True)
class ConditionResult:
    name: str
    passed: bool
    detail: str
    children: tuple[ConditionResult, ...] = ()

    def to_dict(self) -> dict[str, object]:
        result: dict[str, object] = {
            "condition": self.name, "passed": self.passed, "detail": self.detail
        }
        if self.children:
            result["children"] = [child.to_dict() for child in self.children]
        return result


@dataclass
class EvaluationContext:
    """What conditions read while one event is decided."""

    event: Event
    now: datetime
    arrivals: Mapping[ArrivalSpec, FirstArrival | None] = field(default_factory=dict)

    @cached_property
    def renderer(self) -> TemplateRenderer:
        """Built on first use: most events match no rule and render nothing."""
        return TemplateRenderer(template_variables(self.event))


class Condition(Protocol):
    def evaluate(self, ctx: EvaluationContext) -> ConditionResult: ...


@dataclass(frozen=True, slots=True)
class ArrivalSpec:
    """Which arrivals count, per which key, and when the day starts."""

    scope: str
    day_starts_at: time
    kinds: tuple[KindPattern, ...]

    def counts(self, event: Event) -> bool:
        return matches_any(self.kinds, event.kind)

    def key(self, event: Event) -> str | None:
        """The state key of this event's scope and local day, None if unknown."""
        scope_key = _scope_key(self.scope, event)
        if scope_key is None:
            return None
        return f"{self.scope}:{scope_key}:{self.day_starts_at:%H:%M}:{self.day(event)}"

    def day(self, event: Event) -> str:
        offset = timedelta(hours=self.day_starts_at.hour, minutes=self.day_starts_at.minute)
        return (event.local_time - offset).date().isoformat()


def _scope_key(scope: str, event: Event) -> str | None:
    location = event.location.uuid or event.location.name
    if scope == "location":
        return location
    if scope == "door":
        return event.door.uuid or event.door.name
    user = event.actor.uuid or event.actor.email
    if scope == "user":
        return user
    return f"{user}@{location}" if user and location else None


@dataclass(frozen=True, slots=True)
class FirstArrivalCondition:
    spec: ArrivalSpec

    def evaluate(self, ctx: EvaluationContext) -> ConditionResult:
        event, spec = ctx.event, self.spec
        if not spec.counts(event):
            kinds = " or ".join(p.text for p in spec.kinds)
            return _no(f"{event.kind} is not an arrival (arrivals are {kinds})")
        record = ctx.arrivals.get(spec)
        if record is None:
            return _no(f"the event names no {spec.scope.replace('_', ' ')}")
        day = spec.day(event)
        if record.event_id == event.id:
            return _yes(f"first arrival of {day} at {_scope_label(spec.scope, event)}")
        earlier = record.time.astimezone(event.local_time.tzinfo)
        who = record.who or "someone"
        return _no(f"not the first: {who} arrived {earlier:%H:%M} local on {day}")


def _scope_label(scope: str, event: Event) -> str:
    location = event.location.name or event.location.uuid or "?"
    if scope == "location":
        return location
    if scope == "door":
        return event.door.name or event.door.uuid or "?"
    who = event.actor.name or event.actor.uuid or "?"
    return who if scope == "user" else f"{location} for {who}"


@dataclass(frozen=True, slots=True)
class ScheduleCondition:
    schedule: Schedule

    def evaluate(self, ctx: EvaluationContext) -> ConditionResult:
        verdict = self.schedule.check(ctx.event.local_time)
        return ConditionResult("schedule", verdict.inside, verdict.reason)


@dataclass(frozen=True, slots=True)
class TemplateCondition:
    source: str

    def evaluate(self, ctx: EvaluationContext) -> ConditionResult:
        template = self.source if "{{" in self.source else f"{{{{ {self.source} }}}}"
        try:
            value = ctx.renderer.render(template)
        except TemplateRenderError as exc:
            return ConditionResult("template", False, f"template failed: {exc}")
        passed = value.strip().lower() not in FALSE_WORDS
        return ConditionResult("template", passed, f"{self.source} gave {value!r}")


@dataclass(frozen=True, slots=True)
class AllCondition:
    children: tuple[Condition, ...]

    def evaluate(self, ctx: EvaluationContext) -> ConditionResult:
        results = evaluate_all(self.children, ctx)
        passed = all(result.passed for result in results)
        return ConditionResult("all", passed, _summary(results), tuple(results))


@dataclass(frozen=True, slots=True)
class AnyCondition:
    children: tuple[Condition, ...]

    def evaluate(self, ctx: EvaluationContext) -> ConditionResult:
        results: list[ConditionResult] = []
        for child in self.children:
            results.append(child.evaluate(ctx))
            if results[-1].passed:
                break
        passed = bool(results) and results[-1].passed
        return ConditionResult("any", passed, _summary(results), tuple(results))


@dataclass(frozen=True, slots=True)
class NotCondition:
    child: Condition

    def evaluate(self, ctx: EvaluationContext) -> ConditionResult:
        inner = self.child.evaluate(ctx)
        return ConditionResult("not", not inner.passed, inner.detail, (inner,))


def evaluate_all(
    conditions: tuple[Condition, ...], ctx: EvaluationContext
) -> list[ConditionResult]:
    """Evaluate in order, stopping at the first that fails."""
    results: list[ConditionResult] = []
    for condition in conditions:
        results.append(condition.evaluate(ctx))
        if not results[-1].passed:
            break
    return results


def compile_condition(
    config: ConditionConfig, schedules: Mapping[str, Schedule]
) -> Condition:
    """A ready condition from its validated config (references already checked)."""
    if config.first_arrival is not None:
        return FirstArrivalCondition(arrival_spec(config.first_arrival))
    if config.schedule is not None:
        if isinstance(config.schedule, str):
            return ScheduleCondition(schedules[config.schedule])
        return ScheduleCondition(Schedule("the inline schedule", config.schedule))
    if config.template is not None:
        return TemplateCondition(config.template)
    if config.not_ is not None:
        return NotCondition(compile_condition(config.not_, schedules))
    group = config.any if config.any is not None else config.all
    children = tuple(compile_condition(child, schedules) for child in group or [])
    return AnyCondition(children) if config.any is not None else AllCondition(children)


def arrival_spec(config: FirstArrivalConfig) -> ArrivalSpec:
    kinds = tuple(KindPattern.parse(kind) for kind in config.kinds)
    return ArrivalSpec(config.scope, config.day_starts_at, kinds)


def arrival_specs(conditions: tuple[Condition, ...]) -> set[ArrivalSpec]:
    """Every first_arrival spec used anywhere in these conditions."""
    found: set[ArrivalSpec] = set()
    for condition in conditions:
        if isinstance(condition, FirstArrivalCondition):
            found.add(condition.spec)
        elif isinstance(condition, AllCondition | AnyCondition):
            found |= arrival_specs(condition.children)
        elif isinstance(condition, NotCondition):
            found |= arrival_specs((condition.child,))
    return found


def _summary(results: list[ConditionResult]) -> str:
    return "; ".join(f"{r.name}: {'yes' if r.passed else 'no'}" for r in results)


def _yes(detail: str) -> ConditionResult:
    return ConditionResult("first_arrival", True, detail)


def _no(detail: str) -> ConditionResult:
    return ConditionResult("first_arrival", False, detail)

