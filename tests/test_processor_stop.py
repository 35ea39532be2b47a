"""How the processor's run ends: asked to stop, it finishes the batch in hand
and takes no other; on a store whose writer thread is gone, at once.

The deciding process relies on both: each decision it commits is then also
logged and counted before it exits, and a process that can no longer write
exits so that the daemon starts a new one.
"""

from __future__ import annotations

import asyncio
import sqlite3
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from genea_automate import processing
from genea_automate.clock import FrozenClock
from genea_automate.config.loader import load_config
from genea_automate.errors import StoreBrokenError
from genea_automate.processing import BATCH, EventProcessor
from genea_automate.rules.engine import RuleEngine, build_engine
from genea_automate.store.sqlite import SqliteStore
from tests.support.genea import TEST_SECRET, body_of, payload

CONFIG = f"""
endpoints:
  main: {{secret: "{TEST_SECRET}"}}
rules:
  - id: greet
    when: access.granted
    then:
      - log: {{message: hello}}
"""


CLOCK = FrozenClock(datetime(2025, 3, 3, 16, 0, tzinfo=UTC))


@pytest.fixture
async def store(tmp_path: Path) -> AsyncIterator[SqliteStore]:
    opened = SqliteStore(str(tmp_path / "store.db"), CLOCK)
    await opened.open()
    yield opened
    await opened.close()


@pytest.fixture
def engine(tmp_path: Path) -> RuleEngine:
    config = tmp_path / "rules.yaml"
    config.write_text(CONFIG)
    loaded = load_config(config)
    return build_engine(loaded.config, loaded.make_plugins())


async def test_stop_soon_ends_the_run_after_the_batch_in_hand(
    store: SqliteStore, engine: RuleEngine
) -> None:
    for n in range(BATCH + 50):
        uuid = f"stop-{n}"
        await store.ingest("main", uuid, body_of(payload("01", uuid=uuid)), CLOCK.now())
    counted: list[str] = []

    def count(kind: str, trace: Any) -> None:
        counted.append(kind)
        processor.stop_soon()  # at the first decision, mid-batch

    processor = EventProcessor(
        store, CLOCK, lambda: engine, lambda: "UTC", lambda: None, count_decision=count
    )
    await asyncio.wait_for(processor.run(), timeout=30)
    assert counted == ["access.granted"] * BATCH
    assert len(await store.pending_events(BATCH)) == 50


async def test_run_ends_when_the_store_writer_is_gone(
    store: SqliteStore, engine: RuleEngine
) -> None:
    def close(connection: sqlite3.Connection) -> None:
        connection.close()  # even the rollback fails: the writer thread stops

    with pytest.raises(StoreBrokenError):
        await store._writer.call(close)
    processor = EventProcessor(
        store, CLOCK, lambda: engine, lambda: "UTC", lambda: None
    )
    # A store that is only down is waited for; this one is not.
    with pytest.raises(StoreBrokenError):
        await asyncio.wait_for(processor.run(), timeout=30)


async def test_a_batch_takes_no_more_webhook_bytes_than_its_limit(
    store: SqliteStore, engine: RuleEngine, monkeypatch: pytest.MonkeyPatch
) -> None:
    bodies = [body_of(payload("01", uuid=f"big-{n}")) for n in range(10)]
    for n, body in enumerate(bodies):
        await store.ingest("main", f"big-{n}", body, CLOCK.now())
    monkeypatch.setattr(processing, "BATCH_BYTES", sum(map(len, bodies[:3])))
    counted: list[str] = []

    def count(kind: str, trace: Any) -> None:
        counted.append(kind)
        processor.stop_soon()  # the batch in hand is decided, then no other

    processor = EventProcessor(
        store, CLOCK, lambda: engine, lambda: "UTC", lambda: None, count_decision=count
    )
    await asyncio.wait_for(processor.run(), timeout=30)
    assert len(counted) == 3
    assert len(await store.pending_events(BATCH)) == 7
