//! The CloudWatch Logs sink against two peers:
//!
//! - moto's CloudWatch Logs server (`pip install 'moto[server]'`), which
//!   each test starts on a free port and stops when it ends; what the sink
//!   sent is read back with the AWS SDK (`GetLogEvents`,
//!   `DescribeLogGroups`, `DescribeLogStreams`). moto creates nothing by
//!   itself, keeps order and timestamps, ignores sequence tokens, and
//!   answers `rejectedLogEventsInfo` for events more than 14 days old or 2
//!   hours ahead, but not with AWS's bounds: its `tooOldLogEventEndIndex`
//!   is the index of the last event too old (AWS: one past it) and its
//!   `tooNewLogEventStartIndex` the index of the last event too new (AWS:
//!   the first). So a single event too new is checked against moto, and
//!   the full mapping (too old, expired, several too new) against the fake;
//! - a fake of the service's JSON protocol (`POST /`, `x-amz-target:
//!   Logs_20140328.*`, `application/x-amz-json-1.1`, a SigV4
//!   `authorization`) that enforces `PutLogEvents`' documented contract
//!   (events in chronological order, at most 10,000 events and 1,048,576
//!   bytes counting 26 per event, at most 24 hours between the first and
//!   the last, no sequence token) and answers throttling, 5xx,
//!   `ServiceUnavailableException`, `InvalidParameterException`, refused
//!   credentials, slow answers and `rejectedLogEventsInfo` on demand.

use std::collections::VecDeque;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use serde_json::{Value, json};
use warden_sinks::batching;
use warden_sinks::cloudwatch::{CloudWatchConfig, CloudWatchSink, MAX_EVENT_BYTES};
use warden_sinks::{Delivered, Event, SendError, Sink};

#[path = "peers/mod.rs"]
mod peers;
use peers::free_port;
use peers::moto::{KEY_ID, REGION, SECRET, moto, reader, stored};
const HOUR_MS: i64 = 3_600_000;
const DAY_MS: i64 = 24 * HOUR_MS;

fn now_ms() -> i64 {
    SystemTime::now().duration_since(UNIX_EPOCH).unwrap().as_millis() as i64
}

/// An event whose body is `{"event_id":"evt_<i>", ...}` padded to at least
/// `size` bytes.
fn event(i: u64, timestamp_ms: i64, size: usize) -> Event {
    let head = format!("{{\"event_id\":\"evt_{i}\",\"action\":\"document_read\",\"pad\":\"");
    let pad = size.saturating_sub(head.len() + 2);
    let body = format!("{head}{}\"}}", "x".repeat(pad));
    Event {
        tenant_id: "ten_1".into(),
        index: i,
        event_id: format!("evt_{i}"),
        workflow_id: Some("wf-1".into()),
        timestamp_ms,
        body: body.into_bytes(),
    }
}

fn config(endpoint: &str, group: &str, stream: &str) -> CloudWatchConfig {
    CloudWatchConfig {
        region: REGION.into(),
        endpoint: Some(endpoint.into()),
        log_group: group.into(),
        log_stream: stream.into(),
        access_key_id: Some(KEY_ID.into()),
        secret_access_key: Some(SECRET.into()),
        timeout: Duration::from_secs(10),
    }
}

fn sink(endpoint: &str, group: &str, stream: &str) -> CloudWatchSink {
    CloudWatchSink::new(config(endpoint, group, stream))
}

/// The same batch in the order CloudWatch Logs must keep: by timestamp,
/// events of one millisecond as they came.
fn chronological(batch: &[Event]) -> Vec<&Event> {
    let mut sorted: Vec<&Event> = batch.iter().collect();
    sorted.sort_by_key(|e| e.timestamp_ms);
    sorted
}

fn body_str(e: &Event) -> &str {
    std::str::from_utf8(&e.body).unwrap()
}

