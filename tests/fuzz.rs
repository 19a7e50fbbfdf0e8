//! Fuzz targets, run as property tests: every parser that reads what a
//! caller or a file hands Warden is fed arbitrary and mutated input. Each
//! must answer (accept or refuse with its error), never panic, never hang,
//! and what it accepts must mean what every other reader says it means.
//!
//! Cases per target: `WARDEN_FUZZ_CASES` (default 2,000, what CI runs: a few seconds); raise
//! it for a longer local run. A failure prints the minimal input found;
//! each one found becomes a named regression case below.

use proptest::prelude::*;
use proptest::test_runner::{Config, TestRunner};
use serde_json::Value;

use warden::evidence::canonical;
use warden::evidence::entry::Entry;
use warden::policy::archive::{self, ArchiveFile, Limits};
use warden::strict_json;

fn runner() -> TestRunner {
    let cases = std::env::var("WARDEN_FUZZ_CASES")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(2_000);
    TestRunner::new(Config {
        cases,
        failure_persistence: None,
        ..Config::default()
    })
}

/// Bytes that look like JSON often enough to reach deep paths.
fn jsonish() -> impl Strategy<Value = Vec<u8>> {
    let token = prop_oneof![
        Just(b"{".to_vec()),
        Just(b"}".to_vec()),
        Just(b"[".to_vec()),
        Just(b"]".to_vec()),
        Just(b",".to_vec()),
        Just(b":".to_vec()),
        Just(b"\"a\"".to_vec()),
        Just(b"\"\\u00e9\"".to_vec()),
        Just(b"\"\\ud83d\\ude00\"".to_vec()),
        Just(b"\"\\ud800\"".to_vec()),
        Just(b"\"$serde_json::private::Number\"".to_vec()),
        Just(b"18446744073709551616".to_vec()),
        Just(b"-9223372036854775808".to_vec()),
        Just(b"1e400".to_vec()),
        Just(b"-0.5e-3".to_vec()),
        Just(b"true".to_vec()),
        Just(b"null".to_vec()),
        Just(b" ".to_vec()),
        prop::collection::vec(any::<u8>(), 1..4),
    ];
    prop::collection::vec(token, 0..40).prop_map(|t| t.concat())
}

/// Arbitrary JSON values (integers within 64 bits, finite doubles).
fn json_value() -> impl Strategy<Value = Value> {
    let leaf = prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::Bool),
        any::<i64>().prop_map(Value::from),
        any::<u64>().prop_map(Value::from),
        any::<f64>()
            .prop_filter("finite", |f| f.is_finite())
            .prop_map(Value::from),
        "\\PC{0,6}".prop_map(Value::String),
    ];
    leaf.prop_recursive(4, 32, 5, |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..5).prop_map(Value::Array),
            prop::collection::btree_map("\\PC{0,4}", inner, 0..5).prop_map(|m| Value::Object(m.into_iter().collect())),
        ]
    })
}

/// The gate every request body passes agrees with serde_json: what it
/// accepts serde_json reads, and regorus reads to the same value; a syntax
/// error for serde_json is never accepted.
#[test]
fn untrusted_json_and_decision_inputs() {
    runner()
        .run(&jsonish(), |bytes| {
            let gate = strict_json::check(&bytes, 16);
            let serde = serde_json::from_slice::<Value>(&bytes);
            match gate {
                Ok(()) => {
                    let v = serde.map_err(|e| TestCaseError::fail(format!("accepted, serde_json says {e}")))?;
                    let text = std::str::from_utf8(&bytes).unwrap();
                    let rego = regorus::Value::from_json_str(text)
                        .map_err(|e| TestCaseError::fail(format!("accepted, regorus says {e}")))?;
                    let back: Value = serde_json::from_str(&rego.to_json_str().unwrap()).unwrap();
                    prop_assert_eq!(canonical::to_vec(&back), canonical::to_vec(&v));
                }
                Err(f) if f.kind == strict_json::FaultKind::Syntax => {
                    prop_assert!(serde.is_err(), "refused as syntax, serde_json read it: {}", f);
                }
                Err(_) => {}
            }
            Ok(())
        })
        .unwrap();
}

