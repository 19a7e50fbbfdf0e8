//! Administrative acts on tenants, tokens and settings, each written with
//! the ledger entry recording it in one transaction
//! ([`crate::store::AdminWrite`] in a [`Change`]): a token never exists
//! without the evidence of who minted it, and a revocation or a settings
//! change is in force exactly when its entry is.
//!
//! The HTTP handlers check the request and build the rows; these functions
//! write them. Bundle verification keys are the policy service's
//! (`PolicyService::add_key`, `delete_key`).

use serde_json::{Value, json};

use crate::auth::Principal;
use crate::clock::rfc3339_ms;
use crate::ledger::{AppendError, Ledger, Record};
use crate::store::{AdminWrite, Change, SessionRow, TenantRow, TokenRow};

/// What the ledger records of a minted token (never its secret).
pub fn token_record(row: &TokenRow) -> Value {
    json!({"token_id": row.id, "name": row.name, "roles": row.roles.to_csv(), "subject": row.subject,
        "agent_ids": row.agent_ids.entries(), "runner_ids": row.runner_ids.entries(),
        "expires_at": row.expires_at.map(rfc3339_ms)})
}

fn admin(write: AdminWrite) -> Change {
    Change {
        admin: Some(write),
        ..Change::default()
    }
}

/// Creates `tenant` with its first admin token. The creator's log records
/// it, and the new tenant's own log opens with its creation and its first
/// token. A name taken is [`AppendError::Conflict`].
pub async fn create_tenant(
    ledger: &Ledger,
    by: &Principal,
    tenant: TenantRow,
    first: TokenRow,
    hash: [u8; 32],
) -> Result<(), AppendError> {
    let created = json!({"tenant_id": tenant.id, "name": tenant.name, "platform": tenant.platform});
    let mut minted = token_record(&first);
    minted["tenant_id"] = tenant.id.clone().into();
    let records = vec![
        Record::new(&by.tenant_id, "tenant.create", &by.actor(), &created).about(&tenant.id),
        Record::new(&tenant.id, "tenant.create", &by.actor(), &created).about(&tenant.id),
        Record::new(&tenant.id, "token.create", &by.actor(), &minted).about(&first.id),
    ];
    let write = AdminWrite::CreateTenant {
        tenant,
        admin: first,
        hash,
    };
    ledger.append_with(records, admin(write)).await.map(|_| ())
}

/// Mints `token` (its secret's hash) in the caller's tenant.
pub async fn mint_token(ledger: &Ledger, by: &Principal, token: TokenRow, hash: [u8; 32]) -> Result<(), AppendError> {
    let record = Record::new(&by.tenant_id, "token.create", &by.actor(), &token_record(&token)).about(&token.id);
    ledger
        .append_with(vec![record], admin(AdminWrite::MintToken { token, hash }))
        .await
        .map(|_| ())
}

/// Revokes a live token of the caller's tenant: false when there is none
/// by that id (nothing recorded).
pub async fn revoke_token(ledger: &Ledger, by: &Principal, token_id: &str, at: i64) -> Result<bool, AppendError> {
    let record = Record::new(
        &by.tenant_id,
        "token.revoke",
        &by.actor(),
        &json!({"token_id": token_id}),
    )
    .about(token_id);
    let write = AdminWrite::RevokeToken {
        tenant_id: by.tenant_id.clone(),
        token_id: token_id.to_string(),
        at,
    };
    match ledger.append_with(vec![record], admin(write)).await {
        Ok(_) => Ok(true),
        Err(AppendError::Changed("token")) => Ok(false),
        Err(e) => Err(e),
    }
}

/// Starts a console session acting as the caller's token: false when the
/// token was revoked meanwhile (nothing recorded).
pub async fn start_session(
    ledger: &Ledger,
    by: &Principal,
    session: SessionRow,
    hash: [u8; 32],
) -> Result<bool, AppendError> {
    let payload = json!({"session_id": session.id, "token_id": session.token_id,
        "expires_at": rfc3339_ms(session.expires_at)});
    let record = Record::new(&by.tenant_id, "console.sign_in", &by.actor(), &payload).about(&session.id);
    match ledger
        .append_with(vec![record], admin(AdminWrite::StartSession { session, hash }))
        .await
    {
        Ok(_) => Ok(true),
        Err(AppendError::Changed("token")) => Ok(false),
        Err(e) => Err(e),
    }
}

/// Ends a live console session of the caller's tenant: false when it had
/// ended already (nothing recorded).
pub async fn end_session(ledger: &Ledger, by: &Principal, session_id: &str, at: i64) -> Result<bool, AppendError> {
    let record = Record::new(
        &by.tenant_id,
        "console.sign_out",
        &by.actor(),
        &json!({"session_id": session_id}),
    )
    .about(session_id);
    let write = AdminWrite::EndSession {
        tenant_id: by.tenant_id.clone(),
        session_id: session_id.to_string(),
        at,
    };
    match ledger.append_with(vec![record], admin(write)).await {
        Ok(_) => Ok(true),
        Err(AppendError::Changed("session")) => Ok(false),
        Err(e) => Err(e),
    }
}

/// Sets the caller's tenant's settings.
pub async fn set_settings(
    ledger: &Ledger,
    by: &Principal,
    require_signatures: bool,
    rego_differences: &str,
) -> Result<(), AppendError> {
    let payload = json!({"require_signatures": require_signatures, "rego_differences": rego_differences});
    let record = Record::new(&by.tenant_id, "settings.change", &by.actor(), &payload).about(&by.tenant_id);
    let write = AdminWrite::Settings {
        tenant_id: by.tenant_id.clone(),
        require_signatures,
        rego_differences: rego_differences.to_string(),
    };
    ledger.append_with(vec![record], admin(write)).await.map(|_| ())
}
