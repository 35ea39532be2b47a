"""The command line: exit codes and what it prints."""

from __future__ import annotations

import json
import re
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from genea_automate.cli import main
from genea_automate.ingest.signature import sign
from tests.support.genea import TEST_SECRET, payload_path
from tests.support.http_server import LoopbackHttpServer, Reply

REPO = Path(__file__).resolve().parents[1]


def test_cli_sign_prints_the_header_genea_would_send(
    capsys: pytest.CaptureFixture[str],
) -> None:
    assert main(["sign", str(payload_path("01")), "--secret", TEST_SECRET]) == 0
    assert capsys.readouterr().out == "sha1=79e811f4f4d8f844a3d8267bbf6f5c01a6e81143\n"


def test_cli_sign_takes_the_secret_from_the_environment(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("GENEA_WEBHOOK_SECRET", TEST_SECRET)
    assert main(["sign", str(payload_path("10"))]) == 0
    assert capsys.readouterr().out.strip() == (
        "sha1=de9050ac63da7be35ddee554419f45a97a1b1e95"
    )


def test_cli_validate_ok_and_errors(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["validate", "-c", str(REPO / "rules.example.yaml")]) == 0
    assert "OK, 3 rule(s), 0 warning(s)" in capsys.readouterr().out

    broken = tmp_path / "rules.yaml"
    broken.write_text("endpoints: {main: {secret: s}}\nrules: [{id: x, when: a}]\n")
    assert main(["validate", "-c", str(broken)]) == 1
    assert capsys.readouterr().err == (
        f"{broken}:2:9: error: rules[0]: missing required key 'then'\n"
        f"{broken}:2:23: warning: rules[0].when.event[0]: no known event kind "
        "matches 'a' (did you mean 'access' or 'audit'?); the kinds are listed in "
        "docs/events.md\n"
    )


def test_cli_schema_describes_rules_and_plugin_options(
    capsys: pytest.CaptureFixture[str],
) -> None:
    assert main(["schema", "-c", str(REPO / "rules.example.yaml")]) == 0
    schema = json.loads(capsys.readouterr().out)
    step = schema["$defs"]["Step"]["properties"]
    assert {"mqtt", "slack", "http", "log", "append_line"} <= set(step)
    assert "if" in schema["$defs"]["Rule"]["properties"]


def test_cli_schema_accepts_the_example_and_every_docs_example(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    import jsonschema

    from genea_automate.config.yamlload import load_yaml, load_yaml_text
    from tests.config.test_docs_examples import CONNECTIONS, EXAMPLES

    assert main(["schema", "-c", str(REPO / "rules.example.yaml")]) == 0
    validator = jsonschema.Draft202012Validator(json.loads(capsys.readouterr().out))
    documents = [load_yaml(REPO / "rules.example.yaml", environ={}).data]
    for example in EXAMPLES:
        text = example if example.startswith("endpoints:") else CONNECTIONS + example
        documents.append(load_yaml_text(text, "docs.yaml", environ={"X": "1"}).data)
    problems = [
        f"{error.json_path}: {error.message}"
        for document in documents
        for error in validator.iter_errors(document)
    ]
    assert problems == []


@pytest.mark.parametrize("path", ["", "/", "/main"])
def test_cli_send_to_a_url_without_the_endpoint_path_says_what_it_must_be(
    path: str, http_server: LoopbackHttpServer, capsys: pytest.CaptureFixture[str]
) -> None:
    http_server.default = Reply(status=404, body="Not Found")
    args = ["send", str(payload_path("01")), "--secret", TEST_SECRET]
    assert main([*args, "--url", http_server.url + path]) == 1
    captured = capsys.readouterr()
    assert captured.out == "404 Not Found\n"
    assert captured.err == (
        f"error: the URL must end in /hooks/<endpoint name>, e.g. {http_server.url}"
        "/hooks/main, where the name is an endpoint under `endpoints:` in the rules "
        "file\n"
    )


def test_cli_send_to_an_unknown_endpoint_shows_only_the_daemons_answer(
    http_server: LoopbackHttpServer, capsys: pytest.CaptureFixture[str]
) -> None:
    http_server.default = Reply(status=404, body="no endpoint named 'mian'")
    args = ["send", str(payload_path("01")), "--secret", TEST_SECRET]
    assert main([*args, "--url", http_server.url + "/hooks/mian"]) == 1
    assert capsys.readouterr() == ("404 no endpoint named 'mian'\n", "")


def test_cli_send_fresh_posts_a_new_event_happening_now(
    http_server: LoopbackHttpServer, capsys: pytest.CaptureFixture[str]
) -> None:
    http_server.default = Reply(status=200, body='{"status":"stored"}')
    args = ["send", str(payload_path("01")), "--secret", TEST_SECRET, "--fresh"]
    before = datetime.now(UTC)
    assert main([*args, "--url", http_server.url + "/hooks/main"]) == 0
    after = datetime.now(UTC)

    [request] = http_server.wait_for_requests(1)
    sent = request.json()
    original = json.loads(payload_path("01").read_bytes())
    assert sent["uuid"] != original["uuid"]
    assert re.fullmatch(r"[0-9a-f]{24}", sent["uuid"])
    when = datetime.fromisoformat(sent["event_time"])
    assert before - timedelta(milliseconds=1) <= when <= after
    assert sent["event_time"].endswith("Z")
    assert sent["created_at"] == sent["event_time"]
    changed = ("uuid", "event_time", "created_at")
    assert {k: v for k, v in sent.items() if k not in changed} == {
        k: v for k, v in original.items() if k not in changed
    }
    assert request.headers["x-sequr-signature"] == sign(
        TEST_SECRET.encode(), request.body
    )
    assert capsys.readouterr().out == (
        f"sending {payload_path('01')} as new event {sent['uuid']}, happening now\n"
        '200 {"status":"stored"}\n'
    )


def test_cli_send_fresh_keeps_an_audit_uuid_a_number(
    http_server: LoopbackHttpServer,
) -> None:
    http_server.default = Reply(status=200, body='{"status":"stored"}')
    args = ["send", str(payload_path("15")), "--secret", TEST_SECRET, "--fresh"]
    assert main([*args, "--url", http_server.url + "/hooks/main"]) == 0
    [request] = http_server.wait_for_requests(1)
    sent, original = request.json(), json.loads(payload_path("15").read_bytes())
    assert original["uuid"].isdigit()
    assert sent["uuid"].isdigit() and sent["uuid"] != original["uuid"]


def test_cli_send_fresh_refuses_a_file_that_is_not_json(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    broken = tmp_path / "broken.json"
    broken.write_text("{not json")
    args = ["send", str(broken), "--secret", "s", "--fresh"]
    assert main([*args, "--url", "http://127.0.0.1:9/hooks/main"]) == 1
    assert capsys.readouterr().err.startswith(f"error: {broken} is not JSON: ")
