//! Paths: the reference-path subset of the Amazon States Language's JSONPath,
//! and what a state does with them to its input and its result.
//!
//! A path is `$` (the whole value) followed by steps: `.name`, `['name']`
//! (any name; `\'` and `\\` escape), `["name"]`, `[index]` (a non-negative
//! integer). A path names exactly one node: wildcards, recursive descent,
//! filters, slices, unions, negative indexes, context-object paths (`$$`) and
//! intrinsic functions are rejected with a message saying so.
//!
//! Invariants: no IO; nothing here panics on any input. `inputPath` and
//! `outputPath` absent mean `$`, JSON `null` means `{}` (the input is
//! discarded). `resultPath` absent means `$` (the result replaces the input),
//! `null` means the result is discarded and the input kept; a path sets the
//! result at that place in the input, creating missing objects on the way,
//! and fails rather than overwrite anything that is not an object (or an
//! array, for an index within it).

use std::fmt;

use serde::{Serialize, Serializer};
use serde_json::{Map, Value};

/// The longest path accepted, in characters.
pub const MAX_PATH_LEN: usize = 1024;

/// One step of a path.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum Segment {
    /// A member of an object.
    Field(String),
    /// An element of an array, from 0.
    Index(usize),
}

/// A parsed path: `$` and zero or more steps.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Default)]
pub struct Path {
    segments: Vec<Segment>,
}

/// Why a path does not parse. `position` counts characters from 1.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("at character {position}: {reason}")]
pub struct PathSyntaxError {
    pub position: usize,
    pub reason: String,
}

/// A path applied to a value at run time.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PathError {
    /// The path names nothing in the value. The interpreter raises
    /// `States.Runtime` (`States.ParameterPathFailure` from `parameters`).
    #[error("path `{path}` selects nothing in the input")]
    Missing { path: String },
    /// A `resultPath` cannot be set; the interpreter raises
    /// `States.ResultPathMatchFailure`.
    #[error("result path `{path}` cannot be set: {reason}")]
    ResultPathMismatch { path: String, reason: String },
    /// A path in a `parameters` template does not parse (validation rejects
    /// these; a template built by hand may have them).
    #[error("invalid path `{path}`: {reason}")]
    Invalid { path: String, reason: String },
}

/// A path field of a state, which may be absent, JSON `null`, or a path.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub enum OptionalPath {
    /// Not in the definition: `$`.
    #[default]
    Absent,
    /// `null` in the definition: the input (or result) is discarded.
    Null,
    Path(Path),
}

fn is_name_char(c: char) -> bool {
    !c.is_whitespace()
        && !c.is_control()
        && !matches!(
            c,
            '.' | '[' | ']' | '\'' | '"' | '*' | '?' | '@' | '(' | ')' | '$' | ',' | ':' | '\\'
        )
}

fn fail<T>(position: usize, reason: impl Into<String>) -> Result<T, PathSyntaxError> {
    Err(PathSyntaxError {
        position: position + 1,
        reason: reason.into(),
    })
}

const ONE_NODE: &str = "a path names exactly one node";

impl Path {
    /// `$`.
    pub fn root() -> Self {
        Self::default()
    }

    pub fn segments(&self) -> &[Segment] {
        &self.segments
    }

    pub fn is_root(&self) -> bool {
        self.segments.is_empty()
    }

    /// A path from its steps.
    pub fn from_segments(segments: Vec<Segment>) -> Self {
        Self { segments }
    }

