-- Workflow definitions (seed 002), versioned per tenant and name: a new
-- upload with other content is the next version; runs pin the version
-- they started on.

CREATE TABLE workflow_definitions (
    tenant_id  TEXT NOT NULL,
    name       TEXT NOT NULL,
    version    BIGINT NOT NULL,
    -- blake3 of the parsed definition's canonical JSON: the same
    -- definition in YAML or JSON is the same version.
    digest     TEXT NOT NULL,
    -- As uploaded.
    source     TEXT NOT NULL,
    -- The parsed definition, JSON.
    definition TEXT NOT NULL,
    created_by TEXT NOT NULL,
    created_at BIGINT NOT NULL,
    PRIMARY KEY (tenant_id, name, version)
);
