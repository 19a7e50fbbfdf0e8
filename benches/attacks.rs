//! Warden under attack, with the release `warden` binary as its own process:
//! while one tenant attacks, another tenant (the bystander) asks for
//! decisions as fast as `--clients` clients can, and a prober reads
//! `/health` every 10 ms. Each attack runs for `--seconds`, after a
//! baseline of the same length with no attack. Reported per attack:
//! `/health` p50, p99 and max, the bystander's decisions per second and
//! their share of the baseline, and what the attacker's requests answered.
//!
//! Attacks (the attacker's requests are bounded to `--rate` per second
//! where they are cheap to refuse, so that what is measured is the server,
//! not the load generator starving it of CPU):
//! - `marker`: decisions whose input holds serde's number marker
//!   (`{"$serde_json::private::Number": "1e200000000"}`), which used to
//!   expand into a 200-million-digit integer on an async worker;
//! - `numbers`: integers past 64 bits, `1e400` and 1,000-digit numbers;
//! - `duplicates`: 512 KiB inputs whose last member repeats the first;
//! - `slow_policy`: `--slow` decisions at once on a policy that runs until
//!   `policy.eval_timeout_ms` stops it (one tenant's heavy policy).
//!
//! `cargo bench --bench attacks -- [marker] [numbers] [duplicates]
//! [slow_policy] [--clients 16] [--rate 200] [--slow 8] [--seconds 10]
//! [--per-tenant N] [--postgres]` (`--per-tenant` sets
//! `policy.eval_per_tenant`). Targets on a 2-core machine: `/health` p99 under 50 ms,
//! and the bystander keeping at least 80 % of its baseline. The load
//! generator shares the cores with Warden: the figures are floors.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use serde_json::{Value, json};

#[path = "support/launch.rs"]
mod launch;
#[path = "support/warden.rs"]
mod warden_process;
use warden_process::Warden;

const ATTACKS: [&str; 4] = ["marker", "numbers", "duplicates", "slow_policy"];

struct Opts {
    attacks: Vec<&'static str>,
    clients: usize,
    rate: u64,
    slow: usize,
    seconds: u64,
    postgres: bool,
    /// `policy.eval_per_tenant` for the run (0: Warden's default).
    per_tenant: u64,
}

fn opts() -> Opts {
    let args: Vec<String> = std::env::args().skip(1).filter(|a| a != "--bench").collect();
    let value = |name: &str, default: u64| {
        args.iter()
            .position(|a| a == name)
            .and_then(|i| args.get(i + 1))
            .and_then(|v| v.parse().ok())
            .unwrap_or(default)
    };
    let mut attacks: Vec<&'static str> = ATTACKS
        .iter()
        .copied()
        .filter(|a| args.iter().any(|x| x == a))
        .collect();
    if attacks.is_empty() {
        attacks = ATTACKS.to_vec();
    }
    Opts {
        attacks,
        clients: value("--clients", 16) as usize,
        rate: value("--rate", 200),
        slow: value("--slow", 8) as usize,
        seconds: value("--seconds", 10),
        postgres: args.iter().any(|a| a == "--postgres"),
        per_tenant: value("--per-tenant", 0),
    }
}

struct Tenant {
    admin: String,
}

async fn tenant(w: &Warden, name: &str, rego: &str, root: &str) -> Tenant {
    let r = w
        .post(&w.admin, "/v1/tenants", &json!({"name": name}))
        .await
        .expect("a tenant");
    let admin = r["admin_token"]["token"].as_str().unwrap().to_string();
    let files = [
        warden::policy::archive::ArchiveFile {
            path: format!("{root}/policy.rego"),
            bytes: rego.as_bytes().to_vec(),
        },
        warden::policy::archive::ArchiveFile {
            path: ".manifest".into(),
            bytes: serde_json::to_vec(&json!({"revision": "1", "roots": [root]})).unwrap(),
        },
    ];
    let bundle = warden::policy::archive::write(&files).unwrap();
    w.install_bundle(&admin, root, bundle).await;
    Tenant { admin }
}

struct Figures {
    health_p50: Duration,
    health_p99: Duration,
    health_max: Duration,
    decisions_per_s: f64,
    attacker: Vec<(u16, u64)>,
}

