//! The unit of work the ledger writer commits together with its entries.
//!
//! A domain that must record evidence of a write (the kernel moving an
//! execution, the conductor moving a run, a skill, workflow or bundle
//! version registered, a bundle activated) fills a [`Change`] with its rows and hands it, with its
//! records, to `Ledger::append_with`. The writer applies it with
//! [`LedgerTx::apply`] inside its batch transaction, in a savepoint: the rows
//! and the entries commit together or not at all, and a change whose
//! conditions no longer hold (a row moved since it was read) leaves nothing
//! behind while the rest of the batch goes on. The writer first tries the
//! batch without savepoints, all its changes at once
//! ([`LedgerTx::apply_all_unisolated`]: the kernel rows of all of them in
//! one statement per table and kind); only a batch in which a change fails
//! is written again, each change in its savepoint.
//!
//! Each part is written by one function in the store module of its table;
//! this file only orders them. The ledger knows entries and trees; it never
//! looks inside a change beyond its history rows (whose ledger index it
//! notes).

use super::bundles::{self, ActivationRow, BundleUpload};
use super::ledger::LedgerTx;
use super::runs::WorkflowRunRow;
use super::sinks::{self, SinkWrite};
use super::tenancy::{self, AdminWrite};
use super::{Result, SkillRow, StoreError, WorkflowRow, kernel, mcp, runs, skills, workflows};
use crate::model::kernel::{ApprovalRow, ExecutionRow, HistoryRow, PushRow, StepRow, StepState};

