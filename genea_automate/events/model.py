"""The Event every rule sees, the same shape for every kind."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from types import MappingProxyType
from typing import Any, Literal

Category = Literal["access", "audit", "device"]
TimeSource = Literal["event_time", "created_at", "received_at"]
Hardware = Literal["mercury", "vertx", "unknown"]


@dataclass(frozen=True, slots=True)
class Actor:
    type: str | None = None
    uuid: str | None = None
    name: str | None = None
    email: str | None = None
    role: str | None = None
    user_location_uuid: str | None = None


@dataclass(frozen=True, slots=True)
class Location:
    uuid: str | None = None
    name: str | None = None
    timezone: str | None = None
    city: str | None = None
    state: str | None = None


@dataclass(frozen=True, slots=True)
class Door:
    uuid: str | None = None
    name: str | None = None
    status: str | None = None
    model: str | None = None


@dataclass(frozen=True, slots=True)
class Controller:
    uuid: str | None = None
    name: str | None = None
    mac: str | None = None
    model: str | None = None
    serial_number: str | None = None
    hardware: Hardware = "unknown"


@dataclass(frozen=True, slots=True)
class Card:
    """A credential; `number` is masked to its last four digits."""

    uuid: str | None = None
    type: str | None = None
    status: str | None = None
    number: str | None = None
    badge_type: str | None = None


@dataclass(frozen=True, slots=True)
class Resource:
    """What an audit event is about (a card, a user, a door...)."""

    uuid: str | None = None
    name: str | None = None
    type: str | None = None


@dataclass(frozen=True, slots=True)
class Event:
    """One Genea payload, normalised; `raw` is the payload as sent."""

    id: str
    kind: str
    action: str
    message: str | None
    category: Category
    time: datetime
    local_time: datetime
    time_source: TimeSource
    actor: Actor = field(default_factory=Actor)
    location: Location = field(default_factory=Location)
    door: Door = field(default_factory=Door)
    controller: Controller = field(default_factory=Controller)
    card: Card = field(default_factory=Card)
    resource: Resource = field(default_factory=Resource)
    details: dict[str, Any] = field(default_factory=dict)
    raw: dict[str, Any] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        """Plain values for templates, traces and `match` paths.

        `raw` is shared, not copied (a deep copy of every payload is the slowest
        part of `dataclasses.asdict`), so treat it as read-only.
        """
        data = _shallow(self)
        for name in _PART_NAMES:
            data[name] = _shallow(data[name])
        data["details"] = dict(self.details)
        data["time"] = _iso(self.time).replace("+00:00", "Z")
        data["local_time"] = _iso(self.local_time)
        return data

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Event:
        """The event again from `to_dict()`, e.g. after a JSON round trip.

        `local_time` keeps its UTC offset but not the name of its zone.
        """
        parts = {name: kind(**data[name]) for name, kind in _PART_TYPES.items()}
        times = {name: datetime.fromisoformat(data[name]) for name in _TIME_NAMES}
        return cls(**{**data, **parts, **times})


_PART_TYPES: dict[str, Any] = {
    "actor": Actor,
    "location": Location,
    "door": Door,
    "controller": Controller,
    "card": Card,
    "resource": Resource,
}
_PART_NAMES = tuple(_PART_TYPES)
_TIME_NAMES = ("time", "local_time")


def _iso(moment: datetime) -> str:
    """To the second, or to the millisecond as Genea sends fractions; finer
    only for a time that has it, so that nothing is lost."""
    if moment.microsecond % 1000:
        return moment.isoformat()
    return moment.isoformat(
        timespec="milliseconds" if moment.microsecond else "seconds"
    )


def _shallow(obj: Any) -> dict[str, Any]:
    """A dataclass's fields as a dict, without `asdict`'s deep copy."""
    return {name: getattr(obj, name) for name in obj.__dataclass_fields__}


def _part_fields(name: str) -> tuple[str, ...]:
    """The fields of the part `name`; none for a value or a free-form mapping."""
    part = _PART_TYPES.get(name)
    return tuple(part.__dataclass_fields__) if part is not None else ()


EVENT_FIELDS: Mapping[str, tuple[str, ...]] = MappingProxyType(
    {name: _part_fields(name) for name in Event.__dataclass_fields__}
)
"""Each field of `to_dict()`, with the fields of its part (`door`: uuid, name...).

A single value and a free-form mapping (`details`, `raw`) list none. `match`
paths and templates are checked against it.
"""
