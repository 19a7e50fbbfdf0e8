# Tests of the MCP gateway policy (gateway.rego).
#
# The `test_shipped_*` tests check data.json as shipped (the sample rules
# the integration tests rely on); the others bring their own rules
# (`with data.warden.mcp.gateway as ...`) so they test the engine. A test
# passes when it evaluates to true.
#
# Helpers here must not start with `test_`: the runner would take them for
# tests.
package warden.mcp.gateway_test

import data.warden.mcp

# A tools/call as the gateway sends it.
call_of(agent, upstream, tool, args) := {
	"method": "tools/call",
	"agent": {"id": agent},
	"caller": {"token_id": "tok_01", "token_name": "agent-1", "subject": "token:tok_01", "roles": ["agent"], "tenant_id": "ten_01"},
	"session": {"id": "mcs_01", "client": {"name": "client", "version": "1.0"}},
	"upstream": {"name": upstream, "url": "https://tools.example/mcp"},
	"tool": {
		"name": sprintf("%s__%s", [upstream, tool]),
		"upstream_name": tool,
		"description": "a tool",
		"input_schema": {"type": "object"},
		"annotations": {},
		"definition_hash": "h1",
		"pinned_hash": "h1",
		"changed": false,
	},
	"arguments": args,
	"args_hash": "a1",
}

transfer(args) := call_of("teller", "bank", "transfer", args)

good_transfer := {"amount": 500, "currency": "EUR", "to": "acct-42"}

# `args` with one argument replaced or added.
with_arg(args, key, value) := object.union(args, {key: value})

without_arg(args, key) := object.remove(args, [key])

# The call with its tool marked as changed since it was pinned.
changed(inp) := object.union(inp, {"tool": object.union(inp.tool, {"definition_hash": "h2", "changed": true})})

# A tools/list as the gateway sends it.
list_of(agent, tools) := {
	"method": "tools/list",
	"agent": {"id": agent},
	"caller": {"token_id": "tok_01", "roles": ["agent"], "tenant_id": "ten_01"},
	"session": {"id": "mcs_01"},
	"tools": [t |
		some name in tools
		parts := split(name, "__")
		t := {"name": name, "upstream": parts[0], "upstream_name": parts[1], "description": "a tool", "definition_hash": "h1", "changed": false}
	],
}

shipped_tools := ["bank__lookup", "bank__transfer", "bank__close_account", "docs__search", "hr__salaries"]

decide(inp) := d if {
	d := mcp.decision with input as inp
}

decide_with(r, inp) := d if {
	d := mcp.decision with input as inp with data.warden.mcp.gateway as r
}

visible_with(r, inp) := v if {
	v := mcp.visible with input as inp with data.warden.mcp.gateway as r
}

problems_of(r) := p if {
	p := mcp.problems with data.warden.mcp.gateway as r
}

has_field(obj, key) if key in object.keys(obj)

# A decision that satisfies the contract: a known outcome, reasons a
# non-empty array of strings, approval exactly for require_approval.
well_formed(d) if {
	d.outcome in {"allow", "deny", "require_approval"}
	is_array(d.reasons)
	count(d.reasons) > 0
	every r in d.reasons {
		is_string(r)
	}
	approval_as_required(d)
	every key in object.keys(d) {
		key in {"outcome", "reasons", "approval", "obligations"}
	}
}

approval_as_required(d) if {
	d.outcome == "require_approval"
	is_number(d.approval.reviewers)
	is_number(d.approval.timeout_seconds)
}

approval_as_required(d) if {
	d.outcome != "require_approval"
	not has_field(d, "approval")
}

# A small rule set for engine tests: `pay-bot` may use payments tools with
# constraints, `billing-*` agents may read invoices.
rules := {
	"agents": {
		"pay-bot": {"tools": ["payments__*"]},
		"billing-*": {"tools": ["invoices__get", "invoices__list"]},
	},
	"tools": {
		"payments__refund": {
			"arguments": {
				"amount": {"type": "number", "max": 200},
				"customer.id": {"type": "string", "pattern": "^c[0-9]+$"},
				"note": {"optional": true, "max_length": 10},
			},
			"review": {"when": {"amount": {"over": 100}}},
		},
	},
}

refund(args) := call_of("pay-bot", "payments", "refund", args)

# ---------------------------------------------------------------------------
# The shipped rules (data.json), as the integration tests use them

test_shipped_rules_have_no_problems if {
	mcp.problems == []
}

