//! Audit fan-out: one task per configured sink delivers every tenant's
//! audit events, read from the ledger (the outbox), in log order.
//!
//! Each sink keeps a durable cursor per tenant log: the last index it
//! delivered (or passed over: entries that are not audit events, or that its
//! filter excludes). The cursor moves only after the peer acknowledged the
//! batch, so a crash or an outage redelivers, never loses: delivery is at
//! least once, and a receiver deduplicates on `event_id`. What the peer will
//! never take goes to the dead-letter store with the reason, and the events
//! behind it go on. A retryable failure is retried with backoff and full
//! jitter, honouring `Retry-After`, for as long as it takes; nothing is held
//! in memory but the page being delivered.
//!
//! Tenants' sinks are held to the [`TenantPolicy`]: they connect only where
//! the egress policy allows, set only allowed Kafka properties, sign
//! CloudWatch requests only with their own keys, and their secrets are
//! stored encrypted ([`seal_config`], [`open_config`]). Sinks of the
//! configuration file are the operator's: none of that applies to them, and
//! tenants other than the platform see only their name, type and delivery
//! status.

use std::borrow::Cow;
use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use serde::Serialize;
use serde_json::Value;
use tokio::sync::{Notify, watch};
use warden_sinks::batching::{self, Backoff};
use warden_sinks::cloudwatch::{CloudWatchConfig, CloudWatchSink};
use warden_sinks::datadog::{DatadogConfig, DatadogSink};
use warden_sinks::egress::Egress;
use warden_sinks::kafka::{KafkaConfig, KafkaSink};
use warden_sinks::splunk::{SplunkConfig, SplunkSink};
use warden_sinks::webhook::{WebhookConfig, WebhookSink};
use warden_sinks::{Delivered, Event, SendError, Sink};

use crate::audit;
use crate::auth::Principal;
use crate::clock::{Clock, rfc3339_ms};
use crate::config::{SinkConfig, SinkFilter, TenantSinksConfig};
use crate::ledger::read::{self, ReadError};
use crate::ledger::{AppendError, Ledger, Record};
use crate::metrics::{Metrics, SinkLabels};
use crate::secrets::Keyring;
use crate::store::{Change, DeadLetterRow, SinkPut, SinkWrite, Store, StoreError, TOO_MANY_SINKS, TenantSinkRow};

/// Ledger entries (or dead letters) read per page, at least; a sink that
/// takes larger batches reads pages of its batch size, up to [`MAX_PAGE`].
const PAGE: u32 = 500;
const MAX_PAGE: u32 = 10_000;

#[derive(Debug, Default, Clone)]
struct Status {
    disabled: Option<String>,
    last_error: Option<(String, i64)>,
    delivered: u64,
    dead_lettered: u64,
}

/// Where a sink's configuration comes from, and so which logs it delivers.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Scope {
    /// A `[[sinks]]` table: every tenant's log.
    Config,
    /// Created through the API by this tenant: its log only.
    Tenant { tenant_id: String, version: i64 },
}

struct Handle {
    /// The name the operator gave it.
    name: String,
    /// Its cursors', dead letters' and metrics' key: the name for a sink of
    /// the configuration file, `<tenant id>/<name>` for a tenant's.
    key: String,
    scope: Scope,
    sink: Box<dyn Sink>,
    filter: SinkFilter,
    mask: Vec<String>,
    /// Its configuration as shown to administrators: secrets masked.
    shown: Value,
    status: Mutex<Status>,
}

impl Handle {
    fn delivers(&self, tenant_id: &str) -> bool {
        match &self.scope {
            Scope::Config => true,
            Scope::Tenant { tenant_id: t, .. } => t == tenant_id,
        }
    }
}

/// What delivery tasks need, set once by [`Fanout::spawn`].
struct Ctx {
    /// This instance, as the holder of sink leases.
    instance: String,
    store: Store,
    committed: Arc<Notify>,
    clock: Clock,
    metrics: Arc<Metrics>,
}

struct Running {
    handle: Arc<Handle>,
    stop: watch::Sender<bool>,
    task: tokio::task::JoinHandle<()>,
}

struct Inner {
    policy: Arc<TenantPolicy>,
    configured: Vec<Arc<Handle>>,
    /// Tenants' sinks, by key, as the supervisor last loaded them.
    tenants: Mutex<HashMap<String, Arc<Handle>>>,
    /// Wakes the supervisor to reload tenants' sinks now.
    changed: Notify,
    /// Reloads asked for, and the last one the supervisor applied.
    requested: AtomicU64,
    applied: watch::Sender<u64>,
}

/// The configured sinks and the tenants' sinks; cheap to clone.
#[derive(Clone)]
pub struct Fanout {
    inner: Arc<Inner>,
}

/// A sink as `GET /v1/sinks` shows it, for the caller's tenant.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct SinkView {
    pub name: String,
    pub kind: String,
    /// `config`: from the configuration file, delivering every tenant's
    /// events; `tenant`: created through the API, delivering this tenant's.
    pub scope: String,
    /// The sink's configuration, secrets masked; of a configuration file's
    /// sink, only its `type` unless the caller is of the platform tenant.
    #[schema(value_type = Object)]
    pub config: Value,
    pub enabled: bool,
    /// Why the sink stopped (e.g. the endpoint answered 410).
    pub disabled_reason: Option<String>,
    /// The last ledger index delivered from this tenant's log.
    pub cursor: Option<u64>,
    /// Entries of this tenant's log not yet delivered or passed over.
    pub lag: u64,
    pub last_error: Option<String>,
    pub last_error_at: Option<String>,
    /// Events delivered since this instance started (all tenants); not
    /// shown to other tenants than the platform for a configuration file's
    /// sink.
    pub delivered_since_start: Option<u64>,
    /// This tenant's events waiting in the dead-letter store.
    pub dead_letters: i64,
}

/// A sink configuration the API refused, with what to fix.
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct InvalidSink(pub String);

/// Kafka properties a tenant's sink may set: how it authenticates and
/// encrypts (with credentials inline, never files of the server), batches,
/// compresses and times out. Not: anything naming a file (`*.location`),
/// code to load (`plugin.library.paths`), a command (`sasl.kerberos.*`), or
/// another host to call (`sasl.oauthbearer.token.endpoint.url`).
pub const TENANT_KAFKA_PROPERTIES: &[&str] = &[
    "client.id",
    "client.rack",
    "security.protocol",
    "sasl.mechanism",
    "sasl.mechanisms",
    "sasl.username",
    "sasl.password",
    "ssl.ca.pem",
    "ssl.certificate.pem",
    "ssl.key.pem",
    "ssl.key.password",
    "ssl.endpoint.identification.algorithm",
    "enable.ssl.certificate.verification",
    "compression.type",
    "compression.codec",
    "compression.level",
    "linger.ms",
    "queue.buffering.max.ms",
    "queue.buffering.max.messages",
    "queue.buffering.max.kbytes",
    "batch.num.messages",
    "batch.size",
    "message.max.bytes",
    "request.timeout.ms",
    "socket.timeout.ms",
    "socket.keepalive.enable",
    "reconnect.backoff.ms",
    "reconnect.backoff.max.ms",
    "retry.backoff.ms",
    "retry.backoff.max.ms",
    "broker.address.family",
    "partitioner",
];

