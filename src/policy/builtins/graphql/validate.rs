//! A query validated against a schema by the rules of the GraphQL
//! specification's section 5, as OPA validates it.
//!
//! OPA walks the document once (each operation with the fragments it
//! spreads, then every fragment on its own) and, at each node, runs every
//! rule that looks at such nodes, the rules in name order. Errors come out
//! in that order, repeated where a fragment is walked more than once, and
//! OPA reports them all in one message. [`validate_all`] gives that list,
//! [`error_text`] the message.
//!
//! A query is attacker input. Recursion is bounded by [`MAX_DEPTH`], all
//! work (nodes walked, field pairs compared, fragments followed) by
//! [`MAX_STEPS`] and the errors' text by [`MAX_MESSAGE_BYTES`]; a query
//! needing more is refused with [`TOO_COMPLEX`], where OPA goes on (for a
//! long time: comparing overlapping fields is quadratic, following
//! fragments for introspection depth exponential) or, comparing the fields
//! of fragments that spread themselves inside their fields, recurses until
//! its process dies.

use std::collections::{HashMap, HashSet};
use std::sync::LazyLock;

use super::super::go_quote;
use super::GqlError;
use super::ast::{
    Argument, ArgumentDefinition, Definition, DefinitionKind, Directive, Field, FieldDefinition, Fragment,
    FragmentSpread, InlineFragment, Operation, Pos, QueryDocument, Selection, Type, Value, ValueKind,
    VariableDefinition,
};
use super::schema::{self, Schema};

/// Most steps one validation may take: a step is a node walked, a field
/// pair compared, a fragment followed.
pub(crate) const MAX_STEPS: usize = 1_000_000;

/// Deepest recursion one validation may reach: selections nested through
/// fragment spreads, fields compared within fields.
pub(crate) const MAX_DEPTH: usize = 200;

/// Most bytes of error messages one validation may produce (messages
/// repeat the values they are about, and a fragment's errors repeat for
/// each operation spreading it).
pub(crate) const MAX_MESSAGE_BYTES: usize = 4 << 20;

/// The error for a query past [`MAX_STEPS`], [`MAX_DEPTH`] or
/// [`MAX_MESSAGE_BYTES`] (a refusal of our own: OPA has no such limits).
pub(crate) const TOO_COMPLEX: &str = "Query is too complex to validate.";

/// `__typename`, which every selection set may select.
static TYPENAME: LazyLock<FieldDefinition> = LazyLock::new(|| FieldDefinition {
    description: String::new(),
    name: "__typename".to_string(),
    arguments: Vec::new(),
    default: None,
    ty: Type {
        named: "String".to_string(),
        elem: None,
        non_null: false,
        pos: Pos::default(),
    },
    directives: Vec::new(),
    pos: Pos::default(),
});

/// The first validation error, if any, as OPA reports it first (with its
/// final period); or where OPA's validator itself fails (see
/// [`validate_all`]).
#[cfg(test)]
pub(crate) fn validate(schema: &Schema, query: &QueryDocument) -> Result<(), GqlError> {
    match validate_all(schema, query)?.into_iter().next() {
        Some(e) => Err(e),
        None => Ok(()),
    }
}

/// Every validation error, in OPA's order, worded as OPA words them (with
/// their final period; positions 0:0 where the document has none, having
/// been given as an object).
///
/// `Err` is where OPA's validator itself fails, failing the whole
/// evaluation with the message (even for `graphql.is_valid`): an operation
/// that is none of `query`, `mutation`, `subscription`, or a directive
/// where it may not stand that has no place; both possible only in a
/// document given as an object.
pub(crate) fn validate_all(schema: &Schema, query: &QueryDocument) -> Result<Vec<GqlError>, GqlError> {
    if let Some(op) = query
        .operations
        .iter()
        .find(|op| !matches!(op.operation.as_str(), "query" | "mutation" | "subscription" | ""))
    {
        return Err(GqlError::new(
            format!("got unknown operation type \"{}\"", op.operation),
            op.pos,
        ));
    }
    let mut v = Validator::new(schema, query);
    v.walk();
    if let Some(fatal) = v.fatal {
        return Err(fatal);
    }
    if v.exhausted {
        v.errors.push(GqlError::new(TOO_COMPLEX, v.exhausted_at));
    }
    Ok(v.errors)
}

/// The message OPA gives for these errors, after "graphql.parse: ": all of
/// them, one a line, the first without its place, which ends the text;
/// the final period dropped. Without places (a document given as an
/// object) it is "GraphQL parse error: " and every error as is.
pub(crate) fn error_text(errors: &[GqlError]) -> String {
    let mut all = String::new();
    for e in errors {
        if e.pos == Pos::default() {
            all.push_str(&format!("input: {}\n", e.message));
        } else {
            all.push_str(&format!("input:{}:{}: {}\n", e.pos.line, e.pos.column, e.message));
        }
    }
    match errors.first() {
        Some(first) if first.pos != Pos::default() => {
            let prefix = format!("input:{}:{}:", first.pos.line, first.pos.column);
            let rest = all.strip_prefix(&prefix).unwrap_or(&all).trim_start_matches(' ');
            let rest = rest.strip_suffix(".\n").unwrap_or(rest);
            format!(
                "{rest} in GraphQL string at location {}:{}",
                first.pos.line, first.pos.column
            )
        }
        _ => format!("GraphQL parse error: {all}"),
    }
}

/// The type a value is expected to have where it stands, and the named
/// type at its bottom; unknown where the argument or field is.
#[derive(Clone, Copy, Default)]
struct Expected<'a> {
    ty: Option<&'a Type>,
    def: Option<&'a Definition>,
    /// The argument or input field has a default other than `null`.
    has_default: bool,
}

/// A field with the type it was selected on and its definition there.
#[derive(Clone, Copy)]
struct FieldRef<'a> {
    field: &'a Field,
    parent: Option<&'a Definition>,
    def: Option<&'a FieldDefinition>,
}

/// Fields by response name, in the order the names first appear.
#[derive(Default)]
struct FieldMap<'a> {
    entries: Vec<(&'a str, Vec<FieldRef<'a>>)>,
    index: HashMap<&'a str, usize>,
}

impl<'a> FieldMap<'a> {
    fn push(&mut self, name: &'a str, f: FieldRef<'a>) {
        match self.index.get(name) {
            Some(&i) => self.entries[i].1.push(f),
            None => {
                self.index.insert(name, self.entries.len());
                self.entries.push((name, vec![f]));
            }
        }
    }

    fn get(&self, name: &str) -> Option<&[FieldRef<'a>]> {
        self.index.get(name).map(|&i| self.entries[i].1.as_slice())
    }

    /// The same fields, by node.
    fn same_as(&self, other: &FieldMap<'a>) -> bool {
        self.entries.len() == other.entries.len()
            && self.entries.iter().zip(&other.entries).all(|((n1, f1), (n2, f2))| {
                n1 == n2 && f1.len() == f2.len() && f1.iter().zip(f2).all(|(a, b)| std::ptr::eq(a.field, b.field))
            })
    }
}

/// Two fields of one response name that cannot be merged, or whose
/// subfields cannot.
struct Conflict {
    response_name: String,
    message: String,
    sub: Vec<Conflict>,
    pos: Pos,
}

impl Conflict {
    fn describe(&self, out: &mut String) {
        if self.sub.is_empty() {
            out.push_str(&self.message);
            return;
        }
        for (i, sub) in self.sub.iter().enumerate() {
            out.push_str(&format!("subfields \"{}\" conflict because ", sub.response_name));
            sub.describe(out);
            if i + 1 != self.sub.len() {
                out.push_str(" and ");
            }
        }
    }
}

/// One validation: the walk, what the rules remember along it, and the
/// errors found.
struct Validator<'a> {
    schema: &'a Schema,
    doc: &'a QueryDocument,
    /// The first fragment of each name, which spreads of the name refer to.
    fragments: HashMap<&'a str, &'a Fragment>,
    errors: Vec<GqlError>,

    steps: usize,
    depth: usize,
    message_bytes: usize,
    exhausted: bool,
    exhausted_at: Pos,
    /// The operation or fragment being walked.
    walking_at: Pos,
    /// Where OPA itself fails rather than reporting an error.
    fatal: Option<GqlError>,

    current_op: Option<&'a Operation>,
    /// Fragments already walked in the current operation or fragment.
    walked_spreads: HashSet<&'a str>,
    /// Variables each variable value was last found to refer to.
    bound_variables: HashMap<*const Value, &'a VariableDefinition>,
    used_variables: HashSet<*const VariableDefinition>,
    /// Fields and spreads the walk has reached: OPA's rules know the type
    /// of a field, and the fragment of a spread, only from then on.
    walked_fields: HashSet<*const Field>,
    walked_spread_nodes: HashSet<*const FragmentSpread>,

    // NoUnusedFragments
    in_fragment_definition: bool,
    used_fragments: HashSet<&'a str>,
    // NoFragmentCycles
    cycle_checked: HashSet<&'a str>,
    // KnownDirectives
    misplaced_directives: HashSet<(&'a str, u32, u32)>,
    // UniqueOperationNames, UniqueFragmentNames
    operation_names: HashSet<&'a str>,
    fragment_names: HashSet<&'a str>,
    // OverlappingFieldsCanBeMerged
    compared_fragment_pairs: HashMap<(&'a str, &'a str), bool>,
    compared_fragments: HashSet<&'a str>,
}

