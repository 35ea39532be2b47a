"""The `log` action: write a rendered line to the daemon's own log."""

from __future__ import annotations

import logging
from typing import Any, ClassVar, Literal

from genea_automate.config.endpoints import FrozenModel
from genea_automate.plugin import ActionPlugin, DeliveryContext, RenderContext
from genea_automate.rules.templates import TemplateStr

logger = logging.getLogger(__name__)

LEVELS = {"info": logging.INFO, "warning": logging.WARNING, "error": logging.ERROR}


class LogOptions(FrozenModel):
    """Options of a `log` step."""

    message: TemplateStr
    level: Literal["info", "warning", "error"] = "info"


class LogAction(ActionPlugin[LogOptions]):
    """Log a message to `genea_automate.actions.log`, with event and rule ids."""

    name: ClassVar[str] = "log"
    Options: ClassVar[type[LogOptions]] = LogOptions

    def render(self, options: LogOptions, ctx: RenderContext) -> dict[str, Any]:
        return {"message": ctx.render(options.message), "level": options.level}

    def describe(self, payload: dict[str, Any]) -> str:
        return f"log {payload['level']}"

    async def deliver(self, payload: dict[str, Any], ctx: DeliveryContext) -> None:
        logger.log(
            LEVELS[payload["level"]],
            "%s",
            payload["message"],
            extra={"event_id": ctx.event_id, "rule_id": ctx.rule_id},
        )
