//! A compiled bundle version and its evaluation.
//!
//! A bundle is compiled once per digest into a prepared regorus engine (the
//! template). Each worker thread keeps its own clone of the template, so
//! concurrent evaluations never contend on a lock and never re-parse Rego.
//!
//! Non-deterministic builtins are routed through [`Captured`]: `time.now_ns`
//! returns the value fixed for the decision, and `rand.intn` and
//! `uuid.rfc4122` record what they returned. A replay installs the recorded
//! values and so evaluates bit for bit as the original did.

use std::cell::RefCell;
use std::collections::{BTreeMap, HashMap, HashSet};
use std::num::NonZeroU32;
use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use regorus::Value;
use regorus::utils::limits::{ExecutionTimerConfig, LimitError};
use serde::{Deserialize, Serialize};

use super::Error;
use super::bundle::ParsedBundle;
use super::rego_scan;

/// Values of non-deterministic builtins, fixed for one decision.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct Captured {
    /// What `time.now_ns()` returns during this evaluation.
    pub now_ns: i64,
    /// Results of other non-deterministic calls, keyed by call and arguments,
    /// e.g. `rand.intn(["seed",10])`.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    #[schema(value_type = Object)]
    pub calls: BTreeMap<String, serde_json::Value>,
}

thread_local! {
    /// The capture of the evaluation running on this thread, if any.
    static CAPTURE: RefCell<Option<Captured>> = const { RefCell::new(None) };
    /// This thread's clones of compiled templates, by compiled-policy id.
    static ENGINES: RefCell<HashMap<u64, regorus::Engine>> = RefCell::new(HashMap::new());
}

/// The package of the synthetic entry-point rules; not addressable by callers
/// (it is in no bundle's roots, and no path resolves to it).
const SYNTHETIC_PACKAGE: &str = "__warden_entry__";

/// Most templates one thread keeps clones of before it starts afresh.
const THREAD_ENGINE_CAP: usize = 64;

static NEXT_ID: AtomicU64 = AtomicU64::new(1);

/// A rule's result, a test's outcome.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, utoipa::ToSchema)]
pub struct TestResult {
    /// Package path, `/`-separated.
    pub package: String,
    pub name: String,
    pub passed: bool,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
    pub duration_us: u64,
}

/// Longest component of a document path, in bytes.
const MAX_PATH_COMPONENT: usize = 256;

/// A path into the policy's document, parsed: `a/b/c` or `a.b.c`.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct DataPath(pub Vec<String>);

impl DataPath {
    /// Parses a document path. With a `/` anywhere it is `/`-separated, as
    /// OPA's Data API reads it, and a component is any key (`pkg/deny/no
    /// owner` names a member of the set `deny`, `cfg/a.b` the key `a.b`);
    /// without one it is `.`-separated Rego identifiers (`pkg.rule`).
    pub fn parse(path: &str) -> Result<Self, Error> {
        let trimmed = path.trim_matches('/');
        let trimmed = trimmed.strip_prefix("data/").unwrap_or(trimmed);
        if trimmed.is_empty() || trimmed == "data" {
            return Err(Error::InvalidPath(format!(
                "path {path:?} is empty; name a package or rule such as agento/commissioning/routing/allow"
            )));
        }
        if trimmed.contains('/') {
            let parts: Vec<String> = trimmed.split('/').map(str::to_string).collect();
            for p in &parts {
                if p.is_empty()
                    || p.len() > MAX_PATH_COMPONENT
                    || p.chars().any(char::is_control)
                    || p == "."
                    || p == ".."
                {
                    return Err(Error::InvalidPath(format!(
                        "path component {p:?} in {path:?} must be 1 to {MAX_PATH_COMPONENT} bytes without control characters, and not . or .."
                    )));
                }
            }
            return Ok(DataPath(parts));
        }
        let parts: Vec<String> = trimmed.split('.').map(str::to_string).collect();
        for p in &parts {
            if !is_identifier(p) {
                return Err(Error::InvalidPath(format!(
                    "path component {p:?} in {path:?} is not a Rego identifier (letters, digits, underscore; not starting with a digit); separate components with / to name any key"
                )));
            }
        }
        Ok(DataPath(parts))
    }

    pub fn to_slash(&self) -> String {
        self.0.join("/")
    }

    /// The Rego reference, e.g. `data.a.b["c-d"]`.
    pub fn to_ref(&self) -> String {
        components_to_ref(&self.0)
    }

    /// True when `self` lies inside the root (segment-wise prefix).
    pub fn within(&self, root: &[String]) -> bool {
        root.len() <= self.0.len() && self.0[..root.len()] == *root
    }
}

pub(crate) fn components_to_ref(parts: &[String]) -> String {
    let mut out = String::from("data");
    for p in parts {
        if is_identifier(p) {
            out.push('.');
            out.push_str(p);
        } else {
            out.push('[');
            out.push_str(&serde_json::Value::String(p.clone()).to_string());
            out.push(']');
        }
    }
    out
}

