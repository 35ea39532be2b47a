"""Deciding rules in a second process, so that a second core does that work.

A Python process computes on about one core, however many the machine has.
`serve` therefore splits the pipeline in two: the serving process keeps the
webhooks, delivery, timers, reloads and the status page, and a deciding
process (`python -m genea_automate.decider`, started and watched by the first)
runs the EventProcessor on its own connection to the same store.

Both processes write to the store. SQLite runs their transactions one at a
time, and a decision reads its event's state again inside its own
transaction, so each event is still decided once, however the two interleave.

They talk over the deciding process's stdin and stdout, one JSON object a line:

    serving -> deciding   {"store": "...", "config": {...}, "logging": [...]}
                                                   first
                          {"config": {...}}        after a reload
                          {"wake": 1}              a webhook was stored
                          end of input             stop: finish the work in
                                                   hand, close the store, exit
    deciding -> serving   {"started": 1}           its rules are loaded and its
                                                   store is open
                          {"idle": 1}              nothing is pending
                          {"queued": 1, "waits": 1, "counts": [...]}
                                                   after decisions: wake the
                                                   delivery worker, the timers,
                                                   and add to the metrics
                          {"error": "..."}         why it stops on its own

The deciding process reads nothing the serving one may see differently: it
opens the store the serving process opened (a `store:` changed since counts at
the next restart), and it loads the rules from what the serving process's load
read (`ConfigInputs`: the file's text, what each `${...}` became, the plugins/
modules' text), never from the file, the environment or the folder.

The end of input is also how the deciding process learns that the serving one
died (kill -9): it never outlives it by more than the batch in hand.
"""

from __future__ import annotations

import asyncio
import collections
import json
import logging
import os
import resource
import signal
import sys
from collections.abc import Callable, Mapping
from datetime import datetime
from pathlib import Path
from typing import IO, Any

from genea_automate import metrics
from genea_automate.clock import Clock, SystemClock
from genea_automate.config.loader import ConfigInputs, LoadedConfig, load_config
from genea_automate.errors import GeneaAutomateError
from genea_automate.logs import configure_logging, logging_settings
from genea_automate.processing import EventProcessor
from genea_automate.rules.engine import RuleEngine, build_engine
from genea_automate.store import open_store

# Not __name__, which is "__main__" in the deciding process.
logger = logging.getLogger("genea_automate.decider")

# A message carries at most a rules file with its plugins, or one batch's counts.
MAX_MESSAGE = 64 * 1024 * 1024
STOP_GRACE = 5.0  # for the batch in hand, once asked to stop; then it is killed
# The most memory the deciding process may map, about ten times what it needs:
# a template that builds a huge value in one step fails with MemoryError, as
# a render error of its rule, before it can starve the machine.
MEMORY_LIMIT = 2 * 1024**3


class DecidingProcessEnded(GeneaAutomateError):
    """The deciding process exited without being asked to."""


