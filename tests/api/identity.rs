//! Identities bound to tokens, one test per attack: a token acting as an
//! agent or runner it is not bound to, a runner reporting another's job or
//! rewriting another's tools, a reviewer approving what they run or started
//! (or counting twice with two tokens), an expired token, a revoked token's
//! open stream, and a tenant opening streams without end. Each refusal is
//! checked for its status and code, and for leaving nothing in the
//! execution's history or the ledger.

use std::time::Duration;

use reqwest::{Method, StatusCode};
use serde_json::{Value, json};

use crate::common::*;
use crate::kernel::{
    Stream, Team, check_evidence, history_of, invoke, kernel_app, kernel_app_with, kinds, post, review, start,
    state_of, stored_after, tenant_of, wait_state,
};
use crate::on_both_backends;

on_both_backends!(
    another_agents_stream_history_and_intents_are_refused,
    another_runners_job_result_is_refused,
    re_registering_cannot_rewrite_another_runners_tools,
    nobody_reviews_what_they_run_or_started_and_a_subject_counts_once,
    an_expired_token_is_refused_and_its_stream_ends,
    a_revoked_tokens_streams_close_at_once_where_it_was_revoked,
    a_revoked_tokens_stream_on_another_instance_closes_within_the_cache_time,
    a_token_reads_what_it_is_and_nothing_of_others,
);

/// `GET /v1/whoami`: any valid token reads its own id, tenant, roles,
/// subject, bindings and expiry (so a client can check it was given the
/// right one); it names no other token, and a revoked one is refused.
async fn a_token_reads_what_it_is_and_nothing_of_others(backend: Backend) {
    let app = spawn_app(backend).await;
    let (id, agent) = mint(
        &app,
        json!({"name": "claims-worker", "roles": ["agent"], "agent_ids": ["claims-*"],
            "subject": "svc-claims@bank.example", "ttl_seconds": 3600}),
    )
    .await;
    let r = app.call(Method::GET, "/v1/whoami", Some(&agent), None).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    assert_eq!(r.body["token_id"], id.as_str());
    assert_eq!(r.body["name"], "claims-worker");
    assert_eq!(r.body["roles"], json!(["agent"]));
    assert_eq!(r.body["agent_ids"], json!(["claims-*"]));
    assert_eq!(r.body["runner_ids"], json!([]));
    assert_eq!(r.body["subject"], "svc-claims@bank.example");
    assert_eq!(r.body["platform"], true);
    assert!(r.body["expires_at"].is_string(), "{}", r.body);
    assert!(
        !r.body.to_string().contains("wdn_"),
        "no secret is ever echoed: {}",
        r.body
    );
    // Another tenant's admin reads its own tenant.
    let other = app.tenant("initech").await;
    let r = app.call(Method::GET, "/v1/whoami", Some(&other), None).await;
    assert_eq!(
        (r.body["tenant_name"].as_str(), r.body["platform"].as_bool()),
        (Some("initech"), Some(false))
    );
    assert_eq!(r.body["roles"], json!(["admin"]));
    // Revoked: refused like any other route.
    let gone = app
        .call(Method::DELETE, &format!("/v1/tokens/{id}"), Some(&app.admin), None)
        .await;
    assert_eq!(gone.status, StatusCode::NO_CONTENT);
    let r = app.call(Method::GET, "/v1/whoami", Some(&agent), None).await;
    assert_eq!(r.status, StatusCode::UNAUTHORIZED, "{}", r.body);
    app.stop().await;
}

/// Mints a token; returns (id, secret).
async fn mint(app: &TestApp, body: Value) -> (String, String) {
    let r = app.call(Method::POST, "/v1/tokens", Some(&app.admin), Some(body)).await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.body);
    (
        r.body["id"].as_str().unwrap().to_string(),
        r.body["token"].as_str().unwrap().to_string(),
    )
}

