"""Loading whole rules files: the example, YAML pitfalls, collected errors."""

from __future__ import annotations

from datetime import time
from pathlib import Path

import pytest

from genea_automate.config.loader import load_config
from genea_automate.errors import ConfigError
from tests.support.plugins import plugin_module

REPO = Path(__file__).resolve().parents[2]


def write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "rules.yaml"
    path.write_text(text)
    return path


def test_loader_example_rules_are_valid() -> None:
    loaded = load_config(REPO / "rules.example.yaml", environ={})
    assert [rule.id for rule in loaded.config.rules] == [
        "morning-coffee",
        "forced-door-alert",
        "denied-after-hours",
    ]
    assert loaded.warnings == []


def test_loader_unquoted_on_and_time_keep_their_text(tmp_path: Path) -> None:
    loaded = load_config(
        write(
            tmp_path,
            """
endpoints: {main: {secret: s}}
mqtt: {default: {url: "mqtt://127.0.0.1:1883"}}
schedules:
  evenings: {windows: [{from: 21:00, to: 23:30}]}
rules:
  - id: plug
    when: access.granted
    then:
      - mqtt: {topic: plug/set, payload: on}
      - mqtt: {topic: plug/set, payload: off, retain: yes}
""",
        ),
        environ={},
    )
    first, second = loaded.config.rules[0].then
    assert (first.mqtt.payload, second.mqtt.payload) == ("on", "off")
    window = loaded.config.schedules["evenings"].windows[0]
    assert (window.from_, window.to) == (time(21, 0), time(23, 30))
    assert second.mqtt.retain is True


def test_loader_boolean_where_text_is_wanted_says_to_quote(tmp_path: Path) -> None:
    path = write(
        tmp_path,
        """
endpoints: {main: {secret: s}}
mqtt: {default: {url: "mqtt://127.0.0.1:1883"}}
rules:
  - id: plug
    when: access.granted
    then:
      - mqtt: {topic: true, payload: "ON"}
""",
    )
    with pytest.raises(ConfigError) as error:
        load_config(path, environ={})
    assert [str(issue) for issue in error.value.issues] == [
        f"{path}:8:23: error: rules[0].then[0].mqtt.topic: expected text, got true: "
        'unquoted true and false are booleans in YAML; quote it for text, e.g. "true"'
    ]


def test_loader_missing_variable_names_it(tmp_path: Path) -> None:
    path = write(tmp_path, 'endpoints: {main: {secret: "${GENEA_SECRET}"}}\n')
    with pytest.raises(ConfigError) as error:
        load_config(path, environ={})
    [issue] = error.value.issues
    assert "environment variable GENEA_SECRET is not set" in str(issue)
    assert (issue.line, issue.column) == (1, 28)


UNSET = """
endpoints: {main: {secret: "${GENEA_SECRET}"}}
status: {admin_token: "${ADMIN_TOKEN}"}
mqtt: {default: {url: "${MQTT_URL:-mqtt://127.0.0.1:1883}"}}
slack: {ops: {webhook_url: "${SLACK_URL}"}}
"""


def test_loader_unset_ok_puts_placeholders_and_warns_at_each(tmp_path: Path) -> None:
    path = write(tmp_path, UNSET)
    environ = {"SLACK_URL": "https://hooks.example.org/x"}
    loaded = load_config(path, environ=environ, unset_ok=True)
    endpoint = loaded.config.endpoints["main"]
    assert endpoint.secret.get_secret_value() == "https://unset.invalid/GENEA_SECRET"
    assert loaded.config.mqtt["default"].url == "mqtt://127.0.0.1:1883"  # fallback
    assert loaded.unset == ("GENEA_SECRET", "ADMIN_TOKEN")
    assert [str(issue).removeprefix(f"{path}:") for issue in loaded.warnings] == [
        f"{line}: warning: {where}: environment variable {name} is not set; a "
        "placeholder stands in for it here, as this command sends nothing, but "
        "`serve` refuses to start until it is set"
        for line, where, name in [
            ("2:28", "endpoints.main.secret", "GENEA_SECRET"),
            ("3:23", "status.admin_token", "ADMIN_TOKEN"),
        ]
    ]


def test_loader_unset_ok_keeps_the_warning_next_to_an_error_it_explains(
    tmp_path: Path,
) -> None:
    path = write(tmp_path, UNSET.replace(":-mqtt://127.0.0.1:1883", ""))
    with pytest.raises(ConfigError) as error:
        load_config(path, environ={}, unset_ok=True)
    issues = [(issue.severity, issue.path) for issue in error.value.issues]
    assert ("warning", "mqtt.default.url") in issues
    assert ("error", "mqtt.default.url") in issues


