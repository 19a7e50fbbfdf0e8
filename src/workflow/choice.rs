//! `Choice` rules: what they are, and which one a state's input takes.
//!
//! A rule is a comparison of the node a `variable` path names, or `and`,
//! `or`, `not` of rules. ASL semantics: a comparison with a missing variable,
//! or a variable (or `…Path` operand) of the wrong type, is false, never an
//! error; only `isPresent` looks at absence. Strings compare by Unicode code
//! point; numbers exactly when both are integers, as `f64` otherwise;
//! timestamps (RFC 3339 with an uppercase `T`, and `Z` or an offset) as
//! instants, whatever their offsets. `stringMatches` takes `*` for any run of
//! characters, `\*` for a literal `*`, `\\` for a literal `\`.
//!
//! Invariants: no IO; evaluation is total (no panics, no errors), and
//! [`choose`] returns the first matching rule's `next`, else the `default`,
//! else `None`, on which the interpreter raises `States.NoChoiceMatched`.

use std::cmp::Ordering;

use serde::{Serialize, Serializer};
use serde_json::{Map, Number, Value};

use super::definition::{ChoiceState, Timestamp};
use super::path::Path;

/// How a comparison relates the variable to its operand.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Cmp {
    Equals,
    LessThan,
    GreaterThan,
    LessThanEquals,
    GreaterThanEquals,
}

/// A comparison's operand: a literal, or (`…Path`) a node of the input.
#[derive(Debug, Clone, PartialEq)]
pub enum Operand<T> {
    Value(T),
    Path(Path),
}

/// One comparison of a variable.
#[derive(Debug, Clone, PartialEq)]
pub enum Test {
    String(Cmp, Operand<String>),
    /// The pattern, as written (`*` wildcards, `\` escapes).
    StringMatches(String),
    Numeric(Cmp, Operand<Number>),
    /// `booleanEquals`.
    Boolean(Operand<bool>),
    Timestamp(Cmp, Operand<Timestamp>),
    IsPresent(bool),
    IsNull(bool),
    IsString(bool),
    IsNumeric(bool),
    IsBoolean(bool),
    IsTimestamp(bool),
}

/// A choice rule, without its `next`.
#[derive(Debug, Clone, PartialEq)]
pub enum Rule {
    Test { variable: Path, test: Test },
    And(Vec<Rule>),
    Or(Vec<Rule>),
    Not(Box<Rule>),
}

impl Cmp {
    pub const ALL: [Cmp; 5] = [
        Cmp::Equals,
        Cmp::LessThan,
        Cmp::GreaterThan,
        Cmp::LessThanEquals,
        Cmp::GreaterThanEquals,
    ];

    /// The operator's part of a key: `stringLessThan` ends in `LessThan`.
    pub fn suffix(self) -> &'static str {
        match self {
            Cmp::Equals => "Equals",
            Cmp::LessThan => "LessThan",
            Cmp::GreaterThan => "GreaterThan",
            Cmp::LessThanEquals => "LessThanEquals",
            Cmp::GreaterThanEquals => "GreaterThanEquals",
        }
    }

    pub fn holds(self, ordering: Ordering) -> bool {
        match self {
            Cmp::Equals => ordering.is_eq(),
            Cmp::LessThan => ordering.is_lt(),
            Cmp::GreaterThan => ordering.is_gt(),
            Cmp::LessThanEquals => ordering.is_le(),
            Cmp::GreaterThanEquals => ordering.is_ge(),
        }
    }
}

/// What a comparison key names, for decoding.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum TestKind {
    String,
    Numeric,
    Timestamp,
    Boolean,
    StringMatches,
    IsPresent,
    IsNull,
    IsString,
    IsNumeric,
    IsBoolean,
    IsTimestamp,
}

/// A comparison key, parsed: `numericLessThanPath` is (Numeric, LessThan, path).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct TestKey {
    pub kind: TestKind,
    pub cmp: Cmp,
    pub path: bool,
}