/// A stream request that must be refused: its problem. (An opened stream
/// fails the test at once rather than being read for ever.)
async fn refused_stream(app: &TestApp, token: &str, path: &str, last_event_id: Option<i64>) -> Reply {
    let mut req = app.client.get(format!("{}{path}", app.base)).bearer_auth(token);
    if let Some(id) = last_event_id {
        req = req.header("Last-Event-ID", id.to_string());
    }
    let res = req.send().await.unwrap();
    assert!(!res.status().is_success(), "the stream {path} opened");
    into_reply(res).await
}

async fn log_size(app: &TestApp, team: &Team) -> u64 {
    let r = app
        .call(Method::GET, "/v1/ledger/checkpoint", Some(&team.auditor), None)
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    r.body["size"].as_u64().unwrap()
}

/// What the store and the ledger hold now, to show a refusal added nothing.
async fn snapshot(app: &TestApp, team: &Team, exec: &str) -> (Value, u64) {
    (history_of(app, team, exec).await, log_size(app, team).await)
}

fn assert_refused(r: &Reply, status: StatusCode, code: &str) {
    assert_eq!((r.status, r.code()), (status, code), "{}", r.body);
}

async fn another_agents_stream_history_and_intents_are_refused(backend: Backend) {
    let (app, team) = kernel_app(backend).await;
    // An agent token minted without a binding: it acts only as `intruder`.
    let (_, intruder) = mint(&app, json!({"name": "intruder", "roles": ["agent"]})).await;
    let mut agent = Stream::agent(&app, &team.agent, "claims-agent").await;
    let exec = start(&app, &team, "claims-agent").await;
    agent.next("execution.assigned").await;
    let r = invoke(&app, &team, &exec, "echo", json!({"text": "hello"})).await;
    assert_eq!(r.body["step"]["state"], "dispatched", "{}", r.body);
    let step = r.body["step"]["id"].as_str().unwrap().to_string();
    agent.next("step.assigned").await;
    let before = snapshot(&app, &team, &exec).await;

    // The victim's stream, live or replayed from the first message.
    for last in [None, Some(0)] {
        let r = refused_stream(&app, &intruder, "/v0/agents/stream?agent_id=claims-agent", last).await;
        assert_refused(&r, StatusCode::FORBIDDEN, "identity_not_bound");
    }
    // Its intents, decided by policy as that agent, and its step's result.
    for body in [
        json!({"execution_id": exec, "type": "complete", "output": {"forged": true}}),
        json!({"execution_id": exec, "type": "invoke_tool", "tool": "echo", "arguments": {}}),
    ] {
        let r = post(&app, &intruder, "/v0/agents/intent", body).await;
        assert_refused(&r, StatusCode::FORBIDDEN, "identity_not_bound");
    }
    let r = post(
        &app,
        &intruder,
        "/v0/agents/step-result",
        json!({"step_id": step, "status": "succeeded", "output": {"forged": true}}),
    )
    .await;
    assert_refused(&r, StatusCode::FORBIDDEN, "identity_not_bound");
    assert_eq!(snapshot(&app, &team, &exec).await, before, "a refusal records nothing");
    let tenant = tenant_of(&app, &exec).await;
    let victim = warden::model::kernel::agent_recipient(&tenant, "claims-agent");
    assert_eq!(
        stored_after(&app, &victim, agent.last_id()).await,
        [],
        "nothing reached the victim's stream"
    );

    // The intruder's own stream (its name, the default id) still opens,
    // and carries nothing of claims-agent's.
    let own = Stream::open(&app, &intruder, "/v0/agents/stream", None).await;
    let its_own = warden::model::kernel::agent_recipient(&tenant, "intruder");
    assert_eq!(stored_after(&app, &its_own, 0).await, []);
    drop(own);

    // The bound agent finishes; its acts name its subject in the evidence.
    let r = post(
        &app,
        &team.agent,
        "/v0/agents/step-result",
        json!({"step_id": step, "status": "succeeded", "output": {"text": "hello"}}),
    )
    .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    agent.next("step.result").await;
    let r = post(
        &app,
        &team.agent,
        "/v0/agents/intent",
        json!({"execution_id": exec, "type": "complete"}),
    )
    .await;
    assert_eq!(r.body["state"], "completed", "{}", r.body);
    let h = check_evidence(&app, &team, &exec).await;
    for e in h["entries"].as_array().unwrap() {
        let by_agent = e["actor"].as_str().unwrap().ends_with("(agent)");
        if by_agent && e["kind"] != "decision" {
            assert_eq!(e["payload"]["subject"], "token-name:agent", "{e}");
        }
    }

    // A prefix binding covers the ids it starts.
    let (_, fleet) = mint(
        &app,
        json!({"name": "fleet", "roles": ["agent"], "agent_ids": ["claims-*"]}),
    )
    .await;
    Stream::agent(&app, &fleet, "claims-agent").await;
    let r = refused_stream(&app, &fleet, "/v0/agents/stream?agent_id=claim", None).await;
    assert_refused(&r, StatusCode::FORBIDDEN, "identity_not_bound");
    app.stop().await;
}

