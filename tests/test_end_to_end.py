"""The whole path with real processes: signed webhook in, MQTT message out."""

from __future__ import annotations

import sqlite3
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from tests.support.daemon import DaemonProcess
from tests.support.genea import TEST_SECRET, body_of, payload
from tests.support.mosquitto import Mosquitto, Subscriber
from tests.support.readonly import unwritable

CONFIG = """
store: "sqlite:///./store.db"
endpoints:
  main: {{secret: "{secret}"}}
mqtt:
  default: {{url: "{broker}"}}
rules:
  - id: morning-coffee
    when: {{event: access.granted, location: Harborview Labs HQ}}
    if:
      - first_arrival: location
    then:
      - mqtt: {{topic: office/coffee/set, payload: on}}
        retry: {{attempts: 200, backoff: 100ms, max_backoff: 500ms}}
"""


@pytest.fixture
def daemon(tmp_path: Path, mosquitto: Mosquitto) -> Iterator[DaemonProcess]:
    config = tmp_path / "rules.yaml"
    config.write_text(CONFIG.format(secret=TEST_SECRET, broker=mosquitto.url))
    process = DaemonProcess(config)
    process.start()
    yield process
    if process.running:
        process.stop()


def outbox_states(daemon: DaemonProcess) -> list[tuple[str, str]]:
    with sqlite3.connect(daemon.config.parent / "store.db") as db:
        return db.execute("SELECT event_id, state FROM outbox ORDER BY id").fetchall()


def test_first_arrival_publishes_once_across_retries_and_restart(
    daemon: DaemonProcess, mosquitto: Mosquitto
) -> None:
    first = body_of(payload("01", uuid="e2e-first"))
    same_day = body_of(
        payload("01", uuid="e2e-later", event_time="2025-03-03T15:00:00.000Z")
    )
    next_day = body_of(
        payload("01", uuid="e2e-next-day", event_time="2025-03-04T13:00:00.000Z")
    )

    with Subscriber(mosquitto.host, mosquitto.port, "office/coffee/set") as subscriber:
        assert daemon.post(first).json() == {"status": "stored"}
        assert subscriber.get(timeout=15).payload == b"on"
        assert daemon.post(first).json() == {"status": "duplicate"}
        assert daemon.post(first).json() == {"status": "duplicate"}

        daemon.kill()
        daemon.start()
        assert daemon.post(first).json() == {"status": "duplicate"}

        mark = len(daemon.log)
        assert daemon.post(same_day).json() == {"status": "stored"}
        daemon.wait_for_log(
            "event e2e-later (access.granted) on endpoint main: no rule fired",
            since=mark,
        )
        assert daemon.post(next_day).json() == {"status": "stored"}
        # Delivery is in order per topic: any second copy of the first message
        # would have arrived before the next day's.
        assert subscriber.get(timeout=15).payload == b"on"
        assert subscriber.messages.empty()
        daemon.wait_for_log("for rule morning-coffee (event e2e-next-day)", since=mark)

    assert outbox_states(daemon) == [
        ("e2e-first", "delivered"),
        ("e2e-next-day", "delivered"),
    ]


def test_broker_down_message_arrives_when_it_is_back(
    daemon: DaemonProcess, mosquitto: Mosquitto
) -> None:
    mosquitto.stop()
    daemon.wait_for_log("is down")
    mark = len(daemon.log)
    assert daemon.post(body_of(payload("01", uuid="e2e-down"))).json() == {
        "status": "stored"
    }
    daemon.wait_for_log("rule morning-coffee fired for event e2e-down", since=mark)

    mosquitto.start()
    daemon.wait_for_log("delivered mqtt default office/coffee/set", since=mark)
    assert outbox_states(daemon) == [("e2e-down", "delivered")]
    # Waiting for the broker used up no attempt: the one that worked is the first.
    assert not [line for line in daemon.log[mark:] if "failed (attempt" in line]
    with sqlite3.connect(daemon.config.parent / "store.db") as db:
        assert db.execute("SELECT attempts FROM outbox").fetchall() == [(1,)]


def test_bad_requests_store_and_fire_nothing(daemon: DaemonProcess) -> None:
    body = body_of(payload("01", uuid="e2e-refused"))
    wrong_signature = {
        "Content-Type": "application/json",
        "X-Sequr-Signature": "sha1=" + "0" * 40,
    }
    url = f"{daemon.url}/hooks/main"
    answers = [
        httpx.post(url, content=body, headers=wrong_signature).status_code,
        httpx.post(
            url, content=body, headers={"Content-Type": "text/plain"}
        ).status_code,
        httpx.post(f"{daemon.url}/hooks/nope", content=body).status_code,
        daemon.post(b"{not json").status_code,
        daemon.post(body_of({"event_action": "X"})).status_code,
        daemon.post(b"x" * (1024 * 1024 + 1)).status_code,
    ]
    assert answers == [401, 415, 404, 400, 400, 413]
    with sqlite3.connect(daemon.config.parent / "store.db") as db:
        assert db.execute("SELECT COUNT(*) FROM events").fetchone() == (0,)
    assert outbox_states(daemon) == []


def test_unwritable_store_answers_503_never_200(daemon: DaemonProcess) -> None:
    body = body_of(payload("01", uuid="e2e-unwritable"))
    store = daemon.config.parent / "store.db"
    wal = store.with_name("store.db-wal")
    assert wal.exists()

    with unwritable(store, wal):
        refused = daemon.post(body)
    assert refused.status_code == 503
    assert "could not store the webhook" in refused.json()["error"]

    assert daemon.post(body).json() == {"status": "stored"}