test_shipped_lookup_is_allowed_with_redaction if {
	decide(call_of("teller", "bank", "lookup", {"account": "acct-42"})) == {
		"outcome": "allow",
		"reasons": [`agent teller may call tool bank__lookup (granted by agents["teller"])`],
		"obligations": {"redact": ["card.number", "ssn"]},
	}
}

test_shipped_small_transfer_is_allowed if {
	decide(transfer(good_transfer)) == {
		"outcome": "allow",
		"reasons": [`agent teller may call tool bank__transfer (granted by agents["teller"])`],
	}
}

test_shipped_transfer_up_to_the_threshold_needs_no_review if {
	d := decide(transfer(with_arg(good_transfer, "amount", 1000)))
	d.outcome == "allow"
	d2 := decide(transfer(with_arg(good_transfer, "amount", 1000.01)))
	d2.outcome == "require_approval"
}

test_shipped_large_transfer_needs_two_reviewers if {
	decide(transfer(with_arg(good_transfer, "amount", 5000))) == {
		"outcome": "require_approval",
		"reasons": ["tool bank__transfer needs review for agent teller: transfers over 1000 need two reviewers (argument amount is 5000, over 1000)"],
		"approval": {"reviewers": 2, "timeout_seconds": 900},
	}
}

test_shipped_transfer_in_gbp_is_denied if {
	decide(transfer(with_arg(good_transfer, "currency", "GBP"))) == {
		"outcome": "deny",
		"reasons": [`argument currency of bank__transfer must be one of "EUR", "USD"`],
	}
}

test_shipped_transfer_over_the_maximum_is_denied if {
	decide(transfer(with_arg(good_transfer, "amount", 100001))) == {
		"outcome": "deny",
		"reasons": ["argument amount of bank__transfer must be at most 100000; got 100001"],
	}
	d := decide(transfer(with_arg(good_transfer, "amount", 100000)))
	d.outcome == "require_approval"
}

test_shipped_transfer_of_nothing_or_less_is_denied if {
	every amount in [0, -5000] {
		d := decide(transfer(with_arg(good_transfer, "amount", amount)))
		d.outcome == "deny"
		d.reasons == [sprintf("argument amount of bank__transfer must be at least 0.01; got %s", [json.marshal(amount)])]
	}
}

test_shipped_transfer_amount_must_be_a_number if {
	decide(transfer(with_arg(good_transfer, "amount", "5000"))) == {
		"outcome": "deny",
		"reasons": ["argument amount of bank__transfer must be a number; got a string"],
	}
}

test_shipped_transfer_to_must_match_the_account_pattern if {
	decide(transfer(with_arg(good_transfer, "to", "acct-42; DROP"))) == {
		"outcome": "deny",
		"reasons": ["argument to of bank__transfer must match ^acct-[0-9]+$"],
	}
	d := decide(transfer(with_arg(good_transfer, "to", 42)))
	d.reasons == ["argument to of bank__transfer must be a string matching ^acct-[0-9]+$; got 42"]
}

test_shipped_transfer_missing_arguments_are_denied if {
	every key in ["amount", "currency", "to"] {
		d := decide(transfer(without_arg(good_transfer, key)))
		d == {
			"outcome": "deny",
			"reasons": [sprintf("argument %s of bank__transfer is missing; the gateway policy requires it", [key])],
		}
	}
	# No arguments at all: every constrained argument is missing.
	d := decide(object.remove(transfer(good_transfer), ["arguments"]))
	d.outcome == "deny"
	count(d.reasons) == 3
}

test_shipped_transfer_lists_every_violation if {
	d := decide(transfer({"amount": 500000, "currency": "GBP"}))
	d == {
		"outcome": "deny",
		"reasons": [
			"argument amount of bank__transfer must be at most 100000; got 500000",
			`argument currency of bank__transfer must be one of "EUR", "USD"`,
			"argument to of bank__transfer is missing; the gateway policy requires it",
		],
	}
}

test_shipped_close_account_is_denied if {
	decide(call_of("teller", "bank", "close_account", {"account": "acct-42"})) == {
		"outcome": "deny",
		"reasons": ["tool bank__close_account is blocked for every agent: accounts are closed by bank staff, never by an agent"],
	}
}

test_shipped_docs_search_is_allowed_for_any_agent if {
	every agent in ["teller", "someone-else", "x"] {
		d := decide(call_of(agent, "docs", "search", {"query": "fees"}))
		d == {
			"outcome": "allow",
			"reasons": [sprintf(`agent %s may call tool docs__search (granted by agents["*"])`, [agent])],
			"obligations": {"max_text_chars": 200},
		}
	}
}

