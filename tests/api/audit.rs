//! Audit events in: the seed-000 shape, one or many (array or NDJSON),
//! validated against the published schema before anything is recorded,
//! recorded once per event_id, each with its receipt; and the audit feed,
//! where decisions appear in the same shape.

use reqwest::{Method, StatusCode};
use serde_json::{Value, json};
use warden::evidence::checkpoint::NoteVerifier;
use warden::evidence::receipt::Receipt;
use warden::evidence::verify;

use crate::common::*;
use crate::on_both_backends;

on_both_backends!(
    events_are_recorded_with_receipts_and_stamped_with_the_caller,
    a_retried_event_is_recorded_once,
    every_invalid_field_is_named_and_nothing_is_recorded,
    decisions_join_the_feed_in_the_event_shape,
);

fn seed_event() -> Value {
    json!({
        "event_id": "evt_01HVKM3X9XQPZ8R7N4T",
        "timestamp": "2026-04-15T09:23:41.842Z",
        "workflow_id": "bess-commissioning-wf-2026-04-15",
        "activity_id": "retrieve_acc_test_data",
        "agent_id": "retrieval-agent-v1",
        "action": "document_read",
        "resource": {"connector": "acc", "project_id": "proj_abc123", "document_id": "doc_xyz789",
            "document_name": "BESS-TR-001-TestSheet-Rev2.pdf"},
        "rbac_scope": "engineering.commissioning",
        "user_context": {"initiated_by": "user_j_morrison", "on_behalf_of": "project_alpha"},
        "result": "success",
        "latency_ms": 342
    })
}

fn event(n: u32) -> Value {
    let mut e = seed_event();
    e.as_object_mut().unwrap().remove("event_id");
    e["activity_id"] = json!(format!("step-{n}"));
    e
}

async fn key(app: &TestApp, auditor: &str) -> NoteVerifier {
    let r = app.call(Method::GET, "/v1/ledger/keys", Some(auditor), None).await;
    NoteVerifier::parse(r.body[0]["verifier"].as_str().unwrap()).unwrap()
}

async fn log_size(app: &TestApp, auditor: &str) -> u64 {
    let r = app
        .call(Method::GET, "/v1/ledger/checkpoint", Some(auditor), None)
        .await;
    r.body["size"].as_u64().unwrap()
}

async fn feed(app: &TestApp, auditor: &str) -> Vec<Value> {
    let mut out = Vec::new();
    let mut after = String::new();
    loop {
        let r = app
            .call(
                Method::GET,
                &format!("/v1/audit/events?limit=7{after}"),
                Some(auditor),
                None,
            )
            .await;
        assert_eq!(r.status, StatusCode::OK, "{}", r.body);
        out.extend(r.body["events"].as_array().unwrap().iter().map(|e| e["event"].clone()));
        match r.body["next_after"].as_u64() {
            Some(n) => after = format!("&after={n}"),
            None => return out,
        }
    }
}

async fn events_are_recorded_with_receipts_and_stamped_with_the_caller(backend: Backend) {
    let app = spawn_app(backend).await;
    let orchestrator = app.token(&app.admin, &["orchestrator"]).await;
    let auditor = app.token(&app.admin, &["auditor"]).await;
    let key = key(&app, &auditor).await;

    let r = app
        .call(
            Method::POST,
            "/v1/audit/events",
            Some(&orchestrator),
            Some(seed_event()),
        )
        .await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.body);
    assert_eq!(
        (r.body["accepted"].as_u64(), r.body["duplicates"].as_u64()),
        (Some(1), Some(0))
    );
    assert_eq!(r.body["events"][0]["event_id"], "evt_01HVKM3X9XQPZ8R7N4T");
    let receipt: Receipt = serde_json::from_value(r.body["events"][0]["receipt"].clone()).unwrap();
    verify::verify_receipt(&receipt, std::slice::from_ref(&key), None).unwrap();

    // An array and NDJSON; event_ids assigned; one batch each, in order.
    let r = app
        .call(
            Method::POST,
            "/v1/audit/events",
            Some(&orchestrator),
            Some(json!([event(1), event(2)])),
        )
        .await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.body);
    let ids: Vec<&str> = r.body["events"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["event_id"].as_str().unwrap())
        .collect();
    assert!(ids.iter().all(|i| i.starts_with("evt_01")) && ids[0] != ids[1]);
    let ndjson = format!("{}\n\n{}\n{}\n", event(3), event(4), event(5));
    let r = app
        .raw(
            Method::POST,
            "/v1/audit/events",
            &orchestrator,
            "application/x-ndjson",
            ndjson.into_bytes(),
        )
        .await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.body);
    let receipts: Vec<Receipt> = r.body["events"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| serde_json::from_value(e["receipt"].clone()).unwrap())
        .collect();
    assert_eq!(receipts.len(), 3);
    assert!(
        receipts.windows(2).all(|w| w[1].index == w[0].index + 1),
        "in submission order"
    );
    assert!(
        receipts.iter().all(|r| r.tree_size == receipts[0].tree_size),
        "one transaction, one checkpoint"
    );

    // The feed holds them as recorded, stamped with the token, never the body.
    let events = feed(&app, &auditor).await;
    assert_eq!(events.len(), 6);
    for e in &events {
        assert!(warden::audit::conforms(e), "{e}");
        assert_eq!(e["caller"]["token_name"], "orchestrator");
    }
    assert_eq!(events[0]["resource"]["document_name"], "BESS-TR-001-TestSheet-Rev2.pdf");
    assert_eq!(events[5]["activity_id"], "step-5");

    // Who may do what.
    let r = app
        .call(Method::POST, "/v1/audit/events", Some(&auditor), Some(event(9)))
        .await;
    assert_eq!((r.status, r.code()), (StatusCode::FORBIDDEN, "forbidden"));
    let r = app
        .call(Method::GET, "/v1/audit/events", Some(&orchestrator), None)
        .await;
    assert_eq!((r.status, r.code()), (StatusCode::FORBIDDEN, "forbidden"));
    app.stop().await;
}

