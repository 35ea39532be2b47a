"""validate on count, cooldown, match, wait_for and timed rules: placed, plain."""

from __future__ import annotations

import textwrap
from pathlib import Path

import pytest

from genea_automate.config.loader import load_config
from genea_automate.errors import ConfigError

HEADER = """\
endpoints:
  main: {secret: s}
slack:
  ops: {webhook_url: "https://hooks.example.org/x"}
rules:
"""


def problems(tmp_path: Path, rules: str) -> list[str]:
    path = tmp_path / "rules.yaml"
    path.write_text(HEADER + textwrap.indent(textwrap.dedent(rules), "  "))
    try:
        loaded = load_config(path)
    except ConfigError as exc:
        return [str(issue).removeprefix(f"{path}:") for issue in exc.issues]
    return [str(issue).removeprefix(f"{path}:") for issue in loaded.warnings]


@pytest.mark.parametrize(
    ("rules", "expected"),
    [
        (
            """
         - id: a
           when: {cron: "0 25 * * 1-5", timezone: America/New_York}
           then: [{log: {message: x}}]
         """,
            [
                "8:18: error: rules[0].when.cron: cron '0 25 * * 1-5': hour 25 is not "
                "in 0-23"
            ],
        ),
        (
            """
         - id: a
           when: {cron: "0 8 * * *", timezone: America/New_Yrok}
           then: [{log: {message: x}}]
         """,
            [
                "8:41: error: rules[0].when.timezone: unknown time zone 'America/New_Yrok'; "
                "use an IANA name such as 'America/New_York' (did you mean "
                "'America/New_York'?)"
            ],
        ),
        (
            """
         - id: a
           when: {crn: "0 8 * * *"}
           then: [{log: {message: x}}]
         """,
            ["8:12: error: rules[0].when: unknown key 'crn' (did you mean 'cron'?)"],
        ),
        (
            """
         - id: a
           when: {cron: "0 8 * * *"}
           on_missed: {policy: skp, grace: 1x}
           then: [{log: {message: x}}]
         """,
            [
                "9:25: error: rules[0].on_missed.policy: 'skp' is not one of 'run', 'skip' "
                "(did you mean 'skip'?)",
                "9:37: error: rules[0].on_missed.grace: '1x' is not a duration; write a "
                "number with a unit, such as '30s', '5m', '2h', '1h30m' or '1d'",
            ],
        ),
    ],
    ids=["cron", "timezone", "cron-key", "on-missed"],
)
def test_timed_rule_shapes(tmp_path: Path, rules: str, expected: list[str]) -> None:
    assert problems(tmp_path, rules) == expected


def test_timed_rule_refuses_what_needs_an_event(tmp_path: Path) -> None:
    assert problems(
        tmp_path,
        """
        - id: a
          when: {cron: "0 8 * * *"}
          max_event_age: 1h
          if: [{count: {at_least: 2, within: 5m}}, {not: {arrived_today: HQ}}]
          then: [{log: {message: "{{ door.name }} at {{ local_time }}"}}]
    """,
    ) == [
        "10:18: error: rules[0].if[0].count: count looks at the event, and a timed "
        "rule has none; a timed rule can use arrived_today, schedule, template, any, "
        "all and not",
        "9:20: error: rules[0].max_event_age: max_event_age is for rules that events "
        "trigger; remove it here",
        "11:28: error: rules[0].then[0].log.message: the template uses 'door', which a "
        "timed rule does not have; it has local_time, now, rule",
    ]


def test_count_and_cooldown_values(tmp_path: Path) -> None:
    assert problems(
        tmp_path,
        """
        - id: a
          when: access.denied
          if:
            - count: {at_least: 0, within: 0s, per: dor, kinds: acess.denied}
            - cooldown: {for: 5x}
          then: [{log: {message: x}}]
    """,
    ) == [
        "10:27: error: rules[0].if[0].count.at_least: must be greater than or equal "
        "to 1, got 0",
        "10:38: error: rules[0].if[0].count.within: the duration must be longer than "
        "0s, e.g. '5m'",
        "10:47: error: rules[0].if[0].count.per: 'dor' is not one of 'door', 'user', "
        "'location', 'card', 'none' (did you mean 'door'?)",
        "11:25: error: rules[0].if[1].cooldown.for: '5x' is not a duration; write a "
        "number with a unit, such as '30s', '5m', '2h', '1h30m' or '1d'",
    ]


