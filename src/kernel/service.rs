//! Every kernel operation. Each one takes the execution's lock (striped, in
//! this process), reads the execution fresh, builds one `Edit` (the new
//! rows, the history entries, the stream messages), writes it atomically
//! and conditionally (so another instance moving the same execution makes
//! this write fail rather than both succeed), appends its history to the
//! ledger, and only then answers or wakes streams.

use std::sync::Arc;

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value, json};
use tokio::sync::{Mutex, Notify};

use super::hub::{Conn, Hub};
use super::model::*;
use crate::auth::{Action, Principal, Role, new_id};
use crate::clock::{Clock, rfc3339_ms};
use crate::config::KernelConfig;
use crate::ledger::{AppendError, Ledger, Receipt, Record, canonical};
use crate::metrics::{KindLabels, Metrics};
use crate::policy::{DecisionRequest, PolicyService};
use crate::store::{KernelChange, Store, StoreError};

#[derive(Debug, thiserror::Error)]
pub enum KernelError {
    #[error("no execution {0} in this tenant")]
    UnknownExecution(String),
    #[error("no step {0} in this execution")]
    UnknownStep(String),
    #[error("{what} {id} is {from}; it cannot become {to}")]
    IllegalTransition {
        what: &'static str,
        id: String,
        from: String,
        to: String,
    },
    #[error("execution {0} is not held by this agent token; only the agent stream it was assigned to may act on it")]
    NotAssigned(String),
    #[error("this token is not bound to {kind} id {id:?}; an admin mints tokens with the {kind} ids they may act as")]
    NotBound { kind: &'static str, id: String },
    #[error("the job of step {0} was dispatched to another token; only that token reports its result")]
    JobNotYours(String),
    #[error(
        "runner {0:?} declared its tools with another token, which is still live; only that token may declare them again"
    )]
    RunnerOwned(String),
    #[error(
        "this tenant already holds {0} open streams on this instance (kernel.max_streams_per_tenant); close one first"
    )]
    TooManyStreams(usize),
    #[error("step {step} was dispatched to runner {owner:?}, not to runner {caller}")]
    StepNotYours {
        step: String,
        owner: Option<String>,
        caller: String,
    },
    #[error("policy denied invoking {tool}: {}", reasons.join("; "))]
    Denied {
        tool: String,
        decision_id: Option<String>,
        reasons: Vec<String>,
    },
    #[error("{0}")]
    Invalid(String),
    #[error("approving needs the reviewer role; this token's roles are {0}")]
    NotAReviewer(String),
    #[error("step {0} does not need review")]
    NoReview(String),
    #[error("the reviewed arguments hash {given} is not the step's ({expected}); review the step as it is now")]
    ArgumentsMismatch { given: String, expected: String },
    #[error(
        "this reviewer (this token, or another token of its subject) already gave a verdict on step {0}; each person's verdict counts once"
    )]
    ApprovalReused(String),
    #[error("the review of step {0} expired; nothing can be approved any more")]
    ApprovalExpired(String),
    #[error("the review of step {step} is closed ({state})")]
    ApprovalClosed { step: String, state: String },
    #[error("the subject that started execution {0} may not review its steps; another person must")]
    ByInitiator(String),
    #[error(
        "the subject that runs execution {0} (or a token that may act as its agent) may not review its steps; another person must"
    )]
    ByActor(String),
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error(transparent)]
    Ledger(#[from] AppendError),
}

impl KernelError {
    pub fn code(&self) -> &'static str {
        match self {
            KernelError::UnknownExecution(_) => "unknown_execution",
            KernelError::UnknownStep(_) => "unknown_step",
            KernelError::IllegalTransition { .. } => "illegal_transition",
            KernelError::NotAssigned(_) => "not_assigned",
            KernelError::NotBound { .. } => "identity_not_bound",
            KernelError::JobNotYours(_) => "job_not_yours",
            KernelError::RunnerOwned(_) => "runner_owned_by_other_token",
            KernelError::TooManyStreams(_) => "too_many_streams",
            KernelError::StepNotYours { .. } => "step_not_yours",
            KernelError::Denied { .. } => "intent_denied",
            KernelError::Invalid(_) => "invalid_intent",
            KernelError::NotAReviewer(_) => "not_a_reviewer",
            KernelError::NoReview(_) => "review_not_required",
            KernelError::ArgumentsMismatch { .. } => "approval_arguments_mismatch",
            KernelError::ApprovalReused(_) => "approval_reused",
            KernelError::ApprovalExpired(_) => "approval_expired",
            KernelError::ApprovalClosed { .. } => "approval_closed",
            KernelError::ByInitiator(_) => "approval_by_initiator",
            KernelError::ByActor(_) => "approval_by_actor",
            KernelError::Store(_) => "store",
            KernelError::Ledger(e) => e.code(),
        }
    }
}

type Result<T> = std::result::Result<T, KernelError>;

/// The arguments' hash reviewers approve: blake3 of their RFC 8785 form.
pub fn args_hash(arguments: &Value) -> String {
    blake3::hash(&canonical::to_vec(arguments)).to_hex().to_string()
}

// ---------------------------------------------------------------- requests

#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CreateExecution {
    /// The agent that runs it.
    pub agent_id: String,
    #[serde(default)]
    #[schema(value_type = Object)]
    pub input: Value,
    /// Labels the kernel policy sees (e.g. `env`, `team`).
    #[serde(default)]
    #[schema(value_type = Object)]
    pub labels: Map<String, Value>,
    /// At most the configured execution time-out.
    #[serde(default)]
    pub timeout_seconds: Option<u64>,
}

#[derive(Debug, Clone, Copy, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum IntentType {
    InvokeTool,
    Complete,
    Fail,
    Wait,
}

#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct RetrySpec {
    /// Attempts in all, at most the configured maximum.
    pub max_attempts: Option<u32>,
    /// Back-off before the second attempt, doubled for each next one.
    pub backoff_ms: Option<u64>,
}

#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct Intent {
    pub execution_id: String,
    #[serde(rename = "type")]
    pub kind: IntentType,
    /// `invoke_tool`: the tool's name.
    #[serde(default)]
    pub tool: Option<String>,
    /// `invoke_tool`: its arguments (an object).
    #[serde(default)]
    #[schema(value_type = Option<Object>)]
    pub arguments: Option<Value>,
    /// `invoke_tool`: run by a runner (true) or by the agent itself
    /// (false). Default: remote when a runner declared the tool.
    #[serde(default)]
    pub remote: Option<bool>,
    /// `invoke_tool`, local tools: may it run twice? Runners declare this
    /// for remote tools. Default true.
    #[serde(default)]
    pub idempotent: Option<bool>,
    /// `invoke_tool`: the step's time-out once it may start; `wait`: when
    /// to resume without a signal.
    #[serde(default)]
    pub timeout_seconds: Option<u64>,
    #[serde(default)]
    pub retry: Option<RetrySpec>,
    /// `complete`: the result; `fail`: the error.
    #[serde(default)]
    #[schema(value_type = Option<Object>)]
    pub output: Option<Value>,
    #[serde(default)]
    #[schema(value_type = Option<Object>)]
    pub error: Option<Value>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum ReportStatus {
    Started,
    Succeeded,
    Failed,
}

#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct StepReport {
    pub step_id: String,
    pub status: ReportStatus,
    #[serde(default)]
    #[schema(value_type = Option<Object>)]
    pub output: Option<Value>,
    #[serde(default)]
    #[schema(value_type = Option<Object>)]
    pub error: Option<Value>,
    /// A failure that may succeed when tried again.
    #[serde(default)]
    pub retryable: bool,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum Verdict {
    Approve,
    Reject,
}

#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ReviewRequest {
    pub step_id: String,
    pub decision: Verdict,
    #[serde(default)]
    pub reason: String,
    /// The `args_hash` of the step as the reviewer saw it.
    pub args_hash: String,
}

// ---------------------------------------------------------------- views

#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct ReviewView {
    pub state: ReviewState,
    pub reviewers_required: i64,
    pub approvals: usize,
    pub expires_at: Option<String>,
    pub on_expiry: OnExpiry,
}

#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct StepView {
    pub id: String,
    pub execution_id: String,
    pub tool: String,
    #[schema(value_type = Object)]
    pub arguments: Value,
    pub args_hash: String,
    pub attempt: i64,
    pub max_attempts: i64,
    pub state: StepState,
    pub remote: bool,
    pub idempotent: bool,
    pub idempotency_key: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub runner_id: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub decision_id: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub deadline_at: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub not_before: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub review: Option<ReviewView>,
    pub reasons: Vec<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(value_type = Option<Object>)]
    pub result: Option<Value>,
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(value_type = Option<Object>)]
    pub error: Option<Value>,
}

impl StepView {
    fn of(s: &StepRow, approvals: usize) -> Self {
        StepView {
            id: s.id.clone(),
            execution_id: s.execution_id.clone(),
            tool: s.tool.clone(),
            arguments: s.arguments.clone(),
            args_hash: s.args_hash.clone(),
            attempt: s.attempt,
            max_attempts: s.max_attempts,
            state: s.state,
            remote: s.remote,
            idempotent: s.idempotent,
            idempotency_key: s.idempotency_key.clone(),
            runner_id: s.runner_id.clone(),
            decision_id: s.decision_id.clone(),
            deadline_at: s.deadline_at.map(rfc3339_ms),
            not_before: s.not_before.map(rfc3339_ms),
            review: s.review.map(|state| ReviewView {
                state,
                reviewers_required: s.review_needed,
                approvals,
                expires_at: s.review_expires_at.map(rfc3339_ms),
                on_expiry: s.on_expiry,
            }),
            reasons: s.reasons.clone(),
            result: s.result.clone(),
            error: s.error.clone(),
        }
    }
}

#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct ExecutionView {
    pub id: String,
    pub agent_id: String,
    pub state: ExecState,
    #[schema(value_type = Object)]
    pub input: Value,
    #[schema(value_type = Object)]
    pub labels: Map<String, Value>,
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(value_type = Option<Object>)]
    pub output: Option<Value>,
    pub initiator: String,
    /// The subject of the token that started it.
    pub initiator_subject: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub waiting_on: Option<WaitingOn>,
    pub deadline_at: String,
    pub created_at: String,
    pub updated_at: String,
    /// Every attempt of every step, in order.
    pub steps: Vec<StepView>,
    /// The last history entry's sequence number.
    pub history_seq: i64,
}

