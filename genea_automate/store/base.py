"""The storage interface every backend implements, and the records it moves."""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any, Protocol, TypeVar

if TYPE_CHECKING:
    from genea_automate.store.admin import StoreAdmin

T = TypeVar("T")


@dataclass(frozen=True, slots=True)
class EventRef:
    """Which event rule state and queued actions belong to.

    Genea's uuids are unique per webhook, not across webhooks: two Genea
    accounts, or the small decimal uuids of audit events, can bring the same
    uuid to two endpoints, and those are two events. So an event is named by
    its endpoint and its uuid.
    """

    id: str  # the event's uuid, or a timed run's id; what traces and logs show
    # None for a timed run, and for a wait begun before endpoints were recorded.
    endpoint: str | None = None

    @property
    def key(self) -> str:
        """`<endpoint>:<id>`, or the id alone when there is no endpoint.

        Rule state and idempotency keys are made of it.
        """
        return self.id if self.endpoint is None else f"{self.endpoint}:{self.id}"


@dataclass(frozen=True, slots=True)
class StoredEvent:
    """A webhook body exactly as received and acknowledged."""

    seq: int
    endpoint: str
    uuid: str
    body: bytes
    received_at: datetime

    @property
    def ref(self) -> EventRef:
        return EventRef(self.uuid, self.endpoint)


@dataclass(frozen=True, slots=True)
class FirstArrival:
    """The first arrival recorded for one scope key on one day."""

    event_id: str  # the EventRef.key of the event that arrived
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
    not_after: float | None = None
    # The event the step belongs to, when not the one being decided: the steps
    # after a wait_for belong to the event that started the wait.
    event: EventRef | None = None

    def idempotency_key(self, event: EventRef) -> str:
        """`<endpoint>:<event id>:<rule id>:<step>`, unique in the outbox.

        A timed run's, and a wait's begun before endpoints were recorded, have
        no endpoint part; the wait's keeps the keys its earlier steps had.
        """
        return f"{event.key}:{self.rule_id}:{self.step}"


@dataclass(frozen=True, slots=True)
class Decision:
    """What the rules decided for one event; committed in one transaction."""

    kind: str
    fired: list[str] = field(default_factory=list)
    actions: list[ActionToQueue] = field(default_factory=list)
    trace: dict[str, Any] = field(default_factory=dict)
    # The event's own time, from which `not_after` counts; else the receipt time.
    event_time: datetime | None = None
    # How many waits of wait_for steps began: the timers must wake for them.
    waits_begun: int = 0


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
    event_time: datetime
    not_after: float | None

    @property
    def deadline(self) -> datetime | None:
        """When delivering becomes too late (`not_after` after the event)."""
        if self.not_after is None:
            return None
        try:
            return self.event_time + timedelta(seconds=self.not_after)
        except OverflowError:  # an event dated near the year 9999
            return None


@dataclass(frozen=True, slots=True)
class DeadLetter:
    """An action that failed for good, with the reason and when it was given up."""

    item: OutboxItem
    error: str
    died_at: datetime


@dataclass(frozen=True, slots=True)
class PrunePolicy:
    """What a pruning pass may remove; pending work is never touched."""

    events_before: datetime  # bodies of events received earlier
    keep_events: int  # ...and of all but the newest this many
    dedup_before: datetime  # uuids received earlier are forgotten after that
    delivered_before: datetime  # delivered actions that finished earlier
    # Rule state no rule can ask about any more (see retention.py for how long
    # each is kept): first arrivals, counted events and cooldowns earlier.
    arrivals_before: datetime
    counted_before: datetime
    cooldowns_before: datetime


@dataclass(frozen=True, slots=True)
class Wait:
    """A `wait_for` step waiting for a later event (see rules/waits.py)."""

    rule_id: str
    started_by: EventRef  # the event that started the wait
    step: int  # the index of the wait_for step in the rule's `then`
    kinds: tuple[str, ...]  # the kind patterns awaited
    key: str  # the `same` scope and value, e.g. "door:<uuid>"
    not_before: datetime  # events earlier than this (event time) do not end it
    deadline: datetime
    event: dict[str, Any]  # the starting event's fields, to render later steps
    fingerprint: str  # of the rule's steps, to notice a rule that changed
    id: int = 0  # given by the store


