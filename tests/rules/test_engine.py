"""Deciding events: filters, first arrivals, schedules, templates, traces."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from genea_automate.clock import FrozenClock
from tests.rules.conftest import Decide, rule_trace
from tests.support.genea import body_of, payload

Rules = Callable[[str], Awaitable[Decide]]

COFFEE = """
rules:
  - id: coffee
    when: {event: access.granted, location: Harborview Labs HQ}
    if:
      - first_arrival: location
    then:
      - mqtt: {topic: office/coffee/set, payload: "ON"}
"""


def granted(uuid: str, event_time: str, **changes: Any) -> dict[str, Any]:
    """Payload 01 (granted at Harborview Labs HQ, New York) at another time."""
    return payload("01", uuid=uuid, event_time=event_time, **changes)


async def test_first_arrival_fires_once_per_local_day(rules: Rules) -> None:
    decide = await rules(COFFEE)

    first = await decide(granted("a1", "2025-03-03T13:58:11.000Z"))
    second = await decide(granted("a2", "2025-03-03T15:00:00.000Z"))
    # 23:30 in New York is still the 3rd, though the 4th in UTC.
    evening = await decide(granted("a3", "2025-03-04T04:30:00.000Z"))
    next_day = await decide(granted("a4", "2025-03-04T12:00:00.000Z"))

    assert [d.fired for d in (first, second, evening, next_day)] == [
        ["coffee"],
        [],
        [],
        ["coffee"],
    ]
    [condition] = rule_trace(second, "coffee")["conditions"]
    assert condition == {
        "condition": "first_arrival",
        "passed": False,
        "detail": "not the first: Jordan Example arrived 08:58 local on 2025-03-03",
    }


async def test_first_arrival_late_event_does_not_fire_again(rules: Rules) -> None:
    decide = await rules(COFFEE)
    at_0810 = await decide(granted("b1", "2025-03-03T13:10:00.000Z"))
    buffered_0750 = await decide(granted("b2", "2025-03-03T12:50:00.000Z"))
    assert at_0810.fired == ["coffee"]
    assert buffered_0750.fired == []


async def test_first_arrival_same_uuid_on_another_endpoint_is_not_first(
    rules: Rules,
) -> None:
    """The claim names the event by endpoint and uuid: the same uuid on another
    endpoint is another, later arrival, not the event that made the claim."""
    decide = await rules(COFFEE)
    first = await decide(granted("7", "2025-03-03T13:58:11.000Z"))
    other = await decide(granted("7", "2025-03-03T15:00:00.000Z"), endpoint="other")

    assert (first.fired, other.fired) == (["coffee"], [])
    [condition] = rule_trace(other, "coffee")["conditions"]
    assert condition["detail"] == (
        "not the first: Jordan Example arrived 08:58 local on 2025-03-03"
    )


async def test_first_arrival_is_a_fact_whatever_the_schedule(rules: Rules) -> None:
    decide = await rules("""
        schedules:
          office-hours: {windows: [{days: mon-fri, from: "07:00", to: "19:00"}]}
        rules:
          - id: coffee
            when: access.granted
            if:
              - first_arrival: location
              - schedule: office-hours
            then:
              - log: {message: coffee}
    """)
    at_0500 = await decide(granted("c1", "2025-03-03T10:00:00.000Z"))
    at_0800 = await decide(granted("c2", "2025-03-03T13:00:00.000Z"))

    assert at_0500.fired == [] and at_0800.fired == []
    schedule = rule_trace(at_0500, "coffee")["conditions"][1]
    assert schedule["passed"] is False
    assert schedule["detail"] == "Mon 2025-03-03 05:00 EST is outside office-hours"


async def test_first_arrival_user_scope_counts_each_person(rules: Rules) -> None:
    decide = await rules("""
        rules:
          - id: clock-in
            when: access.granted
            if: [{first_arrival: user}]
            then: [{log: {message: "{{ actor.name }} in"}}]
    """)
    jordan = await decide(granted("d1", "2025-03-03T13:00:00.000Z"))
    jordan_again = await decide(granted("d2", "2025-03-03T14:00:00.000Z"))
    other_actor = dict(
        payload("01")["actor"], user_uuid="someone-else", user_name="Sam Other"
    )
    sam = await decide(granted("d3", "2025-03-03T14:30:00.000Z", actor=other_actor))
    assert [d.fired for d in (jordan, jordan_again, sam)] == [
        ["clock-in"],
        [],
        ["clock-in"],
    ]
    assert sam.actions[0].payload["message"] == "Sam Other in"


async def test_when_filters_by_uuid_and_name_ignoring_case(rules: Rules) -> None:
    decide = await rules("""
        rules:
          - id: by-uuid
            when: {event: access.granted, location: 3b6f2a10-8c1e-4d5a-9f21-0c7e5a9b1d01}
            then: [{log: {message: x}}]
          - id: by-name
            when: {event: access.granted, location: harborview labs hq}
            then: [{log: {message: x}}]
          - id: elsewhere
            when: {event: access.granted, location: Plant 3}
            then: [{log: {message: x}}]
    """)
    decision = await decide(granted("e1", "2025-03-03T13:00:00.000Z"))
    assert decision.fired == ["by-uuid", "by-name"]
    assert rule_trace(decision, "elsewhere")["reason"] == (
        "location 'Harborview Labs HQ' is not one of ['plant 3']"
    )


async def test_when_kind_prefix_matches_every_denial(rules: Rules) -> None:
    decide = await rules("""
        rules:
          - id: denied
            when: access.denied
            then: [{log: {message: "{{ kind }}"}}]
    """)
    denied = await decide(payload("06"))
    granted_event = await decide(payload("01"))
    assert denied.fired == ["denied"]
    assert denied.actions[0].payload["message"] == "access.denied.card_not_found"
    assert rule_trace(granted_event, "denied")["reason"] == (
        "kind access.granted is not access.denied"
    )


async def test_template_condition_and_any_not(rules: Rules) -> None:
    decide = await rules("""
        rules:
          - id: admins-or-night
            when: access.granted
            if:
              - any:
                  - template: "actor.role == 'ADMIN'"
                  - not: {schedule: {windows: [{from: "06:00", to: "22:00"}]}}
            then: [{log: {message: x}}]
    """)
    day_user = await decide(granted("f1", "2025-03-03T15:00:00.000Z"))
    night_user = await decide(granted("f2", "2025-03-04T04:00:00.000Z"))
    assert day_user.fired == [] and night_user.fired == ["admins-or-night"]
    [group] = rule_trace(day_user, "admins-or-night")["conditions"]
    assert group["detail"] == "template: no; not: no"


async def test_slack_text_escapes_event_values_only(rules: Rules) -> None:
    decide = await rules("""
        rules:
          - id: hello
            when: access.granted
            then:
              - slack: {text: "{{ location.name }}: <https://example.org|dashboard>"}
    """)
    location = dict(payload("01")["location"], name="R&D <Lab>")
    decision = await decide(
        granted("g1", "2025-03-03T13:00:00.000Z", location=location)
    )
    assert decision.actions[0].payload["text"] == (
        "R&amp;D &lt;Lab&gt;: <https://example.org|dashboard>"
    )


async def test_render_error_is_traced_and_queues_nothing(rules: Rules) -> None:
    decide = await rules("""
        rules:
          - id: typo
            when: access.granted
            then: [{log: {message: "{{ raw.nmae }}"}}]
    """)
    decision = await decide(payload("01"))
    trace = rule_trace(decision, "typo")
    assert decision.actions == [] and trace["fired"] is False
    assert "nmae" in trace["errors"][0]


async def test_max_event_age_keeps_late_events_from_firing(
    rules: Rules, clock: FrozenClock
) -> None:
    decide = await rules("""
        max_event_age: 6h
        rules:
          - id: clock-in
            max_event_age: 2h
            when: access.granted
            then: [{log: {message: x}}]
          - id: audit-log
            when: access.granted
            then: [{log: {message: x}}]
    """)
    clock.set(datetime(2025, 3, 3, 17, 0, tzinfo=UTC))
    fresh = await decide(granted("h1", "2025-03-03T16:30:00.000Z"))
    three_hours = await decide(granted("h2", "2025-03-03T14:00:00.000Z"))
    a_day = await decide(granted("h3", "2025-03-02T16:00:00.000Z"))

    assert fresh.fired == ["clock-in", "audit-log"]
    assert three_hours.fired == ["audit-log"]
    assert rule_trace(three_hours, "clock-in")["reason"] == (
        "the event is 3h old, more than 2h"
    )
    assert rule_trace(three_hours, "clock-in")["stopped_by"] == "max_event_age"
    assert a_day.fired == []
    assert rule_trace(a_day, "audit-log")["reason"] == (
        "the event is 1d1h old, more than 6h"
    )


async def test_lone_surrogate_in_a_name_is_repaired_not_fatal(rules: Rules) -> None:
    decide = await rules(COFFEE)
    body = body_of(granted("s1", "2025-03-03T13:00:00.000Z")).replace(
        b'"Jordan Example"', b'"Jordan \\ud800Example"'
    )
    decision = await decide(body)
    assert decision.fired == ["coffee"]
    later = await decide(granted("s2", "2025-03-03T14:00:00.000Z"))
    [condition] = rule_trace(later, "coffee")["conditions"]
    assert condition["detail"].startswith("not the first: Jordan \ufffdExample arrived")


async def test_deeply_nested_payload_is_decided(rules: Rules) -> None:
    decide = await rules("""
        rules:
          - id: any-event
            when: "*"
            then: [{log: {message: "{{ kind }} at {{ location.name }}"}}]
    """)
    deep = b"[" * 900 + b"]" * 900
    body = body_of(payload("10", uuid="deep")).replace(
        b'"event_note":null', b'"event_note":' + deep
    )
    decision = await decide(body)
    assert decision.fired == ["any-event"]
    assert decision.actions[0].payload["message"] == (
        "door.forced_open at Harborview Labs HQ"
    )


async def test_not_around_a_failing_template_does_not_fire(rules: Rules) -> None:
    decide = await rules("""
        rules:
          - id: outsiders
            when: access.denied
            if:
              - not: {template: "actor.email.endswith('@example.com')"}
            then: [{log: {message: x}}]
    """)
    decision = await decide(payload("06"))  # no actor: the template cannot run
    assert decision.fired == []
    [negation] = rule_trace(decision, "outsiders")["conditions"]
    assert (negation["passed"], negation["failed"]) == (False, True)


CRASHING_PLUGIN = """
from typing import Any, ClassVar

