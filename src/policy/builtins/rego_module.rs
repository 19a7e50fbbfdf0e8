//! `rego.parse_module(filename, source)` as OPA answers it: the module's
//! abstract syntax tree in OPA's JSON form.
//!
//! The text is parsed by regorus (as Rego v1, as OPA 1.x parses it) and
//! its tree rewritten into OPA's shapes, measured against real OPA:
//!
//! - a term is `{"type": ..., "value": ...}`; `input` and `data` alone are
//!   references; `_` is a fresh variable `$0`, `$1`, ... numbered in the
//!   order written; `null` has the value `{}`; a set's elements and an
//!   object's keys come in OPA's order of values; numbers are kept as
//!   written;
//! - operators are calls of their builtins (`plus`, `equal`, `assign`,
//!   `internal.member_2`, ...); `-x` is `minus(0, x)`; a whole expression
//!   that is a call is the array of its terms;
//! - a rule has `head` (`name` when its reference is one variable or a
//!   partial object's `p[k]`, `ref`, `args`, `key`, `value`, `assign` for
//!   `:=`), `body` (`true` when it has none), `default`, `else`;
//! - `some x in xs` is `{"symbols": [member call]}`, `every` is
//!   `{"key", "value", "domain", "body"}`;
//! - the module has `package`, `imports`, `rules`, and `comments` (each
//!   comment's text after `#` in base64, with its row and column);
//! - a template string is `templatestring` with `multi_line` (the raw
//!   form) and its `parts`: strings and scalar literals as terms, other
//!   expressions as body expressions (`{"index": 0, "terms": …}`).
//!
//! The text comes from the evaluated input: regorus bounds its nesting,
//! the conversion its own depth and output.

use std::cmp::Ordering;

use regorus::Value;
use regorus::unstable::{
    AssignOp, BoolOp, Expr, Literal, LiteralStmt, Module, Parser, Query, Rule, RuleAssign, RuleHead,
};

use super::{Answer, Builtin, string};
use crate::policy::literal_types::{arith_name, set_op_name};
use crate::policy::template_strings::{
    SYNTAX_TREE_CALL, SYNTAX_TREE_CALL_MULTILINE, desugar_for_syntax_tree, template_expression,
};

pub(super) const BUILTINS: &[(&str, u8, Builtin)] = &[("rego.parse_module", 2, parse_module)];

/// Deepest term nesting converted.
const MAX_DEPTH: usize = 256;
/// Largest module text parsed.
const MAX_SOURCE: usize = 4 * 1024 * 1024;

/// A term, before it becomes a value (kept apart to order sets and
/// objects as OPA does).
#[derive(Debug, Clone)]
enum T {
    Null,
    Bool(bool),
    Num(String),
    Str(String),
    Var(String),
    Ref(Vec<T>),
    Array(Vec<T>),
    Object(Vec<(T, T)>),
    Set(Vec<T>),
    ArrayCompr(Box<T>, Vec<E>),
    ObjectCompr(Box<T>, Box<T>, Vec<E>),
    SetCompr(Box<T>, Vec<E>),
    Call(Vec<T>),
    /// A template string: whether it is the raw (multi-line) form, and
    /// its parts: strings and scalar literals as terms, anything else as
    /// an expression.
    Template(bool, Vec<Result<T, E>>),
}

/// An expression of a body.
#[derive(Debug, Clone)]
struct E {
    negated: bool,
    terms: Terms,
    with: Vec<(T, T)>,
}

#[derive(Debug, Clone)]
enum Terms {
    One(T),
    Call(Vec<T>),
    Symbols(Vec<T>),
    Every {
        key: Option<T>,
        value: T,
        domain: T,
        body: Vec<E>,
    },
}

impl T {
    fn rank(&self) -> u8 {
        match self {
            T::Null => 0,
            T::Bool(_) => 1,
            T::Num(_) => 2,
            T::Str(_) => 3,
            T::Var(_) => 4,
            T::Ref(_) => 5,
            T::Array(_) => 6,
            T::Object(_) => 7,
            T::Set(_) => 8,
            T::ArrayCompr(..) => 9,
            T::ObjectCompr(..) => 10,
            T::SetCompr(..) => 11,
            T::Call(_) => 12,
            T::Template(..) => 13,
        }
    }
}

