//! A comprehension's own names, as OPA scopes them.
//!
//! To OPA, a name a comprehension declares in its body (`some y in xs`,
//! `some y`, `y := …`) is the comprehension's own, whatever the rule
//! around it calls `y`:
//!
//! ```rego
//! x := z if {
//!     some y in [1]
//!     z := [y | some y in [2, 3]]   # [2, 3]
//! }
//! ```
//!
//! regorus refused such a module (`var y used before definition below`),
//! also for a function's argument of the same name (`f(y) := [y | some y
//! in xs]`). Before compiling, each comprehension declaring a name that
//! also stands outside it, in the same rule, has that name renamed inside
//! it (`__warden_local_<n>_y`), on the same line, so nothing else changes
//! meaning. The outermost such comprehensions are renamed in one pass; the
//! rewrite parses again, so one nested in it that declares the name once
//! more is renamed in the next.

use regorus::unstable::{Expr, Literal, Module, Query, Rule, RuleHead};

/// Deepest expression nesting walked.
const MAX_DEPTH: usize = 256;

/// A name where it is written: the name and its byte range.
type Place = (String, u32, u32);

/// The module text with the names of each outermost comprehension that
/// declares a name also used outside it renamed inside it; None when there
/// is none. `next` numbers the new names across passes.
pub(super) fn rename_shadowed(module: &Module, text: &str, next: &mut usize) -> Option<String> {
    let mut edits: Vec<(u32, u32, String)> = Vec::new();
    for rule in &module.policy {
        let mut names = Vec::new();
        let mut comprehensions = Vec::new();
        Walk {
            names: &mut names,
            comprehensions: &mut comprehensions,
        }
        .rule(rule);
        // Outermost first; a comprehension inside one renamed is left to
        // the next pass.
        comprehensions.sort_by_key(|(start, end, _)| (*start, std::cmp::Reverse(*end)));
        let mut renamed_until = 0u32;
        for (start, end, declared) in comprehensions {
            if start < renamed_until {
                continue;
            }
            let outside = |name: &str| names.iter().any(|(n, s, e)| n == name && (*e <= start || *s >= end));
            let mut shadowed: Vec<&String> = declared.iter().filter(|n| outside(n)).collect();
            shadowed.sort();
            shadowed.dedup();
            if shadowed.is_empty() {
                continue;
            }
            for name in shadowed {
                let fresh = format!("__warden_local_{}_{name}", *next);
                *next += 1;
                for (n, s, e) in &names {
                    if n == name && *s >= start && *e <= end {
                        edits.push((*s, *e, fresh.clone()));
                    }
                }
            }
            renamed_until = end;
        }
    }
    if edits.is_empty() {
        return None;
    }
    edits.sort_by_key(|e| e.0);
    edits.dedup_by_key(|e| e.0);
    let mut out = String::with_capacity(text.len() + edits.len() * 24);
    let mut at = 0usize;
    for (start, end, name) in edits {
        let (start, end) = (start as usize, end as usize);
        out.push_str(text.get(at..start)?);
        out.push_str(&name);
        at = end;
    }
    out.push_str(text.get(at..)?);
    Some(out)
}

/// Collects every name written in a rule and every comprehension with the
/// names its body declares.
struct Walk<'a> {
    names: &'a mut Vec<Place>,
    /// Each comprehension's byte range and the names its body declares.
    comprehensions: &'a mut Vec<(u32, u32, Vec<String>)>,
}

impl Walk<'_> {
    fn rule(&mut self, rule: &Rule) {
        match rule {
            Rule::Spec { head, bodies, .. } => {
                match head {
                    RuleHead::Compr { refr, assign, .. } => {
                        self.expr(refr, 0);
                        if let Some(a) = assign {
                            self.expr(&a.value, 0);
                        }
                    }
                    RuleHead::Set { refr, key, .. } => {
                        self.expr(refr, 0);
                        if let Some(k) = key {
                            self.expr(k, 0);
                        }
                    }
                    RuleHead::Func { refr, args, assign, .. } => {
                        self.expr(refr, 0);
                        args.iter().for_each(|a| self.expr(a, 0));
                        if let Some(a) = assign {
                            self.expr(&a.value, 0);
                        }
                    }
                }
                for b in bodies {
                    if let Some(a) = &b.assign {
                        self.expr(&a.value, 0);
                    }
                    self.query(&b.query, 0);
                }
            }
            Rule::Default { refr, args, value, .. } => {
                self.expr(refr, 0);
                args.iter().for_each(|a| self.expr(a, 0));
                self.expr(value, 0);
            }
        }
    }

    fn span(&mut self, s: &regorus::unstable::Span) {
        if s.text() != "_" {
            self.names.push((s.text().to_string(), s.start, s.end));
        }
    }

    fn query(&mut self, q: &Query, depth: usize) {
        for stmt in &q.stmts {
            for w in &stmt.with_mods {
                self.expr(&w.refr, depth);
                self.expr(&w.r#as, depth);
            }
            match &stmt.literal {
                Literal::SomeVars { vars, .. } => vars.iter().for_each(|v| self.span(v)),
                Literal::SomeIn {
                    key, value, collection, ..
                } => self.member(key.as_deref(), value, collection, depth),
                Literal::Expr { expr, .. } | Literal::NotExpr { expr, .. } => self.expr(expr, depth),
                Literal::Every {
                    key,
                    value,
                    domain,
                    query,
                    ..
                } => {
                    if let Some(k) = key {
                        self.span(k);
                    }
                    self.span(value);
                    self.expr(domain, depth);
                    self.query(query, depth + 1);
                }
            }
        }
    }

    fn expr(&mut self, e: &Expr, depth: usize) {
        if depth > MAX_DEPTH {
            return;
        }
        let d = depth + 1;
        match e {
            Expr::Var { span, .. } => self.span(span),
            Expr::Array { items, .. } | Expr::Set { items, .. } => items.iter().for_each(|i| self.expr(i, d)),
            Expr::Object { fields, .. } => fields.iter().for_each(|(_, k, v)| {
                self.expr(k, d);
                self.expr(v, d);
            }),
            Expr::ArrayCompr { span, term, query, .. } | Expr::SetCompr { span, term, query, .. } => {
                self.comprehensions.push((span.start, span.end, declared(query)));
                self.expr(term, d);
                self.query(query, d);
            }
            Expr::ObjectCompr {
                span,
                key,
                value,
                query,
                ..
            } => {
                self.comprehensions.push((span.start, span.end, declared(query)));
                self.expr(key, d);
                self.expr(value, d);
                self.query(query, d);
            }
            Expr::Call { fcn, params, .. } => {
                self.expr(fcn, d);
                params.iter().for_each(|p| self.expr(p, d));
            }
            Expr::UnaryExpr { expr, .. } => self.expr(expr, d),
            Expr::RefDot { refr, .. } => self.expr(refr, d),
            Expr::RefBrack { refr, index, .. } => {
                self.expr(refr, d);
                self.expr(index, d);
            }
            Expr::BinExpr { lhs, rhs, .. }
            | Expr::BoolExpr { lhs, rhs, .. }
            | Expr::ArithExpr { lhs, rhs, .. }
            | Expr::AssignExpr { lhs, rhs, .. } => {
                self.expr(lhs, d);
                self.expr(rhs, d);
            }
            Expr::Membership {
                key, value, collection, ..
            } => self.member(key.as_deref(), value, collection, d),
            _ => {}
        }
    }

    /// `key, value in collection`, as a statement (`some … in`) or a value.
    fn member(&mut self, key: Option<&Expr>, value: &Expr, collection: &Expr, depth: usize) {
        if let Some(k) = key {
            self.expr(k, depth);
        }
        self.expr(value, depth);
        self.expr(collection, depth);
    }
}

