//! Holding under attack: workflow data that grows without bound, agents'
//! oversized outputs, forged event ids, scans and requests that would run
//! for ever, one tenant's backlog against another's work, and a background
//! task that fails.

use std::time::{Duration, Instant};

use reqwest::{Method, StatusCode};
use serde_json::{Value, json};
use sqlx::Connection;

use crate::common::*;
use crate::kernel::{Stream, Team, intent, kernel_app_with, post, stored_after, tenant_of};
use crate::on_both_backends;

on_both_backends!(
    a_self_nesting_loop_fails_within_the_limits_and_stays_failed,
    an_oversized_agent_output_fails_the_run_cleanly,
    a_client_cannot_take_an_event_id_of_the_servers,
    impact_scans_are_capped,
    a_backlog_in_one_tenant_does_not_delay_another_tenants_assignment,
    a_failing_background_task_is_restarted_counted_and_named,
    a_run_whose_position_cannot_be_read_is_failed_once,
);

mod request_time {
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn sqlite() {
        super::a_request_past_the_time_cap_answers_a_problem(crate::common::Backend::Sqlite).await
    }
}

/// `Pass` without `result`, `resultPath: $.a`, in a `Choice` loop: every
/// state nests the run's data one level deeper.
const SELF_NESTING: &str = r#"
apiVersion: agentrc.workflow/v0.1
kind: AgentWorkflow
metadata:
  name: nesting
spec:
  startAt: Nest
  states:
    Nest:
      type: Pass
      resultPath: $.a
      next: Again
    Again:
      type: Choice
      choices:
        - variable: $.stop
          isPresent: true
          next: Done
      default: Nest
    Done:
      type: Succeed
"#;

const ONE_TASK: &str = r#"
apiVersion: agentrc.workflow/v0.1
kind: AgentWorkflow
metadata:
  name: one-task
spec:
  startAt: Fetch
  states:
    Fetch:
      type: Task
      agent: fetcher
      resultPath: $.fetched
      retry:
        - errorEquals: [States.ALL]
          maxAttempts: 3
      catch:
        - errorEquals: [States.ALL]
          next: Caught
      end: true
    Caught:
      type: Succeed
"#;

async fn upload(app: &TestApp, token: &str, name: &str, yaml: &str) {
    let definition: Value = yaml_serde::from_str(yaml).unwrap();
    let r = app
        .call(
            Method::PUT,
            &format!("/v1/workflows/{name}"),
            Some(token),
            Some(definition),
        )
        .await;
    assert!(r.status.is_success(), "{}", r.body);
}

async fn start(app: &TestApp, token: &str, name: &str, input: Value) -> String {
    let r = post(
        app,
        token,
        &format!("/v1/workflows/{name}/runs"),
        json!({"input": input, "organisation": "claims"}),
    )
    .await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.body);
    r.body["id"].as_str().unwrap().to_string()
}

async fn run_of(app: &TestApp, token: &str, id: &str) -> Value {
    let r = app
        .call(Method::GET, &format!("/v1/workflow-runs/{id}"), Some(token), None)
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    r.body
}