pub(crate) fn parse_key(key: &str) -> Option<TestKey> {
    let (base, path) = match key.strip_suffix("Path") {
        Some(base) => (base, true),
        None => (key, false),
    };
    for (prefix, kind) in [
        ("string", TestKind::String),
        ("numeric", TestKind::Numeric),
        ("timestamp", TestKind::Timestamp),
    ] {
        if let Some(op) = base.strip_prefix(prefix)
            && let Some(cmp) = Cmp::ALL.into_iter().find(|c| c.suffix() == op)
        {
            return Some(TestKey { kind, cmp, path });
        }
    }
    let kind = match (base, path) {
        ("booleanEquals", _) => TestKind::Boolean,
        ("stringMatches", false) => TestKind::StringMatches,
        ("isPresent", false) => TestKind::IsPresent,
        ("isNull", false) => TestKind::IsNull,
        ("isString", false) => TestKind::IsString,
        ("isNumeric", false) => TestKind::IsNumeric,
        ("isBoolean", false) => TestKind::IsBoolean,
        ("isTimestamp", false) => TestKind::IsTimestamp,
        _ => return None,
    };
    Some(TestKey {
        kind,
        cmp: Cmp::Equals,
        path,
    })
}

fn operand_json<T: Serialize>(operand: &Operand<T>) -> (bool, Value) {
    match operand {
        Operand::Value(v) => (false, serde_json::to_value(v).unwrap_or(Value::Null)),
        Operand::Path(p) => (true, Value::String(p.to_string())),
    }
}

impl Test {
    /// The key and the value it has in a definition.
    pub fn to_entry(&self) -> (String, Value) {
        let (base, (path, value)) = match self {
            Test::String(cmp, o) => (format!("string{}", cmp.suffix()), operand_json(o)),
            Test::Numeric(cmp, o) => (format!("numeric{}", cmp.suffix()), operand_json(o)),
            Test::Timestamp(cmp, o) => (format!("timestamp{}", cmp.suffix()), operand_json(o)),
            Test::Boolean(o) => ("booleanEquals".to_owned(), operand_json(o)),
            Test::StringMatches(p) => ("stringMatches".to_owned(), (false, Value::String(p.clone()))),
            Test::IsPresent(b) => ("isPresent".to_owned(), (false, Value::Bool(*b))),
            Test::IsNull(b) => ("isNull".to_owned(), (false, Value::Bool(*b))),
            Test::IsString(b) => ("isString".to_owned(), (false, Value::Bool(*b))),
            Test::IsNumeric(b) => ("isNumeric".to_owned(), (false, Value::Bool(*b))),
            Test::IsBoolean(b) => ("isBoolean".to_owned(), (false, Value::Bool(*b))),
            Test::IsTimestamp(b) => ("isTimestamp".to_owned(), (false, Value::Bool(*b))),
        };
        (if path { format!("{base}Path") } else { base }, value)
    }
}

impl Rule {
    /// The rule as a definition has it (camelCase keys).
    pub fn to_json(&self) -> Map<String, Value> {
        let mut map = Map::new();
        match self {
            Rule::Test { variable, test } => {
                map.insert("variable".into(), Value::String(variable.to_string()));
                let (key, value) = test.to_entry();
                map.insert(key, value);
            }
            Rule::And(rules) => {
                map.insert("and".into(), rules.iter().map(|r| Value::Object(r.to_json())).collect());
            }
            Rule::Or(rules) => {
                map.insert("or".into(), rules.iter().map(|r| Value::Object(r.to_json())).collect());
            }
            Rule::Not(rule) => {
                map.insert("not".into(), Value::Object(rule.to_json()));
            }
        }
        map
    }
}

impl Serialize for Rule {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        self.to_json().serialize(s)
    }
}

