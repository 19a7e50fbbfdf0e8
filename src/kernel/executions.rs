//! Executions: create, read, history, cancel, signal, and how one ends.

use serde_json::{Value, json};

use super::edit::*;
use super::error::*;
use super::requests::*;
use super::streams::*;
use super::views::*;
use super::{Kernel, SYSTEM};
use crate::auth::{Principal, new_id};
use crate::clock::rfc3339_ms;
use crate::ledger::Receipt;
use crate::model::kernel::*;

impl Kernel {
    pub async fn create(&self, who: &Principal, req: CreateExecution) -> Result<(ExecutionView, Vec<Receipt>)> {
        if let Some(fault) = agent_fault("agent_id", &req.agent_id) {
            return Err(KernelError::Invalid(fault));
        }
        let now = self.clock.now_ms();
        let limit = self.cfg.execution_timeout_secs;
        let timeout = req.timeout_seconds.unwrap_or(limit);
        if timeout == 0 || timeout > limit {
            return Err(KernelError::Invalid(format!(
                "timeout_seconds must be between 1 and {limit} (the configured kernel.execution_timeout_secs)"
            )));
        }
        let mut exec = ExecutionRow::pending(
            new_id("exe", now),
            who.tenant_id.clone(),
            req.agent_id,
            (who.actor(), who.token_id.clone(), who.subject.clone()),
            now + (timeout as i64) * 1000,
            now,
        );
        exec.input = req.input;
        exec.labels = req.labels;
        let mut edit = Edit::of(exec, now).by(who);
        edit.expected = None;
        let payload = json!({"agent_id": edit.exec.agent_id, "input": edit.exec.input,
            "labels": edit.exec.labels, "deadline_at": rfc3339_ms(edit.exec.deadline_at)});
        edit.record("kernel.execution.created", &who.actor(), payload);
        let here = self.hub.agent(&who.tenant_id, &edit.exec.agent_id);
        if let Some(conn) = &here {
            assign(&mut edit, conn)?;
        }
        let done = self.commit(edit).await?;
        if here.is_none() {
            // Its agent's stream may be on another instance.
            self.due_elsewhere();
        }
        // A new execution has no steps yet: nothing to read back.
        Ok((view_of(&done.exec, Vec::new()), done.receipts))
    }

    pub async fn get(&self, who: &Principal, id: &str) -> Result<ExecutionView> {
        let exec = self.load(&who.tenant_id, id).await?;
        self.view(&exec).await
    }

    pub(super) async fn view(&self, e: &ExecutionRow) -> Result<ExecutionView> {
        let mut steps = Vec::new();
        for s in self.store.kernel_steps_of(&e.id).await? {
            let approvals = match s.review {
                Some(_) => self
                    .store
                    .kernel_approvals_of(&s.id)
                    .await?
                    .iter()
                    .filter(|a| a.approve)
                    .count(),
                None => 0,
            };
            steps.push(StepView::of(&s, approvals));
        }
        Ok(view_of(e, steps))
    }

    /// The caller's tenant's executions, newest first (without their steps).
    pub async fn list(
        &self,
        who: &Principal,
        state: Option<ExecState>,
        agent_id: Option<&str>,
        limit: i64,
    ) -> Result<Vec<ExecutionSummary>> {
        let rows = self
            .store
            .kernel_executions(&who.tenant_id, state, agent_id, limit)
            .await?;
        Ok(rows.iter().map(ExecutionSummary::of).collect())
    }

    pub async fn history(&self, who: &Principal, id: &str) -> Result<Vec<HistoryView>> {
        let exec = self.load(&who.tenant_id, id).await?;
        Ok(self
            .store
            .kernel_history(&exec.id)
            .await?
            .into_iter()
            .map(|h| HistoryView {
                seq: h.seq,
                kind: h.kind.to_string(),
                actor: h.actor,
                at: rfc3339_ms(h.at),
                payload: h.payload,
                ledger_index: h.ledger_index,
            })
            .collect())
    }

    pub async fn cancel(&self, who: &Principal, id: &str, reason: Option<String>) -> Result<ExecutionView> {
        super::cache::fresh_if_stale(|| self.cancel_once(who, id, reason.clone())).await
    }

    async fn cancel_once(&self, who: &Principal, id: &str, reason: Option<String>) -> Result<ExecutionView> {
        let _g = self.lock_of(id).lock().await;
        let exec = self.load(&who.tenant_id, id).await?;
        let mut edit = Edit::of(exec, self.clock.now_ms()).by(who);
        let reason = reason.unwrap_or_else(|| "cancelled on request".into());
        self.end(&mut edit, ExecState::Cancelled, &who.actor(), json!({"reason": reason}))
            .await?;
        let done = self.commit(edit).await?;
        self.view(&done.exec).await
    }

