//! `spawn_app`: a Warden on port 0 with a fresh database, and helpers to
//! build bundles.

use std::path::{Path, PathBuf};

use reqwest::{Method, StatusCode};
use serde_json::{Value, json};
use sqlx::Connection;
use warden::clock::Clock;
use warden::config::Config;
use warden::http::AppState;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Backend {
    Sqlite,
    Postgres,
}

/// Runs an async test body once per storage backend.
#[macro_export]
macro_rules! on_both_backends {
    ($($name:ident),* $(,)?) => {
        $(
            mod $name {
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn sqlite() {
                    super::$name($crate::common::Backend::Sqlite).await
                }
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn postgres() {
                    super::$name($crate::common::Backend::Postgres).await
                }
            }
        )*
    };
}

pub struct TestApp {
    pub base: String,
    pub admin: String,
    pub client: reqwest::Client,
    pub state: AppState,
    config: Config,
    clock: Clock,
    _dir: tempfile::TempDir,
    shutdown: Option<tokio::sync::oneshot::Sender<()>>,
    server: Option<tokio::task::JoinHandle<anyhow::Result<()>>>,
}

pub fn postgres_admin_url() -> String {
    std::env::var("WARDEN_TEST_POSTGRES_URL").unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/postgres".into())
}

/// A fresh, empty PostgreSQL database; returns its URL.
pub async fn fresh_postgres_database() -> String {
    let admin = postgres_admin_url();
    let mut conn = sqlx::PgConnection::connect(&admin)
        .await
        .unwrap_or_else(|e| panic!("PostgreSQL must be reachable at {admin} for these tests: {e}"));
    let name = format!("warden_t_{}", ulid_like());
    sqlx::query(sqlx::AssertSqlSafe(format!("CREATE DATABASE {name}")))
        .execute(&mut conn)
        .await
        .expect("create test database");
    let base = admin.rsplit_once('/').map(|(b, _)| b.to_string()).unwrap_or(admin);
    format!("{base}/{name}")
}

fn ulid_like() -> String {
    let mut b = [0u8; 10];
    getrandom::fill(&mut b).unwrap();
    hex::encode(b)
}

pub async fn spawn_app(backend: Backend) -> TestApp {
    spawn_with(backend, |_| {}, Clock::system()).await
}

pub async fn spawn_with(backend: Backend, tweak: impl FnOnce(&mut Config), clock: Clock) -> TestApp {
    let dir = tempfile::tempdir().unwrap();
    let mut config = Config::load(None, Vec::<(String, String)>::new()).unwrap();
    config.data_dir = dir.path().join("data");
    config.max_connections = 4;
    // Policies here take microseconds; the production bound (250 ms of
    // wall time) would fail them on a machine kept busy by other builds.
    // Tests of the bound set their own.
    config.policy.eval_timeout_ms = 10_000;
    config.database_url = match backend {
        Backend::Sqlite => None,
        Backend::Postgres => Some(fresh_postgres_database().await),
    };
    tweak(&mut config);
    let (state, bootstrap) = warden::app::build(config.clone(), clock.clone(), None)
        .await
        .expect("build app");
    let admin = match bootstrap {
        warden::app::Bootstrap::Minted(t) => t,
        other => panic!("a fresh store must mint a bootstrap token, got {other:?}"),
    };
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    serve(listener, state, admin, config, clock, dir)
}

fn serve(
    listener: tokio::net::TcpListener,
    state: AppState,
    admin: String,
    config: Config,
    clock: Clock,
    dir: tempfile::TempDir,
) -> TestApp {
    let base = format!("http://{}", listener.local_addr().unwrap());
    let (tx, rx) = tokio::sync::oneshot::channel::<()>();
    let server = tokio::spawn(warden::app::run(listener, state.clone(), async move {
        let _ = rx.await;
    }));
    TestApp {
        base,
        admin,
        client: reqwest::Client::new(),
        state,
        config,
        clock,
        _dir: dir,
        shutdown: Some(tx),
        server: Some(server),
    }
}

pub struct Reply {
    pub status: StatusCode,
    pub body: Value,
    pub bytes: Vec<u8>,
    pub content_type: String,
}

impl Reply {
    /// The problem `code`, asserting the body is a problem document.
    pub fn code(&self) -> &str {
        assert_eq!(
            self.content_type, "application/problem+json",
            "not a problem: {} {}",
            self.status, self.body
        );
        assert_eq!(self.body["status"].as_u64(), Some(self.status.as_u16() as u64));
        assert!(
            self.body["detail"].as_str().is_some_and(|d| !d.is_empty()),
            "problem without detail"
        );
        self.body["code"].as_str().unwrap_or_default()
    }
}