impl<'a> Validator<'a> {
    fn new(schema: &'a Schema, doc: &'a QueryDocument) -> Validator<'a> {
        let mut fragments = HashMap::new();
        for f in &doc.fragments {
            fragments.entry(f.name.as_str()).or_insert(f);
        }
        Validator {
            schema,
            doc,
            fragments,
            errors: Vec::new(),
            steps: 0,
            depth: 0,
            message_bytes: 0,
            exhausted: false,
            exhausted_at: Pos::default(),
            walking_at: Pos::default(),
            fatal: None,
            current_op: None,
            walked_spreads: HashSet::new(),
            bound_variables: HashMap::new(),
            used_variables: HashSet::new(),
            walked_fields: HashSet::new(),
            walked_spread_nodes: HashSet::new(),
            in_fragment_definition: false,
            used_fragments: HashSet::new(),
            misplaced_directives: HashSet::new(),
            cycle_checked: HashSet::new(),
            operation_names: HashSet::new(),
            fragment_names: HashSet::new(),
            compared_fragment_pairs: HashMap::new(),
            compared_fragments: HashSet::new(),
        }
    }

    fn error(&mut self, pos: Pos, message: String) {
        if self.exhausted {
            return;
        }
        self.message_bytes += message.len();
        if self.message_bytes > MAX_MESSAGE_BYTES {
            self.exhaust(pos);
            return;
        }
        self.errors.push(GqlError::new(message, pos));
    }

    /// Counts a step; false once the budget is spent.
    fn step(&mut self, pos: Pos) -> bool {
        self.steps_n(1, pos)
    }

    /// Counts `n` steps; false once the budget is spent.
    fn steps_n(&mut self, n: usize, pos: Pos) -> bool {
        if self.exhausted {
            return false;
        }
        self.steps = self.steps.saturating_add(n);
        if self.steps > MAX_STEPS {
            self.exhaust(pos);
            return false;
        }
        true
    }

    /// Stops with the failure OPA's evaluation ends with.
    fn fail(&mut self, message: &str) {
        if !self.exhausted {
            self.exhausted = true;
            self.fatal = Some(GqlError::new(message, Pos::default()));
        }
    }

    fn exhaust(&mut self, pos: Pos) {
        if !self.exhausted {
            self.exhausted = true;
            self.exhausted_at = if pos == Pos::default() { self.walking_at } else { pos };
        }
    }

    /// Enters a level of recursion (and counts a step); false, leaving the
    /// level unentered, past the limits.
    fn enter(&mut self, pos: Pos) -> bool {
        if !self.step(pos) {
            return false;
        }
        if self.depth >= MAX_DEPTH {
            self.exhaust(pos);
            return false;
        }
        self.depth += 1;
        true
    }

    fn leave(&mut self) {
        self.depth -= 1;
    }

    /// ` Did you mean "A", "B", or "C"?` (with `prefix`) for the options
    /// close to `typed`, a step counted for each option weighed.
    fn suggest(&mut self, prefix: &str, typed: &str, options: &[&str]) -> String {
        if !self.steps_n(options.len(), Pos::default()) {
            return String::new();
        }
        suggest_quoted(prefix, typed, options)
    }

    fn get_type(&self, name: &str) -> Option<&'a Definition> {
        self.schema.get_type(name)
    }

    fn fragment(&self, name: &str) -> Option<&'a Fragment> {
        self.fragments.get(name).copied()
    }

    /// The fragment a spread refers to, once the walk has reached the
    /// spread: OPA's rules see a spread not yet reached as unknown.
    fn spread_fragment(&self, spread: &'a FragmentSpread) -> Option<&'a Fragment> {
        if self.walked_spread_nodes.contains(&(spread as *const FragmentSpread)) {
            self.fragment(&spread.name)
        } else {
            None
        }
    }

    /// The definition of `name` selected on `parent`.
    fn field_def(&self, parent: Option<&'a Definition>, name: &str) -> Option<&'a FieldDefinition> {
        if name == "__typename" {
            return Some(&TYPENAME);
        }
        parent.and_then(|p| self.schema.field(&p.name, name))
    }

    // --- the walk -----------------------------------------------------------

    fn walk(&mut self) {
        let doc = self.doc;
        for op in &doc.operations {
            if self.exhausted {
                return;
            }
            self.walked_spreads.clear();
            self.walk_operation(op);
        }
        for frag in &doc.fragments {
            if self.exhausted {
                return;
            }
            self.walked_spreads.clear();
            self.walk_fragment(frag);
        }
    }

    fn walk_operation(&mut self, op: &'a Operation) {
        self.current_op = Some(op);
        self.walking_at = op.pos;
        for var in &op.variables {
            self.on_variable(var);
        }
        let root = self.schema.root_type(&op.operation);
        let location = match op.operation.as_str() {
            "mutation" => "MUTATION",
            "subscription" => "SUBSCRIPTION",
            _ => "QUERY",
        };
        for var in &op.variables {
            if let Some(default) = &var.default {
                let expected = Expected {
                    ty: Some(&var.ty),
                    def: self.get_type(var.ty.name()),
                    has_default: false,
                };
                self.walk_value(default, expected);
            }
            self.walk_directives(&var.directives, "VARIABLE_DEFINITION");
        }
        self.walk_directives(&op.directives, location);
        self.walk_selection_set(root, &op.selection_set);
        if !self.exhausted {
            self.on_operation(op, root);
        }
        self.current_op = None;
    }

    fn walk_fragment(&mut self, frag: &'a Fragment) {
        self.walking_at = frag.pos;
        let def = self.get_type(&frag.type_condition);
        self.walk_directives(&frag.directives, "FRAGMENT_DEFINITION");
        self.walk_selection_set(def, &frag.selection_set);
        if !self.exhausted {
            self.on_fragment(frag, def);
        }
    }

    fn walk_directives(&mut self, dirs: &'a [Directive], location: &'static str) {
        for dir in dirs {
            if self.exhausted {
                return;
            }
            let def = self.schema.directive(&dir.name);
            for arg in &dir.arguments {
                let arg_def = def.and_then(|d| schema::argument(&d.arguments, &arg.name));
                self.walk_argument(arg_def, arg);
            }
            self.on_directive(dir, location);
        }
        if !self.exhausted {
            self.on_directive_list(dirs);
        }
    }

    fn walk_argument(&mut self, def: Option<&'a ArgumentDefinition>, arg: &'a Argument) {
        let expected = match def {
            Some(d) => Expected {
                ty: Some(&d.ty),
                def: self.get_type(d.ty.name()),
                has_default: d.default.as_ref().is_some_and(|v| v.kind != ValueKind::Null),
            },
            None => Expected::default(),
        };
        self.walk_value(&arg.value, expected);
    }

    fn walk_value(&mut self, value: &'a Value, expected: Expected<'a>) {
        if !self.enter(value.pos) {
            return;
        }
        if value.kind == ValueKind::Variable
            && let Some(op) = self.current_op
        {
            match op.variables.iter().find(|v| v.variable == value.raw) {
                Some(var) => {
                    self.bound_variables.insert(value as *const Value, var);
                    self.used_variables.insert(var as *const VariableDefinition);
                }
                None => {
                    self.bound_variables.remove(&(value as *const Value));
                }
            }
        }
        match value.kind {
            ValueKind::Object => {
                for child in &value.children {
                    let field = expected.def.and_then(|d| self.schema.field(&d.name, &child.name));
                    let child_expected = match field {
                        Some(f) => Expected {
                            ty: Some(&f.ty),
                            def: self.get_type(f.ty.name()),
                            has_default: f.default.as_ref().is_some_and(|v| v.kind != ValueKind::Null),
                        },
                        None => Expected::default(),
                    };
                    self.walk_value(&child.value, child_expected);
                }
            }
            ValueKind::List => {
                for child in &value.children {
                    let child_expected = match expected.ty.and_then(|t| t.elem.as_deref()) {
                        Some(elem) => Expected {
                            ty: Some(elem),
                            def: expected.def,
                            has_default: false,
                        },
                        None => Expected::default(),
                    };
                    self.walk_value(&child.value, child_expected);
                }
            }
            _ => {}
        }
        if !self.exhausted {
            self.on_value(value, expected);
        }
        self.leave();
    }

    fn walk_selection_set(&mut self, parent: Option<&'a Definition>, set: &'a [Selection]) {
        for sel in set {
            if self.exhausted {
                return;
            }
            self.walk_selection(parent, sel);
        }
    }

    fn walk_selection(&mut self, parent: Option<&'a Definition>, sel: &'a Selection) {
        let pos = match sel {
            Selection::Field(f) => f.pos,
            Selection::FragmentSpread(s) => s.pos,
            Selection::InlineFragment(i) => i.pos,
        };
        if !self.enter(pos) {
            return;
        }
        match sel {
            Selection::Field(field) => {
                self.walked_fields.insert(field);
                let def = self.field_def(parent, &field.name);
                let next = def.and_then(|d| self.get_type(d.ty.name()));
                for arg in &field.arguments {
                    let arg_def = def.and_then(|d| schema::argument(&d.arguments, &arg.name));
                    self.walk_argument(arg_def, arg);
                }
                self.walk_directives(&field.directives, "FIELD");
                self.walk_selection_set(next, &field.selection_set);
                if !self.exhausted {
                    self.on_field(field, parent, def, next);
                }
            }
            Selection::InlineFragment(inline) => {
                let next = if inline.type_condition.is_empty() {
                    parent
                } else {
                    self.get_type(&inline.type_condition)
                };
                self.walk_directives(&inline.directives, "INLINE_FRAGMENT");
                self.walk_selection_set(next, &inline.selection_set);
                if !self.exhausted {
                    self.on_inline_fragment(inline, parent, next);
                }
            }
            Selection::FragmentSpread(spread) => {
                self.walked_spread_nodes.insert(spread);
                let frag = self.fragment(&spread.name);
                let next = frag.and_then(|f| self.get_type(&f.type_condition));
                self.walk_directives(&spread.directives, "FRAGMENT_SPREAD");
                if let Some(frag) = frag
                    && self.walked_spreads.insert(&frag.name)
                {
                    self.walk_directives(&frag.directives, "FRAGMENT_DEFINITION");
                    self.walk_selection_set(next, &frag.selection_set);
                }
                if !self.exhausted {
                    self.on_fragment_spread(spread, parent, frag);
                }
            }
        }
        self.leave();
    }

    // --- the rules, by the node they look at, in rule-name order ------------

    /// KnownTypeNames: a variable's type exists.
    fn on_variable(&mut self, var: &'a VariableDefinition) {
        if self.get_type(var.ty.name()).is_none() {
            self.error(var.pos, format!("Unknown type \"{}\".", var.ty.name()));
        }
    }

    fn on_operation(&mut self, op: &'a Operation, root: Option<&'a Definition>) {
        // KnownRootType: the schema has a root type for the operation.
        if root.is_none() {
            self.error(
                op.pos,
                format!("Schema does not support operation type \"{}\"", op.operation),
            );
        }

        // LoneAnonymousOperation: an operation without a name is the only one.
        if op.name.is_empty() && self.doc.operations.len() > 1 {
            self.error(
                op.pos,
                "This anonymous operation must be the only defined operation.".to_string(),
            );
        }

        // NoUnusedVariables: every variable defined is used, in the
        // operation or the fragments it spreads.
        for var in &op.variables {
            if self.used_variables.contains(&(var as *const VariableDefinition)) {
                continue;
            }
            let message = if op.name.is_empty() {
                format!("Variable \"${}\" is never used.", var.variable)
            } else {
                format!(
                    "Variable \"${}\" is never used in operation \"{}\".",
                    var.variable, op.name
                )
            };
            self.error(var.pos, message);
        }

        // OverlappingFieldsCanBeMerged
        self.overlapping_fields(&op.selection_set, root);

        // SingleFieldSubscriptions: a subscription selects one field, not an
        // introspection one.
        if op.operation == "subscription" && self.schema.root_type("subscription").is_some() {
            self.single_field_subscription(op);
        }

        // UniqueOperationNames
        if !self.operation_names.insert(&op.name) {
            self.error(
                op.pos,
                format!("There can be only one operation named \"{}\".", op.name),
            );
        }

        // UniqueVariableNames: reported once a name, at its second definition.
        let mut seen: HashMap<&str, usize> = HashMap::new();
        for var in &op.variables {
            let count = seen.entry(&var.variable).or_default();
            if *count == 1 {
                self.error(
                    var.pos,
                    format!("There can be only one variable named \"${}\".", var.variable),
                );
            }
            *count += 1;
        }

        // VariablesAreInputTypes
        for var in &op.variables {
            if let Some(def) = self.get_type(var.ty.name())
                && !schema::is_input_kind(def.kind)
            {
                self.error(
                    var.pos,
                    format!(
                        "Variable \"${}\" cannot be non-input type \"{}\".",
                        var.variable, var.ty
                    ),
                );
            }
        }
    }

    fn on_fragment(&mut self, frag: &'a Fragment, def: Option<&'a Definition>) {
        // FragmentsOnCompositeTypes
        if let Some(d) = def
            && !schema::is_composite_kind(d.kind)
        {
            self.error(
                frag.pos,
                format!(
                    "Fragment \"{}\" cannot condition on non composite type \"{}\".",
                    frag.name, frag.type_condition
                ),
            );
        }

        // KnownTypeNames
        if def.is_none() {
            let names: Vec<&str> = self.schema.types().iter().map(|t| t.name.as_str()).collect();
            let message = format!("Unknown type \"{}\".", frag.type_condition)
                + &self.suggest("Did you mean", &frag.type_condition, &names);
            self.error(frag.pos, message);
        }

        // NoFragmentCycles
        self.fragment_cycles(frag);

        // NoUnusedFragments: only spreads walked from operations count.
        self.in_fragment_definition = true;
        if !self.used_fragments.contains(frag.name.as_str()) {
            self.error(frag.pos, format!("Fragment \"{}\" is never used.", frag.name));
        }

        // OverlappingFieldsCanBeMerged
        self.overlapping_fields(&frag.selection_set, def);

        // UniqueFragmentNames
        if !self.fragment_names.insert(&frag.name) {
            self.error(
                frag.pos,
                format!("There can be only one fragment named \"{}\".", frag.name),
            );
        }
    }

    fn on_inline_fragment(
        &mut self,
        inline: &'a InlineFragment,
        parent: Option<&'a Definition>,
        next: Option<&'a Definition>,
    ) {
        let condition = self.get_type(&inline.type_condition);

        // FragmentsOnCompositeTypes
        if let Some(d) = condition
            && !schema::is_composite_kind(d.kind)
        {
            self.error(
                inline.pos,
                format!(
                    "Fragment cannot condition on non composite type \"{}\".",
                    inline.type_condition
                ),
            );
        }

        // KnownTypeNames
        if !inline.type_condition.is_empty() && condition.is_none() {
            self.error(inline.pos, format!("Unknown type \"{}\".", inline.type_condition));
        }

        // OverlappingFieldsCanBeMerged
        self.overlapping_fields(&inline.selection_set, next);

        // PossibleFragmentSpreads
        if let Some(p) = parent
            && !self.can_spread(p, &inline.type_condition)
        {
            self.error(
                inline.pos,
                format!(
                    "Fragment cannot be spread here as objects of type \"{}\" can never be of type \"{}\".",
                    p.name, inline.type_condition
                ),
            );
        }
    }

    fn on_fragment_spread(
        &mut self,
        spread: &'a FragmentSpread,
        parent: Option<&'a Definition>,
        frag: Option<&'a Fragment>,
    ) {
        // KnownFragmentNames
        if frag.is_none() {
            self.error(spread.pos, format!("Unknown fragment \"{}\".", spread.name));
        }

        // NoUnusedFragments
        if !self.in_fragment_definition {
            self.used_fragments.insert(&spread.name);
        }

        // PossibleFragmentSpreads
        if let (Some(p), Some(f)) = (parent, frag)
            && !self.can_spread(p, &f.type_condition)
        {
            self.error(
                spread.pos,
                format!(
                    "Fragment \"{}\" cannot be spread here as objects of type \"{}\" can never be of type \"{}\".",
                    spread.name, p.name, f.type_condition
                ),
            );
        }
    }

    /// Whether a fragment on `condition` may apply where `parent` is
    /// selected: some type is possible for both (or either is unknown, or
    /// not an object, interface or union).
    fn can_spread(&self, parent: &'a Definition, condition: &str) -> bool {
        let parents: Vec<&Definition> = match parent.kind {
            DefinitionKind::Object => vec![parent],
            DefinitionKind::Interface | DefinitionKind::Union => self.schema.possible_types(&parent.name).collect(),
            _ => return true,
        };
        let Some(frag_type) = self.get_type(condition) else {
            return true;
        };
        if !schema::is_composite_kind(frag_type.kind) {
            return true;
        }
        self.schema
            .possible_types(&frag_type.name)
            .any(|f| parents.iter().any(|p| p.name == f.name))
    }

    fn on_field(
        &mut self,
        field: &'a Field,
        parent: Option<&'a Definition>,
        def: Option<&'a FieldDefinition>,
        next: Option<&'a Definition>,
    ) {
        // FieldsOnCorrectType: the type selected on has the field.
        if let (Some(p), None) = (parent, def) {
            let mut message = format!("Cannot query field \"{}\" on type \"{}\".", field.name, p.name);
            let types = self.suggested_types(p, &field.name);
            if !types.is_empty() {
                message += &format!(" Did you mean to use an inline fragment on {}?", quoted_or_list(&types));
            } else if matches!(p.kind, DefinitionKind::Object | DefinitionKind::Interface) {
                let names: Vec<&str> = p.fields.iter().map(|f| f.name.as_str()).collect();
                message += &self.suggest("Did you mean", &field.name, &names);
            }
            self.error(field.pos, message);
        }

        // KnownArgumentNames
        if let (Some(p), Some(d)) = (parent, def) {
            for arg in &field.arguments {
                if schema::argument(&d.arguments, &arg.name).is_none() {
                    let names: Vec<&str> = d.arguments.iter().map(|a| a.name.as_str()).collect();
                    let message = format!(
                        "Unknown argument \"{}\" on field \"{}.{}\".",
                        arg.name, p.name, field.name
                    ) + &self.suggest("Did you mean", &arg.name, &names);
                    self.error(field.pos, message);
                }
            }
        }

        // MaxIntrospectionDepth: at most three nested lists of types or fields
        // under `__schema` or `__type`.
        if field.name == "__schema" || field.name == "__type" {
            let mut path = HashSet::new();
            if self.introspection_too_deep(field, &mut path, 0) {
                self.error(field.pos, "Maximum introspection depth exceeded".to_string());
            }
        }

        // OverlappingFieldsCanBeMerged (fragments have theirs checked on their
        // own)
        if self.current_op.is_some() {
            self.overlapping_fields(&field.selection_set, next);
        }

        // ProvidedRequiredArguments
        if let Some(d) = def {
            for arg_def in &d.arguments {
                if arg_def.ty.non_null
                    && arg_def.default.is_none()
                    && !field.arguments.iter().any(|a| a.name == arg_def.name)
                {
                    self.error(
                        field.pos,
                        format!(
                            "Field \"{}\" argument \"{}\" of type \"{}\" is required, but it was not provided.",
                            field.name, arg_def.name, arg_def.ty
                        ),
                    );
                }
            }
        }

        // ScalarLeafs: leaves have no selection, others one.
        if let (Some(d), Some(t)) = (def, next) {
            if schema::is_leaf_kind(t.kind) && !field.selection_set.is_empty() {
                self.error(
                    field.pos,
                    format!(
                        "Field \"{}\" must not have a selection since type \"{}\" has no subfields.",
                        field.name, t.name
                    ),
                );
            }
            if !schema::is_leaf_kind(t.kind) && field.selection_set.is_empty() {
                self.error(
                    field.pos,
                    format!(
                        "Field \"{}\" of type \"{}\" must have a selection of subfields. Did you mean \"{} {{ ... }}\"?",
                        field.name, d.ty, field.name
                    ),
                );
            }
        }

        // UniqueArgumentNames
        self.unique_arguments(&field.arguments);
    }

    /// The types to suggest an inline fragment on, for a field missing from
    /// an abstract type: the interfaces of its possible types that have the
    /// field, most used first, then the possible types that have it (names
    /// in byte order otherwise).
    fn suggested_types(&self, parent: &'a Definition, name: &str) -> Vec<&'a str> {
        if !matches!(parent.kind, DefinitionKind::Interface | DefinitionKind::Union) {
            return Vec::new();
        }
        let mut objects = Vec::new();
        let mut interfaces: Vec<&'a str> = Vec::new();
        let mut usage: HashMap<&'a str, usize> = HashMap::new();
        for possible in self.schema.possible_types(&parent.name) {
            if self.schema.field(&possible.name, name).is_none() {
                continue;
            }
            objects.push(possible.name.as_str());
            for interface in &possible.interfaces {
                if self
                    .get_type(interface)
                    .is_some_and(|i| self.schema.field(&i.name, name).is_some())
                {
                    let count = usage.entry(interface.as_str()).or_default();
                    if *count == 0 {
                        interfaces.push(interface.as_str());
                    }
                    *count += 1;
                }
            }
        }
        interfaces.sort_by(|a, b| usage.get(b).cmp(&usage.get(a)).then(a.cmp(b)));
        objects.sort();
        interfaces.extend(objects);
        interfaces
    }

    fn on_directive(&mut self, dir: &'a Directive, location: &str) {
        let def = self.schema.directive(&dir.name);

        // KnownArgumentNames
        if let Some(d) = def {
            for arg in &dir.arguments {
                if schema::argument(&d.arguments, &arg.name).is_none() {
                    let names: Vec<&str> = d.arguments.iter().map(|a| a.name.as_str()).collect();
                    let message = format!("Unknown argument \"{}\" on directive \"@{}\".", arg.name, dir.name)
                        + &self.suggest("Did you mean", &arg.name, &names);
                    self.error(dir.pos, message);
                }
            }
        }

        // KnownDirectives: declared, and allowed where it stands (reported
        // once a place, however often a fragment is walked).
        match def {
            None => self.error(dir.pos, format!("Unknown directive \"@{}\".", dir.name)),
            Some(d) if !d.locations.iter().any(|l| l == location) => {
                if dir.pos == Pos::default() {
                    // OPA dereferences the missing place and fails.
                    self.fail("runtime error: invalid memory address or nil pointer dereference");
                } else if self
                    .misplaced_directives
                    .insert((dir.name.as_str(), dir.pos.line, dir.pos.column))
                {
                    self.error(
                        dir.pos,
                        format!("Directive \"@{}\" may not be used on {location}.", dir.name),
                    );
                }
            }
            Some(_) => {}
        }

        // ProvidedRequiredArguments
        if let Some(d) = def {
            for arg_def in &d.arguments {
                if arg_def.ty.non_null
                    && arg_def.default.is_none()
                    && !dir.arguments.iter().any(|a| a.name == arg_def.name)
                {
                    self.error(
                        dir.pos,
                        format!(
                            "Directive \"@{}\" argument \"{}\" of type \"{}\" is required, but it was not provided.",
                            d.name, arg_def.name, arg_def.ty
                        ),
                    );
                }
            }
        }

        // UniqueArgumentNames
        self.unique_arguments(&dir.arguments);
    }

    /// UniqueDirectivesPerLocation: a directive that is not repeatable
    /// stands once where it stands.
    fn on_directive_list(&mut self, dirs: &'a [Directive]) {
        let mut seen = HashSet::new();
        for dir in dirs {
            let repeatable = self.schema.directive(&dir.name).is_some_and(|d| d.repeatable);
            if !seen.insert(dir.name.as_str()) && !repeatable {
                self.error(
                    dir.pos,
                    format!(
                        "The directive \"@{}\" can only be used once at this location.",
                        dir.name
                    ),
                );
            }
        }
    }

    /// UniqueArgumentNames: each argument is given once.
    fn unique_arguments(&mut self, args: &'a [Argument]) {
        let mut seen = HashSet::new();
        for arg in args {
            if !seen.insert(arg.name.as_str()) {
                self.error(
                    arg.pos,
                    format!("There can be only one argument named \"{}\".", arg.name),
                );
            }
        }
    }

    fn on_value(&mut self, value: &'a Value, expected: Expected<'a>) {
        let bound = self.bound_variables.get(&(value as *const Value)).copied();

        // NoUndefinedVariables
        if let Some(op) = self.current_op
            && value.kind == ValueKind::Variable
            && bound.is_none()
        {
            let message = if op.name.is_empty() {
                format!("Variable \"${}\" is not defined.", value.raw)
            } else {
                format!(
                    "Variable \"${}\" is not defined by operation \"{}\".",
                    value.raw, op.name
                )
            };
            self.error(value.pos, message);
        }

        // UniqueInputFieldNames
        if value.kind == ValueKind::Object {
            let mut seen = HashSet::new();
            for child in &value.children {
                if !seen.insert(child.name.as_str()) {
                    self.error(
                        child.pos,
                        format!("There can be only one input field named \"{}\".", child.name),
                    );
                }
            }
        }

        // ValuesOfCorrectType
        if let (Some(ty), Some(def)) = (expected.ty, expected.def) {
            self.value_of_correct_type(value, ty, def);
        }

        // VariablesInAllowedPosition: the variable's type fits where it is
        // used (a variable with a default, or an argument with one, may be
        // nullable where a non-null value is expected).
        if let (ValueKind::Variable, Some(ty), Some(var), true) =
            (value.kind, expected.ty, bound, self.current_op.is_some())
        {
            let var_has_default = var.default.as_ref().is_some_and(|d| d.kind != ValueKind::Null);
            let mut allowed = ty.clone();
            if var_has_default || expected.has_default {
                allowed.non_null = false;
            }
            if !schema::is_compatible(&var.ty, &allowed) {
                self.error(
                    value.pos,
                    format!(
                        "Variable \"${}\" of type \"{}\" used in position expecting type \"{}\".",
                        value.raw, var.ty, ty
                    ),
                );
            }
        }
    }

    /// ValuesOfCorrectType: a literal fits the type expected where it
    /// stands (custom scalars accept anything).
    fn value_of_correct_type(&mut self, value: &'a Value, ty: &'a Type, def: &'a Definition) {
        if value.kind == ValueKind::Null && ty.non_null {
            self.error(
                value.pos,
                format!("Expected value of type \"{ty}\", found {}.", value_string(value)),
            );
        }
        if def.kind == DefinitionKind::Scalar && !is_builtin_scalar(&def.name) {
            return;
        }
        let enum_values: Vec<&str> = if def.kind == DefinitionKind::Enum {
            def.enum_values.iter().map(|v| v.name.as_str()).collect()
        } else {
            Vec::new()
        };
        if !self.value_readable(value, 0) {
            self.error(value.pos, unexpected_type(value, ty, def));
        }
        let named = def.name.as_str();
        match value.kind {
            ValueKind::Null | ValueKind::Variable => {}
            ValueKind::List => {
                if ty.elem.is_none() {
                    self.error(value.pos, unexpected_type(value, ty, def));
                }
            }
            ValueKind::Int => {
                if !matches!(named, "Int" | "Float" | "ID") {
                    self.error(value.pos, unexpected_type(value, ty, def));
                }
            }
            ValueKind::Float => {
                if named != "Float" {
                    self.error(value.pos, unexpected_type(value, ty, def));
                }
            }
            ValueKind::String | ValueKind::Block => {
                if def.kind == DefinitionKind::Enum {
                    let message = format!(
                        "Enum \"{ty}\" cannot represent non-enum value: {}.",
                        value_string(value)
                    ) + &self.suggest("Did you mean the enum value", &value.raw, &enum_values);
                    self.error(value.pos, message);
                } else if !matches!(named, "String" | "ID") {
                    self.error(value.pos, unexpected_type(value, ty, def));
                }
            }
            ValueKind::Enum => {
                if def.kind != DefinitionKind::Enum {
                    self.error(value.pos, unexpected_type(value, ty, def));
                } else if !enum_values.contains(&value.raw.as_str()) {
                    let message = format!("Value \"{}\" does not exist in \"{ty}\" enum.", value_string(value))
                        + &self.suggest("Did you mean the enum value", &value.raw, &enum_values);
                    self.error(value.pos, message);
                }
            }
            ValueKind::Boolean => {
                if named != "Boolean" {
                    self.error(value.pos, unexpected_type(value, ty, def));
                }
            }
            ValueKind::Object => self.object_of_correct_type(value, def),
        }
    }

    /// An input object literal: required fields given, `@oneOf` objects
    /// given exactly one non-null field, only fields the type has.
    fn object_of_correct_type(&mut self, value: &'a Value, def: &'a Definition) {
        if !self.steps_n(value.children.len() + def.fields.len(), value.pos) {
            return;
        }
        let given: HashSet<&str> = value.children.iter().map(|c| c.name.as_str()).collect();
        for f in &def.fields {
            if f.ty.non_null && f.default.is_none() && !given.contains(f.name.as_str()) {
                self.error(
                    value.pos,
                    format!(
                        "Field \"{}.{}\" of required type \"{}\" was not provided.",
                        def.name, f.name, f.ty
                    ),
                );
            }
        }
        let one_of = def.directives.iter().any(|d| d.name == "oneOf");
        if one_of {
            if value.children.len() != 1 {
                self.error(
                    value.pos,
                    format!("OneOf Input Object \"{}\" must specify exactly one key.", def.name),
                );
            } else if let Some(child) = value.children.first().filter(|c| c.value.kind == ValueKind::Null) {
                // OPA names the type's first field here, whichever was given.
                let first = def.fields.first().map_or("", |f| f.name.as_str());
                self.error(
                    child.value.pos,
                    format!("Field \"{}.{first}\" must be non-null.", def.name),
                );
            }
        }
        let names: Vec<&str> = def.fields.iter().map(|f| f.name.as_str()).collect();
        for child in &value.children {
            if self.schema.field(&def.name, &child.name).is_none() {
                let message = format!("Field \"{}\" is not defined by type \"{}\".", child.name, def.name)
                    + &self.suggest("Did you mean", &child.name, &names);
                self.error(child.pos, message);
            }
        }
        if one_of {
            for child in &value.children {
                if child.value.kind != ValueKind::Variable {
                    continue;
                }
                let Some(var) = self.bound_variables.get(&(&child.value as *const Value)).copied() else {
                    continue;
                };
                if !var.ty.non_null {
                    self.error(
                        var.pos,
                        format!(
                            "Variable \"${}\" is of type \"{}\" but must be non-nullable to be used for OneOf Input Object \"{}\".",
                            child.value.raw, var.ty, def.name
                        ),
                    );
                }
            }
        }
    }

    /// Whether OPA can read the literal as a Go value: integers within 64
    /// bits, finite floats, through lists, objects and the default of the
    /// variable it refers to.
    fn value_readable(&self, value: &'a Value, depth: usize) -> bool {
        if depth > MAX_DEPTH {
            return true;
        }
        match value.kind {
            ValueKind::Int => parse_go_int(&value.raw, 64).is_ok(),
            ValueKind::Float => go_float_ok(&value.raw),
            ValueKind::Boolean => {
                matches!(
                    value.raw.as_str(),
                    "1" | "t" | "T" | "TRUE" | "true" | "True" | "0" | "f" | "F" | "FALSE" | "false" | "False"
                )
            }
            ValueKind::List | ValueKind::Object => {
                value.children.iter().all(|c| self.value_readable(&c.value, depth + 1))
            }
            ValueKind::Variable => match self.bound_variables.get(&(value as *const Value)) {
                Some(var) => var.default.as_ref().is_none_or(|d| self.value_readable(d, depth + 1)),
                None => true,
            },
            ValueKind::String | ValueKind::Block | ValueKind::Enum | ValueKind::Null => true,
        }
    }

    // --- fragments ----------------------------------------------------------

    /// NoFragmentCycles: no fragment spreads itself, directly or through
    /// others. Each fragment is followed once per validation (depth first,
    /// on a stack of our own rather than the call stack).
    fn fragment_cycles(&mut self, start: &'a Fragment) {
        /// A fragment being followed: its spreads, the next to follow, and
        /// whether finishing it ends the spread that led to it.
        struct Frame<'f> {
            name: &'f str,
            spreads: Vec<&'f FragmentSpread>,
            next: usize,
            pops_path: bool,
        }
        let mut path: Vec<&'a FragmentSpread> = Vec::new();
        let mut index_by_name: HashMap<&'a str, usize> = HashMap::new();
        let mut stack: Vec<Frame<'a>> = Vec::new();

        if let Some(spreads) = self.cycle_spreads(start) {
            index_by_name.insert(&start.name, 0);
            stack.push(Frame {
                name: &start.name,
                spreads,
                next: 0,
                pops_path: false,
            });
        }
        while let Some(top) = stack.last_mut() {
            let Some(&spread) = top.spreads.get(top.next) else {
                index_by_name.remove(top.name);
                if top.pops_path {
                    path.pop();
                }
                stack.pop();
                continue;
            };
            top.next += 1;
            if !self.step(spread.pos) {
                return;
            }
            let cycle_at = index_by_name.get(spread.name.as_str()).copied();
            path.push(spread);
            match cycle_at {
                None => {
                    if let Some(frag) = self.fragment(&spread.name)
                        && let Some(spreads) = self.cycle_spreads(frag)
                    {
                        index_by_name.insert(&frag.name, path.len());
                        stack.push(Frame {
                            name: &frag.name,
                            spreads,
                            next: 0,
                            pops_path: true,
                        });
                        continue;
                    }
                }
                Some(at) => {
                    let via: Vec<String> = path[at..path.len() - 1]
                        .iter()
                        .map(|s| format!("\"{}\"", s.name))
                        .collect();
                    let via = if via.is_empty() {
                        String::new()
                    } else {
                        format!(" via {}", via.join(", "))
                    };
                    self.error(
                        spread.pos,
                        format!("Cannot spread fragment \"{}\" within itself{via}.", spread.name),
                    );
                }
            }
            path.pop();
        }
    }

    /// The spreads to follow from a fragment not followed before; none if
    /// it was, or has none.
    fn cycle_spreads(&mut self, frag: &'a Fragment) -> Option<Vec<&'a FragmentSpread>> {
        if !self.cycle_checked.insert(&frag.name) {
            return None;
        }
        let spreads = self.spreads_in(&frag.selection_set);
        (!spreads.is_empty()).then_some(spreads)
    }

    /// The fragment spreads in a selection set, at any depth, in the order
    /// OPA finds them (a set's own spreads, then its subsets', last first).
    fn spreads_in(&mut self, set: &'a [Selection]) -> Vec<&'a FragmentSpread> {
        let mut spreads = Vec::new();
        let mut to_visit = vec![set];
        while let Some(set) = to_visit.pop() {
            for sel in set {
                if !self.step(Pos::default()) {
                    return spreads;
                }
                match sel {
                    Selection::FragmentSpread(s) => spreads.push(s),
                    Selection::Field(f) => to_visit.push(&f.selection_set),
                    Selection::InlineFragment(i) => to_visit.push(&i.selection_set),
                }
            }
        }
        spreads
    }

    /// Whether, under an introspection field, lists of types or fields nest
    /// three deep. `path` holds the fragments being followed.
    fn introspection_too_deep(&mut self, field: &'a Field, path: &mut HashSet<&'a str>, depth: usize) -> bool {
        let mut depth = depth;
        if matches!(
            field.name.as_str(),
            "fields" | "interfaces" | "possibleTypes" | "inputFields"
        ) {
            depth += 1;
            if depth >= 3 {
                return true;
            }
        }
        if !self.enter(field.pos) {
            return false;
        }
        let found = self.introspection_set_too_deep(&field.selection_set, path, depth);
        self.leave();
        found
    }

    fn introspection_set_too_deep(&mut self, set: &'a [Selection], path: &mut HashSet<&'a str>, depth: usize) -> bool {
        for sel in set {
            if self.exhausted {
                return false;
            }
            let found = match sel {
                Selection::Field(f) => self.introspection_too_deep(f, path, depth),
                Selection::FragmentSpread(s) => {
                    let Some(frag) = self.spread_fragment(s) else { continue };
                    if !path.insert(&s.name) {
                        continue;
                    }
                    let found = self.enter(s.pos) && {
                        let found = self.introspection_set_too_deep(&frag.selection_set, path, depth);
                        self.leave();
                        found
                    };
                    path.remove(s.name.as_str());
                    found
                }
                Selection::InlineFragment(i) => {
                    self.enter(i.pos) && {
                        let found = self.introspection_set_too_deep(&i.selection_set, path, depth);
                        self.leave();
                        found
                    }
                }
            };
            if found {
                return true;
            }
        }
        false
    }

    /// SingleFieldSubscriptions over the fields the subscription selects,
    /// through fragments (each once), the first of each name kept. An
    /// unknown fragment ends the set it is spread in.
    fn single_field_subscription(&mut self, op: &'a Operation) {
        let mut fields: Vec<&'a Field> = Vec::new();
        let mut followed = HashSet::new();
        self.top_fields(&op.selection_set, &mut fields, &mut followed);
        let mut seen = HashSet::new();
        fields.retain(|f| seen.insert(f.name.as_str()));
        let name = if op.name.is_empty() {
            "Anonymous Subscription".to_string()
        } else {
            format!("Subscription {}", go_quote(&op.name))
        };
        if let Some(second) = fields.get(1) {
            self.error(second.pos, format!("{name} must select only one top level field."));
        }
        for f in &fields {
            if f.name.starts_with("__") {
                self.error(
                    f.pos,
                    format!("{name} must not select an introspection top level field."),
                );
            }
        }
    }

    fn top_fields(&mut self, set: &'a [Selection], fields: &mut Vec<&'a Field>, followed: &mut HashSet<&'a str>) {
        for sel in set {
            match sel {
                Selection::Field(f) => fields.push(f),
                Selection::InlineFragment(i) => {
                    if self.enter(i.pos) {
                        self.top_fields(&i.selection_set, fields, followed);
                        self.leave();
                    }
                }
                Selection::FragmentSpread(s) => {
                    let Some(frag) = self.spread_fragment(s) else { return };
                    if followed.insert(&frag.name) && self.enter(s.pos) {
                        self.top_fields(&frag.selection_set, fields, followed);
                        self.leave();
                    }
                }
            }
        }
    }

    // --- OverlappingFieldsCanBeMerged ---------------------------------------
    //
    // Fields of one response name must be the same field with the same
    // arguments (unless on different object types), must not return
    // conflicting types, and their subfields must merge likewise. The
    // comparison is the reference algorithm's: fields within each
    // selection set, then against the fragments it spreads, fragments
    // against each other (each pair once a validation).

    fn overlapping_fields(&mut self, set: &'a [Selection], parent: Option<&'a Definition>) {
        if set.is_empty() || self.exhausted {
            return;
        }
        let (fields, spreads) = self.collect_fields(set, parent);
        let mut conflicts = Vec::new();
        self.conflicts_within(&mut conflicts, &fields);
        self.compared_fragments.clear();
        for (i, a) in spreads.iter().enumerate() {
            self.conflicts_with_fragment(&mut conflicts, false, &fields, a);
            for b in &spreads[i + 1..] {
                self.conflicts_between_fragments(&mut conflicts, false, a, b);
            }
        }
        for c in conflicts {
            let mut reason = String::new();
            c.describe(&mut reason);
            self.error(
                c.pos,
                format!(
                    "Fields \"{}\" conflict because {reason}. Use different aliases on the fields to fetch both if this was intentional.",
                    c.response_name
                ),
            );
        }
    }

    /// The fields of a selection set and its inline fragments, by response
    /// name, and the fragments it spreads.
    fn collect_fields(
        &mut self,
        set: &'a [Selection],
        parent: Option<&'a Definition>,
    ) -> (FieldMap<'a>, Vec<&'a FragmentSpread>) {
        let mut fields = FieldMap::default();
        let mut spreads = Vec::new();
        let mut to_visit = vec![(set, parent, 0usize)];
        // Depth-first, in document order: a stack of (set, parent, next index).
        while let Some((set, parent, index)) = to_visit.pop() {
            let Some(sel) = set.get(index) else { continue };
            to_visit.push((set, parent, index + 1));
            if !self.step(Pos::default()) {
                break;
            }
            match sel {
                Selection::Field(f) => {
                    // A field not walked yet has no type or definition.
                    let (parent, def) = if self.walked_fields.contains(&(f as *const Field)) {
                        (parent, self.field_def(parent, &f.name))
                    } else {
                        (None, None)
                    };
                    fields.push(&f.alias, FieldRef { field: f, parent, def });
                }
                Selection::InlineFragment(i) => {
                    let next = if i.type_condition.is_empty() {
                        parent
                    } else {
                        self.get_type(&i.type_condition)
                    };
                    to_visit.push((&i.selection_set, next, 0));
                }
                Selection::FragmentSpread(s) => spreads.push(s),
            }
        }
        (fields, spreads)
    }

    /// The selection set of a fragment, on its type condition.
    fn fragment_fields(&mut self, frag: &'a Fragment) -> (FieldMap<'a>, Vec<&'a FragmentSpread>) {
        let parent = self.get_type(&frag.type_condition);
        self.collect_fields(&frag.selection_set, parent)
    }

    fn conflicts_within(&mut self, conflicts: &mut Vec<Conflict>, fields: &FieldMap<'a>) {
        for (_, same_name) in &fields.entries {
            for (i, a) in same_name.iter().enumerate() {
                for b in &same_name[i + 1..] {
                    if let Some(c) = self.find_conflict(false, a, b) {
                        conflicts.push(c);
                    }
                }
            }
        }
    }

    fn conflicts_between(
        &mut self,
        conflicts: &mut Vec<Conflict>,
        exclusive: bool,
        a: &FieldMap<'a>,
        b: &FieldMap<'a>,
    ) {
        for (name, fields_a) in &a.entries {
            if !self.step(Pos::default()) {
                return;
            }
            let Some(fields_b) = b.get(name) else { continue };
            for fa in fields_a {
                for fb in fields_b {
                    if let Some(c) = self.find_conflict(exclusive, fa, fb) {
                        conflicts.push(c);
                    }
                }
            }
        }
    }

    fn conflicts_with_fragment(
        &mut self,
        conflicts: &mut Vec<Conflict>,
        exclusive: bool,
        fields: &FieldMap<'a>,
        spread: &'a FragmentSpread,
    ) {
        if !self.compared_fragments.insert(&spread.name) {
            return;
        }
        let Some(frag) = self.spread_fragment(spread) else {
            return;
        };
        if !self.enter(spread.pos) {
            return;
        }
        let (fields_b, spreads_b) = self.fragment_fields(frag);
        if !fields.same_as(&fields_b) {
            self.conflicts_between(conflicts, exclusive, fields, &fields_b);
            for s in spreads_b {
                if s.name != spread.name {
                    self.conflicts_with_fragment(conflicts, exclusive, fields, s);
                }
            }
        }
        self.leave();
    }

    fn conflicts_between_fragments(
        &mut self,
        conflicts: &mut Vec<Conflict>,
        exclusive: bool,
        a: &'a FragmentSpread,
        b: &'a FragmentSpread,
    ) {
        if a.name == b.name {
            return;
        }
        let key = (a.name.as_str(), b.name.as_str());
        if let Some(&was_exclusive) = self.compared_fragment_pairs.get(&key)
            && (exclusive || !was_exclusive)
        {
            return;
        }
        self.compared_fragment_pairs.insert(key, exclusive);
        self.compared_fragment_pairs
            .insert((b.name.as_str(), a.name.as_str()), exclusive);
        let (Some(frag_a), Some(frag_b)) = (self.spread_fragment(a), self.spread_fragment(b)) else {
            return;
        };
        if !self.enter(b.pos) {
            return;
        }
        let (fields_a, spreads_a) = self.fragment_fields(frag_a);
        let (fields_b, spreads_b) = self.fragment_fields(frag_b);
        self.conflicts_between(conflicts, exclusive, &fields_a, &fields_b);
        for s in spreads_b {
            self.conflicts_between_fragments(conflicts, exclusive, a, s);
        }
        for s in spreads_a {
            self.conflicts_between_fragments(conflicts, exclusive, s, b);
        }
        self.leave();
    }

    fn conflicts_between_subselections(
        &mut self,
        exclusive: bool,
        set_a: &'a [Selection],
        parent_a: Option<&'a Definition>,
        set_b: &'a [Selection],
        parent_b: Option<&'a Definition>,
    ) -> Vec<Conflict> {
        let mut conflicts = Vec::new();
        let (fields_a, spreads_a) = self.collect_fields(set_a, parent_a);
        let (fields_b, spreads_b) = self.collect_fields(set_b, parent_b);
        self.conflicts_between(&mut conflicts, exclusive, &fields_a, &fields_b);
        for s in &spreads_b {
            self.compared_fragments.clear();
            self.conflicts_with_fragment(&mut conflicts, exclusive, &fields_a, s);
        }
        for s in &spreads_a {
            self.compared_fragments.clear();
            self.conflicts_with_fragment(&mut conflicts, exclusive, &fields_b, s);
        }
        for a in &spreads_a {
            for b in &spreads_b {
                self.conflicts_between_fragments(&mut conflicts, exclusive, a, b);
            }
        }
        conflicts
    }

    fn find_conflict(&mut self, parent_exclusive: bool, a: &FieldRef<'a>, b: &FieldRef<'a>) -> Option<Conflict> {
        let (Some(parent_a), Some(parent_b)) = (a.parent, b.parent) else {
            return None;
        };
        if !self.enter(b.field.pos) {
            return None;
        }
        let exclusive = parent_exclusive
            || (parent_a.name != parent_b.name
                && parent_a.kind == DefinitionKind::Object
                && parent_b.kind == DefinitionKind::Object
                && a.def.is_some()
                && b.def.is_some());
        let conflict = |message: String| Conflict {
            response_name: a.field.alias.clone(),
            message,
            sub: Vec::new(),
            pos: b.field.pos,
        };
        let types = match (a.def, b.def) {
            (Some(da), Some(db)) if self.types_conflict(&da.ty, &db.ty) => Some((&da.ty, &db.ty)),
            _ => None,
        };
        let found = if !exclusive && a.field.name != b.field.name {
            Some(conflict(format!(
                "\"{}\" and \"{}\" are different fields",
                a.field.name, b.field.name
            )))
        } else if !exclusive && !same_arguments(&a.field.arguments, &b.field.arguments) {
            Some(conflict("they have differing arguments".to_string()))
        } else if let Some((ta, tb)) = types {
            Some(conflict(format!("they return conflicting types \"{ta}\" and \"{tb}\"")))
        } else {
            let next_a = a.def.and_then(|d| self.get_type(d.ty.name()));
            let next_b = b.def.and_then(|d| self.get_type(d.ty.name()));
            let sub = self.conflicts_between_subselections(
                exclusive,
                &a.field.selection_set,
                next_a,
                &b.field.selection_set,
                next_b,
            );
            (!sub.is_empty()).then(|| Conflict {
                sub,
                ..conflict(String::new())
            })
        };
        self.leave();
        found
    }

    /// Whether two field types cannot be merged: lists or non-null in one
    /// and not the other, or different leaf types.
    fn types_conflict(&self, a: &Type, b: &Type) -> bool {
        match (&a.elem, &b.elem) {
            (Some(ea), Some(eb)) => return self.types_conflict(ea, eb),
            (Some(_), None) | (None, Some(_)) => return true,
            (None, None) => {}
        }
        if a.non_null != b.non_null {
            return true;
        }
        match (self.get_type(&a.named), self.get_type(&b.named)) {
            (Some(ta), Some(tb)) if schema::is_leaf_kind(ta.kind) && schema::is_leaf_kind(tb.kind) => {
                ta.name != tb.name
            }
            _ => false,
        }
    }
}

/// The same arguments: as many, each matched by name, kind and text (any
/// two lists or objects match, as OPA compares them).
fn same_arguments(a: &[Argument], b: &[Argument]) -> bool {
    a.len() == b.len()
        && a.iter().all(|x| {
            b.iter()
                .any(|y| x.name == y.name && x.value.kind == y.value.kind && x.value.raw == y.value.raw)
        })
}

fn is_builtin_scalar(name: &str) -> bool {
    matches!(name, "Int" | "Float" | "String" | "Boolean" | "ID")
}

/// A literal written as OPA writes it in messages: strings quoted, lists
/// and objects compactly, variables with their `$`.
fn value_string(value: &Value) -> String {
    let mut out = String::new();
    write_value(value, &mut out, 0);
    out
}

fn write_value(value: &Value, out: &mut String, depth: usize) {
    if depth > MAX_DEPTH {
        return;
    }
    match value.kind {
        ValueKind::Variable => {
            out.push('$');
            out.push_str(&value.raw);
        }
        ValueKind::String | ValueKind::Block => out.push_str(&go_quote(&value.raw)),
        ValueKind::List => {
            out.push('[');
            for (i, c) in value.children.iter().enumerate() {
                if i > 0 {
                    out.push(',');
                }
                write_value(&c.value, out, depth + 1);
            }
            out.push(']');
        }
        ValueKind::Object => {
            out.push('{');
            for (i, c) in value.children.iter().enumerate() {
                if i > 0 {
                    out.push(',');
                }
                out.push_str(&c.name);
                out.push(':');
                write_value(&c.value, out, depth + 1);
            }
            out.push('}');
        }
        _ => out.push_str(&value.raw),
    }
}

/// The message for a literal of the wrong kind, by the type expected.
fn unexpected_type(value: &Value, ty: &Type, def: &Definition) -> String {
    let shown = value_string(value);
    match ty.to_string().as_str() {
        "Int" | "Int!" => {
            if parse_go_int(&value.raw, 32) == Err(GoIntError::Range) {
                format!("Int cannot represent non 32-bit signed integer value: {shown}")
            } else {
                format!("Int cannot represent non-integer value: {shown}")
            }
        }
        "String" | "String!" | "[String]" => format!("String cannot represent a non string value: {shown}"),
        "Boolean" | "Boolean!" => format!("Boolean cannot represent a non boolean value: {shown}"),
        "Float" | "Float!" => format!("Float cannot represent non numeric value: {shown}"),
        "ID" | "ID!" => format!("ID cannot represent a non-string and non-integer value: {shown}"),
        _ if def.kind == DefinitionKind::Enum => format!("Enum \"{ty}\" cannot represent non-enum value: {shown}."),
        _ => format!("Expected value of type \"{ty}\", found {shown}."),
    }
}

#[derive(Debug, PartialEq)]
enum GoIntError {
    Syntax,
    Range,
}

/// Go's `strconv.ParseInt(s, 10, bits)`: an optional sign and decimal
/// digits, within `bits` signed bits.
fn parse_go_int(s: &str, bits: u32) -> Result<i64, GoIntError> {
    let digits = s.strip_prefix(['+', '-']).unwrap_or(s);
    if digits.is_empty() || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return Err(GoIntError::Syntax);
    }
    let negative = s.starts_with('-');
    let limit: i128 = 1 << (bits - 1);
    let mut n: i128 = 0;
    for b in digits.bytes() {
        n = n * 10 + i128::from(b - b'0');
        if n > limit {
            return Err(GoIntError::Range);
        }
    }
    let n = if negative { -n } else { n };
    if n >= limit || n < -limit {
        return Err(GoIntError::Range);
    }
    i64::try_from(n).map_err(|_| GoIntError::Range)
}

/// Go's `strconv.ParseFloat(s, 64)` succeeds: the text is a number whose
/// value is finite (or names infinity or NaN itself).
fn go_float_ok(s: &str) -> bool {
    match s.parse::<f64>() {
        Ok(f) => {
            f.is_finite() || {
                let t = s.trim_start_matches(['+', '-']).to_ascii_lowercase();
                t == "inf" || t == "infinity"
            }
        }
        Err(_) => false,
    }
}

/// ` prefix "A", "B", or "C"?` for the options close to `typed`, or nothing.
fn suggest_quoted(prefix: &str, typed: &str, options: &[&str]) -> String {
    let suggested = suggestion_list(typed, options);
    if suggested.is_empty() {
        return String::new();
    }
    format!(" {prefix} {}?", quoted_or_list(&suggested))
}

/// `"A"`, `"A" or "B"`, `"A", "B", or "C"`: at most five.
fn quoted_or_list(items: &[&str]) -> String {
    let items: Vec<String> = items.iter().take(5).map(|i| format!("\"{i}\"")).collect();
    match items.len() {
        2 => format!("{} or {}", items[0], items[1]),
        n => {
            let mut out = String::new();
            for (i, item) in items.iter().enumerate() {
                if i != 0 {
                    out.push_str(if i == n - 1 { ", or " } else { ", " });
                }
                out.push_str(item);
            }
            out
        }
    }
}

/// The options within an edit distance of 40% of `typed`'s length (plus
/// one) of it, closest first (ties in the order given). A change of case
/// alone counts one edit.
fn suggestion_list<'s>(typed: &str, options: &[&'s str]) -> Vec<&'s str> {
    let threshold = typed.len() * 2 / 5 + 1;
    let typed_lower = typed.to_lowercase();
    let typed_chars: Vec<char> = typed_lower.chars().collect();
    let mut found: Vec<(usize, &'s str)> = Vec::new();
    for &option in options {
        let distance = if option == typed {
            0
        } else {
            let lower = option.to_lowercase();
            if lower == typed_lower {
                1
            } else {
                let chars: Vec<char> = lower.chars().collect();
                if chars.len().abs_diff(typed_chars.len()) > threshold {
                    continue;
                }
                levenshtein(&typed_chars, &chars)
            }
        };
        if distance <= threshold {
            found.push((distance, option));
        }
    }
    found.sort_by_key(|&(d, _)| d);
    found.into_iter().map(|(_, o)| o).collect()
}

