package compat.input_forms

whole := input

input_type := type_name(input)

has_input if input

input_is_empty_object if input == {}

user := input.user

user_or_default := object.get(input, "user", "anon")

keys := object.keys(input)

first := input[0]

defined_nested := input.a.b.c

input_count := count(input)
