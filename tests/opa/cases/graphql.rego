package compat.graphql

# A schema with every kind of definition: queries, mutations and
# subscriptions, an interface, a union, an enum, an input object, a custom
# scalar and a directive.
shop := `
"The root of every read."
type Query {
  user(id: ID!): User
  users(filter: UserFilter, first: Int = 10): [User!]!
  node(id: ID!): Node
  search(text: String!): [SearchResult!]!
  me: User @deprecated(reason: "use user")
}

type Mutation {
  setRole(id: ID!, role: Role!): User
}

type Subscription {
  userChanged(id: ID!): User
  orderPlaced: Order
}

interface Node { id: ID! }

type User implements Node {
  id: ID!
  name: String
  email: String @auth(requires: ADMIN)
  role: Role!
  orders(last: Int): [Order]
  friends: [User]
}

type Order implements Node {
  id: ID!
  total: Float!
  placed: Time
  owner: User!
}

union SearchResult = User | Order

enum Role { ADMIN USER GUEST }

input UserFilter {
  role: Role
  nameContains: String
  ids: [ID!]
  nested: UserFilter
}

scalar Time

directive @auth(requires: Role = ADMIN) on FIELD_DEFINITION | OBJECT
`

parsed_query := graphql.parse_query(input.query)

parsed_schema := graphql.parse_schema(input.schema)

schema_valid := graphql.schema_is_valid(input.schema)

shop_valid := graphql.is_valid(input.query, shop)

# The schema's half of each answer is compared once (shop_parsed in
# graphql_schema); here, that it is that document.
shop_document(s) := graphql.parse_schema(s)

shop_verified := [v[0], v[1], v[2] == shop_document(shop)] if v := graphql.parse_and_verify(input.query, shop)

shop_parse := [p[0], p[1] == shop_document(shop)] if p := graphql.parse(input.query, shop)

own_schema_valid := graphql.is_valid(input.query, input.schema)

# A parsed document passed back in place of its text.
reparsed_valid := graphql.is_valid(graphql.parse_query(input.query), graphql.parse_schema(shop))

reparsed_schema_valid := graphql.schema_is_valid(graphql.parse_schema(input.schema))

# Arguments of the wrong type, which the compiler cannot see.
one := json.unmarshal("1")

wrong_types := [
	graphql.is_valid(one, shop),
	graphql.is_valid("{ me { id } }", one),
	graphql.schema_is_valid(one),
	graphql.parse_and_verify(one, shop),
]

wrong_type_parse := graphql.parse(one, shop)

wrong_type_parse_query := graphql.parse_query(one)
