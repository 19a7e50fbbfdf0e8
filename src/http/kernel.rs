//! The execution kernel's API (seed 003), under `/v0`: executions, agent
//! and runner streams (SSE, resumable with `Last-Event-ID`), intents,
//! results, cancel, signal, and human review.

use std::collections::VecDeque;
use std::convert::Infallible;
use std::sync::Arc;
use std::time::Duration;

use axum::Json;
use axum::extract::rejection::QueryRejection;
use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::IntoResponse;
use axum::response::sse::{Event, KeepAlive, Sse};
use axum::routing::{get, post};
use futures_util::Stream;
use serde::{Deserialize, Serialize};
use serde_json::Value;

use super::AppState;
use super::extract::{ApiJson, Caller};
use super::problem::{Problem, ProblemBody};
use crate::auth::Action;
use crate::kernel::Kernel;
use crate::kernel::hub::Conn;
use crate::kernel::{
    CreateExecution, ExecutionSummary, ExecutionView, HistoryView, Intent, IntentAnswer, PendingReview, ReviewRequest,
    StepReport, StepView, bound_agent, bound_runner,
};
use crate::ledger::Receipt;
use crate::model::kernel::{ExecState, PushRow, agent_fault, agent_recipient, name_fault, runner_recipient};
use crate::store::DeclaredTool;

pub fn router() -> axum::Router<AppState> {
    axum::Router::new()
        .route("/v0/executions", post(create).get(list))
        .route("/v0/executions/{id}", get(execution))
        .route("/v0/executions/{id}/history", get(history))
        .route("/v0/executions/{id}/cancel", post(cancel))
        .route("/v0/executions/{id}/signal", post(signal))
        .route("/v0/executions/{id}/approvals", post(review))
        .route("/v0/approvals", get(approvals))
        .route("/v0/agents/stream", get(agent_stream))
        .route("/v0/agents/intent", post(intent))
        .route("/v0/agents/step-result", post(step_result))
        .route("/v0/runners/stream", get(runner_stream))
        .route("/v0/runners/{id}/results", post(runner_result))
}

fn kernel(state: &AppState) -> &Arc<Kernel> {
    &state.kernel
}

#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct Created {
    #[serde(flatten)]
    pub execution: ExecutionView,
    pub receipts: Vec<Receipt>,
}

/// Starts an execution; its agent gets `execution.assigned` on its stream.
#[utoipa::path(post, path = "/v0/executions", tag = "kernel", request_body = CreateExecution,
    responses((status = 201, body = Created), (status = "4XX", body = ProblemBody)), security(("bearer" = [])))]
pub async fn create(
    State(state): State<AppState>,
    caller: Caller,
    ApiJson(req): ApiJson<CreateExecution>,
) -> Result<(StatusCode, Json<Created>), Problem> {
    let who = caller.require(Action::RunExecutions)?;
    let (execution, receipts) = kernel(&state).create(who, req).await?;
    Ok((StatusCode::CREATED, Json(Created { execution, receipts })))
}

#[utoipa::path(get, path = "/v0/executions/{id}", tag = "kernel",
    params(("id" = String, Path, description = "execution id")),
    responses((status = 200, body = ExecutionView), (status = "4XX", body = ProblemBody)), security(("bearer" = [])))]
pub async fn execution(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
) -> Result<Json<ExecutionView>, Problem> {
    let who = caller.require(Action::ReadExecutions)?;
    Ok(Json(kernel(&state).get(who, &id).await?))
}

#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[serde(deny_unknown_fields)]
pub struct ExecutionsQuery {
    /// Only executions in this state: `pending`, `running`, `blocked`,
    /// `completed`, `failed` or `cancelled`.
    pub state: Option<String>,
    /// Only the executions of this agent.
    pub agent_id: Option<String>,
    /// At most this many, newest first (default 100, 1 to 1,000).
    pub limit: Option<i64>,
}

/// The tenant's executions, newest first, without their steps (`GET
/// /v0/executions/{id}` has them).
#[utoipa::path(get, path = "/v0/executions", tag = "kernel", params(ExecutionsQuery),
    responses((status = 200, body = Vec<ExecutionSummary>), (status = "4XX", body = ProblemBody)), security(("bearer" = [])))]