#[tokio::test]
async fn moto_creates_the_group_and_stream_and_stores_every_event_in_order() {
    let moto = moto();
    let client = reader(&moto.url).await;
    let cw = sink(&moto.url, "warden-audit", "warden-1");
    assert_eq!(cw.kind(), "cloudwatch_logs");

    // Out of order, with ties that must keep their order.
    let t0 = now_ms() - HOUR_MS;
    let offsets = [30, 10, 20, 10, 0, 50, 40, 10, 5, 30];
    let batch: Vec<Event> = offsets
        .iter()
        .enumerate()
        .map(|(i, off)| event(i as u64, t0 + off, 60))
        .collect();
    assert_eq!(cw.send(&batch).await, Ok(Delivered::all()));

    let groups = client
        .describe_log_groups()
        .log_group_name_prefix("warden-audit")
        .send()
        .await
        .unwrap();
    assert_eq!(groups.log_groups().len(), 1, "the group was created");
    let streams = client
        .describe_log_streams()
        .log_group_name("warden-audit")
        .send()
        .await
        .unwrap();
    let names: Vec<_> = streams
        .log_streams()
        .iter()
        .filter_map(|s| s.log_stream_name())
        .collect();
    assert_eq!(names, ["warden-1"], "the stream was created");

    let expected: Vec<(i64, String)> = chronological(&batch)
        .into_iter()
        .map(|e| (e.timestamp_ms, body_str(e).to_string()))
        .collect();
    assert_eq!(stored(&client, "warden-audit", "warden-1").await, expected);

    // Into the stream that now exists, with no sequence token.
    let more = [event(100, t0 + 60, 60)];
    assert_eq!(cw.send(&more).await, Ok(Delivered::all()));
    let got = stored(&client, "warden-audit", "warden-1").await;
    assert_eq!(got.len(), batch.len() + 1);
    assert_eq!(got.last().unwrap().1, body_str(&more[0]));

    // A group made by someone else: only the stream is created.
    client
        .create_log_group()
        .log_group_name("provisioned")
        .send()
        .await
        .unwrap();
    let other = sink(&moto.url, "provisioned", "warden-2");
    assert_eq!(other.send(&more).await, Ok(Delivered::all()));
    assert_eq!(stored(&client, "provisioned", "warden-2").await.len(), 1);
}

#[tokio::test]
async fn moto_takes_25_000_events_in_requests_of_at_most_10_000() {
    let moto = moto();
    let client = reader(&moto.url).await;
    let cw = sink(&moto.url, "bulk", "warden-1");
    let t0 = now_ms() - 2 * HOUR_MS;
    let events: Vec<Event> = (0..25_000u64).map(|i| event(i, t0 + i as i64, 48)).collect();
    let (batches, oversized) = batching::batches(&events, &cw.limits());
    assert!(oversized.is_empty());
    assert_eq!(batches.len(), 3, "{batches:?}");
    for b in batches {
        assert!(b.len() <= 10_000, "{b:?}");
        let bytes: usize = events[b.clone()].iter().map(|e| e.body.len() + 26).sum();
        assert!(bytes <= 1_048_576, "{bytes}");
        assert_eq!(cw.send(&events[b]).await, Ok(Delivered::all()));
    }
    let got = stored(&client, "bulk", "warden-1").await;
    assert_eq!(got.len(), 25_000, "every event arrived");
    for (e, (ts, message)) in events.iter().zip(&got) {
        assert_eq!((e.timestamp_ms, body_str(e)), (*ts, message.as_str()));
    }
}

#[tokio::test]
async fn moto_rejects_an_event_too_new_and_it_maps_back_through_the_sort() {
    let moto = moto();
    let client = reader(&moto.url).await;
    let cw = sink(&moto.url, "clock", "warden-1");
    let now = now_ms();
    // Sorted, the event 3 hours ahead (position 1) is the request's last.
    let batch = vec![
        event(0, now - 1_000, 40),
        event(1, now + 3 * HOUR_MS, 40),
        event(2, now - 3_000, 40),
        event(3, now - 2_000, 40),
    ];
    let delivered = cw.send(&batch).await.unwrap();
    assert_eq!(delivered.rejected.len(), 1, "{delivered:?}");
    assert_eq!(delivered.rejected[0].0, 1);
    assert!(delivered.rejected[0].1.contains("too new"), "{delivered:?}");
    let got: Vec<String> = stored(&client, "clock", "warden-1")
        .await
        .into_iter()
        .map(|(_, m)| m)
        .collect();
    let expected: Vec<&str> = [2, 3, 0].iter().map(|&i| body_str(&batch[i])).collect();
    assert_eq!(got, expected, "the others were stored, in order");
}

