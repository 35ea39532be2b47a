"""The http action: escaping per place, idempotency key, and answers."""

from __future__ import annotations

import threading
from collections.abc import AsyncIterator
from typing import Any

import pytest
from pydantic import ValidationError

from genea_automate.actions.http import HttpAction, HttpOptions
from genea_automate.errors import ActionError, TemplateRenderError
from genea_automate.events.model import Actor, Door
from tests.support.http_server import LoopbackHttpServer, Reply

from .conftest import MakeContext, MakeRenderer


@pytest.fixture
async def http() -> AsyncIterator[HttpAction]:
    plugin = HttpAction()
    await plugin.start()
    yield plugin
    await plugin.stop()


def options(**values: Any) -> HttpOptions:
    return HttpOptions.model_validate({"url": "https://tt.example.org/api"} | values)


def test_http_render_escapes_url_and_header_values(
    http: HttpAction, make_renderer: MakeRenderer
) -> None:
    renderer = make_renderer(
        door=Door(name="Lab/1?x=1&y"), actor=Actor(name="Eve\r\nX-Admin: yes")
    )
    payload = http.render(
        options(
            url="https://tt.example.org/doors/{{ door.name }}?by={{ actor.name }}",
            headers={"X-Who": "{{ actor.name }}"},
        ),
        renderer,
    )
    assert payload["url"] == (
        "https://tt.example.org/doors/Lab%2F1%3Fx%3D1%26y?by=Eve%0D%0AX-Admin%3A%20yes"
    )
    assert payload["headers"] == {"X-Who": "EveX-Admin: yes"}


def test_http_render_json_leaves(http: HttpAction, make_renderer: MakeRenderer) -> None:
    payload = http.render(
        options(json={"email": "{{ actor.email }}", "at": "{{ event.time }}", "n": 1}),
        make_renderer(),
    )
    assert payload == {
        "method": "POST",
        "url": "https://tt.example.org/api",
        "headers": {},
        "expect_status": None,
        "json": {"email": "ada@example.org", "at": "2024-03-04T13:05:09Z", "n": 1},
    }


async def test_http_sends_idempotency_key_headers_and_json(
    http: HttpAction,
    http_server: LoopbackHttpServer,
    make_renderer: MakeRenderer,
    make_ctx: MakeContext,
) -> None:
    payload = http.render(
        options(
            method="put",
            url=http_server.url + "/clock-in/{{ actor.uuid }}",
            headers={"Authorization": "Bearer t0ken"},
            json={"who": "{{ actor.name }}"},
        ),
        make_renderer(),
    )
    await http.deliver(payload, make_ctx(idempotency_key="rule-1:event-1:0"))
    [request] = http_server.wait_for_requests(1)
    assert (request.method, request.path) == ("PUT", "/clock-in/u-1")
    assert request.headers["idempotency-key"] == "rule-1:event-1:0"
    assert request.headers["authorization"] == "Bearer t0ken"
    assert request.json() == {"who": "Ada Lovelace"}


async def test_http_sends_keys_and_headers_that_are_not_ascii(
    http: HttpAction,
    http_server: LoopbackHttpServer,
    make_renderer: MakeRenderer,
    make_ctx: MakeContext,
) -> None:
    """A uuid or a name in another script must not make the action fail."""
    payload = http.render(
        options(url=http_server.url, headers={"X-Who": "José {{ actor.name }}"}),
        make_renderer(),
    )
    await http.deliver(payload, make_ctx(idempotency_key="main:évé 1:clock-in:0"))
    [request] = http_server.wait_for_requests(1)
    assert request.headers["idempotency-key"] == "main:%C3%A9v%C3%A9%201:clock-in:0"
    raw_who = request.headers["x-who"].encode("latin-1").decode("utf-8")
    assert raw_who == "José Ada Lovelace"


async def test_http_sends_a_text_body(
    http: HttpAction,
    http_server: LoopbackHttpServer,
    make_renderer: MakeRenderer,
    make_ctx: MakeContext,
) -> None:
    payload = http.render(
        options(url=http_server.url, body="{{ door.name }} opened"), make_renderer()
    )
    await http.deliver(payload, make_ctx())
    [request] = http_server.wait_for_requests(1)
    assert request.body == b"Front Door opened"


