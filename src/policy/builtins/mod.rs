//! OPA's `crypto.*` and `io.jwt.*` builtins, which regorus lacks, installed
//! as regorus extensions.
//!
//! Each builtin answers as OPA 1.x does. Where OPA raises a builtin error
//! (bad base64, a malformed key, an argument of the wrong type), OPA without
//! `--strict-builtin-errors` makes the calling expression undefined. A
//! regorus extension that returns `Err` always aborts the evaluation, strict
//! or not, so every builtin here answers `Value::Undefined` instead: the
//! expression is undefined, as in OPA.
//!
//! Every input may come from an attacker (a token in a request header, a
//! certificate in the input document): nothing here panics on it, and the
//! work is bounded (key sizes, chain lengths, nesting depth).
//!
//! - [`crypto`]: digests, HMACs and `crypto.hmac.equal`.
//! - [`jwt`]: `io.jwt.decode`, `decode_verify`, `verify_*`, `encode_sign*`.
//! - [`keys`]: PEM, SubjectPublicKeyInfo and JWK parsing shared by the rest.
//! - [`x509`]: `crypto.x509.*` and `crypto.parse_private_keys`.
//! - [`gojson`]: Go's `encoding/json` rendering of values, which OPA uses
//!   for the signed bytes of `io.jwt.encode_sign`.

pub(crate) mod crypto;
pub(crate) mod gojson;
pub(crate) mod jwt;
pub(crate) mod keys;
pub(crate) mod x509;

#[cfg(test)]
mod tests;

use regorus::Value;

/// The result of one builtin: `Err` is OPA's builtin error, which becomes
/// an undefined expression.
pub(crate) type Answer = anyhow::Result<Value>;

/// A builtin implementation: the evaluated arguments in, a value out.
pub(crate) type Builtin = fn(&[Value]) -> Answer;

/// Registers every builtin of this module on `engine`.
pub(crate) fn install(engine: &mut regorus::Engine) -> anyhow::Result<()> {
    let all: Vec<(&str, u8, Builtin)> = crypto::BUILTINS
        .iter()
        .chain(jwt::BUILTINS.iter())
        .chain(x509::BUILTINS.iter())
        .copied()
        .collect();
    for (name, nargs, f) in all {
        engine.add_extension(
            name.to_string(),
            nargs,
            Box::new(move |args: Vec<Value>| Ok(f(&args).unwrap_or(Value::Undefined))),
        )?;
    }
    Ok(())
}

/// The `i`th argument as a string (OPA's `StringOperand`).
pub(crate) fn str_arg(args: &[Value], i: usize) -> anyhow::Result<&str> {
    match args.get(i) {
        Some(Value::String(s)) => Ok(s),
        _ => anyhow::bail!("operand {} must be a string", i + 1),
    }
}

/// Decodes base64url as OPA's `base64url.decode` does: padding is optional
/// (added back when the length needs it), line breaks are skipped, and
/// non-zero trailing bits are accepted, as in Go's non-strict decoder.
pub(crate) fn b64url_decode(s: &str) -> anyhow::Result<Vec<u8>> {
    use base64::Engine as _;
    let mut padded = s.to_string();
    if !s.ends_with('=') {
        match s.len() % 4 {
            0 => {}
            2 => padded.push_str("=="),
            3 => padded.push('='),
            _ => anyhow::bail!("illegal base64url string"),
        }
    }
    padded.retain(|c| c != '\r' && c != '\n');
    let engine = base64::engine::GeneralPurpose::new(
        &base64::alphabet::URL_SAFE,
        base64::engine::GeneralPurposeConfig::new()
            .with_decode_allow_trailing_bits(true)
            .with_decode_padding_mode(base64::engine::DecodePaddingMode::RequireCanonical),
    );
    Ok(engine.decode(padded.as_bytes())?)
}

/// Encodes base64url without padding (Go's `RawURLEncoding`).
pub(crate) fn b64url_encode(b: &[u8]) -> String {
    use base64::Engine as _;
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(b)
}

/// Parses JSON text into a value, as OPA's `json.unmarshal` does: later
/// duplicate keys win.
pub(crate) fn json_value(text: &[u8]) -> anyhow::Result<Value> {
    let s = std::str::from_utf8(text)?;
    Value::from_json_str(s)
}
