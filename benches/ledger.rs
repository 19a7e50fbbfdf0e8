//! The evidence ledger's costs:
//!
//! - `append/<backend>/c<N>`: durable appends per second through the group
//!   commit writer with N appends in flight (SQLite embedded, and
//!   PostgreSQL at 127.0.0.1:5432 or `WARDEN_BENCH_POSTGRES_URL`);
//! - `proof_1m/*`: inclusion and consistency proofs read from a store
//!   holding a log of 1,048,576 entries;
//! - `verify_1m`: offline verification of that log's export, in entries/s.
//!
//! Run: `cargo bench --bench ledger`. Entries carry a decision-sized
//! payload (~600 bytes), as the seed policy's decisions do.

use std::sync::Arc;
use std::time::{Duration, Instant};

use criterion::{BenchmarkId, Criterion, Throughput, criterion_group, criterion_main};
use serde_json::json;
use sqlx::Connection;
use warden::clock::Clock;
use warden::evidence::{export, verify};
use warden::ledger::writer::LedgerOptions;
use warden::ledger::{Ledger, Record, read};
use warden::metrics::Metrics;
use warden::store::{Store, TenantRow, TokenRow};

const TENANT: &str = "ten_bench";
const LOG_SIZE: u64 = 1 << 20;

fn payload(i: u64) -> serde_json::Value {
    json!({
        "decision_id": format!("dec_{i:026}"),
        "timestamp": "2026-11-22T03:00:00.000Z",
        "path": "agento/commissioning/routing",
        "input": {"procore": {"punch_items_open_bess": []},
            "protection_settings_schedule": {"trip_voltage": {"expected": 480, "tolerance": 5}, "trip_delay_ms": {"expected": 200, "tolerance": 10}},
            "test_results": [{"parameter": "trip_voltage", "value": 483}, {"parameter": "trip_delay_ms", "value": 205}]},
        "result": {"allow": true, "no_open_punch_items": true, "reason": {}, "results_within_tolerance": true},
        "allow": true, "reasons": [],
        "bundle": {"name": "commissioning", "revision": "2026.11.1", "digest": "298f1362c5038d847ffce464f6e388c6f50b980fe488f1baf19233ad559595db"},
        "captured": {"now_ns": 1_795_308_111_311_231_335u64 + i},
        "context": {"workflow_id": format!("wf-{}", i % 977)},
    })
}

async fn open(url: &str, dir: &std::path::Path) -> (Store, Ledger) {
    let store = Store::connect(url, 8).await.unwrap();
    let tenant = TenantRow {
        id: TENANT.into(),
        name: "bench".into(),
        platform: false,
        require_signatures: false,
        rego_differences: "warn".into(),
        created_at: 0,
    };
    let token = TokenRow::new(
        "tok_bench".into(),
        TENANT,
        "bench",
        Default::default(),
        "bench".into(),
        0,
    );
    store.create_tenant(&tenant, &token, &[7; 32]).await.unwrap();
    let (key, _) = warden::keys::load_or_create_server_key(dir).unwrap();
    let options = LedgerOptions {
        name: "warden.bench".into(),
        queue_depth: 1 << 16,
        max_batch: 2048,
        ..Default::default()
    };
    let ledger = Ledger::start(store.clone(), Clock::system(), key, options, Arc::new(Metrics::new()))
        .await
        .unwrap();
    (store, ledger)
}

async fn fresh_postgres() -> String {
    let admin = std::env::var("WARDEN_BENCH_POSTGRES_URL")
        .unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/postgres".into());
    let mut conn = sqlx::PgConnection::connect(&admin)
        .await
        .expect("PostgreSQL for the bench");
    let mut b = [0u8; 6];
    getrandom::fill(&mut b).unwrap();
    let name = format!("warden_t_bench_{}", hex::encode(b));
    sqlx::query(sqlx::AssertSqlSafe(format!("CREATE DATABASE {name}")))
        .execute(&mut conn)
        .await
        .unwrap();
    format!("{}/{name}", admin.rsplit_once('/').unwrap().0)
}

