//! Several `warden` processes on one PostgreSQL database, as production
//! runs them behind a load balancer: one is killed with SIGKILL while it
//! holds work, and the others take it over within the documented time
//! without losing anything acknowledged. And an instance whose signing key
//! is not the store's refuses to start.

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use base64::Engine as _;
use reqwest::StatusCode;
use serde_json::{Value, json};
use sqlx::Connection;

use crate::cli::{BIN, Server, install, start};
use crate::common::*;
use crate::kernel::{
    Peer, Remote, Stream, check_evidence, intent, invoke, kernel_bundle, remote_team, verified_export,
};
use crate::peers::free_port;
use crate::peers::webhook::receiver;

/// How long a sink's lease lasts unless renewed (the README: another
/// instance takes over within 15 s of the holder dying).
const LEASE: Duration = Duration::from_secs(15);

/// The data directory of a further instance: the first one's signing key
/// (shared, as the README requires), nothing else.
fn sibling_of(first: &Path, dir: &Path) -> std::path::PathBuf {
    let data = dir.to_path_buf();
    std::fs::create_dir_all(data.join("keys")).unwrap();
    for f in std::fs::read_dir(first.join("keys")).unwrap() {
        let f = f.unwrap();
        std::fs::copy(f.path(), data.join("keys").join(f.file_name())).unwrap();
    }
    data
}

fn instance_id(data: &Path) -> String {
    std::fs::read_to_string(data.join("instance-id"))
        .unwrap()
        .trim()
        .to_string()
}

async fn lease_holder(db: &str) -> Option<String> {
    let mut conn = sqlx::PgConnection::connect(db).await.unwrap();
    sqlx::query_scalar("SELECT holder FROM sink_leases")
        .fetch_optional(&mut conn)
        .await
        .unwrap()
}

struct Caller {
    http: reqwest::Client,
    token: String,
}

impl Caller {
    async fn submit(&self, base: &str, label: &str, n: usize, attributes: Value) -> Vec<String> {
        let events: Vec<Value> = (0..n)
            .map(|i| {
                json!({"timestamp": warden::clock::rfc3339_ms(chrono::Utc::now().timestamp_millis()),
                    "workflow_id": format!("wf-{}", i % 3), "action": "document_read", "result": "success",
                    "activity_id": format!("{label}-{i}"), "attributes": attributes})
            })
            .collect();
        let r = self
            .http
            .post(format!("{base}/v1/audit/events"))
            .bearer_auth(&self.token)
            .json(&events)
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), StatusCode::CREATED);
        let body: Value = r.json().await.unwrap();
        body["events"]
            .as_array()
            .unwrap()
            .iter()
            .map(|e| e["event_id"].as_str().unwrap().to_string())
            .collect()
    }

    async fn sink(&self, base: &str) -> Value {
        let r = self
            .http
            .get(format!("{base}/v1/sinks"))
            .bearer_auth(&self.token)
            .send()
            .await
            .unwrap();
        let body: Value = r.json().await.unwrap();
        body[0].clone()
    }
}

/// The deliveries the webhook receiver accepted: (webhook-id, event id).
async fn accepted(peer: &str) -> Vec<(String, String)> {
    let got: Vec<Value> = reqwest::get(peer).await.unwrap().json().await.unwrap();
    got.iter()
        .map(|d| {
            (
                d["webhook_id"].as_str().unwrap_or_default().to_string(),
                d["event"]["event_id"].as_str().unwrap_or_default().to_string(),
            )
        })
        .collect()
}

