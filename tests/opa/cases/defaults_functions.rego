package compat.defaults_functions

default allow := false

allow if input.user == "admin"

default level := 1

level := 5 if input.vip

default fee(_) := 0

fee(x) := x * 0.1 if x > 100

fees := [fee(50), fee(200), fee(100)]


classify(x) := "number" if is_number(x)

classify(x) := "string" if is_string(x)

classify(x) := "other" if {
	not is_number(x)
	not is_string(x)
}

classes := [classify(1), classify("a"), classify(null)]

same_output(x) := "small" if x < 10

same_output(x) := "small" if x < 5

same_output_ok := same_output(1)

multi_arg(a, b) := a + b

multi_arg_result := multi_arg(2, 3)

bool_fn(x) if x > 0

bool_fn_true := bool_fn(1)

bool_fn_false := bool_fn(-1)

undefined_fn_result := v if v := bool_fn(-1)

not_bool_fn if not bool_fn(-1)

default obj := {"a": 1}

obj := {"b": 2} if input.user == "admin"

default from_input := "none"

from_input := input.value
