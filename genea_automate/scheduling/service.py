"""The timer loop: sleep until the next deadline or a wake-up, then fire.

Every time decision reads the injected clock; tests call `run_due` with a
frozen one instead of running the loop.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from datetime import datetime

from genea_automate.clock import Clock
from genea_automate.errors import StoreUnavailableError
from genea_automate.rules.engine import RuleEngine
from genea_automate.scheduling.firing import TimerOutcome, fire_due, next_due
from genea_automate.store.base import Store
from genea_automate.store.outage import STORE_RETRY_WAIT

logger = logging.getLogger(__name__)

# Look again at least this often: the wall clock may jump (a suspended host).
IDLE_WAIT = 60.0
_QUIET = frozenset({"timed_out", "ran", "not met"})


class TimerService:
    """Fires the waits and timed rules of the current engine when they are due.

    `ready` is awaited before the first pass: the daemon lets the events that
    were stored before a restart be decided first, since one of them may end a
    wait that would otherwise time out.
    """

    def __init__(
        self,
        store: Store,
        clock: Clock,
        engine: Callable[[], RuleEngine],
        on_actions_queued: Callable[[], None],
        ready: Callable[[], Awaitable[object]] | None = None,
    ) -> None:
        self._store = store
        self._clock = clock
        self._engine = engine
        self._on_actions_queued = on_actions_queued
        self._ready = ready
        self._wake = asyncio.Event()
        # Deadlines up to this moment passed while no daemon was running.
        self.started_at = clock.now()

    def wake(self) -> None:
        """A wait began, or the rules changed: look at the deadlines again."""
        self._wake.set()

    async def run(self) -> None:
        if self._ready is not None:
            await self._ready()
        started = False
        while True:
            self._wake.clear()
            try:
                await self.run_due(self._clock.now())
                wait = await self._seconds_until_next()
            except StoreUnavailableError as exc:
                logger.warning("timers paused: store unavailable (%s)", exc)
                wait = STORE_RETRY_WAIT
            else:
                if not started:
                    logger.info("timers started: every deadline until now is handled")
                    started = True
            await self._sleep(wait)

    async def run_due(self, now: datetime) -> list[TimerOutcome]:
        """Handle every deadline up to `now`; returns what was done."""
        engine = self._engine()
        outcomes = await self._store.transact(
            lambda state: fire_due(engine, state, now, self.started_at)
        )
        for outcome in outcomes:
            _log(outcome)
        if any(outcome.queued for outcome in outcomes):
            self._on_actions_queued()
        return outcomes

    async def next_due(self) -> datetime | None:
        engine, now = self._engine(), self._clock.now()
        return await self._store.transact(lambda state: next_due(engine, state, now))

    async def _seconds_until_next(self) -> float:
        due = await self.next_due()
        if due is None:
            return IDLE_WAIT
        seconds = (due - self._clock.now()).total_seconds()
        return min(max(seconds, 0.0), IDLE_WAIT)

    async def _sleep(self, seconds: float) -> None:
        try:
            await asyncio.wait_for(self._wake.wait(), timeout=seconds)
        except TimeoutError:
            pass


def _log(outcome: TimerOutcome) -> None:
    subject = (
        f"the wait begun by event {outcome.ref}"
        if outcome.what == "wait"
        else f"run {outcome.ref}"
    )
    logging.getLogger(f"genea_automate.rules.{outcome.rule_id}").log(
        logging.INFO if outcome.outcome in _QUIET else logging.WARNING,
        "rule %s: %s %s: %s; %d action(s) queued",
        outcome.rule_id,
        subject,
        outcome.outcome.replace("_", " "),
        outcome.note,
        outcome.queued,
        extra={"rule_id": outcome.rule_id, "event_id": outcome.ref},
    )
