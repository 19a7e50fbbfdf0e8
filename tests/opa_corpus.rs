//! The differential test against real OPA.
//!
//! `tests/opa/` holds a corpus of Rego modules, data and inputs, and next to
//! each category the answers real OPA gave (`expected/`, written by
//! `tests/opa/record.py`, so this test needs no OPA to run). Every case is
//! evaluated by Warden's policy engine, exactly as a decision or the data API
//! evaluates it, and its answer is compared with OPA's: the value (numbers
//! digit for digit, as exact decimals), undefined, or an error.
//!
//! A difference fails the test unless it is listed, with its reason, in
//! `tests/opa/known_differences.json`; a listed difference that no longer
//! differs fails it too, so the list only shrinks. `docs/rego-compatibility.md`
//! explains each one. `WARDEN_OPA_BLESS=1` rewrites the list from the current
//! answers (review the diff: every new line is a new difference).

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::time::Duration;

use serde::Deserialize;
use serde_json::value::RawValue;

use warden::policy::archive::{self, ArchiveFile};
use warden::policy::bundle::{self, SignaturePolicy};
use warden::policy::compiled::{Captured, CompiledPolicy, DataPath};

fn corpus() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/opa")
}

#[derive(Deserialize)]
struct Expected {
    category: String,
    compile: String,
    #[serde(default)]
    compile_error: Option<String>,
    #[serde(default)]
    cases: Vec<Case>,
}

#[derive(Deserialize)]
struct Case {
    rule: String,
    input: String,
    outcome: String,
    /// JSON `null` is a value here, so the text is kept raw.
    #[serde(default = "absent")]
    value: Box<RawValue>,
    #[serde(default)]
    code: Option<String>,
    #[serde(default)]
    message: Option<String>,
}

fn absent() -> Box<RawValue> {
    RawValue::from_string("null".into()).expect("null is JSON")
}

#[derive(Deserialize, Default)]
struct Fixture {
    #[serde(default)]
    data: Option<Box<RawValue>>,
    #[serde(default)]
    inputs: Option<BTreeMap<String, Box<RawValue>>>,
}

/// What one engine answered for one case.
#[derive(Debug, Clone, PartialEq)]
enum Answer {
    Value(serde_json::Value),
    Undefined,
    Error(String),
}

impl std::fmt::Display for Answer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Answer::Value(v) => write!(f, "{}", shorten(&exact_text(v))),
            Answer::Undefined => f.write_str("undefined"),
            Answer::Error(e) => write!(f, "error: {}", shorten(e)),
        }
    }
}

fn shorten(s: &str) -> String {
    if s.chars().count() > 160 {
        format!("{}…", s.chars().take(160).collect::<String>())
    } else {
        s.to_string()
    }
}

/// The category's modules, data and inputs, in either of the corpus' forms.
fn load_category(name: &str) -> (Vec<ArchiveFile>, Fixture) {
    let dir = corpus().join("cases");
    let single = dir.join(format!("{name}.rego"));
    let mut files = Vec::new();
    let mut fixture = Fixture::default();
    if single.exists() {
        files.push(ArchiveFile {
            path: format!("{name}.rego"),
            bytes: std::fs::read(&single).unwrap(),
        });
        let json = dir.join(format!("{name}.json"));
        if json.exists() {
            fixture = serde_json::from_slice(&std::fs::read(&json).unwrap())
                .unwrap_or_else(|e| panic!("{}: {e}", json.display()));
        }
    } else {
        let sub = dir.join(name);
        let mut entries: Vec<_> = std::fs::read_dir(&sub)
            .unwrap_or_else(|e| panic!("category {name}: neither {name}.rego nor {name}/: {e}"))
            .map(|e| e.unwrap().path())
            .collect();
        entries.sort();
        for p in entries {
            let file = p.file_name().unwrap().to_string_lossy().to_string();
            if file.ends_with(".rego") {
                files.push(ArchiveFile {
                    path: format!("{name}/{file}"),
                    bytes: std::fs::read(&p).unwrap(),
                });
            } else if file == "data.json" {
                fixture.data = Some(serde_json::from_slice(&std::fs::read(&p).unwrap()).unwrap());
            } else if file == "inputs.json" {
                fixture.inputs = Some(serde_json::from_slice(&std::fs::read(&p).unwrap()).unwrap());
            }
        }
    }
    (files, fixture)
}

