"""Post signed Genea events to a running daemon on loopback and print figures.

    python benchmarks/ingest.py --url http://127.0.0.1:8080/hooks/main \\
        --secret S --count 5000 --concurrency 32            # full speed
    python benchmarks/ingest.py ... --count 6000 --rate 200  # fixed rate, p99

Every event is one of the shared payloads with a fresh uuid, re-signed, so each
run stores new rows. Requests are built before the clock starts. The default
client speaks HTTP/1.1 over raw asyncio streams, which costs far less CPU than
httpx (`--client httpx`), so that the client is not what gets measured.

Accepted means answered 200 after the commit; the rules are decided after that,
so a burst is accepted faster than it is decided. Unless `--no-wait`, the run
then reads the daemon's /metrics until every accepted event is decided and also
prints that end-to-end rate, which is what a sustained load can keep up.

Figures on a shared machine vary with its neighbours: `python speed` is a fixed
pure-Python loop timed before the run, to compare runs on different days.
"""

from __future__ import annotations

import argparse
import asyncio
import hashlib
import hmac
import ipaddress
import json
import os
import secrets
import sys
import time
from collections import Counter
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import urlsplit

PAYLOAD_DIR = (
    Path(__file__).resolve().parents[1] / "tests" / "fixtures" / "genea-payloads"
)
MAX_COUNT = 1_000_000
MAX_SECONDS = 600.0
REQUEST_TIMEOUT = 10.0

Send = Callable[[int], Awaitable[tuple[int, bytes]]]
Close = Callable[[], Awaitable[None]]


@dataclass
class Results:
    """What came back, and how long each answer took."""

    latencies: list[float] = field(default_factory=list)
    outcomes: Counter[str] = field(default_factory=Counter)
    sent: int = 0
    elapsed: float = 0.0
    started: float = 0.0  # perf_counter time of the first request
    decided_after: float | None = None  # seconds from the start, all decided

    def record(self, outcome: str, seconds: float) -> None:
        self.outcomes[outcome] += 1
        self.latencies.append(seconds)


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--url", default="http://127.0.0.1:8080/hooks/main")
    parser.add_argument("--secret", help="default: $GENEA_WEBHOOK_SECRET")
    parser.add_argument("--count", type=int, default=2000)
    parser.add_argument("--concurrency", type=int, default=16)
    parser.add_argument("--rate", type=float, help="events per second (open loop)")
    parser.add_argument("--duration", type=float, default=60.0, help="max seconds")
    parser.add_argument("--client", choices=["raw", "httpx"], default="raw")
    parser.add_argument("--header", action="append", default=[], help="NAME=VALUE")
    parser.add_argument("--payloads", type=Path, default=PAYLOAD_DIR)
    parser.add_argument(
        "--no-wait", action="store_true", help="do not wait until all are decided"
    )
    args = parser.parse_args(argv)
    args.secret = args.secret or os.environ.get("GENEA_WEBHOOK_SECRET")
    problem = _check_args(args)
    if problem:
        parser.error(problem)
    return args


def _check_args(args: argparse.Namespace) -> str | None:
    """What is wrong with the arguments, in words, or None."""
    if not args.secret:
        return "no secret: pass --secret or set GENEA_WEBHOOK_SECRET"
    if not 0 < args.count <= MAX_COUNT:
        return f"--count must be 1..{MAX_COUNT}, got {args.count}"
    if not 0 < args.concurrency <= 1024:
        return f"--concurrency must be 1..1024, got {args.concurrency}"
    if args.rate is not None and not 0 < args.rate <= 100_000:
        return f"--rate must be 0..100000 events per second, got {args.rate}"
    if not 0 < args.duration <= MAX_SECONDS:
        return f"--duration must be 0..{MAX_SECONDS:g} seconds, got {args.duration}"
    if any("=" not in header for header in args.header):
        return f"--header must be NAME=VALUE, got {args.header}"
    url = urlsplit(args.url)
    if url.scheme != "http" or not _is_loopback(url.hostname or ""):
        return f"--url must be http:// on loopback (127.0.0.1, ::1), got {args.url!r}"
    return None


def _is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def build_bodies(
    payload_dir: Path, count: int, secret: bytes
) -> list[tuple[bytes, str]]:
    """`count` (body, signature) pairs cycling through the payloads, uuids fresh."""
    files = sorted(payload_dir.glob("*.json"))
    payloads = [json.loads(path.read_bytes()) for path in files]
    if not payloads:
        raise SystemExit(f"no *.json payloads in {payload_dir}; pass --payloads DIR")
    run = secrets.randbits(32)
    stamp = int(time.time())
    bodies = []
    for index in range(count):
        event = dict(payloads[index % len(payloads)])
        # Keep each uuid's form: AUDIT uuids are decimal, ACCESS ones ObjectIds.
        if str(event["uuid"]).isdigit():
            event["uuid"] = str(run * 10**10 + index)
        else:
            event["uuid"] = f"{stamp:08x}{run:08x}{index:08x}"
        # The byte form JSON.stringify writes, as Genea sends it.
        body = json.dumps(event, separators=(",", ":"), ensure_ascii=False).encode()
        digest = hmac.new(secret, body, hashlib.sha1).hexdigest()
        bodies.append((body, "sha1=" + digest))
    return bodies


