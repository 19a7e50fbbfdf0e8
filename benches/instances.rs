//! Several Warden instances on one PostgreSQL database, as production runs
//! them behind a load balancer, each the release `warden` binary as its
//! own process (they share the database and the signing key, nothing else):
//!
//! - **load**: `--agents` agents (default 16) run kernel executions end to
//!   end, as in the kernel bench (create → assigned → `invoke_tool` → step
//!   result → `complete`), and `--deciders` clients (default 8) ask for
//!   tool-call decisions, for `--seconds`. Runs: one instance; two
//!   instances with every request sent to the next instance in turn (a
//!   round-robin balancer: an agent's stream is on one instance, its
//!   requests on both); and two instances with each tenant's requests and
//!   streams on one instance (routing by tenant, as `docs/scaling.md`
//!   recommends). Each with one tenant and with `--tenants` (default 8),
//!   the agents and deciders spread over them. Reported: executions and
//!   decisions per second against one instance, `invoke_tool` latency,
//!   conflicts per second (state changes refused with `concurrent_change`
//!   or `conflict`), the ledger writers' retries per second by reason (a
//!   log's head moved by the other instance; a stale change), failures,
//!   and each instance's CPU;
//! - **sink**: two instances deliver one webhook sink (a receiver in this
//!   process that checks every signature) while audit events are submitted
//!   at `--rate` per second (default 500) to both in turn. After
//!   `--seconds` the instance holding the sink's lease is killed with
//!   SIGKILL, the submitter goes on with the survivor for twice as long,
//!   then waits for every acknowledged event. Reported: events
//!   acknowledged and delivered (every one must be), duplicates, the
//!   longest pause in deliveries (the lease moving: it lasts 15 s unless
//!   renewed), the time from the kill until deliveries caught up, and the
//!   delivery lag before and after.
//!
//! `cargo bench --bench instances -- [load] [sink] [--agents N] [--deciders N]
//! [--tenants N] [--seconds S] [--rate R]` (default: both). PostgreSQL at
//! 127.0.0.1:5432, or `WARDEN_BENCH_POSTGRES_URL`: a fresh database per
//! run. The instances and the load generator share the machine's cores: on
//! two cores a second instance adds no CPU, so what this measures is what
//! sharing a database costs, not what a second machine would add.

use std::collections::{HashMap, HashSet};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use serde_json::json;
use sqlx::Connection;
use tokio::sync::mpsc;

#[path = "support/launch.rs"]
mod launch;
#[path = "support/warden.rs"]
mod warden_process;
use warden_process::{Failure, Warden, clock_ticks_per_second};
#[path = "support/agents.rs"]
mod agents;
use agents::*;
#[path = "../sinks/tests/peers/mod.rs"]
mod peers;
#[path = "support/webhook.rs"]
mod webhook;
use webhook::{Arrivals, SECRET_WEBHOOK, now_ms, webhook_peer};

struct Opts {
    load: bool,
    sink: bool,
    agents: usize,
    deciders: usize,
    tenants: usize,
    seconds: u64,
    rate: u64,
}

/// How requests reach the instances.
#[derive(Clone, Copy, PartialEq)]
enum Route {
    /// Every request to the next instance in turn.
    RoundRobin,
    /// A tenant's requests and streams to one instance.
    ByTenant,
}

/// The counters read from every instance's `/metrics` before and after.
const COUNTERS: [&str; 4] = [
    "warden_ledger_changes_refused_total{reason=\"concurrent_change\"}",
    "warden_ledger_changes_refused_total{reason=\"conflict\"}",
    "warden_ledger_batch_retries_total{reason=\"log_head_moved\"}",
    "warden_ledger_batch_retries_total{reason=\"stale_change\"}",
];

async fn counters(ws: &[Warden]) -> [f64; 4] {
    let mut sum = [0.0; 4];
    for w in ws {
        for (i, series) in COUNTERS.iter().enumerate() {
            sum[i] += w.metric(series).await;
        }
    }
    sum
}

/// A tool call as an orchestrator asks the kernel's policy about it.
fn tool_call(agent: usize) -> serde_json::Value {
    json!({"path": "warden/kernel/decision", "input": {
        "execution": {"id": format!("exe_bench_{agent}"), "agent_id": format!("a{agent}"), "labels": {}},
        "tool": "kb.search", "arguments": {"query": "refund policy", "limit": 5}}})
}

