//! Webhooks, signed as Standard Webhooks v1 (standardwebhooks.com).
//!
//! One event per request, `POST`ed as its JSON with:
//!
//! - `webhook-id`: the event's `event_id` (receivers deduplicate on it: a
//!   redelivery carries the same id);
//! - `webhook-timestamp`: seconds since the Unix epoch, when sent;
//! - `webhook-signature`: `v1,<base64 HMAC-SHA256(secret, id.timestamp.body)>`,
//!   one per configured secret, space-separated, so a receiver can rotate
//!   its secret without losing a delivery.
//!
//! Secrets are `whsec_<base64>` as the specification writes them. Only a
//! 2xx answer counts as delivered; 408, 429 and 5xx (and network errors)
//! are retried, honouring `Retry-After`; 410 disables the endpoint; other
//! answers are permanent for that event.
//!
//! A batch is sent as parallel requests (`concurrency` at most), one
//! sequence per workflow: a workflow's events are sent one after another,
//! in order, and after one of them fails the rest of that workflow waits
//! for the retry; other workflows go on. Only the events that failed are
//! sent again.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use futures_util::{StreamExt as _, stream};
use hmac::{Hmac, Mac};
use sha2::Sha256;

use crate::egress::{self, Egress};
use crate::{Delivered, Event, Limits, Retry, SendError, SendFuture, Sink};

#[derive(Debug, Clone)]
pub struct WebhookConfig {
    pub url: String,
    /// `whsec_<base64>`; several during a rotation, the newest first.
    pub secrets: Vec<String>,
    pub timeout: Duration,
    pub max_event_bytes: usize,
    /// Requests in flight at most.
    pub concurrency: usize,
}

pub struct WebhookSink {
    url: String,
    keys: Vec<Vec<u8>>,
    client: reqwest::Client,
    timeout: Duration,
    egress: Option<Arc<Egress>>,
    max_event_bytes: usize,
    concurrency: usize,
}

/// What became of one event of a batch.
enum Outcome {
    Delivered,
    Failed(SendError),
    /// Not sent: an earlier event of its workflow failed and is retried.
    Held,
}

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
#[error("webhook secret {0}: must be whsec_ followed by base64")]
pub struct BadSecret(usize);

impl WebhookSink {
    pub fn new(config: WebhookConfig) -> Result<Self, BadSecret> {
        let keys = config
            .secrets
            .iter()
            .enumerate()
            .map(|(i, s)| {
                s.strip_prefix("whsec_")
                    .and_then(|b| STANDARD.decode(b).ok())
                    .filter(|k| !k.is_empty())
                    .ok_or(BadSecret(i))
            })
            .collect::<Result<Vec<_>, _>>()?;
        if keys.is_empty() {
            return Err(BadSecret(0));
        }
        Ok(Self {
            url: config.url,
            keys,
            client: egress::http_client(config.timeout, None),
            timeout: config.timeout,
            egress: None,
            max_event_bytes: config.max_event_bytes,
            concurrency: config.concurrency.max(1),
        })
    }

    /// The same sink under an egress policy (a tenant's sink).
    pub fn with_egress(mut self, egress: Arc<Egress>) -> Self {
        self.client = egress::http_client(self.timeout, Some(&egress));
        self.egress = Some(egress);
        self
    }

    /// The `webhook-signature` header for this message.
    pub fn signature(&self, id: &str, timestamp: i64, body: &[u8]) -> String {
        self.keys
            .iter()
            .map(|k| {
                let mut mac = Hmac::<Sha256>::new_from_slice(k).expect("HMAC takes any key length");
                mac.update(id.as_bytes());
                mac.update(b".");
                mac.update(timestamp.to_string().as_bytes());
                mac.update(b".");
                mac.update(body);
                format!("v1,{}", STANDARD.encode(mac.finalize().into_bytes()))
            })
            .collect::<Vec<_>>()
            .join(" ")
    }

    async fn send_one(&self, e: &Event) -> Result<(), SendError> {
        check_egress(self.egress.as_ref(), &self.url)?;
        let now = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map(|d| d.as_secs() as i64)
            .unwrap_or(0);
        let res = self
            .client
            .post(&self.url)
            .header("content-type", "application/json")
            .header("webhook-id", &e.event_id)
            .header("webhook-timestamp", now.to_string())
            .header("webhook-signature", self.signature(&e.event_id, now, &e.body))
            .body(e.body.clone())
            .send()
            .await
            .map_err(|err| unreachable(&self.url, &err, self.egress.as_ref()))?;
        classify(res.status().as_u16(), retry_after(res.headers()))
    }
}

/// Refuses, before a request, a URL whose host is an address the policy
/// does not allow (an IP address is never seen by the DNS resolver).
pub fn check_egress(egress: Option<&Arc<Egress>>, url: &str) -> Result<(), SendError> {
    match egress {
        Some(policy) => policy.check_url(url).map_err(|refused| SendError::Retryable {
            reason: refused.to_string(),
            retry_after: None,
        }),
        None => Ok(()),
    }
}