#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct HistoryView {
    pub seq: i64,
    pub kind: String,
    pub actor: String,
    pub at: String,
    #[schema(value_type = Object)]
    pub payload: Value,
    /// The entry's index in the tenant's ledger log (absent only in the
    /// moment between the store's commit and the ledger's).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub ledger_index: Option<u64>,
}

#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum Outcome {
    Allow,
    RequireApproval,
}

#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct IntentAnswer {
    pub execution_id: String,
    pub state: ExecState,
    /// `invoke_tool` only.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub outcome: Option<Outcome>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub step: Option<StepView>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub decision_id: Option<String>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub reasons: Vec<String>,
    /// The ledger receipts of what this intent changed, in order.
    pub receipts: Vec<Receipt>,
}

#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct PendingReview {
    pub execution_id: String,
    pub agent_id: String,
    pub initiator: String,
    pub step: StepView,
    /// Who already approved (their tokens, as recorded).
    pub approved_by: Vec<String>,
    /// The subjects who already approved: each counts once.
    pub approved_subjects: Vec<String>,
}

// ---------------------------------------------------------------- edits

/// One atomic change of one execution.
struct Edit {
    exec: ExecutionRow,
    expected: Option<i64>,
    steps: Vec<(StepRow, Option<StepState>)>,
    history: Vec<HistoryRow>,
    pushes: Vec<PushRow>,
    approval: Option<ApprovalRow>,
    now: i64,
    /// The caller acting (its actor and subject): the entries it records
    /// name its subject.
    by: Option<(String, String)>,
}

impl Edit {
    fn of(exec: ExecutionRow, now: i64) -> Self {
        let expected = Some(exec.version);
        Edit {
            exec,
            expected,
            steps: Vec::new(),
            history: Vec::new(),
            pushes: Vec::new(),
            approval: None,
            now,
            by: None,
        }
    }

    /// The same edit, made by `who`.
    fn by(mut self, who: &Principal) -> Self {
        self.by = Some((who.actor(), who.subject.clone()));
        self
    }

    fn record(&mut self, kind: &'static str, actor: &str, mut payload: Value) {
        self.exec.seq += 1;
        if kind != "decision" {
            payload["agent_id"] = self.exec.agent_id.clone().into();
            if let Some((by, subject)) = &self.by
                && by == actor
            {
                payload["subject"] = subject.clone().into();
            }
        }
        self.history.push(HistoryRow {
            execution_id: self.exec.id.clone(),
            seq: self.exec.seq,
            tenant_id: self.exec.tenant_id.clone(),
            kind,
            actor: actor.to_string(),
            payload,
            at: self.now,
            ledger_index: None,
        });
    }

    fn move_exec(&mut self, to: ExecState, kind: &'static str, actor: &str, mut payload: Value) -> Result<()> {
        let from = self.exec.state;
        if !from.may_become(to) {
            return Err(KernelError::IllegalTransition {
                what: "execution",
                id: self.exec.id.clone(),
                from: from.to_string(),
                to: to.to_string(),
            });
        }
        self.exec.state = to;
        if to != ExecState::Blocked {
            self.exec.waiting_on = None;
            self.exec.wake_at = None;
        }
        payload["from"] = from.as_str().into();
        payload["to"] = to.as_str().into();
        self.record(kind, actor, payload);
        Ok(())
    }

    /// The step as this edit has it (its latest form if already changed).
    fn current(&self, step: &StepRow) -> StepRow {
        self.steps
            .iter()
            .find(|(s, _)| s.id == step.id)
            .map(|(s, _)| s.clone())
            .unwrap_or_else(|| step.clone())
    }

    fn put_step(&mut self, step: StepRow, stored: Option<StepState>) {
        match self.steps.iter_mut().find(|(s, _)| s.id == step.id) {
            Some(slot) => slot.0 = step,
            None => self.steps.push((step, stored)),
        }
    }

    /// Moves a step, recording it; `stored` is the state the store holds.
    fn move_step(
        &mut self,
        step: &StepRow,
        to: StepState,
        kind: &'static str,
        actor: &str,
        mut payload: Value,
    ) -> Result<StepRow> {
        let stored = self
            .steps
            .iter()
            .find(|(s, _)| s.id == step.id)
            .map(|(_, st)| *st)
            .unwrap_or(Some(step.state));
        let mut s = self.current(step);
        if !s.state.may_become(to) {
            return Err(KernelError::IllegalTransition {
                what: "step",
                id: s.id.clone(),
                from: s.state.to_string(),
                to: to.to_string(),
            });
        }
        payload["step_id"] = s.id.clone().into();
        payload["tool"] = s.tool.clone().into();
        payload["attempt"] = s.attempt.into();
        payload["from"] = s.state.as_str().into();
        payload["to"] = to.as_str().into();
        s.state = to;
        s.updated_at = self.now;
        self.record(kind, actor, payload);
        self.put_step(s.clone(), stored);
        Ok(s)
    }

    fn push(&mut self, recipient: String, event: &'static str, data: Value) {
        self.pushes.push(PushRow {
            recipient,
            seq: 0,
            event,
            data,
            created_at: self.now,
        });
    }

    fn agent(&self) -> String {
        agent_recipient(&self.exec.tenant_id, &self.exec.agent_id)
    }
}

/// What a committed edit produced.
struct Committed {
    exec: ExecutionRow,
    receipts: Vec<Receipt>,
}

