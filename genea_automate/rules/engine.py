"""Deciding one event: which rules fire, and the actions they queue."""

from __future__ import annotations

import logging
from datetime import datetime, timedelta
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from genea_automate.config.models import ConfigBase, StepBase
from genea_automate.config.rules import RuleConfig
from genea_automate.errors import TemplateRenderError
from genea_automate.events.model import Event
from genea_automate.plugin import ActionPlugin
from genea_automate.rules.conditions import (
    ArrivalSpec,
    Condition,
    EvaluationContext,
    arrival_specs,
    compile_condition,
    evaluate_all,
)
from genea_automate.rules.matching import EventFilter, make_filter
from genea_automate.rules.schedules import Schedule
from genea_automate.rules.templates import TemplateRenderer
from genea_automate.store.base import ActionToQueue, Decision, FirstArrival, StateTx

logger = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class Step:
    index: int
    plugin: ActionPlugin[Any]
    config: StepBase

    def render(self, rule_id: str, renderer: TemplateRenderer) -> ActionToQueue:
        payload = self.plugin.render(self.config.options, renderer)
        retry = self.config.retry
        return ActionToQueue(
            rule_id=rule_id,
            step=str(self.index),
            plugin=self.plugin.name,
            payload=payload,
            order_key=self.plugin.ordering_key(payload),
            description=self.plugin.describe(payload),
            max_attempts=retry.attempts,
            timeout=self.config.timeout.total_seconds(),
            backoff=retry.backoff.total_seconds(),
            max_backoff=retry.max_backoff.total_seconds(),
        )


@dataclass(frozen=True, slots=True)
class Rule:
    id: str
    enabled: bool
    max_event_age: timedelta | None
    filter: EventFilter
    conditions: tuple[Condition, ...]
    steps: tuple[Step, ...]

    def evaluate(
        self, ctx: EvaluationContext
    ) -> tuple[dict[str, Any], list[ActionToQueue]]:
        """The rule's trace for this event, and the actions it queues."""
        trace: dict[str, Any] = {"rule": self.id, "fired": False}
        if not self.enabled:
            return {**trace, "matched": False, "reason": "the rule is disabled"}, []
        reason = self.filter.why_not(ctx.event) or self._too_old(ctx)
        if reason is not None:
            return {**trace, "matched": False, "reason": reason}, []
        results = evaluate_all(self.conditions, ctx)
        trace.update(matched=True, conditions=[r.to_dict() for r in results])
        if not all(result.passed for result in results):
            return trace, []
        return self._render(trace, ctx.renderer)

    def _too_old(self, ctx: EvaluationContext) -> str | None:
        """Why a late event may not fire this rule (a buffered badge hours later)."""
        age = ctx.now - ctx.event.time
        if self.max_event_age is None or age <= self.max_event_age:
            return None
        return (
            f"the event is {_duration(age)} old, older than max_event_age "
            f"{_duration(self.max_event_age)}"
        )

    def _render(
        self, trace: dict[str, Any], renderer: TemplateRenderer
    ) -> tuple[dict[str, Any], list[ActionToQueue]]:
        actions: list[ActionToQueue] = []
        errors: list[str] = []
        for step in self.steps:
            try:
                actions.append(step.render(self.id, renderer))
            except (TemplateRenderError, ValueError) as exc:
                errors.append(f"step {step.index} ({step.plugin.name}): {exc}")
                if not step.config.continue_on_error:
                    break
        trace.update(
            fired=bool(actions),
            actions=[{"step": a.step, "action": a.description} for a in actions],
        )
        if errors:
            trace["errors"] = errors
        return trace, actions


class RuleEngine:
    """Immutable once built; a reload builds a new one and swaps it in."""

    def __init__(self, rules: tuple[Rule, ...]) -> None:
        self.rules = rules
        specs: set[ArrivalSpec] = set()
        for rule in rules:
            specs |= arrival_specs(rule.conditions)
        self._arrival_specs = tuple(specs)

    def decide(self, event: Event, state: StateTx, now: datetime) -> Decision:
        """Evaluate every rule against the event inside the store's transaction."""
        ctx = EvaluationContext(event, now, self._track_arrivals(event, state))
        traces, actions, fired = [], [], []
        for rule in self.rules:
            trace, queued = rule.evaluate(ctx)
            traces.append(trace)
            actions.extend(queued)
            if trace["fired"]:
                fired.append(rule.id)
        trace_doc = {"event_id": event.id, "kind": event.kind, "rules": traces}
        return Decision(kind=event.kind, fired=fired, actions=actions, trace=trace_doc)

    def _track_arrivals(
        self, event: Event, state: StateTx
    ) -> dict[ArrivalSpec, FirstArrival | None]:
        """Record the day's first arrival per scope, whichever rules then match.

        This is a fact about the day, not about one rule: a 05:00 arrival outside
        office hours is still the first, so a later one is not.
        """
        arrivals: dict[ArrivalSpec, FirstArrival | None] = {}
        for spec in self._arrival_specs:
            key = spec.key(event) if spec.counts(event) else None
            if key is not None:
                who = event.actor.name
                arrivals[spec] = state.claim_first_arrival(key, event.id, event.time, who)
        return arrivals


def build_engine(
    config: ConfigBase, plugins: Mapping[str, ActionPlugin[Any]]
) -> RuleEngine:
    """Compile the validated rules; every reference in them was checked already."""
    schedules = {name: Schedule(name, s) for name, s in config.schedules.items()}
    rules: list[RuleConfig] = getattr(config, "rules", [])
    default_age = config.max_event_age
    return RuleEngine(
        tuple(_compile_rule(r, schedules, plugins, default_age) for r in rules)
    )


def _compile_rule(
    config: RuleConfig,
    schedules: Mapping[str, Schedule],
    plugins: Mapping[str, ActionPlugin[Any]],
    default_age: timedelta | None,
) -> Rule:
    when = config.when
    steps: list[StepBase] = config.then
    return Rule(
        id=config.id,
        enabled=config.enabled,
        max_event_age=config.max_event_age or default_age,
        filter=make_filter(when.event, when.location, when.door, when.actor,
                           when.card_type),
        conditions=tuple(compile_condition(c, schedules) for c in config.if_),
        steps=tuple(
            Step(index, plugins[step.action], step) for index, step in enumerate(steps)
        ),
    )


def _duration(delta: timedelta) -> str:
    """1d2h, 45m, 30s: the way durations are written in rules files."""
    days, rest = divmod(int(delta.total_seconds()), 86400)
    hours, rest = divmod(rest, 3600)
    minutes, seconds = divmod(rest, 60)
    parts = [(days, "d"), (hours, "h"), (minutes, "m"), (seconds, "s")]
    return "".join(f"{n}{unit}" for n, unit in parts if n) or "0s"