/// A request that got no answer, said shortly under an egress policy.
pub fn unreachable(peer: &str, err: &reqwest::Error, egress: Option<&Arc<Egress>>) -> SendError {
    SendError::Retryable {
        reason: egress::unreachable_reason(peer, err, egress),
        retry_after: None,
    }
}

/// What an HTTP status means for a delivery (shared by the HTTP sinks).
pub fn classify(status: u16, retry_after: Option<Duration>) -> Result<(), SendError> {
    match status {
        200..=299 => Ok(()),
        410 => Err(SendError::Disabled {
            reason: "the endpoint answered 410 Gone".into(),
        }),
        // Redirects are not followed: the events wait for the sink's URL to
        // be fixed.
        300..=399 => Err(SendError::Retryable {
            reason: format!("the peer answered {status}, a redirect, which is not followed: set the final URL"),
            retry_after: None,
        }),
        408 | 425 | 429 | 500..=599 => Err(SendError::Retryable {
            reason: format!("the peer answered {status}"),
            retry_after,
        }),
        _ => Err(SendError::Permanent {
            reason: format!("the peer refused the event with {status}"),
        }),
    }
}

/// `Retry-After` in seconds (the HTTP-date form is read as absent).
pub fn retry_after(headers: &reqwest::header::HeaderMap) -> Option<Duration> {
    headers
        .get(reqwest::header::RETRY_AFTER)?
        .to_str()
        .ok()?
        .trim()
        .parse::<u64>()
        .ok()
        .map(Duration::from_secs)
}

impl Sink for WebhookSink {
    fn kind(&self) -> &'static str {
        "webhook"
    }

    fn limits(&self) -> Limits {
        // Enough events per batch to keep `concurrency` requests busy.
        Limits::new(
            self.concurrency * 8,
            self.concurrency * 8 * self.max_event_bytes,
            self.max_event_bytes,
        )
    }

    fn send<'a>(&'a self, batch: &'a [Event]) -> SendFuture<'a> {
        Box::pin(async move {
            if let [one] = batch {
                return self.send_one(one).await.map(|()| Delivered::all());
            }
            // One sequence per workflow (an event without one is its own).
            let mut sequences: Vec<Vec<usize>> = Vec::new();
            let mut by_workflow: HashMap<&str, usize> = HashMap::new();
            for (i, e) in batch.iter().enumerate() {
                match e.workflow_id.as_deref() {
                    Some(w) => match by_workflow.get(w) {
                        Some(&s) => sequences[s].push(i),
                        None => {
                            by_workflow.insert(w, sequences.len());
                            sequences.push(vec![i]);
                        }
                    },
                    None => sequences.push(vec![i]),
                }
            }
            let results: Vec<Vec<(usize, Outcome)>> = stream::iter(sequences)
                .map(|seq| async move {
                    let mut out = Vec::with_capacity(seq.len());
                    let mut held = false;
                    for i in seq {
                        if held {
                            out.push((i, Outcome::Held));
                            continue;
                        }
                        match self.send_one(&batch[i]).await {
                            Ok(()) => out.push((i, Outcome::Delivered)),
                            Err(e) => {
                                held = !matches!(e, SendError::Permanent { .. });
                                out.push((i, Outcome::Failed(e)));
                            }
                        }
                    }
                    out
                })
                .buffer_unordered(self.concurrency)
                .collect()
                .await;
            let mut delivered = Delivered::all();
            let mut retry: Option<Retry> = None;
            for (i, outcome) in results.into_iter().flatten() {
                match outcome {
                    Outcome::Delivered => {}
                    Outcome::Failed(SendError::Permanent { reason }) => delivered.rejected.push((i, reason)),
                    Outcome::Failed(e @ SendError::Disabled { .. }) => return Err(e),
                    Outcome::Failed(SendError::Retryable { reason, retry_after }) => {
                        let r = retry.get_or_insert(Retry {
                            positions: Vec::new(),
                            reason: reason.clone(),
                            retry_after,
                        });
                        r.positions.push(i);
                        r.retry_after = r.retry_after.max(retry_after);
                    }
                    Outcome::Held => {
                        retry
                            .get_or_insert(Retry {
                                positions: Vec::new(),
                                reason: String::new(),
                                retry_after: None,
                            })
                            .positions
                            .push(i);
                    }
                }
            }
            if let Some(mut r) = retry {
                r.positions.sort_unstable();
                if r.positions.len() == batch.len() && delivered.rejected.is_empty() {
                    // Nothing went through: the batch as a whole is retried.
                    return Err(SendError::Retryable {
                        reason: r.reason,
                        retry_after: r.retry_after,
                    });
                }
                delivered.retry = Some(r);
            }
            delivered.rejected.sort_unstable_by_key(|r| r.0);
            Ok(delivered)
        })
    }
}
