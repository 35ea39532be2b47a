"""Timed rules: `when: {cron: ..., timezone: ...}`, run without an event.

A run's templates see `rule` (the rule's id), `now` (the time the run was due,
in UTC) and `local_time` (the same time in the rule's zone). For a run made
late after a restart, both are still the time it was due.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any
from zoneinfo import ZoneInfo

from genea_automate.rules.conditions import Condition, EvaluationContext
from genea_automate.rules.steps import Plan
from genea_automate.scheduling.cron import CronExpression
from genea_automate.store.base import ActionToQueue, EventRef, StateTx

RUN_VARIABLES = frozenset({"rule", "now", "local_time"})


@dataclass(frozen=True, slots=True)
class TimedRule:
    id: str
    enabled: bool
    cron: CronExpression
    zone: ZoneInfo
    conditions: tuple[Condition, ...]
    plan: Plan

    def next_run(self, after: datetime) -> datetime:
        return self.cron.next_after(after, self.zone)

    def latest_run(self, after: datetime, now: datetime) -> datetime | None:
        """The last run time later than `after` and not later than `now`."""
        latest = None
        due = self.next_run(after)
        while due <= now:
            latest, due = due, self.next_run(due)
        return latest

    def run_id(self, due: datetime) -> str:
        """Stands for the event in the outbox and in idempotency keys."""
        return f"{self.id}@{due.astimezone(UTC):%Y-%m-%dT%H:%MZ}"

    def run(
        self, due: datetime, now: datetime, state: StateTx
    ) -> tuple[dict[str, Any], list[ActionToQueue]]:
        """The trace of the run due at `due`, and the actions it queues."""
        local = due.astimezone(self.zone)
        variables = {
            "rule": self.id,
            "now": due.astimezone(UTC).isoformat().replace("+00:00", "Z"),
            "local_time": local.isoformat(),
        }
        run = EventRef(self.run_id(due))  # no endpoint: a run belongs to none
        ctx = EvaluationContext(now, local, state, run, run_variables=variables)
        trace: dict[str, Any] = {"rule": self.id, "run": run.id, "fired": False}
        outcome = self.plan.start(self.conditions, ctx, due, trace)
        actions = [dataclasses.replace(a, event=run) for a in outcome.actions]
        return trace, actions
