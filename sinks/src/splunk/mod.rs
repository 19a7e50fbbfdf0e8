//! Splunk HTTP Event Collector: `POST {url}/services/collector/event`.
//!
//! A batch is the concatenation of one JSON object per event, `{"time",
//! "host", "source", "sourcetype", "index", "event"}`, authenticated with
//! `Authorization: Splunk <token>`.
//!
//! With indexer acknowledgement enabled on the token, every request carries
//! this sink's channel (`X-Splunk-Request-Channel`, a GUID), the answer's
//! `ackId` is polled at `/services/collector/ack` until Splunk says the
//! batch is indexed, and only then is the batch delivered: a plain 200 is
//! never taken for delivery. A batch not acknowledged within `ack_timeout`
//! is retried (so delivery stays at least once).
//!
//! Answers: 2xx as above; 408, 429, 5xx retried (`Retry-After` honoured);
//! 401 and 403 retried (a token problem is fixed by the operator; events
//! wait); 413 and other 4xx permanent for the batch (the engine splits it).
//!
//! A 400 naming an `invalid-event-number` N is HEC's answer to a batch with
//! one bad event: it indexed the events before N and stopped. Event N is
//! dead-lettered with HEC's reason and the events after it are sent again.
//! The events before it count as delivered without acknowledgement; with
//! acknowledgement on, HEC gave no ackId for them, so they are sent again
//! too (a duplicate is possible, a loss is not).

use std::sync::Arc;
use std::time::{Duration, Instant};

use serde_json::{Value, json};

use crate::egress::{self, Egress};
use crate::webhook::{check_egress, classify, retry_after, unreachable};
use crate::{Delivered, Event, Limits, SendError, SendFuture, Sink};

#[derive(Debug, Clone)]
pub struct SplunkConfig {
    /// The HEC base URL, e.g. `https://splunk.example:8088`.
    pub url: String,
    pub token: String,
    pub sourcetype: String,
    pub source: String,
    /// Empty: the token's default index.
    pub index: String,
    pub host: String,
    /// Whether the token has indexer acknowledgement enabled.
    pub ack: bool,
    pub ack_timeout: Duration,
    pub timeout: Duration,
    /// HEC's `max_content_length` for this deployment (1,000,000 is safe
    /// for Splunk Cloud).
    pub max_bytes: usize,
}

pub struct SplunkSink {
    config: SplunkConfig,
    channel: String,
    client: reqwest::Client,
    egress: Option<Arc<Egress>>,
}

/// A random (version 4) GUID, as HEC channels are written.
fn guid() -> String {
    let mut b = [0u8; 16];
    getrandom::fill(&mut b).expect("operating system random source");
    b[6] = (b[6] & 0x0f) | 0x40;
    b[8] = (b[8] & 0x3f) | 0x80;
    let h: String = b.iter().map(|x| format!("{x:02x}")).collect();
    format!("{}-{}-{}-{}-{}", &h[..8], &h[8..12], &h[12..16], &h[16..20], &h[20..])
}

impl SplunkSink {
    pub fn new(config: SplunkConfig) -> Self {
        Self {
            client: egress::http_client(config.timeout, None),
            config,
            channel: guid(),
            egress: None,
        }
    }

    /// The same sink under an egress policy (a tenant's sink): its reasons
    /// leave out what Splunk said.
    pub fn with_egress(mut self, egress: Arc<Egress>) -> Self {
        self.client = egress::http_client(self.config.timeout, Some(&egress));
        self.egress = Some(egress);
        self
    }

    /// What Splunk said, for a reason: nothing under an egress policy.
    fn said(&self, body: &Value) -> String {
        match (&self.egress, body["text"].as_str()) {
            (None, Some(text)) => format!(": {text}"),
            _ => String::new(),
        }
    }

    pub fn channel(&self) -> &str {
        &self.channel
    }

    fn base(&self) -> &str {
        self.config.url.trim_end_matches('/')
    }

    /// The request body: one HEC event object per event, concatenated.
    pub fn payload(&self, batch: &[Event]) -> Vec<u8> {
        let mut out = Vec::new();
        for e in batch {
            let event: Value = serde_json::from_slice(&e.body).unwrap_or(Value::Null);
            let mut o = json!({
                "time": e.timestamp_ms as f64 / 1000.0,
                "host": self.config.host,
                "source": self.config.source,
                "sourcetype": self.config.sourcetype,
                "event": event,
            });
            if !self.config.index.is_empty() {
                o["index"] = self.config.index.clone().into();
            }
            out.extend_from_slice(&serde_json::to_vec(&o).expect("an event serialises"));
            out.push(b'\n');
        }
        out
    }

    fn request(&self, path: &str) -> reqwest::RequestBuilder {
        let mut r = self
            .client
            .post(format!("{}{path}", self.base()))
            .header("authorization", format!("Splunk {}", self.config.token));
        if self.config.ack {
            r = r.header("x-splunk-request-channel", &self.channel);
        }
        r
    }