/// What tenants' sinks may do: where they connect, which Kafka properties
/// they set, whether a CloudWatch endpoint is theirs to choose, how many
/// each tenant has, and the keys of their secrets.
#[derive(Debug)]
pub struct TenantPolicy {
    pub egress: Arc<Egress>,
    pub allow_cloudwatch_endpoint: bool,
    pub kafka_properties: std::collections::BTreeSet<String>,
    pub max_per_tenant: usize,
    /// None: stored secrets cannot be opened (tenants' sinks do not run).
    pub keyring: Option<Arc<Keyring>>,
}

impl Default for TenantPolicy {
    fn default() -> Self {
        Self {
            egress: Arc::new(Egress::default()),
            allow_cloudwatch_endpoint: false,
            kafka_properties: TENANT_KAFKA_PROPERTIES.iter().map(|p| p.to_string()).collect(),
            max_per_tenant: TenantSinksConfig::default().max_per_tenant,
            keyring: None,
        }
    }
}

impl TenantPolicy {
    pub fn new(config: &TenantSinksConfig, keyring: Arc<Keyring>) -> anyhow::Result<Self> {
        let egress = Egress::new(&config.allow_networks, &config.allow_hosts)
            .map_err(|e| anyhow::anyhow!("tenant_sinks: {e}"))?;
        Ok(Self {
            egress: Arc::new(egress),
            allow_cloudwatch_endpoint: config.allow_cloudwatch_endpoint,
            kafka_properties: TENANT_KAFKA_PROPERTIES
                .iter()
                .map(|p| p.to_string())
                .chain(config.kafka_properties.iter().map(|p| p.trim().to_ascii_lowercase()))
                .collect(),
            max_per_tenant: config.max_per_tenant,
            keyring: Some(keyring),
        })
    }

    /// What a tenant's sink must satisfy beyond any sink's rules; the
    /// message names the field.
    pub fn check(&self, c: &SinkConfig) -> Result<(), InvalidSink> {
        let egress = |field: &str, url: &str| {
            self.egress
                .check_url(url)
                .map_err(|refused| InvalidSink(format!("{field}: {refused}")))
        };
        match c {
            SinkConfig::Webhook { url, .. } | SinkConfig::Datadog { url, .. } | SinkConfig::SplunkHec { url, .. } => {
                egress("url", url)
            }
            SinkConfig::CloudwatchLogs {
                endpoint,
                access_key_id,
                secret_access_key,
                ..
            } => {
                if access_key_id.is_none() || secret_access_key.is_none() {
                    return Err(InvalidSink(
                        "access_key_id, secret_access_key: a tenant's CloudWatch Logs sink must carry its own \
                         keys (the server's credentials are not lent)"
                            .into(),
                    ));
                }
                match endpoint {
                    Some(_) if !self.allow_cloudwatch_endpoint => Err(InvalidSink(
                        "endpoint: a tenant's CloudWatch Logs sink goes to its region's endpoint; the operator has \
                         not allowed another (tenant_sinks.allow_cloudwatch_endpoint)"
                            .into(),
                    )),
                    Some(url) => egress("endpoint", url),
                    None => Ok(()),
                }
            }
            SinkConfig::Kafka {
                brokers, properties, ..
            } => {
                for (name, value) in properties {
                    let bare = name.trim().to_ascii_lowercase();
                    if !self.kafka_properties.contains(&bare) {
                        return Err(InvalidSink(format!(
                            "properties.{name}: not a property a tenant's Kafka sink may set; allowed: {}",
                            self.kafka_properties.iter().cloned().collect::<Vec<_>>().join(", ")
                        )));
                    }
                    if matches!(bare.as_str(), "sasl.mechanism" | "sasl.mechanisms")
                        && !matches!(value.trim(), "PLAIN" | "SCRAM-SHA-256" | "SCRAM-SHA-512")
                    {
                        return Err(InvalidSink(format!(
                            "properties.{name}: {value:?} is not PLAIN, SCRAM-SHA-256 or SCRAM-SHA-512"
                        )));
                    }
                }
                let list =
                    warden_sinks::kafka::parse_brokers(brokers).map_err(|e| InvalidSink(format!("brokers: {e}")))?;
                for (host, _) in list {
                    self.egress
                        .check_host(&host)
                        .map_err(|refused| InvalidSink(format!("brokers: {refused}")))?;
                }
                Ok(())
            }
        }
    }
}

/// Keys whose values are secrets: never shown, never recorded, stored
/// encrypted.
const SECRET_KEYS: &[&str] = &["secrets", "api_key", "token", "secret_access_key"];

/// Whether a Kafka property holds a secret.
fn secret_property(name: &str) -> bool {
    name.contains("password") || name.contains("secret") || name.contains("key")
}

/// Calls `f` with the path (`secrets/0`, `api_key`, `properties/sasl.password`)
/// and value of every secret of a sink's configuration.
fn each_secret(config: &mut Value, f: &mut dyn FnMut(&str, &mut Value) -> Result<(), String>) -> Result<(), String> {
    let Some(o) = config.as_object_mut() else {
        return Ok(());
    };
    for (k, val) in o.iter_mut() {
        if SECRET_KEYS.contains(&k.as_str()) {
            match val {
                Value::Array(items) => {
                    for (i, item) in items.iter_mut().enumerate() {
                        f(&format!("{k}/{i}"), item)?;
                    }
                }
                Value::Null => {}
                other => f(k, other)?,
            }
        } else if k == "properties"
            && let Some(props) = val.as_object_mut()
        {
            for (pk, pv) in props.iter_mut() {
                if secret_property(pk) {
                    f(&format!("properties/{pk}"), pv)?;
                }
            }
        }
    }
    Ok(())
}

/// `config` with its secrets replaced by `"***"`.
pub fn masked(config: &Value) -> Value {
    let mut v = config.clone();
    if let Some(o) = v.as_object_mut() {
        for (k, val) in o.iter_mut() {
            if SECRET_KEYS.contains(&k.as_str()) {
                *val = Value::String("***".into());
            } else if k == "properties"
                && let Some(props) = val.as_object_mut()
            {
                for (pk, pv) in props.iter_mut() {
                    if secret_property(pk) {
                        *pv = Value::String("***".into());
                    }
                }
            }
        }
    }
    v
}

