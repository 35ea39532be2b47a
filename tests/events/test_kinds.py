"""The kinds table: the names it promises and how each kind is decided."""

from __future__ import annotations

import re
from datetime import datetime
from typing import Any

import pytest

from genea_automate.events.kinds import (
    CODES,
    FAMILIES,
    KNOWN_KINDS,
    OPEN_KIND_PREFIXES,
    TABLE,
    Signals,
    classify,
    example_payload,
    slug,
)
from genea_automate.events.normalise import normalise, parse_additional_info

# GENEA-EVENTS.md section 5.1, code by code: kind names are public surface.
DENIED_KINDS = {
    "SEQUR_ACCESS_DENIED_ACCESS_POINT_LOCKED": "door_locked",
    "SEQUR_ACCESS_DENIED_AFTER_EXPIRATION_DATE": "expired",
    "SEQUR_ACCESS_DENIED_AIRLOCK": "airlock_busy",
    "SEQUR_ACCESS_DENIED_ANTI_PASSBACK_VIOLATION": "anti_passback",
    "SEQUR_ACCESS_DENIED_AREA_NOT_ENABLED": "area_not_enabled",
    "SEQUR_ACCESS_DENIED_BEFORE_ACTIVATION_DATE": "not_yet_active",
    "SEQUR_ACCESS_DENIED_CARD_NOT_FOUND": "card_not_found",
    "SEQUR_ACCESS_DENIED_COUNT_EXCEEDED": "count_exceeded",
    "SEQUR_ACCESS_DENIED_DEACTIVATED_CARD": "card_deactivated",
    "SEQUR_ACCESS_DENIED_DURESS_code_DETECTED": "duress",
    "SEQUR_ACCESS_DENIED_ELEVATOR_FLOOR": "elevator_floor_not_served",
    "SEQUR_ACCESS_DENIED_ELEVATOR_FLOOR_UNAUTHORIZED": "elevator_floor_unauthorized",
    "SEQUR_ACCESS_DENIED_ELEVATOR_TIMEOUT": "elevator_timeout",
    "SEQUR_ACCESS_DENIED_ELEVATOR_UNKNOWN_ERROR": "elevator_error",
    "SEQUR_ACCESS_DENIED_HOST_APPROVAL_DENIED": "host_approval_denied",
    "SEQUR_ACCESS_DENIED_HOST_APPROVAL_TIMEOUT": "host_approval_timeout",
    "SEQUR_ACCESS_DENIED_INCOMPLETE_CARD_PIN_SEQ": "incomplete_card_pin",
    "SEQUR_ACCESS_DENIED_INVALID_FACILITY_code": "invalid_facility_code",
    "SEQUR_ACCESS_DENIED_INVALID_FORMAT": "invalid_card_format",
    "SEQUR_ACCESS_DENIED_INVALID_ISSUE_code": "invalid_issue_code",
    "SEQUR_ACCESS_DENIED_INVALID_PIN": "invalid_pin",
    "SEQUR_ACCESS_DENIED_INVALID_TIME": "not_in_schedule",
    "SEQUR_ACCESS_DENIED_NO_DOOR_ACCESS": "no_door_access",
    "SEQUR_ACCESS_DENIED_NO_ESCORT_CARD": "no_escort",
    "SEQUR_ACCESS_DENIED_NO_SECOND_CARD": "no_second_card",
    "SEQUR_ACCESS_DENIED_OCCUPANCY_LIMIT_REACHED": "occupancy_limit",
    "SEQUR_ACCESS_DENIED_UNAUTHORIZED_ASSETS": "unauthorized_assets",
    "SEQUR_ACCESS_DENIED_USE_LIMIT": "use_limit",
}

OUTCOMES = [(spec, outcome) for spec in TABLE for outcome in spec.outcomes]


