//! The execution kernel's tables. A change of the kernel (an execution, its
//! steps, its history entries, the messages it pushes, a reviewer's verdict)
//! is a [`super::Change`], written by the functions here inside the ledger
//! writer's batch transaction, with its ledger entries, conditional on the
//! execution's version and on each step's previous state, so two writers
//! (two requests, or two instances) never both move the same thing.

use std::collections::HashMap;

use sqlx::Row;

use super::ledger::TxConn;
use super::statement::{QueryBuilder, Value, query};
use super::{Pool, Result, Store, StoreError};
use crate::model::kernel::{
    ApprovalRow, ExecState, ExecutionRow, HistoryRow, OnExpiry, PushRow, ReviewState, StepRow, StepState, WaitingOn,
    kind_of, push_event_of,
};

const EXEC_COLS: &str = "id, tenant_id, agent_id, state, input, labels, output, initiator, initiator_token, conn, \
    agent_token, waiting_on, deadline_at, wake_at, agent_lost_at, version, seq, created_at, updated_at, workflow_run, \
    context, initiator_subject, agent_subjects";
const STEP_COLS: &str = "id, execution_id, tenant_id, tool, arguments, args_hash, attempt, max_attempts, backoff_ms, \
    state, remote, idempotent, idempotency_key, runner_id, decision_id, timeout_ms, deadline_at, not_before, review, \
    review_needed, review_expires_at, on_expiry, reasons, result, error, created_at, updated_at, runner_token";

fn corrupt(what: &str) -> impl Fn(serde_json::Error) -> StoreError + '_ {
    move |e| StoreError::Corrupt(format!("{what}: {e}"))
}

fn json_opt(s: Option<String>, what: &str) -> Result<Option<serde_json::Value>> {
    s.map(|s| serde_json::from_str(&s).map_err(corrupt(what))).transpose()
}

fn text(v: &serde_json::Value) -> String {
    v.to_string()
}

fn text_opt(v: &Option<serde_json::Value>) -> Option<String> {
    v.as_ref().map(|v| v.to_string())
}

fn bad(what: &str, value: &str) -> StoreError {
    StoreError::Corrupt(format!("unknown {what} {value:?}"))
}

macro_rules! exec_from_row {
    ($r:expr) => {{
        let state: String = $r.try_get("state")?;
        let waiting: Option<String> = $r.try_get("waiting_on")?;
        ExecutionRow {
            id: $r.try_get("id")?,
            tenant_id: $r.try_get("tenant_id")?,
            agent_id: $r.try_get("agent_id")?,
            state: ExecState::parse(&state).ok_or_else(|| bad("execution state", &state))?,
            input: serde_json::from_str(&$r.try_get::<String, _>("input")?).map_err(corrupt("execution input"))?,
            labels: serde_json::from_str(&$r.try_get::<String, _>("labels")?).map_err(corrupt("execution labels"))?,
            output: json_opt($r.try_get("output")?, "execution output")?,
            initiator: $r.try_get("initiator")?,
            initiator_token: $r.try_get("initiator_token")?,
            initiator_subject: $r.try_get("initiator_subject")?,
            conn: $r.try_get("conn")?,
            agent_token: $r.try_get("agent_token")?,
            agent_subjects: serde_json::from_str(&$r.try_get::<String, _>("agent_subjects")?)
                .map_err(corrupt("execution agent subjects"))?,
            waiting_on: match waiting {
                Some(w) => Some(WaitingOn::parse(&w).ok_or_else(|| bad("waiting_on", &w))?),
                None => None,
            },
            deadline_at: $r.try_get("deadline_at")?,
            wake_at: $r.try_get("wake_at")?,
            agent_lost_at: $r.try_get("agent_lost_at")?,
            version: $r.try_get("version")?,
            seq: $r.try_get("seq")?,
            created_at: $r.try_get("created_at")?,
            updated_at: $r.try_get("updated_at")?,
            workflow_run: $r.try_get("workflow_run")?,
            context: json_opt($r.try_get("context")?, "execution context")?,
        }
    }};
}

macro_rules! step_from_row {
    ($r:expr) => {{
        let state: String = $r.try_get("state")?;
        let review: Option<String> = $r.try_get("review")?;
        let on_expiry: String = $r.try_get("on_expiry")?;
        StepRow {
            id: $r.try_get("id")?,
            execution_id: $r.try_get("execution_id")?,
            tenant_id: $r.try_get("tenant_id")?,
            tool: $r.try_get("tool")?,
            arguments: serde_json::from_str(&$r.try_get::<String, _>("arguments")?)
                .map_err(corrupt("step arguments"))?,
            args_hash: $r.try_get("args_hash")?,
            attempt: $r.try_get("attempt")?,
            max_attempts: $r.try_get("max_attempts")?,
            backoff_ms: $r.try_get("backoff_ms")?,
            state: StepState::parse(&state).ok_or_else(|| bad("step state", &state))?,
            remote: $r.try_get("remote")?,
            idempotent: $r.try_get("idempotent")?,
            idempotency_key: $r.try_get("idempotency_key")?,
            runner_id: $r.try_get("runner_id")?,
            runner_token: $r.try_get("runner_token")?,
            decision_id: $r.try_get("decision_id")?,
            timeout_ms: $r.try_get("timeout_ms")?,
            deadline_at: $r.try_get("deadline_at")?,
            not_before: $r.try_get("not_before")?,
            review: match review {
                Some(v) => Some(ReviewState::parse(&v).ok_or_else(|| bad("review state", &v))?),
                None => None,
            },
            review_needed: $r.try_get("review_needed")?,
            review_expires_at: $r.try_get("review_expires_at")?,
            on_expiry: OnExpiry::parse(&on_expiry).ok_or_else(|| bad("on_expiry", &on_expiry))?,
            reasons: serde_json::from_str(&$r.try_get::<String, _>("reasons")?).map_err(corrupt("step reasons"))?,
            result: json_opt($r.try_get("result")?, "step result")?,
            error: json_opt($r.try_get("error")?, "step error")?,
            created_at: $r.try_get("created_at")?,
            updated_at: $r.try_get("updated_at")?,
        }
    }};
}