fn is_identifier(p: &str) -> bool {
    p.chars().next().is_some_and(|c| c.is_ascii_alphabetic() || c == '_')
        && p.chars().all(|c| c.is_ascii_alphanumeric() || c == '_')
}

/// How a known path is evaluated.
enum Target {
    /// `package/rule`: the fast rule evaluator.
    Rule(String),
    /// A package, an ancestor of packages, a deeper reference or a data path.
    Query(String),
}

/// One bundle version, compiled.
pub struct CompiledPolicy {
    id: u64,
    pub digest: String,
    packages: Vec<Vec<String>>,
    /// The synthetic rule answering each whole package.
    package_rules: HashMap<Vec<String>, String>,
    rules: HashMap<Vec<String>, HashSet<String>>,
    tests: Vec<(Vec<String>, String)>,
    /// Objects every package document holds (`rewrite::rule_parents`),
    /// as full paths from the root.
    parents: Vec<Vec<String>>,
    data: serde_json::Value,
    template: Mutex<regorus::Engine>,
}

impl std::fmt::Debug for CompiledPolicy {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("CompiledPolicy").field("digest", &self.digest).finish()
    }
}

impl CompiledPolicy {
    /// Compiles every module of the bundle (naming file and line on error),
    /// loads its data and prepares the engine for evaluation.
    pub fn compile(bundle: &ParsedBundle, eval_timeout: Duration) -> Result<Self, Error> {
        let mut engine = regorus::Engine::new();
        engine.set_policy_length_config(super::rewrite::module_limits());
        engine.set_rego_v0(bundle.manifest.rego_version == Some(0));
        // As OPA with `--strict-builtin-errors`: a builtin that fails
        // fails the evaluation. Without it, a failing builtin in a deny
        // rule would silently let the request through.
        engine.set_strict_builtin_errors(true);
        engine.set_execution_timer_config(ExecutionTimerConfig {
            limit: eval_timeout,
            check_interval: NonZeroU32::new(64).expect("non-zero"),
        });
        // A call to an OPA builtin that Warden refuses or lacks is refused
        // here, with its place, even where no evaluation would reach it.
        let available = |name: &str| {
            regorus::unstable::BUILTINS.contains_key(name)
                || super::builtins::is_ours(name)
                || matches!(
                    name,
                    "time.now_ns"
                        | "rand.intn"
                        | "uuid.rfc4122"
                        | "print"
                        | "assign"
                        | "rego.metadata.rule"
                        | "rego.metadata.chain"
                )
        };
        if let Some(u) = super::compat::first_unsupported_call(bundle, &available) {
            return Err(Error::UnsupportedBuiltin(u.to_string()));
        }
        // A builtin called with a wrong number of arguments: OPA refuses the
        // module, and so does Warden (regorus would fail only when evaluated).
        let arity = super::builtins::any_arity;
        if let Some(message) = super::compat::first_arity_mismatch(bundle, &arity) {
            return Err(Error::RegoCompile(message));
        }
        // A rule that depends on itself: OPA refuses the module, whether
        // or not anything evaluates the rule; regorus would fail only then.
        // A builtin given a literal of a kind it does not take (`count(12)`),
        // or a reference past a value known at compile time (`[10, 20][5]`):
        // OPA's type checker refuses the module. All walk the modules
        // parsed once (a module that does not parse is compiled as it is,
        // and the compiler reports why).
        if let Some(parsed) = super::rewrite::parse_bundle(bundle)
            && let Some(message) = super::call_syntax::first_spaced_call(&parsed)
                .or_else(|| super::template_strings::first_unbound_var(&parsed))
                .or_else(|| super::recursion::first_recursion(&parsed))
                .or_else(|| super::undefined_refs::first_type_error(&parsed))
        {
            return Err(Error::RegoCompile(message));
        }
        let rego_v1 = bundle.manifest.rego_version != Some(0);
        let mut module_parents = Vec::with_capacity(bundle.modules.len());
        // `rego.metadata.rule()` and `rego.metadata.chain()` become the
        // literals OPA's compiler puts in their place.
        let texts: Vec<(&str, &str)> = bundle
            .modules
            .iter()
            .map(|m| (m.path.as_str(), m.source.as_str()))
            .collect();
        let inlined = super::metadata::inline(&texts, rego_v1).map_err(Error::RegoCompile)?;
        for (m, inlined) in bundle.modules.iter().zip(inlined) {
            // `not` and rule heads as OPA evaluates them (a module that does not parse is
            // compiled as it is, and the compiler reports why).
            let source = super::rewrite::rewrite(&m.path, &inlined, rego_v1)
                .ok()
                .flatten()
                .unwrap_or(inlined);
            module_parents.push(super::rewrite::rule_parents(&m.path, &source, rego_v1));
            engine.add_policy(m.path.clone(), source).map_err(|e| {
                let described = first_line_trimmed(&e);
                if described.starts_with(&m.path) {
                    Error::RegoCompile(described)
                } else {
                    Error::RegoCompile(format!("{}: {described}", m.path))
                }
            })?;
        }
        let data_text = bundle.data.to_string();
        // A data document is as untrusted as a request body: reader markers
        // would be taken as numbers to expand.
        crate::strict_json::check(data_text.as_bytes(), 256)
            .map_err(|f| Error::DataInvalid(format!("bundle data: {f}")))?;
        let data = Value::from_json_str(&data_text).map_err(|e| Error::DataInvalid(format!("bundle data: {e}")))?;
        engine
            .add_data(data)
            .map_err(|e| Error::DataInvalid(format!("bundle data: {e}")))?;
        install_capture_extensions(&mut engine)?;

        let components = engine
            .get_policy_package_components()
            .map_err(|e| Error::RegoCompile(e.to_string()))?;
        let mut packages = Vec::new();
        let mut rules: HashMap<Vec<String>, HashSet<String>> = HashMap::new();
        let mut tests = Vec::new();
        let mut parents: Vec<Vec<String>> = Vec::new();
        for ((pkg, module), relative) in components.iter().zip(&bundle.modules).zip(module_parents) {
            let comps = pkg.components.clone();
            for r in relative {
                let full: Vec<String> = comps.iter().cloned().chain(r).collect();
                if !parents.contains(&full) {
                    parents.push(full);
                }
            }
            let names = rego_scan::rule_names(&module.source);
            // As OPA users write them: `test_` rules in `*_test.rego` files.
            // Elsewhere a `test_` rule is an ordinary rule (seed 001's
            // `test_results_within_tolerance` is a helper, not a test).
            let test_file = super::compat::is_test_file(&module.path);
            for t in names.iter().filter(|n| test_file && n.starts_with("test_")) {
                if !tests.contains(&(comps.clone(), t.clone())) {
                    tests.push((comps.clone(), t.clone()));
                }
            }
            rules.entry(comps.clone()).or_default().extend(names);
            if !packages.contains(&comps) {
                packages.push(comps);
            }
        }

        // A whole package is a document, not a rule, and regorus answers a
        // document only through a query, which it parses on every call. One
        // synthetic rule per package, `p<i> := data.<package>`, lets the fast
        // rule evaluator answer package paths too.
        let mut package_rules = HashMap::new();
        let mut synthetic = format!("package {SYNTHETIC_PACKAGE}\n\n");
        for (i, pkg) in packages.iter().enumerate() {
            synthetic.push_str(&format!("p{i} := {}\n", components_to_ref(pkg)));
            package_rules.insert(pkg.clone(), format!("data.{SYNTHETIC_PACKAGE}.p{i}"));
        }
        if !packages.is_empty() {
            engine
                .add_policy(format!("{SYNTHETIC_PACKAGE}.rego"), synthetic)
                .map_err(|e| Error::Internal(format!("package entry points: {e}")))?;
        }

        // Compile-time checks (unsafe variables, recursion, rule conflicts
        // between modules) run when the engine is prepared, on its first
        // query. Preparing here means every clone starts prepared.
        engine
            .eval_query("true".to_string(), false)
            .map_err(|e| Error::RegoCompile(first_line_trimmed(&e)))?;
        // Calls to functions that exist nowhere are only found when a rule
        // runs: evaluate the whole document once, with no input, to surface
        // them at upload rather than at the first decision.
        CAPTURE.with(|c| *c.borrow_mut() = Some(Captured::default()));
        // (A builtin that panics on some argument must not fail the upload.)
        let whole = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
            engine.eval_query("data".to_string(), false)
        }))
        .unwrap_or_else(|_| Err(anyhow::anyhow!("a builtin failed")));
        CAPTURE.with(|c| *c.borrow_mut() = None);
        if let Err(e) = whole {
            let msg = format!("{e:#}");
            if msg.contains("could not find function") {
                return Err(Error::RegoCompile(first_line_trimmed(&e)));
            }
        }

        Ok(Self {
            id: NEXT_ID.fetch_add(1, Ordering::Relaxed),
            digest: bundle.digest.clone(),
            packages,
            package_rules,
            rules,
            tests,
            parents,
            data: bundle.data.clone(),
            template: Mutex::new(engine),
        })
    }

    /// The `/`-separated package paths this bundle declares.
    pub fn packages(&self) -> Vec<String> {
        self.packages.iter().map(|p| p.join("/")).collect()
    }

    fn target(&self, path: &DataPath) -> Option<Target> {
        let parts = &path.0;
        if let Some((rule, pkg)) = parts.split_last()
            && self.rules.get(pkg).is_some_and(|r| r.contains(rule))
        {
            return Some(Target::Rule(path.to_ref()));
        }
        if let Some(rule) = self.package_rules.get(parts) {
            return Some(Target::Rule(rule.clone()));
        }
        // A package or an ancestor of one.
        if self.packages.iter().any(|p| p.starts_with(parts)) {
            return Some(Target::Query(path.to_ref()));
        }
        // Deeper into a rule's value: package/rule/key/…
        for (pkg, names) in &self.rules {
            if parts.len() > pkg.len() + 1 && parts.starts_with(pkg) && names.contains(&parts[pkg.len()]) {
                return Some(Target::Query(path.to_ref()));
            }
        }
        // Into the data document.
        let mut node = &self.data;
        for p in parts {
            match node.get(p) {
                Some(n) => node = n,
                None => return None,
            }
        }
        Some(Target::Query(path.to_ref()))
    }

    /// True when the path names a package, a rule or a data document here.
    pub fn knows(&self, path: &DataPath) -> bool {
        self.target(path).is_some()
    }

    /// Evaluates the path with this input. `captured` supplies `time.now_ns`
    /// and any recorded calls, and receives the calls made.
    pub fn evaluate(&self, path: &DataPath, input: Value, captured: &mut Captured) -> Result<Value, Error> {
        let target = self
            .target(path)
            .ok_or_else(|| Error::UnknownRulePath(path.to_slash()))?;
        let query_of = |q: String, engine: &mut regorus::Engine| {
            engine.eval_query(q, false).map(|mut res| match res.result.pop() {
                Some(mut r) => r.expressions.pop().map(|e| e.value).unwrap_or(Value::Undefined),
                None => Value::Undefined,
            })
        };
        let outcome = self.with_engine(|engine| {
            engine.set_input(input);
            CAPTURE.with(|c| *c.borrow_mut() = Some(std::mem::take(captured)));
            // A builtin of the engine that panics on some argument must
            // fail this evaluation, not the thread that runs it.
            let result = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| match target {
                Target::Rule(r) => match engine.eval_rule(r) {
                    // A prefix of ref-head rules (`obligations` of
                    // `obligations.notify contains …`) is a document, not a
                    // rule: the query answers it.
                    Err(e) if e.downcast_ref::<LimitError>().is_none() => query_of(path.to_ref(), engine),
                    other => other,
                },
                Target::Query(q) => query_of(q, engine),
            }));
            *captured = CAPTURE.with(|c| c.borrow_mut().take()).unwrap_or_default();
            // Drop the input now rather than holding it until the next call.
            engine.set_input(Value::Undefined);
            result
        });
        match outcome {
            Ok(result) => {
                let mut value = result.map_err(eval_error)?;
                // Nothing to do for most paths: a rule, or a package whose
                // rule heads are single names.
                for parent in self.parents.iter().filter(|p| p.starts_with(&path.0)) {
                    ensure_objects(&mut value, &parent[path.0.len()..]);
                }
                if let Some(at) = unrecordable_number(&value) {
                    return Err(Error::PolicyEval(format!(
                        "the result holds an integer too large for the evidence at {}: the ledger records \
                         integers in [-2^63, 2^64 - 1] digit for digit and no others, so no decision is made \
                         rather than one recorded otherwise than computed; return such a number as a string \
                         (format_int(n, 10))",
                        if at.is_empty() {
                            "the result itself".to_string()
                        } else {
                            format!("{at:?}")
                        }
                    )));
                }
                Ok(value)
            }
            Err(panic) => {
                // The engine's state after a panic is unknown: this thread
                // takes a fresh clone of the template next time.
                ENGINES.with(|engines| engines.borrow_mut().remove(&self.id));
                let what = panic
                    .downcast_ref::<&str>()
                    .map(|s| s.to_string())
                    .or_else(|| panic.downcast_ref::<String>().cloned())
                    .unwrap_or_else(|| "unknown".to_string());
                Err(Error::PolicyEval(format!("a builtin failed: {what}")))
            }
        }
    }

    /// Runs every test (a `test_` rule of a `*_test.rego` file); each sees the real clock. `budget` bounds
    /// the whole run: once spent, the remaining tests fail as not run.
    pub fn run_tests(&self, budget: Duration) -> Vec<TestResult> {
        let mut out = Vec::with_capacity(self.tests.len());
        let mut engine = self.template.lock().expect("template lock").clone();
        let run_started = Instant::now();
        for (pkg, name) in &self.tests {
            let remaining = budget.saturating_sub(run_started.elapsed());
            if remaining.is_zero() {
                out.push(TestResult {
                    package: pkg.join("/"),
                    name: name.clone(),
                    passed: false,
                    error: Some(format!(
                        "not run: the tests used up their {} ms budget",
                        budget.as_millis()
                    )),
                    duration_us: 0,
                });
                continue;
            }
            engine.set_execution_timer_config(ExecutionTimerConfig {
                limit: remaining,
                check_interval: NonZeroU32::new(64).expect("non-zero"),
            });
            let mut parts = pkg.clone();
            parts.push(name.clone());
            let started = Instant::now();
            CAPTURE.with(|c| {
                *c.borrow_mut() = Some(Captured {
                    now_ns: chrono_now_ns(),
                    calls: BTreeMap::new(),
                })
            });
            engine.set_input(Value::Undefined);
            let r = engine.eval_rule(components_to_ref(&parts));
            CAPTURE.with(|c| *c.borrow_mut() = None);
            let (passed, error) = match r {
                Ok(Value::Bool(true)) => (true, None),
                Ok(Value::Undefined) => (false, Some("test rule is undefined (a condition failed)".to_string())),
                Ok(other) => (
                    false,
                    Some(format!(
                        "test rule evaluated to {} instead of true",
                        other
                            .to_json_str()
                            .unwrap_or_else(|_| "a value with an integer past 64 bits".into())
                    )),
                ),
                Err(e) => (false, Some(first_line_trimmed(&e))),
            };
            out.push(TestResult {
                package: pkg.join("/"),
                name: name.clone(),
                passed,
                error,
                duration_us: started.elapsed().as_micros() as u64,
            });
        }
        out
    }

    fn with_engine<R>(&self, f: impl FnOnce(&mut regorus::Engine) -> R) -> R {
        ENGINES.with(|engines| {
            let mut engines = engines.borrow_mut();
            if !engines.contains_key(&self.id) {
                if engines.len() >= THREAD_ENGINE_CAP {
                    engines.clear();
                }
                let clone = self.template.lock().expect("template lock").clone();
                engines.insert(self.id, clone);
            }
            let engine = engines.get_mut(&self.id).expect("inserted above");
            f(engine)
        })
    }
}

