"""Jinja2 templates of the rules file, rendered in a sandbox against one event.

Values from the event are data: they are inserted as text and never rendered
again, so a door named ``{{ 7*7 }}`` prints as written. An optional `escape`
function is applied to every value a ``{{ }}`` inserts and never to the
template's own text; that is how a topic, a header or a Slack message is kept
safe from what the event contains.
"""

from __future__ import annotations

import difflib
from collections.abc import Mapping
from dataclasses import fields
from functools import lru_cache
from typing import Annotated, Any

from jinja2 import StrictUndefined, Template, TemplateSyntaxError, Undefined, meta
from jinja2.exceptions import TemplateError
from jinja2.sandbox import SandboxedEnvironment
from pydantic import AfterValidator, JsonValue

from genea_automate.errors import TemplateRenderError
from genea_automate.events.model import Event
from genea_automate.plugin import Escape

_MARKERS = ("{{", "{%", "{#")


def is_template(text: str) -> bool:
    """Whether `text` has any Jinja markup; plain text is used as is."""
    return any(marker in text for marker in _MARKERS)


class Record(dict[str, Any]):
    """A mapping of event data that knows its own name, for error messages.

    Children are wrapped when a template reads them, not before: most of an
    event (its `raw` payload above all) is never looked at.
    """

    __slots__ = ("_path",)

    def __init__(self, items: Mapping[str, Any], path: str) -> None:
        super().__init__(items)
        self._path = path

    def __getitem__(self, key: str) -> Any:
        return _wrap(super().__getitem__(key), f"{self._path}.{key}")

    @property
    def path(self) -> str:
        return self._path


class _Undefined(StrictUndefined):
    """Fails on any use, naming the record and the closest key."""

    __slots__ = ()

    @property
    def _undefined_message(self) -> str:
        owner, name = self._undefined_obj, self._undefined_name
        if self._undefined_hint or not isinstance(owner, Record):
            return super()._undefined_message
        message = f"{owner.path!r} has no attribute {name!r}"
        close = difflib.get_close_matches(str(name), list(owner), n=1)
        return f"{message} (did you mean {close[0]!r}?)" if close else message


class _Sandbox(SandboxedEnvironment):
    """The sandbox, where `door.items` means the key before the dict method."""

    def getattr(self, obj: Any, attribute: str) -> Any:
        if isinstance(obj, Record) and attribute in obj:
            return obj[attribute]
        return super().getattr(obj, attribute)


@lru_cache(maxsize=16)
def _environment(escape: Escape | None) -> _Sandbox:
    """One environment per escape function; finalize sees every inserted value."""

    def finalize(value: Any) -> str:
        text = "" if value is None else str(value)
        return escape(text) if escape is not None else text

    sandbox = _Sandbox(
        undefined=_Undefined,
        finalize=finalize,
        autoescape=False,
        keep_trailing_newline=True,
    )
    sandbox.filters["default"] = _default
    sandbox.globals["range"] = _small_range
    return sandbox


MAX_RANGE = 1000


def _small_range(*args: int) -> range:
    """`range` capped: rules are decided while webhooks wait for the store."""
    numbers = range(*args)
    if len(numbers) > MAX_RANGE:
        raise OverflowError(f"range() in templates is limited to {MAX_RANGE} items")
    return numbers


def _default(value: Any, fallback: Any = "", boolean: bool = False) -> Any:
    """Jinja's `default`, which also stands in for a field Genea left empty.

    Event fields that Genea did not send are None rather than undefined, so
    `{{ door.name | default('a door') }}` must treat None as missing too.
    """
    if value is None or isinstance(value, Undefined) or (boolean and not value):
        return fallback
    return value


@lru_cache(maxsize=1024)
def _compile(source: str, escape: Escape | None) -> Template:
    return _environment(escape).from_string(source)


def _quote(source: str, limit: int = 60) -> str:
    """The template's source for a message, cut short when long."""
    if len(source) <= limit:
        return repr(source)
    return repr(source[: limit - 3] + "...")


def _syntax_message(exc: TemplateSyntaxError) -> str:
    return f"template syntax error at line {exc.lineno}: {exc.message}"


class TemplateRenderer:
    """Renders templates against one event's variables (a `RenderContext`).

    `escape` must be a long-lived function (a module-level one, not a fresh
    lambda), since compiled templates are cached per escape function.
    """

    def __init__(self, variables: Mapping[str, Any]) -> None:
        self._variables = dict(variables)

    def render(self, template: str, *, escape: Escape | None = None) -> str:
        """Render `template`, or raise `TemplateRenderError` saying why not."""
        if not is_template(template):
            return template
        try:
            return _compile(template, escape).render(self._variables)
        except TemplateSyntaxError as exc:
            reason = _syntax_message(exc)
        except TemplateError as exc:
            reason = str(exc)
        except Exception as exc:  # a template can raise anything, e.g. 1/0
            reason = f"{type(exc).__name__}: {exc}"
        raise TemplateRenderError(f"template {_quote(template)} failed: {reason}")


def _wrap(value: Any, path: str) -> Any:
    """Mappings become `Record`s that know their path; list items too."""
    if isinstance(value, dict):
        return Record(value, path)
    if isinstance(value, list):
        return [_wrap(item, f"{path}[{i}]") for i, item in enumerate(value)]
    return value


def template_variables(event: Event) -> dict[str, Any]:
    """`event` (the event's `to_dict()`) plus each of its top-level fields."""
    data = event.to_dict()
    variables = {key: _wrap(value, key) for key, value in data.items()}
    variables["event"] = Record(data, "event")
    return variables


def template_syntax_error(source: str) -> str | None:
    """The syntax error in `source` with its line, or None when it compiles."""
    if not is_template(source):
        return None
    try:
        _compile(source, None)
    except TemplateSyntaxError as exc:
        return _syntax_message(exc)
    return None


def expression_template(source: str) -> str:
    """A `template:` condition may be a bare expression: `actor.role == 'ADMIN'`."""
    return source if is_template(source) else f"{{{{ {source} }}}}"


def undeclared_names(source: str) -> set[str]:
    """Top-level names a template reads without setting them (Jinja's own aside)."""
    if not is_template(source) or template_syntax_error(source):
        return set()
    environment = _environment(None)
    names = meta.find_undeclared_variables(environment.parse(source))
    return names - set(environment.globals)


EVENT_VARIABLES = frozenset({field.name for field in fields(Event)} | {"event"})


def _check_template(source: str) -> str:
    error = template_syntax_error(source)
    if error is not None:
        raise ValueError(error)
    return source


def _template_errors(value: JsonValue, path: str) -> list[str]:
    """Syntax errors of every string leaf of a JSON-like value, with paths."""
    if isinstance(value, str):
        error = template_syntax_error(value)
        return [f"{path}: {error}" if path else error] if error else []
    if isinstance(value, dict):
        items: list[tuple[str, JsonValue]] = [
            (f"{path}.{key}" if path else key, item) for key, item in value.items()
        ]
    elif isinstance(value, list):
        items = [(f"{path}[{i}]", item) for i, item in enumerate(value)]
    else:
        return []
    return [error for sub, item in items for error in _template_errors(item, sub)]


def _check_template_data(value: JsonValue) -> JsonValue:
    errors = _template_errors(value, "")
    if errors:
        raise ValueError("; ".join(errors))
    return value


TemplateStr = Annotated[str, AfterValidator(_check_template)]
"""A string option that is a Jinja2 template, syntax-checked at load time."""

TemplateData = Annotated[JsonValue, AfterValidator(_check_template_data)]
"""JSON-like option data whose string leaves are templates, checked at load time."""
