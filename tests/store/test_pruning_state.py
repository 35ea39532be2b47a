"""Retention of rule state and timer runs: kept while a rule can ask about it."""

from __future__ import annotations

import logging
import sqlite3
import textwrap
from collections.abc import AsyncIterator, Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from genea_automate import retention
from genea_automate.clock import FrozenClock
from genea_automate.config.loader import load_config
from genea_automate.config.models import ConfigBase
from genea_automate.retention import StorePruner
from genea_automate.store.base import EventRef, StateTx, Wait
from genea_automate.store.sqlite import SqliteStore

NOW = datetime(2025, 3, 30, 12, 0, tzinfo=UTC)
HOUR = timedelta(hours=1)
DAY = timedelta(days=1)

HEADER = """
store: "sqlite:///./unused.db"
endpoints: {main: {secret: test}}
traces: {keep_for: 14d, keep_per_rule: 1}
"""
# The longest count window (nested in `any`) is 3d, the longest cooldown 2d.
COUNTING = """
rules:
  - id: denied-burst
    when: {event: access.denied}
    if:
      - any:
          - count: {at_least: 3, within: 3d, per: door}
          - count: {at_least: 10, within: 5m}
      - cooldown: {for: 2d, per: door}
    then: [{log: {message: "burst"}}]
"""
SHORT_WINDOW = """
rules:
  - id: denied-burst
    when: {event: access.denied}
    if: [{count: {at_least: 3, within: 5m}}]
    then: [{log: {message: "burst"}}]
"""
NO_RULES = "rules: []\n"


@pytest.fixture
def clock() -> FrozenClock:
    return FrozenClock(NOW)


@pytest.fixture
async def store(tmp_path: Path, clock: FrozenClock) -> AsyncIterator[SqliteStore]:
    opened = SqliteStore(str(tmp_path / "store.db"), clock)
    await opened.open()
    yield opened
    await opened.close()


@pytest.fixture
def config(tmp_path: Path) -> Callable[[str], ConfigBase]:
    """The validated config of these rules, as the daemon loads it."""

    def load(rules: str) -> ConfigBase:
        path = tmp_path / "rules.yaml"
        path.write_text(HEADER + textwrap.dedent(rules))
        return load_config(path, environ={}).config

    return load


def pruner(store: SqliteStore, clock: FrozenClock, config: ConfigBase) -> StorePruner:
    return StorePruner(store, clock, lambda: config)


async def written_at(
    store: SqliteStore, age: timedelta, work: Callable[[StateTx], object]
) -> None:
    """Run `work` in a transaction while the store's clock reads NOW - age,
    as if the daemon had written that state then."""
    assert isinstance(store.clock, FrozenClock)
    store.clock.set(NOW - age)
    try:
        await store.transact(work)
    finally:
        store.clock.set(NOW)


async def count_at(store: SqliteStore, *ages: timedelta) -> None:
    """Counted events, one per age, under one key."""
    for n, age in enumerate(ages):
        await written_at(
            store,
            age,
            lambda state, n=n, age=age: state.record_event(
                "denied-burst:access.denied:door:d1", f"c{n}", NOW - age,
                forget_before=NOW - 30 * DAY,
            )
        )  # fmt: skip


async def arrive_at(store: SqliteStore, *ages: timedelta) -> None:
    """A first arrival per age, each under the key of its own day."""
    for n, age in enumerate(ages):
        key = f"location:hq:00:00:{(NOW - age).date()}:{n}"
        await written_at(
            store,
            age,
            lambda state, key=key, n=n, age=age: state.claim_first_arrival(
                key, f"a{n}", NOW - age, "Sam"
            ),
        )


async def fire_at(store: SqliteStore, *ages: timedelta) -> None:
    """A cooldown per age, each under a door of its own."""
    for n, age in enumerate(ages):
        await written_at(
            store,
            age,
            lambda state, n=n, age=age: state.set_last_fired(
                f"denied-burst:door:d{n}", NOW - age
            ),
        )