async fn wait_ended(app: &TestApp, token: &str, id: &str) -> Value {
    for _ in 0..400 {
        let v = run_of(app, token, id).await;
        if v["status"] != "running" {
            return v;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    panic!("run {id} never ended: {}", run_of(app, token, id).await);
}

async fn history(app: &TestApp, token: &str, id: &str) -> Vec<Value> {
    let r = app
        .call(
            Method::GET,
            &format!("/v1/workflow-runs/{id}/history"),
            Some(token),
            None,
        )
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    r.body.as_array().unwrap().clone()
}

/// The whole ledger exports and verifies offline with the current key,
/// and `fsck` finds every log consistent.
async fn evidence_holds(app: &TestApp, auditor: &str) {
    let keys = app.call(Method::GET, "/v1/ledger/keys", Some(auditor), None).await;
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
    let key = warden::evidence::checkpoint::NoteVerifier::parse(&key).unwrap();
    let export = app.call(Method::GET, "/v1/ledger/export", Some(auditor), None).await;
    assert_eq!(export.status, StatusCode::OK);
    warden::evidence::verify::verify_export(std::io::Cursor::new(&export.bytes), &[key], &mut |_| {})
        .expect("the export verifies offline");
    let reports = warden::ledger::fsck::check(&app.state.store, &app.state.config.ledger.name, None, &mut |_| {})
        .await
        .unwrap();
    for r in reports {
        assert!(r.problems.is_empty(), "fsck: {:?}", r.problems);
    }
}

/// The loop fails with `States.DataLimitExceeded` once its data passes
/// `workflow.max_data_depth`, long before anything the store or the
/// ledger could not read back; the run answers 200; a restart does not
/// resume it; the evidence verifies and fscks clean.
async fn a_self_nesting_loop_fails_within_the_limits_and_stays_failed(backend: Backend) {
    let (app, team) = kernel_app_with(backend, |_| {}).await;
    upload(&app, &team.orchestrator, "nesting", SELF_NESTING).await;
    let id = start(&app, &team.orchestrator, "nesting", json!({"v": 1})).await;
    let run = wait_ended(&app, &team.auditor, &id).await;
    assert_eq!(run["status"], "failed", "{run}");
    assert_eq!(run["output"]["error"], "States.DataLimitExceeded", "{run}");
    let cause = run["output"]["cause"].as_str().unwrap();
    assert!(cause.contains("nested more than 64 levels"), "{cause}");
    assert!(run["transitions"].as_i64().unwrap() < 200, "{run}");
    let entries = history(&app, &team.auditor, &id).await;
    let last = entries.last().unwrap();
    assert_eq!(last["kind"], "workflow.run.failed");
    assert_eq!(last["payload"]["error"], "States.DataLimitExceeded");
    evidence_holds(&app, &team.auditor).await;

    // A restart finds nothing to resume: the run and its history stay put.
    let app = app.restart().await;
    engine_passed(&app, &team).await;
    let again = run_of(&app, &team.auditor, &id).await;
    assert_eq!(again["status"], "failed");
    assert_eq!(again["transitions"], run["transitions"]);
    assert_eq!(history(&app, &team.auditor, &id).await.len(), entries.len());
    let ready = app.call(Method::GET, "/health/ready", None, None).await;
    assert_eq!(ready.status, StatusCode::OK, "{}", ready.body);
    evidence_holds(&app, &team.auditor).await;
    app.stop().await;
}

/// An agent completes a run's task with an output past
/// `workflow.max_data_bytes`: the run fails with `States.DataLimitExceeded`
/// (its retriers and its `States.ALL` catcher do not take it), the output
/// is not copied into the run, and the server goes on serving.
async fn an_oversized_agent_output_fails_the_run_cleanly(backend: Backend) {
    let (app, team) = kernel_app_with(backend, |c| {
        c.workflow.max_data_bytes = 16 * 1024;
        c.kernel.execution_timeout_secs = 600;
    })
    .await;
    upload(&app, &team.orchestrator, "one-task", ONE_TASK).await;
    let mut agent = Stream::agent(&app, &team.agent, "fetcher").await;
    let id = start(&app, &team.orchestrator, "one-task", json!({"claim": "C-1"})).await;
    let ev = agent.next("execution.assigned").await;
    let exec = ev.data["execution_id"].as_str().unwrap().to_string();
    let big = json!({"pages": vec!["x".repeat(1_000); 40]});
    let r = intent(&app, &team, &exec, json!({"type": "complete", "output": big})).await;
    assert!(r.status.is_success(), "{}", r.body);
    let run = wait_ended(&app, &team.auditor, &id).await;
    assert_eq!(run["status"], "failed", "{run}");
    assert_eq!(run["output"]["error"], "States.DataLimitExceeded", "{run}");
    assert!(
        run["output"]["cause"]
            .as_str()
            .unwrap()
            .contains("more than 16384 bytes"),
        "{run}"
    );
    let to_agent = warden::model::kernel::agent_recipient(&tenant_of(&app, &exec).await, "fetcher");
    assert_eq!(
        stored_after(&app, &to_agent, agent.last_id()).await,
        [],
        "not retried: no second execution"
    );
    let kinds: Vec<String> = history(&app, &team.auditor, &id)
        .await
        .iter()
        .map(|e| e["kind"].as_str().unwrap().to_string())
        .collect();
    assert!(!kinds.contains(&"workflow.state.caught".to_string()), "{kinds:?}");
    assert!(!kinds.contains(&"workflow.state.retrying".to_string()), "{kinds:?}");

    // A run's input past the bound is refused before anything starts.
    let r = post(
        &app,
        &team.orchestrator,
        "/v1/workflows/one-task/runs",
        json!({"input": {"blob": "y".repeat(20_000)}}),
    )
    .await;
    assert_eq!(
        (r.status, r.code()),
        (StatusCode::PAYLOAD_TOO_LARGE, "run_input_too_large")
    );
    evidence_holds(&app, &team.auditor).await;
    app.stop().await;
}

/// An agent knows its execution id and can guess the number of the
/// kernel's next transition: submitting `evt_<execution>s<n>` first would
/// make receivers that deduplicate on `event_id` drop the genuine event.
/// The id is refused with its own code; the genuine event is delivered
/// with it, once.
async fn a_client_cannot_take_an_event_id_of_the_servers(backend: Backend) {
    let (app, team) = kernel_app_with(backend, |_| {}).await;
    let r = post(
        &app,
        &team.orchestrator,
        "/v0/executions",
        json!({"agent_id": "fetcher", "input": {}}),
    )
    .await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.body);
    let exec = r.body["id"].as_str().unwrap().to_string();
    let ulid = exec.trim_start_matches("exe_");
    let writer = app.token(&app.admin, &["agent", "orchestrator"]).await;
    let submit = |event_id: String| {
        let app = &app;
        let writer = writer.clone();
        async move {
            post(
                app,
                &writer,
                "/v1/audit/events",
                json!({"event_id": event_id, "timestamp": "2026-04-15T09:23:41.842Z",
                    "action": "execution.cancelled", "result": "success", "workflow_id": "forged"}),
            )
            .await
        }
    };
    for forged in [format!("evt_{ulid}s2"), format!("evt_{ulid}w1"), format!("evt_{ulid}")] {
        let r = submit(forged.clone()).await;
        assert_eq!(
            (r.status, r.code()),
            (StatusCode::UNPROCESSABLE_ENTITY, "event_id_reserved"),
            "{forged}: {}",
            r.body
        );
    }
    // Client ids of any other form are still the client's.
    let r = submit(format!("evt_{}", ulid.to_ascii_uppercase())).await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.body);

    // The kernel's own transition 2: the cancellation.
    let r = post(
        &app,
        &team.orchestrator,
        &format!("/v0/executions/{exec}/cancel"),
        json!({"reason": "test"}),
    )
    .await;
    assert!(r.status.is_success(), "{}", r.body);
    let feed = app
        .call(Method::GET, "/v1/audit/events?limit=5000", Some(&team.auditor), None)
        .await;
    assert_eq!(feed.status, StatusCode::OK);
    let events: Vec<&Value> = feed.body["events"]
        .as_array()
        .unwrap()
        .iter()
        .map(|i| &i["event"])
        .filter(|e| e["event_id"] == format!("evt_{ulid}s2"))
        .collect();
    assert_eq!(events.len(), 1, "{events:?}");
    assert_eq!(events[0]["workflow_id"], exec.as_str());
    assert_eq!(events[0]["action"], "execution.cancelled", "{}", events[0]);
    let submitted: Vec<&Value> = feed.body["events"]
        .as_array()
        .unwrap()
        .iter()
        .map(|i| &i["event"])
        .filter(|e| e["workflow_id"] == "forged")
        .collect();
    assert_eq!(submitted.len(), 1, "only the allowed id was recorded: {submitted:?}");
    assert_eq!(submitted[0]["event_id"], format!("evt_{}", ulid.to_ascii_uppercase()));
    app.stop().await;
}