fn compile(name: &str, mut files: Vec<ArchiveFile>, fixture: &Fixture) -> Result<CompiledPolicy, String> {
    if let Some(data) = &fixture.data {
        files.push(ArchiveFile {
            path: "data.json".into(),
            bytes: data.get().as_bytes().to_vec(),
        });
    }
    files.push(ArchiveFile {
        path: ".manifest".into(),
        bytes: format!(r#"{{"revision":"{name}","rego_version":1}}"#).into_bytes(),
    });
    let bytes = archive::write(&files).map_err(|e| e.to_string())?;
    let parsed =
        bundle::parse(&bytes, &archive::Limits::default(), SignaturePolicy::UNCHECKED).map_err(|e| e.to_string())?;
    CompiledPolicy::compile(&parsed, Duration::from_secs(5)).map_err(|e| e.to_string())
}

fn evaluate(policy: &CompiledPolicy, category: &str, rule: &str, input: Option<&RawValue>) -> Answer {
    let path = if rule == "*" {
        format!("compat/{category}")
    } else {
        format!("compat/{category}/{rule}")
    };
    let path = match DataPath::parse(&path) {
        Ok(p) => p,
        Err(e) => return Answer::Error(e.to_string()),
    };
    let input = match input {
        None => regorus::Value::Undefined,
        Some(raw) => regorus::Value::from_json_str(raw.get()).expect("corpus input is JSON"),
    };
    let mut captured = Captured {
        now_ns: warden::clock::Clock::system().now_ns(),
        calls: BTreeMap::new(),
    };
    match policy.evaluate(&path, input, &mut captured) {
        Ok(regorus::Value::Undefined) => Answer::Undefined,
        // What the HTTP API answers is this value serialized.
        Ok(v) => match serde_json::to_string(&v) {
            Ok(text) => Answer::Value(exact(&text)),
            Err(e) => Answer::Error(format!("the answer cannot be written as JSON: {e}")),
        },
        Err(e) => Answer::Error(e.to_string()),
    }
}

fn opa_answer(case: &Case) -> Answer {
    match case.outcome.as_str() {
        "value" => Answer::Value(exact(case.value.get())),
        "undefined" => Answer::Undefined,
        "error" => Answer::Error(format!(
            "{}: {}",
            case.code.as_deref().unwrap_or("error"),
            case.message.as_deref().unwrap_or_default()
        )),
        other => panic!("unknown outcome {other:?}"),
    }
}

/// Same outcome: equal values, both undefined, or both errors (messages
/// are each engine's own).
fn same(a: &Answer, b: &Answer) -> bool {
    match (a, b) {
        (Answer::Error(_), Answer::Error(_)) => true,
        _ => a == b,
    }
}

#[test]
fn warden_answers_as_opa_does() {
    let mut expected_files: Vec<PathBuf> = std::fs::read_dir(corpus().join("expected"))
        .expect("tests/opa/expected exists")
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|x| x == "json"))
        .collect();
    expected_files.sort();
    assert!(!expected_files.is_empty(), "the corpus has no recorded answers");

    let known_path = corpus().join("known_differences.json");
    let known: BTreeMap<String, String> = serde_json::from_slice(&std::fs::read(&known_path).unwrap()).unwrap();

    let mut differences: BTreeMap<String, String> = BTreeMap::new();
    let mut compared = 0usize;
    for file in &expected_files {
        let expected: Expected =
            serde_json::from_slice(&std::fs::read(file).unwrap()).unwrap_or_else(|e| panic!("{}: {e}", file.display()));
        let category = expected.category.clone();
        let (files, fixture) = load_category(&category);
        let compiled = compile(&category, files, &fixture);
        match (expected.compile.as_str(), compiled) {
            ("error", Err(_)) => {
                compared += 1;
                continue;
            }
            ("error", Ok(_)) => {
                differences.insert(
                    format!("{category}/<compile>"),
                    format!(
                        "OPA refuses the module ({}), Warden compiles it",
                        shorten(expected.compile_error.as_deref().unwrap_or_default())
                    ),
                );
                continue;
            }
            (_, Err(e)) => {
                differences.insert(
                    format!("{category}/<compile>"),
                    format!("OPA compiles the module, Warden refuses it: {}", shorten(&e)),
                );
                continue;
            }
            (_, Ok(policy)) => {
                for case in &expected.cases {
                    let input = match case.input.as_str() {
                        // "none" is no input at all, even where the map names it.
                        "none" => None,
                        name => Some(
                            fixture
                                .inputs
                                .as_ref()
                                .and_then(|i| i.get(name))
                                .unwrap_or_else(|| panic!("{category}: no input named {name}"))
                                .as_ref(),
                        ),
                    };
                    let ours = evaluate(&policy, &category, &case.rule, input);
                    let theirs = opa_answer(case);
                    compared += 1;
                    if !same(&ours, &theirs) {
                        differences.insert(
                            format!("{category}/{}/{}", case.rule, case.input),
                            format!("OPA: {theirs} | Warden: {ours}"),
                        );
                    }
                }
            }
        }
    }

    if std::env::var("WARDEN_OPA_BLESS").is_ok_and(|v| v == "1") {
        // A new difference is described by the two answers until someone
        // writes why.
        let blessed: BTreeMap<&String, String> = differences
            .iter()
            .map(|(k, v)| (k, known.get(k).cloned().unwrap_or_else(|| v.clone())))
            .collect();
        std::fs::write(&known_path, serde_json::to_string_pretty(&blessed).unwrap() + "\n").unwrap();
    }

    let new: Vec<String> = differences
        .iter()
        .filter(|(k, _)| !known.contains_key(*k))
        .map(|(k, v)| format!("  {k}: {v}"))
        .collect();
    let gone: BTreeSet<&String> = known.keys().filter(|k| !differences.contains_key(*k)).collect();
    println!(
        "{compared} answers compared with OPA's, {} differ ({} known)",
        differences.len(),
        differences.len() - new.len()
    );
    assert!(
        new.is_empty() && gone.is_empty(),
        "Warden answers otherwise than OPA in {} cases not listed in tests/opa/known_differences.json:\n{}\n\
         and {} listed differences no longer differ (remove them): {gone:?}",
        new.len(),
        new.join("\n"),
        gone.len()
    );
}

