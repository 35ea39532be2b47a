"""`validate` and `schema`: checking rules files and helping editors."""

from __future__ import annotations

import argparse
import json
import sys
from typing import Any

from genea_automate.cli.options import add_config_option


def register(commands: Any) -> None:
    validate = commands.add_parser("validate", help="check a rules file")
    add_config_option(validate)
    validate.add_argument(
        "--strict",
        action="store_true",
        help="exit 1 on warnings about the file too, such as an unknown event "
        "kind (an unset variable stays a warning)",
    )
    validate.set_defaults(run=_validate)

    schema = commands.add_parser("schema", help="print the JSON Schema of rules files")
    add_config_option(schema)
    schema.set_defaults(run=_schema)


def _validate(args: argparse.Namespace) -> int:
    """Check the file, not this shell: an unset variable is only a warning.

    `validate` runs where the daemon's secrets often are not (CI, a laptop);
    `serve` itself refuses to start without them, naming each. So `--strict`,
    which fails on the file's warnings, lets those about unset variables pass.
    """
    from genea_automate.config.loader import load_config

    loaded = load_config(args.config, unset_ok=True)
    for warning in loaded.warnings:
        print(warning, file=sys.stderr)
    rules = len(getattr(loaded.config, "rules", []))
    counts = f"{rules} rule(s), {len(loaded.warnings)} warning(s)"
    if args.strict and loaded.file_warnings:
        refused = len(loaded.file_warnings)
        print(f"{args.config}: {counts}, {refused} refused by --strict")
        return 1
    print(f"{args.config}: OK, {counts}")
    return 0


def _schema(args: argparse.Namespace) -> int:
    from genea_automate.config.loader import plugin_registry
    from genea_automate.config.models import build_config_model

    model = build_config_model(plugin_registry(args.config))
    print(json.dumps(model.model_json_schema(by_alias=True), indent=2))
    return 0
