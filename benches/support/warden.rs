//! The release `warden` binary as the benches run it: on a fresh SQLite
//! store or PostgreSQL database, with tokens, the shipped kernel policy,
//! JSON requests, and its memory and CPU read from /proc.

// Each bench uses a part of it.
#![allow(dead_code)]

use std::path::Path;
use std::process::{Child, Command};
use std::time::Duration;

use serde_json::{Value, json};
use sqlx::Connection;

use super::launch::{Launched, launch};

/// The longest a request may take before the harness gives up.
const EVENT_WAIT: Duration = Duration::from_secs(30);

pub struct Warden {
    pub child: Child,
    pub base: String,
    pub admin: String,
    pub http: reqwest::Client,
    /// The PostgreSQL server's admin URL and the database made for this run
    /// (None for a further instance on another's database: the first drops it).
    database: Option<(String, String)>,
    /// The database URL it was started with, if PostgreSQL.
    database_url: Option<String>,
    dir: tempfile::TempDir,
}

impl Drop for Warden {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Why a request failed: its path, status and problem code.
pub type Failure = String;

impl Warden {
    /// Starts the release binary on a fresh store, with `env` set.
    pub async fn start(postgres: bool, env: &[(&str, &str)]) -> Warden {
        let database = if postgres { Some(fresh_postgres().await) } else { None };
        let url = database.as_ref().map(|(admin, name)| database_url(admin, name));
        let mut w = Warden::spawn(tempfile::tempdir().unwrap(), url, env);
        w.database = database;
        w
    }

    /// Another instance on this one's PostgreSQL database, with its signing
    /// key (as several instances behind a load balancer run), and `env`.
    pub fn sibling(&self, env: &[(&str, &str)]) -> Warden {
        let url = self
            .database_url
            .clone()
            .expect("instances share a PostgreSQL database");
        let dir = tempfile::tempdir().unwrap();
        let keys = dir.path().join("data").join("keys");
        std::fs::create_dir_all(&keys).unwrap();
        for f in std::fs::read_dir(self.dir.path().join("data").join("keys")).unwrap() {
            let f = f.unwrap();
            std::fs::copy(f.path(), keys.join(f.file_name())).unwrap();
        }
        let mut w = Warden::spawn(dir, Some(url), env);
        w.admin = self.admin.clone();
        w
    }

    /// The PostgreSQL database it runs on, if any.
    pub fn database_url(&self) -> Option<&str> {
        self.database_url.as_deref()
    }

    /// This instance's id, as its data directory holds it (the holder of a
    /// sink lease is named by it).
    pub fn instance_id(&self) -> String {
        std::fs::read_to_string(self.dir.path().join("data").join("instance-id"))
            .unwrap()
            .trim()
            .to_string()
    }

    fn spawn(dir: tempfile::TempDir, database_url: Option<String>, env: &[(&str, &str)]) -> Warden {
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_warden"));
        cmd.args(["serve", "--listen", "127.0.0.1:0", "--data-dir"])
            .arg(dir.path().join("data"))
            .env(
                "WARDEN_LOG",
                std::env::var("WARDEN_BENCH_LOG").unwrap_or_else(|_| "info".into()),
            )
            .env_remove("WARDEN_CONFIG")
            .env_remove("WARDEN_DATABASE_URL")
            // As deployed: with either set, every error value the policy
            // engine makes (and drops) while it evaluates captures a
            // backtrace, a twentieth of an evaluation.
            .env_remove("RUST_BACKTRACE")
            .env_remove("RUST_LIB_BACKTRACE");
        cmd.envs(env.iter().copied());
        if let Some(url) = &database_url {
            cmd.env("WARDEN_DATABASE_URL", url);
        }
        let Launched {
            child,
            admin,
            base,
            log,
        } = launch(cmd);
        // Warnings and errors are shown, and debug lines when
        // `WARDEN_BENCH_LOG` asks for them.
        std::thread::spawn(move || {
            for line in log.map_while(Result::ok) {
                let v: Value = serde_json::from_str(&line).unwrap_or_default();
                if v["level"] == "WARN" || v["level"] == "ERROR" || v["level"] == "DEBUG" {
                    eprintln!("warden: {line}");
                }
            }
        });
        // One connection per stream and per request in flight.
        let http = reqwest::Client::builder()
            .pool_max_idle_per_host(8192)
            .tcp_nodelay(true)
            .build()
            .unwrap();
        Warden {
            child,
            base,
            admin,
            http,
            database: None,
            database_url,
            dir,
        }
    }

