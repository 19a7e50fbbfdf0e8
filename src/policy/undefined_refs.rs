//! OPA's check that a reference into a value known at compile time names
//! something in it, made at upload.
//!
//! OPA's type checker knows the shape of a literal (`[10, 20]`, `{"a":
//! 1}`) and of a rule whose every definition is one (its `default` and
//! `else` values included), and refuses a module that reads past it:
//! `[10, 20][5]`, `obj.zz` with `obj := {"a": 1}`, `n.zz` with `n := 1`
//! (`rego_type_error: undefined ref`), wherever the reference stands and
//! whether or not anything evaluates it. regorus compiled these, and the
//! reference was undefined at evaluation. The shapes are followed here as
//! OPA follows them:
//!
//! - a rule's shape is the union of its definitions' values; a value that
//!   refers to another such rule (`obj2 := obj`, `x := obj.a`) has its
//!   shape; anything computed (a builtin call, a comprehension, `input`) is
//!   unknown, and so is a union with an unknown member;
//! - an object literal knows its keys even when its values are computed,
//!   unless a key is computed; an empty object or array, and any set, is
//!   not judged (OPA does not judge them);
//! - a constant key must be in the object (an array's index a whole
//!   number within it); a variable key takes the union of every member; a
//!   union answers if any member does; a scalar has no members.
//!
//! A comprehension's members have the type of its term, as the rule's
//! locals give it; a set's key must be of its members' type (`{1}.foo` is
//! undefined), and an object type with known keys only has no other.
//!
//! References are resolved as [`super::recursion`] resolves them (`data.…`,
//! the package's rules, imports). A local declared once in its rule, by
//! `name := value` and nothing else, has its value's shape (`y := [1, 2];
//! y[5]`); other locals are left alone. A call of the bundle's own function
//! has the union of its definitions' values (`f(1).zz`). A doubt
//! leaves the reference unjudged: the check may pass a module OPA
//! refuses, never refuse one OPA compiles.

use std::collections::{HashMap, HashSet};

use regorus::unstable::{Expr, Module, Rule, RuleAssign, RuleBody, RuleHead};

use super::declared_types::{TOP, Ty, mistyped_composite, result_type, unifies};
use super::literal_types::{arith_name, each_expr_of_rule, is_builtin, literal_kind, mistyped, own_names, set_op_name};
use super::recursion::{chain, declarations, imports_of, package_path, rule_heads, rule_path};

