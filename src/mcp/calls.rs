//! One agent's `tools/list` and `tools/call` through the gateway.
//!
//! A call: the tool is found among the upstream's (pinned) tools; the
//! gateway policy decides on the caller, the session, the upstream, the
//! tool and its exact arguments; the decision and `mcp.call.decided` are
//! made durable; then, by outcome: deny answers a tool error; allow
//! forwards; require_approval opens (or finds again) a review bound to the
//! arguments' hash and waits for it, forwarding once approved. The
//! upstream's answer is recorded (`mcp.call.completed`: status, latency,
//! result hash) before the agent gets it, obligations applied.

use std::time::{Duration, Instant};

use serde_json::{Map, Value, json};
use tokio::sync::mpsc;

use super::obligations::Obligations;
use super::*;
use crate::auth::Role;
use crate::kernel::{MCP_REVIEW_TOOL, McpReview, REVIEW_REJECTED, args_hash, record_of};
use crate::model::kernel::ExecState;
use crate::policy::DecisionRequest;
use crate::store::McpReviewRow;

/// What a waiting call tells its client (`notifications/progress`).
pub type Progress = mpsc::Sender<String>;

/// A call's answer: a `CallToolResult`, or a JSON-RPC error.
pub enum Answer {
    Result(Value),
    Error { code: i64, message: String },
}

enum Outcome {
    Allow,
    Deny,
    Review { reviewers: u32, timeout_secs: u64 },
}

impl Outcome {
    fn name(&self) -> &'static str {
        match self {
            Outcome::Allow => "allow",
            Outcome::Deny => "deny",
            Outcome::Review { .. } => "require_approval",
        }
    }
}

/// The gateway's reading of a decision.
struct Verdict {
    outcome: Outcome,
    reasons: Vec<String>,
    obligations: Obligations,
    decision_id: Option<String>,
    record: Option<Record>,
}

/// What a call reaches: a tool, or (passed through under the same policy,
/// without reviews or obligations) a resource or a prompt.
enum What<'a> {
    Tool(&'a Tool),
    Resource { uri: String, public: String },
    Prompt { name: String, public: String },
}

impl What<'_> {
    /// The MCP method, and the member of the entries and of the policy
    /// input that names what it reaches.
    fn kind(&self) -> (&'static str, &'static str) {
        match self {
            What::Tool(_) => ("tools/call", "tool"),
            What::Resource { .. } => ("resources/read", "resource"),
            What::Prompt { .. } => ("prompts/get", "prompt"),
        }
    }

    fn method(&self) -> &'static str {
        self.kind().0
    }

    fn key(&self) -> &'static str {
        self.kind().1
    }

    /// The name agents see.
    fn public(&self) -> String {
        match self {
            What::Tool(t) => t.public_name(),
            What::Resource { public, .. } | What::Prompt { public, .. } => public.clone(),
        }
    }

    /// What the policy sees of it.
    fn input(&self) -> Value {
        match self {
            What::Tool(t) => json!({"name": t.public_name(), "upstream_name": t.name,
                "description": t.definition.get("description"), "input_schema": t.definition.get("inputSchema"),
                "annotations": t.definition.get("annotations"), "definition_hash": t.pin.current_hash,
                "pinned_hash": t.pin.pinned_hash, "changed": t.pin.changed()}),
            What::Resource { uri, public } => json!({"name": public, "uri": uri}),
            What::Prompt { name, public } => json!({"name": public, "upstream_name": name}),
        }
    }

    /// The request sent to the upstream.
    fn request(&self, arguments: &Value) -> Value {
        match self {
            What::Tool(t) => json!({"name": t.name, "arguments": arguments}),
            What::Resource { uri, .. } => json!({"uri": uri}),
            What::Prompt { name, .. } => json!({"name": name, "arguments": arguments}),
        }
    }
}

