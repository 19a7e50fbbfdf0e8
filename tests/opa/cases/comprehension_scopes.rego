package compat.comprehension_scopes

# A name a comprehension declares is its own, whatever the rule calls it.

some_in := z if {
	some y in [1]
	z := [y | some y in [2, 3]]
}

assigned := z if {
	some y in [1]
	z := [y | y := 2]
}

after_assign := z if {
	y := 1
	z := [y | some y in input.xs]
}

in_head := [y | some y in [2, 3]] if {
	some y in [1]
	y > 0
}

object_keys := z if {
	some y in [1]
	y > 0
	z := {k: y | some k, y in {"a": 5, "b": 6}}
}

nested := z if {
	some y in [1]
	y > 0
	z := [[y, w] | some y in [2]; w := [y | some y in [3, 4]]]
}

key_only := z if {
	some y in [1]
	y > 0
	z := [y | some y, _ in ["a", "b"]]
}

filtered := z if {
	some y in [1]
	z := [y | some y in [2, 3]; y > input.n]
}

outer_kept := [y, z] if {
	some y in [7]
	z := [y | some y in [2]]
}

uses_outer := z if {
	some y in [1]
	z := [x | some x in [2, 3]; x > y]
}

f(y) := [y | some y in [2]]

arg_shadowed := f(1)

every_shadow if {
	some y in [1]
	y > 0
	every y in [2] { y > 1 }
}
