//! The audit fan-out under load, per sink, against the same local peers as
//! the tests (the Datadog and Splunk HEC fakes, moto's CloudWatch Logs,
//! librdkafka's mock cluster, and a webhook receiver that checks each
//! signature), with the release `warden` binary as its own process:
//!
//! - **drain**: a backlog of `--events` events is acknowledged while the
//!   peer is down; then the peer comes up and the harness times the drain
//!   (events per second) and samples Warden's resident memory throughout;
//! - **lag**: with the peer up, events are submitted at a steady `--rate`
//!   per second for `--seconds`; the delivery lag of each event is the time
//!   from its submission to its arrival at the peer (p50, p99, max).
//!
//! `cargo bench --bench sinks -- [SINK…] [--events N] [--rate R] [--seconds S]`
//! with SINK among webhook, datadog, splunk_hec, cloudwatch_logs, kafka
//! (default: all). The peers share the machine's cores with Warden and the
//! load generator: the figures are floors.

use std::collections::HashMap;
use std::path::Path;
use std::process::{Child, Command};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::mocking::MockCluster;
use rdkafka::producer::DefaultProducerContext;
use rdkafka::{ClientConfig, Message, Offset, TopicPartitionList};
use serde_json::{Value, json};

#[path = "support/launch.rs"]
mod launch;
use launch::{Launched, launch};
#[path = "../sinks/tests/peers/mod.rs"]
mod peers;
use peers::datadog_intake::{self, Intake};
use peers::free_port;
use peers::moto::{self, KEY_ID, Moto, REGION, SECRET};
use peers::server::Server;
use peers::splunk_collector::{self, Collector};
#[path = "support/webhook.rs"]
mod webhook;
use webhook::{Arrivals, SECRET_WEBHOOK, now_ms, webhook_peer};

const PER_REQUEST: usize = 500;

enum Peer {
    Webhook {
        port: u16,
        arrivals: Arrivals,
        running: Option<Server>,
    },
    Datadog {
        port: u16,
        intake: Arc<Intake>,
        running: Option<Server>,
        seen: usize,
    },
    Splunk {
        port: u16,
        collector: Arc<Collector>,
        running: Option<Server>,
        seen: usize,
    },
    CloudWatch {
        port: u16,
        running: Option<Moto>,
        token: Option<String>,
    },
    Kafka {
        cluster: MockCluster<'static, DefaultProducerContext>,
        arrivals: Arrivals,
        stop: Arc<AtomicBool>,
    },
}

impl Peer {
    fn new(kind: &str) -> Peer {
        let port = free_port();
        match kind {
            "webhook" => Peer::Webhook {
                port,
                arrivals: Arrivals::default(),
                running: None,
            },
            "datadog" => Peer::Datadog {
                port,
                intake: Arc::default(),
                running: None,
                seen: 0,
            },
            "splunk_hec" => Peer::Splunk {
                port,
                collector: Arc::new(Collector::new(true, 0)),
                running: None,
                seen: 0,
            },
            "cloudwatch_logs" => Peer::CloudWatch {
                port,
                running: None,
                token: None,
            },
            "kafka" => {
                let cluster = MockCluster::new(3).unwrap();
                cluster.create_topic("audit", 4, 3).unwrap();
                Peer::Kafka {
                    cluster,
                    arrivals: Arrivals::default(),
                    stop: Arc::default(),
                }
            }
            other => panic!("unknown sink {other:?}: webhook, datadog, splunk_hec, cloudwatch_logs or kafka"),
        }
    }

