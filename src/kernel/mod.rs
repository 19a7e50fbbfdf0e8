//! The execution kernel (seed 003): executions run by agents over SSE,
//! intents checked by policy before anything acts, steps run by the agent
//! or dispatched to runners, human review of what policy escalates,
//! retries, time-outs, and liveness.
//!
//! Every operation takes the execution's lock (striped, in this process),
//! reads the execution fresh, builds one [`edit::Edit`] (the new rows, the
//! history entries, the stream messages) and commits it with
//! [`Kernel::commit`]: the rows go to the ledger writer as a
//! [`crate::store::Change`] with the records of the history, written in one
//! transaction and conditionally (another instance moving the same
//! execution makes this write fail rather than both succeed); only then
//! does it answer or wake streams.
//!
//! Where each part lives:
//!
//! - [`crate::model::kernel`]: states, the only transitions between them,
//!   stored rows. No IO.
//! - [`requests`] and [`views`]: what callers send and what they are shown;
//!   [`error`]: every refusal with its code.
//! - [`edit`]: the edit builder and the records of its history.
//! - [`executions`]: create, read, cancel, signal, end.
//! - [`intents`]: an agent's tool call, decided by policy first, then run
//!   or dispatched.
//! - [`results`]: what agents and runners report of a step; retries.
//! - [`review`]: steps waiting for people, and their verdicts.
//! - [`gates`]: executions a workflow run starts, and their end reported
//!   back to it.
//! - [`streams`] and [`hub`]: the agent and runner streams connected to
//!   this instance; executions given to them and taken back.
//! - [`timers`]: the background pass that dispatches, assigns, retries and
//!   times out.
//!
//! Invariants: a transition and its ledger entries commit together, before
//! anyone is told (response or push); a stale edit is refused whole. The
//! identity recorded for every act is the authenticated token's.

use std::sync::Arc;

use tokio::sync::{Mutex, Notify};

use self::edit::{Committed, Edit};
use self::error::Result;
use self::hub::Hub;
use crate::clock::Clock;
use crate::config::KernelConfig;
use crate::ledger::{AppendError, Ledger};
use crate::metrics::{KindLabels, Metrics};
use crate::model::kernel::*;
use crate::policy::PolicyService;
use crate::store::{Change, Store, StoreError};

mod cache;
mod edit;
mod error;
mod executions;
mod gates;
pub mod hub;
mod intents;
mod requests;
mod results;
mod review;
mod streams;
pub mod timers;
mod views;
pub mod wakes;

pub use edit::record_of;
pub use error::KernelError;
pub use gates::{Gate, MCP_REVIEW_TOOL, McpReview, REVIEW_AGENT, REVIEW_REJECTED, REVIEW_TOOL, Spawn, Spawned};
pub use requests::{
    CreateExecution, Intent, IntentType, ReportStatus, RetrySpec, ReviewRequest, StepReport, Verdict, args_hash,
    bound_agent, bound_runner,
};
pub use views::{
    ExecutionSummary, ExecutionView, HistoryView, IntentAnswer, Outcome, PendingReview, ReviewView, StepView,
};

pub struct Kernel {
    pub store: Store,
    ledger: Ledger,
    policy: Arc<PolicyService>,
    pub clock: Clock,
    metrics: Arc<Metrics>,
    pub hub: Hub,
    pub cfg: KernelConfig,
    /// This instance's name: prefixes its stream ids.
    pub instance: String,
    locks: Vec<Mutex<()>>,
    /// Rows this instance committed last, read back while it is alone.
    cache: cache::RowCache,
    /// Whether other live instances share the store (their commits reach
    /// this instance's streams by polling, and sooner by [`wakes`]).
    peers: std::sync::atomic::AtomicBool,
    /// Recipients of this instance's commits, for the other instances.
    outbox: wakes::Outbox,
    /// Wakes the timers when something may have become due.
    pub due: Notify,
    /// Wakes the workflow engine when an execution a run started has ended.
    pub run_ended: Notify,
    /// How often open streams' tokens are checked against the store (a
    /// token revoked on another instance, or expired): `auth.cache_ttl_ms`.
    pub token_check: std::time::Duration,
}

const SYSTEM: &str = "system";

impl Kernel {
    pub fn new(
        store: Store,
        ledger: Ledger,
        policy: Arc<PolicyService>,
        clock: Clock,
        metrics: Arc<Metrics>,
        cfg: KernelConfig,
        instance: String,
    ) -> Self {
        Kernel {
            store,
            ledger,
            policy,
            clock,
            metrics,
            hub: Hub::default(),
            cfg,
            instance,
            locks: (0..64).map(|_| Mutex::new(())).collect(),
            cache: cache::RowCache::default(),
            peers: std::sync::atomic::AtomicBool::new(false),
            outbox: wakes::Outbox::default(),
            due: Notify::new(),
            run_ended: Notify::new(),
            token_check: std::time::Duration::from_millis(crate::config::AuthConfig::default().cache_ttl_ms),
        }
    }

    /// The same kernel, checking its open streams' tokens this often.
    pub fn with_token_check(mut self, every: std::time::Duration) -> Self {
        self.token_check = every;
        self
    }

    fn lock_of(&self, execution_id: &str) -> &Mutex<()> {
        let h = blake3::hash(execution_id.as_bytes());
        &self.locks[h.as_bytes()[0] as usize % self.locks.len()]
    }

    async fn load(&self, tenant_id: &str, id: &str) -> Result<ExecutionRow> {
        match self.execution_row(id).await? {
            Some(e) if e.tenant_id == tenant_id => Ok(e),
            _ => Err(KernelError::UnknownExecution(id.to_string())),
        }
    }

