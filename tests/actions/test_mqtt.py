"""The mqtt action's options and rendering (no broker needed here)."""

from __future__ import annotations

import re
from typing import Any

import pytest
from paho.mqtt.packettypes import PacketTypes
from paho.mqtt.reasoncodes import ReasonCode
from pydantic import ValidationError

from genea_automate.actions.mqtt import MqttAction, MqttOptions, escape_topic_value
from genea_automate.actions.mqtt_client import MqttConnection, MqttLink
from genea_automate.errors import ActionError, TemplateRenderError
from genea_automate.events.model import Door

from .conftest import MakeContext, MakeRenderer

SECTION = {"default": MqttConnection(url="mqtt://127.0.0.1:1883")}


def options(**values: Any) -> MqttOptions:
    return MqttOptions.model_validate(
        {"topic": "office/coffee/set", "payload": "ON"} | values
    )


def error_messages(caught: pytest.ExceptionInfo[ValidationError]) -> list[str]:
    return [error["msg"] for error in caught.value.errors()]


def test_mqtt_render_string_payload(make_renderer: MakeRenderer) -> None:
    payload = MqttAction(SECTION).render(
        options(payload="{{ actor.name }} is in", retain=True), make_renderer()
    )
    assert payload == {
        "connection": "default",
        "topic": "office/coffee/set",
        "payload": "Ada Lovelace is in",
        "qos": 1,
        "retain": True,
    }


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        (
            {"who": "{{ actor.name }}", "n": 2, "on": True},
            '{"who":"Ada Lovelace","n":2,"on":true}',
        ),
        (["{{ door.name }}", None], '["Front Door",null]'),
        (1, "1"),
        (False, "false"),
        (None, ""),
    ],
    ids=["mapping", "list", "number", "boolean", "null"],
)
def test_mqtt_render_structured_payload_as_compact_json(
    make_renderer: MakeRenderer, value: Any, expected: str
) -> None:
    payload = MqttAction(SECTION).render(options(payload=value), make_renderer())
    assert payload["payload"] == expected


def test_mqtt_topic_values_cannot_change_levels(make_renderer: MakeRenderer) -> None:
    door = Door(name="a/b+c#d\0e")
    payload = MqttAction(SECTION).render(
        options(topic="doors/{{ door.name }}/state"), make_renderer(door=door)
    )
    assert payload["topic"] == "doors/a_b_c_d_e/state"
    assert escape_topic_value("x/+/#") == "x____"


def test_mqtt_render_allows_an_inserted_level(make_renderer: MakeRenderer) -> None:
    payload = MqttAction(SECTION).render(
        options(topic="doors/{{ door.uuid }}"), make_renderer()
    )
    assert payload["topic"] == "doors/d-1"


@pytest.mark.parametrize(
    ("topic", "message"),
    [
        ("{{ door.uuid }}", "the MQTT topic is empty"),
        (
            "doors/{% if true %}+{% endif %}",
            "the MQTT topic 'doors/+' has a wildcard (+ or #); publish to one topic",
        ),
    ],
    ids=["empty", "wildcard-in-template-text"],
)
def test_mqtt_render_refuses_bad_topics(
    make_renderer: MakeRenderer, topic: str, message: str
) -> None:
    with pytest.raises(TemplateRenderError) as caught:
        MqttAction(SECTION).render(options(topic=topic), make_renderer(door=Door()))
    assert str(caught.value) == message


@pytest.mark.parametrize(
    ("values", "message"),
    [
        (
            {"topic": "doors/+/state"},
            "Value error, the MQTT topic 'doors/+/state' has a "
            "wildcard (+ or #); publish to one topic",
        ),
        ({"topic": ""}, "Value error, the MQTT topic is empty"),
        (
            {"topic": "a/{{ b }"},
            "Value error, template syntax error at line 1: unexpected '}'",
        ),
        ({"qos": 3}, "Input should be 0, 1 or 2"),
        ({"retained": True}, "Extra inputs are not permitted"),
    ],
    ids=["wildcard", "empty", "syntax", "qos", "unknown-key"],
)
def test_mqtt_options_are_checked_at_load_time(
    values: dict[str, Any], message: str
) -> None:
    with pytest.raises(ValidationError) as caught:
        options(**values)
    assert error_messages(caught) == [message]


