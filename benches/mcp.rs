//! The MCP gateway's cost (docs/mcp.md), with the release `warden` binary
//! as its own process: the latency Warden adds to a `tools/call` against
//! calling the upstream directly, and calls per second, with `/health`
//! requests per second on the same cores as the run's reference.
//!
//! The upstream is an MCP server in this process (axum on 127.0.0.1), kept
//! lean so that what is measured is Warden: `initialize` answers with a
//! session id, `notifications/initialized` with 202, `tools/list` with one
//! tool, `echo`, and `tools/call` with a small JSON result. Warden is given
//! it as upstream `bench` (with `[mcp] allow_networks` opened to
//! 127.0.0.0/8), a gateway policy that allows every call and shows every
//! tool, and an agent token; each client opens an MCP session of its own
//! (`initialize`, `notifications/initialized`). Warden's other settings are
//! its defaults (the upstream's tool list is read again every
//! `mcp.tools_ttl_secs`, 30 s).
//!
//! Scenarios (default: all, in this order), each `--clients` clients
//! (default 16) sending requests back to back for `--seconds` (default 10),
//! after a second of warm-up that is not counted:
//! - `direct`: `tools/call` of `echo` straight to the upstream;
//! - `gateway`: `tools/call` of `bench__echo` to Warden's `/mcp` with
//!   `Accept: application/json`, answered as JSON;
//! - `gateway_sse`: the same with `Accept: application/json,
//!   text/event-stream`, real MCP clients' default, answered as an event
//!   stream: a call's time ends when its answer's event is parsed;
//! - `health`: `GET /health`, the reference: Warden's HTTP stack on the
//!   same cores, without authentication, decision or store.
//!
//! Reported per scenario: requests per second, latency p50 / p99 / max,
//! errors (a call is one unless it answers the echo, and through the
//! gateway as allowed), the cores busy in Warden and in this process (the
//! load and the upstream), and for the gateway how many calls reached the
//! upstream, the ledger entries per call, and the ledger writer's commits
//! per second, entries per commit and share of the time spent committing
//! (from `/metrics`); then the latency the gateway adds (its p50 and p99
//! minus direct's), its calls per second against direct's and against
//! `/health`'s requests per second, and Warden's resident memory at the
//! end.
//!
//! Every gateway call is a policy decision and three ledger entries in two
//! durable appends: the decision with `mcp.call.decided` before the
//! upstream is called, `mcp.call.completed` after it answers (the agent
//! gets its result only then). The calls per second are bounded by the
//! ledger's commits (its group commit on SQLite or PostgreSQL, one batch at
//! a time), not by the HTTP hops, and with many clients back to back a
//! call's latency is mostly its wait for those commits: `--clients 1` gives
//! one call's latency alone. A `gateway_sse` latency near 40 ms that
//! `gateway` does not have, with Warden's cores idle, is a small write held
//! back by Nagle's algorithm until the client's delayed acknowledgement
//! (the event stream's headers and its event are two writes on a socket
//! without `TCP_NODELAY`).
//!
//! `cargo bench --bench mcp -- [direct] [gateway] [gateway_sse] [health]
//! [--clients 16] [--seconds 10] [--postgres]` (`--postgres`: a fresh
//! database at 127.0.0.1:5432, or `WARDEN_BENCH_POSTGRES_URL`, instead of
//! SQLite). The load generator and the upstream share the machine's cores
//! with Warden: the figures are floors.

use std::borrow::Cow;
use std::collections::HashMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use axum::body::Bytes;
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde::Deserialize;
use serde_json::value::RawValue;
use serde_json::{Value, json};

#[path = "support/launch.rs"]
mod launch;
#[path = "support/warden.rs"]
mod warden_process;
use warden_process::{Failure, Warden, clock_ticks_per_second};
#[path = "support/agents.rs"]
mod agents;
use agents::{EVENT_WAIT, Row, failures_text, mib, positive, print_rows, rows, spread};

/// The protocol revision the clients speak.
const PROTOCOL: &str = "2025-06-18";
/// The session id the upstream gives every client.
const UPSTREAM_SESSION: &str = "bench-1";
/// How long each scenario runs before it is measured.
const WARM_UP: Duration = Duration::from_secs(1);

const GATEWAY_POLICY: &str = r#"package warden.mcp

decision := {"outcome": "allow", "reasons": ["bench"]}

visible contains t.name if {
	some t in input.tools
}
"#;