    fn sink_toml(&self) -> String {
        match self {
            Peer::Webhook { port, .. } => {
                format!("type = \"webhook\"\nurl = \"http://127.0.0.1:{port}/\"\nsecrets = [\"{SECRET_WEBHOOK}\"]\n")
            }
            Peer::Datadog { port, .. } => format!(
                "type = \"datadog\"\nurl = \"http://127.0.0.1:{port}\"\napi_key = \"{}\"\n",
                datadog_intake::KEY
            ),
            Peer::Splunk { port, .. } => format!(
                "type = \"splunk_hec\"\nurl = \"http://127.0.0.1:{port}\"\ntoken = \"{}\"\nack = true\n",
                splunk_collector::TOKEN
            ),
            Peer::CloudWatch { port, .. } => format!(
                "type = \"cloudwatch_logs\"\nregion = \"{REGION}\"\nendpoint = \"http://127.0.0.1:{port}\"\n\
                 log_group = \"bench\"\nlog_stream = \"warden\"\naccess_key_id = \"{KEY_ID}\"\nsecret_access_key = \"{SECRET}\"\n"
            ),
            Peer::Kafka { cluster, .. } => format!(
                "type = \"kafka\"\nbrokers = \"{}\"\ntopic = \"audit\"\n",
                cluster.bootstrap_servers()
            ),
        }
    }

    async fn up(&mut self) {
        match self {
            Peer::Webhook {
                port,
                arrivals,
                running,
            } => *running = Some(webhook_peer(*port, arrivals.clone()).await),
            Peer::Datadog {
                port, intake, running, ..
            } => *running = Some(datadog_intake::serve(intake.clone(), *port).await),
            Peer::Splunk {
                port,
                collector,
                running,
                ..
            } => *running = Some(splunk_collector::serve(collector.clone(), *port).await),
            Peer::CloudWatch { port, running, .. } => *running = Some(moto::moto_on(*port)),
            Peer::Kafka {
                cluster,
                arrivals,
                stop,
            } => {
                for b in 1..=3 {
                    cluster.broker_up(b).unwrap();
                }
                // A consumer that stamps each record as it arrives.
                let (bootstrap, arrivals, stop) = (cluster.bootstrap_servers(), arrivals.clone(), stop.clone());
                std::thread::spawn(move || {
                    let consumer: BaseConsumer = ClientConfig::new()
                        .set("bootstrap.servers", &bootstrap)
                        .set("group.id", "bench")
                        .set("fetch.wait.max.ms", "5")
                        .create()
                        .unwrap();
                    let mut tpl = TopicPartitionList::new();
                    for p in 0..4 {
                        tpl.add_partition_offset("audit", p, Offset::Beginning).unwrap();
                    }
                    consumer.assign(&tpl).unwrap();
                    while !stop.load(Ordering::Relaxed) {
                        if let Some(Ok(m)) = consumer.poll(Duration::from_millis(50)) {
                            let event = serde_json::from_slice(m.payload().unwrap_or_default()).unwrap_or_default();
                            arrivals.lock().unwrap().push((now_ms(), event));
                        }
                    }
                });
            }
        }
    }

    /// Takes the peer down (the HTTP peers and moto are down until they
    /// first come up).
    fn down(&mut self) {
        if let Peer::Kafka { cluster, .. } = self {
            for b in 1..=3 {
                cluster.broker_down(b).unwrap();
            }
        }
    }

    /// Events that arrived since the last call, stamped with their arrival
    /// (for the fakes and moto: when this call saw them, an upper bound).
    async fn take_new(&mut self) -> Vec<(i64, Value)> {
        let now = now_ms();
        match self {
            Peer::Webhook { arrivals, .. } | Peer::Kafka { arrivals, .. } => {
                std::mem::take(&mut *arrivals.lock().unwrap())
            }
            Peer::Datadog { intake, seen, .. } => {
                let entries = intake.entries.lock().unwrap();
                let new = entries[*seen..]
                    .iter()
                    .map(|e| {
                        (
                            now,
                            serde_json::from_str(e["message"].as_str().unwrap_or("{}")).unwrap_or_default(),
                        )
                    })
                    .collect();
                *seen = entries.len();
                new
            }
            Peer::Splunk { collector, seen, .. } => {
                let indexed = collector.indexed.lock().unwrap();
                let new = indexed[*seen..].iter().map(|e| (now, e["event"].clone())).collect();
                *seen = indexed.len();
                new
            }
            Peer::CloudWatch { running, token, .. } => {
                let Some(moto) = running else { return Vec::new() };
                let client = moto::reader(&moto.url).await;
                let mut out = Vec::new();
                loop {
                    let Ok(page) = client
                        .get_log_events()
                        .log_group_name("bench")
                        .log_stream_name("warden")
                        .start_from_head(true)
                        .limit(10_000)
                        .set_next_token(token.clone())
                        .send()
                        .await
                    else {
                        return out;
                    };
                    if page.events().is_empty() {
                        return out;
                    }
                    // Stamped with the time moto ingested each event.
                    out.extend(page.events().iter().map(|e| {
                        (
                            e.ingestion_time().unwrap_or(now),
                            serde_json::from_str(e.message().unwrap_or("{}")).unwrap_or_default(),
                        )
                    }));
                    *token = page.next_forward_token().map(str::to_string);
                }
            }
        }
    }
}

