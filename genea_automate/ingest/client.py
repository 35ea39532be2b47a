"""Sign and send a payload file as Genea would: the CLI's `sign` and `send`."""

from __future__ import annotations

import os
from collections.abc import Mapping
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
    return sign(_as_bytes(secret), _read(path))


def send_file(
    path: str | Path,
    url: str,
    secret: str | bytes,
    timeout: float = 10.0,
    headers: Mapping[str, str] | None = None,
) -> httpx.Response:
    """POST the file's exact bytes, signed, as Genea would; raises httpx errors.

    `headers` adds any extra ones, such as an endpoint's required custom header.
    """
    body = _read(path)
    sent = {
        "Content-Type": "application/json",
        SIGNATURE_HEADER: sign(_as_bytes(secret), body),
        **(headers or {}),
    }
    return httpx.post(url, content=body, headers=sent, timeout=timeout)


def _read(path: str | Path) -> bytes:
    try:
        return Path(path).read_bytes()
    except OSError as exc:
        raise GeneaAutomateError(
            f"cannot read payload file {str(path)!r}: {exc.strerror}"
        ) from exc


def _as_bytes(secret: str | bytes) -> bytes:
    return secret.encode("utf-8") if isinstance(secret, str) else secret
