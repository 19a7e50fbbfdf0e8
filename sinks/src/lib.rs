//! Warden's audit fan-out: what every sink shares, and one module per sink.
//!
//! A sink receives [`Event`]s (already in the published audit-event shape,
//! as JSON bytes) in batches that respect its [`Limits`], and answers with
//! a [`SendError`] that says what to do next: retry later (after the peer's
//! `Retry-After` if it gave one), dead-letter what can never be delivered,
//! or stop because the endpoint is gone. [`engine`] holds the parts of
//! delivery that are the same for every sink: batching within limits and
//! backoff with full jitter.
//!
//! The crate does not depend on the `warden` server: the server owns the
//! ledger (the outbox), the cursors and the dead-letter store, and drives the
//! sinks through [`Sink`].
//!
//! Sinks here: [`webhook`] (Standard Webhooks v1), [`datadog`] (Logs API v2),
//! [`splunk`] (HTTP Event Collector, with indexer acknowledgement),
//! [`cloudwatch`] (Amazon CloudWatch Logs `PutLogEvents`, through the AWS
//! SDK), [`kafka`] (a Kafka topic, through librdkafka, with idempotent
//! `acks=all` produce).
//!
//! A sink made for a tenant carries an [`egress::Egress`] policy: it
//! connects only where the policy allows, and its failure reasons are short
//! (a status, the kind of failure, or the egress refusal), never the peer's
//! words.

use std::future::Future;
use std::pin::Pin;
use std::time::Duration;

pub mod batching;
pub mod cloudwatch;
pub mod datadog;
pub mod egress;
pub mod kafka;
pub mod splunk;
pub mod webhook;

/// One audit event to deliver.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Event {
    pub tenant_id: String,
    /// Its entry's index in the tenant's ledger log: the cursor position.
    pub index: u64,
    pub event_id: String,
    /// The ordering key of sinks that keep order per workflow.
    pub workflow_id: Option<String>,
    /// The event's time, milliseconds since the Unix epoch.
    pub timestamp_ms: i64,
    /// The event, serialised JSON.
    pub body: Vec<u8>,
}

/// What one request to a peer may carry.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limits {
    pub max_events: usize,
    /// Bytes of all events' bodies in one request (before compression).
    pub max_bytes: usize,
    /// Largest single event the peer accepts intact; larger ones are
    /// dead-lettered rather than sent to be truncated or refused.
    pub max_event_bytes: usize,
    /// Bytes the peer counts for each event on top of its body, against
    /// `max_bytes` (CloudWatch Logs counts 26).
    pub per_event_overhead: usize,
    /// Most milliseconds between the earliest and the latest event of one
    /// request (CloudWatch Logs: 24 hours), or no such limit.
    pub max_span_ms: Option<i64>,
}

impl Limits {
    /// Limits of a peer that takes `max_events` events and `max_bytes`
    /// bytes per request, any event up to `max_event_bytes`, with no
    /// per-event overhead and no time span limit.
    pub const fn new(max_events: usize, max_bytes: usize, max_event_bytes: usize) -> Self {
        Self {
            max_events,
            max_bytes,
            max_event_bytes,
            per_event_overhead: 0,
            max_span_ms: None,
        }
    }
}

/// What the peer made of a batch, event by event.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Delivered {
    /// Events of the batch the peer refused for good (their position in
    /// the batch, and why): they go to the dead-letter store, never counted
    /// as delivered.
    pub rejected: Vec<(usize, String)>,
    /// Events not delivered this time that may be later (a sink that sends
    /// a batch's events in parallel requests): the engine sends these, and
    /// only these, again after a backoff.
    pub retry: Option<Retry>,
}

/// Events of a batch to send again, and why.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Retry {
    /// Their positions in the batch.
    pub positions: Vec<usize>,
    pub reason: String,
    /// The peer's `Retry-After`, when it sent one.
    pub retry_after: Option<Duration>,
}

impl Delivered {
    /// Every event of the batch was delivered.
    pub fn all() -> Self {
        Self::default()
    }
}

/// Why a batch was not delivered, and so what to do with it.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SendError {
    /// The peer may take it later: timeouts, throttling, server errors.
    #[error("retryable: {reason}")]
    Retryable {
        reason: String,
        /// The peer's `Retry-After`, when it sent one.
        retry_after: Option<Duration>,
    },
    /// The peer will never take this batch as it is (a malformed or refused
    /// event): dead-letter it (a batch of several is split first).
    #[error("permanent: {reason}")]
    Permanent { reason: String },
    /// The endpoint is gone (e.g. HTTP 410): stop this sink and report it.
    #[error("endpoint disabled: {reason}")]
    Disabled { reason: String },
}

impl SendError {
    /// A request that got no answer (refused connection, timeout, TLS):
    /// the peer may be back later.
    pub fn unreachable(peer: &str, err: &dyn std::fmt::Display) -> Self {
        SendError::Retryable {
            reason: format!("{peer}: {err}"),
            retry_after: None,
        }
    }
}

pub type SendFuture<'a> = Pin<Box<dyn Future<Output = Result<Delivered, SendError>> + Send + 'a>>;

/// A destination for audit events.
pub trait Sink: Send + Sync {
    /// `webhook`, `datadog`, …
    fn kind(&self) -> &'static str;
    fn limits(&self) -> Limits;
    /// Delivers one batch (within [`Sink::limits`]); `Ok` only once the peer
    /// acknowledged it, naming any events it refused individually.
    fn send<'a>(&'a self, batch: &'a [Event]) -> SendFuture<'a>;
}
