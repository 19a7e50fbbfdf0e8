//! The ledger writer: group commit for every log.
//!
//! Request handlers call [`Ledger::append`] and wait. One task owns the
//! writing: it takes every record queued so far (up to `max_batch`), and in
//! one store transaction, for each tenant in the batch, locks the log's
//! head, chains the entries, extends the Merkle tree, stores the subtrees
//! of 16 leaves and more that each entry completes, signs one checkpoint, and moves the head; then it
//! commits durably and answers each caller with its [`Receipt`], which
//! carries the inclusion proof against that checkpoint. Nothing is
//! acknowledged before the commit that holds it.
//!
//! While one batch commits the next one gathers, so the number of commits
//! (fsyncs) grows with time, not with load.
//!
//! Invariants: entries, nodes, checkpoint and head of a log change in one
//! transaction; a batch commits only if the head it extended is still the
//! stored head (the head row moves conditionally, entry indexes are unique),
//! so no two checkpoints of a log are inconsistent, even with several
//! instances writing one PostgreSQL database.

use std::collections::HashMap;
use std::sync::{Arc, RwLock};
use std::time::{Duration, Instant};

use ed25519_dalek::SigningKey;
use serde_json::json;
use tokio::sync::{mpsc, oneshot};

use super::read::MIN_STORED_LEVEL;
use crate::clock::Clock;
use crate::evidence::canonical;
use crate::evidence::checkpoint::{Checkpoint, NoteSigner, sign_with};
use crate::evidence::entry::{Entry, GENESIS_PREV};
use crate::evidence::merkle::{self, Frontier, Hash, NodeId};
use crate::evidence::receipt::Receipt;
use crate::metrics::Metrics;
use crate::store::{Applied, Change, CheckpointRow, EntryRow, LedgerKeyRow, LedgerTx, LogHead, Store, StoreError};

/// What a caller asks to record.
#[derive(Debug, Clone)]
pub struct Record {
    pub tenant_id: String,
    /// `decision`, `bundle.upload`, `token.create`, …
    pub kind: &'static str,
    /// The authenticated caller, `token:<id> (<name>)`, or `system`.
    pub actor: String,
    /// What the entry is about (a decision id, a bundle revision, …), so it
    /// can be found again.
    pub subject: Option<String>,
    /// The payload, already canonical JSON.
    pub payload: Vec<u8>,
}

impl Record {
    pub fn new(tenant_id: &str, kind: &'static str, actor: &str, payload: &serde_json::Value) -> Self {
        Self {
            tenant_id: tenant_id.to_string(),
            kind,
            actor: actor.to_string(),
            subject: None,
            payload: canonical::to_vec(payload),
        }
    }

    pub fn about(mut self, subject: impl Into<String>) -> Self {
        self.subject = Some(subject.into());
        self
    }
}

#[derive(Debug, thiserror::Error)]
pub enum AppendError {
    #[error("the evidence ledger has {0} appends waiting; retry shortly")]
    Overloaded(usize),
    #[error("the evidence ledger could not commit: {0}")]
    Unavailable(String),
    #[error("the evidence ledger is shutting down")]
    Closed,
    /// The state change that came with the records found its rows moved
    /// since they were read; nothing of it was written.
    #[error("the {0} changed while this request was handled; read it again and retry")]
    Changed(&'static str),
    /// The state change would have written what exists already (a tenant
    /// name, a key id); nothing of it was written.
    #[error("{0} already exists")]
    Conflict(&'static str),
    /// A payload larger than `ledger.max_payload_bytes`: refused before
    /// anything was written.
    #[error(
        "a {kind} entry would hold {bytes} bytes, more than the ledger's limit of {max} (ledger.max_payload_bytes); nothing was recorded"
    )]
    TooLarge {
        kind: &'static str,
        bytes: usize,
        max: usize,
    },
    /// A payload nested deeper than [`crate::evidence::entry::MAX_PAYLOAD_DEPTH`],
    /// which no reader of the ledger would accept: refused before anything
    /// was written.
    #[error(
        "a {kind} entry would nest {depth} levels deep, more than the ledger's limit of {max}; nothing was recorded"
    )]
    TooDeep {
        kind: &'static str,
        depth: usize,
        max: usize,
    },
}

impl AppendError {
    pub fn code(&self) -> &'static str {
        match self {
            AppendError::Overloaded(_) => "ledger_overloaded",
            AppendError::Unavailable(_) => "ledger_unavailable",
            AppendError::Closed => "shutting_down",
            AppendError::Changed(_) => "concurrent_change",
            AppendError::Conflict(_) => "conflict",
            AppendError::TooLarge { .. } => "ledger_entry_too_large",
            AppendError::TooDeep { .. } => "ledger_entry_too_deep",
        }
    }

    /// Whether asking again may succeed (the store or the writer was
    /// busy or away), as opposed to a refusal of what was asked.
    pub fn is_transient(&self) -> bool {
        matches!(
            self,
            AppendError::Overloaded(_) | AppendError::Unavailable(_) | AppendError::Closed | AppendError::Changed(_)
        )
    }
}

/// Checks one record against the limits every reader shares: its size
/// (`max_bytes`) and its nesting ([`crate::evidence::entry::MAX_PAYLOAD_DEPTH`]).
pub fn check_record(record: &Record, max_bytes: usize) -> Result<(), AppendError> {
    if record.payload.len() > max_bytes {
        return Err(AppendError::TooLarge {
            kind: record.kind,
            bytes: record.payload.len(),
            max: max_bytes,
        });
    }
    crate::evidence::entry::payload_depth(&record.payload).map_err(|depth| AppendError::TooDeep {
        kind: record.kind,
        depth,
        max: crate::evidence::entry::MAX_PAYLOAD_DEPTH,
    })?;
    Ok(())
}

