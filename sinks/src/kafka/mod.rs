//! Kafka: one record per event, produced with librdkafka (through `rdkafka`).
//!
//! Each event becomes one record on the configured topic: its key is the
//! event's `workflow_id` (the event's `event_id` when it has none), so the
//! events of one workflow hash to one partition and stay in order there; its
//! value is the event's body, unchanged; its headers are `event_id` and
//! `tenant_id`. The record's timestamp is the time it was produced (the
//! event's own time is in its body): events sent late, after an outage,
//! are then neither refused by a broker's `message.timestamp.before.max.ms`
//! nor counted as old by time-based retention.
//!
//! The client is librdkafka, built in (with TLS through the system's
//! OpenSSL, and SASL PLAIN, SCRAM and OAUTHBEARER); further settings go in
//! [`KafkaConfig::properties`].
//!
//! # Delivery
//!
//! The producer is set up so that nothing is lost silently, and these
//! settings cannot be changed through [`KafkaConfig::properties`]:
//! - `acks=all`: a record counts as delivered once every in-sync replica
//!   has it, not when the leader alone does;
//! - `enable.idempotence=true`: the producer's own retries neither duplicate
//!   nor reorder records within a partition;
//! - `message.timeout.ms=0` (no limit, per librdkafka's `CONFIGURATION.md`)
//!   and unlimited retries: while a broker is away, a record waits for it
//!   instead of expiring with an error after five minutes.
//!
//! [`Sink::send`] hands every record of the batch to the producer (waiting
//! while the producer's local queue is full), then waits for every record's
//! delivery report: it answers `Ok` only once Kafka acknowledged each record
//! or refused it for a reason of its own. So while the brokers are away, a
//! send neither completes nor fails: it waits (see [`KafkaConfig::timeout`]
//! to bound it).
//!
//! # Errors
//!
//! A record Kafka refuses for what it is (larger than `message.max.bytes` or
//! the topic's `max.message.bytes`, invalid or corrupt) is in
//! [`Delivered::rejected`], with the reason, and the others of the batch are
//! delivered. Anything about the cluster or the configuration (the topic
//! does not exist, an authorisation or authentication failure, the brokers
//! do not support idempotence, a fatal producer error) answers
//! [`SendError::Retryable`] for the batch, with a reason an operator can act
//! on: the events wait for the fix rather than being dead-lettered. Records
//! Kafka refused only because they shared a request with an invalid record
//! are produced again, within the same send, without it. After a
//! fatal producer error (librdkafka's `fatal_error`, e.g. a sequence
//! desynchronisation of the idempotent producer) the producer is rebuilt
//! before the next send.
//!
//! # A send that is dropped, or times out
//!
//! Records already handed to the producer stay in its queue when a send's
//! future is dropped (the engine stopping, or [`KafkaConfig::timeout`]): the
//! producer still delivers them, as it never expires a record. Their
//! delivery reports are kept, and the next send of the same events (the
//! engine's retry, matched by tenant and `event_id`) waits for those records
//! instead of producing them again, so a dropped send adds no duplicate; the
//! same holds for the records a failed batch did deliver. When the sink
//! itself is dropped (the process stopping), the producer drops what it has
//! not yet sent; what Kafka acknowledged stays, and as no cursor moved past
//! it, it is sent again after the restart: delivery is at least once, and
//! consumers deduplicate by the `event_id` header.
//!
//! Order: the records of one send are handed over in the batch's order and
//! the events of one workflow share a partition, so Kafka keeps them in
//! order. When a batch is retried after some of its records failed, only
//! those are produced again, after the ones that did get through: a
//! workflow's events are then in order except for the retried ones.
//!
//! # Egress
//!
//! A tenant's sink ([`KafkaSink::new_with_egress`]) creates no client until
//! its policy has been checked: before the producer is created, every
//! bootstrap broker's host must resolve only to addresses the policy
//! allows; before the first send of each producer and at least every
//! [`EGRESS_RECHECK`] after, the brokers the cluster advertises in its
//! metadata are checked the same way, and a refusal drops the producer. A
//! refused broker is a retryable failure (`egress refused: …`).
//! librdkafka resolves and connects on its own, and rdkafka exposes no hook
//! on the address it connects to, so a name whose answer changes between
//! the check and librdkafka's own lookup is not caught: allow brokers by
//! network rather than trusting names an outsider controls.

