//! What a ledger writer batch costs on SQLite with and without sqlx's hops.
//!
//! sqlx runs each SQLite connection on a worker thread of its own: every
//! statement is sent there and its answer sent back, two thread wake-ups a
//! statement. The ledger writer's kernel batch is twelve statements. This
//! bench runs a model of that batch (the same shape: `BEGIN IMMEDIATE`, the
//! log head read, multi-row inserts of the changes' rows, the entries with
//! their payloads, tree nodes, a checkpoint and history rows, into tables
//! with their indexes, the head moved, `COMMIT`; WAL with `synchronous =
//! FULL`, as Warden opens its store) two ways, alternating, on the same
//! disk:
//!
//! - `sqlx`: through an sqlx connection, from a single-threaded runtime, as
//!   the writer's thread ran it before (the reference);
//! - `direct`: through a connection the calling thread owns and steps
//!   itself (rusqlite, on the same SQLite library), as the writer runs it
//!   now (`src/store/statement.rs`).
//!
//! It reports the time a batch takes and, with no other load, the CPU it
//! uses (all threads of the process); `--busy N` adds N threads that keep
//! the cores busy, as the kernel bench's requests do. Each change statement
//! holds 8 rows; with `--vary` it holds 1 to 40, changing from batch to
//! batch as batches do under load, so each statement has 40 texts to
//! prepare; `--statement-cache N` sets how many prepared statements each
//! connection keeps (sqlx's default: 100).
//!
//! Run: `cargo bench --bench sqlite_writer [-- --batches 1500 --busy 2
//! --vary --statement-cache 1024]`.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

/// Rows of each change statement in a batch (about the kernel bench's
/// batches: 16 entries, 8 of each kind of row).
const ROWS: usize = 8;

/// The most rows a change statement holds with `--vary`.
const MAX_ROWS: usize = 40;

const SCHEMA: &str = "
CREATE TABLE logs (tenant TEXT PRIMARY KEY, size INTEGER NOT NULL, last BLOB NOT NULL);
CREATE TABLE entries (tenant TEXT NOT NULL, idx INTEGER NOT NULL, ts INTEGER NOT NULL, kind TEXT NOT NULL,
    subject TEXT, hash BLOB NOT NULL, bytes BLOB NOT NULL, PRIMARY KEY (tenant, idx));
CREATE INDEX entries_subject ON entries (tenant, subject);
CREATE TABLE nodes (tenant TEXT NOT NULL, level INTEGER NOT NULL, idx INTEGER NOT NULL, hash BLOB NOT NULL,
    PRIMARY KEY (tenant, level, idx));
CREATE TABLE checkpoints (tenant TEXT NOT NULL, size INTEGER NOT NULL, root BLOB NOT NULL, note TEXT NOT NULL,
    ts INTEGER NOT NULL, PRIMARY KEY (tenant, size));
CREATE TABLE executions (id TEXT PRIMARY KEY, tenant TEXT NOT NULL, state TEXT NOT NULL, version INTEGER NOT NULL,
    body TEXT NOT NULL, updated INTEGER NOT NULL);
CREATE INDEX executions_state ON executions (tenant, state);
CREATE TABLE steps (id TEXT PRIMARY KEY, execution TEXT NOT NULL, state TEXT NOT NULL, body TEXT NOT NULL,
    updated INTEGER NOT NULL);
CREATE INDEX steps_execution ON steps (execution);
CREATE TABLE pushes (seq INTEGER PRIMARY KEY AUTOINCREMENT, recipient TEXT NOT NULL, body TEXT NOT NULL);
CREATE INDEX pushes_recipient ON pushes (recipient, seq);
CREATE TABLE history (execution TEXT NOT NULL, idx INTEGER NOT NULL, body TEXT NOT NULL, PRIMARY KEY (execution, idx));
INSERT INTO logs VALUES ('t', 0, x'00');
";

#[derive(Clone)]
enum Val {
    Int(i64),
    Text(String),
    Blob(Vec<u8>),
}

/// One multi-row statement: its text (`$1`, `$2`, … numbered across the
/// rows) and its rows' values.
struct Statement {
    sql: String,
    rows: Vec<Vec<Val>>,
}

impl Statement {
    fn new(head: &str, rows: Vec<Vec<Val>>) -> Self {
        let mut sql = head.to_string();
        let mut n = 0;
        for (i, row) in rows.iter().enumerate() {
            sql.push_str(if i == 0 { " VALUES (" } else { ", (" });
            for j in 0..row.len() {
                n += 1;
                sql.push_str(&format!("{}${n}", if j == 0 { "" } else { ", " }));
            }
            sql.push(')');
        }
        Self { sql, rows }
    }

    fn values(&self) -> impl Iterator<Item = &Val> {
        self.rows.iter().flatten()
    }
}

