# Three-level permissions: platform, organisation, workflow (seed 000's
# "permissions enforced at three levels").
#
# The permissions are data, not code (data.json, edited by the compliance
# team; README.md in this directory describes the format):
#
#   data.warden.rbac.platform                   what any agent may use
#   data.warden.rbac.organisations[<org>]       what one organisation (team) may use
#   data.warden.rbac.workflows[<workflow>]      what one workflow may use
#   data.warden.rbac.tools[<tool>]              optional {"connector", "action"} for a tool
#
# Each level is an object with up to three lists, `connectors`, `tools`
# (glob patterns) and `actions`; organisations may also list `scopes` (glob
# patterns over the skills' dotted rbac scopes). The skill the request runs
# (input.skill, from the skill registry) is a fourth, lowest level: its
# `allowed_connectors` narrow the connectors.
#
# The permission in force is what EVERY level allows: a lower level can only
# narrow what a higher one allows, never widen it. A level that does not
# apply to the request (no entry for its organisation or workflow, or no
# organisation or workflow at all) does not restrict; neither does a list
# the level omits, nor a list holding "*". An empty list allows nothing.
#
# `decision` (path warden/rbac/decision) is defined for every input,
# including `{}` and no input at all:
#
#   {"allow": bool,
#    "reasons": [...],      why it is allowed, or every level that denied what
#    "effective": {"connectors": [...], "tools": [...], "actions": [...]},
#                           the intersection in force for this request's
#                           organisation, workflow and skill; ["*"] only where
#                           no level restricts
#    "narrowed": [...]}     every entry a lower level lists that a higher
#                           level does not allow (so it is not in force)
#
# `problems` lists every defect in the data, sorted; [] when clean.
#
# Fail-closed choices (see README.md): a level with any defect (not an
# object, an unknown key, a list that is not a list of non-empty strings, an
# invalid glob) allows nothing; a malformed `organisations`, `workflows` or
# `tools` table, or a missing `platform`, denies every call; a malformed
# mapping in `tools` denies that tool; malformed input denies.
#
# Note for maintainers: no rule in this package may be named after a key of
# the data (`platform`, `organisations`, `workflows`, `tools`) or after the
# test package (`rbac_test`), no rule may start with `test_`, and nothing
# here may reference the whole document `data.warden.rbac` (that would
# include this package and its tests).
package warden.rbac

# ---------------------------------------------------------------------------
# Vocabulary

# The lists a level may hold, in the order reasons name them.
kinds := ["connectors", "tools", "actions"]

singular := {"connectors": "connector", "tools": "tool", "actions": "action"}

# Keys a level may have. Only organisations restrict skill scopes.
platform_keys := {"connectors", "tools", "actions"}

organisation_keys := {"connectors", "tools", "actions", "scopes"}

workflow_keys := {"connectors", "tools", "actions"}

# Lists whose entries are glob patterns (the others are exact names).
glob_keys := {"tools", "scopes"}

mapping_keys := {"connector", "action"}

nothing := {"connectors": [], "tools": [], "actions": []}

# ---------------------------------------------------------------------------
# Small helpers

# object.get returns its default only when the key is missing, so two
# different defaults agree exactly when it is present (whatever its value,
# null included).
has_key(obj, key) if {
	is_object(obj)
	object.get(obj, key, false) == object.get(obj, key, true)
}

nonempty_string(x) if {
	is_string(x)
	x != ""
}

# Patterns are matched with no delimiter (`null`): `*` matches any run of
# characters, dots included. (Beware: `glob.match(p, [], s)` is NOT
# delimiter-free: in regorus, as in OPA, an empty list means ["."], so `*`
# would stop at dots. Pass null.) A pattern is checked before it is used:
# evaluation runs with strict builtin errors, where glob.match on a
# malformed pattern would fail the whole decision. Valid: characters, `\x`
# escapes, classes `[abc]` `[!a-z]`, alternations `{a,b*}` without nested
# brackets or braces.
valid_glob(pattern) if {
	nonempty_string(pattern)
	regex.match(`^(?:[^\[\]{}\\]|\\.|\[!?[^\[\]\\]+\]|\{[^{}\[\]\\]*\})*$`, pattern)
}

# A list holding "*" allows everything (and so does not restrict).
unrestricted(list) if "*" in list

