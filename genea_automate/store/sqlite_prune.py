"""Pruning the SQLite store's rule state and timer runs.

Rule state (first arrivals, counted events, cooldowns) is deleted by the
writer, `limit` rows a job, by when each row was last written (the daemon's
clock), not by its event time: a controller whose clock is days off, or a test
with last year's payloads, still needs the state of its events' day while
such events keep coming. Rows written before `recorded_at` existed go by their
event time. The tables are small once pruned, as they hold only what the
rules' windows still need. Timer runs are pruned as traces are (see SqliteAdmin): the
rows to delete are found on a reader connection, then deleted in batches.
"""

from __future__ import annotations

import sqlite3
from datetime import datetime

from genea_automate.store.base import PrunePolicy
from genea_automate.store.sqltime import to_text


def prune_rule_state(
    connection: sqlite3.Connection, policy: PrunePolicy, limit: int
) -> dict[str, int]:
    """Delete up to `limit` rows of each kind of state the policy lets go."""
    return {
        "first arrivals": _delete_before(
            connection, "first_arrivals", "time", policy.arrivals_before, limit
        ),
        "counted events": _delete_before(
            connection, "counted_events", "time", policy.counted_before, limit
        ),
        "cooldowns": _delete_before(
            connection, "cooldowns", "fired_at", policy.cooldowns_before, limit
        ),
    }


def _delete_before(
    connection: sqlite3.Connection,
    table: str,
    column: str,
    before: datetime,
    limit: int,
) -> int:
    cursor = connection.execute(
        f"DELETE FROM {table} WHERE rowid IN (SELECT rowid FROM {table} "
        f"WHERE COALESCE(recorded_at, {column}) < ? LIMIT ?)",
        (to_text(before), limit),
    )
    return cursor.rowcount


def prunable_timer_runs(
    db: sqlite3.Connection, cutoff: str, keep_per_rule: int
) -> list[int]:
    """Runs recorded before `cutoff`, except each rule's `keep_per_rule` latest
    that fired and latest that did not (a wait's end has no `fired`)."""
    rows = db.execute(
        "SELECT id FROM timer_runs WHERE at < ? AND id NOT IN ("
        "  SELECT id FROM ("
        "    SELECT id, ROW_NUMBER() OVER ("
        "      PARTITION BY rule_id, json_extract(trace, '$.fired') "
        "      ORDER BY id DESC) AS n "
        "    FROM timer_runs"
        "  ) WHERE n <= ?"
        ") ORDER BY id",
        (cutoff, keep_per_rule),
    ).fetchall()
    return [run_id for (run_id,) in rows]