macro_rules! history_from_row {
    ($r:expr) => {{
        let kind: String = $r.try_get("kind")?;
        let index: Option<i64> = $r.try_get("ledger_index")?;
        HistoryRow {
            execution_id: $r.try_get("execution_id")?,
            seq: $r.try_get("seq")?,
            tenant_id: $r.try_get("tenant_id")?,
            kind: kind_of(&kind).ok_or_else(|| bad("history kind", &kind))?,
            actor: $r.try_get("actor")?,
            payload: serde_json::from_str(&$r.try_get::<String, _>("payload")?).map_err(corrupt("history payload"))?,
            at: $r.try_get("at")?,
            ledger_index: index.map(|i| i as u64),
        }
    }};
}

macro_rules! approval_from_row {
    ($r:expr) => {
        ApprovalRow {
            step_id: $r.try_get("step_id")?,
            tenant_id: $r.try_get("tenant_id")?,
            reviewer_token: $r.try_get("reviewer_token")?,
            reviewer: $r.try_get("reviewer")?,
            subject: $r.try_get("subject")?,
            approve: $r.try_get("approve")?,
            reason: $r.try_get("reason")?,
            args_hash: $r.try_get("args_hash")?,
            at: $r.try_get("at")?,
        }
    };
}

/// A runner's declared tools, as stored.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct DeclaredTool {
    pub name: String,
    pub idempotent: bool,
}

/// Binds an execution's columns, in [`EXEC_COLS`] order.
macro_rules! bind_execution {
    ($b:expr, $e:expr) => {
        $b.push_bind(&$e.id)
            .push_bind(&$e.tenant_id)
            .push_bind(&$e.agent_id)
            .push_bind($e.state.as_str())
            .push_bind(text(&$e.input))
            .push_bind(serde_json::Value::Object($e.labels.clone()).to_string())
            .push_bind(text_opt(&$e.output))
            .push_bind(&$e.initiator)
            .push_bind(&$e.initiator_token)
            .push_bind(&$e.conn)
            .push_bind(&$e.agent_token)
            .push_bind($e.waiting_on.map(|w| w.as_str()))
            .push_bind($e.deadline_at)
            .push_bind($e.wake_at)
            .push_bind($e.agent_lost_at)
            .push_bind($e.version)
            .push_bind($e.seq)
            .push_bind($e.created_at)
            .push_bind($e.updated_at)
            .push_bind(&$e.workflow_run)
            .push_bind(text_opt(&$e.context))
            .push_bind(&$e.initiator_subject)
            .push_bind(serde_json::to_string(&$e.agent_subjects).unwrap_or_else(|_| "[]".into()))
    };
}

/// Binds a step's columns, in [`STEP_COLS`] order.
macro_rules! bind_step {
    ($b:expr, $s:expr) => {
        $b.push_bind(&$s.id)
            .push_bind(&$s.execution_id)
            .push_bind(&$s.tenant_id)
            .push_bind(&$s.tool)
            .push_bind(text(&$s.arguments))
            .push_bind(&$s.args_hash)
            .push_bind($s.attempt)
            .push_bind($s.max_attempts)
            .push_bind($s.backoff_ms)
            .push_bind($s.state.as_str())
            .push_bind($s.remote)
            .push_bind($s.idempotent)
            .push_bind(&$s.idempotency_key)
            .push_bind(&$s.runner_id)
            .push_bind(&$s.decision_id)
            .push_bind($s.timeout_ms)
            .push_bind($s.deadline_at)
            .push_bind($s.not_before)
            .push_bind($s.review.map(|r| r.as_str()))
            .push_bind($s.review_needed)
            .push_bind($s.review_expires_at)
            .push_bind($s.on_expiry.as_str())
            .push_bind(serde_json::to_string(&$s.reasons).unwrap_or_default())
            .push_bind(text_opt(&$s.result))
            .push_bind(text_opt(&$s.error))
            .push_bind($s.created_at)
            .push_bind($s.updated_at)
            .push_bind(&$s.runner_token)
    };
}

/// Rows per multi-row statement: at most 29 parameters each, well under
/// SQLite's 32,766 (and PostgreSQL's 65,535).
const ROWS_CHUNK: usize = 1000;

/// `UPDATE {table} SET <every column but the first> FROM (VALUES …) AS v
/// WHERE {table}.<first> = v.column1 AND {table}.{guard} = v.column<last>`,
/// for rows bound as `cols` then the guard's expected value; the VALUES
/// list follows. Both backends name a VALUES list's columns `column1…`.
fn update_from_values(table: &str, cols: &str, guard: &str) -> (String, String) {
    let names: Vec<&str> = cols.split(',').map(str::trim).collect();
    let set: Vec<String> = names
        .iter()
        .enumerate()
        .skip(1)
        .map(|(i, c)| format!("{c} = v.column{}", i + 1))
        .collect();
    (
        format!("UPDATE {table} SET {} FROM (", set.join(", ")),
        format!(
            ") AS v WHERE {table}.{} = v.column1 AND {table}.{guard} = v.column{}",
            names[0],
            names.len() + 1
        ),
    )
}

