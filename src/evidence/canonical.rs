//! Canonical JSON (RFC 8785, the JSON Canonicalization Scheme) for ledger
//! payloads: object members sorted by the UTF-16 code units of their names,
//! no insignificant whitespace, strings escaped as ECMAScript's
//! `JSON.stringify` does, numbers in ECMAScript's shortest form.
//!
//! One deliberate difference: integers whose magnitude exceeds 2^53 are
//! written exactly, digit for digit. RFC 8785 would pass them through an
//! IEEE double and round them, and evidence (nanosecond timestamps among it)
//! must not change value on its way into the ledger. Every other value
//! canonicalises exactly as RFC 8785 specifies.
//!
//! Invariant: no IO; the same value always yields the same bytes.

use serde_json::Value;

/// The canonical bytes of `value`.
pub fn to_vec(value: &Value) -> Vec<u8> {
    let mut out = Vec::with_capacity(128);
    write(value, &mut out);
    out
}

fn write(value: &Value, out: &mut Vec<u8>) {
    match value {
        Value::Null => out.extend_from_slice(b"null"),
        Value::Bool(true) => out.extend_from_slice(b"true"),
        Value::Bool(false) => out.extend_from_slice(b"false"),
        Value::Number(n) => write_number(n, out),
        Value::String(s) => write_string(s, out),
        Value::Array(a) => {
            out.push(b'[');
            for (i, v) in a.iter().enumerate() {
                if i > 0 {
                    out.push(b',');
                }
                write(v, out);
            }
            out.push(b']');
        }
        Value::Object(o) => {
            let mut members: Vec<(&String, &Value)> = o.iter().collect();
            members.sort_by(|a, b| a.0.encode_utf16().cmp(b.0.encode_utf16()));
            out.push(b'{');
            for (i, (k, v)) in members.into_iter().enumerate() {
                if i > 0 {
                    out.push(b',');
                }
                write_string(k, out);
                out.push(b':');
                write(v, out);
            }
            out.push(b'}');
        }
    }
}

/// True when `bytes` are exactly the canonical encoding of the JSON value
/// they parse to. One pass, without building the value: the parse re-emits
/// each token in canonical form (object members must already arrive in
/// canonical order) into a buffer reused by the thread, which is then
/// compared with the input.
pub fn is_canonical(bytes: &[u8]) -> bool {
    thread_local! {
        static BUF: std::cell::RefCell<Vec<u8>> = const { std::cell::RefCell::new(Vec::new()) };
    }
    BUF.with(|buf| {
        let mut out = buf.borrow_mut();
        out.clear();
        let mut de = serde_json::Deserializer::from_slice(bytes);
        let ok = serde::de::DeserializeSeed::deserialize(Canon { out: &mut out }, &mut de).is_ok() && de.end().is_ok();
        ok && out.as_slice() == bytes
    })
}

/// Re-emits what it is fed in canonical form; fails on out-of-order or
/// duplicate object members.
struct Canon<'o> {
    out: &'o mut Vec<u8>,
}

impl<'de> serde::de::DeserializeSeed<'de> for Canon<'_> {
    type Value = ();
    fn deserialize<D: serde::Deserializer<'de>>(self, d: D) -> Result<(), D::Error> {
        d.deserialize_any(self)
    }
}

