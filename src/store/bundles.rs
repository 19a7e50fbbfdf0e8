//! Writes of bundle versions and activations, inside the ledger writer's
//! batch with the entries recording them (`bundle.upload`,
//! `bundle.activate`, `bundle.rollback`): a version is stored, and a head
//! moves, only with its evidence. Reads are in `mod.rs`.

use std::sync::Arc;

use super::ledger::TxConn;
use super::statement::query;
use super::{BundleVersionRow, Result, StoreError};

/// A new version and its archive.
#[derive(Debug, Clone)]
pub struct BundleUpload {
    pub version: BundleVersionRow,
    pub content: Arc<Vec<u8>>,
}

/// A bundle's head moved to `revision`, from `previous` (None: the bundle
/// had no active revision): written only if the head is still `previous`.
#[derive(Debug, Clone)]
pub struct ActivationRow {
    pub tenant_id: String,
    pub name: String,
    pub revision: String,
    pub previous: Option<String>,
    pub forced: bool,
    pub by: String,
    pub at: i64,
}

/// Stores a new version; a revision taken meanwhile is
/// [`StoreError::Changed`].
pub(super) async fn insert(conn: &mut TxConn, up: &BundleUpload) -> Result<()> {
    let v = &up.version;
    let roots = serde_json::to_string(&v.roots).map_err(|e| StoreError::Corrupt(e.to_string()))?;
    let tests = v.tests.to_string();
    query(
        "INSERT INTO bundle_versions (tenant_id, name, revision, digest, roots, size_bytes, content, tests, \
         tests_passed, signed_by, uploaded_by, uploaded_at) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12)",
    )
    .bind(&v.tenant_id)
    .bind(&v.name)
    .bind(&v.revision)
    .bind(&v.digest)
    .bind(&roots)
    .bind(v.size_bytes)
    .bind(up.content.as_slice())
    .bind(&tests)
    .bind(v.tests_passed)
    .bind(&v.signed_by)
    .bind(&v.uploaded_by)
    .bind(v.uploaded_at)
    .execute(conn)
    .await
    .map(|_| ())
    .map_err(super::changed_on_unique("bundle revision"))
}

/// Moves the head and records the activation; a head another activation
/// moved since it was read is [`StoreError::Changed`].
pub(super) async fn activate(conn: &mut TxConn, a: &ActivationRow) -> Result<()> {
    match &a.previous {
        None => query(
            "INSERT INTO bundle_heads (tenant_id, name, revision, activated_at, activated_by) VALUES ($1, $2, $3, $4, $5)")
            .bind(&a.tenant_id).bind(&a.name).bind(&a.revision).bind(a.at).bind(&a.by)
            .execute(conn).await.map(|_| ())
        .map_err(super::changed_on_unique("bundle head"))?,
        Some(previous) => query(
            "UPDATE bundle_heads SET revision = $3, activated_at = $4, activated_by = $5 \
             WHERE tenant_id = $1 AND name = $2 AND revision = $6")
            .bind(&a.tenant_id).bind(&a.name).bind(&a.revision).bind(a.at).bind(&a.by).bind(previous)
            .execute_one(conn, "bundle head").await?,
    }
    query(
        "INSERT INTO bundle_activations (tenant_id, name, revision, previous_revision, forced, activated_at, activated_by) \
         VALUES ($1, $2, $3, $4, $5, $6, $7)")
        .bind(&a.tenant_id).bind(&a.name).bind(&a.revision).bind(&a.previous).bind(a.forced).bind(a.at).bind(&a.by)
        .execute(conn).await.map(|_| ())?;
    Ok(())
}