/// The outcome of a key rotation.
#[derive(Debug, Clone, serde::Serialize, utoipa::ToSchema)]
pub struct Rotation {
    pub previous: String,
    pub next: String,
    /// One rotation entry per existing log.
    pub receipts: Vec<Receipt>,
}

type Reply<T> = oneshot::Sender<Result<T, AppendError>>;

/// Records appended together, and the state change (if any) that must
/// commit with them or not at all.
struct Append {
    records: Vec<Record>,
    change: Option<Box<Change>>,
    reply: Reply<Written>,
}

/// What the writer answers an append: where each record landed, with the
/// batch's proofs to build its receipt from. The caller builds the
/// receipts ([`Written::appended`]), in its own task: proofs are the
/// largest part of a batch's work that needs no head, and built by the
/// writer they would delay every batch after this one.
struct Written {
    entries: Vec<(Arc<Proofs>, u64)>,
    pushed: Vec<i64>,
}

impl Written {
    fn appended(self) -> Appended {
        Appended {
            receipts: self.entries.iter().map(|(p, index)| p.receipt(*index)).collect(),
            pushed: self.pushed,
        }
    }
}

/// One log's batch, committed: its checkpoint, and every subtree an
/// inclusion proof of one of its entries against that checkpoint needs.
struct Proofs {
    log: String,
    size: u64,
    first: u64,
    checkpoint: String,
    /// The leaf hashes of the batch's entries, in order from `first`.
    leaves: Vec<Hash>,
    /// The old peaks and what the batch completed.
    known: HashMap<NodeId, Hash>,
}

impl Proofs {
    /// The receipt of the entry at `index`, one of the batch's.
    fn receipt(&self, index: u64) -> Receipt {
        let path = merkle::inclusion_nodes(index, self.size).expect("index below size");
        let inclusion = path
            .iter()
            .map(|ids| {
                let hashes: Vec<Hash> = ids.iter().map(|id| self.known[id]).collect();
                merkle::fold_range(&hashes)
                    .expect("a proof element has subtrees")
                    .to_hex()
                    .to_string()
            })
            .collect();
        Receipt {
            log: self.log.clone(),
            index,
            entry_hash: self.leaves[(index - self.first) as usize].to_hex().to_string(),
            tree_size: self.size,
            checkpoint: self.checkpoint.clone(),
            inclusion,
        }
    }
}

/// What one append committed: a receipt per record, in order, and the
/// numbers its change's stream messages were given, in order.
#[derive(Debug, Clone, Default)]
pub struct Appended {
    pub receipts: Vec<Receipt>,
    pub pushed: Vec<i64>,
}

enum Job {
    /// In one batch, one transaction.
    Append(Append),
    Rotate {
        actor: String,
        next: Box<SigningKey>,
        reply: Reply<Rotation>,
    },
    Stop,
    /// Makes the writer fail (unit tests of its supervision only).
    #[cfg(test)]
    Panic,
}

struct Shared {
    /// Woken after every commit (the audit fan-out waits on it).
    committed: Arc<tokio::sync::Notify>,
    /// Set while the ledger cannot commit: from a failed write to the next
    /// one that succeeds.
    fault: std::sync::Mutex<Option<LedgerFault>>,
    name: String,
    /// The verifier text of the key signing now.
    current: RwLock<String>,
    /// The key signing now: what a restarted writer signs with.
    signer: std::sync::Mutex<NoteSigner>,
}

/// How often a writer that cannot commit, and has nothing to write, tries
/// a small write to learn whether the store has recovered.
const PROBE_EVERY: Duration = Duration::from_secs(1);

/// How long a log found extended by another instance has its head read
/// with each batch rather than cached.
const CONTENDED_FOR: Duration = Duration::from_secs(10);

/// The writer's own sqlx connections: on PostgreSQL one for its batch and
/// one for the connection a failed batch leaves closing. On SQLite its
/// batches run on connections its thread steps (`store::statement`), and
/// these serve only its probe's cleanup.
const WRITER_CONNECTIONS: u32 = 2;

/// How many times a batch PostgreSQL aborted (a deadlock, a serialization
/// failure) is written again before its callers are told it failed.
const DEADLOCK_RETRIES: usize = 2;

/// Why the ledger cannot commit now.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LedgerFault {
    /// As [`StoreError::cause`] names it: `disk_full`, `busy`, `unreachable`, …
    pub cause: &'static str,
    /// The store's last error.
    pub error: String,
    /// When the first write of this fault failed, in Unix milliseconds.
    pub since_ms: i64,
    /// Batches failed since then (none of their entries was acknowledged).
    pub failed_batches: u64,
    /// When the last write failed (a batch, or a probe while idle), in Unix
    /// milliseconds.
    pub last_attempt_ms: i64,
}

/// Handle to the ledger; cheap to clone.
#[derive(Clone)]
pub struct Ledger {
    jobs: mpsc::Sender<Job>,
    shared: Arc<Shared>,
    depth: usize,
    max_payload: usize,
    task: Arc<tokio::sync::Mutex<Option<tokio::task::JoinHandle<()>>>>,
}

pub struct LedgerOptions {
    pub name: String,
    pub queue_depth: usize,
    pub max_batch: usize,
    /// The largest payload one entry may hold, in bytes.
    pub max_payload_bytes: usize,
    /// Where the writer task is supervised.
    pub tasks: Option<Arc<crate::supervise::Tasks>>,
}

impl Default for LedgerOptions {
    fn default() -> Self {
        let c = crate::config::LedgerConfig::default();
        LedgerOptions {
            name: c.name,
            queue_depth: c.queue_depth,
            max_batch: c.max_batch,
            max_payload_bytes: c.max_payload_bytes,
            tasks: None,
        }
    }
}

