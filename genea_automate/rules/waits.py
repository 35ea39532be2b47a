"""Ending the waits of `wait_for` steps: by a later event, or by the deadline.

The steps after a wait, and its `on_timeout` steps, are rendered against the
event that started the wait (the `door.held_open`, not the `door.secured`), and
their actions belong to that event: its endpoint and id are in their idempotency
keys.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from datetime import datetime
from typing import Any, get_args

from genea_automate.config.rules import KeyScope
from genea_automate.events.model import Event
from genea_automate.rules.conditions import EvaluationContext
from genea_automate.rules.keys import scope_key
from genea_automate.rules.matching import KindPattern, matches_any
from genea_automate.rules.steps import Outcome, Plan, wait_key
from genea_automate.store.base import ActionToQueue, StateTx, Wait

WAIT_SCOPES: tuple[str, ...] = get_args(KeyScope)


def waiting_keys(event: Event) -> list[str]:
    """The keys of every wait this event could end."""
    keys = []
    for scope in WAIT_SCOPES:
        value = scope_key(scope, event)
        if value is not None:
            keys.append(wait_key(scope, value))
    return keys


def ends(wait: Wait, event: Event) -> bool:
    kinds = tuple(KindPattern.parse(text) for text in wait.kinds)
    return event.time >= wait.not_before and matches_any(kinds, event.kind)


def resume_waits(
    event: Event, state: StateTx, now: datetime, plans: Mapping[str, Plan]
) -> tuple[list[ActionToQueue], list[dict[str, Any]]]:
    """End the waits this event satisfies and render the steps after them."""
    actions: list[ActionToQueue] = []
    traces: list[dict[str, Any]] = []
    for wait in state.waits_for(waiting_keys(event), now):
        if not ends(wait, event):
            continue
        state.end_wait(wait.id)
        trace = wait_trace(wait, "resolved", f"{event.kind} {event.id} came")
        plan, problem = current_plan(wait, plans)
        if plan is None:
            traces.append({**trace, "outcome": "dropped", "note": problem})
            continue
        ctx = started_context(wait, now, state)
        outcome = plan.run(wait.step + 1, ctx, after=event.time)
        actions += owned(outcome, wait)
        traces.append(outcome.traced(trace))
    return actions, traces


def time_out(
    wait: Wait, plan: Plan, state: StateTx, now: datetime
) -> tuple[list[ActionToQueue], Outcome]:
    """Render a wait's `on_timeout` steps against the event that started it."""
    ctx = started_context(wait, now, state)
    outcome = plan.on_timeout(wait.step, ctx.renderer)
    return owned(outcome, wait), outcome


def started_context(wait: Wait, now: datetime, state: StateTx) -> EvaluationContext:
    """The context of the event that started the wait: the steps after it are
    rendered against that event, and a wait they begin is that event's too."""
    event = Event.from_dict(wait.event)
    return EvaluationContext.for_event(event, wait.started_by, now, state)


def current_plan(wait: Wait, plans: Mapping[str, Plan]) -> tuple[Plan | None, str]:
    """The plan the wait belongs to, or None and why it is gone."""
    plan = plans.get(wait.rule_id)
    if plan is None:
        return None, f"rule {wait.rule_id} is no longer in the rules file"
    if plan.fingerprint != wait.fingerprint:
        return None, f"the steps of rule {wait.rule_id} changed since the wait began"
    return plan, ""


def wait_trace(wait: Wait, outcome: str, note: str) -> dict[str, Any]:
    return {
        "rule": wait.rule_id,
        "started_by": wait.started_by.id,
        "step": str(wait.step),
        "for": " or ".join(wait.kinds),
        "deadline": wait.deadline.isoformat(),
        "outcome": outcome,
        "note": note,
    }


def owned(outcome: Outcome, wait: Wait) -> list[ActionToQueue]:
    """The actions, as belonging to the event that started the wait."""
    return [dataclasses.replace(a, event=wait.started_by) for a in outcome.actions]