/// What is known at compile time of a value.
#[derive(Clone, Debug)]
enum Shape {
    Unknown,
    /// Its kind: `null`, `boolean`, `number` or `string`.
    Scalar(&'static str),
    /// Its literal keys and their shapes; `open` when a key is computed.
    Object {
        fields: Vec<(Key, Shape)>,
        open: bool,
    },
    Array(Vec<Shape>),
    /// One of these.
    Union(Vec<Shape>),
    /// A builtin's result of a composite or mixed type, as OPA declares it
    /// (`split` gives `array[string]`); a scalar result is a [`Shape::Scalar`].
    Declared(Ty),
}

/// A literal key of an object.
#[derive(Clone, Debug, PartialEq)]
enum Key {
    Str(String),
    /// A number, as written.
    Num(String),
    /// `true`, `false` or `null`.
    Other,
}

/// A reference's steps, each with how OPA prints it.
type Steps = [(Step, String)];

/// The last key of a function's path among the rules' (no rule's key: a
/// key is an identifier or a string, never this).
const CALLED: &str = "()";

/// A step of a reference.
#[derive(Clone, Debug)]
enum Step {
    Key(Key),
    /// A composite literal (`x[["a"]]`): not judged.
    Composite,
    /// A variable or anything computed: any member.
    Var,
}

/// The first reference past what a literal or a rule's value holds, as
/// OPA refuses it (`p.rego:4: rego_type_error: undefined ref:
/// data.p.obj.zz`), or call of a builtin with what can only be of kinds it
/// does not take (`x := 12; count(x)`: `count: invalid argument(s):
/// argument 1 is a number, …`). None when there is none.
pub fn first_type_error(parsed: &[(&str, Module)]) -> Option<String> {
    let own = own_names(parsed);
    let mut rules = Rules::default();
    let mut contexts = Vec::new();
    // Every rule's path, so that a local named as a rule is never judged.
    let names = rule_heads(parsed)?;
    for (file, module) in parsed {
        let package = package_path(module)?;
        let imports = imports_of(module);
        for rule in &module.policy {
            let declared = declarations(rule);
            let assigned: HashSet<String> = declared.assigned.keys().cloned().collect();
            let known: HashMap<String, &Expr> = declared
                .assigned
                .into_iter()
                .filter(|(name, values)| {
                    // Declared once; a side of `=` after `:=` compares.
                    values.len() == 1
                        && !declared.declarations.contains_key(name)
                        && !imports.contains_key(name)
                        && !matches!(name.as_str(), "input" | "data" | "_")
                        && !names.contains(&[package.clone(), vec![name.clone()]].concat())
                })
                .map(|(name, mut values)| (name, values.remove(0)))
                .collect();
            let declarations = &declared.declarations;
            // A name that is a whole side of `=` (each time it stands in
            // one) and declared nowhere else is bound by the first: OPA
            // types it by the other side there (`y = 1; y = input.a`: a
            // number), the later ones compare.
            // A side that is a name bound only by `=` too (`y = z; z = 1`)
            // binds nothing until that name is: OPA orders it later.
            let unified_only = |n: &str| {
                !assigned.contains(n)
                    && !declarations.contains_key(n)
                    && !declared.members.contains_key(n)
                    && declared.unified_with.contains_key(n)
            };
            let mut known = known;
            let mut unified: Vec<(String, Vec<&Expr>)> = declared.unified_with.clone().into_iter().collect();
            unified.sort_by(|a, b| a.0.cmp(&b.0));
            for (name, mut sides) in unified {
                // (`some y` before it declares the name, binding nothing.)
                let only_some = declarations.get(&name) == Some(&1) && declared.bare_some.contains(&name);
                sides.sort_by_key(|e| {
                    let waits = matches!(e, Expr::Var { span, .. } if unified_only(span.text()));
                    (waits, e.span().start)
                });
                // Two literal sides of different kinds: OPA's match error.
                let kind = |e: &Expr| match e {
                    Expr::Array { .. } => Some("array"),
                    Expr::Object { .. } => Some("object"),
                    Expr::Set { .. } => Some("set"),
                    other => literal_kind(other),
                };
                let kinds: Vec<(&str, &Expr)> = sides.iter().filter_map(|e| kind(e).map(|k| (k, *e))).collect();
                if let Some((second, e)) = kinds.iter().find(|(k, _)| *k != kinds[0].0) {
                    return Some(format!(
                        "{file}:{}: rego_type_error: match error: left: {}, right: {second} (OPA refuses this module too)",
                        e.span().line,
                        kinds[0].0
                    ));
                }
                // Two literals of one kind whose elements differ in type
                // (`y = [1]; y = ["a"]`).
                let typed: Vec<(Ty, &Expr)> = sides.iter().filter_map(|e| literal_type(e).map(|t| (t, *e))).collect();
                if let Some((_, e)) = typed.iter().find(|(t, _)| !unifies(t, &typed[0].0)) {
                    return Some(format!(
                        "{file}:{}: rego_type_error: match error: {} and {} cannot be equal (OPA refuses this module too)",
                        e.span().line,
                        typed[0].1.span().text(),
                        e.span().text()
                    ));
                }
                if !sides.is_empty()
                    && declared.unifications.get(&name) == Some(&sides.len())
                    && (!declarations.contains_key(&name) || only_some)
                    && !assigned.contains(&name)
                    && !declared.members.contains_key(&name)
                    && !imports.contains_key(&name)
                    && !matches!(name.as_str(), "input" | "data" | "_")
                    && !names.contains(&[package.clone(), vec![name.clone()]].concat())
                {
                    known.insert(name, sides.remove(0));
                }
            }
            let members = declared
                .members
                .into_iter()
                .filter(|(name, sources)| {
                    sources.len() == 1
                        && declarations.get(name) == Some(&1)
                        && !known.contains_key(name)
                        && !imports.contains_key(name)
                        && !matches!(name.as_str(), "input" | "data" | "_")
                        && !names.contains(&[package.clone(), vec![name.clone()]].concat())
                })
                .map(|(name, mut sources)| (name, sources.remove(0)))
                .collect();
            let ctx = Context {
                package: package.clone(),
                imports: imports.clone(),
                locals: declared.locals,
                known,
                members,
            };
            rules.add(&package, rule, contexts.len());
            contexts.push(ctx);
        }
    }
    let mut at = 0;
    for (file, module) in parsed {
        for rule in &module.policy {
            let ctx = &contexts[at];
            at += 1;
            let mut inner: HashSet<*const Expr> = HashSet::new();
            let mut found: Option<String> = None;
            each_expr_of_rule(rule, &mut |e| {
                if found.is_some() {
                    return;
                }
                // A builtin given what can only be of kinds it does not take
                // (`x := 12; count(x)`), or a whole reference past what is
                // known (the parent is visited before its own head).
                let why = match e {
                    Expr::RefDot { refr, .. } | Expr::RefBrack { refr, .. } => {
                        inner.insert(&**refr as *const Expr);
                        if inner.contains(&(e as *const Expr)) {
                            None
                        } else {
                            rules
                                .undefined(e, ctx, &contexts)
                                .map(|printed| format!("undefined ref: {printed}"))
                        }
                    }
                    _ => mistyped(e, &own, &|arg| rules.scalar_kinds(arg, ctx, &contexts))
                        .or_else(|| mistyped_composite(e, &own, &|arg| rules.ty_of(arg, ctx, &contexts))),
                };
                found = why.map(|m| {
                    format!(
                        "{file}:{}: rego_type_error: {m} (OPA refuses this module too)",
                        e.span().line
                    )
                });
            });
            if found.is_some() {
                return found;
            }
        }
    }
    None
}

/// How a rule's references resolve.
struct Context<'m> {
    package: Vec<String>,
    imports: HashMap<String, Vec<String>>,
    locals: HashSet<String>,
    /// Locals declared once, by `name := value`, and by nothing else:
    /// their values (OPA types them by their values).
    known: HashMap<String, &'m Expr>,
    /// Locals declared once, by `some v in c` (or as the key of `some k, v
    /// in c`, true), and by nothing else: OPA types them by the members of
    /// the collection.
    members: HashMap<String, (&'m Expr, bool)>,
}

/// Each rule path's definitions: their values, each with the index of
/// its rule's [`Context`]; None when one definition is not a value known
/// by its head alone (a partial set or object, a ref head, a function).
#[derive(Default)]
struct Rules<'m> {
    defs: HashMap<Vec<String>, Option<Vec<(Value<'m>, usize)>>>,
    shapes: std::cell::RefCell<HashMap<Vec<String>, Shape>>,
    visiting: std::cell::RefCell<HashSet<Vec<String>>>,
    /// Locals whose shape is being computed (by their rule's context).
    visiting_locals: std::cell::RefCell<HashSet<(usize, String)>>,
}

/// A definition's value: an expression, or `true` (a rule with no value).
#[derive(Clone, Copy)]
enum Value<'m> {
    Expr(&'m Expr),
    True,
}

impl<'m> Rules<'m> {
    fn add(&mut self, package: &[String], rule: &'m Rule, ctx: usize) {
        let mut path = [package.to_vec(), rule_path(rule)].concat();
        let values = |assign: &'m Option<RuleAssign>, bodies: &'m [RuleBody]| {
            let mut values = vec![assign.as_ref().map_or(Value::True, |a| Value::Expr(&a.value))];
            for b in bodies.iter().filter(|b| b.is_else) {
                values.push(b.assign.as_ref().map_or(Value::True, |a| Value::Expr(&a.value)));
            }
            values
        };
        let values: Option<Vec<Value<'m>>> = match rule {
            Rule::Spec {
                head: RuleHead::Compr { refr, assign, .. },
                bodies,
                ..
            } if matches!(refr.as_ref(), Expr::Var { .. }) => Some(values(assign, bodies)),
            Rule::Default { refr, args, value, .. } if args.is_empty() && matches!(refr.as_ref(), Expr::Var { .. }) => {
                Some(vec![Value::Expr(value)])
            }
            // A function's results, under its path and `()`.
            Rule::Spec {
                head: RuleHead::Func { assign, .. },
                bodies,
                ..
            } => {
                path.push(CALLED.to_string());
                Some(values(assign, bodies))
            }
            Rule::Default { args, value, .. } if !args.is_empty() => {
                path.push(CALLED.to_string());
                Some(vec![Value::Expr(value)])
            }
            _ => None,
        };
        let entry = self.defs.entry(path).or_insert_with(|| Some(Vec::new()));
        match (entry.as_mut(), values) {
            (Some(all), Some(values)) => all.extend(values.into_iter().map(|v| (v, ctx))),
            _ => *entry = None,
        }
    }

