//! Documents as a policy sees them, and back.
//!
//! OPA returns a parsed document as its Go structures written as JSON,
//! with every position, every null and every empty list or object left
//! out (empty strings and `false` stay). A document passed back to
//! `graphql.parse` or `graphql.is_valid` as an object is read as Go's JSON
//! decoder reads it into those structures: unknown keys are ignored, a
//! missing or null field is its zero value, a field of the wrong type is
//! an error, and every selection is read as a field.

use std::collections::BTreeMap;

use regorus::Value;

use super::ast::*;

// --- to values ----------------------------------------------------------------

/// An object under construction, pruned as OPA prunes: a key whose value
/// is null, an empty array or an empty object is left out.
#[derive(Default)]
struct Obj(BTreeMap<Value, Value>);

impl Obj {
    fn put(mut self, key: &str, value: Value) -> Obj {
        if !is_pruned(&value) {
            self.0.insert(Value::from(key), value);
        }
        self
    }

    fn str(self, key: &str, value: &str) -> Obj {
        self.put(key, Value::from(value))
    }

    fn done(self) -> Value {
        Value::from(self.0)
    }
}

fn is_pruned(v: &Value) -> bool {
    match v {
        Value::Null | Value::Undefined => true,
        Value::Array(a) => a.is_empty(),
        Value::Object(o) => o.is_empty(),
        _ => false,
    }
}

fn list<T>(items: &[T], f: impl Fn(&T) -> Value) -> Value {
    Value::from(items.iter().map(f).filter(|v| !is_pruned(v)).collect::<Vec<_>>())
}

fn strings(items: &[String]) -> Value {
    list(items, |s| Value::from(s.as_str()))
}

fn value(v: &super::ast::Value) -> Value {
    Obj::default()
        .put(
            "Children",
            list(&v.children, |c| {
                Obj::default().str("Name", &c.name).put("Value", value(&c.value)).done()
            }),
        )
        .put("ExpectedTypeHasDefault", Value::from(false))
        .put("Kind", Value::from(v.kind as u32))
        .str("Raw", &v.raw)
        .done()
}

fn opt_value(v: &Option<super::ast::Value>) -> Value {
    v.as_ref().map(value).unwrap_or(Value::Null)
}

fn ty(t: &Type) -> Value {
    Obj::default()
        .put("Elem", t.elem.as_deref().map(ty).unwrap_or(Value::Null))
        .str("NamedType", &t.named)
        .put("NonNull", Value::from(t.non_null))
        .done()
}

fn arguments(args: &[Argument]) -> Value {
    list(args, |a| {
        Obj::default().str("Name", &a.name).put("Value", value(&a.value)).done()
    })
}

fn directives(ds: &[Directive]) -> Value {
    list(ds, |d| {
        Obj::default()
            .put("Arguments", arguments(&d.arguments))
            .str("Location", "")
            .str("Name", &d.name)
            .done()
    })
}

fn selection_set(set: &[Selection]) -> Value {
    list(set, |s| match s {
        Selection::Field(f) => Obj::default()
            .str("Alias", &f.alias)
            .put("Arguments", arguments(&f.arguments))
            .put("Directives", directives(&f.directives))
            .str("Name", &f.name)
            .put("SelectionSet", selection_set(&f.selection_set))
            .done(),
        Selection::FragmentSpread(s) => Obj::default()
            .put("Directives", directives(&s.directives))
            .str("Name", &s.name)
            .done(),
        Selection::InlineFragment(i) => Obj::default()
            .put("Directives", directives(&i.directives))
            .put("SelectionSet", selection_set(&i.selection_set))
            .str("TypeCondition", &i.type_condition)
            .done(),
    })
}

