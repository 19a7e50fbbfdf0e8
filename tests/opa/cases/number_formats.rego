package compat.number_formats

# How OPA prints numbers that come out of arithmetic, builtins and literals.
literal_int := 42
literal_float := 4.20
literal_exp := 4.2e1
literal_exp_upper := 4.2E+1
literal_neg_exp := 42e-1
literal_big_exp := 1e400
plus_exp_int := 1e21 + 0
plus_exp_one := 1e21 + 1
plus_float_whole := 1.5 + 1.5
plus_int_float_zero := 1 + 0.0
mul_float_whole := 2.5 * 2
mul_tenth := 0.1 * 3
mul_one := 1.0 * 1
mul_big_float := 1e20 * 1e20
div_back := 10 / 4 * 4
div_small := 1 / 1000000
div_tiny := 1 / 10000000
div_big := 1e30 / 3
minus_cancel := 0.3 - 0.1
minus_to_zero := 0.5 - 0.5
minus_negative_zero := 0 - 0.0
round_big := round(1e21)
round_float_literal := round(2.0)
floor_whole := floor(2.0)
ceil_exp := ceil(1.5e2)
abs_float_whole := abs(-2.0)
abs_big_int := abs(-9007199254740993)
sum_floats_whole := sum([0.5, 0.5])
sum_exp := sum([1e21, 1e21])
product_float := product([1.5, 2])
max_keeps_literal := max([1.50, 1.0])
min_keeps_literal := min([2e0, 3])
count_is_int := count([1, 2]) / 2
to_number_keeps := [to_number("1.50"), to_number("1e2"), to_number("-0")]
format_int_exp := format_int(1e3, 10)
sprintf_exp := sprintf("%v %v %v %d", [1e21, 1.50, 100e-2, 1e2])
json_round_trip := json.unmarshal(json.marshal([1.50, 1e2, 1e21]))
numbers_range_float := numbers.range(1, 3.0)
compare_exp_int := 1e2 == 100
set_exp_int := {1e2, 100, 100.0}
object_exp_key := {1e2: "a"}
# to_number("007") is 7, but OPA keeps the text "007", which cannot be written as JSON: compare, never output it.
to_number_leading_zeros := [to_number("007") == 7, to_number("007") + 0]
