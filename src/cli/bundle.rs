//! `warden bundle build | sign | test | push`.

use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::Duration;

use anyhow::{Context, bail};
use clap::Subcommand;

use crate::policy::archive::{self, ArchiveFile};
use crate::policy::bundle::{self, MANIFEST_FILE, SIGNATURES_FILE, SignaturePolicy};
use crate::policy::compiled::CompiledPolicy;
use crate::policy::signature::{self, Algorithm};

#[derive(Debug, Subcommand)]
pub enum BundleCommand {
    /// Pack a directory of Rego and data files into an OPA bundle (gzipped tar).
    Build {
        /// Directory holding `*.rego`, `data.json`/`data.yaml` and optionally `.manifest`.
        dir: PathBuf,
        /// Revision to record in the manifest (required unless `.manifest` has one).
        #[arg(long)]
        revision: Option<String>,
        /// Manifest roots (repeatable); replaces the roots of an existing `.manifest`.
        #[arg(long = "root")]
        roots: Vec<String>,
        #[arg(short, long, default_value = "bundle.tar.gz")]
        output: PathBuf,
    },
    /// Sign a built bundle: adds the `.signatures.json` that OPA verifies.
    Sign {
        bundle: PathBuf,
        /// Private key, PEM (PKCS#8; RSA and EC keys as OpenSSL writes them).
        #[arg(long)]
        key: PathBuf,
        /// The key id (`kid`) verifiers look the public key up by.
        #[arg(long)]
        key_id: String,
        /// EdDSA, RS256 or ES256.
        #[arg(long, default_value = "EdDSA")]
        algorithm: String,
        #[arg(long)]
        scope: Option<String>,
        /// Where to write the signed bundle (default: replace the input).
        #[arg(short, long)]
        output: Option<PathBuf>,
    },
    /// Compile a bundle directory (or built bundle) and run its Rego tests.
    Test {
        /// A directory or a `.tar.gz` bundle.
        path: PathBuf,
        /// Longest the tests may run, all together, in milliseconds.
        #[arg(long, default_value_t = 10_000)]
        timeout_ms: u64,
    },
    /// Upload a built bundle to a Warden server, optionally activating it.
    Push {
        bundle: PathBuf,
        /// Bundle name on the server.
        #[arg(long)]
        name: String,
        #[arg(long, env = "WARDEN_URL", default_value = "http://127.0.0.1:8181")]
        server: String,
        /// Bearer token with the compliance (or admin) role.
        #[arg(long, env = "WARDEN_TOKEN", hide_env_values = true)]
        token: String,
        /// Activate the uploaded revision.
        #[arg(long)]
        activate: bool,
        /// Activate even if the bundle's Rego tests failed.
        #[arg(long)]
        force: bool,
    },
}

pub fn run(cmd: BundleCommand) -> anyhow::Result<ExitCode> {
    match cmd {
        BundleCommand::Build {
            dir,
            revision,
            roots,
            output,
        } => {
            let bytes = build(&dir, revision.as_deref(), &roots)?;
            std::fs::write(&output, &bytes).with_context(|| format!("cannot write {}", output.display()))?;
            println!(
                "wrote {} ({} bytes, digest {})",
                output.display(),
                bytes.len(),
                bundle::digest(&bytes)
            );
            Ok(ExitCode::SUCCESS)
        }
        BundleCommand::Sign {
            bundle: path,
            key,
            key_id,
            algorithm,
            scope,
            output,
        } => {
            let bytes = std::fs::read(&path).with_context(|| format!("cannot read {}", path.display()))?;
            let pem = std::fs::read_to_string(&key).with_context(|| format!("cannot read {}", key.display()))?;
            let alg: Algorithm = algorithm.parse()?;
            let signing_key = signature::SigningKey::from_pem(&key_id, alg, &pem)?;
            let signed = sign(&bytes, &signing_key, scope.as_deref())?;
            let out = output.unwrap_or(path);
            std::fs::write(&out, &signed).with_context(|| format!("cannot write {}", out.display()))?;
            println!(
                "signed {} with key {key_id} ({alg:?}); digest {}",
                out.display(),
                bundle::digest(&signed)
            );
            Ok(ExitCode::SUCCESS)
        }
        BundleCommand::Test { path, timeout_ms } => test(&path, Duration::from_millis(timeout_ms)),
        BundleCommand::Push {
            bundle: path,
            name,
            server,
            token,
            activate,
            force,
        } => push(&path, &name, &server, &token, activate, force),
    }
}

