# The execution kernel's tool-invocation policy.
#
# Before it runs a tool, the kernel evaluates `data.warden.kernel.decision`
# (path warden/kernel/decision). The rules are data, not code: the array
# `data.warden.kernel.rules` (shipped in data.json, edited by the compliance
# team) says which calls are allowed, denied or need approval. This module is
# the engine that evaluates them; README.md in this directory describes the
# rule format for rule authors.
#
# `decision` is defined for every input, including `{}` and no input at all:
#
#   {"outcome": "allow" | "deny" | "require_approval",
#    "allow": true only for "allow",
#    "reasons": ["rule <id>: ...", ...]   (never empty),
#    "rule": the deciding rule's id, or null when no rule matched,
#    "approval": {"reviewers", "timeout_seconds", "on_expiry"}   (only for require_approval)}
#
# Helper rules for audits:
#   matching       ids of every rule that matches the input, sorted
#   matched_rules  the same rules with their priority and effective effect
#   problems       every defect found in the rule set, sorted; [] when clean
#
# Fail-closed choices (see README.md): a malformed rule never allows. A rule
# whose own fields are wrong (id, priority, effect, reason, description,
# approval, unknown fields) counts as a deny rule; a malformed condition
# (tools, agents, labels, arguments, a predicate) never holds.
#
# Note for maintainers: no rule in this package may start with `test_` (the
# test runner would run it as a test), and nothing here may reference the
# whole document `data.warden.kernel` (that would include this package).
package warden.kernel

# ---------------------------------------------------------------------------
# Vocabulary

# Strength of an effect when rules of the same priority disagree.
effect_rank := {"allow": 1, "require_approval": 2, "deny": 3}

allow_flag := {"allow": true, "require_approval": false, "deny": false}

known_ops := {"equals", "not_equals", "one_of", "regex", "min", "max", "max_length", "exists"}

# What the `value` of a predicate must be, by op (also used in messages).
value_kind := {
	"equals": "any JSON value",
	"not_equals": "any JSON value",
	"one_of": "an array",
	"regex": "a valid regular expression (string)",
	"min": "a number",
	"max": "a number",
	"max_length": "a number",
	"exists": "true or false",
}

rule_fields := {
	"id", "description", "priority", "tools", "agents", "labels",
	"arguments", "effect", "reason", "approval", "metadata",
}

predicate_fields := {"path", "op", "value", "description"}

approval_fields := {"reviewers", "timeout_seconds", "on_expiry"}

on_expiry_values := {"fail", "continue"}

default_approval := {"reviewers": 1, "timeout_seconds": 86400, "on_expiry": "fail"}

# ---------------------------------------------------------------------------
# The input, normalized: every part has a fallback, so a missing or
# mistyped field never makes `decision` undefined.

# Undefined when the input has no string tool name: then no `tools` list
# matches (rules without `tools` still do).
tool_name := input.tool.name if is_string(input.tool.name)

default tool_display := "(no tool name given)"

tool_display := input.tool.name if is_string(input.tool.name)

# Undefined when the input has no string agent id: then no `agents` list
# matches (rules without `agents` still do).
agent_id := input.agent.id if is_string(input.agent.id)

default call_labels := {}

call_labels := input.labels if is_object(input.labels)

default call_arguments := {}

call_arguments := input.arguments if is_object(input.arguments)

# ---------------------------------------------------------------------------
# The rule set

default rule_list := []

rule_list := data.warden.kernel.rules if is_array(data.warden.kernel.rules)

# A rule object with its effective id, priority and effect. Its defects
# (see rule_defects_of) are only computed for rules that match the call.
make_entry(i, raw) := {
	"index": i,
	"id": entry_id(i, raw),
	"priority": entry_priority(raw),
	"effect": entry_effect(raw, defects),
	"defects": defects,
	"raw": raw,
} if {
	defects := rule_defects_of(raw)
}

entry_id(i, raw) := raw.id if {
	valid_id(raw)
} else := sprintf("rules[%d]", [i])

entry_priority(raw) := raw.priority if {
	is_number(raw.priority)
} else := 0

# A rule with a defect in its own fields counts as deny.
entry_effect(raw, defects) := raw.effect if {
	count(defects) == 0
	effect_rank[raw.effect]
} else := "deny"

valid_id(raw) if {
	is_string(raw.id)
	raw.id != ""
}

# object.get returns its default only when the key is missing, so two
# different defaults agree exactly when it is present (whatever its value).
has_key(obj, key) if {
	is_object(obj)
	object.get(obj, key, false) == object.get(obj, key, true)
}

is_integer(x) if {
	is_number(x)
	floor(x) == x
}

