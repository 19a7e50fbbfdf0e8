# METADATA
# title: helper package
# custom:
#   owner: helpers
package compat_rego_metadata.helper

import rego.v1

chain_here := rego.metadata.chain()
