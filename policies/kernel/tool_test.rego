# Tests of the tool-invocation policy (tool.rego).
#
# Most tests bring their own rules (`with data.warden.kernel.rules as ...`)
# so they test the engine, not the shipped rule set; the `test_shipped_*`
# tests check data.json as shipped. A test passes when it evaluates to true.
#
# Helpers here must not start with `test_`: the runner would take them for
# tests.
package warden.kernel.tool_test

import data.warden.kernel

# A call as the kernel sends it.
call := {
	"execution": {
		"id": "exe_01",
		"agent_id": "claims-agent",
		"labels": {"env": "prod", "team": "claims"},
		"initiator": "token:tok_01 (agent-1)",
	},
	"agent": {"id": "claims-agent"},
	"tool": {"name": "payments.refund", "idempotent": false, "remote": true},
	"arguments": {"amount": 1200, "currency": "EUR", "customer": {"id": "c1"}},
	"labels": {"env": "prod", "team": "claims"},
	"caller": {"token_id": "tok_01", "token_name": "agent-1", "tenant_id": "ten_01", "roles": ["agent"]},
}

# `inp` with one top-level field replaced (not merged).
with_field(inp, field, value) := object.union(object.remove(inp, [field]), {field: value})

call_tool(name) := with_field(call, "tool", {"name": name, "idempotent": false, "remote": true})

call_args(args) := with_field(call, "arguments", args)

call_agent(id) := with_field(call, "agent", {"id": id})

call_labels(labels) := with_field(call, "labels", labels)

decide(rules, inp) := d if {
	d := kernel.decision with input as inp with data.warden.kernel.rules as rules
}

allowed(rules, inp) if {
	d := decide(rules, inp)
	d.allow == true
}

rule_of(rules, inp) := d.rule if {
	d := decide(rules, inp)
}

outcome_of(rules, inp) := d.outcome if {
	d := decide(rules, inp)
}

approval_of(rules, inp) := d.approval if {
	d := decide(rules, inp)
}

reasons_of(rules, inp) := d.reasons if {
	d := decide(rules, inp)
}

matching(rules, inp) := m if {
	m := kernel.matching with input as inp with data.warden.kernel.rules as rules
}

problems(rules) := p if {
	p := kernel.problems with data.warden.kernel.rules as rules
}

# Whether one predicate holds for these arguments: an allow rule with only
# that predicate allows the call.
holds(predicate, args) if {
	rules := [{"id": "p", "arguments": [predicate], "effect": "allow"}]
	outcome_of(rules, call_args(args)) == "allow"
}

has_approval(d) if "approval" in object.keys(d)

# ---------------------------------------------------------------------------
# Tools and globs

test_allow_by_glob if {
	d := decide([{"id": "pay", "tools": ["payments.*"], "effect": "allow"}], call)
	d == {"outcome": "allow", "allow": true, "reasons": ["rule pay: allow"], "rule": "pay"}
}

test_star_matches_every_tool_including_dots if {
	rules := [{"id": "all", "tools": ["*"], "effect": "allow"}]
	allowed(rules, call_tool("a.b.c"))
	allowed(rules, call_tool("shell"))
}

test_glob_is_anchored_and_exact if {
	rules := [{"id": "pay", "tools": ["payments.*", "crm.get_?", "kb.{search,read}"], "effect": "allow"}]
	allowed(rules, call_tool("payments.refund"))
	allowed(rules, call_tool("crm.get_x"))
	allowed(rules, call_tool("kb.read"))
	not allowed(rules, call_tool("payments"))
	not allowed(rules, call_tool("xpayments.refund"))
	not allowed(rules, call_tool("crm.get_xy"))
	not allowed(rules, call_tool("kb.write"))
}

test_glob_classes_and_escapes if {
	rules := [{"id": "g", "tools": ["db.[!w]*", "lit.\\*"], "effect": "allow"}]
	allowed(rules, call_tool("db.read"))
	not allowed(rules, call_tool("db.write"))
	allowed(rules, call_tool("lit.*"))
	not allowed(rules, call_tool("lit.x"))
}

