"""An example local plugin: append one rendered line to a file per event.

    then:
      - append_line:
          path: /var/log/arrivals.txt
          line: "{{ event.time }} {{ actor.name }}"

Drop a module like this one into the `plugins/` folder next to the rules file;
every `ActionPlugin` subclass in it is registered under its `name`.
"""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any, ClassVar

from pydantic import BaseModel, ConfigDict

from genea_automate.errors import ActionError
from genea_automate.plugin import ActionPlugin, DeliveryContext, RenderContext
from genea_automate.rules.templates import TemplateStr


def one_line(value: str) -> str:
    """Keep an inserted value on the line: an event cannot add lines of its own."""
    return value.replace("\r", " ").replace("\n", " ")


class AppendLineOptions(BaseModel):
    """Options of an `append_line` step; `path` is fixed, `line` is a template."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    path: Path
    line: TemplateStr


def _append(path: Path, line: str) -> None:
    with path.open("a", encoding="utf-8") as file:
        file.write(line + "\n")


class AppendLineAction(ActionPlugin[AppendLineOptions]):
    """Append `line`, rendered against the event, to the file at `path`."""

    name: ClassVar[str] = "append_line"
    Options: ClassVar[type[AppendLineOptions]] = AppendLineOptions

    def render(self, options: AppendLineOptions, ctx: RenderContext) -> dict[str, Any]:
        return {
            "path": str(options.path),
            "line": ctx.render(options.line, escape=one_line),
        }

    def ordering_key(self, payload: dict[str, Any]) -> str:
        return f"append_line:{payload['path']}"  # lines of one file stay in order

    def describe(self, payload: dict[str, Any]) -> str:
        return f"append_line {payload['path']}"

    async def deliver(self, payload: dict[str, Any], ctx: DeliveryContext) -> None:
        path = Path(payload["path"])
        try:
            await asyncio.to_thread(_append, path, payload["line"])
        except OSError as exc:
            # A missing folder or a permission will not fix itself; a full disk may.
            final = isinstance(
                exc, FileNotFoundError | PermissionError | IsADirectoryError
            )
            raise ActionError(
                f"cannot append to {path}: {exc.strerror or exc}", retryable=not final
            ) from exc
