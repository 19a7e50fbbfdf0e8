//! Tenants, tokens, bundle verification keys and tenant settings.

use axum::Json;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::routing::{delete, get, post};
use serde::{Deserialize, Serialize};

use super::AppState;
use super::extract::{ApiJson, Caller};
use super::problem::Problem;
use crate::auth::{Action, Binding, DEFAULT_SUBJECT_PREFIX, Principal, Role, RoleSet, mint_token, new_id};
use crate::clock::rfc3339_ms;
use crate::model::kernel::{agent_fault, name_fault};
use crate::policy::compat::OnDifference;
use crate::store::{KeyRow, TenantRow, TokenRow};
use crate::tenancy;

pub fn router() -> axum::Router<AppState> {
    axum::Router::new()
        .route("/v1/tenants", post(create_tenant).get(list_tenants))
        .route("/v1/tokens", post(create_token).get(list_tokens))
        .route("/v1/tokens/{id}", delete(revoke_token))
        .route("/v1/whoami", get(whoami))
        .route("/v1/keys", post(add_key).get(list_keys))
        .route("/v1/keys/{key_id}", delete(delete_key))
        .route("/v1/settings", get(get_settings).put(put_settings))
}

#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CreateTenant {
    /// 1–63 lower-case letters, digits and '-'.
    pub name: String,
}

#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct TenantView {
    pub id: String,
    pub name: String,
    pub platform: bool,
    pub require_signatures: bool,
    pub created_at: String,
}

impl From<TenantRow> for TenantView {
    fn from(t: TenantRow) -> Self {
        Self {
            id: t.id,
            name: t.name,
            platform: t.platform,
            require_signatures: t.require_signatures,
            created_at: rfc3339_ms(t.created_at),
        }
    }
}

#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct CreatedTenant {
    pub tenant: TenantView,
    /// The new tenant's first admin token. Shown once.
    pub admin_token: CreatedToken,
}

#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CreateToken {
    /// A label for people: what or who uses the token.
    pub name: String,
    pub roles: Vec<Role>,
    /// The person or service using the token (1–256 printable characters):
    /// reviewers are counted by subject, and evidence names it. Default:
    /// `token-name:<name>` (a prefix chosen subjects may not use).
    #[serde(default)]
    pub subject: Option<String>,
    /// The agent ids the token may act as (streams, intents, step
    /// results): exact ids, or prefixes ending in `*` (`claims-*`), at most
    /// 64. Default: the token's name, when the token has the `agent` or
    /// `admin` role and its name is a valid agent id; `[]` binds none.
    #[serde(default)]
    pub agent_ids: Option<Vec<String>>,
    /// The runner ids the token may act as (streams, job results), as
    /// `agent_ids`; default: the token's name, for `runner` and `admin` tokens.
    #[serde(default)]
    pub runner_ids: Option<Vec<String>>,
    /// When the token stops being honoured (RFC 3339, in the future).
    #[serde(default)]
    pub expires_at: Option<String>,
    /// Or: how long from now it is honoured, in seconds (at most ten years).
    #[serde(default)]
    pub ttl_seconds: Option<u64>,
}

/// A minted token: what the listing shows of it, and its secret.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct CreatedToken {
    #[serde(flatten)]
    pub view: TokenView,
    /// The secret. Shown once; only its hash is stored.
    pub token: String,
}

impl CreatedToken {
    fn of(row: TokenRow, secret: String) -> Self {
        Self {
            view: row.into(),
            token: secret,
        }
    }
}

#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct TokenView {
    pub id: String,
    pub name: String,
    pub roles: Vec<Role>,
    /// The person or service behind the token.
    pub subject: String,
    /// The agent ids it may act as (exact, or prefixes ending in `*`).
    pub agent_ids: Vec<String>,
    /// The runner ids it may act as.
    pub runner_ids: Vec<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub expires_at: Option<String>,
    pub created_at: String,
    pub created_by: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub revoked_at: Option<String>,
}

impl From<TokenRow> for TokenView {
    fn from(t: TokenRow) -> Self {
        Self {
            id: t.id,
            name: t.name,
            roles: t.roles.iter().collect(),
            subject: t.subject,
            agent_ids: t.agent_ids.entries().to_vec(),
            runner_ids: t.runner_ids.entries().to_vec(),
            expires_at: t.expires_at.map(rfc3339_ms),
            created_at: rfc3339_ms(t.created_at),
            created_by: t.created_by,
            revoked_at: t.revoked_at.map(rfc3339_ms),
        }
    }
}

