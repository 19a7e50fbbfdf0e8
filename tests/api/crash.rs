//! Durability as an operator meets it: `kill -9` in the middle of concurrent
//! decisions, a restart, and then every acknowledged receipt is in the log,
//! its proof verifies against the latest checkpoint, `warden fsck` passes,
//! `warden export` + `warden verify` accept the whole log, and `warden
//! replay` and `warden impact` work on what survived.

use std::path::Path;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use serde_json::{Value, json};
use warden::evidence::checkpoint::NoteVerifier;
use warden::evidence::receipt::Receipt;
use warden::evidence::verify;

use crate::cli::{install, run, start};
use crate::common::*;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kill_9_during_decisions_loses_no_acknowledged_receipt_sqlite() {
    kill_9_during_decisions(None).await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kill_9_during_decisions_loses_no_acknowledged_receipt_postgres() {
    kill_9_during_decisions(Some(fresh_postgres_database().await)).await
}

async fn post(client: &reqwest::Client, url: String, token: &str, body: Value) -> Value {
    let r = client.post(url).bearer_auth(token).json(&body).send().await.unwrap();
    assert!(r.status().is_success(), "{}", r.status());
    r.json().await.unwrap()
}

async fn get(client: &reqwest::Client, url: String, token: &str) -> Value {
    let r = client.get(url).bearer_auth(token).send().await.unwrap();
    assert!(r.status().is_success(), "{}", r.status());
    r.json().await.unwrap()
}

async fn kill_9_during_decisions(database_url: Option<String>) {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let mut env: Vec<(&str, &str)> = Vec::new();
    if let Some(url) = &database_url {
        env.push(("WARDEN_DATABASE_URL", url.as_str()));
    }
    let server = start(&data, &env);
    let admin = server.bootstrap_token();
    let client = reqwest::Client::new();
    let base = server.base.clone();
    install(&client, &base, &admin, "commissioning", commissioning_bundle("1")).await;
    let token_of = |roles: Value| {
        let (client, base, admin) = (client.clone(), base.clone(), admin.clone());
        async move {
            let body = json!({"name": "t", "roles": roles});
            post(&client, format!("{base}/v1/tokens"), &admin, body).await["token"]
                .as_str()
                .unwrap()
                .to_string()
        }
    };
    let orchestrator = token_of(json!(["orchestrator"])).await;
    let auditor = token_of(json!(["auditor"])).await;

    // Concurrent deciders keep every receipt they are given.
    let acked: Arc<Mutex<Vec<Receipt>>> = Arc::default();
    let stop = Arc::new(AtomicBool::new(false));
    let mut workers = Vec::new();
    for w in 0..24 {
        let (client, base, token, acked, stop) = (
            client.clone(),
            base.clone(),
            orchestrator.clone(),
            acked.clone(),
            stop.clone(),
        );
        workers.push(tokio::spawn(async move {
            let mut n = 0;
            while !stop.load(Ordering::Relaxed) {
                let body = json!({"path": "agento/commissioning/routing", "input": ready_input(),
                    "context": {"workflow_id": format!("wf-{w}-{n}")}});
                n += 1;
                let Ok(res) = client
                    .post(format!("{base}/v1/decisions"))
                    .bearer_auth(&token)
                    .json(&body)
                    .send()
                    .await
                else {
                    break;
                };
                let Ok(v) = res.json::<Value>().await else { break };
                let receipt: Receipt =
                    serde_json::from_value(v["receipt"].clone()).expect("a decision carries its receipt");
                acked.lock().unwrap().push(receipt);
            }
        }));
    }
    // Let load build up, then kill -9 mid-flight.
    let deadline = std::time::Instant::now() + Duration::from_secs(120);
    while acked.lock().unwrap().len() < 300 {
        assert!(
            std::time::Instant::now() < deadline,
            "only {} decisions acknowledged in two minutes",
            acked.lock().unwrap().len()
        );
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    let mut server = server;
    server.child.kill().unwrap();
    server.child.wait().unwrap();
    stop.store(true, Ordering::Relaxed);
    for w in workers {
        w.await.unwrap();
    }
    let acked = std::mem::take(&mut *acked.lock().unwrap());
    assert!(acked.len() >= 300);

    // Restart on the same data; every acknowledged receipt is there.
    let server = start(&data, &env);
    let base = server.base.clone();
    let keys = get(&client, format!("{base}/v1/ledger/keys"), &auditor).await;
    let key = NoteVerifier::parse(keys[0]["verifier"].as_str().unwrap()).unwrap();
    let latest = get(&client, format!("{base}/v1/ledger/checkpoint"), &auditor).await;
    let size = latest["size"].as_u64().unwrap();
    for r in &acked {
        verify::verify_receipt(r, std::slice::from_ref(&key), None).expect("the receipt as given verifies");
        assert!(
            r.index < size,
            "acknowledged entry {} is in the log of size {size}",
            r.index
        );
        let e = get(&client, format!("{base}/v1/ledger/entries/{}", r.index), &auditor).await;
        assert_eq!(e["entry_hash"], r.entry_hash.as_str(), "entry {} unchanged", r.index);
        let now: Receipt = serde_json::from_value(json!({
            "log": e["log"], "index": e["index"], "entry_hash": e["entry_hash"],
            "tree_size": e["tree_size"], "checkpoint": e["checkpoint"], "inclusion": e["inclusion"],
        }))
        .unwrap();
        assert_eq!(now.tree_size, size);
        verify::verify_receipt(
            &now,
            std::slice::from_ref(&key),
            Some(e["bytes"].as_str().unwrap().as_bytes()),
        )
        .expect("proof against the latest checkpoint");
    }

    // The operator's and the auditor's tools agree.
    let mut db_args = vec!["fsck", "--data-dir", data.to_str().unwrap()];
    if let Some(url) = &database_url {
        db_args.extend(["--database-url", url.as_str()]);
    }
    let (ok, out) = run(&db_args, &[]);
    assert!(ok && out.contains("ok: "), "{out}");
    let file = dir.path().join("evidence.ndjson");
    let auth = [("WARDEN_URL", base.as_str()), ("WARDEN_TOKEN", auditor.as_str())];
    let (ok, out) = run(&["export", "--out", file.to_str().unwrap()], &auth);
    assert!(ok, "{out}");
    let key_text = key.to_text();
    let (ok, out) = run(&["verify", file.to_str().unwrap(), "--key", &key_text], &[]);
    assert!(ok && out.contains(&format!("{size} entries")), "{out}");
    check_cli_receipt(dir.path(), &acked[0], &key_text);

    // Replay and impact from the command line, after the crash.
    let e = get(
        &client,
        format!("{base}/v1/ledger/entries/{}", acked[0].index),
        &auditor,
    )
    .await;
    let id = e["entry"]["payload"]["decision_id"].as_str().unwrap().to_string();
    let (ok, out) = run(&["replay", &id], &auth);
    assert!(ok && out.contains("\"match\": true"), "{out}");
    let (ok, out) = run(&["impact", "--bundle", "commissioning", "--revision", "1"], &auth);
    assert!(ok, "{out}");
    let json_end = out.rfind('}').unwrap();
    let view: Value = serde_json::from_str(&out[..=json_end]).unwrap();
    assert!(view["considered"].as_u64().unwrap() >= acked.len() as u64, "{out}");
    assert_eq!(
        view["changed"]["total"], 0,
        "the active revision changes nothing: {out}"
    );
    drop(server);
}

/// `warden verify-receipt` on a saved receipt, and on an altered one.
fn check_cli_receipt(dir: &Path, receipt: &Receipt, key: &str) {
    let good = dir.join("receipt.json");
    std::fs::write(&good, serde_json::to_vec(&json!({"receipt": receipt})).unwrap()).unwrap();
    let (ok, out) = run(&["verify-receipt", good.to_str().unwrap(), "--key", key], &[]);
    assert!(ok, "{out}");
    let mut bad = receipt.clone();
    bad.entry_hash = "00".repeat(32);
    let bad_path = dir.join("bad.json");
    std::fs::write(&bad_path, serde_json::to_vec(&bad).unwrap()).unwrap();
    let (ok, out) = run(&["verify-receipt", bad_path.to_str().unwrap(), "--key", key], &[]);
    assert!(!ok && out.contains("does not verify"), "{out}");
}
