package compat.not_undefined

blocked := {"mallory": true}

default allow := false

allow if {
	not blocked[input.user]
}

not_string_name if not is_string(input.name)

admins := {"alice", "root"}

not_admin if not input.user in admins

is_admin(u) if u in admins

not_admin_fn if not is_admin(input.user)

flagged contains u if {
	some u in ["mallory", "eve"]
}

not_flagged if not flagged[input.user]

not_input if not input

not_input_user if not input.user

not_false_value if not input.flag

not_null_value if {
	x := input.maybe
	not x
}

double_negation if {
	not not_input_user
}

count_undefined_ref := count(input.items) if true

default with_default := "fallback"

with_default := input.user if input.user != ""

undefined_in_array := [input.user, 1]

undefined_in_object := {"user": input.user}

undefined_arg_fn := upper(input.user)
