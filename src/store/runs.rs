//! Workflow runs: each run's row (its pinned version, status and position),
//! the due-time queries the engine sleeps on, and the inbox of kernel
//! executions a run started that have ended. A run's row is written only
//! inside the ledger writer's transaction, with the entries recording the
//! change ([`super::Change::run`]).
//!
//! A run's JSON columns are read leniently: one that does not parse (a
//! position nested past what the JSON reader accepts, written before
//! positions were bounded) reads as `null`, with [`WorkflowRunRow::fault`]
//! saying why, so the run can still be shown and failed instead of failing
//! every read.
//!
//! Due runs are taken per tenant, round robin ([`Store::workflow_runs_due`],
//! [`Store::workflow_inbox`]): one tenant's backlog never fills a pass.

use sqlx::Row;

use super::statement::QueryBuilder;
use super::{Pool, Result, Store};

/// A workflow run as stored.
#[derive(Debug, Clone, PartialEq)]
pub struct WorkflowRunRow {
    pub id: String,
    pub tenant_id: String,
    pub workflow: String,
    /// The definition version it runs (pinned at start).
    pub version: i64,
    pub digest: String,
    /// `running`, `succeeded`, `failed` or `cancelled`.
    pub status: String,
    pub input: serde_json::Value,
    /// The output (succeeded) or `{error, cause}` (failed, cancelled).
    pub output: Option<serde_json::Value>,
    /// Organisation, project, team, labels and the pinned skills.
    pub context: serde_json::Value,
    /// The interpreter's position (`workflow::interpreter::Position`).
    pub position: serde_json::Value,
    pub initiator: String,
    pub initiator_token: String,
    /// The subject of the token that started it: it may not review the run's gates.
    pub initiator_subject: String,
    /// The earliest timer of the run, epoch ms; None when nothing is timed.
    pub wake_at: Option<i64>,
    /// State transitions so far.
    pub transitions: i64,
    /// Goes up at every change: writes are conditional on it.
    pub version_no: i64,
    pub created_at: i64,
    pub updated_at: i64,
    /// Why a JSON column could not be read (it reads as `null`); None
    /// when every column parsed. Never written.
    pub fault: Option<String>,
}

pub(super) const RUN_COLS: &str = "id, tenant_id, workflow, version, digest, status, input, output, context, \
    position, initiator, initiator_token, wake_at, transitions, version_no, created_at, updated_at, initiator_subject";

/// A JSON column, or `null` with the reason added to `fault`.
fn json(s: String, what: &str, fault: &mut Option<String>) -> serde_json::Value {
    match serde_json::from_str(&s) {
        Ok(v) => v,
        Err(e) => {
            let why = format!("the run's {what} cannot be read ({} bytes): {e}", s.len());
            *fault = Some(match fault.take() {
                Some(f) => format!("{f}; {why}"),
                None => why,
            });
            serde_json::Value::Null
        }
    }
}

macro_rules! run_from_row {
    ($r:expr) => {{
        let output: Option<String> = $r.try_get("output")?;
        let mut fault = None;
        WorkflowRunRow {
            id: $r.try_get("id")?,
            tenant_id: $r.try_get("tenant_id")?,
            workflow: $r.try_get("workflow")?,
            version: $r.try_get("version")?,
            digest: $r.try_get("digest")?,
            status: $r.try_get("status")?,
            input: json($r.try_get("input")?, "input", &mut fault),
            output: output.map(|o| json(o, "output", &mut fault)),
            context: json($r.try_get("context")?, "context", &mut fault),
            position: json($r.try_get("position")?, "position", &mut fault),
            initiator: $r.try_get("initiator")?,
            initiator_token: $r.try_get("initiator_token")?,
            initiator_subject: $r.try_get("initiator_subject")?,
            wake_at: $r.try_get("wake_at")?,
            transitions: $r.try_get("transitions")?,
            version_no: $r.try_get("version_no")?,
            created_at: $r.try_get("created_at")?,
            updated_at: $r.try_get("updated_at")?,
            fault,
        }
    }};
}

