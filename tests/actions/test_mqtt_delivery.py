"""The mqtt action against a real Mosquitto: delivery, outages, availability."""

from __future__ import annotations

import asyncio
import logging
import socket
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any

import pytest

from genea_automate.actions.mqtt import MqttAction, MqttOptions
from genea_automate.actions.mqtt_client import MqttConnection
from genea_automate.errors import ActionError
from genea_automate.events.model import Door
from tests.support.mosquitto import Mosquitto, Subscriber

from .conftest import MakeContext, MakeRenderer


@pytest.fixture
async def started() -> AsyncIterator[Callable[..., Any]]:
    """Start MqttAction plugins on a broker; stop them all after the test."""
    plugins: list[MqttAction] = []

    async def start(broker: Mosquitto, **connection: Any) -> MqttAction:
        config = MqttConnection(url=broker.url, **connection)
        plugin = MqttAction({"default": config})
        await plugin.start()
        plugins.append(plugin)
        return plugin

    yield start
    for plugin in plugins:
        await plugin.stop()


def render(plugin: MqttAction, renderer: Any, **values: Any) -> dict[str, Any]:
    options = MqttOptions.model_validate(
        {"topic": "office/coffee/set", "payload": "ON"} | values
    )
    return plugin.render(options, renderer)


async def test_mqtt_publish_reaches_a_subscriber(
    mosquitto: Mosquitto,
    started: Any,
    make_renderer: MakeRenderer,
    make_ctx: MakeContext,
) -> None:
    plugin = await started(mosquitto)
    with Subscriber(mosquitto.host, mosquitto.port, "doors/#") as subscriber:
        payload = render(
            plugin,
            make_renderer(door=Door(name="Lab/1")),
            topic="doors/{{ door.name }}/opened",
            payload={"by": "{{ actor.name }}"},
        )
        await plugin.deliver(payload, make_ctx())
        message = subscriber.get()
    assert message.topic == "doors/Lab_1/opened"
    assert message.payload == b'{"by":"Ada Lovelace"}'
    assert message.qos == 1


async def test_mqtt_qos1_counts_only_after_puback(
    mosquitto: Mosquitto,
    started: Any,
    make_renderer: MakeRenderer,
    make_ctx: MakeContext,
) -> None:
    plugin = await started(mosquitto)
    await plugin.link("default").publish("warmup", b"", 1, False, 5.0)
    mosquitto.pause()
    try:
        # QoS 0 is done once written to the socket; QoS 1 needs the broker's PUBACK.
        await plugin.deliver(
            render(plugin, make_renderer(), qos=0), make_ctx(timeout=0.5)
        )
        with pytest.raises(ActionError) as caught:
            await plugin.deliver(render(plugin, make_renderer()), make_ctx(timeout=0.5))
    finally:
        mosquitto.resume()
    assert caught.value.retryable is True
    assert str(caught.value) == (
        f"MQTT connection 'default' ({mosquitto.host}:{mosquitto.port}): "
        "no acknowledgement from the broker within 0.5s"
    )


async def test_mqtt_broker_down_at_start_then_up(
    tmp_path: Path,
    started: Any,
    make_renderer: MakeRenderer,
    make_ctx: MakeContext,
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.INFO, logger="genea_automate.actions.mqtt_client")
    broker = Mosquitto(tmp_path / "later")
    address = f"{broker.host}:{broker.port}"
    plugin = await started(broker)

    with pytest.raises(ActionError) as caught:
        await plugin.deliver(render(plugin, make_renderer()), make_ctx(timeout=0.5))
    assert caught.value.retryable is True
    assert str(caught.value) == (
        f"MQTT connection 'default' ({address}) is down; not connected within 0.5s"
    )
    assert (
        f"MQTT connection 'default' ({address}) is down: connection refused; retrying"
    ) in caplog.messages

    broker.start()
    try:
        with Subscriber(broker.host, broker.port, "office/#") as subscriber:
            await plugin.deliver(render(plugin, make_renderer()), make_ctx(timeout=15))
            assert subscriber.get().payload == b"ON"
        assert f"MQTT connection 'default' connected to {address}" in caplog.messages
    finally:
        await plugin.stop()
        broker.stop()


async def test_mqtt_reconnects_after_a_broker_restart(
    mosquitto: Mosquitto,
    started: Any,
    make_renderer: MakeRenderer,
    make_ctx: MakeContext,
) -> None:
    plugin = await started(mosquitto)
    await plugin.link("default").publish("warmup", b"", 1, False, 5.0)
    mosquitto.stop()
    mosquitto.start()
    with Subscriber(mosquitto.host, mosquitto.port, "office/#") as subscriber:
        await plugin.deliver(render(plugin, make_renderer()), make_ctx(timeout=15))
        assert subscriber.get().payload == b"ON"


async def test_mqtt_availability_online_will_and_offline(
    mosquitto: Mosquitto, started: Any
) -> None:
    with Subscriber(mosquitto.host, mosquitto.port, "genea/status") as subscriber:
        plugin = await started(mosquitto, availability_topic="genea/status")
        assert subscriber.get().payload == b"online"

        # Cutting the socket is not a clean DISCONNECT: the broker sends the will.
        sock = plugin.link("default")._client.socket()
        sock.shutdown(socket.SHUT_RDWR)
        assert subscriber.get().payload == b"offline"
        assert subscriber.get().payload == b"online"  # reconnected by itself

        await plugin.stop()
        # A reconnect may announce `online` more than once (harmless: it is
        # retained state); what matters is that `offline` comes last.
        after_stop = [subscriber.get().payload]
        while after_stop[-1] == b"online":
            after_stop.append(subscriber.get().payload)
        assert after_stop[-1] == b"offline"

    with Subscriber(mosquitto.host, mosquitto.port, "genea/status") as late:
        retained = late.get()
    assert (retained.payload, retained.retain) == (b"offline", True)


async def test_mqtt_stop_without_broker_returns(tmp_path: Path) -> None:
    broker = Mosquitto(tmp_path / "never")
    plugin = MqttAction({"default": MqttConnection(url=broker.url)})
    await plugin.start()
    await asyncio.wait_for(plugin.stop(), timeout=5)