def _classify(action: str | None, **signals: Any) -> tuple[str, str, dict[str, Any]]:
    """Classify an ACCESS payload; `info` is given as raw `additional_info`."""
    info = parse_additional_info(signals.pop("info", None))
    verdict = classify(
        action, audit=False, resource_type=None, signals=Signals(info=info, **signals)
    )
    return verdict.kind, verdict.category, verdict.details


def test_table_lists_each_code_once_ignoring_case() -> None:
    codes = [spec.code.upper() for spec in TABLE]
    assert len(codes) == len(set(codes)) == len(CODES)


def test_table_covers_every_denied_code_of_the_reference() -> None:
    assert {c.upper() for c in DENIED_KINDS} <= set(CODES)


def test_known_kinds_are_sorted_unique_and_cover_every_outcome() -> None:
    assert list(KNOWN_KINDS) == sorted(set(KNOWN_KINDS))
    assert {outcome.kind for _, outcome in OUTCOMES} | {"genea.unknown"} == set(
        KNOWN_KINDS
    )


@pytest.mark.parametrize("kind", KNOWN_KINDS)
def test_known_kinds_are_dotted_snake_case(kind: str) -> None:
    assert re.fullmatch(r"[a-z]+(\.[a-z0-9_]+)+", kind)


@pytest.mark.parametrize(
    ("spec", "outcome"),
    OUTCOMES,
    ids=[f"{spec.code}->{outcome.kind}" for spec, outcome in OUTCOMES],
)
def test_outcome_example_normalises_to_its_kind(
    spec: Any, outcome: Any, received_at: datetime
) -> None:
    event = normalise(example_payload(spec, outcome), received_at=received_at)
    assert (event.kind, event.category) == (outcome.kind, spec.category)


@pytest.mark.parametrize("family", FAMILIES, ids=lambda family: family.pattern)
def test_family_example_gives_a_kind_of_its_pattern(
    family: Any, received_at: datetime
) -> None:
    pattern = re.sub(r"<\w+>", "[a-z0-9_]+", re.escape(family.pattern))
    payload = {"event_type": "ACCESS", **family.example}
    assert re.fullmatch(pattern, normalise(payload, received_at=received_at).kind)


@pytest.mark.parametrize(
    ("code", "reason"), DENIED_KINDS.items(), ids=list(DENIED_KINDS)
)
def test_classify_denied_code_gives_its_reason(code: str, reason: str) -> None:
    assert _classify(code) == (f"access.denied.{reason}", "access", {"reason": reason})


@pytest.mark.parametrize(
    ("code", "already_unlocked"),
    [
        ("SEQUR_ACCESS_GRANTED", False),
        ("SEQUR_ACCESS_GRANTED_ACCESS_POINT_UNLOCKED", True),
    ],
    ids=["granted", "granted-access-point-unlocked"],
)
def test_classify_granted_code_says_whether_door_was_unlocked(
    code: str, already_unlocked: bool
) -> None:
    details = {"door_already_unlocked": already_unlocked}
    assert _classify(code) == ("access.granted", "access", details)


@pytest.mark.parametrize(
    ("action", "kind"),
    [
        ("sequr_access_granted", "access.granted"),
        (
            "SEQUR_ACCESS_DENIED_INVALID_FACILITY_CODE",
            "access.denied.invalid_facility_code",
        ),
        ("Sequr_Access_Denied_Invalid_Pin", "access.denied.invalid_pin"),
        (" SEQUR_ACCESS_DENIED_INVALID_PIN ", "access.denied.invalid_pin"),
    ],
    ids=["lower-case", "upper-case-code-suffix", "mixed-case", "padded"],
)
def test_classify_compares_codes_ignoring_case(action: str, kind: str) -> None:
    assert _classify(action)[0] == kind


