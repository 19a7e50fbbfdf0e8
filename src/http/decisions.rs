//! Decisions: Warden's own API, and OPA's Data API for existing OPA clients.

use axum::Json;
use axum::extract::{Path, RawQuery, Request, State};
use axum::http::header;
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use serde::{Deserialize, Serialize};
use serde_json::value::RawValue;

use super::AppState;
use super::extract::{ApiJson, Caller, parse_json, read_body};
use super::problem::{Problem, ProblemBody};
use crate::auth::Action;
use crate::ledger::Receipt;
use crate::policy::{Decision, DecisionRequest, Error};

pub fn router() -> axum::Router<AppState> {
    axum::Router::new()
        .route("/v1/decisions", post(decide))
        .route("/v1/data/{*path}", post(opa_data).get(opa_data_get))
}

#[utoipa::path(post, path = "/v1/decisions", tag = "decisions", request_body = DecisionRequest,
    responses((status = 200, body = Decision), (status = "4XX", body = ProblemBody)),
    security(("bearer" = [])))]
pub async fn decide(
    State(state): State<AppState>,
    caller: Caller,
    ApiJson(req): ApiJson<DecisionRequest>,
) -> Result<Json<Decision>, Problem> {
    let who = caller.require(Action::Decide)?;
    let mut decision = state.policy.decide(who, req).await?;
    decision.receipt = Some(record(&state, &decision).await?);
    Ok(Json(decision))
}

/// Makes the decision durable evidence; it is answered only afterwards.
async fn record(state: &AppState, d: &Decision) -> Result<Receipt, Problem> {
    Ok(state.ledger.append(d.record()).await?)
}

#[derive(Debug, Deserialize, utoipa::ToSchema)]
pub struct OpaDataRequest {
    #[serde(default, deserialize_with = "crate::policy::decision::present")]
    #[schema(value_type = Value)]
    pub input: Option<Box<RawValue>>,
}

#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct OpaDataResponse {
    pub decision_id: String,
    /// Absent when the document is undefined, as in OPA.
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(value_type = Value)]
    pub result: Option<regorus::Value>,
    /// With `?metrics`: `timer_rego_query_eval_ns`, as OPA names it.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub metrics: Option<OpaMetrics>,
    /// With `?provenance`: Warden's version and the bundle that answered.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub provenance: Option<OpaProvenance>,
}

#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct OpaMetrics {
    pub timer_rego_query_eval_ns: u64,
}

#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct OpaProvenance {
    pub version: String,
    /// By bundle name: its `revision` and `digest`.
    #[schema(value_type = Object)]
    pub bundles: serde_json::Map<String, serde_json::Value>,
}

/// OPA's query parameters of the Data API that Warden takes.
#[derive(Debug, Default)]
struct DataQuery {
    /// `?input=<JSON>` (GET only, as OPA).
    input: Option<String>,
    pretty: bool,
    metrics: bool,
    provenance: bool,
}

fn flag(value: &str) -> bool {
    !matches!(value, "false" | "0")
}

fn data_query(raw: Option<&str>, get: bool) -> Result<DataQuery, Problem> {
    let mut q = DataQuery::default();
    let pairs: Vec<(String, String)> = serde_urlencoded::from_str(raw.unwrap_or_default())
        .map_err(|e| Problem::bad_request("invalid_query", format!("the query string cannot be read: {e}")))?;
    for (key, value) in pairs {
        match key.as_str() {
            "input" if get => q.input = Some(value),
            "pretty" => q.pretty = flag(&value),
            "metrics" => q.metrics = flag(&value),
            "provenance" => q.provenance = flag(&value),
            // OPA's tracing switches: Warden records the decision instead.
            "explain" | "instrument" => {}
            other => {
                return Err(Problem::bad_request(
                    "invalid_query",
                    format!(
                        "query parameter {other:?} is not taken here; use pretty, metrics, provenance{}",
                        if get {
                            " or input"
                        } else {
                            " (the input goes in the body)"
                        }
                    ),
                ));
            }
        }
    }
    Ok(q)
}

