# METADATA
# title: second
package compat.compile_metadata_redeclared
