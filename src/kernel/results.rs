//! Step results: what the agent or runner reports of a step, retries after
//! a failure, and the execution resuming after its step.

use serde_json::json;

use super::edit::*;
use super::error::*;
use super::requests::*;
use super::streams::*;
use super::views::*;
use super::{Kernel, SYSTEM};
use crate::auth::{Principal, new_id};
use crate::clock::rfc3339_ms;
use crate::model::kernel::*;

/// A step succeeded: the execution runs again and its agent gets the result.
pub(super) fn resume_after_step(edit: &mut Edit, s: &StepRow, actor: &str) -> Result<()> {
    edit.move_exec(
        ExecState::Running,
        "kernel.execution.resumed",
        actor,
        json!({"step_id": s.id, "reason": "step succeeded"}),
    )?;
    let data = json!({"execution_id": edit.exec.id, "step_id": s.id, "tool": s.tool, "state": "succeeded",
        "output": s.result, "execution_state": "running"});
    let agent = edit.agent();
    edit.push(agent, "step.result", data);
    if edit.exec.conn.is_none() {
        release(edit, SYSTEM, "no agent stream holds it")?;
    }
    Ok(())
}

impl Kernel {
    /// A result from the agent (local steps) or from a runner (`runner`,
    /// remote steps).
    pub async fn report(&self, who: &Principal, runner: Option<&str>, report: StepReport) -> Result<StepView> {
        super::cache::fresh_if_stale(|| self.report_once(who, runner, report.clone())).await
    }

    async fn report_once(&self, who: &Principal, runner: Option<&str>, report: StepReport) -> Result<StepView> {
        let step = match self.step_row(&report.step_id).await? {
            Some(s) if s.tenant_id == who.tenant_id => s,
            _ => return Err(KernelError::UnknownStep(report.step_id)),
        };
        let _g = self.lock_of(&step.execution_id).lock().await;
        let exec = self.load(&who.tenant_id, &step.execution_id).await?;
        let step = self.step_of(&exec, &report.step_id).await?;
        match runner {
            Some(r) => {
                bound_runner(who, r)?;
                if !step.remote || step.runner_id.as_deref() != Some(r) {
                    return Err(KernelError::StepNotYours {
                        step: step.id,
                        owner: step.runner_id,
                        caller: r.to_string(),
                    });
                }
                // Steps dispatched before tokens were recorded name none.
                if step.runner_token.as_ref().is_some_and(|t| *t != who.token_id) {
                    return Err(KernelError::JobNotYours(step.id));
                }
            }
            None => {
                bound_agent(who, &exec.agent_id)?;
                if step.remote {
                    return Err(KernelError::StepNotYours {
                        step: step.id,
                        owner: step.runner_id,
                        caller: "the agent (this step runs on a runner)".into(),
                    });
                }
                if exec.agent_token.as_deref() != Some(who.token_id.as_str()) {
                    return Err(KernelError::NotAssigned(exec.id));
                }
            }
        }
        let target = match report.status {
            ReportStatus::Started => StepState::Running,
            ReportStatus::Succeeded => StepState::Succeeded,
            ReportStatus::Failed => StepState::Failed,
        };
        // A report sent again (e.g. after a lost answer) is answered, not refused.
        if step.state == target {
            return Ok(StepView::of(&step, 0));
        }
        let actor = who.actor();
        let mut edit = Edit::of(exec, self.clock.now_ms()).by(who);
        if step.state == StepState::Dispatched && target != StepState::Running {
            edit.move_step(&step, StepState::Running, "kernel.step.started", &actor, json!({}))?;
        }
        let out = match report.status {
            ReportStatus::Started => {
                edit.move_step(&step, StepState::Running, "kernel.step.started", &actor, json!({}))?
            }
            ReportStatus::Succeeded => {
                let mut s = edit.move_step(
                    &step,
                    StepState::Succeeded,
                    "kernel.step.succeeded",
                    &actor,
                    json!({"output": report.output}),
                )?;
                s.result = report.output.clone();
                edit.put_step(s.clone(), None);
                resume_after_step(&mut edit, &s, &actor)?;
                s
            }
            ReportStatus::Failed => {
                let mut s = edit.move_step(
                    &step,
                    StepState::Failed,
                    "kernel.step.failed",
                    &actor,
                    json!({"error": report.error, "retryable": report.retryable}),
                )?;
                s.error = report.error.clone();
                edit.put_step(s.clone(), None);
                self.after_failure(&mut edit, &s, report.retryable, &actor)?;
                s
            }
        };
        self.commit(edit).await?;
        Ok(StepView::of(&out, 0))
    }

    /// A step failed or timed out: a new attempt after the back-off when
    /// the failure is retryable and attempts remain; else the execution fails.
    pub(super) fn after_failure(&self, edit: &mut Edit, s: &StepRow, retryable: bool, actor: &str) -> Result<()> {
        if retryable && s.attempt < s.max_attempts {
            let exp = (s.attempt - 1).clamp(0, 30) as u32;
            let delay = s
                .backoff_ms
                .saturating_mul(1i64 << exp)
                .min(self.cfg.max_backoff_ms as i64);
            let now = edit.now;
            let id = new_id("stp", now);
            let next = StepRow {
                id: id.clone(),
                attempt: s.attempt + 1,
                state: StepState::Pending,
                idempotency_key: id.clone(),
                runner_id: None,
                runner_token: None,
                deadline_at: Some(now + delay + s.timeout_ms),
                not_before: Some(now + delay),
                result: None,
                error: None,
                created_at: now,
                updated_at: now,
                ..s.clone()
            };
            edit.record(
                "kernel.step.retried",
                actor,
                json!({"step_id": s.id, "next_step_id": id, "attempt": next.attempt, "max_attempts": s.max_attempts,
                    "not_before": rfc3339_ms(now + delay), "tool": s.tool}),
            );
            edit.put_step(next, None);
            return Ok(());
        }
        let why = if retryable {
            format!("step {} failed after {} attempts", s.id, s.attempt)
        } else {
            format!("step {} failed ({})", s.id, s.state)
        };
        edit.move_exec(
            ExecState::Failed,
            "kernel.execution.failed",
            actor,
            json!({"reason": why, "step_id": s.id}),
        )?;
        edit.exec.output = Some(json!({"error": why, "step_id": s.id, "step_error": s.error}));
        edit.exec.conn = None;
        let data = json!({"execution_id": edit.exec.id, "step_id": s.id, "state": s.state.as_str(),
            "execution_state": "failed", "error": s.error});
        let agent = edit.agent();
        edit.push(agent, "step.result", data);
        Ok(())
    }
}