use std::collections::HashMap;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::sync::{Mutex, MutexGuard, PoisonError};
use std::task::{Context, Waker};
use std::time::{Duration, Instant};

use rdkafka::ClientConfig;
use rdkafka::error::{KafkaError, RDKafkaErrorCode};
use rdkafka::message::{Header, OwnedHeaders};
use rdkafka::producer::{DeliveryFuture, FutureProducer, FutureRecord, Producer};

use crate::egress::{Egress, Refused};
use crate::{Delivered, Event, Limits, SendError, SendFuture, Sink};

/// How often a tenant's sink checks the brokers its cluster advertises.
pub const EGRESS_RECHECK: Duration = Duration::from_secs(60);

/// Events per send.
pub const MAX_EVENTS: usize = 1_000;
/// Bytes of event bodies per send (at least one largest event).
pub const MAX_BATCH_BYTES: usize = 16_000_000;
/// librdkafka's default `message.max.bytes`.
pub const DEFAULT_MESSAGE_MAX_BYTES: usize = 1_000_000;
/// Bytes a record takes on top of its value, kept free under
/// `message.max.bytes`: the record batch's header (61 bytes), the record's
/// own framing (at most 36), the key and the two headers (ids of a few
/// hundred bytes at most).
pub const RECORD_OVERHEAD: usize = 1_024;

/// How many times one send produces again the records Kafka refused only
/// because they shared a request with an invalid record.
const INNOCENT_ROUNDS: usize = 3;

#[derive(Debug, Clone)]
pub struct KafkaConfig {
    /// `bootstrap.servers`: `host:port[,host:port…]`.
    pub brokers: String,
    pub topic: String,
    /// Further librdkafka settings, e.g. `security.protocol`, `sasl.*`,
    /// `ssl.*`, `compression.type`, `client.id`, `message.max.bytes` (set it
    /// to the topic's `max.message.bytes` or lower). The settings the sink
    /// makes for safe delivery are refused (see the module's documentation).
    pub properties: Vec<(String, String)>,
    /// The longest one send waits for its records' delivery reports before
    /// answering [`SendError::Retryable`] (the records stay queued: the next
    /// send of the same events waits for them). `None`: as long as it takes.
    pub timeout: Option<Duration>,
}

/// Why a [`KafkaSink`] could not be made.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum KafkaConfigError {
    /// A property the sink sets itself for safe delivery, or a value that
    /// would break it.
    #[error("the Kafka property `{property}` cannot be set: {why}")]
    Reserved { property: String, why: &'static str },
    #[error("invalid Kafka sink configuration: {0}")]
    Invalid(String),
    /// librdkafka refused the configuration (an unknown property, a value
    /// out of range, TLS asked of a build without it…).
    #[error("librdkafka refused the configuration: {0}")]
    Client(String),
}

/// Why the sink sets a property itself, or `None` when the user may set it.
/// Names are librdkafka's, with their aliases; a topic-level property may
/// also be written with a `topic.` prefix.
fn reserved(name: &str, value: &str) -> Option<&'static str> {
    let name = name.trim().to_ascii_lowercase();
    let bare = name.strip_prefix("topic.").unwrap_or(&name);
    Some(match bare {
        "bootstrap.servers" | "metadata.broker.list" => "the brokers are the sink's `brokers` setting",
        "acks" | "request.required.acks" => {
            "the sink sets acks=all: a record is delivered once every in-sync replica has it"
        }
        "enable.idempotence" => {
            "the sink enables idempotence: the producer's retries must neither duplicate nor reorder records"
        }
        "message.timeout.ms" | "delivery.timeout.ms" => {
            "the sink sets it to 0 (no limit): a record waits for an absent broker instead of expiring"
        }
        "message.send.max.retries" | "retries" => "the sink retries without limit: a record is never given up",
        "transactional.id" | "transaction.timeout.ms" => {
            "transactions would bound how long a record may wait for a broker"
        }
        "queuing.strategy" => "records must be sent in the order they were produced",
        "delivery.report.only.error" => "the sink waits for every record's delivery report",
        "partitioner" if value.trim().eq_ignore_ascii_case("random") => {
            "the events of one workflow must go to one partition (any key-hashing partitioner will do)"
        }
        _ if bare.starts_with("test.mock.") => "it would replace the brokers with an in-process mock cluster",
        _ => return None,
    })
}

