//! Workflow gates: executions a workflow run starts (an agent's work, or a
//! review gate run by the kernel itself), and their end reported back to
//! the run.

use serde_json::{Map, Value, json};

use super::edit::*;
use super::error::*;
use super::requests::*;
use super::streams::*;
use super::{Kernel, SYSTEM};
use crate::auth::new_id;
use crate::clock::rfc3339_ms;
use crate::model::kernel::*;

/// The ledger record of a history entry: the decision as `/v1/decisions`
/// records it, or the transition with the execution and sequence number.
/// The agent id of workflow review gates: no agent stream holds them.
pub const REVIEW_AGENT: &str = "warden.review";

/// The tool of a review gate's one step.
pub const REVIEW_TOOL: &str = "workflow.review";
/// The error a review gate ends with when its reviewers reject the step:
/// what a workflow's `Catch` names (`States.Rejected`).
pub const REVIEW_REJECTED: &str = "States.Rejected";

/// The tool of an MCP gateway review's one step.
pub const MCP_REVIEW_TOOL: &str = "mcp.tools_call";

/// Whether `step` is a review gate's: a workflow's, or the MCP gateway's
/// (an execution with the `mcp` context only [`Kernel::mcp_review`] sets).
pub(super) fn is_gate(exec: &ExecutionRow, step: &StepRow) -> bool {
    let workflow = exec.agent_id == REVIEW_AGENT && step.tool == REVIEW_TOOL && exec.workflow_run.is_some();
    let mcp = step.tool == MCP_REVIEW_TOOL
        && exec.workflow_run.is_none()
        && exec.context.as_ref().is_some_and(|c| c.get("mcp").is_some());
    workflow || mcp
}

/// A field of the run context an execution carries (null outside runs).
pub(super) fn context_field(exec: &ExecutionRow, field: &str) -> Value {
    exec.context
        .as_ref()
        .and_then(|c| c.get(field))
        .cloned()
        .unwrap_or(Value::Null)
}

/// A new execution for a workflow run ([`Kernel::spawn`]).
#[derive(Debug, Clone)]
pub struct Spawn {
    pub id: String,
    pub now: i64,
    pub tenant_id: String,
    pub run_id: String,
    /// The state that starts it.
    pub state: String,
    pub agent_id: String,
    pub input: Value,
    pub labels: Map<String, Value>,
    pub initiator: String,
    pub initiator_token: String,
    pub initiator_subject: String,
    pub timeout_secs: Option<u64>,
    pub context: Value,
    /// A review gate instead of an agent's execution.
    pub review: Option<Gate>,
}

#[derive(Debug, Clone)]
pub struct Gate {
    pub reviewers: u32,
    pub timeout_secs: u64,
    pub prompt: Option<String>,
}

/// A review the MCP gateway opens for a call policy escalated
/// ([`Kernel::mcp_review`]).
#[derive(Debug, Clone)]
pub struct McpReview {
    pub id: String,
    pub now: i64,
    pub tenant_id: String,
    /// The agent making the call: nobody who may act as it may review it.
    pub agent_id: String,
    /// The caller: its actor, token id and subject.
    pub initiator: (String, String, String),
    /// What is reviewed: `{"upstream", "tool", "arguments"}`.
    pub arguments: Value,
    pub reasons: Vec<String>,
    pub reviewers: u32,
    pub timeout_secs: u64,
    pub decision_id: Option<String>,
    /// The session and call, for the policy's and the reviewers' context.
    pub context: Value,
}

/// A gate's one step, waiting for reviewers.
struct GateReview {
    tool: &'static str,
    arguments: Value,
    reasons: Vec<String>,
    reviewers: u32,
    review_ms: i64,
    decision_id: Option<String>,
    why: &'static str,
}

/// Puts the gate's step in `edit` and blocks the execution on its review.
fn open_gate(edit: &mut Edit, actor: &str, g: GateReview) -> Result<()> {
    let now = edit.now;
    let hash = args_hash(&g.arguments);
    let step_id = new_id("stp", now);
    let step = StepRow {
        id: step_id.clone(),
        execution_id: edit.exec.id.clone(),
        tenant_id: edit.exec.tenant_id.clone(),
        tool: g.tool.to_string(),
        arguments: g.arguments,
        args_hash: hash.clone(),
        attempt: 1,
        max_attempts: 1,
        backoff_ms: 0,
        state: StepState::Pending,
        remote: false,
        idempotent: true,
        idempotency_key: step_id.clone(),
        runner_id: None,
        runner_token: None,
        decision_id: g.decision_id.clone(),
        timeout_ms: g.review_ms,
        deadline_at: None,
        not_before: None,
        review: Some(ReviewState::Waiting),
        review_needed: g.reviewers.clamp(1, 100) as i64,
        review_expires_at: Some(now + g.review_ms),
        on_expiry: OnExpiry::Fail,
        reasons: g.reasons.clone(),
        result: None,
        error: None,
        created_at: now,
        updated_at: now,
    };
    edit.move_exec(
        ExecState::Running,
        "kernel.execution.assigned",
        SYSTEM,
        json!({"reason": g.why}),
    )?;
    let mut created = json!({"step_id": step.id, "tool": g.tool, "args_hash": hash, "attempt": 1,
        "remote": false, "idempotent": true, "reasons": g.reasons});
    if let Some(d) = &g.decision_id {
        created["decision_id"] = d.clone().into();
    }
    edit.record("kernel.step.created", actor, created);
    edit.put_step(step.clone(), None);
    edit.move_exec(
        ExecState::Blocked,
        "kernel.execution.blocked",
        SYSTEM,
        json!({"waiting_on": "approval", "step_id": step.id}),
    )?;
    edit.exec.waiting_on = Some(WaitingOn::Approval);
    edit.record(
        "kernel.approval.requested",
        actor,
        json!({"step_id": step.id, "args_hash": hash, "reviewers_required": step.review_needed,
            "expires_at": step.review_expires_at.map(rfc3339_ms), "on_expiry": "fail",
            "reasons": g.reasons}),
    );
    Ok(())
}