static EXEC_UPDATE: std::sync::LazyLock<(String, String)> =
    std::sync::LazyLock::new(|| update_from_values("kernel_executions", EXEC_COLS, "version"));
static STEP_UPDATE: std::sync::LazyLock<(String, String)> =
    std::sync::LazyLock::new(|| update_from_values("kernel_steps", STEP_COLS, "state"));

/// Writes rows of `$table`, each an insert (`expected` None) or an update
/// conditional on what it was read at: the inserts in one statement, the
/// updates in another (per [`ROWS_CHUNK`] rows). `$bind` binds a row's
/// columns in `$cols` order, `$guard` the expected value it was read at.
/// [`StoreError::Changed`] when any row moved; which one is not said (the
/// caller writes its changes again one by one to learn it). A row must not
/// be given twice.
macro_rules! write_rows {
    ($conn:expr, $rows:expr, $table:literal, $cols:expr, $update:expr, $what:literal, $bind:ident, $guard:expr) => {{
        let (new, old): (Vec<_>, Vec<_>) = $rows.iter().partition(|(_, expected)| expected.is_none());
        for chunk in new.chunks(ROWS_CHUNK) {
            let mut q = QueryBuilder::new(format!("INSERT INTO {} ({}) ", $table, $cols));
            q.push_values(chunk, |mut b, (row, _)| {
                $bind!(b, row);
            });
            q.build().execute($conn).await.map_err(super::conflict($what))?;
        }
        for chunk in old.chunks(ROWS_CHUNK) {
            let (head, tail) = &*$update;
            let mut q = QueryBuilder::new(head.as_str());
            q.push_values(chunk, |mut b, (row, expected)| {
                $bind!(b, row).push_bind($guard(*expected));
            });
            q.push(tail.as_str());
            let written = q.build().execute($conn).await.map_err(super::conflict($what))?;
            if written != chunk.len() as u64 {
                return Err(StoreError::Changed($what));
            }
        }
        Ok(())
    }};
}

/// Writes executions' rows, each new or conditional on the version it was
/// read at ([`write_rows`]).
pub(super) async fn write_executions(conn: &mut TxConn, rows: &[(&ExecutionRow, Option<i64>)]) -> Result<()> {
    write_rows!(
        conn,
        rows,
        "kernel_executions",
        EXEC_COLS,
        EXEC_UPDATE,
        "execution",
        bind_execution,
        |e: Option<i64>| e.unwrap_or_default()
    )
}

/// Writes steps' rows, each new or conditional on the state it was read in
/// ([`write_rows`]).
pub(super) async fn write_steps(conn: &mut TxConn, rows: &[(&StepRow, Option<StepState>)]) -> Result<()> {
    write_rows!(
        conn,
        rows,
        "kernel_steps",
        STEP_COLS,
        STEP_UPDATE,
        "step",
        bind_step,
        |e: Option<StepState>| e.map(|e| e.as_str()).unwrap_or_default()
    )
}

/// Records a reviewer's verdict; a second verdict by the same reviewer on
/// the same step is [`StoreError::Changed`].
pub(super) async fn insert_approval(conn: &mut TxConn, a: &ApprovalRow) -> Result<()> {
    query(
        "INSERT INTO kernel_approvals (step_id, tenant_id, reviewer_token, reviewer, approve, \
            reason, args_hash, at, subject) VALUES ($1,$2,$3,$4,$5,$6,$7,$8,$9)",
    )
    .bind(&a.step_id)
    .bind(&a.tenant_id)
    .bind(&a.reviewer_token)
    .bind(&a.reviewer)
    .bind(a.approve)
    .bind(&a.reason)
    .bind(&a.args_hash)
    .bind(a.at)
    .bind(&a.subject)
    .execute(conn)
    .await
    .map(|_| ())
    .map_err(super::changed_on_unique("verdict"))
}

/// Appends history entries, each with the index of its ledger entry.
pub(super) async fn insert_history(conn: &mut TxConn, rows: &[(&HistoryRow, u64)]) -> Result<()> {
    for chunk in rows.chunks(HISTORY_CHUNK) {
        let mut q = QueryBuilder::new(
            "INSERT INTO kernel_history (execution_id, seq, tenant_id, kind, actor, payload, at, ledger_index) ",
        );
        q.push_values(chunk, |mut b, (h, index)| {
            b.push_bind(&h.execution_id)
                .push_bind(h.seq)
                .push_bind(&h.tenant_id)
                .push_bind(h.kind)
                .push_bind(&h.actor)
                .push_bind(text(&h.payload))
                .push_bind(h.at)
                .push_bind(*index as i64);
        });
        q.build()
            .execute(conn)
            .await
            .map_err(super::conflict("history entry"))?;
    }
    Ok(())
}

/// History rows per multi-row INSERT: 8 parameters each, well under
/// SQLite's 32,766.
const HISTORY_CHUNK: usize = 1000;