async fn another_runners_job_result_is_refused(backend: Backend) {
    let (app, team) = kernel_app(backend).await;
    let (_, owner) = mint(
        &app,
        json!({"name": "owner", "roles": ["runner"], "runner_ids": ["pay-a"]}),
    )
    .await;
    let (_, neighbour) = mint(
        &app,
        json!({"name": "neighbour", "roles": ["runner"], "runner_ids": ["pay-b"]}),
    )
    .await;
    // Bound to pay-a too (by prefix), but the job went to `owner`'s stream.
    let (_, sibling) = mint(
        &app,
        json!({"name": "sibling", "roles": ["runner"], "runner_ids": ["pay-*"]}),
    )
    .await;
    let mut runner = Stream::runner(&app, &owner, "pay-a", "ledger.post", "ledger.post").await;
    let mut agent = Stream::agent(&app, &team.agent, "claims-agent").await;
    let exec = start(&app, &team, "claims-agent").await;
    agent.next("execution.assigned").await;
    let r = invoke(&app, &team, &exec, "ledger.post", json!({"amount": 7})).await;
    assert_eq!(r.body["step"]["state"], "dispatched", "{}", r.body);
    let job = runner.next("job.assigned").await;
    let step = job.data["step_id"].clone();
    let before = snapshot(&app, &team, &exec).await;

    let report = json!({"step_id": step, "status": "succeeded", "output": {"forged": true}});
    let r = post(&app, &neighbour, "/v0/runners/pay-a/results", report.clone()).await;
    assert_refused(&r, StatusCode::FORBIDDEN, "identity_not_bound");
    let r = post(&app, &neighbour, "/v0/runners/pay-b/results", report.clone()).await;
    assert_refused(&r, StatusCode::CONFLICT, "step_not_yours");
    let r = post(&app, &sibling, "/v0/runners/pay-a/results", report.clone()).await;
    assert_refused(&r, StatusCode::FORBIDDEN, "job_not_yours");
    assert_eq!(snapshot(&app, &team, &exec).await, before, "a refusal records nothing");
    assert_eq!(state_of(&app, &team, &exec).await["steps"][0]["state"], "dispatched");

    // The token the job went to reports it.
    let r = post(
        &app,
        &owner,
        "/v0/runners/pay-a/results",
        json!({"step_id": step, "status": "succeeded", "output": {"posted": 7}}),
    )
    .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    assert_eq!(agent.next("step.result").await.data["output"]["posted"], 7);
    let h = check_evidence(&app, &team, &exec).await;
    let succeeded = h["entries"]
        .as_array()
        .unwrap()
        .iter()
        .find(|e| e["kind"] == "kernel.step.succeeded")
        .unwrap();
    assert_eq!(succeeded["payload"]["subject"], "token-name:owner");
    app.stop().await;
}

