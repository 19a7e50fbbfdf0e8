# The MCP gateway's policy.
#
# Warden evaluates two documents of this package (docs/mcp.md):
#
#   data.warden.mcp.decision  for every `tools/call`: may this agent call this
#                             tool with these arguments?
#   data.warden.mcp.visible   for every `tools/list`: which tools may this
#                             agent see?
#
# The rules are data, not code: the object `data.warden.mcp.gateway` (shipped
# in data.json, edited by the compliance team) says which agents may call
# which tools, with which arguments, when a call needs reviewers and what is
# removed from results. This module is the engine that evaluates them;
# README.md in this directory describes the rule format for rule authors.
#
# `decision` is defined for every input, including `{}` and no input at all:
#
#   {"outcome": "allow" | "deny" | "require_approval",
#    "reasons": ["...", ...]                           (never empty),
#    "approval": {"reviewers", "timeout_seconds"}      (only for require_approval),
#    "obligations": {"redact": [...], "max_text_chars": n}
#                                                      (only when the tool has any,
#                                                       never on deny)}
#
# `visible` is a set of tool names, empty when nothing may be seen.
#
# Audit helper: `problems`, every defect in the rules, sorted; [] when clean.
#
# Fail-closed choices (see README.md): everything not granted is denied; a
# malformed agents entry grants nothing; a tool whose entry is malformed is
# denied and hidden; a missing argument that has constraints is a violation;
# a review threshold that cannot be checked (argument missing or of the
# wrong type) asks for review.
#
# Note for maintainers: no rule in this package may start with `test_` (the
# test runner would run it as a test), no rule may be named `gateway` (that
# is the rules' data), and nothing here may reference the whole document
# `data.warden.mcp` (that would include this package).
package warden.mcp

# ---------------------------------------------------------------------------
# Vocabulary

gateway_fields := {
	"description", "agents", "tools", "on_changed_definition",
	"changed_definition_review", "metadata",
}

agent_fields := {"description", "tools", "metadata"}

tool_fields := {
	"description", "blocked", "reason", "arguments", "review", "redact",
	"max_text_chars", "metadata",
}

constraint_fields := {"description", "optional", "type", "in", "min", "max", "pattern", "max_length"}

# The order in which an argument's constraints are checked (and reported).
constraint_checks := ["type", "min", "max", "in", "pattern", "max_length"]

value_types := {"string", "number", "integer", "boolean", "object", "array", "null"}

review_fields := {"when", "reviewers", "timeout_seconds", "reason"}

changed_review_fields := {"reviewers", "timeout_seconds"}

# The review conditions, in the order they are checked.
condition_ops := ["over", "at_least", "in"]

changed_modes := {"deny", "require_approval"}

default_approval := {"reviewers": 1, "timeout_seconds": 86400}

# How a JSON type is named in reasons.
type_words := {
	"string": "a string",
	"number": "a number",
	"boolean": "a boolean",
	"null": "null",
	"array": "an array",
	"object": "an object",
	"set": "a set",
}

# ---------------------------------------------------------------------------
# The input, normalized: a missing or mistyped field never makes `decision`
# undefined.

# Undefined unless the input names an agent: then every call is denied.
agent_id := input.agent.id if {
	is_string(input.agent.id)
	input.agent.id != ""
}

# Undefined unless the input names a tool: then every call is denied.
tool_name := input.tool.name if {
	is_string(input.tool.name)
	input.tool.name != ""
}

default call_arguments := {}

call_arguments := input.arguments if is_object(input.arguments)

tool_changed if input.tool.changed == true

# ---------------------------------------------------------------------------
# The rules

rules_given if type_name(data.warden.mcp.gateway)

default gateway_rules := {}

gateway_rules := data.warden.mcp.gateway if is_object(data.warden.mcp.gateway)

default agent_table := {}

agent_table := gateway_rules.agents if is_object(gateway_rules.agents)

default tool_table := {}

tool_table := gateway_rules.tools if is_object(gateway_rules.tools)

# Defects that make the whole rule set unusable: every call is denied and
# no tool is visible.
unusable contains "data.warden.mcp.gateway is missing" if not rules_given

