-- Audit fan-out: where each sink has delivered up to in each tenant's log
-- (the ledger is the outbox), and the events it can never deliver.

CREATE TABLE sink_cursors (
    sink       TEXT NOT NULL,
    tenant_id  TEXT NOT NULL,
    -- The last ledger index delivered (or skipped as not an event).
    last_index BIGINT NOT NULL,
    updated_at BIGINT NOT NULL,
    PRIMARY KEY (sink, tenant_id)
);

CREATE TABLE dead_letters (
    id          BIGSERIAL PRIMARY KEY,
    sink        TEXT NOT NULL,
    tenant_id   TEXT NOT NULL,
    idx         BIGINT NOT NULL,
    event_id    TEXT NOT NULL,
    reason      TEXT NOT NULL,
    body        BYTEA NOT NULL,
    created_at  BIGINT NOT NULL,
    redriven_at BIGINT
);
CREATE INDEX dead_letters_sink ON dead_letters (sink, redriven_at);