impl Verdict {
    /// The decision's entry (once) and the call's `mcp.call.decided`.
    fn records(&mut self, call: &mut Call<'_>, now: i64, decided: Value) -> Vec<Record> {
        let mut records: Vec<Record> = self.record.take().into_iter().collect();
        records.push(call.entry("mcp.call.decided", now, decided));
        records
    }
}

/// A call being handled: who, in which session, what.
struct Call<'a> {
    who: &'a Principal,
    session: &'a Session,
    id: String,
    what: What<'a>,
    upstream: &'a UpstreamRow,
    arguments: Value,
    args_hash: String,
    /// The next `seq` of the call's entries.
    seq: i64,
}

impl Call<'_> {
    fn entry(&mut self, kind: &'static str, now: i64, mut payload: Value) -> Record {
        self.seq += 1;
        payload["call_id"] = self.id.clone().into();
        payload["seq"] = self.seq.into();
        payload["at"] = rfc3339_ms(now).into();
        payload["session_id"] = self.session.id.clone().into();
        payload["agent_id"] = self.session.agent_id.clone().into();
        payload["upstream"] = self.upstream.name.clone().into();
        payload[self.what.key()] = self.what.public().into();
        payload["method"] = self.what.method().into();
        payload["args_hash"] = self.args_hash.clone().into();
        Record::new(&self.who.tenant_id, kind, &self.who.actor(), &payload).about(self.id.clone())
    }

    /// `_meta.warden` of the call's answer.
    fn meta(&self, verdict: &Verdict, extra: Value) -> Value {
        let mut m = json!({"call_id": self.id, "decision_id": verdict.decision_id,
            "outcome": verdict.outcome.name(), "reasons": verdict.reasons, "args_hash": self.args_hash});
        if let (Value::Object(m), Value::Object(e)) = (&mut m, extra) {
            m.extend(e);
        }
        m
    }

    /// A refusal or failure: a tool error for a tool call (the agent's
    /// model reads it), a JSON-RPC error for a resource or a prompt.
    fn fail(&self, text: String, meta: Value) -> Answer {
        match self.what {
            What::Tool(_) => tool_error(text, meta),
            _ => Answer::Error {
                code: -32003,
                message: text,
            },
        }
    }
}

fn tool_error(text: String, meta: Value) -> Answer {
    Answer::Result(json!({"content": [{"type": "text", "text": text}], "isError": true,
        "_meta": {"warden": meta}}))
}

/// A request of the gateway policy at `path`, kept with the session (the
/// audit event's `workflow_id`), the agent and, for a call, the call
/// (`activity_id`) as its context.
fn request(session: &Session, call_id: Option<&str>, path: &str, input: &Value) -> Result<DecisionRequest, String> {
    let raw =
        serde_json::value::to_raw_value(input).map_err(|e| format!("the policy input could not be built: {e}"))?;
    let mut context = Map::new();
    context.insert("workflow_id".into(), session.id.clone().into());
    context.insert("agent_id".into(), session.agent_id.clone().into());
    if let Some(c) = call_id {
        context.insert("activity_id".into(), c.into());
    }
    Ok(DecisionRequest {
        path: path.to_string(),
        input: Some(raw),
        bundle: None,
        context: Some(context),
    })
}

fn caller_of(who: &Principal) -> Value {
    json!({"token_id": who.token_id, "token_name": who.token_name, "tenant_id": who.tenant_id,
        "subject": who.subject, "roles": who.roles.iter().map(Role::as_str).collect::<Vec<_>>()})
}

