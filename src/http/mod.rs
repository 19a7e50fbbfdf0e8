//! The HTTP API: one [`AppState`], one router per resource, merged here.
//!
//! Every route authenticates with the [`extract::Caller`] extractor and
//! checks its [`crate::auth::Action`] first thing; the two health probes are
//! the only exceptions. Every error is a [`problem::Problem`].

use std::sync::Arc;
use std::sync::OnceLock;
use std::sync::atomic::AtomicBool;
use std::time::Instant;

use axum::extract::{DefaultBodyLimit, MatchedPath, Request, State};
use axum::http::{Method, StatusCode};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use tower_http::catch_panic::CatchPanicLayer;
use tower_http::trace::TraceLayer;
use utoipa::OpenApi;

pub mod admin;
pub mod audit;
pub mod bundles;
pub mod console;
pub mod decisions;
pub mod extract;
pub mod kernel;
pub mod ledger;
pub mod mcp;
pub mod ops;
pub mod problem;
pub mod runs;
pub mod sinks;
pub mod skills;
pub mod tokens;
pub mod workflows;

use self::tokens::TokenCache;
use crate::auth::Principal;
use crate::clock::Clock;
use crate::config::Config;
use crate::ledger::{Ledger, Receipt, Record};
use crate::metrics::{Metrics, RouteLabels};
use crate::policy::PolicyService;
use crate::store::Store;
use problem::Problem;

/// Everything a request handler may need; cheap to clone.
#[derive(Clone)]
pub struct AppState {
    pub config: Arc<Config>,
    pub store: Store,
    pub policy: Arc<PolicyService>,
    pub tokens: Arc<TokenCache>,
    /// Console sessions verified recently.
    pub sessions: Arc<crate::console::session::SessionCache>,
    pub metrics: Arc<Metrics>,
    pub clock: Clock,
    pub ledger: Ledger,
    pub fanout: crate::fanout::Fanout,
    pub kernel: Arc<crate::kernel::Kernel>,
    pub workflows: Arc<crate::workflow::conductor::Conductor>,
    /// The MCP gateway.
    pub mcp: Arc<crate::mcp::Gateway>,
    /// Set once the active bundles have been loaded at start-up.
    pub ready: Arc<AtomicBool>,
    /// The supervised background tasks, and which are down.
    pub tasks: Arc<crate::supervise::Tasks>,
}

impl AppState {
    /// Appends an administrative act to the caller's log and waits until it
    /// is durable; the act's response is sent only after this succeeds.
    pub async fn record(
        &self,
        who: &Principal,
        kind: &'static str,
        subject: &str,
        payload: serde_json::Value,
    ) -> Result<Receipt, Problem> {
        self.record_in(&who.tenant_id, who, kind, subject, payload).await
    }

    /// As [`AppState::record`], in the log of `tenant_id`.
    pub async fn record_in(
        &self,
        tenant_id: &str,
        who: &Principal,
        kind: &'static str,
        subject: &str,
        payload: serde_json::Value,
    ) -> Result<Receipt, Problem> {
        let record = Record::new(tenant_id, kind, &who.actor(), &payload).about(subject);
        Ok(self.ledger.append(record).await?)
    }
}

pub fn router(state: AppState) -> axum::Router {
    let max_body = state.config.limits.max_body_bytes;
    let max_bundle = state.config.limits.max_bundle_bytes;
    axum::Router::new()
        .merge(admin::router())
        .merge(bundles::router(max_bundle))
        .merge(decisions::router())
        .merge(ledger::router())
        .merge(audit::router())
        .merge(sinks::router())
        .merge(kernel::router())
        .merge(workflows::router())
        .merge(runs::router())
        .merge(skills::router())
        .merge(ops::router())
        .merge(console::router())
        .merge(mcp::router())
        .route_layer(middleware::from_fn_with_state(state.clone(), deadline))
        .route_layer(middleware::from_fn_with_state(state.clone(), track))
        .fallback(not_found)
        .method_not_allowed_fallback(method_not_allowed)
        // Every body is read by `extract::read_body` within this limit (or
        // the route's own); axum's extractors would keep to it too.
        .layer(axum::Extension(extract::BodyLimit {
            bytes: max_body,
            setting: "limits.max_body_bytes",
        }))
        .layer(DefaultBodyLimit::max(max_body))
        .layer(TraceLayer::new_for_http())
        .layer(CatchPanicLayer::custom(|_panic: Box<dyn std::any::Any + Send>| {
            tracing::error!("request handler panicked");
            Problem::new(
                StatusCode::INTERNAL_SERVER_ERROR,
                "internal",
                "an internal error occurred; it has been logged",
            )
            .into_response()
        }))
        .with_state(state)
}

