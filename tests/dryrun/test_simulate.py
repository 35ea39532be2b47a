"""`simulate`: every rule's verdict on one event, with no side effects."""

from __future__ import annotations

import asyncio
import json
import re
import textwrap
from pathlib import Path

import pytest

from genea_automate.cli import main
from tests.support.decisions import decide_in_store
from tests.support.genea import payload, payload_path

REPO = Path(__file__).resolve().parents[2]
EXAMPLE_RULES = REPO / "rules.example.yaml"

FIRST_ARRIVAL = """\
simulated at 2025-03-03T14:00:00+00:00 from empty rule state
event 67c5b5741a2b3c4d5e6f7081: access.granted
  2025-03-03T08:58:11-05:00, Harborview Labs HQ, Jordan Example
rule morning-coffee: would fire
  when: yes
  first_arrival: yes, first arrival of 2025-03-03 at Harborview Labs HQ
  schedule: yes, Mon 2025-03-03 08:58 EST is inside 07:00-19:00
  step 0: mqtt default office/coffee/set
    {"connection": "default", "topic": "office/coffee/set", "payload": "ON", "qos": 1, "retain": false}
  step 1: slack ops
    {"connection": "ops", "text": "Coffee is on: Jordan Example is first in at Harborview Labs HQ."}
rule forced-door-alert: would not fire
  when: no, kind access.granted is not door.forced_open or door.forced_and_held_open
rule denied-after-hours: would not fire
  when: no, kind access.granted is not access.denied
"""

DENIED_AT_NIGHT = """\
simulated at 2025-02-11T02:15:00+00:00 from empty rule state
event 67aab28d6f708192a3b4c5d6: access.denied.card_not_found
  2025-02-10T21:14:36-05:00, Harborview Labs HQ, door Loading Dock Door
rule morning-coffee: would not fire
  when: no, kind access.denied.card_not_found is not access.granted
rule forced-door-alert: would not fire
  when: no, kind access.denied.card_not_found is not door.forced_open or door.forced_and_held_open
rule denied-after-hours: would fire
  when: yes
  not: yes
    schedule: no, Mon 2025-02-10 21:14 EST is outside office-hours
  step 0: log warning
    {"message": "access.denied.card_not_found at Loading Dock Door for an unknown card after hours", "level": "warning"}
"""


@pytest.mark.parametrize(
    ("prefix", "at", "expected"),
    [
        ("01", "2025-03-03T14:00Z", FIRST_ARRIVAL),
        ("06", "2025-02-11T02:15Z", DENIED_AT_NIGHT),
    ],
    ids=["granted-first-arrival", "denied-after-hours"],
)
def test_simulate_prints_every_rule_with_condition_values(
    prefix: str, at: str, expected: str, capsys: pytest.CaptureFixture[str]
) -> None:
    args = ["simulate", str(payload_path(prefix)), "-c", str(EXAMPLE_RULES)]
    assert main([*args, "--at", at]) == 0
    assert capsys.readouterr().out == expected


def _rules(tmp_path: Path, body: str) -> Path:
    config = tmp_path / "rules.yaml"
    config.write_text(
        'store: "sqlite:///./store.db"\nendpoints: {main: {secret: s}}\n'
        "mqtt: {default: {url: 'mqtt://127.0.0.1:1'}}\n" + textwrap.dedent(body)
    )
    return config


COFFEE = """
rules:
  - id: coffee
    max_event_age: 1h
    when: {event: access.granted}
    if: [{first_arrival: location}]
    then: [{mqtt: {topic: coffee, payload: "ON"}}]
"""