async fn re_registering_cannot_rewrite_another_runners_tools(backend: Backend) {
    let (app, team) = kernel_app(backend).await;
    let (owner_id, owner) = mint(
        &app,
        json!({"name": "owner", "roles": ["runner"], "runner_ids": ["pay-a"]}),
    )
    .await;
    let (_, sibling) = mint(
        &app,
        json!({"name": "sibling", "roles": ["runner"], "runner_ids": ["pay-*"]}),
    )
    .await;
    let mut runner = Stream::runner(&app, &owner, "pay-a", "ledger.post", "ledger.post").await;
    // The same runner id, declaring the non-idempotent tool idempotent.
    let rewrite = "/v0/runners/stream?runner_id=pay-a&tools=ledger.post";
    let r = refused_stream(&app, &sibling, rewrite, None).await;
    assert_refused(&r, StatusCode::FORBIDDEN, "runner_owned_by_other_token");

    // The declaration stands: the tool is still never run twice, and its
    // job goes to the owner's stream.
    let mut agent = Stream::agent(&app, &team.agent, "claims-agent").await;
    let exec = start(&app, &team, "claims-agent").await;
    agent.next("execution.assigned").await;
    let r = invoke(&app, &team, &exec, "ledger.post", json!({"amount": 1})).await;
    assert_eq!(r.body["step"]["idempotent"], false, "{}", r.body);
    let job = runner.next("job.assigned").await;
    let r = post(
        &app,
        &owner,
        "/v0/runners/pay-a/results",
        json!({"step_id": job.data["step_id"], "status": "succeeded"}),
    )
    .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);

    // Once the owner's token is revoked, another bound token takes the id over.
    let r = app
        .call(
            Method::DELETE,
            &format!("/v1/tokens/{owner_id}"),
            Some(&app.admin),
            None,
        )
        .await;
    assert_eq!(r.status, StatusCode::NO_CONTENT);
    assert!(runner.ends_within(Duration::from_secs(1)).await);
    let _taken = Stream::open(&app, &sibling, rewrite, None).await;
    let r = invoke(&app, &team, &exec, "ledger.post", json!({"amount": 2})).await;
    assert_eq!(r.body["step"]["idempotent"], true, "{}", r.body);
    app.stop().await;
}