/// The calling token as the server knows it: what it is, whose, and what
/// it may do.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct Whoami {
    pub token_id: String,
    pub name: String,
    pub tenant_id: String,
    pub tenant_name: String,
    /// Whether the tenant is the platform's (its admins manage tenants).
    pub platform: bool,
    pub roles: Vec<Role>,
    /// The person or service behind the token.
    pub subject: String,
    /// The agent ids it may act as (exact, or prefixes ending in `*`).
    pub agent_ids: Vec<String>,
    /// The runner ids it may act as.
    pub runner_ids: Vec<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub expires_at: Option<String>,
}

#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct AddKey {
    /// The `kid` that bundle signatures name.
    pub key_id: String,
    /// `EdDSA`, `RS256` or `ES256`.
    pub algorithm: String,
    /// The public key, PEM.
    pub public_key: String,
    /// When set, signatures must carry this scope.
    #[serde(default)]
    pub scope: Option<String>,
}

#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct KeyView {
    pub key_id: String,
    pub algorithm: String,
    pub public_key: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub scope: Option<String>,
    pub created_at: String,
    pub created_by: String,
}

impl From<KeyRow> for KeyView {
    fn from(k: KeyRow) -> Self {
        Self {
            key_id: k.key_id,
            algorithm: k.algorithm,
            public_key: k.public_pem,
            scope: k.scope,
            created_at: rfc3339_ms(k.created_at),
            created_by: k.created_by,
        }
    }
}

#[derive(Debug, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct Settings {
    /// Refuse unsigned bundles at upload and at activation.
    pub require_signatures: bool,
    /// What an upload gets where Warden may evaluate the bundle otherwise
    /// than OPA (docs/rego-compatibility.md): `warn` (the default) stores
    /// it and lists each place in `notices`; `refuse` refuses it with 422
    /// `rego_difference`.
    pub rego_differences: OnDifference,
}

/// A change of settings: a field left out keeps its value.
#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct SettingsChange {
    #[serde(default)]
    pub require_signatures: Option<bool>,
    #[serde(default)]
    pub rego_differences: Option<OnDifference>,
}

fn validate_tenant_name(name: &str) -> Result<(), Problem> {
    let ok = !name.is_empty()
        && name.len() <= 63
        && name
            .chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-')
        && !name.starts_with('-');
    if ok {
        Ok(())
    } else {
        Err(Problem::bad_request(
            "invalid_tenant_name",
            format!("tenant name {name:?} must be 1 to 63 lower-case letters, digits and '-', not starting with '-'"),
        ))
    }
}

fn validate_label(field: &str, value: &str, max: usize) -> Result<(), Problem> {
    if value.trim().is_empty() || value.len() > max || value.chars().any(char::is_control) {
        return Err(Problem::bad_request(
            "invalid_field",
            format!("field `{field}` must be 1 to {max} printable characters"),
        ));
    }
    Ok(())
}

fn roles_of(roles: &[Role]) -> Result<RoleSet, Problem> {
    let set: RoleSet = roles.iter().copied().collect();
    if set.is_empty() {
        return Err(Problem::bad_request(
            "invalid_field",
            "field `roles` must name at least one role",
        ));
    }
    Ok(set)
}

/// Builds a new token row (default subject and bindings) and its secret.
fn new_token(tenant_id: &str, name: &str, roles: RoleSet, by: String, now: i64) -> (TokenRow, crate::auth::NewToken) {
    let minted = mint_token();
    let row = TokenRow::new(new_id("tok", now), tenant_id, name, roles, by, now);
    (row, minted)
}

/// Most entries of one binding.
const MAX_BINDING_ENTRIES: usize = 64;

/// Longest `ttl_seconds`: ten years.
const MAX_TTL_SECONDS: u64 = 10 * 365 * 86400;

