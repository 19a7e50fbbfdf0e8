//! Reading an uploaded document (a workflow definition, a skill manifest)
//! strictly: JSON when its first non-blank byte is `{`, YAML otherwise, into
//! a JSON value. A key given twice and a number that is not finite are
//! syntax errors, named with their line and column; JSON passes
//! [`crate::strict_json`] first, so it means what the evidence records.
//!
//! Invariants: no IO, no panics, nothing read past the size given.

use std::fmt;

use serde::de::{self, Deserialize, Deserializer, MapAccess, SeqAccess, Visitor};
use serde_json::{Map, Number, Value};

/// A JSON value that refuses duplicate keys and non-finite numbers, read
/// from any self-describing format.
pub struct StrictValue(pub Value);

impl<'de> Deserialize<'de> for StrictValue {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        d.deserialize_any(StrictVisitor)
    }
}

struct StrictVisitor;

impl<'de> Visitor<'de> for StrictVisitor {
    type Value = StrictValue;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a JSON or YAML value")
    }

    fn visit_bool<E>(self, v: bool) -> Result<StrictValue, E> {
        Ok(StrictValue(Value::Bool(v)))
    }

    fn visit_i64<E>(self, v: i64) -> Result<StrictValue, E> {
        Ok(StrictValue(Value::from(v)))
    }

    fn visit_u64<E>(self, v: u64) -> Result<StrictValue, E> {
        Ok(StrictValue(Value::from(v)))
    }

    fn visit_i128<E: de::Error>(self, v: i128) -> Result<StrictValue, E> {
        i64::try_from(v)
            .map(Value::from)
            .or_else(|_| u64::try_from(v).map(Value::from))
            .map(StrictValue)
            .map_err(|_| E::custom(format!("integer {v} is out of range")))
    }

    fn visit_u128<E: de::Error>(self, v: u128) -> Result<StrictValue, E> {
        u64::try_from(v)
            .map(|v| StrictValue(Value::from(v)))
            .map_err(|_| E::custom(format!("integer {v} is out of range")))
    }

    fn visit_f64<E: de::Error>(self, v: f64) -> Result<StrictValue, E> {
        Number::from_f64(v)
            .map(|n| StrictValue(Value::Number(n)))
            .ok_or_else(|| E::custom(format!("{v} is not a finite number")))
    }

    fn visit_str<E>(self, v: &str) -> Result<StrictValue, E> {
        Ok(StrictValue(Value::String(v.to_owned())))
    }

    fn visit_string<E>(self, v: String) -> Result<StrictValue, E> {
        Ok(StrictValue(Value::String(v)))
    }

    fn visit_unit<E>(self) -> Result<StrictValue, E> {
        Ok(StrictValue(Value::Null))
    }

    fn visit_none<E>(self) -> Result<StrictValue, E> {
        Ok(StrictValue(Value::Null))
    }

    fn visit_some<D: Deserializer<'de>>(self, d: D) -> Result<StrictValue, D::Error> {
        StrictValue::deserialize(d)
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<StrictValue, A::Error> {
        let mut items = Vec::new();
        while let Some(StrictValue(v)) = seq.next_element()? {
            items.push(v);
        }
        Ok(StrictValue(Value::Array(items)))
    }

    fn visit_map<A: MapAccess<'de>>(self, mut access: A) -> Result<StrictValue, A::Error> {
        let mut map = Map::new();
        while let Some(key) = access.next_key::<String>()? {
            if map.contains_key(&key) {
                return Err(de::Error::custom(format!("duplicate key `{key}`")));
            }
            let StrictValue(v) = access.next_value()?;
            map.insert(key, v);
        }
        Ok(StrictValue(Value::Object(map)))
    }
}

/// Why a document could not be read, as a message to show.
pub enum Unreadable {
    TooLarge(String),
    /// Not JSON or YAML (with the line and column), empty, or a key twice.
    Syntax(String),
}

fn syntax(format: &str, location: Option<(usize, usize)>, message: &str) -> Unreadable {
    Unreadable::Syntax(match location {
        Some((line, column)) => {
            // The parsers repeat the location in their messages.
            let message = message.replacen(&format!(" at line {line} column {column}"), "", 1);
            format!("{format} syntax error at line {line}, column {column}: {message}")
        }
        None => format!("{format} syntax error: {message}"),
    })
}

/// Deepest nesting of a JSON document read here (serde_json stops at 128).
const MAX_DOCUMENT_DEPTH: usize = 120;

/// A document as a JSON value: JSON if its first non-blank byte is `{`,
/// YAML otherwise; duplicate keys and non-finite numbers are syntax
/// errors. `what` names it in messages ("the definition").
pub fn read_strict(bytes: &[u8], max: usize, what: &str) -> Result<Value, Unreadable> {
    if bytes.len() > max {
        return Err(Unreadable::TooLarge(format!(
            "{what} is {} bytes; the most is {max}",
            bytes.len()
        )));
    }
    let body = bytes.strip_prefix(b"\xEF\xBB\xBF").unwrap_or(bytes);
    if body.iter().all(u8::is_ascii_whitespace) {
        return Err(Unreadable::Syntax(format!("{what} is empty")));
    }
    if body.iter().find(|b| !b.is_ascii_whitespace()) == Some(&b'{') {
        // Integers past 64 bits, lone surrogates and reader markers, which
        // serde_json alone would round, accept or interpret.
        // (Syntax errors and duplicate keys are left to the reader below,
        // which names their line and column.)
        if let Err(f) = crate::strict_json::check(body, MAX_DOCUMENT_DEPTH)
            && !matches!(
                f.kind,
                crate::strict_json::FaultKind::Syntax | crate::strict_json::FaultKind::DuplicateMember
            )
        {
            return Err(Unreadable::Syntax(format!("JSON {f}")));
        }
        serde_json::from_slice::<StrictValue>(body)
            .map(|v| v.0)
            .map_err(|e| syntax("JSON", Some((e.line(), e.column())), &e.to_string()))
    } else {
        yaml_serde::from_slice::<StrictValue>(body).map(|v| v.0).map_err(|e| {
            let location = e.location().map(|l| (l.line(), l.column()));
            syntax("YAML", location, &e.to_string())
        })
    }
}
