//! Administrative writes (a tenant with its first token, a token minted or
//! revoked, a bundle verification key added or deleted, a tenant's
//! settings, a console session started or ended), each written inside the ledger writer's batch with the entry
//! recording it. Reads are in `mod.rs`.

use super::ledger::TxConn;
use super::statement::query;
use super::{INSERT_TOKEN, KeyRow, Result, StoreError, TenantRow, TokenRow, conflict};

/// One administrative write.
#[derive(Debug, Clone)]
pub enum AdminWrite {
    /// A new tenant and its first admin token (secret hash).
    CreateTenant {
        tenant: TenantRow,
        admin: TokenRow,
        hash: [u8; 32],
    },
    MintToken {
        token: TokenRow,
        hash: [u8; 32],
    },
    /// Revokes a live token of the tenant; none is [`StoreError::Changed`].
    RevokeToken {
        tenant_id: String,
        token_id: String,
        at: i64,
    },
    AddKey(KeyRow),
    /// Deletes a key of the tenant; none is [`StoreError::Changed`].
    DeleteKey {
        tenant_id: String,
        key_id: String,
    },
    Settings {
        tenant_id: String,
        require_signatures: bool,
        rego_differences: String,
    },
    /// A console sign-in: a session acting as a live token of the tenant
    /// (a token revoked meanwhile is [`StoreError::Changed`]).
    StartSession {
        session: SessionRow,
        hash: [u8; 32],
    },
    /// Ends a live session of the tenant; none is [`StoreError::Changed`].
    EndSession {
        tenant_id: String,
        session_id: String,
        at: i64,
    },
}

/// A console session as stored: the cookie's secret only as its hash.
#[derive(Debug, Clone)]
pub struct SessionRow {
    pub id: String,
    pub tenant_id: String,
    pub token_id: String,
    pub created_at: i64,
    pub expires_at: i64,
}

/// Writes `a`. A tenant name, token secret or key id that exists already
/// is [`StoreError::Conflict`]; a token or key that is not there is
/// [`StoreError::Changed`].
pub(super) async fn write(conn: &mut TxConn, a: &AdminWrite) -> Result<()> {
    match a {
        AdminWrite::CreateTenant { tenant, admin, hash } => {
            query(
                "INSERT INTO tenants (id, name, platform, require_signatures, rego_differences, created_at) \
                 VALUES ($1, $2, $3, $4, $5, $6)",
            )
            .bind(&tenant.id)
            .bind(&tenant.name)
            .bind(tenant.platform)
            .bind(tenant.require_signatures)
            .bind(&tenant.rego_differences)
            .bind(tenant.created_at)
            .execute(conn)
            .await
            .map(|_| ())
            .map_err(conflict("a tenant with this name"))?;
            insert_token(conn, admin, hash).await
        }
        AdminWrite::MintToken { token, hash } => insert_token(conn, token, hash).await,
        AdminWrite::RevokeToken {
            tenant_id,
            token_id,
            at,
        } => {
            query("UPDATE tokens SET revoked_at = $1 WHERE tenant_id = $2 AND id = $3 AND revoked_at IS NULL")
                .bind(at)
                .bind(tenant_id)
                .bind(token_id)
                .execute_one(conn, "token")
                .await
        }
        AdminWrite::StartSession { session, hash } => {
            // The token's sessions that have ended go, so the table holds
            // live sessions and little else.
            query("DELETE FROM console_sessions WHERE token_id = $1 AND (ended_at IS NOT NULL OR expires_at <= $2)")
                .bind(&session.token_id)
                .bind(session.created_at)
                .execute(conn)
                .await
                .map(|_| ())?;
            // Only a token that is still live, in the session's tenant.
            let done = query(
                "INSERT INTO console_sessions (id, tenant_id, token_id, secret_hash, created_at, expires_at) \
                 SELECT $1, $2, $3, $4, $5, $6 FROM tokens \
                 WHERE id = $3 AND tenant_id = $2 AND revoked_at IS NULL",
            )
            .bind(&session.id)
            .bind(&session.tenant_id)
            .bind(&session.token_id)
            .bind(&hash[..])
            .bind(session.created_at)
            .bind(session.expires_at)
            .execute(conn)
            .await
            .map_err(conflict("a session with this secret"))?;
            if done == 1 {
                Ok(())
            } else {
                Err(StoreError::Changed("token"))
            }
        }
        AdminWrite::EndSession {
            tenant_id,
            session_id,
            at,
        } => {
            query("UPDATE console_sessions SET ended_at = $1 WHERE tenant_id = $2 AND id = $3 AND ended_at IS NULL")
                .bind(at)
                .bind(tenant_id)
                .bind(session_id)
                .execute_one(conn, "session")
                .await
        }
        AdminWrite::AddKey(key) => query(
            "INSERT INTO verification_keys (tenant_id, key_id, algorithm, public_pem, scope, created_at, created_by) \
             VALUES ($1, $2, $3, $4, $5, $6, $7)",
        )
        .bind(&key.tenant_id)
        .bind(&key.key_id)
        .bind(&key.algorithm)
        .bind(&key.public_pem)
        .bind(&key.scope)
        .bind(key.created_at)
        .bind(&key.created_by)
        .execute(conn)
        .await
        .map(|_| ())
        .map_err(conflict("a key with this id")),
        AdminWrite::DeleteKey { tenant_id, key_id } => {
            query("DELETE FROM verification_keys WHERE tenant_id = $1 AND key_id = $2")
                .bind(tenant_id)
                .bind(key_id)
                .execute_one(conn, "key")
                .await
        }
        AdminWrite::Settings {
            tenant_id,
            require_signatures,
            rego_differences,
        } => {
            query("UPDATE tenants SET require_signatures = $1, rego_differences = $2 WHERE id = $3")
                .bind(require_signatures)
                .bind(rego_differences)
                .bind(tenant_id)
                .execute(conn)
                .await
                .map(|_| ())?;
            Ok(())
        }
    }
}

async fn insert_token(conn: &mut TxConn, token: &TokenRow, hash: &[u8; 32]) -> Result<()> {
    query(INSERT_TOKEN)
        .bind(&token.id)
        .bind(&token.tenant_id)
        .bind(&token.name)
        .bind(&hash[..])
        .bind(token.roles.to_csv())
        .bind(token.created_at)
        .bind(&token.created_by)
        .bind(&token.subject)
        .bind(token.agent_ids.to_json())
        .bind(token.runner_ids.to_json())
        .bind(token.expires_at)
        .execute(conn)
        .await
        .map(|_| ())
        .map_err(conflict("a token with this secret"))
}