unusable contains "data.warden.mcp.gateway must be an object" if {
	rules_given
	not is_object(data.warden.mcp.gateway)
}

unusable contains "agents is missing" if {
	is_object(data.warden.mcp.gateway)
	not has_key(gateway_rules, "agents")
}

unusable contains "agents must be an object keyed by agent id or pattern" if {
	has_key(gateway_rules, "agents")
	not is_object(gateway_rules.agents)
}

unusable contains "tools must be an object keyed by tool name" if {
	has_key(gateway_rules, "tools")
	not is_object(gateway_rules.tools)
}

# What happens to a call of a tool whose definition changed since it was
# pinned. Anything but a well-formed "require_approval" setting is "deny".
default changed_mode := "deny"

changed_mode := "require_approval" if {
	gateway_rules.on_changed_definition == "require_approval"
	count(changed_review_defects) == 0
}

# ---------------------------------------------------------------------------
# Small helpers

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

non_negative_integer(x) if {
	is_integer(x)
	x >= 0
}

non_empty_object(x) if {
	is_object(x)
	count(x) > 0
}

valid_regex(x) if {
	is_string(x)
	regex.is_valid(x)
}

type_word(x) := type_words[type_name(x)]

quoted(list) := [json.marshal(x) | some x in list]

# The glob syntax of the kernel bundle (policies/kernel/README.md), checked
# without compiling the pattern: evaluation runs with strict builtin errors,
# where `glob.match` on a malformed pattern fails the whole decision instead
# of being undefined. Characters, `\x` escapes, classes `[abc]` `[!a-z]`,
# and alternations `{a,b*}` without nested brackets or braces.
valid_glob(pattern) if {
	is_string(pattern)
	regex.match(`^(?:[^\[\]{}\\]|\\.|\[!?[^\[\]\\]+\]|\{[^{}\[\]\\]*\})*$`, pattern)
}

# Patterns are matched against the whole name with no delimiter (`null`):
# `*` matches any run of characters, underscores and dots included.
# (Beware: `glob.match(p, [], s)` is NOT delimiter-free.)
glob_matches(pattern, name) if {
	valid_glob(pattern)
	glob.match(pattern, null, name)
}

# ---------------------------------------------------------------------------
# Agents: which tools an agent may call

valid_agent_key(key) if {
	key != ""
	valid_glob(key)
}

agent_key_matches(key, id) if {
	valid_agent_key(key)
	glob_matches(key, id)
}

# Keys of every agents entry that applies to the agent, well-formed or not.
agent_keys_for(id) := sort({key |
	some key, _ in agent_table
	agent_key_matches(key, id)
})

agent_entry_ok(entry) if count(agent_entry_defects(entry)) == 0

# The agents entries that let the agent call the tool.
granting_keys(id, tool) := sort({key |
	some key, entry in agent_table
	agent_key_matches(key, id)
	agent_entry_ok(entry)
	some pattern in entry.tools
	glob_matches(pattern, tool)
})

may_call(id, tool) if count(granting_keys(id, tool)) > 0

# ---------------------------------------------------------------------------
# Tools: what a call of a tool must satisfy

tool_blocked(name) if tool_table[name].blocked == true

blocked_reason(name) := tool_table[name].reason if {
	is_string(tool_table[name].reason)
} else := "no reason given"

# Defects of the tool's entry; [] when it has none or a clean one.
tool_defects(name) := tool_entry_defects(tool_table[name]) if {
	has_key(tool_table, name)
} else := []

# Whether the agent may call the tool at all (arguments aside): what
# `visible` shows.
callable(id, name) if {
	may_call(id, name)
	not tool_blocked(name)
	count(tool_defects(name)) == 0
}

# The called tool's entry ({} when it has none).
default tool_settings := {}

tool_settings := tool_table[tool_name] if is_object(tool_table[tool_name])

default argument_constraints := {}

argument_constraints := tool_settings.arguments if is_object(tool_settings.arguments)

# ---------------------------------------------------------------------------
# Arguments

