//! The Datadog sink against a fake Logs intake that enforces the documented
//! wire contract of `POST /api/v2/logs`: the `DD-API-KEY` header, a gzip
//! body holding a JSON array, at most 1,000 entries and 5,000,000 bytes
//! (uncompressed) per request and 1,000,000 per entry, each entry with its
//! `message`; and that answers 408, 413, 429 or 5xx on demand.

use std::sync::Arc;
use std::time::Duration;

use serde_json::{Value, json};
use warden_sinks::batching;
use warden_sinks::datadog::{DatadogConfig, DatadogSink};
use warden_sinks::{Event, SendError, Sink};

#[path = "peers/mod.rs"]
mod peers;
use peers::datadog_intake::{self, Intake, KEY};

async fn intake() -> (Arc<Intake>, String) {
    let intake = Arc::new(Intake::default());
    let server = datadog_intake::serve(intake.clone(), 0).await;
    let url = server.url.clone();
    std::mem::forget(server);
    (intake, url)
}

fn sink(url: &str, key: &str) -> DatadogSink {
    DatadogSink::new(DatadogConfig {
        url: url.into(),
        api_key: key.into(),
        service: "warden".into(),
        hostname: "warden-1".into(),
        ddsource: "warden".into(),
        ddtags: vec!["env:test".into(), "team:compliance".into()],
        timeout: Duration::from_secs(10),
    })
}

fn event(i: u64, body: Value) -> Event {
    Event {
        tenant_id: "ten_1".into(),
        index: i,
        event_id: format!("evt_{i}"),
        workflow_id: Some("wf-1".into()),
        timestamp_ms: 0,
        body: serde_json::to_vec(&body).unwrap(),
    }
}

#[tokio::test]
async fn batches_stay_within_the_intake_limits_and_arrive_in_order() {
    let (intake, url) = intake().await;
    let dd = sink(&url, KEY);
    let events: Vec<Event> = (0..2_500)
        .map(|i| {
            event(
                i,
                json!({"event_id": format!("evt_{i}"), "action": "document_read", "result": "success"}),
            )
        })
        .collect();
    let (batches, oversized) = batching::batches(&events, &dd.limits());
    assert!(oversized.is_empty());
    assert_eq!(batches.len(), 3, "1,000 entries per request at most");
    for b in batches {
        dd.send(&events[b]).await.unwrap();
    }
    let got = intake.entries.lock().unwrap().clone();
    assert_eq!(got.len(), 2_500);
    let first: Value = serde_json::from_str(got[0]["message"].as_str().unwrap()).unwrap();
    assert_eq!(first["event_id"], "evt_0");
    let last: Value = serde_json::from_str(got[2_499]["message"].as_str().unwrap()).unwrap();
    assert_eq!(last["event_id"], "evt_2499");
    assert_eq!(got[0]["ddtags"], "env:test,team:compliance");
    assert_eq!(
        (got[0]["service"].as_str(), got[0]["hostname"].as_str()),
        (Some("warden"), Some("warden-1"))
    );

    // Large events: a few per request, within 5,000,000 bytes.
    let big: Vec<Event> = (0..12)
        .map(|i| event(i, json!({"blob": "x".repeat(900_000)})))
        .collect();
    let (batches, oversized) = batching::batches(&big, &dd.limits());
    assert!(oversized.is_empty() && batches.len() >= 3, "{batches:?}");
    for b in batches {
        dd.send(&big[b]).await.unwrap();
    }
    assert!(
        intake.violations.lock().unwrap().is_empty(),
        "{:?}",
        intake.violations.lock().unwrap()
    );
}

