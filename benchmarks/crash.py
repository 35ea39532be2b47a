"""Kill the daemon with SIGKILL while events pour in; count what got lost or doubled.

    python benchmarks/crash.py                       # 2,000 events, 200/s, 3 kills
    python benchmarks/crash.py --runs 5 --events 2000 --rate 200 --kills 3
    python benchmarks/crash.py --kill decider        # only the deciding process

Each run starts a real `genea-automate serve` on a fresh store, with a rule that
sends one HTTP action per event to a loopback stand-in, which records every
Idempotency-Key it receives. Signed, distinct events are posted at a steady
rate; the client retries connection errors and 503s as Genea would (but until
answered, so that every event ends up acknowledged). During the posting the
daemon is killed `--kills` times, evenly spread, and started again each time;
by default every second kill hits its deciding process instead, which the daemon
starts again by itself (`--kill daemon|decider|both`).
Once everything acknowledged is processed and delivered, the run prints:

    sent, answered 200, processed, actions delivered, lost, duplicated

`lost` counts events answered 200 whose action never arrived; it must be 0.
`duplicated` counts actions that arrived more than once. The promise allows
those only for actions in flight at a kill: received by the target, but not yet
recorded as delivered in the store. After each kill, before the restart, the
run reads the store to find those; `in flight at a kill` counts them, and every
duplicate must be one of them.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import signal
import sqlite3
import subprocess
import sys
import tempfile
import threading
import time
from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import httpx

from genea_automate.ingest.signature import sign

SECRET = "crash-benchmark-secret"
PAYLOAD = (
    Path(__file__).resolve().parents[1]
    / "tests" / "fixtures" / "genea-payloads" / "01-access-granted-card.json"
)  # fmt: skip
RULES = """\
store: "sqlite:///./store.db"
endpoints:
  main: {{secret: "{secret}"}}
rules:
  - id: badge-to-timeclock
    when: {{event: access.granted}}
    then:
      - http: {{method: POST, url: "{target}/clock-in",
               json: {{event: "{{{{ event.id }}}}", who: "{{{{ actor.name }}}}"}}}}
        retry: {{attempts: 50, backoff: 100ms, max_backoff: 1s}}
      - log: {{message: "clock-in for {{{{ actor.name }}}}"}}
