"""A Genea webhook payload, of any shape or version, turned into one `Event`.

`normalise` never raises on a dict: Genea's payload shape has changed over the
years (a `location` object became a list) and is documented only by samples, so
every field may be missing, null or of another type. What cannot be read is left
empty and the payload stays intact in `Event.raw`.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from datetime import UTC, datetime, tzinfo
from functools import lru_cache
from types import MappingProxyType
from typing import Any
from zoneinfo import ZoneInfo

from genea_automate.events.kinds import Signals, Verdict, classify, slug
from genea_automate.events.model import (
    Actor,
    Card,
    Controller,
    Door,
    Event,
    Hardware,
    Location,
    Resource,
    TimeSource,
)

_EMPTY: Mapping[str, Any] = MappingProxyType({})
_TIME_FIELDS: tuple[TimeSource, ...] = ("event_time", "created_at")
_STATE = re.compile(r"\s*prior\s*:\s*(.*?)\s*,\s*current\s*:\s*(.*?)\s*", re.I)
# Real values are ~30 characters; the pattern backtracks on long runs of spaces.
_STATE_LENGTH = 200
_STATE_SUFFIXES = ("_state", "_status")
_TRUE_WORDS = frozenset({"yes", "true", "on", "online", "active", "open", "1"})
_FALSE_WORDS = frozenset({"no", "false", "off", "offline", "inactive", "closed", "0"})
_MERCURY_MODEL = re.compile(r"(?:LP|EP|MP)\d")
_VERTX_MODELS = ("V1000", "V2000", "VERTX")
_OUIS: Mapping[str, Hardware] = MappingProxyType(
    {"000FE5": "mercury", "00068E": "vertx"}
)
_MAC_SEPARATORS = re.compile(r"[:.\-\s]")
# IANA names are at most ~30 characters; longer ones are never looked up, so a
# hostile payload cannot fill the zone cache with huge keys.
_ZONE_NAME_LENGTH = 64
_MASK = "****"

# Parts are immutable, so a payload without one shares a single empty instance
# (building a frozen dataclass is the slowest step of `normalise`).
_NO_ACTOR = Actor()
_NO_LOCATION = Location()
_NO_DOOR = Door()
_NO_CONTROLLER = Controller()
_NO_CARD = Card()
_NO_RESOURCE = Resource()


def normalise(
    raw: dict[str, Any], *, received_at: datetime, default_timezone: str = "UTC"
) -> Event:
    """The `Event` for one payload; `received_at` is the last-resort time."""
    sent_action = raw.get("event_action")
    action = sent_action if isinstance(sent_action, str) else None
    message = _text(raw.get("event_message"))
    actor = _actor(_mapping(raw.get("actor")))
    resource = _resource(_mapping(raw.get("audit_resource")))
    location = _location(raw.get("location"))
    info = parse_additional_info(raw.get("additional_info"))
    verdict = _classify(raw, action, message, actor, resource, info)

    time, time_source = _event_time(raw, received_at)
    zone, fallback = _zone_for(location.timezone, default_timezone)
    details = {**info, **verdict.details}
    if fallback is not None:
        details["timezone_fallback"] = fallback

    return Event(
        id=_text(raw.get("uuid")) or "",
        kind=verdict.kind,
        action=action or "",
        message=_mask_card_numbers_in(message, raw),
        category=verdict.category,
        time=time,
        local_time=time.astimezone(zone),
        time_source=time_source,
        actor=actor,
        location=location,
        door=_door(_mapping(raw.get("door"))),
        controller=_controller(_mapping(raw.get("controller"))),
        card=_card(_mapping(raw.get("card"))),
        resource=resource,
        details=details,
        raw=raw,
    )


def _classify(
    raw: Mapping[str, Any],
    action: str | None,
    message: str | None,
    actor: Actor,
    resource: Resource,
    info: Mapping[str, Any],
) -> Verdict:
    """The payload's kind, from the parts already read out of it."""
    signals = Signals(
        message=message.lower() if message else "",
        actor_type=actor.type.lower() if actor.type else None,
        info=info,
    )
    return classify(
        action, audit=_is_audit(raw), resource_type=resource.type, signals=signals
    )


