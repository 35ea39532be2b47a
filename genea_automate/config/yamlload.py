"""Load a YAML rules file into plain data, keeping where every value came from.

Plain scalars follow the YAML 1.2 core schema, so `on`, `yes` and `08:30` stay text.
String values may use `${VAR}`, `${VAR:-default}`, `${file:/path}` and `$${`. A load
records the text each `${...}` became, so that another process can load the same
file with the very same values, without reading the environment or any file.
"""

from __future__ import annotations

import math
import os
import re
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, ClassVar

import yaml
from yaml.nodes import MappingNode, Node, ScalarNode, SequenceNode

from genea_automate.errors import ConfigIssue

YamlPath = tuple[str | int, ...]
Position = tuple[int, int]

_PLAIN = "tag:genea-automate,2024:plain"
_YAML = "tag:yaml.org,2002:"
_CORE_TAGS = {_YAML + name for name in ("int", "float", "bool", "null")}
_SCALAR_TAGS = {_PLAIN, _YAML + "str", *_CORE_TAGS}
_MERGE = _YAML + "merge"

_NULL = re.compile(r"null|Null|NULL|~|")
_BOOLS = dict.fromkeys(("true", "True", "TRUE"), True)
_BOOLS |= dict.fromkeys(("false", "False", "FALSE"), False)
_INT = re.compile(r"[-+]?[0-9]+")
_OCT = re.compile(r"0o[0-7]+")
_HEX = re.compile(r"0x[0-9a-fA-F]+")
_FLOAT = re.compile(r"[-+]?(\.[0-9]+|[0-9]+(\.[0-9]*)?)([eE][-+]?[0-9]+)?")
_SPECIAL_FLOATS = {
    f"{sign}{inf}": -math.inf if sign == "-" else math.inf
    for sign in ("", "+", "-")
    for inf in (".inf", ".Inf", ".INF")
}
_SPECIAL_FLOATS |= dict.fromkeys((".nan", ".NaN", ".NAN"), math.nan)

# `${{` is left alone: it is a literal `$` in front of a Jinja expression.
_SUBSTITUTION = re.compile(r"\$\$\{|\$\{(?!\{)([^}]*)(\}?)")
_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")
_FORMS = "write ${NAME}, ${NAME:-default} or ${file:/path}, or $${ for a literal ${"
_MERGE_SOURCE = (
    "'<<' merges another mapping into this one; "
    "give it an alias such as *defaults, or a list of them"
)
_ALIAS_LOOP = (
    "this alias (*name) points at a block that holds the alias itself; "
    "point it at another anchor"
)

_INDENT = "indent this line like the lines above it"
# Keyed by a fragment found in both libyaml's and PyYAML's wording of the problem.
_SYNTAX_HINTS = {
    "mapping values are not allowed": "put a value that contains ': ' in quotes",
    "cannot start any token": (
        "indent with spaces, not tabs, and quote values that start with @ or `"
    ),
    "unexpected end of stream": "a quote or bracket is opened but never closed",
    "expected <block end>": _INDENT,
    "did not find expected key": _INDENT,
    "expected '-' indicator": _INDENT,
    "node content": "a [ or { is not closed, or has a comma too many",
    "could not find expected ':'": (
        "put ':' after each key, and quote text that contains ': ' or ' #'"
    ),
    "expected ',' or": (
        "inside { } or [ ], put values that contain : , { } [ or ] in quotes, "
        'e.g. "${VAR}"'
    ),
    "undefined alias": "define the anchor (&name) above the alias (*name)",
    "another document": "keep one document per file; remove the extra '---'",
}

_BaseLoader: Any = getattr(yaml, "CSafeLoader", yaml.SafeLoader)


class _Loader(_BaseLoader):  # type: ignore[misc]
    """A safe loader that tags every plain scalar for our own core-schema pass."""

    yaml_implicit_resolvers: ClassVar = {None: [(_PLAIN, re.compile(""))]}


