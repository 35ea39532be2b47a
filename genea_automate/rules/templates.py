"""Jinja2 templates of the rules file, rendered in a sandbox against one event.

Values from the event are data: they are inserted as text and never rendered
again, so a door named ``{{ 7*7 }}`` prints as written. An optional `escape`
function is applied to every value a ``{{ }}`` inserts and never to the
template's own text; that is how a topic, a header or a Slack message is kept
safe from what the event contains.
"""

from __future__ import annotations

import difflib
import functools
import math
import re
import time
from collections.abc import Callable, Iterable, Iterator, Mapping
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import dataclass
from functools import lru_cache
from typing import Annotated, Any

from jinja2 import (
    StrictUndefined,
    Template,
    TemplateSyntaxError,
    Undefined,
    meta,
    nodes,
)
from jinja2.exceptions import TemplateError, TemplateRuntimeError
from jinja2.runtime import Context
from jinja2.sandbox import SandboxedEnvironment
from pydantic import AfterValidator, JsonValue

from genea_automate.errors import TemplateRenderError
from genea_automate.events.model import EVENT_FIELDS, Event
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


RENDER_BUDGET = 0.1
"""Seconds one render may take. Rules are decided inside a write to the store,
which webhooks wait for: a webhook can wait for one whole decision (see
MAX_BATCH_TIME in store/writer.py), which is up to this budget for each
template the event renders. A real template takes well under a millisecond:
100 ms leaves room for a slow machine or a busy interpreter."""

# When the render running in this thread must end; none outside a render.
_deadline: ContextVar[float] = ContextVar("template_deadline", default=math.inf)


def _check_deadline() -> None:
    """Fail the render once its budget is spent."""
    if time.monotonic() > _deadline.get():
        raise TemplateRuntimeError(
            f"rendering took more than {RENDER_BUDGET * 1000:g} ms, the limit for "
            "one template (a loop that runs too long?)"
        )


@contextmanager
def _time_budget() -> Iterator[None]:
    """Start the deadline of one render (compiling a template is not timed)."""
    token = _deadline.set(time.monotonic() + RENDER_BUDGET)
    try:
        yield
    finally:
        _deadline.reset(token)


# Loop steps between two clock reads, so that a loop costs little more.
_CHECK_EVERY = 64


def _timed(items: Iterable[Any]) -> Iterator[Any]:
    """`items`, checking the deadline as a `for` loop starts and every
    `_CHECK_EVERY` steps. Between checks, a step can only do bounded work:
    any call or inner loop in it checks the deadline itself."""
    for step, item in enumerate(items):
        if step % _CHECK_EVERY == 0:
            _check_deadline()
        yield item


# The filter every `for` loop's items pass through; not a name templates can use.
_TIMED = "for loop deadline"


def _with_timed_loops(tree: nodes.Template) -> nodes.Template:
    """Make every `for` loop check the deadline, whatever it iterates: loops
    are what multiply a template's work (nested `range`s, a list or a string
    iterated inside another loop)."""
    for loop in list(tree.find_all(nodes.For)):
        loop.iter = nodes.Filter(
            loop.iter, _TIMED, [], [], None, None, lineno=loop.lineno
        )
    return tree


# The most one operator or filter may build: a deadline cannot stop a single
# `*`, `**` or filter once it runs ('x' * 10**9, 13 ** 30000000, center(10**9)).
MAX_BUILT = 100_000  # items or characters
MAX_POWER_BITS = 100_000  # about 30,000 digits
_WIDE_FORMAT = re.compile(r"%[-+ #0]*(\*|\d{5,}|\.\d{5,}|\d*\.\*)")


def _check_size(operator: str, left: Any, right: Any) -> None:
    """Refuse an operation whose result alone would be huge."""
    if operator == "*":
        for sequence, times in ((left, right), (right, left)):
            if (
                isinstance(sequence, str | list | tuple)
                and isinstance(times, int)
                and len(sequence) * times > MAX_BUILT
            ):
                raise TemplateRuntimeError(
                    f"'*' would build {len(sequence) * times} items or characters; "
                    f"one operation may build at most {MAX_BUILT}"
                )
    elif operator == "**":
        if (
            isinstance(left, int)
            and isinstance(right, int)
            and abs(left) > 1
            and right * math.log2(abs(left)) > MAX_POWER_BITS
        ):
            raise TemplateRuntimeError(
                f"'**' would build a number of more than {MAX_POWER_BITS} bits"
            )
    elif operator == "%" and isinstance(left, str):
        _check_format("'%' formatting", left)