    /// The function a call names (its path under `data`, then [`CALLED`]),
    /// when the bundle defines it and no builtin has its name.
    fn function(&self, fcn: &Expr, ctx: &Context<'m>) -> Option<Vec<String>> {
        let (head, parts, dynamic) = chain(fcn)?;
        let name = std::iter::once(head.as_str())
            .chain(parts.iter().map(String::as_str))
            .collect::<Vec<_>>()
            .join(".");
        if dynamic || ctx.locals.contains(&head) || is_builtin(&name) {
            return None;
        }
        let mut path = if head == "data" {
            vec![head]
        } else if let Some(p) = ctx.imports.get(&head) {
            p.clone()
        } else {
            [ctx.package.clone(), vec![head]].concat()
        };
        path.extend(parts);
        path.push(CALLED.to_string());
        self.defs.contains_key(&path).then_some(path)
    }

    /// Every scalar kind `e` may have; None when it may be anything else.
    fn scalar_kinds(&self, e: &Expr, ctx: &Context<'m>, contexts: &[Context<'m>]) -> Option<Vec<&'static str>> {
        let kinds = match self.shape_of(e, ctx, contexts) {
            Shape::Scalar(kind) => vec![kind],
            Shape::Union(members) => {
                let mut kinds = Vec::new();
                for m in members {
                    let Shape::Scalar(kind) = m else {
                        return None;
                    };
                    if !kinds.contains(&kind) {
                        kinds.push(kind);
                    }
                }
                kinds
            }
            _ => return None,
        };
        Some(kinds)
    }

    /// The type OPA's checker knows `e` to have: its shape's, `any` where
    /// the shape is unknown, and for an object with keys other than strings
    /// (which this does not follow).
    fn ty_of(&self, e: &Expr, ctx: &Context<'m>, contexts: &[Context<'m>]) -> Ty {
        shape_type(&self.shape_of(e, ctx, contexts))
    }

    /// The printed reference when `e` reads past what is known of it.
    fn undefined(&self, e: &Expr, ctx: &Context<'m>, contexts: &[Context<'m>]) -> Option<String> {
        let (root, steps) = unfold(e);
        let (shape, mut printed, steps) = match root {
            Expr::Var { span, .. } => self.named(span.text(), &steps, ctx, contexts)?,
            Expr::Array { span, .. }
            | Expr::Object { span, .. }
            | Expr::Set { span, .. }
            | Expr::ArrayCompr { span, .. }
            | Expr::SetCompr { span, .. }
            | Expr::ObjectCompr { span, .. } => {
                (self.shape_of(root, ctx, contexts), span.text().to_string(), &steps[..])
            }
            Expr::Call { fcn, params, .. } => {
                let args: Vec<&str> = params.iter().map(|p| p.span().text()).collect();
                match self.function(fcn, ctx) {
                    Some(path) => {
                        let printed = format!("{}({})", path[..path.len() - 1].join("."), args.join(", "));
                        (self.shape_of_rule(&path, contexts), printed, &steps[..])
                    }
                    // A builtin's result, typed as OPA declares it.
                    None => (
                        builtin_result(fcn.span().text()),
                        format!("{}({})", fcn.span().text(), args.join(", ")),
                        &steps[..],
                    ),
                }
            }
            _ => return None,
        };
        let mut shape = shape;
        let mut undefined = false;
        for (step, text) in steps {
            printed.push_str(text);
            if !undefined {
                match select(&shape, step) {
                    Some(Shape::Unknown) => return None,
                    Some(next) => shape = next,
                    None => undefined = true,
                }
            }
        }
        undefined.then_some(printed)
    }

    /// What a reference's head names, a known local or a rule: its shape,
    /// how OPA prints it, and the steps past it. None for anything else.
    fn named<'s>(
        &self,
        head: &str,
        steps: &'s Steps,
        ctx: &Context<'m>,
        contexts: &[Context<'m>],
    ) -> Option<(Shape, String, &'s Steps)> {
        let bound = match (ctx.known.get(head), ctx.members.get(head)) {
            (Some(value), _) => Some((*value, None)),
            (None, Some((collection, is_key))) => Some((*collection, Some(*is_key))),
            (None, None) => None,
        };
        if let Some((value, member)) = bound {
            let key = (ctx as *const Context as usize, head.to_string());
            if !self.visiting_locals.borrow_mut().insert(key.clone()) {
                return None;
            }
            let shape = self.shape_of(value, ctx, contexts);
            self.visiting_locals.borrow_mut().remove(&key);
            let shape = match member {
                Some(is_key) => member_of(&shape, is_key),
                None => shape,
            };
            return Some((shape, head.to_string(), steps));
        }
        let (path, rest) = self.resolve(head, steps, ctx)?;
        Some((self.shape_of_rule(&path, contexts), path.join("."), rest))
    }

    /// The rule a reference names (its path under `data`) and the steps
    /// past it; None for a local, `input`, or no rule of the bundle.
    fn resolve<'s>(&self, head: &str, steps: &'s Steps, ctx: &Context<'m>) -> Option<(Vec<String>, &'s Steps)> {
        if head == "input" || ctx.locals.contains(head) {
            return None;
        }
        let mut path: Vec<String> = if head == "data" {
            vec![head.to_string()]
        } else if let Some(p) = ctx.imports.get(head) {
            p.clone()
        } else {
            [ctx.package.clone(), vec![head.to_string()]].concat()
        };
        let mut taken = 0;
        loop {
            if self.defs.contains_key(&path) {
                return Some((path, &steps[taken..]));
            }
            match steps.get(taken) {
                Some((Step::Key(Key::Str(s)), _)) => {
                    path.push(s.clone());
                    taken += 1;
                }
                _ => return None,
            }
        }
    }

    fn shape_of_rule(&self, path: &[String], contexts: &[Context<'m>]) -> Shape {
        if let Some(s) = self.shapes.borrow().get(path) {
            return s.clone();
        }
        let Some(Some(values)) = self.defs.get(path) else {
            return Shape::Unknown;
        };
        // A cycle is refused by the recursion check; here it is unknown.
        if !self.visiting.borrow_mut().insert(path.to_vec()) {
            return Shape::Unknown;
        }
        let shapes: Vec<Shape> = values
            .iter()
            .map(|(v, ctx)| match v {
                Value::True => Shape::Scalar("boolean"),
                Value::Expr(e) => self.shape_of(e, &contexts[*ctx], contexts),
            })
            .collect();
        self.visiting.borrow_mut().remove(path);
        let shape = union(shapes);
        self.shapes.borrow_mut().insert(path.to_vec(), shape.clone());
        shape
    }

    fn shape_of(&self, e: &Expr, ctx: &Context<'m>, contexts: &[Context<'m>]) -> Shape {
        match e {
            Expr::Null { .. }
            | Expr::Bool { .. }
            | Expr::Number { .. }
            | Expr::String { .. }
            | Expr::RawString { .. } => literal_kind(e).map_or(Shape::Unknown, Shape::Scalar),
            Expr::Array { items, .. } if !items.is_empty() => {
                Shape::Array(items.iter().map(|i| self.shape_of(i, ctx, contexts)).collect())
            }
            Expr::Object { fields, .. } if !fields.is_empty() => {
                let mut known = Vec::new();
                let mut open = false;
                for (_, k, v) in fields {
                    match key_of(k) {
                        Some(key) => known.push((key, self.shape_of(v, ctx, contexts))),
                        None => open = true,
                    }
                }
                Shape::Object { fields: known, open }
            }
            Expr::Var { span, .. } => match self.named(span.text(), &[], ctx, contexts) {
                Some((shape, _, _)) => shape,
                None => Shape::Unknown,
            },
            Expr::Call { fcn, .. } => match self.function(fcn, ctx) {
                Some(path) => self.shape_of_rule(&path, contexts),
                None => builtin_result(fcn.span().text()),
            },
            // A set's members are one of its elements' types.
            Expr::Set { items, .. } if !items.is_empty() => {
                let types = items
                    .iter()
                    .map(|i| shape_type(&self.shape_of(i, ctx, contexts)))
                    .collect();
                Shape::Declared(Ty::Set(Box::new(one_of(types))))
            }
            // A comprehension's kind is known, and its members have the
            // type of its term, as the rule's locals give it (a local of
            // the comprehension declared once is one of the rule's).
            Expr::ArrayCompr { term, .. } => Shape::Declared(Ty::Array {
                fixed: Vec::new(),
                rest: Some(Box::new(shape_type(&self.shape_of(term, ctx, contexts)))),
            }),
            Expr::SetCompr { term, .. } => {
                Shape::Declared(Ty::Set(Box::new(shape_type(&self.shape_of(term, ctx, contexts)))))
            }
            Expr::ObjectCompr { key, value, .. } => Shape::Declared(Ty::Object {
                fixed: Vec::new(),
                rest: Some(Box::new((
                    shape_type(&self.shape_of(key, ctx, contexts)),
                    shape_type(&self.shape_of(value, ctx, contexts)),
                ))),
            }),
            Expr::ArithExpr { op, .. } => builtin_result(arith_name(op)),
            Expr::BinExpr { op, .. } => builtin_result(set_op_name(op)),
            Expr::RefDot { .. } | Expr::RefBrack { .. } => {
                let (root, steps) = unfold(e);
                let (mut shape, steps) = match root {
                    Expr::Var { span, .. } => match self.named(span.text(), &steps, ctx, contexts) {
                        Some((shape, _, rest)) => (shape, rest),
                        None => return Shape::Unknown,
                    },
                    Expr::Array { .. }
                    | Expr::Object { .. }
                    | Expr::Set { .. }
                    | Expr::Call { .. }
                    | Expr::ArrayCompr { .. }
                    | Expr::SetCompr { .. }
                    | Expr::ObjectCompr { .. } => (self.shape_of(root, ctx, contexts), &steps[..]),
                    _ => return Shape::Unknown,
                };
                for (step, _) in steps {
                    match select(&shape, step) {
                        Some(next) => shape = next,
                        // Reported where it is written.
                        None => return Shape::Unknown,
                    }
                }
                shape
            }
            _ => Shape::Unknown,
        }
    }
}