# Whether the dot-separated path names a value inside input.arguments (a
# JSON null counts as present).
arg_present(path) if {
	parts := split(path, ".")
	object.get(call_arguments, parts, false) == object.get(call_arguments, parts, true)
}

arg_value(path) := object.get(call_arguments, split(path, "."), null) if arg_present(path)

optional(c) if c.optional == true

# Every violated constraint of one argument, in the order of
# constraint_checks. A missing argument violates its constraints unless it
# is optional; a value of the wrong `type` gets that one reason only.
constraint_violations(path, c) := [msg] if {
	not arg_present(path)
	not optional(c)
	msg := sprintf("argument %s of %s is missing; the gateway policy requires it", [path, tool_name])
} else := [] if {
	not arg_present(path)
} else := [msg] if {
	has_key(c, "type")
	msg := violation("type", path, c.type, arg_value(path))
} else := [msg |
	value := arg_value(path)
	some check in constraint_checks
	has_key(c, check)
	msg := violation(check, path, c[check], value)
]

# Reasons quote numbers, booleans and null, never the text of a string
# argument (it may be personal data; the reasons go to the evidence ledger).
got(value) := json.marshal(value) if {
	not is_string(value)
	not is_array(value)
	not is_object(value)
} else := type_word(value)

# Defined (as the reason) only when the value violates the constraint.
violation(check, path, want, value) := msg if {
	check == "type"
	not has_type(want, value)
	msg := sprintf("argument %s of %s must be %s; got %s", [path, tool_name, type_phrase(want), got(value)])
}

violation(check, path, want, value) := msg if {
	check == "min"
	not is_number(value)
	msg := sprintf("argument %s of %s must be a number of at least %s; got %s", [path, tool_name, json.marshal(want), got(value)])
}

violation(check, path, want, value) := msg if {
	check == "min"
	is_number(value)
	is_number(want)
	value < want
	msg := sprintf("argument %s of %s must be at least %s; got %s", [path, tool_name, json.marshal(want), got(value)])
}

violation(check, path, want, value) := msg if {
	check == "max"
	not is_number(value)
	msg := sprintf("argument %s of %s must be a number of at most %s; got %s", [path, tool_name, json.marshal(want), got(value)])
}

violation(check, path, want, value) := msg if {
	check == "max"
	is_number(value)
	is_number(want)
	value > want
	msg := sprintf("argument %s of %s must be at most %s; got %s", [path, tool_name, json.marshal(want), got(value)])
}

violation(check, path, want, value) := msg if {
	check == "in"
	is_array(want)
	not value_in(value, want)
	msg := sprintf("argument %s of %s must be one of %s%s", [path, tool_name, concat(", ", quoted(want)), got_suffix(value)])
}

violation(check, path, want, value) := msg if {
	check == "pattern"
	not is_string(value)
	msg := sprintf("argument %s of %s must be a string matching %s; got %s", [path, tool_name, want, got(value)])
}

violation(check, path, want, value) := msg if {
	check == "pattern"
	is_string(value)
	valid_regex(want)
	not regex.match(want, value)
	msg := sprintf("argument %s of %s must match %s", [path, tool_name, want])
}

violation(check, path, want, value) := msg if {
	check == "max_length"
	not is_string(value)
	not is_array(value)
	msg := sprintf("argument %s of %s must be a string or an array of at most %s; got %s", [path, tool_name, json.marshal(want), got(value)])
}

violation(check, path, want, value) := msg if {
	check == "max_length"
	is_string(value)
	is_number(want)
	count(value) > want
	msg := sprintf("argument %s of %s must have at most %s characters; got %d", [path, tool_name, json.marshal(want), count(value)])
}

violation(check, path, want, value) := msg if {
	check == "max_length"
	is_array(value)
	is_number(want)
	count(value) > want
	msg := sprintf("argument %s of %s must have at most %s elements; got %d", [path, tool_name, json.marshal(want), count(value)])
}

got_suffix(value) := "" if is_string(value) else := sprintf("; got %s", [got(value)])

value_in(value, list) if {
	some candidate in list
	candidate == value
}

