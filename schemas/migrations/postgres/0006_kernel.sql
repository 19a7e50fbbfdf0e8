-- The execution kernel (seed 003): executions, steps (one row per attempt),
-- reviewers' verdicts, each execution's history (what the ledger records,
-- with the index it got there), messages for agent and runner streams, and
-- the tools runners declared.

CREATE TABLE kernel_executions (
    id              TEXT PRIMARY KEY,
    tenant_id       TEXT NOT NULL,
    agent_id        TEXT NOT NULL,
    state           TEXT NOT NULL,
    input           TEXT NOT NULL,
    labels          TEXT NOT NULL,
    output          TEXT,
    initiator       TEXT NOT NULL,
    initiator_token TEXT NOT NULL,
    conn            TEXT,
    agent_token     TEXT,
    waiting_on      TEXT,
    deadline_at     BIGINT NOT NULL,
    wake_at         BIGINT,
    agent_lost_at   BIGINT,
    version         BIGINT NOT NULL,
    seq             BIGINT NOT NULL,
    created_at      BIGINT NOT NULL,
    updated_at      BIGINT NOT NULL
);
CREATE INDEX kernel_executions_agent ON kernel_executions (tenant_id, agent_id, state);
CREATE INDEX kernel_executions_live ON kernel_executions (state, deadline_at);
-- The executions an agent stream holds, given back when it closes.
CREATE INDEX kernel_executions_conn ON kernel_executions (conn);

CREATE TABLE kernel_steps (
    id                TEXT PRIMARY KEY,
    execution_id      TEXT NOT NULL,
    tenant_id         TEXT NOT NULL,
    tool              TEXT NOT NULL,
    arguments         TEXT NOT NULL,
    args_hash         TEXT NOT NULL,
    attempt           BIGINT NOT NULL,
    max_attempts      BIGINT NOT NULL,
    backoff_ms        BIGINT NOT NULL,
    state             TEXT NOT NULL,
    remote            BOOLEAN NOT NULL,
    idempotent        BOOLEAN NOT NULL,
    idempotency_key   TEXT NOT NULL,
    runner_id         TEXT,
    decision_id       TEXT,
    timeout_ms        BIGINT NOT NULL,
    deadline_at       BIGINT,
    not_before        BIGINT,
    review            TEXT,
    review_needed     BIGINT NOT NULL,
    review_expires_at BIGINT,
    on_expiry         TEXT NOT NULL,
    reasons           TEXT NOT NULL,
    result            TEXT,
    error             TEXT,
    created_at        BIGINT NOT NULL,
    updated_at        BIGINT NOT NULL
);
CREATE INDEX kernel_steps_execution ON kernel_steps (execution_id, attempt);
CREATE INDEX kernel_steps_live ON kernel_steps (tenant_id, state, tool);
-- The timers' pass reads live steps only.
CREATE INDEX kernel_steps_state ON kernel_steps (state);

CREATE TABLE kernel_approvals (
    step_id        TEXT NOT NULL,
    tenant_id      TEXT NOT NULL,
    reviewer_token TEXT NOT NULL,
    reviewer       TEXT NOT NULL,
    approve        BOOLEAN NOT NULL,
    reason         TEXT NOT NULL,
    args_hash      TEXT NOT NULL,
    at             BIGINT NOT NULL,
    PRIMARY KEY (step_id, reviewer_token)
);

CREATE TABLE kernel_history (
    execution_id TEXT NOT NULL,
    seq          BIGINT NOT NULL,
    tenant_id    TEXT NOT NULL,
    kind         TEXT NOT NULL,
    actor        TEXT NOT NULL,
    payload      TEXT NOT NULL,
    at           BIGINT NOT NULL,
    ledger_index BIGINT,
    PRIMARY KEY (execution_id, seq)
);
-- What a crash left out of the ledger: appended at the next start.
CREATE INDEX kernel_history_unledgered ON kernel_history (at) WHERE ledger_index IS NULL;

CREATE TABLE kernel_pushes (
    recipient  TEXT NOT NULL,
    seq        BIGINT NOT NULL,
    event      TEXT NOT NULL,
    data       TEXT NOT NULL,
    created_at BIGINT NOT NULL,
    PRIMARY KEY (recipient, seq)
);
-- Old messages are pruned (each stream keeps its last, so numbers never go back).
CREATE INDEX kernel_pushes_age ON kernel_pushes (created_at);

CREATE TABLE kernel_runners (
    tenant_id  TEXT NOT NULL,
    runner_id  TEXT NOT NULL,
    -- JSON: [{"name": "...", "idempotent": true}, ...]
    tools      TEXT NOT NULL,
    seen_at    BIGINT NOT NULL,
    PRIMARY KEY (tenant_id, runner_id)
);

-- Instances holding agent streams, and when each was last alive: the
-- executions of an instance that stopped beating are given back.
CREATE TABLE kernel_instances (
    instance TEXT PRIMARY KEY,
    seen_at  BIGINT NOT NULL
);