/// A JSON text whose numbers are compared as exact decimals: each number
/// becomes the string `\u{0}#<canonical decimal>`, so `1`, `1.0` and `1e0` are
/// one value and `0.30000000000000004` is not `0.3`.
fn exact(text: &str) -> serde_json::Value {
    let mut out = String::with_capacity(text.len());
    let bytes = text.as_bytes();
    let mut i = 0;
    while i < bytes.len() {
        let c = bytes[i];
        if c == b'"' {
            let start = i;
            i += 1;
            while bytes[i] != b'"' {
                if bytes[i] == b'\\' {
                    i += 1;
                }
                i += 1;
            }
            i += 1;
            out.push_str(&text[start..i]);
        } else if c == b'-' || c.is_ascii_digit() {
            let start = i;
            while i < bytes.len() && matches!(bytes[i], b'-' | b'+' | b'.' | b'e' | b'E' | b'0'..=b'9') {
                i += 1;
            }
            out.push_str(&format!("\"\\u0000#{}\"", canonical_number(&text[start..i])));
        } else {
            out.push(c as char);
            i += 1;
        }
    }
    // Only ASCII outside strings was pushed char by char; strings were
    // copied as slices, so the text is the original with numbers replaced.
    serde_json::from_str(&out).unwrap_or_else(|e| panic!("not JSON ({e}): {text}"))
}

/// `-12.50e3` → `-1.25e4`; zero of any form → `0`.
fn canonical_number(n: &str) -> String {
    let (negative, rest) = match n.strip_prefix('-') {
        Some(r) => (true, r),
        None => (false, n),
    };
    let (mantissa, exponent) = match rest.find(['e', 'E']) {
        Some(i) => (&rest[..i], rest[i + 1..].parse::<i64>().expect("exponent")),
        None => (rest, 0),
    };
    let (int, frac) = mantissa.split_once('.').unwrap_or((mantissa, ""));
    let digits = format!("{int}{frac}");
    let mut exp = exponent + int.len() as i64 - 1;
    let trimmed_start = digits.trim_start_matches('0');
    exp -= (digits.len() - trimmed_start.len()) as i64;
    let significant = trimmed_start.trim_end_matches('0');
    if significant.is_empty() {
        return "0".to_string();
    }
    let sign = if negative { "-" } else { "" };
    let (head, tail) = significant.split_at(1);
    if tail.is_empty() {
        format!("{sign}{head}e{exp}")
    } else {
        format!("{sign}{head}.{tail}e{exp}")
    }
}

/// The value back as text, numbers in their canonical form.
fn exact_text(v: &serde_json::Value) -> String {
    use serde_json::Value as J;
    match v {
        J::String(s) => match s.strip_prefix("\u{0}#") {
            Some(n) => n.strip_suffix("e0").unwrap_or(n).to_string(),
            None => serde_json::to_string(s).unwrap_or_default(),
        },
        J::Array(items) => format!("[{}]", items.iter().map(exact_text).collect::<Vec<_>>().join(",")),
        J::Object(members) => format!(
            "{{{}}}",
            members
                .iter()
                .map(|(k, v)| format!("{}:{}", serde_json::to_string(k).unwrap_or_default(), exact_text(v)))
                .collect::<Vec<_>>()
                .join(",")
        ),
        other => other.to_string(),
    }
}

