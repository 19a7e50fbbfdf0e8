//! What the corpus (`tests/opa/cases/graphql.*`) cannot show: bounds on
//! attacker-sized documents, and that no input makes the builtins panic.

use proptest::prelude::*;
use regorus::Value;

use super::parser::{MAX_DEPTH, parse_query, parse_schema};

/// `{ a { a { … { b } … } } }`, `depth` selection sets deep.
fn nested_selections(depth: usize) -> String {
    format!("{}{{ b }}{}", "{ a ".repeat(depth - 1), " }".repeat(depth - 1))
}

#[test]
fn nesting_up_to_the_bound_parses_and_deeper_is_refused_by_name() {
    assert!(parse_query(&nested_selections(MAX_DEPTH)).is_ok());
    for text in [
        nested_selections(100_000),
        format!("{{ a(x: {}1{}) }}", "[".repeat(100_000), "]".repeat(100_000)),
        format!("{{ a(x: {}1{}) }}", "{k: ".repeat(100_000), "}".repeat(100_000)),
        format!("query ($v: {}Int{}) {{ a }}", "[".repeat(100_000), "]".repeat(100_000)),
    ] {
        let err = parse_query(&text).expect_err("a document nested 100,000 deep is refused");
        assert!(err.message.contains("nested deeper than"), "{}", err.message);
    }
    let schema = format!("type Query {{ a: {}Int{} }}", "[".repeat(100_000), "]".repeat(100_000));
    assert!(
        parse_schema(&schema)
            .expect_err("refused")
            .message
            .contains("nested deeper than")
    );
}

/// A query at the bound goes through parsing, validation and conversion
/// on a thread of the usual 2 MiB stack; one past it is not valid.
#[test]
fn a_query_nested_to_the_bound_is_validated_and_returned() {
    let schema = Value::from("type Query { a: A } type A { a: A b: Int }");
    let answer = call(
        "graphql.parse",
        &[Value::from(nested_selections(MAX_DEPTH).as_str()), schema.clone()],
    )
    .expect("a query nested to the bound is valid");
    let mut depth = 0;
    let mut node = &answer[0]["Operations"][0];
    while let Value::Array(set) = &node["SelectionSet"] {
        depth += 1;
        node = &set[0];
    }
    assert_eq!(depth, MAX_DEPTH, "every level is returned");
    let deeper = Value::from(nested_selections(MAX_DEPTH + 1).as_str());
    assert_eq!(call("graphql.is_valid", &[deeper, schema]).unwrap(), Value::from(false));
}

#[test]
fn errors_name_the_line_and_column_as_opa_does() {
    let err = parse_query("{ a }\n  type A { a: Int }").unwrap_err();
    assert_eq!(err.message, "Unexpected Name \"type\"");
    assert_eq!((err.pos.line, err.pos.column), (2, 3));
    let err = super::parse_query(&[Value::from("query Q")]).unwrap_err();
    assert_eq!(
        err.to_string(),
        "graphql.parse_query: Expected {, found <EOF> in GraphQL string at location 1:8"
    );
}

fn call(name: &str, args: &[Value]) -> anyhow::Result<Value> {
    let (_, _, f) = super::BUILTINS
        .iter()
        .find(|(n, _, _)| *n == name)
        .expect("a graphql builtin");
    f(args)
}

const SCHEMA: &str =
    "type Query { user(id: ID!): User users(first: Int): [User] } type User { id: ID! name: String friends: [User] }";

/// A query that names a fragment many times over, each fragment naming
/// the next twice: expanded, it would be 2^40 fields. Validation must
/// answer without expanding it.
#[test]
fn a_fragment_fan_out_bomb_is_answered() {
    let mut q = String::from("{ users { ...F0 } }\n");
    for i in 0..40 {
        q.push_str(&format!(
            "fragment F{i} on User {{ friends {{ ...F{} ...F{} }} }}\n",
            i + 1,
            i + 1
        ));
    }
    q.push_str("fragment F40 on User { name }\n");
    let answer = call("graphql.is_valid", &[Value::from(q.as_str()), Value::from(SCHEMA)]).unwrap();
    assert!(matches!(answer, Value::Bool(_)), "{answer:?}");
}

fn graphql_text() -> impl Strategy<Value = String> {
    let pieces = prop_oneof![
        Just("{"),
        Just("}"),
        Just("("),
        Just(")"),
        Just("["),
        Just("]"),
        Just(":"),
        Just("$"),
        Just("..."),
        Just("@"),
        Just("!"),
        Just("="),
        Just("|"),
        Just("&"),
        Just(" "),
        Just("\n"),
        Just("query"),
        Just("mutation"),
        Just("fragment"),
        Just("on"),
        Just("type"),
        Just("input"),
        Just("enum"),
        Just("union"),
        Just("interface"),
        Just("extend"),
        Just("schema"),
        Just("scalar"),
        Just("directive"),
        Just("implements"),
        Just("user"),
        Just("id"),
        Just("name"),
        Just("User"),
        Just("Query"),
        Just("F"),
        Just("\""),
        Just("\"\"\""),
        Just("\\u00"),
        Just("1"),
        Just("-1.5e3"),
        Just("#c\n"),
        Just("é"),
        Just("\u{0}"),
    ];
    proptest::collection::vec(pieces, 0..60).prop_map(|v| v.concat())
}

proptest! {
    /// Any text, as query or schema, gets an answer or an error: never a
    /// panic.
    #[test]
    fn any_text_is_answered_without_panic(query in graphql_text(), schema in graphql_text()) {
        for (name, args) in [
            ("graphql.parse_query", vec![Value::from(query.as_str())]),
            ("graphql.parse_schema", vec![Value::from(schema.as_str())]),
            ("graphql.schema_is_valid", vec![Value::from(schema.as_str())]),
            ("graphql.is_valid", vec![Value::from(query.as_str()), Value::from(SCHEMA)]),
            ("graphql.parse_and_verify", vec![Value::from(query.as_str()), Value::from(schema.as_str())]),
        ] {
            let answer = std::panic::catch_unwind(|| call(name, &args));
            prop_assert!(answer.is_ok(), "{name} panicked on {args:?}");
        }
    }
}
