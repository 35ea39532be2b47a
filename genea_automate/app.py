"""The daemon: store, ingest, processor and delivery worker, started together."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import signal
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

from starlette.applications import Starlette

from genea_automate.actions.delivery import DeliveryWorker
from genea_automate.clock import Clock, SystemClock
from genea_automate.config.endpoints import EndpointConfig
from genea_automate.config.loader import LoadedConfig
from genea_automate.decider import DecidingProcess
from genea_automate.errors import ConfigIssue, GeneaAutomateError, StoreUnavailableError
from genea_automate.ingest.http import IngestHandler
from genea_automate.plugin import ActionPlugin, run_contained
from genea_automate.processing import EventProcessor
from genea_automate.reload import RulesReloader
from genea_automate.retention import StorePruner
from genea_automate.rules.engine import RuleEngine, build_engine
from genea_automate.scheduling.service import TimerService
from genea_automate.status.pages import StatusPages
from genea_automate.status.probes import Probes
from genea_automate.store import Store, open_store

logger = logging.getLogger(__name__)

SHUTDOWN_GRACE = 5.0
RESTART_WAITS = (1.0, 5.0, 30.0)  # then every 30 s while it keeps failing
HEALTHY_RUN = 60.0  # a loop that ran this long starts its waits over (1 s first)


class Daemon:
    """Everything the daemon runs; `app` is the ASGI application to serve.

    With `decide_apart` (what `serve` does), rules are decided in a second
    process, on a second core (see decider.py); otherwise here, as tests that
    move a frozen clock need.
    """

    def __init__(
        self,
        loaded: LoadedConfig,
        clock: Clock | None = None,
        *,
        decide_apart: bool = False,
    ) -> None:
        self.loaded = loaded
        self.clock = clock or SystemClock()
        self.store: Store = open_store(loaded.store_url, self.clock, exclusive=True)
        self.plugins: dict[str, ActionPlugin[Any]] = loaded.make_plugins()
        self.engine: RuleEngine = build_engine(loaded.config, self.plugins)
        self.worker = DeliveryWorker(self.store, lambda: self.plugins, self.clock)
        self.timers = TimerService(
            self.store,
            self.clock,
            lambda: self.engine,
            self.worker.wake,
            ready=lambda: self.processor.caught_up.wait(),
        )
        self.deciding: DecidingProcess | None = None
        self.processor: EventProcessor | DecidingProcess
        if decide_apart:
            self.processor = self.deciding = DecidingProcess(
                loaded.store_url,
                lambda: self.loaded,
                self.clock,
                self.worker.wake,
                self.timers.wake,
            )
        else:
            self.processor = EventProcessor(
                self.store,
                self.clock,
                lambda: self.engine,
                lambda: self.loaded.config.default_timezone,
                self.worker.wake,
                on_waits_begun=self.timers.wake,
            )
        self.reloader = RulesReloader(self)
        self.pruner = StorePruner(self.store, self.clock, lambda: self.loaded.config)
        self.draining = False
        # Set by a refused reload, cleared by a good one; the status page shows it.
        self.last_reload_errors: list[ConfigIssue] = []
        self._tasks: list[asyncio.Task[None]] = []
        ingest = IngestHandler(
            self._endpoints,
            self.store,
            self.clock,
            self.processor.wake,
            lambda: self.draining,
        )
        probes = Probes(
            self.store,
            lambda: self.plugins,
            lambda: self.draining,
            None if self.deciding is None else self.deciding.health,
        )
        routes = [*ingest.routes(), *probes.routes(), *StatusPages(self).routes()]
        self.app = ingest.serve_hooks(Starlette(routes=routes, lifespan=self._lifespan))

    def _endpoints(self) -> dict[str, EndpointConfig]:
        return self.loaded.config.endpoints

    @contextlib.asynccontextmanager
    async def _lifespan(self, app: Starlette) -> AsyncIterator[None]:
        await self.start()
        try:
            yield
        finally:
            await self.stop()

    async def start(self) -> None:
        await self.store.open()
        for plugin in self.plugins.values():
            await plugin.start()
        loops: dict[str, Callable[[], Awaitable[None]]] = {
            "event processing": self.processor.run,
            "delivery": self.worker.run,
            "timers": self.timers.run,
            "rules reload": self.reloader.watch,
            "store pruning": self.pruner.run,
        }
        self._tasks = [
            asyncio.create_task(keep_running(name, run), name=name)
            for name, run in loops.items()
        ]
        # Only the main thread may handle signals; tests may run elsewhere.
        with contextlib.suppress(ValueError, RuntimeError):
            asyncio.get_running_loop().add_signal_handler(
                signal.SIGHUP, self.reloader.request
            )
        rules = len(self.engine.rules) + len(self.engine.timed)
        logger.info(
            "genea-automate started with %d rule(s) from %s", rules, self.loaded.path
        )
        await self._tell_waiting("queued before this start, will be delivered now")

    def install(
        self,
        loaded: LoadedConfig,
        plugins: dict[str, ActionPlugin[Any]],
        engine: RuleEngine,
    ) -> None:
        """Swap in a reloaded config with its started plugins and its engine.

        No await here: every request and decision sees all old or all new.
        """
        self.loaded, self.plugins, self.engine = loaded, plugins, engine
        if self.deciding is not None:
            self.deciding.rules_changed(loaded)
        self.timers.wake()

    async def stop(self) -> None:
        self.draining = True
        with contextlib.suppress(ValueError, RuntimeError):
            asyncio.get_running_loop().remove_signal_handler(signal.SIGHUP)
        await self.worker.drain(SHUTDOWN_GRACE)
        for task in self._tasks:
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        await self._tell_waiting(
            "kept in the store, to be delivered after the next start"
        )
        for name, plugin in self.plugins.items():
            await run_contained(name, "stop", plugin.stop, "the daemon stops anyway")
        await self.store.close()
        logger.info("genea-automate stopped")

    async def _tell_waiting(self, what: str) -> None:
        """Say how many actions wait across a restart, if any."""
        try:
            pending = (await self.store.admin.outbox_counts()).pending
        except StoreUnavailableError:
            return  # the loops say so themselves
        if pending:
            logger.info("%d action(s) wait for delivery, %s", pending, what)


async def keep_running(name: str, run: Callable[[], Awaitable[None]]) -> None:
    """Run a background loop for the daemon's lifetime.

    The loops handle the failures they expect (a store or a target down). A bug
    that escapes one would otherwise end it silently while webhooks are still
    acknowledged: it is logged with its traceback, and the loop starts again.
    """
    failures = 0
    clock = asyncio.get_running_loop()
    while True:
        started = clock.time()
        try:
            await run()
        except Exception as exc:
            if clock.time() - started > HEALTHY_RUN:
                failures = 0
            wait = RESTART_WAITS[min(failures, len(RESTART_WAITS) - 1)]
            if isinstance(exc, GeneaAutomateError):  # says itself what happened
                logger.error(
                    "%s stopped: %s; starting it again in %gs", name, exc, wait
                )
            else:
                logger.exception(
                    "%s stopped on an unexpected error; starting it again in %gs",
                    name, wait,
                )  # fmt: skip
        else:
            wait = RESTART_WAITS[0]
            logger.error("%s ended unexpectedly; starting it again", name)
        failures += 1
        await asyncio.sleep(wait)
