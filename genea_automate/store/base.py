"""The storage interface every backend implements, and the records it moves."""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Protocol


@dataclass(frozen=True, slots=True)
class StoredEvent:
    """A webhook body exactly as received and acknowledged."""

    seq: int
    endpoint: str
    uuid: str
    body: bytes
    received_at: datetime


@dataclass(frozen=True, slots=True)
class FirstArrival:
    """The first arrival recorded for one scope key on one day."""

    event_id: str
    time: datetime
    who: str | None


@dataclass(frozen=True, slots=True)
class ActionToQueue:
    """One rendered action step, queued in the outbox with its decision."""

    rule_id: str
    step: str
    plugin: str
    payload: dict[str, Any]
    order_key: str
    description: str
    max_attempts: int
    timeout: float
    backoff: float
    max_backoff: float

    def idempotency_key(self, event_id: str) -> str:
        return f"{event_id}:{self.rule_id}:{self.step}"


@dataclass(frozen=True, slots=True)
class Decision:
    """What the rules decided for one event; committed in one transaction."""

    kind: str
    fired: list[str] = field(default_factory=list)
    actions: list[ActionToQueue] = field(default_factory=list)
    trace: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class OutboxItem:
    """An action waiting for delivery."""

    id: int
    event_id: str
    rule_id: str
    step: str
    plugin: str
    payload: dict[str, Any]
    order_key: str
    description: str
    idempotency_key: str
    attempts: int
    max_attempts: int
    timeout: float
    backoff: float
    max_backoff: float
    created_at: datetime


class StateTx(Protocol):
    """Rule state, read and written inside the transaction of one decision."""

    def claim_first_arrival(
        self, key: str, event_id: str, time: datetime, who: str | None
    ) -> FirstArrival:
        """Record this arrival as the first for `key` unless one is recorded.

        Returns the record that stands afterwards: this event's, or the earlier one.
        """
        ...


Decide = Callable[[StateTx], Decision]


class Store(ABC):
    """Every method raises StoreUnavailableError when the store cannot be used."""

    @abstractmethod
    async def open(self) -> None: ...

    @abstractmethod
    async def close(self) -> None: ...

    @abstractmethod
    async def ingest(
        self, endpoint: str, uuid: str, body: bytes, received_at: datetime
    ) -> bool:
        """Store a webhook durably; False when this uuid was already stored."""

    @abstractmethod
    async def pending_events(self, limit: int) -> list[StoredEvent]:
        """Events acknowledged but not yet decided, oldest first."""

    @abstractmethod
    async def decide(self, event: StoredEvent, decide: Decide) -> Decision | None:
        """Run `decide` and commit its state, actions and trace atomically.

        None when the event was no longer pending (another worker decided it).
        """

    @abstractmethod
    async def event_failed(self, seq: int, error: str) -> None:
        """Set aside an event whose decision raised, so it is not retried forever."""

    @abstractmethod
    async def due_actions(self, now: datetime, limit: int) -> list[OutboxItem]:
        """The oldest waiting action of each ordering key, if it is due."""

    @abstractmethod
    async def next_action_due(self, busy: frozenset[str]) -> datetime | None:
        """When the next action of a key not in `busy` is due; None if none waits."""

    @abstractmethod
    async def action_delivered(self, item_id: int, at: datetime) -> None: ...

    @abstractmethod
    async def action_failed(
        self, item_id: int, error: str, retry_at: datetime | None
    ) -> None:
        """Count a failed attempt; retry_at None sends it to the dead letters."""

    @abstractmethod
    async def check_writable(self) -> None:
        """Raise StoreUnavailableError unless a write would succeed now."""
