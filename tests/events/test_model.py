"""`Event.to_dict`: the plain values templates and `match` paths read."""

from __future__ import annotations

from datetime import datetime
from typing import Any

import pytest

from genea_automate.events.normalise import normalise


def _event(load_shared: Any, name: str, received_at: datetime) -> Any:
    return normalise(load_shared(name).data, received_at=received_at)


def test_to_dict_gives_nested_parts_as_plain_dicts(
    load_shared: Any, received_at: datetime
) -> None:
    data = _event(load_shared, "01-access-granted-card.json", received_at).to_dict()
    assert data["actor"]["name"] == "Jordan Example"
    assert data["location"]["timezone"] == "America/New_York"
    assert data["controller"]["hardware"] == "mercury"
    assert data["card"] == {
        "uuid": "0a1b2c3d-4e5f-4a6b-8c7d-9e0f1a2b3c41",
        "type": "KEYCARD",
        "status": "ACTIVE",
        "number": "****7734",
        "badge_type": None,
    }
    assert data["door"] == {"uuid": None, "name": None, "status": None, "model": None}


def test_to_dict_writes_times_as_iso_text(
    load_shared: Any, received_at: datetime
) -> None:
    data = _event(load_shared, "01-access-granted-card.json", received_at).to_dict()
    assert (data["time"], data["local_time"], data["time_source"]) == (
        "2025-03-03T13:58:11Z",
        "2025-03-03T08:58:11-05:00",
        "event_time",
    )


@pytest.mark.parametrize(
    ("sent", "time", "local_time"),
    [
        ("2025-03-03T13:58:11.806Z", "2025-03-03T13:58:11.806Z", "08:58:11.806-05:00"),
        ("2025-03-03T13:58:11.000Z", "2025-03-03T13:58:11Z", "08:58:11-05:00"),
        ("2025-03-03T13:58:11.000123Z", "2025-03-03T13:58:11.000123Z", None),
    ],
    ids=["milliseconds", "whole-second", "microseconds-kept"],
)
def test_to_dict_writes_a_fraction_of_a_second_as_sent(
    load_shared: Any,
    received_at: datetime,
    sent: str,
    time: str,
    local_time: str | None,
) -> None:
    data = load_shared("01-access-granted-card.json").data
    event = normalise({**data, "event_time": sent}, received_at=received_at)
    written = event.to_dict()
    assert written["time"] == time
    if local_time is not None:
        assert written["local_time"] == f"2025-03-03T{local_time}"


def test_to_dict_has_every_event_field(load_shared: Any, received_at: datetime) -> None:
    event = _event(load_shared, "13-door-secured-after-forced.json", received_at)
    assert list(event.to_dict()) == list(event.__dataclass_fields__)


def test_to_dict_shares_raw_instead_of_copying_it(
    load_shared: Any, received_at: datetime
) -> None:
    event = _event(
        load_shared, "20-v3-inferred-denied-out-of-schedule.json", received_at
    )
    assert event.to_dict()["raw"] is event.raw
    assert event.to_dict()["raw"]["card"]["card_number"] == "77002316"


def test_to_dict_copies_details_so_a_change_stays_local(
    load_shared: Any, received_at: datetime
) -> None:
    event = _event(load_shared, "13-door-secured-after-forced.json", received_at)
    event.to_dict()["details"]["resolved"] = "changed"
    assert event.details["resolved"] == "forced"
