//! Policies as OPA users write them: which rules are tests, and the Data API
//! serving every document path OPA serves. Engine answers themselves are
//! compared with real OPA's in `tests/opa_corpus.rs`.

use reqwest::{Method, StatusCode};
use serde_json::json;

use crate::common::*;
use crate::on_both_backends;

on_both_backends!(
    the_seed_policy_activates_unchanged_and_its_helper_is_a_rule,
    only_test_rules_of_test_files_gate_activation,
    the_data_api_serves_every_document_path,
    builtins_warden_does_not_evaluate_are_refused_at_upload_with_their_place,
    differences_from_opa_are_notices_or_refusals_as_the_tenant_says,
    a_builtin_called_with_the_wrong_number_of_arguments_is_refused,
    template_strings_answer_as_in_opa_and_replay,
);

const SEED_001: &str = include_str!("../fixtures/seed_001_routing.rego");

/// Seed 001's routing policy, byte for byte, has a helper rule named
/// `test_results_within_tolerance`: it is served as a rule, reported as a
/// notice with its line, and blocks nothing.
async fn the_seed_policy_activates_unchanged_and_its_helper_is_a_rule(backend: Backend) {
    let app = spawn_app(backend).await;
    let bundle = bundle_of(&[("routing.rego", SEED_001)], "seed", &["agento/commissioning"]);
    let r = app.upload(&app.admin, "seed", bundle.clone()).await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.body);
    assert_eq!(r.body["tests_passed"], true, "{}", r.body);
    assert_eq!(r.body["tests"], json!([]), "a helper in routing.rego is not a test");
    let notices = r.body["notices"].as_array().expect("notices").clone();
    assert_eq!(notices.len(), 1, "{notices:?}");
    assert_eq!(notices[0]["code"], "test_rule_outside_test_file");
    assert_eq!(notices[0]["file"], "routing.rego");
    assert_eq!(notices[0]["line"], 14, "the line of the rule in the seed's text");
    // The identical upload answers the same notices.
    let again = app.upload(&app.admin, "seed", bundle).await;
    assert_eq!(again.status, StatusCode::OK);
    assert_eq!(again.body["notices"], json!(notices));

    let r = app.activate(&app.admin, "seed", "seed").await;
    assert_eq!(r.status, StatusCode::OK, "activation needs no force: {}", r.body);

    let r = app
        .decide(
            &app.admin,
            json!({"path": "agento/commissioning/routing", "input": ready_input()}),
        )
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    assert_eq!(r.body["allow"], true);
    assert_eq!(r.body["result"]["test_results_within_tolerance"], true);
    let r = app
        .decide(
            &app.admin,
            json!({"path": "agento/commissioning/routing", "input": blocked_input()}),
        )
        .await;
    assert_eq!(r.body["allow"], false);
    assert_eq!(
        r.body["reasons"],
        json!(["punch items still open", "test result outside tolerance"])
    );
    app.stop().await;
}

/// `test_` rules of `*_test.rego` files are tests and gate activation; the
/// same rule elsewhere does not run.
async fn only_test_rules_of_test_files_gate_activation(backend: Backend) {
    let app = spawn_app(backend).await;
    let failing_helper = "package acme.p\n\nallow if input.ok\n\ntest_never if false\n";
    let bundle = bundle_of(&[("p.rego", failing_helper)], "1", &["acme"]);
    let r = app.upload(&app.admin, "acme", bundle).await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.body);
    assert_eq!(r.body["tests_passed"], true);
    assert_eq!(r.body["notices"][0]["line"], 5);
    assert_eq!(app.activate(&app.admin, "acme", "1").await.status, StatusCode::OK);

    let bundle = bundle_of(
        &[
            ("p.rego", "package acme.p\n\nallow if input.ok\n"),
            ("p_test.rego", failing_helper.replace("acme.p", "acme.p_test").as_str()),
        ],
        "2",
        &["acme"],
    );
    let r = app.upload(&app.admin, "acme", bundle).await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.body);
    assert_eq!(r.body["tests_passed"], false);
    assert_eq!(r.body["tests"][0]["name"], "test_never");
    assert!(r.body.get("notices").is_none(), "{}", r.body);
    let r = app.activate(&app.admin, "acme", "2").await;
    assert_eq!((r.status, r.code()), (StatusCode::CONFLICT, "bundle_tests_failed"));
    app.stop().await;
}

