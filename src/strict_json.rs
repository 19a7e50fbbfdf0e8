//! Untrusted JSON, checked in one pass before anything else reads it.
//!
//! Every JSON document a caller sends (request bodies, NDJSON lines, bundle
//! data documents) passes [`check`] before it is parsed into anything. What
//! passes is a document whose meaning is the same for every reader Warden
//! has — serde_json, regorus, the ledger's canonical form — so that what
//! the policy evaluates and what the evidence records is exactly what was
//! sent. What does not pass is refused with the JSON Pointer (RFC 6901) of
//! the first fault:
//!
//! - **Numbers.** An integer (a number written without fraction or
//!   exponent) must lie in [-2^63, 2^64 - 1]: those are kept exactly, digit
//!   for digit, by evaluation and by the evidence. Any other number is an
//!   IEEE double and must be finite and, if written non-zero, must not round
//!   to zero. A number's text is at most [`MAX_NUMBER_CHARS`] characters.
//!   Nothing is ever expanded from an exponent.
//! - **Duplicate member names** (compared after unescaping) are refused: a
//!   reader would keep one value and the evidence could not show the other.
//! - **Text** must be valid Unicode: UTF-8, and `\u` escapes that pair
//!   surrogates correctly.
//! - **Reserved member names**: serde's private number and raw-value
//!   markers, which some readers interpret as instructions instead of data.
//! - **Depth**: at most `max_depth` nested arrays and objects.
//!
//! Invariant: no IO, no allocation proportional to the input beyond the
//! member names of the objects being walked; recursion is bounded by
//! `max_depth`.

use std::borrow::Cow;
use std::collections::HashSet;
use std::fmt;

/// The longest number text accepted, in characters. Long enough for every
/// double written in full (`0.1000000000000000055511151231257827021181583404541015625`
/// is 57), far too short to describe anything expensive.
pub const MAX_NUMBER_CHARS: usize = 100;

/// Member names that serde-based readers treat as markers, not data.
const RESERVED_NAMES: [&str; 2] = ["$serde_json::private::Number", "$serde_json::private::RawValue"];

/// What is wrong with a document.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FaultKind {
    /// Not JSON at all (RFC 8259).
    Syntax,
    /// Nested deeper than allowed.
    TooDeep,
    /// An object names the same member twice.
    DuplicateMember,
    /// A string is not valid Unicode (a lone surrogate, invalid UTF-8).
    InvalidUnicode,
    /// A member name reserved for reader markers.
    ReservedMember,
    /// An integer outside 64 bits, or a number no double can hold.
    NumberOutOfRange,
    /// A number written with more than [`MAX_NUMBER_CHARS`] characters.
    NumberTooLong,
}

impl FaultKind {
    /// The stable problem code of this fault.
    pub fn code(self) -> &'static str {
        match self {
            FaultKind::Syntax => "malformed_json",
            FaultKind::TooDeep => "json_too_deep",
            FaultKind::DuplicateMember => "duplicate_member",
            FaultKind::InvalidUnicode => "invalid_unicode",
            FaultKind::ReservedMember => "reserved_member_name",
            FaultKind::NumberOutOfRange => "number_out_of_range",
            FaultKind::NumberTooLong => "number_too_long",
        }
    }
}

/// The first fault of a document: what, where (a JSON Pointer, `""` for the
/// whole document), and a message saying what to fix.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Fault {
    pub kind: FaultKind,
    pub pointer: String,
    pub message: String,
}

impl fmt::Display for Fault {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.pointer.is_empty() {
            write!(f, "{}", self.message)
        } else {
            write!(f, "at {}: {}", self.pointer, self.message)
        }
    }
}

/// Checks one JSON document (surrounding whitespace allowed).
pub fn check(bytes: &[u8], max_depth: usize) -> Result<(), Fault> {
    let mut c = Checker {
        b: bytes,
        i: 0,
        max_depth,
        path: Vec::new(),
    };
    c.ws();
    c.value(0)?;
    c.ws();
    if c.i < c.b.len() {
        return Err(c.syntax("unexpected text after the JSON document"));
    }
    Ok(())
}

enum Segment<'a> {
    Member(Cow<'a, str>),
    Index(usize),
}

struct Checker<'a> {
    b: &'a [u8],
    i: usize,
    max_depth: usize,
    path: Vec<Segment<'a>>,
}

impl<'a> Checker<'a> {
    fn ws(&mut self) {
        while let Some(b' ' | b'\t' | b'\n' | b'\r') = self.b.get(self.i) {
            self.i += 1;
        }
    }

