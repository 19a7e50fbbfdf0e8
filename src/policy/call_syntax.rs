//! Calls as OPA's parser reads them: the `(` right after the name.
//!
//! To OPA, `f(x)` is a call and `f (x)` is not: on one line it is a parse
//! error (`unexpected ( token`), and across a line break it is two
//! statements, `f` and then `(x)`. regorus reads a call in both, so
//!
//! ```rego
//! r if {
//!     x := input.a
//!     (1 + 2) > 2
//! }
//! ```
//!
//! was, to Warden, `x := input.a(1 + 2) > 2`: a call of `input.a`, where
//! OPA sees two statements. A module with a name and its `(` on one line
//! but apart is refused at upload as OPA refuses it; one with them on two
//! lines has a `;` put after the name (on the same line, so no line
//! moves), which is how OPA reads the line break there.

use regorus::unstable::{Expr, Module};

use super::literal_types::each_expr_of_rule;

/// Where a call's name ends and its `(` begins, when something stands
/// between them: the byte offset of the name's end in the module text,
/// and whether a line break is in the gap.
fn detached(e: &Expr) -> Option<(usize, bool)> {
    let Expr::Call { span, fcn, .. } = e else {
        return None;
    };
    let text = span.text();
    let name = fcn.span().text();
    let rest = text.get(name.len()..)?;
    let gap = &rest[..rest.find('(')?];
    if gap.is_empty() {
        return None;
    }
    let name_end = fcn.span().end as usize;
    Some((name_end, gap.contains('\n') || gap.contains('#')))
}

/// OPA's parse error for the first call written `f (x)` on one line.
pub(super) fn first_spaced_call(parsed: &[(&str, Module)]) -> Option<String> {
    for (file, module) in parsed {
        for rule in &module.policy {
            let mut found = None;
            each_expr_of_rule(rule, &mut |e| {
                if found.is_none()
                    && let Some((_, false)) = detached(e)
                {
                    found = Some(e.span().line);
                }
            });
            if let Some(line) = found {
                return Some(format!(
                    "{file}:{line}: rego_parse_error: unexpected ( token: a call's ( must follow the function's \
                     name, as OPA requires (OPA refuses this module too)"
                ));
            }
        }
    }
    None
}

/// The module text (`module` parsed from it) with a `;` after each name
/// whose `(` is on a later line, so that it reads as OPA reads it; None
/// when there is none. The rewrite applies it before anything else.
pub(super) fn split_detached(module: &Module, text: &str) -> Option<String> {
    let mut at: Vec<usize> = Vec::new();
    for rule in &module.policy {
        each_expr_of_rule(rule, &mut |e| {
            if let Some((end, true)) = detached(e) {
                at.push(end);
            }
        });
    }
    if at.is_empty() {
        return None;
    }
    at.sort_unstable();
    at.dedup();
    let mut out = String::with_capacity(text.len() + at.len());
    let mut from = 0;
    for end in at {
        out.push_str(text.get(from..end)?);
        out.push(';');
        from = end;
    }
    out.push_str(text.get(from..)?);
    Some(out)
}

#[cfg(test)]
mod tests {
    use crate::policy::bundle::ParsedBundle;

    fn split(body: &str) -> Option<String> {
        let text = format!("package p\n{body}");
        let module = super::super::rewrite::parse("p.rego", &text, true).expect("the module parses");
        super::split_detached(&module, &text)
    }

    fn refusal(body: &str) -> Option<String> {
        let bundle = ParsedBundle::of_modules(&[("p.rego", &format!("package p\n{body}"))]);
        super::first_spaced_call(&super::super::rewrite::parse_bundle(&bundle).expect("the module parses"))
    }

    #[test]
    fn a_name_and_its_parenthesis_on_two_lines_are_two_statements() {
        let text = split("r if {\n\tx := input.a\n\t(1 + 2) > 2\n}\n").expect("split");
        assert_eq!(text, "package p\nr if {\n\tx := input.a;\n\t(1 + 2) > 2\n}\n");
        assert_eq!(refusal("r if {\n\tx := input.a\n\t(1 + 2) > 2\n}\n"), None);
    }

    #[test]
    fn a_space_before_the_parenthesis_is_refused_as_opa_refuses_it() {
        let why = refusal("r if {\n\tx := count ([1])\n}\n").expect("refused");
        assert!(
            why.starts_with("p.rego:3: rego_parse_error: unexpected ( token"),
            "{why}"
        );
    }

    #[test]
    fn calls_as_written_everywhere_are_left_alone() {
        for body in [
            "r := count([1])\n",
            "r := count(\n\t[1],\n)\n",
            "r if { x := upper(\"a\"); x == \"A\" }\n",
            "r if {\n\tx := 1\n\t(x + 1) > 1\n}\n",
        ] {
            assert_eq!(split(body), None, "{body}");
            assert_eq!(refusal(body), None, "{body}");
        }
    }
}
