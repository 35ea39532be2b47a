"""Options, and the loading of the rules file, that several subcommands share."""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import sys
from collections.abc import AsyncIterator, Awaitable, Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, TypeVar

from genea_automate.errors import GeneaAutomateError, StoreUnavailableError

if TYPE_CHECKING:
    from genea_automate.config.loader import LoadedConfig
    from genea_automate.store import Store

T = TypeVar("T")
DEFAULT_CONFIG = "rules.yaml"


def add_config_option(
    parser: argparse.ArgumentParser, *, defaults: bool = True
) -> None:
    """-c; without `defaults`, for the sub-parser of a command that takes it
    before its action too (`dlq -c x list`), whose default would overwrite it."""
    parser.add_argument(
        "-c",
        "--config",
        type=Path,
        default=Path(DEFAULT_CONFIG) if defaults else argparse.SUPPRESS,
        help=f"the rules file (default: {DEFAULT_CONFIG})",
    )


def check_default_config(args: argparse.Namespace) -> None:
    """A missing default rules file gets advice, not a file:line:column error."""
    config = getattr(args, "config", None)
    if config == Path(DEFAULT_CONFIG) and not config.exists():
        raise GeneaAutomateError(
            f"there is no {DEFAULT_CONFIG} in this folder; name the rules file with "
            "-c, e.g. -c rules.example.yaml, or copy rules.example.yaml to "
            f"{DEFAULT_CONFIG} and edit it"
        )


def load_for_dry_run(config: Path) -> LoadedConfig:
    """The rules file for a command that sends nothing: simulate, test, replay.

    Unset `${VAR}`s read as placeholders, named in one note, so that these run
    where the daemon's secrets are not set, as in CI.
    """
    from genea_automate.config.loader import load_config

    loaded = load_config(config, unset_ok=True)
    if loaded.unset:
        print(
            f"note: not set: {', '.join(loaded.unset)}; placeholders stand in, "
            "as this command sends nothing (`serve` needs them set)",
            file=sys.stderr,
        )
    return loaded


def add_store_options(
    parser: argparse.ArgumentParser, *, defaults: bool = True
) -> None:
    """-c and --store, for commands that read a daemon's store."""
    add_config_option(parser, defaults=defaults)
    parser.add_argument(
        "--store",
        metavar="URL",
        default=None if defaults else argparse.SUPPRESS,
        help="the daemon's store (default: `store:` of the rules file)",
    )


def with_daemon_store(
    args: argparse.Namespace, work: Callable[[Store], Awaitable[T]]
) -> T:
    """Run `work` against the daemon's store, opened only for it, never created."""
    from genea_automate.store import open_store

    url = daemon_store_url(args)

    async def run() -> T:
        store = open_store(url, must_exist=True)
        try:
            await store.open()
        except StoreUnavailableError as exc:
            raise StoreUnavailableError(_with_store_hint(args, str(exc))) from None
        try:
            return await work(store)
        finally:
            await store.close()

    return asyncio.run(run())


@contextlib.asynccontextmanager
async def daemon_stopped(args: argparse.Namespace) -> AsyncIterator[bool]:
    """Hold the daemon's lock on its store if it is free.

    True while held: no daemon runs, so none is delivering an action, and none
    can start until the block ends. False while a daemon runs.
    """
    from genea_automate.store import open_store

    lock = open_store(daemon_store_url(args), exclusive=True)
    try:
        lock.check_can_open()  # takes the lock, or fails while a daemon holds it
    except StoreUnavailableError:
        held = False
    else:
        held = True
    try:
        yield held
    finally:
        await lock.close()


def _with_store_hint(args: argparse.Namespace, problem: str) -> str:
    """Where the store's name came from: --store, or the rules file, of which
    a copy elsewhere names another."""
    if args.store is not None:
        return f"{problem}; check --store"
    return (
        f"{problem}; check `store:` in the rules file (a relative path starts from "
        "the rules file's folder); if the daemon's store is elsewhere (this rules "
        "file being a copy, say), name it with --store, e.g. "
        "--store sqlite:////var/lib/genea-automate/genea-automate.db"
    )


def daemon_store_url(args: argparse.Namespace) -> str:
    """The store a daemon with this rules file uses, as an absolute URL.

    Only `store:` is read, so the rules file's other `${VAR}` secrets need not
    be set in this shell. A relative path starts at the rules file's folder,
    as it does for the daemon.
    """
    from genea_automate.config.models import DEFAULT_STORE
    from genea_automate.config.yamlload import load_yaml
    from genea_automate.errors import ConfigError
    from genea_automate.store import absolute_store_url

    if args.store:
        return str(args.store)
    loaded = load_yaml(args.config)
    problems = [issue for issue in loaded.issues if issue.path in ("", "store")]
    if problems:
        raise ConfigError(problems)
    url = str(loaded.data.get("store", DEFAULT_STORE))
    return absolute_store_url(url, args.config.parent)


def add_secret_option(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--secret", help="the webhook secret (default: $GENEA_WEBHOOK_SECRET)"
    )


def parse_when(text: str) -> datetime:
    """An ISO 8601 time with its offset, a duration ago (`2h`, `7d`), or `now`."""
    from genea_automate.config.values import parse_duration

    if text.strip().lower() == "now":
        return datetime.now(UTC)
    try:
        when = datetime.fromisoformat(text)
    except ValueError:
        try:
            return datetime.now(UTC) - parse_duration(text)
        except ValueError:
            raise argparse.ArgumentTypeError(
                f"{text!r} is not a time; write it like 2025-03-03T08:30:00-05:00 "
                "or 2025-03-03T13:30Z, a duration ago such as 2h or 7d, or now"
            ) from None
    if when.tzinfo is None:
        raise argparse.ArgumentTypeError(
            f"{text!r} has no time zone; add one, e.g. {text}Z or {text}-05:00"
        )
    return when
