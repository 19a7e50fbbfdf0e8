//! The audit fan-out's tables: sinks created through the API (per tenant),
//! each sink's cursor in each tenant's log, and the dead-letter store.

use sqlx::Row;

use super::ledger::u64_of;
use super::statement::query;
use super::{Pool, Result, Store, StoreError};

/// A sink a tenant created through the API.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TenantSinkRow {
    pub tenant_id: String,
    pub name: String,
    /// The sink's configuration, JSON (the shape of a `[[sinks]]` table).
    pub config: String,
    /// Goes up by one at every replacement.
    pub version: i64,
    pub created_at: i64,
    pub updated_at: i64,
}

/// An event a sink could never deliver.
#[derive(Debug, Clone)]
pub struct DeadLetterRow {
    pub id: i64,
    pub sink: String,
    pub tenant_id: String,
    pub index: u64,
    pub event_id: String,
    pub reason: String,
    pub body: Vec<u8>,
    pub created_at: i64,
}

macro_rules! tenant_sink_from_row {
    ($r:expr) => {
        TenantSinkRow {
            tenant_id: $r.try_get("tenant_id")?,
            name: $r.try_get("name")?,
            config: $r.try_get("config")?,
            version: $r.try_get("version")?,
            created_at: $r.try_get("created_at")?,
            updated_at: $r.try_get("updated_at")?,
        }
    };
}

macro_rules! dead_letter_from_row {
    ($r:expr) => {
        DeadLetterRow {
            id: $r.try_get("id")?,
            sink: $r.try_get("sink")?,
            tenant_id: $r.try_get("tenant_id")?,
            index: u64_of($r.try_get("idx")?, "dead letter index")?,
            event_id: $r.try_get("event_id")?,
            reason: $r.try_get("reason")?,
            body: $r.try_get("body")?,
            created_at: $r.try_get("created_at")?,
        }
    };
}

impl Store {
    /// Every tenant's API-created sinks.
    pub async fn tenant_sinks(&self) -> Result<Vec<TenantSinkRow>> {
        with_pool!(self, p => {
            let rows = sqlx::query("SELECT tenant_id, name, config, version, created_at, updated_at FROM tenant_sinks ORDER BY tenant_id, name")
                .fetch_all(p).await?;
            rows.iter().map(|r| Ok(tenant_sink_from_row!(r))).collect()
        })
    }

    /// One sink of a tenant.
    pub async fn tenant_sink(&self, tenant_id: &str, name: &str) -> Result<Option<TenantSinkRow>> {
        with_pool!(self, p => {
            let row = sqlx::query("SELECT tenant_id, name, config, version, created_at, updated_at FROM tenant_sinks \
                WHERE tenant_id = $1 AND name = $2")
                .bind(tenant_id).bind(name).fetch_optional(p).await?;
            row.map(|r| Ok(tenant_sink_from_row!(r))).transpose()
        })
    }

    /// Replaces a sink's stored configuration by the same configuration
    /// with its secrets sealed anew, if the row still holds `old`; its
    /// version stays (nothing a delivery task uses changed).
    pub async fn reseal_tenant_sink(&self, tenant_id: &str, name: &str, old: &str, new: &str) -> Result<bool> {
        let done = with_pool!(self, p => sqlx::query("UPDATE tenant_sinks SET config = $1 WHERE tenant_id = $2 AND name = $3 AND config = $4")
            .bind(new).bind(tenant_id).bind(name).bind(old).execute(p).await.map(|r| r.rows_affected() > 0))?;
        Ok(done)
    }

    /// Takes or renews the lease on delivering through `sink` for `holder`,
    /// until `now_ms + ttl_ms`; false while another holder's lease runs.
    pub async fn lease_sink(&self, sink: &str, holder: &str, now_ms: i64, ttl_ms: i64) -> Result<bool> {
        let held = with_pool!(self, p => sqlx::query(
            "INSERT INTO sink_leases (sink, holder, expires_at) VALUES ($1, $2, $3) \
             ON CONFLICT (sink) DO UPDATE SET holder = excluded.holder, expires_at = excluded.expires_at \
             WHERE sink_leases.holder = excluded.holder OR sink_leases.expires_at < $4")
            .bind(sink).bind(holder).bind(now_ms + ttl_ms).bind(now_ms)
            .execute(p).await.map(|r| r.rows_affected() > 0))?;
        Ok(held)
    }

