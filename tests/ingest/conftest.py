"""Shared payloads, an ingest app factory, and a store double for refusal tests."""

from __future__ import annotations

import re
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import AsyncExitStack
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import httpx
import pytest
from starlette.types import ASGIApp

from genea_automate.clock import FrozenClock
from genea_automate.config.endpoints import EndpointConfig
from genea_automate.errors import StoreUnavailableError
from genea_automate.ingest import create_ingest_app, sign
from genea_automate.ingest.http import EventSink
from tests.support.genea import SHARED_PAYLOADS

SECRET = b"genea-automate-test-secret"
NOW = datetime(2025, 3, 4, 13, 58, 12, 345000, tzinfo=UTC)
PAYLOAD_DIR = SHARED_PAYLOADS
_README_ROW = re.compile(
    r"^\| `(?P<file>[^`]+\.json)` \|.*\| `(?P<sig>sha1=[0-9a-f]{40})` \|$"
)


@dataclass(frozen=True)
class Payload:
    """One shared fixture file: its exact bytes and the README's signature."""

    name: str
    body: bytes
    signature: str


def load_payloads() -> list[Payload]:
    """Every payload listed in the shared README, with the signature it lists."""
    readme = (PAYLOAD_DIR / "README.md").read_text(encoding="utf-8")
    rows = [m for line in readme.splitlines() if (m := _README_ROW.match(line))]
    return [
        Payload(m["file"], (PAYLOAD_DIR / m["file"]).read_bytes(), m["sig"])
        for m in rows
    ]


PAYLOADS = load_payloads()
PAYLOAD_IDS = [payload.name.partition("-")[0] for payload in PAYLOADS]


@dataclass
class RecordingStore:
    """Remembers every ingest call; for tests that must show nothing was stored."""

    unavailable: bool = False
    calls: list[tuple[str, str, bytes, datetime]] = field(default_factory=list)

    async def ingest(
        self, endpoint: str, uuid: str, body: bytes, received_at: datetime
    ) -> bool:
        if self.unavailable:
            raise StoreUnavailableError("disk I/O error (test double)")
        self.calls.append((endpoint, uuid, body, received_at))
        return True


@dataclass
class Harness:
    """An ingest app under test and what it did."""

    store: Any
    endpoints: dict[str, EndpointConfig]
    client: httpx.AsyncClient = field(init=False)
    app: ASGIApp = field(init=False)
    stored_signals: list[None] = field(default_factory=list)
    draining: bool = False

    async def post(
        self,
        body: bytes,
        *,
        endpoint: str = "main",
        signature: str | None = None,
        content_type: str | None = "application/json",
        headers: dict[str, str] | None = None,
    ) -> httpx.Response:
        """POST `body`, signed with the test secret unless `signature` is given."""
        sent = dict(headers or {})
        if content_type is not None:
            sent["Content-Type"] = content_type
        sent["X-Sequr-Signature"] = signature or sign_body(body)
        return await self.client.post(f"/hooks/{endpoint}", content=body, headers=sent)


def sign_body(body: bytes, secret: bytes = SECRET) -> str:
    return sign(secret, body)


def endpoint_config(**overrides: Any) -> EndpointConfig:
    """The 'main' endpoint with the test secret, plus any overrides."""
    return EndpointConfig.model_validate({"secret": SECRET.decode(), **overrides})


MakeHarness = Callable[..., Awaitable[Harness]]


@pytest.fixture
async def make_harness() -> AsyncIterator[MakeHarness]:
    """Build an app around a store; the peer address is what the app sees."""
    async with AsyncExitStack() as stack:

        async def make(
            store: EventSink,
            endpoint: EndpointConfig | None = None,
            peer: str = "127.0.0.1",
            on_stored: Callable[[], None] | None = None,
        ) -> Harness:
            endpoints = {"main": endpoint or endpoint_config()}
            harness = Harness(store, endpoints)
            app = create_ingest_app(
                lambda: harness.endpoints,
                store,
                FrozenClock(NOW),
                on_stored or (lambda: harness.stored_signals.append(None)),
                draining=lambda: harness.draining,
            )
            harness.app = app
            transport = httpx.ASGITransport(app, client=(peer, 43210))
            harness.client = await stack.enter_async_context(
                httpx.AsyncClient(transport=transport, base_url="http://genea.test")
            )
            return harness

        yield make


@pytest.fixture
def recording_store() -> RecordingStore:
    return RecordingStore()


@pytest.fixture
async def harness(
    make_harness: MakeHarness, recording_store: RecordingStore
) -> Harness:
    """The default app around a store double that must stay empty."""
    return await make_harness(recording_store)