/// What binds a secret to its place: a ciphertext moved elsewhere does not
/// open.
fn secret_context(tenant_id: &str, name: &str, field: &str) -> String {
    format!("warden tenant sink secret\n{tenant_id}\n{name}\n{field}")
}

/// A tenant's sink configuration as stored: JSON with every secret sealed
/// under the keyring's current key.
pub fn seal_config(config: &SinkConfig, tenant_id: &str, keyring: &Keyring) -> Result<String, InvalidSink> {
    let mut v = serde_json::to_value(config).map_err(|e| InvalidSink(e.to_string()))?;
    each_secret(&mut v, &mut |field, val| {
        if let Value::String(s) = val {
            *s = keyring.seal(s, &secret_context(tenant_id, config.name(), field));
        }
        Ok(())
    })
    .map_err(InvalidSink)?;
    serde_json::to_string(&v).map_err(|e| InvalidSink(e.to_string()))
}

/// A stored configuration opened: the sink's configuration, and whether any
/// secret was stored in plaintext (from before encryption) or under another
/// key than the current one, and should be sealed again.
pub fn open_config(stored: &str, tenant_id: &str, name: &str, keyring: &Keyring) -> Result<(SinkConfig, bool), String> {
    open_stored(stored, tenant_id, name, keyring).map_err(|e| match e {
        Unopened::Key(e) | Unopened::Shape(e) => e,
    })
}

/// Why a stored configuration did not open.
enum Unopened {
    /// A secret under a key not configured, or that does not decrypt.
    Key(String),
    /// Not a sink's configuration.
    Shape(String),
}

fn open_stored(stored: &str, tenant_id: &str, name: &str, keyring: &Keyring) -> Result<(SinkConfig, bool), Unopened> {
    let mut v: Value = serde_json::from_str(stored).map_err(|e| Unopened::Shape(format!("not JSON: {e}")))?;
    let mut stale = false;
    each_secret(&mut v, &mut |field, val| {
        if let Value::String(s) = val {
            match Keyring::key_of(s) {
                Some(id) => {
                    stale |= id != keyring.current();
                    *s = keyring
                        .open(s, &secret_context(tenant_id, name, field))
                        .map_err(|e| format!("its secret {field} cannot be read: {e}"))?;
                }
                None => stale = true,
            }
        }
        Ok(())
    })
    .map_err(Unopened::Key)?;
    let config: SinkConfig = serde_json::from_value(v).map_err(|e| Unopened::Shape(e.to_string()))?;
    Ok((config, stale))
}

/// Seals again, under the current key, every tenant sink secret stored in
/// plaintext or under an older key; returns how many sinks were rewritten.
/// A secret under a key that is not configured, or that does not decrypt,
/// stops it: the operator removed a key still in use, or gave a wrong one.
/// A row that is no sink's configuration is left (it shows as disabled).
pub async fn reseal_tenant_sinks(store: &Store, keyring: &Keyring) -> anyhow::Result<usize> {
    let mut rewritten = 0;
    for row in store.tenant_sinks().await? {
        let (config, stale) = match open_stored(&row.config, &row.tenant_id, &row.name, keyring) {
            Ok(opened) => opened,
            Err(Unopened::Key(e)) => anyhow::bail!("tenant {} sink {:?}: {e}", row.tenant_id, row.name),
            Err(Unopened::Shape(e)) => {
                tracing::error!(tenant = %row.tenant_id, sink = %row.name, error = %e, "a stored tenant sink is not a sink's configuration; left as it is");
                continue;
            }
        };
        if !stale {
            continue;
        }
        let sealed = seal_config(&config, &row.tenant_id, keyring).map_err(|e| anyhow::anyhow!("{e}"))?;
        if store
            .reseal_tenant_sink(&row.tenant_id, &row.name, &row.config, &sealed)
            .await?
        {
            rewritten += 1;
        }
    }
    if rewritten > 0 {
        tracing::info!(sinks = rewritten, key = %keyring.current(), "tenant sink secrets encrypted under the current key");
    }
    Ok(rewritten)
}

/// The sink a configuration describes; fails on what cannot work (a bad
/// secret, URL or setting), naming it. With `egress` (a tenant's sink) it
/// connects only where the policy allows and creates no client yet.
pub fn build(c: &SinkConfig, egress: Option<&Arc<Egress>>) -> Result<Box<dyn Sink>, InvalidSink> {
    let name = c.name();
    let bad = |e: &dyn std::fmt::Display| InvalidSink(format!("sink {name}: {e}"));
    let egress = egress.cloned();
    Ok(match c {
        SinkConfig::Webhook {
            url,
            secrets,
            concurrency,
            timeout_ms,
            ..
        } => {
            let sink = WebhookSink::new(WebhookConfig {
                url: url.clone(),
                secrets: secrets.clone(),
                timeout: Duration::from_millis(*timeout_ms),
                max_event_bytes: 1024 * 1024,
                concurrency: (*concurrency).clamp(1, 256),
            })
            .map_err(|e| bad(&e))?;
            match egress {
                Some(policy) => Box::new(sink.with_egress(policy)),
                None => Box::new(sink),
            }
        }
        SinkConfig::Datadog {
            url,
            api_key,
            service,
            ddsource,
            hostname,
            ddtags,
            timeout_ms,
            ..
        } => {
            let sink = DatadogSink::new(DatadogConfig {
                url: url.clone(),
                api_key: api_key.clone(),
                service: service.clone(),
                hostname: hostname.clone(),
                ddsource: ddsource.clone(),
                ddtags: ddtags.clone(),
                timeout: Duration::from_millis(*timeout_ms),
            });
            match egress {
                Some(policy) => Box::new(sink.with_egress(policy)),
                None => Box::new(sink),
            }
        }
        SinkConfig::SplunkHec {
            url,
            token,
            sourcetype,
            source,
            index,
            host,
            ack,
            ack_timeout_ms,
            max_bytes,
            timeout_ms,
            ..
        } => {
            let sink = SplunkSink::new(SplunkConfig {
                url: url.clone(),
                token: token.clone(),
                sourcetype: sourcetype.clone(),
                source: source.clone(),
                index: index.clone(),
                host: host.clone(),
                ack: *ack,
                ack_timeout: Duration::from_millis(*ack_timeout_ms),
                timeout: Duration::from_millis(*timeout_ms),
                max_bytes: *max_bytes,
            });
            match egress {
                Some(policy) => Box::new(sink.with_egress(policy)),
                None => Box::new(sink),
            }
        }
        SinkConfig::CloudwatchLogs {
            region,
            endpoint,
            log_group,
            log_stream,
            access_key_id,
            secret_access_key,
            timeout_ms,
            ..
        } => {
            if access_key_id.is_some() != secret_access_key.is_some() {
                return Err(bad(&"set both access_key_id and secret_access_key, or neither"));
            }
            let sink = CloudWatchSink::new(CloudWatchConfig {
                region: region.clone(),
                endpoint: endpoint.clone(),
                log_group: log_group.clone(),
                log_stream: log_stream.clone(),
                access_key_id: access_key_id.clone(),
                secret_access_key: secret_access_key.clone(),
                timeout: Duration::from_millis(*timeout_ms),
            });
            match egress {
                Some(policy) => Box::new(sink.with_egress(policy)),
                None => Box::new(sink),
            }
        }
        SinkConfig::Kafka {
            brokers,
            topic,
            properties,
            timeout_ms,
            ..
        } => Box::new(
            KafkaSink::new_with_egress(
                KafkaConfig {
                    brokers: brokers.clone(),
                    topic: topic.clone(),
                    properties: properties.iter().map(|(k, v)| (k.clone(), v.clone())).collect(),
                    timeout: Some(Duration::from_millis(*timeout_ms)),
                },
                egress,
            )
            .map_err(|e| bad(&e))?,
        ),
    })
}