class StateTx(Protocol):
    """Rule state, read and written inside one transaction: an event's decision
    or a pass of the timers."""

    def claim_first_arrival(
        self, key: str, event_key: str, time: datetime, who: str | None
    ) -> FirstArrival:
        """Record this arrival as the first for `key` unless one is recorded.

        `event_key` is the arriving event's EventRef.key. Returns the record
        that stands afterwards: this event's, or the earlier one.
        """
        ...

    def first_arrival(self, key: str) -> FirstArrival | None: ...

    def record_event(
        self, key: str, event_key: str, time: datetime, *, forget_before: datetime
    ) -> None:
        """Count an event (by its EventRef.key) under `key`, once; forget the
        events of `key` before `forget_before`."""
        ...

    def event_times(self, key: str, since: datetime, until: datetime) -> list[datetime]:
        """Times of the events counted under `key` from `since` to `until`, in order."""
        ...

    def last_fired(self, key: str) -> datetime | None: ...

    def set_last_fired(self, key: str, time: datetime) -> None:
        """Keep the later of the recorded time and `time`."""
        ...

    def add_wait(self, wait: Wait) -> None: ...

    def waits_for(self, keys: Sequence[str], now: datetime) -> list[Wait]:
        """Pending waits on any of `keys` with a deadline after `now`, oldest first."""
        ...

    def due_waits(self, now: datetime) -> list[Wait]:
        """Pending waits whose deadline is not after `now`, earliest first."""
        ...

    def next_deadline(self) -> datetime | None:
        """The earliest deadline of a pending wait."""
        ...

    def end_wait(self, wait_id: int) -> None:
        """Remove a wait that ended; its trace tells how."""
        ...

    def handled_until(self, rule_id: str) -> datetime | None:
        """Up to when a timed rule's runs were handled (run or skipped)."""
        ...

    def set_handled_until(self, rule_id: str, at: datetime) -> None: ...

    def queue_actions(
        self, actions: Sequence[ActionToQueue], at: datetime, event_time: datetime
    ) -> None:
        """Queue actions outside an event's decision; each names its `event`."""
        ...

    def record_run(self, rule_id: str, ref: str, at: datetime, trace: Any) -> None:
        """Keep the trace of timer work: a wait that ended, or a timed run."""
        ...


Decide = Callable[[StateTx], Decision]


class Store(ABC):
    """Every method raises StoreUnavailableError when the store cannot be used."""

    def check_can_open(self) -> None:
        """Raise StoreUnavailableError now for what would make `open` fail."""

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
    async def transact(self, work: Callable[[StateTx], T]) -> T:
        """Run `work` on the rule state in one transaction, and commit it."""

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
    async def action_expired(self, item_id: int, reason: str) -> None:
        """Send to the dead letters an action not tried now (too late to try):
        no attempt is counted."""

    @abstractmethod
    async def action_deferred(
        self, item_id: int, reason: str, retry_at: datetime
    ) -> None:
        """Put off an attempt that could not start; it does not count."""

    @abstractmethod
    async def dead_letters(self, limit: int) -> list[DeadLetter]:
        """The dead letters, oldest first."""

    @abstractmethod
    async def dead_letter(self, item_id: int) -> DeadLetter | None: ...

    @abstractmethod
    async def retry_dead(self, item_ids: Sequence[int], now: datetime) -> list[int]:
        """Make dead letters due again with fresh attempts; returns those found.

        Each keeps its id, so it goes ahead of later actions with its ordering
        key, and its idempotency key.
        """

    @abstractmethod
    async def drop_dead(self, item_id: int) -> bool:
        """Delete one dead letter; False when there is none with that id."""

    @abstractmethod
    async def prune(self, policy: PrunePolicy, limit: int) -> dict[str, int]:
        """Remove at most `limit` rows of each kind; returns how many went, per
        kind ("event bodies", "first arrivals"...), as the log names them."""

    @property
    @abstractmethod
    def admin(self) -> StoreAdmin:
        """Queries and upkeep for operators: traces, past events, replay."""

    @abstractmethod
    async def check_writable(self) -> None:
        """Raise StoreUnavailableError unless a write would succeed now."""