# "a", "a and b", "a, b and c".
join_and(words) := words[0] if {
	count(words) == 1
} else := concat(" and ", [concat(", ", array.slice(words, 0, count(words) - 1)), words[count(words) - 1]]) if {
	count(words) > 1
} else := ""

# ---------------------------------------------------------------------------
# The input, normalized. Every part has a fallback, so a missing or
# mistyped field never makes `decision` undefined; malformed input denies
# (see structural_denial below).

# Undefined when the input has no usable tool name.
tool_name := input.tool.name if nonempty_string(input.tool.name)

default tool_display := "(no tool name given)"

tool_display := tool_name

# The request's organisation: a non-empty string, or none (absent or null).
organisation := input.organisation if nonempty_string(input.organisation)

organisation_malformed if {
	has_key(input, "organisation")
	input.organisation != null
	not organisation
}

# The request's workflow name, when it comes from a workflow.
workflow_name := input.workflow.name if {
	is_object(input.workflow)
	nonempty_string(input.workflow.name)
}

workflow_malformed if {
	has_key(input, "workflow")
	input.workflow != null
	not workflow_name
}

# The skill the request runs, if any.
skill := input.skill if is_object(input.skill)

skill_malformed if {
	has_key(input, "skill")
	input.skill != null
	not is_object(input.skill)
}

# ---------------------------------------------------------------------------
# The data's tables. `type_name` is defined for every present value (null
# included), so `type_name(x)` tells present from missing.

platform_given if type_name(data.warden.rbac.platform)

default organisation_table := {}

organisation_table := data.warden.rbac.organisations if is_object(data.warden.rbac.organisations)

organisations_malformed if {
	type_name(data.warden.rbac.organisations)
	not is_object(data.warden.rbac.organisations)
}

default workflow_table := {}

workflow_table := data.warden.rbac.workflows if is_object(data.warden.rbac.workflows)

workflows_malformed if {
	type_name(data.warden.rbac.workflows)
	not is_object(data.warden.rbac.workflows)
}

default tool_table := {}

tool_table := data.warden.rbac.tools if is_object(data.warden.rbac.tools)

tools_malformed if {
	type_name(data.warden.rbac.tools)
	not is_object(data.warden.rbac.tools)
}

# ---------------------------------------------------------------------------
# The tool's connector and action: `<connector>.<action>`, split at the
# FIRST dot (`acc.document.read` is connector `acc`, action
# `document.read`), unless data.warden.rbac.tools maps the tool. Undefined
# for a name without a dot and no mapping, or a malformed mapping.

tool_mapped if has_key(tool_table, tool_name)

tool_mapping := {"connector": m.connector, "action": m.action, "source": "data.warden.rbac.tools"} if {
	tool_mapped
	m := tool_table[tool_name]
	count(mapping_defects(m)) == 0
}

tool_mapping := {"connector": parts[0], "action": concat(".", array.slice(parts, 1, count(parts))), "source": "name"} if {
	not tool_mapped
	contains(tool_name, ".")
	parts := split(tool_name, ".")
}

mapping_defects(m) := ["must be an object with connector and action"] if {
	not is_object(m)
} else := sort(array.concat(
	[sprintf("%s must be a non-empty string", [key]) |
		some key in sort(mapping_keys)
		not nonempty_string(object.get(m, key, null))
	],
	[sprintf("unknown key %s", [json.marshal(key)]) |
		some key, _ in m
		not key in mapping_keys
	],
))

mapping_text := sprintf("connector %s, action %s", [tool_mapping.connector, tool_mapping.action]) if {
	tool_mapping.source == "name"
} else := sprintf("connector %s, action %s, as mapped in data.warden.rbac.tools", [tool_mapping.connector, tool_mapping.action]) if {
	tool_mapping.source != "name"
} else := "no connector or action: the name has no dot and data.warden.rbac.tools does not map it"

# ---------------------------------------------------------------------------
# Levels. A level in force is {"label", "defects", "lists"}: `lists` holds
# the lists the level gives (an omitted key is absent); a level with defects
# allows nothing.

level_of(label, raw, keys) := {
	"label": label,
	"defects": level_defects(raw, keys),
	"lists": {key: raw[key] | some key in keys; has_key(raw, key)},
}