impl<'de> serde::de::Visitor<'de> for Canon<'_> {
    type Value = ();

    fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
        f.write_str("a JSON value")
    }
    fn visit_unit<E>(self) -> Result<(), E> {
        self.out.extend_from_slice(b"null");
        Ok(())
    }
    fn visit_bool<E>(self, v: bool) -> Result<(), E> {
        self.out.extend_from_slice(if v { b"true" } else { b"false" });
        Ok(())
    }
    fn visit_i64<E>(self, v: i64) -> Result<(), E> {
        self.out.extend_from_slice(v.to_string().as_bytes());
        Ok(())
    }
    fn visit_u64<E>(self, v: u64) -> Result<(), E> {
        self.out.extend_from_slice(v.to_string().as_bytes());
        Ok(())
    }
    fn visit_f64<E>(self, v: f64) -> Result<(), E> {
        self.out.extend_from_slice(es_number(v).as_bytes());
        Ok(())
    }
    fn visit_str<E>(self, v: &str) -> Result<(), E> {
        write_string(v, self.out);
        Ok(())
    }
    fn visit_seq<A: serde::de::SeqAccess<'de>>(self, mut seq: A) -> Result<(), A::Error> {
        self.out.push(b'[');
        let mut first = true;
        loop {
            let at = self.out.len();
            if !first {
                self.out.push(b',');
            }
            if seq.next_element_seed(Canon { out: &mut *self.out })?.is_none() {
                self.out.truncate(at);
                break;
            }
            first = false;
        }
        self.out.push(b']');
        Ok(())
    }
    fn visit_map<A: serde::de::MapAccess<'de>>(self, mut map: A) -> Result<(), A::Error> {
        self.out.push(b'{');
        let mut previous: Option<std::borrow::Cow<'de, str>> = None;
        while let Some(key) = map.next_key_seed(KeySeed)? {
            if let Some(p) = &previous {
                if p.encode_utf16().cmp(key.encode_utf16()) != std::cmp::Ordering::Less {
                    return Err(serde::de::Error::custom("members out of canonical order"));
                }
                self.out.push(b',');
            }
            write_string(&key, self.out);
            self.out.push(b':');
            map.next_value_seed(Canon { out: &mut *self.out })?;
            previous = Some(key);
        }
        self.out.push(b'}');
        Ok(())
    }
}

/// An object member name, borrowed from the input when it has no escapes.
struct KeySeed;

impl<'de> serde::de::DeserializeSeed<'de> for KeySeed {
    type Value = std::borrow::Cow<'de, str>;
    fn deserialize<D: serde::Deserializer<'de>>(self, d: D) -> Result<Self::Value, D::Error> {
        d.deserialize_str(self)
    }
}

impl<'de> serde::de::Visitor<'de> for KeySeed {
    type Value = std::borrow::Cow<'de, str>;
    fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
        f.write_str("a member name")
    }
    fn visit_borrowed_str<E>(self, v: &'de str) -> Result<Self::Value, E> {
        Ok(std::borrow::Cow::Borrowed(v))
    }
    fn visit_str<E>(self, v: &str) -> Result<Self::Value, E> {
        Ok(std::borrow::Cow::Owned(v.to_string()))
    }
}

/// Appends the canonical form of a JSON string.
pub fn write_string(s: &str, out: &mut Vec<u8>) {
    out.push(b'"');
    for c in s.chars() {
        match c {
            '"' => out.extend_from_slice(b"\\\""),
            '\\' => out.extend_from_slice(b"\\\\"),
            '\u{8}' => out.extend_from_slice(b"\\b"),
            '\t' => out.extend_from_slice(b"\\t"),
            '\n' => out.extend_from_slice(b"\\n"),
            '\u{c}' => out.extend_from_slice(b"\\f"),
            '\r' => out.extend_from_slice(b"\\r"),
            c if (c as u32) < 0x20 => out.extend_from_slice(format!("\\u{:04x}", c as u32).as_bytes()),
            c => {
                let mut buf = [0u8; 4];
                out.extend_from_slice(c.encode_utf8(&mut buf).as_bytes());
            }
        }
    }
    out.push(b'"');
}

fn write_number(n: &serde_json::Number, out: &mut Vec<u8>) {
    // Integers exactly (see the module note); within ±2^53 this is also
    // what RFC 8785 writes.
    if let Some(i) = n.as_i64() {
        out.extend_from_slice(i.to_string().as_bytes());
    } else if let Some(u) = n.as_u64() {
        out.extend_from_slice(u.to_string().as_bytes());
    } else {
        out.extend_from_slice(es_number(n.as_f64().unwrap_or(0.0)).as_bytes());
    }
}

