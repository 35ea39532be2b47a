"""Payload -> Event: the shared payloads, then one test per shape variation."""

from __future__ import annotations

import copy
import re
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from genea_automate.events.model import Actor, Card, Controller, Door, Location
from genea_automate.events.normalise import (
    detect_hardware,
    mask_card_number,
    normalise,
    parse_additional_info,
    parse_time,
)

Load = Callable[[str], dict[str, Any]]
LoadShared = Callable[[str], Any]
# `shared_payload` and `load_shared` come from tests/conftest.py and give objects
# with `.name` (the file name) and `.data` (the parsed JSON).


def _state(prior: bool, current: bool) -> dict[str, bool]:
    return {"prior": prior, "current": current}


# The details each shared payload must give, exactly (kinds come from the README).
SHARED_DETAILS: dict[str, dict[str, Any]] = {
    "01-access-granted-card": {"door_already_unlocked": False},
    "02-access-granted-mobile-key": {"door_already_unlocked": False},
    "03-remote-quick-grant": {"phase": "requested"},
    "04-remote-unlock-api-key": {"initiator": "api_key"},
    "05-door-card-only-system": {"initiator": "system"},
    "06-denied-card-not-found": {"reason": "card_not_found"},
    "07-denied-expired-vertx": {"reason": "expired"},
    "08-denied-anti-passback": {"reason": "anti_passback"},
    "09-denied-invalid-facility-code": {"reason": "invalid_facility_code"},
    "10-door-forced-open": {
        "forced_open": _state(False, True),
        "held_open": _state(False, False),
    },
    "11-door-held-open": {
        "forced_open": _state(False, False),
        "held_open": _state(False, True),
    },
    "12-door-forced-and-held-open": {
        "forced_open": _state(True, True),
        "held_open": _state(False, True),
    },
    "13-door-secured-after-forced": {
        "forced_open": _state(True, False),
        "held_open": _state(False, False),
        "resolved": "forced",
    },
    "14-reader-online-status": {
        "description": "Reader 1 online",
        "online": _state(False, True),
    },
    "15-audit-created-user": {},
    "16-audit-updated-card": {},
    "17-audit-deleted-door": {},
    "18-access-granted-door-unlocked": {"door_already_unlocked": True},
    "19-unknown-future-action": {
        "description": "Cab 2 override",
        "override": _state(False, True),
    },
    "20-v3-inferred-denied-out-of-schedule": {"reason": "not_in_schedule"},
}

# Local times the shared README names, to pin the zone conversion.
README_LOCAL_TIMES = {
    "01-access-granted-card": "2025-03-03T08:58:11-05:00",
    "05-door-card-only-system": "2025-08-01T18:00:00+10:00",
    "20-v3-inferred-denied-out-of-schedule": "2025-11-18T03:11:26+05:30",
}


@pytest.fixture
def readme_kinds(shared_payloads_dir: Path) -> dict[str, str]:
    """file stem -> the first word of the README's "expected kind" column."""
    rows = re.findall(
        r"^\| `([^`]+)\.json` \| [^|]+ \| [^|]+ \| ([a-z_.]+)",
        (shared_payloads_dir / "README.md").read_text(encoding="utf-8"),
        flags=re.M,
    )
    return dict(rows)


def _stem(payload: Any) -> str:
    return str(payload.name).removesuffix(".json")


def test_shared_readme_lists_every_shared_payload(
    readme_kinds: dict[str, str],
) -> None:
    assert set(readme_kinds) == set(SHARED_DETAILS)


def test_normalise_gives_the_readme_kind(
    shared_payload: Any, readme_kinds: dict[str, str], received_at: datetime
) -> None:
    event = normalise(shared_payload.data, received_at=received_at)
    assert event.kind == readme_kinds[_stem(shared_payload)]


def test_normalise_gives_exactly_the_expected_details(
    shared_payload: Any, received_at: datetime
) -> None:
    event = normalise(shared_payload.data, received_at=received_at)
    assert event.details == SHARED_DETAILS[_stem(shared_payload)]