/// Queues messages for streams; answers each one's `seq`, in order: its
/// recipient's next in commit order (a recipient's messages numbered in
/// the order given). A concurrent writer computing the same number fails
/// on the primary key ([`StoreError::Changed`]).
pub(super) async fn push_all(conn: &mut TxConn, rows: &[&PushRow]) -> Result<Vec<i64>> {
    let mut seqs = Vec::with_capacity(rows.len());
    for chunk in rows.chunks(ROWS_CHUNK) {
        // Each message's place among its recipient's in this chunk.
        let mut count: std::collections::HashMap<&str, i64> = std::collections::HashMap::new();
        let places: Vec<i64> = chunk
            .iter()
            .map(|p| {
                let n = count.entry(p.recipient.as_str()).or_default();
                *n += 1;
                *n
            })
            .collect();
        // The statement reads the table as it was before it (PostgreSQL's
        // snapshot; SQLite computes a SELECT from the table it inserts into
        // in full first).
        let mut q = QueryBuilder::new(
            "INSERT INTO kernel_pushes (recipient, seq, event, data, created_at) \
             SELECT v.column1, COALESCE((SELECT MAX(p.seq) FROM kernel_pushes p WHERE p.recipient = v.column1), 0) \
             + v.column2, v.column3, v.column4, v.column5 FROM (",
        );
        q.push_values(chunk.iter().zip(&places), |mut b, (p, place)| {
            b.push_bind(&p.recipient)
                .push_bind(*place)
                .push_bind(p.event)
                .push_bind(text(&p.data))
                .push_bind(p.created_at);
        });
        q.push(") AS v RETURNING recipient, seq");
        let numbered = q
            .build()
            .fetch_all(conn)
            .await
            .map_err(super::changed_on_unique("stream"))?
            .into_iter()
            .map(|row| match <[Value; 2]>::try_from(row) {
                Ok([recipient, seq]) => Ok((recipient.text("a stream's recipient")?, seq.int("a stream's number")?)),
                Err(_) => Err(StoreError::Corrupt("a stream message row is not two columns".into())),
            })
            .collect::<Result<Vec<(String, i64)>>>()?;
        // A recipient's numbers, lowest first, go to its messages in order.
        let mut first: std::collections::HashMap<&str, i64> = std::collections::HashMap::new();
        for (recipient, seq) in &numbered {
            let low = first.entry(recipient.as_str()).or_insert(*seq);
            *low = (*low).min(*seq);
        }
        for (p, place) in chunk.iter().zip(&places) {
            let low = first
                .get(p.recipient.as_str())
                .ok_or_else(|| StoreError::Corrupt(format!("no stream number for {}", p.recipient)))?;
            seqs.push(low + place - 1);
        }
    }
    Ok(seqs)
}

/// Marks an ended execution as taken in by its workflow run.
pub(super) async fn settle(conn: &mut TxConn, execution_id: &str) -> Result<()> {
    query("UPDATE kernel_executions SET settled = TRUE WHERE id = $1")
        .bind(execution_id)
        .execute(conn)
        .await
        .map(|_| ())
}

/// The condition of the kernel's partial indexes on executions' state
/// (`schemas/migrations/*/0017_kernel_live_indexes.sql`): a query uses one
/// only when its WHERE clause names this condition word for word.
macro_rules! live_execution {
    () => {
        "state IN ('pending', 'running', 'blocked')"
    };
}
pub(super) use live_execution;
const LIVE_EXECUTION: &str = live_execution!();

/// The same for steps.
const LIVE_STEP: &str = "state IN ('pending', 'dispatched', 'running')";

/// Which executions wait for an agent stream.
macro_rules! unassigned {
    () => {
        concat!(
            live_execution!(),
            " AND (state = 'pending' OR (state = 'blocked' AND conn IS NULL AND agent_id <> 'warden.review'))"
        )
    };
}
const UNASSIGNED: &str = unassigned!();

/// Rows of `table` matching `filter`, fairly: within each (tenant, `key`)
/// the oldest `per_key`, then within each tenant at most `per_tenant`,
/// round robin across tenants (every tenant's first row, then every
/// tenant's second, …), `limit` in all. With `key` `tenant_id` it is per
/// tenant only. Both backends have window functions (SQLite since 3.25).
fn fair_sql(table: &str, cols: &str, filter: &str, key: &str, per_key: i64, per_tenant: i64, limit: i64) -> String {
    format!(
        "SELECT {cols} FROM (SELECT {cols}, \
         ROW_NUMBER() OVER (PARTITION BY tenant_id ORDER BY rk, created_at, id) AS rt FROM \
         (SELECT {cols}, ROW_NUMBER() OVER (PARTITION BY tenant_id, {key} ORDER BY created_at, id) AS rk \
         FROM {table} WHERE {filter}) k WHERE rk <= {per_key}) t \
         WHERE rt <= {per_tenant} ORDER BY rt, created_at, id LIMIT {limit}"
    )
}

/// One agent's unassigned executions ([`executions_where_sql`]; `$1`
/// tenant, `$2` agent).
const UNASSIGNED_OF: &str = concat!("tenant_id = $1 AND agent_id = $2 AND ", unassigned!());

/// The executions an agent stream holds ([`executions_where_sql`]; `$1`).
const OF_CONN: &str = "conn = $1";

/// The agent streams of one instance that hold executions (`$1`: a
/// `LIKE` prefix).
const HELD_BY_INSTANCE: &str = "SELECT DISTINCT conn FROM kernel_executions WHERE conn IS NOT NULL AND conn LIKE $1";

fn executions_where_sql(filter: &str, limit: i64) -> String {
    format!("SELECT {EXEC_COLS} FROM kernel_executions WHERE {filter} ORDER BY created_at, id LIMIT {limit}")
}

fn unassigned_sql(limit: i64) -> String {
    fair_sql(
        "kernel_executions",
        EXEC_COLS,
        UNASSIGNED,
        "agent_id",
        (limit / 10).max(1),
        (limit / 4).max(1),
        limit,
    )
}

/// A tenant's executions, newest first (`$1` tenant, `$2` state or '',
/// `$3` agent or '', `$4` limit).
fn executions_list_sql() -> String {
    format!(
        "SELECT {EXEC_COLS} FROM kernel_executions WHERE tenant_id = $1 \
         AND ($2 = '' OR state = $2) AND ($3 = '' OR agent_id = $3) ORDER BY created_at DESC, id DESC LIMIT $4"
    )
}

