//! Evidence commands: `export`, `verify`, `verify-receipt`, `fsck`,
//! `replay`, `impact`.
//!
//! `verify` and `verify-receipt` need nothing but files and a public key:
//! they are what an auditor runs. `fsck` reads the store directly (an
//! operator's tool); the others talk to a running server.

use std::io::BufReader;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::Duration;

use anyhow::{Context, bail};
use clap::Args;
use indicatif::{ProgressBar, ProgressStyle};
use serde_json::Value;

use crate::config::Config;
use crate::evidence::checkpoint::NoteVerifier;
use crate::evidence::receipt::Receipt;
use crate::evidence::verify;
use crate::ledger::fsck;

#[derive(Debug, Args)]
pub struct ServerArgs {
    /// Warden's base URL.
    #[arg(long, env = "WARDEN_URL", default_value = "http://127.0.0.1:8181")]
    pub server: String,
    /// Bearer token with the auditor or compliance role.
    #[arg(long, env = "WARDEN_TOKEN", hide_env_values = true)]
    pub token: String,
}

#[derive(Debug, Args)]
pub struct ExportArgs {
    #[command(flatten)]
    pub server: ServerArgs,
    /// File to write the evidence to.
    #[arg(long, short)]
    pub out: PathBuf,
    /// First entry (default 0).
    #[arg(long)]
    pub from: Option<u64>,
    /// End of the range, exclusive (rounded up to a checkpoint; default: all).
    #[arg(long)]
    pub to: Option<u64>,
}

#[derive(Debug, Args)]
pub struct VerifyArgs {
    /// An evidence file written by `warden export` or `GET /v1/ledger/export`.
    pub file: PathBuf,
    /// A trusted ledger key, `name+keyid+base64` as `GET /v1/ledger/keys`
    /// lists it, or a file holding one. Repeat for several.
    #[arg(long = "key", required = true)]
    pub keys: Vec<String>,
    /// Print the report as JSON.
    #[arg(long)]
    pub json: bool,
}

#[derive(Debug, Args)]
pub struct VerifyReceiptArgs {
    /// A receipt, or a decision response carrying one (`receipt` member).
    pub file: PathBuf,
    #[arg(long = "key", required = true)]
    pub keys: Vec<String>,
    /// The entry's bytes (e.g. from `GET /v1/ledger/entries/{index}`), to
    /// check they are what the receipt proves.
    #[arg(long)]
    pub entry: Option<PathBuf>,
}

#[derive(Debug, Args)]
pub struct FsckArgs {
    #[arg(long, env = "WARDEN_CONFIG")]
    pub config: Option<PathBuf>,
    #[arg(long)]
    pub database_url: Option<String>,
    #[arg(long)]
    pub data_dir: Option<PathBuf>,
    /// Check only this tenant's log (tenant id).
    #[arg(long)]
    pub tenant: Option<String>,
    #[arg(long)]
    pub json: bool,
}

#[derive(Debug, Args)]
pub struct ReplayArgs {
    #[command(flatten)]
    pub server: ServerArgs,
    /// The decision id (`dec_…`).
    pub id: String,
}

#[derive(Debug, Args)]
pub struct ImpactArgs {
    #[command(flatten)]
    pub server: ServerArgs,
    #[arg(long)]
    pub bundle: String,
    /// The candidate revision (uploaded; need not be active).
    #[arg(long)]
    pub revision: String,
    /// Decisions at or after this RFC 3339 time.
    #[arg(long)]
    pub from: Option<String>,
    /// Decisions before this RFC 3339 time.
    #[arg(long)]
    pub to: Option<String>,
    /// Only decisions on this path.
    #[arg(long)]
    pub path: Option<String>,
    /// `key=value` a decision's context must hold (value as JSON, else a string). Repeatable.
    #[arg(long = "context")]
    pub context: Vec<String>,
    /// Most changed decisions listed.
    #[arg(long)]
    pub limit: Option<usize>,
}