def test_loader_reports_every_cross_check_error(tmp_path: Path) -> None:
    path = write(
        tmp_path,
        """
endpoints: {main: {secret: s}}
schedules:
  office-hours: {windows: [{from: "07:00", to: "19:00"}]}
rules:
  - id: a
    when: door.forced
    if: [{schedule: ofice-hours}]
    then: [{mqtt: {topic: x, payload: "1"}}]
  - id: a
    when: access.granted
    then: [{log: {message: x}}]
""",
    )
    with pytest.raises(ConfigError) as error:
        load_config(path, environ={})
    assert [str(issue).removeprefix(f"{path}:") for issue in error.value.issues] == [
        "10:9: error: rules[1].id: rule id 'a' is already used by rules[0]",
        "7:11: warning: rules[0].when.event[0]: no known event kind matches "
        "'door.forced' (did you mean 'door.forced_and_held_open' or "
        "'door.forced_open'?); the kinds are listed in docs/events.md",
        "8:21: error: rules[0].if[0].schedule: unknown schedule 'ofice-hours' "
        "(did you mean 'office-hours'?); schedules: 'office-hours'",
        "9:19: error: rules[0].then[0].mqtt: no mqtt connection is defined; add one "
        "under `mqtt:` at the top of the rules file",
    ]


def test_loader_template_reading_an_unknown_field_is_an_error(tmp_path: Path) -> None:
    path = write(
        tmp_path,
        """
endpoints: {main: {secret: s}}
rules:
  - id: a
    when: access.granted
    if: [{template: "doorr.name == 'x'"}]
    then:
      - log: {message: "{% for n in range(2) %}{{ n }}{% endfor %}{{ dor.name }}"}
""",
    )
    with pytest.raises(ConfigError) as error:
        load_config(path, environ={})
    assert [str(issue).removeprefix(f"{path}:") for issue in error.value.issues] == [
        "8:24: error: rules[0].then[0].log.message: the template uses 'dor', which "
        "is not an event field (did you mean 'door'?); the fields are listed in "
        "docs/events.md",
        "6:21: error: rules[0].if[0].template: the template uses 'doorr', which is "
        "not an event field (did you mean 'door'?); the fields are listed in "
        "docs/events.md",
    ]


def test_loader_rule_id_explains_what_is_allowed(tmp_path: Path) -> None:
    path = write(
        tmp_path,
        """
endpoints: {main: {secret: s}}
rules:
  - {id: morning coffee, when: access.granted, then: [{log: {message: x}}]}
""",
    )
    with pytest.raises(ConfigError) as error:
        load_config(path, environ={})
    [issue] = error.value.issues
    assert issue.message == (
        "rule id 'morning coffee' may use only letters, digits and - _ . "
        "(no spaces), and must start with a letter or digit, e.g. 'morning-coffee'"
    )


def test_loader_unquoted_template_says_to_quote_it(tmp_path: Path) -> None:
    path = write(
        tmp_path,
        """
endpoints: {main: {secret: s}}
rules:
  - id: a
    when: access.granted
    then:
      - log:
          message: {{ door.name }} denied
""",
    )
    with pytest.raises(ConfigError) as error:
        load_config(path, environ={})
    [issue] = error.value.issues
    assert issue.message == (
        "YAML syntax error: did not find expected key; a value with {{ }} in it "
        'must be quoted, e.g. message: "{{ door.name }} denied"'
    )


def test_loader_refuses_an_alias_bomb(tmp_path: Path) -> None:
    lines = ['a: &a ["x","x","x","x","x","x","x","x","x","x"]']
    for previous, name in zip("abcdefgh", "bcdefghi", strict=True):
        lines.append(f"{name}: &{name} [" + ",".join([f"*{previous}"] * 10) + "]")
    path = write(tmp_path, "\n".join(lines) + "\n")
    with pytest.raises(ConfigError) as error:
        load_config(path, environ={})
    [issue] = error.value.issues
    assert issue.message.startswith("the file expands to more than 200,000 values")


@pytest.mark.parametrize("value", ["${OLD:-}", "${OLD:- }", "\\t", "\\u200b"])
def test_loader_refuses_an_empty_previous_secret(tmp_path: Path, value: str) -> None:
    """An unset rotation variable must not leave a guessable HMAC key behind."""
    path = write(
        tmp_path,
        f'endpoints:\n  main: {{secret: s, previous_secrets: ["{value}"]}}\n',
    )
    with pytest.raises(ConfigError) as caught:
        load_config(path, environ={})
    [issue] = caught.value.issues
    assert str(issue).endswith(
        "endpoints.main.previous_secrets: previous_secrets[0] is empty or blank (an "
        "unset variable?); such a secret would accept anyone's signature: remove it "
        "once the rotation is over, or set the variable"
    )


@pytest.mark.parametrize("value", ["' '", '"\\n"', '"\\u00a0"', "'${V}'"])
def test_loader_refuses_a_blank_secret(tmp_path: Path, value: str) -> None:
    path = write(tmp_path, f"endpoints:\n  main: {{secret: {value}}}\n")
    with pytest.raises(ConfigError) as caught:
        load_config(path, environ={"V": "  "})
    [issue] = caught.value.issues
    assert "the endpoint secret is empty or blank" in str(issue)