test_shipped_other_agents_may_not_use_the_bank if {
	decide(call_of("mallory", "bank", "transfer", good_transfer)) == {
		"outcome": "deny",
		"reasons": [`agent mallory may not call tool bank__transfer: no entry of agents that applies to it ("*") lists the tool`],
	}
}

test_shipped_unlisted_tool_is_denied if {
	decide(call_of("teller", "hr", "salaries", {})) == {
		"outcome": "deny",
		"reasons": [`agent teller may not call tool hr__salaries: no entry of agents that applies to it ("*", "teller") lists the tool`],
	}
}

test_shipped_changed_definition_is_denied if {
	decide(changed(call_of("teller", "bank", "lookup", {"account": "acct-42"}))) == {
		"outcome": "deny",
		"reasons": ["the definition of tool bank__lookup changed since it was pinned; an admin must accept the new definition (POST /v1/mcp/upstreams/bank/tools/lookup/accept) before it can be called"],
	}
}

test_shipped_changed_definition_and_bad_arguments_are_both_reasons if {
	d := decide(changed(transfer(with_arg(good_transfer, "currency", "GBP"))))
	d.outcome == "deny"
	d.reasons == [
		"the definition of tool bank__transfer changed since it was pinned; an admin must accept the new definition (POST /v1/mcp/upstreams/bank/tools/transfer/accept) before it can be called",
		`argument currency of bank__transfer must be one of "EUR", "USD"`,
	]
}

test_shipped_visible_for_teller if {
	v := mcp.visible with input as list_of("teller", shipped_tools)
	v == {"bank__lookup", "bank__transfer", "docs__search"}
}

test_shipped_visible_for_other_agents if {
	v := mcp.visible with input as list_of("mallory", shipped_tools)
	v == {"docs__search"}
}

test_shipped_changed_tools_are_hidden if {
	inp := list_of("teller", shipped_tools)
	tools := [t |
		some t0 in inp.tools
		t := object.union(t0, {"changed": t0.name == "bank__transfer"})
	]
	v := mcp.visible with input as object.union(inp, {"tools": tools})
	v == {"bank__lookup", "docs__search"}
}

# ---------------------------------------------------------------------------
# Agents and tool patterns

test_unknown_agent_is_denied if {
	decide_with(rules, call_of("mallory", "payments", "refund", {"amount": 5, "customer": {"id": "c1"}})) == {
		"outcome": "deny",
		"reasons": ["agent mallory is not known to the gateway policy: no entry of agents applies to it, so it may call no tool"],
	}
}

test_agent_prefix_patterns if {
	d := decide_with(rules, call_of("billing-eu", "invoices", "get", {}))
	d.outcome == "allow"
	d.reasons == [`agent billing-eu may call tool invoices__get (granted by agents["billing-*"])`]
	decide_with(rules, call_of("billing", "invoices", "get", {})).outcome == "deny"
	decide_with(rules, call_of("xbilling-eu", "invoices", "get", {})).outcome == "deny"
	decide_with(rules, call_of("billing-eu", "invoices", "delete", {})).reasons == [`agent billing-eu may not call tool invoices__delete: no entry of agents that applies to it ("billing-*") lists the tool`]
}

test_tool_glob_patterns if {
	decide_with(rules, call_of("pay-bot", "payments", "charge", {})).outcome == "allow"
	decide_with(rules, call_of("pay-bot", "payments", "anything_else", {})).outcome == "allow"
	decide_with(rules, call_of("pay-bot", "paymentsx", "charge", {})).outcome == "deny"
	decide_with(rules, call_of("pay-bot", "invoices", "get", {})).outcome == "deny"
}

test_exact_agent_ids_are_exact if {
	decide_with(rules, call_of("pay-bot-2", "payments", "charge", {})).outcome == "deny"
	decide_with(rules, call_of("PAY-BOT", "payments", "charge", {})).outcome == "deny"
}

test_entries_that_apply_add_up if {
	r := {"agents": {"a-*": {"tools": ["x__one"]}, "a-1": {"tools": ["x__two"]}, "*": {"tools": ["x__three"]}}}
	every tool in ["one", "two", "three"] {
		decide_with(r, call_of("a-1", "x", tool, {})).outcome == "allow"
	}
	decide_with(r, call_of("a-2", "x", "two", {})).outcome == "deny"
	decide_with(r, call_of("a-1", "x", "one", {})).reasons == [`agent a-1 may call tool x__one (granted by agents["a-*"])`]
}

