//! Which kinds of scalar each builtin's arguments take, as OPA's type
//! checker judges them at upload.
//!
//! OPA refuses a module that calls a builtin with a value of a kind the
//! builtin does not take (`count(12)`, `upper(1)`, `1 + "a"`), whether or
//! not anything evaluates the call; regorus compiled it, and a decision
//! reaching the call failed. Which kinds each argument takes was asked of
//! real OPA, one compile per builtin, argument and kind
//! (`tests/opa/arg_kinds.py` writes `builtin_arg_kinds.json`, and a test
//! keeps it in step with the builtin list). The check itself walks with
//! the shapes of [`super::undefined_refs`], which know a literal's kind
//! and a rule's, local's or function's when its value is a scalar.
//!
//! Only scalar kinds (null, booleans, numbers, strings) are judged here: a
//! scalar's type is its kind, so one probe answers for all of them. A
//! composite's type includes its elements' (OPA takes `time.date([ns,
//! "UTC"])` but not `time.date([])`): composites are judged against OPA's
//! declared types by [`super::declared_types`].

use std::collections::{HashMap, HashSet};
use std::sync::LazyLock;

use regorus::unstable::{ArithOp, BinOp, Expr, Literal, Module, Query, Rule, RuleHead};

/// Builtin → for each argument, the kinds of scalar literal OPA accepts
/// there.
static KINDS: LazyLock<HashMap<String, Vec<Vec<String>>>> = LazyLock::new(|| {
    serde_json::from_str(include_str!("builtin_arg_kinds.json")).expect("builtin_arg_kinds.json is a JSON table")
});

/// Whether OPA has a builtin of this name.
pub(super) fn is_builtin(name: &str) -> bool {
    KINDS.contains_key(name)
}

/// The names a bundle defines itself (its rules' and functions' first
/// keys, its imports' names): a call of one is not a builtin's.
pub(super) fn own_names(modules: &[(&str, Module)]) -> HashSet<String> {
    let mut own: HashSet<String> = HashSet::new();
    for (_, module) in modules {
        for rule in &module.policy {
            own.extend(super::recursion::rule_path(rule).into_iter().take(1));
        }
        for import in &module.imports {
            if let Some(alias) = &import.r#as {
                own.insert(alias.text().to_string());
            } else if let Some(last) = import.refr.span().text().rsplit('.').next() {
                own.insert(last.to_string());
            }
        }
    }
    own
}

/// The builtin a call or operator invokes, with its arguments; None for
/// anything else, and for a call of the bundle's own rules or functions.
pub(super) fn builtin_call<'e>(e: &'e Expr, own: &HashSet<String>) -> Option<(String, Vec<&'e Expr>)> {
    Some(match e {
        Expr::Call { fcn, params, .. } => {
            let name = fcn.span().text().to_string();
            let first = name.split('.').next().unwrap_or_default();
            if own.contains(first) || own.contains(&name) {
                return None;
            }
            (name, params.iter().map(|p| p.as_ref()).collect())
        }
        Expr::ArithExpr { op, lhs, rhs, .. } => (arith_name(op).to_string(), vec![lhs, rhs]),
        Expr::BinExpr { op, lhs, rhs, .. } => (set_op_name(op).to_string(), vec![lhs, rhs]),
        _ => return None,
    })
}

/// The builtin OPA evaluates an arithmetic operator as.
pub(super) fn arith_name(op: &ArithOp) -> &'static str {
    match op {
        ArithOp::Add => "plus",
        ArithOp::Sub => "minus",
        ArithOp::Mul => "mul",
        ArithOp::Div => "div",
        ArithOp::Mod => "rem",
    }
}

/// The builtin OPA evaluates `|` or `&` as.
pub(super) fn set_op_name(op: &BinOp) -> &'static str {
    match op {
        BinOp::Union => "or",
        BinOp::Intersection => "and",
    }
}

