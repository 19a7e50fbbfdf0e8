//! Walks every route with a token of every role (and of another tenant, and
//! none) and checks the whole allow/deny matrix. The expected matrix is
//! written out here independently of the server's own table.

use reqwest::{Method, StatusCode};
use serde_json::{Value, json};

use crate::common::*;
use crate::on_both_backends;

on_both_backends!(every_route_checks_role_and_tenant);

const ROLES: [&str; 7] = [
    "admin",
    "compliance",
    "orchestrator",
    "agent",
    "runner",
    "auditor",
    "reviewer",
];

struct Route {
    method: Method,
    path: &'static str,
    /// Roles allowed; `admin` is listed explicitly where it applies.
    allowed: &'static [&'static str],
    /// Whether an admin of a non-platform tenant may call it.
    other_tenant_admin: bool,
}

fn routes() -> Vec<Route> {
    use Method as M;
    let r = |method, path, allowed, other_tenant_admin| Route {
        method,
        path,
        allowed,
        other_tenant_admin,
    };
    const READERS: &[&str] = &["admin", "compliance", "auditor"];
    const WRITERS: &[&str] = &["admin", "compliance"];
    const DECIDERS: &[&str] = &["admin", "orchestrator", "agent"];
    const EXEC_READERS: &[&str] = &["admin", "orchestrator", "agent", "compliance", "auditor", "reviewer"];
    const SKILL_WRITERS: &[&str] = &["admin", "compliance", "orchestrator"];
    const SKILL_READERS: &[&str] = &["admin", "compliance", "orchestrator", "agent", "auditor"];
    vec![
        r(M::POST, "/v1/tenants", &["admin"], false),
        r(M::GET, "/v1/tenants", &["admin"], false),
        r(M::POST, "/v1/tokens", &["admin"], true),
        r(M::GET, "/v1/tokens", &["admin"], true),
        r(M::DELETE, "/v1/tokens/tok_unknown", &["admin"], true),
        r(M::POST, "/v1/keys", &["admin"], true),
        r(M::GET, "/v1/keys", READERS, true),
        r(M::DELETE, "/v1/keys/unknown", &["admin"], true),
        r(M::GET, "/v1/settings", READERS, true),
        r(M::PUT, "/v1/settings", &["admin"], true),
        r(M::PUT, "/v1/bundles/commissioning", WRITERS, true),
        r(M::GET, "/v1/bundles", READERS, true),
        r(M::GET, "/v1/bundles/commissioning", READERS, true),
        r(M::GET, "/v1/bundles/commissioning/revisions/1", READERS, true),
        r(M::GET, "/v1/bundles/commissioning/revisions/1/content", READERS, true),
        r(M::POST, "/v1/bundles/commissioning/activate", WRITERS, true),
        r(M::POST, "/v1/bundles/commissioning/rollback", WRITERS, true),
        r(M::POST, "/v1/decisions", DECIDERS, true),
        r(M::POST, "/v1/data/agento/commissioning/routing", DECIDERS, true),
        r(M::POST, "/v0/executions", &["admin", "orchestrator"], true),
        r(M::GET, "/v0/executions", EXEC_READERS, true),
        r(M::GET, "/v0/executions/exe_unknown", EXEC_READERS, true),
        r(M::GET, "/v0/executions/exe_unknown/history", EXEC_READERS, true),
        r(
            M::POST,
            "/v0/executions/exe_unknown/cancel",
            &["admin", "orchestrator"],
            true,
        ),
        r(
            M::POST,
            "/v0/executions/exe_unknown/signal",
            &["admin", "orchestrator"],
            true,
        ),
        // Reviewers only: an admin is not a reviewer (separation of duties).
        r(M::POST, "/v0/executions/exe_unknown/approvals", &["reviewer"], false),
        r(
            M::GET,
            "/v0/approvals",
            &["admin", "compliance", "auditor", "reviewer"],
            true,
        ),
        r(M::POST, "/v0/agents/intent", &["admin", "agent"], true),
        r(M::POST, "/v0/agents/step-result", &["admin", "agent"], true),
        r(M::POST, "/v0/runners/r1/results", &["admin", "runner"], true),
        r(
            M::PUT,
            "/v1/workflows/w1",
            &["admin", "compliance", "orchestrator"],
            true,
        ),
        r(
            M::GET,
            "/v1/workflows",
            &["admin", "compliance", "orchestrator", "auditor"],
            true,
        ),
        r(
            M::GET,
            "/v1/workflows/w1",
            &["admin", "compliance", "orchestrator", "auditor"],
            true,
        ),
        r(M::POST, "/v1/workflows/w1/runs", &["admin", "orchestrator"], true),
        r(M::GET, "/v1/workflow-runs", EXEC_READERS, true),
        r(M::GET, "/v1/workflow-runs/run_unknown", EXEC_READERS, true),
        r(M::GET, "/v1/workflow-runs/run_unknown/history", EXEC_READERS, true),
        r(
            M::POST,
            "/v1/workflow-runs/run_unknown/cancel",
            &["admin", "orchestrator"],
            true,
        ),
        r(M::PUT, "/v1/skills/s1/versions/1.0.0", SKILL_WRITERS, true),
        r(M::GET, "/v1/skills", SKILL_READERS, true),
        r(M::GET, "/v1/skills/s1", SKILL_READERS, true),
        r(M::GET, "/v1/skills/s1/versions/1.0.0", SKILL_READERS, true),
        r(M::GET, "/v1/skills/s1/resolve", SKILL_READERS, true),
        r(M::PUT, "/v1/mcp/upstreams/bank", &["admin"], true),
        r(M::GET, "/v1/mcp/upstreams", READERS, true),
        r(M::GET, "/v1/mcp/upstreams/bank/tools", READERS, true),
        r(M::POST, "/v1/mcp/upstreams/bank/tools/lookup/accept", &["admin"], true),
        r(M::DELETE, "/v1/mcp/upstreams/unknown", &["admin"], true),
        r(M::POST, "/mcp", &["admin", "agent"], true),
        r(M::GET, "/metrics", &["admin", "auditor"], true),
        r(M::GET, "/openapi.json", &ROLES, true),
        r(M::GET, "/v1/whoami", &ROLES, true),
    ]
}

