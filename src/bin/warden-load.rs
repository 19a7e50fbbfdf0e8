//! Load harness: HTTP decisions per second, with p50/p99/p99.9 latency, at a
//! fixed concurrency, over keep-alive connections.
//!
//! With no `--url`, it starts a Warden in this process on a loopback port
//! with a throw-away SQLite store and the shipped seed-001 bundle, so one
//! command measures: `cargo run --release --bin warden-load`. With `--url`
//! and `--token` it drives an existing server (whose active bundles must
//! answer `--path`). Client and server share the machine's cores: the figure
//! is a floor for what a server with its own machine does.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use clap::Parser;

#[derive(Debug, Parser)]
#[command(name = "warden-load", about = "HTTP decision throughput and latency")]
struct Args {
    /// Server to drive; omit to start one in-process.
    #[arg(long)]
    url: Option<String>,
    /// Token with the orchestrator (or admin) role, for --url.
    #[arg(long, env = "WARDEN_TOKEN", hide_env_values = true)]
    token: Option<String>,
    /// Requests in flight at once.
    #[arg(long, default_value_t = 64)]
    concurrency: usize,
    /// Seconds of measured load (after one second of warm-up).
    #[arg(long, default_value_t = 10)]
    seconds: u64,
    /// Decision path.
    #[arg(long, default_value = "agento/commissioning/routing")]
    path: String,
    /// Store for the in-process server (default: SQLite in a temporary
    /// directory), e.g. `postgres://postgres@127.0.0.1:5432/bench`.
    #[arg(long)]
    database_url: Option<String>,
    /// Tokio worker threads for the client side.
    #[arg(long, default_value_t = 1)]
    client_threads: usize,
}

const INPUT: &str = r#"{"procore":{"punch_items_open_bess":[]},"protection_settings_schedule":{"trip_voltage":{"expected":480,"tolerance":5},"trip_delay_ms":{"expected":200,"tolerance":10}},"test_results":[{"parameter":"trip_voltage","value":483},{"parameter":"trip_delay_ms","value":205}]}"#;

fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    // The in-process server gets its own runtime and threads; the client
    // runs on a separate one, so the two do not share a scheduler.
    let (url, token, _server) = match &args.url {
        Some(u) => (
            u.clone(),
            args.token
                .clone()
                .context("--token (or WARDEN_TOKEN) is required with --url")?,
            None,
        ),
        None => {
            let (url, token, server) = start_server(args.database_url.clone())?;
            (url, token, Some(server))
        }
    };
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(args.client_threads.max(1))
        .enable_all()
        .build()?;
    rt.block_on(drive(&args, &url, &token))
}

struct InProcess {
    _dir: tempfile::TempDir,
    _rt: tokio::runtime::Runtime,
}

fn start_server(database_url: Option<String>) -> anyhow::Result<(String, String, InProcess)> {
    let dir = tempfile::tempdir()?;
    let rt = tokio::runtime::Builder::new_multi_thread().enable_all().build()?;
    let (url, token) = rt.block_on(async {
        let mut config = warden::config::Config::load(None, Vec::<(String, String)>::new())?;
        config.data_dir = dir.path().to_path_buf();
        config.database_url = database_url;
        let (state, boot) = warden::app::build(config, warden::clock::Clock::system(), None).await?;
        let token = match boot {
            warden::app::Bootstrap::Minted(t) => t,
            _ => bail!("a fresh store mints a token"),
        };
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
        let url = format!("http://{}", listener.local_addr()?);
        tokio::spawn(warden::app::run(listener, state, std::future::pending()));
        let bundle = warden::cli::bundle::build(
            std::path::Path::new(concat!(env!("CARGO_MANIFEST_DIR"), "/policies/commissioning")),
            Some("load"),
            &[],
        )?;
        let client = reqwest::Client::new();
        let r = client
            .put(format!("{url}/v1/bundles/commissioning"))
            .bearer_auth(&token)
            .body(bundle)
            .send()
            .await?;
        if !r.status().is_success() {
            bail!("upload failed: {}", r.text().await?);
        }
        let r = client
            .post(format!("{url}/v1/bundles/commissioning/activate"))
            .bearer_auth(&token)
            .json(&serde_json::json!({"revision": "load"}))
            .send()
            .await?;
        if !r.status().is_success() {
            bail!("activation failed: {}", r.text().await?);
        }
        Ok((url, token))
    })?;
    Ok((url, token, InProcess { _dir: dir, _rt: rt }))
}

async fn drive(args: &Args, url: &str, token: &str) -> anyhow::Result<()> {
    let client = reqwest::Client::builder()
        .pool_max_idle_per_host(args.concurrency)
        .build()?;
    let body = bytes_body(&args.path);
    let endpoint = format!("{url}/v1/decisions");
    let measuring = Arc::new(AtomicBool::new(false));
    let stop = Arc::new(AtomicBool::new(false));
    let errors = Arc::new(AtomicU64::new(0));
    let mut workers = Vec::new();
    for _ in 0..args.concurrency {
        let (client, endpoint, token, body) = (client.clone(), endpoint.clone(), token.to_string(), body.clone());
        let (measuring, stop, errors) = (measuring.clone(), stop.clone(), errors.clone());
        workers.push(tokio::spawn(async move {
            let mut latencies: Vec<u32> = Vec::with_capacity(1 << 16);
            while !stop.load(Ordering::Relaxed) {
                let started = Instant::now();
                let ok = match client
                    .post(&endpoint)
                    .bearer_auth(&token)
                    .header("content-type", "application/json")
                    .body(body.clone())
                    .send()
                    .await
                {
                    Ok(r) => r.status().is_success() && r.bytes().await.is_ok(),
                    Err(_) => false,
                };
                if measuring.load(Ordering::Relaxed) {
                    if ok {
                        latencies.push(started.elapsed().as_micros().min(u32::MAX as u128) as u32);
                    } else {
                        errors.fetch_add(1, Ordering::Relaxed);
                    }
                }
            }
            latencies
        }));
    }
    tokio::time::sleep(Duration::from_secs(1)).await;
    measuring.store(true, Ordering::Relaxed);
    let started = Instant::now();
    tokio::time::sleep(Duration::from_secs(args.seconds)).await;
    measuring.store(false, Ordering::Relaxed);
    let elapsed = started.elapsed();
    stop.store(true, Ordering::Relaxed);
    let mut all = Vec::new();
    for w in workers {
        all.extend(w.await?);
    }
    all.sort_unstable();
    let pct = |p: f64| -> f64 {
        if all.is_empty() {
            return 0.0;
        }
        let i = ((all.len() as f64 * p).ceil() as usize).clamp(1, all.len()) - 1;
        all[i] as f64 / 1000.0
    };
    let rate = all.len() as f64 / elapsed.as_secs_f64();
    println!(
        "concurrency {}  requests {}  errors {}",
        args.concurrency,
        all.len(),
        errors.load(Ordering::Relaxed)
    );
    println!("throughput {:.0} decisions/s", rate);
    println!(
        "latency ms  p50 {:.3}  p99 {:.3}  p99.9 {:.3}  max {:.3}",
        pct(0.50),
        pct(0.99),
        pct(0.999),
        pct(1.0)
    );
    if errors.load(Ordering::Relaxed) > 0 {
        bail!("some requests failed");
    }
    Ok(())
}

fn bytes_body(path: &str) -> bytes::Bytes {
    bytes::Bytes::from(format!(
        r#"{{"path":"{path}","input":{INPUT},"context":{{"workflow_id":"wf-load"}}}}"#
    ))
}
