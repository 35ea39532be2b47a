"""The writer thread under a real SQLite store: jobs that raise anything, batches
cut short in time, and a thread that stops."""

from __future__ import annotations

import asyncio
import fcntl
import logging
import sqlite3
from collections.abc import AsyncIterator, Callable
from contextlib import closing
from pathlib import Path

import pytest

from genea_automate.errors import StoreBrokenError, StoreUnavailableError
from genea_automate.store import writer
from genea_automate.store.lockfile import WriteTurn
from genea_automate.store.sqlite import SqliteTransactions
from genea_automate.store.sqlite_file import SqliteFileCheck
from genea_automate.store.writer import WriterThread

STOPPED = (
    "the store's writer thread stopped on an unexpected error (see the log "
    "above); restart genea-automate"
)
Job = Callable[[sqlite3.Connection], object]


class Database:
    """A SQLite file with one table, written through a WriterThread."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.turn = WriteTurn(Path(f"{path}.write-lock"))
        self.writer: WriterThread[sqlite3.Connection] = WriterThread(
            "test-writer", SqliteTransactions(self.turn, SqliteFileCheck(str(path)))
        )

    def connect(self) -> sqlite3.Connection:
        connection = sqlite3.connect(
            self.path, isolation_level=None, check_same_thread=False
        )
        connection.execute("PRAGMA journal_mode=WAL")
        connection.execute("CREATE TABLE IF NOT EXISTS names (name TEXT)")
        return connection

    def names(self) -> list[str]:
        """What is committed, as another connection sees it."""
        with closing(sqlite3.connect(self.path)) as db:
            return [row[0] for row in db.execute("SELECT name FROM names")]

    def turn_is_free(self) -> bool:
        """Whether another process could take the write turn without waiting."""
        with open(f"{self.path}.write-lock", "a") as handle:
            try:
                fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                return False
            fcntl.flock(handle, fcntl.LOCK_UN)
            return True


def insert(name: str) -> Job:
    return lambda connection: (
        connection.execute("INSERT INTO names VALUES (?)", (name,)).rowcount
    )


@pytest.fixture
async def database(tmp_path: Path) -> AsyncIterator[Database]:
    opened = Database(tmp_path / "test.db")
    await opened.writer.start(opened.connect)
    yield opened
    await opened.writer.stop()
    opened.turn.close()


@pytest.mark.parametrize(
    "raised", [SystemExit(3), KeyboardInterrupt(), GeneratorExit()], ids=repr
)
async def test_writer_job_raising_a_base_exception_fails_alone(
    database: Database, raised: BaseException
) -> None:
    def half_done(connection: sqlite3.Connection) -> None:
        insert("half")(connection)
        raise raised

    async with asyncio.timeout(10):  # not forever, should the thread die
        results = await asyncio.gather(
            database.writer.call(half_done),
            database.writer.call(insert("beside"), urgent=True, single_statement=True),
            return_exceptions=True,
        )

    assert isinstance(results[0], RuntimeError)
    assert str(results[0]) == f"the store operation raised {raised!r}"
    assert results[0].__cause__ is raised
    assert results[1] == 1
    assert await database.writer.call(insert("after")) == 1
    assert database.names() == ["beside", "after"]  # "half" was undone
    assert database.turn_is_free()


async def test_writer_commits_once_the_batch_time_is_spent(
    database: Database, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(writer, "MAX_BATCH_TIME", -1.0)  # spent after each job

    def look_then_insert(name: str) -> Job:
        def job(connection: sqlite3.Connection) -> list[str]:
            seen = database.names()
            insert(name)(connection)
            return seen

        return job

    jobs = [database.writer.call(look_then_insert(name)) for name in "abc"]
    seen = await asyncio.gather(*jobs)

    # Each job found the one before it committed: no batch took a second job.
    assert seen == [[], ["a"], ["a", "b"]]


async def test_writer_that_stopped_fails_every_job_at_once(
    database: Database, caplog: pytest.LogCaptureFixture
) -> None:
    # A closed connection makes even the rollback fail: the thread gives up.
    async with asyncio.timeout(10):  # they fail at once, or hang
        results = await asyncio.gather(
            database.writer.call(lambda connection: connection.close()),
            database.writer.call(insert("queued")),
            return_exceptions=True,
        )

    assert [type(r) for r in results] == [StoreBrokenError] * 2
    assert [str(r) for r in results] == [STOPPED] * 2
    with pytest.raises(StoreUnavailableError) as later:
        await database.writer.call(insert("later"))
    assert str(later.value) == STOPPED
    assert database.turn_is_free()
    assert database.names() == []
    stopped = [r for r in caplog.records if "writer thread stopped" in r.message]
    assert [(r.levelno, r.exc_info is not None) for r in stopped] == [
        (logging.ERROR, True)
    ]
