//! GraphQL documents (spec §2 and §3) parsed as the Go parser OPA embeds
//! parses them: the same documents accepted, the same error for the first
//! token that does not fit ("Unexpected Name \"type\"", "Expected {, found
//! <EOF>", "expected at least one definition, found }").
//!
//! Nesting (selection sets, list and object values, list types) is bounded
//! by [`MAX_DEPTH`]: a query is attacker input, and each level is a frame
//! of this recursive parser.

use super::GqlError;
use super::ast::*;
use super::lexer::{Kind, Lexer, Token};

/// Deepest nesting of selection sets, values and types a document may have.
pub(crate) const MAX_DEPTH: usize = 200;

/// An executable document: operations and fragments.
pub(crate) fn parse_query(src: &str) -> Result<QueryDocument, GqlError> {
    let mut p = Parser::new(src)?;
    let mut doc = QueryDocument::default();
    while p.peek().kind != Kind::Eof {
        let tok = p.peek().clone();
        match tok.kind {
            Kind::BraceL => doc.operations.push(p.operation()?),
            Kind::Name => match tok.value.as_str() {
                "query" | "mutation" | "subscription" => doc.operations.push(p.operation()?),
                "fragment" => doc.fragments.push(p.fragment()?),
                _ => return Err(p.unexpected(&tok)),
            },
            _ => return Err(p.unexpected(&tok)),
        }
    }
    Ok(doc)
}

/// A type-system document: types, directives, schema definitions and their
/// extensions.
pub(crate) fn parse_schema(src: &str) -> Result<SchemaDocument, GqlError> {
    let mut p = Parser::new(src)?;
    let mut doc = SchemaDocument::default();
    while p.peek().kind != Kind::Eof {
        let description = p.description()?;
        let tok = p.peek().clone();
        if tok.kind != Kind::Name {
            return Err(p.unexpected(&tok));
        }
        match tok.value.as_str() {
            "schema" => doc
                .schema
                .push(p.schema_definition(description.map(|d| d.value).unwrap_or_default())?),
            "directive" => doc
                .directives
                .push(p.directive_definition(description.map(|d| d.value).unwrap_or_default())?),
            "scalar" | "type" | "interface" | "union" | "enum" | "input" => doc
                .definitions
                .push(p.type_definition(description.map(|d| d.value).unwrap_or_default(), false)?),
            "extend" => {
                if let Some(d) = description {
                    return Err(p.unexpected(&d));
                }
                p.advance()?;
                let what = p.peek().clone();
                if what.kind == Kind::Name && what.value == "schema" {
                    let ext = p.schema_definition(String::new())?;
                    if ext.directives.is_empty() && ext.operation_types.is_empty() {
                        return Err(p.unexpected(&p.peek().clone()));
                    }
                    doc.schema_extension.push(ext);
                } else if what.kind == Kind::Name
                    && matches!(
                        what.value.as_str(),
                        "scalar" | "type" | "interface" | "union" | "enum" | "input"
                    )
                {
                    doc.extensions.push(p.type_definition(String::new(), true)?);
                } else {
                    return Err(p.unexpected(&what));
                }
            }
            _ => return Err(p.unexpected(&tok)),
        }
    }
    Ok(doc)
}

struct Parser<'a> {
    lexer: Lexer<'a>,
    current: Token,
    depth: usize,
}

const DIRECTIVE_LOCATIONS: &[&str] = &[
    "QUERY",
    "MUTATION",
    "SUBSCRIPTION",
    "FIELD",
    "FRAGMENT_DEFINITION",
    "FRAGMENT_SPREAD",
    "INLINE_FRAGMENT",
    "VARIABLE_DEFINITION",
    "SCHEMA",
    "SCALAR",
    "OBJECT",
    "FIELD_DEFINITION",
    "ARGUMENT_DEFINITION",
    "INTERFACE",
    "UNION",
    "ENUM",
    "ENUM_VALUE",
    "INPUT_OBJECT",
    "INPUT_FIELD_DEFINITION",
];

