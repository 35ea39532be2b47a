"""Loading YAML: the core schema, positions, merges, substitution and issues."""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

import pytest
import yaml

from genea_automate.config.yamlload import (
    LoadedYaml,
    format_path,
    load_yaml,
    load_yaml_text,
)

needs_libyaml = pytest.mark.skipif(
    not yaml.__with_libyaml__, reason="pins libyaml's wording of syntax errors"
)


def load(text: str, **environ: str) -> LoadedYaml:
    return load_yaml_text(text, "rules.yaml", environ=environ)


def messages(loaded: LoadedYaml) -> list[str]:
    return [str(issue) for issue in loaded.issues]


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("payload: on", "on"),
        ("payload: off", "off"),
        ("payload: yes", "yes"),
        ("payload: no", "no"),
        ("payload: y", "y"),
        ("payload: n", "n"),
        ("payload: 21:00", "21:00"),
        ("payload: 08:30", "08:30"),
        ("payload: 2024-03-01", "2024-03-01"),
        ("payload: 1_000", "1_000"),
        ("payload: 0b101", "0b101"),
    ],
    ids=lambda value: str(value),
)
def test_load_yaml_text_keeps_yaml11_words_as_text(text: str, expected: str) -> None:
    loaded = load(text)

    assert loaded.data == {"payload": expected}
    assert loaded.issues == []


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("value: 3", 3),
        ("value: -7", -7),
        ("value: 012", 12),
        ("value: 0o17", 15),
        ("value: 0x1F", 31),
        ("value: 1.5", 1.5),
        ("value: 1e3", 1000.0),
        ("value: -.inf", -math.inf),
        ("value: true", True),
        ("value: False", False),
        ("value: TRUE", True),
        ("value: null", None),
        ("value: ~", None),
        ("value:", None),
    ],
    ids=lambda value: str(value),
)
def test_load_yaml_text_resolves_plain_scalars_by_core_schema(
    text: str, expected: Any
) -> None:
    assert load(text).data == {"value": expected}


def test_load_yaml_text_reads_nan() -> None:
    assert math.isnan(load("value: .nan").data["value"])


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ('value: "3"', "3"),
        ("value: 'true'", "true"),
        ('value: ""', ""),
        ("value: !!str true", "true"),
        ("value: !!str 21:00", "21:00"),
        ("value: |\n  on\n", "on\n"),
        ('value: !!int "7"', 7),
    ],
    ids=lambda value: str(value),
)
def test_load_yaml_text_honours_quotes_and_tags(text: str, expected: Any) -> None:
    assert load(text).data == {"value": expected}


def test_load_yaml_text_records_positions_of_nested_values() -> None:
    loaded = load(
        "rules:\n"
        "  - id: coffee\n"
        "    if:\n"
        "      - first_arrival: location\n"
        "      - count: {at_least: 3, within: 5m}\n"
    )

    assert loaded.positions == {
        (): (1, 1),
        ("rules",): (2, 3),
        ("rules", 0): (2, 5),
        ("rules", 0, "id"): (2, 9),
        ("rules", 0, "if"): (4, 7),
        ("rules", 0, "if", 0): (4, 9),
        ("rules", 0, "if", 0, "first_arrival"): (4, 24),
        ("rules", 0, "if", 1): (5, 9),
        ("rules", 0, "if", 1, "count"): (5, 16),
        ("rules", 0, "if", 1, "count", "at_least"): (5, 27),
        ("rules", 0, "if", 1, "count", "within"): (5, 38),
    }
    assert loaded.key_positions[("rules", 0, "if")] == (3, 5)
    assert loaded.key_positions[("rules", 0, "if", 1, "count", "within")] == (5, 30)


def test_load_yaml_text_counts_columns_in_characters() -> None:
    loaded = load("café: {crème: brûlée, n: 1}")

    assert loaded.positions[("café", "n")] == (1, 26)


def test_load_yaml_text_reports_duplicate_key() -> None:
    loaded = load("rules:\n  - id: a\n    when: x\n    id: b\n")

    assert loaded.data == {"rules": [{"id": "a", "when": "x"}]}
    assert messages(loaded) == [
        "rules.yaml:4:5: error: rules[0].id: duplicate key 'id' (first at line 2); "
        "remove one of them"
    ]