pub async fn list(
    State(state): State<AppState>,
    caller: Caller,
    q: Result<Query<ExecutionsQuery>, QueryRejection>,
) -> Result<Json<Vec<ExecutionSummary>>, Problem> {
    let who = caller.require(Action::ReadExecutions)?;
    let Query(q) = q.map_err(|e| {
        Problem::bad_request(
            "invalid_query",
            format!("{}; the parameters are state, agent_id and limit", e.body_text()),
        )
    })?;
    let exec_state = match q.state.as_deref().filter(|s| !s.is_empty()) {
        None => None,
        Some(s) => Some(ExecState::parse(s).ok_or_else(|| {
            Problem::bad_request(
                "invalid_query",
                format!("state {s:?} is not one of pending, running, blocked, completed, failed, cancelled"),
            )
        })?),
    };
    if q.agent_id.as_deref().is_some_and(|a| a.len() > 256) {
        return Err(Problem::bad_request("invalid_query", "agent_id is at most 256 bytes"));
    }
    let limit = q.limit.unwrap_or(100);
    if !(1..=1000).contains(&limit) {
        return Err(Problem::bad_request("invalid_query", "limit is 1 to 1000"));
    }
    let agent = q.agent_id.as_deref().filter(|a| !a.is_empty());
    Ok(Json(kernel(&state).list(who, exec_state, agent, limit).await?))
}

#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct History {
    pub execution_id: String,
    pub entries: Vec<HistoryView>,
}

/// Every transition of the execution, each with its index in the ledger.
#[utoipa::path(get, path = "/v0/executions/{id}/history", tag = "kernel",
    params(("id" = String, Path, description = "execution id")),
    responses((status = 200, body = History), (status = "4XX", body = ProblemBody)), security(("bearer" = [])))]
pub async fn history(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
) -> Result<Json<History>, Problem> {
    let who = caller.require(Action::ReadExecutions)?;
    let entries = kernel(&state).history(who, &id).await?;
    Ok(Json(History {
        execution_id: id,
        entries,
    }))
}

#[derive(Debug, Default, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CancelRequest {
    #[serde(default)]
    pub reason: Option<String>,
}

#[utoipa::path(post, path = "/v0/executions/{id}/cancel", tag = "kernel", request_body = CancelRequest,
    params(("id" = String, Path, description = "execution id")),
    responses((status = 200, body = ExecutionView), (status = "4XX", body = ProblemBody)), security(("bearer" = [])))]
pub async fn cancel(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
    req: axum::extract::Request,
) -> Result<Json<ExecutionView>, Problem> {
    let who = caller.require(Action::RunExecutions)?;
    let body = super::extract::read_body(req, &state).await?;
    // The body is optional.
    let reason = if body.iter().all(u8::is_ascii_whitespace) {
        None
    } else {
        super::extract::parse_json::<CancelRequest>(&body, state.config.limits.max_json_depth)?.reason
    };
    Ok(Json(kernel(&state).cancel(who, &id, reason).await?))
}

#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct SignalRequest {
    #[serde(default)]
    #[schema(value_type = Object)]
    pub payload: Value,
}

/// Resumes an execution blocked by a `wait` intent (or tells a running
/// one's agent); its agent gets `execution.signalled`.
#[utoipa::path(post, path = "/v0/executions/{id}/signal", tag = "kernel", request_body = SignalRequest,
    params(("id" = String, Path, description = "execution id")),
    responses((status = 200, body = ExecutionView), (status = "4XX", body = ProblemBody)), security(("bearer" = [])))]
pub async fn signal(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
    ApiJson(req): ApiJson<SignalRequest>,
) -> Result<Json<ExecutionView>, Problem> {
    let who = caller.require(Action::RunExecutions)?;
    Ok(Json(kernel(&state).signal(who, &id, req.payload).await?))
}

/// A reviewer's verdict on a step policy escalated, bound to the step and
/// the hash of its exact arguments.
#[utoipa::path(post, path = "/v0/executions/{id}/approvals", tag = "kernel", request_body = ReviewRequest,
    params(("id" = String, Path, description = "execution id")),
    responses((status = 200, body = StepView), (status = "4XX", body = ProblemBody)), security(("bearer" = [])))]
pub async fn review(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
    ApiJson(req): ApiJson<ReviewRequest>,
) -> Result<Json<StepView>, Problem> {
    // The reviewer role is checked by the kernel, with its own code.
    Ok(Json(kernel(&state).review(&caller.0, &id, req).await?))
}

#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct Approvals {
    pub waiting: Vec<PendingReview>,
}

