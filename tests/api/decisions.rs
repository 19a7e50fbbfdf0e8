//! Deciding: the new-user flow of the README, pinning, the OPA Data API,
//! captured builtins, runaway policies.

use reqwest::{Method, StatusCode};
use serde_json::json;
use warden::clock::Clock;

use crate::common::*;
use crate::on_both_backends;

on_both_backends!(
    seed_policy_allows_and_denies_with_both_reasons,
    pinned_versions_answer_while_another_is_active,
    opa_data_api_answers_like_opa,
    time_now_ns_is_fixed_per_decision_and_kept,
    runaway_policy_times_out_and_the_server_keeps_answering,
    decisions_need_a_deciding_role,
);

async fn seed_policy_allows_and_denies_with_both_reasons(backend: Backend) {
    let app = spawn_app(backend).await;
    install_commissioning(&app, &app.admin, "2026.11.1").await;
    let orchestrator = app.token(&app.admin, &["orchestrator"]).await;

    let r = app
        .decide(
            &orchestrator,
            json!({"path": "agento/commissioning/routing", "input": ready_input()}),
        )
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    assert_eq!(r.body["allow"], true);
    assert_eq!(r.body["reasons"], json!([]));
    assert_eq!(r.body["bundle"]["name"], "commissioning");
    assert_eq!(r.body["bundle"]["revision"], "2026.11.1");
    assert_eq!(r.body["bundle"]["digest"].as_str().unwrap().len(), 64);
    assert!(r.body["decision_id"].as_str().unwrap().starts_with("dec_"));
    assert!(
        r.body["caller"].as_str().unwrap().contains("orchestrator"),
        "caller comes from the token"
    );

    let r = app
        .decide(
            &orchestrator,
            json!({"path": "agento/commissioning/routing", "input": blocked_input()}),
        )
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    assert_eq!(r.body["allow"], false);
    assert_eq!(
        r.body["reasons"],
        json!(["punch items still open", "test result outside tolerance"])
    );

    // A rule path answers with the rule's value.
    let r = app
        .decide(&orchestrator, json!({"path": "agento.commissioning.routing.allow", "input": ready_input(), "context": {"workflow_id": "wf-17402"}}))
        .await;
    assert_eq!(r.body["result"], true);
    assert_eq!(r.body["allow"], true);
    assert_eq!(r.body["context"]["workflow_id"], "wf-17402");
    app.stop().await;
}

async fn pinned_versions_answer_while_another_is_active(backend: Backend) {
    let app = spawn_app(backend).await;
    install_commissioning(&app, &app.admin, "v1").await;
    // v2: a stricter policy (no tolerance at all), same roots.
    let strict = bundle_of(
        &[(
            "routing.rego",
            "package agento.commissioning.routing\n\ndefault allow := false\n\nallow if {\n\tcount(input.procore.punch_items_open_bess) == 0\n\tevery r in input.test_results { r.value == input.protection_settings_schedule[r.parameter].expected }\n}\n",
        )],
        "v2",
        &["agento/commissioning"],
    );
    assert_eq!(
        app.upload(&app.admin, "commissioning", strict).await.status,
        StatusCode::CREATED
    );
    assert_eq!(
        app.activate(&app.admin, "commissioning", "v2").await.status,
        StatusCode::OK
    );

    let r = app
        .decide(
            &app.admin,
            json!({"path": "agento/commissioning/routing/allow", "input": ready_input()}),
        )
        .await;
    assert_eq!(
        (r.body["result"].clone(), r.body["bundle"]["revision"].clone()),
        (json!(false), json!("v2"))
    );

    let r = app
        .decide(&app.admin, json!({"path": "agento/commissioning/routing/allow", "input": ready_input(), "bundle": {"name": "commissioning", "revision": "v1"}}))
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    assert_eq!(
        (r.body["result"].clone(), r.body["bundle"]["revision"].clone()),
        (json!(true), json!("v1"))
    );
    app.stop().await;
}