/// The names a comprehension's body declares at its top level: `some y`,
/// `some k, v in c`, `y := …` (and the names of a pattern on the left of
/// `:=`).
fn declared(q: &Query) -> Vec<String> {
    fn pattern(e: &Expr, out: &mut Vec<String>) {
        match e {
            Expr::Var { span, .. } if span.text() != "_" => out.push(span.text().to_string()),
            Expr::Array { items, .. } => items.iter().for_each(|i| pattern(i, out)),
            Expr::Object { fields, .. } => fields.iter().for_each(|(_, _, v)| pattern(v, out)),
            _ => {}
        }
    }
    let mut out = Vec::new();
    for stmt in &q.stmts {
        match &stmt.literal {
            Literal::SomeVars { vars, .. } => out.extend(vars.iter().map(|v| v.text().to_string())),
            Literal::SomeIn { key, value, .. } => {
                if let Some(k) = key {
                    pattern(k, &mut out);
                }
                pattern(value, &mut out);
            }
            Literal::Expr { expr, .. } => {
                if let Expr::AssignExpr {
                    op: regorus::unstable::AssignOp::ColEq,
                    lhs,
                    ..
                } = expr.as_ref()
                {
                    pattern(lhs, &mut out);
                }
            }
            _ => {}
        }
    }
    out
}

#[cfg(test)]
mod tests {
    fn renamed(body: &str) -> Option<String> {
        let text = format!("package p\n{body}");
        let module = super::super::rewrite::parse("p.rego", &text, true).expect("the module parses");
        let mut next = 0;
        super::rename_shadowed(&module, &text, &mut next).map(|t| t["package p\n".len()..].to_string())
    }

    #[test]
    fn a_name_declared_inside_and_used_outside_is_renamed_inside() {
        assert_eq!(
            renamed("x := z if { some y in [1]; z := [y | some y in [2, 3]] }").as_deref(),
            Some("x := z if { some y in [1]; z := [__warden_local_0_y | some __warden_local_0_y in [2, 3]] }")
        );
        assert_eq!(
            renamed("f(y) := {k: y | some k, y in input.m}").as_deref(),
            Some("f(y) := {k: __warden_local_0_y | some k, __warden_local_0_y in input.m}")
        );
        assert_eq!(
            renamed("x := [y | some y; y := 1] if { y := 2 }").as_deref(),
            Some("x := [__warden_local_0_y | some __warden_local_0_y; __warden_local_0_y := 1] if { y := 2 }")
        );
    }

    #[test]
    fn the_outermost_comprehension_goes_first() {
        let once = renamed("x := z if { some y in [1]; z := [[y, w] | some y in [2]; w := [y | some y in [3]]] }")
            .expect("renamed");
        assert_eq!(
            once,
            "x := z if { some y in [1]; z := [[__warden_local_0_y, w] | some __warden_local_0_y in [2]; w := \
             [__warden_local_0_y | some __warden_local_0_y in [3]]] }"
        );
        let twice = renamed(&once).expect("the inner one next");
        assert!(
            twice.contains(
                "w := [__warden_local_0___warden_local_0_y | some __warden_local_0___warden_local_0_y in [3]]"
            ),
            "{twice}"
        );
    }

    #[test]
    fn comprehensions_that_shadow_nothing_are_left_alone() {
        for body in [
            "x := [y | some y in [2, 3]]",
            "x := [y | some y in input.xs] if { z := 1 }",
            "x := [y | y := input.a[_]; y > 1]",
            "x := z if { some y in [1]; z := [y | y > 0] }",
            "x := [_ | some _ in [1]] if { some _ in [2] }",
        ] {
            assert_eq!(renamed(body), None, "{body}");
        }
    }
}
