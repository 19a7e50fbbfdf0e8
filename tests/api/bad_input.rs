//! Bad input: each case answers a 4xx problem with its own code, and stores
//! nothing.

use std::io::Write;

use reqwest::{Method, StatusCode};
use serde_json::json;
use warden::clock::Clock;

use crate::common::*;
use crate::on_both_backends;

on_both_backends!(
    malformed_and_mistyped_json_are_refused_with_the_field_named,
    unknown_paths_bundles_and_revisions_are_404,
    oversize_and_overdeep_bodies_are_refused,
    rego_syntax_errors_name_file_and_line,
    hostile_archives_are_refused,
    packages_and_data_outside_roots_are_refused,
    tokens_of_another_tenant_see_nothing_of_this_one,
    missing_and_revoked_tokens_are_401,
);

async fn malformed_and_mistyped_json_are_refused_with_the_field_named(backend: Backend) {
    let app = spawn_app(backend).await;
    let r = app
        .raw(
            Method::POST,
            "/v1/decisions",
            &app.admin,
            "application/json",
            b"{\"path\": ".to_vec(),
        )
        .await;
    assert_eq!((r.status, r.code()), (StatusCode::BAD_REQUEST, "malformed_json"));
    let r = app.decide(&app.admin, json!({"path": ["a"]})).await;
    assert_eq!((r.status, r.code()), (StatusCode::BAD_REQUEST, "invalid_field"));
    assert!(r.body["detail"].as_str().unwrap().contains("`path`"), "{}", r.body);
    let r = app
        .decide(&app.admin, json!({"path": "a", "bundle": {"name": 7}}))
        .await;
    assert!(r.body["detail"].as_str().unwrap().contains("bundle.name"), "{}", r.body);
    let r = app.decide(&app.admin, json!({"path": "a", "inptu": {}})).await;
    assert_eq!(r.code(), "invalid_field", "unknown fields are refused, catching typos");
    let r = app.decide(&app.admin, json!({"path": "a/../b"})).await;
    assert_eq!(r.code(), "invalid_path");
    let r = app
        .call(
            Method::POST,
            "/v1/tokens",
            Some(&app.admin),
            Some(json!({"name": "x", "roles": ["root"]})),
        )
        .await;
    assert_eq!(r.code(), "invalid_field");
    assert!(r.body["detail"].as_str().unwrap().contains("roles"), "{}", r.body);
    let r = app
        .call(
            Method::POST,
            "/v1/tokens",
            Some(&app.admin),
            Some(json!({"name": "x", "roles": []})),
        )
        .await;
    assert_eq!(r.code(), "invalid_field");
    let r = app
        .call(
            Method::POST,
            "/v1/tenants",
            Some(&app.admin),
            Some(json!({"name": "Bad Name"})),
        )
        .await;
    assert_eq!(r.code(), "invalid_tenant_name");
    let r = app.call(Method::GET, "/v1/nowhere", Some(&app.admin), None).await;
    assert_eq!((r.status, r.code()), (StatusCode::NOT_FOUND, "not_found"));
    let r = app.call(Method::DELETE, "/v1/decisions", Some(&app.admin), None).await;
    assert_eq!(
        (r.status, r.code()),
        (StatusCode::METHOD_NOT_ALLOWED, "method_not_allowed")
    );
    app.stop().await;
}

async fn unknown_paths_bundles_and_revisions_are_404(backend: Backend) {
    let app = spawn_app(backend).await;
    install_commissioning(&app, &app.admin, "1").await;
    let r = app
        .decide(&app.admin, json!({"path": "agento/commissioning/routing/no_such_rule"}))
        .await;
    assert_eq!((r.status, r.code()), (StatusCode::NOT_FOUND, "unknown_rule_path"));
    let r = app.decide(&app.admin, json!({"path": "elsewhere/entirely"})).await;
    assert_eq!((r.status, r.code()), (StatusCode::NOT_FOUND, "no_bundle_for_path"));
    let r = app
        .decide(
            &app.admin,
            json!({"path": "agento/commissioning/routing", "bundle": {"name": "ghost", "revision": "1"}}),
        )
        .await;
    assert_eq!((r.status, r.code()), (StatusCode::NOT_FOUND, "unknown_bundle"));
    let r = app
        .decide(
            &app.admin,
            json!({"path": "agento/commissioning/routing", "bundle": {"name": "commissioning", "revision": "9"}}),
        )
        .await;
    assert_eq!((r.status, r.code()), (StatusCode::NOT_FOUND, "unknown_revision"));
    let r = app.call(Method::GET, "/v1/bundles/ghost", Some(&app.admin), None).await;
    assert_eq!(r.code(), "unknown_bundle");
    app.stop().await;
}