// ---------------------------------------------------------------- the kernel

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
    /// Whether other live instances share the store (their commits reach
    /// this instance's streams only by polling).
    peers: std::sync::atomic::AtomicBool,
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
            peers: std::sync::atomic::AtomicBool::new(false),
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
        match self.store.kernel_execution(id).await? {
            Some(e) if e.tenant_id == tenant_id => Ok(e),
            _ => Err(KernelError::UnknownExecution(id.to_string())),
        }
    }

    async fn step_of(&self, exec: &ExecutionRow, step_id: &str) -> Result<StepRow> {
        match self.store.kernel_step(step_id).await? {
            Some(s) if s.execution_id == exec.id => Ok(s),
            _ => Err(KernelError::UnknownStep(step_id.to_string())),
        }
    }

    /// Writes the edit and appends its history to the ledger, in one
    /// transaction (the ledger writer's, group-committed with others), then
    /// wakes the streams it pushed to.
    async fn commit(&self, mut edit: Edit) -> Result<Committed> {
        edit.exec.version += 1;
        edit.exec.updated_at = edit.now;
        let change = KernelChange {
            executions: vec![(edit.exec.clone(), edit.expected)],
            steps: std::mem::take(&mut edit.steps),
            history: std::mem::take(&mut edit.history),
            pushes: std::mem::take(&mut edit.pushes),
            approval: edit.approval.take(),
            ..KernelChange::default()
        };
        let records = change.history.iter().map(record_of).collect();
        let kinds: Vec<&'static str> = change.history.iter().map(|h| h.kind).collect();
        let recipients: Vec<String> = change.pushes.iter().map(|p| p.recipient.clone()).collect();
        let pending = change.steps.iter().any(|(s, _)| s.state == StepState::Pending);
        let receipts = match self.ledger.append_with(records, change).await {
            Ok(r) => r,
            Err(AppendError::Changed(what)) => return Err(KernelError::Store(StoreError::Changed(what))),
            Err(e) => return Err(e.into()),
        };
        for kind in kinds {
            self.metrics
                .kernel_transitions
                .get_or_create(&KindLabels { kind })
                .inc();
        }
        self.after_commit(&recipients, pending);
        if edit.exec.workflow_run.is_some() && edit.exec.state.is_terminal() {
            self.run_ended.notify_one();
        }
        Ok(Committed {
            exec: edit.exec,
            receipts,
        })
    }

    // ------------------------------------------------------------ executions

    pub async fn create(&self, who: &Principal, req: CreateExecution) -> Result<(ExecutionView, Vec<Receipt>)> {
        if let Some(fault) = agent_fault("agent_id", &req.agent_id) {
            return Err(KernelError::Invalid(fault));
        }
        let now = self.clock.now_ms();
        let limit = self.cfg.execution_timeout_secs;
        let timeout = req.timeout_seconds.unwrap_or(limit);
        if timeout == 0 || timeout > limit {
            return Err(KernelError::Invalid(format!(
                "timeout_seconds must be between 1 and {limit} (the configured kernel.execution_timeout_secs)"
            )));
        }
        let mut exec = ExecutionRow::pending(
            new_id("exe", now),
            who.tenant_id.clone(),
            req.agent_id,
            (who.actor(), who.token_id.clone(), who.subject.clone()),
            now + (timeout as i64) * 1000,
            now,
        );
        exec.input = req.input;
        exec.labels = req.labels;
        let mut edit = Edit::of(exec, now).by(who);
        edit.expected = None;
        let payload = json!({"agent_id": edit.exec.agent_id, "input": edit.exec.input,
            "labels": edit.exec.labels, "deadline_at": rfc3339_ms(edit.exec.deadline_at)});
        edit.record("kernel.execution.created", &who.actor(), payload);
        if let Some(conn) = self.hub.agent(&who.tenant_id, &edit.exec.agent_id) {
            assign(&mut edit, &conn)?;
        }
        let done = self.commit(edit).await?;
        Ok((self.view(&done.exec).await?, done.receipts))
    }

    pub async fn get(&self, who: &Principal, id: &str) -> Result<ExecutionView> {
        let exec = self.load(&who.tenant_id, id).await?;
        self.view(&exec).await
    }

    async fn view(&self, e: &ExecutionRow) -> Result<ExecutionView> {
        let mut steps = Vec::new();
        for s in self.store.kernel_steps_of(&e.id).await? {
            let approvals = match s.review {
                Some(_) => self
                    .store
                    .kernel_approvals_of(&s.id)
                    .await?
                    .iter()
                    .filter(|a| a.approve)
                    .count(),
                None => 0,
            };
            steps.push(StepView::of(&s, approvals));
        }
        Ok(ExecutionView {
            id: e.id.clone(),
            agent_id: e.agent_id.clone(),
            state: e.state,
            input: e.input.clone(),
            labels: e.labels.clone(),
            output: e.output.clone(),
            initiator: e.initiator.clone(),
            initiator_subject: e.initiator_subject.clone(),
            waiting_on: e.waiting_on,
            deadline_at: rfc3339_ms(e.deadline_at),
            created_at: rfc3339_ms(e.created_at),
            updated_at: rfc3339_ms(e.updated_at),
            steps,
            history_seq: e.seq,
        })
    }

    pub async fn history(&self, who: &Principal, id: &str) -> Result<Vec<HistoryView>> {
        let exec = self.load(&who.tenant_id, id).await?;
        Ok(self
            .store
            .kernel_history(&exec.id)
            .await?
            .into_iter()
            .map(|h| HistoryView {
                seq: h.seq,
                kind: h.kind.to_string(),
                actor: h.actor,
                at: rfc3339_ms(h.at),
                payload: h.payload,
                ledger_index: h.ledger_index,
            })
            .collect())
    }

    pub async fn cancel(&self, who: &Principal, id: &str, reason: Option<String>) -> Result<ExecutionView> {
        let _g = self.lock_of(id).lock().await;
        let exec = self.load(&who.tenant_id, id).await?;
        let mut edit = Edit::of(exec, self.clock.now_ms()).by(who);
        let reason = reason.unwrap_or_else(|| "cancelled on request".into());
        self.end(&mut edit, ExecState::Cancelled, &who.actor(), json!({"reason": reason}))
            .await?;
        let done = self.commit(edit).await?;
        self.view(&done.exec).await
    }

    /// Ends an execution (failed or cancelled), cancelling its live steps
    /// and telling its agent and runners.
    async fn end(&self, edit: &mut Edit, to: ExecState, actor: &str, payload: Value) -> Result<()> {
        let kind = match to {
            ExecState::Cancelled => "kernel.execution.cancelled",
            ExecState::Failed => "kernel.execution.failed",
            _ => "kernel.execution.completed",
        };
        edit.move_exec(to, kind, actor, payload.clone())?;
        if to != ExecState::Completed {
            edit.exec.output = Some(json!({"error": payload}));
        }
        edit.exec.conn = None;
        for step in self.store.kernel_steps_of(&edit.exec.id).await? {
            let step = edit.current(&step);
            if step.state.is_terminal() {
                continue;
            }
            let dispatched_to = step.runner_id.clone().filter(|_| step.state != StepState::Pending);
            let mut s = edit.move_step(
                &step,
                StepState::Cancelled,
                "kernel.step.cancelled",
                actor,
                json!({"reason": format!("execution {}", to.as_str())}),
            )?;
            if s.review == Some(ReviewState::Waiting) {
                s.review = Some(ReviewState::Expired);
                edit.put_step(s.clone(), None);
            }
            if let Some(runner) = dispatched_to {
                let r = runner_recipient(&edit.exec.tenant_id, &runner);
                edit.push(
                    r,
                    "job.cancelled",
                    json!({"step_id": s.id, "execution_id": edit.exec.id, "idempotency_key": s.idempotency_key}),
                );
            }
        }
        let data = json!({"execution_id": edit.exec.id, "state": to.as_str(), "reason": payload});
        let agent = edit.agent();
        let event = match to {
            ExecState::Failed => "execution.failed",
            _ => "execution.cancelled",
        };
        edit.push(agent, event, data);
        Ok(())
    }

    pub async fn signal(&self, who: &Principal, id: &str, payload: Value) -> Result<ExecutionView> {
        let _g = self.lock_of(id).lock().await;
        let exec = self.load(&who.tenant_id, id).await?;
        let mut edit = Edit::of(exec, self.clock.now_ms()).by(who);
        let data = json!({"execution_id": id, "signal": payload});
        match (edit.exec.state, edit.exec.waiting_on) {
            (ExecState::Blocked, Some(WaitingOn::Signal)) => {
                edit.move_exec(
                    ExecState::Running,
                    "kernel.execution.signalled",
                    &who.actor(),
                    json!({"signal": payload}),
                )?;
                if edit.exec.conn.is_none() {
                    release(&mut edit, SYSTEM, "no agent stream holds it")?;
                }
            }
            (ExecState::Running, _) => {
                edit.record("kernel.execution.signalled", &who.actor(), json!({"signal": payload}))
            }
            (from, _) => {
                return Err(KernelError::IllegalTransition {
                    what: "execution",
                    id: id.to_string(),
                    from: match edit.exec.waiting_on {
                        Some(w) if from == ExecState::Blocked => format!("blocked on a {w}"),
                        _ => from.to_string(),
                    },
                    to: "signalled (only a running execution, or one blocked by a wait intent, takes signals)".into(),
                });
            }
        }
        let agent = edit.agent();
        edit.push(agent, "execution.signalled", data);
        let done = self.commit(edit).await?;
        self.view(&done.exec).await
    }

    // ------------------------------------------------------------ intents

    pub async fn intent(&self, who: &Principal, intent: Intent) -> Result<IntentAnswer> {
        let id = intent.execution_id.clone();
        let _g = self.lock_of(&id).lock().await;
        let exec = self.load(&who.tenant_id, &id).await?;
        bound_agent(who, &exec.agent_id)?;
        if exec.agent_token.as_deref() != Some(who.token_id.as_str()) {
            return Err(KernelError::NotAssigned(id));
        }
        let now = self.clock.now_ms();
        let mut edit = Edit::of(exec, now).by(who);
        let actor = who.actor();
        match intent.kind {
            IntentType::Complete => {
                edit.move_exec(
                    ExecState::Completed,
                    "kernel.execution.completed",
                    &actor,
                    json!({"output": intent.output}),
                )?;
                edit.exec.output = intent.output;
                edit.exec.conn = None;
            }
            IntentType::Fail => {
                let error = intent.error.or(intent.output).unwrap_or(Value::Null);
                edit.move_exec(
                    ExecState::Failed,
                    "kernel.execution.failed",
                    &actor,
                    json!({"error": error}),
                )?;
                edit.exec.output = Some(json!({"error": error}));
                edit.exec.conn = None;
            }
            IntentType::Wait => {
                let wake = intent.timeout_seconds.map(|s| now + (s.min(365 * 86400) as i64) * 1000);
                edit.move_exec(
                    ExecState::Blocked,
                    "kernel.execution.blocked",
                    &actor,
                    json!({"waiting_on": "signal", "wake_at": wake.map(rfc3339_ms)}),
                )?;
                edit.exec.waiting_on = Some(WaitingOn::Signal);
                edit.exec.wake_at = wake;
                if wake.is_some() {
                    self.due.notify_one();
                }
            }
            IntentType::InvokeTool => return self.invoke(who, edit, intent).await,
        }
        let done = self.commit(edit).await?;
        Ok(IntentAnswer {
            execution_id: done.exec.id.clone(),
            state: done.exec.state,
            outcome: None,
            step: None,
            decision_id: None,
            reasons: Vec::new(),
            receipts: done.receipts,
        })
    }

    async fn invoke(&self, who: &Principal, mut edit: Edit, intent: Intent) -> Result<IntentAnswer> {
        let tool = intent
            .tool
            .ok_or_else(|| KernelError::Invalid("invoke_tool needs `tool`, the tool's name".into()))?;
        check_name("tool", &tool)?;
        let arguments = intent.arguments.unwrap_or_else(|| json!({}));
        if !arguments.is_object() {
            return Err(KernelError::Invalid("`arguments` must be a JSON object".into()));
        }
        if edit.exec.state != ExecState::Running {
            return Err(KernelError::IllegalTransition {
                what: "execution",
                id: edit.exec.id.clone(),
                from: edit.exec.state.to_string(),
                to: "blocked (only a running execution may invoke a tool)".into(),
            });
        }
        let declared = self.store.kernel_remote_tool(&edit.exec.tenant_id, &tool).await?;
        let remote = intent.remote.unwrap_or(declared.is_some());
        let idempotent = match (remote, declared) {
            (true, Some(i)) => i,
            (true, None) => {
                return Err(KernelError::Invalid(format!(
                    "no runner of this tenant declared tool {tool:?}; connect a runner serving it, or invoke it locally"
                )));
            }
            (false, _) => intent.idempotent.unwrap_or(true),
        };
        let step_limit = self.cfg.step_timeout_secs;
        let timeout_s = intent.timeout_seconds.unwrap_or(step_limit).clamp(1, step_limit);
        let retry = intent.retry.unwrap_or(RetrySpec {
            max_attempts: None,
            backoff_ms: None,
        });
        let max_attempts = retry
            .max_attempts
            .unwrap_or(self.cfg.max_attempts)
            .clamp(1, self.cfg.max_attempts.max(1));
        let backoff_ms = retry
            .backoff_ms
            .unwrap_or(self.cfg.retry_backoff_ms)
            .min(self.cfg.max_backoff_ms);
        let hash = args_hash(&arguments);
        let actor = who.actor();

        // The decision, before anything exists.
        let input = json!({
            "execution": {"id": edit.exec.id, "agent_id": edit.exec.agent_id, "labels": edit.exec.labels,
                "initiator": edit.exec.initiator},
            "agent": {"id": edit.exec.agent_id},
            "agent_id": edit.exec.agent_id,
            "tool": {"name": tool, "idempotent": idempotent, "remote": remote},
            "arguments": arguments,
            "labels": edit.exec.labels,
            "caller": {"token_id": who.token_id, "token_name": who.token_name, "tenant_id": who.tenant_id,
                "subject": who.subject, "roles": who.roles.iter().map(Role::as_str).collect::<Vec<_>>()},
            "workflow": context_field(&edit.exec, "workflow"),
            "skill": context_field(&edit.exec, "skill"),
            "organisation": context_field(&edit.exec, "organisation"),
        });
        let verdict = match self.permitted(who, &edit.exec, &tool, &input).await {
            Some(denied) if matches!(denied.outcome, PolicyOutcome::Deny) => denied,
            permitted => {
                if let Some(d) = permitted.and_then(|p| p.evidence) {
                    edit.record("decision", &actor, d);
                }
                self.decide(who, &edit.exec, &tool, input).await
            }
        };
        if let Some(d) = &verdict.evidence {
            edit.record("decision", &actor, d.clone());
        }
        let reasons = verdict.reasons.clone();
        match verdict.outcome {
            PolicyOutcome::Deny => {
                edit.record(
                    "kernel.intent.denied",
                    &actor,
                    json!({"tool": tool, "args_hash": hash, "decision_id": verdict.decision_id, "reasons": reasons}),
                );
                self.commit(edit).await?;
                return Err(KernelError::Denied {
                    tool,
                    decision_id: verdict.decision_id,
                    reasons,
                });
            }
            PolicyOutcome::Allow | PolicyOutcome::Review { .. } => {}
        }
        let now = edit.now;
        let step_id = new_id("stp", now);
        let mut step = StepRow {
            id: step_id.clone(),
            execution_id: edit.exec.id.clone(),
            tenant_id: edit.exec.tenant_id.clone(),
            tool: tool.clone(),
            arguments,
            args_hash: hash.clone(),
            attempt: 1,
            max_attempts: max_attempts as i64,
            backoff_ms: backoff_ms as i64,
            state: StepState::Pending,
            remote,
            idempotent,
            idempotency_key: step_id.clone(),
            runner_id: None,
            runner_token: None,
            decision_id: verdict.decision_id.clone(),
            timeout_ms: (timeout_s as i64) * 1000,
            deadline_at: None,
            not_before: None,
            review: None,
            review_needed: 0,
            review_expires_at: None,
            on_expiry: OnExpiry::Fail,
            reasons: reasons.clone(),
            result: None,
            error: None,
            created_at: now,
            updated_at: now,
        };
        let outcome = match verdict.outcome {
            PolicyOutcome::Review {
                reviewers,
                timeout_ms,
                on_expiry,
            } => {
                step.review = Some(ReviewState::Waiting);
                step.review_needed = reviewers;
                step.review_expires_at = Some(now + timeout_ms);
                step.on_expiry = on_expiry;
                Outcome::RequireApproval
            }
            _ => {
                step.deadline_at = Some(now + step.timeout_ms);
                Outcome::Allow
            }
        };
        edit.record(
            "kernel.step.created",
            &actor,
            json!({"step_id": step.id, "tool": tool, "args_hash": hash, "attempt": 1, "remote": remote,
                "idempotent": idempotent, "decision_id": verdict.decision_id, "reasons": reasons}),
        );
        edit.put_step(step.clone(), None);
        let waiting = if matches!(outcome, Outcome::RequireApproval) {
            WaitingOn::Approval
        } else {
            WaitingOn::Step
        };
        edit.move_exec(
            ExecState::Blocked,
            "kernel.execution.blocked",
            &actor,
            json!({"waiting_on": waiting.as_str(), "step_id": step.id}),
        )?;
        edit.exec.waiting_on = Some(waiting);
        if let Outcome::RequireApproval = outcome {
            edit.record(
                "kernel.approval.requested",
                &actor,
                json!({"step_id": step.id, "args_hash": hash, "reviewers_required": step.review_needed,
                    "expires_at": step.review_expires_at.map(rfc3339_ms), "on_expiry": step.on_expiry.as_str(),
                    "reasons": reasons}),
            );
        } else {
            step = self.dispatch(&mut edit, &step, SYSTEM)?;
        }
        let done = self.commit(edit).await?;
        Ok(IntentAnswer {
            execution_id: done.exec.id.clone(),
            state: done.exec.state,
            outcome: Some(outcome),
            step: Some(StepView::of(&step, 0)),
            decision_id: verdict.decision_id,
            reasons,
            receipts: done.receipts,
        })
    }

    /// The permission policy's answer (platform, organisation, workflow
    /// and skill levels), or None when no active bundle of the tenant
    /// serves `kernel.permission_path`. Fails closed: an error, or an
    /// answer without `allow: true`, is a denial.
    async fn permitted(
        &self,
        who: &Principal,
        exec: &ExecutionRow,
        tool: &str,
        input: &Value,
    ) -> Option<PolicyVerdict> {
        let path = &self.cfg.permission_path;
        if path.is_empty() {
            return None;
        }
        let mut context = Map::new();
        context.insert("workflow_id".into(), exec.id.clone().into());
        context.insert("agent_id".into(), exec.agent_id.clone().into());
        context.insert("activity_id".into(), tool.into());
        let req = DecisionRequest {
            path: path.clone(),
            input: serde_json::value::to_raw_value(input).ok(),
            bundle: None,
            context: Some(context),
        };
        let deny = |reasons: Vec<String>, d: Option<&crate::policy::Decision>| PolicyVerdict {
            outcome: PolicyOutcome::Deny,
            reasons,
            decision_id: d.map(|d| d.decision_id.clone()),
            evidence: d.map(|d| d.evidence()),
        };
        match self.policy.decide(who, req).await {
            Err(crate::policy::Error::NoBundleForPath(_)) => None,
            Err(e) => Some(deny(
                vec![format!(
                    "the permission policy {path} could not decide ({}): {e}",
                    e.code()
                )],
                None,
            )),
            Ok(d) => {
                let reasons = d.reasons.clone().unwrap_or_default();
                if d.allow == Some(true) {
                    Some(PolicyVerdict {
                        outcome: PolicyOutcome::Allow,
                        reasons,
                        decision_id: Some(d.decision_id.clone()),
                        evidence: Some(d.evidence()),
                    })
                } else {
                    let reasons = if reasons.is_empty() {
                        vec![format!("the permission policy {path} did not allow {tool}")]
                    } else {
                        reasons
                    };
                    Some(deny(reasons, Some(&d)))
                }
            }
        }
    }

    /// The kernel policy's answer. Fails closed: no policy, an error, or an
    /// answer without a known outcome is a denial with the reason.
    async fn decide(&self, who: &Principal, exec: &ExecutionRow, tool: &str, input: Value) -> PolicyVerdict {
        let deny = |reason: String| PolicyVerdict {
            outcome: PolicyOutcome::Deny,
            reasons: vec![reason],
            decision_id: None,
            evidence: None,
        };
        let raw = match serde_json::value::to_raw_value(&input) {
            Ok(r) => r,
            Err(e) => return deny(format!("the policy input could not be built: {e}")),
        };
        let mut context = Map::new();
        context.insert("workflow_id".into(), exec.id.clone().into());
        context.insert("agent_id".into(), exec.agent_id.clone().into());
        context.insert("activity_id".into(), tool.into());
        let req = DecisionRequest {
            path: self.cfg.policy_path.clone(),
            input: Some(raw),
            bundle: None,
            context: Some(context),
        };
        let d = match self.policy.decide(who, req).await {
            Ok(d) => d,
            Err(e) => {
                return deny(format!(
                    "the kernel policy {} could not decide ({}): {e}",
                    self.cfg.policy_path,
                    e.code()
                ));
            }
        };
        let result = serde_json::to_value(&d.result).unwrap_or(Value::Null);
        let mut reasons = d.reasons.clone().unwrap_or_default();
        let outcome = match result.get("outcome").and_then(Value::as_str) {
            Some("allow") => PolicyOutcome::Allow,
            Some("require_approval") => {
                let a = result.get("approval").cloned().unwrap_or_default();
                let reviewers = a.get("reviewers").and_then(Value::as_i64).unwrap_or(1).clamp(1, 16);
                let secs = a
                    .get("timeout_seconds")
                    .and_then(Value::as_i64)
                    .unwrap_or(self.cfg.approval_timeout_secs as i64)
                    .clamp(1, 30 * 86400);
                let on_expiry = match a.get("on_expiry").and_then(Value::as_str) {
                    Some("continue") => OnExpiry::Continue,
                    _ => OnExpiry::Fail,
                };
                PolicyOutcome::Review {
                    reviewers,
                    timeout_ms: secs * 1000,
                    on_expiry,
                }
            }
            Some("deny") => PolicyOutcome::Deny,
            other => {
                reasons.push(format!(
                    "the kernel policy answered no known outcome ({}); denied",
                    other.unwrap_or("none")
                ));
                PolicyOutcome::Deny
            }
        };
        if reasons.is_empty() {
            reasons.push(format!("kernel policy: {}", outcome.name()));
        }
        PolicyVerdict {
            outcome,
            reasons,
            decision_id: Some(d.decision_id.clone()),
            evidence: Some(d.evidence()),
        }
    }

    /// Dispatches a pending step that may start: to the agent (local) or
    /// to a connected runner serving its tool (remote; without one it
    /// stays pending until one connects or its deadline passes).
    fn dispatch(&self, edit: &mut Edit, step: &StepRow, actor: &str) -> Result<StepRow> {
        let step = edit.current(step);
        let now = edit.now;
        let mut s = step.clone();
        if s.deadline_at.is_none() {
            s.deadline_at = Some(now + s.timeout_ms);
            edit.put_step(s.clone(), Some(step.state));
        }
        let job = |s: &StepRow, exec: &ExecutionRow| {
            json!({"step_id": s.id, "execution_id": exec.id, "agent_id": exec.agent_id, "tool": s.tool,
                "arguments": s.arguments, "args_hash": s.args_hash, "attempt": s.attempt,
                "idempotent": s.idempotent, "idempotency_key": s.idempotency_key,
                "deadline_at": s.deadline_at.map(rfc3339_ms)})
        };
        if !s.remote {
            if edit.exec.conn.is_none() {
                return Ok(s);
            }
            let moved = edit.move_step(
                &s,
                StepState::Dispatched,
                "kernel.step.dispatched",
                actor,
                json!({"to_agent": edit.exec.agent_id}),
            )?;
            let data = job(&moved, &edit.exec);
            let agent = edit.agent();
            edit.push(agent, "step.assigned", data);
            return Ok(moved);
        }
        let Some(runner) = self.hub.runner_for(&edit.exec.tenant_id, &s.tool) else {
            return Ok(s);
        };
        s.runner_id = Some(runner.name.clone());
        s.runner_token = Some(runner.token_id.clone());
        edit.put_step(s.clone(), Some(step.state));
        let moved = edit.move_step(
            &s,
            StepState::Dispatched,
            "kernel.step.dispatched",
            actor,
            json!({"runner_id": runner.name}),
        )?;
        let data = job(&moved, &edit.exec);
        edit.push(runner.recipient.clone(), "job.assigned", data);
        Ok(moved)
    }

    // ------------------------------------------------------------ results

    /// A result from the agent (local steps) or from a runner (`runner`,
    /// remote steps).
    pub async fn report(&self, who: &Principal, runner: Option<&str>, report: StepReport) -> Result<StepView> {
        let step = match self.store.kernel_step(&report.step_id).await? {
            Some(s) if s.tenant_id == who.tenant_id => s,
            _ => return Err(KernelError::UnknownStep(report.step_id)),
        };
        let _g = self.lock_of(&step.execution_id).lock().await;
        let exec = self.load(&who.tenant_id, &step.execution_id).await?;
        let step = self.step_of(&exec, &report.step_id).await?;
        match runner {
            Some(r) => {
                bound_runner(who, r)?;
                if !step.remote || step.runner_id.as_deref() != Some(r) {
                    return Err(KernelError::StepNotYours {
                        step: step.id,
                        owner: step.runner_id,
                        caller: r.to_string(),
                    });
                }
                // Steps dispatched before tokens were recorded name none.
                if step.runner_token.as_ref().is_some_and(|t| *t != who.token_id) {
                    return Err(KernelError::JobNotYours(step.id));
                }
            }
            None => {
                bound_agent(who, &exec.agent_id)?;
                if step.remote {
                    return Err(KernelError::StepNotYours {
                        step: step.id,
                        owner: step.runner_id,
                        caller: "the agent (this step runs on a runner)".into(),
                    });
                }
                if exec.agent_token.as_deref() != Some(who.token_id.as_str()) {
                    return Err(KernelError::NotAssigned(exec.id));
                }
            }
        }
        let target = match report.status {
            ReportStatus::Started => StepState::Running,
            ReportStatus::Succeeded => StepState::Succeeded,
            ReportStatus::Failed => StepState::Failed,
        };
        // A report sent again (e.g. after a lost answer) is answered, not refused.
        if step.state == target {
            return Ok(StepView::of(&step, 0));
        }
        let actor = who.actor();
        let mut edit = Edit::of(exec, self.clock.now_ms()).by(who);
        if step.state == StepState::Dispatched && target != StepState::Running {
            edit.move_step(&step, StepState::Running, "kernel.step.started", &actor, json!({}))?;
        }
        let out = match report.status {
            ReportStatus::Started => {
                edit.move_step(&step, StepState::Running, "kernel.step.started", &actor, json!({}))?
            }
            ReportStatus::Succeeded => {
                let mut s = edit.move_step(
                    &step,
                    StepState::Succeeded,
                    "kernel.step.succeeded",
                    &actor,
                    json!({"output": report.output}),
                )?;
                s.result = report.output.clone();
                edit.put_step(s.clone(), None);
                resume_after_step(&mut edit, &s, &actor)?;
                s
            }
            ReportStatus::Failed => {
                let mut s = edit.move_step(
                    &step,
                    StepState::Failed,
                    "kernel.step.failed",
                    &actor,
                    json!({"error": report.error, "retryable": report.retryable}),
                )?;
                s.error = report.error.clone();
                edit.put_step(s.clone(), None);
                self.after_failure(&mut edit, &s, report.retryable, &actor)?;
                s
            }
        };
        self.commit(edit).await?;
        Ok(StepView::of(&out, 0))
    }

    /// A step failed or timed out: a new attempt after the back-off when
    /// the failure is retryable and attempts remain; else the execution fails.
    fn after_failure(&self, edit: &mut Edit, s: &StepRow, retryable: bool, actor: &str) -> Result<()> {
        if retryable && s.attempt < s.max_attempts {
            let exp = (s.attempt - 1).clamp(0, 30) as u32;
            let delay = s
                .backoff_ms
                .saturating_mul(1i64 << exp)
                .min(self.cfg.max_backoff_ms as i64);
            let now = edit.now;
            let id = new_id("stp", now);
            let next = StepRow {
                id: id.clone(),
                attempt: s.attempt + 1,
                state: StepState::Pending,
                idempotency_key: id.clone(),
                runner_id: None,
                runner_token: None,
                deadline_at: Some(now + delay + s.timeout_ms),
                not_before: Some(now + delay),
                result: None,
                error: None,
                created_at: now,
                updated_at: now,
                ..s.clone()
            };
            edit.record(
                "kernel.step.retried",
                actor,
                json!({"step_id": s.id, "next_step_id": id, "attempt": next.attempt, "max_attempts": s.max_attempts,
                    "not_before": rfc3339_ms(now + delay), "tool": s.tool}),
            );
            edit.put_step(next, None);
            return Ok(());
        }
        let why = if retryable {
            format!("step {} failed after {} attempts", s.id, s.attempt)
        } else {
            format!("step {} failed ({})", s.id, s.state)
        };
        edit.move_exec(
            ExecState::Failed,
            "kernel.execution.failed",
            actor,
            json!({"reason": why, "step_id": s.id}),
        )?;
        edit.exec.output = Some(json!({"error": why, "step_id": s.id, "step_error": s.error}));
        edit.exec.conn = None;
        let data = json!({"execution_id": edit.exec.id, "step_id": s.id, "state": s.state.as_str(),
            "execution_state": "failed", "error": s.error});
        let agent = edit.agent();
        edit.push(agent, "step.result", data);
        Ok(())
    }

    // ------------------------------------------------------------ review

    pub async fn pending_reviews(&self, who: &Principal) -> Result<Vec<PendingReview>> {
        let now = self.clock.now_ms();
        let mut out = Vec::new();
        for s in self.store.kernel_waiting_reviews(&who.tenant_id, 1000).await? {
            if s.review_expires_at.is_some_and(|t| t <= now) {
                continue;
            }
            let Some(exec) = self.store.kernel_execution(&s.execution_id).await? else {
                continue;
            };
            let (approved_by, approved_subjects): (Vec<String>, Vec<String>) = self
                .store
                .kernel_approvals_of(&s.id)
                .await?
                .into_iter()
                .filter(|a| a.approve)
                .map(|a| (a.reviewer, a.subject))
                .unzip();
            out.push(PendingReview {
                execution_id: exec.id,
                agent_id: exec.agent_id,
                initiator: exec.initiator,
                step: StepView::of(&s, approved_by.len()),
                approved_by,
                approved_subjects,
            });
        }
        Ok(out)
    }

    pub async fn review(&self, who: &Principal, execution_id: &str, req: ReviewRequest) -> Result<StepView> {
        if !who.roles.contains(Role::Reviewer) {
            return Err(KernelError::NotAReviewer(who.roles.to_csv()));
        }
        let _g = self.lock_of(execution_id).lock().await;
        let exec = self.load(&who.tenant_id, execution_id).await?;
        let step = self.step_of(&exec, &req.step_id).await?;
        let now = self.clock.now_ms();
        let Some(review) = step.review else {
            return Err(KernelError::NoReview(step.id));
        };
        if exec.initiator_token == who.token_id || exec.initiator_subject == who.subject {
            return Err(KernelError::ByInitiator(exec.id));
        }
        // Whoever runs it, ran it, or may act as its agent: never its reviewer.
        let actor_of_it = exec.agent_token.as_deref() == Some(who.token_id.as_str())
            || exec.agent_subjects.contains(&who.subject)
            || (who.may(Action::ActAsAgent) && who.is_agent(&exec.agent_id));
        if actor_of_it {
            return Err(KernelError::ByActor(exec.id));
        }
        let verdicts = self.store.kernel_approvals_of(&step.id).await?;
        if verdicts
            .iter()
            .any(|a| a.reviewer_token == who.token_id || a.subject == who.subject)
        {
            return Err(KernelError::ApprovalReused(step.id));
        }
        let expired = review == ReviewState::Expired
            || (review == ReviewState::Waiting && step.review_expires_at.is_some_and(|t| t <= now));
        if expired {
            return Err(KernelError::ApprovalExpired(step.id));
        }
        if review != ReviewState::Waiting {
            return Err(KernelError::ApprovalClosed {
                step: step.id,
                state: review.to_string(),
            });
        }
        if req.args_hash != step.args_hash {
            return Err(KernelError::ArgumentsMismatch {
                given: req.args_hash,
                expected: step.args_hash,
            });
        }
        let actor = who.actor();
        let approve = req.decision == Verdict::Approve;
        let mut edit = Edit::of(exec, now).by(who);
        edit.approval = Some(ApprovalRow {
            step_id: step.id.clone(),
            tenant_id: who.tenant_id.clone(),
            reviewer_token: who.token_id.clone(),
            reviewer: actor.clone(),
            subject: who.subject.clone(),
            approve,
            reason: req.reason.clone(),
            args_hash: req.args_hash.clone(),
            at: now,
        });
        edit.record(
            "kernel.approval.recorded",
            &actor,
            json!({"step_id": step.id, "approve": approve, "reason": req.reason, "args_hash": req.args_hash}),
        );
        let approvals = verdicts.iter().filter(|a| a.approve).count() + approve as usize;
        if is_gate(&edit.exec, &step) && (!approve || approvals as i64 >= step.review_needed) {
            let mut approvers: Vec<(String, String)> = verdicts
                .iter()
                .filter(|a| a.approve)
                .map(|a| (a.reviewer.clone(), a.subject.clone()))
                .collect();
            if approve {
                approvers.push((actor.clone(), who.subject.clone()));
            }
            let s = self
                .close_gate(&mut edit, &step, approvers, &actor, &req.reason)
                .await?;
            self.commit(edit).await?;
            return Ok(StepView::of(&s, approvals));
        }
        let mut s = step.clone();
        if !approve {
            s.review = Some(ReviewState::Rejected);
            edit.put_step(s.clone(), Some(step.state));
            edit.record(
                "kernel.approval.rejected",
                &actor,
                json!({"step_id": s.id, "reason": req.reason}),
            );
            s = edit.move_step(
                &s,
                StepState::Cancelled,
                "kernel.step.cancelled",
                &actor,
                json!({"reason": "rejected by a reviewer"}),
            )?;
            edit.move_exec(
                ExecState::Running,
                "kernel.execution.resumed",
                &actor,
                json!({"step_id": s.id, "reason": "review rejected"}),
            )?;
            let data = json!({"execution_id": edit.exec.id, "step_id": s.id, "state": "cancelled",
                "review": "rejected", "reason": req.reason, "execution_state": "running"});
            let agent = edit.agent();
            edit.push(agent, "step.result", data);
            if edit.exec.conn.is_none() {
                release(&mut edit, SYSTEM, "no agent stream holds it")?;
            }
        } else if approvals as i64 >= step.review_needed {
            s.review = Some(ReviewState::Approved);
            edit.put_step(s.clone(), Some(step.state));
            edit.record(
                "kernel.approval.granted",
                &actor,
                json!({"step_id": s.id, "approvals": approvals, "reviewers_required": step.review_needed}),
            );
            edit.exec.waiting_on = Some(WaitingOn::Step);
            s = self.dispatch(&mut edit, &s, &actor)?;
        }
        self.commit(edit).await?;
        Ok(StepView::of(&s, approvals))
    }

    /// Closes a workflow's review gate: rejected (the execution fails with
    /// `States.Rejected`) or approved by enough reviewers (the step and
    /// the execution succeed with the verdict). A gate has no tool to run.
    async fn close_gate(
        &self,
        edit: &mut Edit,
        step: &StepRow,
        approvers: Vec<(String, String)>,
        actor: &str,
        reason: &str,
    ) -> Result<StepRow> {
        let mut s = step.clone();
        let approved = approvers.len() as i64 >= step.review_needed;
        if !approved {
            s.review = Some(ReviewState::Rejected);
            edit.put_step(s.clone(), Some(step.state));
            edit.record(
                "kernel.approval.rejected",
                actor,
                json!({"step_id": s.id, "reason": reason}),
            );
            let error = json!({"error": crate::workflow::error_names::REJECTED,
                "cause": format!("rejected by {actor}: {reason}"), "reviewer": actor});
            self.end(edit, ExecState::Failed, actor, error).await?;
            return Ok(edit.current(&s));
        }
        let (reviewers, subjects): (Vec<String>, Vec<String>) = approvers.into_iter().unzip();
        let verdict = json!({"approved": true, "reviewers": reviewers, "subjects": subjects, "reason": reason});
        s.review = Some(ReviewState::Approved);
        edit.put_step(s.clone(), Some(step.state));
        edit.record(
            "kernel.approval.granted",
            actor,
            json!({"step_id": s.id, "approvals": reviewers.len(), "reviewers_required": step.review_needed}),
        );
        edit.move_step(&s, StepState::Dispatched, "kernel.step.dispatched", SYSTEM, json!({}))?;
        edit.move_step(&s, StepState::Running, "kernel.step.started", SYSTEM, json!({}))?;
        let mut done = edit.move_step(
            &s,
            StepState::Succeeded,
            "kernel.step.succeeded",
            actor,
            json!({"output": verdict}),
        )?;
        done.result = Some(verdict.clone());
        edit.put_step(done.clone(), None);
        edit.move_exec(
            ExecState::Running,
            "kernel.execution.resumed",
            actor,
            json!({"step_id": s.id, "reason": "review approved"}),
        )?;
        edit.move_exec(
            ExecState::Completed,
            "kernel.execution.completed",
            actor,
            json!({"output": verdict}),
        )?;
        edit.exec.output = Some(verdict);
        Ok(done)
    }

    // ------------------------------------------------------------ workflow runs

    /// The rows of a new execution started by a workflow run, for the
    /// engine to commit with the run's own change: a `Task` (given to its
    /// agent's stream when one is connected here) or a review gate
    /// (blocked on approval from the start, its one step the review).
    pub fn spawn(&self, spec: Spawn) -> Result<Spawned> {
        let now = spec.now;
        let limit = self.cfg.execution_timeout_secs;
        let timeout = spec.timeout_secs.unwrap_or(limit).clamp(1, limit.max(1));
        let gate = spec.review.as_ref();
        let agent_id = match gate {
            Some(_) => REVIEW_AGENT.to_string(),
            None => {
                if let Some(fault) = agent_fault("agent", &spec.agent_id) {
                    return Err(KernelError::Invalid(fault));
                }
                spec.agent_id.clone()
            }
        };
        let review_ms = gate.map(|g| (g.timeout_secs.clamp(1, 366 * 86400) as i64) * 1000);
        // A gate's own deadline is its review's, with a margin: the
        // review's expiry is what ends it.
        let deadline_at = now + review_ms.map_or((timeout as i64) * 1000, |ms| ms + 60_000);
        let mut exec = ExecutionRow::pending(
            spec.id.clone(),
            spec.tenant_id.clone(),
            agent_id,
            (
                spec.initiator.clone(),
                spec.initiator_token.clone(),
                spec.initiator_subject.clone(),
            ),
            deadline_at,
            now,
        );
        exec.input = spec.input.clone();
        exec.labels = spec.labels.clone();
        exec.workflow_run = Some(spec.run_id.clone());
        exec.context = Some(spec.context.clone());
        let mut edit = Edit::of(exec, now);
        // Started on behalf of the run's initiator: its entries name its subject.
        edit.by = Some((spec.initiator.clone(), spec.initiator_subject.clone()));
        edit.expected = None;
        let payload = json!({"agent_id": edit.exec.agent_id, "input": edit.exec.input, "labels": edit.exec.labels,
            "deadline_at": rfc3339_ms(edit.exec.deadline_at), "workflow_run": spec.run_id,
            "context": spec.context});
        edit.record("kernel.execution.created", &spec.initiator, payload);
        match gate {
            None => {
                if let Some(conn) = self.hub.agent(&spec.tenant_id, &edit.exec.agent_id) {
                    assign(&mut edit, &conn)?;
                }
            }
            Some(g) => {
                let arguments = json!({"run_id": spec.run_id, "state": spec.state, "input": spec.input,
                    "prompt": g.prompt});
                let hash = args_hash(&arguments);
                let step_id = new_id("stp", now);
                let reasons = vec![
                    g.prompt
                        .clone()
                        .unwrap_or_else(|| format!("workflow state {} needs {} approval(s)", spec.state, g.reviewers)),
                ];
                let step = StepRow {
                    id: step_id.clone(),
                    execution_id: edit.exec.id.clone(),
                    tenant_id: spec.tenant_id.clone(),
                    tool: REVIEW_TOOL.to_string(),
                    arguments,
                    args_hash: hash.clone(),
                    attempt: 1,
                    max_attempts: 1,
                    backoff_ms: 0,
                    state: StepState::Pending,
                    remote: false,
                    idempotent: true,
                    idempotency_key: step_id.clone(),
                    runner_id: None,
                    runner_token: None,
                    decision_id: None,
                    timeout_ms: review_ms.unwrap_or(0),
                    deadline_at: None,
                    not_before: None,
                    review: Some(ReviewState::Waiting),
                    review_needed: g.reviewers.clamp(1, 100) as i64,
                    review_expires_at: review_ms.map(|ms| now + ms),
                    on_expiry: OnExpiry::Fail,
                    reasons: reasons.clone(),
                    result: None,
                    error: None,
                    created_at: now,
                    updated_at: now,
                };
                let actor = spec.initiator.clone();
                edit.move_exec(
                    ExecState::Running,
                    "kernel.execution.assigned",
                    SYSTEM,
                    json!({"reason": "a workflow review gate"}),
                )?;
                edit.record(
                    "kernel.step.created",
                    &actor,
                    json!({"step_id": step.id, "tool": REVIEW_TOOL, "args_hash": hash, "attempt": 1,
                        "remote": false, "idempotent": true, "reasons": reasons}),
                );
                edit.put_step(step.clone(), None);
                edit.move_exec(
                    ExecState::Blocked,
                    "kernel.execution.blocked",
                    SYSTEM,
                    json!({"waiting_on": "approval", "step_id": step.id}),
                )?;
                edit.exec.waiting_on = Some(WaitingOn::Approval);
                edit.record(
                    "kernel.approval.requested",
                    &actor,
                    json!({"step_id": step.id, "args_hash": hash, "reviewers_required": step.review_needed,
                        "expires_at": step.review_expires_at.map(rfc3339_ms), "on_expiry": "fail",
                        "reasons": reasons}),
                );
            }
        }
        edit.exec.version += 1;
        Ok(Spawned {
            steps: edit.steps.into_iter().map(|(s, _)| s).collect(),
            history: edit.history,
            pushes: edit.pushes,
            exec: edit.exec,
        })
    }

    /// Cancels an execution a run no longer waits for (a `Parallel`
    /// branch that lost, a run cancelled or timed out). One already ended
    /// is left as it is.
    pub async fn cancel_for_run(&self, id: &str, reason: &str) -> Result<()> {
        let _g = self.lock_of(id).lock().await;
        let Some(exec) = self.store.kernel_execution(id).await? else {
            return Ok(());
        };
        if exec.state.is_terminal() {
            return Ok(());
        }
        let mut edit = Edit::of(exec, self.clock.now_ms());
        self.end(&mut edit, ExecState::Cancelled, SYSTEM, json!({"reason": reason}))
            .await?;
        self.commit(edit).await?;
        Ok(())
    }

    /// What follows a commit made outside this module (the workflow
    /// engine's): streams woken, timers told of pending steps.
    pub fn after_commit(&self, recipients: &[String], pending: bool) {
        for r in recipients {
            self.hub.wake(r);
        }
        if pending {
            self.due.notify_one();
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

    // ------------------------------------------------------------ streams

    pub fn new_conn(&self, who: &Principal, name: String, recipient: String) -> Conn {
        Conn {
            id: format!("{}/{}", self.instance, new_id("con", self.clock.now_ms())),
            tenant_id: who.tenant_id.clone(),
            name,
            token_id: who.token_id.clone(),
            subject: who.subject.clone(),
            expires_at: who.expires_at,
            actor: who.actor(),
            recipient,
            wake: Arc::new(Notify::new()),
            closed: Arc::new(std::sync::atomic::AtomicBool::new(false)),
            tools: Vec::new(),
        }
    }

    /// An agent stream opened: it takes its agent's unassigned executions.
    /// Refused when its tenant holds `max_streams_per_tenant` here already.
    pub async fn agent_connected(&self, conn: Conn) -> Result<()> {
        self.hub
            .add_agent(conn.clone(), self.cfg.max_streams_per_tenant)
            .map_err(|e| KernelError::TooManyStreams(e.0))?;
        self.metrics
            .kernel_streams
            .get_or_create(&KindLabels { kind: "agent" })
            .inc();
        if let Err(e) = self.assign_waiting(Some((&conn.tenant_id, &conn.name))).await {
            // The stream is not served: it must not hold a slot.
            self.hub.remove(&conn);
            self.metrics
                .kernel_streams
                .get_or_create(&KindLabels { kind: "agent" })
                .dec();
            return Err(e);
        }
        Ok(())
    }

    /// Closes this token's open streams on this instance (it was revoked);
    /// returns how many.
    pub fn close_streams_of(&self, token_id: &str) -> usize {
        self.hub.close_token(token_id)
    }

    /// Closes the open streams whose token expired or was revoked (on any
    /// instance: the store says which are still honoured); returns how many.
    pub async fn close_dead_streams(&self) -> Result<usize> {
        let tokens = self.hub.tokens();
        if tokens.is_empty() {
            return Ok(0);
        }
        let now = self.clock.now_ms();
        let live = self.store.live_tokens(&tokens, now).await?;
        // Only the tokens asked about: a stream opened meanwhile is not judged.
        let dead = tokens.into_iter().filter(|t| !live.contains(t)).collect();
        Ok(self.hub.close_dead(now, &dead))
    }

    /// Assigns unassigned executions to agent streams of this instance
    /// (only those of one agent, when given).
    pub async fn assign_waiting(&self, only: Option<(&str, &str)>) -> Result<()> {
        for e in self.unassigned(only).await? {
            if only.is_some_and(|(t, a)| e.tenant_id != t || e.agent_id != a) {
                continue;
            }
            let Some(conn) = self.hub.agent(&e.tenant_id, &e.agent_id) else {
                continue;
            };
            let _g = self.lock_of(&e.id).lock().await;
            let Some(exec) = self.store.kernel_execution(&e.id).await? else {
                continue;
            };
            let unassigned =
                exec.state == ExecState::Pending || (exec.state == ExecState::Blocked && exec.conn.is_none());
            if !unassigned {
                continue;
            }
            let mut edit = Edit::of(exec, self.clock.now_ms());
            assign(&mut edit, &conn)?;
            // Local steps that waited for their agent go to it now.
            if edit.exec.state == ExecState::Blocked {
                for s in self.store.kernel_steps_of(&edit.exec.id).await? {
                    let ready = s.state == StepState::Pending
                        && !s.remote
                        && matches!(s.review, None | Some(ReviewState::Approved))
                        && s.not_before.is_none_or(|t| t <= edit.now);
                    if ready {
                        self.dispatch(&mut edit, &s, SYSTEM)?;
                    }
                }
            }
            self.commit(edit).await?;
        }
        Ok(())
    }

    /// What waits for an agent stream: one agent's oldest, or every
    /// agent's share, tenant by tenant, round robin (one agent's backlog,
    /// however long, never hides another's executions).
    async fn unassigned(&self, only: Option<(&str, &str)>) -> Result<Vec<ExecutionRow>> {
        Ok(match only {
            Some((tenant, agent)) => self.store.kernel_unassigned_of(tenant, agent, 1000).await?,
            None => self.store.kernel_unassigned(1000).await?,
        })
    }

    /// An agent stream closed: its running executions go back to pending;
    /// its blocked ones wait for the agent (up to `agent_timeout_secs`).
    pub async fn agent_disconnected(&self, conn: &Conn) -> Result<()> {
        self.hub.remove(conn);
        self.metrics
            .kernel_streams
            .get_or_create(&KindLabels { kind: "agent" })
            .dec();
        self.release_conn(&conn.id, "its agent stream closed").await?;
        self.due.notify_one();
        Ok(())
    }

    async fn release_conn(&self, conn: &str, why: &str) -> Result<()> {
        for e in self.store.kernel_executions_of_conn(conn).await? {
            let _g = self.lock_of(&e.id).lock().await;
            let Some(exec) = self.store.kernel_execution(&e.id).await? else {
                continue;
            };
            if exec.conn.as_deref() != Some(conn) {
                continue;
            }
            let mut edit = Edit::of(exec, self.clock.now_ms());
            release(&mut edit, SYSTEM, why)?;
            self.commit(edit).await?;
        }
        Ok(())
    }

    /// At start-up: streams of this instance's previous run are gone.
    pub async fn release_stale_streams(&self) -> Result<()> {
        self.release_instance(&self.instance, "the instance holding its agent stream restarted")
            .await
    }

    /// Gives back the executions held by streams of `instance` that are not
    /// open here.
    async fn release_instance(&self, instance: &str, why: &str) -> Result<()> {
        for conn in self.store.kernel_held_by_instance(&format!("{instance}/")).await? {
            if !self.hub.has_agent_conn(&conn) {
                self.release_conn(&conn, why).await?;
            }
        }
        Ok(())
    }

    /// Whether other live instances share the store.
    pub fn has_peers(&self) -> bool {
        self.peers.load(std::sync::atomic::Ordering::Relaxed)
    }

    /// Beats for this instance, and gives back the executions of instances
    /// silent for longer than `silent_ms` (they stopped without restarting).
    pub async fn watch_instances(&self, silent_ms: i64) -> Result<usize> {
        let now = self.clock.now_ms();
        self.store.kernel_heartbeat(&self.instance, now).await?;
        let live = self.store.kernel_live_instances(now - silent_ms).await?;
        self.peers.store(
            live.iter().any(|i| *i != self.instance),
            std::sync::atomic::Ordering::Relaxed,
        );
        let silent = self.store.kernel_silent_instances(now - silent_ms).await?;
        for other in &silent {
            if *other == self.instance {
                continue;
            }
            self.release_instance(other, "the instance holding its agent stream stopped")
                .await?;
            self.store.kernel_forget_instance(other, now - silent_ms).await?;
        }
        Ok(silent.len())
    }

    /// A runner stream opened: record its tools (they belong to its token:
    /// refused when another live token declared this runner's), then
    /// dispatch what waits.
    pub async fn runner_connected(&self, conn: Conn) -> Result<()> {
        let now = self.clock.now_ms();
        let owned = self
            .store
            .kernel_put_runner(&conn.tenant_id, &conn.name, &conn.token_id, &conn.tools, now)
            .await?;
        if !owned {
            return Err(KernelError::RunnerOwned(conn.name));
        }
        self.hub
            .add_runner(conn, self.cfg.max_streams_per_tenant)
            .map_err(|e| KernelError::TooManyStreams(e.0))?;
        self.metrics
            .kernel_streams
            .get_or_create(&KindLabels { kind: "runner" })
            .inc();
        self.due.notify_one();
        Ok(())
    }

    pub fn runner_disconnected(&self, conn: &Conn) {
        self.hub.remove(conn);
        self.metrics
            .kernel_streams
            .get_or_create(&KindLabels { kind: "runner" })
            .dec();
    }

    // ------------------------------------------------------------ timers

    /// One pass over what is due. Returns how many things moved.
    pub async fn tick(&self) -> Result<usize> {
        let now = self.clock.now_ms();
        let mut moved = 0;
        for s in self.store.kernel_due_steps(now, 500).await? {
            match self.step_due(&s.execution_id, &s.id).await {
                Ok(true) => moved += 1,
                Ok(false) => {}
                Err(KernelError::Store(StoreError::Changed(_))) => {}
                Err(e) => tracing::warn!(step = %s.id, error = %e, "kernel: a due step could not move"),
            }
        }
        let lost_before = now - (self.cfg.agent_timeout_secs as i64) * 1000;
        for e in self.store.kernel_due_executions(now, lost_before, 500).await? {
            match self.execution_due(&e.id).await {
                Ok(true) => moved += 1,
                Ok(false) => {}
                Err(KernelError::Store(StoreError::Changed(_))) => {}
                Err(err) => tracing::warn!(execution = %e.id, error = %err, "kernel: a due execution could not move"),
            }
        }
        self.assign_waiting(None).await?;
        Ok(moved)
    }

    async fn step_due(&self, execution_id: &str, step_id: &str) -> Result<bool> {
        let _g = self.lock_of(execution_id).lock().await;
        let Some(step) = self.store.kernel_step(step_id).await? else {
            return Ok(false);
        };
        let Some(exec) = self.store.kernel_execution(execution_id).await? else {
            return Ok(false);
        };
        if step.state.is_terminal() || exec.state.is_terminal() {
            return Ok(false);
        }
        let now = self.clock.now_ms();
        let mut edit = Edit::of(exec, now);
        if step.review == Some(ReviewState::Waiting) {
            if step.review_expires_at.is_none_or(|t| t > now) {
                return Ok(false);
            }
            let mut s = step.clone();
            s.review = Some(ReviewState::Expired);
            edit.put_step(s.clone(), Some(step.state));
            edit.record(
                "kernel.approval.expired",
                SYSTEM,
                json!({"step_id": s.id, "on_expiry": s.on_expiry.as_str()}),
            );
            let s = edit.move_step(
                &s,
                StepState::Cancelled,
                "kernel.step.cancelled",
                SYSTEM,
                json!({"reason": "the review expired"}),
            )?;
            match s.on_expiry {
                OnExpiry::Fail => {
                    self.end(
                        &mut edit,
                        ExecState::Failed,
                        SYSTEM,
                        json!({"reason": "the review expired", "step_id": s.id, "timed_out": true}),
                    )
                    .await?;
                }
                OnExpiry::Continue => {
                    edit.move_exec(
                        ExecState::Running,
                        "kernel.execution.resumed",
                        SYSTEM,
                        json!({"step_id": s.id, "reason": "review expired"}),
                    )?;
                    let data = json!({"execution_id": edit.exec.id, "step_id": s.id, "state": "cancelled",
                        "review": "expired", "execution_state": "running"});
                    let agent = edit.agent();
                    edit.push(agent, "step.result", data);
                    if edit.exec.conn.is_none() {
                        release(&mut edit, SYSTEM, "no agent stream holds it")?;
                    }
                }
            }
        } else if step.deadline_at.is_some_and(|t| t <= now) {
            let s = edit.move_step(
                &step,
                StepState::TimedOut,
                "kernel.step.timed_out",
                SYSTEM,
                json!({"deadline_at": step.deadline_at.map(rfc3339_ms)}),
            )?;
            if let (true, Some(runner)) = (step.state != StepState::Pending, &step.runner_id) {
                let r = runner_recipient(&edit.exec.tenant_id, runner);
                edit.push(
                    r,
                    "job.cancelled",
                    json!({"step_id": s.id, "execution_id": edit.exec.id, "reason": "timed out",
                        "idempotency_key": s.idempotency_key}),
                );
            }
            // Whether a timed-out call ran is unknown: only an idempotent
            // tool is tried again.
            self.after_failure(&mut edit, &s, s.idempotent, SYSTEM)?;
        } else if step.state == StepState::Pending {
            let s = self.dispatch(&mut edit, &step, SYSTEM)?;
            if edit.steps.is_empty() {
                return Ok(false);
            }
            self.commit(edit).await?;
            return Ok(s.state != StepState::Pending);
        } else {
            return Ok(false);
        }
        self.commit(edit).await?;
        Ok(true)
    }

    async fn execution_due(&self, id: &str) -> Result<bool> {
        let _g = self.lock_of(id).lock().await;
        let Some(exec) = self.store.kernel_execution(id).await? else {
            return Ok(false);
        };
        let now = self.clock.now_ms();
        let lost_before = now - (self.cfg.agent_timeout_secs as i64) * 1000;
        let mut edit = Edit::of(exec.clone(), now);
        if exec.state.is_terminal() {
            return Ok(false);
        } else if exec.deadline_at <= now {
            let to = if exec.state == ExecState::Pending {
                ExecState::Cancelled
            } else {
                ExecState::Failed
            };
            self.end(
                &mut edit,
                to,
                SYSTEM,
                json!({"reason": "the execution timed out", "deadline_at": rfc3339_ms(exec.deadline_at),
                    "timed_out": true}),
            )
            .await?;
        } else if exec.state == ExecState::Blocked && exec.agent_lost_at.is_some_and(|t| t <= lost_before) {
            self.end(
                &mut edit,
                ExecState::Failed,
                SYSTEM,
                json!({"reason": "its agent did not come back in time",
                    "agent_timeout_secs": self.cfg.agent_timeout_secs}),
            )
            .await?;
        } else if exec.state == ExecState::Blocked
            && exec.waiting_on == Some(WaitingOn::Signal)
            && exec.wake_at.is_some_and(|t| t <= now)
        {
            edit.move_exec(
                ExecState::Running,
                "kernel.execution.resumed",
                SYSTEM,
                json!({"reason": "its wait ended"}),
            )?;
            let data = json!({"execution_id": id, "reason": "timer"});
            let agent = edit.agent();
            edit.push(agent, "execution.resumed", data);
            if edit.exec.conn.is_none() {
                release(&mut edit, SYSTEM, "no agent stream holds it")?;
            }
        } else {
            return Ok(false);
        }
        self.commit(edit).await?;
        Ok(true)
    }
}

enum PolicyOutcome {
    Allow,
    Deny,
    Review {
        reviewers: i64,
        timeout_ms: i64,
        on_expiry: OnExpiry,
    },
}

impl PolicyOutcome {
    fn name(&self) -> &'static str {
        match self {
            PolicyOutcome::Allow => "allow",
            PolicyOutcome::Deny => "deny",
            PolicyOutcome::Review { .. } => "require_approval",
        }
    }
}

