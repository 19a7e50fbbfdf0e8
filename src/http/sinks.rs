//! The audit sinks as the caller's tenant sees them, and redriving dead
//! letters.

use axum::Json;
use axum::extract::{Path, State};
use axum::routing::{get, post};
use serde::Serialize;

use super::AppState;
use super::extract::Caller;
use super::problem::{Problem, ProblemBody};
use crate::auth::Action;
use crate::fanout::SinkView;

pub fn router() -> axum::Router<AppState> {
    axum::Router::new()
        .route("/v1/sinks", get(list))
        .route("/v1/sinks/{name}/redrive", post(redrive))
}

#[utoipa::path(get, path = "/v1/sinks", tag = "audit",
    responses((status = 200, body = Vec<SinkView>), (status = "4XX", body = ProblemBody)),
    security(("bearer" = [])))]
pub async fn list(State(state): State<AppState>, caller: Caller) -> Result<Json<Vec<SinkView>>, Problem> {
    let who = caller.require(Action::ReadEvidence)?;
    Ok(Json(state.fanout.views(&state.store, &who.tenant_id).await?))
}

#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct Redriven {
    /// Dead letters the peer took this time.
    pub delivered: u64,
    /// Dead letters it still refused; they stay in the store.
    pub failed: u64,
}

#[utoipa::path(post, path = "/v1/sinks/{name}/redrive", tag = "audit",
    params(("name" = String, Path, description = "sink name")),
    responses((status = 200, body = Redriven), (status = "4XX", body = ProblemBody)),
    security(("bearer" = [])))]
pub async fn redrive(
    State(state): State<AppState>,
    caller: Caller,
    Path(name): Path<String>,
) -> Result<Json<Redriven>, Problem> {
    let who = caller.require(Action::ManageSinks)?;
    match state
        .fanout
        .redrive(&state.store, &state.clock, &name, &who.tenant_id)
        .await?
    {
        Some((delivered, failed)) => {
            state
                .record(
                    who,
                    "sink.redrive",
                    &name,
                    serde_json::json!({"sink": name, "delivered": delivered, "failed": failed}),
                )
                .await?;
            Ok(Json(Redriven { delivered, failed }))
        }
        None => Err(Problem::not_found(
            "unknown_sink",
            format!("no sink named {name:?}; see GET /v1/sinks"),
        )),
    }
}
