//! A schema document made ready for validating queries, as OPA makes it:
//! the built-in definitions of the GraphQL specification (scalars,
//! directives, introspection types) merged in front of the user's, type
//! extensions folded into the types they extend, the result checked, and
//! indexed by name.
//!
//! The checks and their order are those OPA applies: duplicate types and
//! directives first, then extensions, the `schema` roots, every type in
//! name order, every directive definition in name order. The first failure
//! is the error, worded and placed as OPA words and places it.

use std::collections::HashMap;
use std::sync::LazyLock;

use super::super::go_quote;

use super::GqlError;
use super::ast::{
    ArgumentDefinition, Definition, DefinitionKind, Directive, DirectiveDefinition, FieldDefinition, Pos,
    SchemaDefinition, SchemaDocument, Type,
};

/// The definitions every schema has, per the GraphQL specification, with
/// the introspection types as OPA's validator knows them.
const PRELUDE: &str = r#"
"The `Int` scalar type represents non-fractional signed whole numeric values."
scalar Int

"The `Float` scalar type represents signed double-precision fractional values."
scalar Float

"The `String` scalar type represents textual data, as UTF-8 character sequences."
scalar String

"The `Boolean` scalar type represents `true` or `false`."
scalar Boolean

"The `ID` scalar type represents a unique identifier, serialized as a String."
scalar ID

"Directs the executor to include this field or fragment only when the `if` argument is true."
directive @include(if: Boolean!) on FIELD | FRAGMENT_SPREAD | INLINE_FRAGMENT

"Directs the executor to skip this field or fragment when the `if` argument is true."
directive @skip(if: Boolean!) on FIELD | FRAGMENT_SPREAD | INLINE_FRAGMENT

"Marks an element of a GraphQL schema as no longer supported."
directive @deprecated(reason: String = "No longer supported") on FIELD_DEFINITION | ARGUMENT_DEFINITION | INPUT_FIELD_DEFINITION | ENUM_VALUE

"Exposes a URL that specifies the behaviour of this scalar."
directive @specifiedBy(url: String!) on SCALAR

"Directs the executor to defer this fragment when the `if` argument is true or undefined."
directive @defer(if: Boolean = true, label: String) on FRAGMENT_SPREAD | INLINE_FRAGMENT

"Indicates exactly one field must be supplied and this field must not be `null`."
directive @oneOf on INPUT_OBJECT

type __Schema {
  description: String
  types: [__Type!]!
  queryType: __Type!
  mutationType: __Type
  subscriptionType: __Type
  directives: [__Directive!]!
}

type __Type {
  kind: __TypeKind!
  name: String
  description: String
  specifiedByURL: String
  fields(includeDeprecated: Boolean = false): [__Field!]
  interfaces: [__Type!]
  possibleTypes: [__Type!]
  enumValues(includeDeprecated: Boolean = false): [__EnumValue!]
  inputFields(includeDeprecated: Boolean = false): [__InputValue!]
  ofType: __Type
  isOneOf: Boolean
}

type __Field {
  name: String!
  description: String
  args(includeDeprecated: Boolean = false): [__InputValue!]!
  type: __Type!
  isDeprecated: Boolean!
  deprecationReason: String
}

type __InputValue {
  name: String!
  description: String
  type: __Type!
  defaultValue: String
  isDeprecated: Boolean!
  deprecationReason: String
}

type __EnumValue {
  name: String!
  description: String
  isDeprecated: Boolean!
  deprecationReason: String
}

enum __TypeKind {
  SCALAR
  OBJECT
  INTERFACE
  UNION
  ENUM
  INPUT_OBJECT
  LIST
  NON_NULL
}

type __Directive {
  name: String!
  description: String
  locations: [__DirectiveLocation!]!
  args(includeDeprecated: Boolean = false): [__InputValue!]!
  isRepeatable: Boolean!
}

enum __DirectiveLocation {
  QUERY
  MUTATION
  SUBSCRIPTION
  FIELD
  FRAGMENT_DEFINITION
  FRAGMENT_SPREAD
  INLINE_FRAGMENT
  VARIABLE_DEFINITION
  SCHEMA
  SCALAR
  OBJECT
  FIELD_DEFINITION
  ARGUMENT_DEFINITION
  INTERFACE
  UNION
  ENUM
  ENUM_VALUE
  INPUT_OBJECT
  INPUT_FIELD_DEFINITION
}
"#;

/// Directives a schema may declare again, its declaration replacing the
/// built-in one, as OPA allows.
const REDECLARABLE_DIRECTIVES: &[&str] = &["include", "skip", "deprecated", "specifiedBy", "defer", "oneOf"];

/// The prelude, parsed once, its type definitions marked built-in.
static PRELUDE_DOC: LazyLock<Option<SchemaDocument>> = LazyLock::new(|| {
    let mut doc = super::parser::parse_schema(PRELUDE).ok()?;
    for def in &mut doc.definitions {
        def.builtin = true;
    }
    Some(doc)
});