/// A JSON body about the size of a kernel entry's payload.
fn body(n: usize) -> String {
    format!("{{\"n\":{n},\"pad\":\"{}\"}}", "x".repeat(400))
}

/// Batch `b`'s change and ledger statements, between the head read and the
/// head moved.
fn batch(b: usize, vary: bool) -> Vec<Statement> {
    let rows = if vary { 1 + (b * 7919) % MAX_ROWS } else { ROWS };
    let first = b * MAX_ROWS;
    let text = |s: &str| Val::Text(s.to_string());
    let executions = |kind: &str| {
        (0..rows)
            .map(|r| {
                vec![
                    Val::Text(format!("{kind}{}", first + r)),
                    text("t"),
                    text("running"),
                    Val::Int(1),
                    Val::Text(body(r)),
                    Val::Int(first as i64),
                ]
            })
            .collect()
    };
    let head = "INSERT INTO executions (id, tenant, state, version, body, updated)";
    vec![
        Statement::new(head, executions("new")),
        Statement::new(head, executions("moved")),
        Statement::new(
            "INSERT INTO steps (id, execution, state, body, updated)",
            (0..rows)
                .map(|r| {
                    vec![
                        Val::Text(format!("s{}", first + r)),
                        text("e"),
                        text("dispatched"),
                        Val::Text(body(r)),
                        Val::Int(1),
                    ]
                })
                .collect(),
        ),
        Statement::new(
            "INSERT INTO pushes (recipient, body)",
            (0..rows)
                .map(|r| vec![Val::Text(format!("agent{r}")), Val::Text(body(r))])
                .collect(),
        ),
        Statement::new(
            "INSERT INTO entries (tenant, idx, ts, kind, subject, hash, bytes)",
            (0..rows * 2)
                .map(|r| {
                    vec![
                        text("t"),
                        Val::Int((first * 2 + r) as i64),
                        Val::Int(1),
                        text("kernel.step"),
                        Val::Text(format!("e{}", first + r / 2)),
                        Val::Blob(vec![7; 32]),
                        Val::Blob(body(r).into_bytes()),
                    ]
                })
                .collect(),
        ),
        Statement::new(
            "INSERT INTO nodes (tenant, level, idx, hash)",
            (0..4)
                .map(|r| {
                    vec![
                        text("t"),
                        Val::Int(4),
                        Val::Int((b * 4 + r) as i64),
                        Val::Blob(vec![1; 32]),
                    ]
                })
                .collect(),
        ),
        Statement::new(
            "INSERT INTO checkpoints (tenant, size, root, note, ts)",
            vec![vec![
                text("t"),
                Val::Int(b as i64 + 1),
                Val::Blob(vec![2; 32]),
                Val::Text("n".repeat(160)),
                Val::Int(1),
            ]],
        ),
        Statement::new(
            "INSERT INTO history (execution, idx, body)",
            (0..rows)
                .map(|r| vec![Val::Text(format!("e{}", first + r)), Val::Int(0), Val::Text(body(r))])
                .collect(),
        ),
    ]
}

async fn through_sqlx(path: &std::path::Path, run: &Run) -> Duration {
    use sqlx::Connection;
    use sqlx::sqlite::{SqliteConnectOptions, SqliteJournalMode, SqliteSynchronous};
    let options = SqliteConnectOptions::new()
        .filename(path)
        .create_if_missing(true)
        .journal_mode(SqliteJournalMode::Wal)
        .synchronous(SqliteSynchronous::Full)
        .statement_cache_capacity(run.statement_cache);
    let mut c = sqlx::SqliteConnection::connect_with(&options).await.unwrap();
    sqlx::raw_sql(SCHEMA).execute(&mut c).await.unwrap();
    let started = Instant::now();
    for b in 0..run.batches {
        sqlx::query("BEGIN IMMEDIATE").execute(&mut c).await.unwrap();
        let size: i64 = sqlx::query_scalar("SELECT size FROM logs WHERE tenant = $1")
            .bind("t")
            .fetch_one(&mut c)
            .await
            .unwrap();
        for s in batch(b, run.vary) {
            let mut q = sqlx::query(sqlx::AssertSqlSafe(s.sql.as_str()));
            for v in s.values() {
                q = match v {
                    Val::Int(i) => q.bind(*i),
                    Val::Text(t) => q.bind(t.clone()),
                    Val::Blob(x) => q.bind(x.clone()),
                };
            }
            q.execute(&mut c).await.unwrap();
        }
        let moved = sqlx::query("UPDATE logs SET size = $1 WHERE tenant = $2 AND size = $3")
            .bind(size + 1)
            .bind("t")
            .bind(size)
            .execute(&mut c)
            .await
            .unwrap();
        assert_eq!(moved.rows_affected(), 1);
        sqlx::query("COMMIT").execute(&mut c).await.unwrap();
    }
    started.elapsed()
}

