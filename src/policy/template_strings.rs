//! Template strings, as OPA 1.x reads them and regorus does not.
//!
//! `$"user {input.name} asked {count(input.tools)} tools"` (and the raw
//! form `` $`…{expr}…` ``) is a string whose `{…}` parts are expressions,
//! each written in its Rego text (a string as itself, anything else as
//! `%v` prints it), `<undefined>` where the expression is undefined.
//! OPA's compiler makes each template the call
//! `internal.template_string([part, …])`, a literal part a string and an
//! expression part the set of the expression's values (empty when it is
//! undefined; more than one is an error). Every module is given that call
//! here, before anything parses it, so that the checks made at upload,
//! the compiler and the evaluation all see what OPA sees:
//!
//! ```rego
//! msg := $"hello {input.name}"
//! # becomes
//! msg := internal.template_string(["hello ", {__warden_tmpl_0 | __warden_tmpl_0 := (input.name)}])
//! ```
//!
//! A literal expression is written as its text (`{1.0}` is `"1.0"`, as OPA
//! keeps a number's text), and a template of literals only is one string
//! constant (a `default` value may be one). Line breaks are kept where
//! they were, so every line keeps its number. A template OPA cannot read
//! is refused with OPA's wording and the line: an unterminated template,
//! an empty or unterminated `{…}`, an escape a string may not hold; so is
//! an expression reading a name nothing binds ([`first_unbound_var`]).

use std::collections::HashSet;

use regorus::unstable::{Expr, Literal, Module};

use super::literal_types::each_expr_of_rule;
use super::recursion::{declarations, imports_of, package_path, rule_heads};
use super::rego_scan::{comment_end, string_end};

/// The module with each template string made the call OPA's compiler
/// makes of it; None when it has none. `Err` is OPA's parse error, with
/// the file and line.
pub fn desugar(path: &str, source: &str) -> Result<Option<String>, String> {
    desugar_as(path, source, false).map_err(|e| format!("{e} (OPA refuses this module too)"))
}

/// The module with each template string made a call of
/// [`SYNTAX_TREE_CALL`] (or [`SYNTAX_TREE_CALL_MULTILINE`] for the raw
/// form) keeping every part as written, for `rego.parse_module` to answer
/// OPA's `templatestring` node; None when it has none.
pub(crate) fn desugar_for_syntax_tree(path: &str, source: &str) -> Result<Option<String>, String> {
    desugar_as(path, source, true)
}

/// What [`desugar_for_syntax_tree`] calls a template string.
pub(crate) const SYNTAX_TREE_CALL: &str = "__warden_template";
/// What [`desugar_for_syntax_tree`] calls a raw (`` $`…` ``) template.
pub(crate) const SYNTAX_TREE_CALL_MULTILINE: &str = "__warden_template_multiline";

fn desugar_as(path: &str, source: &str, keep_parts: bool) -> Result<Option<String>, String> {
    if !source.contains('$') {
        return Ok(None);
    }
    let mut next = 0;
    let out = Desugar {
        path,
        source,
        next: &mut next,
        keep_parts,
    }
    .text(0, source.len())?;
    Ok((out != source).then_some(out))
}

struct Desugar<'a, 'n> {
    path: &'a str,
    source: &'a str,
    /// The number of the next expression's variable.
    next: &'n mut usize,
    /// Every part kept as written (no literal folded), for a syntax tree.
    keep_parts: bool,
}

impl Desugar<'_, '_> {
    fn error(&self, at: usize, what: &str) -> String {
        let line = self.source.as_bytes()[..at.min(self.source.len())]
            .iter()
            .filter(|b| **b == b'\n')
            .count()
            + 1;
        format!("{}:{line}: rego_parse_error: {what}", self.path)
    }

    /// `source[from..to]` with every template string in it desugared.
    fn text(&mut self, from: usize, to: usize) -> Result<String, String> {
        let b = self.source.as_bytes();
        let mut out = String::with_capacity(to - from);
        let (mut copied, mut i) = (from, from);
        while i < to {
            match b[i] {
                b'#' => i = comment_end(b, i),
                b'"' | b'`' => i = string_end(b, i).unwrap_or(to),
                b'$' if matches!(b.get(i + 1), Some(b'"' | b'`')) => {
                    let (call, end) = self.template(i)?;
                    out.push_str(&self.source[copied..i]);
                    out.push_str(&call);
                    copied = end;
                    i = end;
                }
                _ => i += 1,
            }
        }
        out.push_str(&self.source[copied..to.max(copied)]);
        Ok(out)
    }

