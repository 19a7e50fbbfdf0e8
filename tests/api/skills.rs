//! The skill registry through the API: registration (JSON or YAML), semver
//! ordering, immutability, every fault of an invalid manifest, resolution
//! (new versions at once, pre-releases only exactly, visibility) and
//! tenancy.

use reqwest::{Method, StatusCode};
use serde_json::{Value, json};

use crate::common::*;
use crate::on_both_backends;

on_both_backends!(
    skills_are_registered_listed_and_immutable,
    invalid_manifests_list_every_fault,
    resolve_pins_the_highest_visible_version_at_once,
    skills_are_private_to_their_tenant
);

const ID: &str = "bess_commissioning_retrieval";

fn manifest(version: &str) -> Value {
    json!({
        "id": ID,
        "version": version,
        "description": "Retrieves BESS commissioning test data from ACC",
        "allowed_connectors": ["acc", "sharepoint"],
        "prompt_template": "Find the commissioning test sheets of {{ project }}.",
        "output_schema": {"type": "object", "required": ["documents"]},
        "rbac_scope": "engineering.commissioning",
        "visibility": "published"
    })
}

fn yaml(version: &str) -> String {
    format!(
        "id: {ID}\nversion: {version}\ndescription: Retrieves BESS commissioning test data from ACC\n\
         allowed_connectors: [acc, sharepoint]\n\
         prompt_template: 'Find the commissioning test sheets of {{{{ project }}}}.'\n\
         output_schema: {{type: object, required: [documents]}}\n\
         rbac_scope: engineering.commissioning\nvisibility: published\n"
    )
}

async fn put(app: &TestApp, token: &str, id: &str, version: &str, body: &Value) -> Reply {
    put_raw(app, token, id, version, &body.to_string(), "application/json").await
}

async fn put_raw(app: &TestApp, token: &str, id: &str, version: &str, body: &str, content_type: &str) -> Reply {
    app.raw(
        Method::PUT,
        &format!("/v1/skills/{id}/versions/{version}"),
        token,
        content_type,
        body.as_bytes().to_vec(),
    )
    .await
}

async fn get(app: &TestApp, token: &str, path: &str) -> Reply {
    app.call(Method::GET, path, Some(token), None).await
}

fn versions_of(r: &Reply) -> Vec<String> {
    r.body
        .as_array()
        .unwrap_or_else(|| panic!("a list: {}", r.body))
        .iter()
        .map(|v| v["version"].as_str().unwrap().to_string())
        .collect()
}

async fn skills_are_registered_listed_and_immutable(backend: Backend) {
    let app = spawn_app(backend).await;
    let compliance = app.token(&app.admin, &["compliance"]).await;
    let orchestrator = app.token(&app.admin, &["orchestrator"]).await;
    let auditor = app.token(&app.admin, &["auditor"]).await;
    let agent = app.token(&app.admin, &["agent"]).await;

    // Registered from YAML: 201, in the ledger before the answer.
    let r = put_raw(&app, &compliance, ID, "1.9.0", &yaml("1.9.0"), "application/yaml").await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.body);
    assert_eq!(
        (
            r.body["id"].as_str(),
            r.body["version"].as_str(),
            r.body["created"].as_bool()
        ),
        (Some(ID), Some("1.9.0"), Some(true))
    );
    let digest = r.body["digest"].as_str().unwrap().to_string();
    assert_eq!(digest.len(), 64);
    let index = r.body["receipt"]["index"].as_u64().expect("a ledger receipt");
    let e = get(&app, &auditor, &format!("/v1/ledger/entries/{index}")).await;
    assert_eq!(e.status, StatusCode::OK, "{}", e.body);
    assert_eq!(e.body["entry"]["kind"], "skill.put");
    assert_eq!(
        e.body["entry"]["payload"],
        json!({"id": ID, "version": "1.9.0", "digest": digest})
    );
    assert!(e.body["entry"]["actor"].as_str().unwrap().starts_with("token:"));

    // The same content (as JSON this time) is the same version: 200.
    let r = put(&app, &orchestrator, ID, "1.9.0", &manifest("1.9.0")).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    assert_eq!(
        (r.body["created"].as_bool(), r.body["digest"].as_str()),
        (Some(false), Some(digest.as_str()))
    );
    assert!(r.body.get("receipt").is_none());
    // Other content under an existing version is refused.
    let mut changed = manifest("1.9.0");
    changed["prompt_template"] = json!("Something else entirely.");
    let r = put(&app, &compliance, ID, "1.9.0", &changed).await;
    assert_eq!((r.status, r.code()), (StatusCode::CONFLICT, "skill_version_exists"));
    assert!(r.body["detail"].as_str().unwrap().contains("new version"), "{}", r.body);

    // Versions order by semver, not by text or by time.
    for v in ["1.10.0", "1.2.0", "1.10.0-rc.1"] {
        let r = put(&app, &compliance, ID, v, &manifest(v)).await;
        assert_eq!(r.status, StatusCode::CREATED, "{v}: {}", r.body);
    }
    let r = get(&app, &agent, &format!("/v1/skills/{ID}")).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    assert_eq!(versions_of(&r), ["1.10.0", "1.10.0-rc.1", "1.9.0", "1.2.0"]);
    assert!(r.body[0].get("manifest").is_none());
    let r = get(&app, &auditor, "/v1/skills").await;
    assert_eq!(r.body, json!([{"id": ID, "latest": "1.10.0", "versions": 4}]));

    // One version, with its manifest (unchanged by the refused write).
    let r = get(&app, &auditor, &format!("/v1/skills/{ID}/versions/1.9.0")).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    assert_eq!(r.body["manifest"], manifest("1.9.0"));
    assert_eq!(r.body["digest"], digest.as_str());

    // The path names the manifest.
    let r = put(&app, &compliance, "another_skill", "1.0.0", &manifest("1.0.0")).await;
    assert_eq!((r.status, r.code()), (StatusCode::BAD_REQUEST, "skill_id_mismatch"));
    let r = put(&app, &compliance, ID, "1.0.1", &manifest("1.0.0")).await;
    assert_eq!(
        (r.status, r.code()),
        (StatusCode::BAD_REQUEST, "skill_version_mismatch")
    );
    // Unknown skills and versions.
    let r = get(&app, &auditor, "/v1/skills/nope").await;
    assert_eq!((r.status, r.code()), (StatusCode::NOT_FOUND, "unknown_skill"));
    let r = get(&app, &auditor, &format!("/v1/skills/{ID}/versions/9.9.9")).await;
    assert_eq!((r.status, r.code()), (StatusCode::NOT_FOUND, "unknown_skill_version"));
    // Readers do not write.
    for token in [&auditor, &agent] {
        let r = put(&app, token, ID, "3.0.0", &manifest("3.0.0")).await;
        assert_eq!(r.status, StatusCode::FORBIDDEN);
    }
    app.stop().await;
}

