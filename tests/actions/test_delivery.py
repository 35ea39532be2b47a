"""The delivery worker against a real SQLite store, with scripted plugins."""

from __future__ import annotations

import asyncio
import logging
import sqlite3
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from datetime import UTC, datetime, timedelta
from itertools import pairwise
from pathlib import Path
from typing import Any, ClassVar

import pytest
from pydantic import BaseModel

from genea_automate.actions.delivery import (
    MAX_RETRY_WAIT,
    DeliveryWorker,
    retry_delay,
)
from genea_automate.actions.holds import TargetHolds
from genea_automate.errors import ActionError, TargetDownError
from genea_automate.plugin import ActionPlugin, DeliveryContext, RenderContext
from genea_automate.store import ActionToQueue, Decision
from genea_automate.store.base import OutboxItem
from genea_automate.store.sqlite import SqliteStore

Script = Callable[[int], Awaitable[None]]


class ScriptedAction(ActionPlugin[BaseModel]):
    """Runs `script(call number)` for each delivery; records when each began."""

    name: ClassVar[str] = "scripted"
    Options: ClassVar[type[BaseModel]] = BaseModel

    def __init__(self, script: Script, min_interval: float = 0.0) -> None:
        super().__init__()
        self.script = script
        self.min_interval = min_interval  # type: ignore[misc]
        self.starts: list[float] = []
        self.delivered: list[str] = []

    def render(self, options: BaseModel, ctx: RenderContext) -> dict[str, Any]:
        return {}

    async def deliver(self, payload: dict[str, Any], ctx: DeliveryContext) -> None:
        self.starts.append(time.monotonic())
        await self.script(len(self.starts))
        self.delivered.append(ctx.idempotency_key)


async def succeed(call: int) -> None:
    return None


@pytest.fixture
async def store(tmp_path: Path) -> AsyncIterator[SqliteStore]:
    opened = SqliteStore(str(tmp_path / "store.db"))
    await opened.open()
    yield opened
    await opened.close()


def action(
    step: str = "0",
    attempts: int = 5,
    backoff: float = 0.01,
    not_after: float | None = None,
) -> ActionToQueue:
    return ActionToQueue(
        rule_id="r", step=step, plugin="scripted", payload={}, order_key="target",
        description="scripted target", max_attempts=attempts, timeout=5.0,
        backoff=backoff, max_backoff=backoff, not_after=not_after,
    )  # fmt: skip


async def queue(
    store: SqliteStore, *actions: ActionToQueue, event_time: datetime | None = None
) -> None:
    now = datetime.now(UTC)
    await store.ingest("main", "ev-1", b"{}", now)
    [stored] = await store.pending_events(1)
    decision = Decision(kind="x", fired=["r"], actions=list(actions),
                        event_time=event_time or now)  # fmt: skip
    await store.decide(stored, lambda state: decision)


def outbox(store: SqliteStore) -> list[tuple[str, int, str | None]]:
    with sqlite3.connect(store.path) as db:
        return db.execute(
            "SELECT state, attempts, last_error FROM outbox ORDER BY id"
        ).fetchall()


async def run_until(
    worker: DeliveryWorker, done: Callable[[], bool], timeout: float = 10.0
) -> None:
    task = asyncio.create_task(worker.run())
    try:
        async with asyncio.timeout(timeout):
            while not done():
                await asyncio.sleep(0.01)  # polling a condition, not timing
    finally:
        await worker.drain(1.0)
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)


def worker_for(
    store: SqliteStore, plugin: ScriptedAction, holds: TargetHolds | None = None
) -> DeliveryWorker:
    return DeliveryWorker(store, lambda: {"scripted": plugin}, store.clock, holds)


async def test_delivery_target_down_waits_without_using_attempts(
    store: SqliteStore,
) -> None:
    async def down_twice(call: int) -> None:
        if call <= 2:
            raise TargetDownError("broker not connected", retry_after=0.01)

    plugin = ScriptedAction(down_twice)
    await queue(store, action(attempts=1))
    await run_until(worker_for(store, plugin), lambda: bool(plugin.delivered))
    assert len(plugin.starts) == 3
    assert outbox(store) == [("delivered", 1, None)]


