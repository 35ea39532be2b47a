"""wait_for: ended by a later event, or by its deadline; durable across restarts."""

from __future__ import annotations

import json
import sqlite3
from contextlib import closing
from datetime import timedelta
from typing import Any

from genea_automate.store import EventRef
from tests.scheduling.conftest import Timers
from tests.support.genea import payload

DOOR_LEFT_OPEN = """
rules:
  - id: door-left-open
    {on_missed}
    when: door.held_open
    then:
      - log: {{message: "held open: {{{{ door.name }}}}"}}
      - wait_for: {{event: door.secured, same: door, timeout: 2m}}
        on_timeout:
          - log: {{message: "{{{{ door.name }}}} still open ({{{{ kind }}}})"}}
      - log: {{message: "{{{{ door.name }}}} secured after {{{{ kind }}}}"}}
"""
HELD = payload("11")


def rules(on_missed: str = "") -> str:
    return DOOR_LEFT_OPEN.format(on_missed=on_missed)


def held_open(uuid: str = "held-1") -> dict[str, Any]:
    """Studio Main Entrance held open at 2025-09-03 10:12:46 UTC."""
    return payload("11", uuid=uuid)


def secured(
    uuid: str, at: str = "2025-09-03T10:13:30.000Z", door: Any = None
) -> dict[str, Any]:
    """A door.secured at the held-open door, unless another `door` is given."""
    return payload(
        "13",
        uuid=uuid,
        event_time=at,
        location=HELD["location"],
        door=door or HELD["door"],
    )


def messages(timers: Timers) -> list[tuple[str, str, str]]:
    return [
        (event, step, json.loads(body)["message"])
        for event, _, step, body in timers.outbox()
    ]


async def test_wait_for_queues_only_the_steps_before_it(timers: Timers) -> None:
    await timers.load(rules())
    decision = await timers.post(held_open())

    [trace] = decision.trace["rules"]
    assert [a.step for a in decision.actions] == ["0"]
    assert decision.waits_begun == 1
    assert trace["waiting"] == {
        "step": "1",
        "for": "door.secured",
        "where": "at door 'Studio Main Entrance'",
        "until": "2025-09-03T10:15:00+00:00",
    }
    assert await timers.next_due() == timers.clock.now() + timedelta(minutes=2)


async def test_wait_for_ended_by_the_same_door_renders_against_the_first_event(
    timers: Timers,
) -> None:
    await timers.load(rules())
    await timers.post(held_open())
    timers.clock.advance(timedelta(seconds=40))
    decision = await timers.post(secured("secured-1"))

    assert [(a.event, a.step) for a in decision.actions] == [
        (EventRef("held-1", "main"), "2")
    ]
    [wait] = decision.trace["waits"]
    assert (wait["started_by"], wait["outcome"], wait["fired"]) == (
        "held-1",
        "resolved",
        True,
    )
    assert await timers.run_due(timedelta(minutes=5)) == []
    assert messages(timers) == [
        ("held-1", "0", "held open: Studio Main Entrance"),
        ("held-1", "2", "Studio Main Entrance secured after door.held_open"),
    ]


async def test_wait_for_other_door_or_earlier_event_does_not_end_it(
    timers: Timers,
) -> None:
    await timers.load(rules())
    await timers.post(held_open())
    elsewhere = payload("13")["door"]
    other_door = await timers.post(secured("secured-elsewhere", door=elsewhere))
    earlier = await timers.post(secured("secured-before", "2025-09-03T10:12:00.000Z"))

    assert "waits" not in other_door.trace and "waits" not in earlier.trace
    [outcome] = await timers.run_due(timedelta(minutes=2))
    assert (outcome.outcome, outcome.note, outcome.queued) == (
        "timed_out",
        "on time",
        1,
    )
    assert messages(timers) == [
        ("held-1", "0", "held open: Studio Main Entrance"),
        (
            "held-1",
            "1.on_timeout.0",
            "Studio Main Entrance still open (door.held_open)",
        ),
    ]


async def test_wait_for_times_out_exactly_once(timers: Timers) -> None:
    await timers.load(rules())
    await timers.post(held_open())

    assert await timers.run_due(timedelta(seconds=119)) == []
    assert len(await timers.run_due(timedelta(seconds=1))) == 1
    assert await timers.run_due(timedelta(minutes=10)) == []
    assert len(timers.outbox()) == 2
    # Too late now: the wait is over.
    late = await timers.post(secured("secured-late", at="2025-09-03T10:24:00.000Z"))
    assert late.actions == []


async def test_wait_for_pending_at_a_restart_continues(timers: Timers) -> None:
    await timers.load(rules())
    await timers.post(held_open())
    await timers.restart(down_for=timedelta(seconds=30))

    assert await timers.run_due(timedelta(seconds=60)) == []
    [outcome] = await timers.run_due(timedelta(seconds=30))
    assert (outcome.outcome, outcome.note) == ("timed_out", "on time")


async def test_wait_for_deadline_missed_while_down_runs_once_within_grace(
    timers: Timers,
) -> None:
    await timers.load(rules("on_missed: {policy: run, grace: 10m}"))
    await timers.post(held_open())
    await timers.restart(down_for=timedelta(minutes=5))

    [outcome] = await timers.run_due()
    assert (outcome.outcome, outcome.queued) == ("timed_out", 1)
    assert outcome.note == (
        "due 2025-09-03 10:15:00Z, missed while the daemon was down (3m late); "
        "on_missed: run within 10m, so run now"
    )
    await timers.restart(down_for=timedelta(minutes=1))
    assert await timers.run_due() == []
    assert [step for _, _, step, _ in timers.outbox()] == ["0", "1.on_timeout.0"]