    /// The call for the template string starting (at its `$`) at `start`,
    /// and the byte after it.
    fn template(&mut self, start: usize) -> Result<(String, usize), String> {
        let b = self.source.as_bytes();
        let quote = b[start + 1];
        let raw = quote == b'`';
        let mut parts: Vec<String> = Vec::new();
        let literal = |parts: &mut Vec<String>, from: usize, to: usize| {
            if to > from {
                let q = quote as char;
                parts.push(format!("{q}{}{q}", &self.source[from..to]));
            }
        };
        let mut i = start + 2;
        let mut literal_from = i;
        loop {
            match b.get(i) {
                None => return Err(self.error(start, "non-terminated string")),
                Some(&c) if c == quote => {
                    literal(&mut parts, literal_from, i);
                    i += 1;
                    break;
                }
                Some(b'\n') if !raw => return Err(self.error(start, "non-terminated string")),
                Some(b'\\') if !raw => i = self.escape_end(i)?,
                Some(b'{') => {
                    literal(&mut parts, literal_from, i);
                    let end = self.expression_end(i + 1)?;
                    if !has_code(&b[i + 1..end]) {
                        return Err(self.error(i, "invalid template-string expression"));
                    }
                    let written = &self.source[i + 1..end];
                    if let Some(text) = scalar_literal(written).filter(|_| !self.keep_parts) {
                        parts.push(text);
                    } else {
                        let expr = self.text(i + 1, end)?;
                        let n = *self.next;
                        *self.next += 1;
                        parts.push(format!("{{__warden_tmpl_{n} | __warden_tmpl_{n} := ({expr})}}"));
                    }
                    i = end + 1;
                    literal_from = i;
                }
                Some(_) => i += 1,
            }
        }
        if self.keep_parts {
            let call = if raw {
                SYNTAX_TREE_CALL_MULTILINE
            } else {
                SYNTAX_TREE_CALL
            };
            return Ok((format!("{call}([{}])", parts.join(", ")), i));
        }
        if let Some(constant) = one_string(&parts) {
            return Ok((constant, i));
        }
        Ok((format!("internal.template_string([{}])", parts.join(", ")), i))
    }

    /// The byte after the escape sequence at `i` (its backslash), when a
    /// Rego string may hold it.
    fn escape_end(&self, i: usize) -> Result<usize, String> {
        let b = self.source.as_bytes();
        match b.get(i + 1) {
            Some(b'"' | b'\\' | b'/' | b'b' | b'f' | b'n' | b'r' | b't') => Ok(i + 2),
            Some(b'u') if b.get(i + 2..i + 6).is_some_and(|h| h.iter().all(u8::is_ascii_hexdigit)) => Ok(i + 6),
            _ => Err(self.error(i, "illegal escape sequence")),
        }
    }

    /// Where the expression starting at `from` ends: its closing `}`.
    fn expression_end(&mut self, from: usize) -> Result<usize, String> {
        let b = self.source.as_bytes();
        let mut depth = 0usize;
        let mut i = from;
        while let Some(&c) = b.get(i) {
            match c {
                b'#' => i = comment_end(b, i),
                b'"' | b'`' => i = string_end(b, i).unwrap_or(b.len()),
                b'$' if matches!(b.get(i + 1), Some(b'"' | b'`')) => {
                    // A template inside: skipped whole (it is desugared
                    // with the expression that holds it).
                    let mut scratch = 0;
                    let mut inner = Desugar {
                        path: self.path,
                        source: self.source,
                        next: &mut scratch,
                        keep_parts: self.keep_parts,
                    };
                    i = inner.template(i)?.1;
                }
                b'{' => {
                    depth += 1;
                    i += 1;
                }
                b'}' if depth == 0 => return Ok(i),
                b'}' => {
                    depth -= 1;
                    i += 1;
                }
                _ => i += 1,
            }
        }
        Err(self.error(from, "expected } to end template string expression"))
    }
}

