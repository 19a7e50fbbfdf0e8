//! Every sink, end to end through the `warden` binary, as an operator
//! meets an outage:
//!
//! 1. the peer is up; events are delivered, and a poison event (one the peer
//!    refuses for good) goes to the dead-letter store with its reason
//!    without holding back the events behind it;
//! 2. the peer goes down; events are acknowledged; Warden is killed with
//!    SIGKILL and restarted during the outage; more events are acknowledged;
//! 3. the peer comes back and holds every acknowledged event, each
//!    `event_id` at least once; duplicates are counted, and may only be
//!    events delivered before the crash;
//! 4. redrive, once the peer takes the poison event, delivers it.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;
use std::time::{Duration, Instant};

use base64::Engine as _;
use serde_json::{Value, json};

use crate::cli::{Server, start};
use crate::common::*;
use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::message::Headers;
use rdkafka::mocking::MockCluster;
use rdkafka::producer::DefaultProducerContext;
use rdkafka::{ClientConfig, Message, Offset, TopicPartitionList};
use warden::clock::rfc3339_ms;

use crate::peers::datadog_intake::{self, Intake};
use crate::peers::free_port;
use crate::peers::moto::{KEY_ID, Moto, REGION, SECRET, moto_on, reader, stored};
use crate::peers::server::Server as HttpPeer;
use crate::peers::splunk_collector::{self, Collector};
use crate::peers::webhook::{Receiver, receiver};

/// The text that marks the poison event.
const POISON: &str = "poison-activity";

/// Runs the outage against a peer once per storage backend.
macro_rules! outage_on_both_backends {
    ($($name:ident: $peer:expr),* $(,)?) => {
        $(
            mod $name {
                use super::*;
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn sqlite() {
                    outage($peer, None).await
                }
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn postgres() {
                    outage($peer, Some(fresh_postgres_database().await)).await
                }
            }
        )*
    };
}

outage_on_both_backends!(
    webhook_outage_across_kill_9: Peer::webhook(),
    datadog_outage_across_kill_9: Peer::datadog(),
    splunk_hec_outage_across_kill_9: Peer::splunk(),
    cloudwatch_logs_outage_across_kill_9: Peer::cloudwatch(),
    kafka_outage_across_kill_9: Peer::kafka(),
);

/// A sink's peer that can go down and come back on the same address.
enum Peer {
    Webhook {
        secret: String,
        port: u16,
        running: Option<Receiver>,
        /// What earlier runs of the receiver accepted.
        seen: Vec<Value>,
        /// Breaches earlier runs of the receiver saw.
        breaches: Vec<String>,
    },
    Datadog {
        intake: Arc<Intake>,
        port: u16,
        running: Option<HttpPeer>,
    },
    Splunk {
        collector: Arc<Collector>,
        port: u16,
        running: Option<HttpPeer>,
    },
    /// moto's server; it keeps nothing across a restart.
    CloudWatch {
        port: u16,
        running: Option<Moto>,
        seen: Vec<Value>,
        breaches: Vec<String>,
    },
    /// librdkafka's mock cluster, its brokers taken down and brought back.
    Kafka {
        cluster: MockCluster<'static, DefaultProducerContext>,
    },
}

const KAFKA_TOPIC: &str = "audit";
const KAFKA_PARTITIONS: i32 = 2;
const CLOUDWATCH_GROUP: &str = "warden-audit";
const CLOUDWATCH_STREAM: &str = "warden-1";

/// One record of the topic: where it was, its key and `event_id` header,
/// and the event it carries.
struct KafkaRecord {
    partition: i32,
    key: Option<String>,
    event_id_header: Option<String>,
    event: Value,
}

