//! Modules rewritten before they compile, so that regorus evaluates them in
//! OPA's order. Two places differ, each measured against real OPA
//! (`tests/opa/`):
//!
//! **Negations.** OPA evaluates the dynamic terms nested in a negated
//! expression *before* the negation: `not blocked[input.user]` is, to OPA,
//! `x := input.user; not blocked[x]`, so with `input.user` undefined the
//! body fails. regorus negated the whole expression and answered true: a
//! deny-list written the usual way let through every request that omitted
//! the field. The terms OPA takes out of a negated expression are:
//!
//! - in a call (`f(a)`, `a > b`, `a != b`, `x in s`, arithmetic): every
//!   argument that is a reference or a call, whole;
//! - in an equality (`a == b`, `a = b`, `equal(a, b)`) and in a bare term
//!   (`not a[b]`): only what is nested in each side (a reference's
//!   bracketed keys, a call, the elements of an array, set or object);
//! - and, recursively, what is nested in what is taken out. Comprehensions
//!   stay where they are (they are always defined).
//!
//! Each term taken out becomes `__warden_not_<n> := <term>` just before the
//! negation, on the same line (so error positions do not move), with the
//! negation's `with` modifiers.
//!
//! **Rule heads.** In `notify contains cfg.on_call[t] if some t in
//! input.teams`, a binding for which the head's term is undefined adds
//! nothing, in OPA; the others still count. regorus failed the whole rule
//! (an error, or an empty set under a ref head). The term of a partial set,
//! and the key and value of a partial object, when they are references or
//! calls, are evaluated at the end of each body instead:
//! `notify contains __warden_elem_<n> if { some t in input.teams;
//! __warden_elem_<n> := cfg.on_call[t] }`.
//!
//! **Arithmetic.** OPA evaluates `a + b` as the builtin `plus(a, b)` (so
//! `with plus as f` replaces it), on exact decimals. `+`, `-`, `*` and `/`
//! become calls to `plus`, `minus`, `mul` and `div`, which Warden computes
//! on decimals where an operand is not an integer (`0.1 + 0.2 == 0.3`, as
//! in OPA; see `builtins::decimal`). Line breaks inside the expression are
//! kept, so lines do not move.
//!
//! **Membership as a value.** `is_admin := "admin" in input.roles` is, to
//! OPA, the call `internal.member_2("admin", input.roles)`: undefined when
//! `input.roles` is. regorus answered false. A membership used as a value
//! (not as a whole statement, where undefined and false both fail) becomes
//! that call (`internal.member_3(k, v, c)` for `k, v in c`).
//!
//! **Calls apart from their `(`.** A name with its `(` on the next line is
//! two statements to OPA; a `;` is put after the name first
//! (`super::call_syntax`).
//!
//! **A comprehension's own names.** A name a comprehension declares
//! (`[y | some y in xs]`) is its own to OPA even where the rule also has a
//! `y`; regorus refused the module. It is renamed inside the
//! comprehension first (`super::shadowing`).
//!
//! A module without any of these is compiled unchanged.

use regorus::Source;
use regorus::unstable::{Expr, Literal, LiteralStmt, Module, Parser, Query, Rule, RuleBody, RuleHead};

/// Most passes over one module (one per level of negations nested in
/// comprehensions inside negations).
const MAX_PASSES: usize = 16;

/// The module with OPA's evaluation order made explicit, or `None` when
/// nothing in it needs rewriting. `Err` is the parser's own message for a
/// module that does not parse (compiling it reports the error).
pub fn rewrite(path: &str, source: &str, rego_v1: bool) -> Result<Option<String>, String> {
    let mut text = source.to_string();
    let mut next = 0usize;
    let mut locals = 0usize;
    for _ in 0..MAX_PASSES {
        let module = parse(path, &text, rego_v1)?;
        // A name and its `(` on two lines are two statements to OPA.
        if let Some(split) = super::call_syntax::split_detached(&module, &text) {
            text = split;
            continue;
        }
        // A comprehension's own names, apart from the rule's.
        if let Some(renamed) = super::shadowing::rename_shadowed(&module, &text, &mut locals) {
            text = renamed;
            continue;
        }
        let numbered = next;
        let (edits, mut arithmetic, survey) = Walker::edits(&module, &text, &mut next, rego_v1);
        // Builtins named in `with` and binding calls first: the other
        // rewrites are found again, and numbered from where they were, on
        // the text that no longer has them.
        if !survey.builtin_replacements.is_empty() || !survey.binding_calls.is_empty() {
            text = builtin_wrappers(&text, &survey.builtin_replacements, &survey.binding_calls, rego_v1);
            next = numbered;
            continue;
        }
        if edits.is_empty() {
            if !arithmetic.is_empty() {
                arithmetic.sort_by_key(|n| (n.start, std::cmp::Reverse(n.end)));
                let mut at = 0;
                text = render(&text, 0, text.len(), &arithmetic, &mut at, 0)
                    .ok_or_else(|| format!("{path}: arithmetic nested more than {MAX_ARITH_DEPTH} deep"))?;
            }
            return Ok((text != source).then_some(text));
        }
        text = splice(&text, 0, text.len(), &edits);
    }
    Err(format!(
        "{path}: negations nested more than {MAX_PASSES} deep inside one another"
    ))
}

