"""A wait pending when the real daemon is killed, and a deadline that passes
while no daemon runs: on_missed decides, and the trace says which."""

from __future__ import annotations

import json
import sqlite3
import time
from collections.abc import Callable, Iterator
from datetime import UTC, datetime
from pathlib import Path

import pytest

from genea_automate.store.sqltime import from_text
from tests.support.daemon import DaemonProcess
from tests.support.genea import TEST_SECRET, body_of, payload
from tests.support.mosquitto import Mosquitto, Subscriber

CONFIG = """
store: "sqlite:///./store.db"
endpoints:
  main: {{secret: "{secret}"}}
mqtt:
  default: {{url: "{broker}"}}
rules:
  - id: door-left-open
    on_missed: {on_missed}
    when: door.held_open
    then:
      - wait_for: {{event: door.secured, same: door, timeout: 2s}}
        on_timeout:
          - mqtt: {{topic: doors/left-open, payload: "{{{{ door.name }}}}"}}
            retry: {{attempts: 200, backoff: 100ms, max_backoff: 500ms}}
"""
HELD = "e2e-held"


@pytest.fixture
def start_daemon(
    tmp_path: Path, mosquitto: Mosquitto
) -> Iterator[Callable[[str], DaemonProcess]]:
    """Start the daemon with this rule's `on_missed`; stopped at the end."""
    started: list[DaemonProcess] = []

    def start(on_missed: str) -> DaemonProcess:
        config = tmp_path / "rules.yaml"
        config.write_text(
            CONFIG.format(secret=TEST_SECRET, broker=mosquitto.url, on_missed=on_missed)
        )
        started.append(DaemonProcess(config))
        started[-1].start()
        return started[-1]

    yield start
    for daemon in started:
        if daemon.running:
            daemon.stop()


def query(daemon: DaemonProcess, sql: str) -> list[tuple[str, ...]]:
    with sqlite3.connect(daemon.config.parent / "store.db") as db:
        return db.execute(sql).fetchall()


def kill_with_wait_pending(daemon: DaemonProcess) -> None:
    """Start a wait, SIGKILL the daemon, and let its deadline pass while it is
    down: the one pause here is until that recorded deadline, on purpose."""
    assert daemon.post(body_of(payload("11", uuid=HELD))).json() == {"status": "stored"}
    daemon.wait_for_log(f"rule door-left-open fired for event {HELD}")
    [(deadline,)] = query(daemon, "SELECT deadline FROM waits")
    daemon.kill()
    time.sleep(max((from_text(deadline) - datetime.now(UTC)).total_seconds(), 0) + 0.1)


def test_wait_missed_while_killed_fires_once_after_restart(
    start_daemon: Callable[[str], DaemonProcess], mosquitto: Mosquitto
) -> None:
    daemon = start_daemon("{policy: run, grace: 1m}")
    with Subscriber(mosquitto.host, mosquitto.port, "doors/left-open") as subscriber:
        kill_with_wait_pending(daemon)
        mark = len(daemon.log)
        daemon.start()
        line = daemon.wait_for_log(
            f"the wait begun by event {HELD} timed out", since=mark
        )
        assert "missed while the daemon was down" in line
        assert "on_missed: run within 1m, so run now; 1 action(s) queued" in line
        assert subscriber.get(timeout=15).payload == b"Studio Main Entrance"
        daemon.wait_for_log("delivered mqtt default doors/left-open", since=mark)

        daemon.kill()
        mark = len(daemon.log)
        daemon.start()
        daemon.wait_for_log("timers started", since=mark)
        assert subscriber.messages.empty()
    daemon.stop()
    assert query(daemon, "SELECT event_id, step, state FROM outbox") == [
        (HELD, "0.on_timeout.0", "delivered")
    ]


def test_wait_missed_while_killed_with_on_missed_skip_does_not_fire(
    start_daemon: Callable[[str], DaemonProcess],
) -> None:
    daemon = start_daemon("skip")
    kill_with_wait_pending(daemon)
    mark = len(daemon.log)
    daemon.start()
    line = daemon.wait_for_log(f"the wait begun by event {HELD} skipped", since=mark)
    assert "missed while the daemon was down" in line
    assert "on_missed: skip, so not run; 0 action(s) queued" in line
    daemon.wait_for_log("timers started", since=mark)
    daemon.stop()

    [(trace,)] = query(daemon, "SELECT trace FROM timer_runs")
    assert json.loads(trace)["outcome"] == "skipped"
    assert query(daemon, "SELECT * FROM outbox") == []
    assert query(daemon, "SELECT * FROM waits") == []