    /// A new token with these roles.
    pub async fn token(&self, roles: &[&str]) -> String {
        self.token_as(&self.admin, roles).await
    }

    /// A new token with these roles, minted by this (tenant admin's) token.
    pub async fn token_as(&self, admin: &str, roles: &[&str]) -> String {
        let r = self
            .post(admin, "/v1/tokens", &json!({"name": roles.join("+"), "roles": roles}))
            .await
            .expect("a token");
        r["token"].as_str().unwrap().to_string()
    }

    /// A new agent token bound to the agent ids starting with `prefix`.
    pub async fn agent_token(&self, prefix: &str) -> String {
        self.agent_token_as(&self.admin, prefix).await
    }

    /// An agent token as [`Warden::agent_token`], minted by this (tenant
    /// admin's) token.
    pub async fn agent_token_as(&self, admin: &str, prefix: &str) -> String {
        let r = self
            .post(
                admin,
                "/v1/tokens",
                &json!({"name": "agent", "roles": ["agent"], "agent_ids": [format!("{prefix}*")]}),
            )
            .await
            .expect("a token");
        r["token"].as_str().unwrap().to_string()
    }

    /// Uploads and activates the shipped kernel policy.
    pub async fn install_kernel_policy(&self) {
        self.install_kernel_policy_as(&self.admin).await
    }

    /// Uploads and activates the shipped kernel policy with this (tenant
    /// admin's) token.
    pub async fn install_kernel_policy_as(&self, admin: &str) {
        self.install_kernel_policy_from(admin, concat!(env!("CARGO_MANIFEST_DIR"), "/policies/kernel"))
            .await
    }

    /// Builds the bundle in `dir` and activates it as the kernel's policy
    /// with this (tenant admin's) token.
    pub async fn install_kernel_policy_from(&self, admin: &str, dir: &str) {
        let bundle = warden::cli::bundle::build(Path::new(dir), Some("1"), &[])
            .unwrap_or_else(|e| panic!("the kernel bundle in {dir} builds: {e}"));
        self.install_bundle(admin, "kernel", bundle).await;
    }

    /// Uploads `bundle` (revision "1") as `name` with this (tenant admin's)
    /// token, and activates it.
    pub async fn install_bundle(&self, admin: &str, name: &str, bundle: Vec<u8>) {
        let r = self
            .http
            .put(format!("{}/v1/bundles/{name}", self.base))
            .bearer_auth(admin)
            .header("content-type", "application/gzip")
            .body(bundle)
            .send()
            .await
            .unwrap();
        let status = r.status();
        assert_eq!(status, 201, "upload {name}: {}", r.text().await.unwrap_or_default());
        self.post(
            admin,
            &format!("/v1/bundles/{name}/activate"),
            &json!({"revision": "1"}),
        )
        .await
        .unwrap_or_else(|e| panic!("activate {name}: {e}"));
    }

