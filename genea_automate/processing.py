"""The event processor: stored webhooks in, decisions and queued actions out.

Events are decided one at a time, in the order they were acknowledged, each in
one transaction with the state it reads and the actions it queues. A crash
before the commit leaves the event pending, so the next start decides it again
from scratch; a crash after it leaves nothing to redo. Either way a rule fires
at most once per event.
"""

from __future__ import annotations

import asyncio
import json
import logging
from collections.abc import Callable, Mapping
from typing import Any

from genea_automate import metrics
from genea_automate.clock import Clock
from genea_automate.errors import StoreBrokenError, StoreUnavailableError
from genea_automate.events.model import Event
from genea_automate.events.normalise import normalise
from genea_automate.rules.engine import RuleEngine
from genea_automate.store.base import Decision, Store, StoredEvent
from genea_automate.store.outage import STORE_RETRY_WAIT, StoreOutageLog

logger = logging.getLogger(__name__)

BATCH = 100
# The most webhook bytes decided together. Each body is parsed before the first
# decision commits, and a 1 MB payload of many small objects takes some 20 MB
# once parsed: a backlog of big ones must not fill the memory.
BATCH_BYTES = 4 * 1024 * 1024


def _within_bytes(events: list[StoredEvent], limit: int) -> list[StoredEvent]:
    """The first events whose bodies fit in `limit` bytes, and never none."""
    total = 0
    for count, stored in enumerate(events):
        total += len(stored.body)
        if total > limit and count:
            return events[:count]
    return events


def event_from_stored(stored: StoredEvent, default_timezone: str) -> Event:
    """The normalised event of a stored body; never raises."""
    try:
        raw: Any = json.loads(stored.body)
    except (ValueError, RecursionError):
        raw = {}
    if not isinstance(raw, dict):
        raw = {}
    if b"\\ud" in stored.body.lower():
        # JSON may carry a lone UTF-16 surrogate (JS's JSON.stringify writes
        # them); no UTF-8 sink, SQLite included, accepts one.
        try:
            raw = _without_lone_surrogates(raw)
        except RecursionError:
            pass  # too deep to repair; sinks refuse the odd value, not the event
    return normalise(
        raw, received_at=stored.received_at, default_timezone=default_timezone
    )


def _without_lone_surrogates(value: Any) -> Any:
    if isinstance(value, str):
        return value.encode("utf-16", "surrogatepass").decode("utf-16", "replace")
    if isinstance(value, dict):
        return {
            _without_lone_surrogates(k): _without_lone_surrogates(v)
            for k, v in value.items()
        }
    if isinstance(value, list):
        return [_without_lone_surrogates(item) for item in value]
    return value


class EventProcessor:
    def __init__(
        self,
        store: Store,
        clock: Clock,
        engine: Callable[[], RuleEngine],
        default_timezone: Callable[[], str],
        on_actions_queued: Callable[[], None],
        on_waits_begun: Callable[[], None] = lambda: None,
        *,
        on_idle: Callable[[], None] = lambda: None,
        count_decision: Callable[[str, Mapping[str, Any]], None] = (
            metrics.decision_made
        ),
    ) -> None:
        self._store = store
        self._clock = clock
        self._engine = engine
        self._default_timezone = default_timezone
        self._on_actions_queued = on_actions_queued
        self._on_waits_begun = on_waits_begun
        self._on_idle = on_idle
        self._count_decision = count_decision
        self._wake = asyncio.Event()
        # Set once nothing is pending: the events stored before a restart are decided.
        self.caught_up = asyncio.Event()
        self._outage = StoreOutageLog(logger, "event processing")
        self._stopping = False

    def wake(self) -> None:
        """A webhook was stored: decide it now."""
        self._wake.set()

    def stop_soon(self) -> None:
        """End `run` once the batch in hand is decided."""
        self._stopping = True
        self._wake.set()

    async def run(self) -> None:
        while not self._stopping:
            self._wake.clear()
            try:
                handled = await self.run_once()
            except StoreBrokenError:
                raise  # no wait mends it; the deciding process is started anew
            except StoreUnavailableError as exc:
                self._outage.failed(exc, STORE_RETRY_WAIT)
                await asyncio.sleep(STORE_RETRY_WAIT)
                continue
            self._outage.succeeded()
            if not handled:
                self.caught_up.set()
                self._on_idle()
                await self._wake.wait()

    async def run_once(self) -> int:
        """Decide the pending events, oldest first; returns how many were seen."""
        pending = _within_bytes(await self._store.pending_events(BATCH), BATCH_BYTES)
        # Queued together, the decisions share the store's next commits (as many
        # as its batch time lets into each); it still runs them one by one in
        # this order.
        await asyncio.gather(*(self.process(stored) for stored in pending))
        return len(pending)

    async def process(self, stored: StoredEvent) -> Decision | None:
        event = event_from_stored(stored, self._default_timezone())
        engine = self._engine()
        try:
            decision = await self._store.decide(
                stored,
                lambda state: engine.decide(
                    event, stored.ref, state, self._clock.now()
                ),
            )
        except StoreUnavailableError:
            raise
        except Exception as exc:  # a bug must not block every later event
            logger.exception("could not decide event %s; set aside", stored.uuid)
            await self._store.event_failed(stored.seq, repr(exc))
            return None
        if decision is not None:
            _log_decision(stored, event, decision)
            self._count_decision(decision.kind, decision.trace)
            if decision.actions:
                self._on_actions_queued()
            if decision.waits_begun:
                self._on_waits_begun()
        return decision


def _log_decision(stored: StoredEvent, event: Event, decision: Decision) -> None:
    fields = {"event_id": event.id, "kind": event.kind, "endpoint": stored.endpoint}
    failed = [r for r in decision.trace.get("rules", []) if r.get("errors")]
    for rule in failed:
        for error in rule["errors"]:
            logging.getLogger(f"genea_automate.rules.{rule['rule']}").error(
                "rule %s matched event %s but could not render %s; "
                "fix the template and replay the event",
                rule["rule"],
                event.id,
                error,
                extra={**fields, "rule_id": rule["rule"]},
            )
    outcome = (
        f"fired {', '.join(decision.fired)}" if decision.fired else "no rule fired"
    )
    if failed:
        outcome += f"; failed: {', '.join(rule['rule'] for rule in failed)}"
    logger.info(
        "event %s (%s) on endpoint %s: %s",
        event.id,
        event.kind,
        stored.endpoint,
        outcome,
        extra=fields,
    )
    for rule_id in decision.fired:
        queued = sum(
            1
            for action in decision.actions
            if action.rule_id == rule_id and action.event is None
        )
        logging.getLogger(f"genea_automate.rules.{rule_id}").info(
            "rule %s fired for event %s: %d action(s) queued",
            rule_id,
            event.id,
            queued,
            extra={**fields, "rule_id": rule_id},
        )
    for wait in decision.trace.get("waits", []):
        logging.getLogger(f"genea_automate.rules.{wait['rule']}").info(
            "rule %s: event %s ended the wait begun by event %s (%s); "
            "%d action(s) queued",
            wait["rule"],
            event.id,
            wait["started_by"],
            wait["outcome"],
            len(wait.get("actions", [])),
            extra={**fields, "rule_id": wait["rule"]},
        )
