//! The audit sinks as the caller's tenant sees them; the tenant's own
//! sinks, created, replaced and deleted through the API; redriving dead
//! letters.

use axum::Json;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::routing::{get, post, put};
use serde::Serialize;
use serde_json::Value;

use super::AppState;
use super::extract::{ApiJson, Caller};
use super::problem::{Problem, ProblemBody};
use crate::auth::Action;
use crate::clock::rfc3339_ms;
use crate::fanout::{self, SinkView};

pub fn router() -> axum::Router<AppState> {
    axum::Router::new()
        .route("/v1/sinks", get(list))
        .route("/v1/sinks/{name}", put(put_sink).delete(delete_sink))
        .route("/v1/sinks/{name}/dead-letters", get(dead_letters))
        .route("/v1/sinks/{name}/redrive", post(redrive))
}

/// A tenant's sink as stored.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct TenantSinkView {
    pub name: String,
    /// `webhook`, `datadog`, `splunk_hec`, `cloudwatch_logs`, `kafka`.
    #[serde(rename = "type")]
    pub kind: String,
    /// Goes up by one at every replacement.
    pub version: i64,
    /// The configuration, secrets masked.
    #[schema(value_type = Object)]
    pub config: Value,
    pub created_at: String,
    pub updated_at: String,
}

fn check_name(name: &str) -> Result<(), Problem> {
    let ok =
        !name.is_empty() && name.len() <= 64 && name.chars().all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_');
    if ok {
        Ok(())
    } else {
        Err(Problem::bad_request(
            "invalid_sink",
            format!("sink name {name:?} must be 1 to 64 letters, digits, '-' or '_'"),
        ))
    }
}

/// Creates the tenant's sink `name`, or replaces its configuration. The
/// body is a sink's configuration, the shape of a `[[sinks]]` table of the
/// configuration file without `name`; `"from": "now"` starts a new sink at
/// the end of the log instead of its beginning. The sink delivers this
/// tenant's events only; a replaced sink goes on from its cursor.
///
/// It connects only to public addresses and to what the operator allows
/// (`[tenant_sinks]`), checked when it connects; its secrets are stored
/// encrypted. 400 `invalid_sink` names the field at fault (a URL that is
/// not `http`/`https`, an address the egress policy refuses, a Kafka
/// property not allowed, CloudWatch keys missing, an `endpoint` not
/// allowed); 409 `too_many_sinks` when the tenant has
/// `tenant_sinks.max_per_tenant` sinks already.
#[utoipa::path(put, path = "/v1/sinks/{name}", tag = "audit",
    params(("name" = String, Path, description = "sink name")),
    request_body(content = Object, description = "the sink's configuration: {\"type\": \"webhook\", \"url\": ..., ...}"),
    responses((status = 201, body = TenantSinkView), (status = 200, body = TenantSinkView), (status = "4XX", body = ProblemBody)),
    security(("bearer" = [])))]
pub async fn put_sink(
    State(state): State<AppState>,
    caller: Caller,
    Path(name): Path<String>,
    ApiJson(mut body): ApiJson<Value>,
) -> Result<(StatusCode, Json<TenantSinkView>), Problem> {
    let who = caller.require(Action::ManageSinks)?;
    check_name(&name)?;
    if state.fanout.is_configured(&name) {
        return Err(Problem::new(
            StatusCode::CONFLICT,
            "sink_managed_by_config",
            format!("a sink of the configuration file is named {name:?}; choose another name"),
        ));
    }
    let from = match body.as_object_mut().and_then(|o| o.remove("from")) {
        None => None,
        Some(Value::String(s)) if s == "start" => None,
        Some(Value::String(s)) if s == "now" => Some(()),
        Some(other) => {
            return Err(Problem::bad_request(
                "invalid_sink",
                format!("from: {other} is not \"start\" or \"now\""),
            ));
        }
    };
    let policy = state.fanout.policy();
    let config =
        fanout::parse_tenant_sink(&name, &body, policy).map_err(|e| Problem::bad_request("invalid_sink", e.0))?;
    let Some(keyring) = &policy.keyring else {
        return Err(Problem::internal("sealing a sink's secrets", &"no sink secrets key"));
    };
    let start_at = match from {
        Some(()) => state
            .store
            .ledger_head(&who.tenant_id)
            .await?
            .and_then(|h| h.size.checked_sub(1)),
        None => None,
    };
    let stored = fanout::seal_config(&config, &who.tenant_id, keyring)
        .map_err(|e| Problem::internal("sealing a sink's secrets", &e))?;
    let shown = fanout::masked(&serde_json::to_value(&config).unwrap_or_default());
    let now = state.clock.now_ms();
    let row = fanout::put_tenant_sink(
        &state.ledger,
        &state.store,
        who,
        &name,
        &stored,
        &shown,
        start_at,
        policy.max_per_tenant,
        now,
    )
    .await?;
    state.fanout.changed().await;
    let status = if row.version == 1 {
        StatusCode::CREATED
    } else {
        StatusCode::OK
    };
    Ok((
        status,
        Json(TenantSinkView {
            name,
            kind: shown["type"].as_str().unwrap_or_default().to_string(),
            version: row.version,
            config: shown,
            created_at: rfc3339_ms(row.created_at),
            updated_at: rfc3339_ms(row.updated_at),
        }),
    ))
}