/// The JSON Pointer of the first number in `value` the evidence cannot
/// hold exactly: an integer outside [-2^63, 2^64 - 1]. regorus computes
/// integers of any size (`bits.lsh(1, 70)`, an RSA modulus parsed from a
/// certificate); the ledger records integers within 64 bits digit for digit
/// and refuses others (`docs/ledger-format.md`); written as JSON, such a
/// number would silently become the nearest double. None for most results,
/// found without allocating.
pub fn unrecordable_number(value: &Value) -> Option<String> {
    fn big(v: &Value) -> bool {
        match v {
            // Only a whole number past 64 bits has a big-integer form (a
            // float past 2^53 has none). Written as JSON it becomes the
            // nearest double: exact when that double's shortest decimal is
            // the same number (`1e30`), not otherwise (2^70, whose shortest
            // form is 1.1805916207174113e21).
            Value::Number(n) if n.as_i64().is_none() && n.as_u64().is_none() && n.as_big().is_some() => {
                let exact = n.format_decimal();
                !exact
                    .parse::<f64>()
                    .is_ok_and(|f| f.is_finite() && same_decimal(&exact, &format!("{f:e}")))
            }
            _ => false,
        }
    }
    /// `digits` (an integer, optionally negative) and `sci` (Rust's `{:e}`
    /// form, `-1.5e21`) name the same number.
    fn same_decimal(digits: &str, sci: &str) -> bool {
        let (d_neg, d) = digits.strip_prefix('-').map_or((false, digits), |d| (true, d));
        let (s_neg, s) = sci.strip_prefix('-').map_or((false, sci), |s| (true, s));
        let Some((mantissa, exp)) = s.split_once('e') else {
            return false;
        };
        let Ok(exp) = exp.parse::<usize>() else {
            return false;
        };
        let m: String = mantissa.chars().filter(char::is_ascii_digit).collect();
        d_neg == s_neg && d.len() == exp + 1 && d.trim_end_matches('0') == m.trim_end_matches('0')
    }
    fn walk(v: &Value, path: &mut Vec<String>) -> bool {
        match v {
            Value::Number(_) => big(v),
            Value::Array(items) => items
                .iter()
                .enumerate()
                .any(|(i, item)| within(path, i.to_string(), item)),
            Value::Set(items) => items
                .iter()
                .enumerate()
                .any(|(i, item)| within(path, i.to_string(), item)),
            Value::Object(members) => members.iter().any(|(k, item)| {
                let key = match k {
                    Value::String(s) => s.to_string(),
                    Value::Number(n) => n.format_decimal(),
                    other => serde_json::to_string(other).unwrap_or_default(),
                };
                (big(k) && {
                    path.push(key.clone());
                    true
                }) || within(path, key, item)
            }),
            _ => false,
        }
    }
    fn within(path: &mut Vec<String>, key: String, item: &Value) -> bool {
        path.push(key);
        let found = walk(item, path);
        if !found {
            path.pop();
        }
        found
    }
    let mut path = Vec::new();
    walk(value, &mut path).then(|| {
        path.iter()
            .map(|k| format!("/{}", k.replace('~', "~0").replace('/', "~1")))
            .collect()
    })
}