    pub fn parse(text: &str) -> Result<Self, PathSyntaxError> {
        let chars: Vec<char> = text.chars().collect();
        if chars.is_empty() {
            return fail(0, "a path is empty: write `$` for the whole input");
        }
        if chars.len() > MAX_PATH_LEN {
            return fail(MAX_PATH_LEN, format!("a path is at most {MAX_PATH_LEN} characters"));
        }
        if chars[0] != '$' {
            if text.starts_with("States.") && text.contains('(') {
                return fail(
                    0,
                    "intrinsic functions (`States.Format(…)` and the like) are not supported",
                );
            }
            return fail(0, "a path starts with `$` (the state's input), as in `$.claim.id`");
        }
        if chars.get(1) == Some(&'$') {
            return fail(1, "context object paths (`$$`) are not supported");
        }
        let mut segments = Vec::new();
        let mut i = 1;
        while i < chars.len() {
            match chars[i] {
                '.' => {
                    i += 1;
                    match chars.get(i) {
                        None => return fail(i - 1, "a `.` must be followed by a field name"),
                        Some('.') => {
                            return fail(i - 1, format!("recursive descent (`..`) is not supported: {ONE_NODE}"));
                        }
                        Some('*') => return fail(i, format!("wildcards (`*`) are not supported: {ONE_NODE}")),
                        Some(&c) if !is_name_char(c) => {
                            return fail(
                                i,
                                format!("`{c}` cannot be in a field name after `.`: quote the name, as in `$['a b']`"),
                            );
                        }
                        Some(_) => {
                            let start = i;
                            while i < chars.len() && is_name_char(chars[i]) {
                                i += 1;
                            }
                            segments.push(Segment::Field(chars[start..i].iter().collect()));
                        }
                    }
                }
                '[' => {
                    let open = i;
                    i += 1;
                    match chars.get(i) {
                        None => return fail(open, "`[` is not closed"),
                        Some(&q @ ('\'' | '"')) => {
                            i += 1;
                            let mut name = String::new();
                            loop {
                                match chars.get(i) {
                                    None => return fail(open, format!("the quoted name is not closed with `{q}]`")),
                                    Some('\\') => match chars.get(i + 1) {
                                        Some(&e @ ('\\' | '\'' | '"')) => {
                                            name.push(e);
                                            i += 2;
                                        }
                                        _ => {
                                            return fail(i, "in a quoted name, `\\` escapes only `\\`, `'` and `\"`");
                                        }
                                    },
                                    Some(&c) if c == q => {
                                        i += 1;
                                        break;
                                    }
                                    Some(&c) => {
                                        name.push(c);
                                        i += 1;
                                    }
                                }
                            }
                            if chars.get(i) != Some(&']') {
                                return fail(i, "expected `]` after the quoted name");
                            }
                            i += 1;
                            segments.push(Segment::Field(name));
                        }
                        Some('*') => return fail(i, format!("wildcards (`[*]`) are not supported: {ONE_NODE}")),
                        Some('?') => {
                            return fail(
                                i,
                                format!("filter expressions (`[?(…)]`) are not supported: {ONE_NODE}"),
                            );
                        }
                        Some('(') => {
                            return fail(i, format!("script expressions (`[(…)]`) are not supported: {ONE_NODE}"));
                        }
                        Some('-') => {
                            return fail(i, "negative indexes are not supported: count from the start, from 0");
                        }
                        Some(':') => return fail(i, format!("slices (`[a:b]`) are not supported: {ONE_NODE}")),
                        Some(c) if c.is_ascii_digit() => {
                            let start = i;
                            while i < chars.len() && chars[i].is_ascii_digit() {
                                i += 1;
                            }
                            let digits: String = chars[start..i].iter().collect();
                            match chars.get(i) {
                                Some(']') => {}
                                Some(':') => return fail(i, format!("slices (`[a:b]`) are not supported: {ONE_NODE}")),
                                Some(',') => return fail(i, format!("unions (`[a,b]`) are not supported: {ONE_NODE}")),
                                None => return fail(open, "`[` is not closed"),
                                Some(c) => return fail(i, format!("unexpected `{c}` in an index: expected `]`")),
                            }
                            if digits.len() > 1 && digits.starts_with('0') {
                                return fail(start, "an index has no leading zeros");
                            }
                            let Ok(index) = digits.parse::<u32>() else {
                                return fail(start, format!("index {digits} is too large"));
                            };
                            i += 1;
                            segments.push(Segment::Index(index as usize));
                        }
                        Some(c) => {
                            return fail(
                                i,
                                format!("unexpected `{c}` after `[`: expected an index or a quoted name"),
                            );
                        }
                    }
                }
                c => {
                    return fail(
                        i,
                        format!("unexpected `{c}`: after `$`, a path goes on with `.name`, `['name']` or `[index]`"),
                    );
                }
            }
        }
        Ok(Self { segments })
    }