fn handle(c: &SinkConfig, scope: Scope, policy: &TenantPolicy) -> Result<Arc<Handle>, InvalidSink> {
    let (key, egress) = match &scope {
        Scope::Config => (c.name().to_string(), None),
        Scope::Tenant { tenant_id, .. } => {
            // Checked again: the operator may have narrowed the policy since
            // the sink was stored.
            policy.check(c)?;
            (tenant_key(tenant_id, c.name()), Some(&policy.egress))
        }
    };
    Ok(Arc::new(Handle {
        name: c.name().to_string(),
        key,
        scope,
        sink: build(c, egress)?,
        filter: c.filter().clone(),
        mask: c.mask().to_vec(),
        shown: masked(&serde_json::to_value(c).unwrap_or_default()),
        status: Mutex::default(),
    }))
}

/// The key of a tenant's sink: its cursors and dead letters are filed
/// under it.
pub fn tenant_key(tenant_id: &str, name: &str) -> String {
    format!("{tenant_id}/{name}")
}

/// A tenant's sink stored in a form that can no longer run (its secrets do
/// not open, or the policy refuses it now): shown as disabled, with why.
fn broken(tenant_id: &str, name: &str, kind: &str, version: i64, why: String) -> Arc<Handle> {
    struct Broken(&'static str);
    impl Sink for Broken {
        fn kind(&self) -> &'static str {
            self.0
        }
        fn limits(&self) -> warden_sinks::Limits {
            warden_sinks::Limits::new(1, 1, 1)
        }
        fn send<'a>(&'a self, _: &'a [Event]) -> warden_sinks::SendFuture<'a> {
            Box::pin(async {
                Err(SendError::Disabled {
                    reason: "the sink's stored configuration cannot run".into(),
                })
            })
        }
    }
    let kind = match kind {
        "webhook" => "webhook",
        "datadog" => "datadog",
        "splunk_hec" => "splunk_hec",
        "cloudwatch_logs" => "cloudwatch_logs",
        "kafka" => "kafka",
        _ => "unknown",
    };
    Arc::new(Handle {
        name: name.to_string(),
        key: tenant_key(tenant_id, name),
        scope: Scope::Tenant {
            tenant_id: tenant_id.to_string(),
            version,
        },
        sink: Box::new(Broken(kind)),
        filter: SinkFilter::default(),
        mask: Vec::new(),
        shown: serde_json::json!({"type": kind}),
        status: Mutex::new(Status {
            disabled: Some(format!(
                "the stored configuration cannot run: {why}; put the sink again"
            )),
            ..Status::default()
        }),
    })
}

/// A tenant's sink configuration, as the API takes it: a JSON object of
/// the shape of a `[[sinks]]` table, without its name (the path gives it).
pub fn parse_tenant_sink(name: &str, body: &Value, policy: &TenantPolicy) -> Result<SinkConfig, InvalidSink> {
    let Some(obj) = body.as_object() else {
        return Err(InvalidSink("the body must be a JSON object with a \"type\"".into()));
    };
    if obj.contains_key("name") {
        return Err(InvalidSink(
            "\"name\" comes from the path; leave it out of the body".into(),
        ));
    }
    let mut obj = obj.clone();
    obj.insert("name".into(), Value::String(name.to_string()));
    let v = Value::Object(obj);
    let c: SinkConfig = serde_path_to_error::deserialize(&v).map_err(|e| {
        let path = e.path().to_string();
        if path == "." {
            InvalidSink(e.inner().to_string())
        } else {
            InvalidSink(format!("{path}: {}", e.inner()))
        }
    })?;
    crate::config::check_sink(&c).map_err(|e| {
        // "name.url: …" names the field as the body has it: "url: …".
        let text = e.to_string();
        InvalidSink(
            text.strip_prefix(&format!("{name}."))
                .map(str::to_string)
                .unwrap_or(text),
        )
    })?;
    policy.check(&c)?;
    build(&c, Some(&policy.egress))?;
    Ok(c)
}

/// This instance's name as the holder of sink leases: kept in the data
/// directory, so it survives restarts.
pub fn instance_id(data_dir: &std::path::Path) -> anyhow::Result<String> {
    let path = data_dir.join("instance-id");
    if let Ok(id) = std::fs::read_to_string(&path)
        && !id.trim().is_empty()
    {
        return Ok(id.trim().to_string());
    }
    let mut raw = [0u8; 12];
    getrandom::fill(&mut raw).map_err(|e| anyhow::anyhow!("random source: {e}"))?;
    let id = format!("instance-{}", hex::encode(raw));
    let tmp = data_dir.join("instance-id.tmp");
    std::fs::write(&tmp, &id)?;
    std::fs::rename(&tmp, &path)?;
    Ok(id)
}

/// How long a sink's delivery lease lasts unless renewed; it is renewed at
/// every pass and every retry, at least once a second.
const LEASE_MS: i64 = 15_000;

/// How often a supervisor looks for tenants' sinks created, changed or
/// deleted elsewhere (another instance on the same database).
const RELOAD: Duration = Duration::from_secs(5);

impl Fanout {
    /// The configuration file's sinks; tenants' sinks under the default
    /// policy, without keys (so none of them runs).
    pub fn new(configs: &[SinkConfig]) -> anyhow::Result<Self> {
        Self::with_policy(configs, TenantPolicy::default())
    }

