//! OPA's check that no rule depends on itself, made when a bundle is
//! uploaded.
//!
//! OPA refuses a module in which a rule depends, through any chain of
//! references, calls, negations, comprehensions or `else` branches, on
//! itself (`rego_recursion_error`), whether or not anything evaluates it.
//! regorus notices recursion only while evaluating, so Warden activated
//! bundles OPA refuses, and a decision failed where OPA never served the
//! policy at all. The same graph OPA builds is built here from the parsed
//! modules: a rule depends on every rule its references could name.
//!
//! - `data.a.b…` names the rules at that path, below it, and above it (a
//!   reference to a package, or past a rule into its value); a dynamic key
//!   (`data.a[k]`) ends the static part.
//! - A name that is not a local variable names a rule of the module's
//!   package, or what an import names.
//! - `with` targets count as references, as their values do (OPA
//!   refuses `a if { b with data.p.a as 1 }` in package `p`).
//!
//! Locals are taken broadly (anything declared with `:=`, `some` or
//! `every`, and function arguments, anywhere in the rule), so a doubt
//! leaves a dependency out: the check may miss a recursion OPA reports,
//! never report one OPA does not.

use std::collections::{BTreeMap, HashMap, HashSet, VecDeque};

use regorus::unstable::{AssignOp, Expr, Literal, LiteralStmt, Module, Query, Rule, RuleHead};

/// A rule (all its definitions): its path under `data` and where it is
/// first defined.
struct Node {
    path: Vec<String>,
    file: String,
    line: u32,
    /// Known only by a `default` so far (OPA names a rule's other
    /// definitions first).
    by_default: bool,
}

/// The first rule that depends on itself, as OPA reports it:
/// `p.rego:3: rego_recursion_error: rule data.p.a is recursive: data.p.a ->
/// data.p.b -> data.p.a`, among a bundle's parsed modules (file, module).
/// None when there is none.
pub fn first_recursion(parsed: &[(&str, Module)]) -> Option<String> {
    let mut modules = Vec::new();
    for (file, module) in parsed {
        modules.push((*file, package_path(module)?, module));
    }
    let mut nodes: Vec<Node> = Vec::new();
    let mut index: BTreeMap<Vec<String>, usize> = BTreeMap::new();
    for (file, package, module) in &modules {
        for rule in &module.policy {
            let path = [package.clone(), rule_path(rule)].concat();
            let by_default = matches!(rule.as_ref(), Rule::Default { .. });
            match index.get(&path) {
                Some(&i) if nodes[i].by_default && !by_default => {
                    nodes[i].file = file.to_string();
                    nodes[i].line = rule.span().line;
                    nodes[i].by_default = false;
                }
                Some(_) => {}
                None => {
                    index.insert(path.clone(), nodes.len());
                    nodes.push(Node {
                        path,
                        file: file.to_string(),
                        line: rule.span().line,
                        by_default,
                    });
                }
            }
        }
    }
    let mut edges: Vec<HashSet<usize>> = vec![HashSet::new(); nodes.len()];
    for (_, package, module) in &modules {
        let imports = imports_of(module);
        for rule in &module.policy {
            let from = index[&[package.clone(), rule_path(rule)].concat()];
            let mut refs = Refs::default();
            refs.rule(rule);
            for (head, parts) in refs.found {
                if head == "input" || head == "_" || refs.locals.contains(&head) {
                    continue;
                }
                let target: Vec<String> = if head == "data" {
                    std::iter::once(head).chain(parts).collect()
                } else if let Some(path) = imports.get(&head) {
                    path.iter().cloned().chain(parts).collect()
                } else {
                    package
                        .iter()
                        .cloned()
                        .chain(std::iter::once(head))
                        .chain(parts)
                        .collect()
                };
                // Rules at or below the path (a range of the sorted
                // index), then rules above it (one lookup per prefix).
                for (_, &to) in index
                    .range(target.clone()..)
                    .take_while(|(p, _)| p.starts_with(&target))
                {
                    edges[from].insert(to);
                }
                for n in 1..target.len() {
                    if let Some(&to) = index.get(&target[..n]) {
                        edges[from].insert(to);
                    }
                }
            }
        }
    }
    // In the order the rules are written, the first on a cycle: a rule in
    // a strongly connected component of more than one, or depending on
    // itself.
    let component = components(&edges);
    let mut size = vec![0usize; nodes.len()];
    for &c in &component {
        size[c] += 1;
    }
    let mut order: Vec<usize> = (0..nodes.len())
        .filter(|&i| size[component[i]] > 1 || edges[i].contains(&i))
        .collect();
    order.sort_by(|&a, &b| (&nodes[a].file, nodes[a].line).cmp(&(&nodes[b].file, nodes[b].line)));
    for start in order {
        if let Some(cycle) = shortest_cycle(&edges, start) {
            let names: Vec<String> = cycle.iter().map(|&i| nodes[i].path.join(".")).collect();
            let n = &nodes[start];
            return Some(format!(
                "{}:{}: rego_recursion_error: rule {} is recursive: {} (OPA refuses this module too)",
                n.file,
                n.line,
                n.path.join("."),
                names.join(" -> ")
            ));
        }
    }
    None
}

