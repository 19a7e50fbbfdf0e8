//! The MCP gateway's routes: `/mcp` (the streamable HTTP transport, for
//! agents) and `/v1/mcp/upstreams` (the registry, for tenant admins).

use std::convert::Infallible;
use std::sync::Arc;
use std::time::Duration;

use axum::Json;
use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::sse::{Event, KeepAlive, Sse};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};
use tokio::sync::mpsc;

use super::AppState;
use super::extract::{ApiJson, Caller};
use super::problem::{Problem, ProblemBody};
use crate::auth::{Action, Principal};
use crate::clock::rfc3339_ms;
use crate::kernel::bound_agent;
use crate::mcp::calls::Answer;
use crate::mcp::{Gateway, McpError, Session, check_upstream_name};
use crate::model::kernel::agent_fault;

/// The protocol revisions `/mcp` speaks (the `initialize` handshake era),
/// newest first.
pub const PROTOCOL_VERSIONS: &[&str] = &["2025-11-25", "2025-06-18", "2025-03-26"];

pub fn router() -> axum::Router<AppState> {
    axum::Router::new()
        .route("/mcp", post(mcp_post).get(mcp_get).delete(mcp_delete))
        .route("/v1/mcp/upstreams", get(list_upstreams))
        .route(
            "/v1/mcp/upstreams/{name}",
            axum::routing::put(put_upstream).delete(delete_upstream),
        )
        .route("/v1/mcp/upstreams/{name}/tools", get(upstream_tools))
        .route("/v1/mcp/upstreams/{name}/tools/{tool}/accept", post(accept_tool))
}

fn gateway(state: &AppState) -> &Arc<Gateway> {
    &state.mcp
}

impl From<McpError> for Problem {
    fn from(e: McpError) -> Self {
        match e {
            McpError::Invalid(m) => Problem::bad_request("invalid_upstream", m),
            McpError::UnknownUpstream(_) => Problem::not_found("unknown_upstream", e.to_string()),
            McpError::UnknownTool(..) => Problem::not_found("unknown_tool", e.to_string()),
            McpError::Append(a) => a.into(),
            McpError::Store(s) => s.into(),
        }
    }
}

// ---- the transport ----

#[derive(Debug, Deserialize)]
pub struct McpQuery {
    /// Which of the token's bound agents acts (default: the token's name).
    pub agent_id: Option<String>,
}

/// The agent the caller acts as: `agent_id`, or the token's name; one the
/// token is bound to (403 `identity_not_bound`).
fn agent_of<'a>(who: &'a Principal, q: &'a McpQuery) -> Result<&'a str, Problem> {
    let name = q.agent_id.as_deref().unwrap_or(&who.token_name);
    if let Some(fault) = agent_fault("agent_id", name) {
        return Err(Problem::bad_request("invalid_agent", fault));
    }
    bound_agent(who, name)?;
    Ok(name)
}

/// Refuses a browser page of another origin (DNS rebinding): a request with
/// an `Origin` must come from this host.
fn check_origin(headers: &HeaderMap) -> Result<(), Problem> {
    let Some(origin) = headers.get(header::ORIGIN) else {
        return Ok(());
    };
    let host = headers.get(header::HOST).and_then(|h| h.to_str().ok()).unwrap_or("");
    let origin = origin.to_str().unwrap_or("");
    let same = origin
        .strip_prefix("http://")
        .or_else(|| origin.strip_prefix("https://"))
        .is_some_and(|o| o == host);
    if same {
        Ok(())
    } else {
        Err(Problem::new(
            StatusCode::FORBIDDEN,
            "origin_refused",
            format!("requests from origin {origin:?} are refused; MCP clients send no Origin or this host's"),
        ))
    }
}

fn rpc_error(id: &Value, code: i64, message: impl Into<String>) -> Value {
    json!({"jsonrpc": "2.0", "id": id, "error": {"code": code, "message": message.into()}})
}

fn rpc_result(id: &Value, result: Value) -> Value {
    json!({"jsonrpc": "2.0", "id": id, "result": result})
}

fn json_response(status: StatusCode, body: Value) -> Response {
    (status, Json(body)).into_response()
}