/// A checked schema: its types (built-in and declared, extensions merged)
/// and directives by name, its root operation types, and the object types
/// each abstract type may be.
#[derive(Debug)]
pub(crate) struct Schema {
    types: Vec<Definition>,
    type_index: HashMap<String, usize>,
    directives: HashMap<String, DirectiveDefinition>,
    query: Option<usize>,
    mutation: Option<usize>,
    subscription: Option<usize>,
    possible_types: HashMap<String, Vec<usize>>,
    /// Each type's fields by name (the first of a name).
    field_index: Vec<HashMap<String, usize>>,
}

impl Schema {
    /// The type named `name`.
    pub(crate) fn get_type(&self, name: &str) -> Option<&Definition> {
        self.type_index.get(name).and_then(|&i| self.types.get(i))
    }

    /// Every type, built-in ones first, then in declaration order.
    pub(crate) fn types(&self) -> &[Definition] {
        &self.types
    }

    /// The field `name` of the type named `type_name`, the first if
    /// declared twice.
    pub(crate) fn field(&self, type_name: &str, name: &str) -> Option<&FieldDefinition> {
        let i = *self.type_index.get(type_name)?;
        let f = *self.field_index.get(i)?.get(name)?;
        self.types.get(i)?.fields.get(f)
    }

    /// The directive named `name`.
    pub(crate) fn directive(&self, name: &str) -> Option<&DirectiveDefinition> {
        self.directives.get(name)
    }

    /// The root type of `query`, `mutation` or `subscription` operations
    /// (an operation written `{ … }` is a query).
    pub(crate) fn root_type(&self, operation: &str) -> Option<&Definition> {
        let index = match operation {
            "query" | "" => self.query,
            "mutation" => self.mutation,
            "subscription" => self.subscription,
            _ => None,
        };
        index.and_then(|i| self.types.get(i))
    }

    /// The types a value of type `name` may be: an object type itself; the
    /// members of a union; the object types and interfaces that implement
    /// an interface. Repeated as often as declared.
    pub(crate) fn possible_types(&self, name: &str) -> impl Iterator<Item = &Definition> {
        self.possible_types
            .get(name)
            .into_iter()
            .flatten()
            .filter_map(|&i| self.types.get(i))
    }
}

/// `SCALAR`, `ENUM` or `INPUT_OBJECT`: a type arguments and variables may have.
pub(crate) fn is_input_kind(kind: DefinitionKind) -> bool {
    matches!(
        kind,
        DefinitionKind::Scalar | DefinitionKind::Enum | DefinitionKind::InputObject
    )
}

/// `OBJECT`, `INTERFACE` or `UNION`: a type selections apply to.
pub(crate) fn is_composite_kind(kind: DefinitionKind) -> bool {
    matches!(
        kind,
        DefinitionKind::Object | DefinitionKind::Interface | DefinitionKind::Union
    )
}

/// `SCALAR` or `ENUM`: a type with no fields to select.
pub(crate) fn is_leaf_kind(kind: DefinitionKind) -> bool {
    matches!(kind, DefinitionKind::Scalar | DefinitionKind::Enum)
}

/// The argument named `name`, the first if declared twice.
pub(crate) fn argument<'a>(args: &'a [ArgumentDefinition], name: &str) -> Option<&'a ArgumentDefinition> {
    args.iter().find(|a| a.name == name)
}

/// An error as OPA prints a schema one, after "Error in gqlparser
/// SchemaDocument to Schema conversion: ": `input:L:C: message`, with
/// `-1:-1` when the document was given as an object and has no places.
pub(crate) fn error_text(e: &GqlError) -> String {
    if e.pos == Pos::default() {
        format!("input:-1:-1: {}", e.message)
    } else {
        format!("input:{}:{}: {}", e.pos.line, e.pos.column, e.message)
    }
}

fn err<T>(pos: Pos, message: String) -> Result<T, GqlError> {
    Err(GqlError::new(message, pos))
}

