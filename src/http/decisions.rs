//! Decisions: Warden's own API, and OPA's Data API for existing OPA clients.

use axum::Json;
use axum::extract::{Path, Request, State};
use axum::routing::post;
use serde::{Deserialize, Serialize};
use serde_json::value::RawValue;

use super::AppState;
use super::extract::{ApiJson, Caller, parse_json, read_body};
use super::problem::{Problem, ProblemBody};
use crate::auth::Action;
use crate::ledger::{Receipt, Record};
use crate::policy::{Decision, DecisionRequest, Error};

pub fn router() -> axum::Router<AppState> {
    axum::Router::new()
        .route("/v1/decisions", post(decide))
        .route("/v1/data/{*path}", post(opa_data))
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
    let record = Record::new(&d.tenant_id, "decision", &d.caller, &d.evidence()).about(&d.decision_id);
    Ok(state.ledger.append(record).await?)
}

#[derive(Debug, Deserialize, utoipa::ToSchema)]
pub struct OpaDataRequest {
    #[serde(default, deserialize_with = "crate::policy::decision::present")]
    #[schema(value_type = Option<Object>)]
    pub input: Option<Box<RawValue>>,
}

#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct OpaDataResponse {
    pub decision_id: String,
    /// Absent when the document is undefined, as in OPA.
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(value_type = Option<Object>)]
    pub result: Option<regorus::Value>,
}

/// OPA's `POST /v1/data/{path}`: `{"input": …}` → `{"result": …}`. An
/// undefined document, or a path no bundle covers, answers 200 without
/// `result`, exactly as OPA does.
#[utoipa::path(post, path = "/v1/data/{path}", tag = "decisions",
    params(("path" = String, Path, description = "document path, `/`-separated")),
    request_body = OpaDataRequest,
    responses((status = 200, body = OpaDataResponse), (status = "4XX", body = ProblemBody)),
    security(("bearer" = [])))]
pub async fn opa_data(
    State(state): State<AppState>,
    caller: Caller,
    Path(path): Path<String>,
    req: Request,
) -> Result<Json<OpaDataResponse>, Problem> {
    let who = caller.require(Action::Decide)?;
    let body = read_body(req, &state).await?;
    // OPA accepts an empty body (no input).
    let body: OpaDataRequest = if body.iter().all(u8::is_ascii_whitespace) {
        OpaDataRequest { input: None }
    } else {
        parse_json(&body, state.config.limits.max_json_depth)?
    };
    let req = DecisionRequest {
        path,
        input: body.input,
        bundle: None,
        context: None,
    };
    match state.policy.decide(who, req).await {
        Ok(d) => {
            record(&state, &d).await?;
            let result = match d.result {
                regorus::Value::Undefined => None,
                v => Some(v),
            };
            Ok(Json(OpaDataResponse {
                decision_id: d.decision_id,
                result,
            }))
        }
        Err(Error::NoBundleForPath(_) | Error::UnknownRulePath(_)) => Ok(Json(OpaDataResponse {
            decision_id: crate::auth::new_id("dec", state.clock.now_ms()),
            result: None,
        })),
        Err(e) => Err(e.into()),
    }
}