has_type(want, value) if {
	want == "integer"
	is_integer(value)
}

has_type(want, value) if {
	want != "integer"
	type_name(value) == want
}

type_phrase(want) := "an integer" if {
	want == "integer"
} else := type_words[want] if {
	type_words[want]
} else := sprintf("of type %s", [json.marshal(want)])

# Every argument violation of the call, by argument path.
argument_violations := [msg |
	some path in sort(object.keys(argument_constraints))
	some msg in constraint_violations(path, argument_constraints[path])
]

# ---------------------------------------------------------------------------
# Changed definitions

accept_hint := sprintf(" (POST /v1/mcp/upstreams/%s/tools/%s/accept)", [input.upstream.name, input.tool.upstream_name]) if {
	is_string(input.upstream.name)
	is_string(input.tool.upstream_name)
} else := ""

changed_denials := [msg] if {
	tool_changed
	changed_mode == "deny"
	msg := sprintf("the definition of tool %s changed since it was pinned; an admin must accept the new definition%s before it can be called", [tool_name, accept_hint])
} else := []

changed_reviews := [msg] if {
	tool_changed
	changed_mode == "require_approval"
	msg := sprintf("the definition of tool %s changed since it was pinned and no admin has accepted it%s; the call needs review", [tool_name, accept_hint])
} else := []

# ---------------------------------------------------------------------------
# Reviews

op_phrase(op, want) := sprintf("over %s", [json.marshal(want)]) if {
	op == "over"
} else := sprintf("at least %s", [json.marshal(want)]) if {
	op == "at_least"
} else := sprintf("one of %s", [concat(", ", quoted(want))]) if {
	op == "in"
	is_array(want)
}

# Defined (as the reason) only when the condition asks for review. An
# argument that is missing, or not a number for `over` and `at_least`, asks
# for review: it cannot be shown to stay under the threshold.
trigger(op, path, want) := sprintf("argument %s is missing (calls are reviewed when it is %s)", [path, op_phrase(op, want)]) if {
	not arg_present(path)
} else := sprintf("argument %s is not a number (calls are reviewed when it is %s)", [path, op_phrase(op, want)]) if {
	op in {"over", "at_least"}
	not is_number(arg_value(path))
} else := sprintf("argument %s is %s, over %s", [path, json.marshal(value), json.marshal(want)]) if {
	op == "over"
	value := arg_value(path)
	is_number(want)
	value > want
} else := sprintf("argument %s is %s, at least %s", [path, json.marshal(value), json.marshal(want)]) if {
	op == "at_least"
	value := arg_value(path)
	is_number(want)
	value >= want
} else := sprintf("argument %s is %s, one of the values reviewed", [path, json.marshal(value)]) if {
	op == "in"
	value := arg_value(path)
	is_array(want)
	value_in(value, want)
}

# Every condition of `when` that asks for review: any one is enough.
review_triggers(when) := [msg |
	is_object(when)
	some path in sort(object.keys(when))
	cond := when[path]
	some op in condition_ops
	has_key(cond, op)
	msg := trigger(op, path, cond[op])
]

# Why the tool's review applies to this call; undefined when it does not.
review_detail(review) := object.get(review, "reason", "every call of the tool is reviewed") if {
	not has_key(review, "when")
} else := sprintf("%s (%s)", [review.reason, concat("; ", triggers)]) if {
	triggers := review_triggers(review.when)
	count(triggers) > 0
	is_string(review.reason)
} else := concat("; ", triggers) if {
	triggers := review_triggers(review.when)
	count(triggers) > 0
}

tool_reviews := [msg] if {
	is_object(tool_settings.review)
	detail := review_detail(tool_settings.review)
	msg := sprintf("tool %s needs review for agent %s: %s", [tool_name, agent_id, detail])
} else := []

review_reasons := array.concat(changed_reviews, tool_reviews)

review_config(r) := {
	"reviewers": object.get(r, "reviewers", default_approval.reviewers),
	"timeout_seconds": object.get(r, "timeout_seconds", default_approval.timeout_seconds),
}

