//! A store that refuses commits, as an operator meets it: decisions are
//! refused with 503 `ledger_unavailable` and nothing is acknowledged,
//! readiness fails naming the ledger and why, and once the fault is gone
//! the same process commits again, without a restart, and every receipt it
//! gave verifies.
//!
//! The fault is a full database: on SQLite a page limit no larger than the
//! file (`PRAGMA max_page_count`, set on every connection of the pool); on
//! PostgreSQL a deferred constraint trigger that raises `disk_full` (SQLSTATE
//! 53100) at COMMIT for every ledger entry and probe row, so the batch fails
//! at its COMMIT, as it does when the disk fills while the WAL is written.

use std::time::{Duration, Instant};

use reqwest::{Method, StatusCode};
use serde_json::{Value, json};
use warden::clock::Clock;
use warden::evidence::checkpoint::NoteVerifier;
use warden::evidence::receipt::Receipt;
use warden::evidence::verify;
use warden::ledger::fsck;

use crate::common::*;
use crate::on_both_backends;

on_both_backends!(
    a_full_store_heals_without_a_restart,
    a_batch_failing_mid_statement_does_not_poison_the_next,
    a_full_ledger_queue_refuses_at_once_and_loses_nothing,
);

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_database_that_goes_away_fails_fast_and_heals() {
    database_goes_away().await
}

/// Makes the store full, and lifts it.
enum Fault {
    Sqlite,
    Postgres(sqlx::PgPool),
}

impl Fault {
    async fn of(app: &TestApp) -> Fault {
        let url = app.state.config.database_url();
        if url.starts_with("postgres") {
            Fault::Postgres(sqlx::PgPool::connect(&url).await.unwrap())
        } else {
            Fault::Sqlite
        }
    }

    async fn fill(&self, app: &TestApp) {
        match self {
            Fault::Sqlite => app.state.store.limit_pages(Some(1)),
            Fault::Postgres(db) => {
                for sql in [
                    "CREATE FUNCTION disk_is_full() RETURNS trigger LANGUAGE plpgsql AS $$ \
                     BEGIN RAISE EXCEPTION 'could not extend file: No space left on device' USING ERRCODE = '53100'; END $$",
                    "CREATE CONSTRAINT TRIGGER full_entries AFTER INSERT ON ledger_entries \
                     DEFERRABLE INITIALLY DEFERRED FOR EACH ROW EXECUTE FUNCTION disk_is_full()",
                    "CREATE CONSTRAINT TRIGGER full_probe AFTER INSERT ON store_probe \
                     DEFERRABLE INITIALLY DEFERRED FOR EACH ROW EXECUTE FUNCTION disk_is_full()",
                ] {
                    sqlx::query(sqlx::AssertSqlSafe(sql)).execute(db).await.unwrap();
                }
            }
        }
    }

    async fn free(&self, app: &TestApp) {
        match self {
            Fault::Sqlite => app.state.store.limit_pages(None),
            Fault::Postgres(db) => {
                for sql in [
                    "DROP TRIGGER full_entries ON ledger_entries",
                    "DROP TRIGGER full_probe ON store_probe",
                    "DROP FUNCTION disk_is_full()",
                ] {
                    sqlx::query(sqlx::AssertSqlSafe(sql)).execute(db).await.unwrap();
                }
            }
        }
    }
}

async fn decide(app: &TestApp, token: &str, n: usize) -> Reply {
    let body = json!({"path": "agento/commissioning/routing", "input": ready_input(),
        "context": {"workflow_id": format!("wf-{n}")}});
    app.decide(token, body).await
}

fn receipt_of(r: &Reply) -> Receipt {
    serde_json::from_value(r.body["receipt"].clone()).expect("an acknowledged decision carries its receipt")
}

async fn current_key(app: &TestApp, token: &str) -> NoteVerifier {
    let r = app.call(Method::GET, "/v1/ledger/keys", Some(token), None).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    let key = r
        .body
        .as_array()
        .unwrap()
        .iter()
        .find(|k| k["current"] == true)
        .expect("a current key");
    NoteVerifier::parse(key["verifier"].as_str().unwrap()).unwrap()
}

