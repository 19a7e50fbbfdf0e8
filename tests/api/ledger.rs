//! The evidence ledger as auditors use it: receipts and proofs that verify
//! offline, exports that `verify` accepts and that name any tampering,
//! `fsck`, replay, impact analysis and key rotation.

use reqwest::{Method, StatusCode};
use serde_json::{Value, json};
use warden::clock::Clock;
use warden::evidence::checkpoint::{self, NoteVerifier};
use warden::evidence::merkle::{self, Hash};
use warden::evidence::receipt::Receipt;
use warden::evidence::verify;
use warden::ledger::fsck;

use crate::common::*;
use crate::on_both_backends;

on_both_backends!(
    decisions_and_admin_acts_get_receipts_that_verify_offline,
    exports_verify_and_every_tamper_is_named,
    a_decision_replays_identically_after_its_bundle_moved_on,
    impact_names_exactly_the_workflows_whose_decisions_flip,
    impact_finds_denials_a_candidate_would_allow_within_a_time_window,
    key_rotation_keeps_every_checkpoint_verifiable,
    key_rotation_under_writes_of_several_tenants_survives_a_restart,
    evidence_is_read_by_evidence_roles_within_the_tenant,
    two_writers_on_one_store_never_fork_a_log,
    two_writers_extending_logs_in_opposite_orders_never_deadlock,
);

/// The current ledger key, as an auditor fetches it.
async fn current_key(app: &TestApp, token: &str) -> NoteVerifier {
    let r = app.call(Method::GET, "/v1/ledger/keys", Some(token), None).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    let current: Vec<&Value> = r
        .body
        .as_array()
        .unwrap()
        .iter()
        .filter(|k| k["current"] == true)
        .collect();
    assert_eq!(current.len(), 1, "exactly one current key: {}", r.body);
    NoteVerifier::parse(current[0]["verifier"].as_str().unwrap()).unwrap()
}

async fn export(app: &TestApp, token: &str, query: &str) -> Vec<u8> {
    let r = app
        .call(Method::GET, &format!("/v1/ledger/export{query}"), Some(token), None)
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", String::from_utf8_lossy(&r.bytes));
    assert_eq!(r.content_type, "application/x-ndjson");
    r.bytes
}

fn verify_bytes(bytes: &[u8], keys: &[NoteVerifier]) -> Result<verify::Report, verify::VerifyError> {
    verify::verify_export(std::io::Cursor::new(bytes), keys, &mut |_| {})
}

async fn fsck_all(app: &TestApp) -> Vec<fsck::LogReport> {
    fsck::check(&app.state.store, &app.state.config.ledger.name, None, &mut |_| {})
        .await
        .unwrap()
}

fn entries_of(export: &[u8]) -> Vec<Value> {
    export
        .split(|b| *b == b'\n')
        .filter(|l| l.starts_with(b"{\"actor\":"))
        .map(|l| serde_json::from_slice(l).unwrap())
        .collect()
}

fn h(hex: &str) -> Hash {
    Hash::from_hex(hex).unwrap()
}

async fn decisions_and_admin_acts_get_receipts_that_verify_offline(backend: Backend) {
    let app = spawn_app(backend).await;
    install_commissioning(&app, &app.admin, "2026.11.1").await;
    let orchestrator = app.token(&app.admin, &["orchestrator"]).await;
    let auditor = app.token(&app.admin, &["auditor"]).await;
    let key = current_key(&app, &auditor).await;

    // Concurrent decisions share group commits; every one has a receipt.
    let mut calls = Vec::new();
    for i in 0..24 {
        let input = if i % 2 == 0 { ready_input() } else { blocked_input() };
        let body = json!({"path": "agento/commissioning/routing", "input": input, "context": {"workflow_id": format!("wf-{i}")}});
        calls.push(app.decide(&orchestrator, body));
    }
    let replies = futures_util::future::join_all(calls).await;
    let mut receipts = Vec::new();
    for r in &replies {
        assert_eq!(r.status, StatusCode::OK, "{}", r.body);
        let receipt: Receipt = serde_json::from_value(r.body["receipt"].clone()).unwrap();
        verify::verify_receipt(&receipt, std::slice::from_ref(&key), None).expect("receipt verifies offline");
        receipts.push((receipt, r.body["decision_id"].as_str().unwrap().to_string()));
    }
    let mut indexes: Vec<u64> = receipts.iter().map(|(r, _)| r.index).collect();
    indexes.sort();
    indexes.dedup();
    assert_eq!(indexes.len(), 24, "distinct entries");

    // A receipt pointing at another entry does not verify.
    let mut wrong = receipts[0].0.clone();
    wrong.index = (wrong.index + 1) % wrong.tree_size;
    assert!(verify::verify_receipt(&wrong, std::slice::from_ref(&key), None).is_err());

    // The entry endpoint serves the exact bytes, proven against the latest
    // checkpoint; its bytes are the decision with everything a replay needs.
    let (first, decision_id) = &receipts[0];
    let r = app
        .call(
            Method::GET,
            &format!("/v1/ledger/entries/{}", first.index),
            Some(&auditor),
            None,
        )
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    assert_eq!(r.body["entry_hash"], first.entry_hash.as_str());
    let latest: Receipt = serde_json::from_value(json!({
        "log": r.body["log"], "index": r.body["index"], "entry_hash": r.body["entry_hash"],
        "tree_size": r.body["tree_size"], "checkpoint": r.body["checkpoint"], "inclusion": r.body["inclusion"],
    }))
    .unwrap();
    let bytes = r.body["bytes"].as_str().unwrap().as_bytes().to_vec();
    verify::verify_receipt(&latest, std::slice::from_ref(&key), Some(&bytes)).expect("proof against latest");
    let entry = &r.body["entry"];
    assert_eq!(entry["kind"], "decision");
    assert!(entry["actor"].as_str().unwrap().contains("orchestrator"));
    let payload = &entry["payload"];
    assert_eq!(payload["decision_id"], decision_id.as_str());
    assert_eq!(payload["bundle"]["revision"], "2026.11.1");
    assert_eq!(payload["bundle"]["digest"].as_str().unwrap().len(), 64);
    assert!(payload["captured"]["now_ns"].as_i64().unwrap() > 0);
    assert!(payload["input"]["procore"].is_object(), "the exact input is evidence");
    assert!(payload["context"]["workflow_id"].as_str().unwrap().starts_with("wf-"));

    // Consistency between the first receipt's tree and the latest.
    let small = receipts.iter().map(|(r, _)| r.tree_size).min().unwrap();
    let r = app
        .call(
            Method::GET,
            &format!("/v1/ledger/consistency?from={small}"),
            Some(&auditor),
            None,
        )
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    let (old, _) = checkpoint::open(r.body["from_checkpoint"].as_str().unwrap(), std::slice::from_ref(&key)).unwrap();
    let (new, _) = checkpoint::open(r.body["to_checkpoint"].as_str().unwrap(), std::slice::from_ref(&key)).unwrap();
    let proof: Vec<Hash> = r.body["proof"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| h(p.as_str().unwrap()))
        .collect();
    assert!(merkle::verify_consistency(
        old.size, new.size, &old.root, &new.root, &proof
    ));
    let r = app
        .call(Method::GET, "/v1/ledger/consistency?from=0", Some(&auditor), None)
        .await;
    assert_eq!((r.status, r.code()), (StatusCode::BAD_REQUEST, "invalid_tree_size"));

    // Administrative acts precede the decisions in the log.
    let file = export(&app, &auditor, "").await;
    let kinds: Vec<String> = entries_of(&file)
        .iter()
        .map(|e| e["kind"].as_str().unwrap().to_string())
        .collect();
    for kind in ["tenant.create", "token.create", "bundle.upload", "bundle.activate"] {
        assert!(kinds.iter().any(|k| k == kind), "{kind} recorded: {kinds:?}");
    }
    assert_eq!(kinds.iter().filter(|k| *k == "decision").count(), 24);
    let report = verify_bytes(&file, std::slice::from_ref(&key)).expect("the export verifies");
    assert_eq!(report.entries as usize, kinds.len());
    app.stop().await;
}

