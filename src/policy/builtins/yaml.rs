//! `yaml.unmarshal`, `yaml.marshal` and `yaml.is_valid` as OPA computes them.
//!
//! OPA goes through JSON with Go's `yaml.v2`, a YAML 1.1 library:
//!
//! - **Reading**, each plain scalar is resolved by YAML 1.1's rules: `yes`,
//!   `no`, `on`, `off`, `y`, `n` (in three casings) are booleans; `0x1F`,
//!   `0o17`, `017` and `0b101` are integers, `_` is ignored in numbers;
//!   `.inf` and `.nan` are floats (which JSON cannot hold: an error). A
//!   quoted or block scalar is a string. Map keys become strings (`1: a`
//!   is `{"1": "a"}`); a later duplicate key wins; `<<` merges a map (or a
//!   list of maps) into the map it is in. Only the first document counts.
//! - **Writing**, the value's JSON is read back as above and written in
//!   block style with keys in `yaml.v2`'s order (digits compared as
//!   numbers), two-space indentation, lines folded after column 80 at a
//!   space. A string is written plain unless it would read back as
//!   something else (`"yes"`, `"1"`, `""`) or holds what plain text
//!   cannot (`'a: b'`), following libyaml's analysis of a scalar; text with
//!   a line break is a literal block (`|-`).
//!
//! YAML is parsed by `saphyr-parser` (events with each scalar's style);
//! resolving and writing are Warden's own. Input may come from an
//! attacker: nodes (aliases counted at their full size, so a "billion
//! laughs" document fails), nesting and output are bounded.

use std::collections::HashMap;

use regorus::Value;
use saphyr_parser::{Event, Parser, ScalarStyle, Span, StrInput, Tag};

use super::{Answer, Builtin, operand, sprintf::go_float};

pub(super) const BUILTINS: &[(&str, u8, Builtin)] = &[
    ("yaml.unmarshal", 1, unmarshal),
    ("yaml.marshal", 1, marshal),
    ("yaml.is_valid", 1, is_valid),
];

/// Most nodes one document may expand to, aliases counted in full.
const MAX_NODES: usize = 1_000_000;
/// Deepest nesting of sequences and maps.
const MAX_DEPTH: usize = 512;
/// Longest text `yaml.marshal` writes.
const MAX_OUTPUT: usize = 64 * 1024 * 1024;

fn unmarshal(args: &[Value]) -> Answer {
    let Value::String(text) = &args[0] else {
        return Err(operand("yaml.unmarshal", 1, "string", &args[0]));
    };
    read(text).map_err(|e| anyhow::anyhow!("yaml.unmarshal: {e}"))
}

fn is_valid(args: &[Value]) -> Answer {
    Ok(Value::from(match &args[0] {
        Value::String(text) => read(text).is_ok(),
        _ => false,
    }))
}

fn marshal(args: &[Value]) -> Answer {
    let node = from_value(&args[0], 0).map_err(|e| anyhow::anyhow!("yaml.marshal: {e}"))?;
    let mut w = Writer::default();
    w.document(&node);
    if w.out.len() > MAX_OUTPUT {
        anyhow::bail!("yaml.marshal: the document would exceed {MAX_OUTPUT} bytes");
    }
    Ok(Value::from(w.out))
}

// ---------------------------------------------------------------------------
// Resolving scalars (YAML 1.1, as yaml.v2 does)
// ---------------------------------------------------------------------------

/// A node as yaml.v2 decodes it.
#[derive(Debug, Clone, PartialEq)]
enum Node {
    Null,
    Bool(bool),
    Int(i64),
    UInt(u64),
    Float(f64),
    Str(String),
    Seq(Vec<Node>),
    /// Keys already as JSON object keys, in document order; the last of
    /// equal keys wins when converted.
    Map(Vec<(String, Node)>),
}

/// What a plain scalar means, or `Merge` for `<<`.
#[derive(Debug, Clone, PartialEq)]
enum Resolved {
    Node(Node),
    Merge,
}

/// yaml.v2's `resolve` for an untagged plain scalar.
fn resolve_plain(s: &str) -> Resolved {
    let node = match s {
        "" | "~" | "null" | "Null" | "NULL" => Node::Null,
        "y" | "Y" | "yes" | "Yes" | "YES" | "on" | "On" | "ON" | "true" | "True" | "TRUE" => Node::Bool(true),
        "n" | "N" | "no" | "No" | "NO" | "off" | "Off" | "OFF" | "false" | "False" | "FALSE" => Node::Bool(false),
        ".nan" | ".NaN" | ".NAN" => Node::Float(f64::NAN),
        ".inf" | ".Inf" | ".INF" | "+.inf" | "+.Inf" | "+.INF" => Node::Float(f64::INFINITY),
        "-.inf" | "-.Inf" | "-.INF" => Node::Float(f64::NEG_INFINITY),
        "<<" => return Resolved::Merge,
        _ => match s.as_bytes()[0] {
            b'.' => match go_parse_float(s) {
                Some(f) => Node::Float(f),
                None => Node::Str(s.to_string()),
            },
            b'0'..=b'9' | b'+' | b'-' => number(s).unwrap_or_else(|| Node::Str(s.to_string())),
            _ => Node::Str(s.to_string()),
        },
    };
    Resolved::Node(node)
}

