package compat.metadata_unread

# Annotations no rule asks for (no rego.metadata.* call): OPA's engine does
# not read them, so blocks it would refuse change nothing.

# METADATA
# title: [unclosed
flow := 1

# METADATA
# scope: nonsense
other := 2

# METADATA
# schemas:
#   - input: schema.missing
typed := input.a
