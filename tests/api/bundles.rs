//! Bundle versions: immutable, content-addressed, tested on upload,
//! activated, rolled back, downloaded byte for byte.

use reqwest::{Method, StatusCode};
use serde_json::json;

use crate::common::*;
use crate::on_both_backends;

on_both_backends!(
    versions_are_immutable_and_content_addressed,
    activation_and_rollback_move_the_active_version,
    failing_rego_tests_block_activation_unless_forced,
    roots_of_different_bundles_may_not_overlap,
    active_versions_survive_a_restart_of_the_service,
    concurrent_activations_are_recorded_as_one_chain,
    a_roll_back_is_refused_with_nothing_before_recorded_and_seen_by_every_instance,
);

async fn versions_are_immutable_and_content_addressed(backend: Backend) {
    let app = spawn_app(backend).await;
    let compliance = app.token(&app.admin, &["compliance"]).await;
    let v1 = commissioning_bundle("2026.11.1");
    let r = app.upload(&compliance, "commissioning", v1.clone()).await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.body);
    assert_eq!(r.body["name"], "commissioning");
    assert_eq!(r.body["revision"], "2026.11.1");
    assert_eq!(r.body["digest"], blake3::hash(&v1).to_hex().to_string());
    assert_eq!(r.body["roots"], json!(["agento/commissioning"]));
    let tests = r.body["tests"].as_array().unwrap();
    assert_eq!(tests.len(), 6, "{}", r.body);
    assert!(tests.iter().all(|t| t["passed"] == true));

    // The same bytes again: accepted, nothing new stored.
    let r = app.upload(&compliance, "commissioning", v1.clone()).await;
    assert_eq!(r.status, StatusCode::OK);
    // Different content under the same revision: refused.
    let other = bundle_of(
        &[("x.rego", "package agento.commissioning.x\n\ny := 1\n")],
        "2026.11.1",
        &["agento/commissioning"],
    );
    let r = app.upload(&compliance, "commissioning", other).await;
    assert_eq!(r.status, StatusCode::CONFLICT);
    assert_eq!(r.code(), "revision_exists");
    assert_eq!(app.stored_versions(&compliance).await, 1);

    // Download returns the exact bytes.
    let auditor = app.token(&app.admin, &["auditor"]).await;
    let r = app
        .call(
            Method::GET,
            "/v1/bundles/commissioning/revisions/2026.11.1/content",
            Some(&auditor),
            None,
        )
        .await;
    assert_eq!(r.status, StatusCode::OK);
    assert_eq!(r.content_type, "application/gzip");
    assert_eq!(r.bytes, v1);
    let r = app
        .call(
            Method::GET,
            "/v1/bundles/commissioning/revisions/2026.11.1",
            Some(&auditor),
            None,
        )
        .await;
    assert_eq!(r.body["tests_passed"], true);
    app.stop().await;
}

async fn active(app: &TestApp) -> Option<String> {
    let r = app
        .decide(
            &app.admin,
            json!({"path": "agento/commissioning/routing/allow", "input": ready_input()}),
        )
        .await;
    r.body["bundle"]["revision"].as_str().map(str::to_string)
}

async fn activation_and_rollback_move_the_active_version(backend: Backend) {
    let app = spawn_app(backend).await;
    for rev in ["r1", "r2", "r3"] {
        assert_eq!(
            app.upload(&app.admin, "commissioning", commissioning_bundle(rev))
                .await
                .status,
            StatusCode::CREATED
        );
    }
    // Nothing active yet.
    let r = app
        .decide(&app.admin, json!({"path": "agento/commissioning/routing"}))
        .await;
    assert_eq!(r.code(), "no_bundle_for_path");

    assert_eq!(
        app.activate(&app.admin, "commissioning", "r1").await.status,
        StatusCode::OK
    );
    let r = app.activate(&app.admin, "commissioning", "r3").await;
    assert_eq!(r.body["previous_revision"], "r1");
    assert_eq!(active(&app).await.as_deref(), Some("r3"));

    let r = app
        .call(
            Method::POST,
            "/v1/bundles/commissioning/rollback",
            Some(&app.admin),
            Some(json!({})),
        )
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    assert_eq!(
        (r.body["revision"].clone(), r.body["previous_revision"].clone()),
        (json!("r1"), json!("r3"))
    );
    assert_eq!(active(&app).await.as_deref(), Some("r1"));

    let r = app
        .call(
            Method::POST,
            "/v1/bundles/commissioning/rollback",
            Some(&app.admin),
            Some(json!({"revision": "r2"})),
        )
        .await;
    assert_eq!(r.body["revision"], "r2");
    assert_eq!(active(&app).await.as_deref(), Some("r2"));

    let r = app
        .call(Method::GET, "/v1/bundles/commissioning", Some(&app.admin), None)
        .await;
    assert_eq!(r.body["active_revision"], "r2");
    assert_eq!(r.body["versions"].as_array().unwrap().len(), 3);
    let r = app.call(Method::GET, "/v1/bundles", Some(&app.admin), None).await;
    assert_eq!(
        r.body,
        json!([{"name": "commissioning", "versions": 3, "active_revision": "r2"}])
    );

    let r = app.activate(&app.admin, "commissioning", "r9").await;
    assert_eq!((r.status, r.code()), (StatusCode::NOT_FOUND, "unknown_revision"));
    let r = app.activate(&app.admin, "nope", "r1").await;
    assert_eq!((r.status, r.code()), (StatusCode::NOT_FOUND, "unknown_bundle"));
    app.stop().await;
}