impl Ledger {
    /// Starts the writer with this signing key, which must be the store's
    /// current ledger key (or the first one, registered now).
    pub async fn start(
        store: Store,
        clock: Clock,
        key: SigningKey,
        options: LedgerOptions,
        metrics: Arc<Metrics>,
    ) -> anyhow::Result<Self> {
        let signer = NoteSigner::new(&options.name, key).map_err(|e| anyhow::anyhow!("ledger key: {e}"))?;
        let ours = signer.verifier().to_text();
        let keys = store.ledger_keys().await?;
        match keys.iter().find(|k| k.retired_at.is_none()) {
            None => {
                store
                    .insert_ledger_key(&LedgerKeyRow {
                        verifier: ours.clone(),
                        name: options.name.clone(),
                        key_id: hex::encode(signer.verifier().key_id()),
                        created_at: clock.now_ms(),
                        retired_at: None,
                    })
                    .await?;
            }
            Some(k) if k.verifier == ours => {}
            Some(k) => anyhow::bail!(
                "this instance's ledger signing key ({ours}) is not the store's current key ({}); every instance \
                 sharing a database must use the same key file, and ledger.name must not change",
                k.verifier
            ),
        }
        let (tx, rx) = mpsc::channel(options.queue_depth);
        let shared = Arc::new(Shared {
            committed: Arc::default(),
            fault: std::sync::Mutex::default(),
            name: options.name.clone(),
            current: RwLock::new(ours),
            signer: std::sync::Mutex::new(signer),
        });
        // The queue outlives a writer that fails: its successor takes it.
        let rx = Arc::new(tokio::sync::Mutex::new(rx));
        let tasks = options
            .tasks
            .clone()
            .unwrap_or_else(|| crate::supervise::Tasks::new(metrics.clone()));
        let max_batch = options.max_batch;
        let writer_shared = shared.clone();
        let task = crate::supervise::spawn(&tasks, "ledger_writer", true, None, move |ctx| {
            let writer = Writer {
                heads: HashMap::new(),
                contended: Default::default(),
                store: store.clone(),
                clock: clock.clone(),
                signer: writer_shared.signer.lock().expect("signer lock").clone(),
                shared: writer_shared.clone(),
                metrics: metrics.clone(),
                max_batch,
            };
            let rx = rx.clone();
            async move {
                ctx.up();
                // The writer runs on a thread of its own, with a runtime of
                // its own: each of a batch's statements is a round trip to
                // the store, and woken on a busy shared runtime the writer
                // would wait behind request handlers at every one of them.
                let (done, finished) = oneshot::channel::<Result<(), String>>();
                std::thread::Builder::new()
                    .name("ledger-writer".into())
                    .spawn(move || {
                        let ran = std::panic::catch_unwind(std::panic::AssertUnwindSafe(move || {
                            let runtime = tokio::runtime::Builder::new_current_thread()
                                .enable_all()
                                .build()
                                .expect("the ledger writer's runtime");
                            runtime.block_on(async move {
                                let mut writer = writer;
                                // Connections of its own, opened on its runtime.
                                let own = writer.store.dedicated(WRITER_CONNECTIONS);
                                writer.store = own.clone();
                                writer.run(rx).await;
                                own.close().await;
                            })
                        }));
                        let _ = done.send(ran.map_err(crate::supervise::panic_message));
                    })?;
                match finished.await {
                    Ok(Ok(())) => Ok(()),
                    Ok(Err(panic)) => Err(anyhow::anyhow!("panicked: {panic}")),
                    Err(_) => Err(anyhow::anyhow!("the ledger writer's thread ended without an answer")),
                }
            }
        });
        Ok(Self {
            jobs: tx,
            shared,
            depth: options.queue_depth,
            max_payload: options.max_payload_bytes,
            task: Arc::new(tokio::sync::Mutex::new(Some(task))),
        })
    }

    /// Why the ledger cannot commit, while it cannot: from a write that
    /// failed until one succeeds (a batch, or the writer's probe when idle).
    pub fn fault(&self) -> Option<LedgerFault> {
        self.shared.fault.lock().expect("fault lock").clone()
    }

    /// Notified after every commit.
    pub fn committed(&self) -> Arc<tokio::sync::Notify> {
        self.shared.committed.clone()
    }

    /// The origin (log name) of a tenant's log.
    pub fn origin(&self, tenant_id: &str) -> String {
        origin(&self.shared.name, tenant_id)
    }

    /// The verifier text of the key signing checkpoints now.
    pub fn current_key(&self) -> String {
        self.shared.current.read().expect("key lock").clone()
    }

    /// Appends one record and waits until it is durable.
    pub async fn append(&self, record: Record) -> Result<Receipt, AppendError> {
        let mut receipts = self.append_all(vec![record]).await?;
        Ok(receipts.pop().expect("one receipt per record"))
    }

    /// Appends records atomically (all in one transaction, in this order)
    /// and waits until they are durable; receipts in the same order.
    pub async fn append_all(&self, records: Vec<Record>) -> Result<Vec<Receipt>, AppendError> {
        if records.is_empty() {
            return Ok(Vec::new());
        }
        self.submit(records, None).await.map(|a| a.receipts)
    }

    /// Appends records and writes `change` in the same transaction: both
    /// commit, or neither. Fails with [`AppendError::Changed`] (and writes
    /// nothing) when the change's conditions no longer hold. The change's
    /// history rows are recorded by the first records, one each, in order
    /// (each row is written with its record's index).
    pub async fn append_with(&self, records: Vec<Record>, change: Change) -> Result<Vec<Receipt>, AppendError> {
        debug_assert!(
            records.len() >= change.history.len() && change.history.iter().zip(&records).all(|(h, r)| h.kind == r.kind),
            "a change's first records must be its history rows', in order"
        );
        self.submit(records, Some(Box::new(change))).await.map(|a| a.receipts)
    }