# Defects of a level object, sorted.
level_defects(raw, keys) := ["must be an object"] if {
	not is_object(raw)
} else := sort([msg |
	some list in [
		unknown_key_defects(raw, keys),
		list_shape_defects(raw, keys),
		entry_defects(raw, keys),
		glob_defects(raw, keys),
		name_defects(raw, keys),
	]
	some msg in list
])

unknown_key_defects(raw, keys) := [sprintf("unknown key %s (allowed: %s)", [json.marshal(key), concat(", ", sort(keys))]) |
	some key, _ in raw
	not key in keys
]

list_shape_defects(raw, keys) := [sprintf("%s must be an array of strings", [key]) |
	some key in sort(keys)
	has_key(raw, key)
	not is_array(raw[key])
]

entry_defects(raw, keys) := [sprintf("%s[%d] must be a non-empty string, not %s", [key, i, json.marshal(entry)]) |
	some key in sort(keys)
	is_array(raw[key])
	some i, entry in raw[key]
	not nonempty_string(entry)
]

glob_defects(raw, keys) := [sprintf("%s[%d] is not a valid glob pattern: %s", [key, i, json.marshal(entry)]) |
	some key in sort(keys)
	key in glob_keys
	is_array(raw[key])
	some i, entry in raw[key]
	nonempty_string(entry)
	not valid_glob(entry)
]

# Connectors and actions are exact names, and the kernel's names never hold
# a glob character, so an entry such as "share*" could never match: a
# mistake, reported rather than silently denying.
name_defects(raw, keys) := [sprintf("%s[%d] is not a name: %s (connectors and actions are exact names; only \"*\" alone means everything, patterns belong in tools)", [key, i, json.marshal(entry)]) |
	some key in sort(keys)
	not key in glob_keys
	is_array(raw[key])
	some i, entry in raw[key]
	nonempty_string(entry)
	entry != "*"
	regex.match(`[*?\[\]{}\\]`, entry)
]

platform_level := level_of("platform", data.warden.rbac.platform, platform_keys)

organisation_label := sprintf("organisation %s", [organisation])

organisation_entry_given if has_key(organisation_table, organisation)

organisation_level := level_of(organisation_label, organisation_table[organisation], organisation_keys) if {
	organisation_entry_given
}

workflow_label := sprintf("workflow %s", [workflow_name])

workflow_entry_given if has_key(workflow_table, workflow_name)

workflow_level := level_of(workflow_label, workflow_table[workflow_name], workflow_keys) if {
	workflow_entry_given
}

# The skill narrows connectors only. Its list comes from the request (the
# skill registry), so its defects are reasons, not `problems`.
skill_label := sprintf("skill %s", [skill.id]) if {
	nonempty_string(skill.id)
} else := "skill (without an id)"

skill_level := {
	"label": skill_label,
	"defects": skill_defects,
	"lists": {"connectors": object.get(skill, "allowed_connectors", [])},
} if {
	skill
}

skill_defects := ["has no allowed_connectors list"] if {
	not has_key(skill, "allowed_connectors")
} else := ["allowed_connectors must be an array of strings"] if {
	not is_array(skill.allowed_connectors)
} else := [sprintf("allowed_connectors[%d] must be a non-empty string, not %s", [i, json.marshal(entry)]) |
	some i, entry in skill.allowed_connectors
	not nonempty_string(entry)
]

# The levels in force for this request, highest first.
platform_part := [l] if {
	l := platform_level
} else := []

organisation_part := [l] if {
	l := organisation_level
} else := []

workflow_part := [l] if {
	l := workflow_level
} else := []

skill_part := [l] if {
	l := skill_level
} else := []

levels := array.concat(array.concat(platform_part, organisation_part), array.concat(workflow_part, skill_part))

# ---------------------------------------------------------------------------
# Checking the tool against one level

# Whether `list` (concrete: no "*") allows this tool.
permits(kind, list) if {
	kind == "connectors"
	tool_mapping.connector in list
}

permits(kind, list) if {
	kind == "actions"
	tool_mapping.action in list
}

permits(kind, list) if {
	kind == "tools"
	some pattern in list
	glob.match(pattern, null, tool_name)
}

