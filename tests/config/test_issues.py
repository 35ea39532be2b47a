"""Validation errors as placed, plainly worded issues."""

from __future__ import annotations

from typing import Annotated, Any, Literal

import pytest
from pydantic import (
    BaseModel,
    ConfigDict,
    Discriminator,
    Field,
    Tag,
    ValidationError,
    field_validator,
    model_validator,
)

from genea_automate.config.issues import (
    did_you_mean,
    issue_at,
    issues_from_validation_error,
)
from genea_automate.config.yamlload import load_yaml_text
from genea_automate.errors import ConfigIssue


class Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


class FirstArrival(Strict):
    first_arrival: Literal["location", "door", "user"]


class Schedule(Strict):
    schedule: str

    @field_validator("schedule")
    @classmethod
    def _known(cls, value: str) -> str:
        if value != "office-hours":
            hint = did_you_mean(value, ["office-hours"])
            raise ValueError(f"unknown schedule {value!r}{hint}")
        return value


class Mqtt(Strict):
    topic: str
    payload: str = ""
    retain: bool = False
    qos: int = 0


class Rule(Strict):
    id: str
    if_: list[FirstArrival | Schedule] = Field(default=[], alias="if")
    days: str | list[str] = "daily"
    then: list[dict[str, Mqtt]] = []


class RulesFile(Strict):
    rules: list[Rule]


class FirstArrivalOptions(Strict):
    scope: Literal["location", "door"] = "location"
    day_starts_at: str = "00:00"


class LongFirstArrival(Strict):
    first_arrival: FirstArrivalOptions


def _first_key(value: Any) -> str | None:
    return next(iter(value), None) if isinstance(value, dict) else None


Condition = Annotated[
    Annotated[LongFirstArrival, Tag("first_arrival")]
    | Annotated[Schedule, Tag("schedule")],
    Discriminator(_first_key),
]


class Window(Strict):
    start: str
    end: str

    @model_validator(mode="after")
    def _not_empty(self) -> Window:
        if self.start == self.end:
            raise ValueError(f"start and end are both {self.end!r}; make them differ")
        return self


class Mail(Strict):
    kind: Literal["mail"]
    to: str


class Sms(Strict):
    kind: Literal["sms"]
    number: str


class TaggedFile(Strict):
    conditions: list[Condition] = []
    windows: list[Window] = []
    notify: list[Annotated[Mail | Sms, Field(discriminator="kind")]] = []


def validate(
    text: str, model: type[BaseModel] = RulesFile, **environ: str
) -> list[str]:
    loaded = load_yaml_text(text, "rules.yaml", environ=environ)
    assert loaded.issues == []
    with pytest.raises(ValidationError) as caught:
        model.model_validate(loaded.data)
    return [str(i) for i in issues_from_validation_error(caught.value, loaded, model)]


def test_issues_from_validation_error_suggests_misspelt_key() -> None:
    text = "rules:\n  - if:\n    - frist_arrival: location\n    id: coffee\n"

    assert validate(text) == [
        "rules.yaml:3:7: error: rules[0].if[0]: unknown key 'frist_arrival' "
        "(did you mean 'first_arrival'?)"
    ]


def test_issues_from_validation_error_suggests_key_of_dict_value_model() -> None:
    text = "rules:\n  - id: a\n    then:\n      - mqtt: {topic: t, retian: true}\n"

    assert validate(text) == [
        "rules.yaml:4:26: error: rules[0].then[0].mqtt: unknown key 'retian' "
        "(did you mean 'retain'?)"
    ]


def test_issues_from_validation_error_lists_allowed_keys_when_none_is_close() -> None:
    text = "rules:\n  - id: a\n    colour: red\n"

    assert validate(text) == [
        "rules.yaml:3:5: error: rules[0]: unknown key 'colour'; the keys allowed "
        "here are 'id', 'if', 'days', 'then'"
    ]


