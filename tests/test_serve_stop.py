"""Stopping `serve` from the terminal: an orderly shutdown, no traceback."""

from __future__ import annotations

from pathlib import Path

from tests.support.daemon import DaemonProcess


def test_ctrl_c_stops_the_daemon_quietly(tmp_path: Path) -> None:
    config = tmp_path / "rules.yaml"
    config.write_text("endpoints: {main: {secret: s}}\nrules: []\n")
    daemon = DaemonProcess(config)
    daemon.start()

    assert daemon.interrupt() == 0
    assert any("genea-automate stopped" in line for line in daemon.log)
    assert not any("Traceback" in line for line in daemon.log)