impl Gateway {
    /// The upstream and tool named `<upstream>__<tool>`.
    async fn find(&self, who: &Principal, name: &str) -> Result<(UpstreamRow, Tool), Answer> {
        let unknown = |why: String| Answer::Error {
            code: -32602,
            message: why,
        };
        let Some((upstream, tool)) = name.split_once(SEP) else {
            return Err(unknown(format!(
                "unknown tool {name:?}: names are <upstream>{SEP}<tool>"
            )));
        };
        let u = match self.store.mcp_upstream(&who.tenant_id, upstream).await {
            Ok(Some(u)) => u,
            Ok(None) => return Err(unknown(format!("unknown tool {name:?}: no upstream {upstream:?}"))),
            Err(e) => return Err(internal(&e)),
        };
        let tools = match self.tools_of(&u, false).await {
            Ok(t) => t,
            // The upstream cannot list its tools now: the call is decided
            // on the definitions last seen, and its failure is recorded.
            Err(ToolsError::Upstream(e)) => {
                tracing::warn!(upstream = %upstream, error = %e, "mcp: deciding on the tool definitions last seen");
                self.pinned_tools(&u).await.map_err(|e| internal(&e))?
            }
            Err(ToolsError::Gateway(e)) => return Err(internal(&e)),
        };
        let mut found = tools.iter().find(|t| t.name == tool).cloned();
        if found.is_none() {
            // A tool added since the last list.
            if let Ok(fresh) = self.tools_of(&u, true).await {
                found = fresh.into_iter().find(|t| t.name == tool);
            }
        }
        match found {
            Some(t) => Ok((u, t)),
            None => Err(unknown(format!(
                "unknown tool {name:?}: upstream {upstream:?} has no tool {tool:?}"
            ))),
        }
    }

    /// `tools/list`: every registered upstream's tools that the policy's
    /// `visible` document lets this agent see. An upstream that cannot be
    /// reached is left out (and logged).
    pub async fn list_tools(&self, who: &Principal, session: &Session) -> Result<Vec<Value>, Answer> {
        let upstreams = self
            .store
            .mcp_upstreams(&who.tenant_id)
            .await
            .map_err(|e| internal(&e))?;
        let mut all = Vec::new();
        for u in &upstreams {
            match self.tools_of(u, true).await {
                Ok(tools) => all.extend(tools),
                Err(e) => {
                    tracing::warn!(upstream = %u.name, error = %e, "mcp: an upstream's tools could not be listed")
                }
            }
        }
        if all.is_empty() {
            return Ok(Vec::new());
        }
        let listed: Vec<Value> = all
            .iter()
            .map(|t| {
                json!({"name": t.public_name(), "upstream": t.upstream, "upstream_name": t.name,
                    "description": t.definition.get("description"), "definition_hash": t.pin.current_hash,
                    "changed": t.pin.changed()})
            })
            .collect();
        let input = json!({"method": "tools/list", "agent": {"id": session.agent_id}, "caller": caller_of(who),
            "session": {"id": session.id, "client": session.client}, "tools": listed});
        let visible: std::collections::HashSet<String> =
            match self.evaluate(who, session, &self.cfg.visible_path, input).await {
                Ok((d, _)) => match d {
                    Value::Array(names) => names
                        .into_iter()
                        .filter_map(|n| n.as_str().map(str::to_string))
                        .collect(),
                    _ => Default::default(),
                },
                Err(e) => {
                    tracing::warn!(error = %e, "mcp: the visible-tools policy could not decide; no tool is shown");
                    Default::default()
                }
            };
        Ok(all
            .iter()
            .filter(|t| visible.contains(&t.public_name()))
            .map(|t| {
                let mut d = t.definition.clone();
                d["name"] = t.public_name().into();
                d
            })
            .collect())
    }

    /// Evaluates `path` and makes the decision durable (with `more`
    /// records, in one append). Returns the result and the decision id.
    async fn evaluate(
        &self,
        who: &Principal,
        session: &Session,
        path: &str,
        input: Value,
    ) -> Result<(Value, String), String> {
        let req = request(session, None, path, &input)?;
        let d = self
            .policy
            .decide(who, req)
            .await
            .map_err(|e| format!("the gateway policy {path} could not decide ({}): {e}", e.code()))?;
        self.ledger.append(d.record()).await.map_err(|e| e.to_string())?;
        let result = serde_json::to_value(&d.result).unwrap_or(Value::Null);
        Ok((result, d.decision_id))
    }