struct PolicyVerdict {
    outcome: PolicyOutcome,
    reasons: Vec<String>,
    decision_id: Option<String>,
    evidence: Option<Value>,
}

/// Gives the execution to an agent stream (pending → running), or back to
/// it (blocked, its agent had gone).
fn assign(edit: &mut Edit, conn: &Conn) -> Result<()> {
    let payload = json!({"conn": conn.id, "agent_token": conn.token_id, "subject": conn.subject});
    if edit.exec.state == ExecState::Pending {
        edit.move_exec(ExecState::Running, "kernel.execution.assigned", &conn.actor, payload)?;
    } else {
        edit.record("kernel.execution.assigned", &conn.actor, payload);
    }
    edit.exec.conn = Some(conn.id.clone());
    edit.exec.agent_token = Some(conn.token_id.clone());
    if !edit.exec.agent_subjects.contains(&conn.subject) {
        edit.exec.agent_subjects.push(conn.subject.clone());
    }
    edit.exec.agent_lost_at = None;
    let data = json!({"execution_id": edit.exec.id, "agent_id": edit.exec.agent_id, "state": edit.exec.state.as_str(),
        "input": edit.exec.input, "labels": edit.exec.labels, "deadline_at": rfc3339_ms(edit.exec.deadline_at)});
    let mut data = data;
    if let Some(context) = &edit.exec.context {
        // A workflow run's execution: its run, state and pinned skill.
        data["context"] = context.clone();
    }
    let agent = edit.agent();
    edit.push(agent, "execution.assigned", data);
    Ok(())
}

