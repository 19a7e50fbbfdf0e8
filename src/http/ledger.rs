//! The evidence ledger over HTTP: checkpoints, entries with inclusion
//! proofs, consistency proofs, signing keys, exports, key rotation; and
//! replay and impact analysis of recorded decisions.
//!
//! Every read is scoped to the caller's own tenant log.

use axum::Json;
use axum::body::Body;
use axum::extract::{Path, Query, State};
use axum::http::{HeaderValue, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use serde::{Deserialize, Serialize};
use serde_json::Value;

use super::AppState;
use super::extract::{ApiJson, Caller};
use super::problem::{Problem, ProblemBody};
use crate::auth::{Action, Principal};
use crate::clock::rfc3339_ms;
use crate::evidence::export::KeyInfo;
use crate::ledger::read::{self, ReadError};
use crate::ledger::writer::Rotation;
use crate::policy::replay::{self, ImpactRequest, ImpactView, ReplayView};
use crate::store::{CheckpointRow, EntryRow};

pub fn router() -> axum::Router<AppState> {
    axum::Router::new()
        .route("/v1/ledger/checkpoint", get(checkpoint))
        .route("/v1/ledger/entries/{index}", get(entry))
        .route("/v1/ledger/consistency", get(consistency))
        .route("/v1/ledger/keys", get(keys))
        .route("/v1/ledger/keys/rotate", post(rotate))
        .route("/v1/ledger/export", get(export))
        .route("/v1/decisions/{id}/replay", post(replay))
        .route("/v1/impact", post(impact))
}

#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct CheckpointView {
    /// The log's origin: `<ledger.name>/log/<tenant id>`.
    pub log: String,
    pub size: u64,
    /// Merkle root, hex.
    pub root: String,
    /// The C2SP signed note.
    pub checkpoint: String,
    pub timestamp: String,
}

fn checkpoint_view(log: String, c: CheckpointRow) -> CheckpointView {
    CheckpointView {
        log,
        size: c.size,
        root: c.root.to_hex().to_string(),
        checkpoint: c.note,
        timestamp: rfc3339_ms(c.ts),
    }
}

async fn latest(state: &AppState, who: &Principal) -> Result<CheckpointRow, Problem> {
    state.store.latest_checkpoint(&who.tenant_id).await?.ok_or_else(|| {
        Problem::not_found(
            "empty_log",
            "this tenant's log has no entries yet; every decision and administrative act adds one",
        )
    })
}

#[utoipa::path(get, path = "/v1/ledger/checkpoint", tag = "ledger",
    responses((status = 200, body = CheckpointView), (status = "4XX", body = ProblemBody)),
    security(("bearer" = [])))]
pub async fn checkpoint(State(state): State<AppState>, caller: Caller) -> Result<Json<CheckpointView>, Problem> {
    let who = caller.require(Action::ReadEvidence)?;
    let c = latest(&state, who).await?;
    Ok(Json(checkpoint_view(state.ledger.origin(&who.tenant_id), c)))
}

#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[serde(deny_unknown_fields)]
pub struct SizeQuery {
    /// Prove against this tree size (default: the latest checkpoint's).
    pub tree_size: Option<u64>,
}

#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct EntryView {
    pub log: String,
    pub index: u64,
    /// The entry's exact bytes (canonical JSON), as hashed.
    pub bytes: String,
    /// The same entry, parsed.
    #[schema(value_type = Object)]
    pub entry: Value,
    /// Leaf hash, hex.
    pub entry_hash: String,
    pub tree_size: u64,
    /// `PATH(index, D[tree_size])`, hex.
    pub inclusion: Vec<String>,
    /// The signed checkpoint of `tree_size`, when one was issued at that size.
    pub checkpoint: Option<String>,
}

fn hexes(hs: &[crate::evidence::merkle::Hash]) -> Vec<String> {
    hs.iter().map(|h| h.to_hex().to_string()).collect()
}

/// Resolves a requested tree size against the log: the latest checkpoint's
/// by default; never beyond the log.
async fn tree_size(state: &AppState, who: &Principal, asked: Option<u64>) -> Result<(u64, Option<String>), Problem> {
    let latest = latest(state, who).await?;
    match asked {
        None => Ok((latest.size, Some(latest.note))),
        Some(n) if n == 0 || n > latest.size => Err(Problem::bad_request(
            "invalid_tree_size",
            format!("tree_size must be between 1 and the log's size, {}", latest.size),
        )),
        Some(n) => {
            let c = state.store.checkpoint_at_or_after(&who.tenant_id, n).await?;
            Ok((n, c.filter(|c| c.size == n).map(|c| c.note)))
        }
    }
}

