//! The skill registry (seed 000): register a version (JSON or YAML), list
//! skills and versions, read one version, and resolve which version a new
//! execution would pin. A version is immutable: registering it again with
//! the same content is a no-op, with other content a conflict. A manifest
//! with faults is refused whole, every fault listed with its own code and
//! where it is.

use axum::Json;
use axum::extract::rejection::QueryRejection;
use axum::extract::{Path, Query, Request, State};
use axum::http::StatusCode;
use axum::routing::get;
use serde::{Deserialize, Serialize};
use serde_json::Value;

use super::AppState;
use super::extract::{Caller, read_body};
use super::problem::{Problem, ProblemBody};
use crate::auth::Action;
use crate::clock::rfc3339_ms;
use crate::ledger::Receipt;
use crate::skill;
use crate::skill::SkillVersion;
use crate::skill::registry::{self, Registered as Outcome};
use crate::store::SkillRow;

/// How many versions a `no_matching_skill` message names.
const VERSIONS_NAMED: usize = 20;

pub fn router() -> axum::Router<AppState> {
    axum::Router::new()
        .route("/v1/skills", get(list))
        .route("/v1/skills/{id}", get(versions))
        .route("/v1/skills/{id}/versions/{version}", get(version).put(put))
        .route("/v1/skills/{id}/resolve", get(resolve))
}

#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct SkillVersionView {
    pub id: String,
    pub version: String,
    /// blake3 of the manifest's canonical JSON (RFC 8785), hex.
    pub digest: String,
    pub created_by: String,
    pub created_at: String,
    /// The manifest (only when one version is asked for, or resolved).
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(value_type = Option<Object>)]
    pub manifest: Option<Value>,
}

impl SkillVersionView {
    fn of(s: &SkillRow, full: bool) -> Self {
        SkillVersionView {
            id: s.skill_id.clone(),
            version: s.version.clone(),
            digest: s.digest.clone(),
            created_by: s.created_by.clone(),
            created_at: rfc3339_ms(s.created_at),
            manifest: full.then(|| serde_json::from_str(&s.manifest).unwrap_or(Value::Null)),
        }
    }
}

#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct Registered {
    #[serde(flatten)]
    pub version: SkillVersionView,
    /// False when this version was already registered with the same content.
    pub created: bool,
    /// The ledger receipt of the registration (only when `created`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub receipt: Option<Receipt>,
}

/// Registers a skill version (the manifest as JSON or YAML; its `id` and
/// `version` must be the path's). A version is immutable: the same content
/// again answers the stored version (200, `created: false`); other content
/// is refused (409 `skill_version_exists`): publish a new version instead.
#[utoipa::path(put, path = "/v1/skills/{id}/versions/{version}", tag = "skills",
    params(("id" = String, Path, description = "the manifest's id"),
        ("version" = String, Path, description = "the manifest's version (semver)")),
    request_body(content = String, content_type = "application/yaml", description = "the manifest, YAML or JSON"),
    responses((status = 201, body = Registered), (status = 200, body = Registered), (status = "4XX", body = ProblemBody)),
    security(("bearer" = [])))]
pub async fn put(
    State(state): State<AppState>,
    caller: Caller,
    Path((id, version)): Path<(String, String)>,
    req: Request,
) -> Result<(StatusCode, Json<Registered>), Problem> {
    let who = caller.require(Action::WriteSkills)?;
    let body = read_body(req, &state).await?;
    super::extract::check_if_json(&body, state.config.limits.max_json_depth)?;
    let now = state.clock.now_ms();
    Ok(
        match registry::register(&state.ledger, &state.store, who, &id, &version, &body, now).await? {
            Outcome::Created { row, receipt } => (
                StatusCode::CREATED,
                Json(Registered {
                    version: SkillVersionView::of(&row, false),
                    created: true,
                    receipt: Some(receipt),
                }),
            ),
            Outcome::Unchanged(row) => (
                StatusCode::OK,
                Json(Registered {
                    version: SkillVersionView::of(&row, false),
                    created: false,
                    receipt: None,
                }),
            ),
        },
    )
}

#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct SkillSummary {
    pub id: String,
    /// The highest version (by semver precedence, pre-releases included).
    pub latest: String,
    pub versions: i64,
}

/// The tenant's skills, by id.
#[utoipa::path(get, path = "/v1/skills", tag = "skills",
    responses((status = 200, body = Vec<SkillSummary>), (status = "4XX", body = ProblemBody)),
    security(("bearer" = [])))]
pub async fn list(State(state): State<AppState>, caller: Caller) -> Result<Json<Vec<SkillSummary>>, Problem> {
    let who = caller.require(Action::ReadSkills)?;
    let rows = state.store.skills(&who.tenant_id).await?;
    Ok(Json(
        rows.into_iter()
            .map(|(id, latest, versions)| SkillSummary { id, latest, versions })
            .collect(),
    ))
}

