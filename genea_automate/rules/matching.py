"""Kind patterns (`access.denied`, `door.*`) and the `when` filters of a rule."""

from __future__ import annotations

import re
from dataclasses import dataclass
from functools import lru_cache

from genea_automate.events.kinds import OPEN_KIND_PREFIXES
from genea_automate.events.model import Event

# A member of each family whose kinds cannot all be listed in advance.
_OPEN_FAMILY_SAMPLES = tuple(f"{prefix}x.y" for prefix in OPEN_KIND_PREFIXES)


@dataclass(frozen=True, slots=True)
class KindPattern:
    """An exact kind, a prefix of whole segments, or a `*` wildcard per segment.

    `access.denied` takes `access.denied` and every `access.denied.<reason>`;
    `door.*` takes every kind below `door`; `*.online` takes `device.online`.
    """

    text: str
    regex: re.Pattern[str]

    @classmethod
    def parse(cls, text: str) -> KindPattern:
        return _parse(text.strip().lower())

    def matches(self, kind: str) -> bool:
        return self.regex.match(kind) is not None


@lru_cache(maxsize=1024)
def _parse(text: str) -> KindPattern:
    if text in ("*", "**"):
        return KindPattern(text, re.compile(r".*"))
    parts = text.removesuffix(".*").split(".")
    body = r"\.".join(
        r"[^.]+" if part == "*" else re.escape(part).replace(r"\*", r"[^.]*")
        for part in parts
    )
    suffix = r"(\..+)" if text.endswith(".*") else r"(\..+)?"
    return KindPattern(text, re.compile(f"^{body}{suffix}$"))


def matches_any(patterns: tuple[KindPattern, ...], kind: str) -> bool:
    return any(pattern.matches(kind) for pattern in patterns)


def pattern_can_match(pattern: KindPattern, known_kinds: list[str]) -> bool:
    """False for a pattern no known kind matches, such as the typo `door.forced`."""
    if any(pattern.matches(kind) for kind in known_kinds):
        return True
    if any(pattern.matches(sample) for sample in _OPEN_FAMILY_SAMPLES):
        return True
    return any(pattern.text.startswith(prefix) for prefix in OPEN_KIND_PREFIXES)


@dataclass(frozen=True, slots=True)
class EventFilter:
    """The `when` of an event rule: kind patterns plus name-or-uuid filters."""

    kinds: tuple[KindPattern, ...]
    locations: frozenset[str] | None = None
    doors: frozenset[str] | None = None
    actors: frozenset[str] | None = None
    card_types: frozenset[str] | None = None

    def why_not(self, event: Event) -> str | None:
        """None when the event passes; otherwise the first reason it does not."""
        if not matches_any(self.kinds, event.kind):
            return f"kind {event.kind} is not {_listed(self.kinds)}"
        checks = (
            ("location", self.locations, (event.location.name, event.location.uuid)),
            ("door", self.doors, (event.door.name, event.door.uuid)),
            (
                "actor",
                self.actors,
                (event.actor.name, event.actor.uuid, event.actor.email),
            ),
            ("card type", self.card_types, (event.card.type,)),
        )
        for label, wanted, values in checks:
            if wanted is not None and not _any_in(values, wanted):
                return _mismatch(label, values, wanted)
        return None


def _mismatch(
    label: str, values: tuple[str | None, ...], wanted: frozenset[str]
) -> str:
    """Why a `when` filter said no, in words: older payloads often have no door."""
    shown = next((value for value in values if value), None)
    if shown is None:
        return f"the event has no {label}"
    return f"{label} {shown!r} is not one of {sorted(wanted)}"


def _any_in(values: tuple[str | None, ...], wanted: frozenset[str]) -> bool:
    return any(value is not None and value.casefold() in wanted for value in values)


def _listed(patterns: tuple[KindPattern, ...]) -> str:
    return " or ".join(pattern.text for pattern in patterns)


def make_filter(
    kinds: list[str],
    locations: list[str] | None,
    doors: list[str] | None,
    actors: list[str] | None,
    card_types: list[str] | None,
) -> EventFilter:
    def folded(values: list[str] | None) -> frozenset[str] | None:
        return None if values is None else frozenset(v.casefold() for v in values)

    return EventFilter(
        tuple(KindPattern.parse(kind) for kind in kinds),
        folded(locations),
        folded(doors),
        folded(actors),
        folded(card_types),
    )