/// Kafka's rule for topic names.
fn valid_topic(topic: &str) -> bool {
    !topic.is_empty()
        && topic.len() <= 249
        && topic != "."
        && topic != ".."
        && topic
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b'-'))
}

/// A record's identity across sends.
type RecordKey = (String, String);

fn record_key(e: &Event) -> RecordKey {
    (e.tenant_id.clone(), e.event_id.clone())
}

/// The record's key: the workflow, so that its events keep their order on
/// one partition; the event itself when it belongs to no workflow.
fn kafka_key(e: &Event) -> &str {
    match e.workflow_id.as_deref() {
        Some(w) if !w.is_empty() => w,
        _ => e.event_id.as_str(),
    }
}

/// What an earlier send left about one of its records.
enum Earlier {
    /// Handed to the producer; its delivery report not read yet.
    Pending(DeliveryFuture),
    /// Kafka acknowledged it.
    Delivered,
}

pub struct KafkaSink {
    config: KafkaConfig,
    client_config: ClientConfig,
    /// None until made (a sink under an egress policy makes it on its first
    /// send, once the brokers are checked), or after a refusal.
    producer: Mutex<Option<FutureProducer>>,
    egress: Option<Arc<Egress>>,
    /// When the advertised brokers were last checked.
    checked: Mutex<Option<Instant>>,
    /// Records of sends that did not see them through (dropped, timed out,
    /// or answered an error for other records of their batch).
    earlier: Mutex<HashMap<RecordKey, Earlier>>,
    message_max_bytes: usize,
    limits: Limits,
}

impl std::fmt::Debug for KafkaSink {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("KafkaSink")
            .field("brokers", &self.config.brokers)
            .field("topic", &self.config.topic)
            .field("limits", &self.limits)
            .finish_non_exhaustive()
    }
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(PoisonError::into_inner)
}

impl KafkaSink {
    /// Checks the configuration and creates the producer. It connects in
    /// the background: an unreachable broker is no error here (sends wait
    /// for it).
    pub fn new(config: KafkaConfig) -> Result<Self, KafkaConfigError> {
        Self::new_with_egress(config, None)
    }

    /// As [`KafkaSink::new`]; under an egress policy (a tenant's sink) the
    /// configuration is checked but no client is created (and so nothing
    /// connects) before the first send checks the brokers.
    pub fn new_with_egress(config: KafkaConfig, egress: Option<Arc<Egress>>) -> Result<Self, KafkaConfigError> {
        parse_brokers(&config.brokers).map_err(KafkaConfigError::Invalid)?;
        if !valid_topic(&config.topic) {
            return Err(KafkaConfigError::Invalid(format!(
                "`{}` is not a Kafka topic name (1 to 249 of a-z A-Z 0-9 . _ -)",
                config.topic
            )));
        }
        let mut message_max_bytes = DEFAULT_MESSAGE_MAX_BYTES;
        let mut client_config = ClientConfig::new();
        for (name, value) in &config.properties {
            if let Some(why) = reserved(name, value) {
                return Err(KafkaConfigError::Reserved {
                    property: name.clone(),
                    why,
                });
            }
            if name.trim() == "message.max.bytes" {
                message_max_bytes = value.trim().parse().map_err(|_| {
                    KafkaConfigError::Invalid(format!("message.max.bytes `{value}` is not a number of bytes"))
                })?;
            }
            client_config.set(name, value);
        }
        client_config
            .set("bootstrap.servers", &config.brokers)
            .set("acks", "all")
            .set("enable.idempotence", "true")
            .set("message.timeout.ms", "0")
            .set("message.send.max.retries", i32::MAX.to_string());
        let producer: Option<FutureProducer> = match egress {
            None => Some(
                client_config
                    .create()
                    .map_err(|err| KafkaConfigError::Client(err.to_string()))?,
            ),
            Some(_) => {
                client_config
                    .create_native_config()
                    .map_err(|err| KafkaConfigError::Client(err.to_string()))?;
                None
            }
        };
        let max_event_bytes = message_max_bytes.saturating_sub(RECORD_OVERHEAD);
        let limits = Limits::new(MAX_EVENTS, MAX_BATCH_BYTES.max(max_event_bytes), max_event_bytes);
        Ok(Self {
            config,
            client_config,
            producer: Mutex::new(producer),
            egress,
            checked: Mutex::new(None),
            earlier: Mutex::new(HashMap::new()),
            message_max_bytes,
            limits,
        })
    }

