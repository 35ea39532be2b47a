"""Fixtures for the event-model tests: the receive time and our own payloads."""

from __future__ import annotations

import json
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

OWN_PAYLOADS = Path(__file__).resolve().parents[1] / "fixtures" / "payloads"
RECEIVED_AT = datetime(2025, 12, 1, 12, 0, 0, tzinfo=UTC)


@pytest.fixture
def received_at() -> datetime:
    return RECEIVED_AT


@pytest.fixture
def own_payloads_dir() -> Path:
    return OWN_PAYLOADS


@pytest.fixture
def own_payload() -> Callable[[str], dict[str, Any]]:
    """Loads one of tests/fixtures/payloads by its name without `.json`."""

    def load(name: str) -> dict[str, Any]:
        text = (OWN_PAYLOADS / f"{name}.json").read_text(encoding="utf-8")
        data: dict[str, Any] = json.loads(text)
        return data

    return load