async fn failing_rego_tests_block_activation_unless_forced(backend: Backend) {
    let app = spawn_app(backend).await;
    let bundle = bundle_of(
        &[
            ("p.rego", "package acme.p\n\nallow if input.user == \"alice\"\n"),
            (
                "p_test.rego",
                "package acme.p_test\n\nimport data.acme.p\n\ntest_alice if p.allow with input as {\"user\": \"alice\"}\n\ntest_bob if p.allow with input as {\"user\": \"bob\"}\n",
            ),
        ],
        "1",
        &["acme"],
    );
    let r = app.upload(&app.admin, "acme", bundle).await;
    assert_eq!(r.status, StatusCode::CREATED);
    assert_eq!(r.body["tests_passed"], false);
    let by_name: Vec<(String, bool)> = r.body["tests"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| (t["name"].as_str().unwrap().to_string(), t["passed"].as_bool().unwrap()))
        .collect();
    assert_eq!(
        by_name,
        vec![("test_alice".to_string(), true), ("test_bob".to_string(), false)]
    );

    let r = app.activate(&app.admin, "acme", "1").await;
    assert_eq!((r.status, r.code()), (StatusCode::CONFLICT, "bundle_tests_failed"));
    let r = app
        .call(
            Method::POST,
            "/v1/bundles/acme/activate",
            Some(&app.admin),
            Some(json!({"revision": "1", "force": true})),
        )
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    app.stop().await;
}

async fn roots_of_different_bundles_may_not_overlap(backend: Backend) {
    let app = spawn_app(backend).await;
    install_commissioning(&app, &app.admin, "1").await;
    let inner = bundle_of(
        &[("x.rego", "package agento.commissioning.extra\n\nx := 1\n")],
        "1",
        &["agento/commissioning/extra"],
    );
    let r = app.upload(&app.admin, "extra", inner).await;
    assert_eq!((r.status, r.code()), (StatusCode::CONFLICT, "bundle_root_overlap"));
    // A sibling root is fine, and answers its own paths.
    let sibling = bundle_of(
        &[("x.rego", "package agento.billing\n\nx := 1\n")],
        "1",
        &["agento/billing"],
    );
    assert_eq!(
        app.upload(&app.admin, "billing", sibling).await.status,
        StatusCode::CREATED
    );
    assert_eq!(app.activate(&app.admin, "billing", "1").await.status, StatusCode::OK);
    let r = app.decide(&app.admin, json!({"path": "agento/billing/x"})).await;
    assert_eq!(
        (r.body["result"].clone(), r.body["bundle"]["name"].clone()),
        (json!(1), json!("billing"))
    );
    app.stop().await;
}

async fn active_versions_survive_a_restart_of_the_service(backend: Backend) {
    let app = spawn_app(backend).await;
    install_commissioning(&app, &app.admin, "1").await;
    // A second service over the same store (as after a restart, or a second
    // instance behind the load balancer) loads the active version.
    let config = (*app.state.config).clone();
    let (state, bootstrap) = warden::app::build(config, warden::clock::Clock::system(), None)
        .await
        .unwrap();
    assert_eq!(
        bootstrap,
        warden::app::Bootstrap::Existing,
        "a store with tenants is never bootstrapped twice"
    );
    assert_eq!(state.policy.refresh().await.unwrap(), 1);
    assert_eq!(state.policy.active_count(), 1);
    app.stop().await;
}

