//! Workflow runs on the kernel, end to end: real agents on SSE streams
//! complete and fail the executions a run's `Task` states start, reviewers
//! decide its `HumanReview` states through the kernel's approvals, and
//! Warden restarts during a `Wait`, a review and a retry's back-off.

use std::time::Duration;

use reqwest::{Method, StatusCode};
use serde_json::{Value, json};

use crate::common::*;
use crate::kernel::{
    Peer, ProcessEnv, Remote, Stream, Team, check_evidence, exported_verified_and_fscked, intent, kernel_app_with,
    post, remote_team, state_of, stored_after, tenant_of,
};
use crate::on_both_backends;

on_both_backends!(every_state_type_runs, a_failing_branch_cancels_the_other_and_is_caught);

async fn run_app(backend: Backend) -> (TestApp, Team) {
    kernel_app_with(backend, |c| c.kernel.execution_timeout_secs = 600).await
}

async fn upload(app: &impl Peer, team: &Team, name: &str, yaml: &str) {
    // As JSON: the same definition as the YAML, the same version.
    let definition: Value = yaml_serde::from_str(yaml).unwrap();
    let r = app
        .call(
            Method::PUT,
            &format!("/v1/workflows/{name}"),
            Some(&team.orchestrator),
            Some(definition),
        )
        .await;
    assert!(r.status.is_success(), "{}", r.body);
}

async fn start_run(app: &impl Peer, team: &Team, name: &str, input: Value) -> String {
    let r = post(
        app,
        &team.orchestrator,
        &format!("/v1/workflows/{name}/runs"),
        json!({"input": input, "organisation": "claims"}),
    )
    .await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.body);
    assert!(
        !r.body["receipts"].as_array().unwrap().is_empty(),
        "the start is in the ledger"
    );
    r.body["id"].as_str().unwrap().to_string()
}

async fn run_of(app: &impl Peer, team: &Team, id: &str) -> Value {
    let r = app
        .call(
            Method::GET,
            &format!("/v1/workflow-runs/{id}"),
            Some(&team.auditor),
            None,
        )
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    r.body
}