@dataclass(frozen=True)
class LoadedYaml:
    """A YAML file as plain data, with where each value sits and what went wrong.

    `positions` maps the path of every value (keys by name, list items by index, the
    root as `()`) to its 1-based (line, column); `key_positions` does the same for the
    keys of mappings. `substituted` holds the paths of values that took text from
    `${...}`, so that messages do not repeat secrets. `expansions` holds the text
    each `${...}` became, keyed by what is between the braces (`NAME`,
    `NAME:-default`, `file:path`).
    """

    data: dict[str, Any]
    positions: dict[YamlPath, Position]
    key_positions: dict[YamlPath, Position]
    filename: str
    issues: list[ConfigIssue]
    substituted: frozenset[YamlPath] = frozenset()
    unset: tuple[str, ...] = ()  # variables that read as placeholders (unset_ok)
    text: str = ""  # what was loaded, before any substitution
    expansions: Mapping[str, str] = field(default_factory=dict)


# What an unset variable reads as for the commands that send nothing: an https
# URL, as a Slack webhook or an http action's url must be; `.invalid` never
# resolves.
PLACEHOLDER_PREFIX = "https://unset.invalid/"


def load_yaml(
    path: Path, environ: Mapping[str, str] | None = None, *, unset_ok: bool = False
) -> LoadedYaml:
    """Read and load a YAML file; an unreadable file becomes an issue."""
    try:
        raw = path.read_bytes()
    except OSError as exc:
        message = f"cannot read the file: {exc.strerror}; check the path and access"
        return _failed(str(path), ConfigIssue(str(path), 1, 1, "", message))
    try:
        text = raw.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        line = raw[: exc.start].count(b"\n") + 1
        message = "the file is not UTF-8 text; save it with the UTF-8 encoding"
        return _failed(str(path), ConfigIssue(str(path), line, 1, "", message))
    return load_yaml_text(text, str(path), environ, unset_ok=unset_ok)


def load_yaml_text(
    text: str,
    filename: str,
    environ: Mapping[str, str] | None = None,
    *,
    unset_ok: bool = False,
    expansions: Mapping[str, str] | None = None,
) -> LoadedYaml:
    """Load YAML text; `filename` names it in issues and anchors relative paths.

    With `unset_ok`, for the commands that send nothing (`simulate`, `test`,
    `replay`, `validate`), an unset `${VAR}` reads as a placeholder and is a
    warning, not an error: they never use a secret. `serve` never sets it.

    `expansions`, when given, is another load's record of what each `${...}`
    became (`LoadedYaml.expansions`): those values are used, and neither the
    environment nor any file is read. A `${...}` missing from it raises
    LookupError, as that record belongs to other text.
    """
    environ = os.environ if environ is None else environ
    builder = _Builder(filename, environ, unset_ok, expansions)
    try:
        root = yaml.compose(text.removeprefix("\ufeff"), Loader=_Loader)
    except yaml.YAMLError as exc:
        return _failed(filename, _syntax_issue(filename, text, exc))

    try:
        data = None if root is None else builder.build(root, ())
    except _TooLarge as exc:
        line, column = _position(exc.node)
        message = (
            f"the file expands to more than {MAX_VALUES:,} values, most likely "
            "through aliases (*name) that repeat other aliases; simplify it"
        )
        return _failed(filename, ConfigIssue(filename, line, column, "", message))
    if root is not None and not isinstance(data, dict | None):
        found = _describe(data)
        message = f"the file must start with keys such as 'rules:', not {found}"
        builder.issue(root, (), message)
    return LoadedYaml(
        data=data if isinstance(data, dict) else {},
        positions=builder.positions,
        key_positions=builder.key_positions,
        filename=filename,
        issues=sorted(builder.issues, key=lambda issue: (issue.line, issue.column)),
        substituted=frozenset(builder.substituted),
        unset=tuple(dict.fromkeys(builder.unset)),
        text=text,
        expansions=builder.expansions,
    )


