"""The slack action: escaping, and what each webhook answer means."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import pytest
from pydantic import ValidationError

from genea_automate.actions.slack import SlackAction, SlackConnection, SlackOptions
from genea_automate.errors import ActionError
from genea_automate.events.model import Location
from tests.support.http_server import LoopbackHttpServer, Reply
from tests.support.mosquitto import free_port

from .conftest import MakeContext, MakeRenderer

HOOK_PATH = "/services/T000/B000/secret-token"


@pytest.fixture
async def slack(http_server: LoopbackHttpServer) -> AsyncIterator[SlackAction]:
    connection = SlackConnection(webhook_url=http_server.url + HOOK_PATH)
    plugin = SlackAction({"ops": connection})
    await plugin.start()
    yield plugin
    await plugin.stop()


def options(**values: Any) -> SlackOptions:
    return SlackOptions.model_validate({"text": "hello"} | values)


def test_slack_escapes_event_values_not_template_markup(
    slack: SlackAction, make_renderer: MakeRenderer
) -> None:
    text = "Site {{ location.name }}: <https://example.org|dashboard>"
    renderer = make_renderer(location=Location(name="R&D <Lab>"))
    assert slack.render(options(text=text), renderer) == {
        "connection": "ops",
        "text": "Site R&amp;D &lt;Lab&gt;: <https://example.org|dashboard>",
    }


def test_slack_event_values_cannot_forge_mentions(
    slack: SlackAction, make_renderer: MakeRenderer
) -> None:
    renderer = make_renderer(location=Location(name="<!channel>"))
    payload = slack.render(options(text="{{ location.name }}"), renderer)
    assert payload["text"] == "&lt;!channel&gt;"


async def test_slack_posts_json_text(
    slack: SlackAction, http_server: LoopbackHttpServer, make_ctx: MakeContext
) -> None:
    await slack.deliver({"connection": "ops", "text": "Coffee is on"}, make_ctx())
    [request] = http_server.wait_for_requests(1)
    assert (request.method, request.path) == ("POST", HOOK_PATH)
    assert request.json() == {"text": "Coffee is on"}


@pytest.mark.parametrize(
    ("reply", "message", "retryable", "retry_after"),
    [
        (
            Reply(429, "rate_limited", {"Retry-After": "1"}),
            "HTTP 429 Too Many Requests: rate_limited",
            True,
            1.0,
        ),
        (
            Reply(503, "", {"Retry-After": "30"}),
            "HTTP 503 Service Unavailable",
            True,
            30.0,
        ),
        (Reply(500, "oops"), "HTTP 500 Internal Server Error", True, None),
        (Reply(404, "no_service"), "HTTP 404 Not Found: no_service", False, None),
        (
            Reply(400, "invalid_payload"),
            "HTTP 400 Bad Request: invalid_payload",
            False,
            None,
        ),
    ],
    ids=["429", "503", "500", "404", "400"],
)
async def test_slack_answers_map_to_errors(
    slack: SlackAction,
    http_server: LoopbackHttpServer,
    make_ctx: MakeContext,
    reply: Reply,
    message: str,
    retryable: bool,
    retry_after: float | None,
) -> None:
    http_server.reply(reply)
    with pytest.raises(ActionError) as caught:
        await slack.deliver({"connection": "ops", "text": "x"}, make_ctx())
    error = caught.value
    assert (str(error), error.retryable, error.retry_after) == (
        message,
        retryable,
        retry_after,
    )


async def test_slack_network_error_is_retryable_and_hides_the_url(
    make_ctx: MakeContext,
) -> None:
    url = f"http://127.0.0.1:{free_port()}{HOOK_PATH}"
    plugin = SlackAction({"ops": SlackConnection(webhook_url=url)})
    await plugin.start()
    try:
        with pytest.raises(ActionError) as caught:
            await plugin.deliver({"connection": "ops", "text": "x"}, make_ctx())
    finally:
        await plugin.stop()
    assert caught.value.retryable is True
    assert "secret-token" not in str(caught.value)
    assert str(caught.value).startswith("ConnectError: ")


def test_slack_describe_and_ordering_key_hold_no_secret(slack: SlackAction) -> None:
    payload = {"connection": "ops", "text": "x"}
    assert slack.describe(payload) == "slack ops"
    key = slack.ordering_key(payload)
    assert key.startswith("slack:") and "secret-token" not in key


def test_slack_connections_sharing_a_webhook_share_an_ordering_key() -> None:
    url = "https://hooks.slack.com/services/T000/B000/secret-token"
    plugin = SlackAction(
        {
            "ops": SlackConnection(webhook_url=url),
            "alerts": SlackConnection(webhook_url=url),
            "other": SlackConnection(webhook_url=url + "2"),
        }
    )
    keys = [plugin.ordering_key({"connection": n}) for n in ("ops", "alerts", "other")]
    assert keys[0] == keys[1] != keys[2]


def test_slack_webhook_url_is_checked_without_echoing_it() -> None:
    with pytest.raises(ValidationError) as caught:
        SlackConnection(webhook_url="hooks.slack.com/services/secret-token")
    [error] = caught.value.errors()
    assert error["msg"] == (
        "Value error, webhook_url must be a URL like "
        "https://hooks.slack.com/services/..., as Slack gives it for an incoming "
        "webhook"
    )
    assert "secret-token" not in repr(
        SlackConnection(webhook_url="https://h/secret-token")
    )


def test_slack_check_reports_connection_names(slack: SlackAction) -> None:
    assert slack.check(options()) == []
    assert slack.check(options(connection="opz")) == [
        (("connection",), "unknown slack connection 'opz' (did you mean 'ops'?)")
    ]
