package compat.conflicts

complete_conflict := 1 if input.a

complete_conflict := 2 if input.b

object_key_conflict[k] := v if {
	some k, v in {"x": 1}
}

object_key_conflict[k] := v if {
	input.b
	some k, v in {"x": 2}
}

fn(x) := 1 if x > 0

fn(x) := 2 if x > 5

fn_conflict := fn(input.n)

same_value_no_conflict := 1 if input.a

same_value_no_conflict := 1 if input.b

else_conflict := 1 if {
	input.a
} else := 2

else_conflict := 3 if input.b