/// What a module holds that OPA and Warden may read apart, found by the
/// walk the rewrite makes: its calls (name as written, argument count,
/// line) and number literals a double does not hold exactly.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct Survey {
    pub calls: Vec<(String, usize, u32)>,
    pub inexact_numbers: Vec<(String, u32)>,
    /// Lines of quotients that may have no finite decimal (`a / 3`, `a /
    /// input.n`): Warden holds them as the nearest double.
    pub inexact_quotients: Vec<u32>,
    /// `with f as g` where `g` names a builtin: byte range of `g`, its name.
    builtin_replacements: Vec<(usize, usize, String)>,
    /// `eq(a, b)` and `assign(a, b)` as statements: byte range, and the
    /// operator form that binds as they do (`a = b`, `a := b`).
    binding_calls: Vec<(usize, usize, String)>,
}

/// The survey of one module as written.
pub fn survey(path: &str, source: &str, rego_v1: bool) -> Result<Survey, String> {
    let module = parse(path, source, rego_v1)?;
    let mut next = 0;
    Ok(Walker::edits(&module, source, &mut next, rego_v1).2)
}

/// Most significant digits a double holds for every decimal.
const DOUBLE_DIGITS: usize = 15;

/// True when a number literal means the value Warden computes with: an
/// integer within 64 bits (regorus keeps those exact), or a decimal of at
/// most 15 significant digits within a double's range.
fn number_is_exact(text: &str) -> bool {
    let t = text.trim_start_matches('-');
    let (mantissa, exp) = match t.find(['e', 'E']) {
        Some(i) => (&t[..i], t[i + 1..].parse::<i32>().unwrap_or(i32::MAX)),
        None => (t, 0),
    };
    if !mantissa.contains('.') && exp == 0 {
        return mantissa.parse::<u64>().is_ok();
    }
    let digits: String = mantissa.chars().filter(char::is_ascii_digit).collect();
    let significant = digits.trim_start_matches('0').trim_end_matches('0');
    if significant.is_empty() {
        return true;
    }
    let magnitude = text.parse::<f64>().map(f64::abs).unwrap_or(f64::INFINITY);
    significant.len() <= DOUBLE_DIGITS && magnitude.is_finite() && magnitude >= f64::MIN_POSITIVE
}

/// True when dividing any decimal by `divisor` gives a finite decimal: a
/// number literal whose digits, as an integer, have no prime factor but 2
/// and 5 (`/ 100`, `/ 4`, `/ 2.5`). Such a quotient Warden computes
/// exactly, as OPA does.
fn divides_finitely(divisor: &Expr) -> bool {
    let Expr::Number { span, .. } = divisor else {
        return false;
    };
    let text = span.text();
    let mantissa = text.split(['e', 'E']).next().unwrap_or(text);
    let digits: String = mantissa.chars().filter(char::is_ascii_digit).collect();
    let Ok(mut m) = digits.trim_start_matches('0').parse::<u128>() else {
        return false;
    };
    for p in [2, 5] {
        while m > 0 && m % p == 0 {
            m /= p;
        }
    }
    m == 1
}

/// Every module of a bundle as regorus parses it, with its file, for the
/// other checks made at upload (which walk the same trees); None when one
/// does not parse (compiling it reports why).
pub(super) fn parse_bundle(bundle: &super::bundle::ParsedBundle) -> Option<Vec<(&str, Module)>> {
    let rego_v1 = bundle.manifest.rego_version != Some(0);
    bundle
        .modules
        .iter()
        .map(|m| {
            parse(&m.path, &m.source, rego_v1)
                .ok()
                .map(|module| (m.path.as_str(), module))
        })
        .collect()
}

/// How large a module regorus reads: as large as the bundle holds. OPA
/// has no limit of its own; regorus' defaults (lines of 1,024 columns,
/// files of 1 MiB and 20,000 lines) refused generated modules OPA compiles.
/// What is read is bounded by the archive's limits (`archive::Limits`).
pub(crate) fn module_limits() -> regorus::PolicyLengthConfig {
    const LARGEST: usize = u32::MAX as usize;
    regorus::PolicyLengthConfig {
        max_col: std::num::NonZeroU32::MAX,
        max_file_bytes: std::num::NonZeroUsize::new(LARGEST).expect("non-zero"),
        max_lines: std::num::NonZeroUsize::new(LARGEST).expect("non-zero"),
    }
}

/// A source and parser for a module, within [`module_limits`].
pub(crate) fn source(path: &str, text: &str) -> Result<Source, String> {
    let limits = module_limits();
    Source::from_contents_with_limits(
        path.to_string(),
        text.to_string(),
        limits.max_file_bytes,
        limits.max_lines,
    )
    .map_err(|e| e.to_string())
}

pub(super) fn parse(path: &str, text: &str, rego_v1: bool) -> Result<Module, String> {
    let source = source(path, text)?;
    let mut parser = Parser::new(&source).map_err(|e| e.to_string())?;
    parser.set_max_col(module_limits().max_col);
    if rego_v1 {
        parser.enable_rego_v1().map_err(|e| e.to_string())?;
    }
    parser.parse().map_err(|e| e.to_string())
}

/// The objects a package document holds whatever its rules answer: every
/// proper prefix of a rule head's static reference (`deep`, `deep.x` and
/// `deep.x.y` for `deep.x.y.z := input.v`), and the static part itself
/// when the rest is dynamic (`limits` for `limits[t].max := n`). OPA's
/// package document has them, empty where no rule below is defined;
/// regorus leaves them out. Paths are relative to the package; a module
/// that does not parse has none.
pub fn rule_parents(path: &str, source: &str, rego_v1: bool) -> Vec<Vec<String>> {
    let Ok(module) = parse(path, source, rego_v1) else {
        return Vec::new();
    };
    let mut out: Vec<Vec<String>> = Vec::new();
    for rule in &module.policy {
        let refr = match rule.as_ref() {
            Rule::Spec {
                head: RuleHead::Compr { refr, .. } | RuleHead::Set { refr, .. },
                ..
            } => refr,
            Rule::Default { refr, args, .. } if args.is_empty() => refr,
            _ => continue,
        };
        let Some((parts, dynamic)) = static_ref(refr) else {
            continue;
        };
        let upto = if dynamic {
            parts.len()
        } else {
            parts.len().saturating_sub(1)
        };
        for n in 1..=upto {
            let prefix = parts[..n].to_vec();
            if !out.contains(&prefix) {
                out.push(prefix);
            }
        }
    }
    out
}