/// Why OPA refuses this call (or operator), if it does: an argument whose
/// kinds (`kinds_of`: every scalar kind it may have, None when it may be
/// anything else) are none of those the builtin takes there.
pub(super) fn mistyped(
    e: &Expr,
    own: &HashSet<String>,
    kinds_of: &dyn Fn(&Expr) -> Option<Vec<&'static str>>,
) -> Option<String> {
    let (name, args) = builtin_call(e, own)?;
    let kinds = KINDS.get(&name)?;
    for (i, (arg, accepted)) in args.iter().zip(kinds).enumerate() {
        let Some(kinds) = kinds_of(arg) else {
            continue;
        };
        if !kinds.iter().any(|kind| accepted.iter().any(|k| k == kind)) {
            let is: Vec<String> = kinds.iter().map(|k| with_article(k)).collect();
            return Some(format!(
                "{name}: invalid argument(s): argument {} is {}, where {name} takes {}",
                i + 1,
                is.join(" or "),
                one_of(accepted)
            ));
        }
    }
    None
}

/// The kind of a scalar literal; None for anything else.
pub(super) fn literal_kind(e: &Expr) -> Option<&'static str> {
    Some(match e {
        Expr::Null { .. } => "null",
        Expr::Bool { .. } => "boolean",
        Expr::Number { .. } => "number",
        Expr::String { .. } | Expr::RawString { .. } => "string",
        _ => return None,
    })
}

fn with_article(kind: &str) -> String {
    match kind {
        "null" => "null".to_string(),
        "array" | "object" => format!("an {kind}"),
        other => format!("a {other}"),
    }
}

/// `a string or a number`; `nothing` for none (`no scalar` where only
/// composites are taken).
fn one_of(kinds: &[String]) -> String {
    let words: Vec<String> = kinds.iter().map(|k| with_article(k)).collect();
    match words.split_last() {
        None => "no scalar (an array, an object or a set)".to_string(),
        Some((last, [])) => last.clone(),
        Some((last, rest)) => format!("{} or {last}", rest.join(", ")),
    }
}

/// Calls `f` on every expression of a rule, nested ones included.
pub(super) fn each_expr_of_rule(rule: &Rule, f: &mut dyn FnMut(&Expr)) {
    match rule {
        Rule::Spec { head, bodies, .. } => {
            match head {
                RuleHead::Compr { assign, .. } | RuleHead::Func { assign, .. } => {
                    if let Some(a) = assign {
                        each_expr(&a.value, f);
                    }
                }
                RuleHead::Set { key, .. } => {
                    if let Some(k) = key {
                        each_expr(k, f);
                    }
                }
            }
            for b in bodies {
                if let Some(a) = &b.assign {
                    each_expr(&a.value, f);
                }
                each_expr_of_query(&b.query, f);
            }
        }
        Rule::Default { value, .. } => each_expr(value, f),
    }
}

