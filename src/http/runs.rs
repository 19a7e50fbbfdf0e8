//! Workflow runs: start a run of a definition (pinned to its version and
//! skill versions), read one or many, cancel one, and read its history
//! from the ledger (every transition is an entry about the run).

use axum::Json;
use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::routing::{get, post};
use serde::{Deserialize, Serialize};
use serde_json::Value;

use super::AppState;
use super::extract::{ApiJson, Caller};
use super::problem::{Problem, ProblemBody};
use crate::auth::Action;
use crate::clock::rfc3339_ms;
use crate::ledger::read::{self, Stored};
use crate::workflow::conductor::{RunView, StartRun};

pub fn router() -> axum::Router<AppState> {
    axum::Router::new()
        .route("/v1/workflows/{name}/runs", post(start))
        .route("/v1/workflow-runs", get(list))
        .route("/v1/workflow-runs/{id}", get(run))
        .route("/v1/workflow-runs/{id}/cancel", post(cancel))
        .route("/v1/workflow-runs/{id}/history", get(history))
}

/// Starts a run of the workflow's latest version (or `version`). Its
/// first states run before the answer; the run goes on in the background.
#[utoipa::path(post, path = "/v1/workflows/{name}/runs", tag = "workflows",
    params(("name" = String, Path, description = "workflow name")), request_body = StartRun,
    responses((status = 201, body = RunView), (status = "4XX", body = ProblemBody)), security(("bearer" = [])))]
pub async fn start(
    State(state): State<AppState>,
    caller: Caller,
    Path(name): Path<String>,
    ApiJson(req): ApiJson<StartRun>,
) -> Result<(StatusCode, Json<RunView>), Problem> {
    let who = caller.require(Action::RunExecutions)?;
    Ok((StatusCode::CREATED, Json(state.workflows.start(who, &name, req).await?)))
}

#[derive(Debug, Deserialize, utoipa::IntoParams)]
pub struct RunsQuery {
    /// Only the runs of this workflow.
    pub workflow: Option<String>,
    /// At most this many, newest first (default 100, at most 1,000).
    pub limit: Option<i64>,
}

#[utoipa::path(get, path = "/v1/workflow-runs", tag = "workflows", params(RunsQuery),
    responses((status = 200, body = Vec<RunView>), (status = "4XX", body = ProblemBody)), security(("bearer" = [])))]
pub async fn list(
    State(state): State<AppState>,
    caller: Caller,
    Query(q): Query<RunsQuery>,
) -> Result<Json<Vec<RunView>>, Problem> {
    let who = caller.require(Action::ReadExecutions)?;
    let runs = state
        .workflows
        .list(who, q.workflow.as_deref(), q.limit.unwrap_or(100))
        .await?;
    Ok(Json(runs))
}

#[utoipa::path(get, path = "/v1/workflow-runs/{id}", tag = "workflows",
    params(("id" = String, Path, description = "run id")),
    responses((status = 200, body = RunView), (status = "4XX", body = ProblemBody)), security(("bearer" = [])))]
pub async fn run(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
) -> Result<Json<RunView>, Problem> {
    let who = caller.require(Action::ReadExecutions)?;
    Ok(Json(state.workflows.get(who, &id).await?))
}

#[derive(Debug, Default, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CancelRun {
    #[serde(default)]
    pub reason: Option<String>,
}

/// Cancels a running run and every execution it waits for.
#[utoipa::path(post, path = "/v1/workflow-runs/{id}/cancel", tag = "workflows",
    params(("id" = String, Path, description = "run id")), request_body = CancelRun,
    responses((status = 200, body = RunView), (status = "4XX", body = ProblemBody)), security(("bearer" = [])))]
pub async fn cancel(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
    ApiJson(req): ApiJson<CancelRun>,
) -> Result<Json<RunView>, Problem> {
    let who = caller.require(Action::RunExecutions)?;
    Ok(Json(state.workflows.cancel(who, &id, req.reason).await?))
}

#[derive(Debug, Deserialize, utoipa::IntoParams)]
pub struct HistoryQuery {
    /// Entries after this ledger index (for paging).
    pub after: Option<u64>,
    /// At most this many (default 1,000, at most 10,000).
    pub limit: Option<u32>,
}

/// One ledger entry about a run.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct RunEntry {
    /// The entry's index in the tenant's log.
    pub index: u64,
    pub kind: String,
    pub actor: String,
    pub at: String,
    #[schema(value_type = Object)]
    pub payload: Value,
}

/// The run's history as the ledger has it: every start, state entered,
/// exited, retried, caught or failed, and the end, in order.
#[utoipa::path(get, path = "/v1/workflow-runs/{id}/history", tag = "workflows",
    params(("id" = String, Path, description = "run id"), HistoryQuery),
    responses((status = 200, body = Vec<RunEntry>), (status = "4XX", body = ProblemBody)), security(("bearer" = [])))]
pub async fn history(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
    Query(q): Query<HistoryQuery>,
) -> Result<Json<Vec<RunEntry>>, Problem> {
    let who = caller.require(Action::ReadExecutions)?;
    state.workflows.get(who, &id).await?;
    let limit = q.limit.unwrap_or(1000).clamp(1, 10_000);
    let entries = read::entries_about(&state.store, &who.tenant_id, &id, q.after, limit).await?;
    Ok(Json(
        entries
            .into_iter()
            .map(|Stored { entry: e, .. }| RunEntry {
                index: e.index,
                kind: e.kind,
                actor: e.actor,
                at: rfc3339_ms(e.ts),
                payload: e.payload,
            })
            .collect(),
    ))
}