/// An integer or float as yaml.v2 reads one (`_` ignored), if it is one.
fn number(s: &str) -> Option<Node> {
    let plain = s.replace('_', "");
    if let Some(i) = go_parse_int(&plain) {
        return Some(i);
    }
    if is_yaml_float(&plain)
        && let Some(f) = go_parse_float(&plain)
    {
        return Some(Node::Float(f));
    }
    let (negative, digits) = match plain.strip_prefix("-0b") {
        Some(d) => (true, d),
        None => (false, plain.strip_prefix("0b")?),
    };
    let magnitude = u64::from_str_radix(digits, 2).ok()?;
    if negative {
        let v = -i128::from(magnitude);
        i64::try_from(v).ok().map(Node::Int)
    } else {
        Some(i64::try_from(magnitude).map_or(Node::UInt(magnitude), Node::Int))
    }
}

/// Go's `strconv.ParseInt(s, 0, 64)`, then `ParseUint(s, 0, 64)`: an
/// optional sign, then `0x`/`0o`/`0b` with that base, a leading `0` for
/// octal, or decimal digits.
fn go_parse_int(s: &str) -> Option<Node> {
    let (negative, rest) = match s.as_bytes().first()? {
        b'-' => (true, &s[1..]),
        b'+' => (false, &s[1..]),
        _ => (false, s),
    };
    let lower = rest.get(..2).map(str::to_ascii_lowercase);
    let (radix, digits) = match lower.as_deref() {
        Some("0x") => (16, &rest[2..]),
        Some("0o") => (8, &rest[2..]),
        Some("0b") => (2, &rest[2..]),
        _ if rest.len() > 1 && rest.starts_with('0') => (8, &rest[1..]),
        _ => (10, rest),
    };
    if digits.is_empty() || !digits.chars().all(|c| c.is_digit(radix)) {
        return None;
    }
    let magnitude = u64::from_str_radix(digits, radix).ok()?;
    if negative {
        i64::try_from(-i128::from(magnitude)).ok().map(Node::Int)
    } else {
        Some(i64::try_from(magnitude).map_or(Node::UInt(magnitude), Node::Int))
    }
}

/// The float syntax of yaml.v2 and yaml.v3 alike:
/// `^[-+]?(\.[0-9]+|[0-9]+(\.[0-9]*)?)([eE][-+]?[0-9]+)?$`.
pub(crate) fn is_yaml_float(s: &str) -> bool {
    let b = s.as_bytes();
    let mut i = usize::from(matches!(b.first(), Some(b'-' | b'+')));
    let digits = |i: &mut usize| {
        let start = *i;
        while b.get(*i).is_some_and(u8::is_ascii_digit) {
            *i += 1;
        }
        *i > start
    };
    if b.get(i) == Some(&b'.') {
        i += 1;
        if !digits(&mut i) {
            return false;
        }
    } else {
        if !digits(&mut i) {
            return false;
        }
        if b.get(i) == Some(&b'.') {
            i += 1;
            digits(&mut i);
        }
    }
    if matches!(b.get(i), Some(b'e' | b'E')) {
        i += 1;
        if matches!(b.get(i), Some(b'-' | b'+')) {
            i += 1;
        }
        if !digits(&mut i) {
            return false;
        }
    }
    i == b.len()
}

/// Go's `strconv.ParseFloat(s, 64)` for the texts reaching it: a value out
/// of a double's range is an error there, not an infinity.
fn go_parse_float(s: &str) -> Option<f64> {
    let lower = s.to_ascii_lowercase();
    let body = lower.trim_start_matches(['+', '-']);
    if body.starts_with("inf") || body.starts_with("nan") {
        return None;
    }
    s.parse::<f64>().ok().filter(|f| f.is_finite())
}

/// yaml.v2 reads `2001-12-14`, `2001-12-14t21:59:43.10-05:00` and
/// `2001-12-14 21:59:43.10` as timestamps (and keeps their text when read
/// into JSON, but quotes such a string when writing it).
fn is_timestamp(s: &str) -> bool {
    let b = s.as_bytes();
    if b.len() < 8 || !b[..4].iter().all(u8::is_ascii_digit) || b[4] != b'-' {
        return false;
    }
    let mut i = 5;
    let num = |i: &mut usize, max_len: usize| -> Option<u32> {
        let start = *i;
        while *i < b.len() && *i - start < max_len && b[*i].is_ascii_digit() {
            *i += 1;
        }
        (*i > start).then(|| s[start..*i].parse().ok()).flatten()
    };
    let year: i32 = s[..4].parse().unwrap_or(0);
    let Some(month) = num(&mut i, 2) else { return false };
    if b.get(i) != Some(&b'-') {
        return false;
    }
    i += 1;
    let Some(day) = num(&mut i, 2) else { return false };
    if !(1..=12).contains(&month) || day == 0 || day > days_in_month(year, month) {
        return false;
    }
    if i == b.len() {
        return true;
    }
    let zoned = match b[i] {
        b'T' | b't' => true,
        b' ' => false,
        _ => return false,
    };
    i += 1;
    let Some(hour) = num(&mut i, 2) else { return false };
    if b.get(i) != Some(&b':') {
        return false;
    }
    i += 1;
    let Some(minute) = num(&mut i, 2) else { return false };
    if b.get(i) != Some(&b':') {
        return false;
    }
    i += 1;
    let Some(second) = num(&mut i, 2) else { return false };
    if hour > 23 || minute > 59 || second > 59 {
        return false;
    }
    if b.get(i) == Some(&b'.') && b.get(i + 1).is_some_and(u8::is_ascii_digit) {
        i += 1;
        while b.get(i).is_some_and(u8::is_ascii_digit) {
            i += 1;
        }
    }
    if !zoned {
        return i == b.len();
    }
    match b.get(i) {
        Some(b'Z') => i + 1 == b.len(),
        Some(b'+' | b'-') => {
            let zone = &b[i + 1..];
            zone.len() == 5
                && zone[..2].iter().all(u8::is_ascii_digit)
                && zone[2] == b':'
                && zone[3..].iter().all(u8::is_ascii_digit)
        }
        _ => false,
    }
}

