"""Checks across sections that the models alone cannot make."""

from __future__ import annotations

from collections.abc import Iterator
from collections.abc import Set as AbstractSet
from typing import Any

import holidays

from genea_automate.config.issues import did_you_mean, issue_at
from genea_automate.config.models import ConfigBase
from genea_automate.config.rules import ConditionConfig, CronWhenConfig, RuleConfig
from genea_automate.config.yamlload import LoadedYaml
from genea_automate.errors import ConfigIssue, plugin_crash_contained
from genea_automate.events.kinds import KNOWN_KINDS, OPEN_KIND_PREFIXES
from genea_automate.events.model import EVENT_FIELDS
from genea_automate.plugin import PluginRegistry
from genea_automate.rules.matching import KindPattern, pattern_can_match
from genea_automate.rules.templates import (
    EVENT_VARIABLES,
    expression_template,
    field_reads,
    undeclared_names,
)
from genea_automate.rules.timed import RUN_VARIABLES

Path = tuple[str | int, ...]


def cross_check(
    config: ConfigBase,
    registry: PluginRegistry,
    loaded: LoadedYaml,
    stand_ins: AbstractSet[Path] = frozenset(),
) -> list[ConfigIssue]:
    """Errors and warnings, in file order of the checks.

    `stand_ins` are the paths of values that stand in for malformed ones (see
    salvage): nothing under them is reported, and an id that stands in is
    compared with no other.
    """
    found: list[tuple[Path, str, str]] = []
    rules: list[tuple[int, RuleConfig]] = list(enumerate(getattr(config, "rules", [])))
    found += _duplicate_rule_ids(
        [(i, rule) for i, rule in rules if not _within(("rules", i, "id"), stand_ins)]
    )
    found += _schedule_problems(config)
    for index, rule in rules:
        found += _rule_problems(index, rule, config, registry)
    return [
        issue_at(loaded, path, message, severity)
        for path, message, severity in found
        if not _within(path, stand_ins)
    ]


def _within(path: Path, stand_ins: AbstractSet[Path]) -> bool:
    return any(path[:depth] in stand_ins for depth in range(len(path) + 1))


def _duplicate_rule_ids(
    rules: list[tuple[int, RuleConfig]],
) -> list[tuple[Path, str, str]]:
    seen: dict[str, int] = {}
    problems = []
    for index, rule in rules:
        if rule.id in seen:
            message = f"rule id {rule.id!r} is already used by rules[{seen[rule.id]}]"
            problems.append((("rules", index, "id"), message, "error"))
        seen.setdefault(rule.id, index)
    return problems


def _schedule_problems(config: ConfigBase) -> list[tuple[Path, str, str]]:
    problems = []
    for name, schedule in config.schedules.items():
        rule = schedule.except_holidays
        if rule is None:
            continue
        message = _holiday_problem(rule.country, rule.subdiv)
        if message:
            problems.append((("schedules", name, "except_holidays"), message, "error"))
    return problems


def _holiday_problem(country: str, subdiv: str | None) -> str | None:
    supported = holidays.list_supported_countries()
    if country not in supported:
        hint = did_you_mean(country, sorted(supported))
        return f"no public holidays are known for country {country!r}{hint}"
    if subdiv is not None and subdiv not in supported[country]:
        hint = did_you_mean(subdiv, supported[country])
        return f"{country} has no subdivision {subdiv!r}{hint}"
    return None


def _rule_problems(
    index: int, rule: RuleConfig, config: ConfigBase, registry: PluginRegistry
) -> list[tuple[Path, str, str]]:
    base: Path = ("rules", index)
    if isinstance(rule.when, CronWhenConfig):
        problems = _timed_rule_problems(base, rule)
    else:
        problems = list(_kind_warnings(base + ("when", "event"), rule.when.event))
    for path, condition in _conditions(base + ("if",), rule.if_):
        problems += _condition_problems(path, condition, config)
    problems += _template_name_problems(base, rule)
    for path, step in _action_steps(rule):
        try:
            with plugin_crash_contained(step.action):
                plugin = registry.get(step.action)(getattr(config, step.action, None))
                found = list(plugin.check(step.options))
        except Exception as exc:  # a plugin's bug: its step is refused, not the load
            found = [((), f"plugin {step.action!r} failed to check its options: {exc}")]
        for sub_path, message in found:
            problems.append((base + path + (step.action, *sub_path), message, "error"))
    for step_index, step in enumerate(rule.then):
        if step.action == "wait_for":
            path = base + ("then", step_index, "wait_for", "event")
            problems += _kind_warnings(path, step.wait_for.event)
    return problems


