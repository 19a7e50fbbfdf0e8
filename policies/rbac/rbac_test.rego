# Tests of the three-level permission policy (rbac.rego).
#
# Most tests bring their own permissions (`decide(perms, request)` below
# replaces platform, organisations, workflows and tools) so they test the
# engine, not the shipped data; the `test_shipped_*` tests check data.json as
# shipped. A test passes when it evaluates to true.
#
# The package sits inside the bundle's root (warden/rbac), as every package
# of a bundle must. Helpers here must not start with `test_`: the runner
# would take them for tests.
package warden.rbac.rbac_test

import data.warden.rbac

# ---------------------------------------------------------------------------
# Requests as the kernel sends them

flow(name) := {"name": name, "version": 3, "run_id": "run_01", "state": "Retrieve"}

bess_skill := {
	"id": "bess_commissioning_retrieval",
	"version": "1.2.0",
	"allowed_connectors": ["acc", "sharepoint"],
	"rbac_scope": "engineering.commissioning",
}

request(tool, org, workflow, skill) := {
	"tool": {"name": tool, "remote": false, "idempotent": true},
	"arguments": {"project_id": "proj_abc123", "document_id": "doc_xyz789"},
	"agent_id": "retrieval-agent-v1",
	"labels": {"env": "prod"},
	"organisation": org,
	"workflow": workflow,
	"skill": skill,
	"caller": {"token_id": "tok_01", "token_name": "agent-1", "tenant_id": "ten_01", "roles": ["agent"]},
}

# A request from no organisation, no workflow, no skill.
plain(tool) := request(tool, null, null, null)

# `obj` with one top-level key replaced (not merged: object.union merges
# nested objects).
with_key(obj, key, value) := object.union(object.remove(obj, [key]), {key: value})

# ---------------------------------------------------------------------------
# Permissions for the engine tests

perms := {
	"platform": {"connectors": ["acc", "sharepoint", "procore", "payments"], "tools": ["*"], "actions": ["*"]},
	"organisations": {
		"engineering": {"connectors": ["acc", "sharepoint", "procore"]},
		"finance": {"connectors": ["payments"]},
	},
	"workflows": {"bess-commissioning": {"connectors": ["acc", "sharepoint"], "actions": ["document_read"]}},
	"tools": {},
}

# perms with one level replaced: the platform, one organisation, one workflow.
with_platform(level) := with_key(perms, "platform", level)

with_org(name, level) := with_key(perms, "organisations", with_key(perms.organisations, name, level))

with_workflow(name, level) := with_key(perms, "workflows", with_key(perms.workflows, name, level))

decide(p, req) := d if {
	d := rbac.decision with input as req
		with data.warden.rbac.platform as p.platform
		with data.warden.rbac.organisations as p.organisations
		with data.warden.rbac.workflows as p.workflows
		with data.warden.rbac.tools as p.tools
}

problems_of(p) := ps if {
	ps := rbac.problems
		with data.warden.rbac.platform as p.platform
		with data.warden.rbac.organisations as p.organisations
		with data.warden.rbac.workflows as p.workflows
		with data.warden.rbac.tools as p.tools
}

allowed(p, req) if decide(p, req).allow == true

denied(p, req) if decide(p, req).allow == false

# Denied, and `reason` is among the reasons.
denied_because(p, req, reason) if {
	d := decide(p, req)
	d.allow == false
	reason in d.reasons
}

# ---------------------------------------------------------------------------
# The shipped data

test_shipped_data_has_no_problems if {
	rbac.problems == []
}

test_shipped_bess_retrieval_reads_acc_documents if {
	d := rbac.decision with input as request("acc.document_read", "engineering", flow("bess-commissioning"), bess_skill)
	d.allow == true
	d.reasons == ["tool acc.document_read (connector acc, action document_read) is allowed by platform, organisation engineering, workflow bess-commissioning and skill bess_commissioning_retrieval"]
	d.effective == {"connectors": ["acc", "sharepoint"], "tools": ["*"], "actions": ["document_read"]}
	d.narrowed == []
}