struct Warden {
    child: Child,
    base: String,
    token: String,
    http: reqwest::Client,
}

impl Drop for Warden {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Warden {
    async fn start(dir: &Path, sink_toml: &str) -> Warden {
        let config = dir.join("warden.toml");
        std::fs::write(&config, format!("[[sinks]]\nname = \"bench\"\n{sink_toml}")).unwrap();
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_warden"));
        cmd.args(["serve", "--listen", "127.0.0.1:0", "--data-dir"])
            .arg(dir.join("data"))
            .env("WARDEN_CONFIG", &config)
            .env("WARDEN_LOG", "info");
        let Launched {
            child,
            admin,
            base,
            log,
        } = launch(cmd);
        std::thread::spawn(move || for _ in log {});
        let http = reqwest::Client::new();
        let token: Value = http
            .post(format!("{base}/v1/tokens"))
            .bearer_auth(&admin)
            .json(&json!({"name": "bench", "roles": ["orchestrator", "auditor"]}))
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        Warden {
            child,
            base,
            token: token["token"].as_str().unwrap().to_string(),
            http,
        }
    }

    /// Submits `n` events stamped now, in one request.
    async fn submit(&self, n: usize, label: usize) {
        let ts = chrono_ms(now_ms());
        let body: String = (0..n)
            .map(|i| {
                json!({"timestamp": ts, "workflow_id": format!("wf-{}", i % 64), "action": "document_read",
                    "result": "success", "activity_id": format!("a-{label}-{i}"),
                    "resource": {"connector": "gdrive", "project_id": "p-7", "document_name": "Quarterly plan.docx"},
                    "user_context": {"initiated_by": "user_j_morrison"}, "latency_ms": 42})
                .to_string()
            })
            .collect::<Vec<_>>()
            .join("\n");
        let r = self
            .http
            .post(format!("{}/v1/audit/events", self.base))
            .bearer_auth(&self.token)
            .header("content-type", "application/x-ndjson")
            .body(body)
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 201);
    }

    fn rss_kib(&self) -> u64 {
        let status = std::fs::read_to_string(format!("/proc/{}/status", self.child.id())).unwrap_or_default();
        status
            .lines()
            .find_map(|l| l.strip_prefix("VmRSS:"))
            .and_then(|v| v.split_whitespace().next())
            .and_then(|v| v.parse().ok())
            .unwrap_or(0)
    }
}

fn chrono_ms(ms: i64) -> String {
    warden::clock::rfc3339_ms(ms)
}

fn timestamp_ms(event: &Value) -> Option<i64> {
    let t = event["timestamp"].as_str()?;
    let t = chrono::DateTime::parse_from_rfc3339(t).ok()?;
    Some(t.timestamp_millis())
}