test_any_listed_pattern_matches if {
	rules := [{"id": "two", "tools": ["crm.*", "payments.refund"], "effect": "allow"}]
	rule_of(rules, call) == "two"
}

test_empty_tools_list_matches_nothing if {
	d := decide([{"id": "none", "tools": [], "effect": "allow"}], call)
	d.outcome == "deny"
	d.rule == null
}

test_tools_absent_means_any_tool if {
	rule_of([{"id": "any", "effect": "allow"}], call_tool("whatever.tool")) == "any"
}

# ---------------------------------------------------------------------------
# Default deny

test_default_deny_with_null_rule if {
	d := decide([{"id": "crm", "tools": ["crm.*"], "effect": "allow"}], call)
	d == {
		"outcome": "deny",
		"allow": false,
		"reasons": ["no rule allows tool payments.refund"],
		"rule": null,
	}
}

test_default_deny_without_rules if {
	decide([], call) == {
		"outcome": "deny",
		"allow": false,
		"reasons": ["no rule allows tool payments.refund"],
		"rule": null,
	}
}

test_rules_that_are_not_an_array_deny_everything if {
	d := decide({"id": "all", "effect": "allow"}, call)
	d.outcome == "deny"
	d.rule == null
	problems({"id": "all", "effect": "allow"}) == ["data.warden.kernel.rules must be an array of rule objects; every call is denied"]
}

# ---------------------------------------------------------------------------
# Precedence

test_deny_beats_allow_at_equal_priority if {
	rules := [
		{"id": "a-allow", "tools": ["payments.*"], "effect": "allow"},
		{"id": "z-deny", "tools": ["payments.refund"], "effect": "deny", "reason": "refunds are frozen"},
	]
	d := decide(rules, call)
	d == {"outcome": "deny", "allow": false, "reasons": ["rule z-deny: refunds are frozen"], "rule": "z-deny"}
}

test_deny_beats_require_approval_at_equal_priority if {
	rules := [
		{"id": "a", "priority": 5, "effect": "require_approval"},
		{"id": "b", "priority": 5, "effect": "deny"},
	]
	rule_of(rules, call) == "b"
}

test_require_approval_beats_allow_at_equal_priority if {
	rules := [
		{"id": "a", "effect": "allow"},
		{"id": "b", "effect": "require_approval"},
	]
	d := decide(rules, call)
	d.outcome == "require_approval"
	d.rule == "b"
}

test_higher_priority_allow_beats_lower_deny if {
	rules := [
		{"id": "deny-payments", "tools": ["payments.*"], "effect": "deny"},
		{"id": "allow-refund", "priority": 10, "tools": ["payments.refund"], "effect": "allow"},
	]
	d := decide(rules, call)
	d == {"outcome": "allow", "allow": true, "reasons": ["rule allow-refund: allow"], "rule": "allow-refund"}
}

test_negative_priority_loses_to_default_priority if {
	rules := [
		{"id": "low-deny", "priority": -1, "effect": "deny"},
		{"id": "normal-allow", "effect": "allow"},
	]
	rule_of(rules, call) == "normal-allow"
}

test_tie_broken_by_smallest_id if {
	rules := [
		{"id": "beta", "effect": "allow", "reason": "b"},
		{"id": "alpha", "effect": "allow", "reason": "a"},
		{"id": "gamma", "effect": "allow"},
	]
	d := decide(rules, call)
	d.rule == "alpha"
	d.reasons == ["rule alpha: a", "rule beta: b", "rule gamma: allow"]
}

test_tie_between_denies_broken_by_id if {
	rules := [
		{"id": "deny-2", "effect": "deny"},
		{"id": "deny-1", "effect": "deny"},
		{"id": "allow-0", "effect": "allow"},
	]
	d := decide(rules, call)
	d.rule == "deny-1"
	d.reasons == ["rule deny-1: deny", "rule deny-2: deny"]
}

test_reasons_use_rule_reason_and_name_the_rule if {
	rules := [{"id": "no-refunds", "effect": "deny", "reason": "refunds are frozen until audit"}]
	reasons_of(rules, call) == ["rule no-refunds: refunds are frozen until audit"]
}

