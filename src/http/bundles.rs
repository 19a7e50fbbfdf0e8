//! Bundle versions: upload, list, download, activate, roll back.

use axum::Extension;
use axum::Json;
use axum::extract::{Path, Request, State};
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post, put};
use serde::{Deserialize, Serialize};

use super::AppState;
use super::extract::{ApiJson, BodyLimit, Caller, read_body};
use super::problem::{Problem, ProblemBody};
use crate::auth::Action;
use crate::clock::rfc3339_ms;
use crate::policy::compiled::TestResult;
use crate::policy::service::{Activated, stored_tests, validate_bundle_name};
use crate::store::BundleVersionRow;

pub fn router(max_bundle_bytes: usize) -> axum::Router<AppState> {
    axum::Router::new()
        .route("/v1/bundles", get(list_bundles))
        .route(
            "/v1/bundles/{name}",
            put(upload_bundle)
                .layer(Extension(BodyLimit {
                    bytes: max_bundle_bytes,
                    setting: "limits.max_bundle_bytes",
                }))
                .get(get_bundle),
        )
        .route("/v1/bundles/{name}/revisions/{revision}", get(get_version))
        .route("/v1/bundles/{name}/revisions/{revision}/content", get(download_version))
        .route("/v1/bundles/{name}/activate", post(activate))
        .route("/v1/bundles/{name}/rollback", post(rollback))
}

#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct VersionView {
    pub name: String,
    pub revision: String,
    /// blake3 of the bundle bytes, hex.
    pub digest: String,
    pub roots: Vec<String>,
    pub size_bytes: i64,
    /// Rego test results (`test_` rules of `*_test.rego` files) from the upload.
    pub tests: Vec<TestResult>,
    pub tests_passed: bool,
    /// Findings of the upload, each with its file and line (`test_` rules
    /// outside test files, constructs read otherwise than by OPA). Only in
    /// the upload's answer; they never block activation.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub notices: Vec<crate::policy::compat::Notice>,
    /// The verification key that signed this version, if signed.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub signed_by: Option<String>,
    pub uploaded_by: String,
    pub uploaded_at: String,
}

impl From<BundleVersionRow> for VersionView {
    fn from(v: BundleVersionRow) -> Self {
        Self {
            tests: stored_tests(&v),
            name: v.name,
            revision: v.revision,
            digest: v.digest,
            roots: v.roots,
            size_bytes: v.size_bytes,
            tests_passed: v.tests_passed,
            notices: Vec::new(),
            signed_by: v.signed_by,
            uploaded_by: v.uploaded_by,
            uploaded_at: rfc3339_ms(v.uploaded_at),
        }
    }
}

#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct BundleSummaryView {
    pub name: String,
    pub versions: i64,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub active_revision: Option<String>,
}

#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct BundleView {
    pub name: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub active_revision: Option<String>,
    /// Oldest first.
    pub versions: Vec<VersionView>,
}

#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ActivateRequest {
    pub revision: String,
    /// Activate although the version's Rego tests failed.
    #[serde(default)]
    pub force: bool,
}

#[derive(Debug, Deserialize, Default, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct RollbackRequest {
    /// The revision to return to; omit for the one active before the current.
    #[serde(default)]
    pub revision: Option<String>,
    #[serde(default)]
    pub force: bool,
}

#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct ActivationView {
    pub name: String,
    pub revision: String,
    pub digest: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub previous_revision: Option<String>,
}

impl From<Activated> for ActivationView {
    fn from(a: Activated) -> Self {
        Self {
            name: a.name,
            revision: a.revision,
            digest: a.digest,
            previous_revision: a.previous_revision,
        }
    }
}

#[utoipa::path(put, path = "/v1/bundles/{name}", tag = "bundles",
    params(("name" = String, Path, description = "bundle name")),
    request_body(content = Vec<u8>, content_type = "application/gzip", description = "an OPA bundle (gzipped tar)"),
    responses(
        (status = 201, description = "new version stored", body = VersionView),
        (status = 200, description = "identical version already stored", body = VersionView),
        (status = "4XX", body = ProblemBody)),
    security(("bearer" = [])))]
pub async fn upload_bundle(
    State(state): State<AppState>,
    caller: Caller,
    Path(name): Path<String>,
    req: Request,
) -> Result<(StatusCode, Json<VersionView>), Problem> {
    let who = caller.require(Action::WriteBundles)?.clone();
    validate_bundle_name(&name)?;
    let body = read_body(req, &state).await?;
    let up = state.policy.upload(&who, &name, body.to_vec()).await?;
    let status = if up.created {
        StatusCode::CREATED
    } else {
        StatusCode::OK
    };
    if up.created {
        tracing::info!(tenant = %who.tenant_id, bundle = %name, revision = %up.version.revision,
            digest = %up.version.digest, tests_passed = up.version.tests_passed, by = %who.actor(), "bundle uploaded");
    }
    let mut view: VersionView = up.version.into();
    view.tests = up.tests;
    view.notices = up.notices;
    Ok((status, Json(view)))
}

#[utoipa::path(get, path = "/v1/bundles", tag = "bundles",
    responses((status = 200, body = Vec<BundleSummaryView>), (status = "4XX", body = ProblemBody)),
    security(("bearer" = [])))]