/// A query document as `graphql.parse_query` returns it.
pub(crate) fn query_to_value(doc: &QueryDocument) -> Value {
    let operations = list(&doc.operations, |o| {
        Obj::default()
            .put("Directives", directives(&o.directives))
            .str("Name", &o.name)
            .str("Operation", &o.operation)
            .put("SelectionSet", selection_set(&o.selection_set))
            .put(
                "VariableDefinitions",
                list(&o.variables, |v| {
                    Obj::default()
                        .put("DefaultValue", opt_value(&v.default))
                        .put("Directives", directives(&v.directives))
                        .put("Type", ty(&v.ty))
                        .put("Used", Value::from(false))
                        .str("Variable", &v.variable)
                        .done()
                }),
            )
            .done()
    });
    let fragments = list(&doc.fragments, |f| {
        Obj::default()
            .put("Directives", directives(&f.directives))
            .str("Name", &f.name)
            .put("SelectionSet", selection_set(&f.selection_set))
            .str("TypeCondition", &f.type_condition)
            .done()
    });
    Obj::default()
        .put("Fragments", fragments)
        .put("Operations", operations)
        .done()
}

fn argument_definitions(args: &[ArgumentDefinition]) -> Value {
    list(args, |a| {
        Obj::default()
            .put("DefaultValue", opt_value(&a.default))
            .str("Description", &a.description)
            .put("Directives", directives(&a.directives))
            .str("Name", &a.name)
            .put("Type", ty(&a.ty))
            .done()
    })
}

fn definition(d: &Definition) -> Value {
    Obj::default()
        .put("BuiltIn", Value::from(d.builtin))
        .str("Description", &d.description)
        .put("Directives", directives(&d.directives))
        .put(
            "EnumValues",
            list(&d.enum_values, |e| {
                Obj::default()
                    .str("Description", &e.description)
                    .put("Directives", directives(&e.directives))
                    .str("Name", &e.name)
                    .done()
            }),
        )
        .put(
            "Fields",
            list(&d.fields, |f| {
                Obj::default()
                    .put("Arguments", argument_definitions(&f.arguments))
                    .put("DefaultValue", opt_value(&f.default))
                    .str("Description", &f.description)
                    .put("Directives", directives(&f.directives))
                    .str("Name", &f.name)
                    .put("Type", ty(&f.ty))
                    .done()
            }),
        )
        .put("Interfaces", strings(&d.interfaces))
        .str("Kind", d.kind.as_str())
        .str("Name", &d.name)
        .put("Types", strings(&d.types))
        .done()
}

fn schema_definitions(defs: &[SchemaDefinition]) -> Value {
    list(defs, |s| {
        Obj::default()
            .str("Description", &s.description)
            .put("Directives", directives(&s.directives))
            .put(
                "OperationTypes",
                list(&s.operation_types, |o| {
                    Obj::default().str("Operation", &o.operation).str("Type", &o.ty).done()
                }),
            )
            .done()
    })
}

/// A schema document as `graphql.parse_schema` returns it.
pub(crate) fn schema_to_value(doc: &SchemaDocument) -> Value {
    Obj::default()
        .put("Definitions", list(&doc.definitions, definition))
        .put(
            "Directives",
            list(&doc.directives, |d| {
                Obj::default()
                    .put("Arguments", argument_definitions(&d.arguments))
                    .str("Description", &d.description)
                    .put("IsRepeatable", Value::from(d.repeatable))
                    .put("Locations", strings(&d.locations))
                    .str("Name", &d.name)
                    .done()
            }),
        )
        .put("Extensions", list(&doc.extensions, definition))
        .put("Schema", schema_definitions(&doc.schema))
        .put("SchemaExtension", schema_definitions(&doc.schema_extension))
        .done()
}

// --- from values --------------------------------------------------------------

/// Why an object could not be read as a document.
#[derive(Debug)]
pub(crate) enum Unreadable {
    /// A field of the wrong type: OPA's JSON decoder refuses it.
    Mistyped(String),
    /// A value, a type or an argument's value missing where OPA follows it
    /// without looking: OPA fails the whole call, `graphql.is_valid` and
    /// `graphql.schema_is_valid` included.
    Missing(&'static str),
}

impl std::fmt::Display for Unreadable {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Unreadable::Mistyped(m) => f.write_str(m),
            Unreadable::Missing(what) => write!(f, "the document has no {what} where one is required"),
        }
    }
}

