//! The kernel's states and the only transitions between them (seed 003's
//! tables, verbatim), and the rows the store keeps. No IO.

use serde::{Deserialize, Serialize};

/// Where an execution is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum ExecState {
    Pending,
    Running,
    Blocked,
    Completed,
    Failed,
    Cancelled,
}

/// Where a step (one attempt of a tool call) is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum StepState {
    Pending,
    Dispatched,
    Running,
    Succeeded,
    Failed,
    TimedOut,
    Cancelled,
}

macro_rules! str_enum {
    ($t:ty { $($v:ident => $s:literal),* $(,)? }) => {
        impl $t {
            pub fn as_str(self) -> &'static str {
                match self { $(Self::$v => $s),* }
            }
            pub fn parse(s: &str) -> Option<Self> {
                match s { $($s => Some(Self::$v),)* _ => None }
            }
        }
        impl std::fmt::Display for $t {
            fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str(self.as_str())
            }
        }
    };
}

str_enum!(ExecState {
    Pending => "pending", Running => "running", Blocked => "blocked",
    Completed => "completed", Failed => "failed", Cancelled => "cancelled",
});

str_enum!(StepState {
    Pending => "pending", Dispatched => "dispatched", Running => "running",
    Succeeded => "succeeded", Failed => "failed", TimedOut => "timed_out", Cancelled => "cancelled",
});

impl ExecState {
    /// Seed 003's execution table: nothing else is ever allowed.
    pub fn may_become(self, to: ExecState) -> bool {
        use ExecState::*;
        matches!(
            (self, to),
            (Pending, Running)
                | (Pending, Cancelled)
                | (Running, Blocked)
                | (Running, Completed)
                | (Running, Failed)
                | (Running, Cancelled)
                | (Running, Pending)
                | (Blocked, Running)
                | (Blocked, Failed)
                | (Blocked, Cancelled)
        )
    }

    pub fn is_terminal(self) -> bool {
        matches!(self, ExecState::Completed | ExecState::Failed | ExecState::Cancelled)
    }
}

impl StepState {
    /// Seed 003's step table: nothing else is ever allowed.
    pub fn may_become(self, to: StepState) -> bool {
        use StepState::*;
        matches!(
            (self, to),
            (Pending, Dispatched)
                | (Pending, Cancelled)
                | (Pending, TimedOut)
                | (Dispatched, Running)
                | (Dispatched, TimedOut)
                | (Dispatched, Cancelled)
                | (Running, Succeeded)
                | (Running, Failed)
                | (Running, TimedOut)
                | (Running, Cancelled)
        )
    }

    pub fn is_terminal(self) -> bool {
        matches!(
            self,
            StepState::Succeeded | StepState::Failed | StepState::TimedOut | StepState::Cancelled
        )
    }
}

/// Why a blocked execution waits.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum WaitingOn {
    /// A step: running, or waiting for its retry back-off.
    Step,
    /// A step waiting for human review.
    Approval,
    /// A `wait` intent: a signal, or its timer.
    Signal,
}

str_enum!(WaitingOn { Step => "step", Approval => "approval", Signal => "signal" });

/// Review of a step that policy escalated.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum ReviewState {
    Waiting,
    Approved,
    Rejected,
    Expired,
}

str_enum!(ReviewState { Waiting => "waiting", Approved => "approved", Rejected => "rejected", Expired => "expired" });

/// What happens to the execution when a review expires.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum OnExpiry {
    /// The execution fails.
    Fail,
    /// The execution goes on; its agent is told the step was cancelled.
    Continue,
}

str_enum!(OnExpiry { Fail => "fail", Continue => "continue" });

/// An execution as stored.
#[derive(Debug, Clone, PartialEq)]
pub struct ExecutionRow {
    pub id: String,
    pub tenant_id: String,
    pub agent_id: String,
    pub state: ExecState,
    pub input: serde_json::Value,
    pub labels: serde_json::Map<String, serde_json::Value>,
    /// The `complete` result, or the failure.
    pub output: Option<serde_json::Value>,
    /// Who created it (`token:<id> (<name>)`), that token's id and its
    /// subject (none of them may review its steps).
    pub initiator: String,
    pub initiator_token: String,
    pub initiator_subject: String,
    /// The agent stream holding it, and that stream's token.
    pub conn: Option<String>,
    pub agent_token: Option<String>,
    /// Every subject whose agent token has held it: none of them may
    /// review its steps.
    pub agent_subjects: Vec<String>,
    pub waiting_on: Option<WaitingOn>,
    /// The execution's time-out, epoch ms.
    pub deadline_at: i64,
    /// When a `wait` intent resumes by itself, epoch ms.
    pub wake_at: Option<i64>,
    /// Since when a blocked execution has had no agent stream, epoch ms.
    pub agent_lost_at: Option<i64>,
    /// Goes up at every change: writes are conditional on it.
    pub version: i64,
    /// The last history entry's sequence number.
    pub seq: i64,
    pub created_at: i64,
    pub updated_at: i64,
    /// The workflow run that started it (a `Task` or `HumanReview` state).
    pub workflow_run: Option<String>,
    /// What the policy sees of the run: workflow, state, skill, organisation.
    pub context: Option<serde_json::Value>,
}