/// OPA's order of terms: by kind, then by value.
fn compare(a: &T, b: &T) -> Ordering {
    fn seq(a: &[T], b: &[T]) -> Ordering {
        for (x, y) in a.iter().zip(b) {
            let c = compare(x, y);
            if c != Ordering::Equal {
                return c;
            }
        }
        a.len().cmp(&b.len())
    }
    match (a, b) {
        (T::Bool(x), T::Bool(y)) => x.cmp(y),
        (T::Num(x), T::Num(y)) => {
            let (x, y) = (x.parse::<f64>().unwrap_or(0.0), y.parse::<f64>().unwrap_or(0.0));
            x.partial_cmp(&y).unwrap_or(Ordering::Equal)
        }
        (T::Str(x), T::Str(y)) | (T::Var(x), T::Var(y)) => x.cmp(y),
        (T::Ref(x), T::Ref(y)) | (T::Array(x), T::Array(y)) | (T::Set(x), T::Set(y)) | (T::Call(x), T::Call(y)) => {
            seq(x, y)
        }
        (T::Object(x), T::Object(y)) => {
            for ((xk, xv), (yk, yv)) in x.iter().zip(y) {
                let c = compare(xk, yk).then_with(|| compare(xv, yv));
                if c != Ordering::Equal {
                    return c;
                }
            }
            x.len().cmp(&y.len())
        }
        _ => a.rank().cmp(&b.rank()),
    }
}

fn obj(entries: Vec<(&str, Value)>) -> Value {
    let mut o = Value::new_object();
    if let Ok(map) = o.as_object_mut() {
        for (k, v) in entries {
            map.insert(Value::from(k), v);
        }
    }
    o
}

fn typed(kind: &str, value: Value) -> Value {
    obj(vec![("type", Value::from(kind)), ("value", value)])
}

impl T {
    fn value(&self) -> Value {
        match self {
            T::Null => typed("null", Value::new_object()),
            T::Bool(b) => typed("boolean", Value::from(*b)),
            T::Num(n) => typed("number", Value::from_json_str(n).unwrap_or(Value::Null)),
            T::Str(s) => typed("string", Value::from(s.as_str())),
            T::Var(v) => typed("var", Value::from(v.as_str())),
            T::Ref(items) => typed("ref", Value::from(items.iter().map(T::value).collect::<Vec<_>>())),
            T::Array(items) => typed("array", Value::from(items.iter().map(T::value).collect::<Vec<_>>())),
            T::Set(items) => typed("set", Value::from(items.iter().map(T::value).collect::<Vec<_>>())),
            T::Call(items) => typed("call", Value::from(items.iter().map(T::value).collect::<Vec<_>>())),
            T::Object(entries) => typed(
                "object",
                Value::from(
                    entries
                        .iter()
                        .map(|(k, v)| Value::from(vec![k.value(), v.value()]))
                        .collect::<Vec<_>>(),
                ),
            ),
            T::ArrayCompr(term, body) => typed(
                "arraycomprehension",
                obj(vec![("body", body_value(body)), ("term", term.value())]),
            ),
            T::SetCompr(term, body) => typed(
                "setcomprehension",
                obj(vec![("body", body_value(body)), ("term", term.value())]),
            ),
            T::ObjectCompr(key, value, body) => typed(
                "objectcomprehension",
                obj(vec![
                    ("body", body_value(body)),
                    ("key", key.value()),
                    ("value", value.value()),
                ]),
            ),
            T::Template(multi_line, parts) => {
                let parts = if parts.is_empty() {
                    Value::Null
                } else {
                    Value::from(
                        parts
                            .iter()
                            .map(|p| match p {
                                Ok(t) => t.value(),
                                // An expression, as the first of a body.
                                Err(e) => body_value(std::slice::from_ref(e))[0].clone(),
                            })
                            .collect::<Vec<_>>(),
                    )
                };
                typed(
                    "templatestring",
                    obj(vec![("multi_line", Value::from(*multi_line)), ("parts", parts)]),
                )
            }
        }
    }
}

fn body_value(body: &[E]) -> Value {
    Value::from(
        body.iter()
            .enumerate()
            .map(|(i, e)| {
                let mut entries = vec![("index", Value::from(i as u64))];
                if e.negated {
                    entries.push(("negated", Value::from(true)));
                }
                let terms = match &e.terms {
                    Terms::One(t) => t.value(),
                    Terms::Call(ts) => Value::from(ts.iter().map(T::value).collect::<Vec<_>>()),
                    Terms::Symbols(ts) => obj(vec![(
                        "symbols",
                        Value::from(ts.iter().map(T::value).collect::<Vec<_>>()),
                    )]),
                    Terms::Every {
                        key,
                        value,
                        domain,
                        body,
                    } => obj(vec![
                        ("body", body_value(body)),
                        ("domain", domain.value()),
                        ("key", key.as_ref().map_or(Value::Null, T::value)),
                        ("value", value.value()),
                    ]),
                };
                entries.push(("terms", terms));
                if !e.with.is_empty() {
                    entries.push((
                        "with",
                        Value::from(
                            e.with
                                .iter()
                                .map(|(t, v)| obj(vec![("target", t.value()), ("value", v.value())]))
                                .collect::<Vec<_>>(),
                        ),
                    ));
                }
                obj(entries)
            })
            .collect::<Vec<_>>(),
    )
}

