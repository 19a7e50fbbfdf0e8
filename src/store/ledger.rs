//! The ledger's tables: log heads, entries, subtree hashes, checkpoints and
//! signing keys.
//!
//! Writes happen only through a [`LedgerTx`], which the ledger writer opens
//! once per batch: it locks the heads it extends (`FOR UPDATE` on
//! PostgreSQL; SQLite's `BEGIN IMMEDIATE` takes the write lock up front), so
//! two writers, even on two instances, never extend a log from the same head.

use std::collections::HashMap;

use sqlx::Row;
use sqlx::pool::PoolConnection;

use super::statement::direct::DirectConn;
use super::statement::{QueryBuilder, Value, query};
use super::{Pool, Result, Store, StoreError};
use crate::evidence::merkle::{Hash, NodeId};

/// The head of one log.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LogHead {
    pub size: u64,
    pub last_hash: Hash,
    /// Peaks of the Merkle tree, largest first.
    pub frontier: Vec<Hash>,
}

#[derive(Debug, Clone)]
pub struct EntryRow {
    pub index: u64,
    pub ts: i64,
    pub kind: String,
    /// What the entry is about (a decision id, …), to find it by.
    pub subject: Option<String>,
    pub hash: Hash,
    pub bytes: Vec<u8>,
}

#[derive(Debug, Clone)]
pub struct CheckpointRow {
    pub size: u64,
    pub root: Hash,
    pub note: String,
    pub ts: i64,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LedgerKeyRow {
    /// `name+keyid+base64 key`, as checkpoints' verifiers read it.
    pub verifier: String,
    pub name: String,
    pub key_id: String,
    pub created_at: i64,
    pub retired_at: Option<i64>,
}

/// Bytes the store probe writes: four SQLite pages.
const PROBE_BYTES: usize = 16 * 1024;

/// Rows per multi-row INSERT: well under SQLite's 32,766 bound parameters.
const INSERT_CHUNK: usize = 1000;

fn hash_of(bytes: &[u8], what: &str) -> Result<Hash> {
    let arr: [u8; 32] = bytes
        .try_into()
        .map_err(|_| StoreError::Corrupt(format!("{what} is not a 32-byte hash")))?;
    Ok(Hash::from_bytes(arr))
}

fn frontier_of(bytes: &[u8]) -> Result<Vec<Hash>> {
    if !bytes.len().is_multiple_of(32) {
        return Err(StoreError::Corrupt(
            "ledger frontier length is not a multiple of 32".into(),
        ));
    }
    bytes.chunks(32).map(|c| hash_of(c, "a frontier peak")).collect()
}

pub(super) fn u64_of(v: i64, what: &str) -> Result<u64> {
    u64::try_from(v).map_err(|_| StoreError::Corrupt(format!("{what} is negative")))
}

macro_rules! entry_from_row {
    ($r:expr) => {
        EntryRow {
            index: u64_of($r.try_get("idx")?, "entry index")?,
            ts: $r.try_get("ts")?,
            kind: $r.try_get("kind")?,
            subject: $r.try_get("subject")?,
            hash: hash_of(&$r.try_get::<Vec<u8>, _>("hash")?, "an entry hash")?,
            bytes: $r.try_get("bytes")?,
        }
    };
}

macro_rules! checkpoint_from_row {
    ($r:expr) => {
        CheckpointRow {
            size: u64_of($r.try_get("size")?, "checkpoint size")?,
            root: hash_of(&$r.try_get::<Vec<u8>, _>("root")?, "a checkpoint root")?,
            note: $r.try_get("note")?,
            ts: $r.try_get("ts")?,
        }
    };
}

macro_rules! key_from_row {
    ($r:expr) => {
        LedgerKeyRow {
            verifier: $r.try_get("verifier")?,
            name: $r.try_get("name")?,
            key_id: $r.try_get("key_id")?,
            created_at: $r.try_get("created_at")?,
            retired_at: $r.try_get("retired_at")?,
        }
    };
}

const ENTRY_COLUMNS: &str = "idx, ts, kind, subject, hash, bytes";

/// One batch's transaction, on a connection it holds until it ends.
///
/// It ends in exactly one of three ways: [`LedgerTx::commit`] succeeds;
/// [`LedgerTx::rollback`] succeeds; or neither did (a failed COMMIT whose
/// ROLLBACK failed too, or a transaction dropped unfinished), and then the
/// connection is closed instead of being kept, so the next batch opens a
/// fresh one. A batch that failed therefore never leaves a connection
/// inside a transaction for the next batch.
///
/// On SQLite its statements run on the calling thread (the ledger
/// writer's own), which waits for SQLite, and for the write lock up to the
/// busy timeout ([`super::statement`]).
pub struct LedgerTx {
    pub(super) conn: TxConn,
    /// BEGIN ran, and neither COMMIT nor ROLLBACK has succeeded since.
    open: bool,
}

pub(super) enum TxConn {
    Direct(DirectConn),
    Postgres(PoolConnection<sqlx::Postgres>),
}

impl TxConn {
    /// Closes the connection instead of keeping it for the next batch.
    fn discard(&mut self) {
        match self {
            TxConn::Direct(c) => c.discard(),
            TxConn::Postgres(c) => c.close_on_drop(),
        }
    }
}

impl Drop for LedgerTx {
    fn drop(&mut self) {
        if self.open {
            tracing::warn!(
                "a ledger transaction ended unfinished (its BEGIN, a statement or its COMMIT failed or was cancelled); its connection is closed"
            );
            // Closing it ends the transaction in the database (SQLite and
            // PostgreSQL roll back what a closed connection left open).
            self.conn.discard();
        }
    }
}

impl LedgerTx {
    /// Runs one statement without parameters (a savepoint's) in the batch.
    pub(super) async fn execute(&mut self, sql: &'static str) -> Result<()> {
        query(sql).execute(&mut self.conn).await.map(|_| ())
    }