/// The execution's agent stream is gone: running → pending; a blocked one
/// keeps waiting, with the time its agent left.
fn release(edit: &mut Edit, actor: &str, why: &str) -> Result<()> {
    if edit.exec.state == ExecState::Running {
        edit.move_exec(
            ExecState::Pending,
            "kernel.execution.released",
            actor,
            json!({"reason": why}),
        )?;
        edit.exec.agent_lost_at = None;
    } else {
        edit.record(
            "kernel.execution.released",
            actor,
            json!({"reason": why, "state": edit.exec.state.as_str()}),
        );
        edit.exec.agent_lost_at = Some(edit.now);
    }
    edit.exec.conn = None;
    edit.exec.agent_token = None;
    Ok(())
}

/// A step succeeded: the execution runs again and its agent gets the result.
fn resume_after_step(edit: &mut Edit, s: &StepRow, actor: &str) -> Result<()> {
    edit.move_exec(
        ExecState::Running,
        "kernel.execution.resumed",
        actor,
        json!({"step_id": s.id, "reason": "step succeeded"}),
    )?;
    let data = json!({"execution_id": edit.exec.id, "step_id": s.id, "tool": s.tool, "state": "succeeded",
        "output": s.result, "execution_state": "running"});
    let agent = edit.agent();
    edit.push(agent, "step.result", data);
    if edit.exec.conn.is_none() {
        release(edit, SYSTEM, "no agent stream holds it")?;
    }
    Ok(())
}