positive_integer(x) if {
	is_integer(x)
	x >= 1
}

# ---------------------------------------------------------------------------
# Matching. Every condition is strict: a condition that is malformed does not
# hold. An absent condition holds.

rule_matches(raw) if {
	tools_match(raw)
	agents_match(raw)
	labels_match(raw)
	arguments_match(raw)
}

tools_match(raw) if not has_key(raw, "tools")

tools_match(raw) if {
	glob_list(raw.tools)
	some pattern in raw.tools
	glob.match(pattern, null, tool_name)
}

agents_match(raw) if not has_key(raw, "agents")

agents_match(raw) if {
	glob_list(raw.agents)
	some pattern in raw.agents
	glob.match(pattern, null, agent_id)
}

# An array of valid glob patterns. Patterns are matched with no delimiter
# (`null`): `*` matches any run of characters, dots included. (Beware:
# `glob.match(p, [], s)` is NOT delimiter-free, an empty list means ["."].)
glob_list(list) if {
	is_array(list)
	every pattern in list {
		valid_glob(pattern)
	}
}

# The syntax of the README, checked without compiling the pattern:
# evaluation runs with strict builtin errors, where `glob.match` on a
# malformed pattern fails the whole decision instead of being undefined.
# Characters, `\x` escapes, classes `[abc]` `[!a-z]`, and alternations
# `{a,b*}` without nested brackets or braces.
valid_glob(pattern) if {
	is_string(pattern)
	regex.match(`^(?:[^\[\]{}\\]|\\.|\[!?[^\[\]\\]+\]|\{[^{}\[\]\\]*\})*$`, pattern)
}

labels_match(raw) if not has_key(raw, "labels")

labels_match(raw) if {
	is_object(raw.labels)
	every key, want in raw.labels {
		has_key(call_labels, key)
		call_labels[key] == want
	}
}

arguments_match(raw) if not has_key(raw, "arguments")

arguments_match(raw) if {
	is_array(raw.arguments)
	every predicate in raw.arguments {
		predicate_holds(predicate)
	}
}

predicate_holds(p) if {
	predicate_well_formed(p)
	op_holds(p.op, p.path, p.value)
}

predicate_well_formed(p) if {
	is_object(p)
	valid_path(p)
	known_ops[p.op]
	has_key(p, "value")
	value_fits(p.op, p.value)
	every key in object.keys(p) {
		predicate_fields[key]
	}
}

valid_path(p) if {
	is_string(p.path)
	p.path != ""
}

value_fits(op, value) if {
	op in {"equals", "not_equals"}
	type_name(value)
}

value_fits(op, value) if {
	op == "one_of"
	is_array(value)
}

value_fits(op, value) if {
	op == "regex"
	is_string(value)
	regex.is_valid(value)
}

value_fits(op, value) if {
	op in {"min", "max", "max_length"}
	is_number(value)
}

value_fits(op, value) if {
	op == "exists"
	is_boolean(value)
}

# Whether the dot-separated path names a value inside input.arguments (a
# JSON null counts as present). object.get returns its default only when the
# path is missing, so two different defaults agree exactly when it exists.
arg_present(path) if {
	parts := split(path, ".")
	object.get(call_arguments, parts, false) == object.get(call_arguments, parts, true)
}

arg_value(path) := object.get(call_arguments, split(path, "."), null) if arg_present(path)

# Every op but `exists` needs the argument to be present (arg_value is
# undefined otherwise), and the numeric and length ops check types: a
# comparison between a number and a string never holds.
op_holds(op, path, want) if {
	op == "equals"
	arg_value(path) == want
}

op_holds(op, path, want) if {
	op == "not_equals"
	got := arg_value(path)
	got != want
}

op_holds(op, path, want) if {
	op == "one_of"
	is_array(want)
	got := arg_value(path)
	some candidate in want
	candidate == got
}

op_holds(op, path, want) if {
	op == "regex"
	is_string(want)
	got := arg_value(path)
	is_string(got)
	regex.match(want, got)
}

op_holds(op, path, want) if {
	op == "min"
	is_number(want)
	got := arg_value(path)
	is_number(got)
	got >= want
}

op_holds(op, path, want) if {
	op == "max"
	is_number(want)
	got := arg_value(path)
	is_number(got)
	got <= want
}

op_holds(op, path, want) if {
	op == "max_length"
	is_number(want)
	got := arg_value(path)
	is_string(got)
	count(got) <= want
}

op_holds(op, path, want) if {
	op == "max_length"
	is_number(want)
	got := arg_value(path)
	is_array(got)
	count(got) <= want
}

