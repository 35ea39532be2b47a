"""Named MQTT connections: one paho client each, reconnecting by itself."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import secrets
import socket
import ssl
import sys
import threading
from collections.abc import Callable
from typing import Any
from urllib.parse import urlsplit

import paho.mqtt.client as mqtt
from paho.mqtt.enums import CallbackAPIVersion, MQTTErrorCode
from paho.mqtt.reasoncodes import ReasonCode
from pydantic import Field, FilePath, SecretStr, field_validator, model_validator

from genea_automate.config.endpoints import FrozenModel
from genea_automate.errors import ActionError, TargetDownError

logger = logging.getLogger(__name__)

DEFAULT_PORTS = {"mqtt": 1883, "mqtts": 8883}
STOP_TIMEOUT = 2.0
_NO_WAITER = object()


def default_client_id() -> str:
    """A client id no other daemon uses: the broker drops the older of two."""
    return f"genea-automate-{socket.gethostname()}-{os.getpid()}-{secrets.token_hex(2)}"


class MqttTls(FrozenModel):
    """TLS settings of an `mqtts://` connection; the system CAs by default."""

    ca_file: FilePath | None = None
    cert_file: FilePath | None = None
    key_file: FilePath | None = None
    insecure: bool = False


class MqttConnection(FrozenModel):
    """One broker connection, as written under the top-level `mqtt:` key."""

    url: str
    client_id: str | None = None
    username: str | None = None
    password: SecretStr | None = None
    keepalive: int = Field(default=30, ge=5, le=65535)
    tls: MqttTls | None = None
    availability_topic: str | None = None

    @field_validator("url")
    @classmethod
    def _check_url(cls, value: str) -> str:
        parts = urlsplit(value)
        if parts.username or parts.password:
            raise ValueError(
                "put the user name and password in `username` and `password`, "
                "not in the url"
            )
        if parts.scheme not in DEFAULT_PORTS or not parts.hostname:
            raise ValueError(
                f"an MQTT url looks like 'mqtt://host:1883' or 'mqtts://host:8883', "
                f"got {value!r}"
            )
        if parts.path not in ("", "/") or parts.query or parts.fragment:
            raise ValueError(f"an MQTT url has only a host and a port, got {value!r}")
        _ = parts.port  # raises ValueError on a port that is not a number
        return value

    @field_validator("availability_topic")
    @classmethod
    def _check_availability_topic(cls, value: str | None) -> str | None:
        if value is not None and (not value or "+" in value or "#" in value):
            raise ValueError(
                f"availability_topic must be one topic, without + or #, got {value!r}"
            )
        return value

    @model_validator(mode="after")
    def _check_tls_and_login(self) -> MqttConnection:
        if self.tls is not None and not self.uses_tls:
            raise ValueError(
                "`tls` is set but the url starts with mqtt://; use mqtts://"
            )
        if self.password is not None and self.username is None:
            raise ValueError("a `password` needs a `username` too")
        return self

    @property
    def uses_tls(self) -> bool:
        return urlsplit(self.url).scheme == "mqtts"

    @property
    def host(self) -> str:
        return urlsplit(self.url).hostname or ""

    @property
    def port(self) -> int:
        parts = urlsplit(self.url)
        return parts.port or DEFAULT_PORTS[parts.scheme]


def _os_reason(exc: BaseException | None) -> str:
    """'connection refused' from an OSError, in plain words."""
    if isinstance(exc, OSError) and exc.strerror:
        return exc.strerror.lower()
    return str(exc).lower() if exc else "cannot connect"


def _settle(waiter: asyncio.Future[None], reason: ReasonCode) -> None:
    """Resolve a publish waiter from the broker's PUBACK/PUBCOMP reason."""
    if waiter.done():
        return
    if reason.is_failure:
        message = f"the broker refused the message: {str(reason).lower()}"
        waiter.set_exception(ActionError(message, retryable=False))
    else:
        waiter.set_result(None)


