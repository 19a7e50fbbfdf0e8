//! Audit events: the published shape (`schemas/audit-event.schema.json`),
//! the validation of submitted events, and the audit event each ledger entry
//! stands for (submitted events as recorded, decisions mapped onto the same
//! shape), which is what sinks deliver.
//!
//! Invariant: no IO. The schema file is the contract; events are checked
//! against it, not against a copy of it in code.

use std::sync::LazyLock;

use serde_json::{Map, Value, json};

use crate::auth::{Principal, new_id};

/// The published JSON Schema of an audit event.
pub const SCHEMA: &str = include_str!("../../schemas/audit-event.schema.json");

/// Ledger entry kind of a submitted audit event.
pub const KIND: &str = "audit.event";

static VALIDATOR: LazyLock<jsonschema::Validator> = LazyLock::new(|| {
    let schema: Value = serde_json::from_str(SCHEMA).expect("the audit event schema is JSON");
    jsonschema::options()
        .should_validate_formats(true)
        .build(&schema)
        .expect("the audit event schema compiles")
});

/// True when `event` has the published shape (as delivered: `caller`
/// and, for decisions, `decision` included).
pub fn conforms(event: &Value) -> bool {
    VALIDATOR.is_valid(event)
}

/// Most field errors reported per event.
const MAX_ERRORS: usize = 8;

/// One thing wrong with one submitted event.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, utoipa::ToSchema)]
pub struct FieldError {
    /// Position of the event in the submission, from 0.
    pub event: usize,
    /// JSON Pointer to the field (`/resource/connector`; `""` for the event).
    pub field: String,
    pub reason: String,
}

/// Checks a submitted event against the schema and completes it: assigns
/// `event_id` when absent and stamps `caller` from the token.
pub fn accept(mut event: Value, position: usize, who: &Principal, now_ms: i64) -> Result<Value, Vec<FieldError>> {
    let mut errors = Vec::new();
    let Some(obj) = event.as_object() else {
        return Err(vec![FieldError {
            event: position,
            field: String::new(),
            reason: "an audit event must be a JSON object".into(),
        }]);
    };
    if obj.contains_key("caller") {
        errors.push(FieldError {
            event: position,
            field: "/caller".into(),
            reason: "caller is set by Warden from the authenticated token; remove it".into(),
        });
    }
    if obj.contains_key("decision") {
        errors.push(FieldError {
            event: position,
            field: "/decision".into(),
            reason: "decision is set only on the events Warden records for its own decisions; remove it".into(),
        });
    }
    for e in VALIDATOR.iter_errors(&event).take(MAX_ERRORS) {
        errors.push(FieldError {
            event: position,
            field: e.instance_path().as_str().to_string(),
            reason: truncate(e.to_string()),
        });
    }
    if !errors.is_empty() {
        return Err(errors);
    }
    let obj = event.as_object_mut().expect("checked above");
    if !obj.contains_key("event_id") {
        obj.insert("event_id".into(), new_id("evt", now_ms).into());
    }
    obj.insert(
        "caller".into(),
        json!({"token_id": who.token_id, "token_name": who.token_name, "tenant_id": who.tenant_id}),
    );
    Ok(event)
}

/// Whether `event_id` is in the namespace of the ids Warden gives the
/// events it derives itself, which a client may not submit: a lower-case
/// ULID (`evt_<ulid>`: decisions, and submitted events Warden gave an id),
/// or a ULID, in either case, followed by `s`, `w` or `m` and a number
/// (`evt_<execution>s<seq>`, `evt_<run>w<seq>`, `evt_<call>m<seq>`: kernel,
/// workflow and MCP gateway entries, whose next number anyone can guess). A receiver that
/// deduplicates on `event_id` would otherwise drop the genuine event in
/// favour of one submitted ahead of it.
pub fn is_reserved_event_id(event_id: &str) -> bool {
    let Some(body) = event_id.strip_prefix("evt_") else {
        return false;
    };
    let crockford = |c: &u8| c.is_ascii_digit() || (c.is_ascii_alphabetic() && !b"ilouILOU".contains(c));
    let bytes = body.as_bytes();
    if bytes.len() < 26 || !bytes[..26].iter().all(crockford) {
        return false;
    }
    match &bytes[26..] {
        [] => bytes[..26].iter().all(|c| !c.is_ascii_uppercase()),
        [kind, digits @ ..] => {
            matches!(kind, b's' | b'w' | b'm' | b'S' | b'W' | b'M')
                && !digits.is_empty()
                && digits.iter().all(u8::is_ascii_digit)
        }
    }
}