changed_review_settings := [review_config(object.get(gateway_rules, "changed_definition_review", {}))] if {
	count(changed_reviews) > 0
} else := []

tool_review_settings := [review_config(tool_settings.review)] if {
	count(tool_reviews) > 0
} else := []

# When both a changed definition and the tool's own review ask for
# reviewers, the stricter settings of the two apply.
approval := {
	"reviewers": max([s.reviewers | some s in settings]),
	"timeout_seconds": min([s.timeout_seconds | some s in settings]),
} if {
	settings := array.concat(changed_review_settings, tool_review_settings)
	count(settings) > 0
}

# ---------------------------------------------------------------------------
# Obligations on the result

redact_obligation := {"redact": tool_settings.redact} if {
	is_array(tool_settings.redact)
	count(tool_settings.redact) > 0
} else := {}

text_obligation := {"max_text_chars": tool_settings.max_text_chars} if {
	positive_integer(tool_settings.max_text_chars)
} else := {}

obligations := object.union(redact_obligation, text_obligation)

with_obligations(d) := object.union(d, {"obligations": obligations}) if {
	count(obligations) > 0
} else := d

# ---------------------------------------------------------------------------
# The decision

# Why the agent may not call the tool at all; undefined when it may.
access_denial := sprintf("the gateway policy's rules are unusable (%s); every call is denied", [concat("; ", sort(unusable))]) if {
	count(unusable) > 0
} else := "the call names no agent (agent.id is missing or empty); denied" if {
	not agent_id
} else := sprintf("this policy decides tool calls only; %s is denied (resources and prompts pass only where a rule of your own allows them)", [input.method]) if {
	input.method != "tools/call"
} else := "the call names no tool (tool.name is missing or empty); denied" if {
	not tool_name
} else := sprintf("agent %s is not known to the gateway policy: no entry of agents applies to it, so it may call no tool", [agent_id]) if {
	count(agent_keys_for(agent_id)) == 0
} else := sprintf("tool %s is blocked for every agent: %s", [tool_name, blocked_reason(tool_name)]) if {
	tool_blocked(tool_name)
} else := sprintf("agent %s may not call tool %s: no entry of agents that applies to it (%s) lists the tool%s", [agent_id, tool_name, concat(", ", quoted(agent_keys_for(agent_id))), broken_entries_note]) if {
	not may_call(agent_id, tool_name)
} else := sprintf("the gateway policy's rules for tool %s are malformed (%s); calls of it are denied until they are fixed", [tool_name, concat("; ", defects)]) if {
	defects := tool_defects(tool_name)
	count(defects) > 0
}

broken_entries_note := sprintf(" (malformed, granting nothing: %s)", [concat(", ", quoted(broken))]) if {
	broken := [key | some key in agent_keys_for(agent_id); not agent_entry_ok(agent_table[key])]
	count(broken) > 0
} else := ""

# What the call breaks, once the agent may call the tool.
call_denials := array.concat(changed_denials, argument_violations)

allow_reason := sprintf("agent %s may call tool %s (granted by %s)", [
	agent_id, tool_name,
	concat(", ", [sprintf("agents[%s]", [json.marshal(key)]) | some key in granting_keys(agent_id, tool_name)]),
])

# Reached only if evaluation of the rules fails in an unforeseen way.
default decision := {
	"outcome": "deny",
	"reasons": ["warden.mcp: the gateway policy could not be evaluated for this call; denied (fail closed)"],
}

decision := {"outcome": "deny", "reasons": [access_denial]} if {
	access_denial
} else := {"outcome": "deny", "reasons": call_denials} if {
	count(call_denials) > 0
} else := with_obligations({"outcome": "require_approval", "reasons": review_reasons, "approval": approval}) if {
	count(review_reasons) > 0
} else := with_obligations({"outcome": "allow", "reasons": [allow_reason]})

# ---------------------------------------------------------------------------
# What tools/list shows

# A tool whose definition changed is hidden while its new definition is not
# accepted (its new description is unreviewed text that would reach the
# agent's model), unless changed tools may be called under review.
hidden_as_changed(t) if {
	t.changed == true
	changed_mode == "deny"
}

