//! A fake Splunk HTTP Event Collector that enforces the documented wire
//! contract: `Authorization: Splunk <token>`, concatenated JSON event
//! objects with their metadata, and with indexer acknowledgement a channel
//! on every request and ackIds that read as indexed only after some polls;
//! it answers any status on demand, or refuses a marked event. It refuses
//! what HEC refuses: a body over `max_content_length` (413), an empty body
//! (400 "No data", code 5), a channel that is not a GUID (400 code 11), an
//! event that is null or empty (400 code 13); a batch with a bad event
//! (blank, or holding the refused marker) has the events before it indexed
//! and is answered 400 with the bad one's `invalid-event-number`, as HEC
//! does;
//! and, as an indexer that restarts, it forgets the ackIds pending when it
//! is served again. Shared by the sink's tests and the server's.

use std::collections::{HashMap, VecDeque};
use std::sync::{Arc, Mutex};

use axum::Json;
use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use serde_json::{Value, json};

use super::server::Server;

pub const TOKEN: &str = "0b1c2d3e-0000-4000-8000-123456789abc";

/// An ackId's request: (channel, events, polls so far).
pub type Pending = HashMap<u64, (String, Vec<Value>, usize)>;

#[derive(Default)]
pub struct Collector {
    pub ack: bool,
    /// Polls before an ackId reads as indexed (`usize::MAX`: never).
    pub polls_before_indexed: usize,
    pub next_ack: Mutex<u64>,
    pub pending: Mutex<Pending>,
    pub indexed: Mutex<Vec<Value>>,
    pub received: Mutex<Vec<Value>>,
    pub violations: Mutex<Vec<String>>,
    pub script: Mutex<VecDeque<u16>>,
    /// An event containing this text is refused with 400 (code 6, invalid
    /// data format, `invalid-event-number`), the events before it in its
    /// request indexed, until it is cleared.
    pub refuse: Mutex<Option<String>>,
    /// HEC's `max_content_length`: a larger body is refused with 413 (0:
    /// [`MAX_CONTENT_LENGTH`]).
    pub max_content_length: usize,
}

/// The body size HEC accepts by default here, and Splunk Cloud's: what the
/// sink's `max_bytes` defaults to.
pub const MAX_CONTENT_LENGTH: usize = 1_000_000;

/// Whether `s` is written as HEC wants a channel: a GUID.
fn is_guid(s: &str) -> bool {
    let parts: Vec<&str> = s.split('-').collect();
    parts.len() == 5
        && parts.iter().map(|p| p.len()).eq([8, 4, 4, 4, 12])
        && parts.iter().all(|p| p.chars().all(|c| c.is_ascii_hexdigit()))
}

fn channel(h: &HeaderMap) -> Option<String> {
    h.get("x-splunk-request-channel")
        .and_then(|v| v.to_str().ok())
        .map(str::to_string)
}

fn authorised(h: &HeaderMap) -> bool {
    h.get("authorization").and_then(|v| v.to_str().ok()) == Some(&format!("Splunk {TOKEN}"))
}