    /// Gives the lease up (at shutdown), so another instance goes on at once.
    pub async fn release_sink(&self, sink: &str, holder: &str) -> Result<()> {
        with_pool!(self, p => sqlx::query("DELETE FROM sink_leases WHERE sink = $1 AND holder = $2")
            .bind(sink).bind(holder).execute(p).await.map(|_| ()))?;
        Ok(())
    }

    /// The last ledger index `sink` delivered in this tenant's log.
    pub async fn sink_cursor(&self, sink: &str, tenant_id: &str) -> Result<Option<u64>> {
        with_pool!(self, p => {
            let r = sqlx::query("SELECT last_index FROM sink_cursors WHERE sink = $1 AND tenant_id = $2")
                .bind(sink).bind(tenant_id).fetch_optional(p).await?;
            match r { Some(r) => Ok(Some(u64_of(r.try_get("last_index")?, "sink cursor")?)), None => Ok(None) }
        })
    }

    /// Moves the cursor forward (never back), only while `holder` holds
    /// the sink's lease: false, and nothing written, once another instance
    /// took the lease over (a holder that stalled while sending must not
    /// move what the new holder now moves), or for an index behind the
    /// cursor. On PostgreSQL the statement share-locks the lease row, so a
    /// takeover waits for this write and then reads the cursor it moved.
    pub async fn set_sink_cursor(
        &self,
        sink: &str,
        tenant_id: &str,
        last_index: u64,
        now_ms: i64,
        holder: &str,
    ) -> Result<bool> {
        const WRITE: &str = "INSERT INTO sink_cursors (sink, tenant_id, last_index, updated_at) \
             SELECT $1, $2, $3, $4 WHERE EXISTS (SELECT 1 FROM sink_leases WHERE sink = $1 AND holder = $5{lock}) \
             ON CONFLICT (sink, tenant_id) DO UPDATE SET last_index = excluded.last_index, updated_at = excluded.updated_at \
             WHERE sink_cursors.last_index <= excluded.last_index";
        // SQLite has no row locks (its writes are serialised already).
        let lock = if matches!(self.pool, Pool::Postgres(_)) {
            " FOR SHARE"
        } else {
            ""
        };
        let sql = WRITE.replace("{lock}", lock);
        let written = with_pool!(self, p => sqlx::query(sqlx::AssertSqlSafe(sql))
            .bind(sink).bind(tenant_id).bind(last_index as i64).bind(now_ms).bind(holder)
            .execute(p).await?.rows_affected());
        Ok(written == 1)
    }

    pub async fn insert_dead_letter(&self, d: &DeadLetterRow) -> Result<()> {
        with_pool!(self, p => sqlx::query(
            "INSERT INTO dead_letters (sink, tenant_id, idx, event_id, reason, body, created_at) VALUES ($1, $2, $3, $4, $5, $6, $7)")
            .bind(&d.sink).bind(&d.tenant_id).bind(d.index as i64).bind(&d.event_id).bind(&d.reason).bind(&d.body).bind(d.created_at)
            .execute(p).await.map(|_| ()))?;
        Ok(())
    }

    /// One tenant's dead letters of a sink not yet redriven, oldest first,
    /// from after the one with id `after` (0: from the first).
    pub async fn dead_letters(
        &self,
        sink: &str,
        tenant_id: &str,
        after: i64,
        limit: u32,
    ) -> Result<Vec<DeadLetterRow>> {
        with_pool!(self, p => {
            let rows = sqlx::query(
                "SELECT id, sink, tenant_id, idx, event_id, reason, body, created_at FROM dead_letters \
                 WHERE sink = $1 AND tenant_id = $2 AND redriven_at IS NULL AND id > $3 ORDER BY id LIMIT $4")
                .bind(sink).bind(tenant_id).bind(after).bind(limit as i64).fetch_all(p).await?;
            rows.iter().map(|r| Ok(dead_letter_from_row!(r))).collect()
        })
    }

    pub async fn mark_redriven(&self, id: i64, now_ms: i64) -> Result<()> {
        with_pool!(self, p => sqlx::query("UPDATE dead_letters SET redriven_at = $1 WHERE id = $2")
            .bind(now_ms).bind(id).execute(p).await.map(|_| ()))?;
        Ok(())
    }

    /// Dead letters of a sink for one tenant, not yet redriven.
    pub async fn dead_letter_count_for(&self, sink: &str, tenant_id: &str) -> Result<i64> {
        let n = with_pool!(self, p => sqlx::query("SELECT COUNT(*) AS n FROM dead_letters WHERE sink = $1 AND tenant_id = $2 AND redriven_at IS NULL")
            .bind(sink).bind(tenant_id).fetch_one(p).await?.try_get::<i64, _>("n"))?;
        Ok(n)
    }
}