def _action_steps(rule: RuleConfig) -> Iterator[tuple[Path, Any]]:
    """Every action step with its path in the rule, on_timeout steps included."""
    for index, step in enumerate(rule.then):
        if step.action != "wait_for":
            yield ("then", index), step
        for inner, timeout_step in enumerate(getattr(step, "on_timeout", None) or []):
            yield ("then", index, "on_timeout", inner), timeout_step


_EVENT_CONDITIONS = ("first_arrival", "count", "cooldown", "match")


def _timed_rule_problems(base: Path, rule: RuleConfig) -> list[tuple[Path, str, str]]:
    """What only makes sense with an event, in a rule that runs without one."""
    problems = [
        (
            path + (condition.name,),
            f"{condition.name} looks at the event, and a timed rule has none; a timed "
            "rule can use arrived_today, schedule, template, any, all and not",
            "error",
        )
        for path, condition in _conditions(base + ("if",), rule.if_)
        if condition.name in _EVENT_CONDITIONS
    ]
    problems += [
        (
            base + ("then", index, "wait_for"),
            "a timed rule cannot wait_for an event yet; use an event rule",
            "error",
        )
        for index, step in enumerate(rule.then)
        if step.action == "wait_for"
    ]
    if rule.max_event_age is not None:
        message = "max_event_age is for rules that events trigger; remove it here"
        problems.append((base + ("max_event_age",), message, "error"))
    return problems


def _conditions(
    path: Path, conditions: list[ConditionConfig]
) -> Iterator[tuple[Path, ConditionConfig]]:
    """Every condition with its path, nested ones included."""
    for index, condition in enumerate(conditions):
        yield from _condition_tree(path + (index,), condition)


def _condition_tree(
    path: Path, condition: ConditionConfig
) -> Iterator[tuple[Path, ConditionConfig]]:
    yield path, condition
    if condition.any is not None:
        yield from _conditions(path + ("any",), condition.any)
    if condition.all is not None:
        yield from _conditions(path + ("all",), condition.all)
    if condition.not_ is not None:
        yield from _condition_tree(path + ("not",), condition.not_)


def _condition_problems(
    path: Path, condition: ConditionConfig, config: ConfigBase
) -> list[tuple[Path, str, str]]:
    if (
        isinstance(condition.schedule, str)
        and condition.schedule not in config.schedules
    ):
        names = list(config.schedules)
        known = ", ".join(repr(n) for n in names) or "none are defined"
        message = (
            f"unknown schedule {condition.schedule!r}"
            f"{did_you_mean(condition.schedule, names)}; schedules: {known}"
        )
        return [(path + ("schedule",), message, "error")]
    if condition.first_arrival is not None:
        kinds = condition.first_arrival.kinds
        return list(_kind_warnings(path + ("first_arrival", "kinds"), kinds))
    if condition.arrived_today is not None:
        kinds = condition.arrived_today.kinds
        return list(_kind_warnings(path + ("arrived_today", "kinds"), kinds))
    if condition.count is not None and condition.count.kinds is not None:
        return list(_kind_warnings(path + ("count", "kinds"), condition.count.kinds))
    return []


def _kind_warnings(path: Path, patterns: list[str]) -> Iterator[tuple[Path, str, str]]:
    """Patterns no known kind matches: a warning, as Genea may add kinds."""
    for index, text in enumerate(patterns):
        pattern = KindPattern.parse(text)
        if _kind_can_match(pattern):
            continue
        message = (
            f"no known event kind matches {text!r}{_kind_hint(pattern.text)}; "
            "the kinds are listed in docs/events.md"
        )
        yield path + (index,), message, "warning"


# Denial reasons are listed in the kinds table: an unknown one under this
# prefix is more likely a typo (`access.denied.expird`) than a new reason.
_LISTED_FAMILY = "access.denied."


def _kind_can_match(pattern: KindPattern) -> bool:
    """Whether a known kind, or a member of an open-ended family, may match."""
    if pattern.text.startswith(_LISTED_FAMILY):
        return any(pattern.matches(kind) for kind in KNOWN_KINDS)
    return pattern_can_match(pattern, KNOWN_KINDS)


def _kind_families() -> tuple[str, ...]:
    """Every known kind with each of its prefixes (`access.denied`, `access`)."""
    names = {prefix.rstrip(".") for prefix in OPEN_KIND_PREFIXES}
    for kind in KNOWN_KINDS:
        parts = kind.split(".")
        names.update(".".join(parts[:end]) for end in range(1, len(parts) + 1))
    return tuple(sorted(names))


_KIND_FAMILIES = _kind_families()