from pydantic import BaseModel

from genea_automate.plugin import ActionPlugin


class CrashOptions(BaseModel):
    hook: str


class CrashingAction(ActionPlugin[CrashOptions]):
    name: ClassVar[str] = "crashing"
    Options: ClassVar[type[BaseModel]] = CrashOptions

    def render(self, options: CrashOptions, ctx: Any) -> dict[str, Any]:
        if options.hook == "render":
            raise SystemExit(3)
        return {"hook": options.hook}

    def ordering_key(self, payload: dict[str, Any]) -> str:
        if payload["hook"] == "ordering_key":
            raise SystemExit(3)
        return self.name

    def describe(self, payload: dict[str, Any]) -> str:
        if payload["hook"] == "describe":
            raise SystemExit(3)
        return self.name

    async def deliver(self, payload: dict[str, Any], ctx: Any) -> None:
        pass
"""


CRASHES = """
rules:
  - id: crashes
    when: access.granted
    then:
      - crashing: {hook: HOOK}
  - id: logs
    when: access.granted
    then:
      - log: {message: "{{ actor.name }} came in"}
"""
CRASHED = (
    "the rule failed: PluginCrashError: action plugin 'crashing' raised SystemExit(3)"
)


@pytest.mark.parametrize("hook", ["render", "ordering_key", "describe"])
async def test_plugin_raising_system_exit_fails_its_rule_only(
    rules: Rules, tmp_path: Path, hook: str
) -> None:
    (tmp_path / "plugins").mkdir()
    (tmp_path / "plugins" / "crashing.py").write_text(CRASHING_PLUGIN)
    decide = await rules(CRASHES.replace("HOOK", hook))

    first = await decide(payload("01", uuid="e1"))
    second = await decide(payload("01", uuid="e2"))  # the store still writes

    assert rule_trace(first, "crashes") == {
        "rule": "crashes",
        "fired": False,
        "matched": True,
        "errors": [CRASHED],
    }
    assert first.fired == second.fired == ["logs"]
