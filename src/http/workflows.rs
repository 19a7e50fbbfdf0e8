//! Workflow definitions (seed 002): upload (YAML or JSON), versions, one
//! version. A definition with faults is refused whole, every fault listed
//! with its own code and where it is.

use axum::Json;
use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::routing::get;
use serde::Serialize;
use serde_json::Value;

use super::AppState;
use super::extract::Caller;
use super::problem::{Problem, ProblemBody};
use crate::auth::Action;
use crate::clock::rfc3339_ms;
use crate::ledger::{AppendError, Receipt, Record, canonical};
use crate::store::{KernelChange, StoreError, WorkflowRow};
use crate::workflow;

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
    body: Bytes,
) -> Result<(StatusCode, Json<Uploaded>), Problem> {
    let who = caller.require(Action::WriteWorkflows)?;
    super::extract::check_if_json(&body, state.config.limits.max_json_depth)?;
    let definition = workflow::parse(&body).map_err(refused)?;
    if definition.metadata.name != name {
        return Err(Problem::bad_request(
            "workflow_name_mismatch",
            format!(
                "metadata.name is {:?} but the upload is to /v1/workflows/{name}; upload it under its own name",
                definition.metadata.name
            ),
        ));
    }
    let parsed = serde_json::to_value(&definition).map_err(|e| Problem::internal("serialising a workflow", &e))?;
    let digest = blake3::hash(&canonical::to_vec(&parsed)).to_hex().to_string();
    let source = String::from_utf8_lossy(&body).into_owned();
    for _ in 0..3 {
        let latest = state
            .store
            .workflow_versions(&who.tenant_id, &name)
            .await?
            .into_iter()
            .next();
        if let Some(w) = latest.as_ref().filter(|w| w.digest == digest) {
            return Ok((
                StatusCode::OK,
                Json(Uploaded {
                    version: WorkflowVersion::of(w, false),
                    created: false,
                    receipt: None,
                }),
            ));
        }
        let row = WorkflowRow {
            tenant_id: who.tenant_id.clone(),
            name: name.clone(),
            version: latest.map(|w| w.version + 1).unwrap_or(1),
            digest: digest.clone(),
            source: source.clone(),
            definition: parsed.to_string(),
            created_by: who.actor(),
            created_at: state.clock.now_ms(),
        };
        let payload = serde_json::json!({"name": name, "version": row.version, "digest": digest,
            "states": definition.spec.states.len()});
        let record = Record::new(&who.tenant_id, "workflow.put", &who.actor(), &payload).about(name.clone());
        let change = KernelChange {
            workflow_definition: Some(row.clone()),
            ..KernelChange::default()
        };
        // The version and the entry of its upload commit together.
        match state.ledger.append_with(vec![record], change).await {
            Ok(mut receipts) => {
                let receipt = receipts.pop().expect("one receipt for one record");
                return Ok((
                    StatusCode::CREATED,
                    Json(Uploaded {
                        version: WorkflowVersion::of(&row, false),
                        created: true,
                        receipt: Some(receipt),
                    }),
                ));
            }
            // Another upload took this version number: read again.
            Err(AppendError::Changed(_)) => continue,
            Err(e) => return Err(e.into()),
        }
    }
    Err(StoreError::Changed("workflow").into())
}

fn refused(faults: Vec<workflow::DefinitionError>) -> Problem {
    Problem::faults(
        "the workflow definition",
        faults.iter().map(|f| (f.code, f.at.as_str(), f.message.as_str())),
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
