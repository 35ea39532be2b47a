"""match: any event field by dotted path, with equals, in, regex, glob, exists."""

from __future__ import annotations

import time
from collections.abc import Awaitable, Callable

import pytest

from tests.rules.conftest import Decide, rule_trace
from tests.support.genea import payload

Rules = Callable[[str], Awaitable[Decide]]


def rule(match: str) -> str:
    return f"""
        rules:
          - id: m
            when: door
            if: [{{match: {match}}}]
            then: [{{log: {{message: x}}}}]
    """


@pytest.mark.parametrize(
    ("match", "passed", "detail"),
    [
        (
            "{path: door.name, equals: Studio Main Entrance}",
            True,
            "door.name is 'Studio Main Entrance', equals 'Studio Main Entrance'",
        ),
        (
            "{path: door.name, equals: studio main entrance}",
            False,
            "door.name is 'Studio Main Entrance', not equals 'studio main entrance'",
        ),
        (
            "{path: door.name, equals: studio main entrance, ignore_case: true}",
            True,
            "door.name is 'Studio Main Entrance', equals 'studio main entrance'",
        ),
        (
            "{path: details.held_open.current, equals: true}",
            True,
            "details.held_open.current is True, equals True",
        ),
        (
            "{path: raw.event_type, in: [ACCESS, AUDIT]}",
            True,
            "raw.event_type is 'ACCESS', in ['ACCESS', 'AUDIT']",
        ),
        (
            "{path: raw.location.0.timezone, regex: '^Europe/'}",
            True,
            "raw.location.0.timezone is 'Europe/London', regex '^Europe/'",
        ),
        (
            "{path: door.model, glob: 'HID_RP*'}",
            True,
            "door.model is 'HID_RP10', glob 'HID_RP*'",
        ),
        ("{path: card.number, exists: true}", False, "card.number is absent"),
        ("{path: raw.event_note, exists: false}", True, "raw.event_note is absent"),
        (
            "{path: details.nothing.here, equals: x}",
            False,
            "details.nothing.here is absent",
        ),
    ],
    ids=[
        "equals",
        "equals-case",
        "ignore-case",
        "json-true",
        "in",
        "regex",
        "glob",
        "exists",
        "null-is-absent",
        "missing",
    ],
)
async def test_match_operators(
    rules: Rules, match: str, passed: bool, detail: str
) -> None:
    decide = await rules(rule(match))
    decision = await decide(payload("11"))
    [condition] = rule_trace(decision, "m")["conditions"]
    assert (condition["passed"], condition["detail"]) == (passed, detail)


async def test_match_combines_with_any_and_not(rules: Rules) -> None:
    decide = await rules("""
        rules:
          - id: other-doors-held
            when: door.held_open
            if:
              - not: {match: {path: door.name, in: [Server Room, Vault]}}
              - any:
                  - match: {path: location.timezone, equals: Europe/London}
                  - match: {path: location.timezone, equals: Europe/Paris}
            then: [{log: {message: x}}]
    """)
    assert (await decide(payload("11"))).fired == ["other-doors-held"]


@pytest.mark.parametrize("regex", [r"^\w+(\s\w+)*$", r"^(\w+\s?)++$"])
async def test_match_regex_without_backtracking_as_the_docs_advise(
    rules: Rules, regex: str
) -> None:
    """docs/rules.md: nested repetition takes seconds on this name; these do not."""
    decide = await rules(rule(f"{{path: door.name, regex: '{regex}'}}"))
    door = dict(payload("11")["door"], name="Loadingdockdoornorthwingb" * 4 + "!")
    started = time.monotonic()
    assert (await decide(payload("11", door=door))).fired == []
    assert time.monotonic() - started < 1
    assert (await decide(payload("11", uuid="good-name"))).fired == ["m"]