async fn oversize_and_overdeep_bodies_are_refused(backend: Backend) {
    let app = spawn_with(
        backend,
        |c| {
            c.limits.max_body_bytes = 4096;
            c.limits.max_bundle_bytes = 2048;
            c.limits.max_json_depth = 16;
        },
        Clock::system(),
    )
    .await;
    let big = json!({"path": "a", "input": {"blob": "x".repeat(8192)}});
    let r = app.decide(&app.admin, big).await;
    assert_eq!((r.status, r.code()), (StatusCode::PAYLOAD_TOO_LARGE, "body_too_large"));
    let detail = r.body["detail"].as_str().unwrap();
    assert!(
        detail.contains("at most 4096 bytes (limits.max_body_bytes)"),
        "{detail}"
    );
    let deep = format!("{{\"path\":\"a\",\"input\":{}1{}}}", "[".repeat(40), "]".repeat(40));
    let r = app
        .raw(
            Method::POST,
            "/v1/decisions",
            &app.admin,
            "application/json",
            deep.into_bytes(),
        )
        .await;
    assert_eq!((r.status, r.code()), (StatusCode::BAD_REQUEST, "json_too_deep"));
    // A bundle over the bundle limit.
    let mut noise = Vec::new();
    let mut x: u64 = 7;
    for _ in 0..4000 {
        x = x.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407);
        write!(noise, "{:x}", x).unwrap();
    }
    let bundle = bundle_of(
        &[(
            "n.rego",
            &format!("package n\n\nx := \"{}\"\n", String::from_utf8(noise).unwrap()),
        )],
        "1",
        &["n"],
    );
    assert!(bundle.len() > 2048);
    let r = app.upload(&app.admin, "n", bundle).await;
    assert_eq!((r.status, r.code()), (StatusCode::PAYLOAD_TOO_LARGE, "body_too_large"));
    let detail = r.body["detail"].as_str().unwrap();
    assert!(
        detail.contains("at most 2048 bytes (limits.max_bundle_bytes)"),
        "{detail}"
    );
    assert_eq!(app.stored_versions(&app.admin).await, 0);
    // Routes that take a document or an optional body keep to the limit
    // too, with the same problem.
    let yaml = format!("metadata:\n  name: w\n# {}\n", "x".repeat(8192));
    let r = app
        .raw(
            Method::PUT,
            "/v1/workflows/w",
            &app.admin,
            "application/yaml",
            yaml.into_bytes(),
        )
        .await;
    assert_eq!((r.status, r.code()), (StatusCode::PAYLOAD_TOO_LARGE, "body_too_large"));
    let r = app
        .raw(
            Method::POST,
            "/v0/executions/exe_x/cancel",
            &app.admin,
            "application/json",
            format!("{{\"reason\":\"{}\"}}", "x".repeat(8192)).into_bytes(),
        )
        .await;
    assert_eq!((r.status, r.code()), (StatusCode::PAYLOAD_TOO_LARGE, "body_too_large"));
    app.stop().await;
}