/// The text of a scalar literal (`1.0`, `"s"`, `true`, `null`) as the
/// string literal of its text, as OPA writes it: a number as written
/// (`1.0` stays `1.0`), a string as itself. None for anything else.
fn scalar_literal(expr: &str) -> Option<String> {
    let t = expr.trim();
    let b = t.as_bytes();
    if matches!(t, "true" | "false" | "null") {
        return Some(format!("\"{t}\""));
    }
    if let Some(&q @ (b'"' | b'`')) = b.first() {
        return (string_end(b, 0) == Some(b.len()) && b.len() >= 2 && b[b.len() - 1] == q).then(|| t.to_string());
    }
    let digits = t.strip_prefix('-').unwrap_or(t);
    let number = !digits.is_empty()
        && digits.as_bytes()[0].is_ascii_digit()
        && digits
            .bytes()
            .all(|c| c.is_ascii_digit() || matches!(c, b'.' | b'e' | b'E' | b'+' | b'-'))
        && t.parse::<f64>().is_ok();
    number.then(|| format!("\"{t}\""))
}

/// The parts as one string literal, when every part is a string literal
/// and joining them moves no line: `$"{1.0} items"` is the constant
/// `"1.0 items"`, which a `default` value may be.
fn one_string(parts: &[String]) -> Option<String> {
    let mut out = String::from("\"");
    for part in parts {
        let inner = &part[1..part.len() - 1];
        match part.as_bytes()[0] {
            b'"' if part.len() >= 2 => out.push_str(inner),
            b'`' if !inner.contains('\n') => {
                let quoted = serde_json::to_string(inner).ok()?;
                out.push_str(&quoted[1..quoted.len() - 1]);
            }
            _ => return None,
        }
    }
    out.push('"');
    Some(out)
}

/// The expression of a desugared template's part (`{__warden_tmpl_<n>
/// | __warden_tmpl_<n> := (expr)}`), if `e` is one.
pub(crate) fn template_expression(e: &Expr) -> Option<&Expr> {
    let Expr::SetCompr { term, query, .. } = e else {
        return None;
    };
    let Expr::Var { value, .. } = term.as_ref() else {
        return None;
    };
    let name = value.as_string().ok()?;
    if !name.starts_with("__warden_tmpl_") || query.stmts.len() != 1 {
        return None;
    }
    match &query.stmts[0].literal {
        Literal::Expr { expr, .. } => match expr.as_ref() {
            Expr::AssignExpr { lhs, rhs, .. } if lhs.span().text() == name.as_ref() => Some(rhs),
            _ => None,
        },
        _ => None,
    }
}

/// OPA's `var i is undeclared` for the first name a template string's
/// expression uses that nothing binds where the template stands
/// (`$"{input.xs[i]}"`, and `_` always): OPA evaluates the expression with
/// the names bound so far and refuses the module; the set Warden builds
/// would have enumerated them. A name bound anywhere else in the rule, a
/// rule of the package, an import, `input` and `data` are taken as bound,
/// and so is any name inside a comprehension within the expression (its
/// own locals): the check may pass a module OPA refuses, never refuse one
/// OPA compiles.
pub(super) fn first_unbound_var(parsed: &[(&str, Module)]) -> Option<String> {
    let rules = rule_heads(parsed)?;
    for (file, module) in parsed {
        let package = package_path(module)?;
        let imports = imports_of(module);
        for rule in &module.policy {
            // Each template expression's place, and the names it reads.
            // (A bare name is "unsafe" to OPA, one inside a reference,
            // call or operator "undeclared".)
            let mut templates: Vec<Read> = Vec::new();
            each_expr_of_rule(rule, &mut |e| {
                if let Some(t) = template_expression(e) {
                    let mut free = Vec::new();
                    free_vars(t, &mut free, 0);
                    let bare = matches!(t, Expr::Var { .. });
                    templates.push(Read {
                        place: (t.span().start, t.span().end),
                        names: free,
                        bare,
                    });
                }
            });
            if templates.is_empty() {
                continue;
            }
            let inside = |e: &Expr| {
                let s = e.span();
                templates.iter().any(|r| r.place.0 <= s.start && s.end <= r.place.1)
            };
            let declared = declarations(rule);
            let mut bound: HashSet<String> = declared.locals;
            bound.extend(declared.assigned.into_keys());
            bound.extend(declared.members.into_keys());
            bound.extend(declared.unified_with.into_keys());
            each_expr_of_rule(rule, &mut |e| {
                if let Expr::Var { value, .. } = e
                    && !inside(e)
                    && let Ok(name) = value.as_string()
                {
                    bound.insert(name.to_string());
                }
            });
            for Read { names, bare, .. } in templates {
                for (name, line) in names {
                    let known = name != "_"
                        && (bound.contains(&name)
                            || name.starts_with("__warden_")
                            || imports.contains_key(&name)
                            || matches!(name.as_str(), "input" | "data")
                            || rules.contains(&[package.clone(), vec![name.clone()]].concat()));
                    if !known {
                        let why = if bare {
                            format!("rego_unsafe_var_error: var {name} is unsafe")
                        } else {
                            format!("rego_compile_error: var {name} is undeclared")
                        };
                        return Some(format!("{file}:{line}: {why} (OPA refuses this module too)"));
                    }
                }
            }
        }
    }
    None
}