#[tokio::test]
async fn an_entry_datadog_would_truncate_is_never_sent() {
    let (intake, url) = intake().await;
    let dd = sink(&url, KEY);
    // Over the per-entry limit outright: the engine sets it aside.
    let huge = [event(1, json!({"blob": "x".repeat(1_100_000)}))];
    let (batches, oversized) = batching::batches(&huge, &dd.limits());
    assert!(batches.is_empty() && oversized.len() == 1, "{oversized:?}");
    // Under it as an event, over it once escaped into `message`.
    let quoted = [event(2, json!({"blob": "\"".repeat(450_000)}))];
    let (batches, _) = batching::batches(&quoted, &dd.limits());
    assert_eq!(batches.len(), 1);
    let err = dd.send(&quoted).await.unwrap_err();
    assert!(
        matches!(&err, SendError::Permanent { reason } if reason.contains("truncated")),
        "{err:?}"
    );
    assert_eq!(
        *intake.requests.lock().unwrap(),
        0,
        "nothing over the limit reached the intake"
    );
}

#[tokio::test]
async fn answers_are_classified() {
    let (intake, url) = intake().await;
    let dd = sink(&url, KEY);
    let one = [event(1, json!({"event_id": "evt_1"}))];
    intake.script.lock().unwrap().extend([429, 500, 503, 408, 413, 400]);
    assert_eq!(
        dd.send(&one).await,
        Err(SendError::Retryable {
            reason: "the peer answered 429".into(),
            retry_after: Some(Duration::from_secs(2))
        })
    );
    for _ in 0..3 {
        assert!(matches!(dd.send(&one).await, Err(SendError::Retryable { .. })));
    }
    assert!(matches!(dd.send(&one).await, Err(SendError::Permanent { .. })), "413");
    assert!(matches!(dd.send(&one).await, Err(SendError::Permanent { .. })), "400");
    dd.send(&one).await.expect("then accepted");
    // A wrong key waits (the operator fixes it) rather than dead-lettering.
    let wrong = sink(&url, "not-the-key");
    assert!(matches!(wrong.send(&one).await, Err(SendError::Retryable { reason, .. }) if reason.contains("api_key")));
    assert_eq!(intake.entries.lock().unwrap().len(), 1);
}

/// Datadog answers 202 for a log dated more than 18 hours ago and keeps
/// nothing of it. Such an event is refused here (dead-lettered by the
/// engine, never counted delivered); the fresh ones of the same batch, and
/// one whose time is unknown, are sent.
#[tokio::test]
async fn events_older_than_datadogs_window_are_refused_not_sent() {
    let (intake, url) = intake().await;
    let dd = sink(&url, KEY);
    let now = chrono::Utc::now();
    let at = |hours_ago: i64| {
        let t = now - chrono::Duration::hours(hours_ago);
        let mut e = event(
            hours_ago as u64,
            json!({"event_id": format!("evt_{hours_ago}h"), "timestamp": t.to_rfc3339(), "action": "document_read"}),
        );
        e.timestamp_ms = t.timestamp_millis();
        e
    };
    let batch = vec![
        at(19),
        at(1),
        event(99, json!({"event_id": "evt_unknown_time"})),
        at(40),
    ];
    let delivered = dd.send(&batch).await.unwrap();
    let refused: Vec<usize> = delivered.rejected.iter().map(|r| r.0).collect();
    assert_eq!(refused, vec![0, 3], "{delivered:?}");
    assert!(delivered.rejected[0].1.contains("18 hours"), "{delivered:?}");
    assert_eq!(delivered.retry, None);
    let ids: Vec<Value> = intake.events().iter().map(|e| e["event_id"].clone()).collect();
    assert_eq!(ids, vec![json!("evt_1h"), json!("evt_unknown_time")]);
    assert_eq!(
        intake.dropped.load(std::sync::atomic::Ordering::Relaxed),
        0,
        "nothing was sent that Datadog would drop"
    );
    assert!(intake.violations.lock().unwrap().is_empty());

    // Everything too old: no request at all.
    let before = *intake.requests.lock().unwrap();
    let delivered = dd.send(&[at(20)]).await.unwrap();
    assert_eq!(delivered.rejected.len(), 1);
    assert_eq!(*intake.requests.lock().unwrap(), before);
}
