//! The MCP gateway (docs/mcp.md): the upstream registry's rules, `/mcp`'s
//! refusals (identity, session, origin, input), and calls end to end
//! against an upstream that holds Warden to the streamable HTTP contract
//! (handshake first, its session id and protocol version on every later
//! request, both media types accepted). The official SDK's own client and
//! server are the peers of `clients/python/tests/mcp/`.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::http::{HeaderMap, StatusCode as AxStatus};
use axum::response::IntoResponse;
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};

use crate::common::*;
use crate::on_both_backends;

on_both_backends!(
    upstreams_are_registered_by_admins_within_the_egress_policy,
    calls_are_decided_forwarded_reviewed_and_recorded,
);

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn stdio_upstreams_run_only_where_the_operator_allows() {
    stdio_upstreams(Backend::Sqlite).await
}

/// A minimal MCP server over stdio (newline-delimited JSON-RPC): one tool,
/// `env`, answering with the names of its environment variables.
const STDIO_SERVER: &str = r#"
import json, os, sys
for line in sys.stdin:
    msg = json.loads(line)
    if "id" not in msg:
        continue
    m = msg["method"]
    if m == "initialize":
        r = {"protocolVersion": msg["params"]["protocolVersion"], "capabilities": {"tools": {}},
             "serverInfo": {"name": "envs", "version": "1"}}
    elif m == "tools/list":
        r = {"tools": [{"name": "env", "description": "names its environment", "inputSchema": {"type": "object"}}]}
    elif m == "tools/call":
        names = sorted(os.environ)
        r = {"content": [{"type": "text", "text": json.dumps(names)}], "structuredContent": {"names": names, "pid": os.getpid()}}
    else:
        r = {}
    sys.stdout.write(json.dumps({"jsonrpc": "2.0", "id": msg["id"], "result": r}) + "\n")
    sys.stdout.flush()
"#;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn mcp_refuses_wrong_identities_sessions_origins_and_input() {
    refusals(Backend::Sqlite).await
}

/// What the fake upstream saw.
#[derive(Default)]
struct Seen {
    calls: Vec<Value>,
    faults: Vec<String>,
    description: String,
}

/// An MCP server on 127.0.0.1 that checks the transport's contract and
/// records every `tools/call`.
async fn upstream() -> (String, Arc<Mutex<Seen>>) {
    let seen = Arc::new(Mutex::new(Seen {
        description: "Look up an account".into(),
        ..Seen::default()
    }));
    let s = seen.clone();
    let app = axum::Router::new().route(
        "/mcp",
        axum::routing::post(move |headers: HeaderMap, body: String| {
            let seen = s.clone();
            async move {
                let msg: Value = serde_json::from_str(&body).unwrap();
                let fault = |f: String| seen.lock().unwrap().faults.push(f);
                let accept = headers.get("accept").and_then(|v| v.to_str().ok()).unwrap_or("");
                if !(accept.contains("application/json") && accept.contains("text/event-stream")) {
                    fault(format!("Accept was {accept:?}"));
                }
                let method = msg["method"].as_str().unwrap_or("").to_string();
                if method == "initialize" {
                    let body = json!({"jsonrpc": "2.0", "id": msg["id"], "result": {"protocolVersion": "2025-06-18",
                        "capabilities": {"tools": {}}, "serverInfo": {"name": "fake-bank", "version": "1"}}});
                    return ([("mcp-session-id", "ups-1")], axum::Json(body)).into_response();
                }
                if headers.get("mcp-session-id").and_then(|v| v.to_str().ok()) != Some("ups-1") {
                    fault(format!("{method} without the session id"));
                    return AxStatus::BAD_REQUEST.into_response();
                }
                if headers.get("mcp-protocol-version").is_none() {
                    fault(format!("{method} without MCP-Protocol-Version"));
                }
                if headers.get("authorization").and_then(|v| v.to_str().ok()) != Some("Bearer upstream-secret") {
                    fault(format!("{method} without the upstream's bearer token"));
                }
                if msg.get("id").is_none() {
                    return AxStatus::ACCEPTED.into_response();
                }
                let result = match method.as_str() {
                    "tools/list" => {
                        let d = seen.lock().unwrap().description.clone();
                        json!({"tools": [
                            {"name": "lookup", "description": d,
                             "inputSchema": {"type": "object", "properties": {"account": {"type": "string"}}}},
                            {"name": "transfer", "description": "Move money",
                             "inputSchema": {"type": "object", "properties": {"amount": {"type": "number"}}}},
                            {"name": "close", "description": "Close an account", "inputSchema": {"type": "object"}}
                        ]})
                    }
                    "tools/call" => {
                        seen.lock().unwrap().calls.push(msg["params"].clone());
                        let doc = json!({"owner": "Zoë", "ssn": "078-05-1120", "args": msg["params"]["arguments"]});
                        json!({"content": [{"type": "text", "text": doc.to_string()}], "structuredContent": doc})
                    }
                    "resources/list" => json!({"resources": [
                        {"uri": "file:///statements/march.txt", "name": "march", "mimeType": "text/plain"},
                        {"uri": "file:///keys/root.pem", "name": "root key"}
                    ]}),
                    "resources/read" => {
                        seen.lock().unwrap().calls.push(msg["params"].clone());
                        json!({"contents": [{"uri": msg["params"]["uri"], "text": "balance: 12"}]})
                    }
                    "prompts/list" => json!({"prompts": [{"name": "greet", "arguments": [{"name": "who"}]}]}),
                    "prompts/get" => {
                        seen.lock().unwrap().calls.push(msg["params"].clone());
                        json!({"messages": [{"role": "user", "content": {"type": "text", "text": "hello"}}]})
                    }
                    _ => json!({}),
                };
                // Answered as an event stream, as servers may.
                let event = json!({"jsonrpc": "2.0", "id": msg["id"], "result": result});
                (
                    [("content-type", "text/event-stream")],
                    format!(": hello\n\nevent: message\ndata: {event}\n\n"),
                )
                    .into_response()
            }
        }),
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}/mcp", listener.local_addr().unwrap());
    tokio::spawn(async move { axum::serve(listener, app).await });
    (url, seen)
}