op_holds(op, path, want) if {
	op == "exists"
	want == true
	arg_present(path)
}

op_holds(op, path, want) if {
	op == "exists"
	want == false
	not arg_present(path)
}

# ---------------------------------------------------------------------------
# Precedence: highest priority first, then deny > require_approval > allow,
# then the lexicographically smallest id.

# The matching rules. Entries of the array that are not objects are skipped
# (and listed in `problems`).
hits := [entry |
	some i, raw in rule_list
	is_object(raw)
	rule_matches(raw)
	entry := make_entry(i, raw)
]

top_priority := max([entry.priority | some entry in hits])

top_rank := max([effect_rank[entry.effect] | some entry in hits; entry.priority == top_priority])

finalists := [entry |
	some entry in hits
	entry.priority == top_priority
	effect_rank[entry.effect] == top_rank
]

decider_id := min([entry.id | some entry in finalists])

# With duplicate ids (a defect listed in `problems`) the first in the array.
decider := [entry | some entry in finalists; entry.id == decider_id][0]

reason_text(entry) := sprintf("rule %s: %s", [entry.id, entry.raw.reason]) if {
	count(entry.defects) == 0
	is_string(entry.raw.reason)
} else := sprintf("rule %s: %s", [entry.id, entry.effect]) if {
	count(entry.defects) == 0
} else := sprintf("rule %s: %s (treated as deny, malformed rule: %s)", [entry.id, entry.raw.reason, concat("; ", entry.defects)]) if {
	is_string(entry.raw.reason)
} else := sprintf("rule %s: deny (malformed rule: %s)", [entry.id, concat("; ", entry.defects)])

# The decider's reason first, then those of the other rules that tied with
# it on priority and effect, by id.
decision_reasons := [reason_text(entry) |
	some id in sort({e.id | some e in finalists})
	some entry in finalists
	entry.id == id
]

approval_of(raw) := {
	"reviewers": object.get(settings, "reviewers", default_approval.reviewers),
	"timeout_seconds": object.get(settings, "timeout_seconds", default_approval.timeout_seconds),
	"on_expiry": object.get(settings, "on_expiry", default_approval.on_expiry),
} if {
	settings := object.get(raw, "approval", {})
}

rule_decision := {
	"outcome": decider.effect,
	"allow": allow_flag[decider.effect],
	"reasons": decision_reasons,
	"rule": decider.id,
} if {
	decider.effect != "require_approval"
}

rule_decision := {
	"outcome": "require_approval",
	"allow": false,
	"reasons": decision_reasons,
	"rule": decider.id,
	"approval": approval_of(decider.raw),
} if {
	decider.effect == "require_approval"
}

# ---------------------------------------------------------------------------
# The decision

# Reached only if evaluation of the rules fails in an unforeseen way.
default decision := {
	"outcome": "deny",
	"allow": false,
	"reasons": ["warden.kernel: the rules could not be evaluated for this call; denied (fail closed)"],
	"rule": null,
}

decision := rule_decision if count(hits) > 0

decision := {
	"outcome": "deny",
	"allow": false,
	"reasons": [sprintf("no rule allows tool %s", [tool_display])],
	"rule": null,
} if {
	count(hits) == 0
}

# ---------------------------------------------------------------------------
# Audit helpers

matching := sort([entry.id | some entry in hits])

matched_rules := [{"id": entry.id, "priority": entry.priority, "effect": entry.effect} |
	some id in sort({e.id | some e in hits})
	some entry in hits
	entry.id == id
]

problems := sort(problem_set)

problem_set contains msg if {
	some i, raw in rule_list
	is_object(raw)
	some defect in rule_defects_of(raw)
	msg := sprintf("%s: %s; the rule is treated as deny", [rule_label(i), defect])
}

problem_set contains msg if {
	some d in condition_defects
	msg := sprintf("%s: %s; this condition never holds", [rule_label(d[0]), d[1]])
}

problem_set contains msg if {
	some msg in list_problems
}

rule_label(i) := sprintf("rules[%d] (%s)", [i, rule_list[i].id]) if {
	valid_id(rule_list[i])
} else := sprintf("rules[%d]", [i])

rules_given if type_name(data.warden.kernel.rules)

list_problems contains "data.warden.kernel.rules is missing; every call is denied" if {
	not rules_given
}

list_problems contains "data.warden.kernel.rules must be an array of rule objects; every call is denied" if {
	rules_given
	not is_array(data.warden.kernel.rules)
}

list_problems contains msg if {
	some i, raw in rule_list
	not is_object(raw)
	msg := sprintf("rules[%d] is not an object and is ignored", [i])
}