    /// The gateway policy's verdict on a call; fails closed.
    async fn decide(&self, call: &Call<'_>) -> Verdict {
        let mut input = json!({
            "method": call.what.method(),
            "agent": {"id": call.session.agent_id},
            "caller": caller_of(call.who),
            "session": {"id": call.session.id, "client": call.session.client},
            "upstream": {"name": call.upstream.name, "url": call.upstream.url},
            "arguments": call.arguments,
            "args_hash": call.args_hash,
        });
        input[call.what.key()] = call.what.input();
        let deny = |reasons: Vec<String>, decision_id: Option<String>, record: Option<Record>| Verdict {
            outcome: Outcome::Deny,
            reasons,
            obligations: Obligations::default(),
            decision_id,
            record,
        };
        let path = &self.cfg.decision_path;
        let req = match request(call.session, Some(&call.id), path, &input) {
            Ok(r) => r,
            Err(e) => return deny(vec![e], None, None),
        };
        let d = match self.policy.decide(call.who, req).await {
            Ok(d) => d,
            Err(e) => {
                return deny(
                    vec![format!(
                        "the gateway policy {path} could not decide ({}): {e}",
                        e.code()
                    )],
                    None,
                    None,
                );
            }
        };
        let result = serde_json::to_value(&d.result).unwrap_or(Value::Null);
        let mut reasons: Vec<String> = match result.get("reasons") {
            Some(Value::Array(r)) => r.iter().filter_map(|x| x.as_str().map(str::to_string)).collect(),
            _ => d.reasons.clone().unwrap_or_default(),
        };
        let id = Some(d.decision_id.clone());
        let record = Some(d.record());
        let obligations = match Obligations::of(&result) {
            Ok(o) => o,
            Err(e) => {
                return deny(
                    vec![format!("the gateway policy's obligations are malformed: {e}")],
                    id,
                    record,
                );
            }
        };
        let outcome = match result.get("outcome").and_then(Value::as_str) {
            Some("allow") => Outcome::Allow,
            Some("deny") => Outcome::Deny,
            Some("require_approval") => {
                let a = result.get("approval").cloned().unwrap_or_default();
                Outcome::Review {
                    reviewers: a.get("reviewers").and_then(Value::as_u64).unwrap_or(1).clamp(1, 16) as u32,
                    timeout_secs: a
                        .get("timeout_seconds")
                        .and_then(Value::as_u64)
                        .unwrap_or(3600)
                        .clamp(1, 30 * 86400),
                }
            }
            other => {
                reasons.push(format!(
                    "the gateway policy answered no known outcome ({}); denied",
                    other.unwrap_or("none")
                ));
                Outcome::Deny
            }
        };
        if reasons.is_empty() {
            reasons.push(format!("gateway policy: {}", outcome.name()));
        }
        Verdict {
            outcome,
            reasons,
            obligations,
            decision_id: id,
            record,
        }
    }

    /// `tools/call`.
    pub async fn call_tool(
        &self,
        who: &Principal,
        session: &Session,
        name: &str,
        arguments: Value,
        progress: Option<Progress>,
    ) -> Answer {
        if !arguments.is_object() {
            return Answer::Error {
                code: -32602,
                message: "arguments must be a JSON object".into(),
            };
        }
        let (upstream, tool) = match self.find(who, name).await {
            Ok(found) => found,
            Err(a) => return a,
        };
        let now = self.clock.now_ms();
        let hash = args_hash(&json!({"upstream": upstream.name, "tool": tool.name, "arguments": arguments}));
        let mut call = Call {
            who,
            session,
            id: new_id("mcp", now),
            what: What::Tool(&tool),
            upstream: &upstream,
            arguments,
            args_hash: hash,
            seq: 0,
        };
        let mut verdict = self.decide(&call).await;
        let decided = json!({"outcome": verdict.outcome.name(), "decision_id": verdict.decision_id,
            "reasons": verdict.reasons, "changed_definition": tool.pin.changed()});
        match verdict.outcome {
            Outcome::Deny | Outcome::Allow => self.decided(&mut call, &mut verdict, now, decided).await,
            Outcome::Review {
                reviewers,
                timeout_secs,
            } => {
                let review = match self
                    .open_review(&mut call, &mut verdict, decided, reviewers, timeout_secs, now)
                    .await
                {
                    Ok(r) => r,
                    Err(a) => return a,
                };
                self.await_review(&mut call, &verdict, review, progress).await
            }
        }
    }