async fn load(o: &Opts, tenants: usize, instances: usize, route: Route) -> Vec<Row> {
    let env = [("WARDEN_KERNEL__TICK_MS", "50")];
    let first = Warden::start(true, &env).await;
    let mut tokens = Vec::with_capacity(tenants);
    for t in 0..tenants {
        let r = first
            .post(&first.admin, "/v1/tenants", &json!({"name": format!("bench-{t}")}))
            .await
            .expect("a tenant");
        let admin = r["admin_token"]["token"].as_str().unwrap().to_string();
        first.install_kernel_policy_as(&admin).await;
        tokens.push(Arc::new(Tokens {
            orchestrator: first.token_as(&admin, &["orchestrator"]).await,
            agent: first.agent_token_as(&admin, "a").await,
        }));
    }
    let mut ws = vec![first];
    for _ in 1..instances {
        ws.push(ws[0].sibling(&env));
    }
    let ws = Arc::new(ws);
    // Which instances serve agent or decider `i` (of tenant `i % tenants`).
    let serving = |i: usize| -> Vec<usize> {
        match route {
            Route::RoundRobin => (0..instances).map(|k| (i + k) % instances).collect(),
            Route::ByTenant => vec![(i % tenants) % instances],
        }
    };

    let mut receivers = Vec::with_capacity(o.agents);
    let mut readers = Vec::with_capacity(o.agents);
    for i in 0..o.agents {
        let (tx, rx) = mpsc::unbounded_channel();
        let home = &ws[serving(i)[0]];
        let reader = open_stream(home, &tokens[i % tenants].agent, &format!("a{i}"), i, tx)
            .await
            .unwrap_or_else(|e| panic!("{e}"));
        receivers.push(rx);
        readers.push(reader);
    }
    // Warm-up, not counted: an execution per tenant, whose intent must be
    // allowed.
    for (t, rx) in receivers.iter_mut().enumerate().take(tenants) {
        let mine: Vec<&Warden> = serving(t).into_iter().map(|k| &ws[k]).collect();
        one_execution(
            &mine,
            &mut 0,
            &tokens[t],
            &format!("a{t}"),
            rx,
            &mut AgentStats::default(),
        )
        .await
        .unwrap_or_else(|e| panic!("tenant {t}'s first execution failed: {e}"));
    }
    let before = counters(&ws).await;
    let cpu_before: Vec<u64> = ws.iter().map(|w| w.cpu_ticks()).collect();

    let label = match (instances, route) {
        (1, _) => "one instance".to_string(),
        (n, Route::RoundRobin) => format!("{n} instances, requests in turn"),
        (n, Route::ByTenant) => format!("{n} instances, routed by tenant"),
    };
    eprintln!(
        "load: {label}, {tenants} tenant(s), {} agents and {} deciders for {} s…",
        o.agents, o.deciders, o.seconds
    );
    let started = Instant::now();
    let deadline = started + Duration::from_secs(o.seconds);
    let mut agents = tokio::task::JoinSet::new();
    for (i, mut rx) in receivers.into_iter().enumerate() {
        let (ws, tokens, mine) = (ws.clone(), tokens[i % tenants].clone(), serving(i));
        agents.spawn(async move {
            let mine: Vec<&Warden> = mine.into_iter().map(|k| &ws[k]).collect();
            executions_until(deadline, &mine, &tokens, &format!("a{i}"), &mut rx).await
        });
    }
    let mut deciders = tokio::task::JoinSet::new();
    for i in 0..o.deciders {
        let (ws, tokens, mine) = (ws.clone(), tokens[i % tenants].clone(), serving(i));
        deciders.spawn(async move {
            let body = tool_call(i);
            let (mut done, mut latency, mut failures) = (0u64, Vec::new(), HashMap::<Failure, usize>::new());
            let mut turn = 0;
            while Instant::now() < deadline {
                turn += 1;
                let sent = Instant::now();
                match ws[mine[turn % mine.len()]]
                    .post(&tokens.orchestrator, "/v1/decisions", &body)
                    .await
                {
                    Ok(_) => {
                        done += 1;
                        latency.push(sent.elapsed());
                    }
                    Err(f) => *failures.entry(f).or_default() += 1,
                }
            }
            (done, latency, failures)
        });
    }
    let mut all = AgentStats::default();
    while let Some(s) = agents.join_next().await {
        all.absorb(s.unwrap());
    }
    let (mut decisions, mut decision_latency) = (0u64, Vec::new());
    while let Some(d) = deciders.join_next().await {
        let (done, latency, failures) = d.unwrap();
        decisions += done;
        decision_latency.extend(latency);
        for (f, n) in failures {
            *all.failures.entry(f).or_default() += n;
        }
    }
    let secs = started.elapsed().as_secs_f64();
    let cpu: Vec<String> = ws
        .iter()
        .zip(&cpu_before)
        .map(|(w, b)| format!("{:.2}", (w.cpu_ticks() - b) as f64 / clock_ticks_per_second() / secs))
        .collect();
    let after = counters(&ws).await;
    let rate = |i: usize| (after[i] - before[i]) / secs;
    for r in readers {
        r.abort();
    }
    let mut ws = Arc::try_unwrap(ws).unwrap_or_else(|_| panic!("every task ended"));
    while ws.len() > 1 {
        ws.pop().unwrap().stop().await;
    }
    ws.pop().unwrap().stop().await;

    let scenario = format!("load · {label} · {tenants} tenant(s) · {secs:.1} s");
    rows(
        &scenario,
        vec![
            (
                "executions/s (create → completed)",
                format!("{:.0}", all.executions as f64 / secs),
            ),
            ("decisions/s", format!("{:.0}", decisions as f64 / secs)),
            ("invoke_tool POST p50 / p99 / max", spread(&mut all.invoke_latency)),
            ("execution p50 / p99 / max", spread(&mut all.execution_latency)),
            ("decision POST p50 / p99 / max", spread(&mut decision_latency)),
            (
                "conflicts/s (concurrent_change / conflict)",
                format!("{:.1} / {:.1}", rate(0), rate(1)),
            ),
            (
                "ledger retries/s (log head moved / stale change)",
                format!("{:.1} / {:.1}", rate(2), rate(3)),
            ),
            ("Warden CPU per instance (cores busy)", cpu.join(" + ")),
            ("failures", failures_text(&all.failures)),
        ],
    )
}

