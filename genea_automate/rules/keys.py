"""The keys that group events: per door, user, location, card, or all together.

`first_arrival`, `count`, `cooldown` and `wait_for` keep their state per key. A
key prefers the uuid, which survives a rename, and falls back on the name.
"""

from __future__ import annotations

from genea_automate.events.model import Event

ALL = "*"


def scope_key(scope: str, event: Event) -> str | None:
    """The event's identity in `scope`; None when the event names none."""
    location = event.location.uuid or event.location.name
    user = event.actor.uuid or event.actor.email
    if scope == "location":
        return location
    if scope == "location_name":
        return event.location.name.casefold() if event.location.name else None
    if scope == "door":
        return event.door.uuid or event.door.name
    if scope == "user":
        return user
    if scope == "card":
        return event.card.uuid
    if scope == "user_at_location":
        return f"{user}@{location}" if user and location else None
    if scope == "none":
        return ALL
    raise ValueError(f"unknown key scope {scope!r}")


def scope_label(scope: str, event: Event) -> str:
    """How a trace names the event's door, user... in `scope`."""
    location = event.location.name or event.location.uuid or "?"
    who = event.actor.name or event.actor.uuid or "?"
    labels = {
        "location": location,
        "door": event.door.name or event.door.uuid or "?",
        "user": who,
        "card": event.card.number or event.card.uuid or "?",
        "user_at_location": f"{location} for {who}",
        "none": "any",
    }
    return labels[scope]


def scope_noun(scope: str) -> str:
    """`door`, `user at location`: the scope as a trace words it."""
    return scope.replace("_", " ")


def scope_phrase(scope: str, event: Event, preposition: str) -> str:
    """ " at door 'Lobby'", or "" for all events together."""
    if scope == "none":
        return ""
    return f" {preposition} {scope_noun(scope)} {scope_label(scope, event)!r}"