def test_load_yaml_text_applies_anchors_and_merge_keys() -> None:
    loaded = load(
        "defaults: &slow {timeout: 30s, retry: 3}\n"
        "extra: &quiet {retain: false}\n"
        "a: {<<: *slow, retry: 5}\n"
        "b: {<<: [*quiet, *slow], name: b}\n"
        "c: *slow\n"
    )

    assert loaded.data["a"] == {"timeout": "30s", "retry": 5}
    assert loaded.data["b"] == {
        "retain": False,
        "timeout": "30s",
        "retry": 3,
        "name": "b",
    }
    assert loaded.data["c"] == {"timeout": "30s", "retry": 3}
    assert loaded.positions[("a", "timeout")] == (1, 27)
    assert loaded.issues == []


def test_load_yaml_text_reports_a_merge_of_something_else() -> None:
    loaded = load("a: {<<: 3}")

    assert messages(loaded) == [
        "rules.yaml:1:9: error: a: '<<' merges another mapping into this one; "
        "give it an alias such as *defaults, or a list of them"
    ]


def test_load_yaml_text_reports_an_alias_inside_its_own_anchor() -> None:
    loaded = load("a: &loop [1, *loop]")

    assert loaded.data == {"a": [1, None]}
    assert messages(loaded) == [
        "rules.yaml:1:4: error: a[1]: this alias (*name) points at a block that "
        "holds the alias itself; point it at another anchor"
    ]


def test_load_yaml_text_turns_keys_into_text() -> None:
    assert load("1: a\ntrue: b\n~: c\non: d").data == {
        "1": "a",
        "true": "b",
        "~": "c",
        "on": "d",
    }


def test_load_yaml_text_reports_list_as_key() -> None:
    loaded = load("? [a, b]\n: 1\nc: 2")

    assert loaded.data == {"c": 2}
    assert messages(loaded) == [
        "rules.yaml:1:3: error: a key must be a name, not a list or a mapping"
    ]


def test_load_yaml_text_reports_unsupported_tag() -> None:
    loaded = load("password: !secret db_password")

    assert loaded.data == {"password": "db_password"}
    assert messages(loaded) == [
        "rules.yaml:1:11: error: password: the tag '!secret' is not supported; "
        "remove it, and use ${VAR} or ${file:/path} for outside values"
    ]


@needs_libyaml
@pytest.mark.parametrize(
    ("text", "expected"),
    [
        (
            "rules:\n  - slack:\n      text: Note: coffee\n",
            "rules.yaml:3:17: error: YAML syntax error: mapping values are not "
            "allowed in this context; put a value that contains ': ' in quotes",
        ),
        (
            "rules:\n  - id: a\n   when: b\n",
            "rules.yaml:3:4: error: YAML syntax error: did not find expected '-' "
            "indicator; "
            "indent this line like the lines above it",
        ),
        (
            "a:\n\t- b\n",
            "rules.yaml:2:1: error: YAML syntax error: found character that cannot "
            "start any token; indent with spaces, not tabs, and quote values that "
            "start with @ or `",
        ),
        (
            "a: {secret: ${S}}\n",
            "rules.yaml:1:14: error: YAML syntax error: did not find expected ',' "
            "or '}'; inside { } or [ ], put values that contain : , { } [ or ] in "
            'quotes, e.g. "${VAR}"',
        ),
        (
            "a: 1\n---\nb: 2\n",
            "rules.yaml:2:1: error: YAML syntax error: expected a single document "
            "in the stream, but found another document; keep one document per "
            "file; remove the extra '---'",
        ),
    ],
    ids=["colon", "indent", "tab", "flow", "documents"],
)
def test_load_yaml_text_reports_syntax_error_where_it_is(
    text: str, expected: str
) -> None:
    loaded = load(text)

    assert loaded.data == {}
    assert messages(loaded) == [expected]


def test_load_yaml_text_reports_control_character() -> None:
    loaded = load("a: 1\nb: caf\u00e9 \x07\n")

    assert messages(loaded) == [
        "rules.yaml:2:9: error: the file contains the control character 0x0007, "
        "which YAML does not allow; remove it"
    ]


@pytest.mark.parametrize(
    "text",
    ["", "\n", "# nothing yet\n", "---\n"],
    ids=["empty", "newline", "comment", "marker"],
)
def test_load_yaml_text_reads_empty_file_as_empty_mapping(text: str) -> None:
    loaded = load(text)

    assert loaded.data == {}
    assert loaded.issues == []


