package compat.template_strings

# Template strings: `$"…{expr}…"` and the raw `` $`…` ``.

greeting := $"hello {input.name}!"

missing := $"user {input.nope} / {input.nope.deeper}"

values := $"{input.items} {count(input.items)} {input.flag} {null} {input.nested}"

composite := $"{{"b": 1, "a": [1, "x\ty"]}} {set()} {{3, 1, 2}} {[]} {{}}"

comparison := $"{input.name == "bob"} {count(input.items) > 1} {"a" in {"a"}}"

numbers := $"{10 / 4} {10 / 4 * 2} {2 * 0.5} {0.1 + 0.2} {7} {-3}"

escapes := $"tab\there \"q\" \\ \u00e9 {"}"} }"

raw := $`raw {input.name} \n "q"`

multiline := $`line one {input.name}
line two {count(input.items)}`

nested := $"outer {$"inner {input.name}"}"

comment_inside := $"{input.name # a comment
}"

empty := $""

plain := $"no expressions"

per_item contains $"item {x}" if some x in input.items

as_operand if $"{input.name}" == "bob"

in_function := f(3)

f(a) := $"<{a}>"

in_comprehension := [$"{i}:{x}" | some i, x in input.items]

direct := internal.template_string(["a", {1}, set(), "b"])

default fallback := $"default {1}"

fallback := $"set {input.flag}" if input.flag == true

with_body := msg if {
	name := upper(input.name)
	msg := $"{name} has {count(input.items)}"
}

printed if print($"printing {input.name}")

multiple_outputs := internal.template_string([{1, 2}])

error_inside := $"{to_number(input.name)}"

strings_in_sets := $"{{"s"}} {{["s"]}}"

quoted := $"{[input.name]} {{input.name: input.name}}"

negative_zero := $"{input.nested} {[-0.0]} {0.1 * 3}"