/// The bystander's load and the prober for `seconds`, with `attack`
/// running beside them (if any).
async fn measure(w: &Warden, bystander: &Tenant, attack: Option<Attack>, o: &Opts) -> Figures {
    let stop = Arc::new(AtomicBool::new(false));
    let done = Arc::new(AtomicU64::new(0));
    let mut tasks = Vec::new();
    for _ in 0..o.clients {
        let (http, base, token) = (w.http.clone(), w.base.clone(), bystander.admin.clone());
        let (stop, done) = (stop.clone(), done.clone());
        tasks.push(tokio::spawn(async move {
            let body = json!({"path": "bystander/allow", "input": {"user": "ada", "amount": 120}});
            while !stop.load(Ordering::Relaxed) {
                let r = http
                    .post(format!("{base}/v1/decisions"))
                    .bearer_auth(&token)
                    .json(&body)
                    .send()
                    .await;
                if r.is_ok_and(|r| r.status().is_success()) {
                    done.fetch_add(1, Ordering::Relaxed);
                }
            }
        }));
    }
    let prober = {
        let (http, base, stop) = (w.http.clone(), w.base.clone(), stop.clone());
        tokio::spawn(async move {
            let mut samples = Vec::new();
            while !stop.load(Ordering::Relaxed) {
                let started = Instant::now();
                let r = http.get(format!("{base}/health")).send().await;
                assert!(r.is_ok_and(|r| r.status().is_success()), "/health failed");
                samples.push(started.elapsed());
                tokio::time::sleep(Duration::from_millis(10)).await;
            }
            samples
        })
    };
    let attacker = attack.map(|a| {
        let (http, base, stop) = (w.http.clone(), w.base.clone(), stop.clone());
        tokio::spawn(a.run(http, base, stop, o.rate, o.slow))
    });
    let started = Instant::now();
    tokio::time::sleep(Duration::from_secs(o.seconds)).await;
    stop.store(true, Ordering::Relaxed);
    let elapsed = started.elapsed();
    for t in tasks {
        let _ = t.await;
    }
    let mut samples = prober.await.unwrap();
    let attacker = match attacker {
        Some(a) => a.await.unwrap(),
        None => Vec::new(),
    };
    samples.sort();
    let at = |q: f64| samples[((samples.len() as f64 * q) as usize).min(samples.len() - 1)];
    Figures {
        health_p50: at(0.50),
        health_p99: at(0.99),
        health_max: *samples.last().unwrap(),
        decisions_per_s: done.load(Ordering::Relaxed) as f64 / elapsed.as_secs_f64(),
        attacker,
    }
}

#[derive(Clone)]
struct Attack {
    name: &'static str,
    token: String,
}

