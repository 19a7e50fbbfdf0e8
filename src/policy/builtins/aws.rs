//! `providers.aws.sign_req` as OPA answers it: AWS Signature Version 4 of a
//! request object (the shape `http.send` takes), with the headers OPA adds
//! (`host`, `x-amz-date`, `x-amz-content-sha256` for S3 and Glacier,
//! `x-amz-security-token`) and its `Authorization` header.
//!
//! OPA signs its own way, and Warden signs the same way: the request's own
//! headers are signed under their lower-cased names with their values as
//! given, overriding the values OPA adds to the request (which keep theirs);
//! the path is Go's escaped path, the query is signed as written, the body
//! is `raw_body` when present (a non-string one is empty), else `body` in
//! Go's JSON. Where two request headers have the same lower-cased name OPA
//! signs one of them at random; Warden signs the last in key order.

use std::collections::{BTreeMap, BTreeSet};

use hmac::{Hmac, Mac};
use regorus::Value;
use regorus::value::Object;
use sha2::{Digest, Sha256};

use super::{Builtin, type_name};

pub(super) const BUILTINS: &[(&str, u8, Builtin)] = &[("providers.aws.sign_req", 3, sign_req)];

/// 2^53: integers beyond it have no exact `f64`.
const F64_EXACT: f64 = 9_007_199_254_740_992.0;

const NAME: &str = "providers.aws.sign_req";

/// The keys a request object may have: those of `http.send`.
const REQUEST_KEYS: &[&str] = &[
    "method",
    "url",
    "body",
    "enable_redirect",
    "force_json_decode",
    "force_yaml_decode",
    "headers",
    "raw_body",
    "tls_use_system_certs",
    "tls_ca_cert",
    "tls_ca_cert_file",
    "tls_ca_cert_env_variable",
    "tls_client_cert",
    "tls_client_cert_file",
    "tls_client_cert_env_variable",
    "tls_client_key",
    "tls_client_key_file",
    "tls_client_key_env_variable",
    "tls_insecure_skip_verify",
    "tls_server_name",
    "timeout",
    "cache",
    "force_cache",
    "force_cache_duration_seconds",
    "raise_error",
    "caching_mode",
    "max_retry_attempts",
    "cache_ignored_headers",
];

const CONFIG_KEYS: &[&str] = &["aws_access_key", "aws_secret_access_key", "aws_service", "aws_region"];

fn type_error(msg: String) -> anyhow::Error {
    anyhow::anyhow!("{NAME}: {msg}")
}

/// An OPA set of names as its message prints it: `{"a", "b"}`.
fn name_set(names: &BTreeSet<&str>) -> String {
    let items: Vec<String> = names.iter().map(|n| format!("{n:?}")).collect();
    format!("{{{}}}", items.join(", "))
}

fn object(v: &Value, position: usize) -> anyhow::Result<&Object> {
    match v {
        Value::Object(o) => Ok(o),
        other => Err(type_error(format!(
            "operand {position} must be object but got {}",
            type_name(other)
        ))),
    }
}

fn get<'a>(o: &'a Object, key: &str) -> Option<&'a Value> {
    o.get(&Value::from(key))
}

/// The required string fields of `o`, or OPA's error naming the missing
/// ones (first) or the ones that are not strings.
fn required<'a>(o: &'a Object, keys: &[&'static str], position: usize, what: &str) -> anyhow::Result<Vec<&'a str>> {
    let missing: BTreeSet<&str> = keys.iter().copied().filter(|k| get(o, k).is_none()).collect();
    if !missing.is_empty() {
        return Err(type_error(format!(
            "operand {position} missing required {what} parameters(s): {}",
            name_set(&missing)
        )));
    }
    let mut out = Vec::with_capacity(keys.len());
    let mut invalid = BTreeSet::new();
    for k in keys {
        match get(o, k) {
            Some(Value::String(s)) => out.push(s.as_ref()),
            _ => {
                invalid.insert(*k);
            }
        }
    }
    if !invalid.is_empty() {
        return Err(type_error(format!(
            "operand {position} invalid values for required {what} parameters(s): {}",
            name_set(&invalid)
        )));
    }
    Ok(out)
}

/// Go's `strings.ToLower` (one character each; U+0130 becomes `i`).
fn go_lower(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        if c == '\u{130}' {
            out.push('i');
        } else {
            out.extend(c.to_lowercase());
        }
    }
    out
}

fn hmac_sha256(key: &[u8], msg: &[u8]) -> anyhow::Result<Vec<u8>> {
    let mut mac = <Hmac<Sha256> as Mac>::new_from_slice(key).map_err(|e| anyhow::anyhow!("{NAME}: {e}"))?;
    mac.update(msg);
    Ok(mac.finalize().into_bytes().to_vec())
}

fn sha256_hex(data: &[u8]) -> String {
    hex::encode(Sha256::digest(data))
}

/// The key of a header as a string (a non-string key as its JSON text).
fn key_text(k: &Value) -> String {
    match k {
        Value::String(s) => s.to_string(),
        other => other.to_json_str().unwrap_or_default(),
    }
}