def test_match_paths_regexes_and_operators(tmp_path: Path) -> None:
    assert problems(
        tmp_path,
        """
        - id: a
          when: access.denied
          if:
            - match: {path: dor.name, equals: x}
            - match: {path: door.nmae, equals: x}
            - match: {path: door.name, regex: "Lab("}
            - match: {path: door.name, equals: x, glob: "y*"}
          then: [{log: {message: x}}]
    """,
    ) == [
        "10:23: error: rules[0].if[0].match.path: no event field is called 'dor' (did "
        "you mean 'door'?); paths start with one of: id, kind, action, message, "
        "category, time, local_time, time_source, actor, location, door, controller, "
        "card, resource, details, raw",
        "11:23: error: rules[0].if[1].match.path: 'door' has no field 'nmae' (did you "
        "mean 'name'?); its fields are: uuid, name, status, model",
        "12:41: error: rules[0].if[2].match.regex: 'Lab(' is not a valid regular "
        "expression: missing ), unterminated subpattern at position 3",
        "13:16: error: rules[0].if[3].match: match needs exactly one of equals, in, "
        "regex, glob, exists; found equals, glob. Combine several tests with all:, "
        "any: or not:",
    ]


def test_wait_for_step_shapes(tmp_path: Path) -> None:
    assert problems(
        tmp_path,
        """
        - id: a
          when: door.held_open
          then:
            - wait_for: {event: door.secured, timeout: 2m}
              retry: {attempts: 3}
            - log: {message: x}
              on_timeout: [{log: {message: y}}]
    """,
    ) == [
        "10:9: error: rules[0].then[0]: a wait_for step takes none of retry; its own "
        "timeout goes inside it: wait_for: {event: ..., timeout: 2m}",
        "12:9: error: rules[0].then[1]: on_timeout belongs to a wait_for step, not "
        "to log",
    ]


def test_wait_for_cross_checks_reach_on_timeout_steps(tmp_path: Path) -> None:
    assert problems(
        tmp_path,
        """
        - id: a
          when: door.held_open
          then:
            - wait_for: {event: door.secure, same: door, timeout: 2m}
              on_timeout: [{slack: {connection: opz, text: "{{ dor.name }}"}}]
    """,
    ) == [
        "11:54: error: rules[0].then[0].on_timeout[0].slack.text: the template uses "
        "'dor', which is not an event field (did you mean 'door'?); the fields are "
        "listed in docs/events.md",
        "11:43: error: rules[0].then[0].on_timeout[0].slack.connection: unknown slack "
        "connection 'opz' (did you mean 'ops'?)",
        "10:27: warning: rules[0].then[0].wait_for.event[0]: no known event kind "
        "matches 'door.secure' (did you mean 'door.secured'?); the kinds are listed "
        "in docs/events.md",
    ]


def test_schema_describes_every_time_shape_and_short_form() -> None:
    import jsonschema

    from genea_automate.config.loader import plugin_registry
    from genea_automate.config.models import build_config_model

    model = build_config_model(plugin_registry(Path("rules.yaml")))
    schema = model.model_json_schema(by_alias=True)
    step, rule = schema["$defs"]["Step"], schema["$defs"]["Rule"]
    assert {"wait_for", "on_timeout"} <= set(step["properties"])
    assert {"on_missed", "when"} <= set(rule["properties"])
    assert {"count", "cooldown", "match", "arrived_today"} <= set(
        schema["$defs"]["ConditionConfig"]["properties"]
    )
    document = {
        "endpoints": {"main": {"secret": "s"}},
        "rules": [
            {
                "id": "a",
                "when": {"cron": "0 10 * * 1-5", "timezone": "UTC"},
                "on_missed": "skip",
                "if": [{"not": {"arrived_today": "HQ"}}],
                "then": [{"log": {"message": "{{ now }}"}}],
            },
            {
                "id": "b",
                "when": "access.denied",
                "if": [
                    {"count": {"at_least": 3, "within": "5m", "per": "door"}},
                    {"cooldown": "15m"},
                    {"match": {"path": "door.name", "in": ["A", "B"]}},
                ],
                "then": [
                    {
                        "wait_for": {"event": "door.secured", "timeout": "2m"},
                        "on_timeout": [{"log": {"message": "x"}}],
                    }
                ],
            },
        ],
    }
    assert list(jsonschema.Draft202012Validator(schema).iter_errors(document)) == []