/// The rows [`Kernel::spawn`] made, not yet written.
#[derive(Debug, Clone)]
pub struct Spawned {
    pub exec: ExecutionRow,
    pub steps: Vec<StepRow>,
    pub history: Vec<HistoryRow>,
    pub pushes: Vec<PushRow>,
}

impl Spawned {
    /// The rows of a new execution's edit, its version moved on.
    fn of(mut edit: Edit) -> Self {
        edit.exec.version += 1;
        Spawned {
            steps: edit.steps.into_iter().map(|(s, _)| s).collect(),
            history: edit.history,
            pushes: edit.pushes,
            exec: edit.exec,
        }
    }
}

impl Kernel {
    /// Closes a workflow's review gate: rejected (the execution fails with
    /// `States.Rejected`) or approved by enough reviewers (the step and
    /// the execution succeed with the verdict). A gate has no tool to run.
    pub(super) async fn close_gate(
        &self,
        edit: &mut Edit,
        step: &StepRow,
        approvers: Vec<(String, String)>,
        actor: &str,
        reason: &str,
    ) -> Result<StepRow> {
        let mut s = step.clone();
        let approved = approvers.len() as i64 >= step.review_needed;
        if !approved {
            s.review = Some(ReviewState::Rejected);
            edit.put_step(s.clone(), Some(step.state));
            edit.record(
                "kernel.approval.rejected",
                actor,
                json!({"step_id": s.id, "reason": reason}),
            );
            let error = json!({"error": REVIEW_REJECTED,
                "cause": format!("rejected by {actor}: {reason}"), "reviewer": actor});
            self.end(edit, ExecState::Failed, actor, error).await?;
            return Ok(edit.current(&s));
        }
        let (reviewers, subjects): (Vec<String>, Vec<String>) = approvers.into_iter().unzip();
        let verdict = json!({"approved": true, "reviewers": reviewers, "subjects": subjects, "reason": reason});
        s.review = Some(ReviewState::Approved);
        edit.put_step(s.clone(), Some(step.state));
        edit.record(
            "kernel.approval.granted",
            actor,
            json!({"step_id": s.id, "approvals": reviewers.len(), "reviewers_required": step.review_needed}),
        );
        edit.move_step(&s, StepState::Dispatched, "kernel.step.dispatched", SYSTEM, json!({}))?;
        edit.move_step(&s, StepState::Running, "kernel.step.started", SYSTEM, json!({}))?;
        let mut done = edit.move_step(
            &s,
            StepState::Succeeded,
            "kernel.step.succeeded",
            actor,
            json!({"output": verdict}),
        )?;
        done.result = Some(verdict.clone());
        edit.put_step(done.clone(), None);
        edit.move_exec(
            ExecState::Running,
            "kernel.execution.resumed",
            actor,
            json!({"step_id": s.id, "reason": "review approved"}),
        )?;
        edit.move_exec(
            ExecState::Completed,
            "kernel.execution.completed",
            actor,
            json!({"output": verdict}),
        )?;
        edit.exec.output = Some(verdict);
        Ok(done)
    }

