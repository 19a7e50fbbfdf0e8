//! Everything read back from the ledger's store: entries (parsed, or an
//! error naming the entry), proofs and exports. Nothing outside the ledger
//! and the store parses a stored entry itself.
//!
//! A proof is planned first ([`merkle::inclusion_nodes`],
//! [`merkle::consistency_nodes`]: which complete subtrees it needs), then
//! every subtree hash is fetched in one store round trip and folded. That
//! is O(log n) rows whatever the log's size.

use std::collections::BTreeSet;

use bytes::Bytes;
use tokio::sync::mpsc;

use crate::evidence::entry::{Entry, GENESIS_PREV};
use crate::evidence::export::{self, Header, KeyInfo};
use crate::evidence::merkle::{self, Frontier, Hash, NodeId};
use crate::store::{EntryRow, Store, StoreError};

#[derive(Debug, thiserror::Error)]
pub enum ReadError {
    #[error(transparent)]
    Store(#[from] StoreError),
    /// A subtree a proof needs is not in the store: rows were deleted.
    #[error("the ledger store lacks subtree {level}/{index}; run `warden fsck`")]
    Missing { level: u32, index: u64 },
    /// A stored entry does not read back as an entry (or as what its kind
    /// says it holds): its row was changed.
    #[error("ledger entry {index} does not read back: {why}; run `warden fsck`")]
    Unreadable { index: u64, why: String },
}

/// An entry read back: its stored row (index, hash, bytes) and the entry
/// the bytes hold.
#[derive(Debug, Clone)]
pub struct Stored {
    pub row: EntryRow,
    pub entry: Entry,
}

impl Stored {
    fn of(row: EntryRow) -> Result<Self, ReadError> {
        match Entry::from_bytes(&row.bytes) {
            Ok(entry) => Ok(Stored { row, entry }),
            Err(e) => Err(ReadError::Unreadable {
                index: row.index,
                why: e.to_string(),
            }),
        }
    }