/// Raw access to the store, as an attacker with database access has.
enum Db {
    Sqlite(sqlx::SqlitePool),
    Postgres(sqlx::PgPool),
}

impl Db {
    async fn open(app: &TestApp) -> Self {
        let url = app.state.config.database_url();
        if url.starts_with("postgres") {
            Db::Postgres(sqlx::PgPool::connect(&url).await.unwrap())
        } else {
            Db::Sqlite(sqlx::SqlitePool::connect(&url).await.unwrap())
        }
    }

    async fn bytes(&self, idx: i64) -> (Vec<u8>, Vec<u8>) {
        let q = "SELECT bytes, hash FROM ledger_entries WHERE idx = $1";
        match self {
            Db::Sqlite(p) => sqlx::query_as(q).bind(idx).fetch_one(p).await.unwrap(),
            Db::Postgres(p) => sqlx::query_as(q).bind(idx).fetch_one(p).await.unwrap(),
        }
    }

    async fn set_entry(&self, idx: i64, bytes: &[u8], hash: &[u8]) {
        let q = "UPDATE ledger_entries SET bytes = $1, hash = $2 WHERE idx = $3";
        match self {
            Db::Sqlite(p) => sqlx::query(q)
                .bind(bytes)
                .bind(hash)
                .bind(idx)
                .execute(p)
                .await
                .map(|_| ())
                .unwrap(),
            Db::Postgres(p) => sqlx::query(q)
                .bind(bytes)
                .bind(hash)
                .bind(idx)
                .execute(p)
                .await
                .map(|_| ())
                .unwrap(),
        };
    }

    async fn delete_entry(&self, idx: i64) {
        let q = "DELETE FROM ledger_entries WHERE idx = $1";
        match self {
            Db::Sqlite(p) => sqlx::query(q).bind(idx).execute(p).await.map(|_| ()).unwrap(),
            Db::Postgres(p) => sqlx::query(q).bind(idx).execute(p).await.map(|_| ()).unwrap(),
        };
    }

    async fn insert_entry(&self, tenant: &str, idx: i64, bytes: &[u8], hash: &[u8]) {
        let e: Value = serde_json::from_slice(bytes).unwrap();
        let q = "INSERT INTO ledger_entries (tenant_id, idx, ts, kind, subject, hash, bytes) VALUES ($1, $2, $3, $4, NULL, $5, $6)";
        let (ts, kind) = (e["ts"].as_i64().unwrap(), e["kind"].as_str().unwrap().to_string());
        match self {
            Db::Sqlite(p) => sqlx::query(q)
                .bind(tenant)
                .bind(idx)
                .bind(ts)
                .bind(kind)
                .bind(hash)
                .bind(bytes)
                .execute(p)
                .await
                .map(|_| ())
                .unwrap(),
            Db::Postgres(p) => sqlx::query(q)
                .bind(tenant)
                .bind(idx)
                .bind(ts)
                .bind(kind)
                .bind(hash)
                .bind(bytes)
                .execute(p)
                .await
                .map(|_| ())
                .unwrap(),
        };
    }

    /// SQLite's plan for finding an entry by subject (a decision or event
    /// id), which must use an index, not scan the log.
    async fn subject_plan(&self) -> Option<String> {
        let q = "EXPLAIN QUERY PLAN SELECT idx FROM ledger_entries WHERE tenant_id = $1 AND subject = $2 AND kind = $3 ORDER BY idx LIMIT 1";
        match self {
            Db::Sqlite(p) => {
                let rows: Vec<(i64, i64, i64, String)> = sqlx::query_as(q)
                    .bind("t")
                    .bind("s")
                    .bind("k")
                    .fetch_all(p)
                    .await
                    .unwrap();
                Some(rows.into_iter().map(|r| r.3).collect::<Vec<_>>().join("; "))
            }
            Db::Postgres(_) => None,
        }
    }

    async fn note(&self, size: i64) -> String {
        let q = "SELECT note FROM ledger_checkpoints WHERE size = $1";
        let (n,): (String,) = match self {
            Db::Sqlite(p) => sqlx::query_as(q).bind(size).fetch_one(p).await.unwrap(),
            Db::Postgres(p) => sqlx::query_as(q).bind(size).fetch_one(p).await.unwrap(),
        };
        n
    }

