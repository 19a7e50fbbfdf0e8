package compat.rego_parse_module

parsed := rego.parse_module("p.rego", input.module)

parsed_other_file := rego.parse_module("policies/authz.rego", input.module).comments

literal_package := rego.parse_module("p.rego", "package demo.x\nallow if input.ok\n").package.path
