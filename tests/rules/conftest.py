"""A rules file, the real SQLite store and the processor, without the network."""

from __future__ import annotations

import json
import textwrap
from collections.abc import AsyncIterator, Awaitable, Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Protocol

import pytest

from genea_automate.clock import FrozenClock
from genea_automate.config.loader import load_config
from genea_automate.processing import EventProcessor
from genea_automate.rules.engine import build_engine
from genea_automate.store.base import Decision
from genea_automate.store.sqlite import SqliteStore
from tests.support.genea import body_of

HEADER = """
endpoints:
  main: {secret: test}
mqtt:
  default: {url: "mqtt://127.0.0.1:1"}
slack:
  ops: {webhook_url: "http://127.0.0.1:1/slack"}
"""


class Decide(Protocol):
    def __call__(
        self, data: dict[str, Any] | bytes, endpoint: str = "main"
    ) -> Awaitable[Decision]: ...


@pytest.fixture
def clock() -> FrozenClock:
    """Now, for these tests: Monday 2025-03-03 16:00 UTC, 11:00 in New York."""
    return FrozenClock(datetime(2025, 3, 3, 16, 0, tzinfo=UTC))


@pytest.fixture
async def rules(
    tmp_path: Path, clock: FrozenClock
) -> AsyncIterator[Callable[[str], Awaitable[Decide]]]:
    """`await rules(YAML)` gives decide(payload) -> the Decision for that payload."""
    stores: list[SqliteStore] = []

    async def load(text: str) -> Decide:
        config_path = tmp_path / "rules.yaml"
        config_path.write_text(HEADER + textwrap.dedent(text))
        loaded = load_config(config_path)
        engine = build_engine(loaded.config, loaded.make_plugins())
        store = SqliteStore(str(tmp_path / "store.db"), clock)
        stores.append(store)
        await store.open()
        processor = EventProcessor(
            store, clock, lambda: engine, lambda: "UTC", lambda: None
        )

        async def decide(
            data: dict[str, Any] | bytes, endpoint: str = "main"
        ) -> Decision:
            """Decide a payload, given as a dict or as the exact bytes sent, as
            received on `endpoint`."""
            body = data if isinstance(data, bytes) else body_of(data)
            uuid = str(json.loads(body)["uuid"])
            await store.ingest(endpoint, uuid, body, clock.now())
            [stored] = await store.pending_events(1)
            decision = await processor.process(stored)
            assert decision is not None
            return decision

        return decide

    yield load
    for store in stores:
        await store.close()


def rule_trace(decision: Decision, rule_id: str) -> dict[str, Any]:
    return next(r for r in decision.trace["rules"] if r["rule"] == rule_id)
