"""Reloading the rules file without a restart: on SIGHUP, and when it changes.

A change is seen by polling the file's inode, size and modification time, so
an editor or `git pull` that replaces the file by renaming a new one over it is
seen as surely as one that writes it in place. The new file is parsed and
validated completely before anything is swapped; an invalid one is refused
with its errors in the log, and the running rules stay. Events, timers and the
outbox live in the store and are not touched.
"""

from __future__ import annotations

import asyncio
import logging
import os
from functools import partial
from pathlib import Path
from typing import Any, Protocol

from genea_automate.actions.delivery import DeliveryWorker
from genea_automate.config.loader import LoadedConfig, load_config
from genea_automate.errors import ConfigError, ConfigIssue
from genea_automate.plugin import ActionPlugin, run_contained
from genea_automate.rules.engine import RuleEngine, build_engine

logger = logging.getLogger(__name__)

POLL_INTERVAL = 1.0
# A file written in place may be read half-written, and its rules applied to the
# events that come meanwhile: the change must stand this long before it counts.
# Tools that write slowly should write a new file and rename it over the old.
SETTLE_TIME = 2.0
# Settings read once at start-up; a reload cannot move a listening socket.
RESTART_ONLY = ("server", "store")

# What follows a plugin that fails to start, stop or take over at a reload.
SWAPPED_ANYWAY = (
    "the reload goes on for the other plugins; its actions fail and are retried "
    "until it works"
)

FileSignature = tuple[int, int, int, int]
Plugins = dict[str, ActionPlugin[Any]]


def file_signature(path: Path) -> FileSignature | None:
    """What changes when the file is written or replaced; None while missing."""
    try:
        info = os.stat(path)
    except OSError:
        return None
    return info.st_dev, info.st_ino, info.st_size, info.st_mtime_ns


class Reloadable(Protocol):
    """What a reload reads from and swaps into the running daemon."""

    loaded: LoadedConfig
    plugins: Plugins
    worker: DeliveryWorker
    last_reload_errors: list[ConfigIssue]  # of the latest refusal, for the status page

    def install(
        self, loaded: LoadedConfig, plugins: Plugins, engine: RuleEngine
    ) -> None:
        """Swap in a new config, its plugins (started) and its engine at once."""
        ...


class RulesReloader:
    """Reloads the daemon's rules file on request or when it changes on disk."""

    def __init__(
        self, daemon: Reloadable, poll_interval: float = POLL_INTERVAL
    ) -> None:
        self._daemon = daemon
        self._poll_interval = poll_interval
        self._lock = asyncio.Lock()
        self._seen = file_signature(daemon.loaded.path)
        self._requests: set[asyncio.Task[bool]] = set()

    @property
    def path(self) -> Path:
        return self._daemon.loaded.path

    async def watch(self) -> None:
        """Reload whenever the file settles into a version not loaded yet."""
        while True:
            await asyncio.sleep(self._poll_interval)
            current = file_signature(self.path)
            if current is None or current == self._seen:
                continue  # a missing file is one being replaced: wait for it
            await asyncio.sleep(SETTLE_TIME)  # an editor may still be writing
            if file_signature(self.path) == current:
                await self.reload("the file changed")

    def request(self) -> None:
        """Reload soon (the SIGHUP handler); safe to call from a signal handler."""
        task = asyncio.create_task(self.reload("SIGHUP"))
        self._requests.add(task)
        task.add_done_callback(self._requests.discard)

    async def reload(self, why: str) -> bool:
        """Load, validate and swap in the rules file; False if it was refused."""
        async with self._lock:
            self._seen = file_signature(self.path)
            try:
                loaded = await asyncio.to_thread(load_config, self.path)
            except ConfigError as exc:
                _log_refusal(self.path, why, exc)
                self._daemon.last_reload_errors = exc.issues
                return False
            except Exception:  # a bug must not end the watch or the daemon
                logger.exception(
                    "reloading %s failed (%s); the running rules stay", self.path, why
                )
                return False
            try:
                await self._swap(loaded)
            except Exception:  # a bug must not end the watch or the daemon
                logger.exception("reloading %s failed (%s)", self.path, why)
                return False
            self._daemon.last_reload_errors = []
        rules = len(getattr(loaded.config, "rules", []))
        logger.info("reloaded %s (%s): %d rule(s)", self.path, why, rules)
        for issue in loaded.warnings:
            _log_issue(issue)
        return True

    async def _swap(self, loaded: LoadedConfig) -> None:
        daemon = self._daemon
        for name in RESTART_ONLY:
            if getattr(loaded.config, name) != getattr(daemon.loaded.config, name):
                logger.warning(
                    "`%s` changed in %s; that takes effect at the next restart",
                    name, self.path,
                )  # fmt: skip
        old = daemon.plugins
        plugins = {
            name: _unchanged(old.get(name), plugin) or plugin
            for name, plugin in loaded.make_plugins().items()
        }
        engine = build_engine(loaded.config, plugins)
        async with daemon.worker.paused():
            await _hand_over(old, plugins)
            daemon.install(loaded, plugins, engine)


def _unchanged(
    old: ActionPlugin[Any] | None, new: ActionPlugin[Any]
) -> ActionPlugin[Any] | None:
    """The running plugin, if the new one would be the same: it is kept."""
    if old is not None and type(old) is type(new) and old.section == new.section:
        return old
    return None


async def _hand_over(old: Plugins, new: Plugins) -> None:
    """Start the new plugins; each changed one takes over from its old self.

    One plugin that fails to does not stop the others: the swap goes on, so that
    every other plugin is new, and the failure is logged. Stopping halfway would
    leave plugins emptied by a take-over behind (an MQTT client hands its links
    to its successor before the next plugin's turn).
    """
    for name, plugin in new.items():
        previous = old.get(name)
        if previous is None:
            await run_contained(name, "start", plugin.start, SWAPPED_ANYWAY)
        elif previous is not plugin:
            await run_contained(
                name, "take over", partial(plugin.take_over, previous), SWAPPED_ANYWAY
            )
    for name, plugin in old.items():
        if name not in new:
            await run_contained(name, "stop", plugin.stop, SWAPPED_ANYWAY)


def _log_refusal(path: Path, why: str, error: ConfigError) -> None:
    errors = [issue for issue in error.issues if issue.severity == "error"]
    logger.error(
        "refused to reload %s (%s): %d error(s); the running rules stay",
        path, why, len(errors),
    )  # fmt: skip
    for issue in error.issues:
        _log_issue(issue)


def _log_issue(issue: ConfigIssue) -> None:
    """One issue at its own level: a warning does not refuse a file."""
    level = logging.WARNING if issue.severity == "warning" else logging.ERROR
    logger.log(level, "%s", issue)