def test_normalise_keeps_the_payload_untouched_as_raw(
    shared_payload: Any, received_at: datetime
) -> None:
    before = copy.deepcopy(shared_payload.data)
    event = normalise(shared_payload.data, received_at=received_at)
    event.to_dict()
    assert event.raw is shared_payload.data
    assert event.raw == before


def test_normalise_reads_the_envelope(
    shared_payload: Any, received_at: datetime
) -> None:
    data = shared_payload.data
    event = normalise(data, received_at=received_at)
    assert (event.id, event.action) == (data["uuid"], data["event_action"])
    assert event.message == data["event_message"].replace("61337290", "****7290")
    assert event.time_source == "event_time"
    assert event.time == datetime.fromisoformat(data["event_time"])
    assert event.time.tzinfo is UTC


def test_normalise_never_shows_a_full_card_number(
    shared_payload: Any, received_at: datetime
) -> None:
    event = normalise(shared_payload.data, received_at=received_at)
    for shown in (event.card.number, event.resource.name, event.message):
        assert shown is None or not re.search(r"\d{5,}", shown)


@pytest.mark.parametrize(("name", "local_time"), README_LOCAL_TIMES.items())
def test_normalise_gives_local_time_in_the_location_zone(
    load_shared: LoadShared, name: str, local_time: str, received_at: datetime
) -> None:
    event = normalise(load_shared(f"{name}.json").data, received_at=received_at)
    assert event.local_time.isoformat() == local_time
    assert "timezone_fallback" not in event.details


@pytest.mark.parametrize(
    ("name", "category", "hardware"),
    [
        ("01-access-granted-card", "access", "mercury"),
        ("07-denied-expired-vertx", "access", "vertx"),
        ("14-reader-online-status", "device", "mercury"),
        ("15-audit-created-user", "audit", "unknown"),
    ],
    ids=["access-mercury", "access-vertx", "device", "audit-no-controller"],
)
def test_normalise_gives_category_and_hardware(
    load_shared: LoadShared,
    name: str,
    category: str,
    hardware: str,
    received_at: datetime,
) -> None:
    event = normalise(load_shared(f"{name}.json").data, received_at=received_at)
    assert (event.category, event.controller.hardware) == (category, hardware)


def test_normalise_maps_every_part_of_a_full_payload(
    load_shared: LoadShared, received_at: datetime
) -> None:
    data = load_shared("20-v3-inferred-denied-out-of-schedule.json").data
    event = normalise(data, received_at=received_at)
    assert event.actor == Actor(
        type="USER",
        uuid="f28dc1a6-9bcd-4e0f-8b1a-0c2e4a6c8e27",
        name="Arjun Fictional",
        email="arjun.fictional@example.com",
        role="USER",
        user_location_uuid="1e7bd2f9-8dab-4fc1-a264-7f9b1d3f5b17",
    )
    assert event.location == Location(
        uuid="a91e5c37-6b2d-4c8f-a1e3-5d7b9f2c4e03",
        name="Tech Park Block C",
        timezone="Asia/Kolkata",
        city="Bengaluru",
        state="Karnataka",
    )
    assert event.door == Door(
        uuid="778899aa-bbcc-4dde-8ff0-112233440077",
        name="Server Room",
        status="CLOSED",
        model="HID_RP10",
    )
    assert event.controller == Controller(
        uuid="3fa06b8c-4d5e-4f70-ab12-c3d4e5f6a7b8",
        name="00:0F:E5:7A:8B:9C",
        mac="00:0f:e5:7a:8b:9c",
        model="LP4502",
        serial_number="LP45-0088231",
        hardware="mercury",
    )
    assert event.card == Card(
        uuid="4e5f6a7b-8c9d-4eaf-a0b1-3c4d5e6f7a85",
        type="KEYCARD",
        status="ACTIVE",
        number="****2316",
        badge_type="Employee",
    )


def test_normalise_reads_an_audit_resource_and_masks_a_card_name(
    load_shared: LoadShared, received_at: datetime
) -> None:
    data = load_shared("16-audit-updated-card.json").data
    event = normalise(data, received_at=received_at)
    assert (event.resource.uuid, event.resource.name, event.resource.type) == (
        "03afcbe8-1cde-4a01-a9cb-df5b7d9fb148",
        "****7290",
        "CARD",
    )


# One test per shape variation, on our own payloads in tests/fixtures/payloads.


