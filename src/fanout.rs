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

use std::sync::{Arc, Mutex};
use std::time::Duration;

use serde::Serialize;
use serde_json::Value;
use tokio::sync::{Notify, watch};
use warden_sinks::datadog::{DatadogConfig, DatadogSink};
use warden_sinks::engine::{self, Backoff};
use warden_sinks::splunk::{SplunkConfig, SplunkSink};
use warden_sinks::webhook::{WebhookConfig, WebhookSink};
use warden_sinks::{Event, SendError, Sink};

use crate::audit;
use crate::clock::{Clock, rfc3339_ms};
use crate::config::{SinkConfig, SinkFilter};
use crate::ledger::entry::Entry;
use crate::metrics::{Metrics, SinkLabels};
use crate::store::{DeadLetterRow, Store, StoreError};

/// Ledger entries read per page.
const PAGE: u32 = 500;

#[derive(Debug, Default, Clone)]
struct Status {
    disabled: Option<String>,
    last_error: Option<(String, i64)>,
    delivered: u64,
    dead_lettered: u64,
}

struct Handle {
    name: String,
    sink: Box<dyn Sink>,
    filter: SinkFilter,
    mask: Vec<String>,
    status: Mutex<Status>,
}

/// The configured sinks; cheap to clone.
#[derive(Clone, Default)]
pub struct Fanout {
    sinks: Arc<Vec<Arc<Handle>>>,
}

/// A sink as `GET /v1/sinks` shows it, for the caller's tenant.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct SinkView {
    pub name: String,
    pub kind: String,
    pub enabled: bool,
    /// Why the sink stopped (e.g. the endpoint answered 410).
    pub disabled_reason: Option<String>,
    /// The last ledger index delivered from this tenant's log.
    pub cursor: Option<u64>,
    /// Entries of this tenant's log not yet delivered or passed over.
    pub lag: u64,
    pub last_error: Option<String>,
    pub last_error_at: Option<String>,
    /// Events delivered since this instance started (all tenants).
    pub delivered_since_start: u64,
    /// This tenant's events waiting in the dead-letter store.
    pub dead_letters: i64,
}

