"""A Genea-shaped Event to render templates against, with fields to override."""

from __future__ import annotations

import dataclasses
from datetime import UTC, datetime
from typing import Any

from genea_automate.events.model import Actor, Card, Door, Event, Location


def sample_event(**changes: Any) -> Event:
    """An `access.granted` at HQ's front door; keyword arguments replace fields."""
    event = Event(
        id="2f6a1c9e-0d1b-4c55-9a53-6f1e1d1b7a10",
        kind="access.granted",
        action="card_granted",
        message="Access granted",
        category="access",
        time=datetime(2024, 3, 4, 13, 5, 9, tzinfo=UTC),
        local_time=datetime(2024, 3, 4, 8, 5, 9, tzinfo=UTC),
        time_source="event_time",
        actor=Actor(
            type="user", uuid="u-1", name="Ada Lovelace", email="ada@example.org"
        ),
        location=Location(uuid="l-1", name="HQ", timezone="America/New_York"),
        door=Door(uuid="d-1", name="Front Door"),
        card=Card(type="card", number="1234"),
        details={"reader": "in"},
    )
    return dataclasses.replace(event, **changes)