visible contains name if {
	count(unusable) == 0
	is_array(input.tools)
	some t in input.tools
	name := t.name
	is_string(name)
	callable(agent_id, name)
	not hidden_as_changed(t)
}

# ---------------------------------------------------------------------------
# Audit helper: every defect in the rules

problems := sort(problem_set)

problem_set contains msg if {
	some defect in unusable
	msg := sprintf("%s; every call is denied and no tool is visible", [defect])
}

problem_set contains msg if {
	some key, _ in gateway_rules
	not gateway_fields[key]
	msg := sprintf("unknown field %s in data.warden.mcp.gateway; it is ignored", [json.marshal(key)])
}

problem_set contains "data.warden.mcp.gateway.description must be a string" if {
	has_key(gateway_rules, "description")
	not is_string(gateway_rules.description)
}

problem_set contains msg if {
	has_key(gateway_rules, "on_changed_definition")
	not changed_modes[gateway_rules.on_changed_definition]
	msg := sprintf("on_changed_definition %s is not one of \"deny\", \"require_approval\"; calls of changed tools are denied", [json.marshal(gateway_rules.on_changed_definition)])
}

problem_set contains msg if {
	gateway_rules.on_changed_definition == "require_approval"
	some defect in changed_review_defects
	msg := sprintf("changed_definition_review: %s; calls of changed tools are denied", [defect])
}

problem_set contains msg if {
	some key, _ in agent_table
	not valid_agent_key(key)
	msg := sprintf("agents[%s]: the key is not a valid agent id or pattern; the entry applies to no agent", [json.marshal(key)])
}

problem_set contains msg if {
	some key, entry in agent_table
	some defect in agent_entry_defects(entry)
	msg := sprintf("agents[%s]: %s; the entry grants nothing", [json.marshal(key), defect])
}

problem_set contains msg if {
	some key, entry in agent_table
	is_array(entry.tools)
	some i, pattern in entry.tools
	not valid_glob(pattern)
	msg := sprintf("agents[%s].tools[%d] is not a valid pattern: %s; it matches no tool", [json.marshal(key), i, json.marshal(pattern)])
}

problem_set contains msg if {
	some name, _ in tool_table
	not valid_tool_key(name)
	msg := sprintf("tools[%s]: the key is not an exact <upstream>__<tool> name (no patterns); the entry applies to no call", [json.marshal(name)])
}

problem_set contains msg if {
	some name, entry in tool_table
	some defect in tool_entry_defects(entry)
	msg := sprintf("tools[%s]: %s; calls of the tool are denied", [json.marshal(name), defect])
}

# An upstream name (1 to 32 lowercase letters, digits or `-`), two
# underscores, and a tool name without glob characters.
valid_tool_key(name) if regex.match(`^[a-z0-9-]{1,32}__[^*?\[\]{}]+$`, name)

unknown_field_defects(obj, allowed) := [msg |
	some key, _ in obj
	not allowed[key]
	msg := sprintf("unknown field %s", [json.marshal(key)])
]

string_field_defects(obj, fields) := [msg |
	some field in fields
	has_key(obj, field)
	not is_string(obj[field])
	msg := sprintf("%s must be a string", [field])
]

merged_defects(lists) := sort({msg | some list in lists; some msg in list})

# -- agents entries

agent_entry_defects(entry) := ["the entry must be an object with a tools array"] if {
	not is_object(entry)
} else := merged_defects([
	unknown_field_defects(entry, agent_fields),
	string_field_defects(entry, ["description"]),
	agent_tools_defects(entry),
])

agent_tools_defects(entry) := ["tools is missing"] if {
	not has_key(entry, "tools")
} else := ["tools must be an array of tool name patterns"] if {
	not is_array(entry.tools)
} else := []

# -- tools entries

tool_entry_defects(entry) := ["the entry must be an object"] if {
	not is_object(entry)
} else := merged_defects([
	unknown_field_defects(entry, tool_fields),
	string_field_defects(entry, ["description", "reason"]),
	blocked_defects(entry),
	arguments_defects(entry),
	review_defects(entry),
	redact_defects(entry),
	max_text_defects(entry),
])

