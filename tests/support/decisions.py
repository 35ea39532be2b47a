"""Filling a real store the way the daemon does, for replay, trace and simulate."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from pathlib import Path
from typing import Any

from genea_automate.clock import FrozenClock
from genea_automate.config.loader import load_config
from genea_automate.processing import EventProcessor
from genea_automate.rules.engine import build_engine
from genea_automate.store import open_store
from tests.support.genea import body_of


async def decide_in_store(
    config: Path, payloads: Sequence[dict[str, Any]], at: str | None = None
) -> None:
    """Store and decide `payloads` in order with the rules of `config`, as the
    daemon would, each at `at` (default: its own event time)."""
    loaded = load_config(config)
    clock = FrozenClock(datetime.fromisoformat(at or "2000-01-01T00:00:00Z"))
    store = open_store(loaded.store_url, clock)
    engine = build_engine(loaded.config, loaded.make_plugins())
    processor = EventProcessor(
        store, clock, lambda: engine, lambda: "UTC", lambda: None
    )
    await store.open()
    try:
        for data in payloads:
            if at is None:
                clock.set(datetime.fromisoformat(data["event_time"]))
            await store.ingest("main", str(data["uuid"]), body_of(data), clock.now())
            [stored] = await store.pending_events(1)
            assert await processor.process(stored) is not None
    finally:
        await store.close()