    async fn set_note(&self, size: i64, note: &str) {
        let q = "UPDATE ledger_checkpoints SET note = $1 WHERE size = $2";
        match self {
            Db::Sqlite(p) => sqlx::query(q)
                .bind(note)
                .bind(size)
                .execute(p)
                .await
                .map(|_| ())
                .unwrap(),
            Db::Postgres(p) => sqlx::query(q)
                .bind(note)
                .bind(size)
                .execute(p)
                .await
                .map(|_| ())
                .unwrap(),
        };
    }
}

/// Both checks fail, and both name `index` first.
async fn assert_named(app: &TestApp, auditor: &str, key: &NoteVerifier, index: u64, what: &str) {
    let reports = fsck_all(app).await;
    let problems: Vec<&fsck::Problem> = reports.iter().flat_map(|r| &r.problems).collect();
    assert!(!problems.is_empty(), "fsck must notice {what}");
    assert_eq!(
        problems[0].index, index,
        "fsck names entry {index} for {what}: {problems:?}"
    );
    let err = verify_bytes(&export(app, auditor, "").await, std::slice::from_ref(key))
        .expect_err(&format!("verify must notice {what}"));
    let text = err.to_string();
    assert!(
        err.index() == Some(index)
            || text.contains(&format!("entry {index} "))
            || text.contains(&format!("entries {index} ")),
        "verify names entry {index} for {what}: {text}"
    );
}

async fn assert_clean(app: &TestApp, auditor: &str, key: &NoteVerifier) {
    for r in fsck_all(app).await {
        assert!(r.problems.is_empty(), "{}: {:?}", r.log, r.problems);
    }
    verify_bytes(&export(app, auditor, "").await, std::slice::from_ref(key)).expect("verifies");
}

async fn exports_verify_and_every_tamper_is_named(backend: Backend) {
    let app = spawn_app(backend).await;
    install_commissioning(&app, &app.admin, "2026.11.1").await;
    let orchestrator = app.token(&app.admin, &["orchestrator"]).await;
    let auditor = app.token(&app.admin, &["auditor"]).await;
    for _ in 0..12 {
        let r = app
            .decide(
                &orchestrator,
                json!({"path": "agento/commissioning/routing", "input": ready_input()}),
            )
            .await;
        assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    }
    let key = current_key(&app, &auditor).await;
    assert_clean(&app, &auditor, &key).await;
    let file = export(&app, &auditor, "").await;
    let size = entries_of(&file).len() as i64;
    let tenant = entries_of(&file)[0]["payload"]["tenant_id"]
        .as_str()
        .unwrap()
        .to_string();
    let k = size - 4;
    let db = Db::open(&app).await;
    if let Some(plan) = db.subject_plan().await {
        assert!(
            plan.contains("INDEX ledger_entries_subject"),
            "replay and event lookups use the index: {plan}"
        );
    }

    // An edited payload (the stored hash left as it was).
    let (bytes, hash) = db.bytes(k).await;
    let edited = String::from_utf8(bytes.clone())
        .unwrap()
        .replace("\"allow\":true", "\"allow\":false");
    assert_ne!(edited.as_bytes(), &bytes[..]);
    db.set_entry(k, edited.as_bytes(), &hash).await;
    assert_named(&app, &auditor, &key, k as u64, "an edited payload").await;
    db.set_entry(k, &bytes, &hash).await;
    assert_clean(&app, &auditor, &key).await;

    // A deleted entry.
    db.delete_entry(k).await;
    assert_named(&app, &auditor, &key, k as u64, "a deleted entry").await;
    db.insert_entry(&tenant, k, &bytes, &hash).await;
    assert_clean(&app, &auditor, &key).await;

    // Two entries swapped (rows keep their index column, bytes move).
    let (b1, h1) = db.bytes(k + 1).await;
    db.set_entry(k, &b1, &h1).await;
    db.set_entry(k + 1, &bytes, &hash).await;
    assert_named(&app, &auditor, &key, k as u64, "swapped entries").await;
    db.set_entry(k, &bytes, &hash).await;
    db.set_entry(k + 1, &b1, &h1).await;
    assert_clean(&app, &auditor, &key).await;

    // An altered checkpoint signature.
    let note = db.note(size).await;
    let (head, sig) = note.trim_end().rsplit_once(' ').unwrap();
    use base64::Engine as _;
    let mut blob = base64::engine::general_purpose::STANDARD.decode(sig).unwrap();
    blob[20] ^= 0x40;
    let forged = format!("{head} {}\n", base64::engine::general_purpose::STANDARD.encode(blob));
    db.set_note(size, &forged).await;
    let reports = fsck_all(&app).await;
    let p = &reports
        .iter()
        .flat_map(|r| &r.problems)
        .next()
        .expect("fsck notices the signature")
        .what;
    assert!(
        p.contains(&format!("checkpoint at size {size}")) && p.contains("signature"),
        "{p}"
    );
    let err = verify_bytes(&export(&app, &auditor, "").await, std::slice::from_ref(&key)).unwrap_err();
    assert_eq!(err.index(), Some(size as u64), "{err}");
    assert!(err.to_string().contains("signature"), "{err}");
    db.set_note(size, &note).await;
    assert_clean(&app, &auditor, &key).await;

    // A mid-log export verifies on its own; a truncated file does not.
    let part = export(&app, &auditor, &format!("?from={}", size / 2)).await;
    let report = verify_bytes(&part, std::slice::from_ref(&key)).unwrap();
    assert_eq!((report.from, report.to), (size as u64 / 2, size as u64));
    let cut = &file[..file.len() - 40];
    assert!(verify_bytes(cut, std::slice::from_ref(&key)).is_err());
    app.stop().await;
}

