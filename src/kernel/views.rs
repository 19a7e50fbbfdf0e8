//! What the kernel answers: executions, steps, history, intent answers and
//! reviews waiting, as the API shows them.

use serde::Serialize;
use serde_json::{Map, Value};

use crate::clock::rfc3339_ms;
use crate::ledger::Receipt;
use crate::model::kernel::*;

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
    pub(super) fn of(s: &StepRow, approvals: usize) -> Self {
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
    #[schema(value_type = Value)]
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

/// An execution in a list: where it is, not its steps.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct ExecutionSummary {
    pub id: String,
    /// The workflow run it belongs to, if any.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub workflow_run: Option<String>,
    pub agent_id: String,
    pub state: ExecState,
    #[schema(value_type = Object)]
    pub labels: Map<String, Value>,
    pub initiator: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub waiting_on: Option<WaitingOn>,
    pub created_at: String,
    pub updated_at: String,
}

impl ExecutionSummary {
    pub(super) fn of(e: &ExecutionRow) -> Self {
        ExecutionSummary {
            id: e.id.clone(),
            workflow_run: e.workflow_run.clone(),
            agent_id: e.agent_id.clone(),
            state: e.state,
            labels: e.labels.clone(),
            initiator: e.initiator.clone(),
            waiting_on: e.waiting_on,
            created_at: rfc3339_ms(e.created_at),
            updated_at: rfc3339_ms(e.updated_at),
        }
    }
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
    /// `invoke_tool` only: the receipt of the policy decision's ledger
    /// entry (the kernel policy's), to keep beside the call it allowed.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub decision_receipt: Option<Receipt>,
    /// The ledger receipts of what this intent changed, in order.
    pub receipts: Vec<Receipt>,
}

#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct PendingReview {
    pub execution_id: String,
    /// The workflow run the execution belongs to (a review gate's, or a
    /// run's task), if any.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub workflow_run: Option<String>,
    pub agent_id: String,
    pub initiator: String,
    pub step: StepView,
    /// Who already approved (their tokens, as recorded).
    pub approved_by: Vec<String>,
    /// The subjects who already approved: each counts once.
    pub approved_subjects: Vec<String>,
}
