"""Fixtures of the action tests: a real broker, a loopback HTTP server, contexts."""

from __future__ import annotations

import logging
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

import pytest

from genea_automate.clock import FrozenClock
from genea_automate.plugin import DeliveryContext
from genea_automate.rules.templates import TemplateRenderer, template_variables
from tests.support.events import sample_event

MakeContext = Callable[..., DeliveryContext]
MakeRenderer = Callable[..., TemplateRenderer]


@pytest.fixture
def clock() -> FrozenClock:
    return FrozenClock(datetime(2024, 3, 4, 13, 5, 10, tzinfo=UTC))


@pytest.fixture
def make_ctx(clock: FrozenClock) -> MakeContext:
    """DeliveryContext with test defaults; keywords replace them."""

    def make(**changes: Any) -> DeliveryContext:
        values: dict[str, Any] = {
            "idempotency_key": "rule-1:event-1:0",
            "rule_id": "rule-1",
            "event_id": "event-1",
            "attempt": 1,
            "timeout": 5.0,
            "logger": logging.getLogger("tests.actions"),
            "clock": clock,
        }
        return DeliveryContext(**(values | changes))

    return make


@pytest.fixture
def make_renderer() -> MakeRenderer:
    """A TemplateRenderer over `sample_event(**changes)`."""

    def make(**changes: Any) -> TemplateRenderer:
        return TemplateRenderer(template_variables(sample_event(**changes)))

    return make