fn truncate(mut s: String) -> String {
    const MAX: usize = 300;
    if s.len() > MAX {
        let mut cut = MAX;
        while !s.is_char_boundary(cut) {
            cut -= 1;
        }
        s.truncate(cut);
        s.push('…');
    }
    s
}

/// The same event, `caller` aside: what a retried submission must repeat
/// to be recognised as the same event.
pub fn same_event(a: &Value, b: &Value) -> bool {
    let strip = |v: &Value| {
        let mut m = v.as_object().cloned().unwrap_or_default();
        m.remove("caller");
        m
    };
    strip(a) == strip(b)
}

/// The audit event a ledger entry stands for, if any: a submitted event as
/// recorded, or a decision in the audit-event shape (`action`
/// `policy.decision`; `result` `allowed`, `denied` or `undetermined`;
/// `workflow_id`, `activity_id` and `agent_id` from the decision's context).
/// Deterministic, so a redelivery carries the same `event_id`.
pub fn event_of(kind: &str, actor: &str, tenant_id: &str, payload: &Value) -> Option<Value> {
    match kind {
        KIND => Some(payload.clone()),
        "decision" => Some(decision_event(actor, tenant_id, payload)),
        k if k.starts_with("kernel.") => Some(kernel_event(k, actor, tenant_id, payload)),
        k if k.starts_with("workflow.run.")
            || k.starts_with("workflow.state.")
            || k.starts_with("workflow.branch.") =>
        {
            Some(workflow_event(k, actor, tenant_id, payload))
        }
        k if (k.starts_with("mcp.call.") || k.starts_with("mcp.tool.")) && payload.get("call_id").is_some() => {
            Some(mcp_event(k, actor, tenant_id, payload))
        }
        _ => None,
    }
}

/// An MCP gateway entry as an audit event: `action` is the kind
/// (`mcp.call.decided`, `mcp.call.completed`, `mcp.tool.changed`, …),
/// `workflow_id` the MCP session, `activity_id` the call, `agent_id` the
/// agent; `attributes` carry the upstream, the tool, the outcome or the
/// upstream's status, its latency, the decision and the hashes.
fn mcp_event(kind: &str, actor: &str, tenant_id: &str, p: &Value) -> Value {
    let call = p["call_id"].as_str().unwrap_or_default();
    let mut e = Map::new();
    e.insert(
        "event_id".into(),
        format!(
            "evt_{}m{}",
            call.strip_prefix("mcp_").unwrap_or(call),
            p["seq"].as_i64().unwrap_or_default()
        )
        .into(),
    );
    e.insert("timestamp".into(), p["at"].clone());
    if let Some(session) = p["session_id"].as_str() {
        e.insert("workflow_id".into(), session.into());
    }
    if kind.starts_with("mcp.call.") {
        e.insert("activity_id".into(), call.into());
    }
    if let Some(agent) = p["agent_id"].as_str() {
        e.insert("agent_id".into(), agent.into());
    }
    e.insert("action".into(), kind.into());
    let result = match (kind, p["outcome"].as_str(), p["status"].as_str()) {
        ("mcp.call.decided", Some("allow"), _) => "allowed",
        ("mcp.call.decided", Some("deny"), _) => "denied",
        ("mcp.call.decided", _, _) => "pending",
        ("mcp.call.completed", _, Some("ok")) => "success",
        ("mcp.call.completed", _, _) => "failure",
        ("mcp.call.approved", _, _) => "allowed",
        ("mcp.call.closed", _, _) => "denied",
        _ => "success",
    };
    e.insert("result".into(), result.into());
    e.insert("caller".into(), caller_of(actor, tenant_id));
    let mut attributes = Map::new();
    for key in [
        "upstream",
        "tool",
        "resource",
        "prompt",
        "method",
        "outcome",
        "decision_id",
        "status",
        "latency_ms",
        "result_hash",
        "args_hash",
        "definition_hash",
        "pinned_hash",
        "previous_hash",
        "seq",
    ] {
        if let Some(v) = p.get(key).filter(|v| !v.is_array() && !v.is_object() && !v.is_null()) {
            attributes.insert(key.into(), v.clone());
        }
    }
    e.insert("attributes".into(), Value::Object(attributes));
    Value::Object(e)
}

