-- Workflow runs: one row per run of a workflow definition, pinned to the
-- version (and skill versions) it started with. The run's position (its
-- threads, their phases and timers) is one JSON document, bounded in size
-- whatever the run's length: what happened is in the ledger (subject = the
-- run's id), not here. `wake_at` is the earliest timer of the run, so the
-- engine finds due runs with one indexed query and sleeping runs cost
-- nothing.

CREATE TABLE workflow_runs (
    id              TEXT PRIMARY KEY,
    tenant_id       TEXT NOT NULL,
    workflow        TEXT NOT NULL,
    version         BIGINT NOT NULL,
    digest          TEXT NOT NULL,
    status          TEXT NOT NULL,
    input           TEXT NOT NULL,
    output          TEXT,
    -- JSON: organisation, project, team, labels, pinned skills.
    context         TEXT NOT NULL,
    -- JSON: the interpreter's position.
    position        TEXT NOT NULL,
    initiator       TEXT NOT NULL,
    initiator_token TEXT NOT NULL,
    wake_at         BIGINT,
    transitions     BIGINT NOT NULL,
    version_no      BIGINT NOT NULL,
    created_at      BIGINT NOT NULL,
    updated_at      BIGINT NOT NULL
);
CREATE INDEX workflow_runs_tenant ON workflow_runs (tenant_id, created_at);
CREATE INDEX workflow_runs_wake ON workflow_runs (wake_at) WHERE wake_at IS NOT NULL;

-- The kernel executions a run started (its Task and HumanReview states):
-- an ended one not yet taken in by its run is in the engine's inbox.
ALTER TABLE kernel_executions ADD COLUMN workflow_run TEXT;
ALTER TABLE kernel_executions ADD COLUMN context TEXT;
ALTER TABLE kernel_executions ADD COLUMN settled BOOLEAN NOT NULL DEFAULT FALSE;
CREATE INDEX kernel_executions_inbox ON kernel_executions (workflow_run)
    WHERE workflow_run IS NOT NULL AND settled = FALSE;
