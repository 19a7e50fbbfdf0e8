//! Bundle versions, activation, the compiled-policy cache, and decisions.
//!
//! Compiled policies are cached by digest: a version is compiled once, when
//! uploaded or first needed, and shared by every request. The active versions
//! of each tenant are held in memory and re-read from the store on a timer,
//! so instances that share PostgreSQL converge without talking to each other.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, RwLock};
use std::time::{Duration, Instant};

use serde_json::json;
use serde_json::value::RawValue;

use super::Error;
use super::archive;
use super::bundle::{self, ParsedBundle, SignaturePolicy};
use super::compiled::{Captured, CompiledPolicy, DataPath, TestResult};
use super::decision::{self, BundleId, Decision, DecisionRequest, Timing};
use super::gate::{EvalGate, GateLimits};
use super::signature::{Algorithm, VerificationKey};
use crate::auth::{Principal, new_id};
use crate::clock::{Clock, rfc3339_ms};
use crate::ledger::{AppendError, Ledger, Record};
use crate::metrics::Metrics;
use crate::store::{ActivationRow, AdminWrite, BundleUpload, BundleVersionRow, Change, KeyRow, Store};

/// Most places a `rego_difference` refusal lists.
const MAX_LISTED_DIFFERENCES: usize = 10;

/// Most compiled versions kept besides the active ones.
const COMPILED_CACHE_CAP: usize = 128;

/// How often an activation reads the head again after another activation
/// of the same bundle moved it first.
const ACTIVATION_ATTEMPTS: usize = 3;

#[derive(Debug, Clone)]
pub struct PolicyLimits {
    pub archive: archive::Limits,
    pub eval_timeout: Duration,
    pub test_timeout: Duration,
    pub gate: GateLimits,
}

/// A version ready to answer: its identity, roots and compiled policy.
#[derive(Debug, Clone)]
pub struct Resolved {
    pub id: BundleId,
    pub roots: Vec<Vec<String>>,
    pub policy: Arc<CompiledPolicy>,
}

/// The result of an upload.
#[derive(Debug)]
pub struct Uploaded {
    pub version: BundleVersionRow,
    /// False when the identical version was already stored.
    pub created: bool,
    pub tests: Vec<TestResult>,
    /// What the upload found worth telling (see [`super::compat`]).
    pub notices: Vec<super::compat::Notice>,
}

/// A recorded decision evaluated again.
#[derive(Debug, Clone)]
pub struct Reevaluated {
    pub bundle: BundleId,
    pub result: Option<serde_json::Value>,
    pub allow: Option<bool>,
    /// The captured values after evaluation: a replay that made a call the
    /// original did not shows it here.
    pub captured: Captured,
}

#[derive(Debug)]
pub struct Activated {
    pub name: String,
    pub revision: String,
    pub digest: String,
    pub previous_revision: Option<String>,
}

pub struct PolicyService {
    store: Store,
    /// Uploads and activations are appended here, with their rows.
    ledger: Ledger,
    clock: Clock,
    limits: PolicyLimits,
    metrics: Arc<Metrics>,
    gate: EvalGate,
    compiled: Mutex<HashMap<String, Arc<CompiledPolicy>>>,
    /// Pinned versions by (tenant, name, revision); versions are immutable.
    pinned: Mutex<HashMap<(String, String, String), Arc<Resolved>>>,
    /// Active versions per tenant.
    active: RwLock<HashMap<String, Arc<Vec<Arc<Resolved>>>>>,
    /// By (tenant, bundle): the ledger index of the activation installed
    /// last. Activations racing on one bundle commit in ledger order but
    /// reach memory in any order: one older than what is installed is not
    /// installed over it.
    installed_at: Mutex<HashMap<(String, String), u64>>,
}

