//! The evidence ledger: one append-only, hash-chained log per tenant whose
//! entries are the leaves of a Merkle tree, with signed checkpoints, kept in
//! the store. Its format (what is hashed, signed and exported, and how an
//! auditor verifies it offline) is [`crate::evidence`]; this module is the
//! IO over it.
//!
//! - [`writer`]: the group-commit writer ([`Ledger`]): records (and the
//!   [`crate::store::Change`] that must commit with them) in, receipts out
//!   after commit; key rotation.
//! - [`read`]: entries read back, proofs, streamed exports.
//! - [`fsck`]: every log re-derived from the store.

pub mod fsck;
pub mod read;
pub mod writer;

pub use crate::evidence::receipt::Receipt;
pub use writer::{AppendError, Appended, Ledger, Record};
