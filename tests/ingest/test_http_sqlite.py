"""Ingest accepting webhooks into the real SQLite store."""

from __future__ import annotations

import json
import logging
import shutil
from collections.abc import AsyncIterator
from pathlib import Path

import httpx
import pytest
from pydantic import SecretStr

from genea_automate.config.endpoints import RequiredHeader
from genea_automate.store import Store, open_store

from .conftest import (
    NOW,
    PAYLOAD_IDS,
    PAYLOADS,
    Harness,
    MakeHarness,
    Payload,
    endpoint_config,
    sign_body,
)

BODY = PAYLOADS[0].body
UUID = json.loads(BODY)["uuid"]
OLD_SECRET = b"the-secret-before-rotation"


@pytest.fixture
async def store(tmp_path: Path) -> AsyncIterator[Store]:
    store = open_store("sqlite:///" + str(tmp_path / "x.db"))
    await store.open()
    yield store
    await store.close()


@pytest.fixture
async def harness(make_harness: MakeHarness, store: Store) -> Harness:
    return await make_harness(store)


async def _stored(store: Store) -> list[tuple[str, str, bytes]]:
    events = await store.pending_events(100)
    assert all(event.received_at == NOW for event in events)
    return [(event.endpoint, event.uuid, event.body) for event in events]


def _assert_stored(response: httpx.Response) -> None:
    assert (response.status_code, response.json()) == (200, {"status": "stored"})


@pytest.mark.parametrize("payload", PAYLOADS, ids=PAYLOAD_IDS)
async def test_hook_stores_each_shared_payload_as_sent(
    harness: Harness, store: Store, payload: Payload
) -> None:
    response = await harness.post(payload.body, signature=payload.signature)
    _assert_stored(response)
    uuid = json.loads(payload.body)["uuid"]
    assert await _stored(store) == [("main", uuid, payload.body)]
    assert len(harness.stored_signals) == 1


@pytest.mark.parametrize("payload", PAYLOADS, ids=PAYLOAD_IDS)
async def test_hook_accepts_reformatted_payloads_via_the_fallback(
    harness: Harness, store: Store, payload: Payload
) -> None:
    spaced = json.dumps(json.loads(payload.body)).encode()
    response = await harness.post(spaced, signature=payload.signature)
    _assert_stored(response)
    # What was received is what is kept, even when it is not what Genea signed.
    assert [body for _, _, body in await _stored(store)] == [spaced]


async def test_hook_parses_a_reformatted_body_only_once(
    harness: Harness, monkeypatch: pytest.MonkeyPatch
) -> None:
    decoded: list[str] = []
    decoder = json.JSONDecoder()

    class CountingDecoder:
        def decode(self, text: str) -> object:
            decoded.append(text)
            return decoder.decode(text)

    monkeypatch.setattr("genea_automate.ingest.http._DECODER", CountingDecoder())
    spaced = json.dumps(json.loads(BODY)).encode()
    _assert_stored(await harness.post(spaced, signature=PAYLOADS[0].signature))
    assert len(decoded) == 1


async def test_hook_accepts_a_previous_secret(
    make_harness: MakeHarness, store: Store
) -> None:
    endpoint = endpoint_config(previous_secrets=[OLD_SECRET.decode()])
    harness = await make_harness(store, endpoint)
    _assert_stored(await harness.post(BODY, signature=sign_body(BODY, OLD_SECRET)))


@pytest.mark.parametrize(
    "content_type",
    ["application/json; charset=utf-8", "Application/JSON", "application/json ;x=1"],
)
async def test_hook_accepts_content_type_parameters(
    harness: Harness, content_type: str
) -> None:
    _assert_stored(await harness.post(BODY, content_type=content_type))


async def test_hook_accepts_a_padded_upper_case_signature(harness: Harness) -> None:
    signature = " sha1=" + sign_body(BODY).removeprefix("sha1=").upper() + " "
    _assert_stored(await harness.post(BODY, signature=signature))


async def test_hook_accepts_a_chunked_body_within_the_limit(
    harness: Harness, store: Store
) -> None:
    async def chunks() -> AsyncIterator[bytes]:
        for start in range(0, len(BODY), 100):
            yield BODY[start : start + 100]

    headers = {"Content-Type": "application/json", "X-Sequr-Signature": sign_body(BODY)}
    response = await harness.client.post(
        "/hooks/main", content=chunks(), headers=headers
    )
    _assert_stored(response)
    assert await _stored(store) == [("main", UUID, BODY)]