/// Runs statements on the test's database, as someone with access to it.
async fn execute(url: &str, sqls: &[&str]) {
    if url.starts_with("postgres") {
        let db = sqlx::PgPool::connect(url).await.unwrap();
        for sql in sqls {
            sqlx::query(sqlx::AssertSqlSafe(*sql)).execute(&db).await.unwrap();
        }
        db.close().await;
    } else {
        let db = sqlx::SqlitePool::connect(url).await.unwrap();
        for sql in sqls {
            sqlx::query(sqlx::AssertSqlSafe(*sql)).execute(&db).await.unwrap();
        }
        db.close().await;
    }
}

/// Checks every acknowledged receipt against the ledger's key, then exports
/// the log and verifies it offline: the indexes of the decisions it holds,
/// and the verification report.
async fn verified_export(
    app: &TestApp,
    auditor: &str,
    key: &NoteVerifier,
    acked: &[Receipt],
) -> (Vec<u64>, verify::Report) {
    for r in acked {
        verify::verify_receipt(r, std::slice::from_ref(key), None).expect("an acknowledged receipt verifies");
    }
    let export = app.call(Method::GET, "/v1/ledger/export", Some(auditor), None).await;
    assert_eq!(export.status, StatusCode::OK);
    let decisions = export
        .bytes
        .split(|b| *b == b'\n')
        .filter(|l| l.starts_with(b"{\"actor\":"))
        .map(|l| serde_json::from_slice::<Value>(l).unwrap())
        .filter(|e| e["kind"] == "decision")
        .map(|e| e["index"].as_u64().unwrap())
        .collect();
    let report = verify::verify_export(
        std::io::Cursor::new(&export.bytes),
        std::slice::from_ref(key),
        &mut |_| {},
    )
    .expect("the export verifies offline");
    (decisions, report)
}

async fn ready(app: &TestApp) -> Reply {
    app.call(Method::GET, "/health/ready", None, None).await
}

