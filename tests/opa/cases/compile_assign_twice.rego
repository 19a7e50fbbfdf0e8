package compat.compile_assign_twice

value if {
	x := 1
	x := 2
}
