"""The embedded default store: one SQLite file, written by one thread.

All reads and writes go through a WriterThread (see writer.py), which batches
them into group commits. WAL mode with synchronous=FULL makes each commit
survive a power cut, not just a crash of the process.
"""

from __future__ import annotations

import json
import logging
import sqlite3
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, TypeVar

from genea_automate.clock import Clock, SystemClock
from genea_automate.errors import StoreUnavailableError
from genea_automate.store.base import (
    Decide,
    Decision,
    FirstArrival,
    OutboxItem,
    Store,
    StoredEvent,
)
from genea_automate.store.schema import SCHEMA_VERSION, SQLITE_SCHEMA
from genea_automate.store.writer import WriterThread

logger = logging.getLogger(__name__)

T = TypeVar("T")


def to_text(when: datetime) -> str:
    """UTC, fixed width, so that text order is time order."""
    return when.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def from_text(text: str) -> datetime:
    return datetime.strptime(text, "%Y-%m-%dT%H:%M:%S.%fZ").replace(tzinfo=UTC)


class SqliteTransactions:
    """Transactions and savepoints on a sqlite3 connection in autocommit mode."""

    def begin(self, connection: sqlite3.Connection) -> None:
        connection.execute("BEGIN IMMEDIATE")

    def commit(self, connection: sqlite3.Connection) -> None:
        connection.execute("COMMIT")

    def rollback(self, connection: sqlite3.Connection) -> None:
        if connection.in_transaction:
            connection.execute("ROLLBACK")

    def run_isolated(
        self, connection: sqlite3.Connection, operation: Callable[[Any], Any]
    ) -> tuple[Any, BaseException | None]:
        connection.execute("SAVEPOINT job")
        try:
            result = operation(connection)
        except Exception as exc:  # a bug in one operation must not stop the thread
            connection.execute("ROLLBACK TO job")
            connection.execute("RELEASE job")
            return None, self.failure(exc) or exc
        connection.execute("RELEASE job")
        return result, None

    def failure(self, exc: BaseException) -> StoreUnavailableError | None:
        if isinstance(exc, sqlite3.Error):
            return StoreUnavailableError(f"SQLite: {exc}")
        return None


class SqliteStore(Store):
    def __init__(self, path: str, clock: Clock | None = None) -> None:
        self.path = path
        self.clock = clock or SystemClock()
        self._writer: WriterThread[sqlite3.Connection] = WriterThread(
            "sqlite-store", SqliteTransactions()
        )

    @classmethod
    def from_url(cls, url: str, clock: Clock | None = None) -> SqliteStore:
        prefix = "sqlite:///"
        if not url.startswith(prefix) or url == prefix:
            raise ValueError(
                f"a SQLite store URL looks like 'sqlite:///./genea-automate.db', "
                f"got {url!r}"
            )
        return cls(url.removeprefix(prefix), clock)

    async def open(self) -> None:
        try:
            await self._writer.start(self._connect)
        except (sqlite3.Error, OSError) as exc:
            raise StoreUnavailableError(
                f"cannot open SQLite file {self.path}: {exc}"
            ) from exc
        logger.info("store: SQLite file %s", Path(self.path).resolve())

    async def close(self) -> None:
        await self._writer.stop()

    def _connect(self) -> sqlite3.Connection:
        connection = sqlite3.connect(
            self.path, isolation_level=None, check_same_thread=False
        )
        connection.execute("PRAGMA journal_mode=WAL")
        connection.execute("PRAGMA synchronous=FULL")
        connection.execute("PRAGMA busy_timeout=5000")
        try:
            connection.executescript(SQLITE_SCHEMA)
            connection.execute(
                "INSERT OR IGNORE INTO meta (name, value) VALUES ('schema', ?)",
                (str(SCHEMA_VERSION),),
            )
        except sqlite3.OperationalError as exc:
            # A read-only file still opens; ingest then answers 503 until fixed.
            logger.error("store: cannot prepare %s: %s", self.path, exc)
        return connection

    async def _call(
        self, operation: Callable[[sqlite3.Connection], T], *, urgent: bool = False
    ) -> T:
        return await self._writer.call(operation, urgent=urgent)

    # -- operations -------------------------------------------------------------

    async def ingest(
        self, endpoint: str, uuid: str, body: bytes, received_at: datetime
    ) -> bool:
        def insert(connection: sqlite3.Connection) -> bool:
            cursor = connection.execute(
                "INSERT OR IGNORE INTO events (endpoint, uuid, body, received_at) "
                "VALUES (?, ?, ?, ?)",
                (endpoint, uuid, body, to_text(received_at)),
            )
            return cursor.rowcount == 1

        return await self._call(insert, urgent=True)

    async def pending_events(self, limit: int) -> list[StoredEvent]:
        def select(connection: sqlite3.Connection) -> list[StoredEvent]:
            rows = connection.execute(
                "SELECT seq, endpoint, uuid, body, received_at FROM events "
                "WHERE state = 'pending' ORDER BY seq LIMIT ?",
                (limit,),
            ).fetchall()
            return [
                StoredEvent(seq, endpoint, uuid, bytes(body), from_text(received))
                for seq, endpoint, uuid, body, received in rows
            ]

        return await self._call(select)

    async def decide(self, event: StoredEvent, decide: Decide) -> Decision | None:
        def run(connection: sqlite3.Connection) -> Decision | None:
            row = connection.execute(
                "SELECT state FROM events WHERE seq = ?", (event.seq,)
            ).fetchone()
            if row is None or row[0] != "pending":
                return None
            decision = decide(_SqliteState(connection))
            _record_decision(connection, event, decision, self.clock.now())
            return decision

        return await self._call(run)

    async def event_failed(self, seq: int, error: str) -> None:
        def mark(connection: sqlite3.Connection) -> None:
            connection.execute(
                "UPDATE events SET state = 'failed', kind = ? WHERE seq = ?",
                (f"error: {error}"[:500], seq),
            )

        await self._call(mark)

    async def due_actions(self, now: datetime, limit: int) -> list[OutboxItem]:
        def select(connection: sqlite3.Connection) -> list[OutboxItem]:
            rows = connection.execute(
                f"SELECT {_OUTBOX_COLUMNS} FROM outbox WHERE id IN ("
                "  SELECT MIN(id) FROM outbox WHERE state = 'pending' "
                "  GROUP BY order_key"
                ") AND next_attempt_at <= ? ORDER BY id LIMIT ?",
                (to_text(now), limit),
            ).fetchall()
            return [_outbox_item(row) for row in rows]

        return await self._call(select)

    async def next_action_due(self, busy: frozenset[str]) -> datetime | None:
        def select(connection: sqlite3.Connection) -> datetime | None:
            heads = connection.execute(
                "SELECT order_key, next_attempt_at FROM outbox WHERE id IN ("
                "  SELECT MIN(id) FROM outbox WHERE state = 'pending' "
                "  GROUP BY order_key)"
            ).fetchall()
            times = [due for key, due in heads if key not in busy]
            return from_text(min(times)) if times else None

        return await self._call(select)

    async def action_delivered(self, item_id: int, at: datetime) -> None:
        def update(connection: sqlite3.Connection) -> None:
            connection.execute(
                "UPDATE outbox SET state = 'delivered', attempts = attempts + 1, "
                "finished_at = ?, last_error = NULL WHERE id = ?",
                (to_text(at), item_id),
            )

        await self._call(update)

    async def action_failed(
        self, item_id: int, error: str, retry_at: datetime | None
    ) -> None:
        def update(connection: sqlite3.Connection) -> None:
            if retry_at is None:
                connection.execute(
                    "UPDATE outbox SET state = 'dead', attempts = attempts + 1, "
                    "last_error = ?, finished_at = ? WHERE id = ?",
                    (error, to_text(self.clock.now()), item_id),
                )
                return
            connection.execute(
                "UPDATE outbox SET attempts = attempts + 1, last_error = ?, "
                "next_attempt_at = ? WHERE id = ?",
                (error, to_text(retry_at), item_id),
            )

        await self._call(update)

    async def check_writable(self) -> None:
        def probe(connection: sqlite3.Connection) -> None:
            connection.execute(
                "INSERT OR REPLACE INTO meta (name, value) VALUES ('probe', ?)",
                (to_text(self.clock.now()),),
            )

        await self._call(probe)


