package compat.sets_errors

array_and_set := input.roles & {"admin", "owner"}

set_minus_array := {1, 2} - data.v.list

union_of_strings := union(data.v.strings)