#[derive(Clone, Copy, PartialEq, Eq, Hash)]
enum Scenario {
    Direct,
    Gateway,
    GatewaySse,
    Health,
}

const SCENARIOS: [Scenario; 4] = [
    Scenario::Direct,
    Scenario::Gateway,
    Scenario::GatewaySse,
    Scenario::Health,
];

impl Scenario {
    fn name(self) -> &'static str {
        match self {
            Scenario::Direct => "direct",
            Scenario::Gateway => "gateway",
            Scenario::GatewaySse => "gateway_sse",
            Scenario::Health => "health",
        }
    }
}

struct Opts {
    scenarios: Vec<Scenario>,
    clients: usize,
    seconds: u64,
    postgres: bool,
}

fn opts() -> Opts {
    let mut o = Opts {
        scenarios: Vec::new(),
        clients: 16,
        seconds: 10,
        postgres: false,
    };
    let mut args = std::env::args().skip(1);
    while let Some(a) = args.next() {
        let mut value = || positive(&a, args.next());
        match a.as_str() {
            "--clients" => o.clients = value() as usize,
            "--seconds" => o.seconds = value(),
            "--postgres" => o.postgres = true,
            "--bench" => {}
            other => match SCENARIOS.iter().find(|s| s.name() == other) {
                Some(s) => o.scenarios.push(*s),
                None => panic!(
                    "unknown argument {other:?}: [direct] [gateway] [gateway_sse] [health] [--clients N] [--seconds S] [--postgres]"
                ),
            },
        }
    }
    if o.scenarios.is_empty() {
        o.scenarios = SCENARIOS.to_vec();
    } else {
        o.scenarios = SCENARIOS.iter().copied().filter(|s| o.scenarios.contains(s)).collect();
    }
    o
}

// ------------------------------------------------------------------ upstream

/// A JSON-RPC message as the upstream reads it: its method and id only.
#[derive(Deserialize)]
struct Message<'a> {
    #[serde(borrow)]
    method: Option<Cow<'a, str>>,
    #[serde(borrow)]
    id: Option<&'a RawValue>,
}

/// The upstream MCP server: its URL, and the `tools/call`s it answered.
struct Upstream {
    url: String,
    calls: Arc<AtomicU64>,
}

async fn upstream() -> Upstream {
    let calls = Arc::new(AtomicU64::new(0));
    let counted = calls.clone();
    let app = axum::Router::new().route(
        "/mcp",
        axum::routing::post(move |body: Bytes| {
            let counted = counted.clone();
            async move { upstream_answer(&body, &counted) }
        }),
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}/mcp", listener.local_addr().unwrap());
    tokio::spawn(async move { axum::serve(listener, app).await });
    Upstream { url, calls }
}