#[tokio::test]
async fn moto_two_sinks_share_a_group_and_stream() {
    let moto = moto();
    let client = reader(&moto.url).await;
    let (a, b) = (sink(&moto.url, "shared", "warden"), sink(&moto.url, "shared", "warden"));
    let t0 = now_ms() - HOUR_MS;
    let first: Vec<Event> = (0..20).map(|i| event(i, t0 + i as i64, 40)).collect();
    let second: Vec<Event> = (20..40).map(|i| event(i, t0 + i as i64, 40)).collect();
    // Both find nothing and race to create the group and the stream.
    let (ra, rb) = tokio::join!(a.send(&first), b.send(&second));
    assert_eq!((ra, rb), (Ok(Delivered::all()), Ok(Delivered::all())));
    // Again, one after the other: the second finds them made by the first.
    let c = sink(&moto.url, "shared", "warden");
    let third = [event(40, t0 + 40, 40)];
    assert_eq!(c.send(&third).await, Ok(Delivered::all()));
    let got = stored(&client, "shared", "warden").await;
    assert_eq!(got.len(), 41);
    let mut ids: Vec<String> = got
        .iter()
        .map(|(_, m)| {
            serde_json::from_str::<Value>(m).unwrap()["event_id"]
                .as_str()
                .unwrap()
                .to_string()
        })
        .collect();
    ids.sort();
    ids.dedup();
    assert_eq!(ids.len(), 41, "each event once");
}

// ---------------------------------------------------------------- fake

/// An answer to give, instead of the normal one, to the next call of `op`.
struct Scripted {
    op: &'static str,
    status: u16,
    body: String,
    delay: Duration,
}

fn answer(op: &'static str, status: u16, body: Value) -> Scripted {
    Scripted {
        op,
        status,
        body: body.to_string(),
        delay: Duration::ZERO,
    }
}

fn error(op: &'static str, status: u16, code: &str) -> Scripted {
    answer(
        op,
        status,
        json!({"__type": code, "message": format!("scripted {code}")}),
    )
}

#[derive(Default)]
struct Fake {
    /// Every call: its operation, and its `logEvents` count for puts.
    calls: Mutex<Vec<(String, usize)>>,
    stored: Mutex<Vec<(i64, String)>>,
    /// Breaches of the contract; any fails the test.
    violations: Mutex<Vec<String>>,
    script: Mutex<VecDeque<Scripted>>,
}

fn reply(status: u16, body: String) -> Response {
    (
        StatusCode::from_u16(status).unwrap(),
        [("content-type", "application/x-amz-json-1.1")],
        body,
    )
        .into_response()
}

/// Checks a `PutLogEvents` request against the documented contract.
fn contract(req: &Value) -> Result<Vec<(i64, String)>, String> {
    if !req["logGroupName"].is_string() || !req["logStreamName"].is_string() {
        return Err("no logGroupName or logStreamName".into());
    }
    if !req["sequenceToken"].is_null() {
        return Err("a sequence token was sent".into());
    }
    let Some(events) = req["logEvents"].as_array() else {
        return Err("no logEvents".into());
    };
    if events.is_empty() || events.len() > 10_000 {
        return Err(format!("{} events in one request", events.len()));
    }
    let mut out = Vec::with_capacity(events.len());
    let mut bytes = 0;
    for e in events {
        let (Some(ts), Some(message)) = (e["timestamp"].as_i64(), e["message"].as_str()) else {
            return Err(format!("an event without timestamp or message: {e}"));
        };
        if message.is_empty() || message.len() + 26 > 1_048_576 {
            return Err(format!("a message of {} bytes", message.len()));
        }
        if out.last().is_some_and(|(last, _)| *last > ts) {
            return Err("events not in chronological order".into());
        }
        bytes += message.len() + 26;
        out.push((ts, message.to_string()));
    }
    if bytes > 1_048_576 {
        return Err(format!("{bytes} bytes in one request"));
    }
    let span = out.last().unwrap().0 - out[0].0;
    if span > DAY_MS {
        return Err(format!("a request spanning {span} ms"));
    }
    Ok(out)
}