# ---------------------------------------------------------------------------
# require_approval

test_require_approval_defaults if {
	d := decide([{"id": "review", "effect": "require_approval"}], call)
	d == {
		"outcome": "require_approval",
		"allow": false,
		"reasons": ["rule review: require_approval"],
		"rule": "review",
		"approval": {"reviewers": 1, "timeout_seconds": 86400, "on_expiry": "fail"},
	}
}

test_require_approval_explicit_values if {
	rules := [{
		"id": "two-reviewers",
		"effect": "require_approval",
		"reason": "big refund",
		"approval": {"reviewers": 2, "timeout_seconds": 600, "on_expiry": "continue"},
	}]
	d := decide(rules, call)
	d == {
		"outcome": "require_approval",
		"allow": false,
		"reasons": ["rule two-reviewers: big refund"],
		"rule": "two-reviewers",
		"approval": {"reviewers": 2, "timeout_seconds": 600, "on_expiry": "continue"},
	}
}

test_require_approval_partial_values_take_defaults if {
	rules := [{"id": "r", "effect": "require_approval", "approval": {"reviewers": 3}}]
	approval_of(rules, call) == {"reviewers": 3, "timeout_seconds": 86400, "on_expiry": "fail"}
}

test_invalid_approval_is_deny if {
	bad := [
		{"reviewers": 0},
		{"reviewers": 1.5},
		{"reviewers": "2"},
		{"timeout_seconds": 0},
		{"on_expiry": "allow"},
		{"reviewer": 2},
	]
	every approval in bad {
		d := decide([{"id": "r", "effect": "require_approval", "approval": approval}], call)
		d.outcome == "deny"
		d.rule == "r"
		not has_approval(d)
	}
	d2 := decide([{"id": "r", "effect": "require_approval", "approval": "yes"}], call)
	d2.reasons == ["rule r: deny (malformed rule: approval must be an object)"]
}

test_approval_only_for_require_approval if {
	allow := decide([{"id": "a", "effect": "allow", "approval": {"reviewers": 2}}], call)
	allow.outcome == "allow"
	not has_approval(allow)
	deny := decide([{"id": "d", "effect": "deny"}], call)
	deny.outcome == "deny"
	not has_approval(deny)
	none := decide([], call)
	none.outcome == "deny"
	not has_approval(none)
}

# ---------------------------------------------------------------------------
# Argument predicates, each op true and false

test_op_equals if {
	holds({"path": "currency", "op": "equals", "value": "EUR"}, {"currency": "EUR"})
	holds({"path": "amount", "op": "equals", "value": 1200}, {"amount": 1200.0})
	holds({"path": "flag", "op": "equals", "value": null}, {"flag": null})
	holds({"path": "customer.id", "op": "equals", "value": "c1"}, {"customer": {"id": "c1"}})
	not holds({"path": "currency", "op": "equals", "value": "EUR"}, {"currency": "USD"})
	not holds({"path": "amount", "op": "equals", "value": "1200"}, {"amount": 1200})
}

test_op_not_equals if {
	holds({"path": "currency", "op": "not_equals", "value": "EUR"}, {"currency": "USD"})
	not holds({"path": "currency", "op": "not_equals", "value": "EUR"}, {"currency": "EUR"})
	not holds({"path": "currency", "op": "not_equals", "value": "EUR"}, {})
}

test_op_one_of if {
	holds({"path": "currency", "op": "one_of", "value": ["EUR", "USD"]}, {"currency": "USD"})
	not holds({"path": "currency", "op": "one_of", "value": ["EUR", "USD"]}, {"currency": "JPY"})
	not holds({"path": "currency", "op": "one_of", "value": []}, {"currency": "EUR"})
	not holds({"path": "currency", "op": "one_of", "value": "EUR"}, {"currency": "EUR"})
}

test_op_regex if {
	holds({"path": "to", "op": "regex", "value": "@acme\\.example$"}, {"to": "ann@acme.example"})
	holds({"path": "to", "op": "regex", "value": "acme"}, {"to": "ann@acme.example"})
	not holds({"path": "to", "op": "regex", "value": "^acme"}, {"to": "ann@acme.example"})
	not holds({"path": "to", "op": "regex", "value": ".*"}, {"to": 42})
	not holds({"path": "to", "op": "regex", "value": "(unclosed"}, {"to": "(unclosed"})
}

