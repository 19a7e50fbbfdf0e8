//! Workflow runs, with the release `warden` binary as its own process:
//!
//! - **interpreter**: the pure interpreter alone (no IO), a loop of `Pass`
//!   and `Choice` states: state transitions per second on one core;
//! - **transitions**: `--clients` clients (default 32) start runs of a
//!   chain of 20 `Pass` states and a `Succeed` for `--seconds`; each start
//!   answers once the whole chain is committed with its ledger entries
//!   (two per state). Reported: state transitions per second, runs per
//!   second, and the start's latency;
//! - **sleepers**: `--sleepers` runs (default 10,000) of a workflow that
//!   waits an hour are started; reported: Warden's resident memory before
//!   and after (a sleeping run holds nothing in memory: what grows is the
//!   store's cache; compare `--sleepers 30000`), the stored size of a run,
//!   and Warden's CPU over ten idle seconds with all of them asleep.
//!
//! `cargo bench --bench workflow -- [interpreter] [transitions] [sleepers]
//! [--clients N] [--seconds S] [--sleepers N] [--postgres]` (default: all
//! three, on SQLite; `--postgres` runs on a fresh database at
//! 127.0.0.1:5432, or `WARDEN_BENCH_POSTGRES_URL`). The load generator
//! shares the machine's cores with Warden: the figures are floors.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use serde_json::{Value, json};

#[path = "support/launch.rs"]
mod launch;
#[path = "support/warden.rs"]
mod warden_process;
use warden_process::{Warden, clock_ticks_per_second};
#[path = "support/writer.rs"]
mod writer;
use writer::WriterStats;

use warden::workflow::interpreter::{self, Event, Inputs};

struct Opts {
    interpreter: bool,
    transitions: bool,
    sleepers: bool,
    clients: usize,
    seconds: u64,
    count: usize,
    postgres: bool,
}

fn opts() -> Opts {
    let args: Vec<String> = std::env::args().skip(1).filter(|a| a != "--bench").collect();
    let value = |name: &str, default: u64| {
        args.iter()
            .position(|a| a == name)
            .and_then(|i| args.get(i + 1))
            .and_then(|v| v.parse().ok())
            .unwrap_or(default)
    };
    let named = |n: &str| args.iter().any(|a| a == n);
    let any = named("interpreter") || named("transitions") || named("sleepers");
    Opts {
        interpreter: !any || named("interpreter"),
        transitions: !any || named("transitions"),
        sleepers: !any || named("sleepers"),
        clients: value("--clients", 32) as usize,
        seconds: value("--seconds", 10),
        count: value("--sleepers", 10_000) as usize,
        postgres: named("--postgres"),
    }
}

fn definition(name: &str, spec: Value) -> Value {
    json!({"apiVersion": "agentrc.workflow/v0.1", "kind": "AgentWorkflow", "metadata": {"name": name}, "spec": spec})
}

/// 20 `Pass` states, then `Succeed`: 21 transitions a run.
fn chain() -> Value {
    let mut states = serde_json::Map::new();
    for i in 1..=20 {
        let next = if i == 20 {
            "Done".to_string()
        } else {
            format!("S{}", i + 1)
        };
        states.insert(
            format!("S{i}"),
            json!({"type": "Pass", "result": i, "resultPath": format!("$.s{i}"), "next": next}),
        );
    }
    states.insert("Done".into(), json!({"type": "Succeed"}));
    definition("chain", json!({"startAt": "S1", "states": states}))
}

fn sleeper() -> Value {
    definition(
        "sleeper",
        json!({"startAt": "Nap", "states": {
            "Nap": {"type": "Wait", "seconds": 3600, "next": "Done"},
            "Done": {"type": "Succeed"}}}),
    )
}

fn bench_interpreter() {
    let d: warden::workflow::Definition = serde_json::from_value(definition(
        "loop",
        json!({"startAt": "A", "states": {
            "A": {"type": "Pass", "result": {"k": 1}, "resultPath": "$.last", "next": "B"},
            "B": {"type": "Choice", "choices": [{"variable": "$.stop", "isPresent": true, "next": "End"}],
                  "default": "A"},
            "End": {"type": "Succeed"}}}),
    ))
    .expect("the loop parses");
    let mut pos = interpreter::start(&d, json!({"claim": {"id": "C-1", "amount": 900}}), 0);
    let budget = 1_000;
    let rounds = 2_000;
    let started = Instant::now();
    for _ in 0..rounds {
        let (_effects, more) = interpreter::advance(
            &d,
            &mut pos,
            Event::Timers,
            Inputs {
                now: 0,
                new_id: &mut || String::new(),
                random: &mut |n| n,
                budget,
                limits: warden::workflow::data::DataLimits::default(),
            },
        );
        assert!(more);
    }
    let secs = started.elapsed().as_secs_f64();
    println!(
        "interpreter: {} transitions in {:.2} s: {:.0} transitions/s on one core (each with its ledger records built)",
        pos.transitions,
        secs,
        pos.transitions as f64 / secs
    );
}

async fn upload(w: &Warden, token: &str, name: &str, def: &Value) {
    let r = w
        .http
        .put(format!("{}/v1/workflows/{name}", w.base))
        .bearer_auth(token)
        .json(def)
        .send()
        .await
        .unwrap();
    assert!(
        r.status().is_success(),
        "upload {name}: {}",
        r.text().await.unwrap_or_default()
    );
}