fn eval_error(e: anyhow::Error) -> Error {
    if let Some(limit) = e.downcast_ref::<LimitError>() {
        return match limit {
            LimitError::MemoryLimitExceeded { limit, .. } => Error::PolicyMemory(*limit),
            _ => Error::PolicyTimeout(limit.to_string()),
        };
    }
    let text = format!("{e:#}");
    if text.contains("execution exceeded memory limit") {
        return Error::PolicyMemory(0);
    }
    if text.contains("time limit") || text.contains("execution exceeded") {
        return Error::PolicyTimeout(first_line(&text));
    }
    Error::PolicyEval(first_line_trimmed(&e))
}

fn first_line(s: &str) -> String {
    s.lines().next().unwrap_or_default().trim().to_string()
}

/// regorus errors read `--> file:line:col`, a source excerpt, then
/// `error: message`; users need `file:line:col: error: message`.
fn first_line_trimmed(e: &anyhow::Error) -> String {
    let text = format!("{e:#}");
    let lines: Vec<&str> = text.lines().map(str::trim).filter(|l| !l.is_empty()).collect();
    let location = lines.iter().find_map(|l| l.strip_prefix("--> "));
    let message = lines.iter().rev().find(|l| l.starts_with("error:")).copied();
    match (location, message) {
        (Some(loc), Some(msg)) => format!("{loc}: {msg}"),
        (None, Some(msg)) => msg.to_string(),
        _ => lines.first().map(|s| s.to_string()).unwrap_or_default(),
    }
}

