"""The `retention` section: how long the store keeps work that is done.

    retention:
      events: 30d            # bodies of decided events older than this go...
      max_events: 100000     # ...and those beyond the newest this many
      dedup: 7d              # event uuids are remembered this long, 7d at least
      delivered_actions: 7d  # delivered actions older than this go
      every: 10m             # how often the store is pruned

Pending events and actions are never pruned, nor dead letters (drop those with
`genea-automate dlq drop`); traces and timer runs follow the `traces` section. Rule
state (first arrivals, counted events, cooldowns) goes once no rule of the current
file can ask about it (see genea_automate/retention.py).
"""

from __future__ import annotations

from datetime import timedelta

from pydantic import Field, field_validator

from genea_automate.config.endpoints import FrozenModel
from genea_automate.config.values import Duration

MIN_DEDUP = timedelta(days=7)


class RetentionConfig(FrozenModel):
    """What the periodic pruning of the store removes, by age and by count."""

    events: Duration = timedelta(days=30)
    max_events: int = Field(default=100_000, ge=100)
    dedup: Duration = MIN_DEDUP
    delivered_actions: Duration = timedelta(days=7)
    every: Duration = Field(default=timedelta(minutes=10))

    @field_validator("dedup")
    @classmethod
    def _long_enough(cls, value: timedelta) -> timedelta:
        if value < MIN_DEDUP:
            raise ValueError(
                f"dedup must be at least 7d, so that a webhook Genea sends again "
                f"is still known as a duplicate; got {value.total_seconds():g}s"
            )
        return value

    @field_validator("every")
    @classmethod
    def _not_too_often(cls, value: timedelta) -> timedelta:
        if value < timedelta(seconds=1):
            raise ValueError(
                f"every must be 1s or more, got {value.total_seconds():g}s"
            )
        return value
