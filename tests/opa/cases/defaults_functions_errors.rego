package compat.defaults_functions_errors

default fee(_) := 0

fee(x) := x * 0.1 if x > 100

# A string sorts after every number, so "x" > 100 holds and the multiplication fails.
fee_of_string := fee("x")

fee_of_null := fee(null)

fee_of_number := fee(1000)