/// Every record of the topic, read from the start of each partition up to
/// its high watermark.
fn kafka_records(bootstrap: &str) -> Vec<KafkaRecord> {
    let consumer: BaseConsumer = ClientConfig::new()
        .set("bootstrap.servers", bootstrap)
        .set("group.id", "warden-test")
        .set("enable.auto.commit", "false")
        .create()
        .unwrap();
    let mut total = 0;
    let mut assignment = TopicPartitionList::new();
    for p in 0..KAFKA_PARTITIONS {
        let (_, high) = consumer
            .fetch_watermarks(KAFKA_TOPIC, p, Duration::from_secs(5))
            .unwrap();
        total += high;
        assignment
            .add_partition_offset(KAFKA_TOPIC, p, Offset::Beginning)
            .unwrap();
    }
    consumer.assign(&assignment).unwrap();
    let deadline = Instant::now() + Duration::from_secs(15);
    let mut out = Vec::new();
    while (out.len() as i64) < total && Instant::now() < deadline {
        if let Some(m) = consumer.poll(Duration::from_millis(100)) {
            let m = m.unwrap();
            let text = |b: Option<&[u8]>| b.map(|b| String::from_utf8_lossy(b).into_owned());
            let event_id_header = m
                .headers()
                .and_then(|h| h.iter().find(|h| h.key == "event_id").and_then(|h| text(h.value)));
            out.push(KafkaRecord {
                partition: m.partition(),
                key: text(m.key()),
                event_id_header,
                event: serde_json::from_slice(m.payload().unwrap()).unwrap(),
            });
        }
    }
    out
}

fn now_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_millis() as i64
}

impl Peer {
    fn webhook() -> Self {
        Peer::Webhook {
            secret: format!("whsec_{}", base64::engine::general_purpose::STANDARD.encode([5u8; 32])),
            port: free_port(),
            running: None,
            seen: Vec::new(),
            breaches: Vec::new(),
        }
    }

    fn datadog() -> Self {
        Peer::Datadog {
            intake: Arc::default(),
            port: free_port(),
            running: None,
        }
    }

    fn splunk() -> Self {
        Peer::Splunk {
            // Indexer acknowledgement on: a batch counts once indexed.
            collector: Arc::new(Collector::new(true, 1)),
            port: free_port(),
            running: None,
        }
    }

    fn cloudwatch() -> Self {
        Peer::CloudWatch {
            port: free_port(),
            running: None,
            seen: Vec::new(),
            breaches: Vec::new(),
        }
    }

    fn kafka() -> Self {
        let cluster = MockCluster::new(1).expect("a mock cluster");
        cluster
            .create_topic(KAFKA_TOPIC, KAFKA_PARTITIONS, 1)
            .expect("a mock topic");
        cluster.broker_down(1).unwrap();
        Peer::Kafka { cluster }
    }

    /// What makes the poison event poison, beyond its marker.
    fn poison_fields(&self) -> Value {
        match self {
            // Over the producer's message.max.bytes: refused by size.
            Peer::Kafka { .. } => json!({"attributes": {"padding": "x".repeat(30_000)}}),
            // Three hours ahead: CloudWatch Logs refuses it as too new.
            Peer::CloudWatch { .. } => json!({"timestamp": rfc3339_ms(now_ms() + 3 * 3_600_000)}),
            _ => json!({}),
        }
    }

