//! Health, readiness, metrics and the OpenAPI document.

use reqwest::{Method, StatusCode};
use serde_json::json;

use crate::common::*;
use crate::on_both_backends;

on_both_backends!(probes_and_metrics_report_what_happened);

async fn probes_and_metrics_report_what_happened(backend: Backend) {
    let app = spawn_app(backend).await;
    let r = app.call(Method::GET, "/health", None, None).await;
    assert_eq!((r.status, r.body["status"].clone()), (StatusCode::OK, json!("ok")));
    install_commissioning(&app, &app.admin, "1").await;
    let r = app.call(Method::GET, "/health/ready", None, None).await;
    assert_eq!(r.status, StatusCode::OK);
    assert_eq!(r.body["active_bundles"], 1);
    assert_eq!(
        r.body["store"],
        if backend == Backend::Sqlite {
            "sqlite"
        } else {
            "postgres"
        }
    );

    app.decide(
        &app.admin,
        json!({"path": "agento/commissioning/routing", "input": ready_input()}),
    )
    .await;
    app.decide(
        &app.admin,
        json!({"path": "agento/commissioning/routing", "input": blocked_input()}),
    )
    .await;
    app.decide(
        &app.admin,
        json!({"path": "agento/commissioning/routing", "input": blocked_input()}),
    )
    .await;
    let auditor = app.token(&app.admin, &["auditor"]).await;
    let r = app.call(Method::GET, "/metrics", Some(&auditor), None).await;
    assert_eq!(r.status, StatusCode::OK);
    let text = String::from_utf8(r.bytes).unwrap();
    assert!(text.contains("warden_decisions_total{outcome=\"allow\"} 1"), "{text}");
    assert!(text.contains("warden_decisions_total{outcome=\"deny\"} 2"), "{text}");
    assert!(text.contains("warden_bundle_activations_total 1"), "{text}");
    assert!(text.contains("warden_policy_eval_duration_seconds_count 3"), "{text}");
    assert!(
        text.contains(
            "warden_http_request_duration_seconds_count{method=\"POST\",route=\"/v1/decisions\",status=\"200\"} 3"
        ),
        "{text}"
    );
    app.stop().await;
}

/// The served document and the checked-in `schemas/openapi.json` are the
/// same. Regenerate with `WARDEN_UPDATE_OPENAPI=1 cargo test openapi`: that
/// run rewrites the file and still fails when it was out of date, so an
/// update is never reported as a pass.
#[tokio::test]
async fn openapi_document_is_checked_in_and_served() {
    let generated = warden::http::openapi_json();
    let path = repo_path("schemas/openapi.json");
    let checked_in = std::fs::read_to_string(&path).unwrap_or_default();
    if checked_in != generated && std::env::var("WARDEN_UPDATE_OPENAPI").is_ok() {
        std::fs::write(&path, &generated).unwrap();
        panic!("schemas/openapi.json was out of date and is rewritten now; review and commit it");
    }
    assert!(
        checked_in == generated,
        "schemas/openapi.json is out of date; run WARDEN_UPDATE_OPENAPI=1 cargo test openapi and commit it"
    );
    let app = spawn_app(Backend::Sqlite).await;
    let r = app.call(Method::GET, "/openapi.json", Some(&app.admin), None).await;
    assert_eq!(r.status, StatusCode::OK);
    assert_eq!(String::from_utf8(r.bytes).unwrap(), generated);
    let doc: serde_json::Value = serde_json::from_str(&generated).unwrap();
    for path in [
        "/v1/decisions",
        "/v1/bundles/{name}",
        "/v1/data/{path}",
        "/v1/tokens",
        "/health/ready",
    ] {
        assert!(doc["paths"].get(path).is_some(), "{path} is documented");
    }
    app.stop().await;
}