async fn nobody_reviews_what_they_run_or_started_and_a_subject_counts_once(backend: Backend) {
    let (app, team) = kernel_app(backend).await;

    // One token holding both agent and reviewer asks for a step, then
    // approves it; so does another token of the same person.
    let (_, dual) = mint(
        &app,
        json!({"name": "dual", "roles": ["agent", "reviewer"], "agent_ids": ["solo-agent"], "subject": "dave"}),
    )
    .await;
    let (_, daves_reviewer) = mint(
        &app,
        json!({"name": "dave-review", "roles": ["reviewer"], "subject": "dave"}),
    )
    .await;
    // And a token that never held it, but may act as its agent.
    let (_, could_run) = mint(
        &app,
        json!({"name": "could-run", "roles": ["agent", "reviewer"], "agent_ids": ["solo-*"], "subject": "frank"}),
    )
    .await;
    let mut solo = Stream::agent(&app, &dual, "solo-agent").await;
    let exec = start(&app, &team, "solo-agent").await;
    solo.next("execution.assigned").await;
    let r = post(
        &app,
        &dual,
        "/v0/agents/intent",
        json!({"execution_id": exec, "type": "invoke_tool", "tool": "payments.refund", "remote": false,
            "arguments": {"amount": 900}}),
    )
    .await;
    assert_eq!(r.body["outcome"], "require_approval", "{}", r.body);
    let step = r.body["step"].clone();
    let before = snapshot(&app, &team, &exec).await;
    for token in [&dual, &daves_reviewer, &could_run] {
        let r = review(&app, token, &exec, &step, "approve").await;
        assert_refused(&r, StatusCode::FORBIDDEN, "approval_by_actor");
    }
    assert_eq!(snapshot(&app, &team, &exec).await, before, "a refusal records nothing");
    let v = state_of(&app, &team, &exec).await;
    assert_eq!(v["steps"][0]["review"]["state"], "waiting");
    assert_eq!(v["steps"][0]["review"]["approvals"], 0);
    // Another person approves.
    let r = review(&app, &team.reviewer, &exec, &step, "approve").await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);

    // The subject that started an execution, through another token.
    let (_, erin_orchestrates) = mint(
        &app,
        json!({"name": "erin-orchestrates", "roles": ["orchestrator"], "subject": "erin"}),
    )
    .await;
    let (_, erin_reviews) = mint(
        &app,
        json!({"name": "erin-reviews", "roles": ["reviewer"], "subject": "erin"}),
    )
    .await;
    let mut agent = Stream::agent(&app, &team.agent, "claims-agent").await;
    let r = post(
        &app,
        &erin_orchestrates,
        "/v0/executions",
        json!({"agent_id": "claims-agent"}),
    )
    .await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.body);
    assert_eq!(r.body["initiator_subject"], "erin");
    let started = r.body["id"].as_str().unwrap().to_string();
    agent.next("execution.assigned").await;
    let r = invoke(&app, &team, &started, "payments.refund", json!({"amount": 5})).await;
    let refund = r.body["step"].clone();
    let before = snapshot(&app, &team, &started).await;
    let r = review(&app, &erin_reviews, &started, &refund, "approve").await;
    assert_refused(&r, StatusCode::FORBIDDEN, "approval_by_initiator");
    assert_eq!(
        snapshot(&app, &team, &started).await,
        before,
        "a refusal records nothing"
    );

    // Two reviewers needed; two tokens of one subject count as one.
    let (_, alice_again) = mint(
        &app,
        json!({"name": "alice-laptop", "roles": ["reviewer"], "subject": "alice@example.com"}),
    )
    .await;
    let wire_exec = start(&app, &team, "claims-agent").await;
    agent.next("execution.assigned").await;
    let r = invoke(
        &app,
        &team,
        &wire_exec,
        "payments.wire",
        json!({"amount": 90000, "iban": "DE00"}),
    )
    .await;
    let wire = r.body["step"].clone();
    assert_eq!(wire["review"]["reviewers_required"], 2, "{}", r.body);
    let r = review(&app, &team.reviewer, &wire_exec, &wire, "approve").await;
    assert_eq!(r.body["review"]["approvals"], 1, "{}", r.body);
    let before = snapshot(&app, &team, &wire_exec).await;
    let r = review(&app, &alice_again, &wire_exec, &wire, "approve").await;
    assert_refused(&r, StatusCode::CONFLICT, "approval_reused");
    assert_eq!(
        snapshot(&app, &team, &wire_exec).await,
        before,
        "a refusal records nothing"
    );
    let pending = app
        .call(Method::GET, "/v0/approvals", Some(&team.reviewer2), None)
        .await;
    let waiting = pending.body["waiting"]
        .as_array()
        .unwrap()
        .iter()
        .find(|w| w["execution_id"] == wire_exec.as_str())
        .unwrap()
        .clone();
    assert_eq!(waiting["approved_subjects"], json!(["alice@example.com"]));
    assert_eq!(waiting["step"]["review"]["state"], "waiting");
    let r = review(&app, &team.reviewer2, &wire_exec, &wire, "approve").await;
    assert_eq!(r.body["review"]["state"], "approved", "{}", r.body);

    // Every verdict records its subject, in the history and the ledger.
    let h = check_evidence(&app, &team, &wire_exec).await;
    let subjects: Vec<&str> = h["entries"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|e| e["kind"] == "kernel.approval.recorded")
        .map(|e| e["payload"]["subject"].as_str().unwrap())
        .collect();
    assert_eq!(subjects, ["alice@example.com", "bob@example.com"]);
    app.stop().await;
}