/// One JSON-RPC message from an MCP client. Requests are answered as JSON,
/// except `tools/call`, answered as an event stream when the client takes
/// one (progress notifications while a review is waited for, then the
/// result). Notifications and responses are taken with 202.
pub async fn mcp_post(
    State(state): State<AppState>,
    caller: Caller,
    headers: HeaderMap,
    Query(q): Query<McpQuery>,
    req: axum::extract::Request,
) -> Result<Response, Problem> {
    check_origin(&headers)?;
    let who = caller.require(Action::ActAsAgent)?.clone();
    let agent = agent_of(&who, &q)?.to_string();
    // The route is exempt from the request time cap (a call may wait for a
    // review), but its body is not: it arrives within the cap or not at all.
    let cap = Duration::from_millis(state.config.limits.request_timeout_ms);
    let body = match tokio::time::timeout(cap, super::extract::read_body(req, &state)).await {
        Ok(body) => body?,
        Err(_) => return Err(super::timed_out(cap)),
    };
    let depth = state.config.limits.max_json_depth;
    if let Err(f) = crate::strict_json::check(&body, depth) {
        return Ok(json_response(
            StatusCode::BAD_REQUEST,
            rpc_error(&Value::Null, -32700, format!("the body is not acceptable JSON: {f}")),
        ));
    }
    let msg: Value = match serde_json::from_slice(&body) {
        Ok(v) => v,
        Err(e) => {
            return Ok(json_response(
                StatusCode::BAD_REQUEST,
                rpc_error(&Value::Null, -32700, format!("the body is not JSON: {e}")),
            ));
        }
    };
    if msg.is_array() {
        return Ok(json_response(
            StatusCode::BAD_REQUEST,
            rpc_error(
                &Value::Null,
                -32600,
                "batches are not accepted; send one message per request",
            ),
        ));
    }
    let Some(method) = msg.get("method").and_then(Value::as_str).map(str::to_string) else {
        // A response to a request of ours: Warden sends none, so nothing waits for it.
        return Ok(StatusCode::ACCEPTED.into_response());
    };
    let Some(id) = msg.get("id").cloned() else {
        return Ok(StatusCode::ACCEPTED.into_response());
    };
    if !(id.is_string() || id.is_i64() || id.is_u64()) {
        return Ok(json_response(
            StatusCode::BAD_REQUEST,
            rpc_error(&Value::Null, -32600, "a request id is a string or an integer"),
        ));
    }
    let params = msg.get("params").cloned().unwrap_or_else(|| json!({}));
    let g = gateway(&state).clone();
    if method == "initialize" {
        return Ok(initialize(&g, &who, &agent, &id, &params));
    }
    let session_id = headers.get("mcp-session-id").and_then(|v| v.to_str().ok());
    let Some(session_id) = session_id else {
        return Ok(json_response(
            StatusCode::BAD_REQUEST,
            rpc_error(&id, -32600, "no Mcp-Session-Id: send initialize first"),
        ));
    };
    let Some(session) = g.session(session_id, &who, &agent) else {
        return Ok(json_response(
            StatusCode::NOT_FOUND,
            rpc_error(&id, -32001, "this session is unknown or ended; send initialize again"),
        ));
    };
    if let Some(v) = headers.get("mcp-protocol-version").and_then(|v| v.to_str().ok())
        && !PROTOCOL_VERSIONS.contains(&v)
    {
        return Ok(json_response(
            StatusCode::BAD_REQUEST,
            rpc_error(
                &id,
                -32600,
                format!("protocol version {v:?} is not one of {PROTOCOL_VERSIONS:?}"),
            ),
        ));
    }
    match method.as_str() {
        "ping" => Ok(json_response(StatusCode::OK, rpc_result(&id, json!({})))),
        "tools/list" => Ok(match g.list_tools(&who, &session).await {
            Ok(tools) => json_response(StatusCode::OK, rpc_result(&id, json!({"tools": tools}))),
            Err(a) => json_response(StatusCode::OK, answer(&id, a)),
        }),
        "tools/call" => Ok(call(g, who, session, id, params, &headers).await),
        "resources/list" | "resources/templates/list" | "prompts/list" => {
            let key = match method.as_str() {
                "resources/list" => "resources",
                "resources/templates/list" => "resourceTemplates",
                _ => "prompts",
            };
            Ok(match g.list_all(&who, &method).await {
                Ok(items) => json_response(StatusCode::OK, rpc_result(&id, json!({key: items}))),
                Err(e) => json_response(StatusCode::OK, rpc_error(&id, -32603, e.to_string())),
            })
        }
        "resources/read" | "prompts/get" => Ok(json_response(
            StatusCode::OK,
            answer(&id, g.read_or_get(&who, &session, &method, &params).await),
        )),
        other => Ok(json_response(
            StatusCode::OK,
            rpc_error(
                &id,
                -32601,
                format!("method {other:?} is not served by Warden's gateway"),
            ),
        )),
    }
}

