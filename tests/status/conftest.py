"""A daemon in this process, served to an httpx client without a socket."""

from __future__ import annotations

import textwrap
from collections.abc import AsyncIterator, Awaitable, Callable
from datetime import UTC, datetime
from pathlib import Path

import httpx
import pytest

from genea_automate.app import Daemon
from genea_automate.clock import FrozenClock
from genea_automate.config.loader import load_config
from tests.support.genea import TEST_SECRET, body_of, payload, signed_headers

ADMIN_TOKEN = "status-page-test-token-0123456789"

RULES = f"""
store: "sqlite:///./store.db"
endpoints: {{main: {{secret: "{TEST_SECRET}"}}}}
status: {{admin_token: "{ADMIN_TOKEN}"}}
mqtt: {{default: {{url: "mqtt://127.0.0.1:1"}}}}
rules:
  - id: coffee
    description: The first badge of the day starts the coffee.
    when: {{event: access.granted}}
    if: [{{first_arrival: location}}]
    then: [{{log: {{message: "coffee for {{{{ actor.name }}}}"}}}}]
  - id: denied
    when: {{event: access.denied}}
    then: [{{log: {{message: "denied at {{{{ door.name }}}}"}}}}]
"""

Post = Callable[..., Awaitable[httpx.Response]]


def write_rules(folder: Path, extra: str = "", rules: str = RULES) -> Path:
    path = folder / "rules.yaml"
    path.write_text(textwrap.dedent(rules) + textwrap.dedent(extra))
    return path


@pytest.fixture
def rules_text() -> str:
    return RULES


@pytest.fixture
async def daemon(tmp_path: Path, rules_text: str) -> AsyncIterator[Daemon]:
    clock = FrozenClock(datetime(2025, 3, 3, 14, tzinfo=UTC))
    running = Daemon(load_config(write_rules(tmp_path, rules=rules_text)), clock)
    await running.store.open()
    yield running
    await running.store.close()


@pytest.fixture
async def client(daemon: Daemon) -> AsyncIterator[httpx.AsyncClient]:
    transport = httpx.ASGITransport(app=daemon.app)
    async with httpx.AsyncClient(transport=transport, base_url="http://t") as http:
        yield http


@pytest.fixture
def post_event(client: httpx.AsyncClient, daemon: Daemon) -> Post:
    """Post a shared payload as Genea would, then let the processor decide it."""

    async def post(prefix: str, **changes: object) -> httpx.Response:
        body = body_of(payload(prefix, **changes))
        answer = await client.post(
            "/hooks/main", content=body, headers=signed_headers(body)
        )
        await daemon.processor.run_once()
        return answer

    return post


def bearer(token: str = ADMIN_TOKEN) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}