fn parse_module(args: &[Value]) -> Answer {
    let file = string("rego.parse_module", args, 1)?;
    // OPA names the source operand 1 too.
    let text = string("rego.parse_module", &args[1..], 1)?;
    if text.len() > MAX_SOURCE {
        anyhow::bail!("rego.parse_module: module larger than {MAX_SOURCE} bytes");
    }
    if comments_only(text) {
        anyhow::bail!("rego.parse_module: {file}:0: rego_parse_error: empty module");
    }
    module_value(file, text).map_err(|m| anyhow::anyhow!("rego.parse_module: 1 error occurred: {m}"))
}

/// True when the text holds nothing but blanks and comments (OPA's
/// "empty module").
fn comments_only(text: &str) -> bool {
    text.lines().all(|l| {
        let l = l.trim();
        l.is_empty() || l.starts_with('#')
    })
}

/// The module's tree as OPA's JSON, or OPA-style `file:row: rego_parse_error: ...`.
fn module_value(file: &str, text: &str) -> Result<Value, String> {
    // Template strings (which regorus does not read) as calls that keep
    // their parts; lines and comments stay where they were.
    let desugared = desugar_for_syntax_tree(file, text)?;
    let parsed_text = desugared.as_deref().unwrap_or(text);
    let module = parse(file, parsed_text)?;
    let mut c = Converter::new(parsed_text);
    let mut entries = Vec::new();
    let comments = comments(file, text);
    if !comments.is_empty() {
        entries.push(("comments", Value::from(comments)));
    }
    if !module.imports.is_empty() {
        let mut imports = Vec::new();
        for i in &module.imports {
            let path = c.term(&i.refr, 0)?;
            let mut e = vec![("path", path.value())];
            if let Some(alias) = &i.r#as {
                e.push(("alias", Value::from(alias.text())));
            }
            imports.push(obj(e));
        }
        entries.push(("imports", Value::from(imports)));
    }
    let mut path = vec![T::Var("data".into())];
    match c.term(&module.package.refr, 0)? {
        T::Ref(items) => path.extend(items.into_iter().enumerate().map(|(i, t)| match t {
            T::Var(v) if i == 0 => T::Str(v),
            other => other,
        })),
        T::Var(v) => path.push(T::Str(v)),
        other => path.push(other),
    }
    entries.push((
        "package",
        obj(vec![(
            "path",
            Value::from(path.iter().map(T::value).collect::<Vec<_>>()),
        )]),
    ));
    let mut rules = Vec::new();
    for r in &module.policy {
        rules.push(c.rule(r)?);
    }
    if !rules.is_empty() {
        entries.push(("rules", Value::from(rules)));
    }
    Ok(obj(entries))
}

fn parse(file: &str, text: &str) -> Result<Module, String> {
    let fail = |e: anyhow::Error| {
        let msg = e.to_string();
        // regorus: "\n--> file:row:col\n...\nerror: message".
        let location = msg
            .lines()
            .find_map(|l| l.trim().strip_prefix("--> "))
            .and_then(|l| l.rsplit(':').nth(1).map(str::to_string));
        let last = msg.lines().last().unwrap_or_default();
        let text = last.split_once(": ").map_or(last, |(_, m)| m);
        let text = if text.starts_with("expecting `package`") {
            "package expected"
        } else {
            text
        };
        match location {
            Some(row) => format!("{file}:{row}: rego_parse_error: {text}"),
            None => format!("{file}:0: rego_parse_error: {text}"),
        }
    };
    let source = crate::policy::rewrite::source(file, text).map_err(|e| fail(anyhow::anyhow!(e)))?;
    let mut parser = Parser::new(&source).map_err(fail)?;
    parser.set_max_col(crate::policy::rewrite::module_limits().max_col);
    parser.enable_rego_v1().map_err(fail)?;
    parser.parse().map_err(fail)
}

