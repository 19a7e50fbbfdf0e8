-- Audit fan-out: where each sink has delivered up to in each tenant's log
-- (the ledger is the outbox), and the events it can never deliver.

CREATE TABLE sink_cursors (
    sink       TEXT NOT NULL,
    tenant_id  TEXT NOT NULL,
    -- The last ledger index delivered (or skipped as not an event).
    last_index INTEGER NOT NULL,
    updated_at INTEGER NOT NULL,
    PRIMARY KEY (sink, tenant_id)
);

CREATE TABLE dead_letters (
    id          INTEGER PRIMARY KEY AUTOINCREMENT,
    sink        TEXT NOT NULL,
    tenant_id   TEXT NOT NULL,
    idx         INTEGER NOT NULL,
    event_id    TEXT NOT NULL,
    reason      TEXT NOT NULL,
    body        BLOB NOT NULL,
    created_at  INTEGER NOT NULL,
    redriven_at INTEGER
);
CREATE INDEX dead_letters_sink ON dead_letters (sink, redriven_at);
