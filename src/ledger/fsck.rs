//! `warden fsck`: re-derives every log from the rows in the store and names
//! what does not follow: an entry edited, deleted or reordered, a subtree
//! hash or checkpoint that does not match the entries, a checkpoint
//! signature that does not verify, a head that disagrees with its log.
//!
//! It trusts nothing it reads: entry bytes are re-hashed and re-parsed, the
//! chain and the tree are rebuilt from them, and every stored hash is
//! compared with the rebuilt one.

use serde::Serialize;

use super::read::MIN_STORED_LEVEL;
use super::writer::origin;
use crate::evidence::checkpoint::{self, NoteVerifier};
use crate::evidence::entry::{Entry, GENESIS_PREV};
use crate::evidence::merkle::{self, Frontier, Hash};
use crate::store::{Store, StoreError};

/// Most problems reported per log; the first is the one that matters.
const MAX_PROBLEMS: usize = 50;
const PAGE: u32 = 5_000;

#[derive(Debug, Clone, Serialize)]
pub struct Problem {
    /// The entry (or, for a checkpoint, the tree size) concerned.
    pub index: u64,
    pub what: String,
}

#[derive(Debug, Clone, Serialize)]
pub struct LogReport {
    pub tenant_id: String,
    pub log: String,
    pub entries: u64,
    pub checkpoints: u64,
    pub root: String,
    pub problems: Vec<Problem>,
}

impl LogReport {
    fn problem(&mut self, index: u64, what: impl Into<String>) {
        if self.problems.len() < MAX_PROBLEMS {
            self.problems.push(Problem {
                index,
                what: what.into(),
            });
        }
    }
}

/// Checks every log (or only `tenant`). `progress` receives entries checked.
pub async fn check(
    store: &Store,
    name: &str,
    tenant: Option<&str>,
    progress: &mut (dyn FnMut(u64) + Send),
) -> Result<Vec<LogReport>, StoreError> {
    let keys: Vec<NoteVerifier> = store
        .ledger_keys()
        .await?
        .iter()
        .filter_map(|k| NoteVerifier::parse(&k.verifier).ok())
        .collect();
    let logs = match tenant {
        Some(t) => vec![t.to_string()],
        None => store.ledger_logs().await?,
    };
    let mut out = Vec::new();
    for tenant_id in logs {
        out.push(check_log(store, name, &tenant_id, &keys, progress).await?);
    }
    Ok(out)
}