/// Packs `dir` into a bundle, writing the manifest with the given revision
/// and roots. Output is reproducible: the same inputs give the same bytes.
pub fn build(dir: &Path, revision: Option<&str>, roots: &[String]) -> anyhow::Result<Vec<u8>> {
    let mut files = archive::collect_dir(dir).with_context(|| format!("cannot read {}", dir.display()))?;
    files.retain(|f| f.path != SIGNATURES_FILE);
    let mut manifest = match files.iter().position(|f| f.path == MANIFEST_FILE) {
        Some(i) => {
            let f = files.remove(i);
            match serde_json::from_slice::<serde_json::Value>(&f.bytes)
                .with_context(|| format!("{}/.manifest is not valid JSON", dir.display()))?
            {
                serde_json::Value::Object(m) => m,
                _ => bail!("{}/.manifest must be a JSON object", dir.display()),
            }
        }
        None => serde_json::Map::new(),
    };
    if let Some(r) = revision {
        manifest.insert("revision".into(), r.into());
    }
    if !roots.is_empty() {
        manifest.insert(
            "roots".into(),
            roots.iter().map(|r| serde_json::Value::from(r.as_str())).collect(),
        );
    }
    let rev = manifest
        .get("revision")
        .and_then(|v| v.as_str())
        .unwrap_or_default()
        .to_string();
    bundle::validate_revision(&rev).context("pass --revision or set \"revision\" in .manifest")?;
    if !files.iter().any(|f| f.path.ends_with(".rego")) {
        bail!("{} holds no .rego files", dir.display());
    }
    // OPA puts the manifest last.
    files.push(ArchiveFile {
        path: MANIFEST_FILE.into(),
        bytes: serde_json::to_vec(&manifest)?,
    });
    Ok(archive::write(&files)?)
}

/// Adds (or replaces) `.signatures.json` in a built bundle.
pub fn sign(bytes: &[u8], key: &signature::SigningKey, scope: Option<&str>) -> anyhow::Result<Vec<u8>> {
    let mut files = archive::read(bytes, &archive::Limits::default())?;
    files.retain(|f| f.path != SIGNATURES_FILE);
    let listed: Vec<(String, Vec<u8>)> = files.iter().map(|f| (f.path.clone(), f.bytes.clone())).collect();
    let sigs = signature::sign(&listed, key, scope)?;
    // Before the manifest, where `opa build` places it.
    let at = files
        .iter()
        .position(|f| f.path == MANIFEST_FILE)
        .unwrap_or(files.len());
    files.insert(
        at,
        ArchiveFile {
            path: SIGNATURES_FILE.into(),
            bytes: sigs,
        },
    );
    Ok(archive::write(&files)?)
}

fn test(path: &Path, timeout: Duration) -> anyhow::Result<ExitCode> {
    let bytes = if path.is_dir() {
        let has_manifest = path.join(MANIFEST_FILE).exists();
        build(path, if has_manifest { None } else { Some("test") }, &[])?
    } else {
        std::fs::read(path).with_context(|| format!("cannot read {}", path.display()))?
    };
    let parsed = bundle::parse(&bytes, &archive::Limits::default(), SignaturePolicy::UNCHECKED)?;
    let policy = CompiledPolicy::compile(&parsed, timeout)?;
    for n in crate::policy::compat::notices(&parsed) {
        println!("NOTE {}:{}: {} ({})", n.file, n.line, n.message, n.code);
    }
    let results = policy.run_tests(timeout);
    let failed = results.iter().filter(|r| !r.passed).count();
    for r in &results {
        match &r.error {
            None => println!("PASS {}.{} ({} µs)", r.package.replace('/', "."), r.name, r.duration_us),
            Some(e) => println!("FAIL {}.{}: {e}", r.package.replace('/', "."), r.name),
        }
    }
    println!(
        "{} tests: {} passed, {} failed",
        results.len(),
        results.len() - failed,
        failed
    );
    Ok(if failed == 0 && !results.is_empty() {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    })
}

fn push(path: &Path, name: &str, server: &str, token: &str, activate: bool, force: bool) -> anyhow::Result<ExitCode> {
    let bytes = std::fs::read(path).with_context(|| format!("cannot read {}", path.display()))?;
    let rt = tokio::runtime::Builder::new_current_thread().enable_all().build()?;
    rt.block_on(async move {
        let client = reqwest::Client::builder().timeout(Duration::from_secs(60)).build()?;
        let base = server.trim_end_matches('/');
        let res = client
            .put(format!("{base}/v1/bundles/{name}"))
            .bearer_auth(token)
            .header("content-type", "application/gzip")
            .body(bytes)
            .send()
            .await
            .with_context(|| format!("cannot reach {base}"))?;
        let status = res.status();
        let body: serde_json::Value = res.json().await.unwrap_or_default();
        if !status.is_success() {
            eprintln!(
                "upload refused ({status}): {} [{}]",
                body["detail"].as_str().unwrap_or(""),
                body["code"].as_str().unwrap_or("")
            );
            return Ok(ExitCode::FAILURE);
        }
        let revision = body["revision"].as_str().unwrap_or_default().to_string();
        println!(
            "uploaded {name} revision {revision} (digest {})",
            body["digest"].as_str().unwrap_or("")
        );
        if let Some(tests) = body["tests"].as_array() {
            let failed = tests.iter().filter(|t| t["passed"] != true).count();
            println!("rego tests: {} passed, {} failed", tests.len() - failed, failed);
        }
        if activate {
            let res = client
                .post(format!("{base}/v1/bundles/{name}/activate"))
                .bearer_auth(token)
                .json(&serde_json::json!({"revision": revision, "force": force}))
                .send()
                .await?;
            let status = res.status();
            let body: serde_json::Value = res.json().await.unwrap_or_default();
            if !status.is_success() {
                eprintln!(
                    "activation refused ({status}): {} [{}]",
                    body["detail"].as_str().unwrap_or(""),
                    body["code"].as_str().unwrap_or("")
                );
                return Ok(ExitCode::FAILURE);
            }
            println!("activated {name} revision {revision}");
        }
        Ok(ExitCode::SUCCESS)
    })
}
