"""Deciding one event: which rules fire, and the actions they queue."""

from __future__ import annotations

import logging
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from genea_automate.config.models import ConfigBase
from genea_automate.config.rules import CronWhenConfig, RuleConfig, WhenConfig
from genea_automate.config.values import format_duration
from genea_automate.events.model import Event
from genea_automate.plugin import ActionPlugin
from genea_automate.rules.compiler import (
    RuleScope,
    arrival_specs,
    compile_condition,
    walk,
)
from genea_automate.rules.conditions import ArrivalSpec, Condition, EvaluationContext
from genea_automate.rules.counting import (
    CooldownCondition,
    CountCondition,
    record_counted,
)
from genea_automate.rules.matching import EventFilter, make_filter
from genea_automate.rules.schedules import Schedule
from genea_automate.rules.steps import Plan, build_plan
from genea_automate.rules.timed import TimedRule
from genea_automate.rules.waits import resume_waits
from genea_automate.scheduling.cron import CronExpression
from genea_automate.store.base import (
    ActionToQueue,
    Decision,
    EventRef,
    FirstArrival,
    StateTx,
)

logger = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class Rule:
    id: str
    enabled: bool
    max_event_age: timedelta | None
    filter: EventFilter
    conditions: tuple[Condition, ...]
    plan: Plan
    cooldowns: tuple[CooldownCondition, ...] = ()

    def evaluate(
        self, event: Event, ctx: EvaluationContext
    ) -> tuple[dict[str, Any], list[ActionToQueue]]:
        """The rule's trace for this event, and the actions it queues."""
        trace: dict[str, Any] = {"rule": self.id, "fired": False}
        # `stopped_by` names the part of the rule that said no, for traces.
        if not self.enabled:
            reason, stopped_by = "the rule is disabled", "enabled"
        elif (reason := self.filter.why_not(event)) is not None:
            stopped_by = "when"
        elif (reason := self._too_old(event, ctx.now)) is not None:
            stopped_by = "max_event_age"
        if reason is not None:
            refused = {"matched": False, "reason": reason, "stopped_by": stopped_by}
            return {**trace, **refused}, []
        outcome = self.plan.start(self.conditions, ctx, event.time, trace)
        if outcome.fired:
            for cooldown in self.cooldowns:
                cooldown.start(event, ctx.state)
        return trace, outcome.actions

    def _too_old(self, event: Event, now: datetime) -> str | None:
        """Why a late event may not fire this rule (a buffered badge hours later)."""
        age = now - event.time
        if self.max_event_age is None or age <= self.max_event_age:
            return None
        return (
            f"the event is {format_duration(age)} old, more than "
            f"{format_duration(self.max_event_age)}"
        )