/// A binding as given at minting: exact ids, or prefixes ending in `*`,
/// each (without its `*`) passing the kernel's naming rule (`fault`). A
/// token whose roles never act as this kind of identity may not name any.
fn binding_of(
    field: &str,
    entries: Option<Vec<String>>,
    default: Binding,
    may: bool,
    fault: fn(&str, &str) -> Option<String>,
) -> Result<Binding, Problem> {
    let Some(entries) = entries else {
        return Ok(default);
    };
    if !may && !entries.is_empty() {
        return Err(Problem::bad_request(
            "invalid_field",
            format!(
                "field `{field}` binds identities this token's roles never act as; give it the role, or leave the field out"
            ),
        ));
    }
    if entries.len() > MAX_BINDING_ENTRIES {
        return Err(Problem::bad_request(
            "invalid_field",
            format!("field `{field}` has more than {MAX_BINDING_ENTRIES} entries; use prefixes (`claims-*`)"),
        ));
    }
    let mut out: Vec<String> = Vec::with_capacity(entries.len());
    for e in entries {
        let id = e.strip_suffix('*').unwrap_or(&e);
        if let Some(fault) = fault(&format!("each entry of `{field}` (without its trailing *)"), id) {
            return Err(Problem::bad_request("invalid_field", fault));
        }
        if !out.contains(&e) {
            out.push(e);
        }
    }
    Ok(Binding::new(out))
}

fn subject_of(subject: Option<String>, default: String) -> Result<String, Problem> {
    let Some(subject) = subject else {
        return Ok(default);
    };
    validate_label("subject", &subject, 256)?;
    if subject.starts_with(DEFAULT_SUBJECT_PREFIX) {
        return Err(Problem::bad_request(
            "invalid_field",
            format!(
                "subjects starting with `{DEFAULT_SUBJECT_PREFIX}` are those of tokens minted without one; name the person or service"
            ),
        ));
    }
    Ok(subject)
}

/// The expiry asked for, epoch ms: `expires_at` or `ttl_seconds`, in the future.
fn expiry_of(expires_at: Option<&str>, ttl_seconds: Option<u64>, now: i64) -> Result<Option<i64>, Problem> {
    let at = match (expires_at, ttl_seconds) {
        (None, None) => return Ok(None),
        (Some(_), Some(_)) => {
            return Err(Problem::bad_request(
                "invalid_field",
                "give `expires_at` or `ttl_seconds`, not both",
            ));
        }
        (Some(t), None) => chrono::DateTime::parse_from_rfc3339(t)
            .map_err(|e| {
                Problem::bad_request(
                    "invalid_field",
                    format!("field `expires_at` must be an RFC 3339 time: {e}"),
                )
            })?
            .timestamp_millis(),
        (None, Some(s)) => {
            if s == 0 || s > MAX_TTL_SECONDS {
                return Err(Problem::bad_request(
                    "invalid_field",
                    format!("field `ttl_seconds` must be between 1 and {MAX_TTL_SECONDS} (ten years)"),
                ));
            }
            now + (s as i64) * 1000
        }
    };
    if at <= now {
        return Err(Problem::bad_request(
            "invalid_field",
            "field `expires_at` must be in the future",
        ));
    }
    Ok(Some(at))
}

#[utoipa::path(post, path = "/v1/tenants", tag = "admin", request_body = CreateTenant,
    responses((status = 201, body = CreatedTenant), (status = "4XX", body = super::problem::ProblemBody)),
    security(("bearer" = [])))]
pub async fn create_tenant(
    State(state): State<AppState>,
    caller: Caller,
    ApiJson(body): ApiJson<CreateTenant>,
) -> Result<(StatusCode, Json<CreatedTenant>), Problem> {
    let who = caller.require(Action::ManageTenants)?;
    validate_tenant_name(&body.name)?;
    let now = state.clock.now_ms();
    let tenant = TenantRow {
        id: new_id("ten", now),
        name: body.name.clone(),
        platform: false,
        require_signatures: false,
        rego_differences: OnDifference::default().as_str().into(),
        created_at: now,
    };
    let roles: RoleSet = [Role::Admin].into_iter().collect();
    let (token, minted) = new_token(&tenant.id, "admin", roles, who.actor(), now);
    tenancy::create_tenant(&state.ledger, who, tenant.clone(), token.clone(), minted.hash).await?;
    tracing::info!(tenant = %tenant.id, name = %tenant.name, by = %who.actor(), "tenant created");
    Ok((
        StatusCode::CREATED,
        Json(CreatedTenant {
            tenant: tenant.into(),
            admin_token: CreatedToken::of(token, minted.secret),
        }),
    ))
}

