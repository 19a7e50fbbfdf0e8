package compat.with_keyword

allow if input.role == "admin"

action := input.chain[0]

chained := v if {
	v := action with input.chain as ["delete"]
}

override_input := v if {
	v := allow with input as {"role": "admin"}
}

override_input_path := v if {
	v := allow with input.role as "admin"
}

limit := data.limits.max

override_data := v if {
	v := limit with data.limits.max as 99
}

override_data_missing := v if {
	v := limit with data.limits as {"max": 7}
}

count_items := count(input.items)

mocked_count := v if {
	v := count_items with count as 42
}

double(x) := x * 2

uses_double := double(4)

mocked_function := v if {
	v := uses_double with double as 100
}

mock_impl(x) := x + 1000

replaced_function := v if {
	v := uses_double with double as mock_impl
}

mocked_builtin_fn := n if {
	n := upper("x") with upper as lower
}

time_mocked := v if {
	v := time.now_ns() with time.now_ns as 1700000000000000000
}

partial_set contains x if some x in input.items

with_on_partial := v if {
	v := partial_set with input.items as [3, 1, 3]
}

nested_with := v if {
	v := override_data with data.limits.max as 5
}

undefined_under_with := v if {
	v := allow with input as {"role": "user"}
}

with_dotted_builtin := v if {
	v := upper("abc") with upper as strings.reverse
}

with_builtin_two_args := v if {
	v := startswith("abc", "c") with startswith as endswith
}

with_builtin_in_function := v if {
	v := f("x") with upper as lower
}

f(s) := upper(s)