/// Each node's strongly connected component (Kosaraju, without recursion:
/// a bundle's rules may chain deeper than a thread's stack).
fn components(edges: &[HashSet<usize>]) -> Vec<usize> {
    let n = edges.len();
    // Nodes by the time their depth-first visit finished.
    let mut finished = Vec::with_capacity(n);
    let mut seen = vec![false; n];
    for root in 0..n {
        if seen[root] {
            continue;
        }
        seen[root] = true;
        let mut stack: Vec<(usize, Vec<usize>)> = vec![(root, edges[root].iter().copied().collect())];
        while let Some((node, next)) = stack.last_mut() {
            match next.pop() {
                Some(to) if !seen[to] => {
                    seen[to] = true;
                    let onward = edges[to].iter().copied().collect();
                    stack.push((to, onward));
                }
                Some(_) => {}
                None => {
                    finished.push(*node);
                    stack.pop();
                }
            }
        }
    }
    let mut reverse: Vec<Vec<usize>> = vec![Vec::new(); n];
    for (from, tos) in edges.iter().enumerate() {
        for &to in tos {
            reverse[to].push(from);
        }
    }
    let mut component = vec![usize::MAX; n];
    for &root in finished.iter().rev() {
        if component[root] != usize::MAX {
            continue;
        }
        component[root] = root;
        let mut stack = vec![root];
        while let Some(node) = stack.pop() {
            for &from in &reverse[node] {
                if component[from] == usize::MAX {
                    component[from] = root;
                    stack.push(from);
                }
            }
        }
    }
    component
}

/// The shortest path from `start` back to itself, both ends included.
fn shortest_cycle(edges: &[HashSet<usize>], start: usize) -> Option<Vec<usize>> {
    let mut came_from: HashMap<usize, usize> = HashMap::new();
    let mut queue = VecDeque::from([start]);
    while let Some(at) = queue.pop_front() {
        let mut next: Vec<usize> = edges[at].iter().copied().collect();
        next.sort_unstable();
        for to in next {
            if to == start {
                // Back from `at` to `start`, then the way the dependencies run.
                let mut path = vec![at];
                let mut cur = at;
                while cur != start {
                    cur = came_from[&cur];
                    path.push(cur);
                }
                path.reverse();
                path.push(start);
                return Some(path);
            }
            if let std::collections::hash_map::Entry::Vacant(e) = came_from.entry(to) {
                e.insert(at);
                queue.push_back(to);
            }
        }
    }
    None
}