/// Packages, rules, prefixes of ref-head rules, members of partial sets and
/// objects, keys that are not identifiers, and base documents, by `POST`
/// and by `GET`; each answer is a recorded decision.
async fn the_data_api_serves_every_document_path(backend: Backend) {
    let app = spawn_app(backend).await;
    let policy = r#"package acme.gate

default allow := false

allow if input.user == "alice"

deny contains "no owner" if not input.owner

obligations.notify contains team if {
	some team in input.teams
}

obligations.retain_days := 30

limits[name] := n if {
	some name, n in data.acme.cfg.limits
}
"#;
    let bundle = bundle_of(
        &[
            ("gate.rego", policy),
            ("acme/cfg/data.json", r#"{"limits": {"a.b": 3, "c": 4}}"#),
        ],
        "1",
        &["acme"],
    );
    let r = app.upload(&app.admin, "acme", bundle).await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.body);
    assert_eq!(app.activate(&app.admin, "acme", "1").await.status, StatusCode::OK);
    let input = json!({"input": {"user": "alice", "teams": ["sre", "sec"]}});

    let post = |path: &str| {
        let path = format!("/v1/data/{path}");
        let input = input.clone();
        let app = &app;
        async move { app.call(Method::POST, &path, Some(&app.admin), Some(input)).await }
    };
    let r = post("acme/gate/obligations").await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    assert_eq!(r.body["result"], json!({"notify": ["sec", "sre"], "retain_days": 30}));
    let r = post("acme/gate/obligations/notify").await;
    assert_eq!(r.body["result"], json!(["sec", "sre"]));
    let r = post("acme/gate/deny/no%20owner").await;
    assert_eq!(r.body["result"], "no owner", "a member of a partial set: {}", r.body);
    let r = post("acme/gate/deny/someone").await;
    assert_eq!(r.status, StatusCode::OK);
    assert!(r.body.get("result").is_none(), "not a member: undefined: {}", r.body);
    let r = post("acme/gate/limits/a.b").await;
    assert_eq!(r.body["result"], 3, "a key that is not an identifier: {}", r.body);
    let r = post("acme/cfg/limits/c").await;
    assert_eq!(r.body["result"], 4, "a base document: {}", r.body);
    let r = post("acme").await;
    assert_eq!(r.body["result"]["gate"]["allow"], true, "{}", r.body);
    assert_eq!(r.body["result"]["cfg"]["limits"]["c"], 4, "{}", r.body);

    // GET, with the input in the query string as OPA takes it.
    let q = url_encode(&json!({"user": "alice"}).to_string());
    let r = app
        .call(
            Method::GET,
            &format!("/v1/data/acme/gate/allow?input={q}"),
            Some(&app.admin),
            None,
        )
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    assert_eq!(r.body["result"], true);
    assert!(r.body["decision_id"].as_str().is_some_and(|d| d.starts_with("dec_")));
    let r = app
        .call(Method::GET, "/v1/data/acme/gate/allow", Some(&app.admin), None)
        .await;
    assert_eq!(r.body["result"], false, "no input: the default");

    // ?provenance and ?metrics, as OPA names them.
    let r = app
        .call(
            Method::GET,
            "/v1/data/acme/gate/allow?provenance&metrics",
            Some(&app.admin),
            None,
        )
        .await;
    assert_eq!(r.body["provenance"]["bundles"]["acme"]["revision"], "1", "{}", r.body);
    assert!(
        r.body["metrics"]["timer_rego_query_eval_ns"].as_u64().is_some(),
        "{}",
        r.body
    );

    // A bad query input is refused, saying what to fix.
    let r = app
        .call(
            Method::GET,
            "/v1/data/acme/gate/allow?input=%7Bnope",
            Some(&app.admin),
            None,
        )
        .await;
    assert_eq!((r.status, r.code()), (StatusCode::BAD_REQUEST, "malformed_json"));
    // Reading the Data API is deciding: a token without the role is refused.
    let reader = app.token(&app.admin, &["auditor"]).await;
    let r = app
        .call(Method::GET, "/v1/data/acme/gate/allow", Some(&reader), None)
        .await;
    assert_eq!((r.status, r.code()), (StatusCode::FORBIDDEN, "forbidden"));
    app.stop().await;
}

/// `http.send` (refused: it would reach the network) and a builtin Warden
/// lacks are refused at upload, naming the builtin, the file and the line,
/// even on a path no evaluation at upload reaches.
async fn builtins_warden_does_not_evaluate_are_refused_at_upload_with_their_place(backend: Backend) {
    let app = spawn_app(backend).await;
    for (call, name, why) in [
        (
            "http.send({\"method\": \"get\", \"url\": input.url})",
            "http.send",
            "network",
        ),
        ("net.lookup_ip_addr(input.host)", "net.lookup_ip_addr", "DNS"),
        ("re_match(\"a+\", input.s)", "re_match", "deprecated"),
    ] {
        let policy = format!(
            "package acme.p\n\n# {name}(x) in a comment is fine\nallow if {{\n\tinput.never\n\tx := {call}\n}}\n"
        );
        let r = app
            .upload(&app.admin, "acme", bundle_of(&[("p.rego", &policy)], "1", &["acme"]))
            .await;
        assert_eq!(
            (r.status, r.code()),
            (StatusCode::UNPROCESSABLE_ENTITY, "unsupported_builtin"),
            "{}",
            r.body
        );
        let detail = r.body["detail"].as_str().unwrap();
        assert!(
            detail.starts_with(&format!("p.rego:6: {name} is not available")),
            "{detail}"
        );
        assert!(detail.contains(why), "{detail}");
    }
    let r = app.call(Method::GET, "/v1/bundles", Some(&app.admin), None).await;
    assert_eq!(r.body, json!([]), "nothing was stored");
    app.stop().await;
}

