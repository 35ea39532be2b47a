"""How many Genea payloads `normalise` turns into events per second, on one core.

    python benchmarks/events.py [--seconds 3]

Loops over the 20 Genea payloads in tests/fixtures/genea-payloads (or $GENEA_PAYLOADS).
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

# Lets the script run from a checkout that is not pip-installed.
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from genea_automate.events.normalise import normalise

PAYLOADS = Path(
    os.environ.get(
        "GENEA_PAYLOADS",
        Path(__file__).resolve().parents[1] / "tests" / "fixtures" / "genea-payloads",
    )
)
RECEIVED_AT = datetime(2025, 12, 1, tzinfo=UTC)


def load_payloads() -> list[dict[str, Any]]:
    paths = sorted(PAYLOADS.glob("*.json"))
    if not paths:
        raise SystemExit(
            f"no payloads in {PAYLOADS}; set GENEA_PAYLOADS to their folder"
        )
    return [json.loads(path.read_text(encoding="utf-8")) for path in paths]


def pin_to_one_core() -> None:
    """Keep the figure a one-core figure where the OS lets us say so."""
    if hasattr(os, "sched_setaffinity"):
        os.sched_setaffinity(0, {min(os.sched_getaffinity(0))})


def rate(payloads: list[dict[str, Any]], seconds: float, *, to_dict: bool) -> float:
    """Payloads per second over `seconds`, whole passes over the list only."""
    done = 0
    start = time.perf_counter()
    deadline = start + seconds
    while time.perf_counter() < deadline:
        for payload in payloads:
            event = normalise(payload, received_at=RECEIVED_AT)
            if to_dict:
                event.to_dict()
        done += len(payloads)
    return done / (time.perf_counter() - start)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=3.0)
    args = parser.parse_args()

    pin_to_one_core()
    payloads = load_payloads()
    rate(payloads, 0.2, to_dict=False)  # warm the zone and slug caches

    plain = rate(payloads, args.seconds, to_dict=False)
    with_dict = rate(payloads, args.seconds, to_dict=True)
    print(f"normalise:           {plain:>9,.0f} payloads/s (one core)")
    print(f"normalise + to_dict: {with_dict:>9,.0f} payloads/s (one core)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
