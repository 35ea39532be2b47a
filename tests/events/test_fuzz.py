"""`normalise` never raises: real payloads mutated at random, with a fixed seed."""

from __future__ import annotations

import copy
import json
import random
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from genea_automate.events.model import Event
from genea_automate.events.normalise import normalise

ROUNDS_PER_PAYLOAD = 300
CATEGORIES = {"access", "audit", "device"}

# Values that have broken parsers before: wrong types, extremes, odd text.
ODD_VALUES: list[Any] = [
    None,
    True,
    False,
    0,
    -1,
    2**70,
    10**5000,  # str() refuses ints this long
    1.5,
    float("nan"),
    float("inf"),
    "",
    " ",
    "\x00",
    "\ud800",
    "x" * 10_000,
    "Prior : " + " " * 5_000 + ", Current : Yes",
    "Prior : Yes, Current : Yes",
    "0001-01-01T00:00:00+01:00",
    "9999-12-31T23:59:59-01:00",
    "2025-02-30T10:00:00Z",
    "2025-03-03T13:58:11.000Z",
    "America",
    "../../etc/passwd",
    "Europe/London",
    "SEQUR_ACCESS_DENIED_",
    "sequr_door_position_sensor_alarm",
    "AUDIT",
    [],
    [None],
    [[]],
    [{"timezone": 5}],
    {},
    {"timezone": ["UTC"]},
    {"Forced Open State": None},
    {"type": {"nested": True}},
]
FIELD_NAMES = [
    "uuid",
    "event_time",
    "event_type",
    "event_action",
    "event_message",
    "actor",
    "location",
    "door",
    "controller",
    "card",
    "audit_resource",
    "additional_info",
    "metadata",
    "created_at",
]


def _payloads(*folders: Path) -> Iterator[dict[str, Any]]:
    for folder in folders:
        for path in sorted(folder.glob("*.json")):
            yield json.loads(path.read_text(encoding="utf-8"))


def _containers(value: Any) -> list[Any]:
    """Every dict and list inside `value`, itself included."""
    found = [value]
    children = value.values() if isinstance(value, dict) else value
    for child in children:
        if isinstance(child, dict | list):
            found.extend(_containers(child))
    return found


def _mutate(rng: random.Random, payload: dict[str, Any]) -> None:
    """One random change somewhere inside `payload`."""
    target = rng.choice(_containers(payload))
    if isinstance(target, list):
        if target and rng.random() < 0.5:
            target[rng.randrange(len(target))] = rng.choice(ODD_VALUES)
        else:
            target.clear()
        return
    if not target or rng.random() < 0.2:
        target[rng.choice(FIELD_NAMES)] = copy.deepcopy(rng.choice(ODD_VALUES))
        return
    key = rng.choice(list(target))
    change = rng.random()
    if change < 0.3:
        del target[key]
    elif change < 0.4:
        target[key] = [target[key]]  # the way `location` became a list
    else:
        target[key] = copy.deepcopy(rng.choice(ODD_VALUES))


def _assert_sane(event: Event) -> None:
    assert isinstance(event, Event)
    assert event.kind and event.kind == event.kind.lower()
    assert event.category in CATEGORIES
    assert event.time.tzinfo is UTC
    assert event.local_time.utcoffset() is not None
    assert event.to_dict()["kind"] == event.kind


def test_normalise_never_raises_on_mutated_payloads(
    shared_payloads_dir: Path, own_payloads_dir: Path
) -> None:
    rng = random.Random(20250303)
    received_at = datetime(2025, 12, 1, tzinfo=UTC)
    for original in _payloads(shared_payloads_dir, own_payloads_dir):
        for _ in range(ROUNDS_PER_PAYLOAD):
            payload = copy.deepcopy(original)
            for _ in range(rng.randint(1, 6)):
                _mutate(rng, payload)
            _assert_sane(normalise(payload, received_at=received_at))


def test_normalise_never_raises_on_random_flat_dicts() -> None:
    rng = random.Random(7734)
    for _ in range(2_000):
        keys = rng.sample(FIELD_NAMES, rng.randint(0, len(FIELD_NAMES)))
        payload = {key: copy.deepcopy(rng.choice(ODD_VALUES)) for key in keys}
        _assert_sane(normalise(payload, received_at=datetime(2025, 1, 1)))


@pytest.mark.parametrize(
    "zone",
    ["", "Not/AZone", "America", "\x00", "x" * 500],
    ids=["empty", "unknown", "folder", "nul", "long"],
)
def test_normalise_never_raises_on_a_bad_default_zone(zone: str) -> None:
    payload = {"event_action": "SEQUR_ACCESS_GRANTED", "location": {"timezone": zone}}
    event = normalise(
        payload, received_at=datetime(2025, 1, 1, tzinfo=UTC), default_timezone=zone
    )
    assert event.details["timezone_fallback"] == {"given": zone, "used": "UTC"}