"""
RETRY_PAUSE = 0.05
GIVE_UP_AFTER = 120.0
SETTLE_TIMEOUT = 300.0
QUIET = 0.2


class _QuietServer(ThreadingHTTPServer):
    def handle_error(self, request: Any, client_address: Any) -> None:
        pass  # a connection the killed daemon left half-open


class StandIn:
    """A loopback HTTP target that records each Idempotency-Key and its time."""

    def __init__(self) -> None:
        self.received: list[tuple[str, float]] = []
        self._reading = 0
        self._changed = threading.Condition()
        stand_in = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def do_POST(self) -> None:
                with stand_in._changed:
                    stand_in._reading += 1
                try:
                    self.rfile.read(int(self.headers.get("Content-Length") or 0))
                    key = self.headers.get("Idempotency-Key", "")
                    with stand_in._changed:
                        stand_in.received.append((key, time.monotonic()))
                finally:
                    with stand_in._changed:
                        stand_in._reading -= 1
                        stand_in._changed.notify_all()
                self.send_response(200)
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, format: str, *args: Any) -> None:
                pass

        self._server = _QuietServer(("127.0.0.1", 0), Handler)
        self._server.daemon_threads = True
        threading.Thread(target=self._server.serve_forever, daemon=True).start()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self._server.server_address[1]}"

    def keys(self) -> Counter[str]:
        with self._changed:
            return Counter(key for key, _ in self.received)

    def settled_keys(self) -> Counter[str]:
        """The keys once the requests a killed daemon had sent are all read.

        Those may still sit in a socket buffer when the daemon is gone: wait
        until nothing is being read and nothing came for QUIET seconds.
        """
        with self._changed:
            self._changed.wait_for(self._quiet, timeout=5)
            return Counter(key for key, _ in self.received)

    def _quiet(self) -> bool:
        last = self.received[-1][1] if self.received else 0.0
        if self._reading or time.monotonic() - last < QUIET:
            threading.Timer(QUIET, self._poke).start()
            return False
        return True

    def _poke(self) -> None:
        with self._changed:
            self._changed.notify_all()

    def close(self) -> None:
        self._server.shutdown()
        self._server.server_close()


class Daemon:
    """`genea-automate serve` as a child process, its log in a file."""

    def __init__(self, folder: Path, port: int, stand_in: StandIn) -> None:
        self.folder = folder
        self.port = port
        self.stand_in = stand_in
        self.in_flight: set[str] = set()
        self._process: subprocess.Popen[bytes] | None = None
        self._log = (folder / "daemon.log").open("ab")

    def start(self) -> None:
        """Start it and return once it listens."""
        self._process = subprocess.Popen(
            [sys.executable, "-m", "genea_automate", "serve", "-c", "rules.yaml",
             "--listen", f"127.0.0.1:{self.port}", "--log-level", "WARNING"],
            cwd=self.folder, stdout=subprocess.DEVNULL, stderr=self._log,
        )  # fmt: skip
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            if self._process.poll() is not None:
                raise RuntimeError(f"the daemon exited; see {self._log.name}")
            try:
                httpx.get(f"http://127.0.0.1:{self.port}/healthz", timeout=1)
                return
            except httpx.HTTPError:
                time.sleep(0.02)  # polling for the socket, not synchronising
        raise RuntimeError("the daemon did not answer /healthz within 30s")

    def kill_and_restart(self) -> None:
        assert self._process is not None
        self._process.send_signal(signal.SIGKILL)
        self._process.wait()
        received = set(self.stand_in.settled_keys())
        with closing_db(self.folder / "store.db") as db:
            unrecorded = db.execute(
                "SELECT idempotency_key FROM outbox WHERE state != 'delivered'"
            ).fetchall()
        self.in_flight |= {key for (key,) in unrecorded if key in received}
        self.start()

    def kill_decider(self) -> None:
        """SIGKILL the daemon's deciding process; the daemon starts another."""
        assert self._process is not None
        pid = self._process.pid
        children = Path(f"/proc/{pid}/task/{pid}/children").read_text().split()
        for child in children:  # none while the daemon is starting one again
            os.kill(int(child), signal.SIGKILL)

    def stop(self) -> None:
        if self._process is not None:
            self._process.send_signal(signal.SIGTERM)
            self._process.wait(timeout=30)
        self._log.close()


@dataclass
class Outcome:
    sent: int = 0
    answered: set[str] = field(default_factory=set)


async def post_all(url: str, count: int, rate: float, outcome: Outcome) -> None:
    """Post `count` distinct signed events at `rate` per second, retrying each."""
    template = json.loads(PAYLOAD.read_text())
    run = os.urandom(4).hex()
    limits = httpx.Limits(max_connections=64, max_keepalive_connections=64)
    async with httpx.AsyncClient(timeout=5.0, limits=limits) as client:
        start = time.monotonic()
        tasks = []
        for n in range(count):
            await asyncio.sleep(max(0.0, start + n / rate - time.monotonic()))
            uuid = f"crash-{run}-{n:05d}"
            body = json.dumps({**template, "uuid": uuid}, separators=(",", ":"))
            tasks.append(asyncio.create_task(_post(client, url, uuid, body, outcome)))
            outcome.sent += 1
        await asyncio.gather(*tasks)


async def _post(
    client: httpx.AsyncClient, url: str, uuid: str, body: str, outcome: Outcome
) -> None:
    data = body.encode()
    headers = {
        "Content-Type": "application/json",
        "X-Sequr-Signature": sign(SECRET.encode(), data),
    }
    give_up = time.monotonic() + GIVE_UP_AFTER
    while time.monotonic() < give_up:
        try:
            response = await client.post(url, content=data, headers=headers)
        except httpx.HTTPError:
            response = None  # the daemon is down or was killed mid-request
        if response is not None and response.status_code == 200:
            outcome.answered.add(uuid)
            return
        await asyncio.sleep(RETRY_PAUSE)