test_call_without_agent_or_tool_is_denied if {
	decide_with(rules, object.remove(refund({"amount": 5}), ["agent"])).reasons == ["the call names no agent (agent.id is missing or empty); denied"]
	decide_with(rules, call_of("", "payments", "refund", {})).reasons == ["the call names no agent (agent.id is missing or empty); denied"]
	decide_with(rules, object.remove(refund({"amount": 5}), ["tool"])).reasons == ["the call names no tool (tool.name is missing or empty); denied"]
}

test_blocked_tool_is_denied_even_when_granted if {
	r := object.union(rules, {"tools": {"payments__wipe": {"blocked": true}}})
	decide_with(r, call_of("pay-bot", "payments", "wipe", {})).reasons == ["tool payments__wipe is blocked for every agent: no reason given"]
	not "payments__wipe" in visible_with(r, list_of("pay-bot", ["payments__wipe", "payments__charge"]))
	"payments__charge" in visible_with(r, list_of("pay-bot", ["payments__wipe", "payments__charge"]))
	# blocked: false blocks nothing
	r2 := object.union(rules, {"tools": {"payments__wipe": {"blocked": false}}})
	decide_with(r2, call_of("pay-bot", "payments", "wipe", {})).outcome == "allow"
}

# ---------------------------------------------------------------------------
# Argument constraints

test_constraints_allow_a_good_call if {
	decide_with(rules, refund({"amount": 50, "customer": {"id": "c1"}})) == {
		"outcome": "allow",
		"reasons": [`agent pay-bot may call tool payments__refund (granted by agents["pay-bot"])`],
	}
}

test_constraint_max if {
	d := decide_with(rules, refund({"amount": 201, "customer": {"id": "c1"}}))
	d.reasons == ["argument amount of payments__refund must be at most 200; got 201"]
}

test_constraint_type if {
	d := decide_with(rules, refund({"amount": 50, "customer": {"id": 7}}))
	d.reasons == ["argument customer.id of payments__refund must be a string; got 7"]
	d2 := decide_with(rules, refund({"amount": [50], "customer": {"id": "c1"}}))
	d2.reasons == ["argument amount of payments__refund must be a number; got an array"]
	d3 := decide_with(rules, refund({"amount": null, "customer": {"id": "c1"}}))
	d3.reasons == ["argument amount of payments__refund must be a number; got null"]
}

test_constraint_type_integer if {
	r := {"agents": {"*": {"tools": ["x__y"]}}, "tools": {"x__y": {"arguments": {"n": {"type": "integer"}}}}}
	decide_with(r, call_of("a", "x", "y", {"n": 3})).outcome == "allow"
	decide_with(r, call_of("a", "x", "y", {"n": 3.5})).reasons == ["argument n of x__y must be an integer; got 3.5"]
}

test_constraint_pattern_on_a_nested_path if {
	d := decide_with(rules, refund({"amount": 50, "customer": {"id": "d1"}}))
	d.reasons == ["argument customer.id of payments__refund must match ^c[0-9]+$"]
}

test_constraint_missing_nested_argument if {
	d := decide_with(rules, refund({"amount": 50, "customer": {}}))
	d.reasons == ["argument customer.id of payments__refund is missing; the gateway policy requires it"]
	d2 := decide_with(rules, refund({"amount": 50, "customer": "c1"}))
	d2.reasons == ["argument customer.id of payments__refund is missing; the gateway policy requires it"]
}

test_optional_argument if {
	decide_with(rules, refund({"amount": 50, "customer": {"id": "c1"}, "note": "ok"})).outcome == "allow"
	d := decide_with(rules, refund({"amount": 50, "customer": {"id": "c1"}, "note": "far too long"}))
	d.reasons == ["argument note of payments__refund must have at most 10 characters; got 12"]
}

test_constraint_max_length_of_arrays if {
	r := {"agents": {"*": {"tools": ["x__y"]}}, "tools": {"x__y": {"arguments": {"items": {"max_length": 2}}}}}
	decide_with(r, call_of("a", "x", "y", {"items": [1, 2]})).outcome == "allow"
	decide_with(r, call_of("a", "x", "y", {"items": [1, 2, 3]})).reasons == ["argument items of x__y must have at most 2 elements; got 3"]
	decide_with(r, call_of("a", "x", "y", {"items": 5})).reasons == ["argument items of x__y must be a string or an array of at most 2; got 5"]
}