    /// What the dead letter's reason says.
    fn poison_reason(&self) -> &'static str {
        match self {
            Peer::Kafka { .. } => "over the peer's limit",
            Peer::CloudWatch { .. } => "too new",
            _ => "400",
        }
    }

    /// Whether the peer can be made to take the poison event (the others
    /// refuse it for what it is: it stays a dead letter).
    fn fixable(&self) -> bool {
        !matches!(self, Peer::Kafka { .. } | Peer::CloudWatch { .. })
    }

    fn sink_toml(&self) -> String {
        match self {
            Peer::CloudWatch { port, .. } => format!(
                "type = \"cloudwatch_logs\"\nregion = \"{REGION}\"\nendpoint = \"http://127.0.0.1:{port}\"\n\
                 log_group = \"{CLOUDWATCH_GROUP}\"\nlog_stream = \"{CLOUDWATCH_STREAM}\"\n\
                 access_key_id = \"{KEY_ID}\"\nsecret_access_key = \"{SECRET}\"\ntimeout_ms = 2000\n"
            ),
            Peer::Kafka { cluster } => format!(
                "type = \"kafka\"\nbrokers = \"{}\"\ntopic = \"{KAFKA_TOPIC}\"\ntimeout_ms = 2000\n\
                 [sinks.properties]\n\"message.max.bytes\" = \"20000\"\n\"reconnect.backoff.max.ms\" = \"300\"\n\
                 \"retry.backoff.max.ms\" = \"300\"\n",
                cluster.bootstrap_servers()
            ),
            Peer::Webhook { secret, port, .. } => format!(
                "type = \"webhook\"\nurl = \"http://127.0.0.1:{port}/\"\nsecrets = [\"{secret}\"]\ntimeout_ms = 1000\n"
            ),
            Peer::Datadog { port, .. } => format!(
                "type = \"datadog\"\nurl = \"http://127.0.0.1:{port}\"\napi_key = \"{}\"\nddtags = [\"env:test\"]\ntimeout_ms = 1000\n",
                datadog_intake::KEY
            ),
            Peer::Splunk { port, .. } => format!(
                "type = \"splunk_hec\"\nurl = \"http://127.0.0.1:{port}\"\ntoken = \"{}\"\nack = true\nack_timeout_ms = 2000\ntimeout_ms = 1000\n",
                splunk_collector::TOKEN
            ),
        }
    }

    async fn up(&mut self) {
        match self {
            Peer::Webhook {
                secret, port, running, ..
            } => *running = Some(receiver(secret, *port)),
            Peer::Datadog { intake, port, running } => {
                *running = Some(datadog_intake::serve(intake.clone(), *port).await)
            }
            Peer::Splunk {
                collector,
                port,
                running,
            } => *running = Some(splunk_collector::serve(collector.clone(), *port).await),
            Peer::CloudWatch { port, running, .. } => *running = Some(moto_on(*port)),
            Peer::Kafka { cluster } => cluster.broker_up(1).unwrap(),
        }
    }

    async fn down(&mut self) {
        let seen_now = self.current().await;
        let breaches_now = self.violations().await;
        match self {
            Peer::Webhook {
                running,
                seen,
                breaches,
                ..
            } => {
                seen.extend(seen_now);
                *breaches = breaches_now;
                drop(running.take());
            }
            Peer::CloudWatch {
                running,
                seen,
                breaches,
                ..
            } => {
                seen.extend(seen_now);
                *breaches = breaches_now;
                drop(running.take());
            }
            Peer::Kafka { cluster } => cluster.broker_down(1).unwrap(),
            Peer::Datadog { running, .. } | Peer::Splunk { running, .. } => {
                if let Some(s) = running.take() {
                    s.stop().await;
                }
            }
        }
    }

    /// The events the running peer holds (for the fakes: ever held).
    async fn current(&self) -> Vec<Value> {
        match self {
            Peer::Webhook { port, running, .. } => {
                if running.is_none() {
                    return Vec::new();
                }
                let got: Vec<Value> = reqwest::get(format!("http://127.0.0.1:{port}/"))
                    .await
                    .unwrap()
                    .json()
                    .await
                    .unwrap();
                got.into_iter().map(|d| d["event"].clone()).collect()
            }
            Peer::Datadog { intake, .. } => intake.events(),
            Peer::Splunk { collector, .. } => collector.events(),
            Peer::CloudWatch { running, .. } => {
                let Some(moto) = running else {
                    return Vec::new();
                };
                cloudwatch_records(&moto.url)
                    .await
                    .into_iter()
                    .map(|(_, m)| serde_json::from_str(&m).unwrap())
                    .collect()
            }
            Peer::Kafka { cluster } => {
                let bootstrap = cluster.bootstrap_servers();
                tokio::task::spawn_blocking(move || kafka_records(&bootstrap))
                    .await
                    .unwrap()
                    .into_iter()
                    .map(|r| r.event)
                    .collect()
            }
        }
    }

    /// Every delivery so far, across restarts of the peer, in order.
    async fn delivered(&self) -> Vec<Value> {
        let mut all = match self {
            Peer::Webhook { seen, .. } | Peer::CloudWatch { seen, .. } => seen.clone(),
            _ => Vec::new(),
        };
        all.extend(self.current().await);
        all
    }

    /// Makes the peer refuse, for good, events holding `marker` (None: take
    /// everything again).
    async fn refuse(&self, marker: Option<&str>) {
        match self {
            Peer::Webhook { port, .. } => {
                reqwest::Client::new()
                    .post(format!("http://127.0.0.1:{port}/control"))
                    .body(json!({"refuse": marker}).to_string())
                    .send()
                    .await
                    .unwrap();
            }
            Peer::Datadog { intake, .. } => *intake.refuse.lock().unwrap() = marker.map(str::to_string),
            Peer::Splunk { collector, .. } => *collector.refuse.lock().unwrap() = marker.map(str::to_string),
            Peer::CloudWatch { .. } | Peer::Kafka { .. } => {}
        }
    }

    /// Breaches of the peer's wire contract seen so far.
    ///
    /// - webhook: a delivery the official verifier refused, or whose
    ///   `webhook-id` is not its event's id (receivers deduplicate on it);
    /// - CloudWatch Logs: a record whose timestamp is not its event's time,
    ///   or whose message is not the event;
    /// - Kafka: a record whose key is not its workflow (or, without one, its
    ///   event), whose `event_id` header is not its event's, or a key found
    ///   on two partitions (its events would lose their order);
    /// - Datadog and Splunk HEC: what their fakes check on each request.
    async fn violations(&self) -> Vec<String> {
        match self {
            Peer::Webhook {
                port,
                running,
                breaches,
                ..
            } => {
                let mut out = breaches.clone();
                if running.is_none() {
                    return out;
                }
                let base = format!("http://127.0.0.1:{port}");
                let refused: Vec<String> = reqwest::get(format!("{base}/refused"))
                    .await
                    .unwrap()
                    .json()
                    .await
                    .unwrap();
                out.extend(refused.into_iter().map(|r| format!("unverifiable delivery: {r}")));
                let got: Vec<Value> = reqwest::get(format!("{base}/")).await.unwrap().json().await.unwrap();
                for d in got {
                    if d["webhook_id"] != d["event"]["event_id"] {
                        out.push(format!(
                            "webhook-id {} for event {}",
                            d["webhook_id"], d["event"]["event_id"]
                        ));
                    }
                }
                out
            }
            Peer::CloudWatch { running, breaches, .. } => {
                let mut out = breaches.clone();
                let Some(moto) = running else {
                    return out;
                };
                for (ts, message) in cloudwatch_records(&moto.url).await {
                    let event: Value = match serde_json::from_str(&message) {
                        Ok(v) => v,
                        Err(e) => {
                            out.push(format!("a record that is not an event ({e}): {message}"));
                            continue;
                        }
                    };
                    let at = event["timestamp"]
                        .as_str()
                        .and_then(|t| chrono::DateTime::parse_from_rfc3339(t).ok())
                        .map(|t| t.timestamp_millis());
                    if at != Some(ts) {
                        out.push(format!(
                            "record at {ts} for event {} dated {}",
                            event["event_id"], event["timestamp"]
                        ));
                    }
                }
                out
            }
            Peer::Kafka { cluster } => {
                let bootstrap = cluster.bootstrap_servers();
                let records = tokio::task::spawn_blocking(move || kafka_records(&bootstrap))
                    .await
                    .unwrap();
                let mut out = Vec::new();
                let mut partitions: BTreeMap<String, BTreeSet<i32>> = BTreeMap::new();
                for r in &records {
                    let want = r.event["workflow_id"].as_str().or(r.event["event_id"].as_str());
                    if r.key.as_deref() != want {
                        out.push(format!("key {:?} for event {}", r.key, r.event["event_id"]));
                    }
                    if r.event_id_header.as_deref() != r.event["event_id"].as_str() {
                        out.push(format!(
                            "event_id header {:?} for event {}",
                            r.event_id_header, r.event["event_id"]
                        ));
                    }
                    partitions
                        .entry(r.key.clone().unwrap_or_default())
                        .or_default()
                        .insert(r.partition);
                }
                for (key, on) in partitions {
                    if on.len() > 1 {
                        out.push(format!("key {key} on partitions {on:?}"));
                    }
                }
                out
            }
            Peer::Datadog { intake, .. } => intake.violations.lock().unwrap().clone(),
            Peer::Splunk { collector, .. } => collector.violations.lock().unwrap().clone(),
        }
    }
}

