//! Workflow definitions through the API: versions, pinning by content, and
//! every fault of an invalid definition with its own code.

use reqwest::{Method, StatusCode};
use serde_json::{Value, json};

use crate::common::*;
use crate::on_both_backends;

on_both_backends!(
    definitions_are_versioned_by_content,
    invalid_definitions_list_every_fault
);

/// Seed 002's example, as shipped in `examples/`.
const CLAIMS: &str = include_str!("../../examples/claims-review-flow/workflow.yaml");

async fn put(app: &TestApp, token: &str, name: &str, body: &str, content_type: &str) -> Reply {
    app.raw(
        Method::PUT,
        &format!("/v1/workflows/{name}"),
        token,
        content_type,
        body.as_bytes().to_vec(),
    )
    .await
}

async fn definitions_are_versioned_by_content(backend: Backend) {
    let app = spawn_app(backend).await;
    let compliance = app.token(&app.admin, &["compliance"]).await;
    let auditor = app.token(&app.admin, &["auditor"]).await;

    let r = put(&app, &compliance, "claims-review-flow", CLAIMS, "application/yaml").await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.body);
    assert_eq!(
        (r.body["version"].as_i64(), r.body["created"].as_bool()),
        (Some(1), Some(true))
    );
    assert!(
        r.body["receipt"]["index"].is_u64(),
        "the upload is in the ledger: {}",
        r.body
    );
    let digest = r.body["digest"].as_str().unwrap().to_string();

    // The same definition as JSON is the same version.
    let as_json: Value = yaml_serde::from_str(CLAIMS).unwrap();
    let r = put(
        &app,
        &compliance,
        "claims-review-flow",
        &as_json.to_string(),
        "application/json",
    )
    .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    assert_eq!(
        (r.body["version"].as_i64(), r.body["created"].as_bool()),
        (Some(1), Some(false))
    );
    assert_eq!(r.body["digest"], digest);

    // Other content is the next version; the first stays as it was.
    let changed = CLAIMS.replace("timeoutSeconds: 120", "timeoutSeconds: 90");
    let r = put(&app, &compliance, "claims-review-flow", &changed, "application/yaml").await;
    assert_eq!((r.status, r.body["version"].as_i64()), (StatusCode::CREATED, Some(2)));
    let r = app
        .call(Method::GET, "/v1/workflows/claims-review-flow", Some(&auditor), None)
        .await;
    let versions: Vec<i64> = r
        .body
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v["version"].as_i64().unwrap())
        .collect();
    assert_eq!(versions, [2, 1]);
    let r = app
        .call(
            Method::GET,
            "/v1/workflows/claims-review-flow/versions/1",
            Some(&auditor),
            None,
        )
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    assert_eq!(r.body["definition"]["spec"]["states"]["Triage"]["timeoutSeconds"], 120);
    assert_eq!(r.body["source"], CLAIMS);
    let r = app.call(Method::GET, "/v1/workflows", Some(&auditor), None).await;
    assert_eq!(
        r.body,
        json!([{"name": "claims-review-flow", "latest_version": 2, "versions": 2}])
    );

    let r = app.call(Method::GET, "/v1/workflows/nope", Some(&auditor), None).await;
    assert_eq!((r.status, r.code()), (StatusCode::NOT_FOUND, "unknown_workflow"));
    let r = app
        .call(
            Method::GET,
            "/v1/workflows/claims-review-flow/versions/9",
            Some(&auditor),
            None,
        )
        .await;
    assert_eq!(r.code(), "unknown_workflow_version");
    let r = put(&app, &compliance, "another-name", CLAIMS, "application/yaml").await;
    assert_eq!(
        (r.status, r.code()),
        (StatusCode::BAD_REQUEST, "workflow_name_mismatch")
    );
    let r = put(&app, &auditor, "claims-review-flow", CLAIMS, "application/yaml").await;
    assert_eq!(r.status, StatusCode::FORBIDDEN);
    app.stop().await;
}

async fn invalid_definitions_list_every_fault(backend: Backend) {
    let app = spawn_app(backend).await;
    let compliance = app.token(&app.admin, &["compliance"]).await;
    // Each change breaks one rule; the upload names every fault.
    let broken = CLAIMS
        .replace("next: RiskChoice", "next: RiskChoise")
        .replace("inputPath: $.claim", "inputPath: $.claims[*]")
        .replace(
            "default: HumanReview\n",
            "default: HumanReview\n    Orphan:\n      type: Succeed\n",
        );
    let r = put(&app, &compliance, "claims-review-flow", &broken, "application/yaml").await;
    assert_eq!(r.status, StatusCode::UNPROCESSABLE_ENTITY, "{}", r.body);
    let faults: Vec<(String, String)> = r.body["errors"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| (e["code"].as_str().unwrap().into(), e["at"].as_str().unwrap().into()))
        .collect();
    for (code, at) in [
        ("unknown_next", "spec.states.Triage.next"),
        ("invalid_path", "spec.states.Triage.inputPath"),
        ("unreachable_state", "spec.states.Orphan"),
    ] {
        assert!(
            faults.iter().any(|(c, a)| c == code && a.starts_with(at)),
            "{code} at {at} in {faults:?}"
        );
    }
    assert_eq!(r.code(), faults[0].0, "the problem's code is the first fault's");

    let cases = [
        ("apiVersion: agentrc.workflow/v9\n", "unsupported_api_version"),
        ("{\"apiVersion\": ", "invalid_syntax"),
        (
            "apiVersion: agentrc.workflow/v0.1\nkind: AgentWorkflow\nmetadata: {name: claims-review-flow}\n\
             spec:\n  startAt: A\n  states:\n    A: {type: Pass, next: A}\n",
            "no_terminal_state",
        ),
    ];
    for (body, code) in cases {
        let r = put(&app, &compliance, "claims-review-flow", body, "application/yaml").await;
        assert_eq!(r.status, StatusCode::UNPROCESSABLE_ENTITY, "{body}: {}", r.body);
        let codes: Vec<&str> = r.body["errors"]
            .as_array()
            .unwrap()
            .iter()
            .map(|e| e["code"].as_str().unwrap())
            .collect();
        assert!(codes.contains(&code), "{body}: {codes:?}");
    }
    // Nothing was stored.
    let r = app.call(Method::GET, "/v1/workflows", Some(&compliance), None).await;
    assert_eq!(r.body, json!([]));
    app.stop().await;
}