pub async fn list_bundles(
    State(state): State<AppState>,
    caller: Caller,
) -> Result<Json<Vec<BundleSummaryView>>, Problem> {
    let who = caller.require(Action::ReadBundles)?;
    let rows = state.store.list_bundles(&who.tenant_id).await?;
    Ok(Json(
        rows.into_iter()
            .map(|b| BundleSummaryView {
                name: b.name,
                versions: b.versions,
                active_revision: b.active_revision,
            })
            .collect(),
    ))
}

#[utoipa::path(get, path = "/v1/bundles/{name}", tag = "bundles",
    params(("name" = String, Path, description = "bundle name")),
    responses((status = 200, body = BundleView), (status = "4XX", body = ProblemBody)),
    security(("bearer" = [])))]
pub async fn get_bundle(
    State(state): State<AppState>,
    caller: Caller,
    Path(name): Path<String>,
) -> Result<Json<BundleView>, Problem> {
    let who = caller.require(Action::ReadBundles)?;
    let versions = state.store.bundle_versions(&who.tenant_id, &name).await?;
    if versions.is_empty() {
        return Err(crate::policy::Error::UnknownBundle(name).into());
    }
    let active = state
        .store
        .list_bundles(&who.tenant_id)
        .await?
        .into_iter()
        .find(|b| b.name == name)
        .and_then(|b| b.active_revision);
    Ok(Json(BundleView {
        name,
        active_revision: active,
        versions: versions.into_iter().map(Into::into).collect(),
    }))
}

#[utoipa::path(get, path = "/v1/bundles/{name}/revisions/{revision}", tag = "bundles",
    params(("name" = String, Path, description = "bundle name"), ("revision" = String, Path, description = "revision")),
    responses((status = 200, body = VersionView), (status = "4XX", body = ProblemBody)),
    security(("bearer" = [])))]
pub async fn get_version(
    State(state): State<AppState>,
    caller: Caller,
    Path((name, revision)): Path<(String, String)>,
) -> Result<Json<VersionView>, Problem> {
    let who = caller.require(Action::ReadBundles)?;
    let v = state.policy.version(&who.tenant_id, &name, &revision).await?;
    Ok(Json(v.into()))
}

#[utoipa::path(get, path = "/v1/bundles/{name}/revisions/{revision}/content", tag = "bundles",
    params(("name" = String, Path, description = "bundle name"), ("revision" = String, Path, description = "revision")),
    responses((status = 200, description = "the bundle exactly as uploaded", content_type = "application/gzip", body = Vec<u8>),
        (status = "4XX", body = ProblemBody)),
    security(("bearer" = [])))]
pub async fn download_version(
    State(state): State<AppState>,
    caller: Caller,
    Path((name, revision)): Path<(String, String)>,
) -> Result<Response, Problem> {
    let who = caller.require(Action::ReadBundles)?;
    let v = state.policy.version(&who.tenant_id, &name, &revision).await?;
    let content = state
        .store
        .bundle_content(&who.tenant_id, &name, &revision)
        .await?
        .ok_or_else(|| {
            Problem::from(crate::policy::Error::UnknownRevision {
                name: name.clone(),
                revision: revision.clone(),
            })
        })?;
    let mut res = content.into_response();
    let h = res.headers_mut();
    h.insert(header::CONTENT_TYPE, HeaderValue::from_static("application/gzip"));
    if let Ok(etag) = HeaderValue::from_str(&format!("\"{}\"", v.digest)) {
        h.insert(header::ETAG, etag);
    }
    if let Ok(cd) = HeaderValue::from_str(&format!("attachment; filename=\"{name}-{revision}.tar.gz\"")) {
        h.insert(header::CONTENT_DISPOSITION, cd);
    }
    Ok(res)
}

#[utoipa::path(post, path = "/v1/bundles/{name}/activate", tag = "bundles",
    params(("name" = String, Path, description = "bundle name")),
    request_body = ActivateRequest,
    responses((status = 200, body = ActivationView), (status = "4XX", body = ProblemBody)),
    security(("bearer" = [])))]
pub async fn activate(
    State(state): State<AppState>,
    caller: Caller,
    Path(name): Path<String>,
    ApiJson(body): ApiJson<ActivateRequest>,
) -> Result<Json<ActivationView>, Problem> {
    let who = caller.require(Action::ActivateBundles)?;
    let a = state.policy.activate(who, &name, &body.revision, body.force).await?;
    tracing::info!(tenant = %who.tenant_id, bundle = %name, revision = %a.revision,
        previous = ?a.previous_revision, forced = body.force, by = %who.actor(), "bundle activated");
    Ok(Json(a.into()))
}

#[utoipa::path(post, path = "/v1/bundles/{name}/rollback", tag = "bundles",
    params(("name" = String, Path, description = "bundle name")),
    request_body = RollbackRequest,
    responses((status = 200, body = ActivationView), (status = "4XX", body = ProblemBody)),
    security(("bearer" = [])))]
pub async fn rollback(
    State(state): State<AppState>,
    caller: Caller,
    Path(name): Path<String>,
    ApiJson(body): ApiJson<RollbackRequest>,
) -> Result<Json<ActivationView>, Problem> {
    let who = caller.require(Action::ActivateBundles)?;
    let a = state
        .policy
        .rollback(who, &name, body.revision.as_deref(), body.force)
        .await?;
    tracing::info!(tenant = %who.tenant_id, bundle = %name, revision = %a.revision,
        previous = ?a.previous_revision, by = %who.actor(), "bundle rolled back");
    Ok(Json(a.into()))
}
