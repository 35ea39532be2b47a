"""Turn pydantic validation errors into placed, plainly worded config issues."""

from __future__ import annotations

import difflib
import re
import types
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Annotated, Any, Union, get_args, get_origin

from pydantic import BaseModel, Tag, ValidationError
from pydantic_core import ErrorDetails

from genea_automate.config.yamlload import LoadedYaml, Position, YamlPath, format_path
from genea_automate.errors import ConfigIssue

_EXPECTED = {
    "string_type": "text",
    "int_type": "a whole number",
    "int_parsing": "a whole number",
    "int_from_float": "a whole number",
    "float_type": "a number",
    "float_parsing": "a number",
    "bool_type": "true or false",
    "bool_parsing": "true or false",
    "list_type": "a list (lines that start with '- ')",
    "dict_type": "keys with values",
    "model_type": "keys with values",
    "model_attributes_type": "keys with values",
}
# Only true and false: the file is read as YAML 1.2, where yes/no/on/off are text.
_BOOL_TEXT = "unquoted true and false are booleans in YAML; quote it for text, e.g. "
_QUOTED = re.compile(r"'((?:[^'\\]|\\.)*)'")


@dataclass(frozen=True)
class _Located:
    """A pydantic error with its loc split into real data steps and union labels."""

    error: ErrorDetails
    walk: tuple[tuple[str | int, bool], ...]  # (loc entry, is it a key/index in data)

    @property
    def real(self) -> YamlPath:
        """The path of the deepest value in the data that the error is about."""
        return tuple(entry for entry, is_real in self.walk if is_real)

    @property
    def unknown_key(self) -> tuple[YamlPath, str]:
        """For an unknown key: the path of its mapping, and the key."""
        key = str(self.error["loc"][-1])
        # A "before" validator may have reshaped the data, so the key can be absent.
        return (self.real[:-1] if self.walk[-1][1] else self.real), key

    @property
    def labels(self) -> list[tuple[int, str | int]]:
        """Loc entries that are not in the data, each with its depth in the data."""
        found, depth = [], 0
        for entry, is_real in self.walk:
            depth += is_real
            if not is_real:
                found.append((depth, entry))
        return found


def did_you_mean(word: str, choices: Iterable[str]) -> str:
    """Return " (did you mean 'x'?)" for the closest choice, or "" if none is close."""
    by_lower = {choice.lower(): choice for choice in choices}
    close = difflib.get_close_matches(word.lower(), by_lower, n=1, cutoff=0.6)
    return f" (did you mean {by_lower[close[0]]!r}?)" if close else ""


def issue_at(
    loaded: LoadedYaml, path: YamlPath, message: str, severity: str = "error"
) -> ConfigIssue:
    """Make an issue about `path`, placed at it or else at its nearest parent."""
    line, column = _nearest(loaded.positions, path)
    return ConfigIssue(
        loaded.filename, line, column, format_path(path), message, severity
    )


def issues_from_validation_error(
    exc: ValidationError, loaded: LoadedYaml, model: type[BaseModel] | None = None
) -> list[ConfigIssue]:
    """Turn a validation error on `loaded.data` into issues in file order.

    Pass the validated `model` to get "did you mean" hints for unknown keys.
    """
    located = [_locate(error, loaded.data) for error in exc.errors(include_url=False)]
    kept = _drop_explained(_collapse(located))
    issues = [_to_issue(item, loaded, model) for item in kept]
    unique = dict.fromkeys(issues)
    return sorted(unique, key=lambda issue: (issue.line, issue.column))


def _nearest(positions: Mapping[YamlPath, Position], path: YamlPath) -> Position:
    """Return the position of `path`, or of its nearest parent that has one."""
    for depth in range(len(path), -1, -1):
        if path[:depth] in positions:
            return positions[path[:depth]]
    return 1, 1


def _locate(error: ErrorDetails, data: Any) -> _Located:
    """Follow an error's loc through the data, marking which entries are real."""
    loc = error["loc"][:-1] if error["type"] == "missing" else error["loc"]
    walk, node = [], data
    for entry in loc:
        found = _has(node, entry)
        if found:
            node = node[entry]
        walk.append((entry, found))
    return _Located(error, tuple(walk))


def _has(node: Any, entry: str | int) -> bool:
    """Tell whether `entry` is a key of a mapping node or an index of a list node."""
    if isinstance(node, dict):
        return isinstance(entry, str) and entry in node
    return isinstance(node, list) and isinstance(entry, int) and entry < len(node)


def _collapse(errors: list[_Located], level: int = 0) -> list[_Located]:
    """Keep, at each union in the model, only the branch that best fits the data."""
    kept = [item for item in errors if len(item.labels) <= level]
    unions: dict[YamlPath, dict[str | int, list[_Located]]] = {}
    for item in errors:
        if len(item.labels) > level:
            depth, label = item.labels[level]
            branches = unions.setdefault(item.real[:depth], {})
            branches.setdefault(label, []).append(item)

    for point, branches in unions.items():
        best = min(branches.values(), key=lambda branch: _misfit(branch, len(point)))
        kept += _collapse(best, level + 1)
    return [item for item in errors if item in kept]


