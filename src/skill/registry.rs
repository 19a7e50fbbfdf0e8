//! Registering a skill version: the one place that turns an uploaded
//! manifest into a stored version with the ledger entry recording it.
//!
//! Parse and check the manifest, build its row, append the `skill.put`
//! entry with the row in one transaction, and settle a race on the version
//! (the same content registered twice is the stored version; other content
//! is a conflict). HTTP only extracts the request and maps
//! [`RegisterError`] to a problem.

use crate::auth::Principal;
use crate::ledger::{AppendError, Ledger, Receipt, Record};
use crate::store::{Change, SkillRow, Store, StoreError};

use super::{SkillError, SkillManifest, SkillVersion};

/// Ledger entry kind of a registered skill version.
pub const KIND: &str = "skill.put";

/// What a registration did.
#[derive(Debug)]
pub enum Registered {
    /// A new version, with the receipt of its entry.
    Created { row: SkillRow, receipt: Receipt },
    /// The same content was already registered under this version.
    Unchanged(SkillRow),
}

#[derive(Debug, thiserror::Error)]
pub enum RegisterError {
    /// The manifest has faults, every one listed.
    #[error("the skill manifest is invalid")]
    Invalid(Vec<SkillError>),
    #[error(
        "the manifest's id is {found:?} but the request is to /v1/skills/{id}/versions/{version}; register it under its own id"
    )]
    IdMismatch { found: String, id: String, version: String },
    #[error(
        "the manifest's version is {found:?} but the request is to /v1/skills/{id}/versions/{version}; register it under its own version"
    )]
    VersionMismatch { found: String, id: String, version: String },
    #[error(
        "skill {id} version {version} is already registered with other content (digest {digest}); a version never changes: publish a new version instead"
    )]
    Exists {
        id: String,
        version: String,
        digest: String,
    },
    #[error(transparent)]
    Append(#[from] AppendError),
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// Registers `body` (a manifest, JSON or YAML) as version `version` of skill
/// `id` in the caller's tenant, at `now_ms`.
pub async fn register(
    ledger: &Ledger,
    store: &Store,
    who: &Principal,
    id: &str,
    version: &str,
    body: &[u8],
    now_ms: i64,
) -> Result<Registered, RegisterError> {
    let manifest = super::parse(body).map_err(RegisterError::Invalid)?;
    if manifest.id != id {
        return Err(RegisterError::IdMismatch {
            found: manifest.id,
            id: id.into(),
            version: version.into(),
        });
    }
    if manifest.version != version {
        return Err(RegisterError::VersionMismatch {
            found: manifest.version,
            id: id.into(),
            version: version.into(),
        });
    }
    let digest = super::digest(&manifest);
    let row = SkillRow {
        tenant_id: who.tenant_id.clone(),
        skill_id: id.into(),
        version: version.into(),
        digest: digest.clone(),
        manifest: serde_json::to_string(&manifest)
            .map_err(|e| StoreError::Corrupt(format!("serialising skill {id} {version}: {e}")))?,
        created_by: who.actor(),
        created_at: now_ms,
    };
    let payload = serde_json::json!({"id": id, "version": version, "digest": digest});
    let record = Record::new(&who.tenant_id, KIND, &who.actor(), &payload).about(id.to_string());
    let change = Change {
        skill: Some(row.clone()),
        ..Change::default()
    };
    // The version and the entry of its registration commit together.
    match ledger.append_with(vec![record], change).await {
        Ok(mut receipts) => {
            let receipt = receipts.pop().expect("one receipt for one record");
            Ok(Registered::Created { row, receipt })
        }
        // That version exists (or another registration took it first).
        Err(AppendError::Changed(_)) => {
            let existing = store
                .skill_version(&who.tenant_id, id, version)
                .await?
                .ok_or(StoreError::Changed("skill version"))?;
            if existing.digest == digest {
                return Ok(Registered::Unchanged(existing));
            }
            Err(RegisterError::Exists {
                id: id.into(),
                version: version.into(),
                digest: existing.digest,
            })
        }
        Err(e) => Err(e.into()),
    }
}

/// The manifest of a stored version.
pub fn manifest_of(row: &SkillRow) -> Result<SkillManifest, StoreError> {
    serde_json::from_str(&row.manifest)
        .map_err(|e| StoreError::Corrupt(format!("skill {} {} manifest: {e}", row.skill_id, row.version)))
}

/// The version a new execution of `project` and `team` pins for `req`: the
/// highest version matching it (an exact version, or a semver requirement,
/// which never matches a pre-release: those are pinned only by their exact
/// version) whose manifest is visible to that project or team
/// ([`super::visible`]).
pub async fn resolve(
    store: &Store,
    tenant_id: &str,
    skill_id: &str,
    req: &SkillVersion,
    project: Option<&str>,
    team: Option<&str>,
) -> Result<Option<SkillRow>, StoreError> {
    let candidates = match req {
        SkillVersion::Exact(v) => store
            .skill_version(tenant_id, skill_id, &v.to_string())
            .await?
            .into_iter()
            .collect(),
        SkillVersion::Req(_) => store.skill_versions(tenant_id, skill_id).await?,
    };
    for row in candidates {
        let v = row.semver()?;
        if matches!(req, SkillVersion::Req(_)) && !v.pre.is_empty() {
            continue;
        }
        if req.matches(&v) && super::visible(&manifest_of(&row)?, project, team) {
            return Ok(Some(row));
        }
    }
    Ok(None)
}
