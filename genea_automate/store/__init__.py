"""Durable storage: received events, rule state, the action outbox, traces."""

from genea_automate.clock import Clock
from genea_automate.store.base import (
    ActionToQueue,
    Decision,
    FirstArrival,
    OutboxItem,
    StateTx,
    Store,
    StoredEvent,
)

__all__ = [
    "ActionToQueue",
    "Decision",
    "FirstArrival",
    "OutboxItem",
    "StateTx",
    "Store",
    "StoredEvent",
    "open_store",
]


def open_store(url: str, clock: Clock | None = None) -> Store:
    """A store for a URL such as 'sqlite:///./genea-automate.db'."""
    from genea_automate.store.sqlite import SqliteStore

    return SqliteStore.from_url(url, clock)
