//! Liveness, readiness, metrics and the OpenAPI document.
//!
//! `/health` and `/health/ready` answer without a token: orchestrators'
//! probes rarely carry one, and they reveal nothing about any tenant.
//! `/metrics` and `/openapi.json` need a token like every other route.

use axum::Json;
use axum::extract::State;
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use serde::Serialize;

use super::AppState;
use super::extract::Caller;
use super::problem::{Problem, ProblemBody};
use crate::auth::Action;

pub fn router() -> axum::Router<AppState> {
    axum::Router::new()
        .route("/health", get(health))
        .route("/health/ready", get(ready))
        .route("/metrics", get(metrics))
        .route("/openapi.json", get(openapi))
}

#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct Health {
    pub status: &'static str,
    pub version: &'static str,
}

#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct Readiness {
    pub status: &'static str,
    pub store: &'static str,
    /// Active bundle versions compiled and loaded.
    pub active_bundles: usize,
    /// Background tasks down now that do not make the instance unready
    /// (a sink's delivery: `sink_delivery`), each restarting with back-off.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub degraded: Vec<crate::supervise::TaskDown>,
}

#[utoipa::path(get, path = "/health", tag = "operations", responses((status = 200, body = Health)))]
pub async fn health() -> Json<Health> {
    Json(Health {
        status: "ok",
        version: env!("CARGO_PKG_VERSION"),
    })
}

/// Ready when the store answers, the active bundles are loaded, the
/// ledger can commit, and every essential background task (ledger writer,
/// workflow engine, kernel timers, policy refresh, audit fan-out) is up.
/// While the ledger's last write failed, the 503 is `ledger_unavailable`
/// with `errors`: `[{task: "ledger_writer", essential, restarts, cause,
/// error, since_ms, failed_batches, last_attempt_ms}]`. A task that failed is down until it
/// works again; the 503 names it (`code` `task_down`, and `errors`:
/// `[{task, essential, restarts}]`).
#[utoipa::path(get, path = "/health/ready", tag = "operations",
    responses((status = 200, body = Readiness), (status = 503, body = ProblemBody)))]
pub async fn ready(State(state): State<AppState>) -> Result<Json<Readiness>, Problem> {
    if let Err(e) = state.store.ping().await {
        tracing::warn!(error = %e, "readiness: store unreachable");
        let mut p = Problem::new(StatusCode::SERVICE_UNAVAILABLE, "not_ready", "the store is unreachable");
        p.retry_after = Some(1);
        return Err(p);
    }
    if !state.ready.load(std::sync::atomic::Ordering::Acquire) {
        return Err(Problem::new(
            StatusCode::SERVICE_UNAVAILABLE,
            "not_ready",
            "active bundles are still being compiled",
        ));
    }
    if let Some(f) = state.ledger.fault() {
        let mut p = Problem::new(
            StatusCode::SERVICE_UNAVAILABLE,
            "ledger_unavailable",
            format!(
                "the evidence ledger cannot commit ({}: {}); nothing is acknowledged until it can. {} \
                 It recovers by itself once a write succeeds (see warden_ledger_failed_batches_total and the logs)",
                f.cause,
                f.error,
                what_to_do(f.cause)
            ),
        );
        p.retry_after = Some(1);
        let mut task = crate::supervise::TaskDown::failed("ledger_writer", true, state.tasks.restarts("ledger_writer"));
        task.cause = Some(f.cause.to_string());
        task.error = Some(f.error);
        task.since_ms = Some(f.since_ms);
        task.failed_batches = Some(f.failed_batches);
        task.last_attempt_ms = Some(f.last_attempt_ms);
        p.errors = serde_json::to_value([task]).ok();
        return Err(p);
    }
    let (down, degraded): (Vec<_>, Vec<_>) = state.tasks.down().into_iter().partition(|t| t.essential);
    if !down.is_empty() {
        let names: Vec<&str> = down.iter().map(|t| t.task.as_str()).collect();
        let mut p = Problem::new(
            StatusCode::SERVICE_UNAVAILABLE,
            "task_down",
            format!(
                "background task {} failed and is restarting with back-off (see the logs and warden_task_restarts_total)",
                names.join(", ")
            ),
        );
        p.retry_after = Some(1);
        p.errors = serde_json::to_value(&down).ok();
        return Err(p);
    }
    Ok(Json(Readiness {
        status: if degraded.is_empty() { "ready" } else { "degraded" },
        store: state.store.backend(),
        active_bundles: state.policy.active_count(),
        degraded,
    }))
}

/// What an operator does about a store that refuses the ledger's commits.
fn what_to_do(cause: &str) -> &'static str {
    match cause {
        "disk_full" => "Free space where the database lives.",
        "busy" => "Another process holds the database's write lock; find it.",
        "unreachable" => "The database cannot be reached; check it and the network.",
        "read_only" => "The database is read-only; make it writable.",
        "io" | "corrupt" => "The database reports an I/O or integrity error; check its disk and run fsck.",
        _ => "Check the database.",
    }
}

/// Metrics, as far as the caller's tenant may see them.
///
/// The platform tenant sees every series; another tenant sees the
/// process-wide series (no tenant in their labels) and its own sinks'
/// series, not those of other tenants' sinks nor of the configuration
/// file's.
#[utoipa::path(get, path = "/metrics", tag = "operations",
    responses((status = 200, description = "Prometheus text format", content_type = "text/plain", body = String),
        (status = "4XX", body = ProblemBody)),
    security(("bearer" = [])))]
pub async fn metrics(State(state): State<AppState>, caller: Caller) -> Result<Response, Problem> {
    let who = caller.require(Action::ReadMetrics)?;
    let text = if who.platform {
        state.metrics.render()
    } else {
        state.metrics.render_for_tenant(&who.tenant_id)
    };
    let mut res = text.into_response();
    res.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/openmetrics-text; version=1.0.0; charset=utf-8"),
    );
    Ok(res)
}

#[utoipa::path(get, path = "/openapi.json", tag = "operations",
    responses((status = 200, description = "this document", body = Object), (status = "4XX", body = ProblemBody)),
    security(("bearer" = [])))]
pub async fn openapi(caller: Caller) -> Result<Response, Problem> {
    caller.require(Action::ReadApi)?;
    let mut res = super::openapi_json().into_response();
    res.headers_mut()
        .insert(header::CONTENT_TYPE, HeaderValue::from_static("application/json"));
    Ok(res)
}