    pub fn with_policy(configs: &[SinkConfig], policy: TenantPolicy) -> anyhow::Result<Self> {
        let configured = configs
            .iter()
            .map(|c| handle(c, Scope::Config, &policy).map_err(|e| anyhow::anyhow!("sinks.{e}")))
            .collect::<anyhow::Result<Vec<_>>>()?;
        Ok(Self {
            inner: Arc::new(Inner {
                policy: Arc::new(policy),
                configured,
                tenants: Mutex::default(),
                changed: Notify::new(),
                // The first load applies 1: until then, nothing is loaded.
                requested: AtomicU64::new(1),
                applied: watch::Sender::new(0),
            }),
        })
    }

    /// What tenants' sinks may do.
    pub fn policy(&self) -> &TenantPolicy {
        &self.inner.policy
    }

    /// Whether a sink of the configuration file has this name.
    pub fn is_configured(&self, name: &str) -> bool {
        self.inner.configured.iter().any(|h| h.name == name)
    }

    /// Tells the supervisor that tenants' sinks changed in the store, and
    /// waits (a few seconds at most) until it has stopped, started or
    /// restarted their delivery tasks accordingly.
    pub async fn changed(&self) {
        let want = self.inner.requested.fetch_add(1, Ordering::AcqRel) + 1;
        let mut applied = self.inner.applied.subscribe();
        self.inner.changed.notify_one();
        let _ = tokio::time::timeout(RELOAD, applied.wait_for(|a| *a >= want)).await;
    }

    /// Starts the supervisor: one delivery task per sink of the
    /// configuration file and per tenant's sink, restarted when a tenant's
    /// sink changes. `instance` names this instance as the holder of sink
    /// leases (stable across its restarts, so a restarted instance takes
    /// its leases back at once; distinct between instances). The returned
    /// task ends, after every delivery task, once `stop` turns true.
    ///
    /// Both the supervisor (`audit_fanout`) and each delivery task
    /// (`sink_delivery`) are supervised ([`crate::supervise`]): one that
    /// fails is restarted with back-off.
    pub fn spawn(
        &self,
        instance: String,
        store: Store,
        committed: Arc<Notify>,
        clock: Clock,
        metrics: Arc<Metrics>,
        stop: watch::Receiver<bool>,
    ) -> tokio::task::JoinHandle<()> {
        let tasks = crate::supervise::Tasks::new(metrics.clone());
        self.spawn_supervised(instance, store, committed, clock, metrics, stop, &tasks)
    }

    /// [`Fanout::spawn`], its tasks reported in `tasks` (what readiness
    /// reads).
    #[allow(clippy::too_many_arguments)]
    pub fn spawn_supervised(
        &self,
        instance: String,
        store: Store,
        committed: Arc<Notify>,
        clock: Clock,
        metrics: Arc<Metrics>,
        stop: watch::Receiver<bool>,
        tasks: &Arc<crate::supervise::Tasks>,
    ) -> tokio::task::JoinHandle<()> {
        let ctx = Arc::new(Ctx {
            instance,
            store,
            committed,
            clock,
            metrics,
        });
        let inner = self.inner.clone();
        let tasks = tasks.clone();
        let outer = stop.clone();
        crate::supervise::spawn(&tasks.clone(), "audit_fanout", true, Some(outer), move |task| {
            let (ctx, inner, tasks, mut stop) = (ctx.clone(), inner.clone(), tasks.clone(), stop.clone());
            async move {
                let start = |h: &Arc<Handle>| {
                    let (tx, rx) = watch::channel(false);
                    if h.status.lock().expect("sink status").disabled.is_some() {
                        // A sink that cannot run has no delivery task.
                        return Running {
                            handle: h.clone(),
                            stop: tx,
                            task: tokio::spawn(async {}),
                        };
                    }
                    let (ctx, h2) = (ctx.clone(), h.clone());
                    let make = move |_: crate::supervise::TaskCtx| {
                        let h = h2.clone();
                        let run = Runner {
                            instance: ctx.instance.clone(),
                            page: u32::try_from(h.sink.limits().max_events)
                                .unwrap_or(MAX_PAGE)
                                .clamp(PAGE, MAX_PAGE),
                            labels: SinkLabels { sink: h.key.clone() },
                            metrics: ctx.metrics.clone(),
                            h,
                            store: ctx.store.clone(),
                            clock: ctx.clock.clone(),
                            backoff: Backoff::default(),
                            stop: rx.clone(),
                        };
                        let committed = ctx.committed.clone();
                        async move {
                            run.run(committed).await;
                            Ok(())
                        }
                    };
                    Running {
                        handle: h.clone(),
                        stop: tx,
                        task: crate::supervise::spawn(&tasks, "sink_delivery", false, None, make),
                    }
                };
                let configured: Vec<Running> = inner.configured.iter().map(start).collect();
                let mut tenants: HashMap<String, Running> = HashMap::new();
                loop {
                    let target = inner.requested.load(Ordering::Acquire);
                    match ctx.store.tenant_sinks().await {
                        Ok(rows) => {
                            let mut wanted = HashMap::new();
                            for row in rows {
                                let key = tenant_key(&row.tenant_id, &row.name);
                                if let Some(r) = tenants.get(&key)
                                    && r.handle.scope
                                        == (Scope::Tenant {
                                            tenant_id: row.tenant_id.clone(),
                                            version: row.version,
                                        })
                                {
                                    wanted.insert(key, r.handle.clone());
                                    continue;
                                }
                                let scope = Scope::Tenant {
                                    tenant_id: row.tenant_id.clone(),
                                    version: row.version,
                                };
                                let policy = &inner.policy;
                                let built = match &policy.keyring {
                                    Some(keyring) => open_config(&row.config, &row.tenant_id, &row.name, keyring)
                                        .and_then(|(c, _)| handle(&c, scope, policy).map_err(|e| e.0)),
                                    None => Err("no keys to read its secrets".to_string()),
                                };
                                match built {
                                    Ok(h) => {
                                        wanted.insert(key, h);
                                    }
                                    Err(e) => {
                                        tracing::error!(sink = %key, error = %e, "a stored tenant sink cannot be built; it is not running");
                                        let kind = serde_json::from_str::<Value>(&row.config)
                                            .ok()
                                            .and_then(|v| v["type"].as_str().map(str::to_string))
                                            .unwrap_or_default();
                                        wanted.insert(key, broken(&row.tenant_id, &row.name, &kind, row.version, e));
                                    }
                                }
                            }
                            // Stop what is gone or changed, then start what is new.
                            let stale: Vec<String> = tenants
                                .iter()
                                .filter(|(k, r)| wanted.get(*k).is_none_or(|h| !Arc::ptr_eq(h, &r.handle)))
                                .map(|(k, _)| k.clone())
                                .collect();
                            for k in stale {
                                if let Some(r) = tenants.remove(&k) {
                                    let _ = r.stop.send(true);
                                    let _ = r.task.await;
                                }
                            }
                            for (k, h) in &wanted {
                                if !tenants.contains_key(k) {
                                    tenants.insert(k.clone(), start(h));
                                }
                            }
                            *inner.tenants.lock().expect("tenant sinks") = wanted;
                            inner.applied.send_replace(target);
                            task.up();
                        }
                        Err(e) => tracing::warn!(error = %e, "loading tenants' sinks failed; retrying"),
                    }
                    tokio::select! {
                        _ = inner.changed.notified() => {}
                        _ = tokio::time::sleep(RELOAD) => {}
                        _ = stop.wait_for(|s| *s) => break,
                    }
                }
                for r in configured.iter().chain(tenants.values()) {
                    let _ = r.stop.send(true);
                }
                for r in configured.into_iter().chain(tenants.into_values()) {
                    let _ = r.task.await;
                }
                Ok(())
            }
        })
    }

