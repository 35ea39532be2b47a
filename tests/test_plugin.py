"""Local plugin modules: read once, recorded, and run again from that text."""

from __future__ import annotations

import traceback
from pathlib import Path
from typing import Any

import pytest

from genea_automate.errors import PluginError
from genea_automate.plugin import PluginRegistry
from tests.support.plugins import plugin_module

PLUGIN = """
from typing import Any, ClassVar

from pydantic import BaseModel

from genea_automate.plugin import ActionPlugin


class StampOptions(BaseModel):
    pass


class StampAction(ActionPlugin[StampOptions]):
    name: ClassVar[str] = "stamp"
    Options: ClassVar[type[BaseModel]] = StampOptions

    def render(self, options: Any, ctx: Any) -> dict[str, Any]:
        raise RuntimeError("cannot render")  # version {version}

    async def deliver(self, payload: dict[str, Any], ctx: Any) -> None:
        pass
"""


@pytest.fixture
def folder(tmp_path: Path) -> Path:
    plugins = tmp_path / "plugins"
    plugins.mkdir()
    (plugins / "stamp.py").write_text(PLUGIN.format(version=1))
    (plugins / "_helpers.py").write_text("raise RuntimeError('never run')\n")
    return plugins


def render_error(registry: PluginRegistry) -> str:
    """The traceback of the stamp plugin's render, as the log would show it."""
    plugin: Any = registry.get("stamp")()
    with pytest.raises(RuntimeError) as caught:
        plugin.render(None, None)
    return "".join(traceback.format_exception(caught.value))


def test_load_folder_records_the_text_of_each_module_it_runs(folder: Path) -> None:
    registry = PluginRegistry()

    registry.load_folder(folder)

    stamp = folder / "stamp.py"
    assert registry.local_sources == {str(stamp): PLUGIN.format(version=1)}
    assert registry.get("stamp").__module__ == "genea_automate_local_plugins.stamp"


def test_load_sources_runs_the_recorded_text_whatever_the_file_holds(
    folder: Path,
) -> None:
    recorded = PluginRegistry()
    recorded.load_folder(folder)
    (folder / "stamp.py").write_text(PLUGIN.format(version=2))

    registry = PluginRegistry()
    registry.load_sources(recorded.local_sources)

    # The traceback names the file, and quotes the line that ran, not the new one.
    error = render_error(registry)
    assert f'File "{folder / "stamp.py"}", line 18, in render' in error
    assert 'raise RuntimeError("cannot render")  # version 1' in error
    assert registry.local_sources == recorded.local_sources


@pytest.mark.parametrize(
    ("name", "text", "why"),
    [
        ("wip", "def half_written(:\n", "invalid syntax (wip.py, line 1)"),
        # Left alone, sys.exit() at import would end a reloading daemon.
        (
            "quits",
            "import sys\nsys.exit(3)\n",
            "action plugin 'quits' raised SystemExit(3)",
        ),
    ],
    ids=["half-written", "exits"],
)
def test_a_plugin_module_that_fails_to_import_is_named(
    folder: Path, name: str, text: str, why: str
) -> None:
    module = folder / f"{name}.py"
    module.write_text(text)

    with pytest.raises(PluginError) as caught:
        PluginRegistry().load_folder(folder)

    assert str(caught.value) == f"{module}: plugin module failed to import: {why}"


def test_a_plugin_without_its_own_options_model_is_refused(folder: Path) -> None:
    # BaseModel itself validates nothing and cannot even be made.
    source = plugin_module("bare").replace(
        "Options: ClassVar[type[BaseModel]] = Options",
        "Options: ClassVar[type[BaseModel]] = BaseModel",
    )
    (folder / "bare.py").write_text(source)

    with pytest.raises(PluginError) as caught:
        PluginRegistry().load_folder(folder)

    assert str(caught.value) == (
        "plugin 'bare' needs `Options`, a pydantic BaseModel subclass"
    )
