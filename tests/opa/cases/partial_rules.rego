package compat.partial_rules

cfg := {"on_call": {"sec": "alice", "ops": "bob"}}

notify contains cfg.on_call[t] if some t in input.teams

roles[name] := role if {
	some name, role in input.assignments
	role != "none"
}

tagged contains tag if {
	some item in input.items
	tag := item.tag
}

empty_set contains x if {
	some x in []
}

by_length[n] contains w if {
	some w in ["a", "bb", "cc", "ddd"]
	n := count(w)
}

nested.obligations.notify contains who if some who in input.teams

nested.obligations.level := 2

ids contains id if {
	some i in numbers.range(1, 3)
	id := sprintf("id-%d", [i])
}

object_values[k] := v if {
	some k, v in {"x": 1, "y": 2}
}

set_of_numbers contains n if some n in [1, 1.0, 2, 2.5]
