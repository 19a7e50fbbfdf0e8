//! The execution kernel end to end: a real agent and a real runner, each an
//! HTTP client holding an SSE stream, against a running Warden whose kernel
//! policy is the shipped `policies/kernel/` engine with the rules below.
//! Every flow that can be interrupted is interrupted by a restart of
//! Warden, and every flow ends by checking that the execution's history,
//! the ledger (an export that verifies offline) and the audit feed agree.

use std::collections::HashMap;
use std::time::Duration;

use reqwest::{Method, StatusCode};
use serde_json::{Value, json};
use tokio::sync::mpsc;
use warden::clock::Clock;
use warden::evidence::checkpoint::NoteVerifier;
use warden::evidence::verify;

use crate::common::*;
use crate::on_both_backends;

/// The rules the flows run under (data for the shipped Rego engine).
pub(crate) fn rules() -> Value {
    json!({"warden": {"kernel": {"rules": [
        {"id": "read-only", "priority": 10, "tools": ["search.*", "echo"], "effect": "allow",
         "reason": "read-only tools"},
        {"id": "no-shell", "priority": 100, "tools": ["shell.*"], "effect": "deny",
         "reason": "agents never get a shell"},
        {"id": "refunds", "priority": 50, "tools": ["payments.refund"], "effect": "require_approval",
         "reason": "refunds need a reviewer", "approval": {"reviewers": 1, "timeout_seconds": 3600}},
        {"id": "wires", "priority": 50, "tools": ["payments.wire"], "effect": "require_approval",
         "reason": "wires need two people", "approval": {"reviewers": 2}},
        {"id": "restarts", "priority": 50, "tools": ["ops.restart"], "effect": "require_approval",
         "reason": "restarts are reviewed at once", "approval": {"reviewers": 1, "timeout_seconds": 3}},
        {"id": "scaling", "priority": 50, "tools": ["ops.scale"], "effect": "require_approval",
         "reason": "scaling is reviewed, or skipped", "approval": {"reviewers": 1, "timeout_seconds": 1,
         "on_expiry": "continue"}},
        {"id": "runner-tools", "priority": 10, "tools": ["flaky.fetch", "ledger.post"], "effect": "allow",
         "reason": "runner tools"}
    ]}}})
}

pub(crate) fn kernel_bundle(revision: &str) -> Vec<u8> {
    let rego = std::fs::read_to_string(repo_path("policies/kernel/tool.rego")).unwrap();
    bundle_of(
        &[("tool.rego", &rego), ("data.json", &rules().to_string())],
        revision,
        &["warden/kernel"],
    )
}

/// The agent ids the team's agent token is bound to: every agent the
/// kernel and workflow flows run (the example's agents by prefix).
pub(crate) const AGENT_IDS: &[&str] = &[
    "claims-agent",
    "clock-agent",
    "ops-agent",
    "fetcher",
    "fraud-check",
    "sanctions-check",
    "slow-agent",
    "broken-agent",
    "triage",
    "ghcr.io/bank/*",
];

/// The runner ids the team's runner token is bound to.
pub(crate) const RUNNER_IDS: &[&str] = &["pay-runner", "fetcher", "poster", "r1", "other-runner"];

/// What the team's tokens are minted with, in `Team` order: each reviewer
/// its own subject (reviewers count by subject).
pub(crate) fn team_tokens() -> [Value; 6] {
    [
        json!({"name": "orchestrator", "roles": ["orchestrator"]}),
        json!({"name": "agent", "roles": ["agent"], "agent_ids": AGENT_IDS}),
        json!({"name": "runner", "roles": ["runner"], "runner_ids": RUNNER_IDS}),
        json!({"name": "reviewer", "roles": ["reviewer"], "subject": "alice@example.com"}),
        json!({"name": "reviewer", "roles": ["reviewer"], "subject": "bob@example.com"}),
        json!({"name": "auditor", "roles": ["auditor"]}),
    ]
}

/// Tokens of one tenant, by role.
pub(crate) struct Team {
    pub(crate) orchestrator: String,
    pub(crate) agent: String,
    pub(crate) runner: String,
    pub(crate) reviewer: String,
    pub(crate) reviewer2: String,
    pub(crate) auditor: String,
}

pub(crate) async fn kernel_app(backend: Backend) -> (TestApp, Team) {
    kernel_app_with(backend, |_| {}).await
}

pub(crate) async fn kernel_app_with(
    backend: Backend,
    tweak: impl FnOnce(&mut warden::config::Config),
) -> (TestApp, Team) {
    let app = spawn_with(
        backend,
        |c| {
            c.shutdown_grace_secs = 1;
            c.kernel.tick_ms = 50;
            c.kernel.retry_backoff_ms = 300;
            tweak(c);
        },
        Clock::system(),
    )
    .await;
    let r = app.upload(&app.admin, "kernel", kernel_bundle("1")).await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.body);
    let r = app.activate(&app.admin, "kernel", "1").await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    let mut tokens = Vec::new();
    for body in team_tokens() {
        tokens.push(app.token_with(&app.admin, body).await);
    }
    let [orchestrator, agent, runner, reviewer, reviewer2, auditor] = tokens.try_into().unwrap();
    let team = Team {
        orchestrator,
        agent,
        runner,
        reviewer,
        reviewer2,
        auditor,
    };
    (app, team)
}

// ------------------------------------------------------------------ clients

/// A Warden to talk to: one started in this process, or the binary.
pub(crate) trait Peer {
    fn client(&self) -> &reqwest::Client;
    fn base(&self) -> &str;

    async fn call(&self, method: Method, path: &str, token: Option<&str>, body: Option<Value>) -> Reply {
        let mut req = self.client().request(method, format!("{}{path}", self.base()));
        if let Some(t) = token {
            req = req.bearer_auth(t);
        }
        if let Some(b) = body {
            req = req.json(&b);
        }
        into_reply(req.send().await.unwrap()).await
    }
}

impl Peer for TestApp {
    fn client(&self) -> &reqwest::Client {
        &self.client
    }
    fn base(&self) -> &str {
        &self.base
    }
}

/// The `warden` binary, run as a child process.
pub(crate) struct Remote {
    pub(crate) client: reqwest::Client,
    pub(crate) base: String,
}

