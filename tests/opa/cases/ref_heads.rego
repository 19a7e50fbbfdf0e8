package compat.ref_heads

a.b.c := 1

a.b.d := "two"

a.e contains "x"

a.e contains "y" if input.y

obligations.notify contains who if some who in input.notify

obligations.log := true

limits[tier].max := n if {
	some tier, n in {"free": 10, "pro": 100}
}

deep.x.y.z := input.v