#[test]
fn numbers_compare_as_exact_decimals() {
    assert_eq!(canonical_number("1"), "1e0");
    assert_eq!(canonical_number("1.0"), "1e0");
    assert_eq!(canonical_number("10"), "1e1");
    assert_eq!(canonical_number("-12.50e3"), "-1.25e4");
    assert_eq!(canonical_number("0.00"), "0");
    assert_eq!(canonical_number("-0"), "0");
    assert_eq!(canonical_number("0.001"), "1e-3");
    assert_eq!(
        canonical_number("123456789012345678901230"),
        "1.2345678901234567890123e23"
    );
    assert_ne!(exact("0.30000000000000004"), exact("0.3"));
    assert_eq!(exact(r#"{"a": [1, 2.0, "3"]}"#), exact(r#"{"a":[1.0,2,"3"]}"#));
    assert_ne!(exact(r#"["1"]"#), exact("[1]"));
    assert_eq!(
        exact_text(&exact(r#"{"a": [1, 2.50, "x"]}"#)),
        r#"{"a":[1,2.5e0,"x"]}"#.replace("e0", "")
    );
}

/// The upload check knows every OPA builtin the corpus catalogues.
#[test]
fn the_builtin_list_of_the_upload_check_is_opa_s() {
    #[derive(Deserialize)]
    struct Builtin {
        name: String,
    }
    let catalogue: Vec<Builtin> =
        serde_json::from_slice(&std::fs::read(corpus().join("builtins.json")).unwrap()).unwrap();
    let names: Vec<&str> = catalogue.iter().map(|b| b.name.as_str()).collect();
    assert_eq!(names, warden::policy::compat::OPA_BUILTINS);
}

/// The table of the kinds of literal each builtin argument takes (asked of
/// OPA by `tests/opa/arg_kinds.py`) names OPA builtins only, each with its
/// number of arguments, and only scalar kinds.
#[test]
fn the_literal_kinds_table_follows_the_builtin_list() {
    let catalogue: Vec<CatalogueEntry> =
        serde_json::from_slice(&std::fs::read(corpus().join("builtins.json")).unwrap()).unwrap();
    let arity: BTreeMap<&str, usize> = catalogue
        .iter()
        .filter(|b| b.excluded.is_none())
        .map(|b| (b.name.as_str(), b.arity))
        .collect();
    let table_path = corpus().join("../../src/policy/builtin_arg_kinds.json");
    let table: BTreeMap<String, Vec<Vec<String>>> =
        serde_json::from_slice(&std::fs::read(&table_path).unwrap()).unwrap();
    assert!(table.len() > 100, "the table covers the builtins: {}", table.len());
    for (name, args) in &table {
        assert_eq!(arity.get(name.as_str()), Some(&args.len()), "{name}");
        for kinds in args {
            assert!(
                kinds
                    .iter()
                    .all(|k| ["null", "boolean", "number", "string"].contains(&k.as_str())),
                "{name}: {kinds:?}"
            );
        }
    }
    assert_eq!(table["count"], vec![vec!["string".to_string()]]);
}

/// An entry of tests/opa/builtins.json.
#[derive(Deserialize)]
struct CatalogueEntry {
    name: String,
    arity: usize,
    #[serde(default)]
    excluded: Option<String>,
}

/// The declared argument types (asked of OPA by tests/opa/signatures.py)
/// name builtins of the catalogue, one type per argument.
#[test]
fn the_declared_types_table_follows_the_builtin_list() {
    #[derive(Deserialize)]
    struct Declaration {
        args: Vec<String>,
        result: String,
    }
    let catalogue: Vec<CatalogueEntry> =
        serde_json::from_slice(&std::fs::read(corpus().join("builtins.json")).unwrap()).unwrap();
    let arity: BTreeMap<&str, usize> = catalogue.iter().map(|b| (b.name.as_str(), b.arity)).collect();
    let table_path = corpus().join("../../src/policy/builtin_signatures.json");
    let table: BTreeMap<String, Declaration> = serde_json::from_slice(&std::fs::read(&table_path).unwrap()).unwrap();
    assert!(table.len() > 100, "the table covers the builtins: {}", table.len());
    for (name, d) in &table {
        assert_eq!(arity.get(name.as_str()), Some(&d.args.len()), "{name}");
        assert!(!d.result.is_empty(), "{name}");
    }
    assert_eq!(table["sum"].args, vec!["any<array[number], set[number]>".to_string()]);
    assert_eq!(table["count"].result, "number");
}
