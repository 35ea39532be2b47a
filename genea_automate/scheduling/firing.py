"""What the timers do when due: end the waits that expired, run timed rules.

A pass runs in one store transaction, so a crash leaves each deadline either
handled, with its actions queued and its trace kept, or not handled at all:
the next start handles it then, once.

A deadline that passed while the daemon was down (before this process started)
follows its rule's `on_missed`: `run` acts on it if it is less than `grace`
late, `skip` never does. Missed runs of a timed rule are never made up one by
one: at most the latest runs.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from genea_automate.config.rules import OnMissedConfig
from genea_automate.config.values import format_duration
from genea_automate.rules.engine import RuleEngine
from genea_automate.rules.timed import TimedRule
from genea_automate.rules.waits import current_plan, time_out, wait_trace
from genea_automate.store.base import StateTx, Wait


@dataclass(frozen=True, slots=True)
class TimerOutcome:
    """One deadline handled: a wait's timeout or a timed rule's run."""

    rule_id: str
    ref: str  # the event that started the wait, or the run's id
    what: str  # "wait" or "run"
    outcome: str  # "timed_out", "ran", "not met", "skipped" or "dropped"
    note: str
    queued: int = 0


def missed_verdict(
    due: datetime, now: datetime, started_at: datetime, policy: OnMissedConfig
) -> tuple[bool, str]:
    """Whether to act on a deadline now, and why, in words for the trace."""
    if due > started_at:
        return True, "on time"
    late = f"due {due:%Y-%m-%d %H:%M:%S}Z, missed while the daemon was down"
    late += f" ({format_duration(now - due)} late)"
    grace = format_duration(policy.grace)
    if policy.policy == "skip":
        return False, f"{late}; on_missed: skip, so not run"
    if now - due >= policy.grace:
        return False, f"{late}; on_missed: run within {grace}, too late, so skipped"
    return True, f"{late}; on_missed: run within {grace}, so run now"


def fire_due(
    engine: RuleEngine, state: StateTx, now: datetime, started_at: datetime
) -> list[TimerOutcome]:
    """Handle every deadline up to `now`, in this transaction."""
    outcomes = [
        _expire(wait, engine, state, now, started_at) for wait in state.due_waits(now)
    ]
    for rule in engine.timed:
        outcome = _run_timed(rule, state, now, started_at)
        if outcome is not None:
            outcomes.append(outcome)
    return outcomes


def next_due(engine: RuleEngine, state: StateTx, now: datetime) -> datetime | None:
    """The next deadline: a wait's, or a timed rule's next run."""
    times = [state.next_deadline()]
    for rule in engine.timed:
        handled = state.handled_until(rule.id)
        times.append(rule.next_run(handled or now))
    known = [time for time in times if time is not None]
    return min(known) if known else None


def _expire(
    wait: Wait, engine: RuleEngine, state: StateTx, now: datetime, started_at: datetime
) -> TimerOutcome:
    state.end_wait(wait.id)
    plan, problem = current_plan(wait, engine.plans)
    if plan is None:
        return _kept(state, now, wait_trace(wait, "dropped", problem), "wait")
    run, note = missed_verdict(wait.deadline, now, started_at, plan.on_missed)
    if not run:
        return _kept(state, now, wait_trace(wait, "skipped", note), "wait")
    actions, outcome = time_out(wait, plan, state, now)
    state.queue_actions(actions, now, event_time=wait.deadline)
    trace = outcome.traced(wait_trace(wait, "timed_out", note))
    return _kept(state, now, trace, "wait", len(actions))


def _run_timed(
    rule: TimedRule, state: StateTx, now: datetime, started_at: datetime
) -> TimerOutcome | None:
    handled = state.handled_until(rule.id)
    if handled is None:  # new to this store: its runs count from now on
        state.set_handled_until(rule.id, now)
        return None
    first = rule.next_run(handled)
    if first > now:
        return None
    state.set_handled_until(rule.id, now)
    if not rule.enabled:
        return None
    due, note = _chosen_run(rule, handled, first, now, started_at)
    if due is None:
        trace = {
            "rule": rule.id,
            "run": rule.run_id(first),
            "fired": False,
            "outcome": "skipped",
            "note": note,
        }
        return _kept(state, now, trace, "run")
    trace, actions = rule.run(due, now, state)
    state.queue_actions(actions, now, event_time=due)
    trace.update(outcome="ran" if trace["fired"] else "not met", note=note)
    return _kept(state, now, trace, "run", len(actions))


def _chosen_run(
    rule: TimedRule,
    handled: datetime,
    first: datetime,
    now: datetime,
    started_at: datetime,
) -> tuple[datetime | None, str]:
    """The one run to make of those due since `handled` (None if none), and why."""
    policy = rule.plan.on_missed
    # Runs at or before `floor` were missed and are past saving.
    floor = started_at
    if policy.policy == "run":
        floor = min(started_at, now - policy.grace)
    due = rule.latest_run(max(handled, floor), now)
    if due is None:
        return None, missed_verdict(first, now, started_at, policy)[1]
    note = missed_verdict(due, now, started_at, policy)[1]
    if first < due:
        note += f"; the runs missed from {rule.run_id(first)} on were skipped"
    return due, note


def _kept(
    state: StateTx,
    now: datetime,
    trace: dict[str, object],
    what: str,
    queued: int = 0,
) -> TimerOutcome:
    """Keep the trace in the store, and sum it up for the log."""
    rule_id, ref = str(trace["rule"]), str(trace.get("run") or trace["started_by"])
    state.record_run(rule_id, ref, now, trace)
    return TimerOutcome(
        rule_id, ref, what, str(trace["outcome"]), str(trace["note"]), queued
    )