const GATEWAY_POLICY: &str = r#"package warden.mcp

default decision := {"outcome": "deny", "reasons": ["no rule allows this call"]}

decision := {"outcome": "deny", "reasons": ["the tool's definition changed; an admin must accept it"]} if {
	input.tool.changed
}

decision := {"outcome": "allow", "reasons": ["lookups are allowed"], "obligations": {"redact": ["ssn"]}} if {
	input.tool.name == "bank__lookup"
	not input.tool.changed
}

decision := {"outcome": "allow", "reasons": ["small transfer"]} if {
	input.tool.name == "bank__transfer"
	input.arguments.amount <= 1000
}

decision := {"outcome": "require_approval", "reasons": ["transfers over 1000 need two reviewers"],
	"approval": {"reviewers": 2, "timeout_seconds": 600}} if {
	input.tool.name == "bank__transfer"
	input.arguments.amount > 1000
}

decision := {"outcome": "allow", "reasons": ["statements may be read"]} if {
	input.method == "resources/read"
	startswith(input.resource.uri, "file:///statements/")
}

visible contains t.name if {
	some t in input.tools
	t.name != "bank__close"
}
"#;

async fn gateway_app(backend: Backend) -> TestApp {
    spawn_with(
        backend,
        |c| {
            c.mcp.allow_networks = vec!["127.0.0.0/8".into()];
            c.mcp.progress_interval_ms = 100;
            c.mcp.approval_wait_secs = 20;
            c.mcp.tools_ttl_secs = 0;
        },
        warden::clock::Clock::system(),
    )
    .await
}

async fn install_policy(app: &TestApp) {
    let bundle = bundle_of(&[("mcp.rego", GATEWAY_POLICY)], "1", &["warden/mcp"]);
    let r = app.upload(&app.admin, "mcp", bundle).await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.body);
    let r = app.activate(&app.admin, "mcp", "1").await;
    assert!(r.status.is_success(), "{}", r.body);
}

/// An MCP client session of `token` (acting as `agent` when given).
struct Client<'a> {
    app: &'a TestApp,
    token: String,
    query: String,
    session: String,
}

