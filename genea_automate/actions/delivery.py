"""The delivery worker: takes due actions from the outbox and runs their plugins.

Actions with the same ordering key (one MQTT topic, one Slack webhook) go one at
a time and in order; different keys run side by side. A failure is retried with
exponential backoff and jitter, or after the target's Retry-After, and lands in
the dead letters once its attempts are spent.
"""

from __future__ import annotations

import asyncio
import logging
import random
from collections.abc import Callable, Mapping
from datetime import timedelta
from typing import Any

from genea_automate.clock import Clock
from genea_automate.errors import ActionError, StoreUnavailableError
from genea_automate.plugin import ActionPlugin, DeliveryContext
from genea_automate.store.base import OutboxItem, Store

logger = logging.getLogger(__name__)

BATCH = 64
IDLE_WAIT = 30.0
STORE_TROUBLE_WAIT = 2.0
OUTER_TIMEOUT_GRACE = 2.0


def retry_delay(item: OutboxItem, error: ActionError, jitter: float) -> float:
    """Seconds before the next attempt: the target's word first, else backoff."""
    if error.retry_after is not None:
        return min(max(error.retry_after, 0.0), item.max_backoff)
    exponential = item.backoff * 2 ** max(item.attempts, 0)
    return min(exponential, item.max_backoff) * (0.5 + jitter / 2)


class DeliveryWorker:
    def __init__(
        self,
        store: Store,
        plugins: Callable[[], Mapping[str, ActionPlugin[Any]]],
        clock: Clock,
    ) -> None:
        self._store = store
        self._plugins = plugins
        self._clock = clock
        self._wake = asyncio.Event()
        self._busy_keys: set[str] = set()
        self._tasks: set[asyncio.Task[None]] = set()
        self._random = random.Random()

    def wake(self) -> None:
        """New actions were queued: look at the outbox now."""
        self._wake.set()

    async def run(self) -> None:
        while True:
            self._wake.clear()
            try:
                await self.run_once()
                wait = await self._seconds_until_next()
            except StoreUnavailableError as exc:
                logger.warning("delivery paused: store unavailable (%s)", exc)
                wait = STORE_TROUBLE_WAIT
            await self._sleep(wait)

    async def run_once(self) -> int:
        """Start every due action whose ordering key is free; returns how many."""
        due = await self._store.due_actions(self._clock.now(), BATCH)
        started = 0
        for item in due:
            if item.order_key in self._busy_keys:
                continue
            self._busy_keys.add(item.order_key)
            task = asyncio.create_task(self._deliver(item))
            self._tasks.add(task)
            task.add_done_callback(self._tasks.discard)
            started += 1
        return started

    async def drain(self, timeout: float) -> None:
        """Let deliveries in flight finish, up to `timeout` seconds."""
        if self._tasks:
            await asyncio.wait(set(self._tasks), timeout=timeout)

    async def _seconds_until_next(self) -> float | None:
        due = await self._store.next_action_due(frozenset(self._busy_keys))
        if due is None:
            return None
        return max((due - self._clock.now()).total_seconds(), 0.0)

    async def _sleep(self, seconds: float | None) -> None:
        timeout = IDLE_WAIT if seconds is None else min(seconds, IDLE_WAIT)
        try:
            await asyncio.wait_for(self._wake.wait(), timeout=timeout)
        except TimeoutError:
            pass

    async def _deliver(self, item: OutboxItem) -> None:
        try:
            await self._attempt(item)
        except StoreUnavailableError as exc:
            logger.warning(
                "could not record the outcome of %s: %s", item.description, exc
            )
        finally:
            self._busy_keys.discard(item.order_key)
            self._wake.set()

    async def _attempt(self, item: OutboxItem) -> None:
        plugin = self._plugins().get(item.plugin)
        if plugin is None:
            error = ActionError(
                f"no action plugin named {item.plugin!r} is loaded", retryable=False
            )
            await self._failed(item, error)
            return
        try:
            # The plugin honours ctx.timeout with a clearer message; this outer
            # bound only catches a plugin that does not.
            await asyncio.wait_for(
                plugin.deliver(item.payload, self._context(item)),
                item.timeout + OUTER_TIMEOUT_GRACE,
            )
        except ActionError as exc:
            await self._failed(item, exc)
            return
        except TimeoutError:
            await self._failed(item, ActionError(f"timed out after {item.timeout:g}s"))
            return
        except Exception as exc:  # a plugin bug must not stop the worker
            logger.exception("action plugin %r raised unexpectedly", item.plugin)
            await self._failed(item, ActionError(f"plugin error: {exc!r}"))
            return
        await self._store.action_delivered(item.id, self._clock.now())
        logger.info(
            "delivered %s for rule %s (event %s)",
            item.description,
            item.rule_id,
            item.event_id,
            extra=_fields(item),
        )

    def _context(self, item: OutboxItem) -> DeliveryContext:
        return DeliveryContext(
            idempotency_key=item.idempotency_key,
            rule_id=item.rule_id,
            event_id=item.event_id,
            attempt=item.attempts + 1,
            timeout=item.timeout,
            logger=logging.getLogger(f"genea_automate.actions.{item.plugin}"),
            clock=self._clock,
        )

    async def _failed(self, item: OutboxItem, error: ActionError) -> None:
        attempt = item.attempts + 1
        if error.retryable and attempt < item.max_attempts:
            delay = retry_delay(item, error, self._random.random())
            retry_at = self._clock.now() + timedelta(seconds=delay)
            await self._store.action_failed(item.id, str(error), retry_at)
            logger.warning(
                "%s for rule %s failed (attempt %d of %d): %s; retrying in %.1fs",
                item.description,
                item.rule_id,
                attempt,
                item.max_attempts,
                error,
                delay,
                extra=_fields(item),
            )
            return
        await self._store.action_failed(item.id, str(error), None)
        why = "gave up" if error.retryable else "cannot succeed"
        logger.error(
            "%s for rule %s (event %s) %s after %d attempt(s): %s; "
            "moved to the dead letters",
            item.description,
            item.rule_id,
            item.event_id,
            why,
            attempt,
            error,
            extra=_fields(item),
        )


def _fields(item: OutboxItem) -> dict[str, Any]:
    return {"event_id": item.event_id, "rule_id": item.rule_id}