/// Makes `resolved` its bundle's active version for `tenant_id`.
fn put_active(active: &mut HashMap<String, Arc<Vec<Arc<Resolved>>>>, tenant_id: &str, resolved: Arc<Resolved>) {
    let mut list: Vec<Arc<Resolved>> = active.get(tenant_id).map(|l| l.as_ref().clone()).unwrap_or_default();
    list.retain(|r| r.id.name != resolved.id.name);
    list.push(resolved);
    list.sort_by(|a, b| a.id.name.cmp(&b.id.name));
    active.insert(tenant_id.to_string(), Arc::new(list));
}

pub fn validate_bundle_name(name: &str) -> Result<(), Error> {
    let ok = !name.is_empty()
        && name.len() <= 64
        && name
            .chars()
            .next()
            .is_some_and(|c| c.is_ascii_lowercase() || c.is_ascii_digit())
        && name
            .chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || matches!(c, '.' | '_' | '-'));
    if ok {
        Ok(())
    } else {
        Err(Error::InvalidBundleName(name.to_string()))
    }
}

impl PolicyService {
    pub fn new(store: Store, ledger: Ledger, clock: Clock, limits: PolicyLimits, metrics: Arc<Metrics>) -> Self {
        Self {
            store,
            ledger,
            clock,
            gate: EvalGate::new(limits.gate),
            limits,
            metrics,
            compiled: Mutex::new(HashMap::new()),
            pinned: Mutex::new(HashMap::new()),
            active: RwLock::new(HashMap::new()),
            installed_at: Mutex::new(HashMap::new()),
        }
    }

    pub fn limits(&self) -> &PolicyLimits {
        &self.limits
    }

    async fn tenant_keys(&self, tenant_id: &str) -> Result<Vec<VerificationKey>, Error> {
        let rows = self.store.list_keys(tenant_id).await?;
        rows.iter().map(key_from_row).collect()
    }

