//! What a kernel operation refuses, each with its stable code.

use crate::evidence::receipt::Receipt;
use crate::ledger::AppendError;
use crate::store::StoreError;

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
        /// The receipt of the decision's ledger entry.
        receipt: Option<Box<Receipt>>,
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

pub(super) type Result<T> = std::result::Result<T, KernelError>;