test_op_min if {
	holds({"path": "amount", "op": "min", "value": 1000}, {"amount": 1000})
	holds({"path": "amount", "op": "min", "value": 1000}, {"amount": 1000.5})
	not holds({"path": "amount", "op": "min", "value": 1000}, {"amount": 999.99})
	not holds({"path": "amount", "op": "min", "value": 1000}, {"amount": "5000"})
	not holds({"path": "amount", "op": "min", "value": "1000"}, {"amount": 5000})
}

test_op_max if {
	holds({"path": "amount", "op": "max", "value": 200}, {"amount": 200})
	holds({"path": "amount", "op": "max", "value": 200}, {"amount": -5})
	not holds({"path": "amount", "op": "max", "value": 200}, {"amount": 200.01})
	not holds({"path": "amount", "op": "max", "value": 200}, {"amount": "1"})
	not holds({"path": "amount", "op": "max", "value": 200}, {"amount": null})
}

test_op_max_length if {
	holds({"path": "subject", "op": "max_length", "value": 5}, {"subject": "hello"})
	holds({"path": "items", "op": "max_length", "value": 2}, {"items": [1, 2]})
	holds({"path": "items", "op": "max_length", "value": 0}, {"items": []})
	not holds({"path": "subject", "op": "max_length", "value": 4}, {"subject": "hello"})
	not holds({"path": "items", "op": "max_length", "value": 1}, {"items": [1, 2]})
	not holds({"path": "subject", "op": "max_length", "value": 10}, {"subject": 12})
	not holds({"path": "subject", "op": "max_length", "value": 10}, {"subject": {"a": 1}})
}

test_op_exists if {
	holds({"path": "customer.id", "op": "exists", "value": true}, {"customer": {"id": "c1"}})
	holds({"path": "note", "op": "exists", "value": true}, {"note": null})
	holds({"path": "note", "op": "exists", "value": true}, {"note": false})
	not holds({"path": "customer.id", "op": "exists", "value": true}, {"customer": {}})
	holds({"path": "customer.id", "op": "exists", "value": false}, {"customer": {}})
	holds({"path": "customer.id", "op": "exists", "value": false}, {"customer": "c1"})
	not holds({"path": "customer.id", "op": "exists", "value": false}, {"customer": {"id": "c1"}})
	not holds({"path": "customer.id", "op": "exists", "value": "yes"}, {"customer": {"id": "c1"}})
}

test_missing_argument_satisfies_only_exists_false if {
	failing := [
		{"path": "amount", "op": "equals", "value": null},
		{"path": "amount", "op": "not_equals", "value": 5},
		{"path": "amount", "op": "one_of", "value": [null, 5]},
		{"path": "amount", "op": "regex", "value": ".*"},
		{"path": "amount", "op": "min", "value": -1000000},
		{"path": "amount", "op": "max", "value": 1000000},
		{"path": "amount", "op": "max_length", "value": 1000000},
		{"path": "amount", "op": "exists", "value": true},
	]
	every predicate in failing {
		not holds(predicate, {"currency": "EUR"})
	}
	holds({"path": "amount", "op": "exists", "value": false}, {"currency": "EUR"})
}

test_missing_arguments_object if {
	inp := object.remove(call, ["arguments"])
	rule := {"id": "p", "arguments": [{"path": "amount", "op": "exists", "value": false}], "effect": "allow"}
	allowed([rule], inp)
	allowed([rule], with_field(call, "arguments", "not an object"))
	other := {"id": "q", "arguments": [{"path": "amount", "op": "max", "value": 10}], "effect": "allow"}
	not allowed([other], inp)
}

test_arguments_do_not_index_into_arrays if {
	not holds({"path": "items.0", "op": "exists", "value": true}, {"items": ["a"]})
}

