use regorus::Value;

fn eval(module: &str, path: &str) -> anyhow::Result<Value> {
    let mut engine = regorus::Engine::new();
    engine.set_strict_builtin_errors(true);
    super::install(&mut engine)?;
    engine.add_policy("t.rego".to_string(), module.to_string())?;
    engine.eval_rule(path.to_string())
}

/// OPA with `--strict-builtin-errors`, as Warden evaluates: a builtin error
/// fails the evaluation, even under `not`.
#[test]
fn a_builtin_error_fails_the_evaluation() {
    let e = eval("package t\nx := io.jwt.decode(\"a\")\n", "data.t.x").unwrap_err();
    assert!(e.to_string().contains("io.jwt.decode"), "{e}");
    assert!(eval("package t\ny := 1 if { not io.jwt.decode(\"a\") }\n", "data.t.y").is_err());
    assert_eq!(
        eval("package t\nx := crypto.sha256(\"abc\")\n", "data.t.x").unwrap(),
        Value::from("ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad")
    );
}

mod vectors;

/// Restores the integers the vectors carry as `#num:<digits>` text.
fn unmark(v: Value) -> Value {
    match v {
        Value::String(s) if s.starts_with("#num:") => Value::from_numeric_string(&s["#num:".len()..]).unwrap(),
        Value::Array(items) => Value::from(items.iter().cloned().map(unmark).collect::<Vec<_>>()),
        Value::Object(fields) => Value::from(
            fields
                .iter()
                .map(|(k, v)| (k.clone(), unmark(v.clone())))
                .collect::<std::collections::BTreeMap<_, _>>(),
        ),
        other => other,
    }
}

/// Vectors where Warden knowingly answers differently from OPA.
const KNOWN_DIFFERENCES: &[&str] = &[
    // regorus reads JSON integers beyond 64 bits as floats: OPA returns the
    // claim `exp: 100000000000000000000000` exactly, Warden as 1e23.
    "dv_exp_big",
];

/// Evaluates each vector's expression with the fixtures loaded and compares
/// the answer with OPA's.
#[test]
fn answers_match_opa_on_the_vectors() {
    let fixtures = Value::from_json_str(vectors::FIXTURES).unwrap();
    let mut failures = Vec::new();
    for (name, expr, expected) in vectors::CASES {
        if KNOWN_DIFFERENCES.contains(name) {
            continue;
        }
        let mut engine = regorus::Engine::new();
        engine.set_strict_builtin_errors(true);
        super::install(&mut engine).unwrap();
        engine.add_data(fixtures.clone()).unwrap();
        let module = format!("package t\n{}\nx := {expr}\n", vectors::HELPERS);
        engine.add_policy("t.rego".to_string(), module).unwrap();
        let got = engine.eval_rule("data.t.x".to_string());
        let want = match expected {
            Some(json) => unmark(Value::from_json_str(json).unwrap()),
            None => Value::Undefined,
        };
        match got {
            Ok(v) if v == want => {}
            // `None`: OPA answers undefined, or (strict) a builtin error;
            // the corpus (`tests/opa/cases/crypto.rego`, `tokens.rego`)
            // records which.
            Err(_) if expected.is_none() => {}
            Ok(v) => failures.push(format!(
                "{name}: got {}, OPA says {}",
                super::gojson::to_go_json(&v).unwrap_or_else(|_| format!("{v:?}")),
                expected.unwrap_or("undefined")
            )),
            Err(e) => failures.push(format!("{name}: error {e}")),
        }
    }
    assert!(
        failures.is_empty(),
        "{} mismatches:\n{}",
        failures.len(),
        failures.join("\n")
    );
}

/// Malformed arguments of every shape reach every builtin without a panic.
#[test]
fn malformed_arguments_never_panic() {
    let fixtures = Value::from_json_str(vectors::FIXTURES).unwrap();
    let fixture = |k: &str| fixtures["fixtures"][k].clone();
    let mut samples = vec![
        Value::from(""),
        Value::from("."),
        Value::from(".."),
        Value::from("a.b.c"),
        Value::from("e30.e30.e30"),
        Value::from("eyJhbGciOiJIUzI1NiIsImN0eSI6IkpXVCJ9.ZTMw.AA"),
        Value::from("-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n"),
        Value::from("-----BEGIN PUBLIC KEY-----\n-----END PUBLIC KEY-----"),
        Value::from("-----BEGIN "),
        Value::from("TUlJ"),
        Value::from(r#"{"keys":[{"kty":"RSA","n":"AQAB","e":"AQAB"}]}"#),
        Value::from(r#"{"kty":"EC","crv":"P-256","x":"AA","y":"AA","d":"AA"}"#),
        Value::from(r#"{"kty":"oct","k":""}"#),
        Value::from(r#"{"keys":5}"#),
        Value::from(r#"{"alg":"HS256"}"#),
        Value::from("é€雪\u{0}"),
        Value::from(1i64),
        Value::from(-1.5f64),
        Value::Null,
        Value::from(true),
        Value::new_array(),
        Value::new_object(),
        Value::from_json_str(r#"{"secret":"x","cert":"y","time":1e300}"#).unwrap(),
        Value::from_json_str(r#"{"cert":"{\"keys\":[]}"}"#).unwrap(),
        Value::from_json_str(r#"{"alg":"RS256","typ":7}"#).unwrap(),
        Value::from_json_str(r#"{"kty":"RSA","n":"AQAB","e":"AQAB","d":"AQAB"}"#).unwrap(),
        Value::from_json_str(r#"{"KeyUsages":[1,"x"],"CurrentTime":"x"}"#).unwrap(),
    ];
    for k in ["leaf_cert", "rsa_pub", "tok_rs256", "tok_es512", "rsa_jwk_priv", "csr"] {
        samples.push(fixture(k));
    }
    let all = super::crypto::BUILTINS
        .iter()
        .chain(super::jwt::BUILTINS)
        .chain(super::x509::BUILTINS);
    for (name, nargs, f) in all {
        for a in &samples {
            for b in &samples {
                let args: Vec<Value> = match nargs {
                    1 => vec![a.clone()],
                    2 => vec![a.clone(), b.clone()],
                    _ => vec![a.clone(), b.clone(), a.clone()],
                };
                let r = std::panic::catch_unwind(|| f(&args));
                assert!(r.is_ok(), "{name} panicked on {args:?}");
                if *nargs == 1 {
                    break;
                }
            }
        }
    }
}

/// Keys beyond the size bound are refused before any work on them.
#[test]
fn oversized_rsa_keys_are_refused() {
    let n = super::b64url_encode(&vec![0xffu8; 16384 / 8 + 1]);
    let jwk = format!(r#"{{"kty":"RSA","n":"{n}","e":"AQAB"}}"#);
    assert!(super::keys::verification_keys(&jwk).is_err());
    let ok = super::b64url_encode(&vec![0xffu8; 4096 / 8]);
    let jwk = format!(r#"{{"kty":"RSA","n":"{ok}","e":"AQAB"}}"#);
    assert!(super::keys::verification_keys(&jwk).is_ok());
}
