//! Datadog Logs intake, API v2: `POST {url}/api/v2/logs`.
//!
//! Each event is one log entry whose `message` is the event's JSON (which
//! Datadog parses into attributes), with `ddsource`, `ddtags`, `service`
//! and `hostname` from the configuration. Requests are gzip-compressed and
//! authenticated with `DD-API-KEY`. Datadog's documented limits: at most
//! 1,000 entries and 5,000,000 bytes (uncompressed) per request, and 1 MB
//! per entry; a larger entry would be truncated and still answered 2xx, so
//! it is dead-lettered instead of sent.
//!
//! Datadog keeps a log only if its date is at most 18 hours in the past;
//! an older one is answered 202 like any other and then dropped. An event
//! whose `timestamp` is older than that (less a margin of five minutes for
//! the request's way there) is therefore never sent: it is refused for good
//! here, dead-lettered with the reason, and never counted delivered. An
//! outage of more than 18 hours leaves its backlog in the dead letters,
//! where `GET /v1/sinks/{name}/dead-letters` shows it, rather than lost.
//!
//! Answers: 2xx delivered; 408, 429, 5xx retried (`Retry-After`
//! honoured); 401 and 403 retried too (a wrong key is fixed by the operator,
//! and the events must wait, not be dead-lettered); 413 and other 4xx are
//! permanent for the batch (the engine splits it, then dead-letters what a
//! single-event request still cannot carry).

use std::io::Write as _;
use std::sync::Arc;
use std::time::Duration;

use flate2::Compression;
use flate2::write::GzEncoder;
use serde_json::json;

use crate::egress::{self, Egress};
use crate::webhook::{check_egress, classify, retry_after, unreachable};
use crate::{Delivered, Event, Limits, SendError, SendFuture, Sink};

pub const MAX_ENTRIES: usize = 1_000;
pub const MAX_PAYLOAD_BYTES: usize = 5_000_000;
pub const MAX_ENTRY_BYTES: usize = 1_000_000;
/// The oldest log Datadog keeps: 18 hours.
pub const MAX_AGE_MS: i64 = 18 * 3_600_000;
/// What an event's age must leave of [`MAX_AGE_MS`] to be sent: the
/// request's time on the way, and clocks that differ.
pub const AGE_MARGIN_MS: i64 = 5 * 60_000;

/// Why an event too old for Datadog is dead-lettered.
pub fn too_old(age_ms: i64) -> String {
    format!(
        "the event is {:.1} hours old; Datadog drops logs more than 18 hours old (it would answer 202 and keep nothing)",
        age_ms as f64 / 3_600_000.0
    )
}

#[derive(Debug, Clone)]
pub struct DatadogConfig {
    /// The intake's base URL, e.g. `https://http-intake.logs.datadoghq.eu`.
    pub url: String,
    pub api_key: String,
    pub service: String,
    pub hostname: String,
    pub ddsource: String,
    /// `key:value` tags.
    pub ddtags: Vec<String>,
    pub timeout: Duration,
}

pub struct DatadogSink {
    endpoint: String,
    config: DatadogConfig,
    client: reqwest::Client,
    egress: Option<Arc<Egress>>,
}

impl DatadogSink {
    pub fn new(config: DatadogConfig) -> Self {
        Self {
            endpoint: format!("{}/api/v2/logs", config.url.trim_end_matches('/')),
            client: egress::http_client(config.timeout, None),
            config,
            egress: None,
        }
    }

    /// The same sink under an egress policy (a tenant's sink).
    pub fn with_egress(mut self, egress: Arc<Egress>) -> Self {
        self.client = egress::http_client(self.config.timeout, Some(&egress));
        self.egress = Some(egress);
        self
    }

    /// One log entry: what counts against the per-entry limit.
    fn entry(&self, e: &Event) -> serde_json::Value {
        json!({
            "ddsource": self.config.ddsource,
            "ddtags": self.config.ddtags.join(","),
            "hostname": self.config.hostname,
            "service": self.config.service,
            "message": String::from_utf8_lossy(&e.body),
        })
    }

