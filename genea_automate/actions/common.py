"""Pieces the built-in actions share: connection names, data rendering, HTTP."""

from __future__ import annotations

import difflib
import email.utils
import re
from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any

import httpx

from genea_automate.errors import ActionError
from genea_automate.events.normalise import mask_card_number
from genea_automate.plugin import Escape, RenderContext

Issues = list[tuple[tuple[str | int, ...], str]]
RETRY_AFTER_STATUSES = frozenset({429, 503})
# 5xx answers that no retry mends: the server cannot do this method or version.
FINAL_SERVER_STATUSES = frozenset({501, 505})
# Enough for a 4xx's reason (Slack's `invalid_payload`, a JSON error message),
# too little to carry much of a payload the target echoes back.
MAX_BODY_IN_ERROR = 80
_LONG_NUMBER = re.compile(r"\d{8,}")


def connection_issues(
    kind: str, name: str | None, section: Mapping[str, Any]
) -> Issues:
    """Why `name` does not pick one connection of `section`, as check() pairs."""
    if name is not None and name in section:
        return []
    if not section:
        where: tuple[str, ...] = ("connection",) if name is not None else ()
        message = f"no {kind} connection is defined; add one under `{kind}:` at "
        return [(where, message + "the top of the rules file")]
    defined = ", ".join(repr(known) for known in sorted(section))
    if name is not None:
        close = difflib.get_close_matches(name, list(section), n=1)
        hint = f"did you mean {close[0]!r}?" if close else f"defined: {defined}"
        return [(("connection",), f"unknown {kind} connection {name!r} ({hint})")]
    if len(section) > 1:
        message = f"several {kind} connections are defined ({defined}); "
        return [((), message + "choose one with `connection:`")]
    return []


def resolve_connection(kind: str, name: str | None, section: Mapping[str, Any]) -> str:
    """The connection name a step uses; ValueError where check() reports one."""
    issues = connection_issues(kind, name, section)
    if issues:
        raise ValueError(issues[0][1])
    return name if name is not None else next(iter(section))


def render_data(value: Any, ctx: RenderContext, escape: Escape | None = None) -> Any:
    """Render every string leaf of a JSON-like value; keys and scalars stay."""
    if isinstance(value, str):
        return ctx.render(value, escape=escape)
    if isinstance(value, Mapping):
        return {key: render_data(item, ctx, escape) for key, item in value.items()}
    if isinstance(value, list):
        return [render_data(item, ctx, escape) for item in value]
    return value


def parse_retry_after(value: str | None, now: datetime) -> float | None:
    """Seconds to wait from a Retry-After header (seconds or HTTP-date)."""
    if not value:
        return None
    text = value.strip()
    if text.isascii() and text.isdigit():  # not '²', which isdigit() accepts
        return float(text)
    try:
        when = email.utils.parsedate_to_datetime(text)
    except (TypeError, ValueError):
        return None
    if when.tzinfo is None:
        when = when.replace(tzinfo=UTC)
    return max(0.0, (when - now).total_seconds())


def _short_body(response: httpx.Response) -> str:
    """The start of a 4xx answer's body, which says what was wrong with the
    request; nothing for other answers, whose bodies (error pages, an echo of
    what was sent) rarely help. A body may quote the payload, so it is cut
    short and long numbers, card numbers most likely, are masked first."""
    if not 400 <= response.status_code < 500:
        return ""
    text = response.text
    if "html" in response.headers.get("content-type", ""):
        text = re.sub(r"<[^>]*>", " ", text)  # an error page's words, not its markup
    text = _mask_numbers(" ".join(text.split()))
    if len(text) > MAX_BODY_IN_ERROR:
        text = text[: MAX_BODY_IN_ERROR - 3] + "..."
    return text


def _mask_numbers(text: str) -> str:
    """Runs of 8 digits or more shown as card numbers are elsewhere: `****1234`."""
    return _LONG_NUMBER.sub(lambda run: mask_card_number(run[0]) or "", text)


def status_error(
    response: httpx.Response, now: datetime, expect: list[int] | None = None
) -> ActionError | None:
    """The ActionError an HTTP answer means, or None when it is a success.

    Success is a status in `expect`, or any 2xx without it. 429 and 503 honour
    Retry-After; other 5xx (but 501 and 505) and 408 are retried; any other
    answer is final. The message is logged and kept with a dead letter: it
    quotes only a 4xx's body.
    """
    status = response.status_code
    if (status in expect) if expect else (200 <= status < 300):
        return None
    body = _short_body(response)
    message = f"HTTP {status} {response.reason_phrase}" + (f": {body}" if body else "")
    if status in RETRY_AFTER_STATUSES:
        delay = parse_retry_after(response.headers.get("retry-after"), now)
        return ActionError(message, retryable=True, retry_after=delay)
    retryable = status >= 500 and status not in FINAL_SERVER_STATUSES
    return ActionError(message, retryable=retryable or status == 408)


def transport_error(exc: httpx.HTTPError) -> ActionError:
    """A retryable ActionError for a network failure, naming no URL."""
    # Only the exception's own text: `exc.request.url` may hold a secret.
    if isinstance(exc, httpx.TimeoutException):
        return ActionError(f"timed out ({type(exc).__name__})", retryable=True)
    reason = str(exc) or "no detail"
    return ActionError(f"{type(exc).__name__}: {reason}", retryable=True)


async def send_request(
    client: httpx.AsyncClient,
    request: httpx.Request,
    now: datetime,
    expect: list[int] | None = None,
) -> httpx.Response:
    """Send `request`, raising the ActionError its failure or answer means."""
    try:
        response = await client.send(request)
    except httpx.HTTPError as exc:
        raise transport_error(exc) from exc
    error = status_error(response, now, expect)
    if error is not None:
        raise error
    return response