class DecidingProcess:
    """The serving process's side: starts, feeds and stops the deciding process.

    It stands in for an EventProcessor: `run` for the daemon's loop, `wake`
    when a webhook was stored, `caught_up` once the backlog is decided.
    `store_url` is the store the serving process opened, whatever the rules
    file says by now.
    """

    def __init__(
        self,
        store_url: str,
        loaded: Callable[[], LoadedConfig],
        clock: Clock,
        on_actions_queued: Callable[[], None],
        on_waits_begun: Callable[[], None],
    ) -> None:
        self._store_url = store_url
        self._loaded = loaded
        self._clock = clock
        self._on_actions_queued = on_actions_queued
        self._on_waits_begun = on_waits_begun
        self.caught_up = asyncio.Event()
        self._process: asyncio.subprocess.Process | None = None
        # A wake is sent only while the deciding process may be idle: one sent
        # and not yet answered by "idle" would do the same work again.
        self._awake = False
        self._missed = False
        self._down_since: datetime | None = clock.now()
        self._down_reason = "starting"
        self._last_error = ""  # what the running process said as it stopped

    @property
    def running(self) -> bool:
        """Whether a deciding process has started and is deciding."""
        return self._down_since is None

    def health(self) -> str:
        """`running`, or since when rules are not decided, and the last reason."""
        if self._down_since is None:
            return "running"
        since = f"{self._down_since:%Y-%m-%d %H:%M:%S} UTC"
        return f"not running since {since}: {self._down_reason}"

    def wake(self) -> None:
        """A webhook was stored: have it decided."""
        if self._awake:
            self._missed = True
        else:
            self._awake = self._send({"wake": 1})

    def rules_changed(self, loaded: LoadedConfig) -> None:
        """Hand a reloaded rules file over; the serving side swapped it already."""
        self._send({"config": _config_message(loaded)})

    async def run(self) -> None:
        """Run the deciding process; raises when it ends on its own."""
        process = await asyncio.create_subprocess_exec(
            sys.executable,
            "-m",
            __name__,
            stdin=asyncio.subprocess.PIPE,
            stdout=asyncio.subprocess.PIPE,
            limit=MAX_MESSAGE,
        )
        assert process.stdout is not None  # PIPE was asked for
        self._process, self._awake, self._missed = process, True, False
        self._last_error = ""
        logger.info("rules are decided in a second process, pid %d", process.pid)
        try:
            self._send(
                {
                    "store": self._store_url,
                    "config": _config_message(self._loaded()),
                    "logging": logging_settings(),
                }
            )
            while line := await process.stdout.readline():
                self._received(json.loads(line))
        finally:
            self._process, self._awake = None, False
            await self._stop(process)
            self._went_down(process)
            # Had it died, its last decisions may have queued actions unreported.
            self._on_actions_queued()
            self._on_waits_begun()
        raise DecidingProcessEnded(
            f"{self._down_reason}; events are stored and wait for it"
        )

    def _went_down(self, process: asyncio.subprocess.Process) -> None:
        if self._down_since is None:
            self._down_since = self._clock.now()
        self._down_reason = (
            f"the deciding process {process.pid} ended with exit code "
            f"{process.returncode}"
        )
        if self._last_error:
            self._down_reason += f": {self._last_error}"

    async def _stop(self, process: asyncio.subprocess.Process) -> None:
        """Close its input, which asks it to stop once the batch in hand is
        decided; take its last reports; kill it if it takes too long."""
        assert process.stdout is not None  # PIPE was asked for
        if process.stdin is not None:
            process.stdin.close()
        try:
            async with asyncio.timeout(STOP_GRACE):
                while line := await process.stdout.readline():
                    self._received(json.loads(line))
                await process.wait()
        except TimeoutError:
            logger.warning(
                "deciding process %d did not stop within %gs; killed it",
                process.pid, STOP_GRACE,
            )  # fmt: skip
            process.kill()
            await process.wait()

    def _send(self, message: Mapping[str, Any]) -> bool:
        process = self._process
        if process is None or process.stdin is None or process.stdin.is_closing():
            return False  # a new process reads what is pending when it starts
        process.stdin.write(message_line(message))
        return True

    def _received(self, message: Mapping[str, Any]) -> None:
        if message.get("started"):
            self._down_since = None
        if message.get("error"):
            self._last_error = message["error"]
        if message.get("counts"):
            metrics.decisions_counted(
                {tuple(item[:-1]): item[-1] for item in message["counts"]}
            )
        if message.get("queued"):
            self._on_actions_queued()
        if message.get("waits"):
            self._on_waits_begun()
        if message.get("idle"):
            self.caught_up.set()
            self._awake = False
            if self._missed:
                self._missed = False
                self.wake()


def message_line(message: Mapping[str, Any]) -> bytes:
    """One message to the deciding process, as `_read` takes it back.

    As UTF-8, not \\u escapes (six bytes for each é of a plugin's text); an
    environment value that is not UTF-8 goes back to its own bytes.
    """
    text = json.dumps(message, ensure_ascii=False)
    return text.encode(errors="surrogateescape") + b"\n"


def _config_message(loaded: LoadedConfig) -> dict[str, Any]:
    inputs = loaded.inputs
    return {
        "path": str(loaded.path),
        "text": inputs.text,
        "expansions": dict(inputs.expansions),
        "plugins": dict(inputs.plugins),
    }


# -- the deciding process -------------------------------------------------------


class _Decider:
    """The deciding process's side: its rules, and what it reports back."""

    def __init__(self, channel: IO[bytes]) -> None:
        self._channel = channel
        self.loaded: LoadedConfig | None = None
        self.engine: RuleEngine | None = None
        self._counts: collections.Counter[tuple[str, ...]] = collections.Counter()
        self._queued = self._waits = False
        self._report_due = False

    def install(self, config: Mapping[str, Any]) -> None:
        """Load the rules the serving process validated and swapped in, from
        what its load read."""
        inputs = ConfigInputs(config["text"], config["expansions"], config["plugins"])
        loaded = load_config(Path(config["path"]), inputs=inputs)
        engine = build_engine(loaded.config, loaded.make_plugins())
        self.loaded, self.engine = loaded, engine

    def current_engine(self) -> RuleEngine:
        assert self.engine is not None  # installed before the start
        return self.engine

    def default_timezone(self) -> str:
        assert self.loaded is not None  # installed before the start
        return self.loaded.config.default_timezone

    def count(self, kind: str, trace: Mapping[str, Any]) -> None:
        self._counts.update(metrics.decision_counts(kind, trace))
        self._report_soon()

    def actions_queued(self) -> None:
        self._queued = True
        self._report_soon()

    def waits_begun(self) -> None:
        self._waits = True
        self._report_soon()

    def started(self) -> None:
        self._write({"started": 1})

    def idle(self) -> None:
        self._report()  # what was decided, before saying that nothing is left
        self._write({"idle": 1})

    def fail(self, why: str, exc: BaseException) -> int:
        """Say why this process stops, in the log and to the serving process;
        the exit status. A traceback only for what is not one of ours."""
        reason = f"{why}: {str(exc) or type(exc).__name__}"
        ours = isinstance(exc, GeneaAutomateError)
        logger.error(
            "the deciding process stops: %s", reason, exc_info=None if ours else exc
        )
        self._write({"error": reason})
        return 1

    def _report_soon(self) -> None:
        """One report for the decisions of one commit, which settle together."""
        if not self._report_due:
            self._report_due = True
            asyncio.get_running_loop().call_soon(self._report)

    def _report(self) -> None:
        self._report_due = False
        if not (self._counts or self._queued or self._waits):
            return
        self._write(
            {
                "queued": int(self._queued),
                "waits": int(self._waits),
                "counts": [[*key, amount] for key, amount in self._counts.items()],
            }
        )
        self._counts.clear()
        self._queued = self._waits = False

    def _write(self, message: Mapping[str, Any]) -> None:
        self._channel.write(json.dumps(message).encode() + b"\n")