/// Routes meant to last: agent and runner streams, ledger exports, MCP
/// calls (which may wait for a review). The
/// request time cap does not apply to them.
pub const LONG_LIVED: &[&str] = &["/v0/agents/stream", "/v0/runners/stream", "/v1/ledger/export", "/mcp"];

/// Answers 503 `request_timeout` when a request (reading its body
/// included) takes longer than `limits.request_timeout_ms`; what the
/// handler was doing is dropped. Long-lived routes ([`LONG_LIVED`]) are
/// exempt.
async fn deadline(State(state): State<AppState>, req: Request, next: Next) -> Response {
    let cap = std::time::Duration::from_millis(state.config.limits.request_timeout_ms);
    within(cap, req, next, || {
        state.metrics.request_timeouts.inc();
    })
    .await
}

/// Runs the rest of the stack for `req` within `cap` (unless its route is
/// [`LONG_LIVED`]); past it, `on_timeout` runs and the answer is
/// [`timed_out`].
async fn within(cap: std::time::Duration, req: Request, next: Next, on_timeout: impl FnOnce()) -> Response {
    let exempt = req
        .extensions()
        .get::<MatchedPath>()
        .is_some_and(|p| LONG_LIVED.contains(&p.as_str()));
    if exempt {
        return next.run(req).await;
    }
    match tokio::time::timeout(cap, next.run(req)).await {
        Ok(res) => res,
        Err(_) => {
            on_timeout();
            timed_out(cap).into_response()
        }
    }
}

/// The answer to a request past the time cap.
pub(crate) fn timed_out(cap: std::time::Duration) -> Problem {
    let mut p = Problem::new(
        StatusCode::SERVICE_UNAVAILABLE,
        "request_timeout",
        format!(
            "the request took longer than {} ms (limits.request_timeout_ms) and was abandoned; it may or may not \
             have taken effect: read before retrying anything that is not idempotent",
            cap.as_millis()
        ),
    );
    p.retry_after = Some(1);
    p
}

/// Records request latency by matched route, method and status.
async fn track(State(state): State<AppState>, req: Request, next: Next) -> Response {
    let route = req
        .extensions()
        .get::<MatchedPath>()
        .map(|p| p.as_str().to_owned())
        .unwrap_or_default();
    let method = method_label(req.method());
    let started = Instant::now();
    // One route string per request, for both series.
    let labels = crate::metrics::InFlightLabels { method, route };
    let in_flight = InFlight::enter(&state, &labels);
    let res = next.run(req).await;
    drop(in_flight);
    state
        .metrics
        .http_duration
        .get_or_create(&RouteLabels {
            method,
            route: labels.route,
            status: res.status().as_u16(),
        })
        .observe(started.elapsed().as_secs_f64());
    res
}

/// One request counted in `http_requests_in_flight` until it is answered
/// or dropped (a client that goes away cancels the handler).
struct InFlight(prometheus_client::metrics::gauge::Gauge);

impl InFlight {
    fn enter(state: &AppState, labels: &crate::metrics::InFlightLabels) -> InFlight {
        let gauge = state.metrics.http_in_flight.get_or_create(labels).clone();
        gauge.inc();
        InFlight(gauge)
    }
}

impl Drop for InFlight {
    fn drop(&mut self) {
        self.0.dec();
    }
}

fn method_label(m: &Method) -> &'static str {
    match *m {
        Method::GET => "GET",
        Method::POST => "POST",
        Method::PUT => "PUT",
        Method::DELETE => "DELETE",
        Method::PATCH => "PATCH",
        Method::HEAD => "HEAD",
        _ => "OTHER",
    }
}

async fn not_found(req: Request) -> Problem {
    Problem::not_found(
        "not_found",
        format!(
            "no route {} {}; the API is described at /openapi.json",
            req.method(),
            req.uri().path()
        ),
    )
}

async fn method_not_allowed(req: Request) -> Problem {
    Problem::new(
        StatusCode::METHOD_NOT_ALLOWED,
        "method_not_allowed",
        format!(
            "{} is not allowed on {}; see /openapi.json",
            req.method(),
            req.uri().path()
        ),
    )
}

struct BearerAuth;

impl utoipa::Modify for BearerAuth {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        use utoipa::openapi::security::{HttpAuthScheme, HttpBuilder, SecurityScheme};
        let components = openapi.components.get_or_insert_with(Default::default);
        components.add_security_scheme(
            "bearer",
            SecurityScheme::Http(HttpBuilder::new().scheme(HttpAuthScheme::Bearer).build()),
        );
    }
}

