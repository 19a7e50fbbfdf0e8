-- The evidence ledger: one append-only log per tenant (see docs/ledger-format.md).
-- Rows are written only by the ledger writer, in one transaction per batch.

-- The head of each log: its size, the hash of its last entry, and the
-- frontier of its Merkle tree (the peaks, 32 bytes each, largest first).
CREATE TABLE ledger_logs (
    tenant_id  TEXT PRIMARY KEY REFERENCES tenants(id),
    size       BIGINT NOT NULL,
    last_hash  BYTEA NOT NULL,
    frontier   BYTEA NOT NULL,
    updated_at BIGINT NOT NULL
);

-- The entries: exact bytes, their leaf hash, and columns to find them by.
CREATE TABLE ledger_entries (
    tenant_id TEXT NOT NULL,
    idx       BIGINT NOT NULL,
    ts        BIGINT NOT NULL,
    kind      TEXT NOT NULL,
    subject   TEXT,
    hash      BYTEA NOT NULL,
    bytes     BYTEA NOT NULL,
    PRIMARY KEY (tenant_id, idx)
);
CREATE INDEX ledger_entries_subject ON ledger_entries (tenant_id, subject, idx);

-- The hash of every complete subtree of 16 leaves or more: 2^level leaves
-- starting at leaf idx * 2^level (smaller ones are recomputed from the
-- leaves). Any proof reads O(log n) of them.
CREATE TABLE ledger_nodes (
    tenant_id TEXT NOT NULL,
    level     INTEGER NOT NULL,
    idx       BIGINT NOT NULL,
    hash      BYTEA NOT NULL,
    PRIMARY KEY (tenant_id, level, idx)
);

-- One signed checkpoint per batch.
CREATE TABLE ledger_checkpoints (
    tenant_id TEXT NOT NULL,
    size      BIGINT NOT NULL,
    root      BYTEA NOT NULL,
    note      TEXT NOT NULL,
    ts        BIGINT NOT NULL,
    PRIMARY KEY (tenant_id, size)
);

-- The keys that sign checkpoints; exactly one has no retired_at.
CREATE TABLE ledger_keys (
    verifier   TEXT PRIMARY KEY,
    name       TEXT NOT NULL,
    key_id     TEXT NOT NULL,
    created_at BIGINT NOT NULL,
    retired_at BIGINT
);
