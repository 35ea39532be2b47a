"""The embedded default store: one SQLite file, written by one thread per process.

All of a process's reads and writes go through its WriterThread (see writer.py),
which batches them into group commits. WAL mode with synchronous=FULL makes each
commit survive a power cut, not just a crash of the process. The daemon's two
processes (see decider.py) and the operator's tools may write at once; each
transaction then waits its turn (WriteTurn in lockfile.py).
"""

from __future__ import annotations

import json
import logging
import sqlite3
import time
from collections.abc import Callable, Sequence
from datetime import datetime
from itertools import takewhile
from pathlib import Path
from typing import Any, TypeVar

from genea_automate import metrics
from genea_automate.clock import Clock, SystemClock
from genea_automate.errors import StoreUnavailableError
from genea_automate.store.admin import StoreAdmin
from genea_automate.store.base import (
    DeadLetter,
    Decide,
    Decision,
    OutboxItem,
    PrunePolicy,
    StateTx,
    Store,
    StoredEvent,
)
from genea_automate.store.lockfile import LockFile, WriteTurn
from genea_automate.store.schema import ADDED_COLUMNS, SCHEMA_VERSION, SQLITE_SCHEMA
from genea_automate.store.sqlite_admin import SqliteAdmin
from genea_automate.store.sqlite_file import SqliteFileCheck
from genea_automate.store.sqlite_prune import prune_rule_state
from genea_automate.store.sqlite_state import SqliteState, insert_actions
from genea_automate.store.sqltime import from_text, to_text
from genea_automate.store.writer import WriterThread

logger = logging.getLogger(__name__)

T = TypeVar("T")
URL_PREFIX = "sqlite:///"


def absolute_url(url: str, folder: Path) -> str:
    """`url` with a relative file path taken from `folder`; others unchanged."""
    if not url.startswith(URL_PREFIX):
        return url
    return URL_PREFIX + str(folder / url.removeprefix(URL_PREFIX))


class SqliteTransactions:
    """Transactions and savepoints on a sqlite3 connection in autocommit mode;
    each transaction holds `turn` from its begin to its end, and each commit
    fails if the store's file is no longer the one opened."""

    def __init__(self, turn: WriteTurn, file: SqliteFileCheck) -> None:
        self._turn = turn
        self._file = file

    def begin(self, connection: sqlite3.Connection) -> None:
        self._turn.take()
        try:
            connection.execute("BEGIN IMMEDIATE")
        except BaseException:
            self._turn.give_back()
            raise

    def commit(self, connection: sqlite3.Connection) -> None:
        connection.execute("COMMIT")
        self._turn.give_back()
        self._file.check()

    def rollback(self, connection: sqlite3.Connection) -> None:
        try:
            if connection.in_transaction:
                connection.execute("ROLLBACK")
        finally:
            self._turn.give_back()

    def run_isolated(
        self, connection: sqlite3.Connection, operation: Callable[[Any], Any]
    ) -> tuple[Any, BaseException | None]:
        connection.execute("SAVEPOINT job")
        try:
            result = operation(connection)
        except BaseException as exc:  # one operation must not stop the thread
            connection.execute("ROLLBACK TO job")
            connection.execute("RELEASE job")
            return None, self.failure(exc) or exc
        connection.execute("RELEASE job")
        return result, None

    def run_single(
        self, connection: sqlite3.Connection, operation: Callable[[Any], Any]
    ) -> tuple[Any, BaseException | None]:
        try:
            return operation(connection), None
        except BaseException as exc:
            return None, self.failure(exc) or exc

    def failure(self, exc: BaseException) -> StoreUnavailableError | None:
        if isinstance(exc, sqlite3.Error):
            return StoreUnavailableError(f"SQLite: {exc}")
        return None