test_shipped_bess_workflow_may_not_write if {
	d := rbac.decision with input as request("acc.document_write", "engineering", flow("bess-commissioning"), bess_skill)
	d.allow == false
	d.reasons == ["workflow bess-commissioning does not allow action document_write"]
}

test_shipped_finance_may_not_use_acc if {
	d := rbac.decision with input as request("acc.document_read", "finance", null, null)
	d.allow == false
	d.reasons == ["organisation finance does not allow connector acc"]
}

test_shipped_finance_in_bess_workflow_is_narrowed if {
	d := rbac.decision with input as request("acc.document_read", "finance", flow("bess-commissioning"), null)
	d.allow == false
	d.reasons == ["organisation finance does not allow connector acc"]
	d.narrowed == [
		"workflow bess-commissioning lists connector acc, which organisation finance does not allow; not in force",
		"workflow bess-commissioning lists connector procore, which organisation finance does not allow; not in force",
		"workflow bess-commissioning lists connector sharepoint, which organisation finance does not allow; not in force",
	]
	d.effective == {"connectors": [], "tools": ["*"], "actions": ["document_read"]}
}

test_shipped_platform_has_no_shell if {
	d := rbac.decision with input as plain("shell.exec")
	d.allow == false
	d.reasons == ["platform does not allow connector shell"]
}

test_shipped_mapped_tool if {
	d := rbac.decision with input as request("bim360_fetch", "engineering", flow("bess-commissioning"), bess_skill)
	d.allow == true
}

test_shipped_contractors_scope if {
	ok := rbac.decision with input as request("procore.punch_item_list", "site-contractors", null, with_key(bess_skill, "allowed_connectors", ["procore"]))
	ok.allow == true
	other := with_key(with_key(bess_skill, "allowed_connectors", ["procore"]), "rbac_scope", "engineering.design")
	no := rbac.decision with input as request("procore.punch_item_list", "site-contractors", null, other)
	no.reasons == ["organisation site-contractors does not allow skill scope engineering.design (skill bess_commissioning_retrieval)"]
}

# ---------------------------------------------------------------------------
# Each level denies on its own

test_platform_denies_alone if {
	denied_because(perms, plain("crm.get"), "platform does not allow connector crm")
	count(decide(perms, plain("crm.get")).reasons) == 1
}

test_organisation_denies_alone if {
	req := request("payments.refund", "engineering", null, null)
	d := decide(perms, req)
	d.allow == false
	d.reasons == ["organisation engineering does not allow connector payments"]

	# The same tool is fine for finance.
	allowed(perms, request("payments.refund", "finance", null, null))
}

test_workflow_denies_alone if {
	req := request("procore.document_read", "engineering", flow("bess-commissioning"), null)
	d := decide(perms, req)
	d.reasons == ["workflow bess-commissioning does not allow connector procore"]

	# Outside the workflow, the organisation allows it.
	allowed(perms, request("procore.document_read", "engineering", null, null))
}

test_workflow_denies_action if {
	denied_because(perms, request("acc.document_write", "engineering", flow("bess-commissioning"), null), "workflow bess-commissioning does not allow action document_write")
	allowed(perms, request("acc.document_write", "engineering", null, null))
}

test_platform_tool_globs_deny if {
	p := with_platform({"connectors": ["*"], "tools": ["acc.*", "*.document_read"], "actions": ["*"]})
	allowed(p, plain("acc.anything"))
	allowed(p, plain("sharepoint.document_read"))
	denied_because(p, plain("sharepoint.document_write"), "platform does not allow tool sharepoint.document_write")
}

test_platform_action_denies if {
	p := with_platform({"actions": ["document_read"]})
	denied_because(p, plain("acc.document_delete"), "platform does not allow action document_delete")
}

test_every_denying_level_is_reported if {
	p := with_platform({"connectors": ["acc"], "actions": ["document_read"]})
	d := decide(p, request("payments.refund", "engineering", flow("bess-commissioning"), null))
	d.reasons == [
		"platform does not allow connector payments",
		"platform does not allow action refund",
		"organisation engineering does not allow connector payments",
		"workflow bess-commissioning does not allow connector payments",
		"workflow bess-commissioning does not allow action refund",
	]
}

