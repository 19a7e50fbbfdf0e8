//! The execution kernel under load, with the release `warden` binary as its
//! own process and the shipped kernel policy (`policies/kernel/`) active:
//!
//! - **intents**: `--agents` agents (default 32), each holding its own SSE
//!   stream, loop for `--seconds`: an execution is created for the agent
//!   (orchestrator token) → `execution.assigned` arrives → the agent sends
//!   an `invoke_tool` intent for an allowed local tool (a policy decision
//!   and ledger entries) → `step.assigned` → the agent reports the step
//!   `succeeded` → `step.result` → the agent sends `complete`. Reported:
//!   invoke_tool intents per second, all intents per second, executions
//!   per second, the latency of the invoke_tool POST and of a whole
//!   execution, and Warden's resident memory at the end;
//! - **sse**: `--streams` agent streams (default 1,000) are open; for
//!   `--seconds`, at a steady `--rate` per second (default 200), an
//!   execution is created for a random agent, and the delivery latency is
//!   the time from just before its `POST /v0/executions` to the arrival of
//!   its `execution.assigned` on that agent's stream (p50, p99, max; every
//!   one must arrive). Reported with Warden's resident memory and CPU with
//!   the streams open and idle.
//!
//! `cargo bench --bench kernel -- [intents] [sse] [--agents N] [--streams N]
//! [--rate R] [--seconds S] [--postgres] [--allow-all]` (default: both
//! scenarios, on SQLite; `--postgres` runs them on a fresh database at
//! 127.0.0.1:5432, or `WARDEN_BENCH_POSTGRES_URL`, instead; `--allow-all`
//! answers the intents with one constant rule instead of the shipped
//! policy, to measure what the rest of an execution costs). Every stream is an HTTP
//! connection of its own: the harness and Warden (its child, which inherits
//! the limit) each need about `--streams` file descriptors, so raise the
//! limit first when it is low (`ulimit -n 4096`). The load generator shares
//! the machine's cores with Warden: the figures are floors.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use serde_json::json;
use tokio::sync::mpsc;

#[path = "support/launch.rs"]
mod launch;
#[path = "support/warden.rs"]
mod warden_process;
use warden_process::{Failure, Warden, clock_ticks_per_second};
#[path = "support/agents.rs"]
mod agents;
#[path = "support/writer.rs"]
mod writer;
use agents::*;
use writer::WriterStats;

struct Opts {
    intents: bool,
    sse: bool,
    agents: usize,
    streams: usize,
    rate: u64,
    seconds: u64,
    postgres: bool,
    /// The kernel policy replaced by one constant rule allowing every call
    /// (`benches/support/allow-all-kernel/`): the floor of what an
    /// execution costs without the shipped policy's evaluation.
    allow_all: bool,
}

/// The soft limit on open files of this process (Warden inherits it).
fn open_files_limit() -> Option<u64> {
    let limits = std::fs::read_to_string("/proc/self/limits").ok()?;
    let line = limits.lines().find(|l| l.starts_with("Max open files"))?;
    let soft = line.trim_start_matches("Max open files").split_whitespace().next()?;
    soft.parse().ok()
}

// ------------------------------------------------------------------ intents