/// `max_scan` above `limits.max_impact_scan` is refused with its code;
/// at the cap it is served, and without it the cap applies.
async fn impact_scans_are_capped(backend: Backend) {
    let app = spawn_with(
        backend,
        |c| c.limits.max_impact_scan = 3,
        warden::clock::Clock::system(),
    )
    .await;
    install_commissioning(&app, &app.admin, "2026.11.1").await;
    for _ in 0..5 {
        let r = app
            .decide(
                &app.admin,
                json!({"path": "agento/commissioning/routing", "input": ready_input()}),
            )
            .await;
        assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    }
    let ask = |max_scan: Option<u64>| {
        let mut body = json!({"bundle": "commissioning", "revision": "2026.11.1"});
        if let Some(m) = max_scan {
            body["max_scan"] = m.into();
        }
        app.call(Method::POST, "/v1/impact", Some(&app.admin), Some(body))
    };
    let r = ask(Some(1_000_000)).await;
    assert_eq!((r.status, r.code()), (StatusCode::BAD_REQUEST, "max_scan_too_large"));
    assert!(r.body["detail"].as_str().unwrap().contains("at most 3"), "{}", r.body);
    let r = ask(Some(3)).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    assert_eq!(r.body["considered"], 3);
    assert!(r.body["next_after"].is_u64(), "{}", r.body);
    let r = ask(None).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    assert_eq!(r.body["considered"], 3, "the cap is the default");
    app.stop().await;
}