    async fn answer(&self, res: Result<reqwest::Response, reqwest::Error>) -> Result<Value, SendError> {
        self.answer_with_body(res).await.map_err(|(e, _)| e)
    }

    /// The answer's body, or why it is not a success with the body HEC
    /// sent (null when there was no answer).
    async fn answer_with_body(
        &self,
        res: Result<reqwest::Response, reqwest::Error>,
    ) -> Result<Value, (SendError, Value)> {
        let res = res.map_err(|err| (unreachable(self.base(), &err, self.egress.as_ref()), Value::Null))?;
        let status = res.status().as_u16();
        let after = retry_after(res.headers());
        let body: Value = res.json().await.unwrap_or(Value::Null);
        if status == 401 || status == 403 {
            let e = SendError::Retryable {
                reason: format!(
                    "Splunk refused the HEC token ({status}{}); fix the sink's token",
                    self.said(&body)
                ),
                retry_after: Some(Duration::from_secs(30)),
            };
            return Err((e, body));
        }
        match classify(status, after) {
            Ok(()) => Ok(body),
            Err(SendError::Permanent { reason }) => {
                let reason = format!("{reason}{}", self.said(&body));
                Err((SendError::Permanent { reason }, body))
            }
            Err(other) => Err((other, body)),
        }
    }

    /// What a permanent refusal of a batch means: with HEC's
    /// `invalid-event-number` N inside the batch, event N is refused, those
    /// after it were not read, and those before it were indexed (counted
    /// delivered only without indexer acknowledgement). Without it, the
    /// whole batch is refused (and the engine splits it).
    fn partly_indexed(&self, len: usize, body: &Value, reason: String) -> Result<Delivered, SendError> {
        let bad = body["invalid-event-number"]
            .as_u64()
            .and_then(|n| usize::try_from(n).ok())
            .filter(|n| *n < len && len > 1);
        let Some(bad) = bad else {
            return Err(SendError::Permanent { reason });
        };
        let mut again: Vec<usize> = (bad + 1..len).collect();
        if self.config.ack {
            again.extend(0..bad);
            again.sort_unstable();
        }
        Ok(Delivered {
            rejected: vec![(bad, reason)],
            retry: (!again.is_empty()).then(|| crate::Retry {
                positions: again,
                reason: format!("HEC stopped at event {bad} of the batch"),
                retry_after: None,
            }),
        })
    }

    /// Polls until Splunk reports `ack_id` indexed, or the time is up.
    async fn await_ack(&self, ack_id: u64) -> Result<(), SendError> {
        let deadline = Instant::now() + self.config.ack_timeout;
        let mut wait = Duration::from_millis(20);
        loop {
            let res = self
                .request("/services/collector/ack")
                .json(&json!({"acks": [ack_id]}))
                .send()
                .await;
            let body = self.answer(res).await?;
            if body["acks"][ack_id.to_string()] == Value::Bool(true) {
                return Ok(());
            }
            if Instant::now() + wait > deadline {
                return Err(SendError::Retryable {
                    reason: format!(
                        "Splunk did not acknowledge ackId {ack_id} within {:?}",
                        self.config.ack_timeout
                    ),
                    retry_after: None,
                });
            }
            tokio::time::sleep(wait).await;
            wait = (wait * 2).min(Duration::from_secs(1));
        }
    }
}

impl Sink for SplunkSink {
    fn kind(&self) -> &'static str {
        "splunk_hec"
    }

    fn limits(&self) -> Limits {
        // Each event gains its HEC wrapper (about 200 bytes).
        Limits::new(
            1_000,
            self.config.max_bytes.saturating_sub(1_000 * 256),
            self.config.max_bytes.saturating_sub(256),
        )
    }

    fn send<'a>(&'a self, batch: &'a [Event]) -> SendFuture<'a> {
        Box::pin(async move {
            check_egress(self.egress.as_ref(), self.base())?;
            let res = self
                .request("/services/collector/event")
                .header("content-type", "application/json")
                .body(self.payload(batch))
                .send()
                .await;
            let body = match self.answer_with_body(res).await {
                Ok(body) => body,
                Err((SendError::Permanent { reason }, body)) => {
                    return self.partly_indexed(batch.len(), &body, reason);
                }
                Err((e, _)) => return Err(e),
            };
            if !self.config.ack {
                return Ok(Delivered::all());
            }
            match body["ackId"].as_u64() {
                Some(id) => self.await_ack(id).await.map(|()| Delivered::all()),
                None => Err(SendError::Retryable {
                    reason: "Splunk answered without an ackId; is indexer acknowledgement enabled on the token?".into(),
                    retry_after: None,
                }),
            }
        })
    }
}