async fn an_expired_token_is_refused_and_its_stream_ends(backend: Backend) {
    let (app, team) = kernel_app_with(backend, |c| c.auth.cache_ttl_ms = 300).await;
    for (body, why) in [
        (json!({"expires_at": "2001-01-01T00:00:00Z"}), "in the past"),
        (json!({"ttl_seconds": 0}), "no time at all"),
        (json!({"ttl_seconds": 60, "expires_at": "2999-01-01T00:00:00Z"}), "both"),
    ] {
        let mut body = body;
        body["name"] = "late".into();
        body["roles"] = json!(["agent"]);
        let r = app.call(Method::POST, "/v1/tokens", Some(&app.admin), Some(body)).await;
        assert_refused(&r, StatusCode::BAD_REQUEST, "invalid_field");
        assert!(r.body["detail"].as_str().is_some(), "{why}");
    }
    let (id, brief) = mint(&app, json!({"name": "brief", "roles": ["agent"], "ttl_seconds": 3})).await;
    let listed = app.call(Method::GET, "/v1/tokens", Some(&app.admin), None).await;
    let row = listed
        .body
        .as_array()
        .unwrap()
        .iter()
        .find(|t| t["id"] == id.as_str())
        .unwrap()
        .clone();
    assert!(row["expires_at"].as_str().is_some(), "{row}");
    let mut stream = Stream::agent(&app, &brief, "brief").await;
    let exec = start(&app, &team, "brief").await;
    stream.next("execution.assigned").await;

    // The stream ends at the expiry (within a check of it), and the
    // execution goes back to wait for its agent.
    assert!(
        stream.ends_within(Duration::from_secs(6)).await,
        "the expired token's stream stayed open"
    );
    wait_state(&app, &team, &exec, "pending").await;
    let before = snapshot(&app, &team, &exec).await;
    let r = post(
        &app,
        &brief,
        "/v0/agents/intent",
        json!({"execution_id": exec, "type": "complete"}),
    )
    .await;
    assert_refused(&r, StatusCode::UNAUTHORIZED, "token_expired");
    let r = refused_stream(&app, &brief, "/v0/agents/stream", None).await;
    assert_refused(&r, StatusCode::UNAUTHORIZED, "token_expired");
    assert_eq!(snapshot(&app, &team, &exec).await, before, "a refusal records nothing");
    assert_eq!(
        kinds(&before.0).last().unwrap(),
        "kernel.execution.released",
        "{}",
        before.0
    );
    app.stop().await;
}

async fn a_revoked_tokens_streams_close_at_once_where_it_was_revoked(backend: Backend) {
    // The longest cache: what closes the streams is the revocation itself,
    // not the periodic check of their tokens.
    let (app, team) = kernel_app_with(backend, |c| c.auth.cache_ttl_ms = 60_000).await;
    let (agent_id, doomed) = mint(&app, json!({"name": "doomed", "roles": ["agent"]})).await;
    let (runner_id, doomed_runner) = mint(&app, json!({"name": "doomed-runner", "roles": ["runner"]})).await;
    let mut agent = Stream::agent(&app, &doomed, "doomed").await;
    let mut runner = Stream::open(&app, &doomed_runner, "/v0/runners/stream?tools=echo", None).await;
    let exec = start(&app, &team, "doomed").await;
    agent.next("execution.assigned").await;

    // Revoked on the instance holding its streams: they close at once.
    for id in [&agent_id, &runner_id] {
        let r = app
            .call(Method::DELETE, &format!("/v1/tokens/{id}"), Some(&app.admin), None)
            .await;
        assert_eq!(r.status, StatusCode::NO_CONTENT);
    }
    assert!(
        agent.ends_within(Duration::from_secs(1)).await,
        "the agent stream stayed open"
    );
    assert!(
        runner.ends_within(Duration::from_secs(1)).await,
        "the runner stream stayed open"
    );
    wait_state(&app, &team, &exec, "pending").await;
    let before = snapshot(&app, &team, &exec).await;
    let r = post(
        &app,
        &doomed,
        "/v0/agents/intent",
        json!({"execution_id": exec, "type": "complete"}),
    )
    .await;
    assert_refused(&r, StatusCode::UNAUTHORIZED, "invalid_token");
    assert_eq!(snapshot(&app, &team, &exec).await, before, "a refusal records nothing");
    app.stop().await;
}

