"""`dlq list | show | retry | drop`: the actions that failed for good.

These work on the store of a running or a stopped daemon: each change is one
short transaction, and a running daemon starts a retried action within about a
second (the delivery worker reads the outbox at least that often). A retried
action waits to be sent, no longer a dead letter; `drop` takes it back only
while no daemon runs, as a running one may be sending it at that moment.
"""

from __future__ import annotations

import argparse
import json
import sys
from datetime import UTC, datetime
from typing import Any

from genea_automate.cli.columns import aligned
from genea_automate.cli.options import (
    add_store_options,
    daemon_stopped,
    with_daemon_store,
)
from genea_automate.store.admin import ActionRecord
from genea_automate.store.base import DeadLetter, Store

ALL = 1_000_000  # "every dead letter", as a query limit
ERROR_WIDTH = 60


def register(commands: Any) -> None:
    dlq = commands.add_parser(
        "dlq", help="list, show, retry or drop dead letters",
        description="Actions that failed for good, kept until retried or dropped.",
    )  # fmt: skip
    add_store_options(dlq)
    actions = dlq.add_subparsers(required=True, metavar="ACTION")

    listing = actions.add_parser("list", help="the dead letters, oldest first")
    listing.add_argument("--limit", type=int, default=100, help="(default: 100)")
    listing.set_defaults(run=_list)

    show = actions.add_parser("show", help="one dead letter in full")
    show.add_argument("id", type=int, metavar="ID")
    show.set_defaults(run=_show)

    retry = actions.add_parser(
        "retry", help="deliver again, with fresh attempts and the same "
        "idempotency key",
    )  # fmt: skip
    which = retry.add_mutually_exclusive_group(required=True)
    which.add_argument("ids", type=int, nargs="*", default=[], metavar="ID")
    which.add_argument("--all", action="store_true", help="every dead letter")
    retry.set_defaults(run=_retry)

    drop = actions.add_parser(
        "drop", help="delete a dead letter for good, or, while no daemon runs, "
        "an action still waiting to be sent (a retried one, say)",
    )  # fmt: skip
    drop.add_argument("id", type=int, metavar="ID")
    drop.set_defaults(run=_drop)

    # -c and --store go before the action or after it; given after, they win.
    for parser in (listing, show, retry, drop):
        add_store_options(parser, defaults=False)


def _list(args: argparse.Namespace) -> int:
    letters = with_daemon_store(args, lambda store: store.dead_letters(args.limit))
    if not letters:
        print("no dead letters")
        return 0
    rows = [("ID", "FAILED AT (UTC)", "TRIES", "RULE", "EVENT", "ACTION", "ERROR")]
    rows += [
        (
            str(letter.item.id),
            _time(letter.died_at),
            str(letter.item.attempts),
            letter.item.rule_id,
            letter.item.event_id,
            letter.item.description,
            _shorten(letter.error),
        )
        for letter in letters
    ]
    print("\n".join(aligned(rows)))
    return 0


def _show(args: argparse.Namespace) -> int:
    letter = with_daemon_store(args, lambda store: store.dead_letter(args.id))
    if letter is None:
        print(f"error: no dead letter with id {args.id}", file=sys.stderr)
        return 1
    item = letter.item
    deadline = item.deadline
    lines = [
        ("action", item.description),
        ("rule", item.rule_id),
        ("event", f"{item.event_id} (at {_time(item.event_time)} UTC)"),
        ("idempotency key", item.idempotency_key),
        ("attempts", f"{item.attempts} of {item.max_attempts}"),
        ("queued at", f"{_time(item.created_at)} UTC"),
        ("failed at", f"{_time(letter.died_at)} UTC"),
        ("not after", "-" if deadline is None else f"{_time(deadline)} UTC"),
        ("error", letter.error),
        ("payload", json.dumps(_shown_payload(args, item.plugin, item.payload))),
    ]
    print(f"dead letter {item.id}")
    for name, value in lines:
        print(f"  {name + ':':<17}{value}")
    return 0


