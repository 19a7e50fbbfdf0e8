//! `graphql.*` as OPA answers them: documents parsed into the shapes of the
//! Go parser OPA embeds, schemas checked and queries validated by the
//! rules of the GraphQL specification as that parser applies them.
//!
//! - [`ast`]: the documents, and their form as a policy sees them.
//! - [`lexer`], [`parser`]: text to documents, with the Go parser's errors.
//! - [`schema`]: a schema document, with the built-in definitions merged
//!   in, checked and indexed for validation.
//! - [`validate`]: a query validated against a schema.

pub(crate) mod ast;
pub(crate) mod lexer;
pub(crate) mod parser;
pub(crate) mod schema;
pub(crate) mod validate;

use ast::Pos;

/// A parse or validation error: the message and where it was found.
#[derive(Clone, Debug, PartialEq)]
pub(crate) struct GqlError {
    pub message: String,
    pub pos: Pos,
}

impl GqlError {
    pub(crate) fn new(message: impl Into<String>, pos: Pos) -> GqlError {
        GqlError {
            message: message.into(),
            pos,
        }
    }
}

mod convert;

use std::cell::RefCell;
use std::collections::HashMap;
use std::rc::Rc;

use regorus::Value;

use super::{Builtin, operand};
use ast::{QueryDocument, SchemaDocument};

pub(super) const BUILTINS: &[(&str, u8, Builtin)] = &[
    ("graphql.parse_query", 1, parse_query),
    ("graphql.parse_schema", 1, parse_schema),
    ("graphql.parse", 2, parse),
    ("graphql.parse_and_verify", 2, parse_and_verify),
    ("graphql.is_valid", 2, is_valid),
    ("graphql.schema_is_valid", 1, schema_is_valid),
];

/// A parse error as OPA words it: `Unexpected Name "type" in GraphQL
/// string at location 1:1`.
fn parse_error(name: &str, e: GqlError) -> anyhow::Error {
    anyhow::anyhow!(
        "{name}: {} in GraphQL string at location {}:{}",
        e.message,
        e.pos.line,
        e.pos.column
    )
}

/// A schema that does not load, as OPA words it.
fn schema_error(name: &str, e: GqlError) -> anyhow::Error {
    anyhow::anyhow!(
        "{name}: Error in gqlparser SchemaDocument to Schema conversion: {}",
        schema::error_text(&e)
    )
}

fn parse_query(args: &[Value]) -> anyhow::Result<Value> {
    let name = "graphql.parse_query";
    let text = super::string(name, args, 1)?;
    let doc = parser::parse_query(text).map_err(|e| parse_error(name, e))?;
    Ok(convert::query_to_value(&doc))
}

fn parse_schema(args: &[Value]) -> anyhow::Result<Value> {
    let name = "graphql.parse_schema";
    let text = super::string(name, args, 1)?;
    let doc = parser::parse_schema(text).map_err(|e| parse_error(name, e))?;
    Ok(convert::schema_to_value(&doc))
}

/// Why `graphql.parse`, `parse_and_verify` or `is_valid` did not verify.
enum Unverified {
    /// Argument `n` (1-based) is neither text nor an object.
    Type(usize),
    /// A document does not parse, the schema does not load, or the query
    /// is not valid: `parse` fails, the others answer `false`.
    Invalid(anyhow::Error),
    /// A document object lacks what OPA follows without looking: every
    /// one of them fails.
    Broken(anyhow::Error),
}

fn unreadable(name: &str, e: convert::Unreadable) -> Unverified {
    match e {
        convert::Unreadable::Mistyped(_) => Unverified::Invalid(anyhow::anyhow!("{name}: {e}")),
        convert::Unreadable::Missing(_) => Unverified::Broken(anyhow::anyhow!("{name}: {e}")),
    }
}

/// A schema read and loaded: the document as given, and the schema with
/// the built-in definitions, or why it is not one.
enum LoadedSchema {
    Unparsed(GqlError),
    Parsed {
        doc: SchemaDocument,
        schema: Box<Result<schema::Schema, GqlError>>,
    },
}

impl LoadedSchema {
    fn of(doc: SchemaDocument) -> LoadedSchema {
        let schema = schema::load(&doc);
        LoadedSchema::Parsed {
            doc,
            schema: Box::new(schema),
        }
    }
}

/// Schema texts kept loaded per evaluating thread: a policy checks each
/// request's query against the same schema, and loading one (the
/// built-in definitions merged in, every check made) costs more than
/// validating most queries.
const SCHEMA_CACHE: usize = 16;

thread_local! {
    static SCHEMAS: RefCell<HashMap<String, Rc<LoadedSchema>>> = RefCell::new(HashMap::new());
}

