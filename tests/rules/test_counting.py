"""count and cooldown: bursts per key, by event time, in the store."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

from tests.rules.conftest import Decide, rule_trace
from tests.support.genea import payload

Rules = Callable[[str], Awaitable[Decide]]

DOCK = payload("06")["door"]
SIDE_DOOR = payload("07")["door"]
PROBING = """
rules:
  - id: badge-probing
    when: {{event: access.denied}}
    if:
      - count: {{at_least: 3, within: 5m, per: door}}
      {cooldown}
    then:
      - log: {{message: "3 denied badges at {{{{ door.name }}}}"}}
"""


def denied(uuid: str, at: str, door: dict[str, Any] = DOCK, kind: str = "06") -> Any:
    """A denied badge (06 card not found, 07 expired, 09 bad facility code)."""
    return payload(
        kind,
        uuid=uuid,
        event_time=f"2025-03-03T{at}.000Z",
        door=door,
        location=payload("06")["location"],
    )


async def fired(decide: Decide, *events: dict[str, Any]) -> list[bool]:
    return [bool((await decide(event)).fired) for event in events]


async def test_count_three_denials_at_one_door_fire_once(rules: Rules) -> None:
    decide = await rules(PROBING.format(cooldown=""))
    verdicts = await fired(
        decide,
        denied("d1", "15:00:00", kind="06"),
        denied("d2", "15:02:00", kind="07"),
        denied("d3", "15:04:30", kind="09"),
    )
    assert verdicts == [False, False, True]


async def test_count_three_denials_over_two_doors_do_not_fire(rules: Rules) -> None:
    decide = await rules(PROBING.format(cooldown=""))
    verdicts = await fired(
        decide,
        denied("d1", "15:00:00"),
        denied("d2", "15:01:00", door=SIDE_DOOR),
        denied("d3", "15:02:00"),
    )
    assert verdicts == [False, False, False]


async def test_count_same_uuid_on_other_endpoints_counts_each(rules: Rules) -> None:
    """Events are counted by endpoint and uuid: two Genea accounts may send
    the same uuid, and those are two events."""
    decide = await rules(PROBING.format(cooldown=""))
    verdicts = []
    for endpoint, at in (("main", "15:00:00"), ("b", "15:01:00"), ("c", "15:02:00")):
        decision = await decide(denied("7", at), endpoint=endpoint)
        verdicts.append(bool(decision.fired))
    assert verdicts == [False, False, True]


async def test_count_trace_says_how_many(rules: Rules) -> None:
    decide = await rules(PROBING.format(cooldown=""))
    await decide(denied("d1", "15:00:00"))
    second = await decide(denied("d2", "15:01:00"))
    [condition] = rule_trace(second, "badge-probing")["conditions"]
    assert condition == {
        "condition": "count",
        "passed": False,
        "detail": "2 access.denied event(s) within 5m at door 'Loading Dock Door'; "
        "at least 3 needed",
    }


async def test_count_window_is_measured_on_event_times(rules: Rules) -> None:
    decide = await rules(PROBING.format(cooldown=""))
    spread = await fired(
        decide,
        denied("d1", "15:00:00"),
        denied("d2", "15:03:00"),
        denied("d3", "15:06:00"),  # d1 is more than 5m before it
    )
    # Buffered by the controller and delivered last, yet inside the burst.
    late = await fired(decide, denied("d4", "15:02:00"))
    assert spread == [False, False, False]
    assert late == [True]


async def test_count_fourth_event_passes_again_without_cooldown(rules: Rules) -> None:
    decide = await rules(PROBING.format(cooldown=""))
    verdicts = await fired(
        decide, *(denied(f"d{n}", f"15:0{n}:00") for n in range(1, 5))
    )
    assert verdicts == [False, False, True, True]


async def test_count_with_cooldown_fires_once_per_burst_and_door(rules: Rules) -> None:
    decide = await rules(PROBING.format(cooldown="- cooldown: {for: 15m, per: door}"))
    dock = await fired(decide, *(denied(f"d{n}", f"15:0{n}:00") for n in range(1, 6)))
    side = await fired(
        decide, *(denied(f"s{n}", f"15:0{n}:30", door=SIDE_DOOR) for n in range(1, 4))
    )
    later = await fired(decide, *(denied(f"l{n}", f"15:2{n}:00") for n in range(1, 4)))
    assert dock == [False, False, True, False, False]
    assert side == [False, False, True]
    assert later == [False, False, True]


async def test_count_kinds_counts_other_events_than_the_trigger(rules: Rules) -> None:
    decide = await rules("""
        rules:
          - id: forced-after-denials
            when: door.forced_open
            if:
              - count: {kinds: access.denied, at_least: 2, within: 10m, per: door}
            then: [{log: {message: "forced after denials"}}]
    """)
    forced = payload("10", uuid="f1", event_time="2025-03-03T15:08:00.000Z")
    before = await fired(decide, forced | {"uuid": "f0"})
    await fired(decide, denied("d1", "15:00:00"), denied("d2", "15:05:00"))
    assert before == [False]
    assert await fired(decide, forced) == [True]


async def test_cooldown_starts_only_when_the_rule_fires(rules: Rules) -> None:
    decide = await rules("""
        rules:
          - id: admin-badge
            when: access.denied
            if:
              - cooldown: {for: 15m, per: door}
              - template: "actor.role == 'ADMIN'"
            then: [{log: {message: x}}]
    """)
    admin = dict(payload("07")["actor"], user_location_role="ADMIN")
    verdicts = await fired(
        decide,
        denied("u1", "15:00:00", kind="07"),  # not an admin: does not fire
        denied("a1", "15:01:00", kind="07") | {"actor": admin},
        denied("a2", "15:10:00", kind="07") | {"actor": admin},
    )
    assert verdicts == [False, True, False]


async def test_cooldown_trace_says_when_it_last_fired(rules: Rules) -> None:
    decide = await rules("""
        rules:
          - id: every-denial
            when: access.denied
            if: [{cooldown: 15m}]
            then: [{log: {message: x}}]
    """)
    await decide(denied("d1", "15:00:00"))
    second = await decide(denied("d2", "15:04:00", door=SIDE_DOOR))
    [condition] = rule_trace(second, "every-denial")["conditions"]
    assert condition["detail"] == "the rule fired 4m before this event; cooldown 15m"
