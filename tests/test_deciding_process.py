"""`serve` decides rules in a second process: it is watched, fed and stopped."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from tests.support.daemon import DaemonProcess, ended_within
from tests.support.genea import TEST_SECRET, body_of, payload

CONFIG = """
store: "sqlite:///./store.db"
endpoints:
  main: {{secret: "{secret}"}}
rules:
  - id: greet
    when: {{event: access.granted}}
    then:
      - log: {{message: "hello {{{{ actor.name }}}}"}}
"""


@pytest.fixture
def daemon(tmp_path: Path) -> Iterator[DaemonProcess]:
    config = tmp_path / "rules.yaml"
    config.write_text(CONFIG.format(secret=TEST_SECRET))
    process = DaemonProcess(config)
    process.start()
    yield process
    if process.running:
        process.stop()


def post_granted(daemon: DaemonProcess, uuid: str) -> None:
    mark = len(daemon.log)
    assert daemon.post(body_of(payload("01", uuid=uuid))).json() == {"status": "stored"}
    daemon.wait_for_log(
        f"event {uuid} (access.granted) on endpoint main: fired greet", since=mark
    )


def command_line(pid: int) -> list[str]:
    return Path(f"/proc/{pid}/cmdline").read_bytes().decode().split("\0")


def test_rules_are_decided_in_a_second_process(daemon: DaemonProcess) -> None:
    pid = daemon.deciding_pid()

    assert pid != daemon.pid
    assert command_line(pid)[1:3] == ["-m", "genea_automate.decider"]
    mark = len(daemon.log)
    post_granted(daemon, "apart-1")
    # Decided there, delivered here: the log action runs in the daemon.
    daemon.wait_for_log("hello ", since=mark)


def test_a_killed_deciding_process_is_started_again_and_decides_what_waited(
    daemon: DaemonProcess,
) -> None:
    first = daemon.deciding_pid()
    post_granted(daemon, "before-the-crash")

    mark = len(daemon.log)
    daemon.kill_pid(first)
    stopped = daemon.wait_for_log("event processing stopped", since=mark)
    assert "ERROR" in stopped
    assert f"deciding process {first} ended with exit code -9" in "\n".join(
        daemon.log[mark:]
    )
    # Acknowledged while no process decides: stored, and decided by the next one.
    assert daemon.post(body_of(payload("01", uuid="while-down"))).json() == {
        "status": "stored"
    }
    second = daemon.deciding_pid(since=mark)
    assert second != first
    daemon.wait_for_log(
        "event while-down (access.granted) on endpoint main: fired greet", since=mark
    )
    post_granted(daemon, "after-the-restart")


def test_the_deciding_process_ends_with_a_killed_daemon(daemon: DaemonProcess) -> None:
    pid = daemon.deciding_pid()

    daemon.kill()  # SIGKILL: the daemon's own shutdown code never runs

    # Its stderr is the daemon's: it closes once the deciding process exits.
    assert daemon.output_closed
    assert ended_within(pid, timeout=10)


def test_a_stopped_daemon_stops_its_deciding_process(daemon: DaemonProcess) -> None:
    pid = daemon.deciding_pid()

    daemon.stop()

    assert ended_within(pid, timeout=10)
    assert any("genea-automate stopped" in line for line in daemon.log)
    assert not any("Traceback" in line for line in daemon.log)


def test_metrics_count_what_the_deciding_process_decided(
    daemon: DaemonProcess,
) -> None:
    for uuid in ("count-1", "count-2", "count-3"):
        post_granted(daemon, uuid)

    text = httpx.get(f"{daemon.url}/metrics", timeout=10).text
    assert 'genea_events_total{kind="access.granted"} 3.0' in text
    assert 'genea_rule_firings_total{rule="greet"} 3.0' in text
    assert 'genea_rule_evaluations_total{result="fired",rule="greet"} 3.0' in text
