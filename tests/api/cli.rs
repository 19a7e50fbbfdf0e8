//! The `warden` binary as a user runs it: first start prints the bootstrap
//! token once, the CLI builds, tests and pushes bundles, SIGTERM drains.

use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::Duration;

use serde_json::json;

use crate::common::*;

pub const BIN: &str = env!("CARGO_BIN_EXE_warden");

pub struct Server {
    pub child: Child,
    pub base: String,
    pub stdout: Vec<String>,
}

/// Starts `warden serve` on a free port; returns once it listens.
pub fn start(data_dir: &Path, extra_env: &[(&str, &str)]) -> Server {
    let mut cmd = Command::new(BIN);
    cmd.args(["serve", "--listen", "127.0.0.1:0", "--data-dir"])
        .arg(data_dir)
        .env_remove("WARDEN_BOOTSTRAP_TOKEN")
        .env("WARDEN_LOG", "info")
        // As in `spawn_with`: wall time on a busy machine is not the
        // policy's; tests of the bound set their own.
        .env("WARDEN_POLICY__EVAL_TIMEOUT_MS", "10000")
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    for (k, v) in extra_env {
        cmd.env(k, v);
    }
    let mut child = cmd.spawn().expect("start warden");
    let stderr = child.stderr.take().unwrap();
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(stderr).lines().map_while(Result::ok) {
            let _ = tx.send(line);
        }
    });
    let mut base = None;
    while base.is_none() {
        let line = rx
            .recv_timeout(Duration::from_secs(60))
            .expect("warden logs that it listens");
        let v: serde_json::Value = serde_json::from_str(&line).unwrap_or_default();
        if v["message"] == "warden listening" {
            base = Some(format!("http://{}", v["address"].as_str().unwrap()));
        }
    }
    std::thread::spawn(move || for _ in rx {});
    // Stdout: the bootstrap lines, if any, then `listening on …`.
    let stdout = child.stdout.take().unwrap();
    let (out_tx, out_rx) = mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines().map_while(Result::ok) {
            let _ = out_tx.send(line);
        }
    });
    let mut lines = Vec::new();
    loop {
        let l = out_rx
            .recv_timeout(Duration::from_secs(60))
            .expect("warden prints where it listens on stdout");
        if l.starts_with("listening on http://") {
            break;
        }
        lines.push(l);
    }
    std::thread::spawn(move || for _ in out_rx {});
    Server {
        child,
        base: base.unwrap(),
        stdout: lines,
    }
}