    /// `resources/read` of `mcp+<upstream>:<uri>` and `prompts/get` of
    /// `<upstream>__<prompt>`: decided by the gateway policy (`method` tells
    /// which) and recorded as tool calls are; only `allow` without
    /// obligations lets one through (reviews and result obligations apply
    /// to tool calls).
    pub async fn read_or_get(&self, who: &Principal, session: &Session, method: &str, params: &Value) -> Answer {
        let invalid = |m: String| Answer::Error {
            code: -32602,
            message: m,
        };
        let (upstream, original, public) = match method {
            "resources/read" => {
                let uri = params.get("uri").and_then(Value::as_str).unwrap_or("");
                let parsed = uri.strip_prefix(RESOURCE_SCHEME).and_then(|r| r.split_once(':'));
                let Some((upstream, original)) = parsed else {
                    return invalid(format!(
                        "unknown resource {uri:?}: URIs here are {RESOURCE_SCHEME}<upstream>:<uri>"
                    ));
                };
                (upstream.to_string(), original.to_string(), uri.to_string())
            }
            _ => {
                let name = params.get("name").and_then(Value::as_str).unwrap_or("");
                let Some((upstream, original)) = name.split_once(SEP) else {
                    return invalid(format!("unknown prompt {name:?}: names are <upstream>{SEP}<prompt>"));
                };
                (upstream.to_string(), original.to_string(), name.to_string())
            }
        };
        let u = match self.store.mcp_upstream(&who.tenant_id, &upstream).await {
            Ok(Some(u)) => u,
            Ok(None) => return invalid(format!("no upstream {upstream:?} serves {public:?}")),
            Err(e) => return internal(&e),
        };
        let arguments = match params.get("arguments") {
            None | Some(Value::Null) => json!({}),
            Some(a @ Value::Object(_)) if method == "prompts/get" => a.clone(),
            Some(_) => return invalid("arguments must be a JSON object of a prompt's arguments".into()),
        };
        let what = if method == "resources/read" {
            What::Resource { uri: original, public }
        } else {
            What::Prompt { name: original, public }
        };
        let now = self.clock.now_ms();
        let hash = args_hash(&json!({"upstream": u.name, what.key(): what.public(), "arguments": arguments}));
        let mut call = Call {
            who,
            session,
            id: new_id("mcp", now),
            what,
            upstream: &u,
            arguments,
            args_hash: hash,
            seq: 0,
        };
        let mut verdict = self.decide(&call).await;
        if !matches!(verdict.outcome, Outcome::Allow | Outcome::Deny) {
            verdict.reasons.push(format!(
                "{method} cannot wait for a review (reviews are of tool calls); denied"
            ));
            verdict.outcome = Outcome::Deny;
        } else if matches!(verdict.outcome, Outcome::Allow) && !verdict.obligations.is_empty() {
            verdict.reasons.push(format!(
                "result obligations apply to tool calls, not to {method}; denied"
            ));
            verdict.outcome = Outcome::Deny;
        }
        let decided = json!({"outcome": verdict.outcome.name(), "decision_id": verdict.decision_id,
            "reasons": verdict.reasons});
        self.decided(&mut call, &mut verdict, now, decided).await
    }