def test_issues_from_validation_error_without_model_gives_no_hint() -> None:
    loaded = load_yaml_text("rules: []\ncolour: red\n", "rules.yaml", environ={})
    with pytest.raises(ValidationError) as caught:
        RulesFile.model_validate(loaded.data)

    assert [str(i) for i in issues_from_validation_error(caught.value, loaded)] == [
        "rules.yaml:2:1: error: unknown key 'colour'; remove it or check its spelling"
    ]


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("{}", "rules.yaml:1:1: error: missing required key 'rules'"),
        ("# no rules yet\n", "rules.yaml:1:1: error: missing required key 'rules'"),
        (
            "rules:\n  - days: daily\n",
            "rules.yaml:2:5: error: rules[0]: missing required key 'id'",
        ),
        (
            "rules:\n  - id: a\n    then:\n      - mqtt: {qos: 1}\n",
            "rules.yaml:4:15: error: rules[0].then[0].mqtt: missing required key "
            "'topic'",
        ),
    ],
    ids=["empty-mapping", "empty-file", "rule", "nested"],
)
def test_issues_from_validation_error_places_missing_key_at_parent(
    text: str, expected: str
) -> None:
    assert validate(text) == [expected]


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        (
            "true",
            "expected text, got true: unquoted true and false are booleans in YAML; "
            'quote it for text, e.g. "true"',
        ),
        ("3", 'expected text, got 3; quote it, e.g. "3"'),
        ("", "expected text, got an empty value; fill it in or remove it"),
        ("[a, b]", "expected text, got a list"),
    ],
    ids=["bool", "number", "empty", "list"],
)
def test_issues_from_validation_error_words_wrong_kind_for_text(
    value: str, expected: str
) -> None:
    text = f"rules:\n  - id: a\n    then:\n      - mqtt:\n          topic: {value}\n"
    column = 17 if value == "" else 18  # an empty value starts right after the ':'

    assert validate(text) == [
        f"rules.yaml:5:{column}: error: rules[0].then[0].mqtt.topic: {expected}"
    ]


def test_issues_from_validation_error_words_bad_number() -> None:
    text = "rules:\n  - id: a\n    then: [{mqtt: {topic: t, qos: high}}]\n"

    assert validate(text) == [
        "rules.yaml:3:35: error: rules[0].then[0].mqtt.qos: expected a whole "
        "number, got 'high'"
    ]


def test_issues_from_validation_error_words_literal_with_suggestion() -> None:
    text = "rules:\n  - id: a\n    if:\n      - first_arrival: lcation\n"

    assert validate(text) == [
        "rules.yaml:4:24: error: rules[0].if[0].first_arrival: 'lcation' is not "
        "one of 'location', 'door', 'user' (did you mean 'location'?)"
    ]


def test_issues_from_validation_error_passes_validator_message_through() -> None:
    text = "rules:\n  - id: a\n    if:\n      - schedule: ofice-hours\n"

    assert validate(text) == [
        "rules.yaml:4:19: error: rules[0].if[0].schedule: unknown schedule "
        "'ofice-hours' (did you mean 'office-hours'?)"
    ]


def test_issues_from_validation_error_passes_model_validator_message() -> None:
    text = "windows:\n  - {start: '08:00', end: '08:00'}\n"

    assert validate(text, TaggedFile) == [
        "rules.yaml:2:5: error: windows[0]: start and end are both '08:00'; make "
        "them differ"
    ]


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        (
            "[mon, 5]",
            "rules.yaml:3:17: error: rules[0].days[1]: expected text, got "
            '5; quote it, e.g. "5"',
        ),
        (
            "5",
            "rules.yaml:3:11: error: rules[0].days: expected text, got 5; quote "
            'it, e.g. "5"',
        ),
    ],
    ids=["list-branch", "first-branch"],
)
def test_issues_from_validation_error_keeps_one_branch_of_a_union(
    value: str, expected: str
) -> None:
    assert validate(f"rules:\n  - id: a\n    days: {value}\n") == [expected]


