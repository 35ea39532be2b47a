"""The operators' queries of the SQLite store: events, traces, activity, pruning."""

from __future__ import annotations

import textwrap
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from genea_automate.clock import FrozenClock
from genea_automate.store.admin import EventQuery, StoreAdmin
from genea_automate.store.sqlite import SqliteStore
from tests.support.decisions import decide_in_store
from tests.support.genea import payload

RULES = """
store: "sqlite:///./store.db"
endpoints: {main: {secret: s}}
mqtt: {default: {url: "mqtt://127.0.0.1:1"}}
rules:
  - id: coffee
    when: {event: access.granted}
    if: [{first_arrival: location}]
    then: [{mqtt: {topic: coffee, payload: "ON"}}]
  - id: denied
    when: {event: access.denied}
    then: [{log: {message: "denied at {{ door.name }}"}}]
"""


def badge(uuid: str, day: int, hour: int, prefix: str = "01", **changes: Any) -> Any:
    data = payload(prefix, uuid=uuid, **changes)
    data["event_time"] = f"2025-03-{day:02}T{hour:02}:00:00.000Z"
    return data


EVENTS = [
    badge("g1", 3, 13),  # first arrival: coffee fires
    badge("d1", 3, 14, "06"),  # refused at the Loading Dock Door
    badge("g2", 3, 15),  # not the first: coffee matches only
    badge("g3", 4, 13),  # next day: coffee fires
    badge("d2", 4, 14, "07"),  # refused at Westside Fulfilment
]


@pytest.fixture
async def store(tmp_path: Path) -> AsyncIterator[SqliteStore]:
    config = tmp_path / "rules.yaml"
    config.write_text(textwrap.dedent(RULES))
    await decide_in_store(config, EVENTS)
    clock = FrozenClock(datetime(2025, 3, 5, tzinfo=UTC))
    opened = SqliteStore(str(tmp_path / "store.db"), clock)
    await opened.open()
    yield opened
    await opened.close()


async def uuids(admin: StoreAdmin, **query: Any) -> list[str]:
    return [record.uuid for record in await admin.events(EventQuery(**query))]


@pytest.mark.parametrize(
    ("query", "expected"),
    [
        ({}, ["d2", "g3", "g2", "d1", "g1"]),
        ({"limit": 2}, ["d2", "g3"]),
        ({"event_id": "g2"}, ["g2"]),
        ({"kind": "access.denied"}, ["d2", "d1"]),
        ({"kind": "access.denied.expired"}, ["d2"]),
        ({"kind": "access"}, ["d2", "g3", "g2", "d1", "g1"]),
        ({"kind": "access.den"}, []),
        ({"location": "westside"}, ["d2"]),
        ({"door": "loading dock"}, ["d1"]),
        ({"user": "JORDAN"}, ["g3", "g2", "g1"]),
        ({"user": "%"}, []),
        ({"rule": "coffee"}, ["g3", "g2", "g1"]),
        ({"since": datetime(2025, 3, 4, tzinfo=UTC)}, ["d2", "g3"]),
    ],
    ids=lambda value: str(value) if not isinstance(value, list) else "",
)
async def test_events_filter_and_order(
    store: SqliteStore, query: dict[str, Any], expected: list[str]
) -> None:
    assert await uuids(store.admin, **query) == expected


async def test_event_records_carry_the_trace_with_who_and_where(
    store: SqliteStore,
) -> None:
    [record] = await store.admin.events(EventQuery(event_id="d1"))
    assert (record.state, record.kind, record.endpoint) == (
        "decided",
        "access.denied.card_not_found",
        "main",
    )
    assert record.trace is not None
    assert {
        k: record.trace[k] for k in ("location", "door", "actor", "local_time")
    } == {
        "location": "Harborview Labs HQ",
        "door": "Loading Dock Door",
        "actor": None,
        "local_time": "2025-03-03T09:00:00-05:00",
    }


async def test_past_events_and_their_actions_in_order(store: SqliteStore) -> None:
    admin = store.admin
    since = datetime(2025, 3, 3, 14, tzinfo=UTC)
    first = await admin.past_events(since, limit=2)
    assert [past.stored.uuid for past in first] == ["d1", "g2"]
    rest = await admin.past_events(since, after_seq=first[-1].stored.seq)
    assert [past.stored.uuid for past in rest] == ["g3", "d2"]
    assert all(past.state == "decided" and past.decided_at for past in first + rest)

    actions = await admin.actions_of(["g3", "d1", "g2"])
    assert [(a.event_id, a.rule_id, a.step, a.plugin, a.state) for a in actions] == [
        ("d1", "denied", "0", "log", "pending"),
        ("g3", "coffee", "0", "mqtt", "pending"),
    ]
    assert actions[0].payload == {
        "message": "denied at Loading Dock Door",
        "level": "info",
    }


async def test_rule_activity_and_outbox_counts(store: SqliteStore) -> None:
    [dead] = [a for a in await store.admin.actions_of(["d2"])]
    await store.action_failed(dead.id, "HTTP 500: down", None)

    activity = await store.admin.rule_activity()
    assert activity["coffee"].last_fired_event == "g3"
    assert activity["coffee"].last_fired == datetime(2025, 3, 4, 13, tzinfo=UTC)
    assert activity["coffee"].last_error is None
    assert activity["denied"].last_error == "HTTP 500: down"
    assert activity["denied"].last_error_at == datetime(2025, 3, 5, tzinfo=UTC)
    counts = await store.admin.outbox_counts()
    assert (counts.pending, counts.dead) == (3, 1)


@pytest.mark.parametrize(
    ("keep_per_rule", "kept"),
    [
        (0, ["d2", "g3"]),
        (1, ["d2", "g3", "g2"]),
        (2, ["d2", "g3", "g2", "d1", "g1"]),
    ],
)
async def test_prune_traces_by_age_keeps_each_rules_latest(
    store: SqliteStore, keep_per_rule: int, kept: list[str]
) -> None:
    cutoff = datetime(2025, 3, 4, tzinfo=UTC)
    pruned = await store.admin.prune_traces(cutoff, keep_per_rule)
    records = await store.admin.events(EventQuery())
    assert [r.uuid for r in records if r.trace is not None] == kept
    assert pruned == 5 - len(kept)