/// Whether `rule` holds for `input` (the state's input after `inputPath`).
pub fn evaluate(rule: &Rule, input: &Value) -> bool {
    match rule {
        Rule::And(rules) => rules.iter().all(|r| evaluate(r, input)),
        Rule::Or(rules) => rules.iter().any(|r| evaluate(r, input)),
        Rule::Not(rule) => !evaluate(rule, input),
        Rule::Test { variable, test } => match (variable.get(input), test) {
            (found, Test::IsPresent(expected)) => found.is_some() == *expected,
            (None, _) => false,
            (Some(value), test) => holds(test, value, input),
        },
    }
}

/// The first matching rule's `next`, else the `default`, else `None`
/// (`States.NoChoiceMatched`). `input` is the state's input after its
/// `inputPath`.
pub fn choose<'a>(state: &'a ChoiceState, input: &Value) -> Option<&'a str> {
    state
        .choices
        .iter()
        .find(|c| evaluate(&c.rule, input))
        .map(|c| c.next.as_str())
        .or(state.default.as_deref())
}

fn resolve<'a, T>(operand: &'a Operand<T>, input: &'a Value, from: impl Fn(&'a Value) -> Option<T>) -> Option<T>
where
    T: Clone,
{
    match operand {
        Operand::Value(v) => Some(v.clone()),
        Operand::Path(p) => p.get(input).and_then(from),
    }
}

fn holds(test: &Test, value: &Value, input: &Value) -> bool {
    match test {
        Test::String(cmp, operand) => {
            let (Value::String(s), Some(other)) = (value, resolve(operand, input, |v| v.as_str().map(str::to_owned)))
            else {
                return false;
            };
            cmp.holds(s.as_str().cmp(other.as_str()))
        }
        Test::Numeric(cmp, operand) => {
            let (Value::Number(n), Some(other)) = (value, resolve(operand, input, |v| v.as_number().cloned())) else {
                return false;
            };
            compare_numbers(n, &other).is_some_and(|o| cmp.holds(o))
        }
        Test::Boolean(operand) => match (value, resolve(operand, input, Value::as_bool)) {
            (Value::Bool(b), Some(other)) => *b == other,
            _ => false,
        },
        Test::Timestamp(cmp, operand) => {
            let Some(t) = value.as_str().and_then(Timestamp::parse) else {
                return false;
            };
            let Some(other) = resolve(operand, input, |v| v.as_str().and_then(Timestamp::parse)) else {
                return false;
            };
            cmp.holds(t.instant().cmp(&other.instant()))
        }
        Test::StringMatches(pattern) => value.as_str().is_some_and(|s| string_matches(pattern, s)),
        Test::IsPresent(expected) => *expected,
        Test::IsNull(expected) => value.is_null() == *expected,
        Test::IsString(expected) => value.is_string() == *expected,
        Test::IsNumeric(expected) => value.is_number() == *expected,
        Test::IsBoolean(expected) => value.is_boolean() == *expected,
        Test::IsTimestamp(expected) => value.as_str().and_then(Timestamp::parse).is_some() == *expected,
    }
}

