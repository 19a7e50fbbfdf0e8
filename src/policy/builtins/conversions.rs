//! Conversions from text, failing where OPA fails: regorus answered a
//! number for `to_number(" 1")`, undefined for an unknown byte unit, a bad
//! URL escape or a regular expression that does not compile, so a deny
//! rule built on them was silently dropped instead of failing the decision.

use regorus::Value;

use super::{Builtin, operand, string};

pub(super) const BUILTINS: &[(&str, u8, Builtin)] = &[
    ("to_number", 1, to_number),
    ("units.parse_bytes", 1, parse_bytes),
    ("urlquery.decode", 1, urlquery_decode),
    ("regex.replace", 3, regex_replace),
];

/// `to_number`: null, booleans and numbers as OPA converts them; a string
/// only when it is a JSON number as written (no sign `+`, no space, no `.5`)
/// that a 64-bit float can hold.
fn to_number(args: &[Value]) -> anyhow::Result<Value> {
    let name = "to_number";
    match &args[0] {
        Value::Null => Ok(Value::from(0u64)),
        Value::Bool(b) => Ok(Value::from(u64::from(*b))),
        Value::Number(_) => Ok(args[0].clone()),
        Value::String(s) => {
            let text: &str = s;
            if !is_json_number(text) {
                anyhow::bail!("{name}: strconv.ParseFloat: parsing {text:?}: invalid syntax");
            }
            match text.parse::<f64>() {
                Ok(f) if f.is_finite() => Value::from_json_str(text),
                _ => anyhow::bail!("{name}: strconv.ParseFloat: parsing {text:?}: value out of range"),
            }
        }
        other => Err(operand(name, 1, "one of {null, boolean, number, string}", other)),
    }
}

/// JSON's number grammar, nothing around it.
fn is_json_number(s: &str) -> bool {
    let b = s.as_bytes();
    let mut i = 0;
    let digits = |i: &mut usize| {
        let start = *i;
        while *i < b.len() && b[*i].is_ascii_digit() {
            *i += 1;
        }
        *i - start
    };
    if b.first() == Some(&b'-') {
        i += 1;
    }
    match b.get(i) {
        Some(b'0') => i += 1,
        Some(c) if c.is_ascii_digit() => {
            digits(&mut i);
        }
        _ => return false,
    }
    if b.get(i) == Some(&b'.') {
        i += 1;
        if digits(&mut i) == 0 {
            return false;
        }
    }
    if matches!(b.get(i), Some(b'e' | b'E')) {
        i += 1;
        if matches!(b.get(i), Some(b'+' | b'-')) {
            i += 1;
        }
        if digits(&mut i) == 0 {
            return false;
        }
    }
    i == b.len()
}

/// Longest byte amount `units.parse_bytes` reads.
const MAX_AMOUNT: usize = 256;