async fn a_decision_replays_identically_after_its_bundle_moved_on(backend: Backend) {
    let clock = Clock::fixed(1_795_308_111_311_231_335);
    let app = spawn_with(backend, |_| {}, clock.clone()).await;
    let stamp = |rev: &str, extra: &str| {
        bundle_of(
            &[(
                "stamp.rego",
                &format!(
                    "package stamp\n\ndecision := {{\"now\": time.now_ns(), \"allow\": input.ok, \"rev\": \"{rev}\"{extra}}}\n"
                ),
            )],
            rev,
            &["stamp"],
        )
    };
    for rev in ["1", "2", "3"] {
        let r = app.upload(&app.admin, "stamp", stamp(rev, "")).await;
        assert_eq!(r.status, StatusCode::CREATED, "{}", r.body);
    }
    assert_eq!(app.activate(&app.admin, "stamp", "1").await.status, StatusCode::OK);
    let orchestrator = app.token(&app.admin, &["orchestrator"]).await;
    let auditor = app.token(&app.admin, &["auditor"]).await;
    let d = app
        .decide(&orchestrator, json!({"path": "stamp/decision", "input": {"ok": true}}))
        .await;
    assert_eq!(d.status, StatusCode::OK, "{}", d.body);
    assert_eq!(d.body["result"]["now"], 1_795_308_111_311_231_335i64);
    let id = d.body["decision_id"].as_str().unwrap().to_string();

    // The bundle moves on two versions and a minute passes.
    assert_eq!(app.activate(&app.admin, "stamp", "2").await.status, StatusCode::OK);
    assert_eq!(app.activate(&app.admin, "stamp", "3").await.status, StatusCode::OK);
    clock.advance_ns(60_000_000_000);
    let now = app
        .decide(&orchestrator, json!({"path": "stamp/decision", "input": {"ok": true}}))
        .await;
    assert_eq!(now.body["result"]["rev"], "3");
    assert_eq!(now.body["result"]["now"], 1_795_308_171_311_231_335i64);

    let r = app.replay(&auditor, &id).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    assert_eq!(r.body["match"], true, "{}", r.body);
    assert_eq!(r.body["bundle"]["revision"], "1");
    assert_eq!(r.body["replayed"]["result"], d.body["result"], "bit for bit");
    assert_eq!(r.body["differences"], json!([]));
    assert_eq!(r.body["decision_id"], id.as_str());

    // Orchestrators cannot replay; unknown ids are a clear 404.
    let r = app.replay(&orchestrator, &id).await;
    assert_eq!(r.status, StatusCode::FORBIDDEN);
    let r = app.replay(&auditor, "dec_nope").await;
    assert_eq!((r.status, r.code()), (StatusCode::NOT_FOUND, "unknown_decision"));
    app.stop().await;
}

async fn impact_names_exactly_the_workflows_whose_decisions_flip(backend: Backend) {
    let app = spawn_app(backend).await;
    install_commissioning(&app, &app.admin, "2026.11.1").await;
    let orchestrator = app.token(&app.admin, &["orchestrator"]).await;
    let auditor = app.token(&app.admin, &["auditor"]).await;
    // wf-exact: results on the expected values; wf-near-1 and wf-near-2:
    // within tolerance but not within half of it; wf-blocked: denied anyway.
    let near = |v: i64| {
        let mut i = ready_input();
        i["test_results"][0]["value"] = json!(v);
        i["test_results"][1]["value"] = json!(200);
        i
    };
    let mut exact = ready_input();
    exact["test_results"] =
        json!([{"parameter": "trip_voltage", "value": 480}, {"parameter": "trip_delay_ms", "value": 201}]);
    for (wf, input) in [
        ("wf-exact", exact),
        ("wf-near-1", near(484)),
        ("wf-near-2", near(476)),
        ("wf-blocked", blocked_input()),
        ("wf-near-1", near(483)),
    ] {
        let r = app
            .decide(
                &orchestrator,
                json!({"path": "agento/commissioning/routing", "input": input, "context": {"workflow_id": wf, "tenant_site": "bess-7"}}),
            )
            .await;
        assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    }
    // The stricter revision: results must be within half the tolerance.
    let rego = std::fs::read_to_string(repo_path("policies/commissioning/routing.rego"))
        .unwrap()
        .replace("<= spec.tolerance", "<= spec.tolerance / 2");
    assert!(rego.contains("spec.tolerance / 2"));
    let strict = bundle_of(
        &[("agento/commissioning/routing.rego", &rego)],
        "2026.11.2-strict",
        &["agento/commissioning"],
    );
    let r = app.upload(&app.admin, "commissioning", strict).await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.body);

    let r = app
        .call(
            Method::POST,
            "/v1/impact",
            Some(&auditor),
            Some(json!({"bundle": "commissioning", "revision": "2026.11.2-strict", "filter": {"path": "agento.commissioning.routing"}})),
        )
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    assert_eq!(r.body["considered"], 5);
    assert_eq!(r.body["changed"]["total"], 3, "{}", r.body);
    assert_eq!(r.body["changed"]["allow_to_deny"], 3);
    assert_eq!(r.body["changed"]["deny_to_allow"], 0);
    assert_eq!(r.body["unchanged"], 2);
    assert_eq!(r.body["workflows"], json!(["wf-near-1", "wf-near-2"]));
    let changed = r.body["decisions"].as_array().unwrap();
    assert!(
        changed
            .iter()
            .all(|d| d["change"] == "allow_to_deny" && d["context"]["tenant_site"] == "bess-7")
    );
    assert!(
        changed
            .iter()
            .all(|d| d["candidate"]["result"]["reason"] == json!({"test result outside tolerance": true})),
        "{}",
        r.body
    );

    // Paged (as `warden impact` does, to show progress), the sums agree.
    let (mut after, mut considered, mut changed, mut pages) = (Value::Null, 0, 0, 0);
    loop {
        let r = app
            .call(
                Method::POST,
                "/v1/impact",
                Some(&auditor),
                Some(json!({"bundle": "commissioning", "revision": "2026.11.2-strict", "max_scan": 2, "after": after})),
            )
            .await;
        assert_eq!(r.status, StatusCode::OK, "{}", r.body);
        considered += r.body["considered"].as_u64().unwrap();
        changed += r.body["changed"]["total"].as_u64().unwrap();
        pages += 1;
        after = r.body["next_after"].clone();
        if after.is_null() {
            break;
        }
    }
    assert_eq!((considered, changed), (5, 3));
    assert!(pages >= 3, "{pages} pages of at most 2");

    // A context filter narrows it; the active revision is untouched.
    let r = app
        .call(
            Method::POST,
            "/v1/impact",
            Some(&auditor),
            Some(json!({"bundle": "commissioning", "revision": "2026.11.2-strict", "filter": {"context": {"workflow_id": "wf-near-2"}}})),
        )
        .await;
    assert_eq!(
        (r.body["considered"].as_u64(), r.body["changed"]["total"].as_u64()),
        (Some(1), Some(1))
    );
    let d = app
        .decide(
            &orchestrator,
            json!({"path": "agento/commissioning/routing", "input": near(484)}),
        )
        .await;
    assert_eq!(d.body["allow"], true, "impact analysis changes nothing");
    let r = app
        .call(
            Method::POST,
            "/v1/impact",
            Some(&auditor),
            Some(json!({"bundle": "commissioning", "revision": "nope"})),
        )
        .await;
    assert_eq!((r.status, r.code()), (StatusCode::NOT_FOUND, "unknown_revision"));
    let r = app
        .call(
            Method::POST,
            "/v1/impact",
            Some(&auditor),
            Some(json!({"bundle": "commissioning", "revision": "2026.11.2-strict", "filter": {"from": "yesterday"}})),
        )
        .await;
    assert_eq!((r.status, r.code()), (StatusCode::BAD_REQUEST, "invalid_filter"));
    app.stop().await;
}

