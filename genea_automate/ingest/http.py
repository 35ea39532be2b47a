"""The webhook receiver: POST /hooks/{endpoint} runs DESIGN §2's checks in order.

Genea retries a non-2xx answer (3 times, 10 s apart), so this path only verifies,
stores the raw body durably and answers; normalising happens later, off this path.
"""

from __future__ import annotations

import asyncio
import hmac
import ipaddress
import json
import logging
from collections.abc import AsyncIterator, Callable, Mapping, Sequence
from datetime import datetime
from typing import Any, Protocol, TypeGuard

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route
from starlette.types import ASGIApp, Receive, Scope, Send

from genea_automate import metrics
from genea_automate.clock import Clock
from genea_automate.config.endpoints import EndpointConfig
from genea_automate.errors import StoreUnavailableError
from genea_automate.ingest.signature import (
    SIGNATURE_HEADER,
    parse_signature,
    verify_digest,
)

logger = logging.getLogger(__name__)

_STORED = b'{"status":"stored"}'
_DUPLICATE = b'{"status":"duplicate"}'
_OK = b'{"status":"ok"}'

IpAddress = ipaddress.IPv4Address | ipaddress.IPv6Address
IpNetwork = ipaddress.IPv4Network | ipaddress.IPv6Network


class EventSink(Protocol):
    """The one store method ingest needs; every Store backend has it."""

    async def ingest(
        self, endpoint: str, uuid: str, body: bytes, received_at: datetime
    ) -> bool: ...


class _Refusal(Exception):
    """A request answered with an error status and a plain-words reason."""

    def __init__(
        self, status: int, reason: str, *, allow: str = "", close: bool = False
    ) -> None:
        super().__init__(reason)
        self.status = status
        self.reason = reason
        self.allow = allow  # the Allow header of a 405
        self.close = close or status == 413  # the rest of the body is unread


def _no_constants(name: str) -> object:
    # Python accepts NaN and Infinity; JSON (and Genea's JSON.parse) does not.
    raise ValueError(f"{name} is not valid JSON")


# One decoder for all requests: json.loads with options builds a new one per call.
_DECODER = json.JSONDecoder(parse_constant=_no_constants)


class LazyJson:
    """The body's JSON, parsed on first use only; failures are remembered too."""

    __slots__ = ("_body", "_done", "_error", "_value")

    def __init__(self, body: bytes) -> None:
        self._body = body
        self._value: object = None
        self._error: ValueError | None = None
        self._done = False

    def __call__(self) -> object:
        if not self._done:
            self._done = True
            try:
                text = self._body.decode(json.detect_encoding(self._body))
                self._value = _DECODER.decode(text)
            except RecursionError:
                self._error = ValueError("it is nested too deeply")
            except ValueError as exc:
                self._error = exc
        if self._error is not None:
            raise self._error
        return self._value