class MqttLink:
    """One named connection: a paho client on its own thread, seen from asyncio."""

    def __init__(self, name: str, config: MqttConnection) -> None:
        self.name = name
        self.config = config
        self.client_id = config.client_id or default_client_id()
        self._client: mqtt.Client | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._up = asyncio.Event()
        self._lock = threading.Lock()
        self._waiters: dict[int, asyncio.Future[None] | None] = {}
        self._early: dict[int, ReasonCode] = {}
        self._down_reported = False
        self._stopping = False

    @property
    def address(self) -> str:
        return f"{self.config.host}:{self.config.port}"

    @property
    def connected(self) -> bool:
        """Whether the client holds a live session with the broker right now."""
        return self._client is not None and self._client.is_connected()

    def start(self) -> None:
        """Start connecting in the background; never fails on a broker that is down."""
        self._loop = asyncio.get_running_loop()
        self._up = asyncio.Event()
        self._stopping = False
        self._client = self._make_client()
        self._client.connect_async(
            self.config.host, self.config.port, self.config.keepalive
        )
        self._client.loop_start()

    def _make_client(self) -> mqtt.Client:
        config = self.config
        client = mqtt.Client(CallbackAPIVersion.VERSION2, client_id=self.client_id)
        client.reconnect_delay_set(1, 30)
        # Unlimited in-flight messages, so that `_withdraw` needs no counters.
        client.max_inflight_messages_set(0)
        if config.username is not None:
            password = config.password.get_secret_value() if config.password else None
            client.username_pw_set(config.username, password)
        if config.uses_tls:
            self._set_tls(client, config.tls or MqttTls())
        if config.availability_topic:
            client.will_set(config.availability_topic, "offline", qos=1, retain=True)
        client.on_connect = self._on_connect
        client.on_connect_fail = self._on_connect_fail
        client.on_disconnect = self._on_disconnect
        client.on_publish = self._on_publish
        return client

    @staticmethod
    def _set_tls(client: mqtt.Client, tls: MqttTls) -> None:
        client.tls_set(
            ca_certs=str(tls.ca_file) if tls.ca_file else None,
            certfile=str(tls.cert_file) if tls.cert_file else None,
            keyfile=str(tls.key_file) if tls.key_file else None,
            cert_reqs=ssl.CERT_NONE if tls.insecure else ssl.CERT_REQUIRED,
        )
        client.tls_insecure_set(tls.insecure)

    # The callbacks below run on paho's network thread. They reach asyncio only
    # through `_call`, which hands work to the event loop thread-safely.

    def _call(self, func: Callable[..., Any], *args: Any) -> None:
        if self._loop is None:
            return
        with contextlib.suppress(RuntimeError):  # a closed loop: nobody waits
            self._loop.call_soon_threadsafe(func, *args)

    def _on_connect(
        self,
        client: mqtt.Client,
        userdata: Any,
        flags: Any,
        reason: ReasonCode,
        properties: Any,
    ) -> None:
        if reason.is_failure:
            self._report_down(str(reason).lower())
            return
        self._down_reported = False
        logger.info("MQTT connection %r connected to %s", self.name, self.address)
        topic = self.config.availability_topic
        if topic:
            info = client.publish(topic, "online", qos=1, retain=True)
            if info.rc == MQTTErrorCode.MQTT_ERR_SUCCESS:
                self._register(info.mid, None)
        self._call(self._up.set)

    def _on_connect_fail(self, client: mqtt.Client, userdata: Any) -> None:
        # paho calls this from inside its `except OSError:` block and does not
        # pass the error on, so the reason is the exception being handled.
        self._report_down(_os_reason(sys.exc_info()[1]))

    def _on_disconnect(
        self,
        client: mqtt.Client,
        userdata: Any,
        flags: Any,
        reason: ReasonCode,
        properties: Any,
    ) -> None:
        self._call(self._up.clear)
        if self._stopping:
            return
        text = str(reason)
        self._report_down(
            "connection lost" if text == "Unspecified error" else text.lower()
        )

    def _report_down(self, reason: str) -> None:
        """Warn once per outage; the retries after it are only debug noise."""
        if self._down_reported:
            logger.debug("MQTT connection %r still down: %s", self.name, reason)
            return
        self._down_reported = True
        logger.warning(
            "MQTT connection %r (%s) is down: %s; retrying",
            self.name,
            self.address,
            reason,
        )

    def _on_publish(
        self,
        client: mqtt.Client,
        userdata: Any,
        mid: int,
        reason: ReasonCode,
        properties: Any,
    ) -> None:
        # The PUBACK can arrive before `publish()` returned the mid to the
        # asyncio side and it was registered. Such an early answer is parked
        # in `_early` and picked up by `_register`. Holding one lock around
        # `publish()` and here instead would deadlock: paho calls this while
        # holding its own message lock, which `publish()` takes too.
        with self._lock:
            waiter = self._waiters.pop(mid, _NO_WAITER)
            if waiter is _NO_WAITER:
                self._early[mid] = reason
                return
        if waiter is not None:
            self._call(_settle, waiter, reason)

    def _register(
        self, mid: int, waiter: asyncio.Future[None] | None
    ) -> ReasonCode | None:
        """Await the answer to `mid`, or return it if it came already."""
        with self._lock:
            early = self._early.pop(mid, None)
            if early is None:
                self._waiters[mid] = waiter
            return early

    def _withdraw(self, mid: int) -> None:
        """Take back a message nobody waits for any more."""
        # paho keeps unacknowledged messages and sends them again after a
        # reconnect, while the outbox retries a failed delivery too: two
        # copies. paho has no public call to drop one, hence the private store.
        if self._client is not None:
            with self._client._out_message_mutex:
                self._client._out_messages.pop(mid, None)
        with self._lock:
            self._waiters.pop(mid, None)
            self._early.pop(mid, None)

    async def publish(
        self, topic: str, payload: bytes, qos: int, retain: bool, timeout: float
    ) -> None:
        """Publish once connected, and return once the broker has it (QoS 1/2)."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        await self._wait_up(timeout)
        waiter: asyncio.Future[None] = loop.create_future()
        mid = self._send(topic, payload, qos, retain, waiter)
        try:
            await asyncio.wait_for(waiter, max(0.0, deadline - loop.time()))
        except TimeoutError:
            raise ActionError(
                f"MQTT connection {self.name!r} ({self.address}): no acknowledgement "
                f"from the broker within {timeout:g}s",
                retryable=True,
            ) from None
        finally:
            if waiter.cancelled():
                self._withdraw(mid)

    async def _wait_up(self, timeout: float) -> None:
        if self._client is None:
            raise ActionError(f"MQTT connection {self.name!r} is not started")
        try:
            await asyncio.wait_for(self._up.wait(), timeout)
        except TimeoutError:
            raise TargetDownError(
                f"MQTT connection {self.name!r} ({self.address}) is down; "
                f"not connected within {timeout:g}s"
            ) from None

    def _send(
        self,
        topic: str,
        payload: bytes,
        qos: int,
        retain: bool,
        waiter: asyncio.Future[None],
    ) -> int:
        """Hand a message to paho, only while connected so it never queues one."""
        client = self._client
        if client is None or not client.is_connected():
            raise TargetDownError(f"MQTT connection {self.name!r} was lost")
        try:
            info = client.publish(topic, payload, qos=qos, retain=retain)
        except ValueError as exc:
            raise ActionError(
                f"cannot publish to {topic!r}: {exc}", retryable=False
            ) from exc
        if info.rc != MQTTErrorCode.MQTT_ERR_SUCCESS:
            self._withdraw(info.mid)
            reason = mqtt.error_string(info.rc)
            raise ActionError(
                f"MQTT connection {self.name!r}: {reason}", retryable=True
            )
        early = self._register(info.mid, waiter)
        if early is not None:
            _settle(waiter, early)
        return info.mid

    async def stop(self) -> None:
        """Say `offline` if there is an availability topic, then disconnect."""
        client = self._client
        if client is None:
            return
        self._stopping = True
        topic = self.config.availability_topic
        if topic and client.is_connected():
            # A clean DISCONNECT makes the broker drop the will, so say it here.
            try:
                await self.publish(topic, b"offline", 1, True, STOP_TIMEOUT)
            except ActionError as exc:
                logger.warning(
                    "MQTT connection %r could not publish 'offline': %s", self.name, exc
                )
        client.disconnect()
        await asyncio.to_thread(client.loop_stop)
        self._client = None
        with self._lock:
            self._waiters.clear()
            self._early.clear()
        logger.info("MQTT connection %r closed", self.name)