/// What a template string's expression reads.
struct Read {
    /// Its byte range in the module.
    place: (u32, u32),
    /// The names it reads, with their lines.
    names: Vec<(String, u32)>,
    /// Whether it is a name alone.
    bare: bool,
}

/// The names an expression reads, with their lines, outside any
/// comprehension within it and any called function's name.
fn free_vars(e: &Expr, out: &mut Vec<(String, u32)>, depth: usize) {
    if depth > 256 {
        return;
    }
    let mut go = |x: &Expr| free_vars(x, out, depth + 1);
    match e {
        Expr::Var { value, span, .. } => {
            if let Ok(name) = value.as_string() {
                out.push((name.to_string(), span.line));
            }
        }
        Expr::Array { items, .. } | Expr::Set { items, .. } => items.iter().for_each(|i| go(i)),
        Expr::Object { fields, .. } => fields.iter().for_each(|(_, k, v)| {
            go(k);
            go(v);
        }),
        Expr::Call { params, .. } => params.iter().for_each(|p| go(p)),
        Expr::UnaryExpr { expr, .. } => go(expr),
        Expr::RefDot { refr, .. } => go(refr),
        Expr::RefBrack { refr, index, .. } => {
            go(refr);
            go(index);
        }
        Expr::BinExpr { lhs, rhs, .. }
        | Expr::BoolExpr { lhs, rhs, .. }
        | Expr::ArithExpr { lhs, rhs, .. }
        | Expr::AssignExpr { lhs, rhs, .. } => {
            go(lhs);
            go(rhs);
        }
        Expr::Membership {
            key, value, collection, ..
        } => {
            if let Some(k) = key {
                go(k);
            }
            go(value);
            go(collection);
        }
        _ => {}
    }
}

/// Whether an expression's text holds anything but spaces and comments.
fn has_code(text: &[u8]) -> bool {
    let mut i = 0;
    while i < text.len() {
        match text[i] {
            b'#' => i = comment_end(text, i),
            c if c.is_ascii_whitespace() => i += 1,
            _ => return true,
        }
    }
    false
}

#[cfg(test)]
mod tests {
    use super::desugar;

    fn call(body: &str) -> String {
        let text = format!("package p\n{body}\n");
        desugar("p.rego", &text)
            .expect("desugars")
            .expect("has a template")
            .trim_start_matches("package p\n")
            .trim_end()
            .to_string()
    }

    #[test]
    fn each_expression_becomes_the_set_of_its_values() {
        assert_eq!(
            call("x := $\"hello {input.name}!\""),
            "x := internal.template_string([\"hello \", {__warden_tmpl_0 | __warden_tmpl_0 := (input.name)}, \"!\"])"
        );
        assert_eq!(
            call("x := $`raw {input.a}\n\\n`"),
            "x := internal.template_string([`raw `, {__warden_tmpl_0 | __warden_tmpl_0 := (input.a)}, `\n\\n`])"
        );
    }

    #[test]
    fn literal_expressions_are_written_as_opa_writes_them() {
        // A number keeps the text it was written with; a template of
        // literals only is a constant (which a default value may be).
        assert_eq!(call("x := $\"\""), "x := \"\"");
        assert_eq!(
            call("default x := $\"{1.0} {0.10} {-0} {1e3} {\"s\\n\"} {true} {null}\""),
            "default x := \"1.0 0.10 -0 1e3 s\\n true null\""
        );
        assert_eq!(call("x := $`a\"{`b`}`"), "x := \"a\\\"b\"");
        assert_eq!(
            call("x := $\"{1} {input.a}\""),
            "x := internal.template_string([\"1\", \" \", {__warden_tmpl_0 | __warden_tmpl_0 := (input.a)}])"
        );
        // A raw template over several lines keeps its line breaks.
        assert_eq!(call("x := $`{1}\n`"), "x := internal.template_string([\"1\", `\n`])");
    }

