package compat.compile_metadata_scope

import rego.v1

allow := rego.metadata.rule()

# METADATA
# title: nothing follows