def column(store: SqliteStore, sql: str) -> list[object]:
    with sqlite3.connect(store.path) as db:
        return [row[0] for row in db.execute(sql).fetchall()]


async def test_counted_events_are_kept_for_the_longest_window_and_a_day(
    store: SqliteStore, clock: FrozenClock, config: Callable[[str], ConfigBase]
) -> None:
    # The cutoff: 3d (the longest window) and 1d for late events, so 4d ago.
    await count_at(store, 4 * DAY + HOUR, 4 * DAY - HOUR, HOUR)

    await pruner(store, clock, config(COUNTING)).prune_once()

    assert column(store, "SELECT event_id FROM counted_events ORDER BY time") == [
        "c1", "c2"
    ]  # fmt: skip


async def test_a_shorter_window_after_a_reload_prunes_by_the_new_one(
    store: SqliteStore, clock: FrozenClock, config: Callable[[str], ConfigBase]
) -> None:
    await count_at(store, 4 * DAY - HOUR, DAY + HOUR, DAY - HOUR)
    current = [config(COUNTING)]
    reloading = StorePruner(store, clock, lambda: current[0])
    await reloading.prune_once()
    assert len(column(store, "SELECT event_id FROM counted_events")) == 3

    current[0] = config(SHORT_WINDOW)  # 5m, so 1d and 5m ago
    await reloading.prune_once()

    assert column(store, "SELECT event_id FROM counted_events") == ["c2"]


async def test_without_counting_rules_counted_events_go_after_a_day(
    store: SqliteStore, clock: FrozenClock, config: Callable[[str], ConfigBase]
) -> None:
    await count_at(store, 3 * DAY, DAY + HOUR, DAY - HOUR)
    await pruner(store, clock, config(NO_RULES)).prune_once()
    assert column(store, "SELECT event_id FROM counted_events") == ["c2"]


async def test_cooldowns_are_kept_for_the_longest_cooldown_and_a_day(
    store: SqliteStore, clock: FrozenClock, config: Callable[[str], ConfigBase]
) -> None:
    await fire_at(store, 3 * DAY + HOUR, 3 * DAY - HOUR, HOUR)
    await pruner(store, clock, config(COUNTING)).prune_once()
    assert column(store, "SELECT key FROM cooldowns ORDER BY key") == [
        "denied-burst:door:d1", "denied-burst:door:d2"
    ]  # fmt: skip


async def test_first_arrivals_are_kept_while_a_late_event_may_ask_about_their_day(
    store: SqliteStore, clock: FrozenClock, config: Callable[[str], ConfigBase]
) -> None:
    # The longest day (25h) and a day of lateness: 49h.
    await arrive_at(store, 49 * HOUR + HOUR, 49 * HOUR - HOUR, HOUR)
    await pruner(store, clock, config(NO_RULES)).prune_once()
    assert column(store, "SELECT event_id FROM first_arrivals ORDER BY time") == [
        "a1", "a2"
    ]  # fmt: skip


async def test_a_rule_that_takes_older_events_keeps_first_arrivals_longer(
    store: SqliteStore, clock: FrozenClock, config: Callable[[str], ConfigBase]
) -> None:
    coffee = """
    rules:
      - id: coffee
        when: {event: access.granted}
        max_event_age: 3d
        if: [{first_arrival: location}]
        then: [{log: {message: "coffee"}}]
    """
    await arrive_at(store, 4 * DAY + 2 * HOUR, 4 * DAY, 2 * DAY)
    await pruner(store, clock, config(coffee)).prune_once()
    # 25h and 3d: the arrival 4 days ago is still kept.
    assert column(store, "SELECT event_id FROM first_arrivals ORDER BY time") == [
        "a1", "a2"
    ]  # fmt: skip


async def test_state_stays_for_an_event_still_to_decide_after_a_restart(
    store: SqliteStore, clock: FrozenClock, config: Callable[[str], ConfigBase]
) -> None:
    await store.ingest("main", "backlog", b"{}", NOW - 10 * DAY)
    await arrive_at(store, 10 * DAY + HOUR, 20 * DAY)
    await count_at(store, 12 * DAY)
    await pruner(store, clock, config(COUNTING)).prune_once()
    assert column(store, "SELECT event_id FROM first_arrivals") == ["a0"]
    assert column(store, "SELECT event_id FROM counted_events") == ["c0"]


