"""The SQLite store: durable ingest, dedup, atomic decisions, the outbox."""

from __future__ import annotations

import logging
import shutil
import sqlite3
from collections.abc import AsyncIterator, Callable
from contextlib import closing
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from genea_automate.clock import FrozenClock
from genea_automate.errors import StoreUnavailableError
from genea_automate.store import (
    ActionToQueue,
    Decision,
    EventRef,
    StateTx,
    open_store,
)
from genea_automate.store.sqlite import SqliteStore
from tests.support.readonly import unwritable

NOW = datetime(2025, 3, 3, 14, 0, tzinfo=UTC)


@pytest.fixture
async def store(tmp_path: Path) -> AsyncIterator[SqliteStore]:
    opened = SqliteStore(str(tmp_path / "store.db"), FrozenClock(NOW))
    await opened.open()
    yield opened
    await opened.close()


def action(rule: str = "r", step: str = "0", key: str = "k") -> ActionToQueue:
    return ActionToQueue(
        rule_id=rule,
        step=step,
        plugin="log",
        payload={"message": "hi"},
        order_key=key,
        description=f"log {rule}/{step}",
        max_attempts=3,
        timeout=5.0,
        backoff=1.0,
        max_backoff=10.0,
    )


def decision_with(*actions: ActionToQueue) -> Decision:
    return Decision(kind="access.granted", fired=["r"], actions=list(actions))


async def test_store_ingest_tells_new_from_duplicate(store: SqliteStore) -> None:
    assert await store.ingest("main", "u1", b"{}", NOW) is True
    assert await store.ingest("main", "u1", b"{}", NOW) is False
    assert await store.ingest("other", "u1", b"{}", NOW) is True
    pending = await store.pending_events(10)
    assert [(e.endpoint, e.uuid) for e in pending] == [("main", "u1"), ("other", "u1")]


async def test_store_ingest_survives_reopening(tmp_path: Path) -> None:
    path = str(tmp_path / "store.db")
    first = SqliteStore(path)
    await first.open()
    await first.ingest("main", "u1", b'{"a":1}', NOW)
    await first.close()

    second = SqliteStore(path)
    await second.open()
    [event] = await second.pending_events(10)
    await second.close()
    assert (event.uuid, event.body, event.received_at) == ("u1", b'{"a":1}', NOW)


async def test_store_unwritable_files_raise_then_recover(tmp_path: Path) -> None:
    folder = tmp_path / "data"
    folder.mkdir()
    store = SqliteStore(str(folder / "store.db"), FrozenClock(NOW))
    await store.open()
    await store.ingest("main", "u0", b"{}", NOW)

    # Not the -shm file: SQLite maps it into memory, and an immutable mapping
    # kills the process with SIGBUS rather than failing a write.
    files = [p for p in folder.iterdir() if not p.name.endswith("-shm")]
    with unwritable(folder, *files):
        with pytest.raises(StoreUnavailableError):
            await store.ingest("main", "u1", b"{}", NOW)
        with pytest.raises(StoreUnavailableError):
            await store.check_writable()

    assert await store.ingest("main", "u2", b"{}", NOW) is True
    pending = await store.pending_events(10)
    await store.close()
    assert [event.uuid for event in pending] == ["u0", "u2"]


async def test_store_decide_commits_actions_and_marks_event(store: SqliteStore) -> None:
    await store.ingest("main", "u1", b"{}", NOW)
    [event] = await store.pending_events(10)

    decision = await store.decide(event, lambda state: decision_with(action()))

    assert decision is not None and decision.fired == ["r"]
    assert await store.pending_events(10) == []
    [item] = await store.due_actions(NOW + timedelta(days=1), 10)
    assert item.idempotency_key == "main:u1:r:0"
    assert await store.decide(event, lambda state: decision_with(action())) is None