    /// The head of the tenant's log, locked until commit; None for a log
    /// with no entries yet.
    pub async fn lock_head(&mut self, tenant_id: &str) -> Result<Option<LogHead>> {
        let sql = match self.conn {
            // SQLite's BEGIN IMMEDIATE holds the write lock already.
            TxConn::Direct(_) => "SELECT size, last_hash, frontier FROM ledger_logs WHERE tenant_id = $1",
            TxConn::Postgres(_) => "SELECT size, last_hash, frontier FROM ledger_logs WHERE tenant_id = $1 FOR UPDATE",
        };
        let Some(row) = query(sql).bind(tenant_id).fetch_all(&mut self.conn).await?.pop() else {
            return Ok(None);
        };
        let [size, last, frontier]: [Value; 3] = row
            .try_into()
            .map_err(|_| StoreError::Corrupt("a log head row is not three columns".into()))?;
        Ok(Some(LogHead {
            size: u64_of(size.int("log size")?, "log size")?,
            last_hash: hash_of(&last.blob("a log's last hash")?, "a log's last hash")?,
            frontier: frontier_of(&frontier.blob("a log's frontier")?)?,
        }))
    }

    pub async fn insert_entries(&mut self, tenant_id: &str, entries: &[EntryRow]) -> Result<()> {
        for chunk in entries.chunks(INSERT_CHUNK) {
            let mut q =
                QueryBuilder::new("INSERT INTO ledger_entries (tenant_id, idx, ts, kind, subject, hash, bytes) ");
            q.push_values(chunk, |mut b, e| {
                b.push_bind(tenant_id)
                    .push_bind(e.index as i64)
                    .push_bind(e.ts)
                    .push_bind(e.kind.as_str())
                    .push_bind(e.subject.as_deref())
                    .push_bind(&e.hash.as_bytes()[..])
                    .push_bind(&e.bytes[..]);
            });
            q.build()
                .execute(&mut self.conn)
                .await
                .map_err(super::conflict("an entry at this index"))?;
        }
        Ok(())
    }