/// A reference as its root and its steps, each with how OPA prints it.
fn unfold(e: &Expr) -> (&Expr, Vec<(Step, String)>) {
    let mut steps = Vec::new();
    let mut at = e;
    loop {
        match at {
            Expr::RefDot { refr, field, .. } => {
                let name = field.0.text().to_string();
                steps.push((Step::Key(Key::Str(name.clone())), format!(".{name}")));
                at = refr;
            }
            Expr::RefBrack { refr, index, .. } => {
                let step = match key_of(index) {
                    Some(k) => Step::Key(k),
                    None if matches!(
                        index.as_ref(),
                        Expr::Array { .. } | Expr::Object { .. } | Expr::Set { .. }
                    ) =>
                    {
                        Step::Composite
                    }
                    None => Step::Var,
                };
                let text = match &step {
                    Step::Key(Key::Str(s)) if is_identifier(s) => format!(".{s}"),
                    Step::Key(Key::Str(s)) => format!("[{}]", serde_json::Value::String(s.clone())),
                    _ => format!("[{}]", index.span().text()),
                };
                steps.push((step, text));
                at = refr;
            }
            _ => break,
        }
    }
    steps.reverse();
    (at, steps)
}

/// A scalar literal as an object key.
/// What OPA's checker knows of a builtin's result: its declared type
/// (`count(x)` is a number); unknown for a name OPA declares nothing of.
fn builtin_result(name: &str) -> Shape {
    result_type(name).map_or(Shape::Unknown, ty_shape)
}