async fn key_rotation_keeps_every_checkpoint_verifiable(backend: Backend) {
    let app = spawn_app(backend).await;
    install_commissioning(&app, &app.admin, "2026.11.1").await;
    let orchestrator = app.token(&app.admin, &["orchestrator"]).await;
    let auditor = app.token(&app.admin, &["auditor"]).await;
    let decide = || {
        app.decide(
            &orchestrator,
            json!({"path": "agento/commissioning/routing", "input": ready_input()}),
        )
    };
    assert_eq!(decide().await.status, StatusCode::OK);
    let old = current_key(&app, &auditor).await;

    // Only platform admins rotate.
    let compliance = app.token(&app.admin, &["compliance"]).await;
    let r = app
        .call(Method::POST, "/v1/ledger/keys/rotate", Some(&compliance), None)
        .await;
    assert_eq!(r.status, StatusCode::FORBIDDEN);
    let r = app
        .call(Method::POST, "/v1/ledger/keys/rotate", Some(&app.admin), None)
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    assert_eq!(r.body["previous"], old.to_text());
    let new = current_key(&app, &auditor).await;
    assert_ne!(new, old);
    assert_eq!(r.body["next"], new.to_text());
    let rotation: Receipt = serde_json::from_value(r.body["receipts"][0].clone()).unwrap();
    // The rotation's checkpoint is signed by both keys.
    verify::verify_receipt(&rotation, std::slice::from_ref(&old), None).expect("old key signs the handover");
    verify::verify_receipt(&rotation, std::slice::from_ref(&new), None).expect("new key signs the handover");

    let after = decide().await;
    assert_eq!(after.status, StatusCode::OK);
    let receipt: Receipt = serde_json::from_value(after.body["receipt"].clone()).unwrap();
    verify::verify_receipt(&receipt, std::slice::from_ref(&new), None).unwrap();
    assert!(
        verify::verify_receipt(&receipt, std::slice::from_ref(&old), None).is_err(),
        "the retired key no longer signs"
    );

    let keys = app.call(Method::GET, "/v1/ledger/keys", Some(&auditor), None).await;
    assert_eq!(keys.body.as_array().unwrap().len(), 2);
    assert!(
        keys.body
            .as_array()
            .unwrap()
            .iter()
            .any(|k| k["current"] == false && k["retired_at"].is_string())
    );

    // The whole log verifies trusting either key: the rotation entry links them.
    let file = export(&app, &auditor, "").await;
    assert!(entries_of(&file).iter().any(|e| e["kind"] == "ledger.key.rotate"
        && e["payload"]["previous"] == old.to_text()
        && e["payload"]["next"] == new.to_text()));
    verify_bytes(&file, std::slice::from_ref(&new)).expect("trusting the new key");
    verify_bytes(&file, std::slice::from_ref(&old)).expect("trusting the old key");
    let stranger = checkpoint::NoteSigner::new("warden.local", ed25519_dalek::SigningKey::from_bytes(&[5; 32]))
        .unwrap()
        .verifier();
    assert!(
        verify_bytes(&file, &[stranger]).is_err(),
        "an unrelated key trusts nothing"
    );
    for r in fsck_all(&app).await {
        assert!(r.problems.is_empty(), "{:?}", r.problems);
    }
    // The retired private key is kept beside the new one.
    let keys_dir = app.state.config.data_dir.join("keys");
    let names: Vec<String> = std::fs::read_dir(&keys_dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().into_string().unwrap())
        .collect();
    assert!(names.iter().any(|n| n.ends_with(".retired.pem")), "{names:?}");
    assert!(!names.iter().any(|n| n.contains(".next.")), "{names:?}");
    app.stop().await;
}

