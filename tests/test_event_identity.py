"""An event is its endpoint and its uuid, from ingest through the rules to the outbox.

Two Genea accounts, or the small decimal uuids of audit events, can bring the
same uuid to two endpoints: those are two events, each with its own actions.
Genea's retry on one endpoint is still the one event.
"""

from __future__ import annotations

import sqlite3
from collections.abc import AsyncIterator
from contextlib import closing
from datetime import UTC, datetime
from pathlib import Path

import httpx
import pytest

from genea_automate.app import Daemon
from genea_automate.clock import FrozenClock
from genea_automate.config.loader import load_config
from genea_automate.processing import event_from_stored
from genea_automate.store import Decision, StateTx
from tests.support.genea import TEST_SECRET, body_of, payload, signed_headers

CONFIG = """
store: "sqlite:///{folder}/store.db"
endpoints:
  main: {{secret: "{secret}"}}
  other: {{secret: "{secret}"}}
rules:
  - id: audit-trail
    when: audit
    then:
      - log: {{message: "{{{{ message }}}}"}}
  - id: coffee
    when: access.granted
    if: [{{first_arrival: location}}]
    then:
      - log: {{message: coffee}}
"""
AUDIT = body_of(payload("15"))  # an audit event, uuid 48211907
GRANTED = body_of(payload("01", uuid="7"))


class Crash(Exception):
    """The process died: nothing of the decision under way was committed."""


@pytest.fixture
async def daemon(tmp_path: Path) -> AsyncIterator[Daemon]:
    config = tmp_path / "rules.yaml"
    config.write_text(CONFIG.format(folder=tmp_path, secret=TEST_SECRET))
    clock = FrozenClock(datetime(2025, 3, 10, 18, 0, tzinfo=UTC))
    running = Daemon(load_config(config), clock)
    await running.store.open()
    yield running
    await running.store.close()


async def deliver(daemon: Daemon, *posts: tuple[str, bytes]) -> list[str]:
    """Post each body, signed, to its endpoint; the status of each answer."""
    transport = httpx.ASGITransport(app=daemon.app)
    statuses = []
    async with httpx.AsyncClient(transport=transport, base_url="http://t") as client:
        for endpoint, body in posts:
            answer = await client.post(
                f"/hooks/{endpoint}", content=body, headers=signed_headers(body)
            )
            statuses.append(answer.json()["status"])
    return statuses


async def decide_next(daemon: Daemon) -> Decision:
    """Decide the oldest pending event as the processor does."""
    [stored] = await daemon.store.pending_events(1)
    decision = await daemon.processor.process(stored)
    assert decision is not None
    return decision


def outbox(folder: Path) -> list[tuple[str, str]]:
    """(event id, idempotency key) of every queued action, in order."""
    with closing(sqlite3.connect(folder / "store.db")) as db:
        return db.execute(
            "SELECT event_id, idempotency_key FROM outbox ORDER BY id"
        ).fetchall()


async def test_same_uuid_on_two_endpoints_queues_the_actions_of_both(
    daemon: Daemon, tmp_path: Path
) -> None:
    assert await deliver(daemon, ("main", AUDIT), ("other", AUDIT)) == [
        "stored",
        "stored",
    ]
    assert await daemon.processor.run_once() == 2
    # Genea's retries, on either endpoint, are the same events again.
    assert await deliver(daemon, ("main", AUDIT), ("other", AUDIT)) == [
        "duplicate",
        "duplicate",
    ]
    assert await daemon.processor.run_once() == 0

    assert outbox(tmp_path) == [
        ("48211907", "main:48211907:audit-trail:0"),
        ("48211907", "other:48211907:audit-trail:0"),
    ]


async def test_event_decided_again_after_a_crash_fires_as_it_would_have(
    daemon: Daemon, tmp_path: Path
) -> None:
    """A crash before the commit leaves the event pending and its first-arrival
    claim unmade: decided again it fires, once; the same uuid on another
    endpoint is a later arrival, not the event that claimed the day."""
    await deliver(daemon, ("main", GRANTED))
    [stored] = await daemon.store.pending_events(1)
    event = event_from_stored(stored, "UTC")

    def crash(state: StateTx) -> Decision:
        decision = daemon.engine.decide(event, stored.ref, state, daemon.clock.now())
        assert decision.fired == ["coffee"]
        raise Crash

    with pytest.raises(Crash):
        await daemon.store.decide(stored, crash)
    again = await decide_next(daemon)
    await deliver(daemon, ("other", GRANTED))
    other = await decide_next(daemon)

    assert (again.fired, other.fired) == (["coffee"], [])
    assert outbox(tmp_path) == [("7", "main:7:coffee:0")]