async fn until_accepted(peer: &str, want: &BTreeSet<String>, wait: Duration) -> Vec<(String, String)> {
    let deadline = Instant::now() + wait;
    loop {
        let got = accepted(peer).await;
        let have: BTreeSet<String> = got.iter().map(|(_, e)| e.clone()).collect();
        if want.is_subset(&have) {
            return got;
        }
        let missing: Vec<&String> = want.difference(&have).collect();
        assert!(Instant::now() < deadline, "not delivered within {wait:?}: {missing:?}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// Two instances deliver one webhook sink. The lease holder is killed with
/// SIGKILL while it retries an event the peer keeps refusing with 503; the
/// other takes the lease over within its 15 s and delivers that event and
/// every one behind it. Nothing acknowledged is lost, events acknowledged
/// after the kill arrive exactly once, and duplicates, if any, are events
/// the killed holder was sending.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_killed_sink_lease_holder_is_taken_over_and_nothing_is_lost_on_postgres() {
    let db = fresh_postgres_database().await;
    let dir = tempfile::tempdir().unwrap();
    let secret = format!("whsec_{}", base64::engine::general_purpose::STANDARD.encode([9u8; 32]));
    let _peer = receiver(&secret, free_port());
    let peer_url = _peer.url.clone();
    let config = dir.path().join("warden.toml");
    std::fs::write(
        &config,
        format!("[[sinks]]\nname = \"siem\"\ntype = \"webhook\"\nurl = \"{peer_url}\"\nsecrets = [\"{secret}\"]\ntimeout_ms = 1000\n"),
    )
    .unwrap();
    let env = [
        ("WARDEN_CONFIG", config.to_str().unwrap()),
        ("WARDEN_DATABASE_URL", db.as_str()),
    ];
    let a_data = dir.path().join("a");
    let a = start(&a_data, &env);
    let admin = a.bootstrap_token();
    let b_data = sibling_of(&a_data, &dir.path().join("b"));
    let b = start(&b_data, &env);
    let http = reqwest::Client::new();
    let minted: Value = http
        .post(format!("{}/v1/tokens", a.base))
        .bearer_auth(&admin)
        .json(&json!({"name": "o", "roles": ["orchestrator", "auditor"]}))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let caller = Caller {
        http,
        token: minted["token"].as_str().unwrap().to_string(),
    };

    // Delivering, through whichever instance holds the lease.
    let mut acknowledged: BTreeSet<String> = caller
        .submit(&a.base, "first", 10, json!({}))
        .await
        .into_iter()
        .collect();
    acknowledged.extend(caller.submit(&b.base, "first-b", 10, json!({})).await);
    until_accepted(&peer_url, &acknowledged, Duration::from_secs(30)).await;
    // Delivered, and the cursor past them: never sent again.
    let settled = acknowledged.clone();
    let holder = lease_holder(&db).await.expect("a lease is held");
    let (ids, mut servers) = ([instance_id(&a_data), instance_id(&b_data)], [Some(a), Some(b)]);
    let held = ids
        .iter()
        .position(|id| *id == holder)
        .expect("the holder is one of the two");
    let survivor = servers[1 - held].take().unwrap();

    // Mid-delivery: the holder retries an event the peer refuses with 503,
    // with events acknowledged behind it on both instances.
    let killed_base = servers[held].as_ref().unwrap().base.clone();
    let stall = caller.submit(&killed_base, "stall", 1, json!({"respond": 503})).await;
    acknowledged.extend(stall.iter().cloned());
    acknowledged.extend(caller.submit(&killed_base, "behind", 10, json!({})).await);
    acknowledged.extend(caller.submit(&survivor.base, "behind-b", 10, json!({})).await);
    // The holder reports its own attempts.
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let s = caller.sink(&killed_base).await;
        if !s["last_error"].is_null() {
            break;
        }
        assert!(Instant::now() < deadline, "the holder never met the 503: {s}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    // What the holder may have been sending when it died: acknowledged
    // before the kill, not settled before.
    let in_flight: BTreeSet<String> = acknowledged.difference(&settled).cloned().collect();
    let mut killed: Server = servers[held].take().unwrap();
    killed.child.kill().unwrap();
    killed.child.wait().unwrap();
    let killed_at = Instant::now();
    reqwest::Client::new()
        .post(format!("{peer_url}control"))
        .body(json!({"accept_all": true}).to_string())
        .send()
        .await
        .unwrap();
    let after: BTreeSet<String> = caller
        .submit(&survivor.base, "after", 10, json!({}))
        .await
        .into_iter()
        .collect();
    acknowledged.extend(after.iter().cloned());

    // The survivor takes the lease over within its term and delivers all.
    let got = until_accepted(&peer_url, &acknowledged, LEASE + Duration::from_secs(15)).await;
    let took = killed_at.elapsed();
    eprintln!("after SIGKILL of the lease holder, every event was delivered in {took:?}");
    assert!(
        took < LEASE + Duration::from_secs(10),
        "taken over within the lease's 15 s (and delivered): {took:?}"
    );
    assert_eq!(lease_holder(&db).await.as_deref(), Some(ids[1 - held].as_str()));
    let mut counts: BTreeMap<&str, usize> = BTreeMap::new();
    for (webhook_id, event) in &got {
        assert_eq!(
            webhook_id, event,
            "receivers deduplicate on webhook-id: it is the event's id"
        );
        *counts.entry(event.as_str()).or_default() += 1;
    }
    for id in &after {
        assert_eq!(counts[id.as_str()], 1, "acknowledged after the kill: delivered once");
    }
    let duplicated: Vec<&str> = counts.iter().filter(|(_, n)| **n > 1).map(|(e, _)| *e).collect();
    eprintln!(
        "{} events, {} deliveries, {} duplicated",
        acknowledged.len(),
        got.len(),
        duplicated.len()
    );
    for id in &duplicated {
        assert!(
            in_flight.contains(*id),
            "{id} was sent twice, but the killed holder was not sending it"
        );
    }
    let s = caller.sink(&survivor.base).await;
    assert_eq!(s["dead_letters"], 0, "{s}");
    drop(survivor);
}

/// An agent's stream is on one instance, which is killed with SIGKILL while
/// it holds the agent's running execution; the agent reconnects to the
/// other.
/// Once the dead instance has been silent for 30 s the execution is given
/// back and assigned on the new stream, and it completes there with its
/// evidence whole.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn executions_of_a_killed_instance_are_handed_back_to_the_agent_on_another_on_postgres() {
    let db = fresh_postgres_database().await;
    let dir = tempfile::tempdir().unwrap();
    let env = [("WARDEN_DATABASE_URL", db.as_str()), ("WARDEN_KERNEL__TICK_MS", "50")];
    let a_data = dir.path().join("a");
    let mut a = start(&a_data, &env);
    let admin = a.bootstrap_token();
    let b = start(&sibling_of(&a_data, &dir.path().join("b")), &env);
    let (wa, wb) = (Remote::of(&a), Remote::of(&b));
    install(&wa.client, &wa.base, &admin, "kernel", kernel_bundle("1")).await;
    let team = remote_team(&wa, &admin).await;

    let mut agent = Stream::agent(&wa, &team.agent, "claims-agent").await;
    let exec = crate::kernel::start(&wb, &team, "claims-agent").await;
    assert_eq!(agent.next("execution.assigned").await.data["execution_id"], exec);

    a.child.kill().unwrap();
    a.child.wait().unwrap();
    let killed_at = Instant::now();
    drop(agent);
    let mut agent = Stream::agent(&wb, &team.agent, "claims-agent").await;
    // Silent after 30 s, seen at the next beat (every 5 s) of the survivor.
    let back = agent.next_within("execution.assigned", Duration::from_secs(60)).await;
    eprintln!("the execution was handed back {:?} after SIGKILL", killed_at.elapsed());
    assert_eq!(back.data["execution_id"], exec);
    assert!(
        killed_at.elapsed() < Duration::from_secs(45),
        "{:?}",
        killed_at.elapsed()
    );
    let r = intent(&wb, &team, &exec, json!({"type": "complete", "output": {"ok": true}})).await;
    assert_eq!(r.body["state"], "completed", "{}", r.body);
    let history = check_evidence(&wb, &team, &exec).await;
    let released = history["entries"]
        .as_array()
        .unwrap()
        .iter()
        .find(|e| e["kind"] == "kernel.execution.released")
        .expect("the hand-back is in the evidence");
    assert!(
        released["payload"]["reason"].as_str().unwrap().contains("stopped"),
        "{released}"
    );
    drop(b);
}

/// Two instances extend one tenant's log in turn. A commit that finds the
/// log's head moved by the other since its writer last extended it is
/// written again from the stored head (counted in
/// `warden_ledger_batch_retries_total{reason="log_head_moved"}`), and from
/// then on that writer reads the contended head with each batch instead of
/// trusting its cache, so it is not written twice again. Every event is
/// acknowledged and the log verifies as one chain.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_instances_extending_one_log_take_turns_and_count_it_on_postgres() {
    let db = fresh_postgres_database().await;
    let dir = tempfile::tempdir().unwrap();
    let env = [("WARDEN_DATABASE_URL", db.as_str())];
    let a_data = dir.path().join("a");
    let a = start(&a_data, &env);
    let admin = a.bootstrap_token();
    let b = start(&sibling_of(&a_data, &dir.path().join("b")), &env);
    let (wa, wb) = (Remote::of(&a), Remote::of(&b));
    let team = remote_team(&wa, &admin).await;
    let caller = Caller {
        http: wa.client.clone(),
        token: team.orchestrator.clone(),
    };
    let series = "warden_ledger_batch_retries_total{reason=\"log_head_moved\"}";
    let before = sample(&wa.metrics(&admin).await, series);
    let mut acknowledged = 0;
    for round in 0..3 {
        for (name, base) in [("a", &a.base), ("b", &b.base)] {
            acknowledged += caller
                .submit(base, &format!("{name}-{round}"), 5, json!({}))
                .await
                .len();
        }
    }
    assert_eq!(acknowledged, 30);
    // a's writer extended the log, b moved it: a's second round found its
    // cached head moved, its third read the head first.
    let moved = sample(&wa.metrics(&admin).await, series) - before;
    assert_eq!(moved, 1.0, "log_head_moved retries on a");
    let export = verified_export(&wb, &team).await;
    let events = String::from_utf8_lossy(&export.bytes)
        .matches("\"action\":\"document_read\"")
        .count();
    assert_eq!(events, 30, "every acknowledged event is in the one chain");
    drop((a, b));
}

/// The backends listening for wake-ups between instances.
async fn listening(db: &str) -> Vec<i32> {
    let mut conn = sqlx::PgConnection::connect(db).await.unwrap();
    sqlx::query_scalar("SELECT pid FROM pg_stat_activity WHERE datname = current_database() AND query LIKE 'LISTEN%'")
        .fetch_all(&mut conn)
        .await
        .unwrap()
}

/// One execution of `claims-agent` run to its end through `via` while the
/// agent's stream is on another instance: each message `via` commits for
/// the stream must reach it by the database's notices.
async fn run_through(via: &Remote, team: &crate::kernel::Team, agent: &mut Stream, exec: &str, round: usize) {
    let r = invoke(via, team, exec, "search.web", json!({"q": format!("round {round}")})).await;
    assert_eq!(r.body["step"]["state"], "dispatched", "{}", r.body);
    let job = agent.next_within("step.assigned", Duration::from_secs(10)).await;
    assert_eq!(job.data["arguments"]["q"], format!("round {round}"));
    let r = crate::kernel::post(
        via,
        &team.agent,
        "/v0/agents/step-result",
        json!({"step_id": job.data["step_id"], "status": "succeeded", "output": {"hits": []}}),
    )
    .await;
    assert!(r.status.is_success(), "{}", r.body);
    agent.next_within("step.result", Duration::from_secs(10)).await;
    let r = intent(via, team, exec, json!({"type": "complete", "output": {"ok": true}})).await;
    assert_eq!(r.body["state"], "completed", "{}", r.body);
}

/// An agent's stream is on one instance and its requests go to another.
/// Streams poll every ten minutes here and timers pass every 20 s, so only
/// the database's notices can deliver in time (10 s): what the other
/// instance commits for the stream, an execution created where the agent
/// has no stream (assigned by the stream's instance at once), one given
/// back when the agent moves to the other instance, and one a workflow run
/// started there. When the
/// listening connections are killed, the instances listen again and
/// notices flow as before.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn another_instances_commits_wake_a_stream_at_once_and_after_the_channel_breaks_on_postgres() {
    let db = fresh_postgres_database().await;
    let dir = tempfile::tempdir().unwrap();
    let env = [
        ("WARDEN_DATABASE_URL", db.as_str()),
        ("WARDEN_KERNEL__TICK_MS", "20000"),
        ("WARDEN_KERNEL__STREAM_POLL_MS", "600000"),
    ];
    let a_data = dir.path().join("a");
    let a = start(&a_data, &env);
    let admin = a.bootstrap_token();
    let wa = Remote::of(&a);
    // Active before b starts, which loads it then.
    install(&wa.client, &wa.base, &admin, "kernel", kernel_bundle("1")).await;
    let b = start(&sibling_of(&a_data, &dir.path().join("b")), &env);
    let wb = Remote::of(&b);
    let team = remote_team(&wa, &admin).await;
    let mut agent = Stream::agent(&wa, &team.agent, "claims-agent").await;

    // Created where the stream is; run through the other instance.
    let exec = crate::kernel::start(&wa, &team, "claims-agent").await;
    assert_eq!(agent.next("execution.assigned").await.data["execution_id"], exec);
    run_through(&wb, &team, &mut agent, &exec, 0).await;

    // Both instances' listening connections are killed; they listen again.
    let killed = listening(&db).await;
    assert_eq!(killed.len(), 2, "each instance listens on one connection");
    let mut conn = sqlx::PgConnection::connect(&db).await.unwrap();
    for pid in &killed {
        sqlx::query("SELECT pg_terminate_backend($1)")
            .bind(pid)
            .execute(&mut conn)
            .await
            .unwrap();
    }
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let now = listening(&db).await;
        if now.len() == 2 && now.iter().all(|p| !killed.contains(p)) {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "not listening again: {now:?} after {killed:?}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }

    // Created where the agent has no stream: the other instance assigns it.
    let sent = Instant::now();
    let exec = crate::kernel::start(&wb, &team, "claims-agent").await;
    let assigned = agent.next_within("execution.assigned", Duration::from_secs(10)).await;
    assert_eq!(assigned.data["execution_id"], exec);
    eprintln!("created on the other instance, assigned after {:?}", sent.elapsed());
    run_through(&wb, &team, &mut agent, &exec, 1).await;

    // The agent moves to b while a holds its running execution: a gives it
    // back when the stream closes, and b assigns it to the new stream.
    let exec = crate::kernel::start(&wa, &team, "claims-agent").await;
    assert_eq!(agent.next("execution.assigned").await.data["execution_id"], exec);
    drop(agent);
    let mut agent = Stream::agent(&wb, &team.agent, "claims-agent").await;
    let back = agent.next_within("execution.assigned", Duration::from_secs(10)).await;
    assert_eq!(back.data["execution_id"], exec);
    run_through(&wa, &team, &mut agent, &exec, 2).await;

    // A workflow run started where the agent has no stream: its Task's
    // execution is assigned by the instance that has it.
    let definition = json!({"apiVersion": "agentrc.workflow/v0.1", "kind": "AgentWorkflow",
        "metadata": {"name": "triage"}, "spec": {"startAt": "Look", "states": {
            "Look": {"type": "Task", "agent": "claims-agent", "next": "Done"},
            "Done": {"type": "Succeed"}}}});
    let r = wa
        .call(
            reqwest::Method::PUT,
            "/v1/workflows/triage",
            Some(&team.orchestrator),
            Some(definition),
        )
        .await;
    assert!(r.status.is_success(), "{}", r.body);
    let r = crate::kernel::post(
        &wa,
        &team.orchestrator,
        "/v1/workflows/triage/runs",
        json!({"input": {"claim": "C-9"}}),
    )
    .await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.body);
    let task = agent.next_within("execution.assigned", Duration::from_secs(10)).await;
    assert_eq!(
        task.data["context"]["workflow"]["run_id"], r.body["id"],
        "{:?}",
        task.data
    );
    drop((a, b));
}

