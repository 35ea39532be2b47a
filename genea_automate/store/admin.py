"""What operators and their tools ask of a store: traces, past events and actions.

Every backend offers these through `Store.admin`. Reads must not hold up the
webhook path, so a backend runs them apart from its writer where it can. (Dead
letters are the Store's own methods: the delivery worker needs them too.)
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from genea_automate.store.base import StoredEvent


@dataclass(frozen=True, slots=True)
class EventQuery:
    """Filters for stored events; text filters match part of a name, any case.

    `kind` takes the kind and the kinds below it (`access.denied` takes
    `access.denied.expired`). `rule` keeps events whose `when` that rule matched,
    whether or not it then fired.
    """

    event_id: str | None = None
    kind: str | None = None
    location: str | None = None
    door: str | None = None
    user: str | None = None
    rule: str | None = None
    since: datetime | None = None
    limit: int = 50


@dataclass(frozen=True, slots=True)
class EventRecord:
    """A stored event and the trace of its decision (None until decided)."""

    seq: int
    uuid: str
    endpoint: str
    received_at: datetime
    state: str
    kind: str | None
    decided_at: datetime | None
    trace: dict[str, Any] | None


@dataclass(frozen=True, slots=True)
class PastEvent:
    """A stored event as replay needs it: its body and when it was decided."""

    stored: StoredEvent
    state: str
    decided_at: datetime | None
    trace: dict[str, Any] | None


@dataclass(frozen=True, slots=True)
class ActionRecord:
    """An action as the outbox recorded it, delivered or not."""

    id: int
    event_id: str
    rule_id: str
    step: str
    plugin: str
    payload: dict[str, Any]
    description: str
    state: str
    attempts: int
    max_attempts: int
    last_error: str | None
    created_at: datetime
    finished_at: datetime | None


@dataclass(frozen=True, slots=True)
class RuleActivity:
    """When a rule last fired, and its latest failure (render or delivery)."""

    rule_id: str
    last_fired: datetime | None = None
    last_fired_event: str | None = None
    last_error: str | None = None
    last_error_at: datetime | None = None


@dataclass(frozen=True, slots=True)
class OutboxCounts:
    """How many actions are in each state."""

    by_state: dict[str, int] = field(default_factory=dict)

    @property
    def pending(self) -> int:
        return self.by_state.get("pending", 0)

    @property
    def dead(self) -> int:
        return self.by_state.get("dead", 0)


class StoreAdmin(ABC):
    """Every method raises StoreUnavailableError when the store cannot be used."""

    @abstractmethod
    async def events(self, query: EventQuery) -> list[EventRecord]:
        """Stored events matching `query`, newest first."""

    @abstractmethod
    async def past_events(
        self, since: datetime, after_seq: int = 0, limit: int = 500
    ) -> list[PastEvent]:
        """Events received at or after `since`, past `after_seq`, oldest first."""

    @abstractmethod
    async def actions_of(self, event_ids: Sequence[str]) -> list[ActionRecord]:
        """Every outbox row of these events, in the order they were queued."""

    @abstractmethod
    async def action(self, item_id: int) -> ActionRecord | None:
        """The outbox row with this id, in whatever state."""

    @abstractmethod
    async def rule_activity(self) -> dict[str, RuleActivity]:
        """Activity per rule id, for the rules that have any on record."""

    @abstractmethod
    async def outbox_counts(self) -> OutboxCounts: ...

    @abstractmethod
    async def prune_traces(self, older_than: datetime, keep_per_rule: int) -> int:
        """Delete traces of events received before `older_than`, except each
        rule's `keep_per_rule` latest firings and latest non-firing matches;
        returns how many were deleted."""

    @abstractmethod
    async def prune_timer_runs(self, older_than: datetime, keep_per_rule: int) -> int:
        """Delete the traces of timer work (timed rules' runs, waits that timed
        out) recorded before `older_than`, except each rule's `keep_per_rule`
        latest that fired and latest that did not; returns how many were
        deleted. The `traces:` policy applies to them as to events' traces."""
