//! The GraphQL documents OPA's `graphql.*` builtins read and return.
//!
//! The shapes are those of the Go parser OPA embeds: a policy sees a parsed
//! document as that parser's structures written as JSON (field names in
//! Go's case: `Operations`, `SelectionSet`, `NamedType`…), with positions,
//! nulls and empty lists or objects left out. [`to_value`](QueryDocument::to_value)
//! writes them so; [`from_value`](QueryDocument::from_value) reads such an
//! object back, as `graphql.parse` and `graphql.is_valid` accept one in
//! place of the text.

/// A place in the source: 1-based line and column, as errors print it.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub(crate) struct Pos {
    pub line: u32,
    pub column: u32,
}

/// The kind of a literal value, numbered as the Go parser numbers it (the
/// number is what a policy sees in `Value.Kind`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum ValueKind {
    Variable = 0,
    Int = 1,
    Float = 2,
    String = 3,
    Block = 4,
    Boolean = 5,
    Null = 6,
    Enum = 7,
    List = 8,
    Object = 9,
}

impl ValueKind {
    pub(crate) fn from_number(n: i64) -> Option<ValueKind> {
        use ValueKind::*;
        Some(match n {
            0 => Variable,
            1 => Int,
            2 => Float,
            3 => String,
            4 => Block,
            5 => Boolean,
            6 => Null,
            7 => Enum,
            8 => List,
            9 => Object,
            _ => return None,
        })
    }
}

/// A literal or a variable: `Raw` holds its text (a variable's name, a
/// string's decoded contents); lists and objects hold `children`, a list's
/// with empty names.
#[derive(Clone, Debug, PartialEq)]
pub(crate) struct Value {
    pub kind: ValueKind,
    pub raw: String,
    pub children: Vec<ChildValue>,
    pub pos: Pos,
}

#[derive(Clone, Debug, PartialEq)]
pub(crate) struct ChildValue {
    pub name: String,
    pub value: Value,
    pub pos: Pos,
}

/// A type reference: `Int`, `[Int!]!`. A list has an empty `named` and its
/// element in `elem`.
#[derive(Clone, Debug, PartialEq, Default)]
pub(crate) struct Type {
    pub named: String,
    pub elem: Option<Box<Type>>,
    pub non_null: bool,
    pub pos: Pos,
}

impl Type {
    /// The named type at the bottom of any lists.
    pub(crate) fn name(&self) -> &str {
        match &self.elem {
            Some(e) => e.name(),
            None => &self.named,
        }
    }
}

impl std::fmt::Display for Type {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match &self.elem {
            Some(e) => write!(f, "[{e}]")?,
            None => f.write_str(&self.named)?,
        }
        if self.non_null {
            f.write_str("!")?;
        }
        Ok(())
    }
}

#[derive(Clone, Debug, PartialEq)]
pub(crate) struct Argument {
    pub name: String,
    pub value: Value,
    pub pos: Pos,
}

#[derive(Clone, Debug, PartialEq)]
pub(crate) struct Directive {
    pub name: String,
    pub arguments: Vec<Argument>,
    pub pos: Pos,
}

#[derive(Clone, Debug, PartialEq)]
pub(crate) enum Selection {
    Field(Field),
    FragmentSpread(FragmentSpread),
    InlineFragment(InlineFragment),
}

/// A field selected: `alias` is the name when none is written.
#[derive(Clone, Debug, PartialEq)]
pub(crate) struct Field {
    pub alias: String,
    pub name: String,
    pub arguments: Vec<Argument>,
    pub directives: Vec<Directive>,
    pub selection_set: Vec<Selection>,
    pub pos: Pos,
}

#[derive(Clone, Debug, PartialEq)]
pub(crate) struct FragmentSpread {
    pub name: String,
    pub directives: Vec<Directive>,
    pub pos: Pos,
}

/// `... on T { … }`; `type_condition` is empty for `... { … }`.
#[derive(Clone, Debug, PartialEq)]
pub(crate) struct InlineFragment {
    pub type_condition: String,
    pub directives: Vec<Directive>,
    pub selection_set: Vec<Selection>,
    pub pos: Pos,
}

#[derive(Clone, Debug, PartialEq)]
pub(crate) struct VariableDefinition {
    pub variable: String,
    pub ty: Type,
    pub default: Option<Value>,
    pub directives: Vec<Directive>,
    pub pos: Pos,
}

/// `query`, `mutation` or `subscription`.
#[derive(Clone, Debug, PartialEq)]
pub(crate) struct Operation {
    pub operation: String,
    pub name: String,
    pub variables: Vec<VariableDefinition>,
    pub directives: Vec<Directive>,
    pub selection_set: Vec<Selection>,
    pub pos: Pos,
}