class RawConnection:
    """One keep-alive HTTP/1.1 connection with just enough parsing for our answers."""

    def __init__(self, host: str, port: int) -> None:
        self._address = (host, port)
        self._streams: tuple[asyncio.StreamReader, asyncio.StreamWriter] | None = None

    async def post(self, request: bytes) -> tuple[int, bytes]:
        if self._streams is None:
            self._streams = await asyncio.open_connection(*self._address)
        reader, writer = self._streams
        try:
            writer.write(request)
            head = await reader.readuntil(b"\r\n\r\n")
            status, length, close = _parse_head(head)
            body = await reader.readexactly(length)
        except BaseException:
            self.close()
            raise
        if close:
            self.close()
        return status, body

    def close(self) -> None:
        if self._streams is not None:
            self._streams[1].close()
            self._streams = None


def _parse_head(head: bytes) -> tuple[int, int, bool]:
    """Status, Content-Length and whether the server will close the connection."""
    lines = head.decode("latin-1").lower().split("\r\n")
    status = int(lines[0].split(" ", 2)[1])
    headers = dict(line.split(": ", 1) for line in lines[1:] if ": " in line)
    length = int(headers.get("content-length", 0))
    return status, length, headers.get("connection") == "close"


def raw_senders(
    args: argparse.Namespace, bodies: list[tuple[bytes, str]]
) -> tuple[list[Send], Close]:
    """One sender per connection, each posting prebuilt request bytes."""
    url = urlsplit(args.url)
    host, port = url.hostname or "127.0.0.1", url.port or 80
    extra = "".join(f"{name}: {value}\r\n" for name, value in _headers(args))
    requests = [
        (
            f"POST {url.path} HTTP/1.1\r\nHost: {url.netloc}\r\n"
            f"Content-Type: application/json\r\nX-Sequr-Signature: {signature}\r\n"
            f"Content-Length: {len(body)}\r\n{extra}\r\n"
        ).encode("latin-1")
        + body
        for body, signature in bodies
    ]

    connections = [RawConnection(host, port) for _ in range(args.concurrency)]

    def sender(connection: RawConnection) -> Send:
        return lambda index: connection.post(requests[index])

    async def close() -> None:
        for connection in connections:
            connection.close()

    return [sender(connection) for connection in connections], close


def _headers(args: argparse.Namespace) -> list[tuple[str, str]]:
    return [(h.partition("=")[0], h.partition("=")[2]) for h in args.header]


def httpx_senders(
    args: argparse.Namespace, bodies: list[tuple[bytes, str]]
) -> tuple[list[Send], Close]:
    """Senders sharing one httpx.AsyncClient with a connection per worker."""
    import httpx

    limits = httpx.Limits(max_connections=args.concurrency)
    client = httpx.AsyncClient(limits=limits, timeout=REQUEST_TIMEOUT)
    extra = dict(_headers(args))

    async def send(index: int) -> tuple[int, bytes]:
        body, signature = bodies[index]
        headers = {
            "Content-Type": "application/json",
            "X-Sequr-Signature": signature,
            **extra,
        }
        response = await client.post(args.url, content=body, headers=headers)
        return response.status_code, response.content

    return [send] * args.concurrency, client.aclose


def classify(status: int, body: bytes) -> str:
    if status == 200 and b'"stored"' in body:
        return "accepted"
    if status == 200 and b'"duplicate"' in body:
        return "duplicate"
    return str(status)


async def run(args: argparse.Namespace, senders: list[Send], count: int) -> Results:
    """Send `count` events through the senders; stop at the time limit."""
    results = Results()
    indexes = iter(range(count))
    start = results.started = time.perf_counter()
    deadline = start + args.duration

    async def worker(send: Send) -> None:
        for index in indexes:
            began = time.perf_counter()
            if args.rate:
                # Open loop: latency counts from when the event was due, so a
                # server that falls behind shows it (no coordinated omission).
                began = start + index / args.rate
                await asyncio.sleep(max(0.0, began - time.perf_counter()))
            if time.perf_counter() >= deadline:
                return
            results.sent += 1
            try:
                async with asyncio.timeout(REQUEST_TIMEOUT):
                    outcome = classify(*await send(index))
            except (OSError, asyncio.IncompleteReadError, TimeoutError) as exc:
                outcome = type(exc).__name__
            results.record(outcome, time.perf_counter() - began)

    await asyncio.gather(*(worker(send) for send in senders))
    results.elapsed = time.perf_counter() - start
    return results