fn days_in_month(year: i32, month: u32) -> u32 {
    match month {
        2 if (year % 4 == 0 && year % 100 != 0) || year % 400 == 0 => 29,
        2 => 28,
        4 | 6 | 9 | 11 => 30,
        _ => 31,
    }
}

/// yaml.v2 quotes what YAML 1.1 reads as a sexagesimal float (`1:20`).
fn is_base60_float(s: &str) -> bool {
    let b = s.as_bytes();
    let mut i = usize::from(matches!(b.first(), Some(b'-' | b'+')));
    if !b.get(i).is_some_and(u8::is_ascii_digit) {
        return false;
    }
    while b.get(i).is_some_and(|c| c.is_ascii_digit() || *c == b'_') {
        i += 1;
    }
    let mut groups = 0;
    while b.get(i) == Some(&b':') {
        i += 1;
        // [0-5]?[0-9]
        match (b.get(i), b.get(i + 1)) {
            (Some(b'0'..=b'5'), Some(c)) if c.is_ascii_digit() => i += 2,
            (Some(c), _) if c.is_ascii_digit() => i += 1,
            _ => return false,
        }
        groups += 1;
    }
    if groups == 0 {
        return false;
    }
    if b.get(i) == Some(&b'.') {
        i += 1;
        while b.get(i).is_some_and(|c| c.is_ascii_digit() || *c == b'_') {
            i += 1;
        }
    }
    i == b.len()
}

// ---------------------------------------------------------------------------
// Reading
// ---------------------------------------------------------------------------

/// The first document of `text` as OPA reads it through JSON.
fn read(text: &str) -> Result<Value, String> {
    to_value(&first_document::<V2>(text)?)
}

/// How one YAML library builds its values from the parser's events: Go's
/// `yaml.v2` here (for `yaml.unmarshal`); `yaml.v3` for annotations
/// (`crate::policy::metadata`).
pub(crate) trait Dialect {
    type Node: Clone;
    /// Deepest nesting, and most nodes a document may expand to through
    /// its aliases ("billion laughs").
    const MAX_DEPTH: usize;
    const MAX_NODES: usize;
    fn null() -> Self::Node;
    fn scalar(text: &str, style: ScalarStyle, tag: Option<&Tag>) -> Result<Self::Node, String>;
    fn sequence(items: Vec<Self::Node>) -> Self::Node;
    /// A mapping from its entries in order, each with whether its key was
    /// a plain `<<` (a merge key, to libraries that have them).
    fn mapping(entries: Vec<(bool, Self::Node, Self::Node)>) -> Result<Self::Node, String>;
}

/// The first document of `text`, built by the dialect `D`: null when
/// there is none.
pub(crate) fn first_document<D: Dialect>(text: &str) -> Result<D::Node, String> {
    let mut r = Reader::<D> {
        parser: Parser::new_from_str(text),
        anchors: HashMap::new(),
        nodes: 0,
    };
    loop {
        match r.next()? {
            (Event::StreamStart | Event::Nothing, _) => {}
            (Event::StreamEnd, _) => return Ok(D::null()),
            (Event::DocumentStart(_), _) => {
                let first = r.next()?;
                return match first.0 {
                    Event::DocumentEnd => Ok(D::null()),
                    _ => r.node(first, 0),
                };
            }
            (other, span) => return Err(format!("line {}: unexpected {other:?}", span.start.line())),
        }
    }
}

struct Reader<'a, D: Dialect> {
    parser: Parser<'a, StrInput<'a>>,
    /// Each anchor's node and its size in nodes.
    anchors: HashMap<usize, (D::Node, usize)>,
    nodes: usize,
}

impl<'a, D: Dialect> Reader<'a, D> {
    fn next(&mut self) -> Result<(Event<'a>, Span), String> {
        match self.parser.next() {
            Some(Ok(e)) => Ok(e),
            Some(Err(e)) => Err(e.to_string()),
            None => Err("unexpected end of the document".into()),
        }
    }

    fn count(&mut self, n: usize) -> Result<(), String> {
        self.nodes += n;
        if self.nodes > D::MAX_NODES {
            return Err(format!("the document expands to more than {} nodes", D::MAX_NODES));
        }
        Ok(())
    }