/// Activations racing on one bundle: every one that answered 200 is in the
/// ledger, and the `bundle.activate` entries, in ledger order, form one
/// chain (each entry's `previous_revision` is the revision of the entry
/// before it), the same chain as the store's activation history. An
/// activation that lost the race every time it tried says so (409
/// `concurrent_change`) and records nothing.
async fn concurrent_activations_are_recorded_as_one_chain(backend: Backend) {
    let app = spawn_app(backend).await;
    for rev in ["r1", "r2", "r3"] {
        let r = app.upload(&app.admin, "commissioning", commissioning_bundle(rev)).await;
        assert_eq!(r.status, StatusCode::CREATED, "{}", r.body);
    }
    let revisions = ["r1", "r2", "r3", "r1", "r3", "r2", "r1", "r2", "r3", "r1", "r2", "r3"];
    let answers = futures_util::future::join_all(
        revisions
            .iter()
            .map(|rev| app.activate(&app.admin, "commissioning", rev)),
    )
    .await;
    let mut answered = 0;
    for r in &answers {
        match r.status {
            StatusCode::OK => answered += 1,
            _ => assert_eq!(
                (r.status, r.code()),
                (StatusCode::CONFLICT, "concurrent_change"),
                "{}",
                r.body
            ),
        }
    }
    assert!(answered >= 1, "no activation succeeded");

    let r = app.call(Method::GET, "/v1/ledger/export", Some(&app.admin), None).await;
    assert_eq!(r.status, StatusCode::OK);
    let activations: Vec<serde_json::Value> = r
        .bytes
        .split(|b| *b == b'\n')
        .filter(|l| l.starts_with(b"{\"actor\":"))
        .map(|l| serde_json::from_slice::<serde_json::Value>(l).unwrap())
        .filter(|e| e["kind"] == "bundle.activate")
        .map(|e| e["payload"].clone())
        .collect();
    assert_eq!(activations.len(), answered, "one entry per activation answered 200");
    let mut previous = serde_json::Value::Null;
    for a in &activations {
        assert_eq!(a["previous_revision"], previous, "a broken chain: {activations:?}");
        previous = a["revision"].clone();
    }
    assert_eq!(
        active(&app).await.as_deref(),
        previous.as_str(),
        "the head is the chain's end"
    );
    app.stop().await;
}

async fn rollback(app: &TestApp, body: serde_json::Value) -> Reply {
    app.call(
        Method::POST,
        "/v1/bundles/commissioning/rollback",
        Some(&app.admin),
        Some(body),
    )
    .await
}

/// Roll back past the happy path: refused (409 `nothing_to_roll_back`)
/// when nothing was active before, and for a revision never uploaded (404);
/// recorded as `bundle.rollback` with both revisions and the digest; and
/// in force on another instance of the same store once it refreshed.
async fn a_roll_back_is_refused_with_nothing_before_recorded_and_seen_by_every_instance(backend: Backend) {
    let app = spawn_app(backend).await;
    let mut digests = std::collections::HashMap::new();
    for rev in ["r1", "r2"] {
        let r = app.upload(&app.admin, "commissioning", commissioning_bundle(rev)).await;
        assert_eq!(r.status, StatusCode::CREATED, "{}", r.body);
        digests.insert(rev, r.body["digest"].as_str().unwrap().to_string());
    }
    let r = rollback(&app, json!({})).await;
    assert_eq!((r.status, r.code()), (StatusCode::CONFLICT, "nothing_to_roll_back"));
    assert_eq!(
        app.activate(&app.admin, "commissioning", "r1").await.status,
        StatusCode::OK
    );
    let r = rollback(&app, json!({})).await;
    assert_eq!(
        (r.status, r.code()),
        (StatusCode::CONFLICT, "nothing_to_roll_back"),
        "r1 was the first active revision"
    );
    let r = rollback(&app, json!({"revision": "r9"})).await;
    assert_eq!((r.status, r.code()), (StatusCode::NOT_FOUND, "unknown_revision"));

    assert_eq!(
        app.activate(&app.admin, "commissioning", "r2").await.status,
        StatusCode::OK
    );
    let other = app.second_instance().await;
    assert_eq!(
        active(&other).await.as_deref(),
        Some("r2"),
        "the other instance starts with r2"
    );
    let r = rollback(&app, json!({})).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    assert_eq!(
        (r.body["revision"].as_str(), r.body["previous_revision"].as_str()),
        (Some("r1"), Some("r2"))
    );

    let r = app.call(Method::GET, "/v1/ledger/export", Some(&app.admin), None).await;
    assert_eq!(r.status, StatusCode::OK);
    let last = r
        .bytes
        .split(|b| *b == b'\n')
        .filter(|l| l.starts_with(b"{\"actor\":"))
        .map(|l| serde_json::from_slice::<serde_json::Value>(l).unwrap())
        .rfind(|e| e["kind"].as_str().is_some_and(|k| k.starts_with("bundle.")))
        .unwrap();
    assert_eq!(last["kind"], "bundle.rollback", "{last}");
    assert_eq!(
        last["payload"],
        json!({"name": "commissioning", "revision": "r1", "digest": digests["r1"], "previous_revision": "r2",
            "forced": false})
    );

    // The other instance decides with r1 once it refreshed its active set.
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(15);
    loop {
        let seen = active(&other).await;
        if seen.as_deref() == Some("r1") {
            break;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "the other instance still decides with {seen:?}"
        );
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    other.stop().await;
    app.stop().await;
}
