"""Rule state in SQLite: the StateTx of one transaction's connection."""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Sequence
from datetime import datetime
from typing import Any

from genea_automate.store.base import ActionToQueue, EventRef, FirstArrival, Wait
from genea_automate.store.sqltime import from_text, to_text

_WAIT_COLUMNS = (
    "rule_id, event_id, endpoint, step, kinds, key, not_before, deadline, event, "
    "fingerprint"
)


class SqliteState:
    """StateTx over the connection of the current transaction; `now` is the
    daemon's clock, kept with each state row for pruning (see schema.py)."""

    def __init__(self, connection: sqlite3.Connection, now: datetime) -> None:
        self._connection = connection
        self._now = to_text(now)

    def claim_first_arrival(
        self, key: str, event_key: str, time: datetime, who: str | None
    ) -> FirstArrival:
        self._connection.execute(
            "INSERT OR IGNORE INTO first_arrivals "
            "(key, event_id, time, who, recorded_at) VALUES (?, ?, ?, ?, ?)",
            (key, event_key, to_text(time), who, self._now),
        )
        record = self.first_arrival(key)
        assert record is not None  # inserted just now, or there before
        return record

    def first_arrival(self, key: str) -> FirstArrival | None:
        row = self._connection.execute(
            "SELECT event_id, time, who FROM first_arrivals WHERE key = ?", (key,)
        ).fetchone()
        return None if row is None else FirstArrival(row[0], from_text(row[1]), row[2])

    def record_event(
        self, key: str, event_key: str, time: datetime, *, forget_before: datetime
    ) -> None:
        self._connection.execute(
            "INSERT OR IGNORE INTO counted_events (key, event_id, time, recorded_at) "
            "VALUES (?, ?, ?, ?)",
            (key, event_key, to_text(time), self._now),
        )
        self._connection.execute(
            "DELETE FROM counted_events WHERE key = ? AND time < ?",
            (key, to_text(forget_before)),
        )

    def event_times(self, key: str, since: datetime, until: datetime) -> list[datetime]:
        rows = self._connection.execute(
            "SELECT time FROM counted_events WHERE key = ? AND time BETWEEN ? AND ? "
            "ORDER BY time",
            (key, to_text(since), to_text(until)),
        ).fetchall()
        return [from_text(time) for (time,) in rows]

    def last_fired(self, key: str) -> datetime | None:
        row = self._connection.execute(
            "SELECT fired_at FROM cooldowns WHERE key = ?", (key,)
        ).fetchone()
        return None if row is None else from_text(row[0])

    def set_last_fired(self, key: str, time: datetime) -> None:
        self._connection.execute(
            "INSERT INTO cooldowns (key, fired_at, recorded_at) VALUES (?, ?, ?) "
            "ON CONFLICT (key) DO UPDATE SET "
            "fired_at = MAX(fired_at, excluded.fired_at), "
            "recorded_at = excluded.recorded_at",
            (key, to_text(time), self._now),
        )

    def add_wait(self, wait: Wait) -> None:
        self._connection.execute(
            f"INSERT INTO waits ({_WAIT_COLUMNS}) "
            "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
            (
                wait.rule_id,
                wait.started_by.key,
                wait.started_by.endpoint,
                wait.step,
                json.dumps(wait.kinds),
                wait.key,
                to_text(wait.not_before),
                to_text(wait.deadline),
                json.dumps(wait.event, default=str),
                wait.fingerprint,
            ),
        )

    def waits_for(self, keys: Sequence[str], now: datetime) -> list[Wait]:
        marks = ", ".join("?" * len(keys))
        return self._waits(
            f"key IN ({marks}) AND deadline > ? ORDER BY id", (*keys, to_text(now))
        )

    def due_waits(self, now: datetime) -> list[Wait]:
        return self._waits("deadline <= ? ORDER BY deadline, id", (to_text(now),))

    def next_deadline(self) -> datetime | None:
        row = self._connection.execute("SELECT MIN(deadline) FROM waits").fetchone()
        return None if row[0] is None else from_text(row[0])

    def end_wait(self, wait_id: int) -> None:
        self._connection.execute("DELETE FROM waits WHERE id = ?", (wait_id,))

    def _waits(self, where: str, params: tuple[Any, ...]) -> list[Wait]:
        rows = self._connection.execute(
            f"SELECT {_WAIT_COLUMNS}, id FROM waits WHERE {where}", params
        ).fetchall()
        return [_wait(row) for row in rows]

    def handled_until(self, rule_id: str) -> datetime | None:
        row = self._connection.execute(
            "SELECT handled_until FROM timed_rules WHERE rule_id = ?", (rule_id,)
        ).fetchone()
        return None if row is None else from_text(row[0])

    def set_handled_until(self, rule_id: str, at: datetime) -> None:
        self._connection.execute(
            "INSERT OR REPLACE INTO timed_rules (rule_id, handled_until) VALUES (?, ?)",
            (rule_id, to_text(at)),
        )

    def queue_actions(
        self, actions: Sequence[ActionToQueue], at: datetime, event_time: datetime
    ) -> None:
        insert_actions(self._connection, actions, None, at, event_time)

    def record_run(self, rule_id: str, ref: str, at: datetime, trace: Any) -> None:
        self._connection.execute(
            "INSERT INTO timer_runs (rule_id, ref, at, trace) VALUES (?, ?, ?, ?)",
            (rule_id, ref, to_text(at), json.dumps(trace, default=str)),
        )


def insert_actions(
    connection: sqlite3.Connection,
    actions: Sequence[ActionToQueue],
    event: EventRef | None,
    queued_at: datetime,
    event_time: datetime,
) -> None:
    """Queue actions in the outbox, under their own event or else `event`."""
    now = to_text(queued_at)
    rows = []
    for action in actions:
        owner = action.event or event
        assert owner is not None, "an action queued by a timer names its event"
        rows.append(
            (
                owner.id,
                action.rule_id,
                action.step,
                action.plugin,
                json.dumps(action.payload),
                action.order_key,
                action.description,
                action.idempotency_key(owner),
                action.max_attempts,
                action.timeout,
                action.backoff,
                action.max_backoff,
                now,
                now,
                to_text(event_time),
                action.not_after,
            )
        )
    connection.executemany(
        "INSERT OR IGNORE INTO outbox (event_id, rule_id, step, plugin, payload, "
        "order_key, description, idempotency_key, max_attempts, timeout, backoff, "
        "max_backoff, next_attempt_at, created_at, event_time, not_after) "
        "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
        rows,
    )


def _wait(row: tuple[Any, ...]) -> Wait:
    rule_id, event_key, endpoint, *rest = row
    step, kinds, key, not_before, deadline, event, fp, id_ = rest
    return Wait(
        rule_id,
        _started_by(event_key, endpoint),
        step,
        tuple(json.loads(kinds)),
        key,
        from_text(not_before),
        from_text(deadline),
        json.loads(event),
        fp,
        id_,
    )


def _started_by(event_key: str, endpoint: str | None) -> EventRef:
    """The EventRef whose key `add_wait` stored; a wait begun before endpoints
    were recorded has none, and its key is the bare uuid."""
    if endpoint is None:
        return EventRef(event_key)
    return EventRef(event_key.removeprefix(f"{endpoint}:"), endpoint)