/// `$1` now, `$2` lost before.
fn due_executions_sql(limit: i64) -> String {
    fair_sql(
        "kernel_executions",
        EXEC_COLS,
        &format!(
            "{LIVE_EXECUTION} AND (deadline_at <= $1 OR (state = 'blocked' AND (wake_at <= $1 OR agent_lost_at <= $2)))"
        ),
        "tenant_id",
        limit,
        (limit / 4).max(1),
        limit,
    )
}

/// `$1` now.
fn due_steps_sql(limit: i64) -> String {
    fair_sql(
        "kernel_steps",
        STEP_COLS,
        &format!(
            "{LIVE_STEP} AND (deadline_at <= $1 OR (review = 'waiting' AND review_expires_at <= $1) \
             OR (state = 'pending' AND (review IS NULL OR review = 'approved') \
                 AND (not_before IS NULL OR not_before <= $1)))"
        ),
        "tenant_id",
        limit,
        (limit / 4).max(1),
        limit,
    )
}

/// `$1` tenant, `$2` limit.
fn waiting_reviews_sql() -> String {
    format!(
        "SELECT {STEP_COLS} FROM kernel_steps WHERE tenant_id = $1 AND review = 'waiting' \
         AND state = 'pending' ORDER BY created_at LIMIT $2"
    )
}

impl Store {
    pub async fn kernel_execution(&self, id: &str) -> Result<Option<ExecutionRow>> {
        with_pool!(self, p => {
            let row = sqlx::query(sqlx::AssertSqlSafe(format!("SELECT {EXEC_COLS} FROM kernel_executions WHERE id = $1")))
                .bind(id).fetch_optional(p).await?;
            row.map(|r| Ok(exec_from_row!(r))).transpose()
        })
    }

    /// Executions matching a filter, oldest first.
    async fn kernel_executions_where(&self, filter: &str, binds: &[&str], limit: i64) -> Result<Vec<ExecutionRow>> {
        with_pool!(self, p => {
            let sql = executions_where_sql(filter, limit);
            let mut q = sqlx::query(sqlx::AssertSqlSafe(sql));
            for b in binds {
                q = q.bind(*b);
            }
            let rows = q.fetch_all(p).await?;
            rows.iter().map(|r| Ok(exec_from_row!(r))).collect()
        })
    }

    /// Pending executions (to assign), and blocked ones that lost their
    /// agent stream (to give back to it), of every tenant: fairly, each
    /// agent's oldest ([`fair_sql`]), so an agent that never connects,
    /// whatever its backlog, delays no other agent's or tenant's.
    pub async fn kernel_unassigned(&self, limit: i64) -> Result<Vec<ExecutionRow>> {
        let sql = unassigned_sql(limit);
        with_pool!(self, p => {
            let rows = sqlx::query(sqlx::AssertSqlSafe(sql)).fetch_all(p).await?;
            rows.iter().map(|r| Ok(exec_from_row!(r))).collect()
        })
    }

    /// One agent's unassigned executions, oldest first: what a stream of
    /// that agent takes when it opens.
    pub async fn kernel_unassigned_of(&self, tenant_id: &str, agent_id: &str, limit: i64) -> Result<Vec<ExecutionRow>> {
        self.kernel_executions_where(UNASSIGNED_OF, &[tenant_id, agent_id], limit)
            .await
    }

    /// Executions an agent stream holds.
    pub async fn kernel_executions_of_conn(&self, conn: &str) -> Result<Vec<ExecutionRow>> {
        self.kernel_executions_where(OF_CONN, &[conn], 10_000).await
    }

    /// A tenant's executions, newest first, optionally in one state and of
    /// one agent.
    pub async fn kernel_executions(
        &self,
        tenant_id: &str,
        state: Option<ExecState>,
        agent_id: Option<&str>,
        limit: i64,
    ) -> Result<Vec<ExecutionRow>> {
        with_pool!(self, p => {
            let rows = sqlx::query(sqlx::AssertSqlSafe(executions_list_sql())).bind(tenant_id).bind(state.map(|s| s.as_str()).unwrap_or_default())
                .bind(agent_id.unwrap_or_default()).bind(limit).fetch_all(p).await?;
            rows.iter().map(|r| Ok(exec_from_row!(r))).collect()
        })
    }

    /// Live executions whose time is up: their deadline, their `wait`
    /// timer, or the grace of an agent that went away (`lost_before`).
    /// Each tenant's oldest first, a share each, round robin ([`fair_sql`]).
    pub async fn kernel_due_executions(&self, now: i64, lost_before: i64, limit: i64) -> Result<Vec<ExecutionRow>> {
        let sql = due_executions_sql(limit);
        with_pool!(self, p => {
            let rows = sqlx::query(sqlx::AssertSqlSafe(sql)).bind(now).bind(lost_before).fetch_all(p).await?;
            rows.iter().map(|r| Ok(exec_from_row!(r))).collect()
        })
    }

    pub async fn kernel_step(&self, id: &str) -> Result<Option<StepRow>> {
        with_pool!(self, p => {
            let row = sqlx::query(sqlx::AssertSqlSafe(format!("SELECT {STEP_COLS} FROM kernel_steps WHERE id = $1")))
                .bind(id).fetch_optional(p).await?;
            row.map(|r| Ok(step_from_row!(r))).transpose()
        })
    }

    /// An execution's steps, every attempt, in order.
    pub async fn kernel_steps_of(&self, execution_id: &str) -> Result<Vec<StepRow>> {
        with_pool!(self, p => {
            let rows = sqlx::query(sqlx::AssertSqlSafe(format!("SELECT {STEP_COLS} FROM kernel_steps WHERE execution_id = $1 \
                ORDER BY created_at, attempt, id")))
                .bind(execution_id).fetch_all(p).await?;
            rows.iter().map(|r| Ok(step_from_row!(r))).collect()
        })
    }