    fn node(&mut self, (event, span): (Event<'a>, Span), depth: usize) -> Result<D::Node, String> {
        if depth > D::MAX_DEPTH {
            return Err(format!("nesting deeper than {}", D::MAX_DEPTH));
        }
        let start = self.nodes;
        let (node, anchor) = match event {
            Event::Alias(id) => {
                let (node, size) = self
                    .anchors
                    .get(&id)
                    .cloned()
                    .ok_or_else(|| format!("line {}: unknown anchor", span.start.line()))?;
                self.count(size)?;
                return Ok(node);
            }
            Event::Scalar(text, style, anchor, tag) => {
                self.count(1)?;
                (D::scalar(&text, style, tag.as_deref())?, anchor)
            }
            Event::SequenceStart(anchor, _) => {
                self.count(1)?;
                let mut items = Vec::new();
                loop {
                    let e = self.next()?;
                    if matches!(e.0, Event::SequenceEnd) {
                        break;
                    }
                    items.push(self.node(e, depth + 1)?);
                }
                (D::sequence(items), anchor)
            }
            Event::MappingStart(anchor, _) => {
                self.count(1)?;
                let mut entries = Vec::new();
                loop {
                    let e = self.next()?;
                    if matches!(e.0, Event::MappingEnd) {
                        break;
                    }
                    let merge = matches!(&e.0, Event::Scalar(t, ScalarStyle::Plain, _, None) if t == "<<");
                    let key = self.node(e, depth + 1)?;
                    let value_event = self.next()?;
                    let value = self.node(value_event, depth + 1)?;
                    entries.push((merge, key, value));
                }
                (D::mapping(entries)?, anchor)
            }
            other => return Err(format!("line {}: unexpected {other:?}", span.start.line())),
        };
        if anchor != 0 {
            self.anchors.insert(anchor, (node.clone(), self.nodes - start));
        }
        Ok(node)
    }
}

/// Go's `yaml.v2`, as `yaml.unmarshal` reads.
struct V2;

impl Dialect for V2 {
    type Node = Node;
    const MAX_DEPTH: usize = MAX_DEPTH;
    const MAX_NODES: usize = MAX_NODES;

    fn null() -> Node {
        Node::Null
    }

    fn scalar(text: &str, style: ScalarStyle, tag: Option<&Tag>) -> Result<Node, String> {
        Ok(match scalar(text, style, tag)? {
            Resolved::Node(n) => n,
            // `<<` outside a key is the string.
            Resolved::Merge => Node::Str(text.to_string()),
        })
    }

    fn sequence(items: Vec<Node>) -> Node {
        Node::Seq(items)
    }