/// Every record of the log stream on moto's server, with its timestamp.
async fn cloudwatch_records(url: &str) -> Vec<(i64, String)> {
    let client = reader(url).await;
    let exists = client
        .describe_log_streams()
        .log_group_name(CLOUDWATCH_GROUP)
        .send()
        .await
        .is_ok_and(|r| !r.log_streams().is_empty());
    if !exists {
        return Vec::new();
    }
    stored(&client, CLOUDWATCH_GROUP, CLOUDWATCH_STREAM).await
}

struct Client {
    http: reqwest::Client,
    base: String,
    token: String,
}

impl Client {
    async fn call(&self, method: reqwest::Method, path: &str, body: Option<Value>) -> (u16, Value) {
        let mut req = self
            .http
            .request(method, format!("{}{path}", self.base))
            .bearer_auth(&self.token);
        if let Some(b) = body {
            req = req.json(&b);
        }
        let r = req.send().await.unwrap();
        let status = r.status().as_u16();
        (status, r.json().await.unwrap_or(Value::Null))
    }

    /// Submits `n` events labelled `label`, with `extra` fields; returns
    /// their ids.
    async fn submit(&self, label: &str, n: usize, extra: &Value) -> Vec<String> {
        let events: Vec<Value> = (0..n)
            .map(|i| {
                let mut e = json!({"timestamp": rfc3339_ms(now_ms()), "workflow_id": format!("wf-{}", i % 3),
                    "action": "document_read", "result": "success", "activity_id": format!("{label}-{i}")});
                for (k, v) in extra.as_object().unwrap() {
                    e[k] = v.clone();
                }
                e
            })
            .collect();
        let (status, body) = self
            .call(reqwest::Method::POST, "/v1/audit/events", Some(json!(events)))
            .await;
        assert_eq!(status, 201, "{body}");
        body["events"]
            .as_array()
            .unwrap()
            .iter()
            .map(|e| e["event_id"].as_str().unwrap().to_string())
            .collect()
    }