/// Exact when both are integers; as `f64` otherwise.
pub fn compare_numbers(a: &Number, b: &Number) -> Option<Ordering> {
    fn int(n: &Number) -> Option<i128> {
        n.as_i64().map(i128::from).or_else(|| n.as_u64().map(i128::from))
    }
    match (int(a), int(b)) {
        (Some(x), Some(y)) => Some(x.cmp(&y)),
        _ => a.as_f64()?.partial_cmp(&b.as_f64()?),
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Token {
    Star,
    Char(char),
}

fn tokens(pattern: &str) -> Vec<Token> {
    let mut out = Vec::new();
    let mut chars = pattern.chars();
    while let Some(c) = chars.next() {
        match c {
            '*' => out.push(Token::Star),
            '\\' => match chars.next() {
                Some(e) => out.push(Token::Char(e)),
                None => out.push(Token::Char('\\')),
            },
            c => out.push(Token::Char(c)),
        }
    }
    out
}

/// Why a `stringMatches` pattern is malformed: `\` escapes only `*` and `\`.
pub(crate) fn check_pattern(pattern: &str) -> Result<(), String> {
    let mut chars = pattern.chars();
    while let Some(c) = chars.next() {
        if c == '\\' {
            match chars.next() {
                Some('*' | '\\') => {}
                Some(e) => return Err(format!("`\\{e}` is not an escape: `\\` escapes only `*` and `\\`")),
                None => return Err("the pattern ends with a lone `\\`: write `\\\\` for a backslash".into()),
            }
        }
    }
    Ok(())
}

/// ASL `StringMatches`: `*` matches any run of characters (even empty).
pub fn string_matches(pattern: &str, text: &str) -> bool {
    let pattern = tokens(pattern);
    let text: Vec<char> = text.chars().collect();
    let (mut p, mut t) = (0, 0);
    // The last `*` seen, and where in the text it was tried.
    let mut star: Option<(usize, usize)> = None;
    while t < text.len() {
        match pattern.get(p) {
            Some(Token::Char(c)) if *c == text[t] => {
                p += 1;
                t += 1;
            }
            Some(Token::Star) => {
                star = Some((p, t));
                p += 1;
            }
            _ => match star {
                Some((sp, st)) => {
                    p = sp + 1;
                    t = st + 1;
                    star = Some((sp, st + 1));
                }
                None => return false,
            },
        }
    }
    pattern[p..].iter().all(|t| *t == Token::Star)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::workflow::decode::decode_rule;
    use serde_json::json;

    fn rule(v: Value) -> Rule {
        decode_rule(&v).unwrap_or_else(|e| panic!("{v}: {e:?}"))
    }

    fn check(key: &str, operand: Value, variable: Value, expected: bool) {
        let input = json!({"v": variable, "other": operand.clone()});
        let literal = rule(json!({"variable": "$.v", key: operand}));
        assert_eq!(
            evaluate(&literal, &input),
            expected,
            "{key}: {operand} against {variable}"
        );
        // The same through the `…Path` form, if there is one.
        let path_key = format!("{key}Path");
        if parse_key(&path_key).is_some() {
            let by_path = rule(json!({"variable": "$.v", path_key.clone(): "$.other"}));
            assert_eq!(
                evaluate(&by_path, &input),
                expected,
                "{path_key}: {operand} against {variable}"
            );
        }
    }

    #[test]
    fn every_comparison_true_and_false() {
        let cases: Vec<(&str, Value, Value, bool)> = vec![
            ("stringEquals", json!("high"), json!("high"), true),
            ("stringEquals", json!("high"), json!("low"), false),
            ("stringLessThan", json!("b"), json!("a"), true),
            ("stringLessThan", json!("b"), json!("b"), false),
            ("stringGreaterThan", json!("b"), json!("c"), true),
            ("stringGreaterThan", json!("b"), json!("a"), false),
            ("stringLessThanEquals", json!("b"), json!("b"), true),
            ("stringLessThanEquals", json!("b"), json!("c"), false),
            ("stringGreaterThanEquals", json!("b"), json!("b"), true),
            ("stringGreaterThanEquals", json!("b"), json!("a"), false),
            ("numericEquals", json!(3), json!(3), true),
            ("numericEquals", json!(3), json!(3.0), true),
            ("numericEquals", json!(3), json!(4), false),
            ("numericLessThan", json!(10), json!(9.5), true),
            ("numericLessThan", json!(10), json!(10), false),
            ("numericGreaterThan", json!(-1), json!(0), true),
            ("numericGreaterThan", json!(0), json!(-1), false),
            ("numericLessThanEquals", json!(2.5), json!(2.5), true),
            ("numericLessThanEquals", json!(2.5), json!(2.6), false),
            ("numericGreaterThanEquals", json!(u64::MAX), json!(u64::MAX), true),
            ("numericGreaterThanEquals", json!(u64::MAX), json!(u64::MAX - 1), false),
            ("booleanEquals", json!(true), json!(true), true),
            ("booleanEquals", json!(true), json!(false), false),
            (
                "timestampEquals",
                json!("2024-01-01T12:00:00Z"),
                json!("2024-01-01T13:00:00+01:00"),
                true,
            ),
            (
                "timestampEquals",
                json!("2024-01-01T12:00:00Z"),
                json!("2024-01-01T12:00:01Z"),
                false,
            ),
            (
                "timestampLessThan",
                json!("2024-01-01T12:00:00Z"),
                json!("2024-01-01T11:59:59Z"),
                true,
            ),
            (
                "timestampLessThan",
                json!("2024-01-01T12:00:00Z"),
                json!("2024-01-01T12:00:00Z"),
                false,
            ),
            (
                "timestampGreaterThan",
                json!("2024-01-01T12:00:00Z"),
                json!("2024-01-01T12:00:00.5Z"),
                true,
            ),
            (
                "timestampGreaterThan",
                json!("2024-01-01T12:00:00Z"),
                json!("2023-12-31T23:00:00Z"),
                false,
            ),
            (
                "timestampLessThanEquals",
                json!("2024-01-01T12:00:00Z"),
                json!("2024-01-01T12:00:00Z"),
                true,
            ),
            (
                "timestampLessThanEquals",
                json!("2024-01-01T12:00:00Z"),
                json!("2024-01-02T00:00:00Z"),
                false,
            ),
            (
                "timestampGreaterThanEquals",
                json!("2024-01-01T12:00:00Z"),
                json!("2024-01-01T14:00:00+02:00"),
                true,
            ),
            (
                "timestampGreaterThanEquals",
                json!("2024-01-01T12:00:00Z"),
                json!("2024-01-01T13:00:00+02:00"),
                false,
            ),
            ("stringMatches", json!("claim-*"), json!("claim-42"), true),
            ("stringMatches", json!("claim-*"), json!("clam-42"), false),
            ("isNull", json!(true), json!(null), true),
            ("isNull", json!(true), json!(0), false),
            ("isNull", json!(false), json!(0), true),
            ("isString", json!(true), json!("s"), true),
            ("isString", json!(true), json!(1), false),
            ("isNumeric", json!(true), json!(1.5), true),
            ("isNumeric", json!(true), json!("1.5"), false),
            ("isBoolean", json!(true), json!(false), true),
            ("isBoolean", json!(true), json!("false"), false),
            ("isTimestamp", json!(true), json!("2024-01-01T12:00:00Z"), true),
            ("isTimestamp", json!(true), json!("2024-01-01 12:00:00Z"), false),
            ("isTimestamp", json!(false), json!("yesterday"), true),
            ("isPresent", json!(true), json!(null), true),
            ("isPresent", json!(false), json!(null), false),
        ];
        for (key, operand, variable, expected) in cases {
            check(key, operand, variable, expected);
        }
    }

    #[test]
    fn missing_or_mistyped_is_false() {
        let input = json!({"s": "x", "n": 1, "b": true, "t": "2024-01-01T00:00:00Z"});
        for r in [
            json!({"variable": "$.nope", "stringEquals": "x"}),
            json!({"variable": "$.nope", "isNull": false}),
            json!({"variable": "$.nope", "isString": false}),
            json!({"variable": "$.n", "stringEquals": "1"}),
            json!({"variable": "$.s", "numericEquals": 1}),
            json!({"variable": "$.s", "booleanEquals": true}),
            json!({"variable": "$.n", "timestampEquals": "2024-01-01T00:00:00Z"}),
            json!({"variable": "$.s", "timestampEquals": "2024-01-01T00:00:00Z"}),
            json!({"variable": "$.n", "stringMatches": "*"}),
            // A `…Path` operand that is missing or of the wrong type.
            json!({"variable": "$.s", "stringEqualsPath": "$.nope"}),
            json!({"variable": "$.s", "stringEqualsPath": "$.n"}),
            json!({"variable": "$.n", "numericEqualsPath": "$.s"}),
            json!({"variable": "$.b", "booleanEqualsPath": "$.n"}),
            json!({"variable": "$.t", "timestampEqualsPath": "$.s"}),
            json!({"variable": "$.nope", "isPresent": true}),
        ] {
            assert!(!evaluate(&rule(r.clone()), &input), "{r}");
        }
        assert!(evaluate(
            &rule(json!({"variable": "$.nope", "isPresent": false})),
            &input
        ));
        assert!(evaluate(
            &rule(json!({"variable": "$.t", "timestampEqualsPath": "$.t"})),
            &input
        ));
    }

    #[test]
    fn combinators_nest() {
        let input = json!({"risk": "high", "amount": 5000, "vip": false});
        let r = rule(json!({
            "and": [
                {"variable": "$.risk", "stringEquals": "high"},
                {"or": [
                    {"variable": "$.amount", "numericGreaterThan": 10000},
                    {"not": {"variable": "$.vip", "booleanEquals": true}}
                ]}
            ]
        }));
        assert!(evaluate(&r, &input));
        assert!(!evaluate(&r, &json!({"risk": "high", "amount": 5000, "vip": true})));
        assert!(evaluate(&r, &json!({"risk": "high", "amount": 20000, "vip": true})));
        assert!(!evaluate(&r, &json!({"risk": "low", "amount": 20000, "vip": false})));
        // `not` of a comparison with a missing variable is true.
        assert!(evaluate(
            &rule(json!({"not": {"variable": "$.x", "stringEquals": "a"}})),
            &input
        ));
        assert!(!evaluate(
            &rule(json!({"or": [{"variable": "$.x", "isNull": true}]})),
            &input
        ));
    }

    #[test]
    fn wildcard_matching() {
        for (pattern, text, expected) in [
            ("*", "", true),
            ("*", "anything", true),
            ("", "", true),
            ("", "a", false),
            ("a*c", "abbbc", true),
            ("a*c", "abbbd", false),
            ("*.log", "x.log", true),
            ("*.log", "x.log.gz", false),
            ("a*b*c", "aXbYbZc", true),
            ("a*b*c", "acb", false),
            ("**x", "yyx", true),
            (r"a\*", "a*", true),
            (r"a\*", "ab", false),
            (r"a\\*", r"a\bc", true),
            ("héllo*", "héllo wörld", true),
            ("abc", "abc", true),
            ("abc", "abcd", false),
        ] {
            assert_eq!(string_matches(pattern, text), expected, "{pattern} ~ {text}");
        }
        assert_eq!(check_pattern(r"a\*b\\c*"), Ok(()));
        assert!(check_pattern(r"a\b").is_err());
        assert!(check_pattern("a\\").is_err());
    }

    #[test]
    fn numbers_compare_exactly() {
        let n = |v: Value| v.as_number().cloned().unwrap();
        assert_eq!(
            compare_numbers(&n(json!(-1)), &n(json!(u64::MAX))),
            Some(Ordering::Less)
        );
        assert_eq!(
            compare_numbers(&n(json!(9007199254740993_u64)), &n(json!(9007199254740992_u64))),
            Some(Ordering::Greater)
        );
        assert_eq!(compare_numbers(&n(json!(1)), &n(json!(1.0))), Some(Ordering::Equal));
    }

    #[test]
    fn keys_round_trip() {
        for key in [
            "stringEquals",
            "stringLessThanEqualsPath",
            "numericGreaterThanEquals",
            "timestampLessThanPath",
            "booleanEqualsPath",
            "stringMatches",
            "isTimestamp",
        ] {
            assert!(parse_key(key).is_some(), "{key}");
        }
        for key in [
            "stringMatchesPath",
            "isPresentPath",
            "numericNotEquals",
            "variable",
            "next",
            "StringEquals",
        ] {
            assert!(parse_key(key).is_none(), "{key}");
        }
        let r = json!({"variable": "$.a", "numericLessThanPath": "$.limit"});
        assert_eq!(Value::Object(rule(r.clone()).to_json()), r);
        let r = json!({"not": {"and": [{"variable": "$['x y']", "timestampEquals": "2024-01-01T00:00:00Z"}]}});
        assert_eq!(Value::Object(rule(r.clone()).to_json()), r);
    }
}
