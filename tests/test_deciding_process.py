"""`serve` decides rules in a second process: it is watched, fed and stopped,
and it decides with exactly what the daemon loaded."""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator
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
# A local plugin that says which version of it rendered and which delivered;
# with `refuse` in its section it cannot be made in the deciding process.
STAMP_PLUGIN = """
import sys
from typing import Any, ClassVar

from pydantic import BaseModel

from genea_automate.plugin import ActionPlugin

VERSION = {version}


def in_deciding_process() -> bool:
    spec = sys.modules["__main__"].__spec__
    return spec is not None and spec.name == "genea_automate.decider"


class StampOptions(BaseModel):
    pass


class StampAction(ActionPlugin[StampOptions]):
    name: ClassVar[str] = "stamp"
    Options: ClassVar[type[BaseModel]] = StampOptions
    Section: ClassVar[Any] = dict[str, bool]

    def __init__(self, section: Any = None) -> None:
        super().__init__(section)
        if section.get("refuse") and in_deciding_process():
            raise RuntimeError("stamp refuses the deciding process")

    def render(self, options: Any, ctx: Any) -> dict[str, Any]:
        return {{"by": VERSION}}

    async def deliver(self, payload: dict[str, Any], ctx: Any) -> None:
        ctx.logger.info("stamp rendered by v%s, delivered by v%s", payload["by"], VERSION)
"""
STAMP_CONFIG = """
store: "sqlite:///./store.db"
endpoints:
  main: {{secret: "{secret}"}}
stamp: {{refuse: {refuse}}}
rules:
  - id: {rule}
    when: {{event: access.granted}}
    then:
      - stamp: {{}}
"""

StartDaemon = Callable[[str], DaemonProcess]


@pytest.fixture
def start_daemon(tmp_path: Path) -> Iterator[StartDaemon]:
    """Start `serve` on a rules.yaml with the given text, in tmp_path."""
    started: list[DaemonProcess] = []

    def start(config_text: str) -> DaemonProcess:
        config = tmp_path / "rules.yaml"
        config.write_text(config_text)
        process = DaemonProcess(config)
        started.append(process)
        process.start()
        return process

    yield start
    for process in started:
        if process.running:
            process.stop()


@pytest.fixture
def daemon(start_daemon: StartDaemon) -> DaemonProcess:
    return start_daemon(CONFIG.format(secret=TEST_SECRET))


def write_stamp_plugin(folder: Path, version: int) -> None:
    (folder / "plugins").mkdir(exist_ok=True)
    (folder / "plugins" / "stamp.py").write_text(STAMP_PLUGIN.format(version=version))


def replace_file(path: Path, text: str) -> None:
    """Write a new file and rename it over the old one, as editors and git do."""
    new = path.with_suffix(".new")
    new.write_text(text)
    os.replace(new, path)


def post_granted(daemon: DaemonProcess, uuid: str, rule: str = "greet") -> None:
    mark = len(daemon.log)
    assert daemon.post(body_of(payload("01", uuid=uuid))).json() == {"status": "stored"}
    daemon.wait_for_log(
        f"event {uuid} (access.granted) on endpoint main: fired {rule}", since=mark
    )


def restart_deciding_process(daemon: DaemonProcess) -> None:
    """Kill the deciding process and await the one the daemon starts instead."""
    first = daemon.deciding_pid()
    mark = len(daemon.log)
    daemon.kill_pid(first)
    daemon.wait_for_log(f"deciding process {first} ended", since=mark)
    assert daemon.deciding_pid(since=mark) != first


def readiness(daemon: DaemonProcess) -> dict[str, object]:
    answer = httpx.get(f"{daemon.url}/readyz", timeout=10)
    assert answer.status_code == 200
    body: dict[str, object] = answer.json()
    return body


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


def test_readyz_says_the_rules_are_being_decided(daemon: DaemonProcess) -> None:
    post_granted(daemon, "decided")

    assert readiness(daemon) == {"status": "ready", "deciding": "running"}


def test_a_restarted_deciding_process_keeps_the_store_the_daemon_opened(
    daemon: DaemonProcess, tmp_path: Path
) -> None:
    mark = len(daemon.log)
    moved = CONFIG.format(secret=TEST_SECRET).replace("./store.db", "./other.db")
    replace_file(daemon.config, moved)
    daemon.reload()
    daemon.wait_for_log("`store` changed", since=mark)
    daemon.wait_for_log("reloaded", since=mark)

    restart_deciding_process(daemon)

    # Stored in the daemon's store, so decided there, as the restart comes.
    post_granted(daemon, "after-the-store-changed")
    assert not (tmp_path / "other.db").exists()


def test_a_restarted_deciding_process_needs_no_secret_file(
    start_daemon: StartDaemon, tmp_path: Path
) -> None:
    secret = tmp_path / "secret.txt"
    secret.write_text(TEST_SECRET + "\n")
    daemon = start_daemon(CONFIG.format(secret="${file:secret.txt}"))
    post_granted(daemon, "with-the-file")

    secret.unlink()
    restart_deciding_process(daemon)

    post_granted(daemon, "without-the-file")


