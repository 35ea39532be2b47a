"""How a rule's trace is put in words: which part of it said no."""

from __future__ import annotations

from typing import Any

import pytest

from genea_automate.dryrun.explain import explain_rule, why_not_fired


@pytest.mark.parametrize(
    ("stopped_by", "line", "sentence"),
    [
        ("enabled", "enabled: no, R", "R (`enabled: false`)"),
        ("when", "when: no, R", "its `when` did not match: R"),
        ("max_event_age", "max_event_age: no, R", "the event is too old for it: R"),
        (None, "when: no, R", "its `when` did not match: R"),  # an older trace
    ],
)
def test_the_part_that_said_no_is_named(
    stopped_by: str | None, line: str, sentence: str
) -> None:
    trace: dict[str, Any] = {"rule": "r", "fired": False, "matched": False}
    trace["reason"] = "R"
    if stopped_by is not None:
        trace["stopped_by"] = stopped_by

    assert explain_rule(trace) == [line]
    assert why_not_fired(trace) == sentence