async fn evidence_is_read_by_evidence_roles_within_the_tenant(backend: Backend) {
    let app = spawn_app(backend).await;
    let other_admin = app.tenant("acme").await;
    let orchestrator = app.token(&app.admin, &["orchestrator"]).await;
    let auditor = app.token(&app.admin, &["auditor"]).await;
    let other_auditor = app.token(&other_admin, &["auditor"]).await;
    for path in [
        "/v1/ledger/checkpoint",
        "/v1/ledger/keys",
        "/v1/ledger/export",
        "/v1/ledger/entries/0",
    ] {
        let r = app.call(Method::GET, path, Some(&orchestrator), None).await;
        assert_eq!((r.status, r.code()), (StatusCode::FORBIDDEN, "forbidden"), "{path}");
        let r = app.call(Method::GET, path, None, None).await;
        assert_eq!(r.status, StatusCode::UNAUTHORIZED, "{path}");
    }
    let mine = app
        .call(Method::GET, "/v1/ledger/checkpoint", Some(&auditor), None)
        .await;
    let theirs = app
        .call(Method::GET, "/v1/ledger/checkpoint", Some(&other_auditor), None)
        .await;
    assert_eq!(mine.status, StatusCode::OK, "{}", mine.body);
    assert_eq!(theirs.status, StatusCode::OK, "{}", theirs.body);
    assert_ne!(mine.body["log"], theirs.body["log"], "one log per tenant");
    // acme's log holds its creation and first token, then its auditor token.
    assert_eq!(theirs.body["size"], 3, "{}", theirs.body);
    let e = app
        .call(Method::GET, "/v1/ledger/entries/0", Some(&other_auditor), None)
        .await;
    assert_eq!(e.body["entry"]["kind"], "tenant.create");
    assert_eq!(e.body["entry"]["payload"]["name"], "acme");
    let r = app
        .call(Method::GET, "/v1/ledger/entries/99", Some(&other_auditor), None)
        .await;
    assert_eq!((r.status, r.code()), (StatusCode::NOT_FOUND, "unknown_entry"));
    let r = app
        .call(
            Method::GET,
            "/v1/ledger/entries/0?tree_size=99",
            Some(&other_auditor),
            None,
        )
        .await;
    assert_eq!((r.status, r.code()), (StatusCode::BAD_REQUEST, "invalid_tree_size"));
    app.stop().await;
}

/// Two instances' writers (here: a second writer on the same store and
/// key) extend the same two tenants' logs at once, each batch naming the
/// tenants in the opposite order to the other's. Every writer locks log
/// heads in one order, so no batch waits on another in a cycle: PostgreSQL
/// never aborts one as a deadlock, every append is acknowledged, and both
/// logs are whole.
async fn two_writers_extending_logs_in_opposite_orders_never_deadlock(backend: Backend) {
    let app = spawn_app(backend).await;
    let mut tenants = Vec::new();
    for name in ["north", "south"] {
        tenants.push(app.tenant_and_id(name).await.0);
    }
    let (signing, _) = warden::keys::load_or_create_server_key(&app.state.config.data_dir).unwrap();
    let other_metrics = std::sync::Arc::new(warden::metrics::Metrics::new());
    let other = warden::ledger::Ledger::start(
        app.state.store.clone(),
        Clock::system(),
        signing,
        warden::ledger::writer::LedgerOptions {
            name: app.state.config.ledger.name.clone(),
            ..Default::default()
        },
        other_metrics.clone(),
    )
    .await
    .unwrap();
    let writers = [app.state.ledger.clone(), other.clone()];
    let mut appends = Vec::new();
    for i in 0..200 {
        let w = i % 2;
        let writer = writers[w].clone();
        // Writer 0 names north then south, writer 1 south then north.
        let order: Vec<&String> = if w == 0 {
            tenants.iter().collect()
        } else {
            tenants.iter().rev().collect()
        };
        let records = order
            .into_iter()
            .map(|t| warden::ledger::Record::new(t, "audit.event", "system", &json!({"n": i})))
            .collect();
        appends.push(tokio::spawn(async move { writer.append_all(records).await }));
    }
    for a in appends {
        let receipts = a.await.unwrap().expect("every append is acknowledged");
        assert_eq!(receipts.len(), 2);
    }
    let series = "warden_ledger_batch_retries_total{reason=\"aborted_by_the_database\"}";
    let ours = app.call(Method::GET, "/metrics", Some(&app.admin), None).await;
    assert_eq!(sample(&String::from_utf8_lossy(&ours.bytes), series), 0.0);
    assert_eq!(sample(&other_metrics.render(), series), 0.0);
    for r in fsck_all(&app).await {
        assert!(r.problems.is_empty(), "{:?}", r.problems);
    }
    for t in &tenants {
        let n = fsck_all(&app)
            .await
            .into_iter()
            .find(|r| &r.tenant_id == t)
            .expect("its log")
            .entries;
        assert!(n >= 200, "{t}: {n} entries");
    }
    other.stop().await;
    app.stop().await;
}

