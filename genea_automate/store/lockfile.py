"""Locks on files beside a SQLite store.

LockFile: one daemon per store. Two daemons on one SQLite file would both
deliver the same outbox rows, since SQLite has no row claims across processes;
several daemons need PostgreSQL. Tools that only inspect or repair a store
(dlq, trace) do not take it, nor does the daemon's own deciding process.

WriteTurn: whose turn it is to write, among the processes that share a store.
"""

from __future__ import annotations

import fcntl
import os
from pathlib import Path
from typing import IO

from genea_automate.errors import StoreUnavailableError


class LockFile:
    def __init__(self, path: Path) -> None:
        self.path = path
        self._file: IO[str] | None = None

    def acquire(self) -> None:
        """Hold the lock, or raise StoreUnavailableError naming who holds it."""
        if self._file is not None:
            return
        handle = self.path.open("a+")
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:
            handle.seek(0)
            holder = handle.read().strip() or "another process"
            handle.close()
            raise StoreUnavailableError(
                f"the store {self.path.with_suffix('').resolve()} is in use by "
                f"genea-automate {holder}; run one daemon per SQLite store "
                "(several daemons need a PostgreSQL store)"
            ) from None
        handle.seek(0)
        handle.truncate()
        handle.write(f"pid {os.getpid()}\n")
        handle.flush()
        self._file = handle

    def release(self) -> None:
        if self._file is not None:
            self._file.close()  # closing drops the flock
            self._file = None


class WriteTurn:
    """Taken around every write transaction, so that writers queue in the kernel.

    SQLite makes a writer that finds the store busy sleep and try again, for 1,
    2, 5... up to 100 ms. Between two processes that both write all the time
    (the daemon's serving and deciding processes under load), one of them can
    lose that race for seconds on end. A blocking flock on a file beside the
    store wakes the waiting process the moment the other is done. (Trying a
    non-blocking flock again every millisecond instead let the serving process
    win most turns: a fifth fewer decisions per second, twice the p99.)

    The wait has no time limit: a process stopped in the middle of a write (in
    a debugger, say) holds up the others' writes until it goes on or dies, as a
    long write holds up the next one within a process. Where the file cannot be
    created (a read-only folder), writes go without it, and SQLite's own busy
    timeout keeps them apart.
    """

    def __init__(self, path: Path | None) -> None:
        self._path = path  # None: no other process can share the store
        self._fd: int | None = None

    def take(self) -> None:
        if self._fd is None and self._path is not None:
            try:
                self._fd = os.open(self._path, os.O_RDWR | os.O_CREAT, 0o600)
            except OSError:
                self._path = None
                return
        if self._fd is not None:
            fcntl.flock(self._fd, fcntl.LOCK_EX)  # waits without holding the GIL

    def give_back(self) -> None:
        """Safe to call when not taken."""
        if self._fd is not None:
            fcntl.flock(self._fd, fcntl.LOCK_UN)

    def close(self) -> None:
        if self._fd is not None:
            os.close(self._fd)
            self._fd = None