    /// Steps whose time is up (deadline or review expiry), and remote steps
    /// ready to dispatch, of every tenant.
    /// Each tenant's oldest first, a share each, round robin ([`fair_sql`]).
    pub async fn kernel_due_steps(&self, now: i64, limit: i64) -> Result<Vec<StepRow>> {
        let sql = due_steps_sql(limit);
        with_pool!(self, p => {
            let rows = sqlx::query(sqlx::AssertSqlSafe(sql)).bind(now).fetch_all(p).await?;
            rows.iter().map(|r| Ok(step_from_row!(r))).collect()
        })
    }

    /// Steps of a tenant waiting for review, oldest first.
    pub async fn kernel_waiting_reviews(&self, tenant_id: &str, limit: i64) -> Result<Vec<StepRow>> {
        with_pool!(self, p => {
            let rows = sqlx::query(sqlx::AssertSqlSafe(waiting_reviews_sql())).bind(tenant_id).bind(limit).fetch_all(p).await?;
            rows.iter().map(|r| Ok(step_from_row!(r))).collect()
        })
    }

    pub async fn kernel_approvals_of(&self, step_id: &str) -> Result<Vec<ApprovalRow>> {
        with_pool!(self, p => {
            let rows = sqlx::query("SELECT step_id, tenant_id, reviewer_token, reviewer, subject, approve, reason, args_hash, at \
                FROM kernel_approvals WHERE step_id = $1 ORDER BY at, reviewer_token")
                .bind(step_id).fetch_all(p).await?;
            rows.iter().map(|r| Ok(approval_from_row!(r))).collect()
        })
    }

    pub async fn kernel_history(&self, execution_id: &str) -> Result<Vec<HistoryRow>> {
        with_pool!(self, p => {
            let rows = sqlx::query("SELECT execution_id, seq, tenant_id, kind, actor, payload, at, ledger_index \
                FROM kernel_history WHERE execution_id = $1 ORDER BY seq")
                .bind(execution_id).fetch_all(p).await?;
            rows.iter().map(|r| Ok(history_from_row!(r))).collect()
        })
    }

    /// A stream's messages after `after`, in order.
    pub async fn kernel_pushes_after(&self, recipient: &str, after: i64, limit: i64) -> Result<Vec<PushRow>> {
        with_pool!(self, p => {
            let rows = sqlx::query("SELECT recipient, seq, event, data, created_at FROM kernel_pushes \
                WHERE recipient = $1 AND seq > $2 ORDER BY seq LIMIT $3")
                .bind(recipient).bind(after).bind(limit).fetch_all(p).await?;
            rows.iter().map(|r| {
                let event: String = r.try_get("event")?;
                Ok(PushRow {
                    recipient: r.try_get("recipient")?,
                    seq: r.try_get("seq")?,
                    event: push_event_of(&event).ok_or_else(|| bad("push event", &event))?,
                    data: serde_json::from_str(&r.try_get::<String, _>("data")?).map_err(corrupt("push data"))?,
                    created_at: r.try_get("created_at")?,
                })
            }).collect()
        })
    }

    /// The last message number of a stream (0 when none).
    pub async fn kernel_last_push(&self, recipient: &str) -> Result<i64> {
        with_pool!(self, p => {
            Ok(sqlx::query_scalar("SELECT COALESCE(MAX(seq), 0) FROM kernel_pushes WHERE recipient = $1")
                .bind(recipient).fetch_one(p).await?)
        })
    }

    /// Records the tools a runner serves (replacing what it declared
    /// before), as declared by `token_id`. The declarations belong to the
    /// token that made them: false (nothing written) when another token
    /// still honoured at `now` owns them.
    pub async fn kernel_put_runner(
        &self,
        tenant_id: &str,
        runner_id: &str,
        token_id: &str,
        tools: &[DeclaredTool],
        now: i64,
    ) -> Result<bool> {
        let tools = serde_json::to_string(tools).unwrap_or_default();
        let done = with_pool!(self, p => {
            sqlx::query("INSERT INTO kernel_runners (tenant_id, runner_id, tools, seen_at, token_id) \
                VALUES ($1,$2,$3,$4,$5) \
                ON CONFLICT (tenant_id, runner_id) DO UPDATE SET tools = excluded.tools, seen_at = excluded.seen_at, \
                    token_id = excluded.token_id \
                WHERE kernel_runners.token_id IS NULL OR kernel_runners.token_id = excluded.token_id \
                    OR NOT EXISTS (SELECT 1 FROM tokens t WHERE t.id = kernel_runners.token_id \
                        AND t.revoked_at IS NULL AND (t.expires_at IS NULL OR t.expires_at > $4))")
                .bind(tenant_id).bind(runner_id).bind(tools).bind(now).bind(token_id).execute(p).await?
                .rows_affected()
        });
        Ok(done == 1)
    }

    /// Every tool a tenant's runners declared, with whether it is idempotent
    /// (false when any runner declared it not to be).
    pub async fn kernel_declared_tools(&self, tenant_id: &str) -> Result<HashMap<String, bool>> {
        let rows: Vec<String> = with_pool!(self, p => {
            sqlx::query_scalar("SELECT tools FROM kernel_runners WHERE tenant_id = $1").bind(tenant_id).fetch_all(p).await?
        });
        let mut found = HashMap::new();
        for r in rows {
            let tools: Vec<DeclaredTool> = serde_json::from_str(&r).map_err(corrupt("runner tools"))?;
            for t in tools {
                let idempotent = found.entry(t.name).or_insert(true);
                *idempotent = *idempotent && t.idempotent;
            }
        }
        Ok(found)
    }

