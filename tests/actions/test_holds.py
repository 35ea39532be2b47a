"""Target holds: pacing rate-limited targets, and the circuit breaker."""

from __future__ import annotations

import logging
from datetime import UTC, datetime, timedelta

import pytest

from genea_automate.actions.holds import TargetHolds

NOW = datetime(2025, 3, 3, 14, 0, tzinfo=UTC)
SECOND = timedelta(seconds=1)


def test_holds_pace_a_target_from_the_start_of_each_delivery() -> None:
    holds = TargetHolds()
    holds.started("slack:a", NOW, 1.0)
    holds.started("http:b", NOW, 0.0)
    assert holds.held(NOW) == {"slack:a": NOW + SECOND}
    assert holds.held(NOW + SECOND) == {}


def test_holds_breaker_opens_after_failures_in_a_row_and_warns_once(
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.INFO, logger="genea_automate.actions.holds")
    holds = TargetHolds(failures=3, cool_off=timedelta(seconds=30))
    for n in range(2):
        holds.failed("http:h", "http POST http://h/x", NOW + n * SECOND, "HTTP 500")
    assert holds.until("http:h") is None

    holds.failed("http:h", "http POST http://h/x", NOW + 2 * SECOND, "HTTP 500")
    assert holds.until("http:h") == NOW + 32 * SECOND
    # The trial after the cool-off fails: paused again, without a new warning.
    holds.failed("http:h", "http POST http://h/x", NOW + 40 * SECOND, "HTTP 500")
    assert holds.until("http:h") == NOW + 70 * SECOND
    assert caplog.messages == [
        "deliveries to http POST http://h/x paused for 30s after 3 failures in a "
        "row (last: HTTP 500); trying one again after each pause"
    ]

    holds.succeeded("http:h", "http POST http://h/x", NOW + 72 * SECOND)
    assert holds.until("http:h") is None
    assert caplog.messages[-1] == (
        "deliveries to http POST http://h/x resumed: it answered again after 70s"
    )
    assert [r.levelname for r in caplog.records] == ["WARNING", "INFO"]


def test_holds_a_success_resets_the_count_quietly(
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.INFO, logger="genea_automate.actions.holds")
    holds = TargetHolds(failures=2)
    holds.failed("k", "target", NOW, "down")
    holds.succeeded("k", "target", NOW)
    holds.failed("k", "target", NOW, "down")
    assert holds.until("k") is None
    assert caplog.messages == []