fn upstream_answer(body: &[u8], calls: &AtomicU64) -> Response {
    let Ok(m) = serde_json::from_slice::<Message>(body) else {
        return StatusCode::BAD_REQUEST.into_response();
    };
    // A notification (`notifications/initialized`) or a response.
    let Some(id) = m.id.map(RawValue::get) else {
        return StatusCode::ACCEPTED.into_response();
    };
    let json = |text: String| ([(header::CONTENT_TYPE, "application/json")], text).into_response();
    match m.method.as_deref() {
        Some("tools/call") => {
            calls.fetch_add(1, Ordering::Relaxed);
            json(format!(
                r#"{{"jsonrpc":"2.0","id":{id},"result":{{"content":[{{"type":"text","text":"echo"}}]}}}}"#
            ))
        }
        Some("initialize") => {
            let mut r = json(format!(
                r#"{{"jsonrpc":"2.0","id":{id},"result":{{"protocolVersion":"{PROTOCOL}","capabilities":{{"tools":{{}}}},"serverInfo":{{"name":"bench-upstream","version":"1"}}}}}}"#
            ));
            r.headers_mut()
                .insert("mcp-session-id", HeaderValue::from_static(UPSTREAM_SESSION));
            r
        }
        Some("tools/list") => json(format!(
            r#"{{"jsonrpc":"2.0","id":{id},"result":{{"tools":[{{"name":"echo","description":"Answers echo","inputSchema":{{"type":"object","properties":{{"text":{{"type":"string"}}}}}}}}]}}}}"#
        )),
        Some("ping") => json(format!(r#"{{"jsonrpc":"2.0","id":{id},"result":{{}}}}"#)),
        _ => json(format!(
            r#"{{"jsonrpc":"2.0","id":{id},"error":{{"code":-32601,"message":"no such method"}}}}"#
        )),
    }
}

// ------------------------------------------------------------------ setup

/// What the clients need: where to send, as whom, in which sessions.
struct Ctx {
    http: reqwest::Client,
    warden: String,
    upstream: String,
    token: String,
    /// One MCP session with Warden per client.
    sessions: Vec<String>,
}

fn rpc(id: u64, method: &str, params: Value) -> String {
    json!({"jsonrpc": "2.0", "id": id, "method": method, "params": params}).to_string()
}

fn call_body(id: u64, tool: &str) -> String {
    rpc(id, "tools/call", json!({"name": tool, "arguments": {"text": "hello"}}))
}

/// An MCP session of the agent token with Warden, opened as clients open
/// one.
async fn open_session(w: &Warden, token: &str) -> String {
    let init = rpc(
        0,
        "initialize",
        json!({"protocolVersion": PROTOCOL, "capabilities": {},
            "clientInfo": {"name": "warden-bench", "version": "1"}}),
    );
    let r = w
        .http
        .post(format!("{}/mcp", w.base))
        .bearer_auth(token)
        .header("accept", "application/json, text/event-stream")
        .header("content-type", "application/json")
        .body(init)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200, "initialize: {}", r.text().await.unwrap_or_default());
    let session = r.headers()["mcp-session-id"].to_str().unwrap().to_string();
    let r = w
        .http
        .post(format!("{}/mcp", w.base))
        .bearer_auth(token)
        .header("content-type", "application/json")
        .header("mcp-session-id", &session)
        .header("mcp-protocol-version", PROTOCOL)
        .body(json!({"jsonrpc": "2.0", "method": "notifications/initialized"}).to_string())
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 202, "notifications/initialized");
    session
}

/// Registers the upstream, installs the gateway policy, mints the agent
/// token and opens the clients' sessions; checks that a call goes through.
async fn setup(w: &Warden, upstream: &Upstream, clients: usize) -> Ctx {
    let r = w
        .http
        .put(format!("{}/v1/mcp/upstreams/bench", w.base))
        .bearer_auth(&w.admin)
        .json(&json!({"url": upstream.url}))
        .send()
        .await
        .unwrap();
    assert_eq!(
        r.status(),
        201,
        "register the upstream: {}",
        r.text().await.unwrap_or_default()
    );

    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("mcp.rego"), GATEWAY_POLICY).unwrap();
    let bundle = warden::cli::bundle::build(dir.path(), Some("1"), &["warden/mcp".to_string()])
        .expect("the gateway bundle builds");
    w.install_bundle(&w.admin, "mcp", bundle).await;

    let token = w
        .post(
            &w.admin,
            "/v1/tokens",
            &json!({"name": "bench-agent", "roles": ["agent"], "agent_ids": ["bench-agent"]}),
        )
        .await
        .expect("an agent token")["token"]
        .as_str()
        .unwrap()
        .to_string();
    let mut sessions = Vec::with_capacity(clients);
    for _ in 0..clients {
        sessions.push(open_session(w, &token).await);
    }
    let ctx = Ctx {
        http: w.http.clone(),
        warden: w.base.clone(),
        upstream: upstream.url.clone(),
        token,
        sessions,
    };

    // The agent sees the tool, and a call of it is allowed and answered.
    let r = ctx
        .http
        .post(format!("{}/mcp", ctx.warden))
        .bearer_auth(&ctx.token)
        .header("accept", "application/json")
        .header("content-type", "application/json")
        .header("mcp-session-id", &ctx.sessions[0])
        .header("mcp-protocol-version", PROTOCOL)
        .body(rpc(1, "tools/list", json!({})))
        .send()
        .await
        .unwrap();
    let listed: Value = r.json().await.unwrap();
    assert_eq!(
        listed["result"]["tools"][0]["name"], "bench__echo",
        "tools/list: {listed}"
    );
    for s in SCENARIOS {
        if let Err(f) = once(&ctx, s, 0, 1).await {
            panic!("the first {} request failed: {f}", s.name());
        }
    }
    ctx
}

// ------------------------------------------------------------------ requests

fn transport(e: reqwest::Error) -> Failure {
    if e.is_timeout() {
        "timed out".into()
    } else {
        "connection failed".into()
    }
}