fn chrono_now_ns() -> i64 {
    crate::clock::Clock::system().now_ns()
}

/// The time of the evaluation running on this thread: the decision's
/// captured `time.now_ns`, so builtins that read the clock (token expiry,
/// certificate validity) replay bit for bit. Outside an evaluation, now.
pub(crate) fn evaluation_now_ns() -> i64 {
    CAPTURE
        .with(|c| c.borrow().as_ref().map(|cap| cap.now_ns))
        .unwrap_or_else(chrono_now_ns)
}

fn random_u64() -> u64 {
    let mut b = [0u8; 8];
    getrandom::fill(&mut b).expect("operating system random source");
    u64::from_le_bytes(b)
}

/// Makes `path` inside `value` an object where nothing is, as OPA's
/// document holds the parents of every rule head (an undefined document
/// with such a parent below it is an empty object). Stops at a value that
/// is not an object.
fn ensure_objects(value: &mut Value, path: &[String]) {
    if matches!(value, Value::Undefined) {
        *value = Value::new_object();
    }
    let Some((first, rest)) = path.split_first() else {
        return;
    };
    let Ok(object) = value.as_object_mut() else {
        return;
    };
    let key = Value::from(first.as_str());
    if object.get(&key).is_none() {
        object.insert(key.clone(), Value::new_object());
    }
    if let Some(child) = object.get_mut(&key) {
        ensure_objects(child, rest);
    }
}