    fn pointer(&self) -> String {
        let mut out = String::new();
        for s in &self.path {
            out.push('/');
            match s {
                Segment::Index(n) => out.push_str(&n.to_string()),
                Segment::Member(name) => {
                    for ch in name.chars() {
                        match ch {
                            '~' => out.push_str("~0"),
                            '/' => out.push_str("~1"),
                            c => out.push(c),
                        }
                    }
                }
            }
        }
        out
    }

    fn fault(&self, kind: FaultKind, message: impl Into<String>) -> Fault {
        Fault {
            kind,
            pointer: self.pointer(),
            message: message.into(),
        }
    }

    fn syntax(&self, what: &str) -> Fault {
        let upto = &self.b[..self.i.min(self.b.len())];
        let line = upto.iter().filter(|b| **b == b'\n').count() + 1;
        let column = upto.iter().rev().take_while(|b| **b != b'\n').count() + 1;
        self.fault(
            FaultKind::Syntax,
            format!("not valid JSON: {what} at line {line} column {column}"),
        )
    }

    fn value(&mut self, depth: usize) -> Result<(), Fault> {
        match self.b.get(self.i) {
            Some(b'{') => self.object(depth + 1),
            Some(b'[') => self.array(depth + 1),
            Some(b'"') => self.string().map(drop),
            Some(b'-' | b'0'..=b'9') => self.number(),
            Some(b't') => self.literal(b"true"),
            Some(b'f') => self.literal(b"false"),
            Some(b'n') => self.literal(b"null"),
            Some(_) => Err(self.syntax("expected a value")),
            None => Err(self.syntax("unexpected end of input, expected a value")),
        }
    }

    fn enter(&self, depth: usize) -> Result<(), Fault> {
        if depth > self.max_depth {
            return Err(self.fault(
                FaultKind::TooDeep,
                format!(
                    "the document nests deeper than {} levels (limits.max_json_depth)",
                    self.max_depth
                ),
            ));
        }
        Ok(())
    }

    fn literal(&mut self, word: &[u8]) -> Result<(), Fault> {
        if self.b[self.i..].starts_with(word) {
            self.i += word.len();
            Ok(())
        } else {
            Err(self.syntax("expected true, false or null"))
        }
    }

    fn array(&mut self, depth: usize) -> Result<(), Fault> {
        self.enter(depth)?;
        self.i += 1;
        self.ws();
        if self.b.get(self.i) == Some(&b']') {
            self.i += 1;
            return Ok(());
        }
        let mut index = 0usize;
        loop {
            self.path.push(Segment::Index(index));
            self.ws();
            self.value(depth)?;
            self.path.pop();
            self.ws();
            match self.b.get(self.i) {
                Some(b',') => {
                    self.i += 1;
                    index += 1;
                }
                Some(b']') => {
                    self.i += 1;
                    return Ok(());
                }
                _ => return Err(self.syntax("expected `,` or `]` in an array")),
            }
        }
    }

    fn object(&mut self, depth: usize) -> Result<(), Fault> {
        self.enter(depth)?;
        self.i += 1;
        self.ws();
        if self.b.get(self.i) == Some(&b'}') {
            self.i += 1;
            return Ok(());
        }
        // Names seen so far: a short list scanned in order, turned into a
        // set once the object is large.
        let mut few: Vec<Cow<'a, str>> = Vec::new();
        let mut many: Option<HashSet<Cow<'a, str>>> = None;
        loop {
            self.ws();
            if self.b.get(self.i) != Some(&b'"') {
                return Err(self.syntax("expected a member name in double quotes"));
            }
            let name = self.string()?;
            if RESERVED_NAMES.contains(&name.as_ref()) {
                self.path.push(Segment::Member(name));
                return Err(self.fault(
                    FaultKind::ReservedMember,
                    "this member name is reserved; rename the member",
                ));
            }
            let duplicate = match &mut many {
                Some(set) => !set.insert(name.clone()),
                None => {
                    let dup = few.contains(&name);
                    if !dup {
                        few.push(name.clone());
                        if few.len() > 16 {
                            many = Some(few.drain(..).collect());
                        }
                    }
                    dup
                }
            };
            self.path.push(Segment::Member(name));
            if duplicate {
                return Err(self.fault(
                    FaultKind::DuplicateMember,
                    "this member is named twice in its object; send each member once",
                ));
            }
            self.ws();
            if self.b.get(self.i) != Some(&b':') {
                return Err(self.syntax("expected `:` after a member name"));
            }
            self.i += 1;
            self.ws();
            self.value(depth)?;
            self.path.pop();
            self.ws();
            match self.b.get(self.i) {
                Some(b',') => self.i += 1,
                Some(b'}') => {
                    self.i += 1;
                    return Ok(());
                }
                _ => return Err(self.syntax("expected `,` or `}` in an object")),
            }
        }
    }

