package compat.compile_unsafe_var

allow if {
	x > 1
}
