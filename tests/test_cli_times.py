"""Times on the command line (`--at`, `--since`): ISO with a zone, a duration ago, now."""

from __future__ import annotations

import argparse
from datetime import UTC, datetime, timedelta

import pytest

from genea_automate.cli.options import parse_when


@pytest.mark.parametrize(
    ("text", "ago"),
    [("now", timedelta(0)), ("NOW", timedelta(0)), ("2h", timedelta(hours=2))],
)
def test_parse_when_reads_now_and_durations_ago(text: str, ago: timedelta) -> None:
    before = datetime.now(UTC)
    when = parse_when(text)
    after = datetime.now(UTC)
    assert before - ago <= when <= after - ago


def test_parse_when_reads_an_iso_time_with_its_zone() -> None:
    assert parse_when("2025-03-03T08:30:00-05:00") == datetime(
        2025, 3, 3, 13, 30, tzinfo=UTC
    )


@pytest.mark.parametrize(
    ("text", "says"),
    [
        ("2025-03-03T08:30", "has no time zone; add one, e.g. 2025-03-03T08:30Z"),
        ("tomorrow", "is not a time; write it like 2025-03-03T08:30:00-05:00"),
    ],
)
def test_parse_when_refuses_what_it_cannot_place(text: str, says: str) -> None:
    with pytest.raises(argparse.ArgumentTypeError, match=says):
        parse_when(text)