/// ECMAScript's Number::toString for a finite double.
pub fn es_number(f: f64) -> String {
    if f == 0.0 {
        return "0".into();
    }
    let sign = if f < 0.0 { "-" } else { "" };
    // Rust's `{:e}` is the shortest representation that round-trips.
    let sci = format!("{:e}", f.abs());
    let (mantissa, exp) = sci.split_once('e').unwrap_or((&sci, "0"));
    let digits: String = mantissa.chars().filter(|c| *c != '.').collect();
    let exp: i32 = exp.parse().unwrap_or(0);
    let k = digits.len() as i32;
    let n = exp + 1;
    let body = if k <= n && n <= 21 {
        format!("{digits}{}", "0".repeat((n - k) as usize))
    } else if 0 < n && n <= 21 {
        format!("{}.{}", &digits[..n as usize], &digits[n as usize..])
    } else if -6 < n && n <= 0 {
        format!("0.{}{digits}", "0".repeat((-n) as usize))
    } else {
        let e = n - 1;
        let e = if e >= 0 { format!("+{e}") } else { e.to_string() };
        if k == 1 {
            format!("{digits}e{e}")
        } else {
            format!("{}.{}e{e}", &digits[..1], &digits[1..])
        }
    };
    format!("{sign}{body}")
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn canon(v: &Value) -> String {
        String::from_utf8(to_vec(v)).unwrap()
    }

    #[test]
    fn rfc8785_sorting_and_escaping() {
        // Member order by UTF-16 code units (RFC 8785 §3.2.3's example keys).
        let v: Value = serde_json::from_str(
            r#"{"\u20ac": "Euro Sign", "\r": "Carriage Return", "\ufb33": "Hebrew Letter Dalet With Dagesh",
                "1": "One", "\ud83d\ude00": "Emoji: Grinning Face", "\u0080": "Control", "\u00f6": "Latin Small Letter O With Diaeresis"}"#,
        )
        .unwrap();
        assert_eq!(
            canon(&v),
            "{\"\\r\":\"Carriage Return\",\"1\":\"One\",\"\u{80}\":\"Control\",\"\u{f6}\":\"Latin Small Letter O With Diaeresis\",\"\u{20ac}\":\"Euro Sign\",\"\u{1f600}\":\"Emoji: Grinning Face\",\"\u{fb33}\":\"Hebrew Letter Dalet With Dagesh\"}"
        );
        assert_eq!(
            canon(&json!("\u{7}\u{1f}\"\\/\u{2028}é")),
            "\"\\u0007\\u001f\\\"\\\\/\u{2028}é\""
        );
        assert_eq!(
            canon(&json!({"b": [1, {"d": true, "c": null}], "a": "x"})),
            r#"{"a":"x","b":[1,{"c":null,"d":true}]}"#
        );
    }

    #[test]
    fn numbers_follow_ecmascript_and_large_integers_stay_exact() {
        let cases: [(f64, &str); 12] = [
            (0.0, "0"),
            (-0.0, "0"),
            (1.0, "1"),
            (-1.5, "-1.5"),
            (0.1, "0.1"),
            (1e21, "1e+21"),
            (1e20, "100000000000000000000"),
            (1.5e-7, "1.5e-7"),
            (0.000001, "0.000001"),
            (123456789.125, "123456789.125"),
            (5e-324, "5e-324"),
            (1.7976931348623157e308, "1.7976931348623157e+308"),
        ];
        for (f, want) in cases {
            assert_eq!(es_number(f), want, "{f}");
        }
        assert_eq!(canon(&json!(1795308111311231335u64)), "1795308111311231335");
        assert_eq!(canon(&json!(-9007199254740993i64)), "-9007199254740993");
        assert_eq!(canon(&json!(2.5)), "2.5");
    }

    #[test]
    fn the_canonical_check_agrees_with_the_encoder() {
        let samples = [
            json!({"b": [1, 2.5, -3, 1e21, 1.5e-7, "x\u{1}\n", null, true], "a": {"é": 1, "z": {}}, "": []}),
            json!({"now_ns": 1795308111311231335u64, "neg": -9007199254740993i64, "s": "\u{2028}\"\\"}),
            json!([]),
            json!("plain"),
        ];
        for v in samples {
            let bytes = to_vec(&v);
            assert!(is_canonical(&bytes), "{}", String::from_utf8_lossy(&bytes));
        }
        for not in [
            &br#"{"b":1,"a":2}"#[..],
            br#"{"a":1,"a":1}"#,
            br#"{"a": 1}"#,
            br#"[1,2 ]"#,
            br#"{"a":1.0}"#,
            br#"{"a":"\u00e9"}"#,
            br#"{"a":1e400}"#,
            br#"{"a":01}"#,
            br#"{"a":1}x"#,
            br#"{"a":-0}"#,
        ] {
            assert!(!is_canonical(not), "{}", String::from_utf8_lossy(not));
        }
    }
}
