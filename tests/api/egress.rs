//! Tenants' sinks, attacked: pointed at the server's own network, at the
//! cloud metadata address, through a redirect, with bad URLs, borrowing
//! the server's AWS credentials or librdkafka's file and plugin settings,
//! reading the operator's sinks and other tenants' metrics, reading their
//! secrets from the database, and creating sinks without end. Every peer
//! here is on loopback: a refusal is proved by a fake that counts every
//! request it gets, and never by sending anything elsewhere.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use axum::http::{HeaderMap, StatusCode as AxumStatus};
use base64::Engine as _;
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};
use warden::clock::Clock;
use warden::config::{Config, SinkConfig, SinkFilter};

use crate::common::*;
use crate::on_both_backends;
use crate::peers::free_port;
use crate::peers::server::Server;
use crate::peers::webhook::receiver;

on_both_backends!(
    a_tenant_sink_reaches_no_loopback_private_or_metadata_address,
    secrets_are_encrypted_at_rest_and_survive_rotation,
    a_tenant_has_at_most_its_cap_of_sinks,
);

/// The operator's allowlist the tests' loopback peers need.
fn allow_loopback(c: &mut Config) {
    c.tenant_sinks.allow_networks = vec!["127.0.0.0/8".into(), "::1/128".into()];
}

/// A peer that counts every request, answering `status` (with a
/// `Location` for a redirect).
async fn counter(status: u16, location: Option<String>) -> (Server, Arc<AtomicUsize>) {
    let hits = Arc::new(AtomicUsize::new(0));
    let seen = hits.clone();
    let app = axum::Router::new().fallback(move || {
        let seen = seen.clone();
        let location = location.clone();
        async move {
            seen.fetch_add(1, Ordering::SeqCst);
            let mut headers = HeaderMap::new();
            if let Some(l) = location {
                headers.insert("location", l.parse().unwrap());
            }
            (AxumStatus::from_u16(status).unwrap(), headers, "{}")
        }
    });
    (Server::start(app, 0).await, hits)
}

fn secret(seed: u8) -> String {
    format!("whsec_{}", base64::engine::general_purpose::STANDARD.encode([seed; 32]))
}

fn event(n: u32) -> Value {
    json!({"timestamp": "2026-04-15T09:23:41.842Z", "workflow_id": "wf-1", "activity_id": format!("step-{n}"),
        "action": "document_read", "result": "success"})
}

async fn submit(app: &TestApp, token: &str, n: u32) -> String {
    let r = app
        .call(Method::POST, "/v1/audit/events", Some(token), Some(json!([event(n)])))
        .await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.body);
    r.body["events"][0]["event_id"].as_str().unwrap().to_string()
}

async fn put(app: &TestApp, token: &str, name: &str, body: Value) -> Reply {
    app.call(Method::PUT, &format!("/v1/sinks/{name}"), Some(token), Some(body))
        .await
}

/// Writes a tenant sink's stored row as it is given (bypassing the API's
/// checks and sealing), as an older version of Warden may have left it.
async fn write_row(app: &TestApp, tenant_id: &str, name: &str, config: &str) {
    use warden::store::{Change, SinkPut, SinkWrite, TenantSinkRow};
    let existing = app.state.store.tenant_sink(tenant_id, name).await.unwrap();
    let row = TenantSinkRow {
        tenant_id: tenant_id.into(),
        name: name.into(),
        config: config.into(),
        version: existing.as_ref().map(|e| e.version + 1).unwrap_or(1),
        created_at: 0,
        updated_at: 0,
    };
    let change = Change {
        sink: Some(SinkWrite::Put(SinkPut {
            row,
            cursor_key: format!("{tenant_id}/{name}"),
            start_at: None,
            max_sinks: 100,
        })),
        ..Change::default()
    };
    app.state.ledger.append_with(Vec::new(), change).await.unwrap();
}

/// The tenant's view of sink `name`.
async fn view(app: &TestApp, token: &str, name: &str) -> Value {
    let r = app.call(Method::GET, "/v1/sinks", Some(token), None).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    r.body
        .as_array()
        .unwrap()
        .iter()
        .find(|v| v["name"] == name)
        .cloned()
        .unwrap_or(Value::Null)
}