impl Fanout {
    pub fn new(configs: &[SinkConfig]) -> anyhow::Result<Self> {
        let mut sinks = Vec::new();
        for c in configs {
            let name = c.name();
            let sink: Box<dyn Sink> = match c {
                SinkConfig::Webhook {
                    url,
                    secrets,
                    timeout_ms,
                    ..
                } => Box::new(
                    WebhookSink::new(WebhookConfig {
                        url: url.clone(),
                        secrets: secrets.clone(),
                        timeout: Duration::from_millis(*timeout_ms),
                        max_event_bytes: 1024 * 1024,
                    })
                    .map_err(|e| anyhow::anyhow!("sinks.{name}: {e}"))?,
                ),
                SinkConfig::Datadog {
                    url,
                    api_key,
                    service,
                    ddsource,
                    hostname,
                    ddtags,
                    timeout_ms,
                    ..
                } => Box::new(DatadogSink::new(DatadogConfig {
                    url: url.clone(),
                    api_key: api_key.clone(),
                    service: service.clone(),
                    hostname: hostname.clone(),
                    ddsource: ddsource.clone(),
                    ddtags: ddtags.clone(),
                    timeout: Duration::from_millis(*timeout_ms),
                })),
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
                } => Box::new(SplunkSink::new(SplunkConfig {
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
                })),
            };
            sinks.push(Arc::new(Handle {
                name: name.to_string(),
                sink,
                filter: c.filter().clone(),
                mask: c.mask().to_vec(),
                status: Mutex::default(),
            }));
        }
        Ok(Self { sinks: Arc::new(sinks) })
    }

    /// Starts one delivery task per sink; they stop when `stop` turns true.
    pub fn spawn(
        &self,
        store: Store,
        committed: Arc<Notify>,
        clock: Clock,
        metrics: Arc<Metrics>,
        stop: watch::Receiver<bool>,
    ) -> Vec<tokio::task::JoinHandle<()>> {
        self.sinks
            .iter()
            .map(|h| {
                let run = Runner {
                    labels: SinkLabels { sink: h.name.clone() },
                    metrics: metrics.clone(),
                    h: h.clone(),
                    store: store.clone(),
                    clock: clock.clone(),
                    backoff: Backoff::default(),
                    stop: stop.clone(),
                };
                tokio::spawn(run.run(committed.clone()))
            })
            .collect()
    }

    pub async fn views(&self, store: &Store, tenant_id: &str) -> Result<Vec<SinkView>, StoreError> {
        let size = store.ledger_head(tenant_id).await?.map(|h| h.size).unwrap_or(0);
        let mut out = Vec::new();
        for h in self.sinks.iter() {
            let cursor = store.sink_cursor(&h.name, tenant_id).await?;
            let done = cursor.map(|c| c + 1).unwrap_or(0);
            let s = h.status.lock().expect("sink status").clone();
            out.push(SinkView {
                name: h.name.clone(),
                kind: h.sink.kind().to_string(),
                enabled: s.disabled.is_none(),
                disabled_reason: s.disabled,
                cursor,
                lag: size.saturating_sub(done),
                last_error_at: s.last_error.as_ref().map(|(_, at)| rfc3339_ms(*at)),
                last_error: s.last_error.map(|(e, _)| e),
                delivered_since_start: s.delivered,
                dead_letters: store.dead_letter_count_for(&h.name, tenant_id).await?,
            });
        }
        Ok(out)
    }

    /// Sends this tenant's dead letters of `sink` again, once each; returns
    /// (delivered, still failing).
    pub async fn redrive(
        &self,
        store: &Store,
        clock: &Clock,
        sink: &str,
        tenant_id: &str,
    ) -> Result<Option<(u64, u64)>, StoreError> {
        let Some(h) = self.sinks.iter().find(|h| h.name == sink) else {
            return Ok(None);
        };
        let (mut ok, mut failed) = (0, 0);
        for d in store
            .dead_letters(sink, 10_000)
            .await?
            .into_iter()
            .filter(|d| d.tenant_id == tenant_id)
        {
            let event = Event {
                tenant_id: d.tenant_id.clone(),
                index: d.index,
                event_id: d.event_id.clone(),
                workflow_id: None,
                timestamp_ms: d.created_at,
                body: d.body.clone(),
            };
            match h.sink.send(std::slice::from_ref(&event)).await {
                Ok(()) => {
                    store.mark_redriven(d.id, clock.now_ms()).await?;
                    ok += 1;
                }
                Err(_) => failed += 1,
            }
        }
        Ok(Some((ok, failed)))
    }
}

struct Runner {
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
}

impl Runner {
    async fn run(mut self, committed: Arc<Notify>) {
        loop {
            if *self.stop.borrow() {
                return;
            }
            let progressed = match self.pass().await {
                Ok(p) => p,
                Err(Ok(Stop::Requested | Stop::Disabled)) => return,
                Err(Err(e)) => {
                    self.error(format!("reading the ledger: {e}"));
                    false
                }
            };
            if !progressed {
                tokio::select! {
                    _ = committed.notified() => {}
                    _ = tokio::time::sleep(Duration::from_secs(1)) => {}
                    _ = self.stop.changed() => return,
                }
            }
        }
    }

    fn error(&self, e: String) {
        self.metrics.sink_errors.get_or_create(&self.labels).inc();
        tracing::warn!(sink = %self.h.name, error = %e, "sink delivery failed");
        self.h.status.lock().expect("sink status").last_error = Some((e, self.clock.now_ms()));
    }

