"""The exceptions genea-automate raises, as one small tree."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from contextlib import AbstractContextManager, contextmanager
from dataclasses import dataclass


class GeneaAutomateError(Exception):
    """Base of every error this package raises on purpose."""


@dataclass(frozen=True, slots=True)
class ConfigIssue:
    """One problem in a rules file, placed at a line and column (both 1-based)."""

    file: str
    line: int
    column: int
    path: str
    message: str
    severity: str = "error"

    def __str__(self) -> str:
        where = f"{self.path}: " if self.path else ""
        return (
            f"{self.file}:{self.line}:{self.column}: {self.severity}: "
            f"{where}{self.message}"
        )


class ConfigError(GeneaAutomateError):
    """A rules file that cannot be used; carries every issue found in it."""

    def __init__(self, issues: list[ConfigIssue]) -> None:
        self.issues = issues
        super().__init__("\n".join(str(issue) for issue in issues))


class SignatureError(GeneaAutomateError):
    """A webhook whose X-Sequr-Signature does not match its body."""


class PluginError(GeneaAutomateError):
    """A plugin that cannot be loaded or registered."""


class PluginCrashError(GeneaAutomateError):
    """A plugin raised SystemExit, or another BaseException that is no Exception."""


@contextmanager
def crash_contained(who: str) -> Iterator[None]:
    """Plugin code runs inside: what it raises that is not an Exception comes
    out as PluginCrashError, so that it fails one render or delivery like any
    plugin error. Left alone, a SystemExit would end the thread that decides
    rules while it holds the store, or the daemon itself. A cancel and Ctrl-C
    go through. `who` names the code in the message."""
    try:
        yield
    except (Exception, asyncio.CancelledError, KeyboardInterrupt, GeneratorExit):
        raise
    except BaseException as exc:
        raise PluginCrashError(f"{who} raised {exc!r}") from exc


def plugin_crash_contained(plugin: str) -> AbstractContextManager[None]:
    """`crash_contained` for the code of the action plugin named `plugin`."""
    return crash_contained(f"action plugin {plugin!r}")


class TemplateRenderError(GeneaAutomateError):
    """A template that failed to render, e.g. on an undefined variable."""


class ActionError(GeneaAutomateError):
    """An action that failed to deliver; `retryable` says whether to try again."""

    def __init__(
        self, message: str, *, retryable: bool = True, retry_after: float | None = None
    ) -> None:
        super().__init__(message)
        self.retryable = retryable
        self.retry_after = retry_after


class TargetDownError(ActionError):
    """A target known to be down before anything is sent (a broker not connected).

    The action waits for it without using up an attempt.
    """

    def __init__(self, message: str, *, retry_after: float | None = None) -> None:
        super().__init__(message, retryable=True, retry_after=retry_after)


class StoreUnavailableError(GeneaAutomateError):
    """The store could not be read or written; ingest answers 503 on it."""


class StoreBrokenError(StoreUnavailableError):
    """The store's writer thread is gone: no wait helps, only a new process."""