DECIDED_METRIC = "genea_events_total"
DECIDE_TIMEOUT = 300.0


async def events_decided(host: str, port: int) -> float:
    """The daemon's count of decided events, from its /metrics page."""
    connection = RawConnection(host, port)
    request = f"GET /metrics HTTP/1.1\r\nHost: {host}\r\n\r\n".encode()
    try:
        status, body = await connection.post(request)
    finally:
        connection.close()
    if status != 200:
        raise SystemExit(f"/metrics answered {status}; pass --no-wait")
    return sum(
        float(line.rpartition(" ")[2])
        for line in body.decode().splitlines()
        if line.startswith(DECIDED_METRIC + "{")
    )


async def wait_until_decided(
    host: str, port: int, before: float, accepted: int
) -> float | None:
    """The perf_counter time once the daemon has decided `accepted` more events
    than `before`; None if it does not within DECIDE_TIMEOUT."""
    deadline = time.perf_counter() + DECIDE_TIMEOUT
    while time.perf_counter() < deadline:
        if await events_decided(host, port) - before >= accepted:
            return time.perf_counter()
        await asyncio.sleep(0.02)
    return None


def python_speed() -> float:
    """Millions of iterations per second of a fixed pure-Python loop."""
    began = time.perf_counter()
    total = 0
    for number in range(2_000_000):
        total += number
    return 2.0 / (time.perf_counter() - began)


def report(args: argparse.Namespace, results: Results, cpu: float) -> str:
    """The figures, one per line."""
    elapsed = results.elapsed
    latencies = sorted(results.latencies) or [0.0]
    others = Counter(results.outcomes)
    accepted = others.pop("accepted", 0)
    duplicates = others.pop("duplicate", 0)
    errors = sum(others.values())
    detail = ", ".join(f"{name}: {n}" for name, n in others.most_common())
    mode = f"{args.rate:g}/s fixed rate" if args.rate else "full speed"
    rows = [
        ("target", f"{args.url} ({args.client} client, "
                   f"{args.concurrency} connections, {mode})"),
        ("sent", str(results.sent)),
        ("accepted", f"{accepted} (200 stored)"),
        ("duplicates", str(duplicates)),
        ("errors", f"{errors} ({detail})" if errors else "0"),
        ("elapsed", f"{elapsed:.3f} s"),
        ("accepted/s", f"{accepted / elapsed:.1f}"),
        ("latency p50", f"{_quantile(latencies, 0.50) * 1000:.2f} ms"),
        ("latency p99", f"{_quantile(latencies, 0.99) * 1000:.2f} ms"),
        ("latency max", f"{latencies[-1] * 1000:.2f} ms"),
        ("client CPU", f"{cpu:.2f} s ({cpu / elapsed:.0%} of one core)"),
        ("decided/s", _decided_rate(results, accepted)),
        ("python speed", f"{python_speed():.1f} M loop iterations/s"),
    ]  # fmt: skip
    return "\n".join(f"{name:<12} {value}" for name, value in rows)


def _decided_rate(results: Results, accepted: int) -> str:
    if results.decided_after is None:
        return "not measured"
    if results.decided_after < 0:
        return f"not all decided within {DECIDE_TIMEOUT:g} s"
    rate = accepted / results.decided_after
    return f"{rate:.1f} (all {accepted} decided after {results.decided_after:.3f} s)"


def _quantile(ordered: list[float], q: float) -> float:
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


async def main_async(args: argparse.Namespace) -> int:
    bodies = build_bodies(args.payloads, args.count, args.secret.encode())
    make = raw_senders if args.client == "raw" else httpx_senders
    senders, close = make(args, bodies)
    url = urlsplit(args.url)
    host, port = url.hostname or "127.0.0.1", url.port or 80
    decided_before = None if args.no_wait else await events_decided(host, port)
    cpu_before = time.process_time()
    try:
        results = await run(args, senders, len(bodies))
    finally:
        await close()
    cpu = time.process_time() - cpu_before
    if decided_before is not None:
        accepted = results.outcomes["accepted"]
        after = await wait_until_decided(host, port, decided_before, accepted)
        results.decided_after = -1.0 if after is None else after - results.started
    print(report(args, results, cpu))
    return 0 if results.outcomes["accepted"] == results.sent else 1


def main(argv: list[str] | None = None) -> int:
    return asyncio.run(main_async(parse_args(argv)))


if __name__ == "__main__":
    sys.exit(main())