    /// The gzip-compressed request body for a batch, checked against
    /// Datadog's limits exactly (the engine's batching estimates them from
    /// the events' sizes; escaping into `message` can make an entry larger).
    pub fn payload(&self, batch: &[Event]) -> Result<Vec<u8>, SendError> {
        let mut json = Vec::with_capacity(batch.iter().map(|e| e.body.len() + ENTRY_OVERHEAD).sum());
        json.push(b'[');
        for (i, e) in batch.iter().enumerate() {
            if i > 0 {
                json.push(b',');
            }
            let entry = serde_json::to_vec(&self.entry(e)).expect("an entry serialises");
            if entry.len() > MAX_ENTRY_BYTES {
                return Err(SendError::Permanent {
                    reason: format!(
                        "event {} makes a log entry of {} bytes, over Datadog's {MAX_ENTRY_BYTES} (it would be truncated)",
                        e.event_id,
                        entry.len()
                    ),
                });
            }
            json.extend_from_slice(&entry);
        }
        json.push(b']');
        if json.len() > MAX_PAYLOAD_BYTES {
            return Err(SendError::Permanent {
                reason: format!(
                    "a request of {} bytes is over Datadog's {MAX_PAYLOAD_BYTES}",
                    json.len()
                ),
            });
        }
        let mut gz = GzEncoder::new(Vec::new(), Compression::fast());
        gz.write_all(&json).expect("writing to memory");
        Ok(gz.finish().expect("writing to memory"))
    }
}

/// Bytes an entry adds beyond its event and configured fields: the
/// wrapper's member names and punctuation.
const ENTRY_OVERHEAD: usize = 512;

impl Sink for DatadogSink {
    fn kind(&self) -> &'static str {
        "datadog"
    }

    fn limits(&self) -> Limits {
        let fixed = ENTRY_OVERHEAD
            + self.config.ddtags.iter().map(|t| t.len() + 1).sum::<usize>()
            + self.config.service.len()
            + self.config.hostname.len()
            + self.config.ddsource.len();
        // Escaping the event into `message` adds about a tenth; a batch
        // that still comes out too large is split by the engine (see
        // `payload`).
        Limits::new(
            MAX_ENTRIES,
            (MAX_PAYLOAD_BYTES - MAX_ENTRIES * fixed) * 10 / 11,
            MAX_ENTRY_BYTES - fixed,
        )
    }

    fn send<'a>(&'a self, batch: &'a [Event]) -> SendFuture<'a> {
        Box::pin(async move {
            check_egress(self.egress.as_ref(), &self.endpoint)?;
            // Events Datadog would drop are refused here, by position; the
            // others are sent. (A timestamp that did not parse is 0: its
            // date is Datadog's intake time, and it is sent.)
            let now = std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map(|d| d.as_millis() as i64)
                .unwrap_or(0);
            let mut rejected = Vec::new();
            let mut fresh = Vec::with_capacity(batch.len());
            for (i, e) in batch.iter().enumerate() {
                let age = now - e.timestamp_ms;
                if e.timestamp_ms > 0 && age > MAX_AGE_MS - AGE_MARGIN_MS {
                    rejected.push((i, too_old(age)));
                } else {
                    fresh.push(i);
                }
            }
            if fresh.is_empty() {
                return Ok(Delivered { rejected, retry: None });
            }
            let sent: Vec<Event>;
            let batch: &[Event] = if rejected.is_empty() {
                batch
            } else {
                sent = fresh.iter().map(|&i| batch[i].clone()).collect();
                &sent
            };
            let res = self
                .client
                .post(&self.endpoint)
                .header("content-type", "application/json")
                .header("content-encoding", "gzip")
                .header("dd-api-key", &self.config.api_key)
                .body(self.payload(batch)?)
                .send()
                .await
                .map_err(|err| unreachable(&self.endpoint, &err, self.egress.as_ref()))?;
            let status = res.status().as_u16();
            if status == 401 || status == 403 {
                return Err(SendError::Retryable {
                    reason: format!("Datadog refused the API key ({status}); fix the sink's api_key"),
                    retry_after: Some(Duration::from_secs(30)),
                });
            }
            classify(status, retry_after(res.headers())).map(|()| Delivered { rejected, retry: None })
        })
    }
}
