-- Tenants, tokens, bundle verification keys, bundle versions and activations.
-- Timestamps are milliseconds since the Unix epoch (UTC).

CREATE TABLE tenants (
    id                 TEXT PRIMARY KEY,
    name               TEXT NOT NULL UNIQUE,
    platform           INTEGER NOT NULL DEFAULT 0,
    require_signatures INTEGER NOT NULL DEFAULT 0,
    created_at         INTEGER NOT NULL
);

CREATE TABLE tokens (
    id          TEXT PRIMARY KEY,
    tenant_id   TEXT NOT NULL REFERENCES tenants(id),
    name        TEXT NOT NULL,
    secret_hash BLOB NOT NULL UNIQUE,
    roles       TEXT NOT NULL,
    created_at  INTEGER NOT NULL,
    created_by  TEXT NOT NULL,
    revoked_at  INTEGER
);
CREATE INDEX tokens_tenant ON tokens(tenant_id);

CREATE TABLE verification_keys (
    tenant_id  TEXT NOT NULL REFERENCES tenants(id),
    key_id     TEXT NOT NULL,
    algorithm  TEXT NOT NULL,
    public_pem TEXT NOT NULL,
    scope      TEXT,
    created_at INTEGER NOT NULL,
    created_by TEXT NOT NULL,
    PRIMARY KEY (tenant_id, key_id)
);

CREATE TABLE bundle_versions (
    tenant_id    TEXT NOT NULL REFERENCES tenants(id),
    name         TEXT NOT NULL,
    revision     TEXT NOT NULL,
    digest       TEXT NOT NULL,
    roots        TEXT NOT NULL,
    size_bytes   INTEGER NOT NULL,
    content      BLOB NOT NULL,
    tests        TEXT NOT NULL,
    tests_passed INTEGER NOT NULL,
    signed_by    TEXT,
    uploaded_by  TEXT NOT NULL,
    uploaded_at  INTEGER NOT NULL,
    PRIMARY KEY (tenant_id, name, revision)
);

CREATE TABLE bundle_heads (
    tenant_id    TEXT NOT NULL REFERENCES tenants(id),
    name         TEXT NOT NULL,
    revision     TEXT NOT NULL,
    activated_at INTEGER NOT NULL,
    activated_by TEXT NOT NULL,
    PRIMARY KEY (tenant_id, name)
);

CREATE TABLE bundle_activations (
    id                INTEGER PRIMARY KEY AUTOINCREMENT,
    tenant_id         TEXT NOT NULL REFERENCES tenants(id),
    name              TEXT NOT NULL,
    revision          TEXT NOT NULL,
    previous_revision TEXT,
    forced            INTEGER NOT NULL,
    activated_at      INTEGER NOT NULL,
    activated_by      TEXT NOT NULL
);
CREATE INDEX bundle_activations_name ON bundle_activations(tenant_id, name, id);