/// The static keys of a rule head's reference, and whether a dynamic key
/// follows them.
fn static_ref(e: &Expr) -> Option<(Vec<String>, bool)> {
    match e {
        Expr::Var { span, .. } => Some((vec![span.text().to_string()], false)),
        Expr::RefDot { refr, field, .. } => {
            let (mut parts, dynamic) = static_ref(refr)?;
            if !dynamic {
                parts.push(field.0.text().to_string());
            }
            Some((parts, dynamic))
        }
        Expr::RefBrack { refr, index, .. } => {
            let (mut parts, dynamic) = static_ref(refr)?;
            if dynamic {
                return Some((parts, true));
            }
            match index.as_ref() {
                Expr::String { value, .. } | Expr::RawString { value, .. } => {
                    parts.push(value.as_string().ok()?.to_string());
                    Some((parts, false))
                }
                _ => Some((parts, true)),
            }
        }
        _ => None,
    }
}

/// Prefix of the functions that stand for a builtin named in `with … as`.
const BUILTIN_WRAPPER: &str = "__warden_builtin_";

/// `with f as g`, `g` a builtin: OPA replaces `f` by the builtin `g`;
/// regorus reads `g` as a variable and refuses the module. Each such `g`
/// becomes a function of this module that calls the builtin, defined after
/// the last line (so no line moves): `__warden_builtin_lower(a0) := lower(a0)`.
///
/// `eq(a, b)` and `assign(a, b)` written as statements bind variables, as
/// `a = b` and `a := b` do (to OPA they are the same builtins); regorus
/// has no such functions, so each becomes its operator form.
fn builtin_wrappers(
    text: &str,
    replacements: &[(usize, usize, String)],
    binding_calls: &[(usize, usize, String)],
    rego_v1: bool,
) -> String {
    let wrapper = |name: &str| format!("{BUILTIN_WRAPPER}{}", name.replace('.', "_"));
    let mut edits: Vec<Edit> = replacements
        .iter()
        .map(|(start, end, name)| Edit {
            start: *start,
            end: *end,
            text: wrapper(name),
        })
        .chain(binding_calls.iter().map(|(start, end, operator_form)| Edit {
            start: *start,
            end: *end,
            text: operator_form.clone(),
        }))
        .collect();
    edits.sort_by_key(|e| e.start);
    // A `with … as g` inside a rewritten call is left for the next pass.
    let mut kept: Vec<Edit> = Vec::with_capacity(edits.len());
    for e in edits {
        if kept.last().is_none_or(|k: &Edit| k.end <= e.start) {
            kept.push(e);
        }
    }
    let edits = kept;
    let mut out = splice(text, 0, text.len(), &edits);
    let mut defined: Vec<&str> = Vec::new();
    for (_, _, name) in replacements {
        if defined.contains(&name.as_str()) {
            continue;
        }
        defined.push(name);
        let arity = super::builtins::any_arity(name).unwrap_or(1);
        let args: Vec<String> = (0..arity).map(|i| format!("__a{i}")).collect();
        let args = args.join(", ");
        let keyword = if rego_v1 { "if " } else { "" };
        out.push_str(&format!(
            "\n{}({args}) := __r {keyword}{{ __r := {name}({args}) }}\n",
            wrapper(name)
        ));
    }
    out
}

/// One replacement: bytes `start..end` of the text become `text`.
#[derive(Debug, Clone)]
struct Edit {
    start: usize,
    end: usize,
    text: String,
}

/// `source[start..end]` with the edits (sorted, disjoint, inside) applied.
fn splice(source: &str, start: usize, end: usize, edits: &[Edit]) -> String {
    let mut out = String::with_capacity(end - start + 16 * edits.len());
    let mut at = start;
    for e in edits {
        out.push_str(&source[at..e.start]);
        out.push_str(&e.text);
        at = e.end;
    }
    out.push_str(&source[at..end]);
    out
}

/// Deepest nesting of operators rewritten into calls.
const MAX_ARITH_DEPTH: usize = 256;

/// One operator written as a call: its span, the builtin, its operands'
/// spans (two, or three for `k, v in c`).
#[derive(Debug, Clone)]
struct Arith {
    start: usize,
    end: usize,
    builtin: &'static str,
    operands: Vec<(usize, usize)>,
}

