//! The Splunk HEC sink against a fake collector that enforces HEC's wire
//! contract: `Authorization: Splunk <token>`, a body of concatenated JSON
//! event objects each with `event`, `time`, `source`, `sourcetype`; with
//! indexer acknowledgement, a channel on every request (else HEC's code 10),
//! an `ackId` per request and `/services/collector/ack` answering whether it
//! is indexed yet. It can answer 503, 400 or refuse the token on demand.

use std::sync::Arc;
use std::time::Duration;

use serde_json::json;
use warden_sinks::splunk::{SplunkConfig, SplunkSink};
use warden_sinks::{Event, SendError, Sink};

#[path = "peers/mod.rs"]
mod peers;
use peers::splunk_collector::{self, Collector, TOKEN};

async fn collector(ack_enabled: bool, polls_before_indexed: usize) -> (Arc<Collector>, String) {
    let c = Arc::new(Collector::new(ack_enabled, polls_before_indexed));
    let server = splunk_collector::serve(c.clone(), 0).await;
    let url = server.url.clone();
    std::mem::forget(server);
    (c, url)
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
    padded(n, 0)
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

/// A tenant's sink (under an egress policy) says what Splunk answered by
/// status only, never with Splunk's words; and it reaches the collector on
/// loopback only because the policy allows it.
#[tokio::test]
async fn a_tenant_sink_reports_a_status_not_the_peers_words() {
    use warden_sinks::egress::Egress;
    let (c, url) = collector(false, 0).await;
    let hec = sink(&url, TOKEN, false).with_egress(Arc::new(Egress::default()));
    let refused = hec.send(&events(1)).await;
    assert_eq!(
        refused,
        Err(SendError::Retryable {
            reason: "egress refused: 127.0.0.1 is loopback".into(),
            retry_after: None
        })
    );
    assert!(c.received.lock().unwrap().is_empty(), "nothing reached the collector");

    let allowed = Arc::new(Egress::new(&["127.0.0.0/8".into()], &[]).unwrap());
    let hec = sink(&url, TOKEN, false).with_egress(allowed.clone());
    c.script.lock().unwrap().extend([400]);
    match hec.send(&events(1)).await {
        Err(SendError::Permanent { reason }) => {
            assert_eq!(reason, "the peer refused the event with 400", "not Splunk's text")
        }
        other => panic!("{other:?}"),
    }
    let wrong = sink(&url, "not-the-token", false).with_egress(allowed);
    match wrong.send(&events(1)).await {
        Err(SendError::Retryable { reason, .. }) => assert!(!reason.contains("Invalid"), "{reason}"),
        other => panic!("{other:?}"),
    }
    assert_eq!(hec.send(&events(1)).await, Ok(Default::default()));
}

fn padded(n: u64, pad: usize) -> Vec<Event> {
    (0..n)
        .map(|i| Event {
            tenant_id: "ten_1".into(),
            index: i,
            event_id: format!("evt_{i}"),
            workflow_id: None,
            timestamp_ms: 1_713_173_021_842 + i as i64,
            body: serde_json::to_vec(&json!({"event_id": format!("evt_{i}"), "action": "document_read",
                "note": "x".repeat(pad)}))
            .unwrap(),
        })
        .collect()
}

/// HEC refuses a body over its `max_content_length` (413): batches cut to
/// the sink's `max_bytes` stay under it, and a sink told a larger limit
/// than the deployment's meets the 413.
#[tokio::test]
async fn batches_stay_within_max_content_length() {
    let c = Arc::new(Collector {
        max_content_length: 300_000,
        ..Collector::new(false, 0)
    });
    let server = splunk_collector::serve(c.clone(), 0).await;
    let config = |max_bytes| SplunkConfig {
        url: server.url.clone(),
        token: TOKEN.into(),
        sourcetype: "warden:audit".into(),
        source: "warden".into(),
        index: "audit".into(),
        host: "warden-1".into(),
        ack: false,
        ack_timeout: Duration::from_millis(800),
        timeout: Duration::from_secs(5),
        max_bytes,
    };
    let hec = SplunkSink::new(config(300_000));
    let all = padded(800, 1_200);
    let (batches, oversized) = warden_sinks::batching::batches(&all, &hec.limits());
    assert!(oversized.is_empty());
    assert!(batches.len() > 1, "about 1 MB of events in one batch");
    for range in batches {
        hec.send(&all[range]).await.unwrap();
    }
    assert_eq!(c.events().len(), 800, "each event once");
    assert!(
        c.violations.lock().unwrap().is_empty(),
        "{:?}",
        c.violations.lock().unwrap()
    );

    let overstated = SplunkSink::new(config(2_000_000));
    let err = overstated.send(&padded(400, 1_200)).await.unwrap_err();
    assert!(matches!(err, SendError::Permanent { .. }), "{err:?}");
    assert!(
        c.violations.lock().unwrap()[0].contains("max_content_length"),
        "{:?}",
        c.violations.lock().unwrap()
    );
    server.stop().await;
}

/// An indexer that restarts forgets the ackIds it had not indexed: the
/// sink, polling one that now never reads indexed, gives up after
/// `ack_timeout` and the batch is sent again (never taken as delivered).
#[tokio::test]
async fn acks_lost_with_a_restarting_indexer_are_sent_again() {
    // Indexed at the fifth poll, had the indexer not restarted.
    let c = Arc::new(Collector::new(true, 4));
    let server = splunk_collector::serve(c.clone(), 0).await;
    let port = server.port;
    let hec = sink(&server.url, TOKEN, true);
    let batch = events(3);
    let sending = tokio::spawn({
        let batch = batch.clone();
        async move { hec.send(&batch).await }
    });
    // The request is taken and waits to be indexed; the indexer restarts.
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    while c.pending.lock().unwrap().is_empty() {
        assert!(std::time::Instant::now() < deadline, "the batch never arrived");
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    server.stop().await;
    let server = splunk_collector::serve(c.clone(), port).await;
    let err = sending.await.unwrap().unwrap_err();
    assert!(matches!(err, SendError::Retryable { .. }), "{err:?}");
    assert!(c.events().is_empty(), "nothing was indexed");
    assert!(c.pending.lock().unwrap().is_empty(), "the restart forgot the ackId");
    server.stop().await;
}

/// HEC stops at a bad event in a batch: it indexes the events before it and
/// answers 400 with the bad one's `invalid-event-number`. The sink counts
/// those before as delivered (without acknowledgement; with it they are
/// sent again, HEC having given no ackId), dead-letters the bad one with
/// HEC's reason, and sends those after it again.
#[tokio::test]
async fn a_bad_event_stops_hec_and_only_it_is_refused() {
    use warden_sinks::{Delivered, Retry};
    let batch = events(6);
    for ack in [false, true] {
        let (c, url) = collector(ack, 0).await;
        *c.refuse.lock().unwrap() = Some("evt_2".into());
        let hec = sink(&url, TOKEN, ack);
        let got = hec
            .send(&batch)
            .await
            .expect("a batch partly indexed is an answer, not an error");
        let again = if ack { vec![0, 1, 3, 4, 5] } else { vec![3, 4, 5] };
        assert_eq!(
            got,
            Delivered {
                rejected: vec![(2, "the peer refused the event with 400: Invalid data format".into())],
                retry: Some(Retry {
                    positions: again,
                    reason: "HEC stopped at event 2 of the batch".into(),
                    retry_after: None,
                }),
            },
            "ack {ack}"
        );
        let indexed: Vec<_> = c.events().iter().map(|e| e["event_id"].clone()).collect();
        assert_eq!(
            indexed,
            [json!("evt_0"), json!("evt_1")],
            "HEC indexed what came before"
        );
        assert!(
            c.violations.lock().unwrap().is_empty(),
            "{:?}",
            c.violations.lock().unwrap()
        );
    }
}