    /// One page of every log; true when anything moved.
    async fn pass(&mut self) -> Result<bool, Result<Stop, StoreError>> {
        let mut progressed = false;
        let mut lag = 0u64;
        for tenant in self.store.ledger_logs().await.map_err(Err)? {
            let size = match self.store.ledger_head(&tenant).await.map_err(Err)? {
                Some(h) => h.size,
                None => continue,
            };
            let cursor = self.store.sink_cursor(&self.h.name, &tenant).await.map_err(Err)?;
            let from = cursor.map(|c| c + 1).unwrap_or(0);
            lag += size.saturating_sub(from);
            if from >= size {
                continue;
            }
            let rows = self
                .store
                .ledger_entries(&tenant, from, size, PAGE)
                .await
                .map_err(Err)?;
            let Some(last) = rows.last().map(|r| r.index) else {
                continue;
            };
            progressed = true;
            let events: Vec<Event> = rows
                .iter()
                .filter_map(|row| {
                    let entry = Entry::from_bytes(&row.bytes).ok()?;
                    let event = audit::event_of(&entry.kind, &entry.actor, &tenant, &entry.payload)?;
                    self.admit(&entry.kind, event)
                        .map(|body| event_for(&tenant, row.index, body))
                })
                .collect();
            self.deliver(&tenant, &events).await?;
            // Entries that are not events for this sink are passed over.
            self.advance(&tenant, last).await?;
            lag -= last + 1 - from;
        }
        self.metrics.sink_lag.get_or_create(&self.labels).set(lag as i64);
        Ok(progressed)
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

    async fn advance(&self, tenant: &str, index: u64) -> Result<(), Result<Stop, StoreError>> {
        self.store
            .set_sink_cursor(&self.h.name, tenant, index, self.clock.now_ms())
            .await
            .map_err(Err)
    }

    async fn deliver(&mut self, tenant: &str, events: &[Event]) -> Result<(), Result<Stop, StoreError>> {
        enum Step {
            Send(std::ops::Range<usize>),
            DeadLetter(usize, String),
        }
        let (batches, oversized) = engine::batches(events, &self.h.sink.limits());
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
    /// for good is dead-lettered (a batch of several is split first).
    async fn send(&mut self, batch: &[Event]) -> Result<(), Result<Stop, StoreError>> {
        let mut attempt = 0;
        loop {
            match self.h.sink.send(batch).await {
                Ok(()) => {
                    self.h.status.lock().expect("sink status").delivered += batch.len() as u64;
                    self.metrics
                        .sink_delivered
                        .get_or_create(&self.labels)
                        .inc_by(batch.len() as u64);
                    return Ok(());
                }
                Err(SendError::Retryable { reason, retry_after }) => {
                    self.error(reason);
                    let wait = self.backoff.delay(attempt, retry_after);
                    attempt = attempt.saturating_add(1);
                    tokio::select! {
                        _ = tokio::time::sleep(wait) => {}
                        _ = self.stop.changed() => return Err(Ok(Stop::Requested)),
                    }
                }
                Err(SendError::Permanent { reason }) if batch.len() == 1 => {
                    self.error(reason.clone());
                    return self.dead_letter(&batch[0], &reason).await;
                }
                Err(SendError::Permanent { .. }) => {
                    for one in batch {
                        Box::pin(self.send(std::slice::from_ref(one))).await?;
                    }
                    return Ok(());
                }
                Err(SendError::Disabled { reason }) => {
                    tracing::error!(sink = %self.h.name, reason = %reason, "sink disabled; its events wait in the ledger");
                    self.error(reason.clone());
                    self.h.status.lock().expect("sink status").disabled = Some(reason);
                    return Err(Ok(Stop::Disabled));
                }
            }
        }
    }

    async fn dead_letter(&self, e: &Event, reason: &str) -> Result<(), Result<Stop, StoreError>> {
        let row = DeadLetterRow {
            id: 0,
            sink: self.h.name.clone(),
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
        tracing::warn!(sink = %self.h.name, event_id = %e.event_id, reason, "event dead-lettered");
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
