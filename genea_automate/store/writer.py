"""One thread that owns a database connection and commits work in batches.

Callers queue operations (functions of the connection) and await their results.
The thread takes what has queued up, runs each operation in its own savepoint,
so that one failure cannot spoil its neighbours, and commits once: under load
many fsyncs become one.

Webhook inserts are urgent: Genea waits for their answer. Everything else is
background work. While webhooks are waiting, only a few background operations
join each batch, so a backlog of rule decisions never stands between a webhook
and its 200; the backlog is worked off as soon as the webhooks pause.
"""

from __future__ import annotations

import asyncio
import threading
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Generic, Protocol, TypeVar

from genea_automate.errors import StoreUnavailableError

T = TypeVar("T")
C = TypeVar("C")

MAX_URGENT_PER_BATCH = 512
BACKGROUND_BESIDE_URGENT = 4
BACKGROUND_ALONE = 64


class Transactions(Protocol[C]):
    """How a backend begins, commits and isolates work on its connection."""

    def begin(self, connection: C) -> None: ...
    def commit(self, connection: C) -> None: ...
    def rollback(self, connection: C) -> None: ...
    def run_isolated(
        self, connection: C, operation: Callable[[C], Any]
    ) -> tuple[Any, BaseException | None]: ...
    def run_single(
        self, connection: C, operation: Callable[[C], Any]
    ) -> tuple[Any, BaseException | None]:
        """Like run_isolated, for an operation of one statement, which the
        database undoes by itself when it fails: no savepoint needed."""
        ...

    def failure(self, exc: BaseException) -> StoreUnavailableError | None:
        """The error to report when `exc` means the database is unusable."""
        ...


@dataclass(slots=True)
class _Job:
    operation: Callable[[Any], Any]
    future: asyncio.Future[Any]
    loop: asyncio.AbstractEventLoop
    single: bool  # one statement: see Transactions.run_single


class WriterThread(Generic[C]):
    def __init__(self, name: str, transactions: Transactions[C]) -> None:
        self._name = name
        self._transactions = transactions
        self._urgent: deque[_Job] = deque()
        self._background: deque[_Job] = deque()
        self._changed = threading.Condition()
        self._stopping = False
        self._thread: threading.Thread | None = None

    @property
    def running(self) -> bool:
        return self._thread is not None

    async def start(self, connect: Callable[[], C]) -> None:
        """Open the connection in the thread; raises what `connect` raised."""
        ready: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self._stopping = False
        self._thread = threading.Thread(
            target=self._serve, args=(connect, ready), name=self._name, daemon=True
        )
        self._thread.start()
        try:
            await ready
        except BaseException:
            self._thread = None
            raise

    async def stop(self) -> None:
        """Finish what is queued, then close the connection."""
        thread, self._thread = self._thread, None
        if thread is None:
            return
        with self._changed:
            self._stopping = True
            self._changed.notify()
        await asyncio.to_thread(thread.join)

    async def call(
        self,
        operation: Callable[[C], T],
        *,
        urgent: bool = False,
        single_statement: bool = False,
    ) -> T:
        """Run `operation` in the next batch; `single_statement` skips its
        savepoint, which is most of the cost of a one-row insert or update."""
        if self._thread is None:
            raise StoreUnavailableError("the store is not open")
        loop = asyncio.get_running_loop()
        future: asyncio.Future[T] = loop.create_future()
        with self._changed:
            (self._urgent if urgent else self._background).append(
                _Job(operation, future, loop, single_statement)
            )
            self._changed.notify()
        return await future

    def _serve(self, connect: Callable[[], C], ready: asyncio.Future[None]) -> None:
        loop = ready.get_loop()
        try:
            connection = connect()
        except BaseException as exc:
            loop.call_soon_threadsafe(_settle, ready, None, exc)
            return
        loop.call_soon_threadsafe(_settle, ready, None, None)
        try:
            while batch := self._next_batch():
                self._run_batch(connection, batch)
        finally:
            close = getattr(connection, "close", None)
            if close is not None:
                close()

    def _next_batch(self) -> list[_Job]:
        """Urgent jobs first, then a few background ones; empty when stopping."""
        with self._changed:
            self._changed.wait_for(
                lambda: self._urgent or self._background or self._stopping
            )
            batch = _take(self._urgent, MAX_URGENT_PER_BATCH)
            room = BACKGROUND_BESIDE_URGENT if batch else BACKGROUND_ALONE
            return batch + _take(self._background, room)

    def _run_batch(self, connection: C, batch: list[_Job]) -> None:
        tx = self._transactions
        outcomes: list[tuple[Any, BaseException | None]] = []
        try:
            tx.begin(connection)
            outcomes = [
                (tx.run_single if job.single else tx.run_isolated)(
                    connection, job.operation
                )
                for job in batch
            ]
            tx.commit(connection)
        except Exception as exc:
            tx.rollback(connection)
            error = tx.failure(exc) or StoreUnavailableError(f"commit failed: {exc}")
            outcomes = [(None, error)] * len(batch)
        # One wake-up per event loop for the whole batch, not one per job: each
        # call_soon_threadsafe writes to the loop's self-pipe.
        settled: dict[asyncio.AbstractEventLoop, list[_Outcome]] = {}
        for job, (result, error) in zip(batch, outcomes, strict=True):
            settled.setdefault(job.loop, []).append((job.future, result, error))
        for loop, items in settled.items():
            loop.call_soon_threadsafe(_settle_all, items)


def _take(jobs: deque[_Job], limit: int) -> list[_Job]:
    taken: list[_Job] = []
    while jobs and len(taken) < limit:
        taken.append(jobs.popleft())
    return taken


_Outcome = tuple[asyncio.Future[Any], Any, BaseException | None]


def _settle_all(items: list[_Outcome]) -> None:
    for future, result, error in items:
        _settle(future, result, error)


def _settle(
    future: asyncio.Future[Any], result: Any, error: BaseException | None
) -> None:
    if future.cancelled():
        return
    if error is not None:
        future.set_exception(error)
    else:
        future.set_result(result)
