"""StoreAdmin for the SQLite store.

Reads run on a connection of their own in a worker thread: WAL lets them see
the last commit while the writer goes on, so a slow query on the status page
never delays a webhook. Changes go through the store's writer thread, in small
batches, for the same reason.
"""

from __future__ import annotations

import asyncio
import json
import sqlite3
from collections.abc import Awaitable, Callable, Sequence
from datetime import datetime
from typing import Any, Protocol, TypeVar

from genea_automate.errors import StoreUnavailableError
from genea_automate.store.admin import (
    ActionRecord,
    EventQuery,
    EventRecord,
    OutboxCounts,
    PastEvent,
    RuleActivity,
    StoreAdmin,
)
from genea_automate.store.base import StoredEvent
from genea_automate.store.sqlite_prune import prunable_timer_runs
from genea_automate.store.sqltime import from_text, to_text

T = TypeVar("T")
DELETE_BATCH = 500

_ACTION_COLUMNS = (
    "id, event_id, rule_id, step, plugin, payload, description, state, attempts, "
    "max_attempts, last_error, created_at, finished_at"
)
# Each rule's entry in a trace, one row per rule and event.
_RULE_ENTRIES = "traces t, json_each(t.trace, '$.rules') r"
_RULE = "json_extract(r.value, '$.rule')"


class Writer(Protocol):
    def __call__(
        self, operation: Callable[[sqlite3.Connection], T], *, urgent: bool = False
    ) -> Awaitable[T]: ...


class SqliteAdmin(StoreAdmin):
    def __init__(self, path: str, write: Writer) -> None:
        self._path = path
        self._write = write

    async def _read(self, query: Callable[[sqlite3.Connection], T]) -> T:
        return await asyncio.to_thread(self._read_now, query)

    def _read_now(self, query: Callable[[sqlite3.Connection], T]) -> T:
        try:
            connection = sqlite3.connect(self._path, timeout=5.0)
        except sqlite3.Error as exc:
            raise StoreUnavailableError(f"SQLite: {exc}") from exc
        try:
            connection.execute("PRAGMA query_only = 1")
            return query(connection)
        except sqlite3.Error as exc:
            raise StoreUnavailableError(f"SQLite: {exc}") from exc
        finally:
            connection.close()

    async def events(self, query: EventQuery) -> list[EventRecord]:
        where, params = _event_filters(query)
        sql = (
            "SELECT e.seq, e.uuid, e.endpoint, e.received_at, e.state, e.kind, "
            "e.decided_at, t.trace FROM events e "
            "LEFT JOIN traces t ON t.event_seq = e.seq "
            f"WHERE {where} ORDER BY e.seq DESC LIMIT ?"
        )
        rows = await self._read(
            lambda db: db.execute(sql, (*params, query.limit)).fetchall()
        )
        return [_event_record(row) for row in rows]

    async def past_events(
        self, since: datetime, after_seq: int = 0, limit: int = 500
    ) -> list[PastEvent]:
        sql = (
            "SELECT e.seq, e.endpoint, e.uuid, e.body, e.received_at, e.state, "
            "e.decided_at, t.trace FROM events e "
            "LEFT JOIN traces t ON t.event_seq = e.seq "
            "WHERE e.received_at >= ? AND e.seq > ? ORDER BY e.seq LIMIT ?"
        )
        rows = await self._read(
            lambda db: db.execute(sql, (to_text(since), after_seq, limit)).fetchall()
        )
        return [
            PastEvent(
                StoredEvent(seq, endpoint, uuid, bytes(body), from_text(received)),
                state,
                _time(decided),
                None if trace is None else json.loads(trace),
            )
            for seq, endpoint, uuid, body, received, state, decided, trace in rows
        ]

    async def actions_of(self, event_ids: Sequence[str]) -> list[ActionRecord]:
        ids = list(dict.fromkeys(event_ids))
        if not ids:
            return []
        marks = ", ".join("?" * len(ids))
        sql = (
            f"SELECT {_ACTION_COLUMNS} FROM outbox WHERE event_id IN ({marks}) "
            "ORDER BY id"
        )
        rows = await self._read(lambda db: db.execute(sql, ids).fetchall())
        return [_action_record(row) for row in rows]

    async def action(self, item_id: int) -> ActionRecord | None:
        sql = f"SELECT {_ACTION_COLUMNS} FROM outbox WHERE id = ?"
        row = await self._read(lambda db: db.execute(sql, (item_id,)).fetchone())
        return None if row is None else _action_record(row)

    async def rule_activity(self) -> dict[str, RuleActivity]:
        fired, render_errors, delivery_errors = await self._read(_activity_rows)
        activity: dict[str, RuleActivity] = {}
        for rule, event_id, when in fired:
            activity[rule] = RuleActivity(rule, _time(when), event_id)
        for rule, error, when in [*render_errors, *delivery_errors]:
            known = activity.get(rule, RuleActivity(rule))
            at = _time(when)
            if known.last_error_at is None or (at and at > known.last_error_at):
                activity[rule] = RuleActivity(
                    rule, known.last_fired, known.last_fired_event, error, at
                )
        return activity

    async def outbox_counts(self) -> OutboxCounts:
        sql = "SELECT state, COUNT(*) FROM outbox GROUP BY state"
        rows = await self._read(lambda db: db.execute(sql).fetchall())
        return OutboxCounts({state: count for state, count in rows})

    async def prune_traces(self, older_than: datetime, keep_per_rule: int) -> int:
        doomed = await self._read(
            lambda db: _prunable_traces(db, to_text(older_than), keep_per_rule)
        )
        await self._delete_in_batches("traces", "event_seq", doomed)
        return len(doomed)

    async def prune_timer_runs(self, older_than: datetime, keep_per_rule: int) -> int:
        doomed = await self._read(
            lambda db: prunable_timer_runs(db, to_text(older_than), keep_per_rule)
        )
        await self._delete_in_batches("timer_runs", "id", doomed)
        return len(doomed)

    async def _delete_in_batches(self, table: str, key: str, ids: list[int]) -> None:
        """Each batch is its own short job, behind any waiting webhook."""
        sql = f"DELETE FROM {table} WHERE {key} = ?"
        for start in range(0, len(ids), DELETE_BATCH):
            rows = [(row_id,) for row_id in ids[start : start + DELETE_BATCH]]
            await self._write(lambda db, rows=rows: db.executemany(sql, rows))