/// What OPA's checker knows of a key (`is_key`) or a member of a
/// collection of this shape: a literal's elements as they are known.
fn member_of(shape: &Shape, is_key: bool) -> Shape {
    match shape {
        Shape::Array(_) if is_key => Shape::Scalar("number"),
        Shape::Array(items) => union(items.clone()),
        Shape::Object { fields, open: false } if !is_key => union(fields.iter().map(|(_, v)| v.clone()).collect()),
        // A literal's keys: strings and numbers (`true` and `null` keys
        // are not judged).
        Shape::Object { fields, open: false } => union(
            fields
                .iter()
                .map(|(k, _)| match k {
                    Key::Str(_) => Shape::Scalar("string"),
                    Key::Num(_) => Shape::Scalar("number"),
                    Key::Other => Shape::Unknown,
                })
                .collect(),
        ),
        Shape::Declared(t) => member_shape(t, is_key),
        _ => Shape::Unknown,
    }
}

/// What OPA's checker knows of a key (`is_key`) or a member of a
/// collection of type `t`: an array's keys are numbers, a set's keys and
/// members its elements, an object's members its values.
fn member_shape(t: &Ty, is_key: bool) -> Shape {
    match t {
        Ty::Array { .. } if is_key => Shape::Scalar("number"),
        Ty::Array { fixed, rest } => ty_shape(&one_of(fixed.iter().chain(rest.as_deref()).cloned().collect())),
        Ty::Set(of) => ty_shape(of),
        Ty::Object { fixed, rest } if !is_key => ty_shape(&one_of(
            fixed
                .iter()
                .map(|(_, v)| v.clone())
                .chain(rest.as_deref().map(|(_, v)| v.clone()))
                .collect(),
        )),
        _ => Shape::Unknown,
    }
}

/// One of these types: the type itself when there is one, anything when
/// there is none or any member is anything.
fn one_of(mut types: Vec<Ty>) -> Ty {
    let mut unique: Vec<Ty> = Vec::new();
    for t in types.drain(..) {
        if t == TOP {
            return TOP;
        }
        if !unique.contains(&t) {
            unique.push(t);
        }
    }
    match unique.len() {
        0 => TOP,
        1 => unique.remove(0),
        _ => Ty::Any(unique),
    }
}

/// The shape of a value of type `t`.
fn ty_shape(t: &Ty) -> Shape {
    match t {
        Ty::Null => Shape::Scalar("null"),
        Ty::Boolean => Shape::Scalar("boolean"),
        Ty::Number => Shape::Scalar("number"),
        Ty::String => Shape::Scalar("string"),
        t if *t == TOP => Shape::Unknown,
        t => Shape::Declared(t.clone()),
    }
}

fn shape_type(shape: &Shape) -> Ty {
    match shape {
        Shape::Declared(t) => t.clone(),
        Shape::Unknown => TOP,
        Shape::Scalar(kind) => match *kind {
            "null" => Ty::Null,
            "boolean" => Ty::Boolean,
            "number" => Ty::Number,
            "string" => Ty::String,
            _ => TOP,
        },
        Shape::Array(items) => Ty::Array {
            fixed: items.iter().map(shape_type).collect(),
            rest: None,
        },
        Shape::Object { fields, open: false } => {
            let mut fixed = Vec::new();
            for (key, value) in fields {
                match key {
                    Key::Str(k) => fixed.push((k.clone(), shape_type(value))),
                    Key::Num(_) | Key::Other => return TOP,
                }
            }
            Ty::Object { fixed, rest: None }
        }
        Shape::Object { open: true, .. } => TOP,
        Shape::Union(members) => {
            let types: Vec<Ty> = members.iter().map(shape_type).collect();
            if types.contains(&TOP) { TOP } else { one_of(types) }
        }
    }
}