/// Merges the built-in definitions with `doc`, checks the result as OPA
/// does and indexes it. The error is the first check that fails.
pub(crate) fn load(doc: &SchemaDocument) -> Result<Schema, GqlError> {
    let prelude = PRELUDE_DOC
        .as_ref()
        .ok_or_else(|| GqlError::new("the built-in GraphQL definitions do not parse", Pos::default()))?;

    let mut schema = Schema {
        types: Vec::new(),
        type_index: HashMap::new(),
        directives: HashMap::new(),
        query: None,
        mutation: None,
        subscription: None,
        possible_types: HashMap::new(),
        field_index: Vec::new(),
    };

    // Types: a name may be declared once.
    for def in prelude.definitions.iter().chain(&doc.definitions) {
        if schema.type_index.contains_key(&def.name) {
            return err(def.pos, format!("Cannot redeclare type {}.", def.name));
        }
        schema.type_index.insert(def.name.clone(), schema.types.len());
        schema.types.push(def.clone());
    }

    // Extensions add to the type they extend, which need not be declared:
    // an extension of an unknown type declares it.
    for ext in &doc.extensions {
        let index = match schema.type_index.get(&ext.name) {
            Some(&i) => i,
            None => {
                schema.type_index.insert(ext.name.clone(), schema.types.len());
                schema
                    .types
                    .push(Definition::empty(ext.kind, ext.name.clone(), ext.pos));
                schema.types.len() - 1
            }
        };
        let Some(def) = schema.types.get_mut(index) else {
            continue;
        };
        if def.kind != ext.kind {
            return err(
                ext.pos,
                format!(
                    "Cannot extend type {} because the base type is a {}, not {}.",
                    ext.name,
                    def.kind.as_str(),
                    ext.kind.as_str()
                ),
            );
        }
        def.directives.extend(ext.directives.iter().cloned());
        def.interfaces.extend(ext.interfaces.iter().cloned());
        def.fields.extend(ext.fields.iter().cloned());
        def.types.extend(ext.types.iter().cloned());
        def.enum_values.extend(ext.enum_values.iter().cloned());
    }

    // What each abstract type may be, in declaration order.
    for (i, def) in schema.types.iter().enumerate() {
        match def.kind {
            DefinitionKind::Union => {
                for member in &def.types {
                    if let Some(&m) = schema.type_index.get(member) {
                        schema.possible_types.entry(def.name.clone()).or_default().push(m);
                    }
                }
            }
            DefinitionKind::Object | DefinitionKind::InputObject | DefinitionKind::Interface => {
                for interface in &def.interfaces {
                    schema.possible_types.entry(interface.clone()).or_default().push(i);
                }
                if def.kind != DefinitionKind::Interface {
                    schema.possible_types.entry(def.name.clone()).or_default().push(i);
                }
            }
            _ => {}
        }
    }

    // Directives: a name may be declared once, except that a schema may
    // declare a built-in directive again.
    for dir in prelude.directives.iter().chain(&doc.directives) {
        if schema.directives.contains_key(&dir.name) && !REDECLARABLE_DIRECTIVES.contains(&dir.name.as_str()) {
            return err(dir.pos, format!("Cannot redeclare directive {}.", dir.name));
        }
        schema.directives.insert(dir.name.clone(), dir.clone());
    }

    // Root operation types.
    if let Some(second) = doc.schema.get(1) {
        return err(
            second.pos,
            "Cannot have multiple schema entry points, consider schema extensions instead.".into(),
        );
    }
    for def in doc.schema.iter().chain(&doc.schema_extension) {
        set_roots(&mut schema, def)?;
    }

    // Every type, then every directive, in name order.
    let mut names: Vec<&String> = schema.type_index.keys().collect();
    names.sort();
    for name in names {
        if let Some(def) = schema.get_type(name) {
            check_definition(&schema, def)?;
        }
    }
    let mut names: Vec<&String> = schema.directives.keys().collect();
    names.sort();
    for name in names {
        if let Some(dir) = schema.directives.get(name) {
            check_name(dir.pos, &dir.name)?;
            check_arguments(&schema, &dir.arguments, Some(&dir.name))?;
        }
    }

    // Without a `schema` definition, the types named for the operations are
    // their roots.
    if doc.schema.is_empty() {
        for (slot, name) in [
            (&mut schema.query, "Query"),
            (&mut schema.mutation, "Mutation"),
            (&mut schema.subscription, "Subscription"),
        ] {
            if slot.is_none() {
                *slot = schema.type_index.get(name).copied();
            }
        }
    }

    // The query root has the introspection fields.
    if let Some(def) = schema.query.and_then(|i| schema.types.get_mut(i)) {
        let named = |name: &str, non_null: bool| Type {
            named: name.to_string(),
            elem: None,
            non_null,
            pos: Pos::default(),
        };
        let field = |name: &str, ty: Type, arguments: Vec<ArgumentDefinition>| FieldDefinition {
            description: String::new(),
            name: name.to_string(),
            arguments,
            default: None,
            ty,
            directives: Vec::new(),
            pos: Pos::default(),
        };
        def.fields.push(field("__schema", named("__Schema", true), Vec::new()));
        def.fields.push(field(
            "__type",
            named("__Type", false),
            vec![ArgumentDefinition {
                description: String::new(),
                name: "name".to_string(),
                default: None,
                ty: named("String", true),
                directives: Vec::new(),
                pos: Pos::default(),
            }],
        ));
    }

    schema.field_index = schema
        .types
        .iter()
        .map(|t| {
            let mut index = HashMap::with_capacity(t.fields.len());
            for (i, f) in t.fields.iter().enumerate() {
                index.entry(f.name.clone()).or_insert(i);
            }
            index
        })
        .collect();
    Ok(schema)
}

/// The root types a `schema { … }` definition or extension names, which
/// must exist; then its directives.
fn set_roots(schema: &mut Schema, def: &SchemaDefinition) -> Result<(), GqlError> {
    for entry in &def.operation_types {
        let Some(&index) = schema.type_index.get(&entry.ty) else {
            return err(
                entry.pos,
                format!(
                    "Schema root {} refers to a type {} that does not exist.",
                    entry.operation, entry.ty
                ),
            );
        };
        match entry.operation.as_str() {
            "query" => schema.query = Some(index),
            "mutation" => schema.mutation = Some(index),
            "subscription" => schema.subscription = Some(index),
            _ => {}
        }
    }
    check_directives(schema, &def.directives, "SCHEMA", None)
}

/// Items by name, the first of each name.
fn by_name<'s, T>(items: impl Iterator<Item = (&'s str, T)>) -> HashMap<&'s str, T> {
    let mut map = HashMap::new();
    for (name, item) in items {
        map.entry(name).or_insert(item);
    }
    map
}

