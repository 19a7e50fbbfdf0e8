//! Workflow definitions (seed 002): upload (YAML or JSON), versions, one
//! version. A definition with faults is refused whole, every fault listed
//! with its own code and where it is.

use axum::Json;
use axum::extract::{Path, Request, State};
use axum::http::StatusCode;
use axum::routing::get;
use serde::Serialize;
use serde_json::Value;

use super::AppState;
use super::extract::Caller;
use super::problem::{Problem, ProblemBody};
use crate::auth::Action;
use crate::clock::rfc3339_ms;
use crate::ledger::Receipt;
use crate::store::WorkflowRow;
use crate::workflow::upload::{self, Uploaded as Outcome};

pub fn router() -> axum::Router<AppState> {
    axum::Router::new()
        .route("/v1/workflows", get(list))
        .route("/v1/workflows/{name}", get(versions).put(put))
        .route("/v1/workflows/{name}/versions/{version}", get(version))
}

#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct WorkflowVersion {
    pub name: String,
    pub version: i64,
    /// blake3 of the parsed definition's canonical JSON (RFC 8785), hex.
    pub digest: String,
    pub created_by: String,
    pub created_at: String,
    /// The parsed definition (only when one version is asked for).
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(value_type = Option<Object>)]
    pub definition: Option<Value>,
    /// The text as uploaded (only when one version is asked for).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub source: Option<String>,
}

impl WorkflowVersion {
    fn of(w: &WorkflowRow, full: bool) -> Self {
        WorkflowVersion {
            name: w.name.clone(),
            version: w.version,
            digest: w.digest.clone(),
            created_by: w.created_by.clone(),
            created_at: rfc3339_ms(w.created_at),
            definition: full.then(|| serde_json::from_str(&w.definition).unwrap_or(Value::Null)),
            source: full.then(|| w.source.clone()),
        }
    }
}

#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct Uploaded {
    #[serde(flatten)]
    pub version: WorkflowVersion,
    /// False when the same definition was already the latest version.
    pub created: bool,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub receipt: Option<Receipt>,
}

/// Uploads a definition (YAML or JSON; its `metadata.name` must be the
/// path's). New content becomes the next version; the same content as the
/// latest version answers that version (200).
#[utoipa::path(put, path = "/v1/workflows/{name}", tag = "workflows",
    params(("name" = String, Path, description = "the workflow's metadata.name")),
    request_body(content = String, content_type = "application/yaml", description = "the definition, YAML or JSON"),
    responses((status = 201, body = Uploaded), (status = 200, body = Uploaded), (status = "4XX", body = ProblemBody)),
    security(("bearer" = [])))]
pub async fn put(
    State(state): State<AppState>,
    caller: Caller,
    Path(name): Path<String>,
    req: Request,
) -> Result<(StatusCode, Json<Uploaded>), Problem> {
    let who = caller.require(Action::WriteWorkflows)?;
    let body = super::extract::read_body(req, &state).await?;
    super::extract::check_if_json(&body, state.config.limits.max_json_depth)?;
    let now = state.clock.now_ms();
    Ok(
        match upload::upload(&state.ledger, &state.store, who, &name, &body, now).await? {
            Outcome::Created { row, receipt } => (
                StatusCode::CREATED,
                Json(Uploaded {
                    version: WorkflowVersion::of(&row, false),
                    created: true,
                    receipt: Some(receipt),
                }),
            ),
            Outcome::Unchanged(row) => (
                StatusCode::OK,
                Json(Uploaded {
                    version: WorkflowVersion::of(&row, false),
                    created: false,
                    receipt: None,
                }),
            ),
        },
    )
}

#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct WorkflowSummary {
    pub name: String,
    pub latest_version: i64,
    pub versions: i64,
}

#[utoipa::path(get, path = "/v1/workflows", tag = "workflows",
    responses((status = 200, body = Vec<WorkflowSummary>), (status = "4XX", body = ProblemBody)),
    security(("bearer" = [])))]
pub async fn list(State(state): State<AppState>, caller: Caller) -> Result<Json<Vec<WorkflowSummary>>, Problem> {
    let who = caller.require(Action::ReadWorkflows)?;
    let rows = state.store.workflows(&who.tenant_id).await?;
    Ok(Json(
        rows.into_iter()
            .map(|(name, latest_version, versions)| WorkflowSummary {
                name,
                latest_version,
                versions,
            })
            .collect(),
    ))
}

/// Every version of a workflow, newest first.
#[utoipa::path(get, path = "/v1/workflows/{name}", tag = "workflows",
    params(("name" = String, Path, description = "workflow name")),
    responses((status = 200, body = Vec<WorkflowVersion>), (status = "4XX", body = ProblemBody)),
    security(("bearer" = [])))]
pub async fn versions(
    State(state): State<AppState>,
    caller: Caller,
    Path(name): Path<String>,
) -> Result<Json<Vec<WorkflowVersion>>, Problem> {
    let who = caller.require(Action::ReadWorkflows)?;
    let rows = state.store.workflow_versions(&who.tenant_id, &name).await?;
    if rows.is_empty() {
        return Err(unknown(&name));
    }
    Ok(Json(rows.iter().map(|w| WorkflowVersion::of(w, false)).collect()))
}

/// One version: the parsed definition and the text as uploaded.
#[utoipa::path(get, path = "/v1/workflows/{name}/versions/{version}", tag = "workflows",
    params(("name" = String, Path, description = "workflow name"), ("version" = i64, Path, description = "version")),
    responses((status = 200, body = WorkflowVersion), (status = "4XX", body = ProblemBody)),
    security(("bearer" = [])))]
pub async fn version(
    State(state): State<AppState>,
    caller: Caller,
    Path((name, version)): Path<(String, i64)>,
) -> Result<Json<WorkflowVersion>, Problem> {
    let who = caller.require(Action::ReadWorkflows)?;
    match state.store.workflow_version(&who.tenant_id, &name, version).await? {
        Some(w) => Ok(Json(WorkflowVersion::of(&w, true))),
        None => Err(Problem::not_found(
            "unknown_workflow_version",
            format!("workflow {name} has no version {version}; GET /v1/workflows/{name} lists them"),
        )),
    }
}

fn unknown(name: &str) -> Problem {
    Problem::not_found(
        "unknown_workflow",
        format!("no workflow {name} in this tenant; upload it with PUT /v1/workflows/{name}"),
    )
}