async fn invalid_manifests_list_every_fault(backend: Backend) {
    let app = spawn_app(backend).await;
    let compliance = app.token(&app.admin, &["compliance"]).await;
    let broken = json!({
        "id": ID,
        "version": "1.0",
        "description": 42,
        "allowed_connectors": ["acc", "Share Point"],
        "output_schema": {"type": "strin"},
        "rbac_scope": "Engineering..commissioning",
        "visibility": "everyone",
        "owner": "someone"
    });
    let r = put(&app, &compliance, ID, "1.0", &broken).await;
    assert_eq!(r.status, StatusCode::UNPROCESSABLE_ENTITY, "{}", r.body);
    let faults: Vec<(String, String)> = r.body["errors"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| (e["code"].as_str().unwrap().into(), e["at"].as_str().unwrap().into()))
        .collect();
    for (code, at) in [
        ("unknown_field", "owner"),
        ("invalid_version", "version"),
        ("invalid_value", "description"),
        ("invalid_connector", "allowed_connectors[1]"),
        ("missing_field", "prompt_template"),
        ("invalid_output_schema", "output_schema"),
        ("invalid_scope", "rbac_scope"),
        ("invalid_visibility", "visibility"),
    ] {
        assert!(
            faults.iter().any(|(c, a)| c == code && a == at),
            "{code} at {at} in {faults:?}"
        );
    }
    assert_eq!(faults.len(), 8, "{faults:?}");
    assert_eq!(r.code(), faults[0].0, "the problem's code is the first fault's");

    let mut bad_id = manifest("1.0.0");
    bad_id["id"] = json!("9-lives");
    let mut too_large = manifest("1.0.0");
    too_large["prompt_template"] = json!("x".repeat(64 * 1024 + 1));
    let cases = [
        ("{\"id\": ".to_string(), "invalid_syntax"),
        ("id: a\nid: b\n".to_string(), "invalid_syntax"),
        (bad_id.to_string(), "invalid_skill_id"),
        (too_large.to_string(), "too_large"),
    ];
    for (body, code) in cases {
        let r = put_raw(&app, &compliance, ID, "1.0.0", &body, "application/json").await;
        assert_eq!(r.status, StatusCode::UNPROCESSABLE_ENTITY, "{code}: {}", r.body);
        let codes: Vec<&str> = r.body["errors"]
            .as_array()
            .unwrap()
            .iter()
            .map(|e| e["code"].as_str().unwrap())
            .collect();
        assert_eq!(codes, [code], "{}", r.body);
    }
    // Nothing was stored, and nothing went into the ledger as a skill.
    let r = get(&app, &compliance, "/v1/skills").await;
    assert_eq!(r.body, json!([]));
    app.stop().await;
}

