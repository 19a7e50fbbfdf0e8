//! Warden: an audit and policy compliance gateway.
//!
//! Orchestrators ask Warden before they act; Warden answers from versioned
//! Rego bundles that compliance teams own, evaluated with regorus.
//!
//! # Layout
//!
//! - [`app`]: composition root; `build` the state, `run(listener, state, shutdown)`.
//! - [`config`]: typed configuration (file, `WARDEN_*` environment, flags).
//! - [`document`]: uploaded YAML-or-JSON documents read strictly.
//! - [`clock`]: the only reader of the wall clock.
//! - [`auth`]: tenants, bearer tokens, roles, and the action table.
//! - [`store`]: SQLite / PostgreSQL persistence; the only user of `sqlx`.
//! - [`policy`]: bundles (archive, signature, manifest), compiling,
//!   evaluating with captured builtins, Rego tests, decisions.
//! - [`strict_json`]: the one-pass check every untrusted JSON document passes first.
//! - [`http`]: the API: one router per resource, problem+json errors.
//! - [`console`]: the web console's embedded assets and its sessions
//!   (served by `http::console` at `/ui`).
//! - [`metrics`]: Prometheus metrics.
//! - [`keys`]: Ed25519 key files.
//! - [`evidence`]: the evidence format (hash chain, Merkle tree, signed
//!   checkpoints, receipts, export) and its offline verification. No IO.
//! - [`ledger`]: the ledger over the store: the group-commit writer, reads,
//!   proofs, exports, fsck.
//! - [`audit`], [`fanout`]: audit events and their delivery to sinks.
//! - [`model`]: pure models the store persists and the services move (the
//!   kernel's states and transitions).
//! - [`kernel`]: the execution kernel: executions, intents, steps, runners, review.
//! - [`skill`]: skill manifests (seed 000): parsing, visibility, output checks.
//! - [`workflow`]: workflow definitions (seed 002), the pure interpreter,
//!   and the conductor that runs them on the kernel.
//! - [`secrets`]: tenant sink secrets sealed at rest.
//! - [`supervise`]: restarts of background tasks, and which are down.
//! - [`tenancy`]: tenants, tokens and settings, each written with its entry.
//! - [`cli`]: the `warden` subcommands.
//!
//! See ARCHITECTURE.md for the data flow and the invariants.

pub mod app;
pub mod audit;
pub mod auth;
pub mod cli;
pub mod clock;
pub mod config;
pub mod console;
pub mod document;
pub mod evidence;
pub mod fanout;
pub mod http;
pub mod kernel;
pub mod keys;
pub mod ledger;
pub mod mcp;
pub mod metrics;
pub mod model;
pub mod policy;
pub mod secrets;
pub mod skill;
pub mod store;
pub mod strict_json;
pub mod supervise;
pub mod tenancy;
pub mod workflow;