denial_text(label, kind) := sprintf("%s does not allow tool %s", [label, tool_name]) if {
	kind == "tools"
} else := sprintf("%s does not allow %s %s", [label, singular[kind], value]) if {
	value := tool_mapping[singular[kind]]
} else := sprintf("%s allows only the %s it lists, and tool %s names no %s (name tools <connector>.<action>, or map the tool in data.warden.rbac.tools)", [label, kind, tool_display, singular[kind]])

# What one level denies about this tool, in the order of `kinds`.
level_denials(l) := [sprintf("%s is malformed (%s); it allows nothing until this is fixed", [l.label, concat("; ", l.defects)])] if {
	count(l.defects) > 0
} else := [denial_text(l.label, kind) |
	some kind in kinds
	list := l.lists[kind]
	not unrestricted(list)
	not permits(kind, list)
]

# Without a usable tool name or with a malformed mapping (call_denial
# below) the levels cannot be checked, and their messages would only
# mislead.
tool_denials := [msg |
	some l in levels
	some msg in level_denials(l)
] if {
	count(call_denial) == 0
} else := []

# Skill scopes: an organisation that lists `scopes` only runs skills whose
# rbac_scope matches one of them (glob, no delimiter). No skill, no check.
scope_permitted(list) if unrestricted(list)

scope_permitted(list) if {
	nonempty_string(skill.rbac_scope)
	some pattern in list
	glob.match(pattern, null, skill.rbac_scope)
}

scope_denials := [msg] if {
	skill
	l := organisation_level
	count(l.defects) == 0
	list := l.lists.scopes
	not scope_permitted(list)
	msg := scope_denial_text(l.label)
} else := []

scope_denial_text(label) := sprintf("%s does not allow skill scope %s (%s)", [label, skill.rbac_scope, skill_label]) if {
	nonempty_string(skill.rbac_scope)
} else := sprintf("%s only runs skills of the scopes it lists, and %s has no rbac_scope", [label, skill_label])

# ---------------------------------------------------------------------------
# Denials that do not come from one level: the data's structure and the
# input's shape. [order, message] pairs, sorted by order.

structural_denial contains [1, "data.warden.rbac.platform is missing; every call is denied (fail closed)"] if {
	not platform_given
}

structural_denial contains [2, "data.warden.rbac.organisations is not an object; every call is denied (fail closed)"] if {
	organisations_malformed
}

structural_denial contains [3, "data.warden.rbac.workflows is not an object; every call is denied (fail closed)"] if {
	workflows_malformed
}

structural_denial contains [4, "data.warden.rbac.tools is not an object; every call is denied (fail closed)"] if {
	tools_malformed
}

structural_denial contains [5, "input.organisation must be a non-empty string or null; denied"] if {
	organisation_malformed
}

structural_denial contains [6, "input.workflow must be null or an object with a non-empty string name; denied"] if {
	workflow_malformed
}

structural_denial contains [7, "input.skill must be null or an object; denied"] if {
	skill_malformed
}

call_denial contains [8, "input.tool.name is missing or not a non-empty string; denied"] if {
	not tool_name
}

call_denial contains [9, msg] if {
	tool_mapped
	count(mapping_defects(tool_table[tool_name])) > 0
	msg := sprintf("the mapping of tool %s in data.warden.rbac.tools is malformed (%s); the tool is denied until this is fixed", [tool_name, concat("; ", mapping_defects(tool_table[tool_name]))])
}

structural_failure if count(structural_denial) > 0

general_denials := [pair[1] | some pair in sort(structural_denial | call_denial)]

denials := array.concat(general_denials, array.concat(tool_denials, scope_denials))

# Levels named by the request that have no entry: they do not restrict, and
# the decision says so.
notes := array.concat(organisation_note, workflow_note)

organisation_note := [sprintf("organisation %s has no entry in data.warden.rbac.organisations; it does not restrict", [organisation])] if {
	organisation
	not organisations_malformed
	not organisation_entry_given
} else := []

workflow_note := [sprintf("workflow %s has no entry in data.warden.rbac.workflows; it does not restrict", [workflow_name])] if {
	workflow_name
	not workflows_malformed
	not workflow_entry_given
} else := []

# ---------------------------------------------------------------------------
# What is in force: the intersection of every level's lists

