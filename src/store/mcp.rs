//! The MCP gateway's tables: upstreams a tenant registered, the tool
//! definitions pinned for them, and the reviews of calls waiting for
//! people. Written only with the ledger entries that record them
//! ([`McpWrite`] in a [`super::Change`]).

use sqlx::Row;

use super::ledger::TxConn;
use super::statement::query;
use super::{Pool, Result, Store};

/// An upstream MCP server a tenant admin registered.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UpstreamRow {
    pub tenant_id: String,
    pub name: String,
    pub url: String,
    /// The bearer token Warden presents to it, sealed; None: no token.
    pub secret: Option<String>,
    /// Goes up by one at every replacement.
    pub version: i64,
    pub created_at: i64,
    pub updated_at: i64,
}

/// A tool's definition as pinned, and as last seen.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ToolPinRow {
    pub tenant_id: String,
    pub upstream: String,
    pub name: String,
    pub pinned_hash: String,
    /// The pinned definition, JSON text.
    pub pinned: String,
    pub current_hash: String,
    pub current: String,
    pub pinned_at: i64,
    /// When the latest definition first differed from the pin.
    pub changed_at: Option<i64>,
}

impl ToolPinRow {
    pub fn changed(&self) -> bool {
        self.pinned_hash != self.current_hash
    }
}

/// A review a gateway call waits for: the kernel execution holding it, and
/// what it is bound to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct McpReviewRow {
    pub execution_id: String,
    pub tenant_id: String,
    pub agent_id: String,
    /// The namespaced tool name.
    pub tool: String,
    pub args_hash: String,
    /// `open` (waiting, or approved and not yet forwarded), `used`
    /// (forwarded once), `closed` (rejected or expired, reported).
    pub state: String,
    pub created_at: i64,
    pub updated_at: i64,
}

/// A write of the gateway's tables, committed with its entries.
#[derive(Debug, Clone)]
pub enum McpWrite {
    PutUpstream(UpstreamRow),
    DeleteUpstream {
        tenant_id: String,
        name: String,
    },
    /// A tool pinned, seen changed, or its change accepted: the whole row.
    Tool(ToolPinRow),
    /// A new review (`expected` None), or one moving on from `expected`.
    Review {
        row: McpReviewRow,
        expected: Option<String>,
    },
}

macro_rules! upstream_from_row {
    ($r:expr) => {
        UpstreamRow {
            tenant_id: $r.try_get("tenant_id")?,
            name: $r.try_get("name")?,
            url: $r.try_get("url")?,
            secret: $r.try_get("secret")?,
            version: $r.try_get("version")?,
            created_at: $r.try_get("created_at")?,
            updated_at: $r.try_get("updated_at")?,
        }
    };
}

macro_rules! pin_from_row {
    ($r:expr) => {
        ToolPinRow {
            tenant_id: $r.try_get("tenant_id")?,
            upstream: $r.try_get("upstream")?,
            name: $r.try_get("name")?,
            pinned_hash: $r.try_get("pinned_hash")?,
            pinned: $r.try_get("pinned")?,
            current_hash: $r.try_get("current_hash")?,
            current: $r.try_get("current")?,
            pinned_at: $r.try_get("pinned_at")?,
            changed_at: $r.try_get("changed_at")?,
        }
    };
}

macro_rules! review_from_row {
    ($r:expr) => {
        McpReviewRow {
            execution_id: $r.try_get("execution_id")?,
            tenant_id: $r.try_get("tenant_id")?,
            agent_id: $r.try_get("agent_id")?,
            tool: $r.try_get("tool")?,
            args_hash: $r.try_get("args_hash")?,
            state: $r.try_get("state")?,
            created_at: $r.try_get("created_at")?,
            updated_at: $r.try_get("updated_at")?,
        }
    };
}

macro_rules! upstream_cols {
    () => {
        "tenant_id, name, url, secret, version, created_at, updated_at"
    };
}
macro_rules! pin_cols {
    () => {
        "tenant_id, upstream, name, pinned_hash, pinned, current_hash, current, pinned_at, changed_at"
    };
}
macro_rules! review_cols {
    () => {
        "execution_id, tenant_id, agent_id, tool, args_hash, state, created_at, updated_at"
    };
}

impl Store {
    /// A tenant's upstreams, by name.
    pub async fn mcp_upstreams(&self, tenant_id: &str) -> Result<Vec<UpstreamRow>> {
        let sql = concat!(
            "SELECT ",
            upstream_cols!(),
            " FROM mcp_upstreams WHERE tenant_id = $1 ORDER BY name"
        );
        with_pool!(self, p => {
            let rows = sqlx::query(sql).bind(tenant_id).fetch_all(p).await?;
            rows.iter().map(|r| Ok(upstream_from_row!(r))).collect()
        })
    }

    pub async fn mcp_upstream(&self, tenant_id: &str, name: &str) -> Result<Option<UpstreamRow>> {
        let sql = concat!(
            "SELECT ",
            upstream_cols!(),
            " FROM mcp_upstreams WHERE tenant_id = $1 AND name = $2"
        );
        with_pool!(self, p => {
            let row = sqlx::query(sql).bind(tenant_id).bind(name).fetch_optional(p).await?;
            row.map(|r| Ok(upstream_from_row!(r))).transpose()
        })
    }