async fn drain(kind: &str, events: usize) {
    let dir = tempfile::tempdir().unwrap();
    let mut peer = Peer::new(kind);
    peer.down();
    let warden = Warden::start(dir.path(), &peer.sink_toml()).await;
    let idle = warden.rss_kib();
    let started = Instant::now();
    let warden = Arc::new(warden);
    let mut tasks = tokio::task::JoinSet::new();
    for worker in 0..4 {
        let w = warden.clone();
        tasks.spawn(async move {
            for r in (worker..events.div_ceil(PER_REQUEST)).step_by(4) {
                w.submit(PER_REQUEST.min(events - r * PER_REQUEST), r).await;
            }
        });
    }
    while tasks.join_next().await.is_some() {}
    let ingest = started.elapsed();
    let before = warden.rss_kib();
    peer.up().await;
    let started = Instant::now();
    let (mut got, mut peak) = (0, before);
    while got < events {
        got += peer.take_new().await.len();
        peak = peak.max(warden.rss_kib());
        assert!(
            started.elapsed() < Duration::from_secs(1800),
            "drained {got} of {events}"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let secs = started.elapsed().as_secs_f64();
    println!(
        "{kind:>16} drain: {events} events in {secs:.1} s = {:.0} events/s (ingest {:.0} events/s); \
         RSS MiB: idle {}, backlog {}, peak while draining {}",
        events as f64 / secs,
        events as f64 / ingest.as_secs_f64(),
        idle / 1024,
        before / 1024,
        peak / 1024
    );
    if let Peer::Kafka { stop, .. } = &peer {
        stop.store(true, Ordering::Relaxed);
    }
}

async fn lag(kind: &str, rate: usize, seconds: u64) {
    let dir = tempfile::tempdir().unwrap();
    let mut peer = Peer::new(kind);
    peer.up().await;
    let warden = Arc::new(Warden::start(dir.path(), &peer.sink_toml()).await);
    // 100 requests a second, rate/100 events each.
    let per_tick = (rate / 100).max(1);
    let total = per_tick * 100 * seconds as usize;
    let w = warden.clone();
    let load = tokio::spawn(async move {
        let mut tick = tokio::time::interval(Duration::from_millis(10));
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Burst);
        for i in 0..100 * seconds as usize {
            tick.tick().await;
            let w = w.clone();
            tokio::spawn(async move { w.submit(per_tick, i).await });
        }
    });
    let mut lags: Vec<i64> = Vec::with_capacity(total);
    let mut seen: HashMap<String, ()> = HashMap::new();
    let deadline = Instant::now() + Duration::from_secs(seconds + 120);
    while lags.len() < total && Instant::now() < deadline {
        for (arrived, event) in peer.take_new().await {
            let id = event["event_id"].as_str().unwrap_or_default().to_string();
            if let (Some(ts), None) = (timestamp_ms(&event), seen.insert(id, ())) {
                lags.push(arrived - ts);
            }
        }
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    load.await.unwrap();
    lags.sort_unstable();
    let pct = |p: f64| {
        lags.get(((lags.len() as f64 * p) as usize).min(lags.len().saturating_sub(1)))
            .copied()
            .unwrap_or(-1)
    };
    println!(
        "{kind:>16} lag at {rate} events/s for {seconds} s: {} of {total} delivered; p50 {} ms, p99 {} ms, max {} ms",
        lags.len(),
        pct(0.50),
        pct(0.99),
        lags.last().copied().unwrap_or(-1)
    );
    if let Peer::Kafka { stop, .. } = &peer {
        stop.store(true, Ordering::Relaxed);
    }
}

fn main() {
    let mut kinds = Vec::new();
    let (mut events, mut rate, mut seconds) = (200_000usize, 5_000usize, 20u64);
    let mut args = std::env::args().skip(1);
    while let Some(a) = args.next() {
        let mut value = || args.next().and_then(|v| v.parse::<u64>().ok()).expect("a number");
        match a.as_str() {
            "--events" => events = value() as usize,
            "--rate" => rate = value() as usize,
            "--seconds" => seconds = value(),
            "--bench" => {}
            k if !k.starts_with('-') => kinds.push(k.to_string()),
            _ => {}
        }
    }
    if kinds.is_empty() {
        kinds = ["webhook", "datadog", "splunk_hec", "cloudwatch_logs", "kafka"]
            .map(String::from)
            .to_vec();
    }
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(async {
        for kind in &kinds {
            drain(kind, events).await;
            lag(kind, rate, seconds).await;
        }
    });
}