# ---------------------------------------------------------------------------
# Intersection

test_intersection_is_what_every_level_allows if {
	p := {
		"platform": {"connectors": ["a", "b", "c"]},
		"organisations": {"o": {"connectors": ["b", "c", "d"], "actions": ["read", "list"]}},
		"workflows": {"w": {"connectors": ["c", "b", "e"], "actions": ["read"]}},
		"tools": {},
	}
	d := decide(p, request("c.read", "o", flow("w"), null))
	d.allow == true
	d.effective == {"connectors": ["b", "c"], "tools": ["*"], "actions": ["read"]}

	# Allowed by the organisation and the workflow, not by the platform.
	denied_because(p, request("e.read", "o", flow("w"), null), "platform does not allow connector e")
}

test_effective_tools_intersect_globs if {
	p := {
		"platform": {"tools": ["*"]},
		"organisations": {"o": {"tools": ["acc.*", "sharepoint.*"]}},
		"workflows": {"w": {"tools": ["acc.document_read", "procore.*"]}},
		"tools": {},
	}
	d := decide(p, request("acc.document_read", "o", flow("w"), null))
	d.allow == true
	d.effective.tools == ["acc.document_read"]
	d.narrowed == ["workflow w lists tool procore.*, which organisation o does not allow; not in force"]
	denied_because(p, request("procore.list", "o", flow("w"), null), "organisation o does not allow tool procore.list")
	denied_because(p, request("acc.document_write", "o", flow("w"), null), "workflow w does not allow tool acc.document_write")
}

test_tool_globs_match_across_dots if {
	p := with_platform({"tools": ["acc.*"]})
	allowed(p, plain("acc.document.read"))
	denied(p, plain("xacc.read"))
	denied(p, plain("acc"))
}

# ---------------------------------------------------------------------------
# A lower level cannot widen a higher one

test_workflow_cannot_widen_organisation if {
	# engineering does not allow payments; the workflow lists it anyway.
	p := with_workflow("bess-commissioning", {"connectors": ["acc", "payments"]})
	req := request("payments.refund", "engineering", flow("bess-commissioning"), null)
	d := decide(p, req)
	d.allow == false
	d.reasons == ["organisation engineering does not allow connector payments"]
	d.narrowed == ["workflow bess-commissioning lists connector payments, which organisation engineering does not allow; not in force"]
	d.effective.connectors == ["acc"]
}

test_organisation_cannot_widen_platform if {
	p := with_org("engineering", {"connectors": ["acc", "jira"]})
	d := decide(p, request("jira.issue_create", "engineering", null, null))
	d.reasons == ["platform does not allow connector jira"]
	d.narrowed == ["organisation engineering lists connector jira, which platform does not allow; not in force"]
}

test_narrowed_names_every_higher_level if {
	p := with_workflow("bess-commissioning", {"connectors": ["acc", "jira"]})
	d := decide(p, request("acc.document_read", "engineering", flow("bess-commissioning"), null))
	d.allow == true
	d.narrowed == [
		"workflow bess-commissioning lists connector jira, which platform does not allow; not in force",
		"workflow bess-commissioning lists connector jira, which organisation engineering does not allow; not in force",
	]
}

test_star_at_lower_level_is_not_narrowed if {
	p := with_workflow("bess-commissioning", {"connectors": ["*"], "tools": ["*"], "actions": ["*"]})
	d := decide(p, request("acc.document_write", "engineering", flow("bess-commissioning"), null))
	d.allow == true
	d.narrowed == []
	d.effective.connectors == ["acc", "procore", "sharepoint"]
}

# ---------------------------------------------------------------------------
# Absent levels and omitted keys do not restrict

test_organisation_without_entry_does_not_restrict if {
	d := decide(perms, request("payments.refund", "marketing", null, null))
	d.allow == true
	d.reasons[1] == "organisation marketing has no entry in data.warden.rbac.organisations; it does not restrict"
	d.effective.connectors == ["acc", "payments", "procore", "sharepoint"]
}