    async fn sink(&self) -> Value {
        let (status, body) = self.call(reqwest::Method::GET, "/v1/sinks", None).await;
        assert_eq!(status, 200, "{body}");
        body[0].clone()
    }

    /// Waits until the sink reports a failed attempt after `before` (the
    /// `last_error_at` seen earlier) and a lag of `lag` entries.
    async fn failing_with_lag(&self, before: &Value, lag: u64) -> Value {
        let deadline = Instant::now() + Duration::from_secs(60);
        loop {
            let s = self.sink().await;
            if !s["last_error_at"].is_null() && s["last_error_at"] != *before && s["lag"] == lag {
                return s;
            }
            assert!(
                Instant::now() < deadline,
                "the sink, failing after the restart, reports a lag of {lag}: {s}"
            );
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    /// Waits until the sink has nothing left to deliver.
    async fn drained(&self) -> Value {
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            let s = self.sink().await;
            if s["lag"] == 0 {
                return s;
            }
            assert!(Instant::now() < deadline, "the sink drains: {s}");
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }
}

fn ids(events: &[Value]) -> Vec<String> {
    events
        .iter()
        .map(|e| e["event_id"].as_str().unwrap_or_default().to_string())
        .collect()
}

async fn until_holds(peer: &Peer, want: &BTreeSet<String>) -> Vec<String> {
    let deadline = Instant::now() + Duration::from_secs(45);
    loop {
        let got = ids(&peer.delivered().await);
        let have: BTreeSet<String> = got.iter().cloned().collect();
        if want.is_subset(&have) || Instant::now() > deadline {
            return got;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

async fn outage(mut peer: Peer, database_url: Option<String>) {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let config = dir.path().join("warden.toml");
    std::fs::write(&config, format!("[[sinks]]\nname = \"siem\"\n{}", peer.sink_toml())).unwrap();
    let mut env: Vec<(&str, &str)> = vec![("WARDEN_CONFIG", config.to_str().unwrap())];
    if let Some(url) = &database_url {
        env.push(("WARDEN_DATABASE_URL", url.as_str()));
    }

    // 1. Up, with a poison event in the middle of a batch.
    peer.up().await;
    peer.refuse(Some(POISON)).await;
    let mut server = start(&data, &env);
    let admin = server.bootstrap_token();
    let bootstrap = Client {
        http: reqwest::Client::new(),
        base: server.base.clone(),
        token: admin.clone(),
    };
    let (_, t) = bootstrap
        .call(
            reqwest::Method::POST,
            "/v1/tokens",
            Some(json!({"name": "o", "roles": ["orchestrator", "auditor"]})),
        )
        .await;
    let client = Client {
        token: t["token"].as_str().unwrap().to_string(),
        ..bootstrap
    };
    let none = json!({});
    let mut first = client.submit("up", 8, &none).await;
    let poison = client.submit(POISON, 1, &peer.poison_fields()).await.remove(0);
    first.extend(client.submit("up-after", 8, &none).await);
    let before: BTreeSet<String> = first.iter().cloned().collect();
    let got = until_holds(&peer, &before).await;
    assert!(!got.contains(&poison), "the poison event was refused");
    let status = client.drained().await;
    assert_eq!(status["dead_letters"], 1, "{status}");
    let (_, letters) = client
        .call(reqwest::Method::GET, "/v1/sinks/siem/dead-letters", None)
        .await;
    assert_eq!(letters[0]["event_id"], poison.as_str(), "{letters}");
    let reason = letters[0]["reason"].as_str().unwrap();
    assert!(reason.contains(peer.poison_reason()), "{reason}");
    let delivered_before_crash: BTreeSet<String> = got.iter().cloned().collect();
    assert_eq!(delivered_before_crash, before, "the events behind the poison went on");

    // 2. Down; acknowledged; kill -9 and restart during the outage.
    peer.down().await;
    let drained_at = status["cursor"].clone();
    let mut acknowledged = before.clone();
    acknowledged.extend(client.submit("down", 30, &none).await);
    let status = client.sink().await;
    server.child.kill().unwrap();
    server.child.wait().unwrap();
    drop(server);
    let server: Server = start(&data, &env);
    let client = Client {
        base: server.base.clone(),
        ..client
    };
    acknowledged.extend(client.submit("after-restart", 20, &none).await);
    // The restarted instance tries the peer, fails, and reports exactly the
    // 50 events acknowledged during the outage as waiting: a sink that
    // counted them delivered, skipped or dead-lettered them, or reported
    // what the killed instance left, never gets there.
    let status = client.failing_with_lag(&status["last_error_at"], 50).await;
    assert_eq!(
        status["cursor"], drained_at,
        "nothing counted delivered while the peer is down: {status}"
    );
    assert_eq!(status["dead_letters"], 1, "none dead-lettered for the outage: {status}");

    // 3. Back: every acknowledged event arrives; duplicates are counted.
    peer.up().await;
    let got = until_holds(&peer, &acknowledged).await;
    let unique: BTreeSet<String> = got.iter().cloned().collect();
    let missing: Vec<&String> = acknowledged.difference(&unique).collect();
    assert!(
        missing.is_empty(),
        "every acknowledged event reached the peer; missing {missing:?}"
    );
    let mut counts: BTreeMap<&str, usize> = BTreeMap::new();
    for id in &got {
        *counts.entry(id.as_str()).or_default() += 1;
    }
    let duplicates: Vec<&str> = counts.iter().filter(|(_, n)| **n > 1).map(|(id, _)| *id).collect();
    eprintln!(
        "{} events acknowledged, {} deliveries, {} duplicated",
        acknowledged.len(),
        got.len(),
        duplicates.len()
    );
    assert!(
        duplicates.iter().all(|id| delivered_before_crash.contains(*id)),
        "duplicates only across the crash: {duplicates:?}"
    );
    let status = client.drained().await;
    assert_eq!(status["dead_letters"], 1, "{status}");

    // 4. The peer takes the poison event now: redrive delivers it. (A peer
    // that refuses it for what it is refuses it again: it stays.)
    peer.refuse(None).await;
    let redrive = Client {
        token: admin,
        http: reqwest::Client::new(),
        base: server.base.clone(),
    };
    let (code, body) = redrive
        .call(reqwest::Method::POST, "/v1/sinks/siem/redrive", None)
        .await;
    assert_eq!(code, 200, "{body}");
    let outcome = (body["delivered"].as_u64(), body["failed"].as_u64());
    if peer.fixable() {
        assert_eq!(outcome, (Some(1), Some(0)), "{body}");
        assert!(ids(&peer.delivered().await).contains(&poison));
        assert_eq!(client.sink().await["dead_letters"], 0);
    } else {
        assert_eq!(outcome, (Some(0), Some(1)), "{body}");
        assert!(!ids(&peer.delivered().await).contains(&poison));
        assert_eq!(client.sink().await["dead_letters"], 1);
    }
    let breaches = peer.violations().await;
    assert!(
        breaches.is_empty(),
        "the wire contract held: {} breaches, the first {:?}",
        breaches.len(),
        &breaches[..breaches.len().min(3)]
    );
    peer.down().await;
    drop(server);
}
