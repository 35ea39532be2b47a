"""validate on what a YAML author gets wrong most: field names, kinds and days."""

from __future__ import annotations

import textwrap
from pathlib import Path
from typing import Any

import pytest

from genea_automate.config.loader import load_config
from genea_automate.errors import ConfigError, TemplateRenderError
from genea_automate.rules.templates import TemplateRenderer, template_variables
from tests.support.events import sample_event

HEADER = """\
endpoints:
  main: {secret: s}
rules:
"""


def problems(tmp_path: Path, rules: str) -> list[str]:
    """Every issue of a file with these rules, without the file name."""
    path = tmp_path / "rules.yaml"
    path.write_text(HEADER + textwrap.indent(textwrap.dedent(rules), "  "))
    try:
        loaded = load_config(path, environ={})
    except ConfigError as exc:
        return [str(issue).removeprefix(f"{path}:") for issue in exc.issues]
    return [str(issue).removeprefix(f"{path}:") for issue in loaded.warnings]


def message_problems(tmp_path: Path, template: str) -> list[str]:
    """The issues of one log message template in an event rule."""
    rules = f"""
    - id: a
      when: access.denied
      then:
        - log: {{message: "{template}"}}
    """
    return problems(tmp_path, rules)


DOOR_FIELDS = "its fields are: uuid, name, status, model"


@pytest.mark.parametrize(
    ("template", "expected"),
    [
        (
            "{{ door.nmae }}",
            "error: rules[0].then[0].log.message: the template uses 'door.nmae', "
            "but 'door' has no field 'nmae' (did you mean 'name'?); " + DOOR_FIELDS,
        ),
        (
            "{{ event.door.nmae }}",
            "error: rules[0].then[0].log.message: the template uses "
            "'event.door.nmae', but 'event.door' has no field 'nmae' (did you mean "
            "'name'?); " + DOOR_FIELDS,
        ),
        (
            "{{ door['nmae'] }} at {{ door.nmae }}",
            "error: rules[0].then[0].log.message: the template uses 'door.nmae', "
            "but 'door' has no field 'nmae' (did you mean 'name'?); " + DOOR_FIELDS,
        ),
        (
            "{{ actor.emial | upper }}",
            "error: rules[0].then[0].log.message: the template uses 'actor.emial', "
            "but 'actor' has no field 'emial' (did you mean 'email'?); its fields "
            "are: type, uuid, name, email, role, user_location_uuid",
        ),
        (
            "{{ door.nmae | default('?') }}",
            "warning: rules[0].then[0].log.message: the template uses 'door.nmae', "
            "but 'door' has no field 'nmae' (did you mean 'name'?), so its default "
            "is always used; " + DOOR_FIELDS,
        ),
        (
            "{% if door.nmae is defined %}{{ door.nmae }}{% endif %}",
            "warning: rules[0].then[0].log.message: the template uses 'door.nmae', "
            "but 'door' has no field 'nmae' (did you mean 'name'?), so it is never "
            "defined; " + DOOR_FIELDS,
        ),
    ],
    ids=["attribute", "under-event", "item-once", "filtered", "default", "defined"],
)
def test_validate_template_field_typo(
    tmp_path: Path, template: str, expected: str
) -> None:
    assert message_problems(tmp_path, template) == [f"8:24: {expected}"]


def test_validate_template_field_typo_in_a_condition(tmp_path: Path) -> None:
    rules = """
    - id: a
      when: access.granted
      if: [{template: "location.nmae == 'HQ'"}]
      then: [{log: {message: x}}]
    """
    assert problems(tmp_path, rules) == [
        "7:21: error: rules[0].if[0].template: the template uses 'location.nmae', "
        "but 'location' has no field 'nmae' (did you mean 'name'?); its fields "
        "are: uuid, name, timezone, city, state"
    ]