#[derive(OpenApi)]
#[openapi(
    info(
        title = "Warden",
        description = "Audit and policy compliance gateway: versioned Rego bundles, decisions, evidence.",
        license(name = "Apache-2.0")
    ),
    paths(
        admin::create_tenant, admin::list_tenants,
        admin::create_token, admin::list_tokens, admin::revoke_token, admin::whoami,
        admin::add_key, admin::list_keys, admin::delete_key,
        admin::get_settings, admin::put_settings,
        bundles::upload_bundle, bundles::list_bundles, bundles::get_bundle, bundles::get_version,
        bundles::download_version, bundles::activate, bundles::rollback,
        decisions::decide, decisions::opa_data, decisions::opa_data_get,
        ledger::replay, ledger::impact,
        audit::submit, audit::feed, sinks::list, sinks::put_sink, sinks::delete_sink, sinks::dead_letters, sinks::redrive,
        ledger::checkpoint, ledger::entry, ledger::consistency, ledger::keys, ledger::rotate, ledger::export,
        kernel::create, kernel::list, kernel::execution, kernel::history, kernel::cancel, kernel::signal, kernel::review,
        kernel::approvals, kernel::agent_stream, kernel::intent, kernel::step_result, kernel::runner_stream,
        kernel::runner_result,
        workflows::put, workflows::list, workflows::versions, workflows::version,
        runs::start, runs::list, runs::run, runs::cancel, runs::history,
        skills::put, skills::list, skills::versions, skills::version, skills::resolve,
        ops::health, ops::ready, ops::metrics, ops::openapi,
        console::sign_in, console::current, console::sign_out,
        mcp::put_upstream, mcp::list_upstreams, mcp::delete_upstream, mcp::upstream_tools, mcp::accept_tool,
    ),
    components(schemas(problem::ProblemBody)),
    modifiers(&BearerAuth),
    tags(
        (name = "admin", description = "tenants, tokens, verification keys, settings"),
        (name = "bundles", description = "versioned OPA bundles"),
        (name = "decisions", description = "policy decisions, their replay, and impact analysis"),
        (name = "audit", description = "audit events in, the audit feed, and the sinks that deliver it"),
        (name = "kernel", description = "the execution kernel: executions, agent and runner streams, intents, review"),
        (name = "workflows", description = "workflow definitions (seed 002), versioned, and their runs"),
        (name = "skills", description = "the skill registry (seed 000): immutable, semver-versioned skills"),
        (name = "ledger", description = "the evidence ledger: checkpoints, proofs, keys, exports"),
        (name = "operations", description = "health, metrics, this document"),
        (name = "console", description = "the web console's sessions: a token exchanged for an HttpOnly cookie"),
        (name = "mcp", description = "the MCP gateway's upstreams and pinned tools (the transport itself is /mcp)"),
    )
)]
pub struct ApiDoc;

/// The OpenAPI document, as served and as checked in at `schemas/openapi.json`.
pub fn openapi_json() -> String {
    static DOC: OnceLock<String> = OnceLock::new();
    DOC.get_or_init(|| {
        let mut doc = ApiDoc::openapi();
        doc.info.version = env!("CARGO_PKG_VERSION").to_string();
        let mut text = doc.to_pretty_json().expect("the OpenAPI document serialises");
        text.push('\n');
        text
    })
    .clone()
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The cap (the same function the server's layer runs, without the
    /// state): a slow handler is cut off with a problem document at the
    /// cap; a long-lived route is not.
    #[tokio::test]
    async fn a_request_past_the_cap_answers_a_problem_and_streams_are_exempt() {
        use axum::routing::get;
        use tower::ServiceExt;
        let cap = std::time::Duration::from_millis(100);
        let slow = || async {
            tokio::time::sleep(std::time::Duration::from_millis(400)).await;
            "done"
        };
        let app = axum::Router::new()
            .route("/slow", get(slow))
            .route(LONG_LIVED[0], get(slow))
            .route_layer(middleware::from_fn(move |req: Request, next: Next| {
                within(cap, req, next, || {})
            }));
        let started = Instant::now();
        let res = app
            .clone()
            .oneshot(Request::get("/slow").body(axum::body::Body::empty()).unwrap())
            .await
            .unwrap();
        assert!(started.elapsed() < std::time::Duration::from_millis(350));
        assert_eq!(res.status(), StatusCode::SERVICE_UNAVAILABLE);
        assert_eq!(res.headers()["content-type"], "application/problem+json");
        let body = axum::body::to_bytes(res.into_body(), 10_000).await.unwrap();
        let body: serde_json::Value = serde_json::from_slice(&body).unwrap();
        assert_eq!(body["code"], "request_timeout");
        let res = app
            .oneshot(Request::get(LONG_LIVED[0]).body(axum::body::Body::empty()).unwrap())
            .await
            .unwrap();
        assert_eq!(res.status(), StatusCode::OK, "a long-lived route is not cut off");
    }
}