def resolve_plain(text: str) -> Any:
    """Return the value of an unquoted scalar under the YAML 1.2 core schema."""
    if _NULL.fullmatch(text):
        return None
    if text in _BOOLS:
        return _BOOLS[text]
    if _INT.fullmatch(text):
        return int(text)
    if _OCT.fullmatch(text):
        return int(text[2:], 8)
    if _HEX.fullmatch(text):
        return int(text[2:], 16)
    if _FLOAT.fullmatch(text):
        return float(text)
    return _SPECIAL_FLOATS.get(text, text)


def format_path(path: YamlPath) -> str:
    """Write a data path the way users read it, e.g. `rules[2].if[0].schedule`."""
    text = ""
    for entry in path:
        if isinstance(entry, int):
            text += f"[{entry}]"
        else:
            text += f".{entry}" if text else entry
    return text


# Aliases can repeat aliases: a few hundred bytes can stand for billions of
# values. No rules file needs more than this.
MAX_VALUES = 200_000


class _TooLarge(Exception):
    def __init__(self, node: Node) -> None:
        super().__init__()
        self.node = node


class _Builder:
    """Turns composed nodes into plain data, recording positions and issues."""

    def __init__(
        self,
        filename: str,
        environ: Mapping[str, str],
        unset_ok: bool = False,
        recorded: Mapping[str, str] | None = None,
    ) -> None:
        self.filename = filename
        self.folder = Path(filename).parent
        self.environ = environ
        self.unset_ok = unset_ok
        self.recorded = recorded
        self.expansions: dict[str, str] = {}
        self.unset: list[str] = []
        self.positions: dict[YamlPath, Position] = {}
        self.key_positions: dict[YamlPath, Position] = {}
        self.substituted: set[YamlPath] = set()
        self.issues: list[ConfigIssue] = []
        self._open: set[int] = set()  # collections being built, to stop alias loops
        self._built = 0

    def issue(
        self, node: Node, path: YamlPath, message: str, severity: str = "error"
    ) -> None:
        """Record an issue at `node`."""
        line, column = _position(node)
        where = format_path(path)
        issue = ConfigIssue(self.filename, line, column, where, message, severity)
        self.issues.append(issue)

    def build(self, node: Node, path: YamlPath) -> Any:
        """Return the plain value of `node`, found at `path`."""
        self._built += 1
        if self._built > MAX_VALUES:
            raise _TooLarge(node)
        self.positions[path] = _position(node)
        self._check_tag(node, path)
        if isinstance(node, ScalarNode):
            return self._scalar(node, path)
        if id(node) in self._open:
            self.issue(node, path, _ALIAS_LOOP)
            return None

        self._open.add(id(node))
        try:
            if isinstance(node, MappingNode):
                return self._mapping(node, path)
            return [self.build(item, (*path, i)) for i, item in enumerate(node.value)]
        finally:
            self._open.discard(id(node))

    def _check_tag(self, node: Node, path: YamlPath) -> None:
        """Report explicit tags this loader does not understand, such as `!secret`."""
        allowed = {
            ScalarNode: _SCALAR_TAGS,
            MappingNode: {_YAML + "map"},
            SequenceNode: {_YAML + "seq"},
        }[type(node)]
        if node.tag not in allowed:
            tag = node.tag.replace(_YAML, "!!")
            message = f"the tag {tag!r} is not supported; remove it, and use ${{VAR}}"
            self.issue(node, path, message + " or ${file:/path} for outside values")

    def _scalar(self, node: ScalarNode, path: YamlPath) -> Any:
        """Resolve a scalar: plain ones by the core schema, all others as text."""
        text: str = node.value
        core = node.tag == _PLAIN or node.tag in _CORE_TAGS
        value = resolve_plain(text) if core else text
        if isinstance(value, str) and "${" in value:
            return self._substitute(value, node, path)
        return value

    def _mapping(self, node: MappingNode, path: YamlPath) -> dict[str, Any]:
        """Build a mapping, merging `<<` sources in."""
        result: dict[str, Any] = {}
        for key, key_node, value_node in self._pairs(node, path, report=True):
            self.key_positions[(*path, key)] = _position(key_node)
            result[key] = self.build(value_node, (*path, key))
        return result

    def _pairs(
        self, node: MappingNode, path: YamlPath, report: bool
    ) -> list[tuple[str, Node, Node]]:
        """Return a mapping's entries with merges applied; report duplicate keys."""
        own: dict[str, tuple[Node, Node]] = {}
        merged: dict[str, tuple[Node, Node]] = {}
        for key_node, value_node in node.value:
            if _is_merge(key_node):
                for entry in self._merge_sources(value_node, path):
                    merged.setdefault(entry[0], entry[1:])
                continue
            key = self._key(key_node, path, report)
            if key is not None and key not in own:
                own[key] = (key_node, value_node)
            elif key is not None and report:
                first = own[key][0].start_mark.line + 1
                message = f"duplicate key {key!r} (first at line {first})"
                self.issue(key_node, (*path, key), message + "; remove one of them")

        entries = merged | own
        return [(key, key_node, value) for key, (key_node, value) in entries.items()]

    def _merge_sources(
        self, node: Node, path: YamlPath
    ) -> Iterator[tuple[str, Node, Node]]:
        """Yield the entries a `<<` key brings in, earlier sources first."""
        sources = node.value if isinstance(node, SequenceNode) else [node]
        for source in sources:
            if id(source) in self._open:
                self.issue(source, path, _ALIAS_LOOP)
            elif not isinstance(source, MappingNode):
                self.issue(source, path, _MERGE_SOURCE)
            else:
                yield from self._pairs(source, path, report=False)

    def _key(self, node: Node, path: YamlPath, report: bool) -> str | None:
        """Return a key as the text written, or None for a list or mapping key."""
        if isinstance(node, ScalarNode):
            return str(node.value)
        if report:
            self.issue(node, path, "a key must be a name, not a list or a mapping")
        return None

    def _substitute(self, text: str, node: ScalarNode, path: YamlPath) -> str:
        """Expand `${...}` in one string; replacements are not scanned again."""

        def replace(match: re.Match[str]) -> str:
            if match.group(0) == "$${":
                return "${"
            expression, closed = match.group(1), match.group(2)
            if not closed:
                message = f"'${{{expression}' has no closing '}}'; add one"
                self.issue(node, path, message + ", or write $${ for a literal ${")
                return match.group(0)
            value = self._expand(expression, node, path)
            if value is None:
                return match.group(0)
            self.substituted.add(path)
            return value

        return _SUBSTITUTION.sub(replace, text)

    def _expand(self, expression: str, node: ScalarNode, path: YamlPath) -> str | None:
        """Return the text for one `${...}`, or None after reporting why not."""
        if self.recorded is None:
            value = self._look_up(expression, node, path)
        elif expression in self.recorded:
            value = self.recorded[expression]
        else:
            line, column = _position(node)
            raise LookupError(
                f"{self.filename}:{line}:{column}: no value was recorded for "
                f"${{{expression}}}; the recorded values belong to other text"
            )
        if value is not None:
            self.expansions[expression] = value
        return value

    def _look_up(self, expression: str, node: ScalarNode, path: YamlPath) -> str | None:
        """Read one `${...}` from the environment or a file; None if it cannot."""
        if expression.startswith("file:"):
            return self._read(expression.removeprefix("file:"), node, path)
        name, has_default, default = expression.partition(":-")
        if not _NAME.fullmatch(name):
            message = f"'${{{expression}}}' is not a substitution; {_FORMS}"
            self.issue(node, path, message)
            return None

        value = self.environ.get(name)
        if has_default and not value:
            return default
        if value is None and self.unset_ok:
            self.unset.append(name)
            message = (
                f"environment variable {name} is not set; a placeholder stands in "
                "for it here, as this command sends nothing, but `serve` refuses "
                "to start until it is set"
            )
            self.issue(node, path, message, "warning")
            return PLACEHOLDER_PREFIX + name
        if value is None:
            message = (
                f"environment variable {name} is not set; export it before "
                f"starting, or write ${{{name}:-fallback}} for a value that is "
                "not a secret"
            )
            self.issue(node, path, message)
        return value

    def _read(self, name: str, node: ScalarNode, path: YamlPath) -> str | None:
        """Return a file's text without one trailing newline, or None if unreadable."""
        file = self.folder / name
        try:
            return file.read_text(encoding="utf-8").removesuffix("\n")
        except (OSError, UnicodeDecodeError) as exc:
            reason = exc.strerror if isinstance(exc, OSError) else "not UTF-8 text"
            self.issue(
                node,
                path,
                f"cannot read file {str(file)!r} for "
                f"${{file:{name}}}: {reason}; check the path and access",
            )
            return None


