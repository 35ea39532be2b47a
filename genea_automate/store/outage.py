"""One warning when a background loop loses the store, one line when it is back."""

from __future__ import annotations

import logging

# How long a background loop waits before it tries a lost store again.
STORE_RETRY_WAIT = 2.0


class StoreOutageLog:
    """Keeps a loop that retries every few seconds from repeating its warning."""

    def __init__(self, logger: logging.Logger, what: str) -> None:
        self._logger = logger
        self._what = what
        self._down = False

    def failed(self, error: Exception, retry_in: float = STORE_RETRY_WAIT) -> None:
        if self._down:
            self._logger.debug("%s still paused: %s", self._what, error)
            return
        self._down = True
        self._logger.warning(
            "%s paused: the store is unavailable (%s); trying again every %gs",
            self._what, error, retry_in,
        )  # fmt: skip

    def succeeded(self) -> None:
        if self._down:
            self._down = False
            self._logger.info("%s resumed: the store is available again", self._what)
