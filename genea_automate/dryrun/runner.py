"""Deciding events as the daemon does, on a store that is thrown away afterwards.

`simulate`, `test` and `replay` all come through here. Each event is stored and
decided by the store's own `decide`, with the rule state it reads and writes
(first arrivals and whatever later conditions keep), but in a private SQLite
database: nothing reaches the real store, the outbox or a plugin's target.
"""

from __future__ import annotations

import sqlite3
import tempfile
from collections.abc import Mapping
from contextlib import closing
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from types import TracebackType
from typing import Any, Literal

from genea_automate.clock import Clock, SystemClock
from genea_automate.config.loader import LoadedConfig
from genea_automate.errors import GeneaAutomateError
from genea_automate.events.model import Event
from genea_automate.plugin import ActionPlugin
from genea_automate.processing import event_from_stored
from genea_automate.rules.engine import build_engine
from genea_automate.store.base import ActionToQueue, Decision, StoredEvent
from genea_automate.store.sqlite import SqliteStore

DRY_ENDPOINT = "dry-run"
UNNAMED_EVENT = "dry-run-event"
StateSeed = Literal["empty", "current"]


@dataclass(frozen=True, slots=True)
class ShownAction:
    """A rendered action as people may see it: its payload without secrets."""

    rule_id: str
    step: str
    plugin: str
    description: str
    payload: dict[str, Any]


@dataclass(frozen=True, slots=True)
class DryResult:
    """One event's decision; `decision` is None for a duplicate uuid."""

    event: Event
    at: datetime
    decision: Decision | None
    actions: tuple[ShownAction, ...] = ()

    @property
    def trace(self) -> dict[str, Any]:
        return self.decision.trace if self.decision else {}

    def rule(self, rule_id: str) -> dict[str, Any] | None:
        """This rule's entry in the trace."""
        return next(
            (r for r in self.trace.get("rules", []) if r["rule"] == rule_id), None
        )


class DryRun:
    """An engine and a throwaway state; use as `async with DryRun(...) as dry`.

    `seed` "current" starts from a copy of the store named in the rules file (the
    daemon's first arrivals so far today, and so on); "empty" from nothing.
    """

    def __init__(
        self,
        loaded: LoadedConfig,
        seed: StateSeed = "empty",
        clock: Clock | None = None,
    ) -> None:
        self.plugins: dict[str, ActionPlugin[Any]] = loaded.make_plugins()
        self.engine = build_engine(loaded.config, self.plugins)
        self._timezone = loaded.config.default_timezone
        self._seed_url = loaded.store_url if seed == "current" else None
        self._clock = clock or SystemClock()
        self._folder: tempfile.TemporaryDirectory[str] | None = None
        self._store: SqliteStore | None = None

    async def __aenter__(self) -> DryRun:
        path = ":memory:"
        if self._seed_url is not None:
            self._folder = tempfile.TemporaryDirectory(prefix="genea-dry-run-")
            path = str(Path(self._folder.name) / "state.db")
            copy_store(self._seed_url, path)
        self._store = SqliteStore(path, self._clock)
        await self._store.open()
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        if self._store is not None:
            await self._store.close()
        if self._folder is not None:
            self._folder.cleanup()

    def now(self) -> datetime:
        return self._clock.now()

    async def decide(
        self,
        body: bytes,
        at: datetime | None = None,
        *,
        received_at: datetime | None = None,
        endpoint: str = DRY_ENDPOINT,
    ) -> DryResult:
        """Decide one webhook body as if the clock read `at` (default: the event's
        own time, as if it was decided the moment it happened)."""
        if self._store is None:
            raise RuntimeError("use DryRun in `async with`")
        provisional = received_at or at or self._clock.now()
        unstored = StoredEvent(0, endpoint, UNNAMED_EVENT, body, provisional)
        event = event_from_stored(unstored, self._timezone)
        when = at or event.time
        uuid = event.id or UNNAMED_EVENT
        if self._folder is not None:
            endpoint = self._judged_as_itself(uuid) or endpoint
        if not await self._store.ingest(endpoint, uuid, body, received_at or when):
            return DryResult(event, when, None)

        [stored] = await self._store.pending_events(1)
        decision = await self._store.decide(
            stored, lambda state: self.engine.decide(event, stored.ref, state, when)
        )
        assert decision is not None  # nothing else decides this store's events
        shown = tuple(self.shown(action) for action in decision.actions)
        return DryResult(event, when, decision, shown)

    def _judged_as_itself(self, uuid: str) -> str | None:
        """The endpoint of an event that the copied store holds already, whose
        row leaves the copy so that it is decided again as that same event.

        Decided as a stranger, it would meet the state it wrote itself: its own
        first arrival would read "not the first: <its own actor> arrived".
        """
        assert self._store is not None  # in `async with`
        with closing(sqlite3.connect(self._store.path)) as copy:
            row = copy.execute(
                "SELECT seq, endpoint FROM events WHERE uuid = ? "
                "ORDER BY seq DESC LIMIT 1",
                (uuid,),
            ).fetchone()
            if row is None:
                return None
            copy.execute("DELETE FROM events WHERE seq = ?", (row[0],))
            copy.commit()
        return str(row[1])

    def shown(self, action: ActionToQueue) -> ShownAction:
        return ShownAction(
            action.rule_id,
            action.step,
            action.plugin,
            action.description,
            self.redact(action.plugin, action.payload),
        )

    def redact(self, plugin: str, payload: dict[str, Any]) -> dict[str, Any]:
        return redact(self.plugins, plugin, payload)


def redact(
    plugins: Mapping[str, ActionPlugin[Any]], plugin: str, payload: dict[str, Any]
) -> dict[str, Any]:
    """A payload as its plugin lets people see it (no plugin: nothing shown)."""
    known = plugins.get(plugin)
    if known is None:
        return {"hidden": f"no plugin named {plugin!r} is loaded to show it"}
    return known.redact(payload)


def copy_store(url: str, target: str) -> None:
    """Copy the SQLite store at `url` to `target`, consistently, while in use."""
    source = SqliteStore.from_url(url).path
    if not Path(source).is_file():
        raise GeneaAutomateError(
            f"--state current needs the daemon's store, and there is none at "
            f"{Path(source).resolve()}; check `store:` in the rules file, or use "
            "--state empty"
        )
    with (
        closing(sqlite3.connect(source)) as real,
        closing(sqlite3.connect(target)) as copy,
    ):
        real.backup(copy)
        # The daemon decides its own pending events; the dry run only decides its own.
        copy.execute("UPDATE events SET state = 'copied' WHERE state = 'pending'")
        copy.commit()