/// A tenant's sink created or replaced, inside a ledger batch with the
/// `sink.put` entry recording it.
#[derive(Debug, Clone)]
pub struct SinkPut {
    /// The row as it will be: version 1 creates the sink, version n + 1
    /// replaces version n (and only version n: another put meanwhile is
    /// [`StoreError::Changed`]).
    pub row: TenantSinkRow,
    /// Where the sink's delivery key keeps its cursors.
    pub cursor_key: String,
    /// A new sink's first cursor (None: from the start of the log).
    pub start_at: Option<u64>,
    /// The most sinks a tenant may have: a creation past it is
    /// [`StoreError::Conflict`] ([`TOO_MANY_SINKS`]).
    pub max_sinks: usize,
}

/// What a creation past `tenant_sinks.max_per_tenant` is refused as.
pub const TOO_MANY_SINKS: &str = "the tenant's most sinks (tenant_sinks.max_per_tenant)";

/// Writes `p`. A new sink starts afresh, whatever a deleted namesake left;
/// a replaced one keeps its cursors.
pub(super) async fn put(conn: &mut super::ledger::TxConn, p: &SinkPut) -> Result<()> {
    let r = &p.row;
    if r.version > 1 {
        return query(
            "UPDATE tenant_sinks SET config = $1, version = $2, updated_at = $3 \
             WHERE tenant_id = $4 AND name = $5 AND version = $6",
        )
        .bind(&r.config)
        .bind(r.version)
        .bind(r.updated_at)
        .bind(&r.tenant_id)
        .bind(&r.name)
        .bind(r.version - 1)
        .execute_one(conn, "sink")
        .await;
    }
    // Creations of one tenant's sinks wait for each other (a row lock on
    // PostgreSQL; SQLite's writes are serialised already), so the count
    // below holds.
    query("UPDATE tenants SET name = name WHERE id = $1")
        .bind(&r.tenant_id)
        .execute(conn)
        .await?;
    let n = query("SELECT COUNT(*) AS n FROM tenant_sinks WHERE tenant_id = $1")
        .bind(&r.tenant_id)
        .fetch_all(conn)
        .await?
        .into_iter()
        .flatten()
        .next()
        .ok_or_else(|| StoreError::Corrupt("no count of a tenant's sinks".into()))?
        .int("a count of sinks")?;
    if usize::try_from(n).unwrap_or(usize::MAX) >= p.max_sinks {
        return Err(StoreError::Conflict(TOO_MANY_SINKS));
    }
    query(
        "INSERT INTO tenant_sinks (tenant_id, name, config, version, created_at, updated_at) VALUES ($1, $2, $3, 1, $4, $4)")
        .bind(&r.tenant_id).bind(&r.name).bind(&r.config).bind(r.created_at)
        .execute(conn).await.map(|_| ())
    .map_err(super::changed_on_unique("sink"))?;
    query("DELETE FROM sink_cursors WHERE sink = $1 AND tenant_id = $2")
        .bind(&p.cursor_key)
        .bind(&r.tenant_id)
        .execute(conn)
        .await?;
    if let Some(at) = p.start_at {
        query("INSERT INTO sink_cursors (sink, tenant_id, last_index, updated_at) VALUES ($1, $2, $3, $4)")
            .bind(&p.cursor_key)
            .bind(&r.tenant_id)
            .bind(at as i64)
            .bind(r.created_at)
            .execute(conn)
            .await?;
    }
    Ok(())
}

/// A tenant's sink written with the entry recording it.
#[derive(Debug, Clone)]
pub enum SinkWrite {
    Put(SinkPut),
    Delete { tenant_id: String, name: String },
}

/// Deletes a tenant's sink; none by that name is [`StoreError::Changed`].
/// Its dead letters stay, as the record of what it never delivered, and
/// so does its cursor, so that a delivery task still running (on another
/// instance, until it reloads) never starts over; a new sink of the same
/// name starts afresh (see [`put`]).
pub(super) async fn delete(conn: &mut super::ledger::TxConn, tenant_id: &str, name: &str) -> Result<()> {
    query("DELETE FROM tenant_sinks WHERE tenant_id = $1 AND name = $2")
        .bind(tenant_id)
        .bind(name)
        .execute_one(conn, "sink")
        .await
}
