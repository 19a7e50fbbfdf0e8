package compat.operators

plus_named := plus(1, 2)
minus_named := minus(5, 7)
minus_sets_named := minus({1, 2}, {2})
mul_named := mul(3, 0.5)
div_named := div(1, 4)
rem_named := rem(-9, 4)
equal_named := equal(1, 1.0)
neq_named := neq("a", "b")
lt_named := lt(1, 2)
lte_named := lte(2, 2)
gt_named := gt("b", "a")
gte_named := gte([1], [1])
and_named := and({1, 2}, {2, 3})
or_named := or({1}, {2})
eq_named if eq(1, 1)
assign_named := x if assign(x, 5)
membership_pair := ["k", 1] in {"k": 1}
membership_key_value := "k", 1 in {"k": 1}
membership_index := 0, "a" in ["a"]
not_membership if not 3 in [1, 2]
cross_type_equal := [1 == "1", null == false, [] == {}, {} == set()]
unify_array := [a, b] if [a, b] = [1, 2]
unify_object := v if {"k": v} = {"k": "found"}
print_returns_true if print("printing", 1, {"a": null})
eq_binds := x if eq(x, 7)
eq_compares if eq(input.missing_or_one, 1)
assign_in_body := n if {
	assign(y, [1, 2])
	n := count(y)
}