@pytest.mark.parametrize(
    ("reply", "expect", "message", "retryable", "retry_after"),
    [
        (Reply(500, "boom"), None, "HTTP 500 Internal Server Error", True, None),
        (Reply(404, "nope"), None, "HTTP 404 Not Found: nope", False, None),
        (Reply(501, "no"), None, "HTTP 501 Not Implemented", False, None),
        (
            Reply(429, "", {"Retry-After": "Mon, 04 Mar 2024 13:06:10 GMT"}),
            None,
            "HTTP 429 Too Many Requests",
            True,
            60.0,
        ),
        (Reply(408), None, "HTTP 408 Request Timeout: ok", True, None),
        (Reply(200), [201], "HTTP 200 OK", False, None),
    ],
    ids=["500", "404", "501", "429-date", "408", "unexpected-200"],
)
async def test_http_answers_map_to_errors(
    http: HttpAction,
    http_server: LoopbackHttpServer,
    make_ctx: MakeContext,
    reply: Reply,
    expect: list[int] | None,
    message: str,
    retryable: bool,
    retry_after: float | None,
) -> None:
    http_server.reply(reply)
    payload = {
        "method": "GET",
        "url": http_server.url,
        "headers": {},
        "expect_status": expect,
    }
    with pytest.raises(ActionError) as caught:
        await http.deliver(payload, make_ctx())
    error = caught.value
    assert (str(error), error.retryable, error.retry_after) == (
        message,
        retryable,
        retry_after,
    )


async def test_http_expected_status_is_a_success(
    http: HttpAction, http_server: LoopbackHttpServer, make_ctx: MakeContext
) -> None:
    http_server.reply(Reply(409, "exists"))
    payload = {
        "method": "POST",
        "url": http_server.url,
        "headers": {},
        "expect_status": [201, 409],
    }
    await http.deliver(payload, make_ctx())


async def test_http_timeout_is_retryable(
    http: HttpAction, http_server: LoopbackHttpServer, make_ctx: MakeContext
) -> None:
    release = threading.Event()
    http_server.reply(Reply(hold=release))
    payload = {
        "method": "GET",
        "url": http_server.url,
        "headers": {},
        "expect_status": None,
    }
    try:
        with pytest.raises(ActionError) as caught:
            await http.deliver(payload, make_ctx(timeout=0.2))
    finally:
        release.set()
    assert (str(caught.value), caught.value.retryable) == (
        "timed out (ReadTimeout)",
        True,
    )


@pytest.mark.parametrize(
    "url",
    [
        "https://bot:pw@api.example.org:8443/v1/x?token=s3cret",
        "https://api.example.org:8443/api/webhooks/123/TOPSECRET",
        "https://api.example.org:8443/botTOPSECRET/sendMessage",
    ],
    ids=["query-and-user-info", "path", "first-segment"],
)
def test_http_describe_names_only_the_origin(http: HttpAction, url: str) -> None:
    payload = {"method": "POST", "url": url}
    assert http.describe(payload) == "http POST https://api.example.org:8443"
    assert http.ordering_key(payload) == "http:api.example.org:8443"


def test_http_render_refuses_a_url_without_host(
    http: HttpAction, make_renderer: MakeRenderer
) -> None:
    with pytest.raises(TemplateRenderError) as caught:
        http.render(options(url="{{ door.name }}/x"), make_renderer())
    assert str(caught.value) == (
        "the url must start with http:// or https:// and name a host, "
        "got 'Front%20Door/x'"
    )


@pytest.mark.parametrize(
    ("values", "message"),
    [
        (
            {"json": {"a": 1}, "body": "x"},
            "Value error, give `json` or `body`, not both",
        ),
        (
            {"url": "ftp://x"},
            "Value error, the url must start with http:// or https:// "
            "and name a host, got 'ftp://x'",
        ),
        (
            {"method": "TRACE"},
            "Input should be 'GET', 'POST', 'PUT', 'PATCH' or 'DELETE'",
        ),
        (
            {"headers": {"Idempotency-Key": "x"}},
            "Value error, Idempotency-Key is set by genea-automate, the same on "
            "every retry of one action; remove it from `headers`",
        ),
        (
            {"headers": {"Bad Name": "x"}},
            "Value error, 'Bad Name' is not a valid HTTP header name",
        ),
        (
            {"headers": {"X-A": "a\nb"}},
            "Value error, header 'X-A' must fit on one line",
        ),
        (
            {"json": {"a": "{{ x }"}},
            "Value error, a: template syntax error at line 1: unexpected '}'",
        ),
        ({"expect_status": [99]}, "Input should be greater than or equal to 100"),
    ],
    ids=[
        "json-and-body",
        "scheme",
        "method",
        "idempotency",
        "header-name",
        "header-newline",
        "json-syntax",
        "status",
    ],
)
def test_http_options_are_checked_at_load_time(
    values: dict[str, Any], message: str
) -> None:
    with pytest.raises(ValidationError) as caught:
        options(**values)
    assert [error["msg"] for error in caught.value.errors()] == [message]
