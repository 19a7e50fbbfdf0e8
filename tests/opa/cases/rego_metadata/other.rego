# METADATA
# scope: subpackages
# title: Everything under rego_metadata
package compat.rego_metadata

import rego.v1

# METADATA
# scope: document
# title: doc from another module
other_chain := rego.metadata.chain()