/// The type of a literal made of literals only (`[1, "a"]`: `array<number,
/// string>`); None where anything in it is computed or a key is not a
/// string.
fn literal_type(e: &Expr) -> Option<Ty> {
    Some(match e {
        Expr::Array { items, .. } => Ty::Array {
            fixed: items.iter().map(|i| literal_type(i)).collect::<Option<_>>()?,
            rest: None,
        },
        Expr::Object { fields, .. } => Ty::Object {
            fixed: fields
                .iter()
                .map(|(_, k, v)| match key_of(k)? {
                    Key::Str(k) => Some((k, literal_type(v)?)),
                    _ => None,
                })
                .collect::<Option<_>>()?,
            rest: None,
        },
        other => match literal_kind(other)? {
            "null" => Ty::Null,
            "boolean" => Ty::Boolean,
            "number" => Ty::Number,
            _ => Ty::String,
        },
    })
}

fn key_of(e: &Expr) -> Option<Key> {
    match e {
        Expr::String { value, .. } | Expr::RawString { value, .. } => {
            value.as_string().ok().map(|s| Key::Str(s.to_string()))
        }
        Expr::Number { span, .. } => Some(Key::Num(span.text().to_string())),
        Expr::Bool { .. } | Expr::Null { .. } => Some(Key::Other),
        _ => None,
    }
}

fn is_identifier(s: &str) -> bool {
    let mut chars = s.chars();
    chars.next().is_some_and(|c| c.is_ascii_alphabetic() || c == '_')
        && chars.all(|c| c.is_ascii_alphanumeric() || c == '_')
}

/// What one step into a shape finds: None when it is surely undefined.
fn select(shape: &Shape, step: &Step) -> Option<Shape> {
    match shape {
        Shape::Unknown => Some(Shape::Unknown),
        Shape::Declared(t) => select_declared(t, step),
        Shape::Scalar(_) => None,
        Shape::Union(members) => {
            let found: Vec<Shape> = members.iter().filter_map(|m| select(m, step)).collect();
            (!found.is_empty()).then(|| union(found))
        }
        Shape::Object { fields, open } => {
            let key = match step {
                Step::Var if *open => return Some(Shape::Unknown),
                Step::Var => return Some(union(fields.iter().map(|(_, s)| s.clone()).collect())),
                Step::Composite => return Some(Shape::Unknown),
                Step::Key(k) => k,
            };
            if let Some((_, s)) = fields.iter().find(|(k, _)| k == key) {
                return Some(s.clone());
            }
            // `1` and `1.0` may be one key; `true` and `null` are not
            // judged where such keys are.
            let doubtful = match key {
                Key::Str(_) => false,
                Key::Num(_) => fields.iter().any(|(k, _)| matches!(k, Key::Num(_))),
                Key::Other => fields.iter().any(|(k, _)| matches!(k, Key::Other)),
            };
            (*open || doubtful).then_some(Shape::Unknown)
        }
        Shape::Array(items) => match step {
            Step::Var => Some(union(items.clone())),
            Step::Composite => Some(Shape::Unknown),
            Step::Key(Key::Num(text)) if text.bytes().all(|b| b.is_ascii_digit()) => {
                text.parse::<usize>().ok().and_then(|i| items.get(i).cloned())
            }
            Step::Key(_) => None,
        },
    }
}

/// A step into a builtin's result of type `t`, as OPA's checker takes it:
/// a string key into an array, or any key into a scalar, is undefined;
/// an index into an array of any length, or a key into an object with
/// open keys, is the element's type. Anything less certain is unknown.
fn select_declared(t: &Ty, step: &Step) -> Option<Shape> {
    let known = |t: Option<&Ty>| t.map(ty_shape);
    match (t, step) {
        // One of several types: defined if any member is.
        (Ty::Any(members), _) if !members.is_empty() => {
            let found: Vec<Shape> = members.iter().filter_map(|m| select_declared(m, step)).collect();
            (!found.is_empty()).then(|| union(found))
        }
        (Ty::Null | Ty::Boolean | Ty::Number | Ty::String, _) => None,
        (Ty::Array { .. }, Step::Key(Key::Str(_) | Key::Other)) => None,
        (Ty::Array { fixed, rest: Some(_) }, Step::Key(Key::Num(text))) if fixed.is_empty() => text
            .bytes()
            .all(|b| b.is_ascii_digit())
            .then(|| known(t.element(0)))
            .flatten()
            .or(Some(Shape::Unknown)),
        // A key an object of known keys only does not have is undefined.
        (Ty::Object { rest: None, .. }, Step::Key(Key::Str(k))) => known(t.member(k, &Ty::String)),
        (Ty::Object { .. }, Step::Key(Key::Str(k))) => Some(known(t.member(k, &Ty::String)).unwrap_or(Shape::Unknown)),
        // A set's key is one of its members: one of another type is
        // undefined (`{y | y := 1}.foo`).
        (Ty::Set(of), Step::Key(Key::Str(_))) if !unifies(&Ty::String, of) => None,
        (Ty::Set(of), Step::Key(Key::Num(_))) if !unifies(&Ty::Number, of) => None,
        _ => Some(Shape::Unknown),
    }
}

