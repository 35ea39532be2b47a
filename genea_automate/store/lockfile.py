"""One daemon per SQLite store: an exclusive lock on a file beside it.

Two daemons on one SQLite file would both deliver the same outbox rows, since
SQLite has no row claims across processes; several daemons need PostgreSQL.
Tools that only inspect or repair a store (dlq, trace) do not take the lock.
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