def test_simulate_at_sets_the_clock_for_max_event_age(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    config = _rules(tmp_path, COFFEE)
    event = str(payload_path("01"))
    assert (
        main(["simulate", event, "-c", str(config), "--at", "2025-03-03T16:30Z"]) == 0
    )
    assert "max_event_age: no, the event is 2h31m49s old, more than 1h" in (
        capsys.readouterr().out
    )


async def test_simulate_current_state_reads_a_copy_and_changes_nothing(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    config = _rules(tmp_path, COFFEE)
    earlier = payload("01", uuid="earlier", event_time="2025-03-03T12:30:00.000Z")
    earlier["actor"]["user_name"] = "Ana Example"
    await decide_in_store(config, [earlier], at="2025-03-03T12:30:05Z")
    store = tmp_path / "store.db"
    before = store.read_bytes()
    event = str(payload_path("01"))
    args = ["simulate", event, "-c", str(config), "--at", "2025-03-03T14:00Z"]

    assert await asyncio.to_thread(main, [*args, "--state", "current"]) == 0
    out = capsys.readouterr().out
    assert "first_arrival: no, not the first: Ana Example arrived 07:30 local" in out
    assert "rule coffee: would not fire" in out
    assert store.read_bytes() == before

    assert await asyncio.to_thread(main, [*args, "--state", "empty"]) == 0
    assert "rule coffee: would fire" in capsys.readouterr().out


def test_simulate_current_state_without_a_store_says_what_to_do(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    config = _rules(tmp_path, COFFEE)
    event = str(payload_path("01"))
    assert main(["simulate", event, "-c", str(config), "--state", "current"]) == 1
    assert capsys.readouterr().err == (
        f"error: --state current needs the daemon's store, and there is none at "
        f"{tmp_path / 'store.db'}; check `store:` in the rules file, or use "
        "--state empty\n"
    )


def test_simulate_says_plainly_that_the_event_has_no_door(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """Older access payloads (fixture 01) carry no door at all."""
    config = _rules(
        tmp_path,
        """
        rules:
          - id: front-door
            when: {event: access.granted, door: Main Entrance}
            then: [{mqtt: {topic: door, payload: "ON"}}]
        """,
    )
    event = str(payload_path("01"))
    assert main(["simulate", event, "-c", str(config)]) == 0
    assert "  when: no, the event has no door\n" in capsys.readouterr().out


async def test_simulate_current_state_judges_a_stored_event_as_itself(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    config = _rules(tmp_path, COFFEE)
    first = payload("01", uuid="the-first", event_time="2025-03-03T12:30:00.000Z")
    later = payload("01", uuid="the-later", event_time="2025-03-03T13:00:00.000Z")
    later["actor"]["user_name"] = "Sam Example"
    await decide_in_store(config, [first, later], at="2025-03-03T13:00:05Z")
    stored = tmp_path / "stored.json"
    args = ["simulate", str(stored), "-c", str(config), "--state", "current"]

    stored.write_text(json.dumps(first))
    assert await asyncio.to_thread(main, [*args, "--at", "2025-03-03T13:30Z"]) == 0
    out = capsys.readouterr().out
    assert "first_arrival: yes, first arrival of 2025-03-03" in out
    assert "rule coffee: would fire" in out

    stored.write_text(json.dumps(later))
    assert await asyncio.to_thread(main, [*args, "--at", "2025-03-03T13:30Z"]) == 0
    assert (
        "not the first: Jordan Example arrived 07:30 local" in capsys.readouterr().out
    )


def test_simulate_names_a_disabled_rule_and_shows_times_to_the_second(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    config = _rules(
        tmp_path,
        """
        rules:
          - id: lobby-light
            enabled: false
            when: {event: access.granted}
            then: [{mqtt: {topic: lobby, payload: "ON"}}]
        """,
    )
    event = tmp_path / "event.json"
    event.write_text(json.dumps(payload("01", event_time="2025-03-03T13:58:11.660Z")))

    assert main(["simulate", str(event), "-c", str(config)]) == 0

    simulated, _, *rest = capsys.readouterr().out.splitlines()
    assert re.fullmatch(
        r"simulated at \d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\+00:00 from empty rule state",
        simulated,
    )
    assert rest == [
        "  2025-03-03T08:58:11-05:00, Harborview Labs HQ, Jordan Example",
        "rule lobby-light: would not fire",
        "  enabled: no, the rule is disabled",
    ]