test_constraint_in_with_numbers if {
	r := {"agents": {"*": {"tools": ["x__y"]}}, "tools": {"x__y": {"arguments": {"n": {"in": [1, 2]}}}}}
	decide_with(r, call_of("a", "x", "y", {"n": 2})).outcome == "allow"
	decide_with(r, call_of("a", "x", "y", {"n": 2.0})).outcome == "allow"
	decide_with(r, call_of("a", "x", "y", {"n": 3})).reasons == ["argument n of x__y must be one of 1, 2; got 3"]
	decide_with(r, call_of("a", "x", "y", {"n": "1"})).reasons == ["argument n of x__y must be one of 1, 2"]
}

test_constraint_min_and_max_need_numbers if {
	r := {"agents": {"*": {"tools": ["x__y"]}}, "tools": {"x__y": {"arguments": {"n": {"min": 1, "max": 5}}}}}
	decide_with(r, call_of("a", "x", "y", {"n": 1})).outcome == "allow"
	decide_with(r, call_of("a", "x", "y", {"n": 5})).outcome == "allow"
	decide_with(r, call_of("a", "x", "y", {"n": "3"})).reasons == [
		"argument n of x__y must be a number of at least 1; got a string",
		"argument n of x__y must be a number of at most 5; got a string",
	]
}

test_empty_constraint_only_requires_the_argument if {
	r := {"agents": {"*": {"tools": ["x__y"]}}, "tools": {"x__y": {"arguments": {"id": {}}}}}
	decide_with(r, call_of("a", "x", "y", {"id": null})).outcome == "allow"
	decide_with(r, call_of("a", "x", "y", {})).reasons == ["argument id of x__y is missing; the gateway policy requires it"]
}

test_unconstrained_arguments_are_free if {
	decide_with(rules, refund({"amount": 50, "customer": {"id": "c1"}, "extra": {"any": "thing"}})).outcome == "allow"
}

# ---------------------------------------------------------------------------
# Reviews

test_review_over_the_threshold_with_defaults if {
	decide_with(rules, refund({"amount": 150, "customer": {"id": "c1"}})) == {
		"outcome": "require_approval",
		"reasons": ["tool payments__refund needs review for agent pay-bot: argument amount is 150, over 100"],
		"approval": {"reviewers": 1, "timeout_seconds": 86400},
	}
	decide_with(rules, refund({"amount": 100, "customer": {"id": "c1"}})).outcome == "allow"
}

test_review_never_outranks_a_violation if {
	d := decide_with(rules, refund({"amount": 500, "customer": {"id": "c1"}}))
	d.outcome == "deny"
}

test_review_when_the_threshold_cannot_be_checked if {
	r := {
		"agents": {"*": {"tools": ["x__y"]}},
		"tools": {"x__y": {"review": {"when": {"amount": {"at_least": 10}}, "reviewers": 3, "timeout_seconds": 60}}},
	}
	d := decide_with(r, call_of("a", "x", "y", {}))
	d == {
		"outcome": "require_approval",
		"reasons": ["tool x__y needs review for agent a: argument amount is missing (calls are reviewed when it is at least 10)"],
		"approval": {"reviewers": 3, "timeout_seconds": 60},
	}
	d2 := decide_with(r, call_of("a", "x", "y", {"amount": "5"}))
	d2.reasons == ["tool x__y needs review for agent a: argument amount is not a number (calls are reviewed when it is at least 10)"]
	decide_with(r, call_of("a", "x", "y", {"amount": 10})).reasons == ["tool x__y needs review for agent a: argument amount is 10, at least 10"]
	decide_with(r, call_of("a", "x", "y", {"amount": 9})).outcome == "allow"
}

test_review_any_condition_is_enough if {
	r := {
		"agents": {"*": {"tools": ["x__y"]}},
		"tools": {"x__y": {"review": {"when": {"amount": {"over": 10}, "currency": {"in": ["JPY"]}}, "reason": "unusual transfer"}}},
	}
	decide_with(r, call_of("a", "x", "y", {"amount": 5, "currency": "EUR"})).outcome == "allow"
	decide_with(r, call_of("a", "x", "y", {"amount": 5, "currency": "JPY"})).reasons == [`tool x__y needs review for agent a: unusual transfer (argument currency is "JPY", one of the values reviewed)`]
	decide_with(r, call_of("a", "x", "y", {"amount": 50, "currency": "JPY"})).reasons == [`tool x__y needs review for agent a: unusual transfer (argument amount is 50, over 10; argument currency is "JPY", one of the values reviewed)`]
}