    /// A call allowed or denied: the decision and `mcp.call.decided` made
    /// durable, then the call forwarded, or refused naming the decision.
    async fn decided(&self, call: &mut Call<'_>, verdict: &mut Verdict, now: i64, decided: Value) -> Answer {
        let records = verdict.records(call, now, decided);
        if let Err(e) = self.ledger.append_all(records).await {
            return internal(&e);
        }
        if matches!(verdict.outcome, Outcome::Allow) {
            return self.forward(call, verdict, json!({})).await;
        }
        let text = format!(
            "Denied by Warden's gateway policy (decision {}): {}",
            verdict.decision_id.as_deref().unwrap_or("none"),
            verdict.reasons.join("; ")
        );
        call.fail(text, call.meta(verdict, json!({})))
    }

    /// The open review of this agent's call with these arguments, or a new
    /// one, committed with the decision and `mcp.call.decided`.
    async fn open_review(
        &self,
        call: &mut Call<'_>,
        verdict: &mut Verdict,
        mut decided: Value,
        reviewers: u32,
        timeout_secs: u64,
        now: i64,
    ) -> Result<McpReviewRow, Answer> {
        let tool = call.what.public();
        let existing = self
            .store
            .mcp_open_review(&call.who.tenant_id, &call.session.agent_id, &tool, &call.args_hash)
            .await
            .map_err(|e| internal(&e))?;
        if let Some(r) = existing {
            decided["review"] = json!({"execution_id": r.execution_id, "reused": true});
            let records = verdict.records(call, now, decided);
            self.ledger.append_all(records).await.map_err(|e| internal(&e))?;
            return Ok(r);
        }
        let execution_id = new_id("exe", now);
        let spawned = self
            .kernel
            .mcp_review(McpReview {
                id: execution_id.clone(),
                now,
                tenant_id: call.who.tenant_id.clone(),
                agent_id: call.session.agent_id.clone(),
                initiator: (call.who.actor(), call.who.token_id.clone(), call.who.subject.clone()),
                arguments: json!({"upstream": call.upstream.name, "tool": call.what.request(&Value::Null)["name"],
                    "arguments": call.arguments}),
                reasons: verdict.reasons.clone(),
                reviewers,
                timeout_secs,
                decision_id: verdict.decision_id.clone(),
                context: json!({"session_id": call.session.id, "call_id": call.id, "tool": tool}),
            })
            .map_err(|e| Answer::Error {
                code: -32602,
                message: e.to_string(),
            })?;
        let row = McpReviewRow {
            execution_id: execution_id.clone(),
            tenant_id: call.who.tenant_id.clone(),
            agent_id: call.session.agent_id.clone(),
            tool,
            args_hash: call.args_hash.clone(),
            state: "open".into(),
            created_at: now,
            updated_at: now,
        };
        decided["review"] = json!({"execution_id": execution_id, "reused": false,
            "reviewers_required": reviewers, "timeout_seconds": timeout_secs});
        // A change's first records are its history rows', one each, in
        // order (they are indexed by them); the decision follows.
        let mut records: Vec<Record> = spawned.history.iter().map(record_of).collect();
        records.extend(verdict.records(call, now, decided));
        let kinds: Vec<&str> = spawned.history.iter().map(|h| h.kind).collect();
        let change = Change {
            executions: vec![(spawned.exec, None)],
            steps: spawned.steps.into_iter().map(|s| (s, None)).collect(),
            history: spawned.history.clone(),
            pushes: spawned.pushes,
            mcp: vec![McpWrite::Review {
                row: row.clone(),
                expected: None,
            }],
            ..Change::default()
        };
        self.ledger
            .append_with(records, change)
            .await
            .map_err(|e| internal(&e))?;
        self.kernel.count_transitions(kinds);
        self.kernel.due.notify_one();
        Ok(row)
    }