/// The JSON answer of a 200.
async fn json_answer(r: reqwest::Response) -> Result<Value, Failure> {
    let status = r.status();
    let body = r.bytes().await.map_err(transport)?;
    if status != 200 {
        return Err(format!("HTTP {}", status.as_u16()));
    }
    serde_json::from_slice(&body).map_err(|_| "not JSON".into())
}

/// The answer to request `id` from an event stream, and when it was
/// parsed; the stream is read to its end (so that the connection is used
/// again).
async fn sse_answer(mut r: reqwest::Response, id: u64, started: Instant) -> Result<(Value, Duration), Failure> {
    if r.status() != 200 {
        return Err(format!("HTTP {}", r.status().as_u16()));
    }
    let streams = r
        .headers()
        .get("content-type")
        .and_then(|v| v.to_str().ok())
        .is_some_and(|c| c.starts_with("text/event-stream"));
    if !streams {
        return Err("not an event stream".into());
    }
    let mut buf: Vec<u8> = Vec::new();
    let mut answer = None;
    while let Some(chunk) = r.chunk().await.map_err(transport)? {
        if answer.is_some() {
            continue;
        }
        buf.extend_from_slice(&chunk);
        while let Some(end) = buf.windows(2).position(|p| p == b"\n\n") {
            let block: Vec<u8> = buf.drain(..end + 2).collect();
            let mut data = String::new();
            for line in String::from_utf8_lossy(&block).lines() {
                if let Some(d) = line.strip_prefix("data:") {
                    data.push_str(d.strip_prefix(' ').unwrap_or(d));
                }
            }
            let Ok(v) = serde_json::from_str::<Value>(&data) else {
                continue;
            };
            if v["id"] == id && (v.get("result").is_some() || v.get("error").is_some()) {
                answer = Some((v, started.elapsed()));
                break;
            }
        }
    }
    answer.ok_or_else(|| "the event stream ended without the answer".into())
}

/// The echo, allowed when it came through the gateway.
fn check_echo(v: &Value, gateway: bool) -> Result<(), Failure> {
    if let Some(e) = v.get("error") {
        return Err(format!("JSON-RPC error {}", e["code"]));
    }
    let r = &v["result"];
    if r["isError"] == true {
        let text: String = r["content"][0]["text"]
            .as_str()
            .unwrap_or("")
            .chars()
            .take(100)
            .collect();
        return Err(format!("tool error: {text}"));
    }
    if r["content"][0]["text"] != "echo" {
        return Err("not the echo".into());
    }
    if gateway && r["_meta"]["warden"]["outcome"] != "allow" {
        return Err(format!("outcome {}", r["_meta"]["warden"]["outcome"]));
    }
    Ok(())
}

/// One request of scenario `s` by client `client`; its latency.
async fn once(ctx: &Ctx, s: Scenario, client: usize, id: u64) -> Result<Duration, Failure> {
    let started = Instant::now();
    match s {
        Scenario::Health => {
            let r = ctx
                .http
                .get(format!("{}/health", ctx.warden))
                .timeout(EVENT_WAIT)
                .send()
                .await
                .map_err(transport)?;
            let status = r.status();
            r.bytes().await.map_err(transport)?;
            if status != 200 {
                return Err(format!("HTTP {}", status.as_u16()));
            }
            Ok(started.elapsed())
        }
        Scenario::Direct => {
            let r = ctx
                .http
                .post(&ctx.upstream)
                .header("accept", "application/json, text/event-stream")
                .header("content-type", "application/json")
                .header("mcp-session-id", UPSTREAM_SESSION)
                .header("mcp-protocol-version", PROTOCOL)
                .body(call_body(id, "echo"))
                .timeout(EVENT_WAIT)
                .send()
                .await
                .map_err(transport)?;
            let answer = json_answer(r).await?;
            let took = started.elapsed();
            check_echo(&answer, false)?;
            Ok(took)
        }
        Scenario::Gateway | Scenario::GatewaySse => {
            let accept = if s == Scenario::Gateway {
                "application/json"
            } else {
                "application/json, text/event-stream"
            };
            let r = ctx
                .http
                .post(format!("{}/mcp", ctx.warden))
                .bearer_auth(&ctx.token)
                .header("accept", accept)
                .header("content-type", "application/json")
                .header("mcp-session-id", &ctx.sessions[client])
                .header("mcp-protocol-version", PROTOCOL)
                .body(call_body(id, "bench__echo"))
                .timeout(EVENT_WAIT)
                .send()
                .await
                .map_err(transport)?;
            let (answer, took) = if s == Scenario::Gateway {
                let answer = json_answer(r).await?;
                (answer, started.elapsed())
            } else {
                sse_answer(r, id, started).await?
            };
            check_echo(&answer, true)?;
            Ok(took)
        }
    }
}

