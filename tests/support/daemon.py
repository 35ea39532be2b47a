"""The real daemon in its own process, as `genea-automate serve` runs it."""

from __future__ import annotations

import os
import select
import signal
import subprocess
import sys
import threading
from pathlib import Path

import httpx

from tests.support.genea import signed_headers
from tests.support.mosquitto import free_port


def ended_within(pid: int, timeout: float) -> bool:
    """Whether process `pid`, a child or not, has ended or ends within `timeout`.

    Its pidfd turns readable the moment it exits, so nothing polls.
    """
    try:
        pidfd = os.pidfd_open(pid)
    except ProcessLookupError:
        return True
    try:
        readable, _, _ = select.select([pidfd], [], [], timeout)
        return bool(readable)
    finally:
        os.close(pidfd)


class DaemonProcess:
    """One `genea-automate serve` process; its log lines can be awaited."""

    def __init__(self, config: Path, port: int | None = None) -> None:
        self.config = config
        self.port = port or free_port()
        self.log: list[str] = []
        self._changed = threading.Condition()
        self._process: subprocess.Popen[str] | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self, timeout: float = 20.0) -> None:
        """Start serving and return once uvicorn listens."""
        self.log_mark = len(self.log)
        self._process = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "genea_automate",
                "serve",
                "-c",
                str(self.config),
                "--listen",
                f"127.0.0.1:{self.port}",
            ],
            cwd=self.config.parent,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
            text=True,
            env={**os.environ, "PYTHONUNBUFFERED": "1"},
        )
        self._reader = threading.Thread(
            target=self._read, args=(self._process,), daemon=True
        )
        self._reader.start()
        self.wait_for_log("Uvicorn running on", timeout, since=self.log_mark)

    def _read(self, process: subprocess.Popen[str]) -> None:
        assert process.stderr is not None
        for line in process.stderr:
            with self._changed:
                self.log.append(line.rstrip())
                self._changed.notify_all()
        with self._changed:
            self._changed.notify_all()

    def wait_for_log(self, text: str, timeout: float = 20.0, since: int = 0) -> str:
        """The first log line from `since` on that contains `text`."""

        def found() -> str | None:
            return next((line for line in self.log[since:] if text in line), None)

        with self._changed:
            if (
                not self._changed.wait_for(
                    lambda: found() is not None or not self.running, timeout
                )
                or found() is None
            ):
                tail = "\n".join(self.log[-30:])
                raise AssertionError(f"no log line with {text!r}; last lines:\n{tail}")
            return found() or ""

    @property
    def pid(self) -> int:
        assert self._process is not None
        return self._process.pid

    def deciding_pid(self, since: int = 0) -> int:
        """The pid of the deciding process the daemon last said it started."""
        line = self.wait_for_log("rules are decided in a second process", since=since)
        return int(line.rsplit("pid ", 1)[1])

    @property
    def output_closed(self) -> bool:
        """Every process that shared the daemon's stderr has closed it."""
        return not self._reader.is_alive()

    @property
    def running(self) -> bool:
        return self._process is not None and self._process.poll() is None

    def kill(self) -> None:
        """SIGKILL: no shutdown code runs, as in a crash or power cut."""
        self._signal(signal.SIGKILL)

    def kill_pid(self, pid: int) -> None:
        """SIGKILL one of the daemon's processes, its deciding one say."""
        os.kill(pid, signal.SIGKILL)

    def stop(self) -> None:
        self._signal(signal.SIGTERM)

    def interrupt(self) -> int | None:
        """Ctrl-C; returns the exit code."""
        return self._signal(signal.SIGINT)

    def reload(self) -> None:
        """SIGHUP: the daemon reads its rules file again."""
        assert self._process is not None
        self._process.send_signal(signal.SIGHUP)

    def _signal(self, signum: int) -> int | None:
        if self._process is None:
            return None
        self._process.send_signal(signum)
        code = self._process.wait(timeout=20)
        self._reader.join(timeout=5)  # the last lines, up to end of file
        self._process = None
        return code

    def post(self, body: bytes, endpoint: str = "main") -> httpx.Response:
        return httpx.post(
            f"{self.url}/hooks/{endpoint}",
            content=body,
            headers=signed_headers(body),
            timeout=10,
        )