impl ExecutionRow {
    /// A new pending execution, not yet stored: no input or labels, no
    /// agent stream, at version 0. `initiator` is the actor, its token id
    /// and its subject.
    pub fn pending(
        id: String,
        tenant_id: String,
        agent_id: String,
        initiator: (String, String, String),
        deadline_at: i64,
        now: i64,
    ) -> Self {
        ExecutionRow {
            id,
            tenant_id,
            agent_id,
            state: ExecState::Pending,
            input: serde_json::Value::Null,
            labels: serde_json::Map::new(),
            output: None,
            initiator: initiator.0,
            initiator_token: initiator.1,
            initiator_subject: initiator.2,
            conn: None,
            agent_token: None,
            agent_subjects: Vec::new(),
            waiting_on: None,
            deadline_at,
            wake_at: None,
            agent_lost_at: None,
            version: 0,
            seq: 0,
            created_at: now,
            updated_at: now,
            workflow_run: None,
            context: None,
        }
    }
}

/// One attempt of a tool call, as stored.
#[derive(Debug, Clone, PartialEq)]
pub struct StepRow {
    pub id: String,
    pub execution_id: String,
    pub tenant_id: String,
    pub tool: String,
    pub arguments: serde_json::Value,
    /// blake3 of the arguments' canonical JSON (RFC 8785), hex.
    pub args_hash: String,
    /// 1 for the first attempt.
    pub attempt: i64,
    pub max_attempts: i64,
    pub backoff_ms: i64,
    pub state: StepState,
    /// Dispatched to a runner (true) or run by the agent (false).
    pub remote: bool,
    pub idempotent: bool,
    /// Travels with the job: the same for every delivery of one attempt.
    pub idempotency_key: String,
    pub runner_id: Option<String>,
    /// The token of the runner stream the job was dispatched to: only it
    /// reports the job's result.
    pub runner_token: Option<String>,
    pub decision_id: Option<String>,
    /// Seconds the step may take once it may start.
    pub timeout_ms: i64,
    pub deadline_at: Option<i64>,
    /// A retry may not be dispatched before this, epoch ms.
    pub not_before: Option<i64>,
    pub review: Option<ReviewState>,
    pub review_needed: i64,
    pub review_expires_at: Option<i64>,
    pub on_expiry: OnExpiry,
    /// The policy's reasons for escalating (or allowing).
    pub reasons: Vec<String>,
    pub result: Option<serde_json::Value>,
    pub error: Option<serde_json::Value>,
    pub created_at: i64,
    pub updated_at: i64,
}

/// One history entry of an execution: what changed, kept in the store and
/// appended to the ledger.
#[derive(Debug, Clone, PartialEq)]
pub struct HistoryRow {
    pub execution_id: String,
    pub seq: i64,
    pub tenant_id: String,
    /// One of [`KINDS`].
    pub kind: &'static str,
    pub actor: String,
    pub payload: serde_json::Value,
    pub at: i64,
    /// Set once the entry is in the ledger.
    pub ledger_index: Option<u64>,
}

/// Every kind of history entry; each is also the ledger entry's kind.
pub const KINDS: &[&str] = &[
    // The policy decision on an `invoke_tool` intent, as `/v1/decisions` records it.
    "decision",
    "kernel.execution.created",
    "kernel.execution.assigned",
    "kernel.execution.released",
    "kernel.execution.blocked",
    "kernel.execution.resumed",
    "kernel.execution.signalled",
    "kernel.execution.completed",
    "kernel.execution.failed",
    "kernel.execution.cancelled",
    "kernel.intent.denied",
    "kernel.step.created",
    "kernel.step.dispatched",
    "kernel.step.started",
    "kernel.step.succeeded",
    "kernel.step.failed",
    "kernel.step.timed_out",
    "kernel.step.cancelled",
    "kernel.step.retried",
    "kernel.approval.requested",
    "kernel.approval.recorded",
    "kernel.approval.granted",
    "kernel.approval.rejected",
    "kernel.approval.expired",
];

/// The `&'static` form of a history kind read back from the store.
pub fn kind_of(s: &str) -> Option<&'static str> {
    KINDS.iter().copied().find(|k| *k == s)
}

/// A message for an agent or runner stream, kept until read so a client
/// that reconnects resumes with `Last-Event-ID`.
#[derive(Debug, Clone, PartialEq)]
pub struct PushRow {
    /// `agent/<tenant>/<agent id>` or `runner/<tenant>/<runner id>`.
    pub recipient: String,
    /// Per recipient, from 1; the SSE event id.
    pub seq: i64,
    pub event: &'static str,
    pub data: serde_json::Value,
    pub created_at: i64,
}

/// Why `v` cannot be an agent, runner or tool name, or None. Names also
/// name streams (`agent/<tenant>/<name>`); a tenant id has no `/`, so a
/// name with one (an image reference, `ghcr.io/bank/triage@sha256:…`)
/// still names one stream.
pub fn name_fault(field: &str, v: &str) -> Option<String> {
    let ok = !v.is_empty()
        && v.len() <= 200
        && !v.starts_with('/')
        && v.chars().all(|c| c.is_ascii_alphanumeric() || "._:-@/".contains(c));
    (!ok).then(|| {
        format!(
            "{field} must be 1 to 200 characters of letters, digits and . _ : - @ / (not starting with /); got {v:?}"
        )
    })
}