    /// The producer, made anew if the current one had a fatal error (it
    /// then refuses every record).
    fn producer(&self) -> Result<FutureProducer, SendError> {
        let mut slot = lock(&self.producer);
        let producer = match &mut *slot {
            Some(p) => p,
            None => {
                let fresh: FutureProducer = self.client_config.create().map_err(|err| SendError::Retryable {
                    reason: format!("Kafka: the producer could not be created: {err}"),
                    retry_after: None,
                })?;
                *lock(&self.checked) = None;
                slot.insert(fresh)
            }
        };
        if let Some((code, reason)) = producer.client().fatal_error() {
            let fresh: FutureProducer = self.client_config.create().map_err(|err| SendError::Retryable {
                reason: format!(
                    "Kafka producer had a fatal error ({code}: {reason}) and a new one could not be created: {err}"
                ),
                retry_after: None,
            })?;
            let old = std::mem::replace(producer, fresh);
            // Records left pending with the old producer die with it.
            lock(&self.earlier).retain(|_, left| matches!(left, Earlier::Delivered));
            // Dropping a producer purges its queues and joins its threads:
            // not on the async executor.
            std::thread::spawn(move || drop(old));
        }
        Ok(producer.clone())
    }

    /// Hands one record to the producer, waiting while its queue is full.
    async fn enqueue(&self, producer: &FutureProducer, e: &Event) -> Slot {
        let key = kafka_key(e);
        let headers = OwnedHeaders::new_with_capacity(2)
            .insert(Header {
                key: "event_id",
                value: Some(e.event_id.as_str()),
            })
            .insert(Header {
                key: "tenant_id",
                value: Some(e.tenant_id.as_str()),
            });
        let mut record = FutureRecord::to(&self.config.topic)
            .key(key)
            .payload(e.body.as_slice())
            .headers(headers);
        let mut pause = Duration::from_millis(1);
        loop {
            match producer.send_result(record) {
                Ok(delivery) => return Slot::Pending(delivery),
                Err((KafkaError::MessageProduction(RDKafkaErrorCode::QueueFull), back)) => {
                    if producer.in_flight_count() == 0 {
                        return Slot::Failed(format!(
                            "a record of {} bytes does not fit the producer's empty queue: raise queue.buffering.max.kbytes",
                            e.body.len()
                        ));
                    }
                    record = back;
                    tokio::time::sleep(pause).await;
                    pause = (pause * 2).min(Duration::from_millis(50));
                }
                Err((err, _)) => return self.refused(producer, &err, e, Stage::Enqueue),
            }
        }
    }

    /// The slot of a record the producer (when handed over) or Kafka (in
    /// its delivery report) refused.
    fn refused(&self, producer: &FutureProducer, err: &KafkaError, e: &Event, stage: Stage) -> Slot {
        let topic = &self.config.topic;
        let Some(code) = err.rdkafka_error_code() else {
            return Slot::Failed(format!("Kafka producer: {err}"));
        };
        use RDKafkaErrorCode as C;
        let size = e.body.len() + kafka_key(e).len() + e.event_id.len() + e.tenant_id.len();
        match code {
            C::MessageSizeTooLarge => Slot::Rejected(match stage {
                Stage::Enqueue => format!(
                    "a record of about {size} bytes is too large for the producer's message.max.bytes of {} ({code})",
                    self.message_max_bytes
                ),
                Stage::Report => format!(
                    "Kafka refused a record of about {size} bytes as too large for topic `{topic}` ({code}): the \
                     topic's max.message.bytes is below the producer's message.max.bytes of {}",
                    self.message_max_bytes
                ),
            }),
            C::InvalidRecord | C::InvalidMessage | C::InvalidMessageSize => {
                Slot::Rejected(format!("Kafka refused the record for topic `{topic}`: {code}"))
            }
            C::InvalidDifferentRecord => Slot::Todo,
            _ => Slot::Failed(self.cluster_reason(producer, code)),
        }
    }