    /// The sinks delivering this tenant's events: the configuration file's
    /// and the tenant's own.
    fn for_tenant(&self, tenant_id: &str) -> Vec<Arc<Handle>> {
        let mut out: Vec<Arc<Handle>> = self.inner.configured.to_vec();
        let mut own: Vec<Arc<Handle>> = self
            .inner
            .tenants
            .lock()
            .expect("tenant sinks")
            .values()
            .filter(|h| h.delivers(tenant_id))
            .cloned()
            .collect();
        own.sort_by(|a, b| a.name.cmp(&b.name));
        out.extend(own);
        out
    }

    /// The sinks as this tenant sees them. Tenants other than the platform
    /// see of a configuration file's sink only its name, type and delivery
    /// status: not its configuration, nor its errors (which name hosts).
    pub async fn views(&self, store: &Store, tenant_id: &str, platform: bool) -> Result<Vec<SinkView>, StoreError> {
        // Right after start, the tenants' sinks may not be loaded yet: wait
        // for the first load (a few seconds at most) rather than list none.
        let mut applied = self.inner.applied.subscribe();
        let _ = tokio::time::timeout(RELOAD, applied.wait_for(|a| *a >= 1)).await;
        let size = store.ledger_head(tenant_id).await?.map(|h| h.size).unwrap_or(0);
        let mut out = Vec::new();
        for h in self.for_tenant(tenant_id) {
            let cursor = store.sink_cursor(&h.key, tenant_id).await?;
            let done = cursor.map(|c| c + 1).unwrap_or(0);
            let mut s = h.status.lock().expect("sink status").clone();
            let operators = h.scope == Scope::Config && !platform;
            if operators {
                s.disabled = s
                    .disabled
                    .map(|_| "stopped by its peer; the operator has the details".into());
                s.last_error = s
                    .last_error
                    .map(|(_, at)| ("delivery failed; the operator has the details".into(), at));
            }
            out.push(SinkView {
                name: h.name.clone(),
                kind: h.sink.kind().to_string(),
                scope: match h.scope {
                    Scope::Config => "config".into(),
                    Scope::Tenant { .. } => "tenant".into(),
                },
                config: if operators {
                    serde_json::json!({"type": h.sink.kind()})
                } else {
                    h.shown.clone()
                },
                enabled: s.disabled.is_none(),
                disabled_reason: s.disabled,
                cursor,
                lag: size.saturating_sub(done),
                last_error_at: s.last_error.as_ref().map(|(_, at)| rfc3339_ms(*at)),
                last_error: s.last_error.map(|(e, _)| e),
                // Of every tenant, for a configuration file's sink.
                delivered_since_start: (!operators).then_some(s.delivered),
                dead_letters: store.dead_letter_count_for(&h.key, tenant_id).await?,
            });
        }
        Ok(out)
    }

    /// The key under which sink `name`, as this tenant sees it, files its
    /// cursors and dead letters (a tenant's own sink before the
    /// configuration's).
    pub fn key_for(&self, name: &str, tenant_id: &str) -> Option<String> {
        self.for_tenant(tenant_id)
            .iter()
            .rev()
            .find(|h| h.name == name)
            .map(|h| h.key.clone())
    }

    /// Sends this tenant's dead letters of sink `name` again, once each;
    /// returns (delivered, still failing), or None for no such sink. A
    /// tenant's own sink of that name comes before the configuration's.
    pub async fn redrive(
        &self,
        store: &Store,
        clock: &Clock,
        name: &str,
        tenant_id: &str,
    ) -> Result<Option<(u64, u64)>, StoreError> {
        let sinks = self.for_tenant(tenant_id);
        let Some(h) = sinks.iter().rev().find(|h| h.name == name) else {
            return Ok(None);
        };
        let (mut ok, mut failed) = (0, 0);
        let mut after = 0;
        loop {
            let page = store.dead_letters(&h.key, tenant_id, after, PAGE).await?;
            let n = page.len();
            for d in page {
                after = d.id;
                // The event's own time and workflow, as when it was first sent.
                let event = match serde_json::from_slice::<Value>(&d.body) {
                    Ok(v) => Event {
                        body: d.body.clone(),
                        ..event_for(&d.tenant_id, d.index, v)
                    },
                    Err(_) => Event {
                        tenant_id: d.tenant_id.clone(),
                        index: d.index,
                        event_id: d.event_id.clone(),
                        workflow_id: None,
                        timestamp_ms: d.created_at,
                        body: d.body.clone(),
                    },
                };
                match h.sink.send(std::slice::from_ref(&event)).await {
                    Ok(sent) if sent.rejected.is_empty() => {
                        store.mark_redriven(d.id, clock.now_ms()).await?;
                        ok += 1;
                    }
                    Ok(_) | Err(_) => failed += 1,
                }
            }
            if n < PAGE as usize {
                break;
            }
        }
        Ok(Some((ok, failed)))
    }
}

struct Runner {
    instance: String,
    /// Entries read per page.
    page: u32,
    labels: SinkLabels,
    metrics: Arc<Metrics>,
    h: Arc<Handle>,
    store: Store,
    clock: Clock,
    backoff: Backoff,
    stop: watch::Receiver<bool>,
}

enum Stop {
    Requested,
    Disabled,
    /// Another instance holds the sink's lease now.
    LeaseLost,
}

impl Runner {
    async fn run(mut self, committed: Arc<Notify>) {
        loop {
            if *self.stop.borrow() {
                return;
            }
            let progressed = match self.pass().await {
                Ok(p) => p,
                Err(Ok(Stop::Requested | Stop::Disabled)) => {
                    let _ = self.store.release_sink(&self.h.key, &self.instance).await;
                    return;
                }
                Err(Ok(Stop::LeaseLost)) => false,
                Err(Err(e)) => {
                    // The store's own words are the operator's, not a tenant's.
                    match self.h.scope {
                        Scope::Config => self.error(format!("reading the ledger: {e}")),
                        Scope::Tenant { .. } => {
                            tracing::warn!(sink = %self.h.key, error = %e, "reading the ledger failed");
                            self.error("reading the ledger failed; retrying".into());
                        }
                    }
                    false
                }
            };
            if !progressed {
                tokio::select! {
                    _ = committed.notified() => {}
                    _ = tokio::time::sleep(Duration::from_secs(1)) => {}
                    _ = self.stop.changed() => {
                        let _ = self.store.release_sink(&self.h.key, &self.instance).await;
                        return;
                    }
                }
            }
        }
    }

