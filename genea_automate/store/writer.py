"""One thread that owns a database connection and commits work in batches.

Callers queue operations (functions of the connection) and await their results.
The thread takes what has queued up, runs each operation in its own savepoint,
so that one failure cannot spoil its neighbours, and commits once: under load
many fsyncs become one.

Webhook inserts are urgent: Genea waits for their answer. Everything else is
background work. While webhooks are waiting, only a few background operations
join each batch, so a backlog of rule decisions never stands between a webhook
and its 200; the backlog is worked off as soon as the webhooks pause. A batch
also commits once it has run for MAX_BATCH_TIME, whatever is left, so that it
gives the store back soon to the other process that writes it (see decider.py).

A job that raises anything fails alone. Should the thread itself stop on an
unexpected error, every job in hand, queued or later fails at once with
StoreUnavailableError, rather than waiting for a thread that is gone.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import threading
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Generic, Protocol, TypeVar

from genea_automate.errors import StoreBrokenError, StoreUnavailableError

logger = logging.getLogger(__name__)

T = TypeVar("T")
C = TypeVar("C")

MAX_URGENT_PER_BATCH = 512
BACKGROUND_BESIDE_URGENT = 4
BACKGROUND_ALONE = 64
MAX_BATCH_TIME = 0.025
"""Seconds a batch goes on starting jobs; the job running then still finishes.

While one process's batch runs, the other's writes wait: in `serve`, a backlog
of decisions in the deciding process holds up the daemon's webhook inserts, and
one runaway template makes a decision last up to RENDER_BUDGET. Ordinary
decisions take a fraction of a millisecond, so 25 ms still puts dozens of them
in one commit (at 2,600 decisions a second, 3 batches in 800 ran that long), and
a webhook waits at most 25 ms more than for the decision under way.
"""


class Transactions(Protocol[C]):
    """How a backend begins, commits and isolates work on its connection."""

    def begin(self, connection: C) -> None: ...
    def commit(self, connection: C) -> None: ...
    def rollback(self, connection: C) -> None: ...
    def run_isolated(
        self, connection: C, operation: Callable[[C], Any]
    ) -> tuple[Any, BaseException | None]:
        """Run `operation` in a savepoint: its result, or what it raised
        (any BaseException) once its work is undone."""
        ...

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
    urgent: bool
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
        self._in_hand: list[_Job] = []  # the batch being run
        self._broken = False  # the thread stopped on an unexpected error

    async def start(self, connect: Callable[[], C]) -> None:
        """Open the connection in the thread; raises what `connect` raised."""
        ready: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self._stopping = self._broken = False
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
            if self._broken:
                raise _broken_error()
            (self._urgent if urgent else self._background).append(
                _Job(operation, future, loop, urgent, single_statement)
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
            while self._work_waits():
                self._run_batch(connection)
        except BaseException:
            logger.exception("store: the writer thread stopped on an unexpected error")
            self._break()
        finally:
            close = getattr(connection, "close", None)
            if close is not None:
                close()

    def _work_waits(self) -> bool:
        """Wait for a job; False once stopping with none left."""
        with self._changed:
            self._changed.wait_for(
                lambda: self._urgent or self._background or self._stopping
            )
            return bool(self._urgent or self._background)

    def _take_batch(self) -> list[_Job]:
        """Urgent jobs first, then a few background ones."""
        with self._changed:
            batch = _take(self._urgent, MAX_URGENT_PER_BATCH)
            room = BACKGROUND_BESIDE_URGENT if batch else BACKGROUND_ALONE
            return batch + _take(self._background, room)

    def _run_batch(self, connection: C) -> None:
        """Run and commit a batch, or as much of it as MAX_BATCH_TIME allows;
        the transaction ends either way (if rolling back fails, the thread)."""
        tx = self._transactions
        try:
            try:
                tx.begin(connection)
            finally:
                # Taken once the turn is ours, so that what came while we
                # waited for it (a webhook, above all) goes in too.
                self._in_hand = self._take_batch()
            outcomes = self._run_jobs(connection, self._in_hand)
            del self._in_hand[len(outcomes) :]
            tx.commit(connection)
        except BaseException as exc:
            tx.rollback(connection)
            outcomes = [(None, self._failure(exc))] * len(self._in_hand)
        _settle_jobs(self._in_hand, outcomes)
        self._in_hand = []

    def _failure(self, exc: BaseException) -> StoreUnavailableError:
        """What the jobs of a batch that could not commit are told."""
        if isinstance(exc, StoreUnavailableError):
            return exc
        return self._transactions.failure(exc) or StoreUnavailableError(
            f"commit failed: {exc}"
        )

    def _run_jobs(
        self, connection: C, batch: list[_Job]
    ) -> list[tuple[Any, BaseException | None]]:
        """The outcomes of the jobs run, in order; those not started in time go
        back to the front of their queues."""
        tx = self._transactions
        stop_at = time.monotonic() + MAX_BATCH_TIME
        outcomes: list[tuple[Any, BaseException | None]] = []
        for index, job in enumerate(batch):
            if index and time.monotonic() > stop_at:
                self._put_back(batch[index:])
                break
            run = tx.run_single if job.single else tx.run_isolated
            outcomes.append(run(connection, job.operation))
        return outcomes

    def _put_back(self, jobs: list[_Job]) -> None:
        with self._changed:
            for job in reversed(jobs):
                (self._urgent if job.urgent else self._background).appendleft(job)

    def _break(self) -> None:
        """Fail the jobs in hand and queued, and every later call, at once."""
        with self._changed:
            self._broken = True
            jobs = [*self._in_hand, *self._urgent, *self._background]
            self._in_hand = []
            self._urgent.clear()
            self._background.clear()
        _settle_jobs(jobs, [(None, _broken_error())] * len(jobs))


def _broken_error() -> StoreBrokenError:
    return StoreBrokenError(
        "the store's writer thread stopped on an unexpected error (see the log "
        "above); restart genea-automate"
    )


def _take(jobs: deque[_Job], limit: int) -> list[_Job]:
    taken: list[_Job] = []
    while jobs and len(taken) < limit:
        taken.append(jobs.popleft())
    return taken


_Outcome = tuple[asyncio.Future[Any], Any, BaseException | None]


def _settle_jobs(
    jobs: list[_Job], outcomes: list[tuple[Any, BaseException | None]]
) -> None:
    # One wake-up per event loop for the whole batch, not one per job: each
    # call_soon_threadsafe writes to the loop's self-pipe.
    settled: dict[asyncio.AbstractEventLoop, list[_Outcome]] = {}
    for job, (result, error) in zip(jobs, outcomes, strict=True):
        if error is not None and not isinstance(error, Exception):
            # Raised in the awaiting task, a SystemExit would end its event loop.
            failed = RuntimeError(f"the store operation raised {error!r}")
            failed.__cause__ = error
            error = failed
        settled.setdefault(job.loop, []).append((job.future, result, error))
    for loop, items in settled.items():
        with contextlib.suppress(RuntimeError):  # the loop closed: no one waits
            loop.call_soon_threadsafe(_settle_all, items)


def _settle_all(items: list[_Outcome]) -> None:
    for future, result, error in items:
        _settle(future, result, error)


def _settle(
    future: asyncio.Future[Any], result: Any, error: BaseException | None
) -> None:
    if future.done():  # cancelled, or failed already by _break
        return
    if error is not None:
        future.set_exception(error)
    else:
        future.set_result(result)
