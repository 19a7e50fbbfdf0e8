package compat.rego_parse_module_errors

empty_module := rego.parse_module("p.rego", "# only a comment\n\n")

no_package := rego.parse_module("p.rego", "x := 1")

v0_rule_body := rego.parse_module("p.rego", "package p\n\nallow {\n\ttrue\n}\n")

not_a_string := rego.parse_module("p.rego", input.number)
