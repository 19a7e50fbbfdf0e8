//! Intents: an agent asks to call a tool; policy decides first (allow,
//! deny, or review by people), then the step is run by the agent or
//! dispatched to a runner.

use serde_json::{Map, Value, json};

use super::edit::*;
use super::error::*;
use super::gates::*;
use super::requests::*;
use super::views::*;
use super::{Kernel, SYSTEM};
use crate::auth::{Principal, Role, new_id};
use crate::clock::rfc3339_ms;
use crate::model::kernel::*;
use crate::policy::DecisionRequest;

pub(super) enum PolicyOutcome {
    Allow,
    Deny,
    Review {
        reviewers: i64,
        timeout_ms: i64,
        on_expiry: OnExpiry,
    },
}

impl PolicyOutcome {
    pub(super) fn name(&self) -> &'static str {
        match self {
            PolicyOutcome::Allow => "allow",
            PolicyOutcome::Deny => "deny",
            PolicyOutcome::Review { .. } => "require_approval",
        }
    }
}

pub(super) struct PolicyVerdict {
    pub(super) outcome: PolicyOutcome,
    pub(super) reasons: Vec<String>,
    pub(super) decision_id: Option<String>,
    pub(super) evidence: Option<Value>,
}

impl Kernel {
    pub async fn intent(&self, who: &Principal, intent: Intent) -> Result<IntentAnswer> {
        super::cache::fresh_if_stale(|| self.intent_once(who, intent.clone())).await
    }

    async fn intent_once(&self, who: &Principal, intent: Intent) -> Result<IntentAnswer> {
        let id = intent.execution_id.clone();
        let _g = self.lock_of(&id).lock().await;
        let exec = self.load(&who.tenant_id, &id).await?;
        bound_agent(who, &exec.agent_id)?;
        if exec.agent_token.as_deref() != Some(who.token_id.as_str()) {
            return Err(KernelError::NotAssigned(id));
        }
        let now = self.clock.now_ms();
        let mut edit = Edit::of(exec, now).by(who);
        let actor = who.actor();
        match intent.kind {
            IntentType::Complete => {
                edit.move_exec(
                    ExecState::Completed,
                    "kernel.execution.completed",
                    &actor,
                    json!({"output": intent.output}),
                )?;
                edit.exec.output = intent.output;
                edit.exec.conn = None;
            }
            IntentType::Fail => {
                let error = intent.error.or(intent.output).unwrap_or(Value::Null);
                edit.move_exec(
                    ExecState::Failed,
                    "kernel.execution.failed",
                    &actor,
                    json!({"error": error}),
                )?;
                edit.exec.output = Some(json!({"error": error}));
                edit.exec.conn = None;
            }
            IntentType::Wait => {
                let wake = intent.timeout_seconds.map(|s| now + (s.min(365 * 86400) as i64) * 1000);
                edit.move_exec(
                    ExecState::Blocked,
                    "kernel.execution.blocked",
                    &actor,
                    json!({"waiting_on": "signal", "wake_at": wake.map(rfc3339_ms)}),
                )?;
                edit.exec.waiting_on = Some(WaitingOn::Signal);
                edit.exec.wake_at = wake;
                if wake.is_some() {
                    self.due.notify_one();
                }
            }
            IntentType::InvokeTool => return self.invoke(who, edit, intent).await,
        }
        let done = self.commit(edit).await?;
        Ok(IntentAnswer {
            execution_id: done.exec.id.clone(),
            state: done.exec.state,
            outcome: None,
            step: None,
            decision_id: None,
            reasons: Vec::new(),
            decision_receipt: None,
            receipts: done.receipts,
        })
    }