/// A client that sends its headers and then never finishes its body holds
/// its request open: past `limits.request_timeout_ms` it gets a problem
/// document, and the server goes on; an agent stream outlives the cap.
async fn a_request_past_the_time_cap_answers_a_problem(backend: Backend) {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let (app, team) = kernel_app_with(backend, |c| c.limits.request_timeout_ms = 400).await;
    let mut stream = Stream::agent(&app, &team.agent, "fetcher").await;
    let addr = app.base.trim_start_matches("http://").to_string();
    let mut tcp = tokio::net::TcpStream::connect(&addr).await.unwrap();
    let head = format!(
        "POST /v1/audit/events HTTP/1.1\r\nHost: {addr}\r\nAuthorization: Bearer {}\r\n\
         Content-Type: application/json\r\nContent-Length: 1000\r\n\r\n{{\"action\":",
        team.orchestrator
    );
    let started = Instant::now();
    tcp.write_all(head.as_bytes()).await.unwrap();
    let mut answer = Vec::new();
    let mut buf = [0u8; 4096];
    while !String::from_utf8_lossy(&answer).contains("}") {
        let n = tokio::time::timeout(Duration::from_secs(5), tcp.read(&mut buf))
            .await
            .expect("an answer within 5 s")
            .unwrap();
        if n == 0 {
            break;
        }
        answer.extend_from_slice(&buf[..n]);
    }
    let elapsed = started.elapsed();
    let text = String::from_utf8_lossy(&answer);
    assert!(text.starts_with("HTTP/1.1 503"), "{text}");
    assert!(text.contains("application/problem+json"), "{text}");
    assert!(text.contains("\"code\":\"request_timeout\""), "{text}");
    assert!(
        elapsed >= Duration::from_millis(350) && elapsed < Duration::from_secs(3),
        "{elapsed:?}"
    );

    // The agent stream opened before is still open past the cap: a new
    // execution reaches it.
    let r = post(
        &app,
        &team.orchestrator,
        "/v0/executions",
        json!({"agent_id": "fetcher", "input": {}}),
    )
    .await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.body);
    stream.next("execution.assigned").await;
    let metrics = app.call(Method::GET, "/metrics", Some(&app.admin), None).await;
    let text = String::from_utf8_lossy(&metrics.bytes).to_string();
    assert!(text.contains("warden_request_timeouts_total 1"), "{text}");
    app.stop().await;
}

