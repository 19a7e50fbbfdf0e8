//! A fake Datadog Logs intake that enforces the documented wire contract
//! of `POST /api/v2/logs`: the `DD-API-KEY` header, a gzip body holding a
//! JSON array, at most 1,000 entries and 5,000,000 bytes (uncompressed) per
//! request and 1,000,000 per entry (a longer entry is accepted and cut to
//! its first megabyte, as Datadog does, and counted a violation), each
//! entry with its `message`; and that
//! answers 408, 413, 429 or 5xx on demand, or refuses a marked event. Like
//! Datadog, it answers 202 for a log dated more than 18 hours ago and keeps
//! nothing of it (`dropped` counts them). Shared by the sink's tests and the
//! server's.

use std::collections::VecDeque;
use std::io::Read as _;
use std::sync::{Arc, Mutex};

use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::response::IntoResponse;
use serde_json::Value;

use super::server::Server;

pub const KEY: &str = "dd-test-key-0123456789abcdef";

#[derive(Default)]
pub struct Intake {
    pub entries: Mutex<Vec<Value>>,
    pub requests: Mutex<usize>,
    /// Breaches of the contract; any fails the test.
    pub violations: Mutex<Vec<String>>,
    /// Statuses to answer next, instead of 202.
    pub script: Mutex<VecDeque<u16>>,
    /// A request holding an entry that contains this text is refused with
    /// 400, as a peer refuses a malformed event, until it is cleared.
    pub refuse: Mutex<Option<String>>,
    /// Entries accepted and then dropped, as Datadog drops logs dated more
    /// than 18 hours ago.
    pub dropped: std::sync::atomic::AtomicUsize,
    /// Count entries instead of keeping them (for backlogs of millions).
    pub count_only: bool,
    pub counted: std::sync::atomic::AtomicUsize,
}

pub async fn logs(State(intake): State<Arc<Intake>>, headers: HeaderMap, body: Bytes) -> impl IntoResponse {
    let violation = |v: String| {
        intake.violations.lock().unwrap().push(v);
    };
    if headers.get("dd-api-key").and_then(|v| v.to_str().ok()) != Some(KEY) {
        return (StatusCode::FORBIDDEN, HeaderMap::new(), "bad key");
    }
    if headers.get("content-encoding").and_then(|v| v.to_str().ok()) != Some("gzip") {
        violation("body not gzip".into());
        return (StatusCode::BAD_REQUEST, HeaderMap::new(), "gzip");
    }
    let mut json = Vec::new();
    if flate2::read::GzDecoder::new(&body[..]).read_to_end(&mut json).is_err() {
        violation("corrupt gzip".into());
        return (StatusCode::BAD_REQUEST, HeaderMap::new(), "gzip");
    }
    if json.len() > 5_000_000 {
        violation(format!("payload of {} bytes", json.len()));
        return (StatusCode::PAYLOAD_TOO_LARGE, HeaderMap::new(), "too large");
    }
    let Ok(Value::Array(mut entries)) = serde_json::from_slice::<Value>(&json) else {
        violation("not a JSON array".into());
        return (StatusCode::BAD_REQUEST, HeaderMap::new(), "array");
    };
    if entries.len() > 1_000 {
        violation(format!("{} entries", entries.len()));
        return (StatusCode::PAYLOAD_TOO_LARGE, HeaderMap::new(), "too many");
    }
    for e in entries.iter_mut() {
        let size = serde_json::to_vec(&*e).unwrap().len();
        if size > 1_000_000 {
            // Datadog accepts it and keeps its first megabyte: the event
            // no longer reads back, which the sink must never let happen.
            violation(format!("an entry of {size} bytes"));
            if let Some(m) = e["message"].as_str() {
                let mut cut = 1_000_000.min(m.len());
                while !m.is_char_boundary(cut) {
                    cut -= 1;
                }
                e["message"] = Value::String(m[..cut].to_string());
            }
        }
        for field in ["ddsource", "ddtags", "hostname", "service", "message"] {
            if !e[field].is_string() {
                violation(format!("entry without {field}"));
            }
        }
    }
    *intake.requests.lock().unwrap() += 1;
    if let Some(marker) = intake.refuse.lock().unwrap().as_deref()
        && entries
            .iter()
            .any(|e| e["message"].as_str().is_some_and(|m| m.contains(marker)))
    {
        return (StatusCode::BAD_REQUEST, HeaderMap::new(), "refused");
    }
    if let Some(status) = intake.script.lock().unwrap().pop_front() {
        let mut h = HeaderMap::new();
        if status == 429 {
            h.insert("retry-after", "2".parse().unwrap());
        }
        return (StatusCode::from_u16(status).unwrap(), h, "scripted");
    }
    // Datadog's date is the event's `timestamp` (the message is JSON).
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_millis() as i64;
    let (kept, dropped): (Vec<Value>, Vec<Value>) = entries.into_iter().partition(|e| {
        let date = e["message"]
            .as_str()
            .and_then(|m| serde_json::from_str::<Value>(m).ok())
            .and_then(|m| m["timestamp"].as_str().map(str::to_string))
            .and_then(|t| chrono::DateTime::parse_from_rfc3339(&t).ok());
        date.is_none_or(|d| now - d.timestamp_millis() <= 18 * 3_600_000)
    });
    intake
        .dropped
        .fetch_add(dropped.len(), std::sync::atomic::Ordering::Relaxed);
    if intake.count_only {
        intake
            .counted
            .fetch_add(kept.len(), std::sync::atomic::Ordering::Relaxed);
    } else {
        intake.entries.lock().unwrap().extend(kept);
    }
    (StatusCode::ACCEPTED, HeaderMap::new(), "{}")
}

impl Intake {
    /// The entries' `message`s, parsed: the events as delivered.
    pub fn events(&self) -> Vec<Value> {
        self.entries
            .lock()
            .unwrap()
            .iter()
            .filter_map(|e| serde_json::from_str(e["message"].as_str()?).ok())
            .collect()
    }
}

/// Serves `intake` on `port` (0: any) until the returned server is stopped.
pub async fn serve(intake: Arc<Intake>, port: u16) -> Server {
    let app = axum::Router::new()
        .route("/api/v2/logs", axum::routing::post(logs))
        .layer(axum::extract::DefaultBodyLimit::max(64 * 1024 * 1024))
        .with_state(intake);
    Server::start(app, port).await
}
