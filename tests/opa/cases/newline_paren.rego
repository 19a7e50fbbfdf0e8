package compat.newline_paren

# A statement that begins with "(" after one that ends in a reference:
# two statements to OPA.
r if {
	x := input.a
	(1 + 2) > 2
	x == 1
}

s := y if {
	y := data.compat.newline_paren.base
	(y + 1) > 1
}

base := 5