#[utoipa::path(get, path = "/v1/tenants", tag = "admin",
    responses((status = 200, body = Vec<TenantView>), (status = "4XX", body = super::problem::ProblemBody)),
    security(("bearer" = [])))]
pub async fn list_tenants(State(state): State<AppState>, caller: Caller) -> Result<Json<Vec<TenantView>>, Problem> {
    caller.require(Action::ManageTenants)?;
    let rows = state.store.list_tenants().await?;
    Ok(Json(rows.into_iter().map(Into::into).collect()))
}

#[utoipa::path(post, path = "/v1/tokens", tag = "admin", request_body = CreateToken,
    responses((status = 201, body = CreatedToken), (status = "4XX", body = super::problem::ProblemBody)),
    security(("bearer" = [])))]
pub async fn create_token(
    State(state): State<AppState>,
    caller: Caller,
    ApiJson(body): ApiJson<CreateToken>,
) -> Result<(StatusCode, Json<CreatedToken>), Problem> {
    let who = caller.require(Action::ManageTokens)?;
    validate_label("name", &body.name, 128)?;
    let roles = roles_of(&body.roles)?;
    let now = state.clock.now_ms();
    let (mut row, minted) = new_token(&who.tenant_id, &body.name, roles, who.actor(), now);
    let may = |role| roles.contains(role) || roles.contains(Role::Admin);
    row.subject = subject_of(body.subject, row.subject)?;
    row.agent_ids = binding_of(
        "agent_ids",
        body.agent_ids,
        row.agent_ids,
        may(Role::Agent),
        agent_fault,
    )?;
    row.runner_ids = binding_of(
        "runner_ids",
        body.runner_ids,
        row.runner_ids,
        may(Role::Runner),
        name_fault,
    )?;
    row.expires_at = expiry_of(body.expires_at.as_deref(), body.ttl_seconds, now)?;
    tenancy::mint_token(&state.ledger, who, row.clone(), minted.hash).await?;
    tracing::info!(token = %row.id, tenant = %who.tenant_id, roles = %roles.to_csv(), subject = %row.subject,
        by = %who.actor(), "token created");
    Ok((StatusCode::CREATED, Json(CreatedToken::of(row, minted.secret))))
}

#[utoipa::path(get, path = "/v1/tokens", tag = "admin",
    responses((status = 200, body = Vec<TokenView>), (status = "4XX", body = super::problem::ProblemBody)),
    security(("bearer" = [])))]
pub async fn list_tokens(State(state): State<AppState>, caller: Caller) -> Result<Json<Vec<TokenView>>, Problem> {
    let who = caller.require(Action::ManageTokens)?;
    let rows = state.store.list_tokens(&who.tenant_id).await?;
    Ok(Json(rows.into_iter().map(Into::into).collect()))
}

/// Any valid token reads what it is; nothing about other tokens.
#[utoipa::path(get, path = "/v1/whoami", tag = "admin",
    responses((status = 200, body = Whoami), (status = "4XX", body = super::problem::ProblemBody)),
    security(("bearer" = [])))]
pub async fn whoami(caller: Caller) -> Json<Whoami> {
    Json(Whoami::of(caller.0))
}

impl Whoami {
    pub fn of(p: Principal) -> Self {
        Whoami {
            token_id: p.token_id,
            name: p.token_name,
            tenant_id: p.tenant_id,
            tenant_name: p.tenant_name,
            platform: p.platform,
            roles: p.roles.iter().collect(),
            subject: p.subject,
            agent_ids: p.agent_ids.entries().to_vec(),
            runner_ids: p.runner_ids.entries().to_vec(),
            expires_at: p.expires_at.map(rfc3339_ms),
        }
    }
}

#[utoipa::path(delete, path = "/v1/tokens/{id}", tag = "admin",
    params(("id" = String, Path, description = "token id")),
    responses((status = 204), (status = "4XX", body = super::problem::ProblemBody)),
    security(("bearer" = [])))]
pub async fn revoke_token(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
) -> Result<StatusCode, Problem> {
    let who = caller.require(Action::ManageTokens)?;
    if !tenancy::revoke_token(&state.ledger, who, &id, state.clock.now_ms()).await? {
        return Err(Problem::not_found(
            "unknown_token",
            format!("no live token {id:?} in this tenant"),
        ));
    }
    state.tokens.forget(&id);
    // Its console sessions end with it.
    state.sessions.forget_token(&id);
    // Its open streams on this instance close now; other instances close
    // theirs at their next check (every `auth.cache_ttl_ms`).
    let closed = state.kernel.close_streams_of(&id);
    tracing::info!(token = %id, tenant = %who.tenant_id, streams_closed = closed, by = %who.actor(), "token revoked");
    Ok(StatusCode::NO_CONTENT)
}