// ------------------------------------------------------------------ load

#[derive(Default)]
struct Stats {
    latency: Vec<Duration>,
    failures: HashMap<Failure, usize>,
}

/// `clients` clients sending requests of `s` back to back for `length`.
async fn load(ctx: &Arc<Ctx>, s: Scenario, clients: usize, length: Duration) -> Stats {
    let deadline = Instant::now() + length;
    let mut tasks = tokio::task::JoinSet::new();
    for client in 0..clients {
        let ctx = ctx.clone();
        tasks.spawn(async move {
            let mut stats = Stats::default();
            // Ids after the first, which `setup` sent.
            let mut id = 1;
            while Instant::now() < deadline {
                id += 1;
                match once(&ctx, s, client, id).await {
                    Ok(took) => stats.latency.push(took),
                    Err(f) => *stats.failures.entry(f).or_default() += 1,
                }
            }
            stats
        });
    }
    let mut all = Stats::default();
    while let Some(s) = tasks.join_next().await {
        let s = s.unwrap();
        all.latency.extend(s.latency);
        for (f, n) in s.failures {
            *all.failures.entry(f).or_default() += n;
        }
    }
    all
}

/// This process's CPU time so far (user + system), in clock ticks.
fn own_cpu_ticks() -> u64 {
    let stat = std::fs::read_to_string("/proc/self/stat").unwrap_or_default();
    let rest = stat.rsplit_once(')').map(|(_, r)| r).unwrap_or_default();
    let fields: Vec<u64> = rest.split_whitespace().map(|f| f.parse().unwrap_or(0)).collect();
    fields.get(11).copied().unwrap_or(0) + fields.get(12).copied().unwrap_or(0)
}

/// The ledger writer's counters, from `/metrics`.
struct Ledger {
    entries: f64,
    commits: f64,
    /// Seconds spent building, signing and committing batches (the
    /// writer commits one batch at a time).
    committing: f64,
}

impl Ledger {
    async fn read(w: &Warden) -> Ledger {
        Ledger {
            entries: w.metric("warden_ledger_appends_total").await,
            commits: w.metric("warden_ledger_batch_entries_count").await,
            committing: w.metric("warden_ledger_commit_duration_seconds_sum").await,
        }
    }

    fn minus(&self, before: &Ledger) -> Ledger {
        Ledger {
            entries: self.entries - before.entries,
            commits: self.commits - before.commits,
            committing: self.committing - before.committing,
        }
    }
}

/// One scenario's figures; its latencies sorted.
struct Measured {
    per_second: f64,
    latency: Vec<Duration>,
}

async fn measure(
    ctx: &Arc<Ctx>,
    w: &Warden,
    upstream: &Upstream,
    s: Scenario,
    o: &Opts,
    backend: &str,
) -> (Measured, Vec<Row>) {
    eprintln!("{} ({backend}): {} clients for {} s…", s.name(), o.clients, o.seconds);
    load(ctx, s, o.clients, WARM_UP).await;
    let ledger = Ledger::read(w).await;
    let (warden_cpu, own_cpu) = (w.cpu_ticks(), own_cpu_ticks());
    let upstream_calls = upstream.calls.load(Ordering::Relaxed);
    let started = Instant::now();
    let mut stats = load(ctx, s, o.clients, Duration::from_secs(o.seconds)).await;
    let secs = started.elapsed().as_secs_f64();
    let ticks = clock_ticks_per_second() * secs;
    let warden_cpu = (w.cpu_ticks() - warden_cpu) as f64 / ticks;
    let own_cpu = (own_cpu_ticks() - own_cpu) as f64 / ticks;
    let reached = upstream.calls.load(Ordering::Relaxed) - upstream_calls;
    let ledger = Ledger::read(w).await.minus(&ledger);

    let ok = stats.latency.len();
    let failed: usize = stats.failures.values().sum();
    let per_second = ok as f64 / secs;
    let mut items = vec![
        ("requests/s", format!("{per_second:.0}")),
        ("latency p50 / p99 / max", spread(&mut stats.latency)),
        (
            "errors",
            if failed == 0 {
                format!("0 of {ok}")
            } else {
                format!("{failed} of {} ({})", ok + failed, failures_text(&stats.failures))
            },
        ),
        (
            "cores busy: Warden / harness",
            format!("{warden_cpu:.2} / {own_cpu:.2}"),
        ),
    ];
    if matches!(s, Scenario::Gateway | Scenario::GatewaySse) {
        items.push(("calls reaching the upstream", format!("{reached} of {}", ok + failed)));
        items.push((
            "ledger entries per call",
            format!("{:.2}", ledger.entries / (ok + failed).max(1) as f64),
        ));
        items.push((
            "ledger commits/s · entries each · writer busy",
            format!(
                "{:.0} · {:.1} · {:.0} %",
                ledger.commits / secs,
                ledger.entries / ledger.commits.max(1.0),
                100.0 * ledger.committing / secs
            ),
        ));
    }
    let scenario = format!("{} · {backend} · {} clients · {secs:.1} s", s.name(), o.clients);
    let m = Measured {
        per_second,
        latency: stats.latency,
    };
    (m, rows(&scenario, items))
}

