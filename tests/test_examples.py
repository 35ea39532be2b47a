"""The sample events in examples/: what the README and the docs say they are."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from genea_automate.cli import main
from genea_automate.events.docs import SAMPLE_PAYLOAD
from genea_automate.events.normalise import normalise
from tests.support.genea import SHARED_PAYLOADS

REPO = Path(__file__).resolve().parents[1]
EXAMPLES = sorted((REPO / "examples").glob("*.json"))
RECEIVED = datetime(2025, 3, 3, 14, 0, tzinfo=UTC)


def _event(payload: dict[str, Any]) -> dict[str, Any]:
    event = normalise(payload, received_at=RECEIVED).to_dict()
    del event["raw"]
    return event


def test_the_readme_example_is_the_event_docs_events_shows() -> None:
    """A rule written from docs/events.md (its door, say) can be tried on it."""
    example = json.loads((REPO / "examples" / "access-granted.json").read_bytes())
    assert _event(example) == _event(SAMPLE_PAYLOAD)
    assert example["door"]["name"] == "Main Entrance"


@pytest.mark.parametrize("path", EXAMPLES, ids=lambda path: path.name)
def test_each_example_is_compact_json_with_a_door_and_a_known_kind(
    path: Path,
) -> None:
    """Sent as is by `send`, so it has Genea's byte form; and no older shape."""
    text = path.read_text(encoding="utf-8")
    payload = json.loads(text)
    assert text == json.dumps(payload, separators=(",", ":"), ensure_ascii=False)
    event = _event(payload)
    assert event["door"]["name"] and event["location"]["name"]
    assert event["kind"] != "genea.unknown"


def test_a_door_uuid_names_one_door_in_examples_docs_and_fixtures() -> None:
    payloads = [json.loads(path.read_bytes()) for path in EXAMPLES]
    payloads += [json.loads(p.read_bytes()) for p in SHARED_PAYLOADS.glob("*.json")]
    names: dict[str, set[str]] = {}
    for payload in [SAMPLE_PAYLOAD, *payloads]:
        door = payload.get("door") or {}
        if door.get("uuid"):
            names.setdefault(door["uuid"], set()).add(door["name"])
    assert {uuid: found for uuid, found in names.items() if len(found) > 1} == {}


def test_the_simulate_output_in_the_docs_is_that_of_the_example(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    lines = (REPO / "docs" / "observability.md").read_text().splitlines()
    command = lines.index(
        "    genea-automate simulate examples/access-granted.json "
        "--at 2025-03-03T14:00Z -c rules.example.yaml"
    )
    start = command + 4  # past the blank line, "prints:" and a blank line
    end = lines.index("", start)
    shown = [line.removeprefix("    ") for line in lines[start:end]]
    args = lines[command].split()[1:]
    monkeypatch.chdir(REPO)
    assert main(args) == 0
    assert capsys.readouterr().out.splitlines()[: len(shown)] == shown