impl Attack {
    /// The attacker's requests until `stop`; (status, count) pairs.
    async fn run(
        self,
        http: reqwest::Client,
        base: String,
        stop: Arc<AtomicBool>,
        rate: u64,
        slow: usize,
    ) -> Vec<(u16, u64)> {
        let counts = Arc::new(std::sync::Mutex::new(std::collections::BTreeMap::<u16, u64>::new()));
        let bodies: Vec<String> = match self.name {
            "marker" => vec![
                r#"{"path": "attacker/allow", "input": {"x": {"$serde_json::private::Number": "1e200000000"}}}"#.into(),
            ],
            "numbers" => vec![
                r#"{"path": "attacker/allow", "input": {"f": 123456789012345678901234567890}}"#.into(),
                r#"{"path": "attacker/allow", "input": {"f": 1e400}}"#.into(),
                format!(
                    r#"{{"path": "attacker/allow", "input": {{"f": {}}}}}"#,
                    "9".repeat(1000)
                ),
            ],
            "duplicates" => {
                let filler = "x".repeat(512 * 1024);
                vec![format!(
                    r#"{{"path": "attacker/allow", "input": {{"a": 1, "pad": "{filler}", "a": 2}}}}"#
                )]
            }
            _ => vec![r#"{"path": "attacker/allow"}"#.into()],
        };
        let token = self.token.clone();
        let tally = counts.clone();
        let send = move |body: String| {
            let (http, base, token, counts) = (http.clone(), base.clone(), token.clone(), tally.clone());
            async move {
                let status = http
                    .post(format!("{base}/v1/decisions"))
                    .bearer_auth(token)
                    .header("content-type", "application/json")
                    .body(body)
                    .send()
                    .await
                    .map(|r| r.status().as_u16())
                    .unwrap_or(0);
                *counts.lock().unwrap().entry(status).or_default() += 1;
            }
        };
        if self.name == "slow_policy" {
            let mut workers = Vec::new();
            for _ in 0..slow {
                let (stop, send, body) = (stop.clone(), send.clone(), bodies[0].clone());
                workers.push(tokio::spawn(async move {
                    while !stop.load(Ordering::Relaxed) {
                        send(body.clone()).await;
                    }
                }));
            }
            for w in workers {
                let _ = w.await;
            }
        } else {
            let mut tick = tokio::time::interval(Duration::from_micros(1_000_000 / rate.max(1)));
            let mut n = 0usize;
            let mut in_flight = Vec::new();
            while !stop.load(Ordering::Relaxed) {
                tick.tick().await;
                in_flight.push(tokio::spawn(send(bodies[n % bodies.len()].clone())));
                n += 1;
            }
            for f in in_flight {
                let _ = f.await;
            }
        }
        let counts = counts.lock().unwrap();
        counts.iter().map(|(s, n)| (*s, *n)).collect()
    }
}

fn ms(d: Duration) -> String {
    format!("{:.1}", d.as_secs_f64() * 1000.0)
}

fn main() {
    let o = opts();
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(async {
        let per_tenant = o.per_tenant.to_string();
        let env: Vec<(&str, &str)> = if o.per_tenant > 0 {
            vec![("WARDEN_POLICY__EVAL_PER_TENANT", per_tenant.as_str())]
        } else {
            Vec::new()
        };
        let w = Warden::start(o.postgres, &env).await;
        let bystander = tenant(
            &w,
            "bystander",
            "package bystander\n\ndefault allow := false\n\nallow if {\n  input.user == \"ada\"\n  input.amount < 1000\n}\n",
            "bystander",
        )
        .await;
        let attacker = tenant(
            &w,
            "attacker",
            "package attacker\n\ndefault allow := false\n\nallow if {\n  every i in numbers.range(1, 5000) {\n    every j in numbers.range(1, 5000) {\n      i + j > 0\n    }\n  }\n}\n",
            "attacker",
        )
        .await;
        let agent = w
            .post(&attacker.admin, "/v1/tokens", &json!({"name": "agent", "roles": ["agent"]}))
            .await
            .expect("an agent token")["token"]
            .as_str()
            .unwrap()
            .to_string();
        let baseline = measure(&w, &bystander, None, &o).await;
        println!(
            "store: {}; policy.eval_per_tenant: {}; {} bystander clients, {} s per phase; attacker rate {}/s (slow_policy: {} at once)",
            if o.postgres { "PostgreSQL" } else { "SQLite" },
            if o.per_tenant > 0 { per_tenant.as_str() } else { "default (cores)" },
            o.clients,
            o.seconds,
            o.rate,
            o.slow
        );
        println!("| attack | /health p50 ms | p99 ms | max ms | bystander decisions/s | of baseline | attacker answers |");
        println!("|---|---|---|---|---|---|---|");
        let row = |name: &str, f: &Figures| {
            let answers: Vec<String> = f.attacker.iter().map(|(s, n)| format!("{s}×{n}")).collect();
            println!(
                "| {name} | {} | {} | {} | {:.0} | {:.0} % | {} |",
                ms(f.health_p50),
                ms(f.health_p99),
                ms(f.health_max),
                f.decisions_per_s,
                100.0 * f.decisions_per_s / baseline.decisions_per_s,
                if answers.is_empty() { "—".to_string() } else { answers.join(", ") }
            );
        };
        row("none (baseline)", &baseline);
        for name in &o.attacks {
            let attack = Attack {
                name,
                token: agent.clone(),
            };
            let f = measure(&w, &bystander, Some(attack), &o).await;
            row(name, &f);
        }
        let rss: Value = json!(w.status_kib("VmHWM"));
        println!("Warden's peak resident memory: {rss} KiB");
        w.stop().await;
    });
}
