# METADATA
# scope: subpackages
# title: sub and below
package compat.rego_metadata.sub

import rego.v1

# METADATA
# title: rule in sub
chain_here := rego.metadata.chain()

rule_here := rego.metadata.rule()
