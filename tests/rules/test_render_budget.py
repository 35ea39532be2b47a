"""The time budget of a render: a runaway template fails instead of holding up
the store's writer thread, and with it every webhook."""

from __future__ import annotations

import logging
import re
import time
from collections.abc import Awaitable, Callable

import pytest

from genea_automate.errors import TemplateRenderError
from genea_automate.rules import templates
from genea_automate.rules.templates import (
    TemplateRenderer,
    template_syntax_error,
    template_variables,
    undeclared_names,
)
from tests.rules.conftest import Decide, rule_trace
from tests.support.events import sample_event
from tests.support.genea import payload

Rules = Callable[[str], Awaitable[Decide]]

# Each takes seconds without a budget; with it, about RENDER_BUDGET.
NESTED_RANGES = (
    "{% for a in range(1000) %}{% for b in range(1000) %}{% for c in range(30) %}"
    "{% endfor %}{% endfor %}{% endfor %}"
)
RUNAWAY = {
    "nested-ranges": NESTED_RANGES,
    "listed-range": "{% set r = range(1000) | list %}{% for a in r %}"
    "{% for b in r %}{% for c in r[:30] %}{% endfor %}{% endfor %}{% endfor %}",
    "strings": "{% for a in 'x' * 1000 %}{% for b in 'x' * 1000 %}"
    "{% for c in 'x' * 30 %}{% endfor %}{% endfor %}{% endfor %}",
    "output": "{% for x in range(1000) %}{{ x * 'a' }}{% for y in range(1000) %}"
    "{{ y % 10 * 'b' }}{% endfor %}{% endfor %}",
    "recursion": "{% macro f(n) %}{% if n %}{{ f(n - 1) }}{{ f(n - 1) }}{% endif %}"
    "{% endmacro %}{{ f(19) }}",
}
TIMED_OUT = "rendering took more than 100 ms, the limit for one template"


def render(template: str) -> str:
    return TemplateRenderer(template_variables(sample_event())).render(template)


@pytest.mark.parametrize("template", RUNAWAY.values(), ids=RUNAWAY.keys())
def test_a_runaway_template_fails_within_its_budget(template: str) -> None:
    started = time.monotonic()
    with pytest.raises(TemplateRenderError, match=TIMED_OUT):
        render(template)
    assert time.monotonic() - started < 10 * templates.RENDER_BUDGET


@pytest.mark.parametrize(
    ("template", "expected"),
    [
        (
            "{% for a in range(3) %}{{ a }}{% if loop.last %}!{% endif %}{% endfor %}",
            "012!",
        ),
        (
            "{% for a in range(5) if a is odd %}{{ a }}/{{ loop.length }} {% endfor %}",
            "1/2 3/2 ",
        ),
        ("{% for a in [] %}{{ a }}{% else %}none{% endfor %}", "none"),
        ("{% for k, v in details.items() %}{{ k }}={{ v }}{% endfor %}", "reader=in"),
        (
            "{% for n in [[1, [2]], [3]] recursive %}"
            "{{ n if n is number else loop(n) }}{% endfor %}",
            "123",
        ),
        ("{{ range(1000) | join | length }}", "2890"),
    ],
    ids=["loop-last", "loop-filter", "else", "items", "recursive", "range"],
)
def test_loops_behave_as_before(template: str, expected: str) -> None:
    assert render(template) == expected