async fn intents(o: &Opts, backend: &str) -> Vec<Row> {
    let w = Arc::new(Warden::start(o.postgres, &[("WARDEN_KERNEL__TICK_MS", "50")]).await);
    if o.allow_all {
        let dir = concat!(env!("CARGO_MANIFEST_DIR"), "/benches/support/allow-all-kernel");
        w.install_kernel_policy_from(&w.admin, dir).await;
    } else {
        w.install_kernel_policy().await;
    }
    let tokens = Arc::new(Tokens {
        orchestrator: w.token(&["orchestrator"]).await,
        agent: w.agent_token("a").await,
    });
    let mut receivers = Vec::with_capacity(o.agents);
    let mut readers = Vec::with_capacity(o.agents);
    for i in 0..o.agents {
        let (tx, rx) = mpsc::unbounded_channel();
        let reader = open_stream(&w, &tokens.agent, &format!("a{i}"), i, tx)
            .await
            .unwrap_or_else(|e| panic!("{e} (is `ulimit -n` high enough?)"));
        receivers.push(rx);
        readers.push(reader);
    }
    // Warm-up, not counted: one execution, whose intent must be allowed.
    let answer = one_execution(
        &[&*w],
        &mut 0,
        &tokens,
        "a0",
        &mut receivers[0],
        &mut AgentStats::default(),
    )
    .await
    .unwrap_or_else(|e| panic!("the first execution failed: {e}"));
    assert_eq!(answer["outcome"], "allow", "{TOOL} must be allowed: {answer}");
    let idle_kib = w.status_kib("VmRSS");
    let cpu_before = w.cpu_ticks();
    let writer_before = WriterStats::of(&w).await;

    eprintln!("intents ({backend}): {} agents for {} s…", o.agents, o.seconds);
    let started = Instant::now();
    let deadline = started + Duration::from_secs(o.seconds);
    let mut tasks = tokio::task::JoinSet::new();
    for (i, mut rx) in receivers.into_iter().enumerate() {
        let (w, tokens) = (w.clone(), tokens.clone());
        tasks.spawn(async move { executions_until(deadline, &[&*w], &tokens, &format!("a{i}"), &mut rx).await });
    }
    let mut all = AgentStats::default();
    while let Some(s) = tasks.join_next().await {
        all.absorb(s.unwrap());
    }
    let secs = started.elapsed().as_secs_f64();
    let cpu = (w.cpu_ticks() - cpu_before) as f64 / clock_ticks_per_second();
    let writer = WriterStats::of(&w).await.since(&writer_before);
    let (rss, hwm) = (w.status_kib("VmRSS"), w.status_kib("VmHWM"));
    for r in readers {
        r.abort();
    }
    if let Ok(w) = Arc::try_unwrap(w) {
        w.stop().await;
    }

    let policy = if o.allow_all { " · allow-all policy" } else { "" };
    let scenario = format!("intents · {backend} · {} agents · {secs:.1} s{policy}", o.agents);
    rows(
        &scenario,
        vec![
            ("invoke_tool intents/s", format!("{:.0}", all.invokes as f64 / secs)),
            (
                "all intents/s (invoke + complete)",
                format!("{:.0}", (all.invokes + all.completes) as f64 / secs),
            ),
            (
                "executions/s (create → completed)",
                format!("{:.0}", all.executions as f64 / secs),
            ),
            ("executions completed", all.executions.to_string()),
            ("invoke_tool POST p50 / p99 / max", spread(&mut all.invoke_latency)),
            ("execution p50 / p99 / max", spread(&mut all.execution_latency)),
            ("Warden CPU (cores busy)", format!("{:.2}", cpu / secs)),
            ("ledger writer", writer.text(secs)),
            ("ledger writer, ms a batch by phase", writer.phases_text()),
            (
                "Warden RSS idle → end (peak)",
                format!("{} → {} ({})", mib(idle_kib), mib(rss), mib(hwm)),
            ),
            ("failures", failures_text(&all.failures)),
        ],
    )
}

// ------------------------------------------------------------------ sse

/// A small xorshift generator: which agent gets the next execution.
struct Pick(u64);

impl Pick {
    fn new() -> Pick {
        let mut b = [0u8; 8];
        getrandom::fill(&mut b).unwrap();
        Pick(u64::from_le_bytes(b) | 1)
    }

    fn below(&mut self, n: usize) -> usize {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        (self.0 % n as u64) as usize
    }
}

/// An execution created in the sse scenario: (target agent, sent at).
type Sent = Arc<Mutex<HashMap<String, (usize, Instant)>>>;
/// `execution.assigned` events seen: execution id → (agent, arrived at).
type Arrived = Arc<Mutex<HashMap<String, (usize, Instant)>>>;

