"""validate on a malformed rule: its well-formed parts still get their checks."""

from __future__ import annotations

import textwrap
from pathlib import Path

import pytest

from genea_automate.config.loader import load_config
from genea_automate.errors import ConfigError

HEADER = """\
endpoints:
  main: {secret: s}
mqtt:
  default: {url: "mqtt://127.0.0.1:1883"}
schedules:
  office-hours: {windows: [{days: mon-fri, from: "07:00", to: "19:00"}]}
rules:
"""


def problems(tmp_path: Path, rules: str) -> list[str]:
    """Every issue of a file that has errors, without the file name."""
    path = tmp_path / "rules.yaml"
    path.write_text(HEADER + textwrap.indent(textwrap.dedent(rules), "  "))
    with pytest.raises(ConfigError) as caught:
        load_config(path, environ={})
    return [str(issue).removeprefix(f"{path}:") for issue in caught.value.issues]


def test_salvage_checks_the_when_of_a_rule_whose_if_and_then_are_malformed(
    tmp_path: Path,
) -> None:
    rules = """
    - id: a
      when: {event: access.grnted}
      if: [{schedul: office-hour}]
      then: [{mqt: {topic: x, payload: y}}]
    """
    assert problems(tmp_path, rules) == [
        (
            "10:19: warning: rules[0].when.event[0]: no known event kind matches "
            "'access.grnted' (did you mean 'access.granted'?); the kinds are listed in "
            "docs/events.md"
        ),
        (
            "11:11: error: rules[0].if[0]: unknown key 'schedul' (did you mean "
            "'schedule'?)"
        ),
        "12:13: error: rules[0].then[0]: unknown key 'mqt' (did you mean 'mqtt'?)",
    ]


def test_salvage_checks_the_then_of_a_rule_whose_when_is_malformed(
    tmp_path: Path,
) -> None:
    rules = """
    - id: a
      when: {event: access.granted, dor: Front}
      then:
        - mqtt: {connection: defualt, topic: x, payload: y}
        - wait_for: {event: door.held_opn, timeout: 1m}
    """
    assert problems(tmp_path, rules) == [
        "10:35: error: rules[0].when: unknown key 'dor' (did you mean 'door'?)",
        (
            "12:28: error: rules[0].then[0].mqtt.connection: unknown mqtt connection "
            "'defualt' (did you mean 'default'?)"
        ),
        (
            "13:27: warning: rules[0].then[1].wait_for.event[0]: no known event kind "
            "matches 'door.held_opn' (did you mean 'door.held_open'?); the kinds are "
            "listed in docs/events.md"
        ),
    ]


def test_salvage_checks_the_well_formed_items_beside_a_malformed_one(
    tmp_path: Path,
) -> None:
    rules = """
    - id: a
      when: access.granted
      if:
        - {schedul: office-hours}
        - {schedule: ofice-hours}
      then:
        - log: {mesage: hi}
        - log: {message: "{{ door.nmae }}"}
    """
    found = problems(tmp_path, rules)
    assert [line.split(": ", 3)[:3] for line in found] == [
        ["12:10", "error", "rules[0].if[0]"],
        ["13:20", "error", "rules[0].if[1].schedule"],
        ["15:15", "error", "rules[0].then[0].log"],
        ["16:24", "error", "rules[0].then[1].log.message"],
    ]
    assert "unknown schedule 'ofice-hours' (did you mean 'office-hours'?)" in found[1]
    assert "'door' has no field 'nmae'" in found[3]


def test_salvage_compares_the_id_of_a_malformed_rule(tmp_path: Path) -> None:
    rules = """
    - id: a
      when: access.granted
      then: [{log: {mesage: hi}}]
    - id: a
      when: access.granted
      then: [{log: {message: hi}}]
    """
    assert problems(tmp_path, rules) == [
        (
            "11:19: error: rules[0].then[0].log: unknown key 'mesage' (did you mean "
            "'message'?)"
        ),
        "12:9: error: rules[1].id: rule id 'a' is already used by rules[0]",
    ]


def test_salvage_compares_no_malformed_id(tmp_path: Path) -> None:
    rules = """
    - id: two words
      when: acess.granted
      then: [{log: {message: hi}}]
    - when: access.granted
      then: [{log: {message: hi}}]
    - id: stand-in
      when: access.granted
      then: [{log: {message: hi}}]
    """
    found = problems(tmp_path, rules)
    assert [line.split(": ", 3)[:3] for line in found] == [
        ["9:9", "error", "rules[0].id"],
        ["10:11", "warning", "rules[0].when.event[0]"],
        ["12:5", "error", "rules[1]"],
    ]
    assert "missing required key 'id'" in found[2]


def test_salvage_keeps_only_what_holds_for_either_kind_of_trigger(
    tmp_path: Path,
) -> None:
    # `now` is no event field, but the trigger may have meant cron: no guess.
    rules = """
    - id: a
      when: {crn: "0 10 * * 1-5"}
      then:
        - log: {message: "{{ now }} {{ door.name }}"}
        - mqtt: {connection: defualt, topic: x, payload: y}
    """
    assert problems(tmp_path, rules) == [
        "10:12: error: rules[0].when: unknown key 'crn' (did you mean 'cron'?)",
        (
            "13:28: error: rules[0].then[1].mqtt.connection: unknown mqtt connection "
            "'defualt' (did you mean 'default'?)"
        ),
    ]
