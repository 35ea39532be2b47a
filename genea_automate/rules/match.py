"""The `match` condition: one test of one event field, found by a dotted path.

Paths run through the event's fields as templates see them (`door.name`,
`details.forced_open.current`, `raw.event_type`); a number steps into a list.
Values compare as text: booleans as true/false, 3.0 as 3.
"""

from __future__ import annotations

import fnmatch
import re
from dataclasses import dataclass
from typing import Any

from genea_automate.config.match import MatchConfig
from genea_automate.rules.conditions import ConditionResult, EvaluationContext, no_event

_MISSING = object()
_SHOWN = 60


def lookup(data: Any, path: str) -> Any:
    """The value at `path`, or `_MISSING` where the path leads nowhere."""
    for part in path.split("."):
        if isinstance(data, dict) and part in data:
            data = data[part]
        elif isinstance(data, list) and part.isdigit() and int(part) < len(data):
            data = data[int(part)]
        else:
            return _MISSING
    return data


def as_text(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    return "" if value is None else str(value)


@dataclass(frozen=True, slots=True)
class MatchCondition:
    config: MatchConfig
    regex: re.Pattern[str] | None

    @classmethod
    def from_config(cls, config: MatchConfig) -> MatchCondition:
        if config.regex is None:
            return cls(config, None)
        flags = re.IGNORECASE if config.ignore_case else 0
        return cls(config, re.compile(config.regex, flags))

    def evaluate(self, ctx: EvaluationContext) -> ConditionResult:
        if ctx.event is None:
            return no_event("match")
        config = self.config
        value = lookup(ctx.data, config.path)
        present = value is not _MISSING and value is not None
        if config.exists is not None:
            state = "present" if present else "absent"
            return ConditionResult(
                "match", present is config.exists, f"{config.path} is {state}"
            )
        if not present:
            return ConditionResult("match", False, f"{config.path} is absent")
        operand = config.operand(config.operator)
        passed = self._test(as_text(value))
        verb = config.operator if passed else f"not {config.operator}"
        detail = f"{config.path} is {_short(value)}, {verb} {_short(operand)}"
        return ConditionResult("match", passed, detail)

    def _test(self, text: str) -> bool:
        config = self.config
        if self.regex is not None:
            return self.regex.search(text) is not None
        fold = str.casefold if config.ignore_case else str
        if config.glob is not None:
            return fnmatch.fnmatchcase(fold(text), fold(config.glob))
        wanted = [config.equals] if config.in_ is None else config.in_
        return fold(text) in {fold(as_text(item)) for item in wanted}


def _short(value: Any) -> str:
    shown = repr(value)
    return shown if len(shown) <= _SHOWN else shown[: _SHOWN - 3] + "..."