test_every_predicate_must_hold if {
	rule := {"id": "r", "effect": "allow", "arguments": [
		{"path": "amount", "op": "max", "value": 200},
		{"path": "currency", "op": "equals", "value": "EUR"},
	]}
	allowed([rule], call_args({"amount": 100, "currency": "EUR"}))
	not allowed([rule], call_args({"amount": 100, "currency": "USD"}))
	not allowed([rule], call_args({"amount": 300, "currency": "EUR"}))
	allowed([object.union(rule, {"arguments": []})], call)
}

# ---------------------------------------------------------------------------
# Labels and agents

test_labels_match if {
	rules := [{"id": "prod", "labels": {"env": "prod"}, "effect": "allow"}]
	rule_of(rules, call) == "prod"
	rules2 := [{"id": "prod-claims", "labels": {"env": "prod", "team": "claims"}, "effect": "allow"}]
	rule_of(rules2, call) == "prod-claims"
}

test_labels_mismatch if {
	rules := [{"id": "prod-billing", "labels": {"env": "prod", "team": "billing"}, "effect": "allow"}]
	rule_of(rules, call) == null
	rules2 := [{"id": "region", "labels": {"region": "eu"}, "effect": "allow"}]
	rule_of(rules2, call) == null
	rules3 := [{"id": "prod", "labels": {"env": "prod"}, "effect": "allow"}]
	rule_of(rules3, call_labels({"env": "staging"})) == null
	rule_of(rules3, object.remove(call, ["labels"])) == null
}

test_labels_come_from_input_labels_only if {
	rules := [{"id": "prod", "labels": {"env": "prod"}, "effect": "allow"}]
	inp := object.remove(call, ["labels"])
	inp.execution.labels.env == "prod"
	rule_of(rules, inp) == null
}

test_agents_filter if {
	rules := [{"id": "claims", "agents": ["claims-*", "auditor"], "effect": "allow"}]
	rule_of(rules, call) == "claims"
	rule_of(rules, call_agent("auditor")) == "claims"
	rule_of(rules, call_agent("billing-agent")) == null
	rule_of(rules, object.remove(call, ["agent"])) == null
}

test_all_conditions_must_hold if {
	rule := {
		"id": "r",
		"tools": ["payments.*"],
		"agents": ["claims-agent"],
		"labels": {"env": "prod"},
		"arguments": [{"path": "currency", "op": "equals", "value": "EUR"}],
		"effect": "allow",
	}
	allowed([rule], call)
	not allowed([rule], call_tool("crm.get"))
	not allowed([rule], call_agent("other"))
	not allowed([rule], call_labels({"env": "dev"}))
	not allowed([rule], call_args({"currency": "USD"}))
}

# ---------------------------------------------------------------------------
# Malformed rules never allow

test_unknown_op_never_allows if {
	rules := [{"id": "gt", "arguments": [{"path": "amount", "op": "gt", "value": 1}], "effect": "allow"}]
	d := decide(rules, call)
	d.outcome == "deny"
	d.rule == null
	problems(rules) == [`rules[0] (gt): arguments[0]: op "gt" is not one of equals, exists, max, max_length, min, not_equals, one_of, regex; this condition never holds`]
}

test_malformed_predicates_never_hold if {
	bad := [
		"amount",
		{"op": "exists", "value": false},
		{"path": "", "op": "exists", "value": false},
		{"path": 7, "op": "exists", "value": false},
		{"path": "amount", "value": 1},
		{"path": "amount", "op": "equals"},
		{"path": "amount", "op": "max", "value": 5000, "unit": "EUR"},
	]
	every predicate in bad {
		not holds(predicate, {"amount": 1})
		count(problems([{"id": "p", "arguments": [predicate], "effect": "allow"}])) == 1
	}
}

test_unknown_effect_is_treated_as_deny if {
	rules := [{"id": "odd", "effect": "permit"}]
	d := decide(rules, call)
	d == {
		"outcome": "deny",
		"allow": false,
		"reasons": [`rule odd: deny (malformed rule: effect "permit" is not one of allow, deny, require_approval)`],
		"rule": "odd",
	}
}

