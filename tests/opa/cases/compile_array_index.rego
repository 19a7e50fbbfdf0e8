package compat.compile_array_index

out_of_range := [10, 20][5]