async def test_hook_accepts_an_integer_uuid(harness: Harness, store: Store) -> None:
    body = b'{"uuid":1234567,"event_action":"CREATED"}'
    _assert_stored(await harness.post(body))
    assert await _stored(store) == [("main", "1234567", body)]


async def test_hook_accepts_the_required_header(
    make_harness: MakeHarness, store: Store
) -> None:
    required = RequiredHeader(name="X-Genea-Token", value=SecretStr("token-value"))
    harness = await make_harness(store, endpoint_config(required_header=required))
    response = await harness.post(BODY, headers={"x-genea-token": "token-value"})
    _assert_stored(response)


async def test_hook_accepts_an_allowed_caller_behind_a_trusted_proxy(
    make_harness: MakeHarness, store: Store
) -> None:
    endpoint = endpoint_config(
        allow_ips=["198.51.100.0/24"], trusted_proxies=["10.0.0.0/8"]
    )
    harness = await make_harness(store, endpoint, peer="10.0.0.2")
    forwarded = {"X-Forwarded-For": "203.0.113.9, 198.51.100.7, 10.0.0.3"}
    _assert_stored(await harness.post(BODY, headers=forwarded))


async def test_hook_answers_a_duplicate_without_storing_it_again(
    harness: Harness, store: Store, caplog: pytest.LogCaptureFixture
) -> None:
    _assert_stored(await harness.post(BODY))
    with caplog.at_level(logging.INFO, logger="genea_automate.ingest"):
        response = await harness.post(BODY)
    assert (response.status_code, response.json()) == (200, {"status": "duplicate"})
    assert await _stored(store) == [("main", UUID, BODY)]
    assert len(harness.stored_signals) == 1
    [record] = caplog.records
    assert (record.levelno, record.getMessage()) == (
        logging.INFO,
        f"duplicate webhook {UUID} on endpoint main; already stored, answered 200",
    )


async def test_hook_keeps_uuids_apart_per_endpoint(
    harness: Harness, store: Store
) -> None:
    harness.endpoints["side"] = endpoint_config()
    _assert_stored(await harness.post(BODY))
    _assert_stored(await harness.post(BODY, endpoint="side"))
    assert {endpoint for endpoint, _, _ in await _stored(store)} == {"main", "side"}


async def test_hook_logs_one_debug_line_per_stored_webhook(
    harness: Harness, caplog: pytest.LogCaptureFixture
) -> None:
    with caplog.at_level(logging.DEBUG, logger="genea_automate.ingest"):
        await harness.post(BODY)
    [record] = caplog.records
    assert (record.levelno, record.getMessage()) == (
        logging.DEBUG,
        f"stored webhook {UUID} (SEQUR_ACCESS_GRANTED) on endpoint main",
    )
    assert (record.__dict__["event_id"], record.__dict__["endpoint"]) == (UUID, "main")


async def test_hook_still_answers_200_when_on_stored_fails(
    make_harness: MakeHarness, store: Store, caplog: pytest.LogCaptureFixture
) -> None:
    def broken() -> None:
        raise RuntimeError("processor gone")

    harness = await make_harness(store, on_stored=broken)
    _assert_stored(await harness.post(BODY))
    assert "on_stored callback failed" in caplog.text
    assert await _stored(store) == [("main", UUID, BODY)]


async def test_hook_answers_503_once_the_store_folder_is_deleted(
    make_harness: MakeHarness, tmp_path: Path
) -> None:
    folder = tmp_path / "data"
    folder.mkdir()
    store = open_store("sqlite:///" + str(folder / "x.db"))
    await store.open()
    harness = await make_harness(store)
    _assert_stored(await harness.post(BODY))

    shutil.rmtree(folder)
    other = PAYLOADS[1]
    response = await harness.post(other.body, signature=other.signature)
    await store.close()

    assert (response.status_code, response.json()) == (
        503,
        {"error": "could not store the webhook now; try again later"},
    )
    assert len(harness.stored_signals) == 1


async def test_hook_answers_503_when_the_store_is_not_open(
    make_harness: MakeHarness, tmp_path: Path
) -> None:
    closed = open_store("sqlite:///" + str(tmp_path / "closed.db"))
    harness = await make_harness(closed)
    response = await harness.post(BODY)
    assert response.status_code == 503
    assert harness.stored_signals == []