/// Canonical bytes are canonical, parse back to the same value, and make an
/// entry that reads back; arbitrary bytes never make `is_canonical` or
/// `Entry::from_bytes` panic.
#[test]
fn entries_and_canonical_json() {
    runner()
        .run(&(json_value(), jsonish()), |(value, noise)| {
            let bytes = canonical::to_vec(&value);
            prop_assert!(canonical::is_canonical(&bytes));
            let back: Value = serde_json::from_slice(&bytes).unwrap();
            prop_assert_eq!(canonical::to_vec(&back), bytes.clone());
            let entry = Entry {
                index: 7,
                ts: 1_795_308_111_311,
                kind: "decision".into(),
                actor: "token:tok_01 (ci)".into(),
                payload: value,
                prev: warden::evidence::entry::GENESIS_PREV,
            };
            let encoded = entry.to_bytes();
            let read = Entry::from_bytes(&encoded).map_err(|e| TestCaseError::fail(e.to_string()))?;
            prop_assert_eq!(read.hash(), entry.hash());
            let _ = canonical::is_canonical(&noise);
            let _ = Entry::from_bytes(&noise);
            // A flipped byte is either refused or a different entry.
            if !encoded.is_empty() {
                let mut flipped = encoded.clone();
                let at = noise.len() % flipped.len();
                flipped[at] ^= 0x20;
                if let Ok(e) = Entry::from_bytes(&flipped) {
                    prop_assert_ne!(e.hash(), entry.hash());
                }
            }
            Ok(())
        })
        .unwrap();
}

fn small_limits() -> Limits {
    Limits {
        max_compressed_bytes: 1 << 20,
        max_uncompressed_bytes: 4 << 20,
        max_ratio: 200,
        max_files: 64,
        max_file_bytes: 1 << 20,
    }
}

fn sample_bundle() -> Vec<u8> {
    archive::write(&[
        ArchiveFile {
            path: ".manifest".into(),
            bytes: br#"{"revision": "1", "roots": ["t"]}"#.to_vec(),
        },
        ArchiveFile {
            path: "t/p.rego".into(),
            bytes: b"package t\n\nallow if input.ok\n".to_vec(),
        },
        ArchiveFile {
            path: "t/data.json".into(),
            bytes: br#"{"limit": 3}"#.to_vec(),
        },
    ])
    .unwrap()
}

/// The bundle archive reader and the bundle parser, on arbitrary bytes and
/// on a real bundle with bytes overwritten, cut short or appended to: an
/// answer every time, and every refusal carries its code.
#[test]
fn bundle_archives() {
    let good = sample_bundle();
    let limits = small_limits();
    let mutation = (any::<u8>(), 0usize..4096, 0usize..8, any::<Vec<u8>>());
    runner()
        .run(&(mutation, any::<Vec<u8>>()), |((kind, at, count, extra), noise)| {
            if let Err(e) = archive::read(&noise, &limits) {
                prop_assert!(!e.code().is_empty());
            }
            let mut bytes = good.clone();
            let at = at % bytes.len();
            match kind % 3 {
                0 => {
                    for (i, b) in extra.iter().take(count.max(1)).enumerate() {
                        if let Some(slot) = bytes.get_mut(at + i) {
                            *slot = *b;
                        }
                    }
                }
                1 => bytes.truncate(at),
                _ => bytes.extend_from_slice(&extra),
            }
            match archive::read(&bytes, &limits) {
                Ok(files) => {
                    for f in &files {
                        prop_assert!(!f.path.starts_with('/') && !f.path.split('/').any(|s| s == ".."));
                    }
                }
                Err(e) => prop_assert!(!e.code().is_empty()),
            }
            let policy = warden::policy::bundle::SignaturePolicy {
                keys: &[],
                required: false,
                verify: true,
            };
            let parsed = warden::policy::bundle::parse(&bytes, &limits, policy);
            if let Err(e) = parsed {
                prop_assert!(!e.code().is_empty());
            }
            Ok(())
        })
        .unwrap();
}