/// The ledger record of a history entry: the decision as `/v1/decisions`
/// records it, or the transition with the execution and sequence number.
/// The agent id of workflow review gates: no agent stream holds them.
pub const REVIEW_AGENT: &str = "warden.review";
/// The tool of a review gate's one step.
pub const REVIEW_TOOL: &str = "workflow.review";

fn is_gate(exec: &ExecutionRow, step: &StepRow) -> bool {
    exec.agent_id == REVIEW_AGENT && step.tool == REVIEW_TOOL && exec.workflow_run.is_some()
}

/// A field of the run context an execution carries (null outside runs).
fn context_field(exec: &ExecutionRow, field: &str) -> Value {
    exec.context
        .as_ref()
        .and_then(|c| c.get(field))
        .cloned()
        .unwrap_or(Value::Null)
}

/// A new execution for a workflow run ([`Kernel::spawn`]).
#[derive(Debug, Clone)]
pub struct Spawn {
    pub id: String,
    pub now: i64,
    pub tenant_id: String,
    pub run_id: String,
    /// The state that starts it.
    pub state: String,
    pub agent_id: String,
    pub input: Value,
    pub labels: Map<String, Value>,
    pub initiator: String,
    pub initiator_token: String,
    pub initiator_subject: String,
    pub timeout_secs: Option<u64>,
    pub context: Value,
    /// A review gate instead of an agent's execution.
    pub review: Option<Gate>,
}