/// `units.parse_bytes`: an amount (sign, digits, one decimal point, an
/// optional exponent) and a unit, case-insensitive, quotes ignored: none,
/// k/kb … e/eb in powers of 1000, ki/kib … ei/eib in powers of 1024. The
/// product is truncated toward zero.
fn parse_bytes(args: &[Value]) -> anyhow::Result<Value> {
    let name = "units.parse_bytes";
    let raw = string(name, args, 1)?;
    let text = raw.to_lowercase().replace('"', "");
    if text.contains(' ') {
        anyhow::bail!("{name}: spaces not allowed in resource strings");
    }
    let b = text.as_bytes();
    // The amount: [+-0-9.]*, then an exponent if digits follow the `e`.
    let mut end = b
        .iter()
        .position(|c| !(c.is_ascii_digit() || matches!(c, b'.' | b'+' | b'-')))
        .unwrap_or(b.len());
    if end > 0 && b.get(end) == Some(&b'e') {
        let mut j = end + 1;
        if matches!(b.get(j), Some(b'+' | b'-')) {
            j += 1;
        }
        let digits = b[j..].iter().take_while(|c| c.is_ascii_digit()).count();
        if digits > 0 {
            end = j + digits;
        }
    }
    let (amount, unit) = text.split_at(end);
    if amount.is_empty() {
        anyhow::bail!("{name}: no byte amount provided");
    }
    let (base, power): (u128, u32) = match unit {
        "" => (1, 0),
        "k" | "kb" => (1000, 1),
        "m" | "mb" => (1000, 2),
        "g" | "gb" => (1000, 3),
        "t" | "tb" => (1000, 4),
        "p" | "pb" => (1000, 5),
        "e" | "eb" => (1000, 6),
        "ki" | "kib" => (1024, 1),
        "mi" | "mib" => (1024, 2),
        "gi" | "gib" => (1024, 3),
        "ti" | "tib" => (1024, 4),
        "pi" | "pib" => (1024, 5),
        "ei" | "eib" => (1024, 6),
        other => anyhow::bail!("{name}: byte unit {other} not recognized"),
    };
    let bad = || anyhow::anyhow!("{name}: could not parse byte amount to a number");
    if amount.len() > MAX_AMOUNT {
        return Err(bad());
    }
    let (negative, digits, exp10) = decimal(amount).ok_or_else(bad)?;
    let multiplier = base.pow(power);
    // Exact when it fits in 128 bits; a 64-bit float beyond.
    let exact = (|| {
        let mut n = digits.checked_mul(multiplier)?;
        if exp10 >= 0 {
            n = n.checked_mul(10u128.checked_pow(exp10.unsigned_abs())?)?;
        } else {
            n /= 10u128.checked_pow(exp10.unsigned_abs())?;
        }
        Some(n)
    })();
    let sign = if negative { -1 } else { 1 };
    match exact.and_then(|n| i128::try_from(n).ok()) {
        Some(n) => Ok(Value::from(sign * n)),
        None => {
            let f = amount.parse::<f64>().map_err(|_| bad())? * multiplier as f64;
            if !f.is_finite() {
                return Err(bad());
            }
            Ok(Value::from(f.trunc()))
        }
    }
}

/// A decimal `[+-]digits[.digits][e[+-]digits]` as (negative, significand,
/// power of ten); `None` when it is not one or its significand overflows.
fn decimal(text: &str) -> Option<(bool, u128, i32)> {
    let (negative, rest) = match text.as_bytes().first()? {
        b'-' => (true, &text[1..]),
        b'+' => (false, &text[1..]),
        _ => (false, text),
    };
    let (mantissa, exp) = match rest.split_once('e') {
        Some((m, e)) => (m, e.parse::<i32>().ok()?),
        None => (rest, 0),
    };
    let (int, frac) = mantissa.split_once('.').unwrap_or((mantissa, ""));
    if int.is_empty() && frac.is_empty() {
        return None;
    }
    if !int.bytes().chain(frac.bytes()).all(|c| c.is_ascii_digit()) {
        return None;
    }
    let mut n: u128 = 0;
    for c in int.bytes().chain(frac.bytes()) {
        n = n.checked_mul(10)?.checked_add(u128::from(c - b'0'))?;
    }
    let frac_len = i32::try_from(frac.len()).ok()?;
    Some((negative, n, exp.checked_sub(frac_len)?))
}

/// `urlquery.decode`, as Go's `url.QueryUnescape`: `+` is a space, `%XX`
/// a byte, and any other `%` an error.
fn urlquery_decode(args: &[Value]) -> anyhow::Result<Value> {
    let name = "urlquery.decode";
    let s = string(name, args, 1)?;
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        match b[i] {
            b'%' => {
                let hex = b.get(i + 1..i + 3).filter(|h| h.iter().all(u8::is_ascii_hexdigit));
                let Some(h) = hex else {
                    let bad = &s[i..(i + 3).min(s.len())];
                    anyhow::bail!("{name}: invalid URL escape {bad:?}");
                };
                let hi = (h[0] as char).to_digit(16).unwrap_or(0);
                let lo = (h[1] as char).to_digit(16).unwrap_or(0);
                out.push((hi * 16 + lo) as u8);
                i += 3;
            }
            b'+' => {
                out.push(b' ');
                i += 1;
            }
            c => {
                out.push(c);
                i += 1;
            }
        }
    }
    Ok(Value::from(String::from_utf8_lossy(&out).into_owned()))
}

