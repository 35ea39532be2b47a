"""`sign` and `send`: trying an endpoint with a signed event, as Genea sends it."""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

from genea_automate.cli.options import add_secret_option


def register(commands: Any) -> None:
    sign = commands.add_parser("sign", help="print the X-Sequr-Signature of a file")
    sign.add_argument("file", type=Path)
    add_secret_option(sign)
    sign.set_defaults(run=_sign)

    send = commands.add_parser("send", help="post a file as a signed Genea webhook")
    send.add_argument("file", type=Path)
    send.add_argument(
        "--url", required=True, help="e.g. http://127.0.0.1:8080/hooks/main"
    )
    add_secret_option(send)
    send.add_argument("--timeout", type=float, default=10.0)
    send.set_defaults(run=_send)


def _sign(args: argparse.Namespace) -> int:
    from genea_automate.ingest.client import resolve_secret, sign_file

    print(sign_file(args.file, resolve_secret(args.secret)))
    return 0


def _send(args: argparse.Namespace) -> int:
    from genea_automate.ingest.client import resolve_secret, send_file

    response = send_file(args.file, args.url, resolve_secret(args.secret), args.timeout)
    print(f"{response.status_code} {response.text}")
    return 0 if response.is_success else 1