async def test_delivery_plugin_raising_system_exit_fails_that_attempt(
    store: SqliteStore, caplog: pytest.LogCaptureFixture
) -> None:
    async def exit_once(call: int) -> None:
        if call == 1:
            raise SystemExit(3)

    plugin = ScriptedAction(exit_once)
    await queue(store, action(attempts=2), action(step="1", attempts=1))
    await run_until(worker_for(store, plugin), lambda: len(plugin.delivered) == 2)

    assert len(plugin.starts) == 3  # the first retried, the second sent
    assert outbox(store) == [("delivered", 2, None), ("delivered", 1, None)]
    [failed] = [r for r in caplog.records if "failed (attempt 1 of 2)" in r.message]
    assert failed.message.endswith(
        "plugin error: PluginCrashError(\"action plugin 'scripted' raised "
        'SystemExit(3)"); retrying in 0.0s'
    )


async def test_delivery_past_not_after_goes_to_the_dead_letters_unsent(
    store: SqliteStore, caplog: pytest.LogCaptureFixture
) -> None:
    plugin = ScriptedAction(succeed)
    hour_ago = datetime.now(UTC) - timedelta(hours=1)
    await queue(store, action(not_after=900), event_time=hour_ago)
    await run_until(worker_for(store, plugin), lambda: outbox(store)[0][0] == "dead")

    assert plugin.starts == []
    [(state, attempts, error)] = outbox(store)
    assert (state, attempts) == ("dead", 0)  # never tried
    assert error == (
        "not sent: it would run more than not_after (900s) after the event of "
        f"{hour_ago:%Y-%m-%d %H:%M:%S} UTC; it was still waiting"
    )
    [record] = [r for r in caplog.records if "dead letters" in r.getMessage()]
    assert record.levelname == "WARNING"


async def test_delivery_retry_that_would_be_too_late_dead_letters_at_once(
    store: SqliteStore,
) -> None:
    async def fail(call: int) -> None:
        raise ActionError("HTTP 500 Internal Server Error")

    plugin = ScriptedAction(fail)
    await queue(store, action(backoff=60.0, not_after=30))
    await run_until(worker_for(store, plugin), lambda: outbox(store)[0][0] == "dead")
    assert len(plugin.starts) == 1
    [(_, _, error)] = outbox(store)
    assert error.endswith("; attempt 1 failed: HTTP 500 Internal Server Error")


async def test_delivery_paces_a_plugin_with_min_interval(store: SqliteStore) -> None:
    plugin = ScriptedAction(succeed, min_interval=0.3)
    await queue(store, action("0"), action("1"), action("2"))
    await run_until(worker_for(store, plugin), lambda: len(plugin.delivered) == 3)
    gaps = [later - earlier for earlier, later in pairwise(plugin.starts)]
    assert min(gaps) >= 0.3
    assert plugin.delivered == ["main:ev-1:r:0", "main:ev-1:r:1", "main:ev-1:r:2"]


async def test_delivery_circuit_breaker_pauses_a_failing_target(
    store: SqliteStore,
) -> None:
    async def fail_three_times(call: int) -> None:
        if call <= 3:
            raise ActionError("HTTP 503 Service Unavailable")

    plugin = ScriptedAction(fail_three_times)
    holds = TargetHolds(failures=2, cool_off=timedelta(seconds=0.5))
    await queue(store, action(attempts=10, backoff=0.01))
    await run_until(worker_for(store, plugin, holds), lambda: bool(plugin.delivered))
    gaps = [later - earlier for earlier, later in pairwise(plugin.starts)]
    assert gaps[0] < 0.5 <= gaps[1]  # paused after the second failure in a row
    assert outbox(store) == [("delivered", 4, None)]


async def test_delivery_drain_stops_a_hung_delivery_and_keeps_it_queued(
    store: SqliteStore,
) -> None:
    async def hang(call: int) -> None:
        await asyncio.sleep(3600)

    plugin = ScriptedAction(hang)
    await queue(store, action())
    worker = worker_for(store, plugin)
    task = asyncio.create_task(worker.run())
    async with asyncio.timeout(5):
        while not plugin.starts:
            await asyncio.sleep(0.01)
    await worker.drain(0.1)
    task.cancel()
    await asyncio.gather(task, return_exceptions=True)
    assert outbox(store) == [("pending", 0, None)]


