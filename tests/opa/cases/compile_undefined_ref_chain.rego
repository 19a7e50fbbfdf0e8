package compat.compile_undefined_ref_chain

# OPA follows a rule's shape through the rules built on it: `tiers` holds
# `limits`, whose objects have no `weekly`.
limits := {"daily": 100, "monthly": 1000}

tiers := [limits, {"daily": 10}]

weekly := tiers[_].weekly