    /// The pinned tools of one upstream, by name.
    pub async fn mcp_tools(&self, tenant_id: &str, upstream: &str) -> Result<Vec<ToolPinRow>> {
        let sql = concat!(
            "SELECT ",
            pin_cols!(),
            " FROM mcp_tools WHERE tenant_id = $1 AND upstream = $2 ORDER BY name"
        );
        with_pool!(self, p => {
            let rows = sqlx::query(sql).bind(tenant_id).bind(upstream).fetch_all(p).await?;
            rows.iter().map(|r| Ok(pin_from_row!(r))).collect()
        })
    }

    /// The newest open review of this agent's call of `tool` with these
    /// arguments, if any.
    pub async fn mcp_open_review(
        &self,
        tenant_id: &str,
        agent_id: &str,
        tool: &str,
        args_hash: &str,
    ) -> Result<Option<McpReviewRow>> {
        let sql = concat!(
            "SELECT ",
            review_cols!(),
            " FROM mcp_reviews WHERE tenant_id = $1 AND agent_id = $2 AND tool = $3 \
             AND args_hash = $4 AND state = 'open' ORDER BY created_at DESC, execution_id DESC LIMIT 1"
        );
        with_pool!(self, p => {
            let row = sqlx::query(sql).bind(tenant_id).bind(agent_id).bind(tool).bind(args_hash)
                .fetch_optional(p).await?;
            row.map(|r| Ok(review_from_row!(r))).transpose()
        })
    }
}

pub(super) async fn write(conn: &mut TxConn, w: &McpWrite) -> Result<()> {
    match w {
        McpWrite::PutUpstream(r) => {
            if r.version > 1 {
                return query(
                    "UPDATE mcp_upstreams SET url = $1, secret = $2, version = $3, updated_at = $4 \
                     WHERE tenant_id = $5 AND name = $6 AND version = $7",
                )
                .bind(&r.url)
                .bind(&r.secret)
                .bind(r.version)
                .bind(r.updated_at)
                .bind(&r.tenant_id)
                .bind(&r.name)
                .bind(r.version - 1)
                .execute_one(conn, "MCP upstream")
                .await;
            }
            query(
                "INSERT INTO mcp_upstreams (tenant_id, name, url, secret, version, created_at, updated_at) \
                 VALUES ($1, $2, $3, $4, 1, $5, $5)",
            )
            .bind(&r.tenant_id)
            .bind(&r.name)
            .bind(&r.url)
            .bind(&r.secret)
            .bind(r.created_at)
            .execute(conn)
            .await
            .map(|_| ())
            .map_err(super::changed_on_unique("MCP upstream"))
        }
        McpWrite::DeleteUpstream { tenant_id, name } => {
            query("DELETE FROM mcp_tools WHERE tenant_id = $1 AND upstream = $2")
                .bind(tenant_id)
                .bind(name)
                .execute(conn)
                .await?;
            query("DELETE FROM mcp_upstreams WHERE tenant_id = $1 AND name = $2")
                .bind(tenant_id)
                .bind(name)
                .execute(conn)
                .await?;
            Ok(())
        }
        McpWrite::Tool(t) => {
            query(
                "INSERT INTO mcp_tools (tenant_id, upstream, name, pinned_hash, pinned, current_hash, current, \
                 pinned_at, changed_at) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9) \
                 ON CONFLICT (tenant_id, upstream, name) DO UPDATE SET pinned_hash = excluded.pinned_hash, \
                 pinned = excluded.pinned, current_hash = excluded.current_hash, current = excluded.current, \
                 pinned_at = excluded.pinned_at, changed_at = excluded.changed_at",
            )
            .bind(&t.tenant_id)
            .bind(&t.upstream)
            .bind(&t.name)
            .bind(&t.pinned_hash)
            .bind(&t.pinned)
            .bind(&t.current_hash)
            .bind(&t.current)
            .bind(t.pinned_at)
            .bind(t.changed_at)
            .execute(conn)
            .await
            .map(|_| ())?;
            Ok(())
        }
        McpWrite::Review { row: r, expected } => {
            let Some(expected) = expected else {
                query(
                    "INSERT INTO mcp_reviews (execution_id, tenant_id, agent_id, tool, args_hash, state, created_at, \
                     updated_at) VALUES ($1, $2, $3, $4, $5, $6, $7, $8)",
                )
                .bind(&r.execution_id)
                .bind(&r.tenant_id)
                .bind(&r.agent_id)
                .bind(&r.tool)
                .bind(&r.args_hash)
                .bind(&r.state)
                .bind(r.created_at)
                .bind(r.updated_at)
                .execute(conn)
                .await
                .map(|_| ())
                .map_err(super::changed_on_unique("MCP review"))?;
                return Ok(());
            };
            query("UPDATE mcp_reviews SET state = $1, updated_at = $2 WHERE execution_id = $3 AND state = $4")
                .bind(&r.state)
                .bind(r.updated_at)
                .bind(&r.execution_id)
                .bind(expected)
                .execute_one(conn, "MCP review")
                .await
        }
    }
}