async def test_delivery_paused_waits_for_deliveries_in_flight(
    store: SqliteStore,
) -> None:
    release = asyncio.Event()

    async def wait_for_release(call: int) -> None:
        await release.wait()

    plugin = ScriptedAction(wait_for_release)
    await queue(store, action("0"), action("1"))
    worker = worker_for(store, plugin)
    task = asyncio.create_task(worker.run())
    async with asyncio.timeout(5):
        while not plugin.starts:
            await asyncio.sleep(0.01)
    asyncio.get_running_loop().call_later(0.2, release.set)
    async with worker.paused():
        assert plugin.delivered == ["main:ev-1:r:0"]
        await worker.run_once()
        assert len(plugin.starts) == 1  # the next one waits for the reload
    async with asyncio.timeout(5):
        while len(plugin.delivered) < 2:
            await asyncio.sleep(0.01)
    task.cancel()
    await asyncio.gather(task, return_exceptions=True)


def outbox_item(**changes: Any) -> OutboxItem:
    """An action as the worker reads it from the outbox."""
    fields: dict[str, Any] = dict(
        id=1, event_id="e", rule_id="r", step="0", plugin="slack", payload={},
        order_key="k", description="d", idempotency_key="e:r:0", attempts=0,
        max_attempts=5, timeout=5.0, backoff=1.0, max_backoff=10.0,
        created_at=datetime.now(UTC), event_time=datetime.now(UTC), not_after=None,
    )  # fmt: skip
    return OutboxItem(**{**fields, **changes})


def test_retry_delay_honours_retry_after_beyond_max_backoff() -> None:
    item = outbox_item()
    limited = ActionError("HTTP 429 Too Many Requests", retry_after=120.0)
    assert retry_delay(item, limited, jitter=0.0) == 120.0
    assert retry_delay(item, ActionError("HTTP 500"), jitter=1.0) == 1.0


def test_retry_delay_caps_a_retry_after_of_years() -> None:
    item = outbox_item(attempts=900, max_attempts=1000, max_backoff=1e12)
    huge = ActionError("HTTP 503 Service Unavailable", retry_after=99999999999999.0)
    assert retry_delay(item, huge, jitter=0.0) == MAX_RETRY_WAIT
    assert retry_delay(item, ActionError("HTTP 500"), jitter=1.0) == MAX_RETRY_WAIT


@pytest.mark.parametrize("retry_after", [0.0, -5.0])
def test_retry_delay_backs_off_when_retry_after_says_now(retry_after: float) -> None:
    """Retry-After 0, or a date past, would spend every attempt at once."""
    item = outbox_item(attempts=2)
    now_please = ActionError("HTTP 429 Too Many Requests", retry_after=retry_after)
    assert retry_delay(item, now_please, jitter=1.0) == 4.0


def test_deadline_of_an_event_near_the_year_9999_is_none() -> None:
    item = outbox_item(
        not_after=400 * 86400.0, event_time=datetime(9998, 12, 31, 23, tzinfo=UTC)
    )
    assert item.deadline is None


async def test_delivery_failing_in_the_worker_is_set_aside_not_resent(
    store: SqliteStore, caplog: pytest.LogCaptureFixture
) -> None:
    plugin = ScriptedAction(succeed)
    holds = TargetHolds()

    def broken(*args: object) -> None:
        raise RuntimeError("bookkeeping bug")

    holds.succeeded = broken  # type: ignore[method-assign]
    await queue(store, action(), action(step="1"))
    worker = worker_for(store, plugin, holds)
    await run_until(worker, lambda: [row[0] for row in outbox(store)] == ["dead"] * 2)

    assert len(plugin.starts) == 2  # each sent once, never again
    assert {error for _, _, error in outbox(store)} == {
        "delivery failed in genea-automate: RuntimeError('bookkeeping bug')"
    }
    logged = [r for r in caplog.records if r.exc_info and "may have been" in r.msg]
    assert len(logged) == 2


async def test_delivery_store_outage_is_reported_once(
    store: SqliteStore, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger="genea_automate.actions.delivery")
    plugin = ScriptedAction(succeed)
    worker = worker_for(store, plugin)
    await store.close()  # every call now raises StoreUnavailableError
    task = asyncio.create_task(worker.run())
    async with asyncio.timeout(5):
        while not any("delivery paused" in m for m in caplog.messages):
            await asyncio.sleep(0.01)
    await store.open()
    async with asyncio.timeout(10):
        while not any("delivery resumed" in m for m in caplog.messages):
            await asyncio.sleep(0.05)
    task.cancel()
    await asyncio.gather(task, return_exceptions=True)
    paused = [r for r in caplog.records if "delivery paused" in r.getMessage()]
    assert [r.levelno for r in paused] == [logging.WARNING]
