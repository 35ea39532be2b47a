"""The log action: a rendered line at the chosen level, with ids in `extra`."""

from __future__ import annotations

import logging

import pytest
from pydantic import ValidationError

from genea_automate.actions.log import LogAction, LogOptions

from .conftest import MakeContext, MakeRenderer


async def test_log_writes_rendered_message_with_ids(
    make_renderer: MakeRenderer, make_ctx: MakeContext, caplog: pytest.LogCaptureFixture
) -> None:
    plugin = LogAction()
    options = LogOptions(message="{{ actor.name }} at {{ door.name }}", level="warning")
    payload = plugin.render(options, make_renderer())
    assert payload == {"message": "Ada Lovelace at Front Door", "level": "warning"}

    with caplog.at_level(logging.INFO, logger="genea_automate.actions.log"):
        await plugin.deliver(payload, make_ctx(event_id="ev-9", rule_id="door-watch"))
    [record] = caplog.records
    assert (record.name, record.levelno, record.getMessage()) == (
        "genea_automate.actions.log",
        logging.WARNING,
        "Ada Lovelace at Front Door",
    )
    assert (record.event_id, record.rule_id) == ("ev-9", "door-watch")


def test_log_level_is_one_of_three() -> None:
    assert LogOptions(message="x").level == "info"
    with pytest.raises(ValidationError) as caught:
        LogOptions(message="x", level="debug")
    assert (
        caught.value.errors()[0]["msg"]
        == "Input should be 'info', 'warning' or 'error'"
    )