/// An instance whose ledger signing key is not the store's current key
/// refuses to start, saying why, rather than sign with a key auditors do
/// not hold.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_instance_with_another_signing_key_refuses_to_start_on_postgres() {
    let db = fresh_postgres_database().await;
    let dir = tempfile::tempdir().unwrap();
    let env = [("WARDEN_DATABASE_URL", db.as_str())];
    let first = start(&dir.path().join("a"), &env);
    let mut other = Command::new(BIN)
        .args(["serve", "--listen", "127.0.0.1:0", "--data-dir"])
        .arg(dir.path().join("b"))
        .env("WARDEN_DATABASE_URL", &db)
        .env_remove("WARDEN_BOOTSTRAP_TOKEN")
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let deadline = Instant::now() + Duration::from_secs(60);
    let status = loop {
        if let Some(status) = other.try_wait().unwrap() {
            break status;
        }
        if Instant::now() > deadline {
            let _ = other.kill();
            panic!("an instance with another key kept running");
        }
        std::thread::sleep(Duration::from_millis(50));
    };
    let mut log = String::new();
    std::io::Read::read_to_string(&mut other.stderr.take().unwrap(), &mut log).unwrap();
    assert!(!status.success());
    assert!(log.contains("is not the store's current key"), "{log}");
    // The first instance goes on, unaffected.
    let r = reqwest::get(format!("{}/health", first.base)).await.unwrap();
    assert_eq!(r.status(), StatusCode::OK);
    drop(first);
}