    /// [`Self::append_with`], answering also the numbers the change's
    /// stream messages were given (so their streams are handed them
    /// without reading them back).
    pub async fn append_change(&self, records: Vec<Record>, change: Change) -> Result<Appended, AppendError> {
        debug_assert!(
            records.len() >= change.history.len() && change.history.iter().zip(&records).all(|(h, r)| h.kind == r.kind),
            "a change's first records must be its history rows', in order"
        );
        self.submit(records, Some(Box::new(change))).await
    }

    /// The largest payload one entry may hold.
    pub fn max_payload_bytes(&self) -> usize {
        self.max_payload
    }

    async fn submit(&self, records: Vec<Record>, change: Option<Box<Change>>) -> Result<Appended, AppendError> {
        for r in &records {
            check_record(r, self.max_payload)?;
        }
        let (tx, rx) = oneshot::channel();
        let job = Job::Append(Append {
            records,
            change,
            reply: tx,
        });
        match self.jobs.try_send(job) {
            Ok(()) => {}
            Err(mpsc::error::TrySendError::Full(_)) => return Err(AppendError::Overloaded(self.depth)),
            Err(mpsc::error::TrySendError::Closed(_)) => return Err(AppendError::Closed),
        }
        Ok(rx.await.map_err(|_| self.dropped())??.appended())
    }

    /// Why a reply never came: shutting down, or the writer failed with
    /// the batch in hand (its successor carries on with the queue).
    fn dropped(&self) -> AppendError {
        if self.jobs.is_closed() {
            AppendError::Closed
        } else {
            AppendError::Unavailable(
                "the ledger writer failed while writing this batch; nothing in it was acknowledged".into(),
            )
        }
    }

    /// Hands signing over to `next`: appends a `ledger.key.rotate` entry to
    /// every log, under checkpoints signed by both keys, and records the new
    /// key as current, all in one transaction.
    pub async fn rotate(&self, actor: &str, next: SigningKey) -> Result<Rotation, AppendError> {
        let (tx, rx) = oneshot::channel();
        self.jobs
            .send(Job::Rotate {
                actor: actor.to_string(),
                next: Box::new(next),
                reply: tx,
            })
            .await
            .map_err(|_| AppendError::Closed)?;
        rx.await.map_err(|_| self.dropped())?
    }

    /// Makes the writer fail, as a bug would.
    #[cfg(test)]
    async fn fail_writer(&self) {
        let _ = self.jobs.send(Job::Panic).await;
    }

    /// Lets the writer finish everything queued, then stops it and waits.
    pub async fn stop(&self) {
        let _ = self.jobs.send(Job::Stop).await;
        if let Some(task) = self.task.lock().await.take() {
            let _ = task.await;
        }
    }
}

pub fn origin(name: &str, tenant_id: &str) -> String {
    format!("{name}/log/{tenant_id}")
}

struct Writer {
    store: Store,
    /// The heads this writer committed last. A batch extends a cached head
    /// without reading it, and moves it only if it is still that head; when
    /// another writer moved it, the batch is retried from the stored head.
    heads: HashMap<String, LogHead>,
    /// Logs another instance extended since this writer last did, and
    /// when it was last found so: for [`CONTENDED_FOR`] their heads are read
    /// (and locked) with each batch instead of trusting the cache, which
    /// would only make the batch be written twice.
    contended: std::sync::Mutex<HashMap<String, Instant>>,
    clock: Clock,
    signer: NoteSigner,
    shared: Arc<Shared>,
    metrics: Arc<Metrics>,
    max_batch: usize,
}

/// One log's part of a batch, ready to write.
struct LogBatch {
    tenant_id: String,
    rows: Vec<EntryRow>,
    nodes: Vec<(NodeId, Hash)>,
    checkpoint: CheckpointRow,
    head: LogHead,
    proofs: Arc<Proofs>,
}

impl Writer {
    /// Writes until stopped. The queue is held for the writer's lifetime;
    /// if the writer fails, the lock is released and a new writer takes it.
    async fn run(mut self, rx: Arc<tokio::sync::Mutex<mpsc::Receiver<Job>>>) {
        let mut rx = rx.lock().await;
        let mut batch: Vec<Append> = Vec::new();
        let mut size = 0;
        let mut held: Option<Job> = None;
        loop {
            let job = match held.take() {
                Some(j) => j,
                None => {
                    let next = if self.failing() {
                        // Idle while failing: probe the store every so often,
                        // so readiness recovers with it even when no traffic
                        // arrives (a balancer stops sending to an unready
                        // instance).
                        match tokio::time::timeout(PROBE_EVERY, rx.recv()).await {
                            Ok(j) => j,
                            Err(_) => {
                                self.probe().await;
                                continue;
                            }
                        }
                    } else {
                        rx.recv().await
                    };
                    match next {
                        Some(j) => j,
                        None => break,
                    }
                }
            };
            match job {
                Job::Stop => break,
                #[cfg(test)]
                Job::Panic => panic!("the writer was asked to fail"),
                Job::Rotate { actor, next, reply } => {
                    let out = self.rotate(&actor, *next).await;
                    let _ = reply.send(out);
                    continue;
                }
                Job::Append(a) => {
                    size += a.records.len().max(1);
                    batch.push(a);
                }
            }
            while size < self.max_batch {
                match rx.try_recv() {
                    Ok(Job::Append(a)) => {
                        size += a.records.len().max(1);
                        batch.push(a);
                    }
                    Ok(other) => {
                        held = Some(other);
                        break;
                    }
                    Err(_) => break,
                }
            }
            self.commit(&mut batch).await;
            size = 0;
        }
        // Finish what is queued, then refuse the rest by dropping it.
        rx.close();
        while let Ok(job) = rx.try_recv() {
            if let Job::Append(a) = job {
                size += a.records.len().max(1);
                batch.push(a);
                if size >= self.max_batch {
                    self.commit(&mut batch).await;
                    size = 0;
                }
            }
        }
        if !batch.is_empty() {
            self.commit(&mut batch).await;
        }
    }