/// One of these shapes; unknown if any is.
fn union(shapes: Vec<Shape>) -> Shape {
    let mut flat = Vec::new();
    for s in shapes {
        match s {
            Shape::Unknown => return Shape::Unknown,
            Shape::Union(inner) => flat.extend(inner),
            other => flat.push(other),
        }
    }
    if flat.len() == 1 {
        flat.pop().unwrap_or(Shape::Unknown)
    } else {
        Shape::Union(flat)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::policy::bundle::ParsedBundle;

    fn check(files: &[(&str, &str)]) -> Option<String> {
        let bundle = ParsedBundle::of_modules(files);
        first_type_error(&super::super::rewrite::parse_bundle(&bundle).expect("the modules parse"))
    }

    fn one(body: &str) -> Option<String> {
        check(&[("p.rego", &format!("package p\n{body}"))])
    }

    /// Each of these real OPA (v1.20) refuses with `undefined ref`.
    #[test]
    fn a_reference_past_a_known_value_is_refused() {
        assert_eq!(
            one("obj := {\"a\": 1}\nmissing := obj.zz\n").as_deref(),
            Some("p.rego:3: rego_type_error: undefined ref: data.p.obj.zz (OPA refuses this module too)")
        );
        for (body, printed) in [
            ("x := [10, 20][5]\n", "[10, 20][5]"),
            ("x := [10, 20][-1]\n", "[10, 20][-1]"),
            ("x := [10, 20][1.5]\n", "[10, 20][1.5]"),
            ("x := [10, 20][\"a\"]\n", "[10, 20].a"),
            ("x := {\"a\": 1}[\"zz\"]\n", "{\"a\": 1}.zz"),
            ("a := [10, 20]\nx := a[2] if input.x\n", "data.p.a[2]"),
            ("default a := [1]\na := [10, 20] if input.y\nx := a[2]\n", "data.p.a[2]"),
            (
                "a := [10, 20] if input.y\na := [1, 2, 3] if input.z\nx := a[3]\n",
                "data.p.a[3]",
            ),
            ("obj := {\"a\": {\"b\": 1}}\nx := obj.a.c\n", "data.p.obj.a.c"),
            ("obj := {\"a\": 1}\nx := obj.a.c\n", "data.p.obj.a.c"),
            ("obj := {\"a\": 1}\nx := obj[1]\n", "data.p.obj[1]"),
            ("obj := {1: 1}\nx := obj[\"1\"]\n", "data.p.obj[\"1\"]"),
            ("obj := {\"a\": 1}\nx if not obj.zz\n", "data.p.obj.zz"),
            ("obj := {\"a\": 1}\nf(y) := obj.zz\n", "data.p.obj.zz"),
            ("obj := {\"a\": 1}\nx := [v | v := obj.zz]\n", "data.p.obj.zz"),
            (
                "obj := {\"a\": 1} if input.x\nelse := {\"c\": 2}\nx := obj.d\n",
                "data.p.obj.d",
            ),
            ("n := 1\nx := n.zz\n", "data.p.n.zz"),
            ("n := \"str\"\nx := n[0]\n", "data.p.n[0]"),
            ("n := 1\nx := n[k] if k := input.k\n", "data.p.n[k]"),
            ("b if input.x\nx := b.zz\n", "data.p.b.zz"),
            ("obj := {\"a\": 1}\nx := data.p.obj.zz\n", "data.p.obj.zz"),
            ("obj := {\"a\": 1}\nobj2 := obj\nx := obj2.zz\n", "data.p.obj2.zz"),
            ("obj := {\"a\": 1}\nx := obj.a\ny := x.b\n", "data.p.x.b"),
            ("arr := [{\"a\": 1}, {\"b\": 2}]\nx := arr[_].c\n", "data.p.arr[_].c"),
            ("arr := [{\"a\": 1}, {\"b\": 2}]\nx := arr[0].b\n", "data.p.arr[0].b"),
            ("x := {\"a\": [1, 2, {\"b\": 2}]}\ny := x.a[_].c\n", "data.p.x.a[_].c"),
            (
                "obj := {\"a\": {\"c\": 1}, \"b\": 1}\nx := obj[k].d if k := \"b\"\n",
                "data.p.obj[k].d",
            ),
            ("obj := {\"a\": 1}\nx if { some k; obj.zz[k] }\n", "data.p.obj.zz[k]"),
            ("obj := {\"a\": 1}\nx if { some y in obj.zz }\n", "data.p.obj.zz"),
            ("obj := {\"a\": 1}\ntest_x if { obj.zz }\n", "data.p.obj.zz"),
            ("obj := {\"a\": 1}\nx := obj.zz if false\n", "data.p.obj.zz"),
            ("a := [10, 20]\nx := a[1.0]\n", "data.p.a[1.0]"),
            ("a := [10, 20]\nx := a[true]\n", "data.p.a[true]"),
            ("o := {\"a\": 1, 1: 2}\nx := o[true]\n", "data.p.o[true]"),
            ("o := {\"a\": 1}\nx := o[null]\n", "data.p.o[null]"),
            ("obj := {\"a\": 1.5}\nx := obj.a.b\n", "data.p.obj.a.b"),
            // Locals declared once with `:=` have their value's shape.
            ("x if { y := [1, 2]; y[5] }\n", "y[5]"),
            ("x if { y := {\"a\": 1}; y.b }\n", "y.b"),
            ("x if { y := {\"a\": 1}; z := y; z.b }\n", "z.b"),
            ("x if { y := {\"a\": 1}; z := y.a; z.b }\n", "z.b"),
            ("x := [v | y := {\"a\": 1}; v := y.b]\n", "y.b"),
            ("obj := {\"a\": 1}\nx if { y := obj; y.b }\n", "y.b"),
            ("x if { y := 1; y.b }\n", "y.b"),
            ("x if { y := \"s\"; y[0] }\n", "y[0]"),
            ("x if { y := [1, 2]; some i; y[i].q }\n", "y[i].q"),
            ("x := y.b if { y := {\"a\": 1} }\n", "y.b"),
            // A function's results: the union of its definitions.
            ("f(x) := {\"a\": x}\ny := f(1).zz\n", "data.p.f(1).zz"),
            ("f(1) := {\"a\": 1}\nf(2) := {\"b\": 2}\ny := f(1).c\n", "data.p.f(1).c"),
            ("f(x) := {\"a\": 1}\nx := f(1)\ny := x.zz\n", "data.p.x.zz"),
            ("f(x) := {\"a\": 1}\ny if { z := f(1); z.zz }\n", "z.zz"),
            (
                "f(x) := {\"a\": 1} if { x > 1 } else := {\"b\": 2}\ny := f(1).c\n",
                "data.p.f(1).c",
            ),
            ("f(x) if x > 1\ny := f(1).b\n", "data.p.f(1).b"),
        ] {
            let got = one(body).unwrap_or_else(|| panic!("{body}: not refused"));
            assert!(got.contains(&format!("undefined ref: {printed} ")), "{body}: {got}");
        }
    }

    /// A builtin given a rule's, a local's or a function's value of a kind
    /// it does not take: real OPA refuses each (`invalid argument(s)`).
    #[test]
    fn a_builtin_given_a_known_value_of_another_kind_is_refused() {
        for (body, what) in [
            (
                "x := 12\ny := count(x)\n",
                "count: invalid argument(s): argument 1 is a number",
            ),
            ("y if { x := 12; count(x) > 1 }\n", "count: invalid argument(s)"),
            ("obj := {\"a\": 1}\ny := upper(obj.a)\n", "upper: invalid argument(s)"),
            ("x := {\"a\": 1}\ny := count(x.a)\n", "count: invalid argument(s)"),
            ("f(x) := 1\ny := upper(f(2))\n", "upper: invalid argument(s)"),
            ("y := upper([1][0])\n", "upper: invalid argument(s)"),
        ] {
            let got = one(body).unwrap_or_else(|| panic!("{body}: not refused"));
            assert!(got.contains(what) && got.starts_with("p.rego:"), "{body}: {got}");
        }
        // Real OPA compiles these: one member of a union will do.
        for body in [
            "obj := {\"a\": 1, \"b\": \"s\"}\ny := upper(obj[_])\n",
            "x := 12 if input.a\nx := \"s\" if input.b\ny := upper(x)\n",
            "x := \"s\"\ny := upper(x)\n",
        ] {
            assert_eq!(one(body), None, "{body}");
        }
    }

    /// Across files of a package, and through imports.
    #[test]
    fn references_resolve_across_files_and_imports() {
        let obj = ("a.rego", "package p\nobj := {\"a\": 1}\nf(x) := {\"a\": x}\n");
        for other in [
            "package p\nobj2 := obj.zz\n",
            "package q\nimport data.p.obj\nx := obj.zz\n",
            "package q\nimport data.p\nx := p.obj.zz\n",
            "package q\nimport data.p.obj as o\nx := o.zz\n",
            "package q\nimport data.p\ny := p.f(1).zz\n",
        ] {
            let got = check(&[obj, ("b.rego", other)]).unwrap_or_else(|| panic!("{other}: not refused"));
            assert!(got.starts_with("b.rego:"), "{got}");
        }
        // A definition in another file widens the rule.
        assert_eq!(
            check(&[obj, ("b.rego", "package p\nobj := {\"b\": 1} if input.x\nx := obj.b\n")]),
            None
        );
    }

    /// Each of these real OPA compiles.
    #[test]
    fn what_opa_compiles_passes() {
        for body in [
            "x := [10, 20][1]\n",
            "a := [10, 20] if input.y\na := [1, 2, 3] if input.z\nx := a[2]\n",
            "obj := {\"a\": input.q}\nx := obj.a.c\n",
            "obj := {input.k: 1}\nx := obj.zz\n",
            "obj := {\"a\": 1}\nx := obj[input.k]\n",
            "obj := {\"a\": 1}\nobj := {\"b\": 1} if input.x\nx := obj.b\n",
            "obj := {\"a\": 1} if input.x\nelse := {\"c\": 2}\nx := obj.c\n",
            "s := {\"a\"}\nx := s.zz\n",
            "obj[\"k\"] := 1\nx := obj.zz\n",
            "obj.a := 1\nx := obj.zz\n",
            "a := []\nx := a[0]\n",
            "o := {}\nx := o.zz\n",
            "a := [x | x := input[_]]\ny := a[5]\n",
            "obj := {\"a\": {\"c\": 1}, \"b\": 1}\nx := obj[k].c if k := \"b\"\n",
            "obj := {\"a\": 1}\nf if { obj := {\"zz\": 1}; obj.zz }\n",
            "obj := {\"a\": 1}\nf(obj) := obj.zz\n",
            "obj := {\"a\": 1}\nf if { some obj in input; obj.zz }\n",
            "obj := {\"a\": set()}\nx := obj.a.b\n",
            "obj := {\"a\": 1}\nx := input.obj.zz\n",
            "x := {\"a\": [1, 2, {\"b\": 2}]}\ny := x.a[_].b\n",
            "o := {\"a\": {\"b\": 1}, \"c\": input.c}\nx := o.c.d\n",
            "o := {1: \"a\"}\nx := o[1.0]\n",
            "default d := {\"a\": 1}\nd := input.d\nx := d.zz\n",
            "x if { y := {\"a\": input.q}; y.a.c }\n",
            "x if { y := input; y.b }\n",
            "f(y) := y.b\nx := f({\"a\": 1})\n",
            "x if { every y in [{\"a\": 1}] { y.b } }\n",
            // A local of a comprehension does not hide the rule of its name
            // outside it; a name declared twice is not judged.
            "y := {\"b\": 1}\nx if { c := [1 | y := {\"a\": 1}]; y.b }\n",
            "x if { a := [1 | y := {\"a\": 1}; y.a]; b := [1 | y := {\"b\": 1}; y.b] }\n",
            "x if { y := {\"a\": 1}; y = {\"a\": 2} }\n",
            "f(x) := {\"a\": x}\ny := f(1).a.q\n",
            "f(1) := {\"a\": 1}\nf(2) := {\"b\": 2}\ny := f(1).b\n",
            "default f(_) := {}\nf(x) := {\"a\": 1} if x > 1\ny := f(1).zz\n",
            "f(x) := x\ny := f({\"a\": 1}).zz\n",
            "f(x) := {\"a\": 1} if { x > 1 } else := {\"b\": 2}\ny := f(1).b\n",
            "x := json.unmarshal(\"{}\").zz\n",
        ] {
            assert_eq!(one(body), None, "{body}");
        }
    }
}