def _event_filters(query: EventQuery) -> tuple[str, list[Any]]:
    """The WHERE clause of an EventQuery and its parameters."""
    clauses, params = ["1 = 1"], []
    if query.event_id is not None:
        clauses.append("e.uuid = ?")
        params.append(query.event_id)
    if query.kind:
        clauses.append("(e.kind = ? OR e.kind LIKE ? ESCAPE '\\')")
        params += [query.kind, _like_prefix(query.kind + ".")]
    for name, value in (
        ("location", query.location),
        ("door", query.door),
        ("actor", query.user),
    ):
        if value:
            clauses.append(f"json_extract(t.trace, '$.{name}') LIKE ? ESCAPE '\\'")
            params.append("%" + _like_escape(value) + "%")
    if query.rule:
        clauses.append(
            "EXISTS (SELECT 1 FROM json_each(t.trace, '$.rules') r "
            f"WHERE {_RULE} = ? AND json_extract(r.value, '$.matched') = 1)"
        )
        params.append(query.rule)
    if query.since is not None:
        clauses.append("e.received_at >= ?")
        params.append(to_text(query.since))
    return " AND ".join(clauses), params


def _like_escape(text: str) -> str:
    return text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")


def _like_prefix(text: str) -> str:
    return _like_escape(text) + "%"


def _activity_rows(db: sqlite3.Connection) -> tuple[list[Any], list[Any], list[Any]]:
    # SQLite takes the bare columns of a MAX() aggregate from the row of the max.
    fired = db.execute(
        f"SELECT {_RULE}, e.uuid, e.decided_at, MAX(t.event_seq) FROM {_RULE_ENTRIES} "
        "JOIN events e ON e.seq = t.event_seq "
        f"WHERE json_extract(r.value, '$.fired') = 1 GROUP BY {_RULE}"
    ).fetchall()
    render_errors = db.execute(
        f"SELECT {_RULE}, json_extract(r.value, '$.errors[0]'), e.decided_at, "
        f"MAX(t.event_seq) FROM {_RULE_ENTRIES} JOIN events e ON e.seq = t.event_seq "
        f"WHERE json_extract(r.value, '$.errors') IS NOT NULL GROUP BY {_RULE}"
    ).fetchall()
    delivery_errors = db.execute(
        "SELECT rule_id, last_error, COALESCE(finished_at, created_at), MAX(id) "
        "FROM outbox WHERE last_error IS NOT NULL GROUP BY rule_id"
    ).fetchall()
    return (
        [row[:3] for row in fired],
        [row[:3] for row in render_errors],
        [row[:3] for row in delivery_errors],
    )


def _prunable_traces(
    db: sqlite3.Connection, cutoff: str, keep_per_rule: int
) -> list[int]:
    rows = db.execute(
        "SELECT t.event_seq FROM traces t LEFT JOIN events e ON e.seq = t.event_seq "
        "WHERE (e.seq IS NULL OR e.received_at < ?) AND t.event_seq NOT IN ("
        "  SELECT seq FROM ("
        "    SELECT t.event_seq AS seq, ROW_NUMBER() OVER ("
        f"      PARTITION BY {_RULE}, json_extract(r.value, '$.fired') "
        "      ORDER BY t.event_seq DESC) AS n "
        f"    FROM {_RULE_ENTRIES} WHERE json_extract(r.value, '$.matched') = 1"
        "  ) WHERE n <= ?"
        ")",
        (cutoff, keep_per_rule),
    ).fetchall()
    return [seq for (seq,) in rows]


def _time(text: str | None) -> datetime | None:
    return None if text is None else from_text(text)


def _event_record(row: tuple[Any, ...]) -> EventRecord:
    seq, uuid, endpoint, received, state, kind, decided, trace = row
    return EventRecord(
        seq,
        uuid,
        endpoint,
        from_text(received),
        state,
        kind,
        _time(decided),
        None if trace is None else json.loads(trace),
    )


def _action_record(row: tuple[Any, ...]) -> ActionRecord:
    values = list(row)
    values[5] = json.loads(values[5])
    values[11] = from_text(values[11])
    values[12] = _time(values[12])
    return ActionRecord(*values)