    /// What an operator should know of an error about the cluster or the
    /// configuration.
    fn cluster_reason(&self, producer: &FutureProducer, code: RDKafkaErrorCode) -> String {
        use RDKafkaErrorCode as C;
        let topic = &self.config.topic;
        let hint = match code {
            C::UnknownTopic | C::UnknownTopicOrPartition => {
                format!("topic `{topic}` does not exist: create it (or let the brokers auto-create topics)")
            }
            C::TopicAuthorizationFailed => {
                format!("not authorised to write to topic `{topic}`: grant WRITE and DESCRIBE on it")
            }
            C::ClusterAuthorizationFailed => {
                "not authorised for idempotent produce: grant IDEMPOTENT_WRITE on the cluster".into()
            }
            C::Authentication | C::SaslAuthenticationFailed => {
                "authentication to the brokers failed: check the sasl.* and ssl.* properties".into()
            }
            C::UnsupportedVersion | C::UnsupportedForMessageFormat => {
                "the brokers do not support idempotent produce (Kafka 0.11 or later is needed)".into()
            }
            C::MessageBatchTooLarge => {
                "a record batch was larger than the broker's segment size: lower batch.size".into()
            }
            C::PurgeQueue | C::PurgeInflight => "the producer was closed before the record was acknowledged".into(),
            C::Fatal => "fatal producer error".into(),
            _ => format!("{code}"),
        };
        // A fatal error fails records with codes of their own (e.g. the
        // out-of-order sequence that caused it): say so whatever the code.
        let hint = match producer.client().fatal_error() {
            Some((fatal, why)) => {
                format!("{hint}; the producer had a fatal error ({fatal}: {why}) and is made anew for the next send")
            }
            None => hint,
        };
        format!("Kafka ({}): {hint}", self.config.brokers)
    }

    /// Under an egress policy: the bootstrap brokers before a producer is
    /// made, then the brokers the cluster advertises, on a producer's first
    /// send and every [`EGRESS_RECHECK`]; a refusal drops the producer.
    async fn check_egress(&self) -> Result<(), SendError> {
        let Some(policy) = &self.egress else {
            return Ok(());
        };
        let refused = |r: Refused| SendError::Retryable {
            reason: r.to_string(),
            retry_after: None,
        };
        if lock(&self.producer).is_none() {
            for (host, port) in parse_brokers(&self.config.brokers).map_err(|e| SendError::Retryable {
                reason: e,
                retry_after: None,
            })? {
                check_broker(policy, &host, port).await.map_err(refused)?;
            }
        }
        let producer = self.producer()?;
        let due = lock(&self.checked).is_none_or(|at| at.elapsed() >= EGRESS_RECHECK);
        if !due {
            return Ok(());
        }
        let wait = self.config.timeout.unwrap_or(Duration::from_secs(10));
        let metadata = tokio::task::spawn_blocking(move || producer.client().fetch_metadata(None, wait))
            .await
            .map_err(|e| SendError::Retryable {
                reason: format!("Kafka: reading the cluster's metadata failed: {e}"),
                retry_after: None,
            })?
            .map_err(|e| SendError::Retryable {
                reason: format!("Kafka: the brokers did not answer with the cluster's metadata: {e}"),
                retry_after: None,
            })?;
        let advertised: Vec<(String, u16)> = metadata
            .brokers()
            .iter()
            .map(|b| (b.host().to_string(), u16::try_from(b.port()).unwrap_or(0)))
            .collect();
        drop(metadata);
        for (host, port) in advertised {
            if let Err(r) = check_broker(policy, &host, port).await {
                let old = lock(&self.producer).take();
                std::thread::spawn(move || drop(old));
                return Err(refused(Refused {
                    target: format!("advertised broker {host}:{port} ({})", r.target),
                    why: r.why,
                }));
            }
        }
        *lock(&self.checked) = Some(Instant::now());
        Ok(())
    }

