# The kernel bench's floor (`--allow-all`): the kernel's policy path
# answered by one constant rule, so the run measures everything an
# execution costs except the shipped policy's evaluation. Never deployed.
package warden.kernel

decision := {"outcome": "allow", "allow": true, "reasons": ["rule allow-all: the bench's floor"], "rule": "allow-all"}