/// `regex.replace(s, pattern, value)`: every match replaced, `$1` and
/// `${name}` expanded; a pattern that does not compile is an error.
fn regex_replace(args: &[Value]) -> anyhow::Result<Value> {
    let name = "regex.replace";
    let s = string(name, args, 1)?;
    let pattern = string(name, args, 2)?;
    let value = string(name, args, 3)?;
    let replaced = super::with_regex(pattern, |re| re.replace_all(s, value).into_owned()).map_err(|e| {
        let first = e.to_string();
        let line = first.lines().last().unwrap_or_default().trim().to_string();
        anyhow::anyhow!("{name}: error parsing regexp: {line}: `{pattern}`")
    })?;
    Ok(Value::from(replaced))
}

#[cfg(test)]
mod tests {
    use super::super::testing::{eval, json};

    #[test]
    fn to_number_takes_json_numbers_only() {
        assert_eq!(eval(r#"to_number("-1.5e3")"#).unwrap(), json("-1500"));
        assert_eq!(eval(r#"to_number(true)"#).unwrap(), json("1"));
        for bad in [r#"" 1""#, r#""+1""#, r#"".5""#, r#""0x10""#, r#""Inf""#, r#""1e400""#] {
            let e = eval(&format!("to_number({bad})")).unwrap_err().to_string();
            assert!(e.contains("to_number"), "{bad}: {e}");
        }
    }

    #[test]
    fn byte_amounts_parse_as_opa_reads_them() {
        for (text, want) in [
            ("1.5KiB", "1536"),
            (r#"\"10MB\""#, "10000000"),
            ("-1kb", "-1000"),
            ("1e3kb", "1000000"),
            ("1e", "1000000000000000000"),
            ("1e-1kb", "100"),
            (".5k", "500"),
            ("0.3333333333333333333333kb", "333"),
            ("1024", "1024"),
        ] {
            assert_eq!(
                eval(&format!(r#"units.parse_bytes("{text}")"#)).unwrap(),
                json(want),
                "{text}"
            );
        }
        for (text, message) in [
            ("1xb", "byte unit xb not recognized"),
            ("1b", "byte unit b not recognized"),
            ("kb", "no byte amount provided"),
            ("10 kb", "spaces not allowed"),
            ("1.5.5kb", "could not parse byte amount"),
            ("--1", "could not parse byte amount"),
        ] {
            let e = eval(&format!(r#"units.parse_bytes("{text}")"#))
                .unwrap_err()
                .to_string();
            assert!(e.contains(message), "{text}: {e}");
        }
    }

    #[test]
    fn url_escapes_decode_and_bad_ones_fail() {
        assert_eq!(eval(r#"urlquery.decode("%C3%A9+x%2F")"#).unwrap(), json(r#""é x/""#));
        let e = eval(r#"urlquery.decode("a%2")"#).unwrap_err().to_string();
        assert!(e.contains(r#"invalid URL escape "%2""#), "{e}");
        assert!(eval(r#"urlquery.decode("%zz")"#).is_err());
    }

    #[test]
    fn regex_replace_expands_groups_and_refuses_bad_patterns() {
        assert_eq!(
            eval(r#"regex.replace("a1b22", `([a-z])(\d+)`, "$2$1")"#).unwrap(),
            json(r#""1a22b""#)
        );
        let e = eval(r#"regex.replace("x", `(`, "y")"#).unwrap_err().to_string();
        assert!(e.contains("regex.replace: error parsing regexp"), "{e}");
    }
}