    /// Agent streams of one instance (ids starting with `prefix`) that hold executions.
    pub async fn kernel_held_by_instance(&self, prefix: &str) -> Result<Vec<String>> {
        let pattern = format!("{prefix}%");
        with_pool!(self, p => {
            Ok(sqlx::query_scalar(HELD_BY_INSTANCE)
                .bind(pattern).fetch_all(p).await?)
        })
    }

    /// Deletes stream messages older than `before` (epoch ms), except each
    /// stream's last one, so its numbers never start again. Returns how many.
    pub async fn kernel_prune_pushes(&self, before: i64) -> Result<u64> {
        with_pool!(self, p => {
            let done = sqlx::query("DELETE FROM kernel_pushes WHERE created_at < $1 AND seq < \
                (SELECT MAX(k.seq) FROM kernel_pushes k WHERE k.recipient = kernel_pushes.recipient)")
                .bind(before).execute(p).await?;
            Ok(done.rows_affected())
        })
    }

    /// Notes that this instance is alive.
    pub async fn kernel_heartbeat(&self, instance: &str, now: i64) -> Result<()> {
        with_pool!(self, p => {
            sqlx::query("INSERT INTO kernel_instances (instance, seen_at) VALUES ($1, $2) \
                ON CONFLICT (instance) DO UPDATE SET seen_at = excluded.seen_at")
                .bind(instance).bind(now).execute(p).await?;
        });
        Ok(())
    }

    /// Instances seen since `before`.
    pub async fn kernel_live_instances(&self, before: i64) -> Result<Vec<String>> {
        with_pool!(self, p => {
            Ok(sqlx::query_scalar("SELECT instance FROM kernel_instances WHERE seen_at >= $1 ORDER BY instance")
                .bind(before).fetch_all(p).await?)
        })
    }

    /// Instances not seen since `before`.
    pub async fn kernel_silent_instances(&self, before: i64) -> Result<Vec<String>> {
        with_pool!(self, p => {
            Ok(sqlx::query_scalar("SELECT instance FROM kernel_instances WHERE seen_at < $1 ORDER BY instance")
                .bind(before).fetch_all(p).await?)
        })
    }