/// `.signatures.json`: arbitrary documents, and real JWT-shaped ones with
/// arbitrary parts, are refused with a code, never accepted without a key
/// that signed them.
#[test]
fn bundle_signatures() {
    let files = vec![(".manifest".to_string(), br#"{"revision":"1"}"#.to_vec())];
    let part = "[A-Za-z0-9_-]{0,40}";
    let doc = prop_oneof![
        jsonish(),
        (part, part, part).prop_map(|(h, p, s)| format!(r#"{{"signatures": ["{h}.{p}.{s}"]}}"#).into_bytes()),
        json_value().prop_map(|v| {
            use base64::Engine as _;
            let b64 = |v: &Value| base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(v.to_string());
            let header = serde_json::json!({"alg": "EdDSA", "kid": "k"});
            format!(r#"{{"signatures": ["{}.{}.AAAA"]}}"#, b64(&header), b64(&v)).into_bytes()
        }),
    ];
    runner()
        .run(&doc, |bytes| {
            match warden::policy::signature::verify(&bytes, &files, &[]) {
                Ok(_) => prop_assert!(false, "verified without any key"),
                Err(e) => prop_assert!(!e.code().is_empty()),
            }
            Ok(())
        })
        .unwrap();
}

const DEFINITION: &str = r#"{
  "apiVersion": "warden.dev/v1",
  "kind": "Workflow",
  "metadata": {"name": "claims"},
  "spec": {
    "startAt": "Check",
    "states": {
      "Check": {"type": "Choice", "choices": [{"variable": "$.amount", "numericGreaterThan": 1000, "next": "Review"}], "default": "Pay"},
      "Review": {"type": "HumanReview", "prompt": "large claim", "next": "Pay"},
      "Pay": {"type": "Task", "agent": "payments", "retry": [{"errorEquals": ["States.ALL"], "maxAttempts": 2}], "end": true}
    }
  }
}"#;

/// Workflow definitions (JSON and YAML), mutated: parsed or refused with
/// every fault's code, never a panic.
#[test]
fn workflow_definitions() {
    let base = DEFINITION.as_bytes().to_vec();
    runner()
        .run(&(0usize..2048, any::<Vec<u8>>(), jsonish()), |(at, bytes, noise)| {
            let mut doc = base.clone();
            let at = at % doc.len();
            doc.splice(at..(at + bytes.len().min(8)).min(doc.len()), bytes.iter().copied());
            for candidate in [&doc, &noise] {
                if let Err(faults) = warden::workflow::parse(candidate) {
                    prop_assert!(!faults.is_empty());
                    prop_assert!(faults.iter().all(|f| !f.code.is_empty()));
                }
            }
            Ok(())
        })
        .unwrap();
}

/// Audit NDJSON: arbitrary lines are accepted as events or refused with a
/// code; accepted events are exactly the lines' values.
#[test]
fn audit_ndjson() {
    let line = prop_oneof![jsonish(), json_value().prop_map(|v| v.to_string().into_bytes())];
    runner()
        .run(&prop::collection::vec(line, 0..6), |lines| {
            let body = lines.join(&b'\n');
            match warden::http::audit::events_of(&body, true, 16) {
                Ok(events) => {
                    let non_blank = lines.iter().filter(|l| !l.iter().all(u8::is_ascii_whitespace)).count();
                    prop_assert!(events.len() <= non_blank.max(1));
                }
                Err(p) => prop_assert!(!p.code.is_empty()),
            }
            Ok(())
        })
        .unwrap();
}

/// Inputs found by these targets, kept as regressions.
#[test]
fn regressions() {
    // The number marker, anywhere: refused, never expanded.
    let marker = br#"{"a": [{"$serde_json::private::Number": "1e200000000"}]}"#;
    assert_eq!(
        strict_json::check(marker, 16).unwrap_err().kind,
        strict_json::FaultKind::ReservedMember
    );
}