fn bar(len: Option<u64>, what: &str) -> ProgressBar {
    let bar = match len {
        Some(n) => ProgressBar::new(n).with_style(
            ProgressStyle::with_template("{msg} [{bar:40}] {bytes}/{total_bytes} {bytes_per_sec} eta {eta}")
                .expect("a valid template")
                .progress_chars("=> "),
        ),
        None => ProgressBar::new_spinner().with_style(
            ProgressStyle::with_template("{spinner} {msg} {bytes} {bytes_per_sec} {elapsed}")
                .expect("a valid template"),
        ),
    };
    // Drawn on stderr, and only when it is a terminal.
    bar.set_message(what.to_string());
    bar
}

/// A key given as text, or as a file holding the text.
pub fn parse_keys(given: &[String]) -> anyhow::Result<Vec<NoteVerifier>> {
    given
        .iter()
        .map(|k| {
            let text = if Path::new(k).is_file() {
                std::fs::read_to_string(k).with_context(|| format!("cannot read key file {k}"))?
            } else {
                k.clone()
            };
            NoteVerifier::parse(text.trim()).map_err(|e| {
                anyhow::anyhow!("--key {k:?}: {e}; give the verifier text `name+keyid+base64` from GET /v1/ledger/keys")
            })
        })
        .collect()
}

pub fn verify(args: VerifyArgs) -> anyhow::Result<ExitCode> {
    let keys = parse_keys(&args.keys)?;
    let file = std::fs::File::open(&args.file).with_context(|| format!("cannot open {}", args.file.display()))?;
    let len = file.metadata().map(|m| m.len()).ok();
    let progress = bar(len, "verifying");
    let reader = BufReader::with_capacity(1 << 20, file);
    let outcome = verify::verify_export(reader, &keys, &mut |done| progress.set_position(done));
    progress.finish_and_clear();
    match outcome {
        Ok(report) => {
            if args.json {
                println!("{}", serde_json::to_string_pretty(&report)?);
            } else {
                println!(
                    "ok: {} entries ({}..{}) of {}, {} checkpoints verified; root {}",
                    report.entries, report.from, report.to, report.log, report.checkpoints, report.root
                );
            }
            Ok(ExitCode::SUCCESS)
        }
        Err(e) => {
            eprintln!("verification failed: {e}");
            Ok(ExitCode::FAILURE)
        }
    }
}

pub fn verify_receipt(args: VerifyReceiptArgs) -> anyhow::Result<ExitCode> {
    let keys = parse_keys(&args.keys)?;
    let text = std::fs::read_to_string(&args.file).with_context(|| format!("cannot read {}", args.file.display()))?;
    let value: Value = serde_json::from_str(&text).context("the receipt file is not JSON")?;
    let receipt = value.get("receipt").cloned().unwrap_or(value);
    let receipt: Receipt = serde_json::from_value(receipt).context("the file holds no receipt")?;
    let entry = args
        .entry
        .as_ref()
        .map(|p| std::fs::read(p).with_context(|| format!("cannot read {}", p.display())))
        .transpose()?;
    let entry = entry.as_deref().map(|b| b.strip_suffix(b"\n").unwrap_or(b));
    match verify::verify_receipt(&receipt, &keys, entry) {
        Ok(_) => {
            println!(
                "ok: entry {} ({}) is in {} under the signed checkpoint of size {}",
                receipt.index, receipt.entry_hash, receipt.log, receipt.tree_size
            );
            Ok(ExitCode::SUCCESS)
        }
        Err(e) => {
            eprintln!("receipt does not verify: {e}");
            Ok(ExitCode::FAILURE)
        }
    }
}

fn runtime() -> anyhow::Result<tokio::runtime::Runtime> {
    Ok(tokio::runtime::Builder::new_current_thread().enable_all().build()?)
}

fn client() -> anyhow::Result<reqwest::Client> {
    Ok(reqwest::Client::builder()
        .connect_timeout(Duration::from_secs(10))
        .build()?)
}

/// The server's problem, as the error of this command.
async fn problem(res: reqwest::Response) -> anyhow::Error {
    let status = res.status();
    let body: Value = res.json().await.unwrap_or(Value::Null);
    anyhow::anyhow!(
        "{status}: {} ({})",
        body.get("detail").and_then(Value::as_str).unwrap_or("no detail"),
        body.get("code").and_then(Value::as_str).unwrap_or("no code")
    )
}