async fn resolve(app: &TestApp, token: &str, query: &str) -> Reply {
    get(app, token, &format!("/v1/skills/{ID}/resolve{query}")).await
}

async fn resolve_pins_the_highest_visible_version_at_once(backend: Backend) {
    let app = spawn_app(backend).await;
    let compliance = app.token(&app.admin, &["compliance"]).await;
    let agent = app.token(&app.admin, &["agent"]).await;

    let r = resolve(&app, &agent, "?version=^1.2").await;
    assert_eq!((r.status, r.code()), (StatusCode::NOT_FOUND, "no_matching_skill"));
    assert!(r.body["detail"].as_str().unwrap().contains("register"), "{}", r.body);

    for v in ["1.2.0", "1.9.0"] {
        assert_eq!(
            put(&app, &compliance, ID, v, &manifest(v)).await.status,
            StatusCode::CREATED
        );
    }
    let r = resolve(&app, &agent, "?version=^1.2").await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    assert_eq!(r.body["version"], "1.9.0");
    assert_eq!(r.body["manifest"]["id"], ID);
    // A new version takes effect for the next resolution, no restart.
    assert_eq!(
        put(&app, &compliance, ID, "1.10.0", &manifest("1.10.0")).await.status,
        StatusCode::CREATED
    );
    assert_eq!(resolve(&app, &agent, "?version=^1.2").await.body["version"], "1.10.0");
    assert_eq!(resolve(&app, &agent, "").await.body["version"], "1.10.0");
    // An exact version pins exactly.
    assert_eq!(resolve(&app, &agent, "?version=1.2.0").await.body["version"], "1.2.0");
    assert_eq!(resolve(&app, &agent, "?version=~1.9").await.body["version"], "1.9.0");

    // A pre-release is pinned only when asked for exactly.
    assert_eq!(
        put(&app, &compliance, ID, "2.0.0-rc.1", &manifest("2.0.0-rc.1"))
            .await
            .status,
        StatusCode::CREATED
    );
    assert_eq!(resolve(&app, &agent, "").await.body["version"], "1.10.0");
    assert_eq!(resolve(&app, &agent, "?version=>=1").await.body["version"], "1.10.0");
    assert_eq!(
        resolve(&app, &agent, "?version=2.0.0-rc.1").await.body["version"],
        "2.0.0-rc.1"
    );

    // A version scoped to a team: that team's executions pin it, others do not.
    let mut scoped = manifest("1.11.0");
    scoped["visibility"] = json!({"scoped": {"teams": ["commissioning"], "projects": ["bess-07"]}});
    assert_eq!(
        put(&app, &compliance, ID, "1.11.0", &scoped).await.status,
        StatusCode::CREATED
    );
    let pinned = |r: Reply| r.body["version"].as_str().unwrap_or("").to_string();
    assert_eq!(
        pinned(resolve(&app, &agent, "?version=^1&team=commissioning").await),
        "1.11.0"
    );
    assert_eq!(
        pinned(resolve(&app, &agent, "?version=^1&project=bess-07").await),
        "1.11.0"
    );
    assert_eq!(
        pinned(resolve(&app, &agent, "?version=^1&project=bess-01&team=commissioning").await),
        "1.11.0"
    );
    assert_eq!(pinned(resolve(&app, &agent, "?version=^1&team=design").await), "1.10.0");
    assert_eq!(pinned(resolve(&app, &agent, "?version=^1").await), "1.10.0");
    let r = resolve(&app, &agent, "?version=1.11.0&team=design").await;
    assert_eq!((r.status, r.code()), (StatusCode::NOT_FOUND, "no_matching_skill"));
    let detail = r.body["detail"].as_str().unwrap();
    assert!(detail.contains("1.11.0 (not visible"), "{detail}");
    assert!(detail.contains("1.10.0"), "{detail}");

    // A skill scoped only elsewhere cannot be resolved by another team.
    let mut only = manifest("1.0.0");
    only["id"] = json!("site_survey");
    only["visibility"] = json!({"scoped": {"teams": ["surveying"]}});
    assert_eq!(
        put(&app, &compliance, "site_survey", "1.0.0", &only).await.status,
        StatusCode::CREATED
    );
    let r = get(&app, &agent, "/v1/skills/site_survey/resolve?team=commissioning").await;
    assert_eq!((r.status, r.code()), (StatusCode::NOT_FOUND, "no_matching_skill"));
    let r = get(&app, &agent, "/v1/skills/site_survey/resolve?team=surveying").await;
    assert_eq!((r.status, r.body["version"].as_str()), (StatusCode::OK, Some("1.0.0")));

    // Nothing matches: the answer names what exists.
    let r = resolve(&app, &agent, "?version=^3").await;
    assert_eq!((r.status, r.code()), (StatusCode::NOT_FOUND, "no_matching_skill"));
    let detail = r.body["detail"].as_str().unwrap();
    assert!(detail.contains("^3"), "{detail}");
    assert!(detail.contains("2.0.0-rc.1 (pre-release"), "{detail}");
    // Bad requests.
    let r = resolve(&app, &agent, "?version=one").await;
    assert_eq!((r.status, r.code()), (StatusCode::BAD_REQUEST, "invalid_version"));
    let r = resolve(&app, &agent, "?colour=blue").await;
    assert_eq!((r.status, r.code()), (StatusCode::BAD_REQUEST, "invalid_query"));
    app.stop().await;
}