/// What [`LedgerTx::apply`] did with a change.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Applied {
    /// Every row is written (and commits with the batch).
    Written,
    /// The named row moved since it was read: nothing of the change stays,
    /// and its records must be left out of the batch.
    Moved(&'static str),
    /// The change would write what exists already (the named thing: a
    /// tenant name, a key id): nothing of it stays, its records are left out.
    Exists(&'static str),
}

/// Rows written atomically with the ledger entries that record them.
#[derive(Debug, Default)]
pub struct Change {
    /// Kernel executions' new rows, each with the version it must still
    /// have (None: a new execution).
    pub executions: Vec<(ExecutionRow, Option<i64>)>,
    /// Kernel steps' new rows, each with the state it must still be in
    /// (None: new).
    pub steps: Vec<(StepRow, Option<StepState>)>,
    /// Kernel history entries; each is recorded by one of the records
    /// appended with the change, in order, and written once the batch
    /// knows their ledger indexes ([`LedgerTx::record_history`]).
    pub history: Vec<HistoryRow>,
    /// Messages for streams; their `seq` is assigned when written, in
    /// commit order, and answered by [`LedgerTx::apply`].
    pub pushes: Vec<PushRow>,
    /// A reviewer's verdict on a step.
    pub approval: Option<ApprovalRow>,
    /// A workflow run's new row, and the version it must still have (None:
    /// a new run).
    pub run: Option<(WorkflowRunRow, Option<i64>)>,
    /// Ended executions their run has now taken in.
    pub settled: Vec<String>,
    /// A new workflow definition version (its upload's entry commits with it).
    pub workflow_definition: Option<WorkflowRow>,
    /// A new skill version (its registration's entry commits with it).
    pub skill: Option<SkillRow>,
    /// A new bundle version (its upload's entry commits with it).
    pub bundle: Option<BundleUpload>,
    /// A bundle's head moved (its activation's entry commits with it).
    pub activation: Option<ActivationRow>,
    /// An administrative write: a tenant, a token, a key, settings.
    pub admin: Option<AdminWrite>,
    /// A tenant's sink created, replaced or deleted.
    pub sink: Option<SinkWrite>,
    /// The MCP gateway's rows: upstreams, pinned tools, reviews.
    pub mcp: Vec<mcp::McpWrite>,
}

impl LedgerTx {
    /// Applies `change` inside a savepoint of the ledger's batch
    /// transaction. When a row it is conditional on moved since it was
    /// read, nothing of it stays and the batch goes on.
    /// Also answers the numbers its stream messages were given, in order
    /// (empty unless written).
    pub async fn apply(&mut self, change: &Change) -> Result<(Applied, Vec<i64>)> {
        self.execute("SAVEPOINT change").await?;
        let (applied, pushed) = match write(self, &[change]).await {
            Ok(mut pushed) => (Applied::Written, pushed.pop().unwrap_or_default()),
            Err(StoreError::Changed(what)) => (Applied::Moved(what), Vec::new()),
            Err(StoreError::Conflict(what)) => (Applied::Exists(what), Vec::new()),
            Err(e) => return Err(e),
        };
        if applied != Applied::Written {
            self.execute("ROLLBACK TO SAVEPOINT change").await?;
        }
        self.execute("RELEASE SAVEPOINT change").await?;
        Ok((applied, pushed))
    }

    /// Applies a batch's changes together, without savepoints: the runs'
    /// and the kernel's rows of all of them in one statement per table and
    /// kind (new runs, moved runs, new executions, moved executions, new
    /// steps, moved steps, stream messages), the rest change by change.
    /// Answers each change's stream numbers, or None when a condition
    /// fails: which change failed is not known, and the caller rolls back
    /// and writes them again, each isolated ([`Self::apply`]). Changes that
    /// touch the same run, execution or step are written one after
    /// another, in order.
    pub async fn apply_all_unisolated(&mut self, changes: &[&Change]) -> Result<Option<Vec<Vec<i64>>>> {
        if !overlap(changes) {
            return unless_moved(write(self, changes).await);
        }
        let mut pushed = Vec::with_capacity(changes.len());
        for c in changes {
            match unless_moved(write(self, &[c]).await)? {
                Some(mut p) => pushed.push(p.pop().unwrap_or_default()),
                None => return Ok(None),
            }
        }
        Ok(Some(pushed))
    }

    /// Writes the history rows of the batch's written changes, each with
    /// the index of the ledger entry that records it (a change's records
    /// are its history rows, one each, in order), in multi-row statements.
    /// They cannot collide: each execution's row was written, conditional
    /// on its version, by the same change.
    pub async fn record_history(&mut self, rows: &[(&HistoryRow, u64)]) -> Result<()> {
        kernel::insert_history(&mut self.conn, rows).await
    }
}

/// None for a write refused because a row moved or exists already.
fn unless_moved<T>(written: Result<T>) -> Result<Option<T>> {
    match written {
        Ok(t) => Ok(Some(t)),
        Err(StoreError::Changed(_) | StoreError::Conflict(_)) => Ok(None),
        Err(e) => Err(e),
    }
}

/// Whether two changes write the same run, execution or step (one
/// statement cannot write a row twice).
fn overlap(changes: &[&Change]) -> bool {
    let mut runs = std::collections::HashSet::new();
    let mut executions = std::collections::HashSet::new();
    let mut steps = std::collections::HashSet::new();
    changes.iter().any(|c| {
        c.run.as_ref().is_some_and(|(r, _)| !runs.insert(r.id.as_str()))
            || c.executions.iter().any(|(e, _)| !executions.insert(e.id.as_str()))
            || c.steps.iter().any(|(s, _)| !steps.insert(s.id.as_str()))
    })
}

/// Every part of the changes, in an order that keeps foreign keys
/// satisfied (the runs of all, what each change's kernel rows refer to,
/// the kernel rows of all, then what refers to them); the numbers given
/// to each change's stream messages.
async fn write(tx: &mut LedgerTx, changes: &[&Change]) -> Result<Vec<Vec<i64>>> {
    let conn = &mut tx.conn;
    let runs: Vec<_> = changes
        .iter()
        .filter_map(|c| c.run.as_ref().map(|(r, v)| (r, *v)))
        .collect();
    runs::write_all(conn, &runs).await?;
    for c in changes {
        write_before_kernel(conn, c).await?;
    }
    let executions: Vec<_> = changes
        .iter()
        .flat_map(|c| c.executions.iter().map(|(e, v)| (e, *v)))
        .collect();
    kernel::write_executions(conn, &executions).await?;
    let steps: Vec<_> = changes
        .iter()
        .flat_map(|c| c.steps.iter().map(|(s, v)| (s, *v)))
        .collect();
    kernel::write_steps(conn, &steps).await?;
    for c in changes {
        if let Some(a) = &c.approval {
            kernel::insert_approval(conn, a).await?;
        }
    }
    let pushes: Vec<_> = changes.iter().flat_map(|c| c.pushes.iter()).collect();
    let mut seqs = kernel::push_all(conn, &pushes).await?.into_iter();
    let pushed = changes
        .iter()
        .map(|c| seqs.by_ref().take(c.pushes.len()).collect())
        .collect();
    for c in changes {
        for w in &c.mcp {
            mcp::write(conn, w).await?;
        }
    }
    Ok(pushed)
}

/// A change's parts that its kernel rows may refer to.
async fn write_before_kernel(conn: &mut super::ledger::TxConn, c: &Change) -> Result<()> {
    if let Some(w) = &c.workflow_definition {
        workflows::insert(conn, w).await?;
    }
    if let Some(sk) = &c.skill {
        skills::insert(conn, sk).await?;
    }
    if let Some(b) = &c.bundle {
        bundles::insert(conn, b).await?;
    }
    if let Some(a) = &c.activation {
        bundles::activate(conn, a).await?;
    }
    if let Some(a) = &c.admin {
        tenancy::write(conn, a).await?;
    }
    match &c.sink {
        Some(SinkWrite::Put(p)) => sinks::put(conn, p).await?,
        Some(SinkWrite::Delete { tenant_id, name }) => sinks::delete(conn, tenant_id, name).await?,
        None => {}
    }
    for id in &c.settled {
        kernel::settle(conn, id).await?;
    }
    Ok(())
}
