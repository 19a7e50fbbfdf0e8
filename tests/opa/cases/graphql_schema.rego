package compat.graphql_schema

# The schema of the graphql category, parsed: its document compared once.
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

shop_parsed := graphql.parse_schema(shop)

shop_verified := graphql.parse_and_verify(`{ me { id } }`, shop)