    pub(super) async fn invoke(&self, who: &Principal, mut edit: Edit, intent: Intent) -> Result<IntentAnswer> {
        let tool = intent
            .tool
            .ok_or_else(|| KernelError::Invalid("invoke_tool needs `tool`, the tool's name".into()))?;
        check_name("tool", &tool)?;
        let arguments = intent.arguments.unwrap_or_else(|| json!({}));
        if !arguments.is_object() {
            return Err(KernelError::Invalid("`arguments` must be a JSON object".into()));
        }
        if edit.exec.state != ExecState::Running {
            return Err(KernelError::IllegalTransition {
                what: "execution",
                id: edit.exec.id.clone(),
                from: edit.exec.state.to_string(),
                to: "blocked (only a running execution may invoke a tool)".into(),
            });
        }
        let declared = self.declared_tool(&edit.exec.tenant_id, &tool).await?;
        let remote = intent.remote.unwrap_or(declared.is_some());
        let idempotent = match (remote, declared) {
            (true, Some(i)) => i,
            (true, None) => {
                return Err(KernelError::Invalid(format!(
                    "no runner of this tenant declared tool {tool:?}; connect a runner serving it, or invoke it locally"
                )));
            }
            (false, _) => intent.idempotent.unwrap_or(true),
        };
        let step_limit = self.cfg.step_timeout_secs;
        let timeout_s = intent.timeout_seconds.unwrap_or(step_limit).clamp(1, step_limit);
        let retry = intent.retry.unwrap_or(RetrySpec {
            max_attempts: None,
            backoff_ms: None,
        });
        let max_attempts = retry
            .max_attempts
            .unwrap_or(self.cfg.max_attempts)
            .clamp(1, self.cfg.max_attempts.max(1));
        let backoff_ms = retry
            .backoff_ms
            .unwrap_or(self.cfg.retry_backoff_ms)
            .min(self.cfg.max_backoff_ms);
        let hash = args_hash(&arguments);
        let actor = who.actor();

        // The decision, before anything exists.
        let input = json!({
            "execution": {"id": edit.exec.id, "agent_id": edit.exec.agent_id, "labels": edit.exec.labels,
                "initiator": edit.exec.initiator},
            "agent": {"id": edit.exec.agent_id},
            "agent_id": edit.exec.agent_id,
            "tool": {"name": tool, "idempotent": idempotent, "remote": remote},
            "arguments": arguments,
            "labels": edit.exec.labels,
            "caller": {"token_id": who.token_id, "token_name": who.token_name, "tenant_id": who.tenant_id,
                "subject": who.subject, "roles": who.roles.iter().map(Role::as_str).collect::<Vec<_>>()},
            "workflow": context_field(&edit.exec, "workflow"),
            "skill": context_field(&edit.exec, "skill"),
            "organisation": context_field(&edit.exec, "organisation"),
        });
        let verdict = match self.permitted(who, &edit.exec, &tool, &input).await {
            Some(denied) if matches!(denied.outcome, PolicyOutcome::Deny) => denied,
            permitted => {
                if let Some(d) = permitted.and_then(|p| p.evidence) {
                    edit.record("decision", &actor, d);
                }
                self.decide(who, &edit.exec, &tool, input).await
            }
        };
        if let Some(d) = &verdict.evidence {
            edit.record("decision", &actor, d.clone());
        }
        let reasons = verdict.reasons.clone();
        match verdict.outcome {
            PolicyOutcome::Deny => {
                edit.record(
                    "kernel.intent.denied",
                    &actor,
                    json!({"tool": tool, "args_hash": hash, "decision_id": verdict.decision_id, "reasons": reasons}),
                );
                let done = self.commit(edit).await?;
                return Err(KernelError::Denied {
                    tool,
                    decision_id: verdict.decision_id,
                    reasons,
                    receipt: done.decision_receipt().map(Box::new),
                });
            }
            PolicyOutcome::Allow | PolicyOutcome::Review { .. } => {}
        }
        let now = edit.now;
        let step_id = new_id("stp", now);
        let mut step = StepRow {
            id: step_id.clone(),
            execution_id: edit.exec.id.clone(),
            tenant_id: edit.exec.tenant_id.clone(),
            tool: tool.clone(),
            arguments,
            args_hash: hash.clone(),
            attempt: 1,
            max_attempts: max_attempts as i64,
            backoff_ms: backoff_ms as i64,
            state: StepState::Pending,
            remote,
            idempotent,
            idempotency_key: step_id.clone(),
            runner_id: None,
            runner_token: None,
            decision_id: verdict.decision_id.clone(),
            timeout_ms: (timeout_s as i64) * 1000,
            deadline_at: None,
            not_before: None,
            review: None,
            review_needed: 0,
            review_expires_at: None,
            on_expiry: OnExpiry::Fail,
            reasons: reasons.clone(),
            result: None,
            error: None,
            created_at: now,
            updated_at: now,
        };
        let outcome = match verdict.outcome {
            PolicyOutcome::Review {
                reviewers,
                timeout_ms,
                on_expiry,
            } => {
                step.review = Some(ReviewState::Waiting);
                step.review_needed = reviewers;
                step.review_expires_at = Some(now + timeout_ms);
                step.on_expiry = on_expiry;
                Outcome::RequireApproval
            }
            _ => {
                step.deadline_at = Some(now + step.timeout_ms);
                Outcome::Allow
            }
        };
        edit.record(
            "kernel.step.created",
            &actor,
            json!({"step_id": step.id, "tool": tool, "args_hash": hash, "attempt": 1, "remote": remote,
                "idempotent": idempotent, "decision_id": verdict.decision_id, "reasons": reasons}),
        );
        edit.put_step(step.clone(), None);
        let waiting = if matches!(outcome, Outcome::RequireApproval) {
            WaitingOn::Approval
        } else {
            WaitingOn::Step
        };
        edit.move_exec(
            ExecState::Blocked,
            "kernel.execution.blocked",
            &actor,
            json!({"waiting_on": waiting.as_str(), "step_id": step.id}),
        )?;
        edit.exec.waiting_on = Some(waiting);
        if let Outcome::RequireApproval = outcome {
            edit.record(
                "kernel.approval.requested",
                &actor,
                json!({"step_id": step.id, "args_hash": hash, "reviewers_required": step.review_needed,
                    "expires_at": step.review_expires_at.map(rfc3339_ms), "on_expiry": step.on_expiry.as_str(),
                    "reasons": reasons}),
            );
        } else {
            step = self.dispatch(&mut edit, &step, SYSTEM)?;
        }
        let done = self.commit(edit).await?;
        Ok(IntentAnswer {
            execution_id: done.exec.id.clone(),
            state: done.exec.state,
            outcome: Some(outcome),
            step: Some(StepView::of(&step, 0)),
            decision_id: verdict.decision_id,
            reasons,
            decision_receipt: done.decision_receipt(),
            receipts: done.receipts,
        })
    }

