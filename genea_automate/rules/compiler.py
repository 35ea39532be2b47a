"""Turning the validated `if` of a rule into conditions ready to evaluate."""

from __future__ import annotations

import dataclasses
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass

from genea_automate.config.rules import (
    ArrivedTodayConfig,
    ConditionConfig,
    CountConfig,
    FirstArrivalConfig,
)
from genea_automate.rules.conditions import (
    AllCondition,
    AnyCondition,
    ArrivalSpec,
    ArrivedTodayCondition,
    Condition,
    FirstArrivalCondition,
    NotCondition,
    ScheduleCondition,
    TemplateCondition,
)
from genea_automate.rules.counting import CooldownCondition, CountCondition, CountSpec
from genea_automate.rules.match import MatchCondition
from genea_automate.rules.matching import EventFilter, KindPattern
from genea_automate.rules.schedules import Schedule


@dataclass(frozen=True, slots=True)
class RuleScope:
    """What one rule's conditions are compiled against.

    `when` is the rule's event filter; a timed rule's takes no event.
    """

    rule_id: str
    when: EventFilter
    schedules: Mapping[str, Schedule]


def compile_condition(config: ConditionConfig, scope: RuleScope) -> Condition:
    """A ready condition from its validated config (references already checked)."""
    if config.first_arrival is not None:
        return FirstArrivalCondition(arrival_spec(config.first_arrival))
    if config.schedule is not None:
        if isinstance(config.schedule, str):
            return ScheduleCondition(scope.schedules[config.schedule])
        return ScheduleCondition(Schedule("the inline schedule", config.schedule))
    if config.count is not None:
        return CountCondition(count_spec(config.count, scope), config.count.at_least)
    if config.cooldown is not None:
        cooldown = config.cooldown
        return CooldownCondition(scope.rule_id, cooldown.per, cooldown.for_)
    if config.match is not None:
        return MatchCondition.from_config(config.match)
    if config.arrived_today is not None:
        return arrived_today(config.arrived_today)
    if config.template is not None:
        return TemplateCondition(config.template)
    if config.not_ is not None:
        return NotCondition(compile_condition(config.not_, scope))
    group = config.any if config.any is not None else config.all
    children = tuple(compile_condition(child, scope) for child in group or [])
    return AnyCondition(children) if config.any is not None else AllCondition(children)


def arrival_spec(config: FirstArrivalConfig) -> ArrivalSpec:
    kinds = tuple(KindPattern.parse(kind) for kind in config.kinds)
    return ArrivalSpec(config.scope, config.day_starts_at, kinds)


def arrived_today(config: ArrivedTodayConfig) -> ArrivedTodayCondition:
    kinds = tuple(KindPattern.parse(kind) for kind in config.kinds)
    specs = tuple(
        ArrivalSpec(scope, config.day_starts_at, kinds)
        for scope in ("location_name", "location")
    )
    return ArrivedTodayCondition(config.location, specs)


def count_spec(config: CountConfig, scope: RuleScope) -> CountSpec:
    """Events the rule's `when` takes, or those of `kinds` that pass its filters."""
    when = scope.when
    if config.kinds is not None:
        kinds = tuple(KindPattern.parse(kind) for kind in config.kinds)
        when = dataclasses.replace(when, kinds=kinds)
    return CountSpec(scope.rule_id, when, config.per, config.within)


def walk(conditions: Iterable[Condition]) -> Iterator[Condition]:
    """Every condition, nested ones included, in order."""
    for condition in conditions:
        yield condition
        if isinstance(condition, AllCondition | AnyCondition):
            yield from walk(condition.children)
        elif isinstance(condition, NotCondition):
            yield from walk((condition.child,))


def arrival_specs(conditions: Iterable[Condition]) -> set[ArrivalSpec]:
    """The arrivals that first_arrival and arrived_today conditions read."""
    found: set[ArrivalSpec] = set()
    for condition in walk(conditions):
        if isinstance(condition, FirstArrivalCondition):
            found.add(condition.spec)
        elif isinstance(condition, ArrivedTodayCondition):
            found.update(condition.specs)
    return found