    /// Validates, compiles, tests and stores a new bundle version. Places
    /// Warden may evaluate otherwise than OPA are listed in the notices, or
    /// refuse the upload where the tenant's settings say so.
    pub async fn upload(&self, who: &Principal, name: &str, bytes: Vec<u8>) -> Result<Uploaded, Error> {
        validate_bundle_name(name)?;
        let tenant = self
            .store
            .tenant(&who.tenant_id)
            .await?
            .ok_or_else(|| Error::Internal("caller's tenant vanished".into()))?;
        let keys = self.tenant_keys(&who.tenant_id).await?;
        let limits = self.limits.clone();
        let require = tenant.require_signatures;
        let bytes = Arc::new(bytes);
        let parsed = {
            let bytes = bytes.clone();
            blocking(move || {
                bundle::parse(
                    &bytes,
                    &limits.archive,
                    SignaturePolicy {
                        keys: &keys,
                        required: require,
                        verify: true,
                    },
                )
            })
            .await??
        };

        if let Some(existing) = self
            .store
            .bundle_version(&who.tenant_id, name, &parsed.manifest.revision)
            .await?
        {
            if existing.digest == parsed.digest {
                return Ok(Uploaded {
                    tests: stored_tests(&existing),
                    version: existing,
                    created: false,
                    notices: super::compat::notices(&parsed),
                });
            }
            return Err(Error::RevisionExists {
                name: name.to_string(),
                revision: existing.revision,
                digest: existing.digest,
            });
        }
        if super::compat::OnDifference::parse(&tenant.rego_differences) == super::compat::OnDifference::Refuse {
            let found = super::compat::differences(&parsed);
            if !found.is_empty() {
                let mut listed: Vec<String> = found
                    .iter()
                    .take(MAX_LISTED_DIFFERENCES)
                    .map(|n| format!("{}:{}: {}: {}", n.file, n.line, n.code, n.message))
                    .collect();
                if found.len() > MAX_LISTED_DIFFERENCES {
                    listed.push(format!("and {} more", found.len() - MAX_LISTED_DIFFERENCES));
                }
                return Err(Error::RegoDifference(listed.join("; ")));
            }
        }
        let roots = parsed.roots_text();
        let others = self.store.other_bundle_roots(&who.tenant_id, name).await?;
        for (other, other_root) in &others {
            if let Some((root, other_root)) = bundle::roots_overlap(&roots, std::slice::from_ref(other_root)) {
                return Err(Error::RootOverlap {
                    root,
                    other: other.clone(),
                    other_root,
                });
            }
        }

        let (policy, tests) = {
            let eval_timeout = self.limits.eval_timeout;
            let test_timeout = self.limits.test_timeout;
            let parsed = parsed.clone();
            blocking(move || -> Result<_, Error> {
                let policy = CompiledPolicy::compile(&parsed, eval_timeout)?;
                let tests = policy.run_tests(test_timeout);
                Ok((policy, tests))
            })
            .await??
        };
        let tests_passed = tests.iter().all(|t| t.passed);
        let version = BundleVersionRow {
            tenant_id: who.tenant_id.clone(),
            name: name.to_string(),
            revision: parsed.manifest.revision.clone(),
            digest: parsed.digest.clone(),
            roots,
            size_bytes: parsed.size_bytes as i64,
            tests: serde_json::to_value(&tests).map_err(|e| Error::Internal(e.to_string()))?,
            tests_passed,
            signed_by: parsed.signature.as_ref().map(|s| s.key_id.clone()),
            uploaded_by: who.actor(),
            uploaded_at: self.clock.now_ms(),
        };
        let payload = json!({
            "name": name, "revision": version.revision, "digest": version.digest, "roots": version.roots,
            "size_bytes": version.size_bytes, "signed_by": version.signed_by, "tests_passed": version.tests_passed,
            "tests": {"total": tests.len(), "failed": tests.iter().filter(|t| !t.passed).count()},
        });
        let record = Record::new(&who.tenant_id, "bundle.upload", &who.actor(), &payload)
            .about(format!("{name}@{}", version.revision));
        let change = Change {
            bundle: Some(BundleUpload {
                version: version.clone(),
                content: bytes,
            }),
            ..Change::default()
        };
        // The version and the entry of its upload commit together.
        match self.ledger.append_with(vec![record], change).await {
            Ok(_) => {}
            // Another upload stored this revision first.
            Err(AppendError::Changed(_)) => {
                let stored = self
                    .store
                    .bundle_version(&who.tenant_id, name, &version.revision)
                    .await?;
                return match stored {
                    Some(existing) if existing.digest == version.digest => Ok(Uploaded {
                        tests: stored_tests(&existing),
                        version: existing,
                        created: false,
                        notices: super::compat::notices(&parsed),
                    }),
                    _ => Err(Error::RevisionExists {
                        name: name.to_string(),
                        revision: version.revision,
                        digest: version.digest,
                    }),
                };
            }
            Err(e) => return Err(e.into()),
        }
        self.remember(Arc::new(policy));
        Ok(Uploaded {
            version,
            created: true,
            tests,
            notices: super::compat::notices(&parsed),
        })
    }

    /// Makes a stored version the active one (recorded as `bundle.activate`).
    pub async fn activate(&self, who: &Principal, name: &str, revision: &str, force: bool) -> Result<Activated, Error> {
        self.activate_as(who, name, revision, force, "bundle.activate").await
    }

