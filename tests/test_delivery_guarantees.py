"""Retry-After, dead letters and shutdown, with real processes on loopback."""

from __future__ import annotations

import signal
import sqlite3
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from itertools import pairwise
from pathlib import Path
from types import SimpleNamespace

import pytest
import uvicorn

from genea_automate.server import DaemonServer
from tests.support.daemon import DaemonProcess
from tests.support.genea import TEST_SECRET, body_of, payload
from tests.support.http_server import LoopbackHttpServer, Reply

SLACK_RULES = """
store: "sqlite:///./store.db"
endpoints:
  main: {{secret: "{secret}"}}
slack:
  ops: {{webhook_url: "{url}/services/T0/B0/token"}}
rules:
  - id: notify
    when: {{event: access.granted}}
    then:
      - slack: {{text: "badge {{{{ event.id }}}}"}}
        retry: {{attempts: 5, backoff: 100ms, max_backoff: 1s}}
"""

HTTP_RULES = """
store: "sqlite:///./store.db"
endpoints:
  main: {{secret: "{secret}"}}
rules:
  - id: clock-in
    when: {{event: access.granted}}
    then:
      - http: {{url: "{url}/clock-in", json: {{event: "{{{{ event.id }}}}"}}}}
        retry: {{attempts: 3, backoff: 100ms, max_backoff: 200ms}}
        timeout: {timeout}
"""


@pytest.fixture
def target() -> Iterator[LoopbackHttpServer]:
    server = LoopbackHttpServer()
    server.start()
    yield server
    server.stop()


def start_daemon(tmp_path: Path, rules: str) -> DaemonProcess:
    config = tmp_path / "rules.yaml"
    config.write_text(rules)
    daemon = DaemonProcess(config)
    daemon.start()
    return daemon


@pytest.fixture
def stop_later() -> Iterator[list[DaemonProcess]]:
    daemons: list[DaemonProcess] = []
    yield daemons
    for daemon in daemons:
        if daemon.running:
            daemon.stop()


def cli(config: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "genea_automate", "dlq", *args, "-c", str(config)],
        capture_output=True, text=True, timeout=30, check=False,
    )  # fmt: skip


def outbox(daemon: DaemonProcess) -> list[tuple[str, int]]:
    with sqlite3.connect(daemon.config.parent / "store.db") as db:
        return db.execute("SELECT state, attempts FROM outbox ORDER BY id").fetchall()


def test_slack_429_retry_after_is_honoured_and_posts_are_paced(
    tmp_path: Path, target: LoopbackHttpServer, stop_later: list[DaemonProcess]
) -> None:
    target.reply(Reply(429, "rate_limited", headers={"Retry-After": "1"}))
    daemon = start_daemon(
        tmp_path, SLACK_RULES.format(secret=TEST_SECRET, url=target.url)
    )
    stop_later.append(daemon)
    uuids = [f"burst-{n}" for n in range(6)]
    for uuid in uuids:
        assert daemon.post(body_of(payload("01", uuid=uuid))).status_code == 200

    requests = target.wait_for_requests(7, timeout=30)
    assert [r.json()["text"] for r in requests] == [
        "badge burst-0",
        *(f"badge {uuid}" for uuid in uuids),
    ]
    gaps = [later.at - earlier.at for earlier, later in pairwise(requests)]
    assert gaps[0] >= 1.0  # Retry-After: 1, counted from the 429
    assert min(gaps) >= 0.9  # about one message a second per webhook

    daemon.wait_for_log("delivered slack ops for rule notify (event burst-5)")
    lines = [line for line in daemon.log if "slack ops for rule notify" in line]
    assert "WARNING" in lines[0] and "HTTP 429 Too Many Requests" in lines[0]
    assert "failed (attempt 1 of 5)" in lines[0] and "retrying in 1.0s" in lines[0]
    delivered = [line for line in lines if "delivered slack ops" in line]
    assert [line.split("(event ")[1] for line in delivered] == [
        f"{uuid})" for uuid in uuids
    ]
    assert outbox(daemon) == [("delivered", 2)] + [("delivered", 1)] * 5


def test_http_500_forever_ends_in_the_dead_letters_and_dlq_retry_delivers_once(
    tmp_path: Path, target: LoopbackHttpServer, stop_later: list[DaemonProcess]
) -> None:
    target.default = Reply(500, "broken")
    daemon = start_daemon(
        tmp_path, HTTP_RULES.format(secret=TEST_SECRET, url=target.url, timeout="5s")
    )
    stop_later.append(daemon)
    assert daemon.post(body_of(payload("01", uuid="doomed"))).status_code == 200
    failed = daemon.wait_for_log("moved to the dead letters")
    assert "gave up after 3 attempt(s): HTTP 500 Internal Server Error; moved" in (
        failed
    )

    listing = cli(daemon.config, "list")
    assert listing.returncode == 0
    [header, row] = listing.stdout.splitlines()
    assert header.split()[:3] == ["ID", "FAILED", "AT"]
    assert row.split()[0] == "1" and "doomed" in row and "HTTP 500" in row
    shown = cli(daemon.config, "show", "1").stdout
    assert "idempotency key: main:doomed:clock-in:0" in shown
    assert "attempts:        3 of 3" in shown

    target.default = Reply(200, "ok")
    mark = len(daemon.log)
    retried = cli(daemon.config, "retry", "1")
    assert retried.returncode == 0, retried.stderr
    assert retried.stdout.startswith("retried 1 dead letter(s)")
    daemon.wait_for_log("delivered http POST", since=mark)

    keys = [r.headers["idempotency-key"] for r in target.requests]
    assert keys == ["main:doomed:clock-in:0"] * 4
    assert outbox(daemon) == [("delivered", 1)]
    assert cli(daemon.config, "list").stdout == "no dead letters\n"


def test_sigterm_lets_a_delivery_finish_within_the_bound_then_exits(
    tmp_path: Path, target: LoopbackHttpServer, stop_later: list[DaemonProcess]
) -> None:
    release = threading.Event()
    target.default = Reply(200, "ok", hold=release)
    daemon = start_daemon(
        tmp_path, HTTP_RULES.format(secret=TEST_SECRET, url=target.url, timeout="60s")
    )
    stop_later.append(daemon)
    assert daemon.post(body_of(payload("01", uuid="in-flight"))).status_code == 200
    target.wait_for_requests(1, timeout=10)

    started = time.monotonic()
    daemon.stop()  # the target never answers: the delivery is cut off
    assert time.monotonic() - started < 10
    daemon.wait_for_log("stopped 1 delivery(ies) still running after 5s")
    assert outbox(daemon) == [("pending", 0)]

    release.set()
    target.default = Reply(200, "ok")
    daemon.start()
    daemon.wait_for_log("delivered http POST")
    keys = [r.headers["idempotency-key"] for r in target.requests]
    assert keys == ["main:in-flight:clock-in:0"] * 2  # in flight at the stop: twice
    assert outbox(daemon) == [("delivered", 1)]


def test_sigterm_makes_ingest_answer_503_before_uvicorn_stops_listening() -> None:
    daemon = SimpleNamespace(draining=False)
    server = DaemonServer(uvicorn.Config(app=None), daemon)  # type: ignore[arg-type]
    server.handle_exit(signal.SIGTERM, None)
    assert daemon.draining is True
    assert server.should_exit is True
