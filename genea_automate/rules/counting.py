"""`count` and `cooldown`: conditions over a rule's own history, per key.

Both read event times, not the time of processing, so a burst that a controller
buffered and Genea delivered late is judged as it happened.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime, timedelta

from genea_automate.config.values import format_duration
from genea_automate.events.model import Event
from genea_automate.rules.conditions import ConditionResult, EvaluationContext, no_event
from genea_automate.rules.keys import scope_key, scope_noun, scope_phrase
from genea_automate.rules.matching import EventFilter
from genea_automate.store.base import EventRef, StateTx

# Counted events are kept this long past their window, so that an event the
# controller buffered for up to a day still finds its neighbours.
LATE_EVENTS = timedelta(days=1)


@dataclass(frozen=True, slots=True)
class CountSpec:
    """Which events a `count` records, per which key, over which window."""

    rule_id: str
    counted: EventFilter
    per: str
    within: timedelta

    def key(self, event: Event) -> str | None:
        value = scope_key(self.per, event)
        if value is None:
            return None
        kinds = ",".join(pattern.text for pattern in self.counted.kinds)
        return f"{self.rule_id}:{kinds}:{self.per}:{value}"


def record_counted(
    specs: Iterable[CountSpec], event: Event, ref: EventRef, state: StateTx
) -> None:
    """Record the event for every count that counts it, whatever rules then do.

    Like a first arrival, a counted event is a fact: it counts even when its
    rule's other conditions turn it down. It is counted by endpoint and uuid:
    the same uuid on two endpoints is two events.
    """
    for spec in specs:
        key = spec.key(event)
        if key is not None and spec.counted.why_not(event) is None:
            forget = event.time - spec.within - LATE_EVENTS
            state.record_event(key, ref.key, event.time, forget_before=forget)


def densest(times: list[datetime], at: datetime, within: timedelta) -> int:
    """The most events that any `within`-long window holding `at` contains."""
    starts = [time for time in times if at - within <= time <= at] + [at]
    return max(
        sum(1 for time in times if start <= time <= start + within) for start in starts
    )


@dataclass(frozen=True, slots=True)
class CountCondition:
    """At least `at_least` counted events in a window around this event.

    Every event from the Nth on passes while the window holds N: to act once
    per burst, follow it with a `cooldown`.
    """

    spec: CountSpec
    at_least: int

    def evaluate(self, ctx: EvaluationContext) -> ConditionResult:
        event, spec = ctx.event, self.spec
        if event is None:
            return no_event("count")
        key = spec.key(event)
        if key is None:
            return ConditionResult(
                "count", False, f"the event names no {scope_noun(spec.per)}"
            )
        times = ctx.state.event_times(
            key, event.time - spec.within, event.time + spec.within
        )
        found = densest(times, event.time, spec.within)
        kinds = " or ".join(pattern.text for pattern in spec.counted.kinds)
        detail = (
            f"{found} {kinds} event(s) within {format_duration(spec.within)}"
            f"{scope_phrase(spec.per, event, 'at')}; at least {self.at_least} needed"
        )
        return ConditionResult("count", found >= self.at_least, detail)


@dataclass(frozen=True, slots=True)
class CooldownCondition:
    """Holds unless the rule fired for this key less than `period` away.

    Its state is written only when the whole rule fires (see `start`).
    """

    rule_id: str
    per: str
    period: timedelta

    def key(self, event: Event) -> str | None:
        value = scope_key(self.per, event)
        return None if value is None else f"{self.rule_id}:{self.per}:{value}"

    def evaluate(self, ctx: EvaluationContext) -> ConditionResult:
        event = ctx.event
        if event is None:
            return no_event("cooldown")
        key = self.key(event)
        if key is None:
            noun = scope_noun(self.per)
            return ConditionResult("cooldown", False, f"the event names no {noun}")
        where = scope_phrase(self.per, event, "for")
        period = format_duration(self.period)
        last = ctx.state.last_fired(key)
        if last is None or abs(event.time - last) >= self.period:
            detail = f"the rule has not fired{where} within {period} of this event"
            return ConditionResult("cooldown", True, detail)
        gap = format_duration(abs(event.time - last))
        side = "before" if last <= event.time else "after"
        detail = f"the rule fired{where} {gap} {side} this event; cooldown {period}"
        return ConditionResult("cooldown", False, detail)

    def start(self, event: Event, state: StateTx) -> None:
        """The rule fired for `event`: its key cools down from the event's time."""
        key = self.key(event)
        if key is not None:
            state.set_last_fired(key, event.time)
