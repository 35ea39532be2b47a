"""`replay`: 500 stored events through edited rules, and exactly what would differ."""

from __future__ import annotations

import asyncio
import random
from collections.abc import Iterator
from datetime import UTC, date, datetime, time, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import pytest

from genea_automate.cli import main
from genea_automate.dryrun.testfile import genea_time
from tests.support.decisions import decide_in_store
from tests.support.genea import payload

NEW_YORK = ZoneInfo("America/New_York")
FIRST_DAY = date(2025, 3, 1)  # the clocks go forward on 2025-03-09
DAYS, PER_DAY = 25, 20

RULES = """
store: "sqlite:///{folder}/store.db"
endpoints: {{main: {{secret: s}}}}
mqtt: {{default: {{url: "mqtt://127.0.0.1:1"}}}}
schedules:
  office-hours:
    windows: [{{days: mon-fri, from: "{opens}", to: "19:00"}}]
rules:
  - id: coffee
    when: {{event: access.granted, location: Harborview Labs HQ}}
    if: [{{first_arrival: location}}, {{schedule: office-hours}}]
    then: [{{mqtt: {{topic: office/coffee/set, payload: "{word}"}}}}]
  - id: denied
    when: {{event: access.denied}}
    then: [{{log: {{message: "denied at {{{{ door.name }}}}"}}}}]
"""


def events() -> Iterator[dict[str, Any]]:
    """500 badges at HQ, from a first one at 05:00-09:30 local to noon; about
    one in seven refused."""
    chance = random.Random(6)
    for day in range(DAYS):
        local_day = FIRST_DAY + timedelta(days=day)
        start = 5 * 60 + 30 + day * 47 % 240  # 05:30 to 09:30, spread over days
        minutes = sorted(chance.sample(range(start, 12 * 60), PER_DAY))
        for n, minute in enumerate(minutes):
            local = datetime.combine(local_day, time(minute // 60, minute % 60))
            when = local.replace(tzinfo=NEW_YORK).astimezone(UTC)
            denied = chance.random() < 0.15
            data = payload("06" if denied else "01", uuid=f"ev-{day:02}-{n:02}")
            data["event_time"] = genea_time(when)
            yield data


def coffee_days(opens: int) -> set[str]:
    """Per local day, the first granted badge, if it fell in office hours."""
    firsts: dict[date, tuple[datetime, str]] = {}
    for data in events():
        if data["event_action"] != "SEQUR_ACCESS_GRANTED":
            continue
        local = datetime.fromisoformat(data["event_time"]).astimezone(NEW_YORK)
        firsts.setdefault(local.date(), (local, data["uuid"]))
    return {
        uuid
        for local, uuid in firsts.values()
        if local.weekday() < 5 and time(opens) <= local.time() < time(19)
    }


@pytest.fixture(scope="module")
def history(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A store in which the original rules decided all 500 events."""
    folder = tmp_path_factory.mktemp("replay")
    rules = folder / "rules.yaml"
    rules.write_text(RULES.format(folder=folder, opens="07:00", word="ON"))
    all_events = list(events())
    assert len(all_events) == 500
    asyncio.run(decide_in_store(rules, all_events))
    return folder


def replay(
    folder: Path, capsys: pytest.CaptureFixture[str], *args: str, **edit: str
) -> tuple[int, list[str]]:
    other = folder / "other.yaml"
    values = {"opens": "07:00", "word": "ON"} | edit
    other.write_text(RULES.format(folder=folder, **values))
    status = main(["replay", "-c", str(other), *args])
    return status, capsys.readouterr().out.splitlines()


def listed(lines: list[str], sign: str) -> set[str]:
    return {line.split()[2] for line in lines if line.startswith(f"{sign} event ")}


def test_replay_with_a_later_opening_lists_exactly_the_lost_coffees(
    history: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    status, lines = replay(
        history, capsys, "--since", "2025-03-01T00:00-05:00", opens="08:00"
    )
    lost = coffee_days(7) - coffee_days(8)
    assert status == 1 and len(lost) > 3
    assert lines[0].startswith("replayed 500 event(s) received since 2025-03-01T00")
    assert lines[1] == f"{len(lost)} action(s) would differ:"
    assert listed(lines, "-") == lost
    assert listed(lines, "+") == listed(lines, "~") == set()
    removal = next(i for i, line in enumerate(lines) if line.startswith("- event"))
    assert (
        "rule coffee step 0, mqtt default office/coffee/set: would no longer run"
        in (lines[removal])
    )
    assert lines[removal + 1].strip().startswith("the condition schedule said no: ")


def test_replay_with_an_earlier_opening_lists_the_new_coffees(
    history: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    status, lines = replay(
        history, capsys, "--since", "2025-03-01T00:00-05:00", opens="05:00"
    )
    assert status == 1
    assert listed(lines, "+") == coffee_days(5) - coffee_days(7)
    assert listed(lines, "-") == set()


def test_replay_with_another_payload_lists_every_coffee_as_changed(
    history: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    status, lines = replay(
        history, capsys, "--since", "2025-03-01T00:00-05:00", word="On"
    )
    assert status == 1
    assert listed(lines, "~") == coffee_days(7)
    changed = next(i for i, line in enumerate(lines) if line.startswith("~ event"))
    assert lines[changed + 1].endswith('"payload": "ON", "qos": 1, "retain": false}')
    assert lines[changed + 2].strip().startswith('now: {"connection": "default"')


def test_replay_of_the_same_rules_from_mid_morning_differs_in_nothing(
    history: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    # Without the warm-up, the first badge after 09:00 would look like the first.
    status, lines = replay(history, capsys, "--since", "2025-03-12T09:00-04:00")
    assert status == 0
    assert lines[-1] == "no action would differ"
    earlier = int(lines[0].rsplit("(", 1)[1].split()[0])
    assert earlier > 0 and lines[0].endswith("0 skipped: undecided or pruned)")


def test_replay_that_cannot_run_exits_2_not_1_which_means_a_difference(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    rules = tmp_path / "rules.yaml"
    rules.write_text(RULES.format(folder=tmp_path, opens="07:00", word="ON"))

    status = main(["replay", "-c", str(rules), "--since", "2025-03-01T00:00Z"])

    assert status == 2
    err = capsys.readouterr().err
    assert err.startswith(f"error: there is no SQLite store at {tmp_path}/")
    assert "if the daemon's store is elsewhere (this rules file being a copy" in err