class IngestHandler:
    """POST /hooks/{endpoint} as a bare ASGI app, reading the endpoints afresh
    on every request.

    Every webhook passes here, so it skips the framework's routing, middleware
    and request objects: it reads the few headers it checks straight from the
    ASGI scope. Everything else the daemon serves goes through Starlette.
    """

    def __init__(
        self,
        endpoints: Callable[[], Mapping[str, EndpointConfig]],
        store: EventSink,
        clock: Clock,
        on_stored: Callable[[], None],
        draining: Callable[[], bool] | None = None,
    ) -> None:
        self._endpoints = endpoints
        self._store = store
        self._clock = clock
        self._on_stored = on_stored
        self._draining = draining or (lambda: False)

    def routes(self) -> list[Route]:
        """The routes besides the hooks, for mounting into a larger app."""
        return [Route("/healthz", self.healthz, methods=["GET"])]

    def serve_hooks(self, app: ASGIApp) -> ASGIApp:
        """An ASGI app that answers /hooks/... itself and passes the rest to `app`."""

        async def dispatch(scope: Scope, receive: Receive, send: Send) -> None:
            if scope["type"] == "http" and scope["path"].startswith(HOOKS_PREFIX):
                await self(scope, receive, send)
            else:
                await app(scope, receive, send)

        return dispatch

    async def healthz(self, request: Request) -> Response:
        """Liveness only: the process answers HTTP."""
        return Response(_OK, media_type="application/json")

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        """One Genea webhook: refuse it with a reason, or store it and answer 200."""
        received_at = self._clock.now()
        call = _Call(scope, receive)
        name = scope["path"].removeprefix(HOOKS_PREFIX)
        # One read of the getter, so a reload mid-request cannot mix two configs.
        endpoints = self._endpoints()
        try:
            answer = await self._ingest(call, endpoints.get(name), name, received_at)
        except _Refusal as refusal:
            answer = _refuse(call, name, refusal)
        metrics.webhook_answered(name, name in endpoints, answer.status)
        await answer.send(send)

    async def _ingest(
        self,
        call: _Call,
        endpoint: EndpointConfig | None,
        name: str,
        received_at: datetime,
    ) -> _Answer:
        if endpoint is None or "/" in name:
            raise _Refusal(404, f"no endpoint named {_shorten(name)!r} is configured")
        if call.method != "POST":
            raise _Refusal(405, "webhooks are sent with POST", allow="POST")
        if self._draining():
            raise _Refusal(503, "shutting down")

        _check_address(call, endpoint)
        body = await _read_body(call, endpoint.max_body_bytes)
        _check_content_type(call)
        _check_required_header(call, endpoint)
        parsed = LazyJson(body)
        try:
            _check_signature(call, endpoint, body, parsed)
        except _Refusal:
            metrics.SIGNATURE_FAILURES.labels(name).inc()
            raise
        uuid, action = _identify(parsed)
        return await self._store_event(name, uuid, action, body, received_at)

    async def _store_event(
        self, name: str, uuid: str, action: str, body: bytes, received_at: datetime
    ) -> _Answer:
        extra = {"event_id": uuid, "endpoint": name}
        try:
            stored = await self._store.ingest(name, uuid, body, received_at)
        except StoreUnavailableError as exc:
            logger.error(
                "could not store webhook %s from endpoint %s: %s; "
                "answered 503 so Genea retries",
                uuid, name, exc, extra=extra,
            )  # fmt: skip
            return _error(503, "could not store the webhook now; try again later")
        if not stored:
            logger.info(
                "duplicate webhook %s on endpoint %s; already stored, answered 200",
                uuid, name, extra=extra,
            )  # fmt: skip
            return _Answer(200, _DUPLICATE)

        self._wake_processor()
        # The INFO line comes from the processor, once the kind is known.
        logger.debug(
            "stored webhook %s (%s) on endpoint %s", uuid, action, name, extra=extra
        )
        return _Answer(200, _STORED)

    def _wake_processor(self) -> None:
        try:
            self._on_stored()
        except Exception:
            # The event is durable; the processor finds it on its next pass anyway,
            # and a non-2xx answer would only make Genea send a duplicate.
            logger.exception("on_stored callback failed after a webhook was stored")


HOOKS_PREFIX = "/hooks/"


class _Call:
    """One HTTP request as ASGI gives it: method, headers, peer, body stream."""

    __slots__ = ("_receive", "_scope")

    def __init__(self, scope: Scope, receive: Receive) -> None:
        self._scope = scope
        self._receive = receive

    @property
    def method(self) -> str:
        return str(self._scope["method"])

    @property
    def peer(self) -> str | None:
        client = self._scope.get("client")
        return str(client[0]) if client else None

    def header(self, name: str) -> str | None:
        """The first value of a header; ASGI servers give names in lower case."""
        wanted = name.lower().encode("latin-1")
        for key, value in self._scope["headers"]:
            if key == wanted:
                return str(value.decode("latin-1"))
        return None

    def header_values(self, name: str) -> list[str]:
        wanted = name.lower().encode("latin-1")
        return [
            value.decode("latin-1")
            for key, value in self._scope["headers"]
            if key == wanted
        ]

    async def chunks(self) -> AsyncIterator[bytes]:
        """The body as it arrives."""
        while True:
            message = await self._receive()
            if message["type"] == "http.disconnect":
                raise _Refusal(400, "the caller hung up before the body was complete")
            yield message.get("body", b"")
            if not message.get("more_body", False):
                return


class _Answer:
    """A JSON answer, sent as bare ASGI messages."""

    __slots__ = ("allow", "body", "close", "status")

    def __init__(
        self, status: int, body: bytes, *, close: bool = False, allow: str = ""
    ) -> None:
        self.status = status
        self.body = body
        self.close = close
        self.allow = allow

    async def send(self, send: Send) -> None:
        headers = [
            (b"content-type", b"application/json"),
            (b"content-length", str(len(self.body)).encode()),
        ]
        if self.close:
            # The rest of the body is still on its way; without this the server
            # would keep the connection and read (and discard) all of it.
            headers.append((b"connection", b"close"))
        if self.allow:
            headers.append((b"allow", self.allow.encode()))
        await send({"type": "http.response.start", "status": self.status,
                    "headers": headers})  # fmt: skip
        await send({"type": "http.response.body", "body": self.body})


