//! A large backlog during a sink outage: the `warden` binary keeps
//! acknowledging events while the peer is away, its memory stays bounded
//! (the backlog is read from the ledger page by page, never held), and the
//! backlog drains once the peer is back. The load harness
//! (`benches/sinks.rs`) runs the same with a million events on a release
//! build and reports the figures.

use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use serde_json::{Value, json};

use crate::cli::start;
use crate::common::{Backend, fresh_postgres_database};
use crate::on_both_backends;
use crate::peers::datadog_intake::{self, Intake};

/// Events in the backlog: enough that holding them would show (about
/// 30 MB of event JSON, several times that parsed), few enough for a debug
/// build in CI.
const BACKLOG: usize = 100_000;
const PER_REQUEST: usize = 1_000;

/// Resident and peak resident memory of a process, in KiB (Linux).
fn memory_kib(pid: u32) -> (u64, u64) {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).expect("/proc/<pid>/status");
    let field = |name: &str| {
        status
            .lines()
            .find_map(|l| l.strip_prefix(name))
            .and_then(|v| v.split_whitespace().next())
            .and_then(|v| v.parse().ok())
            .expect("a memory figure")
    };
    (field("VmRSS:"), field("VmHWM:"))
}

on_both_backends!(a_large_backlog_keeps_memory_bounded_and_drains);

async fn a_large_backlog_keeps_memory_bounded_and_drains(backend: Backend) {
    let dir = tempfile::tempdir().unwrap();
    let port = crate::peers::free_port();
    let config = dir.path().join("warden.toml");
    std::fs::write(
        &config,
        format!(
            "[[sinks]]\nname = \"siem\"\ntype = \"datadog\"\nurl = \"http://127.0.0.1:{port}\"\napi_key = \"{}\"\ntimeout_ms = 5000\n",
            datadog_intake::KEY
        ),
    )
    .unwrap();
    let database = match backend {
        Backend::Sqlite => None,
        Backend::Postgres => Some(fresh_postgres_database().await),
    };
    let mut env = vec![("WARDEN_CONFIG", config.to_str().unwrap())];
    if let Some(url) = &database {
        env.push(("WARDEN_DATABASE_URL", url.as_str()));
    }
    let server = start(&dir.path().join("data"), &env);
    let pid = server.child.id();
    let http = reqwest::Client::new();
    let admin = server.bootstrap_token();
    let token: Value = http
        .post(format!("{}/v1/tokens", server.base))
        .bearer_auth(&admin)
        .json(&json!({"name": "o", "roles": ["orchestrator", "auditor"]}))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let token = token["token"].as_str().unwrap().to_string();
    let (_, idle_peak) = memory_kib(pid);

    // The peer is down while the backlog builds. The events are dated now:
    // Datadog keeps no log dated more than 18 hours ago.
    let dated = warden::clock::rfc3339_ms(chrono::Utc::now().timestamp_millis());
    let started = Instant::now();
    let mut tasks = tokio::task::JoinSet::new();
    for worker in 0..4 {
        let (http, base, token, dated) = (http.clone(), server.base.clone(), token.clone(), dated.clone());
        tasks.spawn(async move {
            for r in (worker..BACKLOG / PER_REQUEST).step_by(4) {
                let body: String = (0..PER_REQUEST)
                    .map(|i| {
                        json!({"timestamp": dated, "workflow_id": format!("wf-{}", i % 50),
                            "action": "document_read", "result": "success", "activity_id": format!("a-{r}-{i}"),
                            "resource": {"connector": "gdrive", "document_name": "Quarterly plan.docx"}})
                        .to_string()
                    })
                    .collect::<Vec<_>>()
                    .join("\n");
                let res = http
                    .post(format!("{base}/v1/audit/events"))
                    .bearer_auth(&token)
                    .header("content-type", "application/x-ndjson")
                    .body(body)
                    .send()
                    .await
                    .unwrap();
                assert_eq!(res.status(), 201);
            }
        });
    }
    while let Some(r) = tasks.join_next().await {
        r.unwrap();
    }
    let ingest = started.elapsed();
    let (backlog_rss, backlog_peak) = memory_kib(pid);
    let sinks_now = || async {
        let r = http
            .get(format!("{}/v1/sinks", server.base))
            .bearer_auth(&token)
            .send()
            .await
            .unwrap();
        r.json::<Value>().await.unwrap()
    };
    let sinks = sinks_now().await;
    assert!(sinks[0]["lag"].as_u64().unwrap() >= BACKLOG as u64, "{sinks}");

    // The peer is back: the backlog drains; memory is sampled throughout.
    let intake = Arc::new(Intake {
        count_only: true,
        ..Default::default()
    });
    let peer = datadog_intake::serve(intake.clone(), port).await;
    let drain_start = Instant::now();
    let mut drain_peak_rss = 0;
    let deadline = Instant::now() + Duration::from_secs(240);
    while intake.counted.load(Ordering::Relaxed) < BACKLOG {
        assert!(
            Instant::now() < deadline,
            "drained {} of {BACKLOG}",
            intake.counted.load(Ordering::Relaxed)
        );
        drain_peak_rss = drain_peak_rss.max(memory_kib(pid).0);
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let drain = drain_start.elapsed();
    let (_, peak) = memory_kib(pid);
    eprintln!(
        "backlog of {BACKLOG}: ingested in {:.1} s ({:.0} events/s); drained in {:.1} s ({:.0} events/s); \
         memory (KiB): idle peak {idle_peak}, after ingest {backlog_rss} (peak {backlog_peak}), \
         during drain up to {drain_peak_rss}, overall peak {peak}",
        ingest.as_secs_f64(),
        BACKLOG as f64 / ingest.as_secs_f64(),
        drain.as_secs_f64(),
        BACKLOG as f64 / drain.as_secs_f64(),
    );
    // Nothing is left to send once the sink reports no lag: only then is
    // "each event once" a fact and not a snapshot.
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let sinks = sinks_now().await;
        if sinks[0]["lag"] == 0 {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "the sink reports its backlog drained: {sinks}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert_eq!(intake.counted.load(Ordering::Relaxed), BACKLOG, "each event once");
    assert_eq!(intake.violations.lock().unwrap().clone(), Vec::<String>::new());
    // Draining reads a page at a time: it adds at most a few pages (of at
    // most 5 MB each) to what ingesting needed, never the backlog itself
    // (30 MB of JSON here, and several times that parsed).
    assert!(
        drain_peak_rss < backlog_rss + 20 * 1024,
        "draining held the backlog: {drain_peak_rss} KiB against {backlog_rss} KiB before"
    );
    peer.stop().await;
    drop(server);
}
