"""Fixtures every test package may use."""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from tests.support.genea import SHARED_PAYLOADS
from tests.support.http_server import LoopbackHttpServer
from tests.support.mosquitto import Mosquitto


@dataclass(frozen=True, slots=True)
class SharedPayload:
    """One shared payload file: its name (`01-access-granted-card.json`) and JSON."""

    name: str
    data: dict[str, Any]


def shared_payload_names() -> list[str]:
    """The shared payload file names, in order."""
    return sorted(path.name for path in SHARED_PAYLOADS.glob("*.json"))


def load_shared_payload(name: str) -> SharedPayload:
    """A fresh copy of one shared payload, so a test may change it freely."""
    text = (SHARED_PAYLOADS / name).read_text(encoding="utf-8")
    return SharedPayload(name=name, data=json.loads(text))


@pytest.fixture(
    params=shared_payload_names(), ids=lambda name: name.removesuffix(".json")
)
def shared_payload(request: pytest.FixtureRequest) -> SharedPayload:
    """Each shared payload in turn."""
    return load_shared_payload(request.param)


@pytest.fixture
def shared_payloads_dir() -> Path:
    """The folder of shared payloads, with its README."""
    return SHARED_PAYLOADS


@pytest.fixture
def load_shared() -> Callable[[str], SharedPayload]:
    """Loads one shared payload by file name."""
    return load_shared_payload


@pytest.fixture
def mosquitto(tmp_path: Path) -> Iterator[Mosquitto]:
    """A private broker, which the test may stop and start again."""
    broker = Mosquitto(tmp_path / "mosquitto")
    broker.start()
    yield broker
    broker.stop()


@pytest.fixture
def http_server() -> Iterator[LoopbackHttpServer]:
    """A loopback HTTP server that records requests and answers as told."""
    server = LoopbackHttpServer()
    server.start()
    yield server
    server.stop()
