"""The `slack` action: post a message through a named Slack incoming webhook."""

from __future__ import annotations

import hashlib
from typing import Any, ClassVar
from urllib.parse import urlsplit

import httpx
from pydantic import SecretStr, field_validator

from genea_automate.actions.common import (
    Issues,
    connection_issues,
    resolve_connection,
    send_request,
)
from genea_automate.config.endpoints import FrozenModel
from genea_automate.errors import ActionError
from genea_automate.plugin import ActionPlugin, DeliveryContext, RenderContext
from genea_automate.rules.templates import TemplateStr


def escape_slack_text(value: str) -> str:
    """Escape what Slack reads as markup (`&`, `<`, `>`) in an inserted value."""
    return value.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


class SlackConnection(FrozenModel):
    """One incoming webhook, under the top-level `slack:` key. The URL is a secret."""

    webhook_url: SecretStr

    @field_validator("webhook_url")
    @classmethod
    def _check_url(cls, value: SecretStr) -> SecretStr:
        parts = urlsplit(value.get_secret_value())
        if parts.scheme not in ("https", "http") or not parts.hostname:
            # Never echo the value: the webhook URL is the credential.
            raise ValueError(
                "webhook_url must be a URL like https://hooks.slack.com/services/..., "
                "as Slack gives it for an incoming webhook"
            )
        return value


class SlackOptions(FrozenModel):
    """Options of a `slack` step."""

    text: TemplateStr
    connection: str | None = None


class SlackAction(ActionPlugin[SlackOptions]):
    """Post to Slack; event values cannot forge links or mentions."""

    name: ClassVar[str] = "slack"
    Options: ClassVar[type[SlackOptions]] = SlackOptions
    Section: ClassVar[Any] = dict[str, SlackConnection]
    min_interval: ClassVar[float] = 1.0  # Slack: about one message a second

    def __init__(self, section: dict[str, SlackConnection] | None = None) -> None:
        super().__init__(section or {})
        self.section: dict[str, SlackConnection]
        self._client: httpx.AsyncClient | None = None

    def check(self, options: SlackOptions) -> Issues:
        return connection_issues("slack", options.connection, self.section)

    def render(self, options: SlackOptions, ctx: RenderContext) -> dict[str, Any]:
        connection = resolve_connection("slack", options.connection, self.section)
        text = ctx.render(options.text, escape=escape_slack_text)
        return {"connection": connection, "text": text}

    def ordering_key(self, payload: dict[str, Any]) -> str:
        # One key per webhook URL, so that connections sharing a URL share its
        # pacing too. Hashed: the URL is the credential, and keys are stored.
        url = self.section[payload["connection"]].webhook_url.get_secret_value()
        return "slack:" + hashlib.sha256(url.encode()).hexdigest()[:16]

    def describe(self, payload: dict[str, Any]) -> str:
        return f"slack {payload['connection']}"

    async def start(self) -> None:
        self._client = httpx.AsyncClient()

    async def deliver(self, payload: dict[str, Any], ctx: DeliveryContext) -> None:
        name = payload["connection"]
        connection = self.section.get(name)
        if connection is None:
            raise ActionError(
                f"Slack connection {name!r} is not defined any more", retryable=False
            )
        if self._client is None:
            self._client = httpx.AsyncClient()
        request = self._client.build_request(
            "POST",
            connection.webhook_url.get_secret_value(),
            json={"text": payload["text"]},
            timeout=ctx.timeout,
        )
        await send_request(self._client, request, ctx.clock.now())

    async def stop(self) -> None:
        if self._client is not None:
            await self._client.aclose()
            self._client = None