def _retry(args: argparse.Namespace) -> int:
    now = datetime.now(UTC)

    async def retry(store: Store) -> tuple[list[DeadLetter], list[int]]:
        wanted = await _wanted(store, args)
        ready = [letter.item.id for letter in wanted if not _passed(letter, now)]
        return wanted, await store.retry_dead(ready, now)

    wanted, retried = with_daemon_store(args, retry)
    notes = _not_retried(args.ids, wanted, retried, now)
    for note in notes:
        print(note, file=sys.stderr)
    if retried:
        ids = ", ".join(map(str, retried))
        print(
            f"retried {len(retried)} dead letter(s) ({ids}); they will be sent when "
            "the daemon runs: within about a second if it is running, else once it "
            "starts (until then `dlq list` does not show them)"
        )
    else:
        print("nothing retried" if notes else "no dead letters to retry")
    return 1 if notes else 0


def _not_retried(
    ids: list[int], wanted: list[DeadLetter], retried: list[int], now: datetime
) -> list[str]:
    """Why each dead letter asked for was not retried, one line each."""
    found = {letter.item.id for letter in wanted}
    notes = [f"{item_id}: no dead letter with this id" for item_id in ids
             if item_id not in found]  # fmt: skip
    for letter in wanted:
        if letter.item.id in retried:
            continue
        deadline = _passed(letter, now)
        why = (
            f"its not_after passed at {_time(deadline)} UTC; drop it instead"
            if deadline is not None
            else "it is no longer a dead letter (retried or dropped meanwhile)"
        )
        notes.append(f"{letter.item.id}: not retried: {why}")
    return notes


async def _wanted(store: Store, args: argparse.Namespace) -> list[DeadLetter]:
    if args.all:
        return await store.dead_letters(ALL)
    found = [await store.dead_letter(item_id) for item_id in args.ids]
    return [letter for letter in found if letter is not None]


def _drop(args: argparse.Namespace) -> int:
    dropped, message = with_daemon_store(args, lambda store: _drop_one(args, store))
    if not dropped:
        print(f"error: {message}", file=sys.stderr)
        return 1
    print(message)
    return 0


async def _drop_one(args: argparse.Namespace, store: Store) -> tuple[bool, str]:
    """Drop a dead letter, or an action waiting to be sent while no daemon runs;
    whether it went, and what to say."""
    item_id = args.id
    if await store.drop_dead(item_id):
        return True, f"dropped dead letter {item_id}"
    async with daemon_stopped(args) as stopped:
        action = await store.admin.action(item_id)
        if action is None or action.state != "pending" or not stopped:
            return False, _not_dropped(item_id, action)
        # No daemon runs while the lock is held, so none is sending it. The
        # store deletes only dead letters: it becomes one, then goes as one.
        await store.action_expired(item_id, "dropped with `dlq drop` unsent")
        await store.drop_dead(item_id)
    return (
        True,
        f"dropped action {item_id}, which was waiting to be sent; it is not sent",
    )


def _not_dropped(item_id: int, action: ActionRecord | None) -> str:
    if action is None:
        return f"no dead letter with id {item_id}"
    if action.state == "pending":
        return (
            f"{item_id} is not a dead letter: it is waiting to be sent, and the "
            "daemon is running, so it may be sending it right now; stop the "
            "daemon to drop it, or drop the dead letter it becomes if it fails "
            "for good"
        )
    if action.state == "delivered" and action.finished_at is not None:
        return (
            f"{item_id} is not a dead letter: it was delivered at "
            f"{_time(action.finished_at)} UTC"
        )
    return f"{item_id} became a dead letter a moment ago; run drop again"


def _passed(letter: DeadLetter, now: datetime) -> datetime | None:
    """The `not_after` deadline of a dead letter too late to retry, else None."""
    deadline = letter.item.deadline
    return deadline if deadline is not None and now >= deadline else None


def _shown_payload(
    args: argparse.Namespace, plugin_name: str, payload: dict[str, Any]
) -> Any:
    """The payload with what the plugin calls secret masked."""
    from genea_automate.config.loader import plugin_registry

    try:
        plugin = plugin_registry(args.config).get(plugin_name)
    except Exception:  # an unloadable or unknown plugin: show nothing of it
        return f"(hidden: the {plugin_name!r} plugin cannot be loaded here)"
    return plugin().redact(payload)


def _time(when: datetime) -> str:
    return when.astimezone(UTC).strftime("%Y-%m-%d %H:%M:%S")


def _shorten(text: str) -> str:
    text = " ".join(text.split())
    return text if len(text) <= ERROR_WIDTH else text[: ERROR_WIDTH - 3] + "..."