/// Rows per multi-row statement: 18 parameters each, well under SQLite's
/// 32,766 (and PostgreSQL's 65,535).
const ROWS_CHUNK: usize = 1000;

/// Writes runs' rows inside a ledger batch, each an insert (`expected`
/// None) or an update conditional on the version it was read at: the
/// inserts in one statement, the updates in another (per [`ROWS_CHUNK`]
/// rows). [`super::StoreError::Changed`] when any row moved; which one is
/// not said (the writer then writes its changes again one by one). A run
/// must not be given twice.
pub(super) async fn write_all(conn: &mut super::ledger::TxConn, rows: &[(&WorkflowRunRow, Option<i64>)]) -> Result<()> {
    let (new, old): (Vec<_>, Vec<_>) = rows.iter().partition(|(_, expected)| expected.is_none());
    for chunk in new.chunks(ROWS_CHUNK) {
        let mut q = QueryBuilder::new(format!("INSERT INTO workflow_runs ({RUN_COLS}) "));
        q.push_values(chunk, |mut b, (r, _)| {
            b.push_bind(&r.id)
                .push_bind(&r.tenant_id)
                .push_bind(&r.workflow)
                .push_bind(r.version)
                .push_bind(&r.digest)
                .push_bind(&r.status)
                .push_bind(r.input.to_string())
                .push_bind(r.output.as_ref().map(|o| o.to_string()))
                .push_bind(r.context.to_string())
                .push_bind(r.position.to_string())
                .push_bind(&r.initiator)
                .push_bind(&r.initiator_token)
                .push_bind(r.wake_at)
                .push_bind(r.transitions)
                .push_bind(r.version_no)
                .push_bind(r.created_at)
                .push_bind(r.updated_at)
                .push_bind(&r.initiator_subject);
        });
        q.build().execute(conn).await.map_err(super::conflict("workflow run"))?;
    }
    // What moves of a run: its status, output, position, timer and counts.
    for chunk in old.chunks(ROWS_CHUNK) {
        let mut q = QueryBuilder::new(
            "UPDATE workflow_runs SET status = v.column2, output = v.column3, position = v.column4, \
                 wake_at = v.column5, transitions = v.column6, version_no = v.column7, updated_at = v.column8 FROM (",
        );
        q.push_values(chunk, |mut b, (r, expected)| {
            b.push_bind(&r.id)
                .push_bind(&r.status)
                .push_bind(r.output.as_ref().map(|o| o.to_string()))
                .push_bind(r.position.to_string())
                .push_bind(r.wake_at)
                .push_bind(r.transitions)
                .push_bind(r.version_no)
                .push_bind(r.updated_at)
                .push_bind(expected.unwrap_or_default());
        });
        q.push(") AS v WHERE workflow_runs.id = v.column1 AND workflow_runs.version_no = v.column9");
        let written = q.build().execute(conn).await.map_err(super::conflict("workflow run"))?;
        if written != chunk.len() as u64 {
            return Err(super::StoreError::Changed("workflow run"));
        }
    }
    Ok(())
}

/// Ended, unsettled executions of runs, each tenant's oldest first (`$1`
/// per tenant, `$2` in all): the partial index `kernel_executions_inbox`.
pub(super) const INBOX: &str = "SELECT workflow_run, id FROM (SELECT workflow_run, id, updated_at, \
    ROW_NUMBER() OVER (PARTITION BY tenant_id ORDER BY updated_at, id) AS rn FROM kernel_executions \
    WHERE workflow_run IS NOT NULL AND settled = FALSE \
    AND state IN ('completed', 'failed', 'cancelled')) d \
    WHERE rn <= $1 ORDER BY rn, updated_at, id LIMIT $2";

/// The live executions a run started (`$1`).
pub(super) const LIVE_EXECUTIONS_OF_RUN: &str = concat!(
    "SELECT id FROM kernel_executions WHERE workflow_run = $1 AND ",
    super::kernel::live_execution!(),
    " ORDER BY created_at, id"
);

