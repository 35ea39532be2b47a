"""Log formats: JSON lines keep the same field names as key=value lines."""

from __future__ import annotations

import json
import logging
import sys

import pytest

from genea_automate.logs import JsonFormatter, KeyValueFormatter, configure_logging


def record(**extra: object) -> logging.LogRecord:
    made = logging.LogRecord(
        "genea_automate.processing",
        logging.INFO,
        __file__,
        1,
        "event %s: fired %s",
        ("e-1", "coffee"),
        None,
    )
    made.__dict__.update(extra)
    return made


def test_json_lines_have_the_stable_fields_that_are_set() -> None:
    line = JsonFormatter().format(
        record(event_id="e-1", rule_id="coffee", endpoint="main", kind="access.granted")
    )
    entry = json.loads(line)
    assert {k: v for k, v in entry.items() if k != "time"} == {
        "level": "info",
        "logger": "genea_automate.processing",
        "msg": "event e-1: fired coffee",
        "event_id": "e-1",
        "rule_id": "coffee",
        "endpoint": "main",
        "kind": "access.granted",
    }
    assert "rule_id" not in json.loads(JsonFormatter().format(record(event_id="e")))


def test_json_lines_carry_a_traceback_as_one_field() -> None:
    try:
        raise ValueError("boom")
    except ValueError:
        failed = record()
        failed.exc_info = sys.exc_info()
    entry = json.loads(JsonFormatter().format(failed))
    assert entry["exc"].startswith("Traceback") and "ValueError: boom" in entry["exc"]


def test_key_value_and_json_agree_on_the_fields() -> None:
    line = KeyValueFormatter().format(record(event_id="e-1", kind="access.granted"))
    assert line.endswith(
        'logger=genea_automate.processing msg="event e-1: fired coffee" '
        "event_id=e-1 kind=access.granted"
    )


def test_log_format_json_is_a_flag_away(capsys: pytest.CaptureFixture[str]) -> None:
    root = logging.getLogger()
    saved = root.handlers[:], root.level
    try:
        configure_logging("INFO", "json")
        logging.getLogger("genea_automate.test").info(
            "hello", extra={"endpoint": "main"}
        )
    finally:
        root.handlers[:], level = saved
        root.setLevel(level)
    entry = json.loads(capsys.readouterr().err)
    assert (entry["msg"], entry["endpoint"], entry["level"]) == (
        "hello",
        "main",
        "info",
    )
