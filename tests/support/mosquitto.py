"""A private Mosquitto broker for tests, which they can stop and start again."""

from __future__ import annotations

import os
import queue
import secrets
import shutil
import signal
import socket
import subprocess
import threading
from pathlib import Path
from types import TracebackType

import paho.mqtt.client as mqtt
from paho.mqtt.enums import CallbackAPIVersion

MOSQUITTO = shutil.which("mosquitto") or "/usr/sbin/mosquitto"
HOST = "127.0.0.1"


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nothing listens on right now."""
    with socket.socket() as probe:
        probe.bind((HOST, 0))
        return int(probe.getsockname()[1])


class Mosquitto:
    """One broker process on a free port; `stop()` and `start()` keep the port.

    With `persistence`, sessions and their queued messages survive a restart.
    """

    def __init__(
        self, workdir: Path, port: int | None = None, persistence: bool = False
    ) -> None:
        self.host = HOST
        self.port = port or free_port()
        self.workdir = workdir
        self.persistence = persistence
        self.log: list[str] = []
        self._process: subprocess.Popen[str] | None = None
        self._reader: threading.Thread | None = None

    @property
    def url(self) -> str:
        return f"mqtt://{self.host}:{self.port}"

    def start(self, timeout: float = 10.0) -> None:
        """Start the broker and return once it says it is running."""
        self.workdir.mkdir(parents=True, exist_ok=True)
        config = self.workdir / "mosquitto.conf"
        lines = [f"listener {self.port} {self.host}", "allow_anonymous true"]
        if self.persistence:
            lines += ["persistence true", f"persistence_location {self.workdir}/"]
            if os.geteuid() == 0:
                # Else it runs as `mosquitto`, who cannot write in our folder.
                lines.append("user root")
        config.write_text("\n".join(lines) + "\n")
        self._process = subprocess.Popen(
            [MOSQUITTO, "-c", str(config)],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
            text=True,
        )
        ready = threading.Event()
        self._reader = threading.Thread(
            target=self._read_log, args=(self._process, ready), daemon=True
        )
        self._reader.start()
        if not ready.wait(timeout) or self._process.poll() is not None:
            self.stop()
            raise RuntimeError("mosquitto did not start:\n" + "\n".join(self.log))

    def _read_log(self, process: subprocess.Popen[str], ready: threading.Event) -> None:
        # Reading to the end also keeps the pipe from filling up and blocking.
        assert process.stderr is not None
        for line in process.stderr:
            self.log.append(line.rstrip())
            if " running" in line:
                ready.set()
        ready.set()

    def pause(self) -> None:
        """Freeze the broker: connections stay open but nothing is answered."""
        assert self._process is not None
        self._process.send_signal(signal.SIGSTOP)

    def resume(self) -> None:
        assert self._process is not None
        self._process.send_signal(signal.SIGCONT)

    def stop(self) -> None:
        """Stop the broker; clients see their connection drop."""
        if self._process is None:
            return
        self._process.send_signal(signal.SIGCONT)  # a paused broker ignores SIGTERM
        self._process.terminate()
        try:
            self._process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self._process.kill()
            self._process.wait()
        if self._reader is not None:
            self._reader.join(timeout=5)
        self._process = None


class Subscriber:
    """A paho client that collects what arrives on `topic`.

    With a fixed `client_id` and `clean_session=False`, the broker keeps the
    session while the subscriber is away (a broker restart) and delivers what
    was published meanwhile once it is back; paho reconnects by itself.
    """

    def __init__(
        self,
        host: str,
        port: int,
        topic: str,
        timeout: float = 5.0,
        client_id: str | None = None,
        clean_session: bool = True,
    ) -> None:
        self.messages: queue.Queue[mqtt.MQTTMessage] = queue.Queue()
        subscribed = threading.Event()
        client = mqtt.Client(
            CallbackAPIVersion.VERSION2,
            client_id=client_id or f"test-sub-{secrets.token_hex(4)}",
            clean_session=clean_session,
        )
        client.reconnect_delay_set(1, 2)
        client.on_subscribe = lambda *args: subscribed.set()
        client.on_message = lambda _client, _userdata, message: self.messages.put(
            message
        )
        client.connect(host, port)
        client.subscribe(topic, qos=1)
        client.loop_start()
        self._client = client
        if not subscribed.wait(timeout):
            self.close()
            raise RuntimeError(f"no SUBACK for {topic!r} within {timeout}s")

    def get(self, timeout: float = 5.0) -> mqtt.MQTTMessage:
        """The next message, or an AssertionError after `timeout` seconds."""
        try:
            return self.messages.get(timeout=timeout)
        except queue.Empty:
            raise AssertionError(f"no MQTT message within {timeout}s") from None

    def close(self) -> None:
        self._client.disconnect()
        self._client.loop_stop()

    def __enter__(self) -> Subscriber:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.close()