fn loaded_text(text: &str) -> Rc<LoadedSchema> {
    SCHEMAS.with(|cache| {
        if let Some(hit) = cache.borrow().get(text) {
            return hit.clone();
        }
        let loaded = Rc::new(match parser::parse_schema(text) {
            Ok(doc) => LoadedSchema::of(doc),
            Err(e) => LoadedSchema::Unparsed(e),
        });
        let mut cache = cache.borrow_mut();
        if cache.len() >= SCHEMA_CACHE {
            cache.clear();
        }
        cache.insert(text.to_string(), loaded.clone());
        loaded
    })
}

/// The query (text or a parsed document) read, the schema (likewise)
/// loaded, and the query validated against it, as `graphql.parse`,
/// `parse_and_verify` and `is_valid` do.
fn verified(name: &str, args: &[Value]) -> Result<(QueryDocument, Rc<LoadedSchema>), Unverified> {
    let query = match &args[0] {
        Value::String(s) => parser::parse_query(s).map_err(|e| Unverified::Invalid(parse_error(name, e)))?,
        v @ Value::Object(_) => convert::query_from_value(v).map_err(|e| unreadable(name, e))?,
        _ => return Err(Unverified::Type(1)),
    };
    let loaded = match &args[1] {
        Value::String(s) => loaded_text(s),
        v @ Value::Object(_) => Rc::new(LoadedSchema::of(
            convert::schema_from_value(v).map_err(|e| unreadable(name, e))?,
        )),
        _ => return Err(Unverified::Type(2)),
    };
    let schema = match &*loaded {
        LoadedSchema::Unparsed(e) => return Err(Unverified::Invalid(parse_error(name, e.clone()))),
        LoadedSchema::Parsed { schema, .. } => match schema.as_ref() {
            Err(e) => return Err(Unverified::Invalid(schema_error(name, e.clone()))),
            Ok(schema) => schema,
        },
    };
    // Every error is in the message, as OPA lists them; where OPA's own
    // validator fails, so does every one of these builtins.
    let errors = validate::validate_all(schema, &query)
        .map_err(|fatal| Unverified::Broken(anyhow::anyhow!("{name}: {}", fatal.message)))?;
    if !errors.is_empty() {
        return Err(Unverified::Invalid(anyhow::anyhow!(
            "{name}: {}",
            validate::error_text(&errors)
        )));
    }
    Ok((query, loaded))
}

/// The schema document of a verified pair, as a policy sees it.
fn schema_value(loaded: &LoadedSchema) -> Value {
    match loaded {
        LoadedSchema::Parsed { doc, .. } => convert::schema_to_value(doc),
        LoadedSchema::Unparsed(_) => Value::new_object(),
    }
}

fn parse(args: &[Value]) -> anyhow::Result<Value> {
    let name = "graphql.parse";
    match verified(name, args) {
        Ok((query, schema)) => Ok(Value::from(vec![
            convert::query_to_value(&query),
            schema_value(&schema),
        ])),
        Err(Unverified::Type(n)) => Err(operand(name, n, "one of {string, object}", &args[n - 1])),
        Err(Unverified::Invalid(e) | Unverified::Broken(e)) => Err(e),
    }
}

fn parse_and_verify(args: &[Value]) -> anyhow::Result<Value> {
    match verified("graphql.parse_and_verify", args) {
        Ok((query, schema)) => Ok(Value::from(vec![
            Value::from(true),
            convert::query_to_value(&query),
            schema_value(&schema),
        ])),
        Err(Unverified::Broken(e)) => Err(e),
        Err(_) => Ok(Value::from(vec![
            Value::from(false),
            Value::new_object(),
            Value::new_object(),
        ])),
    }
}

fn is_valid(args: &[Value]) -> anyhow::Result<Value> {
    match verified("graphql.is_valid", args) {
        Ok(_) => Ok(Value::from(true)),
        Err(Unverified::Broken(e)) => Err(e),
        Err(_) => Ok(Value::from(false)),
    }
}

fn schema_is_valid(args: &[Value]) -> anyhow::Result<Value> {
    let loaded = match &args[0] {
        Value::String(s) => loaded_text(s),
        v @ Value::Object(_) => match convert::schema_from_value(v) {
            Ok(doc) => Rc::new(LoadedSchema::of(doc)),
            Err(e @ convert::Unreadable::Missing(_)) => anyhow::bail!("graphql.schema_is_valid: {e}"),
            Err(convert::Unreadable::Mistyped(_)) => return Ok(Value::from(false)),
        },
        _ => return Ok(Value::from(false)),
    };
    Ok(Value::from(matches!(
        &*loaded,
        LoadedSchema::Parsed { schema, .. } if schema.is_ok()
    )))
}

#[cfg(test)]
mod tests;
