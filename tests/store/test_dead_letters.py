"""Dead letters, deferrals and event times in the SQLite store; an old store."""

from __future__ import annotations

import sqlite3
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from genea_automate.clock import FrozenClock
from genea_automate.store import ActionToQueue, Decision
from genea_automate.store.sqlite import SqliteStore

NOW = datetime(2025, 3, 3, 14, 0, tzinfo=UTC)
EVENT_TIME = NOW - timedelta(minutes=3)


@pytest.fixture
async def store(tmp_path: Path) -> AsyncIterator[SqliteStore]:
    opened = SqliteStore(str(tmp_path / "store.db"), FrozenClock(NOW))
    await opened.open()
    yield opened
    await opened.close()


def action(step: str, not_after: float | None = None) -> ActionToQueue:
    return ActionToQueue(
        rule_id="r", step=step, plugin="log", payload={"message": step},
        order_key=f"k{step}", description=f"log {step}", max_attempts=3, timeout=5.0,
        backoff=1.0, max_backoff=10.0, not_after=not_after,
    )  # fmt: skip


async def queue(store: SqliteStore, *actions: ActionToQueue) -> list[int]:
    await store.ingest("main", "ev", b"{}", NOW)
    [event] = await store.pending_events(1)
    decision = Decision(kind="x", actions=list(actions), event_time=EVENT_TIME)
    await store.decide(event, lambda state: decision)
    return [item.id for item in await store.due_actions(NOW, 10)]


async def test_store_outbox_records_event_time_and_deadline(store: SqliteStore) -> None:
    await queue(store, action("0", not_after=600))
    [item] = await store.due_actions(NOW, 10)
    assert item.event_time == EVENT_TIME
    assert item.deadline == EVENT_TIME + timedelta(minutes=10)


async def test_store_dead_letters_list_show_retry_and_drop(store: SqliteStore) -> None:
    first, second = await queue(store, action("0"), action("1"))
    await store.action_failed(first, "HTTP 500", None)
    await store.action_failed(second, "HTTP 400", None)

    letters = await store.dead_letters(10)
    assert [(d.item.id, d.error, d.died_at) for d in letters] == [
        (first, "HTTP 500", NOW),
        (second, "HTTP 400", NOW),
    ]
    assert await store.dead_letter(first) == letters[0]
    assert await store.dead_letter(999) is None

    later = NOW + timedelta(hours=1)
    assert await store.retry_dead([first, 999], later) == [first]
    [item] = await store.due_actions(later, 10)
    assert (item.id, item.attempts, item.idempotency_key) == (first, 0, "main:ev:r:0")
    assert await store.retry_dead([first], later) == []  # not dead any more

    assert await store.drop_dead(second) is True
    assert await store.drop_dead(second) is False
    assert await store.dead_letters(10) == []


async def test_store_deferral_moves_the_attempt_without_counting_it(
    store: SqliteStore,
) -> None:
    [item_id] = await queue(store, action("0"))
    await store.action_deferred(item_id, "broker down", NOW + timedelta(seconds=5))
    assert await store.due_actions(NOW, 10) == []
    [item] = await store.due_actions(NOW + timedelta(seconds=5), 10)
    assert item.attempts == 0


async def test_store_created_by_version_1_gains_the_new_columns(tmp_path: Path) -> None:
    path = tmp_path / "old.db"
    with sqlite3.connect(path) as db:
        db.executescript(
            "CREATE TABLE outbox (id INTEGER PRIMARY KEY AUTOINCREMENT, "
            "event_id TEXT NOT NULL, rule_id TEXT NOT NULL, step TEXT NOT NULL, "
            "plugin TEXT NOT NULL, payload TEXT NOT NULL, order_key TEXT NOT NULL, "
            "description TEXT NOT NULL, idempotency_key TEXT NOT NULL UNIQUE, "
            "state TEXT NOT NULL DEFAULT 'pending', attempts INTEGER NOT NULL "
            "DEFAULT 0, max_attempts INTEGER NOT NULL, timeout REAL NOT NULL, "
            "backoff REAL NOT NULL, max_backoff REAL NOT NULL, next_attempt_at TEXT "
            "NOT NULL, last_error TEXT, created_at TEXT NOT NULL, finished_at TEXT);"
            "INSERT INTO outbox (event_id, rule_id, step, plugin, payload, order_key, "
            "description, idempotency_key, max_attempts, timeout, backoff, "
            "max_backoff, next_attempt_at, created_at) VALUES ('e', 'r', '0', 'log', "
            "'{}', 'k', 'log', 'e:r:0', 3, 5, 1, 10, '2025-03-03T13:00:00.000000Z', "
            "'2025-03-03T13:00:00.000000Z');"
        )
    store = SqliteStore(str(path), FrozenClock(NOW))
    await store.open()
    try:
        [item] = await store.due_actions(NOW, 10)
    finally:
        await store.close()
    assert (item.event_time, item.not_after) == (item.created_at, None)
    with sqlite3.connect(path) as db:
        version = db.execute("SELECT value FROM meta WHERE name = 'schema'")
        assert version.fetchone() == ("4",)