    async fn step_of(&self, exec: &ExecutionRow, step_id: &str) -> Result<StepRow> {
        match self.step_row(step_id).await? {
            Some(s) if s.execution_id == exec.id => Ok(s),
            _ => Err(KernelError::UnknownStep(step_id.to_string())),
        }
    }

    /// An execution's row: as this instance committed it last while it is
    /// alone ([`cache`]), else as stored.
    async fn execution_row(&self, id: &str) -> Result<Option<ExecutionRow>> {
        if !self.has_peers()
            && let Some(e) = self.cache.execution(id)
        {
            cache::used();
            return Ok(Some(e));
        }
        Ok(self.store.kernel_execution(id).await?)
    }

    /// A step's row, the same way.
    async fn step_row(&self, id: &str) -> Result<Option<StepRow>> {
        if !self.has_peers()
            && let Some(s) = self.cache.step(id)
        {
            cache::used();
            return Ok(Some(s));
        }
        Ok(self.store.kernel_step(id).await?)
    }

    /// Whether a tenant's runners declared `tool`, and if so whether it is
    /// idempotent (false when any runner declared it not to be).
    async fn declared_tool(&self, tenant_id: &str, tool: &str) -> Result<Option<bool>> {
        if !self.has_peers()
            && let Some(tools) = self.cache.tools(tenant_id)
        {
            return Ok(tools.get(tool).copied());
        }
        let (read_at, epoch) = (std::time::Instant::now(), self.cache.tools_epoch());
        let tools = std::sync::Arc::new(self.store.kernel_declared_tools(tenant_id).await?);
        let found = tools.get(tool).copied();
        if !self.has_peers() {
            self.cache.put_tools(tenant_id, tools, read_at, epoch);
        }
        Ok(found)
    }

    /// Writes the edit and appends its history to the ledger, in one
    /// transaction (the ledger writer's, group-committed with others), then
    /// wakes the streams it pushed to.
    async fn commit(&self, mut edit: Edit) -> Result<Committed> {
        edit.exec.version += 1;
        edit.exec.updated_at = edit.now;
        let change = Change {
            executions: vec![(edit.exec.clone(), edit.expected)],
            steps: std::mem::take(&mut edit.steps),
            history: std::mem::take(&mut edit.history),
            pushes: std::mem::take(&mut edit.pushes),
            approval: edit.approval.take(),
            ..Change::default()
        };
        let records = change.history.iter().map(record_of).collect();
        let kinds: Vec<&'static str> = change.history.iter().map(|h| h.kind).collect();
        let mut pushes = change.pushes.clone();
        let pending = change.steps.iter().any(|(s, _)| s.state == StepState::Pending);
        // What the cache keeps of the steps: only while it is in use.
        let steps: Vec<StepRow> = match self.has_peers() {
            true => Vec::new(),
            false => change.steps.iter().map(|(s, _)| s.clone()).collect(),
        };
        let appended = match self.ledger.append_change(records, change).await {
            Ok(a) => a,
            Err(e) => {
                // What this edit was built on may be stale: the next read
                // goes to the store.
                self.cache.forget(&edit.exec.id, steps.iter().map(|s| s.id.as_str()));
                return Err(match e {
                    AppendError::Changed(what) => KernelError::Store(StoreError::Changed(what)),
                    e => e.into(),
                });
            }
        };
        if !self.has_peers() {
            self.cache.committed(&edit.exec, &steps);
        }
        for (p, seq) in pushes.iter_mut().zip(&appended.pushed) {
            p.seq = *seq;
        }
        for kind in &kinds {
            self.metrics
                .kernel_transitions
                .get_or_create(&KindLabels { kind })
                .inc();
        }
        if self.has_peers() {
            // Streams read the store, which holds the other instances'
            // messages too; those instances are told to look.
            let recipients: Vec<String> = pushes.iter().map(|p| p.recipient.clone()).collect();
            for r in &recipients {
                self.hub.wake(r);
            }
            self.outbox.add(&recipients);
        } else {
            // Alone: its streams send the messages without reading them back.
            self.hub.deliver(pushes);
        }
        if pending {
            self.due.notify_one();
        }
        if edit.exec.workflow_run.is_some() && edit.exec.state.is_terminal() {
            self.run_ended.notify_one();
        }
        Ok(Committed {
            exec: edit.exec,
            receipts: appended.receipts,
            kinds,
        })
    }

    /// What follows a commit made outside this module (the workflow
    /// engine's): streams woken, timers told of pending steps.
    pub fn after_commit(&self, recipients: &[String], pending: bool) {
        for r in recipients {
            self.hub.wake(r);
        }
        if self.has_peers() {
            self.outbox.add(recipients);
        }
        if pending {
            self.due.notify_one();
        }
    }

    /// Asks the other instances sharing the store for a timer pass now: an
    /// execution just committed waits for an agent stream this instance
    /// does not hold (PostgreSQL; else nothing).
    pub fn due_elsewhere(&self) {
        if self.has_peers() {
            self.outbox.add_due();
        }
    }

    /// Counts committed history kinds in the metrics.
    pub fn count_transitions<'a>(&self, kinds: impl IntoIterator<Item = &'a str>) {
        for kind in kinds {
            if let Some(kind) = kind_of(kind) {
                self.metrics
                    .kernel_transitions
                    .get_or_create(&KindLabels { kind })
                    .inc();
            }
        }
    }
}