    /// The permission policy's answer (platform, organisation, workflow
    /// and skill levels), or None when no active bundle of the tenant
    /// serves `kernel.permission_path`. Fails closed: an error, or an
    /// answer without `allow: true`, is a denial.
    pub(super) async fn permitted(
        &self,
        who: &Principal,
        exec: &ExecutionRow,
        tool: &str,
        input: &Value,
    ) -> Option<PolicyVerdict> {
        let path = &self.cfg.permission_path;
        if path.is_empty() {
            return None;
        }
        let mut context = Map::new();
        context.insert("workflow_id".into(), exec.id.clone().into());
        context.insert("agent_id".into(), exec.agent_id.clone().into());
        context.insert("activity_id".into(), tool.into());
        let req = DecisionRequest {
            path: path.clone(),
            input: serde_json::value::to_raw_value(input).ok(),
            bundle: None,
            context: Some(context),
        };
        let deny = |reasons: Vec<String>, d: Option<&crate::policy::Decision>| PolicyVerdict {
            outcome: PolicyOutcome::Deny,
            reasons,
            decision_id: d.map(|d| d.decision_id.clone()),
            evidence: d.map(|d| d.evidence()),
        };
        match self.policy.decide(who, req).await {
            Err(crate::policy::Error::NoBundleForPath(_)) => None,
            Err(e) => Some(deny(
                vec![format!(
                    "the permission policy {path} could not decide ({}): {e}",
                    e.code()
                )],
                None,
            )),
            Ok(d) => {
                let reasons = d.reasons.clone().unwrap_or_default();
                if d.allow == Some(true) {
                    Some(PolicyVerdict {
                        outcome: PolicyOutcome::Allow,
                        reasons,
                        decision_id: Some(d.decision_id.clone()),
                        evidence: Some(d.evidence()),
                    })
                } else {
                    let reasons = if reasons.is_empty() {
                        vec![format!("the permission policy {path} did not allow {tool}")]
                    } else {
                        reasons
                    };
                    Some(deny(reasons, Some(&d)))
                }
            }
        }
    }