/// A bundle Warden may evaluate otherwise than OPA: each place is an
/// upload notice by default; a tenant that sets `rego_differences` to
/// `refuse` gets 422 `rego_difference` naming them, and nothing is stored.
/// Another tenant's setting is its own; only an admin changes it.
async fn differences_from_opa_are_notices_or_refusals_as_the_tenant_says(backend: Backend) {
    let app = spawn_app(backend).await;
    let policy = "package acme.p\n\nlimit := 123456789012345678901234567890\nallow if \"admin\" in input.roles\n# METADATA\n# schemas:\n#   - input: {\"type\": \"object\"}\ncfg := rego.metadata.rule()\n";
    let r = app
        .upload(&app.admin, "acme", bundle_of(&[("p.rego", policy)], "1", &["acme"]))
        .await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.body);
    let found: Vec<(String, i64)> = r.body["notices"]
        .as_array()
        .unwrap()
        .iter()
        .map(|n| (n["code"].as_str().unwrap().to_string(), n["line"].as_i64().unwrap()))
        .collect();
    assert_eq!(
        found,
        vec![("inexact_number".to_string(), 3), ("schema_annotation".to_string(), 5)],
        "{}",
        r.body
    );

    let r = app.call(Method::GET, "/v1/settings", Some(&app.admin), None).await;
    assert_eq!(r.body, json!({"require_signatures": false, "rego_differences": "warn"}));
    let compliance = app.token(&app.admin, &["compliance"]).await;
    let r = app
        .call(
            Method::PUT,
            "/v1/settings",
            Some(&compliance),
            Some(json!({"rego_differences": "refuse"})),
        )
        .await;
    assert_eq!(r.status, StatusCode::FORBIDDEN, "{}", r.body);
    let r = app
        .call(
            Method::PUT,
            "/v1/settings",
            Some(&app.admin),
            Some(json!({"rego_differences": "sometimes"})),
        )
        .await;
    assert_eq!(
        (r.status, r.code()),
        (StatusCode::BAD_REQUEST, "invalid_field"),
        "{}",
        r.body
    );
    let r = app
        .call(
            Method::PUT,
            "/v1/settings",
            Some(&app.admin),
            Some(json!({"rego_differences": "refuse"})),
        )
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    assert_eq!(
        r.body,
        json!({"require_signatures": false, "rego_differences": "refuse"}),
        "a field left out keeps its value"
    );

    let r = app
        .upload(&app.admin, "acme", bundle_of(&[("p.rego", policy)], "2", &["acme"]))
        .await;
    assert_eq!(
        (r.status, r.code()),
        (StatusCode::UNPROCESSABLE_ENTITY, "rego_difference"),
        "{}",
        r.body
    );
    let detail = r.body["detail"].as_str().unwrap();
    assert!(detail.contains("p.rego:3: inexact_number"), "{detail}");
    assert!(
        detail.contains("p.rego:5: schema_annotation: a schemas annotation"),
        "{detail}"
    );
    assert_eq!(app.stored_versions(&app.admin).await, 1, "revision 2 was not stored");
    let clean = "package acme.p\n\nallow if \"admin\" in input.roles\n";
    let r = app
        .upload(&app.admin, "acme", bundle_of(&[("p.rego", clean)], "3", &["acme"]))
        .await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.body);
    assert!(r.body.get("notices").is_none(), "no notices: {}", r.body);

    // Another tenant keeps its own setting.
    let other = app.tenant("other").await;
    let r = app
        .upload(&other, "acme", bundle_of(&[("p.rego", policy)], "1", &["acme"]))
        .await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.body);
    app.stop().await;
}