/// `data` and the package's keys: `["data", "a", "b"]` for `package a.b`.
pub(super) fn package_path(module: &Module) -> Option<Vec<String>> {
    let (head, parts, _) = chain(&module.package.refr)?;
    let mut path = vec!["data".to_string()];
    if head != "data" {
        path.push(head);
    }
    path.extend(parts);
    Some(path)
}

/// What each import's name stands for (only imports of `data`).
pub(super) fn imports_of(module: &Module) -> HashMap<String, Vec<String>> {
    let mut out = HashMap::new();
    for import in &module.imports {
        let Some((head, parts, dynamic)) = chain(&import.refr) else {
            continue;
        };
        if head != "data" || dynamic || parts.is_empty() {
            continue;
        }
        let name = match &import.r#as {
            Some(alias) => alias.text().to_string(),
            None => parts.last().cloned().unwrap_or_default(),
        };
        out.insert(name, std::iter::once(head).chain(parts).collect());
    }
    out
}

/// The static part of a rule's head, relative to its package (`a.b` of
/// `a.b[x] contains …`; the name of a function): never empty.
/// Every rule's first path step under its package (`data.p.x` for
/// `x.y := 1` in `package p`), over all modules; None when a package does
/// not read.
pub(super) fn rule_heads(parsed: &[(&str, Module)]) -> Option<HashSet<Vec<String>>> {
    let mut out = HashSet::new();
    for (_, module) in parsed {
        let package = package_path(module)?;
        for rule in &module.policy {
            out.insert([package.clone(), rule_path(rule).into_iter().take(1).collect()].concat());
        }
    }
    Some(out)
}

pub(super) fn rule_path(rule: &Rule) -> Vec<String> {
    let refr = match rule {
        Rule::Spec {
            head: RuleHead::Compr { refr, .. } | RuleHead::Set { refr, .. } | RuleHead::Func { refr, .. },
            ..
        }
        | Rule::Default { refr, .. } => refr,
    };
    match chain(refr) {
        Some((head, parts, _)) => std::iter::once(head).chain(parts).collect(),
        None => vec![refr.span().text().to_string()],
    }
}

/// A reference as its head name, its static keys, and whether a dynamic
/// key follows them. None for anything else.
pub(super) fn chain(e: &Expr) -> Option<(String, Vec<String>, bool)> {
    match e {
        Expr::Var { span, .. } => Some((span.text().to_string(), Vec::new(), false)),
        Expr::RefDot { refr, field, .. } => {
            let (head, mut parts, dynamic) = chain(refr)?;
            if !dynamic {
                parts.push(field.0.text().to_string());
            }
            Some((head, parts, dynamic))
        }
        Expr::RefBrack { refr, index, .. } => {
            let (head, mut parts, dynamic) = chain(refr)?;
            if dynamic {
                return Some((head, parts, true));
            }
            match index.as_ref() {
                Expr::String { value, .. } | Expr::RawString { value, .. } => match value.as_string() {
                    Ok(s) => {
                        parts.push(s.to_string());
                        Some((head, parts, false))
                    }
                    Err(_) => Some((head, parts, true)),
                },
                _ => Some((head, parts, true)),
            }
        }
        _ => None,
    }
}

/// The locals of a rule, declared anywhere in it.
pub(super) struct Declared<'m> {
    /// Every name declared as a local (`:=`, `some`, `every`, function
    /// arguments), taken broadly.
    pub locals: HashSet<String>,
    /// Locals declared by `name := value`, with each value.
    pub assigned: HashMap<String, Vec<&'m Expr>>,
    /// Names declared by `some v in c` (or `some k, v in c`, true for the
    /// key), with the collection.
    pub members: HashMap<String, Vec<(&'m Expr, bool)>>,
    /// How many times each name is declared by `some`, `every`, a
    /// function's arguments or a pattern.
    pub declarations: HashMap<String, usize>,
    /// How many times each name stands in a side of `=`.
    pub unifications: HashMap<String, usize>,
    /// Names that are a whole side of `=`, with the other side.
    pub unified_with: HashMap<String, Vec<&'m Expr>>,
    /// Names declared by a bare `some y` (which declares, and binds nothing).
    pub bare_some: HashSet<String>,
}