list_problems contains msg if {
	some i, a in rule_list
	some j, b in rule_list
	i < j
	valid_id(a)
	valid_id(b)
	a.id == b.id
	msg := sprintf("rules[%d] and rules[%d] share the id %s; ids must be unique", [i, j, json.marshal(a.id)])
}

# Defects in a rule's own fields, sorted: the rule counts as deny.
rule_defects_of(raw) := sort([msg |
	some list in [
		id_defects(raw),
		priority_defects(raw),
		effect_defects(raw),
		text_defects(raw),
		field_defects(raw),
		approval_defects(raw),
	]
	some msg in list
])

id_defects(raw) := [] if {
	valid_id(raw)
} else := ["id must be a non-empty string"]

priority_defects(raw) := ["priority must be an integer"] if {
	has_key(raw, "priority")
	not is_integer(raw.priority)
} else := []

effect_defects(raw) := [] if {
	effect_rank[raw.effect]
} else := ["effect is missing"] if {
	not has_key(raw, "effect")
} else := [msg] if {
	msg := sprintf("effect %s is not one of allow, deny, require_approval", [json.marshal(raw.effect)])
}

text_defects(raw) := [msg |
	some field in ["description", "reason"]
	has_key(raw, field)
	not is_string(raw[field])
	msg := sprintf("%s must be a string", [field])
]

field_defects(raw) := [msg |
	some key, _ in raw
	not rule_fields[key]
	msg := sprintf("unknown field %s", [json.marshal(key)])
]

# The approval block is checked on require_approval rules only (it is
# ignored on others).
approval_defects(raw) := [] if {
	not approval_rule(raw)
} else := [] if {
	not has_key(raw, "approval")
} else := ["approval must be an object"] if {
	not is_object(raw.approval)
} else := [msg |
	some key, value in raw.approval
	msg := approval_field_defect(key, value)
]

approval_rule(raw) if raw.effect == "require_approval"

approval_field_defect(key, value) := "approval.reviewers must be an integer of at least 1" if {
	key == "reviewers"
	not positive_integer(value)
} else := "approval.timeout_seconds must be an integer of at least 1" if {
	key == "timeout_seconds"
	not positive_integer(value)
} else := "approval.on_expiry must be \"fail\" or \"continue\"" if {
	key == "on_expiry"
	not on_expiry_values[value]
} else := sprintf("unknown field %s", [json.marshal(sprintf("approval.%s", [key]))]) if {
	not approval_fields[key]
}

# Defects in a rule's conditions: the condition never holds. [index, message].

condition_defects contains [i, msg] if {
	some i, raw in rule_list
	some field in ["tools", "agents"]
	has_key(raw, field)
	not is_array(raw[field])
	msg := sprintf("%s must be an array of glob patterns", [field])
}

condition_defects contains [i, msg] if {
	some i, raw in rule_list
	some field in ["tools", "agents"]
	is_array(raw[field])
	some j, pattern in raw[field]
	not valid_glob(pattern)
	msg := sprintf("%s[%d] is not a valid glob pattern: %s", [field, j, json.marshal(pattern)])
}

condition_defects contains [i, "labels must be an object"] if {
	some i, raw in rule_list
	has_key(raw, "labels")
	not is_object(raw.labels)
}

condition_defects contains [i, "arguments must be an array of predicates"] if {
	some i, raw in rule_list
	has_key(raw, "arguments")
	not is_array(raw.arguments)
}

condition_defects contains [i, msg] if {
	some i, raw in rule_list
	is_array(raw.arguments)
	some j, p in raw.arguments
	some problem in predicate_defects(p)
	msg := sprintf("arguments[%d]: %s", [j, problem])
}

predicate_defects(p) := {"must be an object with path, op and value"} if {
	not is_object(p)
} else := {msg |
	some list in [check_path(p), check_op(p), check_value(p), check_fields(p)]
	some msg in list
}

check_path(p) := [] if {
	valid_path(p)
} else := ["path must be a non-empty string"]

check_op(p) := [] if {
	known_ops[p.op]
} else := ["op is missing"] if {
	not has_key(p, "op")
} else := [msg] if {
	msg := sprintf("op %s is not one of %s", [json.marshal(p.op), concat(", ", sort(known_ops))])
}

check_value(p) := ["value is missing"] if {
	not has_key(p, "value")
} else := [msg] if {
	known_ops[p.op]
	not value_fits(p.op, p.value)
	msg := sprintf("value for op %s must be %s", [p.op, value_kind[p.op]])
} else := []

check_fields(p) := [msg |
	some key in object.keys(p)
	not predicate_fields[key]
	msg := sprintf("unknown field %s", [json.marshal(key)])
]
