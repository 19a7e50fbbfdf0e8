package compat.control_flow

level := "high" if {
	input.score > 80
} else := "medium" if {
	input.score > 40
} else := "low"

grade(s) := "A" if {
	s >= 90
} else := "B" if {
	s >= 80
} else := "C"

grades := [grade(95), grade(85), grade(10)]

else_undefined_condition := "first" if {
	input.missing == 1
} else := "second"

else_no_final := "big" if {
	input.score > 1000
} else := "small" if {
	input.score < 0
}

all_positive if {
	every n in input.nums {
		n > 0
	}
}

every_empty if {
	every n in [] {
		n > 100
	}
}

every_object if {
	every k, v in {"a": 1, "b": 2} {
		is_string(k)
		v < 3
	}
}

some_in_array contains x if some x in input.nums

some_index_value contains [i, x] if some i, x in input.nums

some_object contains [k, v] if some k, v in {"a": 1, "b": 2}

some_set contains x if some x in {"p", "q"}

some_wildcard := count([1 | some _ in input.nums])

some_var_iteration contains i if {
	some i
	input.nums[i] > 1
}

array_comp := [y | some x in input.nums; y := x * 2]

set_comp := {y | some x in input.nums; y := x % 2}

object_comp := {sprintf("k%d", [i]): x | some i, x in input.nums}

nested_comp := [[y | some y in numbers.range(1, x)] | some x in [1, 2, 3]]

comp_with_undefined := [x.name | some x in [{"name": "a"}, {}, {"name": "b"}]]

object_comp_conflict_free := {k: v | some k, v in {"x": 1}}

chained_calls := upper(trim_space(concat(" ", [" a", "b "])))