#[utoipa::path(get, path = "/v1/ledger/entries/{index}", tag = "ledger",
    params(("index" = u64, Path, description = "entry index, from 0"), SizeQuery),
    responses((status = 200, body = EntryView), (status = "4XX", body = ProblemBody)),
    security(("bearer" = [])))]
pub async fn entry(
    State(state): State<AppState>,
    caller: Caller,
    Path(index): Path<u64>,
    Query(q): Query<SizeQuery>,
) -> Result<Json<EntryView>, Problem> {
    let who = caller.require(Action::ReadEvidence)?;
    let (size, checkpoint) = tree_size(&state, who, q.tree_size).await?;
    if index >= size {
        return Err(Problem::not_found(
            "unknown_entry",
            format!("entry {index} is not in the tree of size {size}"),
        ));
    }
    let row = state
        .store
        .ledger_entry(&who.tenant_id, index)
        .await?
        .ok_or(ReadError::Missing { level: 0, index })?;
    let proof = read::inclusion(&state.store, &who.tenant_id, index, size).await?;
    Ok(Json(entry_view(
        state.ledger.origin(&who.tenant_id),
        row,
        size,
        &proof,
        checkpoint,
    )))
}

fn entry_view(
    log: String,
    row: EntryRow,
    size: u64,
    proof: &[crate::evidence::merkle::Hash],
    checkpoint: Option<String>,
) -> EntryView {
    let bytes = String::from_utf8_lossy(&row.bytes).into_owned();
    EntryView {
        log,
        index: row.index,
        entry: serde_json::from_str(&bytes).unwrap_or(Value::Null),
        bytes,
        entry_hash: row.hash.to_hex().to_string(),
        tree_size: size,
        inclusion: hexes(proof),
        checkpoint,
    }
}

#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[serde(deny_unknown_fields)]
pub struct ConsistencyQuery {
    /// The older tree size (at least 1).
    pub from: u64,
    /// The newer tree size (default: the latest checkpoint's).
    pub to: Option<u64>,
}

#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct ConsistencyView {
    pub log: String,
    pub from: u64,
    pub to: u64,
    /// `PROOF(from, D[to])`, hex.
    pub proof: Vec<String>,
    pub from_checkpoint: Option<String>,
    pub to_checkpoint: Option<String>,
}

#[utoipa::path(get, path = "/v1/ledger/consistency", tag = "ledger", params(ConsistencyQuery),
    responses((status = 200, body = ConsistencyView), (status = "4XX", body = ProblemBody)),
    security(("bearer" = [])))]
pub async fn consistency(
    State(state): State<AppState>,
    caller: Caller,
    Query(q): Query<ConsistencyQuery>,
) -> Result<Json<ConsistencyView>, Problem> {
    let who = caller.require(Action::ReadEvidence)?;
    let (to, to_checkpoint) = tree_size(&state, who, q.to).await?;
    if q.from == 0 || q.from > to {
        return Err(Problem::bad_request(
            "invalid_tree_size",
            format!("from must be between 1 and to ({to})"),
        ));
    }
    let (_, from_checkpoint) = tree_size(&state, who, Some(q.from)).await?;
    let proof = read::consistency(&state.store, &who.tenant_id, q.from, to).await?;
    Ok(Json(ConsistencyView {
        log: state.ledger.origin(&who.tenant_id),
        from: q.from,
        to,
        proof: hexes(&proof),
        from_checkpoint,
        to_checkpoint,
    }))
}

#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct LedgerKeyView {
    /// `name+keyid+base64(0x01 ‖ key)`: what `warden verify --key` takes.
    pub verifier: String,
    pub name: String,
    pub key_id: String,
    pub current: bool,
    pub valid_from: String,
    pub retired_at: Option<String>,
}

async fn key_rows(state: &AppState) -> Result<Vec<crate::store::LedgerKeyRow>, Problem> {
    Ok(state.store.ledger_keys().await?)
}

#[utoipa::path(get, path = "/v1/ledger/keys", tag = "ledger",
    responses((status = 200, body = Vec<LedgerKeyView>), (status = "4XX", body = ProblemBody)),
    security(("bearer" = [])))]
pub async fn keys(State(state): State<AppState>, caller: Caller) -> Result<Json<Vec<LedgerKeyView>>, Problem> {
    caller.require(Action::ReadEvidence)?;
    let rows = key_rows(&state).await?;
    Ok(Json(
        rows.into_iter()
            .map(|k| LedgerKeyView {
                current: k.retired_at.is_none(),
                valid_from: rfc3339_ms(k.created_at),
                retired_at: k.retired_at.map(rfc3339_ms),
                verifier: k.verifier,
                name: k.name,
                key_id: k.key_id,
            })
            .collect(),
    ))
}