def test_a_restarted_deciding_process_runs_the_plugin_code_the_daemon_loaded(
    start_daemon: StartDaemon, tmp_path: Path
) -> None:
    write_stamp_plugin(tmp_path, version=1)
    config = STAMP_CONFIG.format(secret=TEST_SECRET, refuse="false", rule="stamp")
    daemon = start_daemon(config)
    post_granted(daemon, "first", rule="stamp")
    daemon.wait_for_log("stamp rendered by v1, delivered by v1")

    # Edited without a reload, and a module half written beside it.
    write_stamp_plugin(tmp_path, version=2)
    (tmp_path / "plugins" / "wip.py").write_text("def half_written(:\n")
    restart_deciding_process(daemon)

    mark = len(daemon.log)
    post_granted(daemon, "second", rule="stamp")
    daemon.wait_for_log("stamp rendered by v1, delivered by v1", since=mark)
    assert not [line for line in daemon.log[mark:] if "v2" in line]


def test_a_deciding_process_that_cannot_start_says_why_and_readyz_tells(
    start_daemon: StartDaemon, tmp_path: Path
) -> None:
    write_stamp_plugin(tmp_path, version=1)
    config = STAMP_CONFIG.format(secret=TEST_SECRET, refuse="true", rule="stamp")
    daemon = start_daemon(config)

    # The plugin refuses while the file is checked: an issue of the file.
    reason = (
        f"it cannot load the rules it was sent: {tmp_path / 'rules.yaml'}:10:16: "
        "error: rules[0].then[0].stamp: plugin 'stamp' failed to check its options: "
        "stamp refuses the deciding process"
    )
    said = daemon.wait_for_log(f"the deciding process stops: {reason}")
    assert " ERROR   genea_automate.decider: " in said
    stopped = daemon.wait_for_log("event processing stopped: the deciding process")
    pid = daemon.deciding_pid()
    assert f"the deciding process {pid} ended with exit code 1: {reason}" in stopped

    # Webhooks are still taken: they wait in the store.
    assert daemon.post(body_of(payload("01", uuid="waits"))).json() == {
        "status": "stored"
    }
    answer = readiness(daemon)
    assert answer["status"] == "ready"
    deciding = str(answer["deciding"])
    assert deciding.startswith("not running since ")
    assert deciding.endswith(f"ended with exit code 1: {reason}")


def test_a_reload_the_deciding_process_cannot_load_keeps_the_previous_rules(
    start_daemon: StartDaemon, tmp_path: Path
) -> None:
    write_stamp_plugin(tmp_path, version=1)
    config = STAMP_CONFIG.format(secret=TEST_SECRET, refuse="false", rule="before")
    daemon = start_daemon(config)
    pid = daemon.deciding_pid()

    mark = len(daemon.log)
    refused = STAMP_CONFIG.format(secret=TEST_SECRET, refuse="true", rule="after")
    replace_file(daemon.config, refused)
    daemon.reload()
    said = daemon.wait_for_log(
        "the deciding process could not load the reloaded rules and keeps deciding "
        "with the previous ones: ",
        since=mark,
    )
    assert said.endswith(
        "plugin 'stamp' failed to check its options: stamp refuses the deciding process"
    )
    assert " ERROR " in said

    post_granted(daemon, "still-decided", rule="before")
    assert daemon.deciding_pid() == pid
    assert not [line for line in daemon.log[mark:] if "second process, pid" in line]
    assert readiness(daemon)["deciding"] == "running"


HUGE = """
store: "sqlite:///./store.db"
endpoints:
  main: {{secret: "{secret}"}}
rules:
  - id: huge
    when: {{event: access.granted}}
    then:
      - log: {{message: "{{{{ (['x' * 99999] * 30000) | join | length }}}}"}}
  - id: greet
    when: {{event: access.granted}}
    then:
      - log: {{message: "hello {{{{ actor.name }}}}"}}
"""


def test_a_template_that_builds_gigabytes_fails_its_rule_only(
    tmp_path: Path,
) -> None:
    config = tmp_path / "rules.yaml"
    config.write_text(HUGE.format(secret=TEST_SECRET))
    daemon = DaemonProcess(config)
    daemon.start()
    try:
        pid = daemon.deciding_pid()
        assert daemon.post(body_of(payload("01", uuid="huge"))).status_code == 200
        decided = daemon.wait_for_log("event huge (access.granted)")
        assert "fired greet" in decided
        failed = daemon.wait_for_log("rule huge matched event huge but could not")
        assert "it needed more memory than a decision may take" in failed
        daemon.wait_for_log("hello ")
        assert daemon.deciding_pid() == pid  # the same process decides on
    finally:
        daemon.stop()