blocked_defects(entry) := ["blocked must be true or false"] if {
	has_key(entry, "blocked")
	not is_boolean(entry.blocked)
} else := []

arguments_defects(entry) := [] if {
	not has_key(entry, "arguments")
} else := ["arguments must be an object keyed by argument path"] if {
	not is_object(entry.arguments)
} else := [msg |
	some path, c in entry.arguments
	some defect in constraint_defects(path, c)
	msg := sprintf("arguments[%s]: %s", [json.marshal(path), defect])
]

constraint_defects(path, c) := ["the argument path must not be empty"] if {
	path == ""
} else := ["must be an object of constraints"] if {
	not is_object(c)
} else := [msg |
	some key, value in c
	msg := constraint_field_defect(key, value)
]

constraint_field_defect(key, value) := "optional must be true or false" if {
	key == "optional"
	not is_boolean(value)
} else := sprintf("type must be one of %s", [concat(", ", sort(value_types))]) if {
	key == "type"
	not value_types[value]
} else := "in must be an array" if {
	key == "in"
	not is_array(value)
} else := sprintf("%s must be a number", [key]) if {
	key in {"min", "max"}
	not is_number(value)
} else := "pattern must be a valid regular expression (string)" if {
	key == "pattern"
	not valid_regex(value)
} else := "max_length must be an integer of at least 0" if {
	key == "max_length"
	not non_negative_integer(value)
} else := "description must be a string" if {
	key == "description"
	not is_string(value)
} else := sprintf("unknown field %s", [json.marshal(key)]) if {
	not constraint_fields[key]
}

review_defects(entry) := [] if {
	not has_key(entry, "review")
} else := ["review must be an object"] if {
	not is_object(entry.review)
} else := [sprintf("review: %s", [defect]) | some defect in merged_defects([
	unknown_field_defects(entry.review, review_fields),
	string_field_defects(entry.review, ["reason"]),
	approval_defects(entry.review),
	when_defects(entry.review),
])]

approval_defects(r) := [msg |
	some field in ["reviewers", "timeout_seconds"]
	has_key(r, field)
	not positive_integer(r[field])
	msg := sprintf("%s must be an integer of at least 1", [field])
]

when_defects(r) := [] if {
	not has_key(r, "when")
} else := ["when must be a non-empty object keyed by argument path"] if {
	not non_empty_object(r.when)
} else := [msg |
	some path, cond in r.when
	some defect in condition_defects(path, cond)
	msg := sprintf("when[%s]: %s", [json.marshal(path), defect])
]

condition_defects(path, cond) := ["the argument path must not be empty"] if {
	path == ""
} else := ["must be a non-empty object of over, at_least, in"] if {
	not non_empty_object(cond)
} else := [msg |
	some key, value in cond
	msg := condition_field_defect(key, value)
]

condition_field_defect(key, value) := sprintf("%s must be a number", [key]) if {
	key in {"over", "at_least"}
	not is_number(value)
} else := "in must be an array" if {
	key == "in"
	not is_array(value)
} else := sprintf("unknown condition %s (over, at_least, in)", [json.marshal(key)]) if {
	not key in condition_ops
}

redact_defects(entry) := ["redact must be an array of non-empty dotted paths"] if {
	has_key(entry, "redact")
	not redact_list(entry.redact)
} else := []

redact_list(x) if {
	is_array(x)
	every path in x {
		is_string(path)
		path != ""
	}
}

max_text_defects(entry) := ["max_text_chars must be an integer of at least 1"] if {
	has_key(entry, "max_text_chars")
	not positive_integer(entry.max_text_chars)
} else := []

# -- the changed-definition review

changed_review_defects := [] if {
	not has_key(gateway_rules, "changed_definition_review")
} else := ["must be an object"] if {
	not is_object(gateway_rules.changed_definition_review)
} else := merged_defects([
	unknown_field_defects(gateway_rules.changed_definition_review, changed_review_fields),
	approval_defects(gateway_rules.changed_definition_review),
])