/// Deletes the tenant's sink `name`; its dead letters stay. Once this
/// answers, this instance delivers nothing more through it.
#[utoipa::path(delete, path = "/v1/sinks/{name}", tag = "audit",
    params(("name" = String, Path, description = "sink name")),
    responses((status = 204), (status = "4XX", body = ProblemBody)),
    security(("bearer" = [])))]
pub async fn delete_sink(
    State(state): State<AppState>,
    caller: Caller,
    Path(name): Path<String>,
) -> Result<StatusCode, Problem> {
    let who = caller.require(Action::ManageSinks)?;
    if state.fanout.is_configured(&name) {
        return Err(Problem::new(
            StatusCode::CONFLICT,
            "sink_managed_by_config",
            format!("sink {name:?} comes from the configuration file; remove it there"),
        ));
    }
    if !fanout::delete_tenant_sink(&state.ledger, who, &name).await? {
        return Err(Problem::not_found(
            "unknown_sink",
            format!("this tenant has no sink named {name:?}; see GET /v1/sinks"),
        ));
    }
    state.fanout.changed().await;
    Ok(StatusCode::NO_CONTENT)
}

#[utoipa::path(get, path = "/v1/sinks", tag = "audit",
    responses((status = 200, body = Vec<SinkView>), (status = "4XX", body = ProblemBody)),
    security(("bearer" = [])))]
pub async fn list(State(state): State<AppState>, caller: Caller) -> Result<Json<Vec<SinkView>>, Problem> {
    let who = caller.require(Action::ReadEvidence)?;
    Ok(Json(
        state.fanout.views(&state.store, &who.tenant_id, who.platform).await?,
    ))
}

/// An event a sink could never deliver.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct DeadLetterView {
    pub event_id: String,
    /// Its entry's index in the tenant's ledger log.
    pub index: u64,
    /// Why the peer refused it, or why it was never sent.
    pub reason: String,
    pub dead_lettered_at: String,
}

/// This tenant's dead letters of sink `name` (those not yet redriven),
/// oldest first, 1,000 at most.
#[utoipa::path(get, path = "/v1/sinks/{name}/dead-letters", tag = "audit",
    params(("name" = String, Path, description = "sink name")),
    responses((status = 200, body = Vec<DeadLetterView>), (status = "4XX", body = ProblemBody)),
    security(("bearer" = [])))]
pub async fn dead_letters(
    State(state): State<AppState>,
    caller: Caller,
    Path(name): Path<String>,
) -> Result<Json<Vec<DeadLetterView>>, Problem> {
    let who = caller.require(Action::ReadEvidence)?;
    let Some(key) = state.fanout.key_for(&name, &who.tenant_id) else {
        return Err(Problem::not_found(
            "unknown_sink",
            format!("no sink named {name:?}; see GET /v1/sinks"),
        ));
    };
    let rows = state.store.dead_letters(&key, &who.tenant_id, 0, 1_000).await?;
    // A configuration file's sink is the operator's: what its peer said is
    // the platform tenant's to read.
    let operators = key == name && state.fanout.is_configured(&name) && !who.platform;
    Ok(Json(
        rows.into_iter()
            .map(|d| DeadLetterView {
                event_id: d.event_id,
                index: d.index,
                reason: if operators {
                    "refused by the peer; the operator has the details".into()
                } else {
                    d.reason
                },
                dead_lettered_at: rfc3339_ms(d.created_at),
            })
            .collect(),
    ))
}

#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct Redriven {
    /// Dead letters the peer took this time.
    pub delivered: u64,
    /// Dead letters it still refused; they stay in the store.
    pub failed: u64,
}

#[utoipa::path(post, path = "/v1/sinks/{name}/redrive", tag = "audit",
    params(("name" = String, Path, description = "sink name")),
    responses((status = 200, body = Redriven), (status = "4XX", body = ProblemBody)),
    security(("bearer" = [])))]
pub async fn redrive(
    State(state): State<AppState>,
    caller: Caller,
    Path(name): Path<String>,
) -> Result<Json<Redriven>, Problem> {
    let who = caller.require(Action::ManageSinks)?;
    match state
        .fanout
        .redrive(&state.store, &state.clock, &name, &who.tenant_id)
        .await?
    {
        Some((delivered, failed)) => {
            state
                .record(
                    who,
                    "sink.redrive",
                    &name,
                    serde_json::json!({"sink": name, "delivered": delivered, "failed": failed}),
                )
                .await?;
            Ok(Json(Redriven { delivered, failed }))
        }
        None => Err(Problem::not_found(
            "unknown_sink",
            format!("no sink named {name:?}; see GET /v1/sinks"),
        )),
    }
}