_OUTBOX_COLUMNS = (
    "id, event_id, rule_id, step, plugin, payload, order_key, description, "
    "idempotency_key, attempts, max_attempts, timeout, backoff, max_backoff, "
    "created_at"
)


def _outbox_item(row: tuple[Any, ...]) -> OutboxItem:
    values = list(row)
    values[5] = json.loads(values[5])
    values[14] = from_text(values[14])
    return OutboxItem(*values)


class _SqliteState:
    """StateTx over the connection of the current transaction."""

    def __init__(self, connection: sqlite3.Connection) -> None:
        self._connection = connection

    def claim_first_arrival(
        self, key: str, event_id: str, time: datetime, who: str | None
    ) -> FirstArrival:
        self._connection.execute(
            "INSERT OR IGNORE INTO first_arrivals (key, event_id, time, who) "
            "VALUES (?, ?, ?, ?)",
            (key, event_id, to_text(time), who),
        )
        row = self._connection.execute(
            "SELECT event_id, time, who FROM first_arrivals WHERE key = ?", (key,)
        ).fetchone()
        return FirstArrival(row[0], from_text(row[1]), row[2])


def _record_decision(
    connection: sqlite3.Connection,
    event: StoredEvent,
    decision: Decision,
    decided_at: datetime,
) -> None:
    now = to_text(decided_at)
    connection.execute(
        "UPDATE events SET state = 'decided', kind = ?, decided_at = ? WHERE seq = ?",
        (decision.kind, now, event.seq),
    )
    connection.execute(
        "INSERT OR REPLACE INTO traces (event_seq, event_id, trace) VALUES (?, ?, ?)",
        (event.seq, event.uuid, json.dumps(decision.trace, default=str)),
    )
    connection.executemany(
        "INSERT OR IGNORE INTO outbox (event_id, rule_id, step, plugin, payload, "
        "order_key, description, idempotency_key, max_attempts, timeout, backoff, "
        "max_backoff, next_attempt_at, created_at) "
        "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
        [
            (
                event.uuid, action.rule_id, action.step, action.plugin,
                json.dumps(action.payload), action.order_key, action.description,
                action.idempotency_key(event.uuid), action.max_attempts,
                action.timeout, action.backoff, action.max_backoff, now, now,
            )
            for action in decision.actions
        ],
    )