/// What the binary-run tests start it with: the kernel's timers every 50 ms,
/// and a fresh PostgreSQL database on that backend.
pub(crate) struct ProcessEnv(Vec<(&'static str, String)>);

impl ProcessEnv {
    pub(crate) async fn of(backend: Backend) -> ProcessEnv {
        let mut env = vec![("WARDEN_KERNEL__TICK_MS", "50".to_string())];
        if backend == Backend::Postgres {
            env.push(("WARDEN_DATABASE_URL", fresh_postgres_database().await));
        }
        ProcessEnv(env)
    }

    pub(crate) fn pairs(&self) -> Vec<(&str, &str)> {
        self.0.iter().map(|(k, v)| (*k, v.as_str())).collect()
    }
}

impl Remote {
    pub(crate) fn of(server: &crate::cli::Server) -> Remote {
        Remote {
            client: reqwest::Client::new(),
            base: server.base.clone(),
        }
    }

    /// Its `/metrics` text, read with this token.
    pub(crate) async fn metrics(&self, token: &str) -> String {
        let r = self.call(Method::GET, "/metrics", Some(token), None).await;
        assert_eq!(r.status, StatusCode::OK);
        String::from_utf8_lossy(&r.bytes).into_owned()
    }
}

impl Peer for Remote {
    fn client(&self) -> &reqwest::Client {
        &self.client
    }
    fn base(&self) -> &str {
        &self.base
    }
}

// ------------------------------------------------------------------ SSE

#[derive(Debug, Clone)]
pub(crate) struct Ev {
    pub(crate) id: i64,
    pub(crate) event: String,
    pub(crate) data: Value,
}

/// An SSE client: a task reads the stream and hands over each event.
pub(crate) struct Stream {
    rx: mpsc::UnboundedReceiver<Ev>,
    task: tokio::task::JoinHandle<()>,
    last: i64,
}

impl Stream {
    pub(crate) async fn open(app: &impl Peer, token: &str, path: &str, last_event_id: Option<i64>) -> Stream {
        let mut req = app.client().get(format!("{}{path}", app.base())).bearer_auth(token);
        if let Some(id) = last_event_id {
            req = req.header("Last-Event-ID", id.to_string());
        }
        let mut res = req.send().await.unwrap();
        assert_eq!(res.status(), StatusCode::OK, "{}", res.text().await.unwrap());
        assert_eq!(res.headers()["content-type"], "text/event-stream");
        assert_eq!(res.headers()["x-accel-buffering"], "no");
        let (tx, rx) = mpsc::unbounded_channel();
        let task = tokio::spawn(async move {
            let mut buf = String::new();
            while let Ok(Some(chunk)) = res.chunk().await {
                buf.push_str(&String::from_utf8_lossy(&chunk));
                while let Some(end) = buf.find("\n\n") {
                    let block: String = buf.drain(..end + 2).collect();
                    let (mut id, mut event, mut data) = (None, String::new(), String::new());
                    for line in block.lines() {
                        if let Some(v) = line.strip_prefix("id:") {
                            id = v.trim().parse().ok();
                        } else if let Some(v) = line.strip_prefix("event:") {
                            event = v.trim().to_string();
                        } else if let Some(v) = line.strip_prefix("data:") {
                            data.push_str(v.trim_start());
                        }
                    }
                    if let Some(id) = id {
                        let data = serde_json::from_str(&data).unwrap();
                        if tx.send(Ev { id, event, data }).is_err() {
                            return;
                        }
                    }
                }
            }
        });
        Stream { rx, task, last: 0 }
    }

    pub(crate) async fn agent(app: &impl Peer, token: &str, agent_id: &str) -> Stream {
        Stream::open(app, token, &format!("/v0/agents/stream?agent_id={agent_id}"), None).await
    }

    pub(crate) async fn runner(
        app: &impl Peer,
        token: &str,
        runner_id: &str,
        tools: &str,
        non_idempotent: &str,
    ) -> Stream {
        let path = format!("/v0/runners/stream?runner_id={runner_id}&tools={tools}&non_idempotent={non_idempotent}");
        Stream::open(app, token, &path, None).await
    }

    /// The next event, which must be `event`.
    pub(crate) async fn next(&mut self, event: &str) -> Ev {
        self.next_within(event, Duration::from_secs(15)).await
    }

    /// The next event, which must be `event` and come within `wait`.
    pub(crate) async fn next_within(&mut self, event: &str, wait: Duration) -> Ev {
        let ev = tokio::time::timeout(wait, self.rx.recv())
            .await
            .unwrap_or_else(|_| panic!("no {event} event within {wait:?}"))
            .expect("the stream ended");
        assert_eq!(ev.event, event, "{ev:?}");
        assert!(ev.id > self.last, "event ids go up: {} after {}", ev.id, self.last);
        self.last = ev.id;
        ev
    }

    /// The events up to and including the first `event`, which must come
    /// within 15 s: a marker after which what did not come will not.
    pub(crate) async fn until(&mut self, event: &str) -> Vec<Ev> {
        let deadline = tokio::time::Instant::now() + Duration::from_secs(15);
        let mut out = Vec::new();
        loop {
            let ev = tokio::time::timeout_at(deadline, self.rx.recv())
                .await
                .unwrap_or_else(|_| panic!("no {event} event within 15 s; before it: {out:?}"))
                .expect("the stream ended");
            let done = ev.event == event;
            out.push(ev);
            if done {
                return out;
            }
        }
    }

    /// Whether the server ends the stream within `wait` (events before the
    /// end are passed over).
    pub(crate) async fn ends_within(&mut self, wait: Duration) -> bool {
        let until = tokio::time::Instant::now() + wait;
        loop {
            match tokio::time::timeout_at(until, self.rx.recv()).await {
                Ok(Some(_)) => continue,
                Ok(None) => return true,
                Err(_) => return false,
            }
        }
    }

    /// The id of the last event read with [`Stream::next`].
    pub(crate) fn last_id(&self) -> i64 {
        self.last
    }
}

/// The messages stored for a stream (`agent/<tenant>/<agent id>` or
/// `runner/<tenant>/<runner id>`) after id `after`, as (event, data). Every
/// message a stream carries is committed here before it is sent (and
/// replayed from here), so one that is not here was never sent: a test
/// asserts that nothing reached a stream by reading this once the act that
/// would have sent it has been answered, not by listening for a while.
pub(crate) async fn stored_after(app: &TestApp, recipient: &str, after: i64) -> Vec<(String, Value)> {
    app.state
        .store
        .kernel_pushes_after(recipient, after, 1_000)
        .await
        .unwrap()
        .into_iter()
        .map(|p| (p.event.to_string(), p.data))
        .collect()
}

/// The tenant an execution belongs to.
pub(crate) async fn tenant_of(app: &TestApp, exec: &str) -> String {
    app.state.store.kernel_execution(exec).await.unwrap().unwrap().tenant_id
}

impl Drop for Stream {
    fn drop(&mut self) {
        self.task.abort();
    }
}

// ------------------------------------------------------------------ helpers

pub(crate) async fn post(app: &impl Peer, token: &str, path: &str, body: Value) -> Reply {
    app.call(Method::POST, path, Some(token), Some(body)).await
}

pub(crate) async fn start(app: &impl Peer, team: &Team, agent_id: &str) -> String {
    let r = post(
        app,
        &team.orchestrator,
        "/v0/executions",
        json!({"agent_id": agent_id, "input": {"claim": "C-1"}, "labels": {"env": "prod"}}),
    )
    .await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.body);
    assert!(
        !r.body["receipts"].as_array().unwrap().is_empty(),
        "creation is in the ledger"
    );
    r.body["id"].as_str().unwrap().to_string()
}

pub(crate) async fn invoke(app: &impl Peer, team: &Team, exec: &str, tool: &str, args: Value) -> Reply {
    post(
        app,
        &team.agent,
        "/v0/agents/intent",
        json!({"execution_id": exec, "type": "invoke_tool", "tool": tool, "arguments": args}),
    )
    .await
}

pub(crate) async fn intent(app: &impl Peer, team: &Team, exec: &str, body: Value) -> Reply {
    let mut body = body;
    body["execution_id"] = exec.into();
    post(app, &team.agent, "/v0/agents/intent", body).await
}

pub(crate) async fn state_of(app: &impl Peer, team: &Team, exec: &str) -> Value {
    let r = app
        .call(
            Method::GET,
            &format!("/v0/executions/{exec}"),
            Some(&team.orchestrator),
            None,
        )
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    r.body
}

/// The execution's history, as an auditor reads it.
pub(crate) async fn history_of(app: &impl Peer, team: &Team, exec: &str) -> Value {
    let r = app
        .call(
            Method::GET,
            &format!("/v0/executions/{exec}/history"),
            Some(&team.auditor),
            None,
        )
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    r.body
}

/// Polls until the execution is in `state`.
pub(crate) async fn wait_state(app: &impl Peer, team: &Team, exec: &str, state: &str) -> Value {
    for _ in 0..300 {
        let v = state_of(app, team, exec).await;
        if v["state"] == state {
            return v;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    panic!(
        "execution {exec} never became {state}: {}",
        state_of(app, team, exec).await
    );
}

pub(crate) async fn review(app: &impl Peer, token: &str, exec: &str, step: &Value, decision: &str) -> Reply {
    post(
        app,
        token,
        &format!("/v0/executions/{exec}/approvals"),
        json!({"step_id": step["id"], "decision": decision, "reason": "checked the claim",
            "args_hash": step["args_hash"]}),
    )
    .await
}

async fn runner_report(app: &impl Peer, team: &Team, runner: &str, body: Value) -> Reply {
    post(app, &team.runner, &format!("/v0/runners/{runner}/results"), body).await
}

pub(crate) fn kinds(history: &Value) -> Vec<String> {
    history["entries"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["kind"].as_str().unwrap().to_string())
        .collect()
}

/// The execution's history, its ledger entries (from an export that
/// verifies offline with the current key) and its audit events agree.
/// Returns the history.
/// The ledger's current verifier key, as an auditor fetches it.
async fn current_key(app: &impl Peer, team: &Team) -> NoteVerifier {
    let keys = app
        .call(Method::GET, "/v1/ledger/keys", Some(&team.auditor), None)
        .await;
    let key = keys
        .body
        .as_array()
        .unwrap()
        .iter()
        .find(|k| k["current"] == true)
        .unwrap();
    NoteVerifier::parse(key["verifier"].as_str().unwrap()).unwrap()
}

/// The tenant's ledger export, verified offline with its current key.
pub(crate) async fn verified_export(app: &impl Peer, team: &Team) -> crate::common::Reply {
    let key = current_key(app, team).await;
    let export = app
        .call(Method::GET, "/v1/ledger/export", Some(&team.auditor), None)
        .await;
    assert_eq!(export.status, StatusCode::OK);
    verify::verify_export(std::io::Cursor::new(&export.bytes), &[key], &mut |_| {})
        .expect("the export verifies offline");
    export
}

pub(crate) async fn check_evidence(app: &impl Peer, team: &Team, exec: &str) -> Value {
    let history = history_of(app, team, exec).await;
    let entries = history["entries"].as_array().unwrap();
    assert!(!entries.is_empty());

    let export = verified_export(app, team).await;
    let ledger: HashMap<u64, Value> = export
        .bytes
        .split(|b| *b == b'\n')
        .filter(|l| l.starts_with(b"{\"actor\":"))
        .map(|l| serde_json::from_slice::<Value>(l).unwrap())
        .map(|e| (e["index"].as_u64().unwrap(), e))
        .collect();

    let feed = app
        .call(Method::GET, "/v1/audit/events?limit=5000", Some(&team.auditor), None)
        .await;
    assert_eq!(feed.status, StatusCode::OK);
    let events: HashMap<u64, Value> = feed.body["events"]
        .as_array()
        .unwrap()
        .iter()
        .map(|i| (i["index"].as_u64().unwrap(), i["event"].clone()))
        .collect();

    for (n, h) in entries.iter().enumerate() {
        assert_eq!(h["seq"], n as u64 + 1, "history numbered without gaps");
        let index = h["ledger_index"]
            .as_u64()
            .unwrap_or_else(|| panic!("history entry without ledger index: {h}"));
        let entry = &ledger[&index];
        assert_eq!(entry["kind"], h["kind"], "ledger entry {index}");
        assert_eq!(entry["actor"], h["actor"], "ledger entry {index}");
        let event = &events[&index];
        assert_eq!(event["workflow_id"], exec, "{event}");
        if h["kind"] == "decision" {
            assert_eq!(entry["payload"]["decision_id"], h["payload"]["decision_id"]);
            assert_eq!(event["action"], "policy.decision");
        } else {
            assert_eq!(entry["payload"]["execution_id"], exec);
            assert_eq!(entry["payload"]["seq"], h["seq"]);
            assert_eq!(
                event["action"].as_str().unwrap(),
                h["kind"].as_str().unwrap().trim_start_matches("kernel.")
            );
            assert!(warden::audit::conforms(event), "audit event off schema: {event}");
        }
    }
    // And nothing in the feed about this execution is missing from its history.
    let in_history: std::collections::HashSet<u64> =
        entries.iter().map(|h| h["ledger_index"].as_u64().unwrap()).collect();
    for (index, e) in &events {
        if e["workflow_id"] == exec {
            assert!(in_history.contains(index), "event {index} not in the history: {e}");
        }
    }
    history
}

/// `receipt` proves, offline with the current key, the ledger entry of the
/// decision `decision_id` in the execution's history.
pub(crate) async fn assert_decision_receipt(
    app: &impl Peer,
    team: &Team,
    exec: &str,
    receipt: &Value,
    decision_id: &Value,
) {
    let key = current_key(app, team).await;
    let parsed: warden::evidence::receipt::Receipt = serde_json::from_value(receipt.clone()).expect("a receipt");
    verify::verify_receipt(&parsed, &[key], None).expect("the decision's receipt verifies offline");
    let history = history_of(app, team, exec).await;
    let entry = history["entries"]
        .as_array()
        .unwrap()
        .iter()
        .find(|h| h["ledger_index"] == receipt["index"])
        .unwrap_or_else(|| panic!("no history entry at {}", receipt["index"]));
    assert_eq!(entry["kind"], "decision", "{entry}");
    assert_eq!(entry["payload"]["decision_id"], *decision_id, "{entry}");
}

// ------------------------------------------------------------------ flows

on_both_backends!(allowed_local_tool_runs_and_completes);

async fn allowed_local_tool_runs_and_completes(backend: Backend) {
    let (app, team) = kernel_app(backend).await;
    let mut agent = Stream::agent(&app, &team.agent, "claims-agent").await;
    let exec = start(&app, &team, "claims-agent").await;
    let assigned = agent.next("execution.assigned").await;
    assert_eq!(assigned.data["execution_id"], exec);
    assert_eq!(assigned.data["input"]["claim"], "C-1");

    let r = invoke(&app, &team, &exec, "search.web", json!({"q": "claim C-1"})).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    assert_eq!(r.body["outcome"], "allow");
    assert_decision_receipt(&app, &team, &exec, &r.body["decision_receipt"], &r.body["decision_id"]).await;
    assert_eq!(r.body["state"], "blocked");
    assert_eq!(r.body["step"]["state"], "dispatched");
    assert_eq!(r.body["step"]["remote"], false);
    assert!(
        r.body["reasons"][0].as_str().unwrap().contains("read-only"),
        "{}",
        r.body
    );
    let step = r.body["step"]["id"].as_str().unwrap().to_string();
    let job = agent.next("step.assigned").await;
    assert_eq!(job.data["step_id"], step);
    assert_eq!(job.data["arguments"]["q"], "claim C-1");

    // An illegal transition: complete while blocked.
    let r = intent(&app, &team, &exec, json!({"type": "complete"})).await;
    assert_eq!(r.status, StatusCode::CONFLICT);
    assert_eq!(r.code(), "illegal_transition");

    let r = post(
        &app,
        &team.agent,
        "/v0/agents/step-result",
        json!({"step_id": step, "status": "succeeded", "output": {"hits": 3}}),
    )
    .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    let result = agent.next("step.result").await;
    assert_eq!(result.data["output"]["hits"], 3);
    assert_eq!(result.data["execution_state"], "running");

    let r = intent(
        &app,
        &team,
        &exec,
        json!({"type": "complete", "output": {"answer": 42}}),
    )
    .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    assert_eq!(r.body["state"], "completed");
    let v = state_of(&app, &team, &exec).await;
    assert_eq!(v["output"]["answer"], 42);
    assert_eq!(v["steps"][0]["state"], "succeeded");

    let history = check_evidence(&app, &team, &exec).await;
    assert_eq!(
        kinds(&history),
        [
            "kernel.execution.created",
            "kernel.execution.assigned",
            "decision",
            "kernel.step.created",
            "kernel.execution.blocked",
            "kernel.step.dispatched",
            "kernel.step.started",
            "kernel.step.succeeded",
            "kernel.execution.resumed",
            "kernel.execution.completed",
        ]
    );
    // The decision is an ordinary decision: it replays bit for bit.
    let decision = history["entries"][2]["payload"]["decision_id"].as_str().unwrap();
    let r = app.replay(&team.auditor, decision).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    assert_eq!(r.body["match"], true, "{}", r.body);
    let metrics = app.call(Method::GET, "/metrics", Some(&team.auditor), None).await;
    let text = String::from_utf8_lossy(&metrics.bytes);
    assert!(text.contains("warden_kernel_streams{kind=\"agent\"} 1"), "{text}");
    assert!(
        text.contains("warden_kernel_transitions_total{kind=\"kernel.step.succeeded\"} 1"),
        "{text}"
    );
    app.stop().await;
}

on_both_backends!(denied_tool_is_refused_with_the_policys_reasons);

async fn denied_tool_is_refused_with_the_policys_reasons(backend: Backend) {
    let (app, team) = kernel_app(backend).await;
    let mut agent = Stream::agent(&app, &team.agent, "claims-agent").await;
    let exec = start(&app, &team, "claims-agent").await;
    agent.next("execution.assigned").await;

    let r = invoke(&app, &team, &exec, "shell.exec", json!({"cmd": "rm -rf /"})).await;
    assert_eq!(r.status, StatusCode::FORBIDDEN);
    assert_eq!(r.code(), "intent_denied");
    let errors = r.body["errors"].as_array().unwrap();
    assert!(
        errors[0]["reason"].as_str().unwrap().contains("never get a shell"),
        "{}",
        r.body
    );
    assert!(errors[0]["decision_id"].as_str().unwrap().starts_with("dec_"));
    // The denial carries the receipt of its decision, as an allowance does.
    assert_decision_receipt(&app, &team, &exec, &errors[0]["receipt"], &errors[0]["decision_id"]).await;
    // A tool no rule mentions is denied too (the default).
    let r = invoke(&app, &team, &exec, "mail.send", json!({})).await;
    assert_eq!(r.code(), "intent_denied");
    // The execution is still the agent's, running, with no step.
    let v = state_of(&app, &team, &exec).await;
    assert_eq!(v["state"], "running");
    assert!(v["steps"].as_array().unwrap().is_empty());
    let r = intent(
        &app,
        &team,
        &exec,
        json!({"type": "fail", "error": {"why": "no tool allowed"}}),
    )
    .await;
    assert_eq!(r.body["state"], "failed");

    let history = check_evidence(&app, &team, &exec).await;
    let k = kinds(&history);
    assert_eq!(k.iter().filter(|k| *k == "kernel.intent.denied").count(), 2, "{k:?}");
    assert_eq!(k.iter().filter(|k| *k == "decision").count(), 2, "{k:?}");
    assert_eq!(k.last().unwrap(), "kernel.execution.failed");
    app.stop().await;
}

/// A kernel bundle without roots claims every path, the permission
/// policy's (`kernel.permission_path`) too: asked there, it has no rule, so
/// every `invoke_tool` is denied (fail closed), saying which path could not
/// decide; with `permission_path = ""` the same bundle decides alone. The
/// policy layer, not the store, decides this: one backend.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_kernel_bundle_without_roots_claims_the_permission_path_and_denies() {
    let rego = std::fs::read_to_string(repo_path("policies/kernel/tool.rego")).unwrap();
    let everywhere = bundle_of(&[("tool.rego", &rego), ("data.json", &rules().to_string())], "2", &[""]);
    for permission_path in [None, Some("")] {
        let (app, team) = kernel_app_with(Backend::Sqlite, |c| {
            if let Some(p) = permission_path {
                c.kernel.permission_path = p.to_string();
            }
        })
        .await;
        let r = app.upload(&app.admin, "kernel", everywhere.clone()).await;
        assert_eq!(r.status, StatusCode::CREATED, "{}", r.body);
        let r = app.activate(&app.admin, "kernel", "2").await;
        assert_eq!(r.status, StatusCode::OK, "{}", r.body);
        let mut agent = Stream::agent(&app, &team.agent, "claims-agent").await;
        let exec = start(&app, &team, "claims-agent").await;
        agent.next("execution.assigned").await;

        let r = invoke(&app, &team, &exec, "search.web", json!({"q": "claim"})).await;
        match permission_path {
            None => {
                assert_eq!(
                    (r.status, r.code()),
                    (StatusCode::FORBIDDEN, "intent_denied"),
                    "{}",
                    r.body
                );
                let reason = r.body["errors"][0]["reason"].as_str().unwrap_or_default();
                assert!(
                    reason.contains("warden/rbac/decision") && reason.contains("unknown_rule_path"),
                    "the reason names the path that could not decide: {}",
                    r.body
                );
                let v = state_of(&app, &team, &exec).await;
                assert!(v["steps"].as_array().unwrap().is_empty(), "no step exists: {v}");
            }
            Some(_) => {
                assert_eq!(r.status, StatusCode::OK, "{}", r.body);
                assert_eq!(r.body["outcome"], "allow", "{}", r.body);
            }
        }
        app.stop().await;
    }
}

on_both_backends!(approval_granted_after_a_restart_dispatches_to_the_runner);

/// Remote step behind one reviewer; Warden restarts while the review waits.
async fn approval_granted_after_a_restart_dispatches_to_the_runner(backend: Backend) {
    let (app, team) = kernel_app(backend).await;
    let runner = Stream::runner(&app, &team.runner, "pay-runner", "payments.refund", "payments.refund").await;
    let mut agent = Stream::agent(&app, &team.agent, "claims-agent").await;
    let exec = start(&app, &team, "claims-agent").await;
    agent.next("execution.assigned").await;

    let args = json!({"amount": 1200, "currency": "EUR"});
    let r = invoke(&app, &team, &exec, "payments.refund", args.clone()).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    assert_eq!(r.body["outcome"], "require_approval");
    assert_eq!(r.body["step"]["remote"], true);
    assert_eq!(r.body["step"]["idempotent"], false);
    assert_eq!(r.body["step"]["state"], "pending");
    assert_eq!(state_of(&app, &team, &exec).await["waiting_on"], "approval");

    let r = app.call(Method::GET, "/v0/approvals", Some(&team.reviewer), None).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    let waiting = &r.body["waiting"][0];
    assert_eq!(waiting["execution_id"], exec);
    assert_eq!(waiting["step"]["arguments"], args);
    assert!(
        waiting["step"]["reasons"][0]
            .as_str()
            .unwrap()
            .contains("refunds need a reviewer")
    );
    let step = waiting["step"].clone();
    let tenant = tenant_of(&app, &exec).await;
    let to_runner = warden::model::kernel::runner_recipient(&tenant, "pay-runner");
    assert_eq!(
        stored_after(&app, &to_runner, 0).await,
        [],
        "nothing dispatched before review"
    );

    drop(runner);
    drop(agent);
    let app = app.restart().await;
    let mut runner = Stream::runner(&app, &team.runner, "pay-runner", "payments.refund", "payments.refund").await;
    let mut agent = Stream::agent(&app, &team.agent, "claims-agent").await;
    let again = agent.next("execution.assigned").await;
    assert_eq!(
        again.data["state"], "blocked",
        "the blocked execution goes back to its agent"
    );

    let r = review(&app, &team.reviewer, &exec, &step, "approve").await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    let job = runner.next("job.assigned").await;
    assert_eq!(job.data["step_id"], step["id"]);
    assert_eq!(job.data["arguments"], args);
    assert_eq!(job.data["idempotency_key"], step["idempotency_key"]);

    let report = |status: &str| json!({"step_id": step["id"], "status": status, "output": {"refund": "R-9"}});
    assert_eq!(
        runner_report(&app, &team, "pay-runner", report("started")).await.status,
        StatusCode::OK
    );
    let r = runner_report(&app, &team, "pay-runner", report("succeeded")).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    // A report sent again is answered, not applied twice.
    let r = runner_report(&app, &team, "pay-runner", report("succeeded")).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    // Another runner may not report on this job.
    let r = runner_report(&app, &team, "other-runner", report("failed")).await;
    assert_eq!(r.code(), "step_not_yours");
    let result = agent.next("step.result").await;
    assert_eq!(result.data["output"]["refund"], "R-9");
    let r = intent(&app, &team, &exec, json!({"type": "complete"})).await;
    assert_eq!(r.body["state"], "completed", "{}", r.body);

    let history = check_evidence(&app, &team, &exec).await;
    let k = kinds(&history);
    for expected in [
        "kernel.approval.requested",
        "kernel.approval.recorded",
        "kernel.approval.granted",
        "kernel.step.dispatched",
        "kernel.step.succeeded",
    ] {
        assert_eq!(k.iter().filter(|x| *x == expected).count(), 1, "{expected} in {k:?}");
    }
    let recorded = history["entries"]
        .as_array()
        .unwrap()
        .iter()
        .find(|e| e["kind"] == "kernel.approval.recorded")
        .unwrap();
    assert!(
        recorded["actor"].as_str().unwrap().starts_with("token:tok_"),
        "{recorded}"
    );
    assert_eq!(recorded["payload"]["args_hash"], step["args_hash"]);
    app.stop().await;
}

on_both_backends!(approval_rejected_cancels_the_step_and_the_agent_goes_on);

async fn approval_rejected_cancels_the_step_and_the_agent_goes_on(backend: Backend) {
    let (app, team) = kernel_app(backend).await;
    let mut agent = Stream::agent(&app, &team.agent, "claims-agent").await;
    let exec = start(&app, &team, "claims-agent").await;
    agent.next("execution.assigned").await;
    let r = post(
        &app,
        &team.agent,
        "/v0/agents/intent",
        json!({"execution_id": exec, "type": "invoke_tool", "tool": "payments.refund", "remote": false,
            "arguments": {"amount": 5}}),
    )
    .await;
    assert_eq!(r.body["outcome"], "require_approval", "{}", r.body);
    let step = r.body["step"].clone();
    let r = review(&app, &team.reviewer, &exec, &step, "reject").await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    assert_eq!(r.body["state"], "cancelled");
    assert_eq!(r.body["review"]["state"], "rejected");
    let result = agent.next("step.result").await;
    assert_eq!(result.data["review"], "rejected");
    assert_eq!(result.data["execution_state"], "running");
    // Nothing reached the agent to run.
    let tenant = tenant_of(&app, &exec).await;
    let to_agent = warden::model::kernel::agent_recipient(&tenant, "claims-agent");
    assert_eq!(stored_after(&app, &to_agent, result.id).await, []);
    // A late approval of the rejected step is refused.
    let r = review(&app, &team.reviewer2, &exec, &step, "approve").await;
    assert_eq!(r.code(), "approval_closed");
    let r = intent(&app, &team, &exec, json!({"type": "fail", "error": "refund refused"})).await;
    assert_eq!(r.body["state"], "failed");
    let k = kinds(&check_evidence(&app, &team, &exec).await);
    assert!(k.contains(&"kernel.approval.rejected".to_string()), "{k:?}");
    assert!(!k.contains(&"kernel.step.dispatched".to_string()), "{k:?}");
    app.stop().await;
}

on_both_backends!(approval_expires_on_the_servers_clock_across_a_restart);

/// The review expires (3 s, set by the policy) across a restart: the step
/// is cancelled and the execution fails, as the policy says.
async fn approval_expires_on_the_servers_clock_across_a_restart(backend: Backend) {
    let (app, team) = kernel_app(backend).await;
    let mut agent = Stream::agent(&app, &team.agent, "ops-agent").await;
    let exec = start(&app, &team, "ops-agent").await;
    agent.next("execution.assigned").await;
    let r = invoke(&app, &team, &exec, "ops.restart", json!({"service": "claims"})).await;
    assert_eq!(r.body["outcome"], "require_approval", "{}", r.body);
    let step = r.body["step"].clone();
    assert_eq!(step["review"]["on_expiry"], "fail");
    drop(agent);
    let app = app.restart().await;
    let v = wait_state(&app, &team, &exec, "failed").await;
    assert_eq!(v["steps"][0]["state"], "cancelled");
    assert_eq!(v["steps"][0]["review"]["state"], "expired");
    let r = review(&app, &team.reviewer, &exec, &step, "approve").await;
    assert_eq!(r.code(), "approval_expired");
    let r = app.call(Method::GET, "/v0/approvals", Some(&team.reviewer), None).await;
    assert!(r.body["waiting"].as_array().unwrap().is_empty(), "{}", r.body);
    let k = kinds(&check_evidence(&app, &team, &exec).await);
    assert!(k.contains(&"kernel.approval.expired".to_string()), "{k:?}");
    assert_eq!(k.last().unwrap(), "kernel.execution.failed");
    app.stop().await;
}

on_both_backends!(two_person_approval_and_every_refusal_has_its_code);

/// Two distinct reviewers, neither the initiator; and every refused
/// approval with its own code.
async fn two_person_approval_and_every_refusal_has_its_code(backend: Backend) {
    let (app, team) = kernel_app(backend).await;
    // The initiator also holds the reviewer role: still not allowed to review.
    let initiator = app.token(&app.admin, &["orchestrator", "reviewer"]).await;
    let mut agent = Stream::agent(&app, &team.agent, "claims-agent").await;
    let r = post(&app, &initiator, "/v0/executions", json!({"agent_id": "claims-agent"})).await;
    let exec = r.body["id"].as_str().unwrap().to_string();
    agent.next("execution.assigned").await;
    let r = post(
        &app,
        &team.agent,
        "/v0/agents/intent",
        json!({"execution_id": exec, "type": "invoke_tool", "tool": "payments.wire", "remote": false,
            "arguments": {"amount": 90000, "iban": "DE00"}}),
    )
    .await;
    assert_eq!(r.body["outcome"], "require_approval", "{}", r.body);
    let step = r.body["step"].clone();
    assert_eq!(step["review"]["reviewers_required"], 2);

    let mut wrong = step.clone();
    wrong["args_hash"] = "0".repeat(64).into();
    assert_eq!(
        review(&app, &team.reviewer, &exec, &wrong, "approve").await.code(),
        "approval_arguments_mismatch"
    );
    assert_eq!(
        review(&app, &initiator, &exec, &step, "approve").await.code(),
        "approval_by_initiator"
    );
    assert_eq!(
        review(&app, &team.auditor, &exec, &step, "approve").await.code(),
        "not_a_reviewer"
    );
    assert_eq!(
        review(&app, &app.admin, &exec, &step, "approve").await.code(),
        "not_a_reviewer"
    );
    let other_tenant = app.tenant("initech").await;
    let other_reviewer = app.token(&other_tenant, &["reviewer"]).await;
    assert_eq!(
        review(&app, &other_reviewer, &exec, &step, "approve").await.code(),
        "unknown_execution"
    );

    let r = review(&app, &team.reviewer, &exec, &step, "approve").await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    assert_eq!(r.body["review"]["state"], "waiting", "one of two");
    assert_eq!(r.body["review"]["approvals"], 1);
    assert_eq!(
        review(&app, &team.reviewer, &exec, &step, "approve").await.code(),
        "approval_reused"
    );
    // Warden restarts between the two verdicts: the first still counts.
    drop(agent);
    let app = app.restart().await;
    let mut agent = Stream::agent(&app, &team.agent, "claims-agent").await;
    assert_eq!(agent.next("execution.assigned").await.data["state"], "blocked");
    let r = review(&app, &team.reviewer, &exec, &step, "approve").await;
    assert_eq!(r.code(), "approval_reused");
    let r = review(&app, &team.reviewer2, &exec, &step, "approve").await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    assert_eq!(r.body["review"]["state"], "approved");
    assert_eq!(r.body["state"], "dispatched");
    let job = agent.next("step.assigned").await;
    assert_eq!(job.data["step_id"], step["id"]);
    assert_eq!(
        review(&app, &team.reviewer2, &exec, &step, "approve").await.code(),
        "approval_reused"
    );
    let third = app
        .token_with(
            &app.admin,
            json!({"name": "reviewer", "roles": ["reviewer"], "subject": "carol@example.com"}),
        )
        .await;
    assert_eq!(
        review(&app, &third, &exec, &step, "approve").await.code(),
        "approval_closed"
    );

    let history = check_evidence(&app, &team, &exec).await;
    let reviewers: Vec<&str> = history["entries"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|e| e["kind"] == "kernel.approval.recorded")
        .map(|e| e["actor"].as_str().unwrap())
        .collect();
    assert_eq!(reviewers.len(), 2);
    assert_ne!(reviewers[0], reviewers[1]);
    app.stop().await;
}

on_both_backends!(runner_failure_is_retried_after_backoff_across_a_restart);

/// A retryable failure gets a new attempt after the back-off, across a
/// restart in the middle of the back-off.
async fn runner_failure_is_retried_after_backoff_across_a_restart(backend: Backend) {
    let (app, team) = kernel_app(backend).await;
    let mut runner = Stream::runner(&app, &team.runner, "fetcher", "flaky.fetch", "").await;
    let mut agent = Stream::agent(&app, &team.agent, "claims-agent").await;
    let exec = start(&app, &team, "claims-agent").await;
    agent.next("execution.assigned").await;
    let r = post(
        &app,
        &team.agent,
        "/v0/agents/intent",
        json!({"execution_id": exec, "type": "invoke_tool", "tool": "flaky.fetch", "arguments": {"url": "x"},
            "retry": {"max_attempts": 3, "backoff_ms": 1500}}),
    )
    .await;
    assert_eq!(r.body["step"]["state"], "dispatched", "{}", r.body);
    let first = runner.next("job.assigned").await;
    assert_eq!(first.data["attempt"], 1);
    let r = runner_report(
        &app,
        &team,
        "fetcher",
        json!({"step_id": first.data["step_id"], "status": "failed", "retryable": true, "error": {"http": 503}}),
    )
    .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    assert_eq!(state_of(&app, &team, &exec).await["state"], "blocked");

    drop(runner);
    let app = app.restart().await;
    let mut runner = Stream::runner(&app, &team.runner, "fetcher", "flaky.fetch", "").await;
    let second = runner.next("job.assigned").await;
    assert_eq!(second.data["attempt"], 2);
    assert_ne!(second.data["step_id"], first.data["step_id"]);
    assert_ne!(second.data["idempotency_key"], first.data["idempotency_key"]);
    let r = runner_report(
        &app,
        &team,
        "fetcher",
        json!({"step_id": second.data["step_id"], "status": "succeeded", "output": {"body": "ok"}}),
    )
    .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    let v = wait_state(&app, &team, &exec, "pending").await;
    assert_eq!(v["steps"][0]["state"], "failed");
    assert_eq!(v["steps"][1]["state"], "succeeded");
    let k = kinds(&check_evidence(&app, &team, &exec).await);
    assert_eq!(k.iter().filter(|x| *x == "kernel.step.retried").count(), 1, "{k:?}");
    // The agent's stream closed with the restart, so the execution waits
    // for it in `pending` (released), with the step's result kept.
    assert!(k.contains(&"kernel.execution.released".to_string()), "{k:?}");
    app.stop().await;
}

on_both_backends!(a_non_idempotent_job_is_never_dispatched_twice);

/// A non-idempotent job goes out once: neither a restart, nor the runner
/// reconnecting (with or without Last-Event-ID), sends it again; it times
/// out and is not retried.
async fn a_non_idempotent_job_is_never_dispatched_twice(backend: Backend) {
    let (app, team) = kernel_app(backend).await;
    let mut runner = Stream::runner(&app, &team.runner, "poster", "ledger.post", "ledger.post").await;
    let mut agent = Stream::agent(&app, &team.agent, "claims-agent").await;
    let exec = start(&app, &team, "claims-agent").await;
    agent.next("execution.assigned").await;
    let r = post(
        &app,
        &team.agent,
        "/v0/agents/intent",
        json!({"execution_id": exec, "type": "invoke_tool", "tool": "ledger.post", "arguments": {"amount": 7},
            "timeout_seconds": 3}),
    )
    .await;
    assert_eq!(r.body["step"]["idempotent"], false, "{}", r.body);
    let job = runner.next("job.assigned").await;
    let seen = job.id;
    drop(runner);
    let app = app.restart().await;
    let _fresh = Stream::runner(&app, &team.runner, "poster", "ledger.post", "ledger.post").await;
    let path = "/v0/runners/stream?runner_id=poster&tools=ledger.post&non_idempotent=ledger.post";
    let mut resumed = Stream::open(&app, &team.runner, path, Some(seen)).await;
    let v = wait_state(&app, &team, &exec, "failed").await;
    assert_eq!(v["steps"].as_array().unwrap().len(), 1, "not retried: {v}");
    assert_eq!(v["steps"][0]["state"], "timed_out");
    // The runner that resumed hears that the job was given up, and nothing
    // was dispatched again before that (nor, the execution having failed,
    // after it).
    for ev in resumed.until("job.cancelled").await {
        assert_ne!(ev.event, "job.assigned", "dispatched again: {ev:?}");
    }
    let to_runner = warden::model::kernel::runner_recipient(&tenant_of(&app, &exec).await, "poster");
    let again: Vec<String> = stored_after(&app, &to_runner, seen)
        .await
        .into_iter()
        .map(|(event, _)| event)
        .filter(|e| e == "job.assigned")
        .collect();
    assert_eq!(again, Vec::<String>::new(), "dispatched again");
    let k = kinds(&check_evidence(&app, &team, &exec).await);
    assert_eq!(k.iter().filter(|x| *x == "kernel.step.dispatched").count(), 1, "{k:?}");
    assert!(k.contains(&"kernel.step.timed_out".to_string()));
    app.stop().await;
}

on_both_backends!(agent_disconnect_returns_the_execution_and_it_is_reassigned);

/// An agent whose stream drops gives its running execution back; the next
/// stream of that agent gets it again. Last-Event-ID resumes a stream.
async fn agent_disconnect_returns_the_execution_and_it_is_reassigned(backend: Backend) {
    let (app, team) = kernel_app(backend).await;
    let mut agent = Stream::agent(&app, &team.agent, "claims-agent").await;
    let exec = start(&app, &team, "claims-agent").await;
    let first = agent.next("execution.assigned").await;
    drop(agent);
    wait_state(&app, &team, &exec, "pending").await;
    // The intent of an agent that no longer holds it is refused.
    let r = intent(&app, &team, &exec, json!({"type": "complete"})).await;
    assert_eq!(r.code(), "not_assigned");

    let mut agent = Stream::agent(&app, &team.agent, "claims-agent").await;
    let again = agent.next("execution.assigned").await;
    assert_eq!(again.data["execution_id"], exec);
    assert!(again.id > first.id);
    // A stream resuming from the first event gets the second again.
    let path = "/v0/agents/stream?agent_id=claims-agent";
    let mut resumed = Stream::open(&app, &team.agent, path, Some(first.id)).await;
    let replay = resumed.next("execution.assigned").await;
    assert_eq!(replay.id, again.id);

    let r = intent(&app, &team, &exec, json!({"type": "wait"})).await;
    assert_eq!(r.body["state"], "blocked", "{}", r.body);
    let r = post(
        &app,
        &team.orchestrator,
        &format!("/v0/executions/{exec}/signal"),
        json!({"payload": {"go": true}}),
    )
    .await;
    assert_eq!(r.body["state"], "running", "{}", r.body);
    assert_eq!(agent.next("execution.signalled").await.data["signal"]["go"], true);
    let r = intent(&app, &team, &exec, json!({"type": "complete"})).await;
    assert_eq!(r.body["state"], "completed", "{}", r.body);
    let k = kinds(&check_evidence(&app, &team, &exec).await);
    assert_eq!(
        k.iter().filter(|x| *x == "kernel.execution.assigned").count(),
        2,
        "{k:?}"
    );
    assert!(k.contains(&"kernel.execution.released".to_string()));

    // Pruning old messages keeps each stream's last, so numbering goes on.
    let store = &app.state.store;
    let tenant = store.kernel_execution(&exec).await.unwrap().unwrap().tenant_id;
    let recipient = warden::model::kernel::agent_recipient(&tenant, "claims-agent");
    let last = store.kernel_last_push(&recipient).await.unwrap();
    assert!(store.kernel_prune_pushes(i64::MAX).await.unwrap() > 0);
    let kept = store.kernel_pushes_after(&recipient, 0, 100).await.unwrap();
    assert_eq!(kept.iter().map(|p| p.seq).collect::<Vec<_>>(), [last]);
    let next = start(&app, &team, "claims-agent").await;
    let ev = agent.next("execution.assigned").await;
    assert_eq!(
        (ev.id, ev.data["execution_id"].as_str().unwrap()),
        (last + 1, next.as_str())
    );
    app.stop().await;
}

on_both_backends!(cancel_stops_the_step_and_tells_runner_and_agent);

/// Cancelling an execution whose job a runner holds cancels the step and
/// tells the runner and the agent; nothing can move it afterwards.
async fn cancel_stops_the_step_and_tells_runner_and_agent(backend: Backend) {
    let (app, team) = kernel_app(backend).await;
    let mut runner = Stream::runner(&app, &team.runner, "fetcher", "flaky.fetch", "").await;
    let mut agent = Stream::agent(&app, &team.agent, "claims-agent").await;
    let exec = start(&app, &team, "claims-agent").await;
    agent.next("execution.assigned").await;
    invoke(&app, &team, &exec, "flaky.fetch", json!({"url": "y"})).await;
    let job = runner.next("job.assigned").await;
    let started = json!({"step_id": job.data["step_id"], "status": "started"});
    assert_eq!(
        runner_report(&app, &team, "fetcher", started).await.status,
        StatusCode::OK
    );
    // Warden restarts while the runner holds the job.
    drop((runner, agent));
    let app = app.restart().await;
    let mut runner = Stream::runner(&app, &team.runner, "fetcher", "flaky.fetch", "").await;
    let mut agent = Stream::agent(&app, &team.agent, "claims-agent").await;
    agent.next("execution.assigned").await;
    assert_eq!(state_of(&app, &team, &exec).await["steps"][0]["state"], "running");

    let r = post(
        &app,
        &team.orchestrator,
        &format!("/v0/executions/{exec}/cancel"),
        json!({"reason": "stop"}),
    )
    .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    assert_eq!(r.body["state"], "cancelled");
    assert_eq!(r.body["steps"][0]["state"], "cancelled");
    assert_eq!(runner.next("job.cancelled").await.data["step_id"], job.data["step_id"]);
    assert_eq!(agent.next("execution.cancelled").await.data["execution_id"], exec);

    let late = json!({"step_id": job.data["step_id"], "status": "succeeded"});
    assert_eq!(
        runner_report(&app, &team, "fetcher", late).await.code(),
        "illegal_transition"
    );
    let r = post(
        &app,
        &team.orchestrator,
        &format!("/v0/executions/{exec}/cancel"),
        json!({}),
    )
    .await;
    assert_eq!(r.code(), "illegal_transition");
    let k = kinds(&check_evidence(&app, &team, &exec).await);
    assert_eq!(k.last().unwrap(), "kernel.step.cancelled");
    assert!(k.contains(&"kernel.execution.cancelled".to_string()));
    app.stop().await;
}

on_both_backends!(time_outs_end_what_waits_too_long);

/// Every clock of seed 003: the execution's time-out, the agent's, a
/// `wait` that ends by itself, a review that expires and lets the
/// execution go on, and a step deadline (an idempotent step is tried again).
async fn time_outs_end_what_waits_too_long(backend: Backend) {
    let (app, team) = kernel_app_with(backend, |c| c.kernel.agent_timeout_secs = 1).await;
    let mut agent = Stream::agent(&app, &team.agent, "clock-agent").await;

    // The execution's own time-out.
    let r = post(
        &app,
        &team.orchestrator,
        "/v0/executions",
        json!({"agent_id": "clock-agent", "timeout_seconds": 1}),
    )
    .await;
    let short = r.body["id"].as_str().unwrap().to_string();
    agent.next("execution.assigned").await;
    let failed = agent.next("execution.failed").await;
    assert_eq!(failed.data["execution_id"], short);
    let v = state_of(&app, &team, &short).await;
    assert_eq!(v["state"], "failed");
    assert!(
        v["output"]["error"]["reason"].as_str().unwrap().contains("timed out"),
        "{v}"
    );
    check_evidence(&app, &team, &short).await;

    // A wait that ends by itself.
    let waiting = start(&app, &team, "clock-agent").await;
    agent.next("execution.assigned").await;
    let r = intent(&app, &team, &waiting, json!({"type": "wait", "timeout_seconds": 1})).await;
    assert_eq!(r.body["state"], "blocked", "{}", r.body);
    let resumed = agent.next("execution.resumed").await;
    assert_eq!(resumed.data["reason"], "timer");
    assert_eq!(state_of(&app, &team, &waiting).await["state"], "running");

    // A review that expires with `on_expiry: continue`.
    let r = invoke(&app, &team, &waiting, "ops.scale", json!({"replicas": 3})).await;
    assert_eq!(r.body["outcome"], "require_approval", "{}", r.body);
    let result = agent.next("step.result").await;
    assert_eq!(result.data["review"], "expired");
    assert_eq!(result.data["execution_state"], "running");

    // A step deadline: the agent never reports; the idempotent step is
    // tried again, and the second attempt succeeds.
    let r = post(
        &app,
        &team.agent,
        "/v0/agents/intent",
        json!({"execution_id": waiting, "type": "invoke_tool", "tool": "search.web", "arguments": {"q": "x"},
            "timeout_seconds": 1}),
    )
    .await;
    let first = r.body["step"]["id"].as_str().unwrap().to_string();
    assert_eq!(agent.next("step.assigned").await.data["step_id"], first);
    let second = agent.next("step.assigned").await;
    assert_eq!(second.data["attempt"], 2);
    let r = post(
        &app,
        &team.agent,
        "/v0/agents/step-result",
        json!({"step_id": second.data["step_id"], "status": "succeeded"}),
    )
    .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    agent.next("step.result").await;
    let v = state_of(&app, &team, &waiting).await;
    let states: Vec<&str> = v["steps"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s["state"].as_str().unwrap())
        .collect();
    assert_eq!(states, ["cancelled", "timed_out", "succeeded"]);
    assert_eq!(
        intent(&app, &team, &waiting, json!({"type": "complete"})).await.body["state"],
        "completed"
    );
    let k = kinds(&check_evidence(&app, &team, &waiting).await);
    for expected in [
        "kernel.approval.expired",
        "kernel.step.timed_out",
        "kernel.step.retried",
    ] {
        assert!(k.contains(&expected.to_string()), "{expected} in {k:?}");
    }

    // A review outlives the agent's time-out: nothing is asked of the agent
    // while people decide. Its agent leaves first.
    let mut claims = Stream::agent(&app, &team.agent, "claims-agent").await;
    let reviewed = start(&app, &team, "claims-agent").await;
    claims.next("execution.assigned").await;
    let r = invoke(&app, &team, &reviewed, "payments.refund", json!({"amount": 5})).await;
    assert_eq!(r.body["outcome"], "require_approval", "{}", r.body);
    let step = r.body["step"].clone();
    drop(claims);
    wait_released(&app, &team, &reviewed).await;

    // The agent's time-out: a blocked execution whose agent does not come back fails.
    let orphan = start(&app, &team, "clock-agent").await;
    agent.next("execution.assigned").await;
    let r = invoke(&app, &team, &orphan, "search.web", json!({"q": "y"})).await;
    assert_eq!(r.body["state"], "blocked", "{}", r.body);
    drop(agent);
    let v = wait_state(&app, &team, &orphan, "failed").await;
    assert!(
        v["output"]["error"]["reason"].as_str().unwrap().contains("agent"),
        "{v}"
    );
    assert_eq!(v["steps"][0]["state"], "cancelled");
    check_evidence(&app, &team, &orphan).await;

    // The reviewed execution's agent left before the orphan's: the pass
    // that failed the orphan passed it over.
    let v = state_of(&app, &team, &reviewed).await;
    assert_eq!(
        (v["state"].as_str(), v["waiting_on"].as_str()),
        (Some("blocked"), Some("approval")),
        "{v}"
    );
    // Approved with its agent still away: the agent's clock starts now, and
    // its agent, back in time, takes the execution with its step.
    assert_eq!(
        review(&app, &team.reviewer, &reviewed, &step, "approve").await.status,
        StatusCode::OK
    );
    let mut claims = Stream::agent(&app, &team.agent, "claims-agent").await;
    assert_eq!(claims.next("execution.assigned").await.data["execution_id"], reviewed);
    let v = state_of(&app, &team, &reviewed).await;
    assert_eq!(
        (v["state"].as_str(), v["waiting_on"].as_str()),
        (Some("blocked"), Some("step")),
        "{v}"
    );
    check_evidence(&app, &team, &reviewed).await;
    app.stop().await;
}

/// Waits until an execution's agent stream is recorded gone.
async fn wait_released(app: &TestApp, team: &Team, exec: &str) {
    let deadline = std::time::Instant::now() + Duration::from_secs(15);
    loop {
        let k = kinds(&history_of(app, team, exec).await);
        if k.contains(&"kernel.execution.released".to_string()) {
            return;
        }
        assert!(std::time::Instant::now() < deadline, "never released: {k:?}");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

on_both_backends!(two_instances_on_one_store_move_each_execution_once);

/// Two instances share the database: the agent's stream is on one, the
/// orchestrator and the intents go to either; when both instances take the
/// same transition at once, exactly one wins and the history has no gap.
async fn two_instances_on_one_store_move_each_execution_once(backend: Backend) {
    let (a, team) = kernel_app(backend).await;
    let b = a.second_instance().await;
    let mut agent = Stream::agent(&a, &team.agent, "claims-agent").await;
    for round in 0..6 {
        // Created on B; A holds the agent's stream and assigns it.
        let exec = start(&b, &team, "claims-agent").await;
        assert_eq!(agent.next("execution.assigned").await.data["execution_id"], exec);
        if round == 0 {
            // A message committed by B reaches the stream on A.
            let r = invoke(&b, &team, &exec, "search.web", json!({"q": "x"})).await;
            assert_eq!(r.status, StatusCode::OK, "{}", r.body);
            assert_eq!(agent.next("step.assigned").await.data["execution_id"], exec);
            let step = r.body["step"]["id"].clone();
            let done = json!({"step_id": step, "status": "succeeded"});
            assert_eq!(
                post(&a, &team.agent, "/v0/agents/step-result", done).await.status,
                StatusCode::OK
            );
            agent.next("step.result").await;
        }
        let complete = json!({"type": "complete"});
        // On PostgreSQL the two requests are made to meet: the table is
        // locked against writes (reads go on), both instances read the
        // execution and reach their commit, and only then is the lock
        // released. So both changes are built on the same version, and the
        // loser can only be refused as a concurrent change: two requests
        // that ran one after the other (the second seeing `completed`)
        // cannot pass for a race.
        let lock = match backend {
            Backend::Postgres => Some(WriteLock::take(&a.config().database_url()).await),
            Backend::Sqlite => None,
        };
        let (ra, rb, ()) = tokio::join!(
            intent(&a, &team, &exec, complete.clone()),
            intent(&b, &team, &exec, complete),
            async {
                if let Some(lock) = lock {
                    lock.release_when_waited_on(2).await;
                }
            }
        );
        let mut statuses = [ra.status.as_u16(), rb.status.as_u16()];
        statuses.sort();
        assert_eq!(statuses, [200, 409], "exactly one wins: {} / {}", ra.body, rb.body);
        let loser = if ra.status == StatusCode::CONFLICT { &ra } else { &rb };
        let expected: &[&str] = match backend {
            Backend::Postgres => &["concurrent_change"],
            // Not made to meet: they may or may not have overlapped.
            Backend::Sqlite => &["concurrent_change", "illegal_transition"],
        };
        assert!(expected.contains(&loser.code()), "{}", loser.body);
        let k = kinds(&check_evidence(&b, &team, &exec).await);
        assert_eq!(
            k.iter().filter(|x| *x == "kernel.execution.completed").count(),
            1,
            "{k:?}"
        );
    }
    // The same at the store, on both backends: two changes built on one
    // read of the execution, each committed through its own instance's
    // ledger at once. Exactly one commits, whatever the order.
    use warden::ledger::{AppendError, Record};
    let exec = start(&b, &team, "nobody").await;
    let row = a.state.store.kernel_execution(&exec).await.unwrap().unwrap();
    let change = |reason: &str| {
        let (moved, entry) = cancelled_by_hand(&row, reason);
        let record = Record::new(
            &row.tenant_id,
            "kernel.execution.cancelled",
            "system",
            &json!({"execution_id": exec, "reason": reason}),
        );
        (
            vec![record],
            warden::store::Change {
                executions: vec![(moved, Some(row.version))],
                history: vec![entry],
                ..Default::default()
            },
        )
    };
    let ((ra, ca), (rb, cb)) = (change("on a"), change("on b"));
    let (on_a, on_b) = tokio::join!(a.state.ledger.append_with(ra, ca), b.state.ledger.append_with(rb, cb));
    assert_eq!(
        [on_a.is_ok(), on_b.is_ok()].iter().filter(|w| **w).count(),
        1,
        "{on_a:?} / {on_b:?}"
    );
    let lost = if on_a.is_ok() { on_b } else { on_a };
    assert!(matches!(lost, Err(AppendError::Changed("execution"))), "{lost:?}");
    let history = a.state.store.kernel_history(&exec).await.unwrap();
    assert_eq!(
        history
            .iter()
            .filter(|h| h.kind == "kernel.execution.cancelled")
            .count(),
        1,
        "one cancellation in the history"
    );
    b.stop().await;
    a.stop().await;
}

on_both_backends!(an_execution_moved_by_an_unnoticed_instance_is_read_again);

/// An instance alone reads back the executions and steps it committed
/// without the store. A second instance that starts and moves one of them
/// before the first has noticed it (instances notice each other every few
/// seconds) must not make the first act on what it remembered, nor refuse
/// a request a read of the store would have answered: the agent's late
/// result on A, after B cancelled the execution, is refused as illegal on a
/// cancelled step, exactly as if A had read the store, and nothing of it is
/// written.
async fn an_execution_moved_by_an_unnoticed_instance_is_read_again(backend: Backend) {
    let (a, team) = kernel_app(backend).await;
    let mut agent = Stream::agent(&a, &team.agent, "claims-agent").await;
    let exec = start(&a, &team, "claims-agent").await;
    agent.next("execution.assigned").await;
    let r = invoke(&a, &team, &exec, "search.web", json!({"q": "x"})).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    let step = r.body["step"]["id"].clone();
    agent.next("step.assigned").await;

    let b = a.second_instance().await;
    let r = post(
        &b,
        &team.orchestrator,
        &format!("/v0/executions/{exec}/cancel"),
        json!({"reason": "moved on b"}),
    )
    .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);

    let late = json!({"step_id": step, "status": "succeeded", "output": {"hits": 1}});
    let r = post(&a, &team.agent, "/v0/agents/step-result", late).await;
    assert_eq!(r.status, StatusCode::CONFLICT, "{}", r.body);
    assert_eq!(r.code(), "illegal_transition", "{}", r.body);
    let v = state_of(&a, &team, &exec).await;
    assert_eq!(v["state"], "cancelled");
    assert_eq!(v["steps"][0]["state"], "cancelled");
    let k = kinds(&check_evidence(&a, &team, &exec).await);
    assert!(!k.contains(&"kernel.step.succeeded".to_string()), "{k:?}");
    assert_eq!(
        k.iter().filter(|x| *x == "kernel.execution.cancelled").count(),
        1,
        "{k:?}"
    );
    // And the execution A still holds moves on from what the store says.
    let next = start(&b, &team, "claims-agent").await;
    assert_eq!(agent.next("execution.cancelled").await.data["execution_id"], exec);
    assert_eq!(agent.next("execution.assigned").await.data["execution_id"], next);
    b.stop().await;
    a.stop().await;
}

on_both_backends!(a_runner_declaring_a_tool_takes_the_next_call_at_once);

/// Whether a tool is a runner's is remembered for a moment; a runner that
/// connects declaring it makes the very next call of it remote.
async fn a_runner_declaring_a_tool_takes_the_next_call_at_once(backend: Backend) {
    let (app, team) = kernel_app(backend).await;
    let mut agent = Stream::agent(&app, &team.agent, "claims-agent").await;
    let exec = start(&app, &team, "claims-agent").await;
    agent.next("execution.assigned").await;
    let r = invoke(&app, &team, &exec, "flaky.fetch", json!({"url": "a"})).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    assert_eq!(r.body["step"]["remote"], false, "no runner yet: the agent runs it");
    let step = r.body["step"]["id"].clone();
    agent.next("step.assigned").await;
    let done = json!({"step_id": step, "status": "succeeded"});
    assert_eq!(
        post(&app, &team.agent, "/v0/agents/step-result", done).await.status,
        StatusCode::OK
    );
    agent.next("step.result").await;

    let mut runner = Stream::runner(&app, &team.runner, "fetcher", "flaky.fetch", "").await;
    let r = invoke(&app, &team, &exec, "flaky.fetch", json!({"url": "b"})).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    assert_eq!(r.body["step"]["remote"], true, "{}", r.body);
    assert_eq!(runner.next("job.assigned").await.data["step_id"], r.body["step"]["id"]);
    app.stop().await;
}

on_both_backends!(a_stale_change_in_a_batch_is_refused_alone);
/// Changes committed at once, on one ledger: the writer tries their batch
/// without isolating each change, and when one is stale it writes the batch
/// again with each change isolated. Whatever the batching, the stale one is
/// refused with nothing of it written; the others commit, their history
/// rows with the index of the entry that records each.
async fn a_stale_change_in_a_batch_is_refused_alone(backend: Backend) {
    use warden::ledger::{AppendError, Record};
    let (app, team) = kernel_app(backend).await;
    let mut rows = Vec::new();
    for _ in 0..3 {
        let exec = start(&app, &team, "nobody").await;
        rows.push(app.state.store.kernel_execution(&exec).await.unwrap().unwrap());
    }
    // Each stale change first moves its own execution rightly, then one
    // that no change may move: what it wrote first must not stay.
    let bystander = start(&app, &team, "nobody").await;
    let bystander = app.state.store.kernel_execution(&bystander).await.unwrap().unwrap();
    for round in 0..4 {
        let stale = round % 3;
        let changes: Vec<_> = rows
            .iter()
            .enumerate()
            .map(|(i, row)| {
                let (moved, entry) = cancelled_by_hand(row, &format!("round {round}"));
                let record = Record::new(
                    &row.tenant_id,
                    "kernel.execution.cancelled",
                    "system",
                    &json!({"execution_id": row.id, "round": round}),
                );
                let mut executions = vec![(moved, Some(row.version))];
                if i == stale {
                    // A version the bystander never had.
                    let (b, _) = cancelled_by_hand(&bystander, "never");
                    executions.push((b, Some(bystander.version + 7)));
                }
                (
                    vec![record],
                    warden::store::Change {
                        executions,
                        history: vec![entry],
                        ..Default::default()
                    },
                )
            })
            .collect();
        let outcomes =
            futures_util::future::join_all(changes.into_iter().map(|(r, c)| app.state.ledger.append_with(r, c))).await;
        for (i, outcome) in outcomes.iter().enumerate() {
            if i == stale {
                assert!(matches!(outcome, Err(AppendError::Changed("execution"))), "{outcome:?}");
            } else {
                assert!(outcome.is_ok(), "round {round}, change {i}: {outcome:?}");
            }
        }
        for (i, row) in rows.iter_mut().enumerate() {
            let history = app.state.store.kernel_history(&row.id).await.unwrap();
            let mine: Vec<_> = history
                .iter()
                .filter(|h| h.payload["reason"] == format!("round {round}"))
                .collect();
            let now = app.state.store.kernel_execution(&row.id).await.unwrap().unwrap();
            if i == stale {
                assert!(mine.is_empty(), "{mine:?}");
                assert_eq!(&now, row, "the stale change's first write did not stay");
            } else {
                assert_eq!(mine.len(), 1, "{history:?}");
                let receipt = &outcomes[i].as_ref().unwrap()[0];
                assert_eq!(mine[0].ledger_index, Some(receipt.index), "{history:?}");
            }
            *row = now;
        }
    }
    assert_eq!(
        app.state.store.kernel_execution(&bystander.id).await.unwrap().unwrap(),
        bystander
    );
    // Operators see each refusal and the batch written again without it.
    let metrics = app.call(Method::GET, "/metrics", Some(&app.admin), None).await;
    let metrics = String::from_utf8_lossy(&metrics.bytes);
    for series in [
        "warden_ledger_changes_refused_total{reason=\"concurrent_change\"}",
        "warden_ledger_batch_retries_total{reason=\"stale_change\"}",
    ] {
        assert_eq!(sample(&metrics, series), 4.0, "{series}");
    }
    // Nothing of the refused changes broke the chain.
    verified_export(&app, &team).await;
    app.stop().await;
}

/// `row` moved to `cancelled` by hand, with the history entry that records
/// it, as the kernel would write them.
fn cancelled_by_hand(
    row: &warden::model::kernel::ExecutionRow,
    reason: &str,
) -> (warden::model::kernel::ExecutionRow, warden::model::kernel::HistoryRow) {
    let mut moved = row.clone();
    moved.state = warden::model::kernel::ExecState::Cancelled;
    moved.seq += 1;
    moved.version += 1;
    let entry = warden::model::kernel::HistoryRow {
        execution_id: row.id.clone(),
        seq: moved.seq,
        tenant_id: row.tenant_id.clone(),
        kind: "kernel.execution.cancelled",
        actor: "system".into(),
        payload: json!({"reason": reason}),
        at: 0,
        ledger_index: None,
    };
    (moved, entry)
}

/// A PostgreSQL transaction holding `kernel_executions` against writes
/// (reads go on), released once other sessions wait on a lock.
struct WriteLock {
    conn: sqlx::PgConnection,
    url: String,
}

impl WriteLock {
    async fn take(url: &str) -> WriteLock {
        use sqlx::Connection;
        let mut conn = sqlx::PgConnection::connect(url).await.unwrap();
        sqlx::query("BEGIN").execute(&mut conn).await.unwrap();
        sqlx::query("LOCK TABLE kernel_executions IN EXCLUSIVE MODE")
            .execute(&mut conn)
            .await
            .unwrap();
        WriteLock {
            conn,
            url: url.to_string(),
        }
    }

    /// Waits until `n` other sessions of the database wait on a lock, then
    /// commits.
    async fn release_when_waited_on(mut self, n: i64) {
        use sqlx::Connection;
        let mut watch = sqlx::PgConnection::connect(&self.url).await.unwrap();
        let deadline = std::time::Instant::now() + Duration::from_secs(30);
        loop {
            let waiting: i64 = sqlx::query_scalar(
                "SELECT count(*) FROM pg_stat_activity WHERE datname = current_database() AND wait_event_type = 'Lock'",
            )
            .fetch_one(&mut watch)
            .await
            .unwrap();
            if waiting >= n {
                break;
            }
            assert!(
                std::time::Instant::now() < deadline,
                "{waiting} of {n} sessions reached the lock"
            );
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        sqlx::query("COMMIT").execute(&mut self.conn).await.unwrap();
    }
}

on_both_backends!(a_batch_of_changes_numbers_each_stream_in_order);

/// Changes committed together are written one statement per table: each
/// stream's messages are still numbered one after another, in the order
/// the changes and their messages came, each change is answered its own
/// numbers, and what is stored is what was answered.
async fn a_batch_of_changes_numbers_each_stream_in_order(backend: Backend) {
    use warden::ledger::Record;
    use warden::model::kernel::PushRow;
    let (app, team) = kernel_app(backend).await;
    let mut rows = Vec::new();
    for _ in 0..4 {
        let exec = start(&app, &team, "nobody").await;
        rows.push(app.state.store.kernel_execution(&exec).await.unwrap().unwrap());
    }
    let shared = format!("agent/{}/shared", rows[0].tenant_id);
    let push = |recipient: &str, n: usize| PushRow {
        recipient: recipient.to_string(),
        seq: 0,
        event: "execution.assigned",
        data: json!({"n": n}),
        created_at: 0,
    };
    let changes: Vec<_> = rows
        .iter()
        .enumerate()
        .map(|(i, row)| {
            let (moved, entry) = cancelled_by_hand(row, "batched");
            let record = Record::new(
                &row.tenant_id,
                "kernel.execution.cancelled",
                "system",
                &json!({"execution_id": row.id}),
            );
            let own = format!("agent/{}/own-{i}", row.tenant_id);
            let change = warden::store::Change {
                executions: vec![(moved, Some(row.version))],
                history: vec![entry],
                pushes: vec![push(&shared, 2 * i), push(&own, i), push(&shared, 2 * i + 1)],
                ..Default::default()
            };
            (vec![record], change)
        })
        .collect();
    let outcomes =
        futures_util::future::join_all(changes.into_iter().map(|(r, c)| app.state.ledger.append_change(r, c))).await;
    let mut shared_numbers = Vec::new();
    for (i, outcome) in outcomes.iter().enumerate() {
        let appended = outcome.as_ref().unwrap_or_else(|e| panic!("change {i}: {e:?}"));
        let [a, own, b] = appended.pushed[..] else {
            panic!("three numbers: {:?}", appended.pushed)
        };
        assert_eq!(own, 1, "a stream of its own starts at 1");
        assert!(a < b, "in the order of the change's messages: {a} {b}");
        shared_numbers.extend([(a, 2 * i), (b, 2 * i + 1)]);
    }
    shared_numbers.sort();
    let numbers: Vec<i64> = shared_numbers.iter().map(|(n, _)| *n).collect();
    assert_eq!(numbers, (1..=8).collect::<Vec<i64>>(), "consecutive, none twice");
    // Stored as answered: each number holds the message it was given for.
    let stored = app.state.store.kernel_pushes_after(&shared, 0, 100).await.unwrap();
    let held: Vec<(i64, usize)> = stored
        .iter()
        .map(|p| (p.seq, p.data["n"].as_u64().unwrap() as usize))
        .collect();
    assert_eq!(held, shared_numbers);
    for row in &rows {
        let now = app.state.store.kernel_execution(&row.id).await.unwrap().unwrap();
        assert_eq!(now.version, row.version + 1);
        assert_eq!(now.state, warden::model::kernel::ExecState::Cancelled);
    }
    app.stop().await;
}

on_both_backends!(a_stale_change_is_refused_whole_and_its_batch_goes_on);

/// A state change whose conditions no longer hold is refused whole (its
/// rows and its ledger entries), while the rest of its group commit goes on.
async fn a_stale_change_is_refused_whole_and_its_batch_goes_on(backend: Backend) {
    use warden::ledger::Record;
    let (app, team) = kernel_app(backend).await;
    let exec = start(&app, &team, "nobody").await;
    let store = app.state.store.clone();
    let row = store.kernel_execution(&exec).await.unwrap().unwrap();
    let size = |store: warden::store::Store, tenant: String| async move {
        store.ledger_head(&tenant).await.unwrap().unwrap().size
    };
    let before = size(store.clone(), row.tenant_id.clone()).await;
    let (moved, entry) = cancelled_by_hand(&row, "stale");
    let stale = warden::store::Change {
        // Read at a version that has moved on since.
        executions: vec![(moved, Some(row.version - 1))],
        history: vec![entry.clone()],
        ..Default::default()
    };
    let record = |kind| Record::new(&row.tenant_id, kind, "system", &json!({"execution_id": exec}));
    let ledger = app.state.ledger.clone();
    let (refused, other) = tokio::join!(
        ledger.append_with(vec![record("kernel.execution.cancelled")], stale),
        ledger.append_all(vec![record("audit.note")])
    );
    assert!(
        matches!(refused, Err(warden::ledger::AppendError::Changed("execution"))),
        "{refused:?}"
    );
    assert!(other.is_ok(), "{other:?}");
    assert_eq!(
        size(store.clone(), row.tenant_id.clone()).await,
        before + 1,
        "only the other record"
    );
    let now = store.kernel_execution(&exec).await.unwrap().unwrap();
    assert_eq!(now, row, "the execution did not move");
    assert_eq!(store.kernel_history(&exec).await.unwrap().len() as i64, row.seq);
    // The same change at the right version commits, with its entry's index.
    let (fresh, _) = cancelled_by_hand(&row, "stale");
    let change = warden::store::Change {
        executions: vec![(fresh, Some(row.version))],
        history: vec![entry],
        ..Default::default()
    };
    let receipts = ledger
        .append_with(vec![record("kernel.execution.cancelled")], change)
        .await
        .unwrap();
    let history = store.kernel_history(&exec).await.unwrap();
    assert_eq!(history.last().unwrap().ledger_index, Some(receipts[0].index));
    app.stop().await;
}

on_both_backends!(executions_held_by_a_silent_instance_are_given_back);

/// An instance that stopped beating (a pod gone for good) gives back the
/// executions its agent streams held; another instance's agent takes them.
async fn executions_held_by_a_silent_instance_are_given_back(backend: Backend) {
    let (app, team) = kernel_app(backend).await;
    let exec = start(&app, &team, "claims-agent").await;
    let store = app.state.store.clone();
    // As the vanished instance left it: running, held by one of its streams.
    let row = store.kernel_execution(&exec).await.unwrap().unwrap();
    let mut held = row.clone();
    held.state = warden::model::kernel::ExecState::Running;
    held.conn = Some("instance-gone/con_1".into());
    held.agent_token = Some("tok_gone".into());
    held.version += 1;
    let change = warden::store::Change {
        executions: vec![(held, Some(row.version))],
        ..Default::default()
    };
    app.state.ledger.append_with(Vec::new(), change).await.unwrap();
    store.kernel_heartbeat("instance-gone", 0).await.unwrap();

    assert_eq!(app.state.kernel.watch_instances(30_000).await.unwrap(), 1);
    assert_eq!(state_of(&app, &team, &exec).await["state"], "pending");
    let mut agent = Stream::agent(&app, &team.agent, "claims-agent").await;
    assert_eq!(agent.next("execution.assigned").await.data["execution_id"], exec);
    let history = check_evidence(&app, &team, &exec).await;
    let released = history["entries"]
        .as_array()
        .unwrap()
        .iter()
        .find(|e| e["kind"] == "kernel.execution.released")
        .unwrap();
    assert!(
        released["payload"]["reason"].as_str().unwrap().contains("stopped"),
        "{released}"
    );
    // Forgotten once handled; this instance keeps beating.
    assert_eq!(app.state.kernel.watch_instances(30_000).await.unwrap(), 0);
    app.stop().await;
}

on_both_backends!(kill_9_in_the_middle_of_flows_loses_nothing);

/// kill -9 of the binary with a review waiting and a job running; after
/// the restart both flows finish, and the CLI verifies the export.
async fn kill_9_in_the_middle_of_flows_loses_nothing(backend: Backend) {
    use crate::cli::install;
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let env = ProcessEnv::of(backend).await;
    let mut server = crate::cli::start(&data, &env.pairs());
    let admin = server.bootstrap_token();
    let w = Remote::of(&server);
    install(&w.client, &w.base, &admin, "kernel", kernel_bundle("1")).await;
    let team = remote_team(&w, &admin).await;
    let tools = "payments.refund,flaky.fetch";
    let mut runner = Stream::runner(&w, &team.runner, "r1", tools, "payments.refund").await;
    let mut agent = Stream::agent(&w, &team.agent, "claims-agent").await;
    let reviewed = start(&w, &team, "claims-agent").await;
    agent.next("execution.assigned").await;
    let fetched = start(&w, &team, "claims-agent").await;
    agent.next("execution.assigned").await;
    let r = invoke(&w, &team, &reviewed, "payments.refund", json!({"amount": 10})).await;
    let step = r.body["step"].clone();
    assert_eq!(r.body["outcome"], "require_approval", "{}", r.body);
    invoke(&w, &team, &fetched, "flaky.fetch", json!({"url": "z"})).await;
    let job = runner.next("job.assigned").await;
    let started = json!({"step_id": job.data["step_id"], "status": "started"});
    assert_eq!(runner_report(&w, &team, "r1", started).await.status, StatusCode::OK);

    server.child.kill().unwrap();
    server.child.wait().unwrap();
    drop((runner, agent));
    server = crate::cli::start(&data, &env.pairs());
    let w = Remote::of(&server);
    let mut runner = Stream::runner(&w, &team.runner, "r1", tools, "payments.refund").await;
    let mut agent = Stream::agent(&w, &team.agent, "claims-agent").await;
    let a = agent.next("execution.assigned").await;
    let b = agent.next("execution.assigned").await;
    let mut back = [a.data["execution_id"].clone(), b.data["execution_id"].clone()];
    back.sort_by_key(|v| v.to_string());
    let mut both = [json!(reviewed), json!(fetched)];
    both.sort_by_key(|v| v.to_string());
    assert_eq!(back, both, "both blocked executions went back to their agent");

    // The running job finishes; the review goes on.
    let done = json!({"step_id": job.data["step_id"], "status": "succeeded", "output": {"n": 1}});
    assert_eq!(runner_report(&w, &team, "r1", done).await.status, StatusCode::OK);
    assert_eq!(agent.next("step.result").await.data["execution_id"], fetched);
    assert_eq!(
        review(&w, &team.reviewer, &reviewed, &step, "approve").await.status,
        StatusCode::OK
    );
    let job = runner.next("job.assigned").await;
    assert_eq!(job.data["step_id"], step["id"]);
    let done = json!({"step_id": step["id"], "status": "succeeded"});
    assert_eq!(runner_report(&w, &team, "r1", done).await.status, StatusCode::OK);
    agent.next("step.result").await;
    for exec in [&reviewed, &fetched] {
        let r = intent(&w, &team, exec, json!({"type": "complete"})).await;
        assert_eq!(r.body["state"], "completed", "{}", r.body);
        check_evidence(&w, &team, exec).await;
    }
    exported_verified_and_fscked(&w, &team, dir.path(), &data, &env, server).await;
}

/// A team of tokens minted on a Warden run as a binary.
pub(crate) async fn remote_team(w: &Remote, admin: &str) -> Team {
    let mut tokens = Vec::new();
    for body in team_tokens() {
        let r = post(w, admin, "/v1/tokens", body).await;
        assert_eq!(r.status, StatusCode::CREATED, "{}", r.body);
        tokens.push(r.body["token"].as_str().unwrap().to_string());
    }
    Team {
        orchestrator: tokens[0].clone(),
        agent: tokens[1].clone(),
        runner: tokens[2].clone(),
        reviewer: tokens[3].clone(),
        reviewer2: tokens[4].clone(),
        auditor: tokens[5].clone(),
    }
}

/// `warden export` of the whole ledger verifies with `warden verify` and
/// the current key alone; then, with the server stopped, `warden fsck`
/// re-derives every log from the store.
pub(crate) async fn exported_verified_and_fscked(
    w: &Remote,
    team: &Team,
    dir: &std::path::Path,
    data: &std::path::Path,
    env: &ProcessEnv,
    server: crate::cli::Server,
) {
    use crate::cli::run;
    let keys = w.call(Method::GET, "/v1/ledger/keys", Some(&team.auditor), None).await;
    let key = keys
        .body
        .as_array()
        .unwrap()
        .iter()
        .find(|k| k["current"] == true)
        .unwrap()["verifier"]
        .as_str()
        .unwrap()
        .to_string();
    let file = dir.join("evidence.ndjson");
    let auth = [("WARDEN_URL", w.base.as_str()), ("WARDEN_TOKEN", team.auditor.as_str())];
    let (ok, out) = run(&["export", "--out", file.to_str().unwrap()], &auth);
    assert!(ok, "{out}");
    let (ok, out) = run(&["verify", file.to_str().unwrap(), "--key", &key], &[]);
    assert!(ok, "{out}");
    drop(server);
    let (ok, out) = run(&["fsck", "--data-dir", data.to_str().unwrap()], &env.pairs());
    assert!(ok && out.contains("ok: "), "{out}");
}

on_both_backends!(shutdown_ends_open_streams_at_once_and_tells_them_to_reconnect);

/// SIGTERM with agent and runner streams open: each stream gets a
/// `stream.closing` event with a `retry` and ends, the server stops well
/// inside its grace period (20 s here).
async fn shutdown_ends_open_streams_at_once_and_tells_them_to_reconnect(backend: Backend) {
    let (app, team) = kernel_app_with(backend, |c| c.shutdown_grace_secs = 20).await;
    let mut open = Vec::new();
    for i in 0..40 {
        let (token, path) = if i % 4 == 3 {
            (
                &team.runner,
                "/v0/runners/stream?runner_id=fetcher&tools=flaky.fetch".to_string(),
            )
        } else {
            (&team.agent, format!("/v0/agents/stream?agent_id={}", AGENT_IDS[i % 3]))
        };
        let res = app
            .client
            .get(format!("{}{path}", app.base))
            .bearer_auth(token)
            .send()
            .await
            .unwrap();
        assert_eq!(res.status(), StatusCode::OK);
        open.push(tokio::spawn(async move { res.text().await.unwrap_or_default() }));
    }
    assert!(!app.state.kernel.hub.is_draining());
    let state = app.state.clone();
    let started = std::time::Instant::now();
    let stopping = tokio::spawn(app.stop());
    while !state.kernel.hub.is_draining() {
        tokio::time::sleep(std::time::Duration::from_millis(5)).await;
    }
    stopping.await.unwrap();
    let took = started.elapsed();
    assert!(
        took < std::time::Duration::from_secs(3),
        "shutdown took {took:?} with streams open"
    );
    for stream in open {
        let text = tokio::time::timeout(std::time::Duration::from_secs(5), stream)
            .await
            .expect("the stream ended")
            .unwrap();
        assert!(text.contains("event: stream.closing"), "{text}");
        assert!(text.contains("retry: 500"), "{text}");
        assert!(
            text.contains(r#"data: {"reason":"shutdown","reconnect":true}"#),
            "{text}"
        );
    }
}

on_both_backends!(executions_are_listed_and_filtered_within_the_tenant);

/// `GET /v0/executions`: the tenant's executions, newest first, filtered by
/// state and agent; bad parameters refused by name; another tenant's never
/// listed; roles as for reading one execution.
async fn executions_are_listed_and_filtered_within_the_tenant(backend: Backend) {
    let (app, team) = kernel_app(backend).await;
    let first = start(&app, &team, "claims-agent").await;
    let second = start(&app, &team, "claims-agent").await;
    let other_agent = start(&app, &team, "other-agent").await;
    let r = post(
        &app,
        &team.orchestrator,
        &format!("/v0/executions/{second}/cancel"),
        json!({"reason": "test"}),
    )
    .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);

    let list = |q: &'static str, token: String| {
        let app = &app;
        async move {
            app.call(Method::GET, &format!("/v0/executions{q}"), Some(&token), None)
                .await
        }
    };
    let ids = |r: &Reply| -> Vec<String> {
        r.body
            .as_array()
            .unwrap()
            .iter()
            .map(|e| e["id"].as_str().unwrap().to_string())
            .collect()
    };
    let all = list("", team.auditor.clone()).await;
    assert_eq!(all.status, StatusCode::OK, "{}", all.body);
    assert_eq!(
        ids(&all),
        [other_agent.clone(), second.clone(), first.clone()],
        "newest first"
    );
    assert!(all.body[0].get("steps").is_none(), "a summary, not the steps");
    assert!(all.body[0].get("workflow_run").is_none(), "not a run's");
    assert_eq!(all.body[0]["labels"]["env"], "prod");
    assert_eq!(
        ids(&list("?state=cancelled", team.auditor.clone()).await),
        std::slice::from_ref(&second)
    );
    assert_eq!(
        ids(&list("?agent_id=claims-agent", team.reviewer.clone()).await),
        [second.clone(), first.clone()]
    );
    assert_eq!(
        ids(&list(
            "?agent_id=claims-agent&state=pending&limit=1",
            team.orchestrator.clone()
        )
        .await),
        std::slice::from_ref(&first)
    );

    for (q, fault) in [
        ("?state=sleeping", "state \"sleeping\""),
        ("?limit=0", "limit is 1 to 1000"),
        ("?limit=1001", "limit is 1 to 1000"),
        ("?limit=x", "limit"),
        ("?tenant=other", "tenant"),
    ] {
        let r = list(q, team.auditor.clone()).await;
        assert_eq!((r.status, r.code()), (StatusCode::BAD_REQUEST, "invalid_query"), "{q}");
        assert!(r.body["detail"].as_str().unwrap().contains(fault), "{q}: {}", r.body);
    }
    let long = format!("/v0/executions?agent_id={}", "a".repeat(257));
    let r = app.call(Method::GET, &long, Some(&team.auditor), None).await;
    assert_eq!((r.status, r.code()), (StatusCode::BAD_REQUEST, "invalid_query"));

    // Roles: as reading one execution (the runner may not).
    let r = list("", team.runner.clone()).await;
    assert_eq!((r.status, r.code()), (StatusCode::FORBIDDEN, "forbidden"));
    let r = app.call(Method::GET, "/v0/executions", None, None).await;
    assert_eq!((r.status, r.code()), (StatusCode::UNAUTHORIZED, "unauthenticated"));

    // Another tenant sees none of them.
    let other_admin = app.tenant("executions-elsewhere").await;
    let r = list("", other_admin).await;
    assert_eq!((r.status, &r.body), (StatusCode::OK, &json!([])));
}