    async fn deliver(&self, batch: &[Event]) -> Result<Delivered, SendError> {
        self.check_egress().await?;
        let producer = self.producer()?;
        let mut flight = InFlight::new(self, batch);
        for round in 0..=INNOCENT_ROUNDS {
            // Hand over, in order, every record not already with the producer.
            for (i, e) in batch.iter().enumerate() {
                if matches!(flight.slots[i], Slot::Todo) {
                    flight.slots[i] = self.enqueue(&producer, e).await;
                }
            }
            // Then read every delivery report.
            for (i, e) in batch.iter().enumerate() {
                let Slot::Pending(delivery) = &mut flight.slots[i] else {
                    continue;
                };
                flight.slots[i] = match delivery.await {
                    Ok(Ok(_)) => Slot::Delivered,
                    Ok(Err((err, _))) => self.refused(&producer, &err, e, Stage::Report),
                    // The producer went away without a report.
                    Err(_) => Slot::Failed(self.cluster_reason(&producer, RDKafkaErrorCode::PurgeQueue)),
                };
            }
            // Records refused only for sharing a request with an invalid one
            // go again, without it.
            if round == INNOCENT_ROUNDS {
                for slot in &mut flight.slots {
                    if matches!(slot, Slot::Todo) {
                        *slot = Slot::Failed(format!(
                            "Kafka ({}): {}",
                            self.config.brokers,
                            RDKafkaErrorCode::InvalidDifferentRecord
                        ));
                    }
                }
            } else if !flight.slots.iter().any(|s| matches!(s, Slot::Todo)) {
                break;
            }
        }
        flight.finish()
    }
}

/// `host:port[,host:port…]` (an IPv6 address in brackets), as pairs.
pub fn parse_brokers(brokers: &str) -> Result<Vec<(String, u16)>, String> {
    if brokers.trim().is_empty() {
        return Err("no brokers".into());
    }
    let mut out = Vec::new();
    for b in brokers.split(',') {
        let b = b.trim();
        let bad = || format!("{b:?} is not host:port");
        let (host, port) = b.rsplit_once(':').ok_or_else(bad)?;
        let port: u16 = port.parse().ok().filter(|p| *p > 0).ok_or_else(bad)?;
        let name_ok = |h: &str| {
            !h.is_empty()
                && h.len() <= 253
                && h.split('.').all(|l| {
                    !l.is_empty() && l.len() <= 63 && l.bytes().all(|c| c.is_ascii_alphanumeric() || c == b'-')
                })
        };
        let host = match host.strip_prefix('[').and_then(|h| h.strip_suffix(']')) {
            Some(v6) if v6.parse::<std::net::Ipv6Addr>().is_ok() => v6.to_string(),
            Some(_) => return Err(bad()),
            None if name_ok(host) => host.to_string(),
            None => return Err(bad()),
        };
        out.push((host, port));
    }
    if out.is_empty() {
        return Err("no brokers".into());
    }
    Ok(out)
}

/// Every address `host` resolves to must be allowed (librdkafka picks
/// among them itself), unless the host name itself is.
async fn check_broker(policy: &Egress, host: &str, port: u16) -> Result<(), Refused> {
    if let Ok(ip) = host.parse::<std::net::IpAddr>() {
        return policy.check_ip(ip);
    }
    if policy.host_allowed(host) {
        return Ok(());
    }
    let addrs = tokio::net::lookup_host((host, port)).await.map_err(|_| Refused {
        target: host.to_string(),
        why: "not resolvable".into(),
    })?;
    for a in addrs {
        policy.check_ip(a.ip()).map_err(|r| Refused {
            target: format!("{host} ({})", r.target),
            why: r.why,
        })?;
    }
    Ok(())
}

/// Where a record was refused.
#[derive(Clone, Copy)]
enum Stage {
    /// Handing it to the producer.
    Enqueue,
    /// In its delivery report.
    Report,
}

