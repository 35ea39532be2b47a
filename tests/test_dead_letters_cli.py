"""`genea-automate dlq`: list, show, retry and drop, on a store beside the rules."""

from __future__ import annotations

import asyncio
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any, ClassVar

import pytest
from pydantic import BaseModel

from genea_automate.actions.delivery import DeliveryWorker
from genea_automate.cli import main
from genea_automate.errors import ActionError
from genea_automate.plugin import ActionPlugin, DeliveryContext, RenderContext
from genea_automate.store import ActionToQueue, Decision
from genea_automate.store.sqlite import SqliteStore

# The secret comes from a variable this shell does not have: dlq needs only `store`.
RULES = """
store: "sqlite:///./data/store.db"
endpoints:
  main: {secret: "${DLQ_TEST_UNSET_SECRET}"}
"""


def http_action(step: str, not_after: float | None = None) -> ActionToQueue:
    return ActionToQueue(
        rule_id="alarm", step=step, plugin="http",
        payload={"method": "POST", "url": "https://api.example.org/x?token=abc",
                 "headers": {"Authorization": "Bearer s3cret", "X-Site": "HQ"},
                 "expect_status": None, "json": {"door": "Front"}},
        order_key=f"http:{step}", description="http POST https://api.example.org/x",
        max_attempts=3, timeout=5.0, backoff=1.0, max_backoff=10.0,
        not_after=not_after,
    )  # fmt: skip


async def dead_store(path: Path) -> None:
    """Two dead letters: one that may be retried, one past its not_after."""
    store = SqliteStore(str(path))
    await store.open()
    now = datetime.now(UTC)
    await store.ingest("main", "ev-1", b"{}", now)
    [event] = await store.pending_events(1)
    actions = [http_action("0"), http_action("1", not_after=60)]
    decision = Decision(kind="x", actions=actions, event_time=now - timedelta(hours=1))
    await store.decide(event, lambda state: decision)
    for item in await store.due_actions(datetime.now(UTC), 10):
        await store.action_failed(item.id, "HTTP 500 Internal Server Error", None)
    await store.close()