def _drop_explained(errors: list[_Located]) -> list[_Located]:
    """Drop "missing key" errors whose key is there, misspelt or misplaced."""
    unknown: dict[YamlPath, list[str]] = {}
    for item in errors:
        if item.error["type"] == "extra_forbidden":
            parent, key = item.unknown_key
            unknown.setdefault(parent, []).append(key)
    return [
        item
        for item in errors
        if not (_misspelt(item, unknown) or _misplaced(item, unknown))
    ]


def _misspelt(item: _Located, unknown: dict[YamlPath, list[str]]) -> bool:
    """Tell whether a missing key is near one of the unknown keys beside it."""
    if item.error["type"] != "missing":
        return False
    wanted = str(item.error["loc"][-1])
    return any(did_you_mean(key, [wanted]) for key in unknown.get(item.real, []))


def _misplaced(item: _Located, unknown: dict[YamlPath, list[str]]) -> bool:
    """Tell whether a missing key is written one level up or down instead."""
    if item.error["type"] != "missing":
        return False
    wanted, here = str(item.error["loc"][-1]), item.real
    return any(
        wanted in keys and (parent == here[:-1] or parent[:-1] == here)
        for parent, keys in unknown.items()
    )


def _misfit(branch: list[_Located], depth: int) -> tuple[float, int, int]:
    """Score how badly a union branch fits the data there; lower fits better.

    A value of the wrong kind counts most, then missing and unknown keys (less when
    an unknown key looks like a misspelt missing one), then shallower errors.
    """
    wrong_kind, missing, unknown = 0, [], []
    for item in branch:
        kind, here = item.error["type"], len(item.real) == depth
        if kind == "missing" and here:
            missing.append(str(item.error["loc"][-1]))
        elif kind == "extra_forbidden" and len(item.unknown_key[0]) == depth:
            unknown.append(item.unknown_key[1])
        elif kind.endswith("_type") and here:
            wrong_kind += 1
    likeness = max(
        (difflib.SequenceMatcher(None, m, u).ratio() for m in missing for u in unknown),
        default=0.0,
    )
    deepest = max(len(item.real) for item in branch)
    return (
        2 * wrong_kind + len(missing) + len(unknown) - likeness,
        -deepest,
        len(branch),
    )


def _to_issue(
    item: _Located, loaded: LoadedYaml, model: type[BaseModel] | None
) -> ConfigIssue:
    """Place and word one error."""
    kind, real = item.error["type"], item.real
    if kind == "missing":
        message = f"missing required key {item.error['loc'][-1]!r}"
        return issue_at(loaded, real, message)
    if kind == "extra_forbidden":
        parent, key = item.unknown_key
        where = loaded.key_positions.get((*parent, key))
        where = where or _nearest(loaded.positions, parent)
        message = _unknown_key(item, loaded.data, model)
        return ConfigIssue(loaded.filename, *where, format_path(parent), message)
    return issue_at(loaded, real, _message(item.error, real in loaded.substituted))


def _unknown_key(item: _Located, data: Any, model: type[BaseModel] | None) -> str:
    """Word an unknown key: where it belongs, the closest allowed key or the list."""
    key = item.unknown_key[1]
    allowed = _allowed_keys(model, item.walk[:-1]) if model else []
    placed = _placement(item, data, model) if model else ""
    hint = placed or did_you_mean(key, allowed)
    if hint or not allowed:
        return f"unknown key {key!r}{hint or '; remove it or check its spelling'}"
    return f"unknown key {key!r}; the keys allowed here are {_listed(allowed)}"


def _placement(item: _Located, data: Any, model: type[BaseModel]) -> str:
    """Where a key that is unknown here belongs instead: `retry` written inside
    `http:` belongs beside it, on the step; `topic` beside `mqtt:`, inside it."""
    (parent, key), walk = item.unknown_key, item.walk[:-1]
    above = parent and isinstance(parent[-1], str)
    if above and key in _allowed_keys(model, _walk_up(walk)):
        return f"; it belongs beside {parent[-1]!r}, not inside it"
    for sibling in _keys_at(data, parent):
        if key in _allowed_keys(model, (*walk, (sibling, True))):
            return f"; it belongs inside {sibling!r}, not beside it"
    return ""


def _walk_up(
    walk: Sequence[tuple[str | int, bool]],
) -> Sequence[tuple[str | int, bool]]:
    """The walk to the value that holds the one where `walk` ends."""
    last = max(index for index, (_, is_real) in enumerate(walk) if is_real)
    return walk[:last]


def _keys_at(data: Any, path: YamlPath) -> list[Any]:
    for entry in path:
        data = data[entry]
    return list(data) if isinstance(data, dict) else []


