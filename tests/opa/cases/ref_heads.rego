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

solo.only := input.never

dyn[k].v := 1 if {
	some k in input.never
}

else_parent.p.q := 1 if input.never