pub(super) fn declarations(rule: &Rule) -> Declared<'_> {
    let mut refs = Refs::default();
    refs.rule(rule);
    Declared {
        locals: refs.locals,
        assigned: refs.assigned,
        members: refs.members,
        declarations: refs.declarations,
        unifications: refs.unifications,
        unified_with: refs.unified_with,
        bare_some: refs.bare_some,
    }
}

/// The references of one rule (head name and static keys), and the names
/// it declares as locals.
#[derive(Default)]
struct Refs<'m> {
    found: Vec<(String, Vec<String>)>,
    locals: HashSet<String>,
    /// Locals declared by `name := value`: their values.
    assigned: HashMap<String, Vec<&'m Expr>>,
    members: HashMap<String, Vec<(&'m Expr, bool)>>,
    declarations: HashMap<String, usize>,
    unifications: HashMap<String, usize>,
    unified_with: HashMap<String, Vec<&'m Expr>>,
    bare_some: HashSet<String>,
}

impl<'m> Refs<'m> {
    /// A local declared otherwise than by `name := value`.
    fn local(&mut self, name: &str) {
        self.locals.insert(name.to_string());
        *self.declarations.entry(name.to_string()).or_default() += 1;
    }

    fn rule(&mut self, rule: &'m Rule) {
        match rule {
            Rule::Spec { head, bodies, .. } => {
                match head {
                    RuleHead::Compr { assign, .. } => {
                        if let Some(a) = assign {
                            self.expr(&a.value);
                        }
                    }
                    RuleHead::Set { key, .. } => {
                        if let Some(k) = key {
                            self.expr(k);
                        }
                    }
                    RuleHead::Func { args, assign, .. } => {
                        for a in args {
                            self.declare(a);
                        }
                        if let Some(a) = assign {
                            self.expr(&a.value);
                        }
                    }
                }
                for b in bodies {
                    if let Some(a) = &b.assign {
                        self.expr(&a.value);
                    }
                    self.query(&b.query);
                }
            }
            Rule::Default { value, .. } => self.expr(value),
        }
    }

    fn query(&mut self, q: &'m Query) {
        for stmt in &q.stmts {
            self.stmt(stmt);
        }
    }