class RuleEngine:
    """Immutable once built; a reload builds a new one and swaps it in."""

    def __init__(
        self, rules: tuple[Rule, ...], timed: tuple[TimedRule, ...] = ()
    ) -> None:
        self.rules = rules
        self.timed = timed
        every: tuple[Rule | TimedRule, ...] = (*rules, *timed)
        self.plans = {rule.id: rule.plan for rule in every}
        conditions = [c for rule in every for c in rule.conditions]
        self._arrival_specs = tuple(arrival_specs(conditions))
        self._count_specs = tuple(
            {c.spec for c in walk(conditions) if isinstance(c, CountCondition)}
        )
        # Without a wait_for step no event can end a wait, so it skips the lookup.
        # A wait left by an earlier rules file then ends at its deadline, where
        # the timers drop it as they would have done here.
        self._waits_possible = any(plan.waits for plan in self.plans.values())

    def decide(
        self, event: Event, ref: EventRef, state: StateTx, now: datetime
    ) -> Decision:
        """Evaluate every rule against the event inside the store's transaction.

        `ref` names the event in rule state: its endpoint and uuid. Before any
        rule: the event's arrivals and counts are recorded, and the waits it
        ends resume.
        """
        arrivals = self._track_arrivals(event, ref, state)
        record_counted(self._count_specs, event, ref, state)
        actions, waits = (
            resume_waits(event, state, now, self.plans)
            if self._waits_possible
            else ([], [])
        )
        ctx = EvaluationContext.for_event(event, ref, now, state, arrivals)
        traces, fired, waits_begun = [], [], 0
        for rule in self.rules:
            trace, queued = _evaluate_isolated(rule, event, ctx)
            traces.append(trace)
            actions.extend(queued)
            if trace["fired"]:
                fired.append(rule.id)
            waits_begun += "waiting" in trace
        waits_begun += sum("waiting" in wait for wait in waits)
        trace_doc = {
            "event_id": event.id,
            "kind": event.kind,
            # Who and where, so traces can be found and read without the event.
            "local_time": event.local_time.isoformat(),
            "location": event.location.name,
            "door": event.door.name,
            "actor": event.actor.name or event.actor.email,
            "rules": traces,
        }
        if waits:
            trace_doc["waits"] = waits
        return Decision(
            kind=event.kind,
            fired=fired,
            actions=actions,
            trace=trace_doc,
            event_time=event.time,
            waits_begun=waits_begun,
        )

    def _track_arrivals(
        self, event: Event, ref: EventRef, state: StateTx
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
                arrivals[spec] = state.claim_first_arrival(
                    key, ref.key, event.time, who
                )
        return arrivals


def _evaluate_isolated(
    rule: Rule, event: Event, ctx: EvaluationContext
) -> tuple[dict[str, Any], list[ActionToQueue]]:
    """One rule's verdict; a failure there must not cost the other rules theirs."""
    try:
        return rule.evaluate(event, ctx)
    except Exception as exc:  # a bug, or data no rule author could foresee
        logger.exception("rule %s failed on event %s", rule.id, event.id)
        error = f"the rule failed: {type(exc).__name__}: {exc}"
        return {"rule": rule.id, "fired": False, "matched": True, "errors": [error]}, []


def build_engine(
    config: ConfigBase, plugins: Mapping[str, ActionPlugin[Any]]
) -> RuleEngine:
    """Compile the validated rules; every reference in them was checked already."""
    schedules = {name: Schedule(name, s) for name, s in config.schedules.items()}
    configs: list[RuleConfig] = getattr(config, "rules", [])
    rules: list[Rule] = []
    timed: list[TimedRule] = []
    for rule in configs:
        plan = build_plan(rule, plugins)
        if isinstance(rule.when, CronWhenConfig):
            zone = ZoneInfo(rule.when.timezone or config.default_timezone)
            timed.append(_timed_rule(rule, rule.when, zone, plan, schedules))
        else:
            rules.append(
                _event_rule(rule, rule.when, plan, schedules, config.max_event_age)
            )
    return RuleEngine(tuple(rules), tuple(timed))


def _event_rule(
    config: RuleConfig,
    when: WhenConfig,
    plan: Plan,
    schedules: Mapping[str, Schedule],
    default_age: timedelta | None,
) -> Rule:
    event_filter = make_filter(
        when.event, when.location, when.door, when.actor, when.card_type
    )
    scope = RuleScope(config.id, event_filter, schedules)
    conditions = tuple(compile_condition(c, scope) for c in config.if_)
    return Rule(
        id=config.id,
        enabled=config.enabled,
        max_event_age=config.max_event_age or default_age,
        filter=event_filter,
        conditions=conditions,
        plan=plan,
        cooldowns=tuple(
            c for c in walk(conditions) if isinstance(c, CooldownCondition)
        ),
    )


def _timed_rule(
    config: RuleConfig,
    when: CronWhenConfig,
    zone: ZoneInfo,
    plan: Plan,
    schedules: Mapping[str, Schedule],
) -> TimedRule:
    # A timed rule has no event, so no event passes its filter.
    scope = RuleScope(config.id, EventFilter(kinds=()), schedules)
    return TimedRule(
        id=config.id,
        enabled=config.enabled,
        cron=CronExpression.parse(when.cron),
        zone=zone,
        conditions=tuple(compile_condition(c, scope) for c in config.if_),
        plan=plan,
    )
