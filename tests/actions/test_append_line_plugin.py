"""The example plugin in plugins/: found by the folder loader, and working."""

from __future__ import annotations

from pathlib import Path

import pytest

from genea_automate.errors import ActionError
from genea_automate.events.model import Actor
from genea_automate.plugin import PluginRegistry

from .conftest import MakeContext, MakeRenderer

PLUGINS = Path(__file__).resolve().parents[2] / "plugins"


async def test_append_line_plugin_loads_and_appends(
    tmp_path: Path, make_renderer: MakeRenderer, make_ctx: MakeContext
) -> None:
    registry = PluginRegistry()
    registry.load_folder(PLUGINS)
    assert "append_line" in registry.names()

    plugin_class = registry.get("append_line")
    plugin = plugin_class()
    target = tmp_path / "arrivals.txt"
    options = plugin_class.Options.model_validate(
        {"path": str(target), "line": "{{ event.time }} {{ actor.name }}"}
    )
    renderer = make_renderer(actor=Actor(name="Ada\nFAKE LINE"))
    payload = plugin.render(options, renderer)
    await plugin.deliver(payload, make_ctx())
    await plugin.deliver(payload, make_ctx())

    assert target.read_text() == "2024-03-04T13:05:09Z Ada FAKE LINE\n" * 2
    assert plugin.describe(payload) == f"append_line {target}"


async def test_append_line_plugin_missing_folder_is_final(
    tmp_path: Path, make_ctx: MakeContext
) -> None:
    registry = PluginRegistry()
    registry.load_folder(PLUGINS)
    plugin = registry.get("append_line")()
    payload = {"path": str(tmp_path / "nope" / "x.txt"), "line": "x"}
    with pytest.raises(ActionError) as caught:
        await plugin.deliver(payload, make_ctx())
    assert caught.value.retryable is False
    assert str(caught.value).endswith("No such file or directory")
