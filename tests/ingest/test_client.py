"""The CLI's sign and send helpers, sending to a real uvicorn server."""

from __future__ import annotations

import json
import socket
import threading
import time
from collections.abc import Iterator
from datetime import UTC
from pathlib import Path

import httpx
import pytest
import uvicorn

from genea_automate.clock import FrozenClock
from genea_automate.errors import GeneaAutomateError
from genea_automate.ingest import create_ingest_app
from genea_automate.ingest.client import (
    fresh_copy,
    read_payload,
    resolve_secret,
    send_body,
    sign_file,
)

from .conftest import (
    NOW,
    PAYLOAD_DIR,
    PAYLOAD_IDS,
    PAYLOADS,
    SECRET,
    Payload,
    RecordingStore,
    endpoint_config,
)

FIRST = PAYLOAD_DIR / PAYLOADS[0].name


@pytest.mark.parametrize("payload", PAYLOADS, ids=PAYLOAD_IDS)
def test_sign_file_matches_the_readme(payload: Payload) -> None:
    assert sign_file(PAYLOAD_DIR / payload.name, SECRET.decode()) == payload.signature


def test_sign_file_names_a_missing_file(tmp_path: Path) -> None:
    missing = tmp_path / "nope.json"
    with pytest.raises(GeneaAutomateError) as caught:
        sign_file(missing, "s")
    assert str(caught.value) == (
        f"cannot read payload file {str(missing)!r}: No such file or directory"
    )


def test_resolve_secret_prefers_the_option() -> None:
    assert resolve_secret("given", {"GENEA_WEBHOOK_SECRET": "env"}) == "given"


def test_resolve_secret_falls_back_to_the_environment() -> None:
    assert resolve_secret(None, {"GENEA_WEBHOOK_SECRET": "env"}) == "env"


@pytest.mark.parametrize("environ", [{}, {"GENEA_WEBHOOK_SECRET": ""}])
def test_resolve_secret_says_how_to_give_one(environ: dict[str, str]) -> None:
    with pytest.raises(GeneaAutomateError) as caught:
        resolve_secret(None, environ)
    assert str(caught.value) == (
        "no webhook secret: pass --secret SECRET or set GENEA_WEBHOOK_SECRET "
        "to the secret Genea shows for the webhook"
    )


@pytest.fixture(scope="module")
def server() -> Iterator[tuple[str, RecordingStore]]:
    """A real uvicorn serving the ingest app on a free loopback port."""
    store = RecordingStore()
    app = create_ingest_app(
        lambda: {"main": endpoint_config()}, store, FrozenClock(NOW), lambda: None
    )
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    config = uvicorn.Config(app, log_level="warning", proxy_headers=False)
    server = uvicorn.Server(config)
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]})
    thread.start()
    while not server.started:
        time.sleep(0.01)
    yield f"http://127.0.0.1:{sock.getsockname()[1]}/hooks/main", store
    server.should_exit = True
    thread.join()
    sock.close()


def test_send_body_posts_the_exact_bytes_signed(
    server: tuple[str, RecordingStore],
) -> None:
    url, store = server
    response = send_body(read_payload(FIRST), url, SECRET.decode(), timeout=5)
    assert (response.status_code, response.json()) == (200, {"status": "stored"})
    assert store.calls[-1][2] == FIRST.read_bytes()


def test_send_body_with_the_wrong_secret_is_refused(
    server: tuple[str, RecordingStore],
) -> None:
    url, _ = server
    response = send_body(read_payload(FIRST), url, "not-the-secret", timeout=5)
    assert response.status_code == 401


def test_real_server_refuses_a_huge_chunked_body_early(
    server: tuple[str, RecordingStore],
) -> None:
    url, _ = server
    sent = 0

    def chunks() -> Iterator[bytes]:
        nonlocal sent
        for _ in range(10_000):
            sent += 1
            yield b" " * 65536

    headers = {"Content-Type": "application/json", "X-Sequr-Signature": "sha1=0"}
    outcome: int | str
    try:
        response = httpx.post(url, content=chunks(), headers=headers, timeout=5)
        outcome = response.status_code
    except httpx.HTTPError:
        outcome = "closed"  # the server closed the socket while we were sending
    assert outcome in (413, "closed")
    # The server closes the connection instead of draining 640 MiB.
    assert sent < 10_000


def test_fresh_copy_keeps_a_numeric_uuid_a_number_and_the_rest_as_it_was(
    tmp_path: Path,
) -> None:
    event = tmp_path / "audit.json"
    event.write_text('{"uuid": 892, "event_time": "2025-01-01T00:00:00Z", "x": [1]}')

    body, uuid = fresh_copy(event, NOW)

    sent = json.loads(body)
    assert isinstance(sent["uuid"], int) and str(sent["uuid"]) == uuid
    assert sent["event_time"] == NOW.astimezone(UTC).isoformat(
        timespec="milliseconds"
    ).replace("+00:00", "Z")
    assert "created_at" not in sent
    assert sent["x"] == [1]


def test_fresh_copy_refuses_json_that_is_not_an_object(tmp_path: Path) -> None:
    event = tmp_path / "list.json"
    event.write_text("[1, 2]")
    with pytest.raises(GeneaAutomateError, match="holds no JSON object"):
        fresh_copy(event, NOW)
