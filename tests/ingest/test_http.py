"""Ingest refusals, in DESIGN §2's order; none of them may reach the store."""

from __future__ import annotations

import asyncio
import json
import logging
from collections.abc import AsyncIterator, Iterator

import httpx
import pytest
from pydantic import SecretStr

from genea_automate.config.endpoints import EndpointConfig, RequiredHeader
from genea_automate.ingest import http
from genea_automate.ingest.http import client_address

from .conftest import (
    PAYLOADS,
    SECRET,
    Harness,
    MakeHarness,
    RecordingStore,
    endpoint_config,
    sign_body,
)

BODY = PAYLOADS[0].body
LIMIT = 2048


def _body(payload: object) -> bytes:
    return json.dumps(payload, separators=(",", ":")).encode()


def _assert_refused(response: httpx.Response, status: int, error: str) -> None:
    assert (response.status_code, response.json()) == (status, {"error": error})
    assert response.headers["content-type"] == "application/json"


@pytest.fixture(autouse=True)
def _store_stays_empty(recording_store: RecordingStore) -> Iterator[None]:
    yield
    assert recording_store.calls == []


async def test_healthz_answers_ok(harness: Harness) -> None:
    response = await harness.client.get("/healthz")
    assert (response.status_code, response.json()) == (200, {"status": "ok"})


async def test_hook_refuses_an_unknown_endpoint(harness: Harness) -> None:
    response = await harness.post(BODY, endpoint="mian")
    _assert_refused(response, 404, "no endpoint named 'mian' is configured")


async def test_hook_refuses_get(harness: Harness) -> None:
    response = await harness.client.get("/hooks/main")
    _assert_refused(response, 405, "webhooks are sent with POST")
    assert response.headers["allow"] == "POST"


async def test_hook_get_on_an_unknown_endpoint_says_it_is_unknown(
    harness: Harness,
) -> None:
    # Someone checking the URL in a browser learns that the name is wrong.
    response = await harness.client.get("/hooks/mian")
    _assert_refused(response, 404, "no endpoint named 'mian' is configured")


@pytest.mark.parametrize("path", ["main/extra", "", "main/"])
async def test_hook_refuses_a_path_that_names_no_endpoint(
    harness: Harness, path: str
) -> None:
    response = await harness.post(BODY, endpoint=path)
    assert response.status_code == 404
    assert "is configured" in response.json()["error"]