async def test_store_outbox_keys_name_the_endpoint_and_uuid(
    store: SqliteStore, tmp_path: Path
) -> None:
    """An action is queued once per event, and an event is its endpoint and
    uuid; a timed run, or a wait begun before endpoints were recorded, has no
    endpoint and keeps the key form it had."""
    owners = [
        EventRef("7", "main"),
        EventRef("7", "main"),
        EventRef("7", "audit"),
        EventRef("nightly@2025-03-03T14:00Z"),
    ]

    def queue(owner: EventRef) -> Callable[[StateTx], None]:
        return lambda state: state.queue_actions(
            [replace(action(), event=owner)], NOW, NOW
        )

    for owner in owners:
        await store.transact(queue(owner))

    with closing(sqlite3.connect(tmp_path / "store.db")) as db:
        rows = db.execute(
            "SELECT event_id, idempotency_key FROM outbox ORDER BY id"
        ).fetchall()
    assert rows == [
        ("7", "main:7:r:0"),
        ("7", "audit:7:r:0"),
        ("nightly@2025-03-03T14:00Z", "nightly@2025-03-03T14:00Z:r:0"),
    ]


async def test_store_decide_that_raises_leaves_nothing(store: SqliteStore) -> None:
    await store.ingest("main", "u1", b"{}", NOW)
    [event] = await store.pending_events(10)

    def broken(state: StateTx) -> Decision:
        state.claim_first_arrival("location:x:00:00:2025-03-03", "u1", NOW, "Ana")
        raise RuntimeError("bug")

    with pytest.raises(RuntimeError):
        await store.decide(event, broken)

    claimed = await store.decide(
        event,
        lambda state: Decision(
            kind=state.claim_first_arrival(
                "location:x:00:00:2025-03-03", "u2", NOW, "Bo"
            ).event_id
        ),
    )
    assert claimed is not None and claimed.kind == "u2"


async def test_store_first_arrival_keeps_the_first_claim(store: SqliteStore) -> None:
    later = NOW + timedelta(minutes=5)
    await store.ingest("main", "a", b"{}", NOW)
    await store.ingest("main", "b", b"{}", NOW)
    first, second = await store.pending_events(10)
    key = "location:hq:00:00:2025-03-03"

    def claim(event_id: str, when: datetime, who: str):  # type: ignore[no-untyped-def]
        return lambda state: Decision(
            kind="k",
            trace={"first": state.claim_first_arrival(key, event_id, when, who)},
        )

    await store.decide(first, claim("a", NOW, "Ana"))
    decided = await store.decide(second, claim("b", later, "Bo"))
    assert decided is not None
    record = decided.trace["first"]
    assert (record.event_id, record.time, record.who) == ("a", NOW, "Ana")


async def test_store_outbox_orders_each_key(store: SqliteStore) -> None:
    await store.ingest("main", "u1", b"{}", NOW)
    [event] = await store.pending_events(10)
    actions = (action("r", "0", "a"), action("r", "1", "a"), action("r", "2", "b"))
    await store.decide(event, lambda state: decision_with(*actions))

    due = await store.due_actions(NOW + timedelta(days=1), 10)
    assert [(i.order_key, i.step) for i in due] == [("a", "0"), ("b", "2")]

    await store.action_delivered(due[0].id, NOW)
    due = await store.due_actions(NOW + timedelta(days=1), 10)
    assert [(i.order_key, i.step) for i in due] == [("a", "1"), ("b", "2")]


async def test_store_failed_action_waits_then_goes_dead(store: SqliteStore) -> None:
    await store.ingest("main", "u1", b"{}", NOW)
    [event] = await store.pending_events(10)
    await store.decide(event, lambda state: decision_with(action()))
    [item] = await store.due_actions(NOW + timedelta(days=1), 10)

    retry_at = NOW + timedelta(hours=1)
    await store.action_failed(item.id, "refused", retry_at)
    assert await store.due_actions(NOW + timedelta(minutes=59), 10) == []
    assert len(await store.due_actions(retry_at, 10)) == 1
    assert await store.next_action_due(frozenset()) == retry_at
    assert await store.next_action_due(frozenset({"k"})) is None

    await store.action_failed(item.id, "refused again", None)
    assert await store.due_actions(retry_at + timedelta(days=1), 10) == []
    assert await store.next_action_due(frozenset()) is None