    fn mapping(entries: Vec<(bool, Node, Node)>) -> Result<Node, String> {
        let mut out: Vec<(String, Node)> = Vec::new();
        for (merge, key, value) in entries {
            if merge {
                merge_into(&mut out, value)?;
            } else {
                out.push((key_text(&key)?, value));
            }
        }
        Ok(Node::Map(out))
    }
}

/// A scalar as yaml.v2 decodes it into an `interface{}`.
fn scalar(text: &str, style: ScalarStyle, tag: Option<&Tag>) -> Result<Resolved, String> {
    let core = tag
        .filter(|t| t.handle == "tag:yaml.org,2002:")
        .map(|t| t.suffix.as_str());
    let explicit = |want: &str| -> Result<Resolved, String> {
        match resolve_plain(text) {
            Resolved::Node(n) => {
                let ok = match (&n, want) {
                    (Node::Int(_) | Node::UInt(_), "int") => true,
                    (Node::Bool(_), "bool") | (Node::Null, "null") => true,
                    (Node::Float(_), "float") => true,
                    (Node::Int(i), "float") => return Ok(Resolved::Node(Node::Float(*i as f64))),
                    (Node::UInt(u), "float") => return Ok(Resolved::Node(Node::Float(*u as f64))),
                    _ => false,
                };
                if ok {
                    Ok(Resolved::Node(n))
                } else {
                    Err(format!("cannot decode !!str `{text}` as a !!{want}"))
                }
            }
            Resolved::Merge => Err(format!("cannot decode `{text}` as a !!{want}")),
        }
    };
    match (core, tag) {
        (Some("str"), _) => Ok(Resolved::Node(Node::Str(text.to_string()))),
        (Some(t @ ("int" | "float" | "bool" | "null")), _) => explicit(t),
        (Some("binary"), _) => {
            use base64::Engine as _;
            let compact: String = text.chars().filter(|c| !c.is_whitespace()).collect();
            let bytes = base64::engine::general_purpose::STANDARD
                .decode(compact)
                .map_err(|e| format!("!!binary value contains invalid base64 data: {e}"))?;
            Ok(Resolved::Node(Node::Str(String::from_utf8_lossy(&bytes).into_owned())))
        }
        // Any other tag: the text, as yaml.v2 keeps it.
        (_, Some(_)) => Ok(Resolved::Node(Node::Str(text.to_string()))),
        (_, None) if style == ScalarStyle::Plain => Ok(resolve_plain(text)),
        (_, None) => Ok(Resolved::Node(Node::Str(text.to_string()))),
    }
}

/// A map key as the JSON object key it becomes.
fn key_text(key: &Node) -> Result<String, String> {
    Ok(match key {
        Node::Str(s) => s.clone(),
        Node::Int(i) => i.to_string(),
        Node::UInt(u) => u.to_string(),
        Node::Float(f) => go_float(*f, 'g', None),
        Node::Bool(b) => b.to_string(),
        Node::Null => return Err("unsupported map key of type null".into()),
        Node::Seq(_) | Node::Map(_) => return Err("invalid map key: a sequence or map".into()),
    })
}

/// `<<: value`: yaml.v2 sets each entry of the map (or of each map of a
/// list, the first one last so that it wins) as if written here.
fn merge_into(entries: &mut Vec<(String, Node)>, value: Node) -> Result<(), String> {
    match value {
        Node::Map(m) => entries.extend(m),
        Node::Seq(items) => {
            for item in items.into_iter().rev() {
                match item {
                    Node::Map(m) => entries.extend(m),
                    _ => return Err("map merge requires map or sequence of maps as the value".into()),
                }
            }
        }
        _ => return Err("map merge requires map or sequence of maps as the value".into()),
    }
    Ok(())
}

fn to_value(node: &Node) -> Result<Value, String> {
    Ok(match node {
        Node::Null => Value::Null,
        Node::Bool(b) => Value::from(*b),
        Node::Int(i) => Value::from(*i),
        Node::UInt(u) => Value::from(*u),
        Node::Float(f) if !f.is_finite() => {
            return Err(format!("json: unsupported value: {}", go_float(*f, 'g', None)));
        }
        Node::Float(f) => Value::from(*f),
        Node::Str(s) => Value::from(s.as_str()),
        Node::Seq(items) => Value::from(items.iter().map(to_value).collect::<Result<Vec<_>, _>>()?),
        Node::Map(entries) => {
            let mut object = Value::new_object();
            let map = object.as_object_mut().map_err(|e| e.to_string())?;
            for (k, v) in entries {
                map.insert(Value::from(k.as_str()), to_value(v)?);
            }
            object
        }
    })
}

// ---------------------------------------------------------------------------
// Writing
// ---------------------------------------------------------------------------

/// The value as yaml.v2 decodes its JSON: numbers become integers where
/// they are whole and fit 64 bits, floats otherwise.
fn from_value(v: &Value, depth: usize) -> anyhow::Result<Node> {
    if depth > MAX_DEPTH {
        anyhow::bail!("nesting deeper than {MAX_DEPTH}");
    }
    Ok(match v {
        Value::Null => Node::Null,
        Value::Bool(b) => Node::Bool(*b),
        Value::Number(n) => {
            if let Some(i) = n.as_i64().filter(|_| n.is_integer()) {
                Node::Int(i)
            } else if let Some(u) = n.as_u64().filter(|_| n.is_integer()) {
                Node::UInt(u)
            } else {
                // An integer past 64 bits is a float to yaml.v2.
                let f = n
                    .as_f64()
                    .or_else(|| v.as_number().ok().and_then(|n| n.format_decimal().parse::<f64>().ok()));
                Node::Float(f.ok_or_else(|| anyhow::anyhow!("a number out of range"))?)
            }
        }
        Value::String(s) => Node::Str(s.to_string()),
        Value::Array(items) => Node::Seq(
            items
                .iter()
                .map(|i| from_value(i, depth + 1))
                .collect::<Result<_, _>>()?,
        ),
        Value::Set(items) => Node::Seq(
            items
                .iter()
                .map(|i| from_value(i, depth + 1))
                .collect::<Result<_, _>>()?,
        ),
        Value::Object(fields) => {
            let mut entries = Vec::with_capacity(fields.len());
            for (k, val) in fields.iter() {
                let key = match k {
                    Value::String(s) => s.to_string(),
                    other => super::gojson::to_go_json(other)?,
                };
                entries.push((key, from_value(val, depth + 1)?));
            }
            entries.sort_by(|a, b| key_order(&a.0, &b.0));
            Node::Map(entries)
        }
        Value::Undefined => anyhow::bail!("undefined value"),
    })
}

/// yaml.v2's order of string keys: letters by code point, a letter after
/// a non-letter, runs of digits by their value.
fn key_order(a: &str, b: &str) -> std::cmp::Ordering {
    use std::cmp::Ordering;
    let less = |a: &[char], b: &[char]| -> bool {
        for i in 0..a.len().min(b.len()) {
            if a[i] == b[i] {
                continue;
            }
            let (al, bl) = (a[i].is_alphabetic(), b[i].is_alphabetic());
            if al && bl {
                return a[i] < b[i];
            }
            if al || bl {
                return bl;
            }
            let (mut an, mut bn) = (0i64, 0i64);
            if a[i] == '0' || b[i] == '0' {
                let mut j = i;
                while j > 0 && a[j - 1].is_ascii_digit() {
                    j -= 1;
                    if a[j] != '0' {
                        an = 1;
                        bn = 1;
                        break;
                    }
                }
            }
            let mut ai = i;
            while ai < a.len() && a[ai].is_ascii_digit() {
                an = an.wrapping_mul(10).wrapping_add(i64::from(a[ai] as u8 - b'0'));
                ai += 1;
            }
            let mut bi = i;
            while bi < b.len() && b[bi].is_ascii_digit() {
                bn = bn.wrapping_mul(10).wrapping_add(i64::from(b[bi] as u8 - b'0'));
                bi += 1;
            }
            if an != bn {
                return an < bn;
            }
            if ai != bi {
                return ai < bi;
            }
            return a[i] < b[i];
        }
        a.len() < b.len()
    };
    let (a, b): (Vec<char>, Vec<char>) = (a.chars().collect(), b.chars().collect());
    if less(&a, &b) {
        Ordering::Less
    } else if less(&b, &a) {
        Ordering::Greater
    } else {
        Ordering::Equal
    }
}

#[derive(Debug, Clone, Copy, PartialEq)]
enum Style {
    Plain,
    Single,
    Double,
    Literal,
}

/// What libyaml's emitter finds in a scalar's text.
struct Analysis {
    block_plain_allowed: bool,
    single_quoted_allowed: bool,
    block_allowed: bool,
}

fn is_break(c: char) -> bool {
    matches!(c, '\r' | '\n' | '\u{85}' | '\u{2028}' | '\u{2029}')
}

fn is_blank_or_end(c: Option<char>) -> bool {
    c.is_none_or(|c| c == ' ' || c == '\t' || is_break(c))
}

/// libyaml's printable set (with the emitter in unicode mode).
fn is_printable(c: char) -> bool {
    matches!(c as u32, 0x0A | 0x20..=0x7E | 0x85 | 0xA0..=0xD7FF | 0xE000..=0xFFFD | 0x10000..=0x10FFFF)
        && c != '\u{FEFF}'
}

fn analyze(s: &str) -> Analysis {
    if s.is_empty() {
        return Analysis {
            block_plain_allowed: true,
            single_quoted_allowed: true,
            block_allowed: false,
        };
    }
    let chars: Vec<char> = s.chars().collect();
    let mut block_indicators = s.starts_with("---") || s.starts_with("...");
    let (mut leading_space, mut leading_break, mut trailing_space, mut trailing_break) = (false, false, false, false);
    let (mut break_space, mut space_break, mut previous_space, mut previous_break) = (false, false, false, false);
    let (mut special, mut line_breaks) = (false, false);
    let mut preceded_by_whitespace = true;
    for (i, &c) in chars.iter().enumerate() {
        let followed_by_whitespace = is_blank_or_end(chars.get(i + 1).copied());
        let (first, last) = (i == 0, i + 1 == chars.len());
        if first {
            if "#,[]{}&*!|>'\"%@`".contains(c) {
                block_indicators = true;
            }
            if (c == '?' || c == ':') && followed_by_whitespace {
                block_indicators = true;
            }
            if c == '-' && followed_by_whitespace {
                block_indicators = true;
            }
        } else {
            if c == ':' && followed_by_whitespace {
                block_indicators = true;
            }
            if c == '#' && preceded_by_whitespace {
                block_indicators = true;
            }
        }
        if !is_printable(c) {
            special = true;
        }
        if is_break(c) {
            line_breaks = true;
        }
        if c == ' ' {
            leading_space |= first;
            trailing_space |= last;
            break_space |= previous_break;
            previous_space = true;
            previous_break = false;
        } else if is_break(c) {
            leading_break |= first;
            trailing_break |= last;
            space_break |= previous_space;
            previous_break = true;
            previous_space = false;
        } else {
            previous_space = false;
            previous_break = false;
        }
        preceded_by_whitespace = is_blank_or_end(Some(c));
    }
    let mut a = Analysis {
        block_plain_allowed: true,
        single_quoted_allowed: true,
        block_allowed: true,
    };
    if leading_space || leading_break || trailing_space || trailing_break {
        a.block_plain_allowed = false;
    }
    if trailing_space {
        a.block_allowed = false;
    }
    if break_space {
        a.block_plain_allowed = false;
        a.single_quoted_allowed = false;
    }
    if space_break || special {
        a.block_plain_allowed = false;
        a.single_quoted_allowed = false;
        a.block_allowed = false;
    }
    if line_breaks || block_indicators {
        a.block_plain_allowed = false;
    }
    a
}

/// Column after which a line is folded at a space.
const BEST_WIDTH: usize = 80;
/// Indentation per level.
const INDENT: usize = 2;
/// Longest key written as `key: value`; longer ones are `? key`.
const MAX_SIMPLE_KEY: usize = 128;

#[derive(Default)]
struct Writer {
    out: String,
    column: usize,
}

impl Writer {
    fn push(&mut self, s: &str) {
        self.out.push_str(s);
        self.column += s.chars().count();
    }