/// `text[start..end]` with every operator in it (sorted by start, outer
/// first; `next` is the first not yet written) written as a call; the line
/// breaks of what is dropped are kept.
fn render(text: &str, start: usize, end: usize, nodes: &[Arith], next: &mut usize, depth: usize) -> Option<String> {
    if depth > MAX_ARITH_DEPTH {
        return None;
    }
    let breaks = |a: usize, b: usize| "\n".repeat(text[a..b.max(a)].matches('\n').count());
    let mut out = String::with_capacity(end - start + 16);
    let mut at = start;
    while *next < nodes.len() && nodes[*next].start < end {
        let n = nodes[*next].clone();
        *next += 1;
        if n.start < at {
            continue;
        }
        out.push_str(&text[at..n.start]);
        out.push_str(n.builtin);
        out.push('(');
        let mut before = n.start;
        for (i, &(a, b)) in n.operands.iter().enumerate() {
            if i > 0 {
                out.push_str(", ");
            }
            out.push_str(&breaks(before, a));
            out.push_str(&render(text, a, b, nodes, next, depth + 1)?);
            before = b;
        }
        out.push_str(&breaks(before, n.end));
        out.push(')');
        at = n.end;
    }
    out.push_str(&text[at..end]);
    Some(out)
}

/// The bytes of a term as written: a string literal's span leaves out its
/// quotes, which a rewritten operand must keep.
fn term_range(e: &Expr) -> (usize, usize) {
    let (start, end) = range(e);
    match e {
        Expr::String { .. } | Expr::RawString { .. } => (start.saturating_sub(1), end + 1),
        _ => (start, end),
    }
}

/// An operator's bytes with its operands' as written.
fn operator_range(e: &Expr, operands: &[(usize, usize)]) -> (usize, usize) {
    let (start, end) = range(e);
    let first = operands.first().map_or(start, |o| o.0);
    let last = operands.last().map_or(end, |o| o.1);
    (start.min(first), end.max(last))
}

fn range(e: &Expr) -> (usize, usize) {
    let s = e.span();
    (s.start as usize, s.end as usize)
}

struct Walker<'a> {
    text: &'a str,
    next: &'a mut usize,
    /// `if` is a keyword (Rego v1), so a body can be added to a rule.
    rego_v1: bool,
    edits: Vec<Edit>,
    /// The arithmetic expressions met on the way.
    arithmetic: Vec<Arith>,
    /// What else was met that OPA and Warden may read apart.
    survey: Survey,
    /// The names of this module's functions and rules.
    functions: Vec<String>,
}