fn percentile(sorted: &[f64], p: f64) -> f64 {
    if sorted.is_empty() {
        return 0.0;
    }
    sorted[((sorted.len() - 1) as f64 * p).round() as usize]
}

async fn bench_transitions(o: &Opts) {
    let w = Arc::new(Warden::start(o.postgres, &[]).await);
    let token = w.token(&["orchestrator"]).await;
    upload(&w, &token, "chain", &chain()).await;
    let runs = Arc::new(AtomicU64::new(0));
    let writer_before = WriterStats::of(&w).await;
    let until = Instant::now() + Duration::from_secs(o.seconds);
    let mut tasks = Vec::new();
    for _ in 0..o.clients {
        let (w, token, runs) = (w.clone(), token.clone(), runs.clone());
        tasks.push(tokio::spawn(async move {
            let mut latencies = Vec::new();
            while Instant::now() < until {
                let t = Instant::now();
                let r = w
                    .post(&token, "/v1/workflows/chain/runs", &json!({"input": {"claim": "C-1"}}))
                    .await
                    .expect("a run starts");
                assert_eq!(r["status"], "succeeded", "{r}");
                latencies.push(t.elapsed().as_secs_f64() * 1000.0);
                runs.fetch_add(1, Ordering::Relaxed);
            }
            latencies
        }));
    }
    let started = Instant::now();
    let mut latencies = Vec::new();
    for t in tasks {
        latencies.extend(t.await.unwrap());
    }
    let secs = started.elapsed().as_secs_f64();
    latencies.sort_by(f64::total_cmp);
    let n = runs.load(Ordering::Relaxed) as f64;
    println!(
        "transitions ({}): {} clients, {:.0} runs/s, {:.0} state transitions/s ({} ledger entries a run), \
         start p50 {:.1} ms, p99 {:.1} ms",
        if o.postgres { "PostgreSQL" } else { "SQLite" },
        o.clients,
        n / secs,
        n * 21.0 / secs,
        2 * 21 + 2,
        percentile(&latencies, 0.5),
        percentile(&latencies, 0.99)
    );
    let writer = WriterStats::of(&w).await.since(&writer_before);
    println!("  ledger writer: {}", writer.text(secs));
    println!("  ledger writer, ms a batch by phase: {}", writer.phases_text());
    Arc::into_inner(w).expect("the clients are done").stop().await;
}

async fn bench_sleepers(o: &Opts) {
    let w = Arc::new(Warden::start(o.postgres, &[]).await);
    let token = w.token(&["orchestrator"]).await;
    upload(&w, &token, "sleeper", &sleeper()).await;
    // Warm up allocator and caches with a few runs first.
    for _ in 0..50 {
        w.post(&token, "/v1/workflows/sleeper/runs", &json!({})).await.unwrap();
    }
    tokio::time::sleep(Duration::from_secs(1)).await;
    let before = w.status_kib("VmRSS");
    let started = Instant::now();
    let next = Arc::new(AtomicU64::new(0));
    let mut tasks = Vec::new();
    for _ in 0..o.clients {
        let (w, token, next, count) = (w.clone(), token.clone(), next.clone(), o.count as u64);
        tasks.push(tokio::spawn(async move {
            while next.fetch_add(1, Ordering::Relaxed) < count {
                let r = w
                    .post(
                        &token,
                        "/v1/workflows/sleeper/runs",
                        &json!({"input": {"claim": "C-1"}}),
                    )
                    .await
                    .expect("a run starts");
                assert_eq!(r["position"]["phase"], "waiting", "{r}");
            }
        }));
    }
    for t in tasks {
        t.await.unwrap();
    }
    let start_secs = started.elapsed().as_secs_f64();
    tokio::time::sleep(Duration::from_secs(2)).await;
    let after = w.status_kib("VmRSS");
    let ticks = clock_ticks_per_second();
    let cpu0 = w.cpu_ticks();
    let idle = Instant::now();
    tokio::time::sleep(Duration::from_secs(10)).await;
    let cpu = (w.cpu_ticks() - cpu0) as f64 / ticks / idle.elapsed().as_secs_f64();
    let one = w
        .http
        .get(format!("{}/v1/workflow-runs?workflow=sleeper&limit=1", w.base))
        .bearer_auth(&token)
        .send()
        .await
        .unwrap()
        .json::<Value>()
        .await
        .unwrap();
    let stored = one[0]["position"].to_string().len() + one[0]["context"].to_string().len();
    println!(
        "sleepers ({}): {} runs asleep (started in {:.1} s, {:.0}/s); Warden RSS {} MiB before, {} MiB after; \
         CPU while they sleep: {:.3} of a core; a run's stored position and context: {} bytes",
        if o.postgres { "PostgreSQL" } else { "SQLite" },
        o.count,
        start_secs,
        o.count as f64 / start_secs,
        before / 1024,
        after / 1024,
        cpu,
        stored
    );
    Arc::into_inner(w).expect("the clients are done").stop().await;
}

fn main() {
    let o = opts();
    if o.interpreter {
        bench_interpreter();
    }
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    if o.transitions {
        rt.block_on(bench_transitions(&o));
    }
    if o.sleepers {
        rt.block_on(bench_sleepers(&o));
    }
}
