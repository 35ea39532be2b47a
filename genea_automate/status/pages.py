"""The status page: recent events, rules, traces, dead letters, reload errors.

Plain HTML from Jinja2 templates, no script at all, so it works on any phone
and a strict Content-Security-Policy can forbid every script.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from datetime import datetime
from typing import TYPE_CHECKING, Any

from jinja2 import Environment, PackageLoader, StrictUndefined
from starlette.requests import Request
from starlette.responses import (
    HTMLResponse,
    PlainTextResponse,
    RedirectResponse,
    Response,
)
from starlette.routing import Route

from genea_automate.dryrun.explain import action_outcome, show_payload, why_not_fired
from genea_automate.dryrun.runner import redact
from genea_automate.errors import StoreUnavailableError
from genea_automate.status.auth import (
    PREFIX,
    AdminAuth,
    form_fields,
    log_out,
    same_origin,
    status_path,
)
from genea_automate.store.admin import EventQuery

if TYPE_CHECKING:
    from genea_automate.app import Daemon

Handler = Callable[[Request], Awaitable[Response]]
RECENT_EVENTS = 100
DEAD_LETTERS_SHOWN = 200
HEADERS = {
    "Content-Security-Policy": (
        "default-src 'none'; style-src 'unsafe-inline'; form-action 'self'; "
        "frame-ancestors 'none'; base-uri 'none'"
    ),
    "X-Content-Type-Options": "nosniff",
    # Not no-referrer: with it, browsers send `Origin: null` on form posts.
    "Referrer-Policy": "same-origin",
    "Cache-Control": "no-store",
}


class StatusPages:
    """The routes under /status, reading the daemon's current rules and store."""

    def __init__(self, daemon: Daemon) -> None:
        self._daemon = daemon
        self._auth = AdminAuth(lambda: daemon.loaded.config.status)
        self._templates = Environment(
            loader=PackageLoader("genea_automate.status"),
            autoescape=True,
            undefined=StrictUndefined,
        )
        self._templates.filters.update(local=_local, utc=_utc, payload=show_payload)

    def routes(self) -> list[Route]:
        guarded = self._guarded
        return [
            Route(PREFIX, guarded(self.events), methods=["GET"]),
            Route(f"{PREFIX}/login", self.login, methods=["GET", "POST"]),
            Route(f"{PREFIX}/logout", self.logout, methods=["POST"]),
            Route(f"{PREFIX}/rules", guarded(self.rules), methods=["GET"]),
            Route(
                f"{PREFIX}/events/{{event_id}}", guarded(self.trace), methods=["GET"]
            ),
            Route(
                f"{PREFIX}/dead-letters", guarded(self.dead_letters), methods=["GET"]
            ),
            Route(
                f"{PREFIX}/dead-letters/{{item_id:int}}/{{verb}}",
                guarded(self.dead_letter_action),
                methods=["POST"],
            ),
        ]

    def _guarded(self, page: Handler) -> Handler:
        """`page` for signed-in visitors only, with store trouble as a 503."""

        async def guarded(request: Request) -> Response:
            refusal = self._auth.refusal(request)
            if refusal is not None:
                return refusal
            try:
                return await page(request)
            except StoreUnavailableError as exc:
                text = f"The store cannot be read right now: {exc}"
                return PlainTextResponse(text, 503, headers=HEADERS)

        return guarded

    async def _page(
        self, template: str, status_code: int = 200, **context: Any
    ) -> HTMLResponse:
        counts = await self._daemon.store.admin.outbox_counts()
        html = self._templates.get_template(template).render(
            prefix=PREFIX,
            reload_errors=[str(issue) for issue in self._daemon.last_reload_errors],
            not_deciding=_not_deciding(self._daemon),
            pending=counts.pending,
            dead=counts.dead,
            **context,
        )
        return HTMLResponse(html, status_code, headers=HEADERS)

    async def login(self, request: Request) -> Response:
        closed = self._auth.closed(request)
        if closed is not None:
            return closed
        if request.method == "GET":
            target = status_path(request.query_params.get("next", PREFIX))
            if self._auth.signed_in(request):
                return RedirectResponse(target, 303)
            return self._login_form(target)
        if not same_origin(request):
            return PlainTextResponse("Cross-site form refused.", 403, headers=HEADERS)
        fields = await form_fields(request)
        target = status_path(fields.get("next", PREFIX))
        if not self._auth.token_matches(fields.get("token", "")):
            return self._login_form(target, "That is not the admin token.", 401)
        return self._auth.log_in(request, target)

    def _login_form(
        self, target: str, error: str | None = None, status_code: int = 200
    ) -> HTMLResponse:
        html = self._templates.get_template("login.html").render(
            prefix=PREFIX, next=target, error=error
        )
        return HTMLResponse(html, status_code, headers=HEADERS)

    async def logout(self, request: Request) -> Response:
        return log_out()

    async def events(self, request: Request) -> Response:
        kind = request.query_params.get("kind", "").strip()
        location = request.query_params.get("location", "").strip()
        query = EventQuery(
            kind=kind or None, location=location or None, limit=RECENT_EVENTS
        )
        records = await self._daemon.store.admin.events(query)
        return await self._page(
            "events.html", records=records, kind=kind, location=location
        )

    async def rules(self, request: Request) -> Response:
        activity = await self._daemon.store.admin.rule_activity()
        rules = getattr(self._daemon.loaded.config, "rules", [])
        return await self._page("rules.html", rules=rules, activity=activity)

    async def trace(self, request: Request) -> Response:
        event_id = request.path_params["event_id"]
        admin = self._daemon.store.admin
        records = await admin.events(EventQuery(event_id=event_id, limit=1))
        if not records:
            return await self._page("trace.html", 404, record=None, event_id=event_id)
        actions = await admin.actions_of([event_id])
        return await self._page(
            "trace.html",
            record=records[0],
            event_id=event_id,
            why=why_not_fired,
            outcomes={(a.rule_id, a.step): action_outcome(a) for a in actions},
        )

    async def dead_letters(self, request: Request) -> Response:
        letters = await self._daemon.store.dead_letters(DEAD_LETTERS_SHOWN)
        payloads = {
            letter.item.id: redact(
                self._daemon.plugins, letter.item.plugin, letter.item.payload
            )
            for letter in letters
        }
        return await self._page(
            "dead_letters.html",
            letters=letters,
            payloads=payloads,
            retried=request.query_params.get("retried"),
            dropped=request.query_params.get("dropped"),
        )

    async def dead_letter_action(self, request: Request) -> Response:
        if not same_origin(request):
            return PlainTextResponse("Cross-site form refused.", 403, headers=HEADERS)
        item_id: int = request.path_params["item_id"]
        verb = request.path_params["verb"]
        store = self._daemon.store
        if verb == "retry":
            done = bool(await store.retry_dead([item_id], self._daemon.clock.now()))
            self._daemon.worker.wake()
        elif verb == "drop":
            done = await store.drop_dead(item_id)
        else:
            return PlainTextResponse(f"Unknown action {verb!r}.", 404, headers=HEADERS)
        word = "retried" if verb == "retry" else "dropped"
        query = f"?{word}={item_id}" if done else ""
        return RedirectResponse(f"{PREFIX}/dead-letters{query}", 303)


def _not_deciding(daemon: Daemon) -> str | None:
    """Since when and why rules are not being decided; None while they are."""
    deciding = daemon.deciding
    if deciding is None or deciding.running:
        return None
    return deciding.health()


def _local(text: str | None) -> str:
    """An ISO time from a trace, in the event's own zone, as people write it,
    with the year and the zone's offset: a buffered or sample event may be old."""
    if not text:
        return "?"
    moment = datetime.fromisoformat(text)
    offset = moment.isoformat()[-6:] if moment.utcoffset() else ""
    return f"{moment:%a %d %b %Y %H:%M:%S} UTC{offset}"


def _utc(when: datetime | None) -> str:
    return "never" if when is None else f"{when:%Y-%m-%d %H:%M:%S} UTC"