/// A workflow run's transition as an audit event: `action` is the kind
/// (`workflow.state.entered`, `workflow.run.failed`, …), `workflow_id` the
/// run, `activity_id` the state; `attributes` carry the workflow, its
/// version, the error where there is one, and the subject of the token
/// that started or cancelled the run.
fn workflow_event(kind: &str, actor: &str, tenant_id: &str, p: &Value) -> Value {
    let run = p["run_id"].as_str().unwrap_or_default();
    let mut e = Map::new();
    e.insert(
        "event_id".into(),
        format!(
            "evt_{}w{}",
            run.strip_prefix("run_").unwrap_or(run),
            p["seq"].as_i64().unwrap_or_default()
        )
        .into(),
    );
    e.insert("timestamp".into(), p["at"].clone());
    e.insert("workflow_id".into(), run.into());
    if let Some(state) = p["state"].as_str() {
        e.insert("activity_id".into(), state.into());
    }
    e.insert("action".into(), kind.into());
    let result = match kind {
        "workflow.run.failed" | "workflow.run.timed_out" | "workflow.state.failed" | "workflow.branch.failed" => {
            "failure"
        }
        _ => "success",
    };
    e.insert("result".into(), result.into());
    e.insert("caller".into(), caller_of(actor, tenant_id));
    let mut attributes = Map::new();
    for key in [
        "workflow", "version", "type", "next", "error", "retry", "seq", "subject",
    ] {
        if let Some(v) = p.get(key).filter(|v| !v.is_array() && !v.is_object() && !v.is_null()) {
            attributes.insert(key.into(), v.clone());
        }
    }
    e.insert("attributes".into(), Value::Object(attributes));
    Value::Object(e)
}

/// A kernel transition as an audit event: `action` is the transition
/// (`step.retried`, `execution.failed`, …), `workflow_id` the execution,
/// `activity_id` the step; `attributes` carry the states, the tool and the
/// subject of the token that acted.
fn kernel_event(kind: &str, actor: &str, tenant_id: &str, p: &Value) -> Value {
    let action = kind.trim_start_matches("kernel.");
    let execution = p["execution_id"].as_str().unwrap_or_default();
    let mut e = Map::new();
    e.insert(
        "event_id".into(),
        format!(
            "evt_{}s{}",
            execution.strip_prefix("exe_").unwrap_or(execution),
            p["seq"].as_i64().unwrap_or_default()
        )
        .into(),
    );
    e.insert("timestamp".into(), p["at"].clone());
    e.insert("workflow_id".into(), execution.into());
    if let Some(step) = p["step_id"].as_str() {
        e.insert("activity_id".into(), step.into());
    }
    if let Some(agent) = p["agent_id"].as_str() {
        e.insert("agent_id".into(), agent.into());
    }
    e.insert("action".into(), action.into());
    let result = match action {
        "intent.denied" | "approval.rejected" => "denied",
        "approval.granted" => "allowed",
        "approval.requested" => "pending",
        "execution.failed" | "step.failed" | "step.timed_out" | "approval.expired" => "failure",
        _ => "success",
    };
    e.insert("result".into(), result.into());
    e.insert("caller".into(), caller_of(actor, tenant_id));
    let mut attributes = Map::new();
    for key in [
        "from",
        "to",
        "tool",
        "attempt",
        "seq",
        "next_step_id",
        "decision_id",
        "reason",
        "approve",
        "subject",
    ] {
        if let Some(v) = p.get(key).filter(|v| !v.is_array() && !v.is_object() && !v.is_null()) {
            attributes.insert(key.into(), v.clone());
        }
    }
    e.insert("attributes".into(), Value::Object(attributes));
    Value::Object(e)
}