@pytest.mark.parametrize(
    ("action", "kind", "details"),
    [
        (
            "SEQUR_ACCESS_DENIED_PHYSICAL_INSPECTION",
            "access.denied.physical_inspection",
            {"reason": "physical_inspection"},
        ),
        ("SEQUR_ACCESS_GRANTED_ELEVATOR_FLOOR", "access.granted", {}),
        ("SEQUR_ACCESS_DENIED_", "genea.sequr_access_denied", {}),
        (
            "SEQUR_ELEVATOR_CAB_OVERRIDE_STARTED",
            "genea.sequr_elevator_cab_override_started",
            {},
        ),
        ("Controller.Tamper Alarm", "genea.controller_tamper_alarm", {}),
    ],
    ids=[
        "unknown-denied-reason",
        "unknown-granted",
        "denied-without-reason",
        "unknown-code",
        "odd-characters",
    ],
)
def test_classify_unknown_code_falls_back_by_family(
    action: str, kind: str, details: dict[str, Any]
) -> None:
    assert _classify(action) == (kind, "access", details)


@pytest.mark.parametrize("action", [None, "", "  ", "***"], ids=repr)
def test_classify_unreadable_action_is_genea_unknown(action: str | None) -> None:
    not_understood = {"not_understood": "event_action is missing or not a string"}
    assert _classify(action) == ("genea.unknown", "access", not_understood)


@pytest.mark.parametrize(
    ("action", "resource_type", "kind"),
    [
        ("CREATED", "CARD", "audit.created.card"),
        ("UPDATED", "USER", "audit.updated.user"),
        ("DELETED", "DOOR", "audit.deleted.door"),
        ("INSTALLED", "Integration", "audit.installed.integration"),
        ("CREATED", "ACCESS GROUP", "audit.created.access_group"),
        ("CREATED", None, "audit.created.unknown"),
        ("SEQUR_ACCESS_GRANTED", "CARD", "audit.sequr_access_granted.card"),
    ],
    ids=[
        "created-card",
        "updated-user",
        "deleted-door",
        "installed-mixed-case",
        "type-with-space",
        "type-missing",
        "access-code-on-audit",
    ],
)
def test_classify_audit_is_action_then_resource(
    action: str, resource_type: str | None, kind: str
) -> None:
    verdict = classify(
        action, audit=True, resource_type=resource_type, signals=Signals()
    )
    assert (verdict.kind, verdict.category, verdict.details) == (kind, "audit", {})


def _states(forced: str, held: str) -> dict[str, str]:
    return {"Forced Open State": forced, "Held Open State": held}


NO_YES = "Prior : No, Current : Yes"
NO_NO = "Prior : No, Current : No"
YES_NO = "Prior : Yes, Current : No"
YES_YES = "Prior : Yes, Current : Yes"


@pytest.mark.parametrize(
    ("info", "kind"),
    [
        (_states(NO_YES, NO_NO), "door.forced_open"),
        (_states(NO_NO, NO_YES), "door.held_open"),
        (_states(YES_YES, NO_YES), "door.forced_and_held_open"),
        (_states(YES_NO, NO_NO), "genea.sequr_door_position_sensor_alarm"),
        ({"Forced Open State": NO_YES}, "door.forced_open"),
        ({"Held Open State": "prior: no,current: yes"}, "door.held_open"),
    ],
    ids=[
        "forced",
        "held",
        "forced-and-held",
        "neither-current",
        "only-forced-key",
        "loose-spacing",
    ],
)
def test_classify_door_alarm_by_states(info: dict[str, str], kind: str) -> None:
    message = "door contact - forced and held open"  # the states win over it
    result = _classify("SEQUR_DOOR_POSITION_SENSOR_ALARM", info=info, message=message)
    assert result == (kind, "access", {})


@pytest.mark.parametrize(
    ("message", "kind"),
    [
        ("door contact - forced open", "door.forced_open"),
        ("door contact - held open is enabled", "door.held_open"),
        ("door contact - forced and held open", "door.forced_and_held_open"),
        ("door contact - alarm", "genea.sequr_door_position_sensor_alarm"),
    ],
    ids=["forced", "held", "forced-and-held", "neither"],
)
def test_classify_door_alarm_without_states_reads_the_message(
    message: str, kind: str
) -> None:
    result = _classify("SEQUR_DOOR_POSITION_SENSOR_ALARM", message=message)
    assert result == (kind, "access", {"decided_from": "event_message"})