def create_ingest_app(
    endpoints: Callable[[], Mapping[str, EndpointConfig]],
    store: EventSink,
    clock: Clock,
    on_stored: Callable[[], None],
    *,
    draining: Callable[[], bool] | None = None,
) -> ASGIApp:
    """An ASGI app serving POST /hooks/{endpoint} and GET /healthz.

    `endpoints` is called once per request, so a config reload that swaps the
    mapping takes effect atomically. `on_stored` runs after each new event is
    committed (to wake the processor). While `draining()` is true every POST
    answers 503, which Genea retries later.
    """
    handler = IngestHandler(endpoints, store, clock, on_stored, draining)
    return handler.serve_hooks(Starlette(routes=handler.routes()))


def _check_address(call: _Call, endpoint: EndpointConfig) -> None:
    if endpoint.allow_ips is None:
        return
    address = client_address(
        call.peer, call.header_values("x-forwarded-for"), endpoint.trusted_proxies
    )
    if address is None or not _in_any(address, endpoint.allow_ips):
        shown = "an unreadable address" if address is None else f"address {address}"
        raise _Refusal(403, f"{shown} is not in this endpoint's allow_ips")


def client_address(
    peer_host: str | None,
    forwarded_for: Sequence[str],
    trusted_proxies: Sequence[IpNetwork],
) -> IpAddress | None:
    """The caller's address; X-Forwarded-For counts only from a trusted proxy.

    Each proxy appends the address it received from, so the list is read from the
    right, skipping trusted proxies: the first other entry is the first address no
    trusted proxy could have forged. None when an address cannot be parsed.
    """
    peer = _parse_ip(peer_host or "")
    if peer is None or not _in_any(peer, trusted_proxies):
        return peer
    hops = [hop.strip() for header in forwarded_for for hop in header.split(",")]
    address: IpAddress | None = peer
    for hop in reversed(hops):
        address = _parse_ip(hop)
        if address is None or not _in_any(address, trusted_proxies):
            return address
    # Every hop was a trusted proxy: the left-most is the furthest we can see.
    return address


def _parse_ip(text: str) -> IpAddress | None:
    """An address as written by a peer or a proxy, which may add a port."""
    if text.startswith("["):
        text = text[1:].partition("]")[0]
    elif text.count(":") == 1:
        text = text.partition(":")[0]
    try:
        address = ipaddress.ip_address(text)
    except ValueError:
        return None
    # A dual-stack socket reports IPv4 callers as ::ffff:a.b.c.d.
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped:
        return address.ipv4_mapped
    return address


def _in_any(address: IpAddress, networks: Sequence[IpNetwork]) -> bool:
    return any(address in network for network in networks)


async def _read_body(call: _Call, limit: int) -> bytes:
    """The body, refusing it as soon as it is known to exceed `limit` bytes."""
    declared = call.header("content-length")
    if declared is not None:
        if not declared.strip().isdigit():
            raise _Refusal(400, f"Content-Length must be a number, got {declared!r}")
        if int(declared) > limit:
            raise _Refusal(413, _too_large(f"{int(declared)} bytes", limit))

    # Chunked bodies carry no length: count while reading, so a huge one is cut off
    # at the limit instead of being held in memory.
    chunks: list[bytes] = []
    size = 0
    try:
        # A caller that never finishes its body must not hold a connection
        # (and a file descriptor) for good.
        async with asyncio.timeout(BODY_TIMEOUT):
            async for chunk in call.chunks():
                size += len(chunk)
                if size > limit:
                    raise _Refusal(413, _too_large(f"more than {limit} bytes", limit))
                chunks.append(chunk)
    except TimeoutError:
        raise _Refusal(
            408, f"the body did not arrive within {BODY_TIMEOUT:g}s", close=True
        ) from None
    return b"".join(chunks)


# Genea posts a few kilobytes; a body still incomplete after this is abandoned.
BODY_TIMEOUT = 30.0


def _too_large(size: str, limit: int) -> str:
    return (
        f"the body is {size}; this endpoint accepts at most {limit} bytes "
        f"(max_body_bytes)"
    )


def _check_content_type(call: _Call) -> None:
    content_type = call.header("content-type")
    # Parameters such as '; charset=utf-8' are fine; the media type is caseless.
    media_type = (content_type or "").partition(";")[0].strip().lower()
    if media_type != "application/json":
        got = "none" if content_type is None else repr(_shorten(content_type))
        raise _Refusal(415, f"Content-Type must be application/json, got {got}")


