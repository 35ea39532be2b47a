"""The shared Genea payloads: their bytes, their signatures, and variants."""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

from genea_automate.ingest.signature import sign

TEST_SECRET = "genea-automate-test-secret"
# A copy of the project's shared payload set, so a fresh clone tests on its own.
SHARED_PAYLOADS = Path(
    os.environ.get(
        "GENEA_PAYLOADS",
        Path(__file__).resolve().parents[1] / "fixtures" / "genea-payloads",
    )
)


def payload_path(prefix: str) -> Path:
    """The shared payload whose file name starts with `prefix`, e.g. '01'."""
    [path] = sorted(SHARED_PAYLOADS.glob(f"{prefix}*.json"))
    return path


def payload(prefix: str, **changes: Any) -> dict[str, Any]:
    """A shared payload as a dict, with top-level fields replaced."""
    data: dict[str, Any] = json.loads(payload_path(prefix).read_bytes())
    data.update(changes)
    return data


def body_of(data: dict[str, Any]) -> bytes:
    """The bytes Genea would send: JSON.stringify's compact form."""
    return json.dumps(data, separators=(",", ":"), ensure_ascii=False).encode()


def signed_headers(body: bytes, secret: str = TEST_SECRET) -> dict[str, str]:
    return {
        "Content-Type": "application/json",
        "X-Sequr-Signature": sign(secret.encode(), body),
    }