pub fn export(args: ExportArgs) -> anyhow::Result<ExitCode> {
    use tokio::io::AsyncWriteExt;
    runtime()?.block_on(async move {
        let base = args.server.server.trim_end_matches('/');
        let mut query = Vec::new();
        if let Some(f) = args.from {
            query.push(format!("from={f}"));
        }
        if let Some(t) = args.to {
            query.push(format!("to={t}"));
        }
        let mut res = client()?
            .get(format!("{base}/v1/ledger/export?{}", query.join("&")))
            .bearer_auth(&args.server.token)
            .send()
            .await?;
        if !res.status().is_success() {
            return Err(problem(res).await);
        }
        // Written beside the target, then renamed: never a partial file
        // under the name asked for.
        let partial = args.out.with_extension("partial");
        let mut file = tokio::fs::File::create(&partial)
            .await
            .with_context(|| format!("cannot create {}", partial.display()))?;
        let progress = bar(None, "exporting");
        while let Some(chunk) = res.chunk().await.context("the export stream broke off")? {
            file.write_all(&chunk).await?;
            progress.inc(chunk.len() as u64);
        }
        file.sync_all().await?;
        progress.finish_and_clear();
        tokio::fs::rename(&partial, &args.out).await?;
        eprintln!("wrote {} ({} bytes)", args.out.display(), progress.position());
        Ok(ExitCode::SUCCESS)
    })
}

pub fn fsck(args: FsckArgs) -> anyhow::Result<ExitCode> {
    let mut config = Config::load(args.config.as_deref(), std::env::vars())?;
    if let Some(u) = args.database_url {
        config.database_url = Some(u);
    }
    if let Some(d) = args.data_dir {
        config.data_dir = d;
    }
    config.validate()?;
    runtime()?.block_on(async move {
        let store = crate::store::Store::connect(&config.database_url(), 2)
            .await
            .with_context(|| {
                format!(
                    "cannot open the store at {}",
                    crate::app::redact(&config.database_url())
                )
            })?;
        let progress = ProgressBar::new_spinner().with_style(
            ProgressStyle::with_template("{spinner} checking {pos} entries {per_sec} {elapsed}")
                .expect("a valid template"),
        );
        let reports = fsck::check(&store, &config.ledger.name, args.tenant.as_deref(), &mut |n| {
            progress.inc(n)
        })
        .await?;
        progress.finish_and_clear();
        store.close().await;
        let bad = reports.iter().filter(|r| !r.problems.is_empty()).count();
        if args.json {
            println!("{}", serde_json::to_string_pretty(&reports)?);
        } else {
            for r in &reports {
                if r.problems.is_empty() {
                    println!(
                        "ok: {} — {} entries, {} checkpoints, root {}",
                        r.log, r.entries, r.checkpoints, r.root
                    );
                } else {
                    println!("FAILED: {} — {} entries", r.log, r.entries);
                    for p in &r.problems {
                        println!("  {}", p.what);
                    }
                }
            }
        }
        if bad > 0 {
            eprintln!("fsck: {bad} of {} logs have problems", reports.len());
            Ok(ExitCode::FAILURE)
        } else {
            Ok(ExitCode::SUCCESS)
        }
    })
}

pub fn replay(args: ReplayArgs) -> anyhow::Result<ExitCode> {
    runtime()?.block_on(async move {
        let base = args.server.server.trim_end_matches('/');
        let res = client()?
            .post(format!("{base}/v1/decisions/{}/replay", args.id))
            .bearer_auth(&args.server.token)
            .send()
            .await?;
        if !res.status().is_success() {
            return Err(problem(res).await);
        }
        let body: Value = res.json().await?;
        println!("{}", serde_json::to_string_pretty(&body)?);
        if body.get("match") == Some(&Value::Bool(true)) {
            eprintln!("replay matches the recorded decision");
            Ok(ExitCode::SUCCESS)
        } else {
            eprintln!("replay DIFFERS from the recorded decision");
            Ok(ExitCode::FAILURE)
        }
    })
}