async fn service(State(fake): State<Arc<Fake>>, headers: HeaderMap, body: Bytes) -> Response {
    let header = |name: &str| headers.get(name).and_then(|v| v.to_str().ok()).unwrap_or("");
    let violation = |v: String| {
        fake.violations.lock().unwrap().push(v.clone());
        reply(
            400,
            json!({"__type": "InvalidParameterException", "message": v}).to_string(),
        )
    };
    if header("content-type") != "application/x-amz-json-1.1" {
        return violation(format!("content-type {:?}", header("content-type")));
    }
    let Some(op) = header("x-amz-target").strip_prefix("Logs_20140328.") else {
        return violation(format!("x-amz-target {:?}", header("x-amz-target")));
    };
    let op = op.to_string();
    let auth = header("authorization");
    if !auth.starts_with("AWS4-HMAC-SHA256 Credential=") || header("x-amz-date").is_empty() {
        return violation(format!("not signed with SigV4: {auth:?}"));
    }
    if !auth.contains(&format!("Credential={KEY_ID}/")) {
        return reply(
            400,
            json!({"__type": "UnrecognizedClientException",
                   "message": "The security token included in the request is invalid."})
            .to_string(),
        );
    }
    if !auth.contains(&format!("/{REGION}/logs/aws4_request")) {
        return violation(format!("signed for another region or service: {auth:?}"));
    }
    let Ok(req) = serde_json::from_slice::<Value>(&body) else {
        return violation("a body that is not JSON".into());
    };
    let events = if op == "PutLogEvents" {
        match contract(&req) {
            Ok(events) => events,
            Err(v) => return violation(v),
        }
    } else {
        Vec::new()
    };
    fake.calls.lock().unwrap().push((op.clone(), events.len()));
    let scripted = {
        let mut script = fake.script.lock().unwrap();
        if script.front().is_some_and(|s| s.op == op) {
            script.pop_front()
        } else {
            None
        }
    };
    if let Some(s) = scripted {
        tokio::time::sleep(s.delay).await;
        return reply(s.status, s.body);
    }
    match op.as_str() {
        "PutLogEvents" => {
            fake.stored.lock().unwrap().extend(events);
            reply(
                200,
                json!({"nextSequenceToken": "49650000000000000000000000000000000000000000000000000001"}).to_string(),
            )
        }
        "CreateLogGroup" | "CreateLogStream" => reply(200, "{}".into()),
        _ => violation(format!("unexpected operation {op}")),
    }
}

async fn fake() -> (Arc<Fake>, String) {
    let state = Arc::new(Fake::default());
    let app = axum::Router::new()
        .route("/", axum::routing::post(service))
        .layer(axum::extract::DefaultBodyLimit::max(64 * 1024 * 1024))
        .with_state(state.clone());
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    (state, url)
}

fn no_violations(fake: &Fake) {
    let v = fake.violations.lock().unwrap();
    assert!(v.is_empty(), "{v:?}");
}

fn ops(fake: &Fake) -> Vec<String> {
    fake.calls.lock().unwrap().iter().map(|(op, _)| op.clone()).collect()
}

