package compat_seed_policies.lib

tool_permitted if input.action.tool in data.tools[input.principal.tier]

tool_permitted if {
	not input.action.tool
}

sensitive_fields contains name if {
	some name, pattern in data.dlp
	walk(input.action, [_, value])
	is_string(value)
	regex.match(pattern, value)
}

egress_allowed if {
	some pattern in data.egress.hosts
	glob.match(pattern, ["."], input.action.host)
}

egress_allowed if net.cidr_contains(data.egress.cidr, input.action.ip)

affected_teams contains team if {
	some team in input.action.teams
}

granted contains p if {
	some layer in ["org", "team", "user"]
	some p in object.get(data.layers[layer], input.principal.id, [])
}

permissions := granted - {p | some p in object.get(data.revoked, input.principal.id, [])}