@pytest.fixture
def config(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.delenv("DLQ_TEST_UNSET_SECRET", raising=False)
    (tmp_path / "data").mkdir()
    asyncio.run(dead_store(tmp_path / "data" / "store.db"))
    rules = tmp_path / "rules.yaml"
    rules.write_text(RULES)
    return rules


def test_dlq_list_shows_each_dead_letter(
    config: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["dlq", "list", "-c", str(config)]) == 0
    header, first, second = capsys.readouterr().out.splitlines()
    assert header.split() == [
        "ID",
        "FAILED",
        "AT",
        "(UTC)",
        "TRIES",
        "RULE",
        "EVENT",
        "ACTION",
        "ERROR",
    ]
    assert first.split()[0] == "1" and second.split()[0] == "2"
    assert "alarm" in first and "ev-1" in first
    assert first.endswith("HTTP 500 Internal Server Error")


def test_dlq_show_masks_what_the_plugin_calls_secret(
    config: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["dlq", "show", "2", "-c", str(config)]) == 0
    out = capsys.readouterr().out
    assert "  idempotency key: main:ev-1:alarm:1\n" in out
    assert "  attempts:        1 of 3\n" in out
    assert "s3cret" not in out and "token=abc" not in out
    assert '"X-Site": "HQ"' in out


def test_dlq_retry_all_skips_what_is_past_its_not_after(
    config: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["dlq", "retry", "--all", "-c", str(config)]) == 1
    captured = capsys.readouterr()
    assert captured.out == (
        "retried 1 dead letter(s) (1); they will be sent when the daemon runs: "
        "within about a second if it is running, else once it starts (until then "
        "`dlq list` does not show them)\n"
    )
    assert captured.err.startswith("2: not retried: its not_after passed at ")
    assert main(["dlq", "list", "-c", str(config)]) == 0
    rows = capsys.readouterr().out.splitlines()[1:]
    assert [row.split()[0] for row in rows] == ["2"]


def test_dlq_retry_and_drop_name_unknown_ids(
    config: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["dlq", "retry", "1", "7", "-c", str(config)]) == 1
    assert capsys.readouterr().err == "7: no dead letter with this id\n"
    assert main(["dlq", "drop", "2", "-c", str(config)]) == 0
    assert main(["dlq", "drop", "2", "-c", str(config)]) == 1
    assert capsys.readouterr().err == "error: no dead letter with id 2\n"
    assert main(["dlq", "list", "-c", str(config)]) == 0
    assert capsys.readouterr().out.endswith("no dead letters\n")


def test_dlq_never_creates_a_store(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    rules = tmp_path / "rules.yaml"
    rules.write_text(RULES)
    assert main(["dlq", "list", "-c", str(rules)]) == 1
    assert capsys.readouterr().err == (
        f"error: there is no SQLite store at {tmp_path}/data/store.db; check "
        "`store:` in the rules file (a relative path starts from the rules "
        "file's folder); if the daemon's store is elsewhere (this rules file being "
        "a copy, say), name it with --store, e.g. "
        "--store sqlite:////var/lib/genea-automate/genea-automate.db\n"
    )
    assert not (tmp_path / "data").exists()


def test_dlq_takes_its_options_before_the_action_too(
    config: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["dlq", "-c", str(config), "list"]) == 0
    listed = capsys.readouterr().out
    assert [row.split()[0] for row in listed.splitlines()] == ["ID", "1", "2"]

    # Given on both sides of the action, the later one counts, as elsewhere.
    assert main(["dlq", "-c", "nowhere.yaml", "list", "-c", str(config)]) == 0
    assert capsys.readouterr().out == listed

    missing = config.parent / "missing.db"
    assert (
        main(["dlq", "--store", f"sqlite:///{missing}", "-c", str(config), "list"]) == 1
    )
    assert capsys.readouterr().err == (
        f"error: there is no SQLite store at {missing}; check --store\n"
    )


def test_dlq_drop_takes_back_a_retried_action_while_no_daemon_runs(
    config: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["dlq", "retry", "1", "-c", str(config)]) == 0
    assert main(["dlq", "drop", "1", "-c", str(config)]) == 0
    assert capsys.readouterr().out.endswith(
        "dropped action 1, which was waiting to be sent; it is not sent\n"
    )
    assert main(["dlq", "drop", "1", "-c", str(config)]) == 1
    assert capsys.readouterr().err == "error: no dead letter with id 1\n"


def test_dlq_drop_refuses_an_action_waiting_to_be_sent_while_the_daemon_runs(
    config: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["dlq", "retry", "1", "-c", str(config)]) == 0
    daemon = SqliteStore(str(config.parent / "data" / "store.db"), exclusive=True)
    daemon.check_can_open()  # takes the lock as a starting daemon does
    try:
        assert main(["dlq", "drop", "1", "-c", str(config)]) == 1
    finally:
        asyncio.run(daemon.close())
    assert capsys.readouterr().err == (
        "error: 1 is not a dead letter: it is waiting to be sent, and the daemon "
        "is running, so it may be sending it right now; stop the daemon to drop "
        "it, or drop the dead letter it becomes if it fails for good\n"
    )
    # Once the daemon has stopped, it can be taken back.
    assert main(["dlq", "drop", "1", "-c", str(config)]) == 0


def test_dlq_drop_of_a_delivered_action_says_it_was_delivered(
    config: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    async def deliver_the_first() -> None:
        store = SqliteStore(str(config.parent / "data" / "store.db"))
        await store.open()
        await store.retry_dead([1], datetime.now(UTC))
        await store.action_delivered(1, datetime(2026, 12, 4, 16, 2, 20, tzinfo=UTC))
        await store.close()

    asyncio.run(deliver_the_first())
    assert main(["dlq", "drop", "1", "-c", str(config)]) == 1
    assert capsys.readouterr().err == (
        "error: 1 is not a dead letter: it was delivered at 2026-12-04 16:02:20 UTC\n"
    )


def test_dlq_retry_that_retries_nothing_says_so_and_why(
    config: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["dlq", "retry", "2", "-c", str(config)]) == 1
    captured = capsys.readouterr()
    assert captured.out == "nothing retried\n"
    assert captured.err.startswith("2: not retried: its not_after passed at ")
    assert captured.err.endswith(" UTC; drop it instead\n")

    for item_id in ("1", "2"):
        assert main(["dlq", "drop", item_id, "-c", str(config)]) == 0
    capsys.readouterr()
    assert main(["dlq", "retry", "--all", "-c", str(config)]) == 0
    assert capsys.readouterr().out == "no dead letters to retry\n"


class Refused(ActionPlugin[BaseModel]):
    """The `http` action against a target that answers every call with a 500."""

    name: ClassVar[str] = "http"
    Options: ClassVar[type[BaseModel]] = BaseModel

    def render(self, options: BaseModel, ctx: RenderContext) -> dict[str, Any]:
        return {}

    async def deliver(self, payload: dict[str, Any], ctx: DeliveryContext) -> None:
        raise ActionError("HTTP 500 Internal Server Error")


async def expired_store(path: Path) -> None:
    """Two actions the delivery worker gave up for their not_after: the first
    was past it before any attempt, the second failed once and could not be
    retried in time."""
    store = SqliteStore(str(path))
    await store.open()
    now = datetime.now(UTC)
    await store.ingest("main", "ev-1", b"{}", now)
    [event] = await store.pending_events(1)
    untried = http_action("0", not_after=60)
    tried = replace(http_action("1", not_after=3630), backoff=600, max_backoff=600)
    hour_ago = now - timedelta(hours=1)
    decision = Decision(kind="x", actions=[untried, tried], event_time=hour_ago)
    await store.decide(event, lambda state: decision)
    worker = DeliveryWorker(store, lambda: {"http": Refused()}, store.clock)
    assert await worker.run_once() == 2
    await worker.drain(5.0)
    await store.close()


def test_dlq_counts_only_the_attempts_really_made(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    (tmp_path / "data").mkdir()
    asyncio.run(expired_store(tmp_path / "data" / "store.db"))
    rules = tmp_path / "rules.yaml"
    rules.write_text(RULES)
    for item_id, attempts in (("1", 0), ("2", 1)):
        assert main(["dlq", "show", item_id, "-c", str(rules)]) == 0
        assert f"  attempts:        {attempts} of 3\n" in capsys.readouterr().out
    assert main(["dlq", "list", "-c", str(rules)]) == 0
    rows = capsys.readouterr().out.splitlines()[1:]
    assert [row.split()[3] for row in rows] == ["0", "1"]  # TRIES