async def test_hook_gives_up_on_a_body_that_never_arrives(
    harness: Harness, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(http, "BODY_TIMEOUT", 0.05)
    sent: list[dict[str, object]] = []
    first = [{"type": "http.request", "body": BODY[:10], "more_body": True}]

    async def receive() -> dict[str, object]:
        if first:
            return first.pop()
        await asyncio.Event().wait()  # the rest never comes
        raise AssertionError("unreachable")

    async def send(message: dict[str, object]) -> None:
        sent.append(message)

    scope = {"type": "http", "method": "POST", "path": "/hooks/main",
             "headers": [(b"content-type", b"application/json")],
             "client": ("127.0.0.1", 40000)}  # fmt: skip
    await harness.app(scope, receive, send)
    assert sent[0]["status"] == 408
    assert (b"connection", b"close") in sent[0]["headers"]  # type: ignore[operator]
    assert json.loads(sent[1]["body"]) == {  # type: ignore[arg-type]
        "error": "the body did not arrive within 0.05s"
    }


async def test_hook_stores_nothing_when_the_caller_hangs_up(harness: Harness) -> None:
    """A body cut off by a disconnect is refused, not stored half-read."""
    sent: list[dict[str, object]] = []
    messages = iter(
        [
            {"type": "http.request", "body": BODY[:10], "more_body": True},
            {"type": "http.disconnect"},
        ]
    )

    async def receive() -> dict[str, object]:
        return next(messages)

    async def send(message: dict[str, object]) -> None:
        sent.append(message)

    headers = [
        (b"content-type", b"application/json"),
        (b"x-sequr-signature", sign_body(BODY).encode()),
    ]
    scope = {"type": "http", "method": "POST", "path": "/hooks/main",
             "headers": headers, "client": ("127.0.0.1", 40000)}  # fmt: skip
    await harness.app(scope, receive, send)
    assert sent[0]["status"] == 400


async def test_hook_reads_endpoints_afresh_after_a_reload(harness: Harness) -> None:
    harness.endpoints = {"other": endpoint_config()}
    response = await harness.post(BODY)
    _assert_refused(response, 404, "no endpoint named 'main' is configured")


async def test_hook_refuses_everything_while_draining(harness: Harness) -> None:
    harness.draining = True
    response = await harness.post(BODY)
    _assert_refused(response, 503, "shutting down")


# -- allow_ips and trusted proxies ---------------------------------------------


async def test_hook_refuses_an_address_outside_allow_ips(
    make_harness: MakeHarness, recording_store: RecordingStore
) -> None:
    endpoint = endpoint_config(allow_ips=["198.51.100.0/24"])
    harness = await make_harness(recording_store, endpoint, peer="203.0.113.9")
    response = await harness.post(BODY)
    _assert_refused(
        response, 403, "address 203.0.113.9 is not in this endpoint's allow_ips"
    )


async def test_hook_ignores_forwarded_for_from_an_untrusted_peer(
    make_harness: MakeHarness, recording_store: RecordingStore
) -> None:
    endpoint = endpoint_config(allow_ips=["198.51.100.0/24"])
    harness = await make_harness(recording_store, endpoint, peer="203.0.113.9")
    forged = {"X-Forwarded-For": "198.51.100.7"}
    response = await harness.post(BODY, headers=forged)
    _assert_refused(
        response, 403, "address 203.0.113.9 is not in this endpoint's allow_ips"
    )


async def test_hook_uses_the_right_most_untrusted_forwarded_address(
    make_harness: MakeHarness, recording_store: RecordingStore
) -> None:
    endpoint = endpoint_config(
        allow_ips=["198.51.100.0/24"], trusted_proxies=["10.0.0.0/8"]
    )
    harness = await make_harness(recording_store, endpoint, peer="10.0.0.2")
    # The caller forged the left-most entry; the proxy appended the real address.
    forwarded = {"X-Forwarded-For": "198.51.100.7, 203.0.113.9, 10.0.0.3"}
    response = await harness.post(BODY, headers=forwarded)
    _assert_refused(
        response, 403, "address 203.0.113.9 is not in this endpoint's allow_ips"
    )


async def test_hook_refuses_an_unreadable_forwarded_address(
    make_harness: MakeHarness, recording_store: RecordingStore
) -> None:
    endpoint = endpoint_config(allow_ips=["0.0.0.0/0"], trusted_proxies=["10.0.0.2"])
    harness = await make_harness(recording_store, endpoint, peer="10.0.0.2")
    response = await harness.post(BODY, headers={"X-Forwarded-For": "unknown"})
    _assert_refused(
        response, 403, "an unreadable address is not in this endpoint's allow_ips"
    )


@pytest.mark.parametrize(
    ("peer", "forwarded", "expected"),
    [
        pytest.param("203.0.113.9", [], "203.0.113.9", id="direct"),
        pytest.param("::ffff:203.0.113.9", [], "203.0.113.9", id="v4-mapped"),
        pytest.param("203.0.113.9", ["198.51.100.7"], "203.0.113.9", id="untrusted"),
        pytest.param("10.0.0.2", [], "10.0.0.2", id="proxy-without-header"),
        pytest.param("10.0.0.2", ["198.51.100.7"], "198.51.100.7", id="one-hop"),
        pytest.param(
            "10.0.0.2", ["1.1.1.1, 198.51.100.7", "10.0.0.9"], "198.51.100.7",
            id="two-headers",
        ),
        pytest.param("10.0.0.2", ["10.0.0.5, 10.0.0.9"], "10.0.0.5", id="all-trusted"),
        pytest.param("10.0.0.2", ["198.51.100.7:5123"], "198.51.100.7", id="v4-port"),
        pytest.param("10.0.0.2", ["[2001:db8::1]:443"], "2001:db8::1", id="v6-port"),
        pytest.param("10.0.0.2", ["1.1.1.1, garbage"], None, id="unreadable"),
    ],
)  # fmt: skip
def test_client_address(peer: str, forwarded: list[str], expected: str | None) -> None:
    trusted = endpoint_config(trusted_proxies=["10.0.0.0/8"]).trusted_proxies
    address = client_address(peer, forwarded, trusted)
    assert (None if address is None else str(address)) == expected


# -- body size -----------------------------------------------------------------


@pytest.fixture
async def small(make_harness: MakeHarness, recording_store: RecordingStore) -> Harness:
    return await make_harness(recording_store, endpoint_config(max_body_bytes=LIMIT))


async def test_hook_refuses_a_declared_length_over_the_limit(small: Harness) -> None:
    response = await small.post(b"{" + b" " * LIMIT + b"}")
    _assert_refused(
        response,
        413,
        f"the body is {LIMIT + 2} bytes; this endpoint accepts at most {LIMIT} "
        f"bytes (max_body_bytes)",
    )


async def test_hook_refuses_a_chunked_body_over_the_limit(small: Harness) -> None:
    chunks_sent: list[int] = []

    async def chunks() -> AsyncIterator[bytes]:
        for index in range(100):
            chunks_sent.append(index)
            yield b" " * 1000

    headers = {"Content-Type": "application/json", "X-Sequr-Signature": "sha1=00"}
    response = await small.client.post("/hooks/main", content=chunks(), headers=headers)
    _assert_refused(
        response,
        413,
        f"the body is more than {LIMIT} bytes; this endpoint accepts at most "
        f"{LIMIT} bytes (max_body_bytes)",
    )
    assert "content-length" not in response.request.headers
    assert len(chunks_sent) == 3  # reading stopped at the limit


async def test_hook_accepts_exactly_the_limit_past_the_size_check(
    small: Harness,
) -> None:
    body = b"{" + b" " * (LIMIT - 2) + b"}"
    response = await small.post(body, signature="sha1=" + "0" * 40)
    assert response.status_code == 401


# -- content type, required header, signature ----------------------------------


@pytest.mark.parametrize(
    ("content_type", "shown"),
    [
        ("text/plain", "'text/plain'"),
        ("application/x-www-form-urlencoded", "'application/x-www-form-urlencoded'"),
        ("application/jsonp", "'application/jsonp'"),
        (None, "none"),
    ],
)
async def test_hook_refuses_other_content_types(
    harness: Harness, content_type: str | None, shown: str
) -> None:
    response = await harness.post(BODY, content_type=content_type)
    _assert_refused(
        response, 415, f"Content-Type must be application/json, got {shown}"
    )


@pytest.fixture
async def with_header(
    make_harness: MakeHarness, recording_store: RecordingStore
) -> Harness:
    required = RequiredHeader(name="X-Genea-Token", value=SecretStr("token-value"))
    return await make_harness(
        recording_store, endpoint_config(required_header=required)
    )


async def test_hook_refuses_a_missing_required_header(with_header: Harness) -> None:
    response = await with_header.post(BODY)
    _assert_refused(response, 401, "missing the required header 'X-Genea-Token'")


async def test_hook_refuses_a_wrong_required_header(with_header: Harness) -> None:
    response = await with_header.post(BODY, headers={"X-Genea-Token": "token-valu"})
    _assert_refused(
        response, 401, "the header 'X-Genea-Token' does not have the configured value"
    )


async def test_hook_refuses_a_missing_signature(harness: Harness) -> None:
    response = await harness.client.post(
        "/hooks/main", content=BODY, headers={"Content-Type": "application/json"}
    )
    _assert_refused(response, 401, "missing the X-Sequr-Signature header")


async def test_hook_refuses_a_malformed_signature(harness: Harness) -> None:
    response = await harness.post(BODY, signature="sha256=abc")
    _assert_refused(
        response, 401, "X-Sequr-Signature must be 'sha1=' followed by 40 hex digits"
    )


async def test_hook_refuses_a_wrong_signature(harness: Harness) -> None:
    response = await harness.post(BODY, signature=sign_body(BODY, b"another-secret"))
    _assert_refused(
        response,
        401,
        "X-Sequr-Signature does not match the body; check that this endpoint's "
        "secret is the one Genea shows for the webhook",
    )


async def test_hook_refuses_a_secret_no_longer_listed(
    make_harness: MakeHarness, recording_store: RecordingStore
) -> None:
    rotated = EndpointConfig(secret=SecretStr("the-new-secret"))
    harness = await make_harness(recording_store, rotated)
    response = await harness.post(BODY, signature=sign_body(BODY, SECRET))
    assert response.status_code == 401


# -- body shape, under a valid signature ---------------------------------------


@pytest.mark.parametrize(
    ("body", "error"),
    [
        pytest.param(
            b"{not json", "the body is not valid JSON: Expecting property name "
            "enclosed in double quotes: line 1 column 2 (char 1)", id="invalid-json",
        ),
        pytest.param(b"", "the body is not valid JSON: Expecting value: line 1 "
                     "column 1 (char 0)", id="empty"),
        pytest.param(
            b'{"uuid":NaN,"event_action":"X"}',
            "the body is not valid JSON: NaN is not valid JSON", id="nan",
        ),
        pytest.param(
            b"[" * 50_000 + b"]" * 50_000,
            "the body is not valid JSON: it is nested too deeply", id="too-deep",
        ),
        pytest.param(
            b'{"uuid":"\xff"}',
            "the body is not valid JSON: 'utf-8' codec can't decode byte 0xff in "
            "position 9: invalid start byte",
            id="not-utf8",
        ),
        pytest.param(
            b'[{"uuid":"1","event_action":"X"}]',
            "the body must be a JSON object, got an array", id="array",
        ),
        pytest.param(
            b'"text"', "the body must be a JSON object, got a string", id="string",
        ),
        pytest.param(
            _body({"event_action": "X"}),
            "the body has no 'uuid'; every Genea event carries one", id="no-uuid",
        ),
        pytest.param(
            _body({"uuid": None, "event_action": "X"}),
            "'uuid' must be text of 1 to 200 printable characters, or an integer, "
            "got null",
            id="null-uuid",
        ),
        pytest.param(
            _body({"uuid": "", "event_action": "X"}),
            "'uuid' must be text of 1 to 200 printable characters, or an integer, "
            "got an empty string",
            id="empty-uuid",
        ),
        pytest.param(
            _body({"uuid": True, "event_action": "X"}),
            "'uuid' must be text of 1 to 200 printable characters, or an integer, "
            "got a boolean",
            id="bool-uuid",
        ),
        pytest.param(
            _body({"uuid": 1.5, "event_action": "X"}),
            "'uuid' must be text of 1 to 200 printable characters, or an integer, "
            "got a number",
            id="float-uuid",
        ),
        pytest.param(
            _body({"uuid": "u" * 201, "event_action": "X"}),
            "'uuid' must be text of 1 to 200 printable characters, or an integer, "
            "got a string",
            id="long-uuid",
        ),
        pytest.param(
            _body({"uuid": "abc\ndef", "event_action": "X"}),
            "'uuid' must be text of 1 to 200 printable characters, or an integer, "
            "got a string with control characters",
            id="newline-uuid",
        ),
        pytest.param(
            b'{"uuid":"ls-\\ud800","event_action":"X"}',
            "'uuid' must be text of 1 to 200 printable characters, or an integer, "
            "got a string with control characters",
            id="lone-surrogate-uuid",
        ),
        pytest.param(
            _body({"uuid": "1"}),
            "the body has no 'event_action'; every Genea event carries one",
            id="no-event-action",
        ),
        pytest.param(
            _body({"uuid": "1", "event_action": {"code": 1}}),
            "'event_action' must be text of 1 to 200 printable characters, "
            "got an object",
            id="object-event-action",
        ),
    ],
)  # fmt: skip
async def test_hook_refuses_a_signed_body_that_is_no_genea_event(
    harness: Harness, body: bytes, error: str
) -> None:
    response = await harness.post(body)
    _assert_refused(response, 400, error)


# -- order of the checks -------------------------------------------------------


async def test_hook_checks_the_endpoint_before_the_address(
    make_harness: MakeHarness, recording_store: RecordingStore
) -> None:
    endpoint = endpoint_config(allow_ips=["198.51.100.0/24"])
    harness = await make_harness(recording_store, endpoint, peer="203.0.113.9")
    response = await harness.post(BODY, endpoint="nope")
    assert response.status_code == 404


async def test_hook_checks_the_address_before_the_size(
    make_harness: MakeHarness, recording_store: RecordingStore
) -> None:
    endpoint = endpoint_config(allow_ips=["198.51.100.0/24"], max_body_bytes=10)
    harness = await make_harness(recording_store, endpoint, peer="203.0.113.9")
    response = await harness.post(BODY)
    assert response.status_code == 403


async def test_hook_checks_the_size_before_the_content_type(small: Harness) -> None:
    response = await small.post(b" " * (LIMIT + 1), content_type="text/plain")
    assert response.status_code == 413


async def test_hook_checks_the_content_type_before_the_required_header(
    with_header: Harness,
) -> None:
    response = await with_header.post(BODY, content_type="text/plain")
    assert response.status_code == 415


async def test_hook_checks_the_required_header_before_the_signature(
    with_header: Harness,
) -> None:
    response = await with_header.post(BODY, signature="sha1=bad")
    assert response.json()["error"].startswith("missing the required header")


async def test_hook_checks_the_signature_before_the_body_shape(
    harness: Harness,
) -> None:
    response = await harness.post(b"{not json", signature=sign_body(b"{}"))
    assert response.status_code == 401


# -- the store failing ---------------------------------------------------------


async def test_hook_answers_503_when_the_store_is_unavailable(
    make_harness: MakeHarness, caplog: pytest.LogCaptureFixture
) -> None:
    harness = await make_harness(RecordingStore(unavailable=True))
    with caplog.at_level(logging.INFO, logger="genea_automate.ingest"):
        response = await harness.post(BODY)
    _assert_refused(response, 503, "could not store the webhook now; try again later")
    assert harness.stored_signals == []
    [record] = caplog.records
    assert record.levelno == logging.ERROR
    assert record.getMessage() == (
        "could not store webhook 67c5b5741a2b3c4d5e6f7081 from endpoint main: "
        "disk I/O error (test double); answered 503 so Genea retries"
    )
    assert (record.__dict__["event_id"], record.__dict__["endpoint"]) == (
        "67c5b5741a2b3c4d5e6f7081",
        "main",
    )


# -- logging -------------------------------------------------------------------


async def test_hook_logs_a_refusal_without_secrets_or_body(
    make_harness: MakeHarness,
    recording_store: RecordingStore,
    caplog: pytest.LogCaptureFixture,
) -> None:
    required = RequiredHeader(name="X-Genea-Token", value=SecretStr("token-value"))
    harness = await make_harness(
        recording_store, endpoint_config(required_header=required), peer="192.0.2.4"
    )
    signature = sign_body(BODY, b"another-secret")
    headers = {"X-Genea-Token": "token-value"}
    with caplog.at_level(logging.INFO, logger="genea_automate.ingest"):
        await harness.post(BODY, signature=signature, headers=headers)
    [record] = caplog.records
    assert record.levelno == logging.WARNING
    assert record.__dict__["endpoint"] == "main"
    message = record.getMessage()
    assert message.startswith(
        "refused webhook on endpoint 'main' from 192.0.2.4: X-Sequr-Signature "
        "does not match the body"
    )
    assert message.endswith("(answered 401)")
    for secret in (signature.removeprefix("sha1="), SECRET.decode(), "token-value"):
        assert secret not in caplog.text
    assert "SEQUR" not in caplog.text


async def test_hook_shortens_a_long_unknown_endpoint_name(harness: Harness) -> None:
    response = await harness.post(BODY, endpoint="x" * 500)
    assert response.json() == {
        "error": f"no endpoint named '{'x' * 80}...' is configured"
    }