async fn opa_data_api_answers_like_opa(backend: Backend) {
    let app = spawn_app(backend).await;
    install_commissioning(&app, &app.admin, "1").await;
    let r = app
        .call(
            Method::POST,
            "/v1/data/agento/commissioning/routing/allow",
            Some(&app.admin),
            Some(json!({"input": ready_input()})),
        )
        .await;
    assert_eq!(r.status, StatusCode::OK);
    assert_eq!(r.body["result"], true);
    assert!(r.body["decision_id"].is_string());

    // Undefined: 200 without `result`, as OPA answers.
    let r = app
        .call(
            Method::POST,
            "/v1/data/agento/commissioning/routing/nothing_here",
            Some(&app.admin),
            Some(json!({"input": {}})),
        )
        .await;
    assert_eq!(r.status, StatusCode::OK);
    assert!(r.body.get("result").is_none(), "{}", r.body);
    // No input at all, whole package.
    let r = app
        .raw(
            Method::POST,
            "/v1/data/agento/commissioning/routing",
            &app.admin,
            "application/json",
            vec![],
        )
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    assert_eq!(r.body["result"]["allow"], false);
    app.stop().await;
}

async fn time_now_ns_is_fixed_per_decision_and_kept(backend: Backend) {
    let fixed = 1_795_000_000_123_456_789i64;
    let app = spawn_with(backend, |_| {}, Clock::fixed(fixed)).await;
    let bundle = bundle_of(
        &[(
            "clock.rego",
            "package clock\n\nnow := time.now_ns()\n\nsame if time.now_ns() == now\n\nroll := rand.intn(\"dice\", 1000)\n",
        )],
        "1",
        &["clock"],
    );
    assert_eq!(
        app.upload(&app.admin, "clock", bundle).await.status,
        StatusCode::CREATED
    );
    assert_eq!(app.activate(&app.admin, "clock", "1").await.status, StatusCode::OK);
    let r = app.decide(&app.admin, json!({"path": "clock"})).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    assert_eq!(r.body["result"]["now"], json!(fixed));
    assert_eq!(r.body["result"]["same"], true);
    assert_eq!(r.body["captured"]["now_ns"], json!(fixed));
    let roll = r.body["result"]["roll"].clone();
    assert_eq!(
        r.body["captured"]["calls"]["rand.intn([\"dice\",1000])"], roll,
        "{}",
        r.body
    );
    app.stop().await;
}

async fn runaway_policy_times_out_and_the_server_keeps_answering(backend: Backend) {
    let app = spawn_with(backend, |c| c.policy.eval_timeout_ms = 50, Clock::system()).await;
    let bundle = bundle_of(
        &[(
            "spin.rego",
            "package spin\n\nslow := n if {\n\tn := count([x | some a in numbers.range(1, 4000); some b in numbers.range(1, 4000); x := a * b; x < 0])\n}\n\nfast := true\n",
        )],
        "1",
        &["spin"],
    );
    let r = app.upload(&app.admin, "spin", bundle).await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.body);
    assert_eq!(app.activate(&app.admin, "spin", "1").await.status, StatusCode::OK);
    let started = std::time::Instant::now();
    let r = app.decide(&app.admin, json!({"path": "spin/slow"})).await;
    assert_eq!(r.status, StatusCode::UNPROCESSABLE_ENTITY, "{}", r.body);
    assert_eq!(r.code(), "policy_timeout");
    assert!(
        started.elapsed() < std::time::Duration::from_secs(5),
        "the limit cut the evaluation short"
    );
    let r = app.decide(&app.admin, json!({"path": "spin/fast"})).await;
    assert_eq!((r.status, r.body["result"].clone()), (StatusCode::OK, json!(true)));
    app.stop().await;
}

async fn decisions_need_a_deciding_role(backend: Backend) {
    let app = spawn_app(backend).await;
    install_commissioning(&app, &app.admin, "1").await;
    let compliance = app.token(&app.admin, &["compliance"]).await;
    let r = app
        .decide(&compliance, json!({"path": "agento/commissioning/routing"}))
        .await;
    assert_eq!(r.status, StatusCode::FORBIDDEN);
    assert_eq!(r.code(), "forbidden");
    app.stop().await;
}