/// Two instances sharing one database (here: a second writer on the same
/// store and key) append to the same log at once: every receipt verifies,
/// and the log is one chain under consistent checkpoints.
async fn two_writers_on_one_store_never_fork_a_log(backend: Backend) {
    let app = spawn_app(backend).await;
    install_commissioning(&app, &app.admin, "2026.11.1").await;
    let orchestrator = app.token(&app.admin, &["orchestrator"]).await;
    let auditor = app.token(&app.admin, &["auditor"]).await;
    let key = current_key(&app, &auditor).await;
    let (signing, _) = warden::keys::load_or_create_server_key(&app.state.config.data_dir).unwrap();
    let options = warden::ledger::writer::LedgerOptions {
        name: app.state.config.ledger.name.clone(),
        queue_depth: 1024,
        max_batch: 64,
        ..Default::default()
    };
    let other = warden::ledger::Ledger::start(
        app.state.store.clone(),
        Clock::system(),
        signing,
        options,
        std::sync::Arc::new(warden::metrics::Metrics::new()),
    )
    .await
    .unwrap();
    let tenant = {
        let r = app
            .call(Method::GET, "/v1/ledger/entries/0", Some(&auditor), None)
            .await;
        r.body["entry"]["payload"]["tenant_id"].as_str().unwrap().to_string()
    };
    let mut direct = Vec::new();
    let mut http = Vec::new();
    for i in 0..40 {
        let other = other.clone();
        let tenant = tenant.clone();
        direct.push(tokio::spawn(async move {
            let r = warden::ledger::Record::new(&tenant, "decision", "token:tok_other (other)", &json!({"n": i}));
            other.append(r).await.unwrap()
        }));
        http.push(app.decide(
            &orchestrator,
            json!({"path": "agento/commissioning/routing", "input": ready_input()}),
        ));
    }
    let replies = futures_util::future::join_all(http).await;
    let mut receipts: Vec<Receipt> = Vec::new();
    for r in replies {
        assert_eq!(r.status, StatusCode::OK, "{}", r.body);
        receipts.push(serde_json::from_value(r.body["receipt"].clone()).unwrap());
    }
    for d in direct {
        receipts.push(d.await.unwrap());
    }
    let mut indexes: Vec<u64> = receipts.iter().map(|r| r.index).collect();
    indexes.sort();
    indexes.dedup();
    assert_eq!(indexes.len(), 80, "no index given twice");
    for r in &receipts {
        verify::verify_receipt(r, std::slice::from_ref(&key), None).expect("each receipt verifies");
    }
    let file = export(&app, &auditor, "").await;
    verify_bytes(&file, std::slice::from_ref(&key)).expect("one chain, consistent checkpoints");
    for r in fsck_all(&app).await {
        assert!(r.problems.is_empty(), "{:?}", r.problems);
    }

    // Every proof the store serves verifies: inclusion of every entry in the
    // latest tree, and consistency of every earlier size with it.
    let latest = app
        .call(Method::GET, "/v1/ledger/checkpoint", Some(&auditor), None)
        .await;
    let (head, _) = checkpoint::open(latest.body["checkpoint"].as_str().unwrap(), std::slice::from_ref(&key)).unwrap();
    let leaves: Vec<Hash> = entries_of(&file)
        .iter()
        .map(|e| {
            merkle::leaf_hash(
                &warden::evidence::entry::Entry::from_bytes(e.to_string().as_bytes())
                    .unwrap()
                    .to_bytes(),
            )
        })
        .collect();
    assert_eq!(leaves.len() as u64, head.size);
    for i in 0..head.size {
        let r = app
            .call(Method::GET, &format!("/v1/ledger/entries/{i}"), Some(&auditor), None)
            .await;
        let proof: Vec<Hash> = r.body["inclusion"]
            .as_array()
            .unwrap()
            .iter()
            .map(|p| h(p.as_str().unwrap()))
            .collect();
        assert!(
            merkle::verify_inclusion(i, head.size, &leaves[i as usize], &proof, &head.root),
            "inclusion of {i}"
        );
    }
    for m in 1..head.size {
        let r = app
            .call(
                Method::GET,
                &format!("/v1/ledger/consistency?from={m}"),
                Some(&auditor),
                None,
            )
            .await;
        let proof: Vec<Hash> = r.body["proof"]
            .as_array()
            .unwrap()
            .iter()
            .map(|p| h(p.as_str().unwrap()))
            .collect();
        let old = merkle::root(&leaves[..m as usize]);
        assert!(
            merkle::verify_consistency(m, head.size, &old, &head.root, &proof),
            "consistency {m} → {}",
            head.size
        );
    }
    other.stop().await;
    app.stop().await;
}

/// A more lenient candidate (one open punch item no longer blocks): the
/// decisions it would flip from deny to allow, only those recorded within
/// the window asked for (RFC 3339; `from` inclusive, `to` exclusive).
async fn impact_finds_denials_a_candidate_would_allow_within_a_time_window(backend: Backend) {
    const DAY_NS: i64 = 86_400 * 1_000_000_000;
    let start_ns = 1_793_491_200 * 1_000_000_000; // 2026-11-01T00:00:00Z
    let clock = Clock::fixed(start_ns);
    let app = spawn_with(backend, |_| {}, clock.clone()).await;
    install_commissioning(&app, &app.admin, "2026.11.1").await;
    let orchestrator = app.token(&app.admin, &["orchestrator"]).await;
    let auditor = app.token(&app.admin, &["auditor"]).await;
    let one_open_item = || {
        let mut i = ready_input();
        i["procore"]["punch_items_open_bess"] = json!([{"id": 7}]);
        i
    };
    // Day 0, day 1 (twice, plus one the candidate denies as well), day 2.
    let mut recorded = Vec::new();
    for (day, wf, input) in [
        (0, "wf-day-0", one_open_item()),
        (1, "wf-day-1a", one_open_item()),
        (1, "wf-day-1b", one_open_item()),
        (1, "wf-day-1-blocked", blocked_input()),
        (2, "wf-day-2", one_open_item()),
    ] {
        let now = start_ns + day * DAY_NS + 3_600_000_000_000;
        clock.advance_ns(now - clock.now_ns());
        let r = app
            .decide(
                &orchestrator,
                json!({"path": "agento/commissioning/routing", "input": input, "context": {"workflow_id": wf}}),
            )
            .await;
        assert_eq!(
            (r.status, &r.body["allow"]),
            (StatusCode::OK, &json!(false)),
            "{}",
            r.body
        );
        recorded.push(r.body["decision_id"].clone());
    }
    let rego = std::fs::read_to_string(repo_path("policies/commissioning/routing.rego"))
        .unwrap()
        .replace(
            "count(input.procore.punch_items_open_bess) == 0",
            "count(input.procore.punch_items_open_bess) <= 1",
        );
    assert!(rego.contains("<= 1"));
    let lenient = bundle_of(
        &[("agento/commissioning/routing.rego", &rego)],
        "2026.11.2-lenient",
        &["agento/commissioning"],
    );
    assert_eq!(
        app.upload(&app.admin, "commissioning", lenient).await.status,
        StatusCode::CREATED
    );
    let impact = |filter: Value| {
        app.call(
            Method::POST,
            "/v1/impact",
            Some(&auditor),
            Some(json!({"bundle": "commissioning", "revision": "2026.11.2-lenient", "filter": filter})),
        )
    };
    let all = impact(json!({})).await;
    assert_eq!(all.status, StatusCode::OK, "{}", all.body);
    assert_eq!(
        (
            all.body["considered"].as_u64(),
            all.body["changed"]["deny_to_allow"].as_u64()
        ),
        (Some(5), Some(4)),
        "{}",
        all.body
    );
    assert_eq!(all.body["changed"]["allow_to_deny"], 0);
    // The blocked one stays denied, for one reason fewer.
    assert_eq!(all.body["changed"]["other"], 1);

    // Day 1 only.
    let r = impact(json!({"from": "2026-11-02T00:00:00Z", "to": "2026-11-02T23:59:59Z"})).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    assert_eq!(r.body["considered"], 3, "{}", r.body);
    assert_eq!(r.body["changed"]["deny_to_allow"], 2);
    assert_eq!(r.body["changed"]["other"], 1);
    assert_eq!(
        r.body["workflows"],
        json!(["wf-day-1-blocked", "wf-day-1a", "wf-day-1b"])
    );
    let flipped: Vec<&Value> = r.body["decisions"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|d| d["change"] == "deny_to_allow")
        .collect();
    assert_eq!(flipped.len(), 2, "{}", r.body);
    assert!(
        flipped.iter().all(|d| d["candidate"]["result"]["allow"] == true
            && ["wf-day-1a", "wf-day-1b"].contains(&d["context"]["workflow_id"].as_str().unwrap())),
        "{}",
        r.body
    );
    assert!(flipped.iter().all(|d| recorded.contains(&d["decision_id"])));
    // `from` is inclusive, `to` exclusive: the first decision was recorded
    // at 01:00:00.000 on day 0, the last at 01:00:00.000 on day 2.
    let r = impact(json!({"to": "2026-11-01T01:00:00Z"})).await;
    assert_eq!(r.body["considered"], 0, "{}", r.body);
    let r = impact(json!({"to": "2026-11-01T01:00:00.001Z"})).await;
    assert_eq!(
        (
            r.body["considered"].as_u64(),
            r.body["changed"]["deny_to_allow"].as_u64()
        ),
        (Some(1), Some(1))
    );
    let r = impact(json!({"from": "2026-11-03T01:00:00Z"})).await;
    assert_eq!(r.body["considered"], 1, "{}", r.body);
    let r = impact(json!({"from": "2026-11-03T01:00:00.001Z"})).await;
    assert_eq!(r.body["considered"], 0, "{}", r.body);
    app.stop().await;
}

