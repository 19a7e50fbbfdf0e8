package compat.sets

a := {1, 2, 3}
b := {2, 3, 4}
union_op := a | b
intersection_op := a & b
difference := a - b
union_fn := union({a, b, {5}})
union_fn_empty := union(set())
intersection_fn := intersection({a, b, {3, 9}})
intersection_fn_empty := intersection(set())
and_fn := and(a, b)
or_fn := or(a, b)
minus_fn := minus(a, b)
set_equal := {1, 2} == {2, 1}
set_dedup := {1, 1, "1", 1.0}
empty_set := set()
set_membership := 2 in a
set_lookup := a[2]
set_lookup_missing := a[9]
nested_sets := {{1, 2}, {2, 1}, {3}}
mixed_sort := {"b", 1, null, true, [1], {"k": "v"}}
sets_of_objects := {{"a": 1}, {"a": 1}, {"a": 2}}
set_compare := {1, 2} < {1, 3}
count_union := count(a | b)
input_overlap := {r | some r in input.roles} & {"admin", "owner"}
input_has_admin := "admin" in input.roles
