"""Running rule-test files: each event decided dry, each expectation checked.

A failure names the test, the event (its place in the file), the rule, and what
said no: the `when` filter or the first condition that failed, with the value it
read, so the fix is usually obvious from the message alone.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from genea_automate.config.issues import did_you_mean, issue_at
from genea_automate.config.loader import LoadedConfig
from genea_automate.config.yamlload import LoadedYaml
from genea_automate.dryrun.explain import show_payload, shown_time, why_not_fired
from genea_automate.dryrun.runner import DryResult, DryRun, ShownAction
from genea_automate.dryrun.testfile import (
    MATCH_OPERATORS,
    ActionExpectation,
    EventStep,
    Expectation,
    RuleTestFile,
    event_body,
    load_test_file,
)
from genea_automate.errors import ConfigError, ConfigIssue


@dataclass(frozen=True, slots=True)
class Failure:
    where: str  # file:line of the event
    test: str
    event: str
    message: str

    def __str__(self) -> str:
        return f"{self.where}: {self.test}: {self.event}: {self.message}"


@dataclass(slots=True)
class FileReport:
    path: Path
    tests: int = 0
    failures: list[Failure] = field(default_factory=list)

    @property
    def failed_tests(self) -> int:
        return len({failure.test for failure in self.failures})


@dataclass(frozen=True, slots=True)
class CheckedFile:
    """A rule-test file checked against the rules, ready to run."""

    path: Path
    tests: RuleTestFile
    loaded: LoadedYaml


def check_test_files(paths: Sequence[Path], config: LoadedConfig) -> list[CheckedFile]:
    """Load every file and check the names it uses against the rules.

    ConfigError with the issues of every unfit file, so that all are reported
    at once and no test runs until all are fit.
    """
    checked: list[CheckedFile] = []
    issues: list[ConfigIssue] = []
    for path in paths:
        try:
            tests, loaded = load_test_file(path)
        except ConfigError as exc:
            issues += exc.issues
            continue
        issues += _unknown_names(tests, loaded, config)
        checked.append(CheckedFile(path, tests, loaded))
    if issues:
        raise ConfigError(issues)
    return checked


async def run_test_file(checked: CheckedFile, config: LoadedConfig) -> FileReport:
    """Run every test of one checked file against the rules."""
    path, tests, loaded = checked.path, checked.tests, checked.loaded
    report = FileReport(path, len(tests.tests))
    for i, case in enumerate(tests.tests):
        used_ids: set[str] = set()
        async with DryRun(config) as dry:
            for j, step in enumerate(case.events):
                where = _where(loaded, ("tests", i, "events", j))
                label = _label(j, step)
                payload = step.payload or case.payload or tests.payload
                assert payload is not None  # load_test_file checked it
                try:
                    body = event_body(path.parent, payload, step, used_ids)
                except ValueError as exc:
                    report.failures.append(Failure(where, case.name, label, str(exc)))
                    continue
                result = await dry.decide(body, step.at)
                label = f"{label} ({payload} at {shown_time(result.event.local_time)})"
                report.failures += [
                    Failure(where, case.name, label, message)
                    for message in check(step.expect, result)
                ]
    return report


def _label(index: int, step: EventStep) -> str:
    return f"event {index + 1}" + (f" {step.name!r}" if step.name else "")


def _where(loaded: LoadedYaml, path: tuple[str | int, ...]) -> str:
    issue = issue_at(loaded, path, "")
    return f"{issue.file}:{issue.line}"


def _unknown_names(
    tests: RuleTestFile, loaded: LoadedYaml, config: LoadedConfig
) -> Iterator[ConfigIssue]:
    """Rule ids and action names the rules file does not have."""
    rule_ids = [rule.id for rule in getattr(config.config, "rules", [])]
    actions = config.registry.names()
    for i, case in enumerate(tests.tests):
        for j, step in enumerate(case.events):
            base = ("tests", i, "events", j, "expect")
            for key in ("fires", "does_not_fire"):
                for k, rule_id in enumerate(getattr(step.expect, key)):
                    if rule_id not in rule_ids:
                        yield _unknown(
                            loaded, (*base, key, k), "rule", rule_id, rule_ids
                        )
            for k, action in enumerate(step.expect.actions):
                if action.rule not in rule_ids:
                    path = (*base, "actions", k, "rule")
                    yield _unknown(loaded, path, "rule", action.rule, rule_ids)
                if action.plugin not in actions:
                    path = (*base, "actions", k, action.plugin)
                    yield _unknown(loaded, path, "action", action.plugin, actions)


def _unknown(
    loaded: LoadedYaml,
    path: tuple[str | int, ...],
    what: str,
    name: str,
    known: list[str],
) -> ConfigIssue:
    hint = did_you_mean(name, known)
    return issue_at(loaded, path, f"the rules file has no {what} {name!r}{hint}")


def check(expect: Expectation, result: DryResult) -> list[str]:
    """What went other than expected for one event; empty when all is well."""
    if result.decision is None:
        return [f"uuid {result.event.id!r} was already decided; set a new uuid"]
    problems = []
    silent = [
        rule_id for rule_id in expect.fires if rule_id not in result.decision.fired
    ]
    for rule_id in silent:
        rule = result.rule(rule_id) or {}
        problems.append(f"expected rule {rule_id} to fire, but {why_not_fired(rule)}")
    for rule_id in expect.does_not_fire:
        if rule_id in result.decision.fired:
            problems.append(f"expected rule {rule_id} not to fire, but it fired")
    # A rule that did not fire was reported above; its actions need no word.
    for wanted in (a for a in expect.actions if a.rule not in silent):
        problem = _action_problem(wanted, result)
        if problem:
            problems.append(problem)
    return problems


def _action_problem(wanted: ActionExpectation, result: DryResult) -> str | None:
    rule = result.rule(wanted.rule) or {}
    if not rule.get("fired"):
        return f"expected an action of rule {wanted.rule}, but {why_not_fired(rule)}"
    candidates = [
        action
        for action in result.actions
        if action.rule_id == wanted.rule
        and action.plugin == wanted.plugin
        and (wanted.step is None or action.step == str(wanted.step))
    ]
    misses = []
    for action in candidates:
        miss = mismatch(wanted.fields, action.payload, wanted.plugin)
        if miss is None:
            return None
        misses.append(f"step {action.step}: {miss}")
    step = "" if wanted.step is None else f" at step {wanted.step}"
    if not candidates:
        queued = ", ".join(
            f"step {a.step} {a.plugin}" for a in _of(result, wanted.rule)
        )
        return (
            f"expected rule {wanted.rule} to queue a {wanted.plugin} action{step}; "
            f"it queued {queued or 'nothing'}"
        )
    return (
        f"rule {wanted.rule} queued no {wanted.plugin} action{step} like the one "
        f"expected: {'; '.join(misses)}"
    )


def _of(result: DryResult, rule_id: str) -> list[ShownAction]:
    return [action for action in result.actions if action.rule_id == rule_id]


def mismatch(expected: Any, actual: Any, path: str) -> str | None:
    """Why `actual` does not match `expected`, or None when it does.

    A mapping matches a mapping with at least those keys; {contains: text},
    {matches: regex} and {json: value} test a string; anything else must be
    equal.
    """
    if isinstance(expected, dict) and len(expected) == 1:
        [(operator, operand)] = expected.items()
        if operator in MATCH_OPERATORS:
            return _operator_mismatch(operator, operand, actual, path)
    if isinstance(expected, dict):
        if not isinstance(actual, dict):
            return f"{path} is {show_payload(actual)}, not a mapping"
        for key, value in expected.items():
            if key not in actual:
                return f"{path}.{key} is missing (the payload has {', '.join(actual)})"
            miss = mismatch(value, actual[key], f"{path}.{key}")
            if miss:
                return miss
        return None
    if expected == actual:
        return None
    return f"{path} is {show_payload(actual)}, expected {show_payload(expected)}"


def _operator_mismatch(
    operator: str, operand: Any, actual: Any, path: str
) -> str | None:
    if not isinstance(actual, str):
        return f"{path} is {show_payload(actual)}, not text to test with {operator}"
    if operator == "contains":
        found = str(operand) in actual
        return None if found else f"{path} {actual!r} does not contain {operand!r}"
    if operator == "matches":
        found = re.search(str(operand), actual) is not None
        return None if found else f"{path} {actual!r} does not match /{operand}/"
    try:
        parsed = json.loads(actual)
    except ValueError:
        return f"{path} {actual!r} is not JSON"
    return mismatch(operand, parsed, path)