def _check_format(operation: str, text: str) -> None:
    """Refuse a format whose one field could be huge: '%999999999s'."""
    if _WIDE_FORMAT.search(text):
        raise TemplateRuntimeError(
            f"{operation} with a width or precision of 10000 or more, or '*'"
        )


def _check_replace(value: Any, old: Any = "", new: Any = "", count: Any = None) -> None:
    """Refuse a `replace` that would grow its text past MAX_BUILT characters.

    Arguments left out are left for the filter itself to complain about.
    """
    text, old, new = str(value), str(old), str(new)
    growth = len(new) - len(old)
    if growth <= 0:
        return
    times = text.count(old)
    if isinstance(count, int) and count >= 0:
        times = min(times, count)
    size = len(text) + times * growth
    if size > max(len(text), MAX_BUILT):
        raise TemplateRuntimeError(
            f"'replace' would turn {len(text)} characters into {size}; "
            f"one operation may build at most {MAX_BUILT}"
        )


# Filters whose whole-number arguments are values passed on, not widths or
# counts: `default(250000)`, `'%d' | format(250000)`, `select('gt', 250000)`.
# A filter that `map` applies is checked on its own.
_VALUE_FILTERS = frozenset(
    {
        "default",
        "d",
        "format",
        "int",
        "float",
        "sum",
        "groupby",
        "map",
        "select",
        "reject",
        "selectattr",
        "rejectattr",
    }
)


def _check_counts(what: str, args: tuple[Any, ...], kwargs: Mapping[str, Any]) -> None:
    """Refuse a width or count above MAX_BUILT among a call's arguments."""
    for argument in (*args, *kwargs.values()):
        if isinstance(argument, int) and argument > MAX_BUILT:
            raise TemplateRuntimeError(
                f"{what} was given {argument}; its widths and counts may be at "
                f"most {MAX_BUILT}"
            )


def _check_filter(
    name: str, value: Any, args: tuple[Any, ...], kwargs: Mapping[str, Any]
) -> None:
    """Refuse a filter call that alone would do or build too much."""
    if name not in _VALUE_FILTERS:
        _check_counts(f"filter {name!r}", args, kwargs)
    if name == "replace":
        _check_replace(value, *args, **kwargs)
    elif name == "format":
        _check_format("filter 'format'", str(value))


# Methods of a text that build their result from a width, a count or copies:
# the filters of the same names are checked alike. (`format` is checked where
# the sandbox wraps it, see `_Sandbox.wrap_str_format`.)
_TEXT_BUILDERS = frozenset(
    {"center", "ljust", "rjust", "zfill", "expandtabs", "replace", "join"}
)
# A `str.format` field whose width or precision is huge, or given by argument.
_WIDE_FIELD = re.compile(r"\{[^{}]*:[^{}]*(\d{5,}|\{)")


def _check_method(
    method: Any, args: tuple[Any, ...], kwargs: Mapping[str, Any]
) -> None:
    """Refuse a call of a text's method that alone would build too much:
    'x'.center(10**9), or a join with a long separator."""
    text, name = getattr(method, "__self__", None), getattr(method, "__name__", "")
    if not isinstance(text, str) or name not in _TEXT_BUILDERS:
        return
    if name == "replace":
        _check_replace(text, *args, **kwargs)
    elif name == "join":
        items = args[0] if args else ()
        if isinstance(items, list | tuple) and len(text) * len(items) > MAX_BUILT:
            raise TemplateRuntimeError(
                f"'join' would put {len(items)} copies of a {len(text)}-character "
                f"separator; one operation may build at most {MAX_BUILT}"
            )
    else:
        _check_counts(repr(name), args, kwargs)


def _guarded(name: str, function: Callable[..., Any]) -> Callable[..., Any]:
    """`function`, the filter `name`, checked like a call: Jinja calls filters
    directly, not through the sandbox's `call`. The deadline is read before and
    after, so a chain of filters stops at the budget."""
    # A filter marked with Jinja's pass_context (or its kin) gets that first.
    skip = 1 if hasattr(function, "jinja_pass_arg") else 0

    @functools.wraps(function)
    def guarded(*args: Any, **kwargs: Any) -> Any:
        _check_deadline()
        _check_filter(name, args[skip], args[skip + 1 :], kwargs)
        result = function(*args, **kwargs)
        _check_deadline()
        return result

    return guarded