/// Three tenants decide without pause while the platform admin rotates the
/// ledger key; then the server restarts and they decide again. No decision
/// fails, every tenant's whole log verifies offline trusting either key
/// (the rotation entry in each log links them), and fsck finds nothing.
async fn key_rotation_under_writes_of_several_tenants_survives_a_restart(backend: Backend) {
    let app = spawn_app(backend).await;
    let mut tenants = Vec::new();
    for name in ["acme", "globex", "initech"] {
        let admin = app.tenant(name).await;
        install_commissioning(&app, &admin, "2026.11.1").await;
        let orchestrator = app.token(&admin, &["orchestrator"]).await;
        let auditor = app.token(&admin, &["auditor"]).await;
        tenants.push((orchestrator, auditor));
    }
    let old = current_key(&app, &tenants[0].1).await;
    let deciding = |app: &TestApp, rounds: usize| {
        let mut set = tokio::task::JoinSet::new();
        for (orchestrator, _) in &tenants {
            let (client, base, token) = (app.client.clone(), app.base.clone(), orchestrator.clone());
            set.spawn(async move {
                for _ in 0..rounds {
                    let r = client
                        .post(format!("{base}/v1/decisions"))
                        .bearer_auth(&token)
                        .json(&json!({"path": "agento/commissioning/routing", "input": ready_input()}))
                        .send()
                        .await
                        .unwrap();
                    assert_eq!(r.status(), StatusCode::OK, "{}", r.text().await.unwrap());
                }
            });
        }
        set
    };
    let mut writers = deciding(&app, 40);
    let r = app
        .call(Method::POST, "/v1/ledger/keys/rotate", Some(&app.admin), None)
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    while let Some(done) = writers.join_next().await {
        done.unwrap();
    }
    let app = app.restart().await;
    let new = current_key(&app, &tenants[0].1).await;
    assert_ne!(new, old);
    let mut writers = deciding(&app, 5);
    while let Some(done) = writers.join_next().await {
        done.unwrap();
    }
    for (_, auditor) in &tenants {
        let file = export(&app, auditor, "").await;
        let entries = entries_of(&file);
        assert_eq!(
            entries.iter().filter(|e| e["kind"] == "decision").count(),
            45,
            "every acknowledged decision is in its tenant's log"
        );
        assert!(entries.iter().any(|e| e["kind"] == "ledger.key.rotate"));
        verify_bytes(&file, std::slice::from_ref(&new)).expect("trusting the new key");
        verify_bytes(&file, std::slice::from_ref(&old)).expect("trusting the old key");
    }
    for r in fsck_all(&app).await {
        assert!(r.problems.is_empty(), "{}: {:?}", r.tenant_id, r.problems);
    }
    app.stop().await;
}

on_both_backends!(impact_counts_apart_what_the_candidate_does_not_serve);

/// Decisions another bundle answered cannot change with this one: they are
/// counted as `not_served`, not as considered or failed.
async fn impact_counts_apart_what_the_candidate_does_not_serve(backend: Backend) {
    let app = spawn_app(backend).await;
    install_commissioning(&app, &app.admin, "r1").await;
    let other = bundle_of(
        &[("other/p.rego", "package other\n\nallow := true\n")],
        "o1",
        &["other"],
    );
    assert_eq!(app.upload(&app.admin, "other", other).await.status, StatusCode::CREATED);
    assert_eq!(app.activate(&app.admin, "other", "o1").await.status, StatusCode::OK);
    for body in [
        json!({"path": "agento/commissioning/routing", "input": ready_input()}),
        json!({"path": "agento/commissioning/routing", "input": blocked_input()}),
        json!({"path": "other/allow", "input": {}}),
    ] {
        let r = app.decide(&app.admin, body).await;
        assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    }
    let r = app
        .upload(&app.admin, "commissioning", commissioning_bundle("r2"))
        .await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.body);

    let impact = |bundle: &'static str, revision: &'static str| {
        app.call(
            Method::POST,
            "/v1/impact",
            Some(&app.admin),
            Some(json!({"bundle": bundle, "revision": revision})),
        )
    };
    let r = impact("commissioning", "r2").await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    let counts = |r: &Reply| {
        (
            r.body["considered"].as_u64(),
            r.body["unchanged"].as_u64(),
            r.body["failed"].as_u64(),
            r.body["not_served"].as_u64(),
        )
    };
    assert_eq!(counts(&r), (Some(2), Some(2), Some(0), Some(1)), "{}", r.body);
    let r = impact("other", "o1").await;
    assert_eq!(counts(&r), (Some(1), Some(1), Some(0), Some(2)), "{}", r.body);
}
