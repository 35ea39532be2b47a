"""Rule-test files (`*.tests.yaml`): events in order, and what each must cause.

    payload: examples/access-granted.json      # the base payload of every event
    tests:
      - name: the first badge of the day starts the coffee
        events:
          - time: 2025-03-03T08:58:00-05:00     # sets event_time
            expect:
              fires: [morning-coffee]
              actions:
                - rule: morning-coffee
                  mqtt: {topic: office/coffee/set, payload: "ON"}
          - time: 2025-03-03T09:10:00-05:00
            set: {actor.user_name: Sam Example}  # dotted paths into the payload
            expect: {does_not_fire: [morning-coffee]}

Payload paths are relative to the test file. Each test starts from empty rule
state; its events are decided in order, each at its own time unless `at` sets
the clock (to try a late, buffered event).
"""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from pydantic import AwareDatetime, ConfigDict, Field, ValidationError, model_validator

from genea_automate.config.endpoints import FrozenModel
from genea_automate.config.issues import issue_at, issues_from_validation_error
from genea_automate.config.yamlload import LoadedYaml, load_yaml
from genea_automate.errors import ConfigError, ConfigIssue

MATCH_OPERATORS = ("contains", "matches", "json")


class ActionExpectation(FrozenModel):
    """A rendered action that must be queued: `rule`, maybe `step`, and one
    action key (`mqtt`, `slack`...) whose fields the payload must match."""

    model_config = ConfigDict(frozen=True, extra="allow")

    rule: str
    step: int | None = Field(default=None, ge=0)

    @model_validator(mode="after")
    def _one_action(self) -> ActionExpectation:
        extra = self.model_extra or {}
        if len(extra) != 1 or not isinstance(next(iter(extra.values())), dict):
            found = ", ".join(extra) or "none"
            raise ValueError(
                "an expected action has `rule`, maybe `step`, and one action key "
                f"with the fields to match, e.g. mqtt: {{topic: a/b}}; found {found}"
            )
        return self

    @property
    def plugin(self) -> str:
        return next(iter(self.model_extra or {}))

    @property
    def fields(self) -> dict[str, Any]:
        return dict(next(iter((self.model_extra or {}).values())))


class Expectation(FrozenModel):
    fires: list[str] = []
    does_not_fire: list[str] = []
    actions: list[ActionExpectation] = []


class EventStep(FrozenModel):
    """One event of a test: a payload, changed fields, its time, expectations."""

    name: str | None = None
    payload: str | None = None
    set: dict[str, Any] = {}
    time: AwareDatetime | None = None
    at: AwareDatetime | None = None
    expect: Expectation = Expectation()


class RuleTest(FrozenModel):
    name: str
    payload: str | None = None
    events: list[EventStep] = Field(min_length=1)


class RuleTestFile(FrozenModel):
    payload: str | None = None
    tests: list[RuleTest] = Field(min_length=1)


def load_test_file(path: Path) -> tuple[RuleTestFile, LoadedYaml]:
    """The validated test file and its YAML positions, or ConfigError."""
    loaded = load_yaml(path)
    if loaded.issues:
        raise ConfigError(loaded.issues)
    try:
        tests = RuleTestFile.model_validate(loaded.data)
    except ValidationError as exc:
        raise ConfigError(
            issues_from_validation_error(exc, loaded, RuleTestFile)
        ) from exc
    missing = _missing_payloads(tests, loaded, path.parent)
    if missing:
        raise ConfigError(missing)
    return tests, loaded


def _missing_payloads(
    tests: RuleTestFile, loaded: LoadedYaml, folder: Path
) -> list[ConfigIssue]:
    issues = []
    for i, case in enumerate(tests.tests):
        for j, step in enumerate(case.events):
            where = ("tests", i, "events", j)
            name = step.payload or case.payload or tests.payload
            if name is None:
                message = "no payload: give `payload:` here, in the test or at the top"
                issues.append(issue_at(loaded, where, message))
            elif not (folder / name).is_file():
                message = f"no payload file {name!r} next to the test file"
                issues.append(issue_at(loaded, (*where, "payload"), message))
    return issues


def event_body(folder: Path, name: str, step: EventStep, used_ids: set[str]) -> bytes:
    """The webhook body of one test event: its payload file, changed as told.

    A payload used twice in one test gets a fresh uuid the second time (unless
    `set` gives one), since Genea never sends two events with one uuid.
    """
    data: dict[str, Any] = json.loads((folder / name).read_text(encoding="utf-8"))
    if step.time is not None:
        data["event_time"] = genea_time(step.time)
    for dotted, value in step.set.items():
        set_path(data, dotted, value)
    uuid = str(data.get("uuid", "event"))
    if "uuid" not in step.set:
        base, count = uuid, 1
        while uuid in used_ids:
            count += 1
            uuid = f"{base}-{count}"
        data["uuid"] = uuid
    used_ids.add(uuid)
    return json.dumps(data, separators=(",", ":"), ensure_ascii=False).encode()


def genea_time(when: datetime) -> str:
    """A time as Genea writes it: UTC with milliseconds, `2025-03-03T13:58:11.000Z`."""
    return when.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%f")[:-3] + "Z"


def set_path(data: dict[str, Any], dotted: str, value: Any) -> None:
    """Set `a.b.0.c` in nested dicts and lists; a missing or null part becomes {}."""
    node: Any = data
    *parents, last = dotted.split(".")
    try:
        for part in parents:
            if isinstance(node, list):
                node = node[int(part)]
            else:
                if node.get(part) is None:
                    node[part] = {}
                node = node[part]
        if isinstance(node, list):
            node[int(last)] = value
        else:
            node[last] = value
    except (AttributeError, IndexError, TypeError, ValueError) as exc:
        raise ValueError(
            f"set: {dotted!r} does not fit the payload ({exc}); use dotted keys, "
            "and numbers for list items, e.g. location.0.name"
        ) from None