fn each_expr_of_query(q: &Query, f: &mut dyn FnMut(&Expr)) {
    for stmt in &q.stmts {
        for w in &stmt.with_mods {
            each_expr(&w.r#as, f);
        }
        match &stmt.literal {
            Literal::SomeVars { .. } => {}
            Literal::SomeIn {
                key, value, collection, ..
            } => each_member(key.as_deref(), value, collection, f),
            Literal::Expr { expr, .. } | Literal::NotExpr { expr, .. } => each_expr(expr, f),
            Literal::Every { domain, query, .. } => {
                each_expr(domain, f);
                each_expr_of_query(query, f);
            }
        }
    }
}

fn each_expr(e: &Expr, f: &mut dyn FnMut(&Expr)) {
    f(e);
    match e {
        Expr::Array { items, .. } | Expr::Set { items, .. } => items.iter().for_each(|i| each_expr(i, f)),
        Expr::Object { fields, .. } => fields.iter().for_each(|(_, k, v)| {
            each_expr(k, f);
            each_expr(v, f);
        }),
        Expr::ArrayCompr { term, query, .. } | Expr::SetCompr { term, query, .. } => {
            each_expr(term, f);
            each_expr_of_query(query, f);
        }
        Expr::ObjectCompr { key, value, query, .. } => {
            each_expr(key, f);
            each_expr(value, f);
            each_expr_of_query(query, f);
        }
        Expr::Call { params, .. } => params.iter().for_each(|p| each_expr(p, f)),
        Expr::UnaryExpr { expr, .. } => each_expr(expr, f),
        Expr::RefDot { refr, .. } => each_expr(refr, f),
        Expr::RefBrack { refr, index, .. } => {
            each_expr(refr, f);
            each_expr(index, f);
        }
        Expr::BinExpr { lhs, rhs, .. }
        | Expr::BoolExpr { lhs, rhs, .. }
        | Expr::ArithExpr { lhs, rhs, .. }
        | Expr::AssignExpr { lhs, rhs, .. } => {
            each_expr(lhs, f);
            each_expr(rhs, f);
        }
        Expr::Membership {
            key, value, collection, ..
        } => each_member(key.as_deref(), value, collection, f),
        _ => {}
    }
}

/// `key, value in collection`, as a statement (`some … in`) or a value.
fn each_member(key: Option<&Expr>, value: &Expr, collection: &Expr, f: &mut dyn FnMut(&Expr)) {
    if let Some(k) = key {
        each_expr(k, f);
    }
    each_expr(value, f);
    each_expr(collection, f);
}

#[cfg(test)]
mod tests {
    use crate::policy::bundle::ParsedBundle;

    fn check(body: &str) -> Option<String> {
        let bundle = ParsedBundle::of_modules(&[("p.rego", &format!("package p\n{body}"))]);
        super::super::undefined_refs::first_type_error(
            &super::super::rewrite::parse_bundle(&bundle).expect("the module parses"),
        )
    }

    /// Each of these real OPA refuses with rego_type_error.
    #[test]
    fn a_literal_of_a_kind_the_builtin_does_not_take_is_refused() {
        assert_eq!(
            check("x := count(12)\n").as_deref(),
            Some(
                "p.rego:2: rego_type_error: count: invalid argument(s): argument 1 is a number, where count \
                 takes a string (OPA refuses this module too)"
            )
        );
        for (body, what) in [
            (
                "x := upper(1)\n",
                "upper: invalid argument(s): argument 1 is a number, where upper takes a string",
            ),
            ("x := 1 + \"a\"\n", "plus: invalid argument(s): argument 2 is a string"),
            (
                "x := concat(1, [])\n",
                "concat: invalid argument(s): argument 1 is a number",
            ),
            (
                "x := {1} | 1\n",
                "or: invalid argument(s): argument 2 is a number, where or takes no scalar",
            ),
            ("x := sum(\"x\")\n", "sum: invalid argument(s): argument 1 is a string"),
            (
                "x := time.date(\"2020\")\n",
                "time.date: invalid argument(s): argument 1 is a string, where time.date takes a number",
            ),
            (
                "allow if { some r in input.roles; startswith(r, null) }\n",
                "startswith: invalid argument(s): argument 2 is null",
            ),
            (
                "f(x) := regex.match(x, 1)\n",
                "regex.match: invalid argument(s): argument 2 is a number",
            ),
        ] {
            let got = check(body).unwrap_or_else(|| panic!("{body}: not refused"));
            assert!(got.contains(what), "{body}: {got}");
        }
    }

    /// Each of these real OPA compiles.
    #[test]
    fn literals_of_the_kinds_taken_and_everything_else_pass() {
        for body in [
            "x := concat(\",\", [\"a\", \"b\"])\n",
            "x := concat(\",\", {\"a\"})\n",
            "x := count([])\n",
            "x := count(\"abc\")\n",
            "x := sprintf(\"%v\", [1])\n",
            "x := object.get({}, \"k\", 1)\n",
            "x := 1 + 2\n",
            "x := {1} - {2}\n",
            "x := {1} | {2}\n",
            "x := upper(input.x)\n",
            "x := count(set())\n",
            "x := count([y | some y in input.items])\n",
            "count_of(x) := 1\ny := count_of(12)\n",
            "x := json.marshal(null)\n",
            "x := time.date([0, \"UTC\"])\n",
        ] {
            assert_eq!(check(body), None, "{body}");
        }
    }
}
