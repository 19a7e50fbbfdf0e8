package compat.misc

schema := `type Query { user(id: ID!): User } type User { id: ID! name: String }`
query := `query { user(id: "1") { name } }`
bad_query := `query { user(id: "1") { email } }`
graphql_valid := graphql.is_valid(query, schema)
graphql_invalid := graphql.is_valid(bad_query, schema)
graphql_schema_valid := graphql.schema_is_valid(schema)
graphql_schema_invalid := graphql.schema_is_valid("type Query {")
graphql_parsed_query_kind := graphql.parse_query(query).Operations[0].Operation
graphql_parsed_schema_names := [d.Name | some d in graphql.parse_schema(schema).Definitions]
graphql_parse_ok := count(graphql.parse(query, schema))
graphql_parse_and_verify := graphql.parse_and_verify(bad_query, schema)[0]
uri_valid := uri.is_valid("https://user@example.com:8443/p/a?q=1#frag")
uri_invalid := uri.is_valid("::not a uri")
uri_parsed := uri.parse("https://user@example.com:8443/p/a?q=1&q=2#frag")
uri_parsed_relative := uri.parse("/just/a/path?x")
parsed_module_package := rego.parse_module("p.rego", "package demo.x\nallow if input.ok\n").package.path
# METADATA
# title: Annotated rule
# custom:
#   severity: high
annotated := rego.metadata.rule()
annotated_chain_len := count(rego.metadata.chain())
aws_signed := providers.aws.sign_req(
	{"method": "GET", "url": "https://example.amazonaws.com/path?b=2&a=1", "headers": {"x-custom": "v"}},
	{"aws_access_key": "AKIDEXAMPLE", "aws_secret_access_key": "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY", "aws_service": "s3", "aws_region": "us-east-1"},
	1700000000000000000,
)
