package compat.compile_rego_v0_syntax

allow {
	true
}