def kill_during(
    daemon: Daemon, kills: int, span: float, done: threading.Event, which: str
) -> None:
    """Kill the daemon (and restart it) or its deciding process `kills` times,
    evenly over `span` seconds; `which` is daemon, decider or both in turn."""
    for n in range(1, kills + 1):
        if done.wait(span * n / (kills + 1) - span * (n - 1) / (kills + 1)):
            return
        if which == "decider" or (which == "both" and n % 2 == 0):
            daemon.kill_decider()
        else:
            daemon.kill_and_restart()


def wait_until_settled(store: Path, stand_in: StandIn, answered: set[str]) -> None:
    """Until every event is decided and no action waits in the outbox."""
    deadline = time.monotonic() + SETTLE_TIMEOUT
    while time.monotonic() < deadline:
        with closing_db(store) as db:
            pending = db.execute(
                "SELECT (SELECT COUNT(*) FROM events WHERE state = 'pending') + "
                "(SELECT COUNT(*) FROM outbox WHERE state = 'pending')"
            ).fetchone()[0]
        if pending == 0 and len(stand_in.keys()) >= len(answered):
            return
        time.sleep(0.2)  # polling a condition in another process
    raise RuntimeError(f"not settled within {SETTLE_TIMEOUT:g}s")


@contextmanager
def closing_db(path: Path) -> Iterator[sqlite3.Connection]:
    db = sqlite3.connect(f"file:{path}?mode=ro", uri=True, timeout=10)
    try:
        yield db
    finally:
        db.close()


def run_once(args: argparse.Namespace) -> dict[str, Any]:
    with tempfile.TemporaryDirectory(prefix="genea-crash-") as tmp:
        folder = Path(tmp)
        stand_in = StandIn()
        rules = RULES.format(secret=SECRET, target=stand_in.url)
        (folder / "rules.yaml").write_text(rules)
        daemon = Daemon(folder, _free_port(), stand_in)
        daemon.start()
        outcome = Outcome()
        done = threading.Event()
        killer = threading.Thread(
            target=kill_during,
            args=(daemon, args.kills, args.events / args.rate, done, args.kill),
        )
        killer.start()
        try:
            url = f"http://127.0.0.1:{daemon.port}/hooks/main"
            asyncio.run(post_all(url, args.events, args.rate, outcome))
            done.set()
            killer.join()
            wait_until_settled(folder / "store.db", stand_in, outcome.answered)
        finally:
            done.set()
            killer.join()
            daemon.stop()
            stand_in.close()
        with closing_db(folder / "store.db") as db:
            processed = db.execute(
                "SELECT COUNT(*) FROM events WHERE state = 'decided'"
            ).fetchone()[0]
        return _figures(outcome, processed, stand_in.keys(), daemon.in_flight)


def _figures(
    outcome: Outcome, processed: int, keys: Counter[str], in_flight: set[str]
) -> dict[str, Any]:
    expected = {f"main:{uuid}:badge-to-timeclock:0" for uuid in outcome.answered}
    doubled = {key for key, seen in keys.items() if seen > 1}
    for key in sorted(doubled - in_flight):
        print(f"duplicated, not in flight at a kill: {key}", file=sys.stderr)
    return {
        "sent": outcome.sent,
        "answered 200": len(outcome.answered),
        "processed": processed,
        "actions delivered": len(keys),
        "lost": len(expected - set(keys)),
        "duplicated": len(doubled),
        "in flight at a kill": len(in_flight),
        "duplicated but not in flight": len(doubled - in_flight),
    }


def _free_port() -> int:
    import socket

    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--events", type=int, default=2000)
    parser.add_argument("--rate", type=float, default=200.0, help="events/second")
    parser.add_argument("--kills", type=int, default=3)
    parser.add_argument("--runs", type=int, default=1)
    parser.add_argument(
        "--kill",
        choices=["daemon", "decider", "both"],
        default="both",
        help="what each kill hits: the daemon, its deciding process, or each in turn",
    )
    args = parser.parse_args(argv)
    broken = 0
    for run in range(1, args.runs + 1):
        figures = run_once(args)
        broken += figures["lost"] + figures["duplicated but not in flight"]
        print(f"run {run}: " + ", ".join(f"{k}: {v}" for k, v in figures.items()))
    return 1 if broken else 0


if __name__ == "__main__":
    sys.exit(main())
