"""`trace`: why each rule did or did not fire, from the daemon's own records."""

from __future__ import annotations

import asyncio
import re
import textwrap
from pathlib import Path

import pytest

from genea_automate.cli import main
from tests.support.decisions import decide_in_store
from tests.support.genea import payload

RULES = """
store: "sqlite:///./store.db"
endpoints: {main: {secret: s}}
mqtt: {default: {url: "mqtt://127.0.0.1:1"}}
schedules:
  office-hours: {windows: [{days: mon-fri, from: "07:00", to: "19:00"}]}
rules:
  - id: coffee
    when: {event: access.granted}
    if: [{first_arrival: location}, {schedule: office-hours}]
    then: [{mqtt: {topic: coffee, payload: "ON"}}]
  - id: denied
    when: {event: access.denied}
    then: [{log: {message: "denied at {{ door.name }}"}}]
"""


@pytest.fixture
def config(tmp_path: Path) -> Path:
    path = tmp_path / "rules.yaml"
    path.write_text(textwrap.dedent(RULES))
    second = payload("01", uuid="second", event_time="2025-03-03T14:10:00.000Z")
    second["actor"]["user_name"] = "Sam Example"
    asyncio.run(decide_in_store(path, [payload("01"), second, payload("06")]))
    return path


def trace(config: Path, *args: str) -> int:
    return main(["trace", "-c", str(config), *args])


def listed(out: str) -> list[list[str]]:
    """The cells of each line of a listing, header first."""
    return [re.split(r"\s{2,}", line) for line in out.splitlines()]


HEADER = ["RECEIVED", "EVENT TIME", "EVENT", "KIND", "WHERE", "VERDICT"]


def test_trace_of_an_event_explains_every_rule_and_its_actions(
    config: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert trace(config, "67c5b5741a2b3c4d5e6f7081") == 0
    assert capsys.readouterr().out == textwrap.dedent("""\
        event 67c5b5741a2b3c4d5e6f7081: access.granted
          2025-03-03T08:58:11-05:00, Harborview Labs HQ, Jordan Example
        rule coffee: fired
          when: yes
          first_arrival: yes, first arrival of 2025-03-03 at Harborview Labs HQ
          schedule: yes, Mon 2025-03-03 08:58 EST is inside 07:00-19:00
          step 0: mqtt default coffee (pending)
        rule denied: did not fire
          when: no, kind access.granted is not access.denied
    """)


def test_trace_lists_the_events_a_rule_considered(
    config: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert trace(config, "--rule", "coffee") == 0
    assert listed(capsys.readouterr().out) == [
        HEADER,
        [
            "2025-03-03T14:10:00+00:00",
            "2025-03-03T09:10:00-05:00",
            "second",
            "access.granted",
            "Harborview Labs HQ / Sam Example",
            "coffee did not fire: the condition first_arrival said no: not the "
            "first: Jordan Example arrived 08:58 local on 2025-03-03",
        ],
        [
            "2025-03-03T13:58:11+00:00",
            "2025-03-03T08:58:11-05:00",
            "67c5b5741a2b3c4d5e6f7081",
            "access.granted",
            "Harborview Labs HQ / Jordan Example",
            "coffee fired",
        ],
    ]


def test_trace_lists_the_last_received_first_with_both_times_to_the_second(
    config: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    # A fresh event (Genea times carry milliseconds), then an old sample resent.
    fresh = payload("01", uuid="fresh", event_time="2026-12-04T16:02:20.660Z")
    asyncio.run(decide_in_store(config, [fresh], at="2026-12-04T16:02:20.660Z"))
    resent = payload("01", uuid="resent")
    asyncio.run(decide_in_store(config, [resent], at="2026-12-04T16:05:00Z"))

    assert trace(config, "--limit", "2") == 0

    rows = listed(capsys.readouterr().out)
    assert [row[:3] for row in rows] == [
        HEADER[:3],
        ["2026-12-04T16:05:00+00:00", "2025-03-03T08:58:11-05:00", "resent"],
        ["2026-12-04T16:02:20+00:00", "2026-12-04T11:02:20-05:00", "fresh"],
    ]
    assert trace(config, "fresh") == 0
    heading = capsys.readouterr().out.splitlines()[1]
    assert heading.startswith("  2026-12-04T11:02:20-05:00, Harborview Labs HQ")


@pytest.mark.parametrize(
    ("args", "expected"),
    [
        (["--door", "loading"], ["67aab28d6f708192a3b4c5d6"]),
        (["--user", "sam"], ["second"]),
        (["--kind", "access.granted", "--limit", "1"], ["second"]),
        (["--location", "nowhere"], []),
    ],
)
def test_trace_filters(
    config: Path,
    capsys: pytest.CaptureFixture[str],
    args: list[str],
    expected: list[str],
) -> None:
    assert trace(config, *args) == 0
    rows = listed(capsys.readouterr().out)
    assert [row[2] for row in rows[1:]] == expected


def test_trace_of_an_unknown_event_says_why_it_may_be_missing(
    config: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert trace(config, "nope") == 1
    assert capsys.readouterr().err == (
        "error: no event 'nope' in the store; old ones are pruned "
        "(traces: keep_for in the rules file)\n"
    )


def test_trace_of_a_rule_not_in_the_rules_file_says_so(
    config: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert trace(config, "--rule", "cofee") == 1
    assert capsys.readouterr() == (
        "",
        f"error: there is no rule 'cofee' in {config} (did you mean 'coffee'?)\n",
    )


def test_trace_of_a_rule_removed_since_still_shows_its_traces(
    config: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    config.write_text(config.read_text().split("  - id: denied")[0])
    assert trace(config, "--rule", "denied") == 0
    [_, row] = listed(capsys.readouterr().out)
    assert row[2] == "67aab28d6f708192a3b4c5d6" and row[-1] == "denied fired"