/// Tenant A has a thousand executions waiting for an agent that never
/// connects; tenant B's execution is taken by B's agent as soon as it
/// connects. (Taken oldest first across tenants, a thousand at a time,
/// B's would never have been reached.)
async fn a_backlog_in_one_tenant_does_not_delay_another_tenants_assignment(backend: Backend) {
    let app = spawn_with(
        backend,
        |c| {
            c.kernel.tick_ms = 50;
            c.shutdown_grace_secs = 1;
        },
        warden::clock::Clock::system(),
    )
    .await;
    let a = app.tenant("backlogged").await;
    let b = app.tenant("bystander").await;
    let a = std::sync::Arc::new(a);
    let mut creators = Vec::new();
    for worker in 0..16 {
        let (client, base, a) = (app.client.clone(), app.base.clone(), a.clone());
        creators.push(tokio::spawn(async move {
            let mut ids = Vec::new();
            for _ in (worker..1_050).step_by(16) {
                let res = client
                    .post(format!("{base}/v0/executions"))
                    .bearer_auth(a.as_str())
                    .json(&json!({"agent_id": "ghost", "input": {}}))
                    .send()
                    .await
                    .unwrap();
                assert_eq!(res.status(), StatusCode::CREATED);
                let body: Value = res.json().await.unwrap();
                ids.push(body["id"].as_str().unwrap().to_string());
            }
            ids
        }));
    }
    let mut backlog = Vec::new();
    for c in creators {
        backlog.extend(c.await.unwrap());
    }
    assert_eq!(backlog.len(), 1_050);
    let r = post(&app, &b, "/v0/executions", json!({"agent_id": "worker", "input": {}})).await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.body);
    let exec = r.body["id"].as_str().unwrap().to_string();
    let agent = app
        .token_with(
            &b,
            json!({"name": "worker", "roles": ["agent"], "agent_ids": ["worker"]}),
        )
        .await;
    let started = Instant::now();
    let mut stream = Stream::agent(&app, &agent, "worker").await;
    let ev = tokio::time::timeout(Duration::from_secs(3), stream.next("execution.assigned"))
        .await
        .expect("B's execution is assigned within 3 s despite A's backlog");
    assert_eq!(ev.data["execution_id"], exec.as_str());
    assert!(started.elapsed() < Duration::from_secs(3), "{:?}", started.elapsed());
    // A's backlog is still there, waiting for its own agent.
    for id in [&backlog[0], &backlog[1_049]] {
        let r = app
            .call(Method::GET, &format!("/v0/executions/{id}"), Some(&a), None)
            .await;
        assert_eq!(r.body["state"], "pending", "{}", r.body);
    }
    app.stop().await;
}

