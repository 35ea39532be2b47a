"""Noticing that the SQLite file was removed or replaced under a running process.

SQLite keeps writing to the file it opened, even once it is deleted (`rm -rf`
of its folder) or another file is renamed over it: in WAL mode every commit
still succeeds, and all of it is gone at the next start. So after each commit
the path is looked up again, which costs one stat().
"""

from __future__ import annotations

import logging
import os

from genea_automate.errors import StoreUnavailableError

logger = logging.getLogger(__name__)


class SqliteFileCheck:
    def __init__(self, path: str) -> None:
        self._path = None if path == ":memory:" else os.path.abspath(path)
        self._opened: tuple[int, int] | None = None
        self._reported = False

    def remember(self) -> None:
        """Note which file is open: call once the connection has made it."""
        if self._path is not None:
            self._opened = _identity(self._path)

    def check(self) -> None:
        """Raise StoreUnavailableError unless the path is still the file opened."""
        if self._path is None or self._opened is None:
            return
        if _identity(self._path) == self._opened:
            return
        if not self._reported:
            self._reported = True
            logger.error(
                "store: the SQLite file %s was removed or replaced while "
                "genea-automate ran; nothing more can be stored (webhooks are "
                "answered 503) until genea-automate is restarted",
                self._path,
            )
        raise StoreUnavailableError(
            f"the SQLite file {self._path} was removed or replaced; restart "
            "genea-automate"
        )


def _identity(path: str) -> tuple[int, int] | None:
    """The device and inode of the file at `path`; None if there is none."""
    try:
        status = os.stat(path)
    except (FileNotFoundError, NotADirectoryError):
        return None
    return status.st_dev, status.st_ino