test_no_organisation_does_not_restrict if {
	allowed(perms, request("payments.refund", null, null, null))

	# A request without the key at all is the same as null.
	allowed(perms, object.remove(plain("payments.refund"), ["organisation", "workflow", "skill"]))
}

test_workflow_without_entry_does_not_restrict if {
	d := decide(perms, request("procore.document_write", "engineering", flow("site-survey"), null))
	d.allow == true
	"workflow site-survey has no entry in data.warden.rbac.workflows; it does not restrict" in d.reasons
}

test_request_not_from_a_workflow if {
	d := decide(perms, request("procore.document_write", "engineering", null, null))
	d.allow == true
	d.reasons == ["tool procore.document_write (connector procore, action document_write) is allowed by platform and organisation engineering"]
}

test_omitted_key_does_not_restrict if {
	# The workflow says nothing about connectors: only actions narrow.
	p := with_workflow("bess-commissioning", {"actions": ["document_read"]})
	allowed(p, request("procore.document_read", "engineering", flow("bess-commissioning"), null))

	# An empty level object restricts nothing at all.
	allowed(with_workflow("bess-commissioning", {}), request("procore.document_write", "engineering", flow("bess-commissioning"), null))
}

test_missing_tables_do_not_restrict if {
	d := rbac.decision with input as request("acc.document_read", "engineering", flow("w"), null)
		with data.warden.rbac.platform as {"connectors": ["acc"]}
		with data.warden.rbac.organisations as {}
		with data.warden.rbac.workflows as {}
		with data.warden.rbac.tools as {}
	d.allow == true
	d.effective == {"connectors": ["acc"], "tools": ["*"], "actions": ["*"]}
}

# ---------------------------------------------------------------------------
# "*" and empty lists

test_star_means_everything if {
	p := with_platform({"connectors": ["*"], "tools": ["*"], "actions": ["*"]})
	d := decide(p, plain("anything.at_all"))
	d.allow == true
	d.effective == {"connectors": ["*"], "tools": ["*"], "actions": ["*"]}
}

test_star_among_names_means_everything if {
	p := with_platform({"connectors": ["acc", "*"]})
	allowed(p, plain("jira.issue_create"))
}

test_effective_is_concrete_where_any_level_is if {
	p := with_platform({"connectors": ["*"], "tools": ["*"], "actions": ["*"]})
	d := decide(p, request("acc.document_read", "engineering", null, null))
	d.effective == {"connectors": ["acc", "procore", "sharepoint"], "tools": ["*"], "actions": ["*"]}
}

test_empty_list_allows_nothing if {
	p := with_org("engineering", {"actions": []})
	d := decide(p, request("acc.document_read", "engineering", null, null))
	d.allow == false
	d.reasons == ["organisation engineering does not allow action document_read"]
	d.effective.actions == []
}

test_empty_platform_list_denies_everyone if {
	p := with_platform({"tools": []})
	denied_because(p, plain("acc.document_read"), "platform does not allow tool acc.document_read")
	denied(p, request("acc.document_read", "engineering", flow("bess-commissioning"), bess_skill))
}

# ---------------------------------------------------------------------------
# Tool names: connector and action

test_tool_name_splits_at_first_dot if {
	p := with_platform({"connectors": ["acc"], "actions": ["document.read"]})
	d := decide(p, plain("acc.document.read"))
	d.allow == true
	d.reasons == ["tool acc.document.read (connector acc, action document.read) is allowed by platform"]
}

test_tools_override_maps_a_tool if {
	p := with_key(perms, "tools", {"bim360_fetch": {"connector": "acc", "action": "document_read"}})
	d := decide(p, request("bim360_fetch", "engineering", flow("bess-commissioning"), bess_skill))
	d.allow == true
	d.reasons[0] == "tool bim360_fetch (connector acc, action document_read, as mapped in data.warden.rbac.tools) is allowed by platform, organisation engineering, workflow bess-commissioning and skill bess_commissioning_retrieval"

	# finance may not use acc, whatever the tool is called.
	denied_because(p, request("bim360_fetch", "finance", null, null), "organisation finance does not allow connector acc")
}