    /// Waits for the review (within `mcp.approval_wait_secs`, while the
    /// client listens), then forwards once approved or reports the verdict.
    async fn await_review(
        &self,
        call: &mut Call<'_>,
        verdict: &Verdict,
        review: McpReviewRow,
        progress: Option<Progress>,
    ) -> Answer {
        let started = Instant::now();
        let wait = Duration::from_secs(self.cfg.approval_wait_secs);
        let every = Duration::from_millis(self.cfg.progress_interval_ms);
        let mut last_progress: Option<Instant> = None;
        let review_meta = |state: &str, step: Option<&str>, approvals: usize, needed: i64| {
            json!({"review": {"execution_id": review.execution_id, "step_id": step, "state": state,
                "approvals": approvals, "reviewers_required": needed}})
        };
        // The review's one step, written with its execution: its id and the
        // approvals it needs do not change while the call waits.
        let steps = match self.store.kernel_steps_of(&review.execution_id).await {
            Ok(s) => s,
            Err(e) => return internal(&e),
        };
        let step = steps.iter().find(|s| s.tool == MCP_REVIEW_TOOL);
        let step_id = step.map(|s| s.id.as_str());
        let needed = step.map_or(1, |s| s.review_needed);
        loop {
            let exec = match self.store.kernel_execution(&review.execution_id).await {
                Ok(Some(e)) => e,
                Ok(None) => return internal(&"the review's execution is missing"),
                Err(e) => return internal(&e),
            };
            match exec.state {
                ExecState::Completed => {
                    let now = self.clock.now_ms();
                    let used = McpReviewRow {
                        state: "used".into(),
                        updated_at: now,
                        ..review.clone()
                    };
                    let approvers = exec.output.as_ref().and_then(|o| o.get("subjects")).cloned();
                    let record = call.entry(
                        "mcp.call.approved",
                        now,
                        json!({"review": {"execution_id": review.execution_id, "step_id": step_id},
                            "approvers": approvers}),
                    );
                    let change = Change {
                        mcp: vec![McpWrite::Review {
                            row: used,
                            expected: Some("open".into()),
                        }],
                        ..Change::default()
                    };
                    return match self.ledger.append_with(vec![record], change).await {
                        Ok(_) => {
                            self.forward(call, verdict, review_meta("approved", step_id, needed as usize, needed))
                                .await
                        }
                        Err(AppendError::Changed(_)) => tool_error(
                            "This approval has been used by another call already; call again to ask for a new review."
                                .into(),
                            call.meta(verdict, review_meta("used", step_id, needed as usize, needed)),
                        ),
                        Err(e) => internal(&e),
                    };
                }
                ExecState::Failed | ExecState::Cancelled => {
                    let now = self.clock.now_ms();
                    let output = exec.output.clone().unwrap_or_default();
                    let rejected = output["error"]["error"] == REVIEW_REJECTED || output["error"] == REVIEW_REJECTED;
                    let state = if rejected { "rejected" } else { "expired" };
                    let closed = McpReviewRow {
                        state: "closed".into(),
                        updated_at: now,
                        ..review.clone()
                    };
                    let record = call.entry(
                        "mcp.call.closed",
                        now,
                        json!({"review": {"execution_id": review.execution_id, "step_id": step_id, "state": state}}),
                    );
                    let change = Change {
                        mcp: vec![McpWrite::Review {
                            row: closed,
                            expected: Some("open".into()),
                        }],
                        ..Change::default()
                    };
                    if let Err(e) = self.ledger.append_with(vec![record], change).await
                        && !matches!(e, AppendError::Changed(_))
                    {
                        return internal(&e);
                    }
                    let cause = output["error"]["cause"]
                        .as_str()
                        .or(output["error"]["reason"].as_str())
                        .unwrap_or(state)
                        .to_string();
                    return tool_error(
                        format!("The review of this call was {state}: {cause}. The call was not forwarded."),
                        call.meta(verdict, review_meta(state, step_id, 0, needed)),
                    );
                }
                _ => {}
            }
            let approvals = match step {
                Some(s) => self
                    .store
                    .kernel_approvals_of(&s.id)
                    .await
                    .map(|a| a.iter().filter(|a| a.approve).count())
                    .unwrap_or(0),
                None => 0,
            };
            if started.elapsed() >= wait {
                return tool_error(
                    format!(
                        "This call waits for review (execution {}): {} of {needed} approval(s). Call again with the same arguments to go on waiting.",
                        review.execution_id, approvals
                    ),
                    call.meta(verdict, review_meta("waiting", step_id, approvals, needed)),
                );
            }
            if let Some(tx) = &progress {
                if tx.is_closed() {
                    // The client left: the review stays open for its next call.
                    tracing::info!(call = %call.id, execution = %review.execution_id, "mcp: the client left while its call waited for review");
                    return Answer::Error {
                        code: -32603,
                        message: "the client left".into(),
                    };
                }
                if last_progress.is_none_or(|t| t.elapsed() >= every) {
                    last_progress = Some(Instant::now());
                    let _ = tx
                        .send(format!(
                            "waiting for review (execution {}): {approvals} of {needed} approval(s)",
                            review.execution_id
                        ))
                        .await;
                }
            }
            tokio::time::sleep(Duration::from_millis(200).min(every)).await;
        }
    }

