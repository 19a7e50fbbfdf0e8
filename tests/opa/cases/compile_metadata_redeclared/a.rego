# METADATA
# title: first
package compat.compile_metadata_redeclared

import rego.v1

allow := rego.metadata.chain()
