"""Shared action pieces: connection names, data rendering, Retry-After, HTTP status."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import httpx
import pytest

from genea_automate.actions import BUILTIN_ACTIONS
from genea_automate.actions.common import (
    connection_issues,
    parse_retry_after,
    render_data,
    resolve_connection,
    status_error,
)
from genea_automate.plugin import PluginRegistry

from .conftest import MakeRenderer

NOW = datetime(2024, 3, 4, 13, 5, 10, tzinfo=UTC)


@pytest.mark.parametrize(
    ("name", "section", "issues"),
    [
        ("default", {"default": 1}, []),
        (None, {"default": 1}, []),
        (
            "defualt",
            {"default": 1, "backup": 2},
            [
                (
                    ("connection",),
                    "unknown mqtt connection 'defualt' (did you mean 'default'?)",
                )
            ],
        ),
        (
            "x",
            {"default": 1, "backup": 2},
            [
                (
                    ("connection",),
                    "unknown mqtt connection 'x' (defined: 'backup', 'default')",
                )
            ],
        ),
        (
            None,
            {"default": 1, "backup": 2},
            [
                (
                    (),
                    "several mqtt connections are defined ('backup', 'default'); "
                    "choose one with `connection:`",
                )
            ],
        ),
        (
            None,
            {},
            [
                (
                    (),
                    "no mqtt connection is defined; add one under `mqtt:` at the top "
                    "of the rules file",
                )
            ],
        ),
        (
            "default",
            {},
            [
                (
                    ("connection",),
                    "no mqtt connection is defined; add one under `mqtt:` at the top "
                    "of the rules file",
                )
            ],
        ),
    ],
    ids=[
        "named",
        "only-one",
        "did-you-mean",
        "unknown",
        "ambiguous",
        "none-defined",
        "named-none-defined",
    ],
)
def test_connection_issues(
    name: str | None, section: dict[str, int], issues: list[Any]
) -> None:
    assert connection_issues("mqtt", name, section) == issues


def test_resolve_connection_picks_the_only_one() -> None:
    assert resolve_connection("slack", None, {"ops": 1}) == "ops"


def test_resolve_connection_refuses_what_check_reports() -> None:
    with pytest.raises(ValueError) as caught:
        resolve_connection("slack", "opz", {"ops": 1})
    assert str(caught.value) == "unknown slack connection 'opz' (did you mean 'ops'?)"


def test_render_data_renders_string_leaves_only(make_renderer: MakeRenderer) -> None:
    data = {
        "who": "{{ actor.name }}",
        "n": 3,
        "ok": True,
        "list": ["{{ kind }}", None],
        "{{ key }}": "kept",
    }
    assert render_data(data, make_renderer()) == {
        "who": "Ada Lovelace",
        "n": 3,
        "ok": True,
        "list": ["access.granted", None],
        "{{ key }}": "kept",
    }


@pytest.mark.parametrize(
    ("value", "seconds"),
    [
        ("1", 1.0),
        (" 120 ", 120.0),
        ("Mon, 04 Mar 2024 13:05:40 GMT", 30.0),
        ("Mon, 04 Mar 2024 13:00:00 GMT", 0.0),
        ("soon", None),
        ("\u00b2", None),
        ("", None),
        (None, None),
    ],
    ids=[
        "seconds",
        "spaces",
        "http-date",
        "past-date",
        "garbage",
        "superscript",
        "empty",
        "absent",
    ],
)
def test_parse_retry_after(value: str | None, seconds: float | None) -> None:
    assert parse_retry_after(value, NOW) == seconds


def answer(status: int, text: str = "", **headers: str) -> httpx.Response:
    return httpx.Response(status, text=text, headers=headers)


@pytest.mark.parametrize(
    ("response", "retryable", "retry_after"),
    [
        (answer(429, "rate_limited", **{"Retry-After": "1"}), True, 1.0),
        (answer(503, **{"Retry-After": "Mon, 04 Mar 2024 13:05:15 GMT"}), True, 5.0),
        (answer(500), True, None),
        (answer(502), True, None),
        (answer(408), True, None),
        (answer(404, "no_service"), False, None),
        (answer(400, "invalid_payload"), False, None),
        (answer(302), False, None),
    ],
    ids=["429", "503-date", "500", "502", "408", "404", "400", "302"],
)
def test_status_error_classifies(
    response: httpx.Response, retryable: bool, retry_after: float | None
) -> None:
    error = status_error(response, NOW)
    assert error is not None
    assert (error.retryable, error.retry_after) == (retryable, retry_after)


def test_status_error_message_has_short_body() -> None:
    error = status_error(answer(400, "bad\n  thing " + "x" * 300), NOW)
    assert error is not None
    assert str(error) == "HTTP 400 Bad Request: bad thing " + "x" * 67 + "..."


def test_status_error_masks_long_numbers_before_cutting() -> None:
    echo = '{"error": "invalid", "sent": {"card": "4111111111111111", "pin": 1234}}'
    error = status_error(answer(422, echo), NOW)
    assert error is not None
    assert str(error) == (
        'HTTP 422 Unprocessable Entity: {"error": "invalid", "sent": {"card": '
        '"****1111", "pin": 1234}}'
    )
    # Masked, then cut: a number across the limit leaves no digits behind.
    near_end = status_error(answer(400, "x" * 70 + " 4111111111111111"), NOW)
    assert near_end is not None
    assert str(near_end) == "HTTP 400 Bad Request: " + "x" * 70 + " ****1111"


@pytest.mark.parametrize("status", [200, 302, 500, 503])
def test_status_error_quotes_no_body_but_a_4xx(status: int) -> None:
    error = status_error(answer(status, "echo of card 4111111111111111"), NOW, [201])
    assert error is not None
    assert str(error) == f"HTTP {status} {answer(status).reason_phrase}"


def test_status_error_success_and_expected() -> None:
    assert status_error(answer(204), NOW) is None
    assert status_error(answer(404), NOW, expect=[200, 404]) is None
    assert status_error(answer(200), NOW, expect=[201]) is not None


def test_builtins_register_under_their_names() -> None:
    assert [plugin.name for plugin in BUILTIN_ACTIONS] == [
        "mqtt",
        "slack",
        "http",
        "log",
    ]
    assert PluginRegistry.with_builtins().names() == ["http", "log", "mqtt", "slack"]
