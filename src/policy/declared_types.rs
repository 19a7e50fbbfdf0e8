//! Composite arguments of builtins judged against the types OPA declares.
//!
//! OPA's type checker refuses `sum([1, "2"])`, `concat(",", [1])`,
//! `time.date([1])`, `{1} | [1]` and `x := [1]; upper(x)` at compile time:
//! each argument is unified with the builtin's declared type, a composite
//! literal element by element, anything else by the type the checker knows
//! of it. The declarations were asked of real OPA
//! (`tests/opa/signatures.py` writes `builtin_signatures.json` in OPA's own
//! notation: `any<array[number], set[number]>`) and are parsed here; the
//! unification follows OPA's rules (`array<…>` a fixed tuple, `array[…]`
//! any length, `any<…>` one of, bare `any` everything).
//!
//! What the checker would know of a reference, a variable or a call is
//! given by the caller (the shapes of [`super::undefined_refs`]); where it
//! knows nothing, the type is `any` and everything unifies. So a module is
//! refused only where OPA refuses it too; scalar arguments are judged by
//! [`super::literal_types`], with its wording.

use std::collections::{HashMap, HashSet};
use std::sync::LazyLock;

use regorus::unstable::Expr;

use super::literal_types::builtin_call;

/// A type, in OPA's sense.
#[derive(Clone, Debug, PartialEq)]
pub(super) enum Ty {
    /// One of these; with none, any value at all (OPA's `any`).
    Any(Vec<Ty>),
    Null,
    Boolean,
    Number,
    String,
    /// `array<a, b>` (fixed elements) and/or `array[c]` (any number more).
    Array {
        fixed: Vec<Ty>,
        rest: Option<Box<Ty>>,
    },
    Set(Box<Ty>),
    /// `object<k: a>` (these keys) and/or `object[k: v]` (any keys of `k`).
    Object {
        fixed: Vec<(String, Ty)>,
        rest: Option<Box<(Ty, Ty)>>,
    },
}

/// Anything: what is known of a value the checker cannot see into.
pub(super) const TOP: Ty = Ty::Any(Vec::new());

/// A builtin's declaration: each argument's type with its text, and the
/// type of its result.
struct Declaration {
    args: Vec<(Ty, String)>,
    result: Ty,
}

static DECLARED: LazyLock<HashMap<String, Declaration>> = LazyLock::new(|| {
    #[derive(serde::Deserialize)]
    struct Row {
        args: Vec<String>,
        result: String,
    }
    let table: HashMap<String, Row> =
        serde_json::from_str(include_str!("builtin_signatures.json")).expect("builtin_signatures.json is a JSON table");
    let read = |name: &str, t: &str| parse(t).unwrap_or_else(|| panic!("{name}: unreadable type {t}"));
    table
        .into_iter()
        .map(|(name, row)| {
            let args = row.args.iter().map(|t| (read(&name, t), t.clone())).collect();
            let result = read(&name, &row.result);
            (name, Declaration { args, result })
        })
        .collect()
});

/// The type OPA declares for the result of the builtin (or operator, by
/// its name: `plus`) `name`; None for a builtin it declares nothing of.
pub(super) fn result_type(name: &str) -> Option<&'static Ty> {
    DECLARED.get(name).map(|d| &d.result)
}

/// Reads OPA's notation of a type.
fn parse(text: &str) -> Option<Ty> {
    let mut p = TypeText {
        s: text.as_bytes(),
        at: 0,
    };
    let ty = p.ty()?;
    p.skip_spaces();
    (p.at == p.s.len()).then_some(ty)
}

struct TypeText<'a> {
    s: &'a [u8],
    at: usize,
}

