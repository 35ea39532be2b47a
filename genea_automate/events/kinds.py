"""Every Genea `event_action` the daemon knows, and the dotted kind it becomes.

`TABLE` is the one source of truth: `normalise` classifies with it (through the
`CODES` index), `docs` renders it, and the rules module checks `when` patterns
against `KNOWN_KINDS`. The facts come from GENEA-EVENTS.md section 5; most codes
are seen only in third-party code, so a code missing here still gets a kind by
the rules in `FAMILIES`.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from functools import lru_cache
from types import MappingProxyType
from typing import Any, NamedTuple

from genea_automate.events.model import Category

Details = dict[str, Any]
Decide = Callable[["Signals"], tuple[str, Details]]

DENIED_PREFIX = "SEQUR_ACCESS_DENIED_"
GRANTED_PREFIX = "SEQUR_ACCESS_GRANTED_"
UNKNOWN_KIND = "genea.unknown"
NOT_UNDERSTOOD = "event_action is missing or not a string"
FROM_MESSAGE = "event_message"

_NON_WORD = re.compile(r"[^a-z0-9]+")
_CACHED_SLUG_LENGTH = 80


class Signals(NamedTuple):
    """The parts of a payload a kind may depend on, already cleaned up.

    `message` and `actor_type` are lower-cased (empty or None when missing);
    `info` is `additional_info` as `normalise` parses it.
    """

    message: str = ""
    actor_type: str | None = None
    info: Mapping[str, Any] = MappingProxyType({})


@dataclass(frozen=True, slots=True)
class KindOutcome:
    """One kind a code can become, and when."""

    kind: str
    meaning: str
    when: str = "always"
    example: Mapping[str, Any] = field(default_factory=dict)
    """Payload fields, beyond the code and its message, that lead to this kind."""


@dataclass(frozen=True, slots=True)
class CodeSpec:
    """One known `event_action` code and how its kind is decided."""

    code: str
    category: Category
    message: str | None
    """The `event_message` Genea sends with it, where one is known."""
    outcomes: tuple[KindOutcome, ...]
    details: Mapping[str, Any] = field(default_factory=dict)
    """Fixed details for codes without `decide`."""
    decide: Decide | None = field(default=None, compare=False)
    """Picks one of `outcomes` when the code alone does not settle the kind."""


@dataclass(frozen=True, slots=True)
class KindFamily:
    """A rule that gives a kind to codes the table does not list."""

    pattern: str
    codes: str
    meaning: str
    category: str
    example: Mapping[str, Any]
    """Payload fields that fall into this family."""


class Verdict(NamedTuple):
    """The outcome of classifying one payload."""

    kind: str
    category: Category
    details: Details


def slug(text: str) -> str:
    """One segment of a kind: lower case, runs of other characters as `_`."""
    # Only short texts are cached: every payload repeats a few codes and keys,
    # while a long one would pin its memory in the cache.
    if len(text) > _CACHED_SLUG_LENGTH:
        return _slug(text)
    return _cached_slug(text)


def _slug(text: str) -> str:
    return _NON_WORD.sub("_", text.lower()).strip("_")


_cached_slug = lru_cache(maxsize=1024)(_slug)


def _current(info: Mapping[str, Any], name: str) -> bool | None:
    """The `current` side of a parsed `... State` entry, if there is one."""
    state = info.get(name)
    return state.get("current") if isinstance(state, dict) else None


def _cleared(info: Mapping[str, Any], name: str) -> bool | None:
    """Whether a state went from Yes to No; None when the entry is absent."""
    state = info.get(name)
    if not isinstance(state, dict):
        return None
    return state.get("prior") is True and state.get("current") is False


def _message_flags(message: str) -> tuple[bool, bool]:
    """(forced, held) as named by a door-contact message."""
    return "forced" in message, "held" in message


_ALARM_KINDS = {
    (True, False): "door.forced_open",
    (False, True): "door.held_open",
    (True, True): "door.forced_and_held_open",
    (False, False): "genea.sequr_door_position_sensor_alarm",
}
_RESOLVED = {
    (True, False): "forced",
    (False, True): "held",
    (True, True): "both",
    (False, False): "unknown",
}


def _door_alarm(signals: Signals) -> tuple[str, Details]:
    """Forced, held or both from the states; from the message if neither is sent."""
    forced = _current(signals.info, "forced_open")
    held = _current(signals.info, "held_open")
    if forced is None and held is None:
        flags = _message_flags(signals.message)
        return _ALARM_KINDS[flags], {"decided_from": FROM_MESSAGE}
    return _ALARM_KINDS[(forced is True, held is True)], {}


def _door_secured(signals: Signals) -> tuple[str, Details]:
    """Which alarm the closing door cleared, in `details.resolved`."""
    forced = _cleared(signals.info, "forced_open")
    held = _cleared(signals.info, "held_open")
    if forced is None and held is None:
        resolved = _RESOLVED[_message_flags(signals.message)]
        return "door.secured", {"resolved": resolved, "decided_from": FROM_MESSAGE}
    return "door.secured", {"resolved": _RESOLVED[(forced is True, held is True)]}


def _momentary_unlock(signals: Signals) -> tuple[str, Details]:
    """A quick grant is reported twice: the request, then the unlock."""
    if "quick grant" in signals.message:
        phase = "requested"
    elif "unlocked by administrator" in signals.message:
        phase = "granted"
    else:
        phase = "unknown"
    return "door.momentary_unlock", {"phase": phase}


def _reader_status(signals: Signals) -> tuple[str, Details]:
    """Online or offline from the `Online Status` entry, else left generic."""
    online = _current(signals.info, "online")
    if online is None:
        return "genea.osdp_reader_online_status_update", {}
    return ("device.online" if online else "device.offline"), {}


def _initiated(kind: str) -> Decide:
    """A door-mode change; SYSTEM means a schedule, API_KEY a remote command."""

    def decide(signals: Signals) -> tuple[str, Details]:
        return kind, {"initiator": signals.actor_type}

    return decide


def _granted(code: str, meaning: str, *, already_unlocked: bool) -> CodeSpec:
    """A granted code; both become `access.granted`."""
    return CodeSpec(
        code=code,
        category="access",
        message="Access Granted",
        outcomes=(KindOutcome("access.granted", meaning),),
        details=MappingProxyType({"door_already_unlocked": already_unlocked}),
    )


def _denied(reason_code: str, reason: str, message: str, meaning: str) -> CodeSpec:
    """A denied code; the kind is `access.denied.<reason>`."""
    return CodeSpec(
        code=DENIED_PREFIX + reason_code,
        category="access",
        message=message,
        outcomes=(KindOutcome(f"access.denied.{reason}", meaning),),
        details=MappingProxyType({"reason": reason}),
    )


def _states(forced: str, held: str) -> Mapping[str, Any]:
    """An `additional_info` excerpt with both door-contact states."""
    return {"additional_info": {"Forced Open State": forced, "Held Open State": held}}


# How the alarm kinds read when `additional_info` carries neither state.
_BY_MESSAGE = (
    "without either state (`details.decided_from` is then `event_message`): "
    "the message says"
)
_NO_YES = "Prior : No, Current : Yes"
_NO_NO = "Prior : No, Current : No"
_YES_NO = "Prior : Yes, Current : No"
_YES_YES = "Prior : Yes, Current : Yes"

_ACCESS_CODES = (
    _granted(
        "SEQUR_ACCESS_GRANTED",
        "A valid credential was presented and the door released.",
        already_unlocked=False,
    ),
    _granted(
        "SEQUR_ACCESS_GRANTED_ACCESS_POINT_UNLOCKED",
        "Granted while the door was already unlocked (inferred from the code).",
        already_unlocked=True,
    ),
    _denied(
        "ACCESS_POINT_LOCKED",
        "door_locked",
        "Access Denied - Door Is Locked",
        "The door is in locked or lockdown mode.",
    ),
    _denied(
        "AFTER_EXPIRATION_DATE",
        "expired",
        "Access Denied - Expired",
        "The credential is past its end date.",
    ),
    _denied(
        "AIRLOCK",
        "airlock_busy",
        "Access Denied - Airlock Is Busy",
        "An interlocked partner door is open.",
    ),
    _denied(
        "ANTI_PASSBACK_VIOLATION",
        "anti_passback",
        "Access Denied - Anti-Passback Violation",
        "The anti-passback rule refused a second entry.",
    ),
    _denied(
        "AREA_NOT_ENABLED",
        "area_not_enabled",
        "Access Denied - Area Not Enabled",
        "The area behind the door is disabled.",
    ),
    _denied(
        "BEFORE_ACTIVATION_DATE",
        "not_yet_active",
        "Access Denied - Not Active",
        "The credential is not valid yet.",
    ),
    _denied(
        "CARD_NOT_FOUND",
        "card_not_found",
        "Access Denied - Card/PIN Not Found",
        "Unknown card or PIN.",
    ),
    _denied(
        "COUNT_EXCEEDED",
        "count_exceeded",
        "Access Denied - Count Exceeded",
        "The credential's use count is exhausted.",
    ),
    _denied(
        "DEACTIVATED_CARD",
        "card_deactivated",
        "Access Denied - Card Access Revoked/ De-activated Card",
        "The credential was revoked.",
    ),
    _denied(
        "DURESS_code_DETECTED",
        "duress",
        "Access Denied - Duress code Detected",
        "A duress PIN was entered; rules may treat it as an alarm.",
    ),
    _denied(
        "ELEVATOR_FLOOR",
        "elevator_floor_not_served",
        "Access Denied - Elevators Floor Not In Floors Served",
        "The elevator does not serve the requested floor.",
    ),
    _denied(
        "ELEVATOR_FLOOR_UNAUTHORIZED",
        "elevator_floor_unauthorized",
        "Access Denied - Elevators Floor Request Not Authorized",
        "The credential may not go to the requested floor.",
    ),
    _denied(
        "ELEVATOR_TIMEOUT",
        "elevator_timeout",
        "Access Denied - Elevators Timeout",
        "No floor was chosen in time.",
    ),
    _denied(
        "ELEVATOR_UNKNOWN_ERROR",
        "elevator_error",
        "Access Denied - Elevators Unknown Error",
        "The elevator controller reported an error.",
    ),
    _denied(
        "HOST_APPROVAL_DENIED",
        "host_approval_denied",
        "Access Denied - Host Approval Denied",
        "The host refused the request.",
    ),
    _denied(
        "HOST_APPROVAL_TIMEOUT",
        "host_approval_timeout",
        "Access Denied - Host Approval Timed Out",
        "The host did not answer in time.",
    ),
    _denied(
        "INCOMPLETE_CARD_PIN_SEQ",
        "incomplete_card_pin",
        "Access Denied - Incomplete CARD & PIN Sequence",
        "Card-and-PIN mode: the PIN did not follow the card.",
    ),
    _denied(
        "INVALID_FACILITY_code",
        "invalid_facility_code",
        "Access Denied - Invalid Facility code",
        "The card's facility code is wrong for this site.",
    ),
    _denied(
        "INVALID_FORMAT",
        "invalid_card_format",
        "Access Denied - Card Format Not Matched",
        "The card's format is not one the reader accepts.",
    ),
    _denied(
        "INVALID_ISSUE_code",
        "invalid_issue_code",
        "Access Denied - Invalid Issue Code",
        "The card's issue code does not match.",
    ),
    _denied(
        "INVALID_PIN",
        "invalid_pin",
        "Access Denied - Invalid PIN",
        "The PIN was wrong.",
    ),
    _denied(
        "INVALID_TIME",
        "not_in_schedule",
        "Access Denied - Out Of Schedule",
        "Outside the credential's access schedule.",
    ),
    _denied(
        "NO_DOOR_ACCESS",
        "no_door_access",
        "Access Denied - No Door Access",
        "The credential has no permission for this door.",
    ),
    _denied(
        "NO_ESCORT_CARD",
        "no_escort",
        "Access Denied - No Escort Card Presented",
        "The escort rule wants an escort's card.",
    ),
    _denied(
        "NO_SECOND_CARD",
        "no_second_card",
        "Access Denied - No Second Card Presented",
        "The two-person rule wants a second card.",
    ),
    _denied(
        "OCCUPANCY_LIMIT_REACHED",
        "occupancy_limit",
        "Access Denied - Occupancy Limit Reached",
        "The area is full.",
    ),
    _denied(
        "UNAUTHORIZED_ASSETS",
        "unauthorized_assets",
        "Access Denied - Unauthorized Assets",
        "An asset rule refused entry.",
    ),
    _denied(
        "USE_LIMIT",
        "use_limit",
        "Access Denied - Use limit",
        "The credential's use limit is reached.",
    ),
)

_DOOR_CODES = (
    CodeSpec(
        code="SEQUR_DOOR_POSITION_SENSOR_ALARM",
        category="access",
        message=None,
        outcomes=(
            KindOutcome(
                "door.forced_open",
                "The door opened without a grant.",
                "`Forced Open State` is current Yes, `Held Open State` is not; "
                f"{_BY_MESSAGE} `forced` and not `held`",
                {
                    "event_message": "Door Contact - Forced Open",
                    **_states(_NO_YES, _NO_NO),
                },
            ),
            KindOutcome(
                "door.held_open",
                "The door stayed open past its allowed time.",
                "`Held Open State` is current Yes, `Forced Open State` is not; "
                f"{_BY_MESSAGE} `held` and not `forced`",
                {
                    "event_message": "Door Contact - Held Open is Enabled",
                    **_states(_NO_NO, _NO_YES),
                },
            ),
            KindOutcome(
                "door.forced_and_held_open",
                "The door was forced and is still held open.",
                f"both states are current Yes; {_BY_MESSAGE} `forced` and `held`",
                {
                    "event_message": "Door Contact - Forced and Held Open",
                    **_states(_YES_YES, _NO_YES),
                },
            ),
            KindOutcome(
                "genea.sequr_door_position_sensor_alarm",
                "A door-contact alarm that names neither state.",
                f"neither state is current Yes; {_BY_MESSAGE} neither word",
                _states(_NO_NO, _NO_NO),
            ),
        ),
        decide=_door_alarm,
    ),
    CodeSpec(
        code="SEQUR_DOOR_POSITION_SENSOR_SECURE",
        category="access",
        message="Door Contact - Secured (Previously Forced Open)",
        outcomes=(
            KindOutcome(
                "door.secured",
                "The door closed after an alarm; `details.resolved` says which: "
                "forced, held, both or unknown.",
                "always; `resolved` from the states that went from Yes to No, or "
                "from the words `forced` and `held` in the message when neither "
                "state is sent (`details.decided_from` is then `event_message`)",
                _states(_YES_NO, _NO_NO),
            ),
        ),
        decide=_door_secured,
    ),
    CodeSpec(
        code="SEQUR_DOOR_ACCESS_MODE_UNLOCKED",
        category="access",
        message="Door Access Mode - Unlocked",
        outcomes=(
            KindOutcome(
                "door.unlocked",
                "The door was unlocked until further notice; `details.initiator` is "
                "`system` (schedule) or `api_key` (remote command).",
                example={"actor": {"type": "API_KEY"}},
            ),
        ),
        decide=_initiated("door.unlocked"),
    ),
    CodeSpec(
        code="SEQUR_DOOR_ACCESS_MODE_CARD_ONLY",
        category="access",
        message="Door Access Mode - Card Only",
        outcomes=(
            KindOutcome(
                "door.locked",
                "The door went back to card-only (its normal locked mode); "
                "`details.initiator` as for `door.unlocked`.",
                example={"actor": {"type": "SYSTEM"}},
            ),
        ),
        decide=_initiated("door.locked"),
    ),
    CodeSpec(
        code="SEQUR_HOST_INITIATED_REQUEST_DOOR_USE_NOT_VERIFIED",
        category="access",
        message="Remote Door Quick Grant",
        outcomes=(
            KindOutcome(
                "door.momentary_unlock",
                "A quick grant (a 5-7 s remote unlock). One grant may send two "
                "events: `details.phase` is `requested` or `granted`.",
                "always; `phase` from the message: `quick grant` or "
                "`unlocked by administrator`",
            ),
        ),
        decide=_momentary_unlock,
    ),
)

_DEVICE_CODES = (
    CodeSpec(
        code="OSDP_READER_ONLINE_STATUS_UPDATE",
        category="device",
        message="OSDP Reader Online",
        outcomes=(
            KindOutcome(
                "device.online",
                "An OSDP reader came online.",
                "`Online Status` is current Online",
                {
                    "additional_info": {
                        "Online Status": "Prior : Offline, Current : Online"
                    }
                },
            ),
            KindOutcome(
                "device.offline",
                "An OSDP reader went offline.",
                "`Online Status` is current Offline",
                {
                    "event_message": "OSDP Reader Offline",
                    "additional_info": {
                        "Online Status": "Prior : Online, Current : Offline"
                    },
                },
            ),
            KindOutcome(
                "genea.osdp_reader_online_status_update",
                "A reader status update that does not say online or offline.",
                "no readable `Online Status`",
            ),
        ),
        decide=_reader_status,
    ),
)

TABLE: tuple[CodeSpec, ...] = _ACCESS_CODES + _DOOR_CODES + _DEVICE_CODES
CODES: Mapping[str, CodeSpec] = MappingProxyType(
    {spec.code.upper(): spec for spec in TABLE}
)

FAMILIES: tuple[KindFamily, ...] = (
    KindFamily(
        "access.denied.<reason>",
        f"any other `{DENIED_PREFIX}<REASON>`",
        "A denial whose reason the table does not list yet; `<reason>` is the "
        "code's suffix in lower case.",
        "access",
        {
            "event_action": DENIED_PREFIX + "PHYSICAL_INSPECTION",
            "event_message": "Access Denied - Physical Inspection Required",
        },
    ),
    KindFamily(
        "access.granted",
        f"any other `{GRANTED_PREFIX}<ANYTHING>`",
        "A grant variant the table does not list yet.",
        "access",
        {"event_action": GRANTED_PREFIX + "ELEVATOR_FLOOR"},
    ),
    KindFamily(
        "audit.<action>.<resource>",
        "any `event_action` when `event_type` is `AUDIT` (`CREATED`, `UPDATED`, "
        "`DELETED`, ...)",
        "A change made in the Genea portal; `<resource>` is `audit_resource.type` "
        "in lower case, `unknown` when missing.",
        "audit",
        {
            "event_type": "AUDIT",
            "event_action": "CREATED",
            "event_message": "Created Card 1111 for Jordan Example",
            "audit_resource": {"name": "1111", "type": "CARD"},
        },
    ),
    KindFamily(
        "genea.<event_action>",
        "anything else",
        "A code not known yet, kept rather than dropped; the raw payload is intact.",
        "access",
        {"event_action": "SEQUR_ELEVATOR_CAB_OVERRIDE_STARTED"},
    ),
    KindFamily(
        UNKNOWN_KIND,
        "`event_action` missing or not a string",
        "A payload that was not understood; `details.not_understood` says why.",
        "access (audit when `event_type` is `AUDIT`)",
        {"event_action": None, "event_message": "Something happened"},
    ),
)

KNOWN_KINDS: tuple[str, ...] = tuple(
    sorted(
        {outcome.kind for spec in TABLE for outcome in spec.outcomes} | {UNKNOWN_KIND}
    )
)
OPEN_KIND_PREFIXES: tuple[str, ...] = ("access.denied.", "audit.", "genea.")
"""Families whose kinds cannot all be listed; a pattern under them is not a typo."""


def example_payload(spec: CodeSpec, outcome: KindOutcome) -> dict[str, Any]:
    """A payload excerpt that gives `outcome.kind`, for the docs and tests."""
    payload: dict[str, Any] = {"event_type": "ACCESS", "event_action": spec.code}
    if spec.message is not None:
        payload["event_message"] = spec.message
    payload.update(outcome.example)
    return payload


def classify(
    action: str | None,
    *,
    audit: bool,
    resource_type: str | None,
    signals: Signals,
) -> Verdict:
    """The kind, category and derived details of one payload."""
    code = slug(action) if action is not None else ""
    if action is None or not code:
        category: Category = "audit" if audit else "access"
        return Verdict(UNKNOWN_KIND, category, {"not_understood": NOT_UNDERSTOOD})
    if audit:
        resource = slug(resource_type or "") or "unknown"
        return Verdict(f"audit.{code}.{resource}", "audit", {})
    upper = action.strip().upper()
    spec = CODES.get(upper)
    if spec is not None:
        return _decide(spec, signals)
    return _fallback(upper, code)


def _decide(spec: CodeSpec, signals: Signals) -> Verdict:
    """A known code: its fixed kind, or what its decider picks."""
    if spec.decide is None:
        return Verdict(spec.outcomes[0].kind, spec.category, dict(spec.details))
    kind, details = spec.decide(signals)
    return Verdict(kind, spec.category, details)


def _fallback(upper: str, code: str) -> Verdict:
    """An unknown, non-audit code, by the rules in `FAMILIES`."""
    if upper.startswith(DENIED_PREFIX):
        reason = slug(upper[len(DENIED_PREFIX) :])
        if reason:
            return Verdict(f"access.denied.{reason}", "access", {"reason": reason})
    if upper.startswith(GRANTED_PREFIX):
        return Verdict("access.granted", "access", {})
    return Verdict(f"genea.{code}", "access", {})