impl TestApp {
    pub async fn call(&self, method: Method, path: &str, token: Option<&str>, body: Option<Value>) -> Reply {
        let mut req = self.client.request(method, format!("{}{path}", self.base));
        if let Some(t) = token {
            req = req.bearer_auth(t);
        }
        if let Some(b) = body {
            req = req.json(&b);
        }
        into_reply(req.send().await.expect("request")).await
    }

    pub async fn raw(&self, method: Method, path: &str, token: &str, content_type: &str, body: Vec<u8>) -> Reply {
        let req = self
            .client
            .request(method, format!("{}{path}", self.base))
            .bearer_auth(token)
            .header("content-type", content_type)
            .body(body);
        into_reply(req.send().await.expect("request")).await
    }

    pub async fn upload(&self, token: &str, name: &str, bundle: Vec<u8>) -> Reply {
        self.raw(
            Method::PUT,
            &format!("/v1/bundles/{name}"),
            token,
            "application/gzip",
            bundle,
        )
        .await
    }

    pub async fn activate(&self, token: &str, name: &str, revision: &str) -> Reply {
        self.call(
            Method::POST,
            &format!("/v1/bundles/{name}/activate"),
            Some(token),
            Some(json!({"revision": revision})),
        )
        .await
    }

    pub async fn decide(&self, token: &str, body: Value) -> Reply {
        self.call(Method::POST, "/v1/decisions", Some(token), Some(body)).await
    }

    /// Replays a recorded decision (`POST /v1/decisions/{id}/replay`).
    pub async fn replay(&self, token: &str, decision_id: &str) -> Reply {
        self.call(
            Method::POST,
            &format!("/v1/decisions/{decision_id}/replay"),
            Some(token),
            None,
        )
        .await
    }

    /// A new token in the caller's tenant with these roles.
    pub async fn token(&self, admin: &str, roles: &[&str]) -> String {
        let r = self
            .call(
                Method::POST,
                "/v1/tokens",
                Some(admin),
                Some(json!({"name": roles.join("+"), "roles": roles})),
            )
            .await;
        assert_eq!(r.status, StatusCode::CREATED, "{}", r.body);
        r.body["token"].as_str().unwrap().to_string()
    }

    /// A new token minted with this body (`name`, `roles`, and any of
    /// `subject`, `agent_ids`, `runner_ids`, `expires_at`, `ttl_seconds`).
    pub async fn token_with(&self, admin: &str, body: Value) -> String {
        let r = self.call(Method::POST, "/v1/tokens", Some(admin), Some(body)).await;
        assert_eq!(r.status, StatusCode::CREATED, "{}", r.body);
        r.body["token"].as_str().unwrap().to_string()
    }

    /// A new tenant; returns its admin token.
    pub async fn tenant(&self, name: &str) -> String {
        self.tenant_and_id(name).await.1
    }

    /// A new tenant: (its id, its admin token).
    pub async fn tenant_and_id(&self, name: &str) -> (String, String) {
        let r = self
            .call(
                Method::POST,
                "/v1/tenants",
                Some(&self.admin),
                Some(json!({"name": name})),
            )
            .await;
        assert_eq!(r.status, StatusCode::CREATED, "{}", r.body);
        (
            r.body["tenant"]["id"].as_str().unwrap().to_string(),
            r.body["admin_token"]["token"].as_str().unwrap().to_string(),
        )
    }

    /// How many bundle versions the store holds for this tenant.
    pub async fn stored_versions(&self, token: &str) -> i64 {
        let r = self.call(Method::GET, "/v1/bundles", Some(token), None).await;
        assert_eq!(r.status, StatusCode::OK, "{}", r.body);
        r.body
            .as_array()
            .unwrap()
            .iter()
            .map(|b| b["versions"].as_i64().unwrap())
            .sum()
    }

    /// Stops this server and starts a new one on the same address, data
    /// directory and database: what survives is only what was stored.
    pub async fn restart(mut self) -> TestApp {
        let addr = self.base.trim_start_matches("http://").to_string();
        if let Some(tx) = self.shutdown.take() {
            let _ = tx.send(());
        }
        if let Some(s) = self.server.take() {
            s.await.unwrap().unwrap();
        }
        let (state, bootstrap) = warden::app::build(self.config.clone(), self.clock.clone(), None)
            .await
            .expect("build app again");
        assert_eq!(bootstrap, warden::app::Bootstrap::Existing);
        let listener = tokio::net::TcpListener::bind(&addr).await.unwrap();
        let dir = std::mem::replace(&mut self._dir, tempfile::tempdir().unwrap());
        serve(
            listener,
            state,
            self.admin.clone(),
            self.config.clone(),
            self.clock.clone(),
            dir,
        )
    }

    /// The configuration this server runs with.
    pub fn config(&self) -> &Config {
        &self.config
    }

