"""Unset `${VAR}`s read as placeholders, for the commands that send nothing.

`simulate`, `test`, `replay` and `validate` never use a secret, so they load a
rules file whose secrets this shell lacks (in CI, on a laptop): each unset
variable reads as a placeholder, and each value that took one gets a warning
naming it. `serve` never loads a file this way: it refuses a missing variable.
"""

from __future__ import annotations

import re
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any

from genea_automate.config.issues import issue_at
from genea_automate.config.yamlload import LoadedYaml, YamlPath
from genea_automate.errors import ConfigIssue

# A placeholder is an https URL, as a Slack webhook or an http action's url must
# be, and longer than any minimum token length; `.invalid` never resolves.
_PREFIX = "https://unset.invalid/"
_PLACED = re.compile(re.escape(_PREFIX) + r"(\w+)")


class _Placeholder(str):
    """The text of an unset variable. It is false, as an unset variable is:
    yamlload.py takes the fallback of `${NAME:-fallback}` for a false value."""

    def __bool__(self) -> bool:
        return False


class UnsetAsPlaceholder(Mapping[str, str]):
    """An environment in which every variable it lacks reads as a placeholder
    (so every name is `in` it; yamlload.py only asks for values)."""

    def __init__(self, environ: Mapping[str, str]) -> None:
        self._environ = environ

    def __getitem__(self, name: str) -> str:
        if name in self._environ:
            return self._environ[name]
        return _Placeholder(_PREFIX + name)

    def __iter__(self) -> Iterator[str]:
        return iter(self._environ)

    def __len__(self) -> int:
        return len(self._environ)


@dataclass(frozen=True)
class Placeholders:
    """The unset variables a loaded file read as placeholders, and where."""

    names: tuple[str, ...] = ()
    warnings: list[ConfigIssue] = field(default_factory=list)


def find_placeholders(loaded: LoadedYaml) -> Placeholders:
    """The placeholders in a file loaded with `UnsetAsPlaceholder`, in file order."""
    found = [
        (issue_at(loaded, path, _message(name), "warning"), name)
        for path in loaded.substituted
        for name in _PLACED.findall(_text_at(loaded.data, path))
    ]
    found.sort(key=lambda pair: (pair[0].line, pair[0].column))
    names = tuple(dict.fromkeys(name for _, name in found))
    return Placeholders(names, [issue for issue, _ in found])


def _text_at(data: Any, path: YamlPath) -> str:
    """The text a `${...}` was substituted into, found by its path."""
    for key in path:
        data = data[key]
    return str(data)


def _message(name: str) -> str:
    return (
        f"environment variable {name} is not set; a placeholder stands in for it "
        "here, as this command sends nothing, but `serve` refuses to start "
        "until it is set"
    )