@pytest.mark.parametrize(
    ("text", "found"),
    [("- id: a\n", "a list"), ("rules\n", "the text 'rules'"), ("3\n", "the value 3")],
    ids=["list", "text", "number"],
)
def test_load_yaml_text_reports_top_level_that_is_not_a_mapping(
    text: str, found: str
) -> None:
    loaded = load(text)

    assert loaded.data == {}
    assert messages(loaded) == [
        f"rules.yaml:1:1: error: the file must start with keys such as 'rules:', "
        f"not {found}"
    ]


def test_load_yaml_text_substitutes_environment_variable() -> None:
    loaded = load('secret: "${GENEA_WEBHOOK_SECRET}"', GENEA_WEBHOOK_SECRET="s3cret")

    assert loaded.data == {"secret": "s3cret"}
    assert loaded.substituted == {("secret",)}


def test_load_yaml_text_substitutes_inside_longer_text() -> None:
    loaded = load("url: http://${HOST}:${PORT}/hook", HOST="example.org", PORT="80")

    assert loaded.data == {"url": "http://example.org:80/hook"}


def test_load_yaml_text_reports_missing_environment_variable() -> None:
    loaded = load('endpoints:\n  main: {secret: "${GENEA_WEBHOOK_SECRET}"}\n')

    assert messages(loaded) == [
        "rules.yaml:2:18: error: endpoints.main.secret: environment variable "
        "GENEA_WEBHOOK_SECRET is not set; export it before starting, or write "
        "${GENEA_WEBHOOK_SECRET:-fallback} for a value that is not a secret"
    ]


@pytest.mark.parametrize(
    ("environ", "expected"),
    [({}, "8080"), ({"PORT": ""}, "8080"), ({"PORT": "9000"}, "9000")],
    ids=["unset", "empty", "set"],
)
def test_load_yaml_text_uses_default_when_variable_unset_or_empty(
    environ: dict[str, str], expected: str
) -> None:
    loaded = load("port: ${PORT:-8080}", **environ)

    assert loaded.data == {"port": expected}
    assert loaded.issues == []


def test_load_yaml_text_allows_empty_default() -> None:
    assert load("suffix: a${SUFFIX:-}b").data == {"suffix": "ab"}


def test_load_yaml_text_takes_os_environ_by_default(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("GENEA_TEST_TOKEN", "from-os")

    loaded = load_yaml_text("token: ${GENEA_TEST_TOKEN}", "rules.yaml")

    assert loaded.data == {"token": "from-os"}


def test_load_yaml_text_does_not_expand_substituted_values() -> None:
    loaded = load("a: ${OUTER}", OUTER="${INNER} and $${", INNER="never")

    assert loaded.data == {"a": "${INNER} and $${"}
    assert loaded.issues == []


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("a: $${HOME}", "${HOME}"),
        ("a: price $5", "price $5"),
        ('a: "{{ actor.name }} is in"', "{{ actor.name }} is in"),
        ('a: "${{ actor.name }}"', "${{ actor.name }}"),
        ('a: "{% if x %}${X}{% endif %}"', "{% if x %}1{% endif %}"),
    ],
    ids=["escape", "dollar", "jinja", "dollar-jinja", "jinja-block"],
)
def test_load_yaml_text_leaves_escapes_and_jinja_alone(
    text: str, expected: str
) -> None:
    assert load(text, X="1").data == {"a": expected}


def test_load_yaml_text_does_not_substitute_numbers_or_keys() -> None:
    assert load("${A}: 3", A="x").data == {"${A}": 3}


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        (
            "a: ${MY VAR}",
            "rules.yaml:1:4: error: a: '${MY VAR}' is not a substitution; write "
            "${NAME}, ${NAME:-default} or ${file:/path}, or $${ for a literal ${",
        ),
        (
            "a: ${MY_VAR",
            "rules.yaml:1:4: error: a: '${MY_VAR' has no closing '}'; add one, or "
            "write $${ for a literal ${",
        ),
    ],
    ids=["bad-name", "unclosed"],
)
def test_load_yaml_text_reports_malformed_substitution(
    text: str, expected: str
) -> None:
    assert messages(load(text)) == [expected]


def test_load_yaml_text_reads_file_relative_to_the_yaml(tmp_path: Path) -> None:
    (tmp_path / "secrets").mkdir()
    (tmp_path / "secrets" / "slack").write_text("https://hooks.example/x\n\n")
    rules = tmp_path / "rules.yaml"

    loaded = load_yaml_text("url: ${file:secrets/slack}", str(rules), environ={})

    assert loaded.data == {"url": "https://hooks.example/x\n"}
    assert loaded.substituted == {("url",)}