async def test_waits_past_their_deadline_are_left_to_the_timers(
    store: SqliteStore, clock: FrozenClock, config: Callable[[str], ConfigBase]
) -> None:
    old = NOW - 30 * DAY
    started_by = EventRef("ev1", "main")
    wait = Wait(
        "held", started_by, 0, ("door.secured",), "door:d1", old, old + HOUR, {}, "f"
    )
    await store.transact(lambda state: state.add_wait(wait))
    await pruner(store, clock, config(NO_RULES)).prune_once()
    due = await store.transact(lambda state: state.due_waits(NOW))
    assert [(w.rule_id, w.deadline) for w in due] == [("held", old + HOUR)]


async def test_timer_runs_follow_the_traces_policy(
    store: SqliteStore, clock: FrozenClock, config: Callable[[str], ConfigBase]
) -> None:
    runs = [  # (rule, ref, age in days, fired)
        ("nightly", "n1", 30, True),
        ("nightly", "n2", 20, True),  # its latest firing, though old
        ("nightly", "n3", 19, False),
        ("other", "o1", 16, False),  # its latest run, though old
        ("nightly", "n4", 1, False),  # recent
    ]
    for rule, ref, age, fired in runs:
        trace = {"rule": rule, "run": ref, "fired": fired}
        await store.transact(
            lambda state, r=rule, f=ref, a=age, t=trace: state.record_run(
                r, f, NOW - a * DAY, t
            )
        )
    # keep_for 14d; keep_per_rule 1: each rule's latest firing and non-firing.
    await pruner(store, clock, config(NO_RULES)).prune_once()
    assert column(store, "SELECT ref FROM timer_runs ORDER BY id") == [
        "n2", "o1", "n4"
    ]  # fmt: skip


async def test_pruning_goes_in_batches_and_logs_each_kind(
    store: SqliteStore,
    clock: FrozenClock,
    config: Callable[[str], ConfigBase],
    monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
) -> None:
    monkeypatch.setattr(retention, "BATCH", 2)
    await count_at(store, *[5 * DAY] * 5)
    await arrive_at(store, 5 * DAY, 5 * DAY, 5 * DAY)
    await fire_at(store, 5 * DAY)
    caplog.set_level(logging.INFO, logger="genea_automate.retention")

    removed = await pruner(store, clock, config(COUNTING)).prune_once()

    assert removed == 9
    assert column(store, "SELECT COUNT(*) FROM counted_events") == [0]
    assert caplog.messages == [
        "pruned the store: first arrivals 3, counted events 5, cooldowns 1"
    ]


async def test_state_goes_by_when_it_was_written_not_by_its_event_time(
    store: SqliteStore, clock: FrozenClock, config: Callable[[str], ConfigBase]
) -> None:
    """Events a year old (a controller's clock, last year's test payloads) keep
    the state of their day while they keep coming."""
    year = 365 * DAY
    key = f"location:hq:00:00:{(NOW - year).date()}"
    await store.transact(
        lambda state: state.claim_first_arrival(key, "first", NOW - year, "Sam")
    )
    await store.transact(
        lambda state: state.record_event(
            "denied-burst:access.denied:door:d1", "c0", NOW - year,
            forget_before=NOW - year - DAY,
        )
    )  # fmt: skip
    await store.transact(
        lambda state: state.set_last_fired("denied-burst:door:d0", NOW - year)
    )

    await pruner(store, clock, config(COUNTING)).prune_once()

    later = await store.transact(
        lambda state: state.claim_first_arrival(key, "second", NOW - year, "Kim")
    )
    assert later.event_id == "first"
    assert column(store, "SELECT event_id FROM counted_events") == ["c0"]
    assert column(store, "SELECT key FROM cooldowns") == ["denied-burst:door:d0"]
