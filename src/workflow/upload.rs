//! Uploading a workflow definition: the one place that turns uploaded text
//! into a stored version with the ledger entry recording it.
//!
//! Parse and check the definition, build its row (the next version number
//! of its name), append the `workflow.put` entry with the row in one
//! transaction, and settle races: the same content as the latest version is
//! that version; another upload taking the number is read again and retried.
//! HTTP only extracts the request and maps [`UploadError`] to a problem.

use crate::auth::Principal;
use crate::evidence::canonical;
use crate::ledger::{AppendError, Ledger, Receipt, Record};
use crate::store::{Change, Store, StoreError, WorkflowRow};

use super::DefinitionError;

/// Ledger entry kind of an uploaded workflow version.
pub const KIND: &str = "workflow.put";

/// How often an upload reads the latest version again after another upload
/// took the number it chose.
const ATTEMPTS: usize = 3;

/// What an upload did.
#[derive(Debug)]
pub enum Uploaded {
    /// A new version, with the receipt of its entry.
    Created { row: WorkflowRow, receipt: Receipt },
    /// The same definition is already the latest version.
    Unchanged(WorkflowRow),
}

#[derive(Debug, thiserror::Error)]
pub enum UploadError {
    /// The definition has faults, every one listed.
    #[error("the workflow definition is invalid")]
    Invalid(Vec<DefinitionError>),
    #[error("metadata.name is {found:?} but the upload is to /v1/workflows/{name}; upload it under its own name")]
    NameMismatch { found: String, name: String },
    #[error(transparent)]
    Append(#[from] AppendError),
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// Uploads `body` (YAML or JSON) as the next version of workflow `name` in
/// the caller's tenant, at `now_ms`.
pub async fn upload(
    ledger: &Ledger,
    store: &Store,
    who: &Principal,
    name: &str,
    body: &[u8],
    now_ms: i64,
) -> Result<Uploaded, UploadError> {
    let definition = super::parse(body).map_err(UploadError::Invalid)?;
    if definition.metadata.name != name {
        return Err(UploadError::NameMismatch {
            found: definition.metadata.name,
            name: name.into(),
        });
    }
    let parsed = serde_json::to_value(&definition)
        .map_err(|e| StoreError::Corrupt(format!("serialising workflow {name}: {e}")))?;
    let digest = blake3::hash(&canonical::to_vec(&parsed)).to_hex().to_string();
    let source = String::from_utf8_lossy(body).into_owned();
    for _ in 0..ATTEMPTS {
        let latest = store.workflow_versions(&who.tenant_id, name).await?.into_iter().next();
        if let Some(w) = latest.as_ref().filter(|w| w.digest == digest) {
            return Ok(Uploaded::Unchanged(w.clone()));
        }
        let row = WorkflowRow {
            tenant_id: who.tenant_id.clone(),
            name: name.into(),
            version: latest.map(|w| w.version + 1).unwrap_or(1),
            digest: digest.clone(),
            source: source.clone(),
            definition: parsed.to_string(),
            created_by: who.actor(),
            created_at: now_ms,
        };
        let payload = serde_json::json!({"name": name, "version": row.version, "digest": digest,
            "states": definition.spec.states.len()});
        let record = Record::new(&who.tenant_id, KIND, &who.actor(), &payload).about(name.to_string());
        let change = Change {
            workflow_definition: Some(row.clone()),
            ..Change::default()
        };
        // The version and the entry of its upload commit together.
        match ledger.append_with(vec![record], change).await {
            Ok(mut receipts) => {
                let receipt = receipts.pop().expect("one receipt for one record");
                return Ok(Uploaded::Created { row, receipt });
            }
            // Another upload took this version number: read again.
            Err(AppendError::Changed(_)) => continue,
            Err(e) => return Err(e.into()),
        }
    }
    Err(StoreError::Changed("workflow").into())
}
