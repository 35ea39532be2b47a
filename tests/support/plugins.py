"""The text of a `plugins/` module for tests: one action that does nothing,
but for the methods a test gives it (a bug at the worst moment, say)."""

from __future__ import annotations

import textwrap

_MODULE = """\
import sys
from typing import Any, ClassVar

from pydantic import BaseModel, field_validator

from genea_automate.plugin import ActionPlugin

{options}

class TestAction(ActionPlugin[BaseModel]):
    name: ClassVar[str] = "{name}"
    Options: ClassVar[type[BaseModel]] = {options_class}

    def render(self, options: Any, ctx: Any) -> dict[str, Any]:
        return {{}}

    async def deliver(self, payload: dict[str, Any], ctx: Any) -> None:
        pass

{methods}
"""


_ANY_OPTIONS = """
class Options(BaseModel):
    pass
"""


def plugin_module(name: str, methods: str = "", options: str = "") -> str:
    """A module whose action is `name`; `methods` are added to its class (at
    no indent), `options` is the source of its class Options (else one with
    no fields)."""
    return _MODULE.format(
        name=name,
        options=textwrap.dedent(options or _ANY_OPTIONS),
        options_class="Options",
        methods=textwrap.indent(textwrap.dedent(methods), "    "),
    )
