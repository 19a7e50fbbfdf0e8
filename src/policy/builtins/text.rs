//! Strings: counted and cased per code point, as Go does.

use regorus::Value;

use super::{Builtin, operand, string};

pub(super) const BUILTINS: &[(&str, u8, Builtin)] = &[
    ("count", 1, count),
    ("lower", 1, lower),
    ("upper", 1, upper),
    ("strings.count", 2, strings_count),
    ("indexof", 2, indexof),
    ("indexof_n", 2, indexof_n),
    ("json.marshal", 1, json_marshal),
    ("glob.quote_meta", 1, glob_quote_meta),
    ("strings.split_n", 3, split_n),
    ("semver.is_valid", 1, semver_is_valid),
];

/// `count(x)`: elements of a collection; code points of a string (regorus
/// counted UTF-16 units: an emoji was 2).
fn count(args: &[Value]) -> anyhow::Result<Value> {
    let n = match &args[0] {
        Value::String(s) => s.chars().count(),
        Value::Array(a) => a.len(),
        Value::Set(s) => s.len(),
        Value::Object(o) => o.len(),
        other => return Err(operand("count", 1, "one of {array, object, set, string}", other)),
    };
    Ok(Value::from(n as u64))
}

/// Go's `strings.ToLower`: each code point by its simple mapping, so
/// `İ` becomes `i` (Rust's full mapping gives `i̇`).
fn lower(args: &[Value]) -> anyhow::Result<Value> {
    let s = string("lower", args, 1)?;
    Ok(Value::from(
        s.chars()
            .map(|c| {
                let mut l = c.to_lowercase();
                match (l.next(), l.next()) {
                    (Some(one), None) => one,
                    // Only U+0130 maps to more than one code point in full;
                    // its simple lowercase is `i`.
                    _ if c == '\u{130}' => 'i',
                    _ => c,
                }
            })
            .collect::<String>(),
    ))
}

/// Go's `strings.ToUpper`: each code point by its simple mapping, so `ß`
/// and `ﬁ`, which have none, stay as they are.
fn upper(args: &[Value]) -> anyhow::Result<Value> {
    let s = string("upper", args, 1)?;
    Ok(Value::from(
        s.chars()
            .map(|c| {
                let mut u = c.to_uppercase();
                match (u.next(), u.next()) {
                    (Some(one), None) => one,
                    _ => c,
                }
            })
            .collect::<String>(),
    ))
}

/// Non-overlapping occurrences; an empty substring occurs once more than
/// there are code points (Go's `strings.Count`).
fn strings_count(args: &[Value]) -> anyhow::Result<Value> {
    let s = string("strings.count", args, 1)?;
    let sub = string("strings.count", args, 2)?;
    let n = if sub.is_empty() {
        s.chars().count() + 1
    } else {
        s.matches(sub).count()
    };
    Ok(Value::from(n as u64))
}

/// Code-point indexes where `needle` starts in `haystack`, each
/// occurrence (overlapping ones too).
fn positions(name: &str, args: &[Value]) -> anyhow::Result<Vec<u64>> {
    let haystack = string(name, args, 1)?;
    let needle = string(name, args, 2)?;
    if needle.is_empty() {
        anyhow::bail!("{name}: empty search character");
    }
    Ok(haystack
        .char_indices()
        .enumerate()
        .filter(|(_, (byte, _))| haystack[*byte..].starts_with(needle))
        .map(|(i, _)| i as u64)
        .collect())
}

fn indexof(args: &[Value]) -> anyhow::Result<Value> {
    let found = positions("indexof", args)?;
    Ok(match found.first() {
        Some(i) => Value::from(*i),
        None => Value::from(-1i64),
    })
}

fn indexof_n(args: &[Value]) -> anyhow::Result<Value> {
    let found = positions("indexof_n", args)?;
    Ok(Value::from(found.into_iter().map(Value::from).collect::<Vec<_>>()))
}

/// JSON as Go's `encoding/json` writes it: `<`, `>`, `&`, U+2028 and
/// U+2029 escaped, so the text is safe inside HTML and JavaScript.
fn json_marshal(args: &[Value]) -> anyhow::Result<Value> {
    let text = serde_json::to_string(&args[0]).map_err(|e| anyhow::anyhow!("json.marshal: {e}"))?;
    // These characters occur only inside strings in JSON text.
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '<' => out.push_str("\\u003c"),
            '>' => out.push_str("\\u003e"),
            '&' => out.push_str("\\u0026"),
            '\u{2028}' => out.push_str("\\u2028"),
            '\u{2029}' => out.push_str("\\u2029"),
            c => out.push(c),
        }
    }
    Ok(Value::from(out))
}

/// Escapes what `glob.match` reads as a pattern: `* ? [ ] { } \`.
fn glob_quote_meta(args: &[Value]) -> anyhow::Result<Value> {
    let s = string("glob.quote_meta", args, 1)?;
    let mut out = String::with_capacity(s.len() + 4);
    for c in s.chars() {
        if matches!(c, '*' | '?' | '[' | ']' | '{' | '}' | '\\') {
            out.push('\\');
        }
        out.push(c);
    }
    Ok(Value::from(out))
}