// ------------------------------------------------------------------ sink

/// Submits events at `rate` per second, 10 a request, to the live
/// instances in turn until `stop`; each acknowledged event's activity id
/// with the time it was sent.
async fn submit(
    ws: Arc<Vec<(String, Arc<AtomicBool>)>>,
    http: reqwest::Client,
    token: String,
    rate: u64,
    stop: Arc<AtomicBool>,
    acknowledged: Arc<Mutex<HashMap<String, i64>>>,
    resent: Arc<AtomicUsize>,
) {
    const PER_REQUEST: u64 = 10;
    let mut tick = tokio::time::interval(Duration::from_secs_f64(PER_REQUEST as f64 / rate as f64));
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Burst);
    let mut n = 0usize;
    let mut posts = tokio::task::JoinSet::new();
    while !stop.load(Ordering::Relaxed) {
        tick.tick().await;
        n += 1;
        let (ws, http, token, acknowledged, resent) = (
            ws.clone(),
            http.clone(),
            token.clone(),
            acknowledged.clone(),
            resent.clone(),
        );
        posts.spawn(async move {
            let sent = now_ms();
            let ids: Vec<String> = (0..PER_REQUEST).map(|k| format!("ev-{n}-{k}")).collect();
            let body: Vec<serde_json::Value> = ids
                .iter()
                .map(|id| {
                    json!({"timestamp": warden::clock::rfc3339_ms(sent), "workflow_id": format!("wf-{}", n % 16),
                        "action": "document_read", "result": "success", "activity_id": id})
                })
                .collect();
            // The next live instance; one that does not answer is marked
            // dead and the events sent to another, as a balancer would.
            for attempt in 0..ws.len() * 2 {
                let (base, alive) = &ws[(n + attempt) % ws.len()];
                if !alive.load(Ordering::Relaxed) {
                    continue;
                }
                let r = http
                    .post(format!("{base}/v1/audit/events"))
                    .bearer_auth(&token)
                    .json(&body)
                    .timeout(Duration::from_secs(30))
                    .send()
                    .await;
                match r {
                    Ok(r) if r.status() == 201 => {
                        let mut acked = acknowledged.lock().unwrap();
                        for id in &ids {
                            acked.insert(id.clone(), sent);
                        }
                        return;
                    }
                    _ => {
                        alive.store(false, Ordering::Relaxed);
                        resent.fetch_add(1, Ordering::Relaxed);
                    }
                }
            }
            panic!("no instance acknowledged events {n}");
        });
    }
    while posts.join_next().await.is_some() {}
}