/// Edits (insertions, deletions, substitutions) from `a` to `b`.
fn levenshtein(a: &[char], b: &[char]) -> usize {
    let mut prev: Vec<usize> = (0..=b.len()).collect();
    let mut cur = vec![0; b.len() + 1];
    for (i, ca) in a.iter().enumerate() {
        cur[0] = i + 1;
        for (j, cb) in b.iter().enumerate() {
            let cost = usize::from(ca != cb);
            cur[j + 1] = (prev[j] + cost).min(prev[j + 1] + 1).min(cur[j] + 1);
        }
        std::mem::swap(&mut prev, &mut cur);
    }
    prev[b.len()]
}

#[cfg(test)]
mod tests {
    use super::super::parser::{parse_query, parse_schema};
    use super::super::schema;
    use super::*;

    /// The schema the rule tests validate against.
    const SCHEMA: &str = r#"type Query { a(x: Int, y: Int!): Int s(t: String, e: E, i: I, l: [Int], id: ID, f: Float, b: Boolean): String q: Query c: C u: U o(o: O): Int }
interface C { a: Int }
type O1 implements C { a: Int x: Int }
type O2 implements C { a: Int x: String }
union U = O1 | O2
enum E { RED GREEN }
input I { a: Int! b: String }
input O @oneOf { a: Int b: String }
type Subscription { s: Int t: Int }
directive @r repeatable on FIELD"#;

