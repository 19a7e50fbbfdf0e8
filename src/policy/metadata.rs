//! `rego.metadata.rule()` and `rego.metadata.chain()` as OPA answers them.
//!
//! Both depend only on where they are called, so OPA's compiler replaces
//! each call by a constant; Warden does the same at upload, splicing the
//! literal into the module text before it compiles (lines do not move: a
//! literal is written on one line). The literal is a function of the
//! bundle alone, so a decision replays from the stored bundle.
//!
//! Annotations are `# METADATA` comment blocks: consecutive full-line
//! comments, a new block at each comment that reads `METADATA`, its YAML
//! the text after each `#`. A block belongs to the next package or rule
//! (blank lines between are fine; before an import or nothing, OPA refuses
//! the module). Scopes, as OPA applies them:
//!
//! - `rule` (a rule's default; `document` when `entrypoint: true`): that
//!   rule only; `else` branches have none. `rule()` is the first such
//!   block, `chain()` lists them closest to the rule first.
//! - `document`: every rule of the same path, in any module.
//! - `package` (a package's default): the package, in any module.
//! - `subpackages`: the package and every package below it.
//!
//! `chain()` is `[rule…, document, package, subpackages of the package,
//! then of each parent up to the root]`, each `{"path": [...],
//! "annotations": {...}}` with the path without `data` (a rule's path
//! stops before its first non-constant key); its first entry is the rule
//! (`{"path": [...]}` alone when it has no rule annotations).
//!
//! The YAML is read as OPA's YAML library (`yaml.v3`, YAML 1.2) reads it
//! into JSON: `yes` is a string, `0x1F`, `017`, `0b101` and `1_000` are
//! integers, integers above 2^63 - 1 wrap as Go converts them, other
//! numbers are doubles printed as Go's `%g` prints them, dates become
//! RFC 3339 times. Only a bundle that calls one of the two builtins has its
//! annotations read, as OPA's engine reads them only then (a block it
//! would refuse elsewhere changes nothing; corpus `metadata_unread`).

use std::collections::{BTreeMap, HashMap};

use regorus::unstable::{Expr, Literal, Module, Query, Rule, RuleHead};

/// Deepest expression nesting walked for calls.
const MAX_DEPTH: usize = 256;
/// Most YAML nodes one annotation block may expand to (aliases counted).
const MAX_NODES: usize = 100_000;
/// Largest literal spliced into one module.
const MAX_OUTPUT: usize = 16 * 1024 * 1024;

/// A JSON value, numbers kept as the text OPA prints.
#[derive(Debug, Clone, PartialEq)]
enum J {
    Null,
    Bool(bool),
    Num(String),
    Str(String),
    Arr(Vec<J>),
    Obj(BTreeMap<String, J>),
}

impl J {
    /// The value as a one-line Rego literal.
    fn render(&self, out: &mut String) {
        match self {
            J::Null => out.push_str("null"),
            J::Bool(b) => out.push_str(if *b { "true" } else { "false" }),
            J::Num(n) => out.push_str(n),
            J::Str(s) => out.push_str(&quote(s)),
            J::Arr(items) => {
                out.push('[');
                for (i, v) in items.iter().enumerate() {
                    if i > 0 {
                        out.push_str(", ");
                    }
                    v.render(out);
                }
                out.push(']');
            }
            J::Obj(map) => {
                out.push('{');
                for (i, (k, v)) in map.iter().enumerate() {
                    if i > 0 {
                        out.push_str(", ");
                    }
                    out.push_str(&quote(k));
                    out.push_str(": ");
                    v.render(out);
                }
                out.push('}');
            }
        }
    }
}

/// A string as a Rego string literal (JSON's escapes, which Rego reads).
fn quote(s: &str) -> String {
    serde_json::Value::from(s).to_string()
}

/// Where a block's annotations apply.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Scope {
    Rule,
    Document,
    Package,
    Subpackages,
}

/// One module's parts the annotations need.
struct Parsed {
    module: Module,
    package: Vec<J>,
}

