"""`GET /metrics` for Prometheus and `GET /readyz` for load balancers and systemd.

Both are open, like `/healthz`: they say how busy the daemon is, never what
happened at which door. Behind a public listener, do not forward them.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Callable, Mapping
from typing import Any

from prometheus_client import CONTENT_TYPE_LATEST, REGISTRY, generate_latest
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from genea_automate import metrics
from genea_automate.errors import StoreUnavailableError
from genea_automate.plugin import ActionPlugin
from genea_automate.store.base import Store

READY_TIMEOUT = 2.0


class Probes:
    def __init__(
        self,
        store: Store,
        plugins: Callable[[], Mapping[str, ActionPlugin[Any]]],
        draining: Callable[[], bool],
        deciding: Callable[[], str] | None = None,
    ) -> None:
        self._store = store
        self._plugins = plugins
        self._draining = draining
        self._deciding = deciding

    def routes(self) -> list[Route]:
        return [
            Route("/metrics", self.metrics, methods=["GET"]),
            Route("/readyz", self.readyz, methods=["GET"]),
        ]

    async def metrics(self, request: Request) -> Response:
        """The counters as they are, and the outbox gauges read from the store."""
        try:
            counts = await self._store.admin.outbox_counts()
        except StoreUnavailableError:
            pass  # the gauges keep their last values; /readyz tells the rest
        else:
            metrics.outbox_counted(counts.pending, counts.dead)
        return Response(generate_latest(REGISTRY), media_type=CONTENT_TYPE_LATEST)

    async def readyz(self, request: Request) -> Response:
        """200 when webhooks can be stored and actions delivered; else 503, why.

        Whether rules are being decided is said beside, under `deciding`: the
        events wait in the store meanwhile, so webhooks may still be taken.
        """
        problems = await self.problems()
        body: dict[str, Any] = (
            {"status": "not ready", "problems": problems}
            if problems
            else {"status": "ready"}
        )
        if self._deciding is not None:
            body["deciding"] = self._deciding()
        return Response(
            json.dumps(body),
            status_code=503 if problems else 200,
            media_type="application/json",
        )

    async def problems(self) -> list[str]:
        if self._draining():
            return ["shutting down"]
        problems = []
        try:
            await asyncio.wait_for(self._store.check_writable(), READY_TIMEOUT)
        except StoreUnavailableError as exc:
            problems.append(f"the store cannot be written: {exc}")
        except TimeoutError:
            problems.append(f"the store did not answer within {READY_TIMEOUT:g}s")
        for plugin in self._plugins().values():
            problems += plugin.readiness()
        return problems