/// Adds one page of an impact answer to the running total.
fn merge(mut total: Value, part: Value, limit: usize) -> Value {
    let add = |t: &mut Value, p: &Value| *t = (t.as_u64().unwrap_or(0) + p.as_u64().unwrap_or(0)).into();
    for k in ["considered", "unchanged", "failed"] {
        add(&mut total[k], &part[k]);
    }
    for k in ["total", "allow_to_deny", "deny_to_allow", "other"] {
        add(&mut total["changed"][k], &part["changed"][k]);
    }
    let mut workflows: std::collections::BTreeSet<String> = total["workflows"]
        .as_array()
        .into_iter()
        .chain(part["workflows"].as_array())
        .flatten()
        .filter_map(|w| w.as_str().map(str::to_string))
        .collect();
    total["workflows"] = std::mem::take(&mut workflows).into_iter().collect::<Vec<_>>().into();
    let mut truncated = total["truncated"] == true || part["truncated"] == true;
    if let (Some(list), Some(more)) = (total["decisions"].as_array_mut(), part["decisions"].as_array()) {
        for d in more {
            if list.len() < limit {
                list.push(d.clone());
            } else {
                truncated = true;
            }
        }
    }
    total["truncated"] = truncated.into();
    if !part["scanned_to"].is_null() {
        total["scanned_to"] = part["scanned_to"].clone();
    }
    total
}

pub fn impact(args: ImpactArgs) -> anyhow::Result<ExitCode> {
    let mut context = serde_json::Map::new();
    for kv in &args.context {
        let Some((k, v)) = kv.split_once('=') else {
            bail!("--context {kv:?}: expected key=value");
        };
        let v = serde_json::from_str(v).unwrap_or_else(|_| Value::String(v.to_string()));
        context.insert(k.to_string(), v);
    }
    let mut filter = serde_json::Map::new();
    for (k, v) in [("from", &args.from), ("to", &args.to), ("path", &args.path)] {
        if let Some(v) = v {
            filter.insert(k.into(), Value::String(v.clone()));
        }
    }
    if !context.is_empty() {
        filter.insert("context".into(), Value::Object(context));
    }
    let mut body = serde_json::json!({"bundle": args.bundle, "revision": args.revision, "filter": filter});
    if let Some(l) = args.limit {
        body["limit"] = l.into();
    }
    let limit = args.limit.unwrap_or(1_000);
    runtime()?.block_on(async move {
        let base = args.server.server.trim_end_matches('/');
        let client = client()?;
        // The log's size bounds the scan: the progress bar's length.
        let res = client
            .get(format!("{base}/v1/ledger/checkpoint"))
            .bearer_auth(&args.server.token)
            .send()
            .await?;
        if !res.status().is_success() {
            return Err(problem(res).await);
        }
        let size = res.json::<Value>().await?["size"].as_u64().unwrap_or(0);
        let progress = ProgressBar::new(size).with_style(
            ProgressStyle::with_template("replaying decisions [{bar:40}] {pos}/{len} entries {per_sec} eta {eta}")
                .expect("a valid template")
                .progress_chars("=> "),
        );
        let mut total: Option<Value> = None;
        let mut after: Option<u64> = None;
        loop {
            let mut page = body.clone();
            page["max_scan"] = 2_000.into();
            if let Some(a) = after {
                page["after"] = a.into();
            }
            let res = client
                .post(format!("{base}/v1/impact"))
                .bearer_auth(&args.server.token)
                .json(&page)
                .send()
                .await?;
            if !res.status().is_success() {
                progress.abandon();
                return Err(problem(res).await);
            }
            let part: Value = res.json().await?;
            if let Some(i) = part["scanned_to"].as_u64() {
                progress.set_position(i + 1);
            }
            after = part["next_after"].as_u64();
            total = Some(match total {
                None => part,
                Some(t) => merge(t, part, limit),
            });
            if after.is_none() {
                break;
            }
        }
        progress.finish_and_clear();
        let mut view = total.unwrap_or_default();
        if let Some(o) = view.as_object_mut() {
            o.remove("next_after");
        }
        println!("{}", serde_json::to_string_pretty(&view)?);
        eprintln!(
            "{} decisions considered: {} unchanged, {} changed ({} allow→deny, {} deny→allow, {} other); workflows affected: {}",
            view["considered"],
            view["unchanged"],
            view["changed"]["total"],
            view["changed"]["allow_to_deny"],
            view["changed"]["deny_to_allow"],
            view["changed"]["other"],
            view["workflows"]
        );
        Ok(ExitCode::SUCCESS)
    })
}
