"""Retention: what a pruning pass removes from the store, and what it keeps."""

from __future__ import annotations

import sqlite3
from collections.abc import AsyncIterator, Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest

from genea_automate.clock import FrozenClock
from genea_automate.config.observability import TracesConfig
from genea_automate.config.retention import RetentionConfig
from genea_automate.retention import StorePruner
from genea_automate.store import ActionToQueue, Decision
from genea_automate.store.sqlite import SqliteStore

DAY = timedelta(days=1)
NOW = datetime(2025, 3, 30, 12, 0, tzinfo=UTC)


@pytest.fixture
def clock() -> FrozenClock:
    return FrozenClock(NOW - 40 * DAY)


@pytest.fixture
async def store(tmp_path: Path, clock: FrozenClock) -> AsyncIterator[SqliteStore]:
    opened = SqliteStore(str(tmp_path / "store.db"), clock)
    await opened.open()
    yield opened
    await opened.close()


def config_with(retention: RetentionConfig) -> Callable[[], Any]:
    traces = TracesConfig(keep_for="1d", keep_per_rule=0)
    return lambda: SimpleNamespace(
        retention=retention, traces=traces, max_event_age=None
    )


def log_action(step: str) -> ActionToQueue:
    return ActionToQueue(
        rule_id="r", step=step, plugin="log", payload={}, order_key=f"k{step}",
        description="log", max_attempts=3, timeout=5.0, backoff=1.0,
        max_backoff=10.0,
    )  # fmt: skip


async def receive(store: SqliteStore, clock: FrozenClock, uuid: str, age: int) -> None:
    """An event received `age` days before NOW, decided, its action delivered."""
    clock.set(NOW - age * DAY)
    await store.ingest("main", uuid, b'{"uuid": 1}', clock.now())
    [event] = await store.pending_events(1)
    decision = Decision(kind="x", actions=[log_action(uuid)], trace={"rules": []})
    await store.decide(event, lambda state: decision)
    [item] = await store.due_actions(clock.now(), 10)
    await store.action_delivered(item.id, clock.now())


def rows(store: SqliteStore) -> dict[str, list[tuple[object, ...]]]:
    with sqlite3.connect(store.path) as db:
        return {
            "events": db.execute(
                "SELECT uuid, state, length(body) FROM events ORDER BY seq"
            ).fetchall(),
            "outbox": db.execute("SELECT event_id FROM outbox ORDER BY id").fetchall(),
        }


async def test_pruning_keeps_pending_work_and_uuids_for_the_dedup_window(
    store: SqliteStore, clock: FrozenClock
) -> None:
    for uuid, age in (("old", 35), ("week", 10), ("recent", 2)):
        await receive(store, clock, uuid, age)
    clock.set(NOW)
    await store.ingest("main", "waiting", b"{}", NOW)
    retention = RetentionConfig(events="5d", dedup="12d", delivered_actions="3d")
    pruner = StorePruner(store, clock, config_with(retention))

    await pruner.prune_once()

    assert rows(store) == {
        # "old" is forgotten; "week" stays as a uuid only; the rest is whole.
        "events": [("week", "pruned", 0), ("recent", "decided", 11),
                   ("waiting", "pending", 2)],
        "outbox": [("recent",)],
    }  # fmt: skip
    assert await store.ingest("main", "week", b"{}", NOW) is False
    assert await store.ingest("main", "old", b"{}", NOW) is True


async def test_pruning_by_count_keeps_the_newest_events(
    store: SqliteStore, clock: FrozenClock
) -> None:
    for n in range(150):
        await receive(store, clock, f"e{n:03d}", age=1)
    clock.set(NOW)
    retention = RetentionConfig(max_events=100)
    await StorePruner(store, clock, config_with(retention)).prune_once()
    states = [state for _, state, _ in rows(store)["events"]]
    assert states == ["pruned"] * 50 + ["decided"] * 100


def test_retention_refuses_a_dedup_window_under_seven_days() -> None:
    with pytest.raises(ValueError, match="dedup must be at least 7d"):
        RetentionConfig(dedup="1d")
