"""The conditions of a rule's `if` list, each explaining its verdict."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime, time, timedelta
from functools import cached_property
from typing import Any, Protocol

from genea_automate.errors import TemplateRenderError
from genea_automate.events.model import Event
from genea_automate.rules.keys import scope_key, scope_label
from genea_automate.rules.matching import KindPattern, matches_any
from genea_automate.rules.schedules import Schedule
from genea_automate.rules.templates import (
    TemplateRenderer,
    expression_template,
    template_variables,
)
from genea_automate.store.base import EventRef, FirstArrival, StateTx

FALSE_WORDS = frozenset({"", "false", "0", "no", "off", "none"})


@dataclass(frozen=True, slots=True)
class ConditionResult:
    name: str
    passed: bool
    detail: str
    children: tuple[ConditionResult, ...] = ()
    failed: bool = False  # could not be decided: no, and `not` keeps it no

    def to_dict(self) -> dict[str, object]:
        result: dict[str, object] = {
            "condition": self.name,
            "passed": self.passed,
            "detail": self.detail,
        }
        if self.failed:
            result["failed"] = True
        if self.children:
            result["children"] = [child.to_dict() for child in self.children]
        return result


@dataclass
class EvaluationContext:
    """What conditions read while one event, or one run of a timed rule, is
    decided; `state` is the store's, inside the decision's transaction."""

    now: datetime
    local_time: datetime  # the event's, or the run's in the timed rule's zone
    state: StateTx
    ref: EventRef  # the event (its endpoint and uuid), or the timed run
    event: Event | None = None
    arrivals: Mapping[ArrivalSpec, FirstArrival | None] = field(default_factory=dict)
    run_variables: Mapping[str, Any] = field(default_factory=dict)

    @classmethod
    def for_event(
        cls,
        event: Event,
        ref: EventRef,
        now: datetime,
        state: StateTx,
        arrivals: Mapping[ArrivalSpec, FirstArrival | None] | None = None,
    ) -> EvaluationContext:
        return cls(now, event.local_time, state, ref, event, arrivals or {})

    @cached_property
    def renderer(self) -> TemplateRenderer:
        """Built on first use: most events match no rule and render nothing."""
        if self.event is None:
            return TemplateRenderer(self.run_variables)
        return TemplateRenderer(template_variables(self.event))

    @cached_property
    def data(self) -> dict[str, Any]:
        """The event's fields as `match` paths read them."""
        return self.event.to_dict() if self.event is not None else {}


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
        value = scope_key(self.scope, event)
        return None if value is None else self.key_for(value, self.day(event))

    def key_for(self, value: str, day: str) -> str:
        return f"{self.scope}:{value}:{self.day_starts_at:%H:%M}:{day}"

    def day(self, event: Event) -> str:
        return self.day_of(event.local_time)

    def day_of(self, local_time: datetime) -> str:
        offset = timedelta(
            hours=self.day_starts_at.hour, minutes=self.day_starts_at.minute
        )
        return (local_time - offset).date().isoformat()


@dataclass(frozen=True, slots=True)
class FirstArrivalCondition:
    spec: ArrivalSpec

    def evaluate(self, ctx: EvaluationContext) -> ConditionResult:
        event, spec = ctx.event, self.spec
        if event is None:
            return no_event("first_arrival")
        if not spec.counts(event):
            kinds = " or ".join(p.text for p in spec.kinds)
            return _no(f"{event.kind} is not an arrival (arrivals are {kinds})")
        record = ctx.arrivals.get(spec)
        if record is None:
            return _no(f"the event names no {spec.scope.replace('_', ' ')}")
        day = spec.day(event)
        # By endpoint and uuid: the same uuid on another endpoint is another event.
        if record.event_id == ctx.ref.key:
            return _yes(f"first arrival of {day} at {scope_label(spec.scope, event)}")
        earlier = record.time.astimezone(event.local_time.tzinfo)
        who = record.who or "someone"
        return _no(f"not the first: {who} arrived {earlier:%H:%M} local on {day}")


@dataclass(frozen=True, slots=True)
class ArrivedTodayCondition:
    """Someone arrived at a location (name or uuid) by now, on today's local day.

    The arrivals are recorded under the location's name and under its uuid, so
    either may be given.
    """

    location: str
    specs: tuple[ArrivalSpec, ...]

    def evaluate(self, ctx: EvaluationContext) -> ConditionResult:
        day = self.specs[0].day_of(ctx.local_time)
        for spec in self.specs:
            value = self.location
            if spec.scope == "location_name":
                value = value.casefold()
            record = ctx.state.first_arrival(spec.key_for(value, day))
            if record is not None and record.time <= ctx.local_time:
                at = record.time.astimezone(ctx.local_time.tzinfo)
                who = record.who or "someone"
                detail = f"{who} arrived at {self.location} {at:%H:%M} local on {day}"
                return ConditionResult("arrived_today", True, detail)
        by = f"{ctx.local_time:%H:%M}"
        detail = f"nobody has arrived at {self.location} by {by} on {day}"
        return ConditionResult("arrived_today", False, detail)


@dataclass(frozen=True, slots=True)
class ScheduleCondition:
    schedule: Schedule

    def evaluate(self, ctx: EvaluationContext) -> ConditionResult:
        verdict = self.schedule.check(ctx.local_time)
        return ConditionResult("schedule", verdict.inside, verdict.reason)


@dataclass(frozen=True, slots=True)
class TemplateCondition:
    source: str

    def evaluate(self, ctx: EvaluationContext) -> ConditionResult:
        try:
            value = ctx.renderer.render(expression_template(self.source))
        except TemplateRenderError as exc:
            detail = f"template failed: {exc}"
            return ConditionResult("template", False, detail, failed=True)
        passed = value.strip().lower() not in FALSE_WORDS
        return ConditionResult("template", passed, f"{self.source} gave {value!r}")


@dataclass(frozen=True, slots=True)
class AllCondition:
    children: tuple[Condition, ...]

    def evaluate(self, ctx: EvaluationContext) -> ConditionResult:
        results = evaluate_all(self.children, ctx)
        passed = all(result.passed for result in results)
        failed = any(result.failed for result in results)
        return ConditionResult(
            "all", passed, _summary(results), tuple(results), failed=failed
        )


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
        failed = not passed and any(result.failed for result in results)
        return ConditionResult(
            "any", passed, _summary(results), tuple(results), failed=failed
        )


@dataclass(frozen=True, slots=True)
class NotCondition:
    child: Condition

    def evaluate(self, ctx: EvaluationContext) -> ConditionResult:
        inner = self.child.evaluate(ctx)
        if inner.failed:
            # An error is not a "no" to turn into "yes": the rule must not fire.
            return ConditionResult("not", False, inner.detail, (inner,), failed=True)
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


def no_event(name: str) -> ConditionResult:
    """The verdict of an event condition in a timed rule (validation refuses it)."""
    return ConditionResult(name, False, "a timed rule has no event to check")


def _summary(results: list[ConditionResult]) -> str:
    return "; ".join(f"{r.name}: {'yes' if r.passed else 'no'}" for r in results)


def _yes(detail: str) -> ConditionResult:
    return ConditionResult("first_arrival", True, detail)


def _no(detail: str) -> ConditionResult:
    return ConditionResult("first_arrival", False, detail)