impl Server {
    /// The admin token a first start printed.
    pub fn bootstrap_token(&self) -> String {
        self.stdout
            .iter()
            .find_map(|l| l.strip_prefix("bootstrap admin token: "))
            .expect("the first start prints the admin token")
            .to_string()
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        // A failing test must not leave a server behind.
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn sigterm(child: &Child) {
    let ok = Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status()
        .unwrap()
        .success();
    assert!(ok, "kill -TERM");
}

/// Uploads revision "1" of a bundle and activates it.
pub async fn install(client: &reqwest::Client, base: &str, token: &str, name: &str, bundle: Vec<u8>) {
    let r = client
        .put(format!("{base}/v1/bundles/{name}"))
        .bearer_auth(token)
        .body(bundle)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 201);
    let r = client
        .post(format!("{base}/v1/bundles/{name}/activate"))
        .bearer_auth(token)
        .json(&json!({"revision": "1"}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
}

pub fn run(args: &[&str], env: &[(&str, &str)]) -> (bool, String) {
    let mut cmd = Command::new(BIN);
    cmd.args(args);
    for (k, v) in env {
        cmd.env(k, v);
    }
    let out = cmd.output().unwrap();
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    (out.status.success(), text)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn first_start_prints_the_token_once_and_sigterm_drains_in_flight_requests() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    // The in-flight decision takes seconds; the drain waits for it however
    // busy the machine is.
    let mut server = start(
        &data,
        &[
            ("WARDEN_POLICY__EVAL_TIMEOUT_MS", "60000"),
            ("WARDEN_LIMITS__REQUEST_TIMEOUT_MS", "120000"),
            ("WARDEN_SHUTDOWN_GRACE_SECS", "120"),
        ],
    );
    let token_line = server
        .stdout
        .iter()
        .find(|l| l.starts_with("bootstrap admin token: "))
        .expect("token printed");
    let token = token_line.trim_start_matches("bootstrap admin token: ").to_string();
    assert!(token.starts_with("wdn_"));
    assert!(
        dir.path().join("data/warden.db").exists(),
        "embedded SQLite under the data directory"
    );
    assert!(
        dir.path().join("data/keys/ledger-ed25519.pem").exists(),
        "signing key created on first start"
    );

    // The CLI: keygen, build, sign, push --activate.
    let keys = dir.path().join("keys");
    let (ok, out) = run(&["keygen", "--out", keys.to_str().unwrap(), "--name", "ci"], &[]);
    assert!(ok, "{out}");
    let bundle = dir.path().join("commissioning.tar.gz");
    let policy_dir = repo_path("policies/commissioning");
    let (ok, out) = run(
        &[
            "bundle",
            "build",
            policy_dir.to_str().unwrap(),
            "--revision",
            "7",
            "-o",
            bundle.to_str().unwrap(),
        ],
        &[],
    );
    assert!(ok, "{out}");
    let (ok, out) = run(
        &[
            "bundle",
            "sign",
            bundle.to_str().unwrap(),
            "--key",
            keys.join("ci.pem").to_str().unwrap(),
            "--key-id",
            "ci",
        ],
        &[],
    );
    assert!(ok, "{out}");
    let push = || {
        run(
            &[
                "bundle",
                "push",
                bundle.to_str().unwrap(),
                "--name",
                "commissioning",
                "--activate",
            ],
            &[("WARDEN_URL", &server.base), ("WARDEN_TOKEN", &token)],
        )
    };
    let (ok, out) = push();
    // Signed with a key the tenant has not registered: refused by the server.
    assert!(!ok && out.contains("signature_unknown_key"), "{out}");
    let client = reqwest::Client::new();
    let public = std::fs::read_to_string(keys.join("ci.pub.pem")).unwrap();
    let r = client
        .post(format!("{}/v1/keys", server.base))
        .bearer_auth(&token)
        .json(&json!({"key_id": "ci", "algorithm": "EdDSA", "public_key": public}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 201);
    let (ok, out) = push();
    assert!(ok && out.contains("activated commissioning revision 7"), "{out}");

    // A slow policy, to have a request in flight when SIGTERM arrives.
    let slow = bundle_of(
        &[(
            "slow.rego",
            "package slow\n\nn := count([x | some a in numbers.range(1, 1000); some b in numbers.range(1, 1000); x := a + b; x < 0])\n",
        )],
        "1",
        &["slow"],
    );
    install(&client, &server.base, &token, "slow", slow).await;

    let r = client
        .post(format!("{}/v1/decisions", server.base))
        .bearer_auth(&token)
        .json(&json!({"path": "slow/n"}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);

    let in_flight = {
        let client = client.clone();
        let url = format!("{}/v1/decisions", server.base);
        let token = token.clone();
        tokio::spawn(async move {
            let r = client
                .post(url)
                .bearer_auth(token)
                .json(&json!({"path": "slow/n"}))
                .send()
                .await?;
            let status = r.status();
            r.text().await.map(|body| (status, body))
        })
    };
    // SIGTERM once the server is answering it, not after a guessed delay.
    let in_flight_series = "warden_http_requests_in_flight{method=\"POST\",route=\"/v1/decisions\"} ";
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
    loop {
        let metrics = client
            .get(format!("{}/metrics", server.base))
            .bearer_auth(&token)
            .send()
            .await
            .unwrap()
            .text()
            .await
            .unwrap();
        let n = metrics
            .lines()
            .find_map(|l| l.strip_prefix(in_flight_series))
            .map(|v| v.trim().parse::<i64>().unwrap());
        if n == Some(1) {
            break;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "the decision never went in flight: {n:?}"
        );
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
    sigterm(&server.child);
    let (status, body) = in_flight
        .await
        .unwrap()
        .expect("the in-flight request is answered, not dropped");
    assert_eq!(status, 200, "{body}");
    let exit = server.child.wait().unwrap();
    assert!(exit.success(), "exits cleanly after draining: {exit:?}");

    // Second start: the store has tenants, so no token is printed, and the
    // active bundle answers at once.
    let mut again = start(&data, &[]);
    assert!(
        again.stdout.iter().all(|l| !l.contains("bootstrap admin token")),
        "{:?}",
        again.stdout
    );
    let r = client
        .post(format!("{}/v1/decisions", again.base))
        .bearer_auth(&token)
        .json(&json!({"path": "agento/commissioning/routing", "input": blocked_input()}))
        .send()
        .await
        .unwrap();
    let body: serde_json::Value = r.json().await.unwrap();
    assert_eq!(
        body["reasons"],
        json!(["punch items still open", "test result outside tolerance"])
    );
    sigterm(&again.child);
    assert!(again.child.wait().unwrap().success());
}

#[test]
fn bundle_test_runs_rego_tests_and_fails_on_a_failing_one() {
    let (ok, out) = run(
        &["bundle", "test", repo_path("policies/commissioning").to_str().unwrap()],
        &[],
    );
    assert!(ok, "{out}");
    assert!(out.contains("6 passed, 0 failed"), "{out}");
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(
        dir.path().join("p_test.rego"),
        "package p\n\nallow if input.ok\n\ntest_denied if allow with input as {\"ok\": false}\n",
    )
    .unwrap();
    let (ok, out) = run(&["bundle", "test", dir.path().to_str().unwrap()], &[]);
    assert!(!ok, "{out}");
    assert!(out.contains("FAIL p.test_denied"), "{out}");
}

/// The heap ceiling is process-wide, so it is tested on a child process.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_policy_exhausting_memory_is_refused_and_the_server_survives() {
    let dir = tempfile::tempdir().unwrap();
    let mut server = start(
        &dir.path().join("data"),
        &[
            ("WARDEN_POLICY__MAX_MEMORY_BYTES", "268435456"),
            ("WARDEN_POLICY__EVAL_TIMEOUT_MS", "60000"),
        ],
    );
    let token = server.stdout[0]
        .trim_start_matches("bootstrap admin token: ")
        .to_string();
    let client = reqwest::Client::new();
    let bundle = bundle_of(
        &[("m.rego", "package mem\n\nbig := count(numbers.range(1, input.n))\n")],
        "1",
        &["mem"],
    );
    install(&client, &server.base, &token, "mem", bundle).await;
    let decide = |n: u64| {
        client
            .post(format!("{}/v1/decisions", server.base))
            .bearer_auth(&token)
            .json(&json!({"path": "mem/big", "input": {"n": n}}))
            .send()
    };
    let r = decide(100_000_000).await.unwrap();
    assert_eq!(r.status(), 422);
    let body: serde_json::Value = r.json().await.unwrap();
    assert_eq!(body["code"], "policy_memory_exceeded", "{body}");
    let body: serde_json::Value = decide(1000).await.unwrap().json().await.unwrap();
    assert_eq!(body["result"], 1000, "the server keeps answering: {body}");
    sigterm(&server.child);
    assert!(server.child.wait().unwrap().success());
}
