package compat.net_errors

contains_invalid := net.cidr_contains("not-a-cidr", "10.0.0.1")
expand_invalid := net.cidr_expand("10.0.0.0/99")
merge_invalid := net.cidr_merge(["bogus"])
intersects_invalid := net.cidr_intersects("10.0.0.0/8", "x")