test_tools_override_beats_the_name if {
	# acc.export really goes through sharepoint.
	p := with_key(perms, "tools", {"acc.export": {"connector": "sharepoint", "action": "document_write"}})
	denied_because(p, request("acc.export", "engineering", flow("bess-commissioning"), null), "workflow bess-commissioning does not allow action document_write")
	acc_only := with_key(with_org("engineering", {"connectors": ["acc"]}), "tools", p.tools)
	denied_because(acc_only, request("acc.export", "engineering", null, null), "organisation engineering does not allow connector sharepoint")
}

test_tool_without_dot_denied_where_connectors_are_restricted if {
	d := decide(perms, plain("bim360_fetch"))
	d.allow == false
	d.reasons == ["platform allows only the connectors it lists, and tool bim360_fetch names no connector (name tools <connector>.<action>, or map the tool in data.warden.rbac.tools)"]
}

test_tool_without_dot_allowed_where_nothing_restricts if {
	p := with_platform({"connectors": ["*"], "tools": ["bim*"]})
	d := decide(p, plain("bim360_fetch"))
	d.allow == true
	d.reasons == ["tool bim360_fetch (no connector or action: the name has no dot and data.warden.rbac.tools does not map it) is allowed by platform"]
}

# ---------------------------------------------------------------------------
# The skill narrows connectors

test_skill_connectors_narrow if {
	# engineering and the platform allow procore; the skill does not.
	d := decide(perms, request("procore.document_read", "engineering", null, bess_skill))
	d.allow == false
	d.reasons == ["skill bess_commissioning_retrieval does not allow connector procore"]
	d.effective.connectors == ["acc", "sharepoint"]
}

test_skill_cannot_widen if {
	s := with_key(bess_skill, "allowed_connectors", ["acc", "payments"])
	d := decide(perms, request("payments.refund", "engineering", null, s))
	d.reasons == ["organisation engineering does not allow connector payments"]
	d.narrowed == ["skill bess_commissioning_retrieval lists connector payments, which organisation engineering does not allow; not in force"]
}

test_skill_without_allowed_connectors_allows_nothing if {
	s := object.remove(bess_skill, ["allowed_connectors"])
	d := decide(perms, request("acc.document_read", "engineering", null, s))
	d.allow == false
	d.reasons == ["skill bess_commissioning_retrieval is malformed (has no allowed_connectors list); it allows nothing until this is fixed"]
	d.effective.connectors == []
}

test_skill_with_empty_connectors_allows_nothing if {
	denied_because(perms, request("acc.document_read", "engineering", null, with_key(bess_skill, "allowed_connectors", [])), "skill bess_commissioning_retrieval does not allow connector acc")
}

# ---------------------------------------------------------------------------
# Organisation scopes vs the skill's rbac_scope

scoped := with_org("engineering", {"connectors": ["acc", "sharepoint"], "scopes": ["engineering.*"]})

test_scope_matching_glob_is_allowed if {
	allowed(scoped, request("acc.document_read", "engineering", null, bess_skill))
}

test_scope_glob_runs_across_dots if {
	allowed(scoped, request("acc.document_read", "engineering", null, with_key(bess_skill, "rbac_scope", "engineering.commissioning.bess")))
}

test_scope_outside_the_list_is_denied if {
	s := with_key(bess_skill, "rbac_scope", "finance.payables")
	d := decide(scoped, request("acc.document_read", "engineering", null, s))
	d.allow == false
	d.reasons == ["organisation engineering does not allow skill scope finance.payables (skill bess_commissioning_retrieval)"]
}

test_scope_exact_name_is_not_its_children if {
	p := with_org("engineering", {"scopes": ["engineering"]})
	denied(p, request("acc.document_read", "engineering", null, bess_skill))
	allowed(p, request("acc.document_read", "engineering", null, with_key(bess_skill, "rbac_scope", "engineering")))
}

test_skill_without_scope_is_denied_where_scopes_restrict if {
	s := object.remove(bess_skill, ["rbac_scope"])
	denied_because(scoped, request("acc.document_read", "engineering", null, s), "organisation engineering only runs skills of the scopes it lists, and skill bess_commissioning_retrieval has no rbac_scope")
}