fn direct(path: &std::path::Path, run: &Run) -> Duration {
    let c = rusqlite::Connection::open(path).unwrap();
    c.set_prepared_statement_cache_capacity(run.statement_cache);
    c.pragma_update(None, "journal_mode", "wal").unwrap();
    c.pragma_update(None, "synchronous", "full").unwrap();
    c.execute_batch(SCHEMA).unwrap();
    let started = Instant::now();
    for b in 0..run.batches {
        c.execute_batch("BEGIN IMMEDIATE").unwrap();
        let size: i64 = c
            .prepare_cached("SELECT size FROM logs WHERE tenant = $1")
            .unwrap()
            .query_row(["t"], |r| r.get(0))
            .unwrap();
        for s in batch(b, run.vary) {
            let mut st = c.prepare_cached(&s.sql).unwrap();
            for (i, v) in s.values().enumerate() {
                match v {
                    Val::Int(x) => st.raw_bind_parameter(i + 1, x),
                    Val::Text(t) => st.raw_bind_parameter(i + 1, t),
                    Val::Blob(x) => st.raw_bind_parameter(i + 1, x),
                }
                .unwrap();
            }
            st.raw_execute().unwrap();
        }
        let moved = c
            .prepare_cached("UPDATE logs SET size = $1 WHERE tenant = $2 AND size = $3")
            .unwrap()
            .execute(rusqlite::params![size + 1, "t", size])
            .unwrap();
        assert_eq!(moved, 1);
        c.execute_batch("COMMIT").unwrap();
    }
    started.elapsed()
}

/// This process's CPU time, all its threads (Linux, 100 ticks a second).
fn cpu() -> Duration {
    let stat = std::fs::read_to_string("/proc/self/stat").unwrap();
    let fields: Vec<&str> = stat.rsplit(')').next().unwrap().split_whitespace().collect();
    let ticks: u64 = fields[11].parse::<u64>().unwrap() + fields[12].parse::<u64>().unwrap();
    Duration::from_millis(ticks * 10)
}

/// What a run does.
struct Run {
    batches: usize,
    vary: bool,
    statement_cache: usize,
}

fn flag(args: &[String], name: &str, default: usize) -> usize {
    args.iter()
        .position(|a| a == name)
        .map(|i| {
            args.get(i + 1)
                .and_then(|v| v.parse().ok())
                .unwrap_or_else(|| panic!("{name} takes a number"))
        })
        .unwrap_or(default)
}

fn main() {
    let args: Vec<String> = std::env::args().collect();
    let run = Run {
        batches: flag(&args, "--batches", 1500),
        vary: args.iter().any(|a| a == "--vary"),
        statement_cache: flag(&args, "--statement-cache", 100),
    };
    let busy = flag(&args, "--busy", 0);
    let stop = Arc::new(AtomicBool::new(false));
    let spinners: Vec<_> = (0..busy)
        .map(|_| {
            let stop = stop.clone();
            std::thread::spawn(move || {
                let mut x = 0u64;
                while !stop.load(Ordering::Relaxed) {
                    for i in 0..10_000 {
                        x = x.wrapping_mul(31).wrapping_add(i);
                    }
                    std::hint::black_box(x);
                }
            })
        })
        .collect();
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let per = |d: Duration| format!("{:.2} ms", d.as_secs_f64() * 1000.0 / run.batches as f64);
    println!(
        "{} batches of {} statements each way, {} rows a change statement, {} prepared statements kept, {busy} busy threads",
        run.batches,
        batch(0, false).len() + 4,
        if run.vary {
            format!("1 to {MAX_ROWS}")
        } else {
            ROWS.to_string()
        },
        run.statement_cache,
    );
    println!(
        "{:<6} {:>14} {:>14} {:>14} {:>14}",
        "round", "sqlx a batch", "sqlx CPU", "direct a batch", "direct CPU"
    );
    for round in 1..=3 {
        // On the build's disk, as a store is (a temporary directory may be
        // in memory, where a sync costs nothing).
        let dir = tempfile::tempdir_in(env!("CARGO_TARGET_TMPDIR")).unwrap();
        let c0 = cpu();
        let a = rt.block_on(through_sqlx(&dir.path().join("sqlx.db"), &run));
        let c1 = cpu();
        let b = direct(&dir.path().join("direct.db"), &run);
        let c2 = cpu();
        let cpu_of = |d: Duration| if busy == 0 { per(d) } else { "-".into() };
        println!(
            "{round:<6} {:>14} {:>14} {:>14} {:>14}",
            per(a),
            cpu_of(c1 - c0),
            per(b),
            cpu_of(c2 - c1)
        );
    }
    stop.store(true, Ordering::Relaxed);
    for s in spinners {
        s.join().unwrap();
    }
}