# The lists of one kind that restrict (no "*"), highest level first. A level
# with defects allows nothing, so it counts as an empty list.
concrete_lists(kind) := [list |
	some l in levels
	list := level_list(l, kind)
	not unrestricted(list)
]

level_list(l, kind) := [] if {
	count(l.defects) > 0
} else := l.lists[kind]

# Whether `list` allows the entry `e` of another level's list. Connectors
# and actions are exact names. A tool pattern is allowed when the list has
# it or one of the list's patterns matches it as a string (`acc.*` allows
# `acc.document_read` and `acc.doc*`; `*` allows everything).
covers(kind, list, e) if {
	kind != "tools"
	e in list
}

covers(kind, list, e) if {
	kind == "tools"
	e in list
}

covers(kind, list, e) if {
	kind == "tools"
	some pattern in list
	glob.match(pattern, null, e)
}

effective_list(kind) := ["*"] if {
	count(concrete_lists(kind)) == 0
} else := sort({e |
	lists := concrete_lists(kind)
	some list in lists
	some e in list
	every other in lists {
		covers(kind, other, e)
	}
})

effective := nothing if {
	structural_failure
} else := {kind: effective_list(kind) | some kind in kinds}

# Every entry a lower level lists that a higher level does not allow: one
# message per (lower level, entry, higher level), in level order. "*" at a
# lower level means "whatever the levels above allow" and is not reported;
# levels with defects are not compared (they allow nothing anyway).
narrowed := [msg |
	some j, low in levels
	j > 0
	count(low.defects) == 0
	some kind in kinds
	list := low.lists[kind]
	not unrestricted(list)
	some e in sort({x | some x in list})
	some i, high in levels
	i < j
	count(high.defects) == 0
	higher := high.lists[kind]
	not unrestricted(higher)
	not covers(kind, higher, e)
	msg := sprintf("%s lists %s %s, which %s does not allow; not in force", [low.label, singular[kind], e, high.label])
]

# ---------------------------------------------------------------------------
# The decision

allow_reason := sprintf("tool %s (%s) is allowed by %s", [tool_name, mapping_text, join_and([l.label | some l in levels])])

# Reached only if evaluation fails in an unforeseen way.
default decision := {
	"allow": false,
	"reasons": ["warden.rbac: the permissions could not be evaluated for this call; denied (fail closed)"],
	"effective": {"connectors": [], "tools": [], "actions": []},
	"narrowed": [],
}

decision := {
	"allow": true,
	"reasons": array.concat([allow_reason], notes),
	"effective": effective,
	"narrowed": narrowed,
} if {
	count(denials) == 0
}

decision := {
	"allow": false,
	"reasons": array.concat(denials, notes),
	"effective": effective,
	"narrowed": narrowed,
} if {
	count(denials) > 0
}

# ---------------------------------------------------------------------------
# Audit helper: every defect in the data, sorted; [] when clean.

problems := sort(problem_set)

problem_set contains "data.warden.rbac.platform is missing; every call is denied" if {
	not platform_given
}

problem_set contains msg if {
	some defect in level_defects(data.warden.rbac.platform, platform_keys)
	msg := sprintf("platform: %s; every call is denied until this is fixed", [defect])
}

problem_set contains "data.warden.rbac.organisations must be an object keyed by organisation; every call is denied" if {
	organisations_malformed
}

problem_set contains msg if {
	some name, raw in organisation_table
	some defect in level_defects(raw, organisation_keys)
	msg := sprintf("organisation %s: %s; it allows nothing until this is fixed", [name, defect])
}

problem_set contains "data.warden.rbac.workflows must be an object keyed by workflow name; every call is denied" if {
	workflows_malformed
}

problem_set contains msg if {
	some name, raw in workflow_table
	some defect in level_defects(raw, workflow_keys)
	msg := sprintf("workflow %s: %s; it allows nothing until this is fixed", [name, defect])
}

problem_set contains "data.warden.rbac.tools must be an object keyed by tool name; every call is denied" if {
	tools_malformed
}

problem_set contains msg if {
	some name, m in tool_table
	some defect in mapping_defects(m)
	msg := sprintf("tools[%s]: %s; tool %s is denied until this is fixed", [json.marshal(name), defect, name])
}