fn initialize(g: &Gateway, who: &Principal, agent: &str, id: &Value, params: &Value) -> Response {
    let asked = params.get("protocolVersion").and_then(Value::as_str).unwrap_or("");
    let version = if PROTOCOL_VERSIONS.contains(&asked) {
        asked
    } else {
        PROTOCOL_VERSIONS[0]
    };
    let client = params.get("clientInfo").cloned().unwrap_or(Value::Null);
    let client = json!({"name": client.get("name").and_then(Value::as_str).map(|s| s.chars().take(128).collect::<String>()),
        "version": client.get("version").and_then(Value::as_str).map(|s| s.chars().take(64).collect::<String>())});
    let Some(session) = g.open_session(who, agent, version, client) else {
        return json_response(
            StatusCode::TOO_MANY_REQUESTS,
            rpc_error(
                id,
                -32000,
                format!(
                    "this token holds {} open MCP sessions already (mcp.max_sessions_per_token); end one with DELETE /mcp",
                    g.cfg.max_sessions_per_token
                ),
            ),
        );
    };
    let result = json!({
        "protocolVersion": version,
        "capabilities": {"tools": {"listChanged": false}, "resources": {}, "prompts": {}},
        "serverInfo": {"name": "warden", "title": "Warden MCP gateway", "version": env!("CARGO_PKG_VERSION")},
        "instructions": "Tools are named <upstream>__<tool>. Every call is decided by your organisation's policy and recorded; some wait for human review.",
    });
    let mut res = json_response(StatusCode::OK, rpc_result(id, result));
    if let Ok(v) = HeaderValue::from_str(&session.id) {
        res.headers_mut().insert("mcp-session-id", v);
    }
    res
}

fn answer(id: &Value, a: Answer) -> Value {
    match a {
        Answer::Result(r) => rpc_result(id, r),
        Answer::Error { code, message } => rpc_error(id, code, message),
    }
}

/// `tools/call`: as an event stream when the client takes one, else JSON.
///
/// The call runs in a task of its own, so that once it is forwarded it
/// completes (and is recorded) even if the client leaves; while it waits
/// for a review, the client's leaving (the progress channel closing) ends
/// the wait, and the review stays open for its next call.
async fn call(
    g: Arc<Gateway>,
    who: Principal,
    session: Session,
    id: Value,
    params: Value,
    headers: &HeaderMap,
) -> Response {
    let name = params.get("name").and_then(Value::as_str).unwrap_or("").to_string();
    let arguments = params.get("arguments").cloned().unwrap_or_else(|| json!({}));
    let token = params.get("_meta").and_then(|m| m.get("progressToken")).cloned();
    let streams = headers
        .get(header::ACCEPT)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|a| a.contains("text/event-stream"));
    let (ptx, mut prx) = mpsc::channel::<String>(4);
    let mut task = tokio::spawn(async move { g.call_tool(&who, &session, &name, arguments, Some(ptx)).await });
    if !streams {
        loop {
            tokio::select! {
                done = &mut task => {
                    let a = done.unwrap_or_else(|e| Answer::Error { code: -32603, message: format!("the call failed: {e}") });
                    return json_response(StatusCode::OK, answer(&id, a));
                }
                Some(_) = prx.recv() => {}
            }
        }
    }
    let (tx, rx) = mpsc::channel::<Event>(16);
    let out = tx.clone();
    tokio::spawn(async move {
        let mut n = 0u64;
        loop {
            tokio::select! {
                m = prx.recv() => {
                    let Some(message) = m else { break };
                    let Some(token) = &token else { continue };
                    n += 1;
                    let note = json!({"jsonrpc": "2.0", "method": "notifications/progress",
                        "params": {"progressToken": token, "progress": n, "message": message}});
                    if out.send(Event::default().event("message").data(note.to_string())).await.is_err() {
                        break;
                    }
                }
                () = out.closed() => break,
            }
        }
    });
    tokio::spawn(async move {
        let a = task.await.unwrap_or_else(|e| Answer::Error {
            code: -32603,
            message: format!("the call failed: {e}"),
        });
        let _ = tx
            .send(Event::default().event("message").data(answer(&id, a).to_string()))
            .await;
    });
    let stream = futures_util::stream::unfold(rx, |mut rx| async move {
        rx.recv().await.map(|e| (Ok::<_, Infallible>(e), rx))
    });
    let mut res = Sse::new(stream)
        .keep_alive(KeepAlive::new().interval(Duration::from_secs(15)))
        .into_response();
    res.headers_mut()
        .insert("x-accel-buffering", HeaderValue::from_static("no"));
    res
}

