//! Builtins as OPA computes them, in Warden's own code.
//!
//! regorus lacks some of OPA's builtins (all of `crypto.*` and `io.jwt.*`)
//! and computes others differently (measured by the differential corpus,
//! `tests/opa/`). Each one here is registered as a regorus extension under
//! OPA's name, which takes precedence over regorus' own builtin of that
//! name. Warden evaluates with strict builtin errors, as OPA does with
//! `--strict-builtin-errors`: a builtin's `Err` is an evaluation error
//! (422 `policy_eval_error`), with OPA's wording where OPA has one.
//!
//! Every input may come from an attacker (a token in a request header, a
//! certificate in the input document): nothing here panics on it, and the
//! work is bounded (key sizes, chain lengths, nesting depth, output size).
//!
//! - [`text`], [`sprintf`], [`template`]: strings, counted and cased per
//!   code point; Go's `fmt` and `text/template` as OPA uses them.
//! - [`collections`]: `array.flatten`, `sort` and `object.subset` in OPA's
//!   order of values, `json.remove` by JSON pointer, the operators by name.
//! - [`decimal`]: `+ - * /`, `sum` and `product` on decimals where an
//!   operand is not an integer, as OPA computes them.
//! - [`schema`]: `json.match_schema` and `json.verify_schema` with the
//!   error objects OPA's JSON Schema library gives.
//! - [`conversions`]: `to_number`, `units.parse_bytes`, `urlquery.decode`
//!   and `regex.replace`, failing where OPA fails.
//! - [`net`], [`time`], [`uuid`]: CIDR blocks; Go's `AddDate` and
//!   `ParseDuration` (with OPA's days, weeks, years); `uuid.parse`.
//! - [`golayout`]: Go's reference-time layouts for `time.format` and
//!   `time.parse_ns`.
//! - [`crypto`]: digests, HMACs and `crypto.hmac.equal`.
//! - [`jwt`]: `io.jwt.decode`, `decode_verify`, `verify_*`, `encode_sign*`.
//! - [`keys`]: PEM, SubjectPublicKeyInfo and JWK parsing shared by the rest.
//! - [`x509`]: `crypto.x509.*` and `crypto.parse_private_keys`.
//! - [`globs`]: `regex.globs_match`, with OPA's intersection algorithm.
//! - [`patterns`]: `regex.match` and `glob.match`, their patterns compiled
//!   once per evaluating thread and matched in place.
//! - [`yaml`]: `yaml.unmarshal`, `yaml.marshal`, `yaml.is_valid` as Go's
//!   `yaml.v2` reads and writes YAML 1.1.
//! - [`graphql`]: `graphql.*`: documents parsed into the shapes OPA
//!   returns, schemas checked and queries validated as OPA validates them.
//! - [`gojson`]: Go's `encoding/json` rendering of values, which OPA uses
//!   for the signed bytes of `io.jwt.encode_sign`.
//! - [`uri`]: `uri.parse` and `uri.is_valid` as Go's `net/url` parses URLs.
//! - [`aws`]: `providers.aws.sign_req`, AWS Signature Version 4 as OPA signs.

mod aws;
mod collections;
mod conversions;
pub(crate) mod crypto;
mod decimal;
mod globs;
pub(crate) mod gojson;
mod golayout;
mod graphql;
pub(crate) mod jwt;
pub(crate) mod keys;
mod net;
mod patterns;
mod rego_module;
mod schema;
pub(crate) mod sprintf;
mod template;
mod text;
mod time;
pub(crate) mod uri;
mod uuid;
pub(crate) mod x509;
pub(crate) mod yaml;

#[cfg(test)]
mod tests;

use regorus::Value;

/// The result of one builtin: `Err` is OPA's builtin error.
pub(crate) type Answer = anyhow::Result<Value>;

/// A builtin implementation: the evaluated arguments in, a value out.
pub(crate) type Builtin = fn(&[Value]) -> Answer;

/// Every builtin here: OPA's name, its arity, the function.
fn all() -> impl Iterator<Item = &'static (&'static str, u8, Builtin)> {
    text::BUILTINS
        .iter()
        .chain(collections::BUILTINS)
        .chain(conversions::BUILTINS)
        .chain(schema::BUILTINS)
        .chain(net::BUILTINS)
        .chain(template::BUILTINS)
        .chain(sprintf::BUILTINS)
        .chain(time::BUILTINS)
        .chain(uuid::BUILTINS)
        .chain(crypto::BUILTINS)
        .chain(jwt::BUILTINS)
        .chain(x509::BUILTINS)
        .chain(yaml::BUILTINS)
        .chain(globs::BUILTINS)
        .chain(patterns::BUILTINS)
        .chain(graphql::BUILTINS)
        .chain(rego_module::BUILTINS)
        .chain(uri::BUILTINS)
        .chain(aws::BUILTINS)
}

/// Registers every builtin of this module on the engine.
pub(crate) fn install(engine: &mut regorus::Engine) -> anyhow::Result<()> {
    for (name, arity, f) in all() {
        let f = *f;
        engine.add_extension(name.to_string(), *arity, Box::new(move |args: Vec<Value>| f(&args)))?;
    }
    Ok(())
}

/// Compiled size a pattern of `regex.replace` or of a JSON Schema may
/// reach.
const REGEX_SIZE_LIMIT: usize = 10 * 1024 * 1024;

thread_local! {
    static COMPILED: patterns::Kept<regex::Regex> = patterns::kept();
}