    async fn commit(&mut self, batch: &mut Vec<Append>) {
        let started = Instant::now();
        let n: usize = batch.iter().map(|a| a.records.len()).sum();
        let mut outcome = self.write(batch, true).await;
        if let Err(StoreError::Conflict(_)) = &outcome {
            // Another instance appended to one of these logs.
            self.metrics.ledger_retry("log_head_moved");
            self.heads.clear();
            outcome = self.write(batch, false).await;
        }
        // PostgreSQL broke a deadlock with another instance's transaction
        // (their changes touched the same rows in another order) by
        // aborting this one: nothing was written; written again, it
        // usually commits.
        for _ in 0..DEADLOCK_RETRIES {
            match &outcome {
                Err(e) if e.is_aborted_by_the_database() => {
                    self.metrics.ledger_retry("aborted_by_the_database");
                    self.heads.clear();
                    outcome = self.write(batch, false).await;
                }
                _ => break,
            }
        }
        if outcome.is_err() {
            self.heads.clear();
        }
        match outcome {
            Ok(results) => {
                for (a, result) in batch.drain(..).zip(results) {
                    let _ = a.reply.send(result);
                }
                self.metrics.ledger_batch(n, started.elapsed());
                self.recovered("a batch committed");
                self.shared.committed.notify_waiters();
            }
            Err(e) => {
                let cause = e.cause();
                tracing::error!(error = %e, cause, entries = n, "ledger batch failed; nothing in it was acknowledged");
                self.metrics
                    .ledger_failed
                    .get_or_create(&crate::metrics::CauseLabels { cause })
                    .inc();
                self.failed(cause, &e, true);
                for a in batch.drain(..) {
                    let _ = a.reply.send(Err(AppendError::Unavailable(e.to_string())));
                }
                // A store that just failed (disk full, failover) gets a moment.
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
        }
    }

    fn failing(&self) -> bool {
        self.shared.fault.lock().expect("fault lock").is_some()
    }

    /// Notes a failed write: the ledger cannot commit until one succeeds.
    fn failed(&self, cause: &'static str, e: &StoreError, batch: bool) {
        let mut fault = self.shared.fault.lock().expect("fault lock");
        let f = fault.get_or_insert_with(|| LedgerFault {
            cause,
            error: String::new(),
            since_ms: self.clock.now_ms(),
            failed_batches: 0,
            last_attempt_ms: 0,
        });
        f.last_attempt_ms = self.clock.now_ms();
        f.cause = cause;
        f.error = e.to_string();
        if batch {
            f.failed_batches += 1;
        }
    }

    /// Notes a write that succeeded: the ledger commits again.
    fn recovered(&self, how: &str) {
        if let Some(f) = self.shared.fault.lock().expect("fault lock").take() {
            tracing::info!(
                cause = f.cause,
                failed_batches = f.failed_batches,
                down_ms = self.clock.now_ms() - f.since_ms,
                "the ledger commits again ({how})"
            );
        }
    }

    /// While failing and idle: one small durable write, to learn whether
    /// the store accepts writes again.
    async fn probe(&self) {
        match self.store.probe_write(self.clock.now_ms()).await {
            Ok(()) => self.recovered("a probe write committed"),
            Err(e) => {
                tracing::warn!(error = %e, cause = e.cause(), "the ledger's store still refuses writes");
                self.failed(e.cause(), &e, false);
            }
        }
    }

    /// Writes the batch in one transaction; receipts in the records' order.
    /// With `cached`, heads this writer committed are extended without
    /// reading them back.
    ///
    /// State changes go first, each in a savepoint: one whose conditions no
    /// longer hold is rolled back and its records left out (its caller gets
    /// [`AppendError::Changed`]); the others commit with their records, and
    /// their history rows get their entries' indexes.
    async fn write(&mut self, batch: &[Append], cached: bool) -> Result<Vec<Result<Written, AppendError>>, StoreError> {
        // Optimistically first: each change without a savepoint of its own.
        // Changes rarely fail (a row moved since it was read); when one
        // does, the batch is written again with each change isolated.
        let mut isolate = false;
        loop {
            let t0 = Instant::now();
            let mut tx = self.store.ledger_tx().await?;
            self.metrics.ledger_writer_phase("begin", t0);
            match self.write_in(&mut tx, batch, cached, isolate).await {
                Ok(Some((results, moved))) => {
                    // A failed COMMIT rolls back (or closes its connection) itself.
                    let t0 = Instant::now();
                    tx.commit().await?;
                    self.metrics.ledger_writer_phase("commit", t0);
                    self.heads.extend(moved);
                    return Ok(results);
                }
                Ok(None) => {
                    tx.rollback().await;
                    self.metrics.ledger_retry("stale_change");
                    isolate = true;
                }
                Err(e) => {
                    // Undone explicitly, so the connection goes back clean (or,
                    // when even ROLLBACK fails, is closed): a failed batch never
                    // poisons the next.
                    tx.rollback().await;
                    return Err(e);
                }
            }
        }
    }

    /// The statements of [`Self::write`], on its transaction; the results
    /// and the heads the batch moves once committed. Without `isolate`,
    /// None as soon as a change fails (the transaction must be rolled back).
    #[allow(clippy::type_complexity)]
    async fn write_in(
        &self,
        tx: &mut LedgerTx,
        batch: &[Append],
        cached: bool,
        isolate: bool,
    ) -> Result<Option<(Vec<Result<Written, AppendError>>, Vec<(String, LogHead)>)>, StoreError> {
        let now = self.clock.now_ms();
        let t0 = Instant::now();
        let mut applied = Vec::with_capacity(batch.len());
        let mut pushed = Vec::with_capacity(batch.len());
        if isolate {
            for a in batch {
                let (done, seqs) = match &a.change {
                    Some(change) => tx.apply(change).await?,
                    None => (Applied::Written, Vec::new()),
                };
                applied.push(done);
                pushed.push(seqs);
            }
        } else {
            // Every change at once: one statement per table and kind.
            let changes: Vec<&Change> = batch.iter().filter_map(|a| a.change.as_deref()).collect();
            let Some(seqs) = tx.apply_all_unisolated(&changes).await? else {
                return Ok(None);
            };
            let mut seqs = seqs.into_iter();
            for a in batch {
                applied.push(Applied::Written);
                pushed.push(match a.change {
                    Some(_) => seqs.next().unwrap_or_default(),
                    None => Vec::new(),
                });
            }
        }
        self.metrics.ledger_writer_phase("changes", t0);
        let records: Vec<&Record> = batch
            .iter()
            .zip(&applied)
            .filter(|(_, done)| **done == Applied::Written)
            .flat_map(|(a, _)| &a.records)
            .collect();
        let mut order: Vec<&str> = Vec::new();
        let mut groups: HashMap<&str, Vec<usize>> = HashMap::new();
        for (i, r) in records.iter().enumerate() {
            groups
                .entry(r.tenant_id.as_str())
                .or_insert_with(|| {
                    order.push(r.tenant_id.as_str());
                    Vec::new()
                })
                .push(i);
        }
        let mut entries: Vec<Option<(Arc<Proofs>, u64)>> = vec![None; records.len()];
        let mut moved = Vec::new();
        // Heads are locked in one order (the tenants' ids) by every
        // instance's writer, so two batches over the same logs never wait
        // on each other in a cycle.
        order.sort_unstable();
        let t0 = Instant::now();
        for tenant in order {
            let positions = &groups[tenant];
            let cache = if cached && !self.is_contended(tenant) {
                self.heads.get(tenant)
            } else {
                None
            };
            let head = match cache {
                Some(h) => Some(h.clone()),
                None => tx.lock_head(tenant).await?,
            };
            let previous = head.as_ref().map(|h| h.size);
            let items = positions.iter().map(|&i| records[i]);
            let log = self.extend(tenant, head, items, now, &[&self.signer])?;
            match tx.put_head(tenant, previous, &log.head, now).await {
                Err(StoreError::Conflict(what)) if cache.is_some() => {
                    self.contended
                        .lock()
                        .expect("contended lock")
                        .insert(tenant.to_string(), Instant::now());
                    return Err(StoreError::Conflict(what));
                }
                r => r?,
            }
            tx.insert_entries(tenant, &log.rows).await?;
            tx.insert_nodes(tenant, &log.nodes).await?;
            tx.insert_checkpoint(tenant, &log.checkpoint).await?;
            for (n, &i) in positions.iter().enumerate() {
                entries[i] = Some((log.proofs.clone(), log.proofs.first + n as u64));
            }
            moved.push((tenant.to_string(), log.head));
        }
        self.metrics.ledger_writer_phase("entries", t0);
        let mut entries = entries.into_iter().map(|e| e.expect("an entry per record"));
        let mut results = Vec::with_capacity(batch.len());
        let mut history = Vec::new();
        for ((a, done), pushed) in batch.iter().zip(&applied).zip(pushed) {
            match *done {
                Applied::Written => {}
                Applied::Moved(what) => {
                    self.metrics.change_refused("concurrent_change");
                    results.push(Err(AppendError::Changed(what)));
                    continue;
                }
                Applied::Exists(what) => {
                    self.metrics.change_refused("conflict");
                    results.push(Err(AppendError::Conflict(what)));
                    continue;
                }
            }
            let mine: Vec<(Arc<Proofs>, u64)> = entries.by_ref().take(a.records.len()).collect();
            if let Some(change) = &a.change {
                history.extend(change.history.iter().zip(mine.iter().map(|(_, index)| *index)));
            }
            results.push(Ok(Written { entries: mine, pushed }));
        }
        let t0 = Instant::now();
        tx.record_history(&history).await?;
        self.metrics.ledger_writer_phase("history", t0);
        Ok(Some((results, moved)))
    }

    /// Whether another instance extended this log lately.
    fn is_contended(&self, tenant_id: &str) -> bool {
        let mut contended = self.contended.lock().expect("contended lock");
        match contended.get(tenant_id) {
            Some(at) if at.elapsed() < CONTENDED_FOR => true,
            Some(_) => {
                contended.remove(tenant_id);
                false
            }
            None => false,
        }
    }

    /// Chains `records` onto the log, computing entries, completed
    /// subtrees, the checkpoint (signed by every one of `signers`) and each
    /// entry's receipt. No IO.
    fn extend<'r>(
        &self,
        tenant_id: &str,
        head: Option<LogHead>,
        records: impl Iterator<Item = &'r Record>,
        now_ms: i64,
        signers: &[&NoteSigner],
    ) -> Result<LogBatch, StoreError> {
        let (mut frontier, mut prev) = match head {
            None => (Frontier::default(), GENESIS_PREV),
            Some(h) => (
                Frontier::from_peaks(h.size, h.frontier).ok_or_else(|| {
                    StoreError::Corrupt(format!("the head of log {tenant_id} has a malformed frontier"))
                })?,
                h.last_hash,
            ),
        };
        // Every subtree a proof against the new size can need: the old peaks
        // and whatever this batch completes.
        let mut known: HashMap<NodeId, Hash> = merkle::range_nodes(0, frontier.size())
            .into_iter()
            .zip(frontier.peaks().iter().copied())
            .collect();
        let first = frontier.size();
        let mut rows = Vec::new();
        let mut nodes = Vec::new();
        for r in records {
            let index = frontier.size();
            let bytes = Entry::encode(index, now_ms, r.kind, &r.actor, &r.payload, &prev);
            let hash = merkle::leaf_hash(&bytes);
            for (id, h) in frontier.push(hash) {
                known.insert(id, h);
                if id.level >= MIN_STORED_LEVEL {
                    nodes.push((id, h));
                }
            }
            prev = hash;
            rows.push(EntryRow {
                index,
                ts: now_ms,
                kind: r.kind.to_string(),
                subject: r.subject.clone(),
                hash,
                bytes,
            });
        }
        let size = frontier.size();
        let root = frontier.root();
        let log = origin(&self.shared.name, tenant_id);
        let leaves = rows.iter().map(|r| r.hash).collect();
        let note = sign_with(
            signers,
            &Checkpoint {
                origin: log.clone(),
                size,
                root,
            },
        );
        Ok(LogBatch {
            tenant_id: tenant_id.to_string(),
            rows,
            nodes,
            proofs: Arc::new(Proofs {
                log,
                size,
                first,
                checkpoint: note.clone(),
                leaves,
                known,
            }),
            checkpoint: CheckpointRow {
                size,
                root,
                note,
                ts: now_ms,
            },
            head: LogHead {
                size,
                last_hash: prev,
                frontier: frontier.peaks().to_vec(),
            },
        })
    }