/// Of names where one repeats, the place of the repeat OPA reports: the
/// next occurrence of the first name that occurs again.
fn repeated<'s>(names: impl Iterator<Item = &'s str>) -> Option<usize> {
    let mut seen: HashMap<&str, (usize, Option<usize>)> = HashMap::new();
    for (i, name) in names.enumerate() {
        seen.entry(name)
            .and_modify(|(_, second)| *second = second.or(Some(i)))
            .or_insert((i, None));
    }
    seen.into_values()
        .filter_map(|(first, second)| Some((first, second?)))
        .min()
        .map(|(_, second)| second)
}

/// A name of the schema's own may not begin with `__`.
fn check_name(pos: Pos, name: &str) -> Result<(), GqlError> {
    if name.starts_with("__") {
        return err(
            pos,
            format!("Name \"{name}\" must not begin with \"__\", which is reserved by GraphQL introspection."),
        );
    }
    Ok(())
}

/// A type referred to must exist.
fn check_type_ref(schema: &Schema, ty: &Type) -> Result<(), GqlError> {
    if schema.get_type(ty.name()).is_none() {
        return err(ty.pos, format!("Undefined type {}.", ty.name()));
    }
    Ok(())
}

/// One type's checks, in the order OPA makes them: its fields (names, types,
/// arguments, directives), union members, implemented interfaces, what its
/// kind requires, repeated fields, its name, its directives.
fn check_definition(schema: &Schema, def: &Definition) -> Result<(), GqlError> {
    let kind = def.kind.as_str();
    let field_location = if def.kind == DefinitionKind::InputObject {
        "INPUT_FIELD_DEFINITION"
    } else {
        "FIELD_DEFINITION"
    };
    for f in &def.fields {
        check_name(f.pos, &f.name)?;
        check_type_ref(schema, &f.ty)?;
        check_arguments(schema, &f.arguments, None)?;
        check_directives(schema, &f.directives, field_location, None)?;
    }

    for member in &def.types {
        match schema.get_type(member) {
            None => return err(def.pos, format!("Undefined type {}.", go_quote(member))),
            Some(m) if m.kind != DefinitionKind::Object => {
                return err(def.pos, format!("{kind} type {} must be OBJECT.", go_quote(member)));
            }
            Some(_) => {}
        }
    }
    if let Some(j) = repeated(def.types.iter().map(String::as_str)) {
        // The place of the repeated member is not in the document model;
        // the union's own place stands for it.
        return err(
            def.pos,
            format!("Union type {} can only include type {} once.", def.name, def.types[j]),
        );
    }

    for interface in &def.interfaces {
        check_implements(schema, def, interface)?;
    }

    match def.kind {
        DefinitionKind::Object | DefinitionKind::Interface => {
            if def.fields.is_empty() {
                return err(def.pos, format!("{kind} {}: must define one or more fields.", def.name));
            }
            for f in &def.fields {
                if let Some(t) = schema.get_type(f.ty.name())
                    && t.kind == DefinitionKind::InputObject
                {
                    return err(
                        f.pos,
                        format!(
                            "{kind} {}: field must be one of SCALAR, OBJECT, INTERFACE, UNION, ENUM.",
                            def.name
                        ),
                    );
                }
            }
        }
        DefinitionKind::Enum => {
            if def.enum_values.is_empty() {
                return err(
                    def.pos,
                    format!("{kind} {}: must define one or more unique enum values.", def.name),
                );
            }
            for value in &def.enum_values {
                if matches!(value.name.as_str(), "true" | "false" | "null") {
                    return err(def.pos, format!("{kind} {}: non-enum value {}.", def.name, value.name));
                }
                check_directives(schema, &value.directives, "ENUM_VALUE", None)?;
            }
            if let Some(value) = repeated(def.enum_values.iter().map(|v| v.name.as_str())).map(|j| &def.enum_values[j])
            {
                return err(
                    value.pos,
                    format!("Enum value {}.{} can only be defined once.", def.name, value.name),
                );
            }
        }
        DefinitionKind::InputObject => {
            if def.fields.is_empty() {
                return err(
                    def.pos,
                    format!("{kind} {}: must define one or more input fields.", def.name),
                );
            }
            for f in &def.fields {
                if let Some(t) = schema.get_type(f.ty.name())
                    && !is_input_kind(t.kind)
                {
                    return err(
                        f.pos,
                        format!(
                            "{} {}: field must be one of SCALAR, ENUM, INPUT_OBJECT.",
                            t.kind.as_str(),
                            f.name
                        ),
                    );
                }
            }
        }
        DefinitionKind::Scalar | DefinitionKind::Union => {}
    }

    if let Some(f2) = repeated(def.fields.iter().map(|f| f.name.as_str())).map(|j| &def.fields[j]) {
        return err(
            f2.pos,
            format!("Field {}.{} can only be defined once.", def.name, f2.name),
        );
    }

    if !def.builtin {
        check_name(def.pos, &def.name)?;
    }

    check_directives(schema, &def.directives, kind, None)
}