type Read<T> = Result<T, Unreadable>;

/// One object being read: `what` names its Go structure in errors. Keys
/// match as Go's JSON decoder matches them, ignoring case, except in
/// operations, fragments and selections, which OPA reads by their exact
/// names.
struct Fields<'a> {
    what: &'static str,
    map: Option<&'a regorus::value::Object>,
    exact: bool,
}

fn go_kind(v: &Value) -> &'static str {
    match v {
        Value::Bool(_) => "bool",
        Value::Number(_) => "number",
        Value::String(_) => "string",
        Value::Array(_) | Value::Set(_) => "array",
        Value::Object(_) => "object",
        _ => "null",
    }
}

impl<'a> Fields<'a> {
    fn of(what: &'static str, v: &'a Value) -> Read<Fields<'a>> {
        match v {
            Value::Object(o) => Ok(Fields {
                what,
                map: Some(&**o),
                exact: false,
            }),
            Value::Null => Ok(Fields {
                what,
                map: None,
                exact: false,
            }),
            other => Err(Unreadable::Mistyped(format!(
                "json: cannot unmarshal {} into Go value of type ast.{what}",
                go_kind(other)
            ))),
        }
    }

    fn exact(what: &'static str, v: &'a Value) -> Read<Fields<'a>> {
        Ok(Fields {
            exact: true,
            ..Fields::of(what, v)?
        })
    }

    fn get(&self, key: &str) -> Option<&'a Value> {
        let map = self.map?;
        let found = map.get(&Value::from(key)).or_else(|| {
            if self.exact {
                return None;
            }
            map.iter()
                .find(|(k, _)| matches!(k, Value::String(s) if s.eq_ignore_ascii_case(key)))
                .map(|(_, v)| v)
        });
        found.filter(|v| !matches!(v, Value::Null))
    }

    fn mismatch(&self, key: &str, got: &Value, want: &str) -> Unreadable {
        Unreadable::Mistyped(format!(
            "json: cannot unmarshal {} into Go struct field {}.{key} of type {want}",
            go_kind(got),
            self.what
        ))
    }

    fn string(&self, key: &str) -> Read<String> {
        match self.get(key) {
            None => Ok(String::new()),
            Some(Value::String(s)) => Ok(s.to_string()),
            Some(other) => Err(self.mismatch(key, other, "string")),
        }
    }

    fn boolean(&self, key: &str) -> Read<bool> {
        match self.get(key) {
            None => Ok(false),
            Some(Value::Bool(b)) => Ok(*b),
            Some(other) => Err(self.mismatch(key, other, "bool")),
        }
    }

    fn list<T>(&self, key: &str, want: &str, mut item: impl FnMut(&'a Value) -> Read<T>) -> Read<Vec<T>> {
        match self.get(key) {
            None => Ok(Vec::new()),
            Some(Value::Array(items)) => items.iter().map(&mut item).collect(),
            Some(other) => Err(self.mismatch(key, other, want)),
        }
    }

    fn strings(&self, key: &str) -> Read<Vec<String>> {
        self.list(key, "[]string", |v| match v {
            Value::String(s) => Ok(s.to_string()),
            Value::Null => Ok(String::new()),
            other => Err(self.mismatch(key, other, "string")),
        })
    }

    /// A value OPA follows without checking it is there.
    fn required<T>(&self, key: &'static str, read: impl FnOnce(&'a Value) -> Read<T>) -> Read<T> {
        self.get(key).map(read).unwrap_or(Err(Unreadable::Missing(key)))
    }

    fn optional<T>(&self, key: &str, read: impl FnOnce(&'a Value) -> Read<T>) -> Read<Option<T>> {
        self.get(key).map(read).transpose()
    }
}