    fn push_char(&mut self, c: char) {
        self.out.push(c);
        self.column += 1;
    }

    fn newline(&mut self) {
        self.out.push('\n');
        self.column = 0;
    }

    fn indent_to(&mut self, indent: usize) {
        if self.column > indent || (self.column > 0 && self.column == indent) {
            self.newline();
        }
        while self.column < indent {
            self.push(" ");
        }
    }

    fn document(&mut self, node: &Node) {
        match node {
            Node::Seq(items) if !items.is_empty() => self.sequence(items, 0),
            Node::Map(entries) if !entries.is_empty() => self.mapping(entries, 0),
            other => {
                self.scalar_or_empty(other, INDENT, false);
                self.newline();
            }
        }
    }

    /// A block sequence whose dashes are at column `indent`; the cursor is
    /// at the start of the first item's line (or already at `indent`).
    fn sequence(&mut self, items: &[Node], indent: usize) {
        for (i, item) in items.iter().enumerate() {
            if i > 0 || self.column != indent {
                self.indent_to(indent);
            }
            self.push("- ");
            match item {
                Node::Seq(inner) if !inner.is_empty() => self.sequence(inner, indent + INDENT),
                Node::Map(entries) if !entries.is_empty() => self.mapping(entries, indent + INDENT),
                other => {
                    self.scalar_or_empty(other, indent + INDENT, false);
                    self.newline();
                }
            }
        }
    }