/// Polls until the run has `status`.
async fn wait_run(app: &impl Peer, team: &Team, id: &str, status: &str) -> Value {
    for _ in 0..300 {
        let v = run_of(app, team, id).await;
        if v["status"] == status {
            return v;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    panic!("run {id} never became {status}: {}", run_of(app, team, id).await);
}

/// Polls until `check` holds of the run.
async fn wait_for(app: &impl Peer, team: &Team, id: &str, what: &str, check: impl Fn(&Value) -> bool) -> Value {
    for _ in 0..300 {
        let v = run_of(app, team, id).await;
        if check(&v) {
            return v;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    panic!("run {id}: {what} never held: {}", run_of(app, team, id).await);
}

async fn history_kinds(app: &impl Peer, team: &Team, id: &str) -> Vec<(String, Value)> {
    let r = app
        .call(
            Method::GET,
            &format!("/v1/workflow-runs/{id}/history"),
            Some(&team.auditor),
            None,
        )
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    r.body
        .as_array()
        .unwrap()
        .iter()
        .map(|e| (e["kind"].as_str().unwrap().to_string(), e["payload"].clone()))
        .collect()
}

/// The next execution given to this agent: (execution id, input, context).
async fn assigned(agent: &mut Stream) -> (String, Value, Value) {
    let ev = agent.next("execution.assigned").await;
    (
        ev.data["execution_id"].as_str().unwrap().to_string(),
        ev.data["input"].clone(),
        ev.data["context"].clone(),
    )
}

async fn complete(app: &impl Peer, team: &Team, exec: &str, output: Value) {
    let r = intent(app, team, exec, json!({"type": "complete", "output": output})).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
}

async fn fail(app: &impl Peer, team: &Team, exec: &str, error: &str) {
    let r = intent(
        app,
        team,
        exec,
        json!({"type": "fail", "error": {"error": error, "cause": "the tool said so"}}),
    )
    .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
}

/// The review gate of a run waiting in a `HumanReview` state, as the
/// reviewers' list shows it: (execution id, step).
async fn gate(app: &impl Peer, team: &Team, run: &str) -> (String, Value) {
    for _ in 0..300 {
        let r = app.call(Method::GET, "/v0/approvals", Some(&team.reviewer), None).await;
        assert_eq!(r.status, StatusCode::OK, "{}", r.body);
        if let Some(p) = r.body["waiting"]
            .as_array()
            .unwrap()
            .iter()
            .find(|p| p["step"]["arguments"]["run_id"] == run)
        {
            // The gate names its run, as the console links it.
            assert_eq!(p["workflow_run"], run, "{p}");
            return (p["execution_id"].as_str().unwrap().to_string(), p["step"].clone());
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    panic!("no review gate for run {run}");
}

async fn decide(app: &impl Peer, token: &str, exec: &str, step: &Value, decision: &str) -> Reply {
    post(
        app,
        token,
        &format!("/v0/executions/{exec}/approvals"),
        json!({"step_id": step["id"], "decision": decision, "reason": "looked at the claim",
            "args_hash": step["args_hash"]}),
    )
    .await
}

const EVERY_STATE: &str = r#"
apiVersion: agentrc.workflow/v0.1
kind: AgentWorkflow
metadata:
  name: every-state
spec:
  startAt: Prepare
  states:
    Prepare:
      type: Pass
      parameters:
        claim.$: $.claim
        channel: web
      next: Triage
    Triage:
      type: Task
      agent: ghcr.io/bank/claims-triage@sha256:0d1f
      inputPath: $.claim
      resultPath: $.triage
      next: Route
    Route:
      type: Choice
      choices:
        - variable: $.triage.risk
          stringEquals: high
          next: Checks
      default: AutoApprove
    Checks:
      type: Parallel
      resultPath: $.checks
      branches:
        - startAt: Fraud
          states:
            Fraud:
              type: Task
              agent: fraud-check
              end: true
        - startAt: CoolOff
          states:
            CoolOff:
              type: Wait
              seconds: 1
              next: Sanctions
            Sanctions:
              type: Task
              agent: sanctions-check
              end: true
      next: Review
    Review:
      type: HumanReview
      reviewers: 1
      timeoutSeconds: 60
      prompt: pay out a high-risk claim?
      resultPath: $.review
      next: Done
    AutoApprove:
      type: Pass
      result:
        approved: true
        auto: true
      resultPath: $.review
      next: Done
    Done:
      type: Succeed
"#;

/// Every state type on both paths of a `Choice` (its default included);
/// the run's history, the kernel's and the ledger agree.
async fn every_state_type_runs(backend: Backend) {
    let (app, team) = run_app(backend).await;
    upload(&app, &team, "every-state", EVERY_STATE).await;
    let mut triage = Stream::agent(&app, &team.agent, "ghcr.io/bank/claims-triage@sha256:0d1f").await;
    let mut fraud = Stream::agent(&app, &team.agent, "fraud-check").await;
    let mut sanctions = Stream::agent(&app, &team.agent, "sanctions-check").await;

    let run = start_run(
        &app,
        &team,
        "every-state",
        json!({"claim": {"id": "C-1", "amount": 900}}),
    )
    .await;
    let (exec, input, context) = assigned(&mut triage).await;
    assert_eq!(
        input,
        json!({"id": "C-1", "amount": 900}),
        "inputPath selected the claim"
    );
    assert_eq!(context["workflow"]["run_id"], run);
    assert_eq!(context["workflow"]["state"], "Triage");
    assert_eq!(context["organisation"], "claims");
    // The agent may use tools under the kernel policy while it works.
    let r = crate::kernel::invoke(&app, &team, &exec, "search.web", json!({"q": "claim C-1"})).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    let step = r.body["step"]["id"].as_str().unwrap().to_string();
    assert_eq!(triage.next("step.assigned").await.data["step_id"], step.as_str());
    let r = post(
        &app,
        &team.agent,
        "/v0/agents/step-result",
        json!({"step_id": step, "status": "succeeded", "output": {"hits": 0}}),
    )
    .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    assert_eq!(triage.next("step.result").await.data["step_id"], step.as_str());
    complete(&app, &team, &exec, json!({"risk": "high"})).await;
    let triage_exec = exec;

    // Parallel: the fraud branch at once, the sanctions branch after its Wait.
    let (exec, input, _) = assigned(&mut fraud).await;
    assert_eq!(input["triage"]["risk"], "high");
    complete(&app, &team, &exec, json!({"fraud": false})).await;
    let (exec, _, _) = assigned(&mut sanctions).await;
    complete(&app, &team, &exec, json!({"hit": false})).await;

    // The HumanReview state is a review gate on the kernel's approvals.
    let (gate_exec, step) = gate(&app, &team, &run).await;
    assert_eq!(step["reasons"], json!(["pay out a high-risk claim?"]));
    assert_eq!(step["review"]["reviewers_required"], 1);
    let r = decide(&app, &team.reviewer, &gate_exec, &step, "approve").await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);

    let done = wait_run(&app, &team, &run, "succeeded").await;
    let out = &done["output"];
    assert_eq!(out["channel"], "web");
    assert_eq!(out["triage"], json!({"risk": "high"}));
    assert_eq!(out["checks"], json!([{"fraud": false}, {"hit": false}]));
    assert_eq!(out["review"]["approved"], true);
    assert_eq!(out["review"]["reviewers"].as_array().unwrap().len(), 1);

    let history = history_kinds(&app, &team, &run).await;
    let entered: Vec<&str> = history
        .iter()
        .filter(|(k, _)| k == "workflow.state.entered")
        .map(|(_, p)| p["type"].as_str().unwrap())
        .collect();
    for t in ["Pass", "Task", "Choice", "Parallel", "Wait", "HumanReview", "Succeed"] {
        assert!(entered.contains(&t), "{t} entered: {entered:?}");
    }
    assert_eq!(history.first().unwrap().0, "workflow.run.started");
    assert_eq!(history.last().unwrap().0, "workflow.run.succeeded");
    let seqs: Vec<u64> = history.iter().map(|(_, p)| p["seq"].as_u64().unwrap()).collect();
    assert_eq!(
        seqs,
        (1..=seqs.len() as u64).collect::<Vec<_>>(),
        "entries numbered in order"
    );
    check_evidence(&app, &team, &triage_exec).await;
    check_evidence(&app, &team, &gate_exec).await;

    // The audit feed carries the run's transitions in the published shape.
    let feed = app
        .call(Method::GET, "/v1/audit/events?limit=5000", Some(&team.auditor), None)
        .await;
    let run_events: Vec<&Value> = feed.body["events"]
        .as_array()
        .unwrap()
        .iter()
        .map(|i| &i["event"])
        .filter(|e| e["workflow_id"] == run.as_str())
        .collect();
    assert_eq!(run_events.len(), history.len(), "one audit event per run entry");
    assert!(run_events.iter().all(|e| warden::audit::conforms(e)), "{run_events:?}");

    // The Choice's default: low risk skips the checks and the review.
    let run = start_run(&app, &team, "every-state", json!({"claim": {"id": "C-2"}})).await;
    let (exec, _, _) = assigned(&mut triage).await;
    complete(&app, &team, &exec, json!({"risk": "low"})).await;
    let done = wait_run(&app, &team, &run, "succeeded").await;
    assert_eq!(done["output"]["review"], json!({"approved": true, "auto": true}));
    let to_fraud = warden::model::kernel::agent_recipient(&tenant_of(&app, &exec).await, "fraud-check");
    assert_eq!(
        stored_after(&app, &to_fraud, fraud.last_id()).await,
        [],
        "the fraud check was skipped"
    );

    let metrics = app.call(Method::GET, "/metrics", Some(&team.auditor), None).await;
    let text = String::from_utf8_lossy(&metrics.bytes);
    assert!(
        text.contains("warden_workflow_entries_total{kind=\"workflow.run.succeeded\"} 2"),
        "{text}"
    );
}

const RETRIED: &str = r#"
apiVersion: agentrc.workflow/v0.1
kind: AgentWorkflow
metadata:
  name: retried
spec:
  startAt: Fetch
  states:
    Fetch:
      type: Task
      agent: fetcher
      retry:
        - errorEquals: [Tool.TemporaryFailure]
          intervalSeconds: 2
          maxAttempts: 1
      catch:
        - errorEquals: [States.ALL]
          resultPath: $.error
          next: Escalate
      next: Done
    Escalate:
      type: Pass
      result: escalated
      resultPath: $.outcome
      end: true
    Done:
      type: Succeed
"#;

on_both_backends!(a_retry_survives_a_restart_during_its_back_off);

/// Fails once, Warden restarts during the back-off, the retry succeeds.
async fn a_retry_survives_a_restart_during_its_back_off(backend: Backend) {
    let (app, team) = run_app(backend).await;
    upload(&app, &team, "retried", RETRIED).await;
    let mut agent = Stream::agent(&app, &team.agent, "fetcher").await;
    let run = start_run(&app, &team, "retried", json!({"url": "u"})).await;
    let (exec, _, _) = assigned(&mut agent).await;
    fail(&app, &team, &exec, "Tool.TemporaryFailure").await;
    let v = wait_for(&app, &team, &run, "retrying", |v| v["position"]["phase"] == "retrying").await;
    assert!(v["wake_at"].is_string());
    drop(agent);

    let app = app.restart().await;
    let mut agent = Stream::agent(&app, &team.agent, "fetcher").await;
    let (second, input, _) = assigned(&mut agent).await;
    assert_ne!(second, exec, "a retry is a new execution");
    assert_eq!(input, json!({"url": "u"}));
    complete(&app, &team, &second, json!({"body": "ok"})).await;
    let done = wait_run(&app, &team, &run, "succeeded").await;
    assert_eq!(done["output"], json!({"body": "ok"}));
    let kinds: Vec<String> = history_kinds(&app, &team, &run)
        .await
        .into_iter()
        .map(|(k, _)| k)
        .collect();
    assert_eq!(kinds.iter().filter(|k| *k == "workflow.state.retrying").count(), 1);
}

on_both_backends!(retries_spent_and_time_outs_are_caught);

async fn retries_spent_and_time_outs_are_caught(backend: Backend) {
    let (app, team) = run_app(backend).await;
    let fast = RETRIED.replace("intervalSeconds: 2", "intervalSeconds: 1");
    upload(&app, &team, "retried", &fast).await;
    let mut agent = Stream::agent(&app, &team.agent, "fetcher").await;
    let run = start_run(&app, &team, "retried", json!({"url": "u"})).await;
    for _ in 0..2 {
        let (exec, _, _) = assigned(&mut agent).await;
        fail(&app, &team, &exec, "Tool.TemporaryFailure").await;
    }
    let done = wait_run(&app, &team, &run, "succeeded").await;
    assert_eq!(
        done["output"],
        json!({"url": "u", "outcome": "escalated",
            "error": {"error": "Tool.TemporaryFailure", "cause": "the tool said so"}})
    );

    // A task whose agent never answers times out: `States.Timeout`.
    let timed = fast
        .replace("name: retried", "name: timed")
        .replace("agent: fetcher", "agent: nobody\n      timeoutSeconds: 1");
    upload(&app, &team, "timed", &timed).await;
    let run = start_run(&app, &team, "timed", json!({})).await;
    let done = wait_run(&app, &team, &run, "succeeded").await;
    assert_eq!(done["output"]["error"]["error"], "States.Timeout", "{done}");
}

const PARALLEL_FAILS: &str = r#"
apiVersion: agentrc.workflow/v0.1
kind: AgentWorkflow
metadata:
  name: parallel-fails
spec:
  startAt: Both
  states:
    Both:
      type: Parallel
      branches:
        - startAt: Slow
          states:
            Slow:
              type: Task
              agent: slow-agent
              end: true
        - startAt: Broken
          states:
            Broken:
              type: Task
              agent: broken-agent
              end: true
      catch:
        - errorEquals: [States.BranchFailed]
          resultPath: $.failure
          next: Recovered
      end: true
    Recovered:
      type: Succeed
"#;

async fn a_failing_branch_cancels_the_other_and_is_caught(backend: Backend) {
    let (app, team) = run_app(backend).await;
    upload(&app, &team, "parallel-fails", PARALLEL_FAILS).await;
    let mut slow = Stream::agent(&app, &team.agent, "slow-agent").await;
    let mut broken = Stream::agent(&app, &team.agent, "broken-agent").await;
    let run = start_run(&app, &team, "parallel-fails", json!({"k": 1})).await;
    let (slow_exec, _, _) = assigned(&mut slow).await;
    let (exec, _, _) = assigned(&mut broken).await;
    fail(&app, &team, &exec, "Vendor.Down").await;
    let done = wait_run(&app, &team, &run, "succeeded").await;
    assert_eq!(done["output"]["failure"]["error"], "Vendor.Down");
    // The other branch's execution is cancelled, and its agent told.
    let ev = slow.next("execution.cancelled").await;
    assert_eq!(ev.data["execution_id"], slow_exec);
    assert_eq!(state_of(&app, &team, &slow_exec).await["state"], "cancelled");
    let kinds: Vec<String> = history_kinds(&app, &team, &run)
        .await
        .into_iter()
        .map(|(k, _)| k)
        .collect();
    assert!(kinds.contains(&"workflow.branch.failed".to_string()), "{kinds:?}");
}

const REVIEWED: &str = r#"
apiVersion: agentrc.workflow/v0.1
kind: AgentWorkflow
metadata:
  name: reviewed
spec:
  startAt: Review
  states:
    Review:
      type: HumanReview
      reviewers: 2
      timeoutSeconds: 120
      resultPath: $.review
      catch:
        - errorEquals: [States.Rejected]
          resultPath: $.rejection
          next: Rejected
      next: Paid
    Paid:
      type: Succeed
    Rejected:
      type: Fail
      error: Claim.Rejected
      cause: a reviewer rejected the payout
"#;

on_both_backends!(human_review_survives_a_restart_and_needs_two_people);

async fn human_review_survives_a_restart_and_needs_two_people(backend: Backend) {
    let (app, team) = run_app(backend).await;
    upload(&app, &team, "reviewed", REVIEWED).await;
    let run = start_run(&app, &team, "reviewed", json!({"amount": 5000})).await;
    let (exec, step) = gate(&app, &team, &run).await;
    assert_eq!(step["arguments"]["input"], json!({"amount": 5000}));
    // The token that started the run may not review it, nor may anyone
    // review arguments other than those shown.
    let both = app.token(&app.admin, &["orchestrator", "reviewer"]).await;
    let r = post(
        &app,
        &both,
        "/v1/workflows/reviewed/runs",
        json!({"input": {"amount": 1}}),
    )
    .await;
    let own = r.body["id"].as_str().unwrap().to_string();
    let (own_exec, own_step) = gate(&app, &team, &own).await;
    assert_eq!(
        decide(&app, &both, &own_exec, &own_step, "approve").await.code(),
        "approval_by_initiator"
    );
    let mut forged = step.clone();
    forged["args_hash"] = json!("00");
    assert_eq!(
        decide(&app, &team.reviewer, &exec, &forged, "approve").await.code(),
        "approval_arguments_mismatch"
    );

    let r = decide(&app, &team.reviewer, &exec, &step, "approve").await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    let app = app.restart().await;
    assert_eq!(
        run_of(&app, &team, &run).await["status"],
        "running",
        "one approval of two"
    );
    let r = decide(&app, &team.reviewer2, &exec, &step, "approve").await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    let done = wait_run(&app, &team, &run, "succeeded").await;
    assert_eq!(done["output"]["review"]["reviewers"].as_array().unwrap().len(), 2);

    // Rejected, after a restart: caught, then the Fail state.
    let app = app.restart().await;
    let r = decide(&app, &team.reviewer, &own_exec, &own_step, "reject").await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    let done = wait_run(&app, &team, &own, "failed").await;
    assert_eq!(
        done["output"],
        json!({"error": "Claim.Rejected", "cause": "a reviewer rejected the payout"})
    );
    let history = history_kinds(&app, &team, &own).await;
    let caught = history.iter().find(|(k, _)| k == "workflow.state.caught").unwrap();
    assert_eq!(caught.1["error"], "States.Rejected");
}

const WAITS: &str = r#"
apiVersion: agentrc.workflow/v0.1
kind: AgentWorkflow
metadata:
  name: waits
spec:
  startAt: Sleep
  states:
    Sleep:
      type: Wait
      seconds: 2
      next: Done
    Done:
      type: Succeed
"#;

on_both_backends!(a_stale_run_in_a_batch_is_refused_alone);

/// Runs' rows moved together in one batch: the writer writes them in one
/// statement, and when one was read at a version that has moved on, the
/// batch is written again change by change: that one is refused with
/// nothing of it written, the others commit.
async fn a_stale_run_in_a_batch_is_refused_alone(backend: Backend) {
    use warden::ledger::{AppendError, Record};
    let (app, team) = run_app(backend).await;
    let sleeps = WAITS
        .replace("seconds: 2", "seconds: 3600")
        .replace("name: waits", "name: sleeps");
    upload(&app, &team, "sleeps", &sleeps).await;
    let mut rows = Vec::new();
    for n in 0..3 {
        let id = start_run(&app, &team, "sleeps", json!({"n": n})).await;
        rows.push(app.state.store.workflow_run(&id).await.unwrap().unwrap());
    }
    let stale = 1;
    let changes = rows.iter().enumerate().map(|(i, row)| {
        let mut moved = row.clone();
        moved.status = "cancelled".into();
        moved.wake_at = None;
        moved.version_no += 1;
        let read_at = if i == stale { row.version_no - 1 } else { row.version_no };
        let record = Record::new(
            &row.tenant_id,
            "workflow.run.cancelled",
            "system",
            &json!({"run": row.id}),
        );
        let change = warden::store::Change {
            run: Some((moved, Some(read_at))),
            ..Default::default()
        };
        app.state.ledger.append_with(vec![record], change)
    });
    let outcomes = futures_util::future::join_all(changes).await;
    for (i, (outcome, row)) in outcomes.iter().zip(&rows).enumerate() {
        let now = app.state.store.workflow_run(&row.id).await.unwrap().unwrap();
        if i == stale {
            assert!(
                matches!(outcome, Err(AppendError::Changed("workflow run"))),
                "{outcome:?}"
            );
            assert_eq!(now.status, row.status, "the stale change wrote nothing");
            assert_eq!(now.version_no, row.version_no);
        } else {
            assert!(outcome.is_ok(), "run {i}: {outcome:?}");
            assert_eq!(now.status, "cancelled");
            assert_eq!(now.version_no, row.version_no + 1);
            assert_eq!(now.wake_at, None);
        }
    }
}

on_both_backends!(a_wait_survives_a_restart);

async fn a_wait_survives_a_restart(backend: Backend) {
    let (app, team) = run_app(backend).await;
    upload(&app, &team, "waits", WAITS).await;
    let started = std::time::Instant::now();
    let run = start_run(&app, &team, "waits", json!({"n": 1})).await;
    let v = run_of(&app, &team, &run).await;
    assert_eq!(v["position"]["phase"], "waiting");
    let app = app.restart().await;
    let done = wait_run(&app, &team, &run, "succeeded").await;
    assert!(started.elapsed() >= Duration::from_secs(2), "it waited");
    assert_eq!(done["output"], json!({"n": 1}));
}

on_both_backends!(a_run_that_sleeps_from_its_start_wakes_on_time);

/// A run whose start ends in a `Wait` tells the engine, which otherwise
/// sleeps for up to 30 s when alone: the run goes on when its timer is due.
async fn a_run_that_sleeps_from_its_start_wakes_on_time(backend: Backend) {
    let (app, team) = run_app(backend).await;
    upload(&app, &team, "waits", WAITS).await;
    // The engine has passed and gone to sleep with nothing due.
    tokio::time::sleep(Duration::from_millis(300)).await;
    let started = std::time::Instant::now();
    let run = start_run(&app, &team, "waits", json!({"n": 2})).await;
    let done = wait_run(&app, &team, &run, "succeeded").await;
    let took = started.elapsed();
    assert!(took >= Duration::from_secs(2), "it waited: {took:?}");
    assert!(
        took < Duration::from_secs(8),
        "woken by its timer, not by the idle pass: {took:?}"
    );
    assert_eq!(done["output"], json!({"n": 2}));
}

on_both_backends!(runs_are_cancelled_and_bad_requests_refused);

async fn runs_are_cancelled_and_bad_requests_refused(backend: Backend) {
    let (app, team) = run_app(backend).await;
    upload(&app, &team, "retried", RETRIED).await;
    let mut agent = Stream::agent(&app, &team.agent, "fetcher").await;
    let run = start_run(&app, &team, "retried", json!({})).await;
    let (exec, _, _) = assigned(&mut agent).await;
    let r = post(
        &app,
        &team.orchestrator,
        &format!("/v1/workflow-runs/{run}/cancel"),
        json!({"reason": "claim withdrawn"}),
    )
    .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    assert_eq!(r.body["status"], "cancelled");
    assert_eq!(agent.next("execution.cancelled").await.data["execution_id"], exec);
    let r = post(
        &app,
        &team.orchestrator,
        &format!("/v1/workflow-runs/{run}/cancel"),
        json!({}),
    )
    .await;
    assert_eq!((r.status, r.code()), (StatusCode::CONFLICT, "run_not_running"));

    let r = post(&app, &team.orchestrator, "/v1/workflows/nope/runs", json!({})).await;
    assert_eq!((r.status, r.code()), (StatusCode::NOT_FOUND, "unknown_workflow"));
    let r = post(
        &app,
        &team.orchestrator,
        "/v1/workflows/retried/runs",
        json!({"version": 9}),
    )
    .await;
    assert_eq!(
        (r.status, r.code()),
        (StatusCode::NOT_FOUND, "unknown_workflow_version")
    );
    let r = post(
        &app,
        &team.orchestrator,
        "/v1/workflows/retried/runs",
        json!({"inputs": {}}),
    )
    .await;
    assert_eq!(r.status, StatusCode::BAD_REQUEST, "{}", r.body);
    let r = post(
        &app,
        &team.orchestrator,
        "/v1/workflows/retried/runs",
        json!({"team": ""}),
    )
    .await;
    assert_eq!((r.status, r.code()), (StatusCode::BAD_REQUEST, "invalid_run"));
    let r = app
        .call(Method::GET, "/v1/workflow-runs/run_nope", Some(&team.auditor), None)
        .await;
    assert_eq!((r.status, r.code()), (StatusCode::NOT_FOUND, "unknown_run"));
    // An agent may not start runs; another tenant cannot see this one.
    let r = post(&app, &team.agent, "/v1/workflows/retried/runs", json!({})).await;
    assert_eq!(r.status, StatusCode::FORBIDDEN);
    let other = app.tenant("other").await;
    let r = app
        .call(Method::GET, &format!("/v1/workflow-runs/{run}"), Some(&other), None)
        .await;
    assert_eq!((r.status, r.code()), (StatusCode::NOT_FOUND, "unknown_run"));
    let list = app
        .call(
            Method::GET,
            "/v1/workflow-runs?workflow=retried",
            Some(&team.auditor),
            None,
        )
        .await;
    assert_eq!(list.body.as_array().unwrap().len(), 1);

    // Review gates' agent id is Warden's: no definition, execution or
    // stream may take it.
    let gate_agent = RETRIED.replace("agent: fetcher", "agent: warden.review");
    let definition: Value = yaml_serde::from_str(&gate_agent).unwrap();
    let r = app
        .call(
            Method::PUT,
            "/v1/workflows/retried",
            Some(&team.orchestrator),
            Some(definition),
        )
        .await;
    assert_eq!(
        (r.status, r.code()),
        (StatusCode::UNPROCESSABLE_ENTITY, "invalid_value")
    );
    let r = post(
        &app,
        &team.orchestrator,
        "/v0/executions",
        json!({"agent_id": "warden.review"}),
    )
    .await;
    assert_eq!((r.status, r.code()), (StatusCode::BAD_REQUEST, "invalid_intent"));
    let r = app
        .call(
            Method::GET,
            "/v0/agents/stream?agent_id=warden.review",
            Some(&team.agent),
            None,
        )
        .await;
    assert_eq!((r.status, r.code()), (StatusCode::BAD_REQUEST, "invalid_stream"));
}

async fn register_skill(app: &TestApp, team: &Team, version: &str, connectors: &[&str]) {
    let manifest = json!({
        "id": "claims_triage", "version": version, "description": "scores a claim's risk",
        "allowed_connectors": connectors, "prompt_template": "Score the risk of {{claim}}.",
        "output_schema": {"type": "object", "required": ["risk"],
            "properties": {"risk": {"enum": ["low", "high"]}}},
        "rbac_scope": "claims.triage", "visibility": "published"
    });
    let r = app
        .raw(
            Method::PUT,
            &format!("/v1/skills/claims_triage/versions/{version}"),
            &team.orchestrator,
            "application/json",
            manifest.to_string().into_bytes(),
        )
        .await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.body);
}

const SKILLED: &str = r#"
apiVersion: agentrc.workflow/v0.1
kind: AgentWorkflow
metadata:
  name: perm-flow
spec:
  startAt: Triage
  states:
    Triage:
      type: Task
      agent: triage
      skill:
        id: claims_triage
        version: ^1
      end: true
"#;

on_both_backends!(a_skill_published_mid_run_is_for_new_runs_only);

/// A running run keeps the skill version it pinned; a run started after a
/// new version is published gets it; both pins are in the ledger; outputs
/// are checked against the pinned version's schema.
async fn a_skill_published_mid_run_is_for_new_runs_only(backend: Backend) {
    let (app, team) = run_app(backend).await;
    upload(&app, &team, "perm-flow", SKILLED).await;
    let r = post(&app, &team.orchestrator, "/v1/workflows/perm-flow/runs", json!({})).await;
    assert_eq!(
        (r.status, r.code()),
        (StatusCode::UNPROCESSABLE_ENTITY, "no_matching_skill")
    );
    assert!(
        r.body["detail"].as_str().unwrap().contains("claims_triage"),
        "{}",
        r.body
    );

    register_skill(&app, &team, "1.0.0", &["search"]).await;
    let mut agent = Stream::agent(&app, &team.agent, "triage").await;
    let first = start_run(&app, &team, "perm-flow", json!({})).await;
    let (first_exec, _, context) = assigned(&mut agent).await;
    assert_eq!(context["skill"]["version"], "1.0.0");
    assert_eq!(context["skill"]["allowed_connectors"], json!(["search"]));
    assert_eq!(context["skill"]["rbac_scope"], "claims.triage");

    register_skill(&app, &team, "1.1.0", &["search", "claims"]).await;
    let second = start_run(&app, &team, "perm-flow", json!({})).await;
    let (second_exec, _, context) = assigned(&mut agent).await;
    assert_eq!(
        context["skill"]["version"], "1.1.0",
        "a new version is for new runs at once"
    );

    complete(&app, &team, &first_exec, json!({"risk": "low"})).await;
    assert_eq!(
        wait_run(&app, &team, &first, "succeeded").await["output"],
        json!({"risk": "low"})
    );
    // An output the pinned schema refuses fails the task.
    complete(&app, &team, &second_exec, json!({"risk": 3})).await;
    let failed = wait_run(&app, &team, &second, "failed").await;
    assert_eq!(failed["output"]["error"], "States.ResultSchemaMismatch", "{failed}");
    assert!(
        failed["output"]["cause"].as_str().unwrap().contains("/risk"),
        "{failed}"
    );

    for (run, version) in [(&first, "1.0.0"), (&second, "1.1.0")] {
        let history = history_kinds(&app, &team, run).await;
        let (kind, started) = &history[0];
        assert_eq!(kind, "workflow.run.started");
        assert_eq!(started["context"]["skills"]["Triage"]["version"], version);
        assert!(started["context"]["skills"]["Triage"]["digest"].is_string());
    }
}

on_both_backends!(a_workflow_cannot_widen_what_its_organisation_allows);

/// The permission policy (`policies/rbac/`) is asked before the tool
/// policy: a workflow-level entry listing a connector its organisation does
/// not allow is narrowed away, and the skill's connectors narrow too.
async fn a_workflow_cannot_widen_what_its_organisation_allows(backend: Backend) {
    let (app, team) = run_app(backend).await;
    let rego = std::fs::read_to_string(repo_path("policies/rbac/rbac.rego")).unwrap();
    let data = json!({"warden": {"rbac": {
        "platform": {"connectors": ["search", "claims", "sharepoint"], "tools": ["*"], "actions": ["*"]},
        "organisations": {"claims": {"connectors": ["search", "claims"]}},
        "workflows": {"perm-flow": {"connectors": ["search", "sharepoint"]}}
    }}});
    let bundle = bundle_of(
        &[("rbac.rego", &rego), ("data.json", &data.to_string())],
        "1",
        &["warden/rbac"],
    );
    let r = app.upload(&app.admin, "rbac", bundle).await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.body);
    let r = app.activate(&app.admin, "rbac", "1").await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    upload(&app, &team, "perm-flow", SKILLED).await;
    register_skill(&app, &team, "1.0.0", &["search", "sharepoint"]).await;
    let mut agent = Stream::agent(&app, &team.agent, "triage").await;
    let run = start_run(&app, &team, "perm-flow", json!({})).await;
    let (exec, _, _) = assigned(&mut agent).await;

    // Allowed by every level, then by the tool policy.
    let r = crate::kernel::invoke(&app, &team, &exec, "search.web", json!({"q": "claim"})).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    assert_eq!(agent.next("step.assigned").await.data["tool"], "search.web");
    let step = r.body["step"]["id"].clone();
    let r = post(
        &app,
        &team.agent,
        "/v0/agents/step-result",
        json!({"step_id": step, "status": "succeeded", "output": {}}),
    )
    .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);

    // The workflow lists sharepoint; its organisation does not allow it.
    let r = crate::kernel::invoke(&app, &team, &exec, "sharepoint.document_read", json!({})).await;
    assert_eq!(
        (r.status, r.code()),
        (StatusCode::FORBIDDEN, "intent_denied"),
        "{}",
        r.body
    );
    let reasons = r.body["errors"].to_string();
    assert!(
        reasons.contains("organisation claims does not allow connector sharepoint"),
        "{reasons}"
    );
    // The permission decision is evidence, with what was narrowed away.
    let decision = r.body["errors"][0]["decision_id"].as_str().unwrap().to_string();
    let d = post(
        &app,
        &team.auditor,
        &format!("/v1/decisions/{decision}/replay"),
        json!({}),
    )
    .await;
    assert_eq!(d.status, StatusCode::OK, "{}", d.body);
    assert_eq!(d.body["match"], true, "the permission decision replays: {}", d.body);
    let narrowed = d.body["recorded"]["result"]["narrowed"].to_string();
    assert!(narrowed.contains("sharepoint"), "{}", d.body);

    // Claims: the organisation allows it, the skill (search, sharepoint) does not.
    let r = crate::kernel::invoke(&app, &team, &exec, "claims.lookup", json!({})).await;
    assert_eq!(r.code(), "intent_denied");
    assert!(r.body["errors"].to_string().contains("skill"), "{}", r.body);
    complete(&app, &team, &exec, json!({"risk": "low"})).await;
    wait_run(&app, &team, &run, "succeeded").await;
}

/// Seed 002's `claims-review-flow` as shipped in `examples/`, with its
/// agents (the `claims-review-agents` example) as a separate process.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_claims_review_example_runs_with_its_agents() {
    let (app, team) = run_app(Backend::Sqlite).await;
    let flow = std::fs::read_to_string(repo_path("examples/claims-review-flow/workflow.yaml")).unwrap();
    // Retries back off 2 s, then 4 s: shortened here.
    let flow = flow.replace("intervalSeconds: 2", "intervalSeconds: 1");
    upload(&app, &team, "claims-review-flow", &flow).await;
    let exe = std::env::current_exe().unwrap();
    let agents = exe
        .parent()
        .unwrap()
        .parent()
        .unwrap()
        .join("examples/claims-review-agents");
    let mut child = std::process::Command::new(&agents)
        .env("WARDEN_URL", &app.base)
        .env("WARDEN_AGENT_TOKEN", &team.agent)
        // Low: triage + approval; high: triage + review assistant;
        // vendor down: four failed triages + review assistant.
        .args(["--handle", "9"])
        .stdout(std::process::Stdio::null())
        .spawn()
        .unwrap_or_else(|e| {
            panic!(
                "{} (cargo test builds it; with a filter, `cargo build --example claims-review-agents` first): {e}",
                agents.display()
            )
        });
    let low = start_run(
        &app,
        &team,
        "claims-review-flow",
        json!({"claim": {"id": "C-1", "amount": 900}}),
    )
    .await;
    let high = start_run(
        &app,
        &team,
        "claims-review-flow",
        json!({"claim": {"id": "C-2", "amount": 25000}}),
    )
    .await;
    let down = start_run(
        &app,
        &team,
        "claims-review-flow",
        json!({"claim": {"id": "C-3", "amount": 10, "vendor_down": true}}),
    )
    .await;
    let low = wait_run(&app, &team, &low, "succeeded").await;
    assert_eq!(low["output"], json!({"approved": true, "by": "approval-agent"}));
    let high = wait_run(&app, &team, &high, "succeeded").await;
    assert_eq!(high["output"]["recommendation"], "review");
    let down = wait_run(&app, &team, &down, "succeeded").await;
    assert!(
        down["output"]["summary"].as_str().unwrap().contains("did not answer"),
        "retried three times, then caught: {down}"
    );
    let retries = history_kinds(&app, &team, down["id"].as_str().unwrap())
        .await
        .iter()
        .filter(|(k, _)| k == "workflow.state.retrying")
        .count();
    assert_eq!(retries, 3);
    let status = tokio::task::spawn_blocking(move || child.wait())
        .await
        .unwrap()
        .unwrap();
    assert!(status.success(), "the agents answered 9 executions and stopped");
}

/// A loop of `Pass` and `Choice` states that never ends is stopped at
/// `kernel.workflow_max_transitions`, in steps that never hold the engine.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_run_that_never_ends_is_stopped() {
    let (app, team) = kernel_app_with(Backend::Sqlite, |c| c.kernel.workflow_max_transitions = 2_500).await;
    let looping = r#"
apiVersion: agentrc.workflow/v0.1
kind: AgentWorkflow
metadata:
  name: forever
spec:
  startAt: A
  states:
    A:
      type: Pass
      next: B
    B:
      type: Choice
      choices:
        - variable: $.stop
          isPresent: true
          next: Done
      default: A
    Done:
      type: Succeed
"#;
    upload(&app, &team, "forever", looping).await;
    let run = start_run(&app, &team, "forever", json!({})).await;
    let done = wait_run(&app, &team, &run, "failed").await;
    assert_eq!(done["output"]["error"], "States.Runtime", "{done}");
    assert!(done["output"]["cause"].as_str().unwrap().contains("2500"), "{done}");
    assert!(
        (2_500..2_500 + 1_000).contains(&done["transitions"].as_i64().unwrap()),
        "{done}"
    );
}

