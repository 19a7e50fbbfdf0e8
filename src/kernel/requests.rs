//! What callers send the kernel (executions, intents, step reports,
//! verdicts), and the checks of who may send it: a token bound to agents or
//! runners acts only as them.

use serde::Deserialize;
use serde_json::{Map, Value};

use super::error::*;
use crate::auth::Principal;
use crate::evidence::canonical;
use crate::model::kernel::*;

/// The arguments' hash reviewers approve: blake3 of their RFC 8785 form.
pub fn args_hash(arguments: &Value) -> String {
    blake3::hash(&canonical::to_vec(arguments)).to_hex().to_string()
}

#[derive(Debug, Clone, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CreateExecution {
    /// The agent that runs it.
    pub agent_id: String,
    #[serde(default)]
    #[schema(value_type = Value)]
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

#[derive(Debug, Clone, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct RetrySpec {
    /// Attempts in all, at most the configured maximum.
    pub max_attempts: Option<u32>,
    /// Back-off before the second attempt, doubled for each next one.
    pub backoff_ms: Option<u64>,
}

#[derive(Debug, Clone, Deserialize, utoipa::ToSchema)]
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

#[derive(Debug, Clone, Deserialize, utoipa::ToSchema)]
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

#[derive(Debug, Clone, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ReviewRequest {
    pub step_id: String,
    pub decision: Verdict,
    #[serde(default)]
    pub reason: String,
    /// The `args_hash` of the step as the reviewer saw it.
    pub args_hash: String,
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

pub(super) fn check_name(field: &str, v: &str) -> Result<()> {
    match name_fault(field, v) {
        Some(fault) => Err(KernelError::Invalid(fault)),
        None => Ok(()),
    }
}