    /// Sends the call to its upstream; records `mcp.call.completed` before
    /// answering; applies the obligations.
    async fn forward(&self, call: &mut Call<'_>, verdict: &Verdict, extra: Value) -> Answer {
        let params = call.what.request(&call.arguments);
        let started = Instant::now();
        let answer = match self.target(call.upstream) {
            Ok(target) => self.upstreams.request(&target, call.what.method(), params).await,
            Err(e) => Err(super::upstream::UpstreamError::Unreachable(e.to_string())),
        };
        let latency_ms = started.elapsed().as_secs_f64() * 1000.0;
        let now = self.clock.now_ms();
        let latency = (latency_ms * 1000.0).round() / 1000.0;
        match answer {
            Ok(mut result) => {
                let status = if result.get("isError").and_then(Value::as_bool) == Some(true) {
                    "tool_error"
                } else {
                    "ok"
                };
                let result_hash = hash_of(&result);
                let (redacted, truncated) = verdict.obligations.apply(&mut result);
                let record = call.entry(
                    "mcp.call.completed",
                    now,
                    json!({"status": status, "latency_ms": latency, "result_hash": result_hash,
                        "redacted": redacted, "truncated": truncated}),
                );
                if let Err(e) = self.ledger.append(record).await {
                    return internal(&e);
                }
                let mut meta = call.meta(verdict, extra);
                meta["upstream"] = json!({"status": status, "latency_ms": latency, "result_hash": result_hash});
                meta["redacted"] = json!(redacted);
                if let Some(obj) = result.as_object_mut() {
                    let m = obj.entry("_meta").or_insert_with(|| json!({}));
                    if let Some(m) = m.as_object_mut() {
                        m.insert("warden".into(), meta);
                    }
                }
                Answer::Result(result)
            }
            Err(e) => {
                let record = call.entry(
                    "mcp.call.completed",
                    now,
                    json!({"status": e.status(), "latency_ms": latency, "error": e.to_string()}),
                );
                if let Err(e) = self.ledger.append(record).await {
                    return internal(&e);
                }
                let mut meta = call.meta(verdict, extra);
                meta["upstream"] = json!({"status": e.status(), "error": e.to_string()});
                call.fail(format!("Upstream {:?} gave no result: {e}", call.upstream.name), meta)
            }
        }
    }
}

fn internal(e: &dyn std::fmt::Display) -> Answer {
    tracing::error!(error = %e, "mcp: a call failed inside the gateway");
    Answer::Error {
        code: -32603,
        message: format!("Warden could not handle the call: {e}"),
    }
}