#[tokio::test]
async fn engine_batches_keep_the_put_log_events_contract() {
    let (fake, url) = fake().await;
    let cw = sink(&url, "g", "s");
    let limits = cw.limits();
    assert_eq!(
        (limits.max_events, limits.max_bytes, limits.per_event_overhead),
        (10_000, 1_048_576, 26)
    );
    assert_eq!((limits.max_event_bytes, limits.max_span_ms), (1_048_550, Some(DAY_MS)));

    let t0 = now_ms() - 5 * DAY_MS;
    let mut events = Vec::new();
    let mut i = 0u64;
    let mut push = |ts: i64, size: usize, events: &mut Vec<Event>| {
        events.push(event(i, ts, size));
        i += 1;
    };
    // Many small events, each run of ten in reverse order.
    for k in 0..25_000i64 {
        push(t0 + (k / 10) * 10 + (9 - k % 10), 60, &mut events);
    }
    // Large ones: two fit a request, three do not.
    for k in 0..7 {
        push(t0 + 3_000 + k, 400_000, &mut events);
    }
    // The largest message CloudWatch Logs takes, and one byte more.
    push(t0 + 4_000, MAX_EVENT_BYTES, &mut events);
    push(t0 + 4_001, MAX_EVENT_BYTES + 1, &mut events);
    // Spread over four days.
    for k in 0..9 {
        push(t0 + DAY_MS / 2 + k * 10 * HOUR_MS, 60, &mut events);
    }
    let (batches, oversized) = batching::batches(&events, &limits);
    assert_eq!(oversized.len(), 1);
    assert_eq!(oversized[0].0, 25_008, "the event over 1,048,550 bytes is set aside");
    assert_eq!(events[25_007].body.len(), MAX_EVENT_BYTES);
    let mut sent = 0;
    for b in &batches {
        assert_eq!(cw.send(&events[b.clone()]).await, Ok(Delivered::all()));
        sent += b.len();
    }
    no_violations(&fake);
    let calls = fake.calls.lock().unwrap().clone();
    assert_eq!(calls.len(), batches.len(), "one request per batch");
    assert!(
        calls.iter().all(|(op, n)| op == "PutLogEvents" && *n <= 10_000),
        "{calls:?}"
    );
    assert!(
        calls.iter().any(|(_, n)| *n == 1),
        "the 1,048,550-byte event went alone"
    );
    let stored = fake.stored.lock().unwrap();
    assert_eq!(stored.len(), sent);
    assert_eq!(sent, events.len() - 1);
    // Each request sorted, so the stored runs of ten are back in order.
    assert_eq!(stored[0], (t0, body_str(&events[9]).to_string()));
    assert_eq!(stored[9], (t0 + 9, body_str(&events[0]).to_string()));
}

#[tokio::test]
async fn answers_are_classified() {
    let (fake, url) = fake().await;
    let cw = sink(&url, "g", "s");
    let one = [event(1, now_ms(), 40)];
    fake.script.lock().unwrap().extend([
        error("PutLogEvents", 400, "ThrottlingException"),
        answer("PutLogEvents", 500, json!({"__type": "InternalFailure"})),
        Scripted {
            op: "PutLogEvents",
            status: 500,
            body: "internal error".into(),
            delay: Duration::ZERO,
        },
        error("PutLogEvents", 503, "ServiceUnavailableException"),
        error("PutLogEvents", 400, "InvalidParameterException"),
        error("PutLogEvents", 400, "AccessDeniedException"),
        error("PutLogEvents", 400, "ExpiredTokenException"),
        error("PutLogEvents", 400, "DataAlreadyAcceptedException"),
    ]);
    let retryable = |r: Result<Delivered, SendError>, what: &str| match r {
        Err(SendError::Retryable { reason, retry_after }) => {
            assert_eq!(retry_after, None, "{what}: the service sends no Retry-After");
            reason
        }
        other => panic!("{what}: {other:?}"),
    };
    let reason = retryable(cw.send(&one).await, "throttled");
    assert!(reason.contains("ThrottlingException"), "{reason}");
    retryable(cw.send(&one).await, "500 InternalFailure");
    retryable(cw.send(&one).await, "500 with no JSON");
    let reason = retryable(cw.send(&one).await, "503");
    assert!(reason.contains("ServiceUnavailableException"), "{reason}");
    match cw.send(&one).await {
        Err(SendError::Permanent { reason }) => {
            assert!(reason.contains("InvalidParameterException"), "{reason}")
        }
        other => panic!("InvalidParameterException: {other:?}"),
    }
    for what in ["AccessDeniedException", "ExpiredTokenException"] {
        let reason = retryable(cw.send(&one).await, what);
        assert!(
            reason.contains(what) && reason.contains("fix the sink's AWS credentials"),
            "{reason}"
        );
    }
    assert_eq!(
        cw.send(&one).await,
        Ok(Delivered::all()),
        "DataAlreadyAccepted is delivered"
    );
    assert_eq!(cw.send(&one).await, Ok(Delivered::all()));
    assert_eq!(fake.stored.lock().unwrap().len(), 1, "only the last was stored");

    // Keys the service does not know: the events wait for the operator.
    let stranger = CloudWatchSink::new(CloudWatchConfig {
        access_key_id: Some("AKIDSOMEONEELSE00000".into()),
        ..config(&url, "g", "s")
    });
    let reason = retryable(stranger.send(&one).await, "unknown key");
    assert!(
        reason.contains("UnrecognizedClientException") && reason.contains("credentials"),
        "{reason}"
    );
    // Half a key pair: no request at all.
    let half = CloudWatchSink::new(CloudWatchConfig {
        secret_access_key: None,
        ..config(&url, "g", "s")
    });
    let reason = retryable(half.send(&one).await, "half a key pair");
    assert!(reason.contains("secret_access_key"), "{reason}");
    assert_eq!(ops(&fake).len(), 9, "the unknown key was refused before it counted");
    no_violations(&fake);
}

