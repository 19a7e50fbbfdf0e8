-- The MCP gateway (docs/mcp.md). Upstreams a tenant admin registered (the
-- bearer token sealed under the sink secrets key); the tool definitions
-- pinned for each (the first seen, and the latest when it differs); and the
-- reviews of calls waiting for people, found again by the agent, the tool
-- and the arguments' hash when a client calls again.
CREATE TABLE mcp_upstreams (
    tenant_id  TEXT NOT NULL REFERENCES tenants(id),
    name       TEXT NOT NULL,
    url        TEXT NOT NULL,
    secret     TEXT,
    version    INTEGER NOT NULL,
    created_at INTEGER NOT NULL,
    updated_at INTEGER NOT NULL,
    PRIMARY KEY (tenant_id, name)
);
CREATE TABLE mcp_tools (
    tenant_id    TEXT NOT NULL,
    upstream     TEXT NOT NULL,
    name         TEXT NOT NULL,
    pinned_hash  TEXT NOT NULL,
    pinned       TEXT NOT NULL,
    current_hash TEXT NOT NULL,
    current      TEXT NOT NULL,
    pinned_at    INTEGER NOT NULL,
    changed_at   INTEGER,
    PRIMARY KEY (tenant_id, upstream, name)
);
CREATE TABLE mcp_reviews (
    execution_id TEXT PRIMARY KEY,
    tenant_id    TEXT NOT NULL,
    agent_id     TEXT NOT NULL,
    tool         TEXT NOT NULL,
    args_hash    TEXT NOT NULL,
    state        TEXT NOT NULL,
    created_at   INTEGER NOT NULL,
    updated_at   INTEGER NOT NULL
);
CREATE INDEX mcp_reviews_key ON mcp_reviews(tenant_id, agent_id, tool, args_hash, state);