/// Every comment (outside strings): `{"Location": {...}, "Text": base64}`.
fn comments(file: &str, source: &str) -> Vec<Value> {
    use base64::Engine as _;
    let bytes = source.as_bytes();
    let mut out = Vec::new();
    let mut line = 1u64;
    let mut line_start = 0usize;
    let mut i = 0;
    while i < bytes.len() {
        match bytes[i] {
            b'\n' => {
                line += 1;
                i += 1;
                line_start = i;
            }
            b'#' => {
                let end = source[i..].find('\n').map_or(source.len(), |n| i + n);
                let text = source[i + 1..end].trim_end_matches('\r');
                let col = (i - line_start + 1) as u64;
                out.push(obj(vec![
                    (
                        "Location",
                        obj(vec![
                            ("col", Value::from(col)),
                            ("file", Value::from(file)),
                            ("row", Value::from(line)),
                        ]),
                    ),
                    (
                        "Text",
                        Value::from(base64::engine::general_purpose::STANDARD.encode(text.as_bytes())),
                    ),
                ]));
                i = end;
            }
            b'"' => {
                i += 1;
                while i < bytes.len() && bytes[i] != b'"' && bytes[i] != b'\n' {
                    i += if bytes[i] == b'\\' { 2 } else { 1 };
                }
                i += 1;
            }
            b'`' => {
                i += 1;
                while i < bytes.len() && bytes[i] != b'`' {
                    if bytes[i] == b'\n' {
                        line += 1;
                        line_start = i + 1;
                    }
                    i += 1;
                }
                i += 1;
            }
            _ => i += 1,
        }
    }
    out
}

/// A rule's `= value` or `:= value`, as an operator and its value.
fn assign_of(a: Option<&RuleAssign>) -> Option<(&AssignOp, &regorus::unstable::Ref<Expr>)> {
    a.map(|a| (&a.op, &a.value))
}

struct Converter {
    /// Start offsets of every `_`, in the order written.
    wildcards: Vec<u32>,
}

fn builtin_ref(name: &str) -> T {
    let mut parts = name.split('.');
    let mut items = vec![T::Var(parts.next().unwrap_or_default().to_string())];
    items.extend(parts.map(|p| T::Str(p.to_string())));
    T::Ref(items)
}

fn deeper(depth: usize) -> Result<usize, String> {
    if depth > MAX_DEPTH {
        Err(format!("rego_parse_error: nesting deeper than {MAX_DEPTH}"))
    } else {
        Ok(depth + 1)
    }
}

impl Converter {
    fn new(text: &str) -> Self {
        // Positions of `_` as a whole word outside strings and comments;
        // only those regorus reads as variables are asked for.
        let bytes = text.as_bytes();
        let mut wildcards = Vec::new();
        let mut i = 0;
        while i < bytes.len() {
            match bytes[i] {
                b'#' => i = crate::policy::rego_scan::comment_end(bytes, i),
                b'"' | b'`' => i = crate::policy::rego_scan::string_end(bytes, i).unwrap_or(bytes.len()),
                b'_' => {
                    let word = |c: u8| c.is_ascii_alphanumeric() || c == b'_';
                    let before = i > 0 && word(bytes[i - 1]);
                    let after = i + 1 < bytes.len() && word(bytes[i + 1]);
                    if !before && !after {
                        wildcards.push(i as u32);
                    }
                    i += 1;
                    while i < bytes.len() && (bytes[i].is_ascii_alphanumeric() || bytes[i] == b'_') {
                        i += 1;
                    }
                }
                c if c.is_ascii_alphanumeric() => {
                    while i < bytes.len() && (bytes[i].is_ascii_alphanumeric() || bytes[i] == b'_') {
                        i += 1;
                    }
                }
                _ => i += 1,
            }
        }
        Self { wildcards }
    }

    fn var(&self, name: &str, start: u32) -> T {
        if name == "_" {
            let n = self.wildcards.iter().position(|s| *s == start).unwrap_or(0);
            T::Var(format!("${n}"))
        } else {
            T::Var(name.to_string())
        }
    }