#[utoipa::path(post, path = "/v1/keys", tag = "admin", request_body = AddKey,
    responses((status = 201, body = KeyView), (status = "4XX", body = super::problem::ProblemBody)),
    security(("bearer" = [])))]
pub async fn add_key(
    State(state): State<AppState>,
    caller: Caller,
    ApiJson(body): ApiJson<AddKey>,
) -> Result<(StatusCode, Json<KeyView>), Problem> {
    let who = caller.require(Action::ManageKeys)?;
    validate_label("key_id", &body.key_id, 128)?;
    let row = state
        .policy
        .add_key(
            who,
            &body.key_id,
            &body.algorithm,
            &body.public_key,
            body.scope.as_deref(),
        )
        .await?;
    Ok((StatusCode::CREATED, Json(row.into())))
}

#[utoipa::path(get, path = "/v1/keys", tag = "admin",
    responses((status = 200, body = Vec<KeyView>), (status = "4XX", body = super::problem::ProblemBody)),
    security(("bearer" = [])))]
pub async fn list_keys(State(state): State<AppState>, caller: Caller) -> Result<Json<Vec<KeyView>>, Problem> {
    let who = caller.require(Action::ReadKeys)?;
    let rows = state.store.list_keys(&who.tenant_id).await?;
    Ok(Json(rows.into_iter().map(Into::into).collect()))
}

#[utoipa::path(delete, path = "/v1/keys/{key_id}", tag = "admin",
    params(("key_id" = String, Path, description = "key id")),
    responses((status = 204), (status = "4XX", body = super::problem::ProblemBody)),
    security(("bearer" = [])))]
pub async fn delete_key(
    State(state): State<AppState>,
    caller: Caller,
    Path(key_id): Path<String>,
) -> Result<StatusCode, Problem> {
    let who = caller.require(Action::ManageKeys)?;
    if !state.policy.delete_key(who, &key_id).await? {
        return Err(Problem::not_found(
            "unknown_key",
            format!("no key {key_id:?} in this tenant"),
        ));
    }
    Ok(StatusCode::NO_CONTENT)
}

#[utoipa::path(get, path = "/v1/settings", tag = "admin",
    responses((status = 200, body = Settings), (status = "4XX", body = super::problem::ProblemBody)),
    security(("bearer" = [])))]
pub async fn get_settings(State(state): State<AppState>, caller: Caller) -> Result<Json<Settings>, Problem> {
    let who = caller.require(Action::ReadSettings)?;
    Ok(Json(settings_of(&state, &who.tenant_id).await?))
}

async fn settings_of(state: &AppState, tenant_id: &str) -> Result<Settings, Problem> {
    let t = state
        .store
        .tenant(tenant_id)
        .await?
        .ok_or_else(|| Problem::internal("settings", &"caller's tenant vanished"))?;
    Ok(Settings {
        require_signatures: t.require_signatures,
        rego_differences: OnDifference::parse(&t.rego_differences),
    })
}

#[utoipa::path(put, path = "/v1/settings", tag = "admin", request_body = SettingsChange,
    responses((status = 200, body = Settings), (status = "4XX", body = super::problem::ProblemBody)),
    security(("bearer" = [])))]
pub async fn put_settings(
    State(state): State<AppState>,
    caller: Caller,
    ApiJson(body): ApiJson<SettingsChange>,
) -> Result<Json<Settings>, Problem> {
    let who = caller.require(Action::WriteSettings)?;
    let current = settings_of(&state, &who.tenant_id).await?;
    let next = Settings {
        require_signatures: body.require_signatures.unwrap_or(current.require_signatures),
        rego_differences: body.rego_differences.unwrap_or(current.rego_differences),
    };
    tenancy::set_settings(
        &state.ledger,
        who,
        next.require_signatures,
        next.rego_differences.as_str(),
    )
    .await?;
    tracing::info!(
        tenant = %who.tenant_id,
        require_signatures = next.require_signatures,
        rego_differences = next.rego_differences.as_str(),
        by = %who.actor(),
        "settings changed"
    );
    Ok(Json(next))
}
