package compat.compile_undefined_local

# A local declared with `:=` has its value's type: `limits` has no
# `weekly`, and OPA refuses the module.
allow if {
	limits := {"daily": 100}
	input.amount < limits.weekly
}
