"""Reloading the rules file in a running daemon: replaced, broken, fixed, SIGHUP."""

from __future__ import annotations

import os
import re
from collections.abc import Iterator
from pathlib import Path

import pytest

from genea_automate.actions.mqtt import MqttAction
from genea_automate.actions.mqtt_client import MqttConnection
from tests.support.daemon import DaemonProcess
from tests.support.genea import TEST_SECRET, body_of, payload
from tests.support.http_server import LoopbackHttpServer
from tests.support.mosquitto import Mosquitto
from tests.support.plugins import plugin_module

RULES = """
store: "sqlite:///./store.db"
endpoints:
  main: {{secret: "{secret}"}}
rules:
  - id: {rule}
    when: {{event: access.granted}}
    then:
      - http: {{url: "{url}/{rule}", json: {{event: "{{{{ event.id }}}}"}}}}
"""
BROKEN = """
store: "sqlite:///./store.db"
endpoints:
  main: {{secret: "{secret}"}}
rules:
  - id: second
    when: {{event: access.granted}}
    then:
      - http: {{url: "{url}/second", methd: POST}}
"""
ISSUE = re.compile(r"rules\.yaml:\d+:\d+: error: ")


@pytest.fixture
def daemon(tmp_path: Path, http_server: LoopbackHttpServer) -> Iterator[DaemonProcess]:
    config = tmp_path / "rules.yaml"
    config.write_text(
        RULES.format(secret=TEST_SECRET, url=http_server.url, rule="first")
    )
    process = DaemonProcess(config)
    process.start()
    yield process
    if process.running:
        process.stop()


def replace_file(path: Path, text: str) -> None:
    """Write a new file and rename it over the old one, as editors and git do."""
    new = path.with_suffix(".new")
    new.write_text(text)
    os.replace(new, path)


def fire(daemon: DaemonProcess, http_server: LoopbackHttpServer, uuid: str) -> str:
    """Post an event; the path its rule's HTTP action called."""
    seen = len(http_server.requests)
    assert daemon.post(body_of(payload("01", uuid=uuid))).status_code == 200
    return http_server.wait_for_requests(seen + 1, timeout=15)[seen].path


def test_reload_refuses_a_broken_file_and_applies_the_fixed_one(
    daemon: DaemonProcess, http_server: LoopbackHttpServer
) -> None:
    assert fire(daemon, http_server, "e1") == "/first"

    mark = len(daemon.log)
    replace_file(daemon.config, BROKEN.format(secret=TEST_SECRET, url=http_server.url))
    refusal = daemon.wait_for_log("refused to reload", since=mark)
    assert "ERROR" in refusal and "the running rules stay" in refusal
    issue = daemon.wait_for_log("methd", since=mark)
    assert ISSUE.search(issue), issue
    assert fire(daemon, http_server, "e2") == "/first"

    mark = len(daemon.log)
    # Written in place this time, as some editors do.
    daemon.config.write_text(
        RULES.format(secret=TEST_SECRET, url=http_server.url, rule="second")
    )
    daemon.wait_for_log("(the file changed): 1 rule(s)", since=mark)
    assert fire(daemon, http_server, "e3") == "/second"
    assert daemon.running
    assert sum("Uvicorn running on" in line for line in daemon.log) == 1


def test_reload_on_sighup(daemon: DaemonProcess) -> None:
    mark = len(daemon.log)
    daemon.reload()
    line = daemon.wait_for_log("reloaded", since=mark)
    assert line.endswith("(SIGHUP): 1 rule(s)")
    assert daemon.running


def test_reload_logs_the_warnings_of_the_new_file(
    daemon: DaemonProcess, http_server: LoopbackHttpServer
) -> None:
    text = RULES.format(secret=TEST_SECRET, url=http_server.url, rule="first")
    mark = len(daemon.log)
    replace_file(daemon.config, text.replace("access.granted", "access.deny"))
    daemon.wait_for_log("reloaded", since=mark)
    warning = daemon.wait_for_log("rules[0].when.event[0]", since=mark)
    assert " WARNING " in warning
    assert re.search(r"rules\.yaml:7:\d+: warning: ", warning), warning
    assert "did you mean 'access.denied'?" in warning


async def test_mqtt_take_over_keeps_unchanged_connections_and_stops_old_ones_first(
    mosquitto: Mosquitto,
) -> None:
    kept = MqttConnection(url=mosquitto.url, client_id="kept")
    changed = MqttConnection(url=mosquitto.url, client_id="changed")
    old = MqttAction({"kept": kept, "changed": changed})
    await old.start()
    for name in ("kept", "changed"):
        await old.link(name).publish("warmup", b"", 1, False, 10.0)
    kept_link, changed_link = old.link("kept"), old.link("changed")

    new = MqttAction(
        {"kept": kept, "changed": changed.model_copy(update={"keepalive": 20})}
    )
    await new.take_over(old)
    try:
        assert new.link("kept") is kept_link
        assert new.link("changed") is not changed_link
        assert not changed_link.connected
        await new.link("changed").publish("after", b"", 1, False, 10.0)
    finally:
        await new.stop()
    # Stopped before its successor connected: the broker never had to drop one.
    assert not [line for line in mosquitto.log if "already connected" in line]


@pytest.fixture
def mosquitto(tmp_path: Path) -> Iterator[Mosquitto]:
    broker = Mosquitto(tmp_path / "mosquitto")
    broker.start()
    yield broker
    broker.stop()


QUITTER = plugin_module(
    "quitter",
    methods="""
    async def take_over(self, previous: Any) -> None:
        sys.exit(4)  # a plugin bug at the worst moment
    """,
)
WITH_QUITTER = (
    RULES
    + """\
  - id: quit
    when: {{event: door.forced_open}}
    then:
      - quitter: {{}}
"""
)


def test_a_plugin_that_exits_while_taking_over_leaves_the_reload_done(
    tmp_path: Path, http_server: LoopbackHttpServer
) -> None:
    (tmp_path / "plugins").mkdir()
    (tmp_path / "plugins" / "quitter.py").write_text(QUITTER)
    config = tmp_path / "rules.yaml"
    config.write_text(
        WITH_QUITTER.format(secret=TEST_SECRET, url=http_server.url, rule="first")
    )
    daemon = DaemonProcess(config)
    daemon.start()
    try:
        mark = len(daemon.log)
        replace_file(
            config,
            WITH_QUITTER.format(secret=TEST_SECRET, url=http_server.url, rule="second"),
        )
        failed = daemon.wait_for_log("failed to take over", since=mark)
        assert "ERROR" in failed and "'quitter'" in failed
        daemon.wait_for_log("(the file changed): 2 rule(s)", since=mark)
        # The daemon runs on, with every other part of the new file.
        assert fire(daemon, http_server, "after-quitter") == "/second"
        assert daemon.running
    finally:
        daemon.stop()
