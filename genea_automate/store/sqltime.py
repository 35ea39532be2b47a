"""How the SQLite store writes times: UTC text whose order is time order."""

from __future__ import annotations

from datetime import UTC, datetime


def to_text(when: datetime) -> str:
    """UTC, fixed width, so that text order is time order."""
    return when.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def from_text(text: str) -> datetime:
    return datetime.strptime(text, "%Y-%m-%dT%H:%M:%S.%fZ").replace(tzinfo=UTC)
