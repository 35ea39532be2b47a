"""The `mqtt` action: publish a rendered message on a named broker connection."""

from __future__ import annotations

import asyncio
import json
from typing import Any, ClassVar, Literal

from pydantic import field_validator

from genea_automate.actions.common import (
    Issues,
    connection_issues,
    render_data,
    resolve_connection,
)
from genea_automate.actions.mqtt_client import MqttConnection, MqttLink
from genea_automate.config.endpoints import FrozenModel
from genea_automate.errors import ActionError, TemplateRenderError
from genea_automate.plugin import ActionPlugin, DeliveryContext, RenderContext
from genea_automate.rules.templates import TemplateData, TemplateStr, is_template

# Brokers drop a client that publishes to a topic with a control character
# (MQTT 5 spec 1.5.4), and paho would resend it on every reconnect.
_CONTROL = [*range(0x00, 0x20), *range(0x7F, 0xA0)]
_TOPIC_UNSAFE = str.maketrans(
    {**dict.fromkeys(_CONTROL, "_"), "/": "_", "+": "_", "#": "_"}
)


def escape_topic_value(value: str) -> str:
    """Keep an inserted value inside one topic level: no `/`, `+`, `#`, controls."""
    return value.translate(_TOPIC_UNSAFE)


def topic_problem(topic: str) -> str | None:
    """Why `topic` cannot be published to, or None."""
    if not topic:
        return "the MQTT topic is empty"
    if "+" in topic or "#" in topic:
        return f"the MQTT topic {topic!r} has a wildcard (+ or #); publish to one topic"
    if any(ord(char) in _CONTROL_SET for char in topic):
        return f"the MQTT topic {topic!r} contains a control character"
    return None


_CONTROL_SET = frozenset(_CONTROL)


class MqttOptions(FrozenModel):
    """Options of an `mqtt` step.

    `payload` is sent as is when it is a string template; a mapping, list,
    number or boolean is rendered leaf by leaf and sent as compact JSON; null
    sends an empty message (with `retain`, that clears the retained one).
    """

    topic: TemplateStr
    payload: TemplateData
    qos: Literal[0, 1, 2] = 1
    retain: bool = False
    connection: str | None = None

    @field_validator("topic")
    @classmethod
    def _check_static_topic(cls, value: str) -> str:
        problem = None if is_template(value) else topic_problem(value)
        if problem:
            raise ValueError(problem)
        return value


def render_payload(payload: Any, ctx: RenderContext) -> str:
    """The message text: a rendered string, or compact JSON of rendered data."""
    if payload is None:
        return ""
    if isinstance(payload, str):
        return ctx.render(payload)
    rendered = render_data(payload, ctx)
    return json.dumps(rendered, separators=(",", ":"), ensure_ascii=False)


class MqttAction(ActionPlugin[MqttOptions]):
    """Publish to an MQTT broker; QoS 1/2 count only once the broker confirms."""

    name: ClassVar[str] = "mqtt"
    Options: ClassVar[type[MqttOptions]] = MqttOptions
    Section: ClassVar[Any] = dict[str, MqttConnection]

    def __init__(self, section: dict[str, MqttConnection] | None = None) -> None:
        super().__init__(section or {})
        self.section: dict[str, MqttConnection]
        self._links: dict[str, MqttLink] = {}

    def check(self, options: MqttOptions) -> Issues:
        return connection_issues("mqtt", options.connection, self.section)

    def render(self, options: MqttOptions, ctx: RenderContext) -> dict[str, Any]:
        connection = resolve_connection("mqtt", options.connection, self.section)
        topic = ctx.render(options.topic, escape=escape_topic_value)
        problem = topic_problem(topic)
        if problem:
            raise TemplateRenderError(problem)
        return {
            "connection": connection,
            "topic": topic,
            "payload": render_payload(options.payload, ctx),
            "qos": options.qos,
            "retain": options.retain,
        }

    def ordering_key(self, payload: dict[str, Any]) -> str:
        return f"mqtt:{payload['connection']}:{payload['topic']}"

    def describe(self, payload: dict[str, Any]) -> str:
        return f"mqtt {payload['connection']} {payload['topic']}"

    def readiness(self) -> list[str]:
        return [
            f"MQTT connection {name!r} to {link.address} is not connected"
            for name, link in self._links.items()
            if not link.connected
        ]

    def link(self, name: str) -> MqttLink:
        """The live connection called `name`."""
        link = self._links.get(name)
        if link is None:
            raise ActionError(
                f"MQTT connection {name!r} is not defined any more (or not started)",
                retryable=False,
            )
        return link

    async def start(self) -> None:
        for name, config in self.section.items():
            if name not in self._links:  # kept by take_over, or started already
                link = MqttLink(name, config)
                link.start()
                self._links[name] = link

    async def take_over(self, previous: ActionPlugin[Any]) -> None:
        """Keep the connections whose settings did not change; no reconnect."""
        if not isinstance(previous, MqttAction):
            await super().take_over(previous)
            return
        links, previous._links = previous._links, {}
        kept = {n: ln for n, ln in links.items() if self.section.get(n) == ln.config}
        # The old connections go first: one with a fixed client id and its
        # replacement would knock each other off the broker.
        await asyncio.gather(*(ln.stop() for n, ln in links.items() if n not in kept))
        self._links = kept
        await self.start()

    async def deliver(self, payload: dict[str, Any], ctx: DeliveryContext) -> None:
        link = self.link(payload["connection"])
        message = payload["payload"].encode("utf-8")
        await link.publish(
            payload["topic"], message, payload["qos"], payload["retain"], ctx.timeout
        )

    async def stop(self) -> None:
        links, self._links = list(self._links.values()), {}
        await asyncio.gather(*(link.stop() for link in links))
