//! The execution kernel (seed 003): executions run by agents over SSE,
//! intents checked by policy before anything acts, steps run by the agent
//! or dispatched to runners, human review of what policy escalates,
//! retries, time-outs, and liveness.
//!
//! - [`model`]: states, the only transitions between them, stored rows. No IO.
//! - [`service`]: every operation, as one edit of an execution, handed with
//!   its history records to the ledger writer
//!   ([`crate::ledger::Ledger::append_with`]), which commits both in one
//!   transaction; then streams are woken.
//! - [`hub`]: the agent and runner streams connected to this instance.
//! - [`timers`]: the background pass that dispatches, assigns, retries and
//!   times out.
//!
//! Invariants: a transition and its ledger entries commit together, before
//! anyone is told (response or push); a stale edit is refused whole. The
//! identity recorded for every act is the authenticated token's.

pub mod hub;
pub mod model;
pub mod service;
pub mod timers;

pub use service::{Gate, Kernel, KernelError, REVIEW_AGENT, REVIEW_TOOL, Spawn, Spawned};