/// Recorded call key: `name(<json args>)`.
fn call_key(name: &str, args: &[Value]) -> String {
    let args = serde_json::to_string(args).unwrap_or_default();
    format!("{name}({args})")
}

fn recorded_or(
    name: &'static str,
    args: &[Value],
    fresh: impl FnOnce() -> anyhow::Result<Value>,
) -> anyhow::Result<Value> {
    let key = call_key(name, args);
    let known = CAPTURE.with(|c| c.borrow().as_ref().and_then(|cap| cap.calls.get(&key).cloned()));
    if let Some(v) = known {
        return Value::from_json_str(&v.to_string());
    }
    let value = fresh()?;
    let json: serde_json::Value = serde_json::from_str(&value.to_json_str()?)?;
    CAPTURE.with(|c| {
        if let Some(cap) = c.borrow_mut().as_mut() {
            cap.calls.insert(key, json);
        }
    });
    Ok(value)
}

fn install_capture_extensions(engine: &mut regorus::Engine) -> Result<(), Error> {
    let ext = |e: anyhow::Error| Error::Internal(format!("installing builtin capture: {e}"));
    engine
        .add_extension(
            "time.now_ns".to_string(),
            0,
            Box::new(|_args: Vec<Value>| {
                let now = CAPTURE.with(|c| c.borrow().as_ref().map(|cap| cap.now_ns));
                Ok(Value::from(now.unwrap_or_else(chrono_now_ns)))
            }),
        )
        .map_err(ext)?;
    engine
        .add_extension(
            "rand.intn".to_string(),
            2,
            Box::new(|args: Vec<Value>| {
                recorded_or("rand.intn", &args, || {
                    let n = args
                        .get(1)
                        .and_then(|v| v.as_i64().ok())
                        .ok_or_else(|| anyhow::anyhow!("rand.intn: n must be an integer"))?;
                    if n == 0 {
                        return Ok(Value::from(0i64));
                    }
                    let n = n.unsigned_abs();
                    Ok(Value::from((random_u64() % n) as i64))
                })
            }),
        )
        .map_err(ext)?;
    engine
        .add_extension(
            "uuid.rfc4122".to_string(),
            1,
            Box::new(|args: Vec<Value>| {
                recorded_or("uuid.rfc4122", &args, || {
                    let mut b = [0u8; 16];
                    getrandom::fill(&mut b).map_err(|e| anyhow::anyhow!("random source: {e}"))?;
                    b[6] = (b[6] & 0x0f) | 0x40;
                    b[8] = (b[8] & 0x3f) | 0x80;
                    let h = hex::encode(b);
                    Ok(Value::from(format!(
                        "{}-{}-{}-{}-{}",
                        &h[0..8],
                        &h[8..12],
                        &h[12..16],
                        &h[16..20],
                        &h[20..32]
                    )))
                })
            }),
        )
        .map_err(ext)?;
    super::builtins::install(engine).map_err(ext)?;
    // A builtin that panics, to prove a panic stays inside its evaluation.
    #[cfg(test)]
    engine
        .add_extension(
            "warden_test.panic".to_string(),
            1,
            Box::new(|_: Vec<Value>| -> anyhow::Result<Value> { panic!("a test panic") }),
        )
        .map_err(ext)?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::policy::archive::{self, ArchiveFile};
    use crate::policy::bundle::{self, SignaturePolicy};

    fn compiled(files: &[(&str, &str)]) -> CompiledPolicy {
        let mut all: Vec<ArchiveFile> = files
            .iter()
            .map(|(p, c)| ArchiveFile {
                path: p.to_string(),
                bytes: c.as_bytes().to_vec(),
            })
            .collect();
        all.push(ArchiveFile {
            path: ".manifest".into(),
            bytes: br#"{"revision":"1"}"#.to_vec(),
        });
        let bytes = archive::write(&all).unwrap();
        let parsed = bundle::parse(&bytes, &archive::Limits::default(), SignaturePolicy::UNCHECKED).unwrap();
        CompiledPolicy::compile(&parsed, Duration::from_millis(200)).unwrap()
    }

    fn eval(p: &CompiledPolicy, path: &str, input: &str) -> Result<Value, Error> {
        let mut captured = Captured {
            now_ns: 42,
            calls: BTreeMap::new(),
        };
        p.evaluate(
            &DataPath::parse(path).unwrap(),
            Value::from_json_str(input).unwrap(),
            &mut captured,
        )
    }

    /// OPA compiles modules of any size; regorus' defaults refused lines
    /// past 1,024 columns, files past 1 MiB and 20,000 lines.
    #[test]
    fn generated_modules_of_long_lines_and_many_lines_compile() {
        let names: Vec<String> = (0..400).map(|i| format!("\"tool-{i:04}\"")).collect();
        let long_line = format!("allowed := {{{}}}", names.join(", "));
        assert!(long_line.len() > 4_000);
        let mut module = format!("package gen\n\n{long_line}\n\nallow if input.tool in allowed\n");
        for i in 0..20_500 {
            module.push_str(&format!("limit_{i} := {i}\n"));
        }
        module.push_str(&format!("pad := \"{}\"\n", "x".repeat(1 << 20)));
        assert!(module.len() > 1 << 20);
        let p = compiled(&[("gen.rego", &module)]);
        assert_eq!(
            eval(&p, "gen/allow", r#"{"tool": "tool-0399"}"#).unwrap(),
            Value::from(true)
        );
        assert_eq!(eval(&p, "gen/limit_20499", "{}").unwrap(), Value::from(20_499));
    }

    #[test]
    fn packages_rules_and_data_are_addressable_and_nothing_else() {
        let p = compiled(&[
            ("a.rego", "package acme.a\n\nallow if input.ok\n\nt := time.now_ns()\n"),
            ("acme/cfg/data.json", "{\"max\": 3}"),
        ]);
        assert_eq!(eval(&p, "acme/a/allow", "{\"ok\": true}").unwrap(), Value::from(true));
        assert_eq!(
            eval(&p, "acme/a/t", "{}").unwrap(),
            Value::from(42i64),
            "time.now_ns is the captured value"
        );
        let whole = eval(&p, "acme/a", "{\"ok\": true}").unwrap();
        assert_eq!(whole[&Value::from("allow")], Value::from(true));
        assert_eq!(eval(&p, "acme/cfg/max", "{}").unwrap(), Value::from(3));
        assert!(matches!(eval(&p, "acme/a/nope", "{}"), Err(Error::UnknownRulePath(_))));
        assert!(matches!(
            eval(&p, "__warden_entry__/p0", "{}"),
            Err(Error::UnknownRulePath(_))
        ));
    }

    #[test]
    fn a_builtin_that_panics_fails_its_evaluation_not_the_thread() {
        let p = compiled(&[(
            "a.rego",
            "package a\n\nboom := warden_test.panic(input.x)\n\nok := true\n",
        )]);
        assert!(matches!(
            eval(&p, "a/boom", r#"{"x": 1}"#),
            Err(Error::PolicyEval(m)) if m.contains("a builtin failed: a test panic")
        ));
        assert_eq!(
            eval(&p, "a/ok", "{}").unwrap(),
            Value::from(true),
            "the thread evaluates on"
        );
    }

    #[test]
    fn a_result_with_an_integer_the_evidence_cannot_hold_is_refused_with_its_place() {
        let p = compiled(&[(
            "a.rego",
            "package a\n\nbig := bits.lsh(1, 70)\n\nnested := {\"limits\": [1, {\"a/b\": bits.lsh(1, 64)}]}\n\n\
             edge := [bits.lsh(1, 63) * 2 - 1, 0 - bits.lsh(1, 63), 1e30, 0.5]\n\n\
             as_text := format_int(bits.lsh(1, 70), 10)\n\nwithin := bits.lsh(1, 70) > 5\n",
        )]);
        let refused = |path: &str| match eval(&p, path, "{}") {
            Err(Error::PolicyEval(m)) => m,
            other => panic!("{path}: {other:?}"),
        };
        assert!(
            refused("a/big").contains("at the result itself"),
            "{}",
            refused("a/big")
        );
        assert!(
            refused("a/nested").contains(r#""/limits/1/a~1b""#),
            "{}",
            refused("a/nested")
        );
        // The whole package holds them too; the first is named.
        assert!(refused("a").contains(r#""/big""#), "{}", refused("a"));
        // 2^64 - 1, -2^63, and floats of any size are recorded as they are.
        assert_eq!(
            serde_json::to_string(&eval(&p, "a/edge", "{}").unwrap()).unwrap(),
            "[18446744073709551615,-9223372036854775808,1e+30,0.5]"
        );
        // A policy computes with them freely, and returns them as text.
        assert_eq!(
            eval(&p, "a/as_text", "{}").unwrap(),
            Value::from("1180591620717411303424")
        );
        assert_eq!(eval(&p, "a/within", "{}").unwrap(), Value::from(true));
    }

    #[test]
    fn token_expiry_is_judged_at_the_decision_s_captured_time() {
        // exp = 1000 s: valid at the captured 42 ns, long expired today.
        let token = "eyJhbGciOiJIUzI1NiIsInR5cCI6IkpXVCJ9.eyJleHAiOjEwMDB9.81If5ED3cyAZLJqDBwI52MuvsVSExjnO3ucJv55qWDQ";
        let p = compiled(&[(
            "a.rego",
            &format!("package a\n\nvalid := io.jwt.decode_verify(\"{token}\", {{\"secret\": \"k\"}})[0]\n"),
        )]);
        assert_eq!(
            eval(&p, "a/valid", "{}").unwrap(),
            Value::from(true),
            "replays as decided"
        );
        let mut now = Captured {
            now_ns: crate::clock::Clock::system().now_ns(),
            calls: BTreeMap::new(),
        };
        let today = p
            .evaluate(&DataPath::parse("a/valid").unwrap(), Value::Undefined, &mut now)
            .unwrap();
        assert_eq!(today, Value::from(false));
    }

    #[test]
    fn negations_evaluate_nested_terms_first_as_opa_does() {
        let p = compiled(&[(
            "a.rego",
            "package a\n\nblocked := {\"mallory\": true}\n\ndefault allow := false\n\nallow if not blocked[input.user]\n",
        )]);
        assert_eq!(
            eval(&p, "a/allow", "{}").unwrap(),
            Value::from(false),
            "undefined user: denied"
        );
        assert_eq!(eval(&p, "a/allow", r#"{"user": "bob"}"#).unwrap(), Value::from(true));
        assert_eq!(
            eval(&p, "a/allow", r#"{"user": "mallory"}"#).unwrap(),
            Value::from(false)
        );
    }

    #[test]
    fn the_test_budget_bounds_the_whole_run() {
        let slow =
            "count([x | some a in numbers.range(1, 3000); some b in numbers.range(1, 3000); x := a + b; x < 0]) == 0";
        let p = compiled(&[(
            "t_test.rego",
            &format!("package t\n\ntest_fast if true\n\ntest_slow_1 if {slow}\n\ntest_slow_2 if {slow}\n"),
        )]);
        let results = p.run_tests(Duration::from_millis(30));
        assert_eq!(results.len(), 3);
        assert!(results[0].passed);
        assert!(!results[2].passed);
        assert!(results.iter().skip(1).all(|r| r.error.is_some()));
    }
}