    /// Ends an execution (failed or cancelled), cancelling its live steps
    /// and telling its agent and runners.
    pub(super) async fn end(&self, edit: &mut Edit, to: ExecState, actor: &str, payload: Value) -> Result<()> {
        let kind = match to {
            ExecState::Cancelled => "kernel.execution.cancelled",
            ExecState::Failed => "kernel.execution.failed",
            _ => "kernel.execution.completed",
        };
        edit.move_exec(to, kind, actor, payload.clone())?;
        if to != ExecState::Completed {
            edit.exec.output = Some(json!({"error": payload}));
        }
        edit.exec.conn = None;
        for step in self.store.kernel_steps_of(&edit.exec.id).await? {
            let step = edit.current(&step);
            if step.state.is_terminal() {
                continue;
            }
            let dispatched_to = step.runner_id.clone().filter(|_| step.state != StepState::Pending);
            let mut s = edit.move_step(
                &step,
                StepState::Cancelled,
                "kernel.step.cancelled",
                actor,
                json!({"reason": format!("execution {}", to.as_str())}),
            )?;
            if s.review == Some(ReviewState::Waiting) {
                s.review = Some(ReviewState::Expired);
                edit.put_step(s.clone(), None);
            }
            if let Some(runner) = dispatched_to {
                let r = runner_recipient(&edit.exec.tenant_id, &runner);
                edit.push(
                    r,
                    "job.cancelled",
                    json!({"step_id": s.id, "execution_id": edit.exec.id, "idempotency_key": s.idempotency_key}),
                );
            }
        }
        let data = json!({"execution_id": edit.exec.id, "state": to.as_str(), "reason": payload});
        let agent = edit.agent();
        let event = match to {
            ExecState::Failed => "execution.failed",
            _ => "execution.cancelled",
        };
        edit.push(agent, event, data);
        Ok(())
    }

    pub async fn signal(&self, who: &Principal, id: &str, payload: Value) -> Result<ExecutionView> {
        super::cache::fresh_if_stale(|| self.signal_once(who, id, payload.clone())).await
    }

    async fn signal_once(&self, who: &Principal, id: &str, payload: Value) -> Result<ExecutionView> {
        let _g = self.lock_of(id).lock().await;
        let exec = self.load(&who.tenant_id, id).await?;
        let mut edit = Edit::of(exec, self.clock.now_ms()).by(who);
        let data = json!({"execution_id": id, "signal": payload});
        match (edit.exec.state, edit.exec.waiting_on) {
            (ExecState::Blocked, Some(WaitingOn::Signal)) => {
                edit.move_exec(
                    ExecState::Running,
                    "kernel.execution.signalled",
                    &who.actor(),
                    json!({"signal": payload}),
                )?;
                if edit.exec.conn.is_none() {
                    release(&mut edit, SYSTEM, "no agent stream holds it")?;
                }
            }
            (ExecState::Running, _) => {
                edit.record("kernel.execution.signalled", &who.actor(), json!({"signal": payload}))
            }
            (from, _) => {
                return Err(KernelError::IllegalTransition {
                    what: "execution",
                    id: id.to_string(),
                    from: match edit.exec.waiting_on {
                        Some(w) if from == ExecState::Blocked => format!("blocked on a {w}"),
                        _ => from.to_string(),
                    },
                    to: "signalled (only a running execution, or one blocked by a wait intent, takes signals)".into(),
                });
            }
        }
        let agent = edit.agent();
        edit.push(agent, "execution.signalled", data);
        let done = self.commit(edit).await?;
        self.view(&done.exec).await
    }
}

/// An execution's view, with its steps' views.
fn view_of(e: &ExecutionRow, steps: Vec<StepView>) -> ExecutionView {
    ExecutionView {
        id: e.id.clone(),
        agent_id: e.agent_id.clone(),
        state: e.state,
        input: e.input.clone(),
        labels: e.labels.clone(),
        output: e.output.clone(),
        initiator: e.initiator.clone(),
        initiator_subject: e.initiator_subject.clone(),
        waiting_on: e.waiting_on,
        deadline_at: rfc3339_ms(e.deadline_at),
        created_at: rfc3339_ms(e.created_at),
        updated_at: rfc3339_ms(e.updated_at),
        steps,
        history_seq: e.seq,
    }
}