impl Walker<'_> {
    /// The rewrites of this pass: the innermost negations that need one.
    fn edits(module: &Module, text: &str, next: &mut usize, rego_v1: bool) -> (Vec<Edit>, Vec<Arith>, Survey) {
        let mut w = Walker {
            text,
            next,
            rego_v1,
            edits: Vec::new(),
            arithmetic: Vec::new(),
            survey: Survey::default(),
            functions: module
                .policy
                .iter()
                .map(|r| match r.as_ref() {
                    Rule::Spec {
                        head: RuleHead::Compr { refr, .. } | RuleHead::Set { refr, .. } | RuleHead::Func { refr, .. },
                        ..
                    }
                    | Rule::Default { refr, .. } => refr.span().text().to_string(),
                })
                .collect(),
        };
        for rule in &module.policy {
            match rule.as_ref() {
                Rule::Spec { head, bodies, .. } => {
                    match head {
                        RuleHead::Compr { assign, .. } | RuleHead::Func { assign, .. } => {
                            if let Some(a) = assign {
                                w.expr(&a.value);
                            }
                        }
                        RuleHead::Set { key, .. } => {
                            if let Some(k) = key {
                                w.expr(k);
                            }
                        }
                    }
                    for b in bodies {
                        if let Some(a) = &b.assign {
                            w.expr(&a.value);
                        }
                        w.query(&b.query, true);
                    }
                }
                Rule::Default { .. } => {}
            }
        }
        let arithmetic = std::mem::take(&mut w.arithmetic);
        let survey = std::mem::take(&mut w.survey);
        let mut edits = std::mem::take(&mut w.edits);
        if edits.is_empty() {
            // Heads only once no negation is left to rewrite: a head's
            // edits (its term and each body) must land in the same pass.
            for rule in &module.policy {
                if let Rule::Spec { head, bodies, span } = rule.as_ref() {
                    w.head(head, bodies, span.end as usize);
                }
            }
            edits = w.edits;
        }
        edits.sort_by_key(|e| e.start);
        // Keep only the innermost of overlapping rewrites; the outer ones
        // are found again, with the inner ones applied, in the next pass.
        let mut kept: Vec<Edit> = Vec::new();
        for e in edits {
            kept.retain(|k: &Edit| !(k.start <= e.start && e.end <= k.end));
            if kept.iter().any(|k| e.start <= k.start && k.end <= e.end) {
                continue;
            }
            kept.push(e);
        }
        (kept, arithmetic, survey)
    }

    /// Moves the dynamic terms of a partial rule's head into its bodies.
    fn head(&mut self, head: &RuleHead, bodies: &[RuleBody], rule_end: usize) {
        if bodies.iter().any(|b| b.is_else || b.assign.is_some()) {
            return;
        }
        let mut terms: Vec<&Expr> = Vec::new();
        match head {
            RuleHead::Set { key: Some(k), .. } => terms.push(k),
            RuleHead::Compr {
                refr, assign: Some(a), ..
            } if matches!(refr.as_ref(), Expr::RefBrack { .. }) => {
                if let Expr::RefBrack { index, .. } = refr.as_ref() {
                    terms.push(index);
                }
                terms.push(&a.value);
            }
            _ => return,
        }
        let terms: Vec<&Expr> = terms.into_iter().filter(|t| is_dynamic(t)).collect();
        if terms.is_empty() || (bodies.is_empty() && !self.rego_v1) {
            return;
        }
        let mut assigns = Vec::new();
        for t in terms {
            let (start, end) = range(t);
            let var = format!("__warden_elem_{}", *self.next);
            *self.next += 1;
            assigns.push(format!("{var} := {}", &self.text[start..end]));
            self.edits.push(Edit { start, end, text: var });
        }
        let assigns = assigns.join("; ");
        if bodies.is_empty() {
            // `p contains cfg.x`: the same, with a body of its own.
            self.edits.push(Edit {
                start: rule_end,
                end: rule_end,
                text: format!(" if {{ {assigns} }}"),
            });
            return;
        }
        for b in bodies {
            let (start, end) = (b.query.span.start as usize, b.query.span.end as usize);
            let body = &self.text[start..end];
            if body.starts_with('{') && body.ends_with('}') {
                self.edits.push(Edit {
                    start: end - 1,
                    end: end - 1,
                    text: format!("\n{assigns}\n"),
                });
            } else {
                self.edits.push(Edit {
                    start,
                    end,
                    text: format!("{{ {body}; {assigns} }}"),
                });
            }
        }
    }

    fn query(&mut self, q: &Query, rule_body: bool) {
        let braced = self.text[q.span.start as usize..].starts_with('{');
        for stmt in &q.stmts {
            self.stmt(stmt, rule_body && !braced);
        }
    }

    fn stmt(&mut self, stmt: &LiteralStmt, wrap: bool) {
        for w in &stmt.with_mods {
            self.expr(&w.refr);
            self.expr(&w.r#as);
            self.builtin_replacement(&w.refr, &w.r#as);
        }
        match &stmt.literal {
            Literal::SomeVars { .. } => {}
            Literal::SomeIn {
                key, value, collection, ..
            } => self.member_parts(key.as_deref(), value, collection),
            Literal::Expr { expr, .. } => {
                self.binding_call(expr);
                self.condition(expr)
            }
            Literal::Every { domain, query, .. } => {
                self.expr(domain);
                self.query(query, false);
            }
            Literal::NotExpr { span, expr } => {
                self.condition(expr);
                self.negation(stmt, span.start as usize, expr, wrap);
            }
        }
    }

    /// An expression that is a whole statement: a membership here is a
    /// condition (undefined and false both fail it), not a value.
    fn condition(&mut self, e: &Expr) {
        match e {
            Expr::Membership {
                key, value, collection, ..
            } => self.member_parts(key.as_deref(), value, collection),
            other => self.expr(other),
        }
    }

    /// Writes operator `e` as a call of `builtin` on its operands.
    fn as_call(&mut self, e: &Expr, builtin: &'static str, operands: Vec<(usize, usize)>) {
        let (start, end) = operator_range(e, &operands);
        self.arithmetic.push(Arith {
            start,
            end,
            builtin,
            operands,
        });
    }

    /// The terms of `k, v in c` (or `v in c`).
    fn member_parts(&mut self, key: Option<&Expr>, value: &Expr, collection: &Expr) {
        if let Some(k) = key {
            self.expr(k);
        }
        self.expr(value);
        self.expr(collection);
    }

    /// Notes `eq(a, b)` / `assign(a, b)` as a statement, unless the module
    /// defines a function of that name.
    fn binding_call(&mut self, e: &Expr) {
        let Expr::Call { fcn, params, span, .. } = e else {
            return;
        };
        let name = fcn.span().text();
        let operator = match name {
            "eq" => "=",
            "assign" => ":=",
            _ => return,
        };
        if params.len() != 2 || self.functions.iter().any(|f| f == name) {
            return;
        }
        let (a, b) = (params[0].span().text(), params[1].span().text());
        self.survey
            .binding_calls
            .push((span.start as usize, span.end as usize, format!("{a} {operator} {b}")));
    }

    /// Notes `with f as g` where `g` names a builtin (not a function of
    /// this module) and `f` is a function, not `input` or `data`.
    fn builtin_replacement(&mut self, target: &Expr, replacement: &Expr) {
        let name = replacement.span().text();
        let target = target.span().text();
        let dotted = |t: &str| {
            !t.is_empty()
                && t.split('.').all(|part| {
                    part.chars().next().is_some_and(|c| c.is_ascii_alphabetic() || c == '_')
                        && part.chars().all(|c| c.is_ascii_alphanumeric() || c == '_')
                })
        };
        let rooted = |t: &str| {
            t == "input"
                || t == "data"
                || t.starts_with("input.")
                || t.starts_with("data.")
                || t.starts_with("input[")
                || t.starts_with("data[")
        };
        if !dotted(name) || rooted(target) || self.functions.iter().any(|f| f == name) {
            return;
        }
        if !super::compat::OPA_BUILTINS.contains(&name) || super::builtins::any_arity(name).is_none() {
            return;
        }
        let span = replacement.span();
        self.survey
            .builtin_replacements
            .push((span.start as usize, span.end as usize, name.to_string()));
    }

    /// Finds the negations inside comprehensions of `e`.
    fn expr(&mut self, e: &Expr) {
        match e {
            Expr::Number { span, .. } if !number_is_exact(span.text()) => {
                self.survey.inexact_numbers.push((span.text().to_string(), span.line));
            }
            Expr::ArrayCompr { term, query, .. } | Expr::SetCompr { term, query, .. } => {
                self.expr(term);
                self.query(query, false);
            }
            Expr::ObjectCompr { key, value, query, .. } => {
                self.expr(key);
                self.expr(value);
                self.query(query, false);
            }
            Expr::Array { items, .. } | Expr::Set { items, .. } => items.iter().for_each(|i| self.expr(i)),
            Expr::Object { fields, .. } => fields.iter().for_each(|(_, k, v)| {
                self.expr(k);
                self.expr(v);
            }),
            Expr::Call { fcn, params, span, .. } => {
                self.survey
                    .calls
                    .push((fcn.span().text().to_string(), params.len(), span.line));
                self.expr(fcn);
                params.iter().for_each(|p| self.expr(p));
            }
            Expr::UnaryExpr { expr, .. } => self.expr(expr),
            Expr::RefDot { refr, .. } => self.expr(refr),
            Expr::RefBrack { refr, index, .. } => {
                self.expr(refr);
                self.expr(index);
            }
            Expr::ArithExpr { op, lhs, rhs, .. } => {
                use regorus::unstable::ArithOp;
                let builtin = match op {
                    ArithOp::Add => Some("plus"),
                    ArithOp::Sub => Some("minus"),
                    ArithOp::Mul => Some("mul"),
                    ArithOp::Div => Some("div"),
                    ArithOp::Mod => None,
                };
                if let Some(builtin) = builtin {
                    self.as_call(e, builtin, vec![term_range(lhs), term_range(rhs)]);
                }
                if matches!(op, ArithOp::Div) && !divides_finitely(rhs) {
                    self.survey.inexact_quotients.push(e.span().line);
                }
                self.expr(lhs);
                self.expr(rhs);
            }
            Expr::BinExpr { lhs, rhs, .. } | Expr::BoolExpr { lhs, rhs, .. } | Expr::AssignExpr { lhs, rhs, .. } => {
                self.expr(lhs);
                self.expr(rhs);
            }
            Expr::Membership {
                key, value, collection, ..
            } => {
                // A membership used as a value is OPA's call
                // `internal.member_2(x, c)` (or `member_3`), undefined where
                // an argument is; regorus answered false.
                let (builtin, mut operands) = match key {
                    Some(k) => ("internal.member_3", vec![term_range(k)]),
                    None => ("internal.member_2", Vec::new()),
                };
                operands.push(term_range(value));
                operands.push(term_range(collection));
                self.as_call(e, builtin, operands);
                self.member_parts(key.as_deref(), value, collection);
            }
            _ => {}
        }
    }

    fn negation(&mut self, stmt: &LiteralStmt, not_start: usize, expr: &Expr, wrap: bool) {
        let mut hoisted: Vec<String> = Vec::new();
        let mut subs: Vec<Edit> = Vec::new();
        {
            let mut h = Hoist {
                text: self.text,
                next: &mut *self.next,
                out: &mut hoisted,
            };
            if is_equality(expr) {
                for side in operands(expr) {
                    h.in_term(side, &mut subs);
                }
            } else if is_call(expr) {
                for arg in operands(expr) {
                    h.one(arg, &mut subs);
                }
            } else {
                h.in_term(expr, &mut subs);
            }
        }
        if hoisted.is_empty() {
            return;
        }
        subs.sort_by_key(|e| e.start);
        let (start, end) = range(expr);
        let negated = splice(self.text, start, end, &subs);
        let withs = match (stmt.with_mods.first(), stmt.with_mods.last()) {
            (Some(first), Some(last)) => {
                format!(" {}", &self.text[first.span.start as usize..last.span.end as usize])
            }
            _ => String::new(),
        };
        let mut text = String::new();
        for h in &hoisted {
            text.push_str(h);
            text.push_str(&withs);
            text.push_str("; ");
        }
        text.push_str("not ");
        text.push_str(&negated);
        text.push_str(&withs);
        if wrap {
            text = format!("{{ {text} }}");
        }
        let stmt_end = stmt.with_mods.last().map_or(end, |w| (w.span.end as usize).max(end));
        self.edits.push(Edit {
            start: not_start,
            end: stmt_end,
            text,
        });
    }
}

/// A term that may be undefined where its rule's body holds.
fn is_dynamic(e: &Expr) -> bool {
    match e {
        Expr::RefDot { .. } | Expr::RefBrack { .. } => true,
        Expr::Array { items, .. } | Expr::Set { items, .. } => items.iter().any(|i| is_dynamic(i)),
        Expr::Object { fields, .. } => fields.iter().any(|(_, k, v)| is_dynamic(k) || is_dynamic(v)),
        Expr::ArrayCompr { .. } | Expr::SetCompr { .. } | Expr::ObjectCompr { .. } => false,
        other => is_call(other),
    }
}

/// `a == b`, `a = b`, `equal(a, b)`: OPA compares the two sides in place.
fn is_equality(e: &Expr) -> bool {
    use regorus::unstable::{AssignOp, BoolOp};
    match e {
        Expr::BoolExpr { op: BoolOp::Eq, .. } => true,
        Expr::AssignExpr { op: AssignOp::Eq, .. } => true,
        Expr::Call { fcn, params, .. } => params.len() == 2 && fcn.span().text() == "equal",
        _ => false,
    }
}

/// Expressions OPA evaluates as a builtin or function call.
fn is_call(e: &Expr) -> bool {
    matches!(
        e,
        Expr::Call { .. }
            | Expr::BoolExpr { .. }
            | Expr::ArithExpr { .. }
            | Expr::BinExpr { .. }
            | Expr::UnaryExpr { .. }
            | Expr::Membership { .. }
    )
}

fn operands(e: &Expr) -> Vec<&Expr> {
    match e {
        Expr::Call { params, .. } => params.iter().map(|p| p.as_ref()).collect(),
        Expr::BoolExpr { lhs, rhs, .. }
        | Expr::ArithExpr { lhs, rhs, .. }
        | Expr::BinExpr { lhs, rhs, .. }
        | Expr::AssignExpr { lhs, rhs, .. } => vec![lhs.as_ref(), rhs.as_ref()],
        Expr::UnaryExpr { expr, .. } => vec![expr.as_ref()],
        Expr::Membership {
            key, value, collection, ..
        } => key
            .iter()
            .map(|k| k.as_ref())
            .chain([value.as_ref(), collection.as_ref()])
            .collect(),
        _ => Vec::new(),
    }
}

/// Takes terms out of one negated expression.
struct Hoist<'a> {
    text: &'a str,
    next: &'a mut usize,
    out: &'a mut Vec<String>,
}

