"""Replay: stored events through the rules again, dry, against what really happened.

Events are decided in the order they were received, each at the time it was
first decided, from empty rule state. A warm-up period before `since` is
decided too but not compared, so that "first arrival today" and the like see
the morning's events. An action is the same when its rule, step, plugin and
payload are; the outbox rows of each event are what happened.
"""

from __future__ import annotations

import json
from collections import defaultdict
from dataclasses import dataclass, field, replace
from datetime import datetime, timedelta
from typing import Any, Literal

from genea_automate.config.loader import LoadedConfig
from genea_automate.dryrun.explain import (
    INDENT,
    show_payload,
    shown_time,
    why_not_fired,
)
from genea_automate.dryrun.runner import DryResult, DryRun
from genea_automate.store.admin import ActionRecord, PastEvent, StoreAdmin
from genea_automate.store.base import ActionToQueue

PAGE = 500
DEFAULT_WARMUP = timedelta(days=1)
# Events in these states were decided and may be decided again.
REPLAYABLE = frozenset({"decided", "failed"})

Change = Literal["removed", "added", "changed"]


@dataclass(frozen=True, slots=True)
class Done:
    """An action as it happened: from the outbox, or (once delivered actions
    are pruned) from the event's trace, without its payload."""

    plugin: str | None
    description: str
    payload: dict[str, Any] | None


@dataclass(frozen=True, slots=True)
class ActionDiff:
    change: Change
    event_id: str
    kind: str
    local_time: str
    rule_id: str
    step: str
    description: str
    before: dict[str, Any] | None = None  # shown without secrets
    after: dict[str, Any] | None = None
    why: str | None = None


@dataclass(slots=True)
class ReplayReport:
    since: datetime
    replayed: int = 0
    warmed_up: int = 0
    skipped: int = 0
    diffs: list[ActionDiff] = field(default_factory=list)


async def replay(
    config: LoadedConfig,
    admin: StoreAdmin,
    since: datetime,
    warmup: timedelta = DEFAULT_WARMUP,
) -> ReplayReport:
    """Decide the stored events again with `config`'s rules; list what differs."""
    report = ReplayReport(since)
    async with DryRun(config) as dry:
        after_seq = 0
        while page := await admin.past_events(since - warmup, after_seq, PAGE):
            after_seq = page[-1].stored.seq
            compared = [p for p in page if p.stored.received_at >= since]
            done = await _done(admin, compared)
            for past in page:
                if past.state not in REPLAYABLE:
                    report.skipped += 1
                    continue
                result = await dry.decide(
                    past.stored.body,
                    past.decided_at or past.stored.received_at,
                    received_at=past.stored.received_at,
                    endpoint=past.stored.endpoint,
                )
                if past.stored.received_at < since:
                    report.warmed_up += 1
                    continue
                report.replayed += 1
                report.diffs += _compare(done[past.stored.seq], result, dry)
    return report


async def _done(
    admin: StoreAdmin, events: list[PastEvent]
) -> dict[int, dict[tuple[str, str], Done]]:
    """What happened per event seq, keyed by (rule, step)."""
    rows: dict[str, list[ActionRecord]] = defaultdict(list)
    for row in await admin.actions_of([past.stored.uuid for past in events]):
        rows[row.event_id].append(row)
    done: dict[int, dict[tuple[str, str], Done]] = defaultdict(dict)
    for past in events:
        actions = done[past.stored.seq]
        for rule in (past.trace or {}).get("rules", []):
            for step in rule.get("actions", []):
                actions[rule["rule"], step["step"]] = Done(None, step["action"], None)
        for row in rows[past.stored.uuid]:
            actions[row.rule_id, row.step] = Done(
                row.plugin, row.description, row.payload
            )
    return done


def _compare(
    done: dict[tuple[str, str], Done], result: DryResult, dry: DryRun
) -> list[ActionDiff]:
    decision = result.decision
    now = {(a.rule_id, a.step): a for a in decision.actions} if decision else {}
    keys = [*done, *(key for key in now if key not in done)]
    diffs = [_diff(done.get(key), now.get(key), key, result, dry) for key in keys]
    return [diff for diff in diffs if diff is not None]


def _diff(
    old: Done | None,
    new: ActionToQueue | None,
    key: tuple[str, str],
    result: DryResult,
    dry: DryRun,
) -> ActionDiff | None:
    event = result.event
    base = ActionDiff(
        "added", event.id, event.kind, shown_time(event.local_time), *key, ""
    )
    if new is None:
        assert old is not None
        return replace(
            base,
            change="removed",
            description=old.description,
            before=_shown(old, dry),
            why=_why_gone(result, key[0]),
        )
    after = dry.redact(new.plugin, new.payload)
    if old is None:
        return replace(base, description=new.description, after=after)
    if not _differs(old, new):
        return None
    return replace(
        base,
        change="changed",
        description=new.description,
        before=_shown(old, dry),
        after=after,
    )


def _why_gone(result: DryResult, rule_id: str) -> str:
    rule = result.rule(rule_id)
    if rule is None:
        return "the rule is no longer in the rules file"
    if rule.get("fired"):
        return "the rule no longer has this step"
    return why_not_fired(rule)


def _shown(old: Done, dry: DryRun) -> dict[str, Any] | None:
    if old.plugin is None or old.payload is None:
        return None
    return dry.redact(old.plugin, old.payload)


def _differs(old: Done, new: ActionToQueue) -> bool:
    if old.payload is None:  # pruned from the outbox: only its description is known
        return old.description != new.description
    # Compared as stored: JSON has no tuples, and keys are strings.
    as_stored = json.loads(json.dumps(new.payload))
    return old.plugin != new.plugin or old.payload != as_stored


_SIGNS = {"removed": "-", "added": "+", "changed": "~"}
_VERBS = {
    "removed": "would no longer run",
    "added": "would now run",
    "changed": "would run with another payload",
}


def report_lines(report: ReplayReport, rules: str) -> list[str]:
    """The report in words: a summary, then one entry per differing action."""
    lines = [
        f"replayed {report.replayed} event(s) received since "
        f"{shown_time(report.since)} with the rules of {rules} "
        f"({report.warmed_up} earlier for rule state, {report.skipped} skipped: "
        "undecided or pruned)"
    ]
    if not report.diffs:
        return [*lines, "no action would differ"]
    lines.append(f"{len(report.diffs)} action(s) would differ:")
    for diff in report.diffs:
        lines.append(
            f"{_SIGNS[diff.change]} event {diff.event_id} ({diff.kind}, "
            f"{diff.local_time}): rule {diff.rule_id} step {diff.step}, "
            f"{diff.description}: {_VERBS[diff.change]}"
        )
        if diff.why:
            lines.append(INDENT * 2 + diff.why)
        if diff.before is not None:
            lines.append(f"{INDENT * 2}was: {show_payload(diff.before)}")
        if diff.after is not None:
            label = "now: " if diff.change == "changed" else ""
            lines.append(f"{INDENT * 2}{label}{show_payload(diff.after)}")
    return lines
