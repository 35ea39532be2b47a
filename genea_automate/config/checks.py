"""Checks across sections that the models alone cannot make."""

from __future__ import annotations

from collections.abc import Iterator
import holidays

from genea_automate.config.issues import did_you_mean, issue_at
from genea_automate.config.models import ConfigBase
from genea_automate.config.rules import ConditionConfig, RuleConfig
from genea_automate.config.yamlload import LoadedYaml
from genea_automate.errors import ConfigIssue
from genea_automate.events.kinds import KNOWN_KINDS
from genea_automate.plugin import PluginRegistry
from genea_automate.rules.matching import KindPattern, pattern_can_match

Path = tuple[str | int, ...]


def cross_check(
    config: ConfigBase, registry: PluginRegistry, loaded: LoadedYaml
) -> list[ConfigIssue]:
    """Errors and warnings, in file order of the checks."""
    found: list[tuple[Path, str, str]] = []
    rules: list[RuleConfig] = getattr(config, "rules", [])
    found += _duplicate_rule_ids(rules)
    found += _schedule_problems(config)
    for index, rule in enumerate(rules):
        found += _rule_problems(index, rule, config, registry)
    return [issue_at(loaded, path, message, severity) for path, message, severity
            in found]


def _duplicate_rule_ids(rules: list[RuleConfig]) -> list[tuple[Path, str, str]]:
    seen: dict[str, int] = {}
    problems = []
    for index, rule in enumerate(rules):
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
    problems = list(_kind_warnings(base + ("when", "event"), rule.when.event))
    for path, condition in _conditions(base + ("if",), rule.if_):
        problems += _condition_problems(path, condition, config)
    for step_index, step in enumerate(rule.then):
        plugin = registry.get(step.action)(getattr(config, step.action, None))
        for sub_path, message in plugin.check(step.options):
            path = base + ("then", step_index, step.action, *sub_path)
            problems.append((path, message, "error"))
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
    if isinstance(condition.schedule, str) and condition.schedule not in config.schedules:
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
    return []


def _kind_warnings(path: Path, patterns: list[str]) -> Iterator[tuple[Path, str, str]]:
    for index, text in enumerate(patterns):
        if pattern_can_match(KindPattern.parse(text), KNOWN_KINDS):
            continue
        hint = _kind_hint(text)
        message = f"no event kind matches {text!r}{hint}; see docs/events.md"
        yield path + (index,), message, "warning"



def _kind_hint(text: str) -> str:
    """Kinds that extend the pattern first (`door.forced`), then close spellings."""
    longer = [kind for kind in KNOWN_KINDS if kind.startswith(text)][:3]
    if not longer:
        return did_you_mean(text, KNOWN_KINDS)
    return " (did you mean " + " or ".join(repr(kind) for kind in longer) + "?)"