def test_normalise_reads_a_location_object(
    own_payload: Load, received_at: datetime
) -> None:
    event = normalise(own_payload("location-object"), received_at=received_at)
    assert (event.location.name, event.location.timezone) == (
        "Harborview Labs HQ",
        "America/New_York",
    )


def test_normalise_reads_the_first_location_of_a_list(
    own_payload: Load, received_at: datetime
) -> None:
    event = normalise(own_payload("location-list"), received_at=received_at)
    assert event.location.name == "Harbourside Office"
    assert str(event.local_time.tzinfo) == "Australia/Sydney"


def test_normalise_accepts_an_empty_location_list(
    own_payload: Load, received_at: datetime
) -> None:
    event = normalise(own_payload("location-empty-list"), received_at=received_at)
    assert event.location == Location()
    assert event.details["timezone_fallback"] == {"given": None, "used": "UTC"}


def test_normalise_leaves_null_parts_empty(
    own_payload: Load, received_at: datetime
) -> None:
    event = normalise(own_payload("nulls-everywhere"), received_at=received_at)
    assert event.kind == "access.denied.anti_passback"
    assert (event.actor, event.location, event.door) == (Actor(), Location(), Door())
    assert (event.controller, event.card) == (Controller(), Card())


def test_normalise_ignores_parts_of_the_wrong_type(
    own_payload: Load, received_at: datetime
) -> None:
    event = normalise(own_payload("parts-wrong-types"), received_at=received_at)
    assert event.kind == "access.denied.anti_passback"
    assert event.message == "404"
    assert (event.actor, event.location, event.door) == (Actor(), Location(), Door())
    assert (event.controller, event.card) == (Controller(), Card())
    assert event.details == {
        "reason": "anti_passback",
        "timezone_fallback": {"given": None, "used": "UTC"},
    }


def test_normalise_keeps_unknown_fields_in_raw_only(
    own_payload: Load, received_at: datetime
) -> None:
    data = own_payload("unknown-fields")
    event = normalise(data, received_at=received_at)
    assert event.raw["event_priority"] == "HIGH"
    assert event.raw["card"]["facility_code"] == 17
    assert "event_priority" not in event.to_dict()
    assert event.door.name == "Car Park Entry Barrier"


def test_normalise_matches_a_lower_case_code_suffix(
    own_payload: Load, received_at: datetime
) -> None:
    event = normalise(own_payload("lowercase-code-suffix"), received_at=received_at)
    assert event.kind == "access.denied.invalid_issue_code"
    assert event.action == "SEQUR_ACCESS_DENIED_INVALID_ISSUE_code"


def test_normalise_names_an_unknown_denied_reason(
    own_payload: Load, received_at: datetime
) -> None:
    event = normalise(own_payload("denied-unknown-reason"), received_at=received_at)
    assert event.kind == "access.denied.physical_inspection"
    assert event.details == {"reason": "physical_inspection"}


def test_normalise_treats_an_unknown_grant_as_granted(
    own_payload: Load, received_at: datetime
) -> None:
    event = normalise(own_payload("granted-unknown-variant"), received_at=received_at)
    assert (event.kind, event.details) == ("access.granted", {})


def test_normalise_keeps_an_unknown_code_as_genea_kind(
    own_payload: Load, received_at: datetime
) -> None:
    event = normalise(own_payload("unknown-code"), received_at=received_at)
    assert (event.kind, event.category) == (
        "genea.sequr_controller_ac_power_failure",
        "access",
    )


def test_normalise_marks_a_missing_action_not_understood(
    own_payload: Load, received_at: datetime
) -> None:
    event = normalise(own_payload("action-missing"), received_at=received_at)
    assert (event.kind, event.action) == ("genea.unknown", "")
    assert event.details == {
        "not_understood": "event_action is missing or not a string"
    }


def test_normalise_falls_back_to_created_at(
    own_payload: Load, received_at: datetime
) -> None:
    event = normalise(own_payload("time-created-at-only"), received_at=received_at)
    assert event.time_source == "created_at"
    assert event.time == datetime(2025, 4, 9, 23, 5, 19, 233000, tzinfo=UTC)