    /// Forgets an instance (once its executions were given back).
    pub async fn kernel_forget_instance(&self, instance: &str, before: i64) -> Result<()> {
        with_pool!(self, p => {
            sqlx::query("DELETE FROM kernel_instances WHERE instance = $1 AND seen_at < $2")
                .bind(instance).bind(before).execute(p).await?;
        });
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::super::runs::{INBOX, LIVE_EXECUTIONS_OF_RUN};
    use super::*;

    /// Each query that looks executions or steps up by state, with literal
    /// arguments, and the index its plan must use: a partial index is used
    /// only when the query names its condition word for word, and without
    /// one the query would read every execution there ever was.
    fn cases() -> Vec<(&'static str, String, &'static [&'static str])> {
        let with = |sql: String, args: &[&str]| {
            args.iter()
                .enumerate()
                .rev()
                .fold(sql, |sql, (i, a)| sql.replace(&format!("${}", i + 1), a))
        };
        vec![
            (
                "assignable executions",
                unassigned_sql(1000),
                &["kernel_executions_live", "kernel_executions_agent"],
            ),
            (
                "an agent's assignable executions",
                with(executions_where_sql(UNASSIGNED_OF, 10), &["'ten_a'", "'agent'"]),
                &["kernel_executions_agent"],
            ),
            (
                "a stream's executions",
                with(executions_where_sql(OF_CONN, 10), &["'i/con_1'"]),
                &["kernel_executions_conn"],
            ),
            (
                "an instance's streams",
                with(HELD_BY_INSTANCE.into(), &["'i/%'"]),
                &["kernel_executions_conn"],
            ),
            (
                "a tenant's executions",
                with(executions_list_sql(), &["'ten_a'", "''", "''", "50"]),
                &["kernel_executions_tenant"],
            ),
            (
                "executions due",
                with(due_executions_sql(500), &["1000", "900"]),
                &["kernel_executions_live", "kernel_executions_agent"],
            ),
            (
                "steps due",
                with(due_steps_sql(500), &["1000"]),
                &["kernel_steps_state"],
            ),
            (
                "steps waiting for review",
                with(waiting_reviews_sql(), &["'ten_a'", "50"]),
                &["kernel_steps_review"],
            ),
            (
                "the workflow inbox",
                with(INBOX.into(), &["10", "100"]),
                &["kernel_executions_inbox"],
            ),
            (
                "a run's live executions",
                with(LIVE_EXECUTIONS_OF_RUN.into(), &["'run_1'"]),
                &["kernel_executions_live", "kernel_executions_agent"],
            ),
        ]
    }

    /// Some executions and steps, ended and live, so the tables are not
    /// empty when the plans are made.
    async fn fill(store: &Store) {
        let sql = |i: usize| {
            let state = ["completed", "failed", "running", "pending", "blocked"][i % 5];
            let step = ["succeeded", "failed", "pending", "dispatched", "running"][i % 5];
            [
                format!(
                    "INSERT INTO kernel_executions (id, tenant_id, agent_id, state, input, labels, initiator, \
                     initiator_token, deadline_at, version, seq, created_at, updated_at) \
                     VALUES ('exe_{i:04}', 'ten_a', 'agent', '{state}', '{{}}', '{{}}', 'o', 'tok', 0, 1, 1, {i}, {i})"
                ),
                format!(
                    "INSERT INTO kernel_steps (id, execution_id, tenant_id, tool, arguments, args_hash, attempt, \
                     max_attempts, backoff_ms, state, remote, idempotent, idempotency_key, timeout_ms, review_needed, \
                     on_expiry, reasons, created_at, updated_at) \
                     VALUES ('stp_{i:04}', 'exe_{i:04}', 'ten_a', 't', '{{}}', 'h', 1, 1, 0, '{step}', FALSE, FALSE, \
                     'k', 1000, 0, 'fail', '[]', {i}, {i})"
                ),
            ]
        };
        for i in 0..200 {
            for s in sql(i) {
                with_pool!(store, p => {
                    sqlx::query(sqlx::AssertSqlSafe(s)).execute(p).await.unwrap();
                });
            }
        }
    }

    async fn plans_use_their_indexes(store: &Store) {
        fill(store).await;
        let mut wrong = Vec::new();
        for (what, sql, indexes) in cases() {
            let plan: Vec<String> = match &store.pool {
                Pool::Sqlite(p) => sqlx::query(sqlx::AssertSqlSafe(format!("EXPLAIN QUERY PLAN {sql}")))
                    .fetch_all(p)
                    .await
                    .unwrap_or_else(|e| panic!("{what}: {e}\n{sql}"))
                    .iter()
                    .map(|r| r.get::<String, _>("detail"))
                    .collect(),
                Pool::Postgres(p) => {
                    // Small tables are read whole when that is cheaper; with
                    // that off, a plan still reads one whole only when no
                    // index can answer the query.
                    let mut c = p.acquire().await.unwrap();
                    sqlx::query("SET enable_seqscan = off").execute(&mut *c).await.unwrap();
                    sqlx::query_scalar::<_, String>(sqlx::AssertSqlSafe(format!("EXPLAIN {sql}")))
                        .fetch_all(&mut *c)
                        .await
                        .unwrap_or_else(|e| panic!("{what}: {e}\n{sql}"))
                }
            };
            let text = plan.join("\n");
            let whole = plan.iter().any(|line| {
                line.trim_start_matches(['|', '`', '-', ' '])
                    .starts_with("SCAN kernel_")
                    || line.contains("Seq Scan on kernel_")
            });
            if whole || !indexes.iter().any(|i| text.contains(i)) {
                wrong.push(format!(
                    "{what}: the plan uses none of {indexes:?} or reads a whole table:\n{text}"
                ));
            }
        }
        assert!(wrong.is_empty(), "{}", wrong.join("\n\n"));
    }

    /// The ledger writer's conditional updates (a batch's rows joined to
    /// the table on its key) read their rows by the primary key in its
    /// batch transactions, even when the table's statistics, made when it
    /// was nearly empty, make reading it whole look cheaper (as the same
    /// statement does on the shared pool's connections).
    async fn the_writers_updates_find_rows_by_key(store: &Store) {
        let sql = "EXPLAIN UPDATE kernel_steps SET state = v.column2 FROM (VALUES \
            ('stp_0001', 'running', 'pending'), ('stp_0002', 'running', 'pending'), \
            ('stp_0003', 'running', 'pending')) AS v \
            WHERE kernel_steps.id = v.column1 AND kernel_steps.state = v.column3";
        let plan = |p: &sqlx::PgPool| {
            let p = p.clone();
            async move {
                sqlx::query_scalar::<_, String>(sql)
                    .fetch_all(&p)
                    .await
                    .unwrap()
                    .join("\n")
            }
        };
        let Pool::Postgres(shared) = &store.pool else {
            unreachable!("a PostgreSQL store")
        };
        let shared = plan(shared).await;
        assert!(
            shared.contains("Seq Scan on kernel_steps"),
            "the statistics no longer mislead the planner here, so this test proves nothing:\n{shared}"
        );
        let mut tx = store.ledger_tx().await.unwrap();
        let writer: String = super::super::statement::query_built(sql.to_string())
            .fetch_all(&mut tx.conn)
            .await
            .unwrap()
            .into_iter()
            .flatten()
            .map(|line| line.text("a plan's line").unwrap())
            .collect::<Vec<_>>()
            .join("\n");
        tx.rollback().await;
        assert!(
            writer.contains("Index Scan using kernel_steps_pkey") && !writer.contains("Seq Scan"),
            "the writer's update reads the table whole:\n{writer}"
        );
    }

    #[tokio::test]
    async fn kernel_queries_use_the_live_indexes_sqlite() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::connect(&format!("sqlite://{}", dir.path().join("k.db").display()), 2)
            .await
            .unwrap();
        plans_use_their_indexes(&store).await;
    }

    #[tokio::test]
    async fn kernel_queries_use_the_live_indexes_postgres() {
        use sqlx::Connection;
        let admin = std::env::var("WARDEN_TEST_POSTGRES_URL")
            .unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/postgres".into());
        let mut conn = sqlx::PgConnection::connect(&admin)
            .await
            .unwrap_or_else(|e| panic!("PostgreSQL must be reachable at {admin} for this test: {e}"));
        let mut b = [0u8; 8];
        getrandom::fill(&mut b).unwrap();
        let name = format!("warden_t_plans_{}", hex::encode(b));
        sqlx::query(sqlx::AssertSqlSafe(format!("CREATE DATABASE {name}")))
            .execute(&mut conn)
            .await
            .unwrap();
        let base = admin.rsplit_once('/').map(|(b, _)| b.to_string()).unwrap_or(admin);
        let store = Store::connect(&format!("{base}/{name}"), 2).await.unwrap();
        the_writers_updates_find_rows_by_key(&store).await;
        plans_use_their_indexes(&store).await;
        store.close().await;
        sqlx::query(sqlx::AssertSqlSafe(format!("DROP DATABASE {name}")))
            .execute(&mut conn)
            .await
            .unwrap();
    }
}