    /// Takes or renews this sink's lease: only its holder delivers.
    async fn lease(&self) -> Result<(), Result<Stop, StoreError>> {
        let held = self
            .store
            .lease_sink(&self.h.key, &self.instance, self.clock.now_ms(), LEASE_MS)
            .await
            .map_err(Err)?;
        if held { Ok(()) } else { Err(Ok(Stop::LeaseLost)) }
    }

    fn error(&self, e: String) {
        self.metrics.sink_errors.get_or_create(&self.labels).inc();
        tracing::warn!(sink = %self.h.key, error = %e, "sink delivery failed");
        self.h.status.lock().expect("sink status").last_error = Some((e, self.clock.now_ms()));
    }

    /// One page of every log; true when anything moved.
    async fn pass(&mut self) -> Result<bool, Result<Stop, StoreError>> {
        self.lease().await?;
        let mut progressed = false;
        // Reported before delivering (and again at each retry): a sink
        // whose peer is down shows how far behind it is.
        let (due, mut lag) = self.report_lag().await.map_err(Err)?;
        let gauge = self.metrics.sink_lag.get_or_create(&self.labels).clone();
        for (tenant, from, size) in due {
            self.lease().await?;
            // An entry that does not read back stops this sink (its task
            // restarts and /health/ready names it) rather than being passed
            // over: its event is never silently lost.
            let entries = read::entries(&self.store, &tenant, from, size, self.page)
                .await
                .map_err(|e| match e {
                    ReadError::Store(e) => Err(e),
                    other => Err(StoreError::Corrupt(other.to_string())),
                })?;
            let Some(last) = entries.last().map(|e| e.row.index) else {
                continue;
            };
            progressed = true;
            let events: Vec<Event> = entries
                .iter()
                .filter_map(|read::Stored { row, entry }| {
                    let event = audit::event_of(&entry.kind, &entry.actor, &tenant, &entry.payload)?;
                    self.admit(&entry.kind, event)
                        .map(|body| event_for(&tenant, row.index, body))
                })
                .collect();
            self.deliver(&tenant, &events).await?;
            // Entries that are not events for this sink are passed over.
            self.advance(&tenant, last).await?;
            lag -= last + 1 - from;
            gauge.set(lag as i64);
        }
        Ok(progressed)
    }

    /// Reads how far behind this sink is and sets its lag gauge: the logs
    /// it has entries to deliver or pass over (each with the first such
    /// index and the log's size), and their total.
    async fn report_lag(&self) -> Result<(Vec<(String, u64, u64)>, u64), StoreError> {
        let mut lag = 0u64;
        let mut due = Vec::new();
        for tenant in self.store.ledger_logs().await? {
            if !self.h.delivers(&tenant) {
                continue;
            }
            let size = match self.store.ledger_head(&tenant).await? {
                Some(h) => h.size,
                None => continue,
            };
            let cursor = self.store.sink_cursor(&self.h.key, &tenant).await?;
            let from = cursor.map(|c| c + 1).unwrap_or(0);
            lag += size.saturating_sub(from);
            if from < size {
                due.push((tenant, from, size));
            }
        }
        self.metrics.sink_lag.get_or_create(&self.labels).set(lag as i64);
        Ok((due, lag))
    }

    /// The event as this sink delivers it, or None when filtered out.
    fn admit(&self, kind: &str, mut event: Value) -> Option<Value> {
        let f = &self.h.filter;
        let source = if kind == "decision" { "decisions" } else { "events" };
        let pass =
            |list: &[String], v: &Value| list.is_empty() || v.as_str().is_some_and(|s| list.iter().any(|x| x == s));
        if !(f.sources.is_empty() || f.sources.iter().any(|s| s == source))
            || !pass(&f.actions, &event["action"])
            || !pass(&f.results, &event["result"])
        {
            return None;
        }
        for pointer in &self.h.mask {
            if let Some(v) = event.pointer_mut(pointer) {
                *v = Value::String("***".into());
            }
        }
        Some(event)
    }

    /// Moves the cursor past `index`, if this instance still holds the
    /// sink's lease; once another took it over, this one stops delivering
    /// (what it sent since is sent again by the new holder: at least once).
    async fn advance(&self, tenant: &str, index: u64) -> Result<(), Result<Stop, StoreError>> {
        let moved = self
            .store
            .set_sink_cursor(&self.h.key, tenant, index, self.clock.now_ms(), &self.instance)
            .await
            .map_err(Err)?;
        if moved { Ok(()) } else { Err(Ok(Stop::LeaseLost)) }
    }

    async fn deliver(&mut self, tenant: &str, events: &[Event]) -> Result<(), Result<Stop, StoreError>> {
        enum Step {
            Send(std::ops::Range<usize>),
            DeadLetter(usize, String),
        }
        let (batches, oversized) = batching::batches(events, &self.h.sink.limits());
        let mut steps: Vec<Step> = batches.into_iter().map(Step::Send).collect();
        steps.extend(oversized.into_iter().map(|(i, why)| Step::DeadLetter(i, why)));
        // Both lists are in event order; together they must be too.
        steps.sort_by_key(|s| match s {
            Step::Send(r) => r.start,
            Step::DeadLetter(i, _) => *i,
        });
        for step in steps {
            let last = match step {
                Step::DeadLetter(at, why) => {
                    self.dead_letter(&events[at], &why).await?;
                    &events[at]
                }
                Step::Send(range) => {
                    let batch = &events[range];
                    self.send(batch).await?;
                    &batch[batch.len() - 1]
                }
            };
            self.advance(tenant, last.index).await?;
        }
        Ok(())
    }