/// The steps waiting for review in the caller's tenant, with the policy's reasons.
#[utoipa::path(get, path = "/v0/approvals", tag = "kernel",
    responses((status = 200, body = Approvals), (status = "4XX", body = ProblemBody)), security(("bearer" = [])))]
pub async fn approvals(State(state): State<AppState>, caller: Caller) -> Result<Json<Approvals>, Problem> {
    let who = caller.require(Action::ReadApprovals)?;
    Ok(Json(Approvals {
        waiting: kernel(&state).pending_reviews(who).await?,
    }))
}

/// `invoke_tool` (decided by the tenant's kernel policy), `complete`,
/// `fail` or `wait`, from the agent holding the execution.
#[utoipa::path(post, path = "/v0/agents/intent", tag = "kernel", request_body = Intent,
    responses((status = 200, body = IntentAnswer), (status = "4XX", body = ProblemBody)), security(("bearer" = [])))]
pub async fn intent(
    State(state): State<AppState>,
    caller: Caller,
    ApiJson(req): ApiJson<Intent>,
) -> Result<Json<IntentAnswer>, Problem> {
    let who = caller.require(Action::ActAsAgent)?;
    Ok(Json(kernel(&state).intent(who, req).await?))
}

/// The agent's result for a local step.
#[utoipa::path(post, path = "/v0/agents/step-result", tag = "kernel", request_body = StepReport,
    responses((status = 200, body = StepView), (status = "4XX", body = ProblemBody)), security(("bearer" = [])))]
pub async fn step_result(
    State(state): State<AppState>,
    caller: Caller,
    ApiJson(req): ApiJson<StepReport>,
) -> Result<Json<StepView>, Problem> {
    let who = caller.require(Action::ActAsAgent)?;
    Ok(Json(kernel(&state).report(who, None, req).await?))
}

/// A runner's report on a job: started, succeeded or failed. Only from a
/// token bound to the runner id, and only from the token the job was
/// dispatched to (403 `job_not_yours`).
#[utoipa::path(post, path = "/v0/runners/{id}/results", tag = "kernel", request_body = StepReport,
    params(("id" = String, Path, description = "runner id")),
    responses((status = 200, body = StepView), (status = "4XX", body = ProblemBody)), security(("bearer" = [])))]
pub async fn runner_result(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
    ApiJson(req): ApiJson<StepReport>,
) -> Result<Json<StepView>, Problem> {
    let who = caller.require(Action::ActAsRunner)?;
    Ok(Json(kernel(&state).report(who, Some(&id), req).await?))
}

#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[serde(deny_unknown_fields)]
pub struct AgentStreamQuery {
    /// The agent this stream serves, one the token is bound to (its
    /// `agent_ids`); defaults to the token's name.
    pub agent_id: Option<String>,
}

#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[serde(deny_unknown_fields)]
pub struct RunnerStreamQuery {
    /// The runner this stream serves, one the token is bound to (its
    /// `runner_ids`); defaults to the token's name.
    pub runner_id: Option<String>,
    /// The tools this runner serves, comma-separated.
    pub tools: String,
    /// Those of `tools` that must never run twice, comma-separated.
    #[serde(default)]
    pub non_idempotent: Option<String>,
}

/// The agent's stream: `execution.assigned`, `step.assigned` (local
/// steps to run), `step.result`, `execution.signalled`,
/// `execution.resumed`, `execution.cancelled`. Send `Last-Event-ID` to
/// resume; closing it gives the agent's running executions back. Only a
/// token bound to the agent id opens it (403 `identity_not_bound`); it ends
/// when the token is revoked or expires; a tenant holds at most
/// `kernel.max_streams_per_tenant` streams per instance (429 `too_many_streams`).
#[utoipa::path(get, path = "/v0/agents/stream", tag = "kernel", params(AgentStreamQuery),
    responses((status = 200, description = "text/event-stream"), (status = "4XX", body = ProblemBody)),
    security(("bearer" = [])))]