/// Warden opens no server-to-client stream: 405, as the transport allows.
pub async fn mcp_get() -> Response {
    (
        StatusCode::METHOD_NOT_ALLOWED,
        [(header::ALLOW, "POST, DELETE")],
        Json(
            json!({"type": "about:blank", "title": "Method Not Allowed", "status": 405,
            "code": "method_not_allowed", "detail": "Warden's MCP gateway opens no server stream; POST messages"}),
        ),
    )
        .into_response()
}

/// Ends the caller's session.
pub async fn mcp_delete(
    State(state): State<AppState>,
    caller: Caller,
    headers: HeaderMap,
) -> Result<StatusCode, Problem> {
    let who = caller.require(Action::ActAsAgent)?;
    let id = headers
        .get("mcp-session-id")
        .and_then(|v| v.to_str().ok())
        .unwrap_or("");
    if gateway(&state).end_session(id, who) {
        Ok(StatusCode::NO_CONTENT)
    } else {
        Err(Problem::not_found(
            "unknown_session",
            "this token has no MCP session with that Mcp-Session-Id",
        ))
    }
}

// ---- the registry ----

/// An upstream as shown: its token is never.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct UpstreamView {
    pub name: String,
    pub url: String,
    pub version: i64,
    pub has_token: bool,
    pub created_at: String,
    pub updated_at: String,
}

impl UpstreamView {
    fn of(u: &crate::store::UpstreamRow) -> Self {
        UpstreamView {
            name: u.name.clone(),
            url: u.url.clone(),
            version: u.version,
            has_token: u.secret.is_some(),
            created_at: rfc3339_ms(u.created_at),
            updated_at: rfc3339_ms(u.updated_at),
        }
    }
}

#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct PutUpstream {
    /// The upstream's streamable HTTP endpoint, `http(s)://…/mcp`.
    #[serde(default)]
    pub url: Option<String>,
    /// Or: a local server the operator allows (`[[mcp.stdio]]`), run by
    /// Warden over stdio.
    #[serde(default)]
    pub stdio: Option<String>,
    /// A bearer token Warden presents to it; stored encrypted, never shown.
    #[serde(default)]
    pub bearer_token: Option<String>,
}

/// Registers or replaces the tenant's MCP upstream `name` (admin). 400
/// `invalid_upstream` names the fault (the name, a URL that is not
/// http(s), an address the `[mcp]` egress policy refuses).
#[utoipa::path(put, path = "/v1/mcp/upstreams/{name}", tag = "mcp",
    params(("name" = String, Path, description = "upstream name")),
    request_body = PutUpstream,
    responses((status = 201, body = UpstreamView), (status = 200, body = UpstreamView), (status = "4XX", body = ProblemBody)),
    security(("bearer" = [])))]
pub async fn put_upstream(
    State(state): State<AppState>,
    caller: Caller,
    Path(name): Path<String>,
    ApiJson(body): ApiJson<PutUpstream>,
) -> Result<(StatusCode, Json<UpstreamView>), Problem> {
    let who = caller.require(Action::ManageMcp)?;
    let url = match (body.url, body.stdio) {
        (Some(url), None) if url.len() <= 2048 && !url.starts_with(crate::mcp::STDIO_PREFIX) => url,
        (None, Some(name)) if name.len() <= 32 => format!("{}{name}", crate::mcp::STDIO_PREFIX),
        _ => {
            return Err(Problem::bad_request(
                "invalid_upstream",
                "give either url (http(s), at most 2048 bytes) or stdio (a name the operator allows)",
            ));
        }
    };
    let row = gateway(&state)
        .put_upstream(who, &name, &url, body.bearer_token.as_deref())
        .await?;
    let status = if row.version == 1 {
        StatusCode::CREATED
    } else {
        StatusCode::OK
    };
    Ok((status, Json(UpstreamView::of(&row))))
}