/// Every module's text with each `rego.metadata.rule()` and
/// `rego.metadata.chain()` call replaced by its value, as OPA's compiler
/// replaces them; unchanged when no module calls them or one does not
/// parse (compiling reports why). `Err` is OPA's message for annotations
/// it refuses.
pub fn inline(modules: &[(&str, &str)], rego_v1: bool) -> Result<Vec<String>, String> {
    let unchanged = || modules.iter().map(|(_, s)| s.to_string()).collect();
    if !modules.iter().any(|(_, s)| s.contains("rego.metadata.")) {
        return Ok(unchanged());
    }
    let mut parsed = Vec::with_capacity(modules.len());
    for (path, source) in modules {
        let Ok(module) = super::rewrite::parse(path, source, rego_v1) else {
            return Ok(unchanged());
        };
        let package = ground_prefix(&module.package.refr);
        parsed.push(Parsed { module, package });
    }
    // Named only in a comment or a string: nothing asks for annotations.
    let calls_any = parsed.iter().any(|p| {
        p.module.policy.iter().any(|rule| {
            let mut calls = Vec::new();
            rule_calls(rule, &mut calls);
            !calls.is_empty()
        })
    });
    if !calls_any {
        return Ok(unchanged());
    }

    // Annotations of every module, by scope; modules in the order of
    // their file names, as OPA reads a bundle.
    let mut rule_scope: HashMap<(usize, usize), Vec<J>> = HashMap::new();
    let mut document: Vec<(Vec<J>, J)> = Vec::new();
    let mut package: Vec<(Vec<J>, J)> = Vec::new();
    let mut subpackages: Vec<(Vec<J>, J)> = Vec::new();
    // Where each document, package and subpackages annotation was made.
    let mut declared: Vec<(Scope, Vec<J>, String)> = Vec::new();
    let mut order: Vec<usize> = (0..modules.len()).collect();
    order.sort_by(|a, b| modules[*a].0.cmp(modules[*b].0));
    for mi in order {
        let ((path, source), p) = (&modules[mi], &parsed[mi]);
        // Statements by line: the package, imports, rules.
        let mut stmts: Vec<(u32, Option<usize>, bool)> = vec![(p.module.package.span.line, None, true)];
        stmts.extend(p.module.imports.iter().map(|i| (i.span.line, None, false)));
        stmts.extend(
            p.module
                .policy
                .iter()
                .enumerate()
                .map(|(ri, r)| (r.span().line, Some(ri), false)),
        );
        stmts.sort_by_key(|s| s.0);
        for block in blocks(source) {
            let next = stmts.iter().find(|s| s.0 > block.last_line);
            let (annotations, scope) = annotation(&block, next.map(|s| (s.1.is_some(), s.2)))
                .map_err(|m| format!("{path}:{}: rego_parse_error: {m}", block.line))?;
            let target = match (next, scope) {
                (Some((_, Some(ri), _)), Scope::Rule) => {
                    rule_scope.entry((mi, *ri)).or_default().push(annotations);
                    continue;
                }
                (Some((_, Some(ri), _)), Scope::Document) => rule_path(&p.package, &p.module.policy[*ri]),
                (_, Scope::Package | Scope::Subpackages) => p.package.clone(),
                _ => continue,
            };
            // One of each per document or package: OPA refuses a second.
            let here = format!("{path}:{}", block.line);
            if let Some((_, _, first)) = declared.iter().find(|(s, t, _)| *s == scope && *t == target) {
                let name = match scope {
                    Scope::Document => "document",
                    Scope::Package => "package",
                    _ => "subpackages",
                };
                return Err(format!(
                    "{here}: rego_type_error: {name} annotation redeclared: {first}"
                ));
            }
            declared.push((scope, target.clone(), here));
            match scope {
                Scope::Document => document.push((target, annotations)),
                Scope::Package => package.push((target, annotations)),
                _ => subpackages.push((target, annotations)),
            }
        }
    }

    let mut out = Vec::with_capacity(modules.len());
    for (mi, ((_, source), p)) in modules.iter().zip(&parsed).enumerate() {
        let mut edits: Vec<(usize, usize, String)> = Vec::new();
        for (ri, rule) in p.module.policy.iter().enumerate() {
            let mut calls = Vec::new();
            rule_calls(rule, &mut calls);
            if calls.is_empty() {
                continue;
            }
            let path = rule_path(&p.package, rule);
            let own: &[J] = rule_scope.get(&(mi, ri)).map_or(&[], Vec::as_slice);
            for (start, end, which, in_else) in calls {
                let own = if in_else { &[][..] } else { own };
                let value = match which {
                    Which::Rule => own.first().cloned().unwrap_or_else(|| J::Obj(BTreeMap::new())),
                    Which::Chain => chain(&path, &p.package, own, &document, &package, &subpackages),
                };
                let mut text = String::new();
                value.render(&mut text);
                edits.push((start, end, text));
            }
        }
        if edits.is_empty() {
            out.push(source.to_string());
            continue;
        }
        edits.sort_by_key(|e| e.0);
        edits.dedup_by_key(|e| e.0);
        let mut text = String::with_capacity(source.len());
        let mut at = 0;
        for (start, end, literal) in edits {
            if start < at || end > source.len() || !source.is_char_boundary(start) || !source.is_char_boundary(end) {
                continue;
            }
            text.push_str(&source[at..start]);
            text.push_str(&literal);
            at = end;
            if text.len() > MAX_OUTPUT {
                return Err(format!("annotations expand beyond {MAX_OUTPUT} bytes"));
            }
        }
        text.push_str(&source[at..]);
        out.push(text);
    }
    Ok(out)
}

/// `rego.metadata.chain()` for a rule: its own annotations (closest
/// first, or its path alone), its document's, its package's, then the
/// subpackages annotations from the package up to the root.
fn chain(
    path: &[J],
    pkg: &[J],
    own: &[J],
    document: &[(Vec<J>, J)],
    package: &[(Vec<J>, J)],
    subpackages: &[(Vec<J>, J)],
) -> J {
    let entry = |path: &[J], annotations: Option<&J>| {
        let mut m = BTreeMap::new();
        m.insert("path".to_string(), J::Arr(path.to_vec()));
        if let Some(a) = annotations {
            m.insert("annotations".to_string(), a.clone());
        }
        J::Obj(m)
    };
    let mut out = Vec::new();
    if own.is_empty() {
        out.push(entry(path, None));
    }
    out.extend(own.iter().rev().map(|a| entry(path, Some(a))));
    if let Some((_, a)) = document.iter().find(|(p, _)| p == path) {
        out.push(entry(path, Some(a)));
    }
    if let Some((_, a)) = package.iter().find(|(p, _)| p == pkg) {
        out.push(entry(pkg, Some(a)));
    }
    for n in (0..=pkg.len()).rev() {
        if let Some((_, a)) = subpackages.iter().find(|(p, _)| p[..] == pkg[..n]) {
            out.push(entry(&pkg[..n], Some(a)));
        }
    }
    J::Arr(out)
}