/// A client still sending an oversized body when the limit is known reads
/// the 413 and its problem, not a reset connection: the rest of the body
/// is read and dropped before the answer.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_oversize_body_sent_slowly_still_gets_its_413() {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let app = spawn_with(Backend::Sqlite, |c| c.limits.max_body_bytes = 4096, Clock::system()).await;
    let addr = app.base.trim_start_matches("http://").to_string();
    // Once declared too long (Content-Length), once found too long while
    // reading (chunked).
    for chunked in [false, true] {
        let mut conn = tokio::net::TcpStream::connect(&addr).await.unwrap();
        let chunk = vec![b'x'; 64 * 1024];
        let framing = if chunked {
            "Transfer-Encoding: chunked".to_string()
        } else {
            format!("Content-Length: {}", 16 * chunk.len())
        };
        let head = format!(
            "POST /v1/decisions HTTP/1.1\r\nHost: {addr}\r\nAuthorization: Bearer {}\r\n\
             Content-Type: application/json\r\n{framing}\r\n\r\n",
            app.admin
        );
        conn.write_all(head.as_bytes()).await.unwrap();
        for _ in 0..16 {
            if chunked {
                conn.write_all(format!("{:x}\r\n", chunk.len()).as_bytes())
                    .await
                    .unwrap();
            }
            conn.write_all(&chunk).await.expect("the server reads the whole body");
            if chunked {
                conn.write_all(b"\r\n").await.unwrap();
            }
            tokio::time::sleep(std::time::Duration::from_millis(10)).await;
        }
        if chunked {
            conn.write_all(b"0\r\n\r\n").await.unwrap();
        }
        let mut answer = vec![0u8; 4096];
        let mut got = 0;
        while !String::from_utf8_lossy(&answer[..got]).contains("body_too_large") {
            let n = conn.read(&mut answer[got..]).await.expect("the answer, not a reset");
            assert!(
                n > 0,
                "closed before the answer: {}",
                String::from_utf8_lossy(&answer[..got])
            );
            got += n;
        }
        let text = String::from_utf8_lossy(&answer[..got]);
        assert!(text.starts_with("HTTP/1.1 413"), "{text}");
        assert!(text.contains("application/problem+json"), "{text}");
    }
    app.stop().await;
}

async fn rego_syntax_errors_name_file_and_line(backend: Backend) {
    let app = spawn_app(backend).await;
    let bundle = bundle_of(
        &[
            ("ok.rego", "package acme.ok\n\nx := 1\n"),
            (
                "rules/broken.rego",
                "package acme.broken\n\nallow if {\n\tinput.a ==\n}\n",
            ),
        ],
        "1",
        &["acme"],
    );
    let r = app.upload(&app.admin, "acme", bundle).await;
    assert_eq!(
        (r.status, r.code()),
        (StatusCode::UNPROCESSABLE_ENTITY, "rego_compile_error")
    );
    let detail = r.body["detail"].as_str().unwrap();
    assert!(detail.contains("rules/broken.rego:"), "names the file: {detail}");
    assert!(
        detail.contains(":5:") || detail.contains(":4:"),
        "names the line: {detail}"
    );
    // An unknown function is caught at upload, not at the first decision.
    let bundle = bundle_of(
        &[("f.rego", "package acme.f\n\nx := no.such_function(1)\n")],
        "2",
        &["acme"],
    );
    let r = app.upload(&app.admin, "acme", bundle).await;
    assert_eq!(r.code(), "rego_compile_error", "{}", r.body);
    assert_eq!(app.stored_versions(&app.admin).await, 0);
    app.stop().await;
}

/// One hand-made tar entry: raw name bytes, type, contents, link target.
type RawEntry<'a> = (&'a [u8], tar::EntryType, &'a [u8], Option<&'a str>);