def _position(node: Node) -> Position:
    """Return a node's 1-based (line, column)."""
    return node.start_mark.line + 1, node.start_mark.column + 1


def _is_merge(node: Node) -> bool:
    """Tell whether a key is the merge key `<<`."""
    plain_merge = node.tag == _PLAIN and node.value == "<<"
    return isinstance(node, ScalarNode) and (plain_merge or node.tag == _MERGE)


def _describe(value: Any) -> str:
    """Name a value's kind for a message, e.g. "a list" or "the text 'x'"."""
    if isinstance(value, list):
        return "a list"
    if isinstance(value, str):
        return f"the text {value!r}"
    return f"the value {value!r}"


def _syntax_issue(filename: str, text: str, exc: yaml.YAMLError) -> ConfigIssue:
    """Word a YAML parse error plainly, placed where the parser stopped."""
    if isinstance(exc, yaml.reader.ReaderError):
        return _reader_issue(filename, text, exc)

    mark = getattr(exc, "problem_mark", None) or getattr(exc, "context_mark", None)
    problem = getattr(exc, "problem", None) or "the file is not valid YAML"
    context = getattr(exc, "context", None)
    if problem.startswith("but ") and context:
        problem = f"{context}, {problem}"
    hints = [hint for part, hint in _SYNTAX_HINTS.items() if part in problem]
    if _unquoted_template(text, exc):
        hints.insert(0, _QUOTE_TEMPLATE)
    message = f"YAML syntax error: {problem}" + (f"; {hints[0]}" if hints else "")
    line, column = (mark.line + 1, mark.column + 1) if mark else (1, 1)
    return ConfigIssue(filename, line, column, "", message)