def test_normalise_falls_back_to_received_at(
    own_payload: Load, received_at: datetime
) -> None:
    event = normalise(own_payload("time-garbage"), received_at=received_at)
    assert (event.time_source, event.time) == ("received_at", received_at)


def test_normalise_treats_a_naive_received_at_as_utc(own_payload: Load) -> None:
    naive = datetime(2025, 12, 1, 12, 0)
    event = normalise(own_payload("time-garbage"), received_at=naive)
    assert event.time == naive.replace(tzinfo=UTC)


def test_normalise_converts_offsets_to_utc(
    own_payload: Load, received_at: datetime
) -> None:
    event = normalise(own_payload("time-offset"), received_at=received_at)
    assert event.time == datetime(2025, 4, 9, 23, 5, 18, tzinfo=UTC)
    assert event.to_dict()["time"] == "2025-04-09T23:05:18Z"


def test_normalise_takes_a_naive_event_time_as_utc(
    own_payload: Load, received_at: datetime
) -> None:
    event = normalise(own_payload("time-naive"), received_at=received_at)
    assert (event.time_source, event.time) == (
        "event_time",
        datetime(2025, 4, 9, 23, 5, 18, tzinfo=UTC),
    )


@pytest.mark.parametrize(
    ("default_timezone", "used", "offset"),
    [
        ("UTC", "UTC", "+00:00"),
        ("Europe/Paris", "Europe/Paris", "+02:00"),
        ("Not/AZone", "UTC", "+00:00"),
    ],
    ids=["default-utc", "configured-default", "invalid-default"],
)
def test_normalise_uses_the_default_zone_for_an_invalid_one(
    own_payload: Load,
    received_at: datetime,
    default_timezone: str,
    used: str,
    offset: str,
) -> None:
    event = normalise(
        own_payload("timezone-invalid"),
        received_at=received_at,
        default_timezone=default_timezone,
    )
    assert event.location.timezone == "Mars/Olympus_Mons"
    assert event.local_time.isoformat().endswith(offset)
    assert event.details["timezone_fallback"] == {
        "given": "Mars/Olympus_Mons",
        "used": used,
    }


@pytest.mark.parametrize(
    ("name", "hardware"),
    [
        ("hardware-vertx-by-oui", "vertx"),
        ("hardware-mercury-by-model", "mercury"),
        ("hardware-mercury-by-name", "mercury"),
        ("hardware-unknown", "unknown"),
    ],
)
def test_normalise_detects_controller_hardware(
    own_payload: Load, received_at: datetime, name: str, hardware: str
) -> None:
    event = normalise(own_payload(name), received_at=received_at)
    assert event.controller.hardware == hardware


@pytest.mark.parametrize(
    ("name", "kind", "details"),
    [
        (
            "door-alarm-no-additional-info",
            "door.held_open",
            {"decided_from": "event_message"},
        ),
        (
            "door-alarm-neither-current",
            "genea.sequr_door_position_sensor_alarm",
            {"forced_open": _state(True, False), "held_open": _state(False, False)},
        ),
        (
            "door-secured-both",
            "door.secured",
            {
                "forced_open": _state(True, False),
                "held_open": _state(True, False),
                "resolved": "both",
            },
        ),
        (
            "door-secured-no-additional-info",
            "door.secured",
            {"resolved": "held", "decided_from": "event_message"},
        ),
        (
            "reader-offline",
            "device.offline",
            {"description": "Reader 1 offline", "online": _state(True, False)},
        ),
        ("quick-grant-granted", "door.momentary_unlock", {"phase": "granted"}),
        ("door-unlocked-system", "door.unlocked", {"initiator": "system"}),
        ("audit-missing-resource-type", "audit.created.unknown", {}),
        ("audit-installed-integration", "audit.installed.integration", {}),
    ],
)
def test_normalise_decides_kind_and_details(
    own_payload: Load,
    received_at: datetime,
    name: str,
    kind: str,
    details: dict[str, Any],
) -> None:
    event = normalise(own_payload(name), received_at=received_at)
    assert (event.kind, event.details) == (kind, details)


