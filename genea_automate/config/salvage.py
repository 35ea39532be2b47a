"""The cross-checks of the well-formed parts of rules that are partly malformed.

Each malformed part of a rule (its trigger, a condition, a step, or the whole
rule) gets a stand-in that validates, the file is checked, and nothing found
under a stand-in is reported (see `cross_check`). So one run reports a misspelt
kind in `when` beside an unknown key in `then`.
"""

from __future__ import annotations

import copy
from typing import Any

from pydantic import ValidationError

from genea_automate.config.checks import Path, cross_check
from genea_automate.config.models import ConfigBase
from genea_automate.config.yamlload import LoadedYaml
from genea_automate.errors import ConfigIssue
from genea_automate.plugin import PluginRegistry

# A malformed trigger may have meant either kind, and what the rule's templates
# may read depends on it: only what the checks find with both is kept.
_TRIGGERS = ({"event": "access.granted"}, {"cron": "0 0 * * *"})
_STEP = {"wait_for": {"event": "access.granted", "timeout": "1s"}}
_ITEMS: dict[str, Any] = {"if": {"all": []}, "then": _STEP}
_KEYS: dict[str, Any] = {"id": "stand-in", "if": [], "then": [_STEP]}


def checks_beside_errors(
    exc: ValidationError,
    loaded: LoadedYaml,
    registry: PluginRegistry,
    model: type[ConfigBase],
) -> list[ConfigIssue]:
    """The cross-checks of what the errors of `exc` leave well formed.

    Nothing when a section that rules refer to (schedules, connections) is
    malformed itself: its checks would then report problems that are not there.
    """
    stand_ins = _stand_in_paths(exc)
    if stand_ins is None:
        return []
    event, timed = (
        _checks(loaded, registry, model, stand_ins, trigger) for trigger in _TRIGGERS
    )
    if event is None or timed is None:
        return []
    return [issue for issue in event if issue in timed]


def _stand_in_paths(exc: ValidationError) -> set[Path] | None:
    """Where the stand-in for each error goes; None for an error outside rules."""
    paths: set[Path] = set()
    for error in exc.errors(include_url=False):
        loc = error["loc"]
        if len(loc) < 2 or loc[0] != "rules" or not isinstance(loc[1], int):
            return None
        item = len(loc) > 3 and loc[2] in _ITEMS and isinstance(loc[3], int)
        paths.add(loc[:4] if item else loc[:3])
    return paths


def _checks(
    loaded: LoadedYaml,
    registry: PluginRegistry,
    model: type[ConfigBase],
    stand_ins: set[Path],
    trigger: dict[str, str],
) -> list[ConfigIssue] | None:
    """The cross-checks with the stand-ins in place, or None if it still fails."""
    rules = copy.deepcopy(loaded.data["rules"])
    for _, index, *part in stand_ins:
        _put_stand_in(rules, index, part, trigger)
    try:
        config = model.model_validate({**loaded.data, "rules": rules})
    except ValidationError:
        return None
    return cross_check(config, registry, loaded, stand_ins)


def _put_stand_in(
    rules: list[Any], index: Any, part: list[Any], trigger: dict[str, str]
) -> None:
    """Replace one malformed part of a rule; a malformed optional key goes."""
    if not part:
        rules[index] = {**_KEYS, "when": trigger}
    elif len(part) == 2:
        key, item = part
        rules[index][key][item] = _ITEMS[key]
    elif part[0] == "when":
        rules[index]["when"] = trigger
    elif part[0] in _KEYS:
        rules[index][part[0]] = _KEYS[part[0]]
    else:
        rules[index].pop(part[0], None)