/// Arguments of a field or directive: names, existing input types, and
/// their directives (which may not be the directive being defined).
fn check_arguments(schema: &Schema, args: &[ArgumentDefinition], defining: Option<&str>) -> Result<(), GqlError> {
    for arg in args {
        check_name(arg.pos, &arg.name)?;
        check_type_ref(schema, &arg.ty)?;
        if let Some(t) = schema.get_type(arg.ty.name())
            && !is_input_kind(t.kind)
        {
            return err(
                arg.pos,
                format!(
                    "cannot use {} as argument {} because {} is not a valid input type",
                    arg.ty,
                    arg.name,
                    t.kind.as_str()
                ),
            );
        }
        check_directives(schema, &arg.directives, "ARGUMENT_DEFINITION", defining)?;
    }
    Ok(())
}

/// Directives applied in the schema: declared, allowed where they stand,
/// given only declared arguments and every required one. A directive that
/// is not repeatable may stand once on a field, argument, input field,
/// enum value or the schema (OPA does not check this on types).
fn check_directives(
    schema: &Schema,
    dirs: &[Directive],
    location: &str,
    defining: Option<&str>,
) -> Result<(), GqlError> {
    let unique = matches!(
        location,
        "FIELD_DEFINITION" | "ARGUMENT_DEFINITION" | "INPUT_FIELD_DEFINITION" | "ENUM_VALUE" | "SCHEMA"
    );
    let mut seen = std::collections::HashSet::new();
    for dir in dirs {
        check_name(dir.pos, &dir.name)?;
        if defining == Some(dir.name.as_str()) {
            return err(dir.pos, format!("Directive {} cannot refer to itself.", dir.name));
        }
        let Some(def) = schema.directive(&dir.name) else {
            return err(dir.pos, format!("Undefined directive {}.", dir.name));
        };
        if !def.locations.iter().any(|l| l == location) {
            return err(
                dir.pos,
                format!("Directive {} is not applicable on {location}.", dir.name),
            );
        }
        if !seen.insert(dir.name.as_str()) && unique && !def.repeatable {
            return err(
                dir.pos,
                format!("The directive {} can only be used once at this location.", dir.name),
            );
        }
        for arg in &dir.arguments {
            if argument(&def.arguments, &arg.name).is_none() {
                return err(
                    arg.pos,
                    format!("Undefined argument {} for directive {}.", arg.name, dir.name),
                );
            }
        }
        for arg_def in &def.arguments {
            if arg_def.ty.non_null && arg_def.default.is_none() {
                let given = dir.arguments.iter().find(|a| a.name == arg_def.name);
                if given.is_none_or(|a| a.value.kind == super::ast::ValueKind::Null) {
                    return err(
                        dir.pos,
                        format!("Argument {} for directive {} cannot be null.", arg_def.name, dir.name),
                    );
                }
            }
        }
    }
    Ok(())
}

/// `def implements interface`: the interface exists and is one; `def` has
/// each of its fields with a type at least as narrow and the same
/// arguments (any others optional); and `def` implements what the
/// interface implements.
fn check_implements(schema: &Schema, def: &Definition, interface: &str) -> Result<(), GqlError> {
    let Some(intf) = schema.get_type(interface) else {
        return err(def.pos, format!("Undefined type {}.", go_quote(interface)));
    };
    if intf.kind != DefinitionKind::Interface {
        return err(
            def.pos,
            format!(
                "{} is a non interface type {}.",
                go_quote(interface),
                intf.kind.as_str()
            ),
        );
    }
    let fields = by_name(def.fields.iter().map(|f| (f.name.as_str(), f)));
    for required in &intf.fields {
        let Some(&found) = fields.get(required.name.as_str()) else {
            return err(
                def.pos,
                format!(
                    "For {} to implement {} it must have a field called {}.",
                    def.name, intf.name, required.name
                ),
            );
        };
        if !is_covariant(schema, &required.ty, &found.ty) {
            return err(
                found.pos,
                format!(
                    "For {} to implement {} the field {} must have type {}.",
                    def.name, intf.name, required.name, required.ty
                ),
            );
        }
        let found_args = by_name(found.arguments.iter().map(|a| (a.name.as_str(), a)));
        let required_args = by_name(required.arguments.iter().map(|a| (a.name.as_str(), a)));
        for required_arg in &required.arguments {
            let Some(&found_arg) = found_args.get(required_arg.name.as_str()) else {
                return err(
                    found.pos,
                    format!(
                        "For {} to implement {} the field {} must have the same arguments but it is missing {}.",
                        def.name, intf.name, required.name, required_arg.name
                    ),
                );
            };
            if !is_compatible(&required_arg.ty, &found_arg.ty) {
                return err(
                    found_arg.pos,
                    format!(
                        "For {} to implement {} the field {} must have the same arguments but {} has the wrong type.",
                        def.name, intf.name, required.name, required_arg.name
                    ),
                );
            }
        }
        for found_arg in &found.arguments {
            if !required_args.contains_key(found_arg.name.as_str())
                && found_arg.ty.non_null
                && found_arg.default.is_none()
            {
                return err(
                    found_arg.pos,
                    format!(
                        "For {} to implement {} any additional arguments on {} must be optional or have a default value but {} is required.",
                        def.name, intf.name, found.name, found_arg.name
                    ),
                );
            }
        }
    }
    for transitive in &intf.interfaces {
        if !def.interfaces.contains(transitive) {
            let message = if *transitive == def.name {
                format!(
                    "Type {} cannot implement {} because it would create a circular reference.",
                    def.name, intf.name
                )
            } else {
                format!(
                    "Type {} must implement {transitive} because it is implemented by {}.",
                    def.name, intf.name
                )
            };
            return err(def.pos, message);
        }
    }
    Ok(())
}