fn append(c: &mut Criterion) {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .unwrap();
    let mut group = c.benchmark_group("append");
    group.sample_size(10).measurement_time(Duration::from_secs(8));
    let payload = warden::evidence::canonical::to_vec(&payload(0));
    for backend in ["sqlite", "postgres"] {
        let dir = tempfile::tempdir().unwrap();
        let url = match backend {
            "sqlite" => format!("sqlite://{}", dir.path().join("bench.db").display()),
            _ => rt.block_on(fresh_postgres()),
        };
        let (_store, ledger) = rt.block_on(open(&url, dir.path()));
        for conc in [1usize, 16, 256] {
            group.throughput(Throughput::Elements(conc as u64));
            group.bench_function(BenchmarkId::new(backend, format!("c{conc}")), |b| {
                b.iter_custom(|iters| {
                    rt.block_on(async {
                        let start = Instant::now();
                        for _ in 0..iters {
                            let mut set = tokio::task::JoinSet::new();
                            for _ in 0..conc {
                                let (ledger, payload) = (ledger.clone(), payload.clone());
                                set.spawn(async move {
                                    let record = Record {
                                        tenant_id: TENANT.into(),
                                        kind: "decision",
                                        actor: "token:tok_bench (bench)".into(),
                                        subject: None,
                                        payload,
                                    };
                                    ledger.append(record).await.unwrap()
                                });
                            }
                            while set.join_next().await.is_some() {}
                        }
                        start.elapsed()
                    })
                })
            });
        }
        rt.block_on(ledger.stop());
    }
    group.finish();
}

fn million(c: &mut Criterion) {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .unwrap();
    let dir = tempfile::tempdir().unwrap();
    let url = format!("sqlite://{}", dir.path().join("million.db").display());
    let (store, ledger) = rt.block_on(open(&url, dir.path()));
    let started = Instant::now();
    rt.block_on(async {
        // Fill in waves of concurrent appends, as a loaded server would.
        let mut next = 0u64;
        while next < LOG_SIZE {
            let mut set = tokio::task::JoinSet::new();
            for i in next..(next + 4096).min(LOG_SIZE) {
                let ledger = ledger.clone();
                set.spawn(async move {
                    let r = Record::new(TENANT, "decision", "token:tok_bench (bench)", &payload(i));
                    ledger.append(r).await.unwrap()
                });
            }
            while set.join_next().await.is_some() {}
            next += 4096;
        }
    });
    eprintln!(
        "filled a log of {LOG_SIZE} entries in {:.1} s",
        started.elapsed().as_secs_f64()
    );

    let mut group = c.benchmark_group("proof_1m");
    let mut i = 0u64;
    group.bench_function("inclusion", |b| {
        b.iter(|| {
            i = (i + 7_919) % LOG_SIZE;
            rt.block_on(read::inclusion(&store, TENANT, i, LOG_SIZE)).unwrap()
        })
    });
    group.bench_function("consistency", |b| {
        b.iter(|| {
            i = (i + 7_919) % LOG_SIZE;
            rt.block_on(read::consistency(&store, TENANT, i.max(1), LOG_SIZE))
                .unwrap()
        })
    });
    group.finish();

    // The export as the server streams it, then verified offline.
    let keys: Vec<export::KeyInfo> = rt
        .block_on(store.ledger_keys())
        .unwrap()
        .into_iter()
        .map(|k| export::KeyInfo {
            verifier: k.verifier,
            created_at: k.created_at,
            retired_at: k.retired_at,
        })
        .collect();
    let trusted = [warden::evidence::checkpoint::NoteVerifier::parse(&keys[0].verifier).unwrap()];
    let file = rt.block_on(async {
        let (tx, mut rx) = tokio::sync::mpsc::channel(4);
        let header = ("warden.bench/log/ten_bench".to_string(), keys, 0);
        tokio::spawn(read::export(store.clone(), TENANT.into(), header, 0, LOG_SIZE, tx));
        let mut file = Vec::new();
        while let Some(chunk) = rx.recv().await {
            file.extend_from_slice(&chunk.unwrap());
        }
        file
    });
    eprintln!("export: {:.1} MB", file.len() as f64 / 1e6);
    let mut group = c.benchmark_group("verify_1m");
    group.sample_size(10).throughput(Throughput::Elements(LOG_SIZE));
    group.bench_function("export", |b| {
        b.iter(|| {
            let report = verify::verify_export(std::io::Cursor::new(&file), &trusted, &mut |_| {}).unwrap();
            assert_eq!(report.entries, LOG_SIZE);
        })
    });
    group.finish();
    rt.block_on(ledger.stop());
}

criterion_group!(benches, append, million);
criterion_main!(benches);
