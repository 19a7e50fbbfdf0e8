//! The audit fan-out end to end: a Warden with a webhook sink delivers
//! decisions and submitted events, in ledger order, to a receiver that
//! checks every delivery with the official Standard Webhooks verifier;
//! a poison event is dead-lettered without holding back the rest; an outage
//! loses nothing; redrive delivers the dead letter once the peer takes it.

use std::time::{Duration, Instant};

use base64::Engine as _;
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};
use warden::clock::Clock;
use warden::config::{SinkConfig, SinkFilter};

use crate::common::*;
use crate::on_both_backends;
use crate::peers::free_port;
use crate::peers::webhook::receiver;

on_both_backends!(a_webhook_sink_delivers_everything_through_poison_and_outage);
on_both_backends!(tenants_manage_their_own_sinks_through_the_api);
on_both_backends!(two_instances_on_one_store_deliver_each_event_once);
on_both_backends!(a_sink_cursor_moves_only_for_the_lease_holder);
on_both_backends!(events_older_than_datadogs_window_are_dead_lettered_not_lost);
on_both_backends!(a_peer_answering_410_disables_the_sink_until_a_restart_and_nothing_is_lost);

async fn accepted(url: &str) -> Vec<Value> {
    let bytes = reqwest::get(url).await.unwrap().bytes().await.unwrap();
    serde_json::from_slice(&bytes).unwrap()
}