async fn a_revoked_tokens_stream_on_another_instance_closes_within_the_cache_time(backend: Backend) {
    let (app, _team) = kernel_app_with(backend, |c| c.auth.cache_ttl_ms = 1_000).await;
    let other = app.second_instance().await;
    let (elsewhere_id, elsewhere) = mint(&app, json!({"name": "elsewhere", "roles": ["agent"]})).await;
    let mut remote = Stream::agent(&other, &elsewhere, "elsewhere").await;
    let r = app
        .call(
            Method::DELETE,
            &format!("/v1/tokens/{elsewhere_id}"),
            Some(&app.admin),
            None,
        )
        .await;
    assert_eq!(r.status, StatusCode::NO_CONTENT);
    let revoked = tokio::time::Instant::now();
    assert!(
        remote.ends_within(Duration::from_millis(2_500)).await,
        "the stream on the other instance outlived auth.cache_ttl_ms"
    );
    // Past the cache's time, the other instance refuses the token too.
    tokio::time::sleep_until(revoked + Duration::from_millis(1_100)).await;
    let r = post(
        &other,
        &elsewhere,
        "/v0/agents/intent",
        json!({"execution_id": "exe_x", "type": "complete"}),
    )
    .await;
    assert_refused(&r, StatusCode::UNAUTHORIZED, "invalid_token");
    other.stop().await;
    app.stop().await;
}

/// A tenant holds at most `kernel.max_streams_per_tenant` streams on an
/// instance; another tenant's streams are not counted against it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_stream_cap_refuses_with_its_code_and_spares_other_tenants() {
    let (app, team) = kernel_app_with(Backend::Sqlite, |c| c.kernel.max_streams_per_tenant = 2).await;
    let agent = Stream::agent(&app, &team.agent, "claims-agent").await;
    let _runner = Stream::runner(&app, &team.runner, "r1", "echo", "").await;
    let r = refused_stream(&app, &team.agent, "/v0/agents/stream?agent_id=fetcher", None).await;
    assert_refused(&r, StatusCode::TOO_MANY_REQUESTS, "too_many_streams");
    let r = app
        .client
        .get(format!("{}/v0/agents/stream?agent_id=fetcher", app.base))
        .bearer_auth(&team.agent)
        .send()
        .await
        .unwrap();
    assert!(r.headers().contains_key("retry-after"));

    let other_admin = app.tenant("initech").await;
    let other_agent = app
        .token_with(&other_admin, json!({"name": "claims-agent", "roles": ["agent"]}))
        .await;
    let theirs = Stream::agent(&app, &other_agent, "claims-agent").await;
    let tenants = app.call(Method::GET, "/v1/tenants", Some(&app.admin), None).await;
    let initech = tenants
        .body
        .as_array()
        .unwrap()
        .iter()
        .find(|t| t["name"] == "initech")
        .unwrap()["id"]
        .as_str()
        .unwrap()
        .to_string();
    let to_theirs = warden::model::kernel::agent_recipient(&initech, "claims-agent");
    assert_eq!(
        stored_after(&app, &to_theirs, 0).await,
        [],
        "another tenant's stream of the same name carries nothing of this one's"
    );
    drop(theirs);

    // A stream closed frees its slot.
    drop(agent);
    for _ in 0..100 {
        let r = app
            .client
            .get(format!("{}/v0/agents/stream?agent_id=fetcher", app.base))
            .bearer_auth(&team.agent)
            .send()
            .await
            .unwrap();
        if r.status() == StatusCode::OK {
            app.stop().await;
            return;
        }
        assert_eq!(r.status(), StatusCode::TOO_MANY_REQUESTS);
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    panic!("the closed stream's slot was never freed");
}