/// `providers.aws.sign_req(request, aws_config, time_ns)` as OPA answers.
fn sign_req(args: &[Value]) -> anyhow::Result<Value> {
    let request = object(&args[0], 1)?;
    let config = object(&args[1], 2)?;
    let creds = required(config, CONFIG_KEYS, 2, "AWS config")?;
    let (access_key, secret_key, service, region) = (creds[0], creds[1], creds[2], creds[3]);

    let ns = match &args[2] {
        // OPA reads the number's text as an integer, so `1.5` and `1.7e18`
        // are refused. A float here is told from an integer by its size:
        // beyond 2^53 only a float has an `f64` value.
        Value::Number(n) if !n.is_integer() || n.as_f64().is_some_and(|f| f.abs() > F64_EXACT) => None,
        Value::Number(n) => n.as_i64(),
        other => {
            return Err(type_error(format!(
                "operand 1 must be number but got {}",
                type_name(other)
            )));
        }
    }
    .ok_or_else(|| type_error("operand 3 could not convert time_ns value into a unix timestamp".into()))?;

    let fields = required(request, &["method", "url"], 1, "request")?;
    let (method, url_text) = (fields[0], fields[1]);
    let unknown: BTreeSet<&str> = request
        .keys()
        .filter_map(|k| match k {
            Value::String(s) if REQUEST_KEYS.contains(&s.as_ref()) => None,
            Value::String(s) => Some(s.as_ref()),
            _ => Some("<non-string key>"),
        })
        .collect();
    if !unknown.is_empty() {
        return Err(type_error(format!(
            "operand 1 invalid request parameters(s): {}",
            name_set(&unknown)
        )));
    }

    // The request's headers, non-string values as empty strings.
    let mut headers: BTreeMap<Value, Value> = BTreeMap::new();
    if let Some(h) = get(request, "headers") {
        for (k, v) in object(h, 0)?.iter() {
            let v = match v {
                Value::String(_) => v.clone(),
                _ => Value::from(""),
            };
            headers.insert(k.clone(), v);
        }
    }

    let url = super::uri::go_parse(url_text).map_err(|e| anyhow::anyhow!("{NAME}: {e}"))?;

    let disable_payload_signing = match get(config, "disable_payload_signing") {
        None => false,
        Some(Value::Bool(b)) => *b,
        Some(_) => {
            return Err(type_error(
                "operand 2 invalid value for 'disable_payload_signing' in AWS config".into(),
            ));
        }
    };
    let session_token = match get(config, "aws_session_token") {
        Some(Value::String(s)) if !s.is_empty() => Some(s.to_string()),
        _ => None,
    };

    let body: Vec<u8> = match (get(request, "raw_body"), get(request, "body")) {
        (Some(Value::String(s)), _) => s.as_bytes().to_vec(),
        (Some(_), _) => Vec::new(),
        (None, Some(b)) => super::gojson::to_go_json(b)?.into_bytes(),
        (None, None) => Vec::new(),
    };
    let payload = if disable_payload_signing {
        "UNSIGNED-PAYLOAD".to_string()
    } else {
        sha256_hex(&body)
    };

    let time = chrono::DateTime::from_timestamp_nanos(ns);
    let date = time.format("%Y%m%d").to_string();
    let stamp = time.format("%Y%m%dT%H%M%SZ").to_string();

    let mut added: BTreeMap<String, String> = BTreeMap::new();
    added.insert("host".into(), super::uri::go_lossy(&url.host));
    added.insert("x-amz-date".into(), stamp.clone());
    if service == "s3" || service == "glacier" {
        added.insert("x-amz-content-sha256".into(), payload.clone());
    }
    if let Some(token) = &session_token {
        added.insert("x-amz-security-token".into(), token.clone());
    }

    // What is signed: the added headers, overridden by the request's own.
    // The host is signed as decoded, bytes that are not UTF-8 included.
    let mut signed: BTreeMap<String, Vec<u8>> = added.iter().map(|(k, v)| (k.clone(), v.as_bytes().to_vec())).collect();
    signed.insert("host".into(), url.host.clone());
    for (k, v) in &headers {
        let name = go_lower(&key_text(k));
        if name == "authorization" {
            continue;
        }
        let Value::String(v) = v else { continue };
        signed.insert(name, v.as_bytes().to_vec());
    }
    let signed_names = signed.keys().cloned().collect::<Vec<_>>().join(";");

    let mut canonical = format!("{method}\n{}\n{}\n", url.escaped_path(), url.raw_query).into_bytes();
    for (k, v) in &signed {
        canonical.extend_from_slice(k.as_bytes());
        canonical.push(b':');
        canonical.extend_from_slice(v);
        canonical.push(b'\n');
    }
    canonical.push(b'\n');
    canonical.extend_from_slice(signed_names.as_bytes());
    canonical.push(b'\n');
    canonical.extend_from_slice(payload.as_bytes());

    let scope = format!("{date}/{region}/{service}/aws4_request");
    let to_sign = format!("AWS4-HMAC-SHA256\n{stamp}\n{scope}\n{}", sha256_hex(&canonical));
    let mut key = hmac_sha256(format!("AWS4{secret_key}").as_bytes(), date.as_bytes())?;
    for part in [region, service, "aws4_request"] {
        key = hmac_sha256(&key, part.as_bytes())?;
    }
    let signature = hex::encode(hmac_sha256(&key, to_sign.as_bytes())?);
    let authorization =
        format!("AWS4-HMAC-SHA256 Credential={access_key}/{scope},SignedHeaders={signed_names},Signature={signature}");

    for (k, v) in added {
        headers.insert(Value::from(k), Value::from(v));
    }
    headers.insert(Value::from("Authorization"), Value::from(authorization));
    let mut out = request.clone();
    out.insert(Value::from("headers"), Value::from(headers));
    Ok(Value::from(out))
}

