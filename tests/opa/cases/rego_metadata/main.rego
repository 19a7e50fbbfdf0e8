# METADATA
# title: Metadata corpus
# description: Annotations as rego.metadata.rule() and rego.metadata.chain() see them.
# authors:
# - Compliance Team <compliance@example.com>
# organizations:
# - Example Corp
package compat.rego_metadata

import rego.v1

# METADATA
# title: Annotated rule
# custom:
#   severity: high
annotated := rego.metadata.rule()

annotated_chain := rego.metadata.chain()

no_annotations := rego.metadata.rule()

no_annotations_chain := rego.metadata.chain()

# METADATA
# title: Everything
# description: |
#   A rule with every field.
#   Two lines.
# related_resources:
# - https://example.com/policy
# - ref: https://example.com/runbook
#   description: Runbook
# authors:
# - Jane Doe <jane@example.com>
# - name: John
# - email: ops@example.com
# - Only Name
# - <only@example.com>
# organizations: [Acme, "Beta Inc"]
# schemas:
# - input: schema.request
# - input.user: {"type": "string"}
# custom:
#   list: [1, two, 3.5]
#   nested: {a: {b: [true, false, null]}}
#   quoted: "yes"
everything := rego.metadata.rule()

# METADATA
# custom:
#   yes_plain: yes
#   no_plain: no
#   on_plain: on
#   true_caps: TRUE
#   hex: 0x1F
#   octal_old: 017
#   octal_new: 0o17
#   binary: 0b101
#   underscore: 1_000
#   exp: 1e3
#   float: 1.5
#   small: 3.0e-2
#   million: 1000000.0
#   big_float: 12345678.9
#   tiny: 0.00001
#   date: 2001-12-14
#   datetime: 2001-12-14T21:59:43.10-05:00
#   datetime_z: 2001-12-14T21:59:43Z
#   tilde: ~
#   null_caps: NULL
#   uint_max: 18446744073709551615
#   above_uint: 18446744073709551616
#   below_int: -9223372036854775809
#   int_max: 9223372036854775807
#   time_like: 1:20
#   plus: +12
#   dot: .5
#   not_number: 12e
#   minus_zero: -0
#   out_of_range: 0.1e400
#   single: 'single quoted'
#   folded: >
#     folded
#     text
#   anchor: &a {k: v}
#   alias: *a
#   empty_string: ""
#   empty_list: []
#   empty_map: {}
scalars := rego.metadata.rule()

# METADATA
# title: entrypoint
# entrypoint: true
entry := rego.metadata.chain()

# METADATA
# scope: document
# title: The doc
# description: Applies to every multi rule.

# METADATA
# title: first multi
multi contains rego.metadata.rule()

# METADATA
# title: second multi
multi contains rego.metadata.chain()

multi contains "plain"

# METADATA
# title: nearer
# METADATA
# title: nearest
two_blocks := [rego.metadata.rule(), rego.metadata.chain()]

# METADATA
# title: else rule
with_else := 1 if {
	input.never
} else := rego.metadata.chain()

with_else_rule := 1 if {
	input.never
} else := rego.metadata.rule()

# METADATA
# title: a function
annotated_function(x) := [x, rego.metadata.rule(), rego.metadata.chain()]

function_call := annotated_function(7)

# METADATA
# title: ref head
deep.a.b := rego.metadata.chain()

# METADATA
# title: dynamic ref head
dynamic[k] := rego.metadata.chain() if some k in ["x"]

# METADATA
# title: in a body
in_body := count(c) if {
	c := rego.metadata.chain()
	rego.metadata.rule().title == "in a body"
}

# METADATA
# title: comprehension
in_comprehension := [t | some i in [1, 2]; t := sprintf("%d %s", [i, rego.metadata.rule().title])]

# METADATA
# title: "quotes \" and \\ and unicode é"
escapes := rego.metadata.rule()

# METADATA
# title: with blank line

blank_line_between := rego.metadata.rule()

sub_chain := data.compat.rego_metadata.sub.chain_here

sub_rule := data.compat.rego_metadata.sub.rule_here

other_module := data.compat.rego_metadata.other_chain

other_helper := data.compat_rego_metadata.helper.chain_here