async fn skills_are_private_to_their_tenant(backend: Backend) {
    let app = spawn_app(backend).await;
    let compliance = app.token(&app.admin, &["compliance"]).await;
    assert_eq!(
        put(&app, &compliance, ID, "1.0.0", &manifest("1.0.0")).await.status,
        StatusCode::CREATED
    );
    let other_admin = app.tenant("initech").await;
    let other = app.token(&other_admin, &["compliance"]).await;
    for token in [&other_admin, &other] {
        assert_eq!(get(&app, token, "/v1/skills").await.body, json!([]));
        let r = get(&app, token, &format!("/v1/skills/{ID}")).await;
        assert_eq!((r.status, r.code()), (StatusCode::NOT_FOUND, "unknown_skill"));
        let r = get(&app, token, &format!("/v1/skills/{ID}/versions/1.0.0")).await;
        assert_eq!(r.status, StatusCode::NOT_FOUND);
        let r = get(&app, token, &format!("/v1/skills/{ID}/resolve")).await;
        assert_eq!((r.status, r.code()), (StatusCode::NOT_FOUND, "no_matching_skill"));
    }
    // The same id and version in another tenant is another skill.
    let mut theirs = manifest("1.0.0");
    theirs["description"] = json!("Initech's own");
    let r = put(&app, &other, ID, "1.0.0", &theirs).await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.body);
    let r = get(&app, &compliance, &format!("/v1/skills/{ID}/versions/1.0.0")).await;
    assert_eq!(r.body["manifest"], manifest("1.0.0"));
    let r = get(&app, &other, &format!("/v1/skills/{ID}/resolve")).await;
    assert_eq!(r.body["manifest"]["description"], "Initech's own");
    app.stop().await;
}

on_both_backends!(racing_registrations_of_one_version_leave_one_with_its_entry);

/// Eight registrations of one version with different content at once: one
/// wins (201, with its receipt), the others are refused (409), and the
/// ledger holds exactly one entry for the version: it is written in the
/// same transaction as its entry, never without one.
async fn racing_registrations_of_one_version_leave_one_with_its_entry(backend: Backend) {
    let app = spawn_app(backend).await;
    let token = app.token(&app.admin, &["compliance"]).await;
    let auditor = app.token(&app.admin, &["auditor"]).await;
    let bodies: Vec<Value> = (0..8)
        .map(|i| {
            let mut m = manifest("3.0.0");
            m["description"] = json!(format!("variant {i}"));
            m
        })
        .collect();
    let replies = futures_util::future::join_all(
        bodies
            .iter()
            .map(|b| put(&app, &token, "bess_commissioning_retrieval", "3.0.0", b)),
    )
    .await;
    let created: Vec<&Reply> = replies.iter().filter(|r| r.status == StatusCode::CREATED).collect();
    assert_eq!(
        created.len(),
        1,
        "{:?}",
        replies.iter().map(|r| r.status).collect::<Vec<_>>()
    );
    assert!(created[0].body["receipt"]["index"].is_u64());
    assert!(
        replies
            .iter()
            .filter(|r| r.status != StatusCode::CREATED)
            .all(|r| r.status == StatusCode::CONFLICT && r.code() == "skill_version_exists"),
        "{:?}",
        replies.iter().map(|r| (r.status, r.body.clone())).collect::<Vec<_>>()
    );
    let export = app.call(Method::GET, "/v1/ledger/export", Some(&auditor), None).await;
    let entries = export
        .bytes
        .split(|b| *b == b'\n')
        .filter(|l| l.starts_with(b"{\"actor\":"))
        .map(|l| serde_json::from_slice::<Value>(l).unwrap())
        .filter(|e| e["kind"] == "skill.put" && e["payload"]["version"] == "3.0.0")
        .count();
    assert_eq!(entries, 1);
}