class _Sandbox(SandboxedEnvironment):
    """The sandbox, where `door.items` means the key before the dict method,
    every call (a macro calling itself, too) checks the render's deadline, and
    `*`, `**`, `%` and a text's building methods may not build huge values.
    Intercepted operators are also never worked out while compiling, so
    `validate` cannot hang on one."""

    intercepted_binops = frozenset(["*", "**", "%"])

    def call_binop(self, context: Context, operator: str, left: Any, right: Any) -> Any:
        _check_size(operator, left, right)
        return super().call_binop(context, operator, left, right)

    def wrap_str_format(self, value: Any) -> Callable[..., str] | None:
        wrapped = super().wrap_str_format(value)
        if wrapped is not None and _WIDE_FIELD.search(value.__self__):
            raise TemplateRuntimeError(
                f"'{value.__name__}' with a width or precision of 10000 or more, or "
                "given by an argument"
            )
        return wrapped

    def getattr(self, obj: Any, attribute: str) -> Any:
        if isinstance(obj, Record) and attribute in obj:
            return obj[attribute]
        return super().getattr(obj, attribute)

    def call(self, context: Context, obj: Any, /, *args: Any, **kwargs: Any) -> Any:
        _check_deadline()
        _check_method(obj, args, kwargs)
        return super().call(context, obj, *args, **kwargs)


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
    sandbox.filters["default"] = sandbox.filters["d"] = _default
    sandbox.filters[_TIMED] = _timed
    # Jinja folds filters of constants while compiling, through these too: one
    # that a check refuses is left to fail when rendered.
    for name, function in sandbox.filters.items():
        sandbox.filters[name] = _guarded(name, function)
    sandbox.globals["range"] = _small_range
    # lipsum(n) does n paragraphs' work in one call, which no deadline can stop.
    del sandbox.globals["lipsum"]
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
    environment = _environment(escape)
    return environment.from_string(_with_timed_loops(environment.parse(source)))


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
            compiled = _compile(template, escape)
            with _time_budget():
                return compiled.render(self._variables)
        except TemplateSyntaxError as exc:
            reason = _syntax_message(exc)
        except TemplateError as exc:
            reason = str(exc)
        except MemoryError:
            reason = "it needed more memory than a decision may take"
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


def _parse(source: str) -> nodes.Template | None:
    """The syntax tree of a template; None for plain text or a syntax error."""
    if not is_template(source) or template_syntax_error(source):
        return None
    return _environment(None).parse(source)


def undeclared_names(source: str) -> set[str]:
    """Top-level names a template reads without setting them (Jinja's own aside)."""
    tree = _parse(source)
    if tree is None:
        return set()
    names = meta.find_undeclared_variables(tree)
    return names - set(_environment(None).globals)


@dataclass(frozen=True, slots=True)
class FieldRead:
    """A chain of lookups by constant names in a template: `event.door.name`.

    `guard` is "default" or "defined" when a `default` filter or an `is
    defined` test applies to the lookup itself, so a missing field does not
    fail the template there; None when it would.
    """

    path: tuple[str, ...]
    guard: str | None


# The filters and tests that make a missing field harmless, and their guard.
_GUARD_FILTERS = {"default": "default", "d": "default"}
_GUARD_TESTS = {"defined": "defined", "undefined": "defined"}


def field_reads(source: str) -> list[FieldRead]:
    """Every `a.b` or `a['b']` lookup on a variable the template does not set.

    A name the template sets anywhere (`set`, `for`, a macro's parameter) is
    left out wherever it is read: it may not be the event's.
    """
    tree = _parse(source)
    if tree is None:
        return []
    own = {name.name for name in tree.find_all(nodes.Name) if name.ctx != "load"}
    guards = _guards(tree)
    reads = []
    for node in tree.find_all((nodes.Getattr, nodes.Getitem)):
        path = _lookup_path(node)
        if path is not None and path[0] not in own:
            reads.append(FieldRead(path, guards.get(id(node))))
    return reads


def _guards(tree: nodes.Template) -> dict[int, str]:
    """The guard of each node (by id) that a guarding filter or test applies to."""
    guards = {}
    for node in tree.find_all((nodes.Filter, nodes.Test)):
        names = _GUARD_FILTERS if isinstance(node, nodes.Filter) else _GUARD_TESTS
        if node.name in names:
            guards[id(node.node)] = names[node.name]
    return guards


def _lookup_path(node: nodes.Node) -> tuple[str, ...] | None:
    """`door.name` as ("door", "name"); None unless every step is a constant name."""
    if isinstance(node, nodes.Name):
        return (node.name,)
    if isinstance(node, nodes.Getattr):
        key = node.attr
    elif isinstance(node, nodes.Getitem) and isinstance(node.arg, nodes.Const):
        key = node.arg.value
    else:
        return None
    parent = _lookup_path(node.node)
    return None if parent is None or not isinstance(key, str) else (*parent, key)


EVENT_VARIABLES = frozenset({*EVENT_FIELDS, "event"})


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
