"""How the SQLite store writes times: UTC text whose order is time order."""

from __future__ import annotations

from datetime import UTC, datetime


def to_text(when: datetime) -> str:
    """UTC, fixed width, so that text order is time order.

    isoformat is several times faster than strftime, and this runs for every
    webhook stored.
    """
    utc = when.astimezone(UTC).replace(tzinfo=None)
    return utc.isoformat(timespec="microseconds") + "Z"


def from_text(text: str) -> datetime:
    return datetime.fromisoformat(text).replace(tzinfo=UTC)
