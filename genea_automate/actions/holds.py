"""Holds on delivery targets: pacing, and a circuit breaker for failing ones.

A target is an ordering key (one MQTT topic, one Slack webhook, one HTTP host).
Each action has its own retry time in the store; a hold is a second, shared
"not before" for every action of a target. Holds live in memory only: after a
restart a target starts unheld, which costs at most one early attempt.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import datetime, timedelta

logger = logging.getLogger(__name__)

BREAKER_FAILURES = 5
BREAKER_COOL_OFF = timedelta(seconds=30)


@dataclass(slots=True)
class _Circuit:
    failures: int = 0
    open_until: datetime | None = None
    opened_at: datetime | None = None


class TargetHolds:
    """When each target may be tried next, beyond its actions' own retry times.

    Pacing: a plugin with `min_interval` gets that gap between the starts of
    two deliveries to one target. Circuit breaker: after `failures` retryable
    failures in a row, a target is left alone for `cool_off`; then one action
    is tried, and the first success closes the circuit again.
    """

    def __init__(
        self,
        failures: int = BREAKER_FAILURES,
        cool_off: timedelta = BREAKER_COOL_OFF,
    ) -> None:
        self._failures = failures
        self._cool_off = cool_off
        self._paced: dict[str, datetime] = {}
        self._circuits: dict[str, _Circuit] = {}

    def until(self, key: str) -> datetime | None:
        """The time before which `key` must not be tried, if any."""
        circuit = self._circuits.get(key)
        times = [self._paced.get(key), circuit.open_until if circuit else None]
        held = [time for time in times if time is not None]
        return max(held) if held else None

    def held(self, now: datetime) -> dict[str, datetime]:
        """Every target held beyond `now`, with the end of its hold."""
        self._paced = {k: t for k, t in self._paced.items() if t > now}
        keys = set(self._paced) | set(self._circuits)
        holds = {key: self.until(key) for key in keys}
        return {key: until for key, until in holds.items() if until and until > now}

    def started(self, key: str, now: datetime, min_interval: float) -> None:
        """A delivery to `key` starts now."""
        if min_interval > 0:
            self._paced[key] = now + timedelta(seconds=min_interval)

    def succeeded(self, key: str, description: str, now: datetime) -> None:
        circuit = self._circuits.pop(key, None)
        if circuit is not None and circuit.opened_at is not None:
            paused = (now - circuit.opened_at).total_seconds()
            logger.info(
                "deliveries to %s resumed: it answered again after %.0fs",
                description, paused,
            )  # fmt: skip

    def failed(self, key: str, description: str, now: datetime, error: str) -> None:
        """A retryable failure; the one that makes `failures` opens the circuit."""
        circuit = self._circuits.setdefault(key, _Circuit())
        circuit.failures += 1
        if circuit.failures < self._failures:
            return
        circuit.open_until = now + self._cool_off
        if circuit.opened_at is None:  # one warning per outage, not per cool-off
            circuit.opened_at = now
            logger.warning(
                "deliveries to %s paused for %.0fs after %d failures in a row "
                "(last: %s); trying one again after each pause",
                description, self._cool_off.total_seconds(), circuit.failures, error,
            )  # fmt: skip