/// The first `n` parts of the string split at the delimiter, or with `n`
/// negative the last `-n` (OPA 1.20's `strings.split_n`, measured).
fn split_n(args: &[Value]) -> anyhow::Result<Value> {
    let name = "strings.split_n";
    let s = string(name, args, 1)?;
    let delimiter = string(name, args, 2)?;
    let n = match &args[2] {
        Value::Number(n) => n
            .as_i64()
            .ok_or_else(|| anyhow::anyhow!("{name}: operand 3 must be an integer"))?,
        other => return Err(operand(name, 3, "number", other)),
    };
    let parts: Vec<&str> = s.split(delimiter).collect();
    let keep = usize::try_from(n.unsigned_abs()).unwrap_or(usize::MAX).min(parts.len());
    let chosen = if n >= 0 {
        &parts[..keep]
    } else {
        &parts[parts.len() - keep..]
    };
    Ok(Value::from(chosen.iter().map(|p| Value::from(*p)).collect::<Vec<_>>()))
}

/// OPA's semver reading: an optional `v`, three numbers, then optional
/// `-pre.release` and `+build` identifiers. Anything but a string is not
/// valid (false, not an error).
fn semver_is_valid(args: &[Value]) -> anyhow::Result<Value> {
    let Value::String(s) = &args[0] else {
        return Ok(Value::from(false));
    };
    let ident = |part: &str| {
        !part.is_empty()
            && part
                .split('.')
                .all(|i| !i.is_empty() && i.chars().all(|c| c.is_ascii_alphanumeric() || c == '-'))
    };
    let s = s.strip_prefix('v').unwrap_or(s);
    let (rest, build) = match s.split_once('+') {
        Some((r, b)) => (r, Some(b)),
        None => (s, None),
    };
    let (core, pre) = match rest.split_once('-') {
        Some((c, p)) => (c, Some(p)),
        None => (rest, None),
    };
    let numbers: Vec<&str> = core.split('.').collect();
    let valid = numbers.len() == 3
        && numbers
            .iter()
            .all(|n| !n.is_empty() && n.chars().all(|c| c.is_ascii_digit()))
        && pre.is_none_or(ident)
        && build.is_none_or(ident);
    Ok(Value::from(valid))
}

#[cfg(test)]
mod tests {
    use super::super::testing::{eval, json};

    #[test]
    fn strings_are_counted_and_cased_per_code_point() {
        assert_eq!(eval(r#"count("héllo😀")"#).unwrap(), json("6"));
        assert_eq!(eval(r#"lower("İSTANBUL")"#).unwrap(), json(r#""istanbul""#));
        assert_eq!(eval(r#"upper("straße ﬁ")"#).unwrap(), json(r#""STRAßE ﬁ""#));
        assert_eq!(eval(r#"strings.count("aaaa", "aa")"#).unwrap(), json("2"));
        assert_eq!(eval(r#"strings.count("héllo", "")"#).unwrap(), json("6"));
        assert_eq!(eval(r#"indexof_n("ééé", "é")"#).unwrap(), json("[0, 1, 2]"));
        assert_eq!(eval(r#"indexof("héllo", "l")"#).unwrap(), json("2"));
        assert_eq!(
            eval(r#"strings.split_n("a,b,c,d", ",", 2)"#).unwrap(),
            json(r#"["a", "b"]"#)
        );
        assert_eq!(eval(r#"strings.split_n("a,b,c", ",", -1)"#).unwrap(), json(r#"["c"]"#));
    }

    #[test]
    fn semver_validity_reads_as_opa_s() {
        for (v, ok) in [
            ("1.2.3", true),
            ("v1.2.3", true),
            ("01.2.3", true),
            ("1.2.3-alpha.1+b.5", true),
            ("1.2", false),
            ("1.2.3-", false),
        ] {
            assert_eq!(
                eval(&format!("semver.is_valid({v:?})")).unwrap(),
                json(&ok.to_string()),
                "{v}"
            );
        }
        assert_eq!(eval("semver.is_valid(1)").unwrap(), json("false"));
    }

    #[test]
    fn wrong_types_and_empty_needles_are_errors_as_in_opa() {
        let e = eval("count(null)").unwrap_err().to_string();
        assert!(
            e.contains("count: operand 1 must be one of {array, object, set, string} but got null"),
            "{e}"
        );
        let e = eval(r#"indexof_n("abc", "")"#).unwrap_err().to_string();
        assert!(e.contains("empty search character"), "{e}");
    }

    #[test]
    fn json_marshal_escapes_as_go_does() {
        assert_eq!(
            eval(r#"json.marshal({"h": "<a>&\u2028"})"#).unwrap(),
            json(r#""{\"h\":\"\\u003ca\\u003e\\u0026\\u2028\"}""#)
        );
    }
}
