"""The `http` action: one HTTP request, with an idempotency key on every try."""

from __future__ import annotations

import re
from typing import Annotated, Any, ClassVar, Literal
from urllib.parse import parse_qsl, quote, urlencode, urlsplit

import httpx
from pydantic import Field, field_validator, model_validator

from genea_automate.actions.common import render_data, send_request
from genea_automate.config.endpoints import FrozenModel
from genea_automate.errors import TemplateRenderError
from genea_automate.plugin import ActionPlugin, DeliveryContext, RenderContext
from genea_automate.rules.templates import TemplateData, TemplateStr, is_template

Method = Literal["GET", "POST", "PUT", "PATCH", "DELETE"]
IDEMPOTENCY_HEADER = "Idempotency-Key"
_HEADER_NAME = re.compile(r"^[!#$%&'*+.^_`|~0-9A-Za-z-]+$")
_LINE_BREAKS = str.maketrans("", "", "\r\n\0")
# Header and query names whose values are likely credentials.
_SECRET_NAME = re.compile(r"auth|token|key|secret|pass|sig|cookie|session", re.I)
MASK = "***"


def escape_url_value(value: str) -> str:
    """Percent-encode an inserted value, `/` and `?` included."""
    return quote(value, safe="")


def escape_header_value(value: str) -> str:
    """Drop CR, LF and NUL so an inserted value cannot add a header."""
    return value.translate(_LINE_BREAKS)


def url_problem(url: str) -> str | None:
    """Why `url` cannot be requested, or None."""
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        return (
            f"the url must start with http:// or https:// and name a host, got {url!r}"
        )
    return None


def redact_url(url: str) -> str:
    """`url` with its password and credential-like query values masked."""
    parts = urlsplit(url)
    user, at, host = parts.netloc.rpartition("@")
    if at and ":" in user:
        user = f"{user.partition(':')[0]}:{MASK}"
    query = [
        (name, MASK if _SECRET_NAME.search(name) else value)
        for name, value in parse_qsl(parts.query, keep_blank_values=True)
    ]
    return parts._replace(
        netloc=f"{user}{at}{host}", query=urlencode(query, safe="*")
    ).geturl()


def _host(url: str) -> str:
    """host[:port] of `url`, without any user name or password."""
    return urlsplit(url).netloc.rpartition("@")[2]


class HttpOptions(FrozenModel):
    """Options of an `http` step; give `json` or `body`, not both.

    `json` may be any YAML value; its string leaves are templates. Without
    `expect_status`, any 2xx answer is a success.
    """

    method: Method = "POST"
    url: TemplateStr
    headers: dict[str, TemplateStr] = Field(default_factory=dict)
    json_: TemplateData | None = Field(default=None, alias="json")
    body: TemplateStr | None = None
    expect_status: list[Annotated[int, Field(ge=100, le=599)]] | None = None

    @field_validator("method", mode="before")
    @classmethod
    def _upper_method(cls, value: Any) -> Any:
        return value.upper() if isinstance(value, str) else value

    @field_validator("url")
    @classmethod
    def _check_static_url(cls, value: str) -> str:
        problem = None if is_template(value) else url_problem(value)
        if problem:
            raise ValueError(problem)
        return value

    @field_validator("headers")
    @classmethod
    def _check_headers(cls, value: dict[str, str]) -> dict[str, str]:
        for name, template in value.items():
            if not _HEADER_NAME.match(name):
                raise ValueError(f"{name!r} is not a valid HTTP header name")
            if name.lower() == IDEMPOTENCY_HEADER.lower():
                raise ValueError(
                    f"{IDEMPOTENCY_HEADER} is set by genea-automate, the same on "
                    "every retry of one action; remove it from `headers`"
                )
            if "\r" in template or "\n" in template:
                raise ValueError(f"header {name!r} must fit on one line")
        return value

    @model_validator(mode="after")
    def _json_or_body(self) -> HttpOptions:
        if self.json_ is not None and self.body is not None:
            raise ValueError("give `json` or `body`, not both")
        return self


class HttpAction(ActionPlugin[HttpOptions]):
    """Call an HTTP endpoint; 5xx, 408, 429 and network errors are retried."""

    name: ClassVar[str] = "http"
    Options: ClassVar[type[HttpOptions]] = HttpOptions

    def __init__(self, section: Any = None) -> None:
        super().__init__(section)
        self._client: httpx.AsyncClient | None = None

    def render(self, options: HttpOptions, ctx: RenderContext) -> dict[str, Any]:
        url = ctx.render(options.url, escape=escape_url_value)
        problem = url_problem(url)
        if problem:
            raise TemplateRenderError(problem)
        payload: dict[str, Any] = {
            "method": options.method,
            "url": url,
            "headers": {
                name: ctx.render(template, escape=escape_header_value)
                for name, template in options.headers.items()
            },
            "expect_status": options.expect_status,
        }
        if options.json_ is not None:
            payload["json"] = render_data(options.json_, ctx)
        elif options.body is not None:
            payload["body"] = ctx.render(options.body)
        return payload

    def ordering_key(self, payload: dict[str, Any]) -> str:
        return f"http:{_host(payload['url'])}"

    def describe(self, payload: dict[str, Any]) -> str:
        # Only the origin: a webhook URL's path holds its token (Discord, Home
        # Assistant, IFTTT; Telegram's in the first segment), the query and
        # user info may too, and the description is logged and stored.
        scheme = urlsplit(payload["url"]).scheme
        return f"http {payload['method']} {scheme}://{_host(payload['url'])}"

    def redact(self, payload: dict[str, Any]) -> dict[str, Any]:
        headers = {
            name: MASK if _SECRET_NAME.search(name) else value
            for name, value in payload["headers"].items()
        }
        return {**payload, "url": redact_url(payload["url"]), "headers": headers}

    async def start(self) -> None:
        self._client = httpx.AsyncClient()

    async def deliver(self, payload: dict[str, Any], ctx: DeliveryContext) -> None:
        if self._client is None:
            self._client = httpx.AsyncClient()
        # As UTF-8: httpx refuses header text that is not ASCII (a person's
        # name, say), and the action would fail for good.
        headers: dict[str, str | bytes] = {
            name: value.encode() for name, value in payload["headers"].items()
        }
        headers[IDEMPOTENCY_HEADER] = header_safe_key(ctx.idempotency_key)
        content: dict[str, Any] = {}
        if "json" in payload:
            content["json"] = payload["json"]
        elif "body" in payload:
            content["content"] = payload["body"].encode("utf-8")
        request = self._client.build_request(
            payload["method"],
            payload["url"],
            headers=headers,
            timeout=ctx.timeout,
            **content,
        )
        await send_request(
            self._client, request, ctx.clock.now(), payload.get("expect_status")
        )

    async def stop(self) -> None:
        if self._client is not None:
            await self._client.aclose()
            self._client = None


def header_safe_key(key: str) -> str:
    """The idempotency key as a header can carry it: visible ASCII, with
    anything else (a uuid in another script) percent-encoded, the same on every
    retry."""
    return quote(key, safe="!#$&'()*+,-./:;=?@[]^_`{|}~")