/// `f` applied to `pattern` compiled (its compiled size bounded), as this
/// evaluating thread keeps it: compiled once, matched in place.
pub(crate) fn with_regex<R>(pattern: &str, f: impl FnOnce(&regex::Regex) -> R) -> Result<R, regex::Error> {
    let compile = || {
        regex::RegexBuilder::new(pattern)
            .size_limit(REGEX_SIZE_LIMIT)
            .dfa_size_limit(patterns::DFA_SIZE_LIMIT)
            .build()
    };
    patterns::with_kept(&COMPILED, pattern, compile, f)
}

/// A pattern compiled once per evaluating thread, its compiled size
/// bounded; a copy, for a caller that keeps it.
pub(crate) fn compiled_regex(pattern: &str) -> Result<regex::Regex, regex::Error> {
    with_regex(pattern, regex::Regex::clone)
}

/// The number of arguments one of Warden's own builtins takes.
pub(crate) fn arity(name: &str) -> Option<u8> {
    all().find(|(n, _, _)| *n == name).map(|(_, a, _)| *a)
}

/// The number of arguments a builtin Warden evaluates takes: its own, the
/// engine's, or one captured for replay.
pub(crate) fn any_arity(name: &str) -> Option<usize> {
    arity(name)
        .or_else(|| regorus::unstable::BUILTINS.get(name).map(|(_, n)| *n))
        .or(match name {
            "time.now_ns" => Some(0),
            "uuid.rfc4122" => Some(1),
            "rand.intn" => Some(2),
            _ => None,
        })
        .map(usize::from)
}

/// True when a builtin of this name is one of Warden's own.
pub(crate) fn is_ours(name: &str) -> bool {
    all().any(|(n, _, _)| *n == name)
}

/// OPA's name of a value's type, as its error messages print it.
pub(crate) fn type_name(v: &Value) -> &'static str {
    match v {
        Value::Null => "null",
        Value::Bool(_) => "boolean",
        Value::Number(_) => "number",
        Value::String(_) => "string",
        Value::Array(_) => "array",
        Value::Set(_) => "set",
        Value::Object(_) => "object",
        Value::Undefined => "undefined",
    }
}

/// A string quoted as Go's `strconv.Quote` quotes it.
pub(crate) fn go_quote(s: &str) -> String {
    go_quote_bytes(s.as_bytes())
}

/// Bytes quoted as Go's `strconv.Quote` quotes a string holding them:
/// escapes for control and non-printable characters, `\xNN` for each byte
/// that is not UTF-8.
pub(crate) fn go_quote_bytes(bytes: &[u8]) -> String {
    let mut out = String::with_capacity(bytes.len() + 2);
    out.push('"');
    for chunk in bytes.utf8_chunks() {
        for c in chunk.valid().chars() {
            match c {
                '"' => out.push_str("\\\""),
                '\\' => out.push_str("\\\\"),
                '\u{7}' => out.push_str("\\a"),
                '\u{8}' => out.push_str("\\b"),
                '\u{c}' => out.push_str("\\f"),
                '\n' => out.push_str("\\n"),
                '\r' => out.push_str("\\r"),
                '\t' => out.push_str("\\t"),
                '\u{b}' => out.push_str("\\v"),
                c if (c as u32) < 0x20 || c as u32 == 0x7f => out.push_str(&format!("\\x{:02x}", c as u32)),
                c if !is_go_printable(c) => {
                    if (c as u32) < 0x10000 {
                        out.push_str(&format!("\\u{:04x}", c as u32));
                    } else {
                        out.push_str(&format!("\\U{:08x}", c as u32));
                    }
                }
                c => out.push(c),
            }
        }
        for b in chunk.invalid() {
            out.push_str(&format!("\\x{b:02x}"));
        }
    }
    out.push('"');
    out
}

/// Go's `unicode.IsPrint`: letters, marks, numbers, punctuation, symbols
/// and the ASCII space.
fn is_go_printable(c: char) -> bool {
    static GRAPHIC: std::sync::LazyLock<Option<regex::Regex>> =
        std::sync::LazyLock::new(|| regex::Regex::new(r"^[\p{L}\p{M}\p{N}\p{P}\p{S}]$").ok());
    if c.is_ascii() {
        return c == ' ' || c.is_ascii_graphic();
    }
    let mut buf = [0u8; 4];
    match GRAPHIC.as_ref() {
        Some(re) => re.is_match(c.encode_utf8(&mut buf)),
        None => !c.is_control() && !c.is_whitespace(),
    }
}

/// OPA's operand type error: `count: operand 1 must be string but got null`.
pub(crate) fn operand(name: &str, position: usize, want: &str, got: &Value) -> anyhow::Error {
    anyhow::anyhow!("{name}: operand {position} must be {want} but got {}", type_name(got))
}

/// The string argument at `position` (1-based), or OPA's type error.
pub(crate) fn string<'a>(name: &str, args: &'a [Value], position: usize) -> anyhow::Result<&'a str> {
    match &args[position - 1] {
        Value::String(s) => Ok(s),
        other => Err(operand(name, position, "string", other)),
    }
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

#[cfg(test)]
pub(crate) mod testing {
    use regorus::Value;

    /// Evaluates `expr` in a module with Warden's builtins installed.
    pub fn eval(expr: &str) -> anyhow::Result<Value> {
        let mut engine = regorus::Engine::new();
        engine.set_policy_length_config(crate::policy::rewrite::module_limits());
        engine.set_strict_builtin_errors(true);
        // As Warden compiles a module: rewritten into OPA's order first.
        let source = format!("package t\n\nx := {expr}\n");
        let source = crate::policy::rewrite::rewrite("t.rego", &source, true)
            .map_err(anyhow::Error::msg)?
            .unwrap_or(source);
        engine.add_policy("t.rego".into(), source)?;
        super::install(&mut engine)?;
        engine.eval_rule("data.t.x".to_string())
    }

    pub fn json(text: &str) -> Value {
        Value::from_json_str(text).expect("JSON")
    }
}