/// OPA's `POST /v1/data/{path}`: `{"input": …}` → `{"result": …}`. Any
/// document path OPA serves: a package or its ancestors, a rule, a prefix
/// of ref-head rules, a member of a partial set or object, a key that is
/// not an identifier, a base document. An undefined document, or a path no
/// bundle covers, answers 200 without `result`, exactly as OPA does.
#[utoipa::path(post, path = "/v1/data/{path}", tag = "decisions",
    params(("path" = String, Path, description = "document path, `/`-separated"),
        ("pretty" = Option<bool>, Query, description = "indent the answer"),
        ("metrics" = Option<bool>, Query, description = "add `metrics.timer_rego_query_eval_ns`"),
        ("provenance" = Option<bool>, Query, description = "add the answering bundle's revision and digest")),
    request_body = OpaDataRequest,
    responses((status = 200, body = OpaDataResponse), (status = "4XX", body = ProblemBody)),
    security(("bearer" = [])))]
pub async fn opa_data(
    State(state): State<AppState>,
    caller: Caller,
    Path(path): Path<String>,
    RawQuery(query): RawQuery,
    req: Request,
) -> Result<Response, Problem> {
    let who = caller.require(Action::Decide)?.clone();
    let query = data_query(query.as_deref(), false)?;
    let body = read_body(req, &state).await?;
    // OPA accepts an empty body (no input).
    let body: OpaDataRequest = if body.iter().all(u8::is_ascii_whitespace) {
        OpaDataRequest { input: None }
    } else {
        parse_json(&body, state.config.limits.max_json_depth)?
    };
    answer_data(&state, &who, path, body.input, &query).await
}

/// OPA's `GET /v1/data/{path}`, the input (if any) as `?input=<JSON>`.
#[utoipa::path(get, path = "/v1/data/{path}", tag = "decisions",
    params(("path" = String, Path, description = "document path, `/`-separated"),
        ("input" = Option<String>, Query, description = "the input document, JSON"),
        ("pretty" = Option<bool>, Query, description = "indent the answer"),
        ("metrics" = Option<bool>, Query, description = "add `metrics.timer_rego_query_eval_ns`"),
        ("provenance" = Option<bool>, Query, description = "add the answering bundle's revision and digest")),
    responses((status = 200, body = OpaDataResponse), (status = "4XX", body = ProblemBody)),
    security(("bearer" = [])))]
pub async fn opa_data_get(
    State(state): State<AppState>,
    caller: Caller,
    Path(path): Path<String>,
    RawQuery(query): RawQuery,
) -> Result<Response, Problem> {
    let who = caller.require(Action::Decide)?.clone();
    let query = data_query(query.as_deref(), true)?;
    let input = match &query.input {
        None => None,
        Some(text) => {
            let body: OpaDataRequest = parse_json(
                format!("{{\"input\":{text}}}").as_bytes(),
                state.config.limits.max_json_depth,
            )?;
            body.input
        }
    };
    answer_data(&state, &who, path, input, &query).await
}

async fn answer_data(
    state: &AppState,
    who: &crate::auth::Principal,
    path: String,
    input: Option<Box<RawValue>>,
    query: &DataQuery,
) -> Result<Response, Problem> {
    let req = DecisionRequest {
        path,
        input,
        bundle: None,
        context: None,
    };
    let body = match state.policy.decide(who, req).await {
        Ok(d) => {
            record(state, &d).await?;
            let metrics = query.metrics.then_some(OpaMetrics {
                timer_rego_query_eval_ns: (d.timing.eval_us * 1000.0) as u64,
            });
            let provenance = query.provenance.then(|| {
                let mut bundles = serde_json::Map::new();
                bundles.insert(
                    d.bundle.name.clone(),
                    serde_json::json!({"revision": d.bundle.revision, "digest": d.bundle.digest}),
                );
                OpaProvenance {
                    version: env!("CARGO_PKG_VERSION").to_string(),
                    bundles,
                }
            });
            let result = match d.result {
                regorus::Value::Undefined => None,
                v => Some(v),
            };
            OpaDataResponse {
                decision_id: d.decision_id,
                result,
                metrics,
                provenance,
            }
        }
        Err(Error::NoBundleForPath(_) | Error::UnknownRulePath(_)) => OpaDataResponse {
            decision_id: crate::auth::new_id("dec", state.clock.now_ms()),
            result: None,
            metrics: None,
            provenance: None,
        },
        Err(e) => return Err(e.into()),
    };
    let bytes = if query.pretty {
        serde_json::to_vec_pretty(&body)
    } else {
        serde_json::to_vec(&body)
    }
    .map_err(|e| Problem::internal("serializing the answer", &e))?;
    Ok(([(header::CONTENT_TYPE, "application/json")], bytes).into_response())
}
