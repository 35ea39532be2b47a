"""`sign` and `send`: trying an endpoint with a signed event, as Genea sends it."""

from __future__ import annotations

import argparse
import sys
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from genea_automate.cli.options import add_secret_option
from genea_automate.errors import GeneaAutomateError


def register(commands: Any) -> None:
    sign = commands.add_parser(
        "sign",
        help="print the X-Sequr-Signature of a file",
        description="Print the X-Sequr-Signature header Genea would send with FILE.",
    )
    sign.add_argument("file", type=Path, help="a Genea event as JSON, sent as is")
    add_secret_option(sign)
    sign.set_defaults(run=_sign)

    send = commands.add_parser(
        "send",
        help="post a file as a signed Genea webhook",
        description="Post FILE to a daemon exactly as Genea would, signed.",
    )
    send.add_argument("file", type=Path, help="a Genea event as JSON, sent as is")
    send.add_argument(
        "--url", required=True, help="e.g. http://127.0.0.1:8080/hooks/main"
    )
    add_secret_option(send)
    send.add_argument(
        "--fresh",
        action="store_true",
        help="send it as a new event that happens now: a new uuid, event_time now",
    )
    send.add_argument(
        "--timeout", type=float, default=10.0, help="seconds to wait (default: 10)"
    )
    send.set_defaults(run=_send)


def _sign(args: argparse.Namespace) -> int:
    from genea_automate.ingest.client import resolve_secret, sign_file

    print(sign_file(args.file, resolve_secret(args.secret)))
    return 0


def _send(args: argparse.Namespace) -> int:
    import httpx

    from genea_automate.ingest.client import (
        fresh_copy,
        read_payload,
        resolve_secret,
        send_body,
    )

    secret = resolve_secret(args.secret)
    if args.fresh:
        body, uuid = fresh_copy(args.file, datetime.now(UTC))
        print(f"sending {args.file} as new event {uuid}, happening now")
    else:
        body = read_payload(args.file)
    try:
        response = send_body(body, args.url, secret, args.timeout)
    except httpx.UnsupportedProtocol:
        raise GeneaAutomateError(
            f"--url must start with http:// or https://, got {args.url!r}"
        ) from None
    except httpx.HTTPError as exc:
        raise GeneaAutomateError(
            f"could not post to {args.url}: {exc}; is the daemon running there?"
        ) from None
    print(f"{response.status_code} {response.text}")
    if response.status_code == 404:
        _explain_not_found(args.url)
    return 0 if response.is_success else 1


def _explain_not_found(url: str) -> None:
    """A bare 404 most often means the URL names no endpoint at all."""
    from genea_automate.ingest.http import HOOKS_PREFIX

    parts = urlsplit(url)
    if HOOKS_PREFIX not in parts.path:
        print(
            f"error: the URL must end in {HOOKS_PREFIX}<endpoint name>, e.g. "
            f"{parts.scheme}://{parts.netloc}{HOOKS_PREFIX}main, where the name is "
            "an endpoint under `endpoints:` in the rules file",
            file=sys.stderr,
        )