test_scopes_do_not_apply_without_a_skill if {
	allowed(scoped, request("acc.document_read", "engineering", null, null))
}

test_organisation_without_scopes_runs_any_skill if {
	allowed(perms, request("acc.document_read", "engineering", null, with_key(bess_skill, "rbac_scope", "anything.else")))
}

test_empty_scopes_run_no_skill if {
	p := with_org("engineering", {"scopes": []})
	denied(p, request("acc.document_read", "engineering", null, bess_skill))
	allowed(p, request("acc.document_read", "engineering", null, null))
}

# ---------------------------------------------------------------------------
# Malformed data fails closed and is listed in `problems`

test_platform_not_an_object_fails_closed if {
	p := with_platform(["acc"])
	d := decide(p, plain("acc.document_read"))
	d.allow == false
	d.reasons == ["platform is malformed (must be an object); it allows nothing until this is fixed"]
	d.effective == {"connectors": [], "tools": [], "actions": []}
	problems_of(p) == ["platform: must be an object; every call is denied until this is fixed"]
}

test_list_of_non_strings_fails_closed if {
	p := with_org("engineering", {"connectors": ["acc", 7, ""]})
	d := decide(p, request("acc.document_read", "engineering", null, null))
	d.allow == false
	d.reasons == ["organisation engineering is malformed (connectors[1] must be a non-empty string, not 7; connectors[2] must be a non-empty string, not \"\"); it allows nothing until this is fixed"]
	problems_of(p) == [
		"organisation engineering: connectors[1] must be a non-empty string, not 7; it allows nothing until this is fixed",
		"organisation engineering: connectors[2] must be a non-empty string, not \"\"; it allows nothing until this is fixed",
	]
}

test_list_that_is_a_string_fails_closed if {
	p := with_workflow("bess-commissioning", {"actions": "document_read"})
	denied(p, request("acc.document_read", "engineering", flow("bess-commissioning"), null))
	problems_of(p) == ["workflow bess-commissioning: actions must be an array of strings; it allows nothing until this is fixed"]
}

test_unknown_key_fails_closed if {
	# A misspelt "connectors" would otherwise restrict nothing.
	p := with_org("finance", {"connector": ["payments"]})
	d := decide(p, request("payments.refund", "finance", null, null))
	d.allow == false
	problems_of(p) == ["organisation finance: unknown key \"connector\" (allowed: actions, connectors, scopes, tools); it allows nothing until this is fixed"]
}

test_scopes_are_unknown_outside_organisations if {
	p := with_workflow("bess-commissioning", {"scopes": ["engineering.*"]})
	denied(p, request("acc.document_read", "engineering", flow("bess-commissioning"), null))
	count(problems_of(p)) == 1
}

test_invalid_glob_fails_closed if {
	p := with_platform({"tools": ["acc.[document"]})
	denied(p, plain("acc.document_read"))
	problems_of(p) == ["platform: tools[0] is not a valid glob pattern: \"acc.[document\"; every call is denied until this is fixed"]
}

test_malformed_entry_only_affects_its_own_organisation if {
	p := with_org("finance", "payments")
	denied(p, request("payments.refund", "finance", null, null))
	allowed(p, request("acc.document_read", "engineering", null, null))
	allowed(p, plain("acc.document_read"))
	problems_of(p) == ["organisation finance: must be an object; it allows nothing until this is fixed"]
}

test_tables_that_are_not_objects_deny_every_call if {
	p := with_key(perms, "organisations", [{"engineering": {}}])
	d := decide(p, plain("acc.document_read"))
	d.allow == false
	d.reasons == ["data.warden.rbac.organisations is not an object; every call is denied (fail closed)"]
	d.effective == {"connectors": [], "tools": [], "actions": []}
	problems_of(p) == ["data.warden.rbac.organisations must be an object keyed by organisation; every call is denied"]

	denied(with_key(perms, "workflows", "bess-commissioning"), plain("acc.document_read"))
	denied(with_key(perms, "tools", []), plain("acc.document_read"))
}

