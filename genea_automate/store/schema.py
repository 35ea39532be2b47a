"""The tables of the store, as SQL both backends can run."""

SCHEMA_VERSION = 4

# Columns added after version 1, for stores created before them.
ADDED_COLUMNS = {
    "outbox": {"event_time": "TEXT", "not_after": "REAL"},
    "waits": {"endpoint": "TEXT"},
    # When a state row was last written, by the daemon's clock: pruning goes by
    # it, since an event's own time may be days off (a controller's clock).
    "first_arrivals": {"recorded_at": "TEXT"},
    "counted_events": {"recorded_at": "TEXT"},
    "cooldowns": {"recorded_at": "TEXT"},
}

SQLITE_SCHEMA = """
CREATE TABLE IF NOT EXISTS meta (
    name TEXT PRIMARY KEY,
    value TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS events (
    seq INTEGER PRIMARY KEY AUTOINCREMENT,
    endpoint TEXT NOT NULL,
    uuid TEXT NOT NULL,
    body BLOB NOT NULL,
    received_at TEXT NOT NULL,
    state TEXT NOT NULL DEFAULT 'pending',
    kind TEXT,
    decided_at TEXT,
    UNIQUE (endpoint, uuid)
);
CREATE INDEX IF NOT EXISTS events_pending ON events (state, seq);
CREATE TABLE IF NOT EXISTS first_arrivals (
    key TEXT PRIMARY KEY,
    event_id TEXT NOT NULL,
    time TEXT NOT NULL,
    who TEXT,
    recorded_at TEXT
);
CREATE TABLE IF NOT EXISTS traces (
    event_seq INTEGER PRIMARY KEY,
    event_id TEXT NOT NULL,
    trace TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS outbox (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    event_id TEXT NOT NULL,
    rule_id TEXT NOT NULL,
    step TEXT NOT NULL,
    plugin TEXT NOT NULL,
    payload TEXT NOT NULL,
    order_key TEXT NOT NULL,
    description TEXT NOT NULL,
    idempotency_key TEXT NOT NULL UNIQUE,
    state TEXT NOT NULL DEFAULT 'pending',
    attempts INTEGER NOT NULL DEFAULT 0,
    max_attempts INTEGER NOT NULL,
    timeout REAL NOT NULL,
    backoff REAL NOT NULL,
    max_backoff REAL NOT NULL,
    next_attempt_at TEXT NOT NULL,
    last_error TEXT,
    created_at TEXT NOT NULL,
    finished_at TEXT,
    event_time TEXT,
    not_after REAL
);
CREATE INDEX IF NOT EXISTS outbox_waiting ON outbox (state, order_key, id);
CREATE INDEX IF NOT EXISTS outbox_finished ON outbox (state, finished_at);
CREATE TABLE IF NOT EXISTS counted_events (
    key TEXT NOT NULL,
    event_id TEXT NOT NULL,
    time TEXT NOT NULL,
    recorded_at TEXT,
    PRIMARY KEY (key, event_id)
);
CREATE INDEX IF NOT EXISTS counted_events_time ON counted_events (key, time);
CREATE TABLE IF NOT EXISTS cooldowns (
    key TEXT PRIMARY KEY,
    fired_at TEXT NOT NULL,
    recorded_at TEXT
);
CREATE TABLE IF NOT EXISTS waits (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    rule_id TEXT NOT NULL,
    -- The EventRef.key of the event that started the wait, and its endpoint
    -- (NULL in waits begun before version 3, whose event_id is the bare uuid).
    event_id TEXT NOT NULL,
    endpoint TEXT,
    step INTEGER NOT NULL,
    kinds TEXT NOT NULL,
    key TEXT NOT NULL,
    not_before TEXT NOT NULL,
    deadline TEXT NOT NULL,
    event TEXT NOT NULL,
    fingerprint TEXT NOT NULL,
    UNIQUE (event_id, rule_id, step)
);
CREATE INDEX IF NOT EXISTS waits_by_key ON waits (key);
CREATE INDEX IF NOT EXISTS waits_by_deadline ON waits (deadline);
CREATE TABLE IF NOT EXISTS timed_rules (
    rule_id TEXT PRIMARY KEY,
    handled_until TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS timer_runs (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    rule_id TEXT NOT NULL,
    ref TEXT NOT NULL,
    at TEXT NOT NULL,
    trace TEXT NOT NULL
);
"""