    /// The node the path names, if there is one.
    pub fn get<'v>(&self, value: &'v Value) -> Option<&'v Value> {
        self.segments.iter().try_fold(value, |v, segment| match (segment, v) {
            (Segment::Field(name), Value::Object(map)) => map.get(name),
            (Segment::Index(i), Value::Array(items)) => items.get(*i),
            _ => None,
        })
    }

    /// A copy of the node the path names.
    pub fn select(&self, value: &Value) -> Result<Value, PathError> {
        self.get(value)
            .cloned()
            .ok_or_else(|| PathError::Missing { path: self.to_string() })
    }
}

impl std::str::FromStr for Path {
    type Err = PathSyntaxError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Self::parse(s)
    }
}

impl fmt::Display for Path {
    /// The canonical form, which parses back to the same path.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("$")?;
        for segment in &self.segments {
            match segment {
                Segment::Field(name) if !name.is_empty() && name.chars().all(is_name_char) => write!(f, ".{name}")?,
                Segment::Field(name) => write!(f, "['{}']", name.replace('\\', "\\\\").replace('\'', "\\'"))?,
                Segment::Index(i) => write!(f, "[{i}]")?,
            }
        }
        Ok(())
    }
}

impl Serialize for Path {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

impl OptionalPath {
    pub fn is_absent(&self) -> bool {
        matches!(self, OptionalPath::Absent)
    }

    pub fn path(&self) -> Option<&Path> {
        match self {
            OptionalPath::Path(p) => Some(p),
            _ => None,
        }
    }
}

impl Serialize for OptionalPath {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        match self {
            OptionalPath::Absent | OptionalPath::Null => s.serialize_none(),
            OptionalPath::Path(p) => p.serialize(s),
        }
    }
}

/// `inputPath`: what of its input a state works on.
pub fn apply_input_path(input: &Value, path: &OptionalPath) -> Result<Value, PathError> {
    match path {
        OptionalPath::Absent => Ok(input.clone()),
        OptionalPath::Null => Ok(Value::Object(Map::new())),
        OptionalPath::Path(p) => p.select(input),
    }
}

/// `outputPath`: what of its output a state passes on. Same rules as
/// [`apply_input_path`].
pub fn apply_output_path(output: &Value, path: &OptionalPath) -> Result<Value, PathError> {
    apply_input_path(output, path)
}

/// `resultPath` as the definition has it: absent is `$`, `null` discards
/// the result.
pub fn apply_result_path(input: Value, result: Value, path: &OptionalPath) -> Result<Value, PathError> {
    match path {
        OptionalPath::Absent => Ok(result),
        OptionalPath::Null => Ok(input),
        OptionalPath::Path(p) => apply_result(input, result, Some(p)),
    }
}

/// ASL `ResultPath`: `None` (JSON `null`) keeps the input and discards the
/// result; `$` replaces the input with the result; any other path sets the
/// result there in the input, creating the objects missing on the way.
pub fn apply_result(input: Value, result: Value, result_path: Option<&Path>) -> Result<Value, PathError> {
    let Some(path) = result_path else {
        return Ok(input);
    };
    let mut output = input;
    set(&mut output, path.segments(), result, path)?;
    Ok(output)
}

/// What a JSON value is, for messages.
pub(crate) fn kind_of(value: &Value) -> &'static str {
    match value {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "an array",
        Value::Object(_) => "an object",
    }
}