    /// Subtree hashes above the leaves (level ≥ 1).
    pub async fn insert_nodes(&mut self, tenant_id: &str, nodes: &[(NodeId, Hash)]) -> Result<()> {
        for chunk in nodes.chunks(INSERT_CHUNK) {
            let mut q = QueryBuilder::new("INSERT INTO ledger_nodes (tenant_id, level, idx, hash) ");
            q.push_values(chunk, |mut b, (id, h)| {
                b.push_bind(tenant_id)
                    .push_bind(id.level as i32)
                    .push_bind(id.index as i64)
                    .push_bind(&h.as_bytes()[..]);
            });
            q.build().execute(&mut self.conn).await?;
        }
        Ok(())
    }

    pub async fn insert_checkpoint(&mut self, tenant_id: &str, c: &CheckpointRow) -> Result<()> {
        query("INSERT INTO ledger_checkpoints (tenant_id, size, root, note, ts) VALUES ($1, $2, $3, $4, $5)")
            .bind(tenant_id)
            .bind(c.size as i64)
            .bind(&c.root.as_bytes()[..])
            .bind(&c.note)
            .bind(c.ts)
            .execute(&mut self.conn)
            .await
            .map(|_| ())
    }

    /// Moves the head from `previous` (the head this batch extended; None
    /// for a new log) to `head`. Fails with `Conflict` when the stored head
    /// is no longer `previous`: another writer moved it first.
    pub async fn put_head(
        &mut self,
        tenant_id: &str,
        previous: Option<u64>,
        head: &LogHead,
        now_ms: i64,
    ) -> Result<()> {
        let frontier: Vec<u8> = head.frontier.iter().flat_map(|h| *h.as_bytes()).collect();
        let moved = match previous {
            None => query(
                "INSERT INTO ledger_logs (tenant_id, size, last_hash, frontier, updated_at) VALUES ($1, $2, $3, $4, $5)",
            )
            .bind(tenant_id)
            .bind(head.size as i64)
            .bind(&head.last_hash.as_bytes()[..])
            .bind(&frontier)
            .bind(now_ms)
            .execute(&mut self.conn)
            .await
            .map_err(super::conflict("a newer log head"))?,
            Some(old) => query(
                "UPDATE ledger_logs SET size = $2, last_hash = $3, frontier = $4, updated_at = $5 \
                 WHERE tenant_id = $1 AND size = $6",
            )
            .bind(tenant_id)
            .bind(head.size as i64)
            .bind(&head.last_hash.as_bytes()[..])
            .bind(&frontier)
            .bind(now_ms)
            .bind(old as i64)
            .execute(&mut self.conn)
            .await?,
        };
        if moved != 1 {
            return Err(StoreError::Conflict("a newer log head"));
        }
        Ok(())
    }

    /// Every tenant whose log has entries.
    pub async fn logs(&mut self) -> Result<Vec<String>> {
        let rows = query("SELECT tenant_id FROM ledger_logs ORDER BY tenant_id")
            .fetch_all(&mut self.conn)
            .await?;
        rows.into_iter()
            .map(|r| {
                r.into_iter()
                    .next()
                    .ok_or_else(|| StoreError::Corrupt("a log row without its tenant".into()))?
                    .text("a log's tenant")
            })
            .collect()
    }

    /// Retires the current signing key and makes `next` current.
    pub async fn rotate_key(&mut self, previous: &str, next: &LedgerKeyRow, now_ms: i64) -> Result<()> {
        let done = query("UPDATE ledger_keys SET retired_at = $1 WHERE verifier = $2 AND retired_at IS NULL")
            .bind(now_ms)
            .bind(previous)
            .execute(&mut self.conn)
            .await?;
        if done != 1 {
            return Err(StoreError::Conflict("a newer ledger signing key"));
        }
        query("INSERT INTO ledger_keys (verifier, name, key_id, created_at, retired_at) VALUES ($1, $2, $3, $4, NULL)")
            .bind(&next.verifier)
            .bind(&next.name)
            .bind(&next.key_id)
            .bind(next.created_at)
            .execute(&mut self.conn)
            .await?;
        Ok(())
    }