@pytest.mark.parametrize(
    ("info", "message", "details"),
    [
        (_states(YES_NO, NO_NO), "", {"resolved": "forced"}),
        (_states(NO_NO, YES_NO), "", {"resolved": "held"}),
        (_states(YES_NO, YES_NO), "", {"resolved": "both"}),
        (_states(NO_NO, NO_NO), "", {"resolved": "unknown"}),
        (
            None,
            "door contact - secured (previously forced open)",
            {"resolved": "forced", "decided_from": "event_message"},
        ),
        (
            None,
            "door contact - secured",
            {"resolved": "unknown", "decided_from": "event_message"},
        ),
    ],
    ids=["forced", "held", "both", "neither", "message-forced", "message-silent"],
)
def test_classify_door_secured_says_what_it_resolved(
    info: dict[str, str] | None, message: str, details: dict[str, str]
) -> None:
    result = _classify("SEQUR_DOOR_POSITION_SENSOR_SECURE", info=info, message=message)
    assert result == ("door.secured", "access", details)


@pytest.mark.parametrize(
    ("code", "kind"),
    [
        ("SEQUR_DOOR_ACCESS_MODE_UNLOCKED", "door.unlocked"),
        ("SEQUR_DOOR_ACCESS_MODE_CARD_ONLY", "door.locked"),
    ],
    ids=["unlocked", "card-only"],
)
@pytest.mark.parametrize("initiator", ["system", "api_key", "user", None])
def test_classify_door_mode_names_its_initiator(
    code: str, kind: str, initiator: str | None
) -> None:
    result = _classify(code, actor_type=initiator)
    assert result == (kind, "access", {"initiator": initiator})


@pytest.mark.parametrize(
    ("message", "phase"),
    [
        ("remote door quick grant", "requested"),
        ("door unlocked by administrator", "granted"),
        ("", "unknown"),
    ],
    ids=["requested", "granted", "no-message"],
)
def test_classify_quick_grant_phase_from_message(message: str, phase: str) -> None:
    result = _classify(
        "SEQUR_HOST_INITIATED_REQUEST_DOOR_USE_NOT_VERIFIED", message=message
    )
    assert result == ("door.momentary_unlock", "access", {"phase": phase})


@pytest.mark.parametrize(
    ("info", "kind"),
    [
        ({"Online Status": "Prior : Offline, Current : Online"}, "device.online"),
        ({"Online Status": "Prior : Online, Current : Offline"}, "device.offline"),
        ({"Online Status": "Prior : Offline, Current : Unknown"}, None),
        ({"description": "Reader 1 online"}, None),
        (None, None),
    ],
    ids=["online", "offline", "unreadable", "no-status", "no-info"],
)
def test_classify_reader_status(info: dict[str, str] | None, kind: str | None) -> None:
    result = _classify("OSDP_READER_ONLINE_STATUS_UPDATE", info=info)
    assert result[:2] == (kind or "genea.osdp_reader_online_status_update", "device")


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("SEQUR_ACCESS_GRANTED", "sequr_access_granted"),
        ("Forced Open State", "forced_open_state"),
        ("  Door--Group  ", "door_group"),
        ("Zoë", "zo"),
        ("x" * 200, "x" * 200),
        ("", ""),
    ],
    ids=["code", "spaces", "punctuation", "non-ascii", "long", "empty"],
)
def test_slug_makes_one_kind_segment(text: str, expected: str) -> None:
    assert slug(text) == expected


def test_open_kind_prefixes_cover_every_family_pattern() -> None:
    open_patterns = [f.pattern for f in FAMILIES if "<" in f.pattern]
    assert all(p.startswith(OPEN_KIND_PREFIXES) for p in open_patterns)