    /// [`Self::activate`], recorded as `kind`. The head moves only with the
    /// entry recording it; one moved meanwhile by another activation is read
    /// again.
    async fn activate_as(
        &self,
        who: &Principal,
        name: &str,
        revision: &str,
        force: bool,
        kind: &'static str,
    ) -> Result<Activated, Error> {
        let version = self.version(&who.tenant_id, name, revision).await?;
        if !version.tests_passed && !force {
            return Err(Error::TestsFailed(revision.to_string()));
        }
        let tenant = self.store.tenant(&who.tenant_id).await?;
        if tenant.is_some_and(|t| t.require_signatures) && version.signed_by.is_none() {
            return Err(Error::UnsignedVersion(revision.to_string()));
        }
        // Compile before switching, so a version that cannot load never becomes active.
        let resolved = self.resolve_version(&version).await?;
        let mut attempts = 0;
        let previous = loop {
            let previous = self.store.bundle_head(&who.tenant_id, name).await?;
            let payload = json!({"name": name, "revision": revision, "digest": version.digest,
                "previous_revision": previous, "forced": force});
            let record = Record::new(&who.tenant_id, kind, &who.actor(), &payload).about(format!("{name}@{revision}"));
            let change = Change {
                activation: Some(ActivationRow {
                    tenant_id: who.tenant_id.clone(),
                    name: name.to_string(),
                    revision: revision.to_string(),
                    previous: previous.clone(),
                    forced: force,
                    by: who.actor(),
                    at: self.clock.now_ms(),
                }),
                ..Change::default()
            };
            match self.ledger.append_with(vec![record], change).await {
                Ok(receipts) => break (previous, receipts[0].index),
                Err(AppendError::Changed(_)) if attempts < ACTIVATION_ATTEMPTS => attempts += 1,
                Err(e) => return Err(e.into()),
            }
        };
        let (previous, index) = previous;
        self.install_activated(&who.tenant_id, resolved, index);
        self.metrics.bundle_activations.inc();
        Ok(Activated {
            name: name.to_string(),
            revision: revision.to_string(),
            digest: version.digest,
            previous_revision: previous,
        })
    }

    /// Re-activates `to`, or the revision active before the current one.
    pub async fn rollback(
        &self,
        who: &Principal,
        name: &str,
        to: Option<&str>,
        force: bool,
    ) -> Result<Activated, Error> {
        let target = match to {
            Some(r) => r.to_string(),
            None => self
                .store
                .previous_active(&who.tenant_id, name)
                .await?
                .ok_or_else(|| Error::NothingToRollBack(name.to_string()))?,
        };
        self.activate_as(who, name, &target, force, "bundle.rollback").await
    }

    pub async fn version(&self, tenant_id: &str, name: &str, revision: &str) -> Result<BundleVersionRow, Error> {
        match self.store.bundle_version(tenant_id, name, revision).await? {
            Some(v) => Ok(v),
            None => {
                if self.store.bundle_versions(tenant_id, name).await?.is_empty() {
                    Err(Error::UnknownBundle(name.to_string()))
                } else {
                    Err(Error::UnknownRevision {
                        name: name.to_string(),
                        revision: revision.to_string(),
                    })
                }
            }
        }
    }

    fn remember(&self, policy: Arc<CompiledPolicy>) {
        let mut compiled = self.compiled.lock().expect("compiled cache lock");
        if compiled.len() >= COMPILED_CACHE_CAP {
            let active: Vec<String> = self
                .active
                .read()
                .expect("active lock")
                .values()
                .flat_map(|v| v.iter().map(|r| r.id.digest.clone()).collect::<Vec<_>>())
                .collect();
            compiled.retain(|d, _| active.contains(d));
        }
        compiled.insert(policy.digest.clone(), policy);
    }