impl Store {
    pub async fn workflow_run(&self, id: &str) -> Result<Option<WorkflowRunRow>> {
        with_pool!(self, p => {
            let row = sqlx::query(sqlx::AssertSqlSafe(format!("SELECT {RUN_COLS} FROM workflow_runs WHERE id = $1")))
                .bind(id).fetch_optional(p).await?;
            row.map(|r| Ok(run_from_row!(r))).transpose()
        })
    }

    /// A tenant's runs, newest first, optionally of one workflow.
    pub async fn workflow_runs(
        &self,
        tenant_id: &str,
        workflow: Option<&str>,
        limit: i64,
    ) -> Result<Vec<WorkflowRunRow>> {
        with_pool!(self, p => {
            let rows = sqlx::query(sqlx::AssertSqlSafe(format!("SELECT {RUN_COLS} FROM workflow_runs \
                WHERE tenant_id = $1 AND ($2 = '' OR workflow = $2) ORDER BY created_at DESC, id DESC LIMIT $3")))
                .bind(tenant_id).bind(workflow.unwrap_or("")).bind(limit).fetch_all(p).await?;
            rows.iter().map(|r| Ok(run_from_row!(r))).collect()
        })
    }

    /// Runs with a timer due at `now`: each tenant's earliest, at most
    /// `per_tenant` of each, round robin (every tenant's first, then every
    /// tenant's second, …), `limit` in all.
    pub async fn workflow_runs_due(&self, now: i64, per_tenant: i64, limit: i64) -> Result<Vec<String>> {
        with_pool!(self, p => {
            let rows = sqlx::query("SELECT id FROM (SELECT id, wake_at, \
                ROW_NUMBER() OVER (PARTITION BY tenant_id ORDER BY wake_at, id) AS rn \
                FROM workflow_runs WHERE wake_at IS NOT NULL AND wake_at <= $1) d \
                WHERE rn <= $2 ORDER BY rn, wake_at, id LIMIT $3")
                .bind(now).bind(per_tenant).bind(limit).fetch_all(p).await?;
            rows.iter().map(|r| Ok(r.try_get("id")?)).collect()
        })
    }

    /// The earliest timer of any run (one index lookup: the engine sleeps
    /// until then).
    pub async fn workflow_next_wake(&self) -> Result<Option<i64>> {
        with_pool!(self, p => {
            let at: Option<i64> = sqlx::query_scalar("SELECT MIN(wake_at) FROM workflow_runs WHERE wake_at IS NOT NULL")
                .fetch_one(p).await?;
            Ok(at)
        })
    }

    /// Kernel executions started by runs that have ended and that their
    /// run has not taken in yet: (run id, execution id); each tenant's
    /// oldest, at most `per_tenant` of each, round robin, `limit` in all.
    pub async fn workflow_inbox(&self, per_tenant: i64, limit: i64) -> Result<Vec<(String, String)>> {
        with_pool!(self, p => {
            let rows = sqlx::query(INBOX)
                .bind(per_tenant).bind(limit).fetch_all(p).await?;
            rows.iter().map(|r| Ok((r.try_get("workflow_run")?, r.try_get("id")?))).collect()
        })
    }

    /// Live (not ended) kernel executions a run started.
    pub async fn workflow_live_executions(&self, run_id: &str) -> Result<Vec<String>> {
        with_pool!(self, p => {
            let rows = sqlx::query(LIVE_EXECUTIONS_OF_RUN)
                .bind(run_id).fetch_all(p).await?;
            rows.iter().map(|r| Ok(r.try_get("id")?)).collect()
        })
    }

    /// How many runs are in each status, for a tenant.
    pub async fn workflow_run_counts(&self, tenant_id: &str) -> Result<Vec<(String, i64)>> {
        with_pool!(self, p => {
            let rows = sqlx::query("SELECT status, COUNT(*) AS n FROM workflow_runs WHERE tenant_id = $1 GROUP BY status")
                .bind(tenant_id).fetch_all(p).await?;
            rows.iter().map(|r| Ok((r.try_get("status")?, r.try_get("n")?))).collect()
        })
    }
}