async fn a_full_store_heals_without_a_restart(backend: Backend) {
    let app = spawn_app(backend).await;
    install_commissioning(&app, &app.admin, "1").await;
    let orchestrator = app.token(&app.admin, &["orchestrator"]).await;
    let auditor = app.token(&app.admin, &["auditor"]).await;
    let key = current_key(&app, &auditor).await;
    let fault = Fault::of(&app).await;
    let mut acked: Vec<Receipt> = Vec::new();
    let mut n = 0;

    for _ in 0..20 {
        let r = decide(&app, &orchestrator, n).await;
        n += 1;
        assert_eq!(r.status, StatusCode::OK, "{}", r.body);
        acked.push(receipt_of(&r));
    }
    assert_eq!(ready(&app).await.status, StatusCode::OK);

    // The store fills. What still fits in a page's free space is written
    // and acknowledged; then every decision is refused.
    fault.fill(&app).await;
    let mut refused = 0;
    for _ in 0..400 {
        let r = decide(&app, &orchestrator, n).await;
        n += 1;
        if r.status == StatusCode::OK {
            assert_eq!(refused, 0, "nothing is acknowledged once the store is full: {}", r.body);
            acked.push(receipt_of(&r));
            continue;
        }
        assert_eq!(
            (r.status, r.code()),
            (StatusCode::SERVICE_UNAVAILABLE, "ledger_unavailable"),
            "{}",
            r.body
        );
        assert!(r.body.get("receipt").is_none(), "{}", r.body);
        refused += 1;
        if refused == 5 {
            break;
        }
    }
    assert_eq!(refused, 5, "a full store refuses decisions");

    // Readiness fails, naming the ledger and why, and stays failed.
    for _ in 0..2 {
        let r = ready(&app).await;
        assert_eq!(
            (r.status, r.code()),
            (StatusCode::SERVICE_UNAVAILABLE, "ledger_unavailable"),
            "{}",
            r.body
        );
        let detail = r.body["detail"].as_str().unwrap();
        assert!(
            detail.contains("disk_full") && detail.contains("Free space"),
            "{detail}"
        );
        let task = &r.body["errors"][0];
        assert_eq!(task["task"], "ledger_writer", "{}", r.body);
        assert_eq!(task["cause"], "disk_full", "{}", r.body);
        assert!(task["failed_batches"].as_u64().unwrap() >= 5, "{}", r.body);
        // With no request arriving, the writer's probe tries the store
        // again and fails too: the last attempt moves on.
        let last = task["last_attempt_ms"].as_i64().unwrap();
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            let r = ready(&app).await;
            if r.body["errors"][0]["last_attempt_ms"].as_i64().unwrap_or(0) > last {
                break;
            }
            assert!(Instant::now() < deadline, "the probe never ran: {}", r.body);
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }
    let metrics = app.call(Method::GET, "/metrics", Some(&app.admin), None).await;
    let text = String::from_utf8_lossy(&metrics.bytes);
    let failed: u64 = text
        .lines()
        .find_map(|l| l.strip_prefix("warden_ledger_failed_batches_total{cause=\"disk_full\"} "))
        .unwrap_or_else(|| panic!("failed batches counted by cause:\n{text}"))
        .parse()
        .unwrap();
    assert!(failed >= 5, "{failed}");

    // Space is freed. With no request arriving, readiness recovers within
    // seconds: the writer's probe finds the store writable again.
    fault.free(&app).await;
    let start = Instant::now();
    loop {
        let r = ready(&app).await;
        if r.status == StatusCode::OK {
            assert_eq!(r.body["status"], "ready", "{}", r.body);
            break;
        }
        assert!(start.elapsed() < Duration::from_secs(5), "still unready: {}", r.body);
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    // The same process acknowledges decisions again, in the same chain.
    for _ in 0..20 {
        let r = decide(&app, &orchestrator, n).await;
        n += 1;
        assert_eq!(r.status, StatusCode::OK, "{}", r.body);
        acked.push(receipt_of(&r));
    }
    assert_eq!(ready(&app).await.status, StatusCode::OK);

    // Every receipt given verifies; the log holds exactly the acknowledged
    // decisions, the export verifies offline, and fsck finds nothing.
    let mut indexes: Vec<u64> = acked.iter().map(|r| r.index).collect();
    indexes.sort();
    indexes.dedup();
    assert_eq!(indexes.len(), acked.len(), "distinct entries");
    let (decisions, report) = verified_export(&app, &auditor, &key, &acked).await;
    assert_eq!(decisions.len(), acked.len(), "no refused decision is in the log");
    assert!(report.entries as usize > acked.len());
    for log in fsck::check(&app.state.store, &app.state.config.ledger.name, None, &mut |_| {})
        .await
        .unwrap()
    {
        assert!(log.problems.is_empty(), "fsck: {:?}", log.problems);
    }
    app.stop().await;
}

/// A batch whose statement fails halfway (here a trigger refuses the
/// entry's row, as a constraint would) leaves its transaction open on
/// SQLite until someone rolls it back, and aborted on PostgreSQL. The
/// writer rolls it back; the next batch commits on the same chain.
async fn a_batch_failing_mid_statement_does_not_poison_the_next(backend: Backend) {
    let app = spawn_app(backend).await;
    install_commissioning(&app, &app.admin, "1").await;
    let orchestrator = app.token(&app.admin, &["orchestrator"]).await;
    let auditor = app.token(&app.admin, &["auditor"]).await;
    let key = current_key(&app, &auditor).await;
    let before = decide(&app, &orchestrator, 0).await;
    assert_eq!(before.status, StatusCode::OK, "{}", before.body);
    let before = receipt_of(&before);

    let url = app.state.config.database_url();
    let (refuse, allow): (&[&str], &[&str]) = if url.starts_with("postgres") {
        (
            &[
                "CREATE FUNCTION refuse_entry() RETURNS trigger LANGUAGE plpgsql AS $$ \
                 BEGIN RAISE EXCEPTION 'entry refused' USING ERRCODE = '23514'; END $$",
                "CREATE TRIGGER refuse_entries BEFORE INSERT ON ledger_entries \
                 FOR EACH ROW EXECUTE FUNCTION refuse_entry()",
            ],
            &[
                "DROP TRIGGER refuse_entries ON ledger_entries",
                "DROP FUNCTION refuse_entry()",
            ],
        )
    } else {
        (
            &["CREATE TRIGGER refuse_entries BEFORE INSERT ON ledger_entries \
               BEGIN SELECT RAISE(ABORT, 'entry refused'); END"],
            &["DROP TRIGGER refuse_entries"],
        )
    };
    execute(&url, refuse).await;
    for n in 1..4 {
        let r = decide(&app, &orchestrator, n).await;
        assert_eq!(
            (r.status, r.code()),
            (StatusCode::SERVICE_UNAVAILABLE, "ledger_unavailable"),
            "{}",
            r.body
        );
    }
    let r = ready(&app).await;
    assert_eq!(
        (r.status, r.code()),
        (StatusCode::SERVICE_UNAVAILABLE, "ledger_unavailable")
    );
    assert_eq!(r.body["errors"][0]["cause"], "constraint", "{}", r.body);

    execute(&url, allow).await;
    let after = decide(&app, &orchestrator, 4).await;
    assert_eq!(after.status, StatusCode::OK, "{}", after.body);
    let after = receipt_of(&after);
    assert_eq!(
        after.index,
        before.index + 1,
        "the refused decisions left nothing in the log"
    );
    verify::verify_receipt(&after, std::slice::from_ref(&key), None).expect("the receipt verifies");
    assert_eq!(ready(&app).await.status, StatusCode::OK);
    app.stop().await;
}

/// Warden on the PostgreSQL database at `url`, waiting at most a second
/// for a connection, with the seed policy active: the app, an
/// orchestrator's and an auditor's token, and the ledger's key.
async fn deciding_on(url: String) -> (TestApp, String, String, NoteVerifier) {
    let app = spawn_with(
        Backend::Postgres,
        |c| {
            c.database_url = Some(url);
            c.store_wait_ms = 1_000;
        },
        warden::clock::Clock::system(),
    )
    .await;
    install_commissioning(&app, &app.admin, "1").await;
    let orchestrator = app.token(&app.admin, &["orchestrator"]).await;
    let auditor = app.token(&app.admin, &["auditor"]).await;
    let key = current_key(&app, &auditor).await;
    (app, orchestrator, auditor, key)
}

/// A TCP relay between Warden and PostgreSQL that the test can take down
/// (every relayed connection cut, new ones refused by the operating system,
/// as when the server stops) and bring back on the same port.
struct Relay {
    addr: std::net::SocketAddr,
    target: String,
    task: Option<tokio::task::JoinHandle<()>>,
}

impl Relay {
    async fn start(target: &str) -> Relay {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let mut relay = Relay {
            addr,
            target: target.to_string(),
            task: None,
        };
        relay.serve(listener);
        relay
    }

    fn serve(&mut self, listener: tokio::net::TcpListener) {
        let target = self.target.clone();
        self.task = Some(tokio::spawn(async move {
            let mut links = tokio::task::JoinSet::new();
            while let Ok((mut inbound, _)) = listener.accept().await {
                let target = target.clone();
                links.spawn(async move {
                    if let Ok(mut outbound) = tokio::net::TcpStream::connect(&target).await {
                        let _ = tokio::io::copy_bidirectional(&mut inbound, &mut outbound).await;
                    }
                });
            }
            // Dropping the set aborts every relayed connection.
        }));
    }

    /// The database is away: connections cut, new ones refused.
    async fn down(&mut self) {
        if let Some(t) = self.task.take() {
            t.abort();
            let _ = t.await;
        }
    }

    /// The database is back, on the same address.
    async fn up(&mut self) {
        let listener = tokio::net::TcpListener::bind(self.addr).await.unwrap();
        self.serve(listener);
    }
}

/// The PostgreSQL database goes away under load (new connections refused,
/// every session of Warden's ended), then comes back. Meanwhile requests
/// answer 503 with `Retry-After` within the bounded wait (`store_wait_ms`),
/// none is acknowledged, readiness fails; afterwards the same process
/// acknowledges again within seconds, and nothing acknowledged is lost.
async fn database_goes_away() {
    // Warden reaches its database through the relay.
    let direct = fresh_postgres_database().await;
    let (head, rest) = direct.split_once('@').expect("a postgres URL with a user");
    let (authority, database) = rest.split_once('/').expect("a postgres URL with a database");
    let mut relay = Relay::start(authority).await;
    let relayed = format!("{head}@{}/{database}", relay.addr);
    let (app, orchestrator, auditor, key) = deciding_on(relayed).await;
    let mut acked = Vec::new();
    let mut n = 0;
    for _ in 0..20 {
        let r = decide(&app, &orchestrator, n).await;
        n += 1;
        assert_eq!(r.status, StatusCode::OK, "{}", r.body);
        acked.push(receipt_of(&r));
    }

    // Away: Warden's connections are cut and new ones refused.
    relay.down().await;
    let mut refused = 0;
    let mut slowest = Duration::ZERO;
    let away = Instant::now();
    while away.elapsed() < Duration::from_secs(4) {
        let started = Instant::now();
        let r = decide(&app, &orchestrator, n).await;
        n += 1;
        slowest = slowest.max(started.elapsed());
        if r.status == StatusCode::OK {
            // Only possible for a decision committed before the sessions ended.
            assert!(
                away.elapsed() < Duration::from_millis(500),
                "acknowledged while away: {}",
                r.body
            );
            acked.push(receipt_of(&r));
            continue;
        }
        assert_eq!(r.status, StatusCode::SERVICE_UNAVAILABLE, "{}", r.body);
        assert!(
            ["store_unavailable", "ledger_unavailable"].contains(&r.code()),
            "{}",
            r.body
        );
        refused += 1;
    }
    assert!(refused >= 3, "{refused} refusals");
    assert!(
        slowest < Duration::from_millis(2_500),
        "a request was held {slowest:?} while the database was away"
    );
    assert_eq!(ready(&app).await.status, StatusCode::SERVICE_UNAVAILABLE);

    // Back: the same process acknowledges again within seconds.
    relay.up().await;
    let back = Instant::now();
    loop {
        let r = decide(&app, &orchestrator, n).await;
        n += 1;
        if r.status == StatusCode::OK {
            acked.push(receipt_of(&r));
            break;
        }
        assert!(back.elapsed() < Duration::from_secs(10), "still refused: {}", r.body);
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    for _ in 0..10 {
        let r = decide(&app, &orchestrator, n).await;
        n += 1;
        assert_eq!(r.status, StatusCode::OK, "{}", r.body);
        acked.push(receipt_of(&r));
    }
    let start = Instant::now();
    while ready(&app).await.status != StatusCode::OK {
        assert!(start.elapsed() < Duration::from_secs(5), "readiness did not come back");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }

    // Nothing acknowledged is lost; the export holds exactly those
    // decisions and verifies offline.
    let (decisions, _) = verified_export(&app, &auditor, &key, &acked).await;
    assert_eq!(
        decisions.len(),
        acked.len(),
        "the log holds exactly the acknowledged decisions"
    );
    app.stop().await;
}

/// A PostgreSQL server of the test's own (initdb and pg_ctl from the
/// machine's PostgreSQL, run as its `postgres` user), so that stopping it
/// leaves the shared server untouched. Stopped when dropped.
struct OwnServer {
    bin: std::path::PathBuf,
    dir: tempfile::TempDir,
    port: u16,
}

impl OwnServer {
    fn pg_ctl(&self, args: &[&str]) {
        let data = self.dir.path().join("data");
        let status = std::process::Command::new("runuser")
            .args(["-u", "postgres", "--"])
            .arg(self.bin.join("pg_ctl"))
            .arg("-D")
            .arg(&data)
            .args(args)
            .stdout(std::process::Stdio::null())
            .status()
            .expect("runuser and pg_ctl");
        assert!(status.success(), "pg_ctl {args:?} failed");
    }

    fn start() -> OwnServer {
        let bin = std::fs::read_dir("/usr/lib/postgresql")
            .expect("PostgreSQL's server binaries (Debian's postgresql package) under /usr/lib/postgresql")
            .filter_map(|e| e.ok().map(|e| e.path().join("bin")))
            .filter(|b| b.join("initdb").exists())
            .max()
            .expect("an initdb");
        let dir = tempfile::tempdir().unwrap();
        let chown = std::process::Command::new("chown")
            .arg("postgres")
            .arg(dir.path())
            .status()
            .unwrap();
        assert!(chown.success(), "the test's server directory must belong to postgres");
        let initdb = std::process::Command::new("runuser")
            .args(["-u", "postgres", "--"])
            .arg(bin.join("initdb"))
            .arg("-D")
            .arg(dir.path().join("data"))
            .args(["-A", "trust", "-U", "postgres", "--no-sync"])
            .stdout(std::process::Stdio::null())
            .status()
            .expect("runuser and initdb");
        assert!(initdb.success(), "initdb failed");
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let server = OwnServer { bin, dir, port };
        server.up();
        server
    }

    fn up(&self) {
        let options = format!(
            "-p {} -k {} -c listen_addresses=127.0.0.1",
            self.port,
            self.dir.path().display()
        );
        let log = self.dir.path().join("log");
        self.pg_ctl(&["-o", &options, "-l", log.to_str().unwrap(), "-w", "start"]);
    }

    /// A fast shutdown: sessions are ended, transactions in flight abort.
    fn down(&self) {
        self.pg_ctl(&["-m", "fast", "-w", "stop"]);
    }

    fn url(&self) -> String {
        format!("postgres://postgres@127.0.0.1:{}/postgres", self.port)
    }
}

impl Drop for OwnServer {
    fn drop(&mut self) {
        let data = self.dir.path().join("data");
        let _ = std::process::Command::new("runuser")
            .args(["-u", "postgres", "--"])
            .arg(self.bin.join("pg_ctl"))
            .arg("-D")
            .arg(&data)
            .args(["-m", "immediate", "stop"])
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .status();
    }
}

/// PostgreSQL stopped (fast shutdown) under load, until several requests
/// have been refused, then started again: requests are refused within the
/// bound, nothing is acknowledged while it is down, readiness fails, and
/// once readiness is back the same process acknowledges every decision;
/// every acknowledged decision is in the export, which verifies offline.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn postgres_stopped_and_started_under_load() {
    let server = OwnServer::start();
    let url = server.url();
    let (app, orchestrator, auditor, key) = deciding_on(url).await;

    // Four clients decide for as long as the test runs: (started, answered,
    // status, receipt).
    use std::sync::Arc;
    use std::sync::atomic::{AtomicUsize, Ordering};
    let stop = Arc::new(std::sync::atomic::AtomicBool::new(false));
    let (oks, refusals) = (Arc::new(AtomicUsize::new(0)), Arc::new(AtomicUsize::new(0)));
    let mut clients = Vec::new();
    for c in 0..4 {
        let (client, base, token, stop) = (app.client.clone(), app.base.clone(), orchestrator.clone(), stop.clone());
        let (oks, refusals) = (oks.clone(), refusals.clone());
        clients.push(tokio::spawn(async move {
            let mut seen = Vec::new();
            let mut n = 0;
            while !stop.load(std::sync::atomic::Ordering::Relaxed) {
                let body = json!({"path": "agento/commissioning/routing", "input": ready_input(),
                    "context": {"workflow_id": format!("wf-{c}-{n}")}});
                n += 1;
                let started = Instant::now();
                let res = client
                    .post(format!("{base}/v1/decisions"))
                    .bearer_auth(&token)
                    .json(&body)
                    .send()
                    .await
                    .unwrap();
                let status = res.status();
                let body: Value = res.json().await.unwrap_or_default();
                let receipt = (status == StatusCode::OK)
                    .then(|| serde_json::from_value::<Receipt>(body["receipt"].clone()).expect("a receipt"));
                seen.push((started, Instant::now(), status, receipt));
                let counter = if status == StatusCode::OK { &oks } else { &refusals };
                counter.fetch_add(1, Ordering::Relaxed);
                if status != StatusCode::OK {
                    tokio::time::sleep(Duration::from_millis(50)).await;
                }
            }
            seen
        }));
    }
    // Each phase lasts until what marks its end has happened.
    async fn until(what: &str, done: impl Fn() -> bool) {
        let deadline = Instant::now() + Duration::from_secs(30);
        while !done() {
            assert!(Instant::now() < deadline, "{what} within 30 s");
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }
    until("20 decisions acknowledged", || oks.load(Ordering::Relaxed) >= 20).await;
    server.down();
    let stopped = Instant::now();
    let deadline = Instant::now() + Duration::from_secs(15);
    while ready(&app).await.status != StatusCode::SERVICE_UNAVAILABLE {
        assert!(Instant::now() < deadline, "readiness fails while the database is down");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let refused_before = refusals.load(Ordering::Relaxed);
    until("8 requests refused while down", || {
        refusals.load(Ordering::Relaxed) >= refused_before + 8
    })
    .await;
    let starting = Instant::now();
    server.up();
    let started = Instant::now();
    // Recovery: readiness and acknowledgements come back without a restart.
    while ready(&app).await.status != StatusCode::OK {
        assert!(
            started.elapsed() < Duration::from_secs(10),
            "readiness did not come back"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let ready_at = Instant::now();
    let acked_at_ready = oks.load(Ordering::Relaxed);
    until("20 decisions acknowledged after the start", || {
        oks.load(Ordering::Relaxed) >= acked_at_ready + 20
    })
    .await;
    stop.store(true, Ordering::Relaxed);
    let mut seen = Vec::new();
    for c in clients {
        seen.extend(c.await.unwrap());
    }

    let acked: Vec<Receipt> = seen.iter().filter_map(|(_, _, _, r)| r.clone()).collect();
    let during: Vec<_> = seen
        .iter()
        .filter(|(s, a, _, _)| *s > stopped && *a < starting)
        .collect();
    assert!(during.len() >= 4, "requests were made while the database was down");
    for (s, a, status, _) in &during {
        assert_eq!(
            *status,
            StatusCode::SERVICE_UNAVAILABLE,
            "answered {status} while the database was down"
        );
        assert!(
            *a - *s < Duration::from_millis(2_500),
            "a request was held {:?} while the database was down",
            *a - *s
        );
    }
    let after: Vec<_> = seen.iter().filter(|(s, _, _, _)| *s > ready_at).collect();
    let refused_after: Vec<_> = after
        .iter()
        .filter(|(_, _, status, _)| *status != StatusCode::OK)
        .collect();
    assert!(
        after.len() >= 20 && refused_after.is_empty(),
        "every decision asked once readiness is back is acknowledged: {} of {} refused",
        refused_after.len(),
        after.len()
    );
    eprintln!("readiness came back {:?} after the start", ready_at - started);

    // Nothing acknowledged is lost.
    let (recorded, _) = verified_export(&app, &auditor, &key, &acked).await;
    for r in &acked {
        assert!(
            recorded.contains(&r.index),
            "acknowledged entry {} is in the export",
            r.index
        );
    }
    app.stop().await;
    drop(server);
}

/// A session holding the store's write lock: on PostgreSQL the ledger's
/// heads (`ledger_logs`, which every group commit locks first), on SQLite
/// the database itself. The ledger writer blocks behind it.
enum WriteLock {
    Postgres(sqlx::PgConnection),
    Sqlite(sqlx::SqliteConnection),
}

impl WriteLock {
    async fn take(url: &str) -> WriteLock {
        use sqlx::Connection;
        if url.starts_with("postgres") {
            let mut c = sqlx::PgConnection::connect(url).await.unwrap();
            sqlx::query("BEGIN").execute(&mut c).await.unwrap();
            sqlx::query("LOCK TABLE ledger_logs IN EXCLUSIVE MODE")
                .execute(&mut c)
                .await
                .unwrap();
            WriteLock::Postgres(c)
        } else {
            let mut c = sqlx::SqliteConnection::connect(url).await.unwrap();
            sqlx::query("BEGIN IMMEDIATE").execute(&mut c).await.unwrap();
            WriteLock::Sqlite(c)
        }
    }

    async fn release(self) {
        match self {
            WriteLock::Postgres(mut c) => sqlx::query("COMMIT").execute(&mut c).await.map(|_| ()),
            WriteLock::Sqlite(mut c) => sqlx::query("COMMIT").execute(&mut c).await.map(|_| ()),
        }
        .unwrap();
    }
}

/// With the ledger writer stalled (its store locked by another session)
/// and a queue of one, decisions beyond what the writer holds and the queue
/// keeps are refused at once with 503 `ledger_overloaded` and `Retry-After`,
/// not left to hang; the ones accepted are answered once the store is
/// free, and the log holds exactly them. Asked again, the refused succeed.
async fn a_full_ledger_queue_refuses_at_once_and_loses_nothing(backend: Backend) {
    let app = spawn_with(
        backend,
        |c| {
            c.ledger.queue_depth = 1;
            c.ledger.max_batch = 1;
        },
        Clock::system(),
    )
    .await;
    install_commissioning(&app, &app.admin, "1").await;
    let orchestrator = app.token(&app.admin, &["orchestrator"]).await;
    let auditor = app.token(&app.admin, &["auditor"]).await;
    let lock = WriteLock::take(&app.config().database_url()).await;
    let (tx, mut answers) = tokio::sync::mpsc::unbounded_channel();
    for _ in 0..6 {
        let (client, base, token, tx) = (app.client.clone(), app.base.clone(), orchestrator.clone(), tx.clone());
        tokio::spawn(async move {
            let res = client
                .post(format!("{base}/v1/decisions"))
                .bearer_auth(&token)
                .json(&json!({"path": "agento/commissioning/routing", "input": ready_input()}))
                .send()
                .await
                .unwrap();
            let after = res
                .headers()
                .get("retry-after")
                .map(|v| v.to_str().unwrap().to_string());
            let _ = tx.send((after, into_reply(res).await));
        });
    }
    drop(tx);
    // At most two are held (one in the writer's hands, one queued): at
    // least four are refused while the store is still locked.
    let mut refused = Vec::new();
    while refused.len() < 4 {
        let (after, r) = tokio::time::timeout(Duration::from_secs(20), answers.recv())
            .await
            .expect("a full queue refuses at once")
            .expect("an answer");
        assert_eq!(
            (r.status, r.code()),
            (StatusCode::SERVICE_UNAVAILABLE, "ledger_overloaded"),
            "{}",
            r.body
        );
        assert_eq!(after.as_deref(), Some("1"), "Retry-After");
        refused.push(r);
    }
    lock.release().await;
    let mut acked = Vec::new();
    while let Some((_, r)) = answers.recv().await {
        if r.status == StatusCode::SERVICE_UNAVAILABLE {
            assert_eq!(r.code(), "ledger_overloaded");
            refused.push(r);
        } else {
            assert_eq!(r.status, StatusCode::OK, "{}", r.body);
            acked.push(serde_json::from_value::<Receipt>(r.body["receipt"].clone()).unwrap());
        }
    }
    assert!(!acked.is_empty() && acked.len() <= 2, "{} answered", acked.len());
    assert_eq!(acked.len() + refused.len(), 6);
    let key = current_key(&app, &auditor).await;
    let (decisions, _) = verified_export(&app, &auditor, &key, &acked).await;
    let mut held: Vec<u64> = acked.iter().map(|r| r.index).collect();
    held.sort_unstable();
    assert_eq!(decisions, held, "the log holds exactly the acknowledged decisions");
    // The refusal says when to ask again; asked again, it is answered.
    let again = app
        .client
        .post(format!("{}/v1/decisions", app.base))
        .bearer_auth(&orchestrator)
        .json(&json!({"path": "agento/commissioning/routing", "input": ready_input()}))
        .send()
        .await
        .unwrap();
    assert_eq!(again.status(), StatusCode::OK);
    app.stop().await;
}
