//! Durable state: tenants, tokens, verification keys, bundle versions and
//! activations, and the evidence ledger ([`ledger`]), in SQLite (the embedded default) or PostgreSQL.
//!
//! Both backends run the same SQL text (`$1` placeholders work in both); only
//! the migrations differ, in `schemas/migrations/{sqlite,postgres}`. The
//! ledger writer's batch transactions run their statements through
//! [`statement`] (on SQLite, stepped on the writer's own thread); every
//! other read and write goes through sqlx's pools.
//!
//! Invariant: this module is the only one that uses `sqlx` and `rusqlite`.

use std::str::FromStr;
use std::time::Duration;

use sqlx::Row;
use sqlx::postgres::{PgPool, PgPoolOptions};
use sqlx::sqlite::{SqliteConnectOptions, SqliteJournalMode, SqlitePool, SqlitePoolOptions, SqliteSynchronous};

use crate::auth::{Binding, Principal, Role, RoleSet, default_subject};
use crate::model::kernel::{agent_fault, name_fault};

#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// A uniqueness rule was broken; the string names what already exists.
    #[error("{0} already exists")]
    Conflict(&'static str),
    /// A conditional write found the row changed since it was read; the
    /// string names what changed.
    #[error("the {0} changed meanwhile")]
    Changed(&'static str),
    #[error("stored data is corrupt: {0}")]
    Corrupt(String),
    #[error("database error: {0}")]
    Database(#[from] sqlx::Error),
    /// An error of SQLite inside a ledger batch (stepped directly, not
    /// through sqlx: [`statement`]).
    #[error("database error: {0}")]
    Sqlite(#[from] rusqlite::Error),
    #[error("migration failed: {0}")]
    Migrate(#[from] sqlx::migrate::MigrateError),
}

pub type Result<T> = std::result::Result<T, StoreError>;

impl StoreError {
    /// Whether PostgreSQL aborted the transaction to break a deadlock or a
    /// serialization failure: nothing of it was written, and the same work
    /// may succeed when tried again.
    pub fn is_aborted_by_the_database(&self) -> bool {
        matches!(self.postgres_code(), Some("40001" | "40P01"))
    }

    /// Whether a uniqueness rule refused the write.
    fn is_unique_violation(&self) -> bool {
        match self {
            StoreError::Database(sqlx::Error::Database(d)) => d.is_unique_violation(),
            StoreError::Sqlite(rusqlite::Error::SqliteFailure(e, _)) => matches!(
                e.extended_code,
                rusqlite::ffi::SQLITE_CONSTRAINT_UNIQUE | rusqlite::ffi::SQLITE_CONSTRAINT_PRIMARYKEY
            ),
            _ => false,
        }
    }

    /// PostgreSQL's SQLSTATE for an error the server returned.
    fn postgres_code(&self) -> Option<&str> {
        match self {
            StoreError::Database(sqlx::Error::Database(d)) => d
                .try_downcast_ref::<sqlx::postgres::PgDatabaseError>()
                .map(|pg| pg.code()),
            _ => None,
        }
    }

    /// Why a write failed, as metrics and readiness name it: `disk_full`,
    /// `busy` (locked by another writer past the timeout), `unreachable`
    /// (connection lost, pool exhausted), `read_only`, `constraint`,
    /// `conflict`, `corrupt`, `io` or `other`.
    pub fn cause(&self) -> &'static str {
        match self {
            StoreError::Conflict(_) | StoreError::Changed(_) => "conflict",
            StoreError::Corrupt(_) => "corrupt",
            StoreError::Migrate(_) => "other",
            StoreError::Database(e) => match e {
                sqlx::Error::Database(d) => {
                    if let Some(code) = self.postgres_code() {
                        match code {
                            "53100" => "disk_full",
                            "25006" => "read_only",
                            "40001" | "40P01" => "conflict",
                            "55P03" => "busy",
                            _ if code.starts_with("23") => "constraint",
                            _ if code.starts_with("08") || code.starts_with("57P") => "unreachable",
                            _ if code.starts_with("53") => "disk_full",
                            _ if code.starts_with("58") => "io",
                            _ => "other",
                        }
                    } else {
                        sqlite_cause(d.code().and_then(|c| c.parse::<i32>().ok()))
                    }
                }
                sqlx::Error::Io(_)
                | sqlx::Error::PoolTimedOut
                | sqlx::Error::PoolClosed
                | sqlx::Error::WorkerCrashed
                | sqlx::Error::Tls(_)
                | sqlx::Error::Protocol(_) => "unreachable",
                _ => "other",
            },
            StoreError::Sqlite(rusqlite::Error::SqliteFailure(e, _)) => sqlite_cause(Some(e.extended_code)),
            StoreError::Sqlite(_) => "other",
        }
    }
}

/// [`StoreError::cause`] of an SQLite result code (its primary code is the
/// low byte of an extended one).
fn sqlite_cause(code: Option<i32>) -> &'static str {
    match code.map(|c| c & 0xff) {
        Some(13) => "disk_full",
        Some(5) | Some(6) => "busy",
        Some(8) => "read_only",
        Some(10) => "io",
        Some(11) | Some(26) => "corrupt",
        Some(19) => "constraint",
        _ => "other",
    }
}

#[derive(Clone, Debug)]
enum Pool {
    Sqlite(SqlitePool),
    Postgres(PgPool),
}

/// A handle to the store; cheap to clone.
#[derive(Clone, Debug)]
pub struct Store {
    pool: Pool,
    page_limit: PageLimit,
    /// SQLite: the connections the ledger writer's batches run on.
    direct: Option<std::sync::Arc<statement::direct::Direct>>,
}

/// The page limit imposed on every SQLite connection as it is opened or
/// handed out, to make the store full on purpose (fault tests); 0 when
/// none was ever set.
#[derive(Clone, Debug, Default)]
struct PageLimit(std::sync::Arc<std::sync::atomic::AtomicU64>);

/// SQLite's largest `max_page_count`: no limit.
const SQLITE_MAX_PAGES: u64 = 4_294_967_294;

impl PageLimit {
    /// The limit, once one was set.
    fn get(&self) -> Option<u64> {
        match self.0.load(std::sync::atomic::Ordering::Acquire) {
            0 => None,
            pages => Some(pages),
        }
    }

    /// Sets the limit on a connection, if one was ever set (a connection
    /// keeps its `max_page_count` until told otherwise).
    async fn apply(&self, conn: &mut sqlx::SqliteConnection) -> std::result::Result<(), sqlx::Error> {
        match self.0.load(std::sync::atomic::Ordering::Acquire) {
            0 => Ok(()),
            pages => sqlx::query(sqlx::AssertSqlSafe(format!("PRAGMA max_page_count = {pages}")))
                .execute(conn)
                .await
                .map(|_| ()),
        }
    }
}

/// Runs `$body` with `$pool` bound to whichever backend is in use. The body is
/// written once and type-checked once per backend.
macro_rules! with_pool {
    ($self:expr, $pool:ident => $body:expr) => {
        match &$self.pool {
            Pool::Sqlite($pool) => $body,
            Pool::Postgres($pool) => $body,
        }
    };
}

/// Runs `$body` with `$tx` a transaction that will write. On SQLite it
/// takes the write lock up front (`BEGIN IMMEDIATE`): a transaction that
/// reads first and upgrades later fails outright (instead of waiting) when
/// another writer committed in between.
macro_rules! with_write_tx {
    ($self:expr, $tx:ident => $body:expr) => {
        match &$self.pool {
            Pool::Sqlite(p) => {
                let mut $tx = p.begin_with("BEGIN IMMEDIATE").await?;
                $body
            }
            Pool::Postgres(p) => {
                let mut $tx = p.begin().await?;
                $body
            }
        }
    };
}

mod bundles;
mod change;
mod kernel;
mod ledger;
mod mcp;
mod runs;
mod sinks;
mod skills;
mod statement;
mod tenancy;
mod wakes;
mod workflows;
pub use bundles::{ActivationRow, BundleUpload};
pub use change::{Applied, Change};
pub use kernel::DeclaredTool;
pub use ledger::{CheckpointRow, EntryRow, LedgerKeyRow, LedgerTx, LogHead};
pub use mcp::{McpReviewRow, McpWrite, ToolPinRow, UpstreamRow};
pub use runs::WorkflowRunRow;
pub use sinks::{DeadLetterRow, SinkPut, SinkWrite, TOO_MANY_SINKS, TenantSinkRow};
pub use skills::SkillRow;
pub use tenancy::{AdminWrite, SessionRow};
pub use wakes::{MAX_WAKE_PAYLOAD, WakeListener};
pub use workflows::WorkflowRow;

/// A unique violation inside a state change of the ledger's batch: that
/// change alone is rolled back ([`StoreError::Changed`]), the batch goes on.
fn changed_on_unique<E: Into<StoreError>>(what: &'static str) -> impl FnOnce(E) -> StoreError {
    move |e| match e.into() {
        e if e.is_unique_violation() => StoreError::Changed(what),
        e => e,
    }
}

fn conflict<E: Into<StoreError>>(what: &'static str) -> impl FnOnce(E) -> StoreError {
    move |e| match e.into() {
        e if e.is_unique_violation() => StoreError::Conflict(what),
        e => e,
    }
}

#[derive(Debug, Clone)]
pub struct TenantRow {
    pub id: String,
    pub name: String,
    pub platform: bool,
    pub require_signatures: bool,
    /// `warn` or `refuse`: what an upload that Warden may evaluate
    /// otherwise than OPA gets (`policy::compat::OnDifference`).
    pub rego_differences: String,
    pub created_at: i64,
}

#[derive(Debug, Clone)]
pub struct TokenRow {
    pub id: String,
    pub tenant_id: String,
    pub name: String,
    pub roles: RoleSet,
    pub created_at: i64,
    pub created_by: String,
    pub revoked_at: Option<i64>,
    /// The person or service behind the token.
    pub subject: String,
    pub agent_ids: Binding,
    pub runner_ids: Binding,
    pub expires_at: Option<i64>,
}

impl TokenRow {
    /// A new token: the subject and bindings given, or the defaults
    /// ([`default_subject`], [`Binding::named`]).
    pub fn new(id: String, tenant_id: &str, name: &str, roles: RoleSet, created_by: String, now: i64) -> Self {
        let (agent_ids, runner_ids) = default_bindings(name, roles);
        TokenRow {
            id,
            tenant_id: tenant_id.to_string(),
            name: name.to_string(),
            roles,
            created_at: now,
            created_by,
            revoked_at: None,
            subject: default_subject(name),
            agent_ids,
            runner_ids,
            expires_at: None,
        }
    }
}

/// The agent and runner bindings of a token minted without any (and of
/// tokens minted before bindings existed, whose columns are empty).
fn default_bindings(name: &str, roles: RoleSet) -> (Binding, Binding) {
    (
        Binding::named(name, roles, Role::Agent, agent_fault),
        Binding::named(name, roles, Role::Runner, name_fault),
    )
}

/// A token's identity columns as read (NULL for tokens minted before
/// bindings existed): subject, agent ids, runner ids.
fn identity_of(
    name: &str,
    roles: RoleSet,
    subject: Option<String>,
    agent_ids: Option<String>,
    runner_ids: Option<String>,
) -> Result<(String, Binding, Binding)> {
    let (default_agents, default_runners) = default_bindings(name, roles);
    let parse = |v: Option<String>, default: Binding| match v {
        Some(s) => Binding::from_json(&s).map_err(StoreError::Corrupt),
        None => Ok(default),
    };
    Ok((
        subject.unwrap_or_else(|| default_subject(name)),
        parse(agent_ids, default_agents)?,
        parse(runner_ids, default_runners)?,
    ))
}

#[derive(Debug, Clone)]
pub struct KeyRow {
    pub tenant_id: String,
    pub key_id: String,
    pub algorithm: String,
    pub public_pem: String,
    pub scope: Option<String>,
    pub created_at: i64,
    pub created_by: String,
}

#[derive(Debug, Clone)]
pub struct BundleVersionRow {
    pub tenant_id: String,
    pub name: String,
    pub revision: String,
    pub digest: String,
    pub roots: Vec<String>,
    pub size_bytes: i64,
    /// The Rego test report, as JSON.
    pub tests: serde_json::Value,
    pub tests_passed: bool,
    pub signed_by: Option<String>,
    pub uploaded_by: String,
    pub uploaded_at: i64,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HeadRow {
    pub tenant_id: String,
    pub name: String,
    pub revision: String,
    pub digest: String,
    pub activated_at: i64,
    pub activated_by: String,
}

#[derive(Debug, Clone)]
pub struct BundleSummary {
    pub name: String,
    pub versions: i64,
    pub active_revision: Option<String>,
}

macro_rules! tenant_from_row {
    ($row:expr) => {
        TenantRow {
            id: $row.try_get("id")?,
            name: $row.try_get("name")?,
            platform: $row.try_get("platform")?,
            require_signatures: $row.try_get("require_signatures")?,
            rego_differences: $row.try_get("rego_differences")?,
            created_at: $row.try_get("created_at")?,
        }
    };
}

macro_rules! token_from_row {
    ($row:expr) => {{
        let name: String = $row.try_get("name")?;
        let roles = RoleSet::from_csv(&$row.try_get::<String, _>("roles")?).map_err(StoreError::Corrupt)?;
        let (subject, agent_ids, runner_ids) = identity_of(
            &name,
            roles,
            $row.try_get("subject")?,
            $row.try_get("agent_ids")?,
            $row.try_get("runner_ids")?,
        )?;
        TokenRow {
            id: $row.try_get("id")?,
            tenant_id: $row.try_get("tenant_id")?,
            name,
            roles,
            created_at: $row.try_get("created_at")?,
            created_by: $row.try_get("created_by")?,
            revoked_at: $row.try_get("revoked_at")?,
            subject,
            agent_ids,
            runner_ids,
            expires_at: $row.try_get("expires_at")?,
        }
    }};
}

/// Every column of a token but its secret's hash.
const TOKEN_COLUMNS: &str =
    "id, tenant_id, name, roles, created_at, created_by, revoked_at, subject, agent_ids, runner_ids, expires_at";

/// A [`Principal`] from a row of `tokens t JOIN tenants n` selecting
/// `t.id, t.name, t.roles, t.tenant_id, t.subject, t.agent_ids,
/// t.runner_ids, t.expires_at, n.name AS tenant_name, n.platform`.
macro_rules! principal_from_row {
    ($r:expr) => {{
        let r = &$r;
        let name: String = r.try_get("name")?;
        let roles = RoleSet::from_csv(&r.try_get::<String, _>("roles")?).map_err(StoreError::Corrupt)?;
        let (subject, agent_ids, runner_ids) = identity_of(
            &name,
            roles,
            r.try_get("subject")?,
            r.try_get("agent_ids")?,
            r.try_get("runner_ids")?,
        )?;
        Principal {
            token_id: r.try_get("id")?,
            token_name: name,
            tenant_id: r.try_get("tenant_id")?,
            tenant_name: r.try_get("tenant_name")?,
            platform: r.try_get("platform")?,
            roles,
            subject,
            agent_ids,
            runner_ids,
            expires_at: r.try_get("expires_at")?,
        }
    }};
}

/// Inserts a token row (`$4` its secret's hash).
const INSERT_TOKEN: &str = "INSERT INTO tokens (id, tenant_id, name, secret_hash, roles, created_at, created_by, \
    subject, agent_ids, runner_ids, expires_at) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11)";

macro_rules! key_from_row {
    ($row:expr) => {
        KeyRow {
            tenant_id: $row.try_get("tenant_id")?,
            key_id: $row.try_get("key_id")?,
            algorithm: $row.try_get("algorithm")?,
            public_pem: $row.try_get("public_pem")?,
            scope: $row.try_get("scope")?,
            created_at: $row.try_get("created_at")?,
            created_by: $row.try_get("created_by")?,
        }
    };
}

macro_rules! version_from_row {
    ($row:expr) => {
        BundleVersionRow {
            tenant_id: $row.try_get("tenant_id")?,
            name: $row.try_get("name")?,
            revision: $row.try_get("revision")?,
            digest: $row.try_get("digest")?,
            roots: serde_json::from_str(&$row.try_get::<String, _>("roots")?)
                .map_err(|e| StoreError::Corrupt(format!("bundle roots: {e}")))?,
            size_bytes: $row.try_get("size_bytes")?,
            tests: serde_json::from_str(&$row.try_get::<String, _>("tests")?)
                .map_err(|e| StoreError::Corrupt(format!("bundle tests: {e}")))?,
            tests_passed: $row.try_get("tests_passed")?,
            signed_by: $row.try_get("signed_by")?,
            uploaded_by: $row.try_get("uploaded_by")?,
            uploaded_at: $row.try_get("uploaded_at")?,
        }
    };
}

macro_rules! head_from_row {
    ($row:expr) => {
        HeadRow {
            tenant_id: $row.try_get("tenant_id")?,
            name: $row.try_get("name")?,
            revision: $row.try_get("revision")?,
            digest: $row.try_get("digest")?,
            activated_at: $row.try_get("activated_at")?,
            activated_by: $row.try_get("activated_by")?,
        }
    };
}

const VERSION_COLUMNS: &str =
    "tenant_id, name, revision, digest, roots, size_bytes, tests, tests_passed, signed_by, uploaded_by, uploaded_at";

/// The ledger batches' own connections to the file `options` open (with
/// the same busy timeout).
fn direct_of(options: &SqliteConnectOptions, page_limit: &PageLimit) -> std::sync::Arc<statement::direct::Direct> {
    statement::direct::Direct::new(
        options.get_filename().to_path_buf(),
        SQLITE_BUSY_TIMEOUT,
        page_limit.clone(),
    )
}

/// How long an SQLite connection waits for the write lock before its
/// statement fails as `busy`.
const SQLITE_BUSY_TIMEOUT: Duration = Duration::from_secs(10);

/// The pool options of every SQLite pool of a store.
fn sqlite_pool(page_limit: &PageLimit, max_connections: u32) -> SqlitePoolOptions {
    let (on_connect, on_acquire) = (page_limit.clone(), page_limit.clone());
    SqlitePoolOptions::new()
        .max_connections(max_connections)
        // A connection to a local file does not hang up: no ping
        // (a round trip to its worker thread) before each use.
        .test_before_acquire(false)
        .after_connect(move |conn, _| {
            let limit = on_connect.clone();
            Box::pin(async move { limit.apply(conn).await })
        })
        .before_acquire(move |conn, _| {
            let limit = on_acquire.clone();
            Box::pin(async move { limit.apply(conn).await.map(|_| true) })
        })
        // A connection still inside a transaction when it comes back
        // (its COMMIT failed, then the ROLLBACK queued when its
        // transaction was dropped failed too, as after a full disk)
        // is closed: the pool opens a fresh one instead of handing
        // every later writer a connection that cannot begin.
        .after_release(|conn, _| {
            Box::pin(async move {
                use sqlx::Connection;
                if !conn.is_in_transaction() {
                    return Ok(true);
                }
                // A rollback may still be queued (a transaction
                // dropped uncommitted): the ping runs after it.
                conn.ping().await?;
                Ok(!conn.is_in_transaction())
            })
        })
}

impl Store {
    /// Connects (creating an SQLite file and its directory when missing) and
    /// applies the migrations.
    pub async fn connect(url: &str, max_connections: u32) -> Result<Self> {
        Self::connect_waiting(url, max_connections, Duration::from_secs(10)).await
    }

    /// [`Store::connect`], with the longest wait for a PostgreSQL
    /// connection: past it, a query fails (the server answers 503
    /// `store_unavailable`) rather than holding its request while the
    /// database is away. (An embedded SQLite file does not go away; its
    /// waits are for its write lock, bounded by its busy timeout.)
    pub async fn connect_waiting(url: &str, max_connections: u32, wait: Duration) -> Result<Self> {
        let store = if url.starts_with("postgres:") || url.starts_with("postgresql:") {
            let pool = PgPoolOptions::new()
                .max_connections(max_connections)
                .acquire_timeout(wait)
                .connect(url)
                .await?;
            Store {
                pool: Pool::Postgres(pool),
                page_limit: PageLimit::default(),
                direct: None,
            }
        } else {
            let options = SqliteConnectOptions::from_str(url)?
                .create_if_missing(true)
                .journal_mode(SqliteJournalMode::Wal)
                // FULL: a committed transaction survives power loss, not only a crash.
                .synchronous(SqliteSynchronous::Full)
                .foreign_keys(true)
                .busy_timeout(SQLITE_BUSY_TIMEOUT);
            if let Some(parent) = options.get_filename().parent()
                && !parent.as_os_str().is_empty()
            {
                std::fs::create_dir_all(parent).map_err(|e| StoreError::Database(sqlx::Error::Io(e)))?;
            }
            let page_limit = PageLimit::default();
            let direct = direct_of(&options, &page_limit);
            let pool = sqlite_pool(&page_limit, max_connections).connect_with(options).await?;
            Store {
                pool: Pool::Sqlite(pool),
                page_limit,
                direct: Some(direct),
            }
        };
        store.migrate().await?;
        Ok(store)
    }

    /// A store of its own over the same database, with at most
    /// `max_connections`, opened lazily on the calling runtime: for a task
    /// that runs on a runtime of its own (a PostgreSQL connection's socket
    /// is woken by the runtime that opened it) and must not wait for the
    /// shared pool's connections. Must be called inside a runtime.
    pub fn dedicated(&self, max_connections: u32) -> Store {
        let direct = match &self.pool {
            Pool::Sqlite(p) => Some(direct_of(&p.connect_options(), &self.page_limit)),
            Pool::Postgres(_) => None,
        };
        let pool = match &self.pool {
            Pool::Sqlite(p) => Pool::Sqlite(
                sqlite_pool(&self.page_limit, max_connections).connect_lazy_with((*p.connect_options()).clone()),
            ),
            Pool::Postgres(p) => Pool::Postgres(
                PgPoolOptions::new()
                    .max_connections(max_connections)
                    .acquire_timeout(p.options().get_acquire_timeout())
                    .connect_lazy_with((*p.connect_options()).clone()),
            ),
        };
        Store {
            pool,
            page_limit: self.page_limit.clone(),
            direct,
        }
    }

    /// Takes `n` connections of the shared pool and holds them until the
    /// answer is dropped (tests of what must not wait for them).
    #[cfg(test)]
    pub(crate) async fn hold_connections(&self, n: usize) -> Vec<Box<dyn std::any::Any + Send>> {
        let mut held: Vec<Box<dyn std::any::Any + Send>> = Vec::new();
        for _ in 0..n {
            match &self.pool {
                Pool::Sqlite(p) => held.push(Box::new(p.acquire().await.expect("a connection"))),
                Pool::Postgres(p) => held.push(Box::new(p.acquire().await.expect("a connection"))),
            }
        }
        held
    }

    async fn migrate(&self) -> Result<()> {
        match &self.pool {
            Pool::Sqlite(p) => sqlx::migrate!("schemas/migrations/sqlite").run(p).await?,
            Pool::Postgres(p) => sqlx::migrate!("schemas/migrations/postgres").run(p).await?,
        }
        Ok(())
    }

    /// Makes the database full on purpose: on SQLite, every connection
    /// handed out from now on runs with `PRAGMA max_page_count` at `pages`
    /// (SQLite raises a limit below the file's size to its size, so
    /// `Some(1)` means "no room to grow"); `None` lifts the limit. For fault
    /// tests; PostgreSQL ignores it.
    #[doc(hidden)]
    pub fn limit_pages(&self, pages: Option<u64>) {
        let n = pages.map_or(SQLITE_MAX_PAGES, |p| p.clamp(1, SQLITE_MAX_PAGES));
        self.page_limit.0.store(n, std::sync::atomic::Ordering::Release);
    }

    pub fn backend(&self) -> &'static str {
        match self.pool {
            Pool::Sqlite(_) => "sqlite",
            Pool::Postgres(_) => "postgres",
        }
    }

    pub async fn close(&self) {
        if let Some(direct) = &self.direct {
            direct.close();
        }
        with_pool!(self, p => p.close().await)
    }

    /// Succeeds when the database answers a query.
    pub async fn ping(&self) -> Result<()> {
        with_pool!(self, p => sqlx::query("SELECT 1").execute(p).await.map(|_| ()))?;
        Ok(())
    }

    // ---- tenants ----------------------------------------------------------

    pub async fn tenant_count(&self) -> Result<i64> {
        let row = with_pool!(self, p => sqlx::query("SELECT COUNT(*) AS n FROM tenants").fetch_one(p).await?
            .try_get::<i64, _>("n"))?;
        Ok(row)
    }

    /// Creates a tenant together with its first token, atomically.
    pub async fn create_tenant(&self, tenant: &TenantRow, token: &TokenRow, hash: &[u8; 32]) -> Result<()> {
        with_write_tx!(self, tx => {
            sqlx::query("INSERT INTO tenants (id, name, platform, require_signatures, rego_differences, created_at) VALUES ($1, $2, $3, $4, $5, $6)")
                .bind(&tenant.id).bind(&tenant.name).bind(tenant.platform).bind(tenant.require_signatures)
                .bind(&tenant.rego_differences).bind(tenant.created_at)
                .execute(&mut *tx).await.map_err(conflict("a tenant with this name"))?;
            sqlx::query(INSERT_TOKEN)
                .bind(&token.id).bind(&token.tenant_id).bind(&token.name).bind(&hash[..]).bind(token.roles.to_csv())
                .bind(token.created_at).bind(&token.created_by).bind(&token.subject).bind(token.agent_ids.to_json())
                .bind(token.runner_ids.to_json()).bind(token.expires_at)
                .execute(&mut *tx).await.map_err(conflict("a token with this secret"))?;
            tx.commit().await?;
        });
        Ok(())
    }

    pub async fn list_tenants(&self) -> Result<Vec<TenantRow>> {
        with_pool!(self, p => {
            let rows = sqlx::query("SELECT id, name, platform, require_signatures, rego_differences, created_at FROM tenants ORDER BY created_at, id")
                .fetch_all(p).await?;
            rows.iter().map(|r| Ok(tenant_from_row!(r))).collect()
        })
    }

    pub async fn tenant(&self, id: &str) -> Result<Option<TenantRow>> {
        with_pool!(self, p => {
            let row = sqlx::query("SELECT id, name, platform, require_signatures, rego_differences, created_at FROM tenants WHERE id = $1")
                .bind(id).fetch_optional(p).await?;
            match row { Some(r) => Ok(Some(tenant_from_row!(r))), None => Ok(None) }
        })
    }

    // ---- tokens -----------------------------------------------------------

    /// The caller behind an unrevoked token with this hash (expired or
    /// not: the caller tells an expired token from an unknown one).
    pub async fn principal_by_hash(&self, hash: &[u8; 32]) -> Result<Option<Principal>> {
        with_pool!(self, p => {
            let row = sqlx::query(
                "SELECT t.id, t.name, t.roles, t.tenant_id, t.subject, t.agent_ids, t.runner_ids, t.expires_at, \
                 n.name AS tenant_name, n.platform \
                 FROM tokens t JOIN tenants n ON n.id = t.tenant_id \
                 WHERE t.secret_hash = $1 AND t.revoked_at IS NULL")
                .bind(&hash[..]).fetch_optional(p).await?;
            match row {
                None => Ok(None),
                Some(r) => Ok(Some(principal_from_row!(r))),
            }
        })
    }

    /// How many console sessions of a token are live at `now` (not signed
    /// out, not expired).
    pub async fn live_sessions_of(&self, token_id: &str, now: i64) -> Result<i64> {
        with_pool!(self, p => {
            Ok(sqlx::query_scalar(
                "SELECT COUNT(*) FROM console_sessions WHERE token_id = $1 AND ended_at IS NULL AND expires_at > $2")
                .bind(token_id).bind(now).fetch_one(p).await?)
        })
    }

    /// The live console session whose cookie secret hashes to `hash`, with
    /// the principal of its token: `(principal, session id, session expiry)`.
    /// None when the session is unknown or signed out, or its token revoked.
    pub async fn session_by_hash(&self, hash: &[u8; 32]) -> Result<Option<(Principal, String, i64)>> {
        with_pool!(self, p => {
            let row = sqlx::query(
                "SELECT t.id, t.name, t.roles, t.tenant_id, t.subject, t.agent_ids, t.runner_ids, t.expires_at, \
                 n.name AS tenant_name, n.platform, s.id AS session_id, s.expires_at AS session_expires_at \
                 FROM console_sessions s JOIN tokens t ON t.id = s.token_id JOIN tenants n ON n.id = t.tenant_id \
                 WHERE s.secret_hash = $1 AND s.ended_at IS NULL AND t.revoked_at IS NULL")
                .bind(&hash[..]).fetch_optional(p).await?;
            match row {
                None => Ok(None),
                Some(r) => {
                    let session_id: String = r.try_get("session_id")?;
                    let expires_at: i64 = r.try_get("session_expires_at")?;
                    Ok(Some((principal_from_row!(r), session_id, expires_at)))
                }
            }
        })
    }

    pub async fn list_tokens(&self, tenant_id: &str) -> Result<Vec<TokenRow>> {
        with_pool!(self, p => {
            let rows = sqlx::query(sqlx::AssertSqlSafe(format!("SELECT {TOKEN_COLUMNS} FROM tokens WHERE tenant_id = $1 ORDER BY created_at, id")))
                .bind(tenant_id).fetch_all(p).await?;
            rows.iter().map(|r| Ok(token_from_row!(r))).collect()
        })
    }

    /// Of these token ids, those still honoured at `now_ms` (unrevoked, not
    /// expired). Open streams ask this to close when their token died on
    /// another instance.
    pub async fn live_tokens(&self, ids: &[String], now_ms: i64) -> Result<std::collections::HashSet<String>> {
        let mut live = std::collections::HashSet::new();
        for chunk in ids.chunks(500) {
            let marks: Vec<String> = (2..chunk.len() + 2).map(|i| format!("${i}")).collect();
            let sql = format!(
                "SELECT id FROM tokens WHERE revoked_at IS NULL AND (expires_at IS NULL OR expires_at > $1) \
                 AND id IN ({})",
                marks.join(", ")
            );
            let found: Vec<String> = with_pool!(self, p => {
                let mut q = sqlx::query_scalar::<_, String>(sqlx::AssertSqlSafe(sql.clone())).bind(now_ms);
                for id in chunk {
                    q = q.bind(id);
                }
                q.fetch_all(p).await?
            });
            live.extend(found);
        }
        Ok(live)
    }

    // ---- bundle verification keys ----------------------------------------

    pub async fn list_keys(&self, tenant_id: &str) -> Result<Vec<KeyRow>> {
        with_pool!(self, p => {
            let rows = sqlx::query("SELECT tenant_id, key_id, algorithm, public_pem, scope, created_at, created_by FROM verification_keys WHERE tenant_id = $1 ORDER BY key_id")
                .bind(tenant_id).fetch_all(p).await?;
            rows.iter().map(|r| Ok(key_from_row!(r))).collect()
        })
    }

    // ---- bundles ----------------------------------------------------------

    pub async fn bundle_version(
        &self,
        tenant_id: &str,
        name: &str,
        revision: &str,
    ) -> Result<Option<BundleVersionRow>> {
        with_pool!(self, p => {
            let row = sqlx::query(sqlx::AssertSqlSafe(format!("SELECT {VERSION_COLUMNS} FROM bundle_versions WHERE tenant_id = $1 AND name = $2 AND revision = $3")))
                .bind(tenant_id).bind(name).bind(revision).fetch_optional(p).await?;
            match row { Some(r) => Ok(Some(version_from_row!(r))), None => Ok(None) }
        })
    }

    pub async fn bundle_versions(&self, tenant_id: &str, name: &str) -> Result<Vec<BundleVersionRow>> {
        with_pool!(self, p => {
            let rows = sqlx::query(sqlx::AssertSqlSafe(format!("SELECT {VERSION_COLUMNS} FROM bundle_versions WHERE tenant_id = $1 AND name = $2 ORDER BY uploaded_at, revision")))
                .bind(tenant_id).bind(name).fetch_all(p).await?;
            rows.iter().map(|r| Ok(version_from_row!(r))).collect()
        })
    }

    pub async fn bundle_content(&self, tenant_id: &str, name: &str, revision: &str) -> Result<Option<Vec<u8>>> {
        with_pool!(self, p => {
            let row = sqlx::query("SELECT content FROM bundle_versions WHERE tenant_id = $1 AND name = $2 AND revision = $3")
                .bind(tenant_id).bind(name).bind(revision).fetch_optional(p).await?;
            match row { Some(r) => Ok(Some(r.try_get("content")?)), None => Ok(None) }
        })
    }

    pub async fn list_bundles(&self, tenant_id: &str) -> Result<Vec<BundleSummary>> {
        with_pool!(self, p => {
            let rows = sqlx::query(
                "SELECT v.name, COUNT(*) AS versions, h.revision AS active_revision \
                 FROM bundle_versions v LEFT JOIN bundle_heads h ON h.tenant_id = v.tenant_id AND h.name = v.name \
                 WHERE v.tenant_id = $1 GROUP BY v.name, h.revision ORDER BY v.name")
                .bind(tenant_id).fetch_all(p).await?;
            rows.iter().map(|r| Ok(BundleSummary {
                name: r.try_get("name")?,
                versions: r.try_get("versions")?,
                active_revision: r.try_get("active_revision")?,
            })).collect()
        })
    }

    /// The roots of every stored version of the tenant's other bundles, as
    /// `(bundle name, root)` pairs.
    pub async fn other_bundle_roots(&self, tenant_id: &str, name: &str) -> Result<Vec<(String, String)>> {
        let rows: Vec<(String, String)> = with_pool!(self, p => {
            let rows = sqlx::query("SELECT DISTINCT name, roots FROM bundle_versions WHERE tenant_id = $1 AND name <> $2")
                .bind(tenant_id).bind(name).fetch_all(p).await?;
            rows.iter().map(|r| Ok((r.try_get("name")?, r.try_get("roots")?))).collect::<Result<Vec<_>>>()?
        });
        let mut out = Vec::new();
        for (bundle, roots) in rows {
            let roots: Vec<String> =
                serde_json::from_str(&roots).map_err(|e| StoreError::Corrupt(format!("bundle roots: {e}")))?;
            out.extend(roots.into_iter().map(|r| (bundle.clone(), r)));
        }
        Ok(out)
    }

    /// Makes `revision` the active version of the bundle and records the
    /// activation; returns the revision that was active before, if any.
    /// The active revision of a bundle, if any.
    pub async fn bundle_head(&self, tenant_id: &str, name: &str) -> Result<Option<String>> {
        with_pool!(self, p => {
            let row = sqlx::query("SELECT revision FROM bundle_heads WHERE tenant_id = $1 AND name = $2")
                .bind(tenant_id).bind(name).fetch_optional(p).await?;
            match row { Some(r) => Ok(Some(r.try_get("revision")?)), None => Ok(None) }
        })
    }

    /// The revision that was active just before the current one.
    pub async fn previous_active(&self, tenant_id: &str, name: &str) -> Result<Option<String>> {
        with_pool!(self, p => {
            let row = sqlx::query(
                "SELECT previous_revision FROM bundle_activations WHERE tenant_id = $1 AND name = $2 ORDER BY id DESC LIMIT 1")
                .bind(tenant_id).bind(name).fetch_optional(p).await?;
            match row { Some(r) => Ok(r.try_get("previous_revision")?), None => Ok(None) }
        })
    }

    /// Every active bundle version of every tenant, with its digest.
    pub async fn heads(&self) -> Result<Vec<HeadRow>> {
        with_pool!(self, p => {
            let rows = sqlx::query(
                "SELECT h.tenant_id, h.name, h.revision, v.digest, h.activated_at, h.activated_by \
                 FROM bundle_heads h JOIN bundle_versions v ON v.tenant_id = h.tenant_id AND v.name = h.name AND v.revision = h.revision \
                 ORDER BY h.tenant_id, h.name")
                .fetch_all(p).await?;
            rows.iter().map(|r| Ok(head_from_row!(r))).collect()
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tenant(i: usize) -> (TenantRow, TokenRow, [u8; 32]) {
        let id = format!("ten_{i}");
        let row = TenantRow {
            id: id.clone(),
            name: format!("tenant {i} {}", "x".repeat(200)),
            platform: false,
            require_signatures: false,
            rego_differences: "warn".into(),
            created_at: 0,
        };
        let token = TokenRow::new(format!("tok_{i}"), &id, "t", RoleSet::default(), "test".into(), 0);
        let mut hash = [0u8; 32];
        hash[..8].copy_from_slice(&(i as u64).to_le_bytes());
        (row, token, hash)
    }

    /// A write that fails on a full SQLite database (which rolls the
    /// transaction back itself, so the rollback queued when it is dropped
    /// fails) leaves no connection inside a transaction: with one
    /// connection in the pool, the next write after space is freed commits.
    #[tokio::test]
    async fn a_write_failed_on_a_full_disk_does_not_poison_the_pool() {
        let dir = tempfile::tempdir().unwrap();
        let url = format!("sqlite://{}", dir.path().join("s.db").display());
        let store = Store::connect(&url, 1).await.unwrap();
        store.limit_pages(Some(1));
        let mut failed = None;
        for i in 0..1000 {
            let (t, k, h) = tenant(i);
            if let Err(e) = store.create_tenant(&t, &k, &h).await {
                failed = Some((i, e));
                break;
            }
        }
        let (i, e) = failed.expect("a full database refuses writes");
        assert_eq!(e.cause(), "disk_full", "{e}");
        for _ in 0..3 {
            let (t, k, h) = tenant(i);
            let again = store.create_tenant(&t, &k, &h).await.unwrap_err();
            assert_eq!(
                again.cause(),
                "disk_full",
                "still full, not stuck in a transaction: {again}"
            );
        }
        store.limit_pages(None);
        let (t, k, h) = tenant(i);
        store
            .create_tenant(&t, &k, &h)
            .await
            .expect("the write after space is freed commits");
        assert!(store.tenant(&t.id).await.unwrap().is_some());
    }
}
