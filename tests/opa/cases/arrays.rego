package compat.arrays

concat_basic := array.concat([1, 2], [3])
concat_empty := array.concat([], [])
reverse_basic := array.reverse([1, "two", [3]])
reverse_empty := array.reverse([])
slice_mid := array.slice([0, 1, 2, 3, 4], 1, 3)
slice_clamp := array.slice([0, 1, 2], -5, 10)
slice_inverted := array.slice([0, 1, 2], 2, 1)
flatten_nested := array.flatten([1, [2, [3, [4]]], [], "x"])
flatten_flat := array.flatten([1, 2])
index_lookup := [10, 20, 30][1]
array_equal := [1, 2] == [1, 2]
array_not_equal_order := [1, 2] == [2, 1]
array_compare := [[1, 2] < [1, 3], [1] < [1, 0], [2] > [1, 9]]
array_with_undefined_element := [x | x := [1, 2][_]; x > 1]
input_first := input.list[0]
input_last := input.list[count(input.list) - 1]
input_reversed := array.reverse(input.list)
index_out_of_range := data.v.list[5]
index_float := data.v.list[1.0]
index_negative := data.v.list[-1]
