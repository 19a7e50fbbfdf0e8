//! A Standard Webhooks receiver in the bench's own process, for timing
//! arrivals: every delivery's signature is checked, and each event is kept
//! with the time it arrived.

// Each bench uses a part of it.
#![allow(dead_code)]

use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use axum::body::Bytes;
use axum::http::{HeaderMap, StatusCode};
use serde_json::Value;
use warden_sinks::webhook::{WebhookConfig, WebhookSink};

use crate::peers::server::Server;

pub const SECRET_WEBHOOK: &str = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw";

pub fn now_ms() -> i64 {
    SystemTime::now().duration_since(UNIX_EPOCH).unwrap().as_millis() as i64
}

/// Events that arrived at a peer: (arrival ms, the event).
pub type Arrivals = Arc<Mutex<Vec<(i64, Value)>>>;

/// A receiver of Standard Webhooks on `port` that checks every signature
/// (401 for a wrong one) and keeps what arrives in `arrivals`.
pub async fn webhook_peer(port: u16, arrivals: Arrivals) -> Server {
    let verifier = Arc::new(
        WebhookSink::new(WebhookConfig {
            url: String::new(),
            secrets: vec![SECRET_WEBHOOK.into()],
            timeout: Duration::from_secs(1),
            max_event_bytes: 1 << 20,
            concurrency: 1,
        })
        .unwrap(),
    );
    let app = axum::Router::new().route(
        "/",
        axum::routing::post(move |h: HeaderMap, body: Bytes| {
            let (verifier, arrivals) = (verifier.clone(), arrivals.clone());
            async move {
                let header = |n: &str| h.get(n).and_then(|v| v.to_str().ok()).unwrap_or_default().to_string();
                let ts: i64 = header("webhook-timestamp").parse().unwrap_or(0);
                if verifier.signature(&header("webhook-id"), ts, &body) != header("webhook-signature") {
                    return StatusCode::UNAUTHORIZED;
                }
                let event: Value = serde_json::from_slice(&body).unwrap_or_default();
                arrivals.lock().unwrap().push((now_ms(), event));
                StatusCode::NO_CONTENT
            }
        }),
    );
    Server::start(app, port).await
}
