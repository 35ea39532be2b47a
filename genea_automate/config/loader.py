"""Reading a rules file: YAML, plugins, the typed model, then cross-checks.

Every problem of the file is collected before anything is refused, so an author
sees all of them at once, each at its line and column.

A load keeps what it read from outside the installed packages (`ConfigInputs`):
`serve`'s deciding process loads from those, so that it runs exactly what the
serving process validated, whatever the environment and the folder hold by then.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from pydantic import ValidationError

from genea_automate.config.checks import cross_check
from genea_automate.config.issues import issue_at, issues_from_validation_error
from genea_automate.config.models import ConfigBase, build_config_model
from genea_automate.config.salvage import checks_beside_errors
from genea_automate.config.yamlload import LoadedYaml, load_yaml, load_yaml_text
from genea_automate.errors import (
    ConfigError,
    ConfigIssue,
    PluginCrashError,
    PluginError,
    crash_contained,
    plugin_crash_contained,
)
from genea_automate.plugin import ActionPlugin, PluginRegistry
from genea_automate.store import absolute_store_url


@dataclass(frozen=True)
class ConfigInputs:
    """What a load read: the file's text, the text each `${...}` became, and the
    source of each `plugins/` module run, by its path."""

    text: str
    expansions: Mapping[str, str]
    plugins: Mapping[str, str]


@dataclass(frozen=True)
class LoadedConfig:
    path: Path
    config: ConfigBase
    registry: PluginRegistry
    file_warnings: list[ConfigIssue]  # what the checks found in the file
    inputs: ConfigInputs
    unset: tuple[str, ...] = ()  # variables read as placeholders (`unset_ok`)
    unset_warnings: tuple[ConfigIssue, ...] = ()  # one at each placeholder

    @property
    def warnings(self) -> list[ConfigIssue]:
        """Every warning: those about unset variables, then the file's own."""
        return [*self.unset_warnings, *self.file_warnings]

    def section(self, name: str) -> Any:
        return getattr(self.config, name, None)

    def make_plugins(self) -> dict[str, ActionPlugin[Any]]:
        """One instance of every registered action, given its section."""
        plugins = {}
        for plugin in self.registry:
            with plugin_crash_contained(plugin.name):
                plugins[plugin.name] = plugin(self.section(plugin.name))
        return plugins

    @property
    def store_url(self) -> str:
        """`store:`, with a relative path taken from this file's folder."""
        return absolute_store_url(self.config.store, self.path.parent)


def plugin_registry(
    config_path: Path, local_sources: Mapping[str, str] | None = None
) -> PluginRegistry:
    """Built-ins, entry points, then the plugins/ folder next to the rules file,
    or `local_sources` in its place: the modules another registry ran."""
    registry = PluginRegistry.with_builtins()
    registry.load_entry_points()
    if local_sources is None:
        registry.load_folder(config_path.parent / "plugins")
    else:
        registry.load_sources(local_sources)
    return registry


def load_config(
    path: Path,
    environ: Mapping[str, str] | None = None,
    *,
    unset_ok: bool = False,
    inputs: ConfigInputs | None = None,
) -> LoadedConfig:
    """The validated rules file, or ConfigError with every issue found.

    `unset_ok` is for the commands that send nothing: an unset `${VAR}` then
    reads as a placeholder, with a warning instead of an error (see load_yaml).
    `inputs`, when given, are another load's (`LoadedConfig.inputs`): the file,
    the environment, secret files and the plugins/ folder are not read at all.
    """
    if inputs is None:
        loaded = load_yaml(path, environ=environ, unset_ok=unset_ok)
    else:
        loaded = load_yaml_text(
            inputs.text, str(path), unset_ok=unset_ok, expansions=inputs.expansions
        )
    _raise_on_errors(loaded.issues)
    # The load's warnings (placeholders) go with any later error they may explain.
    early = [issue for issue in loaded.issues if issue.severity == "warning"]
    local_sources = None if inputs is None else inputs.plugins
    try:
        registry, config, issues = _checked(path, loaded, local_sources)
    except ConfigError as exc:
        raise ConfigError([*early, *exc.issues]) from exc
    return LoadedConfig(
        path,
        config,
        registry,
        issues,
        ConfigInputs(loaded.text, loaded.expansions, registry.local_sources),
        unset=loaded.unset,
        unset_warnings=tuple(early),
    )


def _checked(
    path: Path, loaded: LoadedYaml, local_sources: Mapping[str, str] | None
) -> tuple[PluginRegistry, ConfigBase, list[ConfigIssue]]:
    """Plugins, the typed model and cross-checks of a loaded file."""
    try:
        registry = plugin_registry(path, local_sources)
    except PluginError as exc:
        raise ConfigError([issue_at(loaded, (), str(exc))]) from exc
    config = _validate(loaded, registry)
    issues = cross_check(config, registry, loaded)
    _raise_on_errors(issues)
    return registry, config, issues


def _validate(loaded: LoadedYaml, registry: PluginRegistry) -> ConfigBase:
    model = build_config_model(registry)
    try:
        with crash_contained("a plugin's options model"):
            return model.model_validate(loaded.data)
    except ValidationError as exc:
        issues = issues_from_validation_error(exc, loaded, model)
        issues += checks_beside_errors(exc, loaded, registry, model)
        raise ConfigError(sorted(issues, key=lambda i: (i.line, i.column))) from exc
    except Exception as exc:  # pydantic passes on all but ValueError: a bug
        crash = isinstance(exc, PluginCrashError)
        detail = str(exc) if crash else f"{type(exc).__name__}: {exc}"
        message = f"checking the file failed in a plugin: {detail}"
        raise ConfigError([issue_at(loaded, (), message)]) from exc


def _raise_on_errors(issues: list[ConfigIssue]) -> None:
    if any(issue.severity == "error" for issue in issues):
        raise ConfigError(issues)
