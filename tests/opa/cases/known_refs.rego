package compat.known_refs

# References into values known at compile time that OPA accepts: a key
# some definition has, a computed key, a computed value, an index within.
limits := {"daily": 100, "monthly": 1000}

default tier := {"daily": 10}

tier := {"daily": 50, "weekly": 300} if input.gold

weekly := tier.weekly

daily := limits.daily

chosen := limits[input.period]

second := [10, 20][1]

profile := {"name": input.name, "roles": ["reader"]}

first_role := profile.roles[0]

name_length := count(profile.name)

by_index contains d if d := [limits, {"daily": 5}][_].daily