#[derive(Clone, Debug, PartialEq)]
pub(crate) struct Fragment {
    pub name: String,
    pub type_condition: String,
    pub directives: Vec<Directive>,
    pub selection_set: Vec<Selection>,
    pub pos: Pos,
}

/// An executable document: what `graphql.parse_query` reads.
#[derive(Clone, Debug, PartialEq, Default)]
pub(crate) struct QueryDocument {
    pub operations: Vec<Operation>,
    pub fragments: Vec<Fragment>,
}

/// `SCALAR`, `OBJECT`, `INTERFACE`, `UNION`, `ENUM`, `INPUT_OBJECT`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum DefinitionKind {
    Scalar,
    Object,
    Interface,
    Union,
    Enum,
    InputObject,
}

impl DefinitionKind {
    pub(crate) fn as_str(self) -> &'static str {
        match self {
            DefinitionKind::Scalar => "SCALAR",
            DefinitionKind::Object => "OBJECT",
            DefinitionKind::Interface => "INTERFACE",
            DefinitionKind::Union => "UNION",
            DefinitionKind::Enum => "ENUM",
            DefinitionKind::InputObject => "INPUT_OBJECT",
        }
    }

    pub(crate) fn parse(s: &str) -> Option<DefinitionKind> {
        Some(match s {
            "SCALAR" => DefinitionKind::Scalar,
            "OBJECT" => DefinitionKind::Object,
            "INTERFACE" => DefinitionKind::Interface,
            "UNION" => DefinitionKind::Union,
            "ENUM" => DefinitionKind::Enum,
            "INPUT_OBJECT" => DefinitionKind::InputObject,
            _ => return None,
        })
    }
}

/// A type definition or extension. Input objects keep their fields in
/// `fields`, with defaults.
#[derive(Clone, Debug, PartialEq)]
pub(crate) struct Definition {
    pub kind: DefinitionKind,
    pub description: String,
    pub name: String,
    pub directives: Vec<Directive>,
    pub interfaces: Vec<String>,
    pub fields: Vec<FieldDefinition>,
    pub types: Vec<String>,
    pub enum_values: Vec<EnumValueDefinition>,
    pub builtin: bool,
    pub pos: Pos,
}

impl Definition {
    /// A definition of `kind` named `name` with nothing in it yet.
    pub(crate) fn empty(kind: DefinitionKind, name: String, pos: Pos) -> Definition {
        Definition {
            kind,
            description: String::new(),
            name,
            directives: Vec::new(),
            interfaces: Vec::new(),
            fields: Vec::new(),
            types: Vec::new(),
            enum_values: Vec::new(),
            builtin: false,
            pos,
        }
    }
}

/// A field of an object or interface, or an input object's field.
#[derive(Clone, Debug, PartialEq)]
pub(crate) struct FieldDefinition {
    pub description: String,
    pub name: String,
    pub arguments: Vec<ArgumentDefinition>,
    pub default: Option<Value>,
    pub ty: Type,
    pub directives: Vec<Directive>,
    pub pos: Pos,
}

#[derive(Clone, Debug, PartialEq)]
pub(crate) struct ArgumentDefinition {
    pub description: String,
    pub name: String,
    pub default: Option<Value>,
    pub ty: Type,
    pub directives: Vec<Directive>,
    pub pos: Pos,
}

#[derive(Clone, Debug, PartialEq)]
pub(crate) struct EnumValueDefinition {
    pub description: String,
    pub name: String,
    pub directives: Vec<Directive>,
    pub pos: Pos,
}

#[derive(Clone, Debug, PartialEq)]
pub(crate) struct DirectiveDefinition {
    pub description: String,
    pub name: String,
    pub arguments: Vec<ArgumentDefinition>,
    pub locations: Vec<String>,
    pub repeatable: bool,
    pub pos: Pos,
}

#[derive(Clone, Debug, PartialEq)]
pub(crate) struct OperationTypeDefinition {
    pub operation: String,
    pub ty: String,
    pub pos: Pos,
}

/// `schema { query: Q }` or its extension.
#[derive(Clone, Debug, PartialEq)]
pub(crate) struct SchemaDefinition {
    pub description: String,
    pub directives: Vec<Directive>,
    pub operation_types: Vec<OperationTypeDefinition>,
    pub pos: Pos,
}

/// A type-system document: what `graphql.parse_schema` reads.
#[derive(Clone, Debug, PartialEq, Default)]
pub(crate) struct SchemaDocument {
    pub schema: Vec<SchemaDefinition>,
    pub schema_extension: Vec<SchemaDefinition>,
    pub directives: Vec<DirectiveDefinition>,
    pub definitions: Vec<Definition>,
    pub extensions: Vec<Definition>,
}