async fn a_retried_event_is_recorded_once(backend: Backend) {
    let app = spawn_app(backend).await;
    let agent = app.token(&app.admin, &["agent"]).await;
    let auditor = app.token(&app.admin, &["auditor"]).await;
    let first = app
        .call(Method::POST, "/v1/audit/events", Some(&agent), Some(seed_event()))
        .await;
    assert_eq!(first.status, StatusCode::CREATED, "{}", first.body);
    let size = log_size(&app, &auditor).await;

    // The same event again (a client retry after a timeout): same entry.
    let again = app
        .call(
            Method::POST,
            "/v1/audit/events",
            Some(&agent),
            Some(json!([seed_event(), event(1)])),
        )
        .await;
    assert_eq!(again.status, StatusCode::CREATED, "{}", again.body);
    assert_eq!(
        (again.body["accepted"].as_u64(), again.body["duplicates"].as_u64()),
        (Some(1), Some(1))
    );
    assert_eq!(again.body["events"][0]["duplicate"], true);
    assert_eq!(
        again.body["events"][0]["receipt"]["index"],
        first.body["events"][0]["receipt"]["index"]
    );
    assert_eq!(log_size(&app, &auditor).await, size + 1, "only the new event was added");
    let only = app
        .call(Method::POST, "/v1/audit/events", Some(&agent), Some(seed_event()))
        .await;
    assert_eq!(only.status, StatusCode::OK, "all duplicates: nothing created");

    // The same event_id with other content is refused.
    let mut changed = seed_event();
    changed["result"] = json!("failure");
    let r = app
        .call(Method::POST, "/v1/audit/events", Some(&agent), Some(changed))
        .await;
    assert_eq!((r.status, r.code()), (StatusCode::CONFLICT, "event_id_conflict"));
    assert_eq!(log_size(&app, &auditor).await, size + 1);
    app.stop().await;
}

