-- The skill registry (seed 000), per tenant: every version of every
-- skill. A version is immutable (its content never changes); workflows pin
-- one at run start.

CREATE TABLE skills (
    tenant_id  TEXT NOT NULL,
    skill_id   TEXT NOT NULL,
    -- Strict semver, no build metadata, as written in the manifest.
    version    TEXT NOT NULL,
    -- Its parts, so versions can be ordered: semver precedence is
    -- (major, minor, patch), then a release above its pre-releases, then
    -- the pre-release identifiers (compared exactly by the store's code).
    major      BIGINT NOT NULL,
    minor      BIGINT NOT NULL,
    patch      BIGINT NOT NULL,
    -- The pre-release (`rc.1`), '' for a release.
    pre        TEXT NOT NULL,
    -- blake3 of the manifest's canonical JSON: the same manifest in YAML
    -- or JSON is the same content.
    digest     TEXT NOT NULL,
    -- The parsed manifest, JSON.
    manifest   TEXT NOT NULL,
    created_by TEXT NOT NULL,
    created_at BIGINT NOT NULL,
    PRIMARY KEY (tenant_id, skill_id, version)
);