def test_load_yaml_text_reads_file_by_absolute_path(tmp_path: Path) -> None:
    secret = tmp_path / "secret"
    secret.write_text("s3cret\n")

    loaded = load(f"secret: ${{file:{secret}}}")

    assert loaded.data == {"secret": "s3cret"}


def test_load_yaml_text_reports_unreadable_file(tmp_path: Path) -> None:
    rules = tmp_path / "rules.yaml"

    loaded = load_yaml_text("a:\n  b: ${file:nope.txt}\n", str(rules), environ={})

    assert [str(issue) for issue in loaded.issues] == [
        f"{rules}:2:6: error: a.b: cannot read file '{tmp_path / 'nope.txt'}' for "
        "${file:nope.txt}: No such file or directory; check the path and access"
    ]


RECORDED = "a: ${GENEA_TEST_TOKEN}\nb: ${file:secret.txt}\nc: port ${PORT:-8080}\n"


def test_load_yaml_text_records_what_each_substitution_became(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    (tmp_path / "secret.txt").write_text("s3cret\n")
    monkeypatch.setenv("GENEA_TEST_TOKEN", "t0ken")
    monkeypatch.delenv("PORT", raising=False)

    loaded = load_yaml_text(RECORDED + "d: $${x}\n", str(tmp_path / "rules.yaml"))

    assert loaded.expansions == {
        "GENEA_TEST_TOKEN": "t0ken",
        "file:secret.txt": "s3cret",
        "PORT:-8080": "8080",
    }


def test_load_yaml_text_with_recorded_values_reads_no_environment_or_file(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    secret = tmp_path / "secret.txt"
    secret.write_text("s3cret\n")
    monkeypatch.setenv("GENEA_TEST_TOKEN", "t0ken")
    monkeypatch.delenv("PORT", raising=False)
    rules = str(tmp_path / "rules.yaml")
    first = load_yaml_text(RECORDED, rules)

    secret.unlink()
    monkeypatch.delenv("GENEA_TEST_TOKEN")
    monkeypatch.setenv("PORT", "9000")
    again = load_yaml_text(RECORDED, rules, expansions=first.expansions)

    assert again.data == {"a": "t0ken", "b": "s3cret", "c": "port 8080"}
    assert (again.issues, again.substituted) == ([], first.substituted)
    assert again.expansions == first.expansions


def test_load_yaml_text_refuses_a_substitution_with_no_recorded_value() -> None:
    with pytest.raises(LookupError) as caught:
        load_yaml_text("a: 1\nb: ${OTHER}\n", "rules.yaml", expansions={"A": "x"})

    assert str(caught.value) == (
        "rules.yaml:2:4: no value was recorded for ${OTHER}; the recorded values "
        "belong to other text"
    )


def test_load_yaml_reads_file_and_names_it(tmp_path: Path) -> None:
    rules = tmp_path / "rules.yaml"
    rules.write_bytes("\ufeffrules:\n  - id: a\n    id: b\n".encode())

    loaded = load_yaml(rules, environ={})

    assert loaded.filename == str(rules)
    assert [str(issue) for issue in loaded.issues] == [
        f"{rules}:3:5: error: rules[0].id: duplicate key 'id' (first at line 2); "
        "remove one of them"
    ]


def test_load_yaml_reports_missing_file(tmp_path: Path) -> None:
    rules = tmp_path / "rules.yaml"

    loaded = load_yaml(rules)

    assert [str(issue) for issue in loaded.issues] == [
        f"{rules}:1:1: error: cannot read the file: No such file or directory; "
        "check the path and access"
    ]


def test_load_yaml_reports_file_that_is_not_utf8(tmp_path: Path) -> None:
    rules = tmp_path / "rules.yaml"
    rules.write_bytes(b"a: 1\nb: caf\xe9\n")

    loaded = load_yaml(rules)

    assert [str(issue) for issue in loaded.issues] == [
        f"{rules}:2:1: error: the file is not UTF-8 text; save it with the UTF-8 "
        "encoding"
    ]


@pytest.mark.parametrize(
    ("path", "expected"),
    [
        ((), ""),
        (("rules",), "rules"),
        (("rules", 2, "if", 0, "schedule"), "rules[2].if[0].schedule"),
        (
            ("schedules", "office-hours", "windows", 1),
            "schedules.office-hours.windows[1]",
        ),
    ],
    ids=["root", "key", "nested", "hyphen"],
)
def test_format_path_writes_dots_and_indices(
    path: tuple[str | int, ...], expected: str
) -> None:
    assert format_path(path) == expected
