package compat.compile_match_error

# Two sides of = that can never be equal: OPA's type checker refuses.

allow if input.ok

label := y if {
	y = "a"
	y = 1
}
