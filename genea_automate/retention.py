"""Periodic pruning of the store: old event bodies, uuids, delivered actions, traces.

Each pass removes rows in small batches, each its own short job in the store's
queue, behind any waiting webhook, so pruning never holds up ingest.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable

from genea_automate.clock import Clock
from genea_automate.config.models import ConfigBase
from genea_automate.errors import StoreUnavailableError
from genea_automate.store.base import PrunePolicy, Store
from genea_automate.store.outage import StoreOutageLog

logger = logging.getLogger(__name__)

BATCH = 500
FIRST_PASS_DELAY = 60.0  # let a restart catch up on its backlog first


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
        retention = config.retention
        policy = PrunePolicy(
            events_before=now - retention.events,
            keep_events=retention.max_events,
            dedup_before=now - retention.dedup,
            delivered_before=now - retention.delivered_actions,
        )
        # Traces first: an event's uuid is forgotten only once its trace is gone.
        traces = await self._store.admin.prune_traces(
            now - config.traces.keep_for, config.traces.keep_per_rule
        )
        removed = 0
        while batch := await self._store.prune(policy, BATCH):
            removed += batch
        if removed or traces:
            logger.info(
                "pruned the store: %d event, uuid and action row(s), %d trace(s)",
                removed, traces,
            )  # fmt: skip
        return removed + traces
