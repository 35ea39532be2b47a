"""Durable storage: received events, rule state, the action outbox, traces."""

from pathlib import Path

from genea_automate.clock import Clock
from genea_automate.store.base import (
    ActionToQueue,
    DeadLetter,
    Decision,
    EventRef,
    FirstArrival,
    OutboxItem,
    StateTx,
    Store,
    StoredEvent,
)

__all__ = [
    "ActionToQueue",
    "DeadLetter",
    "Decision",
    "EventRef",
    "FirstArrival",
    "OutboxItem",
    "StateTx",
    "Store",
    "StoredEvent",
    "absolute_store_url",
    "open_store",
]


def open_store(
    url: str,
    clock: Clock | None = None,
    *,
    must_exist: bool = False,
    exclusive: bool = False,
) -> Store:
    """A store for a URL such as 'sqlite:///./genea-automate.db'.

    With `must_exist`, opening fails instead of creating an empty store; with
    `exclusive` (a daemon's), it fails while another daemon uses the store.
    """
    from genea_automate.store.sqlite import SqliteStore

    return SqliteStore.from_url(url, clock, must_exist=must_exist, exclusive=exclusive)


def absolute_store_url(url: str, folder: Path) -> str:
    """`url` with a relative path taken from `folder`, the rules file's."""
    from genea_automate.store.sqlite import absolute_url

    return absolute_url(url, folder)
