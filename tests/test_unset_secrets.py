"""Only `serve` needs the rules file's `${VAR}` secrets; dry runs and validate do not."""

from __future__ import annotations

import asyncio
import textwrap
from pathlib import Path

import pytest

from genea_automate.cli import main
from genea_automate.errors import ConfigError
from genea_automate.server import serve
from tests.support.decisions import decide_in_store
from tests.support.genea import payload, payload_path

SECRETS = ("UNSET_TEST_SECRET", "UNSET_TEST_TOKEN")
RULES = """
store: "sqlite:///./store.db"
endpoints: {main: {secret: "${UNSET_TEST_SECRET}"}}
status: {admin_token: "${UNSET_TEST_TOKEN}"}
mqtt: {default: {url: "${UNSET_TEST_MQTT_URL:-mqtt://127.0.0.1:1}"}}
rules:
  - id: coffee
    when: {event: access.granted}
    if: [{first_arrival: location}]
    then: [{mqtt: {topic: coffee, payload: "ON"}}]
"""
TESTS = f"""
payload: {payload_path("01")}
tests:
  - name: coffee
    events: [{{expect: {{fires: [coffee]}}}}]
"""
NOTE = (
    "note: not set: UNSET_TEST_SECRET, UNSET_TEST_TOKEN; placeholders stand in, "
    "as this command sends nothing (`serve` needs them set)\n"
)


@pytest.fixture
def config(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """Rules whose secrets this shell lacks, and a store their daemon filled."""
    path = tmp_path / "rules.yaml"
    path.write_text(textwrap.dedent(RULES))
    (tmp_path / "coffee.tests.yaml").write_text(textwrap.dedent(TESTS))
    for name in SECRETS:
        monkeypatch.setenv(name, "set-while-the-daemon-ran")
    asyncio.run(decide_in_store(path, [payload("01")]))
    for name in SECRETS:
        monkeypatch.delenv(name)
    monkeypatch.delenv("UNSET_TEST_MQTT_URL", raising=False)
    return path


@pytest.mark.parametrize(
    "command",
    [
        ["simulate", str(payload_path("01"))],
        ["test"],
        ["replay", "--since", "2025-03-01T00:00Z"],
    ],
    ids=lambda command: command[0],
)
def test_dry_runs_name_the_unset_variables_once_and_run(
    command: list[str], config: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main([*command, "-c", str(config)]) == 0
    assert capsys.readouterr().err == NOTE


def test_validate_warns_at_each_unset_variable(
    config: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["validate", "-c", str(config)]) == 0
    captured = capsys.readouterr()
    assert captured.out == f"{config}: OK, 1 rule(s), 2 warning(s)\n"
    assert _issues(captured.err) == [
        ("warning", "endpoints.main.secret", "UNSET_TEST_SECRET"),
        ("warning", "status.admin_token", "UNSET_TEST_TOKEN"),
    ]


def test_serve_refuses_to_start_and_names_each_unset_variable(config: Path) -> None:
    # `serve` itself, not `main`: the command would set up the process's logging.
    with pytest.raises(ConfigError) as error:
        serve(config)
    assert _issues(str(error.value)) == [
        ("error", "endpoints.main.secret", "UNSET_TEST_SECRET"),
        ("error", "status.admin_token", "UNSET_TEST_TOKEN"),
    ]


def _issues(lines: str) -> list[tuple[str, str, str]]:
    """(severity, path, the variable named) of each `file:line:col: ...` line."""
    found = []
    for line in lines.splitlines():
        _, severity, path, message = line.split(": ", 3)
        [name] = [name for name in SECRETS if name in message]
        found.append((severity, path, name))
    return found