test_unknown_effect_beats_allow_at_equal_priority if {
	rules := [
		{"id": "a", "effect": "allow"},
		{"id": "b", "effect": "ALLOW", "reason": "typo"},
	]
	d := decide(rules, call)
	d.outcome == "deny"
	d.reasons == [`rule b: typo (treated as deny, malformed rule: effect "ALLOW" is not one of allow, deny, require_approval)`]
}

test_missing_effect_is_deny if {
	outcome_of([{"id": "x"}], call) == "deny"
	rule_of([{"id": "x"}], call) == "x"
}

test_unknown_rule_field_is_deny if {
	# `tool` instead of `tools`: without the safeguard this would allow every tool.
	rules := [{"id": "typo", "tool": ["crm.*"], "effect": "allow"}]
	d := decide(rules, call)
	d.outcome == "deny"
	d.rule == "typo"
	problems(rules) == [`rules[0] (typo): unknown field "tool"; the rule is treated as deny`]
}

test_missing_id_is_deny_and_named_by_position if {
	d := decide([{"id": "ok", "tools": ["crm.*"], "effect": "allow"}, {"effect": "allow"}], call)
	d.outcome == "deny"
	d.rule == "rules[1]"
}

test_malformed_conditions_never_hold if {
	bad := [
		{"id": "t", "tools": "payments.*", "effect": "allow"},
		{"id": "t", "tools": ["payments.*", 3], "effect": "allow"},
		{"id": "t", "tools": ["payments.[refund"], "effect": "allow"},
		{"id": "t", "agents": "claims-agent", "effect": "allow"},
		{"id": "t", "labels": ["env"], "effect": "allow"},
		{"id": "t", "arguments": {"path": "amount", "op": "exists", "value": true}, "effect": "allow"},
	]
	every rule in bad {
		rule_of([rule], call) == null
		count(problems([rule])) == 1
	}
}

test_non_object_rules_are_ignored if {
	rules := ["allow everything", 1, {"id": "pay", "tools": ["payments.*"], "effect": "allow"}]
	rule_of(rules, call) == "pay"
	problems(rules) == ["rules[0] is not an object and is ignored", "rules[1] is not an object and is ignored"]
}

test_duplicate_ids_are_reported if {
	rules := [{"id": "x", "effect": "allow"}, {"id": "x", "effect": "deny"}]
	outcome_of(rules, call) == "deny"
	problems(rules) == [`rules[0] and rules[1] share the id "x"; ids must be unique`]
}

# ---------------------------------------------------------------------------
# Always defined

test_decision_defined_for_empty_input if {
	decide([{"id": "pay", "tools": ["payments.*"], "effect": "allow"}], {}) == {
		"outcome": "deny",
		"allow": false,
		"reasons": ["no rule allows tool (no tool name given)"],
		"rule": null,
	}
	rule_of([{"id": "open", "effect": "allow"}], {}) == "open"
	outcome_of([], {}) == "deny"
}

test_decision_defined_without_input if {
	d := kernel.decision with data.warden.kernel.rules as [{"id": "pay", "tools": ["payments.*"], "effect": "allow"}]
	d.outcome == "deny"
	d.rule == null
}

test_decision_defined_for_mistyped_input if {
	rules := [{
		"id": "r",
		"tools": ["*"],
		"agents": ["*"],
		"labels": {"env": "prod"},
		"arguments": [{"path": "amount", "op": "max", "value": 10}],
		"effect": "allow",
	}]
	every inp in [
		"a string",
		[1, 2],
		{"tool": "payments.refund"},
		{"tool": {"name": 42}, "agent": {"id": ["x"]}, "labels": "prod", "arguments": [1]},
	] {
		d := decide(rules, inp)
		d.outcome == "deny"
		d.allow == false
		count(d.reasons) == 1
	}
}

test_decision_defined_when_rules_data_is_null if {
	d := kernel.decision with input as call with data.warden.kernel.rules as null
	d.outcome == "deny"
	d.rule == null
}

# ---------------------------------------------------------------------------
# Audit helpers

test_matching_lists_all_matching_ids_sorted if {
	rules := [
		{"id": "c", "effect": "allow"},
		{"id": "a", "priority": 9, "tools": ["payments.*"], "effect": "deny"},
		{"id": "b", "tools": ["crm.*"], "effect": "allow"},
		{"id": "d", "labels": {"env": "prod"}, "effect": "require_approval"},
	]
	matching(rules, call) == ["a", "c", "d"]
	matching(rules, {}) == ["c"]
	matching([], call) == []
}

