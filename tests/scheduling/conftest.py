"""The store, the processor and the timers on a frozen clock, without a daemon."""

from __future__ import annotations

import json
import sqlite3
import textwrap
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from genea_automate.clock import FrozenClock
from genea_automate.config.loader import load_config
from genea_automate.processing import EventProcessor
from genea_automate.rules.engine import RuleEngine, build_engine
from genea_automate.scheduling.firing import TimerOutcome
from genea_automate.scheduling.service import TimerService
from genea_automate.store.base import Decision
from genea_automate.store.sqlite import SqliteStore
from tests.rules.conftest import HEADER
from tests.support.genea import body_of


class Timers:
    """One "daemon" at a time over one store file; `restart` starts another."""

    def __init__(self, folder: Path, clock: FrozenClock) -> None:
        self.folder = folder
        self.clock = clock
        self.engine: RuleEngine | None = None
        self._store: SqliteStore | None = None
        self._processor: EventProcessor | None = None
        self._timers: TimerService | None = None

    async def load(self, text: str) -> None:
        """Use these rules, starting if not started; the timers look at them at
        once, as the daemon's do on a start or a reload."""
        path = self.folder / "rules.yaml"
        path.write_text(HEADER + textwrap.dedent(text))
        loaded = load_config(path)
        self.engine = build_engine(loaded.config, loaded.make_plugins())
        if self._store is None:
            await self.start()
        await self.run_due()

    async def start(self) -> None:
        self._store = SqliteStore(str(self.folder / "store.db"), self.clock)
        await self._store.open()
        self._processor = EventProcessor(
            self._store, self.clock, self._engine, lambda: "UTC", lambda: None
        )
        self._timers = TimerService(self._store, self.clock, self._engine, lambda: None)

    async def restart(self, down_for: timedelta) -> None:
        """Stop, let `down_for` pass with nothing running, and start again.

        As after a SIGKILL, only what the store committed carries over.
        """
        await self.close()
        self.clock.advance(down_for)
        await self.start()

    async def close(self) -> None:
        if self._store is not None:
            await self._store.close()

    def _engine(self) -> RuleEngine:
        assert self.engine is not None
        return self.engine

    async def post(self, data: dict[str, Any], endpoint: str = "main") -> Decision:
        """Store one payload, as received on `endpoint`, and decide it now."""
        assert self._store is not None and self._processor is not None
        await self._store.ingest(
            endpoint, str(data["uuid"]), body_of(data), self.clock.now()
        )
        [stored] = await self._store.pending_events(1)
        decision = await self._processor.process(stored)
        assert decision is not None
        return decision

    async def run_due(self, after: timedelta = timedelta(0)) -> list[TimerOutcome]:
        """Move the clock on by `after`, then fire what is due."""
        assert self._timers is not None
        self.clock.advance(after)
        return await self._timers.run_due(self.clock.now())

    async def next_due(self) -> Any:
        assert self._timers is not None
        return await self._timers.next_due()

    def outbox(self) -> list[tuple[str, str, str, str]]:
        """(event id, rule id, step, payload) of every queued action, in order."""
        return self._rows(
            "SELECT event_id, rule_id, step, payload FROM outbox ORDER BY id"
        )

    def keys(self) -> list[str]:
        """The idempotency key of every queued action, in order."""
        rows = self._rows("SELECT idempotency_key FROM outbox ORDER BY id")
        return [key for (key,) in rows]

    def timer_traces(self) -> list[dict[str, Any]]:
        return [
            json.loads(trace)
            for (trace,) in self._rows("SELECT trace FROM timer_runs ORDER BY id")
        ]

    def _rows(self, sql: str) -> list[Any]:
        with sqlite3.connect(self.folder / "store.db") as db:
            return db.execute(sql).fetchall()


@pytest.fixture
def clock() -> FrozenClock:
    """Now: 2025-09-03 10:13 UTC, just after the held-open door of payload 11."""
    return FrozenClock(datetime(2025, 9, 3, 10, 13, tzinfo=UTC))


@pytest.fixture
async def timers(tmp_path: Path, clock: FrozenClock) -> AsyncIterator[Timers]:
    harness = Timers(tmp_path, clock)
    yield harness
    await harness.close()