    /// Commits the batch. When COMMIT fails, nothing of the batch is
    /// durable: the transaction is rolled back (or its connection closed)
    /// before the error is returned.
    pub async fn commit(mut self) -> Result<()> {
        match self.execute("COMMIT").await {
            Ok(()) => {
                self.open = false;
                Ok(())
            }
            Err(e) => {
                self.rollback().await;
                Err(e)
            }
        }
    }

    /// Undoes everything the batch wrote. When ROLLBACK itself fails (on
    /// SQLite a full disk may already have rolled the transaction back),
    /// the connection is closed rather than reused.
    pub async fn rollback(mut self) {
        match self.execute("ROLLBACK").await {
            Ok(()) => self.open = false,
            Err(e) => {
                tracing::warn!(error = %e, "rolling back a failed ledger batch failed; its connection is closed");
                self.open = false;
                self.conn.discard();
            }
        }
    }
}

/// How a batch transaction begins on PostgreSQL, in one round trip: every
/// statement of a batch finds its rows by key (a batch's rows joined to
/// their tables on the primary key, heads by tenant, messages by
/// recipient), and the planner is told so for the transaction (no
/// sequential scans, hash joins or merge joins where an index answers; a
/// statement no index answers still runs). Otherwise it plans from the
/// tables' statistics, and until autovacuum analyses a table that grew (a
/// minute at the soonest) a batch's update of steps read the whole of
/// `kernel_steps` (a sequential scan and a hash join, planned for the
/// hundred rows it had) at every batch. `SET LOCAL` ends with the
/// transaction, so a connection pooler sharing server connections between
/// transactions passes nothing on.
const BEGIN_KEYED: &str = "BEGIN; SET LOCAL enable_seqscan = off; SET LOCAL enable_hashjoin = off; \
    SET LOCAL enable_mergejoin = off";

impl Store {
    /// Opens a batch transaction holding the database's write lock
    /// (SQLite) or ready to lock log heads (PostgreSQL). On SQLite the
    /// calling thread waits for the lock: only the ledger writer's own
    /// thread calls it.
    pub async fn ledger_tx(&self) -> Result<LedgerTx> {
        // Open from before BEGIN is sent: a BEGIN that fails or is
        // cancelled midway closes the connection rather than keep it in
        // an unknown state.
        let mut tx = LedgerTx {
            conn: match (&self.pool, &self.direct) {
                (Pool::Sqlite(_), Some(direct)) => TxConn::Direct(direct.acquire()?),
                (Pool::Postgres(p), _) => TxConn::Postgres(p.acquire().await?),
                (Pool::Sqlite(_), None) => {
                    return Err(StoreError::Corrupt(
                        "an SQLite store without its ledger connections".into(),
                    ));
                }
            },
            open: true,
        };
        match &mut tx.conn {
            TxConn::Direct(_) => tx.execute("BEGIN IMMEDIATE").await?,
            TxConn::Postgres(c) => {
                sqlx::raw_sql(BEGIN_KEYED).execute(&mut **c).await?;
            }
        }
        Ok(tx)
    }

    /// One small durable write through a batch transaction, as the ledger
    /// writer's batches make: a row of incompressible bytes, larger than any
    /// page's free space, committed, then deleted. Fails as a batch would
    /// while the store cannot take writes (a full disk, a read-only or lost
    /// database).
    pub async fn probe_write(&self, now_ms: i64) -> Result<()> {
        let mut filler = vec![0u8; PROBE_BYTES];
        blake3::Hasher::new()
            .update(&now_ms.to_le_bytes())
            .finalize_xof()
            .fill(&mut filler);
        let mut tx = self.ledger_tx().await?;
        let inserted = query("INSERT INTO store_probe (at, filler) VALUES ($1, $2)")
            .bind(now_ms)
            .bind(&filler)
            .execute(&mut tx.conn)
            .await;
        match inserted {
            Ok(_) => tx.commit().await?,
            Err(e) => {
                tx.rollback().await;
                return Err(e);
            }
        }
        with_pool!(self, p => sqlx::query("DELETE FROM store_probe").execute(p).await.map(|_| ()))?;
        Ok(())
    }