/// The constant keys a reference starts with (`a.b["c"]` is `a, b, c`;
/// `a[x].b` is `a`), as OPA's ground prefix of a rule's or package's path.
fn ground_prefix(e: &Expr) -> Vec<J> {
    fn walk(e: &Expr, out: &mut Vec<J>, depth: usize) -> bool {
        if depth > MAX_DEPTH {
            return false;
        }
        match e {
            Expr::Var { value, .. } => {
                out.push(J::Str(value.as_string().map(|s| s.to_string()).unwrap_or_default()));
                true
            }
            Expr::RefDot { refr, field, .. } if walk(refr, out, depth + 1) => {
                out.push(J::Str(field.1.as_string().map(|s| s.to_string()).unwrap_or_default()));
                true
            }
            Expr::RefDot { .. } => false,
            Expr::RefBrack { refr, index, .. } => {
                if !walk(refr, out, depth + 1) {
                    return false;
                }
                match index.as_ref() {
                    Expr::String { value, .. } | Expr::RawString { value, .. } => {
                        out.push(J::Str(value.as_string().map(|s| s.to_string()).unwrap_or_default()));
                        true
                    }
                    Expr::Number { span, .. } => {
                        out.push(J::Num(span.text().to_string()));
                        true
                    }
                    Expr::Bool { value, .. } => {
                        out.push(J::Bool(value == &regorus::Value::from(true)));
                        true
                    }
                    _ => false,
                }
            }
            _ => false,
        }
    }
    let mut out = Vec::new();
    walk(e, &mut out, 0);
    out
}