    /// POSTs `body`; the answer's JSON when it is a 2xx.
    pub async fn post(&self, token: &str, path: &str, body: &Value) -> Result<Value, Failure> {
        let r = self
            .http
            .post(format!("{}{path}", self.base))
            .bearer_auth(token)
            .json(body)
            .timeout(EVENT_WAIT)
            .send()
            .await
            .map_err(|e| format!("POST {path}: {}", if e.is_timeout() { "timed out" } else { "failed" }))?;
        let status = r.status();
        let body: Value = r.json().await.unwrap_or_default();
        if status.is_success() {
            Ok(body)
        } else {
            Err(format!(
                "POST {path}: {} {}",
                status.as_u16(),
                body["code"].as_str().unwrap_or("?")
            ))
        }
    }

    /// One series of `/metrics` (name and labels, as written); 0 when absent.
    pub async fn metric(&self, series: &str) -> f64 {
        let text = self
            .http
            .get(format!("{}/metrics", self.base))
            .bearer_auth(&self.admin)
            .send()
            .await
            .and_then(|r| r.error_for_status())
            .expect("/metrics")
            .text()
            .await
            .unwrap_or_default();
        let prefix = format!("{series} ");
        text.lines()
            .find_map(|l| l.strip_prefix(&prefix).and_then(|v| v.trim().parse().ok()))
            .unwrap_or(0.0)
    }

    /// A field of /proc/<pid>/status, in KiB (VmRSS, VmHWM).
    pub fn status_kib(&self, field: &str) -> u64 {
        let status = std::fs::read_to_string(format!("/proc/{}/status", self.child.id())).unwrap_or_default();
        status
            .lines()
            .find_map(|l| l.strip_prefix(field)?.strip_prefix(':'))
            .and_then(|v| v.split_whitespace().next())
            .and_then(|v| v.parse().ok())
            .unwrap_or(0)
    }

    /// Warden's CPU time so far (user + system), in clock ticks.
    pub fn cpu_ticks(&self) -> u64 {
        let stat = std::fs::read_to_string(format!("/proc/{}/stat", self.child.id())).unwrap_or_default();
        // After the command name in parentheses: state is field 3, utime 14, stime 15.
        let rest = stat.rsplit_once(')').map(|(_, r)| r).unwrap_or_default();
        let fields: Vec<u64> = rest.split_whitespace().map(|f| f.parse().unwrap_or(0)).collect();
        fields.get(11).copied().unwrap_or(0) + fields.get(12).copied().unwrap_or(0)
    }

    /// Stops Warden and drops the PostgreSQL database made for it.
    pub async fn stop(mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        if let Some((admin, name)) = self.database.take()
            && let Ok(mut conn) = sqlx::PgConnection::connect(&admin).await
        {
            let _ = sqlx::query(sqlx::AssertSqlSafe(format!("DROP DATABASE IF EXISTS {name}")))
                .execute(&mut conn)
                .await;
        }
    }
}

/// A fresh, empty PostgreSQL database: (the server's admin URL, its name).
pub async fn fresh_postgres() -> (String, String) {
    let admin = std::env::var("WARDEN_BENCH_POSTGRES_URL")
        .unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/postgres".into());
    let mut conn = sqlx::PgConnection::connect(&admin)
        .await
        .unwrap_or_else(|e| panic!("PostgreSQL must be reachable at {admin} for --postgres: {e}"));
    let mut b = [0u8; 6];
    getrandom::fill(&mut b).unwrap();
    let name = format!("warden_t_bench_{}", hex::encode(b));
    sqlx::query(sqlx::AssertSqlSafe(format!("CREATE DATABASE {name}")))
        .execute(&mut conn)
        .await
        .expect("create the bench database");
    (admin, name)
}

pub fn database_url(admin: &str, name: &str) -> String {
    let base = admin.rsplit_once('/').map(|(b, _)| b).unwrap_or(admin);
    format!("{base}/{name}")
}

pub fn clock_ticks_per_second() -> f64 {
    Command::new("getconf")
        .arg("CLK_TCK")
        .output()
        .ok()
        .and_then(|o| String::from_utf8(o.stdout).ok())
        .and_then(|s| s.trim().parse().ok())
        .unwrap_or(100.0)
}
