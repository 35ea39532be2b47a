"""`simulate` and `test`: what the rules do with an event, before they go live."""

from __future__ import annotations

import argparse
import asyncio
import sys
from datetime import datetime
from pathlib import Path
from typing import Any

from genea_automate.cli.options import add_config_option, load_for_dry_run, parse_when

TESTS_GLOB = "*.tests.yaml"


def register(commands: Any) -> None:
    simulate = commands.add_parser(
        "simulate",
        help="which rules an event fires, and why; no side effects",
        description=(
            "Decide EVENT.json with the rules and print every rule's verdict, each "
            "condition with the value it read, and the actions that would run. "
            "Nothing is stored, sent or queued."
        ),
    )
    simulate.add_argument(
        "event", type=Path, metavar="EVENT.json", help="a Genea webhook body"
    )
    simulate.add_argument(
        "--at",
        type=parse_when,
        metavar="TIME",
        help="the clock when deciding, e.g. 2025-03-03T08:30:00-05:00 (default: now)",
    )
    simulate.add_argument(
        "--state",
        choices=["empty", "current"],
        default="empty",
        help="rule state to start from: none (default), or a copy of the "
        "daemon's store, so that today's first arrival is known",
    )
    add_config_option(simulate)
    simulate.set_defaults(run=_simulate)

    test = commands.add_parser(
        "test",
        help="run rule-test files; exit 1 if any test fails",
        description=(
            "Run rule-test files (YAML: events and what they must cause) with a "
            f"frozen clock and no network. Default: every {TESTS_GLOB} file next "
            "to the rules file."
        ),
    )
    test.add_argument("files", nargs="*", type=Path, metavar="FILE")
    add_config_option(test)
    test.set_defaults(run=_test)


def _simulate(args: argparse.Namespace) -> int:
    from genea_automate.dryrun.explain import explain_trace, shown_time
    from genea_automate.dryrun.runner import DryResult, DryRun

    loaded = load_for_dry_run(args.config)
    body = _read(args.event)

    async def decide() -> tuple[DryResult, datetime]:
        async with DryRun(loaded, seed=args.state) as dry:
            at = args.at or dry.now()
            return await dry.decide(body, at), at

    result, at = asyncio.run(decide())
    print(f"simulated at {shown_time(at)} from {args.state} rule state")
    if result.decision is None:
        print(f"event {result.event.id} was decided already; nothing to do")
        return 0
    print("\n".join(explain_trace(result.trace, result.actions, dry=True)))
    return 0


def _read(path: Path) -> bytes:
    from genea_automate.errors import GeneaAutomateError

    try:
        return path.read_bytes()
    except OSError as exc:
        raise GeneaAutomateError(f"cannot read {path}: {exc.strerror}") from None


def tests_beside(config: Path) -> list[Path]:
    """The rule-test files next to a rules file, but those named after another
    rules file there (`rules.example.tests.yaml` goes with `rules.example.yaml`,
    not with a `rules.yaml` copied from it)."""

    def ours(path: Path) -> bool:
        rules = path.with_name(path.name.removesuffix(".tests.yaml") + ".yaml")
        return not rules.is_file() or rules.resolve() == config.resolve()

    return [path for path in sorted(config.parent.glob(TESTS_GLOB)) if ours(path)]


def _test(args: argparse.Namespace) -> int:
    from genea_automate.dryrun.testrun import check_test_files, run_test_file

    loaded = load_for_dry_run(args.config)
    files = args.files or tests_beside(args.config)
    if not files:
        print(
            f"error: no test files given, and no {TESTS_GLOB} next to {args.config}",
            file=sys.stderr,
        )
        return 1
    passed = failed = 0
    for checked in check_test_files(files, loaded):
        report = asyncio.run(run_test_file(checked, loaded))
        for failure in report.failures:
            print(f"FAIL {failure}")
        passed += report.tests - report.failed_tests
        failed += report.failed_tests
    print(f"{passed} test(s) passed, {failed} failed")
    return 1 if failed else 0