/// A rule's path from the root (without `data`), as OPA's chain names it.
fn rule_path(package: &[J], rule: &Rule) -> Vec<J> {
    let refr = match rule {
        Rule::Spec { head, .. } => match head {
            RuleHead::Compr { refr, .. } | RuleHead::Set { refr, .. } | RuleHead::Func { refr, .. } => refr,
        },
        Rule::Default { refr, .. } => refr,
    };
    let mut path = package.to_vec();
    path.extend(ground_prefix(refr));
    path
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Which {
    Rule,
    Chain,
}

/// Every `rego.metadata.rule()` and `rego.metadata.chain()` call in a
/// rule: its byte range, which, and whether it is in an `else` branch.
fn rule_calls(rule: &Rule, out: &mut Vec<(usize, usize, Which, bool)>) {
    match rule {
        Rule::Spec { head, bodies, .. } => {
            match head {
                RuleHead::Compr { refr, assign, .. } => {
                    expr_calls(refr, false, out, 0);
                    if let Some(a) = assign {
                        expr_calls(&a.value, false, out, 0);
                    }
                }
                RuleHead::Set { refr, key, .. } => {
                    expr_calls(refr, false, out, 0);
                    if let Some(k) = key {
                        expr_calls(k, false, out, 0);
                    }
                }
                RuleHead::Func { refr, args, assign, .. } => {
                    expr_calls(refr, false, out, 0);
                    for a in args {
                        expr_calls(a, false, out, 0);
                    }
                    if let Some(a) = assign {
                        expr_calls(&a.value, false, out, 0);
                    }
                }
            }
            let mut in_else = false;
            for body in bodies {
                in_else |= body.is_else;
                if let Some(a) = &body.assign {
                    expr_calls(&a.value, in_else, out, 0);
                }
                query_calls(&body.query, in_else, out, 0);
            }
        }
        Rule::Default { value, .. } => expr_calls(value, false, out, 0),
    }
}

fn query_calls(q: &Query, in_else: bool, out: &mut Vec<(usize, usize, Which, bool)>, depth: usize) {
    if depth > MAX_DEPTH {
        return;
    }
    for stmt in &q.stmts {
        match &stmt.literal {
            Literal::SomeVars { .. } => {}
            Literal::SomeIn {
                key, value, collection, ..
            } => {
                if let Some(k) = key {
                    expr_calls(k, in_else, out, depth + 1);
                }
                expr_calls(value, in_else, out, depth + 1);
                expr_calls(collection, in_else, out, depth + 1);
            }
            Literal::Expr { expr, .. } | Literal::NotExpr { expr, .. } => expr_calls(expr, in_else, out, depth + 1),
            Literal::Every { domain, query, .. } => {
                expr_calls(domain, in_else, out, depth + 1);
                query_calls(query, in_else, out, depth + 1);
            }
        }
        for w in &stmt.with_mods {
            expr_calls(&w.refr, in_else, out, depth + 1);
            expr_calls(&w.r#as, in_else, out, depth + 1);
        }
    }
}

/// The dotted name a call's function is written as (`rego.metadata.rule`).
fn call_name(e: &Expr) -> Option<String> {
    match e {
        Expr::Var { span, .. } => Some(span.text().to_string()),
        Expr::RefDot { refr, field, .. } => Some(format!("{}.{}", call_name(refr)?, field.0.text())),
        _ => None,
    }
}

fn expr_calls(e: &Expr, in_else: bool, out: &mut Vec<(usize, usize, Which, bool)>, depth: usize) {
    if depth > MAX_DEPTH {
        return;
    }
    let d = depth + 1;
    match e {
        Expr::String { .. }
        | Expr::RawString { .. }
        | Expr::Number { .. }
        | Expr::Bool { .. }
        | Expr::Null { .. }
        | Expr::Var { .. } => {}
        Expr::Array { items, .. } | Expr::Set { items, .. } => {
            for i in items {
                expr_calls(i, in_else, out, d);
            }
        }
        Expr::Object { fields, .. } => {
            for (_, k, v) in fields {
                expr_calls(k, in_else, out, d);
                expr_calls(v, in_else, out, d);
            }
        }
        Expr::ArrayCompr { term, query, .. } | Expr::SetCompr { term, query, .. } => {
            expr_calls(term, in_else, out, d);
            query_calls(query, in_else, out, d);
        }
        Expr::ObjectCompr { key, value, query, .. } => {
            expr_calls(key, in_else, out, d);
            expr_calls(value, in_else, out, d);
            query_calls(query, in_else, out, d);
        }
        Expr::Call { span, fcn, params, .. } => {
            let which = match call_name(fcn).as_deref() {
                Some("rego.metadata.rule") => Some(Which::Rule),
                Some("rego.metadata.chain") => Some(Which::Chain),
                _ => None,
            };
            match which {
                Some(w) if params.is_empty() => out.push((span.start as usize, span.end as usize, w, in_else)),
                _ => {
                    for p in params {
                        expr_calls(p, in_else, out, d);
                    }
                }
            }
        }
        Expr::UnaryExpr { expr, .. } => expr_calls(expr, in_else, out, d),
        Expr::RefDot { refr, .. } => expr_calls(refr, in_else, out, d),
        Expr::RefBrack { refr, index, .. } => {
            expr_calls(refr, in_else, out, d);
            expr_calls(index, in_else, out, d);
        }
        Expr::BinExpr { lhs, rhs, .. }
        | Expr::BoolExpr { lhs, rhs, .. }
        | Expr::ArithExpr { lhs, rhs, .. }
        | Expr::AssignExpr { lhs, rhs, .. } => {
            expr_calls(lhs, in_else, out, d);
            expr_calls(rhs, in_else, out, d);
        }
        Expr::Membership {
            key, value, collection, ..
        } => {
            if let Some(k) = key {
                expr_calls(k, in_else, out, d);
            }
            expr_calls(value, in_else, out, d);
            expr_calls(collection, in_else, out, d);
        }
        #[allow(unreachable_patterns)]
        _ => {}
    }
}

/// One `# METADATA` block: the line of its first comment, its last line,
/// its YAML text.
#[derive(Debug)]
struct Block {
    line: u32,
    last_line: u32,
    yaml: String,
}

/// The lines of the module's `# METADATA` blocks that give `schemas`: OPA
/// checks the types of `input` and `data` against them when it compiles a
/// bundle that reads its annotations; Warden does not (an upload notice).
pub(super) fn schema_annotation_lines(source: &str) -> Vec<u32> {
    if !source.contains("METADATA") {
        return Vec::new();
    }
    blocks(source)
        .into_iter()
        .filter(|b| matches!(yaml(&b.yaml), Ok(J::Obj(ref o)) if o.contains_key("schemas")))
        .map(|b| b.line)
        .collect()
}

/// The `# METADATA` blocks of a module, as OPA groups comments: full-line
/// comments on consecutive lines, a block starting at each that reads
/// `METADATA` (spaces aside) and running to the next or the last comment.
fn blocks(source: &str) -> Vec<Block> {
    let comments = full_line_comments(source);
    let mut out: Vec<Block> = Vec::new();
    let mut open = false;
    let mut prev_line = 0;
    for (line, text) in comments {
        if line != prev_line + 1 {
            open = false;
        }
        prev_line = line;
        if text.trim() == "METADATA" {
            out.push(Block {
                line,
                last_line: line,
                yaml: String::new(),
            });
            open = true;
        } else if open && let Some(b) = out.last_mut() {
            b.yaml.push_str(text);
            b.yaml.push('\n');
            b.last_line = line;
        }
    }
    out
}

/// Each comment that is alone on its line (outside strings): its line
/// (1-based) and the text after `#`.
fn full_line_comments(source: &str) -> Vec<(u32, &str)> {
    let bytes = source.as_bytes();
    let mut out = Vec::new();
    let mut line = 1u32;
    let mut line_blank = true;
    let mut i = 0;
    while i < bytes.len() {
        match bytes[i] {
            b'\n' => {
                line += 1;
                line_blank = true;
                i += 1;
            }
            b'#' => {
                let end = super::rego_scan::comment_end(bytes, i);
                if line_blank {
                    out.push((line, source[i + 1..end].trim_end_matches('\r')));
                }
                i = end;
            }
            b'"' | b'`' => {
                line_blank = false;
                let end = super::rego_scan::string_end(bytes, i).unwrap_or(bytes.len());
                line += bytes[i..end].iter().filter(|b| **b == b'\n').count() as u32;
                i = end;
            }
            b' ' | b'\t' | b'\r' => i += 1,
            _ => {
                line_blank = false;
                i += 1;
            }
        }
    }
    out
}

/// A block's annotations as OPA's annotation object, and its scope.
/// `next` is what follows the block: `(is_rule, is_package)`, or nothing.
fn annotation(block: &Block, next: Option<(bool, bool)>) -> Result<(J, Scope), String> {
    let doc = yaml(&block.yaml)?;
    let fields = match doc {
        J::Obj(m) => m,
        J::Null => BTreeMap::new(),
        _ => return Err("yaml: unmarshal errors: annotations must be a map".into()),
    };
    let string = |key: &str| -> Result<Option<String>, String> {
        match fields.get(key) {
            None | Some(J::Null) => Ok(None),
            Some(J::Str(s)) => Ok(Some(s.clone())),
            Some(_) => Err(format!("json: cannot unmarshal into field {key} of type string")),
        }
    };
    let list = |key: &str| -> Result<Vec<J>, String> {
        match fields.get(key) {
            None | Some(J::Null) => Ok(Vec::new()),
            Some(J::Arr(a)) => Ok(a.clone()),
            Some(_) => Err(format!("json: cannot unmarshal into field {key} of type array")),
        }
    };
    let mut out = BTreeMap::new();
    let entrypoint = match fields.get("entrypoint") {
        None | Some(J::Null) => false,
        Some(J::Bool(b)) => *b,
        Some(_) => return Err("json: cannot unmarshal into field entrypoint of type bool".into()),
    };
    let written = string("scope")?;
    let scope = match (written.as_deref(), next) {
        (Some("rule"), _) => Scope::Rule,
        (Some("document"), _) => Scope::Document,
        (Some("package"), _) => Scope::Package,
        (Some("subpackages"), _) => Scope::Subpackages,
        (None, Some((true, _))) if entrypoint => Scope::Document,
        (None, Some((true, _))) => Scope::Rule,
        (None, Some((_, true))) => Scope::Package,
        (other, next) => {
            let shown = match (other, next) {
                (Some(s), _) => s.to_string(),
                (None, Some(_)) => "import".to_string(),
                (None, None) => String::new(),
            };
            return Err(format!(
                "invalid annotation scope '{shown}'. Use one of 'rule', 'document', 'package', or 'subpackages'"
            ));
        }
    };
    match (scope, next) {
        (Scope::Rule | Scope::Document, Some((true, _))) | (Scope::Package | Scope::Subpackages, Some((_, true))) => {}
        (Scope::Rule | Scope::Document, _) => {
            let name = if scope == Scope::Rule { "rule" } else { "document" };
            return Err(format!(
                "annotation scope '{name}' must be applied to rule (have package)"
            ));
        }
        (_, _) => {
            let name = if scope == Scope::Package {
                "package"
            } else {
                "subpackages"
            };
            return Err(format!(
                "annotation scope '{name}' must be applied to package (have rule)"
            ));
        }
    }
    let name = match scope {
        Scope::Rule => "rule",
        Scope::Document => "document",
        Scope::Package => "package",
        Scope::Subpackages => "subpackages",
    };
    out.insert("scope".into(), J::Str(name.into()));
    for key in ["title", "description"] {
        if let Some(s) = string(key)?
            && !s.is_empty()
        {
            out.insert(key.into(), J::Str(s));
        }
    }
    if entrypoint {
        out.insert("entrypoint".into(), J::Bool(true));
    }
    let organizations = list("organizations")?;
    if organizations.iter().any(|o| !matches!(o, J::Str(_))) {
        return Err("json: cannot unmarshal into field organizations of type string".into());
    }
    if !organizations.is_empty() {
        out.insert("organizations".into(), J::Arr(organizations));
    }
    let mut authors = Vec::new();
    for a in list("authors")? {
        authors.push(author(&a)?);
    }
    if !authors.is_empty() {
        out.insert("authors".into(), J::Arr(authors));
    }
    let mut resources = Vec::new();
    for r in list("related_resources")? {
        resources.push(related_resource(&r)?);
    }
    if !resources.is_empty() {
        out.insert("related_resources".into(), J::Arr(resources));
    }
    let mut schemas = Vec::new();
    for s in list("schemas")? {
        let J::Obj(m) = s else {
            return Err("invalid schema annotation: expected a map".into());
        };
        for (k, v) in m {
            let mut entry = BTreeMap::new();
            entry.insert("path".to_string(), J::Arr(dotted(&k)));
            match v {
                J::Str(s) => entry.insert("schema".to_string(), J::Arr(dotted(&s))),
                other => entry.insert("definition".to_string(), other),
            };
            schemas.push(J::Obj(entry));
        }
    }
    if !schemas.is_empty() {
        out.insert("schemas".into(), J::Arr(schemas));
    }
    match fields.get("custom") {
        None | Some(J::Null) => {}
        Some(J::Obj(m)) if m.is_empty() => {}
        Some(c @ J::Obj(_)) => {
            out.insert("custom".into(), c.clone());
        }
        Some(_) => return Err("json: cannot unmarshal into field custom of type map".into()),
    }
    Ok((J::Obj(out), scope))
}

/// `input.x.y` as the path `["input", "x", "y"]`.
fn dotted(s: &str) -> Vec<J> {
    s.split('.').map(|p| J::Str(p.to_string())).collect()
}

/// An author as OPA reads one: `Name <email>`, `Name`, `<email>`, or a
/// map with `name` and `email`.
fn author(a: &J) -> Result<J, String> {
    let mut m = BTreeMap::new();
    match a {
        J::Str(s) => {
            let s = s.trim();
            if s.is_empty() {
                return Err("author is an empty string".into());
            }
            match (s.ends_with('>'), s.rfind('<')) {
                (true, Some(i)) => {
                    let email = s[i + 1..s.len() - 1].trim();
                    let name = s[..i].trim();
                    if !name.is_empty() {
                        m.insert("name".into(), J::Str(name.into()));
                    }
                    if !email.is_empty() {
                        m.insert("email".into(), J::Str(email.into()));
                    }
                }
                _ => {
                    m.insert("name".into(), J::Str(s.into()));
                }
            }
        }
        J::Obj(o) => {
            for key in ["name", "email"] {
                match o.get(key) {
                    Some(J::Str(s)) if !s.is_empty() => {
                        m.insert(key.into(), J::Str(s.clone()));
                    }
                    None | Some(J::Str(_)) => {}
                    Some(_) => return Err(format!("invalid author {key}")),
                }
            }
            if m.is_empty() {
                return Err("author must have either a name or an email".into());
            }
        }
        _ => return Err("invalid author: expected a string or a map".into()),
    }
    Ok(J::Obj(m))
}

/// A related resource as OPA reads one: a URL, or a map with `ref` and
/// `description`.
fn related_resource(r: &J) -> Result<J, String> {
    // The reference is a URL, kept as Go's `url.Parse` and `String()`
    // write it back (`not a url` is `not%20a%20url`).
    let url = |s: &str, shown: &str| {
        super::builtins::uri::go_parse(s)
            .map(|u| J::Str(u.to_go_string()))
            .map_err(|e| format!("invalid related-resource definition {shown}: {e}"))
    };
    let mut m = BTreeMap::new();
    match r {
        J::Str(s) => {
            m.insert("ref".into(), url(s.trim(), s.trim())?);
        }
        J::Obj(o) => {
            match o.get("ref") {
                Some(J::Str(s)) if !s.is_empty() => {
                    // Shown as Go prints the map: `map[description:… ref:…]`.
                    let shown: Vec<String> = o
                        .iter()
                        .map(|(k, v)| match v {
                            J::Str(v) => format!("{k}:{v}"),
                            other => {
                                let mut text = String::new();
                                other.render(&mut text);
                                format!("{k}:{text}")
                            }
                        })
                        .collect();
                    m.insert("ref".into(), url(s, &format!("map[{}]", shown.join(" ")))?)
                }
                _ => return Err("'ref' value required in object".into()),
            };
            if let Some(J::Str(d)) = o.get("description")
                && !d.is_empty()
            {
                m.insert("description".into(), J::Str(d.clone()));
            }
        }
        _ => return Err("invalid related-resource: expected a string or a map".into()),
    }
    Ok(J::Obj(m))
}

// ---------------------------------------------------------------------------
// YAML, as OPA's annotation reader resolves it
// ---------------------------------------------------------------------------

use saphyr_parser::{ScalarStyle, Tag};

use super::builtins::sprintf::go_float;
use super::builtins::yaml::{Dialect, first_document, is_yaml_float};

/// The first YAML document of the text, as JSON.
fn yaml(text: &str) -> Result<J, String> {
    first_document::<V3>(text).map_err(|e| format!("yaml: {e}"))
}

/// Go's `yaml.v3`, as OPA reads annotations with it.
struct V3;

impl Dialect for V3 {
    type Node = J;
    const MAX_DEPTH: usize = MAX_DEPTH;
    const MAX_NODES: usize = MAX_NODES;

    fn null() -> J {
        J::Null
    }

    fn scalar(text: &str, style: ScalarStyle, tag: Option<&Tag>) -> Result<J, String> {
        scalar(text, style, tag)
    }

    fn sequence(items: Vec<J>) -> J {
        J::Arr(items)
    }

    /// Keys must be strings to become JSON, as OPA requires.
    fn mapping(entries: Vec<(bool, J, J)>) -> Result<J, String> {
        let mut map = BTreeMap::new();
        for (_, key, value) in entries {
            let J::Str(key) = key else {
                return Err("invalid map key type(s)".into());
            };
            map.insert(key, value);
        }
        Ok(J::Obj(map))
    }
}

/// A scalar as `yaml.v3` decodes it and OPA turns it into a value.
fn scalar(text: &str, style: ScalarStyle, tag: Option<&Tag>) -> Result<J, String> {
    let core = tag
        .filter(|t| t.handle == "tag:yaml.org,2002:" || t.handle == "!!")
        .map(|t| t.suffix.as_str());
    if core == Some("str") || (tag.is_none() && style != ScalarStyle::Plain) {
        return Ok(J::Str(text.to_string()));
    }
    if tag.is_some() && core.is_none() {
        return Ok(J::Str(text.to_string()));
    }
    Ok(match text {
        "" | "~" | "null" | "Null" | "NULL" => J::Null,
        "true" | "True" | "TRUE" => J::Bool(true),
        "false" | "False" | "FALSE" => J::Bool(false),
        ".nan" | ".NaN" | ".NAN" | ".inf" | ".Inf" | ".INF" | "+.inf" | "+.Inf" | "+.INF" | "-.inf" | "-.Inf"
        | "-.INF" => return Err(format!("{text} is not a JSON number")),
        _ => match text.as_bytes()[0] {
            b'0'..=b'9' | b'+' | b'-' | b'.' => {
                if let Some(t) = timestamp(text) {
                    J::Str(t)
                } else {
                    number(text).unwrap_or_else(|| J::Str(text.to_string()))
                }
            }
            _ => J::Str(text.to_string()),
        },
    })
}

/// An integer (Go's `ParseInt` with base prefixes, `_` ignored; above
/// 2^63 - 1 as Go wraps a `uint64`) or a float, printed as OPA prints it.
fn number(text: &str) -> Option<J> {
    let plain = text.replace('_', "");
    if let Some(i) = go_int(&plain) {
        return Some(J::Num(i));
    }
    if is_yaml_float(&plain) {
        let f: f64 = plain.parse().ok()?;
        if !f.is_finite() {
            return None;
        }
        return Some(J::Num(go_float(f, 'g', None)));
    }
    None
}

/// Go's `strconv.ParseInt(s, 0, 64)`, then `ParseUint` (wrapped to 64
/// signed bits), as decimal text.
fn go_int(s: &str) -> Option<String> {
    let (negative, digits) = match s.as_bytes().first()? {
        b'-' => (true, &s[1..]),
        b'+' => (false, &s[1..]),
        _ => (false, s),
    };
    let lower = digits.to_ascii_lowercase();
    let (radix, body) = if let Some(r) = lower.strip_prefix("0x") {
        (16, r)
    } else if let Some(r) = lower.strip_prefix("0o") {
        (8, r)
    } else if let Some(r) = lower.strip_prefix("0b") {
        (2, r)
    } else if lower.len() > 1 && lower.starts_with('0') {
        (8, &lower[1..])
    } else {
        (10, lower.as_str())
    };
    if body.is_empty() || !body.chars().all(|c| c.is_digit(radix)) {
        return None;
    }
    let magnitude = u128::from_str_radix(body, radix).ok()?;
    if negative {
        return (magnitude <= 1u128 << 63).then(|| (-(magnitude as i128)).to_string());
    }
    if magnitude <= i64::MAX as u128 {
        Some(magnitude.to_string())
    } else if magnitude <= u64::MAX as u128 {
        // A uint64 that OPA converts to int64.
        Some((magnitude as u64 as i64).to_string())
    } else {
        None
    }
}

/// A YAML timestamp (`2001-12-14`, `2001-12-14T21:59:43.10-05:00`) as
/// the RFC 3339 text Go's JSON writes for it.
fn timestamp(s: &str) -> Option<String> {
    let b = s.as_bytes();
    if b.len() < 8 || !b[..4].iter().all(u8::is_ascii_digit) || b[4] != b'-' {
        return None;
    }
    let num = |t: &str, max_len: usize| -> Option<u32> {
        (!t.is_empty() && t.len() <= max_len && t.bytes().all(|c| c.is_ascii_digit()))
            .then(|| t.parse().ok())
            .flatten()
    };
    let (date, rest) = match s.find(['T', 't', ' ']) {
        Some(i) => (&s[..i], Some(&s[i + 1..])),
        None => (s, None),
    };
    let mut parts = date.split('-');
    let year = num(parts.next()?, 4)?;
    let month = num(parts.next()?, 2)?;
    let day = num(parts.next()?, 2)?;
    if parts.next().is_some() || !(1..=12).contains(&month) || day < 1 || day > days_in_month(year, month) {
        return None;
    }
    let date = format!("{year:04}-{month:02}-{day:02}");
    let Some(rest) = rest else {
        return Some(format!("{date}T00:00:00Z"));
    };
    // Time, then `Z` or an offset (`T` form), or nothing (UTC).
    let (time, zone) = match rest.find(['Z', '+', '-']) {
        Some(i) => (&rest[..i], &rest[i..]),
        None => (rest, ""),
    };
    let (hms, frac) = match time.split_once('.') {
        Some((h, f)) => (h, Some(f)),
        None => (time, None),
    };
    let mut t = hms.split(':');
    let h = num(t.next()?, 2)?;
    let m = num(t.next()?, 2)?;
    let sec = num(t.next()?, 2)?;
    if t.next().is_some() || h > 23 || m > 59 || sec > 59 {
        return None;
    }
    let frac = match frac {
        Some(f) if f.is_empty() || f.len() > 9 || !f.bytes().all(|c| c.is_ascii_digit()) => return None,
        Some(f) => {
            let f = f.trim_end_matches('0');
            if f.is_empty() { String::new() } else { format!(".{f}") }
        }
        None => String::new(),
    };
    let zone = match zone {
        "" | "Z" => "Z".to_string(),
        z => {
            let (hh, mm) = z[1..].split_once(':')?;
            let (hh, mm) = (num(hh, 2)?, num(mm, 2)?);
            if hh == 0 && mm == 0 {
                "Z".to_string()
            } else {
                format!("{}{hh:02}:{mm:02}", &z[..1])
            }
        }
    };
    Some(format!("{date}T{h:02}:{m:02}:{sec:02}{frac}{zone}"))
}

fn days_in_month(year: u32, month: u32) -> u32 {
    match month {
        2 if (year.is_multiple_of(4) && !year.is_multiple_of(100)) || year.is_multiple_of(400) => 29,
        2 => 28,
        4 | 6 | 9 | 11 => 30,
        _ => 31,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn one(source: &str) -> String {
        inline(&[("a.rego", source)], true).expect("inline").remove(0)
    }

    #[test]
    fn rule_annotations_replace_the_call_as_opa_answers() {
        let src = "package p\n\n# METADATA\n# title: Annotated rule\n# custom:\n#   severity: high\nannotated := rego.metadata.rule()\n\nbare := rego.metadata.rule()\n";
        let out = one(src);
        assert!(
            out.contains(
                r#"annotated := {"custom": {"severity": "high"}, "scope": "rule", "title": "Annotated rule"}"#
            )
        );
        assert!(out.contains("bare := {}\n"));
        assert_eq!(out.lines().count(), src.lines().count());
    }

    #[test]
    fn the_chain_runs_from_the_rule_to_the_root() {
        let a = "# METADATA\n# scope: subpackages\n# title: root sub\npackage x\n";
        let b = "# METADATA\n# title: pkg y\npackage x.y\n\n# METADATA\n# scope: document\n# title: doc t\n\n# METADATA\n# title: t2\nt := rego.metadata.chain()\n\ne := 1 if false\nelse := rego.metadata.chain()\n";
        let out = inline(&[("a.rego", a), ("b.rego", b)], true).expect("inline");
        assert!(out[1].contains(
            r#"t := [{"annotations": {"scope": "rule", "title": "t2"}, "path": ["x", "y", "t"]}, {"annotations": {"scope": "document", "title": "doc t"}, "path": ["x", "y", "t"]}, {"annotations": {"scope": "package", "title": "pkg y"}, "path": ["x", "y"]}, {"annotations": {"scope": "subpackages", "title": "root sub"}, "path": ["x"]}]"#
        ));
        assert!(out[1].contains(r#"else := [{"path": ["x", "y", "e"]}, {"annotations": {"scope": "package""#));
    }

    #[test]
    fn yaml_scalars_resolve_as_opa_reads_them() {
        let y = yaml("a: yes\nb: True\nd: 0x1F\nf: 017\nh: 1_000\nk: 1e3\nl: 2001-12-14\no: 18446744073709551615\np: 18446744073709551616\nq: -9223372036854775809\nx: 12e\ny: -0\n").unwrap();
        let mut s = String::new();
        y.render(&mut s);
        assert_eq!(
            s,
            r#"{"a": "yes", "b": true, "d": 31, "f": 15, "h": 1000, "k": 1000, "l": "2001-12-14T00:00:00Z", "o": -1, "p": 1.8446744073709552e+19, "q": -9.223372036854776e+18, "x": "12e", "y": 0}"#
        );
    }

    #[test]
    fn misplaced_annotations_are_refused_as_opa_refuses_them() {
        let err = inline(
            &[(
                "a.rego",
                "package p\n\n# METADATA\n# title: imp\nimport rego.v1\n\nr := rego.metadata.rule()\n",
            )],
            true,
        )
        .unwrap_err();
        assert_eq!(
            err,
            "a.rego:3: rego_parse_error: invalid annotation scope 'import'. Use one of 'rule', 'document', 'package', or 'subpackages'"
        );
    }

    #[test]
    fn a_second_package_annotation_is_refused_as_opa_refuses_it() {
        let a = "# METADATA\n# title: A\npackage p\n\nr := rego.metadata.chain()\n";
        let b = "# METADATA\n# title: B\npackage p\n";
        let err = inline(&[("b.rego", b), ("a.rego", a)], true).unwrap_err();
        assert_eq!(
            err,
            "b.rego:1: rego_type_error: package annotation redeclared: a.rego:1"
        );
    }

    #[test]
    fn authors_and_resources_take_opa_s_shapes() {
        let out = one(
            "package p\n\n# METADATA\n# authors:\n# - John Doe <john@example.com>\n# - <a@b.c>\n# related_resources:\n# - https://example.com\nq := rego.metadata.rule()\n",
        );
        assert!(out.contains(r#"{"authors": [{"email": "john@example.com", "name": "John Doe"}, {"email": "a@b.c"}], "related_resources": [{"ref": "https://example.com"}], "scope": "rule"}"#));
    }

    /// A reference that is not a URL is refused, in OPA's words (real OPA
    /// v1.20's answers).
    #[test]
    fn a_related_resource_that_is_no_url_is_refused_as_opa_refuses_it() {
        for (resource, why) in [
            (
                "- \"%zz\"",
                "p.rego:3: rego_parse_error: invalid related-resource definition %zz: parse \"%zz\": invalid URL escape \"%zz\"",
            ),
            (
                "- ref: \"%zz\"\n#   description: d",
                "p.rego:3: rego_parse_error: invalid related-resource definition map[description:d ref:%zz]: parse \"%zz\": \
                 invalid URL escape \"%zz\"",
            ),
        ] {
            let src =
                format!("package p\n\n# METADATA\n# related_resources:\n# {resource}\nq := rego.metadata.rule()\n");
            assert_eq!(inline(&[("p.rego", &src)], true), Err(why.to_string()), "{resource}");
        }
    }
}