_QUOTE_TEMPLATE = (
    'a value with {{ }} in it must be quoted, e.g. message: "{{ door.name }} denied"'
)


def _unquoted_template(text: str, exc: yaml.YAMLError) -> bool:
    """Whether the lines the parser complains about hold `key: {{` unquoted."""
    lines = text.splitlines()
    marks = (getattr(exc, "context_mark", None), getattr(exc, "problem_mark", None))
    numbers = {mark.line for mark in marks if mark is not None}
    return any(re.search(r"(:|-)\s+\{\{", lines[n]) for n in numbers if n < len(lines))


def _reader_issue(
    filename: str, text: str, exc: yaml.reader.ReaderError
) -> ConfigIssue:
    """Place a character YAML refuses; libyaml counts bytes, so find it again."""
    index = max(text.find(chr(exc.character)), 0)
    line = text.count("\n", 0, index) + 1
    column = index - (text.rfind("\n", 0, index) + 1) + 1
    message = (
        f"the file contains the control character {exc.character:#06x}, "
        "which YAML does not allow; remove it"
    )
    return ConfigIssue(filename, line, column, "", message)


def _failed(filename: str, issue: ConfigIssue) -> LoadedYaml:
    """Return an empty result that carries one issue."""
    return LoadedYaml({}, {}, {}, filename, [issue])
