//! The execution kernel (seed 003): executions run by agents over SSE,
//! intents checked by policy before anything acts, steps run by the agent
//! or dispatched to runners, human review of what policy escalates,
//! retries, time-outs, and liveness.
//!
//! - [`model`]: states, the only transitions between them, stored rows. No IO.
//! - [`service`]: every operation, as one [`Edit`](service) of an execution
//!   written atomically ([`crate::store::Store::kernel_apply`]), then appended
//!   to the ledger, then pushed to streams.
//! - [`hub`]: the agent and runner streams connected to this instance.
//! - [`timers`]: the background pass that dispatches, assigns, retries and
//!   times out.
//!
//! Invariants: a transition is in the store before its ledger entry and in
//! the ledger before anyone is told (response or push); entries a crash
//! left out of the ledger are appended at the next start, in order. The
//! identity recorded for every act is the authenticated token's.

pub mod hub;
pub mod model;
pub mod service;
pub mod timers;

pub use service::{Kernel, KernelError};