async fn every_invalid_field_is_named_and_nothing_is_recorded(backend: Backend) {
    let app = spawn_app(backend).await;
    let orchestrator = app.token(&app.admin, &["orchestrator"]).await;
    let auditor = app.token(&app.admin, &["auditor"]).await;
    let size = log_size(&app, &auditor).await;
    let cases: Vec<(&str, Value)> = vec![
        ("/timestamp", json!("last tuesday")),
        ("/timestamp", json!(1713173021)),
        ("/action", json!("Read Document")),
        ("/result", json!("ok")),
        ("/latency_ms", json!(-5)),
        ("/latency_ms", json!(1.5)),
        ("/resource", json!({"document_id": "doc_1"})),
        ("/resource/connector", json!({"connector": ""})),
        ("/rbac_scope", json!("Engineering Commissioning")),
        ("/event_id", json!("12345")),
        ("/workflow_id", json!("")),
        ("/user_context/initiated_by", json!({"initiated_by": 42})),
        ("/attributes/nested", json!({"nested": {"deep": true}})),
        (
            "/caller",
            json!({"token_id": "tok_forged", "token_name": "root", "tenant_id": "ten_other"}),
        ),
        (
            "/decision",
            json!({"decision_id": "dec_x", "path": "p", "bundle": {"name": "b", "revision": "1", "digest": "d"}}),
        ),
    ];
    for (field, bad) in cases {
        let mut e = event(1);
        let top = field.trim_start_matches('/').split('/').next().unwrap();
        e[top] = bad;
        // One bad event among good ones: the whole request is refused.
        let r = app
            .call(
                Method::POST,
                "/v1/audit/events",
                Some(&orchestrator),
                Some(json!([event(0), e])),
            )
            .await;
        assert_eq!(
            (r.status, r.code()),
            (StatusCode::UNPROCESSABLE_ENTITY, "invalid_event"),
            "{field}: {}",
            r.body
        );
        let first = &r.body["errors"][0];
        assert_eq!(first["event"], 1, "{field}: {}", r.body);
        assert_eq!(first["field"], field, "{}", r.body);
        assert!(r.body["detail"].as_str().unwrap().contains("nothing was recorded"));
    }
    let mut missing = event(1);
    missing.as_object_mut().unwrap().remove("action");
    let r = app
        .call(Method::POST, "/v1/audit/events", Some(&orchestrator), Some(missing))
        .await;
    assert_eq!(
        (r.status, r.code()),
        (StatusCode::UNPROCESSABLE_ENTITY, "invalid_event")
    );
    assert!(
        r.body["errors"][0]["reason"].as_str().unwrap().contains("action"),
        "{}",
        r.body
    );
    let mut extra = event(1);
    extra["surprise"] = json!(true);
    let r = app
        .call(Method::POST, "/v1/audit/events", Some(&orchestrator), Some(extra))
        .await;
    assert_eq!(
        (r.status, r.code()),
        (StatusCode::UNPROCESSABLE_ENTITY, "invalid_event")
    );
    let r = app
        .call(
            Method::POST,
            "/v1/audit/events",
            Some(&orchestrator),
            Some(json!([seed_event(), seed_event()])),
        )
        .await;
    assert_eq!(
        (r.status, r.code()),
        (StatusCode::UNPROCESSABLE_ENTITY, "invalid_event")
    );
    assert_eq!(r.body["errors"][0]["field"], "/event_id");
    let r = app
        .call(
            Method::POST,
            "/v1/audit/events",
            Some(&orchestrator),
            Some(json!(["not an object"])),
        )
        .await;
    assert_eq!(
        (r.status, r.code()),
        (StatusCode::UNPROCESSABLE_ENTITY, "invalid_event")
    );
    let r = app
        .call(Method::POST, "/v1/audit/events", Some(&orchestrator), Some(json!([])))
        .await;
    assert_eq!((r.status, r.code()), (StatusCode::BAD_REQUEST, "no_events"));
    let ndjson = format!("{}\n{{\"action\": \n", event(1));
    let r = app
        .raw(
            Method::POST,
            "/v1/audit/events",
            &orchestrator,
            "application/x-ndjson",
            ndjson.into_bytes(),
        )
        .await;
    assert_eq!((r.status, r.code()), (StatusCode::BAD_REQUEST, "malformed_json"));
    assert!(r.body["detail"].as_str().unwrap().contains("line 2"), "{}", r.body);
    let many: Vec<Value> = (0..1001).map(|_| json!({})).collect();
    let r = app
        .call(Method::POST, "/v1/audit/events", Some(&orchestrator), Some(json!(many)))
        .await;
    assert_eq!((r.status, r.code()), (StatusCode::PAYLOAD_TOO_LARGE, "too_many_events"));

    assert_eq!(log_size(&app, &auditor).await, size, "nothing was appended");
    app.stop().await;
}

async fn decisions_join_the_feed_in_the_event_shape(backend: Backend) {
    let app = spawn_app(backend).await;
    install_commissioning(&app, &app.admin, "2026.11.1").await;
    let orchestrator = app.token(&app.admin, &["orchestrator"]).await;
    let auditor = app.token(&app.admin, &["auditor"]).await;
    let d = app
        .decide(
            &orchestrator,
            json!({"path": "agento/commissioning/routing", "input": blocked_input(),
                "context": {"workflow_id": "wf-17402", "activity_id": "route_report"}}),
        )
        .await;
    assert_eq!(d.status, StatusCode::OK, "{}", d.body);
    let r = app
        .call(Method::POST, "/v1/audit/events", Some(&orchestrator), Some(event(1)))
        .await;
    assert_eq!(r.status, StatusCode::CREATED);

    let events = feed(&app, &auditor).await;
    assert_eq!(events.len(), 2, "{events:?}");
    let e = &events[0];
    assert!(warden::audit::conforms(e), "{e}");
    assert_eq!(e["action"], "policy.decision");
    assert_eq!(e["result"], "denied");
    assert_eq!(e["workflow_id"], "wf-17402");
    assert_eq!(e["activity_id"], "route_report");
    assert_eq!(e["timestamp"], d.body["timestamp"]);
    let id = d.body["decision_id"].as_str().unwrap();
    assert_eq!(e["event_id"], format!("evt_{}", id.trim_start_matches("dec_")));
    assert_eq!(e["decision"]["decision_id"], id);
    assert_eq!(e["decision"]["bundle"]["revision"], "2026.11.1");
    assert_eq!(
        e["decision"]["reasons"],
        json!(["punch items still open", "test result outside tolerance"])
    );
    assert_eq!(e["caller"]["token_name"], "orchestrator");
    assert_eq!(events[1]["action"], "document_read");
    app.stop().await;
}