fn value_from(v: &Value) -> Read<super::ast::Value> {
    let f = Fields::of("Value", v)?;
    let kind = match f.get("Kind") {
        None => ValueKind::Variable,
        Some(Value::Number(n)) => n.as_i64().and_then(ValueKind::from_number).ok_or_else(|| {
            Unreadable::Mistyped(
                "json: cannot unmarshal number into Go struct field Value.Kind of type ast.ValueKind".into(),
            )
        })?,
        Some(other) => return Err(f.mismatch("Kind", other, "ast.ValueKind")),
    };
    let children = f.list("Children", "ast.ChildValueList", |c| {
        let cf = Fields::of("ChildValue", c)?;
        Ok(ChildValue {
            name: cf.string("Name")?,
            value: cf.required("Value", value_from)?,
            pos: Pos::default(),
        })
    })?;
    Ok(super::ast::Value {
        kind,
        raw: f.string("Raw")?,
        children,
        pos: Pos::default(),
    })
}

fn type_from(v: &Value) -> Read<Type> {
    let f = Fields::of("Type", v)?;
    Ok(Type {
        named: f.string("NamedType")?,
        elem: f.optional("Elem", type_from)?.map(Box::new),
        non_null: f.boolean("NonNull")?,
        pos: Pos::default(),
    })
}

fn arguments_from(f: &Fields<'_>) -> Read<Vec<Argument>> {
    f.list("Arguments", "ast.ArgumentList", |a| {
        let af = Fields::of("Argument", a)?;
        Ok(Argument {
            name: af.string("Name")?,
            value: af.required("Value", value_from)?,
            pos: Pos::default(),
        })
    })
}

fn directives_from(f: &Fields<'_>) -> Read<Vec<Directive>> {
    f.list("Directives", "ast.DirectiveList", |d| {
        let df = Fields::of("Directive", d)?;
        Ok(Directive {
            name: df.string("Name")?,
            arguments: arguments_from(&df)?,
            pos: Pos::default(),
        })
    })
}

/// A selection set: every element is read as a field, as OPA reads one.
fn selection_set_from(f: &Fields<'_>) -> Read<Vec<Selection>> {
    f.list("SelectionSet", "ast.SelectionSet", |s| {
        let sf = Fields::exact("Field", s)?;
        Ok(Selection::Field(Field {
            alias: sf.string("Alias")?,
            name: sf.string("Name")?,
            arguments: arguments_from(&sf)?,
            directives: directives_from(&sf)?,
            selection_set: selection_set_from(&sf)?,
            pos: Pos::default(),
        }))
    })
}

/// A query document from the object `graphql.parse_query` returns.
pub(crate) fn query_from_value(v: &Value) -> Read<QueryDocument> {
    let f = Fields::of("QueryDocument", v)?;
    let operations = f.list("Operations", "ast.OperationList", |o| {
        let of = Fields::exact("OperationDefinition", o)?;
        Ok(Operation {
            operation: of.string("Operation")?,
            name: of.string("Name")?,
            variables: of.list("VariableDefinitions", "ast.VariableDefinitionList", |vd| {
                let vf = Fields::of("VariableDefinition", vd)?;
                Ok(VariableDefinition {
                    variable: vf.string("Variable")?,
                    ty: vf.required("Type", type_from)?,
                    default: vf.optional("DefaultValue", value_from)?,
                    directives: directives_from(&vf)?,
                    pos: Pos::default(),
                })
            })?,
            directives: directives_from(&of)?,
            selection_set: selection_set_from(&of)?,
            pos: Pos::default(),
        })
    })?;
    let fragments = f.list("Fragments", "ast.FragmentDefinitionList", |fr| {
        let ff = Fields::exact("FragmentDefinition", fr)?;
        Ok(Fragment {
            name: ff.string("Name")?,
            type_condition: ff.string("TypeCondition")?,
            directives: directives_from(&ff)?,
            selection_set: selection_set_from(&ff)?,
            pos: Pos::default(),
        })
    })?;
    Ok(QueryDocument { operations, fragments })
}