async fn sse(o: &Opts, backend: &str) -> Vec<Row> {
    let needed = o.streams as u64 + 256;
    if let Some(limit) = open_files_limit()
        && limit < needed
    {
        panic!(
            "{} streams need about {needed} open files in this process and in Warden, but the limit is {limit}: \
             raise it first (`ulimit -n 4096`), or pass fewer --streams",
            o.streams
        );
    }
    let streams = (o.streams + 16).to_string();
    let env = [
        ("WARDEN_KERNEL__TICK_MS", "50"),
        ("WARDEN_KERNEL__MAX_STREAMS_PER_TENANT", streams.as_str()),
    ];
    let w = Arc::new(Warden::start(o.postgres, &env).await);
    let orchestrator = Arc::new(w.token(&["orchestrator"]).await);
    let agent = w.agent_token("a").await;
    let before_kib = w.status_kib("VmRSS");

    // Open the streams, 32 at a time.
    eprintln!("sse ({backend}): opening {} streams…", o.streams);
    let (tx, mut rx) = mpsc::unbounded_channel::<Ev>();
    let opened = Instant::now();
    let mut readers = Vec::with_capacity(o.streams);
    let limit = Arc::new(tokio::sync::Semaphore::new(32));
    let mut opening = tokio::task::JoinSet::new();
    for i in 0..o.streams {
        let (w, agent, tx, limit) = (w.clone(), agent.clone(), tx.clone(), limit.clone());
        opening.spawn(async move {
            let _permit = limit.acquire().await.unwrap();
            open_stream(&w, &agent, &format!("a{i}"), i, tx).await
        });
    }
    while let Some(r) = opening.join_next().await {
        match r.unwrap() {
            Ok(reader) => readers.push(reader),
            Err(e) => panic!(
                "{e}\n(opened {} of {} streams: is the open-file limit high enough? `ulimit -n 4096`)",
                readers.len(),
                o.streams
            ),
        }
    }
    drop(tx);
    let open_secs = opened.elapsed().as_secs_f64();

    let arrived: Arrived = Arc::default();
    let strays = Arc::new(Mutex::new((0usize, 0usize))); // (other events, closed streams)
    {
        let (arrived, strays) = (arrived.clone(), strays.clone());
        tokio::spawn(async move {
            while let Some(ev) = rx.recv().await {
                if ev.event == "execution.assigned" {
                    let id = ev.data["execution_id"].as_str().unwrap_or_default().to_string();
                    arrived.lock().unwrap().insert(id, (ev.agent, ev.at));
                } else if ev.event == "closed" {
                    strays.lock().unwrap().1 += 1;
                } else {
                    strays.lock().unwrap().0 += 1;
                }
            }
        });
    }

    // Idle: every stream open, nothing to send.
    tokio::time::sleep(Duration::from_secs(1)).await;
    let cpu0 = w.cpu_ticks();
    let idle_started = Instant::now();
    tokio::time::sleep(Duration::from_secs(3)).await;
    let idle_cpu = (w.cpu_ticks() - cpu0) as f64 / clock_ticks_per_second() / idle_started.elapsed().as_secs_f64();
    let idle_kib = w.status_kib("VmRSS");

    eprintln!("sse ({backend}): {} executions/s for {} s…", o.rate, o.seconds);
    let sent: Sent = Arc::default();
    let failures: Arc<Mutex<HashMap<Failure, usize>>> = Arc::default();
    let post_latency: Arc<Mutex<Vec<Duration>>> = Arc::default();
    let total = o.rate * o.seconds;
    let mut tick = tokio::time::interval(Duration::from_secs_f64(1.0 / o.rate as f64));
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Burst);
    let mut pick = Pick::new();
    let mut posts = tokio::task::JoinSet::new();
    let cpu1 = w.cpu_ticks();
    let load_started = Instant::now();
    for _ in 0..total {
        tick.tick().await;
        let target = pick.below(o.streams);
        let (w, orchestrator, sent, failures, post_latency) = (
            w.clone(),
            orchestrator.clone(),
            sent.clone(),
            failures.clone(),
            post_latency.clone(),
        );
        posts.spawn(async move {
            let at = Instant::now();
            let r = w
                .post(
                    &orchestrator,
                    "/v0/executions",
                    &json!({"agent_id": format!("a{target}"), "input": {"n": 1}}),
                )
                .await;
            post_latency.lock().unwrap().push(at.elapsed());
            match r {
                Ok(v) => {
                    let id = v["id"].as_str().unwrap_or_default().to_string();
                    sent.lock().unwrap().insert(id, (target, at));
                }
                Err(f) => *failures.lock().unwrap().entry(f).or_default() += 1,
            }
        });
    }
    let offered_secs = load_started.elapsed().as_secs_f64();
    while posts.join_next().await.is_some() {}
    // Then wait for what is still on its way.
    let until = Instant::now() + EVENT_WAIT;
    loop {
        let missing = {
            let (sent, arrived) = (sent.lock().unwrap(), arrived.lock().unwrap());
            sent.keys().filter(|id| !arrived.contains_key(*id)).count()
        };
        if missing == 0 || Instant::now() > until {
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let load_secs = load_started.elapsed().as_secs_f64();
    let load_cpu = (w.cpu_ticks() - cpu1) as f64 / clock_ticks_per_second() / load_secs;
    let (rss, hwm) = (w.status_kib("VmRSS"), w.status_kib("VmHWM"));

    let (created, mut latency, misrouted) = {
        let (sent, arrived) = (sent.lock().unwrap(), arrived.lock().unwrap());
        let mut latency = Vec::with_capacity(sent.len());
        let mut misrouted = 0;
        for (id, (target, at)) in sent.iter() {
            if let Some((agent, arrival)) = arrived.get(id) {
                latency.push(arrival.saturating_duration_since(*at));
                if agent != target {
                    misrouted += 1;
                }
            }
        }
        (sent.len(), latency, misrouted)
    };
    let delivered = latency.len();
    let (others, closed) = *strays.lock().unwrap();
    let mut post_latency = std::mem::take(&mut *post_latency.lock().unwrap());
    let failures = std::mem::take(&mut *failures.lock().unwrap());
    let failed: usize = failures.values().sum();
    for r in readers {
        r.abort();
    }
    if let Ok(w) = Arc::try_unwrap(w) {
        w.stop().await;
    }

    let scenario = format!(
        "sse · {backend} · {} streams · {} /s · {} s",
        o.streams, o.rate, o.seconds
    );
    rows(
        &scenario,
        vec![
            (
                "streams opened",
                format!("{} in {open_secs:.1} s ({} closed early)", o.streams, closed),
            ),
            (
                "executions created (offered rate)",
                format!(
                    "{created} of {total} ({:.0}/s)",
                    (created + failed) as f64 / offered_secs
                ),
            ),
            (
                "execution.assigned delivered",
                format!("{delivered} of {created} ({misrouted} to the wrong agent, {others} other events)"),
            ),
            ("delivery p50 / p99 / max", spread(&mut latency)),
            ("POST /v0/executions p50 / p99 / max", spread(&mut post_latency)),
            (
                "Warden CPU (cores busy) idle / load",
                format!("{idle_cpu:.2} / {load_cpu:.2}"),
            ),
            (
                "Warden RSS start → streams open → end (peak)",
                format!("{} → {} → {} ({})", mib(before_kib), mib(idle_kib), mib(rss), mib(hwm)),
            ),
            ("failures", failures_text(&failures)),
        ],
    )
}

// ------------------------------------------------------------------ main

fn main() {
    let mut o = Opts {
        intents: false,
        sse: false,
        agents: 32,
        streams: 1000,
        rate: 200,
        seconds: 15,
        postgres: false,
        allow_all: false,
    };
    let mut args = std::env::args().skip(1);
    while let Some(a) = args.next() {
        let mut value = || positive(&a, args.next());
        match a.as_str() {
            "intents" => o.intents = true,
            "sse" => o.sse = true,
            "--agents" => o.agents = value() as usize,
            "--streams" => o.streams = value() as usize,
            "--rate" => o.rate = value(),
            "--seconds" => o.seconds = value(),
            "--postgres" => o.postgres = true,
            "--allow-all" => o.allow_all = true,
            "--bench" => {}
            other => panic!(
                "unknown argument {other:?}: [intents] [sse] [--agents N] [--streams N] [--rate R] [--seconds S] [--postgres] [--allow-all]"
            ),
        }
    }
    if !o.intents && !o.sse {
        o.intents = true;
        o.sse = true;
    }
    let backend = if o.postgres { "postgres" } else { "sqlite" };
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    let rows = rt.block_on(async {
        let mut rows = Vec::new();
        if o.intents {
            rows.extend(intents(&o, backend).await);
        }
        if o.sse {
            rows.extend(sse(&o, backend).await);
        }
        rows
    });
    print_rows(&rows);
}