    /// The compiled policy of a stored version, compiling it if needed.
    async fn resolve_version(&self, v: &BundleVersionRow) -> Result<Arc<Resolved>, Error> {
        let key = (v.tenant_id.clone(), v.name.clone(), v.revision.clone());
        if let Some(r) = self.pinned.lock().expect("pinned lock").get(&key) {
            return Ok(r.clone());
        }
        let cached = self
            .compiled
            .lock()
            .expect("compiled cache lock")
            .get(&v.digest)
            .cloned();
        let policy = match cached {
            Some(p) => p,
            None => {
                let content = self
                    .store
                    .bundle_content(&v.tenant_id, &v.name, &v.revision)
                    .await?
                    .ok_or_else(|| Error::UnknownRevision {
                        name: v.name.clone(),
                        revision: v.revision.clone(),
                    })?;
                let limits = self.limits.clone();
                let expected = v.digest.clone();
                let policy = blocking(move || -> Result<CompiledPolicy, Error> {
                    let parsed: ParsedBundle = bundle::parse(&content, &limits.archive, SignaturePolicy::UNCHECKED)?;
                    if parsed.digest != expected {
                        return Err(Error::Corrupt(expected));
                    }
                    CompiledPolicy::compile(&parsed, limits.eval_timeout)
                })
                .await??;
                let policy = Arc::new(policy);
                self.remember(policy.clone());
                policy
            }
        };
        let roots = v
            .roots
            .iter()
            .map(|r| {
                let t = r.trim_matches('/');
                if t.is_empty() {
                    vec![]
                } else {
                    t.split('/').map(str::to_string).collect()
                }
            })
            .collect();
        let resolved = Arc::new(Resolved {
            id: BundleId {
                name: v.name.clone(),
                revision: v.revision.clone(),
                digest: v.digest.clone(),
            },
            roots,
            policy,
        });
        let mut pinned = self.pinned.lock().expect("pinned lock");
        if pinned.len() >= COMPILED_CACHE_CAP {
            pinned.clear();
        }
        pinned.insert(key, resolved.clone());
        Ok(resolved)
    }

    /// Installs the version an activation committed at ledger `index`,
    /// unless a later activation of the same bundle is installed already
    /// (checked and installed under one lock).
    fn install_activated(&self, tenant_id: &str, resolved: Arc<Resolved>, index: u64) {
        let mut active = self.active.write().expect("active lock");
        let key = (tenant_id.to_string(), resolved.id.name.clone());
        let mut installed = self.installed_at.lock().expect("installed lock");
        if installed.get(&key).is_some_and(|i| *i > index) {
            return;
        }
        installed.insert(key, index);
        put_active(&mut active, tenant_id, resolved);
    }

    /// Re-reads every active version from the store; compiles what changed.
    /// Returns how many active versions are loaded.
    pub async fn refresh(&self) -> Result<usize, Error> {
        let heads = self.store.heads().await?;
        let mut next: HashMap<String, Vec<Arc<Resolved>>> = HashMap::new();
        for h in &heads {
            let current = self
                .active
                .read()
                .expect("active lock")
                .get(&h.tenant_id)
                .and_then(|l| {
                    l.iter()
                        .find(|r| r.id.name == h.name && r.id.revision == h.revision)
                        .cloned()
                });
            let resolved = match current {
                Some(r) => r,
                None => {
                    let v = self.version(&h.tenant_id, &h.name, &h.revision).await?;
                    self.resolve_version(&v).await?
                }
            };
            next.entry(h.tenant_id.clone()).or_default().push(resolved);
        }
        let count = heads.len();
        let mut active = self.active.write().expect("active lock");
        *active = next.into_iter().map(|(k, v)| (k, Arc::new(v))).collect();
        Ok(count)
    }

    /// True when every active version is compiled and loaded.
    pub fn active_count(&self) -> usize {
        self.active.read().expect("active lock").values().map(|l| l.len()).sum()
    }