    fn stmt(&mut self, stmt: &'m LiteralStmt) {
        for w in &stmt.with_mods {
            self.expr(&w.refr);
            self.expr(&w.r#as);
        }
        match &stmt.literal {
            Literal::SomeVars { vars, .. } => {
                for v in vars {
                    self.local(v.text());
                    self.bare_some.insert(v.text().to_string());
                }
            }
            Literal::SomeIn {
                key, value, collection, ..
            } => {
                if let Some(k) = key {
                    if let Expr::Var { span, .. } = k.as_ref() {
                        self.members
                            .entry(span.text().to_string())
                            .or_default()
                            .push((collection, true));
                    }
                    self.declare(k);
                }
                if let Expr::Var { span, .. } = value.as_ref() {
                    self.members
                        .entry(span.text().to_string())
                        .or_default()
                        .push((collection, false));
                }
                self.declare(value);
                self.expr(collection);
            }
            Literal::Expr { expr, .. } | Literal::NotExpr { expr, .. } => self.expr(expr),
            Literal::Every {
                key,
                value,
                domain,
                query,
                ..
            } => {
                if let Some(k) = key {
                    self.local(k.text());
                }
                self.local(value.text());
                self.expr(domain);
                self.query(query);
            }
        }
    }

    /// The names of the pattern `lhs` of `lhs := rhs`: bound to the
    /// matching element where `rhs` is a literal of the same shape,
    /// declared otherwise.
    fn pattern(&mut self, lhs: &'m Expr, rhs: &'m Expr) {
        match (lhs, rhs) {
            (Expr::Var { span, .. }, _) if span.text() != "_" => {
                self.locals.insert(span.text().to_string());
                self.assigned.entry(span.text().to_string()).or_default().push(rhs);
            }
            (Expr::Array { items: l, .. }, Expr::Array { items: r, .. }) if l.len() == r.len() => {
                for (l, r) in l.iter().zip(r) {
                    self.pattern(l, r);
                }
            }
            // `{"a": y} := {"a": 1}`: each literal key's value.
            (Expr::Object { fields: l, .. }, Expr::Object { fields: r, .. }) if l.len() == r.len() => {
                let key = |k: &Expr| match k {
                    Expr::String { value, .. } | Expr::RawString { value, .. } => {
                        value.as_string().ok().map(|s| s.to_string())
                    }
                    _ => None,
                };
                let pairs: Option<Vec<(&'m Expr, &'m Expr)>> = l
                    .iter()
                    .map(|(_, lk, lv)| {
                        let k = key(lk)?;
                        r.iter()
                            .find(|(_, rk, _)| key(rk).as_ref() == Some(&k))
                            .map(|(_, _, rv)| (&**lv, &**rv))
                    })
                    .collect();
                match pairs {
                    Some(pairs) => pairs.into_iter().for_each(|(l, r)| self.pattern(l, r)),
                    None => self.declare(lhs),
                }
            }
            _ => self.declare(lhs),
        }
    }

    /// Every variable in `e` is a local (and what else it holds is read).
    fn declare(&mut self, e: &'m Expr) {
        match e {
            Expr::Var { span, .. } => self.local(span.text()),
            Expr::Array { items, .. } | Expr::Set { items, .. } => items.iter().for_each(|i| self.declare(i)),
            Expr::Object { fields, .. } => fields.iter().for_each(|(_, k, v)| {
                self.expr(k);
                self.declare(v);
            }),
            other => self.expr(other),
        }
    }

    /// The variables of a side of `=`, which may declare them.
    fn unified(&mut self, e: &Expr) {
        match e {
            Expr::Var { span, .. } => {
                *self.unifications.entry(span.text().to_string()).or_default() += 1;
            }
            Expr::Array { items, .. } | Expr::Set { items, .. } => items.iter().for_each(|i| self.unified(i)),
            Expr::Object { fields, .. } => fields.iter().for_each(|(_, _, v)| self.unified(v)),
            _ => {}
        }
    }

    fn expr(&mut self, e: &'m Expr) {
        match e {
            Expr::Var { .. } | Expr::RefDot { .. } | Expr::RefBrack { .. } => self.reference(e),
            Expr::Call { fcn, params, .. } => {
                self.reference(fcn);
                params.iter().for_each(|p| self.expr(p));
            }
            Expr::ArrayCompr { term, query, .. } | Expr::SetCompr { term, query, .. } => {
                self.query(query);
                self.expr(term);
            }
            Expr::ObjectCompr { key, value, query, .. } => {
                self.query(query);
                self.expr(key);
                self.expr(value);
            }
            Expr::Array { items, .. } | Expr::Set { items, .. } => items.iter().for_each(|i| self.expr(i)),
            Expr::Object { fields, .. } => fields.iter().for_each(|(_, k, v)| {
                self.expr(k);
                self.expr(v);
            }),
            Expr::UnaryExpr { expr, .. } => self.expr(expr),
            Expr::AssignExpr { op, lhs, rhs, .. } => {
                match (op, lhs.as_ref()) {
                    (AssignOp::ColEq, Expr::Var { span, .. }) => {
                        self.locals.insert(span.text().to_string());
                        self.assigned.entry(span.text().to_string()).or_default().push(rhs);
                    }
                    // A pattern over a literal of the same shape binds
                    // each name to its element (`[y, z] := [1, "a"]`).
                    (AssignOp::ColEq, _) => self.pattern(lhs, rhs),
                    _ => {
                        for (side, other) in [(lhs, rhs), (rhs, lhs)] {
                            if let Expr::Var { span, .. } = side.as_ref() {
                                self.unified_with
                                    .entry(span.text().to_string())
                                    .or_default()
                                    .push(other);
                            }
                        }
                        self.unified(lhs);
                        self.unified(rhs);
                        self.expr(lhs);
                    }
                }
                self.expr(rhs);
            }
            Expr::BinExpr { lhs, rhs, .. } | Expr::BoolExpr { lhs, rhs, .. } | Expr::ArithExpr { lhs, rhs, .. } => {
                self.expr(lhs);
                self.expr(rhs);
            }
            Expr::Membership {
                key, value, collection, ..
            } => {
                if let Some(k) = key {
                    self.expr(k);
                }
                self.expr(value);
                self.expr(collection);
            }
            _ => {}
        }
    }

    /// A reference: its static part is recorded once (not each prefix of
    /// it), and what its dynamic keys hold is read.
    fn reference(&mut self, e: &'m Expr) {
        if let Some((head, parts, _)) = chain(e) {
            self.found.push((head, parts));
        }
        let mut at = e;
        loop {
            match at {
                Expr::RefDot { refr, .. } => at = refr,
                Expr::RefBrack { refr, index, .. } => {
                    if !matches!(index.as_ref(), Expr::String { .. } | Expr::RawString { .. }) {
                        self.expr(index);
                    }
                    at = refr;
                }
                Expr::Var { .. } => break,
                other => {
                    // A reference into a value (`[1, 2][i]`, `f(x).y`).
                    self.expr(other);
                    break;
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::policy::bundle::ParsedBundle;

    fn recursion_in(files: &[(&str, &str)]) -> Option<String> {
        let bundle = ParsedBundle::of_modules(files);
        first_recursion(&super::super::rewrite::parse_bundle(&bundle).expect("the modules parse"))
    }

    fn check(source: &str) -> Option<String> {
        recursion_in(&[("p.rego", source)])
    }

    /// Each answer below is real OPA's (v1.20), tried on the same module.
    #[test]
    fn what_opa_refuses_as_recursive_is_refused() {
        let cases = [
            (
                "a if b\nb if a\n",
                "p.rego:2: rego_recursion_error: rule data.p.a is recursive: data.p.a -> data.p.b -> data.p.a",
            ),
            (
                "f(x) := f(x)\n",
                "p.rego:2: rego_recursion_error: rule data.p.f is recursive: data.p.f -> data.p.f",
            ),
            (
                "x := data.p.y\ny := 1\nz := count(data.p)\n",
                "p.rego:4: rego_recursion_error: rule data.p.z is recursive: data.p.z -> data.p.z",
            ),
            (
                "x := data.p[k] if { k := \"y\" }\ny := 1\n",
                "p.rego:2: rego_recursion_error: rule data.p.x is recursive: data.p.x -> data.p.x",
            ),
            (
                "a := 1 if false else := b\nb := a\n",
                "p.rego:2: rego_recursion_error: rule data.p.a is recursive: data.p.a -> data.p.b -> data.p.a",
            ),
            (
                "a := [x | x := b[_]]\nb := {y | y := a[_]}\n",
                "p.rego:2: rego_recursion_error: rule data.p.a is recursive: data.p.a -> data.p.b -> data.p.a",
            ),
            (
                "a if not b\nb if not a\n",
                "p.rego:2: rego_recursion_error: rule data.p.a is recursive: data.p.a -> data.p.b -> data.p.a",
            ),
            (
                "s contains x if { x := t[_] }\nt contains y if { y := s[_] }\n",
                "p.rego:2: rego_recursion_error: rule data.p.s is recursive: data.p.s -> data.p.t -> data.p.s",
            ),
            (
                "a if { b with data.p.a as 1 }\nb := 1\n",
                "p.rego:2: rego_recursion_error: rule data.p.a is recursive: data.p.a -> data.p.a",
            ),
            (
                "import data.p.a as x\na := x\n",
                "p.rego:3: rego_recursion_error: rule data.p.a is recursive: data.p.a -> data.p.a",
            ),
            (
                "obl.notify contains x if { some x in obl }\n",
                "p.rego:2: rego_recursion_error: rule data.p.obl.notify is recursive: data.p.obl.notify -> data.p.obl.notify",
            ),
            (
                "m := count(data)\n",
                "p.rego:2: rego_recursion_error: rule data.p.m is recursive: data.p.m -> data.p.m",
            ),
            (
                "default a := false\na if b\nb if a\n",
                "p.rego:3: rego_recursion_error: rule data.p.a is recursive: data.p.a -> data.p.b -> data.p.a",
            ),
        ];
        for (body, want) in cases {
            let got = check(&format!("package p\n{body}"));
            assert_eq!(
                got.as_deref(),
                Some(format!("{want} (OPA refuses this module too)").as_str()),
                "{body}"
            );
        }
        // Across packages and files, and from a package into its parent.
        let across = recursion_in(&[
            ("p.rego", "package p\na := data.q.b\n"),
            ("q.rego", "package q\nb := data.p.a\n"),
        ]);
        assert!(across.is_some_and(|m| m.contains("rule data.p.a is recursive: data.p.a -> data.q.b -> data.p.a")),);
        let parent = recursion_in(&[("q.rego", "package p.q\nx := data.p\n")]);
        assert!(parent.is_some_and(|m| m.contains("data.p.q.x -> data.p.q.x")));
    }

    /// Each of these OPA compiles.
    #[test]
    fn what_opa_accepts_is_accepted() {
        let cases = [
            "a := 1\nb if { a := 2; a == 2 }\n",
            "a := 1\nb if { some a in [1]; a == 1 }\n",
            "import data.p.a as x\na := 1\nb := x\n",
            "allow if allowed\nallowed := true\n",
            "obl.notify contains x if { some x in obl.log }\nobl.log contains \"a\"\n",
            "cfg := {\"a\": 1}\nv := cfg.a\n",
            "x := 1\ns contains y if { y := [1][x] }\n",
            "v := 1\nm if { every v in [1] { v > 0 } }\n",
            "x := 1\nf(x) := x + 1\n",
            "m := data.q\n",
            "a := [y | some y in b]\nb := [1]\n",
            "a := {b: 1}\nb := \"k\"\n",
            "f(x) := 1\nm if { f := 2; f == 2 }\n",
            "x := data.q[k] if { k := \"y\" }\n",
        ];
        for body in cases {
            assert_eq!(check(&format!("package p\n{body}")), None, "{body}");
        }
        let with_tests = recursion_in(&[
            ("p.rego", "package p\nallow if input.x\n"),
            (
                "p_test.rego",
                "package p\ntest_allow if allow with input as {\"x\": true}\n",
            ),
        ]);
        assert_eq!(with_tests, None);
    }

    #[test]
    fn a_long_chain_of_rules_is_checked_without_deep_recursion() {
        let n = 10_000;
        let chain: String = (0..n - 1).map(|i| format!("r{i} := r{}\n", i + 1)).collect();
        assert_eq!(check(&format!("package p\n{chain}r{} := 1\n", n - 1)), None);
        let looped = check(&format!("package p\n{chain}r{} := r0\n", n - 1)).expect("a cycle");
        assert!(
            looped
                .starts_with("p.rego:2: rego_recursion_error: rule data.p.r0 is recursive: data.p.r0 -> data.p.r1 ->")
        );
        assert!(looped.contains(&format!("data.p.r{} -> data.p.r0 (OPA", n - 1)));
    }
}