impl Hoist<'_> {
    /// A term compared or negated in place: only what is nested in it.
    fn in_term(&mut self, e: &Expr, subs: &mut Vec<Edit>) {
        match e {
            Expr::RefDot { .. } | Expr::RefBrack { .. } => self.ref_keys(e, subs),
            Expr::ArrayCompr { .. } | Expr::SetCompr { .. } | Expr::ObjectCompr { .. } => {}
            _ => self.one(e, subs),
        }
    }

    /// The bracketed keys of a reference, each as an argument.
    fn ref_keys(&mut self, e: &Expr, subs: &mut Vec<Edit>) {
        match e {
            Expr::RefDot { refr, .. } => self.ref_keys(refr, subs),
            Expr::RefBrack { refr, index, .. } => {
                self.ref_keys(refr, subs);
                self.one(index, subs);
            }
            _ => {}
        }
    }

    /// A term in argument position: references and calls are taken out
    /// whole (after what is nested in them); composites keep their place
    /// with their elements taken out.
    fn one(&mut self, e: &Expr, subs: &mut Vec<Edit>) {
        match e {
            Expr::RefDot { .. } | Expr::RefBrack { .. } => {
                let mut inner = Vec::new();
                self.ref_keys(e, &mut inner);
                self.take_out(e, inner, subs);
            }
            _ if is_call(e) => {
                let mut inner = Vec::new();
                for arg in operands(e) {
                    self.one(arg, &mut inner);
                }
                self.take_out(e, inner, subs);
            }
            Expr::Array { items, .. } | Expr::Set { items, .. } => {
                for i in items {
                    self.one(i, subs);
                }
            }
            Expr::Object { fields, .. } => {
                for (_, k, v) in fields {
                    self.one(k, subs);
                    self.one(v, subs);
                }
            }
            _ => {}
        }
    }

    fn take_out(&mut self, e: &Expr, mut inner: Vec<Edit>, subs: &mut Vec<Edit>) {
        inner.sort_by_key(|x| x.start);
        let (start, end) = range(e);
        let term = splice(self.text, start, end, &inner);
        let var = format!("__warden_not_{}", *self.next);
        *self.next += 1;
        self.out.push(format!("{var} := {term}"));
        subs.push(Edit { start, end, text: var });
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn body(rule: &str) -> String {
        let src = format!("package t\n\n{rule}\n");
        let out = rewrite("t.rego", &src, true).unwrap().unwrap_or(src);
        out.lines().nth(2).unwrap().to_string()
    }

    #[test]
    fn a_builtin_named_in_with_becomes_a_function_and_binding_calls_become_operators() {
        let src = "package t\n\nn := v if {\n\tv := upper(\"x\") with upper as lower\n}\n";
        assert_eq!(
            rewrite("t.rego", src, true).unwrap().unwrap(),
            "package t\n\nn := v if {\n\tv := upper(\"x\") with upper as __warden_builtin_lower\n}\n\n\
             __warden_builtin_lower(__a0) := __r if { __r := lower(__a0) }\n"
        );
        // `with input.x as count` replaces a document by the variable: kept.
        assert_eq!(
            body("a := v if { v := input.x with input.x as count }"),
            "a := v if { v := input.x with input.x as count }"
        );
        assert_eq!(body("a := x if eq(x, 1)"), "a := x if x = 1");
        assert_eq!(body("a := x if assign(x, [1])"), "a := x if x := [1]");
        // A module's own `eq` is its own.
        let own = "package t\n\na := x if eq(x, 1)\neq(a, b) := a\n";
        assert_eq!(rewrite("t.rego", own, true).unwrap(), None);
    }

    #[test]
    fn rule_heads_name_the_objects_a_package_document_holds() {
        let src = "package t\n\ndeep.x.y.z := input.v\nlimits[t].max := 1 if some t in input.t\nallow := true\na.b[\"c d\"].e := 1\n";
        let mut parents = rule_parents("t.rego", src, true);
        parents.sort();
        let want: Vec<Vec<String>> = [
            vec!["a"],
            vec!["a", "b"],
            vec!["a", "b", "c d"],
            vec!["deep"],
            vec!["deep", "x"],
            vec!["deep", "x", "y"],
            vec!["limits"],
        ]
        .iter()
        .map(|p| p.iter().map(|s| s.to_string()).collect())
        .collect();
        assert_eq!(parents, want);
    }

    #[test]
    fn nested_terms_are_taken_out_of_negations_as_opa_does() {
        assert_eq!(
            body("allow if { not blocked[input.user] }"),
            "allow if { __warden_not_0 := input.user; not blocked[__warden_not_0] }"
        );
        assert_eq!(
            body("allow if not blocked[input.user]"),
            "allow if { __warden_not_0 := input.user; not blocked[__warden_not_0] }"
        );
        assert_eq!(
            body("a if { not input.n > 3 }"),
            "a if { __warden_not_0 := input.n; not __warden_not_0 > 3 }"
        );
        assert_eq!(
            body("a if { not startswith(concat(\"\", [input.u]), \"m\") }"),
            "a if { __warden_not_0 := input.u; __warden_not_1 := concat(\"\", [__warden_not_0]); not startswith(__warden_not_1, \"m\") }"
        );
        // Equality compares its sides in place; only what is nested moves.
        assert_eq!(
            body("a if { not input.user == \"x\" }"),
            "a if { not input.user == \"x\" }"
        );
        assert_eq!(
            body("a if { not lower(input.user) == \"x\" }"),
            "a if { __warden_not_0 := input.user; __warden_not_1 := lower(__warden_not_0); not __warden_not_1 == \"x\" }"
        );
        assert_eq!(body("a if { not input.user }"), "a if { not input.user }");
        assert_eq!(
            body("a if { not input.u in {\"m\"} with input as {} }"),
            "a if { __warden_not_0 := input.u with input as {}; not __warden_not_0 in {\"m\"} with input as {} }"
        );
        assert_eq!(
            body("a if { not count([x | x := input.items[_]]) > 0 }"),
            "a if { __warden_not_0 := count([x | x := input.items[_]]); not __warden_not_0 > 0 }",
            "a call is taken out whole; the comprehension inside it stays (always defined)"
        );
    }

    #[test]
    fn negations_inside_comprehensions_and_every_are_rewritten_too() {
        assert_eq!(
            body("s := {u | some u in input.users; not blocked[u.name]}"),
            "s := {u | some u in input.users; __warden_not_0 := u.name; not blocked[__warden_not_0]}"
        );
        assert_eq!(
            body("a if { every u in input.users { not blocked[u.name] } }"),
            "a if { every u in input.users { __warden_not_0 := u.name; not blocked[__warden_not_0] } }"
        );
    }

    #[test]
    fn dynamic_head_terms_are_evaluated_in_each_body() {
        let src = "package t\n\nnotify contains cfg.on_call[t] if some t in input.teams\n";
        assert_eq!(
            rewrite("t.rego", src, true).unwrap().unwrap(),
            "package t\n\nnotify contains __warden_elem_0 if { some t in input.teams; __warden_elem_0 := cfg.on_call[t] }\n"
        );
        let src = "package t\n\nroles[name] := data.r[name] if {\n\tsome name in input.names\n}\n";
        assert_eq!(
            rewrite("t.rego", src, true).unwrap().unwrap(),
            "package t\n\nroles[name] := __warden_elem_0 if {\n\tsome name in input.names\n\n__warden_elem_0 := data.r[name]\n}\n"
        );
        // A variable or a constant is always defined: nothing to move.
        let src = "package t\n\ns contains x if some x in input.xs\n\nc := input.v\n";
        assert_eq!(rewrite("t.rego", src, true).unwrap(), None);
    }

    #[test]
    fn modules_without_such_negations_are_left_alone() {
        let src = "package t\n\nallow if { not input.user }\n";
        assert_eq!(rewrite("t.rego", src, true).unwrap(), None);
    }

    #[test]
    fn arithmetic_becomes_the_builtin_calls_opa_evaluates() {
        assert_eq!(body("x := 0.1 + 0.2 * input.n"), "x := plus(0.1, mul(0.2, input.n))");
        assert_eq!(body("x := (1 - 2) / 3 % 2"), "x := div(minus(1, 2), 3) % 2");
        assert_eq!(
            body("s := [y | some v in input.vs; y := v * 2]"),
            "s := [y | some v in input.vs; y := mul(v, 2)]"
        );
        // A line break inside the expression stays, so lines do not move.
        let src = "package t\n\nx := input.a +\n\tinput.b\n\ny := 1\n";
        let out = rewrite("t.rego", src, true).unwrap().unwrap();
        assert_eq!(out, "package t\n\nx := plus(input.a, \ninput.b)\n\ny := 1\n");
    }

    #[test]
    fn the_survey_finds_what_opa_reads_otherwise() {
        let src = "package t\n\nimport rego.v1\n\nbig := 123456789012345678901234567890\nfine := 0.1\nprecise := 0.1234567890123456789\nhuge := 1e300 * 10\nadmin := \"admin\" in input.roles\nallow if \"x\" in input.roles\ndeny if not \"y\" in input.roles\nc := concat(\",\")\n";
        let s = survey("t.rego", src, true).unwrap();
        assert_eq!(
            s.inexact_numbers,
            vec![
                ("123456789012345678901234567890".to_string(), 5),
                ("0.1234567890123456789".to_string(), 7)
            ]
        );
        assert!(s.calls.contains(&("concat".to_string(), 1, 12)), "{:?}", s.calls);
        let q = survey(
            "t.rego",
            "package t\n\na := input.x / 3\nb := input.x / 100\nc := input.x / 2.5\nd := input.x / input.n\ne := input.x / 0.125\n",
            true,
        )
        .unwrap();
        assert_eq!(q.inexact_quotients, vec![3, 6]);
        assert!(number_is_exact("18446744073709551615") && !number_is_exact("18446744073709551616"));
        assert!(number_is_exact("1.5e3") && !number_is_exact("1e-320"));
    }

    #[test]
    fn a_membership_used_as_a_value_becomes_opas_call() {
        assert_eq!(
            body("is_admin := \"admin\" in input.roles"),
            "is_admin := internal.member_2(\"admin\", input.roles)"
        );
        assert_eq!(
            body("allow if \"admin\" in input.roles"),
            "allow if \"admin\" in input.roles"
        );
        assert_eq!(
            body("n := count([r | some r in input.rs; r in {1 + 1}])"),
            "n := count([r | some r in input.rs; r in {plus(1, 1)}])"
        );
    }
}