fn set(target: &mut Value, segments: &[Segment], result: Value, path: &Path) -> Result<(), PathError> {
    let Some((first, rest)) = segments.split_first() else {
        *target = result;
        return Ok(());
    };
    let mismatch = |reason: String| PathError::ResultPathMismatch {
        path: path.to_string(),
        reason,
    };
    match (first, target) {
        (Segment::Field(name), Value::Object(map)) => {
            if rest.is_empty() {
                map.insert(name.clone(), result);
                return Ok(());
            }
            let child = map.entry(name.clone()).or_insert_with(|| Value::Object(Map::new()));
            set(child, rest, result, path)
        }
        (Segment::Index(i), Value::Array(items)) => {
            let len = items.len();
            match items.get_mut(*i) {
                Some(child) => set(child, rest, result, path),
                None => Err(mismatch(format!("index {i} is out of range of an array of {len}"))),
            }
        }
        (Segment::Field(name), other) => Err(mismatch(format!("cannot set field `{name}` in {}", kind_of(other)))),
        (Segment::Index(i), other) => Err(mismatch(format!("cannot set index {i} in {}", kind_of(other)))),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn p(s: &str) -> Path {
        Path::parse(s).unwrap_or_else(|e| panic!("{s}: {e}"))
    }

    fn err(s: &str) -> PathSyntaxError {
        Path::parse(s).expect_err(s)
    }

    #[test]
    fn parses_the_supported_forms() {
        assert_eq!(p("$").segments(), &[] as &[Segment]);
        assert!(p("$").is_root());
        assert_eq!(
            p("$.a.b").segments(),
            &[Segment::Field("a".into()), Segment::Field("b".into())]
        );
        assert_eq!(p("$.a[0]").segments(), &[Segment::Field("a".into()), Segment::Index(0)]);
        assert_eq!(
            p("$['key with space']").segments(),
            &[Segment::Field("key with space".into())]
        );
        assert_eq!(
            p("$[\"dq\"][12]").segments(),
            &[Segment::Field("dq".into()), Segment::Index(12)]
        );
        assert_eq!(p(r"$['it\'s\\']").segments(), &[Segment::Field(r"it's\".into())]);
        assert_eq!(p("$.a-b_c9").segments(), &[Segment::Field("a-b_c9".into())]);
        assert_eq!(p("$['']").segments(), &[Segment::Field(String::new())]);
    }

    #[test]
    fn display_is_canonical_and_parses_back() {
        for (text, canonical) in [
            ("$", "$"),
            ("$.a.b", "$.a.b"),
            ("$['a'][3]", "$.a[3]"),
            ("$['key with space'].x", "$['key with space'].x"),
            (r#"$["it's"]"#, r"$['it\'s']"),
            ("$['']", "$['']"),
        ] {
            let path = p(text);
            assert_eq!(path.to_string(), canonical);
            assert_eq!(p(canonical), path);
        }
    }

    #[test]
    fn rejects_with_precise_reasons() {
        let cases: &[(&str, usize, &str)] = &[
            ("", 1, "empty"),
            ("a.b", 1, "starts with `$`"),
            ("States.Format('{}', $.a)", 1, "intrinsic functions"),
            ("$$.Execution.Id", 2, "context object"),
            ("$.", 2, "must be followed by a field name"),
            ("$..a", 2, "recursive descent"),
            ("$.*", 3, "wildcards"),
            ("$.a[*]", 5, "wildcards"),
            ("$.a[?(@.x)]", 5, "filter"),
            ("$.a[(1)]", 5, "script"),
            ("$.a[-1]", 5, "negative indexes"),
            ("$.a[1:2]", 6, "slices"),
            ("$.a[:2]", 5, "slices"),
            ("$.a[0,1]", 6, "unions"),
            ("$.a[01]", 5, "leading zeros"),
            ("$.a[99999999999]", 5, "too large"),
            ("$.a[0", 4, "not closed"),
            ("$.a['x", 4, "not closed"),
            ("$.a['x'", 8, "expected `]`"),
            (r"$['a\n']", 5, "escapes only"),
            ("$.a b", 4, "unexpected ` `"),
            ("$a", 2, "unexpected `a`"),
            ("$.a[x]", 5, "expected an index or a quoted name"),
            ("$.@", 3, "cannot be in a field name"),
        ];
        for (text, position, reason) in cases {
            let e = err(text);
            assert_eq!(e.position, *position, "{text}: {e}");
            assert!(e.reason.contains(reason), "{text}: {e}");
        }
        assert!(
            err(&format!("${}", ".a".repeat(MAX_PATH_LEN)))
                .reason
                .contains("at most 1024")
        );
    }

    #[test]
    fn select_and_missing() {
        let v = json!({"a": {"b": [10, {"c": "x"}]}, "k y": 1});
        assert_eq!(p("$").select(&v).unwrap(), v);
        assert_eq!(p("$.a.b[0]").select(&v).unwrap(), json!(10));
        assert_eq!(p("$.a.b[1].c").select(&v).unwrap(), json!("x"));
        assert_eq!(p("$['k y']").select(&v).unwrap(), json!(1));
        assert_eq!(
            p("$.a.b[2]").select(&v),
            Err(PathError::Missing {
                path: "$.a.b[2]".into()
            })
        );
        assert_eq!(
            p("$.a.zz").select(&v),
            Err(PathError::Missing { path: "$.a.zz".into() })
        );
        // Indexing an object and naming a field of an array select nothing.
        assert!(p("$.a[0]").select(&v).is_err());
        assert!(p("$.a.b.c").select(&v).is_err());
    }

    #[test]
    fn input_and_output_paths() {
        let v = json!({"claim": {"id": 7}, "other": true});
        assert_eq!(apply_input_path(&v, &OptionalPath::Absent).unwrap(), v);
        assert_eq!(apply_input_path(&v, &OptionalPath::Null).unwrap(), json!({}));
        assert_eq!(
            apply_input_path(&v, &OptionalPath::Path(p("$.claim"))).unwrap(),
            json!({"id": 7})
        );
        assert_eq!(
            apply_output_path(&v, &OptionalPath::Path(p("$.other"))).unwrap(),
            json!(true)
        );
        assert_eq!(
            apply_input_path(&v, &OptionalPath::Path(p("$.nope"))),
            Err(PathError::Missing { path: "$.nope".into() })
        );
    }

    #[test]
    fn result_path_semantics() {
        let input = json!({"claim": {"id": 7}});
        let result = json!({"risk": "high"});
        // `$` replaces.
        assert_eq!(
            apply_result(input.clone(), result.clone(), Some(&p("$"))).unwrap(),
            result
        );
        // null discards the result.
        assert_eq!(apply_result(input.clone(), result.clone(), None).unwrap(), input);
        // A field is set.
        assert_eq!(
            apply_result(input.clone(), result.clone(), Some(&p("$.triage"))).unwrap(),
            json!({"claim": {"id": 7}, "triage": {"risk": "high"}})
        );
        // Nested: existing objects are kept, missing ones created.
        assert_eq!(
            apply_result(input.clone(), json!(1), Some(&p("$.claim.score"))).unwrap(),
            json!({"claim": {"id": 7, "score": 1}})
        );
        assert_eq!(
            apply_result(input.clone(), json!(1), Some(&p("$.x.y['z z']"))).unwrap(),
            json!({"claim": {"id": 7}, "x": {"y": {"z z": 1}}})
        );
        // An existing value is replaced.
        assert_eq!(
            apply_result(input.clone(), json!("new"), Some(&p("$.claim"))).unwrap(),
            json!({"claim": "new"})
        );
        // Within an array.
        assert_eq!(
            apply_result(json!({"l": [1, {"a": 1}]}), json!(2), Some(&p("$.l[1].b"))).unwrap(),
            json!({"l": [1, {"a": 1, "b": 2}]})
        );
        // What cannot be set is an error, not an overwrite.
        assert_eq!(
            apply_result(json!({"claim": "s"}), json!(1), Some(&p("$.claim.x"))),
            Err(PathError::ResultPathMismatch {
                path: "$.claim.x".into(),
                reason: "cannot set field `x` in a string".into()
            })
        );
        assert_eq!(
            apply_result(json!("scalar input"), json!(1), Some(&p("$.a"))),
            Err(PathError::ResultPathMismatch {
                path: "$.a".into(),
                reason: "cannot set field `a` in a string".into()
            })
        );
        assert_eq!(
            apply_result(json!({"l": [1]}), json!(1), Some(&p("$.l[1]"))),
            Err(PathError::ResultPathMismatch {
                path: "$.l[1]".into(),
                reason: "index 1 is out of range of an array of 1".into()
            })
        );
        assert!(apply_result(json!({}), json!(1), Some(&p("$.missing[0]"))).is_err());
        // The definition's view: absent is `$`, null discards.
        assert_eq!(
            apply_result_path(input.clone(), result.clone(), &OptionalPath::Absent).unwrap(),
            result
        );
        assert_eq!(
            apply_result_path(input.clone(), result.clone(), &OptionalPath::Null).unwrap(),
            input
        );
        assert_eq!(
            apply_result_path(input, result, &OptionalPath::Path(p("$.r"))).unwrap(),
            json!({"claim": {"id": 7}, "r": {"risk": "high"}})
        );
    }

    #[test]
    fn serializes_as_canonical_text() {
        assert_eq!(serde_json::to_value(p("$['a']")).unwrap(), json!("$.a"));
        assert_eq!(serde_json::to_value(OptionalPath::Null).unwrap(), json!(null));
    }
}
