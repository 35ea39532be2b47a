"""Timed rules: cron on the local wall clock, once a day across DST, durable."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest

from genea_automate.clock import FrozenClock
from tests.scheduling.conftest import Timers
from tests.support.genea import payload

NEW_YORK = ZoneInfo("America/New_York")
NOBODY_IN = """
rules:
  - id: nobody-in-by-ten
    when: {{cron: "0 10 * * 1-5", timezone: America/New_York}}
    {on_missed}
    if:
      - not: {{arrived_today: {{location: {location}}}}}
    then:
      - log: {{message: "{{{{ rule }}}}: nobody at HQ by {{{{ local_time }}}}"}}
"""


def nobody_in(on_missed: str = "", location: str = "Harborview Labs HQ") -> str:
    return NOBODY_IN.format(on_missed=on_missed, location=location)


def daily(cron: str, zone: str) -> str:
    return f"""
        rules:
          - id: daily
            when: {{cron: "{cron}", timezone: {zone}}}
            then: [{{log: {{message: "{{{{ local_time }}}}"}}}}]
    """


async def runs_until(timers: Timers, end: datetime, step: timedelta) -> list[str]:
    """Let time pass as a daemon would see it: waking at every deadline, and at
    least every `step`; returns the ids of the runs made."""
    done: list[str] = []
    while timers.clock.now() < end:
        due = await timers.next_due()
        wake = min(due or end, timers.clock.now() + step, end)
        timers.clock.set(max(wake, timers.clock.now() + timedelta(seconds=1)))
        done += [o.ref for o in await timers.run_due() if o.outcome == "ran"]
    return done


def local(run_id: str, zone: ZoneInfo = NEW_YORK) -> str:
    """'daily@2024-03-04T14:00Z' -> '2024-03-04 Mon 09:00' in `zone`."""
    when = datetime.strptime(run_id.split("@")[1], "%Y-%m-%dT%H:%MZ")
    return when.replace(tzinfo=UTC).astimezone(zone).strftime("%Y-%m-%d %a %H:%M")


async def test_timed_rule_weekdays_in_chicago_never_on_saturday(
    timers: Timers, clock: FrozenClock
) -> None:
    chicago = ZoneInfo("America/Chicago")
    clock.set(datetime(2024, 3, 2, 9, 0, tzinfo=chicago))  # a Saturday
    await timers.load(daily("0 8 * * 1-5", "America/Chicago"))

    end = datetime(2024, 3, 12, tzinfo=chicago)
    done = await runs_until(timers, end, timedelta(hours=6))
    assert [local(run, chicago) for run in done] == [
        "2024-03-04 Mon 08:00",
        "2024-03-05 Tue 08:00",
        "2024-03-06 Wed 08:00",
        "2024-03-07 Thu 08:00",
        "2024-03-08 Fri 08:00",
        "2024-03-11 Mon 08:00",
    ]


@pytest.mark.parametrize("month", [3, 11], ids=["march", "november"])
async def test_timed_rule_at_0030_runs_once_every_local_day(
    timers: Timers, clock: FrozenClock, month: int
) -> None:
    clock.set(datetime(2024, month, 1, tzinfo=NEW_YORK) - timedelta(hours=1))
    await timers.load(daily("30 0 * * *", "America/New_York"))

    end = datetime(2024, month + 1, 1, tzinfo=NEW_YORK)
    done = [local(run) for run in await runs_until(timers, end, timedelta(hours=2))]
    days = [run[:10] for run in done]
    assert len(days) == len(set(days)) == (31 if month == 3 else 30)
    assert {run[-5:] for run in done} == {"00:30"}


async def test_timed_rule_at_0130_runs_once_when_the_clocks_go_back(
    timers: Timers, clock: FrozenClock
) -> None:
    clock.set(datetime(2024, 11, 2, 22, 0, tzinfo=NEW_YORK))
    await timers.load(daily("30 1 * * *", "America/New_York"))

    # Waking every 10 minutes goes through 01:00-02:00 twice that night.
    done = await runs_until(
        timers, datetime(2024, 11, 4, 3, 0, tzinfo=NEW_YORK), timedelta(minutes=10)
    )
    assert done == ["daily@2024-11-03T05:30Z", "daily@2024-11-04T06:30Z"]


async def test_timed_rule_fires_when_nobody_arrived(
    timers: Timers, clock: FrozenClock
) -> None:
    clock.set(datetime(2024, 3, 4, 9, 0, tzinfo=NEW_YORK))
    await timers.load(nobody_in())

    [outcome] = await timers.run_due(timedelta(hours=1))
    assert (outcome.ref, outcome.outcome, outcome.note) == (
        "nobody-in-by-ten@2024-03-04T15:00Z",
        "ran",
        "on time",
    )
    [(event_id, rule_id, step, body)] = timers.outbox()
    assert (event_id, rule_id, step) == (
        "nobody-in-by-ten@2024-03-04T15:00Z",
        "nobody-in-by-ten",
        "0",
    )
    assert json.loads(body)["message"] == (
        "nobody-in-by-ten: nobody at HQ by 2024-03-04T10:00:00-05:00"
    )


@pytest.mark.parametrize(
    "location",
    [
        "Harborview Labs HQ",
        "harborview labs hq",
        "3b6f2a10-8c1e-4d5a-9f21-0c7e5a9b1d01",
    ],
    ids=["name", "name-any-case", "uuid"],
)
async def test_timed_rule_arrived_today_sees_the_first_arrival(
    timers: Timers, clock: FrozenClock, location: str
) -> None:
    clock.set(datetime(2024, 3, 4, 9, 0, tzinfo=NEW_YORK))
    await timers.load(nobody_in(location=location))
    await timers.post(payload("01", uuid="badge-1", event_time="2024-03-04T13:58:00Z"))

    [outcome] = await timers.run_due(timedelta(hours=1))
    assert outcome.outcome == "not met"
    [trace] = timers.timer_traces()
    assert trace["conditions"][0]["children"][0]["detail"] == (
        f"Jordan Example arrived at {location} 08:58 local on 2024-03-04"
    )
    assert timers.outbox() == []


async def test_timed_rule_arrival_after_the_run_time_does_not_count(
    timers: Timers, clock: FrozenClock
) -> None:
    clock.set(datetime(2024, 3, 4, 9, 0, tzinfo=NEW_YORK))
    await timers.load(nobody_in("on_missed: {grace: 2h}"))
    await timers.restart(down_for=timedelta(hours=1, minutes=30))
    await timers.post(payload("01", uuid="badge-1", event_time="2024-03-04T15:20:00Z"))

    [outcome] = await timers.run_due()
    assert outcome.outcome == "ran"


async def test_timed_rule_run_is_not_repeated_after_a_restart(
    timers: Timers, clock: FrozenClock
) -> None:
    clock.set(datetime(2024, 3, 4, 9, 59, tzinfo=NEW_YORK))
    await timers.load(nobody_in())
    assert len(await timers.run_due(timedelta(minutes=1))) == 1

    await timers.restart(down_for=timedelta(seconds=5))
    assert await timers.run_due() == []
    assert len(timers.outbox()) == 1


async def test_timed_rule_missed_while_down_runs_late_within_grace(
    timers: Timers, clock: FrozenClock
) -> None:
    clock.set(datetime(2024, 3, 4, 9, 50, tzinfo=NEW_YORK))
    await timers.load(nobody_in("on_missed: {policy: run, grace: 30m}"))
    await timers.restart(down_for=timedelta(minutes=25))

    [outcome] = await timers.run_due()
    assert (outcome.outcome, outcome.note) == (
        "ran",
        "due 2024-03-04 15:00:00Z, missed while the daemon was down "
        "(15m late); on_missed: run within 30m, so run now",
    )
    # Rendered for the time it was due, not for when it ran.
    [(_, _, _, body)] = timers.outbox()
    assert json.loads(body)["message"].endswith("2024-03-04T10:00:00-05:00")


@pytest.mark.parametrize(
    ("on_missed", "note"),
    [
        ("on_missed: skip", "on_missed: skip, so not run"),
        ("on_missed: {grace: 10m}", "on_missed: run within 10m, too late, so skipped"),
    ],
    ids=["skip", "past-grace"],
)
async def test_timed_rule_missed_while_down_is_skipped_and_traced(
    timers: Timers, clock: FrozenClock, on_missed: str, note: str
) -> None:
    clock.set(datetime(2024, 3, 4, 9, 50, tzinfo=NEW_YORK))
    await timers.load(nobody_in(on_missed))
    await timers.restart(down_for=timedelta(minutes=25))

    [outcome] = await timers.run_due()
    assert outcome.outcome == "skipped"
    assert outcome.note == (
        f"due 2024-03-04 15:00:00Z, missed while the daemon was down (15m late); {note}"
    )
    assert timers.timer_traces()[0]["outcome"] == "skipped"
    assert timers.outbox() == []
    # The next day runs as usual.
    assert [o.outcome for o in await timers.run_due(timedelta(days=1))] == ["ran"]


async def test_timed_rule_down_for_days_runs_only_the_latest_missed_run(
    timers: Timers, clock: FrozenClock
) -> None:
    clock.set(datetime(2024, 3, 4, 9, 0, tzinfo=NEW_YORK))
    await timers.load(nobody_in("on_missed: {grace: 1h}"))
    await timers.restart(down_for=timedelta(days=2, hours=1, minutes=20))

    [outcome] = await timers.run_due()
    assert outcome.ref == "nobody-in-by-ten@2024-03-06T15:00Z"
    assert outcome.note.endswith(
        "; the runs missed from nobody-in-by-ten@2024-03-04T15:00Z on were skipped"
    )
