"""Options several subcommands share."""

from __future__ import annotations

import argparse
from pathlib import Path

DEFAULT_CONFIG = "rules.yaml"


def add_config_option(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "-c", "--config", type=Path, default=Path(DEFAULT_CONFIG),
        help=f"the rules file (default: {DEFAULT_CONFIG})",
    )


def add_secret_option(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--secret", help="the webhook secret (default: $GENEA_WEBHOOK_SECRET)"
    )