/// Waits until sink `name` shows a last error.
async fn until_error(app: &TestApp, token: &str, name: &str) -> Value {
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let v = view(app, token, name).await;
        if v["last_error"].is_string() || Instant::now() > deadline {
            return v;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

fn assert_refused(r: &Reply, field: &str, needle: &str) {
    assert_eq!(r.status, StatusCode::BAD_REQUEST, "{}", r.body);
    assert_eq!(r.code(), "invalid_sink", "{}", r.body);
    let detail = r.body["detail"].as_str().unwrap();
    assert!(detail.starts_with(field), "{field} named first in {detail:?}");
    assert!(detail.contains(needle), "{needle} in {detail:?}");
}

async fn a_tenant_sink_reaches_no_loopback_private_or_metadata_address(backend: Backend) {
    let app = spawn_app(backend).await;
    let (_, acme) = app.tenant_and_id("acme").await;
    let writer = app.token(&acme, &["orchestrator"]).await;
    let (peer, hits) = counter(200, None).await;
    let s = secret(1);

    // Addresses written in the URL are refused at once, naming the field.
    for (body, field, why) in [
        (
            json!({"type": "webhook", "url": peer.url, "secrets": [s]}),
            "url",
            "127.0.0.1 is loopback",
        ),
        (
            json!({"type": "webhook", "url": "http://169.254.169.254/latest/meta-data/", "secrets": [s]}),
            "url",
            "169.254.169.254 is link-local",
        ),
        (
            json!({"type": "webhook", "url": "http://10.0.0.7:8080/", "secrets": [s]}),
            "url",
            "10.0.0.7 is private",
        ),
        (
            json!({"type": "webhook", "url": "http://0x7f.1/", "secrets": [s]}),
            "url",
            "127.0.0.1 is loopback",
        ),
        (
            json!({"type": "webhook", "url": "http://[::ffff:169.254.169.254]/", "secrets": [s]}),
            "url",
            "link-local",
        ),
        (
            json!({"type": "datadog", "url": "http://192.168.1.20", "api_key": "k"}),
            "url",
            "private",
        ),
        (
            json!({"type": "splunk_hec", "url": "https://[fd00::5]:8088", "token": "t"}),
            "url",
            "private",
        ),
        (
            json!({"type": "kafka", "brokers": "kafka.example.com:9092,100.64.3.3:9092", "topic": "audit"}),
            "brokers",
            "100.64.3.3 is shared address space",
        ),
    ] {
        let r = put(&app, &acme, "hook", body).await;
        assert_refused(&r, field, why);
    }
    assert!(view(&app, &acme, "hook").await.is_null(), "nothing was created");

    // A name is checked where it is resolved, when the sink connects:
    // `localhost` is accepted, then delivers nothing.
    let url = format!("http://localhost:{}/", peer.port);
    let r = put(
        &app,
        &acme,
        "hook",
        json!({"type": "webhook", "url": url, "secrets": [s]}),
    )
    .await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.body);
    submit(&app, &writer, 1).await;
    let v = until_error(&app, &acme, "hook").await;
    let error = v["last_error"].as_str().unwrap_or_default();
    assert!(
        error.starts_with("egress refused: ") && error.ends_with(" is loopback"),
        "{v}"
    );
    assert!(v["lag"].as_u64().unwrap() > 0, "nothing counted as delivered: {v}");
    // The attempt that reported the refusal has ended: it never connected.
    assert_eq!(hits.load(Ordering::SeqCst), 0, "the peer on loopback received nothing");
    app.stop().await;
    peer.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_redirect_is_not_followed() {
    // Loopback allowed, so only the redirect policy stands between the
    // sink and the redirect's target.
    let app = spawn_with(Backend::Sqlite, allow_loopback, Clock::system()).await;
    let (_, acme) = app.tenant_and_id("acme").await;
    let writer = app.token(&acme, &["orchestrator"]).await;
    let (target, target_hits) = counter(200, None).await;
    let (redirector, redirector_hits) = counter(307, Some(format!("{}/", target.url))).await;
    let r = put(
        &app,
        &acme,
        "hook",
        json!({"type": "webhook", "url": format!("{}/hook", redirector.url), "secrets": [secret(2)]}),
    )
    .await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.body);
    submit(&app, &writer, 1).await;
    let v = until_error(&app, &acme, "hook").await;
    assert!(v["last_error"].as_str().unwrap_or_default().contains("redirect"), "{v}");
    assert_eq!(v["dead_letters"], 0, "the events wait for the URL to be fixed: {v}");
    assert!(redirector_hits.load(Ordering::SeqCst) >= 1);
    assert_eq!(
        target_hits.load(Ordering::SeqCst),
        0,
        "the redirect's target got nothing"
    );
    app.stop().await;
    redirector.stop().await;
    target.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn urls_and_broker_lists_that_are_not_are_refused() {
    let app = spawn_with(
        Backend::Sqlite,
        |c| {
            allow_loopback(c);
            c.tenant_sinks.allow_cloudwatch_endpoint = true;
        },
        Clock::system(),
    )
    .await;
    let s = secret(3);
    for (body, field, needle) in [
        (
            json!({"type": "webhook", "url": "ftp://127.0.0.1/x", "secrets": [s]}),
            "url",
            "ftp",
        ),
        (
            json!({"type": "webhook", "url": "file:///etc/passwd", "secrets": [s]}),
            "url",
            "file",
        ),
        (
            json!({"type": "webhook", "url": "not a url", "secrets": [s]}),
            "url",
            "not a URL",
        ),
        (
            json!({"type": "datadog", "url": "gopher://127.0.0.1", "api_key": "k"}),
            "url",
            "gopher",
        ),
        (
            json!({"type": "splunk_hec", "url": "", "token": "t"}),
            "url",
            "not a URL",
        ),
        (
            json!({"type": "cloudwatch_logs", "region": "eu-west-1", "endpoint": "file:///etc/passwd",
                "log_group": "g", "log_stream": "s", "access_key_id": "AKID", "secret_access_key": "x"}),
            "endpoint",
            "file",
        ),
        (
            json!({"type": "cloudwatch_logs", "region": "evil.example/#", "log_group": "g", "log_stream": "s",
                "access_key_id": "AKID", "secret_access_key": "x"}),
            "region",
            "AWS region",
        ),
        (
            json!({"type": "kafka", "brokers": "not a broker list", "topic": "audit"}),
            "brokers",
            "host:port",
        ),
        (
            json!({"type": "kafka", "brokers": "127.0.0.1:99999", "topic": "audit"}),
            "brokers",
            "host:port",
        ),
        (
            json!({"type": "kafka", "brokers": "", "topic": "audit"}),
            "brokers",
            "no brokers",
        ),
    ] {
        let r = put(&app, &app.admin, "bad", body).await;
        assert_refused(&r, field, needle);
    }
    let r = app.call(Method::GET, "/v1/sinks", Some(&app.admin), None).await;
    assert_eq!(r.body.as_array().map(Vec::len), Some(0), "{}", r.body);

    // The configuration file's sinks are held to the same shape: the
    // server refuses to start.
    let mut config = app.config().clone();
    config.sinks = vec![SinkConfig::Webhook {
        name: "ops".into(),
        url: "file:///etc/passwd".into(),
        secrets: vec![s],
        concurrency: 1,
        filter: SinkFilter::default(),
        mask: vec![],
        timeout_ms: 100,
    }];
    let err = config.validate().unwrap_err();
    assert!(err.to_string().contains("ops.url"), "{err}");
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cloudwatch_sinks_bring_their_own_keys_and_no_endpoint_unless_allowed() {
    let app = spawn_app(Backend::Sqlite).await;
    let base = json!({"type": "cloudwatch_logs", "region": "eu-west-1", "log_group": "g", "log_stream": "s"});
    let with = |extra: Value| {
        let mut b = base.clone();
        b.as_object_mut().unwrap().extend(extra.as_object().unwrap().clone());
        b
    };
    // Without keys it would sign with the server's own credentials.
    let r = put(&app, &app.admin, "cw", base.clone()).await;
    assert_refused(&r, "access_key_id", "its own");
    let r = put(&app, &app.admin, "cw", with(json!({"secret_access_key": "x"}))).await;
    assert_eq!(r.status, StatusCode::BAD_REQUEST, "{}", r.body);
    // Another endpoint is the operator's to allow.
    let (peer, hits) = counter(200, None).await;
    let keys = json!({"access_key_id": "AKIDTENANT", "secret_access_key": "tenant-secret"});
    let mut body = with(keys.clone());
    body["endpoint"] = json!(peer.url);
    let r = put(&app, &app.admin, "cw", body.clone()).await;
    assert_refused(&r, "endpoint", "allow_cloudwatch_endpoint");
    app.stop().await;

    // Allowed, an endpoint is still held to the egress policy.
    let app = spawn_with(
        Backend::Sqlite,
        |c| c.tenant_sinks.allow_cloudwatch_endpoint = true,
        Clock::system(),
    )
    .await;
    let r = put(&app, &app.admin, "cw", body.clone()).await;
    assert_refused(&r, "endpoint", "127.0.0.1 is loopback");
    body["endpoint"] = json!(format!("http://localhost:{}", peer.port));
    let r = put(&app, &app.admin, "cw", body).await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.body);
    let writer = app.token(&app.admin, &["orchestrator"]).await;
    submit(&app, &writer, 1).await;
    let v = until_error(&app, &app.admin, "cw").await;
    assert!(
        v["last_error"].as_str().unwrap_or_default().contains("egress refused"),
        "{v}"
    );
    assert_eq!(hits.load(Ordering::SeqCst), 0, "nothing reached the endpoint");
    app.stop().await;
    peer.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kafka_properties_come_from_an_allowlist() {
    let app = spawn_with(
        Backend::Sqlite,
        |c| {
            allow_loopback(c);
            c.tenant_sinks.kafka_properties = vec!["statistics.interval.ms".into()];
        },
        Clock::system(),
    )
    .await;
    let kafka = |props: Value| {
        json!({"type": "kafka", "brokers": "127.0.0.1:9", "topic": "audit",
        "properties": props, "from": "now", "filter": {"actions": ["never"]}})
    };
    for (prop, value) in [
        ("ssl.ca.location", "/etc/warden/keys"),
        ("ssl.keystore.location", "/var/lib/warden/keys/ledger-ed25519.pem"),
        ("plugin.library.paths", "/tmp/evil.so"),
        ("sasl.kerberos.kinit.cmd", "sh -c 'id'"),
        ("sasl.oauthbearer.token.endpoint.url", "http://169.254.169.254/"),
        ("debug", "all"),
        ("acks", "1"),
    ] {
        let r = put(&app, &app.admin, "k", kafka(json!({prop: value}))).await;
        assert_refused(
            &r,
            &format!("properties.{prop}"),
            "not a property a tenant's Kafka sink may set",
        );
    }
    let r = put(&app, &app.admin, "k", kafka(json!({"sasl.mechanism": "GSSAPI"}))).await;
    assert_refused(&r, "properties.sasl.mechanism", "SCRAM");
    // Listed ones, and what the operator added, are taken.
    let r = put(
        &app,
        &app.admin,
        "k",
        kafka(
            json!({"security.protocol": "sasl_plaintext", "sasl.mechanism": "SCRAM-SHA-512",
            "sasl.username": "u", "sasl.password": "kafka-pass", "compression.type": "lz4",
            "statistics.interval.ms": "60000"}),
        ),
    )
    .await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.body);
    assert_eq!(r.body["config"]["properties"]["sasl.password"], "***");

    // A row from before the allowlist, naming a plugin to load: stored as it
    // was, it is refused when loaded, shown disabled with why, and not run.
    let row = app.state.store.tenant_sinks().await.unwrap().remove(0);
    let old = json!({"type": "kafka", "name": "legacy", "brokers": "127.0.0.1:9", "topic": "audit",
        "properties": {"plugin.library.paths": "/tmp/evil.so"}})
    .to_string();
    write_row(&app, &row.tenant_id, "legacy", &old).await;
    // The operator narrows the list: the sink that used the extra property
    // stops too.
    let app = app.restart_with(|c| c.tenant_sinks.kafka_properties.clear()).await;
    for (name, needle) in [("legacy", "plugin.library.paths"), ("k", "statistics.interval.ms")] {
        let v = view(&app, &app.admin, name).await;
        assert_eq!(v["enabled"], false, "{v}");
        assert!(v["disabled_reason"].as_str().unwrap().contains(needle), "{v}");
    }
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn other_tenants_see_the_operators_sinks_by_name_type_and_status_only() {
    let (refuser, _) = counter(400, None).await;
    let operator_sinks = vec![
        SinkConfig::Webhook {
            name: "ops-hook".into(),
            url: "http://127.0.0.1:9/operator-hook-path".into(),
            secrets: vec![secret(4)],
            concurrency: 1,
            filter: SinkFilter::default(),
            mask: vec![],
            timeout_ms: 200,
        },
        SinkConfig::Kafka {
            name: "ops-kafka".into(),
            brokers: "127.0.0.1:9".into(),
            topic: "audit".into(),
            properties: [("sasl.username".to_string(), "operator-kafka-user".to_string())].into(),
            filter: SinkFilter {
                actions: vec!["never".into()],
                ..SinkFilter::default()
            },
            mask: vec![],
            timeout_ms: 200,
        },
        SinkConfig::CloudwatchLogs {
            name: "ops-cw".into(),
            region: "eu-west-1".into(),
            endpoint: Some("http://127.0.0.1:9".into()),
            log_group: "operator-group".into(),
            log_stream: "s".into(),
            access_key_id: Some("AKIAOPERATORKEY".into()),
            secret_access_key: Some("operator-secret".into()),
            filter: SinkFilter {
                actions: vec!["never".into()],
                ..SinkFilter::default()
            },
            mask: vec![],
            timeout_ms: 200,
        },
        SinkConfig::Webhook {
            name: "ops-refuser".into(),
            url: format!("{}/operator-refuser-path", refuser.url),
            secrets: vec![secret(4)],
            concurrency: 1,
            filter: SinkFilter::default(),
            mask: vec![],
            timeout_ms: 1000,
        },
    ];
    let app = spawn_with(Backend::Sqlite, |c| c.sinks = operator_sinks, Clock::system()).await;
    let (_, acme) = app.tenant_and_id("acme").await;
    let auditor = app.token(&acme, &["auditor"]).await;
    let writer = app.token(&acme, &["orchestrator"]).await;
    submit(&app, &writer, 1).await;
    // The operator's webhook fails on its dead port: an error to show.
    let v = until_error(&app, &auditor, "ops-hook").await;
    assert_eq!(v["last_error"], "delivery failed; the operator has the details", "{v}");
    let r = app.call(Method::GET, "/v1/sinks", Some(&auditor), None).await;
    let text = r.body.to_string();
    for leak in [
        "127.0.0.1:9",
        "operator-hook-path",
        "operator-kafka-user",
        "AKIAOPERATORKEY",
        "operator-group",
        "operator-secret",
    ] {
        assert!(!text.contains(leak), "{leak} shown to another tenant: {text}");
    }
    let names: Vec<(&str, &str, &str)> = r
        .body
        .as_array()
        .unwrap()
        .iter()
        .map(|v| {
            (
                v["name"].as_str().unwrap(),
                v["kind"].as_str().unwrap(),
                v["config"]["type"].as_str().unwrap(),
            )
        })
        .collect();
    assert_eq!(
        names,
        [
            ("ops-hook", "webhook", "webhook"),
            ("ops-kafka", "kafka", "kafka"),
            ("ops-cw", "cloudwatch_logs", "cloudwatch_logs"),
            ("ops-refuser", "webhook", "webhook"),
        ]
    );
    assert!(r.body[0]["lag"].is_u64() && r.body[0]["delivered_since_start"].is_null());
    // Its event the operator's peer refused for good: counted, and listed
    // without what the peer said.
    let deadline = Instant::now() + Duration::from_secs(20);
    while view(&app, &auditor, "ops-refuser").await["dead_letters"] == 0 && Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let r = app
        .call(Method::GET, "/v1/sinks/ops-refuser/dead-letters", Some(&auditor), None)
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    let letters = r.body.as_array().unwrap();
    assert_eq!(letters.len(), 1, "{}", r.body);
    assert_eq!(
        letters[0]["reason"],
        "refused by the peer; the operator has the details"
    );
    // The platform tenant, whose operator wrote them, sees them whole.
    let platform_auditor = app.token(&app.admin, &["auditor"]).await;
    let mine = view(&app, &platform_auditor, "ops-kafka").await;
    assert_eq!(mine["config"]["brokers"], "127.0.0.1:9", "{mine}");
    let hook = until_error(&app, &platform_auditor, "ops-hook").await;
    assert!(hook["last_error"].as_str().unwrap().contains("127.0.0.1:9"), "{hook}");
    app.stop().await;
    refuser.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn metrics_show_a_tenant_only_its_own_sinks() {
    let ops = SinkConfig::Webhook {
        name: "ops-hook".into(),
        url: "http://127.0.0.1:9/".into(),
        secrets: vec![secret(5)],
        concurrency: 1,
        filter: SinkFilter::default(),
        mask: vec![],
        timeout_ms: 200,
    };
    let app = spawn_with(
        Backend::Sqlite,
        |c| {
            allow_loopback(c);
            c.sinks = vec![ops];
        },
        Clock::system(),
    )
    .await;
    let (acme_id, acme) = app.tenant_and_id("acme").await;
    let (other_id, other) = app.tenant_and_id("other").await;
    for token in [&acme, &other] {
        let r = put(
            &app,
            token,
            "mine",
            json!({"type": "webhook", "url": "http://127.0.0.1:9/", "secrets": [secret(6)], "from": "now"}),
        )
        .await;
        assert_eq!(r.status, StatusCode::CREATED, "{}", r.body);
    }
    let platform_auditor = app.token(&app.admin, &["auditor"]).await;
    let metrics = |token: String| {
        let app = &app;
        async move {
            let r = app.call(Method::GET, "/metrics", Some(&token), None).await;
            assert_eq!(r.status, StatusCode::OK, "GET /metrics: {}", r.body);
            String::from_utf8(r.bytes).unwrap()
        }
    };
    // Every sink's series exist once its delivery task made a pass.
    let deadline = Instant::now() + Duration::from_secs(20);
    let all = loop {
        let text = metrics(platform_auditor.clone()).await;
        let ready = [&acme_id, &other_id]
            .iter()
            .all(|id| text.contains(&format!("warden_sink_lag_entries{{sink=\"{id}/mine\"}}")));
        if ready || Instant::now() > deadline {
            break text;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    // Only the sink-labelled series in a failure's message: the whole
    // text would push the message itself out of a CI log's tail.
    let sinks_of = |text: &str| -> String {
        text.lines()
            .filter(|l| l.contains("sink="))
            .collect::<Vec<_>>()
            .join("\n")
    };
    assert!(all.contains(&format!("sink=\"{acme_id}/mine\"")), "{}", sinks_of(&all));
    assert!(all.contains(&format!("sink=\"{other_id}/mine\"")), "{}", sinks_of(&all));
    assert!(all.contains("sink=\"ops-hook\""), "{}", sinks_of(&all));

    let acme_auditor = app.token(&acme, &["auditor"]).await;
    let seen = metrics(acme_auditor).await;
    assert!(
        seen.contains(&format!("warden_sink_lag_entries{{sink=\"{acme_id}/mine\"}}")),
        "its own sink: {}",
        sinks_of(&seen)
    );
    let leaks = |needle: &str| -> String {
        seen.lines()
            .filter(|l| l.contains(needle))
            .collect::<Vec<_>>()
            .join("\n")
    };
    assert!(!seen.contains(&other_id), "another tenant's id: {}", leaks(&other_id));
    assert!(!seen.contains("ops-hook"), "the operator's sink: {}", leaks("ops-hook"));
    assert!(seen.contains("warden_ledger_appends_total"), "process-wide series stay");
    app.stop().await;
}

on_both_backends!(a_sink_whose_peer_is_down_reports_its_lag);

/// A sink whose peer is down reports how far behind it is while it retries
/// its first batch, not only once a pass completes.
async fn a_sink_whose_peer_is_down_reports_its_lag(backend: Backend) {
    let app = spawn_with(backend, allow_loopback, Clock::system()).await;
    let (acme_id, acme) = app.tenant_and_id("acme").await;
    let r = put(
        &app,
        &acme,
        "down",
        json!({"type": "webhook", "url": "http://127.0.0.1:9/", "secrets": [secret(8)], "from": "now"}),
    )
    .await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.body);
    let writer = app.token(&acme, &["orchestrator"]).await;
    submit(&app, &writer, 1).await;
    submit(&app, &writer, 2).await;
    let auditor = app.token(&acme, &["auditor"]).await;
    let series = format!("warden_sink_lag_entries{{sink=\"{acme_id}/down\"}} ");
    let lag = || async {
        let r = app.call(Method::GET, "/metrics", Some(&auditor), None).await;
        assert_eq!(r.status, StatusCode::OK, "GET /metrics: {}", r.body);
        String::from_utf8(r.bytes)
            .unwrap()
            .lines()
            .find_map(|l| l.strip_prefix(&series).map(|v| v.trim().parse::<i64>().unwrap()))
    };
    // The sink.put entry and both events wait: at least the two events.
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        if lag().await.is_some_and(|n| n >= 2) {
            break;
        }
        assert!(Instant::now() < deadline, "lag never reported: {:?}", lag().await);
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    // Still behind after further failed attempts: nothing was delivered,
    // nothing passed over.
    let first = until_error(&app, &acme, "down").await;
    let deadline = Instant::now() + Duration::from_secs(30);
    let status = loop {
        let v = view(&app, &acme, "down").await;
        if v["last_error_at"] != first["last_error_at"] {
            break v;
        }
        assert!(Instant::now() < deadline, "no second attempt: {v}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    assert!(lag().await.is_some_and(|n| n >= 2), "{:?}", lag().await);
    assert!(
        status["last_error"].as_str().unwrap().contains("not reached"),
        "{status}"
    );
    app.stop().await;
}

async fn secrets_are_encrypted_at_rest_and_survive_rotation(backend: Backend) {
    let hook_secret = secret(7);
    let peer = receiver(&hook_secret, free_port());
    let app = spawn_with(backend, allow_loopback, Clock::system()).await;
    let writer = app.token(&app.admin, &["orchestrator"]).await;
    let never = json!({"actions": ["never"]});
    let sinks = [
        (
            "hook",
            json!({"type": "webhook", "url": peer.url, "secrets": [hook_secret]}),
        ),
        (
            "dd",
            json!({"type": "datadog", "url": "http://127.0.0.1:9", "api_key": "dd-api-key-plain", "filter": never}),
        ),
        (
            "hec",
            json!({"type": "splunk_hec", "url": "http://127.0.0.1:9", "token": "hec-token-plain", "filter": never}),
        ),
        (
            "cw",
            json!({"type": "cloudwatch_logs", "region": "eu-west-1", "log_group": "g", "log_stream": "s",
                "access_key_id": "AKIDTENANT", "secret_access_key": "aws-secret-plain", "filter": never}),
        ),
        (
            "k",
            json!({"type": "kafka", "brokers": "127.0.0.1:9", "topic": "audit", "filter": never,
                "properties": {"sasl.username": "u", "sasl.password": "sasl-pass-plain"}}),
        ),
    ];
    for (name, body) in &sinks {
        let r = put(&app, &app.admin, name, body.clone()).await;
        assert_eq!(r.status, StatusCode::CREATED, "{name}: {}", r.body);
    }
    let plaintexts = [
        &hook_secret[6..],
        "dd-api-key-plain",
        "hec-token-plain",
        "aws-secret-plain",
        "sasl-pass-plain",
    ];
    let rows = |app: &TestApp| {
        let store = app.state.store.clone();
        async move { store.tenant_sinks().await.unwrap() }
    };
    let stored = rows(&app).await;
    assert_eq!(stored.len(), 5);
    for row in &stored {
        for p in plaintexts {
            assert!(!row.config.contains(p), "{p} in plaintext in {}", row.config);
        }
        assert!(row.config.contains("\"enc1:k1:"), "{}", row.config);
    }
    assert!(
        stored.iter().any(|r| r.config.contains("AKIDTENANT")),
        "key ids are not secrets"
    );
    // The secret opens: the receiver verifies the signature made with it.
    let first = submit(&app, &writer, 1).await;
    until_delivered(&peer.url, &first).await;

    // A row from before encryption (plaintext), read and sealed at start-up.
    let hook = stored.iter().find(|r| r.name == "hook").unwrap();
    let plain = json!({"type": "webhook", "name": "hook", "url": peer.url, "secrets": [hook_secret]}).to_string();
    write_row(&app, &hook.tenant_id, "hook", &plain).await;

    // Rotation: k2 becomes current, k1 is still accepted; every secret is
    // sealed again under k2 at start-up and every sink still works.
    let k2 = base64::engine::general_purpose::STANDARD.encode([42u8; 32]);
    let app = app
        .restart_with(|c| {
            c.sink_secrets.current = "k2".into();
            c.sink_secrets.accept = vec!["k1".into()];
            c.sink_secrets
                .keys
                .insert("k2".into(), warden::config::KeyMaterial(k2.clone()));
        })
        .await;
    for row in rows(&app).await {
        assert!(row.config.contains("\"enc1:k2:"), "{}", row.config);
        assert!(!row.config.contains("enc1:k1:"), "{}", row.config);
        assert!(!row.config.contains(&hook_secret[6..]), "{}", row.config);
    }
    let second = submit(&app, &writer, 2).await;
    until_delivered(&peer.url, &second).await;

    // k1 retired: nothing needs it any more.
    let app = app.restart_with(|c| c.sink_secrets.accept.clear()).await;
    let third = submit(&app, &writer, 3).await;
    until_delivered(&peer.url, &third).await;

    // A key removed while secrets still use it stops the server at start,
    // saying which.
    let mut without_k2 = app.config().clone();
    without_k2.sink_secrets.current = "k3".into();
    without_k2.sink_secrets.keys.clear();
    let err = warden::app::build(without_k2, Clock::system(), None)
        .await
        .err()
        .expect("a missing key stops the start");
    assert!(format!("{err:#}").contains("\"k2\""), "{err:#}");
    app.stop().await;
}

async fn until_delivered(url: &str, event_id: &str) {
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let got: Vec<Value> = reqwest::get(url).await.unwrap().json().await.unwrap();
        if got.iter().any(|d| d["webhook_id"] == event_id) {
            return;
        }
        assert!(Instant::now() < deadline, "{event_id} not delivered: {got:?}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

async fn a_tenant_has_at_most_its_cap_of_sinks(backend: Backend) {
    let app = spawn_with(
        backend,
        |c| {
            allow_loopback(c);
            c.tenant_sinks.max_per_tenant = 2;
        },
        Clock::system(),
    )
    .await;
    let (_, acme) = app.tenant_and_id("acme").await;
    let (_, other) = app.tenant_and_id("other").await;
    let body = json!({"type": "webhook", "url": "http://127.0.0.1:9/", "secrets": [secret(8)], "from": "now"});
    for name in ["a", "b"] {
        let r = put(&app, &acme, name, body.clone()).await;
        assert_eq!(r.status, StatusCode::CREATED, "{}", r.body);
    }
    let r = put(&app, &acme, "c", body.clone()).await;
    assert_eq!(
        (r.status, r.code()),
        (StatusCode::CONFLICT, "too_many_sinks"),
        "{}",
        r.body
    );
    assert!(r.body["detail"].as_str().unwrap().contains('2'));
    assert!(view(&app, &acme, "c").await.is_null(), "nothing created");
    // Replacing one is no new sink; another tenant has its own count.
    let r = put(&app, &acme, "a", body.clone()).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    let r = put(&app, &other, "c", body.clone()).await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.body);
    // Deleting one makes room.
    let r = app.call(Method::DELETE, "/v1/sinks/b", Some(&acme), None).await;
    assert_eq!(r.status, StatusCode::NO_CONTENT);
    let r = put(&app, &acme, "c", body).await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.body);
    app.stop().await;
}
