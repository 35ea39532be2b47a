"""The `genea-automate` command: one module per group of subcommands.

Each module has `register(commands)`, which adds its subcommands to the
argparse sub-parsers and sets `run` to a function of the parsed arguments that
returns the exit status.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence

from genea_automate import __version__
from genea_automate.cli import (
    config_commands,
    dead_letters,
    history,
    rule_tests,
    serve,
    webhook_commands,
)
from genea_automate.cli.options import check_default_config
from genea_automate.errors import ConfigError, GeneaAutomateError

COMMAND_MODULES = (
    serve,
    config_commands,
    webhook_commands,
    rule_tests,
    history,
    dead_letters,
)


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    # A command whose 1 means an answer (replay: something differs) fails with 2.
    failed = getattr(args, "error_status", 1)
    try:
        check_default_config(args)
        return int(args.run(args))
    except ConfigError as exc:
        for issue in exc.issues:
            print(issue, file=sys.stderr)
        return failed
    except GeneaAutomateError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return failed
    except BrokenPipeError:
        # `genea-automate schema | head` closed our output early; not an error.
        sys.stderr.close()
        return 0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="genea-automate",
        description="A rules engine for Genea access-control webhooks.",
    )
    parser.add_argument("--version", action="version", version=__version__)
    commands = parser.add_subparsers(required=True, metavar="COMMAND")
    for module in COMMAND_MODULES:
        module.register(commands)
    return parser