    /// A block mapping whose keys are at column `indent`.
    fn mapping(&mut self, entries: &[(String, Node)], indent: usize) {
        // The last of equal keys wins, at the place of the first.
        let mut seen: Vec<&str> = Vec::with_capacity(entries.len());
        for (i, (key, _)) in entries.iter().enumerate() {
            if seen.contains(&key.as_str()) {
                continue;
            }
            seen.push(key);
            let value = &entries
                .iter()
                .rev()
                .find(|(k, _)| k == key)
                .map_or(&entries[i].1, |(_, v)| v);
            if i > 0 || self.column != indent {
                self.indent_to(indent);
            }
            let simple = key.len() <= MAX_SIMPLE_KEY && !key.chars().any(is_break);
            if simple {
                self.string(key, indent + INDENT, true);
                self.push(":");
            } else {
                self.push("? ");
                self.string(key, indent + INDENT, false);
                self.indent_to(indent);
                self.push(":");
            }
            match value {
                Node::Seq(items) if !items.is_empty() => {
                    self.newline();
                    self.sequence(items, indent);
                }
                Node::Map(inner) if !inner.is_empty() => {
                    self.newline();
                    self.mapping(inner, indent + INDENT);
                }
                other => {
                    self.push(" ");
                    self.scalar_or_empty(other, indent + INDENT, false);
                    self.newline();
                }
            }
        }
    }

    /// A scalar, or `[]`/`{}` for an empty collection. `indent` is where
    /// continuation lines start.
    fn scalar_or_empty(&mut self, node: &Node, indent: usize, key: bool) {
        match node {
            Node::Null => self.push("null"),
            Node::Bool(b) => self.push(if *b { "true" } else { "false" }),
            Node::Int(i) => self.push(&i.to_string()),
            Node::UInt(u) => self.push(&u.to_string()),
            Node::Float(f) if f.is_nan() => self.push(".nan"),
            Node::Float(f) if f.is_infinite() => self.push(if *f > 0.0 { ".inf" } else { "-.inf" }),
            Node::Float(f) => self.push(&go_float(*f, 'g', None)),
            Node::Str(s) => self.string(s, indent, key),
            Node::Seq(_) => self.push("[]"),
            Node::Map(_) => self.push("{}"),
        }
    }

    /// A string in the style yaml.v2 asks for and libyaml's emitter allows.
    fn string(&mut self, s: &str, indent: usize, key: bool) {
        // (`<<` is a merge only as a key when reading: written, it is text.)
        let reads_as_string =
            matches!(resolve_plain(s), Resolved::Node(Node::Str(_)) | Resolved::Merge) && !is_timestamp(s);
        let mut style = if s.contains('\n') {
            Style::Literal
        } else if reads_as_string && !is_base60_float(s) {
            Style::Plain
        } else {
            Style::Double
        };
        let a = analyze(s);
        if style == Style::Plain && (!a.block_plain_allowed || (s.is_empty() && key)) {
            style = Style::Single;
        }
        if style == Style::Single && !a.single_quoted_allowed {
            style = Style::Double;
        }
        if style == Style::Literal && (!a.block_allowed || key) {
            style = Style::Double;
        }
        let breaks = !key;
        match style {
            Style::Plain => self.plain(s, indent, breaks),
            Style::Single => self.single(s, indent, breaks),
            Style::Double => self.double(s, indent, breaks),
            Style::Literal => self.literal(s, indent),
        }
    }

    fn plain(&mut self, s: &str, indent: usize, breaks: bool) {
        let chars: Vec<char> = s.chars().collect();
        let mut spaces = false;
        for (i, &c) in chars.iter().enumerate() {
            if c == ' ' {
                if breaks && !spaces && self.column > BEST_WIDTH && chars.get(i + 1) != Some(&' ') {
                    self.indent_to(indent);
                } else {
                    self.push(" ");
                }
                spaces = true;
            } else {
                self.push_char(c);
                spaces = false;
            }
        }
    }

    fn single(&mut self, s: &str, indent: usize, breaks: bool) {
        let chars: Vec<char> = s.chars().collect();
        self.push("'");
        let (mut spaces, mut breaks_before) = (false, false);
        for (i, &c) in chars.iter().enumerate() {
            let (first, last) = (i == 0, i + 1 == chars.len());
            if is_break(c) {
                // A line break other than `\n` (U+2028, U+0085) is kept
                // as it is; the text goes on at the indentation.
                self.out.push(c);
                self.column = 0;
                breaks_before = true;
                spaces = false;
                continue;
            }
            if breaks_before {
                self.indent_to(indent);
                breaks_before = false;
            }
            if c == ' ' {
                if breaks && !spaces && self.column > BEST_WIDTH && !first && !last && chars.get(i + 1) != Some(&' ') {
                    self.indent_to(indent);
                } else {
                    self.push(" ");
                }
                spaces = true;
            } else {
                if c == '\'' {
                    self.push("''");
                } else {
                    self.push_char(c);
                }
                spaces = false;
            }
        }
        self.push("'");
    }