/// Waits until the receiver holds `n` deliveries.
async fn until_accepted(url: &str, n: usize) -> Vec<Value> {
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let got = accepted(url).await;
        if got.len() >= n || Instant::now() > deadline {
            return got;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

fn event(n: u32, respond: u16) -> Value {
    json!({"timestamp": "2026-04-15T09:23:41.842Z", "workflow_id": "wf-7", "activity_id": format!("step-{n}"),
        "action": "document_read", "result": "success", "user_context": {"initiated_by": "user_j_morrison"},
        "attributes": {"respond": respond}})
}

/// The event ids an audit submission was answered with, in order.
fn event_ids(r: &Reply) -> Vec<String> {
    r.body["events"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["event_id"].as_str().unwrap().to_string())
        .collect()
}

async fn sinks(app: &TestApp, auditor: &str) -> Value {
    let r = app.call(Method::GET, "/v1/sinks", Some(auditor), None).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    r.body[0].clone()
}

async fn a_webhook_sink_delivers_everything_through_poison_and_outage(backend: Backend) {
    let secret = format!("whsec_{}", base64::engine::general_purpose::STANDARD.encode([7u8; 32]));
    let port = free_port();
    let peer = receiver(&secret, port);
    let sink = SinkConfig::Webhook {
        name: "siem".into(),
        url: peer.url.clone(),
        secrets: vec![secret.clone()],
        concurrency: 4,
        filter: SinkFilter::default(),
        mask: vec!["/user_context/initiated_by".into()],
        timeout_ms: 2_000,
    };
    let app = spawn_with(backend, |c| c.sinks = vec![sink], Clock::system()).await;
    install_commissioning(&app, &app.admin, "2026.11.1").await;
    let orchestrator = app.token(&app.admin, &["orchestrator"]).await;
    let auditor = app.token(&app.admin, &["auditor"]).await;

    let d = app
        .decide(
            &orchestrator,
            json!({"path": "agento/commissioning/routing", "input": ready_input(),
            "context": {"workflow_id": "wf-7"}}),
        )
        .await;
    assert_eq!(d.status, StatusCode::OK);
    // The middle event is poison: the peer refuses it with 400, for good.
    let r = app
        .call(
            Method::POST,
            "/v1/audit/events",
            Some(&orchestrator),
            Some(json!([event(1, 200), event(2, 400), event(3, 200)])),
        )
        .await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.body);
    let ids = event_ids(&r);

    let got = until_accepted(&peer.url, 3).await;
    let got_ids: Vec<&str> = got.iter().map(|d| d["webhook_id"].as_str().unwrap()).collect();
    let decision_event = format!(
        "evt_{}",
        d.body["decision_id"].as_str().unwrap().trim_start_matches("dec_")
    );
    assert_eq!(
        got_ids,
        [decision_event.as_str(), &ids[0], &ids[2]],
        "in ledger order, the poison event left out"
    );
    assert_eq!(got[0]["event"]["action"], "policy.decision");
    assert_eq!(
        got[1]["event"]["user_context"]["initiated_by"], "***",
        "masked before it left"
    );
    assert_eq!(got[1]["event"]["caller"]["token_name"], "orchestrator");

    let deadline = Instant::now() + Duration::from_secs(10);
    let status = loop {
        let s = sinks(&app, &auditor).await;
        if s["lag"] == 0 || Instant::now() > deadline {
            break s;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    assert_eq!(status["lag"], 0, "{status}");
    assert_eq!(status["dead_letters"], 1, "{status}");
    assert_eq!(status["enabled"], true);
    assert!(status["last_error"].as_str().unwrap().contains("400"), "{status}");
    let metrics = app.call(Method::GET, "/metrics", Some(&auditor), None).await;
    let text = String::from_utf8(metrics.bytes).unwrap();
    for line in [
        "warden_sink_delivered_events_total{sink=\"siem\"} 3",
        "warden_sink_dead_lettered_events_total{sink=\"siem\"} 1",
        "warden_sink_lag_entries{sink=\"siem\"} 0",
    ] {
        assert!(text.contains(line), "{line} in\n{text}");
    }

    // Outage: the peer goes away; events wait in the ledger, lag shows it.
    drop(peer);
    let r = app
        .call(
            Method::POST,
            "/v1/audit/events",
            Some(&orchestrator),
            Some(json!([event(4, 200), event(5, 200)])),
        )
        .await;
    assert_eq!(
        r.status,
        StatusCode::CREATED,
        "events are recorded while the sink is down"
    );
    let later: Vec<String> = r.body["events"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["event_id"].as_str().unwrap().to_string())
        .collect();
    let deadline = Instant::now() + Duration::from_secs(20);
    let status = loop {
        let s = sinks(&app, &auditor).await;
        if s["lag"].as_u64().unwrap() >= 2 || Instant::now() > deadline {
            break s;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    assert!(status["lag"].as_u64().unwrap() >= 2, "{status}");

    // The peer comes back: everything arrives.
    let peer = receiver(&secret, port);
    let got = until_accepted(&peer.url, 2).await;
    let got_ids: Vec<&str> = got.iter().map(|d| d["webhook_id"].as_str().unwrap()).collect();
    assert_eq!(got_ids, [later[0].as_str(), later[1].as_str()]);

    // Redrive: refused again while the peer still refuses it, delivered once it accepts.
    let admin = &app.admin;
    let r = app
        .call(Method::POST, "/v1/sinks/siem/redrive", Some(admin), None)
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    assert_eq!(
        (r.body["delivered"].as_u64(), r.body["failed"].as_u64()),
        (Some(0), Some(1))
    );
    reqwest::Client::new()
        .post(format!("{}control", peer.url))
        .body(r#"{"accept_all": true}"#)
        .send()
        .await
        .unwrap();
    let r = app
        .call(Method::POST, "/v1/sinks/siem/redrive", Some(admin), None)
        .await;
    assert_eq!(
        (r.body["delivered"].as_u64(), r.body["failed"].as_u64()),
        (Some(1), Some(0))
    );
    let got = accepted(&peer.url).await;
    assert_eq!(
        got.last().unwrap()["webhook_id"],
        ids[1].as_str(),
        "the poison event, delivered at last"
    );
    assert_eq!(sinks(&app, &auditor).await["dead_letters"], 0);
    let r = app
        .call(Method::POST, "/v1/sinks/nope/redrive", Some(admin), None)
        .await;
    assert_eq!((r.status, r.code()), (StatusCode::NOT_FOUND, "unknown_sink"));
    let r = app
        .call(Method::POST, "/v1/sinks/siem/redrive", Some(&auditor), None)
        .await;
    assert_eq!(r.status, StatusCode::FORBIDDEN);
    app.stop().await;
}

async fn submit(app: &TestApp, token: &str, events: Value) -> Vec<String> {
    let r = app
        .call(Method::POST, "/v1/audit/events", Some(token), Some(events))
        .await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.body);
    r.body["events"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["event_id"].as_str().unwrap().to_string())
        .collect()
}

async fn tenants_manage_their_own_sinks_through_the_api(backend: Backend) {
    let secret = format!("whsec_{}", base64::engine::general_purpose::STANDARD.encode([9u8; 32]));
    let peer = receiver(&secret, free_port());
    let config_sink = SinkConfig::Webhook {
        name: "platform-siem".into(),
        url: "http://127.0.0.1:9/".into(),
        secrets: vec![secret.clone()],
        concurrency: 4,
        filter: SinkFilter::default(),
        mask: vec![],
        timeout_ms: 500,
    };
    // The peers are on loopback, which tenants' sinks reach only where the
    // operator allows it.
    let app = spawn_with(
        backend,
        |c| {
            c.sinks = vec![config_sink];
            c.tenant_sinks.allow_networks = vec!["127.0.0.0/8".into()];
        },
        Clock::system(),
    )
    .await;
    let acme = app.tenant("acme").await;
    let other = app.tenant("other").await;
    let acme_writer = app.token(&acme, &["orchestrator"]).await;
    let other_writer = app.token(&other, &["orchestrator"]).await;
    let before = submit(&app, &acme_writer, json!([event(1, 200)])).await;

    // Refused, with what to fix, and nothing created.
    for (name, body, code, needle) in [
        (
            "bad name!",
            json!({"type": "webhook", "url": peer.url, "secrets": [secret]}),
            "invalid_sink",
            "letters",
        ),
        (
            "mine",
            json!({"type": "carrier_pigeon"}),
            "invalid_sink",
            "carrier_pigeon",
        ),
        (
            "mine",
            json!({"type": "webhook", "secrets": [secret]}),
            "invalid_sink",
            "url",
        ),
        (
            "mine",
            json!({"type": "webhook", "url": peer.url, "secrets": ["not-a-secret"]}),
            "invalid_sink",
            "whsec_",
        ),
        (
            "mine",
            json!({"type": "webhook", "url": peer.url, "secrets": [secret], "name": "x"}),
            "invalid_sink",
            "path",
        ),
        (
            "mine",
            json!({"type": "webhook", "url": peer.url, "secrets": [secret], "from": "yesterday"}),
            "invalid_sink",
            "now",
        ),
        (
            "mine",
            json!({"type": "webhook", "url": peer.url, "secrets": [secret], "mask": ["user_context"]}),
            "invalid_sink",
            "JSON Pointer",
        ),
        (
            "platform-siem",
            json!({"type": "webhook", "url": peer.url, "secrets": [secret]}),
            "sink_managed_by_config",
            "configuration file",
        ),
        (
            "mine",
            json!({"type": "kafka", "brokers": "127.0.0.1:9", "topic": "audit", "properties": {"acks": "1"}}),
            "invalid_sink",
            "acks",
        ),
        (
            "mine",
            json!({"type": "cloudwatch_logs", "region": "eu-west-1", "log_group": "g", "log_stream": "s",
                "access_key_id": "AKID"}),
            "invalid_sink",
            "secret_access_key",
        ),
    ] {
        let r = app
            .call(
                Method::PUT,
                &format!("/v1/sinks/{}", name.replace(' ', "%20")),
                Some(&acme),
                Some(body),
            )
            .await;
        assert!(r.status.is_client_error(), "{name}: {}", r.body);
        assert_eq!(r.code(), code, "{}", r.body);
        assert!(
            r.body["detail"].as_str().unwrap().contains(needle),
            "{needle} in {}",
            r.body
        );
    }
    let r = app
        .call(
            Method::PUT,
            "/v1/sinks/mine",
            Some(&acme_writer),
            Some(json!({"type": "webhook", "url": peer.url, "secrets": [secret]})),
        )
        .await;
    assert_eq!(r.status, StatusCode::FORBIDDEN, "only admins manage sinks");

    // Created: the secret is never shown back.
    let r = app
        .call(
            Method::PUT,
            "/v1/sinks/mine",
            Some(&acme),
            Some(json!({"type": "webhook", "url": peer.url, "secrets": [secret], "filter": {"sources": ["events"]}})),
        )
        .await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.body);
    assert_eq!(
        (r.body["type"].as_str(), r.body["version"].as_i64()),
        (Some("webhook"), Some(1))
    );
    assert_eq!(r.body["config"]["secrets"], "***");
    assert!(!r.body.to_string().contains(&secret));

    // It delivers this tenant's events, from the start of its log, and no
    // other tenant's.
    let acme_later = submit(&app, &acme_writer, json!([event(2, 200)])).await;
    submit(&app, &other_writer, json!([event(3, 200)])).await;
    let got = until_accepted(&peer.url, 2).await;
    let ids: Vec<&str> = got.iter().map(|d| d["webhook_id"].as_str().unwrap()).collect();
    assert_eq!(ids, [before[0].as_str(), acme_later[0].as_str()]);
    let views = app.call(Method::GET, "/v1/sinks", Some(&acme), None).await.body;
    let mine = views
        .as_array()
        .unwrap()
        .iter()
        .find(|v| v["name"] == "mine")
        .unwrap()
        .clone();
    assert_eq!(
        (mine["scope"].as_str(), mine["config"]["secrets"].as_str()),
        (Some("tenant"), Some("***"))
    );
    let theirs = app.call(Method::GET, "/v1/sinks", Some(&other), None).await.body;
    assert!(
        theirs.as_array().unwrap().iter().all(|v| v["name"] != "mine"),
        "{theirs}"
    );
    assert!(
        theirs
            .as_array()
            .unwrap()
            .iter()
            .any(|v| v["name"] == "platform-siem" && v["scope"] == "config")
    );

    // Replaced: version 2, and it goes on from its cursor (nothing twice).
    let r = app
        .call(
            Method::PUT,
            "/v1/sinks/mine",
            Some(&acme),
            Some(json!({"type": "webhook", "url": peer.url, "secrets": [secret], "mask": ["/user_context/initiated_by"]})),
        )
        .await;
    assert_eq!(
        (r.status, r.body["version"].as_i64()),
        (StatusCode::OK, Some(2)),
        "{}",
        r.body
    );
    let third = submit(&app, &acme_writer, json!([event(4, 200)])).await;
    let got = until_accepted(&peer.url, 3).await;
    assert_eq!(got.len(), 3, "{got:?}");
    assert_eq!(got[2]["webhook_id"], third[0].as_str());
    assert_eq!(
        got[2]["event"]["user_context"]["initiated_by"], "***",
        "the new mask applies"
    );

    // A second sink from now on sees only what comes next.
    let peer2 = receiver(&secret, free_port());
    let r = app
        .call(
            Method::PUT,
            "/v1/sinks/fresh",
            Some(&acme),
            Some(json!({"type": "webhook", "url": peer2.url, "secrets": [secret], "from": "now"})),
        )
        .await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.body);
    let fourth = submit(&app, &acme_writer, json!([event(5, 200)])).await;
    until_accepted(&peer.url, 4).await;
    let got2 = until_accepted(&peer2.url, 1).await;
    let ids2: Vec<&str> = got2.iter().map(|d| d["webhook_id"].as_str().unwrap()).collect();
    assert_eq!(ids2, [fourth[0].as_str()]);

    // Deleted: it stops; deleting again is a clear 404.
    let r = app.call(Method::DELETE, "/v1/sinks/mine", Some(&acme), None).await;
    assert_eq!(r.status, StatusCode::NO_CONTENT, "{}", r.body);
    let r = app.call(Method::DELETE, "/v1/sinks/mine", Some(&acme), None).await;
    assert_eq!((r.status, r.code()), (StatusCode::NOT_FOUND, "unknown_sink"));
    let r = app
        .call(Method::DELETE, "/v1/sinks/platform-siem", Some(&acme), None)
        .await;
    assert_eq!((r.status, r.code()), (StatusCode::CONFLICT, "sink_managed_by_config"));
    submit(&app, &acme_writer, json!([event(6, 200)])).await;
    until_accepted(&peer2.url, 2).await;
    assert_eq!(
        accepted(&peer.url).await.len(),
        4,
        "the deleted sink delivered nothing more"
    );

    // Each act is in the tenant's ledger, its secret masked.
    let export = app.call(Method::GET, "/v1/ledger/export", Some(&acme), None).await;
    let text = String::from_utf8(export.bytes).unwrap();
    assert_eq!(text.matches("\"sink.put\"").count(), 3, "{text}");
    assert_eq!(text.matches("\"sink.delete\"").count(), 1);
    assert!(!text.contains(&secret[6..]), "no secret in the ledger");
    app.stop().await;
}

/// Two instances on one database (here: a second fan-out on the same
/// store) both run the sink; its lease lets one deliver, so each event
/// arrives once, and when that one stops the other goes on.
async fn two_instances_on_one_store_deliver_each_event_once(backend: Backend) {
    let secret = format!("whsec_{}", base64::engine::general_purpose::STANDARD.encode([3u8; 32]));
    let peer = receiver(&secret, free_port());
    let sink = SinkConfig::Webhook {
        name: "siem".into(),
        url: peer.url.clone(),
        secrets: vec![secret.clone()],
        concurrency: 4,
        filter: SinkFilter::default(),
        mask: vec![],
        timeout_ms: 2_000,
    };
    let app = spawn_with(backend, |c| c.sinks = vec![sink.clone()], Clock::system()).await;
    let (stop_tx, stop_rx) = tokio::sync::watch::channel(false);
    let other = warden::fanout::Fanout::new(&[sink]).unwrap().spawn(
        "another-instance".into(),
        app.state.store.clone(),
        app.state.ledger.committed(),
        Clock::system(),
        std::sync::Arc::new(warden::metrics::Metrics::new()),
        stop_rx,
    );
    let writer = app.token(&app.admin, &["orchestrator"]).await;
    let mut ids = Vec::new();
    for round in 0..5 {
        let batch: Vec<Value> = (0..10).map(|i| event(round * 10 + i, 200)).collect();
        ids.extend(submit(&app, &writer, json!(batch)).await);
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    until_accepted(&peer.url, ids.len()).await;
    // No fixed wait for duplicates that might still come: a marker event,
    // of the same workflow (delivered in ledger order, after every event
    // above), arrives only once what was sent before it has arrived.
    let marker = submit(&app, &writer, json!([event(80, 200)])).await;
    let deadline = Instant::now() + Duration::from_secs(20);
    let got_ids: Vec<String> = loop {
        let got: Vec<String> = accepted(&peer.url)
            .await
            .iter()
            .map(|d| d["webhook_id"].as_str().unwrap().to_string())
            .collect();
        if got.contains(&marker[0]) {
            break got.into_iter().filter(|id| *id != marker[0]).collect();
        }
        assert!(Instant::now() < deadline, "the marker never arrived");
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    assert_eq!(got_ids.len(), ids.len(), "each event once, not once per instance");
    let unique: std::collections::BTreeSet<&String> = got_ids.iter().collect();
    assert_eq!(unique, ids.iter().collect(), "every event");
    let ids: Vec<String> = ids.into_iter().chain(marker).collect();

    // The second instance stops (giving its lease up if it held it): the
    // first delivers what comes next.
    stop_tx.send(true).unwrap();
    other.await.unwrap();
    let later = submit(&app, &writer, json!([event(90, 200), event(91, 200)])).await;
    let got = until_accepted(&peer.url, ids.len() + 2).await;
    let last: Vec<&str> = got[ids.len()..]
        .iter()
        .map(|d| d["webhook_id"].as_str().unwrap())
        .collect();
    assert_eq!(last, [later[0].as_str(), later[1].as_str()]);
    app.stop().await;
}

/// The cursor is fenced by the lease: an instance whose lease another took
/// over (after it expired, while the first was stalled sending) can no
/// longer move the cursor; the new holder can. An index behind the cursor
/// never moves it back.
async fn a_sink_cursor_moves_only_for_the_lease_holder(backend: Backend) {
    let app = spawn_app(backend).await;
    let store = &app.state.store;
    let (sink, log) = ("fenced", "ten_fenced");
    assert!(store.lease_sink(sink, "first", 0, 15_000).await.unwrap());
    assert!(store.set_sink_cursor(sink, log, 5, 1, "first").await.unwrap());
    assert!(
        !store.set_sink_cursor(sink, log, 6, 2, "second").await.unwrap(),
        "an instance without the lease"
    );
    // While the first holder's lease runs, nobody takes it.
    assert!(!store.lease_sink(sink, "second", 1_000, 15_000).await.unwrap());
    // It ran out (the first holder stalled): the second takes it over.
    assert!(store.lease_sink(sink, "second", 20_000, 15_000).await.unwrap());
    assert!(
        !store.set_sink_cursor(sink, log, 9, 20_001, "first").await.unwrap(),
        "the stale holder moved the cursor"
    );
    assert_eq!(store.sink_cursor(sink, log).await.unwrap(), Some(5));
    assert!(store.set_sink_cursor(sink, log, 7, 20_002, "second").await.unwrap());
    assert!(
        !store.set_sink_cursor(sink, log, 6, 20_003, "second").await.unwrap(),
        "moved back"
    );
    assert_eq!(store.sink_cursor(sink, log).await.unwrap(), Some(7));
    app.stop().await;
}

/// A Datadog sink named `dd` at the fake intake `url`, for submitted events.
fn datadog_events_sink(url: &str) -> SinkConfig {
    SinkConfig::Datadog {
        name: "dd".into(),
        url: url.into(),
        api_key: crate::peers::datadog_intake::KEY.into(),
        service: "warden".into(),
        ddsource: "warden".into(),
        hostname: "warden-test".into(),
        ddtags: vec![],
        filter: SinkFilter {
            sources: vec!["events".into()],
            ..SinkFilter::default()
        },
        mask: vec![],
        timeout_ms: 2_000,
    }
}

/// An event dated more than 18 hours ago (a backlog after a long outage, a
/// late submission) would be answered 202 by Datadog and dropped: it is
/// dead-lettered with the reason instead, never counted delivered, and the
/// fresh events around it are delivered.
async fn events_older_than_datadogs_window_are_dead_lettered_not_lost(backend: Backend) {
    use crate::peers::datadog_intake::{self, Intake};
    let intake = std::sync::Arc::new(Intake::default());
    let server = datadog_intake::serve(intake.clone(), 0).await;
    let sink = datadog_events_sink(&server.url);
    let app = spawn_with(backend, |c| c.sinks = vec![sink], Clock::system()).await;
    let orchestrator = app.token(&app.admin, &["orchestrator"]).await;
    let auditor = app.token(&app.admin, &["auditor"]).await;
    let at = |hours_ago: i64| warden::clock::rfc3339_ms(chrono::Utc::now().timestamp_millis() - hours_ago * 3_600_000);
    let events: Vec<Value> = [(1, 0), (2, 19), (3, 1)]
        .iter()
        .map(|(n, hours_ago)| {
            json!({"timestamp": at(*hours_ago), "workflow_id": "wf-dd", "activity_id": format!("step-{n}"),
                "action": "document_read", "result": "success"})
        })
        .collect();
    let r = app
        .call(
            Method::POST,
            "/v1/audit/events",
            Some(&orchestrator),
            Some(json!(events)),
        )
        .await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.body);
    let ids = event_ids(&r);

    let deadline = Instant::now() + Duration::from_secs(20);
    let status = loop {
        let s = sinks(&app, &auditor).await;
        if (s["lag"] == 0 && s["dead_letters"] == 1) || Instant::now() > deadline {
            break s;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    assert_eq!(
        (status["lag"].clone(), status["dead_letters"].clone()),
        (json!(0), json!(1)),
        "{status}"
    );
    let delivered: Vec<Value> = intake.events().iter().map(|e| e["event_id"].clone()).collect();
    assert_eq!(delivered, vec![json!(ids[0]), json!(ids[2])]);
    assert_eq!(
        intake.dropped.load(std::sync::atomic::Ordering::Relaxed),
        0,
        "an event was sent that Datadog dropped"
    );
    let r = app
        .call(Method::GET, "/v1/sinks/dd/dead-letters", Some(&auditor), None)
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    let letters = r.body.as_array().unwrap();
    assert_eq!(letters.len(), 1, "{}", r.body);
    assert_eq!(letters[0]["event_id"], json!(ids[1]));
    assert!(
        letters[0]["reason"].as_str().unwrap().contains("18 hours"),
        "{}",
        r.body
    );
    let metrics = app.call(Method::GET, "/metrics", Some(&auditor), None).await;
    let text = String::from_utf8(metrics.bytes).unwrap();
    assert!(
        text.contains("warden_sink_delivered_events_total{sink=\"dd\"} 2"),
        "counted delivered: {}",
        text.lines()
            .filter(|l| l.contains("sink="))
            .collect::<Vec<_>>()
            .join("\n")
    );
    app.stop().await;
    server.stop().await;
}

/// A peer that answers 410 Gone disables the sink: it stops sending, says
/// why, dead-letters nothing, and its events wait in the ledger; after a
/// restart (the operator fixed the endpoint) it delivers every one of them.
async fn a_peer_answering_410_disables_the_sink_until_a_restart_and_nothing_is_lost(backend: Backend) {
    use crate::peers::datadog_intake::{self, Intake};
    let intake = std::sync::Arc::new(Intake::default());
    intake.script.lock().unwrap().push_back(410);
    let server = datadog_intake::serve(intake.clone(), 0).await;
    let sink = datadog_events_sink(&server.url);
    let app = spawn_with(backend, |c| c.sinks = vec![sink], Clock::system()).await;
    let orchestrator = app.token(&app.admin, &["orchestrator"]).await;
    let auditor = app.token(&app.admin, &["auditor"]).await;
    let now = warden::clock::rfc3339_ms(chrono::Utc::now().timestamp_millis());
    let batch: Vec<Value> = (1..=3)
        .map(|n| {
            json!({"timestamp": now, "workflow_id": "wf-gone", "activity_id": format!("step-{n}"),
            "action": "document_read", "result": "success"})
        })
        .collect();
    let r = app
        .call(
            Method::POST,
            "/v1/audit/events",
            Some(&orchestrator),
            Some(json!(batch)),
        )
        .await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.body);
    let ids = event_ids(&r);

    let deadline = Instant::now() + Duration::from_secs(20);
    let status = loop {
        let s = sinks(&app, &auditor).await;
        if s["enabled"] == false || Instant::now() > deadline {
            break s;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    assert_eq!(status["enabled"], false, "{status}");
    assert!(status["disabled_reason"].as_str().unwrap().contains("410"), "{status}");
    assert_eq!(status["dead_letters"], 0, "{status}");
    assert!(
        status["lag"].as_u64().unwrap() >= 3,
        "the events wait in the ledger: {status}"
    );
    assert_eq!(*intake.requests.lock().unwrap(), 1, "nothing sent after the 410");
    assert!(intake.events().is_empty());

    // The operator fixed the endpoint and restarts Warden: all delivered.
    let app = app.restart().await;
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let got: Vec<Value> = intake.events().iter().map(|e| e["event_id"].clone()).collect();
        if got.len() >= ids.len() {
            assert_eq!(
                got,
                ids.iter().map(|i| json!(i)).collect::<Vec<_>>(),
                "each once, in order"
            );
            break;
        }
        assert!(Instant::now() < deadline, "delivered after the restart: {got:?}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let s = sinks(&app, &auditor).await;
    assert_eq!(
        (s["enabled"].clone(), s["dead_letters"].clone()),
        (json!(true), json!(0)),
        "{s}"
    );
    app.stop().await;
    server.stop().await;
}
