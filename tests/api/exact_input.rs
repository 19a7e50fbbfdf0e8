//! What a caller sends is what the policy evaluates and what the evidence
//! records, or it is refused with 400, its own code and the JSON Pointer of
//! the fault: numbers (integers within 64 bits kept digit for digit, nothing
//! expanded from an exponent, serde's number marker refused), duplicate
//! members, text that is not Unicode. And a tenant whose policy is slow
//! holds only its share of the evaluation threads.

use std::time::{Duration, Instant};

use proptest::prelude::*;
use proptest::test_runner::{Config as ProptestConfig, TestCaseError, TestRunner};
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};
use warden::clock::Clock;

use crate::common::*;
use crate::on_both_backends;

on_both_backends!(
    the_number_marker_and_huge_exponents_are_refused_before_evaluation,
    integers_within_64_bits_are_evaluated_and_recorded_digit_for_digit,
    a_result_past_64_bits_is_refused_and_not_recorded,
    duplicates_and_lone_surrogates_are_refused_on_every_recording_route,
    a_slow_tenant_holds_only_its_share_of_evaluation,
    whatever_is_accepted_is_recorded_exactly,
);

const ECHO: &str = "package t\n\nresult := input\n";

async fn echo_app(backend: Backend) -> TestApp {
    let app = spawn_app(backend).await;
    let r = app
        .upload(&app.admin, "echo", bundle_of(&[("echo.rego", ECHO)], "1", &["t"]))
        .await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.body);
    let r = app.activate(&app.admin, "echo", "1").await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    app
}

async fn post(app: &TestApp, path: &str, token: &str, body: &str) -> Reply {
    app.raw(Method::POST, path, token, "application/json", body.as_bytes().to_vec())
        .await
}

/// How many entries this tenant's log holds.
async fn log_size(app: &TestApp, token: &str) -> u64 {
    let r = app.call(Method::GET, "/v1/ledger/checkpoint", Some(token), None).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    r.body["size"]
        .as_u64()
        .or_else(|| r.body["tree_size"].as_u64())
        .expect("checkpoint size")
}

/// The canonical bytes of the entry a receipt points at.
async fn entry_bytes(app: &TestApp, token: &str, receipt: &Value) -> String {
    let index = receipt["index"].as_u64().expect("receipt index");
    let r = app
        .call(Method::GET, &format!("/v1/ledger/entries/{index}"), Some(token), None)
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    r.body["bytes"].as_str().unwrap().to_string()
}