async fn check_log(
    store: &Store,
    name: &str,
    tenant_id: &str,
    keys: &[NoteVerifier],
    progress: &mut (dyn FnMut(u64) + Send),
) -> Result<LogReport, StoreError> {
    let log = origin(name, tenant_id);
    let mut report = LogReport {
        tenant_id: tenant_id.to_string(),
        log: log.clone(),
        entries: 0,
        checkpoints: 0,
        root: String::new(),
        problems: Vec::new(),
    };
    let Some(head) = store.ledger_head(tenant_id).await? else {
        report.problem(0, "the log has no head row");
        return Ok(report);
    };
    let latest = store.latest_checkpoint(tenant_id).await?.map(|c| c.size).unwrap_or(0);
    let end = head.size.max(latest);
    let mut frontier = Frontier::default();
    let mut prev = GENESIS_PREV;
    // Roots at every size a checkpoint names.
    let mut cps = store
        .checkpoints(tenant_id, 0, end, u32::MAX)
        .await?
        .into_iter()
        .peekable();
    let mut expected = 0u64;
    let mut at = 0u64;
    while at < end {
        let rows = store.ledger_entries(tenant_id, at, end, PAGE).await?;
        if rows.is_empty() {
            report.problem(expected, format!("entries {expected}..{end} are missing (deleted)"));
            break;
        }
        let mut stored_nodes = Vec::new();
        for row in &rows {
            if row.index != expected {
                // Later faults are still named: the check goes on from here.
                report.problem(expected, format!("entry {expected} is missing (deleted)"));
            }
            let index = row.index;
            let hash = merkle::leaf_hash(&row.bytes);
            if hash != row.hash {
                report.problem(
                    index,
                    format!("entry {index}: its bytes do not match its stored hash (edited)"),
                );
            }
            match Entry::from_bytes(&row.bytes) {
                Err(e) => report.problem(index, format!("entry {index}: {e}")),
                Ok(e) => {
                    if e.index != index {
                        report.problem(
                            index,
                            format!("entry {index}: its bytes say index {} (entries reordered)", e.index),
                        );
                    }
                    if e.prev != prev {
                        report.problem(
                            index,
                            format!(
                                "entry {index}: prev does not match the hash of entry {} (an entry was edited, deleted or reordered)",
                                index.saturating_sub(1)
                            ),
                        );
                    }
                    if e.kind != row.kind || e.ts != row.ts {
                        report.problem(
                            index,
                            format!("entry {index}: kind or ts columns differ from its bytes"),
                        );
                    }
                }
            }
            for (id, h) in frontier.push(hash) {
                if id.level >= MIN_STORED_LEVEL {
                    stored_nodes.push((id, h));
                }
            }
            prev = hash;
            expected = index + 1;
            while let Some(c) = cps.next_if(|c| c.size <= frontier.size()) {
                report.checkpoints += 1;
                check_checkpoint(&mut report, &log, keys, &c.note, c.size, c.root, &frontier);
            }
        }
        // Subtree hashes: each one the rebuilt tree completed on this page.
        let mut by_level: std::collections::BTreeMap<u32, Vec<(u64, Hash)>> = Default::default();
        for (id, h) in stored_nodes {
            by_level.entry(id.level).or_default().push((id.index, h));
        }
        for (level, want) in by_level {
            let (lo, hi) = (want[0].0, want[want.len() - 1].0 + 1);
            let have = store.ledger_level(tenant_id, level, lo, hi).await?;
            let have: std::collections::HashMap<u64, Hash> = have.into_iter().collect();
            for (i, h) in want {
                if have.get(&i) != Some(&h) {
                    let first = i << level;
                    // Named at the entry that completes it: an edited entry
                    // is reported before the subtrees it spoils.
                    report.problem(
                        ((i + 1) << level) - 1,
                        format!(
                            "subtree {level}/{i} (entries {first}..{}) is missing or does not match the entries",
                            (i + 1) << level
                        ),
                    );
                }
            }
        }
        at = rows.last().map(|r| r.index + 1).unwrap_or(end);
        report.entries += rows.len() as u64;
        progress(rows.len() as u64);
    }
    for c in cps {
        report.problem(c.size, format!("checkpoint at size {} is beyond the entries", c.size));
    }
    if frontier.size() != head.size {
        report.problem(
            frontier.size(),
            format!(
                "the head says {} entries but the log holds {}",
                head.size,
                frontier.size()
            ),
        );
    } else if head.last_hash != prev || head.frontier != frontier.peaks() {
        report.problem(head.size, "the head's last hash or frontier does not match the entries");
    }
    report.root = frontier.root().to_hex().to_string();
    report.problems.sort_by_key(|p| p.index);
    Ok(report)
}

fn check_checkpoint(
    report: &mut LogReport,
    log: &str,
    keys: &[NoteVerifier],
    note: &str,
    size: u64,
    stored_root: Hash,
    frontier: &Frontier,
) {
    if size != frontier.size() {
        return report.problem(size, format!("checkpoint at size {size}: entries below it are missing"));
    }
    let root = frontier.root();
    match checkpoint::open_all(note, keys) {
        Err(e) => report.problem(size, format!("checkpoint at size {size}: {e}")),
        Ok((c, _)) => {
            if c.origin != log || c.size != size {
                report.problem(size, format!("checkpoint at size {size}: names another log or size"));
            } else if c.root != root || stored_root != root {
                report.problem(
                    size,
                    format!("checkpoint at size {size}: root does not match the entries"),
                );
            }
        }
    }
}