impl TypeText<'_> {
    fn skip_spaces(&mut self) {
        while self.s.get(self.at) == Some(&b' ') {
            self.at += 1;
        }
    }

    fn eat(&mut self, c: u8) -> bool {
        self.skip_spaces();
        if self.s.get(self.at) == Some(&c) {
            self.at += 1;
            return true;
        }
        false
    }

    fn word(&mut self) -> Option<String> {
        self.skip_spaces();
        let start = self.at;
        while self
            .s
            .get(self.at)
            .is_some_and(|c| c.is_ascii_alphanumeric() || *c == b'_' || *c == b'.')
        {
            self.at += 1;
        }
        (self.at > start).then(|| String::from_utf8_lossy(&self.s[start..self.at]).into_owned())
    }

    /// `a, b, c>` after an opening `<`.
    fn list(&mut self) -> Option<Vec<Ty>> {
        let mut out = vec![self.ty()?];
        while self.eat(b',') {
            out.push(self.ty()?);
        }
        self.eat(b'>').then_some(out)
    }

    fn ty(&mut self) -> Option<Ty> {
        Some(match self.word()?.as_str() {
            "any" => Ty::Any(if self.eat(b'<') { self.list()? } else { Vec::new() }),
            "null" => Ty::Null,
            "boolean" => Ty::Boolean,
            "number" => Ty::Number,
            "string" => Ty::String,
            "array" => {
                let fixed = if self.eat(b'<') { self.list()? } else { Vec::new() };
                let rest = if self.eat(b'[') {
                    let t = self.ty()?;
                    if !self.eat(b']') {
                        return None;
                    }
                    Some(Box::new(t))
                } else {
                    None
                };
                Ty::Array { fixed, rest }
            }
            "set" => {
                if !self.eat(b'[') {
                    return None;
                }
                let t = self.ty()?;
                self.eat(b']').then_some(Ty::Set(Box::new(t)))?
            }
            "object" => {
                let mut fixed = Vec::new();
                if self.eat(b'<') {
                    loop {
                        let key = self.word()?;
                        if !self.eat(b':') {
                            return None;
                        }
                        fixed.push((key, self.ty()?));
                        if self.eat(b'>') {
                            break;
                        }
                        if !self.eat(b',') {
                            return None;
                        }
                    }
                }
                let rest = if self.eat(b'[') {
                    let k = self.ty()?;
                    if !self.eat(b':') {
                        return None;
                    }
                    let v = self.ty()?;
                    self.eat(b']').then_some(Box::new((k, v)))
                } else {
                    None
                };
                Ty::Object { fixed, rest }
            }
            _ => return None,
        })
    }
}

impl Ty {
    /// The type of the `i`th element of an array of this type.
    pub(super) fn element(&self, i: usize) -> Option<&Ty> {
        match self {
            Ty::Array { fixed, rest } => fixed.get(i).or(rest.as_deref()),
            _ => None,
        }
    }

    /// The type under `key` in an object of this type (`key` typed `kt`).
    pub(super) fn member(&self, key: &str, kt: &Ty) -> Option<&Ty> {
        match self {
            Ty::Object { fixed, rest } => {
                if let Some((_, t)) = fixed.iter().find(|(k, _)| k == key) {
                    return Some(t);
                }
                rest.as_deref().filter(|(k, _)| unifies(kt, k)).map(|(_, v)| v)
            }
            _ => None,
        }
    }
}

/// OPA's `unifies`: whether a value of type `a` may be one of type `b`.
pub(super) fn unifies(a: &Ty, b: &Ty) -> bool {
    if let Ty::Any(members) = a
        && (members.is_empty() || members.iter().any(|m| unifies(m, b)))
    {
        return true;
    }
    if let Ty::Any(members) = b
        && (members.is_empty() || members.iter().any(|m| unifies(m, a)))
    {
        return true;
    }
    match (a, b) {
        (Ty::Any(_), _) | (_, Ty::Any(_)) => false,
        (Ty::Null, Ty::Null) | (Ty::Boolean, Ty::Boolean) | (Ty::Number, Ty::Number) | (Ty::String, Ty::String) => true,
        (Ty::Array { fixed: fa, rest: ra }, Ty::Array { fixed: fb, rest: rb }) => {
            let fixed_fit = |f: &[Ty], other: &Ty| {
                f.iter()
                    .enumerate()
                    .all(|(i, t)| other.element(i).is_some_and(|o| unifies(t, o)))
            };
            fixed_fit(fa, b)
                && fixed_fit(fb, a)
                && match (ra, rb) {
                    (Some(x), Some(y)) => unifies(x, y),
                    _ => true,
                }
        }
        (Ty::Object { fixed: fa, rest: ra }, Ty::Object { fixed: fb, rest: rb }) => {
            let fixed_fit = |f: &[(String, Ty)], other: &Ty| {
                f.iter()
                    .all(|(k, t)| other.member(k, &Ty::String).is_some_and(|o| unifies(t, o)))
            };
            fixed_fit(fa, b)
                && fixed_fit(fb, a)
                && match (ra, rb) {
                    (Some(x), Some(y)) => unifies(&x.1, &y.1),
                    _ => true,
                }
        }
        (Ty::Set(x), Ty::Set(y)) => unifies(x, y),
        _ => false,
    }
}