const CRASHED: &str = r#"
apiVersion: agentrc.workflow/v0.1
kind: AgentWorkflow
metadata:
  name: crashed
spec:
  startAt: Triage
  states:
    Triage:
      type: Task
      agent: triage
      resultPath: $.triage
      retry:
        - errorEquals: [Tool.TemporaryFailure]
          intervalSeconds: 2
          maxAttempts: 1
      next: Review
    Review:
      type: HumanReview
      reviewers: 1
      timeoutSeconds: 300
      resultPath: $.review
      next: Nap
    Nap:
      type: Wait
      seconds: 1
      next: Done
    Done:
      type: Succeed
"#;

on_both_backends!(kill_9_in_the_middle_of_runs_loses_nothing);

/// kill -9 of the binary with one run waiting for review, one in a retry's
/// back-off and one whose task is running: after the restart each goes on
/// where it was, and the evidence verifies offline and passes fsck.
async fn kill_9_in_the_middle_of_runs_loses_nothing(backend: Backend) {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let env = ProcessEnv::of(backend).await;
    let mut server = crate::cli::start(&data, &env.pairs());
    let admin = server.bootstrap_token();
    let w = Remote::of(&server);
    let team = remote_team(&w, &admin).await;
    upload(&w, &team, "crashed", CRASHED).await;
    let mut agent = Stream::agent(&w, &team.agent, "triage").await;
    let reviewed = start_run(&w, &team, "crashed", json!({"claim": "A"})).await;
    let (exec, _, _) = assigned(&mut agent).await;
    complete(&w, &team, &exec, json!({"risk": "high"})).await;
    let (gate_exec, step) = gate(&w, &team, &reviewed).await;
    let retried = start_run(&w, &team, "crashed", json!({"claim": "B"})).await;
    let (exec, _, _) = assigned(&mut agent).await;
    fail(&w, &team, &exec, "Tool.TemporaryFailure").await;
    wait_for(&w, &team, &retried, "retrying", |v| {
        v["position"]["phase"] == "retrying"
    })
    .await;
    let running = start_run(&w, &team, "crashed", json!({"claim": "C"})).await;
    let (running_exec, _, _) = assigned(&mut agent).await;

    server.child.kill().unwrap();
    server.child.wait().unwrap();
    drop(agent);
    server = crate::cli::start(&data, &env.pairs());
    let w = Remote::of(&server);
    let mut agent = Stream::agent(&w, &team.agent, "triage").await;
    let r = decide(&w, &team.reviewer, &gate_exec, &step, "approve").await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    // The running task comes back to its agent, and the retry is due.
    let mut seen = Vec::new();
    for _ in 0..2 {
        let (exec, input, _) = assigned(&mut agent).await;
        seen.push(input["claim"].as_str().unwrap().to_string());
        if input["claim"] == "C" {
            assert_eq!(exec, running_exec, "the same execution, given back");
        }
        complete(&w, &team, &exec, json!({"risk": "low"})).await;
    }
    seen.sort();
    assert_eq!(seen, ["B", "C"]);
    let r = wait_run(&w, &team, &reviewed, "succeeded").await;
    assert_eq!(r["output"]["review"]["approved"], true);
    for run in [&retried, &running] {
        let (gate_exec, step) = gate(&w, &team, run).await;
        let r = decide(&w, &team.reviewer2, &gate_exec, &step, "approve").await;
        assert_eq!(r.status, StatusCode::OK, "{}", r.body);
        wait_run(&w, &team, run, "succeeded").await;
    }
    let history = history_kinds(&w, &team, &retried).await;
    assert_eq!(
        history.iter().filter(|(k, _)| k == "workflow.state.retrying").count(),
        1
    );

    exported_verified_and_fscked(&w, &team, dir.path(), &data, &env, server).await;
}