test_review_without_when_reviews_every_call if {
	r := {"agents": {"*": {"tools": ["x__y"]}}, "tools": {"x__y": {"review": {"reviewers": 2}, "redact": ["secret"]}}}
	decide_with(r, call_of("a", "x", "y", {})) == {
		"outcome": "require_approval",
		"reasons": ["tool x__y needs review for agent a: every call of the tool is reviewed"],
		"approval": {"reviewers": 2, "timeout_seconds": 86400},
		"obligations": {"redact": ["secret"]},
	}
}

# ---------------------------------------------------------------------------
# Obligations

test_obligations_on_allow_and_review_never_on_deny if {
	r := {
		"agents": {"*": {"tools": ["x__y"]}},
		"tools": {"x__y": {
			"arguments": {"n": {"max": 10}},
			"review": {"when": {"n": {"over": 5}}},
			"redact": ["card.number", "ssn"],
			"max_text_chars": 2000,
		}},
	}
	want := {"redact": ["card.number", "ssn"], "max_text_chars": 2000}
	decide_with(r, call_of("a", "x", "y", {"n": 1})).obligations == want
	decide_with(r, call_of("a", "x", "y", {"n": 6})).obligations == want
	d := decide_with(r, call_of("a", "x", "y", {"n": 11}))
	d.outcome == "deny"
	not has_field(d, "obligations")
}

test_no_obligations_without_settings if {
	r := {"agents": {"*": {"tools": ["x__y"]}}, "tools": {"x__y": {"redact": []}}}
	d := decide_with(r, call_of("a", "x", "y", {}))
	d.outcome == "allow"
	not has_field(d, "obligations")
}

# ---------------------------------------------------------------------------
# Changed definitions

test_changed_definition_switch_require_approval if {
	r := object.union(rules, {"on_changed_definition": "require_approval", "changed_definition_review": {"reviewers": 2, "timeout_seconds": 600}})
	decide_with(r, changed(call_of("pay-bot", "payments", "charge", {}))) == {
		"outcome": "require_approval",
		"reasons": ["the definition of tool payments__charge changed since it was pinned and no admin has accepted it (POST /v1/mcp/upstreams/payments/tools/charge/accept); the call needs review"],
		"approval": {"reviewers": 2, "timeout_seconds": 600},
	}
}

test_changed_definition_review_combines_with_the_tools_review if {
	r := object.union(rules, {"on_changed_definition": "require_approval", "changed_definition_review": {"reviewers": 1, "timeout_seconds": 600}})
	d := decide_with(r, changed(refund({"amount": 150, "customer": {"id": "c1"}})))
	d.outcome == "require_approval"
	count(d.reasons) == 2
	d.approval == {"reviewers": 1, "timeout_seconds": 600}
	r3 := object.union(rules, {"on_changed_definition": "require_approval", "changed_definition_review": {"reviewers": 3}})
	d2 := decide_with(r3, changed(refund({"amount": 150, "customer": {"id": "c1"}})))
	d2.approval == {"reviewers": 3, "timeout_seconds": 86400}
	# a changed definition never excuses a violation
	decide_with(r, changed(refund({"amount": 500, "customer": {"id": "c1"}}))).outcome == "deny"
}

test_changed_definition_deny_by_default_and_when_malformed if {
	inp := changed(call_of("pay-bot", "payments", "charge", {}))
	every r in [
		rules,
		object.union(rules, {"on_changed_definition": "deny"}),
		object.union(rules, {"on_changed_definition": "allow"}),
		object.union(rules, {"on_changed_definition": "require_approval", "changed_definition_review": {"reviewers": 0}}),
	] {
		d := decide_with(r, inp)
		d.outcome == "deny"
		d.reasons == ["the definition of tool payments__charge changed since it was pinned; an admin must accept the new definition (POST /v1/mcp/upstreams/payments/tools/charge/accept) before it can be called"]
	}
	count(problems_of(object.union(rules, {"on_changed_definition": "allow"}))) == 1
}

test_changed_definition_without_upstream_names if {
	inp := object.remove(changed(call_of("pay-bot", "payments", "charge", {})), ["upstream"])
	decide_with(rules, inp).reasons == ["the definition of tool payments__charge changed since it was pinned; an admin must accept the new definition before it can be called"]
}

