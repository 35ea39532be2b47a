"""`when` filters: why an event does not pass them, in words."""

from __future__ import annotations

from datetime import UTC, datetime

from genea_automate.events.normalise import normalise
from genea_automate.rules.matching import make_filter
from tests.support.genea import payload

RECEIVED = datetime(2025, 3, 3, 14, 0, tzinfo=UTC)


def test_why_not_names_a_missing_part_of_the_event_plainly() -> None:
    remote_unlock = normalise(payload("04"), received_at=RECEIVED)  # no card
    only_keycards = make_filter(["door.*"], None, None, None, ["KEYCARD"])
    assert only_keycards.why_not(remote_unlock) == "the event has no card type"
