"""`serve`: run the daemon."""

from __future__ import annotations

import argparse
from typing import Any

from genea_automate.cli.options import add_config_option


def register(commands: Any) -> None:
    serve = commands.add_parser("serve", help="run the daemon")
    add_config_option(serve)
    serve.add_argument("--listen", metavar="HOST:PORT", help="override server.listen")
    serve.add_argument("--log-level", default="INFO", help="DEBUG, INFO, WARNING...")
    serve.add_argument(
        "--log-format",
        choices=["text", "keyvalue", "json"],
        default="text",
        help="plain lines, or key=value or JSON lines with stable fields",
    )
    serve.set_defaults(run=_serve)


def _serve(args: argparse.Namespace) -> int:
    from genea_automate.logs import configure_logging
    from genea_automate.server import serve

    configure_logging(args.log_level, args.log_format)
    return serve(args.config, listen=args.listen)