    /// Delivers a batch, retrying until the peer takes it; what it refuses
    /// for good is dead-lettered (a batch of several is split first). When
    /// the peer took part of it, only the rest is sent again.
    async fn send(&mut self, batch: &[Event]) -> Result<(), Result<Stop, StoreError>> {
        let mut attempt = 0;
        // Copied only when part of the batch is sent again.
        let mut pending: Cow<'_, [Event]> = Cow::Borrowed(batch);
        loop {
            let (reason, retry_after) = match self.h.sink.send(&pending).await {
                Ok(Delivered { mut rejected, retry }) => {
                    rejected.sort_by_key(|r| r.0);
                    rejected.dedup_by_key(|r| r.0);
                    rejected.retain(|r| r.0 < pending.len());
                    let again: Vec<usize> = retry
                        .as_ref()
                        .map(|r| r.positions.iter().copied().filter(|p| *p < pending.len()).collect())
                        .unwrap_or_default();
                    let delivered = (pending.len() - rejected.len() - again.len()) as u64;
                    self.h.status.lock().expect("sink status").delivered += delivered;
                    self.metrics
                        .sink_delivered
                        .get_or_create(&self.labels)
                        .inc_by(delivered);
                    for (at, reason) in rejected {
                        self.error(reason.clone());
                        self.dead_letter(&pending[at], &reason).await?;
                    }
                    match retry {
                        Some(r) if !again.is_empty() => {
                            pending = Cow::Owned(again.iter().map(|p| pending[*p].clone()).collect());
                            (r.reason, r.retry_after)
                        }
                        _ => return Ok(()),
                    }
                }
                Err(SendError::Retryable { reason, retry_after }) => (reason, retry_after),
                Err(SendError::Permanent { reason }) if pending.len() == 1 => {
                    self.error(reason.clone());
                    return self.dead_letter(&pending[0], &reason).await;
                }
                Err(SendError::Permanent { .. }) => {
                    for one in pending.iter() {
                        Box::pin(self.send(std::slice::from_ref(one))).await?;
                    }
                    return Ok(());
                }
                Err(SendError::Disabled { reason }) => {
                    tracing::error!(sink = %self.h.key, reason = %reason, "sink disabled; its events wait in the ledger");
                    self.error(reason.clone());
                    self.h.status.lock().expect("sink status").disabled = Some(reason);
                    return Err(Ok(Stop::Disabled));
                }
            };
            self.error(reason);
            self.lease().await?;
            // The log goes on growing while the peer is down.
            if let Err(e) = self.report_lag().await {
                tracing::debug!(sink = %self.h.key, error = %e, "reading the lag failed");
            }
            let wait = self.backoff.delay(attempt, retry_after);
            attempt = attempt.saturating_add(1);
            tokio::select! {
                _ = tokio::time::sleep(wait) => {}
                _ = self.stop.changed() => return Err(Ok(Stop::Requested)),
            }
        }
    }

    async fn dead_letter(&self, e: &Event, reason: &str) -> Result<(), Result<Stop, StoreError>> {
        let row = DeadLetterRow {
            id: 0,
            sink: self.h.key.clone(),
            tenant_id: e.tenant_id.clone(),
            index: e.index,
            event_id: e.event_id.clone(),
            reason: reason.to_string(),
            body: e.body.clone(),
            created_at: self.clock.now_ms(),
        };
        self.store.insert_dead_letter(&row).await.map_err(Err)?;
        self.h.status.lock().expect("sink status").dead_lettered += 1;
        self.metrics.sink_dead_lettered.get_or_create(&self.labels).inc();
        tracing::warn!(sink = %self.h.key, event_id = %e.event_id, reason, "event dead-lettered");
        Ok(())
    }
}

fn event_for(tenant: &str, index: u64, event: Value) -> Event {
    let timestamp_ms = event["timestamp"]
        .as_str()
        .and_then(|t| chrono::DateTime::parse_from_rfc3339(t).ok())
        .map(|t| t.timestamp_millis())
        .unwrap_or(0);
    Event {
        tenant_id: tenant.to_string(),
        index,
        event_id: event["event_id"].as_str().unwrap_or_default().to_string(),
        workflow_id: event["workflow_id"].as_str().map(str::to_string),
        timestamp_ms,
        body: serde_json::to_vec(&event).unwrap_or_default(),
    }
}

/// Why a tenant's sink could not be put.
#[derive(Debug, thiserror::Error)]
pub enum PutSinkError {
    #[error("this tenant already has {0} sinks, the most allowed (tenant_sinks.max_per_tenant); delete one first")]
    TooMany(usize),
    #[error(transparent)]
    Append(#[from] AppendError),
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// How often a put reads the sink again after another put replaced it first.
const PUT_ATTEMPTS: usize = 3;

/// Creates the tenant's sink `name` (sealed configuration `stored`), or
/// replaces its configuration, with the `sink.put` entry (which shows the
/// masked configuration `shown`) in the same transaction. A new sink's
/// first cursor is `start_at` (None: the start of the log).
#[allow(clippy::too_many_arguments)]
pub async fn put_tenant_sink(
    ledger: &Ledger,
    store: &Store,
    who: &Principal,
    name: &str,
    stored: &str,
    shown: &Value,
    start_at: Option<u64>,
    max_sinks: usize,
    now_ms: i64,
) -> Result<TenantSinkRow, PutSinkError> {
    let mut attempts = 0;
    loop {
        let existing = store.tenant_sink(&who.tenant_id, name).await?;
        let row = TenantSinkRow {
            tenant_id: who.tenant_id.clone(),
            name: name.to_string(),
            config: stored.to_string(),
            version: existing.as_ref().map(|e| e.version + 1).unwrap_or(1),
            created_at: existing.as_ref().map(|e| e.created_at).unwrap_or(now_ms),
            updated_at: now_ms,
        };
        let payload = serde_json::json!({"sink": name, "version": row.version, "config": shown});
        let record = Record::new(&who.tenant_id, "sink.put", &who.actor(), &payload).about(name);
        let change = Change {
            sink: Some(SinkWrite::Put(SinkPut {
                row: row.clone(),
                cursor_key: tenant_key(&who.tenant_id, name),
                start_at,
                max_sinks,
            })),
            ..Change::default()
        };
        match ledger.append_with(vec![record], change).await {
            Ok(_) => return Ok(row),
            Err(AppendError::Conflict(TOO_MANY_SINKS)) => return Err(PutSinkError::TooMany(max_sinks)),
            Err(AppendError::Changed(_)) if attempts < PUT_ATTEMPTS => attempts += 1,
            Err(e) => return Err(e.into()),
        }
    }
}

/// Deletes the tenant's sink `name` with the `sink.delete` entry: false
/// when the tenant has no such sink (nothing recorded).
pub async fn delete_tenant_sink(ledger: &Ledger, who: &Principal, name: &str) -> Result<bool, AppendError> {
    let record = Record::new(
        &who.tenant_id,
        "sink.delete",
        &who.actor(),
        &serde_json::json!({"sink": name}),
    )
    .about(name);
    let change = Change {
        sink: Some(SinkWrite::Delete {
            tenant_id: who.tenant_id.clone(),
            name: name.to_string(),
        }),
        ..Change::default()
    };
    match ledger.append_with(vec![record], change).await {
        Ok(_) => Ok(true),
        Err(AppendError::Changed("sink")) => Ok(false),
        Err(e) => Err(e),
    }
}