@pytest.mark.parametrize(
    "template",
    [
        "{{ door.name }} {{ event.door.name }} {{ controller.hardware }}",
        "{{ raw.anything.below }} {{ event.raw['x'] }}",
        "{{ details.reader }} {{ details['any key'] | default('') }}",
        "{{ door.items() | list }} {{ door.get('nmae') }}",
        "{{ kind.upper() }} {{ door.name.title() }}",
        "{% set door = {'nmae': 1} %}{{ door.nmae }}",
        "{% for door in [{'x': 1}] %}{{ door.x }}{% endfor %}",
    ],
    ids=["fields", "raw", "details", "methods", "values", "set", "loop"],
)
def test_validate_template_reads_that_run_pass(tmp_path: Path, template: str) -> None:
    assert message_problems(tmp_path, template) == []
    raw = {"anything": {"below": 1}, "x": 2}
    assert render(template, raw=raw) is not None


@pytest.mark.parametrize(
    ("template", "fails"),
    [
        ("{{ door.nmae }}", True),
        ("{{ event.door.nmae }}", True),
        ("{{ door['nmae'] }}", True),
        ("{{ door.nmae | default('?') }}", False),
        ("{% if door.nmae is defined %}{{ door.nmae }}{% endif %}", False),
    ],
)
def test_validate_template_error_means_the_run_fails(
    tmp_path: Path, template: str, fails: bool
) -> None:
    [issue] = message_problems(tmp_path, template)
    assert issue.split(": ")[1] == ("error" if fails else "warning")
    if fails:
        with pytest.raises(TemplateRenderError, match="has no attribute 'nmae'"):
            render(template)
    else:
        render(template)


def render(template: str, **changes: Any) -> str:
    event = sample_event(**changes)
    return TemplateRenderer(template_variables(event)).render(template)


def kind_problems(tmp_path: Path, pattern: str) -> list[str]:
    rules = f"""
    - id: a
      when: {{event: [{pattern}]}}
      then: [{{log: {{message: x}}}}]
    """
    return problems(tmp_path, rules)


@pytest.mark.parametrize(
    ("pattern", "hint"),
    [
        ("acess.denied", "'access.denied'"),
        ("access.deny", "'access.denied'"),
        ("access.denied.expird", "'access.denied.expired'"),
        ("door.forced", "'door.forced_and_held_open' or 'door.forced_open'"),
        ("dor", "'door'"),
        ("acess.granted", "'access.granted'"),
    ],
)
def test_validate_unknown_kind_suggests_the_family_or_kind(
    tmp_path: Path, pattern: str, hint: str
) -> None:
    assert kind_problems(tmp_path, pattern) == [
        f"6:20: warning: rules[0].when.event[0]: no known event kind matches "
        f"{pattern!r} (did you mean {hint}?); the kinds are listed in docs/events.md"
    ]


@pytest.mark.parametrize(
    "pattern",
    [
        "access.denied",
        "access.denied.expired",
        "access.denied.*",
        "door.*",
        "genea.sequr_elevator_cab_override_started",
        "audit.created.card",
        "audit",
        "'*.online'",
    ],
)
def test_validate_kinds_that_may_come_pass(tmp_path: Path, pattern: str) -> None:
    assert kind_problems(tmp_path, pattern) == []


@pytest.mark.parametrize(
    ("days", "hint"),
    [
        ("weekday", " (did you mean 'weekdays'?)"),
        ("mon-fry", " (did you mean 'mon-fri'?)"),
        ("wensday", " (did you mean 'wednesday'?)"),
        ("xyz", ""),
    ],
)
def test_validate_days_suggests_a_whole_value(
    tmp_path: Path, days: str, hint: str
) -> None:
    path = tmp_path / "rules.yaml"
    path.write_text(
        f"""\
endpoints: {{main: {{secret: s}}}}
schedules:
  open: {{windows: [{{days: {days}, from: "07:00", to: "19:00"}}]}}
"""
    )
    with pytest.raises(ConfigError) as error:
        load_config(path, environ={})
    assert [issue.message for issue in error.value.issues] == [
        f"{days!r} is not a day or day range; use mon, tue, wed, thu, fri, sat, sun, "
        f"a range such as mon-fri, weekdays, weekends or daily{hint}"
    ]


