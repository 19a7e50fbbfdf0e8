package compat.json_schema_random

# Random schemas and documents (generated once, with a fixed seed): which
# branch of anyOf/oneOf/contains the errors are taken from, every keyword,
# schemas the library refuses, documents of each type. Errors of several
# properties are sorted: OPA lists them in Go's map order, which varies.

result := [ok, sort(errors)] if [ok, errors] := json.match_schema(input.doc, input.schema)
