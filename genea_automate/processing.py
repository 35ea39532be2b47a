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
from collections.abc import Callable
from typing import Any

from genea_automate.clock import Clock
from genea_automate.errors import StoreUnavailableError
from genea_automate.events.model import Event
from genea_automate.events.normalise import normalise
from genea_automate.rules.engine import RuleEngine
from genea_automate.store.base import Decision, Store, StoredEvent

logger = logging.getLogger(__name__)

BATCH = 100
STORE_TROUBLE_WAIT = 2.0


def event_from_stored(stored: StoredEvent, default_timezone: str) -> Event:
    """The normalised event of a stored body; never raises."""
    try:
        raw: Any = json.loads(stored.body)
    except ValueError:
        raw = {}
    if not isinstance(raw, dict):
        raw = {}
    return normalise(
        raw, received_at=stored.received_at, default_timezone=default_timezone
    )


class EventProcessor:
    def __init__(
        self,
        store: Store,
        clock: Clock,
        engine: Callable[[], RuleEngine],
        default_timezone: Callable[[], str],
        on_actions_queued: Callable[[], None],
    ) -> None:
        self._store = store
        self._clock = clock
        self._engine = engine
        self._default_timezone = default_timezone
        self._on_actions_queued = on_actions_queued
        self._wake = asyncio.Event()

    def wake(self) -> None:
        """A webhook was stored: decide it now."""
        self._wake.set()

    async def run(self) -> None:
        while True:
            self._wake.clear()
            try:
                handled = await self.run_once()
            except StoreUnavailableError as exc:
                logger.warning("event processing paused: store unavailable (%s)", exc)
                await asyncio.sleep(STORE_TROUBLE_WAIT)
                continue
            if not handled:
                await self._wake.wait()

    async def run_once(self) -> int:
        """Decide the pending events, oldest first; returns how many were seen."""
        pending = await self._store.pending_events(BATCH)
        # Queued together, the decisions share the store's next commit; the
        # store still runs them one by one in this order.
        await asyncio.gather(*(self.process(stored) for stored in pending))
        return len(pending)

    async def process(self, stored: StoredEvent) -> Decision | None:
        event = event_from_stored(stored, self._default_timezone())
        engine = self._engine()
        try:
            decision = await self._store.decide(
                stored, lambda state: engine.decide(event, state, self._clock.now())
            )
        except StoreUnavailableError:
            raise
        except Exception as exc:  # a bug must not block every later event
            logger.exception("could not decide event %s; set aside", stored.uuid)
            await self._store.event_failed(stored.seq, repr(exc))
            return None
        if decision is not None:
            _log_decision(stored, event, decision)
            if decision.actions:
                self._on_actions_queued()
        return decision


def _log_decision(stored: StoredEvent, event: Event, decision: Decision) -> None:
    fields = {"event_id": event.id, "kind": event.kind, "endpoint": stored.endpoint}
    head = f"event {event.id} ({event.kind}) on endpoint {stored.endpoint}"
    if not decision.fired:
        logger.info("%s: no rule fired", head, extra=fields)
    else:
        logger.info("%s: fired %s", head, ", ".join(decision.fired), extra=fields)
    for rule_id in decision.fired:
        queued = sum(1 for action in decision.actions if action.rule_id == rule_id)
        logging.getLogger(f"genea_automate.rules.{rule_id}").info(
            "rule %s fired for event %s: %d action(s) queued",
            rule_id, event.id, queued, extra={**fields, "rule_id": rule_id},
        )
    for rule in decision.trace.get("rules", []):
        for error in rule.get("errors", []):
            logging.getLogger(f"genea_automate.rules.{rule['rule']}").error(
                "rule %s could not render for event %s: %s",
                rule["rule"], event.id, error, extra={**fields, "rule_id": rule["rule"]},
            )