test_malformed_tool_mapping_denies_that_tool if {
	p := with_key(perms, "tools", {"bim360_fetch": {"connector": "acc", "verb": "document_read"}})
	d := decide(p, request("bim360_fetch", "engineering", null, null))
	d.allow == false
	d.reasons == ["the mapping of tool bim360_fetch in data.warden.rbac.tools is malformed (action must be a non-empty string; unknown key \"verb\"); the tool is denied until this is fixed"]
	allowed(p, request("acc.document_read", "engineering", null, null))
	problems_of(p) == [
		"tools[\"bim360_fetch\"]: action must be a non-empty string; tool bim360_fetch is denied until this is fixed",
		"tools[\"bim360_fetch\"]: unknown key \"verb\"; tool bim360_fetch is denied until this is fixed",
	]
}

test_clean_permissions_have_no_problems if {
	problems_of(perms) == []
}

# ---------------------------------------------------------------------------
# The decision is total; malformed input denies

test_decision_without_input if {
	d := rbac.decision
	d.allow == false
	d.reasons == ["input.tool.name is missing or not a non-empty string; denied"]
	d.narrowed == []
}

test_decision_with_empty_input if {
	d := decide(perms, {})
	d.allow == false
	d.reasons == ["input.tool.name is missing or not a non-empty string; denied"]
	d.effective == {"connectors": ["acc", "payments", "procore", "sharepoint"], "tools": ["*"], "actions": ["*"]}
}

test_tool_name_must_be_a_string if {
	denied(perms, with_key(plain("x"), "tool", {"name": 42}))
	denied(perms, with_key(plain("x"), "tool", "acc.document_read"))
	denied(perms, plain(""))
}

test_malformed_organisation_input_denies if {
	d := decide(perms, request("acc.document_read", ["engineering"], null, null))
	d.allow == false
	d.reasons == ["input.organisation must be a non-empty string or null; denied"]
	d.effective == {"connectors": [], "tools": [], "actions": []}
}

test_malformed_workflow_input_denies if {
	denied_because(perms, request("acc.document_read", "engineering", "bess-commissioning", null), "input.workflow must be null or an object with a non-empty string name; denied")
	denied(perms, request("acc.document_read", "engineering", {"version": 3}, null))
}

test_malformed_skill_input_denies if {
	denied_because(perms, request("acc.document_read", "engineering", null, "bess_commissioning_retrieval"), "input.skill must be null or an object; denied")
}

test_decision_shape if {
	d := decide(perms, request("acc.document_read", "engineering", flow("bess-commissioning"), bess_skill))
	object.keys(d) == {"allow", "reasons", "effective", "narrowed"}
	object.keys(d.effective) == {"connectors", "tools", "actions"}
	is_boolean(d.allow)
	count(d.reasons) > 0
}

test_shipped_shell_in_bess_run_names_every_level if {
	d := rbac.decision with input as request("shell.exec", "engineering", flow("bess-commissioning"), bess_skill)
	d.reasons == [
		"platform does not allow connector shell",
		"organisation engineering does not allow connector shell",
		"workflow bess-commissioning does not allow connector shell",
		"workflow bess-commissioning does not allow action exec",
		"skill bess_commissioning_retrieval does not allow connector shell",
	]
}

test_glob_characters_in_names_fail_closed if {
	# Connectors and actions are exact names: "share*" would never match.
	p := with_org("engineering", {"connectors": ["acc", "share*"]})
	denied(p, request("sharepoint.document_read", "engineering", null, null))
	denied(p, request("acc.document_read", "engineering", null, null))
	problems_of(p) == ["organisation engineering: connectors[1] is not a name: \"share*\" (connectors and actions are exact names; only \"*\" alone means everything, patterns belong in tools); it allows nothing until this is fixed"]
}

test_tool_names_with_slashes_match_globs if {
	# Kernel tool names may hold "/"; globs have no delimiter, "/" included.
	p := with_platform({"tools": ["acc.*"]})
	allowed(p, plain("acc.projects/alpha"))
}