    async fn rotate(&mut self, actor: &str, next: SigningKey) -> Result<Rotation, AppendError> {
        let unavailable = |e: StoreError| AppendError::Unavailable(e.to_string());
        let next = NoteSigner::new(&self.shared.name, next).map_err(|e| AppendError::Unavailable(e.to_string()))?;
        let previous = self.signer.verifier().to_text();
        let next_text = next.verifier().to_text();
        let payload = canonical::to_vec(&json!({"previous": previous, "next": next_text}));
        let now = self.clock.now_ms();
        let mut tx = self.store.ledger_tx().await.map_err(unavailable)?;
        let written: Result<Vec<Receipt>, StoreError> = async {
            let mut receipts = Vec::new();
            for tenant in tx.logs().await? {
                let head = tx.lock_head(&tenant).await?;
                let previous = head.as_ref().map(|h| h.size);
                let record = Record {
                    tenant_id: tenant.clone(),
                    kind: "ledger.key.rotate",
                    actor: actor.to_string(),
                    subject: Some(next_text.clone()),
                    payload: payload.clone(),
                };
                let log = self.extend(&tenant, head, std::iter::once(&record), now, &[&self.signer, &next])?;
                tx.put_head(&log.tenant_id, previous, &log.head, now).await?;
                tx.insert_entries(&log.tenant_id, &log.rows).await?;
                tx.insert_nodes(&log.tenant_id, &log.nodes).await?;
                tx.insert_checkpoint(&log.tenant_id, &log.checkpoint).await?;
                receipts.extend((log.proofs.first..log.proofs.size).map(|i| log.proofs.receipt(i)));
            }
            let row = LedgerKeyRow {
                verifier: next_text.clone(),
                name: self.shared.name.clone(),
                key_id: hex::encode(next.verifier().key_id()),
                created_at: now,
                retired_at: None,
            };
            tx.rotate_key(&previous, &row, now).await?;
            Ok(receipts)
        }
        .await;
        let receipts = match written {
            Ok(r) => r,
            Err(e) => {
                tx.rollback().await;
                return Err(unavailable(e));
            }
        };
        self.heads.clear();
        tx.commit().await.map_err(unavailable)?;
        *self.shared.signer.lock().expect("signer lock") = next.clone();
        self.signer = next;
        *self.shared.current.write().expect("key lock") = next_text.clone();
        tracing::info!(previous = %previous, next = %next_text, "ledger signing key rotated");
        Ok(Rotation {
            previous,
            next: next_text,
            receipts,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::evidence::verify::verify_receipt;

    async fn ledger(dir: &std::path::Path) -> (Ledger, Arc<crate::supervise::Tasks>, Arc<Metrics>) {
        ledger_on(store(dir).await).await
    }

    /// A store of two shared connections, with tenant `ten_1`.
    async fn store(dir: &std::path::Path) -> Store {
        let url = format!("sqlite://{}", dir.join("w.db").display());
        let store = Store::connect(&url, 2).await.unwrap();
        add_tenant(&store, "1", "t", 7).await;
        store
    }

    /// Tenant `ten_<n>`, named `name`, with its token `tok_<n>`.
    async fn add_tenant(store: &Store, n: &str, name: &str, key: u8) {
        let tenant = crate::store::TenantRow {
            id: format!("ten_{n}"),
            name: name.into(),
            platform: false,
            require_signatures: false,
            rego_differences: "warn".into(),
            created_at: 0,
        };
        let token = crate::store::TokenRow::new(
            format!("tok_{n}"),
            &tenant.id,
            name,
            Default::default(),
            "test".into(),
            0,
        );
        store.create_tenant(&tenant, &token, &[key; 32]).await.unwrap();
    }

    async fn ledger_on(store: Store) -> (Ledger, Arc<crate::supervise::Tasks>, Arc<Metrics>) {
        let metrics = Arc::new(Metrics::new());
        let tasks = crate::supervise::Tasks::new(metrics.clone());
        let options = LedgerOptions {
            max_payload_bytes: 64 * 1024,
            tasks: Some(tasks.clone()),
            ..LedgerOptions::default()
        };
        let key = SigningKey::from_bytes(&[7; 32]);
        let ledger = Ledger::start(store, Clock::system(), key, options, metrics.clone())
            .await
            .unwrap();
        (ledger, tasks, metrics)
    }

    fn record(payload: serde_json::Value) -> Record {
        Record::new("ten_1", "audit.event", "system", &payload)
    }

    /// A writer that fails is replaced: the queue survives, appends go on
    /// in the same chain, and the failure is counted.
    #[tokio::test]
    async fn a_failed_writer_is_restarted_and_the_log_goes_on() {
        let dir = tempfile::tempdir().unwrap();
        let (ledger, tasks, metrics) = ledger(dir.path()).await;
        let first = ledger.append(record(json!({"n": 1}))).await.unwrap();
        ledger.fail_writer().await;
        let second = ledger.append(record(json!({"n": 2}))).await.unwrap();
        assert_eq!((first.index, second.index), (0, 1));
        assert_eq!(tasks.restarts("ledger_writer"), 1);
        assert!(tasks.down().is_empty(), "up again once it runs");
        assert!(
            metrics
                .render()
                .contains("warden_task_restarts_total{task=\"ledger_writer\"} 1")
        );
        ledger.stop().await;
    }

    /// The writer has connections of its own: while every connection of
    /// the store's shared pool is held (by slow readers, say), appends
    /// still commit, and the writer's time is counted by phase.
    #[tokio::test]
    async fn appends_commit_while_every_shared_connection_is_held() {
        let dir = tempfile::tempdir().unwrap();
        let store = store(dir.path()).await;
        let (ledger, _, metrics) = ledger_on(store.clone()).await;
        let held = store.hold_connections(2).await;
        let receipt = tokio::time::timeout(Duration::from_secs(5), ledger.append(record(json!({"n": 1}))))
            .await
            .expect("committed without a shared connection")
            .unwrap();
        assert_eq!(receipt.index, 0);
        drop(held);
        let text = metrics.render();
        for phase in ["begin", "changes", "entries", "history", "commit"] {
            assert!(
                text.contains(&format!("warden_ledger_writer_seconds_total{{phase=\"{phase}\"}}")),
                "{phase} not counted: {text}"
            );
        }
        ledger.stop().await;
    }

    /// Callers build their receipts from their batch's proofs: appends
    /// made together, to two logs, each get a receipt that verifies
    /// offline against the ledger's key and the entry's own bytes.
    #[tokio::test]
    async fn receipts_of_appends_batched_together_verify() {
        let dir = tempfile::tempdir().unwrap();
        let store = store(dir.path()).await;
        add_tenant(&store, "2", "u", 8).await;
        let (ledger, _, _) = ledger_on(store.clone()).await;
        let appends = (0..64).map(|n| {
            let ledger = ledger.clone();
            let tenant = if n % 2 == 0 { "ten_1" } else { "ten_2" };
            tokio::spawn(async move {
                let r = Record::new(tenant, "audit.event", "system", &json!({"n": n}));
                ledger.append_all(vec![r.clone(), r]).await.unwrap()
            })
        });
        let verifier = NoteSigner::new(&LedgerOptions::default().name, SigningKey::from_bytes(&[7; 32]))
            .unwrap()
            .verifier();
        let mut seen = std::collections::HashSet::new();
        for append in appends {
            let receipts = append.await.unwrap();
            assert_eq!(receipts.len(), 2);
            assert_eq!(
                receipts[1].index,
                receipts[0].index + 1,
                "one append's records are consecutive"
            );
            for r in receipts {
                let tenant = r.log.rsplit('/').next().unwrap().to_string();
                let entry = store.ledger_entry(&tenant, r.index).await.unwrap().unwrap();
                verify_receipt(&r, std::slice::from_ref(&verifier), Some(&entry.bytes))
                    .unwrap_or_else(|e| panic!("receipt {} of {tenant}: {e}", r.index));
                assert!(seen.insert((tenant, r.index)), "one entry per record");
            }
        }
        assert_eq!(seen.len(), 128);
        ledger.stop().await;
    }

    /// What no reader would accept is refused before it is queued.
    #[tokio::test]
    async fn payloads_past_the_limits_are_refused_at_append() {
        let dir = tempfile::tempdir().unwrap();
        let (ledger, _, _) = ledger(dir.path()).await;
        let big = ledger.append(record(json!({"blob": "x".repeat(70_000)}))).await;
        assert!(matches!(big, Err(AppendError::TooLarge { max: 65_536, .. })), "{big:?}");
        let mut deep = json!(1);
        for _ in 0..crate::evidence::entry::MAX_PAYLOAD_DEPTH {
            deep = json!([deep]);
        }
        let r = ledger.append(record(deep.clone())).await.unwrap();
        assert_eq!(r.index, 0, "the deepest payload allowed is written");
        let deeper = ledger.append(record(json!([deep]))).await;
        assert!(
            matches!(
                deeper,
                Err(AppendError::TooDeep {
                    depth: 101,
                    max: 100,
                    ..
                })
            ),
            "{deeper:?}"
        );
        assert_eq!(deeper.unwrap_err().code(), "ledger_entry_too_deep");
        ledger.stop().await;
    }
}
