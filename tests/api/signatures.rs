//! Signed bundles: OPA's JWT `.signatures.json`, verified against the
//! tenant's keys before a version can be stored or activated.

use reqwest::{Method, StatusCode};
use serde_json::json;
use warden::policy::signature::{Algorithm, SigningKey};

use crate::common::*;
use crate::on_both_backends;

on_both_backends!(signatures_are_verified_and_can_be_required);

fn signing_key(id: &str) -> (SigningKey, String) {
    let key = warden::keys::generate();
    let private = warden::keys::private_pem(&key).unwrap();
    let public = warden::keys::public_pem(&key).unwrap();
    (SigningKey::from_pem(id, Algorithm::EdDSA, &private).unwrap(), public)
}

async fn signatures_are_verified_and_can_be_required(backend: Backend) {
    let app = spawn_app(backend).await;
    let (key, public) = signing_key("compliance-2026");
    let (stranger, _) = signing_key("compliance-2026");

    let r = app
        .call(
            Method::POST,
            "/v1/keys",
            Some(&app.admin),
            Some(json!({"key_id": "compliance-2026", "algorithm": "EdDSA", "public_key": public})),
        )
        .await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.body);
    let r = app
        .call(
            Method::POST,
            "/v1/keys",
            Some(&app.admin),
            Some(json!({"key_id": "junk", "algorithm": "EdDSA", "public_key": "not a pem"})),
        )
        .await;
    assert_eq!((r.status, r.code()), (StatusCode::UNPROCESSABLE_ENTITY, "key_invalid"));
    let r = app
        .call(
            Method::PUT,
            "/v1/settings",
            Some(&app.admin),
            Some(json!({"require_signatures": true})),
        )
        .await;
    assert_eq!(r.status, StatusCode::OK);

    // Unsigned: refused.
    let r = app.upload(&app.admin, "commissioning", commissioning_bundle("1")).await;
    assert_eq!(
        (r.status, r.code()),
        (StatusCode::UNPROCESSABLE_ENTITY, "signature_required")
    );
    // Signed with a key the tenant does not trust: refused.
    let forged = warden::cli::bundle::sign(&commissioning_bundle("1"), &stranger, None).unwrap();
    let r = app.upload(&app.admin, "commissioning", forged).await;
    assert_eq!(
        (r.status, r.code()),
        (StatusCode::UNPROCESSABLE_ENTITY, "signature_invalid")
    );
    // Signed, then a policy file altered: refused, naming the file.
    let signed = warden::cli::bundle::sign(&commissioning_bundle("1"), &key, None).unwrap();
    let mut files = warden::policy::archive::read(&signed, &Default::default()).unwrap();
    for f in files.iter_mut().filter(|f| f.path == "routing.rego") {
        f.bytes = String::from_utf8(f.bytes.clone())
            .unwrap()
            .replace("== 0", ">= 0")
            .into_bytes();
    }
    let tampered = warden::policy::archive::write(&files).unwrap();
    let r = app.upload(&app.admin, "commissioning", tampered).await;
    assert_eq!(r.code(), "signature_file_mismatch");
    assert!(r.body["detail"].as_str().unwrap().contains("routing.rego"));
    assert_eq!(app.stored_versions(&app.admin).await, 0, "nothing refused is stored");

    // Properly signed: stored with its signer, activated, answering.
    let r = app.upload(&app.admin, "commissioning", signed).await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.body);
    assert_eq!(r.body["signed_by"], "compliance-2026");
    assert_eq!(
        app.activate(&app.admin, "commissioning", "1").await.status,
        StatusCode::OK
    );
    let r = app
        .decide(
            &app.admin,
            json!({"path": "agento/commissioning/routing/allow", "input": ready_input()}),
        )
        .await;
    assert_eq!(r.body["result"], true);

    // A version uploaded unsigned before the requirement cannot be activated after it.
    let r = app
        .call(
            Method::PUT,
            "/v1/settings",
            Some(&app.admin),
            Some(json!({"require_signatures": false})),
        )
        .await;
    assert_eq!(r.status, StatusCode::OK);
    assert_eq!(
        app.upload(&app.admin, "commissioning", commissioning_bundle("2"))
            .await
            .status,
        StatusCode::CREATED
    );
    app.call(
        Method::PUT,
        "/v1/settings",
        Some(&app.admin),
        Some(json!({"require_signatures": true})),
    )
    .await;
    let r = app.activate(&app.admin, "commissioning", "2").await;
    assert_eq!(
        (r.status, r.code()),
        (StatusCode::UNPROCESSABLE_ENTITY, "signature_required")
    );
    app.stop().await;
}