#[derive(Debug, Clone)]
pub struct Gate {
    pub reviewers: u32,
    pub timeout_secs: u64,
    pub prompt: Option<String>,
}

/// The rows [`Kernel::spawn`] made, not yet written.
#[derive(Debug, Clone)]
pub struct Spawned {
    pub exec: ExecutionRow,
    pub steps: Vec<StepRow>,
    pub history: Vec<HistoryRow>,
    pub pushes: Vec<PushRow>,
}

pub fn record_of(h: &HistoryRow) -> Record {
    let payload = if h.kind == "decision" {
        h.payload.clone()
    } else {
        let mut p = h.payload.clone();
        p["execution_id"] = h.execution_id.clone().into();
        p["seq"] = h.seq.into();
        p["at"] = rfc3339_ms(h.at).into();
        p
    };
    let subject = match h.kind {
        "decision" => h.payload["decision_id"].as_str().unwrap_or(&h.execution_id).to_string(),
        _ => h.execution_id.clone(),
    };
    Record::new(&h.tenant_id, h.kind, &h.actor, &payload).about(subject)
}

/// Refuses a caller not bound to agent `agent_id`.
pub fn bound_agent(who: &Principal, agent_id: &str) -> Result<()> {
    if who.is_agent(agent_id) {
        return Ok(());
    }
    Err(KernelError::NotBound {
        kind: "agent",
        id: agent_id.to_string(),
    })
}

/// Refuses a caller not bound to runner `runner_id`.
pub fn bound_runner(who: &Principal, runner_id: &str) -> Result<()> {
    if who.is_runner(runner_id) {
        return Ok(());
    }
    Err(KernelError::NotBound {
        kind: "runner",
        id: runner_id.to_string(),
    })
}

fn check_name(field: &str, v: &str) -> Result<()> {
    match name_fault(field, v) {
        Some(fault) => Err(KernelError::Invalid(fault)),
        None => Ok(()),
    }
}