fn argument_definitions_from(f: &Fields<'_>) -> Read<Vec<ArgumentDefinition>> {
    f.list("Arguments", "ast.ArgumentDefinitionList", |a| {
        let af = Fields::of("ArgumentDefinition", a)?;
        Ok(ArgumentDefinition {
            description: af.string("Description")?,
            name: af.string("Name")?,
            default: af.optional("DefaultValue", value_from)?,
            ty: af.required("Type", type_from)?,
            directives: directives_from(&af)?,
            pos: Pos::default(),
        })
    })
}

/// A definition. OPA takes any `Kind` text; one outside the six kinds is
/// refused here as a mistyped field.
fn definition_from(v: &Value) -> Read<Definition> {
    let f = Fields::of("Definition", v)?;
    let kind_text = f.string("Kind")?;
    let kind = DefinitionKind::parse(&kind_text)
        .ok_or_else(|| Unreadable::Mistyped(format!("unknown definition kind {kind_text:?}")))?;
    Ok(Definition {
        kind,
        description: f.string("Description")?,
        name: f.string("Name")?,
        directives: directives_from(&f)?,
        interfaces: f.strings("Interfaces")?,
        fields: f.list("Fields", "ast.FieldList", |fd| {
            let ff = Fields::of("FieldDefinition", fd)?;
            Ok(FieldDefinition {
                description: ff.string("Description")?,
                name: ff.string("Name")?,
                arguments: argument_definitions_from(&ff)?,
                default: ff.optional("DefaultValue", value_from)?,
                ty: ff.required("Type", type_from)?,
                directives: directives_from(&ff)?,
                pos: Pos::default(),
            })
        })?,
        types: f.strings("Types")?,
        enum_values: f.list("EnumValues", "ast.EnumValueList", |e| {
            let ef = Fields::of("EnumValueDefinition", e)?;
            Ok(EnumValueDefinition {
                description: ef.string("Description")?,
                name: ef.string("Name")?,
                directives: directives_from(&ef)?,
                pos: Pos::default(),
            })
        })?,
        builtin: f.boolean("BuiltIn")?,
        pos: Pos::default(),
    })
}

fn schema_definitions_from(f: &Fields<'_>, key: &str) -> Read<Vec<SchemaDefinition>> {
    f.list(key, "ast.SchemaDefinitionList", |s| {
        let sf = Fields::of("SchemaDefinition", s)?;
        Ok(SchemaDefinition {
            description: sf.string("Description")?,
            directives: directives_from(&sf)?,
            operation_types: sf.list("OperationTypes", "ast.OperationTypeDefinitionList", |o| {
                let of = Fields::of("OperationTypeDefinition", o)?;
                Ok(OperationTypeDefinition {
                    operation: of.string("Operation")?,
                    ty: of.string("Type")?,
                    pos: Pos::default(),
                })
            })?,
            pos: Pos::default(),
        })
    })
}

/// A schema document from the object `graphql.parse_schema` returns.
pub(crate) fn schema_from_value(v: &Value) -> Read<SchemaDocument> {
    let f = Fields::of("SchemaDocument", v)?;
    Ok(SchemaDocument {
        schema: schema_definitions_from(&f, "Schema")?,
        schema_extension: schema_definitions_from(&f, "SchemaExtension")?,
        directives: f.list("Directives", "ast.DirectiveDefinitionList", |d| {
            let df = Fields::of("DirectiveDefinition", d)?;
            Ok(DirectiveDefinition {
                description: df.string("Description")?,
                name: df.string("Name")?,
                arguments: argument_definitions_from(&df)?,
                locations: df.strings("Locations")?,
                repeatable: df.boolean("IsRepeatable")?,
                pos: Pos::default(),
            })
        })?,
        definitions: f.list("Definitions", "ast.DefinitionList", definition_from)?,
        extensions: f.list("Extensions", "ast.DefinitionList", definition_from)?,
    })
}