def _check_required_header(call: _Call, endpoint: EndpointConfig) -> None:
    required = endpoint.required_header
    if required is None:
        return
    value = call.header(required.name)
    if value is None:
        raise _Refusal(401, f"missing the required header {required.name!r}")
    expected = required.value.get_secret_value().encode("utf-8")
    # Starlette decodes header bytes as latin-1; encoding back gives the wire bytes.
    if not hmac.compare_digest(value.encode("latin-1"), expected):
        raise _Refusal(
            401, f"the header {required.name!r} does not have the configured value"
        )


def _check_signature(
    call: _Call, endpoint: EndpointConfig, body: bytes, parsed: LazyJson
) -> None:
    header = call.header(SIGNATURE_HEADER)
    if header is None:
        raise _Refusal(401, f"missing the {SIGNATURE_HEADER} header")
    claimed = parse_signature(header)
    if claimed is None:
        raise _Refusal(
            401, f"{SIGNATURE_HEADER} must be 'sha1=' followed by 40 hex digits"
        )
    if not verify_digest(endpoint.secrets(), body, claimed, parsed):
        raise _Refusal(
            401,
            f"{SIGNATURE_HEADER} does not match the body; check that this "
            f"endpoint's secret is the one Genea shows for the webhook",
        )


def _identify(parsed: LazyJson) -> tuple[str, str]:
    """The event's uuid and event_action, or a 400 saying what is missing."""
    try:
        payload = parsed()
    except ValueError as exc:
        raise _Refusal(400, f"the body is not valid JSON: {exc}") from None
    if not isinstance(payload, dict):
        raise _Refusal(400, f"the body must be a JSON object, got {_kind(payload)}")

    uuid = payload.get("uuid")
    # bool is an int in Python, but `true` is no identifier.
    if isinstance(uuid, int) and not isinstance(uuid, bool):
        uuid = str(uuid)
    if not _is_identifier(uuid):
        allowed = f"text of 1 to {MAX_ID_LENGTH} printable characters, or an integer"
        raise _Refusal(400, _bad_field("uuid", allowed, payload))
    action = payload.get("event_action")
    if not _is_identifier(action):
        allowed = f"text of 1 to {MAX_ID_LENGTH} printable characters"
        raise _Refusal(400, _bad_field("event_action", allowed, payload))
    return uuid, action


def _is_identifier(value: object) -> TypeGuard[str]:
    """Printable: control characters would reach logs and HTTP headers, and a
    lone surrogate cannot be stored as UTF-8."""
    return (
        isinstance(value, str)
        and 0 < len(value) <= MAX_ID_LENGTH
        and value.isprintable()
    )


# Genea's uuids are 24 hex digits or short decimals, its codes some 50 letters;
# both are logged and keyed on, so a runaway value is refused rather than kept.
MAX_ID_LENGTH = 200


def _bad_field(field: str, allowed: str, payload: dict[str, Any]) -> str:
    if field not in payload:
        return f"the body has no {field!r}; every Genea event carries one"
    value = payload[field]
    got = _kind(value)
    if isinstance(value, str) and value and not value.isprintable():
        got = "a string with control characters"
    return f"{field!r} must be {allowed}, got {got}"


def _kind(value: object) -> str:
    """The JSON type of a parsed value, as a reader of the payload would say it."""
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "a boolean"
    if isinstance(value, str):
        return "an empty string" if not value else "a string"
    names = {dict: "an object", list: "an array", int: "a number", float: "a number"}
    return names.get(type(value), type(value).__name__)


def _shorten(text: str, limit: int = 80) -> str:
    """Caller-supplied text, cut short before it goes into an answer or a log."""
    return text if len(text) <= limit else text[:limit] + "..."


def _refuse(call: _Call, name: str, refusal: _Refusal) -> _Answer:
    logger.warning(
        "refused webhook on endpoint %r from %s: %s (answered %d)",
        _shorten(name), call.peer or "an unknown peer", refusal.reason, refusal.status,
        extra={"endpoint": _shorten(name)},
    )  # fmt: skip
    return _error(refusal.status, refusal.reason, refusal.allow, refusal.close)


def _error(status: int, reason: str, allow: str = "", close: bool = False) -> _Answer:
    body = json.dumps({"error": reason}).encode()
    return _Answer(status, body, close=close, allow=allow)