/// Whether a field of type `actual` may stand for one of type `required`:
/// non-null where required is, the same named type or one of its possible
/// types, lists where required has lists.
fn is_covariant(schema: &Schema, required: &Type, actual: &Type) -> bool {
    if required.non_null && !actual.non_null {
        return false;
    }
    if !required.named.is_empty() {
        return required.named == actual.named
            || schema.possible_types(&required.named).any(|t| t.name == actual.named);
    }
    match (&required.elem, &actual.elem) {
        (Some(r), Some(a)) => is_covariant(schema, r, a),
        _ => false,
    }
}

/// Whether an argument of type `actual` matches an interface's argument of
/// type `required`: the same named types and lists, and non-null only
/// where required is.
pub(crate) fn is_compatible(required: &Type, actual: &Type) -> bool {
    if required.named != actual.named {
        return false;
    }
    match (&required.elem, &actual.elem) {
        (Some(_), None) => return false,
        (Some(r), Some(a)) if !is_compatible(r, a) => return false,
        _ => {}
    }
    !actual.non_null || required.non_null
}

#[cfg(test)]
mod tests {
    use super::super::parser::parse_schema;
    use super::*;

    fn load_text(sdl: &str) -> Result<Schema, GqlError> {
        load(&parse_schema(sdl).expect("schema parses"))
    }

    #[test]
    fn the_prelude_parses_and_is_built_in() {
        let doc = PRELUDE_DOC.as_ref().expect("prelude parses");
        assert!(doc.definitions.iter().all(|d| d.builtin));
        let schema = load_text("type Query { a: Int }").expect("loads");
        for name in [
            "Int",
            "Float",
            "String",
            "Boolean",
            "ID",
            "__Schema",
            "__Type",
            "__TypeKind",
            "__Directive",
        ] {
            assert!(schema.get_type(name).is_some_and(|t| t.builtin), "{name}");
        }
        for name in ["include", "skip", "deprecated", "specifiedBy", "defer", "oneOf"] {
            assert!(schema.directive(name).is_some(), "{name}");
        }
    }

    #[test]
    fn roots_are_the_types_so_named_without_a_schema_definition() {
        let schema = load_text("type Query { a: Int } type Mutation { a: Int }").expect("loads");
        assert_eq!(schema.root_type("query").map(|t| t.name.as_str()), Some("Query"));
        assert_eq!(schema.root_type("").map(|t| t.name.as_str()), Some("Query"));
        assert_eq!(schema.root_type("mutation").map(|t| t.name.as_str()), Some("Mutation"));
        assert!(schema.root_type("subscription").is_none());
        // The query root has the introspection fields.
        assert!(schema.field("Query", "__schema").is_some() && schema.field("Query", "__type").is_some());

        let schema = load_text("schema { mutation: M } type Query { a: Int } type M { a: Int }").expect("loads");
        assert!(schema.root_type("query").is_none());
        assert_eq!(schema.root_type("mutation").map(|t| t.name.as_str()), Some("M"));
    }

    #[test]
    fn possible_types_include_implementing_interfaces() {
        let schema = load_text(
            "type Query { a: Int } interface C { a: Int } interface B implements C { a: Int } \
             type O implements B & C { a: Int } union U = O",
        )
        .expect("loads");
        let names = |t: &str| schema.possible_types(t).map(|d| d.name.clone()).collect::<Vec<_>>();
        assert_eq!(names("C"), ["B", "O"]);
        assert_eq!(names("B"), ["O"]);
        assert_eq!(names("U"), ["O"]);
        assert_eq!(names("O"), ["O"]);
    }