    /// A term as OPA writes it.
    fn term(&mut self, e: &Expr, depth: usize) -> Result<T, String> {
        let d = deeper(depth)?;
        Ok(match e {
            Expr::String { value, .. } | Expr::RawString { value, .. } => {
                T::Str(value.as_string().map(|s| s.to_string()).unwrap_or_default())
            }
            Expr::Number { span, .. } => T::Num(span.text().to_string()),
            Expr::Bool { value, .. } => T::Bool(*value == Value::from(true)),
            Expr::Null { .. } => T::Null,
            Expr::Var { span, .. } => match span.text() {
                v @ ("input" | "data") => T::Ref(vec![T::Var(v.to_string())]),
                v => self.var(v, span.start),
            },
            Expr::Array { items, .. } => T::Array(self.terms(items, d)?),
            Expr::Set { items, .. } => {
                let mut items = self.terms(items, d)?;
                items.sort_by(compare);
                items.dedup_by(|a, b| compare(a, b) == Ordering::Equal);
                T::Set(items)
            }
            Expr::Object { fields, .. } => {
                let mut entries = Vec::with_capacity(fields.len());
                for (_, k, v) in fields {
                    entries.push((self.term(k, d)?, self.term(v, d)?));
                }
                entries.sort_by(|a, b| compare(&a.0, &b.0));
                T::Object(entries)
            }
            Expr::ArrayCompr { term, query, .. } => {
                let t = self.term(term, d)?;
                T::ArrayCompr(Box::new(t), self.query(query, d)?)
            }
            Expr::SetCompr { term, query, .. } => {
                let t = self.term(term, d)?;
                T::SetCompr(Box::new(t), self.query(query, d)?)
            }
            Expr::ObjectCompr { key, value, query, .. } => {
                let k = self.term(key, d)?;
                let v = self.term(value, d)?;
                T::ObjectCompr(Box::new(k), Box::new(v), self.query(query, d)?)
            }
            Expr::Call { fcn, params, .. }
                if matches!(fcn.span().text(), SYNTAX_TREE_CALL | SYNTAX_TREE_CALL_MULTILINE) =>
            {
                self.template(fcn.span().text() == SYNTAX_TREE_CALL_MULTILINE, params, d)?
            }
            Expr::Call { .. }
            | Expr::BinExpr { .. }
            | Expr::BoolExpr { .. }
            | Expr::ArithExpr { .. }
            | Expr::AssignExpr { .. }
            | Expr::Membership { .. } => T::Call(self.call(e, d)?),
            Expr::UnaryExpr { expr, .. } => match expr.as_ref() {
                Expr::Number { span, .. } => T::Num(format!("-{}", span.text())),
                inner => T::Call(vec![builtin_ref("minus"), T::Num("0".into()), self.term(inner, d)?]),
            },
            Expr::RefDot { refr, field, .. } => {
                let mut items = self.ref_items(refr, d)?;
                items.push(T::Str(field.0.text().to_string()));
                T::Ref(items)
            }
            Expr::RefBrack { refr, index, .. } => {
                let mut items = self.ref_items(refr, d)?;
                items.push(self.term(index, d)?);
                T::Ref(items)
            }
            #[allow(unreachable_patterns)]
            _ => return Err("rego_parse_error: unsupported expression".into()),
        })
    }

    /// A template string's node, from the call the syntax tree's desugaring
    /// made of it.
    fn template(&mut self, multi_line: bool, params: &[regorus::unstable::Ref<Expr>], d: usize) -> Result<T, String> {
        let Some(Expr::Array { items, .. }) = params.first().map(|p| p.as_ref()) else {
            return Err("rego_parse_error: invalid template string".into());
        };
        let mut parts = Vec::with_capacity(items.len());
        for item in items {
            let part = match template_expression(item) {
                Some(
                    e @ (Expr::String { .. }
                    | Expr::RawString { .. }
                    | Expr::Number { .. }
                    | Expr::Bool { .. }
                    | Expr::Null { .. }),
                ) => Ok(self.term(e, d)?),
                Some(e @ Expr::UnaryExpr { expr, .. }) if matches!(expr.as_ref(), Expr::Number { .. }) => {
                    Ok(self.term(e, d)?)
                }
                Some(e) => Err(E {
                    negated: false,
                    terms: self.expr_terms(e, d)?,
                    with: Vec::new(),
                }),
                None => Ok(self.term(item, d)?),
            };
            parts.push(part);
        }
        Ok(T::Template(multi_line, parts))
    }

    fn terms(&mut self, items: &[regorus::unstable::Ref<Expr>], depth: usize) -> Result<Vec<T>, String> {
        items.iter().map(|i| self.term(i, depth)).collect()
    }