/// Every version of a skill, newest first by semver.
#[utoipa::path(get, path = "/v1/skills/{id}", tag = "skills",
    params(("id" = String, Path, description = "skill id")),
    responses((status = 200, body = Vec<SkillVersionView>), (status = "4XX", body = ProblemBody)),
    security(("bearer" = [])))]
pub async fn versions(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
) -> Result<Json<Vec<SkillVersionView>>, Problem> {
    let who = caller.require(Action::ReadSkills)?;
    let rows = state.store.skill_versions(&who.tenant_id, &id).await?;
    if rows.is_empty() {
        return Err(Problem::not_found(
            "unknown_skill",
            format!("no skill {id} in this tenant; register one with PUT /v1/skills/{id}/versions/{{version}}"),
        ));
    }
    Ok(Json(rows.iter().map(|s| SkillVersionView::of(s, false)).collect()))
}

/// One version, with its manifest.
#[utoipa::path(get, path = "/v1/skills/{id}/versions/{version}", tag = "skills",
    params(("id" = String, Path, description = "skill id"), ("version" = String, Path, description = "exact version")),
    responses((status = 200, body = SkillVersionView), (status = "4XX", body = ProblemBody)),
    security(("bearer" = [])))]
pub async fn version(
    State(state): State<AppState>,
    caller: Caller,
    Path((id, version)): Path<(String, String)>,
) -> Result<Json<SkillVersionView>, Problem> {
    let who = caller.require(Action::ReadSkills)?;
    match state.store.skill_version(&who.tenant_id, &id, &version).await? {
        Some(s) => Ok(Json(SkillVersionView::of(&s, true))),
        None => Err(Problem::not_found(
            "unknown_skill_version",
            format!("skill {id} has no version {version}; GET /v1/skills/{id} lists them"),
        )),
    }
}

#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[serde(deny_unknown_fields)]
pub struct ResolveQuery {
    /// An exact version (`1.2.0`, the only way to pin a pre-release) or a
    /// semver requirement (`^1.2`, `>=1, <2`); absent: any release.
    pub version: Option<String>,
    /// The execution's project.
    pub project: Option<String>,
    /// The execution's team.
    pub team: Option<String>,
}

/// Which version a new execution of this project and team would pin: the
/// highest version matching `version` that is visible to them.
#[utoipa::path(get, path = "/v1/skills/{id}/resolve", tag = "skills",
    params(("id" = String, Path, description = "skill id"), ResolveQuery),
    responses((status = 200, body = SkillVersionView), (status = "4XX", body = ProblemBody)),
    security(("bearer" = [])))]
pub async fn resolve(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
    query: Result<Query<ResolveQuery>, QueryRejection>,
) -> Result<Json<SkillVersionView>, Problem> {
    let who = caller.require(Action::ReadSkills)?;
    let Query(q) = query.map_err(|e| {
        Problem::bad_request(
            "invalid_query",
            format!("{}; the parameters are version, project and team", e.body_text()),
        )
    })?;
    let req = match q.version.as_deref() {
        None => SkillVersion::Req(semver::VersionReq::STAR),
        Some(text) => SkillVersion::parse(text).map_err(|e| {
            Problem::bad_request(
                "invalid_version",
                format!("{text:?} is neither a version (1.2.0) nor a semver requirement (^1.2, >=1, <2): {e}"),
            )
        })?,
    };
    let (project, team) = (q.project.as_deref(), q.team.as_deref());
    if let Some(found) = registry::resolve(&state.store, &who.tenant_id, &id, &req, project, team).await? {
        return Ok(Json(SkillVersionView::of(&found, true)));
    }
    let all = state.store.skill_versions(&who.tenant_id, &id).await?;
    if all.is_empty() {
        return Err(Problem::not_found(
            "no_matching_skill",
            format!("no skill {id} in this tenant; register one with PUT /v1/skills/{id}/versions/{{version}}"),
        ));
    }
    let mut named = Vec::new();
    for row in all.iter().take(VERSIONS_NAMED) {
        let v = row.semver()?;
        let mut note = Vec::new();
        if !v.pre.is_empty() {
            note.push("pre-release: pinned only exactly");
        }
        if !skill::visible(&registry::manifest_of(row)?, project, team) {
            note.push("not visible to this project or team");
        }
        named.push(if note.is_empty() {
            row.version.clone()
        } else {
            format!("{} ({})", row.version, note.join("; "))
        });
    }
    if all.len() > VERSIONS_NAMED {
        named.push(format!("and {} older", all.len() - VERSIONS_NAMED));
    }
    let whom = match (project, team) {
        (Some(p), Some(t)) => format!("project {p:?} and team {t:?}"),
        (Some(p), None) => format!("project {p:?}"),
        (None, Some(t)) => format!("team {t:?}"),
        (None, None) => "an execution with no project or team".to_owned(),
    };
    Err(Problem::not_found(
        "no_matching_skill",
        format!(
            "no version of skill {id} matching {req} is visible to {whom}; its versions, newest first: {}",
            named.join(", ")
        ),
    ))
}
