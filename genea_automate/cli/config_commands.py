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
    validate.set_defaults(run=_validate)

    schema = commands.add_parser("schema", help="print the JSON Schema of rules files")
    add_config_option(schema)
    schema.set_defaults(run=_schema)


def _validate(args: argparse.Namespace) -> int:
    """Check the file, not this shell: an unset variable is only a warning.

    `validate` runs where the daemon's secrets often are not (CI, a laptop);
    `serve` itself refuses to start without them, naming each.
    """
    from genea_automate.config.loader import load_config

    loaded = load_config(args.config, unset_ok=True)
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