    fn accepts(query: &str) {
        let errors = run(SCHEMA, query).expect("no failure");
        assert!(errors.is_empty(), "{query}: {}", error_text(&errors));
    }

    /// OPA's message for the query, after "graphql.parse: ".
    fn refuses(query: &str, opa: &str) {
        let errors = run(SCHEMA, query).expect("no failure");
        assert_eq!(error_text(&errors), opa, "{query}");
    }

    /// As [`refuses`], with lines and columns left out of the comparison:
    /// for errors placed at a directive's name, a string, a fragment
    /// spread's name or an inline fragment, whose places the parser gives
    /// differently.
    fn refuses_unplaced(query: &str, opa: &str) {
        let unplaced = |s: &str| {
            let re = regex::Regex::new(r"\d+:\d+").expect("regex");
            re.replace_all(s, "L:C").into_owned()
        };
        let errors = run(SCHEMA, query).expect("no failure");
        assert_eq!(unplaced(&error_text(&errors)), unplaced(opa), "{query}");
    }

    /// FieldsOnCorrectType
    #[test]
    fn fields_on_correct_type() {
        accepts(r#"{ q { a(y: 1) } c { __typename ... on O1 { x } } }"#);
        refuses(
            r#"{ q { b } c { x } u { a } }"#,
            "Cannot query field \"b\" on type \"Query\". Did you mean \"a\", \"s\", \"q\", \"c\", or \"u\"?\ninput:1:15: Cannot query field \"x\" on type \"C\". Did you mean to use an inline fragment on \"O1\" or \"O2\"?\ninput:1:23: Cannot query field \"a\" on type \"U\". Did you mean to use an inline fragment on \"C\", \"O1\", or \"O2\"?\n in GraphQL string at location 1:7",
        );
    }

    /// FragmentsOnCompositeTypes
    #[test]
    fn fragments_on_composite_types() {
        accepts(r#"{ ... on Query { q { __typename } } }"#);
        refuses_unplaced(
            r#"{ ... on E { __typename } ...F } fragment F on I { __typename }"#,
            "Fragment cannot condition on non composite type \"E\".\ninput:1:34: Fragment \"F\" cannot condition on non composite type \"I\" in GraphQL string at location 1:7",
        );
    }

    /// KnownArgumentNames
    #[test]
    fn known_argument_names() {
        accepts(r#"{ a(y: 1, x: 2) @skip(if: false) }"#);
        refuses_unplaced(
            r#"{ a(y: 1, z: 2) @skip(iff: true, if: true) }"#,
            "Unknown argument \"iff\" on directive \"@skip\". Did you mean \"if\"?\ninput:1:3: Unknown argument \"z\" on field \"Query.a\". Did you mean \"x\" or \"y\"?\n in GraphQL string at location 1:18",
        );
    }

    /// KnownDirectives
    #[test]
    fn known_directives() {
        accepts(r#"{ a(y: 1) @include(if: true) }"#);
        refuses_unplaced(
            r#"query @skip(if: true) { a(y: 1) @nope }"#,
            "Directive \"@skip\" may not be used on QUERY.\ninput:1:34: Unknown directive \"@nope\" in GraphQL string at location 1:8",
        );
    }

    /// KnownFragmentNames
    #[test]
    fn known_fragment_names() {
        accepts(r#"{ ...F } fragment F on Query { q { __typename } }"#);
        refuses_unplaced(
            r#"{ ...G }"#,
            "Unknown fragment \"G\" in GraphQL string at location 1:6",
        );
    }

    /// KnownRootType
    #[test]
    fn known_root_type() {
        accepts(r#"subscription { s }"#);
        refuses(
            r#"mutation { a(y: 1) }"#,
            "Schema does not support operation type \"mutation\"\n in GraphQL string at location 1:1",
        );
    }

    /// KnownTypeNames
    #[test]
    fn known_type_names() {
        accepts(r#"query ($v: Int!) { a(y: $v) ... on Query { q { __typename } } c { ...F } } fragment F on C { a }"#);
        refuses_unplaced(
            r#"query ($v: Nope) { ... on Nope { a(y: 1) } ...F } fragment F on Quer { a(y: 1) }"#,
            "Unknown type \"Nope\".\ninput:1:24: Unknown type \"Nope\".\ninput:1:8: Variable \"$v\" is never used.\ninput:1:51: Unknown type \"Quer\". Did you mean \"Query\"?\n in GraphQL string at location 1:8",
        );
    }

    /// LoneAnonymousOperation
    #[test]
    fn lone_anonymous_operation() {
        accepts(r#"query A { a(y: 1) } query B { a(y: 1) }"#);
        refuses(
            r#"{ a(y: 1) } query B { a(y: 1) }"#,
            "This anonymous operation must be the only defined operation in GraphQL string at location 1:1",
        );
    }

    /// MaxIntrospectionDepth
    #[test]
    fn max_introspection_depth() {
        accepts(r#"{ __schema { types { fields { type { fields { name } } } } } }"#);
        refuses(
            r#"{ __type(name: "C") { interfaces { possibleTypes { fields { name } } } } }"#,
            "Maximum introspection depth exceeded\n in GraphQL string at location 1:3",
        );
    }

    /// NoFragmentCycles
    #[test]
    fn no_fragment_cycles() {
        accepts(r#"{ ...F } fragment F on Query { q { ...G } } fragment G on Query { a(y: 1) }"#);
        refuses_unplaced(
            r#"{ ...F } fragment F on Query { q { ...G } } fragment G on Query { ...F }"#,
            "Cannot spread fragment \"F\" within itself via \"G\" in GraphQL string at location 1:70",
        );
    }

    /// NoUndefinedVariables
    #[test]
    fn no_undefined_variables() {
        accepts(r#"query ($v: Int!) { a(y: $v) }"#);
        refuses(
            r#"query A { a(y: $v) }"#,
            "Variable \"$v\" is not defined by operation \"A\" in GraphQL string at location 1:16",
        );
    }

    /// NoUnusedFragments
    #[test]
    fn no_unused_fragments() {
        accepts(r#"{ ...F } fragment F on Query { ...G } fragment G on Query { a(y: 1) }"#);
        refuses(
            r#"{ a(y: 1) } fragment F on Query { ...G } fragment G on Query { a(y: 1) }"#,
            "Fragment \"F\" is never used in GraphQL string at location 1:13",
        );
    }

    /// NoUnusedVariables
    #[test]
    fn no_unused_variables() {
        accepts(r#"query ($v: Int!) { ...F } fragment F on Query { a(y: $v) }"#);
        refuses(
            r#"query A($v: Int, $w: Int) { a(y: 1) }"#,
            "Variable \"$v\" is never used in operation \"A\".\ninput:1:18: Variable \"$w\" is never used in operation \"A\" in GraphQL string at location 1:9",
        );
    }

    /// OverlappingFieldsCanBeMerged
    #[test]
    fn overlapping_fields_can_be_merged() {
        accepts(r#"{ k: a(y: 1) k: a(y: 1) u { ... on O1 { k: x } ... on O2 { k: a } } }"#);
        refuses(
            r#"{ k: a(y: 1) k: s q { k: a(y: 1) } q { k: a(y: 2) } c { ... on O1 { k: x } ... on O2 { k: x } } }"#,
            "Fields \"k\" conflict because they return conflicting types \"Int\" and \"String\". Use different aliases on the fields to fetch both if this was intentional.\ninput:1:14: Fields \"k\" conflict because \"a\" and \"s\" are different fields. Use different aliases on the fields to fetch both if this was intentional.\ninput:1:36: Fields \"q\" conflict because subfields \"k\" conflict because they have differing arguments. Use different aliases on the fields to fetch both if this was intentional in GraphQL string at location 1:88",
        );
    }

    /// PossibleFragmentSpreads
    #[test]
    fn possible_fragment_spreads() {
        accepts(r#"{ c { ... on O1 { x } } u { ... on C { a } } }"#);
        refuses_unplaced(
            r#"{ q { ... on O1 { x } } c { ...F } } fragment F on Query { a(y: 1) }"#,
            "Fragment cannot be spread here as objects of type \"Query\" can never be of type \"O1\".\ninput:1:32: Fragment \"F\" cannot be spread here as objects of type \"C\" can never be of type \"Query\" in GraphQL string at location 1:11",
        );
    }

    /// ProvidedRequiredArguments
    #[test]
    fn provided_required_arguments() {
        accepts(r#"{ a(y: 1) @include(if: true) }"#);
        refuses_unplaced(
            r#"{ a @skip }"#,
            "Directive \"@skip\" argument \"if\" of type \"Boolean!\" is required, but it was not provided.\ninput:1:3: Field \"a\" argument \"y\" of type \"Int!\" is required, but it was not provided in GraphQL string at location 1:6",
        );
    }

    /// ScalarLeafs
    #[test]
    fn scalar_leafs() {
        accepts(r#"{ a(y: 1) q { a(y: 1) } }"#);
        refuses(
            r#"{ a(y: 1) { b } q }"#,
            "Cannot query field \"b\" on type \"Int\".\ninput:1:3: Field \"a\" must not have a selection since type \"Int\" has no subfields.\ninput:1:17: Field \"q\" of type \"Query\" must have a selection of subfields. Did you mean \"q { ... }\"?\n in GraphQL string at location 1:13",
        );
    }

    /// SingleFieldSubscriptions
    #[test]
    fn single_field_subscriptions() {
        accepts(r#"subscription S { s }"#);
        refuses(
            r#"subscription S { s t } subscription T { __typename }"#,
            "Subscription \"S\" must select only one top level field.\ninput:1:41: Subscription \"T\" must not select an introspection top level field in GraphQL string at location 1:20",
        );
    }

    /// UniqueArgumentNames
    #[test]
    fn unique_argument_names() {
        accepts(r#"{ a(x: 1, y: 2) }"#);
        refuses(
            r#"{ a(y: 1, y: 2) @skip(if: true, if: false) }"#,
            "There can be only one argument named \"if\".\ninput:1:11: There can be only one argument named \"y\" in GraphQL string at location 1:33",
        );
    }

    /// UniqueDirectivesPerLocation
    #[test]
    fn unique_directives_per_location() {
        accepts(r#"{ a(y: 1) @r @r @skip(if: false) }"#);
        refuses_unplaced(
            r#"{ a(y: 1) @skip(if: true) @skip(if: false) }"#,
            "The directive \"@skip\" can only be used once at this location in GraphQL string at location 1:28",
        );
    }

    /// UniqueFragmentNames
    #[test]
    fn unique_fragment_names() {
        accepts(r#"{ ...F ...G } fragment F on Query { a(y: 1) } fragment G on Query { a(y: 1) }"#);
        refuses(
            r#"{ ...F } fragment F on Query { a(y: 1) } fragment F on Query { a(y: 1) }"#,
            "There can be only one fragment named \"F\" in GraphQL string at location 1:42",
        );
    }

    /// UniqueInputFieldNames
    #[test]
    fn unique_input_field_names() {
        accepts(r#"{ s(i: {a: 1, b: "x"}) }"#);
        refuses(
            r#"{ s(i: {a: 1, a: 2}) }"#,
            "There can be only one input field named \"a\" in GraphQL string at location 1:15",
        );
    }

    /// UniqueOperationNames
    #[test]
    fn unique_operation_names() {
        accepts(r#"query A { a(y: 1) } query B { a(y: 1) }"#);
        refuses(
            r#"query A { a(y: 1) } query A { a(y: 1) }"#,
            "There can be only one operation named \"A\" in GraphQL string at location 1:21",
        );
    }

    /// UniqueVariableNames
    #[test]
    fn unique_variable_names() {
        accepts(r#"query ($v: Int, $w: Int) { a(x: $v, y: 1) s(t: "x", l: [$w]) }"#);
        refuses(
            r#"query ($v: Int!, $v: Int!) { a(y: $v) }"#,
            "Variable \"$v\" is never used.\ninput:1:18: There can be only one variable named \"$v\" in GraphQL string at location 1:18",
        );
    }

    /// ValuesOfCorrectType
    #[test]
    fn values_of_correct_type() {
        accepts(r#"{ s(t: "x", e: RED, i: {a: 1}, l: [1, 2], id: 1, f: 1, b: true) o(o: {a: 1}) }"#);
        refuses_unplaced(
            r#"{ s(t: 1, e: BLUE, i: {b: "x", z: 1}, l: [1, "x"], id: 1.5, f: "x", b: 1) a(y: null) o(o: {a: 1, b: "x"}) }"#,
            "String cannot represent a non string value: 1\ninput:1:14: Value \"BLUE\" does not exist in \"E\" enum.\ninput:1:23: Field \"I.a\" of required type \"Int!\" was not provided.\ninput:1:32: Field \"z\" is not defined by type \"I\". Did you mean \"a\" or \"b\"?\ninput:1:47: Int cannot represent non-integer value: \"x\"\ninput:1:56: ID cannot represent a non-string and non-integer value: 1.5\ninput:1:65: Float cannot represent non numeric value: \"x\"\ninput:1:72: Boolean cannot represent a non boolean value: 1\ninput:1:80: Expected value of type \"Int!\", found null.\ninput:1:91: OneOf Input Object \"O\" must specify exactly one key in GraphQL string at location 1:8",
        );
    }

    /// VariablesAreInputTypes
    #[test]
    fn variables_are_input_types() {
        accepts(r#"query ($i: I, $e: E) { s(i: $i, e: $e) }"#);
        refuses(
            r#"query ($v: Query) { a(y: 1) }"#,
            "Variable \"$v\" is never used.\ninput:1:8: Variable \"$v\" cannot be non-input type \"Query\" in GraphQL string at location 1:8",
        );
    }

    /// VariablesInAllowedPosition
    #[test]
    fn variables_in_allowed_position() {
        accepts(r#"query ($v: Int = 1, $w: Int!) { a(y: $v) k: a(y: $w) }"#);
        refuses(
            r#"query ($v: Int, $w: String) { a(y: $v) k: a(x: $w, y: 1) }"#,
            "Variable \"$v\" of type \"Int\" used in position expecting type \"Int!\".\ninput:1:48: Variable \"$w\" of type \"String\" used in position expecting type \"Int\" in GraphQL string at location 1:36",
        );
    }

    #[test]
    fn all_errors_make_one_message_as_opa_writes_it() {
        let at = |line, column| Pos { line, column };
        let errors = vec![
            GqlError::new("Cannot query field \"b\" on type \"Query\".", at(1, 5)),
            GqlError::new("Int cannot represent non-integer value: \"x\"", at(2, 9)),
            GqlError::new("Fragment \"F\" is never used.", at(3, 1)),
        ];
        assert_eq!(
            error_text(&errors),
            "Cannot query field \"b\" on type \"Query\".\ninput:2:9: Int cannot represent non-integer value: \"x\"\n\
             input:3:1: Fragment \"F\" is never used in GraphQL string at location 1:5"
        );
        assert_eq!(
            error_text(&errors[1..2]),
            "Int cannot represent non-integer value: \"x\"\n in GraphQL string at location 2:9"
        );
        // A document given as an object has no places.
        let errors = vec![
            GqlError::new("Cannot query field \"b\" on type \"Query\".", Pos::default()),
            GqlError::new("Unknown directive \"@x\".", Pos::default()),
        ];
        assert_eq!(
            error_text(&errors),
            "GraphQL parse error: input: Cannot query field \"b\" on type \"Query\".\ninput: Unknown directive \"@x\".\n"
        );
    }

    #[test]
    fn validate_gives_the_first_error() {
        let schema = load(SCHEMA);
        let query = parse_query("{ b c { x } }").expect("parses");
        let e = validate(&schema, &query).expect_err("refused");
        assert_eq!(
            e.message,
            "Cannot query field \"b\" on type \"Query\". Did you mean \"a\", \"s\", \"q\", \"c\", or \"u\"?"
        );
        assert_eq!((e.pos.line, e.pos.column), (1, 3));
        assert!(validate(&schema, &parse_query("{ q { __typename } }").expect("parses")).is_ok());
    }

    #[test]
    fn where_opa_itself_fails_the_failure_is_given() {
        let schema = load(SCHEMA);
        let mut query = parse_query("{ __typename }").expect("parses");
        query.operations[0].operation = "Query".to_string();
        let e = validate_all(&schema, &query).expect_err("fails");
        assert_eq!(e.message, "got unknown operation type \"Query\"");

        // A directive out of place, in a document without places.
        let mut query = parse_query("{ __typename @deprecated }").expect("parses");
        let Selection::Field(f) = &mut query.operations[0].selection_set[0] else {
            panic!("a field")
        };
        f.directives[0].pos = Pos::default();
        let e = validate_all(&schema, &query).expect_err("fails");
        assert_eq!(
            e.message,
            "runtime error: invalid memory address or nil pointer dereference"
        );
    }

    #[test]
    fn error_text_is_bounded() {
        // Each operation repeats the fragment's error, itself repeating a
        // long string.
        let long = "x".repeat(100_000);
        let mut q = String::new();
        for i in 0..100 {
            q.push_str(&format!("query Q{i} {{ ...F }}\n"));
        }
        q.push_str(&format!("fragment F on Query {{ s(f: \"{long}\") }}"));
        let errs = timed(SCHEMA, &q);
        assert_eq!(errs.last().map(|e| e.message.as_str()), Some(TOO_COMPLEX));
        let total: usize = errs.iter().map(|e| e.message.len()).sum();
        assert!(total <= MAX_MESSAGE_BYTES + TOO_COMPLEX.len());
    }

    #[test]
    fn values_print_as_opa_prints_them() {
        let query = parse_query(r#"{ a(x: [1, "a\"b", {k: [2.5e3]}, null, RED, true, $v]) }"#).expect("parses");
        let Selection::Field(f) = &query.operations[0].selection_set[0] else {
            panic!("a field")
        };
        assert_eq!(
            value_string(&f.arguments[0].value),
            r#"[1,"a\"b",{k:[2.5e3]},null,RED,true,$v]"#
        );
    }

    #[test]
    fn suggestions_are_the_close_names_closest_first() {
        assert_eq!(suggestion_list("z", &["x", "id", "y"]), ["x", "y"]);
        assert_eq!(
            suggestion_list("nme", &["names", "name", "NME", "other"]),
            ["name", "NME", "names"]
        );
        assert_eq!(quoted_or_list(&["a", "b"]), r#""a" or "b""#);
        assert_eq!(
            quoted_or_list(&["a", "b", "c", "d", "e", "f"]),
            r#""a", "b", "c", "d", or "e""#
        );
    }

    const BIG: &str = "type Query { a(x: Int): Int q: Query n: [Query] s: String }";

    fn load(sdl: &str) -> Schema {
        schema::load(&parse_schema(sdl).expect("schema parses")).expect("schema loads")
    }

    fn run(sdl: &str, query: &str) -> Result<Vec<GqlError>, GqlError> {
        validate_all(&load(sdl), &parse_query(query).expect("query parses"))
    }

    fn timed(sdl: &str, query: &str) -> Vec<GqlError> {
        let start = std::time::Instant::now();
        let out = run(sdl, query).expect("no failure");
        assert!(
            start.elapsed() < std::time::Duration::from_secs(5),
            "took {:?}",
            start.elapsed()
        );
        out
    }

    #[test]
    fn many_fields_of_one_name_are_compared_within_the_budget() {
        let q = format!("{{ {} }}", "a ".repeat(5_000));
        let errs = timed(BIG, &q);
        assert_eq!(errs.last().map(|e| e.message.as_str()), Some(TOO_COMPLEX));
        let q = format!("{{ {} }}", "a ".repeat(500));
        assert!(timed(BIG, &q).is_empty());
    }

    #[test]
    fn many_distinct_fields_are_walked() {
        let q = format!("{{ {} }}", (0..50_000).map(|i| format!("f{i}: a ")).collect::<String>());
        let errs = timed(BIG, &q);
        assert!(errs.is_empty(), "{:?}", errs.first());
    }

    #[test]
    fn a_long_chain_of_fragments_is_bounded() {
        let n = 5_000;
        let mut q = String::from("{ ...F0 }\n");
        for i in 0..n {
            q.push_str(&format!("fragment F{i} on Query {{ q {{ ...F{} }} }}\n", i + 1));
        }
        q.push_str(&format!("fragment F{n} on Query {{ a }}\n"));
        let errs = timed(BIG, &q);
        assert_eq!(errs.last().map(|e| e.message.as_str()), Some(TOO_COMPLEX));
        // A short one is fine.
        let q = "{ ...F0 } fragment F0 on Query { q { ...F1 } } fragment F1 on Query { a }";
        assert!(timed(BIG, q).is_empty());
    }

    #[test]
    fn fragments_spread_twice_at_each_level_are_bounded() {
        let n = 40;
        let mut q = String::from("{ __schema { ...F0 } }\n");
        for i in 0..n {
            q.push_str(&format!(
                "fragment F{i} on __Schema {{ ...F{j} ...F{j} types {{ name }} }}\n",
                j = i + 1
            ));
        }
        q.push_str(&format!("fragment F{n} on __Schema {{ description }}\n"));
        timed(BIG, &q);
        let mut q = String::from("{ ...F0 }\n");
        for i in 0..n {
            q.push_str(&format!(
                "fragment F{i} on Query {{ k: q {{ ...F{j} }} k: q {{ ...F{j} }} }}\n",
                j = i + 1
            ));
        }
        q.push_str(&format!("fragment F{n} on Query {{ a }}\n"));
        timed(BIG, &q);
    }

    #[test]
    fn recursive_fragments_compared_against_each_other_are_bounded() {
        // OPA's own validator recurses without end here (and its process dies).
        let q = "{ q { ...H } } fragment H on Query { q { ...H q { ...H } } }";
        let errs = timed(BIG, q);
        assert_eq!(errs.last().map(|e| e.message.as_str()), Some(TOO_COMPLEX));
    }

    #[test]
    fn deepest_walk_fits_a_small_stack() {
        let mut q = String::from("{ ...F0 }\n");
        for i in 0..MAX_DEPTH {
            q.push_str(&format!(
                "fragment F{i} on Query {{ q {{ ...F{} }} q {{ ...F{} }} }}\n",
                i + 1,
                i + 1
            ));
        }
        q.push_str(&format!("fragment F{MAX_DEPTH} on Query {{ a }}\n"));
        let handle = std::thread::Builder::new()
            .stack_size(1 << 20)
            .spawn(move || run(BIG, &q).map(|e| e.len()))
            .expect("thread");
        assert!(handle.join().expect("no overflow").is_ok());
    }
}