@pytest.mark.parametrize(
    ("number", "masked"),
    [
        ("90017734", "****7734"),
        ("M-20413388", "****3388"),
        ("12345", "****2345"),
        ("1234", "****"),
        ("7", "****"),
        ("", "****"),
        (None, None),
    ],
    ids=["eight-digits", "prefixed", "five", "four", "one", "empty", "none"],
)
def test_mask_card_number_keeps_only_the_last_four(
    number: str | None, masked: str | None
) -> None:
    assert mask_card_number(number) == masked


def test_normalise_masks_a_numeric_card_number(received_at: datetime) -> None:
    event = normalise({"card": {"card_number": 90017734}}, received_at=received_at)
    assert event.card.number == "****7734"


@pytest.mark.parametrize(
    ("model", "mac", "hardware"),
    [
        ("LP1502", None, "mercury"),
        ("ep2500", None, "mercury"),
        ("MP4502", "00:06:8e:00:00:01", "mercury"),
        ("V1000", None, "vertx"),
        ("VertX EVO V2000", None, "vertx"),
        (None, "00-0F-E5-1A-2B-3C", "mercury"),
        (None, "00068e3c4d5e", "vertx"),
        ("LPX", "aa:bb:cc:dd:ee:ff", "unknown"),
        (None, None, "unknown"),
    ],
    ids=[
        "lp",
        "lower-case-ep",
        "model-beats-oui",
        "v1000",
        "vertx-name",
        "mercury-oui-dashes",
        "vertx-oui-bare",
        "neither",
        "nothing",
    ],
)
def test_detect_hardware(model: str | None, mac: str | None, hardware: str) -> None:
    assert detect_hardware(model, mac) == hardware


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("2025-03-03T13:58:11.000Z", datetime(2025, 3, 3, 13, 58, 11, tzinfo=UTC)),
        ("2025-03-03T13:58:11Z", datetime(2025, 3, 3, 13, 58, 11, tzinfo=UTC)),
        ("2025-03-03T13:58:11.417Z", datetime(2025, 3, 3, 13, 58, 11, 417000, UTC)),
        ("2025-03-03T13:58:11+00:00", datetime(2025, 3, 3, 13, 58, 11, tzinfo=UTC)),
        ("2025-03-03T08:58:11-05:00", datetime(2025, 3, 3, 13, 58, 11, tzinfo=UTC)),
        ("2025-03-03T13:58:11", datetime(2025, 3, 3, 13, 58, 11, tzinfo=UTC)),
        ("not a time", None),
        ("", None),
        ("0001-01-01T00:00:00+01:00", None),
        ("9999-12-31T23:59:59Z", None),
        (1741010291, None),
        (None, None),
    ],
    ids=[
        "millis-z",
        "z",
        "odd-millis",
        "utc-offset",
        "other-offset",
        "naive",
        "garbage",
        "empty",
        "first-year",
        "last-year",
        "epoch-number",
        "none",
    ],
)
def test_parse_time(text: object, expected: datetime | None) -> None:
    assert parse_time(text) == expected


@pytest.mark.parametrize(
    ("info", "parsed"),
    [
        (
            {"Forced Open State": "Prior : No, Current : Yes"},
            {"forced_open": _state(False, True)},
        ),
        (
            {"Online Status": "Prior : Offline, Current : Online"},
            {"online": _state(False, True)},
        ),
        (
            {"Door State": "Prior : Maybe, Current : Yes"},
            {"door": {"prior": None, "current": True}},
        ),
        ({"description": "Reader 1"}, {"description": "Reader 1"}),
        ({"Level": 3, "Tags": ["a"]}, {"level": 3, "tags": ["a"]}),
        ({"State": "Prior : No, Current : Yes"}, {"state": _state(False, True)}),
        ({"!!": "x", 7: "y"}, {}),
        (
            {"Forced Open State": "Current : Yes"},
            {"forced_open_state": "Current : Yes"},
        ),
        (["Forced Open State"], {}),
        (None, {}),
    ],
    ids=[
        "state",
        "status",
        "unknown-word",
        "text",
        "other-values",
        "bare-state",
        "unusable-keys",
        "not-prior-current",
        "list",
        "none",
    ],
)
def test_parse_additional_info(info: object, parsed: dict[str, Any]) -> None:
    assert parse_additional_info(info) == parsed