    pub async fn ledger_head(&self, tenant_id: &str) -> Result<Option<LogHead>> {
        let row = with_pool!(self, p => {
            let r = sqlx::query("SELECT size, last_hash, frontier FROM ledger_logs WHERE tenant_id = $1")
                .bind(tenant_id).fetch_optional(p).await?;
            match r {
                None => None,
                Some(r) => Some((r.try_get::<i64, _>("size")?, r.try_get::<Vec<u8>, _>("last_hash")?, r.try_get::<Vec<u8>, _>("frontier")?)),
            }
        });
        row.map(|(size, last, frontier)| {
            Ok(LogHead {
                size: u64_of(size, "log size")?,
                last_hash: hash_of(&last, "a log's last hash")?,
                frontier: frontier_of(&frontier)?,
            })
        })
        .transpose()
    }

    /// Tenants with a log, in id order.
    pub async fn ledger_logs(&self) -> Result<Vec<String>> {
        with_pool!(self, p => {
            let rows = sqlx::query("SELECT tenant_id FROM ledger_logs ORDER BY tenant_id").fetch_all(p).await?;
            rows.iter().map(|r| Ok(r.try_get("tenant_id")?)).collect()
        })
    }

    pub async fn latest_checkpoint(&self, tenant_id: &str) -> Result<Option<CheckpointRow>> {
        with_pool!(self, p => {
            let r = sqlx::query("SELECT size, root, note, ts FROM ledger_checkpoints WHERE tenant_id = $1 ORDER BY size DESC LIMIT 1")
                .bind(tenant_id).fetch_optional(p).await?;
            match r { Some(r) => Ok(Some(checkpoint_from_row!(r))), None => Ok(None) }
        })
    }

    /// The first checkpoint whose size is at least `size`.
    pub async fn checkpoint_at_or_after(&self, tenant_id: &str, size: u64) -> Result<Option<CheckpointRow>> {
        with_pool!(self, p => {
            let r = sqlx::query("SELECT size, root, note, ts FROM ledger_checkpoints WHERE tenant_id = $1 AND size >= $2 ORDER BY size LIMIT 1")
                .bind(tenant_id).bind(size as i64).fetch_optional(p).await?;
            match r { Some(r) => Ok(Some(checkpoint_from_row!(r))), None => Ok(None) }
        })
    }

    /// Checkpoints with `after < size <= upto`, by size, at most `limit`.
    pub async fn checkpoints(&self, tenant_id: &str, after: u64, upto: u64, limit: u32) -> Result<Vec<CheckpointRow>> {
        with_pool!(self, p => {
            let rows = sqlx::query("SELECT size, root, note, ts FROM ledger_checkpoints WHERE tenant_id = $1 AND size > $2 AND size <= $3 ORDER BY size LIMIT $4")
                .bind(tenant_id).bind(after as i64).bind(upto as i64).bind(limit as i64).fetch_all(p).await?;
            rows.iter().map(|r| Ok(checkpoint_from_row!(r))).collect()
        })
    }

    pub async fn ledger_entry(&self, tenant_id: &str, index: u64) -> Result<Option<EntryRow>> {
        with_pool!(self, p => {
            let r = sqlx::query(sqlx::AssertSqlSafe(format!("SELECT {ENTRY_COLUMNS} FROM ledger_entries WHERE tenant_id = $1 AND idx = $2")))
                .bind(tenant_id).bind(index as i64).fetch_optional(p).await?;
            match r { Some(r) => Ok(Some(entry_from_row!(r))), None => Ok(None) }
        })
    }