def test_store_url_must_be_sqlite_form() -> None:
    with pytest.raises(ValueError, match="sqlite:///./genea-automate.db"):
        open_store("sqlite://relative.db")


async def test_store_one_daemon_per_file(tmp_path: Path) -> None:
    path = str(tmp_path / "store.db")
    first = SqliteStore(path, exclusive=True)
    await first.open()

    second = SqliteStore(path, exclusive=True)
    with pytest.raises(StoreUnavailableError, match="is in use by genea-automate pid"):
        await second.open()
    inspector = SqliteStore(path, must_exist=True)
    await inspector.open()  # tools (dlq, trace) may look while the daemon runs
    await inspector.close()

    await first.close()
    await second.open()
    await second.close()


def test_store_missing_folder_is_named(tmp_path: Path) -> None:
    store = SqliteStore(str(tmp_path / "nope" / "store.db"))
    with pytest.raises(StoreUnavailableError, match="nope of the store does not exist"):
        store.check_can_open()


def tamper(store: SqliteStore, sql: str) -> None:
    """Change the file behind the store's back, as a hand edit would."""
    with closing(sqlite3.connect(store.path)) as db, db:
        db.execute(sql)


async def test_store_sets_aside_an_event_row_it_cannot_read(
    store: SqliteStore,
) -> None:
    await store.ingest("main", "damaged", b"{}", NOW)
    await store.ingest("main", "fine", b"{}", NOW)
    tamper(store, "UPDATE events SET received_at = 'garbage' WHERE uuid = 'damaged'")

    assert [event.uuid for event in await store.pending_events(10)] == ["fine"]
    with closing(sqlite3.connect(store.path)) as db:
        state, kind = db.execute(
            "SELECT state, kind FROM events WHERE uuid = 'damaged'"
        ).fetchone()
    assert state == "failed"
    assert kind.startswith("error: the stored row cannot be read: ValueError(")


async def test_store_sets_aside_an_outbox_row_it_cannot_read(
    store: SqliteStore,
) -> None:
    await store.ingest("main", "u1", b"{}", NOW)
    [stored] = await store.pending_events(1)
    await store.decide(
        stored, lambda state: decision_with(action(key="a"), action("r2", key="b"))
    )
    tamper(store, "UPDATE outbox SET payload = '{not json' WHERE order_key = 'a'")

    [item] = await store.due_actions(NOW, 10)
    assert item.order_key == "b"
    with closing(sqlite3.connect(store.path)) as db:
        state, error = db.execute(
            "SELECT state, last_error FROM outbox WHERE order_key = 'a'"
        ).fetchone()
    assert state == "dead"
    assert error.startswith("the stored row cannot be read: JSONDecodeError(")


def remove_folder(path: Path) -> None:
    shutil.rmtree(path.parent)


def replace_file(path: Path) -> None:
    with closing(sqlite3.connect(path.with_name("other.db"))) as other:
        other.execute("CREATE TABLE t (x)")
    path.with_name("other.db").replace(path)


@pytest.mark.parametrize("change", [remove_folder, replace_file], ids=["rm", "mv"])
async def test_store_whose_file_is_removed_or_replaced_stores_nothing_more(
    tmp_path: Path,
    caplog: pytest.LogCaptureFixture,
    change: Callable[[Path], None],
) -> None:
    path = tmp_path / "data" / "store.db"
    path.parent.mkdir()
    store = SqliteStore(str(path), FrozenClock(NOW))
    await store.open()
    assert await store.ingest("main", "u1", b"{}", NOW) is True

    change(path)
    for uuid in ("u2", "u3"):
        with pytest.raises(StoreUnavailableError) as failed:
            await store.ingest("main", uuid, b"{}", NOW)
        assert str(failed.value) == (
            f"the SQLite file {path} was removed or replaced; restart genea-automate"
        )
    await store.close()

    logged = [r for r in caplog.records if "removed or replaced" in r.message]
    once = (
        f"store: the SQLite file {path} was removed or replaced while "
        "genea-automate ran; nothing more can be stored (webhooks are "
        "answered 503) until genea-automate is restarted"
    )
    assert [(r.levelno, r.message) for r in logged] == [(logging.ERROR, once)]