/// The type of a scalar literal; None for anything else.
fn scalar_type(e: &Expr) -> Option<Ty> {
    Some(match e {
        Expr::Null { .. } => Ty::Null,
        Expr::Bool { .. } => Ty::Boolean,
        Expr::Number { .. } => Ty::Number,
        Expr::String { .. } | Expr::RawString { .. } => Ty::String,
        _ => return None,
    })
}

/// OPA's `unify1`: whether the term `e` may be a value of type `want`. A
/// composite literal is judged element by element; anything else by the
/// type `type_of` knows of it.
fn unify_term(e: &Expr, want: &Ty, type_of: &dyn Fn(&Expr) -> Ty) -> bool {
    match e {
        Expr::Array { items, .. } => match want {
            Ty::Array { fixed, rest } => {
                (items.len() == fixed.len() || rest.is_some())
                    && items
                        .iter()
                        .enumerate()
                        .all(|(i, item)| want.element(i).is_some_and(|t| unify_term(item, t, type_of)))
            }
            Ty::Any(members) => members.is_empty() || members.iter().any(|m| unify_term(e, m, type_of)),
            _ => false,
        },
        Expr::Set { items, .. } => match want {
            Ty::Set(of) => items.iter().all(|item| unify_term(item, of, type_of)),
            Ty::Any(members) => members.is_empty() || members.iter().any(|m| unify_term(e, m, type_of)),
            _ => false,
        },
        Expr::Object { fields, .. } => match want {
            Ty::Object { fixed, rest } => {
                (fields.len() == fixed.len() || rest.is_some())
                    && fields.iter().all(|(_, k, v)| {
                        let key = match k.as_ref() {
                            Expr::String { value, .. } | Expr::RawString { value, .. } => {
                                value.as_string().ok().map(|s| s.to_string())
                            }
                            _ => None,
                        };
                        match (key, scalar_type(k)) {
                            (Some(key), _) => want
                                .member(&key, &Ty::String)
                                .is_some_and(|t| unify_term(v, t, type_of)),
                            // A number, boolean or null key: only the
                            // object's open part may take it.
                            (None, Some(kt)) => rest
                                .as_deref()
                                .is_some_and(|(rk, rv)| unifies(&kt, rk) && unify_term(v, rv, type_of)),
                            // A computed key: OPA does not judge the value.
                            (None, None) => true,
                        }
                    })
            }
            Ty::Any(members) => members.is_empty() || members.iter().any(|m| unify_term(e, m, type_of)),
            _ => false,
        },
        _ => match scalar_type(e) {
            Some(t) => unifies(&t, want),
            None => unifies(&type_of(e), want),
        },
    }
}

/// Why OPA refuses this call (or operator) for a composite argument, if it
/// does: a composite literal, or a value known to be a composite, that
/// does not unify with the type the builtin declares there.
pub(super) fn mistyped_composite(e: &Expr, own: &HashSet<String>, type_of: &dyn Fn(&Expr) -> Ty) -> Option<String> {
    let (name, args) = builtin_call(e, own)?;
    let declared = DECLARED.get(&name)?;
    for (i, (arg, (want, text))) in args.iter().zip(&declared.args).enumerate() {
        let judged = match arg {
            Expr::Array { .. } | Expr::Set { .. } | Expr::Object { .. } => true,
            other => scalar_type(other).is_none() && type_of(other) != TOP,
        };
        if judged && !unify_term(arg, want, type_of) {
            return Some(format!(
                "{name}: invalid argument(s): argument {} ({}) is not of the type {name} takes there: {text}",
                i + 1,
                shorten(arg.span().text())
            ));
        }
    }
    None
}