    /// Each check, with OPA's answer: the error after "Error in gqlparser
    /// SchemaDocument to Schema conversion: ", or none. Where the parser
    /// places definitions, directives or list types differently from OPA's
    /// (`false`), only the message is compared.
    #[test]
    fn checks_answer_as_opa_does() {
        let cases: &[(&str, Option<&str>, bool)] = &[
            // a valid schema
            (
                "type Query { a: Int }\ntype M { a: Int }\nextend schema { mutation: M }",
                None,
                true,
            ),
            // types declared once
            (
                "scalar Int\ntype Query { a: Int }",
                Some("input:1:8: Cannot redeclare type Int."),
                false,
            ),
            // types declared once
            (
                "type Query { a: Int }\ntype Query { b: Int }",
                Some("input:2:6: Cannot redeclare type Query."),
                false,
            ),
            // directives declared once
            (
                "type Query { a: Int }\ndirective @foo on FIELD\ndirective @foo on FIELD",
                Some("input:3:12: Cannot redeclare directive foo."),
                false,
            ),
            // built-in directives may be declared again
            (
                "type Query { a: Int }\ndirective @skip(x: Int) on FIELD\ndirective @deprecated on FIELD",
                None,
                true,
            ),
            // extensions of another kind
            (
                "type Query { a: Int }\nextend scalar Query @deprecated",
                Some("input:2:15: Cannot extend type Query because the base type is a OBJECT, not SCALAR."),
                false,
            ),
            // extensions of unknown types declare them
            ("type Query { a: Int }\nextend type Foo { a: Int }", None, true),
            // one schema definition
            (
                "schema { query: Query }\nschema { query: Query }\ntype Query { a: Int }",
                Some("input:2:8: Cannot have multiple schema entry points, consider schema extensions instead."),
                false,
            ),
            // root types exist
            (
                "schema { query: Query mutation: Nope }\ntype Query { a: Int }",
                Some("input:1:23: Schema root mutation refers to a type Nope that does not exist."),
                true,
            ),
            // schema directives
            (
                "schema @deprecated { query: Query }\ntype Query { a: Int }",
                Some("input:1:9: Directive deprecated is not applicable on SCHEMA."),
                false,
            ),
            // field names
            (
                "type Query { __a: Int }",
                Some(
                    "input:1:14: Name \"__a\" must not begin with \"__\", which is reserved by GraphQL introspection.",
                ),
                true,
            ),
            // field types exist
            (
                "type Query { a: [Nope!]! }",
                Some("input:1:18: Undefined type Nope."),
                false,
            ),
            // fields once
            (
                "type Query { a: Int a: String }",
                Some("input:1:21: Field Query.a can only be defined once."),
                true,
            ),
            // argument names
            (
                "type Query { a(__x: Int): Int }",
                Some(
                    "input:1:16: Name \"__x\" must not begin with \"__\", which is reserved by GraphQL introspection.",
                ),
                true,
            ),
            // argument types exist
            (
                "type Query { a(x: Nope): Int }",
                Some("input:1:19: Undefined type Nope."),
                true,
            ),
            // argument types are input types
            (
                "type Query { a(x: [Query]): Int }",
                Some("input:1:16: cannot use [Query] as argument x because OBJECT is not a valid input type"),
                true,
            ),
            // field directives exist
            (
                "type Query { a: Int @foo }",
                Some("input:1:22: Undefined directive foo."),
                false,
            ),
            // field directives in place
            (
                "type Query { a: Int @skip(if: true) }",
                Some("input:1:22: Directive skip is not applicable on FIELD_DEFINITION."),
                false,
            ),
            // field directives once
            (
                "type Query { a: Int @deprecated @deprecated }",
                Some("input:1:34: The directive deprecated can only be used once at this location."),
                false,
            ),
            // directive arguments declared
            (
                "type Query { a: Int @deprecated(foo: 1) }",
                Some("input:1:33: Undefined argument foo for directive deprecated."),
                true,
            ),
            // directive arguments required
            (
                "type Query { a: Int }\nscalar S @specifiedBy",
                Some("input:2:11: Argument url for directive specifiedBy cannot be null."),
                false,
            ),
            // directives refer not to themselves
            (
                "type Query { a: Int }\ndirective @foo(x: Int @foo) on ARGUMENT_DEFINITION",
                Some("input:2:24: Directive foo cannot refer to itself."),
                false,
            ),
            // directive names
            (
                "type Query { a: Int }\ndirective @__foo on FIELD",
                Some(
                    "input:2:12: Name \"__foo\" must not begin with \"__\", which is reserved by GraphQL introspection.",
                ),
                false,
            ),
            // union members exist
            (
                "type Query { a: Int }\nunion U = Query | Nope",
                Some("input:2:7: Undefined type \"Nope\"."),
                false,
            ),
            // union members are objects
            (
                "type Query { a: Int }\nunion U = Query | Int",
                Some("input:2:7: UNION type \"Int\" must be OBJECT."),
                false,
            ),
            // union members once
            (
                "type Query { a: Int }\nunion U = Query | Query",
                Some("input:2:19: Union type U can only include type Query once."),
                false,
            ),
            // interfaces exist
            (
                "type Query { a: Int }\ntype A implements B { a: Int }",
                Some("input:2:6: Undefined type \"B\"."),
                false,
            ),
            // interfaces are interfaces
            (
                "type Query { a: Int }\ntype A implements B { a: Int }\ntype B { a: Int }",
                Some("input:2:6: \"B\" is a non interface type OBJECT."),
                false,
            ),
            // implementations have the fields
            (
                "type Query { a: Int }\ntype A implements B { b: Int }\ninterface B { a: Int }",
                Some("input:2:6: For A to implement B it must have a field called a."),
                false,
            ),
            // implementations narrow field types
            (
                "type Query { a: Int }\ntype A implements B { a: [Int] }\ninterface B { a: [Int!] }",
                Some("input:2:23: For A to implement B the field a must have type [Int!]."),
                true,
            ),
            // implementations have the arguments
            (
                "type Query { a: Int }\ntype A implements B { a: Int }\ninterface B { a(x: Int): Int }",
                Some("input:2:23: For A to implement B the field a must have the same arguments but it is missing x."),
                true,
            ),
            // implementations keep argument types
            (
                "type Query { a: Int }\ntype A implements B { a(x: Int!): Int }\ninterface B { a(x: Int): Int }",
                Some(
                    "input:2:25: For A to implement B the field a must have the same arguments but x has the wrong type.",
                ),
                true,
            ),
            // implementations add only optional arguments
            (
                "type Query { a: Int }\ntype A implements B { a(x: Int, y: Int!): Int }\ninterface B { a(x: Int): Int }",
                Some(
                    "input:2:33: For A to implement B any additional arguments on a must be optional or have a default value but y is required.",
                ),
                true,
            ),
            // implementations implement what the interface implements
            (
                "type Query { a: Int }\ntype A implements C { a: Int }\ninterface B { a: Int }\ninterface C implements B { a: Int }",
                Some("input:2:6: Type A must implement B because it is implemented by C."),
                false,
            ),
            // interfaces do not implement each other
            (
                "type Query { a: Int }\ninterface B implements C { a: Int }\ninterface C implements B { a: Int }",
                Some("input:2:11: Type B cannot implement C because it would create a circular reference."),
                false,
            ),
            // objects have fields
            (
                "type Query",
                Some("input:1:6: OBJECT Query: must define one or more fields."),
                false,
            ),
            // output fields
            (
                "type Query { a: I }\ninput I { a: Int }",
                Some("input:1:14: OBJECT Query: field must be one of SCALAR, OBJECT, INTERFACE, UNION, ENUM."),
                true,
            ),
            // enums have values
            (
                "type Query { a: Int }\nenum E",
                Some("input:2:6: ENUM E: must define one or more unique enum values."),
                false,
            ),
            // enum values are not true, false or null
            (
                "type Query { a: Int }\nenum E { A null }",
                Some("input:2:6: ENUM E: non-enum value null."),
                false,
            ),
            // enum values once
            (
                "type Query { a: Int }\nenum E { A B }\nextend enum E { A }",
                Some("input:3:17: Enum value E.A can only be defined once."),
                true,
            ),
            // input objects have fields
            (
                "type Query { a: Int }\ninput I",
                Some("input:2:7: INPUT_OBJECT I: must define one or more input fields."),
                false,
            ),
            // input fields
            (
                "type Query { a: Int }\ninput I { a: Query }",
                Some("input:2:11: OBJECT a: field must be one of SCALAR, ENUM, INPUT_OBJECT."),
                true,
            ),
            // type names
            (
                "type __Query { a: Int }",
                Some(
                    "input:1:6: Name \"__Query\" must not begin with \"__\", which is reserved by GraphQL introspection.",
                ),
                false,
            ),
            // type directives in place
            (
                "type Query @deprecated { a: Int }",
                Some("input:1:13: Directive deprecated is not applicable on OBJECT."),
                false,
            ),
            // types are checked in name order
            (
                "type Query { a: Int }\ntype D { a: Nope4 }\ntype B { a: Nope2 }\ntype C { a: Nope3 }",
                Some("input:3:13: Undefined type Nope2."),
                true,
            ),
        ];
        for &(sdl, expected, placed) in cases {
            let got = load_text(sdl).err().map(|e| error_text(&e));
            match (got, expected) {
                (None, None) => {}
                (Some(got), Some(want)) if placed => assert_eq!(got, want, "{sdl}"),
                (Some(got), Some(want)) => {
                    let message = |s: &str| s.splitn(4, ':').nth(3).unwrap_or_default().to_string();
                    assert_eq!(message(&got), message(want), "{sdl}");
                }
                (got, want) => panic!("{sdl}: got {got:?}, OPA {want:?}"),
            }
        }
    }