test_changed_tools_visibility_follows_the_switch if {
	inp := {"agent": {"id": "pay-bot"}, "tools": [
		{"name": "payments__charge", "changed": true},
		{"name": "payments__refund", "changed": false},
	]}
	visible_with(rules, inp) == {"payments__refund"}
	visible_with(object.union(rules, {"on_changed_definition": "require_approval"}), inp) == {"payments__charge", "payments__refund"}
}

# ---------------------------------------------------------------------------
# Visible

test_visible_is_what_the_agent_may_call if {
	names := ["payments__refund", "payments__charge", "invoices__get", "invoices__delete"]
	visible_with(rules, list_of("pay-bot", names)) == {"payments__refund", "payments__charge"}
	visible_with(rules, list_of("billing-eu", names)) == {"invoices__get"}
	visible_with(rules, list_of("mallory", names)) == set()
}

test_visible_always_defined if {
	visible_with(rules, {}) == set()
	visible_with(rules, {"agent": {"id": "pay-bot"}}) == set()
	visible_with(rules, {"agent": {"id": "pay-bot"}, "tools": "payments__refund"}) == set()
	visible_with(rules, {"agent": {"id": "pay-bot"}, "tools": [1, {"name": 2}, {"name": "payments__x"}]}) == {"payments__x"}
	visible_with(rules, {"tools": [{"name": "payments__x"}]}) == set()
	v := mcp.visible with data.warden.mcp.gateway as rules
	v == set()
	visible_with(null, list_of("pay-bot", ["payments__refund"])) == set()
}

# ---------------------------------------------------------------------------
# Always defined, reasons always non-empty strings

test_decision_always_well_formed if {
	inputs := [
		{},
		"a string",
		[1, 2],
		{"agent": "pay-bot", "tool": "payments__refund"},
		{"agent": {"id": ["x"]}, "tool": {"name": 42}, "arguments": [1]},
		{"agent": {"id": "pay-bot"}, "tool": {"name": "payments__refund"}, "arguments": "amount=5"},
		refund({"amount": 50, "customer": {"id": "c1"}}),
		refund({"amount": 150, "customer": {"id": "c1"}}),
		refund({"amount": 500}),
		changed(refund({"amount": 50, "customer": {"id": "c1"}})),
	]
	every inp in inputs {
		well_formed(decide_with(rules, inp))
		well_formed(decide(inp))
	}
}

test_decision_defined_without_input if {
	d := mcp.decision with data.warden.mcp.gateway as rules
	d == {"outcome": "deny", "reasons": ["the call names no agent (agent.id is missing or empty); denied"]}
}

test_unusable_rules_deny_everything if {
	inp := refund({"amount": 50, "customer": {"id": "c1"}})
	decide_with(null, inp) == {"outcome": "deny", "reasons": ["the gateway policy's rules are unusable (data.warden.mcp.gateway must be an object); every call is denied"]}
	decide_with([rules], inp).outcome == "deny"
	decide_with(object.union(rules, {"agents": ["pay-bot"]}), inp).reasons == ["the gateway policy's rules are unusable (agents must be an object keyed by agent id or pattern); every call is denied"]
	# `tools` not an object: its constraints cannot be read, so nothing runs unconstrained
	decide_with(object.union(rules, {"tools": []}), inp).reasons == ["the gateway policy's rules are unusable (tools must be an object keyed by tool name); every call is denied"]
	problems_of(null) == ["data.warden.mcp.gateway must be an object; every call is denied and no tool is visible"]
	decide_with({"tools": {}}, inp).reasons == ["the gateway policy's rules are unusable (agents is missing); every call is denied"]
	problems_of({}) == ["agents is missing; every call is denied and no tool is visible"]
}

# ---------------------------------------------------------------------------
# Malformed rules never allow