#[cfg(test)]
mod tests {
    use super::super::testing::{eval, json};

    const CONFIG: &str =
        r#"{"aws_access_key": "AK", "aws_secret_access_key": "SECRET", "aws_service": "svc", "aws_region": "r1"}"#;

    fn sign(request: &str, config: &str, ns: &str) -> anyhow::Result<regorus::Value> {
        eval(&format!("providers.aws.sign_req({request}, {config}, {ns})"))
    }

    #[test]
    fn s3_requests_carry_the_payload_hash() {
        let config = r#"{"aws_access_key": "AKIDEXAMPLE", "aws_secret_access_key": "SECRET", "aws_service": "s3",
            "aws_region": "us-east-1"}"#;
        let got = sign(
            r#"{"method": "GET", "url": "https://example.amazonaws.com/path?b=2&a=1", "headers": {"x-custom": "v"}}"#,
            config,
            "1700000000000000000",
        )
        .unwrap();
        assert_eq!(
            got,
            json(
                r#"{"headers":{"Authorization":"AWS4-HMAC-SHA256 Credential=AKIDEXAMPLE/20231114/us-east-1/s3/aws4_request,SignedHeaders=host;x-amz-content-sha256;x-amz-date;x-custom,Signature=9dfc7923d2746552cb59af912a04a21d5f6279b67d95d7bb2ee00a38e07c8521",
                "host":"example.amazonaws.com","x-amz-content-sha256":"e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855",
                "x-amz-date":"20231114T221320Z","x-custom":"v"},"method":"GET","url":"https://example.amazonaws.com/path?b=2&a=1"}"#
            )
        );
    }

    #[test]
    fn request_headers_are_signed_over_the_added_ones() {
        // OPA signs `host: other` and `x-amz-date: X` but returns its own.
        let got = sign(
            r#"{"method": "GET", "url": "https://h.example/p", "headers": {"host": "other", "x-amz-date": "X", "Authorization": "old"}}"#,
            CONFIG,
            "1700000000000000000",
        )
        .unwrap();
        assert_eq!(
            got["headers"],
            json(
                r#"{"Authorization":"AWS4-HMAC-SHA256 Credential=AK/20231114/r1/svc/aws4_request,SignedHeaders=host;x-amz-date,Signature=ebaafcc6cdabab5e8f6689b5b23453e9215a73a88aafeb740220b522633f5872",
                "host":"h.example","x-amz-date":"20231114T221320Z"}"#
            )
        );
    }

    #[test]
    fn a_raw_body_that_is_not_a_string_is_an_empty_body() {
        let got = sign(
            r#"{"method": "GET", "url": "https://h.example/p", "raw_body": 1, "body": "x"}"#,
            CONFIG,
            "1700000000000000000",
        )
        .unwrap();
        assert!(
            got["headers"]["Authorization"]
                .as_string()
                .unwrap()
                .ends_with("Signature=b4b13822bef7f38327147593e6eb0004b434a09071f2e5e877ef4861300438c3")
        );
    }

    #[test]
    fn malformed_arguments_are_errors() {
        let ok_request = r#"{"method": "GET", "url": "https://h.example/p"}"#;
        let e = sign(ok_request, r#"{"aws_access_key": 1}"#, "0")
            .unwrap_err()
            .to_string();
        assert!(
            e.contains(
                r#"missing required AWS config parameters(s): {"aws_region", "aws_secret_access_key", "aws_service"}"#
            ),
            "{e}"
        );
        let e = sign(ok_request, CONFIG, "1.5").unwrap_err().to_string();
        assert!(
            e.contains("could not convert time_ns value into a unix timestamp"),
            "{e}"
        );
        let e = sign(r#"{"method": "GET", "url": "https://h/", "extra": 1}"#, CONFIG, "0")
            .unwrap_err()
            .to_string();
        assert!(e.contains(r#"invalid request parameters(s): {"extra"}"#), "{e}");
        let e = sign(r#"{"method": "GET", "url": "https://h/%zz"}"#, CONFIG, "0")
            .unwrap_err()
            .to_string();
        assert!(e.contains(r#"parse "https://h/%zz": invalid URL escape "%zz""#), "{e}");
    }
}
