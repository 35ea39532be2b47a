"""Periodic pruning of the store: old event bodies, uuids, delivered actions,
traces, timer runs, and the rule state that no rule can ask about any more.

Each pass removes rows in small batches, each its own short job in the store's
queue, behind any waiting webhook, so pruning never holds up ingest.
"""

from __future__ import annotations

import asyncio
import logging
from collections import Counter
from collections.abc import Callable, Iterable, Iterator
from datetime import datetime, timedelta

from genea_automate.clock import Clock
from genea_automate.config.models import ConfigBase
from genea_automate.config.rules import ConditionConfig, RuleConfig
from genea_automate.errors import StoreUnavailableError
from genea_automate.rules.counting import LATE_EVENTS
from genea_automate.store.base import PrunePolicy, Store
from genea_automate.store.outage import StoreOutageLog

logger = logging.getLogger(__name__)

BATCH = 500
FIRST_PASS_DELAY = 60.0  # let a restart catch up on its backlog first
# A local day lasts 25 hours when the clocks go back: a day's first arrival
# can be this much earlier than the day's last event.
LONGEST_DAY = timedelta(hours=25)


class StorePruner:
    """Runs the `retention` and `traces` policies of the current config."""

    def __init__(
        self, store: Store, clock: Clock, config: Callable[[], ConfigBase]
    ) -> None:
        self._store = store
        self._clock = clock
        self._config = config
        self._outage = StoreOutageLog(logger, "store pruning")

    async def run(self) -> None:
        await asyncio.sleep(FIRST_PASS_DELAY)
        while True:
            try:
                await self.prune_once()
                self._outage.succeeded()
            except StoreUnavailableError as exc:
                self._outage.failed(exc, self._interval())
            await asyncio.sleep(self._interval())

    def _interval(self) -> float:
        return self._config().retention.every.total_seconds()

    async def prune_once(self) -> int:
        """One pass over everything the policies allow; returns rows removed."""
        config = self._config()
        now = self._clock.now()
        policy = prune_policy(config, now, await self._state_read_from(now))
        traces_before = now - config.traces.keep_for
        keep_per_rule = config.traces.keep_per_rule
        admin = self._store.admin
        # Traces first: an event's uuid is forgotten only once its trace is gone.
        removed = Counter(
            {
                "traces": await admin.prune_traces(traces_before, keep_per_rule),
                "timer runs": await admin.prune_timer_runs(
                    traces_before, keep_per_rule
                ),
            }
        )
        removed.update(await self._prune_in_batches(policy))
        if any(removed.values()):
            counts = ", ".join(f"{kind} {n}" for kind, n in removed.items() if n)
            logger.info("pruned the store: %s", counts)
        return sum(removed.values())

    async def _state_read_from(self, now: datetime) -> datetime:
        """`now`, or the receipt of the oldest event still to decide: after a
        restart, its backlog reads the rule state of its own time."""
        oldest = await self._store.pending_events(1)
        return min([now, *(event.received_at for event in oldest)])

    async def _prune_in_batches(self, policy: PrunePolicy) -> Counter[str]:
        removed: Counter[str] = Counter()
        while True:
            batch = await self._store.prune(policy, BATCH)
            if not any(batch.values()):
                return removed
            removed.update(batch)


def prune_policy(
    config: ConfigBase, now: datetime, state_read_from: datetime
) -> PrunePolicy:
    """What a pass may remove under `config`, at `now`.

    Rule state is kept as long as an event decided from `state_read_from` on may
    ask about it, however late the event (see `_lateness`): a counted event for
    the longest `count` window, a cooldown for the longest `cooldown`, a first
    arrival for the rest of its local day. The windows are those of the rules at
    prune time, all rules, enabled or not.
    """
    retention = config.retention
    rules: list[RuleConfig] = getattr(config, "rules", [])
    conditions = list(_conditions(rule.if_ for rule in rules))
    late = _lateness(config, rules)
    counted = _longest(c.count.within for c in conditions if c.count is not None)
    cooling = _longest(c.cooldown.for_ for c in conditions if c.cooldown is not None)
    # A timed rule's run made late after a restart asks about its own day.
    grace = _longest(r.on_missed.grace for r in rules if r.on_missed.policy == "run")
    return PrunePolicy(
        events_before=now - retention.events,
        keep_events=retention.max_events,
        dedup_before=now - retention.dedup,
        delivered_before=now - retention.delivered_actions,
        arrivals_before=state_read_from - LONGEST_DAY - max(late, grace),
        counted_before=state_read_from - late - counted,
        cooldowns_before=state_read_from - late - cooling,
    )


def _lateness(config: ConfigBase, rules: list[RuleConfig]) -> timedelta:
    """How late an event may come and still need the rule state of its time:
    the `LATE_EVENTS` that counting allows a buffered event, or the longest
    `max_event_age` if a rule accepts older events."""
    ages = [config.max_event_age, *(rule.max_event_age for rule in rules)]
    return max(LATE_EVENTS, _longest(age for age in ages if age is not None))


def _longest(durations: Iterable[timedelta]) -> timedelta:
    return max(durations, default=timedelta(0))


def _conditions(
    lists: Iterable[Iterable[ConditionConfig]],
) -> Iterator[ConditionConfig]:
    """Every condition of the lists, nested ones included."""
    for conditions in lists:
        for condition in conditions:
            yield condition
            nested = [*(condition.any or []), *(condition.all or [])]
            if condition.not_ is not None:
                nested.append(condition.not_)
            yield from _conditions([nested])
