"""Templates: sandboxed, strict, escaping only what the event inserts."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import pytest
from pydantic import BaseModel, ValidationError

from genea_automate.errors import TemplateRenderError
from genea_automate.events.model import Door, Location
from genea_automate.events.normalise import normalise
from genea_automate.rules.templates import (
    TemplateData,
    TemplateRenderer,
    TemplateStr,
    template_syntax_error,
    template_variables,
)
from tests.support.events import sample_event

RECEIVED_AT = datetime(2025, 3, 3, 13, 58, 13, tzinfo=UTC)


def render(template: str, escape: Any = None, **changes: Any) -> str:
    renderer = TemplateRenderer(template_variables(sample_event(**changes)))
    return renderer.render(template, escape=escape)


def shout(value: str) -> str:
    return f"<{value.upper()}>"


@pytest.mark.parametrize(
    ("template", "expected"),
    [
        ("{{ actor.name }}", "Ada Lovelace"),
        ("{{ door.name }}", "Front Door"),
        ("{{ location.name }}", "HQ"),
        ("{{ event.time }}", "2024-03-04T13:05:09Z"),
        ("{{ time }}", "2024-03-04T13:05:09Z"),
        ("{{ kind }}", "access.granted"),
        ("{{ event.door.name }}", "Front Door"),
        ("{{ details.reader }}", "in"),
        ("{{ card.number }}", "1234"),
    ],
    ids=[
        "actor",
        "door",
        "location",
        "event-time",
        "time",
        "kind",
        "nested",
        "details",
        "card",
    ],
)
def test_templates_see_event_fields(template: str, expected: str) -> None:
    assert render(template) == expected


def test_templates_render_none_as_empty() -> None:
    assert render("[{{ actor.role }}]") == "[]"


def test_templates_never_render_event_values() -> None:
    assert (
        render("door: {{ door.name }}", door=Door(name="{{ 7*7 }}"))
        == "door: {{ 7*7 }}"
    )


def test_templates_plain_text_is_returned_as_is() -> None:
    text = "no markup here: } { %"
    assert TemplateRenderer({}).render(text, escape=shout) is text


def test_templates_escape_inserted_values_only() -> None:
    assert render("a <{{ door.name }}> b", escape=shout) == "a <<FRONT DOOR>> b"


def test_templates_escape_is_cached_per_function() -> None:
    renderer = TemplateRenderer({"x": "a"})
    assert renderer.render("{{ x }}", escape=shout) == "<A>"
    assert renderer.render("{{ x }}") == "a"
    assert renderer.render("{{ x }}", escape=str.title) == "A"


def test_templates_dict_keys_win_over_dict_methods() -> None:
    raw = {"items": "three", "values": [1, 2]}
    assert render("{{ raw.items }} {{ raw.values[1] }}", raw=raw) == "three 2"
    assert (
        render("{% for k, v in details.items() %}{{ k }}={{ v }}{% endfor %}")
        == "reader=in"
    )


@pytest.mark.parametrize(
    ("template", "message"),
    [
        (
            "Hi {{ door.nmae }}",
            "template 'Hi {{ door.nmae }}' failed: 'door' has no attribute 'nmae' "
            "(did you mean 'name'?)",
        ),
        (
            "{{ event.location.nmae }}",
            "template '{{ event.location.nmae }}' failed: 'event.location' has no "
            "attribute 'nmae' (did you mean 'name'?)",
        ),
        (
            "{{ doors.name }}",
            "template '{{ doors.name }}' failed: 'doors' is undefined",
        ),
        (
            "{{ details.x.y }}",
            "template '{{ details.x.y }}' failed: 'details' has no attribute 'x'",
        ),
        (
            "{{ 1 / 0 }}",
            "template '{{ 1 / 0 }}' failed: ZeroDivisionError: division by zero",
        ),
        (
            "{{ door.name.__class__ }}",
            "template '{{ door.name.__class__ }}' failed: access to attribute "
            "'__class__' of 'str' object is unsafe.",
        ),
        (
            "{{ door.name",
            "template '{{ door.name' failed: template syntax error at line 1: "
            "unexpected end of template, expected 'end of print statement'.",
        ),
    ],
    ids=[
        "attribute",
        "nested",
        "variable",
        "missing-key",
        "arithmetic",
        "sandbox",
        "syntax",
    ],
)
def test_templates_render_errors_say_why(template: str, message: str) -> None:
    with pytest.raises(TemplateRenderError) as caught:
        render(template)
    assert str(caught.value) == message


def test_templates_long_source_is_shortened_in_errors() -> None:
    template = "x" * 80 + "{{ nope }}"
    with pytest.raises(TemplateRenderError, match=r"^template 'x{57}\.\.\.' failed"):
        render(template)


@pytest.mark.parametrize(
    ("source", "error"),
    [
        ("plain", None),
        ("{{ a }} and {% if b %}c{% endif %}", None),
        ("{{ a }", "template syntax error at line 1: unexpected '}'"),
        (
            "one\ntwo {{ a b }}",
            "template syntax error at line 2: expected token "
            "'end of print statement', got 'b'",
        ),
        (
            "{{ a | nosuch }}",
            "template syntax error at line 1: No filter named 'nosuch'.",
        ),
    ],
    ids=["plain", "valid", "brace", "second-line", "unknown-filter"],
)
def test_template_syntax_error(source: str, error: str | None) -> None:
    assert template_syntax_error(source) == error


class Step(BaseModel):
    text: TemplateStr
    data: TemplateData = None


def test_template_str_checks_syntax_at_load_time() -> None:
    with pytest.raises(ValidationError) as caught:
        Step(text="{{ a }")
    [error] = caught.value.errors()
    assert error["loc"] == ("text",)
    assert (
        error["msg"] == "Value error, template syntax error at line 1: unexpected '}'"
    )


def test_template_data_checks_every_string_leaf() -> None:
    Step(text="ok", data={"a": ["{{ fine }}", 1, True, None]})
    with pytest.raises(ValidationError) as caught:
        Step(text="ok", data={"a": [1, {"b": "{% if %}"}]})
    assert caught.value.errors()[0]["msg"] == (
        "Value error, a[1].b: template syntax error at line 1: Expected an expression, "
        "got 'end of statement block'"
    )


def test_template_variables_has_event_and_each_field() -> None:
    event = sample_event(location=Location(name="Plant 3"))
    variables = template_variables(event)
    assert variables["event"] == event.to_dict()
    assert set(variables) == set(event.to_dict()) | {"event"}
    assert variables["location"]["name"] == "Plant 3"


def test_templates_render_every_shared_payload(shared_payload: Any) -> None:
    event = normalise(shared_payload.data, received_at=RECEIVED_AT)
    renderer = TemplateRenderer(template_variables(event))
    text = renderer.render(
        "{{ kind }}|{{ actor.name }}|{{ door.name }}|{{ location.name }}|"
        "{{ event.time }}|{{ raw.uuid }}"
    )
    assert text.split("|")[0] == event.kind
    assert text.split("|")[-1] == shared_payload.data["uuid"]


def test_templates_on_a_real_card_grant(load_shared: Any) -> None:
    data = load_shared("01-access-granted-card.json").data
    event = normalise(data, received_at=RECEIVED_AT)
    renderer = TemplateRenderer(template_variables(event))
    assert renderer.render("{{ actor.name }} at {{ location.name }}") == (
        "Jordan Example at Harborview Labs HQ"
    )


@pytest.mark.parametrize("name", ["default", "d"])
def test_default_and_its_short_name_stand_in_for_a_field_genea_left_empty(
    name: str,
) -> None:
    template = f"{{{{ door.name | {name}('a door') }}}}"
    assert render(template, door=Door(name=None)) == "a door"
    assert render(template) == "Front Door"
