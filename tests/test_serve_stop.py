"""Stopping `serve` from the terminal: an orderly shutdown, no traceback."""

from __future__ import annotations

from pathlib import Path

from tests.support.daemon import DaemonProcess
from tests.support.genea import TEST_SECRET, body_of, payload
from tests.support.mosquitto import free_port
from tests.support.plugins import plugin_module


def test_ctrl_c_stops_the_daemon_quietly(tmp_path: Path) -> None:
    config = tmp_path / "rules.yaml"
    config.write_text("endpoints: {main: {secret: s}}\nrules: []\n")
    daemon = DaemonProcess(config)
    daemon.start()

    assert daemon.interrupt() == 0
    assert any("genea-automate stopped" in line for line in daemon.log)
    assert not any("Traceback" in line for line in daemon.log)


def test_actions_waiting_across_a_restart_are_counted_in_the_log(
    tmp_path: Path,
) -> None:
    config = tmp_path / "rules.yaml"
    config.write_text(
        f'endpoints: {{main: {{secret: "{TEST_SECRET}"}}}}\n'
        "rules:\n"
        "  - id: clock-in\n"
        "    when: access.granted\n"
        "    then:\n"
        f"      - http: {{url: 'http://127.0.0.1:{free_port()}/in'}}\n"
    )
    daemon = DaemonProcess(config)
    daemon.start()
    assert daemon.post(body_of(payload("01", uuid="waits"))).status_code == 200
    daemon.wait_for_log("failed (attempt 1 of")  # nothing listens there

    daemon.stop()
    stopped = "\n".join(daemon.log)
    assert "1 action(s) wait for delivery, kept in the store" in stopped

    daemon.start()
    daemon.wait_for_log(
        "1 action(s) wait for delivery, queued before this start", since=daemon.log_mark
    )
    daemon.stop()


STOP_QUITTER = plugin_module(
    "quitter",
    methods="""
    async def stop(self) -> None:
        sys.exit(5)  # a plugin bug at the worst moment
    """,
)


def test_a_plugin_that_exits_while_stopping_leaves_the_stop_orderly(
    tmp_path: Path,
) -> None:
    (tmp_path / "plugins").mkdir()
    (tmp_path / "plugins" / "quitter.py").write_text(STOP_QUITTER)
    config = tmp_path / "rules.yaml"
    config.write_text("endpoints: {main: {secret: s}}\nrules: []\n")
    daemon = DaemonProcess(config)
    daemon.start()

    assert daemon.interrupt() == 0
    log = "\n".join(daemon.log)
    assert "action plugin 'quitter' failed to stop; the daemon stops anyway" in log
    assert "genea-automate stopped" in log
