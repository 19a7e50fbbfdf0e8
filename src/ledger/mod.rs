//! The evidence ledger: one append-only, hash-chained log per tenant whose
//! entries are the leaves of an RFC 6962-style Merkle tree (blake3), with
//! ed25519-signed checkpoints.
//!
//! - [`merkle`]: tree hashing, the append frontier, inclusion and
//!   consistency proofs and their verification. No IO.
//! - [`checkpoint`]: C2SP checkpoints as Ed25519 signed notes. No IO.
//! - [`canonical`]: RFC 8785 canonical JSON for payloads. No IO.
//! - [`entry`]: entry bytes (the only code deciding what is hashed) and the
//!   hash chain. No IO.
//!
//! Entry encoding, group-committed appends, checkpoints, stores, export and
//! offline verification are built on top of these.

pub mod canonical;
pub mod checkpoint;
pub mod entry;
pub mod merkle;