// ------------------------------------------------------------------ figures

/// The `p` quantile of sorted latencies, in ms.
fn quantile_ms(sorted: &[Duration], p: f64) -> f64 {
    sorted[((sorted.len() - 1) as f64 * p).round() as usize].as_secs_f64() * 1000.0
}

/// `a`'s p50 and p99 minus `b`'s.
fn added(a: &Measured, b: &Measured) -> String {
    if a.latency.is_empty() || b.latency.is_empty() {
        return "-".into();
    }
    let d = |p| quantile_ms(&a.latency, p) - quantile_ms(&b.latency, p);
    let signed = |ms: f64| {
        if ms.abs() < 10.0 {
            format!("{ms:+.2} ms")
        } else {
            format!("{ms:+.1} ms")
        }
    };
    format!("{} / {}", signed(d(0.50)), signed(d(0.99)))
}

fn share(a: &Measured, b: &Measured) -> String {
    format!(
        "{:.0} / {:.0} = {:.1} %",
        a.per_second,
        b.per_second,
        100.0 * a.per_second / b.per_second
    )
}

fn main() {
    let o = opts();
    let backend = if o.postgres { "postgres" } else { "sqlite" };
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    let all = rt.block_on(async {
        let upstream = upstream().await;
        let sessions = (o.clients + 8).max(64).to_string();
        let env = [
            ("WARDEN_MCP__ALLOW_NETWORKS", "[\"127.0.0.0/8\"]"),
            ("WARDEN_MCP__MAX_SESSIONS_PER_TOKEN", sessions.as_str()),
        ];
        let w = Warden::start(o.postgres, &env).await;
        let ctx = Arc::new(setup(&w, &upstream, o.clients).await);
        let mut all = Vec::new();
        let mut measured = HashMap::new();
        for s in &o.scenarios {
            let (m, r) = measure(&ctx, &w, &upstream, *s, &o, backend).await;
            all.extend(r);
            measured.insert(*s, m);
        }
        let get = |s: Scenario| measured.get(&s);
        let mut items = Vec::new();
        if let (Some(g), Some(d)) = (get(Scenario::Gateway), get(Scenario::Direct)) {
            items.push(("added latency p50 / p99 (gateway − direct)", added(g, d)));
        }
        if let (Some(g), Some(d)) = (get(Scenario::GatewaySse), get(Scenario::Direct)) {
            items.push(("added latency p50 / p99 (gateway_sse − direct)", added(g, d)));
        }
        if let (Some(g), Some(d)) = (get(Scenario::Gateway), get(Scenario::Direct)) {
            items.push(("gateway calls/s of direct calls/s", share(g, d)));
        }
        if let (Some(g), Some(h)) = (get(Scenario::Gateway), get(Scenario::Health)) {
            items.push(("gateway calls/s of /health requests/s", share(g, h)));
        }
        items.push((
            "Warden RSS at the end (peak)",
            format!("{} ({})", mib(w.status_kib("VmRSS")), mib(w.status_kib("VmHWM"))),
        ));
        all.extend(rows(&format!("summary · {backend} · {} clients", o.clients), items));
        w.stop().await;
        all
    });
    println!(
        "store: {backend}; {} clients; {} s per scenario after {} s of warm-up; {} cores",
        o.clients,
        o.seconds,
        WARM_UP.as_secs(),
        std::thread::available_parallelism().map_or(0, |n| n.get()),
    );
    print_rows(&all);
}