impl<'a> Client<'a> {
    async fn open(app: &'a TestApp, token: &str, agent: Option<&str>) -> Client<'a> {
        let query = agent.map(|a| format!("?agent_id={a}")).unwrap_or_default();
        let res = app
            .client
            .post(format!("{}/mcp{query}", app.base))
            .bearer_auth(token)
            .json(&json!({"jsonrpc": "2.0", "id": 0, "method": "initialize", "params": {
                "protocolVersion": "2025-06-18", "capabilities": {}, "clientInfo": {"name": "t", "version": "1"}}}))
            .send()
            .await
            .unwrap();
        assert_eq!(res.status(), StatusCode::OK);
        let session = res.headers()["mcp-session-id"].to_str().unwrap().to_string();
        let body: Value = res.json().await.unwrap();
        assert_eq!(body["result"]["protocolVersion"], "2025-06-18");
        Client {
            app,
            token: token.to_string(),
            query,
            session,
        }
    }

    /// Sends a request and returns its JSON-RPC answer (read from the
    /// event stream when the answer is one).
    async fn rpc(&self, method: &str, params: Value) -> Value {
        let res = self
            .app
            .client
            .post(format!("{}/mcp{}", self.app.base, self.query))
            .bearer_auth(&self.token)
            .header("mcp-session-id", &self.session)
            .header("mcp-protocol-version", "2025-06-18")
            .header("accept", "application/json, text/event-stream")
            .json(&json!({"jsonrpc": "2.0", "id": 7, "method": method, "params": params}))
            .send()
            .await
            .unwrap();
        assert_eq!(res.status(), StatusCode::OK);
        let sse = res.headers()["content-type"]
            .to_str()
            .unwrap()
            .starts_with("text/event-stream");
        let text = res.text().await.unwrap();
        if !sse {
            return serde_json::from_str(&text).unwrap();
        }
        let messages: Vec<Value> = text
            .lines()
            .filter_map(|l| l.strip_prefix("data: "))
            .map(|d| serde_json::from_str(d).unwrap())
            .collect();
        let answer = messages
            .iter()
            .find(|m| m.get("id").is_some())
            .cloned()
            .expect("an answer");
        let progress = messages
            .iter()
            .filter(|m| m["method"] == "notifications/progress")
            .count();
        let mut answer = answer;
        answer["progress_seen"] = progress.into();
        answer
    }

    async fn call(&self, tool: &str, arguments: Value) -> Value {
        self.rpc(
            "tools/call",
            json!({"name": tool, "arguments": arguments, "_meta": {"progressToken": "p1"}}),
        )
        .await
    }
}

async fn register(app: &TestApp, url: &str) {
    let r = put_upstream(
        app,
        &app.admin,
        "bank",
        json!({"url": url, "bearer_token": "upstream-secret"}),
    )
    .await;
    assert!(r.status.is_success(), "{}", r.body);
}

async fn upstreams_are_registered_by_admins_within_the_egress_policy(backend: Backend) {
    let app = spawn_app(backend).await;
    // Loopback is not a public address: refused unless the operator allows it.
    let r = put_upstream(&app, &app.admin, "bank", json!({"url": "http://127.0.0.1:9/mcp"})).await;
    assert_eq!(r.status, StatusCode::BAD_REQUEST);
    assert_eq!(r.code(), "invalid_upstream");
    for (name, url) in [
        ("Bank", "https://tools.example.com/mcp"),
        ("bank__x", "https://tools.example.com/mcp"),
        ("bank", "ftp://tools.example.com/mcp"),
        ("bank", "https://user:pw@tools.example.com/mcp"),
    ] {
        let r = put_upstream(&app, &app.admin, name, json!({"url": url})).await;
        assert_eq!(r.status, StatusCode::BAD_REQUEST, "{name} {url}: {}", r.body);
        assert_eq!(r.code(), "invalid_upstream");
    }
    let r = put_upstream(
        &app,
        &app.admin,
        "bank",
        json!({"url": "https://tools.example.com/mcp", "bearer_token": "s3cret-upstream-token"}),
    )
    .await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.body);
    assert_eq!(r.body["has_token"], true);
    assert!(!String::from_utf8_lossy(&r.bytes).contains("s3cret"));
    let r = put_upstream(
        &app,
        &app.admin,
        "bank",
        json!({"url": "https://tools2.example.com/mcp"}),
    )
    .await;
    assert_eq!(r.status, StatusCode::OK);
    assert_eq!(r.body["version"], 2);
    assert_eq!(r.body["has_token"], false);
    // An unknown field is refused, not ignored.
    let r = put_upstream(
        &app,
        &app.admin,
        "bank",
        json!({"url": "https://tools.example.com/mcp", "headers": {}}),
    )
    .await;
    assert_eq!(r.status, StatusCode::BAD_REQUEST);
    // Another tenant sees none of it.
    let other = app.tenant("initech").await;
    let r = app.call(Method::GET, "/v1/mcp/upstreams", Some(&other), None).await;
    assert_eq!(r.body, json!([]));
    let r = app
        .call(Method::GET, "/v1/mcp/upstreams/bank/tools", Some(&other), None)
        .await;
    assert_eq!(r.code(), "unknown_upstream");
    let r = app
        .call(Method::DELETE, "/v1/mcp/upstreams/bank", Some(&other), None)
        .await;
    assert_eq!(r.code(), "unknown_upstream");
    // The admin acts are evidence.
    let auditor = app.token(&app.admin, &["auditor"]).await;
    let r = app.call(Method::GET, "/v1/mcp/upstreams", Some(&auditor), None).await;
    assert_eq!(r.body[0]["url"], "https://tools2.example.com/mcp");
    let r = app
        .call(Method::DELETE, "/v1/mcp/upstreams/bank", Some(&app.admin), None)
        .await;
    assert_eq!(r.status, StatusCode::NO_CONTENT);
    let kinds = entry_kinds(&app).await;
    assert_eq!(
        kinds
            .iter()
            .filter(|k| k.starts_with("mcp.upstream."))
            .collect::<Vec<_>>(),
        ["mcp.upstream.put", "mcp.upstream.put", "mcp.upstream.delete"]
    );
    app.stop().await;
}