    /// The entry's payload as `T` (a decision record, …), taken without a
    /// copy; an entry that does not hold one is [`ReadError::Unreadable`].
    pub fn into_payload<T: serde::de::DeserializeOwned>(self, what: &str) -> Result<T, ReadError> {
        let index = self.row.index;
        serde_json::from_value(self.entry.payload).map_err(|e| ReadError::Unreadable {
            index,
            why: format!("it is not a {what}: {e}"),
        })
    }
}

fn all(rows: Vec<EntryRow>) -> Result<Vec<Stored>, ReadError> {
    rows.into_iter().map(Stored::of).collect()
}

/// Entry `index` of the tenant's log, if written.
pub async fn entry(store: &Store, tenant_id: &str, index: u64) -> Result<Option<Stored>, ReadError> {
    store.ledger_entry(tenant_id, index).await?.map(Stored::of).transpose()
}

/// The first entry of `kind` recorded about `subject` (a decision id, an
/// event id, …).
pub async fn entry_about(
    store: &Store,
    tenant_id: &str,
    kind: &str,
    subject: &str,
) -> Result<Option<Stored>, ReadError> {
    store
        .ledger_entry_by_subject(tenant_id, kind, subject)
        .await?
        .map(Stored::of)
        .transpose()
}

/// Entries `[from, to)` of the tenant's log, at most `limit`, in order.
pub async fn entries(store: &Store, tenant_id: &str, from: u64, to: u64, limit: u32) -> Result<Vec<Stored>, ReadError> {
    all(store.ledger_entries(tenant_id, from, to, limit).await?)
}

/// Entries recorded about `subject` (a workflow run, …), after index
/// `after`, at most `limit`, in order.
pub async fn entries_about(
    store: &Store,
    tenant_id: &str,
    subject: &str,
    after: Option<u64>,
    limit: u32,
) -> Result<Vec<Stored>, ReadError> {
    all(store.ledger_entries_about(tenant_id, subject, after, limit).await?)
}

/// Entries of `kind` appended at `ts_from <= ts < ts_to` (epoch ms), after
/// index `after`, at most `limit`, in order.
pub async fn entries_of_kind(
    store: &Store,
    tenant_id: &str,
    kind: &str,
    (ts_from, ts_to): (i64, i64),
    after: Option<u64>,
    limit: u32,
) -> Result<Vec<Stored>, ReadError> {
    all(store
        .ledger_entries_of_kind(tenant_id, kind, ts_from, ts_to, after, limit)
        .await?)
}

/// The lowest level of complete subtrees the store keeps (besides the
/// leaves). Subtrees below it (at most 8 leaves) are recomputed from their
/// leaves when a proof needs them: that saves the writer seven of every
/// eight subtree rows, for at most 14 more leaf hashes read per proof.
pub const MIN_STORED_LEVEL: u32 = 4;

fn stored(id: &NodeId) -> bool {
    id.level == 0 || id.level >= MIN_STORED_LEVEL
}

/// Fetches the subtrees of a proof plan and folds each element.
async fn resolve(store: &Store, tenant_id: &str, plan: &[Vec<NodeId>]) -> Result<Vec<Hash>, ReadError> {
    let mut ids = BTreeSet::new();
    for id in plan.iter().flatten() {
        if stored(id) {
            ids.insert(*id);
        } else {
            ids.extend(leaves_of(*id));
        }
    }
    let ids: Vec<NodeId> = ids.into_iter().collect();
    let found = store.ledger_nodes(tenant_id, &ids).await?;
    let get = |id: &NodeId| {
        found.get(id).copied().ok_or(ReadError::Missing {
            level: id.level,
            index: id.index,
        })
    };
    plan.iter()
        .map(|part| {
            let hashes = part
                .iter()
                .map(|id| {
                    if stored(id) {
                        get(id)
                    } else {
                        let leaves = leaves_of(*id).iter().map(get).collect::<Result<Vec<_>, _>>()?;
                        Ok(merkle::root(&leaves))
                    }
                })
                .collect::<Result<Vec<_>, _>>()?;
            Ok(merkle::fold_range(&hashes).expect("proof elements are non-empty"))
        })
        .collect()
}

/// The leaves of a complete subtree.
fn leaves_of(id: NodeId) -> Vec<NodeId> {
    let first = id.index << id.level;
    (first..first + (1 << id.level))
        .map(|index| NodeId { level: 0, index })
        .collect()
}

/// `PATH(index, D[size])`; the caller checks `index < size <= log size`.
pub async fn inclusion(store: &Store, tenant_id: &str, index: u64, size: u64) -> Result<Vec<Hash>, ReadError> {
    let plan = merkle::inclusion_nodes(index, size).unwrap_or_default();
    resolve(store, tenant_id, &plan).await
}

/// `PROOF(first, D[size])`; the caller checks `0 < first <= size <= log size`.
pub async fn consistency(store: &Store, tenant_id: &str, first: u64, size: u64) -> Result<Vec<Hash>, ReadError> {
    let plan = merkle::consistency_nodes(first, size).unwrap_or_default();
    resolve(store, tenant_id, &plan).await
}

/// The peaks of the tree of the first `size` entries, largest first.
pub async fn frontier_at(store: &Store, tenant_id: &str, size: u64) -> Result<Vec<Hash>, ReadError> {
    let plan: Vec<Vec<NodeId>> = merkle::range_nodes(0, size).into_iter().map(|n| vec![n]).collect();
    resolve(store, tenant_id, &plan).await
}

/// Entries read per store query while exporting.
const PAGE: u32 = 2_000;

/// Streams the export of entries `[from, to)` (see `docs/ledger-format.md`)
/// into `out`, one or more lines per message. `to` must be the size of a
/// stored checkpoint. A store failure mid-way ends the stream with an
/// error, so the receiver sees a truncated file, never a silently short one.
pub async fn export(
    store: Store,
    tenant_id: String,
    header: (String, Vec<KeyInfo>, i64),
    from: u64,
    to: u64,
    out: mpsc::Sender<Result<Bytes, std::io::Error>>,
) {
    if let Err(e) = export_inner(&store, &tenant_id, header, from, to, &out).await {
        tracing::error!(error = %e, tenant = %tenant_id, "ledger export failed");
        let _ = out.send(Err(std::io::Error::other(e.to_string()))).await;
    }
}

async fn export_inner(
    store: &Store,
    tenant_id: &str,
    (log, keys, now_ms): (String, Vec<KeyInfo>, i64),
    from: u64,
    to: u64,
    out: &mpsc::Sender<Result<Bytes, std::io::Error>>,
) -> Result<(), ReadError> {
    let prev = match from {
        0 => GENESIS_PREV,
        n => {
            store
                .ledger_entry(tenant_id, n - 1)
                .await?
                .ok_or(ReadError::Missing { level: 0, index: n - 1 })?
                .hash
        }
    };
    let peaks = frontier_at(store, tenant_id, from).await?;
    let frontier = Frontier::from_peaks(from, peaks).expect("one peak per one bit of the size");
    let header = Header::new(&log, &frontier, prev, to, keys, now_ms);
    let send = |b: Vec<u8>| async move { out.send(Ok(Bytes::from(b))).await.is_ok() };
    if !send(export::header_line(&header)).await {
        return Ok(());
    }
    let mut at = from;
    while at < to {
        let page_end = (at + PAGE as u64).min(to);
        let entries = store.ledger_entries(tenant_id, at, page_end, PAGE).await?;
        let checkpoints = store.checkpoints(tenant_id, at, page_end, u32::MAX).await?;
        let mut cps = checkpoints.iter().peekable();
        let mut buf =
            Vec::with_capacity(entries.iter().map(|e| e.bytes.len() + 1).sum::<usize>() + 256 * checkpoints.len());
        // A missing row is exported as missing: the verifier names it.
        for e in &entries {
            buf.extend_from_slice(&export::entry_line(&e.bytes));
            while let Some(c) = cps.next_if(|c| c.size <= e.index + 1) {
                buf.extend_from_slice(&export::checkpoint_line(&c.note));
            }
        }
        for c in cps {
            buf.extend_from_slice(&export::checkpoint_line(&c.note));
        }
        if !send(buf).await {
            return Ok(());
        }
        at = page_end;
    }
    Ok(())
}