    #[test]
    fn braces_strings_comments_and_nested_templates_inside_an_expression() {
        assert_eq!(
            call("x := $\"a{\"}\"}b{ {\"k\": {1}} }\""),
            "x := internal.template_string([\"a\", \"}\", \"b\", {__warden_tmpl_0 | __warden_tmpl_0 := ( {\"k\": {1}} )}])"
        );
        assert_eq!(
            call("x := $\"{$\"in{input.a}\"}\""),
            "x := internal.template_string([{__warden_tmpl_1 | __warden_tmpl_1 := \
             (internal.template_string([\"in\", {__warden_tmpl_0 | __warden_tmpl_0 := (input.a)}]))}])"
        );
        assert_eq!(
            call("x := $\"{input.name # }\n}\""),
            "x := internal.template_string([{__warden_tmpl_0 | __warden_tmpl_0 := (input.name # }\n)}])"
        );
    }

    #[test]
    fn strings_comments_and_plain_dollars_are_left_alone() {
        for text in [
            "package p\nx := \"$\\\"{a}\"\n",
            "package p\n# $\"{a}\"\nx := 1\n",
            "package p\nx := `$\"{a}\"`\n",
        ] {
            assert_eq!(desugar("p.rego", text), Ok(None), "{text}");
        }
    }

    #[test]
    fn lines_keep_their_numbers() {
        let text = "package p\nx := $\"{\ninput.a}\"\ny := 1\n";
        let out = desugar("p.rego", text).unwrap().unwrap();
        assert_eq!(out.lines().count(), text.lines().count());
        assert!(out.lines().nth(3) == Some("y := 1"), "{out}");
    }

    fn unbound(body: &str) -> Option<String> {
        let bundle = crate::policy::bundle::ParsedBundle::of_modules(&[("p.rego", &format!("package p\n{body}\n"))]);
        super::first_unbound_var(&super::super::rewrite::parse_bundle(&bundle).expect("the module parses"))
    }

    /// Each body with whether real OPA v1.20 refuses it (`var … is
    /// undeclared`), as OPA answered.
    #[test]
    fn names_nothing_binds_are_refused_as_opa_refuses_them() {
        for (body, opa_refuses) in [
            (
                "x := $\"{input.xs[_]}\"",
                Some("rego_compile_error: var _ is undeclared"),
            ),
            (
                "x := $\"{input.xs[i]}\"",
                Some("rego_compile_error: var i is undeclared"),
            ),
            ("x := $\"{y}\"", Some("rego_unsafe_var_error: var y is unsafe")),
            (
                "x := $\"{count(input.xs) + z}\"",
                Some("rego_compile_error: var z is undeclared"),
            ),
            ("x := $\"{input.xs[i]}\" if some i, _ in input.xs", None),
            ("x := $\"{y}\" if y := 1", None),
            ("x := $\"{y}\"\ny := 1", None),
            ("f(a) := $\"{a}\"", None),
            ("x := $\"{[y | some y in input.xs]}\"", None),
            ("x := $\"{{k: 1 | some k in input.xs}}\"", None),
            ("x := [$\"{y}\" | some y in input.xs]", None),
            ("x := $\"{io.jwt.decode(input.t)}\"", None),
            ("x := $\"{data.p.y}\"\ny := 1", None),
            ("x := $\"{y}\" if { some y; y = 1 }", None),
            ("x := $\"{$\"{w}\"}\"", Some("rego_unsafe_var_error: var w is unsafe")),
        ] {
            let got = unbound(body);
            match opa_refuses {
                Some(why) => assert_eq!(
                    got.as_deref(),
                    Some(format!("p.rego:2: {why} (OPA refuses this module too)").as_str()),
                    "{body}"
                ),
                None => assert_eq!(got, None, "{body}"),
            }
        }
    }

    #[test]
    fn templates_opa_cannot_read_are_refused_with_their_line() {
        for (body, why) in [
            (
                "x := $\"a{input.name\"",
                "p.rego:2: rego_parse_error: expected } to end template string expression",
            ),
            (
                "x := $\"{}\"",
                "p.rego:2: rego_parse_error: invalid template-string expression",
            ),
            (
                "x := $\"{ # only a comment\n}\"",
                "p.rego:2: rego_parse_error: invalid template-string expression",
            ),
            (
                "y := 1\nx := $\"a\\{b\"",
                "p.rego:3: rego_parse_error: illegal escape sequence",
            ),
            ("x := $\"a\nb\"", "p.rego:2: rego_parse_error: non-terminated string"),
            ("x := $`a", "p.rego:2: rego_parse_error: non-terminated string"),
        ] {
            let text = format!("package p\n{body}");
            let why = format!("{why} (OPA refuses this module too)");
            assert_eq!(desugar("p.rego", &text), Err(why), "{body}");
        }
    }
}