/// `PUT /v1/mcp/upstreams/{name}` with `body`, as `token`.
async fn put_upstream(app: &TestApp, token: &str, name: &str, body: Value) -> Reply {
    app.call(
        Method::PUT,
        &format!("/v1/mcp/upstreams/{name}"),
        Some(token),
        Some(body),
    )
    .await
}

/// The kinds of the caller's tenant's ledger entries, in order.
async fn entry_kinds(app: &TestApp) -> Vec<String> {
    let res = app
        .client
        .get(format!("{}/v1/ledger/export", app.base))
        .bearer_auth(&app.admin)
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::OK);
    let text = res.text().await.unwrap();
    let mut kinds = Vec::new();
    for line in text.lines() {
        let v: Value = serde_json::from_str(line).unwrap_or_default();
        if let Some(k) = v.get("kind").and_then(Value::as_str) {
            kinds.push(k.to_string());
        }
    }
    kinds
}

async fn refusals(backend: Backend) {
    let app = spawn_with(
        backend,
        |c| c.limits.request_timeout_ms = 1_000,
        warden::clock::Clock::system(),
    )
    .await;
    let teller = app
        .token_with(
            &app.admin,
            json!({"name": "teller", "roles": ["agent"], "agent_ids": ["teller"]}),
        )
        .await;
    let other = app
        .token_with(
            &app.admin,
            json!({"name": "other", "roles": ["agent"], "agent_ids": ["other"]}),
        )
        .await;
    let reviewer = app.token(&app.admin, &["reviewer"]).await;
    let init = json!({"jsonrpc": "2.0", "id": 1, "method": "initialize",
        "params": {"protocolVersion": "2025-06-18", "capabilities": {}, "clientInfo": {"name": "t", "version": "1"}}});
    // No token, the wrong role, an agent the token is not bound to.
    let r = app.call(Method::POST, "/mcp", None, Some(init.clone())).await;
    assert_eq!(r.status, StatusCode::UNAUTHORIZED);
    let r = app
        .call(Method::POST, "/mcp", Some(&reviewer), Some(init.clone()))
        .await;
    assert_eq!(r.status, StatusCode::FORBIDDEN);
    let r = app
        .call(Method::POST, "/mcp?agent_id=teller", Some(&other), Some(init.clone()))
        .await;
    assert_eq!(r.status, StatusCode::FORBIDDEN);
    assert_eq!(r.code(), "identity_not_bound");
    // A page of another origin.
    let res = app
        .client
        .post(format!("{}/mcp", app.base))
        .bearer_auth(&teller)
        .header("origin", "https://evil.example")
        .json(&init)
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::FORBIDDEN);
    // A body sent slowly is cut off at the request time cap, although the
    // route itself may take longer (a call waiting for review).
    {
        use tokio::io::{AsyncReadExt, AsyncWriteExt};
        let addr = app.base.trim_start_matches("http://").to_string();
        let mut conn = tokio::net::TcpStream::connect(&addr).await.unwrap();
        let head = format!(
            "POST /mcp HTTP/1.1\r\nhost: {addr}\r\nauthorization: Bearer {teller}\r\ncontent-type: application/json\r\ncontent-length: 100\r\n\r\n{{\"jsonrpc\""
        );
        conn.write_all(head.as_bytes()).await.unwrap();
        let started = std::time::Instant::now();
        let mut answer = vec![0u8; 512];
        let n = tokio::time::timeout(Duration::from_secs(10), conn.read(&mut answer))
            .await
            .expect("an answer before the client gives up")
            .unwrap();
        let text = String::from_utf8_lossy(&answer[..n]);
        assert!(text.starts_with("HTTP/1.1 503"), "{text}");
        assert!(started.elapsed() < Duration::from_secs(5));
    }
    // A session is its token's: another token (or none) cannot use it.
    let c = Client::open(&app, &teller, None).await;
    let stolen = Client {
        app: &app,
        token: other.clone(),
        query: String::new(),
        session: c.session.clone(),
    };
    let res = app
        .client
        .post(format!("{}/mcp", app.base))
        .bearer_auth(&stolen.token)
        .header("mcp-session-id", &stolen.session)
        .json(&json!({"jsonrpc": "2.0", "id": 2, "method": "tools/list"}))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::NOT_FOUND);
    // Without a session; with a protocol version it does not speak.
    let r = app
        .call(
            Method::POST,
            "/mcp",
            Some(&teller),
            Some(json!({"jsonrpc": "2.0", "id": 2, "method": "tools/list"})),
        )
        .await;
    assert_eq!(r.status, StatusCode::BAD_REQUEST);
    assert_eq!(r.body["error"]["code"], -32600);
    let res = app
        .client
        .post(format!("{}/mcp", app.base))
        .bearer_auth(&teller)
        .header("mcp-session-id", &c.session)
        .header("mcp-protocol-version", "1999-01-01")
        .json(&json!({"jsonrpc": "2.0", "id": 2, "method": "ping"}))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::BAD_REQUEST);
    // Malformed JSON, a batch, a duplicate member.
    for body in [
        &b"{\"jsonrpc\": "[..],
        b"[{\"jsonrpc\":\"2.0\",\"id\":1,\"method\":\"ping\"}]",
        b"{\"id\":1,\"id\":2}",
    ] {
        let r = app
            .raw(Method::POST, "/mcp", &teller, "application/json", body.to_vec())
            .await;
        assert_eq!(r.status, StatusCode::BAD_REQUEST, "{}", String::from_utf8_lossy(body));
        assert!(r.body["error"]["code"].as_i64().unwrap() <= -32600);
    }
    // A modern client's probe is answered "method not found", so it falls
    // back to the handshake; a ping works; an unknown tool is an error.
    assert_eq!(c.rpc("server/discover", json!({})).await["error"]["code"], -32601);
    assert_eq!(c.rpc("ping", json!({})).await["result"], json!({}));
    let a = c.rpc("tools/call", json!({"name": "nope__x", "arguments": {}})).await;
    assert_eq!(a["error"]["code"], -32602);
    // Ended, the session is gone.
    let res = app
        .client
        .delete(format!("{}/mcp", app.base))
        .bearer_auth(&teller)
        .header("mcp-session-id", &c.session)
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::NO_CONTENT);
    let res = app
        .client
        .post(format!("{}/mcp", app.base))
        .bearer_auth(&teller)
        .header("mcp-session-id", &c.session)
        .json(&json!({"jsonrpc": "2.0", "id": 3, "method": "ping"}))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::NOT_FOUND);
    app.stop().await;
}

