"""The `genea-automate` command."""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Sequence
from pathlib import Path

from genea_automate import __version__
from genea_automate.errors import ConfigError, GeneaAutomateError

DEFAULT_CONFIG = "rules.yaml"


def main(argv: Sequence[str] | None = None) -> int:
    parser = _parser()
    args = parser.parse_args(argv)
    try:
        return int(args.run(args))
    except ConfigError as exc:
        for issue in exc.issues:
            print(issue, file=sys.stderr)
        return 1
    except GeneaAutomateError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="genea-automate",
        description="A rules engine for Genea access-control webhooks.",
    )
    parser.add_argument("--version", action="version", version=__version__)
    commands = parser.add_subparsers(required=True, metavar="COMMAND")

    serve = commands.add_parser("serve", help="run the daemon")
    _config_option(serve)
    serve.add_argument("--listen", metavar="HOST:PORT", help="override server.listen")
    serve.add_argument("--log-level", default="INFO", help="DEBUG, INFO, WARNING...")
    serve.add_argument(
        "--log-format", choices=["text", "keyvalue"], default="text",
        help="plain lines, or key=value lines with stable fields",
    )
    serve.set_defaults(run=_serve)

    validate = commands.add_parser("validate", help="check a rules file")
    _config_option(validate)
    validate.set_defaults(run=_validate)

    schema = commands.add_parser("schema", help="print the JSON Schema of rules files")
    _config_option(schema)
    schema.set_defaults(run=_schema)

    sign = commands.add_parser("sign", help="print the X-Sequr-Signature of a file")
    sign.add_argument("file", type=Path)
    _secret_option(sign)
    sign.set_defaults(run=_sign)

    send = commands.add_parser("send", help="post a file as a signed Genea webhook")
    send.add_argument("file", type=Path)
    send.add_argument("--url", required=True, help="e.g. http://127.0.0.1:8080/hooks/main")
    _secret_option(send)
    send.add_argument("--timeout", type=float, default=10.0)
    send.set_defaults(run=_send)
    return parser


def _config_option(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "-c", "--config", type=Path, default=Path(DEFAULT_CONFIG),
        help=f"the rules file (default: {DEFAULT_CONFIG})",
    )


def _secret_option(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--secret", help="the webhook secret (default: $GENEA_WEBHOOK_SECRET)"
    )


def _serve(args: argparse.Namespace) -> int:
    from genea_automate.logs import configure_logging
    from genea_automate.server import serve

    configure_logging(args.log_level, args.log_format)
    return serve(args.config, listen=args.listen)


def _validate(args: argparse.Namespace) -> int:
    from genea_automate.config.loader import load_config

    loaded = load_config(args.config)
    for warning in loaded.warnings:
        print(warning, file=sys.stderr)
    rules = len(getattr(loaded.config, "rules", []))
    print(f"{args.config}: OK, {rules} rule(s), {len(loaded.warnings)} warning(s)")
    return 0


def _schema(args: argparse.Namespace) -> int:
    from genea_automate.config.loader import plugin_registry
    from genea_automate.config.models import build_config_model

    model = build_config_model(plugin_registry(args.config))
    print(json.dumps(model.model_json_schema(by_alias=True), indent=2))
    return 0


def _sign(args: argparse.Namespace) -> int:
    from genea_automate.ingest.client import resolve_secret, sign_file

    print(sign_file(args.file, resolve_secret(args.secret)))
    return 0


def _send(args: argparse.Namespace) -> int:
    from genea_automate.ingest.client import resolve_secret, send_file

    response = send_file(args.file, args.url, resolve_secret(args.secret), args.timeout)
    print(f"{response.status_code} {response.text}")
    return 0 if response.is_success else 1
