-- Console sign-ins: a token exchanged for a session cookie. The cookie's
-- secret is kept only as its blake3 hash. A session acts as its token, so it
-- ends when the token is revoked or expires, at its own expiry, or when
-- signed out (ended_at).
CREATE TABLE console_sessions (
    id          TEXT PRIMARY KEY,
    tenant_id   TEXT NOT NULL REFERENCES tenants(id),
    token_id    TEXT NOT NULL REFERENCES tokens(id),
    secret_hash BYTEA NOT NULL UNIQUE,
    created_at  BIGINT NOT NULL,
    expires_at  BIGINT NOT NULL,
    ended_at    BIGINT
);
CREATE INDEX console_sessions_token ON console_sessions(token_id);