    /// The entry recorded about `subject` (a decision id, …) with this kind.
    pub async fn ledger_entry_by_subject(
        &self,
        tenant_id: &str,
        kind: &str,
        subject: &str,
    ) -> Result<Option<EntryRow>> {
        with_pool!(self, p => {
            let r = sqlx::query(sqlx::AssertSqlSafe(format!("SELECT {ENTRY_COLUMNS} FROM ledger_entries WHERE tenant_id = $1 AND subject = $2 AND kind = $3 ORDER BY idx LIMIT 1")))
                .bind(tenant_id).bind(subject).bind(kind).fetch_optional(p).await?;
            match r { Some(r) => Ok(Some(entry_from_row!(r))), None => Ok(None) }
        })
    }

    /// How many entries are about `subject` (a workflow run numbers its
    /// entries 1, 2, …: the next one's number, less one).
    pub async fn ledger_count_about(&self, tenant_id: &str, subject: &str) -> Result<u64> {
        with_pool!(self, p => {
            let n: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM ledger_entries WHERE tenant_id = $1 AND subject = $2")
                .bind(tenant_id).bind(subject).fetch_one(p).await?;
            Ok(n.max(0) as u64)
        })
    }

    /// Every entry about `subject` (a workflow run, …) after index `after`,
    /// in order, at most `limit`.
    pub async fn ledger_entries_about(
        &self,
        tenant_id: &str,
        subject: &str,
        after: Option<u64>,
        limit: u32,
    ) -> Result<Vec<EntryRow>> {
        let after = after.map(|a| a as i64).unwrap_or(-1);
        with_pool!(self, p => {
            let rows = sqlx::query(sqlx::AssertSqlSafe(format!("SELECT {ENTRY_COLUMNS} FROM ledger_entries WHERE tenant_id = $1 AND subject = $2 AND idx > $3 ORDER BY idx LIMIT $4")))
                .bind(tenant_id).bind(subject).bind(after).bind(limit as i64).fetch_all(p).await?;
            rows.iter().map(|r| Ok(entry_from_row!(r))).collect()
        })
    }

    /// Entries with `from <= index < to`, in order, at most `limit` rows.
    /// Rows missing from the store are simply absent: callers check indexes.
    pub async fn ledger_entries(&self, tenant_id: &str, from: u64, to: u64, limit: u32) -> Result<Vec<EntryRow>> {
        with_pool!(self, p => {
            let rows = sqlx::query(sqlx::AssertSqlSafe(format!("SELECT {ENTRY_COLUMNS} FROM ledger_entries WHERE tenant_id = $1 AND idx >= $2 AND idx < $3 ORDER BY idx LIMIT $4")))
                .bind(tenant_id).bind(from as i64).bind(to as i64).bind(limit as i64).fetch_all(p).await?;
            rows.iter().map(|r| Ok(entry_from_row!(r))).collect()
        })
    }

    /// Entries of one kind with `ts_from <= ts < ts_to` and index above
    /// `after`, by index, at most `limit`.
    pub async fn ledger_entries_of_kind(
        &self,
        tenant_id: &str,
        kind: &str,
        ts_from: i64,
        ts_to: i64,
        after: Option<u64>,
        limit: u32,
    ) -> Result<Vec<EntryRow>> {
        let after = after.map(|a| a as i64).unwrap_or(-1);
        with_pool!(self, p => {
            let rows = sqlx::query(sqlx::AssertSqlSafe(format!("SELECT {ENTRY_COLUMNS} FROM ledger_entries WHERE tenant_id = $1 AND kind = $2 AND ts >= $3 AND ts < $4 AND idx > $5 ORDER BY idx LIMIT $6")))
                .bind(tenant_id).bind(kind).bind(ts_from).bind(ts_to).bind(after).bind(limit as i64).fetch_all(p).await?;
            rows.iter().map(|r| Ok(entry_from_row!(r))).collect()
        })
    }

