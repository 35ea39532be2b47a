"""Sign and send a payload file as Genea would: the CLI's `sign` and `send`."""

from __future__ import annotations

import json
import os
import secrets
from collections.abc import Mapping
from datetime import UTC, datetime
from pathlib import Path

import httpx

from genea_automate.errors import GeneaAutomateError
from genea_automate.ingest.signature import SIGNATURE_HEADER, sign

SECRET_ENV = "GENEA_WEBHOOK_SECRET"


def resolve_secret(given: str | None, environ: Mapping[str, str] | None = None) -> str:
    """The --secret value, else $GENEA_WEBHOOK_SECRET; an error names both."""
    if given:
        return given
    from_env = (os.environ if environ is None else environ).get(SECRET_ENV, "")
    if from_env:
        return from_env
    raise GeneaAutomateError(
        f"no webhook secret: pass --secret SECRET or set {SECRET_ENV} "
        f"to the secret Genea shows for the webhook"
    )


def sign_file(path: str | Path, secret: str | bytes) -> str:
    """The X-Sequr-Signature value for the file's exact bytes."""
    return sign(_as_bytes(secret), read_payload(path))


def send_body(
    body: bytes,
    url: str,
    secret: str | bytes,
    timeout: float = 10.0,
    headers: Mapping[str, str] | None = None,
) -> httpx.Response:
    """POST `body`, signed, as Genea would; raises httpx errors.

    `headers` adds any extra ones, such as an endpoint's required custom header.
    """
    sent = {
        "Content-Type": "application/json",
        SIGNATURE_HEADER: sign(_as_bytes(secret), body),
        **(headers or {}),
    }
    return httpx.post(url, content=body, headers=sent, timeout=timeout)


def fresh_copy(path: str | Path, now: datetime) -> tuple[bytes, str]:
    """The event in the file as if it happened `now`, and its new uuid.

    A new uuid makes it a new event rather than a retry; `event_time` (and
    `created_at`, where present) become `now`. The rest stays as it is.
    """
    try:
        data = json.loads(read_payload(path))
    except ValueError as exc:
        raise GeneaAutomateError(f"{path} is not JSON: {exc}") from None
    if not isinstance(data, dict):
        raise GeneaAutomateError(f"{path} holds no JSON object, so no Genea event")
    # Audit events have whole numbers for uuids; access events hex strings.
    old = data.get("uuid")
    uuid: int | str = secrets.token_hex(12)
    if isinstance(old, int) and not isinstance(old, bool):
        uuid = secrets.randbelow(10**12)
    elif isinstance(old, str) and old.isdigit():
        uuid = str(secrets.randbelow(10**12))
    stamp = now.astimezone(UTC).isoformat(timespec="milliseconds")
    stamp = stamp.replace("+00:00", "Z")
    data["uuid"], data["event_time"] = uuid, stamp
    if "created_at" in data:
        data["created_at"] = stamp
    return json.dumps(data).encode(), str(uuid)


def read_payload(path: str | Path) -> bytes:
    try:
        return Path(path).read_bytes()
    except OSError as exc:
        raise GeneaAutomateError(
            f"cannot read payload file {str(path)!r}: {exc.strerror}"
        ) from exc


def _as_bytes(secret: str | bytes) -> bytes:
    return secret.encode("utf-8") if isinstance(secret, str) else secret