pub async fn agent_stream(
    State(state): State<AppState>,
    caller: Caller,
    headers: HeaderMap,
    Query(q): Query<AgentStreamQuery>,
) -> Result<impl IntoResponse, Problem> {
    let who = caller.require(Action::ActAsAgent)?;
    let name = q.agent_id.unwrap_or_else(|| who.token_name.clone());
    if let Some(fault) = agent_fault("agent_id", &name) {
        return Err(Problem::bad_request("invalid_stream", fault));
    }
    bound_agent(who, &name)?;
    let k = kernel(&state).clone();
    refuse_while_draining(&k)?;
    let recipient = agent_recipient(&who.tenant_id, &name);
    let after = resume_point(&k, &headers, &recipient).await?;
    let conn = k.new_conn(who, name, recipient);
    k.agent_connected(conn.clone()).await?;
    Ok((UNBUFFERED, stream(k, conn, after, true)))
}

/// The runner's stream: `job.assigned` (with its idempotency key) and
/// `job.cancelled`. Send `Last-Event-ID` to resume. Only a token bound to
/// the runner id opens it (403 `identity_not_bound`), and a runner id's
/// tool declarations belong to the token that made them (403
/// `runner_owned_by_other_token` for another token while that one lives).
#[utoipa::path(get, path = "/v0/runners/stream", tag = "kernel", params(RunnerStreamQuery),
    responses((status = 200, description = "text/event-stream"), (status = "4XX", body = ProblemBody)),
    security(("bearer" = [])))]
pub async fn runner_stream(
    State(state): State<AppState>,
    caller: Caller,
    headers: HeaderMap,
    Query(q): Query<RunnerStreamQuery>,
) -> Result<impl IntoResponse, Problem> {
    let who = caller.require(Action::ActAsRunner)?;
    let name = q.runner_id.unwrap_or_else(|| who.token_name.clone());
    check_id("runner_id", &name)?;
    bound_runner(who, &name)?;
    let non_idempotent: Vec<&str> = q
        .non_idempotent
        .as_deref()
        .unwrap_or("")
        .split(',')
        .map(str::trim)
        .collect();
    let mut tools = Vec::new();
    for t in q.tools.split(',').map(str::trim).filter(|t| !t.is_empty()) {
        check_id("tools", t)?;
        tools.push(DeclaredTool {
            name: t.to_string(),
            idempotent: !non_idempotent.contains(&t),
        });
    }
    if tools.is_empty() {
        return Err(Problem::bad_request(
            "invalid_runner",
            "declare the tools this runner serves: ?tools=a,b (and ?non_idempotent=b for those that must not run twice)",
        ));
    }
    let k = kernel(&state).clone();
    refuse_while_draining(&k)?;
    let recipient = runner_recipient(&who.tenant_id, &name);
    let after = resume_point(&k, &headers, &recipient).await?;
    let mut conn = k.new_conn(who, name, recipient);
    conn.tools = tools;
    k.runner_connected(conn.clone()).await?;
    Ok((UNBUFFERED, stream(k, conn, after, false)))
}

fn check_id(field: &str, v: &str) -> Result<(), Problem> {
    match name_fault(field, v) {
        Some(fault) => Err(Problem::bad_request("invalid_stream", fault)),
        None => Ok(()),
    }
}

/// Where a stream starts: after `Last-Event-ID` when given, else after the
/// last message already kept (a new stream gets only what follows).
async fn resume_point(k: &Kernel, headers: &HeaderMap, recipient: &str) -> Result<i64, Problem> {
    match headers.get("last-event-id") {
        Some(v) => v
            .to_str()
            .ok()
            .and_then(|s| s.trim().parse::<i64>().ok())
            .filter(|n| *n >= 0)
            .ok_or_else(|| {
                Problem::bad_request(
                    "invalid_last_event_id",
                    "Last-Event-ID must be the id of an event this stream sent (a non-negative integer)",
                )
            }),
        None => Ok(k.store.kernel_last_push(recipient).await?),
    }
}

/// Asks reverse proxies (nginx and those that follow its header) not to
/// buffer the stream.
const UNBUFFERED: [(&str, &str); 1] = [("x-accel-buffering", "no")];

/// Unregisters a stream when its response is dropped (the client went away).
struct Registration {
    kernel: Arc<Kernel>,
    conn: Conn,
    agent: bool,
}

impl Drop for Registration {
    fn drop(&mut self) {
        let kernel = self.kernel.clone();
        let conn = self.conn.clone();
        if !self.agent {
            kernel.runner_disconnected(&conn);
            return;
        }
        if let Ok(rt) = tokio::runtime::Handle::try_current() {
            rt.spawn(async move {
                if let Err(e) = kernel.agent_disconnected(&conn).await {
                    tracing::warn!(conn = %conn.id, error = %e, "kernel: releasing a closed agent stream failed");
                }
            });
        }
    }
}