#[utoipa::path(get, path = "/v1/mcp/upstreams", tag = "mcp",
    responses((status = 200, body = Vec<UpstreamView>), (status = "4XX", body = ProblemBody)),
    security(("bearer" = [])))]
pub async fn list_upstreams(State(state): State<AppState>, caller: Caller) -> Result<Json<Vec<UpstreamView>>, Problem> {
    let who = caller.require(Action::ReadMcp)?;
    let rows = state.store.mcp_upstreams(&who.tenant_id).await?;
    Ok(Json(rows.iter().map(UpstreamView::of).collect()))
}

#[utoipa::path(delete, path = "/v1/mcp/upstreams/{name}", tag = "mcp",
    params(("name" = String, Path, description = "upstream name")),
    responses((status = 204), (status = "4XX", body = ProblemBody)),
    security(("bearer" = [])))]
pub async fn delete_upstream(
    State(state): State<AppState>,
    caller: Caller,
    Path(name): Path<String>,
) -> Result<StatusCode, Problem> {
    let who = caller.require(Action::ManageMcp)?;
    check_upstream_name(&name)?;
    if gateway(&state).delete_upstream(who, &name).await? {
        Ok(StatusCode::NO_CONTENT)
    } else {
        Err(McpError::UnknownUpstream(name).into())
    }
}

/// A tool's pinned definition, and the latest seen when it differs.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct ToolPinView {
    /// The name agents see, `<upstream>__<tool>`.
    pub name: String,
    pub upstream_name: String,
    pub pinned_hash: String,
    pub current_hash: String,
    /// The latest definition differs from the pin (until an admin accepts it).
    pub changed: bool,
    #[schema(value_type = Object)]
    pub pinned: Value,
    #[schema(value_type = Object)]
    pub current: Value,
    pub pinned_at: String,
    pub changed_at: Option<String>,
}

impl ToolPinView {
    fn of(p: &crate::store::ToolPinRow) -> Self {
        ToolPinView {
            name: format!("{}{}{}", p.upstream, crate::mcp::SEP, p.name),
            upstream_name: p.name.clone(),
            pinned_hash: p.pinned_hash.clone(),
            current_hash: p.current_hash.clone(),
            changed: p.changed(),
            pinned: serde_json::from_str(&p.pinned).unwrap_or(Value::Null),
            current: serde_json::from_str(&p.current).unwrap_or(Value::Null),
            pinned_at: rfc3339_ms(p.pinned_at),
            changed_at: p.changed_at.map(rfc3339_ms),
        }
    }
}

/// The tools pinned for upstream `name`.
#[utoipa::path(get, path = "/v1/mcp/upstreams/{name}/tools", tag = "mcp",
    params(("name" = String, Path, description = "upstream name")),
    responses((status = 200, body = Vec<ToolPinView>), (status = "4XX", body = ProblemBody)),
    security(("bearer" = [])))]
pub async fn upstream_tools(
    State(state): State<AppState>,
    caller: Caller,
    Path(name): Path<String>,
) -> Result<Json<Vec<ToolPinView>>, Problem> {
    let who = caller.require(Action::ReadMcp)?;
    check_upstream_name(&name)?;
    if state.store.mcp_upstream(&who.tenant_id, &name).await?.is_none() {
        return Err(McpError::UnknownUpstream(name).into());
    }
    let pins = state.store.mcp_tools(&who.tenant_id, &name).await?;
    Ok(Json(pins.iter().map(ToolPinView::of).collect()))
}

/// Accepts a changed tool definition as the new pin (admin):
/// `mcp.tool.accepted`; the policy sees `tool.changed: false` again.
#[utoipa::path(post, path = "/v1/mcp/upstreams/{name}/tools/{tool}/accept", tag = "mcp",
    params(("name" = String, Path, description = "upstream name"), ("tool" = String, Path, description = "the upstream's tool name")),
    responses((status = 200, body = ToolPinView), (status = "4XX", body = ProblemBody)),
    security(("bearer" = [])))]
pub async fn accept_tool(
    State(state): State<AppState>,
    caller: Caller,
    Path((name, tool)): Path<(String, String)>,
) -> Result<Json<ToolPinView>, Problem> {
    let who = caller.require(Action::ManageMcp)?;
    check_upstream_name(&name)?;
    let pin = gateway(&state).accept_tool(who, &name, &tool).await?;
    Ok(Json(ToolPinView::of(&pin)))
}