async fn send(app: &TestApp, route: &Route, token: Option<&str>, n: usize) -> StatusCode {
    let body: Option<Value> = match (route.method.as_str(), route.path) {
        ("POST", "/v1/tenants") => Some(json!({"name": format!("tenant-{n}")})),
        ("POST", "/v1/tokens") => Some(json!({"name": format!("t{n}"), "roles": ["auditor"]})),
        ("POST", "/v1/keys") => {
            let key = warden::keys::generate();
            Some(
                json!({"key_id": format!("k{n}"), "algorithm": "EdDSA", "public_key": warden::keys::public_pem(&key).unwrap()}),
            )
        }
        ("PUT", "/v1/settings") => Some(json!({"require_signatures": false})),
        ("PUT", "/v1/workflows/w1") => Some(json!({"apiVersion": "agentrc.workflow/v0.1", "kind": "AgentWorkflow",
            "metadata": {"name": "w1"}, "spec": {"startAt": "A", "states": {"A": {"type": "Succeed"}}}})),
        ("PUT", "/v1/skills/s1/versions/1.0.0") => Some(json!({"id": "s1", "version": "1.0.0",
            "description": "A skill", "prompt_template": "Do it.", "rbac_scope": "engineering",
            "visibility": "published"})),
        ("PUT", "/v1/mcp/upstreams/bank") => Some(json!({"url": "https://tools.example.com/mcp"})),
        ("POST", "/mcp") => Some(json!({"jsonrpc": "2.0", "id": 1, "method": "initialize",
            "params": {"protocolVersion": "2025-06-18", "capabilities": {}, "clientInfo": {"name": "matrix", "version": "1"}}})),
        ("PUT", _) => {
            let r = app
                .upload(
                    token.unwrap_or(""),
                    "commissioning",
                    commissioning_bundle(&format!("m{n}")),
                )
                .await;
            return r.status;
        }
        ("POST", "/v1/bundles/commissioning/activate") | ("POST", "/v1/bundles/commissioning/rollback") => {
            Some(json!({"revision": "1"}))
        }
        ("POST", "/v1/decisions") => Some(json!({"path": "agento/commissioning/routing", "input": ready_input()})),
        ("POST", "/v0/executions") => Some(json!({"agent_id": "a1"})),
        ("POST", "/v0/executions/exe_unknown/cancel") => Some(json!({})),
        ("POST", "/v0/executions/exe_unknown/signal") => Some(json!({"payload": {}})),
        ("POST", "/v0/executions/exe_unknown/approvals") => {
            Some(json!({"step_id": "stp_x", "decision": "approve", "args_hash": "00"}))
        }
        ("POST", "/v1/workflows/w1/runs") | ("POST", "/v1/workflow-runs/run_unknown/cancel") => Some(json!({})),
        ("POST", "/v0/agents/intent") => Some(json!({"execution_id": "exe_unknown", "type": "complete"})),
        ("POST", "/v0/agents/step-result") | ("POST", "/v0/runners/r1/results") => {
            Some(json!({"step_id": "stp_x", "status": "started"}))
        }
        ("POST", _) => Some(json!({"input": ready_input()})),
        _ => None,
    };
    app.call(route.method.clone(), route.path, token, body).await.status
}