def _kind_hint(text: str) -> str:
    """The kind or family the pattern most likely meant.

    Names that extend the pattern come first, the shortest family only
    (`access.deny` gives `access.denied`, not each denial reason); then the
    closest spelling among names of as many segments, so that a misspelt
    family (`acess.denied`) gets a family and a misspelt kind gets a kind.
    """
    longer = [name for name in _KIND_FAMILIES if name.startswith(text)]
    shortest = [
        name
        for name in longer
        if not any(name.startswith(f"{other}.") for other in longer)
    ][:3]
    if shortest:
        return " (did you mean " + " or ".join(map(repr, shortest)) + "?)"
    depth = text.count(".")
    alike = [name for name in _KIND_FAMILIES if name.count(".") == depth]
    return did_you_mean(text, alike) or did_you_mean(text, _KIND_FAMILIES)


def _template_name_problems(
    base: Path, rule: RuleConfig
) -> list[tuple[Path, str, str]]:
    """Templates that read what no event has: `{{ dor.name }}`, `{{ door.nmae }}`."""
    found = [
        (base + step_path + (step.action, *path), text)
        for step_path, step in _action_steps(rule)
        for path, text in _strings(step.options.model_dump(by_alias=True))
    ]
    found += [
        (path + ("template",), expression_template(condition.template))
        for path, condition in _conditions(base + ("if",), rule.if_)
        if condition.template is not None
    ]
    timed = isinstance(rule.when, CronWhenConfig)
    known = RUN_VARIABLES if timed else EVENT_VARIABLES
    problems = []
    for path, text in found:
        for name in sorted(undeclared_names(text) - known):
            hint = did_you_mean(name, sorted(known))
            message = (
                f"the template uses {name!r}, which is not an event field{hint}; "
                "the fields are listed in docs/events.md"
            )
            if timed:
                message = (
                    f"the template uses {name!r}, which a timed rule does not have"
                    f"{hint}; it has {', '.join(sorted(known))}"
                )
            problems.append((path, message, "error"))
        if not timed:
            problems += [(path, *problem) for problem in _field_problems(text)]
    return problems


_Fields = dict[str, "_Fields | None"]


def _template_fields() -> _Fields:
    """What an event rule's templates can look up, as `to_dict()` shapes it.

    Every variable and, for the event's objects, their fields; None where
    anything may be: a single value, or `details` and `raw`, which hold the
    payload's own keys.
    """
    variables: _Fields = {
        name: dict.fromkeys(fields) or None for name, fields in EVENT_FIELDS.items()
    }
    return {**variables, "event": variables}


_TEMPLATE_FIELDS = _template_fields()
# What a guarded lookup of a missing field does at run time, by guard.
_GUARDED = {"default": "its default is always used", "defined": "it is never defined"}


def _field_problems(text: str) -> list[tuple[str, str]]:
    """Lookups of fields no event has, each as (message, severity).

    The template would fail at run time, so it is an error, unless a `default`
    or `is defined` guards one of the lookups: then the rule runs, but never
    sees that field, which is worth a warning.
    """
    guards: dict[tuple[str, ...], str | None] = {}
    for read in field_reads(text):
        if guards.get(read.path) is None:
            guards[read.path] = read.guard
    problems = []
    for path, guard in guards.items():
        missing = _missing_field(path)
        if missing is None:
            continue
        owner, fields = missing
        message = (
            f"the template uses {'.'.join(path)!r}, but {owner!r} has no field "
            f"{path[-1]!r}{did_you_mean(path[-1], fields)}"
        )
        if guard is not None:
            message += f", so {_GUARDED[guard]}"
        message += f"; its fields are: {', '.join(fields)}"
        problems.append((message, "error" if guard is None else "warning"))
    return problems


def _missing_field(path: tuple[str, ...]) -> tuple[str, list[str]] | None:
    """The owner and its fields, when the last step of `path` is certainly missing.

    An unknown variable is reported on its own, and an earlier missing step by
    the shorter lookup. A public method of a mapping is not missing: at run
    time the sandbox finds `door.items`.
    """
    fields: _Fields | None = _TEMPLATE_FIELDS
    for depth, step in enumerate(path):
        if fields is None:
            return None
        if step not in fields:
            last = depth == len(path) - 1
            if depth == 0 or not last or _mapping_method(step):
                return None
            return ".".join(path[:depth]), list(fields)
        fields = fields[step]
    return None


def _mapping_method(name: str) -> bool:
    return not name.startswith("_") and hasattr(dict, name)


def _strings(value: Any, path: Path = ()) -> Iterator[tuple[Path, str]]:
    """Every string inside a dumped options model, with its path."""
    if isinstance(value, str):
        yield path, value
    elif isinstance(value, dict):
        for key, item in value.items():
            yield from _strings(item, path + (key,))
    elif isinstance(value, list):
        for index, item in enumerate(value):
            yield from _strings(item, path + (index,))