def test_issues_from_validation_error_keeps_the_union_branch_that_fits() -> None:
    text = (
        "rules:\n  - id: a\n    if:\n      - schedule: nights\n"
        "      - first_arrival: {}\n"
    )

    assert validate(text) == [
        "rules.yaml:4:19: error: rules[0].if[0].schedule: unknown schedule 'nights'",
        "rules.yaml:5:24: error: rules[0].if[1].first_arrival: expected one of "
        "'location', 'door', 'user', got keys with values",
    ]


def test_issues_from_validation_error_words_unknown_tag() -> None:
    text = "conditions:\n  - frist_arrival: {scope: door}\n"

    assert validate(text, TaggedFile) == [
        "rules.yaml:2:5: error: conditions[0]: 'frist_arrival' is not one of "
        "'first_arrival', 'schedule' (did you mean 'first_arrival'?)"
    ]


def test_issues_from_validation_error_follows_tags_to_allowed_keys() -> None:
    text = "conditions:\n  - first_arrival: {scope: door, day_start_at: '04:00'}\n"

    assert validate(text, TaggedFile) == [
        "rules.yaml:2:34: error: conditions[0].first_arrival: unknown key "
        "'day_start_at' (did you mean 'day_starts_at'?)"
    ]


def test_issues_from_validation_error_words_missing_discriminator() -> None:
    text = "notify:\n  - {kind: sms, number: '555'}\n  - {to: ops}\n"

    assert validate(text, TaggedFile) == [
        "rules.yaml:3:5: error: notify[1]: missing required key 'kind'"
    ]


def test_issues_from_validation_error_does_not_repeat_secrets() -> None:
    text = "rules:\n  - id: a\n    then: [{mqtt: {topic: t, qos: '${QOS}'}}]\n"

    issues = validate(text, QOS="hunter2")

    assert issues == [
        "rules.yaml:3:35: error: rules[0].then[0].mqtt.qos: expected a whole "
        "number, got the value from ${...}"
    ]


def test_issues_from_validation_error_reports_all_in_file_order() -> None:
    text = (
        "rules:\n"
        "  - id: a\n"
        "    then: [{mqtt: {topic: t, qos: x}}]\n"
        "  - days: daily\n"
        "    if: [{first_arrival: dor}]\n"
    )

    assert validate(text) == [
        "rules.yaml:3:35: error: rules[0].then[0].mqtt.qos: expected a whole "
        "number, got 'x'",
        "rules.yaml:4:5: error: rules[1]: missing required key 'id'",
        "rules.yaml:5:26: error: rules[1].if[0].first_arrival: 'dor' is not one of "
        "'location', 'door', 'user' (did you mean 'door'?)",
    ]


@pytest.mark.parametrize(
    ("word", "expected"),
    [
        ("ofice-hours", " (did you mean 'office-hours'?)"),
        ("Office-Hours", " (did you mean 'office-hours'?)"),
        ("weekends", ""),
    ],
    ids=["typo", "case", "none"],
)
def test_did_you_mean_names_the_closest_choice(word: str, expected: str) -> None:
    assert did_you_mean(word, ["office-hours", "night-shift"]) == expected


def test_issue_at_places_issue_at_the_value() -> None:
    loaded = load_yaml_text("rules:\n  - id: a\n    when: x\n", "rules.yaml", {})

    issue = issue_at(loaded, ("rules", 0, "when"), "no event kind matches 'x'")

    assert issue == ConfigIssue(
        "rules.yaml", 3, 11, "rules[0].when", "no event kind matches 'x'"
    )


def test_issue_at_falls_back_to_nearest_parent() -> None:
    loaded = load_yaml_text("rules:\n  - id: a\n", "rules.yaml", {})

    issue = issue_at(loaded, ("rules", 0, "when", "event"), "say when", "warning")

    assert str(issue) == "rules.yaml:2:5: warning: rules[0].when.event: say when"


def test_issue_at_uses_first_line_when_nothing_is_known() -> None:
    loaded = load_yaml_text("", "rules.yaml", {})

    assert str(issue_at(loaded, ("rules",), "add rules")) == (
        "rules.yaml:1:1: error: rules: add rules"
    )
