package compat.compile_metadata_placement

# METADATA
# title: before an import
import rego.v1

allow := rego.metadata.chain()