    /// The elements of a reference, its head first.
    fn ref_items(&mut self, e: &Expr, depth: usize) -> Result<Vec<T>, String> {
        let d = deeper(depth)?;
        match e {
            Expr::Var { span, .. } => Ok(vec![self.var(span.text(), span.start)]),
            Expr::RefDot { .. } | Expr::RefBrack { .. } => match self.term(e, d)? {
                T::Ref(items) => Ok(items),
                other => Ok(vec![other]),
            },
            other => Ok(vec![self.term(other, d)?]),
        }
    }

    /// An operator or call as the builtin reference and its operands.
    fn call(&mut self, e: &Expr, depth: usize) -> Result<Vec<T>, String> {
        let d = deeper(depth)?;
        let two = |c: &mut Self, name: &str, lhs: &Expr, rhs: &Expr| -> Result<Vec<T>, String> {
            Ok(vec![builtin_ref(name), c.term(lhs, d)?, c.term(rhs, d)?])
        };
        match e {
            Expr::Call { fcn, params, .. } => {
                let f = match self.ref_items(fcn, d)?.as_slice() {
                    [T::Var(v)] => T::Ref(vec![T::Var(v.clone())]),
                    items => T::Ref(items.to_vec()),
                };
                let mut out = vec![f];
                out.extend(self.terms(params, d)?);
                Ok(out)
            }
            Expr::BinExpr { op, lhs, rhs, .. } => two(self, set_op_name(op), lhs, rhs),
            Expr::BoolExpr { op, lhs, rhs, .. } => {
                let name = match op {
                    BoolOp::Lt => "lt",
                    BoolOp::Le => "lte",
                    BoolOp::Eq => "equal",
                    BoolOp::Ge => "gte",
                    BoolOp::Gt => "gt",
                    BoolOp::Ne => "neq",
                };
                two(self, name, lhs, rhs)
            }
            Expr::ArithExpr { op, lhs, rhs, .. } => two(self, arith_name(op), lhs, rhs),
            Expr::AssignExpr { op, lhs, rhs, .. } => {
                let name = match op {
                    AssignOp::Eq => "eq",
                    AssignOp::ColEq => "assign",
                };
                two(self, name, lhs, rhs)
            }
            Expr::Membership {
                key, value, collection, ..
            } => {
                let mut out = vec![];
                match key {
                    Some(k) => {
                        out.push(builtin_ref("internal.member_3"));
                        out.push(self.term(k, d)?);
                    }
                    None => out.push(builtin_ref("internal.member_2")),
                }
                out.push(self.term(value, d)?);
                out.push(self.term(collection, d)?);
                Ok(out)
            }
            _ => Err("rego_parse_error: not a call".into()),
        }
    }

    fn query(&mut self, q: &Query, depth: usize) -> Result<Vec<E>, String> {
        let d = deeper(depth)?;
        let mut out = Vec::with_capacity(q.stmts.len());
        for stmt in &q.stmts {
            out.push(self.stmt(stmt, d)?);
        }
        Ok(out)
    }

