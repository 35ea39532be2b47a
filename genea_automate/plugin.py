"""The public plugin API: what an action is, and where actions are registered.

An action plugin is a class that subclasses `ActionPlugin`. The built-in actions
(`mqtt`, `slack`, `http`, `log`) use exactly this interface. A plugin is found in
three ways, all feeding one `PluginRegistry`:

* built in, registered by `PluginRegistry.with_builtins()`;
* a Python package exposing the class under the entry-point group
  `genea_automate.actions`;
* a module in the `plugins/` folder next to the rules file; every `ActionPlugin`
  subclass defined in it is registered. The registry keeps the source text it ran
  (`local_sources`), so that the deciding process of `serve` runs that very code,
  whatever the folder holds by then.

An action runs in two phases, so that what is delivered is decided once:

1. `render()` runs when the rule fires, inside the same transaction that records
   the decision. It turns the validated options and the event into a JSON-able
   payload, which is stored in the outbox.
2. `deliver()` runs later in the delivery worker, as often as retries need, with
   the stored payload. It raises `ActionError` on failure.

Under `serve` the two run in different processes, on different instances:
`render()` in the deciding process, on an instance that was never started, and
`deliver()` in the serving one. Nothing may pass from one to the other but the
payload.
"""

from __future__ import annotations

import importlib.metadata
import importlib.util
import inspect
import linecache
import logging
import sys
import types
from abc import ABC, abstractmethod
from collections.abc import Awaitable, Callable, Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, ClassVar, Generic, Protocol, TypeVar

from pydantic import BaseModel

from genea_automate.clock import Clock
from genea_automate.errors import PluginError, plugin_crash_contained

ENTRY_POINT_GROUP = "genea_automate.actions"

OptionsT = TypeVar("OptionsT", bound=BaseModel)
Escape = Callable[[str], str]


class RenderContext(Protocol):
    """What `ActionPlugin.render` may use."""

    def render(self, template: str, *, escape: Escape | None = None) -> str:
        """Render a Jinja2 template from the rules file against the event.

        `escape` is applied to every value the template inserts, never to the
        template's own text, so values from the event cannot forge markup.
        """
        ...


@dataclass(frozen=True, slots=True)
class DeliveryContext:
    """What `ActionPlugin.deliver` may use."""

    idempotency_key: str
    rule_id: str
    event_id: str
    attempt: int
    timeout: float
    logger: logging.Logger
    clock: Clock


class ActionPlugin(ABC, Generic[OptionsT]):
    """One kind of action, named by the YAML key that calls it.

    Class attributes:
        name: the key used in a rule's `then` list, e.g. `mqtt`.
        Options: the pydantic model of the step's options, checked at load time
            so that its errors get a file:line:column like any other.
        Section: optional pydantic type of a top-level section of the rules file
            named like the plugin (e.g. the named connections under `mqtt:`).
        min_interval: seconds between the starts of two deliveries with the
            same ordering key, for targets with a rate limit (Slack allows
            about one message a second per webhook).
    """

    name: ClassVar[str]
    Options: ClassVar[type[BaseModel]]
    Section: ClassVar[Any] = None
    min_interval: ClassVar[float] = 0.0

    def __init__(self, section: Any = None) -> None:
        self.section = section

    def check(self, options: OptionsT) -> list[tuple[tuple[str | int, ...], str]]:
        """Cross-checks that need the section, as (path below the step, message)."""
        return []

    @abstractmethod
    def render(self, options: OptionsT, ctx: RenderContext) -> dict[str, Any]:
        """Turn options and the event into the payload stored in the outbox."""

    def ordering_key(self, payload: dict[str, Any]) -> str:
        """Payloads with the same key are delivered one at a time, in order."""
        return self.name

    def describe(self, payload: dict[str, Any]) -> str:
        """A short description for logs, with no secrets in it."""
        return self.name

    def redact(self, payload: dict[str, Any]) -> dict[str, Any]:
        """The payload as `simulate`, `replay` and the status page show it.

        Override to mask what a rendered payload may carry from the rules
        file's secrets (a token in a header or a URL).
        """
        return payload

    def readiness(self) -> list[str]:
        """Why deliveries cannot succeed right now (a broker down); empty if
        they can. `/readyz` answers 503 while any plugin reports a reason."""
        return []

    async def start(self) -> None:
        """Open clients; must not fail when a remote end is unreachable."""

    @abstractmethod
    async def deliver(self, payload: dict[str, Any], ctx: DeliveryContext) -> None:
        """Deliver one payload, or raise `ActionError`."""

    async def stop(self) -> None:
        """Close clients."""

    async def take_over(self, previous: ActionPlugin[Any]) -> None:
        """Start in place of `previous`, after a reload changed the section.

        No delivery runs meanwhile. By default `previous` stops before this one
        starts, so that no two clients with one fixed identity (an MQTT client
        id) are ever connected at once; a plugin may keep unchanged clients.
        """
        await previous.stop()
        await self.start()


