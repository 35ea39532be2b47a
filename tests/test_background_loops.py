"""A bug escaping a background loop is logged, and the loop starts again."""

from __future__ import annotations

import asyncio
import logging

import pytest

from genea_automate import app
from genea_automate.decider import DecidingProcessEnded


@pytest.mark.parametrize(
    ("raised", "logged", "traceback"),
    [
        (
            RuntimeError("a bug in the loop"),
            "event processing stopped on an unexpected error; starting it again in 0s",
            True,
        ),
        (
            # One of ours says itself what happened: no traceback.
            DecidingProcessEnded("the deciding process 42 ended with exit code -9"),
            "event processing stopped: the deciding process 42 ended with exit code "
            "-9; starting it again in 0s",
            False,
        ),
    ],
    ids=["bug", "explained"],
)
async def test_a_loop_that_raises_is_logged_and_started_again(
    raised: Exception,
    logged: str,
    traceback: bool,
    monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
) -> None:
    monkeypatch.setattr(app, "RESTART_WAITS", (0.0,))
    calls = 0
    second_run = asyncio.Event()

    async def run() -> None:
        nonlocal calls
        calls += 1
        if calls == 1:
            raise raised
        second_run.set()
        await asyncio.Event().wait()  # runs until cancelled, as the loops do

    task = asyncio.create_task(app.keep_running("event processing", run))
    await asyncio.wait_for(second_run.wait(), timeout=5)
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task

    [record] = [r for r in caplog.records if r.levelno == logging.ERROR]
    assert record.getMessage() == logged
    assert (record.exc_info is not None) is traceback
    if traceback:
        assert record.exc_info[1] is raised


@pytest.mark.parametrize(
    ("healthy_run", "waits"),
    [
        (300.0, ["0s", "0.001s", "0.002s"]),  # failing at once: the waits grow
        (-1.0, ["0s", "0s", "0s"]),  # each run long enough: they start over
    ],
    ids=["failing", "ran-long-enough"],
)
async def test_waits_between_restarts_grow_until_a_run_lasts(
    healthy_run: float,
    waits: list[str],
    monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
) -> None:
    monkeypatch.setattr(app, "RESTART_WAITS", (0.0, 0.001, 0.002))
    monkeypatch.setattr(app, "HEALTHY_RUN", healthy_run)
    third_run = asyncio.Event()
    calls = 0

    async def run() -> None:
        nonlocal calls
        calls += 1
        if calls == 4:
            third_run.set()
            await asyncio.Event().wait()
        raise RuntimeError("still broken")

    task = asyncio.create_task(app.keep_running("delivery", run))
    await asyncio.wait_for(third_run.wait(), timeout=5)
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task

    assert [r.getMessage().rsplit(" ", 1)[-1] for r in caplog.records] == waits