pub async fn event(State(c): State<Arc<Collector>>, h: HeaderMap, body: Bytes) -> (StatusCode, Json<Value>) {
    if !authorised(&h) {
        return (StatusCode::FORBIDDEN, Json(json!({"text": "Invalid token", "code": 4})));
    }
    if let Some(status) = c.script.lock().unwrap().pop_front() {
        return (
            StatusCode::from_u16(status).unwrap(),
            Json(json!({"text": "scripted", "code": 9})),
        );
    }
    let limit = if c.max_content_length == 0 {
        MAX_CONTENT_LENGTH
    } else {
        c.max_content_length
    };
    if body.len() > limit {
        c.violations.lock().unwrap().push(format!(
            "a body of {} bytes, over max_content_length {limit}",
            body.len()
        ));
        return (
            StatusCode::PAYLOAD_TOO_LARGE,
            Json(json!({"text": "Content too large", "code": 27})),
        );
    }
    if body.iter().all(u8::is_ascii_whitespace) {
        c.violations.lock().unwrap().push("an empty body".into());
        return (StatusCode::BAD_REQUEST, Json(json!({"text": "No data", "code": 5})));
    }
    let ch = channel(&h);
    if let Some(ch) = ch.as_deref()
        && !is_guid(ch)
    {
        c.violations
            .lock()
            .unwrap()
            .push(format!("channel {ch:?} is not a GUID"));
        return (
            StatusCode::BAD_REQUEST,
            Json(json!({"text": "Invalid data channel", "code": 11})),
        );
    }
    if c.ack && ch.is_none() {
        c.violations.lock().unwrap().push("no channel with ack enabled".into());
        return (
            StatusCode::BAD_REQUEST,
            Json(json!({"text": "Data channel is missing", "code": 10})),
        );
    }
    let mut events = Vec::new();
    for item in serde_json::Deserializer::from_slice(&body).into_iter::<Value>() {
        let Ok(item) = item else {
            c.violations
                .lock()
                .unwrap()
                .push("not concatenated JSON objects".into());
            return (
                StatusCode::BAD_REQUEST,
                Json(json!({"text": "Invalid data format", "code": 6})),
            );
        };
        if item.get("event").is_none_or(|e| e.is_null() || e == "") {
            c.violations.lock().unwrap().push("a blank event".into());
            return c.stop_at(events, "Event field cannot be blank", 13);
        }
        // `index` is optional: without it HEC uses the token's default index.
        for field in ["event", "time", "source", "sourcetype"] {
            if item.get(field).is_none() {
                c.violations
                    .lock()
                    .unwrap()
                    .push(format!("event object without {field}"));
            }
        }
        events.push(item);
    }
    let refused = c.refuse.lock().unwrap().clone();
    if let Some(marker) = refused
        && let Some(bad) = events.iter().position(|e| e["event"].to_string().contains(&marker))
    {
        events.truncate(bad);
        return c.stop_at(events, "Invalid data format", 6);
    }
    c.received.lock().unwrap().extend(events.iter().cloned());
    if !c.ack {
        c.indexed.lock().unwrap().extend(events);
        return (StatusCode::OK, Json(json!({"text": "Success", "code": 0})));
    }
    let mut next = c.next_ack.lock().unwrap();
    let id = *next;
    *next += 1;
    c.pending.lock().unwrap().insert(id, (ch.unwrap(), events, 0));
    (StatusCode::OK, Json(json!({"text": "Success", "code": 0, "ackId": id})))
}

pub async fn ack(State(c): State<Arc<Collector>>, h: HeaderMap, Json(body): Json<Value>) -> (StatusCode, Json<Value>) {
    if !authorised(&h) {
        return (StatusCode::FORBIDDEN, Json(json!({"text": "Invalid token", "code": 4})));
    }
    let Some(ch) = channel(&h) else {
        c.violations.lock().unwrap().push("ack poll without channel".into());
        return (
            StatusCode::BAD_REQUEST,
            Json(json!({"text": "Data channel is missing", "code": 10})),
        );
    };
    let mut out = serde_json::Map::new();
    let mut pending = c.pending.lock().unwrap();
    for id in body["acks"].as_array().cloned().unwrap_or_default() {
        let id = id.as_u64().unwrap();
        let done = match pending.get_mut(&id) {
            Some((owner, _, polls)) if *owner == ch => {
                *polls += 1;
                *polls > c.polls_before_indexed
            }
            _ => false,
        };
        if done {
            let (_, events, _) = pending.remove(&id).unwrap();
            c.indexed.lock().unwrap().extend(events);
        }
        out.insert(id.to_string(), Value::Bool(done));
    }
    (StatusCode::OK, Json(json!({"acks": out})))
}

impl Collector {
    /// HEC's answer to a batch with a bad event: the events before it
    /// (`before`) are indexed, without an ackId even with acknowledgement
    /// on, and the answer names the bad one's position.
    fn stop_at(&self, before: Vec<Value>, text: &str, code: u32) -> (StatusCode, Json<Value>) {
        let n = before.len();
        self.received.lock().unwrap().extend(before.iter().cloned());
        self.indexed.lock().unwrap().extend(before);
        (
            StatusCode::BAD_REQUEST,
            Json(json!({"text": text, "code": code, "invalid-event-number": n})),
        )
    }

    pub fn new(ack: bool, polls_before_indexed: usize) -> Self {
        Self {
            ack,
            polls_before_indexed,
            ..Default::default()
        }
    }

    /// The events indexed (acknowledged, when acknowledgement is on).
    pub fn events(&self) -> Vec<Value> {
        self.indexed
            .lock()
            .unwrap()
            .iter()
            .map(|e| e["event"].clone())
            .collect()
    }
}

/// Serves `collector` on `port` (0: any) until the returned server is
/// stopped. Served again after a stop, it is an indexer that restarted: the
/// ackIds pending are forgotten (their events were never indexed), and a
/// poll for one reads `false` until the sink gives up and sends again.
pub async fn serve(collector: Arc<Collector>, port: u16) -> Server {
    collector.pending.lock().unwrap().clear();
    let app = axum::Router::new()
        .route("/services/collector/event", axum::routing::post(event))
        .route("/services/collector/ack", axum::routing::post(ack))
        .with_state(collector);
    Server::start(app, port).await
}
