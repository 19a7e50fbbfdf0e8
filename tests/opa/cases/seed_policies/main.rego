package compat.seed_policies

import data.compat_seed_policies.lib

default allow := false

allow if {
	count(deny) == 0
	lib.tool_permitted
}

deny contains msg if {
	input.action.kind == "payment"
	input.action.amount > data.limits.per_payment[input.principal.tier]
	msg := sprintf("payment %v exceeds the %s limit", [input.action.amount, input.principal.tier])
}

deny contains msg if {
	input.action.kind == "payment"
	spent := sum([p.amount | some p in input.history; p.kind == "payment"])
	spent + input.action.amount > data.limits.daily
	msg := sprintf("daily spend %v would exceed %v", [spent + input.action.amount, data.limits.daily])
}

deny contains msg if {
	some field in lib.sensitive_fields
	msg := sprintf("payload contains %s", [field])
}

deny contains msg if {
	input.action.kind == "http"
	not lib.egress_allowed
	msg := sprintf("egress to %s is not allowed", [input.action.host])
}

deny contains "delegation chain too long" if count(object.get(input, "chain", [])) > 3

deny contains msg if {
	some i, link in object.get(input, "chain", [])
	i > 0
	prev := input.chain[i - 1]
	not link.scope in data.delegation[prev.scope]
	msg := sprintf("scope %s cannot be delegated from %s", [link.scope, prev.scope])
}

obligations.audit := true if input.action.kind == "payment"

obligations.notify contains data.on_call[team] if some team in lib.affected_teams

decision := {
	"allow": allow,
	"reasons": sort(deny),
	"obligations": obligations,
}

effective_permissions := lib.permissions