class SqliteStore(Store):
    """`must_exist` refuses to create a new file, for tools that inspect one;
    `exclusive` (the daemon's) holds a lock so that no second daemon shares it."""

    def __init__(
        self,
        path: str,
        clock: Clock | None = None,
        *,
        must_exist: bool = False,
        exclusive: bool = False,
    ) -> None:
        self.path = path
        self.clock = clock or SystemClock()
        self.must_exist = must_exist
        self._lock = LockFile(Path(path + ".lock")) if exclusive else None
        in_memory = path == ":memory:"
        self._turn = WriteTurn(None if in_memory else Path(path + ".write-lock"))
        self._file = SqliteFileCheck(path)
        self._writer: WriterThread[sqlite3.Connection] = WriterThread(
            "sqlite-store", SqliteTransactions(self._turn, self._file)
        )

    @classmethod
    def from_url(
        cls,
        url: str,
        clock: Clock | None = None,
        *,
        must_exist: bool = False,
        exclusive: bool = False,
    ) -> SqliteStore:
        if not url.startswith(URL_PREFIX) or url == URL_PREFIX:
            raise ValueError(
                f"a SQLite store URL looks like 'sqlite:///./genea-automate.db', "
                f"got {url!r}"
            )
        path = url.removeprefix(URL_PREFIX)
        return cls(path, clock, must_exist=must_exist, exclusive=exclusive)

    def check_can_open(self) -> None:
        """Fail early, in plain words, for a missing folder or a store in use."""
        folder = Path(self.path).resolve().parent
        if not folder.is_dir():
            raise StoreUnavailableError(
                f"the folder {folder} of the store does not exist; create it, or "
                "change `store:` in the rules file"
            )
        if self._lock is not None:
            self._lock.acquire()

    async def open(self) -> None:
        if self.must_exist and not Path(self.path).is_file():
            raise StoreUnavailableError(
                f"there is no SQLite store at {Path(self.path).resolve()}"
            )
        self.check_can_open()
        try:
            await self._writer.start(self._connect)
        except (sqlite3.Error, OSError) as exc:
            raise StoreUnavailableError(
                f"cannot open SQLite file {self.path}: {exc}"
            ) from exc
        # The daemon says which store it uses; its deciding process and tools do not.
        logger.log(
            logging.INFO if self._lock is not None else logging.DEBUG,
            "store: SQLite file %s",
            Path(self.path).resolve(),
        )

    async def close(self) -> None:
        await self._writer.stop()
        self._turn.close()
        if self._lock is not None:
            self._lock.release()

    def _connect(self) -> sqlite3.Connection:
        connection = sqlite3.connect(
            self.path, isolation_level=None, check_same_thread=False
        )
        connection.execute("PRAGMA journal_mode=WAL")
        connection.execute("PRAGMA synchronous=FULL")
        connection.execute("PRAGMA busy_timeout=5000")
        try:
            connection.executescript(SQLITE_SCHEMA)
            _migrate(connection)
        except sqlite3.OperationalError as exc:
            # A read-only file still opens; ingest then answers 503 until fixed.
            logger.error("store: cannot prepare %s: %s", self.path, exc)
        self._file.remember()
        return connection

    async def _call(
        self,
        operation: Callable[[sqlite3.Connection], T],
        *,
        urgent: bool = False,
        single_statement: bool = False,
    ) -> T:
        started = time.perf_counter()
        try:
            return await self._writer.call(
                operation, urgent=urgent, single_statement=single_statement
            )
        finally:
            metrics.store_called(urgent, time.perf_counter() - started)

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

        return await self._call(insert, urgent=True, single_statement=True)

    async def pending_events(self, limit: int) -> list[StoredEvent]:
        def select(connection: sqlite3.Connection) -> list[StoredEvent]:
            rows = connection.execute(
                "SELECT seq, endpoint, uuid, body, received_at FROM events "
                "WHERE state = 'pending' ORDER BY seq LIMIT ?",
                (limit,),
            ).fetchall()
            return _readable(connection, rows, _stored_event, _mark_failed)

        return await self._call(select)

    async def decide(self, event: StoredEvent, decide: Decide) -> Decision | None:
        def run(connection: sqlite3.Connection) -> Decision | None:
            row = connection.execute(
                "SELECT state FROM events WHERE seq = ?", (event.seq,)
            ).fetchone()
            if row is None or row[0] != "pending":
                return None
            decision = decide(SqliteState(connection, self.clock.now()))
            _record_decision(connection, event, decision, self.clock.now())
            return decision

        return await self._call(run)

    async def transact(self, work: Callable[[StateTx], T]) -> T:
        return await self._call(
            lambda connection: work(SqliteState(connection, self.clock.now()))
        )

    async def event_failed(self, seq: int, error: str) -> None:
        await self._call(
            lambda connection: _mark_failed(connection, seq, error),
            single_statement=True,
        )

    async def due_actions(self, now: datetime, limit: int) -> list[OutboxItem]:
        def select(connection: sqlite3.Connection) -> list[OutboxItem]:
            rows = connection.execute(
                f"{_HEADS} SELECT {_OUTBOX_COLUMNS} FROM outbox WHERE id IN heads "
                "AND next_attempt_at <= ? ORDER BY id LIMIT ?",
                (to_text(now), limit),
            ).fetchall()
            return _readable(
                connection,
                rows,
                _outbox_item,
                lambda db, item_id, why: _mark_dead(db, item_id, why, self.clock),
            )

        return await self._call(select)

    async def next_action_due(self, busy: frozenset[str]) -> datetime | None:
        def select(connection: sqlite3.Connection) -> datetime | None:
            heads = connection.execute(
                f"{_HEADS} SELECT order_key, next_attempt_at FROM outbox "
                "WHERE id IN heads"
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

        await self._call(update, single_statement=True)

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

        await self._call(update, single_statement=True)

    async def action_expired(self, item_id: int, reason: str) -> None:
        await self._call(
            lambda connection: _mark_dead(connection, item_id, reason, self.clock),
            single_statement=True,
        )

    async def action_deferred(
        self, item_id: int, reason: str, retry_at: datetime
    ) -> None:
        def update(connection: sqlite3.Connection) -> None:
            connection.execute(
                "UPDATE outbox SET last_error = ?, next_attempt_at = ? WHERE id = ?",
                (reason, to_text(retry_at), item_id),
            )

        await self._call(update, single_statement=True)

    async def dead_letters(self, limit: int) -> list[DeadLetter]:
        def select(connection: sqlite3.Connection) -> list[DeadLetter]:
            rows = connection.execute(
                f"SELECT {_DEAD_COLUMNS} FROM outbox WHERE state = 'dead' "
                "ORDER BY id LIMIT ?",
                (limit,),
            ).fetchall()
            return [_dead_letter(row) for row in rows]

        return await self._call(select)

    async def dead_letter(self, item_id: int) -> DeadLetter | None:
        def select(connection: sqlite3.Connection) -> DeadLetter | None:
            row = connection.execute(
                f"SELECT {_DEAD_COLUMNS} FROM outbox WHERE state = 'dead' AND id = ?",
                (item_id,),
            ).fetchone()
            return None if row is None else _dead_letter(row)

        return await self._call(select)

    async def retry_dead(self, item_ids: Sequence[int], now: datetime) -> list[int]:
        def update(connection: sqlite3.Connection) -> list[int]:
            retried = []
            for item_id in item_ids:
                cursor = connection.execute(
                    "UPDATE outbox SET state = 'pending', attempts = 0, "
                    "next_attempt_at = ?, finished_at = NULL "
                    "WHERE id = ? AND state = 'dead'",
                    (to_text(now), item_id),
                )
                if cursor.rowcount == 1:
                    retried.append(item_id)
            return retried

        return await self._call(update)

    async def drop_dead(self, item_id: int) -> bool:
        def delete(connection: sqlite3.Connection) -> bool:
            cursor = connection.execute(
                "DELETE FROM outbox WHERE id = ? AND state = 'dead'", (item_id,)
            )
            return cursor.rowcount == 1

        return await self._call(delete)

    async def prune(self, policy: PrunePolicy, limit: int) -> dict[str, int]:
        def delete(connection: sqlite3.Connection) -> dict[str, int]:
            return {
                "event bodies": _prune_events(connection, policy, limit),
                "uuids": _forget_uuids(connection, policy.dedup_before, limit),
                "delivered actions": _prune_delivered(
                    connection, policy.delivered_before, limit
                ),
            }

        # Two jobs, so that a waiting webhook can go between them.
        done = await self._call(delete)
        state = await self._call(lambda c: prune_rule_state(c, policy, limit))
        return {**done, **state}

    @property
    def admin(self) -> StoreAdmin:
        return SqliteAdmin(self.path, self._call)

    async def check_writable(self) -> None:
        def probe(connection: sqlite3.Connection) -> None:
            connection.execute(
                "INSERT OR REPLACE INTO meta (name, value) VALUES ('probe', ?)",
                (to_text(self.clock.now()),),
            )

        await self._call(probe)


# The oldest pending action of each ordering key: only it may be delivered.
# The keys are walked one index seek at a time, so the cost grows with the
# number of keys, not with the actions piled up behind a target that is down.
_HEADS = (
    "WITH RECURSIVE keys(k) AS ("
    "  SELECT (SELECT MIN(order_key) FROM outbox WHERE state = 'pending') "
    "  UNION ALL "
    "  SELECT (SELECT MIN(order_key) FROM outbox "
    "          WHERE state = 'pending' AND order_key > k) "
    "  FROM keys WHERE k IS NOT NULL"
    "), heads(id) AS ("
    "  SELECT (SELECT MIN(id) FROM outbox WHERE state = 'pending' AND order_key = k) "
    "  FROM keys WHERE k IS NOT NULL"
    ")"
)

_OUTBOX_COLUMNS = (
    "id, event_id, rule_id, step, plugin, payload, order_key, description, "
    "idempotency_key, attempts, max_attempts, timeout, backoff, max_backoff, "
    "created_at, event_time, not_after"
)
_DEAD_COLUMNS = f"{_OUTBOX_COLUMNS}, last_error, finished_at"


R = TypeVar("R")


def _readable(
    connection: sqlite3.Connection,
    rows: list[Any],
    read: Callable[[Any], R],
    set_aside: Callable[[sqlite3.Connection, int, str], None],
) -> list[R]:
    """The rows `read` can make sense of; the others are set aside, so that one
    damaged row (a file edited by hand) cannot stop all the work behind it."""
    readable = []
    for row in rows:
        try:
            readable.append(read(row))
        except (ValueError, TypeError) as exc:
            logger.error(
                "store: set aside row %s, which cannot be read: %r", row[0], exc
            )
            set_aside(connection, row[0], f"the stored row cannot be read: {exc!r}")
    return readable


def _stored_event(row: tuple[Any, ...]) -> StoredEvent:
    seq, endpoint, uuid, body, received = row
    return StoredEvent(seq, endpoint, uuid, bytes(body), from_text(received))


def _mark_failed(connection: sqlite3.Connection, seq: int, error: str) -> None:
    """Set an event aside: it is not decided again."""
    connection.execute(
        "UPDATE events SET state = 'failed', kind = ? WHERE seq = ?",
        (f"error: {error}"[:500], seq),
    )


def _mark_dead(
    connection: sqlite3.Connection, item_id: int, reason: str, clock: Clock
) -> None:
    """Move an action to the dead letters without counting an attempt."""
    connection.execute(
        "UPDATE outbox SET state = 'dead', last_error = ?, finished_at = ? "
        "WHERE id = ?",
        (reason[:500], to_text(clock.now()), item_id),
    )


def _outbox_item(row: tuple[Any, ...]) -> OutboxItem:
    values = list(row)
    values[5] = json.loads(values[5])
    values[14] = from_text(values[14])
    # Rows queued before event times were recorded count from their queueing.
    values[15] = from_text(values[15]) if values[15] else values[14]
    return OutboxItem(*values)


def _dead_letter(row: tuple[Any, ...]) -> DeadLetter:
    *values, error, died_at = row
    item = _outbox_item(tuple(values))
    died = from_text(died_at) if died_at else item.created_at
    return DeadLetter(item, error or "", died)


def _migrate(connection: sqlite3.Connection) -> None:
    """Add what later versions added to a store created by an earlier one."""
    connection.execute("BEGIN IMMEDIATE")
    try:
        for table, columns in ADDED_COLUMNS.items():
            info = connection.execute(f"PRAGMA table_info({table})").fetchall()
            present = {row[1] for row in info}
            for name, sql_type in columns.items():
                if name not in present:
                    connection.execute(
                        f"ALTER TABLE {table} ADD COLUMN {name} {sql_type}"
                    )
        connection.execute(
            "INSERT OR REPLACE INTO meta (name, value) VALUES ('schema', ?)",
            (str(SCHEMA_VERSION),),
        )
    except BaseException:
        connection.execute("ROLLBACK")
        raise
    connection.execute("COMMIT")


def _oldest(
    connection: sqlite3.Connection,
    sql: str,
    params: tuple[Any, ...],
    expired: Callable[[tuple[Any, ...]], bool],
) -> list[Any]:
    """The first ids of an id-ordered query, up to the first row not expired.

    Ids grow with time, so the expired rows lead; stopping at the first young
    one keeps each pass short however large the table is.
    """
    rows = connection.execute(sql, params).fetchall()
    return [row[0] for row in takewhile(expired, rows)]


def _prune_events(
    connection: sqlite3.Connection, policy: PrunePolicy, limit: int
) -> int:
    """Drop the bodies of old events; the row stays for dedup, the trace for
    the `traces:` retention (see StoreAdmin.prune_traces)."""
    newest = connection.execute("SELECT MAX(seq) FROM events").fetchone()[0] or 0
    cutoff = to_text(policy.events_before)

    def expired(row: tuple[Any, ...]) -> bool:
        return bool(row[0] <= newest - policy.keep_events or row[1] < cutoff)

    seqs: list[Any] = []
    for state in ("decided", "failed"):
        seqs += _oldest(
            connection,
            "SELECT seq, received_at FROM events WHERE state = ? ORDER BY seq LIMIT ?",
            (state, limit),
            expired,
        )
    rows = [(seq,) for seq in seqs]
    connection.executemany(
        "UPDATE events SET body = x'', state = 'pruned' WHERE seq = ?", rows
    )
    return len(rows)


def _forget_uuids(connection: sqlite3.Connection, before: datetime, limit: int) -> int:
    """Delete pruned events received before `before` whose trace is gone too.

    From then on Genea could deliver the uuid again as a new event.
    """
    cutoff = to_text(before)
    seqs = _oldest(
        connection,
        "SELECT seq, received_at FROM events WHERE state = 'pruned' AND NOT EXISTS "
        "(SELECT 1 FROM traces WHERE event_seq = seq) ORDER BY seq LIMIT ?",
        (limit,),
        lambda row: bool(row[1] < cutoff),
    )
    connection.executemany("DELETE FROM events WHERE seq = ?", [(s,) for s in seqs])
    return len(seqs)


def _prune_delivered(
    connection: sqlite3.Connection, before: datetime, limit: int
) -> int:
    cursor = connection.execute(
        "DELETE FROM outbox WHERE id IN (SELECT id FROM outbox "
        "WHERE state = 'delivered' AND finished_at < ? LIMIT ?)",
        (to_text(before), limit),
    )
    return cursor.rowcount


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
    event_time = decision.event_time or event.received_at
    insert_actions(connection, decision.actions, event.ref, decided_at, event_time)