def parse_additional_info(value: object) -> dict[str, Any]:
    """`additional_info` with snake_case keys and `Prior/Current` values parsed.

    `{"Forced Open State": "Prior : No, Current : Yes"}` becomes
    `{"forced_open": {"prior": False, "current": True}}`; other entries keep
    their value under the snake_case key.
    """
    if not isinstance(value, dict):
        return {}
    parsed: dict[str, Any] = {}
    for key, entry in value.items():
        name = slug(key) if isinstance(key, str) else ""
        if not name:
            continue
        state = _state(entry)
        if state is None:
            parsed[name] = entry
        else:
            parsed[_state_name(name)] = state
    return parsed


def mask_card_number(number: str | None) -> str | None:
    """Only the last four characters stay readable; short numbers not at all."""
    if number is None:
        return None
    if len(number) <= len(_MASK):
        return _MASK
    return _MASK + number[-4:]


def detect_hardware(model: str | None, mac: str | None) -> Hardware:
    """Mercury or VertX, from the controller model, else from the MAC's OUI."""
    if model:
        upper = model.strip().upper()
        if _MERCURY_MODEL.match(upper):
            return "mercury"
        if upper.startswith(_VERTX_MODELS):
            return "vertx"
    if mac:
        return _OUIS.get(_MAC_SEPARATORS.sub("", mac)[:6].upper(), "unknown")
    return "unknown"


def _state(value: object) -> dict[str, bool | None] | None:
    """`"Prior : Yes, Current : No"` as prior/current booleans, else None."""
    if not isinstance(value, str) or len(value) > _STATE_LENGTH:
        return None
    match = _STATE.fullmatch(value)
    if match is None:
        return None
    return {"prior": _flag(match[1]), "current": _flag(match[2])}


def _flag(word: str) -> bool | None:
    lowered = word.lower()
    if lowered in _TRUE_WORDS:
        return True
    if lowered in _FALSE_WORDS:
        return False
    return None


def _state_name(name: str) -> str:
    """`forced_open_state` -> `forced_open`, `online_status` -> `online`."""
    for suffix in _STATE_SUFFIXES:
        if name.endswith(suffix) and len(name) > len(suffix):
            return name[: -len(suffix)]
    return name


def _is_audit(raw: Mapping[str, Any]) -> bool:
    """AUDIT by `event_type`; without one, an `audit_resource` says so."""
    event_type = raw.get("event_type")
    if isinstance(event_type, str):
        return event_type.upper() == "AUDIT"
    return event_type is None and isinstance(raw.get("audit_resource"), dict)


def _event_time(
    raw: Mapping[str, Any], received_at: datetime
) -> tuple[datetime, TimeSource]:
    """Genea's event time, else its storage time, else when we received it."""
    for name in _TIME_FIELDS:
        parsed = parse_time(raw.get(name))
        if parsed is not None:
            return parsed, name
    return _utc(received_at), "received_at"


def parse_time(value: object) -> datetime | None:
    """An ISO-8601 text as an aware UTC datetime; naive means UTC."""
    if not isinstance(value, str):
        return None
    try:
        parsed = datetime.fromisoformat(value)
    except ValueError:
        return None
    # The first and last years cannot be moved to every zone without overflow.
    if not 1 < parsed.year < 9999:
        return None
    return _utc(parsed)


def _utc(moment: datetime) -> datetime:
    if moment.tzinfo is None:
        return moment.replace(tzinfo=UTC)
    return moment.astimezone(UTC)


def _zone_for(
    zone_name: str | None, default_zone: str
) -> tuple[tzinfo, dict[str, str | None] | None]:
    """The location's zone, or the default and a note saying it stood in."""
    zone = _zone(zone_name)
    if zone is not None:
        return zone, None
    fallback = _zone(default_zone)
    if fallback is None:
        return UTC, {"given": zone_name, "used": "UTC"}
    return fallback, {"given": zone_name, "used": default_zone}


def _zone(name: str | None) -> tzinfo | None:
    """A zone by IANA name, or None."""
    if not name or len(name) > _ZONE_NAME_LENGTH:
        return None
    return _cached_zone(name)