class PluginRegistry:
    """Action plugins by name, from built-ins, entry points and a folder."""

    def __init__(self) -> None:
        self._plugins: dict[str, type[ActionPlugin[Any]]] = {}
        # The text of each local module run, by its path, for `load_sources`.
        self.local_sources: dict[str, str] = {}

    @classmethod
    def with_builtins(cls) -> PluginRegistry:
        from genea_automate.actions import BUILTIN_ACTIONS

        registry = cls()
        for plugin in BUILTIN_ACTIONS:
            registry.register(plugin)
        return registry

    def register(self, plugin: type[ActionPlugin[Any]]) -> None:
        name = getattr(plugin, "name", None)
        if not isinstance(name, str) or not name.isidentifier():
            raise PluginError(
                f"plugin {plugin.__qualname__} needs a `name` that is a valid YAML "
                f"key (letters, digits, _), got {name!r}"
            )
        if not (
            isinstance(plugin.Options, type)
            and issubclass(plugin.Options, BaseModel)
            and plugin.Options is not BaseModel  # which cannot be made
        ):
            raise PluginError(
                f"plugin {name!r} needs `Options`, a pydantic BaseModel subclass"
            )
        known = self._plugins.get(name)
        if known is not None and known is not plugin:
            raise PluginError(
                f"two plugins are named {name!r}: {known.__module__} and "
                f"{plugin.__module__}; rename one"
            )
        self._plugins[name] = plugin

    def get(self, name: str) -> type[ActionPlugin[Any]]:
        return self._plugins[name]

    def names(self) -> list[str]:
        return sorted(self._plugins)

    def __iter__(self) -> Iterable[type[ActionPlugin[Any]]]:
        return iter(self._plugins.values())

    def load_entry_points(self) -> None:
        for entry in importlib.metadata.entry_points(group=ENTRY_POINT_GROUP):
            try:
                with plugin_crash_contained(entry.name):
                    plugin = entry.load()
            except Exception as exc:
                raise PluginError(
                    f"entry point {entry.name!r} ({entry.value}) failed to import: "
                    f"{exc}"
                ) from exc
            self.register(plugin)

    def load_folder(self, folder: Path) -> None:
        """Register every ActionPlugin subclass defined in folder/*.py."""
        self.load_sources(_read_folder(folder))

    def load_sources(self, sources: Mapping[str, str]) -> None:
        """Run each module's text and register the ActionPlugin subclasses in it.

        `sources` maps a module's path, which names it in tracebacks, to its
        text, as `load_folder` read it and `local_sources` keeps it.
        """
        for path, text in sources.items():
            for plugin in _plugins_in_module(Path(path), text):
                self.register(plugin)
            self.local_sources[path] = text


def _read_folder(folder: Path) -> dict[str, str]:
    """The text of each plugin module in `folder`, by its path; `_*.py` skipped."""
    if not folder.is_dir():
        return {}
    sources: dict[str, str] = {}
    for path in sorted(folder.glob("*.py")):
        if path.name.startswith("_"):
            continue
        try:
            # As Python reads a module: a coding line, else UTF-8.
            sources[str(path)] = importlib.util.decode_source(path.read_bytes())
        except (OSError, SyntaxError, UnicodeDecodeError) as exc:
            raise PluginError(f"{path}: plugin module cannot be read: {exc}") from exc
    return sources


async def run_contained(
    name: str, what: str, step: Callable[[], Awaitable[None]], then: str
) -> None:
    """Run a plugin's start, stop or take-over; its failure, whatever it
    raises, is logged with `then` (what happens next) instead of spreading."""
    try:
        with plugin_crash_contained(name):
            await step()
    except Exception:  # a plugin's bug, contained like one at delivery
        logging.getLogger(__name__).exception(
            "action plugin %r failed to %s; %s", name, what, then
        )


def _plugins_in_module(path: Path, text: str) -> list[type[ActionPlugin[Any]]]:
    module_name = f"genea_automate_local_plugins.{path.stem}"
    module = types.ModuleType(module_name)
    module.__file__ = str(path)
    sys.modules[module_name] = module
    # Tracebacks quote the text that ran, not the file as it may be by then; an
    # entry without a modification time is never checked against the file.
    lines = text.splitlines(keepends=True)
    linecache.cache[str(path)] = (len(text), None, lines, str(path))
    try:
        with plugin_crash_contained(path.stem):  # a sys.exit() in it, say
            exec(compile(text, str(path), "exec"), vars(module))
    except Exception as exc:
        raise PluginError(f"{path}: plugin module failed to import: {exc}") from exc
    return [
        value
        for value in vars(module).values()
        if inspect.isclass(value)
        and issubclass(value, ActionPlugin)
        and value.__module__ == module_name
        and not inspect.isabstract(value)
    ]