async fn lease_holder(url: &str) -> Option<String> {
    let mut conn = sqlx::PgConnection::connect(url).await.ok()?;
    sqlx::query_scalar("SELECT holder FROM sink_leases")
        .fetch_optional(&mut conn)
        .await
        .ok()
        .flatten()
}

fn pct(sorted: &[i64], p: f64) -> i64 {
    if sorted.is_empty() {
        return -1;
    }
    sorted[((sorted.len() - 1) as f64 * p).round() as usize]
}

async fn sink(o: &Opts) -> Vec<Row> {
    let port = peers::free_port();
    let arrivals = Arrivals::default();
    let _peer = webhook_peer(port, arrivals.clone()).await;
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("warden.toml");
    std::fs::write(
        &config,
        format!(
            "[[sinks]]\nname = \"siem\"\ntype = \"webhook\"\nurl = \"http://127.0.0.1:{port}/\"\nsecrets = [\"{SECRET_WEBHOOK}\"]\ntimeout_ms = 1000\n"
        ),
    )
    .unwrap();
    let env = [("WARDEN_CONFIG", config.to_str().unwrap())];
    let first = Warden::start(true, &env).await;
    let second = first.sibling(&env);
    let url = first.database_url().unwrap().to_string();
    let token = first.token(&["orchestrator"]).await;
    let mut ws = [Some(first), Some(second)];
    let live: Arc<Vec<(String, Arc<AtomicBool>)>> = Arc::new(
        ws.iter()
            .map(|w| (w.as_ref().unwrap().base.clone(), Arc::new(AtomicBool::new(true))))
            .collect(),
    );
    let (stop, acknowledged, resent) = (
        Arc::new(AtomicBool::new(false)),
        Arc::new(Mutex::new(HashMap::new())),
        Arc::new(AtomicUsize::new(0)),
    );
    eprintln!(
        "sink: {} events/s to two instances; the lease holder killed after {} s…",
        o.rate, o.seconds
    );
    let submitter = tokio::spawn(submit(
        live.clone(),
        ws[0].as_ref().unwrap().http.clone(),
        token,
        o.rate,
        stop.clone(),
        acknowledged.clone(),
        resent.clone(),
    ));
    tokio::time::sleep(Duration::from_secs(o.seconds)).await;
    let holder = lease_holder(&url).await.expect("a sink lease is held");
    let held = ws
        .iter()
        .position(|w| w.as_ref().unwrap().instance_id() == holder)
        .expect("an instance holds the lease");
    let mut killed = ws[held].take().unwrap();
    killed.child.kill().unwrap();
    killed.child.wait().unwrap();
    let killed_at = now_ms();
    live[held].1.store(false, Ordering::Relaxed);
    drop(killed);
    tokio::time::sleep(Duration::from_secs(2 * o.seconds)).await;
    stop.store(true, Ordering::Relaxed);
    submitter.await.unwrap();
    let acknowledged = std::mem::take(&mut *acknowledged.lock().unwrap());

    // Every acknowledged event, then the figures.
    let deadline = Instant::now() + Duration::from_secs(120);
    let delivered = loop {
        let seen: HashSet<String> = arrivals
            .lock()
            .unwrap()
            .iter()
            .filter_map(|(_, e)| e["activity_id"].as_str().map(str::to_string))
            .collect();
        if acknowledged.keys().all(|id| seen.contains(id)) || Instant::now() > deadline {
            break seen;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    let got = std::mem::take(&mut *arrivals.lock().unwrap());
    let missing = acknowledged.keys().filter(|id| !delivered.contains(*id)).count();
    let duplicates = got.len() - delivered.len();
    let (mut before, mut after) = (Vec::new(), Vec::new());
    let mut first_arrival: HashMap<&str, i64> = HashMap::new();
    for (at, e) in &got {
        if let Some(id) = e["activity_id"].as_str() {
            first_arrival.entry(id).or_insert(*at);
        }
    }
    for (id, sent) in &acknowledged {
        if let Some(at) = first_arrival.get(id.as_str()) {
            if *sent < killed_at {
                before.push(at - sent);
            } else {
                after.push(at - sent);
            }
        }
    }
    before.sort_unstable();
    after.sort_unstable();
    let mut times: Vec<i64> = got.iter().map(|(at, _)| *at).collect();
    times.sort_unstable();
    let pause = times
        .windows(2)
        .filter(|w| w[1] >= killed_at)
        .map(|w| w[1] - w[0].max(killed_at))
        .max()
        .unwrap_or(0);
    // Caught up: from then on, every event arrived within a second of
    // being sent.
    let mut caught_up = killed_at;
    for (id, sent) in &acknowledged {
        if let Some(at) = first_arrival.get(id.as_str())
            && *at - *sent > 1000
        {
            caught_up = caught_up.max(*at);
        }
    }
    let survivor = ws.iter().flatten().next().unwrap();
    let holder_now = lease_holder(&url).await;
    let moved = holder_now.as_deref() == Some(survivor.instance_id().as_str());
    for w in ws.into_iter().flatten() {
        w.stop().await;
    }

    let scenario = format!(
        "sink · webhook · two instances · {} events/s · lease holder killed after {} s",
        o.rate, o.seconds
    );
    rows(
        &scenario,
        vec![
            (
                "events acknowledged / delivered / missing",
                format!("{} / {} / {missing}", acknowledged.len(), delivered.len()),
            ),
            ("duplicates (sent again after the takeover)", duplicates.to_string()),
            (
                "requests refused by the killed instance, sent again",
                resent.load(Ordering::Relaxed).to_string(),
            ),
            (
                "lease moved to the survivor",
                if moved {
                    "yes".into()
                } else {
                    format!("no ({holder_now:?})")
                },
            ),
            ("longest pause in deliveries after the kill", format!("{pause} ms")),
            (
                "kill → deliveries caught up (lag under 1 s again)",
                format!("{} ms", caught_up - killed_at),
            ),
            (
                "lag before the kill p50 / p99 / max",
                format!(
                    "{} / {} / {} ms",
                    pct(&before, 0.5),
                    pct(&before, 0.99),
                    pct(&before, 1.0)
                ),
            ),
            (
                "lag of events sent after the kill p50 / p99 / max",
                format!("{} / {} / {} ms", pct(&after, 0.5), pct(&after, 0.99), pct(&after, 1.0)),
            ),
        ],
    )
}

// ------------------------------------------------------------------ main

fn main() {
    let mut o = Opts {
        load: false,
        sink: false,
        agents: 16,
        deciders: 8,
        tenants: 8,
        seconds: 10,
        rate: 500,
    };
    let mut args = std::env::args().skip(1);
    while let Some(a) = args.next() {
        let mut value = || positive(&a, args.next());
        match a.as_str() {
            "load" => o.load = true,
            "sink" => o.sink = true,
            "--agents" => o.agents = value() as usize,
            "--deciders" => o.deciders = value() as usize,
            "--tenants" => o.tenants = value() as usize,
            "--seconds" => o.seconds = value(),
            "--rate" => o.rate = value(),
            "--bench" => {}
            other => panic!(
                "unknown argument {other:?}: [load] [sink] [--agents N] [--deciders N] [--tenants N] [--seconds S] [--rate R]"
            ),
        }
    }
    if !o.load && !o.sink {
        o.load = true;
        o.sink = true;
    }
    assert!(o.agents >= o.tenants, "--agents must be at least --tenants");
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    let rows = rt.block_on(async {
        let mut rows = Vec::new();
        if o.load {
            for tenants in [1, o.tenants] {
                rows.extend(load(&o, tenants, 1, Route::RoundRobin).await);
                rows.extend(load(&o, tenants, 2, Route::RoundRobin).await);
                if tenants > 1 {
                    rows.extend(load(&o, tenants, 2, Route::ByTenant).await);
                }
            }
        }
        if o.sink {
            rows.extend(sink(&o).await);
        }
        rows
    });
    print_rows(&rows);
}