    /// As [`TestApp::restart`], with the configuration changed first.
    pub async fn restart_with(mut self, tweak: impl FnOnce(&mut Config)) -> TestApp {
        tweak(&mut self.config);
        self.restart().await
    }

    /// Another instance on the same database, with its own data directory
    /// (and so its own instance name) but the same signing key.
    pub async fn second_instance(&self) -> TestApp {
        let dir = tempfile::tempdir().unwrap();
        let mut config = self.config.clone();
        config.database_url = Some(self.config.database_url());
        config.data_dir = dir.path().join("data");
        let keys = self.config.data_dir.join("keys");
        std::fs::create_dir_all(config.data_dir.join("keys")).unwrap();
        for f in std::fs::read_dir(&keys).unwrap() {
            let f = f.unwrap();
            std::fs::copy(f.path(), config.data_dir.join("keys").join(f.file_name())).unwrap();
        }
        let (state, bootstrap) = warden::app::build(config.clone(), self.clock.clone(), None)
            .await
            .expect("build a second instance");
        assert_eq!(bootstrap, warden::app::Bootstrap::Existing);
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        serve(listener, state, self.admin.clone(), config, self.clock.clone(), dir)
    }

    pub async fn stop(mut self) {
        if let Some(tx) = self.shutdown.take() {
            let _ = tx.send(());
        }
        if let Some(s) = self.server.take() {
            s.await.unwrap().unwrap();
        }
    }
}

pub async fn into_reply(res: reqwest::Response) -> Reply {
    let status = res.status();
    let content_type = res
        .headers()
        .get("content-type")
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default()
        .to_string();
    let bytes = res.bytes().await.unwrap().to_vec();
    let body = serde_json::from_slice(&bytes).unwrap_or(Value::Null);
    Reply {
        status,
        body,
        bytes,
        content_type,
    }
}

pub fn repo_path(rel: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join(rel)
}

/// The shipped seed-001 routing policy, built with `revision`.
pub fn commissioning_bundle(revision: &str) -> Vec<u8> {
    warden::cli::bundle::build(&repo_path("policies/commissioning"), Some(revision), &[]).unwrap()
}

/// A bundle from in-memory files (paths relative); `.manifest` is added from
/// `revision` and `roots`.
pub fn bundle_of(files: &[(&str, &str)], revision: &str, roots: &[&str]) -> Vec<u8> {
    let mut out: Vec<warden::policy::archive::ArchiveFile> = files
        .iter()
        .map(|(p, c)| warden::policy::archive::ArchiveFile {
            path: p.to_string(),
            bytes: c.as_bytes().to_vec(),
        })
        .collect();
    out.push(warden::policy::archive::ArchiveFile {
        path: ".manifest".into(),
        bytes: serde_json::to_vec(&json!({"revision": revision, "roots": roots})).unwrap(),
    });
    warden::policy::archive::write(&out).unwrap()
}

/// `warden_http_requests_in_flight` for one method and route, as
/// `/metrics` shows it now (0 when absent).
pub async fn in_flight(app: &TestApp, method: &str, route: &str) -> i64 {
    let r = app.call(Method::GET, "/metrics", Some(&app.admin), None).await;
    let series = format!("warden_http_requests_in_flight{{method=\"{method}\",route=\"{route}\"}}");
    sample(&String::from_utf8_lossy(&r.bytes), &series) as i64
}

/// The value of one series (name and labels, as written) in a `/metrics`
/// text; 0 when absent.
pub fn sample(metrics: &str, series: &str) -> f64 {
    let prefix = format!("{series} ");
    metrics
        .lines()
        .find_map(|l| l.strip_prefix(&prefix).map(|v| v.trim().parse().unwrap()))
        .unwrap_or(0.0)
}

/// Input the seed-001 policy allows.
pub fn ready_input() -> Value {
    json!({
        "procore": {"punch_items_open_bess": []},
        "protection_settings_schedule": {
            "trip_voltage": {"expected": 480, "tolerance": 5},
            "trip_delay_ms": {"expected": 200, "tolerance": 10}
        },
        "test_results": [
            {"parameter": "trip_voltage", "value": 483},
            {"parameter": "trip_delay_ms", "value": 205}
        ]
    })
}

/// Input with an open punch item and a result out of tolerance.
pub fn blocked_input() -> Value {
    json!({
        "procore": {"punch_items_open_bess": [{"id": 41, "title": "torque marks missing"}]},
        "protection_settings_schedule": {"trip_voltage": {"expected": 480, "tolerance": 5}},
        "test_results": [{"parameter": "trip_voltage", "value": 470}]
    })
}

/// Uploads and activates the seed-001 bundle as `token`.
pub async fn install_commissioning(app: &TestApp, token: &str, revision: &str) {
    let r = app.upload(token, "commissioning", commissioning_bundle(revision)).await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.body);
    let r = app.activate(token, "commissioning", revision).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
}