async fn every_route_checks_role_and_tenant(backend: Backend) {
    let app = spawn_app(backend).await;
    install_commissioning(&app, &app.admin, "1").await;
    let mut tokens = Vec::new();
    for role in ROLES {
        let t = if role == "admin" {
            app.admin.clone()
        } else {
            app.token(&app.admin, &[role]).await
        };
        tokens.push((role, t));
    }
    let other_admin = app.tenant("initech").await;
    install_commissioning(&app, &other_admin, "1").await;

    let mut n = 0;
    let mut failures = Vec::new();
    for route in routes() {
        for (role, token) in &tokens {
            n += 1;
            let status = send(&app, &route, Some(token), n).await;
            let expect_allowed = route.allowed.contains(role);
            let allowed = status != StatusCode::FORBIDDEN && status != StatusCode::UNAUTHORIZED;
            if allowed != expect_allowed || (allowed && status.is_server_error()) {
                failures.push(format!("{} {} as {role}: {status}", route.method, route.path));
            }
        }
        n += 1;
        let status = send(&app, &route, Some(&other_admin), n).await;
        let allowed = status != StatusCode::FORBIDDEN && status != StatusCode::UNAUTHORIZED;
        if allowed != route.other_tenant_admin {
            failures.push(format!(
                "{} {} as another tenant's admin: {status}",
                route.method, route.path
            ));
        }
        let status = send(&app, &route, None, n).await;
        if status != StatusCode::UNAUTHORIZED {
            failures.push(format!("{} {} without a token: {status}", route.method, route.path));
        }
    }
    // The probes are the only routes open without a token.
    for path in ["/health", "/health/ready"] {
        let r = app.call(Method::GET, path, None, None).await;
        if r.status != StatusCode::OK {
            failures.push(format!("GET {path} without a token: {}", r.status));
        }
    }
    assert!(
        failures.is_empty(),
        "authorisation matrix violations:\n{}",
        failures.join("\n")
    );
    // The decisions made by the other tenant came from its own bundle.
    let r = app
        .decide(
            &other_admin,
            json!({"path": "agento/commissioning/routing", "input": blocked_input()}),
        )
        .await;
    assert_eq!(r.body["allow"], false);
    app.stop().await;
}
