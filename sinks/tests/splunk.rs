//! The Splunk HEC sink against a fake collector that enforces HEC's wire
//! contract: `Authorization: Splunk <token>`, a body of concatenated JSON
//! event objects each with `event`, `time`, `source`, `sourcetype`; with
//! indexer acknowledgement, a channel on every request (else HEC's code 10),
//! an `ackId` per request and `/services/collector/ack` answering whether it
//! is indexed yet. It can answer 503, 400 or refuse the token on demand.

use std::collections::{HashMap, VecDeque};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::Json;
use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use serde_json::{Value, json};
use warden_sinks::splunk::{SplunkConfig, SplunkSink};
use warden_sinks::{Event, SendError, Sink};

const TOKEN: &str = "0b1c2d3e-0000-4000-8000-123456789abc";

/// An ackId's request: (channel, events, polls so far).
type Pending = HashMap<u64, (String, Vec<Value>, usize)>;

#[derive(Default)]
struct Collector {
    ack: bool,
    /// Polls before an ackId reads as indexed (`usize::MAX`: never).
    polls_before_indexed: usize,
    next_ack: Mutex<u64>,
    pending: Mutex<Pending>,
    indexed: Mutex<Vec<Value>>,
    received: Mutex<Vec<Value>>,
    violations: Mutex<Vec<String>>,
    script: Mutex<VecDeque<u16>>,
}

fn channel(h: &HeaderMap) -> Option<String> {
    h.get("x-splunk-request-channel")
        .and_then(|v| v.to_str().ok())
        .map(str::to_string)
}

fn authorised(h: &HeaderMap) -> bool {
    h.get("authorization").and_then(|v| v.to_str().ok()) == Some(&format!("Splunk {TOKEN}"))
}

async fn event(State(c): State<Arc<Collector>>, h: HeaderMap, body: Bytes) -> (StatusCode, Json<Value>) {
    if !authorised(&h) {
        return (StatusCode::FORBIDDEN, Json(json!({"text": "Invalid token", "code": 4})));
    }
    if let Some(status) = c.script.lock().unwrap().pop_front() {
        return (
            StatusCode::from_u16(status).unwrap(),
            Json(json!({"text": "scripted", "code": 9})),
        );
    }
    let ch = channel(&h);
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
        for field in ["event", "time", "source", "sourcetype", "index"] {
            if item.get(field).is_none() {
                c.violations
                    .lock()
                    .unwrap()
                    .push(format!("event object without {field}"));
            }
        }
        events.push(item);
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

async fn ack(State(c): State<Arc<Collector>>, h: HeaderMap, Json(body): Json<Value>) -> (StatusCode, Json<Value>) {
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

async fn collector(ack_enabled: bool, polls_before_indexed: usize) -> (Arc<Collector>, String) {
    let state = Arc::new(Collector {
        ack: ack_enabled,
        polls_before_indexed,
        ..Default::default()
    });
    let app = axum::Router::new()
        .route("/services/collector/event", axum::routing::post(event))
        .route("/services/collector/ack", axum::routing::post(ack))
        .with_state(state.clone());
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    (state, url)
}

fn sink(url: &str, token: &str, ack: bool) -> SplunkSink {
    SplunkSink::new(SplunkConfig {
        url: url.into(),
        token: token.into(),
        sourcetype: "warden:audit".into(),
        source: "warden".into(),
        index: "audit".into(),
        host: "warden-1".into(),
        ack,
        ack_timeout: Duration::from_millis(800),
        timeout: Duration::from_secs(5),
        max_bytes: 1_000_000,
    })
}

fn events(n: u64) -> Vec<Event> {
    (0..n)
        .map(|i| Event {
            tenant_id: "ten_1".into(),
            index: i,
            event_id: format!("evt_{i}"),
            workflow_id: None,
            timestamp_ms: 1_713_173_021_842 + i as i64,
            body: serde_json::to_vec(&json!({"event_id": format!("evt_{i}"), "action": "document_read"})).unwrap(),
        })
        .collect()
}

#[tokio::test]
async fn without_ack_a_batch_is_concatenated_event_objects() {
    let (c, url) = collector(false, 0).await;
    let hec = sink(&url, TOKEN, false);
    hec.send(&events(5)).await.unwrap();
    let got = c.indexed.lock().unwrap().clone();
    assert_eq!(got.len(), 5);
    assert_eq!(got[0]["event"]["event_id"], "evt_0");
    assert_eq!(got[4]["time"], json!(1_713_173_021.846));
    assert_eq!(
        (got[0]["sourcetype"].as_str(), got[0]["index"].as_str()),
        (Some("warden:audit"), Some("audit"))
    );
    assert!(
        c.violations.lock().unwrap().is_empty(),
        "{:?}",
        c.violations.lock().unwrap()
    );
}

#[tokio::test]
async fn with_ack_a_batch_counts_only_once_indexed() {
    let (c, url) = collector(true, 2).await;
    let hec = sink(&url, TOKEN, true);
    hec.send(&events(3)).await.expect("acknowledged after polling");
    assert_eq!(
        c.indexed.lock().unwrap().len(),
        3,
        "send returned only once Splunk said indexed"
    );
    assert!(c.pending.lock().unwrap().is_empty());
    assert!(
        c.violations.lock().unwrap().is_empty(),
        "{:?}",
        c.violations.lock().unwrap()
    );

    // Received but never indexed: a 200 alone is not delivery.
    let (c, url) = collector(true, usize::MAX).await;
    let hec = sink(&url, TOKEN, true);
    let err = hec.send(&events(2)).await.unwrap_err();
    assert!(
        matches!(&err, SendError::Retryable { reason, .. } if reason.contains("did not acknowledge")),
        "{err:?}"
    );
    assert_eq!(c.received.lock().unwrap().len(), 2);
    assert!(c.indexed.lock().unwrap().is_empty());

    // A server without ack answering an ack-enabled sink: no ackId, no delivery.
    let (_, url) = collector(false, 0).await;
    let hec = sink(&url, TOKEN, true);
    assert!(matches!(hec.send(&events(1)).await, Err(SendError::Retryable { reason, .. }) if reason.contains("ackId")));
}

#[tokio::test]
async fn answers_are_classified() {
    let (c, url) = collector(false, 0).await;
    let hec = sink(&url, TOKEN, false);
    c.script.lock().unwrap().extend([503, 429, 400, 413]);
    assert!(matches!(hec.send(&events(1)).await, Err(SendError::Retryable { .. })));
    assert!(matches!(hec.send(&events(1)).await, Err(SendError::Retryable { .. })));
    assert!(matches!(hec.send(&events(1)).await, Err(SendError::Permanent { reason }) if reason.contains("scripted")));
    assert!(matches!(hec.send(&events(1)).await, Err(SendError::Permanent { .. })));
    let wrong = sink(&url, "not-the-token", false);
    assert!(
        matches!(wrong.send(&events(1)).await, Err(SendError::Retryable { reason, .. }) if reason.contains("token"))
    );
    assert_eq!(hec.channel().len(), 36);
    assert_ne!(hec.channel(), wrong.channel(), "each sink has its own channel");
}