#[tokio::test]
async fn no_answer_is_retryable() {
    let (fake, url) = fake().await;
    let one = [event(1, now_ms(), 40)];
    // Slower than the sink's timeout.
    let slow = CloudWatchSink::new(CloudWatchConfig {
        timeout: Duration::from_millis(500),
        ..config(&url, "g", "s")
    });
    fake.script.lock().unwrap().push_back(Scripted {
        delay: Duration::from_secs(3),
        ..answer("PutLogEvents", 200, json!({}))
    });
    let started = Instant::now();
    assert!(
        matches!(slow.send(&one).await, Err(SendError::Retryable { .. })),
        "timed out"
    );
    assert!(started.elapsed() < Duration::from_secs(3), "{:?}", started.elapsed());
    // Nobody listening.
    let closed = format!("http://127.0.0.1:{}", free_port());
    let refused = sink(&closed, "g", "s");
    match refused.send(&one).await {
        Err(SendError::Retryable { reason, .. }) => {
            assert!(reason.contains("PutLogEvents"), "{reason}")
        }
        other => panic!("connection refused: {other:?}"),
    }
}

#[tokio::test]
async fn rejected_events_map_back_through_the_sort() {
    let (fake, url) = fake().await;
    let cw = sink(&url, "g", "s");
    let t0 = now_ms() - HOUR_MS;
    // Positions 0..8; sorted by timestamp they are 6, 3, 0, 7, 1, 4, 2, 5.
    let offsets = [20, 40, 60, 10, 50, 70, 0, 30];
    let batch: Vec<Event> = offsets
        .iter()
        .enumerate()
        .map(|(i, off)| event(i as u64, t0 + off, 40))
        .collect();
    // Expired: the first of the request; too old: the first three (end
    // exclusive); too new: from the seventh (start inclusive).
    fake.script.lock().unwrap().push_back(answer(
        "PutLogEvents",
        200,
        json!({"rejectedLogEventsInfo": {
            "expiredLogEventEndIndex": 1,
            "tooOldLogEventEndIndex": 3,
            "tooNewLogEventStartIndex": 6,
        }}),
    ));
    let delivered = cw.send(&batch).await.unwrap();
    let positions: Vec<usize> = delivered.rejected.iter().map(|(p, _)| *p).collect();
    assert_eq!(positions, vec![0, 2, 3, 5, 6], "{delivered:?}");
    let reason = |p: usize| &delivered.rejected.iter().find(|(q, _)| *q == p).unwrap().1;
    assert!(reason(6).contains("too old"), "{}", reason(6));
    assert!(reason(3).contains("too old") && reason(0).contains("too old"));
    assert!(reason(2).contains("too new") && reason(5).contains("too new"));
    // Only expired.
    fake.script.lock().unwrap().push_back(answer(
        "PutLogEvents",
        200,
        json!({"rejectedLogEventsInfo": {"expiredLogEventEndIndex": 2}}),
    ));
    let delivered = cw.send(&batch).await.unwrap();
    let positions: Vec<usize> = delivered.rejected.iter().map(|(p, _)| *p).collect();
    assert_eq!(positions, vec![3, 6]);
    assert!(delivered.rejected.iter().all(|(_, r)| r.contains("expired")));
    no_violations(&fake);
}