    /// Finds the version that answers for `path`: the pinned one, or the
    /// active bundle whose roots contain the path.
    async fn resolve_for(
        &self,
        tenant_id: &str,
        path: &DataPath,
        pin: Option<&decision::BundlePin>,
    ) -> Result<Arc<Resolved>, Error> {
        match pin {
            Some(pin) => {
                let revision = match &pin.revision {
                    Some(r) => r.clone(),
                    None => {
                        let active = self.active.read().expect("active lock").get(tenant_id).cloned();
                        match active.and_then(|l| l.iter().find(|r| r.id.name == pin.name).cloned()) {
                            Some(r) => return Ok(r),
                            None => {
                                // Exists but never activated, or does not exist.
                                return Err(
                                    match self.store.bundle_versions(tenant_id, &pin.name).await?.is_empty() {
                                        true => Error::UnknownBundle(pin.name.clone()),
                                        false => Error::NoBundleForPath(path.to_slash()),
                                    },
                                );
                            }
                        }
                    }
                };
                let key = (tenant_id.to_string(), pin.name.clone(), revision.clone());
                if let Some(r) = self.pinned.lock().expect("pinned lock").get(&key) {
                    return Ok(r.clone());
                }
                let v = self.version(tenant_id, &pin.name, &revision).await?;
                self.resolve_version(&v).await
            }
            None => {
                let active = self.active.read().expect("active lock").get(tenant_id).cloned();
                active
                    .and_then(|list| {
                        list.iter()
                            .find(|r| r.roots.iter().any(|root| path.within(root)))
                            .cloned()
                    })
                    .ok_or_else(|| Error::NoBundleForPath(path.to_slash()))
            }
        }
    }

    /// Evaluates a decision. The returned record is complete: the caller
    /// makes it durable before answering.
    pub async fn decide(&self, who: &Principal, req: DecisionRequest) -> Result<Decision, Error> {
        let path = DataPath::parse(&req.path)?;
        let resolved = self.resolve_for(&who.tenant_id, &path, req.bundle.as_ref()).await?;
        let context = req.context;
        let now_ns = self.clock.now_ns();
        let captured = Captured {
            now_ns,
            calls: Default::default(),
        };
        // Parsing and evaluating run on the gate's threads; the raw input
        // goes there and comes back for the record, never copied.
        let policy = resolved.policy.clone();
        let (raw_input, path, outcome, captured, eval) = self
            .gate
            .run(&who.tenant_id, move || {
                let mut captured = captured;
                let started = Instant::now();
                let outcome =
                    parse_input(req.input.as_deref()).and_then(|input| policy.evaluate(&path, input, &mut captured));
                (req.input, path, outcome, captured, started.elapsed())
            })
            .await?;
        self.metrics.eval_seconds.observe(eval.as_secs_f64());
        let result = match outcome {
            Ok(v) => v,
            Err(e) => {
                self.metrics.decision(match &e {
                    Error::UnknownRulePath(_) => "unknown_path",
                    _ => "error",
                });
                return Err(e);
            }
        };
        let allow = decision::extract_allow(&result);
        let reasons = decision::extract_reasons(&result);
        self.metrics.decision(match (allow, &result) {
            (_, regorus::Value::Undefined) => "undefined",
            (Some(true), _) => "allow",
            (Some(false), _) => "deny",
            (None, _) => "other",
        });
        Ok(Decision {
            decision_id: new_id("dec", now_ns / 1_000_000),
            timestamp: rfc3339_ms(now_ns / 1_000_000),
            path: path.to_slash(),
            result,
            allow,
            reasons,
            bundle: resolved.id.clone(),
            captured,
            context,
            timing: Timing {
                eval_us: eval.as_nanos() as f64 / 1000.0,
            },
            caller: who.actor(),
            tenant_id: who.tenant_id.clone(),
            input: raw_input,
            receipt: None,
        })
    }

