package compat.compile_inferred_arg

# OPA types a rule by its value: `limit` is a number, and count takes
# none, so OPA refuses the module.
limit := 100

too_long if count(limit) > 3