    fn stmt(&mut self, stmt: &LiteralStmt, depth: usize) -> Result<E, String> {
        let d = deeper(depth)?;
        let (negated, terms) = match &stmt.literal {
            Literal::SomeVars { vars, .. } => (
                false,
                Terms::Symbols(vars.iter().map(|v| self.var(v.text(), v.start)).collect()),
            ),
            Literal::SomeIn {
                key, value, collection, ..
            } => {
                let mut call = vec![];
                match key {
                    Some(k) => {
                        call.push(builtin_ref("internal.member_3"));
                        call.push(self.term(k, d)?);
                    }
                    None => call.push(builtin_ref("internal.member_2")),
                }
                call.push(self.term(value, d)?);
                call.push(self.term(collection, d)?);
                (false, Terms::Symbols(vec![T::Call(call)]))
            }
            Literal::Expr { expr, .. } => (false, self.expr_terms(expr, d)?),
            Literal::NotExpr { expr, .. } => (true, self.expr_terms(expr, d)?),
            Literal::Every {
                key,
                value,
                domain,
                query,
                ..
            } => {
                let key = key.as_ref().map(|k| self.var(k.text(), k.start));
                let value = self.var(value.text(), value.start);
                let domain = self.term(domain, d)?;
                let body = self.query(query, d)?;
                (
                    false,
                    Terms::Every {
                        key,
                        value,
                        domain,
                        body,
                    },
                )
            }
        };
        let mut with = Vec::new();
        for w in &stmt.with_mods {
            with.push((self.term(&w.refr, d)?, self.term(&w.r#as, d)?));
        }
        Ok(E { negated, terms, with })
    }

    fn expr_terms(&mut self, e: &Expr, depth: usize) -> Result<Terms, String> {
        Ok(match e {
            // A template string is one term, though desugared as a call.
            Expr::Call { fcn, .. } if matches!(fcn.span().text(), SYNTAX_TREE_CALL | SYNTAX_TREE_CALL_MULTILINE) => {
                Terms::One(self.term(e, depth)?)
            }
            Expr::Call { .. }
            | Expr::BinExpr { .. }
            | Expr::BoolExpr { .. }
            | Expr::ArithExpr { .. }
            | Expr::AssignExpr { .. }
            | Expr::Membership { .. } => Terms::Call(self.call(e, depth)?),
            other => Terms::One(self.term(other, depth)?),
        })
    }

    fn body(&mut self, q: &Query) -> Result<Value, String> {
        let mut body = self.query(q, 0)?;
        if body.is_empty() {
            body.push(E {
                negated: false,
                terms: Terms::One(T::Bool(true)),
                with: Vec::new(),
            });
        }
        Ok(body_value(&body))
    }

    /// A rule as OPA writes it, its `else` branches nested.
    fn rule(&mut self, rule: &Rule) -> Result<Value, String> {
        match rule {
            Rule::Default {
                refr, args, op, value, ..
            } => {
                let head = self.head(refr, args, None, Some((op, value)), false, false)?;
                let body = body_value(&[E {
                    negated: false,
                    terms: Terms::One(T::Bool(true)),
                    with: Vec::new(),
                }]);
                Ok(obj(vec![
                    ("body", body),
                    ("default", Value::from(true)),
                    ("head", head),
                ]))
            }
            Rule::Spec { head, bodies, .. } => {
                let (refr, args, key, assign, set) = match head {
                    RuleHead::Compr { refr, assign, .. } => (refr, &[][..], None, assign.as_ref(), false),
                    RuleHead::Set { refr, key, .. } => (refr, &[][..], key.as_ref(), None, true),
                    RuleHead::Func { refr, args, assign, .. } => (refr, args.as_slice(), None, assign.as_ref(), false),
                };
                // The rule and each `else`, converted in the order written.
                let mut parts: Vec<(Value, Value)> = Vec::new();
                let first_head = self.head(refr, args, key, assign_of(assign), set, !bodies.is_empty())?;
                let mut pending_head = Some(first_head);
                if bodies.is_empty() {
                    let body = self.body_empty();
                    parts.push((pending_head.take().unwrap_or(Value::Null), body));
                }
                for b in bodies {
                    let head = match pending_head.take() {
                        Some(h) if !b.is_else => h,
                        _ => self.head(refr, args, None, assign_of(b.assign.as_ref()), false, true)?,
                    };
                    let body = self.body(&b.query)?;
                    parts.push((head, body));
                }
                let mut out: Option<Value> = None;
                for (head, body) in parts.into_iter().rev() {
                    let mut entries = vec![("body", body), ("head", head)];
                    if let Some(e) = out.take() {
                        entries.push(("else", e));
                    }
                    out = Some(obj(entries));
                }
                Ok(out.unwrap_or(Value::Null))
            }
        }
    }

    fn body_empty(&mut self) -> Value {
        body_value(&[E {
            negated: false,
            terms: Terms::One(T::Bool(true)),
            with: Vec::new(),
        }])
    }

    /// A rule head: `name`, `ref`, `args`, `key`, `value`, `assign`.
    fn head(
        &mut self,
        refr: &Expr,
        args: &[regorus::unstable::Ref<Expr>],
        key: Option<&regorus::unstable::Ref<Expr>>,
        assign: Option<(&AssignOp, &regorus::unstable::Ref<Expr>)>,
        set: bool,
        has_body: bool,
    ) -> Result<Value, String> {
        let mut items = self.ref_items(refr, 0)?;
        if let Some(T::Ref(inner)) = items.first().cloned()
            && items.len() == 1
        {
            items = inner;
        }
        let mut entries = Vec::new();
        if !args.is_empty() {
            entries.push((
                "args",
                Value::from(self.terms(args, 0)?.iter().map(T::value).collect::<Vec<_>>()),
            ));
        }
        if matches!(assign, Some((AssignOp::ColEq, _))) {
            entries.push(("assign", Value::from(true)));
        }
        // OPA names a head `p` and `p[k]` / `p.k`; the key of `p[k]` is
        // kept, that of `p.k` only when the rule has no body.
        let name = match items.as_slice() {
            [T::Var(n)] => Some(n.clone()),
            [T::Var(n), T::Var(_) | T::Str(_)] if !set && args.is_empty() => Some(n.clone()),
            _ => None,
        };
        if set {
            if let Some(k) = key {
                entries.push(("key", self.term(k, 0)?.value()));
            }
        } else if let Some(k) = match (&name, items.as_slice()) {
            (Some(_), [_, k @ T::Var(_)]) => Some(k),
            (Some(_), [_, k @ T::Str(_)]) if !has_body => Some(k),
            _ => None,
        } {
            entries.push(("key", k.value()));
        }
        if let Some(n) = name {
            entries.push(("name", Value::from(n.as_str())));
        }
        entries.push(("ref", Value::from(items.iter().map(T::value).collect::<Vec<_>>())));
        if !set {
            let value = match assign {
                Some((_, v)) => self.term(v, 0)?,
                None => T::Bool(true),
            };
            entries.push(("value", value.value()));
        }
        Ok(obj(entries))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parsed(text: &str) -> Value {
        module_value("p.rego", text).expect("parses")
    }

    fn error(text: &str) -> String {
        parse_module(&[Value::from("p.rego"), Value::from(text)])
            .unwrap_err()
            .to_string()
    }

    #[test]
    fn parse_errors_name_the_file_and_line_as_opa_does() {
        assert_eq!(
            error("# only\n\n"),
            "rego.parse_module: p.rego:0: rego_parse_error: empty module"
        );
        assert_eq!(
            error("x := 1"),
            "rego.parse_module: 1 error occurred: p.rego:1: rego_parse_error: package expected"
        );
        assert_eq!(
            error("package p\n\nallow {\n\ttrue\n}\n"),
            "rego.parse_module: 1 error occurred: p.rego:3: rego_parse_error: `if` keyword is required before rule body"
        );
    }

    #[test]
    fn a_source_that_is_not_a_string_is_operand_1_as_in_opa() {
        assert_eq!(
            parse_module(&[Value::from("p.rego"), Value::from(12u64)])
                .unwrap_err()
                .to_string(),
            "rego.parse_module: operand 1 must be string but got number"
        );
    }

    #[test]
    fn heads_operators_and_wildcards_take_opa_s_shapes() {
        let m = parsed(
            "package p\n# c\nobligations.log := true\nq := input[_][_] + -x if x := 1\ns contains {3, 1} if true\n",
        );
        let expected = r#"{"comments":[{"Location":{"col":1,"file":"p.rego","row":2},"Text":"IGM="}],
            "package":{"path":[{"type":"var","value":"data"},{"type":"string","value":"p"}]},
            "rules":[
             {"body":[{"index":0,"terms":{"type":"boolean","value":true}}],
              "head":{"assign":true,"key":{"type":"string","value":"log"},"name":"obligations",
                "ref":[{"type":"var","value":"obligations"},{"type":"string","value":"log"}],"value":{"type":"boolean","value":true}}},
             {"body":[{"index":0,"terms":[{"type":"ref","value":[{"type":"var","value":"assign"}]},{"type":"var","value":"x"},{"type":"number","value":1}]}],
              "head":{"assign":true,"name":"q","ref":[{"type":"var","value":"q"}],
                "value":{"type":"call","value":[{"type":"ref","value":[{"type":"var","value":"plus"}]},
                  {"type":"ref","value":[{"type":"var","value":"input"},{"type":"var","value":"$0"},{"type":"var","value":"$1"}]},
                  {"type":"call","value":[{"type":"ref","value":[{"type":"var","value":"minus"}]},{"type":"number","value":0},{"type":"var","value":"x"}]}]}}},
             {"body":[{"index":0,"terms":{"type":"boolean","value":true}}],
              "head":{"key":{"type":"set","value":[{"type":"number","value":1},{"type":"number","value":3}]},"name":"s","ref":[{"type":"var","value":"s"}]}}]}"#;
        assert_eq!(m, Value::from_json_str(expected).unwrap());
    }

    #[test]
    fn a_module_is_opa_s_tree() {
        assert_eq!(
            parsed("package demo.x\nallow if input.ok\n"),
            Value::from_json_str(r#"{"package":{"path":[{"type":"var","value":"data"},{"type":"string","value":"demo"},{"type":"string","value":"x"}]},"rules":[{"body":[{"index":0,"terms":{"type":"ref","value":[{"type":"var","value":"input"},{"type":"string","value":"ok"}]}}],"head":{"name":"allow","ref":[{"type":"var","value":"allow"}],"value":{"type":"boolean","value":true}}}]}"#).unwrap()
        );
    }
}
