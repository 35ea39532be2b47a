"""`trace` and `replay`: what the daemon decided, and what other rules would have."""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

from genea_automate.cli.columns import aligned
from genea_automate.cli.options import (
    add_store_options,
    load_for_dry_run,
    parse_when,
    with_daemon_store,
)
from genea_automate.config.values import parse_duration
from genea_automate.errors import GeneaAutomateError
from genea_automate.store.admin import EventQuery, EventRecord, StoreAdmin
from genea_automate.store.base import Store


def register(commands: Any) -> None:
    trace = commands.add_parser(
        "trace",
        help="why each rule did or did not fire for an event",
        description=(
            "With EVENT_ID, print every rule's verdict on that event, each "
            "condition with the value it read, and what became of its actions. "
            "Without, list the decisions that match the filters, the last "
            "received first."
        ),
    )
    trace.add_argument(
        "event_id", nargs="?", metavar="EVENT_ID", help="a Genea event uuid"
    )
    trace.add_argument("--rule", help="events whose `when` this rule matched")
    trace.add_argument("--door", help="part of a door name")
    trace.add_argument("--user", help="part of a user's name")
    trace.add_argument("--location", help="part of a location name")
    trace.add_argument("--kind", help="a kind, e.g. access.denied (and below it)")
    trace.add_argument(
        "--since",
        type=parse_when,
        metavar="TIME",
        help="received at or after TIME, e.g. 2h or 2025-03-03T00:00Z",
    )
    trace.add_argument("--limit", type=int, default=50, help="at most (default: 50)")
    add_store_options(trace)
    trace.set_defaults(run=_trace)

    replay = commands.add_parser(
        "replay",
        help="stored events through the rules, dry; list what would differ",
        description=(
            "Decide the events stored since TIME again with the rules of -c, "
            "without side effects, and list every action that would differ from "
            "what the daemon queued. Exit status 1 when any differs, as diff does."
        ),
    )
    replay.add_argument(
        "--since",
        type=parse_when,
        required=True,
        metavar="TIME",
        help="e.g. 7d, or 2025-03-03T00:00:00-05:00",
    )
    replay.add_argument(
        "--warmup",
        type=_duration,
        default="1d",
        metavar="DURATION",
        help="decide this much before TIME too, uncompared, so that rule state "
        "(first arrivals...) is as it was (default: 1d)",
    )
    add_store_options(replay)
    replay.set_defaults(run=_replay, error_status=2)


def _duration(text: str) -> Any:
    try:
        return parse_duration(text)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None


def _trace(args: argparse.Namespace) -> int:
    query = EventQuery(
        event_id=args.event_id,
        kind=args.kind,
        location=args.location,
        door=args.door,
        user=args.user,
        rule=args.rule,
        since=args.since,
        limit=args.limit,
    )

    async def lines(store: Store) -> list[str]:
        found = await store.admin.events(query)
        if args.event_id is None:
            return _listing(found, args.rule) if found else []
        return await _explained(store.admin, found)

    output = with_daemon_store(args, lines)
    if not output and args.event_id:
        raise GeneaAutomateError(
            f"no event {args.event_id!r} in the store; old ones are pruned "
            "(traces: keep_for in the rules file)"
        )
    if not output and args.rule:
        _check_rule_exists(args.config, args.rule)
    print("\n".join(output or ["no stored event matches"]))
    return 0


def _check_rule_exists(config: Path, rule_id: str) -> None:
    """Refuse a --rule that matched nothing and is not in the rules file.

    Checked only then: the traces of a rule removed since are still shown. The
    file is read as YAML only, so its `${VAR}` secrets need not be set.
    """
    from genea_automate.config.issues import did_you_mean
    from genea_automate.config.yamlload import load_yaml

    rules = load_yaml(config).data.get("rules")
    ids = [
        str(rule["id"])
        for rule in (rules if isinstance(rules, list) else [])
        if isinstance(rule, dict) and "id" in rule
    ]
    if rule_id not in ids:
        raise GeneaAutomateError(
            f"there is no rule {rule_id!r} in {config}{did_you_mean(rule_id, ids)}"
        )


async def _explained(admin: StoreAdmin, found: list[EventRecord]) -> list[str]:
    from genea_automate.dryrun.explain import action_outcome, explain_trace

    lines: list[str] = []
    for record in found:
        if record.trace is None:
            lines.append(f"event {record.uuid}: {record.state}, no trace recorded")
            continue
        actions = await admin.actions_of([record.uuid])
        outcomes = {(a.rule_id, a.step): action_outcome(a) for a in actions}
        lines += explain_trace(record.trace, outcomes=outcomes)
    return lines


def _listing(found: list[EventRecord], rule_id: str | None) -> list[str]:
    header = ("RECEIVED", "EVENT TIME", "EVENT", "KIND", "WHERE", "VERDICT")
    return aligned([header, *(_summary(record, rule_id) for record in found)])


def _summary(record: EventRecord, rule_id: str | None) -> tuple[str, ...]:
    """One listed event: when it was received (the listing's order), its own
    time where it happened, and the verdict."""
    from genea_automate.dryrun.explain import shown_time, why_not_fired

    trace = record.trace or {}
    happened = trace.get("local_time")
    where = " / ".join(
        str(part)
        for part in (trace.get("location"), trace.get("door"), trace.get("actor"))
        if part
    )
    fired = [r["rule"] for r in trace.get("rules", []) if r.get("fired")]
    verdict = f"fired {', '.join(fired)}" if fired else "no rule fired"
    if record.trace is None:
        verdict = record.state
    elif rule_id is not None:
        rule: dict[str, Any] = next(
            (r for r in trace["rules"] if r["rule"] == rule_id), {}
        )
        verdict = (
            "fired" if rule.get("fired") else f"did not fire: {why_not_fired(rule)}"
        )
        verdict = f"{rule_id} {verdict}"
    return (
        shown_time(record.received_at),
        shown_time(happened) if happened else "-",
        record.uuid,
        record.kind or "?",
        where or "-",
        verdict,
    )


def _replay(args: argparse.Namespace) -> int:
    from genea_automate.dryrun.replay import replay, report_lines

    loaded = load_for_dry_run(args.config)
    report = with_daemon_store(
        args, lambda store: replay(loaded, store.admin, args.since, args.warmup)
    )
    print("\n".join(report_lines(report, str(args.config))))
    return 1 if report.diffs else 0