def test_only_loops_calls_and_filters_read_the_clock(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(templates, "RENDER_BUDGET", 0.0)
    assert render("{{ door.name }} at {{ time }}") == (
        "Front Door at 2024-03-04T13:05:09Z"
    )
    for template in (
        "{% for a in [1] %}{% endfor %}",
        "{{ door.name.upper() }}",
        "{{ door.name | default('a door') }}",
    ):
        with pytest.raises(TemplateRenderError, match="more than 0 ms"):
            render(template)


def test_a_chain_of_filters_stops_at_the_budget(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Jinja calls filters directly, not through the sandbox's `call`."""
    monkeypatch.setattr(templates, "RENDER_BUDGET", 0.0)
    chain = " | replace('x', 'y') | replace('y', 'x')" * 50
    with pytest.raises(TemplateRenderError, match="rendering took more than 0 ms"):
        render("{{ door.name" + chain + " }}")


def test_the_budget_is_per_render_and_ends_with_it() -> None:
    renderer = TemplateRenderer(template_variables(sample_event()))
    with pytest.raises(TemplateRenderError):
        renderer.render(NESTED_RANGES)
    assert renderer.render("{% for a in range(3) %}{{ a }}{% endfor %}") == "012"
    # Outside a render, nothing is timed: the deadline ended with the render.
    compiled = templates._compile("{% for a in [1] %}{{ a }}{% endfor %}", None)
    assert compiled.render({}) == "1"


def test_lipsum_is_gone_its_work_cannot_be_stopped() -> None:
    with pytest.raises(TemplateRenderError, match="'lipsum' is undefined"):
        render("{{ lipsum(n=20000) }}")
    assert undeclared_names("{{ lipsum() }}") == {"lipsum"}


async def test_a_runaway_rule_fails_alone_and_quickly(
    rules: Rules, caplog: pytest.LogCaptureFixture
) -> None:
    decide = await rules(f"""
        rules:
          - id: runaway
            when: access.granted
            then: [{{log: {{message: "{NESTED_RANGES}"}}}}]
          - id: welcome
            when: access.granted
            then: [{{log: {{message: "hello {{{{ actor.name }}}}"}}}}]
    """)
    started = time.monotonic()
    with caplog.at_level(logging.ERROR):
        decision = await decide(payload("01"))
    assert time.monotonic() - started < 10 * templates.RENDER_BUDGET
    assert decision.fired == ["welcome"]
    trace = rule_trace(decision, "runaway")
    assert trace["fired"] is False and TIMED_OUT in trace["errors"][0]
    [record] = [r for r in caplog.records if "could not render" in r.getMessage()]
    assert TIMED_OUT in record.getMessage()


@pytest.mark.parametrize(
    ("template", "error"),
    [
        ("{{ (door.name | length) ** 3000000 }}", "'**' would build a number"),
        ("{{ door.name * 300000 }}", "'*' would build"),
        ("{{ 300000 * [door.name] }}", "'*' would build"),
        ("{{ '%99999d' % 1 }}", "'%' formatting with a width"),
        ("{{ '%.*f' % (99999, 1) }}", "'%' formatting with a width"),
        # A text's own building methods, as the filters of the same names.
        ("{{ 'x'.center(1000000000) }}", "'center' was given 1000000000"),
        ("{{ 'x'.zfill(width=1000000000) }}", "'zfill' was given 1000000000"),
        (
            "{{ ('x' * 99999).replace('x', 'xxxxxxxxxx') }}",
            "'replace' would turn 99999 characters into 999990",
        ),
        ("{{ ('-' * 1000).join([1] * 200) }}", "'join' would put 200 copies"),
        ("{{ '{:>999999}'.format(1) }}", "'format' with a width"),
        ("{{ '{:{}}'.format(1, 999999) }}", "'format' with a width"),
        ("{{ '{a:>999999}'.format_map({'a': 1}) }}", "'format_map' with a width"),
    ],
)
def test_one_operation_may_not_build_a_huge_value(template: str, error: str) -> None:
    """No deadline can stop a single `*`, `**` or text method once it runs."""
    with pytest.raises(TemplateRenderError, match=re.escape(error)):
        render(template)


def test_small_text_methods_still_work() -> None:
    assert (
        render(
            "{{ 'x'.center(5) }}|{{ 'a-b'.replace('-', '--') }}|{{ ', '.join(['a', 'b']) }}"
            "|{{ '{:>3}'.format(7) }}|{{ ('y' * 99999).replace('y', '') }}"
        )
        == "  x  |a--b|a, b|  7|"
    )


GROWING_REPLACES = (
    "{{ ('x' * 99999)" + " | replace('x','xxxxxxxxxx')" * 4 + " | length }}"
)


def test_a_chain_of_growing_replaces_is_refused_at_the_first() -> None:
    """Each replace would multiply the text by ten: 1 MB, 10 MB, 100 MB, 1 GB."""
    with pytest.raises(TemplateRenderError) as caught:
        render(GROWING_REPLACES)
    assert str(caught.value).endswith(
        "failed: 'replace' would turn 99999 characters into 999990; "
        "one operation may build at most 100000"
    )


HUGE_FILTERS = {
    "center": ("{{ 'x' | center(1000000000) }}", "center", 1000000000),
    "indent": ("{{ 'x\ny' | indent(width=1000000000) }}", "indent", 1000000000),
    "batch": ("{{ [1] | batch(1000000000, 'x') | list }}", "batch", 1000000000),
    "slice": ("{{ [1] | slice(1000000000) | list }}", "slice", 1000000000),
    "wordwrap": ("{{ door.name | wordwrap(100001) }}", "wordwrap", 100001),
    "tojson": ("{{ [1] | tojson(indent=1000000000) }}", "tojson", 1000000000),
    "mapped": ("{{ ['x'] | map('center', 1000000000) | list }}", "center", 1000000000),
}


@pytest.mark.parametrize(
    ("template", "name", "number"), HUGE_FILTERS.values(), ids=HUGE_FILTERS.keys()
)
def test_a_filter_may_not_be_given_a_huge_width_or_count(
    template: str, name: str, number: int
) -> None:
    with pytest.raises(TemplateRenderError) as caught:
        render(template)
    assert str(caught.value).endswith(
        f"failed: filter {name!r} was given {number}; "
        "its widths and counts may be at most 100000"
    )


@pytest.mark.parametrize(
    "template",
    ["{{ '%999999999s' | format(1) }}", "{{ '%.*f' | format(99999, 1) }}"],
)
def test_the_format_filter_may_not_format_a_huge_field(template: str) -> None:
    with pytest.raises(TemplateRenderError) as caught:
        render(template)
    assert str(caught.value).endswith(
        "failed: filter 'format' with a width or precision of 10000 or more, or '*'"
    )


@pytest.mark.parametrize(
    ("template", "error"),
    [
        ("{{ 'x' | center(1000000000) }}", "filter 'center' was given 1000000000"),
        (
            "{{ '" + "x" * 99999 + "' | replace('x', 'xx') }}",
            "'replace' would turn 99999 characters into 199998",
        ),
    ],
    ids=["center", "replace"],
)
def test_a_filter_of_constants_is_checked_though_worked_out_while_compiling(
    template: str, error: str
) -> None:
    """Jinja folds a filter of constants when compiling, through the same checks:
    `validate` does not build the value, and rendering is refused."""
    assert template_syntax_error(template) is None
    with pytest.raises(TemplateRenderError, match=re.escape(error)):
        render(template)


@pytest.mark.parametrize(
    ("template", "expected"),
    [
        ("{{ text | replace('a', '') | length }}", "150000"),
        ("{{ text | replace('ab', 'ba') | length }}", "300000"),
        ("{{ text | replace('q', 'qqqq') | length }}", "300000"),
        ("{{ text | tojson | length }}", "300002"),
        ("[{{ 'door' | center(20) }}]", "[        door        ]"),
        ("{{ range(7) | batch(3, '-') | map('join') | join(' ') }}", "012 345 6--"),
        ("{{ range(7) | slice(3) | map('join') | join(' ') }}", "012 34 56"),
        ("[{{ '%5s' | format(1) }}]", "[    1]"),
        ("{{ '%d' | format(250000) }}", "250000"),
        ("{{ missing | default(250000) }}", "250000"),
        ("{{ [1, 250001] | select('gt', 250000) | join }}", "250001"),
        (
            (
                "{{ name | lower | title | replace(' ', '-') | center(14) | trim"
                " | list | reverse | join | upper | reverse | join | e }}"
            ),
            "FRONT-DOOR",
        ),
    ],
    ids=[
        "replace-shrinks",
        "replace-keeps",
        "replace-finds-nothing",
        "tojson",
        "center",
        "batch",
        "slice",
        "format",
        "format-number",
        "default",
        "select",
        "chain",
    ],
)
def test_ordinary_filters_still_work(template: str, expected: str) -> None:
    renderer = TemplateRenderer({"text": "ab" * 150_000, "name": "FRONT DOOR"})
    assert renderer.render(template) == expected


def test_small_operations_still_work() -> None:
    assert render("{{ 'ab' * 3 }} {{ 2 ** 10 }} {{ '%05.1f' % 2.5 }}") == (
        "ababab 1024 002.5"
    )


def test_a_huge_constant_is_not_worked_out_while_compiling() -> None:
    """Jinja folds constants when compiling; `validate` would hang on this."""
    started = time.monotonic()
    with pytest.raises(TemplateRenderError, match="'\\*\\*' would build"):
        render("{{ 13 ** 30000000 }}")
    assert time.monotonic() - started < 10 * templates.RENDER_BUDGET