impl<'a> Parser<'a> {
    fn new(src: &'a str) -> Result<Parser<'a>, GqlError> {
        let mut lexer = Lexer::new(src);
        let current = lexer.next_token()?;
        Ok(Parser {
            lexer,
            current,
            depth: 0,
        })
    }

    fn peek(&self) -> &Token {
        &self.current
    }

    /// Moves to the next token, returning the one passed.
    fn advance(&mut self) -> Result<Token, GqlError> {
        let next = self.lexer.next_token()?;
        Ok(std::mem::replace(&mut self.current, next))
    }

    /// The error for a token that does not fit where it stands. A string's
    /// place is given after its opening quotes, as the Go parser gives it.
    fn unexpected(&self, tok: &Token) -> GqlError {
        let mut pos = tok.pos;
        match tok.kind {
            Kind::String => pos.column += 1,
            Kind::BlockString => pos.column += 3,
            _ => {}
        }
        GqlError::new(format!("Unexpected {}", tok.describe()), pos)
    }

    fn expect(&mut self, kind: Kind) -> Result<Token, GqlError> {
        if self.current.kind == kind {
            return self.advance();
        }
        Err(GqlError::new(
            format!("Expected {}, found {}", kind.describe(), self.current.describe()),
            self.current.pos,
        ))
    }

    fn skip(&mut self, kind: Kind) -> Result<bool, GqlError> {
        if self.current.kind == kind {
            self.advance()?;
            return Ok(true);
        }
        Ok(false)
    }

    fn expect_keyword(&mut self, word: &str) -> Result<(), GqlError> {
        if self.current.kind == Kind::Name && self.current.value == word {
            self.advance()?;
            return Ok(());
        }
        Err(GqlError::new(
            format!("Expected \"{word}\", found {}", self.current.describe()),
            self.current.pos,
        ))
    }

    fn name(&mut self) -> Result<Token, GqlError> {
        self.expect(Kind::Name)
    }

    fn enter(&mut self) -> Result<(), GqlError> {
        self.depth += 1;
        if self.depth > MAX_DEPTH {
            return Err(GqlError::new(
                format!("document nested deeper than {MAX_DEPTH} levels"),
                self.current.pos,
            ));
        }
        Ok(())
    }

    fn leave(&mut self) {
        self.depth -= 1;
    }

    /// `open item+ close`: at least one item.
    fn many<T>(
        &mut self,
        open: Kind,
        close: Kind,
        mut item: impl FnMut(&mut Self) -> Result<T, GqlError>,
    ) -> Result<Vec<T>, GqlError> {
        self.expect(open)?;
        if self.current.kind == close {
            return Err(GqlError::new(
                format!("expected at least one definition, found {}", self.current.describe()),
                self.current.pos,
            ));
        }
        let mut out = Vec::new();
        while !self.skip(close)? {
            out.push(item(self)?);
        }
        Ok(out)
    }

    /// `open item* close` when `open` is next; nothing otherwise.
    fn some<T>(
        &mut self,
        open: Kind,
        close: Kind,
        item: impl FnMut(&mut Self) -> Result<T, GqlError>,
    ) -> Result<Vec<T>, GqlError> {
        if self.current.kind != open {
            return Ok(Vec::new());
        }
        self.many(open, close, item)
    }

    // --- executable documents ---------------------------------------------

    fn operation(&mut self) -> Result<Operation, GqlError> {
        let pos = self.current.pos;
        if self.current.kind == Kind::BraceL {
            let selection_set = self.selection_set()?;
            return Ok(Operation {
                operation: "query".into(),
                name: String::new(),
                variables: Vec::new(),
                directives: Vec::new(),
                selection_set,
                pos,
            });
        }
        let operation = self.advance()?.value;
        let name = if self.current.kind == Kind::Name {
            self.advance()?.value
        } else {
            String::new()
        };
        let variables = self.some(Kind::ParenL, Kind::ParenR, |p| p.variable_definition())?;
        let directives = self.directives(false)?;
        let selection_set = self.selection_set()?;
        Ok(Operation {
            operation,
            name,
            variables,
            directives,
            selection_set,
            pos,
        })
    }

    fn variable_definition(&mut self) -> Result<VariableDefinition, GqlError> {
        let pos = self.current.pos;
        let variable = self.variable()?;
        let (ty, default, directives) = self.typed_value()?;
        Ok(VariableDefinition {
            variable,
            ty,
            default,
            directives,
            pos,
        })
    }

    /// `: Type = default @directives` after a variable or an input value's
    /// name; the default and the directives are constants.
    fn typed_value(&mut self) -> Result<(Type, Option<Value>, Vec<Directive>), GqlError> {
        self.expect(Kind::Colon)?;
        let ty = self.type_ref()?;
        let default = if self.skip(Kind::Equals)? {
            Some(self.value(true)?)
        } else {
            None
        };
        Ok((ty, default, self.directives(true)?))
    }

    fn variable(&mut self) -> Result<String, GqlError> {
        self.expect(Kind::Dollar)?;
        Ok(self.name()?.value)
    }

    fn selection_set(&mut self) -> Result<Vec<Selection>, GqlError> {
        self.enter()?;
        let set = self.many(Kind::BraceL, Kind::BraceR, |p| p.selection())?;
        self.leave();
        Ok(set)
    }

    fn selection(&mut self) -> Result<Selection, GqlError> {
        if self.current.kind == Kind::Spread {
            return self.fragment_selection();
        }
        Ok(Selection::Field(self.field()?))
    }

    fn field(&mut self) -> Result<Field, GqlError> {
        let pos = self.current.pos;
        let first = self.name()?.value;
        let (alias, name) = if self.skip(Kind::Colon)? {
            (first, self.name()?.value)
        } else {
            (first.clone(), first)
        };
        let arguments = self.arguments(false)?;
        let directives = self.directives(false)?;
        let selection_set = if self.current.kind == Kind::BraceL {
            self.selection_set()?
        } else {
            Vec::new()
        };
        Ok(Field {
            alias,
            name,
            arguments,
            directives,
            selection_set,
            pos,
        })
    }

    fn arguments(&mut self, constant: bool) -> Result<Vec<Argument>, GqlError> {
        self.some(Kind::ParenL, Kind::ParenR, |p| {
            let pos = p.current.pos;
            let name = p.name()?.value;
            p.expect(Kind::Colon)?;
            let value = p.value(constant)?;
            Ok(Argument { name, value, pos })
        })
    }

    fn fragment_selection(&mut self) -> Result<Selection, GqlError> {
        self.expect(Kind::Spread)?;
        // A spread is placed at its name, an inline fragment at what
        // follows the dots, as OPA places them.
        let pos = self.current.pos;
        if self.current.kind == Kind::Name && self.current.value != "on" {
            let name = self.name()?.value;
            let directives = self.directives(false)?;
            return Ok(Selection::FragmentSpread(FragmentSpread { name, directives, pos }));
        }
        let type_condition = if self.current.kind == Kind::Name && self.current.value == "on" {
            self.advance()?;
            self.name()?.value
        } else {
            String::new()
        };
        let directives = self.directives(false)?;
        let selection_set = self.selection_set()?;
        Ok(Selection::InlineFragment(InlineFragment {
            type_condition,
            directives,
            selection_set,
            pos,
        }))
    }

    fn fragment(&mut self) -> Result<Fragment, GqlError> {
        let pos = self.current.pos;
        self.expect_keyword("fragment")?;
        if self.current.kind == Kind::Name && self.current.value == "on" {
            return Err(self.unexpected(&self.current.clone()));
        }
        let name = self.name()?.value;
        self.expect_keyword("on")?;
        let type_condition = self.name()?.value;
        let directives = self.directives(false)?;
        let selection_set = self.selection_set()?;
        Ok(Fragment {
            name,
            type_condition,
            directives,
            selection_set,
            pos,
        })
    }

    // --- values -------------------------------------------------------------

    fn value(&mut self, constant: bool) -> Result<Value, GqlError> {
        let tok = self.current.clone();
        let mut pos = tok.pos;
        match tok.kind {
            Kind::String => pos.column += 1,
            Kind::BlockString => pos.column += 3,
            _ => {}
        }
        let leaf = |kind, raw: String| Value {
            kind,
            raw,
            children: Vec::new(),
            pos,
        };
        match tok.kind {
            Kind::BracketL => {
                self.enter()?;
                self.advance()?;
                let mut children = Vec::new();
                while !self.skip(Kind::BracketR)? {
                    if self.current.kind == Kind::Eof {
                        return Err(self.unexpected(&self.current.clone()));
                    }
                    let pos = self.current.pos;
                    let value = self.value(constant)?;
                    children.push(ChildValue {
                        name: String::new(),
                        value,
                        pos,
                    });
                }
                self.leave();
                Ok(Value {
                    kind: ValueKind::List,
                    raw: String::new(),
                    children,
                    pos,
                })
            }
            Kind::BraceL => {
                self.enter()?;
                self.advance()?;
                let mut children = Vec::new();
                while !self.skip(Kind::BraceR)? {
                    if self.current.kind == Kind::Eof {
                        return Err(self.unexpected(&self.current.clone()));
                    }
                    let pos = self.current.pos;
                    let name = self.name()?.value;
                    self.expect(Kind::Colon)?;
                    let value = self.value(constant)?;
                    children.push(ChildValue { name, value, pos });
                }
                self.leave();
                Ok(Value {
                    kind: ValueKind::Object,
                    raw: String::new(),
                    children,
                    pos,
                })
            }
            Kind::Dollar if !constant => Ok(leaf(ValueKind::Variable, self.variable()?)),
            Kind::Int => Ok(leaf(ValueKind::Int, self.advance()?.value)),
            Kind::Float => Ok(leaf(ValueKind::Float, self.advance()?.value)),
            Kind::String => Ok(leaf(ValueKind::String, self.advance()?.value)),
            Kind::BlockString => Ok(leaf(ValueKind::Block, self.advance()?.value)),
            Kind::Name => {
                let raw = self.advance()?.value;
                let kind = match raw.as_str() {
                    "true" | "false" => ValueKind::Boolean,
                    "null" => ValueKind::Null,
                    _ => ValueKind::Enum,
                };
                Ok(leaf(kind, raw))
            }
            _ => Err(self.unexpected(&tok)),
        }
    }

    fn type_ref(&mut self) -> Result<Type, GqlError> {
        let mut pos = self.current.pos;
        let mut ty = if self.skip(Kind::BracketL)? {
            pos = self.current.pos;
            self.enter()?;
            let elem = self.type_ref()?;
            self.leave();
            self.expect(Kind::BracketR)?;
            Type {
                named: String::new(),
                elem: Some(Box::new(elem)),
                non_null: false,
                pos,
            }
        } else {
            Type {
                named: self.name()?.value,
                elem: None,
                non_null: false,
                pos,
            }
        };
        if self.skip(Kind::Bang)? {
            ty.non_null = true;
        }
        Ok(ty)
    }

    fn directives(&mut self, constant: bool) -> Result<Vec<Directive>, GqlError> {
        let mut out = Vec::new();
        while self.current.kind == Kind::At {
            self.advance()?;
            let pos = self.current.pos;
            let name = self.name()?.value;
            let arguments = self.arguments(constant)?;
            out.push(Directive { name, arguments, pos });
        }
        Ok(out)
    }

    // --- type-system documents ----------------------------------------------

    fn description(&mut self) -> Result<Option<Token>, GqlError> {
        if matches!(self.current.kind, Kind::String | Kind::BlockString) {
            return Ok(Some(self.advance()?));
        }
        Ok(None)
    }

    fn description_text(&mut self) -> Result<String, GqlError> {
        Ok(self.description()?.map(|d| d.value).unwrap_or_default())
    }

    fn schema_definition(&mut self, description: String) -> Result<SchemaDefinition, GqlError> {
        self.expect_keyword("schema")?;
        let pos = self.current.pos;
        let directives = self.directives(true)?;
        let operation_types = self.some(Kind::BraceL, Kind::BraceR, |p| {
            let pos = p.current.pos;
            let op = p.name()?;
            if !matches!(op.value.as_str(), "query" | "mutation" | "subscription") {
                return Err(p.unexpected(&op));
            }
            p.expect(Kind::Colon)?;
            let ty = p.name()?.value;
            Ok(OperationTypeDefinition {
                operation: op.value,
                ty,
                pos,
            })
        })?;
        Ok(SchemaDefinition {
            description,
            directives,
            operation_types,
            pos,
        })
    }

    fn type_definition(&mut self, description: String, extension: bool) -> Result<Definition, GqlError> {
        let keyword = self.advance()?.value;
        let pos = self.current.pos;
        let name = self.name()?.value;
        let mut def = Definition {
            description,
            ..Definition::empty(DefinitionKind::Scalar, name, pos)
        };
        match keyword.as_str() {
            "scalar" => def.directives = self.directives(true)?,
            "type" | "interface" => {
                def.kind = if keyword == "type" {
                    DefinitionKind::Object
                } else {
                    DefinitionKind::Interface
                };
                // OPA reads no `implements` in an interface's extension.
                if !(extension && keyword == "interface") {
                    def.interfaces = self.implements()?;
                }
                def.directives = self.directives(true)?;
                def.fields = self.some(Kind::BraceL, Kind::BraceR, |p| p.field_definition())?;
            }
            "union" => {
                def.kind = DefinitionKind::Union;
                def.directives = self.directives(true)?;
                if self.skip(Kind::Equals)? {
                    self.skip(Kind::Pipe)?;
                    def.types.push(self.name()?.value);
                    while self.skip(Kind::Pipe)? {
                        def.types.push(self.name()?.value);
                    }
                }
            }
            "enum" => {
                def.kind = DefinitionKind::Enum;
                def.directives = self.directives(true)?;
                def.enum_values = self.some(Kind::BraceL, Kind::BraceR, |p| {
                    let description = p.description_text()?;
                    let pos = p.current.pos;
                    let name = p.name()?.value;
                    let directives = p.directives(true)?;
                    Ok(EnumValueDefinition {
                        description,
                        name,
                        directives,
                        pos,
                    })
                })?;
            }
            _ => {
                def.kind = DefinitionKind::InputObject;
                def.directives = self.directives(true)?;
                def.fields = self.some(Kind::BraceL, Kind::BraceR, |p| {
                    let a = p.input_value_definition()?;
                    Ok(FieldDefinition {
                        description: a.description,
                        name: a.name,
                        arguments: Vec::new(),
                        default: a.default,
                        ty: a.ty,
                        directives: a.directives,
                        pos: a.pos,
                    })
                })?;
            }
        }
        // An extension must add something: OPA refuses `extend type T`.
        let adds = !(def.directives.is_empty()
            && def.interfaces.is_empty()
            && def.fields.is_empty()
            && def.types.is_empty()
            && def.enum_values.is_empty());
        if extension && !adds {
            return Err(self.unexpected(&self.current.clone()));
        }
        Ok(def)
    }

    fn implements(&mut self) -> Result<Vec<String>, GqlError> {
        let mut out = Vec::new();
        if self.current.kind == Kind::Name && self.current.value == "implements" {
            self.advance()?;
            self.skip(Kind::Amp)?;
            out.push(self.name()?.value);
            while self.skip(Kind::Amp)? {
                out.push(self.name()?.value);
            }
        }
        Ok(out)
    }

    fn field_definition(&mut self) -> Result<FieldDefinition, GqlError> {
        let description = self.description_text()?;
        let pos = self.current.pos;
        let name = self.name()?.value;
        let arguments = self.some(Kind::ParenL, Kind::ParenR, |p| p.input_value_definition())?;
        self.expect(Kind::Colon)?;
        let ty = self.type_ref()?;
        let directives = self.directives(true)?;
        Ok(FieldDefinition {
            description,
            name,
            arguments,
            default: None,
            ty,
            directives,
            pos,
        })
    }

    fn input_value_definition(&mut self) -> Result<ArgumentDefinition, GqlError> {
        let description = self.description_text()?;
        let pos = self.current.pos;
        let name = self.name()?.value;
        let (ty, default, directives) = self.typed_value()?;
        Ok(ArgumentDefinition {
            description,
            name,
            default,
            ty,
            directives,
            pos,
        })
    }

    fn directive_definition(&mut self, description: String) -> Result<DirectiveDefinition, GqlError> {
        let pos = self.current.pos;
        self.expect_keyword("directive")?;
        self.expect(Kind::At)?;
        let name = self.name()?.value;
        let arguments = self.some(Kind::ParenL, Kind::ParenR, |p| p.input_value_definition())?;
        let repeatable = if self.current.kind == Kind::Name && self.current.value == "repeatable" {
            self.advance()?;
            true
        } else {
            false
        };
        self.expect_keyword("on")?;
        self.skip(Kind::Pipe)?;
        let mut locations = vec![self.directive_location()?];
        while self.skip(Kind::Pipe)? {
            locations.push(self.directive_location()?);
        }
        Ok(DirectiveDefinition {
            description,
            name,
            arguments,
            locations,
            repeatable,
            pos,
        })
    }

    fn directive_location(&mut self) -> Result<String, GqlError> {
        let tok = self.name()?;
        if DIRECTIVE_LOCATIONS.contains(&tok.value.as_str()) {
            return Ok(tok.value);
        }
        Err(self.unexpected(&tok))
    }
}
