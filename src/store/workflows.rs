//! Workflow definitions: every version of every tenant's workflows.

use sqlx::Row;

use super::statement::query_built;
use super::{Pool, Result, Store};

/// One version of a workflow definition.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WorkflowRow {
    pub tenant_id: String,
    pub name: String,
    pub version: i64,
    pub digest: String,
    pub source: String,
    /// The parsed definition, JSON.
    pub definition: String,
    pub created_by: String,
    pub created_at: i64,
}

macro_rules! workflow_from_row {
    ($r:expr) => {
        WorkflowRow {
            tenant_id: $r.try_get("tenant_id")?,
            name: $r.try_get("name")?,
            version: $r.try_get("version")?,
            digest: $r.try_get("digest")?,
            source: $r.try_get("source")?,
            definition: $r.try_get("definition")?,
            created_by: $r.try_get("created_by")?,
            created_at: $r.try_get("created_at")?,
        }
    };
}

const COLS: &str = "tenant_id, name, version, digest, source, definition, created_by, created_at";

/// Writes a new version, inside a ledger batch with the entry of its
/// upload; a version taken meanwhile is [`super::StoreError::Changed`].
pub(super) async fn insert(conn: &mut super::ledger::TxConn, w: &WorkflowRow) -> Result<()> {
    let sql = format!("INSERT INTO workflow_definitions ({COLS}) VALUES ($1,$2,$3,$4,$5,$6,$7,$8)");
    query_built(sql)
        .bind(&w.tenant_id)
        .bind(&w.name)
        .bind(w.version)
        .bind(&w.digest)
        .bind(&w.source)
        .bind(&w.definition)
        .bind(&w.created_by)
        .bind(w.created_at)
        .execute(conn)
        .await
        .map(|_| ())
        .map_err(super::changed_on_unique("workflow version"))
}

impl Store {
    /// Every version of a workflow, newest first.
    pub async fn workflow_versions(&self, tenant_id: &str, name: &str) -> Result<Vec<WorkflowRow>> {
        with_pool!(self, p => {
            let rows = sqlx::query(sqlx::AssertSqlSafe(format!("SELECT {COLS} FROM workflow_definitions \
                WHERE tenant_id = $1 AND name = $2 ORDER BY version DESC")))
                .bind(tenant_id).bind(name).fetch_all(p).await?;
            rows.iter().map(|r| Ok(workflow_from_row!(r))).collect()
        })
    }

    pub async fn workflow_version(&self, tenant_id: &str, name: &str, version: i64) -> Result<Option<WorkflowRow>> {
        with_pool!(self, p => {
            let row = sqlx::query(sqlx::AssertSqlSafe(format!("SELECT {COLS} FROM workflow_definitions \
                WHERE tenant_id = $1 AND name = $2 AND version = $3")))
                .bind(tenant_id).bind(name).bind(version).fetch_optional(p).await?;
            row.map(|r| Ok(workflow_from_row!(r))).transpose()
        })
    }

    /// The latest version number of a workflow, if it has any.
    pub async fn workflow_latest_version(&self, tenant_id: &str, name: &str) -> Result<Option<i64>> {
        with_pool!(self, p => {
            let v: Option<i64> = sqlx::query_scalar("SELECT MAX(version) FROM workflow_definitions \
                WHERE tenant_id = $1 AND name = $2")
                .bind(tenant_id).bind(name).fetch_one(p).await?;
            Ok(v)
        })
    }

    /// A tenant's workflows: name, latest version, and how many versions.
    pub async fn workflows(&self, tenant_id: &str) -> Result<Vec<(String, i64, i64)>> {
        with_pool!(self, p => {
            let rows = sqlx::query("SELECT name, MAX(version) AS latest, COUNT(*) AS versions FROM workflow_definitions \
                WHERE tenant_id = $1 GROUP BY name ORDER BY name")
                .bind(tenant_id).fetch_all(p).await?;
            rows.iter().map(|r| Ok((r.try_get("name")?, r.try_get("latest")?, r.try_get("versions")?))).collect()
        })
    }
}