def _message(error: ErrorDetails, hidden: bool) -> str:
    """Word one error that sits on a value, quoting the value unless it is secret."""
    kind, value, ctx = error["type"], error.get("input"), error.get("ctx", {})
    shown = "the value from ${...}" if hidden else _show(value)
    if kind == "string_type" and isinstance(value, bool) and not hidden:
        return f'expected text, got {shown}: {_BOOL_TEXT}"{shown}"'
    if kind == "string_type" and isinstance(value, int | float) and not hidden:
        return f'expected text, got {shown}; quote it, e.g. "{shown}"'
    if kind in _EXPECTED and value is None and not hidden:
        return f"expected {_EXPECTED[kind]}, got {shown}; fill it in or remove it"
    if kind in _EXPECTED:
        return f"expected {_EXPECTED[kind]}, got {shown}"
    if kind in ("literal_error", "enum"):
        return _not_one_of(value, shown, ctx["expected"])
    if kind == "union_tag_invalid":
        return _not_one_of(ctx["tag"], repr(ctx["tag"]), ctx["expected_tags"])
    if kind == "union_tag_not_found":
        return _no_tag(ctx["discriminator"])
    if kind in ("value_error", "assertion_error"):
        return re.sub(r"^(Value error|Assertion failed), ", "", error["msg"])
    return _plain(error["msg"], shown)


def _not_one_of(value: Any, shown: str, expected: str) -> str:
    """Word a value outside a fixed set of choices, from pydantic's list of them."""
    choices = _QUOTED.findall(expected)
    allowed = _listed(choices) if choices else expected
    if not isinstance(value, str):
        return f"expected one of {allowed}, got {shown}"
    return f"{shown} is not one of {allowed}{did_you_mean(value, choices)}"


def _no_tag(discriminator: str) -> str:
    """Word an entry whose kind a discriminated union could not find."""
    if _QUOTED.fullmatch(discriminator):
        return f"missing required key {discriminator}"
    return "cannot tell what kind of entry this is; check the spelling of its keys"


def _plain(message: str, shown: str) -> str:
    """Reword one of pydantic's less common messages."""
    if message.startswith("Input should be "):
        return f"must be {message.removeprefix('Input should be ')}, got {shown}"
    return message[:1].lower() + message[1:]


def _show(value: Any) -> str:
    """Write a value as YAML users know it: true, 5, 'text', an empty value."""
    if isinstance(value, bool):
        return str(value).lower()
    if value is None:
        return "an empty value"
    if isinstance(value, dict):
        return "keys with values"
    if isinstance(value, list):
        return "a list"
    return repr(value)


def _listed(choices: Sequence[str]) -> str:
    """Quote and join choices: 'a', 'b', 'c'."""
    return ", ".join(repr(choice) for choice in choices)


def _allowed_keys(
    model: type[BaseModel], walk: Sequence[tuple[str | int, bool]]
) -> list[str]:
    """Return the keys the model allows where `walk` ends, or [] if unsure."""
    kinds: list[Any] = [model]
    for entry, is_real in walk:
        options = _flatten(kinds)
        if is_real:
            kinds = [child for kind, _ in options for child in _children(kind, entry)]
        else:
            kinds = [kind for kind, labels in options if entry in labels] or kinds

    keys: list[str] = []
    for kind, _ in _flatten(kinds):
        if isinstance(kind, type) and issubclass(kind, BaseModel):
            keys += [info.alias or name for name, info in kind.model_fields.items()]
    return list(dict.fromkeys(keys))


def _flatten(kinds: list[Any]) -> list[tuple[Any, set[str]]]:
    """Return the concrete options of several types."""
    return [option for kind in kinds for option in _options(kind)]


def _options(kind: Any, labels: tuple[str, ...] = ()) -> list[tuple[Any, set[str]]]:
    """Flatten Annotated, Optional and Union into types, each with its loc labels."""
    if get_origin(kind) is Annotated:
        base, *extras = get_args(kind)
        tags = tuple(extra.tag for extra in extras if isinstance(extra, Tag))
        return _options(base, labels + tags)
    if get_origin(kind) in (Union, types.UnionType):
        return [option for arg in get_args(kind) for option in _options(arg, labels)]
    if kind is type(None):
        return []
    return [(kind, {*labels, getattr(kind, "__name__", "")})]


def _children(kind: Any, entry: str | int) -> list[Any]:
    """Return the type found under key or index `entry` of `kind`."""
    if isinstance(kind, type) and issubclass(kind, BaseModel):
        fields = kind.model_fields.items()
        return [info.annotation for name, info in fields if entry in (name, info.alias)]
    origin, args = get_origin(kind), get_args(kind)
    if isinstance(entry, int) and origin in (list, tuple, set, frozenset, Sequence):
        return list(args[:1])
    if isinstance(entry, str) and origin in (dict, Mapping) and len(args) == 2:
        return [args[1]]
    return []