struct Cursor {
    reg: Registration,
    after: i64,
    buf: VecDeque<PushRow>,
    /// The shutdown event was sent: the stream ends.
    done: bool,
    /// The last read found every message there was: until the stream is
    /// woken (a wake-up while it sends is kept for it), there is nothing
    /// to read.
    caught_up: bool,
}

/// Messages read at once for a stream.
const READ_LIMIT: i64 = 256;

/// How soon a client told the instance is shutting down should reconnect
/// (the SSE `retry` field); a load balancer sends it to another instance.
const RECONNECT_AFTER: Duration = Duration::from_millis(500);

/// Refuses a new stream while the instance shuts down.
fn refuse_while_draining(k: &Kernel) -> Result<(), Problem> {
    if k.hub.is_draining() {
        let mut p = Problem::new(
            StatusCode::SERVICE_UNAVAILABLE,
            "shutting_down",
            "this instance is shutting down; reconnect (to another instance) with Last-Event-ID",
        );
        p.retry_after = Some(1);
        return Err(p);
    }
    Ok(())
}

/// Alone, a stream still looks again this often (or every
/// `kernel.stream_poll_ms`, if longer), in case another instance appeared
/// meanwhile. With other instances alive it looks every
/// `kernel.stream_poll_ms`, and their notices (PostgreSQL) wake it sooner;
/// alone, it waits for this instance's commits to wake it, and costs
/// nothing meanwhile.
const PEERLESS_CHECK: Duration = Duration::from_secs(5);

fn rand_u16() -> u16 {
    let mut b = [0u8; 2];
    getrandom::fill(&mut b).expect("operating system random source");
    u16::from_le_bytes(b)
}

fn stream(k: Arc<Kernel>, conn: Conn, after: i64, agent: bool) -> Sse<impl Stream<Item = Result<Event, Infallible>>> {
    let cursor = Cursor {
        reg: Registration { kernel: k, conn, agent },
        after,
        buf: VecDeque::new(),
        done: false,
        caught_up: false,
    };
    let s = futures_util::stream::unfold(cursor, |mut c| async move {
        loop {
            // Its token was revoked or expired, or the instance is shutting
            // down: the stream ends here, in the last case after telling the
            // client to reconnect (it resumes with Last-Event-ID).
            if c.reg.conn.is_closed() {
                if c.done || !c.reg.kernel.hub.is_draining() {
                    return None;
                }
                c.done = true;
                let event = Event::default()
                    .event("stream.closing")
                    .retry(RECONNECT_AFTER)
                    .data(r#"{"reason":"shutdown","reconnect":true}"#);
                return Some((Ok(event), c));
            }
            if let Some(p) = c.buf.pop_front() {
                c.after = p.seq;
                let event = Event::default()
                    .id(p.seq.to_string())
                    .event(p.event)
                    .data(p.data.to_string());
                return Some((Ok(event), c));
            }
            let k = &c.reg.kernel;
            if !c.caught_up {
                // What this instance just committed for the stream, when it
                // follows what was sent: no read. With other instances
                // alive, their messages are in the store only: read it.
                if !k.has_peers()
                    && let Some((rows, more)) = c.reg.conn.inbox.take_following(c.after)
                {
                    c.caught_up = !more;
                    c.buf.extend(rows);
                    continue;
                }
                match k
                    .store
                    .kernel_pushes_after(&c.reg.conn.recipient, c.after, READ_LIMIT)
                    .await
                {
                    Ok(rows) if !rows.is_empty() => {
                        c.caught_up = (rows.len() as i64) < READ_LIMIT;
                        c.buf.extend(rows);
                        continue;
                    }
                    Ok(_) => {}
                    Err(e) => tracing::warn!(error = %e, "kernel: reading a stream's messages failed"),
                }
            }
            c.caught_up = false;
            let poll = k.cfg.stream_poll_ms;
            let wait = if k.has_peers() {
                // Spread the streams' polls (by up to a quarter).
                Duration::from_millis(poll + u64::from(rand_u16()) % (poll / 4).max(1))
            } else {
                PEERLESS_CHECK.max(Duration::from_millis(poll))
            };
            let _ = tokio::time::timeout(wait, c.reg.conn.wake.notified()).await;
        }
    });
    Sse::new(s).keep_alive(KeepAlive::new().interval(Duration::from_secs(15)))
}
