"""Decision traces in words: why each rule fired or did not.

`simulate`, `trace`, `test` failures and `replay` print through here, so a
verdict reads the same wherever it is shown.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from datetime import datetime
from typing import Any

from genea_automate.dryrun.runner import ShownAction
from genea_automate.store.admin import ActionRecord

Trace = Mapping[str, Any]
INDENT = "  "


def shown_time(when: datetime | str) -> str:
    """A time as these commands print one: ISO 8601 to the second, with offset.

    Traces keep times as ISO text, with Genea's milliseconds when it sent any.
    """
    moment = datetime.fromisoformat(when) if isinstance(when, str) else when
    return moment.isoformat(timespec="seconds")


def event_heading(trace: Trace) -> list[str]:
    """Two lines: the event and kind, then when, where and who."""
    local_time = trace.get("local_time")
    where = [
        shown_time(local_time) if local_time else None,
        trace.get("location"),
        f"door {trace['door']}" if trace.get("door") else None,
        trace.get("actor"),
    ]
    lines = [f"event {trace.get('event_id') or '?'}: {trace.get('kind', '?')}"]
    details = ", ".join(str(part) for part in where if part)
    if details:
        lines.append(INDENT + details)
    return lines


def explain_trace(
    trace: Trace,
    actions: Sequence[ShownAction] = (),
    outcomes: Mapping[tuple[str, str], str] | None = None,
    *,
    dry: bool = False,
) -> list[str]:
    """Every rule's verdict with its conditions, then the actions it queued.

    `actions` adds each rendered payload; `outcomes` by (rule, step) adds what
    became of a recorded action (delivered, dead...). `dry` says "would".
    """
    lines = event_heading(trace)
    for rule in trace.get("rules", []):
        lines.append(_verdict(rule, dry))
        lines += explain_rule(rule, INDENT)
        payloads = {a.step: a.payload for a in actions if a.rule_id == rule["rule"]}
        for action in rule.get("actions", []):
            step = action["step"]
            done = (outcomes or {}).get((rule["rule"], step))
            line = f"{INDENT}step {step}: {action['action']}"
            lines.append(line + (f" ({done})" if done else ""))
            if step in payloads:
                lines.append(INDENT * 2 + show_payload(payloads[step]))
    return lines


def _verdict(rule: Mapping[str, Any], dry: bool) -> str:
    fires, not_fires = (
        ("would fire", "would not fire") if dry else ("fired", "did not fire")
    )
    verdict = fires if rule.get("fired") else not_fires
    return f"rule {rule['rule']}: {verdict}"


def explain_rule(rule: Mapping[str, Any], indent: str = "") -> list[str]:
    """The `when` verdict, each condition evaluated, and render errors."""
    if not rule.get("matched"):
        reason = rule.get("reason", "no reason recorded")
        return [f"{indent}{_stopped_by(rule)}: no, {reason}"]
    lines = [f"{indent}when: yes"]
    for condition in rule.get("conditions", []):
        lines += _condition_lines(condition, indent)
    lines += [f"{indent}error: {error}" for error in rule.get("errors", [])]
    return lines


def _stopped_by(rule: Mapping[str, Any]) -> str:
    """The part of a rule that said no before its conditions ran: `enabled`,
    `when` or `max_event_age` (traces stored before it was recorded: `when`)."""
    return str(rule.get("stopped_by", "when"))


def _condition_lines(condition: Mapping[str, Any], indent: str) -> list[str]:
    verdict = "yes" if condition["passed"] else "no"
    children = condition.get("children")
    if not children:
        return [f"{indent}{condition['condition']}: {verdict}, {condition['detail']}"]
    lines = [f"{indent}{condition['condition']}: {verdict}"]
    for child in children:
        lines += _condition_lines(child, indent + INDENT)
    return lines


def why_not_fired(rule: Mapping[str, Any]) -> str:
    """One sentence naming what stopped a rule: its `when`, a condition, an error."""
    if not rule.get("matched"):
        reason = rule.get("reason", "?")
        stopped_by = _stopped_by(rule)
        if stopped_by == "enabled":
            return f"{reason} (`enabled: false`)"
        if stopped_by == "max_event_age":
            return f"the event is too old for it: {reason}"
        return f"its `when` did not match: {reason}"
    failed = [c for c in rule.get("conditions", []) if not c["passed"]]
    if failed:
        return _said_no(failed[0])
    errors = rule.get("errors", [])
    return f"an action failed to render: {errors[0]}" if errors else "it fired"


def _said_no(condition: Mapping[str, Any]) -> str:
    name, children = condition["condition"], condition.get("children", [])
    if name == "all" and children:
        return _said_no(next(c for c in children if not c["passed"]))
    if name == "any" and children:
        reasons = "; ".join(_said_no(child) for child in children)
        return f"no condition of `any` held ({reasons})"
    if name == "not" and children:
        inner = children[0]
        held = f"{inner['condition']} held: {inner['detail']}"
        return f"the condition `not` said no, as {held}"
    return f"the condition {name} said no: {condition['detail']}"


def show_payload(payload: Mapping[str, Any]) -> str:
    """A payload on one line, in the order its plugin wrote it."""
    return json.dumps(payload, ensure_ascii=False, default=str)


def action_outcome(action: ActionRecord) -> str:
    """What became of a queued action, in a few words."""
    if action.state == "pending" and action.last_error:
        return f"retrying after {action.attempts} attempt(s): {action.last_error}"
    if action.state == "dead":
        return f"dead letter after {action.attempts} attempt(s): {action.last_error}"
    return action.state