async def test_wait_for_deadline_missed_while_down_is_skipped_and_traced(
    timers: Timers,
) -> None:
    await timers.load(rules("on_missed: skip"))
    await timers.post(held_open())
    await timers.restart(down_for=timedelta(minutes=5))

    [outcome] = await timers.run_due()
    assert (outcome.outcome, outcome.queued) == ("skipped", 0)
    [trace] = timers.timer_traces()
    assert trace == {
        "rule": "door-left-open",
        "started_by": "held-1",
        "step": "1",
        "for": "door.secured",
        "deadline": "2025-09-03T10:15:00+00:00",
        "outcome": "skipped",
        "note": "due 2025-09-03 10:15:00Z, missed while the daemon was down "
        "(3m late); on_missed: skip, so not run",
    }
    assert [step for _, _, step, _ in timers.outbox()] == ["0"]


async def test_wait_for_missed_by_more_than_grace_is_skipped(timers: Timers) -> None:
    await timers.load(rules("on_missed: {grace: 1m}"))
    await timers.post(held_open())
    await timers.restart(down_for=timedelta(minutes=5))

    [outcome] = await timers.run_due()
    assert outcome.outcome == "skipped"
    assert outcome.note.endswith("on_missed: run within 1m, too late, so skipped")


async def test_wait_for_of_a_changed_rule_is_dropped(timers: Timers) -> None:
    await timers.load(rules())
    await timers.post(held_open())
    await timers.load(rules().replace("timeout: 2m", "timeout: 3m"))

    [outcome] = await timers.run_due(timedelta(minutes=2))
    assert (outcome.outcome, outcome.note) == (
        "dropped",
        "the steps of rule door-left-open changed since the wait began",
    )


async def test_wait_of_a_removed_rule_is_dropped_at_its_deadline(
    timers: Timers,
) -> None:
    """With no wait_for left in the rules, events no longer look for waits; the
    timers still drop the old one at its deadline, with the reason."""
    await timers.load(rules())
    await timers.post(held_open())
    await timers.load(
        "rules: [{id: other, when: door.secured, then: [{log: {message: x}}]}]"
    )

    decision = await timers.post(secured("secured-1"))
    assert "waits" not in decision.trace
    [outcome] = await timers.run_due(timedelta(minutes=2))
    assert (outcome.outcome, outcome.note) == (
        "dropped",
        "rule door-left-open is no longer in the rules file",
    )


async def test_wait_for_steps_can_wait_again(timers: Timers) -> None:
    await timers.load("""
        rules:
          - id: lock-after-close
            when: door.held_open
            then:
              - wait_for: {event: door.secured, same: door, timeout: 5m}
              - log: {message: "closed"}
              - wait_for: {event: door.locked, same: door, timeout: 1m}
                on_timeout: [{log: {message: "{{ door.name }} closed, not locked"}}]
    """)
    await timers.post(held_open())
    closed = await timers.post(secured("secured-1"))

    assert closed.waits_begun == 1
    assert [outcome.ref for outcome in await timers.run_due(timedelta(minutes=1))] == [
        "held-1"
    ]
    assert [(step, text) for _, step, text in messages(timers)] == [
        ("1", "closed"),
        ("2.on_timeout.0", "Studio Main Entrance closed, not locked"),
    ]


async def test_wait_for_same_uuid_on_two_endpoints_is_two_waits(
    timers: Timers,
) -> None:
    """Two endpoints may send the same uuid (two Genea accounts): each event
    begins its own wait, and the steps after it belong to that event."""
    await timers.load(rules())
    await timers.post(held_open())
    other = await timers.post(held_open(), endpoint="other")
    ended = await timers.post(secured("secured-1"))

    assert other.waits_begun == 1
    assert [a.event for a in ended.actions] == [
        EventRef("held-1", "main"),
        EventRef("held-1", "other"),
    ]
    assert timers.keys() == [
        "main:held-1:door-left-open:0",
        "other:held-1:door-left-open:0",
        "main:held-1:door-left-open:2",
        "other:held-1:door-left-open:2",
    ]


async def test_wait_for_begun_before_endpoints_were_recorded_keeps_its_keys(
    timers: Timers,
) -> None:
    """The previous version (schema 2) named a wait's event by its uuid alone
    and keyed its actions `<uuid>:<rule>:<step>`; the steps after such a wait
    keep that form, and the event that began it is not decided again."""
    await timers.load(rules())
    await timers.post(held_open())
    await timers.close()
    with closing(sqlite3.connect(timers.folder / "store.db")) as db:
        db.executescript(
            "ALTER TABLE waits DROP COLUMN endpoint;"
            "UPDATE waits SET event_id = 'held-1';"
            "UPDATE outbox SET idempotency_key = 'held-1:door-left-open:0';"
            "UPDATE meta SET value = '2' WHERE name = 'schema';"
        )
    await timers.start()
    ended = await timers.post(secured("secured-1"))

    assert [a.event for a in ended.actions] == [EventRef("held-1")]
    assert timers.keys() == ["held-1:door-left-open:0", "held-1:door-left-open:2"]