test_matched_rules_detail if {
	rules := [
		{"id": "b", "priority": 2, "effect": "allow"},
		{"id": "a", "effect": "permit"},
	]
	m := kernel.matched_rules with input as call with data.warden.kernel.rules as rules
	m == [{"id": "a", "priority": 0, "effect": "deny"}, {"id": "b", "priority": 2, "effect": "allow"}]
}

# ---------------------------------------------------------------------------
# The shipped rules (data.json) as they are

test_shipped_rules_have_no_problems if {
	kernel.problems == []
}

test_shipped_small_refund_by_claims_agent_is_allowed if {
	inp := call_args({"amount": 150, "currency": "EUR", "customer": {"id": "c1"}})
	d := kernel.decision with input as inp
	d == {
		"outcome": "allow",
		"allow": true,
		"reasons": ["rule payments-refund-small: small refund by the claims agent"],
		"rule": "payments-refund-small",
	}
}

test_shipped_large_refund_needs_two_reviewers if {
	d := kernel.decision with input as call
	d == {
		"outcome": "require_approval",
		"allow": false,
		"reasons": ["rule payments-large-two-reviewers: payments of 1000 or more need two reviewers"],
		"rule": "payments-large-two-reviewers",
		"approval": {"reviewers": 2, "timeout_seconds": 86400, "on_expiry": "fail"},
	}
	m := kernel.matching with input as call
	m == ["payments-large-two-reviewers", "payments-review"]
}

test_shipped_mid_size_refund_needs_one_reviewer if {
	d := kernel.decision with input as call_args({"amount": 500, "currency": "EUR", "customer": {"id": "c1"}})
	d.outcome == "require_approval"
	d.rule == "payments-review"
	d.approval == {"reviewers": 1, "timeout_seconds": 14400, "on_expiry": "fail"}
}

test_shipped_payment_without_amount_is_denied if {
	d := kernel.decision with input as call_args({"currency": "EUR", "customer": {"id": "c1"}})
	d.outcome == "deny"
	d.rule == "payments-amount-required"
}

test_shipped_shell_is_denied if {
	d := kernel.decision with input as call_tool("shell.exec")
	d == {
		"outcome": "deny",
		"allow": false,
		"reasons": ["rule shell-denied: shell and process execution are never allowed for agents"],
		"rule": "shell-denied",
	}
	d2 := kernel.decision with input as call_tool("shell.list")
	d2.rule == "shell-denied"
}

test_shipped_prod_deletion_needs_approval_staging_does_not if {
	d := kernel.decision with input as call_tool("claims.delete")
	d.outcome == "require_approval"
	d.rule == "prod-deletions-need-approval"
	d.approval == {"reviewers": 1, "timeout_seconds": 3600, "on_expiry": "fail"}
	staging := with_field(call_tool("claims.delete"), "labels", {"env": "staging"})
	d2 := kernel.decision with input as staging
	d2.rule == "staging-deletions-allowed"
	d2.allow
}

test_shipped_read_only_tools_are_allowed if {
	d := kernel.decision with input as call_tool("crm.get_customer")
	d.allow
	d.rule == "read-only-tools"
}

test_shipped_unknown_tool_is_denied_by_default if {
	d := kernel.decision with input as call_tool("crm.update_customer")
	d == {
		"outcome": "deny",
		"allow": false,
		"reasons": ["no rule allows tool crm.update_customer"],
		"rule": null,
	}
}

test_shipped_email if {
	internal := with_field(call_tool("email.send"), "arguments", {"to": "ann@acme.example", "subject": "Claim 17", "attachments": []})
	d1 := kernel.decision with input as internal
	d1.rule == "email-internal"
	external := with_field(call_tool("email.send"), "arguments", {"to": "bob@example.org", "subject": "Claim 17"})
	d := kernel.decision with input as external
	d.rule == "email-external-review"
	d.approval.on_expiry == "continue"
}