    /// A string starting at `"`; its decoded text (borrowed when it has no
    /// escapes).
    fn string(&mut self) -> Result<Cow<'a, str>, Fault> {
        let b = self.b;
        self.i += 1;
        let start = self.i;
        let mut decoded: Option<String> = None;
        let mut plain_from = start;
        loop {
            let Some(&c) = b.get(self.i) else {
                return Err(self.syntax("unterminated string"));
            };
            match c {
                b'"' => {
                    let tail = self.utf8(&b[plain_from..self.i])?;
                    self.i += 1;
                    return Ok(match decoded {
                        None => Cow::Borrowed(tail),
                        Some(mut s) => {
                            s.push_str(tail);
                            Cow::Owned(s)
                        }
                    });
                }
                b'\\' => {
                    let head = self.utf8(&b[plain_from..self.i])?;
                    let s = decoded.get_or_insert_with(String::new);
                    s.push_str(head);
                    self.i += 1;
                    let simple = match b.get(self.i) {
                        Some(b'"') => Some('"'),
                        Some(b'\\') => Some('\\'),
                        Some(b'/') => Some('/'),
                        Some(b'b') => Some('\u{8}'),
                        Some(b'f') => Some('\u{c}'),
                        Some(b'n') => Some('\n'),
                        Some(b'r') => Some('\r'),
                        Some(b't') => Some('\t'),
                        Some(b'u') => None,
                        _ => return Err(self.syntax("invalid escape in a string")),
                    };
                    let ch = match simple {
                        Some(ch) => {
                            self.i += 1;
                            ch
                        }
                        None => {
                            self.i += 1;
                            self.unicode_escape()?
                        }
                    };
                    s.push(ch);
                    plain_from = self.i;
                }
                0x00..=0x1F => return Err(self.syntax("a control character inside a string must be escaped")),
                _ => self.i += 1,
            }
        }
    }

    /// The character of a `\\u` escape whose digits start at `self.i`
    /// (a surrogate pair takes two escapes); advances past it.
    fn unicode_escape(&mut self) -> Result<char, Fault> {
        let unit = self.hex4()?;
        match unit {
            0xD800..=0xDBFF => {
                if self.b.get(self.i) != Some(&b'\\') || self.b.get(self.i + 1) != Some(&b'u') {
                    return Err(self.unicode("a high surrogate escape not followed by a low one"));
                }
                self.i += 2;
                let low = self.hex4()?;
                if !(0xDC00..=0xDFFF).contains(&low) {
                    return Err(self.unicode("a high surrogate escape not followed by a low one"));
                }
                let code = 0x10000 + ((u32::from(unit) - 0xD800) << 10) + (u32::from(low) - 0xDC00);
                Ok(char::from_u32(code).expect("a surrogate pair is a scalar value"))
            }
            0xDC00..=0xDFFF => Err(self.unicode("a low surrogate escape without a high one before it")),
            _ => Ok(char::from_u32(u32::from(unit)).expect("not a surrogate")),
        }
    }

    fn unicode(&self, what: &str) -> Fault {
        self.fault(
            FaultKind::InvalidUnicode,
            format!("a string holds {what}: text must be valid Unicode"),
        )
    }

    fn utf8(&self, raw: &'a [u8]) -> Result<&'a str, Fault> {
        std::str::from_utf8(raw).map_err(|_| self.unicode("bytes that are not UTF-8"))
    }

    /// Four hex digits of a `\u` escape; advances past them.
    fn hex4(&mut self) -> Result<u16, Fault> {
        let digits = self
            .b
            .get(self.i..self.i + 4)
            .ok_or_else(|| self.syntax("a \\u escape needs four hex digits"))?;
        let mut v: u16 = 0;
        for d in digits {
            let n = (*d as char)
                .to_digit(16)
                .ok_or_else(|| self.syntax("a \\u escape needs four hex digits"))?;
            v = (v << 4) | n as u16;
        }
        self.i += 4;
        Ok(v)
    }

    fn number(&mut self) -> Result<(), Fault> {
        let b = self.b;
        let start = self.i;
        let digits = |i: &mut usize| {
            let from = *i;
            while b.get(*i).is_some_and(u8::is_ascii_digit) {
                *i += 1;
            }
            *i - from
        };
        let mut i = self.i;
        if b.get(i) == Some(&b'-') {
            i += 1;
        }
        let int_from = i;
        let int_digits = digits(&mut i);
        if int_digits == 0 {
            self.i = i;
            return Err(self.syntax("a number needs digits"));
        }
        if int_digits > 1 && b[int_from] == b'0' {
            self.i = int_from + 1;
            return Err(self.syntax("a number may not start with 0"));
        }
        let mut integer = true;
        if b.get(i) == Some(&b'.') {
            i += 1;
            integer = false;
            if digits(&mut i) == 0 {
                self.i = i;
                return Err(self.syntax("a decimal point needs digits after it"));
            }
        }
        if let Some(b'e' | b'E') = b.get(i) {
            i += 1;
            integer = false;
            if let Some(b'+' | b'-') = b.get(i) {
                i += 1;
            }
            if digits(&mut i) == 0 {
                self.i = i;
                return Err(self.syntax("an exponent needs digits"));
            }
        }
        self.i = i;
        let text = std::str::from_utf8(&b[start..i]).expect("ASCII digits and signs");
        if text.len() > MAX_NUMBER_CHARS {
            return Err(self.fault(
                FaultKind::NumberTooLong,
                format!(
                    "a number written with {} characters; at most {MAX_NUMBER_CHARS} are accepted",
                    text.len()
                ),
            ));
        }
        if integer {
            let fits = if text.starts_with('-') {
                text.parse::<i64>().is_ok()
            } else {
                text.parse::<u64>().is_ok()
            };
            if !fits {
                return Err(self.fault(
                    FaultKind::NumberOutOfRange,
                    format!(
                        "the integer {text} is outside 64 bits ({} to {}); integers are kept exactly only within them, \
                         so send a larger one as a string",
                        i64::MIN,
                        u64::MAX
                    ),
                ));
            }
            return Ok(());
        }
        let v: f64 = text.parse().expect("a valid JSON number parses as f64");
        if !v.is_finite() {
            return Err(self.fault(
                FaultKind::NumberOutOfRange,
                format!("the number {text} is beyond the range of a double; send it as a string"),
            ));
        }
        let mantissa = text.split(['e', 'E']).next().unwrap_or(text);
        if v == 0.0 && mantissa.bytes().any(|d| matches!(d, b'1'..=b'9')) {
            return Err(self.fault(
                FaultKind::NumberOutOfRange,
                format!("the number {text} is too small for a double and would become 0; send it as a string"),
            ));
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn fault(doc: &str) -> Fault {
        check(doc.as_bytes(), 64).expect_err(doc)
    }

    #[test]
    fn ordinary_documents_pass() {
        for doc in [
            "{}",
            "[]",
            " {\"a\": [1, -2, 3.5, 1e10, -0, 0.0, true, false, null, \"x\"]} ",
            "\"\\u00e9\\ud83d\\ude00 \\\" \\\\ \\/ \\b\\f\\n\\r\\t\"",
            "18446744073709551615",
            "-9223372036854775808",
            "1.7976931348623157e308",
            "5e-324",
            "{\"a\": {\"a\": 1}, \"b\": [{\"a\": 1}, {\"a\": 2}]}",
            "\"é — 😀\"",
        ] {
            check(doc.as_bytes(), 64).unwrap_or_else(|f| panic!("{doc}: {f}"));
        }
    }

    #[test]
    fn integers_past_64_bits_are_refused_with_their_pointer() {
        let f = fault(r#"{"f": 123456789012345678901234567890}"#);
        assert_eq!((f.kind, f.pointer.as_str()), (FaultKind::NumberOutOfRange, "/f"));
        let f = fault("[1, 18446744073709551616]");
        assert_eq!((f.kind, f.pointer.as_str()), (FaultKind::NumberOutOfRange, "/1"));
        let f = fault("-9223372036854775809");
        assert_eq!((f.kind, f.pointer.as_str()), (FaultKind::NumberOutOfRange, ""));
    }

    #[test]
    fn numbers_that_no_double_holds_are_refused_and_nothing_is_expanded() {
        assert_eq!(fault("1e200000000").kind, FaultKind::NumberOutOfRange);
        assert_eq!(fault("-1e400").kind, FaultKind::NumberOutOfRange);
        assert_eq!(fault("1e-400").kind, FaultKind::NumberOutOfRange);
        // Zero written with an exponent is still zero.
        check(b"0e-400", 64).unwrap();
        let long = format!("1.{}", "0".repeat(MAX_NUMBER_CHARS));
        assert_eq!(fault(&long).kind, FaultKind::NumberTooLong);
    }

    #[test]
    fn the_number_marker_is_refused_wherever_it_appears() {
        let f = fault(r#"{"path": "a", "input": {"x": {"$serde_json::private::Number": "1e200000000"}}}"#);
        assert_eq!(f.kind, FaultKind::ReservedMember);
        assert_eq!(f.pointer, "/input/x/$serde_json::private::Number");
        let f = fault(r#"[{"a": 1, "$serde_json::private::RawValue": "1"}]"#);
        assert_eq!(f.kind, FaultKind::ReservedMember);
    }

    #[test]
    fn duplicate_members_are_refused_after_unescaping() {
        let f = fault(r#"{"dup": 1, "dup": 2}"#);
        assert_eq!((f.kind, f.pointer.as_str()), (FaultKind::DuplicateMember, "/dup"));
        let f = fault(r#"{"a": {"x": 1, "\u0078": 2}}"#);
        assert_eq!((f.kind, f.pointer.as_str()), (FaultKind::DuplicateMember, "/a/x"));
        // Past the short list, the set finds them too.
        let mut doc = String::from("{");
        for n in 0..40 {
            doc.push_str(&format!("\"k{n}\": {n},"));
        }
        doc.push_str("\"k3\": 0}");
        let f = fault(&doc);
        assert_eq!((f.kind, f.pointer.as_str()), (FaultKind::DuplicateMember, "/k3"));
        // The same name in sibling objects is no duplicate.
        check(br#"[{"a": 1}, {"a": 2}]"#, 64).unwrap();
    }

    #[test]
    fn lone_surrogates_are_refused_with_their_pointer() {
        let f = fault(r#"{"s": ["ok", "\ud800"]}"#);
        assert_eq!((f.kind, f.pointer.as_str()), (FaultKind::InvalidUnicode, "/s/1"));
        assert_eq!(fault(r#""\udc00""#).kind, FaultKind::InvalidUnicode);
        assert_eq!(fault(r#""\ud800\u0041""#).kind, FaultKind::InvalidUnicode);
        assert_eq!(check(b"\"\xff\"", 64).unwrap_err().kind, FaultKind::InvalidUnicode);
    }

    #[test]
    fn pointers_escape_tilde_and_slash() {
        let f = fault(r#"{"a/b": {"c~d": [0, {"e": 1, "e": 2}]}}"#);
        assert_eq!(f.pointer, "/a~1b/c~0d/1/e");
    }

    #[test]
    fn depth_is_bounded_before_descending() {
        assert!(check(b"[[[1]]]", 3).is_ok());
        let f = check(b"[[[[1]]]]", 3).unwrap_err();
        assert_eq!((f.kind, f.pointer.as_str()), (FaultKind::TooDeep, "/0/0/0"));
        // Deep text inside strings is only text.
        assert!(check(br#"{"a": "[[[[[[[[[["}"#, 2).is_ok());
        // A very deep document costs no stack.
        let deep = "[".repeat(1_000_000);
        assert_eq!(check(deep.as_bytes(), 64).unwrap_err().kind, FaultKind::TooDeep);
    }

    #[test]
    fn syntax_errors_name_line_and_column() {
        for doc in [
            "",
            "{",
            "[1,]",
            "{\"a\" 1}",
            "01",
            "1.",
            "1e",
            "-",
            "tru",
            "\"a",
            "\"\\x\"",
            "{\"a\":1}x",
            "\"\u{1}\"",
            "{1: 2}",
            "[1 2]",
            "\"\\u12\"",
        ] {
            let f = fault(doc);
            assert_eq!(f.kind, FaultKind::Syntax, "{doc:?}: {f}");
        }
        assert!(fault("{\n  \"a\": tru\n}").message.contains("line 2"));
    }

    #[test]
    fn what_passes_serde_json_reads_and_what_fails_syntax_serde_json_refuses() {
        for doc in ["{\"a\":[1,2,{\"b\":null}]}", "\"\\u00e9\"", "[]", "-0.5e-3"] {
            check(doc.as_bytes(), 64).unwrap();
            serde_json::from_str::<serde_json::Value>(doc).unwrap();
        }
        for doc in ["[1,]", "{\"a\" 1}", "01", "nul"] {
            assert!(serde_json::from_str::<serde_json::Value>(doc).is_err());
        }
    }
}