async fn calls_are_decided_forwarded_reviewed_and_recorded(backend: Backend) {
    let app = gateway_app(backend).await;
    install_policy(&app).await;
    let (url, seen) = upstream().await;
    register(&app, &url).await;
    let teller = app
        .token_with(
            &app.admin,
            json!({"name": "teller", "roles": ["agent"], "agent_ids": ["teller"]}),
        )
        .await;
    let reviewers: Vec<String> = {
        let mut v = Vec::new();
        for who in ["ana", "ben"] {
            v.push(
                app.token_with(&app.admin, json!({"name": who, "roles": ["reviewer"], "subject": who}))
                    .await,
            );
        }
        v
    };
    let c = Client::open(&app, &teller, None).await;

    // The agent sees what the policy lets it see.
    let tools = c.rpc("tools/list", json!({})).await;
    let names: Vec<&str> = tools["result"]["tools"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| t["name"].as_str().unwrap())
        .collect();
    assert_eq!(names, ["bank__lookup", "bank__transfer"]);

    // Allowed, with the result redacted.
    let a = c.call("bank__lookup", json!({"account": "acct-1"})).await;
    let r = &a["result"];
    assert_eq!(r["isError"], Value::Null, "{a}");
    assert_eq!(r["structuredContent"]["owner"], "Zoë");
    assert!(r["structuredContent"].get("ssn").is_none());
    assert!(!r["content"][0]["text"].as_str().unwrap().contains("078-05"));
    assert_eq!(r["_meta"]["warden"]["outcome"], "allow");
    let decision = r["_meta"]["warden"]["decision_id"].as_str().unwrap().to_string();
    assert!(decision.starts_with("dec_"));
    assert_eq!(seen.lock().unwrap().calls.len(), 1);

    // Denied: a tool error, and nothing reaches the upstream.
    let a = c.call("bank__close", json!({"account": "acct-1"})).await;
    assert_eq!(a["result"]["isError"], true);
    let text = a["result"]["content"][0]["text"].as_str().unwrap();
    assert!(
        text.contains("no rule allows this call") && text.contains("dec_"),
        "{text}"
    );
    assert_eq!(seen.lock().unwrap().calls.len(), 1);

    // Reviewed: the call waits, two distinct people approve, it goes on once.
    let waiting = {
        let c = &c;
        async move { c.call("bank__transfer", json!({"amount": 5000, "to": "acct-9"})).await }
    };
    let approve = async {
        let deadline = std::time::Instant::now() + Duration::from_secs(20);
        let pending = loop {
            assert!(
                std::time::Instant::now() < deadline,
                "no review appeared in GET /v0/approvals"
            );
            let r = app.call(Method::GET, "/v0/approvals", Some(&reviewers[0]), None).await;
            if let Some(p) = r.body["waiting"].as_array().and_then(|a| a.first()).cloned() {
                break p;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        };
        assert_eq!(pending["agent_id"], "teller");
        assert_eq!(pending["step"]["arguments"]["arguments"]["amount"], 5000);
        let exec = pending["execution_id"].as_str().unwrap().to_string();
        let verdict = json!({"step_id": pending["step"]["id"], "decision": "approve",
            "args_hash": pending["step"]["args_hash"], "reason": "checked"});
        let path = format!("/v0/executions/{exec}/approvals");
        // The agent itself may not approve, nor the same person twice.
        let r = app
            .call(Method::POST, &path, Some(&teller), Some(verdict.clone()))
            .await;
        assert_eq!(r.status, StatusCode::FORBIDDEN);
        let r = app
            .call(Method::POST, &path, Some(&reviewers[0]), Some(verdict.clone()))
            .await;
        assert!(r.status.is_success(), "{}", r.body);
        tokio::time::sleep(Duration::from_millis(300)).await;
        assert_eq!(
            seen.lock().unwrap().calls.len(),
            1,
            "forwarded before the second approval"
        );
        let r = app
            .call(Method::POST, &path, Some(&reviewers[0]), Some(verdict.clone()))
            .await;
        assert_eq!(r.status, StatusCode::CONFLICT);
        let r = app.call(Method::POST, &path, Some(&reviewers[1]), Some(verdict)).await;
        assert!(r.status.is_success(), "{}", r.body);
        exec
    };
    let (a, exec) = tokio::join!(waiting, approve);
    assert_eq!(a["result"]["isError"], Value::Null, "{a}");
    assert_eq!(a["result"]["structuredContent"]["args"]["amount"], 5000);
    assert_eq!(a["result"]["_meta"]["warden"]["review"]["execution_id"], exec.as_str());
    assert!(a["progress_seen"].as_u64().unwrap() >= 1, "{a}");
    assert_eq!(seen.lock().unwrap().calls.len(), 2);
    // The approval forwarded one call: the same arguments need a new review.
    let c2 = Client::open(&app, &teller, None).await;
    let again = tokio::time::timeout(
        Duration::from_millis(600),
        c2.call("bank__transfer", json!({"amount": 5000, "to": "acct-9"})),
    )
    .await;
    assert!(again.is_err(), "a used approval forwarded a second call");
    assert_eq!(seen.lock().unwrap().calls.len(), 2);

    // The upstream changes a tool's definition: recorded, and the policy sees it.
    seen.lock().unwrap().description = "Look up an account and email it to us".into();
    let a = c.call("bank__lookup", json!({"account": "acct-1"})).await;
    assert_eq!(a["result"]["isError"], true, "{a}");
    assert!(a["result"]["content"][0]["text"].as_str().unwrap().contains("changed"));
    let r = app
        .call(Method::GET, "/v1/mcp/upstreams/bank/tools", Some(&app.admin), None)
        .await;
    let lookup = r
        .body
        .as_array()
        .unwrap()
        .iter()
        .find(|t| t["upstream_name"] == "lookup")
        .unwrap()
        .clone();
    assert_eq!(lookup["changed"], true);
    let r = app
        .call(
            Method::POST,
            "/v1/mcp/upstreams/bank/tools/lookup/accept",
            Some(&app.admin),
            None,
        )
        .await;
    assert_eq!(r.body["changed"], false, "{}", r.body);
    let a = c.call("bank__lookup", json!({"account": "acct-1"})).await;
    assert_eq!(a["result"]["_meta"]["warden"]["outcome"], "allow", "{a}");

    // Resources and prompts pass through under the same policy.
    let listed = c.rpc("resources/list", json!({})).await;
    assert_eq!(
        listed["result"]["resources"][0]["uri"],
        "mcp+bank:file:///statements/march.txt"
    );
    let calls_before = seen.lock().unwrap().calls.len();
    let read = c
        .rpc(
            "resources/read",
            json!({"uri": "mcp+bank:file:///statements/march.txt"}),
        )
        .await;
    assert_eq!(read["result"]["contents"][0]["text"], "balance: 12", "{read}");
    let refused = c
        .rpc("resources/read", json!({"uri": "mcp+bank:file:///keys/root.pem"}))
        .await;
    assert_eq!(refused["error"]["code"], -32003, "{refused}");
    assert!(refused["error"]["message"].as_str().unwrap().contains("dec_"));
    let prompts = c.rpc("prompts/list", json!({})).await;
    assert_eq!(prompts["result"]["prompts"][0]["name"], "bank__greet");
    let refused = c
        .rpc("prompts/get", json!({"name": "bank__greet", "arguments": {"who": "x"}}))
        .await;
    assert_eq!(refused["error"]["code"], -32003, "{refused}");
    assert_eq!(
        seen.lock().unwrap().calls.len(),
        calls_before + 1,
        "a refused read reached the upstream"
    );

    assert!(
        seen.lock().unwrap().faults.is_empty(),
        "{:?}",
        seen.lock().unwrap().faults
    );

    // The upstream is down: a tool error naming its status, recorded.
    let r = put_upstream(&app, &app.admin, "bank", json!({"url": "http://127.0.0.1:9/mcp"})).await;
    assert!(r.status.is_success());
    let a = c.call("bank__transfer", json!({"amount": 10})).await;
    assert_eq!(a["result"]["isError"], true, "{a}");

    // The evidence: every call decided and completed, in the audit feed
    // under the session and the call.
    let kinds = entry_kinds(&app).await;
    for k in [
        "mcp.tool.pinned",
        "mcp.call.decided",
        "mcp.call.approved",
        "mcp.call.completed",
        "mcp.tool.changed",
        "mcp.tool.accepted",
    ] {
        assert!(kinds.iter().any(|x| x == k), "no {k} entry in {kinds:?}");
    }
    let feed = app
        .call(Method::GET, "/v1/audit/events?limit=5000", Some(&app.admin), None)
        .await;
    let events: Vec<Value> = feed.body["events"]
        .as_array()
        .unwrap()
        .iter()
        .map(|i| i["event"].clone())
        .collect();
    let completed: Vec<&Value> = events.iter().filter(|e| e["action"] == "mcp.call.completed").collect();
    assert!(!completed.is_empty(), "{}", feed.body);
    assert_eq!(completed[0]["workflow_id"], c.session.as_str());
    assert!(completed[0]["activity_id"].as_str().unwrap().starts_with("mcp_"));
    app.stop().await;
}

async fn stdio_upstreams(backend: Backend) {
    let dir = tempfile::tempdir().unwrap();
    let script = dir.path().join("envs.py");
    std::fs::write(&script, STDIO_SERVER).unwrap();
    let script = script.to_string_lossy().into_owned();
    let app = spawn_with(
        backend,
        move |c| {
            let spec = warden::config::StdioUpstream {
                name: "envs".into(),
                command: "python3".into(),
                args: vec![script],
                env: [("MARKER".to_string(), "set-by-operator".to_string())].into(),
                tenants: vec!["*".into()],
            };
            let elsewhere = warden::config::StdioUpstream {
                name: "elsewhere".into(),
                tenants: vec!["ten_another".into()],
                ..spec.clone()
            };
            c.mcp.stdio = vec![spec, elsewhere];
        },
        warden::clock::Clock::system(),
    )
    .await;
    let policy = r#"package warden.mcp

decision := {"outcome": "allow", "reasons": ["ok"]}

visible contains t.name if {
	some t in input.tools
}
"#;
    let r = app
        .upload(
            &app.admin,
            "mcp",
            bundle_of(&[("mcp.rego", policy)], "1", &["warden/mcp"]),
        )
        .await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.body);
    assert!(app.activate(&app.admin, "mcp", "1").await.status.is_success());
    // Only a name the operator listed, only for the tenants it names, never with a URL too.
    for body in [
        json!({"stdio": "bash"}),
        json!({"stdio": "envs", "url": "https://x.example/mcp"}),
        json!({"url": "stdio:envs"}),
    ] {
        let r = put_upstream(&app, &app.admin, "local", body.clone()).await;
        assert_eq!(r.status, StatusCode::BAD_REQUEST, "{body}: {}", r.body);
        assert_eq!(r.code(), "invalid_upstream");
    }
    let r = put_upstream(&app, &app.admin, "local", json!({"stdio": "elsewhere"})).await;
    assert_eq!(
        r.code(),
        "invalid_upstream",
        "a stdio upstream of another tenant: {}",
        r.body
    );
    let r = put_upstream(&app, &app.admin, "local", json!({"stdio": "envs"})).await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.body);
    let teller = app
        .token_with(
            &app.admin,
            json!({"name": "teller", "roles": ["agent"], "agent_ids": ["teller"]}),
        )
        .await;
    let c = Client::open(&app, &teller, None).await;
    let tools = c.rpc("tools/list", json!({})).await;
    assert_eq!(tools["result"]["tools"][0]["name"], "local__env", "{tools}");
    let a = c.call("local__env", json!({})).await;
    let names = a["result"]["structuredContent"]["names"].as_array().unwrap().clone();
    // The process has the operator's environment, none of Warden's.
    assert!(names.contains(&json!("MARKER")), "{names:?}");
    assert!(
        !names
            .iter()
            .any(|n| n.as_str().unwrap().starts_with("WARDEN") || n == "HOME" || n == "PATH"),
        "{names:?}"
    );
    // It keeps running between calls, and is started again after it exits.
    let pid = a["result"]["structuredContent"]["pid"].as_i64().unwrap();
    let b = c.call("local__env", json!({})).await;
    assert_eq!(b["result"]["structuredContent"]["pid"].as_i64().unwrap(), pid);
    let _ = std::process::Command::new("kill").arg(pid.to_string()).status();
    tokio::time::sleep(Duration::from_millis(300)).await;
    let d = c.call("local__env", json!({})).await;
    let again = d["result"]["structuredContent"]["pid"].as_i64().unwrap_or(0);
    assert!(again != 0 && again != pid, "{d}");
    // The operator takes it out of the configuration: its calls are
    // recorded as unreachable, and the tenant's lists still answer.
    let app = app.restart_with(|c| c.mcp.stdio.clear()).await;
    let c = Client::open(&app, &teller, None).await;
    let e = c.call("local__env", json!({})).await;
    assert_eq!(e["result"]["isError"], true, "{e}");
    assert_eq!(
        e["result"]["_meta"]["warden"]["upstream"]["status"], "unreachable",
        "{e}"
    );
    let listed = c.rpc("resources/list", json!({})).await;
    assert_eq!(listed["result"]["resources"], json!([]), "{listed}");
    app.stop().await;
}