    fn double(&mut self, s: &str, indent: usize, breaks: bool) {
        let chars: Vec<char> = s.chars().collect();
        self.push("\"");
        let mut spaces = false;
        for (i, &c) in chars.iter().enumerate() {
            let (first, last) = (i == 0, i + 1 == chars.len());
            if !is_printable(c) || is_break(c) || c == '"' || c == '\\' {
                let escaped = match c {
                    '\0' => "\\0".to_string(),
                    '\u{7}' => "\\a".to_string(),
                    '\u{8}' => "\\b".to_string(),
                    '\t' => "\\t".to_string(),
                    '\n' => "\\n".to_string(),
                    '\u{b}' => "\\v".to_string(),
                    '\u{c}' => "\\f".to_string(),
                    '\r' => "\\r".to_string(),
                    '\u{1b}' => "\\e".to_string(),
                    '"' => "\\\"".to_string(),
                    '\\' => "\\\\".to_string(),
                    '\u{85}' => "\\N".to_string(),
                    '\u{a0}' => "\\_".to_string(),
                    '\u{2028}' => "\\L".to_string(),
                    '\u{2029}' => "\\P".to_string(),
                    c if (c as u32) <= 0xFF => format!("\\x{:02X}", c as u32),
                    c if (c as u32) <= 0xFFFF => format!("\\u{:04X}", c as u32),
                    c => format!("\\U{:08X}", c as u32),
                };
                self.push(&escaped);
                spaces = false;
            } else if c == ' ' {
                if breaks && !spaces && self.column > BEST_WIDTH && !first && !last {
                    self.indent_to(indent);
                    if chars.get(i + 1) == Some(&' ') {
                        self.push("\\");
                    }
                } else {
                    self.push(" ");
                }
                spaces = true;
            } else {
                self.push_char(c);
                spaces = false;
            }
        }
        self.push("\"");
    }

    /// `|` with libyaml's hints: an indentation digit when the text starts
    /// with a space or break, `-` without a final break, `+` with more
    /// than one.
    fn literal(&mut self, s: &str, indent: usize) {
        self.push("|");
        if s.starts_with(' ') || s.starts_with(is_break) {
            self.push(&INDENT.to_string());
        }
        let mut tail = s.chars().rev();
        match (tail.next(), tail.next()) {
            (Some(c), _) if !is_break(c) => self.push("-"),
            (Some(_), None) => self.push("+"),
            (Some(_), Some(p)) if is_break(p) => self.push("+"),
            _ => {}
        }
        self.newline();
        let mut at_line_start = true;
        for c in s.chars() {
            if is_break(c) {
                self.newline();
                at_line_start = true;
            } else {
                if at_line_start {
                    while self.column < indent {
                        self.push(" ");
                    }
                    at_line_start = false;
                }
                self.push_char(c);
            }
        }
        // The caller ends the line.
        if s.ends_with(is_break) {
            self.out.pop();
            self.column = 0;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::super::testing::{eval, json};

    #[test]
    fn yaml_1_1_scalars_resolve_as_in_opa() {
        assert_eq!(
            eval(r#"yaml.unmarshal("a: yes\nb: No\nc: on\nd: 'yes'\ne: y\nf: ~\ng: 0x1F\nh: 017\ni: 1_000\nj: 0b101\nk: .5\nl: 1e3\nm: 2001-12-14\np: 08\nn: key")"#).unwrap(),
            json(r#"{"a": true, "b": false, "c": true, "d": "yes", "e": true, "f": null, "g": 31, "h": 15, "i": 1000, "j": 5, "k": 0.5, "l": 1000, "m": "2001-12-14", "p": 8, "false": "key"}"#)
        );
        // Keys are resolved too (`n` above is false), then become strings;
        // .inf cannot be JSON.
        assert_eq!(
            eval(r#"yaml.unmarshal("1: a\ntrue: b")"#).unwrap(),
            json(r#"{"1": "a", "true": "b"}"#)
        );
        assert!(eval(r#"yaml.unmarshal("a: .inf")"#).is_err());
    }

    #[test]
    fn aliases_expand_but_a_billion_laughs_fails() {
        assert_eq!(
            eval(r#"yaml.unmarshal("base: &b {x: 1}\nref: *b\nmerged:\n  <<: *b\n  w: 2")"#).unwrap(),
            json(r#"{"base": {"x": 1}, "ref": {"x": 1}, "merged": {"x": 1, "w": 2}}"#)
        );
        let mut doc = String::from("a0: &a0 [x, x, x, x, x, x, x, x, x, x]\n");
        for i in 1..9 {
            let refs = vec![format!("*a{}", i - 1); 10].join(", ");
            doc.push_str(&format!("a{i}: &a{i} [{refs}]\n"));
        }
        let err = eval(&format!("yaml.unmarshal({})", serde_json::to_string(&doc).unwrap())).unwrap_err();
        assert!(err.to_string().contains("nodes"), "{err}");
        assert_eq!(
            eval(&format!("yaml.is_valid({})", serde_json::to_string(&doc).unwrap())).unwrap(),
            json("false")
        );
    }

    #[test]
    fn marshal_quotes_what_would_read_back_otherwise() {
        assert_eq!(
            eval(r#"yaml.marshal(["yes", "no", "1", "", "a: b", "é", "x", "- y", "2001-12-14", "1:20", "tab\there"])"#)
                .unwrap(),
            json(
                r#""- \"yes\"\n- \"no\"\n- \"1\"\n- \"\"\n- 'a: b'\n- é\n- x\n- '- y'\n- \"2001-12-14\"\n- \"1:20\"\n- \"tab\\there\"\n""#
            )
        );
        assert_eq!(
            eval(r#"yaml.marshal({"b": [1, 2.5, "x"], "a": {"n": null, "t": true}, "a10": 1, "a9": [], "c": {}})"#)
                .unwrap(),
            json(r#""a:\n  \"n\": null\n  t: true\na9: []\na10: 1\nb:\n- 1\n- 2.5\n- x\nc: {}\n""#)
        );
        assert_eq!(
            eval(r#"yaml.marshal([[1, 2], {"k": "line1\nline2\n"}, "end"])"#).unwrap(),
            json(r#""- - 1\n  - 2\n- k: |\n    line1\n    line2\n- end\n""#)
        );
    }
}