/// `token:<id> (<name>)`, as every entry's actor is written, or `system`.
fn caller_of(actor: &str, tenant_id: &str) -> Value {
    let (token_id, token_name) = actor
        .strip_prefix("token:")
        .and_then(|r| r.split_once(" ("))
        .map(|(i, n)| (i.to_string(), n.trim_end_matches(')').to_string()))
        .unwrap_or_else(|| (actor.to_string(), String::new()));
    json!({"token_id": token_id, "token_name": token_name, "tenant_id": tenant_id})
}

fn decision_event(actor: &str, tenant_id: &str, d: &Value) -> Value {
    let id = d["decision_id"].as_str().unwrap_or_default();
    let mut e = Map::new();
    e.insert(
        "event_id".into(),
        format!("evt_{}", id.strip_prefix("dec_").unwrap_or(id)).into(),
    );
    e.insert("timestamp".into(), d["timestamp"].clone());
    for key in ["workflow_id", "activity_id", "agent_id"] {
        if let Some(v @ Value::String(_)) = d["context"].get(key) {
            e.insert(key.into(), v.clone());
        }
    }
    e.insert("action".into(), "policy.decision".into());
    let result = match d["allow"].as_bool() {
        Some(true) => "allowed",
        Some(false) => "denied",
        None => "undetermined",
    };
    e.insert("result".into(), result.into());
    e.insert("caller".into(), caller_of(actor, tenant_id));
    let mut decision = json!({"decision_id": id, "path": d["path"], "bundle": d["bundle"]});
    if let Some(r) = d.get("reasons") {
        decision["reasons"] = r.clone();
    }
    e.insert("decision".into(), decision);
    Value::Object(e)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::auth::RoleSet;

    fn who() -> Principal {
        Principal {
            token_id: "tok_1".into(),
            token_name: "ci".into(),
            tenant_id: "ten_1".into(),
            tenant_name: "acme".into(),
            platform: false,
            roles: RoleSet::default(),
            subject: "token-name:ci".into(),
            agent_ids: Default::default(),
            runner_ids: Default::default(),
            expires_at: None,
        }
    }

    fn seed_event() -> Value {
        json!({
            "event_id": "evt_01HVKM3X9XQPZ8R7N4T",
            "timestamp": "2026-04-15T09:23:41.842Z",
            "workflow_id": "bess-commissioning-wf-2026-04-15",
            "activity_id": "retrieve_acc_test_data",
            "agent_id": "retrieval-agent-v1",
            "action": "document_read",
            "resource": {"connector": "acc", "project_id": "proj_abc123", "document_id": "doc_xyz789",
                "document_name": "BESS-TR-001-TestSheet-Rev2.pdf"},
            "rbac_scope": "engineering.commissioning",
            "user_context": {"initiated_by": "user_j_morrison", "on_behalf_of": "project_alpha"},
            "result": "success",
            "latency_ms": 342
        })
    }

    #[test]
    fn the_seed_event_is_accepted_and_stamped() {
        let e = accept(seed_event(), 0, &who(), 0).unwrap();
        assert_eq!(e["event_id"], "evt_01HVKM3X9XQPZ8R7N4T");
        assert_eq!(
            e["caller"],
            json!({"token_id": "tok_1", "token_name": "ci", "tenant_id": "ten_1"})
        );
        let mut bare = seed_event();
        bare.as_object_mut().unwrap().remove("event_id");
        let e = accept(bare, 0, &who(), 1_795_308_111_311).unwrap();
        assert!(e["event_id"].as_str().unwrap().starts_with("evt_01"));
    }

    #[test]
    fn the_ids_warden_derives_are_reserved() {
        let exe = crate::auth::new_id("exe", 1_795_308_111_311);
        let ulid = exe.trim_start_matches("exe_");
        let derived = [
            format!("evt_{ulid}s7"),
            format!("evt_{ulid}w12"),
            format!("evt_{ulid}"),
            format!("evt_{}S7", ulid.to_ascii_uppercase()),
        ];
        for id in &derived {
            assert!(is_reserved_event_id(id), "{id}");
        }
        // What Warden itself writes for kernel, workflow and decision events.
        let kernel = event_of(
            "kernel.execution.assigned",
            "system",
            "ten_1",
            &json!({"execution_id": exe, "seq": 3}),
        )
        .unwrap();
        assert!(is_reserved_event_id(kernel["event_id"].as_str().unwrap()));
        let decision = event_of(
            "decision",
            "system",
            "ten_1",
            &json!({"decision_id": format!("dec_{ulid}")}),
        )
        .unwrap();
        assert!(is_reserved_event_id(decision["event_id"].as_str().unwrap()));
        let assigned = accept(
            {
                let mut e = seed_event();
                e.as_object_mut().unwrap().remove("event_id");
                e
            },
            0,
            &who(),
            1,
        )
        .unwrap();
        assert!(is_reserved_event_id(assigned["event_id"].as_str().unwrap()));
        // Clients keep everything else: upper-case ULIDs, short tokens, other shapes.
        for id in [
            "evt_01HVKM3X9XQPZ8R7N4T",
            &format!("evt_{}", ulid.to_ascii_uppercase()),
            &format!("evt_{ulid}x7"),
            &format!("evt_{ulid}s"),
            &format!("evt_{ulid}s7a"),
            "evt_1",
            "ulid_0000000000000000000000000s1",
        ] {
            assert!(!is_reserved_event_id(id), "{id}");
        }
    }

    #[test]
    fn every_fault_names_its_field() {
        let cases: &[(&str, Value)] = &[
            ("/timestamp", json!("yesterday")),
            ("/action", json!("Document Read")),
            ("/result", json!("ok")),
            ("/latency_ms", json!(-1)),
            ("/resource", json!({"project_id": "p"})),
            ("/rbac_scope", json!("Engineering")),
            ("/event_id", json!("event-1")),
            ("/user_context", json!({"initiated_by": 7})),
        ];
        for (field, bad) in cases {
            let mut e = seed_event();
            let key = field.trim_start_matches('/');
            e[key] = bad.clone();
            let errors = accept(e, 3, &who(), 0).unwrap_err();
            assert_eq!(errors[0].event, 3);
            assert!(errors[0].field.starts_with(field), "{field}: {errors:?}");
        }
        let mut e = seed_event();
        e["caller"] = json!({"token_id": "forged", "token_name": "x", "tenant_id": "y"});
        assert_eq!(accept(e, 0, &who(), 0).unwrap_err()[0].field, "/caller");
        let mut e = seed_event();
        e["surprise"] = json!(1);
        assert!(!accept(e, 0, &who(), 0).unwrap_err().is_empty());
        let mut e = seed_event();
        e.as_object_mut().unwrap().remove("action");
        assert!(!accept(e, 0, &who(), 0).unwrap_err().is_empty());
    }

    #[test]
    fn decisions_map_onto_the_event_shape_and_validate() {
        let payload = json!({
            "decision_id": "dec_01abc", "timestamp": "2026-11-22T00:41:51.311Z", "path": "agento/commissioning/routing",
            "allow": false, "reasons": ["punch items still open"],
            "bundle": {"name": "commissioning", "revision": "1", "digest": "ab"},
            "captured": {"now_ns": 1}, "context": {"workflow_id": "wf-1", "agent_id": 7}
        });
        let e = event_of("decision", "token:tok_1 (ci)", "ten_1", &payload).unwrap();
        assert_eq!(e["event_id"], "evt_01abc");
        assert_eq!(e["result"], "denied");
        assert_eq!(e["workflow_id"], "wf-1");
        assert!(e.get("agent_id").is_none(), "only string context values are carried");
        assert_eq!(e["caller"]["token_name"], "ci");
        assert_eq!(e["decision"]["reasons"], json!(["punch items still open"]));
        assert!(
            VALIDATOR.is_valid(&e),
            "{:?}",
            VALIDATOR.iter_errors(&e).map(|e| e.to_string()).collect::<Vec<_>>()
        );
        assert!(event_of("token.create", "system", "ten_1", &json!({})).is_none());
    }
}