/// The store fails the kernel's timer pass (its steps table is away): the
/// task fails, is restarted with back-off, is counted in /metrics, and
/// readiness names it while it is down; once the table is back, the task
/// works again and the instance is ready.
async fn a_failing_background_task_is_restarted_counted_and_named(backend: Backend) {
    let (app, _team) = kernel_app_with(backend, |_| {}).await;
    let ready = app.call(Method::GET, "/health/ready", None, None).await;
    assert_eq!(ready.status, StatusCode::OK, "{}", ready.body);
    rename(&app, backend, "kernel_steps", "kernel_steps_away").await;
    let mut down = None;
    for _ in 0..100 {
        let r = app.call(Method::GET, "/health/ready", None, None).await;
        if r.status == StatusCode::SERVICE_UNAVAILABLE {
            down = Some(r);
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let down = down.expect("readiness says not ready while the timers are down");
    assert_eq!(down.code(), "task_down");
    assert!(
        down.body["detail"].as_str().unwrap().contains("kernel_timers"),
        "{}",
        down.body
    );
    assert_eq!(down.body["errors"][0]["task"], "kernel_timers", "{}", down.body);
    // Restarted again while the store still fails.
    let deadline = std::time::Instant::now() + Duration::from_secs(20);
    let text = loop {
        let metrics = app.call(Method::GET, "/metrics", Some(&app.admin), None).await;
        let text = String::from_utf8_lossy(&metrics.bytes).to_string();
        let restarts: u64 = text
            .lines()
            .find_map(|l| l.strip_prefix("warden_task_restarts_total{task=\"kernel_timers\"} "))
            .unwrap_or_else(|| panic!("no restart counter: {text}"))
            .parse()
            .unwrap();
        if restarts >= 2 {
            break text;
        }
        assert!(std::time::Instant::now() < deadline, "restarted once only: {restarts}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    assert!(text.contains("warden_tasks_down{task=\"kernel_timers\"} 1"), "{text}");

    rename(&app, backend, "kernel_steps_away", "kernel_steps").await;
    let mut back = false;
    for _ in 0..200 {
        let r = app.call(Method::GET, "/health/ready", None, None).await;
        if r.status == StatusCode::OK {
            back = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert!(back, "ready again once the timers work");
    app.stop().await;
}

const WAITING: &str = r#"
apiVersion: agentrc.workflow/v0.1
kind: AgentWorkflow
metadata:
  name: waiting
spec:
  startAt: Sleep
  states:
    Sleep:
      type: Wait
      seconds: 3600
      next: Done
    Done:
      type: Succeed
"#;

/// A run stored before positions were bounded, nested past what the
/// store's JSON reader accepts: it reads (200, the position as null), and
/// the engine fails it once, with an entry saying why, instead of trying
/// it again at every pass.
async fn a_run_whose_position_cannot_be_read_is_failed_once(backend: Backend) {
    let (app, team) = kernel_app_with(backend, |_| {}).await;
    upload(&app, &team.orchestrator, "waiting", WAITING).await;
    let id = start(&app, &team.orchestrator, "waiting", json!({"v": 1})).await;
    let deep = format!("{}{}", "[".repeat(200), "]".repeat(200));
    let sql = format!("UPDATE workflow_runs SET position = '{deep}', wake_at = 1 WHERE id = '{id}'");
    execute(&app, backend, &sql).await;
    let stored = run_of(&app, &team.auditor, &id).await;
    assert_eq!(stored["position"], Value::Null, "{stored}");
    app.state.workflows.wake.notify_one();
    let run = wait_ended(&app, &team.auditor, &id).await;
    assert_eq!(run["status"], "failed", "{run}");
    assert_eq!(run["output"]["error"], "States.Runtime", "{run}");
    let cause = run["output"]["cause"].as_str().unwrap();
    assert!(
        cause.contains("position cannot be read") && cause.contains("rather than retried"),
        "{cause}"
    );
    let entries = history(&app, &team.auditor, &id).await;
    let last = entries.last().unwrap();
    assert_eq!(last["kind"], "workflow.run.failed");
    assert_eq!(last["payload"]["cause"], cause);
    // Numbered after the run's earlier entries: its audit event id is new.
    let seqs: Vec<u64> = entries.iter().filter_map(|e| e["payload"]["seq"].as_u64()).collect();
    assert_eq!(seqs, (1..=seqs.len() as u64).collect::<Vec<_>>(), "{entries:?}");
    engine_passed(&app, &team).await;
    assert_eq!(
        history(&app, &team.auditor, &id).await.len(),
        entries.len(),
        "failed once"
    );
    evidence_holds(&app, &team.auditor).await;
    app.stop().await;
}

/// Waits until the workflow engine has made a pass after now: a run that
/// sleeps one second ends, woken by the engine. Whatever a pass would have
/// done to other runs has been done by then.
async fn engine_passed(app: &TestApp, team: &Team) {
    let marker = WAITING
        .replace("name: waiting", "name: marker")
        .replace("seconds: 3600", "seconds: 1");
    upload(app, &team.orchestrator, "marker", &marker).await;
    let id = start(app, &team.orchestrator, "marker", json!({})).await;
    let run = wait_ended(app, &team.auditor, &id).await;
    assert_eq!(run["status"], "succeeded", "{run}");
}

/// Runs one statement behind the server's back.
async fn execute(app: &TestApp, backend: Backend, sql: &str) {
    match backend {
        Backend::Sqlite => {
            let path = app.state.config.data_dir.join("warden.db");
            let mut c = sqlx::SqliteConnection::connect(&format!("sqlite://{}", path.display()))
                .await
                .unwrap();
            sqlx::query(sqlx::AssertSqlSafe(sql.to_string()))
                .execute(&mut c)
                .await
                .unwrap();
            c.close().await.unwrap();
        }
        Backend::Postgres => {
            let mut c = sqlx::PgConnection::connect(&app.state.config.database_url())
                .await
                .unwrap();
            sqlx::query(sqlx::AssertSqlSafe(sql.to_string()))
                .execute(&mut c)
                .await
                .unwrap();
            c.close().await.unwrap();
        }
    }
}

/// Renames a table behind the server's back: a store fault for whatever
/// reads it.
async fn rename(app: &TestApp, backend: Backend, from: &str, to: &str) {
    execute(app, backend, &format!("ALTER TABLE {from} RENAME TO {to}")).await;
}