    /// The hashes of these complete subtrees: leaves from the entries,
    /// higher levels from the node table. Missing ones are absent.
    pub async fn ledger_nodes(&self, tenant_id: &str, ids: &[NodeId]) -> Result<HashMap<NodeId, Hash>> {
        let mut out = HashMap::with_capacity(ids.len());
        let leaves: Vec<i64> = ids.iter().filter(|n| n.level == 0).map(|n| n.index as i64).collect();
        let inner: Vec<&NodeId> = ids.iter().filter(|n| n.level > 0).collect();
        if !leaves.is_empty() {
            let rows: Vec<(i64, Vec<u8>)> = with_pool!(self, p => {
                let mut q = sqlx::QueryBuilder::new("SELECT idx, hash FROM ledger_entries WHERE tenant_id = ");
                q.push_bind(tenant_id).push(" AND idx IN (");
                let mut sep = q.separated(", ");
                for i in &leaves {
                    sep.push_bind(*i);
                }
                q.push(")");
                let rows = q.build().fetch_all(p).await?;
                rows.iter().map(|r| Ok((r.try_get("idx")?, r.try_get("hash")?))).collect::<Result<Vec<_>>>()?
            });
            for (i, h) in rows {
                out.insert(
                    NodeId {
                        level: 0,
                        index: u64_of(i, "entry index")?,
                    },
                    hash_of(&h, "an entry hash")?,
                );
            }
        }
        if !inner.is_empty() {
            let rows: Vec<(i32, i64, Vec<u8>)> = with_pool!(self, p => {
                // One point lookup per subtree, so every one uses the
                // primary key (an OR of pairs makes planners scan).
                let mut q = sqlx::QueryBuilder::new("");
                for (n, id) in inner.iter().enumerate() {
                    if n > 0 {
                        q.push(" UNION ALL ");
                    }
                    q.push("SELECT level, idx, hash FROM ledger_nodes WHERE tenant_id = ")
                        .push_bind(tenant_id)
                        .push(" AND level = ")
                        .push_bind(id.level as i32)
                        .push(" AND idx = ")
                        .push_bind(id.index as i64);
                }
                let rows = q.build().fetch_all(p).await?;
                rows.iter().map(|r| Ok((r.try_get("level")?, r.try_get("idx")?, r.try_get("hash")?))).collect::<Result<Vec<_>>>()?
            });
            for (level, i, h) in rows {
                out.insert(
                    NodeId {
                        level: level as u32,
                        index: u64_of(i, "node index")?,
                    },
                    hash_of(&h, "a node hash")?,
                );
            }
        }
        Ok(out)
    }

    /// Stored subtree hashes of one level with `from <= idx < to`.
    pub async fn ledger_level(&self, tenant_id: &str, level: u32, from: u64, to: u64) -> Result<Vec<(u64, Hash)>> {
        with_pool!(self, p => {
            let rows = sqlx::query("SELECT idx, hash FROM ledger_nodes WHERE tenant_id = $1 AND level = $2 AND idx >= $3 AND idx < $4 ORDER BY idx")
                .bind(tenant_id).bind(level as i32).bind(from as i64).bind(to as i64).fetch_all(p).await?;
            rows.iter().map(|r| Ok((u64_of(r.try_get("idx")?, "node index")?, hash_of(&r.try_get::<Vec<u8>, _>("hash")?, "a node hash")?))).collect()
        })
    }

    pub async fn ledger_keys(&self) -> Result<Vec<LedgerKeyRow>> {
        with_pool!(self, p => {
            let rows = sqlx::query("SELECT verifier, name, key_id, created_at, retired_at FROM ledger_keys ORDER BY created_at, verifier")
                .fetch_all(p).await?;
            rows.iter().map(|r| Ok(key_from_row!(r))).collect()
        })
    }

    /// Registers the first signing key of an empty key table.
    pub async fn insert_ledger_key(&self, key: &LedgerKeyRow) -> Result<()> {
        with_pool!(self, p => sqlx::query("INSERT INTO ledger_keys (verifier, name, key_id, created_at, retired_at) VALUES ($1, $2, $3, $4, $5)")
            .bind(&key.verifier).bind(&key.name).bind(&key.key_id).bind(key.created_at).bind(key.retired_at)
            .execute(p).await.map(|_| ()).map_err(super::conflict("this ledger key")))?;
        Ok(())
    }
}
