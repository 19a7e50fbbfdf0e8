//! Warden's audit fan-out.
//!
//! This crate will hold the delivery engine (durable cursor over the evidence
//! ledger, batching, retry with backoff and jitter, dead letters) and one
//! module per SIEM sink. It deliberately does not depend on the `warden`
//! crate: sinks see events and cursors, never the server's internals.
//!
//! It carries no code yet; nothing in the server links to it.
