package compat.aggregates_errors

count_number := count(data.v.num)
count_null := count(data.v.null)
sum_mixed_string := sum([1, data.v.str])
sort_object_arg := sort(data.v.obj)
sum_input_items := sum(input.items)
max_object := max(data.v.obj)
