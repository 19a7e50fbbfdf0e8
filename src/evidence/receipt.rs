//! The receipt an append answers with: enough to prove, offline, that the
//! entry is in the log under a signed checkpoint.
//!
//! Invariant: no IO.

use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct Receipt {
    /// The log's origin, as in its checkpoints.
    pub log: String,
    pub index: u64,
    /// The entry's leaf hash, hex.
    pub entry_hash: String,
    /// The size of the tree `checkpoint` commits to.
    pub tree_size: u64,
    /// The signed checkpoint (C2SP signed note) of the batch that made the
    /// entry durable.
    pub checkpoint: String,
    /// `PATH(index, D[tree_size])` (RFC 9162), hex hashes.
    pub inclusion: Vec<String>,
}