    /// The kernel policy's answer. Fails closed: no policy, an error, or an
    /// answer without a known outcome is a denial with the reason.
    pub(super) async fn decide(&self, who: &Principal, exec: &ExecutionRow, tool: &str, input: Value) -> PolicyVerdict {
        let deny = |reason: String| PolicyVerdict {
            outcome: PolicyOutcome::Deny,
            reasons: vec![reason],
            decision_id: None,
            evidence: None,
        };
        let raw = match serde_json::value::to_raw_value(&input) {
            Ok(r) => r,
            Err(e) => return deny(format!("the policy input could not be built: {e}")),
        };
        let mut context = Map::new();
        context.insert("workflow_id".into(), exec.id.clone().into());
        context.insert("agent_id".into(), exec.agent_id.clone().into());
        context.insert("activity_id".into(), tool.into());
        let req = DecisionRequest {
            path: self.cfg.policy_path.clone(),
            input: Some(raw),
            bundle: None,
            context: Some(context),
        };
        let d = match self.policy.decide(who, req).await {
            Ok(d) => d,
            Err(e) => {
                return deny(format!(
                    "the kernel policy {} could not decide ({}): {e}",
                    self.cfg.policy_path,
                    e.code()
                ));
            }
        };
        let result = serde_json::to_value(&d.result).unwrap_or(Value::Null);
        let mut reasons = d.reasons.clone().unwrap_or_default();
        let outcome = match result.get("outcome").and_then(Value::as_str) {
            Some("allow") => PolicyOutcome::Allow,
            Some("require_approval") => {
                let a = result.get("approval").cloned().unwrap_or_default();
                let reviewers = a.get("reviewers").and_then(Value::as_i64).unwrap_or(1).clamp(1, 16);
                let secs = a
                    .get("timeout_seconds")
                    .and_then(Value::as_i64)
                    .unwrap_or(self.cfg.approval_timeout_secs as i64)
                    .clamp(1, 30 * 86400);
                let on_expiry = match a.get("on_expiry").and_then(Value::as_str) {
                    Some("continue") => OnExpiry::Continue,
                    _ => OnExpiry::Fail,
                };
                PolicyOutcome::Review {
                    reviewers,
                    timeout_ms: secs * 1000,
                    on_expiry,
                }
            }
            Some("deny") => PolicyOutcome::Deny,
            other => {
                reasons.push(format!(
                    "the kernel policy answered no known outcome ({}); denied",
                    other.unwrap_or("none")
                ));
                PolicyOutcome::Deny
            }
        };
        if reasons.is_empty() {
            reasons.push(format!("kernel policy: {}", outcome.name()));
        }
        PolicyVerdict {
            outcome,
            reasons,
            decision_id: Some(d.decision_id.clone()),
            evidence: Some(d.evidence()),
        }
    }

    /// Dispatches a pending step that may start: to the agent (local) or
    /// to a connected runner serving its tool (remote; without one it
    /// stays pending until one connects or its deadline passes).
    pub(super) fn dispatch(&self, edit: &mut Edit, step: &StepRow, actor: &str) -> Result<StepRow> {
        let step = edit.current(step);
        let now = edit.now;
        let mut s = step.clone();
        if s.deadline_at.is_none() {
            s.deadline_at = Some(now + s.timeout_ms);
            edit.put_step(s.clone(), Some(step.state));
        }
        let job = |s: &StepRow, exec: &ExecutionRow| {
            json!({"step_id": s.id, "execution_id": exec.id, "agent_id": exec.agent_id, "tool": s.tool,
                "arguments": s.arguments, "args_hash": s.args_hash, "attempt": s.attempt,
                "idempotent": s.idempotent, "idempotency_key": s.idempotency_key,
                "deadline_at": s.deadline_at.map(rfc3339_ms)})
        };
        if !s.remote {
            if edit.exec.conn.is_none() {
                return Ok(s);
            }
            let moved = edit.move_step(
                &s,
                StepState::Dispatched,
                "kernel.step.dispatched",
                actor,
                json!({"to_agent": edit.exec.agent_id}),
            )?;
            let data = job(&moved, &edit.exec);
            let agent = edit.agent();
            edit.push(agent, "step.assigned", data);
            return Ok(moved);
        }
        let Some(runner) = self.hub.runner_for(&edit.exec.tenant_id, &s.tool) else {
            return Ok(s);
        };
        s.runner_id = Some(runner.name.clone());
        s.runner_token = Some(runner.token_id.clone());
        edit.put_step(s.clone(), Some(step.state));
        let moved = edit.move_step(
            &s,
            StepState::Dispatched,
            "kernel.step.dispatched",
            actor,
            json!({"runner_id": runner.name}),
        )?;
        let data = job(&moved, &edit.exec);
        edit.push(runner.recipient.clone(), "job.assigned", data);
        Ok(moved)
    }
}