    /// The rows of a new execution started by a workflow run, for the
    /// engine to commit with the run's own change: a `Task` (given to its
    /// agent's stream when one is connected here) or a review gate
    /// (blocked on approval from the start, its one step the review).
    pub fn spawn(&self, spec: Spawn) -> Result<Spawned> {
        let now = spec.now;
        let limit = self.cfg.execution_timeout_secs;
        let timeout = spec.timeout_secs.unwrap_or(limit).clamp(1, limit.max(1));
        let gate = spec.review.as_ref();
        let agent_id = match gate {
            Some(_) => REVIEW_AGENT.to_string(),
            None => {
                if let Some(fault) = agent_fault("agent", &spec.agent_id) {
                    return Err(KernelError::Invalid(fault));
                }
                spec.agent_id.clone()
            }
        };
        let review_ms = gate.map(|g| (g.timeout_secs.clamp(1, 366 * 86400) as i64) * 1000);
        // A gate's own deadline is its review's, with a margin: the
        // review's expiry is what ends it.
        let deadline_at = now + review_ms.map_or((timeout as i64) * 1000, |ms| ms + 60_000);
        let mut exec = ExecutionRow::pending(
            spec.id.clone(),
            spec.tenant_id.clone(),
            agent_id,
            (
                spec.initiator.clone(),
                spec.initiator_token.clone(),
                spec.initiator_subject.clone(),
            ),
            deadline_at,
            now,
        );
        exec.input = spec.input.clone();
        exec.labels = spec.labels.clone();
        exec.workflow_run = Some(spec.run_id.clone());
        exec.context = Some(spec.context.clone());
        let mut edit = Edit::of(exec, now);
        // Started on behalf of the run's initiator: its entries name its subject.
        edit.by = Some((spec.initiator.clone(), spec.initiator_subject.clone()));
        edit.expected = None;
        let payload = json!({"agent_id": edit.exec.agent_id, "input": edit.exec.input, "labels": edit.exec.labels,
            "deadline_at": rfc3339_ms(edit.exec.deadline_at), "workflow_run": spec.run_id,
            "context": spec.context});
        edit.record("kernel.execution.created", &spec.initiator, payload);
        match gate {
            None => {
                if let Some(conn) = self.hub.agent(&spec.tenant_id, &edit.exec.agent_id) {
                    assign(&mut edit, &conn)?;
                }
            }
            Some(g) => {
                let arguments = json!({"run_id": spec.run_id, "state": spec.state, "input": spec.input,
                    "prompt": g.prompt});
                let reasons = vec![
                    g.prompt
                        .clone()
                        .unwrap_or_else(|| format!("workflow state {} needs {} approval(s)", spec.state, g.reviewers)),
                ];
                let actor = spec.initiator.clone();
                let review = GateReview {
                    tool: REVIEW_TOOL,
                    arguments,
                    reasons,
                    reviewers: g.reviewers,
                    review_ms: review_ms.unwrap_or(0),
                    decision_id: None,
                    why: "a workflow review gate",
                };
                open_gate(&mut edit, &actor, review)?;
            }
        }
        Ok(Spawned::of(edit))
    }

    /// The rows of a review the MCP gateway waits for, for the gateway to
    /// commit with its own entries: an execution of the calling agent
    /// (held by no stream), blocked from the start on its one step
    /// [`MCP_REVIEW_TOOL`], whose arguments are the call. Reviewers approve
    /// it as any step; approved, the execution completes (the gateway then
    /// forwards the call); rejected or expired, it fails.
    pub fn mcp_review(&self, spec: McpReview) -> Result<Spawned> {
        if let Some(fault) = agent_fault("agent", &spec.agent_id) {
            return Err(KernelError::Invalid(fault));
        }
        let review_ms = (spec.timeout_secs.clamp(1, 30 * 86400) as i64) * 1000;
        let (actor, token, subject) = spec.initiator;
        let mut exec = ExecutionRow::pending(
            spec.id,
            spec.tenant_id,
            spec.agent_id,
            (actor.clone(), token, subject.clone()),
            spec.now + review_ms + 60_000,
            spec.now,
        );
        exec.input = spec.arguments.clone();
        exec.agent_subjects = vec![subject.clone()];
        exec.context = Some(json!({"mcp": spec.context}));
        let mut edit = Edit::of(exec, spec.now);
        edit.by = Some((actor.clone(), subject));
        edit.expected = None;
        let payload = json!({"agent_id": edit.exec.agent_id, "input": edit.exec.input, "labels": {},
            "deadline_at": rfc3339_ms(edit.exec.deadline_at), "context": edit.exec.context});
        edit.record("kernel.execution.created", &actor, payload);
        let review = GateReview {
            tool: MCP_REVIEW_TOOL,
            arguments: spec.arguments,
            reasons: spec.reasons,
            reviewers: spec.reviewers,
            review_ms,
            decision_id: spec.decision_id,
            why: "an MCP gateway review",
        };
        open_gate(&mut edit, &actor, review)?;
        Ok(Spawned::of(edit))
    }

    /// Cancels an execution a run no longer waits for (a `Parallel`
    /// branch that lost, a run cancelled or timed out). One already ended
    /// is left as it is.
    pub async fn cancel_for_run(&self, id: &str, reason: &str) -> Result<()> {
        let _g = self.lock_of(id).lock().await;
        let Some(exec) = self.store.kernel_execution(id).await? else {
            return Ok(());
        };
        if exec.state.is_terminal() {
            return Ok(());
        }
        let mut edit = Edit::of(exec, self.clock.now_ms());
        self.end(&mut edit, ExecState::Cancelled, SYSTEM, json!({"reason": reason}))
            .await?;
        self.commit(edit).await?;
        Ok(())
    }
}