/// One record of a send.
enum Slot {
    /// To hand to the producer.
    Todo,
    Pending(DeliveryFuture),
    Delivered,
    /// Refused for what it is.
    Rejected(String),
    /// Not delivered, for a reason about the cluster or the configuration.
    Failed(String),
}

/// The records of one send. If the send ends before it has read every
/// delivery report (its future dropped), the records still with the
/// producer and those already delivered are left in the sink for the next
/// send of the same events.
struct InFlight<'s> {
    sink: &'s KafkaSink,
    keys: Vec<RecordKey>,
    slots: Vec<Slot>,
    done: bool,
}

impl<'s> InFlight<'s> {
    /// Takes over what earlier sends left of these events, and forgets what
    /// they left of others once it is settled.
    fn new(sink: &'s KafkaSink, batch: &[Event]) -> Self {
        let keys: Vec<RecordKey> = batch.iter().map(record_key).collect();
        let mut earlier = lock(&sink.earlier);
        let slots = keys
            .iter()
            .map(|k| match earlier.remove(k) {
                Some(Earlier::Pending(delivery)) => Slot::Pending(delivery),
                Some(Earlier::Delivered) => Slot::Delivered,
                None => Slot::Todo,
            })
            .collect();
        let mut cx = Context::from_waker(Waker::noop());
        earlier.retain(|_, left| match left {
            Earlier::Pending(delivery) => Pin::new(delivery).poll(&mut cx).is_pending(),
            Earlier::Delivered => false,
        });
        Self {
            sink,
            keys,
            slots,
            done: false,
        }
    }

    fn finish(mut self) -> Result<Delivered, SendError> {
        let mut rejected = Vec::new();
        let mut failed: Vec<&str> = Vec::new();
        for (i, slot) in self.slots.iter().enumerate() {
            match slot {
                Slot::Rejected(reason) => rejected.push((i, reason.clone())),
                Slot::Failed(reason) => failed.push(reason),
                Slot::Delivered | Slot::Todo | Slot::Pending(_) => {}
            }
        }
        if failed.is_empty() {
            self.done = true;
            return Ok(Delivered { rejected, retry: None });
        }
        // Kept (by `drop`): the records this batch did deliver, so that its
        // retry does not produce them again.
        let mut reasons: Vec<&str> = Vec::new();
        for reason in &failed {
            if !reasons.contains(reason) {
                reasons.push(reason);
            }
        }
        Err(SendError::Retryable {
            reason: format!(
                "{} of {} records not delivered to topic `{}`: {}",
                failed.len(),
                self.slots.len(),
                self.sink.config.topic,
                reasons.join("; ")
            ),
            retry_after: None,
        })
    }
}

impl Drop for InFlight<'_> {
    fn drop(&mut self) {
        if self.done {
            return;
        }
        let mut earlier = lock(&self.sink.earlier);
        for (key, slot) in self.keys.drain(..).zip(self.slots.drain(..)) {
            match slot {
                Slot::Pending(delivery) => {
                    earlier.insert(key, Earlier::Pending(delivery));
                }
                Slot::Delivered => {
                    earlier.insert(key, Earlier::Delivered);
                }
                Slot::Todo | Slot::Rejected(_) | Slot::Failed(..) => {}
            }
        }
    }
}

impl Sink for KafkaSink {
    fn kind(&self) -> &'static str {
        "kafka"
    }

    fn limits(&self) -> Limits {
        self.limits
    }

    fn send<'a>(&'a self, batch: &'a [Event]) -> SendFuture<'a> {
        Box::pin(async move {
            let Some(limit) = self.config.timeout else {
                return self.deliver(batch).await;
            };
            match tokio::time::timeout(limit, self.deliver(batch)).await {
                Ok(answer) => answer,
                Err(_) => Err(SendError::Retryable {
                    reason: format!(
                        "Kafka ({}) did not acknowledge every record within {limit:?}: the brokers may be \
                         unreachable; the records stay queued in the producer, and the next send of these \
                         events waits for them",
                        self.config.brokers
                    ),
                    retry_after: None,
                }),
            }
        })
    }
}