async fn the_number_marker_and_huge_exponents_are_refused_before_evaluation(backend: Backend) {
    let app = echo_app(backend).await;
    let agent = app.token(&app.admin, &["agent"]).await;
    let other = app.tenant("bystander").await;
    let r = other_tenant_echo(&app, &other).await;
    assert_eq!(r.status, StatusCode::OK);
    let before = log_size(&app, &app.admin).await;

    // The 60-byte input that used to expand into a huge integer on a
    // worker: refused at once, with the marker's place.
    let bomb = r#"{"path": "t/result", "input": {"x": {"$serde_json::private::Number": "1e200000000"}}}"#;
    let started = Instant::now();
    let r = post(&app, "/v1/decisions", &agent, bomb).await;
    assert_eq!((r.status, r.code()), (StatusCode::BAD_REQUEST, "reserved_member_name"));
    assert_eq!(r.body["pointer"], "/input/x/$serde_json::private::Number");
    assert!(
        started.elapsed() < Duration::from_secs(2),
        "took {:?}",
        started.elapsed()
    );
    // The same through OPA's data API, and as plain numbers.
    let r = post(
        &app,
        "/v1/data/t/result",
        &agent,
        r#"{"input": {"$serde_json::private::Number": "1e200000000"}}"#,
    )
    .await;
    assert_eq!((r.status, r.code()), (StatusCode::BAD_REQUEST, "reserved_member_name"));
    for (number, code) in [
        ("1e200000000", "number_out_of_range"),
        ("-1e400", "number_out_of_range"),
        ("1e-400", "number_out_of_range"),
        (&format!("1.{}", "5".repeat(200)), "number_too_long"),
    ] {
        let r = post(
            &app,
            "/v1/decisions",
            &agent,
            &format!(r#"{{"path": "t/result", "input": {{"n": [0, {number}]}}}}"#),
        )
        .await;
        assert_eq!((r.status, r.code()), (StatusCode::BAD_REQUEST, code), "{number}");
        assert_eq!(r.body["pointer"], "/input/n/1", "{number}");
    }
    // A data document carrying the marker cannot be uploaded either.
    let data = r#"{"cfg": {"$serde_json::private::Number": "1e200000000"}}"#;
    let r = app
        .upload(
            &app.admin,
            "marked",
            bundle_of(&[("m.rego", "package m\nx := 1\n"), ("m/data.json", data)], "1", &["m"]),
        )
        .await;
    assert_eq!(
        (r.status, r.code()),
        (StatusCode::UNPROCESSABLE_ENTITY, "bundle_data_invalid")
    );

    // Nothing refused reached the ledger, and the server answered the
    // other tenant throughout.
    assert_eq!(log_size(&app, &app.admin).await, before);
    let started = Instant::now();
    let r = other_tenant_echo(&app, &other).await;
    assert_eq!(r.status, StatusCode::OK);
    assert!(started.elapsed() < Duration::from_secs(2));
    app.stop().await;
}

async fn other_tenant_echo(app: &TestApp, admin: &str) -> Reply {
    let r = app
        .decide(admin, json!({"path": "b/result", "input": {"ok": true}}))
        .await;
    if r.status == StatusCode::NOT_FOUND {
        let up = app
            .upload(
                admin,
                "echo",
                bundle_of(&[("b.rego", "package b\n\nresult := input\n")], "1", &["b"]),
            )
            .await;
        assert_eq!(up.status, StatusCode::CREATED, "{}", up.body);
        assert_eq!(app.activate(admin, "echo", "1").await.status, StatusCode::OK);
        return app
            .decide(admin, json!({"path": "b/result", "input": {"ok": true}}))
            .await;
    }
    r
}

async fn integers_within_64_bits_are_evaluated_and_recorded_digit_for_digit(backend: Backend) {
    let app = echo_app(backend).await;
    let input = r#"{"max": 18446744073709551615, "min": -9223372036854775808, "ns": 1733340000123456789, "f": 0.1, "big_float": 1e300}"#;
    let r = post(
        &app,
        "/v1/decisions",
        &app.admin,
        &format!(r#"{{"path": "t/result", "input": {input}}}"#),
    )
    .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    // The policy saw the exact integers (its result is its input).
    let text = String::from_utf8(r.bytes.clone()).unwrap();
    assert!(text.contains("18446744073709551615"), "{text}");
    assert!(text.contains("-9223372036854775808"), "{text}");
    assert!(text.contains("1733340000123456789"), "{text}");
    // The evidence holds them digit for digit, in canonical form.
    let bytes = entry_bytes(&app, &app.admin, &r.body["receipt"]).await;
    assert!(
        bytes.contains(
            r#""input":{"big_float":1e+300,"f":0.1,"max":18446744073709551615,"min":-9223372036854775808,"ns":1733340000123456789}"#
        ),
        "{bytes}"
    );
    // One past 64 bits is refused, named, and not recorded.
    let before = log_size(&app, &app.admin).await;
    let r = post(
        &app,
        "/v1/decisions",
        &app.admin,
        r#"{"path": "t/result", "input": {"f": 123456789012345678901234567890}}"#,
    )
    .await;
    assert_eq!((r.status, r.code()), (StatusCode::BAD_REQUEST, "number_out_of_range"));
    assert_eq!(r.body["pointer"], "/input/f");
    assert!(r.body["detail"].as_str().unwrap().contains("as a string"), "{}", r.body);
    let r = post(
        &app,
        "/v1/decisions",
        &app.admin,
        r#"{"path": "t/result", "input": [18446744073709551616]}"#,
    )
    .await;
    assert_eq!((r.status, r.code()), (StatusCode::BAD_REQUEST, "number_out_of_range"));
    assert_eq!(log_size(&app, &app.admin).await, before);
    app.stop().await;
}

/// The same rule holds for what the policy answers: an integer it computed
/// past 64 bits (an RSA modulus, `bits.lsh(1, 70)`) cannot be recorded
/// exactly, so the decision is refused with the place of the number rather
/// than recorded with a null result.
async fn a_result_past_64_bits_is_refused_and_not_recorded(backend: Backend) {
    let app = spawn_app(backend).await;
    let policy = "package b\n\nshifted := {\"n\": bits.lsh(input.n, 70)}\n";
    let r = app
        .upload(&app.admin, "big", bundle_of(&[("b.rego", policy)], "1", &["b"]))
        .await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.body);
    let r = app.activate(&app.admin, "big", "1").await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    let agent = app.token(&app.admin, &["agent"]).await;
    let before = log_size(&app, &app.admin).await;
    for (path, body) in [
        ("/v1/decisions", r#"{"path": "b/shifted", "input": {"n": 1}}"#),
        ("/v1/data/b/shifted", r#"{"input": {"n": 1}}"#),
    ] {
        let r = post(&app, path, &agent, body).await;
        assert_eq!(
            (r.status, r.code()),
            (StatusCode::UNPROCESSABLE_ENTITY, "policy_eval_error"),
            "{path}: {}",
            r.body
        );
        let detail = r.body["detail"].as_str().unwrap();
        assert!(detail.contains(r#""/n""#) && detail.contains("as a string"), "{detail}");
    }
    assert_eq!(log_size(&app, &app.admin).await, before, "nothing was recorded");
    // Zero shifted is zero: decided and recorded as usual.
    let r = post(
        &app,
        "/v1/decisions",
        &agent,
        r#"{"path": "b/shifted", "input": {"n": 0}}"#,
    )
    .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    assert_eq!(r.body["result"], json!({"n": 0}));
    assert_eq!(log_size(&app, &app.admin).await, before + 1);
    app.stop().await;
}

async fn duplicates_and_lone_surrogates_are_refused_on_every_recording_route(backend: Backend) {
    let app = echo_app(backend).await;
    let before = log_size(&app, &app.admin).await;
    // Every route that records what it receives; the body is refused
    // before the route looks at it.
    let routes: [(Method, &str, &str); 10] = [
        (
            Method::POST,
            "/v1/decisions",
            r#"{"path": "t/result", "input": {"dup": 1, "dup": 2}}"#,
        ),
        (Method::POST, "/v1/data/t/result", r#"{"input": {"dup": 1, "dup": 2}}"#),
        (
            Method::POST,
            "/v1/audit/events",
            r#"{"timestamp": "2026-01-01T00:00:00Z", "action": "a", "result": "success", "resource": {"dup": 1, "dup": 2}}"#,
        ),
        (
            Method::POST,
            "/v0/agents/intent",
            r#"{"execution_id": "x", "kind": "complete", "output": {"dup": 1, "dup": 2}}"#,
        ),
        (
            Method::POST,
            "/v0/agents/step-result",
            r#"{"step_id": "x", "output": {"dup": 1, "dup": 2}}"#,
        ),
        (
            Method::POST,
            "/v0/runners/r1/results",
            r#"{"step_id": "x", "output": {"dup": 1, "dup": 2}}"#,
        ),
        (
            Method::POST,
            "/v0/executions",
            r#"{"agent_id": "a", "input": {"dup": 1, "dup": 2}}"#,
        ),
        (
            Method::POST,
            "/v1/workflows/w/runs",
            r#"{"input": {"dup": 1, "dup": 2}}"#,
        ),
        (
            Method::PUT,
            "/v1/sinks/s",
            r#"{"type": "webhook", "url": "https://example.com", "dup": 1, "dup": 2}"#,
        ),
        (
            Method::PUT,
            "/v1/skills/s/versions/1.0.0",
            r#"{"id": "s", "dup": 1, "dup": 2}"#,
        ),
    ];
    for (method, path, body) in &routes {
        let r = app
            .raw(
                method.clone(),
                path,
                &app.admin,
                "application/json",
                body.as_bytes().to_vec(),
            )
            .await;
        assert_eq!(
            (r.status, r.code()),
            (StatusCode::BAD_REQUEST, "duplicate_member"),
            "{method} {path}: {}",
            r.body
        );
        assert!(
            r.body["pointer"].as_str().unwrap().ends_with("/dup"),
            "{path}: {}",
            r.body
        );
        let lone = body.replacen(r#""dup": 1, "dup": 2"#, r#""s": "\ud800""#, 1);
        let r = app
            .raw(method.clone(), path, &app.admin, "application/json", lone.into_bytes())
            .await;
        assert_eq!(
            (r.status, r.code()),
            (StatusCode::BAD_REQUEST, "invalid_unicode"),
            "{method} {path}: {}",
            r.body
        );
        assert!(
            r.body["pointer"].as_str().unwrap().ends_with("/s"),
            "{path}: {}",
            r.body
        );
    }
    // A workflow definition in JSON too.
    let r = app
        .raw(
            Method::PUT,
            "/v1/workflows/w",
            &app.admin,
            "application/json",
            br#"{"metadata": {"name": "w", "name": "v"}}"#.to_vec(),
        )
        .await;
    assert_eq!((r.status, r.code()), (StatusCode::BAD_REQUEST, "duplicate_member"));
    assert_eq!(r.body["pointer"], "/metadata/name");
    // NDJSON audit lines keep the fault's own code and say which line.
    let ndjson =
        "{\"timestamp\": \"2026-01-01T00:00:00Z\", \"action\": \"a\", \"result\": \"success\"}\n{\"a\": 1, \"a\": 2}\n";
    let r = app
        .raw(
            Method::POST,
            "/v1/audit/events",
            &app.admin,
            "application/x-ndjson",
            ndjson.as_bytes().to_vec(),
        )
        .await;
    assert_eq!((r.status, r.code()), (StatusCode::BAD_REQUEST, "duplicate_member"));
    assert!(r.body["detail"].as_str().unwrap().contains("line 2"), "{}", r.body);
    // A surrogate pair is fine, and recorded as the character it encodes.
    let r = post(
        &app,
        "/v1/decisions",
        &app.admin,
        r#"{"path": "t/result", "input": {"s": "\ud83d\ude00"}}"#,
    )
    .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    let bytes = entry_bytes(&app, &app.admin, &r.body["receipt"]).await;
    assert!(bytes.contains("\"input\":{\"s\":\"😀\"}"), "{bytes}");
    // Nothing refused was recorded: one entry, the accepted decision.
    assert_eq!(log_size(&app, &app.admin).await, before + 1);
    app.stop().await;
}

async fn a_slow_tenant_holds_only_its_share_of_evaluation(backend: Backend) {
    // A policy that counts for as long as it is allowed to.
    let slow = "package s\n\nresult if {\n  every i in numbers.range(1, 5000) {\n    every j in numbers.range(1, 5000) {\n      i + j > 0\n    }\n  }\n}\n";
    let app = spawn_with(
        backend,
        |c| {
            c.policy.eval_timeout_ms = 1_500;
            c.policy.eval_threads = 4;
            c.policy.eval_per_tenant = 2;
            c.policy.eval_queue_ms = 10_000;
        },
        Clock::system(),
    )
    .await;
    let heavy = app.tenant("heavy").await;
    let r = app
        .upload(&heavy, "slow", bundle_of(&[("s.rego", slow)], "1", &["s"]))
        .await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.body);
    assert_eq!(app.activate(&heavy, "slow", "1").await.status, StatusCode::OK);
    let light = app.tenant("light").await;
    assert_eq!(other_tenant_echo(&app, &light).await.status, StatusCode::OK);

    // Eight slow decisions at once: more than the server has workers.
    let mut flood = Vec::new();
    for _ in 0..8 {
        let (client, base, token) = (app.client.clone(), app.base.clone(), heavy.clone());
        flood.push(tokio::spawn(async move {
            client
                .post(format!("{base}/v1/decisions"))
                .bearer_auth(token)
                .json(&json!({"path": "s/result"}))
                .send()
                .await
                .map(|r| r.status())
        }));
    }
    // Once the flood is being evaluated, the other tenant decides, and
    // /health answers, promptly.
    let deadline = Instant::now() + Duration::from_secs(20);
    while in_flight(&app, "POST", "/v1/decisions").await < 2 {
        assert!(Instant::now() < deadline, "the flood never reached the server");
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    let mut worst = Duration::ZERO;
    for _ in 0..5 {
        let started = Instant::now();
        let r = other_tenant_echo(&app, &light).await;
        assert_eq!(r.status, StatusCode::OK, "{}", r.body);
        let h = app.call(Method::GET, "/health", None, None).await;
        assert_eq!(h.status, StatusCode::OK);
        worst = worst.max(started.elapsed());
    }
    assert!(
        worst < Duration::from_millis(1_000),
        "the other tenant waited {worst:?}"
    );
    // The slow ones end with the policy's own time-out, not a hang.
    for f in flood {
        let status = f.await.unwrap().unwrap();
        assert!(
            status == StatusCode::UNPROCESSABLE_ENTITY || status == StatusCode::OK,
            "a slow decision answered {status}"
        );
    }
    app.stop().await;
}

/// A JSON document as a generator sees it: what is written, and what it
/// means (or why it must be refused).
#[derive(Debug, Clone)]
enum Doc {
    Null,
    Bool(bool),
    /// An integer literal; beyond 64 bits it must be refused.
    Int(i128),
    Float(f64),
    Str(String),
    /// A string holding one unpaired surrogate escape.
    Lone(u16),
    Arr(Vec<Doc>),
    /// Members in order; a name may repeat.
    Obj(Vec<(String, Doc)>),
}

impl Doc {
    fn write(&self, escape_all: bool, out: &mut String) {
        match self {
            Doc::Null => out.push_str("null"),
            Doc::Bool(b) => out.push_str(if *b { "true" } else { "false" }),
            Doc::Int(n) => out.push_str(&n.to_string()),
            Doc::Float(f) => out.push_str(&format!("{f:e}")),
            Doc::Str(s) => write_str(s, escape_all, out),
            Doc::Lone(u) => out.push_str(&format!("\"x\\u{u:04x}y\"")),
            Doc::Arr(a) => {
                out.push('[');
                for (i, d) in a.iter().enumerate() {
                    if i > 0 {
                        out.push_str(", ");
                    }
                    d.write(escape_all, out);
                }
                out.push(']');
            }
            Doc::Obj(members) => {
                out.push('{');
                for (i, (k, d)) in members.iter().enumerate() {
                    if i > 0 {
                        out.push(',');
                    }
                    write_str(k, escape_all, out);
                    out.push(':');
                    d.write(escape_all, out);
                }
                out.push('}');
            }
        }
    }

    /// The codes this document must be refused with (any of them may be
    /// the first found), or none.
    fn faults(&self, out: &mut Vec<&'static str>) {
        match self {
            Doc::Int(n) if *n > u64::MAX as i128 || *n < i64::MIN as i128 => out.push("number_out_of_range"),
            Doc::Lone(_) => out.push("invalid_unicode"),
            Doc::Arr(a) => a.iter().for_each(|d| d.faults(out)),
            Doc::Obj(members) => {
                let mut names = std::collections::HashSet::new();
                for (k, d) in members {
                    if !names.insert(k) {
                        out.push("duplicate_member");
                    }
                    d.faults(out);
                }
            }
            _ => {}
        }
    }

    /// What an accepted document means, as serde_json holds it (integers
    /// exact, other numbers as doubles).
    fn meaning(&self) -> Value {
        match self {
            Doc::Null => Value::Null,
            Doc::Bool(b) => Value::Bool(*b),
            Doc::Int(n) if *n >= 0 => json!(*n as u64),
            Doc::Int(n) => json!(*n as i64),
            Doc::Float(f) => json!(f),
            Doc::Str(s) => Value::String(s.clone()),
            Doc::Lone(_) => unreachable!("refused"),
            Doc::Arr(a) => Value::Array(a.iter().map(Doc::meaning).collect()),
            Doc::Obj(members) => Value::Object(members.iter().map(|(k, d)| (k.clone(), d.meaning())).collect()),
        }
    }
}

fn write_str(s: &str, escape_all: bool, out: &mut String) {
    out.push('"');
    for ch in s.chars() {
        match ch {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            c if (c as u32) < 0x20 || (escape_all && !c.is_ascii_alphanumeric()) => {
                let mut units = [0u16; 2];
                for u in c.encode_utf16(&mut units) {
                    out.push_str(&format!("\\u{u:04x}"));
                }
            }
            c => out.push(c),
        }
    }
    out.push('"');
}

fn name() -> impl Strategy<Value = String> {
    prop_oneof![
        Just("a".to_string()),
        Just("b".to_string()),
        "[a-zé😀\\\\\"/~\u{7f}\u{2028}]{0,4}"
    ]
}

fn leaf() -> impl Strategy<Value = Doc> {
    prop_oneof![
        Just(Doc::Null),
        any::<bool>().prop_map(Doc::Bool),
        any::<i64>().prop_map(|n| Doc::Int(n as i128)),
        any::<u64>().prop_map(|n| Doc::Int(n as i128)),
        // Just past either end of 64 bits, and far past.
        prop_oneof![
            Just(u64::MAX as i128 + 1),
            Just(i64::MIN as i128 - 1),
            (1i128..1_000_000).prop_map(|n| n * 1_000_000_000_000_000_000_000_000)
        ]
        .prop_map(Doc::Int),
        any::<f64>()
            .prop_filter("finite", |f| f.is_finite())
            .prop_map(Doc::Float),
        "\\PC{0,8}".prop_map(Doc::Str),
        prop_oneof![0xd800u16..0xdc00, 0xdc00u16..0xe000].prop_map(Doc::Lone),
    ]
}

/// Any document, nested.
fn doc() -> impl Strategy<Value = Doc> {
    leaf().prop_recursive(4, 24, 4, |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..4).prop_map(Doc::Arr),
            prop::collection::vec((name(), inner), 0..4).prop_map(Doc::Obj),
        ]
    })
}

/// An object of scalars: what an audit event's `attributes` may hold.
fn attributes() -> impl Strategy<Value = Doc> {
    prop::collection::vec((name(), leaf()), 0..6).prop_map(Doc::Obj)
}

/// Sends generated inputs through the decision path and the audit path:
/// each is either recorded with exactly its meaning (canonical bytes equal
/// to those of what was sent) or refused with 400 and a code its faults
/// explain.
async fn whatever_is_accepted_is_recorded_exactly(backend: Backend) {
    let app = echo_app(backend).await;
    let mut runner = TestRunner::new(ProptestConfig {
        cases: 96,
        failure_persistence: None,
        ..ProptestConfig::default()
    });
    let handle = tokio::runtime::Handle::current();
    let app = std::sync::Arc::new(app);
    let shared = app.clone();
    let outcome = tokio::task::spawn_blocking(move || {
        runner.run(
            &(doc(), attributes(), any::<bool>()),
            |(input, attributes, escape_all)| {
                let app = shared.clone();
                handle.block_on(async move {
                    check_path(&app, "/v1/decisions", "input", &input, escape_all).await?;
                    check_path(&app, "/v1/audit/events", "attributes", &attributes, escape_all).await
                })
            },
        )
    })
    .await
    .unwrap();
    if let Err(e) = outcome {
        panic!("{e}");
    }
    std::sync::Arc::try_unwrap(app)
        .ok()
        .expect("the only owner")
        .stop()
        .await;
}

async fn check_path(app: &TestApp, path: &str, field: &str, d: &Doc, escape_all: bool) -> Result<(), TestCaseError> {
    let mut text = String::new();
    d.write(escape_all, &mut text);
    let mut faults = Vec::new();
    d.faults(&mut faults);
    let body = if field == "input" {
        format!(r#"{{"path": "t/result", "input": {text}}}"#)
    } else {
        format!(r#"{{"timestamp": "2026-01-01T00:00:00Z", "action": "a", "result": "success", "attributes": {text}}}"#)
    };
    let r = post(app, path, &app.admin, &body).await;
    if faults.is_empty() {
        prop_assert!(r.status.is_success(), "{path} refused {body}: {}", r.body);
        let receipt = if field == "input" {
            r.body["receipt"].clone()
        } else {
            r.body["events"][0]["receipt"].clone()
        };
        let bytes = entry_bytes(app, &app.admin, &receipt).await;
        let expected = String::from_utf8(warden::evidence::canonical::to_vec(&d.meaning())).unwrap();
        prop_assert!(
            bytes.contains(&format!("\"{field}\":{expected}")),
            "{path}: sent {body}\nexpected {field} {expected}\nrecorded {bytes}"
        );
    } else {
        prop_assert_eq!(r.status, StatusCode::BAD_REQUEST, "{} accepted {}", path, body);
        let code = r.body["code"].as_str().unwrap_or_default();
        prop_assert!(faults.contains(&code), "{path}: {code} for {body}, faults {faults:?}");
        prop_assert!(r.body["pointer"].is_string(), "{}", r.body);
    }
    Ok(())
}
