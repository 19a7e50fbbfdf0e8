package compat.numbers_errors

to_number_hex := to_number("0x10")
to_number_space := to_number(" 1")
to_number_bad := to_number("abc")
to_number_inf := to_number("Inf")
div_zero := 1 / data.v.zero
rem_zero := 1 % data.v.zero
rem_float := 5.5 % 2
input_double := input.n * 2
input_plus_one := input.n + 1
input_half := input.n / 2