/// Why `v` cannot be an agent's id, or None: the naming rule, and the
/// `warden.` prefix is the system's (workflow review gates use one).
pub fn agent_fault(field: &str, v: &str) -> Option<String> {
    name_fault(field, v).or_else(|| {
        v.starts_with("warden.")
            .then(|| format!("{field} {v:?} starts with `warden.`, which is reserved for Warden's own agents"))
    })
}

pub fn agent_recipient(tenant_id: &str, agent_id: &str) -> String {
    format!("agent/{tenant_id}/{agent_id}")
}

pub fn runner_recipient(tenant_id: &str, runner_id: &str) -> String {
    format!("runner/{tenant_id}/{runner_id}")
}

/// Every SSE event name.
pub const PUSH_EVENTS: &[&str] = &[
    "execution.assigned",
    "execution.resumed",
    "execution.cancelled",
    "execution.failed",
    "execution.signalled",
    "step.assigned",
    "step.result",
    "job.assigned",
    "job.cancelled",
];

pub fn push_event_of(s: &str) -> Option<&'static str> {
    PUSH_EVENTS.iter().copied().find(|k| *k == s)
}

/// A reviewer's verdict on a step, as stored.
#[derive(Debug, Clone, PartialEq)]
pub struct ApprovalRow {
    pub step_id: String,
    pub tenant_id: String,
    pub reviewer_token: String,
    pub reviewer: String,
    /// The reviewer's subject: a step takes one verdict per subject.
    pub subject: String,
    pub approve: bool,
    pub reason: String,
    pub args_hash: String,
    pub at: i64,
}

#[cfg(test)]
mod tests {
    use super::*;

    const EXEC: [ExecState; 6] = [
        ExecState::Pending,
        ExecState::Running,
        ExecState::Blocked,
        ExecState::Completed,
        ExecState::Failed,
        ExecState::Cancelled,
    ];
    const STEP: [StepState; 7] = [
        StepState::Pending,
        StepState::Dispatched,
        StepState::Running,
        StepState::Succeeded,
        StepState::Failed,
        StepState::TimedOut,
        StepState::Cancelled,
    ];

    /// The tables of seed 003, row by row; every pair not listed is refused.
    #[test]
    fn execution_transitions_are_exactly_the_seed_table() {
        let table = "pending running\npending cancelled\nrunning blocked\nrunning completed\nrunning failed\n\
                     running cancelled\nrunning pending\nblocked running\nblocked failed\nblocked cancelled";
        let allowed: Vec<(&str, &str)> = table.lines().map(|l| l.split_once(' ').unwrap()).collect();
        for from in EXEC {
            for to in EXEC {
                assert_eq!(
                    from.may_become(to),
                    allowed.contains(&(from.as_str(), to.as_str())),
                    "{from} -> {to}"
                );
            }
        }
        assert!(
            EXEC.iter()
                .filter(|s| s.is_terminal())
                .all(|s| EXEC.iter().all(|t| !s.may_become(*t)))
        );
    }

    #[test]
    fn step_transitions_are_exactly_the_seed_table() {
        let table = "pending dispatched\npending cancelled\npending timed_out\ndispatched running\n\
                     dispatched timed_out\ndispatched cancelled\nrunning succeeded\nrunning failed\n\
                     running timed_out\nrunning cancelled";
        let allowed: Vec<(&str, &str)> = table.lines().map(|l| l.split_once(' ').unwrap()).collect();
        for from in STEP {
            for to in STEP {
                assert_eq!(
                    from.may_become(to),
                    allowed.contains(&(from.as_str(), to.as_str())),
                    "{from} -> {to}"
                );
            }
        }
    }

    #[test]
    fn one_naming_rule_for_agents_runners_and_tools() {
        assert_eq!(name_fault("tool", "payments.refund"), None);
        assert_eq!(name_fault("agent_id", "ghcr.io:claims@v1"), None);
        assert_eq!(name_fault("agent_id", "ghcr.io/bank/claims-triage@sha256:0d1f"), None);
        assert!(agent_fault("agent_id", "warden.review").unwrap().contains("reserved"));
        assert_eq!(agent_fault("agent_id", "wardens.review"), None);
        for bad in ["", "/a", "a b", "a?b", &"x".repeat(201)] {
            assert!(
                name_fault("agent_id", bad).unwrap().starts_with("agent_id must be"),
                "{bad:?}"
            );
        }
    }

    #[test]
    fn names_round_trip() {
        for s in EXEC {
            assert_eq!(ExecState::parse(s.as_str()), Some(s));
        }
        for s in STEP {
            assert_eq!(StepState::parse(s.as_str()), Some(s));
        }
        assert!(KINDS.iter().all(|k| kind_of(k) == Some(*k)));
        assert_eq!(kind_of("kernel.nope"), None);
    }
}