fn shorten(text: &str) -> String {
    const MAX: usize = 60;
    if text.chars().count() <= MAX {
        return text.to_string();
    }
    let head: String = text.chars().take(MAX).collect();
    format!("{head}…")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_declaration_reads() {
        assert!(DECLARED.len() > 100, "{} declarations", DECLARED.len());
        assert_eq!(
            parse("any<array[number], set[number]>"),
            Some(Ty::Any(vec![
                Ty::Array {
                    fixed: vec![],
                    rest: Some(Box::new(Ty::Number))
                },
                Ty::Set(Box::new(Ty::Number)),
            ]))
        );
        assert_eq!(
            parse("object<op: string, path: any>[any: any]"),
            Some(Ty::Object {
                fixed: vec![("op".into(), Ty::String), ("path".into(), TOP)],
                rest: Some(Box::new((TOP, TOP))),
            })
        );
        assert_eq!(parse("array<number, string"), None);
    }

    #[test]
    fn unification_follows_opa() {
        let tuple = Ty::Array {
            fixed: vec![Ty::Number, Ty::Number],
            rest: None,
        };
        let numbers = parse("any<array[number], set[number]>").unwrap();
        assert!(unifies(&tuple, &numbers));
        assert!(!unifies(&tuple, &Ty::String));
        assert!(!unifies(
            &tuple,
            &Ty::Array {
                fixed: vec![Ty::Number],
                rest: None
            }
        ));
        assert!(unifies(&TOP, &Ty::String) && unifies(&Ty::String, &TOP));
    }

    fn check(body: &str) -> Option<String> {
        let bundle = crate::policy::bundle::ParsedBundle::of_modules(&[("p.rego", &format!("package p\n{body}\n"))]);
        super::super::undefined_refs::first_type_error(
            &super::super::rewrite::parse_bundle(&bundle).expect("the module parses"),
        )
    }

    /// Each body with whether real OPA v1.20 refuses it (rego_type_error),
    /// as OPA answered when asked: Warden must refuse the same ones. The
    /// later ones type builtins' results.
    const OPA_VERDICTS: &[(&str, bool)] = &[
        ("x := sum([1, \"2\"])", true),
        ("x := sum([1, 2])", false),
        ("x := sum([])", false),
        ("x := sum({1, \"a\"})", true),
        ("x := sum({1, 2})", false),
        ("x := concat(\",\", [1])", true),
        ("x := concat(\",\", [\"a\", \"b\"])", false),
        ("x := concat(\",\", {\"a\", 1})", true),
        ("x := concat(\",\", [])", false),
        ("x := time.date([1])", true),
        ("x := time.date([1, \"UTC\"])", false),
        ("x := time.date([])", true),
        ("x := time.date([1, 2])", true),
        ("x := time.date([1, \"UTC\", \"x\"])", true),
        ("x := {1} | [1]", true),
        ("x := {1} | {2}", false),
        ("x := [1] & {1}", true),
        ("y := [1]\nx := upper(y)", true),
        ("x := upper(y) if { y := [1] }", true),
        ("x := count([1, \"a\"])", false),
        ("x := max([1, \"a\"])", false),
        ("x := json.patch({}, [{\"op\": 1}])", true),
        (
            "x := json.patch({}, [{\"op\": \"add\", \"path\": \"/a\", \"value\": 1}])",
            false,
        ),
        ("x := json.patch({}, [{\"op\": \"add\"}])", false),
        ("x := json.marshal_with_options({}, {\"pretty\": 1})", true),
        ("x := json.marshal_with_options({}, {\"pretty\": true})", false),
        ("x := json.marshal_with_options({}, {\"other\": 1})", false),
        ("x := json.marshal_with_options({}, {})", false),
        ("x := object.get([1], 0, 0)", true),
        ("x := object.get({\"a\": 1}, \"a\", 0)", false),
        ("x := object.union({\"a\": 1}, [1])", true),
        ("x := net.cidr_merge([1])", true),
        ("x := net.cidr_merge([\"10.0.0.0/8\"])", false),
        ("x := split([\"a\"], \",\")", true),
        ("x := array.concat([1], {1})", true),
        ("x := array.concat([1], [2])", false),
        ("x := sum([1, input.x])", false),
        ("x := sum([1, y]) if { y := \"a\" }", true),
        ("x := sum([1, y]) if { y := 2 }", false),
        ("r := [1, 2]\nx := concat(\",\", r)", true),
        ("r := [\"a\"]\nx := concat(\",\", r)", false),
        ("r := {\"a\": 1}\nx := upper(r)", true),
        ("f(a) := [a]\nx := upper(f(1))", true),
        ("x := object.keys({1: 2})", false),
        ("x := object.remove({\"a\": 1}, [\"a\"])", false),
        ("x := object.remove({\"a\": 1}, {\"a\"})", false),
        ("x := object.remove({\"a\": 1}, \"a\")", true),
        ("x := strings.replace_n({\"a\": 1}, \"abc\")", true),
        ("x := strings.replace_n({\"a\": \"b\"}, \"abc\")", false),
        ("x := strings.replace_n({1: \"b\"}, \"abc\")", true),
        ("x := graph.reachable({\"a\": [\"b\"]}, [\"a\"])", false),
        ("x := graph.reachable({\"a\": \"b\"}, [\"a\"])", true),
        ("x := walk([1])", false),
        ("x := is_array([1])", false),
        ("x := to_number([1])", true),
        ("x := sprintf(\"%v\", 1)", true),
        ("x := sprintf(\"%v\", [1])", false),
        ("x := regex.globs_match([1], \"a\")", true),
        (
            "x := io.jwt.encode_sign({\"alg\": \"HS256\"}, {}, {\"kty\": \"oct\", \"k\": \"a\"})",
            false,
        ),
        ("x := io.jwt.encode_sign({\"alg\": 1}, {}, {})", false),
        ("x := [1, 2] - [1]", true),
        ("x := {1, 2} - {1}", false),
        ("x := {\"a\": 1} - {\"a\": 2}", true),
        ("x := time.add_date(0, [1], 1, 1)", true),
        ("x := time.diff([1, \"UTC\"], 0)", false),
        ("x := time.diff([1, 2], 0)", true),
        ("x := units.parse([\"a\"])", true),
        (
            "x := crypto.x509.parse_and_verify_certificates_with_options(\"a\", {\"DNSName\": 1})",
            false,
        ),
        (
            "x := crypto.x509.parse_and_verify_certificates_with_options(\"a\", {\"DNSName\": \"a\"})",
            false,
        ),
        ("x := count([1]).foo", true),
        ("x := split(\"a\", \",\")[5]", false),
        ("x := split(\"a\", \",\").foo", true),
        ("x := split(\"a\", \",\")[0].foo", true),
        ("x := upper(count(input.x))", true),
        ("x := upper(y) if { y := count(input.x) }", true),
        ("y := count(input.x)\nx := upper(y)", true),
        ("x := upper(split(\"a,b\", \",\"))", true),
        ("x := upper(concat(\",\", [\"a\"]))", false),
        ("x := y.a if { y := sprintf(\"%v\", [1]) }", true),
        ("x := sum(split(\"1,2\", \",\"))", true),
        ("x := concat(\",\", split(\"1,2\", \",\"))", false),
        ("x := count(json.unmarshal(\"1\"))", false),
        ("x := upper(object.get({}, \"a\", 1))", false),
        ("x := upper(time.now_ns())", true),
        ("x := upper(to_number(\"1\"))", true),
        ("x := sum([count(input.x), 1])", false),
        ("x := sum([upper(input.x), 1])", true),
        ("x := upper(y) if { y := split(input.s, \",\") }", true),
        ("x := upper(y) if { y := split(input.s, \",\"); y != 1 }", true),
        ("x := concat(\",\", [count(input.x)])", true),
        ("x := upper(z) if { some z in split(input.s, \",\") }", false),
        ("x := upper(split(input.s, \",\")[0])", false),
        ("x := count(upper(input.x))", false),
        ("x := count(count(input.x))", true),
        ("x := upper(trim(input.x, \" \"))", false),
        ("x := upper(y) if { y := 1 + count(input.x) }", true),
        ("x := upper(abs(input.x))", true),
        ("x := upper(y) if { y := {\"a\": count(input.x)}.a }", true),
        ("x := upper(r)\nr := count(input.x)", true),
        ("x := sum(count(input.x))", true),
        ("x := count(split(input.s, \",\")) + 1", false),
        ("x := concat(\",\", [1 + 2])", true),
        ("x := {1} | ({2} & {3})", false),
        ("x := count({1} - {2})", false),
        ("x := upper(input.a - input.b)", true),
        ("x := split(input.s, \",\")[input.i]", false),
        ("x := object.keys({\"a\": 1}).b", false),
        ("x := json.unmarshal(input.s).foo", false),
        ("x := upper([y | y := 1])", true),
        ("x := upper({y | y := 1})", true),
        ("x := upper({y: 1 | y := \"a\"})", true),
        ("x := count([y | y := 1])", false),
        ("x := concat(\",\", [y | some y in input.x])", false),
        ("x := object.get([y | y := 1], \"a\", 1)", true),
        ("x := upper(z) if { [y, z] := [1, \"a\"] }", false),
        ("x := sum([y | y := 1]) + 1", false),
        ("x := [y | y := 1].foo", true),
        ("x := {y: 1 | y := \"a\"}.b", false),
        ("x := upper(y) if { y := [z | z := 1] }", true),
        ("x := upper(y) if { some y in [1, \"a\"] }", false),
        ("x := upper(k) if { some k, v in [1] }", true),
        ("x := upper(v) if { some k, v in {\"a\": 1} }", true),
        ("x := upper(k) if { some k, v in {\"a\": 1} }", false),
        ("x := upper(y) if { some y in {1, 2} }", true),
        ("x := upper(y) if { some y in numbers.range(1, 3) }", true),
        ("x := upper(y) if { some y in input.xs }", false),
        ("x := upper(y) if { some y in [1, 2]; y > 0 }", true),
        ("x := [upper(y) | some y in [1, 2]]", true),
        ("x := upper(y) if { some y in [[1]] }", true),
        ("x := count(y) if { some y in [1] }", true),
        ("x := upper(y.a) if { some y in [{\"a\": 1}] }", true),
        ("x := y.b if { some y in [{\"a\": 1}] }", true),
        ("r := [1, 2]\nx := upper(y) if { some y in r }", true),
        ("x := upper(y) if { some y in {\"a\", 1} }", false),
        ("x := upper(k) if { some k, v in {\"a\", \"b\"} }", false),
        ("x := upper(y) if { some y in object.keys({\"a\": 1}) }", false),
        ("x := upper(y) if { some y in [1, 2] }", true),
        ("x := upper(y) if { y = 1 }", true),
        ("x := upper(y) if { 1 = y }", true),
        ("x := upper(y) if { y = \"a\" }", false),
        ("x := upper(y) if { y = [1] }", true),
        ("x := y.b if { y = {\"a\": 1} }", true),
        ("x := upper(y) if { y = input.x }", false),
        ("x := upper(y) if { z := 1; y = z }", true),
        ("x := upper(y) if { y = count(input.x) }", true),
        ("r := 1\nx := upper(r) if { r = 1 }", true),
        ("x := [upper(y) | y = 1]", true),
        // Comprehensions' members, sets' keys, objects' number keys.
        ("x := concat(\",\", [y | y := 1])", true),
        ("x := sum({y | y := \"a\"})", true),
        ("x := [y | y := 1][0].foo", true),
        ("x := {y | y := 1}.foo", true),
        ("x := upper(k) if { some k, _ in {1: \"a\"} }", true),
        ("x := {1}.foo", true),
        ("x := {y | y := 1}[1]", false),
        ("x := {y | y := \"a\"}.foo", false),
        ("x := concat(\",\", [[y] | y := \"a\"])", true),
        ("x := sum([count(z) | some z in input.xs])", false),
        ("x := concat(\",\", [sprintf(\"%v\", [z]) | some z in input.xs])", false),
        ("x := concat(\",\", [y | y := input.a])", false),
        ("x := upper(k) if { some k, _ in {\"a\": \"a\", 1: \"b\"} }", false),
        ("x := {k: v | some k, v in {\"a\": 1}}.a.b", true),
        ("x := concat(\",\", {k: v | k := \"a\"; v := 1})", true),
        ("x := [y | some y in [1, 2]][0].foo", true),
        ("x := upper([y | some y in [1, 2]][0])", true),
        ("x := [y | some y in [1, 2]]\nz := x[0].foo", true),
        ("x := r[0].foo if { r := [y | some y in [1, 2]] }", true),
        ("x := y.foo if { some y in [1, \"a\"] }", true),
        ("x := y.foo if { some y in [1, {\"foo\": 2}] }", false),
        ("x := [y | some y in [1, \"a\"]][0].foo", true),
        ("x := {1, \"a\"}.foo", false),
        ("x := {y | some y in [1, 2]}.foo", true),
        ("x := [{\"a\": y} | some y in [1]][0].b", true),
        ("x := [{\"a\": y} | some y in [1]][0].a", false),
        // Names bound by a pattern over a literal of the same shape.
        ("x := upper(y) if { [y, z] := [1, \"a\"] }", true),
        ("x := upper(z) if { [y, [z]] := [1, [2]] }", true),
        ("x := upper(z) if { [y, [z]] := [1, [\"b\"]] }", false),
        ("x := upper(y) if { [y, z] := input.pair }", false),
        ("x := upper(y) if { {\"a\": y} := {\"a\": 1} }", true),
        (
            "x := upper(y) if { {\"a\": y, \"b\": z} := {\"b\": \"s\", \"a\": [1]} }",
            true,
        ),
        (
            "x := upper(z) if { {\"a\": y, \"b\": z} := {\"b\": \"s\", \"a\": [1]} }",
            false,
        ),
        ("x := upper(y) if { some y; y = 1 }", true),
        ("x := upper(y) if { y = 1; y = 2 }", true),
        ("x := upper(y) if { y = \"a\"; y = \"b\" }", false),
        ("x := upper(y) if { y = 1; y = input.a }", true),
        ("x := upper(y) if { y = input.a; y = 1 }", false),
        ("x := upper(y) if { y = [1]; y = input.a }", true),
        ("x := upper(y) if { y = z; z = 1 }", true),
        ("x := upper(y) if { y = \"a\"; y = 1 }", true),
        ("x := upper(z) if { y = \"a\"; y = z }", false),
        ("x := upper(y) if { w := input.a; y = w; y = 1 }", false),
        ("x := 1 if { y = \"a\"; y = 1 }", true),
        ("x := 1 if { y = [1]; y = 1 }", true),
        ("x := 1 if { y = {\"a\": 1}; y = [1] }", true),
        ("x := 1 if { y = set(); y = {1} }", false),
        ("x := 1 if { y = [1]; y = [\"a\"] }", true),
        ("x := 1 if { y = [1]; y = [2] }", false),
        ("x := 1 if { y = {\"a\": 1}; y = {\"a\": \"b\"} }", true),
        ("x := 1 if { y = {\"a\": 1}; y = {\"b\": 1} }", true),
        ("x := 1 if { y = [1]; y = [1, 2] }", true),
        ("x := 1 if { y = [1]; y = [input.a] }", false),
        ("x := upper(y) if { some y; y = \"a\" }", false),
        ("x := upper(y) if { some y; y = input.a }", false),
    ];

    #[test]
    fn composite_arguments_are_refused_where_opa_refuses_them() {
        let mut wrong = Vec::new();
        for (body, opa_refuses) in OPA_VERDICTS {
            let ours = check(body);
            if ours.is_some() != *opa_refuses {
                wrong.push(format!("{body:?}: OPA refuses: {opa_refuses}, Warden: {ours:?}"));
            }
        }
        assert!(wrong.is_empty(), "{}", wrong.join("\n"));
        assert_eq!(
            check("x := sum([1, \"2\"])").as_deref(),
            Some(
                "p.rego:2: rego_type_error: sum: invalid argument(s): argument 1 ([1, \"2\"]) is not of the type sum \
                 takes there: any<array[number], set[number]> (OPA refuses this module too)"
            )
        );
    }
}