@lru_cache(maxsize=256)
def _cached_zone(name: str) -> tzinfo | None:
    """A zone by IANA name; None when the name is not one (cached either way)."""
    try:
        return ZoneInfo(name)
    except (KeyError, ValueError, OSError):
        # ZoneInfoNotFoundError is a KeyError; odd names raise the other two.
        return None


def _mapping(value: object) -> Mapping[str, Any]:
    return value if isinstance(value, dict) else _EMPTY


def _location_mapping(value: object) -> Mapping[str, Any]:
    """The location object; newer payloads wrap it in a one-element list."""
    if isinstance(value, list):
        return _mapping(value[0]) if value else _EMPTY
    return _mapping(value)


def _text(value: object) -> str | None:
    """A string field; numbers (an audit uuid, a card number) become text."""
    # Exact type checks first: this runs ~30 times per payload.
    if type(value) is str or value is None:
        return value
    if isinstance(value, str):
        return str(value)
    if isinstance(value, int | float) and not isinstance(value, bool):
        try:
            return str(value)
        except ValueError:  # an int past Python's digit limit for str()
            return None
    return None


def _actor(actor: Mapping[str, Any]) -> Actor:
    if not actor:
        return _NO_ACTOR
    return Actor(
        type=_text(actor.get("type")),
        uuid=_text(actor.get("user_uuid")),
        name=_text(actor.get("user_name")),
        email=_text(actor.get("user_email")),
        role=_text(actor.get("user_location_role")),
        user_location_uuid=_text(actor.get("user_location_uuid")),
    )


def _location(value: object) -> Location:
    location = _location_mapping(value)
    if not location:
        return _NO_LOCATION
    return Location(
        uuid=_text(location.get("uuid")),
        name=_text(location.get("name")),
        timezone=_text(location.get("timezone")),
        city=_text(location.get("city")),
        state=_text(location.get("state")),
    )


def _door(door: Mapping[str, Any]) -> Door:
    if not door:
        return _NO_DOOR
    return Door(
        uuid=_text(door.get("uuid")),
        name=_text(door.get("name")),
        status=_text(door.get("door_status")),
        model=_text(door.get("model")),
    )


def _controller(controller: Mapping[str, Any]) -> Controller:
    if not controller:
        return _NO_CONTROLLER
    model = _text(controller.get("model"))
    mac = _text(controller.get("mac"))
    name = _text(controller.get("name"))
    return Controller(
        uuid=_text(controller.get("uuid")),
        name=name,
        mac=mac,
        model=model,
        serial_number=_text(controller.get("serial_number")),
        # Genea names a controller after its MAC by default, so the name stands
        # in when the mac field is missing.
        hardware=detect_hardware(model, mac or name),
    )


def _card(card: Mapping[str, Any]) -> Card:
    if not card:
        return _NO_CARD
    return Card(
        uuid=_text(card.get("uuid")),
        type=_text(card.get("type")),
        status=_text(card.get("status")),
        number=mask_card_number(_text(card.get("card_number"))),
        badge_type=_badge_type(card.get("badge_type")),
    )


def _mask_card_numbers_in(message: str | None, raw: Mapping[str, Any]) -> str | None:
    """Genea's message may quote the card ("Updated Card 61337290 for ...")."""
    if not message:
        return message
    numbers = [_text(_mapping(raw.get("card")).get("card_number"))]
    resource = _mapping(raw.get("audit_resource"))
    if (_text(resource.get("type")) or "").upper() == "CARD":
        numbers.append(_text(resource.get("name")))
    for number in numbers:
        if number and len(number) > 4 and number in message:
            message = message.replace(number, mask_card_number(number) or "")
    return message


def _badge_type(value: object) -> str | None:
    """The badge type's name; a plain string is taken as the name."""
    if isinstance(value, dict):
        return _text(value.get("name"))
    return _text(value)


def _resource(resource: Mapping[str, Any]) -> Resource:
    """The audited resource; a card's name is its number, so it is masked."""
    if not resource:
        return _NO_RESOURCE
    type_ = _text(resource.get("type"))
    name = _text(resource.get("name"))
    if type_ is not None and type_.upper() == "CARD":
        name = mask_card_number(name)
    return Resource(uuid=_text(resource.get("uuid")), name=name, type=type_)
