//! Values rendered as Go's `encoding/json` renders OPA's `ast.JSON` of them:
//! object keys sorted by their bytes, `<`, `>` and `&` escaped as `\u003c`,
//! `\u003e`, `\u0026`, U+2028 and U+2029 escaped, other text kept as UTF-8,
//! sets as arrays. `io.jwt.encode_sign` signs exactly these bytes, so a
//! token Warden signs is byte for byte the one OPA signs.

use std::fmt::Write as _;

use regorus::Value;

/// Nesting deeper than this is refused rather than recursed into.
const MAX_DEPTH: usize = 256;

/// Renders `v` as Go's `json.Marshal` renders it in OPA.
pub(crate) fn to_go_json(v: &Value) -> anyhow::Result<String> {
    let mut out = String::new();
    write_value(v, &mut out, 0)?;
    Ok(out)
}

fn write_value(v: &Value, out: &mut String, depth: usize) -> anyhow::Result<()> {
    if depth > MAX_DEPTH {
        anyhow::bail!("value nested too deeply");
    }
    match v {
        Value::Null => out.push_str("null"),
        Value::Bool(b) => out.push_str(if *b { "true" } else { "false" }),
        Value::Number(_) => out.push_str(&v.to_json_str()?),
        Value::String(s) => write_str(s, out),
        Value::Array(items) => write_seq(items.iter(), out, depth)?,
        Value::Set(items) => write_seq(items.iter(), out, depth)?,
        Value::Object(fields) => {
            let mut entries = Vec::with_capacity(fields.len());
            for (k, val) in fields.iter() {
                let key = match k {
                    Value::String(s) => s.to_string(),
                    other => to_go_json(other)?,
                };
                entries.push((key, val));
            }
            entries.sort_by(|a, b| a.0.as_bytes().cmp(b.0.as_bytes()));
            out.push('{');
            for (i, (k, val)) in entries.into_iter().enumerate() {
                if i > 0 {
                    out.push(',');
                }
                write_str(&k, out);
                out.push(':');
                write_value(val, out, depth + 1)?;
            }
            out.push('}');
        }
        Value::Undefined => anyhow::bail!("undefined value"),
    }
    Ok(())
}

fn write_seq<'a>(items: impl Iterator<Item = &'a Value>, out: &mut String, depth: usize) -> anyhow::Result<()> {
    out.push('[');
    for (i, item) in items.enumerate() {
        if i > 0 {
            out.push(',');
        }
        write_value(item, out, depth + 1)?;
    }
    out.push(']');
    Ok(())
}

/// A JSON string with Go's escaping (HTML-safe).
pub(crate) fn write_str(s: &str, out: &mut String) {
    out.push('"');
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            '\u{8}' => out.push_str("\\b"),
            '\u{c}' => out.push_str("\\f"),
            '<' | '>' | '&' | '\u{2028}' | '\u{2029}' => {
                let _ = write!(out, "\\u{:04x}", c as u32);
            }
            c if (c as u32) < 0x20 => {
                let _ = write!(out, "\\u{:04x}", c as u32);
            }
            c => out.push(c),
        }
    }
    out.push('"');
}