/// A builtin called with another number of arguments than it takes, or
/// given a literal of a kind it does not take, or a rule that depends on
/// itself, is refused at upload, as OPA refuses the module, with its file
/// and line, and nothing is stored.
async fn a_builtin_called_with_the_wrong_number_of_arguments_is_refused(backend: Backend) {
    let app = spawn_app(backend).await;
    let refusals: [(&[(&str, &str)], &str); 3] = [
        (
            &[(
                "p.rego",
                "package acme.p\n\nallow if input.ok\n\nlabel := concat(\",\")\n",
            )],
            "p.rego:5: concat takes 2 arguments, not 1",
        ),
        // A rule that depends on itself, here through a rule of another
        // file and a negation, though nothing evaluates it: named as OPA
        // names the cycle.
        (
            &[
                (
                    "p.rego",
                    "package acme.p\n\nallow if input.ok\n\nescalate if not data.acme.q.quiet\n",
                ),
                ("q.rego", "package acme.q\n\nquiet if data.acme.p.escalate\n"),
            ],
            "p.rego:5: rego_recursion_error: rule data.acme.p.escalate is recursive: \
             data.acme.p.escalate -> data.acme.q.quiet -> data.acme.p.escalate",
        ),
        // A literal of a kind the builtin does not take: OPA's type checker.
        (
            &[("p.rego", "package acme.p\n\nallow if input.ok\n\nlimit := count(12)\n")],
            "p.rego:5: rego_type_error: count: invalid argument(s): argument 1 is a number, where count \
             takes a string",
        ),
    ];
    for (files, detail) in refusals {
        let r = app.upload(&app.admin, "acme", bundle_of(files, "1", &["acme"])).await;
        assert_refused_as_opa_refuses(&r, detail);
    }
    assert_eq!(app.stored_versions(&app.admin).await, 0);
    app.stop().await;
}

/// A template string (`$"…{expr}…"`, OPA 1.x) is evaluated as OPA
/// evaluates it, in a decision and in its replay; one OPA cannot read is
/// refused at upload with its file and line, and nothing is stored.
async fn template_strings_answer_as_in_opa_and_replay(backend: Backend) {
    let app = spawn_app(backend).await;
    let policy = "package acme.p\n\n\
                  default reason := $\"no decision {1.0}\"\n\n\
                  reason := $\"{input.agent} may call {input.tool} ({count(input.args)} args, {input.nope})\" if input.tool\n\n\
                  lines contains $`{i}: {a}` if some i, a in input.args\n";
    let r = app
        .upload(&app.admin, "acme", bundle_of(&[("p.rego", policy)], "1", &["acme"]))
        .await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.body);
    assert_eq!(app.activate(&app.admin, "acme", "1").await.status, StatusCode::OK);
    let input = json!({"agent": "ops-bot", "tool": "deploy", "args": ["eu", {"dry": true}]});
    let d = app.decide(&app.admin, json!({"path": "acme/p", "input": input})).await;
    assert_eq!(d.status, StatusCode::OK, "{}", d.body);
    assert_eq!(
        d.body["result"],
        json!({
            "reason": "ops-bot may call deploy (2 args, <undefined>)",
            "lines": ["0: eu", "1: {\"dry\": true}"],
        })
    );
    let d2 = app
        .decide(&app.admin, json!({"path": "acme/p/reason", "input": {}}))
        .await;
    assert_eq!(d2.body["result"], json!("no decision 1.0"), "a number keeps its text");
    let auditor = app.token(&app.admin, &["auditor"]).await;
    let id = d.body["decision_id"].as_str().unwrap();
    let r = app.replay(&auditor, id).await;
    assert_eq!(
        (r.status, r.body["match"].clone()),
        (StatusCode::OK, json!(true)),
        "{}",
        r.body
    );

    for (source, detail) in [
        (
            "package acme.p\n\nallow if input.ok\n\nmsg := $\"hello {input.name\"\n",
            "p.rego:5: rego_parse_error: expected } to end template string expression",
        ),
        (
            "package acme.p\n\nmsg := $\"{}\"\n",
            "p.rego:3: rego_parse_error: invalid template-string expression",
        ),
    ] {
        let r = app
            .upload(&app.admin, "acme", bundle_of(&[("p.rego", source)], "2", &["acme"]))
            .await;
        assert_refused_as_opa_refuses(&r, detail);
    }
    assert_eq!(app.stored_versions(&app.admin).await, 1);
    app.stop().await;
}

/// The upload was refused with 422 `rego_compile_error` and this detail,
/// which says OPA refuses the module too.
fn assert_refused_as_opa_refuses(r: &Reply, detail: &str) {
    assert_eq!(
        (r.status, r.code(), r.body["detail"].as_str()),
        (
            StatusCode::UNPROCESSABLE_ENTITY,
            "rego_compile_error",
            Some(format!("{detail} (OPA refuses this module too)").as_str())
        ),
        "{}",
        r.body
    );
}

fn url_encode(s: &str) -> String {
    s.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => (b as char).to_string(),
            _ => format!("%{b:02X}"),
        })
        .collect()
}
