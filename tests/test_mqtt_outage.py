"""MQTT with real processes: a broker outage, and two daemons on one broker.

The outage lasts GENEA_TEST_MQTT_OUTAGE seconds (5 by default, to keep the
suite quick). What a longer one adds is only that the daemon's reconnect
backoff reaches its 30 s ceiling; run it with 60 to see that too.
"""

from __future__ import annotations

import os
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.support.daemon import DaemonProcess
from tests.support.genea import TEST_SECRET, body_of, payload
from tests.support.mosquitto import Mosquitto, Subscriber

OUTAGE = float(os.environ.get("GENEA_TEST_MQTT_OUTAGE", "5"))
EVENTS = 100
TOPIC = "office/badges"
RULES = """
store: "sqlite:///./store.db"
endpoints:
  main: {{secret: "{secret}"}}
mqtt:
  default: {{url: "{broker}"{client_id}}}
rules:
  - id: badge
    when: {{event: access.granted}}
    then:
      - mqtt: {{topic: {topic}, payload: "{{{{ event.id }}}}", qos: 1}}
"""


def write_rules(folder: Path, broker: Mosquitto, client_id: str | None = None) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    fixed = f", client_id: {client_id}" if client_id else ""
    config = folder / "rules.yaml"
    config.write_text(
        RULES.format(secret=TEST_SECRET, broker=broker.url, client_id=fixed,
                     topic=TOPIC)
    )  # fmt: skip
    return config


@pytest.fixture
def daemons() -> Iterator[list[DaemonProcess]]:
    started: list[DaemonProcess] = []
    yield started
    for daemon in started:
        if daemon.running:
            daemon.stop()


def post(daemon: DaemonProcess, uuid: str) -> None:
    assert daemon.post(body_of(payload("01", uuid=uuid))).status_code == 200


def test_mqtt_messages_wait_out_a_broker_outage_in_order_and_once(
    tmp_path: Path, daemons: list[DaemonProcess]
) -> None:
    broker = Mosquitto(tmp_path / "broker", persistence=True)
    broker.start()
    daemon = DaemonProcess(write_rules(tmp_path, broker))
    daemons.append(daemon)
    daemon.start()
    daemon.wait_for_log("MQTT connection 'default' connected")
    # A persistent session: the broker keeps what arrives while it is away.
    subscriber = Subscriber(
        broker.host, broker.port, TOPIC, client_id="outage-subscriber",
        clean_session=False,
    )  # fmt: skip
    try:
        broker.stop()
        daemon.wait_for_log("is down")
        down_at = time.monotonic()
        uuids = [f"outage-{n:03d}" for n in range(EVENTS)]
        for n, uuid in enumerate(uuids):
            # Spread over the outage, as badges would come in.
            time.sleep(max(0.0, down_at + OUTAGE * n / EVENTS - time.monotonic()))
            post(daemon, uuid)
        time.sleep(max(0.0, down_at + OUTAGE - time.monotonic()))
        broker.start()

        received = [subscriber.get(timeout=60).payload.decode() for _ in uuids]
        assert received == uuids
        # In order per topic: a second copy of any would come before this one.
        post(daemon, "after")
        assert subscriber.get(timeout=15).payload == b"after"
        assert subscriber.messages.empty()
    finally:
        subscriber.close()
        broker.stop()


@pytest.mark.parametrize(
    ("client_id", "both_stay"),
    [(None, True), ("one-fixed-id", False)],
    ids=["unique-default-ids", "same-fixed-id"],
)
def test_mqtt_two_daemons_with_one_config(
    tmp_path: Path,
    daemons: list[DaemonProcess],
    client_id: str | None,
    both_stay: bool,
) -> None:
    broker = Mosquitto(tmp_path / "broker")
    broker.start()
    try:
        first, second = (
            DaemonProcess(write_rules(tmp_path / name, broker, client_id))
            for name in ("a", "b")
        )
        daemons.extend([first, second])
        first.start()
        first.wait_for_log("MQTT connection 'default' connected")
        second.start()
        second.wait_for_log("MQTT connection 'default' connected")
        if not both_stay:
            # The broker drops the older of two clients with one id.
            first.wait_for_log("is down")
            return

        with Subscriber(broker.host, broker.port, TOPIC) as subscriber:
            for daemon, uuid in ((first, "via-a"), (second, "via-b"), (first, "a2")):
                post(daemon, uuid)
                assert subscriber.get(timeout=15).payload.decode() == uuid
        for daemon in (first, second):
            assert not [line for line in daemon.log if "is down" in line]
        assert not [line for line in broker.log if "already connected" in line]
    finally:
        for daemon in daemons:
            if daemon.running:
                daemon.stop()
        broker.stop()