async def _read(reader: asyncio.StreamReader) -> dict[str, Any] | None:
    line = await reader.readline()
    return json.loads(line.decode(errors="surrogateescape")) if line else None


async def _decide(channel: IO[bytes]) -> int:
    loop = asyncio.get_running_loop()
    reader = asyncio.StreamReader(limit=MAX_MESSAGE)
    await loop.connect_read_pipe(
        lambda: asyncio.StreamReaderProtocol(reader), sys.stdin.buffer
    )
    first = await _read(reader)
    if first is None:
        return 0
    configure_logging(*first["logging"])
    decider = _Decider(channel)
    try:
        decider.install(first["config"])
    except Exception as exc:  # whatever it is, say it before this process ends
        return decider.fail("it cannot load the rules it was sent", exc)
    store = open_store(first["store"])
    try:
        await store.open()
    except Exception as exc:
        return decider.fail("it cannot open the store", exc)
    decider.started()
    processor = EventProcessor(
        store,
        SystemClock(),
        decider.current_engine,
        decider.default_timezone,
        decider.actions_queued,
        decider.waits_begun,
        on_idle=decider.idle,
        count_decision=decider.count,
    )
    deciding = asyncio.create_task(processor.run())
    following = asyncio.create_task(_follow(reader, decider, processor))
    try:
        await asyncio.wait({deciding, following}, return_when=asyncio.FIRST_COMPLETED)
        if following.done():  # end of input: asked to stop, or the daemon died
            processor.stop_soon()
            await asyncio.wait({deciding})
    finally:
        following.cancel()
        deciding.cancel()
        await asyncio.gather(deciding, following, return_exceptions=True)
        await store.close()
        decider.idle()  # the last decisions' report
    failure = None if deciding.cancelled() else deciding.exception()
    if failure is not None:
        return decider.fail("deciding failed", failure)
    return 0


async def _follow(
    reader: asyncio.StreamReader, decider: _Decider, processor: EventProcessor
) -> None:
    """Act on the serving process's messages until its end of input."""
    while (message := await _read(reader)) is not None:
        if message.get("wake"):
            processor.wake()
        if "config" in message:
            try:
                decider.install(message["config"])
            except Exception as exc:
                # The serving process loaded these very inputs: only code that
                # acts otherwise here (a plugin, an entry point upgraded since)
                # or a bug can fail them.
                logger.error(
                    "the deciding process could not load the reloaded rules and "
                    "keeps deciding with the previous ones: %s", exc,
                    exc_info=not isinstance(exc, GeneaAutomateError),
                )  # fmt: skip


def _limit_memory(limit: int) -> None:
    """Lower the address-space limit to `limit`, never raise it."""
    soft, hard = resource.getrlimit(resource.RLIMIT_AS)
    if soft == resource.RLIM_INFINITY or soft > limit:
        bound = limit if hard == resource.RLIM_INFINITY else min(limit, hard)
        resource.setrlimit(resource.RLIMIT_AS, (bound, hard))


def main() -> int:
    # Ctrl-C and a service manager's SIGTERM reach the whole process group; the
    # serving process says when this one stops, by closing its input.
    # A terminal's hangup too: the serving process reloads on SIGHUP and then
    # hands the rules over.
    for signum in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP):
        signal.signal(signum, signal.SIG_IGN)
    _limit_memory(MEMORY_LIMIT)
    channel = os.fdopen(os.dup(sys.stdout.fileno()), "wb", buffering=0)
    os.dup2(sys.stderr.fileno(), sys.stdout.fileno())  # a stray print goes to the log
    try:
        return asyncio.run(_decide(channel))
    except BrokenPipeError:
        return 0  # the serving process is gone; nothing is left to tell it


if __name__ == "__main__":
    raise SystemExit(main())