    /// Evaluates a recorded decision again with its captured values (the
    /// same `time.now_ns`, the same random draws) against a stored bundle
    /// version: its own pinned version for a replay, another revision for
    /// impact analysis.
    pub async fn reevaluate(
        &self,
        tenant_id: &str,
        name: &str,
        revision: &str,
        recorded: &decision::RecordedDecision,
    ) -> Result<Reevaluated, Error> {
        let v = self.version(tenant_id, name, revision).await?;
        let resolved = self.resolve_version(&v).await?;
        let path = DataPath::parse(&recorded.path)?;
        let text = recorded.input.as_ref().map(|i| i.to_string());
        let mut captured = recorded.captured.clone();
        let policy = resolved.policy.clone();
        let (result, captured) =
            self.gate
                .run(tenant_id, move || {
                    let input = match text {
                        None => Ok(regorus::Value::Undefined),
                        Some(t) => regorus::Value::from_json_str(&t)
                            .map_err(|e| Error::PolicyEval(format!("recorded input: {e}"))),
                    };
                    let result = input.and_then(|input| policy.evaluate(&path, input, &mut captured));
                    (result, captured)
                })
                .await?;
        let result = result?;
        let allow = decision::extract_allow(&result);
        let result = match result {
            regorus::Value::Undefined => None,
            v => Some(serde_json::to_value(&v).map_err(|e| Error::Internal(e.to_string()))?),
        };
        Ok(Reevaluated {
            bundle: resolved.id.clone(),
            result,
            allow,
            captured,
        })
    }

    /// Registers a bundle verification key after checking that it parses.
    pub async fn add_key(
        &self,
        who: &Principal,
        key_id: &str,
        algorithm: &str,
        pem: &str,
        scope: Option<&str>,
    ) -> Result<KeyRow, Error> {
        let alg: Algorithm = algorithm.parse().map_err(Error::Signature)?;
        VerificationKey::new(key_id, alg, pem, scope).map_err(Error::Signature)?;
        let row = KeyRow {
            tenant_id: who.tenant_id.clone(),
            key_id: key_id.to_string(),
            algorithm: alg.as_str().to_string(),
            public_pem: pem.to_string(),
            scope: scope.map(str::to_string),
            created_at: self.clock.now_ms(),
            created_by: who.actor(),
        };
        let payload =
            json!({"key_id": row.key_id, "algorithm": row.algorithm, "public_key": row.public_pem, "scope": row.scope});
        let record = Record::new(&who.tenant_id, "key.add", &who.actor(), &payload).about(key_id);
        let change = Change {
            admin: Some(AdminWrite::AddKey(row.clone())),
            ..Change::default()
        };
        // The key and the entry of its addition commit together.
        self.ledger.append_with(vec![record], change).await?;
        Ok(row)
    }

    /// Deletes one of the caller's tenant's verification keys, with the
    /// entry recording it: false when there is no such key.
    pub async fn delete_key(&self, who: &Principal, key_id: &str) -> Result<bool, Error> {
        let record = Record::new(&who.tenant_id, "key.delete", &who.actor(), &json!({"key_id": key_id})).about(key_id);
        let change = Change {
            admin: Some(AdminWrite::DeleteKey {
                tenant_id: who.tenant_id.clone(),
                key_id: key_id.to_string(),
            }),
            ..Change::default()
        };
        match self.ledger.append_with(vec![record], change).await {
            Ok(_) => Ok(true),
            Err(AppendError::Changed("key")) => Ok(false),
            Err(e) => Err(e.into()),
        }
    }
}

fn key_from_row(r: &KeyRow) -> Result<VerificationKey, Error> {
    let alg: Algorithm = r.algorithm.parse().map_err(Error::Signature)?;
    VerificationKey::new(&r.key_id, alg, &r.public_pem, r.scope.as_deref()).map_err(Error::Signature)
}

/// The stored test report of a version.
pub fn stored_tests(v: &BundleVersionRow) -> Vec<TestResult> {
    serde_json::from_value(v.tests.clone()).unwrap_or_default()
}

fn parse_input(raw: Option<&RawValue>) -> Result<regorus::Value, Error> {
    match raw {
        None => Ok(regorus::Value::Undefined),
        Some(raw) => regorus::Value::from_json_str(raw.get()).map_err(|e| Error::PolicyEval(format!("input: {e}"))),
    }
}

async fn blocking<T: Send + 'static>(f: impl FnOnce() -> T + Send + 'static) -> Result<T, Error> {
    tokio::task::spawn_blocking(f)
        .await
        .map_err(|e| Error::Internal(format!("worker failed: {e}")))
}