def test_mqtt_check_reports_connection_names() -> None:
    plugin = MqttAction({**SECTION, "backup": SECTION["default"]})
    assert plugin.check(options()) == [
        (
            (),
            "several mqtt connections are defined ('backup', 'default'); "
            "choose one with `connection:`",
        )
    ]
    assert plugin.check(options(connection="defualt")) == [
        (("connection",), "unknown mqtt connection 'defualt' (did you mean 'default'?)")
    ]
    assert plugin.check(options(connection="backup")) == []


def test_mqtt_ordering_key_and_description() -> None:
    payload = {"connection": "default", "topic": "office/coffee/set"}
    plugin = MqttAction(SECTION)
    assert plugin.ordering_key(payload) == "mqtt:default:office/coffee/set"
    assert plugin.describe(payload) == "mqtt default office/coffee/set"


async def test_mqtt_deliver_to_unknown_connection_is_final(
    make_ctx: MakeContext,
) -> None:
    payload = {
        "connection": "gone",
        "topic": "t",
        "payload": "x",
        "qos": 1,
        "retain": False,
    }
    with pytest.raises(ActionError) as caught:
        await MqttAction(SECTION).deliver(payload, make_ctx())
    assert caught.value.retryable is False


@pytest.mark.parametrize(
    ("url", "host", "port", "tls"),
    [
        ("mqtt://broker.local", "broker.local", 1883, False),
        ("mqtts://broker.local", "broker.local", 8883, True),
        ("mqtt://127.0.0.1:11883/", "127.0.0.1", 11883, False),
    ],
    ids=["mqtt", "mqtts", "port"],
)
def test_mqtt_connection_url(url: str, host: str, port: int, tls: bool) -> None:
    connection = MqttConnection(url=url)
    assert (connection.host, connection.port, connection.uses_tls) == (host, port, tls)


@pytest.mark.parametrize(
    ("values", "message"),
    [
        (
            {"url": "tcp://broker:1883"},
            "Value error, an MQTT url looks like 'mqtt://host:1883' "
            "or 'mqtts://host:8883', got 'tcp://broker:1883'",
        ),
        (
            {"url": "mqtt://u:secret@broker"},
            "Value error, put the user name and password in "
            "`username` and `password`, not in the url",
        ),
        (
            {"url": "mqtt://broker/x"},
            "Value error, an MQTT url has only a host and a port, "
            "got 'mqtt://broker/x'",
        ),
        (
            {"url": "mqtt://broker", "tls": {}},
            "Value error, `tls` is set but the url starts with mqtt://; use mqtts://",
        ),
        (
            {"url": "mqtt://broker", "password": "p"},
            "Value error, a `password` needs a `username` too",
        ),
        (
            {"url": "mqtt://broker", "availability_topic": "a/#"},
            "Value error, availability_topic must be one topic, without + or #, "
            "got 'a/#'",
        ),
    ],
    ids=[
        "scheme",
        "userinfo",
        "path",
        "tls-without-mqtts",
        "password-alone",
        "wildcard",
    ],
)
def test_mqtt_connection_is_checked(values: dict[str, Any], message: str) -> None:
    with pytest.raises(ValidationError) as caught:
        MqttConnection.model_validate(values)
    assert error_messages(caught) == [message]


def test_mqtt_password_is_never_shown() -> None:
    connection = MqttConnection(url="mqtt://broker", username="u", password="hunter2")
    assert "hunter2" not in repr(connection)


def test_mqtt_default_client_ids_differ_per_connection() -> None:
    first = MqttLink("a", SECTION["default"]).client_id
    second = MqttLink("b", SECTION["default"]).client_id
    assert re.fullmatch(r"genea-automate-.+-\d+-[0-9a-f]{4}", first)
    assert first != second
    assert (
        MqttLink("c", MqttConnection(url="mqtt://h", client_id="mine")).client_id
        == "mine"
    )


def test_mqtt_puback_before_registration_is_kept() -> None:
    # paho's thread may see the PUBACK before the asyncio side registers the mid.
    link = MqttLink("a", SECTION["default"])
    success = ReasonCode(PacketTypes.PUBACK, "Success")
    link._on_publish(None, None, 7, success, None)  # type: ignore[arg-type]
    assert link._register(7, None) == success
    assert link._register(8, None) is None