/// Minting checks bindings and subjects with the kernel's naming rule, and
/// the listing and the ledger show them.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bindings_are_checked_at_minting_and_listed() {
    let app = spawn_app(Backend::Sqlite).await;
    for (body, field) in [
        (json!({"roles": ["agent"], "agent_ids": ["a b"]}), "agent_ids"),
        (json!({"roles": ["agent"], "agent_ids": ["*"]}), "agent_ids"),
        (json!({"roles": ["agent"], "agent_ids": ["a*b"]}), "agent_ids"),
        (json!({"roles": ["agent"], "agent_ids": ["warden.*"]}), "agent_ids"),
        (
            json!({"roles": ["auditor"], "agent_ids": ["claims-agent"]}),
            "agent_ids",
        ),
        (json!({"roles": ["agent"], "runner_ids": ["r1"]}), "runner_ids"),
        (json!({"roles": ["reviewer"], "subject": "token-name:alice"}), "subject"),
        (json!({"roles": ["reviewer"], "subject": ""}), "subject"),
    ] {
        let mut body = body;
        body["name"] = "t".into();
        let r = app
            .call(Method::POST, "/v1/tokens", Some(&app.admin), Some(body.clone()))
            .await;
        assert_refused(&r, StatusCode::BAD_REQUEST, "invalid_field");
        assert!(r.body["detail"].as_str().unwrap().contains(field), "{body}: {}", r.body);
    }
    let r = app
        .call(
            Method::POST,
            "/v1/tokens",
            Some(&app.admin),
            Some(
                json!({"name": "fleet", "roles": ["agent", "runner"], "agent_ids": ["claims-*", "triage"],
                "runner_ids": [], "subject": "svc:claims-fleet"}),
            ),
        )
        .await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.body);
    assert_eq!(r.body["agent_ids"], json!(["claims-*", "triage"]));
    assert_eq!(r.body["runner_ids"], json!([]));
    let fleet = r.body["id"].clone();
    let (_, bot) = mint(&app, json!({"name": "bot", "roles": ["agent"]})).await;
    let listed = app.call(Method::GET, "/v1/tokens", Some(&app.admin), None).await;
    let by_name = |name: &str| {
        listed
            .body
            .as_array()
            .unwrap()
            .iter()
            .find(|t| t["name"] == name)
            .unwrap()
            .clone()
    };
    let f = by_name("fleet");
    assert_eq!(
        (&f["subject"], &f["agent_ids"], &f["runner_ids"]),
        (&json!("svc:claims-fleet"), &json!(["claims-*", "triage"]), &json!([]))
    );
    assert!(f.get("expires_at").is_none());
    // Minted without a binding: its name, for the roles that act; the
    // default subject is prefixed so no chosen subject equals it.
    let b = by_name("bot");
    assert_eq!(
        (&b["subject"], &b["agent_ids"], &b["runner_ids"]),
        (&json!("token-name:bot"), &json!(["bot"]), &json!([]))
    );
    // The bot streams as itself by default, and as nothing else.
    Stream::open(&app, &bot, "/v0/agents/stream", None).await;
    let r = refused_stream(&app, &bot, "/v0/agents/stream?agent_id=bot2", None).await;
    assert_refused(&r, StatusCode::FORBIDDEN, "identity_not_bound");
    // The ledger's record of the minting carries the binding.
    let auditor = app.token(&app.admin, &["auditor"]).await;
    let export = app.call(Method::GET, "/v1/ledger/export", Some(&auditor), None).await;
    let minted = export
        .bytes
        .split(|b| *b == b'\n')
        .filter_map(|l| serde_json::from_slice::<Value>(l).ok())
        .find(|e| e["kind"] == "token.create" && e["payload"]["token_id"] == fleet)
        .expect("the minting is in the ledger");
    assert_eq!(minted["payload"]["agent_ids"], json!(["claims-*", "triage"]));
    assert_eq!(minted["payload"]["subject"], "svc:claims-fleet");
    app.stop().await;
}