@pytest.mark.parametrize("name", ["süd", "a:b", "has space", "x" * 65])
def test_loader_refuses_an_endpoint_name_unfit_for_urls_and_keys(
    tmp_path: Path, name: str
) -> None:
    path = write(tmp_path, f'endpoints:\n  "{name}": {{secret: s}}\n')
    with pytest.raises(ConfigError) as caught:
        load_config(path, environ={})
    [issue] = caught.value.issues
    assert f"endpoint name {name!r} may only use letters, digits" in str(issue)


def test_loader_accepts_plain_endpoint_names(tmp_path: Path) -> None:
    path = write(tmp_path, "endpoints:\n  hq-main_2.b: {secret: s}\n")
    assert list(load_config(path, environ={}).config.endpoints) == ["hq-main_2.b"]


def versioned_plugin(version: int) -> str:
    return plugin_module("stamp", methods=f"version: ClassVar[int] = {version}")


READ_FROM_OUTSIDE = """
endpoints: {main: {secret: "${file:secret.txt}"}}
mqtt: {default: {url: "mqtt://${GENEA_TEST_BROKER}:1883"}}
rules:
  - id: stamp
    when: access.granted
    then: [{stamp: {}}]
"""


def test_loader_loads_again_from_its_inputs_alone(tmp_path: Path) -> None:
    plugin = tmp_path / "plugins" / "stamp.py"
    plugin.parent.mkdir()
    plugin.write_text(versioned_plugin(1))
    secret = tmp_path / "secret.txt"
    secret.write_text("s3cret\n")
    path = write(tmp_path, READ_FROM_OUTSIDE)
    first = load_config(path, environ={"GENEA_TEST_BROKER": "broker.local"})
    assert first.inputs.text == READ_FROM_OUTSIDE
    assert first.inputs.plugins == {str(plugin): plugin.read_text()}

    # All it read changes: the file, the plugins folder, the secret file; and
    # GENEA_TEST_BROKER is not set in this process's environment.
    path.write_text("rules: [")
    plugin.write_text(versioned_plugin(2))
    (plugin.parent / "wip.py").write_text("def half_written(:\n")
    secret.unlink()
    again = load_config(path, inputs=first.inputs)

    assert again.config.model_dump() == first.config.model_dump()
    assert again.config.endpoints["main"].secret.get_secret_value() == "s3cret"
    assert again.section("mqtt")["default"].url == "mqtt://broker.local:1883"
    assert again.registry.get("stamp").version == 1
    assert again.inputs == first.inputs


CHECKED_PLUGIN = plugin_module(
    "boom",
    options="""
    class Options(BaseModel):
        text: str

        @field_validator("text")
        @classmethod
        def _text(cls, text: str) -> str:
            if text == "exit-in-validator":
                sys.exit(3)
            if text == "bug-in-validator":
                raise RuntimeError("validator bug")
            return text
    """,
    methods="""
    def check(self, options: Any) -> list[Any]:
        if options.text == "exit-in-check":
            sys.exit(4)
        if options.text == "bug-in-check":
            raise RuntimeError("check bug")
        return []
    """,
)


@pytest.mark.parametrize(
    ("text", "issue"),
    [
        (
            "exit-in-validator",
            "rules.yaml:1:1: error: checking the file failed in a plugin: "
            "a plugin's options model raised SystemExit(3)",
        ),
        (
            "bug-in-validator",
            "rules.yaml:1:1: error: checking the file failed in a plugin: "
            "RuntimeError: validator bug",
        ),
        (
            "exit-in-check",
            "rules.yaml:6:15: error: rules[0].then[0].boom: plugin 'boom' failed to "
            "check its options: action plugin 'boom' raised SystemExit(4)",
        ),
        (
            "bug-in-check",
            "rules.yaml:6:15: error: rules[0].then[0].boom: plugin 'boom' failed to "
            "check its options: check bug",
        ),
    ],
)
def test_a_plugin_that_fails_while_the_file_is_checked_refuses_the_file(
    tmp_path: Path, text: str, issue: str
) -> None:
    # Left alone, a SystemExit here ended a daemon at its next reload.
    (tmp_path / "plugins").mkdir()
    (tmp_path / "plugins" / "boom.py").write_text(CHECKED_PLUGIN)
    config = tmp_path / "rules.yaml"
    config.write_text(
        "endpoints: {main: {secret: s}}\nrules:\n  - id: r\n"
        "    when: access.granted\n    then:\n"
        f"      - boom: {{text: {text}}}\n"
    )

    with pytest.raises(ConfigError) as caught:
        load_config(config)

    assert [str(i).replace(f"{tmp_path}/", "") for i in caught.value.issues] == [issue]