fn raw_tar(entries: &[RawEntry<'_>]) -> Vec<u8> {
    let mut builder = tar::Builder::new(Vec::new());
    for (name, kind, data, link) in entries {
        let mut h = tar::Header::new_old();
        {
            let old = h.as_old_mut();
            old.name[..name.len()].copy_from_slice(name);
        }
        h.set_entry_type(*kind);
        h.set_size(data.len() as u64);
        h.set_mode(0o644);
        if let Some(l) = link {
            h.set_link_name(l).unwrap();
        }
        h.set_cksum();
        builder.append(&h, *data).unwrap();
    }
    let tar = builder.into_inner().unwrap();
    let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
    gz.write_all(&tar).unwrap();
    gz.finish().unwrap()
}

async fn hostile_archives_are_refused(backend: Backend) {
    let app = spawn_app(backend).await;
    let manifest: &[u8] = br#"{"revision": "1", "roots": ["acme"]}"#;
    let policy: &[u8] = b"package acme\n\nx := 1\n";
    let cases: Vec<(&str, Vec<u8>)> = vec![
        (
            "bundle_unsafe_path",
            raw_tar(&[
                (b"/.manifest", tar::EntryType::Regular, manifest, None),
                (b"../../etc/evil.rego", tar::EntryType::Regular, policy, None),
            ]),
        ),
        (
            "bundle_unsupported_entry",
            raw_tar(&[
                (b"/.manifest", tar::EntryType::Regular, manifest, None),
                (b"/p.rego", tar::EntryType::Symlink, b"", Some("/etc/passwd")),
            ]),
        ),
        (
            "bundle_unsupported_entry",
            raw_tar(&[
                (b"/.manifest", tar::EntryType::Regular, manifest, None),
                (b"/p.rego", tar::EntryType::Link, b"", Some(".manifest")),
            ]),
        ),
        ("bundle_corrupt", b"this is not a gzip stream".to_vec()),
    ];
    for (code, bytes) in cases {
        let r = app.upload(&app.admin, "acme", bytes).await;
        assert!(r.status.is_client_error(), "{}", r.body);
        assert_eq!(r.code(), code, "{}", r.body);
    }
    // A decompression bomb: 40 MiB of zeros in a few tens of KiB.
    let zeros = vec![0u8; 40 * 1024 * 1024];
    let bomb = raw_tar(&[
        (b"/.manifest", tar::EntryType::Regular, manifest, None),
        (b"/big.json", tar::EntryType::Regular, &zeros, None),
    ]);
    assert!(bomb.len() < 200 * 1024);
    let r = app.upload(&app.admin, "acme", bomb).await;
    assert_eq!(
        (r.status, r.code()),
        (StatusCode::UNPROCESSABLE_ENTITY, "bundle_decompression_bomb")
    );
    // Wasm bundles cannot be evaluated from source.
    let wasm = bundle_of(
        &[("p.rego", "package acme\n\nx := 1\n"), ("policy.wasm", "\0asm")],
        "1",
        &["acme"],
    );
    assert_eq!(app.upload(&app.admin, "acme", wasm).await.code(), "bundle_unsupported");
    // A manifest without a revision.
    let norev = raw_tar(&[
        (b"/.manifest", tar::EntryType::Regular, br#"{"roots": ["acme"]}"#, None),
        (b"/p.rego", tar::EntryType::Regular, policy, None),
    ]);
    assert_eq!(app.upload(&app.admin, "acme", norev).await.code(), "manifest_invalid");
    assert_eq!(app.stored_versions(&app.admin).await, 0);
    app.stop().await;
}

async fn packages_and_data_outside_roots_are_refused(backend: Backend) {
    let app = spawn_app(backend).await;
    let bundle = bundle_of(&[("p.rego", "package other.place\n\nx := 1\n")], "1", &["acme"]);
    let r = app.upload(&app.admin, "acme", bundle).await;
    assert_eq!(
        (r.status, r.code()),
        (StatusCode::UNPROCESSABLE_ENTITY, "bundle_outside_roots")
    );
    assert!(r.body["detail"].as_str().unwrap().contains("other.place"));
    let bundle = bundle_of(
        &[
            ("p.rego", "package acme\n\nx := 1\n"),
            ("data.json", "{\"elsewhere\": {\"k\": 1}}"),
        ],
        "1",
        &["acme"],
    );
    let r = app.upload(&app.admin, "acme", bundle).await;
    assert_eq!(r.code(), "bundle_outside_roots");
    // Data inside the roots is loaded and answers.
    let bundle = bundle_of(
        &[
            ("p.rego", "package acme\n\nlimit := data.acme.limits.max\n"),
            ("acme/limits/data.json", "{\"max\": 3}"),
        ],
        "1",
        &["acme"],
    );
    assert_eq!(app.upload(&app.admin, "acme", bundle).await.status, StatusCode::CREATED);
    assert_eq!(app.activate(&app.admin, "acme", "1").await.status, StatusCode::OK);
    let r = app.decide(&app.admin, json!({"path": "acme/limit"})).await;
    assert_eq!(r.body["result"], 3, "{}", r.body);
    let r = app.decide(&app.admin, json!({"path": "acme/limits/max"})).await;
    assert_eq!(r.body["result"], 3, "data documents are addressable: {}", r.body);
    app.stop().await;
}

async fn tokens_of_another_tenant_see_nothing_of_this_one(backend: Backend) {
    let app = spawn_app(backend).await;
    install_commissioning(&app, &app.admin, "1").await;
    let other = app.tenant("globex").await;
    let r = app
        .call(Method::GET, "/v1/bundles/commissioning", Some(&other), None)
        .await;
    assert_eq!((r.status, r.code()), (StatusCode::NOT_FOUND, "unknown_bundle"));
    let r = app.activate(&other, "commissioning", "1").await;
    assert_eq!(r.code(), "unknown_bundle");
    let r = app
        .decide(&other, json!({"path": "agento/commissioning/routing"}))
        .await;
    assert_eq!(r.code(), "no_bundle_for_path");
    let r = app
        .call(
            Method::GET,
            "/v1/bundles/commissioning/revisions/1/content",
            Some(&other),
            None,
        )
        .await;
    assert_eq!(r.code(), "unknown_bundle");
    // The other tenant's own bundle with the same roots is independent.
    install_commissioning(&app, &other, "1").await;
    // It cannot revoke this tenant's tokens, nor list tenants.
    let tokens = app.call(Method::GET, "/v1/tokens", Some(&app.admin), None).await;
    let id = tokens.body[0]["id"].as_str().unwrap();
    let r = app
        .call(Method::DELETE, &format!("/v1/tokens/{id}"), Some(&other), None)
        .await;
    assert_eq!(r.code(), "unknown_token");
    let r = app.call(Method::GET, "/v1/tenants", Some(&other), None).await;
    assert_eq!((r.status, r.code()), (StatusCode::FORBIDDEN, "forbidden"));
    app.stop().await;
}

async fn missing_and_revoked_tokens_are_401(backend: Backend) {
    let app = spawn_app(backend).await;
    let r = app.call(Method::GET, "/v1/bundles", None, None).await;
    assert_eq!((r.status, r.code()), (StatusCode::UNAUTHORIZED, "unauthenticated"));
    let r = app
        .call(Method::GET, "/v1/bundles", Some("wdn_not-a-real-token"), None)
        .await;
    assert_eq!((r.status, r.code()), (StatusCode::UNAUTHORIZED, "invalid_token"));
    let auditor = app.token(&app.admin, &["auditor"]).await;
    assert_eq!(
        app.call(Method::GET, "/v1/bundles", Some(&auditor), None).await.status,
        StatusCode::OK
    );
    let list = app.call(Method::GET, "/v1/tokens", Some(&app.admin), None).await;
    let id = list
        .body
        .as_array()
        .unwrap()
        .iter()
        .find(|t| t["name"] == "auditor")
        .unwrap()["id"]
        .as_str()
        .unwrap()
        .to_string();
    let r = app
        .call(Method::DELETE, &format!("/v1/tokens/{id}"), Some(&app.admin), None)
        .await;
    assert_eq!(r.status, StatusCode::NO_CONTENT);
    let r = app.call(Method::GET, "/v1/bundles", Some(&auditor), None).await;
    assert_eq!(
        (r.status, r.code()),
        (StatusCode::UNAUTHORIZED, "invalid_token"),
        "revocation is immediate"
    );
    let list = app.call(Method::GET, "/v1/tokens", Some(&app.admin), None).await;
    assert!(
        list.body
            .as_array()
            .unwrap()
            .iter()
            .any(|t| t["id"] == id.as_str() && t["revoked_at"].is_string())
    );
    assert!(!list.bytes.windows(4).any(|w| w == b"wdn_"), "secrets are never listed");
    app.stop().await;
}