def test_a_malformed_rule_does_not_hide_the_problems_of_the_others(
    tmp_path: Path,
) -> None:
    rules = """
    - id: broken
      when: access.granted
      then:
        - log: {message: "{{ actor.name }"}
    - id: typo
      when: acess.granted
      then:
        - log: {message: "{{ actor.nme }}"}
    - id: typo
      when: door.forced_open
      then:
        - log: {message: hi}
    """
    found = problems(tmp_path, rules)
    assert [line.split(": ", 2)[:2] for line in found] == [
        ["8:24", "error"],  # the template syntax, from the model
        ["10:11", "warning"],  # the misspelt kind, from the checks of the others
        ["12:24", "error"],  # the misspelt field
        ["13:9", "error"],  # the duplicate id
    ]
    assert "template syntax error" in found[0]
    assert "did you mean 'access.granted'?" in found[1]
    assert "did you mean 'name'?" in found[2]
    assert "rule id 'typo' is already used by rules[1]" in found[3]


def test_checks_of_other_rules_wait_while_a_section_they_use_is_malformed(
    tmp_path: Path,
) -> None:
    path = tmp_path / "rules.yaml"
    path.write_text(
        textwrap.dedent(
            """\
            endpoints:
              main: {secret: s}
            schedules:
              office: {windows: [{days: mon-fry, from: "07:00", to: "19:00"}]}
            rules:
              - id: a
                when: access.granted
                if: [{schedule: office}]
                then: [{log: {message: hi}}]
            """
        )
    )
    with pytest.raises(ConfigError) as caught:
        load_config(path, environ={})
    # Not also "unknown schedule 'office'": the schedule is there, only malformed.
    [issue] = caught.value.issues
    assert "schedules.office" in str(issue)


@pytest.mark.parametrize(
    ("step", "expected"),
    [
        (
            '{http: {url: "https://example.com", retry: {attempts: 3}}}',
            (
                "8:45: error: rules[0].then[0].http: unknown key 'retry'; it belongs "
                "beside 'http', not inside it"
            ),
        ),
        (
            "{log: {message: hi, timeout: 5s}}",
            (
                "8:29: error: rules[0].then[0].log: unknown key 'timeout'; it belongs "
                "beside 'log', not inside it"
            ),
        ),
        (
            "{mqtt: {payload: 'ON'}, topic: coffee}",
            (
                "8:33: error: rules[0].then[0]: unknown key 'topic'; it belongs inside "
                "'mqtt', not beside it"
            ),
        ),
        (
            "{wait_for: {event: door.locked, timeout: 1m, on_timeout: []}}",
            (
                "8:54: error: rules[0].then[0].wait_for: unknown key 'on_timeout'; it "
                "belongs beside 'wait_for', not inside it"
            ),
        ),
    ],
    ids=["retry-in-http", "timeout-in-log", "topic-beside-mqtt", "on_timeout-inside"],
)
def test_validate_misplaced_key_says_where_it_belongs(
    tmp_path: Path, step: str, expected: str
) -> None:
    rules = f"""
    - id: a
      when: access.granted
      then:
        - {step}
    """
    assert problems(tmp_path, rules) == [expected]


@pytest.mark.parametrize(
    ("rule", "expected"),
    [
        (
            "{id: a, when: access.granted, door: Front, then: [{log: {message: hi}}]}",
            (
                "4:35: error: rules[0]: unknown key 'door'; it belongs inside 'when', "
                "not beside it"
            ),
        ),
        (
            "{id: a, when: {event: access.granted, then: [{log: {message: hi}}]}}",
            (
                "4:43: error: rules[0].when: unknown key 'then'; it belongs beside "
                "'when', not inside it"
            ),
        ),
    ],
    ids=["filter-beside-when", "then-inside-when"],
)
def test_validate_misplaced_rule_key_says_where_it_belongs(
    tmp_path: Path, rule: str, expected: str
) -> None:
    # Not also "missing required key": the key is there, one level off.
    assert problems(tmp_path, f"- {rule}") == [expected]
