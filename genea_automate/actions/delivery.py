"""The delivery worker: takes due actions from the outbox and runs their plugins.

Actions with the same ordering key (one MQTT topic, one Slack webhook) go one at
a time and in order; different keys run side by side. A failure is retried with
exponential backoff and jitter, or after the target's Retry-After, and lands in
the dead letters once its attempts are spent, or once a retry would come later
than the step's `not_after`. A target that is known to be down (a broker not
connected) is waited for without using up attempts. Holds (holds.py) pace
rate-limited targets and pause failing ones.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import random
from collections.abc import AsyncIterator, Callable, Mapping
from datetime import datetime, timedelta
from typing import Any

from genea_automate import metrics
from genea_automate.actions.holds import TargetHolds
from genea_automate.clock import Clock
from genea_automate.errors import (
    ActionError,
    StoreUnavailableError,
    TargetDownError,
    plugin_crash_contained,
)
from genea_automate.plugin import ActionPlugin, DeliveryContext
from genea_automate.store.base import OutboxItem, Store
from genea_automate.store.outage import STORE_RETRY_WAIT, StoreOutageLog

logger = logging.getLogger(__name__)

BATCH = 64
# The outbox is read again at least this often, so that an action made due by
# another process (`genea-automate dlq retry`) starts within about a second.
IDLE_WAIT = 1.0
OUTER_TIMEOUT_GRACE = 2.0
TARGET_DOWN_WAIT = 1.0
MIN_ATTEMPT_TIMEOUT = 0.1
# The longest wait before a retry, whatever a target's Retry-After asks: a
# header of 99999999999 s (or year 9999) would otherwise park the action, and
# every later one to that target, for good.
MAX_RETRY_WAIT = 24 * 3600.0


def retry_delay(item: OutboxItem, error: ActionError, jitter: float) -> float:
    """Seconds before the next attempt: the target's word first, else backoff.

    Retry-After is never shortened: trying earlier than a 429 or 503 allows
    only earns another refusal.
    """
    # Retry-After 0 (or a date past) would spend every attempt at once.
    if error.retry_after is not None and error.retry_after > 0:
        return min(error.retry_after, MAX_RETRY_WAIT)
    exponential = item.backoff * 2.0 ** min(max(item.attempts, 0), 64)
    return min(exponential, item.max_backoff, MAX_RETRY_WAIT) * (0.5 + jitter / 2)


class DeliveryWorker:
    def __init__(
        self,
        store: Store,
        plugins: Callable[[], Mapping[str, ActionPlugin[Any]]],
        clock: Clock,
        holds: TargetHolds | None = None,
    ) -> None:
        self._store = store
        self._plugins = plugins
        self._clock = clock
        self._holds = holds or TargetHolds()
        self._wake = asyncio.Event()
        self._busy_keys: set[str] = set()
        self._tasks: set[asyncio.Task[None]] = set()
        self._random = random.Random()
        self._paused = False
        self._outage = StoreOutageLog(logger, "delivery")

    def wake(self) -> None:
        """New actions were queued: look at the outbox now."""
        self._wake.set()

    async def run(self) -> None:
        while True:
            self._wake.clear()
            try:
                await self.run_once()
                wait = await self._seconds_until_next()
                self._outage.succeeded()
            except StoreUnavailableError as exc:
                self._outage.failed(exc, STORE_RETRY_WAIT)
                wait = STORE_RETRY_WAIT
            await self._sleep(wait)

    async def run_once(self) -> int:
        """Start every due action whose target is free; returns how many."""
        if self._paused:
            return 0
        now = self._clock.now()
        held = self._holds.held(now)
        due = await self._store.due_actions(now, BATCH)
        if self._paused:  # paused while the outbox was read
            return 0
        started = 0
        for item in due:
            if item.order_key in self._busy_keys or item.order_key in held:
                continue
            self._busy_keys.add(item.order_key)
            task = asyncio.create_task(self._deliver(item))
            self._tasks.add(task)
            task.add_done_callback(self._tasks.discard)
            started += 1
        return started

    @contextlib.asynccontextmanager
    async def paused(self) -> AsyncIterator[None]:
        """No delivery runs inside: those in flight finish first (a reload)."""
        self._paused = True
        try:
            # Each delivery is bounded by its own timeout, so this wait is too.
            while self._tasks:
                await asyncio.wait(set(self._tasks))
            yield
        finally:
            self._paused = False
            self._wake.set()

    async def drain(self, timeout: float) -> None:
        """Start nothing more; give deliveries in flight `timeout` seconds.

        What is still running then is cancelled; its action stays queued and
        runs again at the next start, so it may arrive twice.
        """
        self._paused = True
        if self._tasks:
            await asyncio.wait(set(self._tasks), timeout=timeout)
        late = list(self._tasks)
        for task in late:
            task.cancel()
        await asyncio.gather(*late, return_exceptions=True)
        if late:
            logger.warning(
                "stopped %d delivery(ies) still running after %gs; they stay "
                "queued and run again at the next start", len(late), timeout,
            )  # fmt: skip

    async def _seconds_until_next(self) -> float | None:
        if self._paused:
            return None
        now = self._clock.now()
        held = self._holds.held(now)
        busy = frozenset(self._busy_keys | held.keys())
        due = await self._store.next_action_due(busy)
        times = [t for t in (due, *held.values()) if t is not None]
        if not times:
            return None
        return max((min(times) - now).total_seconds(), 0.0)

    async def _sleep(self, seconds: float | None) -> None:
        timeout = IDLE_WAIT if seconds is None else min(seconds, IDLE_WAIT)
        # Not wait_for: on Python 3.11 it loses a cancel that comes as the
        # event is set, and stopping the daemon would hang on this loop.
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(timeout):
                await self._wake.wait()

    async def _deliver(self, item: OutboxItem) -> None:
        try:
            await self._attempt_in_time(item)
        except StoreUnavailableError as exc:
            logger.warning(
                "could not record the outcome of %s: %s", item.description, exc
            )
        except Exception as exc:  # a bug here must not resend it forever
            await self._set_aside(item, exc)
        finally:
            self._busy_keys.discard(item.order_key)
            self._wake.set()

    async def _attempt_in_time(self, item: OutboxItem) -> None:
        """Attempt `item`, unless its `not_after` has passed already."""
        now = self._clock.now()
        deadline = item.deadline
        if deadline is None:
            await self._attempt(item, item.timeout)
        elif now >= deadline:
            await self._too_late(item, "it was still waiting", tried=False)
        else:
            # An attempt never runs past the deadline.
            left = (deadline - now).total_seconds()
            timeout = max(min(item.timeout, left), MIN_ATTEMPT_TIMEOUT)
            await self._attempt(item, timeout)

    async def _attempt(self, item: OutboxItem, timeout: float) -> None:
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
                self._paced(plugin, item, timeout), timeout + OUTER_TIMEOUT_GRACE
            )
        except TargetDownError as exc:
            await self._deferred(item, exc)
            return
        except ActionError as exc:
            await self._failed(item, exc)
            return
        except TimeoutError:
            await self._failed(item, ActionError(f"timed out after {timeout:g}s"))
            return
        except Exception as exc:  # a plugin bug must not stop the worker
            logger.exception("action plugin %r raised unexpectedly", item.plugin)
            await self._failed(item, ActionError(f"plugin error: {exc!r}"))
            return
        now = self._clock.now()
        self._holds.succeeded(item.order_key, item.description, now)
        await self._store.action_delivered(item.id, now)
        metrics.action_delivered(item.plugin, (now - item.created_at).total_seconds())
        logger.info(
            "delivered %s for rule %s (event %s)",
            item.description,
            item.rule_id,
            item.event_id,
            extra=_fields(item),
        )

    async def _paced(
        self, plugin: ActionPlugin[Any], item: OutboxItem, timeout: float
    ) -> None:
        # The pace counts from here, inside wait_for's task: a hold taken before
        # it would start early by however long the task waited for its turn.
        self._holds.started(item.order_key, self._clock.now(), plugin.min_interval)
        with plugin_crash_contained(plugin.name):
            await plugin.deliver(item.payload, self._context(item, timeout))

    def _context(self, item: OutboxItem, timeout: float) -> DeliveryContext:
        return DeliveryContext(
            idempotency_key=item.idempotency_key,
            rule_id=item.rule_id,
            event_id=item.event_id,
            attempt=item.attempts + 1,
            timeout=timeout,
            logger=logging.getLogger(f"genea_automate.actions.{item.plugin}"),
            clock=self._clock,
        )

    async def _deferred(self, item: OutboxItem, error: TargetDownError) -> None:
        """The target was down before anything was sent: wait, not counted."""
        wait = error.retry_after or 0.0
        wait = min(wait, MAX_RETRY_WAIT) if wait > 0 else TARGET_DOWN_WAIT
        retry_at = self._clock.now() + timedelta(seconds=wait)
        if self._past_deadline(item, retry_at):
            await self._too_late(item, f"its target is down: {error}", tried=False)
            return
        await self._store.action_deferred(item.id, str(error), retry_at)
        logger.debug("%s waits: %s", item.description, error, extra=_fields(item))

    async def _failed(self, item: OutboxItem, error: ActionError) -> None:
        attempt = item.attempts + 1
        now = self._clock.now()
        if error.retryable:
            self._holds.failed(item.order_key, item.description, now, str(error))
        if error.retryable and attempt < item.max_attempts:
            delay = retry_delay(item, error, self._random.random())
            retry_at = now + timedelta(seconds=delay)
            if self._past_deadline(item, retry_at):
                await self._too_late(
                    item, f"attempt {attempt} failed: {error}", tried=True
                )
                return
            await self._store.action_failed(item.id, str(error), retry_at)
            metrics.ACTION_ATTEMPTS.labels(item.plugin, "retry").inc()
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
        metrics.ACTION_ATTEMPTS.labels(item.plugin, "dead").inc()
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

    async def _set_aside(self, item: OutboxItem, exc: Exception) -> None:
        """Dead-letter an action whose handling failed in the worker itself.

        Left pending, it would be sent again and again without an attempt being
        counted. If the plugin had delivered it already, a retry from the dead
        letters sends it once more: the log says so.
        """
        logger.exception(
            "could not handle the delivery of %s for rule %s (event %s); moved "
            "to the dead letters (it may have been sent already)",
            item.description, item.rule_id, item.event_id, extra=_fields(item),
        )  # fmt: skip
        self._holds.failed(
            item.order_key, item.description, self._clock.now(), repr(exc)
        )
        try:
            await self._store.action_failed(
                item.id, f"delivery failed in genea-automate: {exc!r}", None
            )
        except Exception:
            # The breaker (holds) pauses the target after a few of these.
            logger.exception("could not move %s to the dead letters", item.description)
            return
        metrics.ACTION_ATTEMPTS.labels(item.plugin, "dead").inc()

    @staticmethod
    def _past_deadline(item: OutboxItem, when: datetime) -> bool:
        deadline = item.deadline
        return deadline is not None and when >= deadline

    async def _too_late(self, item: OutboxItem, why: str, *, tried: bool) -> None:
        """Dead-letter an action that may no longer run (`not_after`); `tried`
        when an attempt was just made, which then counts."""
        reason = (
            f"not sent: it would run more than not_after ({item.not_after:g}s) "
            f"after the event of {item.event_time:%Y-%m-%d %H:%M:%S} UTC; {why}"
        )
        if tried:
            await self._store.action_failed(item.id, reason, None)
        else:
            await self._store.action_expired(item.id, reason)
        metrics.ACTION_ATTEMPTS.labels(item.plugin, "dead").inc()
        logger.warning(
            "%s for rule %s (event %s) moved to the dead letters: %s",
            item.description, item.rule_id, item.event_id, reason,
            extra=_fields(item),
        )  # fmt: skip


def _fields(item: OutboxItem) -> dict[str, Any]:
    return {"event_id": item.event_id, "rule_id": item.rule_id}