#[tokio::test]
async fn a_missing_stream_is_created_and_already_exists_is_fine() {
    let (fake, url) = fake().await;
    let cw = sink(&url, "g", "s");
    let one = [event(1, now_ms(), 40)];
    // The stream is missing, and so is the group; meanwhile another
    // instance creates both.
    fake.script.lock().unwrap().extend([
        error("PutLogEvents", 400, "ResourceNotFoundException"),
        error("CreateLogStream", 400, "ResourceNotFoundException"),
        error("CreateLogGroup", 400, "ResourceAlreadyExistsException"),
        error("CreateLogStream", 400, "ResourceAlreadyExistsException"),
    ]);
    assert_eq!(cw.send(&one).await, Ok(Delivered::all()));
    assert_eq!(
        ops(&fake),
        [
            "PutLogEvents",
            "CreateLogStream",
            "CreateLogGroup",
            "CreateLogStream",
            "PutLogEvents"
        ]
    );
    assert_eq!(fake.stored.lock().unwrap().len(), 1);
    // Only the stream missing: the group is left alone.
    fake.calls.lock().unwrap().clear();
    fake.script
        .lock()
        .unwrap()
        .push_back(error("PutLogEvents", 400, "ResourceNotFoundException"));
    assert_eq!(cw.send(&one).await, Ok(Delivered::all()));
    assert_eq!(ops(&fake), ["PutLogEvents", "CreateLogStream", "PutLogEvents"]);
    // Still missing right after it was made: retried, not dead-lettered.
    fake.calls.lock().unwrap().clear();
    fake.script.lock().unwrap().extend([
        error("PutLogEvents", 400, "ResourceNotFoundException"),
        error("PutLogEvents", 400, "ResourceNotFoundException"),
    ]);
    match cw.send(&one).await {
        Err(SendError::Retryable { reason, .. }) => assert!(reason.contains("missing"), "{reason}"),
        other => panic!("{other:?}"),
    }
    assert_eq!(ops(&fake), ["PutLogEvents", "CreateLogStream", "PutLogEvents"]);
    // Not allowed to create the group: the operator has to act.
    fake.calls.lock().unwrap().clear();
    fake.script.lock().unwrap().extend([
        error("PutLogEvents", 400, "ResourceNotFoundException"),
        error("CreateLogStream", 400, "ResourceNotFoundException"),
        error("CreateLogGroup", 400, "AccessDeniedException"),
    ]);
    match cw.send(&one).await {
        Err(SendError::Retryable { reason, .. }) => {
            assert!(
                reason.contains("CreateLogGroup") && reason.contains("credentials"),
                "{reason}"
            )
        }
        other => panic!("{other:?}"),
    }
    no_violations(&fake);
}

#[tokio::test]
async fn what_cloudwatch_would_refuse_never_reaches_it() {
    let (fake, url) = fake().await;
    let cw = sink(&url, "g", "s");
    let t0 = now_ms();
    let permanent = |r: Result<Delivered, SendError>| matches!(r, Err(SendError::Permanent { .. }));
    let many: Vec<Event> = (0..10_001).map(|i| event(i, t0, 30)).collect();
    assert!(permanent(cw.send(&many).await), "10,001 events");
    let heavy: Vec<Event> = (0..3).map(|i| event(i, t0, 400_000)).collect();
    assert!(permanent(cw.send(&heavy).await), "1,200,078 bytes");
    let wide = [event(0, t0 - DAY_MS - 1, 30), event(1, t0, 30)];
    assert!(permanent(cw.send(&wide).await), "over 24 hours");
    assert!(fake.calls.lock().unwrap().is_empty());
    assert_eq!(cw.send(&[]).await, Ok(Delivered::all()));
    assert!(fake.calls.lock().unwrap().is_empty(), "an empty batch makes no request");

    // A body that is not UTF-8 cannot be a message: refused alone.
    let mut batch: Vec<Event> = (0..3).map(|i| event(i, t0 + i as i64, 30)).collect();
    batch[1].body = vec![b'{', 0xff, 0xfe, b'}'];
    let delivered = cw.send(&batch).await.unwrap();
    assert_eq!(delivered.rejected.len(), 1);
    assert_eq!(delivered.rejected[0].0, 1);
    assert!(delivered.rejected[0].1.contains("UTF-8"));
    assert_eq!(fake.stored.lock().unwrap().len(), 2);
    no_violations(&fake);
}