#[utoipa::path(post, path = "/v1/ledger/keys/rotate", tag = "ledger",
    responses((status = 200, body = Rotation), (status = "4XX", body = ProblemBody)),
    security(("bearer" = [])))]
pub async fn rotate(State(state): State<AppState>, caller: Caller) -> Result<Json<Rotation>, Problem> {
    let who = caller.require(Action::RotateLedgerKey)?;
    let data_dir = &state.config.data_dir;
    let next = crate::keys::generate();
    crate::keys::stage_server_key(data_dir, &next).map_err(|e| Problem::internal("staging the new key", &e))?;
    let previous_id = state
        .ledger
        .current_key()
        .split('+')
        .nth(1)
        .unwrap_or_default()
        .to_string();
    match state.ledger.rotate(&who.actor(), next).await {
        Ok(rotation) => {
            crate::keys::promote_staged_server_key(data_dir, &previous_id)
                .map_err(|e| Problem::internal("installing the new key file", &e))?;
            Ok(Json(rotation))
        }
        Err(e) => {
            let _ = crate::keys::discard_staged_server_key(data_dir);
            Err(e.into())
        }
    }
}

#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[serde(deny_unknown_fields)]
pub struct ExportQuery {
    /// First entry (default 0).
    pub from: Option<u64>,
    /// End of the range, exclusive; rounded up to the next checkpoint so the
    /// file ends signed (default: the latest checkpoint).
    pub to: Option<u64>,
}

#[utoipa::path(get, path = "/v1/ledger/export", tag = "ledger", params(ExportQuery),
    responses((status = 200, description = "the evidence file, NDJSON (docs/ledger-format.md)", content_type = "application/x-ndjson"),
        (status = "4XX", body = ProblemBody)),
    security(("bearer" = [])))]
pub async fn export(
    State(state): State<AppState>,
    caller: Caller,
    Query(q): Query<ExportQuery>,
) -> Result<Response, Problem> {
    let who = caller.require(Action::ReadEvidence)?;
    let last = latest(&state, who).await?;
    let from = q.from.unwrap_or(0);
    let to = match q.to {
        None => last.size,
        Some(t) => state
            .store
            .checkpoint_at_or_after(&who.tenant_id, t.max(1))
            .await?
            .map(|c| c.size)
            .unwrap_or(last.size),
    };
    if from >= to {
        return Err(Problem::bad_request(
            "invalid_range",
            format!(
                "from ({from}) must be below to ({to}); the log has {} entries",
                last.size
            ),
        ));
    }
    let keys = key_rows(&state)
        .await?
        .into_iter()
        .map(|k| KeyInfo {
            verifier: k.verifier,
            created_at: k.created_at,
            retired_at: k.retired_at,
        })
        .collect();
    let (tx, mut rx) = tokio::sync::mpsc::channel(4);
    let header = (state.ledger.origin(&who.tenant_id), keys, state.clock.now_ms());
    tokio::spawn(read::export(
        state.store.clone(),
        who.tenant_id.clone(),
        header,
        from,
        to,
        tx,
    ));
    let stream = futures_util::stream::poll_fn(move |cx| rx.poll_recv(cx));
    let mut res = Body::from_stream(stream).into_response();
    res.headers_mut()
        .insert(header::CONTENT_TYPE, HeaderValue::from_static("application/x-ndjson"));
    if let Ok(v) = HeaderValue::from_str(&format!(
        "attachment; filename=\"{}-{from}-{to}.ndjson\"",
        who.tenant_name
    )) {
        res.headers_mut().insert(header::CONTENT_DISPOSITION, v);
    }
    Ok(res)
}

// ---- replay and impact ------------------------------------------------------

#[utoipa::path(post, path = "/v1/decisions/{id}/replay", tag = "decisions",
    params(("id" = String, Path, description = "decision id")),
    responses((status = 200, body = ReplayView), (status = "4XX", body = ProblemBody)),
    security(("bearer" = [])))]
pub async fn replay(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
) -> Result<Json<ReplayView>, Problem> {
    let who = caller.require(Action::ReadEvidence)?;
    Ok(Json(
        replay::replay(&state.policy, &state.store, &who.tenant_id, &id).await?,
    ))
}

#[utoipa::path(post, path = "/v1/impact", tag = "decisions", request_body = ImpactRequest,
    responses((status = 200, body = ImpactView), (status = "4XX", body = ProblemBody)),
    security(("bearer" = [])))]
pub async fn impact(
    State(state): State<AppState>,
    caller: Caller,
    ApiJson(req): ApiJson<ImpactRequest>,
) -> Result<Json<ImpactView>, Problem> {
    let who = caller.require(Action::ReadEvidence)?;
    let cap = state.config.limits.max_impact_scan;
    Ok(Json(
        replay::impact(&state.policy, &state.store, &who.tenant_id, req, cap).await?,
    ))
}
