package compat.compile_spaced_call

# A call written with a space before its "(": not a call to OPA.
r if {
	x := count ([1])
	x > 0
}