test_malformed_tool_entries_deny_and_hide if {
	bad := [
		{"argument": {"amount": {"max": 5}}},
		{"arguments": [{"path": "amount", "op": "max", "value": 5}]},
		{"arguments": {"amount": {"maximum": 5}}},
		{"arguments": {"amount": {"max": "5"}}},
		{"arguments": {"amount": {"in": "EUR"}}},
		{"arguments": {"amount": {"type": "float"}}},
		{"arguments": {"to": {"pattern": "(unclosed"}}},
		{"arguments": {"amount": "required"}},
		{"arguments": {"": {}}},
		{"review": {"when": {"amount": {"over": "1000"}}}},
		{"review": {"when": {"amount": {"gt": 1000}}}},
		{"review": {"when": {}}},
		{"review": {"reviewer": 2}},
		{"review": {"reviewers": 0}},
		{"review": {"timeout_seconds": 1.5}},
		{"review": true},
		{"redact": "ssn"},
		{"redact": [""]},
		{"max_text_chars": 0},
		{"blocked": "yes"},
		{"reason": 5},
		"allow",
	]
	every entry in bad {
		r := object.union(rules, {"tools": {"payments__charge": entry}})
		d := decide_with(r, call_of("pay-bot", "payments", "charge", {"amount": 1}))
		d.outcome == "deny"
		startswith(d.reasons[0], "the gateway policy's rules for tool payments__charge are malformed (")
		count(problems_of(r)) > 0
		visible_with(r, list_of("pay-bot", ["payments__charge"])) == set()
	}
}

test_malformed_tool_entry_reason_names_the_defect if {
	r := object.union(rules, {"tools": {"payments__charge": {"arguments": {"amount": {"maximum": 5}}}}})
	decide_with(r, call_of("pay-bot", "payments", "charge", {"amount": 1})).reasons == [`the gateway policy's rules for tool payments__charge are malformed (arguments["amount"]: unknown field "maximum"); calls of it are denied until they are fixed`]
	problems_of(r) == [`tools["payments__charge"]: arguments["amount"]: unknown field "maximum"; calls of the tool are denied`]
}

test_malformed_agent_entries_grant_nothing if {
	bad := [
		{"tool": ["payments__*"]},
		{"tools": "payments__*"},
		{"tools": ["payments__*"], "role": "admin"},
		{"tools": ["payments__*"], "description": 1},
		["payments__*"],
	]
	every entry in bad {
		r := {"agents": {"pay-bot": entry}}
		d := decide_with(r, call_of("pay-bot", "payments", "charge", {}))
		d.outcome == "deny"
		d.reasons == [`agent pay-bot may not call tool payments__charge: no entry of agents that applies to it ("pay-bot") lists the tool (malformed, granting nothing: "pay-bot")`]
		count(problems_of(r)) > 0
	}
}

test_invalid_patterns_match_nothing if {
	r := {"agents": {"pay-bot": {"tools": ["payments__[charge", "payments__refund", 7]}, "bad-{": {"tools": ["*"]}}}
	decide_with(r, call_of("pay-bot", "payments", "charge", {})).outcome == "deny"
	decide_with(r, call_of("pay-bot", "payments", "refund", {})).outcome == "allow"
	decide_with(r, call_of("bad-{", "payments", "refund", {})).outcome == "deny"
	problems_of(r) == [
		`agents["bad-{"]: the key is not a valid agent id or pattern; the entry applies to no agent`,
		`agents["pay-bot"].tools[0] is not a valid pattern: "payments__[charge"; it matches no tool`,
		`agents["pay-bot"].tools[2] is not a valid pattern: 7; it matches no tool`,
	]
}

test_problems_report_tool_keys_and_unknown_fields if {
	r := {
		"agents": {"*": {"tools": ["x__y"]}},
		"tools": {"payments__*": {"max_text_chars": 5}, "nounderscores": {}},
		"on_changed_defintion": "require_approval",
	}
	problems_of(r) == [
		`tools["nounderscores"]: the key is not an exact <upstream>__<tool> name (no patterns); the entry applies to no call`,
		`tools["payments__*"]: the key is not an exact <upstream>__<tool> name (no patterns); the entry applies to no call`,
		`unknown field "on_changed_defintion" in data.warden.mcp.gateway; it is ignored`,
	]
}

test_clean_engine_rules_have_no_problems if {
	problems_of(rules) == []
	problems_of(object.union(rules, {"on_changed_definition": "require_approval", "changed_definition_review": {"reviewers": 2, "timeout_seconds": 600}})) == []
}

test_resource_reads_and_prompts_are_denied_naming_the_method if {
	d := mcp.decision with input as {"method": "resources/read", "agent": {"id": "teller"},
		"resource": {"name": "mcp+docs:docs://handbook/intro", "uri": "docs://handbook/intro"}, "arguments": {}}
	d.outcome == "deny"
	contains(d.reasons[0], "resources/read is denied")
	p := mcp.decision with input as {"method": "prompts/get", "agent": {"id": "teller"},
		"prompt": {"name": "docs__summarize", "upstream_name": "summarize"}, "arguments": {}}
	p.outcome == "deny"
	contains(p.reasons[0], "prompts/get is denied")
}