    #[test]
    fn large_schemas_load_in_linear_time() {
        let n = 5_000;
        let fields: String = (0..n).map(|i| format!("f{i}(a: Int, b: Int): Int \n")).collect();
        let values: String = (0..n).map(|i| format!("V{i} ")).collect();
        let members: Vec<String> = (0..n).map(|i| format!("O{i}")).collect();
        let objects: String = members
            .iter()
            .map(|m| format!("type {m} implements I {{ f0(a: Int, b: Int): Int }}\n"))
            .collect();
        let sdl = format!(
            "type Query {{ {fields} }}\ninterface I {{ f0(a: Int, b: Int): Int }}\ntype T implements I {{ {fields} }}\n\
             enum E {{ {values} }}\nunion U = {}\n{objects}",
            members.join(" | ")
        );
        let doc = parse_schema(&sdl).expect("parses");
        let start = std::time::Instant::now();
        assert!(load(&doc).is_ok());
        let repeated = parse_schema(&format!("type Query {{ {fields} f0: Int }}")).expect("parses");
        let e = load(&repeated).expect_err("a field twice");
        assert_eq!(e.message, "Field Query.f0 can only be defined once.");
        assert!(
            start.elapsed() < std::time::Duration::from_secs(10),
            "{:?}",
            start.elapsed()
        );
    }

    #[test]
    fn errors_without_places_print_as_opa_prints_them() {
        let e = GqlError::new("Undefined type Nope.", Pos::default());
        assert_eq!(error_text(&e), "input:-1:-1: Undefined type Nope.");
        let e = GqlError::new("Undefined type Nope.", Pos { line: 1, column: 17 });
        assert_eq!(error_text(&e), "input:1:17: Undefined type Nope.");
    }

    #[test]
    fn strings_are_quoted_as_go_quotes_them() {
        assert_eq!(
            go_quote("a\"b\\c\n\t\u{1}\u{7f}é\u{a0}\u{feff}😀"),
            r#""a\"b\\c\n\t\x01\x7fé\u00a0\ufeff😀""#
        );
    }
}
